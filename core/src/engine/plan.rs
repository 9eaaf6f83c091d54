//! The plan: a pure function of the graph and the state → the steps that make the cloud match the
//! program.

use super::provider::{Observed, Provider, Registry};
use super::select::Selection;
use crate::model::options::keep_ignored;
use crate::model::{Graph, Options, RecordedOptions, Urn, contains_unknown};
use crate::state::State;
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StepOp {
    Create,
    Update,
    /// Create the new instance, repoint dependents, then delete the old one.
    Replace,
    Delete,
    Same,
    /// Adopt an existing resource (the `import` option): recorded without being created, then
    /// updated where it differs from the program.
    Import,
}

impl StepOp {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOp::Create => "create",
            StepOp::Update => "update",
            StepOp::Replace => "replace",
            StepOp::Delete => "delete",
            StepOp::Same => "same",
            StepOp::Import => "import",
        }
    }
}

/// One changed input field; `None` for a side that has no value. Unknown values are markers
/// (`{"$unknown": …}`), shown as `(known after apply)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub forces_replace: bool,
    /// The provider's one-line stand-in for a whole value created or deleted (a Kubernetes
    /// manifest: its kind and name), shown in its place ([`Provider::summarize`]).
    #[serde(skip)]
    pub summary: Option<String>,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub urn: Urn,
    #[serde(rename = "type")]
    pub type_name: String,
    pub op: StepOp,
    /// The input fields that change (every field for a create).
    pub changes: Vec<FieldChange>,
    /// A delete of the old instance of a resource replaced earlier, whose delete did not finish.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
    /// A replacement that deletes the old instance first (its provider cannot hold two at once).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_first: bool,
    /// A removed resource whose cloud identity a created one now has (a Kubernetes object whose
    /// `apiVersion` changed): nothing is deleted; it leaves state once that one is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<Urn>,
    /// What the cloud's dry run added to the plan (fields another manager changed, which deploy
    /// puts back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the resource's options do in this step (`protect: on, recorded in state`, …): shown
    /// with the step, even an unchanged one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The resource was recorded under this URN (an alias): its record moves, nothing is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<Urn>,
    /// A delete (or the delete of a replaced instance) that leaves the resource in the cloud and
    /// drops it from state (`retain_on_delete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain: bool,
    /// For an import: the cloud id, and what was read of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<String>,
    #[serde(skip)]
    pub imported: Option<Observed>,
}

impl Step {
    /// A step with nothing but its resource, kind and changes.
    pub fn new(urn: Urn, type_name: impl Into<String>, op: StepOp, changes: Vec<FieldChange>) -> Self {
        Step {
            urn,
            type_name: type_name.into(),
            op,
            changes,
            retired: false,
            delete_first: false,
            moved_to: None,
            notes: Vec::new(),
            options: Vec::new(),
            renamed_from: None,
            retain: false,
            import_id: None,
            imported: None,
        }
    }
}

/// Steps in the order they are shown: the program's resources in dependency order, then deletes in
/// reverse dependency order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub stack: String,
    pub steps: Vec<Step>,
    /// A targeted run (`--target`, `--exclude`): what was left out, said with the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
}

/// How many steps of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub same: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub import: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for step in &self.steps {
            match step.op {
                StepOp::Create => s.create += 1,
                StepOp::Update => s.update += 1,
                StepOp::Replace => s.replace += 1,
                StepOp::Delete => s.delete += 1,
                StepOp::Same => s.same += 1,
                StepOp::Import => s.import += 1,
            }
        }
        s
    }

    /// Whether applying would change anything (in the cloud or in state).
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.op != StepOp::Same || s.renamed_from.is_some())
    }
}

