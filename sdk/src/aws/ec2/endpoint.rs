//! `aws:ec2:VpcEndpoint`: an interface endpoint — an AWS service (`ssm`, `ecr.api`, …) reached
//! from inside the VPC through network interfaces in its subnets, with private DNS, without NAT
//! or a public route.

use super::tagged::TaggedResource;
use super::{Tags, check_tags, tag_specification, user_tags, with_name};
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{AwsCtx, Failure, call_failed};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, ResourceType, VpcEndpointType};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:VpcEndpoint";

/// An interface endpoint of an AWS service in this region.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::{Vpc, VpcEndpoint};
/// let mut s = Stack::new("demo");
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// let a = Subnet::builder().name("a").vpc(&vpc).cidr("10.0.0.0/24").zone("us-east-2a").build().add(&mut s).unwrap();
/// let sg = SecurityGroup::builder().name("endpoints").vpc(&vpc).build().add(&mut s).unwrap();
/// VpcEndpoint::builder().name("ssm").vpc(&vpc).service("ssm").subnets(vec![a.id()]).security_groups(vec![sg.id()])
///     .build().add(&mut s).unwrap();
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct VpcEndpoint<'a> {
    #[builder(setter(into))]
    name: String,
    vpc: &'a super::VpcRef,
    /// The service's short name: `ssm`, `ssmmessages`, `ec2messages`, `ecr.api`, `sts` … (the
    /// endpoint serves `com.amazonaws.<region>.<service>`).
    #[builder(setter(into))]
    service: String,
    /// One subnet per zone the endpoint answers in.
    subnets: Vec<Output<String>>,
    security_groups: Vec<Output<String>>,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointInputs<R = String, L = Vec<String>> {
    pub vpc_id: R,
    pub service: String,
    pub subnet_ids: L,
    pub security_group_ids: L,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointOutputs {
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct VpcEndpointRef {
    urn: Urn,
}

impl VpcEndpointRef {
    outputs!(urn => id: String);
}

fn sorted(list: Vec<Output<String>>) -> Output<Vec<String>> {
    Output::all(list).map(|mut v: Vec<String>| {
        v.sort();
        v
    })
}

impl VpcEndpoint<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<VpcEndpointRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        check_tags(&mut c, &self.tags);
        c.require(
            !self.service.is_empty()
                && self
                    .service
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '.' || ch == '-'),
            "service",
            format!("`{}` is not a service's short name", self.service),
            "give the name after `com.amazonaws.<region>.`, such as `ssm`",
        );
        c.require(
            !self.subnets.is_empty(),
            "subnets",
            "an interface endpoint needs subnets",
            "give one subnet per zone",
        );
        c.require(
            !self.security_groups.is_empty(),
            "security_groups",
            "an interface endpoint without a group gets the VPC's default group, which `Vpc` closes",
            "give a group that admits HTTPS (443) from the subnets that use the endpoint",
        );
        s.report(c.into_errors());
        let inputs = EndpointInputs {
            vpc_id: self.vpc.id(),
            service: self.service,
            subnet_ids: sorted(self.subnets),
            security_group_ids: sorted(self.security_groups),
            tags: with_name(&self.tags, &self.name),
        };
        Ok(VpcEndpointRef { urn: s.declare(provider(), &self.name, inputs, vec![]) })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(EndpointProvider)
}

pub struct EndpointProvider;

type Item = aws_sdk_ec2::types::VpcEndpoint;

/// `com.amazonaws.us-east-2.ssm` → `ssm`.
fn short_service(full: &str) -> String {
    full.strip_prefix("com.amazonaws.").and_then(|r| r.split_once('.')).map(|(_, s)| s.to_string()).unwrap_or_default()
}

/// The endpoint's state in lowercase: EC2 answers `available` where the SDK's enum says
/// `Available`, so the enum's variants do not match.
fn state(e: &Item) -> Option<String> {
    e.state().map(|s| s.as_str().to_ascii_lowercase())
}

fn gone(e: &Item) -> bool {
    matches!(state(e).as_deref(), Some("deleted" | "deleting" | "rejected" | "failed" | "expired"))
}

fn difference(a: &[String], b: &[String]) -> Option<Vec<String>> {
    let d: Vec<String> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
    (!d.is_empty()).then_some(d)
}

