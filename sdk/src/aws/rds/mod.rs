//! Amazon RDS: DB subnet groups and DB instances.

use super::wait::{Poll, poll_until};
use super::{call_failed, classify, delete_unless_protected};
use crate::aws::AwsCtx;
use crate::aws::create::create_or_find;
use crate::aws::found;
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, read_each, typed,
};
use crate::model::{Secret, Urn};
use async_trait::async_trait;
use aws_sdk_rds::types::Tag;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How RDS refuses to delete a protected instance or cluster.
pub(crate) const PROTECTED: &str = "InvalidParameterCombination";

pub use crate::aws::Tags;

mod aurora;
pub mod cluster;
#[cfg(all(test, feature = "full"))]
mod cluster_request_tests;
mod postgres;
mod preflight;
pub use aurora::AuroraPostgres;
pub use cluster::Acus;
pub use postgres::{Database, RdsPostgres};
pub(crate) use preflight::preflight;

/// What a stack program needs of RDS in scope (part of [`crate::prelude`]).
pub mod prelude {
    pub use super::{Acus, AuroraPostgres, Database, RdsPostgres, Restore};
}

pub const SUBNET_GROUP: &str = "aws:rds:DbSubnetGroup";
pub const INSTANCE: &str = "aws:rds:DbInstance";

/// How long an instance may take to become available (Multi-AZ creates take 20–40 minutes).
const INSTANCE_WAIT: Duration = Duration::from_secs(90 * 60);

fn rds_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> Vec<Tag> {
    super::with_fabric_tags(ctx, urn, tags).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn user_tags(tags: &[Tag]) -> Tags {
    super::user_tags_of(tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))))
}

