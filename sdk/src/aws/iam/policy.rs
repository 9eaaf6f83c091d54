//! What a role may do: managed policies attached, and policies embedded in it.

use super::*;
use crate::engine::provider::{Import, read_each};

/// Attaches a managed policy to a role.
#[derive(TypedBuilder, Clone, Debug)]
pub struct RolePolicyAttachment<'a> {
    #[builder(setter(into))]
    name: String,
    role: &'a RoleRef,
    /// `arn:aws:iam::aws:policy/…` ([`aws_managed_policy`]) or a customer policy ARN.
    #[builder(setter(into))]
    policy_arn: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttachmentInputs<R = String> {
    pub role_name: R,
    pub policy_arn: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttachmentOutputs {
    pub role_name: String,
    pub policy_arn: String,
}

pub(super) fn valid_policy_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws" || (parts[4].len() == 12 && parts[4].chars().all(|c| c.is_ascii_digit())))
        && parts[5].strip_prefix("policy/").is_some_and(|p| !p.is_empty())
}

impl RolePolicyAttachment<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Urn> {
        let mut c = Checker::new(s.urn(ATTACHMENT, &self.name));
        c.require(
            valid_policy_arn(&self.policy_arn),
            "policy_arn",
            format!("`{}` is not an IAM policy ARN", self.policy_arn),
            "write `arn:aws:iam::aws:policy/<name>` (see `aws_managed_policy`) or `arn:aws:iam::<account>:policy/<name>`",
        );
        s.report(c.into_errors());
        let inputs = AttachmentInputs { role_name: self.role.name(), policy_arn: self.policy_arn.clone() };
        Ok(s.declare(attachment_provider(), &self.name, inputs, vec![]))
    }
}

pub fn attachment_provider() -> Arc<dyn Provider> {
    typed(AttachmentProvider)
}

pub struct AttachmentProvider;

async fn attached(ctx: &Ctx, role: &str) -> ProviderResult<Option<Vec<String>>> {
    let mut arns = Vec::new();
    let mut pages = ctx.aws()?.iam.list_attached_role_policies().role_name(role).into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => arns.extend(p.attached_policies().iter().filter_map(|a| a.policy_arn().map(str::to_string))),
            Err(e) if is_no_such_entity(&e) => return Ok(None),
            Err(e) => return Err(call_failed("ListAttachedRolePolicies", e)),
        }
    }
    Ok(Some(arns))
}

#[async_trait]
impl TypedProvider for AttachmentProvider {
    resource_type!(ATTACHMENT, AttachmentInputs => AttachmentOutputs,
        replace_on &["role_name", "policy_arn"],
        import Import::Never("a link between a role and a policy, found again by its pair"));

    async fn create(&self, ctx: &Ctx, _: &Urn, inputs: &AttachmentInputs) -> ProviderResult<AttachmentOutputs> {
        // Attaching the same policy twice is a no-op in IAM: the natural key makes this idempotent.
        ctx.aws()?
            .iam
            .attach_role_policy()
            .role_name(&inputs.role_name)
            .policy_arn(&inputs.policy_arn)
            .send()
            .await
            .map_err(|e| call_failed("AttachRolePolicy", e))?;
        Ok(AttachmentOutputs { role_name: inputs.role_name.clone(), policy_arn: inputs.policy_arn.clone() })
    }