#[async_trait]
impl TaggedResource for EndpointProvider {
    resource_type!(TYPE, EndpointInputs => EndpointOutputs,
        item Item { id: vpc_endpoint_id }, create "CreateVpcEndpoint",
        replace_on &["vpc_id", "service"], import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &EndpointInputs,
    ) -> Result<EndpointOutputs, Failure> {
        let region = ctx.aws().map(|a| a.region()).unwrap_or_default();
        let r = super::send_once!(
            ec2.create_vpc_endpoint()
                .vpc_endpoint_type(VpcEndpointType::Interface)
                .vpc_id(&inputs.vpc_id)
                .service_name(format!("com.amazonaws.{region}.{}", inputs.service))
                .set_subnet_ids(Some(inputs.subnet_ids.clone()))
                .set_security_group_ids(Some(inputs.security_group_ids.clone()))
                .private_dns_enabled(true)
                .tag_specifications(tag_specification(ResourceType::VpcEndpoint, ctx, urn, &inputs.tags))
        )?;
        Ok(EndpointOutputs { id: r.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()).unwrap_or_default().to_string() })
    }

    /// Waits until the endpoint is available (its interfaces are up).
    async fn after_create(&self, ctx: &Ctx, _: &EndpointInputs, out: &EndpointOutputs) -> ProviderResult<()> {
        let check = || async {
            // By id (the emulator answers no `vpc-endpoint-id` filter).
            let request = ctx.aws()?.ec2.describe_vpc_endpoints().vpc_endpoint_ids(&out.id);
            let found: Vec<Item> = match request.send().await {
                Ok(r) => r.vpc_endpoints().to_vec(),
                Err(e) if super::is_not_found(crate::aws::error_code(&e)) => Vec::new(),
                Err(e) => return Err(call_failed("DescribeVpcEndpoints", e)),
            };
            match found.first().and_then(state).as_deref() {
                Some("available") => Ok(Poll::Ready(())),
                Some(waiting @ ("pending" | "pendingacceptance")) => Ok(Poll::Waiting(waiting.to_string())),
                None => Ok(Poll::Waiting("not listed yet".into())),
                Some(other) => Err(ProviderError(format!("VPC endpoint {}: {other}", out.id))),
            }
        };
        poll_until(Duration::from_secs(600), Duration::from_secs(5), check, |last| {
            format!("VPC endpoint {}: not available after 10 minutes (still {last})", out.id)
        })
        .await
    }

    /// Subnets and security groups change in place.
    async fn update_more(
        &self,
        ctx: &Ctx,
        old: &EndpointInputs,
        out: &EndpointOutputs,
        new: &EndpointInputs,
    ) -> ProviderResult<()> {
        if old.subnet_ids == new.subnet_ids && old.security_group_ids == new.security_group_ids {
            return Ok(());
        }
        ctx.aws()?
            .ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(&out.id)
            .set_add_subnet_ids(difference(&new.subnet_ids, &old.subnet_ids))
            .set_remove_subnet_ids(difference(&old.subnet_ids, &new.subnet_ids))
            .set_add_security_group_ids(difference(&new.security_group_ids, &old.security_group_ids))
            .set_remove_security_group_ids(difference(&old.security_group_ids, &new.security_group_ids))
            .send()
            .await
            .map_err(|e| call_failed("ModifyVpcEndpoint", e))?;
        Ok(())
    }

    async fn delete(&self, ctx: &Ctx, _: &EndpointInputs, out: &EndpointOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        super::delete_idempotent("DeleteVpcEndpoints", || ec2.delete_vpc_endpoints().vpc_endpoint_ids(&out.id).send())
            .await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Item>> {
        let request = ctx.aws()?.ec2.describe_vpc_endpoints().set_filters(Some(filters));
        let all: Vec<Item> = super::describe_all!(request, "DescribeVpcEndpoints", vpc_endpoints);
        Ok(all.into_iter().filter(|e| !gone(e)).collect())
    }

    async fn observe(&self, _: &Ctx, e: &Item) -> ProviderResult<(EndpointInputs, EndpointOutputs)> {
        let mut subnets = e.subnet_ids().to_vec();
        subnets.sort();
        let mut groups: Vec<String> = e.groups().iter().filter_map(|g| g.group_id().map(String::from)).collect();
        groups.sort();
        let inputs = EndpointInputs {
            vpc_id: e.vpc_id().unwrap_or_default().to_string(),
            service: short_service(e.service_name().unwrap_or_default()),
            subnet_ids: subnets,
            security_group_ids: groups,
            tags: user_tags(e.tags()),
        };
        Ok((inputs, EndpointOutputs { id: e.vpc_endpoint_id().unwrap_or_default().to_string() }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn service_names_shorten() {
        assert_eq!(super::short_service("com.amazonaws.us-east-2.ssm"), "ssm");
        assert_eq!(super::short_service("com.amazonaws.eu-west-1.ecr.api"), "ecr.api");
    }
}
