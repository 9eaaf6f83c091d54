//! `aws:elasticache:ReplicationGroup`: a Valkey or Redis OSS primary with read replicas (cluster
//! mode disabled), spread over its subnet group's zones, with automatic failover and Multi-AZ when
//! it has a replica, encrypted at rest and in transit, behind an AUTH token.

use super::{REPLICATION_GROUP, all_tags, cache_tags, sync_tags};
use crate::aws::create::create_or_find;
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{AwsCtx, Tags, call_failed, classify, found};
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, read_each, typed,
};
use crate::model::{Secret, Urn};
use async_trait::async_trait;
use aws_sdk_elasticache::types::{AuthTokenUpdateStrategyType, ReplicationGroup};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a group may take to become available (a create with replicas takes 10–20 minutes; a
/// node type change copies the data to new nodes).
const GROUP_WAIT: Duration = Duration::from_secs(60 * 60);

/// What a replication group is created with. `R` is a reference resolved at apply (the subnet
/// group, the security groups, the key), `P` the AUTH token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicationGroupInputs<R = String, P = Secret<String>> {
    /// `ReplicationGroupId`: 1–40 lower-case letters, digits and hyphens.
    pub id: String,
    pub description: String,
    /// `valkey` or `redis`.
    pub engine: String,
    /// Not in `DescribeReplicationGroups`: read from the primary's cache cluster, and kept as
    /// recorded when that cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    pub node_type: String,
    /// Read replicas besides the primary (0 to 5); with one or more, automatic failover and
    /// Multi-AZ are on.
    pub replicas: i32,
    pub automatic_failover: bool,
    pub multi_az: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_group_name: Option<R>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_group_ids: Option<Vec<R>>,
    pub port: i32,
    pub at_rest_encryption: bool,
    /// A customer managed key's ARN; none: the AWS managed key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<R>,
    pub transit_encryption: bool,
    /// `ddd:hh24:mi-ddd:hh24:mi`, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<String>,
    /// `hh24:mi-hh24:mi`, UTC: the daily snapshot.
    pub snapshot_window: String,
    /// Days of daily snapshots kept (0 turns them off).
    pub snapshot_retention_days: i32,
    /// Not readable back: omitted from reads, so it keeps its recorded value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<P>,
    /// fabric's own: whether a delete skips the final snapshot (not readable back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_final_snapshot: Option<bool>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicationGroupOutputs {
    pub id: String,
    pub arn: String,
    /// The primary endpoint: reads and writes, follows a failover.
    pub primary_address: String,
    /// The reader endpoint: spreads reads over the replicas.
    pub reader_address: String,
    pub port: i32,
}

pub fn replication_group_provider() -> Arc<dyn Provider> {
    typed(ReplicationGroupProvider)
}

pub struct ReplicationGroupProvider;

fn outputs(g: &ReplicationGroup) -> ReplicationGroupOutputs {
    let node_group = g.node_groups().first();
    let primary = node_group.and_then(|n| n.primary_endpoint());
    ReplicationGroupOutputs {
        id: g.replication_group_id().unwrap_or_default().to_string(),
        arn: g.arn().unwrap_or_default().to_string(),
        primary_address: primary.and_then(|e| e.address()).unwrap_or_default().to_string(),
        reader_address: node_group
            .and_then(|n| n.reader_endpoint())
            .and_then(|e| e.address())
            .unwrap_or_default()
            .to_string(),
        port: primary.and_then(|e| e.port()).unwrap_or(6379),
    }
}

/// The group of that id, if there is one. On the local emulator a deleted group stays listed as
/// `deleting`; there it reads as gone.
pub(super) async fn get(ctx: &Ctx, id: &str) -> ProviderResult<Option<ReplicationGroup>> {
    let aws = ctx.aws()?;
    let group = found(
        "DescribeReplicationGroups",
        |c| c == Some("ReplicationGroupNotFoundFault"),
        aws.elasticache.describe_replication_groups().replication_group_id(id).send().await,
    )?
    .and_then(|o| o.replication_groups().first().cloned());
    Ok(group.filter(|g| !(aws.emulator && g.status() == Some("deleting"))))
}

