//! The reference infrastructure fabric, one per environment (`--env develop|staging|prod|<you>`),
//! each with its own state:
//!
//! - a VPC over the configured zones (at least three) with public subnets only — no NAT gateways —
//!   numbered: fabric `network = n` owns `10.<n>.0.0/16`, its cluster's services `10.<128+n>.0.0/16`
//!   ([`fabric::numbering`]); no two environments' blocks may overlap, checked over every config
//!   before any call;
//! - peerings with the fabrics named in `peers` (their VPC, block and route tables read from their
//!   state), routes on both sides;
//! - a Route 53 zone for `<fabric>.<domain>`;
//! - operator access without open ports (`[access]`): Session Manager on the nodes, its VPC
//!   endpoints where asked, the cluster API from named blocks or private only, an SSH bastion
//!   only for named blocks (see docs/reference.md, "Operator access");
//! - an EKS cluster whose nodes spread over the zones;
//! - an S3 bucket for the team's state, `<domain>-state` (one fabric owns it: `team_state = true`);
//! - optional data services for the workloads (`[db]`, `[cache]`, `[search]`), which need the
//!   private tier (`nat = "single"` or `"per-zone"`): PostgreSQL (RDS or Aurora), Valkey,
//!   OpenSearch, each admitting the cluster's nodes only, their URLs exported as secrets for the
//!   stacks that run the workloads.

// The snapshot tests (`tests/snapshots.rs`) are compiled into this library's test binary rather
// than as an integration test: `cargo test` then builds no stack executable (a link of ~100 MB).
// They name the crate as an integration test would.
#[cfg(test)]
extern crate self as reference;
#[cfg(test)]
#[path = "../tests/snapshots.rs"]
mod snapshots;

use fabric::aws::ec2::{Bastion, PeerNetwork, SessionManagerEndpoints, VpcPeering};
use fabric::aws::route53::HostedZone;
use fabric::aws::s3::Bucket;
use fabric::model::{Checker, Urn};
use fabric::numbering::{Allocation, FabricNumber};
use fabric::prelude::*;
use serde::Deserialize;

/// One fabric's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The fabric's name; normalised to lowercase letters and digits (`Develop` → `develop`).
    pub fabric: String,
    /// The fabric's number in the team's address plan (0–127): VPC `10.<n>.0.0/16`.
    pub network: FabricNumber,
    /// Fabrics (environments of this stack) to peer with; each must be deployed first.
    #[serde(default)]
    pub peers: Vec<String>,
    pub domain: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Availability zones, by name (at least three, in `region`).
    pub zones: Vec<String>,
    /// Whether this fabric owns the team's state bucket.
    #[serde(default)]
    pub team_state: bool,
    #[serde(default)]
    pub nodes: Nodes,
    #[serde(default)]
    pub access: Access,
    /// The private tier: `none` (the default: public subnets only, no NAT), `single` or
    /// `per-zone` NAT gateways with private subnets for the nodes and the data services.
    #[serde(default = "no_nat")]
    pub nat: Nat,
    #[serde(default)]
    pub db: Option<DbSettings>,
    #[serde(default)]
    pub cache: Option<CacheSettings>,
    #[serde(default)]
    pub search: Option<SearchSettings>,
}

fn no_nat() -> Nat {
    Nat::None
}

/// `[db]`: PostgreSQL for the workloads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSettings {
    /// `postgres` (RDS, Multi-AZ) or `aurora` (Aurora PostgreSQL, a writer and `readers`).
    #[serde(default = "postgres")]
    pub engine: String,
    pub instance_class: String,
    /// `aurora` only: readers besides the writer (default 1).
    pub readers: Option<i32>,
    #[serde(default)]
    pub deletion_protection: bool,
}

fn postgres() -> String {
    "postgres".into()
}

/// `[cache]`: Valkey for the workloads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub node_type: String,
    /// Replicas besides the primary, at most one per zone.
    pub replicas: i32,
}

/// `[search]`: OpenSearch for the workloads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    pub instance_type: String,
    /// Data nodes, a multiple of the zone count (at most three zones).
    pub instance_count: i32,
    pub volume_gb: i32,
}

