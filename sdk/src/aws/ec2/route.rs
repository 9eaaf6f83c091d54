//! `aws:ec2:Route`: one route of a route table. Untaggable: found by its natural key (route table,
//! destination).

use super::internet_gateway::InternetGatewayRef;
use super::nat::NatGatewayRef;
use super::peering::VpcPeeringRef;
use super::route_table::{RouteTableRef, describe_route_tables};
use super::{check_cidr, filter, is_not_found};
use crate::aws::AwsCtx;
use crate::aws::create::create_or_find;
use crate::aws::found;
use crate::aws::{call_failed, classify, error_code};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderResult, Reads, TypedProvider, Update, typed};
use crate::model::{Checker, Stack, Urn};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:Route";

/// A route to an internet gateway.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::Vpc;
/// let mut s = Stack::new("demo");
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// let igw = InternetGateway::builder().name("main").vpc(&vpc).build().add(&mut s).unwrap();
/// let rt = RouteTable::builder().name("public").vpc(&vpc).build().add(&mut s).unwrap();
/// Route::builder().name("public-default").route_table(&rt).destination("0.0.0.0/0").gateway(&igw)
///     .build().add(&mut s).unwrap();
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Route<'a> {
    #[builder(setter(into))]
    name: String,
    route_table: &'a RouteTableRef,
    /// Destination IPv4 block (`0.0.0.0/0` for the default route).
    #[builder(setter(into))]
    destination: String,
    /// Target: an internet gateway …
    #[builder(default, setter(strip_option))]
    gateway: Option<&'a InternetGatewayRef>,
    /// … or a NAT gateway …
    #[builder(default, setter(strip_option))]
    nat_gateway: Option<&'a NatGatewayRef>,
    /// … or a VPC peering connection (give exactly one).
    #[builder(default, setter(strip_option))]
    peering: Option<&'a VpcPeeringRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteInputs<R = String> {
    pub route_table_id: R,
    pub destination_cidr_block: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<R>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<R>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_peering_connection_id: Option<R>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteOutputs {
    /// `<route table id>_<destination>`, like Terraform's import id.
    pub id: String,
    pub route_table_id: String,
    pub destination_cidr_block: String,
}

#[derive(Clone, Debug)]
pub struct RouteRef {
    urn: Urn,
}

impl RouteRef {
    pub fn urn(&self) -> &Urn {
        &self.urn
    }
}

impl Route<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<RouteRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        check_cidr(&mut c, "destination", &self.destination, 0, 32);
        let targets = [self.gateway.is_some(), self.nat_gateway.is_some(), self.peering.is_some()];
        c.require(
            targets.iter().filter(|t| **t).count() == 1,
            "target",
            "a route needs exactly one target: `gateway`, `nat_gateway` or `peering`",
            "give one of them",
        );
        s.report(c.into_errors());
        let inputs = RouteInputs {
            route_table_id: self.route_table.id(),
            destination_cidr_block: self.destination.clone(),
            gateway_id: self.gateway.map(|g| g.id()),
            nat_gateway_id: self.nat_gateway.map(|n| n.id()),
            vpc_peering_connection_id: self.peering.map(|p| p.id()),
        };
        Ok(RouteRef { urn: s.declare(provider(), &self.name, inputs, vec![]) })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    typed(RouteProvider)
}

pub struct RouteProvider;

fn outputs(inputs: &RouteInputs) -> RouteOutputs {
    RouteOutputs {
        id: format!("{}_{}", inputs.route_table_id, inputs.destination_cidr_block),
        route_table_id: inputs.route_table_id.clone(),
        destination_cidr_block: inputs.destination_cidr_block.clone(),
    }
}

/// The route to `destination` in table `table_id` as its inputs, if the route exists.
fn route_inputs(tables: &[aws_sdk_ec2::types::RouteTable], table_id: &str, destination: &str) -> Option<RouteInputs> {
    let t = tables.iter().find(|t| t.route_table_id() == Some(table_id))?;
    let r = t.routes().iter().find(|r| r.destination_cidr_block() == Some(destination))?;
    Some(RouteInputs {
        route_table_id: table_id.to_string(),
        destination_cidr_block: destination.to_string(),
        gateway_id: r.gateway_id().map(str::to_string),
        nat_gateway_id: r.nat_gateway_id().map(str::to_string),
        vpc_peering_connection_id: r.vpc_peering_connection_id().map(str::to_string),
    })
}

#[async_trait]
impl TypedProvider for RouteProvider {
    resource_type!(TYPE, RouteInputs => RouteOutputs,
        replace_on &["route_table_id", "destination_cidr_block"],
        import Import::Never("a route of a route table, found again by its table and destination"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &RouteInputs) -> ProviderResult<RouteOutputs> {
        let ec2 = &ctx.aws()?.ec2;
        create_or_find(
            "CreateRoute",
            Duration::from_millis(500),
            || async {
                let sent = super::send_once!(
                    unclassified ec2
                        .create_route()
                        .route_table_id(&inputs.route_table_id)
                        .destination_cidr_block(&inputs.destination_cidr_block)
                        .set_gateway_id(inputs.gateway_id.clone())
                        .set_nat_gateway_id(inputs.nat_gateway_id.clone())
                        .set_vpc_peering_connection_id(inputs.vpc_peering_connection_id.clone())
                );
                match sent {
                    Ok(_) => Ok(outputs(inputs)),
                    Err(e) if error_code(&e) == Some("RouteAlreadyExists") => match self.find(ctx, urn, inputs).await {
                        Ok(Some(found)) => Ok(found),
                        _ => Err(classify(&e)),
                    },
                    Err(e) => Err(classify(&e)),
                }
            },
            || self.find(ctx, urn, inputs),
        )
        .await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<RouteOutputs> {
        let Update { outputs: out, new, .. } = change;
        ctx.aws()?
            .ec2
            .replace_route()
            .route_table_id(&new.route_table_id)
            .destination_cidr_block(&new.destination_cidr_block)
            .set_gateway_id(new.gateway_id.clone())
            .set_nat_gateway_id(new.nat_gateway_id.clone())
            .set_vpc_peering_connection_id(new.vpc_peering_connection_id.clone())
            .send()
            .await
            .map_err(|e| call_failed("ReplaceRoute", e))?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &RouteInputs, out: &RouteOutputs) -> ProviderResult<()> {
        found(
            "DeleteRoute",
            is_not_found,
            ctx.aws()?
                .ec2
                .delete_route()
                .route_table_id(&out.route_table_id)
                .destination_cidr_block(&out.destination_cidr_block)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, RouteOutputs)]) -> Reads<Self> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<&str> = items.iter().map(|(_, o)| o.route_table_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let tables = describe_route_tables(ctx, vec![filter("route-table-id", ids)]).await?;
        Ok(items
            .iter()
            .map(|(_, out)| {
                Some((route_inputs(&tables, &out.route_table_id, &out.destination_cidr_block)?, out.clone()))
            })
            .collect())
    }

    async fn find(&self, ctx: &Ctx, _: &Urn, inputs: &RouteInputs) -> ProviderResult<Option<RouteOutputs>> {
        let tables =
            describe_route_tables(ctx, vec![filter("route-table-id", [inputs.route_table_id.as_str()])]).await?;
        Ok(route_inputs(&tables, &inputs.route_table_id, &inputs.destination_cidr_block).map(|_| outputs(inputs)))
    }
}
