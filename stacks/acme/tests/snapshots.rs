//! Snapshots of what the acme stack generates, per environment: the graph, every resource's
//! inputs, every Kubernetes object as YAML, and the first plan — and the isolation the fabric
//! promises, asserted over those specs. Review changes with `cargo insta review`.

use fabric::engine::render::render_plan;
use fabric::k8s::render::render_objects;
use fabric::model::Graph;
use fabric::state::State;
use fabric::testing::{plan_against, rendered_inputs, synthesize_env};
use serde_json::Value;

fn graph(env: &str) -> Graph {
    synthesize_env("acme", env, concat!(env!("CARGO_MANIFEST_DIR"), "/config"), acme::program).unwrap()
}

#[test]
fn graph_as_mermaid() {
    insta::assert_snapshot!(graph("prod").to_mermaid());
}

#[test]
fn generated_inputs() {
    for env in ["dev", "prod"] {
        insta::assert_json_snapshot!(format!("inputs_{env}"), rendered_inputs(&graph(env)));
    }
}

#[test]
fn every_kubernetes_object() {
    for env in ["dev", "prod"] {
        for object in render_objects(&graph(env)) {
            // Named without the sequence number, so that a new object does not rename the others.
            let file = object.file_name.trim_end_matches(".yaml");
            let name = format!("k8s_{env}_{}", file.split_once('-').map_or(file, |(_, rest)| rest));
            insta::assert_snapshot!(name, object.yaml);
        }
    }
}

#[test]
fn first_plan() {
    let g = graph("prod");
    insta::assert_snapshot!(render_plan(&plan_against(&g, &State::new("acme-prod"))));
}

fn objects(env: &str) -> Vec<Value> {
    render_objects(&graph(env)).into_iter().map(|o| o.object).collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name}"))
}

/// db and metrics have no public path: the database is private and admits only the cluster's
/// nodes on 5432; Prometheus is a ClusterIP service no load balancer rule points at.
#[test]
fn internal_components_are_isolated() {
    for env in ["dev", "prod"] {
        let inputs = rendered_inputs(&graph(env));
        let stack = format!("acme-{env}");
        let db = &inputs[format!("{stack}::aws:rds:DbInstance::db")]["inputs"];
        assert_eq!(db["publicly_accessible"], false);
        assert_eq!(db["storage_encrypted"], true);
        assert_eq!(db["multi_az"], true);
        assert!(db["backup_retention_days"].as_i64().unwrap() >= 7, "point-in-time recovery");
        let db_group = format!("{stack}::aws:ec2:SecurityGroup::db/db");
        let db_rules: Vec<&Value> = inputs
            .as_object()
            .unwrap()
            .values()
            .filter(|v| v["type"] == "aws:ec2:SecurityGroupIngressRule")
            .filter(|v| v["deps"].as_array().unwrap().iter().any(|d| d == &db_group))
            .collect();
        assert_eq!(db_rules.len(), 1, "one rule into the database group");
        let rule = &db_rules[0]["inputs"];
        assert_eq!(rule["cidr_ipv4"], Value::Null, "no CIDR source");
        assert_eq!((rule["from_port"].as_i64(), rule["to_port"].as_i64()), (Some(5432), Some(5432)));
        assert!(rule["description"].as_str().unwrap().contains("nodes of cluster main"));

        // Only ui and api are routed; every load balancer rule targets one of them.
        let hosts: Vec<&str> = inputs
            .as_object()
            .unwrap()
            .values()
            .filter(|v| v["type"] == "aws:elbv2:ListenerRule")
            .map(|v| v["inputs"]["host"].as_str().unwrap())
            .collect();
        assert_eq!(hosts.len(), 2);
        assert!(hosts.iter().all(|h| h.starts_with("api.") || h.starts_with("www.")), "{hosts:?}");

        let objects = objects(env);
        let metrics = find(&objects, "Service", "metrics");
        assert_eq!(metrics["spec"]["type"], "ClusterIP");
        assert_eq!(metrics["spec"]["ports"][0]["port"], 80);
        for o in objects.iter().filter(|o| o["kind"] == "Service") {
            assert_ne!(o["spec"]["type"], "LoadBalancer", "no service opens its own load balancer");
            let routed = o["spec"]["type"] == "NodePort";
            let name = o["metadata"]["name"].as_str().unwrap();
            assert_eq!(routed, name == "api" || name == "ui", "{name}");
        }
        // Nodes run in private subnets only.
        let cluster = &inputs[format!("{stack}::aws:eks:Cluster::main")]["inputs"];
        assert_eq!(cluster["endpoint_private"], true);
        let private =
            inputs.as_object().unwrap().iter().filter(|(k, _)| k.contains("aws:ec2:Subnet::main/private")).count();
        assert_eq!(private, 3);
    }
}

/// The database URL reaches the api only through a Kubernetes Secret and `secretKeyRef`, and no
/// secret is in plain text in any generated spec.
#[test]
fn secrets_never_appear_in_plain_text() {
    let objects = objects("prod");
    let api = find(&objects, "Deployment", "api");
    let env = api["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
    let url = env.iter().find(|e| e["name"] == "POSTGRES_URL").unwrap();
    assert_eq!(url.get("value"), None);
    assert_eq!(url["valueFrom"]["secretKeyRef"]["name"], "api-env");
    let metrics = env.iter().find(|e| e["name"] == "METRICS_URL").unwrap();
    assert_eq!(metrics["value"], "http://metrics.acme.svc.cluster.local");
    let secret = find(&objects, "Secret", "api-env");
    assert_eq!(secret["stringData"]["POSTGRES_URL"], "(known after apply)");
    let all = serde_json::to_string(&rendered_inputs(&graph("prod"))).unwrap();
    assert!(!all.contains("postgres://"), "no database URL in the generated specs");
}

/// Zero-downtime defaults on every web service.
#[test]
fn web_services_roll_without_downtime() {
    let objects = objects("prod");
    for name in ["api", "ui"] {
        let d = find(&objects, "Deployment", name);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert!(c["readinessProbe"].is_object() && c["livenessProbe"].is_object());
        assert!(c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object());
        assert!(c["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64().unwrap() > 0);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "topology.kubernetes.io/zone");
        assert_eq!(d["spec"].get("replicas"), None, "the autoscaler owns the replica count");
        let hpa = find(&objects, "HorizontalPodAutoscaler", name);
        assert!(hpa["spec"]["minReplicas"].as_i64().unwrap() >= 2);
        assert_eq!(find(&objects, "PodDisruptionBudget", name)["spec"]["maxUnavailable"], 1);
    }
}

/// docs/metrics.md lists exactly the scrape jobs the stack deploys.
#[test]
fn the_metrics_overview_matches_the_scrape_config() {
    let objects = objects("prod");
    let config = find(&objects, "ConfigMap", "metrics-config")["data"]["prometheus.yml"].as_str().unwrap().to_string();
    let jobs: Vec<&str> = config.lines().filter_map(|l| l.trim().strip_prefix("- job_name: ")).collect();
    assert_eq!(jobs.len(), 4, "{config}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md")).unwrap();
    let listed: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("## What Prometheus scrapes"))
        .take_while(|l| !l.starts_with("## Golden"))
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(listed, jobs, "docs/metrics.md and the deployed scrape config differ");
}

/// The graph in docs/acme.md is the one `cargo xtask graph acme --mermaid` prints.
#[test]
fn the_documented_graph_is_current() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/acme.md")).unwrap();
    let block = doc.split("```mermaid\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    assert_eq!(block.trim(), graph("dev").to_mermaid().trim(), "regenerate it: cargo xtask docs");
}
