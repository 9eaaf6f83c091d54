//! EKS Pod Identity associations: an IAM role for a Kubernetes service account.

use super::*;
use crate::engine::provider::Import;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodIdentityInputs<R = String> {
    pub cluster_name: R,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: R,
    pub tags: Tags,
}

/// What EKS made: the association's id in its cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodIdentityMade {
    pub cluster_name: String,
    pub association_id: String,
}

pub type PodIdentityOutputs = OrGap<PodIdentityInputs, PodIdentityMade>;

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
impl MaybeLacking for PodIdentityProvider {
    resource_type!(POD_IDENTITY, PodIdentityInputs => PodIdentityMade,
        replace_on &["cluster_name", "namespace", "service_account"], import Import::Never("not implemented yet"));

    async fn create(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &PodIdentityInputs,
    ) -> ProviderResult<Result<PodIdentityMade, String>> {
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
                Some((id, tags)) if crate::aws::tagged_for(&tags, urn) => id,
                found => {
                    return Err(crate::aws::not_ours(
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
                return Ok(Err(
                    "the emulator does not implement EKS Pod Identity (CreatePodIdentityAssociation)".into()
                ));
            }
            Err(e) => return Err(call_failed("CreatePodIdentityAssociation", e)),
        };
        Ok(Ok(PodIdentityMade { cluster_name: i.cluster_name.clone(), association_id: id }))
    }

    fn stand_in(i: &PodIdentityInputs) -> PodIdentityMade {
        PodIdentityMade { cluster_name: i.cluster_name.clone(), association_id: String::new() }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        old: &PodIdentityInputs,
        out: &PodIdentityMade,
        new: &PodIdentityInputs,
    ) -> ProviderResult<PodIdentityMade> {
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

    async fn delete(&self, ctx: &Ctx, out: &PodIdentityMade) -> ProviderResult<()> {
        let eks = &ctx.aws()?.eks;
        let call = eks.delete_pod_identity_association().cluster_name(&out.cluster_name);
        found("DeletePodIdentityAssociation", call.association_id(&out.association_id).send().await).map(drop)
    }

    async fn read(&self, ctx: &Ctx, o: &PodIdentityMade) -> ProviderResult<Option<PodIdentityInputs>> {
        let eks = &ctx.aws()?.eks;
        let call = eks.describe_pod_identity_association().cluster_name(&o.cluster_name);
        let described = found("DescribePodIdentityAssociation", call.association_id(&o.association_id).send().await)?;
        Ok(described.and_then(|d| d.association).map(|a| PodIdentityInputs {
            cluster_name: o.cluster_name.clone(),
            namespace: a.namespace().unwrap_or_default().to_string(),
            service_account: a.service_account().unwrap_or_default().to_string(),
            role_arn: a.role_arn().unwrap_or_default().to_string(),
            tags: crate::aws::user_tags_of(a.tags().cloned().unwrap_or_default()),
        }))
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &PodIdentityInputs) -> ProviderResult<Option<PodIdentityMade>> {
        Ok(match self.lookup(ctx, i).await? {
            Some((id, tags)) if crate::aws::tagged_for(&tags, urn) => {
                Some(PodIdentityMade { cluster_name: i.cluster_name.clone(), association_id: id })
            }
            _ => None,
        })
    }
}
