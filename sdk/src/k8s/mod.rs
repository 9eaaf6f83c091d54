//! Kubernetes: objects declared as resources of the stack, applied with server-side apply (field
//! manager `fabric`), awaited until ready, and pruned when the program no longer declares them.
//!
//! Every object is one resource of type `k8s:<apiVersion>:<Kind>` named `<cluster>/<namespace>/<name>`
//! (or `<cluster>/<name>` when cluster-scoped), so plans, state, crash recovery and destroy work
//! as for AWS resources. Objects are labelled `app.kubernetes.io/managed-by=fabric` and
//! `fabric.dev/stack=<stack>`; deletes check those labels first, like a Helm release.
//!
//! Builders: [`objects`] (`Namespace`, `ConfigMap`, `KubeSecret`, `Manifest::from_yaml`) and the
//! workloads of [`crate::components`] (`WebService`, `Prometheus`).

pub mod access;
pub mod fields;
pub mod manifest;
pub mod objects;
pub(crate) mod pod;
pub mod policy;
pub mod provider;
pub mod ready;
pub mod render;
pub mod values;
pub mod version;

pub use access::KubeAccess;
pub use manifest::Manifest;
pub use objects::{ConfigMap, KubeSecret, Namespace};
pub use version::KubeVersion;

use crate::model::{Output, Stack, Urn};
use serde::{Deserialize, Serialize};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "fabric";
/// Labels on every object fabric applies.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_STACK: &str = "fabric.dev/stack";
/// The prefix of every Kubernetes resource type.
pub const TYPE_PREFIX: &str = "k8s:";

/// A cluster objects are applied to.
///
/// [`crate::aws::eks::EksCluster`] gives one (reached through its endpoint with a token from
/// STS, or with `--kubeconfig`); [`ClusterRef::kubeconfig`] names a cluster fabric does not manage,
/// reached only with `--kubeconfig PATH` (kind, minikube, an existing EKS).
#[derive(Clone, Debug, Serialize)]
pub struct ClusterRef {
    name: String,
    #[serde(flatten)]
    connection: Connection,
    /// The Kubernetes version it runs, when known: builders emit only fields it accepts, and
    /// manifests are validated against its schemas.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<KubeVersion>,
    /// The address range of its nodes and control plane (EKS: the VPC), for NetworkPolicies.
    #[serde(skip)]
    network_cidr: Option<ipnet::Ipv4Net>,
    /// The worker nodes, for load balancers that target them (EKS).
    #[serde(skip)]
    nodes: Option<ClusterNodes>,
    /// What must exist before objects are applied (node groups, add-ons).
    #[serde(skip)]
    ready_after: Vec<Urn>,
}

/// The worker nodes of a cluster fabric manages: what an [`crate::aws::elbv2::AlbIngress`] route
/// attaches to and admits traffic into.
#[derive(Clone, Debug)]
pub struct ClusterNodes {
    /// `(pool name, autoscaling group name)` per node pool.
    pub autoscaling_groups: Vec<(String, Output<String>)>,
    /// The security group of the nodes.
    pub security_group_id: Output<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
enum Connection {
    Eks(Box<EksConnection>),
    Kubeconfig,
}

#[derive(Clone, Debug, Serialize)]
struct EksConnection {
    cluster_name: Output<String>,
    endpoint: Output<String>,
    ca_data: Output<String>,
}

/// A cluster connection as resolved at apply time (what providers read).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct ClusterInfo {
    pub name: String,
    pub via: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<KubeVersion>,
}

impl ClusterRef {
    /// A cluster that fabric does not manage, reached with `--kubeconfig PATH` (or
    /// `FABRIC_KUBECONFIG`); `name` is its name in URNs.
    ///
    /// ```
    /// use fabric::k8s::{ClusterRef, Namespace};
    /// let mut s = fabric::model::Stack::new("demo");
    /// let kind = ClusterRef::kubeconfig("kind");
    /// Namespace::builder().name("apps").cluster(&kind).build().add(&mut s).unwrap();
    /// assert_eq!(s.finish().unwrap().nodes()[0].urn.to_string(), "demo::k8s:v1:Namespace::kind/apps");
    /// ```
    pub fn kubeconfig(name: &str) -> Self {
        ClusterRef {
            name: name.to_string(),
            connection: Connection::Kubeconfig,
            version: None,
            network_cidr: None,
            nodes: None,
            ready_after: vec![],
        }
    }

