//! Amazon OpenSearch Service: a VPC domain ([`aws:opensearch:Domain`](DOMAIN)), and
//! [`SearchDomain`], the builder that composes it with a security group and a generated master
//! user.
//!
//! What the local emulator lacks, and how it is covered: it has no `UpgradeDomain` (an engine
//! upgrade is tested at the request level, `request_tests.rs`), no `ListVersions` or
//! `ListInstanceTypeDetails` (preflight skips those checks there, and says so), finishes every
//! change at once (the waits for a domain to settle are tested at the request level too), and
//! keeps the master user's password in what it answers (fabric never reads it back).

mod domain;
mod preflight;
#[cfg(all(test, feature = "full"))]
mod request_tests;
mod search;

pub use domain::*;
pub(crate) use preflight::preflight;
pub use search::{Search, SearchDomain};

use crate::aws::{AwsCtx, Tags, call_failed};
use crate::engine::provider::{Ctx, Provider, ProviderResult};
use crate::model::Urn;
use aws_sdk_opensearch::types::Tag;
use std::sync::Arc;

/// What a stack program needs of OpenSearch in scope (part of [`crate::prelude`]).
pub mod prelude {
    pub use super::{Search, SearchDomain};
}

pub const DOMAIN: &str = "aws:opensearch:Domain";

/// Every OpenSearch provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![domain_provider()]
}

fn domain_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> Vec<Tag> {
    crate::aws::with_fabric_tags(ctx, urn, tags)
        .into_iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// Every tag of a domain, fabric's included.
async fn all_tags(ctx: &Ctx, arn: &str) -> ProviderResult<Tags> {
    let out = ctx.aws()?.opensearch.list_tags().arn(arn).send().await.map_err(|e| call_failed("ListTags", e))?;
    Ok(out.tag_list().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
}

async fn sync_tags(ctx: &Ctx, arn: &str, old: &Tags, new: &Tags) -> ProviderResult<()> {
    let client = &ctx.aws()?.opensearch;
    let remove = |keys| async move {
        let call = client.remove_tags().arn(arn).set_tag_keys(Some(keys));
        call.send().await.map(drop).map_err(|e| call_failed("RemoveTags", e))
    };
    let set = |pairs: Vec<(String, String)>| async move {
        let tags = pairs.into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
        let call = client.add_tags().arn(arn).set_tag_list(Some(tags));
        call.send().await.map(drop).map_err(|e| call_failed("AddTags", e))
    };
    crate::aws::TagChanges::sync(old, new, remove, set).await
}
