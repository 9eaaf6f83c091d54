//! Snapshots of what the reference fabric generates (every spec, the first plan, the graph), and
//! its promises asserted: public subnets only, no NAT, the zone and bucket names, nodes across
//! every zone; bad config reported before anything runs.

use fabric::engine::render::render_plan;
use fabric::k8s::render::render_objects;
use fabric::state::State;
use fabric::testing::{cost_table, plan_against, policy_report, rendered_inputs, synthesize_env};
use serde_json::Value;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

fn graph(env: &str) -> fabric::model::Graph {
    synthesize_env("reference", env, CONFIG, reference::program).unwrap()
}

#[test]
fn graph_as_mermaid() {
    insta::assert_snapshot!(graph("develop").to_mermaid());
}

/// The policy report and the monthly cost (in the stack's own region) a preview shows.
#[test]
fn policy_and_cost() {
    let g = graph("develop");
    insta::assert_snapshot!("policy_develop", policy_report(&g, "2026-12-07"));
    insta::assert_snapshot!("cost_develop", cost_table(&g, g.region().unwrap()));
}

#[test]
fn generated_inputs() {
    insta::assert_json_snapshot!(rendered_inputs(&graph("develop")));
}

#[test]
fn every_kubernetes_object() {
    for object in render_objects(&graph("develop")) {
        let file = object.file_name.trim_end_matches(".yaml");
        insta::assert_snapshot!(format!("k8s_{}", file.split_once('-').map_or(file, |(_, r)| r)), object.yaml);
    }
}

#[test]
fn first_plan() {
    let g = graph("develop");
    insta::assert_snapshot!(render_plan(&plan_against(&g, &State::new("reference-develop"))));
}

#[test]
fn public_subnets_only_and_names_from_the_config() {
    for env in ["develop", "staging", "prod", "alice"] {
        let g = graph(env);
        assert_eq!(g.region(), Some("us-east-2"));
        let inputs = rendered_inputs(&g);
        let of_type =
            |t: &str| -> Vec<&Value> { inputs.as_object().unwrap().values().filter(|v| v["type"] == t).collect() };
        let subnets = of_type("aws:ec2:Subnet");
        assert_eq!(subnets.len(), 3, "{env}");
        assert!(subnets.iter().all(|s| s["inputs"]["map_public_ip_on_launch"] == true), "{env}");
        assert!(of_type("aws:ec2:NatGateway").is_empty() && of_type("aws:ec2:ElasticIp").is_empty(), "{env}");
        let zone = of_type("aws:route53:HostedZone");
        let fabric = if env == "develop" { "develop" } else { env };
        assert_eq!(zone[0]["inputs"]["domain"], format!("{fabric}.example.com."), "{env}");
        let buckets = of_type("aws:s3:Bucket");
        assert_eq!(buckets.len(), usize::from(env == "develop"), "{env}: one fabric owns the team bucket");
        if env == "develop" {
            assert_eq!(buckets[0]["inputs"]["bucket"], "example-com-state");
        }
        let groups = of_type("aws:eks:NodeGroup");
        assert_eq!(groups.len(), 1);
        let zones: Vec<&str> = subnets.iter().map(|s| s["inputs"]["availability_zone"].as_str().unwrap()).collect();
        assert_eq!(zones, ["us-east-2a", "us-east-2b", "us-east-2c"], "{env}: the nodes' subnets span every zone");
    }
}

#[test]
fn bad_config_is_reported_before_anything_runs() {
    let dir = tempfile_dir();
    std::fs::write(
        dir.join("bad.toml"),
        "fabric = \"_\"\nnetwork = 0\ndomain = \"example.com\"\nzones = [\"us-east-2a\", \"eu-west-1b\"]\n",
    )
    .unwrap();
    let err = synthesize_env("reference", "bad", &dir, reference::program).err().unwrap().to_string();
    assert!(err.contains("does not make a name"), "{err}");
    assert!(err.contains("2 zones; the reference fabric spans at least three"), "{err}");
    assert!(err.contains("`eu-west-1b` is not a zone of region us-east-2"), "{err}");
}

