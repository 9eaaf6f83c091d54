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
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult, Reads, TypedProvider, Update, typed};
use crate::model::Urn;
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, HostHeaderConditionConfig, IpAddressType,
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, Tag, TargetTypeEnum,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use crate::aws::Tags;

pub const LOAD_BALANCER: &str = "aws:elbv2:LoadBalancer";
pub const TARGET_GROUP: &str = "aws:elbv2:TargetGroup";
pub const LISTENER: &str = "aws:elbv2:Listener";
pub const RULE: &str = "aws:elbv2:ListenerRule";

/// TLS 1.3 (and 1.2 for older clients), forward secrecy only.
pub const TLS13_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

fn tags(ctx: &Ctx, urn: &Urn, user: &Tags) -> Vec<Tag> {
    super::with_fabric_tags(ctx, urn, user).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerInputs<L = Vec<String>> {
    pub name: String,
    /// Sorted.
    pub subnet_ids: L,
    pub security_group_ids: L,
    pub internet_facing: bool,
    /// Set at creation; left out of reads.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerOutputs {
    pub arn: String,
    pub dns_name: String,
    pub zone_id: String,
}

fn lb_outputs(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> LoadBalancerOutputs {
    LoadBalancerOutputs {
        arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        zone_id: lb.canonical_hosted_zone_id().unwrap_or_default().to_string(),
    }
}

pub fn load_balancer_provider() -> Arc<dyn Provider> {
    typed(LoadBalancerProvider)
}

pub struct LoadBalancerProvider;

impl LoadBalancerProvider {
    async fn by_name(
        &self,
        ctx: &Ctx,
        name: &str,
    ) -> ProviderResult<Option<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>> {
        Ok(found(
            "DescribeLoadBalancers",
            not_found,
            ctx.aws()?.elbv2.describe_load_balancers().names(name).send().await,
        )?
        .and_then(|o| o.load_balancers().first().cloned()))
    }
}

#[async_trait]
impl TypedProvider for LoadBalancerProvider {
    type Inputs = LoadBalancerInputs;
    type Outputs = LoadBalancerOutputs;
    const TYPE: &'static str = LOAD_BALANCER;
    const REPLACE_ON: &'static [&'static str] = &["name", "internet_facing"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &LoadBalancerInputs) -> ProviderResult<LoadBalancerOutputs> {
        if let Some(found) = self.find(ctx, urn, i).await? {
            return Ok(found);
        }
        let out = ctx
            .aws()?
            .elbv2
            .create_load_balancer()
            .name(&i.name)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(if i.internet_facing {
                LoadBalancerSchemeEnum::InternetFacing
            } else {
                LoadBalancerSchemeEnum::Internal
            })
            .ip_address_type(IpAddressType::Ipv4)
            .set_subnets(Some(i.subnet_ids.clone()))
            .set_security_groups(Some(i.security_group_ids.clone()))
            .set_tags(Some(tags(ctx, urn, &i.tags)))
            .send()
            .await
            .map_err(|e| call_failed("CreateLoadBalancer", e))?;
        out.load_balancers()
            .first()
            .map(lb_outputs)
            .ok_or_else(|| ProviderError("CreateLoadBalancer answered no load balancer".into()))
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<LoadBalancerOutputs> {
        let Update { old, outputs: out, new } = change;
        let elb = &ctx.aws()?.elbv2;
        if old.subnet_ids != new.subnet_ids {
            elb.set_subnets()
                .load_balancer_arn(&out.arn)
                .set_subnets(Some(new.subnet_ids.clone()))
                .send()
                .await
                .map_err(|e| call_failed("SetSubnets", e))?;
        }
        if old.security_group_ids != new.security_group_ids {
            elb.set_security_groups()
                .load_balancer_arn(&out.arn)
                .set_security_groups(Some(new.security_group_ids.clone()))
                .send()
                .await
                .map_err(|e| call_failed("SetSecurityGroups", e))?;
        }
        Ok(out.clone())
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        _: &Urn,
        _: &LoadBalancerInputs,
        out: &LoadBalancerOutputs,
    ) -> ProviderResult<()> {
        found(
            "DeleteLoadBalancer",
            not_found,
            ctx.aws()?.elbv2.delete_load_balancer().load_balancer_arn(&out.arn).send().await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, LoadBalancerOutputs)]) -> Reads<Self> {
        let mut all = Vec::new();
        let mut pages = ctx.aws()?.elbv2.describe_load_balancers().into_paginator().send();
        while let Some(page) = pages.next().await {
            all.extend(page.map_err(|e| call_failed("DescribeLoadBalancers", e))?.load_balancers().iter().cloned());
        }
        Ok(items
            .iter()
            .map(|(_, o)| {
                let lb = all.iter().find(|l| l.load_balancer_arn() == Some(o.arn.as_str()))?;
                let mut subnets: Vec<String> =
                    lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_string)).collect();
                subnets.sort();
                let mut sgs = lb.security_groups().to_vec();
                sgs.sort();
                Some((
                    LoadBalancerInputs {
                        name: lb.load_balancer_name().unwrap_or_default().to_string(),
                        subnet_ids: subnets,
                        security_group_ids: sgs,
                        internet_facing: lb.scheme() == Some(&LoadBalancerSchemeEnum::InternetFacing),
                        tags: Tags::new(),
                    },
                    lb_outputs(lb),
                ))
            })
            .collect())
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &LoadBalancerInputs) -> ProviderResult<Option<LoadBalancerOutputs>> {
        let Some(lb) = self.by_name(ctx, &i.name).await? else { return Ok(None) };
        let arn = lb.load_balancer_arn().unwrap_or_default();
        if !owned_by(ctx, arn, urn).await? {
            return Err(ProviderError(format!(
                "a load balancer named `{}` exists and was not created by {urn}",
                i.name
            )));
        }
        Ok(Some(lb_outputs(&lb)))
    }
}

