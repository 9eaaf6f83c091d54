//! Aurora: `aws:rds:DbClusterParameterGroup`, `aws:rds:DbCluster` and `aws:rds:ClusterInstance`
//! (the writer and the readers of a cluster).
//!
//! What the local emulator does not show: it accepts a second cluster or instance under a taken
//! identifier (it overwrites; so every create looks first), its clusters and instances are
//! `available` at once, and its orderable-options catalogue for `aurora-postgresql` ends at 15.2.

use super::{Restore, mark_restore_finished, rds_tags, restore_finished, sync_tags, tag_pairs as pairs};
use crate::aws::create::create_or_find;
use crate::aws::delete_unless_protected;
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{AwsCtx, Tags, call_failed, classify, error_code, found};
use crate::engine::provider::{
    Ctx, Import, NamesTaken, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, read_each,
    typed,
};
use crate::model::{Secret, Urn};
use async_trait::async_trait;
use aws_sdk_rds::types::{DbCluster, DbInstance, Parameter, ServerlessV2ScalingConfiguration};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const CLUSTER_PARAMETER_GROUP: &str = "aws:rds:DbClusterParameterGroup";
pub const CLUSTER: &str = "aws:rds:DbCluster";
pub const CLUSTER_INSTANCE: &str = "aws:rds:ClusterInstance";

/// How long a cluster or one of its instances may take to become available (a new instance takes
/// 10–20 minutes, a restore of a large snapshot longer).
const CLUSTER_WAIT: Duration = Duration::from_secs(90 * 60);

/// Every tag of an RDS resource, fabric's included.
pub(super) async fn all_tags(ctx: &Ctx, arn: &str) -> ProviderResult<Tags> {
    let out = ctx
        .aws()?
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| call_failed("ListTagsForResource", e))?;
    Ok(pairs(out.tag_list()))
}

// ---------------------------------------------------------------------------------------------
// Cluster parameter groups

/// A cluster parameter group: the family's defaults and the parameters named here (applied
/// immediately; a static parameter is refused by RDS with that reason).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterParameterGroupInputs {
    /// Lower case: RDS keeps names in lower case.
    pub name: String,
    /// `aurora-postgresql16`.
    pub family: String,
    pub description: String,
    pub parameters: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterParameterGroupOutputs {
    pub name: String,
    pub arn: String,
}

pub fn cluster_parameter_group_provider() -> Arc<dyn Provider> {
    typed(ClusterParameterGroupProvider)
}

pub struct ClusterParameterGroupProvider;

impl ClusterParameterGroupProvider {
    async fn get(&self, ctx: &Ctx, name: &str) -> ProviderResult<Option<aws_sdk_rds::types::DbClusterParameterGroup>> {
        Ok(found(
            "DescribeDBClusterParameterGroups",
            |c| c == Some("DBParameterGroupNotFound") || c == Some("DBClusterParameterGroupNotFound"),
            ctx.aws()?.rds.describe_db_cluster_parameter_groups().db_cluster_parameter_group_name(name).send().await,
        )?
        .and_then(|o| o.db_cluster_parameter_groups().first().cloned()))
    }

    /// The parameters set on the group (not the family's defaults).
    async fn parameters(&self, ctx: &Ctx, name: &str) -> ProviderResult<BTreeMap<String, String>> {
        let mut set = BTreeMap::new();
        let req = ctx.aws()?.rds.describe_db_cluster_parameters().db_cluster_parameter_group_name(name).source("user");
        let mut pages = req.into_paginator().send();
        while let Some(page) = pages.next().await {
            for p in page.map_err(|e| call_failed("DescribeDBClusterParameters", e))?.parameters() {
                if let (Some(n), Some(v)) = (p.parameter_name(), p.parameter_value()) {
                    set.insert(n.to_string(), v.to_string());
                }
            }
        }
        Ok(set)
    }

    async fn set_parameters(&self, ctx: &Ctx, name: &str, parameters: &BTreeMap<String, String>) -> ProviderResult<()> {
        if parameters.is_empty() {
            return Ok(());
        }
        let list: Vec<Parameter> = parameters
            .iter()
            .map(|(n, v)| {
                Parameter::builder()
                    .parameter_name(n)
                    .parameter_value(v)
                    .apply_method(aws_sdk_rds::types::ApplyMethod::Immediate)
                    .build()
            })
            .collect();
        // RDS takes at most 20 parameters per call.
        for chunk in list.chunks(20) {
            ctx.aws()?
                .rds
                .modify_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(name)
                .set_parameters(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| call_failed("ModifyDBClusterParameterGroup", e))?;
        }
        Ok(())
    }
}

