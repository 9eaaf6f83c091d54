//! `aws:ec2:Vpc`, and its default security group: closed (no rule at all) unless the program
//! keeps AWS's rules, so that nothing that falls back on it is reachable or reaches anything.

use super::delete_idempotent;
use super::tagged::TaggedResource;
use super::{Tags, check_cidr, check_tags, tag_specification, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::{Failure, call_failed, error_code};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult};
use crate::model::{Checker, Stack, Urn};
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
    /// The VPC's default security group has no rules (AWS gives it "all traffic from members"
    /// and "all egress"); off: it keeps AWS's rules.
    #[serde(default)]
    pub close_default_security_group: bool,
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
    outputs!(urn =>
        /// `vpc-…`, known after apply.
        id: String,
    );

    /// The CIDR block, when it was valid.
    pub fn cidr(&self) -> Option<ipnet::Ipv4Net> {
        self.cidr
    }
}

/// Validates and declares the VPC alone (DNS support and hostnames on: EKS and RDS need them);
/// [`super::Vpc`] is the builder, whose `add_alone` comes here and whose `add` builds the network on it.
pub(super) fn declare(
    s: &mut Stack,
    name: &str,
    cidr: &str,
    close_default_group: bool,
    tags: &Tags,
) -> crate::Result<VpcRef> {
    let urn = s.urn(TYPE, name);
    let mut c = Checker::new(urn.clone());
    let block = check_cidr(&mut c, "cidr", cidr, 16, 28);
    check_tags(&mut c, tags);
    s.report(c.into_errors());
    let inputs = VpcInputs {
        cidr_block: cidr.to_string(),
        enable_dns_hostnames: true,
        enable_dns_support: true,
        close_default_security_group: close_default_group,
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

/// The VPC's default security group.
async fn default_group(ctx: &Ctx, vpc_id: &str) -> ProviderResult<aws_sdk_ec2::types::SecurityGroup> {
    let out = ctx
        .aws()?
        .ec2
        .describe_security_groups()
        .filters(super::filter("vpc-id", [vpc_id]))
        .filters(super::filter("group-name", ["default"]))
        .send()
        .await
        .map_err(|e| call_failed("DescribeSecurityGroups", e))?;
    out.security_groups()
        .first()
        .cloned()
        .ok_or_else(|| ProviderError(format!("VPC {vpc_id} has no default security group")))
}

/// Whether the default group has no rule left.
fn closed(group: &aws_sdk_ec2::types::SecurityGroup) -> bool {
    group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty()
}

/// Revokes every rule of the VPC's default group.
async fn close_default_group(ctx: &Ctx, vpc_id: &str) -> ProviderResult<()> {
    let group = default_group(ctx, vpc_id).await?;
    let (ec2, id) = (&ctx.aws()?.ec2, group.group_id().unwrap_or_default());
    if !group.ip_permissions().is_empty() {
        let call = ec2.revoke_security_group_ingress().group_id(id);
        let call = call.set_ip_permissions(Some(group.ip_permissions().to_vec()));
        call.send().await.map_err(|e| call_failed("RevokeSecurityGroupIngress", e))?;
    }
    if !group.ip_permissions_egress().is_empty() {
        let call = ec2.revoke_security_group_egress().group_id(id);
        let call = call.set_ip_permissions(Some(group.ip_permissions_egress().to_vec()));
        call.send().await.map_err(|e| call_failed("RevokeSecurityGroupEgress", e))?;
    }
    Ok(())
}

/// Gives the VPC's default group back AWS's rules: all traffic from its members, all egress.
async fn reopen_default_group(ctx: &Ctx, vpc_id: &str) -> ProviderResult<()> {
    use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};
    let group = default_group(ctx, vpc_id).await?;
    let (ec2, id) = (&ctx.aws()?.ec2, group.group_id().unwrap_or_default());
    let all = || IpPermission::builder().ip_protocol("-1");
    let duplicate = |code: Option<&str>| code == Some("InvalidPermission.Duplicate");
    if group.ip_permissions().is_empty() {
        let members = all().user_id_group_pairs(UserIdGroupPair::builder().group_id(id).build()).build();
        match ec2.authorize_security_group_ingress().group_id(id).ip_permissions(members).send().await {
            Err(e) if !duplicate(error_code(&e)) => return Err(call_failed("AuthorizeSecurityGroupIngress", e)),
            _ => {}
        }
    }
    if group.ip_permissions_egress().is_empty() {
        let anywhere = all().ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build()).build();
        match ec2.authorize_security_group_egress().group_id(id).ip_permissions(anywhere).send().await {
            Err(e) if !duplicate(error_code(&e)) => return Err(call_failed("AuthorizeSecurityGroupEgress", e)),
            _ => {}
        }
    }
    Ok(())
}

#[async_trait]
impl TaggedResource for VpcProvider {
    resource_type!(TYPE, VpcInputs => VpcOutputs, item aws_sdk_ec2::types::Vpc { id: vpc_id }, create "CreateVpc",
        replace_on &["cidr_block"], import Import::ById);
    const ID_FILTER: Option<&'static str> = Some("vpc-id");

    async fn create_once(&self, ec2: &Client, ctx: &Ctx, urn: &Urn, inputs: &VpcInputs) -> Result<VpcOutputs, Failure> {
        let r =
            super::send_once!(ec2.create_vpc().cidr_block(&inputs.cidr_block).tag_specifications(tag_specification(
                ResourceType::Vpc,
                ctx,
                urn,
                &inputs.tags
            )))?;
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
        if inputs.close_default_security_group {
            close_default_group(ctx, &out.id).await?;
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
        match (old.close_default_security_group, new.close_default_security_group) {
            (false, true) => close_default_group(ctx, &out.id).await?,
            (true, false) => reopen_default_group(ctx, &out.id).await?,
            _ => {}
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

    /// The DNS attributes and the default group are not in DescribeVpcs: three more calls.
    async fn observe(&self, ctx: &Ctx, vpc: &Self::Item) -> ProviderResult<(VpcInputs, VpcOutputs)> {
        let out = outputs(vpc);
        let inputs = VpcInputs {
            cidr_block: vpc.cidr_block().unwrap_or_default().to_string(),
            enable_dns_hostnames: get_attribute(ctx, &out.id, VpcAttributeName::EnableDnsHostnames).await?,
            enable_dns_support: get_attribute(ctx, &out.id, VpcAttributeName::EnableDnsSupport).await?,
            close_default_security_group: closed(&default_group(ctx, &out.id).await?),
            tags: user_tags(vpc.tags()),
        };
        Ok((inputs, out))
    }
}

fn outputs(vpc: &aws_sdk_ec2::types::Vpc) -> VpcOutputs {
    VpcOutputs {
        id: vpc.vpc_id().unwrap_or_default().to_string(),
        owner_id: vpc.owner_id().unwrap_or_default().to_string(),
    }
}
