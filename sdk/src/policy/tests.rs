//! One case per built-in rule: a stack that breaks it and one that does not. The table must name
//! every rule of the pack.

use super::*;
use crate::model::Urn;
use crate::model::policy::PolicyResource;
use serde_json::{Value, json};

/// A resource of stack `t`, with its inputs and the resources (type, name) it depends on.
pub(crate) fn res(type_name: &str, name: &str, inputs: Value, deps: &[(&str, &str)]) -> PolicyResource {
    PolicyResource {
        urn: Urn::new("t", type_name, name),
        type_name: type_name.into(),
        inputs,
        deps: deps.iter().map(|(t, n)| Urn::new("t", t, n)).collect(),
    }
}

fn unknown(type_name: &str, name: &str, field: &str) -> Value {
    json!({"$unknown": format!("t::{type_name}::{name}.{field}")})
}

fn k8s(kind: &str, name: &str, manifest: Value) -> PolicyResource {
    let api = match kind {
        "Deployment" | "StatefulSet" => "apps/v1",
        "NetworkPolicy" => "networking.k8s.io/v1",
        "PodDisruptionBudget" => "policy/v1",
        _ => "v1",
    };
    res(&format!("k8s:{api}:{kind}"), name, json!({ "manifest": manifest }), &[])
}

fn pod(container: Value) -> Value {
    json!({"metadata": {"labels": {"app": "api"}},
           "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 10001}, "containers": [container]}})
}

fn good_container() -> Value {
    json!({"name": "api", "image": "acme/api:1.4.2",
           "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
           "securityContext": {"allowPrivilegeEscalation": false}})
}

fn deployment(replicas: i64, container: Value) -> PolicyResource {
    k8s(
        "Deployment",
        "api",
        json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"replicas": replicas, "template": pod(container)}}),
    )
}

fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    let shown = v.to_string();
    *v.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} in {shown}")) = value;
    v
}

fn cluster() -> Value {
    json!({"endpoint_public": true, "public_access_cidrs": ["203.0.113.0/24"], "logging": ["api", "audit", "authenticator"],
           "secrets_key_arn": unknown("aws:kms:Key", "k", "arn")})
}

fn node_group(template: Value) -> Vec<PolicyResource> {
    vec![
        res("aws:ec2:LaunchTemplate", "lt", template, &[]),
        res(
            "aws:eks:NodeGroup",
            "ng",
            json!({"launch_template": {"id": unknown("aws:ec2:LaunchTemplate", "lt", "id")}}),
            &[("aws:ec2:LaunchTemplate", "lt")],
        ),
    ]
}

fn db() -> Value {
    json!({"storage_encrypted": true, "deletion_protection": true, "multi_az": true, "backup_retention_days": 7, "publicly_accessible": false})
}

fn open_rule(port: i64, group: &str) -> PolicyResource {
    res(
        "aws:ec2:SecurityGroupIngressRule",
        &format!("{group}-{port}"),
        json!({"security_group_id": unknown("aws:ec2:SecurityGroup", group, "id"), "from_port": port, "to_port": port, "cidr_ipv4": "0.0.0.0/0"}),
        &[("aws:ec2:SecurityGroup", group)],
    )
}

fn lb_group() -> Vec<PolicyResource> {
    vec![
        res("aws:ec2:SecurityGroup", "lb", json!({}), &[]),
        res("aws:elbv2:LoadBalancer", "edge", lb(), &[("aws:ec2:SecurityGroup", "lb")]),
    ]
}

fn lb() -> Value {
    json!({"drop_invalid_header_fields": true, "deletion_protection": true, "access_logs": {"bucket": "logs", "prefix": "edge"}})
}

fn bucket() -> Value {
    json!({"bucket": "b", "hardened": true, "versioning": true, "kms_key_id": unknown("aws:kms:Key", "k", "arn")})
}

fn role_policy(statement: Value) -> PolicyResource {
    res("aws:iam:RolePolicy", "p", json!({"document": {"Version": "2012-10-17", "Statement": [statement]}}), &[])
}

fn cache() -> Value {
    json!({"transit_encryption": true, "at_rest_encryption": true, "automatic_failover": true, "multi_az": true})
}

fn search() -> Value {
    json!({"node_to_node_encryption": true, "at_rest_encryption": true, "enforce_https": true, "tls_policy": "Policy-Min-TLS-1-2-PFS-2023-10"})
}

