//! Human rendering of plans and apply summaries.

use super::apply::ApplyReport;
use super::executor::Outcome;
use super::plan::{Plan, StepOp};
use crate::model::output::UNKNOWN_KEY;
use crate::model::secret::redact;
use crate::state::Op;
use serde_json::Value;

pub use super::shown::{humanize, show_value};

fn symbol(op: StepOp) -> &'static str {
    match op {
        StepOp::Create => "+",
        StepOp::Update => "~",
        StepOp::Import => "=",
        StepOp::Replace => "-/+",
        StepOp::Delete => "-",
        StepOp::Same => " ",
    }
}

/// The plan as text: one block per changing resource, fields old → new, then a summary line.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = format!("Plan for stack `{}`:\n", plan.stack);
    if let Some(partial) = &plan.partial {
        out.push_str(&format!("  ! {partial}\n"));
    }
    let shown = |s: &&super::plan::Step| s.op != StepOp::Same || !s.options.is_empty() || s.renamed_from.is_some();
    for step in plan.steps.iter().filter(shown) {
        let moved;
        let what = if step.retired && step.retain {
            "forget (old instance of a replaced resource; retain_on_delete: it stays in the cloud)"
        } else if step.retired {
            "delete (old instance of a replaced resource)"
        } else if step.op == StepOp::Delete && step.retain {
            "forget (retain_on_delete: it stays in the cloud and leaves state)"
        } else if let Some(id) = &step.import_id {
            moved = if step.changes.is_empty() {
                format!("import `{id}` (recorded as it is: it matches the program)")
            } else {
                format!("import `{id}`, then update where it differs from the program")
            };
            &moved
        } else if let Some(from) = &step.renamed_from {
            moved = format!(
                "{} (renamed from \"{}\" by an alias: its record moves, nothing is replaced)",
                if step.op == StepOp::Same { "rename" } else { step.op.as_str() },
                from.name()
            );
            &moved
        } else if step.op == StepOp::Same {
            "unchanged"
        } else if step.delete_first {
            "replace (delete first: the old instance goes before the new one is made)"
        } else if let Some(to) = &step.moved_to {
            moved = format!("forget (the same object is now \"{}\": nothing is deleted)", to.name());
            &moved
        } else {
            step.op.as_str()
        };
        out.push_str(&format!("\n  {:<3} {} \"{}\"  {what}\n", symbol(step.op), step.type_name, step.urn.name()));
        for c in &step.changes {
            let note = if c.forces_replace && step.op == StepOp::Replace { "  (forces replacement)" } else { "" };
            let lines = match step.op {
                StepOp::Create if c.summary.is_some() => {
                    vec![format!(
                        "{} = {} (`render` shows it in full)",
                        c.field,
                        c.summary.as_deref().unwrap_or_default()
                    )]
                }
                StepOp::Create => vec![format!("{} = {}", c.field, show_value(c.new.as_ref()))],
                StepOp::Delete if c.summary.is_some() => {
                    vec![format!("{} = {}", c.field, c.summary.as_deref().unwrap_or_default())]
                }
                StepOp::Delete => vec![format!("{} = {}", c.field, show_value(c.old.as_ref()))],
                _ => {
                    let mut changed = Vec::new();
                    leaf_changes(&c.field, c.old.as_ref(), c.new.as_ref(), &mut changed);
                    changed
                }
            };
            for line in lines {
                out.push_str(&format!("        {line}{note}\n"));
            }
        }
        for line in &step.options {
            out.push_str(&format!("        option {line}\n"));
        }
        for note in &step.notes {
            out.push_str(&format!("        ! {note}\n"));
        }
    }
    let s = plan.summary();
    if plan.has_changes() {
        let imports = if s.import > 0 { format!("{} to import, ", s.import) } else { String::new() };
        out.push_str(&format!(
            "\nPlan: {imports}{} to create, {} to update, {} to replace, {} to delete, {} unchanged.\n",
            s.create, s.update, s.replace, s.delete, s.same
        ));
    } else {
        out.push_str(&format!("\nNo changes: {} resources are up to date.\n", s.same));
    }
    out
}

