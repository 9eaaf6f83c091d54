//! `EksCluster`: a Kubernetes control plane in the network's private subnets (public and private
//! endpoint, control-plane logging, version pinned), managed node pools of any shape, the add-ons
//! a production cluster needs, access for the team, and a kubeconfig.

use crate::aws::ec2::Network;
use crate::aws::ec2::{SecurityGroup, Tags};
use crate::aws::eks::{self, AccessEntryInputs, AddonInputs, ClusterInputs, NodeGroupInputs, NodeTaint};
use crate::aws::iam::{PolicyDocument, Role, RolePolicy, RolePolicyAttachment, aws_managed_policy};
use crate::k8s::access::{UserAuth, kubeconfig_yaml};
use crate::k8s::{ClusterNodes, ClusterRef};
use crate::model::{Checker, Output, Stack, Urn};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use typed_builder::TypedBuilder;

/// The Kubernetes version clusters get unless told otherwise.
pub const DEFAULT_VERSION: &str = "1.33";

/// The add-ons every cluster gets: networking, DNS, service proxy, the Pod Identity agent (pods
/// that call AWS take their own roles), EBS volumes (Prometheus keeps its data on one) and
/// metrics-server (autoscalers read CPU use from it).
/// The VPC CNI's configuration: its network policy agent on, so that NetworkPolicies hold.
pub const VPC_CNI_CONFIGURATION: &str = r#"{"enableNetworkPolicy":"true"}"#;

pub const DEFAULT_ADDONS: [&str; 6] =
    ["vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver", "metrics-server"];

/// On-demand or spot capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    OnDemand,
    Spot,
}

/// A pool of worker nodes of one shape (an EKS managed node group across the cluster's subnets).
///
/// ```
/// use fabric::aws::eks::{Capacity, NodePool};
/// let gpu = NodePool::builder().name("gpu").instance_types(vec!["g5.xlarge".into()]).size(0..=4)
///     .ami_type("AL2023_x86_64_NVIDIA").label("accelerator", "nvidia")
///     .taint("nvidia.com/gpu", "true", "NO_SCHEDULE").capacity(Capacity::OnDemand).build();
/// assert_eq!(gpu.name(), "gpu");
/// ```
#[derive(TypedBuilder, Clone, Debug)]
#[builder(mutators(
    /// A label every node of the pool carries.
    pub fn label(&mut self, key: &str, value: &str) {
        self.labels.insert(key.to_string(), value.to_string());
    }
    /// A taint every node of the pool carries (`NO_SCHEDULE`, `NO_EXECUTE`, `PREFER_NO_SCHEDULE`).
    pub fn taint(&mut self, key: &str, value: &str, effect: &str) {
        self.taints.push(NodeTaint { key: key.into(), value: value.into(), effect: effect.into() });
    }
))]
pub struct NodePool {
    #[builder(setter(into))]
    name: String,
    /// Instance types, first preferred (several spread spot capacity).
    instance_types: Vec<String>,
    /// Nodes: the autoscaler moves between the bounds.
    size: RangeInclusive<i32>,
    /// Nodes at first (default: the lower bound).
    #[builder(default, setter(strip_option))]
    desired: Option<i32>,
    #[builder(default = Capacity::OnDemand)]
    capacity: Capacity,
    #[builder(default = "AL2023_x86_64_STANDARD".into(), setter(into))]
    ami_type: String,
    #[builder(default = 50)]
    disk_gib: i32,
    /// Instance metadata hops (IMDSv2 is required): 1 keeps pods from the node's role; 2 lets
    /// them reach it (for agents that need it and have no Pod Identity).
    #[builder(default = 1)]
    imds_hop_limit: i32,
    #[builder(via_mutators)]
    labels: BTreeMap<String, String>,
    #[builder(via_mutators)]
    taints: Vec<NodeTaint>,
}