async fn sync_tags(ctx: &Ctx, arn: &str, old: &Tags, new: &Tags) -> ProviderResult<()> {
    let rds = &ctx.aws()?.rds;
    let remove = |keys| async move {
        let call = rds.remove_tags_from_resource().resource_name(arn).set_tag_keys(Some(keys));
        call.send().await.map(drop).map_err(|e| call_failed("RemoveTagsFromResource", e))
    };
    let set = |pairs: Vec<(String, String)>| async move {
        let tags = pairs.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let call = rds.add_tags_to_resource().resource_name(arn).set_tags(Some(tags));
        call.send().await.map(drop).map_err(|e| call_failed("AddTagsToResource", e))
    };
    super::TagChanges::sync(old, new, remove, set).await
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetGroupInputs<L = Vec<String>> {
    pub name: String,
    pub description: String,
    /// Sorted, so that reads compare equal.
    pub subnet_ids: L,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetGroupOutputs {
    pub name: String,
    pub arn: String,
}

pub fn subnet_group_provider() -> Arc<dyn Provider> {
    typed(SubnetGroupProvider)
}

pub struct SubnetGroupProvider;

fn group_outputs(g: &aws_sdk_rds::types::DbSubnetGroup) -> SubnetGroupOutputs {
    SubnetGroupOutputs {
        name: g.db_subnet_group_name().unwrap_or_default().to_string(),
        arn: g.db_subnet_group_arn().unwrap_or_default().to_string(),
    }
}

impl SubnetGroupProvider {
    async fn all_tags(&self, ctx: &Ctx, arn: &str) -> ProviderResult<Tags> {
        cluster::all_tags(ctx, arn).await
    }

    async fn get(&self, ctx: &Ctx, name: &str) -> ProviderResult<Option<aws_sdk_rds::types::DbSubnetGroup>> {
        Ok(found(
            "DescribeDBSubnetGroups",
            |c| c == Some("DBSubnetGroupNotFoundFault"),
            ctx.aws()?.rds.describe_db_subnet_groups().db_subnet_group_name(name).send().await,
        )?
        .and_then(|o| o.db_subnet_groups().first().cloned()))
    }
}

#[async_trait]
impl TypedProvider for SubnetGroupProvider {
    resource_type!(SUBNET_GROUP, SubnetGroupInputs => SubnetGroupOutputs,
        replace_on &["name"], import Import::Never("not implemented yet"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &SubnetGroupInputs) -> ProviderResult<SubnetGroupOutputs> {
        let rds = &ctx.aws()?.rds;
        // Look before creating: the local emulator overwrites a group of the same name instead of
        // answering DBSubnetGroupAlreadyExists, and AWS's answer alone would not say whose it is.
        if let Some(g) = self.get(ctx, &inputs.name).await? {
            let out = group_outputs(&g);
            let tags = self.all_tags(ctx, &out.arn).await?;
            return if super::tagged_for(&tags, urn) {
                Ok(out)
            } else {
                Err(super::not_ours(ctx, urn, &format!("DB subnet group {}", inputs.name), &tags))
            };
        }
        let created = create_or_find(
            "CreateDBSubnetGroup",
            Duration::from_millis(500),
            || async {
                let r = rds
                    .create_db_subnet_group()
                    .db_subnet_group_name(&inputs.name)
                    .db_subnet_group_description(&inputs.description)
                    .set_subnet_ids(Some(inputs.subnet_ids.clone()))
                    .set_tags(Some(rds_tags(ctx, urn, &inputs.tags)))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(r.db_subnet_group()
                    .map(group_outputs)
                    .unwrap_or(SubnetGroupOutputs { name: inputs.name.clone(), arn: String::new() }))
            },
            || self.find(ctx, urn, inputs),
        )
        .await;
        match created {
            Err(e) if e.0.contains("DBSubnetGroupAlreadyExists") => {
                // Ours only if tagged for this resource; anyone else's is left alone.
                if let Some(found) = self.find(ctx, urn, inputs).await? {
                    return Ok(found);
                }
                let g = self.get(ctx, &inputs.name).await?;
                let tags = match g.as_ref().and_then(|g| g.db_subnet_group_arn()) {
                    Some(arn) => self.all_tags(ctx, arn).await?,
                    None => Tags::new(),
                };
                Err(super::not_ours(ctx, urn, &format!("DB subnet group {}", inputs.name), &tags))
            }
            other => other,
        }
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<SubnetGroupOutputs> {
        let Update { old, outputs: out, new } = change;
        if old.subnet_ids != new.subnet_ids || old.description != new.description {
            ctx.aws()?
                .rds
                .modify_db_subnet_group()
                .db_subnet_group_name(&out.name)
                .db_subnet_group_description(&new.description)
                .set_subnet_ids(Some(new.subnet_ids.clone()))
                .send()
                .await
                .map_err(|e| call_failed("ModifyDBSubnetGroup", e))?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &SubnetGroupInputs, out: &SubnetGroupOutputs) -> ProviderResult<()> {
        found(
            "DeleteDBSubnetGroup",
            |c| c == Some("DBSubnetGroupNotFoundFault"),
            ctx.aws()?.rds.delete_db_subnet_group().db_subnet_group_name(&out.name).send().await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, SubnetGroupOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let Some(g) = self.get(ctx, &o.name).await? else { return Ok(None) };
            let tags = self.all_tags(ctx, &o.arn).await?;
            let mut subnet_ids: Vec<String> =
                g.subnets().iter().filter_map(|s| s.subnet_identifier().map(str::to_string)).collect();
            subnet_ids.sort();
            Ok(Some((
                SubnetGroupInputs {
                    name: o.name.clone(),
                    description: g.db_subnet_group_description().unwrap_or_default().to_string(),
                    subnet_ids,
                    tags: super::user_tags_of(tags),
                },
                group_outputs(&g),
            )))
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
        let Some(g) = self.get(ctx, &inputs.name).await? else { return Ok(None) };
        let out = group_outputs(&g);
        Ok(super::tagged_for(&self.all_tags(ctx, &out.arn).await?, urn).then_some(out))
    }

    /// One `DescribeDBSubnetGroups` listing; the tags of the groups the program's names meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = BTreeMap::new();
        let mut pages = ctx.aws()?.rds.describe_db_subnet_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            for g in page.map_err(|e| call_failed("DescribeDBSubnetGroups", e))?.db_subnet_groups() {
                let o = group_outputs(g);
                existing.insert(o.name, o.arn);
            }
        }
        super::names_held(ctx, items, "name", &existing, |arn| async move { self.all_tags(ctx, &arn).await }).await
    }
}

/// One `DescribeDBInstances` listing (tags included) for every instance the plan creates,
/// standalone or in a cluster: an instance identifier is unique among all of an account's.
async fn instance_names_taken(ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
    let mut listed: BTreeMap<String, Tags> = BTreeMap::new();
    let mut pages = ctx.aws()?.rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        for d in page.map_err(|e| call_failed("DescribeDBInstances", e))?.db_instances() {
            listed.insert(d.db_instance_identifier().unwrap_or_default().to_string(), tag_pairs(d.tag_list()));
        }
    }
    super::names_held_listed(ctx, items, "identifier", &listed).await
}

/// Every tag of a listing's entry, fabric's included.
fn tag_pairs(tags: &[Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))).collect()
}

/// Statuses that end a wait for `available` at once: the SDK's `DBInstanceAvailable` waiter's.
const AVAILABLE_FAILS: &[&str] = &["deleted", "deleting", "failed", "incompatible-restore", "incompatible-parameters"];
/// Statuses that end a wait for the delete at once: the SDK's `DBInstanceDeleted` waiter's.
const DELETED_FAILS: &[&str] = &["creating", "modifying", "rebooting", "resetting-master-credentials"];

/// The tag a restored instance gets once this stack's password is set on it: an instance restored
/// without it (a run killed in between) still has the snapshot's password, and is finished by the
/// next run.
const TAG_RESTORE_FINISHED: &str = "fabric:restore-finished";

/// Where a new instance's data comes from, instead of an empty database: a snapshot (daily and
/// weekly AWS Backup recovery points, or a final snapshot), or a point in time of another
/// instance's continuous backups.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Restore {
    /// A DB snapshot identifier or ARN.
    Snapshot { snapshot: String },
    /// `source` (an instance identifier) as it was at `time` (RFC 3339, UTC), or at the latest
    /// restorable time (about five minutes ago) when `time` is `None`.
    PointInTime { source: String, time: Option<String> },
}

