//! The way back: `rollback [--to N]`, and `deploy --atomic`, which rolls back by itself when a
//! step fails. Both plan and apply the recorded desired inputs of a history revision (inputs as
//! they were resolved then, dependencies, stack outputs) without running the program for them:
//! updated resources return to their earlier inputs, resources made since are deleted (unless
//! protected or retained), and a replacement whose old instance is still there (deletes run last)
//! gets that very instance back. The rollback is a run like any deploy: shown, journalled,
//! resumed after a kill, and recorded in history as `rollback`.

use super::day2::{desired_inputs, record_history, summary_line};
use super::fail;
use crate::engine::render::{render_plan, render_report};
use crate::engine::{ApplyReport, Plan, Session, StepOp};
use crate::model::{Graph, Options, Urn};
use crate::state::history::{HistoryDetail, HistoryEntry, REVISION_FORMAT};
use crate::state::{JournalEntry, State};
use std::sync::Arc;
use std::time::Instant;

/// A revision `rollback` can return to.
pub(super) struct Revision {
    pub id: u64,
    pub detail: HistoryDetail,
}

impl Revision {
    /// Revision 0: the stack before its first deploy, with nothing in it.
    pub fn empty() -> Self {
        Revision { id: 0, detail: HistoryDetail { format: REVISION_FORMAT, ..Default::default() } }
    }
}

/// Why a revision cannot be returned to (a clear error, before any call).
fn refuse(id: u64, entry: Option<&HistoryEntry>, detail: Option<&HistoryDetail>) -> Option<String> {
    let Some(entry) = entry else {
        return Some(format!("this stack has no history entry {id} (`history` lists them)"));
    };
    if !matches!(entry.operation.as_str(), "deploy" | "rollback") {
        return Some(format!(
            "history entry {id} is a `{}`, not a deploy: only a deploy's revision can be returned to",
            entry.operation
        ));
    }
    if entry.outcome != "succeeded" {
        return Some(format!("history entry {id} did not succeed ({}): return to a revision that did", entry.outcome));
    }
    match detail {
        None => Some(format!("history entry {id} has no recorded inputs")),
        Some(d) if d.format < REVISION_FORMAT => Some(format!(
            "history entry {id} was recorded by an older fabric, without the dependency order a rollback needs (detail format {}, {REVISION_FORMAT} needed): deploy that program again instead",
            d.format
        )),
        Some(_) => None,
    }
}

/// The revision `to` names, or the last successful deploy or rollback (before `before`, when
/// given: the failed deploy itself is not one). `Ok(None)`: no earlier revision is recorded.
pub(super) async fn find(
    session: &Session<'_>,
    to: Option<u64>,
    before: Option<u64>,
) -> Result<Option<Revision>, String> {
    let store = &session.engine().store;
    let history = store.history().await.map_err(|e| e.to_string())?;
    let id = match to {
        Some(id) => id,
        None => {
            let last = history
                .iter()
                .rev()
                .filter(|e| before.is_none_or(|b| e.id < b))
                .find(|e| matches!(e.operation.as_str(), "deploy" | "rollback") && e.outcome == "succeeded");
            match last {
                Some(e) => e.id,
                None => return Ok(None),
            }
        }
    };
    let entry = history.iter().find(|e| e.id == id);
    let detail = match entry {
        Some(_) => store.history_detail(id).await.map_err(|e| e.to_string())?,
        None => None,
    };
    if let Some(problem) = refuse(id, entry, detail.as_ref()) {
        return Err(problem);
    }
    Ok(Some(Revision { id, detail: detail.expect("checked") }))
}

