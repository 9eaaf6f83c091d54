//! EKS access entries: an IAM principal let into the cluster with an access policy.

use super::*;
use aws_sdk_eks::types::{AccessScope, AccessScopeType};

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
                crate::aws::require_ours(
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

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<AccessEntryOutputs> {
        let Update { old, outputs: out, new } = change;
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
            found(
                "DisassociateAccessPolicy",
                eks.disassociate_access_policy()
                    .cluster_name(&out.cluster_name)
                    .principal_arn(&out.principal_arn)
                    .policy_arn(&old.policy_arn)
                    .send()
                    .await,
            )?;
        }
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &AccessEntryInputs, out: &AccessEntryOutputs) -> ProviderResult<()> {
        if out.emulator_gap.is_some() {
            return Ok(());
        }
        found(
            "DeleteAccessEntry",
            ctx.aws()?
                .eks
                .delete_access_entry()
                .cluster_name(&out.cluster_name)
                .principal_arn(&out.principal_arn)
                .send()
                .await,
        )
        .map(|_| ())
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, AccessEntryOutputs)]) -> Reads<Self> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            if let Some(requested) = &o.requested {
                out.push(Some((requested.clone(), o.clone())));
                continue;
            }
            let eks = &ctx.aws()?.eks;
            let entry = eks.describe_access_entry().cluster_name(&o.cluster_name).principal_arn(&o.principal_arn);
            if found("DescribeAccessEntry", entry.send().await)?.is_none() {
                out.push(None);
                continue;
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
        Ok(tags.filter(|t| crate::aws::tagged_for(t, urn)).map(|_| AccessEntryOutputs {
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
        let entry = ctx.aws()?.eks.describe_access_entry().cluster_name(cluster).principal_arn(principal);
        let described = found("DescribeAccessEntry", entry.send().await)?;
        Ok(described
            .map(|o| o.access_entry().and_then(|e| e.tags().cloned()).unwrap_or_default().into_iter().collect()))
    }
}
