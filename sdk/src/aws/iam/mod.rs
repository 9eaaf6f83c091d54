//! AWS IAM: roles, managed-policy attachments and inline policies.
//!
//! Role names are account-wide, so fabric names a role `<stack>-<name>`. Attachments and inline
//! policies cannot carry tags: they are found by their natural keys (role and policy ARN, role and
//! policy name), which makes creating them idempotent.

/// What a stack program needs of IAM in scope (part of [`crate::prelude`]): nothing by default;
/// its builders are named by path (`fabric::aws::…`).
pub mod prelude {}

use super::{TAG_URN, call_failed, classify, error_code};
use crate::aws::AwsCtx;
use crate::aws::create::{create_or_find, no_retry_iam};
use crate::aws::found;
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, typed,
};
use crate::model::{Checker, Stack, Urn};
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
fn is_no_such_entity<E: aws_sdk_iam::error::ProvideErrorMetadata>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    error_code(e) == Some("NoSuchEntity")
}

mod policy;
mod role;

pub use policy::*;
pub use role::*;

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
