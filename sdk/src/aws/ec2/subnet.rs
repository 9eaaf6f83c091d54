//! `aws:ec2:Subnet`.

use super::delete_idempotent;
use super::tagged::TaggedResource;
use super::vpc::VpcRef;
use super::{Tags, check_cidr, check_tags, tag_specification, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::{Failure, call_failed};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderResult};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:Subnet";

/// A subnet of a VPC in one availability zone.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::Vpc;
/// let mut s = Stack::new("demo");
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// let a = Subnet::builder().name("public-a").vpc(&vpc).cidr("10.0.0.0/24").zone("us-east-2a")
///     .public(true).build().add(&mut s).unwrap();
/// // A second subnet over the same addresses is reported when the stack is finished.
/// Subnet::builder().name("clash").vpc(&vpc).cidr("10.0.0.128/25").zone("us-east-2b")
///     .build().add(&mut s).unwrap();
/// let errors = s.finish().err().unwrap();
/// assert!(errors.to_string().contains("overlaps"));
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Subnet<'a> {
    #[builder(setter(into))]
    name: String,
    vpc: &'a VpcRef,
    /// IPv4 block inside the VPC's, /16 to /28.
    #[builder(setter(into))]
    cidr: String,
    /// Availability zone name, such as `us-east-2a` (or one chosen at apply, see
    /// [`super::AvailabilityZones`]).
    #[builder(setter(into))]
    zone: Output<String>,
    /// Give instances launched here a public IPv4 address.
    #[builder(default = false)]
    public: bool,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetInputs<R = String> {
    pub vpc_id: R,
    pub cidr_block: String,
    pub availability_zone: R,
    pub map_public_ip_on_launch: bool,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetOutputs {
    pub id: String,
    pub arn: String,
}

/// A declared subnet.
#[derive(Clone, Debug)]
pub struct SubnetRef {
    urn: Urn,
    vpc: Urn,
    zone: Output<String>,
}

impl SubnetRef {
    outputs!(urn => id: String);

    /// The availability zone.
    pub fn zone(&self) -> Output<String> {
        self.zone.clone()
    }

    /// The VPC this subnet is in.
    pub fn vpc_urn(&self) -> &Urn {
        &self.vpc
    }
}

/// The subnets declared per VPC, to report overlaps as they are added.
#[derive(Default)]
struct SubnetIndex(HashMap<Urn, Vec<(ipnet::Ipv4Net, Urn)>>);

fn valid_zone(zone: &str) -> bool {
    // `us-east-2a`, `eu-central-1b`, `us-gov-west-1a`, local zones `us-east-1-bos-1a`.
    let parts: Vec<&str> = zone.split('-').collect();
    parts.len() >= 3
        && zone.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && zone.ends_with(|c: char| c.is_ascii_lowercase())
        && zone[..zone.len() - 1].ends_with(|c: char| c.is_ascii_digit())
}

impl Subnet<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<SubnetRef> {
        let urn = s.urn(TYPE, &self.name);
        let mut c = Checker::new(urn.clone());
        let net = check_cidr(&mut c, "cidr", &self.cidr, 16, 28);
        if let Some(zone) = self.zone.known_value() {
            c.require(
                valid_zone(&zone),
                "zone",
                format!("`{zone}` is not an availability zone name"),
                "use a zone name such as `us-east-2a` (`aws ec2 describe-availability-zones` lists them)",
            );
        }
        check_tags(&mut c, &self.tags);
        if let (Some(net), Some(vpc_net)) = (net, self.vpc.cidr()) {
            c.require(
                vpc_net.contains(&net),
                "cidr",
                format!("`{net}` is outside VPC \"{}\" ({vpc_net})", self.vpc.urn().name()),
                format!("choose a block inside {vpc_net}"),
            );
        }
        if let Some(net) = net {
            let index = s.extension::<SubnetIndex>().0.entry(self.vpc.urn().clone()).or_default();
            let clash = index.iter().find(|(other, _)| other.contains(&net) || net.contains(other)).cloned();
            if let Some((other, other_urn)) = clash {
                c.error(
                    "cidr",
                    format!("`{net}` overlaps subnet \"{}\" ({other}) in the same VPC", other_urn.name()),
                    "give each subnet of a VPC its own, non-overlapping block",
                );
            } else {
                index.push((net, urn.clone()));
            }
        }
        s.report(c.into_errors());
        let inputs = SubnetInputs {
            vpc_id: self.vpc.id(),
            cidr_block: self.cidr.clone(),
            availability_zone: self.zone.clone(),
            map_public_ip_on_launch: self.public,
            tags: with_name(&self.tags, &self.name),
        };
        let urn = s.declare(provider(), &self.name, inputs, vec![]);
        Ok(SubnetRef { urn, vpc: self.vpc.urn().clone(), zone: self.zone })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(SubnetProvider)
}

pub struct SubnetProvider;

impl SubnetProvider {
    async fn set_public(&self, ctx: &Ctx, id: &str, on: bool) -> ProviderResult<()> {
        ctx.aws()?
            .ec2
            .modify_subnet_attribute()
            .subnet_id(id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
            .send()
            .await
            .map_err(|e| call_failed("ModifySubnetAttribute", e))?;
        Ok(())
    }
}

fn outputs(s: &aws_sdk_ec2::types::Subnet) -> SubnetOutputs {
    SubnetOutputs {
        id: s.subnet_id().unwrap_or_default().to_string(),
        arn: s.subnet_arn().unwrap_or_default().to_string(),
    }
}

#[async_trait]
impl TaggedResource for SubnetProvider {
    resource_type!(TYPE, SubnetInputs => SubnetOutputs,
        item aws_sdk_ec2::types::Subnet { id: subnet_id }, create "CreateSubnet",
        replace_on &["vpc_id", "cidr_block", "availability_zone"], import Import::ById);
    const ID_FILTER: Option<&'static str> = Some("subnet-id");

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &SubnetInputs,
    ) -> Result<SubnetOutputs, Failure> {
        let r = super::send_once!(
            ec2.create_subnet()
                .vpc_id(&inputs.vpc_id)
                .cidr_block(&inputs.cidr_block)
                .availability_zone(&inputs.availability_zone)
                .tag_specifications(tag_specification(ResourceType::Subnet, ctx, urn, &inputs.tags))
        )?;
        Ok(r.subnet().map(outputs).unwrap_or(SubnetOutputs { id: String::new(), arn: String::new() }))
    }

    async fn after_create(&self, ctx: &Ctx, inputs: &SubnetInputs, out: &SubnetOutputs) -> ProviderResult<()> {
        if inputs.map_public_ip_on_launch {
            self.set_public(ctx, &out.id, true).await?;
        }
        Ok(())
    }

    async fn update_more(
        &self,
        ctx: &Ctx,
        old: &SubnetInputs,
        out: &SubnetOutputs,
        new: &SubnetInputs,
    ) -> ProviderResult<()> {
        if old.map_public_ip_on_launch != new.map_public_ip_on_launch {
            self.set_public(ctx, &out.id, new.map_public_ip_on_launch).await?;
        }
        Ok(())
    }

    async fn delete(&self, ctx: &Ctx, _: &SubnetInputs, out: &SubnetOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("DeleteSubnet", || ec2.delete_subnet().subnet_id(&out.id).send()).await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        let request = ctx.aws()?.ec2.describe_subnets().set_filters(Some(filters));
        Ok(super::describe_all!(request, "DescribeSubnets", subnets))
    }

    async fn observe(&self, _: &Ctx, s: &Self::Item) -> ProviderResult<(SubnetInputs, SubnetOutputs)> {
        let inputs = SubnetInputs {
            vpc_id: s.vpc_id().unwrap_or_default().to_string(),
            cidr_block: s.cidr_block().unwrap_or_default().to_string(),
            availability_zone: s.availability_zone().unwrap_or_default().to_string(),
            map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
            tags: user_tags(s.tags()),
        };
        Ok((inputs, outputs(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_zone;

    #[test]
    fn zone_names() {
        for ok in ["us-east-2a", "eu-central-1b", "us-gov-west-1a", "us-east-1-bos-1a"] {
            assert!(valid_zone(ok), "{ok}");
        }
        for bad in ["us-east-2", "a", "US-EAST-2A", "use2-az1", "us-east-2ab"] {
            assert!(!valid_zone(bad), "{bad}");
        }
    }
}
