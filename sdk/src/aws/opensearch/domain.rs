//! `aws:opensearch:Domain`: an OpenSearch Service domain in a VPC, its data nodes spread over two
//! or three zones, on gp3 volumes, encrypted at rest and between nodes, HTTPS only, behind
//! fine-grained access control with a master user in its internal user database.

use super::{DOMAIN, all_tags, domain_tags, sync_tags};
use crate::aws::create::create_or_find;
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{AwsCtx, Tags, call_failed, classify, found};
use crate::engine::provider::{
    Ctx, Import, NamesTaken, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, read_each,
    typed,
};
use crate::model::{Secret, Urn};
use async_trait::async_trait;
use aws_sdk_opensearch::types::{
    AdvancedSecurityOptionsInput, ClusterConfig, DomainEndpointOptions, DomainStatus, EbsOptions,
    EncryptionAtRestOptions, MasterUserOptions, NodeToNodeEncryptionOptions, OpenSearchPartitionInstanceType,
    TlsSecurityPolicy, VolumeType, VpcOptions, ZoneAwarenessConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a domain may take to settle: a create takes 15–30 minutes, a blue/green deployment
/// copies every shard to new nodes and can take hours on a large domain.
const DOMAIN_WAIT: Duration = Duration::from_secs(3 * 60 * 60);

/// What the access policy is: [`DOMAIN_ONLY`], or the policy found in the cloud when it is
/// something else (drift, which a deploy puts back).
pub const DOMAIN_ONLY: &str = "domain-only";

/// Dedicated master nodes: the cluster's managers, apart from the data nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masters {
    /// `m7g.large.search`, …
    pub instance_type: String,
    /// 3 or 5.
    pub count: i32,
}

/// What a domain is created with. `R` is a reference resolved at apply (security groups, the
/// key), `L` the subnets, `P` the master user's password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainInputs<R = String, P = Secret<String>, L = Vec<String>> {
    /// The domain name: 3–28 lower-case letters, digits and hyphens, starting with a letter.
    pub name: String,
    /// `OpenSearch_2.17`, …
    pub engine_version: String,
    /// The data nodes' instance type (`r7g.large.search`).
    pub instance_type: String,
    /// Data nodes: a multiple of `zone_count`.
    pub instance_count: i32,
    /// Zones the data nodes (and each shard's replicas) are spread over: 2 or 3.
    pub zone_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated_masters: Option<Masters>,
    /// GiB of gp3 storage per data node.
    pub volume_gb: i32,
    /// Always `gp3`.
    pub volume_type: String,
    /// One private subnet per zone, sorted.
    pub subnet_ids: L,
    pub security_group_ids: Vec<R>,
    pub at_rest_encryption: bool,
    /// A customer managed key's ARN; none: the AWS managed key. Not readable back as given: kept
    /// as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<R>,
    pub node_to_node_encryption: bool,
    pub enforce_https: bool,
    /// `Policy-Min-TLS-1-2-PFS-2023-10`, …
    pub tls_policy: String,
    /// The fine-grained access control master user (internal user database). Not shown by a
    /// read (empty there, so it keeps its recorded value) unless fine-grained access control is
    /// off (`(off)`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub master_user: String,
    /// Not readable back: omitted from reads, so it keeps its recorded value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_password: Option<P>,
    /// [`DOMAIN_ONLY`]: HTTP actions on this domain's own paths, nothing else; who reaches the
    /// domain is decided by its security group, and what a caller may do by fine-grained access
    /// control (a policy naming IAM principals would refuse the master user's unsigned requests).
    pub access_policy: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainOutputs {
    pub name: String,
    pub arn: String,
    /// The VPC endpoint's host name (HTTPS on 443).
    pub endpoint: String,
}

pub fn domain_provider() -> Arc<dyn Provider> {
    typed(DomainProvider)
}

pub struct DomainProvider;

/// Whether a change of these fields makes OpenSearch Service move the domain to new nodes (a
/// blue/green deployment: the old nodes serve until every shard is copied), after the service's
/// guide "Making configuration changes". Changing the data node count does not when the domain
/// has dedicated masters.
pub fn blue_green(fields: &[&str], with_masters: bool) -> Vec<&'static str> {
    let mut why = Vec::new();
    for f in fields {
        match *f {
            "instance_type" => why.push("the data nodes' instance type"),
            "zone_count" => why.push("the zone count"),
            "dedicated_masters" => why.push("dedicated masters"),
            "volume_gb" | "volume_type" => why.push("the storage"),
            "subnet_ids" => why.push("the subnets"),
            "engine_version" => why.push("the engine version"),
            "instance_count" if !with_masters => why.push("the data node count (without dedicated masters)"),
            _ => {}
        }
    }
    why
}