/// What an RDS instance is created with. `engine_major` is derived from `engine_version`: a major
/// upgrade replaces the instance; a minor one is modified in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceInputs<R = String, P = Secret<String>> {
    pub identifier: String,
    pub engine: String,
    pub engine_version: String,
    pub engine_major: String,
    pub instance_class: String,
    pub allocated_storage: i32,
    pub max_allocated_storage: i32,
    pub storage_type: String,
    pub storage_encrypted: bool,
    pub multi_az: bool,
    pub backup_retention_days: i32,
    pub deletion_protection: bool,
    pub publicly_accessible: bool,
    pub db_subnet_group_name: R,
    pub vpc_security_group_ids: Vec<R>,
    pub db_name: String,
    pub master_username: String,
    /// Not readable back: omitted from reads, so it keeps its recorded value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_password: Option<P>,
    /// fabric's own settings, not readable from the instance (omitted from reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_final_snapshot: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_immediately: Option<bool>,
    /// Create from a snapshot or a point in time (not readable back: omitted from reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceOutputs {
    pub identifier: String,
    pub arn: String,
    pub address: String,
    pub port: i32,
    pub resource_id: String,
}

pub fn instance_provider() -> Arc<dyn Provider> {
    typed(InstanceProvider)
}

pub struct InstanceProvider;