/// The revision as a graph, with each resource's options from the program where it still
/// declares it (timeouts, protection), else from state (protect, retain).
fn graph_of(
    program: &Graph,
    state: &State,
    registry: &crate::engine::Registry,
    rev: &Revision,
) -> Result<Graph, String> {
    let d = &rev.detail;
    Graph::of_revision(
        program.stack(),
        program.region(),
        &d.inputs,
        &d.deps,
        &d.outputs,
        |ty| registry.get(ty),
        |urn: &Urn| match program.get(urn) {
            Some(node) => Options { aliases: Vec::new(), import: None, ..node.options.clone() },
            None => {
                let recorded = state.resources.get(urn).map(|r| r.options).unwrap_or_default();
                Options { protect: recorded.protect, retain_on_delete: recorded.retain_on_delete, ..Default::default() }
            }
        },
    )
    .map_err(|e| format!("revision {} cannot be planned: {e}", rev.id))
}

/// A replaced resource whose old instance is still there (its delete had not run) and is the
/// one the revision wants: the old instance becomes the resource again and the new one is
/// retired, to be deleted. Journalled, so a kill between the two entries resumes correctly.
async fn take_back_old_instances(session: &mut Session<'_>, rev: &Revision) -> crate::Result<Vec<Urn>> {
    let mut back = Vec::new();
    let swaps: Vec<(Urn, crate::state::Record)> = session
        .state()
        .retired
        .iter()
        .filter(|r| {
            let wanted = rev.detail.inputs.get(r.urn.as_str());
            let current = session.state().resources.get(&r.urn).map(|c| &c.inputs);
            wanted == Some(&r.record.inputs) && current != wanted
        })
        .map(|r| (r.urn.clone(), r.record.clone()))
        .collect();
    for (urn, old) in swaps {
        for entry in [
            JournalEntry::Done { urn: urn.clone(), op: crate::state::Op::Replace, record: Some(old.clone()) },
            JournalEntry::Done { urn: urn.clone(), op: crate::state::Op::DeleteRetired, record: Some(old.clone()) },
        ] {
            session.engine().store.record(&entry).await?;
            session.state_mut().apply(&entry);
        }
        back.push(urn);
    }
    if !back.is_empty() {
        let engine = session.engine();
        engine.store.save(session.state_mut()).await?;
    }
    Ok(back)
}

/// Plans and applies the way back to `rev`, printing both; records it in history.
pub(super) async fn roll_back(
    session: &mut Session<'_>,
    program: &Graph,
    rev: &Revision,
    why: &str,
) -> crate::Result<ApplyReport> {
    // An update that failed after it may have been applied (a Deployment whose rollout then
    // failed) counts as applied, so that the way back sends the revision's inputs again (for
    // an update that did not happen, that write changes nothing). Journalled like any result.
    let attempted: Vec<JournalEntry> = session
        .state()
        .pending
        .iter()
        .filter(|(_, p)| p.op == crate::state::Op::Update)
        .filter_map(|(urn, p)| {
            let record = session.state().resources.get(urn)?;
            let record = crate::state::Record { inputs: p.inputs.clone(), ..record.clone() };
            Some(JournalEntry::Done { urn: urn.clone(), op: crate::state::Op::Update, record: Some(record) })
        })
        .collect();
    for entry in &attempted {
        session.engine().store.record(entry).await?;
        session.state_mut().apply(entry);
    }
    // What the other failed steps may have done (a create whose answer was lost): settled
    // against the cloud first, as the next run would, so that the plan starts from it.
    if !session.state().pending.is_empty() {
        let (state, recovered) = session.engine().load_and_recover(Some(program), true).await?;
        for r in &recovered {
            eprintln!("{}{}", if r.unsettled() { "warning: " } else { "" }, r.describe());
        }
        *session.state_mut() = state;
    }
    let registry = session.registry_for(program);
    let graph = graph_of(program, session.state(), &registry, rev).map_err(crate::Error::Other)?;
    let back = take_back_old_instances(session, rev).await?;
    let plan = session.plan(&graph, None).await?;
    eprintln!("Rolling back to revision {} ({why}):", rev.id);
    for urn in &back {
        eprintln!("  <   {}  the old instance is kept; the new one is deleted", urn.display_short());
    }
    eprint!("{}", render_plan(&plan));
    let t0 = Instant::now();
    let graph = Arc::new(graph);
    let report = session.apply(graph.clone(), &plan).await?;
    if plan.has_changes() {
        eprint!("{}", render_report(&report, t0.elapsed()));
    }
    let engine = session.engine();
    let detail = revision_detail(&graph, session.state());
    let outcome = if report.ok() {
        "succeeded".to_string()
    } else {
        format!("failed ({} of {} steps)", report.failed().count(), report.results.len())
    };
    let summary = format!("to revision {} ({why}): {}", rev.id, summary_line(&plan));
    record_history(engine, "rollback", summary, outcome, detail).await;
    Ok(report)
}

