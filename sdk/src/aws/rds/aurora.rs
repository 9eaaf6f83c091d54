//! `AuroraPostgres`: an Aurora PostgreSQL cluster — a writer and readers spread over the zones,
//! provisioned or Serverless v2 — private, encrypted at rest and in transit, with a generated
//! master password.

use super::cluster::{
    Acus, CLUSTER, ClusterInputs, ClusterInstanceInputs, ClusterParameterGroupInputs, cluster_instance_provider,
    cluster_parameter_group_provider, cluster_provider,
};
use super::postgres::{Database, POSTGRES_ACCESS, check_database_and_user, valid_identifier};
use super::{Restore, SubnetGroupInputs, subnet_group_provider};
use crate::aws::ec2::private_access::require_two_zones;
use crate::aws::ec2::{Network, PrivateAccess, SecurityGroupRef, Tags};
use crate::model::{Checker, Output, Secret, Stack};
use crate::random::Password;
use std::collections::BTreeMap;
use typed_builder::TypedBuilder;

/// PostgreSQL on Amazon Aurora, in the private subnets of a network: a cluster with a writer and
/// `readers` readers, placed round the network's zones, so that Aurora fails over to a reader in
/// another zone.
///
/// Defaults: Aurora PostgreSQL 16.4 on `db.t4g.medium` (or Serverless v2 with
/// `.serverless_v2(Acus { min, max })`), one reader, storage encrypted at rest (the AWS
/// managed key, or `kms_key`), TLS required (`rds.force_ssl = 1` in its own cluster parameter
/// group), 7 days of backups (point-in-time recovery) in `03:00-04:00`, maintenance in
/// `sun:05:00-sun:06:00`, deletion protection on, a final snapshot on delete, PostgreSQL logs to
/// CloudWatch Logs, changes in the maintenance window (`apply_immediately` opt-in). The instances
/// change one after another. Backtrack is an Aurora MySQL feature: Aurora PostgreSQL has none
/// (point-in-time restore into a new cluster is its way back, `restore`).
///
/// The result is a [`Database`]: `url()` goes to the writer, `reader_url()` to the readers,
/// `allow_cluster`, `reach` and `BackupPlan::protect` work as for `RdsPostgres`.
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
/// let db = AuroraPostgres::builder().name("db").network(&net).readers(2).build().add(&mut s).unwrap();
/// s.export("db_url", db.url());
/// s.export("db_reader_url", db.reader_url().unwrap());
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct AuroraPostgres<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    #[builder(default = "16.4".to_string(), setter(into))]
    engine_version: String,
    /// Provisioned instances' class (none: `db.t4g.medium`); not with `serverless_v2`.
    #[builder(default, setter(strip_option, into))]
    instance_class: Option<String>,
    /// Serverless v2 capacity in ACUs (steps of 0.5): the instances are `db.serverless`.
    #[builder(default, setter(strip_option))]
    serverless_v2: Option<Acus>,
    /// Readers besides the writer (0 to 15), placed round the zones after the writer's.
    #[builder(default = 1)]
    readers: i32,
    /// Days of automated backups (1 to 35; point-in-time recovery within them).
    #[builder(default = 7)]
    backup_retention_days: i32,
    /// `hh24:mi-hh24:mi` (UTC), at least 30 minutes, not overlapping the maintenance window.
    #[builder(default = "03:00-04:00".to_string(), setter(into))]
    backup_window: String,
    /// `ddd:hh24:mi-ddd:hh24:mi` (UTC), at least 30 minutes.
    #[builder(default = "sun:05:00-sun:06:00".to_string(), setter(into))]
    maintenance_window: String,
    #[builder(default = true)]
    deletion_protection: bool,
    #[builder(default = false)]
    skip_final_snapshot: bool,
    /// Apply modifications now instead of in the maintenance window.
    #[builder(default = false)]
    apply_immediately: bool,
    /// Security groups admitted on 5432 (nothing else is).
    #[builder(default)]
    allow_from: Vec<&'a SecurityGroupRef>,
    #[builder(default = "app".to_string(), setter(into))]
    database: String,
    #[builder(default = "fabric_admin".to_string(), setter(into))]
    master_username: String,
    /// Cluster parameters besides `rds.force_ssl = 1` (applied immediately: dynamic ones only).
    #[builder(default)]
    parameters: BTreeMap<String, String>,
    /// Create the cluster from a DB cluster snapshot, or from another cluster at a point in time
    /// (`source` is a cluster identifier). Setting or changing it replaces the cluster.
    #[builder(default, setter(strip_option))]
    restore: Option<Restore>,
    /// A customer managed key for encryption at rest (none: the AWS managed key). Changing it
    /// replaces the cluster.
    #[builder(default, setter(strip_option))]
    kms_key: Option<&'a crate::aws::kms::KmsKeyRef>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// The largest Serverless v2 capacity, in ACUs.
