//! The network side of a private data service (a database, a cache, a search domain): its own
//! security group, which admits its port from named groups only, the private subnets its nodes
//! run in, and the two halves of a workload's access — the nodes admitted by the group
//! ([`PrivateAccess::allow_cluster`]) and the pods' egress ([`PrivateAccess::reach`]).
//!
//! Every data service builder composes one, so that what "private, reachable only by what is
//! named" means is written once; its handle implements [`PrivateService`], so that the three
//! accessors a workload's author calls are written once too.

use super::{IngressRule, Network, Protocol, SecurityGroup, SecurityGroupRef, Tags};
use crate::model::{Checker, Output, Stack, Urn};

/// What a service's access is called, in resource names and descriptions.
#[derive(Clone, Copy, Debug)]
pub struct AccessNames {
    /// The suffix of the security group and rule names (`db` → `<name>/db`, `<name>/db-from-0`).
    pub label: &'static str,
    /// The protocol, in rule descriptions (`PostgreSQL from the nodes of cluster main`).
    pub protocol: &'static str,
}

/// A data service's security group, port and subnets.
#[derive(Clone, Debug)]
pub struct PrivateAccess {
    /// The service's main resource: errors name it, `reach` is named after it.
    #[cfg_attr(not(feature = "k8s"), allow(dead_code))]
    owner: Urn,
    #[cfg_attr(not(feature = "k8s"), allow(dead_code))]
    names: AccessNames,
    security_group: SecurityGroupRef,
    port: i32,
    #[cfg_attr(not(feature = "k8s"), allow(dead_code))]
    subnet_cidrs: Vec<ipnet::Ipv4Net>,
}

impl PrivateAccess {
    /// Declares the service's own security group in `network`'s VPC (`<name>/<label>`, described
    /// by `description`), and a rule per group of `allow_from` on `port`.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        s: &mut Stack,
        owner: Urn,
        names: AccessNames,
        network: &Network,
        port: i32,
        allow_from: &[&SecurityGroupRef],
        description: String,
        tags: &Tags,
    ) -> crate::Result<Self> {
        let name = owner.name().to_string();
        let label = names.label;
        let sg = SecurityGroup::builder()
            .name(format!("{name}/{label}"))
            .vpc(network.vpc())
            .description(description)
            .tags(tags.clone())
            .build()
            .add(s)?;
        for (i, from) in allow_from.iter().enumerate() {
            IngressRule::builder()
                .name(format!("{name}/{label}-from-{i}"))
                .group(&sg)
                .protocol(Protocol::Tcp)
                .ports(port..=port)
                .from_group(from)
                .description(format!("{} from {}", names.protocol, from.urn().name().replace('/', "-")))
                .build()
                .add(s)?;
        }
        let subnet_cidrs = network.private_subnets().iter().map(|p| p.cidr()).collect();
        Ok(PrivateAccess { owner, names, security_group: sg, port, subnet_cidrs })
    }

    /// The ids of `network`'s private subnets, sorted (so that reads compare equal): what a
    /// service's subnet group holds.
    pub fn subnet_ids(network: &Network) -> Output<Vec<String>> {
        Output::all(network.private_subnets().iter().map(|p| p.id())).map(|mut ids| {
            ids.sort();
            ids
        })
    }

    /// The service's own security group (to admit more clients with an `IngressRule`).
    pub fn security_group(&self) -> &SecurityGroupRef {
        &self.security_group
    }

    pub fn port(&self) -> i32 {
        self.port
    }

    #[cfg(feature = "k8s")]
    /// What a workload names in `.reach(..)` to connect: the service's subnets on its port, and
    /// nothing else (the service's security group admits the nodes; this is the pod's half).
    pub fn reach(&self) -> crate::k8s::policy::Reach {
        crate::k8s::policy::Reach::Cidrs {
            name: self.owner.name().to_string(),
            cidrs: self.subnet_cidrs.clone(),
            port: self.port,
        }
    }

    #[cfg(feature = "k8s")]
    /// Admits the worker nodes of `cluster` (its pods) on the service's port — and nothing more.
    pub fn allow_cluster(&self, s: &mut Stack, cluster: &crate::k8s::ClusterRef) -> crate::Result<()> {
        let Some(nodes) = cluster.nodes() else {
            let mut c = Checker::new(self.owner.clone());
            c.error(
                "allow_cluster",
                format!("cluster `{}` has no nodes fabric knows", cluster.name()),
                "admit an `EksCluster`, or its nodes' security group with `allow_from`",
            );
            s.report(c.into_errors());
            return Ok(());
        };
        s.declare(
            super::security_group::rule_provider(),
            &format!("{}/{}-from-cluster-{}", self.owner.name(), self.names.label, cluster.name()),
            super::security_group::IngressRuleInputs {
                security_group_id: self.security_group.id(),
                ip_protocol: "tcp".into(),
                from_port: self.port,
                to_port: self.port,
                cidr_ipv4: None,
                source_security_group_id: Some(nodes.security_group_id.clone()),
                description: format!("{} from the nodes of cluster {}", self.names.protocol, cluster.name()),
            },
            vec![],
        );
        Ok(())
    }
}

/// Refuses a network without two private subnets for `what` (a data service needs two zones).
pub fn require_two_zones(c: &mut Checker, network: &Network, what: &str) {
    let zones = network.private_subnets().len();
    c.require(
        !network.is_valid() || zones >= 2,
        "network",
        format!("the network has {zones} private subnets; {what} needs two zones"),
        "use a network with NAT (`Nat::Single` or `Nat::PerZone`), which has private subnets",
    );
}

/// A declared data service inside the VPC (a database, a cache, a search domain): its security
/// group, and the two halves of a workload's access. In [`crate::prelude`].
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
/// let cache = Redis::builder().name("cache").network(&net).build().add(&mut s).unwrap();
/// assert_eq!(cache.security_group().urn().name(), "cache/cache");
/// ```
pub trait PrivateService {
    /// The service's network side.
    fn private_access(&self) -> &PrivateAccess;

    /// The service's own security group (to admit more clients with an `IngressRule`).
    fn security_group(&self) -> &SecurityGroupRef {
        self.private_access().security_group()
    }

    #[cfg(feature = "k8s")]
    /// What a workload names in `.reach(..)` to connect: the service's subnets on its port, and
    /// nothing else (the service's security group admits the nodes; this is the pod's half).
    fn reach(&self) -> crate::k8s::policy::Reach {
        self.private_access().reach()
    }

    #[cfg(feature = "k8s")]
    /// Admits the worker nodes of `cluster` (its pods) on the service's port — and nothing more.
    fn allow_cluster(&self, s: &mut Stack, cluster: &crate::k8s::ClusterRef) -> crate::Result<()> {
        self.private_access().allow_cluster(s, cluster)
    }
}