fn parameter_group_outputs(g: &aws_sdk_rds::types::DbClusterParameterGroup) -> ClusterParameterGroupOutputs {
    ClusterParameterGroupOutputs {
        name: g.db_cluster_parameter_group_name().unwrap_or_default().to_string(),
        arn: g.db_cluster_parameter_group_arn().unwrap_or_default().to_string(),
    }
}

#[async_trait]
impl TypedProvider for ClusterParameterGroupProvider {
    resource_type!(CLUSTER_PARAMETER_GROUP, ClusterParameterGroupInputs => ClusterParameterGroupOutputs,
        replace_on &["name", "family"],
        import Import::Never("its parameters are the program's; a new group is made and the old one left"));

    async fn create(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &ClusterParameterGroupInputs,
    ) -> ProviderResult<ClusterParameterGroupOutputs> {
        // Look before creating: an earlier run's group is finished, anyone else's refused.
        let out = match self.get(ctx, &i.name).await? {
            Some(g) => {
                let out = parameter_group_outputs(&g);
                crate::aws::require_ours(
                    ctx,
                    urn,
                    &format!("DB cluster parameter group {}", i.name),
                    &all_tags(ctx, &out.arn).await?,
                )?;
                out
            }
            None => {
                let g = ctx
                    .aws()?
                    .rds
                    .create_db_cluster_parameter_group()
                    .db_cluster_parameter_group_name(&i.name)
                    .db_parameter_group_family(&i.family)
                    .description(&i.description)
                    .set_tags(Some(rds_tags(ctx, urn, &i.tags)))
                    .send()
                    .await
                    .map_err(|e| call_failed("CreateDBClusterParameterGroup", e))?;
                let g = g.db_cluster_parameter_group();
                ClusterParameterGroupOutputs {
                    name: g.and_then(|g| g.db_cluster_parameter_group_name()).unwrap_or(&i.name).to_string(),
                    arn: g.and_then(|g| g.db_cluster_parameter_group_arn()).unwrap_or_default().to_string(),
                }
            }
        };
        self.set_parameters(ctx, &out.name, &i.parameters).await?;
        Ok(out)
    }

    /// Parameters set or changed are applied; one the program no longer names is reset to the
    /// family's default.
    async fn update(
        &self,
        ctx: &Ctx,
        _: &Urn,
        change: Update<'_, Self>,
    ) -> ProviderResult<ClusterParameterGroupOutputs> {
        let Update { old, outputs: out, new } = change;
        let changed: BTreeMap<String, String> = new
            .parameters
            .iter()
            .filter(|(k, v)| old.parameters.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.set_parameters(ctx, &out.name, &changed).await?;
        let dropped: Vec<Parameter> = old
            .parameters
            .keys()
            .filter(|k| !new.parameters.contains_key(*k))
            .map(|k| {
                Parameter::builder().parameter_name(k).apply_method(aws_sdk_rds::types::ApplyMethod::Immediate).build()
            })
            .collect();
        if !dropped.is_empty() {
            ctx.aws()?
                .rds
                .reset_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(&out.name)
                .set_parameters(Some(dropped))
                .send()
                .await
                .map_err(|e| call_failed("ResetDBClusterParameterGroup", e))?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        _: &Urn,
        _: &ClusterParameterGroupInputs,
        out: &ClusterParameterGroupOutputs,
    ) -> ProviderResult<()> {
        found(
            "DeleteDBClusterParameterGroup",
            |c| c == Some("DBParameterGroupNotFound") || c == Some("DBClusterParameterGroupNotFound"),
            ctx.aws()?.rds.delete_db_cluster_parameter_group().db_cluster_parameter_group_name(&out.name).send().await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ClusterParameterGroupOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let Some(g) = self.get(ctx, &o.name).await? else { return Ok(None) };
            let out = parameter_group_outputs(&g);
            Ok(Some((
                ClusterParameterGroupInputs {
                    name: out.name.clone(),
                    family: g.db_parameter_group_family().unwrap_or_default().to_string(),
                    description: g.description().unwrap_or_default().to_string(),
                    parameters: self.parameters(ctx, &out.name).await?,
                    tags: crate::aws::user_tags_of(all_tags(ctx, &out.arn).await?),
                },
                out,
            )))
        })
        .await
    }

    async fn find(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &ClusterParameterGroupInputs,
    ) -> ProviderResult<Option<ClusterParameterGroupOutputs>> {
        let Some(g) = self.get(ctx, &i.name).await? else { return Ok(None) };
        let out = parameter_group_outputs(&g);
        Ok(crate::aws::tagged_for(&all_tags(ctx, &out.arn).await?, urn).then_some(out))
    }

    /// One `DescribeDBClusterParameterGroups` listing; the tags of the groups the program's names
    /// meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = BTreeMap::new();
        let mut pages = ctx.aws()?.rds.describe_db_cluster_parameter_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            for g in page.map_err(|e| call_failed("DescribeDBClusterParameterGroups", e))?.db_cluster_parameter_groups()
            {
                let name = g.db_cluster_parameter_group_name().unwrap_or_default().to_string();
                existing.insert(name, g.db_cluster_parameter_group_arn().unwrap_or_default().to_string());
            }
        }
        crate::aws::names_held(ctx, items, "name", &existing, |arn| async move { all_tags(ctx, &arn).await }).await
    }
}

