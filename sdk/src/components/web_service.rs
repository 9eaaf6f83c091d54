//! `WebService`: a stateless HTTP service on Kubernetes with zero-downtime defaults — rolling
//! updates that never drop below the wanted replicas, probes, requests and limits, zone spread,
//! a non-root security context, a pre-stop delay so the load balancer drains first, an
//! autoscaler and a disruption budget — optionally routed from an [`AlbIngress`](super::AlbIngress).

use crate::aws::ec2::security_group::{IngressRuleInputs, rule_provider};
use crate::aws::elbv2::Edge;
use crate::k8s::objects::{KubeSecret, pointer_key};
use crate::k8s::pod::{check_image, disruption_budget, meta, quantities, restricted_container, restricted_pod, spread};
use crate::k8s::policy::{self, LABEL_SCRAPED, LABEL_SCRAPER, Reach, client_label};
use crate::k8s::{ClusterRef, Manifest, ObjectRef, manifest::dns_label};
use crate::model::{Checker, Output, Secret, Stack, stable_hash};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, Lifecycle,
    LifecycleHandler, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector, Service,
    ServiceAccount, ServicePort, ServiceSpec, SleepAction, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use typed_builder::TypedBuilder;

/// How Kubernetes and the load balancer tell that a pod is healthy.
#[derive(Clone, Debug)]
pub enum Health {
    /// An HTTP GET on the service port that answers 2xx/3xx when healthy.
    Http(String),
    /// A TCP connect to the service port.
    Tcp,
}

impl Health {
    pub fn http(path: &str) -> Self {
        Health::Http(path.to_string())
    }
}

/// An environment variable's value: plain, known at apply time, or a secret (delivered through a
/// Kubernetes Secret and `secretKeyRef`, never as a plain `value`).
#[derive(Clone, Debug)]
pub enum EnvValue {
    Plain(Output<String>),
    Secret(Output<Secret<String>>),
}

impl From<&str> for EnvValue {
    fn from(v: &str) -> Self {
        EnvValue::Plain(Output::known(v.to_string()))
    }
}
impl From<String> for EnvValue {
    fn from(v: String) -> Self {
        EnvValue::Plain(Output::known(v))
    }
}
impl From<Output<String>> for EnvValue {
    fn from(v: Output<String>) -> Self {
        EnvValue::Plain(v)
    }
}
impl From<Output<Secret<String>>> for EnvValue {
    fn from(v: Output<Secret<String>>) -> Self {
        EnvValue::Secret(v)
    }
}
impl From<Secret<String>> for EnvValue {
    fn from(v: Secret<String>) -> Self {
        EnvValue::Secret(Output::known(v))
    }
}

