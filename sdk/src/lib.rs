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

pub mod aws;
pub mod cli;
pub mod components;
pub mod engine;
pub mod k8s;
pub mod local;
pub mod model;
pub mod progress;
pub mod state;
pub mod testing;

pub use cli::{run, run_env};

/// What the program and the engine fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] model::ValidationErrors),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    State(#[from] state::store::StateError),
    #[error("{0}")]
    Other(String),
}

impl From<state::backend::BackendError> for Error {
    fn from(e: state::backend::BackendError) -> Self {
        Error::State(e.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a stack program needs in scope.
pub mod prelude {
    pub use crate::aws::ec2::{
        IngressRule, InternetGateway, Protocol, Route, RouteTable, RouteTableAssociation, SecurityGroup, Subnet, tags,
    };
    pub use crate::components::{
        AlbIngress, BackupPlan, Capacity, Cluster, Database, Edge, EksCluster, Health, Nat, Network, NodePool,
        PrivateSubnet, Prometheus, Protectable, PublicSubnet, RdsPostgres, Vpc, WebService, Weekly, Zones,
    };
    pub use crate::k8s::{ClusterRef, ConfigMap, KubeSecret, Manifest, Namespace};
    pub use crate::model::{Output, Secret, Stack};
}
