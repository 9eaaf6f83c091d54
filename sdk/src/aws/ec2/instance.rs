//! `aws:ec2:Instance`, one EC2 instance (IMDSv2 only), and `aws:ec2:ImageLookup`, the newest
//! Amazon Linux 2023 image of the region, looked up once at the first deploy and kept (a new
//! image does not replace a running instance by surprise).

use super::tagged::TaggedResource;
use super::{Tags, check_tags, tag_specification, user_tags, with_name};
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{AwsCtx, Failure, call_failed};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult, Reads, TypedProvider, Update, typed};
use crate::model::{Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, HttpTokensState, InstanceMetadataOptionsRequest, InstanceStateName, InstanceType, ResourceType,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub const TYPE: &str = "aws:ec2:Instance";
pub const IMAGE_LOOKUP: &str = "aws:ec2:ImageLookup";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceInputs<R = String, L = Vec<String>> {
    pub image_id: R,
    pub instance_type: String,
    pub subnet_id: R,
    pub security_group_ids: L,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceOutputs {
    pub id: String,
    #[serde(default)]
    pub public_ip: String,
    #[serde(default)]
    pub private_ip: String,
}

/// A declared instance.
#[derive(Clone, Debug)]
pub struct InstanceRef {
    urn: Urn,
}

impl InstanceRef {
    outputs!(urn => id: String, public_ip: String);
}

/// Declares an instance (the builders that use it check their own settings).
pub(crate) fn declare(
    s: &mut Stack,
    name: &str,
    inputs: InstanceInputs<Output<String>, Output<Vec<String>>>,
) -> InstanceRef {
    let mut c = crate::model::Checker::new(s.urn(TYPE, name));
    check_tags(&mut c, &inputs.tags);
    s.report(c.into_errors());
    let inputs = InstanceInputs { tags: with_name(&inputs.tags, name), ..inputs };
    InstanceRef { urn: s.declare(provider(), name, inputs, vec![]) }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(InstanceProvider)
}

pub struct InstanceProvider;

type Item = aws_sdk_ec2::types::Instance;

fn state(i: &Item) -> Option<&InstanceStateName> {
    i.state().and_then(|s| s.name())
}

impl InstanceProvider {
    /// Waits until the instance is running (or, with `gone`, terminated or absent).
    async fn wait(&self, ctx: &Ctx, id: &str, gone: bool) -> ProviderResult<()> {
        let check = || async {
            let request = ctx.aws()?.ec2.describe_instances().filters(super::filter("instance-id", [id]));
            let all: Vec<aws_sdk_ec2::types::Reservation> =
                super::describe_all!(request, "DescribeInstances", reservations);
            let now = all.iter().flat_map(|r| r.instances()).next().and_then(state).cloned();
            match (gone, now) {
                (false, Some(InstanceStateName::Running)) => Ok(Poll::Ready(())),
                (true, None | Some(InstanceStateName::Terminated)) => Ok(Poll::Ready(())),
                (false, Some(s @ (InstanceStateName::Terminated | InstanceStateName::ShuttingDown))) => {
                    Err(ProviderError(format!("instance {id} is {} right after it was started", s.as_str())))
                }
                (_, now) => {
                    Ok(Poll::Waiting(now.map(|s| s.as_str().to_string()).unwrap_or_else(|| "not listed".into())))
                }
            }
        };
        poll_until(Duration::from_secs(600), Duration::from_secs(3), check, |last| {
            format!(
                "instance {id}: not {} after 10 minutes (still {last})",
                if gone { "terminated" } else { "running" }
            )
        })
        .await
    }
}

#[async_trait]
impl TaggedResource for InstanceProvider {
    resource_type!(TYPE, InstanceInputs => InstanceOutputs, item Item { id: instance_id }, create "RunInstances",
        replace_on &["image_id", "instance_type", "subnet_id", "key_name"],
        import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        i: &InstanceInputs,
    ) -> Result<InstanceOutputs, Failure> {
        let r = super::send_once!(
            ec2.run_instances()
                .min_count(1)
                .max_count(1)
                .image_id(&i.image_id)
                .instance_type(InstanceType::from(i.instance_type.as_str()))
                .subnet_id(&i.subnet_id)
                .set_security_group_ids(Some(i.security_group_ids.clone()))
                .set_key_name(i.key_name.clone())
                .metadata_options(
                    InstanceMetadataOptionsRequest::builder()
                        .http_tokens(HttpTokensState::Required)
                        .http_put_response_hop_limit(1)
                        .build(),
                )
                .tag_specifications(tag_specification(ResourceType::Instance, ctx, urn, &i.tags))
        )?;
        let id = r.instances().first().and_then(|x| x.instance_id()).unwrap_or_default();
        Ok(InstanceOutputs { id: id.to_string(), public_ip: String::new(), private_ip: String::new() })
    }

    async fn after_create(&self, ctx: &Ctx, _: &InstanceInputs, out: &InstanceOutputs) -> ProviderResult<()> {
        self.wait(ctx, &out.id, false).await
    }

    /// With its addresses, which the create answer lacks.
    async fn settled(&self, ctx: &Ctx, out: InstanceOutputs) -> ProviderResult<InstanceOutputs> {
        let found = self.describe(ctx, vec![super::filter("instance-id", [out.id.as_str()])]).await?;
        match found.first() {
            Some(i) => Ok(self.observe(ctx, i).await?.1),
            None => Ok(out),
        }
    }

    /// Security groups change in place.
    async fn update_more(
        &self,
        ctx: &Ctx,
        old: &InstanceInputs,
        out: &InstanceOutputs,
        new: &InstanceInputs,
    ) -> ProviderResult<()> {
        if old.security_group_ids != new.security_group_ids {
            ctx.aws()?
                .ec2
                .modify_instance_attribute()
                .instance_id(&out.id)
                .set_groups(Some(new.security_group_ids.clone()))
                .send()
                .await
                .map_err(|e| call_failed("ModifyInstanceAttribute", e))?;
        }
        Ok(())
    }

    /// Terminates and waits until it is gone (its interface holds the security group until then).
    async fn delete(&self, ctx: &Ctx, _: &InstanceInputs, out: &InstanceOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        super::delete_idempotent("TerminateInstances", || ec2.terminate_instances().instance_ids(&out.id).send())
            .await?;
        self.wait(ctx, &out.id, true).await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Item>> {
        let request = ctx.aws()?.ec2.describe_instances().set_filters(Some(filters));
        let all: Vec<aws_sdk_ec2::types::Reservation> =
            super::describe_all!(request, "DescribeInstances", reservations);
        Ok(all
            .iter()
            .flat_map(|r| r.instances().iter().cloned())
            .filter(|i| !matches!(state(i), Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)))
            .collect())
    }

    async fn observe(&self, _: &Ctx, i: &Item) -> ProviderResult<(InstanceInputs, InstanceOutputs)> {
        let mut groups: Vec<String> =
            i.security_groups().iter().filter_map(|g| g.group_id().map(String::from)).collect();
        groups.sort();
        let inputs = InstanceInputs {
            image_id: i.image_id().unwrap_or_default().to_string(),
            instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            subnet_id: i.subnet_id().unwrap_or_default().to_string(),
            security_group_ids: groups,
            key_name: i.key_name().map(String::from),
            tags: user_tags(i.tags()),
        };
        let outputs = InstanceOutputs {
            id: i.instance_id().unwrap_or_default().to_string(),
            public_ip: i.public_ip_address().unwrap_or_default().to_string(),
            private_ip: i.private_ip_address().unwrap_or_default().to_string(),
        };
        Ok((inputs, outputs))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageLookupInputs {
    /// `amazon`.
    pub owner: String,
    /// A name pattern: `al2023-ami-2023.*-x86_64`.
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageLookupOutputs {
    pub image_id: String,
    pub image_name: String,
    /// What was looked up (read back as the inputs).
    pub looked_up: ImageLookupInputs,
}

/// The newest Amazon Linux 2023 image for x86-64 (looked up at the first deploy, then kept).
pub(crate) fn amazon_linux(s: &mut Stack, name: &str) -> Output<String> {
    let inputs = ImageLookupInputs { owner: "amazon".into(), name: "al2023-ami-2023.*-x86_64".into() };
    Output::reference(s.declare(image_lookup_provider(), name, inputs, vec![]), "image_id")
}

pub fn image_lookup_provider() -> Arc<dyn Provider> {
    typed(ImageLookupProvider)
}

/// Looks an image up; owns nothing (delete forgets it).
pub struct ImageLookupProvider;

#[async_trait]
impl TypedProvider for ImageLookupProvider {
    resource_type!(IMAGE_LOOKUP, ImageLookupInputs => ImageLookupOutputs,
        replace_on &["owner", "name"], import Import::Never("a read of an AMI id, not a resource"));

    async fn create(&self, ctx: &Ctx, _: &Urn, i: &ImageLookupInputs) -> ProviderResult<ImageLookupOutputs> {
        let request = ctx
            .aws()?
            .ec2
            .describe_images()
            .owners(&i.owner)
            .filters(super::filter("name", [i.name.replace(".*", "*").as_str()]))
            .filters(super::filter("state", ["available"]));
        let images: Vec<aws_sdk_ec2::types::Image> = super::describe_all!(request, "DescribeImages", images);
        let newest =
            images.iter().max_by_key(|im| im.creation_date().unwrap_or_default().to_string()).ok_or_else(|| {
                ProviderError(format!("no available image of owner {} is named {}: check the region", i.owner, i.name))
            })?;
        Ok(ImageLookupOutputs {
            image_id: newest.image_id().unwrap_or_default().to_string(),
            image_name: newest.name().unwrap_or_default().to_string(),
            looked_up: i.clone(),
        })
    }

    async fn update(&self, ctx: &Ctx, urn: &Urn, change: Update<'_, Self>) -> ProviderResult<ImageLookupOutputs> {
        self.create(ctx, urn, change.new).await
    }

    async fn delete(&self, _: &Ctx, _: &Urn, _: &ImageLookupInputs, _: &ImageLookupOutputs) -> ProviderResult<()> {
        Ok(())
    }

    /// The recorded image: a lookup is not redone on refresh.
    async fn read_many(&self, _: &Ctx, items: &[(Urn, ImageLookupOutputs)]) -> Reads<Self> {
        Ok(items.iter().map(|(_, o)| Some((o.looked_up.clone(), o.clone()))).collect())
    }

    async fn find(&self, _: &Ctx, _: &Urn, _: &ImageLookupInputs) -> ProviderResult<Option<ImageLookupOutputs>> {
        Ok(None)
    }
}
