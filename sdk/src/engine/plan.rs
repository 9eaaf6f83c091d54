//! The plan: a pure function of the graph and the state → the steps that make the cloud match the
//! program.

use super::provider::Registry;
use crate::model::{Graph, Urn, contains_unknown};
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
}

impl StepOp {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOp::Create => "create",
            StepOp::Update => "update",
            StepOp::Replace => "replace",
            StepOp::Delete => "delete",
            StepOp::Same => "same",
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
}

/// Steps in the order they are shown: the program's resources in dependency order, then deletes in
/// reverse dependency order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub stack: String,
    pub steps: Vec<Step>,
}

/// How many steps of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub same: usize,
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
            }
        }
        s
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.op != StepOp::Same)
    }
}

/// A problem that stops planning (never a cloud call: planning makes none).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{urn}: cannot compute inputs: {message}")]
    Inputs { urn: Urn, message: String },
    #[error(
        "{urn} is in state as type `{type_name}`, which this program does not know how to delete\n    fix: use a fabric version that has this resource type, or remove it from state by hand"
    )]
    UnknownType { urn: Urn, type_name: String },
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
            });
        }
    }
    out
}

/// Plans `graph` against `state`.
///
/// Outputs of resources that stay the same or are updated in place are taken from state, so that
/// references to them resolve and unchanged dependents plan as `same`; outputs of created and
/// replaced resources are unknown until apply. (A provider whose in-place update changes an output
/// must list the field that causes it in its `replace_on`.)
pub fn plan(graph: &Graph, state: &State, registry: &Registry) -> Result<Plan, PlanError> {
    let mut known: HashMap<Urn, Value> = HashMap::with_capacity(graph.nodes().len());
    let mut steps = Vec::with_capacity(graph.nodes().len() + state.retired.len());
    let mut created_identities: HashMap<String, Urn> = HashMap::new();
    for node in graph.nodes() {
        let inputs = node.inputs(&known).map_err(|message| PlanError::Inputs { urn: node.urn.clone(), message })?;
        if !state.resources.contains_key(&node.urn)
            && let Some(id) = node.provider.identity(&inputs, None)
        {
            created_identities.insert(id, node.urn.clone());
        }
        let (op, changes) = match state.resources.get(&node.urn) {
            None => (StepOp::Create, diff(&Value::Null, &inputs, &[])),
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
        let delete_first = op == StepOp::Replace
            && state.resources.get(&node.urn).is_some_and(|r| r.type_name == node.type_name())
            && node.provider.delete_before_replace();
        steps.push(Step {
            urn: node.urn.clone(),
            type_name: node.type_name().to_string(),
            op,
            changes,
            retired: false,
            delete_first,
            moved_to: None,
            notes: Vec::new(),
        });
    }

    let desired: HashSet<&Urn> = graph.nodes().iter().map(|n| &n.urn).collect();
    let removed: Vec<&Urn> = state.resources.keys().filter(|u| !desired.contains(u)).collect();
    let mut deletes = delete_steps(state, &removed, registry)?;
    for step in deletes.iter_mut().filter(|s| !s.retired) {
        let rec = &state.resources[&step.urn];
        let identity = registry.get(&rec.type_name).and_then(|p| p.identity(&rec.inputs, Some(&rec.outputs)));
        step.moved_to = identity.and_then(|id| created_identities.get(&id).cloned());
    }
    steps.extend(deletes);
    Ok(Plan { stack: graph.stack().to_string(), steps })
}

/// A plan that deletes everything in state.
pub fn plan_destroy(state: &State, registry: &Registry) -> Result<Plan, PlanError> {
    let all: Vec<&Urn> = state.resources.keys().collect();
    Ok(Plan { stack: state.stack.clone(), steps: delete_steps(state, &all, registry)? })
}

/// Deletes of `urns` (dependents first), then of every retired instance.
fn delete_steps(state: &State, urns: &[&Urn], registry: &Registry) -> Result<Vec<Step>, PlanError> {
    let mut steps = Vec::with_capacity(urns.len() + state.retired.len());
    for urn in reverse_dependency_order(state, urns) {
        let rec = &state.resources[urn];
        if registry.get(&rec.type_name).is_none() {
            return Err(PlanError::UnknownType { urn: urn.clone(), type_name: rec.type_name.clone() });
        }
        steps.push(Step {
            urn: urn.clone(),
            type_name: rec.type_name.clone(),
            op: StepOp::Delete,
            changes: diff(&rec.inputs, &Value::Null, &[]),
            retired: false,
            delete_first: false,
            moved_to: None,
            notes: Vec::new(),
        });
    }
    steps.extend(state.retired.iter().map(|r| Step {
        urn: r.urn.clone(),
        type_name: r.record.type_name.clone(),
        op: StepOp::Delete,
        changes: Vec::new(),
        retired: true,
        delete_first: false,
        moved_to: None,
        notes: Vec::new(),
    }));
    Ok(steps)
}

/// `urns` ordered so that every resource comes before the resources it depends on (as recorded).
fn reverse_dependency_order<'a>(state: &'a State, urns: &[&'a Urn]) -> Vec<&'a Urn> {
    let set: HashSet<&Urn> = urns.iter().copied().collect();
    // Dependents first: a depth-first post-order over "depends on", reversed.
    let mut order = Vec::with_capacity(urns.len());
    let mut seen = HashSet::new();
    fn visit<'a>(
        u: &'a Urn,
        state: &'a State,
        set: &HashSet<&Urn>,
        seen: &mut HashSet<&'a Urn>,
        order: &mut Vec<&'a Urn>,
    ) {
        if !seen.insert(u) {
            return;
        }
        if let Some(rec) = state.resources.get(u) {
            for d in &rec.deps {
                if let Some((k, _)) = state.resources.get_key_value(d)
                    && set.contains(k)
                {
                    visit(k, state, set, seen, order);
                }
            }
        }
        order.push(u);
    }
    let mut sorted: Vec<&Urn> = urns.to_vec();
    sorted.sort();
    for u in sorted {
        visit(u, state, &set, &mut seen, &mut order);
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
            step
        })
        .collect();
    let summary = plan.summary();
    serde_json::json!({"stack": plan.stack, "steps": steps, "summary": summary})
}