/// `OpenSearch_2.17` → `(2, 17)`.
pub fn engine_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.strip_prefix("OpenSearch_")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn outputs(d: &DomainStatus) -> DomainOutputs {
    let endpoint = d
        .endpoints()
        .and_then(|e| e.get("vpc").cloned())
        .or_else(|| d.endpoint().map(str::to_string))
        .unwrap_or_default();
    DomainOutputs { name: d.domain_name().to_string(), arn: d.arn().to_string(), endpoint }
}

/// The domain of that name, if there is one (a domain being deleted reads as gone).
pub(super) async fn get(ctx: &Ctx, name: &str) -> ProviderResult<Option<DomainStatus>> {
    let aws = ctx.aws()?;
    let domain = found(
        "DescribeDomain",
        |c| c == Some("ResourceNotFoundException"),
        aws.opensearch.describe_domain().domain_name(name).send().await,
    )?
    .and_then(|o| o.domain_status().cloned());
    Ok(domain.filter(|d| d.deleted() != Some(true)))
}

/// `arn:<partition>:es:<region>:<account>:domain/<name>`, for the access policy of a domain not
/// made yet.
async fn domain_arn(ctx: &Ctx, name: &str) -> ProviderResult<String> {
    let aws = ctx.aws()?;
    let me = aws.sts.get_caller_identity().send().await.map_err(|e| call_failed("GetCallerIdentity", e))?;
    let region = aws.region();
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    Ok(format!("arn:{partition}:es:{region}:{}:domain/{name}", me.account().unwrap_or_default()))
}

/// The domain-only access policy of the domain `arn`.
pub fn domain_only_policy(arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "es:ESHttp*",
            "Resource": format!("{arn}/*"),
        }]
    })
}

/// What a domain's live access policy is, as an input: [`DOMAIN_ONLY`] when it is the policy
/// fabric sets (compared as JSON, not text), else the policy itself.
fn policy_as_input(live: Option<&str>, arn: &str) -> String {
    let parsed: Option<Value> = live.and_then(|p| serde_json::from_str(p).ok());
    match parsed {
        Some(p) if p == domain_only_policy(arn) => DOMAIN_ONLY.into(),
        _ => live.unwrap_or_default().to_string(),
    }
}

fn cluster_config(i: &DomainInputs) -> ClusterConfig {
    let masters = i.dedicated_masters.as_ref();
    ClusterConfig::builder()
        .instance_type(OpenSearchPartitionInstanceType::from(i.instance_type.as_str()))
        .instance_count(i.instance_count)
        .zone_awareness_enabled(i.zone_count > 1)
        .set_zone_awareness_config(
            (i.zone_count > 1).then(|| ZoneAwarenessConfig::builder().availability_zone_count(i.zone_count).build()),
        )
        .dedicated_master_enabled(masters.is_some())
        .set_dedicated_master_type(masters.map(|m| OpenSearchPartitionInstanceType::from(m.instance_type.as_str())))
        .set_dedicated_master_count(masters.map(|m| m.count))
        .build()
}

fn ebs_options(i: &DomainInputs) -> EbsOptions {
    EbsOptions::builder()
        .ebs_enabled(true)
        .volume_type(VolumeType::from(i.volume_type.as_str()))
        .volume_size(i.volume_gb)
        .build()
}

fn vpc_options(i: &DomainInputs) -> VpcOptions {
    VpcOptions::builder()
        .set_subnet_ids(Some(i.subnet_ids.clone()))
        .set_security_group_ids(Some(i.security_group_ids.clone()))
        .build()
}

fn endpoint_options(i: &DomainInputs) -> DomainEndpointOptions {
    DomainEndpointOptions::builder()
        .enforce_https(i.enforce_https)
        .tls_security_policy(TlsSecurityPolicy::from(i.tls_policy.as_str()))
        .build()
}

fn security_options(i: &DomainInputs, with_password: bool) -> ProviderResult<AdvancedSecurityOptionsInput> {
    let password = i.master_password.as_ref().ok_or_else(|| ProviderError("no master user password".into()))?;
    let master = MasterUserOptions::builder().master_user_name(&i.master_user);
    let master = if with_password { master.master_user_password(password.expose()) } else { master };
    Ok(AdvancedSecurityOptionsInput::builder()
        .enabled(true)
        .internal_user_database_enabled(true)
        .master_user_options(master.build())
        .build())
}

