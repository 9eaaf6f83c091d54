//! The engine: plan, apply, refresh, destroy, recovery of interrupted runs.

pub mod apply;
#[cfg(test)]
mod day2_tests;
pub mod dry_run;
pub mod executor;
#[cfg(test)]
mod failure_tests;
pub mod names;
pub mod plan;
pub mod provider;
pub mod refresh;
pub mod render;
pub mod select;
pub mod session;
pub mod shown;
#[cfg(test)]
mod tests;

use crate::model::{Graph, Urn};
use crate::state::store::StateError;
use crate::state::{JournalEntry, Op, Record, State, StateStore};
pub use apply::{ApplyReport, StepResult};
pub use dry_run::DryRunReport;
pub use executor::Outcome;
pub use plan::{
    FieldChange, Plan, PlanError, PlanInputs, Step, StepOp, Summary, plan, plan_destroy, plan_destroy_with, plan_json,
    plan_with,
};
pub use provider::{Ctx, Import, Provider, ProviderError, Registry, Taken, TypedProvider};
pub use refresh::{Drift, RefreshReport};
pub use select::Selection;
pub use session::Session;
use std::sync::Arc;
use std::time::Duration;

/// Errors that stop a run before or around apply (step failures are in the [`ApplyReport`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Provider(String),
}

/// Live progress of an apply.
pub trait Observer: Send + Sync {
    fn started(&self, urn: &Urn, op: Op);
    /// `error` is `None` on success.
    fn finished(&self, urn: &Urn, op: Op, error: Option<&str>, elapsed: Duration);
    fn skipped(&self, urn: &Urn, op: Op, blocked_by: &Urn);
    /// Not started because the run was interrupted.
    fn interrupted(&self, _urn: &Urn, _op: Op) {}
}

/// An observer that shows nothing.
pub struct Silent;

impl Observer for Silent {
    fn started(&self, _: &Urn, _: Op) {}
    fn finished(&self, _: &Urn, _: Op, _: Option<&str>, _: Duration) {}
    fn skipped(&self, _: &Urn, _: Op, _: &Urn) {}
}

/// What recovery found for an operation an earlier run left unfinished.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovered {
    pub urn: Urn,
    pub op: Op,
    /// `adopted` (found in the cloud by tag or natural key), `absent` (never happened),
    /// `deleted` (the delete had happened), `present` (still there), `refreshed`, or
    /// `unsettled`: it could not be told, and the operation stays pending (see
    /// [`Recovered::detail`]); runs go on with everything else.
    pub finding: &'static str,
    /// Why it is `unsettled`, or what showed it `absent` when that was a name held by another.
    pub detail: Option<String>,
}

impl Recovered {
    /// Recovery could not tell whether the operation happened.
    pub fn unsettled(&self) -> bool {
        self.finding == "unsettled"
    }

    /// One line for the user: what was found, and for an unsettled one how to settle it.
    pub fn describe(&self) -> String {
        let what = format!("an interrupted {} of {}", self.op.verb(), self.urn.display_short());
        match (&self.detail, self.unsettled()) {
            (Some(d), true) => format!(
                "could not settle {what}: {d}\n    it stays pending; everything else goes on\n    fix: {}",
                apply::settle_hint(&self.urn)
            ),
            (Some(d), false) => format!("recovered {what}: {} ({d})", self.finding),
            (None, _) => format!("recovered {what}: {}", self.finding),
        }
    }
}

/// Drives providers against one stack's state.
pub struct Engine {
    pub ctx: Ctx,
    pub store: Arc<StateStore>,
    pub registry: Registry,
    pub observer: Arc<dyn Observer>,
    pub parallel: usize,
    /// Set to stop starting steps (Ctrl-C): those in flight finish and are recorded.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Engine {
    pub fn new(ctx: Ctx, store: Arc<StateStore>, registry: Registry) -> Self {
        Engine { ctx, store, registry, observer: Arc::new(Silent), parallel: 32, stop: Default::default() }
    }

    fn provider(&self, type_name: &str, graph: Option<&Graph>) -> Option<Arc<dyn Provider>> {
        self.registry
            .get(type_name)
            .or_else(|| graph?.nodes().iter().find(|n| n.type_name() == type_name).map(|n| n.provider.clone()))
    }

