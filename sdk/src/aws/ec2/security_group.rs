//! `aws:ec2:SecurityGroup` and `aws:ec2:SecurityGroupIngressRule`.
//!
//! Rules are resources of their own, so that two groups can admit each other without a cycle, and
//! a rule change never rewrites the group.

use super::delete_idempotent;
use super::tagged::TaggedResource;
use super::vpc::VpcRef;
use super::{Tags, check_cidr, check_tags, filter, is_not_found, tag_specification, tag_value, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::create::create_or_find;
use crate::aws::found;
use crate::aws::{Failure, TAG_URN, call_failed, classify, error_code};
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderResult, Reads, TypedProvider, Update, typed};
use crate::model::{Checker, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, SecurityGroupRule, UserIdGroupPair};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:SecurityGroup";
pub const RULE_TYPE: &str = "aws:ec2:SecurityGroupIngressRule";

/// A security group. It admits nothing until rules are added; outbound traffic is open (the AWS
/// default).
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::Vpc;
/// let mut s = Stack::new("demo");
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// let lb = SecurityGroup::builder().name("lb").vpc(&vpc).description("load balancer").build().add(&mut s).unwrap();
/// let app = SecurityGroup::builder().name("app").vpc(&vpc).description("application").build().add(&mut s).unwrap();
/// IngressRule::builder().name("https-from-internet").group(&lb).protocol(Protocol::Tcp).ports(443..=443)
///     .from_cidr("0.0.0.0/0").build().add(&mut s).unwrap();
/// IngressRule::builder().name("app-from-lb").group(&app).protocol(Protocol::Tcp).ports(8080..=8080)
///     .from_group(&lb).build().add(&mut s).unwrap();
/// assert_eq!(s.finish().unwrap().nodes().len(), 5);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct SecurityGroup<'a> {
    #[builder(setter(into))]
    name: String,
    vpc: &'a VpcRef,
    #[builder(default = "Managed by fabric".to_string(), setter(into))]
    description: String,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupInputs<R = String> {
    pub group_name: String,
    pub description: String,
    pub vpc_id: R,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupOutputs {
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct SecurityGroupRef {
    urn: Urn,
    vpc: Urn,
}

impl SecurityGroupRef {
    outputs!(urn => id: String);
}

fn valid_description(d: &str) -> bool {
    d.len() <= 255 && d.chars().all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c))
}

impl SecurityGroup<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<SecurityGroupRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        c.require(
            valid_description(&self.description),
            "description",
            "a security group description has at most 255 of the characters a-z A-Z 0-9 space ._-:/()#,@[]+=&;{}!$*",
            "remove other characters",
        );
        check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        // The group name must be unique in its VPC and cannot change; the suffix changes with the
        // description, so that a replacement never collides with the group it replaces.
        let group_name =
            format!("{}-{}-{}", s.name(), self.name.replace('/', "-"), crate::model::short_hash(&self.description));
        let inputs = SecurityGroupInputs {
            group_name,
            description: self.description.clone(),
            vpc_id: self.vpc.id(),
            tags: with_name(&self.tags, &self.name),
        };
        let urn = s.declare(provider(), &self.name, inputs, vec![]);
        Ok(SecurityGroupRef { urn, vpc: self.vpc.urn().clone() })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(SecurityGroupProvider)
}

pub struct SecurityGroupProvider;

#[async_trait]
impl TaggedResource for SecurityGroupProvider {
    resource_type!(TYPE, SecurityGroupInputs => SecurityGroupOutputs,
        item aws_sdk_ec2::types::SecurityGroup { id: group_id }, create "CreateSecurityGroup",
        replace_on &["group_name", "description", "vpc_id"], import Import::Never("not implemented yet"));

    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &SecurityGroupInputs,
    ) -> Result<SecurityGroupOutputs, Failure> {
        let r = super::send_once!(
            ec2.create_security_group()
                .group_name(&inputs.group_name)
                .description(&inputs.description)
                .vpc_id(&inputs.vpc_id)
                .tag_specifications(tag_specification(ResourceType::SecurityGroup, ctx, urn, &inputs.tags))
        )?;
        Ok(SecurityGroupOutputs { id: r.group_id().unwrap_or_default().to_string() })
    }

    async fn delete(&self, ctx: &Ctx, _: &SecurityGroupInputs, out: &SecurityGroupOutputs) -> ProviderResult<()> {
        let ec2 = &ctx.aws()?.ec2;
        delete_idempotent("DeleteSecurityGroup", || ec2.delete_security_group().group_id(&out.id).send()).await
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        let request = ctx.aws()?.ec2.describe_security_groups().set_filters(Some(filters));
        Ok(super::describe_all!(request, "DescribeSecurityGroups", security_groups))
    }

    async fn observe(&self, _: &Ctx, g: &Self::Item) -> ProviderResult<(SecurityGroupInputs, SecurityGroupOutputs)> {
        let inputs = SecurityGroupInputs {
            group_name: g.group_name().unwrap_or_default().to_string(),
            description: g.description().unwrap_or_default().to_string(),
            vpc_id: g.vpc_id().unwrap_or_default().to_string(),
            tags: user_tags(g.tags()),
        };
        Ok((inputs, SecurityGroupOutputs { id: g.group_id().unwrap_or_default().to_string() }))
    }
}