/// A stateless HTTP service.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::k8s::ClusterRef;
/// let mut s = Stack::new("demo");
/// let cluster = ClusterRef::kubeconfig("kind");
/// let web = WebService::builder()
///     .name("api").cluster(&cluster).namespace("shop")
///     .image("acme/api:1.4.2").port(8080).health(Health::http("/healthz"))
///     .replicas(3..=12)
///     .env("LOG_LEVEL", "info")
///     .env("TOKEN", Secret::new("s3cr3t".to_string()))
///     .build().add(&mut s).unwrap();
/// assert_eq!(web.url(), "http://api.shop.svc.cluster.local");
/// let kinds: Vec<String> = fabric::k8s::render::render_objects(&s.finish().unwrap())
///     .iter().map(|o| o.object["kind"].as_str().unwrap().to_string()).collect();
/// assert_eq!(kinds, ["NetworkPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "Service", "Deployment", "HorizontalPodAutoscaler"]);
/// ```
#[derive(TypedBuilder)]
#[builder(mutators(
    /// Sets an environment variable (plain text, an `Output`, or a `Secret`).
    pub fn env(&mut self, name: &str, value: impl Into<EnvValue>) {
        self.env.push((name.to_string(), value.into()));
    }
    /// Routes `host` from the load balancer to this service (several hosts may be routed).
    pub fn route(&mut self, edge: &'a Edge, host: &str) {
        self.routes.push((edge, host.to_string()));
    }
    /// Lets the pods reach `target` (a database, a Prometheus, another service): in a namespace
    /// fabric isolates, nothing else leaves the pods but DNS.
    pub fn reach(&mut self, target: Reach) {
        self.reaches.push(target);
    }
))]
pub struct WebService<'a> {
    #[builder(setter(into))]
    name: String,
    cluster: &'a ClusterRef,
    #[builder(default = "default".into(), setter(into))]
    namespace: String,
    /// An image with a tag or digest (`acme/api:1.4.2`); `latest` is refused.
    #[builder(setter(into))]
    image: String,
    /// The container's HTTP port.
    port: i32,
    /// Readiness and liveness (required: a rollout is only as safe as its readiness probe).
    health: Health,
    /// Pods: a fixed count (`3..=3`) or a range the autoscaler moves in (`3..=12`). At least 2.
    #[builder(default = 2..=2)]
    replicas: RangeInclusive<i32>,
    /// Average CPU use (percent of the request) the autoscaler aims at.
    #[builder(default = 70)]
    cpu_target: i32,
    /// CPU request and limit.
    #[builder(default = ("250m".into(), "1".into()))]
    cpu: (String, String),
    /// Memory request and limit.
    #[builder(default = ("256Mi".into(), "512Mi".into()))]
    memory: (String, String),
    /// Seconds a stopping pod keeps serving while the load balancer drains it.
    #[builder(default = 15)]
    drain_seconds: i64,
    /// Seconds a new pod may take to start and pass its readiness probe. The rollout's progress
    /// deadline is this plus [`READY_MARGIN_SECONDS`]: a rollout with no new pod ready by then has
    /// failed, and the deploy stops and says why (the pods' states) instead of waiting it out.
    #[builder(default = 60)]
    start_seconds: i32,
    /// The (non-root) user the container runs as.
    #[builder(default = 10001)]
    run_as_user: i64,
    /// Where Prometheus scrapes the service's metrics (`None`: not scraped).
    #[builder(default = Some("/metrics".into()))]
    metrics_path: Option<String>,
    /// The NodePort used when routed (default: a stable port from the name).
    #[builder(default, setter(strip_option))]
    node_port: Option<i32>,
    #[builder(default)]
    args: Vec<String>,
    #[builder(via_mutators)]
    env: Vec<(String, EnvValue)>,
    #[builder(via_mutators)]
    routes: Vec<(&'a Edge, String)>,
    #[builder(via_mutators)]
    reaches: Vec<Reach>,
    /// The container's root filesystem is read-only, with an `emptyDir` on `/tmp` for what it
    /// writes (`true`: for images that write elsewhere).
    #[builder(default = false)]
    writable_root: bool,
}

/// What a rollout's progress deadline adds to `start_seconds`: the readiness probe's 10 s (two
/// failures 5 s apart) to see a pod fail or pass, and the 5 s a pod must stay ready to count.
pub const READY_MARGIN_SECONDS: i32 = 15;

/// A declared web service.
#[derive(Clone, Debug)]
pub struct WebServiceRef {
    name: String,
    namespace: String,
    port: i32,
    cluster: ClusterRef,
    pub deployment: ObjectRef,
    pub service: ObjectRef,
}

/// The pods run as the service's own service account (`<name>`), which AWS access can be granted
/// to (`BucketRef::grant`) and nothing else shares.
impl crate::k8s::Workload for WebServiceRef {
    fn identity(&self) -> crate::k8s::WorkloadIdentity {
        crate::k8s::WorkloadIdentity {
            name: self.name.clone(),
            cluster: self.cluster.clone(),
            namespace: self.namespace.clone(),
            service_account: self.name.clone(),
        }
    }
}

impl WebServiceRef {
    /// What another workload names in `.reach(..)` to call this service (its pods, on their
    /// port; this service admits the pods that say so).
    pub fn reach(&self) -> Reach {
        Reach::Pods {
            name: self.name.clone(),
            selector: [("app.kubernetes.io/name".to_string(), self.name.clone())].into(),
            port: self.port,
            client_label: client_label(&self.name),
        }
    }

