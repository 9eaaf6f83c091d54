//! `RdsPostgres`: a private, encrypted, Multi-AZ PostgreSQL with a generated master password.

use crate::aws::ec2::private_access::require_two_zones;
use crate::aws::ec2::{AccessNames, Network, PrivateAccess, PrivateService, SecurityGroupRef, Tags};
use crate::aws::rds::{self, InstanceInputs, SubnetGroupInputs};
use crate::model::{Checker, Output, Secret, Stack, Urn};
use crate::random::Password;
use typed_builder::TypedBuilder;

/// PostgreSQL on Amazon RDS, in the private subnets of a network.
///
/// Defaults: Multi-AZ, gp3 storage encrypted at rest with autoscaling up to 100 GiB, 7 days of
/// backups (point-in-time recovery), deletion protection on, a final snapshot on delete, never
/// publicly accessible, changes applied in the maintenance window. The master password is
/// generated once and kept encrypted in state; `url()` is a `Secret`.
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
/// let db = RdsPostgres::builder().name("db").network(&net).build().add(&mut s).unwrap();
/// s.export("db_url", db.url());
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct RdsPostgres<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    #[builder(default = "16.4".to_string(), setter(into))]
    engine_version: String,
    #[builder(default = "db.t4g.medium".to_string(), setter(into))]
    instance_class: String,
    /// GiB of gp3 storage to start with (20 to 65536).
    #[builder(default = 20)]
    storage_gb: i32,
    /// Storage autoscaling ceiling, GiB.
    #[builder(default = 100)]
    max_storage_gb: i32,
    #[builder(default = true)]
    multi_az: bool,
    /// Days of automated backups (1 to 35; point-in-time recovery within them).
    #[builder(default = 7)]
    backup_retention_days: i32,
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
    /// Create the instance from a snapshot or a point in time instead of empty (disaster recovery:
    /// `docs/disaster-recovery.md`). Setting or changing it replaces the instance: the restored
    /// one gets a new identifier and endpoint, `url()` follows, and the old instance is deleted
    /// after it (with deletion protection on, only once `deletion_protection(false)` is deployed).
    #[builder(default, setter(strip_option))]
    restore: Option<crate::aws::rds::Restore>,
    /// Make the database reachable from the internet. Refused unless a named waiver is given.
    #[builder(default, setter(strip_option, into))]
    public_waiver: Option<String>,
    #[builder(default = false)]
    publicly_accessible: bool,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared database.
#[derive(Clone, Debug)]
pub struct Database {
    /// The instance (`RdsPostgres`) or the cluster (`AuroraPostgres`).
    instance: Urn,
    password: Password,
    access: PrivateAccess,
    username: String,
    database: String,
    /// An Aurora cluster, which has a reader endpoint.
    cluster: bool,
}

/// How a PostgreSQL service's access is named (`<name>/db`, `<name>/db-from-cluster-main`).
pub(crate) const POSTGRES_ACCESS: AccessNames = AccessNames { label: "db", protocol: "PostgreSQL" };

impl Database {
    /// An Aurora cluster's: `address` is its writer endpoint, and it has a reader endpoint.
    pub(super) fn of_cluster(
        cluster: Urn,
        password: Password,
        access: PrivateAccess,
        username: String,
        database: String,
    ) -> Self {
        Database { instance: cluster, password, access, username, database, cluster: true }
    }

    /// The reader endpoint's host name (an Aurora cluster's; reads spread over its readers).
    pub fn reader_address(&self) -> Option<Output<String>> {
        self.cluster.then(|| Output::reference(self.instance.clone(), "reader_address"))
    }

    /// The URL of the reader endpoint, as a secret (an Aurora cluster's).
    pub fn reader_url(&self) -> Option<Output<Secret<String>>> {
        self.reader_address().map(|host| self.url_at(host))
    }

    outputs!(instance =>
        /// The endpoint's host name (an Aurora cluster's writer endpoint).
        address: String,
        arn: String,
    );

