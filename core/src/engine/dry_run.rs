//! The cloud's own check of a plan, before anything changes: every step whose provider has a dry
//! run (Kubernetes: server-side apply with `dryRun=All`) is sent to the cloud. The plan then shows
//! the cloud's answer (defaulted fields, fields another manager changed), and a refusal stops the
//! run before its first step.

use super::plan::{Plan, StepOp, diff};
use super::provider::{Ctx, DryRun};
use crate::model::{Graph, Lookup, Urn};
use crate::state::State;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What the dry runs found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DryRunReport {
    /// Steps the cloud accepted.
    pub accepted: usize,
    /// Steps not asked, and why.
    pub skipped: Vec<(Urn, String)>,
    /// Steps the cloud refused, and its answer.
    pub rejected: Vec<(Urn, String)>,
}

impl DryRunReport {
    /// Whether nothing was refused.
    pub fn ok(&self) -> bool {
        self.rejected.is_empty()
    }

    /// Whether any step was sent.
    pub fn asked(&self) -> bool {
        self.accepted + self.skipped.len() + self.rejected.len() > 0
    }

    /// One summary line, the skipped steps (grouped by reason) and every refusal.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Dry run: the cloud accepted {} of {} steps it was asked about",
            self.accepted,
            self.accepted + self.rejected.len()
        );
        if !self.skipped.is_empty() {
            out.push_str(&format!("; {} not asked", self.skipped.len()));
        }
        out.push_str(".\n");
        let mut reasons: Vec<(&str, Vec<&Urn>)> = Vec::new();
        for (urn, why) in &self.skipped {
            match reasons.iter_mut().find(|(w, _)| *w == why.as_str()) {
                Some((_, urns)) => urns.push(urn),
                None => reasons.push((why, vec![urn])),
            }
        }
        for (why, urns) in reasons {
            let names: Vec<&str> = urns.iter().map(|u| u.name()).collect();
            let shown = if names.len() > 3 {
                format!("{}, … ({} in all)", names[..3].join(", "), names.len())
            } else {
                names.join(", ")
            };
            out.push_str(&format!("  not asked: {shown}: {why}\n"));
        }
        for (urn, why) in &self.rejected {
            out.push_str(&format!("  refused: {}: {why}\n", urn.display_short()));
        }
        out
    }
}

/// Asks the cloud about every create, update and unchanged step of `plan` (made from `graph` and
/// `state`), at most `parallel` at once, and rewrites those steps with its answers: an unchanged
/// resource the cloud would change (drift) becomes an update; an update shows the cloud's diff.
/// The recorded outputs of the resources a plan keeps or updates in place.
struct PlannedOutputs<'a> {
    keeps: std::collections::HashSet<&'a Urn>,
    state: &'a State,
}

impl Lookup for PlannedOutputs<'_> {
    fn output(&self, urn: &Urn, field: &str) -> Option<Value> {
        if !self.keeps.contains(urn) {
            return None;
        }
        self.state.resources.get(urn)?.outputs.get(field).cloned()
    }
}

pub async fn dry_run(ctx: &Ctx, graph: &Graph, state: &State, plan: &mut Plan, parallel: usize) -> DryRunReport {
    // Nothing to ask (no resource of the program has a dry run: a stack without Kubernetes
    // objects): no work at all, which was 0.1 s of a 10,000-resource preview.
    if !graph.nodes().iter().any(|n| n.provider.dry_runs()) {
        return DryRunReport::default();
    }
    let ops: HashMap<&Urn, StepOp> = plan.steps.iter().filter(|s| !s.retired).map(|s| (&s.urn, s.op)).collect();
    // The inputs each step sends, with outputs known as the plan knew them (read from state when
    // asked, not copied: few resources dry-run, and copying every output cost 0.15 s of a
    // 10,000-resource preview).
    let known = PlannedOutputs {
        keeps: graph
            .nodes()
            .iter()
            .filter(|n| matches!(ops.get(&n.urn), Some(StepOp::Same | StepOp::Update)))
            .filter(|n| state.resources.get(&n.urn).is_some_and(|r| r.type_name == n.type_name()))
            .map(|n| &n.urn)
            .collect(),
        state,
    };
    let mut asks = Vec::new();
    for node in graph.nodes() {
        let op = ops.get(&node.urn).copied();
        let recorded = state.resources.get(&node.urn).filter(|r| r.type_name == node.type_name());
        if !matches!(op, Some(StepOp::Create | StepOp::Update | StepOp::Same | StepOp::Replace))
            || !node.provider.dry_runs()
        {
            continue;
        }
        let Ok(inputs) = node.inputs(&known) else { continue };
        let recorded = recorded.map(|r| (r.inputs.clone(), r.outputs.clone()));
        asks.push((node.urn.clone(), node.provider.clone(), inputs, recorded));
    }
    // Boxed futures (not a stream of closures): the whole run stays `Send` for any caller.
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    type Answer = (Urn, Result<DryRun, String>);
    let calls: Vec<Pin<Box<dyn Future<Output = Answer> + Send + '_>>> = asks
        .into_iter()
        .map(|(urn, provider, inputs, recorded)| {
            let limit = limit.clone();
            Box::pin(async move {
                let _permit = limit.acquire().await;
                let recorded = recorded.as_ref().map(|(i, o)| (i, o));
                let answer = provider.dry_run(ctx, &urn, &inputs, recorded).await.map_err(|e| e.0);
                (urn, answer)
            }) as Pin<Box<dyn Future<Output = Answer> + Send + '_>>
        })
        .collect();
    let answers = futures::future::join_all(calls).await;

    let mut report = DryRunReport::default();
    let mut by_urn: HashMap<Urn, Result<DryRun, String>> = answers.into_iter().collect();
    for step in plan.steps.iter_mut().filter(|s| !s.retired) {
        let Some(answer) = by_urn.remove(&step.urn) else { continue };
        match answer {
            Ok(DryRun::NotSupported) => {}
            Ok(DryRun::Skipped(why)) => report.skipped.push((step.urn.clone(), why)),
            Err(why) => report.rejected.push((step.urn.clone(), why)),
            Ok(DryRun::Accepted { change, notes }) => {
                report.accepted += 1;
                step.notes.extend(notes);
                let Some((before, after)) = change else { continue };
                let changes = diff(&before, &after, &[]);
                match step.op {
                    StepOp::Same if !changes.is_empty() => {
                        step.op = StepOp::Update;
                        step.changes = changes;
                    }
                    StepOp::Update if !changes.is_empty() => step.changes = changes,
                    _ => {}
                }
            }
        }
    }
    report.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    report.rejected.sort_by(|a, b| a.0.cmp(&b.0));
    report
}
