//! `aws:ec2:RouteTable` and `aws:ec2:RouteTableAssociation`.

use super::delete_idempotent;
use super::subnet::SubnetRef;
use super::tagged::TaggedResource;
use super::vpc::VpcRef;
use super::{Tags, check_tags, filter, is_not_found, tag_specification, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::create::create_or_find;
use crate::aws::found;
use crate::aws::{Failure, call_failed};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderResult, Reads, TypedProvider, Update, typed};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::types::ResourceType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:RouteTable";
pub const ASSOCIATION_TYPE: &str = "aws:ec2:RouteTableAssociation";

/// A route table of a VPC.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::Vpc;
/// let mut s = Stack::new("demo");
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// let subnet = Subnet::builder().name("a").vpc(&vpc).cidr("10.0.0.0/24").zone("us-east-2a").build().add(&mut s).unwrap();
/// let rt = RouteTable::builder().name("public").vpc(&vpc).build().add(&mut s).unwrap();
/// RouteTableAssociation::builder().name("public-a").route_table(&rt).subnet(&subnet).build().add(&mut s).unwrap();
/// assert_eq!(s.finish().unwrap().nodes().len(), 4);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct RouteTable<'a> {
    #[builder(setter(into))]
    name: String,
    vpc: &'a VpcRef,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteTableInputs<R = String> {
    pub vpc_id: R,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteTableOutputs {
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct RouteTableRef {
    urn: Urn,
    vpc: Urn,
    /// The id of a table another stack owns (read through a stack reference).
    known: Option<String>,
}

impl RouteTableRef {
    /// A route table another stack owns, by the id that stack exports: routes can be added to it
    /// (they are this stack's); the table itself is never changed.
    pub fn of_other_stack(stack: &str, id: &str) -> RouteTableRef {
        RouteTableRef {
            urn: Urn::new(stack, TYPE, id),
            vpc: Urn::new(stack, super::vpc::TYPE, "unknown"),
            known: Some(id.to_string()),
        }
    }

    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    pub fn id(&self) -> Output<String> {
        match &self.known {
            Some(id) => Output::known(id.clone()),
            None => Output::reference(self.urn.clone(), "id"),
        }
    }
}

impl RouteTable<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<RouteTableRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let inputs = RouteTableInputs { vpc_id: self.vpc.id(), tags: with_name(&self.tags, &self.name) };
        Ok(RouteTableRef {
            urn: s.declare(provider(), &self.name, inputs, vec![]),
            vpc: self.vpc.urn().clone(),
            known: None,
        })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(RouteTableProvider)
}

pub struct RouteTableProvider;