fn vpc(close: bool, flow_log: bool) -> Vec<PolicyResource> {
    let mut out = vec![res("aws:ec2:Vpc", "main", json!({"close_default_security_group": close}), &[])];
    if flow_log {
        out.push(res("aws:ec2:FlowLog", "main/flow-logs", json!({}), &[("aws:ec2:Vpc", "main")]));
    }
    out
}

fn namespace_with(policy: Option<Value>) -> Vec<PolicyResource> {
    let mut out = vec![k8s("Namespace", "shop", json!({"kind": "Namespace", "metadata": {"name": "shop"}}))];
    if let Some(spec) = policy {
        out.push(k8s(
            "NetworkPolicy",
            "shop/deny",
            json!({"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "shop"}, "spec": spec}),
        ));
    }
    out
}

fn pdb() -> PolicyResource {
    k8s(
        "PodDisruptionBudget",
        "shop/api",
        json!({"kind": "PodDisruptionBudget", "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "api"}}}}),
    )
}

/// (rule, production, a stack that keeps it, a stack that breaks it)
fn cases() -> Vec<(&'static str, bool, Vec<PolicyResource>, Vec<PolicyResource>)> {
    let c = |v: Value| vec![res("aws:eks:Cluster", "main", v, &[])];
    let d = |v: Value| vec![res("aws:rds:DbInstance", "db", v, &[])];
    let l = |https: bool, v: Value| {
        vec![res(
            "aws:elbv2:Listener",
            "edge/l",
            with(json!({"https": https, "ssl_policy": null, "default_action": null}), "/ssl_policy", v),
            &[],
        )]
    };
    let b = |v: Value| vec![res("aws:s3:Bucket", "b", v, &[])];
    let edge = |v: Value| vec![res("aws:elbv2:LoadBalancer", "edge", v, &[])];
    let aurora = |readers: usize| {
        let mut out = vec![res("aws:rds:DbCluster", "orders", db(), &[])];
        for i in 0..=readers {
            out.push(res(
                "aws:rds:ClusterInstance",
                &format!("orders-{i}"),
                json!({}),
                &[("aws:rds:DbCluster", "orders")],
            ));
        }
        out
    };
    let plus = |mut a: Vec<PolicyResource>, b: Vec<PolicyResource>| {
        a.extend(b);
        a
    };
    vec![
        ("FAB-EKS-1", false, c(cluster()), c(with(cluster(), "/public_access_cidrs", json!(["0.0.0.0/0"])))),
        ("FAB-EKS-2", false, c(cluster()), c(with(cluster(), "/secrets_key_arn", Value::Null))),
        ("FAB-EKS-3", false, c(cluster()), c(with(cluster(), "/logging", json!(["api"])))),
        (
            "FAB-EKS-4",
            false,
            node_group(json!({"http_tokens": "required", "hop_limit": 1})),
            node_group(json!({"http_tokens": "optional", "hop_limit": 1})),
        ),
        (
            "FAB-RDS-1",
            false,
            d(db()),
            aurora(1)
                .into_iter()
                .map(|mut r| {
                    if r.type_name == "aws:rds:DbCluster" {
                        r.inputs = with(db(), "/storage_encrypted", json!(false));
                    }
                    r
                })
                .collect(),
        ),
        ("FAB-RDS-2", true, d(db()), d(with(db(), "/deletion_protection", json!(false)))),
        ("FAB-RDS-3", true, plus(d(db()), aurora(1)), aurora(0)),
        ("FAB-RDS-4", false, d(db()), d(with(db(), "/backup_retention_days", json!(1)))),
        ("FAB-RDS-5", false, d(db()), d(with(db(), "/publicly_accessible", json!(true)))),
        ("FAB-NET-1", false, plus(lb_group(), vec![open_rule(443, "lb")]), plus(lb_group(), vec![open_rule(22, "lb")])),
        ("FAB-NET-2", false, vpc(true, true), vpc(true, false)),
        ("FAB-NET-3", false, vpc(true, true), vpc(false, true)),
        (
            "FAB-ALB-1",
            false,
            l(true, json!("ELBSecurityPolicy-TLS13-1-2-2021-06")),
            l(true, json!("ELBSecurityPolicy-2016-08")),
        ),
        ("FAB-ALB-2", false, edge(lb()), edge(with(lb(), "/access_logs", Value::Null))),
        ("FAB-ALB-3", false, edge(lb()), edge(with(lb(), "/drop_invalid_header_fields", json!(false)))),
        ("FAB-ALB-4", true, edge(lb()), edge(with(lb(), "/deletion_protection", json!(false)))),
        (
            "FAB-ALB-5",
            false,
            vec![res(
                "aws:elbv2:Listener",
                "edge/http",
                json!({"https": false, "default_action": "redirect_to_https"}),
                &[],
            )],
            vec![res("aws:elbv2:Listener", "edge/http", json!({"https": false, "default_action": "not_found"}), &[])],
        ),
        ("FAB-S3-1", false, b(bucket()), b(with(bucket(), "/hardened", json!(false)))),
        ("FAB-S3-2", false, b(bucket()), b(with(bucket(), "/versioning", json!(false)))),
        ("FAB-S3-3", false, b(bucket()), b(with(bucket(), "/hardened", json!(false)))),
        ("FAB-S3-4", false, b(bucket()), b(with(bucket(), "/kms_key_id", Value::Null))),
        (
            "FAB-IAM-1",
            false,
            vec![role_policy(json!({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}))],
            vec![role_policy(json!({"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::b/*"]}))],
        ),
        (
            "FAB-IAM-2",
            false,
            vec![
                role_policy(json!({"Effect": "Allow", "Action": ["ec2:DescribeImages"], "Resource": "*"})),
                role_policy(
                    json!({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/fabric:urn": "x"}}}),
                ),
            ],
            vec![role_policy(json!({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"}))],
        ),
        (
            "FAB-IAM-3",
            false,
            vec![res(
                "aws:iam:RolePolicyAttachment",
                "a",
                json!({"policy_arn": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"}),
                &[],
            )],
            vec![res(
                "aws:iam:RolePolicyAttachment",
                "a",
                json!({"policy_arn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
                &[],
            )],
        ),
        (
            "FAB-DATA-1",
            false,
            vec![
                res("aws:elasticache:ReplicationGroup", "c", cache(), &[]),
                res("aws:opensearch:Domain", "s", search(), &[]),
            ],
            vec![res("aws:elasticache:ReplicationGroup", "c", with(cache(), "/transit_encryption", json!(false)), &[])],
        ),
        (
            "FAB-DATA-2",
            false,
            vec![
                res("aws:elasticache:ReplicationGroup", "c", cache(), &[]),
                res("aws:opensearch:Domain", "s", search(), &[]),
            ],
            vec![res("aws:opensearch:Domain", "s", with(search(), "/at_rest_encryption", json!(false)), &[])],
        ),
        (
            "FAB-DATA-3",
            false,
            vec![res("aws:opensearch:Domain", "s", search(), &[])],
            vec![res(
                "aws:opensearch:Domain",
                "s",
                with(search(), "/tls_policy", json!("Policy-Min-TLS-1-0-2019-07")),
                &[],
            )],
        ),
        (
            "FAB-DATA-4",
            true,
            vec![res("aws:elasticache:ReplicationGroup", "c", cache(), &[])],
            vec![res("aws:elasticache:ReplicationGroup", "c", with(cache(), "/automatic_failover", json!(false)), &[])],
        ),
        (
            "FAB-K8S-1",
            false,
            vec![deployment(1, good_container())],
            vec![deployment(1, with(good_container(), "/securityContext", json!({"privileged": true})))],
        ),
        (
            "FAB-K8S-2",
            false,
            vec![deployment(1, good_container())],
            vec![k8s(
                "Deployment",
                "api",
                json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [good_container()]}}}}),
            )],
        ),
        (
            "FAB-K8S-3",
            false,
            vec![deployment(1, good_container())],
            vec![deployment(1, with(good_container(), "/resources", json!({"requests": {"cpu": "1"}})))],
        ),
        (
            "FAB-K8S-4",
            false,
            vec![deployment(1, good_container())],
            vec![deployment(1, with(good_container(), "/image", json!("acme/api:latest")))],
        ),
        (
            "FAB-K8S-5",
            false,
            namespace_with(Some(
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}),
            )),
            namespace_with(Some(json!({"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"]}))),
        ),
        ("FAB-K8S-6", false, vec![deployment(3, good_container()), pdb()], vec![deployment(3, good_container())]),
    ]
}

fn ids(view: &PolicyView, rule: &str) -> Vec<String> {
    let rules: Vec<Arc<dyn Rule>> = builtin().into_iter().filter(|r| r.id() == rule).collect();
    assert_eq!(rules.len(), 1, "rule {rule}");
    let report = crate::model::policy::evaluate(view, &rules, &[], "2026-12-07").expect("no waivers");
    report.findings.iter().map(|f| format!("{} {}", f.violation.urn.display_short(), f.violation.field)).collect()
}

#[test]
fn each_rule_passes_a_stack_that_keeps_it_and_fails_one_that_breaks_it() {
    for (rule, production, good, bad) in cases() {
        let good = PolicyView::new("t", production, good);
        assert_eq!(ids(&good, rule), Vec::<String>::new(), "{rule}: the stack that keeps it");
        let bad = PolicyView::new("t", production, bad);
        assert!(!ids(&bad, rule).is_empty(), "{rule}: the stack that breaks it");
    }
}

#[test]
fn every_rule_has_a_case_and_the_pack_has_at_least_25() {
    let all: Vec<String> = builtin().iter().map(|r| r.id().to_string()).collect();
    let tested: Vec<&str> = cases().iter().map(|c| c.0).collect();
    for id in &all {
        assert!(tested.contains(&id.as_str()), "rule {id} has no test case");
    }
    assert!(all.len() >= 25, "{} rules", all.len());
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "rule ids are unique");
}

#[test]
fn rules_in_prod_hold_only_in_prod() {
    let view = |production| {
        PolicyView::new(
            "t",
            production,
            vec![res("aws:rds:DbInstance", "db", with(db(), "/multi_az", json!(false)), &[])],
        )
    };
    assert!(ids(&view(false), "FAB-RDS-3").is_empty());
    assert_eq!(ids(&view(true), "FAB-RDS-3"), vec!["aws:rds:DbInstance \"db\" multi_az".to_string()]);
}

#[test]
fn open_web_ports_pass_only_on_a_load_balancers_group() {
    let view =
        PolicyView::new("t", false, vec![res("aws:ec2:SecurityGroup", "web", json!({}), &[]), open_rule(443, "web")]);
    assert_eq!(ids(&view, "FAB-NET-1").len(), 1, "443 from anywhere to a group that fronts no load balancer");
    let ssh6 = res(
        "aws:ec2:SecurityGroupIngressRule",
        "ssh6",
        json!({"from_port": 22, "to_port": 22, "cidr_ipv6": "::/0"}),
        &[],
    );
    let view = PolicyView::new("t", false, vec![ssh6]);
    assert_eq!(ids(&view, "FAB-NET-1"), vec!["aws:ec2:SecurityGroupIngressRule \"ssh6\" cidr_ipv6".to_string()]);
}

#[test]
fn a_log_bucket_needs_no_kms_key_which_load_balancers_cannot_use() {
    let logs = json!({"bucket": "logs", "hardened": true, "versioning": true, "log_delivery": true});
    let view = PolicyView::new("t", false, vec![res("aws:s3:Bucket", "logs", logs.clone(), &[])]);
    assert!(ids(&view, "FAB-S3-4").is_empty());
    let view =
        PolicyView::new("t", false, vec![res("aws:s3:Bucket", "logs", with(logs, "/log_delivery", json!(false)), &[])]);
    assert_eq!(ids(&view, "FAB-S3-4"), vec!["aws:s3:Bucket \"logs\" kms_key_id".to_string()]);
}

#[test]
fn images_are_pinned_by_tag_or_digest() {
    for ok in ["acme/api:1.4.2", "registry:5000/acme/api:1", "acme/api@sha256:abc"] {
        assert!(k8s_rules::pinned(ok), "{ok}");
    }
    for bad in ["acme/api", "acme/api:latest", "registry:5000/acme/api"] {
        assert!(!k8s_rules::pinned(bad), "{bad}");
    }
}

#[test]
fn docs_list_every_rule() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md")).unwrap();
    for r in builtin() {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", r.id())))
            .unwrap_or_else(|| panic!("docs/policy.md has no row for {}", r.id()));
        assert!(row.contains(r.severity().as_str()) && row.contains(r.title()), "{row}");
        for e in r.equivalents() {
            let id = e.split_once(' ').map_or(*e, |(_, id)| id);
            assert!(row.contains(id), "{row} lacks {e}");
        }
    }
}