/// A problem that stops planning (never a cloud call: planning makes none).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{urn}: cannot compute inputs: {message}")]
    Inputs { urn: Urn, message: String },
    #[error("{urn} is in state as type `{type_name}`, which this program does not know how to delete\n    fix: {fix}")]
    UnknownType { urn: Urn, type_name: String, fix: String },
    /// Resources with `protect` that the plan would delete or replace.
    #[error("{}", protected_message(.0))]
    Protected(Vec<(Urn, &'static str)>),
    #[error(
        "{urn}: importing `{id}` would replace it: {fields}\n    fix: make the program match the live resource in these fields (they cannot change in place), or create a new resource instead of importing this one"
    )]
    ImportWouldReplace { urn: Urn, id: String, fields: String },
    #[error(
        "{urn}: there is no {type_name} `{id}` to import\n    fix: check the id (`cargo xtask import <stack> --discover` lists what can be imported), or remove the import option to create it"
    )]
    ImportMissing { urn: Urn, type_name: String, id: String },
    #[error(
        "{urn}: {type_name} cannot be imported (its provider has no import)\n    fix: remove the import option; to adopt it anyway, tag it `fabric:stack`/`fabric:urn` and deploy"
    )]
    ImportUnsupported { urn: Urn, type_name: String },
    #[error("{0}")]
    Selection(String),
}