// ---------------------------------------------------------------------------------------------
// Clusters

/// Aurora Serverless v2 capacity: a range of Aurora capacity units (ACUs, steps of 0.5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Acus {
    pub min: f64,
    pub max: f64,
}

/// What an Aurora cluster is created with. `R` is a reference resolved at apply (the subnet group,
/// the security groups, the parameter group, the key), `P` the master password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterInputs<R = String, P = Secret<String>> {
    pub identifier: String,
    /// `aurora-postgresql`.
    pub engine: String,
    pub engine_version: String,
    pub db_subnet_group_name: R,
    pub vpc_security_group_ids: Vec<R>,
    pub parameter_group_name: R,
    pub database_name: String,
    pub master_username: String,
    /// Not readable back: omitted from reads, so it keeps its recorded value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_password: Option<P>,
    pub port: i32,
    pub storage_encrypted: bool,
    /// A customer managed key's ARN; none: the AWS managed key. Not read back (RDS names the
    /// AWS managed key where the program names none; a cluster's key never changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<R>,
    pub backup_retention_days: i32,
    /// `hh24:mi-hh24:mi`, UTC.
    pub backup_window: String,
    /// `ddd:hh24:mi-ddd:hh24:mi`, UTC.
    pub maintenance_window: String,
    pub deletion_protection: bool,
    /// Serverless v2 capacity, when the instances are `db.serverless`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serverless_v2: Option<Acus>,
    /// Logs sent to CloudWatch Logs (`postgresql`).
    pub log_exports: Vec<String>,
    /// fabric's own settings, not readable from the cluster (omitted from reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_final_snapshot: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_immediately: Option<bool>,
    /// Create from a cluster snapshot or a point in time of another cluster (not readable back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterOutputs {
    pub identifier: String,
    pub arn: String,
    /// The writer endpoint: reads and writes, follows a failover.
    pub address: String,
    /// The reader endpoint: spreads reads over the readers.
    pub reader_address: String,
    pub port: i32,
    pub resource_id: String,
}

pub fn cluster_provider() -> Arc<dyn Provider> {
    typed(ClusterProvider)
}

pub struct ClusterProvider;

fn cluster_outputs(c: &DbCluster) -> ClusterOutputs {
    ClusterOutputs {
        identifier: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        address: c.endpoint().unwrap_or_default().to_string(),
        reader_address: c.reader_endpoint().unwrap_or_default().to_string(),
        port: c.port().unwrap_or(5432),
        resource_id: c.db_cluster_resource_id().unwrap_or_default().to_string(),
    }
}

fn major(version: &str) -> u32 {
    version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
}

/// Whether a cluster's engine version can move from `old` to `new` in place: up, minor or major
/// (Aurora upgrades in place); never down.
pub fn in_place_version_change(old: &str, new: &str) -> Result<(), String> {
    let v = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    if v(new) < v(old) {
        Err(format!("Aurora cannot downgrade a cluster from {old} to {new}: its engine only moves up"))
    } else {
        Ok(())
    }
}

fn scaling(c: Option<Acus>) -> Option<ServerlessV2ScalingConfiguration> {
    c.map(|c| ServerlessV2ScalingConfiguration::builder().min_capacity(c.min).max_capacity(c.max).build())
}

/// Statuses that end a wait for `available` at once.
const CLUSTER_FAILS: &[&str] =
    &["failed", "incompatible-restore", "incompatible-parameters", "inaccessible-encryption-credentials"];

pub(super) async fn get_cluster(ctx: &Ctx, id: &str) -> ProviderResult<Option<DbCluster>> {
    Ok(found(
        "DescribeDBClusters",
        |c| c == Some("DBClusterNotFoundFault"),
        ctx.aws()?.rds.describe_db_clusters().db_cluster_identifier(id).send().await,
    )?
    .and_then(|o| o.db_clusters().first().cloned()))
}