    /// Loads state and settles what an interrupted run left pending: a create whose answer was
    /// lost is looked up (by tag or natural key) and adopted; an update is re-read; a delete is
    /// checked. With `persist`, the findings are journalled and a fresh snapshot is written.
    pub async fn load_and_recover(
        &self,
        graph: Option<&Graph>,
        persist: bool,
    ) -> Result<(State, Vec<Recovered>), EngineError> {
        let mut state = self.store.load().await?;
        let pending: Vec<(Urn, crate::state::Pending)> =
            state.pending.iter().map(|(u, p)| (u.clone(), p.clone())).collect();
        let mut found = Vec::new();
        for (urn, p) in pending {
            let settled = match self.provider(&p.type_name, graph) {
                Some(provider) => self.settle(&state, graph, &urn, &p, provider).await,
                None => Err(ProviderError(format!("no provider for type `{}` in this program", p.type_name))),
            };
            let (entry, finding, detail) = match settled {
                Ok(found) => found,
                Err(e) => {
                    found.push(Recovered { urn, op: p.op, finding: "unsettled", detail: Some(e.0) });
                    continue;
                }
            };
            if persist {
                self.store.record(&entry).await?;
            }
            state.apply(&entry);
            state.pending.remove(&urn);
            found.push(Recovered { urn, op: p.op, finding, detail });
        }
        if persist {
            // Loading replayed the journal; compacting it now means every later append goes to a
            // fresh journal (never after a line torn by a crash).
            self.store.save(&mut state).await?;
        }
        Ok((state, found))
    }

    /// What became of one pending operation: the journal entry that settles it, the finding, and
    /// a detail. An error when the cloud cannot tell (the operation stays pending).
    async fn settle(
        &self,
        state: &State,
        graph: Option<&Graph>,
        urn: &Urn,
        p: &crate::state::Pending,
        provider: Arc<dyn Provider>,
    ) -> Result<(JournalEntry, &'static str, Option<String>), ProviderError> {
        let read_one = |outputs: serde_json::Value| {
            let provider = provider.clone();
            let urn = urn.clone();
            async move { provider.read_many(&self.ctx, &[(urn, outputs)]).await.map(|mut v| v.pop().flatten()) }
        };
        let resolved = JournalEntry::Resolved { urn: urn.clone() };
        Ok(match p.op {
            Op::Create | Op::Replace => match provider.find(&self.ctx, urn, &p.inputs).await {
                Ok(Some(outputs)) => {
                    // Record what is really there, so the plan fixes whatever the create did not finish.
                    let observed = read_one(outputs.clone()).await?;
                    let inputs = observed.map(|o| o.over(&p.inputs)).unwrap_or(p.inputs.clone());
                    let record = Record {
                        type_name: p.type_name.clone(),
                        inputs,
                        outputs,
                        deps: p.deps.clone(),
                        options: graph.and_then(|g| g.get(urn)).map(|n| n.options.recorded()).unwrap_or_default(),
                    };
                    (JournalEntry::Done { urn: urn.clone(), op: p.op, record: Some(record) }, "adopted", None)
                }
                Ok(None) => (resolved, "absent", None),
                Err(e) => {
                    // A name held by someone else proves the create did not happen: this stack's
                    // creates tag (or label) what they make in the same call.
                    let item = [(urn.clone(), p.inputs.clone())];
                    let taken =
                        provider.names_taken(&self.ctx, &item).await.ok().flatten().and_then(|mut v| v.pop().flatten());
                    let Some(t) = taken else { return Err(e) };
                    (resolved, "absent", Some(format!("`{}` is held by another: {}", t.name, t.holder)))
                }
            },
            Op::Update | Op::Import => match state.resources.get(urn).cloned() {
                Some(rec) => match read_one(rec.outputs.clone()).await? {
                    Some(o) => {
                        let record = Record { inputs: o.over(&rec.inputs), outputs: o.outputs, ..rec };
                        (
                            JournalEntry::Done { urn: urn.clone(), op: Op::Update, record: Some(record) },
                            "refreshed",
                            None,
                        )
                    }
                    None => (JournalEntry::Done { urn: urn.clone(), op: Op::Delete, record: None }, "deleted", None),
                },
                None => (resolved, "absent", None),
            },
            Op::Delete => match state.resources.get(urn).cloned() {
                Some(rec) => match read_one(rec.outputs.clone()).await? {
                    Some(_) => (resolved, "present", None),
                    None => (JournalEntry::Done { urn: urn.clone(), op: Op::Delete, record: None }, "deleted", None),
                },
                None => (resolved, "absent", None),
            },
            Op::DeleteRetired => {
                let mut finding = (resolved, "absent", None);
                for r in state.retired.iter().filter(|r| &r.urn == urn) {
                    if read_one(r.record.outputs.clone()).await?.is_none() {
                        let done = JournalEntry::Done {
                            urn: urn.clone(),
                            op: Op::DeleteRetired,
                            record: Some(r.record.clone()),
                        };
                        finding = (done, "deleted", None);
                        break;
                    }
                    finding.1 = "present";
                }
                finding
            }
        })
    }

