//! AWS IAM: roles, managed-policy attachments and inline policies.
//!
//! Role names are account-wide, so fabric names a role `<stack>-<name>`. Attachments and inline
//! policies cannot carry tags: they are found by their natural keys (role and policy ARN, role and
//! policy name), which makes creating them idempotent.

use super::{TAG_URN, call_failed, classify, error_code};
use crate::aws::AwsCtx;
use crate::aws::create::{create_or_find, no_retry_iam};
use crate::aws::found;
use crate::engine::provider::{
    Ctx, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, typed,
};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const ROLE: &str = "aws:iam:Role";
pub const ATTACHMENT: &str = "aws:iam:RolePolicyAttachment";
pub const INLINE: &str = "aws:iam:RolePolicy";

/// An IAM policy document (JSON).
///
/// ```
/// use fabric::aws::iam::PolicyDocument;
/// let trust = PolicyDocument::trust_services(&["backup.amazonaws.com"]);
/// assert_eq!(trust.json()["Statement"][0]["Action"], "sts:AssumeRole");
/// let read = PolicyDocument::new().allow(&["s3:GetObject"], &["arn:aws:s3:::my-bucket/*"]);
/// assert_eq!(read.json()["Statement"][0]["Effect"], "Allow");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument(Value);

impl Default for PolicyDocument {
    fn default() -> Self {
        PolicyDocument::new()
    }
}

impl PolicyDocument {
    pub fn new() -> Self {
        PolicyDocument(json!({"Version": "2012-10-17", "Statement": []}))
    }

    /// Lets the given AWS services assume a role (`backup.amazonaws.com`, `eks.amazonaws.com` …).
    pub fn trust_services(services: &[&str]) -> Self {
        PolicyDocument(json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": services}, "Action": "sts:AssumeRole"}],
        }))
    }

    /// Lets pods of an EKS cluster take the role through EKS Pod Identity (the
    /// `eks-pod-identity-agent` add-on and a pod identity association name which service account).
    pub fn trust_eks_pods() -> Self {
        PolicyDocument(json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": ["pods.eks.amazonaws.com"]},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}],
        }))
    }

    fn statement(mut self, effect: &str, actions: &[&str], resources: &[&str]) -> Self {
        if let Some(list) = self.0["Statement"].as_array_mut() {
            list.push(json!({"Effect": effect, "Action": actions, "Resource": resources}));
        }
        self
    }

    pub fn allow(self, actions: &[&str], resources: &[&str]) -> Self {
        self.statement("Allow", actions, resources)
    }

    /// Allows `actions` on `resources` only under `condition` (an IAM `Condition` block, such as
    /// `{"StringEquals": {"aws:ResourceTag/team": "web"}}`).
    pub fn allow_when(mut self, actions: &[&str], resources: &[&str], condition: Value) -> Self {
        if let Some(list) = self.0["Statement"].as_array_mut() {
            list.push(json!({"Effect": "Allow", "Action": actions, "Resource": resources, "Condition": condition}));
        }
        self
    }

    pub fn deny(self, actions: &[&str], resources: &[&str]) -> Self {
        self.statement("Deny", actions, resources)
    }

    pub fn json(&self) -> &Value {
        &self.0
    }

    /// Checks the statements: an effect, actions of the form `service:Action`, a principal or a
    /// resource.
    fn check(&self, c: &mut Checker, field: &str) {
        let statements = self.0["Statement"].as_array().cloned().unwrap_or_default();
        c.require(!statements.is_empty(), field, "the policy has no statement", "add `.allow(actions, resources)`");
        for (i, st) in statements.iter().enumerate() {
            let effect = st["Effect"].as_str().unwrap_or("");
            c.require(
                effect == "Allow" || effect == "Deny",
                field,
                format!("statement {i} has effect `{effect}`"),
                "use Allow or Deny",
            );
            let actions: Vec<&str> = match &st["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            c.require(!actions.is_empty(), field, format!("statement {i} has no action"), "name at least one action");
            for a in actions {
                let ok = a == "*" || a.split_once(':').is_some_and(|(svc, act)| !svc.is_empty() && !act.is_empty());
                c.require(
                    ok,
                    field,
                    format!("statement {i}: `{a}` is not an action"),
                    "write actions as `service:Action`, such as `s3:GetObject`",
                );
            }
            let has_target = st.get("Principal").is_some()
                || st["Resource"].as_array().is_some_and(|r| !r.is_empty())
                || st["Resource"].is_string();
            c.require(
                has_target,
                field,
                format!("statement {i} has no resource"),
                "name the resources it applies to (or `*`)",
            );
        }
    }
}

