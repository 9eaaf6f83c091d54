//! Helpers for stack tests: a program run into a validated graph, its rendered specs, and its
//! plan against a given state with the standard providers; and (from `fabric-core`) an in-memory
//! cloud and provider for engine tests and benchmarks.

pub use fabric_core::testing::*;

use crate::model::Stack;
use serde_json::Value;

/// Runs a stack program into a validated graph (for snapshot tests).
///
/// ```
/// let graph = fabric::testing::synthesize("demo", |s| {
///     fabric::aws::ec2::Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(s)?;
///     Ok(())
/// }).unwrap();
/// assert_eq!(graph.nodes().len(), 1);
/// ```
pub fn synthesize(
    stack: &str,
    program: impl FnOnce(&mut Stack) -> crate::Result<()>,
) -> Result<crate::model::Graph, crate::Error> {
    let mut s = Stack::new(stack);
    program(&mut s)?;
    Ok(s.finish()?)
}

/// Like [`synthesize`], for environment `env` of a stack whose config lives in `config_dir`
/// (`<config_dir>/<env>.toml`), as `--env` does.
pub fn synthesize_env(
    stack: &str,
    env: &str,
    config_dir: impl AsRef<std::path::Path>,
    program: impl FnOnce(&mut Stack) -> crate::Result<()>,
) -> Result<crate::model::Graph, crate::Error> {
    let mut s = Stack::for_env(stack, env, config_dir.as_ref().join(format!("{env}.toml")));
    program(&mut s)?;
    Ok(s.finish()?)
}

/// The policy report of `graph` as every plan shows it, as of `today` (`YYYY-MM-DD`), for
/// snapshot tests; a waiver of an unknown rule panics with its error.
pub fn policy_report(graph: &crate::model::Graph, today: &str) -> String {
    match crate::policy::check(graph, today) {
        Ok(report) => report.render(),
        Err(errors) => panic!("{errors}"),
    }
}

/// The monthly cost of `graph` in `region`, as `cost` prints it, for snapshot tests.
pub fn cost_table(graph: &crate::model::Graph, region: &str) -> String {
    let view = crate::model::policy::PolicyView::of_graph(graph);
    crate::cost::render_breakdown(&crate::cost::estimate(&view, region, graph.assumptions()))
}

/// Every resource's inputs as the first deploy would plan them: what a snapshot of the generated
/// specs holds (see [`crate::engine::render::render_inputs`]).
pub fn rendered_inputs(graph: &crate::model::Graph) -> Value {
    crate::engine::render::render_inputs(graph)
}

/// The plan of `graph` against `state` (an empty one: the first deploy), with the standard
/// providers.
pub fn plan_against(graph: &crate::model::Graph, state: &crate::state::State) -> crate::engine::Plan {
    let mut registry = crate::providers::registry();
    graph.nodes().iter().for_each(|n| registry.register(n.provider.clone()));
    crate::engine::plan(graph, state, &registry).expect("the plan of a validated graph")
}
