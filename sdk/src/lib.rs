//! # fabric
//!
//! An embedded infrastructure-as-code SDK: a stack is an ordinary Rust program that declares
//! typed resources; fabric plans the change, shows it, applies it in parallel through the official
//! AWS SDK for Rust, and keeps a crash-safe journal of what it did.
//!
//! ```no_run
//! use fabric::prelude::*;
//!
//! fn main() -> fabric::Result<()> {
//!     fabric::run(|s| {
//!         let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(s)?;
//!         s.export("vpc_id", vpc.id());
//!         Ok(())
//!     })
//! }
//! ```
//!
//! The flow is one way: program → [`model::Stack`] (validated graph, no I/O) → [`engine::plan()`]
//! (pure) → apply (providers do the I/O) → [`state`] (journal + snapshot).

// Builders declare themselves with `.add(&mut stack)`, as in DESIGN.md; they are not `std::ops::Add`.
#![allow(clippy::should_implement_trait)]

// Declared first: its macros serve every module below.
#[macro_use]
mod handles;

pub mod aws;
pub mod cli;
pub mod components;
pub mod cost;
#[cfg(feature = "k8s")]
pub mod k8s;
pub mod local;
pub mod numbering;
pub mod policy;
pub mod progress;
pub mod providers;
pub mod random;
pub mod testing;
#[cfg(feature = "verify")]
pub mod verify;

/// What a stack declares: resources, outputs, options, references (from `fabric-core`).
pub use fabric_core::model;

/// Plan, apply, refresh and recovery, and the provider contract (from `fabric-core`).
pub use fabric_core::engine;

/// State: the snapshot, the journal, locks, encryption, history; and its S3 backend.
pub mod state {
    pub use fabric_core::state::*;
    pub mod s3;
}

// The component snapshot tests (`tests/components.rs`) are compiled into this library's test
// binary rather than as an integration test (one link of the whole SDK fewer per test build); they
// name the crate as an integration test would.
#[cfg(all(test, feature = "full"))]
extern crate self as fabric;
#[cfg(all(test, feature = "full"))]
#[path = "../tests/components.rs"]
mod components_tests;

pub use cli::{run, run_env};
pub use fabric_core::{Error, Result};

/// What a stack program needs in scope.
///
/// Each service's builders come with its cargo feature (`ec2`, `rds`, …, all in `full`, the
/// default; see the crate's `Cargo.toml`), from the service module's own `prelude`
/// ([`aws::prelude`] gathers those of the service table).
pub mod prelude {
    // Empty in a build whose services have no builders (`iam`, `kms` alone, or none).
    #[allow(unused_imports)]
    pub use crate::aws::prelude::*;
    pub use crate::aws::s3::{Access, Bucket, LifecycleRule};
    #[cfg(feature = "k8s")]
    pub use crate::components::Prometheus;
    #[cfg(all(feature = "k8s", feature = "elbv2"))]
    pub use crate::components::{Health, WebService};
    #[cfg(feature = "k8s")]
    pub use crate::k8s::{ClusterRef, ConfigMap, KubeSecret, Manifest, Namespace};
    pub use crate::model::policy::{PolicyView, Rule, Severity, Violations};
    pub use crate::model::{Output, Secret, Stack};
}
