//! The acme fabric: a web service of four containers on AWS, from one typed config per
//! environment (`config/dev.toml`, `config/prod.toml`).
//!
//! | component | where it runs | reachable from |
//! |---|---|---|
//! | ui (`acme/ui`, static files) | `WebService` on EKS, `www.<domain>` | the internet, HTTPS at the ALB (HTTP redirected) |
//! | api (`acme/api`, REST) | `WebService` on EKS, `api.<domain>` | the internet, HTTPS at the ALB |
//! | db (PostgreSQL 5432) | `RdsPostgres`, Multi-AZ, encrypted, PITR; named `db.<stack>.internal` in a private zone | the cluster's nodes only |
//! | cache (Valkey 6379, TLS) | `Redis`, a primary and replicas over the zones, failover, AUTH token | the cluster's nodes only; api's pods |
//! | uploads (S3) | `Bucket`, SSE-KMS, TLS only, lifecycle | api's pods, through its Pod Identity role |
//! | search (OpenSearch 443, prod) | `SearchDomain` over the zones, HTTPS, fine-grained access | the cluster's nodes only; api's pods |
//! | metrics (Prometheus, port 80) | `Prometheus` on EKS, ClusterIP | inside the cluster only |
//! | logs (S3) | `Bucket` with log delivery: the ALB's access logs and the VPC's flow logs, 90 days | AWS's log delivery (write) |

// The snapshot tests (`tests/snapshots.rs`) are compiled into this library's test binary rather
// than as an integration test: `cargo test` then builds no stack executable (a link of ~100 MB).
// They name the crate as an integration test would.
#[cfg(test)]
extern crate self as acme;
#[cfg(test)]
#[path = "../tests/snapshots.rs"]
mod snapshots;

use fabric::aws::route53::{HostedZone, Record, RecordValue};
use fabric::components::prometheus::VOLUME_BACKUP_TAG;
use fabric::prelude::*;
use serde::Deserialize;

/// One environment's settings: everything that differs between dev and prod.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    pub domain: String,
    /// The domain's Route 53 zone exists already (a registered domain): look it up instead of
    /// creating one.
    #[serde(default)]
    pub existing_zone: bool,
    pub zones: usize,
    /// `single` or `per-zone`.
    pub nat: Nat,
    pub kubernetes_version: String,
    /// Who may reach the cluster's API endpoint: office, VPN and CI egress ranges
    /// (`["0.0.0.0/0"]` works anywhere, and every plan warns about it).
    pub cluster_api_cidrs: Vec<String>,
    /// Every deploy is atomic (`deploy --atomic`): one that fails returns to the last successful
    /// revision. Off unless set; prod sets it.
    #[serde(default)]
    pub atomic: bool,
    pub nodes: Nodes,
    pub api: Service,
    pub ui: Service,
    pub db: Db,
    pub cache: CacheSettings,
    pub uploads: Uploads,
    /// An OpenSearch domain for the api (`OPENSEARCH_URL`); none: the api runs without search.
    #[serde(default)]
    pub search: Option<SearchSettings>,
    pub metrics: Metrics,
    pub backup: Backup,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nodes {
    pub instance_types: Vec<String>,
    pub min: i32,
    pub max: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: String,
    /// `[min, max]` pods; the autoscaler moves between them.
    pub replicas: [i32; 2],
    /// Seconds a new pod may take to become ready before its rollout counts as failed (60).
    #[serde(default = "default_start_seconds")]
    pub start_seconds: i32,
}

fn default_start_seconds() -> i32 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Db {
    /// `postgres` (the default: RDS PostgreSQL, one instance with a Multi-AZ standby) or
    /// `aurora` (Aurora PostgreSQL: a writer and `readers` readers over the zones).
    #[serde(default)]
    pub engine: DbEngine,
    pub instance_class: String,
    /// `postgres` only: storage to start with, GiB (Aurora's grows by itself).
    pub storage_gb: Option<i32>,
    /// `postgres` only: storage autoscaling ceiling.
    pub max_storage_gb: Option<i32>,
    /// `postgres` only: a standby in another zone (Aurora's readers are its other zones).
    pub multi_az: Option<bool>,
    /// `aurora` only: readers besides the writer (default 1).
    pub readers: Option<i32>,
    pub deletion_protection: bool,
    /// Disaster recovery: create the database from a snapshot or a point in time
    /// (`docs/disaster-recovery.md`; a cluster snapshot or a cluster with `aurora`).
    #[serde(default)]
    pub restore: Option<fabric::aws::rds::Restore>,
}