/// The shipped environments are numbered apart (the other tests synthesize each of them); two
/// environments with one number, or an out-of-range number, stop every environment's preview
/// before any call, naming both fabrics and free numbers.
#[test]
fn environments_are_numbered_apart() {
    let numbers: Vec<(String, u8)> = ["develop", "staging", "prod", "alice"]
        .iter()
        .map(|env| {
            let text = std::fs::read_to_string(format!("{CONFIG}/{env}.toml")).unwrap();
            (env.to_string(), toml_number(&text))
        })
        .collect();
    assert_eq!(numbers.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 2, 3, 10]);

    let dir = tempfile_dir().join("overlap");
    std::fs::create_dir_all(&dir).unwrap();
    for env in ["develop", "staging", "prod", "alice"] {
        std::fs::copy(format!("{CONFIG}/{env}.toml"), dir.join(format!("{env}.toml"))).unwrap();
    }
    let alice = std::fs::read_to_string(dir.join("alice.toml")).unwrap().replace("network = 10", "network = 2");
    std::fs::write(dir.join("alice.toml"), alice).unwrap();
    let err = synthesize_env("reference", "develop", &dir, reference::program).err().unwrap().to_string();
    assert!(err.contains("`staging` vpc 10.2.0.0/16 overlaps `alice` vpc 10.2.0.0/16"), "{err}");
    assert!(err.contains("`staging` services 10.130.0.0/16 overlaps `alice` services 10.130.0.0/16"), "{err}");
    assert!(err.contains("unused: 0, 4, 5"), "{err}");

    std::fs::write(
        dir.join("alice.toml"),
        std::fs::read_to_string(format!("{CONFIG}/alice.toml")).unwrap().replace("network = 10", "network = 200"),
    )
    .unwrap();
    let err = synthesize_env("reference", "develop", &dir, reference::program).err().unwrap().to_string();
    assert!(err.contains("alice.toml:4: key `network`: fabric number 200 is out of range"), "{err}");
}

