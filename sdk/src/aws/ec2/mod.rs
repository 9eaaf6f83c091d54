//! Amazon EC2 networking: VPC, subnets, internet gateway, route tables, routes and their
//! associations, security groups and their rules; and the builders composed of them: [`Vpc`] (the
//! production network), [`VpcPeering`], [`Bastion`] and [`SessionManagerEndpoints`].
//!
//! Each resource is a builder (what the program declares), a typed handle (what other resources
//! refer to) and a provider (how it is created, read, updated and deleted).

pub mod bastion;
pub mod endpoint;
pub mod flow_log;
pub mod instance;
pub mod internet_gateway;
pub mod launch_template;
pub mod nat;
pub mod network;
pub mod peering;
pub mod private_access;
#[cfg(test)]
mod request_tests;
pub mod route;
pub mod route_table;
pub mod security_group;
pub mod subnet;
mod tagged;
pub mod vpc;
pub mod vpc_peering;
pub mod zones;

pub use bastion::{Bastion, BastionRef, SessionManagerEndpoints};
pub use endpoint::{VpcEndpoint, VpcEndpointRef};
pub use flow_log::{FlowLog, FlowLogRef};
pub use instance::InstanceRef;
pub use internet_gateway::{InternetGateway, InternetGatewayRef};
pub use launch_template::{LaunchTemplate, LaunchTemplateRef};
pub use nat::{ElasticIp, ElasticIpRef, NatGateway, NatGatewayRef};
pub use network::{Nat, Network, PrivateSubnet, PublicSubnet, Vpc, Zones};
pub use peering::{VpcPeeringConnection, VpcPeeringRef};
pub use private_access::{AccessNames, PrivateAccess, PrivateService};
pub use route::{Route, RouteRef};
pub use route_table::{RouteTable, RouteTableAssociation, RouteTableAssociationRef, RouteTableRef};
pub use security_group::{IngressRule, IngressRuleRef, Protocol, SecurityGroup, SecurityGroupRef};
pub use subnet::{Subnet, SubnetRef};
pub use vpc::VpcRef;
pub use vpc_peering::{PeerNetwork, Peering, VpcPeering};
pub use zones::AvailabilityZones;

/// What a stack program needs of EC2 in scope (part of [`crate::prelude`]).
pub mod prelude {
    pub use super::{
        IngressRule, InternetGateway, Nat, Network, PrivateService, PrivateSubnet, Protocol, PublicSubnet, Route,
        RouteTable, RouteTableAssociation, SecurityGroup, Subnet, Vpc, Zones, tags,
    };
}

use super::create::retry_dependency_violation;
use super::{TAG_STACK, TAG_URN, classify, error_code};
use crate::aws::AwsCtx;
use crate::engine::provider::{Ctx, Provider, ProviderResult};
use crate::model::{Checker, Urn};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use std::sync::Arc;

/// Every EC2 provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![
        vpc::provider(),
        zones::provider(),
        subnet::provider(),
        internet_gateway::provider(),
        endpoint::provider(),
        flow_log::provider(),
        instance::provider(),
        instance::image_lookup_provider(),
        launch_template::provider(),
        nat::eip_provider(),
        nat::nat_provider(),
        peering::provider(),
        route_table::provider(),
        route_table::association_provider(),
        route::provider(),
        security_group::provider(),
        security_group::rule_provider(),
    ]
}

pub use super::Tags;
pub(crate) use super::check_tags;

/// Tags from pairs: `tags([("team", "web")])`.
pub fn tags<const N: usize>(pairs: [(&str, &str); N]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The tags a resource is created with: the user's, `Name` (the resource name unless given), and
/// fabric's own.
pub(crate) fn with_name(tags: &Tags, name: &str) -> Tags {
    let mut t = tags.clone();
    t.entry("Name".into()).or_insert_with(|| name.to_string());
    t
}

pub(crate) fn tag_specification(rt: ResourceType, ctx: &Ctx, urn: &Urn, tags: &Tags) -> TagSpecification {
    let all = super::with_fabric_tags(ctx, urn, tags).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
    TagSpecification::builder().resource_type(rt).set_tags(Some(all.collect())).build()
}

/// The user's tags of a resource as read back (fabric's own removed).
pub(crate) fn user_tags(tags: &[Tag]) -> Tags {
    super::user_tags_of(tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))))
}

pub(crate) fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    let mut f = Filter::builder().name(name);
    for v in values {
        f = f.values(v);
    }
    f.build()
}