/// The database engine behind `[db]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    #[default]
    Postgres,
    Aurora,
}

/// The api's cache (sessions, rate limits): Valkey on ElastiCache.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub node_type: String,
    /// Read replicas besides the primary, one per zone.
    pub replicas: i32,
}

/// The api's uploads bucket: `<domain with - for .>-uploads`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uploads {
    /// Destroy empties the bucket (every version) before deleting it; off: a non-empty bucket is
    /// kept.
    pub force_destroy: bool,
    /// Objects under `tmp/` expire after this many days.
    pub keep_tmp_days: i32,
}

/// The api's search domain: OpenSearch over the network's zones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    pub instance_type: String,
    /// Data nodes: a multiple of the zone count.
    pub instance_count: i32,
    /// GiB of gp3 storage per node.
    pub volume_gb: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub storage: String,
    pub retention: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub daily_at: String,
    pub keep_days: i64,
    pub weekly_keep_days: i64,
}

/// The Kubernetes namespace of the acme services.
pub const NAMESPACE: &str = "acme";

/// The `[db]` of the config: RDS PostgreSQL or Aurora PostgreSQL; a setting of the other engine
/// is refused, naming it.
fn database(s: &mut Stack, cfg: &Db, net: &Network) -> fabric::Result<Database> {
    let env = s.env().unwrap_or("none").to_string();
    let mut c = fabric::model::Checker::new(fabric::model::Urn::new(s.name(), "fabric:Config", &format!("{env}/db")));
    let wrong = |field: &str, engine: &str| {
        (
            format!("`db.{field}` is a setting of engine = \"{engine}\""),
            format!("remove `{field}` from [db], or set engine = \"{engine}\""),
        )
    };
    match cfg.engine {
        DbEngine::Postgres => {
            for (field, missing) in [
                ("storage_gb", cfg.storage_gb.is_none()),
                ("max_storage_gb", cfg.max_storage_gb.is_none()),
                ("multi_az", cfg.multi_az.is_none()),
            ] {
                c.require(
                    !missing,
                    field,
                    format!("[db] with engine = \"postgres\" needs `{field}`"),
                    format!("add `{field}` to [db]"),
                );
            }
            if cfg.readers.is_some() {
                let (what, fix) = wrong("readers", "aurora");
                c.error("readers", what, fix);
            }
        }
        DbEngine::Aurora => {
            for (field, given) in [
                ("storage_gb", cfg.storage_gb.is_some()),
                ("max_storage_gb", cfg.max_storage_gb.is_some()),
                ("multi_az", cfg.multi_az.is_some()),
            ] {
                if given {
                    let (what, fix) = wrong(field, "postgres");
                    c.error(field, what, fix);
                }
            }
        }
    }
    s.report(c.into_errors());
    let db = match cfg.engine {
        DbEngine::Postgres => {
            let b = RdsPostgres::builder()
                .name("db")
                .network(net)
                .instance_class(cfg.instance_class.as_str())
                .storage_gb(cfg.storage_gb.unwrap_or(20))
                .max_storage_gb(cfg.max_storage_gb.unwrap_or(100))
                .multi_az(cfg.multi_az.unwrap_or(true))
                .deletion_protection(cfg.deletion_protection);
            match cfg.restore.clone() {
                Some(restore) => b.restore(restore).build().add(s)?,
                None => b.build().add(s)?,
            }
        }
        DbEngine::Aurora => {
            let b = AuroraPostgres::builder()
                .name("db")
                .network(net)
                .instance_class(cfg.instance_class.as_str())
                .readers(cfg.readers.unwrap_or(1))
                .deletion_protection(cfg.deletion_protection);
            match cfg.restore.clone() {
                Some(restore) => b.restore(restore).build().add(s)?,
                None => b.build().add(s)?,
            }
        }
    };
    Ok(db)
}

