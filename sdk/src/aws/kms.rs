//! `aws:kms:Key`: a customer managed key that this stack owns (EKS envelope encryption of
//! Kubernetes Secrets), with yearly rotation, named by an alias `alias/fabric/<stack>/<name>`.
//!
//! KMS never deletes a key at once: delete schedules the deletion (30 days, the longest wait, so
//! that what it encrypted can still be read back if the delete was a mistake) and removes the
//! alias; the key can be restored with `aws kms cancel-key-deletion` until then.

/// What a stack program needs of KMS in scope (part of [`crate::prelude`]): nothing by default;
/// its builders are named by path (`fabric::aws::…`).
pub mod prelude {}

use super::{Tags, call_failed, error_code, not_ours, tagged_for, user_tags_of};
use crate::aws::AwsCtx;
use crate::aws::found;
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderResult, Reads, TypedProvider, Update, read_each, typed,
};
use crate::model::{Checker, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use typed_builder::TypedBuilder;

pub const KEY: &str = "aws:kms:Key";

/// How long a deleted key waits before KMS destroys it.
pub const DELETION_WINDOW_DAYS: i32 = 30;

/// A symmetric customer managed key.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::kms::KmsKey;
/// let mut s = Stack::new("demo");
/// let key = KmsKey::builder().name("eks-secrets").description("Secrets of cluster main").build().add(&mut s).unwrap();
/// assert_eq!(key.urn().name(), "eks-secrets");
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct KmsKey {
    #[builder(setter(into))]
    name: String,
    #[builder(setter(into))]
    description: String,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyInputs {
    /// `alias/fabric/<stack>/<name>`: how the key is found again.
    pub alias: String,
    pub description: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyOutputs {
    pub id: String,
    pub arn: String,
}

#[derive(Clone, Debug)]
pub struct KmsKeyRef {
    urn: Urn,
}

impl KmsKeyRef {
    outputs!(urn => arn: String);
}

impl KmsKey {
    pub fn add(self, s: &mut Stack) -> crate::Result<KmsKeyRef> {
        let mut c = Checker::new(s.urn(KEY, &self.name));
        let alias = format!("alias/fabric/{}/{}", s.name(), self.name);
        c.require(
            alias.len() <= 256 && alias.chars().all(|ch| ch.is_ascii_alphanumeric() || "/_-".contains(ch)),
            "name",
            format!("`{alias}` is not a KMS alias"),
            "use letters, digits, `-` and `_`",
        );
        c.require(
            self.description.len() <= 8192,
            "description",
            "the description is longer than 8192 characters",
            "shorten it",
        );
        s.report(c.into_errors());
        let inputs = KeyInputs { alias, description: self.description, tags: self.tags };
        Ok(KmsKeyRef { urn: s.declare(key_provider(), &self.name, inputs, vec![]) })
    }
}

pub fn key_provider() -> Arc<dyn Provider> {
    typed(KeyProvider)
}

pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![key_provider()]
}

pub struct KeyProvider;

fn kms_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> Vec<Tag> {
    let all = super::with_fabric_tags(ctx, urn, tags);
    all.into_iter().filter_map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build().ok()).collect()
}

impl KeyProvider {
    /// The key an alias or id names, unless it is gone or on its way out.
    async fn describe(&self, ctx: &Ctx, key: &str) -> ProviderResult<Option<aws_sdk_kms::types::KeyMetadata>> {
        Ok(found(
            "DescribeKey",
            |c| c == Some("NotFoundException"),
            ctx.aws()?.kms.describe_key().key_id(key).send().await,
        )?
        .and_then(|o| {
            o.key_metadata.filter(|m| {
                !matches!(m.key_state(), Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion))
            })
        }))
    }

    async fn tags(&self, ctx: &Ctx, key_id: &str) -> ProviderResult<Vec<(String, String)>> {
        let out = ctx
            .aws()?
            .kms
            .list_resource_tags()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| call_failed("ListResourceTags", e))?;
        Ok(out.tags().iter().map(|t| (t.tag_key().to_string(), t.tag_value().to_string())).collect())
    }

    fn outputs(m: &aws_sdk_kms::types::KeyMetadata) -> KeyOutputs {
        KeyOutputs { id: m.key_id().to_string(), arn: m.arn().unwrap_or_default().to_string() }
    }
}

#[async_trait]
impl TypedProvider for KeyProvider {
    resource_type!(KEY, KeyInputs => KeyOutputs, replace_on &["alias"], import Import::Never("not implemented yet"));

