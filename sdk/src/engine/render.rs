//! Human rendering of plans and apply summaries.

use super::apply::ApplyReport;
use super::executor::Outcome;
use super::plan::{Plan, StepOp};
use crate::model::output::UNKNOWN_KEY;
use crate::model::secret::redact;
use crate::state::Op;
use serde_json::Value;

/// `value` with unknown markers shown as `(known after apply)`.
pub(crate) fn humanize(value: &Value) -> Value {
    match value {
        Value::Object(m) if m.contains_key(UNKNOWN_KEY) => Value::String("(known after apply)".into()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), humanize(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(humanize).collect()),
        other => other.clone(),
    }
}

/// A value as shown in a plan: secrets `[secret]`, unknowns `(known after apply)`.
pub fn show_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(v) => match humanize(&redact(v)) {
            Value::String(s) if s == "(known after apply)" || s == "[secret]" => s,
            other => other.to_string(),
        },
    }
}

fn symbol(op: StepOp) -> &'static str {
    match op {
        StepOp::Create => "+",
        StepOp::Update => "~",
        StepOp::Replace => "-/+",
        StepOp::Delete => "-",
        StepOp::Same => " ",
    }
}

/// The plan as text: one block per changing resource, fields old → new, then a summary line.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = format!("Plan for stack `{}`:\n", plan.stack);
    for step in plan.steps.iter().filter(|s| s.op != StepOp::Same) {
        let what = if step.retired { "delete (old instance of a replaced resource)" } else { step.op.as_str() };
        out.push_str(&format!("\n  {:<3} {} \"{}\"  {what}\n", symbol(step.op), step.type_name, step.urn.name()));
        for c in &step.changes {
            let line = match step.op {
                StepOp::Create => format!("{} = {}", c.field, show_value(c.new.as_ref())),
                StepOp::Delete => format!("{} = {}", c.field, show_value(c.old.as_ref())),
                _ => format!("{}: {} => {}", c.field, show_value(c.old.as_ref()), show_value(c.new.as_ref())),
            };
            let note = if c.forces_replace && step.op == StepOp::Replace { "  (forces replacement)" } else { "" };
            out.push_str(&format!("        {line}{note}\n"));
        }
    }
    let s = plan.summary();
    if plan.has_changes() {
        out.push_str(&format!(
            "\nPlan: {} to create, {} to update, {} to replace, {} to delete, {} unchanged.\n",
            s.create, s.update, s.replace, s.delete, s.same
        ));
    } else {
        out.push_str(&format!("\nNo changes: {} resources are up to date.\n", s.same));
    }
    out
}

pub fn op_verb(op: Op) -> &'static str {
    match op {
        Op::Create => "created",
        Op::Update => "updated",
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
