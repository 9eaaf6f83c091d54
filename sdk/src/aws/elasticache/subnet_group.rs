//! `aws:elasticache:SubnetGroup`: the private subnets a replication group's nodes run in.

use super::{SUBNET_GROUP, all_tags, cache_tags, sync_tags};
use crate::aws::create::create_or_find;
use crate::aws::{AwsCtx, Tags, call_failed, classify, error_code, found};
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderResult, Read, Reads, TypedProvider, Update, read_each, typed,
};
use crate::model::Urn;
use async_trait::async_trait;
use aws_sdk_elasticache::types::CacheSubnetGroup;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetGroupInputs<L = Vec<String>> {
    /// Its name (ElastiCache keeps it in lower case).
    pub name: String,
    pub description: String,
    pub subnet_ids: L,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetGroupOutputs {
    pub name: String,
    pub arn: String,
    /// The zones of its subnets, sorted: where the replication group spreads its nodes.
    pub zones: Vec<String>,
}

pub fn subnet_group_provider() -> Arc<dyn Provider> {
    typed(SubnetGroupProvider)
}

pub struct SubnetGroupProvider;

fn outputs(g: &CacheSubnetGroup) -> SubnetGroupOutputs {
    let mut zones: Vec<String> = g
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_availability_zone().and_then(|z| z.name()).map(str::to_string))
        .collect();
    zones.sort();
    zones.dedup();
    SubnetGroupOutputs {
        name: g.cache_subnet_group_name().unwrap_or_default().to_string(),
        arn: g.arn().unwrap_or_default().to_string(),
        zones,
    }
}

/// The group called `name`, if there is one.
pub(super) async fn get(ctx: &Ctx, name: &str) -> ProviderResult<Option<CacheSubnetGroup>> {
    Ok(found(
        "DescribeCacheSubnetGroups",
        |c| c == Some("CacheSubnetGroupNotFoundFault"),
        ctx.aws()?.elasticache.describe_cache_subnet_groups().cache_subnet_group_name(name).send().await,
    )?
    .and_then(|o| o.cache_subnet_groups().first().cloned()))
}

fn observed(g: &CacheSubnetGroup, tags: Tags) -> (SubnetGroupInputs, SubnetGroupOutputs) {
    let mut subnet_ids: Vec<String> =
        g.subnets().iter().filter_map(|s| s.subnet_identifier().map(str::to_string)).collect();
    subnet_ids.sort();
    let out = outputs(g);
    let inputs = SubnetGroupInputs {
        name: out.name.clone(),
        description: g.cache_subnet_group_description().unwrap_or_default().to_string(),
        subnet_ids,
        tags,
    };
    (inputs, out)
}

#[async_trait]
impl TypedProvider for SubnetGroupProvider {
    resource_type!(SUBNET_GROUP, SubnetGroupInputs => SubnetGroupOutputs, replace_on &["name"], import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &SubnetGroupInputs) -> ProviderResult<SubnetGroupOutputs> {
        // Look before creating: AWS's CacheSubnetGroupAlreadyExists alone would not say whose it is.
        if let Some(g) = get(ctx, &inputs.name).await? {
            let out = outputs(&g);
            let tags = all_tags(ctx, &out.arn).await?;
            crate::aws::require_ours(ctx, urn, &format!("cache subnet group {}", inputs.name), &tags)?;
            return Ok(out);
        }
        let client = &ctx.aws()?.elasticache;
        create_or_find(
            "CreateCacheSubnetGroup",
            Duration::from_millis(500),
            || async {
                let r = client
                    .create_cache_subnet_group()
                    .cache_subnet_group_name(&inputs.name)
                    .cache_subnet_group_description(&inputs.description)
                    .set_subnet_ids(Some(inputs.subnet_ids.clone()))
                    .set_tags(Some(cache_tags(ctx, urn, &inputs.tags)))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(r.cache_subnet_group().map(outputs).unwrap_or(SubnetGroupOutputs {
                    name: inputs.name.clone(),
                    arn: String::new(),
                    zones: Vec::new(),
                }))
            },
            || self.find(ctx, urn, inputs),
        )
        .await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<SubnetGroupOutputs> {
        let Update { old, outputs: out, new } = change;
        let mut out = out.clone();
        if old.subnet_ids != new.subnet_ids || old.description != new.description {
            let r = ctx
                .aws()?
                .elasticache
                .modify_cache_subnet_group()
                .cache_subnet_group_name(&out.name)
                .cache_subnet_group_description(&new.description)
                .set_subnet_ids(Some(new.subnet_ids.clone()))
                .send()
                .await
                .map_err(|e| call_failed("ModifyCacheSubnetGroup", e))?;
            if let Some(g) = r.cache_subnet_group() {
                out = outputs(g);
            }
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out)
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &SubnetGroupInputs, out: &SubnetGroupOutputs) -> ProviderResult<()> {
        let aws = ctx.aws()?;
        match aws.elasticache.delete_cache_subnet_group().cache_subnet_group_name(&out.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("CacheSubnetGroupNotFoundFault") => Ok(()),
            // The local emulator has no DeleteCacheSubnetGroup (it answers without an error code):
            // the group stays there, which only the emulator's listing shows.
            Err(e) if aws.emulator && error_code(&e).is_none() => {
                tracing::warn!(group = %out.name, "the local emulator cannot delete a cache subnet group; left there");
                Ok(())
            }
            Err(e) => Err(call_failed("DeleteCacheSubnetGroup", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, SubnetGroupOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let Some(g) = get(ctx, &o.name).await? else { return Ok(None) };
            let tags = all_tags(ctx, g.arn().unwrap_or_default()).await?;
            Ok(Some(observed(&g, crate::aws::user_tags_of(tags))))
        })
        .await
    }

    /// The group of that name, if it is tagged for `urn`.
    async fn find(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &SubnetGroupInputs,
    ) -> ProviderResult<Option<SubnetGroupOutputs>> {
        let Some(g) = get(ctx, &inputs.name).await? else { return Ok(None) };
        let out = outputs(&g);
        Ok(crate::aws::tagged_for(&all_tags(ctx, &out.arn).await?, urn).then_some(out))
    }

    /// By name.
    async fn import(&self, ctx: &Ctx, _: &Urn, id: &str) -> Read<Self> {
        let Some(g) = get(ctx, id).await? else { return Ok(None) };
        let tags = all_tags(ctx, g.arn().unwrap_or_default()).await?;
        Ok(Some(observed(&g, crate::aws::user_tags_of(tags))))
    }

    /// The group of the program's name, if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, inputs: &SubnetGroupInputs) -> ProviderResult<Vec<String>> {
        Ok(get(ctx, &inputs.name).await?.map(|g| outputs(&g).name).into_iter().collect())
    }

    /// One `DescribeCacheSubnetGroups` listing; the tags of the groups the program's names meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = BTreeMap::new();
        let mut pages = ctx.aws()?.elasticache.describe_cache_subnet_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            for g in page.map_err(|e| call_failed("DescribeCacheSubnetGroups", e))?.cache_subnet_groups() {
                let o = outputs(g);
                existing.insert(o.name, o.arn);
            }
        }
        crate::aws::names_held(ctx, items, "name", &existing, |arn| async move { all_tags(ctx, &arn).await }).await
    }
}