/// How operators reach the fabric's private parts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Interface endpoints for Session Manager (`ssm`, `ssmmessages`, `ec2messages`): shells and
    /// port forwarding to the nodes with no NAT and no open port.
    #[serde(default)]
    pub session_manager_endpoints: bool,
    /// Who may reach the cluster's API endpoint (`[]`: private only — reachable from inside the
    /// VPC, through Session Manager port forwarding or a peered network). Default: anywhere,
    /// warned about in every plan.
    #[serde(default)]
    pub api_from: Option<Vec<String>>,
    /// An SSH bastion admitting these blocks (empty: no bastion).
    #[serde(default)]
    pub bastion_ssh_from: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nodes {
    pub instance_types: Vec<String>,
    pub min: i32,
    pub max: i32,
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes { instance_types: vec!["t3.large".into()], min: 3, max: 6 }
    }
}

fn default_region() -> String {
    "us-east-2".into()
}

/// `My Fabric_1` → `myfabric1`: what DNS labels, bucket names and tags accept everywhere.
pub fn normalise(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// `example.com` → `example-com-state`.
pub fn state_bucket(domain: &str) -> String {
    let name: String =
        domain.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{name}-state")
}

/// Problems with the config itself, reported with everything else before any call.
fn check(s: &Stack, cfg: &Config, fabric: &str) -> Vec<fabric::model::ValidationError> {
    let mut c = Checker::new(Urn::new(s.name(), "fabric:Config", s.env().unwrap_or("none")));
    c.require(
        !fabric.is_empty() && fabric.len() <= 40 && fabric.starts_with(|c: char| c.is_ascii_lowercase()),
        "fabric",
        format!("`{}` does not make a name (normalised: `{fabric}`)", cfg.fabric),
        "use 1 to 40 letters and digits, starting with a letter",
    );
    c.require(
        cfg.zones.len() >= 3,
        "zones",
        format!("{} zones; the reference fabric spans at least three", cfg.zones.len()),
        "list three or more zones of the region",
    );
    let services = [("db", cfg.db.is_some()), ("cache", cfg.cache.is_some()), ("search", cfg.search.is_some())];
    for (section, given) in services {
        c.require(
            !given || cfg.nat != Nat::None,
            section,
            format!("[{section}] needs private subnets, and `nat` is \"none\" (public subnets only)"),
            "set `nat = \"single\"` (one NAT gateway) or `nat = \"per-zone\"`, or remove the section",
        );
    }
    if let Some(db) = &cfg.db {
        c.require(
            db.engine == "postgres" || db.engine == "aurora",
            "db.engine",
            format!("`{}` is not a database engine of the reference fabric", db.engine),
            "use \"postgres\" or \"aurora\"",
        );
        c.require(
            db.engine == "aurora" || db.readers.is_none(),
            "db.readers",
            "`readers` is a setting of engine = \"aurora\"",
            "remove `readers`, or set engine = \"aurora\"",
        );
    }
    for z in &cfg.zones {
        c.require(
            z.strip_prefix(cfg.region.as_str())
                .is_some_and(|rest| rest.len() == 1 && rest.chars().all(|c| c.is_ascii_lowercase())),
            "zones",
            format!("`{z}` is not a zone of region {}", cfg.region),
            format!("use zones such as `{}a`", cfg.region),
        );
    }
    c.into_errors()
}

/// What the program reads of a peer fabric: the network it exports.
#[derive(Debug, Deserialize)]
pub struct PeerOutputs {
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub route_table_ids: Vec<String>,
}

/// Every environment's blocks, from every config beside this one: the input of the overlap check.
pub fn allocations(all: &[(String, Config)]) -> Vec<Allocation> {
    all.iter().map(|(env, cfg)| Allocation::numbered(env, cfg.network)).collect()
}

pub fn program(s: &mut Stack) -> fabric::Result<()> {
    let cfg: Config = s.config()?;
    let fabric = normalise(&cfg.fabric);
    let problems = check(s, &cfg, &fabric);
    s.report(problems);
    let all: Vec<(String, Config)> = s.all_configs()?;
    fabric::numbering::check_disjoint(s, "network", &allocations(&all));
    s.set_region(&cfg.region);

    let net = Vpc::builder()
        .name("main")
        .cidr(cfg.network.vpc_cidr().to_string())
        .zones(Zones::Named(cfg.zones.clone()))
        .nat(cfg.nat)
        .build()
        .add(s)?;
    let zone = HostedZone::builder().name("main").domain(format!("{fabric}.{}", cfg.domain)).build().add(s)?;
    for peer in &cfg.peers {
        let stack = format!("reference-{peer}");
        let other: PeerOutputs = s.reference(&stack)?.outputs()?;
        let network = PeerNetwork::of_other_stack(&stack, &other.vpc_id, &other.vpc_cidr, &other.route_table_ids);
        VpcPeering::builder().name(format!("peer-{peer}")).network(&net).peer(network).build().add(s)?;
    }
    if cfg.access.session_manager_endpoints {
        SessionManagerEndpoints::builder().name("ssm").network(&net).build().add(s)?;
    }
    if !cfg.access.bastion_ssh_from.is_empty() {
        let bastion = Bastion::builder()
            .name("bastion")
            .network(&net)
            .ssh_from(cfg.access.bastion_ssh_from.clone())
            .build()
            .add(s)?;
        s.export("bastion", bastion.public_ip());
    }
    let cluster =
        EksCluster::builder().name("main").network(&net).service_cidr(cfg.network.service_cidr().to_string()).pool(
            NodePool::builder()
                .name("general")
                .instance_types(cfg.nodes.instance_types.clone())
                .size(cfg.nodes.min..=cfg.nodes.max)
                .build(),
        );
    let cluster = match &cfg.access.api_from {
        Some(blocks) => cluster.public_access_cidrs(blocks.clone()).build().add(s)?,
        None => cluster.build().add(s)?,
    };
    data_services(s, &cfg, &net, &cluster)?;
    if cfg.team_state {
        let bucket = Bucket::builder().name("team-state").bucket(state_bucket(&cfg.domain)).build().add(s)?;
        s.export("state_bucket", bucket.name());
    }
    s.export("fabric", Output::known(fabric));
    // Read by peer fabrics (`peers = [..]`).
    s.export("vpc_id", net.id());
    s.export("vpc_cidr", Output::known(cfg.network.vpc_cidr().to_string()));
    s.export("route_table_ids", Output::all(net.route_tables().iter().map(|t| t.id())));
    // Read by other stacks (`s.reference("reference-<env>")`, see the `dns` stack).
    s.export("zone_id", zone.id());
    s.export("zone_domain", Output::known(zone.domain().to_string()));
    s.export("name_servers", zone.name_servers());
    Ok(())
}

/// `[db]`, `[cache]` and `[search]`: each admits the cluster's nodes only, and exports its URL as
/// a secret (`db_url`, `redis_url`, `search_url`) for the stacks that run the workloads.
fn data_services(s: &mut Stack, cfg: &Config, net: &Network, cluster: &ClusterRef) -> fabric::Result<()> {
    if cfg.nat == Nat::None {
        return Ok(());
    }
    if let Some(db) = &cfg.db {
        let database = if db.engine == "aurora" {
            AuroraPostgres::builder()
                .name("db")
                .network(net)
                .instance_class(db.instance_class.as_str())
                .readers(db.readers.unwrap_or(1))
                .deletion_protection(db.deletion_protection)
                .build()
                .add(s)?
        } else {
            RdsPostgres::builder()
                .name("db")
                .network(net)
                .instance_class(db.instance_class.as_str())
                .deletion_protection(db.deletion_protection)
                .build()
                .add(s)?
        };
        database.allow_cluster(s, cluster)?;
        s.export("db_url", database.url());
    }
    if let Some(c) = &cfg.cache {
        let cache = Redis::builder()
            .name("cache")
            .network(net)
            .node_type(c.node_type.as_str())
            .replicas(c.replicas)
            .build()
            .add(s)?;
        cache.allow_cluster(s, cluster)?;
        s.export("redis_url", cache.url());
    }
    if let Some(c) = &cfg.search {
        let search = SearchDomain::builder()
            .name("search")
            .network(net)
            .instance_type(c.instance_type.as_str())
            .instance_count(c.instance_count)
            .volume_gb(c.volume_gb)
            .build()
            .add(s)?;
        search.allow_cluster(s, cluster)?;
        s.export("search_url", search.url());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise("My Fabric_1"), "myfabric1");
        assert_eq!(state_bucket("Example.COM"), "example-com-state");
        assert_eq!(state_bucket("a_b.example.org"), "a-b-example-org-state");
    }
}
