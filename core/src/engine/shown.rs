//! Values as people see them — secrets as `[secret]`, values known only after apply as `(known
//! after apply)` — for the plan's notes and the renderings alike (the plan does not depend on
//! the renderer).

use crate::model::output::UNKNOWN_KEY;
use crate::model::secret::redact;
use serde_json::Value;

/// `value` with unknown markers shown as `(known after apply)`.
pub fn humanize(value: &Value) -> Value {
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
