//! The providers fabric ships, assembled for the engine: the registry of every resource type
//! (AWS types one by one, Kubernetes kinds as one family) and the context that carries a run's
//! clients. The engine (`fabric-core`) knows neither; the command line, the tests and the
//! benchmarks take both from here.

use crate::aws::Aws;
use crate::engine::provider::{Ctx, Registry};
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
    #[cfg(feature = "k8s")]
    r.register_family(crate::k8s::TYPE_PREFIX, crate::k8s::provider::provider_for);
    for (prefix, fix) in MISSING_FEATURES.iter().filter(|(prefix, _)| !built(prefix)) {
        r.register_unavailable(prefix, fix);
    }
    r
}

/// How to build in the service of cargo feature `$feature`.
macro_rules! fix {
    ($feature:literal) => {
        concat!(
            "build the program with fabric's `",
            $feature,
            "` feature (Cargo.toml: fabric = { features = [\"",
            $feature,
            "\"] })"
        )
    };
}

/// The type prefix of each service behind a cargo feature, and how to build it in: a program
/// built without a service it once deployed is told which feature deletes those resources.
const MISSING_FEATURES: &[(&str, &str)] = &[
    ("aws:ec2:", fix!("ec2")),
    ("aws:iam:", fix!("iam")),
    ("aws:route53:", fix!("route53")),
    ("aws:acm:", fix!("acm")),
    ("aws:elbv2:", fix!("elbv2")),
    ("aws:rds:", fix!("rds")),
    ("aws:backup:", fix!("backup")),
    ("aws:eks:", fix!("eks")),
    ("aws:autoscaling:", fix!("eks")),
    ("aws:kms:", fix!("kms")),
    ("k8s:", fix!("k8s")),
];

/// Whether the service of type prefix `prefix` is built into this program.
fn built(prefix: &str) -> bool {
    match prefix {
        "aws:ec2:" => cfg!(feature = "ec2"),
        "aws:iam:" => cfg!(feature = "iam"),
        "aws:route53:" => cfg!(feature = "route53"),
        "aws:acm:" => cfg!(feature = "acm"),
        "aws:elbv2:" => cfg!(feature = "elbv2"),
        "aws:rds:" => cfg!(feature = "rds"),
        "aws:backup:" => cfg!(feature = "backup"),
        "aws:eks:" | "aws:autoscaling:" => cfg!(feature = "eks"),
        "aws:kms:" => cfg!(feature = "kms"),
        "k8s:" => cfg!(feature = "k8s"),
        _ => true,
    }
}

/// The context of a run of `stack` with its AWS clients (none: a run without AWS, such as tests
/// with in-memory providers). Kubernetes is reached as the kubeconfig of each cluster says unless
/// the caller adds its own [`crate::k8s::KubeAccess`] with `.with(access)`.
pub fn context(stack: &str, aws: Option<Arc<Aws>>) -> Ctx {
    let ctx = Ctx::new(stack);
    match aws {
        Some(aws) => ctx.with_shared(aws),
        None => ctx,
    }
}

#[cfg(test)]
mod tests {
    use super::{MISSING_FEATURES, built, registry};

    #[test]
    fn every_service_prefix_is_one_the_registry_serves_or_names_the_feature_of() {
        let r = registry();
        for (prefix, fix) in MISSING_FEATURES {
            let type_name = format!("{prefix}Anything");
            if built(prefix) {
                assert_eq!(r.unavailable(&type_name), None, "{prefix}");
            } else {
                assert_eq!(r.unavailable(&type_name), Some(*fix), "{prefix}");
            }
        }
    }

    #[cfg(feature = "full")]
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