/// What history keeps of a deploy or rollback so that `rollback` can return to it.
pub(super) fn revision_detail(graph: &Graph, state: &State) -> HistoryDetail {
    HistoryDetail {
        inputs: desired_inputs(graph, state),
        entries: Vec::new(),
        deps: graph.nodes().iter().map(|n| (n.urn.to_string(), n.deps.clone())).collect(),
        outputs: state.outputs.clone(),
        waivers: Vec::new(),
        format: REVISION_FORMAT,
    }
}

/// The version fields AWS moves one way only (EKS `version`; RDS, Aurora, ElastiCache and
/// OpenSearch `engine_version`): an upgrade done cannot be rolled back.
const ONE_WAY_FIELDS: &[&str] = &["version", "engine_version"];

/// What an atomic deploy could not undo, said before it starts: deletes (they run last, so a
/// failure before them keeps the resource; once done, a rollback makes a new, empty one),
/// replacements that delete the old instance first, and version upgrades made in place.
pub(super) fn cannot_go_back(plan: &Plan) -> Vec<String> {
    let upgrades = plan.steps.iter().filter(|s| s.op == StepOp::Update).flat_map(|s| {
        s.changes.iter().filter(|c| ONE_WAY_FIELDS.contains(&c.field.as_str())).map(move |c| {
            let shown = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
            format!(
                "{} {:?}: `{}` {} => {} is an upgrade AWS makes one way: a rollback cannot downgrade it",
                s.type_name,
                s.urn.name(),
                c.field,
                shown(&c.old),
                shown(&c.new)
            )
        })
    });
    let removals = plan
        .steps
        .iter()
        .filter_map(|s| match s.op {
            StepOp::Delete if !s.retain && s.moved_to.is_none() => Some(format!(
                "{} {:?} is deleted, last: a rollback after that makes a new one, without what the old one held",
                s.type_name,
                s.urn.name()
            )),
            StepOp::Replace if s.delete_first => Some(format!(
                "{} {:?} is replaced by deleting it first (delete_before_replace): a rollback makes it anew, with a new identity",
                s.type_name,
                s.urn.name()
            )),
            _ => None,
        });
    removals.chain(upgrades).collect()
}