    async fn update(&self, _: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<AttachmentOutputs> {
        let out = change.outputs;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &AttachmentInputs, out: &AttachmentOutputs) -> ProviderResult<()> {
        match ctx.aws()?.iam.detach_role_policy().role_name(&out.role_name).policy_arn(&out.policy_arn).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_no_such_entity(&e) => Ok(()),
            Err(e) => Err(call_failed("DetachRolePolicy", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, AttachmentOutputs)]) -> Reads<Self> {
        let mut by_role: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
        for (_, o) in items {
            if !by_role.contains_key(o.role_name.as_str()) {
                by_role.insert(&o.role_name, attached(ctx, &o.role_name).await?);
            }
        }
        Ok(items
            .iter()
            .map(|(_, o)| {
                let present = by_role[o.role_name.as_str()].as_ref().is_some_and(|a| a.contains(&o.policy_arn));
                present.then(|| {
                    (AttachmentInputs { role_name: o.role_name.clone(), policy_arn: o.policy_arn.clone() }, o.clone())
                })
            })
            .collect())
    }

    async fn find(&self, ctx: &Ctx, _: &Urn, inputs: &AttachmentInputs) -> ProviderResult<Option<AttachmentOutputs>> {
        let present = attached(ctx, &inputs.role_name).await?.is_some_and(|a| a.contains(&inputs.policy_arn));
        Ok(present
            .then(|| AttachmentOutputs { role_name: inputs.role_name.clone(), policy_arn: inputs.policy_arn.clone() }))
    }
}

/// A policy embedded in a role.
#[derive(TypedBuilder, Clone, Debug)]
pub struct RolePolicy<'a> {
    #[builder(setter(into))]
    name: String,
    role: &'a RoleRef,
    policy: PolicyDocument,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InlineInputs<R = String> {
    pub role_name: R,
    pub policy_name: String,
    pub document: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InlineOutputs {
    pub role_name: String,
    pub policy_name: String,
}

impl RolePolicy<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Urn> {
        let mut c = Checker::new(s.urn(INLINE, &self.name));
        c.require(
            !self.name.is_empty()
                && self.name.len() <= 128
                && self.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "+=,.@_-".contains(ch)),
            "name",
            format!("`{}` is not a valid IAM policy name", self.name),
            "use at most 128 letters, digits and +=,.@_-",
        );
        self.policy.check(&mut c, "policy");
        c.require(
            self.policy.0.to_string().len() <= 10_240,
            "policy",
            "inline policies of a role are limited to 10,240 characters",
            "split it, or use a managed policy",
        );
        s.report(c.into_errors());
        let inputs = InlineInputs {
            role_name: self.role.name(),
            policy_name: self.name.clone(),
            document: self.policy.0.clone(),
        };
        Ok(s.declare(inline_provider(), &self.name, inputs, vec![]))
    }
}

pub fn inline_provider() -> Arc<dyn Provider> {
    typed(InlineProvider)
}

pub struct InlineProvider;

async fn put_inline(ctx: &Ctx, inputs: &InlineInputs) -> ProviderResult<InlineOutputs> {
    ctx.aws()?
        .iam
        .put_role_policy()
        .role_name(&inputs.role_name)
        .policy_name(&inputs.policy_name)
        .policy_document(inputs.document.to_string())
        .send()
        .await
        .map_err(|e| call_failed("PutRolePolicy", e))?;
    Ok(InlineOutputs { role_name: inputs.role_name.clone(), policy_name: inputs.policy_name.clone() })
}

#[async_trait]
impl TypedProvider for InlineProvider {
    resource_type!(INLINE, InlineInputs => InlineOutputs,
        replace_on &["role_name", "policy_name"],
        import Import::Never("an inline policy of a role, found again by its role and name"));

    /// PutRolePolicy is an upsert: idempotent by its natural key.
    async fn create(&self, ctx: &Ctx, _: &Urn, inputs: &InlineInputs) -> ProviderResult<InlineOutputs> {
        put_inline(ctx, inputs).await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<InlineOutputs> {
        let new = change.new;
        put_inline(ctx, new).await
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &InlineInputs, out: &InlineOutputs) -> ProviderResult<()> {
        found(
            "DeleteRolePolicy",
            |c| c == Some("NoSuchEntity"),
            ctx.aws()?.iam.delete_role_policy().role_name(&out.role_name).policy_name(&out.policy_name).send().await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, InlineOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            match ctx.aws()?.iam.get_role_policy().role_name(&o.role_name).policy_name(&o.policy_name).send().await {
                Ok(p) => Ok(Some((
                    InlineInputs {
                        role_name: o.role_name.clone(),
                        policy_name: o.policy_name.clone(),
                        document: decode_policy(p.policy_document()),
                    },
                    o.clone(),
                ))),
                Err(e) if is_no_such_entity(&e) => Ok(None),
                Err(e) => Err(call_failed("GetRolePolicy", e)),
            }
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &InlineInputs) -> ProviderResult<Option<InlineOutputs>> {
        let o = InlineOutputs { role_name: inputs.role_name.clone(), policy_name: inputs.policy_name.clone() };
        Ok(self.read_one(ctx, urn, o.clone()).await?.map(|_| o))
    }
}
