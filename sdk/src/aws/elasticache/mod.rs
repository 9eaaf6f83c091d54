//! Amazon ElastiCache: cache subnet groups and replication groups (Valkey or Redis OSS), and
//! [`Redis`], the builder that composes them with a security group and a generated AUTH token.
//!
//! What the local emulator lacks, and how it is covered: it has no `DeleteCacheSubnetGroup`,
//! `ModifyCacheSubnetGroup`, `IncreaseReplicaCount` or `DecreaseReplicaCount` (a change of replica
//! count is tested at the request level, `request_tests.rs`), keeps a deleted replication group
//! listed as `deleting` for ever, and answers no `DescribeCacheClusters` for a group's members (so
//! the fields only they show — engine version, maintenance window, subnet group, security groups —
//! keep their recorded values there).

mod preflight;
mod redis;
mod replication_group;
#[cfg(all(test, feature = "full"))]
mod request_tests;
mod subnet_group;

pub(crate) use preflight::preflight;
pub use redis::{Cache, Engine, Redis};
pub use replication_group::*;
pub use subnet_group::*;

use crate::aws::{AwsCtx, Tags, call_failed};
use crate::engine::provider::{Ctx, Provider, ProviderResult};
use crate::model::Urn;
use aws_sdk_elasticache::types::Tag;
use std::sync::Arc;

/// What a stack program needs of ElastiCache in scope (part of [`crate::prelude`]).
pub mod prelude {
    pub use super::{Cache, Engine, Redis};
}

pub const SUBNET_GROUP: &str = "aws:elasticache:SubnetGroup";
pub const REPLICATION_GROUP: &str = "aws:elasticache:ReplicationGroup";

/// Every ElastiCache provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![subnet_group_provider(), replication_group_provider()]
}

fn cache_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> Vec<Tag> {
    crate::aws::with_fabric_tags(ctx, urn, tags)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn pairs(tags: &[Tag]) -> impl Iterator<Item = (String, String)> + '_ {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
}

/// Every tag of an ElastiCache resource, fabric's included.
async fn all_tags(ctx: &Ctx, arn: &str) -> ProviderResult<Tags> {
    let out = ctx
        .aws()?
        .elasticache
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| call_failed("ListTagsForResource", e))?;
    Ok(pairs(out.tag_list()).collect())
}

async fn sync_tags(ctx: &Ctx, arn: &str, old: &Tags, new: &Tags) -> ProviderResult<()> {
    let client = &ctx.aws()?.elasticache;
    let remove = |keys| async move {
        let call = client.remove_tags_from_resource().resource_name(arn).set_tag_keys(Some(keys));
        call.send().await.map(drop).map_err(|e| call_failed("RemoveTagsFromResource", e))
    };
    let set = |pairs: Vec<(String, String)>| async move {
        let tags = pairs.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let call = client.add_tags_to_resource().resource_name(arn).set_tags(Some(tags));
        call.send().await.map(drop).map_err(|e| call_failed("AddTagsToResource", e))
    };
    crate::aws::TagChanges::sync(old, new, remove, set).await
}
