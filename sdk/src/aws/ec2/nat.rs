//! `aws:ec2:ElasticIp` and `aws:ec2:NatGateway`: outbound internet access for private subnets.

use super::subnet::SubnetRef;
use super::tagged::TaggedResource;
use super::{Tags, check_tags, delete_idempotent, describe_all, is_not_found, tag_specification, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{Failure, call_failed, error_code};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult};
use crate::model::{Checker, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{DomainType, Filter, NatGatewayState, ResourceType};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const EIP: &str = "aws:ec2:ElasticIp";
pub const NAT: &str = "aws:ec2:NatGateway";

/// How long a NAT gateway may take to become available, or to be deleted.
const NAT_WAIT: Duration = Duration::from_secs(15 * 60);

/// A public IPv4 address for a NAT gateway.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::{ElasticIp, NatGateway, Vpc};
/// let mut s = Stack::new("demo");
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// let public = Subnet::builder().name("public-a").vpc(&vpc).cidr("10.0.0.0/24").zone("us-east-2a").public(true).build().add(&mut s).unwrap();
/// let ip = ElasticIp::builder().name("nat-a").build().add(&mut s).unwrap();
/// NatGateway::builder().name("a").subnet(&public).address(&ip).build().add(&mut s).unwrap();
/// assert_eq!(s.finish().unwrap().nodes().len(), 4);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct ElasticIp {
    #[builder(setter(into))]
    name: String,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElasticIpInputs {
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElasticIpOutputs {
    pub allocation_id: String,
    pub public_ip: String,
}

#[derive(Clone, Debug)]
pub struct ElasticIpRef {
    urn: Urn,
}

impl ElasticIpRef {
    outputs!(urn => allocation_id: String, public_ip: String);
}

impl ElasticIp {
    pub fn add(self, s: &mut Stack) -> crate::Result<ElasticIpRef> {
        let mut c = Checker::new(s.urn(EIP, &self.name));
        check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let inputs = ElasticIpInputs { tags: with_name(&self.tags, &self.name) };
        Ok(ElasticIpRef { urn: s.declare(eip_provider(), &self.name, inputs, vec![]) })
    }
}

pub fn eip_provider() -> Arc<dyn Provider> {
    super::tagged::provider(ElasticIpProvider)
}

pub struct ElasticIpProvider;

fn eip_outputs(a: &aws_sdk_ec2::types::Address) -> ElasticIpOutputs {
    ElasticIpOutputs {
        allocation_id: a.allocation_id().unwrap_or_default().to_string(),
        public_ip: a.public_ip().unwrap_or_default().to_string(),
    }
}

#[async_trait]
impl TaggedResource for ElasticIpProvider {
    resource_type!(EIP, ElasticIpInputs => ElasticIpOutputs,
        item aws_sdk_ec2::types::Address { allocation_id: allocation_id }, create "AllocateAddress",
        replace_on &[], import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &ElasticIpInputs,
    ) -> Result<ElasticIpOutputs, Failure> {
        let r =
            super::send_once!(ec2.allocate_address().domain(DomainType::Vpc).tag_specifications(tag_specification(
                ResourceType::ElasticIp,
                ctx,
                urn,
                &inputs.tags
            )))?;
        Ok(ElasticIpOutputs {
            allocation_id: r.allocation_id().unwrap_or_default().to_string(),
            public_ip: r.public_ip().unwrap_or_default().to_string(),
        })
    }

    async fn delete(&self, ctx: &Ctx, _: &ElasticIpInputs, out: &ElasticIpOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("ReleaseAddress", || ec2.release_address().allocation_id(&out.allocation_id).send()).await
    }

    /// DescribeAddresses has no pages.
    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        let out = ctx.aws()?.ec2.describe_addresses().set_filters(Some(filters)).send().await;
        Ok(out.map_err(|e| call_failed("DescribeAddresses", e))?.addresses().to_vec())
    }

    async fn observe(&self, _: &Ctx, a: &Self::Item) -> ProviderResult<(ElasticIpInputs, ElasticIpOutputs)> {
        Ok((ElasticIpInputs { tags: user_tags(a.tags()) }, eip_outputs(a)))
    }
}

/// A NAT gateway in a public subnet, with an Elastic IP.
#[derive(TypedBuilder, Clone, Debug)]
pub struct NatGateway<'a> {
    #[builder(setter(into))]
    name: String,
    /// A public subnet (with a route to an internet gateway).
    subnet: &'a SubnetRef,
    address: &'a ElasticIpRef,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NatGatewayInputs<R = String> {
    pub subnet_id: R,
    pub allocation_id: R,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NatGatewayOutputs {
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct NatGatewayRef {
    urn: Urn,
}

impl NatGatewayRef {
    outputs!(urn => id: String);
}

impl NatGateway<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<NatGatewayRef> {
        let mut c = Checker::new(s.urn(NAT, &self.name));
        check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let inputs = NatGatewayInputs {
            subnet_id: self.subnet.id(),
            allocation_id: self.address.allocation_id(),
            tags: with_name(&self.tags, &self.name),
        };
        Ok(NatGatewayRef { urn: s.declare(nat_provider(), &self.name, inputs, vec![]) })
    }
}

pub fn nat_provider() -> Arc<dyn Provider> {
    super::tagged::provider(NatGatewayProvider)
}

pub struct NatGatewayProvider;

impl NatGatewayProvider {
    /// Waits until the gateway is `want` (available), or gone when `want` is `None`.
    async fn wait(&self, ctx: &Ctx, id: &str, want: Option<NatGatewayState>) -> ProviderResult<()> {
        let want = &want;
        let check = || async move {
            let out = ctx.aws()?.ec2.describe_nat_gateways().nat_gateway_ids(id).send().await;
            let (state, why) = match out {
                Ok(o) => {
                    let n = o.nat_gateways().first();
                    (n.and_then(|n| n.state().cloned()), n.and_then(|n| n.failure_message()).map(str::to_string))
                }
                Err(e) if is_not_found(error_code(&e)) => (None, None),
                Err(e) => return Err(call_failed("DescribeNatGateways", e)),
            };
            match (want, &state) {
                (Some(w), Some(s)) if w == s => Ok(Poll::Ready(())),
                (None, None | Some(NatGatewayState::Deleted)) => Ok(Poll::Ready(())),
                // The SDK's `NatGatewayAvailable` waiter's failure states.
                (
                    Some(_),
                    Some(s @ (NatGatewayState::Failed | NatGatewayState::Deleting | NatGatewayState::Deleted)),
                ) => Err(ProviderError(format!(
                    "NAT gateway {id} is {} (while waiting for it to be available){}",
                    s.as_str(),
                    why.map(|w| format!(": {w}")).unwrap_or_default()
                ))),
                _ => Ok(Poll::Waiting(format!("{state:?}"))),
            }
        };
        poll_until(NAT_WAIT, Duration::from_secs(10), check, |last| {
            format!("NAT gateway {id} is still {last} after {NAT_WAIT:?}")
        })
        .await
    }
}

#[async_trait]
impl TaggedResource for NatGatewayProvider {
    resource_type!(NAT, NatGatewayInputs => NatGatewayOutputs,
        item aws_sdk_ec2::types::NatGateway { id: nat_gateway_id }, create "CreateNatGateway",
        replace_on &["subnet_id", "allocation_id"], import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &NatGatewayInputs,
    ) -> Result<NatGatewayOutputs, Failure> {
        let r = super::send_once!(
            ec2.create_nat_gateway()
                .subnet_id(&inputs.subnet_id)
                .allocation_id(&inputs.allocation_id)
                .tag_specifications(tag_specification(ResourceType::Natgateway, ctx, urn, &inputs.tags))
        )?;
        Ok(NatGatewayOutputs { id: r.nat_gateway().and_then(|n| n.nat_gateway_id()).unwrap_or_default().to_string() })
    }

    async fn after_create(&self, ctx: &Ctx, _: &NatGatewayInputs, out: &NatGatewayOutputs) -> ProviderResult<()> {
        self.wait(ctx, &out.id, Some(NatGatewayState::Available)).await
    }

    async fn delete(&self, ctx: &Ctx, _: &NatGatewayInputs, out: &NatGatewayOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("DeleteNatGateway", || ec2.delete_nat_gateway().nat_gateway_id(&out.id).send()).await?;
        // Its address and subnet are free only once it is gone.
        self.wait(ctx, &out.id, None).await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        let request = ctx.aws()?.ec2.describe_nat_gateways().set_filter(Some(filters));
        let all = describe_all!(request, "DescribeNatGateways", nat_gateways);
        // Deleted gateways stay visible for a while: they are gone.
        Ok(all
            .into_iter()
            .filter(|n| !matches!(n.state(), Some(NatGatewayState::Deleted | NatGatewayState::Deleting)))
            .collect())
    }

    async fn observe(&self, _: &Ctx, n: &Self::Item) -> ProviderResult<(NatGatewayInputs, NatGatewayOutputs)> {
        let allocation = n.nat_gateway_addresses().first().and_then(|a| a.allocation_id()).unwrap_or_default();
        let inputs = NatGatewayInputs {
            subnet_id: n.subnet_id().unwrap_or_default().to_string(),
            allocation_id: allocation.to_string(),
            tags: user_tags(n.tags()),
        };
        Ok((inputs, NatGatewayOutputs { id: n.nat_gateway_id().unwrap_or_default().to_string() }))
    }
}
