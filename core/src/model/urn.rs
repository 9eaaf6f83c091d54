//! Uniform resource names: `<stack>::<type>::<name>`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The unique, stable name of a resource inside a stack: `<stack>::<type>::<name>`.
///
/// ```
/// use fabric_core::model::Urn;
/// let urn = Urn::new("example", "aws:ec2:Vpc", "main");
/// assert_eq!(urn.as_str(), "example::aws:ec2:Vpc::main");
/// assert_eq!(urn.type_name(), "aws:ec2:Vpc");
/// assert_eq!(urn.name(), "main");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Urn(String);

impl Urn {
    pub fn new(stack: &str, type_name: &str, name: &str) -> Self {
        Urn(format!("{stack}::{type_name}::{name}"))
    }

    /// Parses a URN written by [`Urn::new`]; `None` when it has not three `::` parts.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, "::");
        let (stack, ty, name) = (parts.next()?, parts.next()?, parts.next()?);
        (!stack.is_empty() && !ty.is_empty() && !name.is_empty()).then(|| Urn(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parts(&self) -> (&str, &str, &str) {
        let mut parts = self.0.splitn(3, "::");
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
    }

    pub fn stack(&self) -> &str {
        self.parts().0
    }

    pub fn type_name(&self) -> &str {
        self.parts().1
    }

    pub fn name(&self) -> &str {
        self.parts().2
    }

    /// `Type "name"`, the short form used in messages and progress lines.
    pub fn display_short(&self) -> String {
        format!("{} \"{}\"", self.type_name(), self.name())
    }
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Urn({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let urn = Urn::new("s", "aws:ec2:Subnet", "public/a");
        assert_eq!(Urn::parse(urn.as_str()), Some(urn.clone()));
        assert_eq!(urn.name(), "public/a");
        assert_eq!(urn.stack(), "s");
        assert!(Urn::parse("nope").is_none());
        assert!(Urn::parse("a::b::").is_none());
    }
}
