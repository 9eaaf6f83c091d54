//! `Secret<T>`: a value that is never shown.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The JSON key that marks a secret inside serialized inputs and outputs. The state layer encrypts
/// every object with this key before it touches disk; renderers print `[secret]` instead.
pub const SECRET_KEY: &str = "$secret";

/// A value redacted in `Debug`, `Display`, plans and logs, and encrypted in state.
///
/// ```
/// use fabric_core::model::Secret;
/// let password = Secret::new("hunter2".to_string());
/// assert_eq!(format!("{password}"), "[secret]");
/// assert_eq!(format!("{password:?}"), "Secret([secret])");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The plain value. Call it only where the value leaves for its destination (an API call).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([secret])")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(SECRET_KEY, &self.0)?;
        map.end()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped<T> {
            #[serde(rename = "$secret")]
            value: T,
        }
        Wrapped::<T>::deserialize(deserializer).map(|w| Secret(w.value))
    }
}

/// Whether a JSON value is a serialized secret.
pub fn is_secret(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::Object(m) if m.len() == 1 && m.contains_key(SECRET_KEY))
}

/// A copy of `value` with every secret replaced by the string `[secret]`.
pub fn redact(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    if is_secret(value) {
        return Value::String("[secret]".into());
    }
    match value {
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(v))).collect()),
        other => other.clone(),
    }
}

/// A copy of `value` with every secret replaced by its plain value: only for the request that
/// delivers it (a Kubernetes Secret's data), never for logs, plans or state.
pub fn reveal(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) if is_secret(value) => reveal(&map[SECRET_KEY]),
        Value::Array(items) => Value::Array(items.iter().map(reveal).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), reveal(v))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_with_a_marker_and_back() {
        let s = Secret::new("pw".to_string());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v, json!({"$secret": "pw"}));
        let back: Secret<String> = serde_json::from_value(v).unwrap();
        assert_eq!(back.expose(), "pw");
    }

    #[test]
    fn redact_hides_nested_secrets() {
        let v = json!({"a": 1, "b": [{"$secret": "x"}], "c": {"$secret": {"deep": true}}});
        assert_eq!(redact(&v), json!({"a": 1, "b": ["[secret]"], "c": "[secret]"}));
        assert_eq!(reveal(&v), json!({"a": 1, "b": ["x"], "c": {"deep": true}}));
    }
}
