//! The reference infrastructure fabric, one per environment (`--env develop|staging|prod|<you>`),
//! each with its own state:
//!
//! - a VPC over the configured zones (at least three) with public subnets only — no NAT gateways;
//! - a Route 53 zone for `<fabric>.<domain>`;
//! - an EKS cluster whose nodes spread over the zones;
//! - an S3 bucket for the team's state, `<domain>-state` (one fabric owns it: `team_state = true`).

use fabric::aws::route53::HostedZone;
use fabric::aws::s3::Bucket;
use fabric::model::{Checker, Urn};
use fabric::prelude::*;
use serde::Deserialize;

/// One fabric's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The fabric's name; normalised to lowercase letters and digits (`Develop` → `develop`).
    pub fabric: String,
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

pub fn program(s: &mut Stack) -> fabric::Result<()> {
    let cfg: Config = s.config()?;
    let fabric = normalise(&cfg.fabric);
    let problems = check(s, &cfg, &fabric);
    s.report(problems);
    s.set_region(&cfg.region);

    let net = Vpc::builder()
        .name("main")
        .cidr("10.0.0.0/16")
        .zones(Zones::Named(cfg.zones.clone()))
        .nat(Nat::None)
        .build()
        .add(s)?;
    let zone = HostedZone::builder().name("main").domain(format!("{fabric}.{}", cfg.domain)).build().add(s)?;
    EksCluster::builder()
        .name("main")
        .network(&net)
        .pool(
            NodePool::builder()
                .name("general")
                .instance_types(cfg.nodes.instance_types.clone())
                .size(cfg.nodes.min..=cfg.nodes.max)
                .build(),
        )
        .build()
        .add(s)?;
    if cfg.team_state {
        let bucket = Bucket::builder().name("team-state").bucket(state_bucket(&cfg.domain)).build().add(s)?;
        s.export("state_bucket", bucket.name());
    }
    s.export("fabric", Output::known(fabric));
    // Read by other stacks (`s.reference("reference-<env>")`, see the `dns` stack).
    s.export("zone_id", zone.id());
    s.export("zone_domain", Output::known(zone.domain().to_string()));
    s.export("name_servers", zone.name_servers());
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
