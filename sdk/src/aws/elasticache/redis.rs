//! `Redis`: a private, encrypted, Multi-AZ Valkey (or Redis OSS) cache with a generated AUTH
//! token and TLS.

use super::{ReplicationGroupInputs, SubnetGroupInputs, replication_group_provider, subnet_group_provider};
use crate::aws::ec2::private_access::require_two_zones;
use crate::aws::ec2::{AccessNames, Network, PrivateAccess, PrivateService, SecurityGroupRef, Tags};
use crate::model::{Checker, Output, Secret, Stack, Urn};
use crate::random::Password;
use typed_builder::TypedBuilder;

/// Which engine a cache runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// Valkey (the default): the open-source fork of Redis that ElastiCache prices lowest.
    Valkey,
    /// Redis OSS.
    RedisOss,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Valkey => "valkey",
            Engine::RedisOss => "redis",
        }
    }

    /// The oldest major.minor version fabric runs: one with AUTH over TLS and in-place upgrades.
    fn oldest(self) -> (u32, u32) {
        match self {
            Engine::Valkey => (7, 2),
            Engine::RedisOss => (6, 2),
        }
    }
}

/// A Valkey or Redis OSS cache on Amazon ElastiCache, in the private subnets of a network.
///
/// Defaults: Valkey 8.0 on `cache.t4g.small`, a primary and two replicas, one per zone, automatic
/// failover and Multi-AZ, encrypted at rest (the AWS managed key, or `kms_key`) and in transit
/// (TLS only), a generated 32-character AUTH token kept encrypted in state, daily snapshots kept 7
/// days, a final snapshot on delete; changes are applied at once (ElastiCache scales node types
/// and replicas online). Only the groups named in `allow_from` (or a cluster given to
/// `allow_cluster`) reach its port. AWS Backup does not protect ElastiCache: its own daily
/// snapshots do.
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
/// let cache = Redis::builder().name("cache").network(&net).build().add(&mut s).unwrap();
/// s.export("redis_url", cache.url());
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Redis<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    #[builder(default = Engine::Valkey)]
    engine: Engine,
    /// Major.minor (`8.0`); ElastiCache picks the patch.
    #[builder(default = "8.0".to_string(), setter(into))]
    engine_version: String,
    #[builder(default = "cache.t4g.small".to_string(), setter(into))]
    node_type: String,
    /// Read replicas besides the primary: 1 to 5, at most one per zone of the network.
    #[builder(default = 2)]
    replicas: i32,
    #[builder(default = 6379)]
    port: i32,
    /// `ddd:hh24:mi-ddd:hh24:mi` (UTC), at least an hour, not overlapping the snapshot window.
    #[builder(default = "sun:05:00-sun:06:00".to_string(), setter(into))]
    maintenance_window: String,
    /// `hh24:mi-hh24:mi` (UTC), at least an hour: the daily snapshot.
    #[builder(default = "03:00-04:00".to_string(), setter(into))]
    snapshot_window: String,
    /// Days of daily snapshots (1 to 35).
    #[builder(default = 7)]
    snapshot_retention_days: i32,
    /// Leave no final snapshot when the cache is deleted.
    #[builder(default = false)]
    skip_final_snapshot: bool,
    /// Security groups admitted on the port (nothing else is).
    #[builder(default)]
    allow_from: Vec<&'a SecurityGroupRef>,
    /// A customer managed key for encryption at rest (none: the AWS managed key). Changing it
    /// replaces the cache.
    #[builder(default, setter(strip_option))]
    kms_key: Option<&'a crate::aws::kms::KmsKeyRef>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared cache.
#[derive(Clone, Debug)]
pub struct Cache {
    group: Urn,
    token: Password,
    access: PrivateAccess,
}

impl Cache {
    outputs!(group =>
        /// The primary endpoint's host name (reads and writes; it follows a failover).
        address as "primary_address": String,
        /// The reader endpoint's host name (reads, spread over the replicas).
        reader_address: String,
    );

    pub fn port(&self) -> i32 {
        self.access.port()
    }

    /// The AUTH token, as a secret.
    pub fn auth_token(&self) -> Output<Secret<String>> {
        self.token.value()
    }

    /// `rediss://:token@host:port` (TLS), as a secret: what a `WebService` takes as `REDIS_URL`.
    pub fn url(&self) -> Output<Secret<String>> {
        self.url_at(self.address())
    }

    /// The URL through another name of the cache (a record in a private zone).
    pub fn url_at(&self, host: Output<String>) -> Output<Secret<String>> {
        let port = self.access.port();
        self.token
            .value()
            .zip(host)
            .map(move |(token, host)| Secret::new(format!("rediss://:{}@{host}:{port}", token.expose())))
    }
}

