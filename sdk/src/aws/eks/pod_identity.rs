//! EKS Pod Identity associations: an IAM role for a Kubernetes service account.

use super::*;

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

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<PodIdentityOutputs> {
        let Update { old, outputs: out, new } = change;
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
        found(
            "DeletePodIdentityAssociation",
            ctx.aws()?
                .eks
                .delete_pod_identity_association()
                .cluster_name(&out.cluster_name)
                .association_id(&out.association_id)
                .send()
                .await,
        )
        .map(|_| ())
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, PodIdentityOutputs)]) -> Reads<Self> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            if let Some(requested) = &o.requested {
                out.push(Some((requested.clone(), o.clone())));
                continue;
            }
            let association = ctx
                .aws()?
                .eks
                .describe_pod_identity_association()
                .cluster_name(&o.cluster_name)
                .association_id(&o.association_id);
            let described = found("DescribePodIdentityAssociation", association.send().await)?;
            out.push(described.and_then(|d| d.association).map(|a| {
                let inputs = PodIdentityInputs {
                    cluster_name: o.cluster_name.clone(),
                    namespace: a.namespace().unwrap_or_default().to_string(),
                    service_account: a.service_account().unwrap_or_default().to_string(),
                    role_arn: a.role_arn().unwrap_or_default().to_string(),
                    tags: crate::aws::user_tags_of(a.tags().cloned().unwrap_or_default()),
                };
                (inputs, o.clone())
            }));
        }
        Ok(out)
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &PodIdentityInputs) -> ProviderResult<Option<PodIdentityOutputs>> {
        match self.lookup(ctx, i).await? {
            Some((id, tags)) if crate::aws::tagged_for(&tags, urn) => Ok(Some(PodIdentityOutputs {
                cluster_name: i.cluster_name.clone(),
                association_id: id,
                emulator_gap: None,
                requested: None,
            })),
            _ => Ok(None),
        }
    }
}
