//! EKS add-ons (VPC CNI, CoreDNS, kube-proxy, the EBS CSI driver, …) and their pod identities.

use super::*;
use crate::engine::provider::Import;
use aws_sdk_eks::types::ResolveConflicts;

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

/// What EKS made: the add-on of a cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddonMade {
    pub cluster_name: String,
    pub name: String,
    pub arn: String,
}

pub type AddonOutputs = OrGap<AddonInputs, AddonMade>;

pub struct AddonProvider;

impl AddonProvider {
    async fn describe(
        &self,
        ctx: &Ctx,
        cluster: &str,
        name: &str,
    ) -> ProviderResult<Option<aws_sdk_eks::types::Addon>> {
        Ok(found("DescribeAddon", ctx.aws()?.eks.describe_addon().cluster_name(cluster).addon_name(name).send().await)?
            .and_then(|o| o.addon))
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
impl MaybeLacking for AddonProvider {
    resource_type!(ADDON, AddonInputs => AddonMade,
        replace_on &["cluster_name", "name"], import Import::Never("not implemented yet"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &AddonInputs) -> ProviderResult<Result<AddonMade, String>> {
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
            Err(e) if emulator_lacks(ctx, &e) => {
                return Ok(Err("the emulator does not implement EKS add-ons (CreateAddon)".into()));
            }
            Err(e) => {
                let existing = || async {
                    Ok(self.describe(ctx, &i.cluster_name, &i.name).await?.and_then(|a| a.tags).unwrap_or_default())
                };
                let what = format!("EKS add-on {} of cluster {}", i.name, i.cluster_name);
                already_ours(ctx, urn, &what, "CreateAddon", e, existing).await?;
            }
        }
        let a = self.wait(ctx, &i.cluster_name, &i.name, false).await?.expect("active");
        Ok(Ok(AddonMade { arn: a.addon_arn().unwrap_or_default().to_string(), ..Self::stand_in(i) }))
    }

    fn stand_in(i: &AddonInputs) -> AddonMade {
        AddonMade { cluster_name: i.cluster_name.clone(), name: i.name.clone(), arn: String::new() }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        old: &AddonInputs,
        out: &AddonMade,
        new: &AddonInputs,
    ) -> ProviderResult<AddonMade> {
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

    async fn delete(&self, ctx: &Ctx, out: &AddonMade) -> ProviderResult<()> {
        let call = ctx.aws()?.eks.delete_addon().cluster_name(&out.cluster_name).addon_name(&out.name);
        if found("DeleteAddon", call.send().await)?.is_none() {
            return Ok(());
        }
        self.wait(ctx, &out.cluster_name, &out.name, true).await.map(drop)
    }

    async fn read(&self, ctx: &Ctx, o: &AddonMade) -> ProviderResult<Option<AddonInputs>> {
        Ok(self.describe(ctx, &o.cluster_name, &o.name).await?.map(|a| AddonInputs {
            cluster_name: o.cluster_name.clone(),
            name: o.name.clone(),
            version: a.addon_version().map(String::from),
            // Associations are read as ARNs, not as what was asked: the recorded value stands.
            pod_identity: None,
            tags: crate::aws::user_tags_of(a.tags().cloned().unwrap_or_default()),
            configuration: a.configuration_values().filter(|c| !c.is_empty() && *c != "{}").map(String::from),
        }))
    }

    /// One `ListAddons` per cluster that exists; the tags of the add-ons the program's names meet.
    /// (EKS may install add-ons of its own: those are taken too, and say so.)
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let eks = &ctx.aws()?.eks;
        let list = |cluster: String| async move {
            let mut names = Vec::new();
            let mut pages = eks.list_addons().cluster_name(cluster).into_paginator().send();
            while let Some(page) = pages.next().await {
                let Some(p) = found("ListAddons", page)? else { return Ok(None) };
                names.extend(p.addons().iter().cloned());
            }
            Ok(Some(names))
        };
        let name_of = |v: &Value| crate::engine::provider::known_text(v, "name").map(String::from);
        let tags = |cluster: String, name: String| async move {
            Ok(self
                .describe(ctx, &cluster, &name)
                .await?
                .and_then(|a| a.tags)
                .unwrap_or_default()
                .into_iter()
                .collect())
        };
        names_in_clusters(ctx, items, list, name_of, tags).await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &AddonInputs) -> ProviderResult<Option<AddonMade>> {
        Ok(match self.describe(ctx, &i.cluster_name, &i.name).await? {
            Some(a) if a.tags().and_then(|t| t.get(TAG_URN)).map(String::as_str) == Some(urn.as_str()) => {
                Some(AddonMade { arn: a.addon_arn().unwrap_or_default().to_string(), ..Self::stand_in(i) })
            }
            _ => None,
        })
    }
}