/// The versions a group's engine can move to in place: a newer or equal version of the same
/// engine, or Redis OSS to Valkey (ElastiCache's cross-engine upgrade). `Err` says why not.
pub fn in_place_engine_change(old: (&str, &str), new: (&str, &str)) -> Result<(), String> {
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    match (old.0, new.0) {
        (a, b) if a == b => {
            if version(new.1) < version(old.1) {
                Err(format!("ElastiCache cannot downgrade {a} {} to {}: a group's engine only moves up", old.1, new.1))
            } else {
                Ok(())
            }
        }
        ("redis", "valkey") => Ok(()),
        ("valkey", "redis") => {
            Err("ElastiCache cannot move a Valkey group back to Redis OSS: the cross-engine upgrade goes one way"
                .into())
        }
        (a, b) => Err(format!("ElastiCache cannot change the engine from {a} to {b} in place")),
    }
}

impl ReplicationGroupProvider {
    /// The group of the program's id, if it is tagged for `urn`; an error if it exists and is
    /// someone else's.
    async fn owned(&self, ctx: &Ctx, urn: &Urn, id: &str) -> ProviderResult<Option<ReplicationGroup>> {
        let Some(g) = get(ctx, id).await? else { return Ok(None) };
        let tags = all_tags(ctx, g.arn().unwrap_or_default()).await?;
        crate::aws::require_ours(ctx, urn, &format!("ElastiCache replication group {id}"), &tags)?;
        Ok(Some(g))
    }

    /// Waits until the group is `available` (or gone, with `gone`).
    async fn wait(&self, ctx: &Ctx, id: &str, gone: bool) -> ProviderResult<Option<ReplicationGroup>> {
        let check = || async move {
            let g = get(ctx, id).await?;
            let status = g.as_ref().and_then(|g| g.status()).unwrap_or_default().to_string();
            match (&g, gone) {
                (None, true) => Ok(Poll::Ready(None)),
                (Some(_), false) if status == "available" => Ok(Poll::Ready(g)),
                (Some(_), false) if status == "create-failed" || status == "deleting" => Err(ProviderError(format!(
                    "ElastiCache replication group {id} is {status} (while waiting for it to be available)"
                ))),
                (None, false) => Err(ProviderError(format!(
                    "ElastiCache replication group {id} disappeared while it was being changed"
                ))),
                _ => Ok(Poll::Waiting(status)),
            }
        };
        poll_until(GROUP_WAIT, Duration::from_secs(15), check, |last| {
            format!("ElastiCache replication group {id} did not settle within {GROUP_WAIT:?} (still {last})")
        })
        .await
    }

