//! The resource model: URNs, outputs, secrets, the stack graph and its validation.

pub mod output;
pub mod secret;
pub mod stack;
pub mod urn;
pub mod validation;

pub use output::{FieldRef, Lookup, NothingKnown, Output, contains_unknown, with_resolver};
pub use secret::Secret;
pub use stack::{Graph, Node, Stack};
pub use urn::Urn;
pub use validation::{Checker, ValidationError, ValidationErrors};