impl ClusterProvider {
    /// The cluster of that identifier if it is tagged for `urn`; an error if it is someone else's.
    async fn owned(&self, ctx: &Ctx, urn: &Urn, id: &str) -> ProviderResult<Option<DbCluster>> {
        let Some(c) = get_cluster(ctx, id).await? else { return Ok(None) };
        crate::aws::require_ours(ctx, urn, &format!("Aurora cluster {id}"), &pairs(c.tag_list()))?;
        Ok(Some(c))
    }

    /// Waits until the cluster is `available` (or gone, with `gone`).
    async fn wait(&self, ctx: &Ctx, id: &str, gone: bool) -> ProviderResult<Option<DbCluster>> {
        let check = || async move {
            let c = get_cluster(ctx, id).await?;
            let status = c.as_ref().and_then(|c| c.status()).unwrap_or_default().to_string();
            match (&c, gone) {
                (None, true) => Ok(Poll::Ready(None)),
                (Some(_), false) if status == "available" => Ok(Poll::Ready(c)),
                (Some(_), false) if CLUSTER_FAILS.contains(&status.as_str()) => Err(ProviderError(format!(
                    "Aurora cluster {id} is {status} (while waiting for it to be available){}",
                    if status == "incompatible-restore" {
                        ": the restore could not be done; delete the cluster and pick another source"
                    } else {
                        ""
                    }
                ))),
                (None, false) => {
                    Err(ProviderError(format!("Aurora cluster {id} disappeared while it was being changed")))
                }
                _ => Ok(Poll::Waiting(status)),
            }
        };
        poll_until(CLUSTER_WAIT, Duration::from_secs(15), check, |last| {
            format!("Aurora cluster {id} did not settle within {CLUSTER_WAIT:?} (still {last})")
        })
        .await
    }

    /// Restores `i` from `restore`, then sets what a restore cannot (this stack's master password
    /// and backup retention), and only then tags it finished.
    async fn restore(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &ClusterInputs,
        restore: &Restore,
        password: &Secret<String>,
    ) -> ProviderResult<ClusterOutputs> {
        let rds = &ctx.aws()?.rds;
        let tags = Some(rds_tags(ctx, urn, &i.tags));
        let sgs = Some(i.vpc_security_group_ids.clone());
        macro_rules! placed {
            ($req:expr) => {
                $req.db_subnet_group_name(&i.db_subnet_group_name)
                    .set_vpc_security_group_ids(sgs.clone())
                    .db_cluster_parameter_group_name(&i.parameter_group_name)
                    .port(i.port)
                    .set_kms_key_id(i.kms_key_id.clone())
                    .deletion_protection(i.deletion_protection)
                    .copy_tags_to_snapshot(true)
                    .set_serverless_v2_scaling_configuration(scaling(i.serverless_v2))
                    .set_enable_cloudwatch_logs_exports(Some(i.log_exports.clone()))
                    .set_tags(tags.clone())
            };
        }
        if self.owned(ctx, urn, &i.identifier).await?.is_none() {
            create_or_find(
                "RestoreDBCluster",
                Duration::from_millis(500),
                || async {
                    match restore {
                        Restore::Snapshot { snapshot } => placed!(
                            rds.restore_db_cluster_from_snapshot()
                                .db_cluster_identifier(&i.identifier)
                                .snapshot_identifier(snapshot)
                                .engine(&i.engine)
                                .engine_version(&i.engine_version)
                        )
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| classify(&e)),
                        Restore::PointInTime { source, time } => {
                            let req = placed!(
                                rds.restore_db_cluster_to_point_in_time()
                                    .db_cluster_identifier(&i.identifier)
                                    .source_db_cluster_identifier(source)
                            );
                            let req = match time {
                                Some(t) => {
                                    let at = humantime::parse_rfc3339(t).map_err(|e| crate::aws::Failure::Refused {
                                        code: "InvalidRestoreTime".into(),
                                        message: format!("`{t}`: {e}"),
                                    })?;
                                    req.restore_to_time(aws_smithy_types::DateTime::from(at))
                                }
                                None => req.use_latest_restorable_time(true),
                            };
                            req.send().await.map(drop).map_err(|e| classify(&e))
                        }
                    }
                },
                || async { Ok(self.owned(ctx, urn, &i.identifier).await?.map(drop)) },
            )
            .await?;
        }
        self.wait(ctx, &i.identifier, false).await?;
        rds.modify_db_cluster()
            .db_cluster_identifier(&i.identifier)
            .master_user_password(password.expose())
            .backup_retention_period(i.backup_retention_days)
            .preferred_backup_window(&i.backup_window)
            .preferred_maintenance_window(&i.maintenance_window)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| call_failed("ModifyDBCluster", e))?;
        let c = self.wait(ctx, &i.identifier, false).await?.expect("available");
        // Only now is the restore done: this stack's password is set.
        mark_restore_finished(ctx, c.db_cluster_arn().unwrap_or_default(), restore).await?;
        Ok(cluster_outputs(&c))
    }

    fn observe(&self, c: &DbCluster, o: &ClusterOutputs) -> (ClusterInputs, ClusterOutputs) {
        let mut sgs: Vec<String> =
            c.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id().map(str::to_string)).collect();
        sgs.sort();
        let inputs = ClusterInputs {
            identifier: o.identifier.clone(),
            engine: c.engine().unwrap_or_default().to_string(),
            engine_version: c.engine_version().unwrap_or_default().to_string(),
            db_subnet_group_name: c.db_subnet_group().unwrap_or_default().to_string(),
            vpc_security_group_ids: sgs,
            parameter_group_name: c.db_cluster_parameter_group().unwrap_or_default().to_string(),
            database_name: c.database_name().unwrap_or_default().to_string(),
            master_username: c.master_username().unwrap_or_default().to_string(),
            master_password: None,
            port: c.port().unwrap_or(5432),
            storage_encrypted: c.storage_encrypted().unwrap_or(false),
            // The key cannot change on a cluster (it forces a replacement), so no drift of it can
            // be seen; and RDS names the AWS managed key where the program names none.
            kms_key_id: None,
            backup_retention_days: c.backup_retention_period().unwrap_or(0),
            backup_window: c.preferred_backup_window().unwrap_or_default().to_string(),
            maintenance_window: c.preferred_maintenance_window().unwrap_or_default().to_string(),
            deletion_protection: c.deletion_protection().unwrap_or(false),
            serverless_v2: c
                .serverless_v2_scaling_configuration()
                .and_then(|s| Some(Acus { min: s.min_capacity()?, max: s.max_capacity()? })),
            log_exports: c.enabled_cloudwatch_logs_exports().to_vec(),
            skip_final_snapshot: None,
            apply_immediately: None,
            restore: None,
            tags: crate::aws::user_tags_of(pairs(c.tag_list())),
        };
        (inputs, cluster_outputs(c))
    }
}

