//! `AlbIngress`: an internet-facing application load balancer in the public subnets, HTTPS with a
//! DNS-validated certificate (TLS 1.3 policy), HTTP redirected to HTTPS, and host-based routes that
//! services add (`edge.route(…)`), each with its alias record. Requests with invalid header fields
//! are dropped; access logs go to a bucket when one is given; production load balancers are
//! protected from deletion.

use crate::aws::acm::{Certificate, CertificateRef};
use crate::aws::ec2::Network;
use crate::aws::ec2::{IngressRule, Protocol, SecurityGroup, SecurityGroupRef, Tags};
use crate::aws::elbv2::{
    self, AccessLogs, DefaultAction, ListenerInputs, LoadBalancerInputs, RuleInputs, TargetGroupInputs,
};
use crate::aws::route53::{Record, RecordValue, ZoneRef, fqdn};
use crate::aws::s3::BucketRef;
use crate::model::{Checker, Output, Stack, Urn};
use typed_builder::TypedBuilder;

/// An HTTPS entry point for the services of a network.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::route53::HostedZone;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
/// let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
/// let edge = AlbIngress::builder().name("edge").network(&net).zone(&zone).build().add(&mut s).unwrap();
/// edge.route(&mut s, "api", "api.acme.example", 30080, "/healthz").unwrap();
/// s.export("api", edge.url("api.acme.example"));
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct AlbIngress<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    /// The zone of every routed host; the certificate covers its apex and `*.` of it.
    zone: &'a ZoneRef,
    /// Where every request is logged: a bucket declared with `log_delivery(true)`, under
    /// `alb/<stack>-<name>/`.
    #[builder(default, setter(strip_option))]
    access_logs: Option<&'a BucketRef>,
    /// Whether a call may delete the load balancer (and so its DNS name). Default: protected
    /// when the stack is production ([`Stack::production`]); a destroy then asks to turn it off
    /// first.
    #[builder(default, setter(strip_option))]
    deletion_protection: Option<bool>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared load balancer, to route hosts through.
#[derive(Clone, Debug)]
pub struct Edge {
    name: String,
    load_balancer: Urn,
    https: Urn,
    vpc_id: Output<String>,
    zone: ZoneRef,
    security_group: SecurityGroupRef,
    certificate: CertificateRef,
}

/// Which listener priorities are taken, per load balancer (to report collisions).
#[derive(Default)]
struct Priorities(std::collections::HashMap<Urn, Vec<(i32, String)>>);

/// `base` if it fits in `max` characters, else a prefix and a hash of the whole.
fn aws_name(base: &str, max: usize) -> String {
    let clean: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    if clean.len() <= max {
        clean
    } else {
        format!("{}-{:06x}", &clean[..max - 7], crate::model::stable_hash(&clean) & 0xff_ffff)
    }
}

impl AlbIngress<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Edge> {
        let name = self.name.clone();
        let mut c = Checker::new(s.urn(elbv2::LOAD_BALANCER, &name));
        c.require(
            !self.network.is_valid() || self.network.public_subnets().len() >= 2,
            "network",
            "an application load balancer needs public subnets in at least two zones",
            "use a network of two or more zones",
        );
        if let Some(bucket) = self.access_logs {
            bucket.check_log_destination(&mut c, "access_logs", "load balancer access logs");
        }
        s.report(c.into_errors());
        let vpc = self.network.vpc();
        let sg = SecurityGroup::builder()
            .name(format!("{name}/lb"))
            .vpc(vpc)
            .description(format!("Load balancer {name}: HTTP and HTTPS from the internet"))
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        for port in [80, 443] {
            IngressRule::builder()
                .name(format!("{name}/lb-{port}"))
                .group(&sg)
                .protocol(Protocol::Tcp)
                .ports(port..=port)
                .from_cidr("0.0.0.0/0")
                .description(format!("Port {port} from the internet"))
                .build()
                .add(s)?;
        }
        let apex = self.zone.domain().trim_end_matches('.').to_string();
        let certificate = Certificate::builder()
            .name(format!("{name}/tls"))
            .domain(apex.clone())
            .alt_names(vec![format!("*.{apex}")])
            .zone(self.zone)
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        let subnets = Output::all(self.network.public_subnets().iter().map(|p| p.id())).map(|mut v| {
            v.sort();
            v
        });
        let lb_inputs = LoadBalancerInputs {
            name: aws_name(&format!("{}-{name}", s.name()), 32),
            subnet_ids: subnets,
            security_group_ids: Output::all([sg.id()]),
            internet_facing: true,
            drop_invalid_header_fields: true,
            deletion_protection: self.deletion_protection.unwrap_or_else(|| s.production()),
            access_logs: self.access_logs.map(|b| AccessLogs {
                bucket: b.name(),
                prefix: format!("alb/{}", aws_name(&format!("{}-{name}", s.name()), 200)),
            }),
            tags: self.tags.clone(),
        };
        let load_balancer = s.declare(elbv2::load_balancer_provider(), &name, lb_inputs, vec![]);
        let lb_arn = Output::<String>::reference(load_balancer.clone(), "arn");
        let https = s.declare(
            elbv2::listener_provider(),
            &format!("{name}/https"),
            ListenerInputs {
                load_balancer_arn: lb_arn.clone(),
                port: 443,
                https: true,
                certificate_arn: Some(certificate.arn()),
                ssl_policy: Some(elbv2::TLS13_POLICY.to_string()),
                default_action: DefaultAction::NotFound,
            },
            vec![],
        );
        s.declare(
            elbv2::listener_provider(),
            &format!("{name}/http"),
            ListenerInputs {
                load_balancer_arn: lb_arn,
                port: 80,
                https: false,
                certificate_arn: None,
                ssl_policy: None,
                default_action: DefaultAction::RedirectToHttps,
            },
            vec![],
        );
        Ok(Edge {
            name,
            load_balancer,
            https,
            vpc_id: vpc.id(),
            zone: self.zone.clone(),
            security_group: sg,
            certificate,
        })
    }
}

