//! `BackupPlan`: AWS Backup for the resources a program names — a vault, a role for AWS Backup
//! with the AWS managed policies, a plan of daily (and optionally weekly) rules, and a selection.

use crate::aws::Tags;
use crate::aws::backup::{self, PlanInputs, RuleSpec, SelectionInputs, VaultInputs};
use crate::aws::iam::{PolicyDocument, Role, RolePolicyAttachment, aws_managed_policy};
use crate::aws::rds::Database;
use crate::model::{Checker, Output, Stack, Urn};
use typed_builder::TypedBuilder;

/// Something AWS Backup can protect.
pub trait Protectable {
    /// The ARN AWS Backup selects it by.
    fn backup_arn(&self) -> Output<String>;
    /// The AWS managed policies (their paths: `service-role/…` or at the root) the plan's role
    /// needs for it besides the general backup and restore ones.
    fn backup_policies(&self) -> &'static [&'static str] {
        &[]
    }
    /// Why AWS Backup cannot protect it as declared, and the fix.
    fn backup_refusal(&self) -> Option<(String, String)> {
        None
    }
}

/// An S3 bucket: AWS Backup's S3 policies on the role; versioning required.
impl Protectable for crate::aws::s3::BucketRef {
    fn backup_arn(&self) -> Output<String> {
        self.arn()
    }
    fn backup_policies(&self) -> &'static [&'static str] {
        &["AWSBackupServiceRolePolicyForS3Backup", "AWSBackupServiceRolePolicyForS3Restore"]
    }
    fn backup_refusal(&self) -> Option<(String, String)> {
        (!self.versioned()).then(|| {
            (
                format!(
                    "bucket `{}` is not versioned, and AWS Backup backs up only versioned buckets",
                    self.urn().name()
                ),
                "keep the bucket's versioning on (the default)".to_string(),
            )
        })
    }
}

impl Protectable for Database {
    fn backup_arn(&self) -> Output<String> {
        self.arn()
    }
}

/// What the plan protects: its ARN, the extra policies its role needs, and a refusal.
type Protected = (Output<String>, &'static [&'static str], Option<(String, String)>);

/// A weekly rule: day (`SUN` … `SAT`), UTC time, retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weekly {
    pub day: &'static str,
    pub at: String,
    pub keep_days: i64,
}