fn instance_outputs(d: &aws_sdk_rds::types::DbInstance) -> InstanceOutputs {
    InstanceOutputs {
        identifier: d.db_instance_identifier().unwrap_or_default().to_string(),
        arn: d.db_instance_arn().unwrap_or_default().to_string(),
        address: d.endpoint().and_then(|e| e.address()).unwrap_or_default().to_string(),
        port: d.endpoint().and_then(|e| e.port()).unwrap_or(5432),
        resource_id: d.dbi_resource_id().unwrap_or_default().to_string(),
    }
}

impl InstanceProvider {
    async fn get(&self, ctx: &Ctx, id: &str) -> ProviderResult<Option<aws_sdk_rds::types::DbInstance>> {
        cluster::get_instance(ctx, id).await
    }

    /// Restores `i` from `restore`, then sets what a restore cannot: this stack's master password,
    /// backup retention and storage ceiling (applied at once: the instance is new).
    async fn restore(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &InstanceInputs,
        restore: &Restore,
        password: &Secret<String>,
    ) -> ProviderResult<InstanceOutputs> {
        let rds = &ctx.aws()?.rds;
        let tags = Some(rds_tags(ctx, urn, &i.tags));
        let sgs = Some(i.vpc_security_group_ids.clone());
        // Both restore requests take the new instance's placement the same way.
        macro_rules! placed {
            ($req:expr) => {
                $req.db_instance_class(&i.instance_class)
                    .storage_type(&i.storage_type)
                    .multi_az(i.multi_az)
                    .deletion_protection(i.deletion_protection)
                    .publicly_accessible(i.publicly_accessible)
                    .db_subnet_group_name(&i.db_subnet_group_name)
                    .set_vpc_security_group_ids(sgs.clone())
                    .copy_tags_to_snapshot(true)
                    .set_tags(tags.clone())
            };
        }
        // An instance of ours already there is a restore an earlier run started: finish it.
        let started = self.owned(ctx, urn, i).await?.is_some();
        if !started {
            create_or_find(
                "RestoreDBInstance",
                Duration::from_millis(500),
                || async {
                    match restore {
                        Restore::Snapshot { snapshot } => placed!(
                            rds.restore_db_instance_from_db_snapshot()
                                .db_instance_identifier(&i.identifier)
                                .db_snapshot_identifier(snapshot)
                        )
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| classify(&e)),
                        Restore::PointInTime { source, time } => {
                            let req = placed!(
                                rds.restore_db_instance_to_point_in_time()
                                    .source_db_instance_identifier(source)
                                    .target_db_instance_identifier(&i.identifier)
                            );
                            let req = match time {
                                Some(t) => {
                                    let at = humantime::parse_rfc3339(t).map_err(|e| crate::aws::Failure::Refused {
                                        code: "InvalidRestoreTime".into(),
                                        message: format!("`{t}`: {e}"),
                                    })?;
                                    req.restore_time(aws_smithy_types::DateTime::from(at))
                                }
                                None => req.use_latest_restorable_time(true),
                            };
                            req.send().await.map(|_| ()).map_err(|e| classify(&e))
                        }
                    }
                },
                || async { Ok(self.owned(ctx, urn, i).await?.map(|_| ())) },
            )
            .await?;
        }
        self.wait(ctx, &i.identifier, false).await?;
        rds.modify_db_instance()
            .db_instance_identifier(&i.identifier)
            .master_user_password(password.expose())
            .backup_retention_period(i.backup_retention_days)
            .max_allocated_storage(i.max_allocated_storage)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| call_failed("ModifyDBInstance", e))?;
        let db = self.wait(ctx, &i.identifier, false).await?.expect("available");
        // Only now is the restore done: this stack's password is set.
        mark_restore_finished(ctx, db.db_instance_arn().unwrap_or_default(), restore).await?;
        Ok(instance_outputs(&db))
    }

    /// The instance of that identifier, if it is tagged for `urn`; an error if it exists and is
    /// someone else's.
    async fn owned(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        i: &InstanceInputs,
    ) -> ProviderResult<Option<aws_sdk_rds::types::DbInstance>> {
        let Some(d) = self.get(ctx, &i.identifier).await? else { return Ok(None) };
        super::require_ours(ctx, urn, &format!("RDS instance {}", i.identifier), &tag_pairs(d.tag_list()))?;
        Ok(Some(d))
    }

    /// Waits until the instance is `available` (or gone, with `gone`).
    async fn wait(&self, ctx: &Ctx, id: &str, gone: bool) -> ProviderResult<Option<aws_sdk_rds::types::DbInstance>> {
        let check = || async move {
            let d = self.get(ctx, id).await?;
            let status = d.as_ref().and_then(|db| db.db_instance_status()).unwrap_or_default().to_string();
            match (&d, gone) {
                (None, true) => Ok(Poll::Ready(None)),
                (Some(_), false) if status == "available" => Ok(Poll::Ready(d)),
                (Some(_), false) if AVAILABLE_FAILS.contains(&status.as_str()) || status.starts_with("failed") => {
                    Err(ProviderError(format!(
                        "RDS instance {id} is {status} (while waiting for it to be available){}",
                        if status == "incompatible-restore" {
                            ": the restore could not be done (the snapshot or time, the class or the storage do not fit); delete the instance and pick another source"
                        } else {
                            ""
                        }
                    )))
                }
                (Some(_), true) if DELETED_FAILS.contains(&status.as_str()) => {
                    Err(ProviderError(format!("RDS instance {id} is {status} (while waiting for it to be deleted)")))
                }
                (None, false) => {
                    Err(ProviderError(format!("RDS instance {id} disappeared while it was being created")))
                }
                _ => Ok(Poll::Waiting(status)),
            }
        };
        poll_until(INSTANCE_WAIT, Duration::from_secs(15), check, |last| {
            format!("RDS instance {id} did not settle within {INSTANCE_WAIT:?} (still {last})")
        })
        .await
    }
}