// ---------------------------------------------------------------- target group

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupInputs<R = String> {
    pub name: String,
    pub vpc_id: R,
    /// The instance port traffic goes to (a Kubernetes NodePort).
    pub port: i32,
    pub health_check_path: String,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupOutputs {
    pub arn: String,
    /// The name the program gave (the cloud name adds a hash: [`target_group_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_name: Option<String>,
}

/// The target group's name in ELBv2: the program's name with a hash of it and of the fields that
/// force a replacement (VPC, port), so a replacement never collides with the group it replaces.
/// At most 32 characters.
pub fn target_group_name(i: &TargetGroupInputs) -> String {
    super::physical_name(&i.name, 32, &[&i.name, &i.vpc_id, &i.port.to_string()])
}

pub fn target_group_provider() -> Arc<dyn Provider> {
    typed(TargetGroupProvider)
}

pub struct TargetGroupProvider;

#[async_trait]
impl TypedProvider for TargetGroupProvider {
    type Inputs = TargetGroupInputs;
    type Outputs = TargetGroupOutputs;
    const TYPE: &'static str = TARGET_GROUP;
    const REPLACE_ON: &'static [&'static str] = &["name", "vpc_id", "port"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &TargetGroupInputs) -> ProviderResult<TargetGroupOutputs> {
        if let Some(found) = self.find(ctx, urn, i).await? {
            return Ok(found);
        }
        let out = ctx
            .aws()?
            .elbv2
            .create_target_group()
            .name(target_group_name(i))
            .protocol(ProtocolEnum::Http)
            .port(i.port)
            .vpc_id(&i.vpc_id)
            .target_type(TargetTypeEnum::Instance)
            .health_check_protocol(ProtocolEnum::Http)
            .health_check_path(&i.health_check_path)
            .matcher(Matcher::builder().http_code("200-399").build())
            .set_tags(Some(tags(ctx, urn, &i.tags)))
            .send()
            .await
            .map_err(|e| call_failed("CreateTargetGroup", e))?;
        let arn = out.target_groups().first().and_then(|t| t.target_group_arn()).unwrap_or_default().to_string();
        Ok(TargetGroupOutputs { arn, program_name: Some(i.name.clone()) })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<TargetGroupOutputs> {
        let Update { old, outputs: out, new } = change;
        if old.health_check_path != new.health_check_path {
            ctx.aws()?
                .elbv2
                .modify_target_group()
                .target_group_arn(&out.arn)
                .health_check_path(&new.health_check_path)
                .send()
                .await
                .map_err(|e| call_failed("ModifyTargetGroup", e))?;
        }
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &TargetGroupInputs, out: &TargetGroupOutputs) -> ProviderResult<()> {
        found(
            "DeleteTargetGroup",
            not_found,
            ctx.aws()?.elbv2.delete_target_group().target_group_arn(&out.arn).send().await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, TargetGroupOutputs)]) -> Reads<Self> {
        let mut all = Vec::new();
        let mut pages = ctx.aws()?.elbv2.describe_target_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            all.extend(page.map_err(|e| call_failed("DescribeTargetGroups", e))?.target_groups().iter().cloned());
        }
        Ok(items
            .iter()
            .map(|(_, o)| {
                let t = all.iter().find(|t| t.target_group_arn() == Some(o.arn.as_str()))?;
                let mut inputs = TargetGroupInputs {
                    name: t.target_group_name().unwrap_or_default().to_string(),
                    vpc_id: t.vpc_id().unwrap_or_default().to_string(),
                    port: t.port().unwrap_or_default(),
                    health_check_path: t.health_check_path().unwrap_or_default().to_string(),
                    tags: Tags::new(),
                };
                // The program's name is not in the cloud name's hash; a legacy name is its own.
                if let Some(recorded) = o.program_name.as_deref()
                    && target_group_name(&TargetGroupInputs { name: recorded.to_string(), ..inputs.clone() })
                        == inputs.name
                {
                    inputs.name = recorded.to_string();
                }
                Some((inputs, o.clone()))
            })
            .collect())
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &TargetGroupInputs) -> ProviderResult<Option<TargetGroupOutputs>> {
        let found = match ctx.aws()?.elbv2.describe_target_groups().names(target_group_name(i)).send().await {
            Ok(o) => o.target_groups().first().and_then(|t| t.target_group_arn()).map(str::to_string),
            Err(e) if not_found(error_code(&e)) => None,
            Err(e) => return Err(call_failed("DescribeTargetGroups", e)),
        };
        let Some(arn) = found else { return Ok(None) };
        if !owned_by(ctx, &arn, urn).await? {
            return Err(ProviderError(format!(
                "a target group named `{}` exists and was not created by {urn}",
                i.name
            )));
        }
        Ok(Some(TargetGroupOutputs { arn, program_name: Some(i.name.clone()) }))
    }
}