    /// Applies a plan made from `graph` against `state`, then records the stack outputs and saves
    /// a snapshot.
    pub async fn apply(&self, graph: Arc<Graph>, state: &mut State, plan: &Plan) -> Result<ApplyReport, EngineError> {
        let report = apply::apply(self, Some(graph.clone()), state, plan).await?;
        // Options that only state holds (protect, retain) follow the program, for the resources
        // this run considered.
        let considered: std::collections::HashSet<&Urn> = plan.steps.iter().map(|s| &s.urn).collect();
        for node in graph.nodes().iter().filter(|n| considered.contains(&n.urn)) {
            let wanted = node.options.recorded();
            if state.resources.get(&node.urn).is_some_and(|r| r.options != wanted) {
                let entry = JournalEntry::Options { urn: node.urn.clone(), options: wanted };
                self.store.record(&entry).await?;
                state.apply(&entry);
            }
        }
        let outputs = apply::resolved_exports(&graph, state);
        let entry = JournalEntry::Outputs { outputs };
        self.store.record(&entry).await?;
        state.apply(&entry);
        self.store.save(state).await?;
        Ok(report)
    }

    /// Reads, for every resource whose `import` option names a cloud id and that state does not
    /// hold yet, what is there (see [`PlanInputs::imports`]). Providers that cannot import are
    /// left out: the plan refuses those resources by name.
    pub async fn read_imports(
        &self,
        graph: &Graph,
        state: &State,
    ) -> Result<std::collections::HashMap<Urn, Option<provider::Observed>>, EngineError> {
        self.read_imports_with(graph, state, &Default::default()).await
    }

    /// [`Engine::read_imports`], with imports asked for outside the program as well (see
    /// [`PlanInputs::import_ids`]).
    pub async fn read_imports_with(
        &self,
        graph: &Graph,
        state: &State,
        import_ids: &std::collections::HashMap<Urn, String>,
    ) -> Result<std::collections::HashMap<Urn, Option<provider::Observed>>, EngineError> {
        let mut found = std::collections::HashMap::new();
        for node in graph.nodes() {
            let Some(id) = import_ids.get(&node.urn).or(node.options.import.as_ref()) else { continue };
            let aliased = node
                .options
                .aliases
                .iter()
                .any(|a| state.resources.contains_key(&Urn::new(node.urn.stack(), node.urn.type_name(), a)));
            if state.resources.contains_key(&node.urn) || aliased || !node.provider.importable() {
                continue;
            }
            let inputs = node.inputs(state).map_err(EngineError::Provider)?;
            let observed = node
                .provider
                .import(&self.ctx, &node.urn, id, &inputs)
                .await
                .map_err(|e| EngineError::Provider(format!("reading {} `{id}` to import it: {e}", node.urn)))?;
            found.insert(node.urn.clone(), observed);
        }
        Ok(found)
    }

    /// Asks the cloud, without changing anything, about every step of `plan` whose provider has
    /// a dry run, and rewrites those steps with its answers (see [`dry_run::dry_run`]).
    pub async fn dry_run(&self, graph: &Graph, state: &State, plan: &mut Plan) -> DryRunReport {
        dry_run::dry_run(&self.ctx, graph, state, plan, self.parallel).await
    }

    /// Deletes everything in state, in reverse dependency order.
    pub async fn destroy(&self, state: &mut State, plan: &Plan) -> Result<ApplyReport, EngineError> {
        let report = apply::apply(self, None, state, plan).await?;
        if state.resources.is_empty() && state.retired.is_empty() {
            state.outputs.clear();
        }
        self.store.save(state).await?;
        Ok(report)
    }

    /// Reads every resource in state (batched per type) and reports drift. With `persist`, the
    /// state is updated to what was read: resources deleted outside fabric leave it, changed
    /// fields take their observed values (so the next deploy puts them back).
    pub async fn refresh(
        &self,
        state: &mut State,
        graph: Option<&Graph>,
        persist: bool,
    ) -> Result<RefreshReport, EngineError> {
        self.refresh_only(state, graph, persist, None).await
    }

    /// [`Engine::refresh`] of the resources in `only` (a targeted refresh), or of all.
    pub async fn refresh_only(
        &self,
        state: &mut State,
        graph: Option<&Graph>,
        persist: bool,
        only: Option<&std::collections::HashSet<Urn>>,
    ) -> Result<RefreshReport, EngineError> {
        let report = match only {
            Some(only) => {
                let mut part = state.clone();
                part.resources.retain(|u, _| only.contains(u));
                refresh::refresh(&self.ctx, |t| self.provider(t, graph), &part).await?
            }
            None => refresh::refresh(&self.ctx, |t| self.provider(t, graph), state).await?,
        };
        if persist && !report.drift.is_empty() {
            for d in &report.drift {
                let record = match &d.observed {
                    Some(observed) => state.resources.get(&d.urn).map(|r| Record {
                        inputs: observed.inputs.clone(),
                        outputs: observed.outputs.clone(),
                        ..r.clone()
                    }),
                    None => None,
                };
                let entry = match record {
                    Some(r) => JournalEntry::Done { urn: d.urn.clone(), op: Op::Update, record: Some(r) },
                    None => JournalEntry::Done { urn: d.urn.clone(), op: Op::Delete, record: None },
                };
                self.store.record(&entry).await?;
                state.apply(&entry);
            }
            self.store.save(state).await?;
        } else if !persist {
            refresh::apply_in_memory(state, &report);
        }
        Ok(report)
    }
}
