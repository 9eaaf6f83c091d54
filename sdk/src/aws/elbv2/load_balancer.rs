//! Application load balancers: found by name, checked to carry this URN's tag.

use crate::engine::provider::Import;
use super::*;

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
    const IMPORT: Import = Import::Never("not implemented yet");

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

    /// One `DescribeLoadBalancers` listing; the tags of the load balancers the program's names meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = std::collections::BTreeMap::new();
        let mut pages = ctx.aws()?.elbv2.describe_load_balancers().into_paginator().send();
        while let Some(page) = pages.next().await {
            for lb in page.map_err(|e| call_failed("DescribeLoadBalancers", e))?.load_balancers() {
                if let (Some(name), Some(arn)) = (lb.load_balancer_name(), lb.load_balancer_arn()) {
                    existing.insert(name.to_string(), arn.to_string());
                }
            }
        }
        crate::aws::names_held(ctx, items, "name", &existing, |arn| async move { tags_of(ctx, &arn).await }).await
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
