//! `Prometheus`: in-cluster metrics on port 80, not exposed — a StatefulSet with a persistent
//! (gp3, encrypted) volume, a service account allowed to discover pods and nodes, a scrape
//! configuration for annotated pods, the kubelets and cAdvisor, and a ClusterIP service.

use crate::k8s::pod::{check_image, disruption_budget, meta, quantities, restricted_container, restricted_pod, spread};
use crate::k8s::policy::{self, LABEL_SCRAPED, LABEL_SCRAPER, Reach, client_label};
use crate::k8s::{ClusterRef, Manifest, ObjectRef, manifest::dns_label};
use crate::model::{Checker, Stack};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Service, ServiceAccount,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use typed_builder::TypedBuilder;

/// The storage class fabric declares once per cluster for volumes: gp3, encrypted, bound where
/// the pod lands, expandable, kept when the claim goes (a deleted claim loses no data).
pub const STORAGE_CLASS: &str = "fabric-gp3";

/// The port Prometheus listens on in its pods (its Service answers on 80).
pub const PORT: i32 = 9090;

/// The tag the volumes of that class carry, for backup selections by tag.
pub const VOLUME_BACKUP_TAG: (&str, &str) = ("fabric-backup", "true");

/// The pinned Prometheus image.
pub const PROMETHEUS_IMAGE: &str = "quay.io/prometheus/prometheus:v3.5.0";

/// Prometheus, scraping the cluster.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::k8s::ClusterRef;
/// let mut s = Stack::new("demo");
/// let cluster = ClusterRef::kubeconfig("kind");
/// let metrics = Prometheus::builder().name("metrics").cluster(&cluster).namespace("monitoring").build().add(&mut s).unwrap();
/// assert_eq!(metrics.url(), "http://metrics.monitoring.svc.cluster.local");
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder)]
pub struct Prometheus<'a> {
    #[builder(setter(into))]
    name: String,
    cluster: &'a ClusterRef,
    #[builder(default = "default".into(), setter(into))]
    namespace: String,
    #[builder(default = PROMETHEUS_IMAGE.into(), setter(into))]
    image: String,
    /// How long samples are kept.
    #[builder(default = "15d".into(), setter(into))]
    retention: String,
    /// Size of the data volume.
    #[builder(default = "50Gi".into(), setter(into))]
    storage: String,
    #[builder(default = "30s".into(), setter(into))]
    scrape_interval: String,
    /// Identical servers, each scraping everything onto its own volume, in different zones: one
    /// keeps serving while the other restarts (updates, node replacement). 1 saves the second
    /// volume where a gap in metrics is acceptable.
    #[builder(default = 2)]
    replicas: i32,
}

/// A declared Prometheus.
#[derive(Clone, Debug)]
pub struct PrometheusRef {
    name: String,
    namespace: String,
    pub stateful_set: ObjectRef,
}

impl PrometheusRef {
    /// What a workload names in `.reach(..)` to query Prometheus: its pods on 9090. Nothing
    /// else, in the namespace or outside it, gets in.
    pub fn reach(&self) -> Reach {
        Reach::Pods {
            name: self.name.clone(),
            selector: [("app.kubernetes.io/name".to_string(), self.name.clone())].into(),
            port: PORT,
            client_label: client_label(&self.name),
        }
    }

    /// The in-cluster URL (port 80).
    pub fn url(&self) -> String {
        format!("http://{}.{}.svc.cluster.local", self.name, self.namespace)
    }
}

/// Clusters that already have the storage class.
#[derive(Default)]
struct StorageClasses(BTreeSet<String>);

/// The Prometheus configuration file, as the Prometheus documentation names its fields
/// (`prometheus.yml`); only what fabric writes.
#[derive(Serialize)]
struct PrometheusConfig {
    global: Global,
    scrape_configs: Vec<ScrapeJob>,
}

#[derive(Serialize)]
struct Global {
    scrape_interval: String,
    evaluation_interval: String,
}

#[derive(Serialize, Default)]
struct ScrapeJob {
    job_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer_token_file: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kubernetes_sd_configs: Vec<KubernetesSd>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relabel_configs: Vec<Relabel>,
}

#[derive(Serialize)]
struct TlsConfig {
    ca_file: &'static str,
}

#[derive(Serialize)]
struct StaticConfig {
    targets: Vec<&'static str>,
}