impl DomainProvider {
    /// The domain of the program's name, if it is tagged for `urn`; an error if it exists and is
    /// someone else's.
    async fn owned(&self, ctx: &Ctx, urn: &Urn, name: &str) -> ProviderResult<Option<DomainStatus>> {
        let Some(d) = get(ctx, name).await? else { return Ok(None) };
        let tags = all_tags(ctx, d.arn()).await?;
        crate::aws::require_ours(ctx, urn, &format!("OpenSearch domain {name}"), &tags)?;
        Ok(Some(d))
    }

    /// Waits until the domain has settled — made, its endpoint known, no change (a blue/green
    /// deployment included) or upgrade in progress — or is gone, with `gone`.
    pub(super) async fn wait(&self, ctx: &Ctx, name: &str, gone: bool) -> ProviderResult<Option<DomainStatus>> {
        let check = || async move {
            let d = get(ctx, name).await?;
            let Some(domain) = &d else {
                return if gone {
                    Ok(Poll::Ready(None))
                } else {
                    Err(ProviderError(format!("OpenSearch domain {name} disappeared while it was being changed")))
                };
            };
            let status = domain.domain_processing_status().map(|s| s.as_str().to_string());
            let busy = domain.processing() == Some(true)
                || domain.upgrade_processing() == Some(true)
                || status.as_deref().is_some_and(|s| s != "Active");
            let has_endpoint = domain.endpoints().is_some_and(|e| e.contains_key("vpc")) || domain.endpoint().is_some();
            if status.as_deref() == Some("Isolated") {
                return Err(ProviderError(format!(
                    "OpenSearch domain {name} is isolated by AWS (its account or key is suspended): see the domain's health in the console"
                )));
            }
            match (gone, busy || !has_endpoint) {
                (false, false) => Ok(Poll::Ready(d)),
                _ => Ok(Poll::Waiting(status.unwrap_or_else(|| "processing".into()))),
            }
        };
        poll_until(DOMAIN_WAIT, Duration::from_secs(30), check, |last| {
            format!("OpenSearch domain {name} did not settle within {DOMAIN_WAIT:?} (still {last})")
        })
        .await
    }

    /// What the domain shows (the subnets and groups sorted, as the builder gives them).
    async fn observe(&self, ctx: &Ctx, d: &DomainStatus) -> ProviderResult<(DomainInputs, DomainOutputs)> {
        let tags = all_tags(ctx, d.arn()).await?;
        let cluster = d.cluster_config();
        let vpc = d.vpc_options();
        let mut subnet_ids = vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
        subnet_ids.sort();
        let mut security_group_ids = vpc.map(|v| v.security_group_ids().to_vec()).unwrap_or_default();
        security_group_ids.sort();
        let masters = cluster.filter(|c| c.dedicated_master_enabled() == Some(true)).map(|c| Masters {
            instance_type: c.dedicated_master_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            count: c.dedicated_master_count().unwrap_or(0),
        });
        let zone_count = match cluster {
            Some(c) if c.zone_awareness_enabled() == Some(true) => {
                c.zone_awareness_config().and_then(|z| z.availability_zone_count()).unwrap_or(2)
            }
            _ => 1,
        };
        let ebs = d.ebs_options();
        let endpoint = d.domain_endpoint_options();
        let security = d.advanced_security_options();
        let inputs = DomainInputs {
            name: d.domain_name().to_string(),
            engine_version: d.engine_version().unwrap_or_default().to_string(),
            instance_type: cluster.and_then(|c| c.instance_type()).map(|t| t.as_str().to_string()).unwrap_or_default(),
            instance_count: cluster.and_then(|c| c.instance_count()).unwrap_or(0),
            zone_count,
            dedicated_masters: masters,
            volume_gb: ebs.and_then(|e| e.volume_size()).unwrap_or(0),
            volume_type: ebs.and_then(|e| e.volume_type()).map(|t| t.as_str().to_string()).unwrap_or_default(),
            subnet_ids,
            security_group_ids,
            at_rest_encryption: d.encryption_at_rest_options().and_then(|e| e.enabled()).unwrap_or(false),
            kms_key_id: None,
            node_to_node_encryption: d.node_to_node_encryption_options().and_then(|e| e.enabled()).unwrap_or(false),
            enforce_https: endpoint.and_then(|e| e.enforce_https()).unwrap_or(false),
            tls_policy: endpoint
                .and_then(|e| e.tls_security_policy())
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            // The master user's name is not shown (only whether the internal database is on):
            // kept as recorded unless fine-grained access control is off.
            master_user: if security.and_then(|s| s.enabled()) == Some(true) { String::new() } else { "(off)".into() },
            master_password: None,
            access_policy: policy_as_input(d.access_policies(), d.arn()),
            tags: crate::aws::user_tags_of(tags),
        };
        Ok((inputs, outputs(d)))
    }
}

