//! The AWS half of a production web fabric, written with fabric's components:
//!
//! - a VPC over three zones with public and private subnets and a NAT gateway per zone;
//! - a Route 53 zone for the shop's domain;
//! - an internet-facing ALB: HTTPS with a DNS-validated certificate (TLS 1.3), HTTP redirected,
//!   host routes for the API and the storefront to their NodePorts;
//! - the application nodes' security group, admitting the NodePorts from the load balancer only;
//! - PostgreSQL on RDS in the private subnets, admitting 5432 from the application group only;
//! - AWS Backup of the database, daily (35 days) and weekly (a year), plus RDS point-in-time
//!   recovery (7 days).

// The snapshot tests (`tests/snapshots.rs`) are compiled into this library's test binary rather
// than as an integration test: `cargo test` then builds no stack executable (a link of ~100 MB).
// They name the crate as an integration test would.
#[cfg(test)]
extern crate self as shop;
#[cfg(test)]
#[path = "../tests/snapshots.rs"]
mod snapshots;

use fabric::aws::route53::HostedZone;
use fabric::prelude::*;

/// The shop's domain.
pub const DOMAIN: &str = "shop.example";

pub fn program(s: &mut Stack) -> fabric::Result<()> {
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::PerZone).build().add(s)?;
    let zone = HostedZone::builder().name("main").domain(DOMAIN).build().add(s)?;
    let edge = AlbIngress::builder().name("edge").network(&net).zone(&zone).build().add(s)?;
    let app = SecurityGroup::builder()
        .name("app")
        .vpc(net.vpc())
        .description("Application nodes: NodePorts from the load balancer only")
        .build()
        .add(s)?;
    IngressRule::builder()
        .name("app-from-edge")
        .group(&app)
        .protocol(Protocol::Tcp)
        .ports(30000..=32767)
        .from_group(edge.security_group())
        .description("NodePorts from the load balancer")
        .build()
        .add(s)?;
    edge.route(s, "api", &format!("api.{DOMAIN}"), 30080, "/healthz")?;
    edge.route(s, "www", &format!("www.{DOMAIN}"), 30081, "/")?;
    let db = RdsPostgres::builder().name("db").network(&net).allow_from(vec![&app]).build().add(s)?;
    BackupPlan::builder()
        .name("db")
        .daily_at("05:00")
        .keep_days(35)
        .weekly(Weekly { day: "SUN", at: "06:00".into(), keep_days: 365 })
        .protect(&db)
        .build()
        .add(s)?;
    s.export("api", edge.url(&format!("api.{DOMAIN}")));
    s.export("www", edge.url(&format!("www.{DOMAIN}")));
    s.export("load_balancer", edge.dns_name());
    s.export("name_servers", zone.name_servers());
    s.export("db_url", db.url());
    Ok(())
}