// ---------------------------------------------------------------- listener

/// What a listener does with requests no rule matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    /// 301 to HTTPS on 443.
    RedirectToHttps,
    /// A fixed 404.
    NotFound,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerInputs<R = String> {
    pub load_balancer_arn: R,
    pub port: i32,
    pub https: bool,
    pub certificate_arn: Option<R>,
    pub ssl_policy: Option<String>,
    pub default_action: DefaultAction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerOutputs {
    pub arn: String,
}

fn default_actions(a: &DefaultAction) -> ProviderResult<Vec<Action>> {
    let action = match a {
        DefaultAction::RedirectToHttps => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
        DefaultAction::NotFound => Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code("404")
                    .content_type("text/plain")
                    .message_body("not found")
                    .build(),
            )
            .build(),
    };
    Ok(vec![action])
}

pub fn listener_provider() -> Arc<dyn Provider> {
    typed(ListenerProvider)
}

pub struct ListenerProvider;

impl ListenerProvider {
    async fn on_port(&self, ctx: &Ctx, lb: &str, port: i32) -> ProviderResult<Option<String>> {
        Ok(found(
            "DescribeListeners",
            not_found,
            ctx.aws()?.elbv2.describe_listeners().load_balancer_arn(lb).send().await,
        )?
        .and_then(|o| {
            o.listeners().iter().find(|l| l.port() == Some(port)).and_then(|l| l.listener_arn()).map(str::to_string)
        }))
    }
}