/// The IP protocol of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol and port.
    All,
}

impl Protocol {
    fn as_aws(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "-1",
        }
    }
}

/// An ingress rule of a security group: traffic from a CIDR block or from another group.
///
/// Give exactly one of `from_cidr` and `from_group`.
#[derive(TypedBuilder, Clone, Debug)]
pub struct IngressRule<'a> {
    #[builder(setter(into))]
    name: String,
    /// The group that admits the traffic.
    group: &'a SecurityGroupRef,
    #[builder(default = Protocol::Tcp)]
    protocol: Protocol,
    /// Port range (ICMP: type..=code; `Protocol::All`: leave unset).
    #[builder(default = -1..=-1)]
    ports: RangeInclusive<i32>,
    #[builder(default, setter(strip_option, into))]
    from_cidr: Option<String>,
    #[builder(default, setter(strip_option))]
    from_group: Option<&'a SecurityGroupRef>,
    #[builder(default, setter(into))]
    description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IngressRuleInputs<R = String> {
    pub security_group_id: R,
    pub ip_protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub cidr_ipv4: Option<String>,
    pub source_security_group_id: Option<R>,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IngressRuleOutputs {
    pub id: String,
    pub security_group_id: String,
}

#[derive(Clone, Debug)]
pub struct IngressRuleRef {
    urn: Urn,
}

impl IngressRuleRef {
    pub fn urn(&self) -> &Urn {
        &self.urn
    }
}

impl IngressRule<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<IngressRuleRef> {
        let mut c = Checker::new(s.urn(RULE_TYPE, &self.name));
        let (from, to) = (*self.ports.start(), *self.ports.end());
        match self.protocol {
            Protocol::Tcp | Protocol::Udp => {
                c.require(
                    (0..=65535).contains(&from) && (0..=65535).contains(&to),
                    "ports",
                    format!("ports {from}..={to} are outside 0..=65535"),
                    "give a port range such as `443..=443`",
                );
                c.require(
                    from <= to,
                    "ports",
                    format!("the range {from}..={to} is empty"),
                    "write the lower port first",
                );
            }
            Protocol::Icmp => c.require(
                (-1..=255).contains(&from) && (-1..=255).contains(&to),
                "ports",
                format!("ICMP type and code {from}..={to} are outside -1..=255"),
                "give `type..=code`, or `-1..=-1` for all ICMP",
            ),
            Protocol::All => c.require(
                from == -1 && to == -1,
                "ports",
                format!("`Protocol::All` admits every port; the range {from}..={to} would be ignored"),
                "leave `ports` unset, or choose `Protocol::Tcp`/`Protocol::Udp`",
            ),
        }
        match (&self.from_cidr, self.from_group) {
            (Some(_), Some(_)) | (None, None) => c.error(
                "source",
                "a rule needs exactly one source: `from_cidr` or `from_group`",
                "give one of them (two sources are two rules)",
            ),
            (Some(cidr), None) => {
                check_cidr(&mut c, "from_cidr", cidr, 0, 32);
            }
            (None, Some(g)) => c.require(
                g.vpc == self.group.vpc,
                "from_group",
                format!("group \"{}\" is in another VPC than group \"{}\"", g.urn.name(), self.group.urn.name()),
                "refer to a group of the same VPC",
            ),
        }
        c.require(
            self.description.is_empty() || valid_description(&self.description),
            "description",
            "a rule description has at most 255 of the characters a-z A-Z 0-9 space ._-:/()#,@[]+=&;{}!$*",
            "remove other characters",
        );
        s.report(c.into_errors());
        let inputs = IngressRuleInputs {
            security_group_id: self.group.id(),
            ip_protocol: self.protocol.as_aws().to_string(),
            from_port: from,
            to_port: to,
            cidr_ipv4: self.from_cidr.clone(),
            source_security_group_id: self.from_group.map(|g| g.id()),
            description: self.description.clone(),
        };
        Ok(IngressRuleRef { urn: s.declare(rule_provider(), &self.name, inputs, vec![]) })
    }
}