/// A replication group id: 1–40 lower-case letters, digits and single hyphens, starting with a
/// letter, not ending with a hyphen.
fn valid_group_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Redis<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Cache> {
        let name = self.name.clone();
        let group_id = self.group_id(s);
        self.check(s, &group_id);
        let access = PrivateAccess::add(
            s,
            s.urn(super::REPLICATION_GROUP, &name),
            AccessNames { label: "cache", protocol: "Redis" },
            self.network,
            self.port,
            &self.allow_from,
            format!("Cache {name}: {} from named groups only", self.port),
            &self.tags,
        )?;
        let subnet_ids = PrivateAccess::subnet_ids(self.network);
        let subnet_group = s.declare(
            subnet_group_provider(),
            &name,
            SubnetGroupInputs {
                name: group_id.clone(),
                description: format!("Private subnets of cache {name}"),
                subnet_ids,
                tags: self.tags.clone(),
            },
            vec![],
        );
        let token = Password::add(s, &format!("{name}/auth-token"), 32);
        let failover = self.replicas >= 1;
        let inputs: ReplicationGroupInputs<Output<String>, Output<Secret<String>>> = ReplicationGroupInputs {
            id: group_id,
            description: format!("{} {name} of stack {}", self.engine.name(), s.name()),
            engine: self.engine.name().into(),
            engine_version: Some(self.engine_version.clone()),
            node_type: self.node_type.clone(),
            replicas: self.replicas,
            automatic_failover: failover,
            multi_az: failover,
            subnet_group_name: Some(Output::reference(subnet_group, "name")),
            security_group_ids: Some(vec![access.security_group().id()]),
            port: self.port,
            at_rest_encryption: true,
            kms_key_id: self.kms_key.map(|k| k.arn()),
            transit_encryption: true,
            maintenance_window: Some(self.maintenance_window.clone()),
            snapshot_window: self.snapshot_window.clone(),
            snapshot_retention_days: self.snapshot_retention_days,
            auth_token: Some(token.value()),
            skip_final_snapshot: Some(self.skip_final_snapshot),
            tags: self.tags.clone(),
        };
        let group = s.declare(replication_group_provider(), &name, inputs, vec![]);
        Ok(Cache { group, token, access })
    }

    /// `<stack>-<name>-<hash>`, at most 40 characters; the hash is over what forces a replacement
    /// (the port and the key), so a replacement gets a new id and is made before the old one goes.
    fn group_id(&self, s: &Stack) -> String {
        let base = format!("{}-{}", s.name(), self.name).to_ascii_lowercase().replace(['/', '_', '.'], "-");
        let port = self.port.to_string();
        let key = self.kms_key.map(|k| k.urn().to_string()).unwrap_or_default();
        crate::aws::physical_name(&base, 40, &[&port, &key])
    }

    fn check(&self, s: &mut Stack, group_id: &str) {
        let mut c = Checker::new(s.urn(super::REPLICATION_GROUP, &self.name));
        c.require(
            valid_group_id(group_id),
            "name",
            format!("`{group_id}` (stack-name-hash) is not a valid replication group id"),
            "use lower-case letters, digits and single hyphens, starting with a letter",
        );
        let version: Option<(u32, u32)> =
            self.engine_version.split_once('.').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        let oldest = self.engine.oldest();
        c.require(
            version.is_some_and(|v| v >= oldest),
            "engine_version",
            format!("{} `{}` is not a version fabric runs", self.engine.name(), self.engine_version),
            format!(
                "give a major.minor version from {}.{} on, such as `{}`",
                oldest.0,
                oldest.1,
                if self.engine == Engine::Valkey { "8.0" } else { "7.1" }
            ),
        );
        let parts: Vec<&str> = self.node_type.split('.').collect();
        c.require(
            parts.len() == 3 && parts[0] == "cache" && parts.iter().all(|p| !p.is_empty()),
            "node_type",
            format!("`{}` is not an ElastiCache node type", self.node_type),
            "use a node type such as `cache.t4g.small` or `cache.r7g.large`",
        );
        let zones = self.network.private_subnets().len() as i32;
        require_two_zones(&mut c, self.network, "a cache with failover");
        c.within(
            "replicas",
            self.replicas,
            1..=5,
            "{} replicas; automatic failover needs 1 and ElastiCache allows up to 5",
            "give 1 to 5 replicas (2, the default, puts a node in each of three zones)",
        );
        if zones >= 2 && (1..=5).contains(&self.replicas) {
            c.require(
                self.replicas <= zones,
                "replicas",
                format!(
                    "{} replicas over {zones} zones: two nodes would share a zone, and losing it would take both",
                    self.replicas
                ),
                format!("give at most {zones} replicas, or a network over more zones"),
            );
        }
        c.within("port", self.port, 1..=65535, "{} is not a TCP port", "use 6379, the default");
        c.within(
            "snapshot_retention_days",
            self.snapshot_retention_days,
            1..=35,
            "{} days of snapshots; ElastiCache keeps 1 to 35 (0 turns them off)",
            "keep at least 1 day (7 is the default)",
        );
        crate::aws::windows::check(
            &mut c,
            ("maintenance_window", &self.maintenance_window),
            ("snapshot_window", &self.snapshot_window),
            60,
        );
        s.report(c.into_errors());
    }
}

impl PrivateService for Cache {
    fn private_access(&self) -> &PrivateAccess {
        &self.access
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_follow_elasticache_rules() {
        assert!(valid_group_id("acme-cache-1a2b3c"));
        assert!(!valid_group_id("Acme"));
        assert!(!valid_group_id("a--b"));
        assert!(!valid_group_id("a-"));
        assert!(!valid_group_id(&"a".repeat(41)));
    }
}