#[derive(Serialize)]
struct KubernetesSd {
    role: &'static str,
}

/// One relabelling rule; `None` fields take Prometheus's defaults (`action: replace`, …).
#[derive(Serialize, Default)]
struct Relabel {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<&'static str>,
}

impl Relabel {
    /// `source` copied into `target` as it is.
    fn copy(source: &'static str, target: &'static str) -> Self {
        Relabel { source_labels: vec![source], target_label: Some(target), ..Default::default() }
    }
}

/// A job scraping every kubelet at `path`, through the API server's node proxy.
fn kubelet_job(job_name: &'static str, path: &str) -> ScrapeJob {
    ScrapeJob {
        job_name,
        scheme: Some("https"),
        tls_config: Some(TlsConfig { ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt" }),
        bearer_token_file: Some("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        kubernetes_sd_configs: vec![KubernetesSd { role: "node" }],
        relabel_configs: vec![
            Relabel {
                target_label: Some("__address__"),
                replacement: Some("kubernetes.default.svc:443".into()),
                ..Default::default()
            },
            Relabel {
                source_labels: vec!["__meta_kubernetes_node_name"],
                regex: Some("(.+)"),
                target_label: Some("__metrics_path__"),
                replacement: Some(format!("/api/v1/nodes/$1/proxy/{path}")),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// The scrape configuration: annotated pods (`prometheus.io/scrape: "true"`, with optional
/// `prometheus.io/port` and `prometheus.io/path`), kubelets, cAdvisor (container CPU, memory,
/// network), and Prometheus itself.
pub fn scrape_config(interval: &str) -> String {
    let pods = ScrapeJob {
        job_name: "kubernetes-pods",
        kubernetes_sd_configs: vec![KubernetesSd { role: "pod" }],
        relabel_configs: vec![
            Relabel {
                source_labels: vec!["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                action: Some("keep"),
                regex: Some("true"),
                ..Default::default()
            },
            Relabel {
                source_labels: vec!["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                action: Some("replace"),
                regex: Some("(.+)"),
                target_label: Some("__metrics_path__"),
                ..Default::default()
            },
            Relabel {
                source_labels: vec!["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                action: Some("replace"),
                regex: Some(r"([^:]+)(?::\d+)?;(\d+)"),
                replacement: Some("$1:$2".into()),
                target_label: Some("__address__"),
            },
            Relabel::copy("__meta_kubernetes_namespace", "namespace"),
            Relabel::copy("__meta_kubernetes_pod_name", "pod"),
            Relabel::copy("__meta_kubernetes_pod_label_app_kubernetes_io_name", "app"),
        ],
        ..Default::default()
    };
    let config = PrometheusConfig {
        global: Global { scrape_interval: interval.to_string(), evaluation_interval: interval.to_string() },
        scrape_configs: vec![
            ScrapeJob {
                job_name: "prometheus",
                static_configs: vec![StaticConfig { targets: vec!["localhost:9090"] }],
                ..Default::default()
            },
            pods,
            kubelet_job("kubernetes-nodes", "metrics"),
            kubelet_job("kubernetes-cadvisor", "metrics/cadvisor"),
        ],
    };
    serde_saphyr::to_string(&config).expect("the Prometheus configuration serializes")
}

impl Prometheus<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<PrometheusRef> {
        let (name, ns) = (self.name.clone(), self.namespace.clone());
        let mut c = Checker::new(s.urn("k8s:apps/v1:StatefulSet", &format!("{}/{ns}/{name}", self.cluster.name())));
        c.require(
            dns_label(&name),
            "name",
            format!("`{name}` is not a valid name"),
            "use lowercase letters, digits and `-`",
        );
        check_image(&mut c, &self.image);
        // Read by Prometheus: checked with its own duration grammar.
        for (field, value, example) in
            [("scrape_interval", &self.scrape_interval, "`30s`"), ("retention", &self.retention, "`15d` or `30d`")]
        {
            if let Err(e) = crate::k8s::values::prometheus_duration(value) {
                c.error(field, e, format!("write it as Prometheus does, such as {example}"));
            }
        }
        c.within(
            "replicas",
            self.replicas,
            1..=3,
            "{} replicas",
            "run 1 (a gap while it restarts) to 3 servers; 2 keeps metrics up through updates",
        );
        let storage_ok = self.storage.trim_end_matches(char::is_alphabetic).parse::<u64>().is_ok_and(|n| n > 0)
            && ["Gi", "Ti"].iter().any(|u| self.storage.ends_with(u));
        c.require(
            storage_ok,
            "storage",
            format!("`{}` is not a volume size", self.storage),
            "write a size such as `50Gi`",
        );
        s.report(c.into_errors());

        let labels: BTreeMap<String, String> = [
            ("app.kubernetes.io/name".to_string(), name.clone()),
            ("app.kubernetes.io/component".to_string(), "metrics".to_string()),
        ]
        .into();
        let selector: BTreeMap<String, String> = [("app.kubernetes.io/name".to_string(), name.clone())].into();
        let cluster_wide = format!("{ns}-{name}");

        if s.extension::<StorageClasses>().0.insert(self.cluster.name().to_string()) {
            let class = StorageClass {
                metadata: ObjectMeta { name: Some(STORAGE_CLASS.into()), ..Default::default() },
                provisioner: "ebs.csi.aws.com".into(),
                parameters: Some(
                    [
                        ("type".to_string(), "gp3".to_string()),
                        ("encrypted".to_string(), "true".to_string()),
                        ("tagSpecification_1".to_string(), format!("{}={}", VOLUME_BACKUP_TAG.0, VOLUME_BACKUP_TAG.1)),
                    ]
                    .into(),
                ),
                reclaim_policy: Some("Retain".into()),
                volume_binding_mode: Some("WaitForFirstConsumer".into()),
                allow_volume_expansion: Some(true),
                ..Default::default()
            };
            Manifest::of(&class).add(s, self.cluster)?;
        }
        let account = ServiceAccount { metadata: meta(&name, &ns, &labels), ..Default::default() };
        Manifest::of(&account).add(s, self.cluster)?;
        let rule = |groups: &[&str], resources: &[&str]| PolicyRule {
            api_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..Default::default()
        };
        let role = ClusterRole {
            metadata: ObjectMeta {
                name: Some(cluster_wide.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            rules: Some(vec![
                rule(&[""], &["nodes", "nodes/metrics", "nodes/proxy", "services", "endpoints", "pods"]),
                rule(&["discovery.k8s.io"], &["endpointslices"]),
                PolicyRule {
                    non_resource_urls: Some(vec!["/metrics".into()]),
                    verbs: vec!["get".into()],
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        Manifest::of(&role).add(s, self.cluster)?;
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(cluster_wide.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: cluster_wide,
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: name.clone(),
                namespace: Some(ns.clone()),
                ..Default::default()
            }]),
        };
        Manifest::of(&binding).add(s, self.cluster)?;
        let config_name = format!("{name}-config");
        let scrape = scrape_config(&self.scrape_interval);
        let config_hash = format!("{:016x}", crate::model::stable_hash(&scrape));
        let config = ConfigMap {
            metadata: meta(&config_name, &ns, &labels),
            data: Some([("prometheus.yml".to_string(), scrape)].into()),
            ..Default::default()
        };
        Manifest::of(&config).add(s, self.cluster)?;
        let service = Service {
            metadata: meta(&name, &ns, &labels),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(selector.clone()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        Manifest::of(&service).add(s, self.cluster)?;
        let probe = |path: &str, delay: i32| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            initial_delay_seconds: Some(delay),
            period_seconds: Some(10),
            timeout_seconds: Some(3),
            failure_threshold: Some(3),
            ..Default::default()
        };
        let container = Container {
            name: "prometheus".into(),
            image: Some(self.image.clone()),
            args: Some(vec![
                "--config.file=/etc/prometheus/prometheus.yml".into(),
                "--storage.tsdb.path=/prometheus".into(),
                format!("--storage.tsdb.retention.time={}", self.retention),
                "--web.enable-lifecycle".into(),
            ]),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            readiness_probe: Some(probe("/-/ready", 5)),
            liveness_probe: Some(probe("/-/healthy", 30)),
            resources: Some(ResourceRequirements {
                requests: Some(quantities("500m", "1Gi")),
                limits: Some(quantities("2", "4Gi")),
                ..Default::default()
            }),
            volume_mounts: Some(vec![
                VolumeMount { name: "config".into(), mount_path: "/etc/prometheus".into(), ..Default::default() },
                VolumeMount { name: "data".into(), mount_path: "/prometheus".into(), ..Default::default() },
            ]),
            // It writes only to its data volume.
            security_context: Some(restricted_container(true)),
            ..Default::default()
        };
        let mut pod_labels = labels.clone();
        pod_labels.insert(LABEL_SCRAPER.into(), "true".into());
        let stateful_set = StatefulSet {
            metadata: meta(&name, &ns, &labels),
            spec: Some(StatefulSetSpec {
                replicas: Some(self.replicas),
                service_name: Some(name.clone()),
                selector: LabelSelector { match_labels: Some(selector.clone()), ..Default::default() },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        // A new scrape configuration restarts Prometheus with it.
                        annotations: Some([("fabric.dev/config-hash".to_string(), config_hash)].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        service_account_name: Some(name.clone()),
                        containers: vec![container],
                        // nobody: the user the Prometheus image runs as.
                        security_context: Some(restricted_pod(65534)),
                        topology_spread_constraints: Some(spread(&selector)),
                        termination_grace_period_seconds: Some(60),
                        volumes: Some(vec![Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource { name: config_name, ..Default::default() }),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta { name: Some("data".into()), ..Default::default() },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".into()]),
                        storage_class_name: Some(STORAGE_CLASS.into()),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some([("storage".to_string(), Quantity(self.storage.clone()))].into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        if self.replicas > 1 {
            let pdb = disruption_budget(&name, &ns, &labels, &selector);
            Manifest::of(&pdb).add(s, self.cluster)?;
        }
        // Isolation: in from the pods that reach it; out to the pods it scrapes, and to the API
        // server and kubelets (service discovery, node and cAdvisor metrics) in the cluster's
        // network (anywhere on those ports when the network is not known).
        let (k, v) = client_label(&name);
        let ingress = vec![policy::from_pods_labelled((&k, &v), PORT)];
        let network: Vec<Value> = match self.cluster.network_cidr() {
            Some(cidr) => vec![json!({"ipBlock": {"cidr": cidr.to_string()}})],
            None => vec![json!({"ipBlock": {"cidr": "0.0.0.0/0"}})],
        };
        let egress = vec![
            json!({"to": [{"podSelector": {"matchLabels": {LABEL_SCRAPED: "true"}}}]}),
            json!({"to": network, "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 10250}]}),
        ];
        Manifest::new(policy::workload(&name, &ns, &selector, ingress, egress)).add(s, self.cluster)?;
        let stateful_set = Manifest::of(&stateful_set).add(s, self.cluster)?;
        Ok(PrometheusRef { name, namespace: ns, stateful_set })
    }
}

#[cfg(test)]
mod tests {
    use super::scrape_config;

    #[test]
    fn the_scrape_configuration_reads_back_as_prometheus_yaml() {
        let doc: serde_json::Value = serde_saphyr::from_str(&scrape_config("15s")).unwrap();
        assert_eq!(
            (doc["global"]["scrape_interval"].as_str(), doc["global"]["evaluation_interval"].as_str()),
            (Some("15s"), Some("15s"))
        );
        let jobs: Vec<&str> =
            doc["scrape_configs"].as_array().unwrap().iter().map(|j| j["job_name"].as_str().unwrap()).collect();
        assert_eq!(jobs, ["prometheus", "kubernetes-pods", "kubernetes-nodes", "kubernetes-cadvisor"]);
        // `keep` compares with the annotation's text "true": it must stay a string, not a boolean.
        assert_eq!(doc["scrape_configs"][1]["relabel_configs"][0]["regex"], "true");
        let address = &doc["scrape_configs"][1]["relabel_configs"][2];
        assert_eq!(
            address["source_labels"],
            serde_json::json!(["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"])
        );
        assert_eq!(
            (address["regex"].as_str(), address["replacement"].as_str()),
            (Some(r"([^:]+)(?::\d+)?;(\d+)"), Some("$1:$2"))
        );
        assert_eq!(
            doc["scrape_configs"][3]["relabel_configs"][1]["replacement"],
            "/api/v1/nodes/$1/proxy/metrics/cadvisor"
        );
        assert_eq!(
            doc["scrape_configs"][2]["tls_config"]["ca_file"],
            "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
        );
    }
}
