//! Apply: turns a plan into a DAG of provider calls, journals each one, and runs them.

use super::executor::{Outcome, TaskFuture, run_dag};
use super::plan::{Plan, StepOp};
use super::provider::{Ctx, Registry, with_wait_limit, witnessed};
use super::{EngineError, Observer};
use crate::model::{Graph, Urn, contains_unknown};
use crate::state::{JournalEntry, Op, Record, State, StateStore};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// One provider call of an apply.
#[derive(Clone, Debug)]
struct Task {
    urn: Urn,
    op: Op,
    /// For deletes of retired instances: which one.
    retired: Option<Record>,
    /// A delete that only leaves state: the cloud object is now this other resource.
    moved_to: Option<Urn>,
    /// A delete that leaves the resource in the cloud (`retain_on_delete`).
    retain: bool,
    /// An import: the record of what was read, entered in state before any update.
    imported: Option<Record>,
}

impl Task {
    fn new(urn: &Urn, op: Op) -> Self {
        Task { urn: urn.clone(), op, retired: None, moved_to: None, retain: false, imported: None }
    }
}

/// How each step of an apply ended.
#[derive(Clone, Debug, PartialEq)]
pub struct StepResult {
    pub urn: Urn,
    pub op: Op,
    pub outcome: Outcome,
    /// For skipped steps: the step whose failure stopped this one.
    pub blocked_by: Option<Urn>,
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyReport {
    pub results: Vec<StepResult>,
}

impl ApplyReport {
    pub fn failed(&self) -> impl Iterator<Item = &StepResult> {
        self.results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_)))
    }

    pub fn skipped(&self) -> impl Iterator<Item = &StepResult> {
        self.results.iter().filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
    }

    pub fn ok(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Done)
    }

    pub fn done(&self) -> usize {
        self.results.iter().filter(|r| r.outcome == Outcome::Done).count()
    }
}

/// Shared by the tasks of one apply: the state (journalled on every change) and what they need.
struct Shared {
    state: tokio::sync::Mutex<State>,
    store: Arc<StateStore>,
    ctx: Ctx,
    registry: Registry,
    observer: Arc<dyn Observer>,
}

impl Shared {
    /// Records `entry` in the journal and in memory, in the same order for both, and returns
    /// once it is durable. Concurrent steps share one flush (group commit).
    async fn commit(&self, entry: JournalEntry) -> Result<(), String> {
        let ticket = {
            let mut state = self.state.lock().await;
            state.apply(&entry);
            self.store.enqueue(&entry)
        };
        self.store.durable(ticket).await.map_err(|e| format!("cannot write the journal: {e}"))
    }
}

