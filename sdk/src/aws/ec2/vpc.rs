//! `aws:ec2:Vpc`.

use crate::engine::provider::Import;
use super::delete_idempotent;
use super::tagged::TaggedResource;
use super::{Tags, check_cidr, check_tags, tag_specification, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::create::no_retry;
use crate::aws::{Failure, call_failed, classify};
use crate::engine::provider::{Ctx, Provider, ProviderResult};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, VpcAttributeName};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const TYPE: &str = "aws:ec2:Vpc";

/// What the provider receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VpcInputs {
    pub cidr_block: String,
    pub enable_dns_hostnames: bool,
    pub enable_dns_support: bool,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VpcOutputs {
    pub id: String,
    pub owner_id: String,
}

/// A declared VPC.
#[derive(Clone, Debug)]
pub struct VpcRef {
    urn: Urn,
    cidr: Option<ipnet::Ipv4Net>,
}

impl VpcRef {
    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    /// `vpc-…`, known after apply.
    pub fn id(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "id")
    }

    /// The CIDR block, when it was valid.
    pub fn cidr(&self) -> Option<ipnet::Ipv4Net> {
        self.cidr
    }
}

/// Validates and declares the VPC alone (DNS support and hostnames on: EKS and RDS need them);
/// [`super::Vpc`] is the builder, whose `add_alone` comes here and whose `add` builds the network on it.
pub(super) fn declare(s: &mut Stack, name: &str, cidr: &str, tags: &Tags) -> crate::Result<VpcRef> {
    let urn = s.urn(TYPE, name);
    let mut c = Checker::new(urn.clone());
    let block = check_cidr(&mut c, "cidr", cidr, 16, 28);
    check_tags(&mut c, tags);
    s.report(c.into_errors());
    let inputs = VpcInputs {
        cidr_block: cidr.to_string(),
        enable_dns_hostnames: true,
        enable_dns_support: true,
        tags: with_name(tags, name),
    };
    let urn = s.declare(provider(), name, inputs, vec![]);
    Ok(VpcRef { urn, cidr: block })
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(VpcProvider)
}

pub struct VpcProvider;

async fn set_attribute(ctx: &Ctx, id: &str, attr: VpcAttributeName, on: bool) -> ProviderResult<()> {
    let ec2 = &ctx.aws()?.ec2;
    let value = AttributeBooleanValue::builder().value(on).build();
    let req = ec2.modify_vpc_attribute().vpc_id(id);
    let req = match attr {
        VpcAttributeName::EnableDnsHostnames => req.enable_dns_hostnames(value),
        _ => req.enable_dns_support(value),
    };
    req.send().await.map_err(|e| call_failed("ModifyVpcAttribute", e))?;
    Ok(())
}

async fn get_attribute(ctx: &Ctx, id: &str, attr: VpcAttributeName) -> ProviderResult<bool> {
    let out = ctx
        .aws()?
        .ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(attr.clone())
        .send()
        .await
        .map_err(|e| call_failed("DescribeVpcAttribute", e))?;
    let v = match attr {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(v.and_then(|v| v.value()).unwrap_or(false))
}

#[async_trait]
impl TaggedResource for VpcProvider {
    type Inputs = VpcInputs;
    type Outputs = VpcOutputs;
    type Item = aws_sdk_ec2::types::Vpc;
    const TYPE: &'static str = TYPE;
    const REPLACE_ON: &'static [&'static str] = &["cidr_block"];
    const IMPORT: Import = Import::ById;
    const CREATE: &'static str = "CreateVpc";
    const ID_FILTER: Option<&'static str> = Some("vpc-id");

    async fn create_once(&self, ec2: &Client, ctx: &Ctx, urn: &Urn, inputs: &VpcInputs) -> Result<VpcOutputs, Failure> {
        let r = ec2
            .create_vpc()
            .cidr_block(&inputs.cidr_block)
            .tag_specifications(tag_specification(ResourceType::Vpc, ctx, urn, &inputs.tags))
            .customize()
            .config_override(no_retry())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let vpc = r.vpc().cloned().unwrap_or_else(|| aws_sdk_ec2::types::Vpc::builder().build());
        Ok(outputs(&vpc))
    }

    async fn after_create(&self, ctx: &Ctx, inputs: &VpcInputs, out: &VpcOutputs) -> ProviderResult<()> {
        if inputs.enable_dns_hostnames {
            set_attribute(ctx, &out.id, VpcAttributeName::EnableDnsHostnames, true).await?;
        }
        if !inputs.enable_dns_support {
            set_attribute(ctx, &out.id, VpcAttributeName::EnableDnsSupport, false).await?;
        }
        Ok(())
    }

    async fn update_more(&self, ctx: &Ctx, old: &VpcInputs, out: &VpcOutputs, new: &VpcInputs) -> ProviderResult<()> {
        if old.enable_dns_support != new.enable_dns_support {
            set_attribute(ctx, &out.id, VpcAttributeName::EnableDnsSupport, new.enable_dns_support).await?;
        }
        if old.enable_dns_hostnames != new.enable_dns_hostnames {
            set_attribute(ctx, &out.id, VpcAttributeName::EnableDnsHostnames, new.enable_dns_hostnames).await?;
        }
        Ok(())
    }

    async fn delete(&self, ctx: &Ctx, _: &VpcInputs, out: &VpcOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("DeleteVpc", || ec2.delete_vpc().vpc_id(&out.id).send()).await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        Ok(super::describe_all!(ctx.aws()?.ec2.describe_vpcs().set_filters(Some(filters)), "DescribeVpcs", vpcs))
    }

    /// The DNS attributes are not in DescribeVpcs: two more calls.
    async fn observe(&self, ctx: &Ctx, vpc: &Self::Item) -> ProviderResult<(VpcInputs, VpcOutputs)> {
        let out = outputs(vpc);
        let inputs = VpcInputs {
            cidr_block: vpc.cidr_block().unwrap_or_default().to_string(),
            enable_dns_hostnames: get_attribute(ctx, &out.id, VpcAttributeName::EnableDnsHostnames).await?,
            enable_dns_support: get_attribute(ctx, &out.id, VpcAttributeName::EnableDnsSupport).await?,
            tags: user_tags(vpc.tags()),
        };
        Ok((inputs, out))
    }

    fn id(out: &VpcOutputs) -> &str {
        &out.id
    }

    fn item_id(vpc: &Self::Item) -> Option<&str> {
        vpc.vpc_id()
    }

    fn tags(inputs: &VpcInputs) -> &Tags {
        &inputs.tags
    }
}

fn outputs(vpc: &aws_sdk_ec2::types::Vpc) -> VpcOutputs {
    VpcOutputs {
        id: vpc.vpc_id().unwrap_or_default().to_string(),
        owner_id: vpc.owner_id().unwrap_or_default().to_string(),
    }
}
