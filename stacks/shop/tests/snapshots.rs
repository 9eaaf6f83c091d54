//! Snapshots of what the shop stack generates: its graph, every resource's inputs, and the first
//! plan. Review changes with `cargo insta review`.

use fabric::engine::render::render_plan;
use fabric::state::State;
use fabric::testing::{plan_against, rendered_inputs, synthesize};

fn graph() -> fabric::model::Graph {
    synthesize("shop", shop::program).unwrap()
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
    insta::assert_snapshot!(render_plan(&plan_against(&g, &State::new("shop"))));
}

#[test]
fn the_database_has_no_public_path() {
    let inputs = rendered_inputs(&graph());
    let db = &inputs["shop::aws:rds:DbInstance::db"]["inputs"];
    assert_eq!(db["publicly_accessible"], false);
    // Its group admits 5432 from the application group only.
    let rules: Vec<_> = inputs
        .as_object()
        .unwrap()
        .values()
        .filter(|v| v["type"] == "aws:ec2:SecurityGroupIngressRule")
        .filter(|v| v["deps"].as_array().unwrap().iter().any(|d| d == "shop::aws:ec2:SecurityGroup::db/db"))
        .collect();
    assert!(!rules.is_empty());
    for r in rules {
        assert_eq!(r["inputs"]["cidr_ipv4"], serde_json::Value::Null, "no CIDR source: {r}");
        assert_eq!((r["inputs"]["from_port"].as_i64(), r["inputs"]["to_port"].as_i64()), (Some(5432), Some(5432)));
    }
}