impl NodePool {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An EKS cluster.
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::Single).build().add(&mut s).unwrap();
/// let eks = EksCluster::builder().name("main").network(&net)
///     .pool(NodePool::builder().name("general").instance_types(vec!["t3.large".into()]).size(3..=9).build())
///     .pool(NodePool::builder().name("memory").instance_types(vec!["r6i.xlarge".into()]).size(0..=3)
///         .label("workload", "memory").taint("workload", "memory", "NO_SCHEDULE").build())
///     .admin("arn:aws:iam::123456789012:role/platform-team")
///     .build().add(&mut s).unwrap();
/// assert!(s.has_export("kubeconfig"));
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder)]
#[builder(mutators(
    /// Adds a node pool.
    pub fn pool(&mut self, pool: NodePool) {
        self.pools.push(pool);
    }
    /// Lets an IAM user or role administer the cluster (an EKS access entry). The identity that
    /// creates the cluster is an administrator from the start.
    pub fn admin(&mut self, principal_arn: &str) {
        self.admins.push(principal_arn.to_string());
    }
))]
pub struct EksCluster<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    #[builder(default = DEFAULT_VERSION.into(), setter(into))]
    version: String,
    /// Who may reach the public API endpoint (`[]`: private endpoint only). The default, the whole
    /// internet, works with any laptop and CI runner and is warned about in every plan: name your
    /// office, VPN and CI egress ranges instead (from config).
    #[builder(default = vec!["0.0.0.0/0".into()])]
    public_access_cidrs: Vec<String>,
    /// The Kubernetes service range (default: EKS picks one). A fabric of a numbered network
    /// takes its [`crate::numbering::FabricNumber::service_cidr`], so that no service address
    /// shadows a peered VPC's. Fixed at creation: changing it replaces the cluster.
    #[builder(default, setter(strip_option, into))]
    service_cidr: Option<String>,
    #[builder(default = vec!["api".into(), "audit".into(), "authenticator".into()])]
    logging: Vec<String>,
    /// Add-ons by name, with a pinned version or `None` for the cluster version's default.
    #[builder(default = DEFAULT_ADDONS.iter().map(|a| (a.to_string(), None)).collect())]
    addons: Vec<(String, Option<String>)>,
    /// Run the Cluster Autoscaler, which sizes every pool within its bounds to the pods waiting
    /// for room (`false`: pools stay at their desired size).
    #[builder(default = true)]
    cluster_autoscaler: bool,
    /// Envelope-encrypt Kubernetes Secrets with a KMS key the stack creates (`false`: EKS's
    /// default encryption of etcd only). Once on, it stays on: EKS cannot remove it.
    #[builder(default = true)]
    secrets_encryption: bool,
    /// Let operators open shells on the nodes through AWS Systems Manager Session Manager (the
    /// nodes' role gets `AmazonSSMManagedInstanceCore`; the EKS node images run the agent). No
    /// port is opened; in a network without NAT, add [`crate::aws::ec2::SessionManagerEndpoints`].
    #[builder(default = true)]
    session_manager: bool,
    #[builder(via_mutators)]
    pools: Vec<NodePool>,
    #[builder(via_mutators)]
    admins: Vec<String>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared cluster: where Kubernetes objects go (`.cluster(&eks)` derefs to a [`ClusterRef`]).
#[derive(Clone, Debug)]
pub struct Cluster {
    urn: Urn,
    kube: ClusterRef,
}

impl std::ops::Deref for Cluster {
    type Target = ClusterRef;
    fn deref(&self) -> &ClusterRef {
        &self.kube
    }
}

impl Cluster {
    outputs!(urn => endpoint: String, ca_data: String, oidc_issuer: String, cluster_name as "name": String);

