//! The example network fabric: a VPC with DNS hostnames, one public subnet in each of three zones,
//! an internet gateway, a public route table (0.0.0.0/0 → gateway) with its associations, and two
//! security groups: `lb` admits HTTPS from the internet, `app` admits 8080 from `lb` only.

// The snapshot tests (`tests/snapshots.rs`) are compiled into this library's test binary rather
// than as an integration test: `cargo test` then builds no stack executable (a link of ~100 MB).
// They name the crate as an integration test would.
#[cfg(test)]
extern crate self as example;
#[cfg(test)]
#[path = "../tests/snapshots.rs"]
mod snapshots;

use fabric::aws::ec2::Vpc;
// With the `dylib` feature (`cargo xtask` turns it on), fabric is linked as a shared library: the
// binary relinks in ~0.6 s after an edit (sdk-dylib).
use fabric::prelude::*;
#[cfg(feature = "dylib")]
use fabric_dylib as _;

/// What varies between deployments of the example (tests vary it; the binary uses the default).
#[derive(Clone, Debug)]
pub struct Config {
    pub vpc_cidr: String,
    /// One public subnet per zone: (zone, CIDR).
    pub public_subnets: Vec<(String, String)>,
    /// Extra tags on every resource.
    pub tags: Vec<(String, String)>,
    /// The port the application listens on (admitted from the load balancer only).
    pub app_port: i32,
    /// Admit SSH (22) from this range, with a security group of its own (`ssh`): none by default.
    pub ssh_from: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            vpc_cidr: "10.0.0.0/16".into(),
            public_subnets: vec![
                ("us-east-2a".into(), "10.0.0.0/24".into()),
                ("us-east-2b".into(), "10.0.1.0/24".into()),
                ("us-east-2c".into(), "10.0.2.0/24".into()),
            ],
            tags: vec![("team".into(), "platform".into())],
            app_port: 8080,
            ssh_from: None,
        }
    }
}

/// The stack program with the default configuration.
pub fn program(s: &mut Stack) -> fabric::Result<()> {
    program_with(&Config::default())(s)
}

/// The stack program for `cfg`.
pub fn program_with(cfg: &Config) -> impl FnOnce(&mut Stack) -> fabric::Result<()> + '_ {
    move |s| {
        let tags: fabric::aws::ec2::Tags = cfg.tags.iter().cloned().collect();
        let vpc = Vpc::builder().name("main").cidr(cfg.vpc_cidr.as_str()).tags(tags.clone()).build().add_alone(s)?;
        let igw = InternetGateway::builder().name("main").vpc(&vpc).tags(tags.clone()).build().add(s)?;
        let public = RouteTable::builder().name("public").vpc(&vpc).tags(tags.clone()).build().add(s)?;
        Route::builder()
            .name("public-internet")
            .route_table(&public)
            .destination("0.0.0.0/0")
            .gateway(&igw)
            .build()
            .add(s)?;
        let mut subnet_ids = Vec::new();
        for (zone, cidr) in &cfg.public_subnets {
            let suffix = zone.chars().last().unwrap_or('x');
            let subnet = Subnet::builder()
                .name(format!("public-{suffix}"))
                .vpc(&vpc)
                .cidr(cidr.as_str())
                .zone(zone.as_str())
                .public(true)
                .tags(tags.clone())
                .build()
                .add(s)?;
            RouteTableAssociation::builder()
                .name(format!("public-{suffix}"))
                .route_table(&public)
                .subnet(&subnet)
                .build()
                .add(s)?;
            subnet_ids.push(subnet.id());
        }
        let lb = SecurityGroup::builder()
            .name("lb")
            .vpc(&vpc)
            .description("Load balancer: HTTPS from the internet")
            .tags(tags.clone())
            .build()
            .add(s)?;
        IngressRule::builder()
            .name("lb-https-from-internet")
            .group(&lb)
            .protocol(Protocol::Tcp)
            .ports(443..=443)
            .from_cidr("0.0.0.0/0")
            .description("HTTPS from anywhere")
            .build()
            .add(s)?;
        // Policy rule FAB-NET-1 admits 80/443 from anywhere only to a load balancer's group; the
        // load balancer of this one is not part of the example, so the waiver says so.
        s.waive("FAB-NET-1", "lb-https-from-internet", "the group of a load balancer declared outside this stack");
        let app = SecurityGroup::builder()
            .name("app")
            .vpc(&vpc)
            .description("Application: traffic from the load balancer only")
            .tags(tags)
            .build()
            .add(s)?;
        IngressRule::builder()
            .name("app-from-lb")
            .group(&app)
            .protocol(Protocol::Tcp)
            .ports(cfg.app_port..=cfg.app_port)
            .from_group(&lb)
            .description("From the load balancer")
            .build()
            .add(s)?;
        if let Some(range) = &cfg.ssh_from {
            let ssh = SecurityGroup::builder()
                .name("ssh")
                .vpc(&vpc)
                .description("SSH from the operators range")
                .tags(cfg.tags.iter().cloned().collect::<fabric::aws::ec2::Tags>())
                .build()
                .add(s)?;
            IngressRule::builder()
                .name("ssh-from-operators")
                .group(&ssh)
                .protocol(Protocol::Tcp)
                .ports(22..=22)
                .from_cidr(range.as_str())
                .description("SSH from the operators")
                .build()
                .add(s)?;
        }
        s.export("vpc_id", vpc.id());
        s.export("public_subnet_ids", Output::all(subnet_ids));
        s.export("lb_security_group_id", lb.id());
        s.export("app_security_group_id", app.id());
        Ok(())
    }
}