#[async_trait]
impl TypedProvider for ClusterProvider {
    // What Aurora cannot change on a cluster: its identifier, engine, subnet group, encryption
    // and key, its first database and master user, and where its data came from.
    resource_type!(CLUSTER, ClusterInputs => ClusterOutputs,
        replace_on &[ "identifier", "engine", "db_subnet_group_name", "storage_encrypted", "kms_key_id", "database_name", "master_username", "restore", ],
        import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &ClusterInputs) -> ProviderResult<ClusterOutputs> {
        let password = i.master_password.as_ref().ok_or_else(|| ProviderError("no master password".into()))?;
        if let Some(restore) = &i.restore {
            return self.restore(ctx, urn, i, restore, password).await;
        }
        // Look before creating: the emulator overwrites a cluster of a taken identifier, and an
        // earlier run's create is finished rather than made twice.
        if self.owned(ctx, urn, &i.identifier).await?.is_none() {
            let rds = &ctx.aws()?.rds;
            create_or_find(
                "CreateDBCluster",
                Duration::from_millis(500),
                || async {
                    rds.create_db_cluster()
                        .db_cluster_identifier(&i.identifier)
                        .engine(&i.engine)
                        .engine_version(&i.engine_version)
                        .db_subnet_group_name(&i.db_subnet_group_name)
                        .set_vpc_security_group_ids(Some(i.vpc_security_group_ids.clone()))
                        .db_cluster_parameter_group_name(&i.parameter_group_name)
                        .database_name(&i.database_name)
                        .master_username(&i.master_username)
                        .master_user_password(password.expose())
                        .port(i.port)
                        .storage_encrypted(i.storage_encrypted)
                        .set_kms_key_id(i.kms_key_id.clone())
                        .backup_retention_period(i.backup_retention_days)
                        .preferred_backup_window(&i.backup_window)
                        .preferred_maintenance_window(&i.maintenance_window)
                        .deletion_protection(i.deletion_protection)
                        .set_serverless_v2_scaling_configuration(scaling(i.serverless_v2))
                        .set_enable_cloudwatch_logs_exports(Some(i.log_exports.clone()))
                        .copy_tags_to_snapshot(true)
                        .set_tags(Some(rds_tags(ctx, urn, &i.tags)))
                        .send()
                        .await
                        .map_err(|e| classify(&e))?;
                    Ok(())
                },
                || async { Ok(self.owned(ctx, urn, &i.identifier).await?.map(drop)) },
            )
            .await?;
        }
        let c = self.wait(ctx, &i.identifier, false).await?.expect("available");
        Ok(cluster_outputs(&c))
    }

