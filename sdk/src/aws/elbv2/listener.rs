//! Listeners (found by load balancer and port) and host-based listener rules (by listener and priority).

use super::*;
use crate::engine::provider::{Import, read_each};

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
    resource_type!(LISTENER, ListenerInputs => ListenerOutputs,
        replace_on &["load_balancer_arn", "port"], import Import::Never("not implemented yet"));

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
        read_each(items, |_, o| async move {
            let found = match ctx.aws()?.elbv2.describe_listeners().listener_arns(&o.arn).send().await {
                Ok(r) => r.listeners().first().cloned(),
                Err(e) if not_found(error_code(&e)) => None,
                Err(e) => return Err(call_failed("DescribeListeners", e)),
            };
            Ok(found.map(|l| {
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
            }))
        })
        .await
    }

    /// The listener on that port, if it is tagged for `urn`; one that is not is someone else's,
    /// and an error (a create would fail on it anyway).
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &ListenerInputs) -> ProviderResult<Option<ListenerOutputs>> {
        let Some(arn) = self.on_port(ctx, &i.load_balancer_arn, i.port).await? else { return Ok(None) };
        let found = tags_of(ctx, &arn).await?;
        crate::aws::require_ours(
            ctx,
            urn,
            &format!("the listener on port {} of {}", i.port, i.load_balancer_arn),
            &found,
        )?;
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
    resource_type!(RULE, RuleInputs => RuleOutputs,
        replace_on &["listener_arn", "priority"], import Import::Never("not implemented yet"));

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
        read_each(items, |_, o| async move {
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
            Ok(found.map(|r| (observed_rule(&listener, &r), o.clone())))
        })
        .await
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
        crate::aws::require_ours(
            ctx,
            urn,
            &format!("the rule at priority {} of listener {}", i.priority, i.listener_arn),
            &found,
        )?;
        Ok(Some(RuleOutputs { arn }))
    }
}