/// Builds the task DAG of `plan`: creates, updates and the create half of replacements after the
/// steps of what they depend on; deletes (and the delete half of replacements) after everything
/// that referred to the old instance has let go of it.
fn build_tasks(plan: &Plan, graph: Option<&Graph>, state: &State) -> (Vec<Task>, Vec<Vec<usize>>) {
    let mut tasks: Vec<Task> = Vec::new();
    let mut main: HashMap<Urn, usize> = HashMap::new(); // create / update / replace-create
    let mut removal: HashMap<Urn, usize> = HashMap::new(); // delete / delete-retired (of the current old instance)
    let mut retired_tasks: Vec<(usize, Record)> = Vec::new();
    for step in &plan.steps {
        match (step.op, step.retired) {
            (StepOp::Same, _) => {}
            (StepOp::Create, _) => {
                main.insert(step.urn.clone(), tasks.len());
                tasks.push(Task::new(&step.urn, Op::Create));
            }
            (StepOp::Update, _) => {
                main.insert(step.urn.clone(), tasks.len());
                tasks.push(Task::new(&step.urn, Op::Update));
            }
            (StepOp::Import, _) => {
                main.insert(step.urn.clone(), tasks.len());
                let imported = step.imported.as_ref().map(|o| Record {
                    type_name: step.type_name.clone(),
                    inputs: o.inputs.clone(),
                    outputs: o.outputs.clone(),
                    deps: graph.and_then(|g| g.get(&step.urn)).map(|n| n.deps.clone()).unwrap_or_default(),
                    options: graph.and_then(|g| g.get(&step.urn)).map(|n| n.options.recorded()).unwrap_or_default(),
                });
                tasks.push(Task { imported, ..Task::new(&step.urn, Op::Import) });
            }
            (StepOp::Replace, _) if step.delete_first => {
                // The old instance goes first; the new one is created after it (a plain create).
                removal.insert(step.urn.clone(), tasks.len());
                tasks.push(Task { retain: step.retain, ..Task::new(&step.urn, Op::Delete) });
                main.insert(step.urn.clone(), tasks.len());
                tasks.push(Task::new(&step.urn, Op::Create));
            }
            (StepOp::Replace, _) => {
                main.insert(step.urn.clone(), tasks.len());
                tasks.push(Task::new(&step.urn, Op::Replace));
                removal.insert(step.urn.clone(), tasks.len());
                let old = state.resources.get(&step.urn).cloned();
                tasks.push(Task { retired: old, retain: step.retain, ..Task::new(&step.urn, Op::DeleteRetired) });
            }
            (StepOp::Delete, false) => {
                removal.insert(step.urn.clone(), tasks.len());
                tasks.push(Task {
                    moved_to: step.moved_to.clone(),
                    retain: step.retain,
                    ..Task::new(&step.urn, Op::Delete)
                });
            }
            (StepOp::Delete, true) => {}
        }
    }
    // Old instances still to delete: those the plan kept (a targeted run may leave some out).
    let retired_in_plan: std::collections::HashSet<&Urn> =
        plan.steps.iter().filter(|s| s.retired).map(|s| &s.urn).collect();
    for r in state.retired.iter().filter(|r| retired_in_plan.contains(&r.urn)) {
        retired_tasks.push((tasks.len(), r.record.clone()));
        let retain = r.record.options.retain_on_delete;
        tasks.push(Task { retired: Some(r.record.clone()), retain, ..Task::new(&r.urn, Op::DeleteRetired) });
    }

    // Who referred to each resource when it was recorded (old instances).
    let mut old_dependents: HashMap<&Urn, Vec<usize>> = HashMap::new();
    for (urn, rec) in &state.resources {
        // The task that makes `urn` stop referring to its old dependencies.
        let letting_go = removal.get(urn).copied().or_else(|| main.get(urn).copied());
        if let Some(t) = letting_go {
            for d in &rec.deps {
                old_dependents.entry(d).or_default().push(t);
            }
        }
    }
    for (t, rec) in &retired_tasks {
        for d in &rec.deps {
            old_dependents.entry(d).or_default().push(*t);
        }
    }

    let delete_first: std::collections::HashSet<&Urn> =
        plan.steps.iter().filter(|s| s.delete_first).map(|s| &s.urn).collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    // What the run makes or changes (the create half of a delete-first replacement waits for
    // its delete, so it is left out: that delete must come first).
    let makes: Vec<usize> = tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            matches!(t.op, Op::Create | Op::Update | Op::Replace | Op::Import) && !delete_first.contains(&t.urn)
        })
        .map(|(i, _)| i)
        .collect();
    for (i, task) in tasks.iter().enumerate() {
        match task.op {
            Op::Create | Op::Update | Op::Replace | Op::Import => {
                if let Some(node) = graph.and_then(|g| g.get(&task.urn)) {
                    deps[i].extend(node.deps.iter().filter_map(|d| main.get(d).copied()));
                }
                if delete_first.contains(&task.urn)
                    && let Some(&r) = removal.get(&task.urn)
                {
                    deps[i].push(r);
                }
            }
            // The delete half of a delete-first replacement waits only for dependents that go
            // away: those that stay are re-pointed at the new instance after it exists (the
            // cloud refuses the delete while something still uses it, and nothing is lost).
            Op::Delete if delete_first.contains(&task.urn) => {
                if let Some(ts) = old_dependents.get(&task.urn) {
                    deps[i].extend(
                        ts.iter().copied().filter(|&t| t != i && matches!(tasks[t].op, Op::Delete | Op::DeleteRetired)),
                    );
                }
            }
            // Forgotten only once its successor is applied.
            Op::Delete if task.moved_to.is_some() => {
                deps[i].extend(task.moved_to.as_ref().and_then(|to| main.get(to)).copied());
            }
            Op::Delete | Op::DeleteRetired => {
                // Deletes run last, after every create, update and replacement of the run: a
                // run that fails stops before anything is gone, so the way back (`deploy
                // --atomic`, `rollback`) still has every old instance to return to.
                deps[i].extend(makes.iter().copied());
                // An old instance goes after the new one is made (or updated): never without a
                // successor, and under the resource's latest settings.
                if task.op == Op::DeleteRetired
                    && let Some(&m) = main.get(&task.urn)
                {
                    deps[i].push(m);
                }
                if let Some(ts) = old_dependents.get(&task.urn) {
                    deps[i].extend(ts.iter().copied().filter(|&t| t != i));
                }
            }
        }
        deps[i].sort_unstable();
        deps[i].dedup();
    }
    (tasks, deps)
}