/// `arn:aws:iam::aws:policy/<path>`: an AWS managed policy.
pub fn aws_managed_policy(path: &str) -> String {
    format!("arn:aws:iam::aws:policy/{path}")
}

pub use crate::aws::Tags;

/// An IAM role.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::iam::{PolicyDocument, Role, RolePolicyAttachment, aws_managed_policy};
/// let mut s = Stack::new("demo");
/// let role = Role::builder().name("backup").trust(PolicyDocument::trust_services(&["backup.amazonaws.com"]))
///     .build().add(&mut s).unwrap();
/// RolePolicyAttachment::builder().name("backup-service").role(&role)
///     .policy_arn(aws_managed_policy("service-role/AWSBackupServiceRolePolicyForBackup")).build().add(&mut s).unwrap();
/// assert_eq!(s.finish().unwrap().nodes().len(), 2);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Role {
    #[builder(setter(into))]
    name: String,
    /// Who may assume the role.
    trust: PolicyDocument,
    #[builder(default, setter(into))]
    description: String,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleInputs {
    pub role_name: String,
    pub assume_role_policy: Value,
    pub description: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleOutputs {
    pub arn: String,
    pub name: String,
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct RoleRef {
    urn: Urn,
    name: String,
}

impl RoleRef {
    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    pub fn arn(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "arn")
    }

    /// The role's name, `<stack>-<name>` (known before apply).
    pub fn name(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "name")
    }

    pub fn role_name(&self) -> &str {
        &self.name
    }
}

fn valid_role_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

impl Role {
    pub fn add(self, s: &mut Stack) -> crate::Result<RoleRef> {
        let mut c = Checker::new(s.urn(ROLE, &self.name));
        let role_name = format!("{}-{}", s.name(), self.name.replace('/', "-"));
        c.require(
            valid_role_name(&role_name),
            "name",
            format!("the role name `{role_name}` (stack-name) is not a valid IAM role name"),
            "use at most 64 characters in all, of letters, digits and +=,.@_-",
        );
        c.require(
            self.description.len() <= 1000,
            "description",
            "the description is longer than 1000 characters",
            "shorten it",
        );
        let principals =
            self.trust.json()["Statement"].as_array().is_some_and(|st| st.iter().all(|s| s.get("Principal").is_some()));
        c.require(
            principals,
            "trust",
            "every statement of a trust policy needs a Principal",
            "build it with `PolicyDocument::trust_services`",
        );
        self.trust.check(&mut c, "trust");
        crate::aws::check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let inputs = RoleInputs {
            role_name: role_name.clone(),
            assume_role_policy: self.trust.0.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
        };
        Ok(RoleRef { urn: s.declare(role_provider(), &self.name, inputs, vec![]), name: role_name })
    }
}

pub fn role_provider() -> Arc<dyn Provider> {
    typed(RoleProvider)
}

pub struct RoleProvider;

/// IAM answers policy documents URL-encoded (RFC 3986); the emulator answers them plain.
fn decode_policy(doc: &str) -> Value {
    if let Ok(v) = serde_json::from_str(doc) {
        return v;
    }
    let raw = doc.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = (raw[i] == b'%' && i + 3 <= raw.len())
            .then(|| std::str::from_utf8(&raw[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match hex {
            Some(b) => {
                bytes.push(b);
                i += 3;
            }
            None => {
                bytes.push(raw[i]);
                i += 1;
            }
        }
    }
    serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(doc.to_string()))
}

fn tags_of(tags: &[Tag]) -> Tags {
    super::user_tags_of(tags.iter().map(|t| (t.key().to_string(), t.value().to_string())))
}

fn iam_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> ProviderResult<Vec<Tag>> {
    super::with_fabric_tags(ctx, urn, tags).into_iter().map(|(k, v)| iam_tag(k, v)).collect()
}

fn iam_tag(key: String, value: String) -> ProviderResult<Tag> {
    Tag::builder().key(key).value(value).build().map_err(|e| ProviderError(format!("IAM tag: {e}")))
}

fn is_no_such_entity<E: aws_sdk_iam::error::ProvideErrorMetadata>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    error_code(e) == Some("NoSuchEntity")
}