    /// In place: engine version (up only; a major upgrade with its new parameter group), backup
    /// retention and windows, deletion protection, security groups, Serverless v2 capacity, log
    /// exports, the master password. In the maintenance window unless `apply_immediately`.
    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<ClusterOutputs> {
        let Update { old, outputs: out, new } = change;
        in_place_version_change(&old.engine_version, &new.engine_version).map_err(|why| {
            ProviderError(format!("{why}; keep `engine_version` as deployed, or restore a snapshot into a new cluster"))
        })?;
        let rds = &ctx.aws()?.rds;
        let mut req = rds
            .modify_db_cluster()
            .db_cluster_identifier(&out.identifier)
            .apply_immediately(new.apply_immediately.unwrap_or(false));
        let mut any = false;
        if old.engine_version != new.engine_version {
            req = req
                .engine_version(&new.engine_version)
                .allow_major_version_upgrade(major(&old.engine_version) != major(&new.engine_version));
            any = true;
        }
        if old.parameter_group_name != new.parameter_group_name {
            req = req.db_cluster_parameter_group_name(&new.parameter_group_name);
            any = true;
        }
        if old.backup_retention_days != new.backup_retention_days {
            req = req.backup_retention_period(new.backup_retention_days);
            any = true;
        }
        if old.backup_window != new.backup_window {
            req = req.preferred_backup_window(&new.backup_window);
            any = true;
        }
        if old.maintenance_window != new.maintenance_window {
            req = req.preferred_maintenance_window(&new.maintenance_window);
            any = true;
        }
        if old.deletion_protection != new.deletion_protection {
            req = req.deletion_protection(new.deletion_protection);
            any = true;
        }
        if old.vpc_security_group_ids != new.vpc_security_group_ids {
            req = req.set_vpc_security_group_ids(Some(new.vpc_security_group_ids.clone()));
            any = true;
        }
        if old.serverless_v2 != new.serverless_v2 {
            req = req.set_serverless_v2_scaling_configuration(scaling(new.serverless_v2));
            any = true;
        }
        if old.port != new.port {
            req = req.port(new.port);
            any = true;
        }
        if old.log_exports != new.log_exports {
            let enable: Vec<String> =
                new.log_exports.iter().filter(|l| !old.log_exports.contains(l)).cloned().collect();
            let disable: Vec<String> =
                old.log_exports.iter().filter(|l| !new.log_exports.contains(l)).cloned().collect();
            req = req.cloudwatch_logs_export_configuration(
                aws_sdk_rds::types::CloudwatchLogsExportConfiguration::builder()
                    .set_enable_log_types(Some(enable))
                    .set_disable_log_types(Some(disable))
                    .build(),
            );
            any = true;
        }
        if old.master_password != new.master_password
            && let Some(p) = &new.master_password
        {
            req = req.master_user_password(p.expose());
            any = true;
        }
        if any {
            req.send().await.map_err(|e| call_failed("ModifyDBCluster", e))?;
            self.wait(ctx, &out.identifier, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        let c = get_cluster(ctx, &out.identifier)
            .await?
            .ok_or_else(|| ProviderError(format!("Aurora cluster {} disappeared", out.identifier)))?;
        Ok(cluster_outputs(&c))
    }

    /// Deletes the cluster (its instances go first: they depend on it), with a final snapshot
    /// unless `skip_final_snapshot`. Deletion protection on in AWS but off in the program is
    /// lifted first; on in the program, it refuses with the way out.
    async fn delete(&self, ctx: &Ctx, _: &Urn, i: &ClusterInputs, out: &ClusterOutputs) -> ProviderResult<()> {
        let rds = &ctx.aws()?.rds;
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let req = rds.delete_db_cluster().db_cluster_identifier(&out.identifier);
        let req = if i.skip_final_snapshot.unwrap_or(false) {
            req.skip_final_snapshot(true)
        } else {
            req.skip_final_snapshot(false).final_db_snapshot_identifier(format!("{}-final-{stamp}", out.identifier))
        };
        let gone = delete_unless_protected(
            &format!("Aurora cluster {}", out.identifier),
            "DeleteDBCluster",
            super::PROTECTED,
            i.deletion_protection,
            |c| c == "DBClusterNotFoundFault",
            || async { req.clone().send().await.map(drop) },
            || async {
                let lift = rds.modify_db_cluster().db_cluster_identifier(&out.identifier).deletion_protection(false);
                lift.apply_immediately(true).send().await.map(drop).map_err(|e| call_failed("ModifyDBCluster", e))
            },
        )
        .await?;
        if gone {
            return Ok(());
        }
        self.wait(ctx, &out.identifier, true).await.map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ClusterOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move { Ok(get_cluster(ctx, &o.identifier).await?.map(|c| self.observe(&c, o))) })
            .await
    }

    /// The cluster this resource created. A restored one counts only once its restore is
    /// finished (this stack's password set): otherwise the create runs again and finishes it.
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &ClusterInputs) -> ProviderResult<Option<ClusterOutputs>> {
        let Some(c) = get_cluster(ctx, &i.identifier).await? else { return Ok(None) };
        let tags = pairs(c.tag_list());
        if !crate::aws::tagged_for(&tags, urn) {
            return Ok(None);
        }
        if !restore_finished(&tags, i.restore.as_ref()) {
            return Ok(None);
        }
        Ok(Some(cluster_outputs(&c)))
    }