/// The changed leaves between two values, as `path: old => new` lines.
pub fn leaf_lines(path: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    leaf_changes(path, old, new, &mut out);
    out
}

/// The changed leaves between two values, as `path: old => new` (objects are walked into, as
/// are lists of equal length; secrets and unknown values are leaves).
fn leaf_changes(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
    let opaque = |v: &Value| crate::model::secret::is_secret(v) || v.get(UNKNOWN_KEY).is_some();
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) if !opaque(old.unwrap()) && !opaque(new.unwrap()) => {
            let mut keys: Vec<&String> = b.keys().collect();
            keys.extend(a.keys().filter(|k| !b.contains_key(*k)));
            for k in keys {
                let (o, n) = (a.get(k), b.get(k));
                if o != n || n.is_some_and(crate::model::contains_unknown) {
                    leaf_changes(&format!("{path}.{k}"), o, n, out);
                }
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (o, n)) in a.iter().zip(b).enumerate() {
                if o != n || crate::model::contains_unknown(n) {
                    leaf_changes(&format!("{path}[{i}]"), Some(o), Some(n), out);
                }
            }
        }
        _ => out.push(format!("{path}: {} => {}", show_value(old), show_value(new))),
    }
}

pub fn op_verb(op: Op) -> &'static str {
    match op {
        Op::Create => "created",
        Op::Update => "updated",
        Op::Import => "imported",
        Op::Replace => "replaced (new instance)",
        Op::Delete => "deleted",
        Op::DeleteRetired => "deleted (old instance)",
    }
}

/// The end-of-apply summary.
pub fn render_report(report: &ApplyReport, elapsed: std::time::Duration) -> String {
    let failed: Vec<_> = report.failed().collect();
    let skipped: Vec<_> = report.skipped().collect();
    let mut out = format!(
        "\nApply {} in {:.1}s: {} done, {} failed, {} skipped.\n",
        if failed.is_empty() && skipped.is_empty() { "complete" } else { "FAILED" },
        elapsed.as_secs_f64(),
        report.done(),
        failed.len(),
        skipped.len()
    );
    for r in failed {
        if let Outcome::Failed(e) = &r.outcome {
            out.push_str(&format!("  x {} ({:?}): {e}\n", r.urn.display_short(), r.op));
        }
    }
    for r in skipped {
        match &r.blocked_by {
            Some(by) => out.push_str(&format!(
                "  - {} not started: it depends on {}, which failed\n",
                r.urn.display_short(),
                by.display_short()
            )),
            None => out.push_str(&format!("  - {} not started: interrupted\n", r.urn.display_short())),
        }
    }
    out
}

/// Every resource's inputs as the first deploy would plan them (secrets redacted, values known
/// only after apply as `{"$unknown": …}`), with its type and dependencies, keyed by URN. This is
/// what `render` prints and what snapshot tests hold.
pub fn render_inputs(graph: &crate::model::Graph) -> Value {
    let mut out = serde_json::Map::new();
    for n in graph.nodes() {
        let inputs = n.inputs(&crate::model::NothingKnown).unwrap_or(Value::Null);
        out.insert(
            n.urn.to_string(),
            serde_json::json!({"type": n.type_name(), "deps": n.deps, "inputs": redact(&inputs)}),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn updates_show_the_changed_leaves_with_their_paths() {
        let old = json!({"spec": {"replicas": 2, "template": {"containers": [{"image": "acme/api:1.4.2", "name": "api"}]}},
            "data": {"$secret": "a"}});
        let new = json!({"spec": {"replicas": 2, "template": {"containers": [{"image": "acme/api:1.5.0", "name": "api"}]}},
            "data": {"$secret": "b"}, "extra": {"$unknown": "x"}});
        let mut lines = Vec::new();
        leaf_changes("manifest", Some(&old), Some(&new), &mut lines);
        assert_eq!(
            lines,
            [
                "manifest.spec.template.containers[0].image: \"acme/api:1.4.2\" => \"acme/api:1.5.0\"",
                "manifest.data: [secret] => [secret]",
                "manifest.extra: (none) => (known after apply)",
            ]
        );
    }
}