#[async_trait]
impl TypedProvider for ListenerProvider {
    type Inputs = ListenerInputs;
    type Outputs = ListenerOutputs;
    const TYPE: &'static str = LISTENER;
    const REPLACE_ON: &'static [&'static str] = &["load_balancer_arn", "port"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &ListenerInputs) -> ProviderResult<ListenerOutputs> {
        if let Some(found) = self.find(ctx, urn, i).await? {
            return Ok(found);
        }
        let out = ctx
            .aws()?
            .elbv2
            .create_listener()
            .load_balancer_arn(&i.load_balancer_arn)
            .port(i.port)
            .protocol(if i.https { ProtocolEnum::Https } else { ProtocolEnum::Http })
            .set_ssl_policy(i.ssl_policy.clone())
            .set_certificates(
                i.certificate_arn.as_ref().map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
            )
            .set_default_actions(Some(default_actions(&i.default_action)?))
            .set_tags(Some(tags(ctx, urn, &Tags::new())))
            .send()
            .await
            .map_err(|e| call_failed("CreateListener", e))?;
        let arn = out.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string();
        Ok(ListenerOutputs { arn })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<ListenerOutputs> {
        let Update { outputs: out, new, .. } = change;
        ctx.aws()?
            .elbv2
            .modify_listener()
            .listener_arn(&out.arn)
            .protocol(if new.https { ProtocolEnum::Https } else { ProtocolEnum::Http })
            .set_ssl_policy(new.ssl_policy.clone())
            .set_certificates(
                new.certificate_arn.as_ref().map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
            )
            .set_default_actions(Some(default_actions(&new.default_action)?))
            .send()
            .await
            .map_err(|e| call_failed("ModifyListener", e))?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &ListenerInputs, out: &ListenerOutputs) -> ProviderResult<()> {
        found("DeleteListener", not_found, ctx.aws()?.elbv2.delete_listener().listener_arn(&out.arn).send().await)
            .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ListenerOutputs)]) -> Reads<Self> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            let found = match ctx.aws()?.elbv2.describe_listeners().listener_arns(&o.arn).send().await {
                Ok(r) => r.listeners().first().cloned(),
                Err(e) if not_found(error_code(&e)) => None,
                Err(e) => return Err(call_failed("DescribeListeners", e)),
            };
            out.push(found.map(|l| {
                let https = l.protocol() == Some(&ProtocolEnum::Https);
                let redirect =
                    l.default_actions().first().is_some_and(|a| a.r#type() == Some(&ActionTypeEnum::Redirect));
                (
                    ListenerInputs {
                        load_balancer_arn: l.load_balancer_arn().unwrap_or_default().to_string(),
                        port: l.port().unwrap_or_default(),
                        https,
                        certificate_arn: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
                        // The emulator reports a default policy on HTTP listeners too; AWS has none.
                        ssl_policy: if https { l.ssl_policy().map(str::to_string) } else { None },
                        default_action: if redirect { DefaultAction::RedirectToHttps } else { DefaultAction::NotFound },
                    },
                    o.clone(),
                )
            }));
        }
        Ok(out)
    }

    /// The listener on that port, if it is tagged for `urn`; one that is not is someone else's,
    /// and an error (a create would fail on it anyway).
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &ListenerInputs) -> ProviderResult<Option<ListenerOutputs>> {
        let Some(arn) = self.on_port(ctx, &i.load_balancer_arn, i.port).await? else { return Ok(None) };
        let found = tags_of(ctx, &arn).await?;
        super::require_ours(ctx, urn, &format!("the listener on port {} of {}", i.port, i.load_balancer_arn), &found)?;
        Ok(Some(ListenerOutputs { arn }))
    }
}