    /// The in-cluster URL of the service (port 80).
    pub fn url(&self) -> String {
        format!("http://{}.{}.svc.cluster.local", self.name, self.namespace)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// NodePorts taken per cluster (to keep generated ones apart).
#[derive(Default)]
struct NodePorts(BTreeMap<String, Vec<(i32, String)>>);

/// The `preStop` hook that keeps a stopping pod serving while load balancers drain it: the sleep
/// action from Kubernetes 1.30 on (and where the version is not known: the cluster's dry run
/// checks it), else `sleep` run in the container (the image must have a `sleep` binary).
fn drain_hook(cluster: &crate::k8s::ClusterRef, seconds: i64) -> LifecycleHandler {
    match cluster.version() {
        Some(v) if !v.has_sleep_action() => LifecycleHandler {
            exec: Some(ExecAction { command: Some(vec!["sleep".into(), seconds.to_string()]) }),
            ..Default::default()
        },
        _ => LifecycleHandler { sleep: Some(SleepAction { seconds }), ..Default::default() },
    }
}

impl WebService<'_> {
    /// Declares the service, step by step: its inputs checked, the Secret of its secret
    /// variables, the Deployment's pod (container, probes, drain), its NodePort when routed, the
    /// objects (PodDisruptionBudget, NetworkPolicy, Service, Deployment, autoscaler), and the
    /// load balancer's routes to it.
    pub fn add(self, s: &mut Stack) -> crate::Result<WebServiceRef> {
        let (name, ns) = (self.name.clone(), self.namespace.clone());
        let mut c = self.check(s);
        let mut labels: BTreeMap<String, String> =
            [("app.kubernetes.io/name".to_string(), name.clone())].into_iter().collect();
        let selector = labels.clone();
        labels.insert("app.kubernetes.io/component".into(), "web".into());
        let secret_name = format!("{name}-env");
        let secrets = self.env_secret(s, &secret_name)?;
        let container = self.container(&secret_name);
        let deployment = self.deployment(container, &labels, &selector, &secrets);
        let node_port = self.node_port(s, &mut c);
        s.report(c.into_errors());
        let (service, deployment) = self.objects(s, deployment, &labels, &selector, node_port)?;
        if let Some(port) = node_port {
            self.routes(s, port)?;
        }
        Ok(WebServiceRef { name, namespace: ns, port: self.port, cluster: self.cluster.clone(), deployment, service })
    }

    /// Every problem of the inputs, in a checker the NodePort adds to before it is reported.
    fn check(&self, s: &Stack) -> Checker {
        let name = &self.name;
        let ns = &self.namespace;
        let mut c = Checker::new(s.urn("k8s:apps/v1:Deployment", &format!("{}/{ns}/{name}", self.cluster.name())));
        c.require(
            dns_label(name),
            "name",
            format!("`{name}` is not a valid service name"),
            "use at most 63 lowercase letters, digits and `-`",
        );
        check_image(&mut c, &self.image);
        c.within("port", self.port, 1..=65535, "{} is not a port", "give the port the container listens on");
        let (min, max) = (*self.replicas.start(), *self.replicas.end());
        c.require(
            min >= 2 && min <= max,
            "replicas",
            format!("{min}..={max} cannot keep the service up through a rollout or a node failure"),
            "run at least two replicas (`2..=2`), with the lower bound first",
        );
        c.within(
            "start_seconds",
            self.start_seconds,
            1..=3600,
            "{} s is not a start-up time",
            "give the seconds a new pod may take to become ready, from 1 to 3600 (the default is 60)",
        );
        c.within(
            "cpu_target",
            self.cpu_target,
            1..=100,
            "{}% is not a CPU target",
            "give a percentage of the CPU request, such as 70",
        );
        if let Health::Http(path) = &self.health {
            c.require(
                path.starts_with('/'),
                "health",
                format!("`{path}` is not a path"),
                "give a path such as `/healthz`",
            );
        }
        for (i, (var, _)) in self.env.iter().enumerate() {
            let ok = !var.is_empty()
                && !var.starts_with(|c: char| c.is_ascii_digit())
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            c.require(ok, "env", format!("`{var}` is not an environment variable name"), "use letters, digits and `_`");
            if self.env[..i].iter().any(|(v, _)| v == var) {
                c.error("env", format!("`{var}` is set twice"), "set each variable once");
            }
        }
        if !self.routes.is_empty() && self.cluster.nodes().is_none() {
            c.error(
                "route",
                format!(
                    "cluster `{}` has no node pools fabric knows, so a load balancer cannot reach it",
                    self.cluster.name()
                ),
                "route services of an `EksCluster` (its node pools are the load balancer's targets)",
            );
        }

        c
    }

    /// The Kubernetes Secret of the secret variables (none when there are none); what the pods
    /// roll on.
    fn env_secret(&self, s: &mut Stack, secret_name: &str) -> crate::Result<Vec<(String, Output<Secret<String>>)>> {
        let ns = &self.namespace;
        // Secrets go through one Kubernetes Secret; pods restart when it changes.
        let secrets: Vec<(String, Output<Secret<String>>)> = self
            .env
            .iter()
            .filter_map(|(k, v)| match v {
                EnvValue::Secret(o) => Some((k.clone(), o.clone())),
                EnvValue::Plain(_) => None,
            })
            .collect();
        if !secrets.is_empty() {
            KubeSecret::builder()
                .name(secret_name.to_string())
                .namespace(ns.clone())
                .cluster(self.cluster)
                .values(secrets.clone())
                .build()
                .add(s)?;
        }
        Ok(secrets)
    }

    /// The container: image, port, variables (secret ones through `secretKeyRef`), probes,
    /// requests and limits, the drain before it stops, a restricted security context.
    fn container(&self, secret_name: &str) -> Container {
        let name = &self.name;
        let env: Vec<EnvVar> = self
            .env
            .iter()
            .map(|(k, v)| match v {
                EnvValue::Plain(o) => {
                    EnvVar { name: k.clone(), value: Some(o.known_value().unwrap_or_default()), ..Default::default() }
                }
                EnvValue::Secret(_) => EnvVar {
                    name: k.clone(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: secret_name.to_string(),
                            key: k.clone(),
                            optional: Some(false),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            })
            .collect();

        let probe_handler = |p: &mut Probe| match &self.health {
            Health::Http(path) => {
                p.http_get = Some(HTTPGetAction {
                    path: Some(path.clone()),
                    port: IntOrString::String("http".into()),
                    ..Default::default()
                })
            }
            Health::Tcp => {
                p.tcp_socket = Some(TCPSocketAction { port: IntOrString::String("http".into()), ..Default::default() })
            }
        };
        let mut readiness = Probe {
            period_seconds: Some(5),
            failure_threshold: Some(2),
            timeout_seconds: Some(2),
            ..Default::default()
        };
        probe_handler(&mut readiness);
        let mut liveness = Probe {
            initial_delay_seconds: Some(10),
            period_seconds: Some(10),
            failure_threshold: Some(3),
            timeout_seconds: Some(2),
            ..Default::default()
        };
        probe_handler(&mut liveness);

        Container {
            name: name.clone(),
            image: Some(self.image.clone()),
            args: (!self.args.is_empty()).then(|| self.args.clone()),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: self.port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            env: (!env.is_empty()).then_some(env),
            readiness_probe: Some(readiness),
            liveness_probe: Some(liveness),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&self.cpu.0, &self.memory.0)),
                limits: Some(quantities(&self.cpu.1, &self.memory.1)),
                ..Default::default()
            }),
            lifecycle: Some(Lifecycle {
                pre_stop: Some(drain_hook(self.cluster, self.drain_seconds)),
                ..Default::default()
            }),
            security_context: Some(restricted_container(!self.writable_root)),
            volume_mounts: (!self.writable_root)
                .then(|| vec![VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() }]),
            ..Default::default()
        }
    }

    /// The Deployment (rolling with no pod unavailable, spread over zones, autoscaled or not),
    /// with what is known only at apply injected: the secrets' version, variables from outputs.
    fn deployment(
        &self,
        container: Container,
        labels: &BTreeMap<String, String>,
        selector: &BTreeMap<String, String>,
        secrets: &[(String, Output<Secret<String>>)],
    ) -> Manifest {
        let name = &self.name;
        let ns = &self.namespace;
        let mut annotations = BTreeMap::new();
        if let Some(path) = &self.metrics_path {
            annotations.insert("prometheus.io/scrape".to_string(), "true".to_string());
            annotations.insert("prometheus.io/port".to_string(), self.port.to_string());
            annotations.insert("prometheus.io/path".to_string(), path.clone());
        }
        if !secrets.is_empty() {
            annotations.insert("fabric.dev/secret-version".to_string(), String::new());
        }
        let (min, max) = (*self.replicas.start(), *self.replicas.end());
        // The pods carry what the policies of others look for: who they reach, whether scraped.
        let mut pod_labels = labels.clone();
        pod_labels.extend(self.reaches.iter().filter_map(|r| r.pod_label().cloned()));
        if self.metrics_path.is_some() {
            pod_labels.insert(LABEL_SCRAPED.into(), "true".into());
        }
        let autoscaled = max > min;
        let deployment = Deployment {
            metadata: meta(name, ns, labels),
            spec: Some(DeploymentSpec {
                // With an autoscaler, the replica count is the autoscaler's field.
                replicas: (!autoscaled).then_some(min),
                selector: LabelSelector { match_labels: Some(selector.clone()), ..Default::default() },
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::String("25%".into())),
                        max_unavailable: Some(IntOrString::Int(0)),
                    }),
                }),
                min_ready_seconds: Some(5),
                progress_deadline_seconds: Some(self.start_seconds + READY_MARGIN_SECONDS),
                revision_history_limit: Some(5),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        annotations: (!annotations.is_empty()).then_some(annotations),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        volumes: (!self.writable_root).then(|| {
                            vec![Volume {
                                name: "tmp".into(),
                                empty_dir: Some(EmptyDirVolumeSource {
                                    size_limit: Some(Quantity("256Mi".into())),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }]
                        }),
                        security_context: Some(restricted_pod(self.run_as_user)),
                        termination_grace_period_seconds: Some(self.drain_seconds + 30),
                        topology_spread_constraints: Some(spread(selector)),
                        automount_service_account_token: Some(false),
                        service_account_name: Some(self.name.clone()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut deployment = Manifest::of(&deployment);
        if !secrets.is_empty() {
            // A new secret value rolls the pods (the annotation holds a hash, never the value).
            let version = Output::all(secrets.iter().map(|(_, o)| o.clone())).map(|values: Vec<Secret<String>>| {
                let joined: Vec<&str> = values.iter().map(|v| v.expose().as_str()).collect();
                Value::String(format!("{:016x}", stable_hash(&joined.join("\u{0}"))))
            });
            deployment.inject(
                &format!("/spec/template/metadata/annotations/{}", pointer_key("fabric.dev/secret-version")),
                version,
            );
        }
        for (i, (_, v)) in self.env.iter().enumerate() {
            if let EnvValue::Plain(o) = v
                && o.known_value().is_none()
            {
                deployment
                    .inject(&format!("/spec/template/spec/containers/0/env/{i}/value"), o.clone().map(Value::String));
            }
        }

        deployment
    }

    /// The NodePort a routed service listens on (chosen from its name, or given), kept apart
    /// from the cluster's other services; `None` for a service no load balancer routes to.
    fn node_port(&self, s: &mut Stack, c: &mut Checker) -> Option<i32> {
        let name = &self.name;
        let ns = &self.namespace;
        // Routed services listen on a NodePort the load balancer's target groups point at.
        let routed = !self.routes.is_empty();
        routed.then(|| {
            let cluster = self.cluster.name().to_string();
            let who = format!("{ns}/{name}");
            let taken = s.extension::<NodePorts>().0.entry(cluster).or_default();
            let port = match self.node_port {
                Some(p) => p,
                None => {
                    let mut p = 30000 + (stable_hash(&who) % 2768) as i32;
                    while taken.iter().any(|(q, _)| *q == p) {
                        p = if p == 32767 { 30000 } else { p + 1 };
                    }
                    p
                }
            };
            if let Some((_, other)) = taken.iter().find(|(q, o)| *q == port && *o != who) {
                c.error("node_port", format!("NodePort {port} is already used by {other}"), "choose another port");
            }
            c.within(
                "node_port",
                port,
                30000..=32767,
                "{} is outside the NodePort range",
                "choose a port in 30000–32767",
            );
            taken.push((port, who));
            port
        })
    }

    /// The objects: PodDisruptionBudget, NetworkPolicy, Service, Deployment and (for a range of
    /// replicas) the HorizontalPodAutoscaler; the Service and the Deployment.
    fn objects(
        &self,
        s: &mut Stack,
        deployment: Manifest,
        labels: &BTreeMap<String, String>,
        selector: &BTreeMap<String, String>,
        node_port: Option<i32>,
    ) -> crate::Result<(ObjectRef, ObjectRef)> {
        let name = &self.name;
        let ns = &self.namespace;
        let routed = node_port.is_some();
        let (min, max) = (*self.replicas.start(), *self.replicas.end());
        let autoscaled = max > min;
        let service = Service {
            metadata: meta(name, ns, labels),
            spec: Some(ServiceSpec {
                type_: Some(if routed { "NodePort" } else { "ClusterIP" }.into()),
                selector: Some(selector.clone()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    node_port,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pdb = disruption_budget(name, ns, labels, selector);
        Manifest::of(&pdb).add(s, self.cluster)?;
        // Its own identity: nothing else runs as it, and no API token is mounted (AWS access
        // granted to it comes through EKS Pod Identity's own token).
        let account = ServiceAccount {
            metadata: meta(name, ns, labels),
            automount_service_account_token: Some(false),
            ..Default::default()
        };
        Manifest::of(&account).add(s, self.cluster)?;
        // Isolation: its port from the load balancer (routed) or from the pods that reach it,
        // scrapes from Prometheus, and out only to what it reaches.
        let mut ingress = vec![if routed {
            policy::from_anywhere(self.port)
        } else {
            let (k, v) = client_label(name);
            policy::from_pods_labelled((&k, &v), self.port)
        }];
        if self.metrics_path.is_some() && !routed {
            ingress.push(policy::from_pods_labelled((LABEL_SCRAPER, "true"), self.port));
        }
        let egress = self.reaches.iter().flat_map(Reach::egress_rules).collect();
        Manifest::new(policy::workload(name, ns, selector, ingress, egress)).add(s, self.cluster)?;
        let service = Manifest::of(&service).add(s, self.cluster)?;
        let deployment = deployment.add(s, self.cluster)?;
        if autoscaled {
            let hpa = HorizontalPodAutoscaler {
                metadata: meta(name, ns, labels),
                spec: Some(HorizontalPodAutoscalerSpec {
                    scale_target_ref: CrossVersionObjectReference {
                        api_version: Some("apps/v1".into()),
                        kind: "Deployment".into(),
                        name: name.clone(),
                    },
                    min_replicas: Some(min),
                    max_replicas: max,
                    metrics: Some(vec![MetricSpec {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricSource {
                            name: "cpu".into(),
                            target: MetricTarget {
                                type_: "Utilization".into(),
                                average_utilization: Some(self.cpu_target),
                                ..Default::default()
                            },
                        }),
                        ..Default::default()
                    }]),
                    behavior: Some(HorizontalPodAutoscalerBehavior {
                        scale_down: Some(HPAScalingRules {
                            stabilization_window_seconds: Some(300),
                            policies: Some(vec![HPAScalingPolicy {
                                type_: "Pods".into(),
                                value: 1,
                                period_seconds: 60,
                            }]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            };
            Manifest::of(&hpa).add(s, self.cluster)?;
        }
        Ok((service, deployment))
    }

    /// A target group, host rule and record per route; the node pools' autoscaling groups
    /// attached to each target group, and the nodes admitting each load balancer on the NodePort.
    fn routes(&self, s: &mut Stack, port: i32) -> crate::Result<()> {
        let name = &self.name;
        let ns = &self.namespace;
        let health_path = match &self.health {
            Health::Http(p) => p.clone(),
            Health::Tcp => "/".into(),
        };
        let nodes = self.cluster.nodes().cloned();
        let mut admitted = Vec::new();
        for (edge, host) in &self.routes {
            let tg = edge.route(s, name, host, port, &health_path)?;
            let Some(nodes) = &nodes else { continue };
            // Only EKS clusters have node groups to attach (built with the `eks` feature).
            #[cfg(not(feature = "eks"))]
            let _ = &tg;
            #[cfg(feature = "eks")]
            let tg_arn: Output<String> = Output::reference(tg.clone(), "arn");
            #[cfg(feature = "eks")]
            for (pool, asg) in &nodes.autoscaling_groups {
                crate::aws::autoscaling::TargetGroupAttachment::declare(
                    s,
                    &format!("{}/{pool}/{}", tg.name(), self.cluster.name()),
                    asg.clone(),
                    tg_arn.clone(),
                );
            }
            // The nodes admit the load balancer on this NodePort (once per load balancer).
            let sg_name = edge.security_group().urn().name().to_string();
            if !admitted.contains(&sg_name) {
                admitted.push(sg_name);
                s.declare(
                    rule_provider(),
                    &format!("{}/{ns}-{name}-{}", self.cluster.name(), edge.security_group().urn().name()),
                    IngressRuleInputs {
                        security_group_id: nodes.security_group_id.clone(),
                        ip_protocol: "tcp".into(),
                        from_port: port,
                        to_port: port,
                        cidr_ipv4: None,
                        source_security_group_id: Some(edge.security_group().id()),
                        description: format!("NodePort {port} of {ns}/{name} from load balancer"),
                    },
                    vec![],
                );
            }
        }
        Ok(())
    }
}