    /// A kubeconfig for people and tools: it runs `aws eks get-token` for each use (no token is
    /// written down). `cargo xtask outputs <stack> kubeconfig` prints it; deploy writes it to
    /// `.fabric/<stack>/kubeconfig`.
    pub fn kubeconfig(&self) -> Output<String> {
        let name = self.kube.name().to_string();
        Output::all([self.cluster_name(), self.endpoint(), self.ca_data(), Output::reference(self.urn.clone(), "arn")])
            .map(move |v: Vec<String>| {
                // arn:aws:eks:<region>:<account>:cluster/<name>
                let region = v[3].split(':').nth(3).unwrap_or("us-east-2").to_string();
                kubeconfig_yaml(&name, &v[1], &v[2], &UserAuth::AwsCli { cluster_name: v[0].clone(), region })
            })
    }
}

/// `<stack>-<name>`, within EKS's 100 characters of letters, digits, `-` and `_`.
fn cluster_name(stack: &str, name: &str) -> String {
    let base: String = format!("{stack}-{name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    base.chars().take(100).collect()
}

impl EksCluster<'_> {
    /// Declares the cluster, step by step: its inputs checked, the control plane's role (and the
    /// key of its Secrets), the nodes' role, the roles of what runs in it, the cluster, its node
    /// pools, add-ons and admins, the Cluster Autoscaler, and the outputs.
    pub fn add(self, s: &mut Stack) -> crate::Result<Cluster> {
        let name = self.name.clone();
        let subnets = self.subnets();
        self.check(s, subnets.len());
        let stack = s.name().to_string();
        let eks_name = cluster_name(&stack, &name);
        let (cluster_role, cluster_deps, secrets_key) = self.control_plane_role(s, &eks_name)?;
        let (node_role, node_deps) = self.node_role(s)?;
        let (ebs_csi, autoscaler_role) = self.pod_roles(s, &eks_name)?;
        let subnet_ids = Output::all(subnets).map(|mut v| {
            v.sort();
            v
        });
        let cluster = self.cluster(s, &eks_name, &cluster_role, &subnet_ids, secrets_key.as_ref(), cluster_deps)?;
        let cluster_name_out: Output<String> = Output::reference(cluster.clone(), "name");
        let (groups, asgs) = self.node_pools(s, &cluster_name_out, &node_role, &subnet_ids, &node_deps)?;
        let ready_after = self.addons(s, &cluster_name_out, &groups, ebs_csi.as_ref());
        self.admins(s, &cluster_name_out);
        let kube = self.kube(&cluster, cluster_name_out, asgs, ready_after);
        if let Some(role) = &autoscaler_role {
            self.autoscaler(s, &cluster, &kube, &eks_name, role)?;
        }
        Ok(export(s, &name, Cluster { urn: cluster, kube }))
    }

    /// The subnets of the control plane and the nodes: the private ones, or the public ones of a
    /// network without a private tier.
    fn subnets(&self) -> Vec<Output<String>> {
        if self.network.private_subnets().is_empty() {
            self.network.public_subnets().iter().map(|p| p.id()).collect()
        } else {
            self.network.private_subnets().iter().map(|p| p.id()).collect()
        }
    }

    /// Every problem of the inputs, reported together (and a warning for an endpoint open to all).
    fn check(&self, s: &mut Stack, subnets: usize) {
        let name = &self.name;
        let mut c = Checker::new(s.urn(eks::CLUSTER, name));
        c.require(
            !self.network.is_valid() || subnets >= 2,
            "network",
            "EKS needs subnets in at least two zones",
            "use a network of two or more zones",
        );
        let version_ok = self
            .version
            .split_once('.')
            .is_some_and(|(a, b)| a == "1" && b.parse::<u32>().is_ok_and(|m| (28..=40).contains(&m)));
        c.require(
            version_ok,
            "version",
            format!("`{}` is not a Kubernetes version EKS offers", self.version),
            format!("pin a minor version such as `{DEFAULT_VERSION}`"),
        );
        for cidr in &self.public_access_cidrs {
            c.require(
                cidr.parse::<ipnet::Ipv4Net>().is_ok(),
                "public_access_cidrs",
                format!("`{cidr}` is not an IPv4 CIDR block"),
                "write blocks such as `203.0.113.0/24`",
            );
        }
        if let Some(cidr) = &self.service_cidr {
            match cidr.parse::<ipnet::Ipv4Net>() {
                Err(_) => c.error(
                    "service_cidr",
                    format!("`{cidr}` is not an IPv4 CIDR block"),
                    "write a block such as `10.129.0.0/16`",
                ),
                Ok(block) => {
                    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
                        .iter()
                        .any(|p| p.parse::<ipnet::Ipv4Net>().is_ok_and(|p| p.contains(&block)));
                    c.require(
                        private && (12..=24).contains(&block.prefix_len()),
                        "service_cidr",
                        format!("{block} is not a range EKS accepts for services"),
                        "use a /12 to /24 block inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
                    );
                    if let Some(vpc) = self.network.cidr() {
                        c.require(
                            !vpc.contains(&block.network()) && !block.contains(&vpc.network()),
                            "service_cidr",
                            format!("{block} overlaps the network's {vpc}"),
                            "use a block outside the VPC (`FabricNumber::service_cidr`)",
                        );
                    }
                }
            }
        }
        let mut seen = Vec::new();
        for p in &self.pools {
            check_pool(&mut c, p, &seen);
            seen.push(p.name.clone());
        }
        c.require(
            self.pools.iter().any(|p| !p.taints.iter().any(|t| t.effect != "PREFER_NO_SCHEDULE") && *p.size.end() >= 2),
            "pools",
            "no untainted pool of at least two nodes runs the cluster's own services (DNS, metrics)",
            "add a general pool, such as `NodePool::builder().name(\"general\").instance_types(vec![\"t3.large\".into()]).size(2..=6)`",
        );
        // An endpoint open to 0.0.0.0/0 is policy rule FAB-EKS-1 (advisory), shown with every plan.
        s.report(c.into_errors());
    }

    /// The control plane's role with the AWS managed policies, and — with Secrets encryption — a
    /// key of this stack that only this role may use.
    fn control_plane_role(
        &self,
        s: &mut Stack,
        eks_name: &str,
    ) -> crate::Result<(crate::aws::iam::RoleRef, Vec<Urn>, Option<crate::aws::kms::KmsKeyRef>)> {
        let name = &self.name;
        let cluster_role = Role::builder()
            .name(format!("eks-{name}-cluster"))
            .trust(PolicyDocument::trust_services(&["eks.amazonaws.com"]))
            .description(format!("EKS control plane of cluster {name}"))
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        let mut cluster_deps = Vec::new();
        for policy in ["AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController"] {
            cluster_deps.push(
                RolePolicyAttachment::builder()
                    .name(format!("eks-{name}-cluster/{policy}"))
                    .role(&cluster_role)
                    .policy_arn(aws_managed_policy(policy))
                    .build()
                    .add(s)?,
            );
        }
        // Secrets envelope-encrypted with a key of this stack; the control plane may use that key
        // (and no other: by the key's own `fabric:urn` tag).
        let secrets_key = if self.secrets_encryption {
            let key = crate::aws::kms::KmsKey::builder()
                .name(format!("eks-{name}-secrets"))
                .description(format!("Envelope encryption of the Kubernetes Secrets of EKS cluster {eks_name}"))
                .tags(self.tags.clone())
                .build()
                .add(s)?;
            cluster_deps.push(
                RolePolicy::builder()
                    .name(format!("eks-{name}-cluster-secrets"))
                    .role(&cluster_role)
                    .policy(PolicyDocument::new().allow_when(
                        &["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                        &["*"],
                        serde_json::json!({"StringEquals": {format!("aws:ResourceTag/{}", crate::aws::TAG_URN): key.urn().as_str()}}),
                    ))
                    .build()
                    .add(s)?,
            );
            Some(key)
        } else {
            None
        };
        Ok((cluster_role, cluster_deps, secrets_key))
    }

    /// The nodes' role with the AWS managed policies (and Session Manager's, when asked).
    fn node_role(&self, s: &mut Stack) -> crate::Result<(crate::aws::iam::RoleRef, Vec<Urn>)> {
        let name = &self.name;
        let node_role = Role::builder()
            .name(format!("eks-{name}-nodes"))
            .trust(PolicyDocument::trust_services(&["ec2.amazonaws.com"]))
            .description(format!("Worker nodes of cluster {name}"))
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        let mut node_deps = Vec::new();
        let mut node_policies =
            vec!["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"];
        if self.session_manager {
            node_policies.push("AmazonSSMManagedInstanceCore");
        }
        for policy in node_policies {
            let short = policy.rsplit('/').next().unwrap_or(policy);
            node_deps.push(
                RolePolicyAttachment::builder()
                    .name(format!("eks-{name}-nodes/{short}"))
                    .role(&node_role)
                    .policy_arn(aws_managed_policy(policy))
                    .build()
                    .add(s)?,
            );
        }
        Ok((node_role, node_deps))
    }

    /// The roles of what runs in the cluster and calls AWS (the EBS CSI driver, the Cluster
    /// Autoscaler), each through EKS Pod Identity.
    #[allow(clippy::type_complexity)]
    fn pod_roles(
        &self,
        s: &mut Stack,
        eks_name: &str,
    ) -> crate::Result<(Option<(crate::aws::iam::RoleRef, Urn)>, Option<crate::aws::iam::RoleRef>)> {
        let name = &self.name;
        // What runs in the cluster and calls AWS gets its own role through EKS Pod Identity, not
        // the nodes' role (which every pod could reach through the instance metadata).
        let pod_role = |s: &mut Stack, role: &str, what: &str| {
            Role::builder()
                .name(format!("eks-{name}-{role}"))
                .trust(PolicyDocument::trust_eks_pods())
                .description(format!("{what} of cluster {name}, through EKS Pod Identity"))
                .tags(self.tags.clone())
                .build()
                .add(s)
        };
        let ebs_csi = if self.addons.iter().any(|(a, _)| a == "aws-ebs-csi-driver") {
            let role = pod_role(s, "ebs-csi", "The EBS CSI driver (volumes of PersistentVolumeClaims)")?;
            let attached = RolePolicyAttachment::builder()
                .name(format!("eks-{name}-ebs-csi/AmazonEBSCSIDriverPolicy"))
                .role(&role)
                .policy_arn(aws_managed_policy("service-role/AmazonEBSCSIDriverPolicy"))
                .build()
                .add(s)?;
            Some((role, attached))
        } else {
            None
        };
        let autoscaler_role = if self.cluster_autoscaler {
            let role = pod_role(s, "cluster-autoscaler", "The Cluster Autoscaler")?;
            RolePolicy::builder()
                .name(format!("eks-{name}-cluster-autoscaler"))
                .role(&role)
                .policy(super::cluster_autoscaler::policy(eks_name))
                .build()
                .add(s)?;
            Some(role)
        } else {
            None
        };
        Ok((ebs_csi, autoscaler_role))
    }

    /// The control plane's extra security group, and the cluster itself.
    fn cluster(
        &self,
        s: &mut Stack,
        eks_name: &str,
        cluster_role: &crate::aws::iam::RoleRef,
        subnet_ids: &Output<Vec<String>>,
        secrets_key: Option<&crate::aws::kms::KmsKeyRef>,
        cluster_deps: Vec<Urn>,
    ) -> crate::Result<Urn> {
        let name = &self.name;
        let control_plane_sg = SecurityGroup::builder()
            .name(format!("{name}/control-plane"))
            .vpc(self.network.vpc())
            .description(format!("EKS cluster {name}: extra group of the control plane"))
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        let cluster = s.declare(
            eks::cluster_provider(),
            name,
            ClusterInputs {
                name: eks_name.to_string(),
                version: self.version.clone(),
                role_arn: cluster_role.arn(),
                subnet_ids: subnet_ids.clone(),
                security_group_ids: Output::all([control_plane_sg.id()]),
                endpoint_public: !self.public_access_cidrs.is_empty(),
                endpoint_private: true,
                public_access_cidrs: self.public_access_cidrs.clone(),
                logging: {
                    let mut l = self.logging.clone();
                    l.sort();
                    l
                },
                tags: self.tags.clone(),
                secrets_key_arn: secrets_key.as_ref().map(|k| k.arn()),
                service_cidr: self.service_cidr.clone(),
            },
            cluster_deps,
        );
        Ok(cluster)
    }

    /// A launch template (IMDSv2, one hop) and a managed node group per pool; with each group's
    /// autoscaling group, for load balancers to attach.
    #[allow(clippy::type_complexity)]
    fn node_pools(
        &self,
        s: &mut Stack,
        cluster_name_out: &Output<String>,
        node_role: &crate::aws::iam::RoleRef,
        subnet_ids: &Output<Vec<String>>,
        node_deps: &[Urn],
    ) -> crate::Result<(Vec<Urn>, Vec<(String, Output<String>)>)> {
        let name = &self.name;
        let mut groups = Vec::new();
        let mut asgs = Vec::new();
        for p in &self.pools {
            // Nodes answer instance metadata only through IMDSv2 sessions, one hop away: their
            // pods cannot take the node's role.
            let template = crate::aws::ec2::LaunchTemplate::builder()
                .name(format!("{name}-{}", p.name))
                .disk_size_gib(p.disk_gib)
                .hop_limit(p.imds_hop_limit)
                .tags(self.tags.clone())
                .build()
                .add(s)?;
            let group = s.declare(
                eks::node_group_provider(),
                &format!("{name}/{}", p.name),
                NodeGroupInputs {
                    cluster_name: cluster_name_out.clone(),
                    name: p.name.clone(),
                    node_role_arn: node_role.arn(),
                    subnet_ids: subnet_ids.clone(),
                    instance_types: p.instance_types.clone(),
                    capacity_type: match p.capacity {
                        Capacity::OnDemand => "ON_DEMAND".into(),
                        Capacity::Spot => "SPOT".into(),
                    },
                    ami_type: p.ami_type.clone(),
                    // The root volume is the launch template's.
                    disk_size_gib: 0,
                    min_size: *p.size.start(),
                    desired_size: p.desired.unwrap_or(*p.size.start()),
                    max_size: *p.size.end(),
                    labels: p.labels.clone(),
                    taints: {
                        let mut t = p.taints.clone();
                        t.sort();
                        t
                    },
                    tags: self.tags.clone(),
                    launch_template: Some(eks::NodeLaunchTemplate { id: template.id(), version: template.version() }),
                },
                node_deps.to_vec(),
            );
            asgs.push((p.name.clone(), Output::<String>::reference(group.clone(), "autoscaling_group")));
            groups.push(group);
        }
        Ok((groups, asgs))
    }

    /// The add-ons, after the node groups they run on; what the cluster is ready after.
    fn addons(
        &self,
        s: &mut Stack,
        cluster_name_out: &Output<String>,
        groups: &[Urn],
        ebs_csi: Option<&(crate::aws::iam::RoleRef, Urn)>,
    ) -> Vec<Urn> {
        let name = &self.name;
        let mut ready_after = groups.to_vec();
        for (addon, version) in &self.addons {
            // Add-ons run on nodes (coredns, metrics-server); the rest is harmless to order too.
            let addon_urn = s.declare(
                eks::addon_provider(),
                &format!("{name}/{addon}"),
                AddonInputs {
                    cluster_name: cluster_name_out.clone(),
                    name: addon.clone(),
                    version: version.clone(),
                    pod_identity: match (ebs_csi, addon.as_str()) {
                        (Some((role, _)), "aws-ebs-csi-driver") => Some(eks::AddonIdentity {
                            service_account: "ebs-csi-controller-sa".into(),
                            role_arn: role.arn(),
                        }),
                        _ => None,
                    },
                    tags: self.tags.clone(),
                    // The VPC CNI enforces NetworkPolicies (the isolation of namespaces and workloads).
                    configuration: (addon == "vpc-cni").then(|| VPC_CNI_CONFIGURATION.to_string()),
                },
                match (ebs_csi, addon.as_str()) {
                    (Some((_, attached)), "aws-ebs-csi-driver") => {
                        groups.iter().cloned().chain([attached.clone()]).collect()
                    }
                    _ => groups.to_vec(),
                },
            );
            ready_after.push(addon_urn);
        }
        ready_after
    }

    /// An access entry (cluster admin) per principal named with `.admin(arn)`.
    fn admins(&self, s: &mut Stack, cluster_name_out: &Output<String>) {
        let name = &self.name;
        for principal in &self.admins {
            let short = principal.rsplit(['/', ':']).next().unwrap_or(principal);
            s.declare(
                eks::access_entry_provider(),
                &format!("{name}/{short}"),
                AccessEntryInputs {
                    cluster_name: cluster_name_out.clone(),
                    principal_arn: principal.clone(),
                    policy_arn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy".into(),
                },
                vec![],
            );
        }
    }

    /// How Kubernetes objects reach the cluster: its endpoint and CA, its nodes, its version and
    /// network, and the steps it is ready after.
    fn kube(
        &self,
        cluster: &Urn,
        cluster_name_out: Output<String>,
        asgs: Vec<(String, Output<String>)>,
        ready_after: Vec<Urn>,
    ) -> ClusterRef {
        let name = &self.name;
        let mut kube = ClusterRef::eks(
            name,
            cluster_name_out,
            Output::reference(cluster.clone(), "endpoint"),
            Output::reference(cluster.clone(), "ca_data"),
        )
        .with_nodes(ClusterNodes {
            autoscaling_groups: asgs,
            security_group_id: Output::reference(cluster.clone(), "node_security_group_id"),
        })
        .ready_after(ready_after);
        if let Some(version) = crate::k8s::KubeVersion::parse(&self.version) {
            kube = kube.with_version(version);
        }
        if let Some(cidr) = self.network.cidr() {
            kube = kube.with_network_cidr(cidr);
        }
        kube
    }

    /// The Cluster Autoscaler: its Pod Identity association and its Kubernetes objects.
    fn autoscaler(
        &self,
        s: &mut Stack,
        cluster: &Urn,
        kube: &ClusterRef,
        eks_name: &str,
        role: &crate::aws::iam::RoleRef,
    ) -> crate::Result<()> {
        let name = &self.name;
        s.declare(
            eks::pod_identity_provider(),
            &format!("{name}/cluster-autoscaler"),
            eks::PodIdentityInputs {
                cluster_name: Output::<String>::reference(cluster.clone(), "name"),
                namespace: "kube-system".into(),
                service_account: "cluster-autoscaler".into(),
                role_arn: role.arn(),
                tags: self.tags.clone(),
            },
            vec![],
        );
        super::cluster_autoscaler::declare(
            s,
            kube,
            eks_name,
            Output::reference(cluster.clone(), "arn"),
            &self.version,
        )?;
        Ok(())
    }
}

/// The problems of one node pool (`seen`: the names of the pools before it).
fn check_pool(c: &mut Checker, p: &NodePool, seen: &[String]) {
    let (min, max) = (*p.size.start(), *p.size.end());
    let pool_field = format!("pool {}", p.name);
    c.require(
        crate::k8s::manifest::dns_label(&p.name),
        &pool_field,
        format!("`{}` is not a valid pool name", p.name),
        "use lowercase letters, digits and `-`",
    );
    c.require(!seen.contains(&p.name), &pool_field, "two pools have this name", "name each pool once");
    c.require(
        0 <= min && min <= max && max >= 1,
        &pool_field,
        format!("size {min}..={max} is not a node count range"),
        "give `min..=max` with 0 ≤ min ≤ max and max ≥ 1",
    );
    if let Some(d) = p.desired {
        c.require(
            p.size.contains(&d),
            &pool_field,
            format!("desired {d} is outside {min}..={max}"),
            "start within the bounds",
        );
    }
    c.require(!p.instance_types.is_empty(), &pool_field, "no instance types", "give at least one, such as `t3.large`");
    // The AMI types EKS knows (the SDK's list); the kinds fabric's nodes boot (AL2023 and
    // Bottlerocket) need at least 20 GiB of disk.
    let known = aws_sdk_eks::types::AmiTypes::values();
    c.require(
        known.contains(&p.ami_type.as_str()) && p.ami_type != "CUSTOM",
        &pool_field,
        format!("AMI type `{}` is not one EKS offers for managed nodes", p.ami_type),
        format!(
            "use one of {}",
            known
                .iter()
                .filter(|a| a.starts_with("AL2023") || a.starts_with("BOTTLEROCKET"))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    c.within(
        &pool_field,
        p.disk_gib,
        20..=16_384,
        "a {} GiB disk",
        "give 20 to 16384 GiB (EKS refuses less than the AMI's 20 GiB root volume)",
    );
    for t in &p.taints {
        c.require(
            ["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"].contains(&t.effect.as_str()),
            &pool_field,
            format!("taint effect `{}` is not one EKS knows", t.effect),
            "use NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE",
        );
    }
}

/// The cluster's outputs: `kubeconfig` (`cargo xtask outputs <stack> kubeconfig` prints it;
/// deploy writes it beside the state), endpoint, CA data and OIDC issuer; a second cluster's carry
/// its name.
fn export(s: &mut Stack, name: &str, cluster: Cluster) -> Cluster {
    let suffix = if s.has_export("kubeconfig") { format!("-{name}") } else { String::new() };
    s.export(&format!("kubeconfig{suffix}"), cluster.kubeconfig());
    s.export(&format!("cluster_endpoint{suffix}"), cluster.endpoint());
    s.export(&format!("cluster_ca_data{suffix}"), cluster.ca_data());
    s.export(&format!("cluster_oidc_issuer{suffix}"), cluster.oidc_issuer());
    cluster
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ec2::{Nat, Vpc};

    #[test]
    fn bad_pools_and_versions_are_reported_together() {
        let mut s = Stack::new("demo");
        let net =
            Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(&mut s).unwrap();
        #[allow(clippy::reversed_empty_ranges)]
        EksCluster::builder()
            .name("main")
            .network(&net)
            .version("1.3")
            .public_access_cidrs(vec!["everyone".into()])
            .pool(NodePool::builder().name("gpu").instance_types(vec![]).size(3..=1).taint("gpu", "x", "NEVER").build())
            .pool(
                NodePool::builder()
                    .name("small")
                    .instance_types(vec!["t3.large".into()])
                    .size(0..=1)
                    .taint("small", "yes", "NO_SCHEDULE")
                    .ami_type("AL2023_x86_64_STANDRD")
                    .disk_gib(8)
                    .build(),
            )
            .build()
            .add(&mut s)
            .unwrap();
        let errors = s.finish().err().unwrap().to_string();
        for needle in [
            "AMI type `AL2023_x86_64_STANDRD` is not one EKS offers",
            "a 8 GiB disk",
            "`1.3` is not a Kubernetes version",
            "`everyone` is not an IPv4 CIDR block",
            "size 3..=1 is not a node count range",
            "no instance types",
            "taint effect `NEVER`",
            "no untainted pool of at least two nodes",
        ] {
            assert!(errors.contains(needle), "missing {needle:?} in\n{errors}");
        }
    }
}
