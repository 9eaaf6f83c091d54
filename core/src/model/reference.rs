//! Stack references: one stack reads another's exported outputs through the state backend they
//! share, at the time the program runs — no copied values.

use super::urn::Urn;
use super::validation::{ValidationError, ValidationErrors};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Reads a stack's recorded outputs: `Ok(None)` when that stack has no state.
pub type ReferenceReader = Arc<dyn Fn(&str) -> Result<Option<BTreeMap<String, Value>>, String> + Send + Sync>;

/// The outputs another stack exported at its last deploy (see
/// [`Stack::reference`](super::Stack::reference)).
#[derive(Clone, Debug, PartialEq)]
pub struct StackReference {
    stack: String,
    outputs: BTreeMap<String, Value>,
}

impl StackReference {
    /// A reference holding `outputs` (for tests of programs that read references).
    pub fn new(stack: impl Into<String>, outputs: BTreeMap<String, Value>) -> Self {
        StackReference { stack: stack.into(), outputs }
    }

    /// The referenced stack's name.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// The names of its outputs.
    pub fn names(&self) -> Vec<&str> {
        self.outputs.keys().map(String::as_str).collect()
    }

    fn error(&self, output: &str, problem: String, fix: String) -> crate::Error {
        crate::Error::Invalid(ValidationErrors(vec![ValidationError {
            urn: Urn::new(&self.stack, "fabric:StackReference", output),
            field: output.to_string(),
            problem,
            fix,
        }]))
    }

    fn missing(&self, output: &str) -> crate::Error {
        let has = if self.outputs.is_empty() {
            "it exports none".to_string()
        } else {
            format!("it has: {}", self.names().join(", "))
        };
        self.error(
            output,
            format!("stack `{}` has no output `{output}`; {has}", self.stack),
            format!(
                "export it from stack `{}` (`s.export(\"{output}\", …)`) and deploy that stack, or read an output it has",
                self.stack
            ),
        )
    }

    /// One output, typed.
    pub fn output<T: DeserializeOwned>(&self, name: &str) -> crate::Result<T> {
        let value = self.outputs.get(name).ok_or_else(|| self.missing(name))?;
        if super::contains_unknown(value) {
            return Err(self.error(
                name,
                format!("output `{name}` of stack `{}` is not known yet (its last deploy did not finish)", self.stack),
                format!("deploy stack `{}` until it succeeds", self.stack),
            ));
        }
        serde_json::from_value(value.clone()).map_err(|e| {
            self.error(
                name,
                format!(
                    "output `{name}` of stack `{}` is {value}, which does not read as the type asked for: {e}",
                    self.stack
                ),
                "read it as the type that stack exports".into(),
            )
        })
    }

    /// Every output at once, into a struct whose fields are output names: a missing one is named
    /// with the outputs the stack has.
    pub fn outputs<T: DeserializeOwned>(&self) -> crate::Result<T> {
        let all = Value::Object(self.outputs.clone().into_iter().collect());
        serde_json::from_value(all).map_err(|e| {
            let text = e.to_string();
            match text.split('`').nth(1).filter(|_| text.starts_with("missing field")) {
                Some(field) => self.missing(field),
                None => self.error(
                    "outputs",
                    format!("the outputs of stack `{}` do not read as the type asked for: {text}", self.stack),
                    "make the struct's fields match what that stack exports".into(),
                ),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference() -> StackReference {
        let mut outputs = BTreeMap::new();
        outputs.insert("zone_id".to_string(), json!("Z123"));
        outputs.insert("name_servers".to_string(), json!(["ns-1.example.", "ns-2.example."]));
        StackReference::new("reference-develop", outputs)
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Wanted {
        zone_id: String,
        zone_domain: String,
    }

    #[test]
    fn outputs_read_typed_and_a_missing_one_names_what_there_is() {
        let r = reference();
        assert_eq!(r.output::<String>("zone_id").unwrap(), "Z123");
        assert_eq!(r.output::<Vec<String>>("name_servers").unwrap().len(), 2);
        let err = r.output::<String>("vpc_id").unwrap_err().to_string();
        assert!(
            err.contains("stack `reference-develop` has no output `vpc_id`; it has: name_servers, zone_id"),
            "{err}"
        );
        let err = r.outputs::<Wanted>().unwrap_err().to_string();
        assert!(err.contains("has no output `zone_domain`; it has: name_servers, zone_id"), "{err}");
        let err = r.output::<u32>("zone_id").unwrap_err().to_string();
        assert!(err.contains("does not read as the type asked for"), "{err}");
    }
}