    /// What the group shows: its own fields, and those only its primary cache cluster shows.
    async fn observe(
        &self,
        ctx: &Ctx,
        g: &ReplicationGroup,
    ) -> ProviderResult<(ReplicationGroupInputs, ReplicationGroupOutputs)> {
        let out = outputs(g);
        let primary = g
            .node_groups()
            .first()
            .and_then(|n| n.node_group_members().iter().find(|m| m.current_role() == Some("primary")))
            .and_then(|m| m.cache_cluster_id())
            .or_else(|| g.member_clusters().first().map(String::as_str));
        let cluster = match primary {
            Some(id) => found(
                "DescribeCacheClusters",
                |c| c == Some("CacheClusterNotFound"),
                ctx.aws()?.elasticache.describe_cache_clusters().cache_cluster_id(id).send().await,
            )?
            .and_then(|o| o.cache_clusters().first().cloned()),
            None => None,
        };
        let tags = all_tags(ctx, &out.arn).await?;
        let enabled = |s: Option<&str>| s.is_some_and(|s| s == "enabled" || s == "enabling");
        let mut security_group_ids: Option<Vec<String>> = cluster
            .as_ref()
            .map(|c| c.security_groups().iter().filter_map(|m| m.security_group_id().map(str::to_string)).collect());
        if let Some(ids) = security_group_ids.as_mut() {
            ids.sort();
        }
        let inputs = ReplicationGroupInputs {
            id: out.id.clone(),
            description: g.description().unwrap_or_default().to_string(),
            engine: g.engine().unwrap_or("redis").to_string(),
            engine_version: cluster.as_ref().and_then(|c| c.engine_version()).map(major_minor),
            node_type: g.cache_node_type().unwrap_or_default().to_string(),
            replicas: g.member_clusters().len().saturating_sub(1) as i32,
            automatic_failover: enabled(g.automatic_failover().map(|s| s.as_str())),
            multi_az: enabled(g.multi_az().map(|s| s.as_str())),
            subnet_group_name: cluster.as_ref().and_then(|c| c.cache_subnet_group_name()).map(str::to_string),
            security_group_ids,
            port: out.port,
            at_rest_encryption: g.at_rest_encryption_enabled().unwrap_or(false),
            kms_key_id: g.kms_key_id().map(str::to_string),
            transit_encryption: g.transit_encryption_enabled().unwrap_or(false),
            maintenance_window: cluster.as_ref().and_then(|c| c.preferred_maintenance_window()).map(str::to_string),
            snapshot_window: g.snapshot_window().unwrap_or_default().to_string(),
            snapshot_retention_days: g.snapshot_retention_limit().unwrap_or(0),
            auth_token: None,
            skip_final_snapshot: None,
            tags: crate::aws::user_tags_of(tags),
        };
        Ok((inputs, out))
    }
}