impl RoleProvider {
    async fn get(&self, ctx: &Ctx, name: &str) -> ProviderResult<Option<aws_sdk_iam::types::Role>> {
        Ok(found("GetRole", |c| c == Some("NoSuchEntity"), ctx.aws()?.iam.get_role().role_name(name).send().await)?
            .and_then(|out| out.role().cloned()))
    }

    async fn observe(&self, ctx: &Ctx, role: &aws_sdk_iam::types::Role) -> ProviderResult<RoleInputs> {
        let tags = ctx
            .aws()?
            .iam
            .list_role_tags()
            .role_name(role.role_name())
            .send()
            .await
            .map_err(|e| call_failed("ListRoleTags", e))?;
        Ok(RoleInputs {
            role_name: role.role_name().to_string(),
            assume_role_policy: role.assume_role_policy_document().map(decode_policy).unwrap_or(Value::Null),
            description: role.description().unwrap_or_default().to_string(),
            tags: tags_of(tags.tags()),
        })
    }
}

fn role_outputs(r: &aws_sdk_iam::types::Role) -> RoleOutputs {
    RoleOutputs { arn: r.arn().to_string(), name: r.role_name().to_string(), id: r.role_id().to_string() }
}

#[async_trait]
impl TypedProvider for RoleProvider {
    type Inputs = RoleInputs;
    type Outputs = RoleOutputs;
    const TYPE: &'static str = ROLE;
    const REPLACE_ON: &'static [&'static str] = &["role_name"];

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &RoleInputs) -> ProviderResult<RoleOutputs> {
        let iam = &ctx.aws()?.iam;
        let tags = iam_tags(ctx, urn, &inputs.tags)?;
        create_or_find(
            "CreateRole",
            Duration::from_millis(500),
            || async {
                let req = iam
                    .create_role()
                    .role_name(&inputs.role_name)
                    .assume_role_policy_document(inputs.assume_role_policy.to_string())
                    .set_description((!inputs.description.is_empty()).then(|| inputs.description.clone()))
                    .set_tags(Some(tags.clone()))
                    .customize()
                    .config_override(no_retry_iam());
                match req.send().await {
                    Ok(out) => Ok(out.role().map(role_outputs).unwrap_or(RoleOutputs { arn: String::new(), name: String::new(), id: String::new() })),
                    Err(e) if error_code(&e) == Some("EntityAlreadyExists") => match self.find(ctx, urn, inputs).await {
                        Ok(Some(found)) => Ok(found),
                        _ => Err(crate::aws::Failure::Refused {
                            code: "EntityAlreadyExists".into(),
                            message: format!(
                                "a role named `{}` exists and was not created by {urn}; rename this role or delete that one",
                                inputs.role_name
                            ),
                        }),
                    },
                    Err(e) => Err(classify(&e)),
                }
            },
            || self.find(ctx, urn, inputs),
        )
        .await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<RoleOutputs> {
        let Update { old, outputs: out, new } = change;
        let iam = &ctx.aws()?.iam;
        if old.assume_role_policy != new.assume_role_policy {
            iam.update_assume_role_policy()
                .role_name(&out.name)
                .policy_document(new.assume_role_policy.to_string())
                .send()
                .await
                .map_err(|e| call_failed("UpdateAssumeRolePolicy", e))?;
        }
        if old.description != new.description {
            iam.update_role()
                .role_name(&out.name)
                .description(&new.description)
                .send()
                .await
                .map_err(|e| call_failed("UpdateRole", e))?;
        }
        let name = out.name.as_str();
        let remove = |keys| async move {
            let call = iam.untag_role().role_name(name).set_tag_keys(Some(keys));
            call.send().await.map(drop).map_err(|e| call_failed("UntagRole", e))
        };
        let set = |pairs: Vec<(String, String)>| async move {
            let tags = pairs.into_iter().map(|(k, v)| iam_tag(k, v)).collect::<ProviderResult<Vec<_>>>()?;
            let call = iam.tag_role().role_name(name).set_tags(Some(tags));
            call.send().await.map(drop).map_err(|e| call_failed("TagRole", e))
        };
        super::TagChanges::sync(&old.tags, &new.tags, remove, set).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &RoleInputs, out: &RoleOutputs) -> ProviderResult<()> {
        match ctx.aws()?.iam.delete_role().role_name(&out.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_no_such_entity(&e) => Ok(()),
            Err(e) if error_code(&e) == Some("DeleteConflict") => Err(ProviderError(format!(
                "DeleteRole {}: policies not managed by this stack are still attached to it; detach them, then destroy again",
                out.name
            ))),
            Err(e) => Err(call_failed("DeleteRole", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, RoleOutputs)]) -> Reads<Self> {
        // ListRoles is one paginated call for the account; tags come per role.
        let mut roles = Vec::new();
        let mut pages = ctx.aws()?.iam.list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            roles.extend(page.map_err(|e| call_failed("ListRoles", e))?.roles().iter().cloned());
        }
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            match roles.iter().find(|r| r.role_name() == o.name) {
                Some(r) => out.push(Some((self.observe(ctx, r).await?, role_outputs(r)))),
                None => out.push(None),
            }
        }
        Ok(out)
    }

    const IMPORTABLE: bool = true;

    /// By role name.
    async fn import(&self, ctx: &Ctx, _: &Urn, id: &str) -> Read<Self> {
        let Some(role) = self.get(ctx, id).await? else { return Ok(None) };
        Ok(Some((self.observe(ctx, &role).await?, role_outputs(&role))))
    }

    /// The role of the program's name, if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, inputs: &RoleInputs) -> ProviderResult<Vec<String>> {
        Ok(self.get(ctx, &inputs.role_name).await?.map(|r| r.role_name().to_string()).into_iter().collect())
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &RoleInputs) -> ProviderResult<Option<RoleOutputs>> {
        let Some(role) = self.get(ctx, &inputs.role_name).await? else { return Ok(None) };
        let tags = ctx
            .aws()?
            .iam
            .list_role_tags()
            .role_name(&inputs.role_name)
            .send()
            .await
            .map_err(|e| call_failed("ListRoleTags", e))?;
        let ours = tags.tags().iter().any(|t| t.key() == TAG_URN && t.value() == urn.as_str());
        Ok(ours.then(|| role_outputs(&role)))
    }
}

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