fn protected_message(refused: &[(Urn, &'static str)]) -> String {
    let mut out = format!(
        "the plan would {} {} protected resource{}; nothing was changed:",
        if refused.iter().all(|(_, what)| *what == "delete") { "delete" } else { "delete or replace" },
        refused.len(),
        if refused.len() == 1 { "" } else { "s" }
    );
    for (urn, what) in refused {
        out.push_str(&format!("\n  - {} would be {what}d (option `protect`)", urn.display_short()));
    }
    out.push_str(
        "\n    fix: if that is meant, lift the protection first: remove `protect` from its options and deploy (or run `cargo xtask state <stack> unprotect <urn>`), then run this again",
    );
    out
}

/// The changed top-level fields between recorded and desired inputs.
pub fn diff(old: &Value, new: &Value, replace_on: &[&str]) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let old_map = old.as_object().unwrap_or(&empty);
    let new_map = new.as_object().unwrap_or(&empty);
    let mut fields: Vec<&String> = new_map.keys().collect();
    fields.extend(old_map.keys().filter(|k| !new_map.contains_key(*k)));
    let mut out = Vec::new();
    for field in fields {
        let (o, n) = (old_map.get(field), new_map.get(field));
        let changed = match (o, n) {
            (_, Some(n)) if contains_unknown(n) => true,
            (o, n) => o != n,
        };
        if changed {
            out.push(FieldChange {
                field: field.clone(),
                old: o.cloned(),
                new: n.cloned(),
                forces_replace: replace_on.contains(&field.as_str()),
                summary: None,
            });
        }
    }
    out
}

/// `changes` of a whole create or delete, each with the provider's stand-in where it has one.
fn summarized(mut changes: Vec<FieldChange>, provider: &dyn Provider) -> Vec<FieldChange> {
    for c in &mut changes {
        if let Some(value) = c.new.as_ref().or(c.old.as_ref()) {
            c.summary = provider.summarize(&c.field, value);
        }
    }
    changes
}

/// Plans `graph` against `state`.
///
/// Outputs of resources that stay the same or are updated in place are taken from state, so that
/// references to them resolve and unchanged dependents plan as `same`; outputs of created and
/// replaced resources are unknown until apply. (A provider whose in-place update changes an output
/// must list the field that causes it in its `replace_on`.)
pub fn plan(graph: &Graph, state: &State, registry: &Registry) -> Result<Plan, PlanError> {
    plan_with(graph, state, registry, &PlanInputs::default())
}

/// What planning needs beyond the program and state: the resources to import as read from the
/// cloud, and the part of the stack a targeted run touches.
#[derive(Default)]
pub struct PlanInputs {
    /// What was read of each resource whose `import` option names a cloud id (`None`: there is
    /// no such resource).
    pub imports: HashMap<Urn, Option<Observed>>,
    pub selection: Option<Selection>,
    /// Imports asked for outside the program (`import <urn> <id>`), as if by the option.
    pub import_ids: HashMap<Urn, String>,
}

/// [`plan`], with imports and a selection.
pub fn plan_with(graph: &Graph, state: &State, registry: &Registry, extra: &PlanInputs) -> Result<Plan, PlanError> {
    let mut known: HashMap<Urn, Value> = HashMap::with_capacity(graph.nodes().len());
    let mut steps = Vec::with_capacity(graph.nodes().len() + state.retired.len());
    let mut created_identities: HashMap<String, Urn> = HashMap::new();
    let mut protected: Vec<(Urn, &'static str)> = Vec::new();
    let mut renamed: HashSet<&Urn> = HashSet::new();
    for node in graph.nodes() {
        let desired = node.inputs(&known).map_err(|message| PlanError::Inputs { urn: node.urn.clone(), message })?;
        // A record under one of the resource's old names is its record (an alias).
        let alias =
            (!state.resources.contains_key(&node.urn))
                .then(|| {
                    node.options.aliases.iter().map(|a| Urn::new(node.urn.stack(), node.urn.type_name(), a)).find(
                        |old| state.resources.contains_key(old) && graph.get(old).is_none() && !renamed.contains(old),
                    )
                })
                .flatten();
        let recorded = match &alias {
            Some(old) => {
                let (k, r) = state.resources.get_key_value(old).expect("found above");
                renamed.insert(k);
                Some(r)
            }
            None => state.resources.get(&node.urn),
        };
        if recorded.is_none()
            && let Some(id) = node.provider.identity(&desired, None)
        {
            created_identities.insert(id, node.urn.clone());
        }
        let mut options_said = Vec::new();
        let inputs = match recorded {
            Some(rec) if !node.options.ignore_changes.is_empty() && rec.type_name == node.type_name() => {
                let kept = keep_ignored(&desired, &rec.inputs, &node.options.ignore_changes);
                for path in &node.options.ignore_changes {
                    let at = |v: &Value| path.split('.').try_fold(v.clone(), |v, p| v.get(p).cloned());
                    if at(&desired) != at(&kept) {
                        options_said.push(format!(
                            "ignore_changes: `{path}` differs in the program ({}); the recorded value is kept",
                            super::shown::show_value(at(&desired).as_ref())
                        ));
                    }
                }
                kept
            }
            _ => desired,
        };
        let mut import_id = None;
        let mut imported = None;
        let (op, changes) = match recorded {
            None => match extra.import_ids.get(&node.urn).or(node.options.import.as_ref()) {
                Some(id) => {
                    let observed = match extra.imports.get(&node.urn) {
                        Some(Some(o)) => o.clone(),
                        Some(None) => {
                            return Err(PlanError::ImportMissing {
                                urn: node.urn.clone(),
                                type_name: node.type_name().into(),
                                id: id.clone(),
                            });
                        }
                        None => {
                            return Err(PlanError::ImportUnsupported {
                                urn: node.urn.clone(),
                                type_name: node.type_name().into(),
                            });
                        }
                    };
                    // Fields the provider cannot read back (a password) are taken as the program's.
                    let live = observed.over(&inputs);
                    let mut changes = diff(&live, &inputs, node.provider.replace_on());
                    // A value known only after apply (another resource's output) is compared
                    // then, before anything is recorded (see apply).
                    for c in changes.iter_mut().filter(|c| c.new.as_ref().is_some_and(contains_unknown)) {
                        c.forces_replace = false;
                    }
                    let forcing = import_conflicts(node.provider.replace_on(), &live, &inputs);
                    if !forcing.is_empty() {
                        return Err(PlanError::ImportWouldReplace {
                            urn: node.urn.clone(),
                            id: id.clone(),
                            fields: forcing.join("; "),
                        });
                    }
                    known.insert(node.urn.clone(), observed.outputs.clone());
                    import_id = Some(id.clone());
                    imported = Some(Observed { inputs: live, ..observed });
                    (StepOp::Import, changes)
                }
                None => (StepOp::Create, summarized(diff(&Value::Null, &inputs, &[]), node.provider.as_ref())),
            },
            Some(rec) if rec.type_name != node.type_name() => {
                let mut changes = diff(&Value::Null, &inputs, &[]);
                changes.iter_mut().for_each(|c| c.forces_replace = true);
                (StepOp::Replace, changes)
            }
            Some(rec) => {
                let changes = diff(&rec.inputs, &inputs, node.provider.replace_on());
                let op = if changes.is_empty() {
                    StepOp::Same
                } else if changes.iter().any(|c| c.forces_replace) {
                    StepOp::Replace
                } else {
                    StepOp::Update
                };
                if op != StepOp::Replace {
                    known.insert(node.urn.clone(), rec.outputs.clone());
                }
                (op, changes)
            }
        };
        if op == StepOp::Replace && (node.options.protect || recorded.is_some_and(|r| r.options.protect)) {
            protected.push((node.urn.clone(), "replace"));
        }
        let same_type = recorded.is_some_and(|r| r.type_name == node.type_name());
        let delete_first = op == StepOp::Replace
            && same_type
            && (node.provider.delete_before_replace() || node.options.delete_before_replace);
        if delete_first && node.options.delete_before_replace && !node.provider.delete_before_replace() {
            options_said.push("delete_before_replace: the old instance is deleted before the new one is made".into());
        }
        let retain = op == StepOp::Replace
            && (node.options.retain_on_delete || recorded.is_some_and(|r| r.options.retain_on_delete));
        if retain {
            options_said.push("retain_on_delete: the old instance is left in the cloud and dropped from state".into());
        }
        options_said.extend(option_changes(recorded.map(|r| r.options), &node.options));
        options_said.extend(timeout_lines(op, &node.options));
        let mut step = Step::new(node.urn.clone(), node.type_name(), op, changes);
        if op == StepOp::Update {
            let fields: Vec<&str> = step.changes.iter().map(|c| c.field.as_str()).collect();
            step.notes = node.provider.update_notes(&fields, &inputs);
        }
        step.delete_first = delete_first;
        step.retain = retain;
        step.options = options_said;
        step.renamed_from = alias;
        step.import_id = import_id;
        step.imported = imported;
        steps.push(step);
    }

    let desired: HashSet<&Urn> = graph.nodes().iter().map(|n| &n.urn).collect();
    let removed: Vec<&Urn> = state.resources.keys().filter(|u| !desired.contains(u) && !renamed.contains(u)).collect();
    let mut deletes = delete_steps(state, &removed, registry)?;
    for step in deletes.iter_mut().filter(|s| !s.retired) {
        let rec = &state.resources[&step.urn];
        let identity = registry.get(&rec.type_name).and_then(|p| p.identity(&rec.inputs, Some(&rec.outputs)));
        step.moved_to = identity.and_then(|id| created_identities.get(&id).cloned());
    }
    steps.extend(deletes);
    let mut plan = Plan { stack: graph.stack().to_string(), steps, partial: None };
    if let Some(selection) = &extra.selection {
        selection.restrict(&mut plan, Some(graph), state);
    }
    protected.retain(|(urn, _)| plan.steps.iter().any(|s| &s.urn == urn));
    protected.extend(protected_deletes(&plan, state));
    if !protected.is_empty() {
        return Err(PlanError::Protected(protected));
    }
    Ok(plan)
}

/// The replace-forcing fields in which an imported resource (`live`) differs from the program
/// (`desired`), said as `` `f` is X in the cloud and Y in the program``; values known only at apply
/// are left for apply to check.
pub(super) fn import_conflicts(replace_on: &[&str], live: &Value, desired: &Value) -> Vec<String> {
    replace_on
        .iter()
        .filter(|f| desired.get(**f).is_none_or(|v| !contains_unknown(v)) && live.get(**f) != desired.get(**f))
        .map(|f| {
            let show = |v: Option<&Value>| super::shown::show_value(v);
            format!("`{f}` is {} in the cloud and {} in the program", show(live.get(*f)), show(desired.get(*f)))
        })
        .collect()
}

/// Deletes of protected resources in `plan` (the protection recorded in state holds when the
/// resource has left the program).
fn protected_deletes(plan: &Plan, state: &State) -> Vec<(Urn, &'static str)> {
    plan.steps
        .iter()
        .filter(|s| s.op == StepOp::Delete && !s.retired && s.moved_to.is_none())
        .filter(|s| state.resources.get(&s.urn).is_some_and(|r| r.options.protect))
        .map(|s| (s.urn.clone(), "delete"))
        .collect()
}

/// What a change of the recorded options does, said with the step.
fn option_changes(recorded: Option<RecordedOptions>, options: &Options) -> Vec<String> {
    let Some(old) = recorded else { return Vec::new() };
    let new = options.recorded();
    let mut out = Vec::new();
    if old.protect != new.protect {
        out.push(if new.protect {
            "protect: on (recorded in state: delete and replace are refused from now on)".to_string()
        } else {
            "protect: lifted (recorded in state)".to_string()
        });
    }
    if old.retain_on_delete != new.retain_on_delete {
        out.push(format!("retain_on_delete: {} (recorded in state)", if new.retain_on_delete { "on" } else { "off" }));
    }
    out
}

/// The custom timeouts that apply to this step.
fn timeout_lines(op: StepOp, options: &Options) -> Vec<String> {
    let t = &options.timeouts;
    let (what, limit) = match op {
        StepOp::Create | StepOp::Replace => ("create", t.create),
        StepOp::Update | StepOp::Import => ("update", t.update),
        _ => return Vec::new(),
    };
    limit
        .map(|d| vec![format!("custom_timeouts: {what} waits up to {}", humantime::format_duration(d))])
        .unwrap_or_default()
}

/// Where a step's changes are not applied because of `ignore_changes`, plan and apply agree:
/// the inputs an apply sends for `node`, given what state recorded.
pub fn effective_inputs(desired: Value, recorded: Option<&crate::state::Record>, options: &Options) -> Value {
    match recorded {
        Some(rec) if !options.ignore_changes.is_empty() => keep_ignored(&desired, &rec.inputs, &options.ignore_changes),
        _ => desired,
    }
}

/// A plan that deletes everything in state.
pub fn plan_destroy(state: &State, registry: &Registry) -> Result<Plan, PlanError> {
    plan_destroy_with(state, registry, None)
}

/// [`plan_destroy`] of a selection (`--target`: those and what depends on them).
pub fn plan_destroy_with(state: &State, registry: &Registry, selection: Option<&Selection>) -> Result<Plan, PlanError> {
    let all: Vec<&Urn> = state.resources.keys().collect();
    let mut plan = Plan { stack: state.stack.clone(), steps: delete_steps(state, &all, registry)?, partial: None };
    if let Some(selection) = selection {
        selection.restrict(&mut plan, None, state);
    }
    let protected = protected_deletes(&plan, state);
    if !protected.is_empty() {
        return Err(PlanError::Protected(protected));
    }
    Ok(plan)
}

/// Deletes of `urns` (dependents first), then of every retired instance.
fn delete_steps(state: &State, urns: &[&Urn], registry: &Registry) -> Result<Vec<Step>, PlanError> {
    let mut steps = Vec::with_capacity(urns.len() + state.retired.len());
    for urn in reverse_dependency_order(state, urns) {
        let rec = &state.resources[urn];
        let Some(provider) = registry.get(&rec.type_name) else {
            let fix = match registry.unavailable(&rec.type_name) {
                Some(fix) => fix.to_string(),
                None => format!(
                    "use a fabric version that has this resource type, or forget it with `cargo xtask state <stack> rm '{urn}'` (it stays in the cloud)"
                ),
            };
            return Err(PlanError::UnknownType { urn: urn.clone(), type_name: rec.type_name.clone(), fix });
        };
        let changes = summarized(diff(&rec.inputs, &Value::Null, &[]), provider.as_ref());
        let mut step = Step::new(urn.clone(), rec.type_name.clone(), StepOp::Delete, changes);
        step.retain = rec.options.retain_on_delete;
        if let Some(d) = rec.options.delete_timeout {
            step.options.push(format!("custom_timeouts: delete waits up to {}", humantime::format_duration(d)));
        }
        steps.push(step);
    }
    steps.extend(state.retired.iter().map(|r| {
        let mut step = Step::new(r.urn.clone(), r.record.type_name.clone(), StepOp::Delete, Vec::new());
        step.retired = true;
        step.retain = r.record.options.retain_on_delete;
        step
    }));
    Ok(steps)
}

/// `urns` ordered so that every resource comes before the resources it depends on (as recorded).
fn reverse_dependency_order<'a>(state: &'a State, urns: &[&'a Urn]) -> Vec<&'a Urn> {
    use petgraph::graph::{DiGraph, NodeIndex};
    use petgraph::visit::DfsPostOrder;
    let mut sorted: Vec<&Urn> = urns.to_vec();
    sorted.sort();
    // "depends on" edges among `urns`. The walk stacks a node's edges newest first and takes the
    // top one first: added in the order recorded, they are walked in that order.
    let mut g: DiGraph<&Urn, ()> = DiGraph::with_capacity(sorted.len(), 0);
    let ids: HashMap<&Urn, NodeIndex> = sorted.iter().map(|u| (*u, g.add_node(*u))).collect();
    for u in &sorted {
        let deps = state.resources.get(*u).map(|r| r.deps.as_slice()).unwrap_or_default();
        for d in deps {
            if let Some(&dep) = ids.get(d) {
                g.add_edge(ids[*u], dep, ());
            }
        }
    }
    // Dependents first: a depth-first post-order over "depends on" (each dependency before what
    // needs it), reversed.
    let mut order = Vec::with_capacity(sorted.len());
    let mut dfs = DfsPostOrder::empty(&g);
    for u in &sorted {
        if dfs.discovered.contains(ids[*u].index()) {
            continue;
        }
        dfs.move_to(ids[*u]);
        while let Some(n) = dfs.next(&g) {
            order.push(g[n]);
        }
    }
    order.reverse();
    order
}

/// The plan as the JSON document `preview --json` prints.
pub fn plan_json(plan: &Plan) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            let mut step = serde_json::json!({
                "urn": s.urn,
                "type": s.type_name,
                "op": s.op.as_str(),
                "changed": s.changes.iter().map(|c| c.field.clone()).collect::<Vec<_>>(),
            });
            // Said only where it changes what happens.
            if s.delete_first {
                step["delete_first"] = true.into();
            }
            if let Some(to) = &s.moved_to {
                step["moved_to"] = serde_json::json!(to);
            }
            if !s.notes.is_empty() {
                step["notes"] = serde_json::json!(s.notes);
            }
            if !s.options.is_empty() {
                step["options"] = serde_json::json!(s.options);
            }
            if let Some(from) = &s.renamed_from {
                step["renamed_from"] = serde_json::json!(from);
            }
            if s.retain {
                step["retain"] = true.into();
            }
            if let Some(id) = &s.import_id {
                step["import_id"] = id.clone().into();
            }
            step
        })
        .collect();
    let summary = plan.summary();
    let mut doc = serde_json::json!({"stack": plan.stack, "steps": steps, "summary": summary});
    if let Some(p) = &plan.partial {
        doc["partial"] = p.clone().into();
    }
    doc
}