// ---------------------------------------------------------------- rule

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleInputs<R = String> {
    pub listener_arn: R,
    pub priority: i32,
    pub host: String,
    pub target_group_arn: R,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleOutputs {
    pub arn: String,
}

fn host_condition(host: &str) -> RuleCondition {
    RuleCondition::builder()
        .field("host-header")
        .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
        .build()
}

fn forward(target_group_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
}

pub fn rule_provider() -> Arc<dyn Provider> {
    typed(RuleProvider)
}

pub struct RuleProvider;

impl RuleProvider {
    async fn rules(
        &self,
        ctx: &Ctx,
        listener: &str,
    ) -> ProviderResult<Option<Vec<aws_sdk_elasticloadbalancingv2::types::Rule>>> {
        Ok(found("DescribeRules", not_found, ctx.aws()?.elbv2.describe_rules().listener_arn(listener).send().await)?
            .map(|o| o.rules().to_vec()))
    }
}

fn observed_rule(listener: &str, r: &aws_sdk_elasticloadbalancingv2::types::Rule) -> RuleInputs {
    let host = r
        .conditions()
        .iter()
        .find(|c| c.field() == Some("host-header"))
        .and_then(|c| {
            c.host_header_config().and_then(|h| h.values().first().cloned()).or_else(|| c.values().first().cloned())
        })
        .unwrap_or_default();
    RuleInputs {
        listener_arn: listener.to_string(),
        priority: r.priority().and_then(|p| p.parse().ok()).unwrap_or_default(),
        host,
        target_group_arn: r.actions().first().and_then(|a| a.target_group_arn()).unwrap_or_default().to_string(),
    }
}

#[async_trait]
impl TypedProvider for RuleProvider {
    type Inputs = RuleInputs;
    type Outputs = RuleOutputs;
    const TYPE: &'static str = RULE;
    const REPLACE_ON: &'static [&'static str] = &["listener_arn", "priority"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &RuleInputs) -> ProviderResult<RuleOutputs> {
        if let Some(found) = self.find(ctx, urn, i).await? {
            return self.update(ctx, urn, Update { old: i, outputs: &found, new: i }).await;
        }
        let out = ctx
            .aws()?
            .elbv2
            .create_rule()
            .listener_arn(&i.listener_arn)
            .priority(i.priority)
            .conditions(host_condition(&i.host))
            .actions(forward(&i.target_group_arn))
            .set_tags(Some(tags(ctx, urn, &Tags::new())))
            .send()
            .await
            .map_err(|e| call_failed("CreateRule", e))?;
        Ok(RuleOutputs { arn: out.rules().first().and_then(|r| r.rule_arn()).unwrap_or_default().to_string() })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<RuleOutputs> {
        let Update { outputs: out, new, .. } = change;
        ctx.aws()?
            .elbv2
            .modify_rule()
            .rule_arn(&out.arn)
            .conditions(host_condition(&new.host))
            .actions(forward(&new.target_group_arn))
            .send()
            .await
            .map_err(|e| call_failed("ModifyRule", e))?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &RuleInputs, out: &RuleOutputs) -> ProviderResult<()> {
        found("DeleteRule", not_found, ctx.aws()?.elbv2.delete_rule().rule_arn(&out.arn).send().await).map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, RuleOutputs)]) -> Reads<Self> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            let found = match ctx.aws()?.elbv2.describe_rules().rule_arns(&o.arn).send().await {
                Ok(r) => r.rules().first().cloned(),
                Err(e) if not_found(error_code(&e)) => None,
                Err(e) => return Err(call_failed("DescribeRules", e)),
            };
            // The listener is not in the rule's description: take it from the rule ARN.
            let listener = o
                .arn
                .replace(":listener-rule/", ":listener/")
                .rsplit_once('/')
                .map(|(l, _)| l.to_string())
                .unwrap_or_default();
            out.push(found.map(|r| (observed_rule(&listener, &r), o.clone())));
        }
        Ok(out)
    }

    /// The rule at that priority, if it is tagged for `urn`; one that is not is someone else's,
    /// and an error (never modified, never deleted).
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &RuleInputs) -> ProviderResult<Option<RuleOutputs>> {
        let Some(rules) = self.rules(ctx, &i.listener_arn).await? else { return Ok(None) };
        let Some(arn) = rules
            .iter()
            .find(|r| r.priority() == Some(i.priority.to_string().as_str()))
            .and_then(|r| r.rule_arn())
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let found = tags_of(ctx, &arn).await?;
        super::require_ours(
            ctx,
            urn,
            &format!("the rule at priority {} of listener {}", i.priority, i.listener_arn),
            &found,
        )?;
        Ok(Some(RuleOutputs { arn }))
    }
}

/// Every ELBv2 provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![load_balancer_provider(), target_group_provider(), listener_provider(), rule_provider()]
}