/// Filters that find what this stack created for `urn`.
pub(crate) fn urn_filters(ctx: &Ctx, urn: &Urn) -> Vec<Filter> {
    vec![filter(&format!("tag:{TAG_STACK}"), [ctx.stack.as_str()]), filter(&format!("tag:{TAG_URN}"), [urn.as_str()])]
}

/// The filter that finds everything this stack created.
pub(crate) fn stack_filter(ctx: &Ctx) -> Filter {
    filter(&format!("tag:{TAG_STACK}"), [ctx.stack.as_str()])
}

/// Makes the user tags of `id` go from `old` to `new`.
pub(crate) async fn sync_tags(ctx: &Ctx, id: &str, old: &Tags, new: &Tags) -> ProviderResult<()> {
    let ec2 = &ctx.aws()?.ec2;
    let remove = |keys: Vec<String>| async move {
        let tags = keys.into_iter().map(|k| Tag::builder().key(k).build()).collect();
        let call = ec2.delete_tags().resources(id).set_tags(Some(tags));
        call.send().await.map(drop).map_err(|e| super::call_failed("DeleteTags", e))
    };
    let set = |pairs: Vec<(String, String)>| async move {
        let tags = pairs.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let call = ec2.create_tags().resources(id).set_tags(Some(tags));
        call.send().await.map(drop).map_err(|e| super::call_failed("CreateTags", e))
    };
    super::TagChanges::sync(old, new, remove, set).await
}

/// How long a delete waits out `DependencyViolation` (network interfaces being released, …).
pub(crate) const DELETE_BUDGET: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs the delete call `op`: a resource that is already gone counts as deleted, and
/// `DependencyViolation` is retried with backoff for [`DELETE_BUDGET`].
pub(crate) async fn delete_idempotent<F, Fut, T, E>(what: &str, mut op: F) -> ProviderResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
            Output = Result<
                T,
                aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
            >,
        >,
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    retry_dependency_violation(what, DELETE_BUDGET, || {
        let call = op();
        async move {
            match call.await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(error_code(&e)) => Ok(()),
                Err(e) => Err(classify(&e)),
            }
        }
    })
    .await
}

/// Every item of every page of a Describe call: `describe_all!(request, "DescribeVpcs", vpcs)`.
macro_rules! describe_all {
    ($request:expr, $call:literal, $items:ident) => {{
        let mut out = Vec::new();
        let mut pages = $request.into_paginator().send();
        while let Some(page) = pages.next().await {
            out.extend(page.map_err(|e| $crate::aws::call_failed($call, e))?.$items().iter().cloned());
        }
        out
    }};
}
pub(crate) use describe_all;

/// Sends one EC2 request without the SDK's own retries and classifies its failure
/// ([`crate::aws::classify`]): `send_once!(ec2.create_vpc().cidr_block(cidr))?`. A create whose
/// answer is lost must be looked for before it is sent again ([`crate::aws::create::create_or_find`]),
/// never retried blindly. `send_once!(unclassified request)` answers the SDK's own error, for a
/// caller that reads its code first.
macro_rules! send_once {
    (unclassified $request:expr) => {
        $request.customize().config_override($crate::aws::create::no_retry()).send().await
    };
    ($request:expr) => {
        $crate::aws::ec2::send_once!(unclassified $request).map_err(|e| $crate::aws::classify(&e))
    };
}
pub(crate) use send_once;

/// Whether an EC2 error code says the resource does not exist.
pub(crate) fn is_not_found(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.ends_with(".NotFound") || c.ends_with("NotFound") || c == "InvalidGroup.NotFound")
}

/// Parses an IPv4 CIDR block and checks its prefix length, recording precise errors.
pub(crate) fn check_cidr(
    c: &mut Checker,
    field: &str,
    cidr: &str,
    min_prefix: u8,
    max_prefix: u8,
) -> Option<ipnet::Ipv4Net> {
    let net: ipnet::Ipv4Net = match cidr.parse() {
        Ok(n) => n,
        Err(_) => {
            c.error(
                field,
                format!("`{cidr}` is not an IPv4 CIDR block"),
                "write it as address/prefix, for example `10.0.0.0/16`",
            );
            return None;
        }
    };
    if net.network() != net.addr() {
        c.error(field, format!("`{cidr}` has host bits set"), format!("use the network address: `{}`", net.trunc()));
        return None;
    }
    if net.prefix_len() < min_prefix || net.prefix_len() > max_prefix {
        c.error(
            field,
            format!("`{cidr}` has prefix length /{}; AWS allows /{min_prefix} to /{max_prefix} here", net.prefix_len()),
            format!("choose a prefix length between /{min_prefix} and /{max_prefix}"),
        );
        return None;
    }
    Some(net)
}
