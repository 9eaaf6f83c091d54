//! AWS Backup: vaults, plans (rules with schedule, retention, cold storage, cross-region copy) and
//! selections (what a plan protects, by ARN or by tag).

use super::{call_failed, error_code};
use crate::aws::AwsCtx;
use crate::aws::found;
use crate::aws::gap::{Lacking, MaybeLacking, OrGap};
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderError, ProviderResult, Reads, TypedProvider, Update, read_each, typed,
};
use crate::model::Urn;
use async_trait::async_trait;
use aws_sdk_backup::types::{
    BackupPlanInput, BackupRuleInput, BackupSelection, Condition, ConditionType, CopyAction, Lifecycle,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use crate::aws::Tags;

mod backup_plan;
pub use backup_plan::{BackupPlan, BackupPlanRef, Protectable, Weekly};

/// What a stack program needs of AWS Backup in scope (part of [`crate::prelude`]).
pub mod prelude {
    pub use super::{BackupPlan, Protectable, Weekly};
}

pub const VAULT: &str = "aws:backup:Vault";
pub const PLAN: &str = "aws:backup:Plan";
pub const SELECTION: &str = "aws:backup:Selection";

fn request_id(urn: &Urn, salt: &str) -> String {
    let h = crate::model::stable_hash(&format!("{urn}/{salt}"));
    format!("fabric-{h:016x}")
}

fn all_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> HashMap<String, String> {
    super::with_fabric_tags(ctx, urn, tags).into_iter().collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaultInputs {
    pub name: String,
    /// `None`: the AWS managed key of AWS Backup. (Reads leave key and tags out: they keep
    /// their recorded values.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaultOutputs {
    pub name: String,
    pub arn: String,
}

pub fn vault_provider() -> Arc<dyn Provider> {
    typed(VaultProvider)
}

pub struct VaultProvider;

impl VaultProvider {
    /// The vault's tags.
    async fn tags(&self, ctx: &Ctx, arn: &str) -> ProviderResult<Tags> {
        let out =
            ctx.aws()?.backup.list_tags().resource_arn(arn).send().await.map_err(|e| call_failed("ListTags", e))?;
        Ok(out.tags().cloned().unwrap_or_default().into_iter().collect())
    }

    /// The vault named `name`, if it is `urn`'s; an error if it exists and is not.
    async fn get_owned(&self, ctx: &Ctx, urn: &Urn, name: &str) -> ProviderResult<Option<VaultOutputs>> {
        let Some(v) = self.get(ctx, name).await? else { return Ok(None) };
        let tags = self.tags(ctx, &v.arn).await?;
        super::require_ours(ctx, urn, &format!("backup vault {name}"), &tags)?;
        Ok(Some(v))
    }

    async fn get(&self, ctx: &Ctx, name: &str) -> ProviderResult<Option<VaultOutputs>> {
        Ok(found(
            "DescribeBackupVault",
            |c| c == Some("ResourceNotFoundException"),
            ctx.aws()?.backup.describe_backup_vault().backup_vault_name(name).send().await,
        )?
        .map(|v| VaultOutputs {
            name: v.backup_vault_name().unwrap_or(name).to_string(),
            arn: v.backup_vault_arn().unwrap_or_default().to_string(),
        }))
    }
}

#[async_trait]
impl TypedProvider for VaultProvider {
    resource_type!(VAULT, VaultInputs => VaultOutputs,
        replace_on &["name", "kms_key_arn"], import Import::Never("not implemented yet"));
    /// Plans and restores refer to a vault by its name: a new key means the old vault goes first
    /// (AWS refuses while it holds recovery points, so no backup is lost by surprise).
    const DELETE_BEFORE_REPLACE: bool = true;

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &VaultInputs) -> ProviderResult<VaultOutputs> {
        // Looked up first: the local emulator does not refuse a vault name that is taken, and a
        // vault of this name that is someone else's is refused before any write.
        if let Some(v) = self.get_owned(ctx, urn, &i.name).await? {
            return Ok(v);
        }
        // The creator request id makes a retried create idempotent.
        let out = ctx
            .aws()?
            .backup
            .create_backup_vault()
            .backup_vault_name(&i.name)
            .set_encryption_key_arn(i.kms_key_arn.clone())
            .set_backup_vault_tags(Some(all_tags(ctx, urn, &i.tags)))
            .creator_request_id(request_id(urn, &i.name))
            .send()
            .await;
        match out {
            Ok(o) => {
                Ok(VaultOutputs { name: i.name.clone(), arn: o.backup_vault_arn().unwrap_or_default().to_string() })
            }
            // Ours only if tagged for this resource (an earlier attempt whose answer was lost).
            Err(e) if error_code(&e) == Some("AlreadyExistsException") => self
                .get_owned(ctx, urn, &i.name)
                .await?
                .ok_or_else(|| ProviderError(format!("backup vault {} exists but cannot be read", i.name))),
            Err(e) => Err(call_failed("CreateBackupVault", e)),
        }
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<VaultOutputs> {
        let Update { old, outputs: out, new } = change;
        let backup = &ctx.aws()?.backup;
        let arn = out.arn.as_str();
        let remove = |keys| async move {
            let call = backup.untag_resource().resource_arn(arn).set_tag_key_list(Some(keys));
            call.send().await.map(drop).map_err(|e| call_failed("UntagResource", e))
        };
        let set = |pairs: Vec<(String, String)>| async move {
            let call = backup.tag_resource().resource_arn(arn).set_tags(Some(pairs.into_iter().collect()));
            call.send().await.map(drop).map_err(|e| call_failed("TagResource", e))
        };
        super::TagChanges::sync(&old.tags, &new.tags, remove, set).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &VaultInputs, out: &VaultOutputs) -> ProviderResult<()> {
        match ctx.aws()?.backup.delete_backup_vault().backup_vault_name(&out.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) if error_code(&e) == Some("InvalidRequestException") => Err(ProviderError(format!(
                "backup vault {} still holds recovery points; they are your backups — delete them deliberately (or keep the vault), then destroy again",
                out.name
            ))),
            Err(e) => Err(call_failed("DeleteBackupVault", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, VaultOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let found = self.get(ctx, &o.name).await?;
            Ok(found.map(|v| (VaultInputs { name: v.name.clone(), kms_key_arn: None, tags: Tags::new() }, v)))
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &VaultInputs) -> ProviderResult<Option<VaultOutputs>> {
        let Some(v) = self.get(ctx, &i.name).await? else { return Ok(None) };
        Ok(super::tagged_for(&self.tags(ctx, &v.arn).await?, urn).then_some(v))
    }

    /// One `ListBackupVaults` listing; the tags of the vaults the program's names meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = BTreeMap::new();
        let mut pages = ctx.aws()?.backup.list_backup_vaults().into_paginator().send();
        while let Some(page) = pages.next().await {
            for v in page.map_err(|e| call_failed("ListBackupVaults", e))?.backup_vault_list() {
                if let (Some(name), Some(arn)) = (v.backup_vault_name(), v.backup_vault_arn()) {
                    existing.insert(name.to_string(), arn.to_string());
                }
            }
        }
        super::names_held(ctx, items, "name", &existing, |arn| async move { self.tags(ctx, &arn).await }).await
    }
}

/// One rule of a backup plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub name: String,
    /// `cron(0 5 * * ? *)`, in UTC.
    pub schedule: String,
    pub delete_after_days: i64,
    pub cold_after_days: Option<i64>,
    /// A vault ARN in another region (or account) to copy each recovery point to.
    pub copy_to_vault_arn: Option<String>,
    pub start_window_minutes: i64,
    pub completion_window_minutes: i64,
    /// Continuous backups (point-in-time restore) where the resource supports them.
    pub continuous: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanInputs<R = String> {
    pub name: String,
    pub vault_name: R,
    pub rules: Vec<RuleSpec>,
    /// Left out of reads: keeps its recorded value.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanOutputs {
    pub id: String,
    pub arn: String,
}

/// The plan as the Backup API takes it.
pub fn plan_input(i: &PlanInputs) -> ProviderResult<BackupPlanInput> {
    let mut rules = Vec::with_capacity(i.rules.len());
    for r in &i.rules {
        let lifecycle = Lifecycle::builder()
            .delete_after_days(r.delete_after_days)
            .set_move_to_cold_storage_after_days(r.cold_after_days)
            .build();
        let copies = r
            .copy_to_vault_arn
            .iter()
            .map(|arn| {
                CopyAction::builder()
                    .destination_backup_vault_arn(arn)
                    .lifecycle(Lifecycle::builder().delete_after_days(r.delete_after_days).build())
                    .build()
                    .map_err(|e| ProviderError(e.to_string()))
            })
            .collect::<ProviderResult<Vec<_>>>()?;
        rules.push(
            BackupRuleInput::builder()
                .rule_name(&r.name)
                .target_backup_vault_name(&i.vault_name)
                .schedule_expression(&r.schedule)
                .schedule_expression_timezone("Etc/UTC")
                .start_window_minutes(r.start_window_minutes)
                .completion_window_minutes(r.completion_window_minutes)
                .enable_continuous_backup(r.continuous)
                .lifecycle(lifecycle)
                .set_copy_actions((!copies.is_empty()).then_some(copies))
                .build()
                .map_err(|e| ProviderError(e.to_string()))?,
        );
    }
    BackupPlanInput::builder()
        .backup_plan_name(&i.name)
        .set_rules(Some(rules))
        .build()
        .map_err(|e| ProviderError(e.to_string()))
}

pub fn plan_provider() -> Arc<dyn Provider> {
    typed(PlanProvider)
}

pub struct PlanProvider;

impl PlanProvider {
    /// The plans called `name` (AWS refuses a second one; the emulator does not), with their
    /// tags: one listing.
    async fn named(&self, ctx: &Ctx, name: &str) -> ProviderResult<Vec<(PlanOutputs, Tags)>> {
        let mut found = Vec::new();
        let mut pages = ctx.aws()?.backup.list_backup_plans().into_paginator().send();
        while let Some(page) = pages.next().await {
            for p in page.map_err(|e| call_failed("ListBackupPlans", e))?.backup_plans_list() {
                if p.backup_plan_name() == Some(name) {
                    let arn = p.backup_plan_arn().unwrap_or_default().to_string();
                    let tags = VaultProvider.tags(ctx, &arn).await?;
                    found.push((PlanOutputs { id: p.backup_plan_id().unwrap_or_default().to_string(), arn }, tags));
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl TypedProvider for PlanProvider {
    resource_type!(PLAN, PlanInputs => PlanOutputs, replace_on &["name"], import Import::Never("not implemented yet"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &PlanInputs) -> ProviderResult<PlanOutputs> {
        // Looked up first (one listing): a plan of this name that is ours is an earlier attempt;
        // anyone else's is refused before any write (the local emulator would make a second one).
        let named = self.named(ctx, &i.name).await?;
        if let Some((found, _)) = named.iter().find(|(_, tags)| super::tagged_for(tags, urn)) {
            return Ok(found.clone());
        }
        if let Some((_, tags)) = named.first() {
            return Err(super::not_ours(ctx, urn, &format!("backup plan {}", i.name), tags));
        }
        let out = ctx
            .aws()?
            .backup
            .create_backup_plan()
            .backup_plan(plan_input(i)?)
            .set_backup_plan_tags(Some(all_tags(ctx, urn, &i.tags)))
            .creator_request_id(request_id(urn, &i.name))
            .send()
            .await
            .map_err(|e| call_failed("CreateBackupPlan", e))?;
        Ok(PlanOutputs {
            id: out.backup_plan_id().unwrap_or_default().to_string(),
            arn: out.backup_plan_arn().unwrap_or_default().to_string(),
        })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<PlanOutputs> {
        let Update { old, outputs: out, new } = change;
        if old.rules != new.rules || old.vault_name != new.vault_name {
            ctx.aws()?
                .backup
                .update_backup_plan()
                .backup_plan_id(&out.id)
                .backup_plan(plan_input(new)?)
                .send()
                .await
                .map_err(|e| call_failed("UpdateBackupPlan", e))?;
        }
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &PlanInputs, out: &PlanOutputs) -> ProviderResult<()> {
        match ctx.aws()?.backup.delete_backup_plan().backup_plan_id(&out.id).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(call_failed("DeleteBackupPlan", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, PlanOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            match ctx.aws()?.backup.get_backup_plan().backup_plan_id(&o.id).send().await {
                Ok(p) => {
                    let Some(plan) = p.backup_plan() else { return Ok(None) };
                    let rules: Vec<RuleSpec> = plan
                        .rules()
                        .iter()
                        .map(|r| RuleSpec {
                            name: r.rule_name().to_string(),
                            schedule: r.schedule_expression().unwrap_or_default().to_string(),
                            delete_after_days: r.lifecycle().and_then(|l| l.delete_after_days()).unwrap_or_default(),
                            cold_after_days: r.lifecycle().and_then(|l| l.move_to_cold_storage_after_days()),
                            copy_to_vault_arn: r
                                .copy_actions()
                                .first()
                                .map(|c| c.destination_backup_vault_arn().to_string()),
                            start_window_minutes: r.start_window_minutes().unwrap_or_default(),
                            completion_window_minutes: r.completion_window_minutes().unwrap_or_default(),
                            continuous: r.enable_continuous_backup().unwrap_or(false),
                        })
                        .collect();
                    let vault =
                        plan.rules().first().map(|r| r.target_backup_vault_name().to_string()).unwrap_or_default();
                    Ok(Some((
                        PlanInputs {
                            name: plan.backup_plan_name().to_string(),
                            vault_name: vault,
                            rules,
                            tags: Tags::new(),
                        },
                        o.clone(),
                    )))
                }
                Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
                Err(e) => Err(call_failed("GetBackupPlan", e)),
            }
        })
        .await
    }

    /// A plan of that name that is tagged for `urn` (a plan of that name that is not ours is left
    /// alone).
    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &PlanInputs) -> ProviderResult<Option<PlanOutputs>> {
        let named = self.named(ctx, &i.name).await?;
        Ok(named.into_iter().find(|(_, tags)| super::tagged_for(tags, urn)).map(|(p, _)| p))
    }

    /// One `ListBackupPlans` listing; the tags of the plans the program's names meet.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = BTreeMap::new();
        let mut pages = ctx.aws()?.backup.list_backup_plans().into_paginator().send();
        while let Some(page) = pages.next().await {
            for p in page.map_err(|e| call_failed("ListBackupPlans", e))?.backup_plans_list() {
                if let (Some(name), Some(arn)) = (p.backup_plan_name(), p.backup_plan_arn()) {
                    existing.insert(name.to_string(), arn.to_string());
                }
            }
        }
        super::names_held(ctx, items, "name", &existing, |arn| async move { VaultProvider.tags(ctx, &arn).await }).await
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectionInputs<R = String> {
    pub name: String,
    pub plan_id: R,
    pub role_arn: R,
    pub resources: Vec<R>,
    /// (key, value): resources tagged so are protected too.
    pub tags: Vec<(String, String)>,
}

/// What AWS Backup made: the selection's id in its plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectionMade {
    pub id: String,
    pub plan_id: String,
}

/// The local emulator lacks CreateBackupSelection: there, a selection is a record (see [`OrGap`]).
pub type SelectionOutputs = OrGap<SelectionInputs, SelectionMade>;

/// The selection as the Backup API takes it.
pub fn selection_input(i: &SelectionInputs) -> ProviderResult<BackupSelection> {
    let mut b = BackupSelection::builder()
        .selection_name(&i.name)
        .iam_role_arn(&i.role_arn)
        .set_resources(Some(i.resources.clone()));
    for (k, v) in &i.tags {
        b = b.list_of_tags(
            Condition::builder()
                .condition_type(ConditionType::Stringequals)
                .condition_key(k)
                .condition_value(v)
                .build()
                .map_err(|e| ProviderError(e.to_string()))?,
        );
    }
    b.build().map_err(|e| ProviderError(e.to_string()))
}

pub fn selection_provider() -> Arc<dyn Provider> {
    typed(Lacking(SelectionProvider))
}

pub struct SelectionProvider;

#[async_trait]
impl MaybeLacking for SelectionProvider {
    // Selections cannot be modified: any change is a new selection.
    resource_type!(SELECTION, SelectionInputs => SelectionMade,
        replace_on &["name", "plan_id", "role_arn", "resources", "tags"], import Import::Never("not implemented yet"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &SelectionInputs) -> ProviderResult<Result<SelectionMade, String>> {
        let aws = ctx.aws()?;
        let out = aws
            .backup
            .create_backup_selection()
            .backup_plan_id(&i.plan_id)
            .backup_selection(selection_input(i)?)
            .creator_request_id(request_id(urn, &format!("{}/{}", i.name, i.plan_id)))
            .send()
            .await;
        match out {
            Ok(out) => Ok(Ok(SelectionMade {
                id: out.selection_id().unwrap_or_default().to_string(),
                plan_id: i.plan_id.clone(),
            })),
            Err(e) if crate::aws::is_emulator_gap(aws, &e) => {
                Ok(Err("the emulator does not implement CreateBackupSelection (HTTP 500)".into()))
            }
            Err(e) => Err(call_failed("CreateBackupSelection", e)),
        }
    }

    fn stand_in(i: &SelectionInputs) -> SelectionMade {
        SelectionMade { id: String::new(), plan_id: i.plan_id.clone() }
    }

    async fn delete(&self, ctx: &Ctx, out: &SelectionMade) -> ProviderResult<()> {
        let backup = &ctx.aws()?.backup;
        let call = backup.delete_backup_selection().backup_plan_id(&out.plan_id).selection_id(&out.id);
        found("DeleteBackupSelection", |c| c == Some("ResourceNotFoundException"), call.send().await).map(drop)
    }

    async fn read(&self, ctx: &Ctx, o: &SelectionMade) -> ProviderResult<Option<SelectionInputs>> {
        let backup = &ctx.aws()?.backup;
        let call = backup.get_backup_selection().backup_plan_id(&o.plan_id).selection_id(&o.id);
        let got = found("GetBackupSelection", |c| c == Some("ResourceNotFoundException"), call.send().await)?;
        Ok(got.and_then(|s| s.backup_selection).map(|sel| SelectionInputs {
            name: sel.selection_name().to_string(),
            plan_id: o.plan_id.clone(),
            role_arn: sel.iam_role_arn().to_string(),
            resources: sel.resources().to_vec(),
            tags: sel
                .list_of_tags()
                .iter()
                .map(|c| (c.condition_key().to_string(), c.condition_value().to_string()))
                .collect(),
        }))
    }

    /// CreateBackupSelection carries a creator request id, so creating again after a lost answer
    /// cannot make a second selection: a failed lookup is no reason to stop.
    async fn find(&self, ctx: &Ctx, _: &Urn, i: &SelectionInputs) -> ProviderResult<Option<SelectionMade>> {
        let list = match ctx.aws()?.backup.list_backup_selections().backup_plan_id(&i.plan_id).send().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(
                    "ListBackupSelections failed; the create will be retried with its request id: {}",
                    call_failed("ListBackupSelections", e)
                );
                return Ok(None);
            }
        };
        Ok(list
            .backup_selections_list()
            .iter()
            .find(|s| s.selection_name() == Some(i.name.as_str()))
            .and_then(|s| s.selection_id())
            .map(|id| SelectionMade { id: id.to_string(), plan_id: i.plan_id.clone() }))
    }
}

/// Every AWS Backup provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![vault_provider(), plan_provider(), selection_provider()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_request_names_role_resources_and_tags() {
        let i = SelectionInputs {
            name: "db".into(),
            plan_id: "plan-1".into(),
            role_arn: "arn:aws:iam::123456789012:role/backup".into(),
            resources: vec!["arn:aws:rds:us-east-2:123456789012:db:acme-db".into()],
            tags: vec![("backup".into(), "daily".into())],
        };
        let sel = selection_input(&i).unwrap();
        assert_eq!(sel.selection_name(), "db");
        assert_eq!(sel.iam_role_arn(), "arn:aws:iam::123456789012:role/backup");
        assert_eq!(sel.resources(), ["arn:aws:rds:us-east-2:123456789012:db:acme-db"]);
        let c = &sel.list_of_tags()[0];
        assert_eq!(
            (c.condition_type(), c.condition_key(), c.condition_value()),
            (&ConditionType::Stringequals, "backup", "daily")
        );
    }

    #[test]
    fn the_plan_request_carries_schedule_lifecycle_and_copy() {
        let i = PlanInputs {
            name: "daily".into(),
            vault_name: "acme-daily".into(),
            rules: vec![RuleSpec {
                name: "daily".into(),
                schedule: "cron(0 5 * * ? *)".into(),
                delete_after_days: 120,
                cold_after_days: Some(30),
                copy_to_vault_arn: Some("arn:aws:backup:us-west-2:123456789012:backup-vault:dr".into()),
                start_window_minutes: 60,
                completion_window_minutes: 360,
                continuous: true,
            }],
            tags: Tags::new(),
        };
        let p = plan_input(&i).unwrap();
        let r = &p.rules()[0];
        assert_eq!((r.schedule_expression(), r.target_backup_vault_name()), (Some("cron(0 5 * * ? *)"), "acme-daily"));
        let l = r.lifecycle().unwrap();
        assert_eq!((l.delete_after_days(), l.move_to_cold_storage_after_days()), (Some(120), Some(30)));
        assert_eq!(
            r.copy_actions()[0].destination_backup_vault_arn(),
            "arn:aws:backup:us-west-2:123456789012:backup-vault:dr"
        );
        assert_eq!(r.enable_continuous_backup(), Some(true));
    }
}