    /// Running Kubernetes `version`: builders emit only what it accepts (below 1.30, a `preStop`
    /// hook runs `sleep` in the container instead of the sleep action), `render` and `--local`
    /// validate against its schemas, and the dry run refuses a cluster that runs an older one.
    /// Without it, a kubeconfig cluster is checked by its own API server (the dry run).
    ///
    /// ```
    /// use fabric::k8s::{ClusterRef, KubeVersion};
    /// let kind = ClusterRef::kubeconfig("kind").with_version(KubeVersion::new(1, 29));
    /// assert_eq!(kind.version(), Some(KubeVersion::new(1, 29)));
    /// ```
    pub fn with_version(mut self, version: KubeVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// With the address range of its nodes and control plane (EKS: the VPC's).
    pub fn with_network_cidr(mut self, cidr: ipnet::Ipv4Net) -> Self {
        self.network_cidr = Some(cidr);
        self
    }

    /// The address range of its nodes and control plane, when known.
    pub fn network_cidr(&self) -> Option<ipnet::Ipv4Net> {
        self.network_cidr
    }

    /// The Kubernetes version the cluster runs, when known.
    pub fn version(&self) -> Option<KubeVersion> {
        self.version
    }

    /// A cluster reached through its API endpoint with a token from STS (EKS).
    pub fn eks(name: &str, cluster_name: Output<String>, endpoint: Output<String>, ca_data: Output<String>) -> Self {
        ClusterRef {
            name: name.to_string(),
            connection: Connection::Eks(Box::new(EksConnection { cluster_name, endpoint, ca_data })),
            version: None,
            network_cidr: None,
            nodes: None,
            ready_after: vec![],
        }
    }

    /// With the worker nodes that load balancers target.
    pub fn with_nodes(mut self, nodes: ClusterNodes) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// Objects are applied only once these exist (the node groups and add-ons of a new cluster:
    /// a rollout cannot finish without nodes).
    pub fn ready_after(mut self, urns: Vec<Urn>) -> Self {
        self.ready_after = urns;
        self
    }

    pub fn nodes(&self) -> Option<&ClusterNodes> {
        self.nodes.as_ref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The EKS cluster's name, for a cluster of this stack's `EksCluster` (`None`: a kubeconfig
    /// cluster).
    pub fn eks_cluster_name(&self) -> Option<Output<String>> {
        match &self.connection {
            Connection::Eks(eks) => Some(eks.cluster_name.clone()),
            Connection::Kubeconfig => None,
        }
    }
}

/// Who a workload's pods are to the cluster and to AWS: their service account.
#[derive(Clone, Debug)]
pub struct WorkloadIdentity {
    /// The workload's name.
    pub name: String,
    pub cluster: ClusterRef,
    pub namespace: String,
    pub service_account: String,
}

/// A workload whose pods run as a service account of their own, which AWS access can be granted
/// to (`BucketRef::grant`).
pub trait Workload {
    fn identity(&self) -> WorkloadIdentity;
}

/// Where an object stands in the apply order: namespaces and CRDs first, then policy and
/// identities, RBAC and configuration, services, workloads, and what refers to workloads.
pub fn tier(kind: &str) -> u8 {
    match kind {
        "Namespace" | "CustomResourceDefinition" => 0,
        "NetworkPolicy"
        | "ResourceQuota"
        | "LimitRange"
        | "PodDisruptionBudget"
        | "ServiceAccount"
        | "StorageClass"
        | "PersistentVolume"
        | "PriorityClass" => 1,
        "ClusterRole"
        | "Role"
        | "ClusterRoleBinding"
        | "RoleBinding"
        | "Secret"
        | "ConfigMap"
        | "PersistentVolumeClaim" => 2,
        "Service" => 3,
        "DaemonSet" | "Pod" | "ReplicaSet" | "Deployment" | "StatefulSet" | "Job" | "CronJob" => 4,
        _ => 5,
    }
}

/// Kinds without a namespace (for manifests that do not say).
pub fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "CustomResourceDefinition"
            | "StorageClass"
            | "PersistentVolume"
            | "PriorityClass"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "IngressClass"
            | "APIService"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "CSIDriver"
            | "RuntimeClass"
            | "Node"
    )
}

/// The resource type of objects of `api_version` and `kind`: `k8s:apps/v1:Deployment`.
pub fn type_name(api_version: &str, kind: &str) -> String {
    format!("{TYPE_PREFIX}{api_version}:{kind}")
}

/// What the stack knows of the objects declared so far, per cluster (for the apply order).
#[derive(Default)]
struct Declared(Vec<(String, Urn, u8, Option<String>)>);

/// The inputs of an object resource.
#[derive(Serialize)]
struct ObjectInputs {
    cluster: ClusterRef,
    manifest: Manifest,
    /// Seconds to wait for the object to be ready after each apply.
    ready_timeout_secs: u64,
}

/// A declared object.
#[derive(Clone, Debug)]
pub struct ObjectRef {
    urn: Urn,
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

impl ObjectRef {
    outputs!(urn =>
        /// The object's uid, once applied.
        uid: String,
    );
    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn api_version(&self) -> &str {
        &self.api_version
    }
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The default time an object may take to become ready.
pub const DEFAULT_READY_TIMEOUT_SECS: u64 = 600;

/// Declares `manifest` as a resource applied to `cluster`: labels it, checks it, and orders it
/// after the namespaces, configuration and RBAC it may need (by [`tier`]).
pub fn declare(
    s: &mut Stack,
    cluster: &ClusterRef,
    mut manifest: Manifest,
    ready_timeout_secs: u64,
) -> crate::Result<ObjectRef> {
    let stack = s.name().to_string();
    manifest.label(LABEL_MANAGED_BY, FIELD_MANAGER);
    manifest.label(LABEL_STACK, &stack);
    let (api_version, kind, namespace, name) = manifest.identity();
    let urn_name = match &namespace {
        Some(ns) => format!("{}/{ns}/{name}", cluster.name),
        None => format!("{}/{name}", cluster.name),
    };
    let type_name = type_name(&api_version, &kind);
    let provider = provider::provider_for(&type_name);
    let urn = s.urn(&type_name, &urn_name);
    let errors = manifest.check(&urn);
    s.report(errors);
    let inputs = ObjectInputs { cluster: cluster.clone(), manifest, ready_timeout_secs };
    let urn = s.declare(provider, &urn_name, inputs, cluster.ready_after.clone());
    let this_tier = tier(&kind);
    let earlier: Vec<(Urn, u8, Option<String>)> = s
        .extension::<Declared>()
        .0
        .iter()
        .filter(|(c, ..)| *c == cluster.name)
        .map(|(_, u, t, ns)| (u.clone(), *t, ns.clone()))
        .collect();
    for (other, other_tier, other_ns) in earlier {
        let related = other_ns.is_none() || namespace.is_none() || other_ns == namespace;
        if !related || other == urn {
            continue;
        }
        if other_tier < this_tier {
            s.depend(&urn, &other);
        } else if other_tier > this_tier {
            s.depend(&other, &urn);
        }
    }
    s.extension::<Declared>().0.push((cluster.name.clone(), urn.clone(), this_tier, namespace.clone()));
    Ok(ObjectRef { urn, api_version, kind, namespace, name })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn objects_are_ordered_by_tier_within_a_namespace() {
        let mut s = Stack::new("demo");
        let c = ClusterRef::kubeconfig("kind");
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: apps}\nspec: {}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: apps}\n---\n\
                    apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: elsewhere}\n";
        for m in Manifest::from_yaml(yaml).unwrap() {
            declare(&mut s, &c, m, 1).unwrap();
        }
        let g = s.finish().unwrap();
        let order: Vec<String> = g.nodes().iter().map(|n| n.urn.name().to_string()).collect();
        let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert!(pos("kind/apps") < pos("kind/apps/cfg"));
        assert!(pos("kind/apps/cfg") < pos("kind/apps/web"));
        let web = g.get(&Urn::new("demo", "k8s:apps/v1:Deployment", "kind/apps/web")).unwrap();
        assert!(web.deps.contains(&Urn::new("demo", "k8s:v1:ConfigMap", "kind/apps/cfg")));
        assert!(!web.deps.contains(&Urn::new("demo", "k8s:v1:ConfigMap", "kind/elsewhere/other")));
    }
}