/// `rollback [--to N]`: shows the way back, asks, applies it.
pub(super) async fn rollback_command(
    cli: &super::Cli,
    session: &mut Session<'_>,
    program: &Graph,
    to: Option<u64>,
) -> crate::Result<i32> {
    let rev = match find(session, to, None).await {
        Ok(Some(rev)) => rev,
        Ok(None) => return Ok(fail(2, "this stack has no successful deploy to return to (`history` lists its runs)")),
        Err(problem) => return Ok(fail(2, problem)),
    };
    // The plan first, to show and confirm (nothing is changed until then).
    let registry = session.registry_for(program);
    let graph = graph_of(program, session.state(), &registry, &rev).map_err(crate::Error::Other)?;
    let preview = session.plan(&graph, None).await?;
    eprintln!("Revision {} against the current state:", rev.id);
    eprint!("{}", render_plan(&preview));
    if !preview.has_changes() && session.state().retired.is_empty() {
        eprintln!("The stack is at revision {} already.", rev.id);
        return Ok(0);
    }
    if !super::confirm(cli, &format!("Return stack `{}` to revision {}?", program.stack(), rev.id))
        .map_err(crate::Error::Other)?
    {
        eprintln!("Nothing was changed.");
        return Ok(1);
    }
    let report = roll_back(session, program, &rev, "asked for").await?;
    Ok(if report.ok() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: u64, operation: &str, outcome: &str) -> HistoryEntry {
        HistoryEntry {
            id,
            time: "2026-12-07T10:00:00Z".into(),
            user: "test".into(),
            commit: None,
            operation: operation.into(),
            summary: String::new(),
            outcome: outcome.into(),
            waivers: vec![],
        }
    }

    #[test]
    fn only_a_successful_deploy_recorded_with_its_dependencies_can_be_returned_to() {
        let current = HistoryDetail { format: REVISION_FORMAT, ..Default::default() };
        let older = HistoryDetail { inputs: [("a".into(), json!({}))].into(), ..Default::default() };
        assert_eq!(refuse(4, Some(&entry(4, "deploy", "succeeded")), Some(&current)), None);
        assert_eq!(refuse(4, Some(&entry(4, "rollback", "succeeded")), Some(&current)), None);
        let problem = |e: Option<HistoryEntry>, d: Option<&HistoryDetail>| refuse(4, e.as_ref(), d).unwrap();
        assert!(problem(None, None).contains("no history entry 4"));
        assert!(
            problem(Some(entry(4, "state rm", "succeeded")), Some(&current)).contains("is a `state rm`, not a deploy")
        );
        assert!(problem(Some(entry(4, "deploy", "failed (1 of 3 steps)")), Some(&current)).contains("did not succeed"));
        let old = problem(Some(entry(4, "deploy", "succeeded")), Some(&older));
        assert!(old.contains("recorded by an older fabric") && old.contains("deploy that program again"), "{old}");
    }

    #[test]
    fn an_atomic_preview_names_what_cannot_go_back() {
        use crate::engine::plan::{FieldChange, Step};
        let urn = |t: &str, n: &str| Urn::new("demo", t, n);
        let change = |field: &str, old: &str, new: &str| FieldChange {
            field: field.into(),
            old: Some(json!(old)),
            new: Some(json!(new)),
            forces_replace: false,
            summary: None,
        };
        let mut replaced = Step::new(urn("aws:rds:DbInstance", "db"), "aws:rds:DbInstance", StepOp::Replace, vec![]);
        replaced.delete_first = true;
        let plan = Plan {
            stack: "demo".into(),
            steps: vec![
                Step::new(
                    urn("aws:eks:Cluster", "main"),
                    "aws:eks:Cluster",
                    StepOp::Update,
                    vec![change("version", "1.33", "1.34")],
                ),
                Step::new(
                    urn("aws:eks:Cluster", "other"),
                    "aws:eks:Cluster",
                    StepOp::Update,
                    vec![change("tags", "a", "b")],
                ),
                Step::new(urn("aws:s3:Bucket", "uploads"), "aws:s3:Bucket", StepOp::Delete, vec![]),
                replaced,
                Step::new(urn("aws:ec2:Vpc", "main"), "aws:ec2:Vpc", StepOp::Create, vec![]),
            ],
            partial: None,
        };
        let lost = cannot_go_back(&plan);
        assert_eq!(lost.len(), 3, "{lost:#?}");
        assert!(lost[0].starts_with("aws:s3:Bucket \"uploads\" is deleted, last"), "{lost:#?}");
        assert!(lost[1].contains("aws:rds:DbInstance \"db\" is replaced by deleting it first"), "{lost:#?}");
        assert!(
            lost[2]
                .contains("aws:eks:Cluster \"main\": `version` \"1.33\" => \"1.34\" is an upgrade AWS makes one way"),
            "{lost:#?}"
        );
    }

    #[test]
    fn a_revision_holding_another_stacks_resources_is_refused() {
        let inputs = [("other::t::a".to_string(), json!({}))].into();
        let err = Graph::of_revision(
            "demo",
            None,
            &inputs,
            &Default::default(),
            &Default::default(),
            |_| None,
            |_| Options::default(),
        )
        .err()
        .unwrap();
        assert!(err.contains("a resource of stack `other`"), "{err}");
    }
}
