//! Snapshots of what the acme stack generates, per environment: the graph, every resource's
//! inputs, every Kubernetes object as YAML, and the first plan — and the isolation the fabric
//! promises, asserted over those specs. Review changes with `cargo insta review`.

use fabric::engine::render::render_plan;
use fabric::k8s::render::render_objects;
use fabric::model::Graph;
use fabric::state::State;
use fabric::testing::{cost_table, plan_against, policy_report, rendered_inputs, synthesize_env};
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

/// The policy report and the monthly cost each environment previews with: prod has no mandatory
/// finding; dev shows its advisory ones.
#[test]
fn policy_and_cost() {
    for env in ["dev", "prod"] {
        let g = graph(env);
        insta::assert_snapshot!(format!("policy_{env}"), policy_report(&g, "2026-12-07"));
        insta::assert_snapshot!(format!("cost_{env}"), cost_table(&g, "us-east-1"));
    }
    let prod = fabric::policy::check(&graph("prod"), "2026-12-07").unwrap();
    assert!(!prod.blocks(), "{}", prod.render());
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
        // A rollout that cannot finish fails at its deadline (60 s to start + 15 s of probes).
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 75);
    }
}

/// Prod deploys atomically (its config says so: a failed deploy goes back); dev does not.
#[test]
fn prod_deploys_are_atomic_and_dev_ones_are_not() {
    assert!(graph("prod").atomic());
    assert!(!graph("dev").atomic());
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

/// Who talks to whom, by the rendered NetworkPolicies (the semantics of `networking.k8s.io/v1`
/// for the shapes fabric emits: podSelector, namespaceSelector, ipBlock, TCP/UDP ports).
mod reachability {
    use serde_json::Value;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    /// A pod (namespace and labels) or an address outside the cluster.
    #[derive(Clone, Debug)]
    pub enum Peer {
        Pod { namespace: String, labels: BTreeMap<String, String> },
        Address(Ipv4Addr),
    }

    fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
        selector["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    }

    fn in_block(block: &Value, ip: Ipv4Addr) -> bool {
        let net: ipnet::Ipv4Net = block["cidr"].as_str().unwrap().parse().unwrap();
        net.contains(&ip)
    }

    /// Whether `peer` matches one `from`/`to` entry of a policy in `namespace`.
    fn matches(entry: &Value, namespace: &str, peer: &Peer) -> bool {
        match peer {
            Peer::Address(ip) => entry.get("ipBlock").is_some_and(|b| in_block(b, *ip)),
            Peer::Pod { namespace: ns, labels } => {
                if entry.get("ipBlock").is_some() {
                    return false;
                }
                let ns_ok = match entry.get("namespaceSelector") {
                    Some(sel) => selects(sel, &[("kubernetes.io/metadata.name".to_string(), ns.clone())].into()),
                    None => ns == namespace,
                };
                ns_ok && entry.get("podSelector").is_none_or(|sel| selects(sel, labels))
            }
        }
    }

    fn port_ok(rule: &Value, protocol: &str, port: i64) -> bool {
        match rule.get("ports").and_then(Value::as_array) {
            None => true,
            Some(ports) => ports.iter().any(|p| p["protocol"] == protocol && p["port"].as_i64() == Some(port)),
        }
    }

    /// Whether the policies let `from` send to `to` on `protocol`/`port`: egress of `from` (if
    /// a pod some policy isolates) and ingress of `to` (if a pod some policy isolates).
    pub fn allowed(policies: &[Value], from: &Peer, to: &Peer, protocol: &str, port: i64) -> bool {
        let side = |pod: &Peer, direction: &str, other: &Peer| -> bool {
            let Peer::Pod { namespace, labels } = pod else { return true };
            let key = if direction == "Egress" { "egress" } else { "ingress" };
            let peers = if direction == "Egress" { "to" } else { "from" };
            let applying: Vec<&Value> = policies
                .iter()
                .filter(|p| p["metadata"]["namespace"] == namespace.as_str())
                .filter(|p| p["spec"]["policyTypes"].as_array().unwrap().iter().any(|t| t == direction))
                .filter(|p| selects(&p["spec"]["podSelector"], labels))
                .collect();
            if applying.is_empty() {
                return true;
            }
            applying.iter().flat_map(|p| p["spec"][key].as_array().cloned().unwrap_or_default()).any(|rule| {
                let peer_ok = match rule.get(peers).and_then(Value::as_array) {
                    None => true,
                    Some(list) => list.iter().any(|e| matches(e, namespace, other)),
                };
                peer_ok && port_ok(&rule, protocol, port)
            })
        };
        side(from, "Egress", to) && side(to, "Ingress", from)
    }
}

/// acme's "internal components isolated" promise, inside the cluster: one default-deny policy
/// in the namespace, and explicit allows only — the load balancer to api and ui on their ports,
/// api to Prometheus and to the database subnets on 5432, Prometheus to what it scrapes, DNS.
#[test]
fn inside_the_cluster_only_the_declared_paths_are_open() {
    use reachability::{Peer, allowed};
    for env in ["dev", "prod"] {
        let objects = objects(env);
        let policies: Vec<Value> = objects.iter().filter(|o| o["kind"] == "NetworkPolicy").cloned().collect();
        let pod = |kind: &str, name: &str| {
            let o = find(&objects, kind, name);
            let labels = o["spec"]["template"]["metadata"]["labels"].as_object().unwrap();
            Peer::Pod {
                namespace: o["metadata"]["namespace"].as_str().unwrap().to_string(),
                labels: labels.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect(),
            }
        };
        let (api, ui, metrics) = (pod("Deployment", "api"), pod("Deployment", "ui"), pod("StatefulSet", "metrics"));
        let dns = Peer::Pod {
            namespace: "kube-system".into(),
            labels: [("k8s-app".to_string(), "kube-dns".to_string())].into(),
        };
        let elsewhere = Peer::Pod {
            namespace: "other".into(),
            labels: [("app.kubernetes.io/name".to_string(), "api".to_string())].into(),
        };
        // The database lives in the private subnets (10.0.0.0/16 is acme's VPC).
        let inputs = rendered_inputs(&graph(env));
        let private_subnet = inputs
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.contains("aws:ec2:Subnet::main/private-a"))
            .map(|(_, v)| v["inputs"]["cidr_block"].as_str().unwrap().parse::<ipnet::Ipv4Net>().unwrap())
            .unwrap();
        let db = Peer::Address(private_subnet.hosts().nth(10).unwrap());
        let internet = Peer::Address("203.0.113.10".parse().unwrap());

        let open = [
            ("api → db:5432", &api, &db, 5432),
            ("api → metrics:9090", &api, &metrics, 9090),
            ("internet → api:8443", &internet, &api, 8443),
            ("internet → ui:8080", &internet, &ui, 8080),
            ("metrics scrapes api:8443", &metrics, &api, 8443),
            ("metrics scrapes ui:8080", &metrics, &ui, 8080),
            ("api → DNS", &api, &dns, 53),
            ("ui → DNS", &ui, &dns, 53),
            ("metrics → DNS", &metrics, &dns, 53),
            // The uploads bucket: the AWS APIs over HTTPS (public addresses only), for the api
            // alone, which reaches it.
            ("api → AWS APIs:443", &api, &internet, 443),
        ];
        for (what, from, to, port) in open {
            assert!(allowed(&policies, from, to, "TCP", port), "{env}: {what} must be open");
        }
        let closed = [
            ("ui → db:5432", &ui, &db, 5432),
            ("metrics → db:5432", &metrics, &db, 5432),
            ("api → db:22", &api, &db, 22),
            ("api → internet:80", &api, &internet, 80),
            ("ui → internet:443", &ui, &internet, 443),
            ("metrics → internet:443", &metrics, &internet, 443),
            ("ui → metrics:9090", &ui, &metrics, 9090),
            ("another namespace → metrics:9090", &elsewhere, &metrics, 9090),
            ("internet → metrics:9090", &internet, &metrics, 9090),
            ("ui → api:9999", &ui, &api, 9999),
            ("api → ui:8080", &api, &ui, 8080),
        ];
        for (what, from, to, port) in closed {
            assert!(!allowed(&policies, from, to, "TCP", port), "{env}: {what} must be closed");
        }
        // Every pod of the namespace is under the default deny, both ways.
        let deny = find(&objects, "NetworkPolicy", "default-deny");
        assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
        assert_eq!(deny["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    }
}

/// The hardened defaults, as generated: the autoscaler may resize only its own cluster's groups
/// and is restarted when unhealthy; workloads run with read-only root filesystems; prod's API
/// endpoint is open only to the ranges in its config, and dev's, open to all, is warned about.
#[test]
fn hardened_defaults_are_in_the_generated_specs() {
    for env in ["dev", "prod"] {
        let inputs = rendered_inputs(&graph(env));
        let stack = format!("acme-{env}");
        let policy = &inputs[format!("{stack}::aws:iam:RolePolicy::eks-main-cluster-autoscaler")]["inputs"]["document"];
        let statements = policy["Statement"].as_array().unwrap();
        let scaling = statements.iter().find(|s| s["Action"].to_string().contains("SetDesiredCapacity")).unwrap();
        assert_eq!(
            scaling["Condition"]["StringEquals"][format!("aws:ResourceTag/k8s.io/cluster-autoscaler/{stack}-main")],
            "owned"
        );
        for s in statements.iter().filter(|s| s.get("Condition").is_none()) {
            assert!(!s["Action"].to_string().contains("SetDesiredCapacity"), "{s}");
            assert!(!s["Action"].to_string().contains("TerminateInstance"), "{s}");
        }
        let objects = objects(env);
        let autoscaler =
            &find(&objects, "Deployment", "cluster-autoscaler")["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(autoscaler["livenessProbe"]["httpGet"]["path"], "/health-check");
        for (kind, name) in [
            ("Deployment", "api"),
            ("Deployment", "ui"),
            ("StatefulSet", "metrics"),
            ("Deployment", "cluster-autoscaler"),
        ] {
            let c = &find(&objects, kind, name)["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{kind} {name}");
        }
        let api = &find(&objects, "Deployment", "api")["spec"]["template"]["spec"];
        assert_eq!(api["containers"][0]["volumeMounts"][0]["mountPath"], "/tmp");
        assert!(api["volumes"][0]["emptyDir"].is_object());

        // Nodes: IMDSv2 only, one hop (pods cannot take the node's role), through their template.
        let template = &inputs[format!("{stack}::aws:ec2:LaunchTemplate::main-general")];
        assert_eq!(template["inputs"]["http_tokens"], "required");
        assert_eq!(template["inputs"]["hop_limit"], 1);
        let group = &inputs[format!("{stack}::aws:eks:NodeGroup::main/general")]["inputs"];
        assert_eq!(
            group["launch_template"]["id"]["$unknown"],
            format!("{stack}::aws:ec2:LaunchTemplate::main-general.id"),
            "{group}"
        );

        // NetworkPolicies are enforced: the VPC CNI runs its network policy agent.
        let cni = &inputs[format!("{stack}::aws:eks:Addon::main/vpc-cni")]["inputs"];
        assert_eq!(cni["configuration"], fabric::aws::eks::VPC_CNI_CONFIGURATION);

        // Secrets envelope-encrypted with the stack's own key; the control plane may use that key only.
        let cluster = &inputs[format!("{stack}::aws:eks:Cluster::main")]["inputs"];
        assert_eq!(cluster["secrets_key_arn"]["$unknown"], format!("{stack}::aws:kms:Key::eks-main-secrets.arn"));
        let key_use = &inputs[format!("{stack}::aws:iam:RolePolicy::eks-main-cluster-secrets")]["inputs"]["document"];
        assert_eq!(
            key_use["Statement"][0]["Condition"]["StringEquals"]["aws:ResourceTag/fabric:urn"],
            format!("{stack}::aws:kms:Key::eks-main-secrets")
        );

        let cidrs = &inputs[format!("{stack}::aws:eks:Cluster::main")]["inputs"]["public_access_cidrs"];
        // An endpoint open to all is policy rule FAB-EKS-1 (advisory), shown with every plan.
        let report = fabric::policy::check(&graph(env), "2026-12-07").unwrap();
        let warned =
            report.findings.iter().any(|f| f.rule == "FAB-EKS-1" && f.violation.field == "public_access_cidrs");
        match env {
            "prod" => {
                assert_eq!(cidrs, &serde_json::json!(["203.0.113.0/24", "198.51.100.7/32"]));
                assert!(!warned);
            }
            _ => {
                assert_eq!(cidrs, &serde_json::json!(["0.0.0.0/0"]));
                assert!(warned, "an endpoint open to all is warned about in every plan");
            }
        }
    }
}

/// The api reaches the database by its internal name: its Secret waits for the record
/// `db.<stack>.internal` (in a zone private to the VPC), not for the instance's own address, so a
/// restore or a replacement changes one record.
#[test]
fn the_api_connects_by_the_internal_name() {
    let inputs = rendered_inputs(&graph("dev"));
    let secret = &inputs["acme-dev::k8s:v1:Secret::main/acme/api-env"];
    let deps: Vec<&str> = secret["deps"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert!(deps.contains(&"acme-dev::aws:route53:Record::db"), "{deps:?}");
    assert!(!deps.contains(&"acme-dev::aws:rds:DbInstance::db"), "{deps:?}");
    let zone = &inputs["acme-dev::aws:route53:HostedZone::internal"];
    assert_eq!(zone["inputs"]["domain"], "acme-dev.internal.");
    assert_eq!(zone["inputs"]["vpc_id"]["$unknown"], "acme-dev::aws:ec2:Vpc::main.id", "private to the fabric's VPC");
    let record = &inputs["acme-dev::aws:route53:Record::db"];
    assert_eq!(record["inputs"]["name"], "db.acme-dev.internal.");
    assert_eq!(record["inputs"]["values"][0]["$unknown"], "acme-dev::aws:rds:DbInstance::db.address");
}

/// `[db]` of `dev.toml` replaced by `db`, in a config directory of its own.
fn with_db(db: &str) -> Result<Graph, String> {
    let dir = tempfile::tempdir().unwrap();
    let dev = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml")).unwrap();
    let start = dev.find("[db]\n").unwrap();
    let end = dev[start + 1..].find("\n[").map_or(dev.len(), |e| start + 1 + e + 1);
    std::fs::write(dir.path().join("dev.toml"), format!("{}{db}\n{}", &dev[..start], &dev[end..])).unwrap();
    synthesize_env("acme", "dev", dir.path().to_str().unwrap(), acme::program).map_err(|e| e.to_string())
}

/// `[db] engine = "aurora"`: an Aurora cluster (a writer and its readers) behind the same
/// internal name, reached the same way; settings of the other engine are refused by name.
#[test]
fn the_database_can_be_aurora() {
    let g = with_db(
        "[db]\nengine = \"aurora\"\ninstance_class = \"db.r6g.large\"\nreaders = 2\ndeletion_protection = false\n",
    )
    .unwrap();
    let inputs = rendered_inputs(&g);
    let types: Vec<&str> = inputs.as_object().unwrap().values().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(types.iter().filter(|t| **t == "aws:rds:ClusterInstance").count(), 3);
    assert!(types.contains(&"aws:rds:DbCluster") && !types.contains(&"aws:rds:DbInstance"), "{types:?}");
    let record = &inputs["acme-dev::aws:route53:Record::db"];
    assert_eq!(record["inputs"]["values"][0]["$unknown"], "acme-dev::aws:rds:DbCluster::db.address");
    assert_eq!(inputs["acme-dev::aws:rds:DbCluster::db"]["inputs"]["deletion_protection"], false);
    // The nodes are admitted to the cluster's group as to the instance's.
    assert!(
        inputs.as_object().unwrap().contains_key("acme-dev::aws:ec2:SecurityGroupIngressRule::db/db-from-cluster-main")
    );

    let err = with_db(
        "[db]\nengine = \"aurora\"\ninstance_class = \"db.r6g.large\"\nstorage_gb = 20\ndeletion_protection = false\n",
    )
    .err()
    .unwrap();
    assert!(err.contains("`db.storage_gb` is a setting of engine = \"postgres\""), "{err}");
    let err =
        with_db("[db]\ninstance_class = \"db.t4g.medium\"\nreaders = 1\ndeletion_protection = false\n").err().unwrap();
    assert!(err.contains("`db.readers` is a setting of engine = \"aurora\""), "{err}");
    assert!(err.contains("[db] with engine = \"postgres\" needs `storage_gb`"), "{err}");
}
