//! Amazon EKS: clusters, managed node groups, add-ons and access entries.

use super::wait::{Poll, poll_until};
use super::{TAG_STACK, TAG_URN, Tags, call_failed, error_code};
use crate::aws::AwsCtx;
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult, TypedProvider, typed};
use crate::model::Urn;
use async_trait::async_trait;
use aws_sdk_eks::types::{
    AccessScope, AccessScopeType, AuthenticationMode, CreateAccessConfigRequest, LogSetup, LogType, Logging,
    NodegroupScalingConfig, NodegroupUpdateConfig, ResolveConflicts, Taint, TaintEffect, UpdateLabelsPayload,
    UpdateTaintsPayload, VpcConfigRequest,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const CLUSTER: &str = "aws:eks:Cluster";
pub const NODE_GROUP: &str = "aws:eks:NodeGroup";
pub const ADDON: &str = "aws:eks:Addon";
pub const ACCESS_ENTRY: &str = "aws:eks:AccessEntry";
pub const POD_IDENTITY: &str = "aws:eks:PodIdentityAssociation";

/// Cluster creates take 10–15 minutes, node groups 3–5; deletes about as long.
const WAIT: Duration = Duration::from_secs(40 * 60);
const POLL: Duration = Duration::from_secs(15);

pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![cluster_provider(), node_group_provider(), addon_provider(), access_entry_provider(), pod_identity_provider()]
}

pub fn pod_identity_provider() -> Arc<dyn Provider> {
    typed(PodIdentityProvider)
}

pub fn cluster_provider() -> Arc<dyn Provider> {
    typed(ClusterProvider)
}

pub fn node_group_provider() -> Arc<dyn Provider> {
    typed(NodeGroupProvider)
}

pub fn addon_provider() -> Arc<dyn Provider> {
    typed(AddonProvider)
}

pub fn access_entry_provider() -> Arc<dyn Provider> {
    typed(AccessEntryProvider)
}

fn eks_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> HashMap<String, String> {
    tags.iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain([(TAG_STACK.to_string(), ctx.stack.clone()), (TAG_URN.to_string(), urn.as_str().to_string())])
        .collect()
}

async fn sync_tags(ctx: &Ctx, arn: &str, old: &Tags, new: &Tags) -> ProviderResult<()> {
    let eks = &ctx.aws()?.eks;
    let changes = super::TagChanges::between(old, new);
    if !changes.removed.is_empty() {
        eks.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(changes.removed))
            .send()
            .await
            .map_err(|e| call_failed("UntagResource", e))?;
    }
    if !changes.set.is_empty() {
        eks.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(changes.set.into_iter().collect()))
            .send()
            .await
            .map_err(|e| call_failed("TagResource", e))?;
    }
    Ok(())
}

fn not_found<E: aws_sdk_eks::error::ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    error_code(e) == Some("ResourceNotFoundException")
}

/// The local emulator does not implement this EKS action (it answers 404 or 500 without an
/// EKS error code).
fn emulator_lacks<E: aws_sdk_eks::error::ProvideErrorMetadata>(ctx: &Ctx, e: &SdkError<E, HttpResponse>) -> bool {
    ctx.aws().is_ok_and(|a| a.emulator)
        && e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 404 | 500))
        && !not_found(e)
}

/// A request token that is the same for retries of one create (EKS de-duplicates on it).
/// The idempotency token of a create: the same for a retry of the same create, another one for
/// the create of a replacement (`what` is the new instance's settings).
fn token(urn: &Urn, what: &impl Serialize) -> String {
    let settings = serde_json::to_string(what).unwrap_or_default();
    format!("fabric-{:016x}", crate::model::stable_hash(&format!("{urn}\u{0}{settings}")))
}

/// The statuses that end a wait at once, as failures: taken from the SDK's own waiters
/// (`ClusterActive`/`ClusterDeleted`, `NodegroupActive`/`NodegroupDeleted`,
/// `AddonActive`/`AddonDeleted`), plus the few that fabric's waits also meet (an update that
/// failed, a thing deleted by someone else while it was awaited).
#[derive(Clone, Copy, Debug)]
pub struct Acceptors {
    /// Waiting for `ACTIVE`.
    pub active_fails: &'static [&'static str],
    /// Waiting for it to be gone.
    pub gone_fails: &'static [&'static str],
}

pub const CLUSTER_ACCEPTORS: Acceptors =
    Acceptors { active_fails: &["DELETING", "FAILED"], gone_fails: &["ACTIVE", "CREATING", "PENDING"] };
pub const NODE_GROUP_ACCEPTORS: Acceptors = Acceptors {
    active_fails: &["CREATE_FAILED", "DEGRADED", "DELETING", "DELETE_FAILED"],
    gone_fails: &["DELETE_FAILED"],
};
pub const ADDON_ACCEPTORS: Acceptors = Acceptors {
    active_fails: &["CREATE_FAILED", "DEGRADED", "UPDATE_FAILED", "DELETING", "DELETE_FAILED"],
    gone_fails: &["DELETE_FAILED"],
};

/// Polls `describe` until the thing is `ACTIVE` (or gone, with `gone`). A status that
/// `acceptors` name for that wait stops it at once, naming the status and `why` of what was read.
async fn wait_active<T, F, Fut>(
    what: &str,
    gone: bool,
    acceptors: Acceptors,
    mut describe: F,
    status: impl Fn(&T) -> Option<String>,
    why: impl Fn(&T) -> String,
) -> ProviderResult<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ProviderResult<Option<T>>>,
{
    let failed = if gone { acceptors.gone_fails } else { acceptors.active_fails };
    let check = || {
        let look = describe();
        let (status, why) = (&status, &why);
        async move {
            let found = look.await?;
            match (found.as_ref().and_then(status).as_deref(), gone) {
                (None, true) => Ok(Poll::Ready(None)),
                (Some("ACTIVE"), false) => Ok(Poll::Ready(found)),
                (Some(s), _) if failed.contains(&s) => {
                    let detail = found.as_ref().map(why).unwrap_or_default();
                    let waiting_for = if gone { "to be deleted" } else { "to be ACTIVE" };
                    Err(ProviderError(format!("{what} is {s}{detail} (while waiting for it {waiting_for})")))
                }
                (None, false) => Err(ProviderError(format!("{what} disappeared"))),
                (Some(s), _) => Ok(Poll::Waiting(s.to_string())),
            }
        }
    };
    poll_until(WAIT, POLL, check, |last| format!("{what} did not settle within {WAIT:?} (still {last})")).await
}

// ---------------------------------------------------------------------------------------------
// Cluster

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterInputs<R = String, L = Vec<String>> {
    pub name: String,
    /// Kubernetes version, pinned (`1.33`).
    pub version: String,
    pub role_arn: R,
    pub subnet_ids: L,
    /// Extra security groups of the control plane.
    pub security_group_ids: L,
    pub endpoint_public: bool,
    pub endpoint_private: bool,
    /// Who may reach the public endpoint.
    pub public_access_cidrs: Vec<String>,
    /// Control-plane log types sent to CloudWatch (`api`, `audit`, `authenticator`, …).
    pub logging: Vec<String>,
    pub tags: Tags,
    /// The KMS key that envelope-encrypts Kubernetes Secrets (`None`: EKS's default encryption
    /// only). Added to a cluster in place; never changed or removed (EKS cannot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_key_arn: Option<R>,
}