    /// The alias first names the key: one there already is adopted only if tagged for this
    /// resource (an earlier attempt whose answer was lost), and refused otherwise.
    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &KeyInputs) -> ProviderResult<KeyOutputs> {
        if let Some(found) = self.describe(ctx, &i.alias).await? {
            let tags = self.tags(ctx, found.key_id()).await?;
            let pairs: Vec<(&String, &String)> = tags.iter().map(|(k, v)| (k, v)).collect();
            if tagged_for(pairs.iter().copied(), urn) {
                return Ok(Self::outputs(&found));
            }
            return Err(not_ours(ctx, urn, &format!("KMS key {}", i.alias), pairs.iter().copied()));
        }
        let kms = &ctx.aws()?.kms;
        let created = kms
            .create_key()
            .description(&i.description)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .key_spec(KeySpec::SymmetricDefault)
            .set_tags(Some(kms_tags(ctx, urn, &i.tags)))
            .send()
            .await
            .map_err(|e| call_failed("CreateKey", e))?;
        let meta = created.key_metadata.ok_or("CreateKey answered without a key")?;
        kms.enable_key_rotation()
            .key_id(meta.key_id())
            .send()
            .await
            .map_err(|e| call_failed("EnableKeyRotation", e))?;
        kms.create_alias()
            .alias_name(&i.alias)
            .target_key_id(meta.key_id())
            .send()
            .await
            .map_err(|e| call_failed("CreateAlias", e))?;
        Ok(Self::outputs(&meta))
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<KeyOutputs> {
        let Update { old, outputs: out, new } = change;
        let kms = &ctx.aws()?.kms;
        if old.description != new.description {
            kms.update_key_description()
                .key_id(&out.id)
                .description(&new.description)
                .send()
                .await
                .map_err(|e| call_failed("UpdateKeyDescription", e))?;
        }
        let id = out.id.as_str();
        let remove = |keys| async move {
            let call = kms.untag_resource().key_id(id).set_tag_keys(Some(keys));
            call.send().await.map(drop).map_err(|e| call_failed("UntagResource", e))
        };
        let set = |pairs: Vec<(String, String)>| async move {
            let tags = pairs.into_iter().filter_map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build().ok());
            let call = kms.tag_resource().key_id(id).set_tags(Some(tags.collect()));
            call.send().await.map(drop).map_err(|e| call_failed("TagResource", e))
        };
        super::TagChanges::sync(&old.tags, &new.tags, remove, set).await?;
        Ok(out.clone())
    }

    /// Removes the alias and schedules the key's deletion ([`DELETION_WINDOW_DAYS`]).
    async fn delete(&self, ctx: &Ctx, _: &Urn, i: &KeyInputs, out: &KeyOutputs) -> ProviderResult<()> {
        let kms = &ctx.aws()?.kms;
        match kms.delete_alias().alias_name(&i.alias).send().await {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("NotFoundException") => {}
            Err(e) => return Err(call_failed("DeleteAlias", e)),
        }
        match kms.schedule_key_deletion().key_id(&out.id).pending_window_in_days(DELETION_WINDOW_DAYS).send().await {
            Ok(_) => Ok(()),
            // Gone, or already scheduled.
            Err(e) if matches!(error_code(&e), Some("NotFoundException" | "KMSInvalidStateException")) => Ok(()),
            Err(e) => Err(call_failed("ScheduleKeyDeletion", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, KeyOutputs)]) -> Reads<Self> {
        read_each(items, |urn, o| async move {
            let Some(meta) = self.describe(ctx, &o.id).await? else { return Ok(None) };
            let tags = self.tags(ctx, &o.id).await?;
            let alias = format!("alias/fabric/{}/{}", urn.stack(), urn.name());
            let inputs = KeyInputs {
                alias,
                description: meta.description().unwrap_or_default().to_string(),
                tags: user_tags_of(tags),
            };
            Ok(Some((inputs, Self::outputs(&meta))))
        })
        .await
    }

    /// One `ListAliases` listing; the tags of the keys behind the aliases the program's names meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = std::collections::BTreeMap::new();
        let mut pages = ctx.aws()?.kms.list_aliases().into_paginator().send();
        while let Some(page) = pages.next().await {
            for a in page.map_err(|e| call_failed("ListAliases", e))?.aliases() {
                if let Some(name) = a.alias_name() {
                    existing.insert(name.to_string(), a.target_key_id().unwrap_or_default().to_string());
                }
            }
        }
        super::names_held(ctx, items, "alias", &existing, |key| async move {
            if key.is_empty() {
                return Ok(Tags::new());
            }
            Ok(self.tags(ctx, &key).await?.into_iter().collect())
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &KeyInputs) -> ProviderResult<Option<KeyOutputs>> {
        let Some(found) = self.describe(ctx, &i.alias).await? else { return Ok(None) };
        let tags = self.tags(ctx, found.key_id()).await?;
        Ok(tagged_for(tags.iter().map(|(k, v)| (k, v)), urn).then(|| Self::outputs(&found)))
    }
}
