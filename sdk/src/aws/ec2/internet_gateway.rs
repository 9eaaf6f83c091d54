//! `aws:ec2:InternetGateway`: created and attached to its VPC in one step.

use super::delete_idempotent;
use super::tagged::TaggedResource;
use super::vpc::VpcRef;
use super::{Tags, check_tags, is_not_found, tag_specification, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::create::retry_dependency_violation;
use crate::aws::{Failure, call_failed, classify, error_code};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderResult};
use crate::model::{Checker, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, ResourceType};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:InternetGateway";

/// An internet gateway attached to a VPC.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::Vpc;
/// let mut s = Stack::new("demo");
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// let igw = InternetGateway::builder().name("main").vpc(&vpc).build().add(&mut s).unwrap();
/// assert_eq!(igw.urn().name(), "main");
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct InternetGateway<'a> {
    #[builder(setter(into))]
    name: String,
    vpc: &'a VpcRef,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InternetGatewayInputs<R = String> {
    pub vpc_id: R,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InternetGatewayOutputs {
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct InternetGatewayRef {
    urn: Urn,
}

impl InternetGatewayRef {
    outputs!(urn => id: String);
}

impl InternetGateway<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<InternetGatewayRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let inputs = InternetGatewayInputs { vpc_id: self.vpc.id(), tags: with_name(&self.tags, &self.name) };
        Ok(InternetGatewayRef { urn: s.declare(provider(), &self.name, inputs, vec![]) })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(InternetGatewayProvider)
}

pub struct InternetGatewayProvider;

impl InternetGatewayProvider {
    async fn attach(&self, ctx: &Ctx, id: &str, vpc_id: &str) -> ProviderResult<()> {
        match ctx.aws()?.ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc_id).send().await {
            Ok(_) => Ok(()),
            // Attaching is keyed by the pair: already attached to this VPC means done.
            Err(e) if error_code(&e) == Some("Resource.AlreadyAssociated") => Ok(()),
            Err(e) => Err(call_failed("AttachInternetGateway", e)),
        }
    }

    async fn detach(&self, ctx: &Ctx, id: &str, vpc_id: &str) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        retry_dependency_violation("DetachInternetGateway", Duration::from_secs(300), || async {
            match ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc_id).send().await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(error_code(&e)) || error_code(&e) == Some("Gateway.NotAttached") => Ok(()),
                Err(e) => Err(classify(&e)),
            }
        })
        .await
    }
}

fn attached_vpc(igw: &aws_sdk_ec2::types::InternetGateway) -> String {
    igw.attachments().first().and_then(|a| a.vpc_id()).unwrap_or_default().to_string()
}

#[async_trait]
impl TaggedResource for InternetGatewayProvider {
    resource_type!(TYPE, InternetGatewayInputs => InternetGatewayOutputs,
        item aws_sdk_ec2::types::InternetGateway { id: internet_gateway_id }, create "CreateInternetGateway",
        replace_on &[], import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &InternetGatewayInputs,
    ) -> Result<InternetGatewayOutputs, Failure> {
        let r = super::send_once!(ec2.create_internet_gateway().tag_specifications(tag_specification(
            ResourceType::InternetGateway,
            ctx,
            urn,
            &inputs.tags
        )))?;
        let id = r.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default();
        Ok(InternetGatewayOutputs { id: id.to_string() })
    }

    async fn after_create(
        &self,
        ctx: &Ctx,
        inputs: &InternetGatewayInputs,
        out: &InternetGatewayOutputs,
    ) -> ProviderResult<()> {
        self.attach(ctx, &out.id, &inputs.vpc_id).await
    }

    /// Moving to another VPC detaches and attaches the same gateway.
    async fn update_more(
        &self,
        ctx: &Ctx,
        old: &InternetGatewayInputs,
        out: &InternetGatewayOutputs,
        new: &InternetGatewayInputs,
    ) -> ProviderResult<()> {
        if old.vpc_id != new.vpc_id {
            if !old.vpc_id.is_empty() {
                self.detach(ctx, &out.id, &old.vpc_id).await?;
            }
            self.attach(ctx, &out.id, &new.vpc_id).await?;
        }
        Ok(())
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        inputs: &InternetGatewayInputs,
        out: &InternetGatewayOutputs,
    ) -> ProviderResult<()> {
        let current = self.describe(ctx, vec![super::filter("internet-gateway-id", [out.id.as_str()])]).await?;
        let Some(igw) = current.first() else { return Ok(()) };
        let vpc = attached_vpc(igw);
        if !vpc.is_empty() {
            self.detach(ctx, &out.id, &vpc).await?;
        } else if !inputs.vpc_id.is_empty() {
            self.detach(ctx, &out.id, &inputs.vpc_id).await?;
        }
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("DeleteInternetGateway", || ec2.delete_internet_gateway().internet_gateway_id(&out.id).send())
            .await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        let request = ctx.aws()?.ec2.describe_internet_gateways().set_filters(Some(filters));
        Ok(super::describe_all!(request, "DescribeInternetGateways", internet_gateways))
    }

    async fn observe(
        &self,
        _: &Ctx,
        g: &Self::Item,
    ) -> ProviderResult<(InternetGatewayInputs, InternetGatewayOutputs)> {
        let inputs = InternetGatewayInputs { vpc_id: attached_vpc(g), tags: user_tags(g.tags()) };
        Ok((inputs, InternetGatewayOutputs { id: g.internet_gateway_id().unwrap_or_default().to_string() }))
    }
}