impl Edge {
    /// `https://<host>`.
    pub fn url(&self, host: &str) -> Output<String> {
        Output::known(format!("https://{host}"))
    }

    /// The load balancer's security group (to admit it into the node groups' NodePorts).
    pub fn security_group(&self) -> &SecurityGroupRef {
        &self.security_group
    }

    pub fn certificate_arn(&self) -> Output<String> {
        self.certificate.arn()
    }

    pub fn dns_name(&self) -> Output<String> {
        Output::reference(self.load_balancer.clone(), "dns_name")
    }

    /// Routes `host` to instances on `port` (a NodePort), health-checked at `health_check_path`;
    /// returns the target group's URN (its `arn` output is what node groups attach to).
    pub fn route(
        &self,
        s: &mut Stack,
        service: &str,
        host: &str,
        port: i32,
        health_check_path: &str,
    ) -> crate::Result<Urn> {
        let route_name = format!("{}/{service}", self.name);
        let mut c = Checker::new(s.urn(elbv2::RULE, &route_name));
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let zone = self.zone.domain();
        let inside =
            fqdn(&host) == zone || fqdn(&host).strip_suffix(&format!(".{zone}")).is_some_and(|l| !l.contains('.'));
        c.require(
            inside,
            "host",
            format!("`{host}` is not the apex of zone {zone} or one label below it, which the certificate covers"),
            format!("route hosts such as `api.{}`", zone.trim_end_matches('.')),
        );
        c.within("port", port, 1..=65535, "port {} is not a port", "give the service's NodePort (30000–32767)");
        c.require(
            health_check_path.starts_with('/'),
            "health_check_path",
            format!("`{health_check_path}` is not a path"),
            "give a path such as `/healthz`",
        );
        // A stable priority per host, unique on this listener.
        let mut priority = (crate::model::stable_hash(&host) % 49_000) as i32 + 1;
        let taken = s.extension::<Priorities>().0.entry(self.load_balancer.clone()).or_default();
        if let Some((_, other)) = taken.iter().find(|(_, h)| *h == host) {
            c.error("host", format!("`{host}` is already routed (to {other})"), "route each host once");
        }
        while taken.iter().any(|(p, _)| *p == priority) {
            priority = priority % 49_000 + 1;
        }
        taken.push((priority, host.clone()));
        s.report(c.into_errors());

        let tg = s.declare(
            elbv2::target_group_provider(),
            &route_name,
            TargetGroupInputs {
                // The port is in the name: a new port is a new target group, which must not
                // collide with the one it replaces.
                name: aws_name(&format!("{}-{}-{service}-{port}", s.name(), self.name), 32),
                vpc_id: self.vpc_id.clone(),
                port,
                health_check_path: health_check_path.to_string(),
                tags: Tags::new(),
            },
            vec![],
        );
        s.declare(
            elbv2::rule_provider(),
            &route_name,
            RuleInputs {
                listener_arn: Output::<String>::reference(self.https.clone(), "arn"),
                priority,
                host: host.clone(),
                target_group_arn: Output::<String>::reference(tg.clone(), "arn"),
            },
            vec![],
        );
        Record::builder()
            .name(route_name)
            .zone(&self.zone)
            .record_name(fqdn(&host))
            .value(RecordValue::AliasA {
                dns_name: Output::reference(self.load_balancer.clone(), "dns_name"),
                zone_id: Output::reference(self.load_balancer.clone(), "zone_id"),
            })
            .build()
            .add(s)?;
        Ok(tg)
    }
}

#[cfg(test)]
mod tests {
    use super::aws_name;

    #[test]
    fn names_fit_aws_limits() {
        assert_eq!(aws_name("acme-edge", 32), "acme-edge");
        let long = aws_name("a-very-long-stack-name-with-an-edge", 32);
        assert_eq!(long.len(), 32);
        assert_ne!(long, aws_name("a-very-long-stack-name-with-an-edgy", 32));
        assert_eq!(aws_name("x/y", 32), "x-y");
    }
}