pub fn rule_provider() -> Arc<dyn Provider> {
    typed(IngressRuleProvider)
}

pub struct IngressRuleProvider;

fn permission(inputs: &IngressRuleInputs) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(&inputs.ip_protocol);
    if inputs.ip_protocol != "-1" {
        p = p.from_port(inputs.from_port).to_port(inputs.to_port);
    }
    let desc = (!inputs.description.is_empty()).then(|| inputs.description.clone());
    if let Some(cidr) = &inputs.cidr_ipv4 {
        p = p.ip_ranges(IpRange::builder().cidr_ip(cidr).set_description(desc.clone()).build());
    }
    if let Some(g) = &inputs.source_security_group_id {
        p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).set_description(desc).build());
    }
    p.build()
}

fn observed(r: &SecurityGroupRule) -> IngressRuleInputs {
    let all = r.ip_protocol() == Some("-1");
    IngressRuleInputs {
        security_group_id: r.group_id().unwrap_or_default().to_string(),
        ip_protocol: r.ip_protocol().unwrap_or_default().to_string(),
        from_port: if all { -1 } else { r.from_port().unwrap_or(-1) },
        to_port: if all { -1 } else { r.to_port().unwrap_or(-1) },
        cidr_ipv4: r.cidr_ipv4().map(str::to_string),
        source_security_group_id: r.referenced_group_info().and_then(|g| g.group_id()).map(str::to_string),
        description: r.description().unwrap_or_default().to_string(),
    }
}

/// The description of the group pair that grants `rule`, from the group's own permissions.
fn pair_description(
    groups: &[aws_sdk_ec2::types::SecurityGroup],
    rule: &IngressRuleInputs,
    source: &str,
) -> Option<String> {
    let g = groups.iter().find(|g| g.group_id() == Some(rule.security_group_id.as_str()))?;
    g.ip_permissions()
        .iter()
        .filter(|p| {
            p.ip_protocol() == Some(rule.ip_protocol.as_str())
                && (rule.ip_protocol == "-1"
                    || (p.from_port() == Some(rule.from_port) && p.to_port() == Some(rule.to_port)))
        })
        .flat_map(|p| p.user_id_group_pairs())
        .find(|pair| pair.group_id() == Some(source))
        .and_then(|pair| pair.description())
        .map(str::to_string)
}

/// Whether rule `r` is the rule `inputs` describes (its natural key: everything but the description).
fn same_rule(r: &SecurityGroupRule, inputs: &IngressRuleInputs) -> bool {
    let o = observed(r);
    r.is_egress() != Some(true)
        && o.security_group_id == inputs.security_group_id
        && o.ip_protocol == inputs.ip_protocol
        && o.from_port == inputs.from_port
        && o.to_port == inputs.to_port
        && o.cidr_ipv4 == inputs.cidr_ipv4
        && o.source_security_group_id == inputs.source_security_group_id
}

