//! One run against a stack's state, in the one order every caller follows: take the lock (a
//! change only), load state and settle what an interrupted run left, plan, apply, release the
//! lock. The command line, the integration tests and the benchmarks all go through it; what
//! differs between them (showing the plan, asking for confirmation, preflight) happens between
//! [`Session::plan`] and [`Session::apply`].
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use fabric_core::engine::{Engine, Registry, Session, provider::Ctx};
//! use fabric_core::model::Stack;
//! use fabric_core::state::{LocalBackend, StateStore, store::KeySource};
//! use fabric_core::testing::{MemoryCloud, MemoryProvider, Thing};
//! use std::sync::Arc;
//!
//! let provider = Arc::new(MemoryProvider { cloud: MemoryCloud::new() });
//! let mut s = Stack::new("demo");
//! Thing::new("a").value("1").add(&mut s, &provider);
//! let graph = Arc::new(s.finish().unwrap());
//!
//! let dir = tempfile::tempdir().unwrap();
//! let backend = Arc::new(LocalBackend::new(dir.path()));
//! let store = StateStore::open(backend, "demo", KeySource::LocalKeyFile).await.unwrap();
//! let engine = Engine::new(Ctx::new("demo"), Arc::new(store), Registry::new());
//!
//! let mut session = Session::change(&engine, "deploy").await.unwrap();
//! let plan = session.plan(&graph, Default::default()).await.unwrap();
//! assert_eq!(plan.summary().create, 1);
//! let report = session.apply(graph.clone(), &plan).await.unwrap();
//! assert!(report.ok());
//! session.end().await.unwrap();
//!
//! // A second run finds nothing to do.
//! assert!(!Session::preview(&engine, &graph).await.unwrap().has_changes());
//! # });
//! ```

use super::{ApplyReport, Engine, EngineError, Plan, PlanInputs, Recovered, Registry, plan_destroy_with, plan_with};
use crate::engine::select::Selection;
use crate::model::Graph;
use crate::state::{LockInfo, State};
use std::sync::Arc;

/// A run in progress: the state it loaded, and whether it holds the stack's lock.
pub struct Session<'e> {
    engine: &'e Engine,
    state: State,
    recovered: Vec<Recovered>,
    locked: bool,
    took_over: Option<LockInfo>,
}

impl<'e> Session<'e> {
    /// A run that changes the stack (`operation`: `deploy`, `destroy`, …, shown to whoever finds
    /// the lock held). Takes the lock; a lock left by a process of this host that no longer runs
    /// is taken over (see [`Session::took_over`]). Then loads state and settles, in the journal,
    /// what an interrupted run left pending (see [`Engine::load_and_recover`]).
    pub async fn change(engine: &'e Engine, operation: &str) -> Result<Self, EngineError> {
        Self::change_of(engine, operation, None).await
    }

    /// [`Session::change`] for a run of `graph`: a create whose answer was lost is found with the
    /// program's providers too.
    pub async fn change_of(engine: &'e Engine, operation: &str, graph: Option<&Graph>) -> Result<Self, EngineError> {
        let this_host = crate::state::store::hostname();
        let stale = |h: &LockInfo| h.host == this_host && !crate::state::store::process_alive(h.pid);
        let took_over = engine.store.lock_or_take_over(operation, stale).await?;
        match engine.load_and_recover(graph, true).await {
            Ok((state, recovered)) => Ok(Session { engine, state, recovered, locked: true, took_over }),
            Err(e) => {
                engine.store.unlock().await?;
                Err(e)
            }
        }
    }

    /// A run that reads only (`preview`): no lock, and what it recovers is not written.
    pub async fn read(engine: &'e Engine, graph: Option<&Graph>) -> Result<Self, EngineError> {
        let (state, recovered) = engine.load_and_recover(graph, false).await?;
        Ok(Session { engine, state, recovered, locked: false, took_over: None })
    }

