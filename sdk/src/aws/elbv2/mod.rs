//! Elastic Load Balancing v2: application load balancers, target groups, listeners and
//! host-based listener rules.
//!
//! Load balancers and target groups are found by name (which is unique per account and region)
//! and checked to carry this URN's tag — the emulator answers a second create with the same name
//! with a new ARN where AWS returns the existing one, so the lookup comes first. Listeners are
//! found by their natural key (load balancer, port), rules by (listener, priority).

use super::{call_failed, error_code};
use crate::aws::AwsCtx;
use crate::aws::found;
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderError, ProviderResult, Reads, TypedProvider, Update, typed,
};
use crate::model::Urn;
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, HostHeaderConditionConfig, IpAddressType,
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, Tag, TargetTypeEnum,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

pub use crate::aws::Tags;

/// What a stack program needs of ELB in scope (part of [`crate::prelude`]).
pub mod prelude {
    pub use super::{AlbIngress, Edge};
}

pub const LOAD_BALANCER: &str = "aws:elbv2:LoadBalancer";
pub const TARGET_GROUP: &str = "aws:elbv2:TargetGroup";
pub const LISTENER: &str = "aws:elbv2:Listener";
pub const RULE: &str = "aws:elbv2:ListenerRule";

/// TLS 1.3 (and 1.2 for older clients), forward secrecy only.
pub const TLS13_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

fn tags(ctx: &Ctx, urn: &Urn, user: &Tags) -> Vec<Tag> {
    crate::aws::with_fabric_tags(ctx, urn, user)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Every tag of an ELBv2 resource, fabric's included.
async fn tags_of(ctx: &Ctx, arn: &str) -> ProviderResult<Tags> {
    let out =
        ctx.aws()?.elbv2.describe_tags().resource_arns(arn).send().await.map_err(|e| call_failed("DescribeTags", e))?;
    Ok(out
        .tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect())
}

async fn owned_by(ctx: &Ctx, arn: &str, urn: &Urn) -> ProviderResult<bool> {
    Ok(super::tagged_for(&tags_of(ctx, arn).await?, urn))
}

fn not_found(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.ends_with("NotFound") || c.ends_with("NotFoundException"))
}

// ---------------------------------------------------------------- load balancer

mod alb_ingress;
mod listener;
mod load_balancer;
#[cfg(test)]
mod request_tests;
mod target_group;

pub use alb_ingress::{AlbIngress, Edge};
pub use listener::*;
pub use load_balancer::*;
pub use target_group::*;

/// Every ELBv2 provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![load_balancer_provider(), target_group_provider(), listener_provider(), rule_provider()]
}