impl IngressRuleProvider {
    async fn rules_of(&self, ctx: &Ctx, group_ids: Vec<&str>) -> ProviderResult<Vec<SecurityGroupRule>> {
        let mut out = Vec::new();
        let mut pages = ctx
            .aws()?
            .ec2
            .describe_security_group_rules()
            .filters(filter("group-id", group_ids))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => out.extend(p.security_group_rules().iter().cloned()),
                Err(e) if is_not_found(error_code(&e)) => return Ok(Vec::new()),
                Err(e) => return Err(call_failed("DescribeSecurityGroupRules", e)),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl TypedProvider for IngressRuleProvider {
    resource_type!(RULE_TYPE, IngressRuleInputs => IngressRuleOutputs,
        replace_on &["security_group_id", "ip_protocol", "from_port", "to_port", "cidr_ipv4", "source_security_group_id"],
        import Import::Never("a rule of a security group, found again by its group and source"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &IngressRuleInputs) -> ProviderResult<IngressRuleOutputs> {
        let ec2 = &ctx.aws()?.ec2;
        create_or_find(
            "AuthorizeSecurityGroupIngress",
            Duration::from_millis(500),
            || async {
                let r = super::send_once!(
                    unclassified ec2
                        .authorize_security_group_ingress()
                        .group_id(&inputs.security_group_id)
                        .ip_permissions(permission(inputs))
                        .tag_specifications(tag_specification(ResourceType::SecurityGroupRule, ctx, urn, &Tags::new()))
                );
                match r {
                    Ok(out) => {
                        let id = out
                            .security_group_rules()
                            .first()
                            .and_then(|r| r.security_group_rule_id())
                            .unwrap_or_default();
                        Ok(IngressRuleOutputs {
                            id: id.to_string(),
                            security_group_id: inputs.security_group_id.clone(),
                        })
                    }
                    // The same permission already exists: it is this rule (natural key).
                    Err(e) if error_code(&e) == Some("InvalidPermission.Duplicate") => {
                        match self.find(ctx, urn, inputs).await {
                            Ok(Some(found)) => Ok(found),
                            _ => Err(classify(&e)),
                        }
                    }
                    Err(e) => Err(classify(&e)),
                }
            },
            || self.find(ctx, urn, inputs),
        )
        .await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<IngressRuleOutputs> {
        let Update { outputs: out, new, .. } = change;
        ctx.aws()?
            .ec2
            .update_security_group_rule_descriptions_ingress()
            .group_id(&new.security_group_id)
            .ip_permissions(permission(new))
            .send()
            .await
            .map_err(|e| call_failed("UpdateSecurityGroupRuleDescriptionsIngress", e))?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &IngressRuleInputs, out: &IngressRuleOutputs) -> ProviderResult<()> {
        found(
            "RevokeSecurityGroupIngress",
            is_not_found,
            ctx.aws()?
                .ec2
                .revoke_security_group_ingress()
                .group_id(&out.security_group_id)
                .security_group_rule_ids(&out.id)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, IngressRuleOutputs)]) -> Reads<Self> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups: Vec<&str> = items.iter().map(|(_, o)| o.security_group_id.as_str()).collect();
        groups.sort_unstable();
        groups.dedup();
        let rules = self.rules_of(ctx, groups.clone()).await?;
        // DescribeSecurityGroupRules leaves out the description of group-referencing rules in
        // the emulator; the group's own permissions carry it (one more batched call).
        let needs_descriptions = rules.iter().any(|r| r.referenced_group_info().is_some() && r.description().is_none());
        let group_permissions = if needs_descriptions {
            let mut out = Vec::new();
            let mut pages =
                ctx.aws()?.ec2.describe_security_groups().filters(filter("group-id", groups)).into_paginator().send();
            while let Some(page) = pages.next().await {
                out.extend(
                    page.map_err(|e| call_failed("DescribeSecurityGroups", e))?.security_groups().iter().cloned(),
                );
            }
            out
        } else {
            Vec::new()
        };
        Ok(items
            .iter()
            .map(|(_, out)| {
                let r = rules.iter().find(|r| r.security_group_rule_id() == Some(out.id.as_str()))?;
                let mut o = observed(r);
                if o.description.is_empty()
                    && let Some(source) = &o.source_security_group_id
                {
                    o.description = pair_description(&group_permissions, &o, source).unwrap_or_default();
                }
                Some((o, out.clone()))
            })
            .collect())
    }

    async fn find(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &IngressRuleInputs,
    ) -> ProviderResult<Option<IngressRuleOutputs>> {
        let rules = self.rules_of(ctx, vec![inputs.security_group_id.as_str()]).await?;
        let by_tag = rules.iter().find(|r| tag_value(r.tags(), TAG_URN) == Some(urn.as_str()));
        let found = by_tag.or_else(|| rules.iter().find(|r| same_rule(r, inputs)));
        Ok(found
            .and_then(|r| r.security_group_rule_id())
            .map(|id| IngressRuleOutputs { id: id.to_string(), security_group_id: inputs.security_group_id.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_the_description() {
        assert_eq!(crate::model::short_hash("a"), crate::model::short_hash("a"));
        assert_ne!(crate::model::short_hash("a"), crate::model::short_hash("b"));
        assert_eq!(crate::model::short_hash("x").len(), 6);
    }

    #[test]
    fn permission_carries_the_source() {
        let inputs = IngressRuleInputs {
            security_group_id: "sg-1".into(),
            ip_protocol: "tcp".into(),
            from_port: 443,
            to_port: 443,
            cidr_ipv4: None,
            source_security_group_id: Some("sg-2".into()),
            description: "from lb".into(),
        };
        let p = permission(&inputs);
        assert_eq!(p.from_port(), Some(443));
        assert_eq!(p.user_id_group_pairs()[0].group_id(), Some("sg-2"));
        assert_eq!(p.user_id_group_pairs()[0].description(), Some("from lb"));
        assert!(p.ip_ranges().is_empty());
    }
}
