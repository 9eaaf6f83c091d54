//! # fabric-core
//!
//! The layers of [fabric](https://docs.rs/fabric) that know no cloud: what a stack declares
//! ([`model`]), the contract every resource type implements ([`engine::provider`]), the state
//! and its journal ([`state`]), and the engine that plans, applies and recovers ([`engine`]).
//! Providers for AWS and Kubernetes live in the `fabric` crate, which re-exports all of this; a
//! stack program depends on `fabric`, never on this crate directly.
//!
//! ```
//! use fabric_core::model::Stack;
//! use fabric_core::testing::{MemoryCloud, MemoryProvider, Thing};
//! use std::sync::Arc;
//!
//! let provider = Arc::new(MemoryProvider { cloud: MemoryCloud::new() });
//! let mut s = Stack::new("demo");
//! Thing::new("a").add(&mut s, &provider);
//! let graph = s.finish().unwrap();
//! assert_eq!(graph.nodes().len(), 1);
//! ```

mod config;
pub mod engine;
pub mod model;
mod picture;
pub mod state;
pub mod testing;

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
