//! Names that are taken: before the first write, every resource the plan creates under a name
//! the program chose is checked with its provider's [`Provider::names_taken`] (one batched read
//! per type), so that a name someone else holds stops preview and deploy with nothing written,
//! instead of failing at apply after dozens of creates.

use super::plan::{Plan, StepOp};
use super::provider::{Ctx, Provider};
use crate::model::{Graph, Lookup, Urn, ValidationError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A type's provider and the creates of that type to ask it about.
type ByType = (Arc<dyn Provider>, Vec<(Urn, Value)>);

/// What the check found.
#[derive(Debug, Default)]
pub struct NameReport {
    /// One per name held by someone else, in the validation format.
    pub problems: Vec<ValidationError>,
    /// The types checked, with how many names each.
    pub checked: Vec<String>,
    /// Types whose read failed, and why: never a problem by itself.
    pub skipped: Vec<String>,
}

/// Checks the names of everything `plan` creates (or creates anew for a replacement) from `graph`,
/// with inputs resolved against `known` as far as they are known.
pub async fn check(ctx: &Ctx, graph: &Graph, plan: &Plan, known: &dyn Lookup) -> NameReport {
    let mut by_type: BTreeMap<&str, ByType> = BTreeMap::new();
    for step in plan.steps.iter().filter(|s| matches!(s.op, StepOp::Create | StepOp::Replace)) {
        let Some(node) = graph.get(&step.urn) else { continue };
        let Ok(inputs) = node.inputs(known) else { continue };
        by_type
            .entry(node.type_name())
            .or_insert_with(|| (node.provider.clone(), Vec::new()))
            .1
            .push((step.urn.clone(), inputs));
    }
    let mut report = NameReport::default();
    for (type_name, (provider, items)) in by_type {
        match provider.names_taken(ctx, &items).await {
            Ok(None) => {}
            Ok(Some(answers)) => {
                report.checked.push(format!(
                    "{type_name} ({} name{})",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                ));
                for ((urn, _), taken) in items.iter().zip(answers) {
                    let Some(t) = taken else { continue };
                    report.problems.push(ValidationError {
                        urn: urn.clone(),
                        field: t.field,
                        problem: format!("the name `{}` is taken: {}", t.name, t.holder),
                        fix: t.fix,
                    });
                }
            }
            Err(e) => report.skipped.push(format!("names of {type_name} ({e})")),
        }
    }
    report
}