async fn run_task(shared: Arc<Shared>, graph: Option<Arc<Graph>>, task: Task) -> Result<(), String> {
    let urn = &task.urn;
    match task.op {
        Op::Create | Op::Update | Op::Replace | Op::Import => {
            let graph = graph.expect("creates and updates come from a graph");
            let node = graph.get(urn).expect("planned from this graph");
            if let Some(record) = &task.imported {
                // Values known only now (other resources' outputs) must not force a replacement
                // either: checked before anything is recorded.
                let desired = node.inputs(&*shared.state.lock().await)?;
                let forcing = super::plan::import_conflicts(node.provider.replace_on(), &record.inputs, &desired);
                if !forcing.is_empty() {
                    return Err(format!(
                        "importing it would replace it: {}; nothing was recorded\n    fix: make the program match the live resource in these fields, or create a new resource instead of importing this one",
                        forcing.join("; ")
                    ));
                }
                // Adopted as it is; an update follows where the program differs.
                shared.commit(JournalEntry::Recorded { urn: urn.clone(), record: record.clone() }).await?;
            }
            let (inputs, old) = {
                let state = shared.state.lock().await;
                let old = state.resources.get(urn).cloned();
                let inputs = super::plan::effective_inputs(node.inputs(&*state)?, old.as_ref(), &node.options);
                (inputs, old)
            };
            let op = match task.op {
                Op::Import => match &old {
                    Some(old) if old.inputs == inputs => return Ok(()),
                    _ => Op::Update,
                },
                op => op,
            };
            if contains_unknown(&inputs) {
                return Err(format!("internal error: inputs of {urn} still refer to unknown outputs: {inputs}"));
            }
            if let Some(p) = shared.state.lock().await.pending.get(urn) {
                // Left by an earlier run, and recovery could not tell whether it happened: doing it
                // again could make a second one.
                return Err(unsettled_refusal(urn, p.op));
            }
            shared
                .commit(JournalEntry::Intent {
                    urn: urn.clone(),
                    op,
                    type_name: node.type_name().to_string(),
                    inputs: inputs.clone(),
                    deps: node.deps.clone(),
                })
                .await?;
            let p = &node.provider;
            let timeouts = &node.options.timeouts;
            let (result, may_have_changed) = match (op, &old) {
                (Op::Update, Some(old)) => {
                    let update = p.update(&shared.ctx, urn, &old.inputs, &old.outputs, &inputs);
                    witnessed(with_wait_limit(timeouts.update, update)).await
                }
                _ => witnessed(with_wait_limit(timeouts.create, p.create(&shared.ctx, urn, &inputs))).await,
            };
            let result = match (result, op, &old) {
                (Ok(outputs), Op::Replace, Some(old)) => {
                    verify_replacement(&shared.ctx, p.as_ref(), urn, old, &inputs, outputs).await
                }
                (result, ..) => result,
            };
            match result {
                Ok(outputs) => {
                    let record = Record {
                        type_name: node.type_name().to_string(),
                        inputs,
                        outputs,
                        deps: node.deps.clone(),
                        options: node.options.recorded(),
                    };
                    shared.commit(JournalEntry::Done { urn: urn.clone(), op, record: Some(record) }).await
                }
                Err(e) => {
                    let definite = !may_have_changed;
                    shared.commit(JournalEntry::Failed { urn: urn.clone(), op, error: e.0.clone(), definite }).await?;
                    Err(e.0)
                }
            }
        }
        Op::Delete | Op::DeleteRetired => {
            let record = match &task.retired {
                // Retired when the replacement was made — unless the replacement turned out to be
                // the same instance, which stays.
                Some(r) => {
                    shared.state.lock().await.retired.iter().any(|x| &x.urn == urn && &x.record == r).then(|| r.clone())
                }
                None => shared.state.lock().await.resources.get(urn).cloned(),
            };
            let Some(record) = record else { return Ok(()) };
            if task.moved_to.is_some() {
                // The same object is managed under its new URN now: leave the cloud alone.
                return shared.commit(JournalEntry::Done { urn: urn.clone(), op: task.op, record: Some(record) }).await;
            }
            if task.retain {
                // Left in the cloud (`retain_on_delete`); the journal keeps the record.
                let entry = match task.op {
                    Op::DeleteRetired => JournalEntry::Done { urn: urn.clone(), op: task.op, record: Some(record) },
                    _ => JournalEntry::Forgotten { urn: urn.clone(), record },
                };
                return shared.commit(entry).await;
            }
            let provider = shared
                .registry
                .get(&record.type_name)
                .ok_or_else(|| format!("no provider for type `{}`", record.type_name))?;
            shared
                .commit(JournalEntry::Intent {
                    urn: urn.clone(),
                    op: task.op,
                    type_name: record.type_name.clone(),
                    inputs: record.inputs.clone(),
                    deps: record.deps.clone(),
                })
                .await?;
            // An old instance is deleted under the resource's current settings (deletion
            // protection, final snapshot): the program's latest word on how it may go.
            let policy = match task.op {
                Op::DeleteRetired => shared.state.lock().await.resources.get(urn).map(|r| r.inputs.clone()),
                _ => None,
            };
            let inputs = policy.as_ref().unwrap_or(&record.inputs);
            let limit = record.options.delete_timeout;
            let (result, may_have_changed) =
                witnessed(with_wait_limit(limit, provider.delete(&shared.ctx, urn, inputs, &record.outputs))).await;
            match result {
                Ok(()) => {
                    shared.commit(JournalEntry::Done { urn: urn.clone(), op: task.op, record: Some(record) }).await
                }
                Err(e) => {
                    let definite = !may_have_changed;
                    let entry = JournalEntry::Failed { urn: urn.clone(), op: task.op, error: e.0.clone(), definite };
                    shared.commit(entry).await?;
                    Err(e.0)
                }
            }
        }
    }
}

