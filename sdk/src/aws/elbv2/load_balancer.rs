//! Application load balancers: found by name, checked to carry this URN's tag. Their attributes
//! (invalid header fields dropped, deletion protection, access logs) are set after every create
//! and read back with each read.

use super::*;
use crate::engine::provider::{Import, read_each};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerInputs<L = Vec<String>, R = String> {
    pub name: String,
    /// Sorted.
    pub subnet_ids: L,
    pub security_group_ids: L,
    pub internet_facing: bool,
    /// `routing.http.drop_invalid_header_fields.enabled`: requests whose header names are not
    /// valid HTTP are dropped before they reach a target (request smuggling).
    #[serde(default)]
    pub drop_invalid_header_fields: bool,
    /// `deletion_protection.enabled`: no call deletes it until this is off.
    #[serde(default)]
    pub deletion_protection: bool,
    /// `access_logs.s3.*`: where every request is logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logs: Option<AccessLogs<R>>,
    /// Set at creation; left out of reads.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

/// Where a load balancer writes its access logs: `<bucket>/<prefix>/AWSLogs/…`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessLogs<R = String> {
    pub bucket: R,
    pub prefix: String,
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

const DROP_INVALID_HEADERS: &str = "routing.http.drop_invalid_header_fields.enabled";
const DELETION_PROTECTION: &str = "deletion_protection.enabled";
const LOGS_ENABLED: &str = "access_logs.s3.enabled";
const LOGS_BUCKET: &str = "access_logs.s3.bucket";
const LOGS_PREFIX: &str = "access_logs.s3.prefix";

/// The attributes the inputs set, as ModifyLoadBalancerAttributes takes them.
fn attributes(i: &LoadBalancerInputs) -> Vec<(&'static str, String)> {
    let mut all = vec![
        (DROP_INVALID_HEADERS, i.drop_invalid_header_fields.to_string()),
        (DELETION_PROTECTION, i.deletion_protection.to_string()),
        (LOGS_ENABLED, i.access_logs.is_some().to_string()),
    ];
    if let Some(logs) = &i.access_logs {
        all.push((LOGS_BUCKET, logs.bucket.clone()));
        all.push((LOGS_PREFIX, logs.prefix.clone()));
    }
    all
}

/// The attribute settings a DescribeLoadBalancerAttributes answer holds (an attribute AWS leaves
/// out is off).
fn observed(attrs: &[LoadBalancerAttribute]) -> (bool, bool, Option<AccessLogs>) {
    let get = |key: &str| attrs.iter().find(|a| a.key() == Some(key)).and_then(|a| a.value()).unwrap_or_default();
    let logs = (get(LOGS_ENABLED) == "true")
        .then(|| AccessLogs { bucket: get(LOGS_BUCKET).to_string(), prefix: get(LOGS_PREFIX).to_string() });
    (get(DROP_INVALID_HEADERS) == "true", get(DELETION_PROTECTION) == "true", logs)
}

async fn set_attributes(ctx: &Ctx, arn: &str, attrs: Vec<(&'static str, String)>) -> ProviderResult<()> {
    let attrs = attrs.into_iter().map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build());
    ctx.aws()?
        .elbv2
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .set_attributes(Some(attrs.collect()))
        .send()
        .await
        .map(drop)
        .map_err(|e| call_failed("ModifyLoadBalancerAttributes", e))
}

async fn attributes_of(ctx: &Ctx, arn: &str) -> ProviderResult<Vec<LoadBalancerAttribute>> {
    let out = ctx
        .aws()?
        .elbv2
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| call_failed("DescribeLoadBalancerAttributes", e))?;
    Ok(out.attributes().to_vec())
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

    async fn create_once(&self, ctx: &Ctx, urn: &Urn, i: &LoadBalancerInputs) -> ProviderResult<LoadBalancerOutputs> {
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
}

#[async_trait]
impl TypedProvider for LoadBalancerProvider {
    resource_type!(LOAD_BALANCER, LoadBalancerInputs => LoadBalancerOutputs,
        replace_on &["name", "internet_facing"], import Import::Never("not implemented yet"));

    /// The attributes are set whether the load balancer is new or was made by an earlier attempt
    /// whose answer was lost.
    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &LoadBalancerInputs) -> ProviderResult<LoadBalancerOutputs> {
        let out = match self.find(ctx, urn, i).await? {
            Some(found) => found,
            None => self.create_once(ctx, urn, i).await?,
        };
        set_attributes(ctx, &out.arn, attributes(i)).await?;
        Ok(out)
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
        let (before, after) = (attributes(old), attributes(new));
        if before != after {
            set_attributes(ctx, &out.arn, after.into_iter().filter(|a| !before.contains(a)).collect()).await?;
        }
        Ok(out.clone())
    }

    /// Refused while the program protects it; protection left on by an earlier program (or by
    /// hand) that the program no longer asks for is lifted first.
    async fn delete(
        &self,
        ctx: &Ctx,
        _: &Urn,
        i: &LoadBalancerInputs,
        out: &LoadBalancerOutputs,
    ) -> ProviderResult<()> {
        let elb = &ctx.aws()?.elbv2;
        crate::aws::delete_unless_protected(
            &format!("load balancer {}", i.name),
            "DeleteLoadBalancer",
            "OperationNotPermitted",
            i.deletion_protection,
            |c| not_found(Some(c)),
            || async { elb.delete_load_balancer().load_balancer_arn(&out.arn).send().await.map(drop) },
            || set_attributes(ctx, &out.arn, vec![(DELETION_PROTECTION, "false".into())]),
        )
        .await
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, LoadBalancerOutputs)]) -> Reads<Self> {
        let mut all = Vec::new();
        let mut pages = ctx.aws()?.elbv2.describe_load_balancers().into_paginator().send();
        while let Some(page) = pages.next().await {
            all.extend(page.map_err(|e| call_failed("DescribeLoadBalancers", e))?.load_balancers().iter().cloned());
        }
        let all = &all;
        read_each(items, |_, o| async move {
            let Some(lb) = all.iter().find(|l| l.load_balancer_arn() == Some(o.arn.as_str())) else { return Ok(None) };
            let mut subnets: Vec<String> =
                lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_string)).collect();
            subnets.sort();
            let mut sgs = lb.security_groups().to_vec();
            sgs.sort();
            let (drop_invalid_header_fields, deletion_protection, access_logs) =
                observed(&attributes_of(ctx, &o.arn).await?);
            Ok(Some((
                LoadBalancerInputs {
                    name: lb.load_balancer_name().unwrap_or_default().to_string(),
                    subnet_ids: subnets,
                    security_group_ids: sgs,
                    internet_facing: lb.scheme() == Some(&LoadBalancerSchemeEnum::InternetFacing),
                    drop_invalid_header_fields,
                    deletion_protection,
                    access_logs,
                    tags: Tags::new(),
                },
                lb_outputs(lb),
            )))
        })
        .await
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