#[async_trait]
impl TypedProvider for DomainProvider {
    // What OpenSearch Service cannot change on a domain: its name, and encryption at rest and
    // node-to-node encryption and the key (none can be turned off or swapped once on).
    resource_type!(DOMAIN, DomainInputs => DomainOutputs,
        replace_on &["name", "at_rest_encryption", "kms_key_id", "node_to_node_encryption"], import Import::ById);

    /// A change of the data nodes, zones, masters, storage, subnets or engine is carried out by a
    /// blue/green deployment; the plan says so, and deploy waits for it.
    fn update_notes(&self, fields: &[&str], new: &Value) -> Vec<String> {
        let with_masters = new.get("dedicated_masters").is_some_and(|m| !m.is_null());
        let why = blue_green(fields, with_masters);
        if why.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "blue/green deployment: OpenSearch Service moves the domain to new nodes for {} (the old nodes serve until every shard is copied; deploy waits for it, which may take hours on a large domain)",
            why.join(", ")
        )]
    }

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &DomainInputs) -> ProviderResult<DomainOutputs> {
        // A domain of this name that is ours is a create an earlier run made (finish waiting for
        // it); anyone else's is refused before any write.
        if self.owned(ctx, urn, &i.name).await?.is_some() {
            let d = self.wait(ctx, &i.name, false).await?.expect("settled");
            return Ok(outputs(&d));
        }
        let policy = domain_only_policy(&domain_arn(ctx, &i.name).await?).to_string();
        let security = security_options(i, true)?;
        let client = &ctx.aws()?.opensearch;
        create_or_find(
            "CreateDomain",
            Duration::from_millis(500),
            || async {
                client
                    .create_domain()
                    .domain_name(&i.name)
                    .engine_version(&i.engine_version)
                    .cluster_config(cluster_config(i))
                    .ebs_options(ebs_options(i))
                    .vpc_options(vpc_options(i))
                    .encryption_at_rest_options(
                        EncryptionAtRestOptions::builder()
                            .enabled(i.at_rest_encryption)
                            .set_kms_key_id(i.kms_key_id.clone())
                            .build(),
                    )
                    .node_to_node_encryption_options(
                        NodeToNodeEncryptionOptions::builder().enabled(i.node_to_node_encryption).build(),
                    )
                    .domain_endpoint_options(endpoint_options(i))
                    .advanced_security_options(security.clone())
                    .access_policies(&policy)
                    .set_tag_list(Some(domain_tags(ctx, urn, &i.tags)))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(())
            },
            || async { Ok(self.find(ctx, urn, i).await?.map(|_| ())) },
        )
        .await?;
        let d = self.wait(ctx, &i.name, false).await?.expect("settled");
        Ok(outputs(&d))
    }

    /// An engine upgrade first (`UpgradeDomain`, only upwards: OpenSearch Service refuses a
    /// downgrade), then one `UpdateDomainConfig` of everything else that changed; each waited for
    /// until the domain has settled (a blue/green deployment included).
    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<DomainOutputs> {
        let Update { old, outputs: out, new } = change;
        let name = out.name.as_str();
        if let (Some(from), Some(to)) = (engine_version(&old.engine_version), engine_version(&new.engine_version))
            && to < from
        {
            return Err(ProviderError(format!(
                "OpenSearch Service cannot downgrade domain {name} from {} to {}: it only upgrades; keep `engine_version` as deployed, or create a new domain under another name and reindex into it",
                old.engine_version, new.engine_version
            )));
        }
        let client = &ctx.aws()?.opensearch;
        if old.engine_version != new.engine_version {
            client
                .upgrade_domain()
                .domain_name(name)
                .target_version(&new.engine_version)
                .send()
                .await
                .map_err(|e| call_failed("UpgradeDomain", e))?;
            self.wait(ctx, name, false).await?;
        }
        let mut req = client.update_domain_config().domain_name(name);
        let mut any = false;
        let differ = |a: &dyn Fn(&DomainInputs) -> Value| a(old) != a(new);
        if differ(&|i| json!([i.instance_type, i.instance_count, i.zone_count, i.dedicated_masters])) {
            req = req.cluster_config(cluster_config(new));
            any = true;
        }
        if differ(&|i| json!([i.volume_gb, i.volume_type])) {
            req = req.ebs_options(ebs_options(new));
            any = true;
        }
        if differ(&|i| json!([i.subnet_ids, i.security_group_ids])) {
            req = req.vpc_options(vpc_options(new));
            any = true;
        }
        if differ(&|i| json!([i.enforce_https, i.tls_policy])) {
            req = req.domain_endpoint_options(endpoint_options(new));
            any = true;
        }
        let password_changed = new.master_password.is_some() && old.master_password != new.master_password;
        if old.master_user != new.master_user || password_changed {
            req = req.advanced_security_options(security_options(new, true)?);
            any = true;
        }
        if old.access_policy != new.access_policy {
            req = req.access_policies(domain_only_policy(&out.arn).to_string());
            any = true;
        }
        if any {
            req.send().await.map_err(|e| call_failed("UpdateDomainConfig", e))?;
            self.wait(ctx, name, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        let d = get(ctx, name).await?.ok_or_else(|| ProviderError(format!("OpenSearch domain {name} disappeared")))?;
        Ok(outputs(&d))
    }

    /// Deletes the domain and its data (OpenSearch Service keeps no final snapshot), and waits
    /// until it is gone.
    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &DomainInputs, out: &DomainOutputs) -> ProviderResult<()> {
        let answer = ctx.aws()?.opensearch.delete_domain().domain_name(&out.name).send().await;
        if found("DeleteDomain", |c| c == Some("ResourceNotFoundException"), answer)?.is_none() {
            return Ok(());
        }
        self.wait(ctx, &out.name, true).await.map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, DomainOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            Ok(match get(ctx, &o.name).await? {
                Some(d) => Some(self.observe(ctx, &d).await?),
                None => None,
            })
        })
        .await
    }

    /// The domain of the program's name, if it is tagged for `urn`.
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &DomainInputs) -> ProviderResult<Option<DomainOutputs>> {
        let Some(d) = get(ctx, &i.name).await? else { return Ok(None) };
        let tagged = crate::aws::tagged_for(&all_tags(ctx, d.arn()).await?, urn);
        Ok(tagged.then(|| outputs(&d)))
    }

    /// By domain name. The master user's password cannot be read: the program's is kept, and set
    /// on the domain by the first deploy after the import.
    async fn import(&self, ctx: &Ctx, _: &Urn, name: &str) -> Read<Self> {
        match get(ctx, name).await? {
            Some(d) => Ok(Some(self.observe(ctx, &d).await?)),
            None => Ok(None),
        }
    }

    /// The domain of the program's name, if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &DomainInputs) -> ProviderResult<Vec<String>> {
        Ok(get(ctx, &i.name).await?.map(|d| d.domain_name().to_string()).into_iter().collect())
    }

    /// One `ListDomainNames`; the tags of the domains the program's names meet (each described
    /// for its ARN).
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let listed =
            ctx.aws()?.opensearch.list_domain_names().send().await.map_err(|e| call_failed("ListDomainNames", e))?;
        let existing: BTreeMap<String, String> = listed
            .domain_names()
            .iter()
            .filter_map(|d| d.domain_name())
            .map(|n| (n.to_string(), n.to_string()))
            .collect();
        crate::aws::names_held(ctx, items, "name", &existing, |name| async move {
            match get(ctx, &name).await? {
                Some(d) => all_tags(ctx, d.arn()).await,
                None => Ok(Tags::new()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_of_nodes_zones_storage_subnets_or_engine_are_blue_green() {
        assert_eq!(blue_green(&["instance_type", "tags"], false), ["the data nodes' instance type"]);
        assert!(blue_green(&["access_policy", "tls_policy", "tags", "master_password"], false).is_empty());
        assert!(blue_green(&["instance_count"], true).is_empty());
        assert_eq!(blue_green(&["instance_count"], false).len(), 1);
    }

    #[test]
    fn the_domain_only_policy_reads_back_as_such_and_anything_else_as_itself() {
        let arn = "arn:aws:es:eu-west-1:123456789012:domain/shop-search";
        let live = domain_only_policy(arn).to_string();
        assert_eq!(policy_as_input(Some(&live), arn), DOMAIN_ONLY);
        let open = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"es:*","Resource":"*"}]}"#;
        assert_eq!(policy_as_input(Some(open), arn), open);
    }
}