    /// `postgres://user:password@host:5432/db?sslmode=require`, as a secret.
    pub fn url(&self) -> Output<Secret<String>> {
        self.url_at(self.address())
    }

    /// The connection URL through another name of the database: a record in a private zone
    /// (`db.<fabric>.internal`, see [`crate::aws::route53::HostedZone`]'s `private`), so that a
    /// restore or a replacement changes that one record, not every consumer.
    pub fn url_at(&self, host: Output<String>) -> Output<Secret<String>> {
        let (user, db) = (self.username.clone(), self.database.clone());
        self.password.value().zip(host).map(move |(pw, host)| {
            Secret::new(format!("postgres://{user}:{}@{host}:5432/{db}?sslmode=require", pw.expose()))
        })
    }
}

/// Refuses a restore source that cannot be one: `what` is `instance` or `cluster`.
pub(super) fn check_restore(c: &mut Checker, restore: &crate::aws::rds::Restore, what: &str) {
    match restore {
        crate::aws::rds::Restore::PointInTime { source, time } => {
            c.require(
                valid_identifier(source),
                "restore",
                format!("`{source}` is not an RDS {what} identifier"),
                format!("name the {what} to restore from, as `outputs` or the RDS console shows it"),
            );
            if let Some(t) = time {
                c.require(
                    humantime::parse_rfc3339(t).is_ok(),
                    "restore",
                    format!("`{t}` is not an RFC 3339 UTC time"),
                    "write a time such as `2026-11-22T04:55:00Z` (or none for the latest restorable time)",
                );
            }
        }
        crate::aws::rds::Restore::Snapshot { snapshot } => c.require(
            !snapshot.trim().is_empty(),
            "restore",
            "no snapshot named",
            format!(
                "give a DB {}snapshot identifier or ARN (`aws rds describe-db-{}snapshots`, or AWS Backup's recovery points)",
                if what == "cluster" { "cluster " } else { "" },
                if what == "cluster" { "cluster-" } else { "" }
            ),
        ),
    }
}

/// Refuses a database name PostgreSQL would not take, and a reserved or too long master user.
pub(super) fn check_database_and_user(c: &mut Checker, database: &str, master_username: &str) {
    c.require(
        database.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && database.starts_with(|ch: char| ch.is_ascii_alphabetic()),
        "database",
        format!("`{database}` is not a PostgreSQL database name"),
        "use letters, digits and underscores, starting with a letter",
    );
    c.require(
        !["postgres", "admin", "rdsadmin"].contains(&master_username) && master_username.len() <= 63,
        "master_username",
        format!("`{master_username}` is reserved or too long"),
        "choose another name (the default is `fabric_admin`)",
    );
}