pub(crate) async fn describe_route_tables(
    ctx: &Ctx,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> ProviderResult<Vec<aws_sdk_ec2::types::RouteTable>> {
    Ok(super::describe_all!(
        ctx.aws()?.ec2.describe_route_tables().set_filters(Some(filters)),
        "DescribeRouteTables",
        route_tables
    ))
}

#[async_trait]
impl TaggedResource for RouteTableProvider {
    resource_type!(TYPE, RouteTableInputs => RouteTableOutputs,
        item aws_sdk_ec2::types::RouteTable { id: route_table_id }, create "CreateRouteTable",
        replace_on &["vpc_id"], import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &RouteTableInputs,
    ) -> Result<RouteTableOutputs, Failure> {
        let r =
            super::send_once!(ec2.create_route_table().vpc_id(&inputs.vpc_id).tag_specifications(tag_specification(
                ResourceType::RouteTable,
                ctx,
                urn,
                &inputs.tags
            )))?;
        let id = r.route_table().and_then(|t| t.route_table_id()).unwrap_or_default();
        Ok(RouteTableOutputs { id: id.to_string() })
    }

    async fn delete(&self, ctx: &Ctx, _: &RouteTableInputs, out: &RouteTableOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("DeleteRouteTable", || ec2.delete_route_table().route_table_id(&out.id).send()).await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        describe_route_tables(ctx, filters).await
    }

    async fn observe(&self, _: &Ctx, t: &Self::Item) -> ProviderResult<(RouteTableInputs, RouteTableOutputs)> {
        let inputs = RouteTableInputs { vpc_id: t.vpc_id().unwrap_or_default().to_string(), tags: user_tags(t.tags()) };
        Ok((inputs, RouteTableOutputs { id: t.route_table_id().unwrap_or_default().to_string() }))
    }
}

/// Makes a subnet use a route table. Untaggable: found by its natural key, the subnet (a subnet has
/// at most one explicit association).
#[derive(TypedBuilder, Clone, Debug)]
pub struct RouteTableAssociation<'a> {
    #[builder(setter(into))]
    name: String,
    route_table: &'a RouteTableRef,
    subnet: &'a SubnetRef,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssociationInputs<R = String> {
    pub route_table_id: R,
    pub subnet_id: R,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssociationOutputs {
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct RouteTableAssociationRef {
    urn: Urn,
}

impl RouteTableAssociationRef {
    pub fn urn(&self) -> &Urn {
        &self.urn
    }
}

/// Which subnets have an association declared, to report a second one.
#[derive(Default)]
struct AssociatedSubnets(std::collections::HashMap<Urn, Urn>);

impl RouteTableAssociation<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<RouteTableAssociationRef> {
        let urn = s.urn(ASSOCIATION_TYPE, &self.name);
        let mut c = Checker::new(urn.clone());
        {
            let vpc = self.subnet.vpc_urn();
            c.require(
                vpc == &self.route_table.vpc,
                "subnet",
                format!(
                    "subnet \"{}\" is in VPC \"{}\" but route table \"{}\" is in VPC \"{}\"",
                    self.subnet.urn().name(),
                    vpc.name(),
                    self.route_table.urn.name(),
                    self.route_table.vpc.name()
                ),
                "associate the subnet with a route table of its own VPC",
            );
        }
        let seen = s.extension::<AssociatedSubnets>();
        if let Some(other) = seen.0.get(self.subnet.urn()) {
            c.error(
                "subnet",
                format!("subnet \"{}\" is already associated by \"{}\"", self.subnet.urn().name(), other.name()),
                "a subnet has one route table: remove one of the associations",
            );
        } else {
            seen.0.insert(self.subnet.urn().clone(), urn.clone());
        }
        s.report(c.into_errors());
        let inputs = AssociationInputs { route_table_id: self.route_table.id(), subnet_id: self.subnet.id() };
        Ok(RouteTableAssociationRef { urn: s.declare(association_provider(), &self.name, inputs, vec![]) })
    }
}

pub fn association_provider() -> Arc<dyn Provider> {
    typed(AssociationProvider)
}

pub struct AssociationProvider;

/// The explicit association of `subnet_id`, if any: (association id, route table id).
async fn association_of_subnet(ctx: &Ctx, subnet_id: &str) -> ProviderResult<Option<(String, String)>> {
    let tables = describe_route_tables(ctx, vec![filter("association.subnet-id", [subnet_id])]).await?;
    for t in &tables {
        for a in t.associations() {
            if a.subnet_id() == Some(subnet_id) {
                return Ok(Some((
                    a.route_table_association_id().unwrap_or_default().to_string(),
                    t.route_table_id().unwrap_or_default().to_string(),
                )));
            }
        }
    }
    Ok(None)
}

#[async_trait]
impl TypedProvider for AssociationProvider {
    resource_type!(ASSOCIATION_TYPE, AssociationInputs => AssociationOutputs,
        replace_on &["subnet_id"], import Import::Never("a link between two resources, found again by its pair"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &AssociationInputs) -> ProviderResult<AssociationOutputs> {
        // Idempotent by natural key: an existing association of this subnet with this table is ours.
        if let Some(found) = self.find(ctx, urn, inputs).await? {
            return Ok(found);
        }
        let ec2 = &ctx.aws()?.ec2;
        create_or_find(
            "AssociateRouteTable",
            Duration::from_millis(500),
            || async {
                let r = super::send_once!(
                    ec2.associate_route_table().route_table_id(&inputs.route_table_id).subnet_id(&inputs.subnet_id)
                )?;
                Ok(AssociationOutputs { id: r.association_id().unwrap_or_default().to_string() })
            },
            || self.find(ctx, urn, inputs),
        )
        .await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<AssociationOutputs> {
        let Update { outputs: out, new, .. } = change;
        let r = ctx
            .aws()?
            .ec2
            .replace_route_table_association()
            .association_id(&out.id)
            .route_table_id(&new.route_table_id)
            .send()
            .await
            .map_err(|e| call_failed("ReplaceRouteTableAssociation", e))?;
        Ok(AssociationOutputs { id: r.new_association_id().unwrap_or(&out.id).to_string() })
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &AssociationInputs, out: &AssociationOutputs) -> ProviderResult<()> {
        found(
            "DisassociateRouteTable",
            is_not_found,
            ctx.aws()?.ec2.disassociate_route_table().association_id(&out.id).send().await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, AssociationOutputs)]) -> Reads<Self> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = items.iter().map(|(_, o)| o.id.as_str()).collect();
        let tables = describe_route_tables(ctx, vec![filter("association.route-table-association-id", ids)]).await?;
        Ok(items
            .iter()
            .map(|(_, out)| {
                tables.iter().find_map(|t| {
                    let a =
                        t.associations().iter().find(|a| a.route_table_association_id() == Some(out.id.as_str()))?;
                    Some((
                        AssociationInputs {
                            route_table_id: t.route_table_id().unwrap_or_default().to_string(),
                            subnet_id: a.subnet_id().unwrap_or_default().to_string(),
                        },
                        out.clone(),
                    ))
                })
            })
            .collect())
    }

    async fn find(&self, ctx: &Ctx, _: &Urn, inputs: &AssociationInputs) -> ProviderResult<Option<AssociationOutputs>> {
        Ok(association_of_subnet(ctx, &inputs.subnet_id)
            .await?
            .filter(|(_, table)| table == &inputs.route_table_id)
            .map(|(id, _)| AssociationOutputs { id }))
    }
}