/// The encryption configuration of Secrets with `key_arn`. (`resources` is deprecated in the SDK's
/// model — EKS now encrypts all API data at rest — but `secrets` is still what envelope encryption
/// with a customer key is asked for with.)
#[allow(deprecated)]
fn secrets_encryption(key_arn: &str) -> aws_sdk_eks::types::EncryptionConfig {
    aws_sdk_eks::types::EncryptionConfig::builder()
        .resources("secrets")
        .provider(aws_sdk_eks::types::Provider::builder().key_arn(key_arn).build())
        .build()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterOutputs {
    pub name: String,
    pub arn: String,
    pub endpoint: String,
    pub ca_data: String,
    pub oidc_issuer: String,
    /// The group EKS puts on the control plane and on managed nodes.
    pub node_security_group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_gap: Option<String>,
}

pub struct ClusterProvider;

fn vpc_config(i: &ClusterInputs) -> VpcConfigRequest {
    VpcConfigRequest::builder()
        .set_subnet_ids(Some(i.subnet_ids.clone()))
        .set_security_group_ids(Some(i.security_group_ids.clone()))
        .endpoint_public_access(i.endpoint_public)
        .endpoint_private_access(i.endpoint_private)
        .set_public_access_cidrs(i.endpoint_public.then(|| i.public_access_cidrs.clone()))
        .build()
}

fn logging(types: &[String]) -> Logging {
    let all = ["api", "audit", "authenticator", "controllerManager", "scheduler"];
    let on: Vec<LogType> = types.iter().map(|t| LogType::from(t.as_str())).collect();
    let off: Vec<LogType> = all.iter().filter(|t| !types.iter().any(|x| x == *t)).map(|t| LogType::from(*t)).collect();
    let mut setups = vec![LogSetup::builder().set_types(Some(on)).enabled(true).build()];
    if !off.is_empty() {
        setups.push(LogSetup::builder().set_types(Some(off)).enabled(false).build());
    }
    Logging::builder().set_cluster_logging(Some(setups)).build()
}

impl ClusterProvider {
    async fn describe(&self, ctx: &Ctx, name: &str) -> ProviderResult<Option<aws_sdk_eks::types::Cluster>> {
        match ctx.aws()?.eks.describe_cluster().name(name).send().await {
            Ok(o) => Ok(o.cluster),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(call_failed("DescribeCluster", e)),
        }
    }

    /// Waits until the cluster is ACTIVE (or gone, with `gone`).
    async fn wait(&self, ctx: &Ctx, name: &str, gone: bool) -> ProviderResult<Option<aws_sdk_eks::types::Cluster>> {
        wait_active(
            &format!("EKS cluster {name}"),
            gone,
            CLUSTER_ACCEPTORS,
            || self.describe(ctx, name),
            |c: &aws_sdk_eks::types::Cluster| c.status().map(|s| s.as_str().to_string()),
            |_| String::new(),
        )
        .await
    }

    fn outputs(&self, ctx: &Ctx, c: &aws_sdk_eks::types::Cluster, i_sgs: &[String]) -> ClusterOutputs {
        let cluster_sg = c.resources_vpc_config().and_then(|v| v.cluster_security_group_id()).unwrap_or_default();
        let emulated = ctx.aws().is_ok_and(|a| a.emulator) && cluster_sg.is_empty();
        ClusterOutputs {
            name: c.name().unwrap_or_default().to_string(),
            arn: c.arn().unwrap_or_default().to_string(),
            endpoint: c.endpoint().unwrap_or_default().to_string(),
            ca_data: c.certificate_authority().and_then(|a| a.data()).unwrap_or_default().to_string(),
            oidc_issuer: c.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()).unwrap_or_default().to_string(),
            node_security_group_id: if emulated {
                i_sgs.first().cloned().unwrap_or_default()
            } else {
                cluster_sg.to_string()
            },
            emulator_gap: emulated.then(|| {
                "the emulator creates no cluster security group: NodePort rules went to the control-plane group instead"
                    .to_string()
            }),
        }
    }
}