#[async_trait]
impl TypedProvider for InstanceProvider {
    resource_type!(INSTANCE, InstanceInputs => InstanceOutputs,
        replace_on &[ "identifier", "engine", "engine_major", "storage_encrypted", "db_subnet_group_name", "db_name", "master_username", "restore", ],
        import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &InstanceInputs) -> ProviderResult<InstanceOutputs> {
        let rds = &ctx.aws()?.rds;
        let password = i.master_password.as_ref().ok_or_else(|| ProviderError("no master password".into()))?;
        if let Some(restore) = &i.restore {
            return self.restore(ctx, urn, i, restore, password).await;
        }
        create_or_find(
            "CreateDBInstance",
            Duration::from_millis(500),
            || async {
                rds.create_db_instance()
                    .db_instance_identifier(&i.identifier)
                    .engine(&i.engine)
                    .engine_version(&i.engine_version)
                    .db_instance_class(&i.instance_class)
                    .allocated_storage(i.allocated_storage)
                    .max_allocated_storage(i.max_allocated_storage)
                    .storage_type(&i.storage_type)
                    .storage_encrypted(i.storage_encrypted)
                    .multi_az(i.multi_az)
                    .backup_retention_period(i.backup_retention_days)
                    .deletion_protection(i.deletion_protection)
                    .publicly_accessible(i.publicly_accessible)
                    .db_subnet_group_name(&i.db_subnet_group_name)
                    .set_vpc_security_group_ids(Some(i.vpc_security_group_ids.clone()))
                    .db_name(&i.db_name)
                    .master_username(&i.master_username)
                    .master_user_password(password.expose())
                    .copy_tags_to_snapshot(true)
                    .set_tags(Some(rds_tags(ctx, urn, &i.tags)))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(())
            },
            || async { Ok(self.find(ctx, urn, i).await?.map(|_| ())) },
        )
        .await?;
        let db = self.wait(ctx, &i.identifier, false).await?.expect("available");
        Ok(instance_outputs(&db))
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<InstanceOutputs> {
        let Update { old, outputs: out, new } = change;
        let rds = &ctx.aws()?.rds;
        let mut req = rds
            .modify_db_instance()
            .db_instance_identifier(&out.identifier)
            .apply_immediately(new.apply_immediately.unwrap_or(false));
        let mut any = false;
        if old.instance_class != new.instance_class {
            req = req.db_instance_class(&new.instance_class);
            any = true;
        }
        if old.allocated_storage != new.allocated_storage {
            req = req.allocated_storage(new.allocated_storage);
            any = true;
        }
        if old.max_allocated_storage != new.max_allocated_storage {
            req = req.max_allocated_storage(new.max_allocated_storage);
            any = true;
        }
        if old.backup_retention_days != new.backup_retention_days {
            req = req.backup_retention_period(new.backup_retention_days);
            any = true;
        }
        if old.multi_az != new.multi_az {
            req = req.multi_az(new.multi_az);
            any = true;
        }
        if old.deletion_protection != new.deletion_protection {
            req = req.deletion_protection(new.deletion_protection);
            any = true;
        }
        if old.engine_version != new.engine_version {
            req = req.engine_version(&new.engine_version);
            any = true;
        }
        if old.vpc_security_group_ids != new.vpc_security_group_ids {
            req = req.set_vpc_security_group_ids(Some(new.vpc_security_group_ids.clone()));
            any = true;
        }
        if old.publicly_accessible != new.publicly_accessible {
            req = req.publicly_accessible(new.publicly_accessible);
            any = true;
        }
        if old.master_password != new.master_password
            && let Some(p) = &new.master_password
        {
            req = req.master_user_password(p.expose());
            any = true;
        }
        if any {
            req.send().await.map_err(|e| call_failed("ModifyDBInstance", e))?;
            self.wait(ctx, &out.identifier, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, i: &InstanceInputs, out: &InstanceOutputs) -> ProviderResult<()> {
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let req = ctx.aws()?.rds.delete_db_instance().db_instance_identifier(&out.identifier);
        let req = if i.skip_final_snapshot.unwrap_or(false) {
            req.skip_final_snapshot(true)
        } else {
            req.skip_final_snapshot(false).final_db_snapshot_identifier(format!("{}-final-{stamp}", out.identifier))
        };
        let rds = &ctx.aws()?.rds;
        let gone = delete_unless_protected(
            &format!("RDS instance {}", out.identifier),
            "DeleteDBInstance",
            PROTECTED,
            i.deletion_protection,
            |c| c.starts_with("DBInstanceNotFound"),
            || async { req.clone().send().await.map(drop) },
            || async {
                let lift = rds.modify_db_instance().db_instance_identifier(&out.identifier).deletion_protection(false);
                lift.apply_immediately(true).send().await.map(drop).map_err(|e| call_failed("ModifyDBInstance", e))
            },
        )
        .await?;
        if gone {
            return Ok(());
        }
        self.wait(ctx, &out.identifier, true).await.map(|_| ())
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, InstanceOutputs)]) -> Reads<Self> {
        let mut all = Vec::new();
        let mut pages = ctx.aws()?.rds.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            all.extend(page.map_err(|e| call_failed("DescribeDBInstances", e))?.db_instances().iter().cloned());
        }
        Ok(items
            .iter()
            .map(|(_, o)| {
                let d = all.iter().find(|d| d.db_instance_identifier() == Some(o.identifier.as_str()))?;
                let version = d.engine_version().unwrap_or_default().to_string();
                let mut sgs: Vec<String> = d
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
                    .collect();
                sgs.sort();
                Some((
                    InstanceInputs {
                        identifier: o.identifier.clone(),
                        engine: d.engine().unwrap_or_default().to_string(),
                        engine_major: version.split('.').next().unwrap_or_default().to_string(),
                        engine_version: version,
                        instance_class: d.db_instance_class().unwrap_or_default().to_string(),
                        allocated_storage: d.allocated_storage().unwrap_or_default(),
                        max_allocated_storage: d.max_allocated_storage().unwrap_or_default(),
                        storage_type: d.storage_type().unwrap_or_default().to_string(),
                        storage_encrypted: d.storage_encrypted().unwrap_or(false),
                        multi_az: d.multi_az().unwrap_or(false),
                        backup_retention_days: d.backup_retention_period().unwrap_or_default(),
                        deletion_protection: d.deletion_protection().unwrap_or(false),
                        publicly_accessible: d.publicly_accessible().unwrap_or(false),
                        db_subnet_group_name: d
                            .db_subnet_group()
                            .and_then(|g| g.db_subnet_group_name())
                            .unwrap_or_default()
                            .to_string(),
                        vpc_security_group_ids: sgs,
                        db_name: d.db_name().unwrap_or_default().to_string(),
                        master_username: d.master_username().unwrap_or_default().to_string(),
                        master_password: None,
                        skip_final_snapshot: None,
                        apply_immediately: None,
                        restore: None,
                        tags: user_tags(d.tag_list()),
                    },
                    instance_outputs(d),
                ))
            })
            .collect())
    }