fn valid_policy_arn(arn: &str) -> bool {
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
    type Inputs = AttachmentInputs;
    type Outputs = AttachmentOutputs;
    const TYPE: &'static str = ATTACHMENT;
    const REPLACE_ON: &'static [&'static str] = &["role_name", "policy_arn"];

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
    type Inputs = InlineInputs;
    type Outputs = InlineOutputs;
    const TYPE: &'static str = INLINE;
    const REPLACE_ON: &'static [&'static str] = &["role_name", "policy_name"];

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
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            match ctx.aws()?.iam.get_role_policy().role_name(&o.role_name).policy_name(&o.policy_name).send().await {
                Ok(p) => out.push(Some((
                    InlineInputs {
                        role_name: o.role_name.clone(),
                        policy_name: o.policy_name.clone(),
                        document: decode_policy(p.policy_document()),
                    },
                    o.clone(),
                ))),
                Err(e) if is_no_such_entity(&e) => out.push(None),
                Err(e) => return Err(call_failed("GetRolePolicy", e)),
            }
        }
        Ok(out)
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &InlineInputs) -> ProviderResult<Option<InlineOutputs>> {
        let o = InlineOutputs { role_name: inputs.role_name.clone(), policy_name: inputs.policy_name.clone() };
        Ok(self.read_one(ctx, urn, o.clone()).await?.map(|_| o))
    }
}

/// Every IAM provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![role_provider(), attachment_provider(), inline_provider()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_come_back_url_encoded() {
        let doc =
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let encoded: String = doc
            .to_string()
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        assert_eq!(decode_policy(&encoded), doc);
        assert_eq!(decode_policy(&doc.to_string()), doc);
    }

    #[test]
    fn policy_arns() {
        assert!(valid_policy_arn(&aws_managed_policy("service-role/AWSBackupServiceRolePolicyForBackup")));
        assert!(valid_policy_arn("arn:aws:iam::123456789012:policy/mine"));
        assert!(!valid_policy_arn("AmazonEKSClusterPolicy"));
        assert!(!valid_policy_arn("arn:aws:iam::12:policy/x"));
    }
}