fn toml_number(text: &str) -> u8 {
    text.lines().find_map(|l| l.strip_prefix("network = ")).unwrap().trim().parse().unwrap()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("reference-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The graph in docs/reference.md is the one `cargo xtask graph reference --mermaid` prints.
#[test]
fn the_documented_graph_is_current() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/reference.md")).unwrap();
    let block = doc.split("```mermaid\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    assert_eq!(block.trim(), graph("develop").to_mermaid().trim(), "regenerate it: cargo xtask docs");
}

/// Operator access: every fabric's nodes may take Session Manager sessions; develop and prod
/// reach it through VPC endpoints (no NAT); alice's bastion admits SSH from her block only, and
/// no fabric opens port 22 to the internet. `api_from = []` makes the cluster endpoint private.
#[test]
fn operators_get_in_without_open_ports() {
    for env in ["develop", "staging", "prod", "alice"] {
        let inputs = rendered_inputs(&graph(env));
        let of_type =
            |t: &str| -> Vec<&Value> { inputs.as_object().unwrap().values().filter(|v| v["type"] == t).collect() };
        let ssm_policy = of_type("aws:iam:RolePolicyAttachment")
            .iter()
            .any(|a| a["inputs"]["policy_arn"] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore");
        assert!(ssm_policy, "{env}: the nodes' role lets Session Manager in");
        let mut services: Vec<&str> =
            of_type("aws:ec2:VpcEndpoint").iter().map(|e| e["inputs"]["service"].as_str().unwrap()).collect();
        services.sort();
        let expected: &[&str] =
            if env == "develop" || env == "prod" { &["ec2messages", "ssm", "ssmmessages"] } else { &[] };
        assert_eq!(services, expected, "{env}");
        let ssh: Vec<&str> = of_type("aws:ec2:SecurityGroupIngressRule")
            .iter()
            .filter(|r| r["inputs"]["from_port"] == 22)
            .map(|r| r["inputs"]["cidr_ipv4"].as_str().unwrap())
            .collect();
        assert_eq!(ssh, if env == "alice" { vec!["203.0.113.0/24"] } else { vec![] }, "{env}");
        assert_eq!(of_type("aws:ec2:Instance").len(), usize::from(env == "alice"), "{env}: the bastion");
    }

    let dir = tempfile_dir().join("access");
    std::fs::create_dir_all(&dir).unwrap();
    for env in ["develop", "staging", "prod", "alice"] {
        std::fs::copy(format!("{CONFIG}/{env}.toml"), dir.join(format!("{env}.toml"))).unwrap();
    }
    let private = std::fs::read_to_string(dir.join("staging.toml")).unwrap() + "\n[access]\napi_from = []\n";
    std::fs::write(dir.join("staging.toml"), private).unwrap();
    let inputs = rendered_inputs(&synthesize_env("reference", "staging", &dir, reference::program).unwrap());
    let cluster = &inputs["reference-staging::aws:eks:Cluster::main"]["inputs"];
    assert_eq!(
        (cluster["endpoint_public"].as_bool(), cluster["endpoint_private"].as_bool()),
        (Some(false), Some(true))
    );

    let open = std::fs::read_to_string(dir.join("alice.toml")).unwrap().replace("203.0.113.0/24", "0.0.0.0/0");
    std::fs::write(dir.join("alice.toml"), open).unwrap();
    let err = synthesize_env("reference", "alice", &dir, reference::program).err().unwrap().to_string();
    assert!(err.contains("SSH from the whole internet (0.0.0.0/0) is refused"), "{err}");
}

/// develop's config with `extra` top-level settings and `sections` added.
fn develop_with(extra: &str, sections: &str) -> Result<fabric::model::Graph, String> {
    let dir = tempfile::tempdir().unwrap();
    let develop = std::fs::read_to_string(format!("{CONFIG}/develop.toml")).unwrap();
    std::fs::write(dir.path().join("develop.toml"), format!("{extra}\n{develop}\n{sections}")).unwrap();
    synthesize_env("reference", "develop", dir.path().to_str().unwrap(), reference::program).map_err(|e| e.to_string())
}

/// `[db]` (RDS or Aurora), `[cache]` and `[search]` with a private tier: each in the private
/// subnets, admitting the cluster's nodes only, its URL exported as a secret; without a private
/// tier each is refused by name before anything runs.
#[test]
fn data_services_need_the_private_tier_and_admit_the_cluster_only() {
    let sections = "[db]\nengine = \"aurora\"\ninstance_class = \"db.r6g.large\"\nreaders = 2\n\n\
        [cache]\nnode_type = \"cache.t4g.small\"\nreplicas = 2\n\n\
        [search]\ninstance_type = \"m7g.large.search\"\ninstance_count = 3\nvolume_gb = 20\n";
    let g = develop_with("nat = \"single\"", sections).unwrap();
    let inputs = rendered_inputs(&g);
    let types: Vec<&str> = inputs.as_object().unwrap().values().filter_map(|v| v["type"].as_str()).collect();
    for t in ["aws:rds:DbCluster", "aws:elasticache:ReplicationGroup", "aws:opensearch:Domain", "aws:ec2:NatGateway"] {
        assert!(types.contains(&t), "{t} missing: {types:?}");
    }
    assert_eq!(types.iter().filter(|t| **t == "aws:rds:ClusterInstance").count(), 3);
    for rule in ["db/db-from-cluster-main", "cache/cache-from-cluster-main", "search/search-from-cluster-main"] {
        let rule = &inputs[format!("reference-develop::aws:ec2:SecurityGroupIngressRule::{rule}")]["inputs"];
        assert_eq!(
            rule["source_security_group_id"]["$unknown"],
            "reference-develop::aws:eks:Cluster::main.node_security_group_id"
        );
        assert_eq!(rule["cidr_ipv4"], Value::Null);
    }
    // Private subnets for the data services, the nodes in them too.
    let domain = &inputs["reference-develop::aws:opensearch:Domain::search"]["inputs"];
    assert!(domain["subnet_ids"]["$unknown"].as_str().unwrap().contains("main/private-"), "{domain}");
    let exports = g.exports(&fabric::model::NothingKnown);
    for export in ["db_url", "redis_url", "search_url"] {
        assert!(exports.contains_key(export), "{export}: {exports:?}");
    }

    let err = develop_with("", "[cache]\nnode_type = \"cache.t4g.small\"\nreplicas = 2\n").err().unwrap();
    assert!(
        err.contains("fabric:Config \"develop\" field `cache`: [cache] needs private subnets, and `nat` is \"none\""),
        "{err}"
    );
    assert!(err.contains("set `nat = \"single\"`"), "{err}");
    let err =
        develop_with("nat = \"single\"", "[db]\nengine = \"mysql\"\ninstance_class = \"db.t4g.medium\"\nreaders = 1\n")
            .err()
            .unwrap();
    assert!(err.contains("field `db.engine`: `mysql` is not a database engine"), "{err}");
    assert!(err.contains("field `db.readers`: `readers` is a setting of engine = \"aurora\""), "{err}");
}
