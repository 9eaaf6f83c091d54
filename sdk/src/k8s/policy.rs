//! Isolation inside the cluster: every namespace fabric creates denies all traffic to and from its
//! pods by default (one `default-deny` NetworkPolicy) and lets them resolve names (`allow-dns`);
//! each workload then declares, in one policy of its own, what it lets in and what it reaches.
//!
//! The contract between workloads is carried by labels, so that neither side needs the other's
//! pods to exist first:
//! - a target that others may reach (a [`crate::components::Prometheus`]) admits pods carrying its
//!   client label (`fabric.dev/reaches-<name>: "true"`), and [`Reach::Pods`] puts that label on the
//!   pods that reach it;
//! - pods that expose metrics carry [`LABEL_SCRAPED`]; Prometheus pods carry [`LABEL_SCRAPER`] and
//!   are admitted by them on their port;
//! - addresses outside the cluster (a database's subnets) are reached by [`Reach::Cidrs`] on one
//!   port.
//!
//! NetworkPolicies are enforced only where the network plugin enforces them (on EKS: the VPC CNI
//! with `enableNetworkPolicy`, which [`crate::aws::eks::EksCluster`] turns on).

use ipnet::Ipv4Net;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// On pods that expose metrics: Prometheus may scrape them.
pub const LABEL_SCRAPED: &str = "fabric.dev/scraped";
/// On Prometheus pods: admitted by [`LABEL_SCRAPED`] pods on their port.
pub const LABEL_SCRAPER: &str = "fabric.dev/scraper";

/// The label a target admits, and that [`Reach::Pods`] puts on the pods that reach it.
pub fn client_label(target: &str) -> (String, String) {
    (format!("fabric.dev/reaches-{target}"), "true".to_string())
}

/// Something a workload reaches, and may only reach once it says so.
#[derive(Clone, Debug, PartialEq)]
pub enum Reach {
    /// Pods of the same namespace (`selector`) on `port`; the reaching pods get `client_label`,
    /// which the target's own policy admits.
    Pods { name: String, selector: BTreeMap<String, String>, port: i32, client_label: (String, String) },
    /// Addresses outside the cluster on `port` (a database in its subnets).
    Cidrs { name: String, cidrs: Vec<Ipv4Net>, port: i32 },
    /// The AWS APIs (`name`: what for, such as a bucket): HTTPS to public addresses (never to
    /// the private ranges, so not into the VPC), and the EKS Pod Identity agent on the node
    /// (`169.254.170.23:80`), where the SDKs get the pod's credentials.
    AwsApis { name: String },
}

/// The EKS Pod Identity agent's address on every node.
pub const POD_IDENTITY_AGENT: &str = "169.254.170.23/32";

impl Reach {
    /// What it is, for plans and errors.
    pub fn name(&self) -> &str {
        match self {
            Reach::Pods { name, .. } | Reach::Cidrs { name, .. } | Reach::AwsApis { name } => name,
        }
    }

    /// The egress rules of the reaching workload: one, on one port, but for [`Reach::AwsApis`]
    /// (HTTPS out, and the Pod Identity agent).
    pub fn egress_rules(&self) -> Vec<Value> {
        match self {
            Reach::Pods { selector, port, .. } => vec![json!({
                "to": [{"podSelector": {"matchLabels": selector}}],
                "ports": [{"protocol": "TCP", "port": port}],
            })],
            Reach::Cidrs { cidrs, port, .. } => vec![json!({
                "to": cidrs.iter().map(|c| json!({"ipBlock": {"cidr": c.to_string()}})).collect::<Vec<_>>(),
                "ports": [{"protocol": "TCP", "port": port}],
            })],
            Reach::AwsApis { .. } => vec![
                json!({
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                        "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }),
                json!({
                    "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                }),
            ],
        }
    }

    /// The label the reaching pods carry (for [`Reach::Pods`]).
    pub fn pod_label(&self) -> Option<&(String, String)> {
        match self {
            Reach::Pods { client_label, .. } => Some(client_label),
            Reach::Cidrs { .. } | Reach::AwsApis { .. } => None,
        }
    }
}

fn policy(
    name: &str,
    namespace: &str,
    selector: Value,
    types: &[&str],
    ingress: Vec<Value>,
    egress: Vec<Value>,
) -> Value {
    let mut spec = json!({"podSelector": selector, "policyTypes": types});
    if types.contains(&"Ingress") {
        spec["ingress"] = Value::Array(ingress);
    }
    if types.contains(&"Egress") {
        spec["egress"] = Value::Array(egress);
    }
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

/// Every pod of `namespace` isolated both ways: nothing in, nothing out, until a policy allows it.
pub fn default_deny(namespace: &str) -> Value {
    policy("default-deny", namespace, json!({}), &["Ingress", "Egress"], vec![], vec![])
}

/// Every pod of `namespace` may ask the cluster DNS (kube-system's `k8s-app: kube-dns`) on port 53.
pub fn allow_dns(namespace: &str) -> Value {
    let egress = json!({
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    });
    policy("allow-dns", namespace, json!({}), &["Egress"], vec![], vec![egress])
}

/// The policy of one workload (`<name>` pods by `selector`): what it admits, what it reaches.
pub fn workload(
    name: &str,
    namespace: &str,
    selector: &BTreeMap<String, String>,
    ingress: Vec<Value>,
    egress: Vec<Value>,
) -> Value {
    policy(name, namespace, json!({"matchLabels": selector}), &["Ingress", "Egress"], ingress, egress)
}

/// An ingress rule: `port` from anywhere (a service the load balancer exposes: the node security
/// group admits only the load balancer to the nodes).
pub fn from_anywhere(port: i32) -> Value {
    json!({"ports": [{"protocol": "TCP", "port": port}]})
}

/// An ingress rule: `port` from pods of the same namespace that carry `label`.
pub fn from_pods_labelled(label: (&str, &str), port: i32) -> Value {
    json!({"from": [{"podSelector": {"matchLabels": {label.0: label.1}}}], "ports": [{"protocol": "TCP", "port": port}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reach_is_one_egress_rule_on_one_port() {
        let db = Reach::Cidrs { name: "db".into(), cidrs: vec!["10.0.128.0/20".parse().unwrap()], port: 5432 };
        assert_eq!(
            db.egress_rules(),
            [json!({"to": [{"ipBlock": {"cidr": "10.0.128.0/20"}}], "ports": [{"protocol": "TCP", "port": 5432}]})]
        );
        assert_eq!(db.pod_label(), None);
        let metrics = Reach::Pods {
            name: "metrics".into(),
            selector: [("app.kubernetes.io/name".to_string(), "metrics".to_string())].into(),
            port: 9090,
            client_label: client_label("metrics"),
        };
        assert_eq!(metrics.pod_label(), Some(&("fabric.dev/reaches-metrics".to_string(), "true".to_string())));
        assert_eq!(
            default_deny("acme")["spec"],
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []})
        );
    }
}