    /// By DB instance identifier. The master password cannot be read: the program's is kept.
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        let probe = InstanceOutputs {
            identifier: id.to_string(),
            arn: String::new(),
            address: String::new(),
            port: 0,
            resource_id: String::new(),
        };
        self.read_one(ctx, urn, probe).await
    }

    /// The instance of the program's identifier, if it exists.
    async fn discover(&self, ctx: &Ctx, urn: &Urn, i: &InstanceInputs) -> ProviderResult<Vec<String>> {
        Ok(self.import(ctx, urn, &i.identifier).await?.map(|(_, o)| o.identifier).into_iter().collect())
    }

    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        instance_names_taken(ctx, items).await
    }

    /// The instance this resource created. A restored one counts only once its restore is
    /// finished (this stack's password set, see [`TAG_RESTORE_FINISHED`]): otherwise it reads as
    /// not there, so the create runs again and finishes it.
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &InstanceInputs) -> ProviderResult<Option<InstanceOutputs>> {
        let Some(d) = self.owned(ctx, urn, i).await? else { return Ok(None) };
        if !restore_finished(&tag_pairs(d.tag_list()), i.restore.as_ref()) {
            return Ok(None);
        }
        Ok(Some(instance_outputs(&d)))
    }
}

/// A short key of a restore source (the value of [`TAG_RESTORE_FINISHED`]).
fn restore_key(r: &Restore) -> String {
    crate::model::short_hash(&serde_json::to_string(r).unwrap_or_default())
}

/// Marks a restored instance or cluster done: called once this stack's password is set on it.
async fn mark_restore_finished(ctx: &Ctx, arn: &str, restore: &Restore) -> ProviderResult<()> {
    let tag = Tag::builder().key(TAG_RESTORE_FINISHED).value(restore_key(restore)).build();
    let call = ctx.aws()?.rds.add_tags_to_resource().resource_name(arn).tags(tag);
    call.send().await.map(drop).map_err(|e| call_failed("AddTagsToResource", e))
}

/// Whether what carries `tags` is a finished restore of `restore` (anything not restored is).
fn restore_finished(tags: &Tags, restore: Option<&Restore>) -> bool {
    restore.is_none_or(|r| tags.get(TAG_RESTORE_FINISHED) == Some(&restore_key(r)))
}

/// Every RDS provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![
        subnet_group_provider(),
        instance_provider(),
        cluster::cluster_parameter_group_provider(),
        cluster::cluster_provider(),
        cluster::cluster_instance_provider(),
    ]
}
