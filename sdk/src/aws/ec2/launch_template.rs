//! `aws:ec2:LaunchTemplate`: how the nodes of an EKS node pool boot — instance metadata only
//! through IMDSv2 sessions, with a hop limit that keeps pods away from the node's role, and an
//! encrypted gp3 root volume.
//!
//! A template is immutable here: a change of its settings is a new template (its name carries a
//! hash of them), and the node pool that uses it is replaced — new nodes, then the old ones
//! drained — which is what a change of how nodes boot needs anyway.

use super::{Tags, check_tags, is_not_found, sync_tags, user_tags};
use crate::aws::AwsCtx;
use crate::aws::found;
use crate::aws::{call_failed, error_code, not_ours, tagged_for};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderResult, Reads, TypedProvider, Update, read_each, typed};
use crate::model::{Checker, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    RequestLaunchTemplateData, ResourceType, Tag, VolumeType,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:LaunchTemplate";

/// The root device of the EKS-optimized Amazon Linux 2023 AMIs.
pub const ROOT_DEVICE: &str = "/dev/xvda";

/// A launch template for the nodes of a node pool.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::LaunchTemplate;
/// let mut s = Stack::new("demo");
/// let lt = LaunchTemplate::builder().name("main-general").disk_size_gib(50).build().add(&mut s).unwrap();
/// assert_eq!(lt.urn().name(), "main-general");
/// let inputs = fabric::testing::rendered_inputs(&s.finish().unwrap());
/// let i = &inputs["demo::aws:ec2:LaunchTemplate::main-general"]["inputs"];
/// assert_eq!((i["http_tokens"].as_str(), i["hop_limit"].as_i64()), (Some("required"), Some(1)));
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct LaunchTemplate {
    #[builder(setter(into))]
    name: String,
    /// Size of the encrypted gp3 root volume.
    disk_size_gib: i32,
    /// How many network hops an instance metadata answer may travel: 1 reaches the node's own
    /// processes and not its pods (which sit one hop further); 2 lets pods take the node's role.
    #[builder(default = 1)]
    hop_limit: i32,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchTemplateInputs {
    /// The template's name in EC2: `<stack>-<name>-<hash of the settings>`.
    pub name: String,
    pub disk_size_gib: i32,
    /// `required`: IMDSv2 sessions only.
    pub http_tokens: String,
    pub hop_limit: i32,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchTemplateOutputs {
    pub id: String,
    pub name: String,
    /// The version node groups boot from.
    pub version: String,
}

#[derive(Clone, Debug)]
pub struct LaunchTemplateRef {
    urn: Urn,
}

impl LaunchTemplateRef {
    outputs!(urn => id: String, version: String);
}

impl LaunchTemplate {
    pub fn add(self, s: &mut Stack) -> crate::Result<LaunchTemplateRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        check_tags(&mut c, &self.tags);
        c.within("hop_limit", self.hop_limit, 1..=64, "{} hops", "use 1 (nodes only) or 2 (pods too)");
        c.within("disk_size_gib", self.disk_size_gib, 1..=16384, "{} GiB is not a volume size", "give 1 to 16384 GiB");
        s.report(c.into_errors());
        let settings = [self.disk_size_gib.to_string(), "required".into(), self.hop_limit.to_string()];
        let base = format!("{}-{}", s.name(), self.name);
        let name = crate::aws::physical_name(&base, 128, &settings.iter().map(String::as_str).collect::<Vec<_>>());
        let inputs = LaunchTemplateInputs {
            name,
            disk_size_gib: self.disk_size_gib,
            http_tokens: "required".into(),
            hop_limit: self.hop_limit,
            tags: self.tags.clone(),
        };
        Ok(LaunchTemplateRef { urn: s.declare(provider(), &self.name, inputs, vec![]) })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    typed(LaunchTemplateProvider)
}

pub struct LaunchTemplateProvider;

/// What the template's version holds, as EC2 is asked to create it.
fn template_data(i: &LaunchTemplateInputs) -> RequestLaunchTemplateData {
    RequestLaunchTemplateData::builder()
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_tokens(LaunchTemplateHttpTokensState::from(i.http_tokens.as_str()))
                .http_put_response_hop_limit(i.hop_limit)
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(ROOT_DEVICE)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(i.disk_size_gib)
                        .volume_type(VolumeType::Gp3)
                        .encrypted(true)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

impl LaunchTemplateProvider {
    async fn by_name(&self, ctx: &Ctx, name: &str) -> ProviderResult<Option<aws_sdk_ec2::types::LaunchTemplate>> {
        Ok(found(
            "DescribeLaunchTemplates",
            is_not_found,
            ctx.aws()?.ec2.describe_launch_templates().launch_template_names(name).send().await,
        )?
        .and_then(|o| o.launch_templates().first().cloned()))
    }

    async fn by_id(&self, ctx: &Ctx, id: &str) -> ProviderResult<Option<aws_sdk_ec2::types::LaunchTemplate>> {
        Ok(found(
            "DescribeLaunchTemplates",
            is_not_found,
            ctx.aws()?.ec2.describe_launch_templates().launch_template_ids(id).send().await,
        )?
        .and_then(|o| o.launch_templates().first().cloned()))
    }

    fn outputs(t: &aws_sdk_ec2::types::LaunchTemplate) -> LaunchTemplateOutputs {
        LaunchTemplateOutputs {
            id: t.launch_template_id().unwrap_or_default().to_string(),
            name: t.launch_template_name().unwrap_or_default().to_string(),
            version: t.default_version_number().unwrap_or(1).to_string(),
        }
    }
}

#[async_trait]
impl TypedProvider for LaunchTemplateProvider {
    resource_type!(TYPE, LaunchTemplateInputs => LaunchTemplateOutputs,
        replace_on &["name", "disk_size_gib", "http_tokens", "hop_limit"], import Import::Never("not implemented yet"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &LaunchTemplateInputs) -> ProviderResult<LaunchTemplateOutputs> {
        let sent = ctx
            .aws()?
            .ec2
            .create_launch_template()
            .launch_template_name(&i.name)
            .launch_template_data(template_data(i))
            .tag_specifications(super::tag_specification(ResourceType::LaunchTemplate, ctx, urn, &i.tags))
            // A retry of a request whose answer was lost creates nothing twice.
            .client_token(crate::model::short_hash(&format!("{}\u{0}{}", urn.as_str(), i.name)))
            .send()
            .await;
        match sent {
            Ok(o) => match o.launch_template() {
                Some(t) => Ok(Self::outputs(t)),
                None => Err("CreateLaunchTemplate answered without a template".into()),
            },
            // Ours only if tagged for this resource (an earlier attempt whose answer was lost).
            Err(e) if error_code(&e) == Some("InvalidLaunchTemplateName.AlreadyExistsException") => {
                let found = self.by_name(ctx, &i.name).await?;
                let tags = found.as_ref().map(|t| tag_pairs(t.tags())).unwrap_or_default();
                let tags: Vec<(&String, &String)> = tags.iter().map(|(k, v)| (k, v)).collect();
                match found {
                    Some(t) if tagged_for(tags.iter().copied(), urn) => Ok(Self::outputs(&t)),
                    _ => Err(not_ours(ctx, urn, &format!("launch template {}", i.name), tags.iter().copied())),
                }
            }
            Err(e) => Err(call_failed("CreateLaunchTemplate", e)),
        }
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<LaunchTemplateOutputs> {
        let Update { old, outputs: out, new } = change;
        sync_tags(ctx, &out.id, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        _: &Urn,
        _: &LaunchTemplateInputs,
        out: &LaunchTemplateOutputs,
    ) -> ProviderResult<()> {
        found(
            "DeleteLaunchTemplate",
            is_not_found,
            ctx.aws()?.ec2.delete_launch_template().launch_template_id(&out.id).send().await,
        )
        .map(drop)
    }

    /// The template and what its default version holds (metadata options, root volume).
    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, LaunchTemplateOutputs)]) -> Reads<Self> {
        let ec2 = &ctx.aws()?.ec2;
        read_each(items, |_, o| async move {
            let Some(t) = self.by_id(ctx, &o.id).await? else { return Ok(None) };
            let versions = ec2
                .describe_launch_template_versions()
                .launch_template_id(&o.id)
                .versions("$Default")
                .send()
                .await
                .map_err(|e| call_failed("DescribeLaunchTemplateVersions", e))?;
            let data = versions.launch_template_versions().first().and_then(|v| v.launch_template_data());
            let metadata = data.and_then(|d| d.metadata_options());
            let disk = data
                .map(|d| d.block_device_mappings())
                .unwrap_or_default()
                .iter()
                .find(|m| m.device_name() == Some(ROOT_DEVICE))
                .and_then(|m| m.ebs())
                .and_then(|e| e.volume_size())
                .unwrap_or_default();
            let inputs = LaunchTemplateInputs {
                name: t.launch_template_name().unwrap_or_default().to_string(),
                disk_size_gib: disk,
                http_tokens: metadata.and_then(|m| m.http_tokens()).map(|h| h.as_str().to_string()).unwrap_or_default(),
                hop_limit: metadata.and_then(|m| m.http_put_response_hop_limit()).unwrap_or_default(),
                tags: user_tags(t.tags()),
            };
            Ok(Some((inputs, Self::outputs(&t))))
        })
        .await
    }

    async fn find(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &LaunchTemplateInputs,
    ) -> ProviderResult<Option<LaunchTemplateOutputs>> {
        match self.by_name(ctx, &i.name).await? {
            Some(t) if tagged_for(tag_pairs(t.tags()).iter().map(|(k, v)| (k, v)), urn) => Ok(Some(Self::outputs(&t))),
            _ => Ok(None),
        }
    }
}