pub(super) fn valid_identifier(id: &str) -> bool {
    id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl RdsPostgres<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Database> {
        let name = &self.name;
        let major = self.engine_version.split('.').next().unwrap_or_default().to_string();
        // A replacement (new major version, database or user name) gets a new identifier, so the
        // new instance never collides with the one it replaces.
        let restore_key = match &self.restore {
            None => String::new(),
            Some(r) => format!("/{}", serde_json::to_string(r).unwrap_or_default()),
        };
        let generation =
            crate::model::short_hash(&format!("{major}/{}/{}{restore_key}", self.database, self.master_username));
        let identifier =
            format!("{}-{}-{generation}", s.name(), name).to_ascii_lowercase().replace(['/', '_', '.'], "-");
        let mut c = Checker::new(s.urn(rds::INSTANCE, name));
        c.require(
            valid_identifier(&identifier),
            "name",
            format!("`{identifier}` (stack-name) is not a valid RDS identifier"),
            "use letters, digits and single hyphens, starting with a letter, at most 63 characters in all",
        );
        c.require(
            major.parse::<u32>().is_ok_and(|m| m >= 13),
            "engine_version",
            format!("PostgreSQL `{}` is not a supported version", self.engine_version),
            "use a supported major version, such as `16.4` or `17.2`",
        );
        c.require(
            self.instance_class.starts_with("db.") && self.instance_class.split('.').count() == 3,
            "instance_class",
            format!("`{}` is not an RDS instance class", self.instance_class),
            "use a class such as `db.t4g.medium` or `db.r7g.large`",
        );
        c.within(
            "storage_gb",
            self.storage_gb,
            20..=65536,
            "{} GiB is outside 20 to 65536",
            "gp3 storage starts at 20 GiB",
        );
        c.require(
            self.max_storage_gb >= self.storage_gb,
            "max_storage_gb",
            format!(
                "the autoscaling ceiling ({} GiB) is below the storage ({} GiB)",
                self.max_storage_gb, self.storage_gb
            ),
            "set `max_storage_gb` at least as large as `storage_gb`",
        );
        if let Some(restore) = &self.restore {
            check_restore(&mut c, restore, "instance");
        }
        c.require(
            (1..=35).contains(&self.backup_retention_days),
            "backup_retention_days",
            format!(
                "{} days of backups; RDS keeps 1 to 35 (0 turns backups and point-in-time recovery off)",
                self.backup_retention_days
            ),
            "keep at least 1 day (7 is the default)",
        );
        c.require(
            !self.publicly_accessible || self.public_waiver.as_deref().is_some_and(|w| !w.trim().is_empty()),
            "publicly_accessible",
            "a database reachable from the internet is refused",
            "keep it private and admit clients with `allow_from`, or give `.public_waiver(\"why\")` to accept the risk by name",
        );
        require_two_zones(&mut c, self.network, "a database");
        check_database_and_user(&mut c, &self.database, &self.master_username);
        s.report(c.into_errors());
        // The reasoned waiver is one of policy rule FAB-RDS-5, shown with every plan.
        if let (true, Some(why)) = (self.publicly_accessible, self.public_waiver.as_deref()) {
            s.waive("FAB-RDS-5", self.name.as_str(), why);
        }

        let access = PrivateAccess::add(
            s,
            s.urn(rds::INSTANCE, name),
            POSTGRES_ACCESS,
            self.network,
            5432,
            &self.allow_from,
            format!("PostgreSQL {name}: 5432 from named groups only"),
            &self.tags,
        )?;
        let subnet_ids = PrivateAccess::subnet_ids(self.network);
        let group_inputs = SubnetGroupInputs {
            name: identifier.clone(),
            description: format!("Private subnets of {name}"),
            subnet_ids,
            tags: self.tags.clone(),
        };
        let group = s.declare(rds::subnet_group_provider(), name, group_inputs, vec![]);
        let password = Password::add(s, &format!("{name}/master-password"), 32);
        let inputs: InstanceInputs<Output<String>, Output<Secret<String>>> = InstanceInputs {
            identifier,
            engine: "postgres".into(),
            engine_version: self.engine_version.clone(),
            engine_major: major,
            instance_class: self.instance_class.clone(),
            allocated_storage: self.storage_gb,
            max_allocated_storage: self.max_storage_gb,
            storage_type: "gp3".into(),
            storage_encrypted: true,
            multi_az: self.multi_az,
            backup_retention_days: self.backup_retention_days,
            deletion_protection: self.deletion_protection,
            publicly_accessible: self.publicly_accessible,
            db_subnet_group_name: Output::reference(group, "name"),
            vpc_security_group_ids: vec![access.security_group().id()],
            db_name: self.database.clone(),
            master_username: self.master_username.clone(),
            master_password: Some(password.value()),
            skip_final_snapshot: Some(self.skip_final_snapshot),
            apply_immediately: Some(self.apply_immediately),
            restore: self.restore.clone(),
            tags: self.tags.clone(),
        };
        let instance = s.declare(rds::instance_provider(), name, inputs, vec![]);
        Ok(Database {
            instance,
            password,
            access,
            username: self.master_username,
            database: self.database,
            cluster: false,
        })
    }
}

impl PrivateService for Database {
    fn private_access(&self) -> &PrivateAccess {
        &self.access
    }
}