/// The refusal of a step whose earlier attempt recovery could not settle, with how to settle it.
pub fn unsettled_refusal(urn: &Urn, op: Op) -> String {
    format!(
        "an earlier {} of {urn} may or may not have happened, and recovery could not tell, so it is not tried again (it could make a second one)\n    fix: {}",
        op.verb(),
        settle_hint(urn)
    )
}

/// How a user settles a pending operation recovery could not settle (the commands as
/// `cargo xtask` takes them; `<stack>` is the stack's crate, with its `--env`).
pub fn settle_hint(urn: &Urn) -> String {
    format!(
        "if it exists, adopt it with `cargo xtask import <stack> {urn} <cloud-id>`; if it does not, say so with `cargo xtask state <stack> settle {urn}`; then deploy again"
    )
}

/// A replacement is reported as done only when the cloud shows a new instance with the new
/// settings: a "new" instance that is the old one (same identity), or that a read shows still
/// holding the old values of the fields that forced the replacement, is an error — nothing was
/// replaced, and the old instance is kept.
async fn verify_replacement(
    ctx: &Ctx,
    provider: &dyn super::Provider,
    urn: &Urn,
    old: &Record,
    desired: &Value,
    outputs: Value,
) -> Result<Value, super::ProviderError> {
    if old.type_name == provider.type_name() && outputs == old.outputs {
        return Err(super::ProviderError(format!(
            "the replacement of {urn} found the old instance again (the cloud gave the same identity: {}), so nothing was replaced and the old instance stays\n    fix: this resource type must give a replacement a new name; report it as a fabric bug",
            outputs
        )));
    }
    let observed = provider.read_many(ctx, &[(urn.clone(), outputs.clone())]).await?.pop().flatten();
    let Some(observed) = observed else {
        return Err(super::ProviderError(format!(
            "the replacement of {urn} was created, but a read right after cannot find it: {outputs}"
        )));
    };
    let stale: Vec<String> = provider
        .replace_on()
        .iter()
        .filter_map(|f| {
            let seen = observed.inputs.get(*f)?;
            (Some(seen) != desired.get(*f) && Some(seen) == old.inputs.get(*f))
                .then(|| format!("{f} is {seen}, not {}", desired.get(*f).cloned().unwrap_or(Value::Null)))
        })
        .collect();
    if !stale.is_empty() {
        return Err(super::ProviderError(format!(
            "the replacement of {urn} did not take: the cloud still shows the old settings ({})",
            stale.join("; ")
        )));
    }
    Ok(outputs)
}