const MAX_ACU: f64 = 256.0;

impl AuroraPostgres<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Database> {
        let name = self.name.clone();
        let identifier = self.identifier(s);
        let major = self.engine_version.split('.').next().unwrap_or_default().to_string();
        let class = self.class();
        self.check(s, &identifier, &major);
        let access = PrivateAccess::add(
            s,
            s.urn(CLUSTER, &name),
            POSTGRES_ACCESS,
            self.network,
            5432,
            &self.allow_from,
            format!("Aurora PostgreSQL {name}: 5432 from named groups only"),
            &self.tags,
        )?;
        let subnet_group = s.declare(
            subnet_group_provider(),
            &name,
            SubnetGroupInputs {
                name: identifier.clone(),
                description: format!("Private subnets of {name}"),
                subnet_ids: PrivateAccess::subnet_ids(self.network),
                tags: self.tags.clone(),
            },
            vec![],
        );
        let mut parameters = self.parameters.clone();
        parameters.insert("rds.force_ssl".into(), "1".into());
        let parameter_group = s.declare(
            cluster_parameter_group_provider(),
            &name,
            ClusterParameterGroupInputs {
                name: format!("{identifier}-pg{major}"),
                family: format!("aurora-postgresql{major}"),
                description: format!("Aurora PostgreSQL {major} cluster {name}: TLS required"),
                parameters,
                tags: self.tags.clone(),
            },
            vec![],
        );
        let password = Password::add(s, &format!("{name}/master-password"), 32);
        let inputs: ClusterInputs<Output<String>, Output<Secret<String>>> = ClusterInputs {
            identifier: identifier.clone(),
            engine: "aurora-postgresql".into(),
            engine_version: self.engine_version.clone(),
            db_subnet_group_name: Output::reference(subnet_group, "name"),
            vpc_security_group_ids: vec![access.security_group().id()],
            parameter_group_name: Output::reference(parameter_group, "name"),
            database_name: self.database.clone(),
            master_username: self.master_username.clone(),
            master_password: Some(password.value()),
            port: 5432,
            storage_encrypted: true,
            kms_key_id: self.kms_key.map(|k| k.arn()),
            backup_retention_days: self.backup_retention_days,
            backup_window: self.backup_window.clone(),
            maintenance_window: self.maintenance_window.clone(),
            deletion_protection: self.deletion_protection,
            serverless_v2: self.serverless_v2,
            log_exports: vec!["postgresql".into()],
            skip_final_snapshot: Some(self.skip_final_snapshot),
            apply_immediately: Some(self.apply_immediately),
            restore: self.restore.clone(),
            tags: self.tags.clone(),
        };
        let cluster = s.declare(cluster_provider(), &name, inputs, vec![]);
        // The writer first, then each reader after the one before: a change of class goes
        // through them one at a time.
        let zones = self.network.private_subnets();
        let mut previous = cluster.clone();
        for n in 0..=self.readers.max(0) as usize {
            let zone = (!zones.is_empty()).then(|| zones[n % zones.len()].zone());
            let instance = ClusterInstanceInputs {
                identifier: format!("{identifier}-{}", n + 1),
                cluster_identifier: identifier.clone(),
                engine: "aurora-postgresql".into(),
                engine_version: Some(self.engine_version.clone()),
                instance_class: class.clone(),
                availability_zone: zone,
                promotion_tier: if n == 0 { 0 } else { 1 },
                tags: self.tags.clone(),
            };
            let urn = s.declare(cluster_instance_provider(), &format!("{name}/{}", n + 1), instance, vec![previous]);
            previous = urn;
        }
        Ok(Database::of_cluster(cluster, password, access, self.master_username, self.database))
    }

    fn class(&self) -> String {
        match (&self.serverless_v2, &self.instance_class) {
            (Some(_), _) => "db.serverless".into(),
            (None, Some(c)) => c.clone(),
            (None, None) => "db.t4g.medium".into(),
        }
    }

    /// `<stack>-<name>-<hash>`, at most 60 characters (its instances add `-<n>`); the hash is
    /// over what forces a replacement, so a replacement gets a new identifier and is made before
    /// the old cluster goes.
    fn identifier(&self, s: &Stack) -> String {
        let base = format!("{}-{}", s.name(), self.name).to_ascii_lowercase().replace(['/', '_', '.'], "-");
        let restore = self.restore.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default()).unwrap_or_default();
        let key = self.kms_key.map(|k| k.urn().to_string()).unwrap_or_default();
        crate::aws::physical_name(&base, 60, &[&self.database, &self.master_username, &restore, &key])
    }

    fn check(&self, s: &mut Stack, identifier: &str, major: &str) {
        let mut c = Checker::new(s.urn(CLUSTER, &self.name));
        c.require(
            valid_identifier(identifier),
            "name",
            format!("`{identifier}` (stack-name-hash) is not a valid Aurora cluster identifier"),
            "use letters, digits and single hyphens, starting with a letter",
        );
        c.require(
            major.parse::<u32>().is_ok_and(|m| m >= 13) && self.engine_version.split('.').count() == 2,
            "engine_version",
            format!("Aurora PostgreSQL `{}` is not a version fabric runs", self.engine_version),
            "give a major.minor version from 13 on, such as `16.4`",
        );
        match (&self.serverless_v2, &self.instance_class) {
            (Some(_), Some(class)) => c.error(
                "instance_class",
                format!("`{class}` is given with `serverless_v2`, whose instances are `db.serverless`"),
                "give one of `instance_class` (provisioned) or `serverless_v2` (capacity in ACUs)",
            ),
            (None, Some(class)) => c.require(
                class.starts_with("db.") && class.split('.').count() == 3 && class != "db.serverless",
                "instance_class",
                format!("`{class}` is not a provisioned RDS instance class"),
                "use a class such as `db.t4g.medium` or `db.r7g.large`, or `serverless_v2` for Serverless v2",
            ),
            _ => {}
        }
        if let Some(Acus { min, max }) = self.serverless_v2 {
            let half_steps = |v: f64| (v * 2.0).fract() == 0.0;
            c.require(
                min <= max,
                "serverless_v2",
                format!("the capacity range {min}..{max} ACUs has its minimum above its maximum"),
                "give a minimum at most the maximum, such as `Acus { min: 0.5, max: 8.0 }`",
            );
            c.require(
                (0.0..=MAX_ACU).contains(&min) && (1.0..=MAX_ACU).contains(&max) && half_steps(min) && half_steps(max),
                "serverless_v2",
                format!("{min}..{max} ACUs is outside what Aurora Serverless v2 offers"),
                format!("give capacities in steps of 0.5 ACU, the minimum from 0, the maximum from 1 to {MAX_ACU}"),
            );
        }
        c.within(
            "readers",
            self.readers,
            0..=15,
            "{} readers; an Aurora cluster has 0 to 15",
            "give 0 to 15 readers (1, the default, puts a reader in a second zone)",
        );
        c.within(
            "backup_retention_days",
            self.backup_retention_days,
            1..=35,
            "{} days of backups; Aurora keeps 1 to 35",
            "keep at least 1 day (7 is the default)",
        );
        crate::aws::windows::check(
            &mut c,
            ("maintenance_window", &self.maintenance_window),
            ("backup_window", &self.backup_window),
            30,
        );
        require_two_zones(&mut c, self.network, "an Aurora cluster");
        check_database_and_user(&mut c, &self.database, &self.master_username);
        if let Some(restore) = &self.restore {
            super::postgres::check_restore(&mut c, restore, "cluster");
        }
        s.report(c.into_errors());
    }
}