#[async_trait]
impl TypedProvider for ClusterProvider {
    type Inputs = ClusterInputs;
    type Outputs = ClusterOutputs;
    const TYPE: &'static str = CLUSTER;
    const REPLACE_ON: &'static [&'static str] = &["name", "role_arn"];
    /// The cluster's name is what everything on it refers to (node groups, add-ons, kubeconfig,
    /// subnet tags): a replacement deletes the old cluster first — which EKS refuses while node
    /// groups remain, so nothing is lost by surprise.
    const DELETE_BEFORE_REPLACE: bool = true;

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &ClusterInputs) -> ProviderResult<ClusterOutputs> {
        let eks = &ctx.aws()?.eks;
        let sent = eks
            .create_cluster()
            .name(&i.name)
            .version(&i.version)
            .role_arn(&i.role_arn)
            .resources_vpc_config(vpc_config(i))
            .logging(logging(&i.logging))
            .set_encryption_config(i.secrets_key_arn.as_deref().map(|arn| vec![secrets_encryption(arn)]))
            .access_config(
                CreateAccessConfigRequest::builder()
                    .authentication_mode(AuthenticationMode::Api)
                    .bootstrap_cluster_creator_admin_permissions(true)
                    .build(),
            )
            .set_tags(Some(eks_tags(ctx, urn, &i.tags)))
            .client_request_token(token(urn, i))
            .send()
            .await;
        match sent {
            Ok(_) => {}
            // Ours from an earlier attempt whose answer was lost: adopt it (checked by tag).
            Err(e) if error_code(&e) == Some("ResourceInUseException") => {
                let theirs = self.find(ctx, urn, i).await?;
                if theirs.is_none() {
                    let tags = self.describe(ctx, &i.name).await?.and_then(|c| c.tags).unwrap_or_default();
                    return Err(super::not_ours(ctx, urn, &format!("EKS cluster {}", i.name), &tags));
                }
            }
            Err(e) => return Err(call_failed("CreateCluster", e)),
        }
        let c = self.wait(ctx, &i.name, false).await?.expect("active");
        Ok(self.outputs(ctx, &c, &i.security_group_ids))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _urn: &Urn,
        old: &ClusterInputs,
        out: &ClusterOutputs,
        new: &ClusterInputs,
    ) -> ProviderResult<ClusterOutputs> {
        let eks = &ctx.aws()?.eks;
        if old.version != new.version {
            eks.update_cluster_version()
                .name(&new.name)
                .version(&new.version)
                .send()
                .await
                .map_err(|e| call_failed("UpdateClusterVersion", e))?;
            self.wait(ctx, &new.name, false).await?;
        }
        let network_changed = (old.subnet_ids.clone(), old.security_group_ids.clone(), old.endpoint_public)
            != (new.subnet_ids.clone(), new.security_group_ids.clone(), new.endpoint_public)
            || old.endpoint_private != new.endpoint_private
            || old.public_access_cidrs != new.public_access_cidrs;
        if network_changed {
            eks.update_cluster_config()
                .name(&new.name)
                .resources_vpc_config(vpc_config(new))
                .send()
                .await
                .map_err(|e| call_failed("UpdateClusterConfig", e))?;
            self.wait(ctx, &new.name, false).await?;
        }
        if old.logging != new.logging {
            eks.update_cluster_config()
                .name(&new.name)
                .logging(logging(&new.logging))
                .send()
                .await
                .map_err(|e| call_failed("UpdateClusterConfig", e))?;
            self.wait(ctx, &new.name, false).await?;
        }
        if old.secrets_key_arn != new.secrets_key_arn {
            match (&old.secrets_key_arn, &new.secrets_key_arn) {
                (None, Some(arn)) => {
                    eks.associate_encryption_config()
                        .cluster_name(&new.name)
                        .encryption_config(secrets_encryption(arn))
                        .send()
                        .await
                        .map_err(|e| call_failed("AssociateEncryptionConfig", e))?;
                    self.wait(ctx, &new.name, false).await?;
                }
                (was, now) => {
                    return Err(ProviderError(format!(
                        "EKS cluster {}: Secrets are encrypted with KMS key {}, and EKS cannot change or remove that key (asked: {}); nothing was changed\n    fix: keep the key (`secrets_encryption(true)`), or move to a new cluster (a new name) with the new setting",
                        new.name,
                        was.as_deref().unwrap_or("none"),
                        now.as_deref().unwrap_or("no key")
                    )));
                }
            }
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        let c = self.wait(ctx, &new.name, false).await?.expect("active");
        Ok(self.outputs(ctx, &c, &new.security_group_ids))
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &ClusterInputs, out: &ClusterOutputs) -> ProviderResult<()> {
        match ctx.aws()?.eks.delete_cluster().name(&out.name).send().await {
            Ok(_) => {}
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(call_failed("DeleteCluster", e)),
        }
        self.wait(ctx, &out.name, true).await.map(|_| ())
    }

    async fn read_many(
        &self,
        ctx: &Ctx,
        items: &[(Urn, ClusterOutputs)],
    ) -> ProviderResult<Vec<Option<(ClusterInputs, ClusterOutputs)>>> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            let Some(c) = self.describe(ctx, &o.name).await? else {
                out.push(None);
                continue;
            };
            let vpc = c.resources_vpc_config();
            let mut logging: Vec<String> = c
                .logging()
                .map(|l| l.cluster_logging())
                .unwrap_or_default()
                .iter()
                .filter(|s| s.enabled() == Some(true))
                .flat_map(|s| s.types().iter().map(|t| t.as_str().to_string()))
                .collect();
            logging.sort();
            let mut sgs: Vec<String> = vpc.map(|v| v.security_group_ids().to_vec()).unwrap_or_default();
            sgs.sort();
            let mut subnets: Vec<String> = vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
            subnets.sort();
            let tags = super::user_tags_of(c.tags().cloned().unwrap_or_default());
            let inputs = ClusterInputs {
                name: c.name().unwrap_or_default().to_string(),
                version: c.version().unwrap_or_default().to_string(),
                role_arn: c.role_arn().unwrap_or_default().to_string(),
                subnet_ids: subnets,
                security_group_ids: sgs.clone(),
                endpoint_public: vpc.map(|v| v.endpoint_public_access()).unwrap_or_default(),
                endpoint_private: vpc.map(|v| v.endpoint_private_access()).unwrap_or_default(),
                public_access_cidrs: vpc.map(|v| v.public_access_cidrs().to_vec()).unwrap_or_default(),
                logging,
                tags,
                secrets_key_arn: c
                    .encryption_config()
                    .first()
                    .and_then(|e| e.provider())
                    .and_then(|p| p.key_arn())
                    .map(String::from),
            };
            let outputs = self.outputs(ctx, &c, &sgs);
            out.push(Some((inputs, outputs)));
        }
        Ok(out)
    }

    const IMPORTABLE: bool = true;

    /// By cluster name.
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> ProviderResult<Option<(ClusterInputs, ClusterOutputs)>> {
        let probe = ClusterOutputs {
            name: id.to_string(),
            arn: String::new(),
            endpoint: String::new(),
            ca_data: String::new(),
            oidc_issuer: String::new(),
            node_security_group_id: String::new(),
            emulator_gap: None,
        };
        self.read_one(ctx, urn, probe).await
    }

    /// The cluster of the program's name, if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &ClusterInputs) -> ProviderResult<Vec<String>> {
        Ok(self.describe(ctx, &i.name).await?.and_then(|c| c.name().map(String::from)).into_iter().collect())
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &ClusterInputs) -> ProviderResult<Option<ClusterOutputs>> {
        match self.describe(ctx, &i.name).await? {
            Some(c) if c.tags().and_then(|t| t.get(TAG_URN)).map(String::as_str) == Some(urn.as_str()) => {
                Ok(Some(self.outputs(ctx, &c, &i.security_group_ids)))
            }
            _ => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node group

/// A taint nodes of a pool carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct NodeTaint {
    pub key: String,
    pub value: String,
    /// `NO_SCHEDULE`, `NO_EXECUTE` or `PREFER_NO_SCHEDULE`.
    pub effect: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeGroupInputs<R = String, L = Vec<String>> {
    pub cluster_name: R,
    pub name: String,
    pub node_role_arn: R,
    pub subnet_ids: L,
    pub instance_types: Vec<String>,
    /// `ON_DEMAND` or `SPOT`.
    pub capacity_type: String,
    /// `AL2023_x86_64_STANDARD`, `AL2023_x86_64_NVIDIA`, `AL2023_ARM_64_STANDARD`, …
    pub ami_type: String,
    pub disk_size_gib: i32,
    pub min_size: i32,
    pub desired_size: i32,
    pub max_size: i32,
    pub labels: std::collections::BTreeMap<String, String>,
    pub taints: Vec<NodeTaint>,
    pub tags: Tags,
    /// How the nodes boot (IMDSv2, hop limit, root volume): with one, `disk_size_gib` is 0 and
    /// the size is the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<NodeLaunchTemplate<R>>,
}

/// The launch template a node group's nodes boot from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeLaunchTemplate<R = String> {
    pub id: R,
    pub version: R,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeGroupOutputs {
    pub cluster_name: String,
    pub name: String,
    pub arn: String,
    /// The autoscaling group behind the pool (load balancer target groups attach to it).
    pub autoscaling_group: String,
}

pub struct NodeGroupProvider;

impl NodeGroupProvider {
    async fn describe(
        &self,
        ctx: &Ctx,
        cluster: &str,
        name: &str,
    ) -> ProviderResult<Option<aws_sdk_eks::types::Nodegroup>> {
        match ctx.aws()?.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await {
            Ok(o) => Ok(o.nodegroup),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(call_failed("DescribeNodegroup", e)),
        }
    }

    async fn wait(
        &self,
        ctx: &Ctx,
        cluster: &str,
        name: &str,
        gone: bool,
    ) -> ProviderResult<Option<aws_sdk_eks::types::Nodegroup>> {
        wait_active(
            &format!("EKS node group {name}"),
            gone,
            NODE_GROUP_ACCEPTORS,
            || self.describe(ctx, cluster, name),
            |g: &aws_sdk_eks::types::Nodegroup| g.status().map(|s| s.as_str().to_string()),
            |g| {
                let issues: Vec<&str> =
                    g.health().map(|h| h.issues().iter().filter_map(|i| i.message()).collect()).unwrap_or_default();
                format!(": {}", issues.join("; "))
            },
        )
        .await
    }

    fn outputs(g: &aws_sdk_eks::types::Nodegroup) -> NodeGroupOutputs {
        NodeGroupOutputs {
            cluster_name: g.cluster_name().unwrap_or_default().to_string(),
            name: g.nodegroup_name().unwrap_or_default().to_string(),
            arn: g.nodegroup_arn().unwrap_or_default().to_string(),
            autoscaling_group: g
                .resources()
                .and_then(|r| r.auto_scaling_groups().first())
                .and_then(|a| a.name())
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// What a node group's cloud name is derived from: every field that forces its replacement (so a
/// replacement is a new node group, created before the old one is drained and deleted).
fn node_group_forcing(i: &NodeGroupInputs) -> Vec<String> {
    let mut subnets = i.subnet_ids.clone();
    subnets.sort();
    vec![
        i.node_role_arn.clone(),
        subnets.join(","),
        i.instance_types.join(","),
        i.capacity_type.clone(),
        i.ami_type.clone(),
        i.disk_size_gib.to_string(),
        i.launch_template.as_ref().map(|t| format!("{}@{}", t.id, t.version)).unwrap_or_default(),
    ]
}

/// The node group's name in EKS: `<pool>-<hash of the replace-forcing fields>`.
pub fn node_group_name(i: &NodeGroupInputs) -> String {
    let forcing = node_group_forcing(i);
    super::physical_name(&i.name, 63, &forcing.iter().map(String::as_str).collect::<Vec<_>>())
}

fn taint(t: &NodeTaint) -> Taint {
    Taint::builder().key(&t.key).value(&t.value).effect(TaintEffect::from(t.effect.as_str())).build()
}

#[async_trait]
impl TypedProvider for NodeGroupProvider {
    type Inputs = NodeGroupInputs;
    type Outputs = NodeGroupOutputs;
    const TYPE: &'static str = NODE_GROUP;
    const REPLACE_ON: &'static [&'static str] = &[
        "cluster_name",
        "name",
        "node_role_arn",
        "subnet_ids",
        "instance_types",
        "capacity_type",
        "ami_type",
        "disk_size_gib",
        "launch_template",
    ];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &NodeGroupInputs) -> ProviderResult<NodeGroupOutputs> {
        let name = node_group_name(i);
        let sent = ctx
            .aws()?
            .eks
            .create_nodegroup()
            .cluster_name(&i.cluster_name)
            .nodegroup_name(&name)
            .node_role(&i.node_role_arn)
            .set_subnets(Some(i.subnet_ids.clone()))
            .set_instance_types(Some(i.instance_types.clone()))
            .capacity_type(aws_sdk_eks::types::CapacityTypes::from(i.capacity_type.as_str()))
            .ami_type(aws_sdk_eks::types::AmiTypes::from(i.ami_type.as_str()))
            // With a launch template, the root volume is the template's (EKS refuses both).
            .set_disk_size(i.launch_template.is_none().then_some(i.disk_size_gib))
            .set_launch_template(i.launch_template.as_ref().map(|t| {
                aws_sdk_eks::types::LaunchTemplateSpecification::builder().id(&t.id).version(&t.version).build()
            }))
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(i.min_size)
                    .desired_size(i.desired_size)
                    .max_size(i.max_size)
                    .build(),
            )
            // Nodes are replaced one at a time: pods move under their disruption budgets.
            .update_config(NodegroupUpdateConfig::builder().max_unavailable(1).build())
            .set_labels((!i.labels.is_empty()).then(|| i.labels.clone().into_iter().collect()))
            .set_taints((!i.taints.is_empty()).then(|| i.taints.iter().map(taint).collect()))
            .set_tags(Some(eks_tags(ctx, urn, &i.tags)))
            .client_request_token(token(urn, i))
            .send()
            .await;
        match sent {
            Ok(_) => {}
            // Ours only if tagged for this resource (an earlier attempt whose answer was lost).
            Err(e) if error_code(&e) == Some("ResourceInUseException") => {
                if self.find(ctx, urn, i).await?.is_none() {
                    let tags =
                        self.describe(ctx, &i.cluster_name, &name).await?.and_then(|g| g.tags).unwrap_or_default();
                    return Err(super::not_ours(
                        ctx,
                        urn,
                        &format!("EKS node group {name} of cluster {}", i.cluster_name),
                        &tags,
                    ));
                }
            }
            Err(e) => return Err(call_failed("CreateNodegroup", e)),
        }
        let g = self.wait(ctx, &i.cluster_name, &name, false).await?.expect("active");
        Ok(Self::outputs(&g))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _: &Urn,
        old: &NodeGroupInputs,
        out: &NodeGroupOutputs,
        new: &NodeGroupInputs,
    ) -> ProviderResult<NodeGroupOutputs> {
        let eks = &ctx.aws()?.eks;
        let scaling_changed =
            (old.min_size, old.desired_size, old.max_size) != (new.min_size, new.desired_size, new.max_size);
        let labels_changed = old.labels != new.labels;
        let taints_changed = old.taints != new.taints;
        if scaling_changed || labels_changed || taints_changed {
            let mut req = eks.update_nodegroup_config().cluster_name(&out.cluster_name).nodegroup_name(&out.name);
            if scaling_changed {
                // The autoscaler owns the desired size; keep it, within the new bounds.
                let current = self
                    .describe(ctx, &out.cluster_name, &out.name)
                    .await?
                    .and_then(|g| g.scaling_config().and_then(|s| s.desired_size()))
                    .unwrap_or(new.desired_size);
                let desired = if old.desired_size != new.desired_size { new.desired_size } else { current }
                    .clamp(new.min_size, new.max_size);
                req = req.scaling_config(
                    NodegroupScalingConfig::builder()
                        .min_size(new.min_size)
                        .desired_size(desired)
                        .max_size(new.max_size)
                        .build(),
                );
            }
            if labels_changed {
                let removed: Vec<String> =
                    old.labels.keys().filter(|k| !new.labels.contains_key(*k)).cloned().collect();
                req = req.labels(
                    UpdateLabelsPayload::builder()
                        .set_add_or_update_labels(Some(new.labels.clone().into_iter().collect()))
                        .set_remove_labels((!removed.is_empty()).then_some(removed))
                        .build(),
                );
            }
            if taints_changed {
                let removed: Vec<Taint> = old.taints.iter().filter(|t| !new.taints.contains(t)).map(taint).collect();
                let added: Vec<Taint> = new.taints.iter().filter(|t| !old.taints.contains(t)).map(taint).collect();
                req = req.taints(
                    UpdateTaintsPayload::builder()
                        .set_add_or_update_taints((!added.is_empty()).then_some(added))
                        .set_remove_taints((!removed.is_empty()).then_some(removed))
                        .build(),
                );
            }
            req.send().await.map_err(|e| call_failed("UpdateNodegroupConfig", e))?;
            self.wait(ctx, &out.cluster_name, &out.name, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &NodeGroupInputs, out: &NodeGroupOutputs) -> ProviderResult<()> {
        match ctx.aws()?.eks.delete_nodegroup().cluster_name(&out.cluster_name).nodegroup_name(&out.name).send().await {
            Ok(_) => {}
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(call_failed("DeleteNodegroup", e)),
        }
        self.wait(ctx, &out.cluster_name, &out.name, true).await.map(|_| ())
    }

    async fn read_many(
        &self,
        ctx: &Ctx,
        items: &[(Urn, NodeGroupOutputs)],
    ) -> ProviderResult<Vec<Option<(NodeGroupInputs, NodeGroupOutputs)>>> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            let Some(g) = self.describe(ctx, &o.cluster_name, &o.name).await? else {
                out.push(None);
                continue;
            };
            let scaling = g.scaling_config();
            let mut subnets = g.subnets().to_vec();
            subnets.sort();
            let mut taints: Vec<NodeTaint> = g
                .taints()
                .iter()
                .map(|t| NodeTaint {
                    key: t.key().unwrap_or_default().to_string(),
                    value: t.value().unwrap_or_default().to_string(),
                    effect: t.effect().map(|e| e.as_str().to_string()).unwrap_or_default(),
                })
                .collect();
            taints.sort();
            let mut inputs = NodeGroupInputs {
                cluster_name: o.cluster_name.clone(),
                name: o.name.clone(),
                node_role_arn: g.node_role().unwrap_or_default().to_string(),
                subnet_ids: subnets,
                instance_types: g.instance_types().to_vec(),
                capacity_type: g.capacity_type().map(|c| c.as_str().to_string()).unwrap_or_default(),
                ami_type: g.ami_type().map(|a| a.as_str().to_string()).unwrap_or_default(),
                disk_size_gib: if g.launch_template().is_some() { 0 } else { g.disk_size().unwrap_or_default() },
                min_size: scaling.and_then(|s| s.min_size()).unwrap_or_default(),
                desired_size: scaling.and_then(|s| s.desired_size()).unwrap_or_default(),
                max_size: scaling.and_then(|s| s.max_size()).unwrap_or_default(),
                labels: g.labels().cloned().unwrap_or_default().into_iter().collect(),
                taints,
                tags: super::user_tags_of(g.tags().cloned().unwrap_or_default()),
                launch_template: g.launch_template().map(|t| NodeLaunchTemplate {
                    id: t.id().unwrap_or_default().to_string(),
                    version: t.version().unwrap_or_default().to_string(),
                }),
            };
            // The pool's name, without the suffix its settings give the node group's name.
            let forcing = node_group_forcing(&inputs);
            inputs.name =
                super::base_name(&o.name, &forcing.iter().map(String::as_str).collect::<Vec<_>>()).to_string();
            out.push(Some((inputs, Self::outputs(&g))));
        }
        Ok(out)
    }

    const IMPORTABLE: bool = true;

    /// By `<cluster>/<node group>`.
    async fn import(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        id: &str,
    ) -> ProviderResult<Option<(NodeGroupInputs, NodeGroupOutputs)>> {
        let Some((cluster, name)) = id.split_once('/') else {
            return Err(ProviderError(format!("`{id}` is not a node group id: write <cluster>/<node group>")));
        };
        let probe = NodeGroupOutputs {
            cluster_name: cluster.to_string(),
            name: name.to_string(),
            arn: String::new(),
            autoscaling_group: String::new(),
        };
        self.read_one(ctx, urn, probe).await
    }

    /// The node group of the program's name (its settings' suffix included), if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &NodeGroupInputs) -> ProviderResult<Vec<String>> {
        let name = node_group_name(i);
        Ok(self
            .describe(ctx, &i.cluster_name, &name)
            .await?
            .map(|_| format!("{}/{name}", i.cluster_name))
            .into_iter()
            .collect())
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &NodeGroupInputs) -> ProviderResult<Option<NodeGroupOutputs>> {
        match self.describe(ctx, &i.cluster_name, &node_group_name(i)).await? {
            Some(g) if g.tags().and_then(|t| t.get(TAG_URN)).map(String::as_str) == Some(urn.as_str()) => {
                Ok(Some(Self::outputs(&g)))
            }
            _ => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Add-on

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddonInputs<R = String> {
    pub cluster_name: R,
    /// `vpc-cni`, `coredns`, `kube-proxy`, `aws-ebs-csi-driver`, `metrics-server`, …
    pub name: String,
    /// Pinned version (`None`: the default for the cluster's Kubernetes version).
    pub version: Option<String>,
    /// The add-on's service account takes this role through EKS Pod Identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AddonIdentity<R>>,
    pub tags: Tags,
    /// The add-on's configuration values, as JSON (`vpc-cni`: `{"enableNetworkPolicy":"true"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
}

/// A service account of an add-on and the IAM role it takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddonIdentity<R = String> {
    pub service_account: String,
    pub role_arn: R,
}

fn addon_identities(i: &AddonInputs) -> Option<Vec<aws_sdk_eks::types::AddonPodIdentityAssociations>> {
    let id = i.pod_identity.as_ref()?;
    aws_sdk_eks::types::AddonPodIdentityAssociations::builder()
        .service_account(&id.service_account)
        .role_arn(&id.role_arn)
        .build()
        .ok()
        .map(|a| vec![a])
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddonOutputs {
    pub cluster_name: String,
    pub name: String,
    pub arn: String,
    /// Set when the local emulator could not create it: why, and what was asked (so plans stay
    /// `same`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_gap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<AddonInputs>,
}

pub struct AddonProvider;

impl AddonProvider {
    async fn describe(
        &self,
        ctx: &Ctx,
        cluster: &str,
        name: &str,
    ) -> ProviderResult<Option<aws_sdk_eks::types::Addon>> {
        match ctx.aws()?.eks.describe_addon().cluster_name(cluster).addon_name(name).send().await {
            Ok(o) => Ok(o.addon),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(call_failed("DescribeAddon", e)),
        }
    }

    async fn wait(
        &self,
        ctx: &Ctx,
        cluster: &str,
        name: &str,
        gone: bool,
    ) -> ProviderResult<Option<aws_sdk_eks::types::Addon>> {
        wait_active(
            &format!("EKS add-on {name}"),
            gone,
            ADDON_ACCEPTORS,
            || self.describe(ctx, cluster, name),
            |a: &aws_sdk_eks::types::Addon| a.status().map(|s| s.as_str().to_string()),
            |_| String::new(),
        )
        .await
    }
}

#[async_trait]
impl TypedProvider for AddonProvider {
    type Inputs = AddonInputs;
    type Outputs = AddonOutputs;
    const TYPE: &'static str = ADDON;
    const REPLACE_ON: &'static [&'static str] = &["cluster_name", "name"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &AddonInputs) -> ProviderResult<AddonOutputs> {
        let sent = ctx
            .aws()?
            .eks
            .create_addon()
            .cluster_name(&i.cluster_name)
            .addon_name(&i.name)
            .set_addon_version(i.version.clone())
            .set_configuration_values(i.configuration.clone())
            .resolve_conflicts(ResolveConflicts::Overwrite)
            .set_pod_identity_associations(addon_identities(i))
            .set_tags(Some(eks_tags(ctx, urn, &i.tags)))
            .client_request_token(token(urn, i))
            .send()
            .await;
        match sent {
            Ok(_) => {}
            // Already there: ours only if tagged for this resource (an earlier attempt).
            Err(e) if error_code(&e) == Some("ResourceInUseException") => {
                let tags = self.describe(ctx, &i.cluster_name, &i.name).await?.and_then(|a| a.tags).unwrap_or_default();
                super::require_ours(ctx, urn, &format!("EKS add-on {} of cluster {}", i.name, i.cluster_name), &tags)?;
            }
            Err(e) if emulator_lacks(ctx, &e) => {
                return Ok(AddonOutputs {
                    cluster_name: i.cluster_name.clone(),
                    name: i.name.clone(),
                    arn: String::new(),
                    emulator_gap: Some("the emulator does not implement EKS add-ons (CreateAddon)".into()),
                    requested: Some(i.clone()),
                });
            }
            Err(e) => return Err(call_failed("CreateAddon", e)),
        }
        let a = self.wait(ctx, &i.cluster_name, &i.name, false).await?.expect("active");
        Ok(AddonOutputs {
            cluster_name: i.cluster_name.clone(),
            name: i.name.clone(),
            arn: a.addon_arn().unwrap_or_default().to_string(),
            emulator_gap: None,
            requested: None,
        })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _: &Urn,
        old: &AddonInputs,
        out: &AddonOutputs,
        new: &AddonInputs,
    ) -> ProviderResult<AddonOutputs> {
        if out.emulator_gap.is_some() {
            return Ok(out.clone());
        }
        if old.version != new.version || old.pod_identity != new.pod_identity || old.configuration != new.configuration
        {
            ctx.aws()?
                .eks
                .update_addon()
                .cluster_name(&new.cluster_name)
                .addon_name(&new.name)
                .set_addon_version(new.version.clone())
                // No configuration: back to the add-on's defaults.
                .configuration_values(new.configuration.clone().unwrap_or_else(|| "{}".into()))
                .set_pod_identity_associations(Some(addon_identities(new).unwrap_or_default()))
                .resolve_conflicts(ResolveConflicts::Overwrite)
                .send()
                .await
                .map_err(|e| call_failed("UpdateAddon", e))?;
            self.wait(ctx, &new.cluster_name, &new.name, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &AddonInputs, out: &AddonOutputs) -> ProviderResult<()> {
        if out.emulator_gap.is_some() {
            return Ok(());
        }
        match ctx.aws()?.eks.delete_addon().cluster_name(&out.cluster_name).addon_name(&out.name).send().await {
            Ok(_) => {}
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(call_failed("DeleteAddon", e)),
        }
        self.wait(ctx, &out.cluster_name, &out.name, true).await.map(|_| ())
    }

    async fn read_many(
        &self,
        ctx: &Ctx,
        items: &[(Urn, AddonOutputs)],
    ) -> ProviderResult<Vec<Option<(AddonInputs, AddonOutputs)>>> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            // What the emulator could not create cannot be read back: its record stands.
            if let Some(requested) = &o.requested {
                out.push(Some((requested.clone(), o.clone())));
                continue;
            }
            match self.describe(ctx, &o.cluster_name, &o.name).await? {
                None => out.push(None),
                Some(a) => out.push(Some((
                    AddonInputs {
                        cluster_name: o.cluster_name.clone(),
                        name: o.name.clone(),
                        version: a.addon_version().map(String::from),
                        // Associations are read as ARNs, not as what was asked: the recorded value stands.
                        pod_identity: None,
                        tags: super::user_tags_of(a.tags().cloned().unwrap_or_default()),
                        configuration: a
                            .configuration_values()
                            .filter(|c| !c.is_empty() && *c != "{}")
                            .map(String::from),
                    },
                    o.clone(),
                ))),
            }
        }
        Ok(out)
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &AddonInputs) -> ProviderResult<Option<AddonOutputs>> {
        match self.describe(ctx, &i.cluster_name, &i.name).await? {
            Some(a) if a.tags().and_then(|t| t.get(TAG_URN)).map(String::as_str) == Some(urn.as_str()) => {
                Ok(Some(AddonOutputs {
                    cluster_name: i.cluster_name.clone(),
                    name: i.name.clone(),
                    arn: a.addon_arn().unwrap_or_default().to_string(),
                    emulator_gap: None,
                    requested: None,
                }))
            }
            _ => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pod identity association

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodIdentityInputs<R = String> {
    pub cluster_name: R,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: R,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodIdentityOutputs {
    pub cluster_name: String,
    pub association_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_gap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<PodIdentityInputs>,
}

pub struct PodIdentityProvider;

impl PodIdentityProvider {
    /// The association of `namespace/service_account` in `cluster`, if any: its id and tags.
    async fn lookup(&self, ctx: &Ctx, i: &PodIdentityInputs) -> ProviderResult<Option<(String, Tags)>> {
        let eks = &ctx.aws()?.eks;
        let out = eks
            .list_pod_identity_associations()
            .cluster_name(&i.cluster_name)
            .namespace(&i.namespace)
            .service_account(&i.service_account)
            .send()
            .await
            .map_err(|e| call_failed("ListPodIdentityAssociations", e))?;
        let Some(id) = out.associations().first().and_then(|a| a.association_id()).map(String::from) else {
            return Ok(None);
        };
        let described = eks
            .describe_pod_identity_association()
            .cluster_name(&i.cluster_name)
            .association_id(&id)
            .send()
            .await
            .map_err(|e| call_failed("DescribePodIdentityAssociation", e))?;
        let tags = described.association().and_then(|a| a.tags().cloned()).unwrap_or_default();
        Ok(Some((id, tags.into_iter().collect())))
    }
}

#[async_trait]
impl TypedProvider for PodIdentityProvider {
    type Inputs = PodIdentityInputs;
    type Outputs = PodIdentityOutputs;
    const TYPE: &'static str = POD_IDENTITY;
    const REPLACE_ON: &'static [&'static str] = &["cluster_name", "namespace", "service_account"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &PodIdentityInputs) -> ProviderResult<PodIdentityOutputs> {
        let made = ctx
            .aws()?
            .eks
            .create_pod_identity_association()
            .cluster_name(&i.cluster_name)
            .namespace(&i.namespace)
            .service_account(&i.service_account)
            .role_arn(&i.role_arn)
            .set_tags(Some(eks_tags(ctx, urn, &i.tags)))
            .client_request_token(token(urn, i))
            .send()
            .await;
        let id = match made {
            Ok(o) => o.association().and_then(|a| a.association_id()).unwrap_or_default().to_string(),
            // Already there: ours only if tagged for this resource (an earlier attempt).
            Err(e) if error_code(&e) == Some("ResourceInUseException") => match self.lookup(ctx, i).await? {
                Some((id, tags)) if super::tagged_for(&tags, urn) => id,
                found => {
                    return Err(super::not_ours(
                        ctx,
                        urn,
                        &format!(
                            "the EKS pod identity association of {}/{} in cluster {}",
                            i.namespace, i.service_account, i.cluster_name
                        ),
                        &found.map(|(_, t)| t).unwrap_or_default(),
                    ));
                }
            },
            Err(e) if emulator_lacks(ctx, &e) => {
                return Ok(PodIdentityOutputs {
                    cluster_name: i.cluster_name.clone(),
                    association_id: String::new(),
                    emulator_gap: Some(
                        "the emulator does not implement EKS Pod Identity (CreatePodIdentityAssociation)".into(),
                    ),
                    requested: Some(i.clone()),
                });
            }
            Err(e) => return Err(call_failed("CreatePodIdentityAssociation", e)),
        };
        Ok(PodIdentityOutputs {
            cluster_name: i.cluster_name.clone(),
            association_id: id,
            emulator_gap: None,
            requested: None,
        })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _: &Urn,
        old: &PodIdentityInputs,
        out: &PodIdentityOutputs,
        new: &PodIdentityInputs,
    ) -> ProviderResult<PodIdentityOutputs> {
        if out.emulator_gap.is_some() {
            return Ok(PodIdentityOutputs { requested: Some(new.clone()), ..out.clone() });
        }
        if old.role_arn != new.role_arn {
            ctx.aws()?
                .eks
                .update_pod_identity_association()
                .cluster_name(&out.cluster_name)
                .association_id(&out.association_id)
                .role_arn(&new.role_arn)
                .send()
                .await
                .map_err(|e| call_failed("UpdatePodIdentityAssociation", e))?;
        }
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &PodIdentityInputs, out: &PodIdentityOutputs) -> ProviderResult<()> {
        if out.emulator_gap.is_some() {
            return Ok(());
        }
        match ctx
            .aws()?
            .eks
            .delete_pod_identity_association()
            .cluster_name(&out.cluster_name)
            .association_id(&out.association_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(call_failed("DeletePodIdentityAssociation", e)),
        }
    }

    async fn read_many(
        &self,
        ctx: &Ctx,
        items: &[(Urn, PodIdentityOutputs)],
    ) -> ProviderResult<Vec<Option<(PodIdentityInputs, PodIdentityOutputs)>>> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            if let Some(requested) = &o.requested {
                out.push(Some((requested.clone(), o.clone())));
                continue;
            }
            let found = ctx
                .aws()?
                .eks
                .describe_pod_identity_association()
                .cluster_name(&o.cluster_name)
                .association_id(&o.association_id)
                .send()
                .await;
            match found {
                Ok(d) => out.push(d.association().map(|a| {
                    (
                        PodIdentityInputs {
                            cluster_name: o.cluster_name.clone(),
                            namespace: a.namespace().unwrap_or_default().to_string(),
                            service_account: a.service_account().unwrap_or_default().to_string(),
                            role_arn: a.role_arn().unwrap_or_default().to_string(),
                            tags: super::user_tags_of(a.tags().cloned().unwrap_or_default()),
                        },
                        o.clone(),
                    )
                })),
                Err(e) if not_found(&e) => out.push(None),
                Err(e) => return Err(call_failed("DescribePodIdentityAssociation", e)),
            }
        }
        Ok(out)
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &PodIdentityInputs) -> ProviderResult<Option<PodIdentityOutputs>> {
        match self.lookup(ctx, i).await? {
            Some((id, tags)) if super::tagged_for(&tags, urn) => Ok(Some(PodIdentityOutputs {
                cluster_name: i.cluster_name.clone(),
                association_id: id,
                emulator_gap: None,
                requested: None,
            })),
            _ => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Access entry

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEntryInputs<R = String> {
    pub cluster_name: R,
    /// The IAM user or role let in.
    pub principal_arn: String,
    /// The EKS access policy associated cluster-wide (`…:cluster-access-policy/AmazonEKSClusterAdminPolicy`).
    pub policy_arn: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEntryOutputs {
    pub cluster_name: String,
    pub principal_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_gap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<AccessEntryInputs>,
}

pub struct AccessEntryProvider;

#[async_trait]
impl TypedProvider for AccessEntryProvider {
    type Inputs = AccessEntryInputs;
    type Outputs = AccessEntryOutputs;
    const TYPE: &'static str = ACCESS_ENTRY;
    /// A policy change is an update: the new policy is associated, then the old one disassociated.
    const REPLACE_ON: &'static [&'static str] = &["cluster_name", "principal_arn"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &AccessEntryInputs) -> ProviderResult<AccessEntryOutputs> {
        let eks = &ctx.aws()?.eks;
        let made = eks
            .create_access_entry()
            .cluster_name(&i.cluster_name)
            .principal_arn(&i.principal_arn)
            .r#type("STANDARD")
            .set_tags(Some(eks_tags(ctx, urn, &Tags::new())))
            .client_request_token(token(urn, i))
            .send()
            .await;
        match made {
            Ok(_) => {}
            // Already there: ours only if tagged for this resource (an earlier attempt). EKS makes
            // entries of its own (the cluster creator, node roles): those are never taken over.
            Err(e) if error_code(&e) == Some("ResourceInUseException") => {
                let tags = self.entry_tags(ctx, &i.cluster_name, &i.principal_arn).await?.unwrap_or_default();
                super::require_ours(
                    ctx,
                    urn,
                    &format!("the EKS access entry of {} in cluster {}", i.principal_arn, i.cluster_name),
                    &tags,
                )?;
            }
            Err(e) if emulator_lacks(ctx, &e) => {
                return Ok(AccessEntryOutputs {
                    cluster_name: i.cluster_name.clone(),
                    principal_arn: i.principal_arn.clone(),
                    emulator_gap: Some("the emulator does not implement EKS access entries (CreateAccessEntry)".into()),
                    requested: Some(i.clone()),
                });
            }
            Err(e) => return Err(call_failed("CreateAccessEntry", e)),
        }
        eks.associate_access_policy()
            .cluster_name(&i.cluster_name)
            .principal_arn(&i.principal_arn)
            .policy_arn(&i.policy_arn)
            .access_scope(AccessScope::builder().r#type(AccessScopeType::Cluster).build())
            .send()
            .await
            .map_err(|e| call_failed("AssociateAccessPolicy", e))?;
        Ok(AccessEntryOutputs {
            cluster_name: i.cluster_name.clone(),
            principal_arn: i.principal_arn.clone(),
            emulator_gap: None,
            requested: None,
        })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _: &Urn,
        old: &AccessEntryInputs,
        out: &AccessEntryOutputs,
        new: &AccessEntryInputs,
    ) -> ProviderResult<AccessEntryOutputs> {
        if out.emulator_gap.is_some() {
            return Ok(AccessEntryOutputs { requested: Some(new.clone()), ..out.clone() });
        }
        if old.policy_arn != new.policy_arn {
            let eks = &ctx.aws()?.eks;
            // The new policy first: the principal never goes without access in between.
            eks.associate_access_policy()
                .cluster_name(&out.cluster_name)
                .principal_arn(&out.principal_arn)
                .policy_arn(&new.policy_arn)
                .access_scope(AccessScope::builder().r#type(AccessScopeType::Cluster).build())
                .send()
                .await
                .map_err(|e| call_failed("AssociateAccessPolicy", e))?;
            match eks
                .disassociate_access_policy()
                .cluster_name(&out.cluster_name)
                .principal_arn(&out.principal_arn)
                .policy_arn(&old.policy_arn)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(call_failed("DisassociateAccessPolicy", e)),
            }
        }
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &AccessEntryInputs, out: &AccessEntryOutputs) -> ProviderResult<()> {
        if out.emulator_gap.is_some() {
            return Ok(());
        }
        match ctx
            .aws()?
            .eks
            .delete_access_entry()
            .cluster_name(&out.cluster_name)
            .principal_arn(&out.principal_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(call_failed("DeleteAccessEntry", e)),
        }
    }

    async fn read_many(
        &self,
        ctx: &Ctx,
        items: &[(Urn, AccessEntryOutputs)],
    ) -> ProviderResult<Vec<Option<(AccessEntryInputs, AccessEntryOutputs)>>> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            if let Some(requested) = &o.requested {
                out.push(Some((requested.clone(), o.clone())));
                continue;
            }
            let eks = &ctx.aws()?.eks;
            match eks.describe_access_entry().cluster_name(&o.cluster_name).principal_arn(&o.principal_arn).send().await
            {
                Ok(_) => {}
                Err(e) if not_found(&e) => {
                    out.push(None);
                    continue;
                }
                Err(e) => return Err(call_failed("DescribeAccessEntry", e)),
            }
            let policies = eks
                .list_associated_access_policies()
                .cluster_name(&o.cluster_name)
                .principal_arn(&o.principal_arn)
                .send()
                .await
                .map_err(|e| call_failed("ListAssociatedAccessPolicies", e))?;
            let policy_arn = policies
                .associated_access_policies()
                .first()
                .and_then(|p| p.policy_arn())
                .unwrap_or_default()
                .to_string();
            let inputs = AccessEntryInputs {
                cluster_name: o.cluster_name.clone(),
                principal_arn: o.principal_arn.clone(),
                policy_arn,
            };
            out.push(Some((inputs, o.clone())));
        }
        Ok(out)
    }

    /// The entry of that principal, if it is tagged for `urn`.
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &AccessEntryInputs) -> ProviderResult<Option<AccessEntryOutputs>> {
        let tags = self.entry_tags(ctx, &i.cluster_name, &i.principal_arn).await?;
        Ok(tags.filter(|t| super::tagged_for(t, urn)).map(|_| AccessEntryOutputs {
            cluster_name: i.cluster_name.clone(),
            principal_arn: i.principal_arn.clone(),
            emulator_gap: None,
            requested: None,
        }))
    }
}

impl AccessEntryProvider {
    /// The tags of the access entry of `principal` in `cluster`; `None` when there is none.
    async fn entry_tags(&self, ctx: &Ctx, cluster: &str, principal: &str) -> ProviderResult<Option<Tags>> {
        match ctx.aws()?.eks.describe_access_entry().cluster_name(cluster).principal_arn(principal).send().await {
            Ok(o) => {
                Ok(Some(o.access_entry().and_then(|e| e.tags().cloned()).unwrap_or_default().into_iter().collect()))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(call_failed("DescribeAccessEntry", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A thing whose status goes through `statuses`, one per describe.
    fn scripted(statuses: &[&'static str]) -> Mutex<Vec<Option<&'static str>>> {
        let mut v: Vec<Option<&'static str>> =
            statuses.iter().map(|s| if s.is_empty() { None } else { Some(*s) }).collect();
        v.reverse();
        Mutex::new(v)
    }

    async fn run(statuses: &[&'static str], gone: bool) -> (ProviderResult<Option<&'static str>>, usize) {
        let script = scripted(statuses);
        let calls = Mutex::new(0);
        let result = wait_active(
            "EKS thing t",
            gone,
            NODE_GROUP_ACCEPTORS,
            || {
                *calls.lock().unwrap() += 1;
                let next = script.lock().unwrap().pop().flatten();
                async move { Ok(next) }
            },
            |s: &&str| Some(s.to_string()),
            |s| format!(" ({s})"),
        )
        .await;
        let n = *calls.lock().unwrap();
        (result, n)
    }

    #[tokio::test(start_paused = true)]
    async fn waits_poll_until_active_gone_or_failed() {
        assert_eq!(run(&["CREATING", "CREATING", "ACTIVE"], false).await, (Ok(Some("ACTIVE")), 3));
        assert_eq!(run(&["DELETING", ""], true).await, (Ok(None), 2));
        let (failed, calls) = run(&["CREATING", "CREATE_FAILED"], false).await;
        assert_eq!(
            (failed.unwrap_err().0, calls),
            ("EKS thing t is CREATE_FAILED (CREATE_FAILED) (while waiting for it to be ACTIVE)".to_string(), 2)
        );
        // A delete that fails ends the wait at once too, naming the state.
        let (failed, calls) = run(&["DELETING", "DELETE_FAILED", "DELETING"], true).await;
        assert_eq!(calls, 2);
        assert!(failed.unwrap_err().0.contains("is DELETE_FAILED"));
        let (gone, _) = run(&["CREATING", ""], false).await;
        assert_eq!(gone.unwrap_err().0, "EKS thing t disappeared");
    }

    #[test]
    fn logging_turns_off_what_is_not_asked_for() {
        let l = logging(&["api".into(), "audit".into()]);
        let setups = l.cluster_logging();
        assert_eq!(setups[0].enabled(), Some(true));
        assert_eq!(setups[0].types().len(), 2);
        assert_eq!(setups[1].enabled(), Some(false));
        assert_eq!(setups[1].types().len(), 3);
    }
}
