//! `aws:ec2:VpcPeeringConnection`: a peering between two VPCs of this account and region,
//! requested and accepted in one step. A peering of another account or region would need the other
//! side to accept it; that is not offered.

use super::tagged::TaggedResource;
use super::{Tags, check_tags, delete_idempotent, tag_specification, user_tags, with_name};
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{AwsCtx, Failure, call_failed};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, ResourceType, VpcPeeringConnectionStateReasonCode as Status};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:VpcPeeringConnection";

/// A peering connection between two VPCs (routes are separate: see
/// [`super::VpcPeering`], which adds them on both sides).
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::{Vpc, VpcPeeringConnection};
/// let mut s = Stack::new("demo");
/// let a = Vpc::builder().name("a").cidr("10.1.0.0/16").build().add_alone(&mut s).unwrap();
/// let b = Vpc::builder().name("b").cidr("10.2.0.0/16").build().add_alone(&mut s).unwrap();
/// VpcPeeringConnection::builder().name("a-b").vpc(a.id()).peer_vpc(b.id()).build().add(&mut s).unwrap();
/// assert_eq!(s.finish().unwrap().nodes().len(), 3);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct VpcPeeringConnection {
    #[builder(setter(into))]
    name: String,
    /// The requesting VPC's id.
    vpc: Output<String>,
    /// The accepting VPC's id (this stack's, or another stack's through a stack reference).
    peer_vpc: Output<String>,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeeringInputs<R = String> {
    pub vpc_id: R,
    pub peer_vpc_id: R,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeeringOutputs {
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct VpcPeeringRef {
    urn: Urn,
}

impl VpcPeeringRef {
    outputs!(urn => id: String);
}

impl VpcPeeringConnection {
    pub fn add(self, s: &mut Stack) -> crate::Result<VpcPeeringRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let inputs =
            PeeringInputs { vpc_id: self.vpc, peer_vpc_id: self.peer_vpc, tags: with_name(&self.tags, &self.name) };
        Ok(VpcPeeringRef { urn: s.declare(provider(), &self.name, inputs, vec![]) })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(PeeringProvider)
}

pub struct PeeringProvider;

type Item = aws_sdk_ec2::types::VpcPeeringConnection;

fn status(p: &Item) -> Option<&Status> {
    p.status().and_then(|s| s.code())
}

/// Whether the connection is gone for good (deleted, rejected, failed or expired: EC2 lists those
/// for a while).
fn finished(p: &Item) -> bool {
    matches!(status(p), Some(Status::Deleted | Status::Deleting | Status::Rejected | Status::Failed | Status::Expired))
}

impl PeeringProvider {
    /// The connection in whatever state (a failed one too, with its reason).
    async fn describe_one(&self, ctx: &Ctx, id: &str) -> ProviderResult<Option<Item>> {
        let filters = vec![super::filter("vpc-peering-connection-id", [id])];
        let request = ctx.aws()?.ec2.describe_vpc_peering_connections().set_filters(Some(filters));
        let all: Vec<Item> = super::describe_all!(request, "DescribeVpcPeeringConnections", vpc_peering_connections);
        Ok(all.into_iter().next())
    }
}

#[async_trait]
impl TaggedResource for PeeringProvider {
    resource_type!(TYPE, PeeringInputs => PeeringOutputs,
        item Item { id: vpc_peering_connection_id }, create "CreateVpcPeeringConnection",
        replace_on &["vpc_id", "peer_vpc_id"], import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &PeeringInputs,
    ) -> Result<PeeringOutputs, Failure> {
        let r = super::send_once!(
            ec2.create_vpc_peering_connection()
                .vpc_id(&inputs.vpc_id)
                .peer_vpc_id(&inputs.peer_vpc_id)
                .tag_specifications(tag_specification(ResourceType::VpcPeeringConnection, ctx, urn, &inputs.tags))
        )?;
        let id = r.vpc_peering_connection().and_then(|p| p.vpc_peering_connection_id()).unwrap_or_default();
        Ok(PeeringOutputs { id: id.to_string() })
    }

    /// Accepts the request (both VPCs are this account's) and waits until it is active.
    async fn after_create(&self, ctx: &Ctx, _: &PeeringInputs, out: &PeeringOutputs) -> ProviderResult<()> {
        let check = || async {
            let Some(p) = self.describe_one(ctx, &out.id).await? else {
                return Err(ProviderError(format!("VPC peering {}: gone right after it was requested", out.id)));
            };
            match status(&p) {
                Some(Status::Active) => return Ok(Poll::Ready(())),
                Some(Status::PendingAcceptance) => {
                    ctx.aws()?
                        .ec2
                        .accept_vpc_peering_connection()
                        .vpc_peering_connection_id(&out.id)
                        .send()
                        .await
                        .map_err(|e| call_failed("AcceptVpcPeeringConnection", e))?;
                }
                Some(s) if finished(&p) => {
                    let why = p.status().and_then(|s| s.message()).unwrap_or_default();
                    return Err(ProviderError(format!(
                        "VPC peering {}: {} ({why}); the VPCs' blocks must not overlap, and both must be in this account and region",
                        out.id,
                        s.as_str()
                    )));
                }
                _ => {}
            }
            Ok(Poll::Waiting(status(&p).map(|s| s.as_str().to_string()).unwrap_or_default()))
        };
        poll_until(Duration::from_secs(300), Duration::from_secs(2), check, |last| {
            format!("VPC peering {}: not active after 5 minutes (still {last})", out.id)
        })
        .await
    }

    async fn delete(&self, ctx: &Ctx, _: &PeeringInputs, out: &PeeringOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("DeleteVpcPeeringConnection", || {
            ec2.delete_vpc_peering_connection().vpc_peering_connection_id(&out.id).send()
        })
        .await
    }

    /// The connections the filters match that still exist.
    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Item>> {
        let request = ctx.aws()?.ec2.describe_vpc_peering_connections().set_filters(Some(filters));
        let all: Vec<Item> = super::describe_all!(request, "DescribeVpcPeeringConnections", vpc_peering_connections);
        Ok(all.into_iter().filter(|p| !finished(p)).collect())
    }

    async fn observe(&self, _: &Ctx, p: &Item) -> ProviderResult<(PeeringInputs, PeeringOutputs)> {
        let inputs = PeeringInputs {
            vpc_id: p.requester_vpc_info().and_then(|v| v.vpc_id()).unwrap_or_default().to_string(),
            peer_vpc_id: p.accepter_vpc_info().and_then(|v| v.vpc_id()).unwrap_or_default().to_string(),
            tags: user_tags(p.tags()),
        };
        Ok((inputs, PeeringOutputs { id: p.vpc_peering_connection_id().unwrap_or_default().to_string() }))
    }
}
