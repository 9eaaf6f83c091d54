//! The providers fabric ships, assembled for the engine: the registry of every resource type
//! (AWS types one by one, Kubernetes kinds as one family) and the context that carries a run's
//! clients. The engine (`fabric-core`) knows neither; the command line, the tests and the
//! benchmarks take both from here.

use crate::aws::Aws;
use crate::engine::provider::{Ctx, Registry};
use crate::k8s::KubeAccess;
use std::sync::Arc;

/// Every provider fabric ships.
///
/// ```
/// let registry = fabric::providers::registry();
/// assert!(registry.get("aws:ec2:Vpc").is_some());
/// assert!(registry.get("k8s:apps/v1:Deployment").is_some());
/// assert!(registry.get("acme:Widget").is_none());
/// ```
pub fn registry() -> Registry {
    let mut r = Registry::new();
    for p in crate::aws::providers() {
        r.register(p);
    }
    r.register(crate::random::provider());
    r.register_family(crate::k8s::TYPE_PREFIX, crate::k8s::provider::provider_for);
    r
}

/// The context of a run of `stack`: its AWS clients (none: a run without AWS, such as tests with
/// in-memory providers) and how it reaches Kubernetes.
pub fn context(stack: &str, aws: Option<Arc<Aws>>, kube: KubeAccess) -> Ctx {
    let ctx = Ctx::new(stack).with(kube);
    match aws {
        Some(aws) => ctx.with_shared(aws),
        None => ctx,
    }
}

#[cfg(test)]
mod tests {
    use super::registry;

    #[test]
    fn the_standard_registry_knows_every_type_the_sdk_declares() {
        // A type missing here could not be deleted once removed from a program.
        let r = registry();
        for t in [
            "aws:ec2:Vpc",
            "aws:ec2:AvailabilityZones",
            "aws:ec2:Subnet",
            "aws:ec2:InternetGateway",
            "aws:ec2:ElasticIp",
            "aws:ec2:NatGateway",
            "aws:ec2:RouteTable",
            "aws:ec2:RouteTableAssociation",
            "aws:ec2:Route",
            "aws:ec2:SecurityGroup",
            "aws:ec2:SecurityGroupIngressRule",
            "aws:iam:Role",
            "aws:iam:RolePolicyAttachment",
            "aws:iam:RolePolicy",
            "aws:route53:HostedZone",
            "aws:route53:ZoneLookup",
            "aws:route53:Record",
            "aws:rds:DbSubnetGroup",
            "aws:rds:DbInstance",
            "fabric:random:Password",
            "aws:acm:Certificate",
            "aws:acm:CertificateValidation",
            "aws:backup:Vault",
            "aws:backup:Plan",
            "aws:backup:Selection",
            "aws:elbv2:LoadBalancer",
            "aws:elbv2:TargetGroup",
            "aws:elbv2:Listener",
            "aws:elbv2:ListenerRule",
        ] {
            assert!(r.get(t).is_some(), "{t} is not in registry()");
        }
    }
}
