//! EKS access entries: an IAM principal let into the cluster with an access policy.

use super::*;
use crate::engine::provider::Import;
use aws_sdk_eks::types::{AccessScope, AccessScopeType};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEntryInputs<R = String> {
    pub cluster_name: R,
    /// The IAM user or role let in.
    pub principal_arn: String,
    /// The EKS access policy associated cluster-wide (`…:cluster-access-policy/AmazonEKSClusterAdminPolicy`).
    pub policy_arn: String,
}

/// What EKS made: the entry of a principal in a cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEntryMade {
    pub cluster_name: String,
    pub principal_arn: String,
}

pub type AccessEntryOutputs = OrGap<AccessEntryInputs, AccessEntryMade>;

pub struct AccessEntryProvider;

fn made(i: &AccessEntryInputs) -> AccessEntryMade {
    AccessEntryMade { cluster_name: i.cluster_name.clone(), principal_arn: i.principal_arn.clone() }
}

#[async_trait]
impl MaybeLacking for AccessEntryProvider {
    // A policy change is an update: the new policy is associated, then the old one disassociated.
    resource_type!(ACCESS_ENTRY, AccessEntryInputs => AccessEntryMade,
        replace_on &["cluster_name", "principal_arn"], import Import::Never("not implemented yet"));

    async fn create(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &AccessEntryInputs,
    ) -> ProviderResult<Result<AccessEntryMade, String>> {
        let eks = &ctx.aws()?.eks;
        let sent = eks
            .create_access_entry()
            .cluster_name(&i.cluster_name)
            .principal_arn(&i.principal_arn)
            .r#type("STANDARD")
            .set_tags(Some(eks_tags(ctx, urn, &Tags::new())))
            .client_request_token(token(urn, i))
            .send()
            .await;
        match sent {
            Ok(_) => {}
            Err(e) if emulator_lacks(ctx, &e) => {
                return Ok(Err("the emulator does not implement EKS access entries (CreateAccessEntry)".into()));
            }
            Err(e) => {
                let existing = || async {
                    Ok(self
                        .entry_tags(ctx, &i.cluster_name, &i.principal_arn)
                        .await?
                        .unwrap_or_default()
                        .into_iter()
                        .collect())
                };
                let what = format!("the EKS access entry of {} in cluster {}", i.principal_arn, i.cluster_name);
                already_ours(ctx, urn, &what, "CreateAccessEntry", e, existing).await?;
            }
        }
        self.associate(ctx, &made(i), &i.policy_arn).await?;
        Ok(Ok(made(i)))
    }

    fn stand_in(i: &AccessEntryInputs) -> AccessEntryMade {
        made(i)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        old: &AccessEntryInputs,
        out: &AccessEntryMade,
        new: &AccessEntryInputs,
    ) -> ProviderResult<AccessEntryMade> {
        if old.policy_arn != new.policy_arn {
            // The new policy first: the principal never goes without access in between.
            self.associate(ctx, out, &new.policy_arn).await?;
            let eks = &ctx.aws()?.eks;
            let call = eks.disassociate_access_policy().cluster_name(&out.cluster_name);
            let call = call.principal_arn(&out.principal_arn).policy_arn(&old.policy_arn);
            found("DisassociateAccessPolicy", call.send().await)?;
        }
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, out: &AccessEntryMade) -> ProviderResult<()> {
        let eks = &ctx.aws()?.eks;
        let call = eks.delete_access_entry().cluster_name(&out.cluster_name).principal_arn(&out.principal_arn);
        found("DeleteAccessEntry", call.send().await).map(drop)
    }

    async fn read(&self, ctx: &Ctx, o: &AccessEntryMade) -> ProviderResult<Option<AccessEntryInputs>> {
        let eks = &ctx.aws()?.eks;
        let entry = eks.describe_access_entry().cluster_name(&o.cluster_name).principal_arn(&o.principal_arn);
        if found("DescribeAccessEntry", entry.send().await)?.is_none() {
            return Ok(None);
        }
        let policies = eks
            .list_associated_access_policies()
            .cluster_name(&o.cluster_name)
            .principal_arn(&o.principal_arn)
            .send()
            .await
            .map_err(|e| call_failed("ListAssociatedAccessPolicies", e))?;
        let policy = policies.associated_access_policies().first().and_then(|p| p.policy_arn());
        Ok(Some(AccessEntryInputs {
            cluster_name: o.cluster_name.clone(),
            principal_arn: o.principal_arn.clone(),
            policy_arn: policy.unwrap_or_default().to_string(),
        }))
    }

    /// The entry of that principal, if it is tagged for `urn`.
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &AccessEntryInputs) -> ProviderResult<Option<AccessEntryMade>> {
        let tags = self.entry_tags(ctx, &i.cluster_name, &i.principal_arn).await?;
        Ok(tags.filter(|t| crate::aws::tagged_for(t, urn)).map(|_| made(i)))
    }
}

impl AccessEntryProvider {
    /// The tags of the access entry of `principal` in `cluster`; `None` when there is none.
    async fn entry_tags(&self, ctx: &Ctx, cluster: &str, principal: &str) -> ProviderResult<Option<Tags>> {
        let entry = ctx.aws()?.eks.describe_access_entry().cluster_name(cluster).principal_arn(principal);
        let described = found("DescribeAccessEntry", entry.send().await)?;
        Ok(described
            .map(|o| o.access_entry().and_then(|e| e.tags().cloned()).unwrap_or_default().into_iter().collect()))
    }

    /// Associates `policy` with the entry, cluster-wide.
    async fn associate(&self, ctx: &Ctx, entry: &AccessEntryMade, policy: &str) -> ProviderResult<()> {
        ctx.aws()?
            .eks
            .associate_access_policy()
            .cluster_name(&entry.cluster_name)
            .principal_arn(&entry.principal_arn)
            .policy_arn(policy)
            .access_scope(AccessScope::builder().r#type(AccessScopeType::Cluster).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("AssociateAccessPolicy", e))
    }
}