/// Applies `plan`, journalling every step into `store` and updating `state`.
pub(super) async fn apply(
    engine: &super::Engine,
    graph: Option<Arc<Graph>>,
    state: &mut State,
    plan: &Plan,
) -> Result<ApplyReport, EngineError> {
    let (ctx, registry, store, observer, parallel) =
        (&engine.ctx, &engine.registry, engine.store.clone(), engine.observer.clone(), engine.parallel);
    // Renames first (aliases): every later step finds the record under its new URN.
    for step in plan.steps.iter().filter(|s| s.renamed_from.is_some()) {
        let entry = JournalEntry::Renamed { from: step.renamed_from.clone().expect("filtered"), to: step.urn.clone() };
        store.record(&entry).await?;
        state.apply(&entry);
    }
    let (tasks, deps) = build_tasks(plan, graph.as_deref(), state);
    let mut registry = registry.clone();
    if let Some(g) = &graph {
        for n in g.nodes() {
            if registry.get(n.type_name()).is_none() {
                registry.register(n.provider.clone());
            }
        }
    }
    let shared = Arc::new(Shared {
        state: tokio::sync::Mutex::new(std::mem::take(state)),
        store,
        ctx: ctx.clone(),
        registry,
        observer,
    });
    let tasks = Arc::new(tasks);
    let outcomes = {
        let shared = shared.clone();
        let tasks = tasks.clone();
        run_dag(&deps, parallel, &engine.stop, move |i| {
            let shared = shared.clone();
            let graph = graph.clone();
            let task = tasks[i].clone();
            let fut: TaskFuture = Box::pin(async move {
                shared.observer.started(&task.urn, task.op);
                let t0 = Instant::now();
                let result = run_task(shared.clone(), graph, task.clone()).await;
                shared.observer.finished(&task.urn, task.op, result.as_ref().err().map(String::as_str), t0.elapsed());
                result
            });
            fut
        })
        .await
    };
    let results: Vec<StepResult> = tasks
        .iter()
        .zip(outcomes)
        .map(|(t, outcome)| {
            let blocked_by = match outcome {
                Outcome::Skipped(j) => tasks.get(j).map(|b| b.urn.clone()),
                _ => None,
            };
            match (&outcome, &blocked_by) {
                (_, Some(b)) => shared.observer.skipped(&t.urn, t.op, b),
                (Outcome::Skipped(_), None) => shared.observer.interrupted(&t.urn, t.op),
                _ => {}
            }
            StepResult { urn: t.urn.clone(), op: t.op, outcome, blocked_by }
        })
        .collect();
    *state = std::mem::take(&mut *shared.state.lock().await);
    Ok(ApplyReport { results })
}

/// Inputs of the program's resources resolved against state (for exports after apply).
pub fn resolved_exports(graph: &Graph, state: &State) -> std::collections::BTreeMap<String, Value> {
    graph.exports(state)
}
