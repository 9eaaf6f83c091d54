//! The resource model: URNs, outputs, secrets, the stack graph and its validation.

pub mod options;
pub mod output;
pub mod policy;
pub mod reference;
pub mod secret;
pub mod stack;
pub mod urn;
pub mod validation;

pub use options::{Options, RecordedOptions, Timeouts};
pub use output::{FieldRef, Lookup, NothingKnown, Output, contains_unknown, with_resolver};
pub use reference::{ReferenceReader, StackReference};
pub use secret::Secret;
pub use stack::{Graph, Node, Stack, WaiverBuilder};
pub use urn::Urn;
pub use validation::{Checker, ValidationError, ValidationErrors};

/// A stable 64-bit FNV-1a hash, for names and tokens that must be the same on every run (a
/// replacement's new name, an idempotency token). Not for security.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Six hex digits of [`stable_hash`]: a short name suffix.
pub fn short_hash(s: &str) -> String {
    format!("{:06x}", stable_hash(s) & 0xff_ffff)
}