    pub fn engine(&self) -> &'e Engine {
        self.engine
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// What an interrupted run left pending, and what was found of it.
    pub fn recovered(&self) -> &[Recovered] {
        &self.recovered
    }

    /// The holder of a stale lock this run took over, if it did.
    pub fn took_over(&self) -> Option<&LockInfo> {
        self.took_over.as_ref()
    }

    /// The engine's providers, and those of `graph` (a program may declare its own types).
    pub fn registry_for(&self, graph: &Graph) -> Registry {
        let mut r = self.engine.registry.clone();
        graph.nodes().iter().for_each(|n| r.register(n.provider.clone()));
        r
    }

    /// Plans `graph` against the loaded state, with the resources its `import` options name read
    /// from the cloud first.
    pub async fn plan(&self, graph: &Graph, selection: Option<Selection>) -> Result<Plan, EngineError> {
        let imports = self.engine.read_imports(graph, &self.state).await?;
        let inputs = PlanInputs { imports, selection, ..Default::default() };
        Ok(plan_with(graph, &self.state, &self.registry_for(graph), &inputs)?)
    }

    /// Plans the deletion of everything in state (or of a selection and what depends on it).
    pub fn plan_destroy(&self, selection: Option<&Selection>) -> Result<Plan, EngineError> {
        Ok(plan_destroy_with(&self.state, &self.engine.registry, selection)?)
    }

    /// Applies `plan`, made by [`Session::plan`] from `graph`.
    pub async fn apply(&mut self, graph: Arc<Graph>, plan: &Plan) -> Result<ApplyReport, EngineError> {
        self.require_lock("apply")?;
        self.engine.apply(graph, &mut self.state, plan).await
    }

    /// Applies a plan made by [`Session::plan_destroy`].
    pub async fn destroy(&mut self, plan: &Plan) -> Result<ApplyReport, EngineError> {
        self.require_lock("destroy")?;
        self.engine.destroy(&mut self.state, plan).await
    }

    fn require_lock(&self, what: &str) -> Result<(), EngineError> {
        if self.locked {
            return Ok(());
        }
        Err(EngineError::Provider(format!("cannot {what} in a read-only session: open it with Session::change")))
    }

    /// Ends the run: releases the lock it holds. A session dropped without `end` leaves its lock,
    /// as a killed process does; the next run of this host takes it over.
    pub async fn end(self) -> Result<State, EngineError> {
        if self.locked {
            self.engine.store.unlock().await?;
        }
        Ok(self.state)
    }

    /// The whole of `deploy --yes`: lock, recover, plan, apply, release.
    pub async fn deploy(engine: &Engine, graph: Arc<Graph>) -> Result<(Plan, ApplyReport), EngineError> {
        let mut session = Session::change_of(engine, "deploy", Some(&graph)).await?;
        let result = session.plan_and_apply(graph).await;
        session.end().await?;
        result
    }

    async fn plan_and_apply(&mut self, graph: Arc<Graph>) -> Result<(Plan, ApplyReport), EngineError> {
        let plan = self.plan(&graph, None).await?;
        let report = self.apply(graph, &plan).await?;
        Ok((plan, report))
    }

    /// The whole of `preview`: the plan of `graph`, nothing written.
    pub async fn preview(engine: &Engine, graph: &Graph) -> Result<Plan, EngineError> {
        Session::read(engine, Some(graph)).await?.plan(graph, None).await
    }

    /// The whole of `destroy --yes`: lock, recover, delete everything in state, release.
    pub async fn destroy_all(engine: &Engine) -> Result<(Plan, ApplyReport), EngineError> {
        let mut session = Session::change(engine, "destroy").await?;
        let result = match session.plan_destroy(None) {
            Ok(plan) => session.destroy(&plan).await.map(|report| (plan, report)),
            Err(e) => Err(e),
        };
        session.end().await?;
        result
    }
}