    /// By DB cluster identifier. The master password cannot be read: the program's is kept, and
    /// set on the cluster by the first deploy after the import.
    async fn import(&self, ctx: &Ctx, _: &Urn, id: &str) -> Read<Self> {
        Ok(get_cluster(ctx, id).await?.map(|c| {
            let o = cluster_outputs(&c);
            self.observe(&c, &o)
        }))
    }

    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &ClusterInputs) -> ProviderResult<Vec<String>> {
        Ok(get_cluster(ctx, &i.identifier)
            .await?
            .and_then(|c| c.db_cluster_identifier().map(str::to_string))
            .into_iter()
            .collect())
    }

    /// One `DescribeDBClusters` listing (tags included) for every cluster the plan creates.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut listed: BTreeMap<String, Tags> = BTreeMap::new();
        let mut pages = ctx.aws()?.rds.describe_db_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            for c in page.map_err(|e| call_failed("DescribeDBClusters", e))?.db_clusters() {
                listed.insert(c.db_cluster_identifier().unwrap_or_default().to_string(), pairs(c.tag_list()));
            }
        }
        crate::aws::names_held_listed(ctx, items, "identifier", &listed).await
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster instances

/// An instance of a cluster: the first one made is the writer, the others readers (Aurora fails
/// over to the reader of the lowest promotion tier).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterInstanceInputs<R = String> {
    pub identifier: String,
    pub cluster_identifier: String,
    pub engine: String,
    /// The cluster's version, for preflight's orderable check (the cluster sets it; not read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// `db.r7g.large`, or `db.serverless` (Serverless v2).
    pub instance_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<R>,
    pub promotion_tier: i32,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterInstanceOutputs {
    pub identifier: String,
    pub arn: String,
    /// The instance's own endpoint (clients use the cluster's).
    pub address: String,
}

pub fn cluster_instance_provider() -> Arc<dyn Provider> {
    typed(ClusterInstanceProvider)
}

pub struct ClusterInstanceProvider;

fn instance_outputs(d: &DbInstance) -> ClusterInstanceOutputs {
    ClusterInstanceOutputs {
        identifier: d.db_instance_identifier().unwrap_or_default().to_string(),
        arn: d.db_instance_arn().unwrap_or_default().to_string(),
        address: d.endpoint().and_then(|e| e.address()).unwrap_or_default().to_string(),
    }
}

/// The DB instance of that identifier, standalone or in a cluster, if there is one.
pub(super) async fn get_instance(ctx: &Ctx, id: &str) -> ProviderResult<Option<DbInstance>> {
    Ok(found(
        "DescribeDBInstances",
        |c| c.is_some_and(|c| c.starts_with("DBInstanceNotFound")),
        ctx.aws()?.rds.describe_db_instances().db_instance_identifier(id).send().await,
    )?
    .and_then(|o| o.db_instances().first().cloned()))
}

impl ClusterInstanceProvider {
    async fn owned(&self, ctx: &Ctx, urn: &Urn, id: &str) -> ProviderResult<Option<DbInstance>> {
        let Some(d) = get_instance(ctx, id).await? else { return Ok(None) };
        crate::aws::require_ours(ctx, urn, &format!("RDS instance {id}"), &pairs(d.tag_list()))?;
        Ok(Some(d))
    }

    /// An instance of a cluster waits as any RDS instance does.
    async fn wait(&self, ctx: &Ctx, id: &str, gone: bool) -> ProviderResult<Option<DbInstance>> {
        super::InstanceProvider.wait(ctx, id, gone).await
    }
}