pub fn program(s: &mut Stack) -> fabric::Result<()> {
    let cfg: AcmeConfig = s.config()?;
    s.set_atomic(cfg.atomic);
    let nat = cfg.nat;

    // logs: the load balancer's access logs and the VPC's flow logs, kept 90 days (S3's own key:
    // load balancers write with no other).
    let logs = Bucket::builder()
        .name("logs")
        .bucket(format!("{}-logs", cfg.domain.replace('.', "-")))
        .log_delivery(true)
        .lifecycle(vec![LifecycleRule::new("expire", "").expire(90).expire_noncurrent(7).abort_multipart(1)])
        .force_destroy(cfg.uploads.force_destroy)
        .build()
        .add(s)?;

    // Network: public subnets for the load balancer, private ones for nodes and the database; the
    // default security group closed; flow logs.
    let net =
        Vpc::builder().name("main").cidr("10.0.0.0/16").zones(cfg.zones).nat(nat).flow_logs(&logs).build().add(s)?;
    let zone = if cfg.existing_zone {
        HostedZone::existing(&cfg.domain).add(s)?
    } else {
        HostedZone::builder().name("main").domain(cfg.domain.as_str()).build().add(s)?
    };

    // HTTPS at the edge: ACM certificate, TLS 1.3, HTTP → HTTPS, access logs; protected from
    // deletion in prod.
    let edge = AlbIngress::builder().name("edge").network(&net).zone(&zone).access_logs(&logs).build().add(s)?;

    // Kubernetes: nodes in the private subnets of every zone, autoscaled between the bounds.
    let eks = EksCluster::builder()
        .name("main")
        .network(&net)
        .version(cfg.kubernetes_version.as_str())
        .public_access_cidrs(cfg.cluster_api_cidrs.clone())
        .pool(
            NodePool::builder()
                .name("general")
                .instance_types(cfg.nodes.instance_types.clone())
                .size(cfg.nodes.min..=cfg.nodes.max)
                .build(),
        )
        .build()
        .add(s)?;
    Namespace::builder().name(NAMESPACE).cluster(&eks).build().add(s)?;

    // db: PostgreSQL (RDS Multi-AZ, or Aurora with readers over the zones), encrypted, 7 days of
    // point-in-time recovery; only the nodes may connect.
    let db = database(s, &cfg.db, &net)?;
    db.allow_cluster(s, &eks)?;

    // cache: Valkey with TLS and a generated AUTH token, a primary and replicas over the zones with
    // automatic failover; only the nodes may connect.
    let cache = Redis::builder()
        .name("cache")
        .network(&net)
        .node_type(cfg.cache.node_type.as_str())
        .replicas(cfg.cache.replicas)
        .build()
        .add(s)?;
    cache.allow_cluster(s, &eks)?;

    // uploads: a private bucket, SSE-KMS with its own key, TLS only; the api's pods reach it
    // through their own Pod Identity role (granted below, once the api is declared).
    let uploads_key = fabric::aws::kms::KmsKey::builder()
        .name("uploads")
        .description("Uploads bucket of the acme fabric")
        .build()
        .add(s)?;
    let uploads = Bucket::builder()
        .name("uploads")
        .bucket(format!("{}-uploads", cfg.domain.replace('.', "-")))
        .kms_key(&uploads_key)
        .lifecycle(vec![
            LifecycleRule::new("tmp", "tmp/").expire(cfg.uploads.keep_tmp_days),
            LifecycleRule::new("versions", "").expire_noncurrent(30).abort_multipart(1),
        ])
        .force_destroy(cfg.uploads.force_destroy)
        .build()
        .add(s)?;

    // search (optional): OpenSearch over the zones, HTTPS only, a generated master user; only the
    // nodes may connect.
    let search = match &cfg.search {
        Some(c) => {
            let search = SearchDomain::builder()
                .name("search")
                .network(&net)
                .instance_type(c.instance_type.as_str())
                .instance_count(c.instance_count)
                .volume_gb(c.volume_gb)
                .build()
                .add(s)?;
            search.allow_cluster(s, &eks)?;
            Some(search)
        }
        None => None,
    };

    // Internal names: a zone only the VPC resolves (`<stack>.internal`), with `db.<stack>.internal`
    // → the database's address. The api connects by that name, so a restore or a replacement
    // changes this one record, not every consumer.
    let internal = HostedZone::builder()
        .name("internal")
        .domain(format!("{}.internal", s.name()))
        .comment("Internal names of the acme fabric; resolves only inside its VPC")
        .private(&net)
        .build()
        .add(s)?;
    let db_name = Record::builder()
        .name("db")
        .zone(&internal)
        .record_name("db")
        .value(RecordValue::Cname(db.address()))
        .ttl(60)
        .build()
        .add(s)?;

    // metrics: Prometheus on port 80 inside the cluster.
    let metrics = Prometheus::builder()
        .name("metrics")
        .cluster(&eks)
        .namespace(NAMESPACE)
        .storage(cfg.metrics.storage.as_str())
        .retention(cfg.metrics.retention.as_str())
        .build()
        .add(s)?;

    // api: REST API behind api.<domain>; the database and cache URLs only through a Kubernetes Secret.
    let [api_min, api_max] = cfg.api.replicas;
    let api = WebService::builder()
        .name("api")
        .cluster(&eks)
        .namespace(NAMESPACE)
        .image(cfg.api.image.as_str())
        .port(8443)
        .health(Health::http("/healthz"))
        .replicas(api_min..=api_max)
        .start_seconds(cfg.api.start_seconds)
        .env("POSTGRES_URL", db.url_at(db_name.host()))
        .env("REDIS_URL", cache.url())
        .env("METRICS_URL", metrics.url())
        .env("UPLOADS_BUCKET", uploads.name())
        .reach(db.reach())
        .reach(cache.reach())
        .reach(metrics.reach())
        .reach(uploads.reach())
        .route(&edge, &format!("api.{}", cfg.domain));
    let api = match &search {
        Some(search) => api.env("OPENSEARCH_URL", search.url()).reach(search.reach()).build().add(s)?,
        None => api.build().add(s)?,
    };
    uploads.grant(s, &api, Access::ReadWrite)?;

    // ui: static files behind www.<domain>.
    let [ui_min, ui_max] = cfg.ui.replicas;
    WebService::builder()
        .name("ui")
        .cluster(&eks)
        .namespace(NAMESPACE)
        .image(cfg.ui.image.as_str())
        .port(8080)
        .health(Health::http("/"))
        .replicas(ui_min..=ui_max)
        .start_seconds(cfg.ui.start_seconds)
        .env("API_URL", format!("https://api.{}", cfg.domain))
        .route(&edge, &format!("www.{}", cfg.domain))
        .build()
        .add(s)?;

    // Backups: the database daily and weekly (plus its own PITR), the uploads bucket daily, and
    // the Prometheus volume
    // (EBS volumes of the fabric storage class carry the backup tag).
    BackupPlan::builder()
        .name("daily")
        .daily_at(cfg.backup.daily_at.as_str())
        .keep_days(cfg.backup.keep_days)
        .weekly(Weekly { day: "SUN", at: "06:00".into(), keep_days: cfg.backup.weekly_keep_days })
        .protect(&db)
        .build()
        .add(s)?;
    BackupPlan::builder()
        .name("uploads")
        .daily_at(cfg.backup.daily_at.as_str())
        .keep_days(cfg.backup.keep_days)
        .protect(&uploads)
        .build()
        .add(s)?;
    BackupPlan::builder()
        .name("volumes")
        .daily_at(cfg.backup.daily_at.as_str())
        .keep_days(cfg.backup.keep_days)
        .by_tag(VOLUME_BACKUP_TAG.0, VOLUME_BACKUP_TAG.1)
        .build()
        .add(s)?;

    s.export("api", edge.url(&format!("api.{}", cfg.domain)));
    s.export("www", edge.url(&format!("www.{}", cfg.domain)));
    s.export("name_servers", zone.name_servers());
    s.export("db_url", db.url());
    s.export("db_host", db_name.host());
    Ok(())
}