/// `7.1.0` → `7.1`: the program names a major.minor version (ElastiCache picks the patch).
fn major_minor(v: &str) -> String {
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[async_trait]
impl TypedProvider for ReplicationGroupProvider {
    // What ElastiCache cannot change on a group: its id, its subnet group, its port, encryption
    // at rest and its key, and encryption in transit (which a running group can only gain
    // through a two-step migration fabric does not do).
    resource_type!(REPLICATION_GROUP, ReplicationGroupInputs => ReplicationGroupOutputs,
        replace_on &["id", "subnet_group_name", "port", "at_rest_encryption", "kms_key_id", "transit_encryption"],
        import Import::ById);

    async fn create(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &ReplicationGroupInputs,
    ) -> ProviderResult<ReplicationGroupOutputs> {
        // Look before creating: a group of this id that is ours is a create an earlier run made
        // (finish waiting for it); anyone else's is refused before any write.
        if self.owned(ctx, urn, &i.id).await?.is_some() {
            let g = self.wait(ctx, &i.id, false).await?.expect("available");
            return Ok(outputs(&g));
        }
        let token = i.auth_token.as_ref().ok_or_else(|| ProviderError("no AUTH token".into()))?;
        let subnet_group = i.subnet_group_name.as_deref().ok_or_else(|| ProviderError("no subnet group".into()))?;
        // One node per zone of the subnet group, the primary first, round the zones again if
        // there are more nodes than zones.
        let zones = match super::subnet_group::get(ctx, subnet_group).await? {
            Some(g) => {
                let mut zones: Vec<String> = g
                    .subnets()
                    .iter()
                    .filter_map(|s| s.subnet_availability_zone().and_then(|z| z.name()).map(str::to_string))
                    .collect();
                zones.sort();
                zones.dedup();
                zones
            }
            None => Vec::new(),
        };
        let nodes = (i.replicas + 1) as usize;
        let placement: Option<Vec<String>> =
            (!zones.is_empty()).then(|| (0..nodes).map(|n| zones[n % zones.len()].clone()).collect());
        let client = &ctx.aws()?.elasticache;
        create_or_find(
            "CreateReplicationGroup",
            Duration::from_millis(500),
            || async {
                client
                    .create_replication_group()
                    .replication_group_id(&i.id)
                    .replication_group_description(&i.description)
                    .engine(&i.engine)
                    .set_engine_version(i.engine_version.clone())
                    .cache_node_type(&i.node_type)
                    .num_cache_clusters(i.replicas + 1)
                    .set_preferred_cache_cluster_azs(placement.clone())
                    .automatic_failover_enabled(i.automatic_failover)
                    .multi_az_enabled(i.multi_az)
                    .cache_subnet_group_name(subnet_group)
                    .set_security_group_ids(i.security_group_ids.clone())
                    .port(i.port)
                    .at_rest_encryption_enabled(i.at_rest_encryption)
                    .set_kms_key_id(i.kms_key_id.clone())
                    .transit_encryption_enabled(i.transit_encryption)
                    .auth_token(token.expose())
                    .set_preferred_maintenance_window(i.maintenance_window.clone())
                    .snapshot_window(&i.snapshot_window)
                    .snapshot_retention_limit(i.snapshot_retention_days)
                    .auto_minor_version_upgrade(true)
                    .set_tags(Some(cache_tags(ctx, urn, &i.tags)))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(())
            },
            || async { Ok(self.find(ctx, urn, i).await?.map(|_| ())) },
        )
        .await?;
        let g = self.wait(ctx, &i.id, false).await?.expect("available");
        Ok(outputs(&g))
    }

    /// In place: node type, engine version (and Redis OSS → Valkey), replica count, failover,
    /// windows, snapshot retention, security groups, the AUTH token (rotated). Applied at once,
    /// one change at a time, each waited for. An engine change ElastiCache cannot make is refused
    /// before any write.
    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<ReplicationGroupOutputs> {
        let Update { old, outputs: out, new } = change;
        if let (Some(from), Some(to)) = (&old.engine_version, &new.engine_version) {
            in_place_engine_change((&old.engine, from), (&new.engine, to)).map_err(|why| {
                ProviderError(format!(
                    "{why}; keep `engine` and `engine_version` as deployed, or create a new cache under another name and move the clients"
                ))
            })?;
        }
        let client = &ctx.aws()?.elasticache;
        let id = out.id.as_str();
        // More replicas first (failover needs one), fewer after failover is turned off.
        if new.replicas > old.replicas {
            client
                .increase_replica_count()
                .replication_group_id(id)
                .new_replica_count(new.replicas)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| call_failed("IncreaseReplicaCount", e))?;
            self.wait(ctx, id, false).await?;
        }
        let mut req = client.modify_replication_group().replication_group_id(id).apply_immediately(true);
        let mut any = false;
        macro_rules! changed {
            ($field:ident, $set:ident) => {
                if old.$field != new.$field {
                    req = req.$set(new.$field.clone());
                    any = true;
                }
            };
        }
        changed!(node_type, cache_node_type);
        changed!(automatic_failover, automatic_failover_enabled);
        changed!(multi_az, multi_az_enabled);
        changed!(snapshot_window, snapshot_window);
        changed!(snapshot_retention_days, snapshot_retention_limit);
        changed!(description, replication_group_description);
        if old.engine != new.engine || (new.engine_version.is_some() && old.engine_version != new.engine_version) {
            req = req.engine(&new.engine).set_engine_version(new.engine_version.clone());
            any = true;
        }
        if new.maintenance_window.is_some() && old.maintenance_window != new.maintenance_window {
            req = req.set_preferred_maintenance_window(new.maintenance_window.clone());
            any = true;
        }
        if new.security_group_ids.is_some() && old.security_group_ids != new.security_group_ids {
            req = req.set_security_group_ids(new.security_group_ids.clone());
            any = true;
        }
        if let Some(token) = &new.auth_token
            && old.auth_token.as_ref() != Some(token)
        {
            req = req.auth_token(token.expose()).auth_token_update_strategy(AuthTokenUpdateStrategyType::Rotate);
            any = true;
        }
        if any {
            req.send().await.map_err(|e| call_failed("ModifyReplicationGroup", e))?;
            self.wait(ctx, id, false).await?;
        }
        if new.replicas < old.replicas {
            client
                .decrease_replica_count()
                .replication_group_id(id)
                .new_replica_count(new.replicas)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| call_failed("DecreaseReplicaCount", e))?;
            self.wait(ctx, id, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        let g = get(ctx, id).await?.ok_or_else(|| ProviderError(format!("replication group {id} disappeared")))?;
        Ok(outputs(&g))
    }

    /// Deletes the group and its nodes, with a final snapshot unless `skip_final_snapshot`.
    async fn delete(
        &self,
        ctx: &Ctx,
        _: &Urn,
        i: &ReplicationGroupInputs,
        out: &ReplicationGroupOutputs,
    ) -> ProviderResult<()> {
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let req = ctx
            .aws()?
            .elasticache
            .delete_replication_group()
            .replication_group_id(&out.id)
            .retain_primary_cluster(false);
        let req = if i.skip_final_snapshot.unwrap_or(false) {
            req
        } else {
            req.final_snapshot_identifier(format!("{}-final-{stamp}", out.id))
        };
        if found("DeleteReplicationGroup", |c| c == Some("ReplicationGroupNotFoundFault"), req.send().await)?.is_none()
        {
            return Ok(());
        }
        self.wait(ctx, &out.id, true).await.map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ReplicationGroupOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            Ok(match get(ctx, &o.id).await? {
                Some(g) => Some(self.observe(ctx, &g).await?),
                None => None,
            })
        })
        .await
    }

    /// The group of the program's id, if it is tagged for `urn`.
    async fn find(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &ReplicationGroupInputs,
    ) -> ProviderResult<Option<ReplicationGroupOutputs>> {
        let Some(g) = get(ctx, &i.id).await? else { return Ok(None) };
        let tagged = crate::aws::tagged_for(&all_tags(ctx, g.arn().unwrap_or_default()).await?, urn);
        Ok(tagged.then(|| outputs(&g)))
    }

    /// By replication group id. The AUTH token cannot be read: the program's is kept, and set on
    /// the group (rotated) by the first deploy after the import.
    async fn import(&self, ctx: &Ctx, _: &Urn, id: &str) -> Read<Self> {
        match get(ctx, id).await? {
            Some(g) => Ok(Some(self.observe(ctx, &g).await?)),
            None => Ok(None),
        }
    }

    /// The group of the program's id, if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &ReplicationGroupInputs) -> ProviderResult<Vec<String>> {
        Ok(get(ctx, &i.id).await?.and_then(|g| g.replication_group_id().map(str::to_string)).into_iter().collect())
    }

    /// One `DescribeReplicationGroups` listing; the tags of the groups the program's ids meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = BTreeMap::new();
        let mut pages = ctx.aws()?.elasticache.describe_replication_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            for g in page.map_err(|e| call_failed("DescribeReplicationGroups", e))?.replication_groups() {
                let o = outputs(g);
                existing.insert(o.id, o.arn);
            }
        }
        crate::aws::names_held(ctx, items, "id", &existing, |arn| async move { all_tags(ctx, &arn).await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::in_place_engine_change;

    #[test]
    fn an_engine_moves_up_or_from_redis_to_valkey_and_never_back() {
        assert!(in_place_engine_change(("valkey", "7.2"), ("valkey", "8.0")).is_ok());
        assert!(in_place_engine_change(("redis", "7.1"), ("valkey", "8.0")).is_ok());
        assert!(in_place_engine_change(("redis", "6.2"), ("redis", "7.1")).is_ok());
        let back = in_place_engine_change(("valkey", "8.0"), ("redis", "7.1")).unwrap_err();
        assert!(back.contains("back to Redis OSS"), "{back}");
        let down = in_place_engine_change(("valkey", "8.1"), ("valkey", "8.0")).unwrap_err();
        assert!(down.contains("cannot downgrade valkey 8.1 to 8.0"), "{down}");
        // 7.10 is newer than 7.2: versions compare as numbers, not text.
        assert!(in_place_engine_change(("redis", "7.2"), ("redis", "7.10")).is_ok());
    }
}