#[async_trait]
impl TypedProvider for ClusterInstanceProvider {
    resource_type!(CLUSTER_INSTANCE, ClusterInstanceInputs => ClusterInstanceOutputs,
        replace_on &["identifier", "cluster_identifier", "engine", "availability_zone"], import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &ClusterInstanceInputs) -> ProviderResult<ClusterInstanceOutputs> {
        if self.owned(ctx, urn, &i.identifier).await?.is_none() {
            let rds = &ctx.aws()?.rds;
            create_or_find(
                "CreateDBInstance",
                Duration::from_millis(500),
                || async {
                    rds.create_db_instance()
                        .db_instance_identifier(&i.identifier)
                        .db_cluster_identifier(&i.cluster_identifier)
                        .engine(&i.engine)
                        .db_instance_class(&i.instance_class)
                        .set_availability_zone(i.availability_zone.clone())
                        .promotion_tier(i.promotion_tier)
                        .publicly_accessible(false)
                        .auto_minor_version_upgrade(true)
                        .copy_tags_to_snapshot(true)
                        .set_tags(Some(rds_tags(ctx, urn, &i.tags)))
                        .send()
                        .await
                        .map_err(|e| classify(&e))?;
                    Ok(())
                },
                || async { Ok(self.owned(ctx, urn, &i.identifier).await?.map(drop)) },
            )
            .await?;
        }
        let d = self.wait(ctx, &i.identifier, false).await?.expect("available");
        Ok(instance_outputs(&d))
    }

    /// Instance class and promotion tier, applied at once: the builder chains a cluster's
    /// instances, so they change one after another and the others keep serving.
    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<ClusterInstanceOutputs> {
        let Update { old, outputs: out, new } = change;
        let mut req =
            ctx.aws()?.rds.modify_db_instance().db_instance_identifier(&out.identifier).apply_immediately(true);
        let mut any = false;
        if old.instance_class != new.instance_class {
            req = req.db_instance_class(&new.instance_class);
            any = true;
        }
        if old.promotion_tier != new.promotion_tier {
            req = req.promotion_tier(new.promotion_tier);
            any = true;
        }
        if any {
            req.send().await.map_err(|e| call_failed("ModifyDBInstance", e))?;
            self.wait(ctx, &out.identifier, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        _: &Urn,
        _: &ClusterInstanceInputs,
        out: &ClusterInstanceOutputs,
    ) -> ProviderResult<()> {
        // An instance of a cluster has no snapshot of its own: the cluster's final snapshot is it.
        match ctx
            .aws()?
            .rds
            .delete_db_instance()
            .db_instance_identifier(&out.identifier)
            .skip_final_snapshot(true)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if error_code(&e).is_some_and(|c| c.starts_with("DBInstanceNotFound")) => return Ok(()),
            Err(e) => return Err(call_failed("DeleteDBInstance", e)),
        }
        self.wait(ctx, &out.identifier, true).await.map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ClusterInstanceOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            Ok(get_instance(ctx, &o.identifier).await?.map(|d| {
                (
                    ClusterInstanceInputs {
                        identifier: o.identifier.clone(),
                        cluster_identifier: d.db_cluster_identifier().unwrap_or_default().to_string(),
                        engine: d.engine().unwrap_or_default().to_string(),
                        engine_version: None,
                        instance_class: d.db_instance_class().unwrap_or_default().to_string(),
                        availability_zone: d.availability_zone().map(str::to_string),
                        promotion_tier: d.promotion_tier().unwrap_or(1),
                        tags: crate::aws::user_tags_of(pairs(d.tag_list())),
                    },
                    instance_outputs(&d),
                )
            }))
        })
        .await
    }

    async fn find(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &ClusterInstanceInputs,
    ) -> ProviderResult<Option<ClusterInstanceOutputs>> {
        let Some(d) = get_instance(ctx, &i.identifier).await? else { return Ok(None) };
        Ok(crate::aws::tagged_for(&pairs(d.tag_list()), urn).then(|| instance_outputs(&d)))
    }

    /// By DB instance identifier.
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        let probe = ClusterInstanceOutputs { identifier: id.to_string(), arn: String::new(), address: String::new() };
        self.read_one(ctx, urn, probe).await
    }

    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &ClusterInstanceInputs) -> ProviderResult<Vec<String>> {
        Ok(get_instance(ctx, &i.identifier)
            .await?
            .and_then(|d| d.db_instance_identifier().map(str::to_string))
            .into_iter()
            .collect())
    }

    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        super::instance_names_taken(ctx, items).await
    }
}

#[cfg(test)]
mod tests {
    use super::in_place_version_change;

    #[test]
    fn a_cluster_version_moves_up_minor_or_major_and_never_down() {
        assert!(in_place_version_change("15.4", "15.6").is_ok());
        assert!(in_place_version_change("15.4", "16.4").is_ok());
        assert!(in_place_version_change("16.4", "16.10").is_ok());
        let down = in_place_version_change("16.4", "15.6").unwrap_err();
        assert!(down.contains("cannot downgrade a cluster from 16.4 to 15.6"), "{down}");
    }
}