/// Backups of the resources it protects.
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
/// let db = RdsPostgres::builder().name("db").network(&net).build().add(&mut s).unwrap();
/// BackupPlan::builder().name("daily").daily_at("05:00").keep_days(35).protect(&db).build().add(&mut s).unwrap();
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone)]
pub struct BackupPlan {
    #[builder(setter(into))]
    name: String,
    /// UTC, `HH:MM`.
    #[builder(default = "05:00".to_string(), setter(into))]
    daily_at: String,
    #[builder(default = 35)]
    keep_days: i64,
    #[builder(default, setter(strip_option))]
    weekly: Option<Weekly>,
    /// Move recovery points to cold storage after this many days (retention must then be at
    /// least 90 days longer).
    #[builder(default, setter(strip_option))]
    cold_after_days: Option<i64>,
    /// Copy every recovery point to this vault (another region, for disaster recovery).
    #[builder(default, setter(strip_option, into))]
    copy_to_vault_arn: Option<String>,
    #[builder(default, setter(transform = |p: &dyn Protectable| vec![(p.backup_arn(), p.backup_policies(), p.backup_refusal())]))]
    protect: Vec<Protected>,
    /// Resources tagged `key=value` are protected too.
    #[builder(default, setter(transform = |k: &str, v: &str| Some((k.to_string(), v.to_string()))))]
    by_tag: Option<(String, String)>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared backup plan.
#[derive(Clone, Debug)]
pub struct BackupPlanRef {
    pub plan: Urn,
    pub vault: Urn,
    pub selection: Urn,
}

/// `cron(M H ? * DAY *)` or `cron(M H * * ? *)` from `HH:MM`.
fn cron(at: &str, day: Option<&str>) -> Option<String> {
    let (h, m) = at.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    Some(match day {
        Some(d) => format!("cron({m} {h} ? * {d} *)"),
        None => format!("cron({m} {h} * * ? *)"),
    })
}

impl BackupPlan {
    pub fn add(self, s: &mut Stack) -> crate::Result<BackupPlanRef> {
        let name = self.name.clone();
        let mut c = Checker::new(s.urn(backup::PLAN, &name));
        let daily = cron(&self.daily_at, None);
        c.require(
            daily.is_some(),
            "daily_at",
            format!("`{}` is not a UTC time of day", self.daily_at),
            "write it as `HH:MM`, such as `05:00`",
        );
        c.within(
            "keep_days",
            self.keep_days,
            1..=36500,
            "{} days of retention",
            "keep recovery points 1 to 36500 days",
        );
        if let Some(cold) = self.cold_after_days {
            c.require(
                self.keep_days >= cold + 90,
                "cold_after_days",
                format!("cold storage after {cold} days needs at least {} days of retention (AWS keeps cold points 90 days)", cold + 90),
                "raise `keep_days` or move to cold storage later",
            );
        }
        let weekly = self.weekly.as_ref().map(|w| (w, cron(&w.at, Some(w.day))));
        if let Some((w, cron)) = &weekly {
            c.require(
                cron.is_some() && ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"].contains(&w.day),
                "weekly",
                format!("`{} {}` is not a weekly time", w.day, w.at),
                "give a day `SUN`…`SAT` and a UTC time `HH:MM`",
            );
            c.within("weekly", w.keep_days, 1..=36500, "{} days of weekly retention", "keep 1 to 36500 days");
        }
        if let Some(arn) = &self.copy_to_vault_arn {
            c.require(
                arn.starts_with("arn:aws") && arn.contains(":backup:") && arn.contains(":backup-vault:"),
                "copy_to_vault_arn",
                format!("`{arn}` is not a backup vault ARN"),
                "give `arn:aws:backup:<region>:<account>:backup-vault:<name>`",
            );
        }
        c.require(
            !self.protect.is_empty() || self.by_tag.is_some(),
            "protect",
            "the plan protects nothing",
            "name what it protects with `.protect(&db)` or `.by_tag(\"backup\", \"daily\")`",
        );
        for (problem, fix) in self.protect.iter().filter_map(|(.., refusal)| refusal.clone()) {
            c.error("protect", problem, fix);
        }
        s.report(c.into_errors());

        let stack = s.name().to_string();
        let vault_name = format!("{stack}-{name}").replace('/', "-");
        let vault = s.declare(
            backup::vault_provider(),
            &name,
            VaultInputs { name: vault_name, kms_key_arn: None, tags: self.tags.clone() },
            vec![],
        );
        let role = Role::builder()
            .name(format!("backup-{name}"))
            .trust(PolicyDocument::trust_services(&["backup.amazonaws.com"]))
            .description(format!("AWS Backup for plan {name}"))
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        let mut attachments = Vec::new();
        let mut policies = vec![
            "service-role/AWSBackupServiceRolePolicyForBackup",
            "service-role/AWSBackupServiceRolePolicyForRestores",
        ];
        for extra in self.protect.iter().flat_map(|(_, extra, _)| extra.iter()) {
            if !policies.contains(extra) {
                policies.push(extra);
            }
        }
        for policy in policies {
            let short = policy.rsplit('/').next().unwrap_or(policy);
            attachments.push(
                RolePolicyAttachment::builder()
                    .name(format!("backup-{name}/{short}"))
                    .role(&role)
                    .policy_arn(aws_managed_policy(policy))
                    .build()
                    .add(s)?,
            );
        }
        let mut rules = vec![RuleSpec {
            name: "daily".into(),
            schedule: daily.unwrap_or_default(),
            delete_after_days: self.keep_days,
            cold_after_days: self.cold_after_days,
            copy_to_vault_arn: self.copy_to_vault_arn.clone(),
            start_window_minutes: 60,
            completion_window_minutes: 360,
            continuous: false,
        }];
        if let Some((w, cron)) = weekly {
            rules.push(RuleSpec {
                name: "weekly".into(),
                schedule: cron.unwrap_or_default(),
                delete_after_days: w.keep_days,
                cold_after_days: None,
                copy_to_vault_arn: self.copy_to_vault_arn.clone(),
                start_window_minutes: 60,
                completion_window_minutes: 720,
                continuous: false,
            });
        }
        let plan_inputs = PlanInputs {
            name: format!("{stack}-{name}"),
            vault_name: Output::<String>::reference(vault.clone(), "name"),
            rules,
            tags: self.tags.clone(),
        };
        let plan = s.declare(backup::plan_provider(), &name, plan_inputs, vec![]);
        let selection_inputs = SelectionInputs {
            name: format!("{stack}-{name}"),
            plan_id: Output::<String>::reference(plan.clone(), "id"),
            role_arn: role.arn(),
            resources: self.protect.iter().map(|(arn, ..)| arn.clone()).collect(),
            tags: self.by_tag.iter().cloned().collect(),
        };
        // The role must hold its policies before AWS Backup assumes it.
        let selection = s.declare(backup::selection_provider(), &name, selection_inputs, attachments);
        Ok(BackupPlanRef { plan, vault, selection })
    }
}

#[cfg(test)]
mod tests {
    use super::cron;

    #[test]
    fn schedules_are_utc_cron_expressions() {
        assert_eq!(cron("05:00", None).unwrap(), "cron(0 5 * * ? *)");
        assert_eq!(cron("23:45", Some("SUN")).unwrap(), "cron(45 23 ? * SUN *)");
        assert!(cron("24:00", None).is_none());
        assert!(cron("5am", None).is_none());
    }
}
