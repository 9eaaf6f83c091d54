//! The EKS cluster: its control plane, endpoint access, logging and secrets encryption.

use super::*;
use crate::engine::provider::{Import, read_each};
use aws_sdk_eks::types::{
    AuthenticationMode, CreateAccessConfigRequest, KubernetesNetworkConfigRequest, LogSetup, LogType, Logging,
    VpcConfigRequest,
};

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
    /// The Kubernetes service range (`None`: EKS picks 10.100.0.0/16 or 172.20.0.0/16). Fixed at
    /// creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<String>,
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
    /// The service range, when the program chose it (a cluster whose range EKS picked reads back
    /// as not chosen, so it shows no drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<String>,
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

pub(super) fn logging(types: &[String]) -> Logging {
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
        Ok(found("DescribeCluster", ctx.aws()?.eks.describe_cluster().name(name).send().await)?.and_then(|o| o.cluster))
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

    /// The outputs of cluster `c`; `chosen`: whether the program chose its service range.
    fn outputs(&self, ctx: &Ctx, c: &aws_sdk_eks::types::Cluster, i_sgs: &[String], chosen: bool) -> ClusterOutputs {
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
            service_cidr: if chosen { service_cidr(c) } else { None },
        }
    }
}

fn service_cidr(c: &aws_sdk_eks::types::Cluster) -> Option<String> {
    c.kubernetes_network_config().and_then(|k| k.service_ipv4_cidr()).map(String::from)
}

/// The ranges EKS picks when a cluster is created without one.
const EKS_DEFAULT_SERVICE_RANGES: [&str; 2] = ["10.100.0.0/16", "172.20.0.0/16"];

/// The service range as the program would state it: what the cluster has when the program chose
/// it (`recorded` holds it); for a cluster being imported (`recorded` is empty), what it has
/// unless that is one of EKS's own picks, which reads as "not chosen".
pub(super) fn observed_service_cidr(recorded: Option<&String>, c: &aws_sdk_eks::types::Cluster) -> Option<String> {
    let actual = service_cidr(c)?;
    match recorded? {
        asked if asked.is_empty() && EKS_DEFAULT_SERVICE_RANGES.contains(&actual.as_str()) => None,
        _ => Some(actual),
    }
}

#[async_trait]
impl TypedProvider for ClusterProvider {
    resource_type!(CLUSTER, ClusterInputs => ClusterOutputs,
        replace_on &["name", "role_arn", "service_cidr"], import Import::ById);
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
            .set_kubernetes_network_config(
                i.service_cidr
                    .as_ref()
                    .map(|cidr| KubernetesNetworkConfigRequest::builder().service_ipv4_cidr(cidr).build()),
            )
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
        if let Err(e) = sent {
            let existing = || async { Ok(self.describe(ctx, &i.name).await?.and_then(|c| c.tags).unwrap_or_default()) };
            already_ours(ctx, urn, &format!("EKS cluster {}", i.name), "CreateCluster", e, existing).await?;
        }
        let c = self.wait(ctx, &i.name, false).await?.expect("active");
        Ok(self.outputs(ctx, &c, &i.security_group_ids, i.service_cidr.is_some()))
    }

    async fn update(&self, ctx: &Ctx, _urn: &Urn, change: Update<'_, Self>) -> ProviderResult<ClusterOutputs> {
        let Update { old, outputs: out, new } = change;
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
        Ok(self.outputs(ctx, &c, &new.security_group_ids, new.service_cidr.is_some()))
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &ClusterInputs, out: &ClusterOutputs) -> ProviderResult<()> {
        if found("DeleteCluster", ctx.aws()?.eks.delete_cluster().name(&out.name).send().await)?.is_none() {
            return Ok(());
        }
        self.wait(ctx, &out.name, true).await.map(|_| ())
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ClusterOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let Some(c) = self.describe(ctx, &o.name).await? else { return Ok(None) };
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
            let tags = crate::aws::user_tags_of(c.tags().cloned().unwrap_or_default());
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
                service_cidr: observed_service_cidr(o.service_cidr.as_ref(), &c),
            };
            let outputs =
                ClusterOutputs { service_cidr: inputs.service_cidr.clone(), ..self.outputs(ctx, &c, &sgs, false) };
            Ok(Some((inputs, outputs)))
        })
        .await
    }

    /// By cluster name.
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        let probe = ClusterOutputs {
            name: id.to_string(),
            arn: String::new(),
            endpoint: String::new(),
            ca_data: String::new(),
            oidc_issuer: String::new(),
            node_security_group_id: String::new(),
            emulator_gap: None,
            // An imported cluster shows its range as it is, unless EKS picked it.
            service_cidr: Some(String::new()),
        };
        self.read_one(ctx, urn, probe).await
    }

    /// The cluster of the program's name, if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &ClusterInputs) -> ProviderResult<Vec<String>> {
        Ok(self.describe(ctx, &i.name).await?.and_then(|c| c.name().map(String::from)).into_iter().collect())
    }

    /// One `ListClusters` listing; the tags of the clusters the program's names meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = std::collections::BTreeMap::new();
        let mut pages = ctx.aws()?.eks.list_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            for name in page.map_err(|e| call_failed("ListClusters", e))?.clusters() {
                existing.insert(name.clone(), name.clone());
            }
        }
        crate::aws::names_held(ctx, items, "name", &existing, |name| async move {
            Ok(self.describe(ctx, &name).await?.and_then(|c| c.tags).unwrap_or_default().into_iter().collect())
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &ClusterInputs) -> ProviderResult<Option<ClusterOutputs>> {
        match self.describe(ctx, &i.name).await? {
            Some(c) if c.tags().and_then(|t| t.get(TAG_URN)).map(String::as_str) == Some(urn.as_str()) => {
                Ok(Some(self.outputs(ctx, &c, &i.security_group_ids, i.service_cidr.is_some())))
            }
            _ => Ok(None),
        }
    }
}
