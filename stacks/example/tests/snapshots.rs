//! Snapshots of what the example stack generates: its graph, every resource's inputs, and the
//! first plan. Review changes with `cargo insta review`.

use fabric::engine::plan_json;
use fabric::engine::render::render_plan;
use fabric::state::State;
use fabric::testing::{plan_against, rendered_inputs, synthesize};

fn graph() -> fabric::model::Graph {
    synthesize("example", example::program).unwrap()
}

#[test]
fn graph_as_mermaid() {
    insta::assert_snapshot!(graph().to_mermaid());
}

#[test]
fn generated_inputs() {
    insta::assert_json_snapshot!(rendered_inputs(&graph()));
}

#[test]
fn first_plan() {
    let g = graph();
    let plan = plan_against(&g, &State::new("example"));
    insta::assert_snapshot!("first_plan_text", render_plan(&plan));
    insta::assert_json_snapshot!("first_plan_json", plan_json(&plan));
}
