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
    register_missing(&mut r, missing_features(crate::aws::SERVICES, cfg!(feature = "k8s")));
    r
}

/// Registers, for each service this program was built without, how to build it in.
fn register_missing(r: &mut Registry, services: Vec<(&'static str, bool, String)>) {
    for (prefix, _, fix) in services.into_iter().filter(|(_, built, _)| !built) {
        r.register_unavailable(prefix, fix);
    }
}

/// How to build in the service of cargo feature `feature`.
fn fix(feature: &str) -> String {
    format!(
        "build the program with fabric's `{feature}` feature (Cargo.toml: fabric = {{ features = [\"{feature}\"] }})"
    )
}

/// The type prefix of each service behind a cargo feature (the AWS service table, and
/// Kubernetes), whether this program has it, and how to build it in: a program built without a
/// service it once deployed is told which feature deletes those resources.
fn missing_features(services: &[crate::aws::Service], kubernetes_built: bool) -> Vec<(&'static str, bool, String)> {
    let mut all: Vec<(&'static str, bool, String)> =
        services.iter().flat_map(|s| s.prefixes.iter().map(move |p| (*p, s.built, fix(s.feature)))).collect();
    all.push((KUBERNETES_PREFIX, kubernetes_built, fix("k8s")));
    all
}

/// `crate::k8s::TYPE_PREFIX`, named here so that the table builds without the `k8s` feature.
const KUBERNETES_PREFIX: &str = "k8s:";

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
    use super::{missing_features, register_missing, registry};
    use crate::engine::Registry;

    #[test]
    fn every_service_prefix_is_one_the_registry_serves_or_names_the_feature_of() {
        let r = registry();
        for (prefix, built, fix) in missing_features(crate::aws::SERVICES, cfg!(feature = "k8s")) {
            let type_name = format!("{prefix}Anything");
            if built {
                assert_eq!(r.unavailable(&type_name), None, "{prefix}");
            } else {
                assert_eq!(r.unavailable(&type_name), Some(fix.as_str()), "{prefix}");
            }
        }
    }

    /// A program built without some services (here: as if without `rds`, `eks` and `k8s`) is told,
    /// for a type of theirs in its state, which feature to build with — and only for those.
    #[test]
    fn a_program_built_without_a_service_names_its_feature() {
        let without: Vec<crate::aws::Service> = crate::aws::SERVICES
            .iter()
            .map(|s| crate::aws::Service { built: !matches!(s.feature, "rds" | "eks"), ..*s })
            .collect();
        let mut r = Registry::new();
        register_missing(&mut r, missing_features(&without, false));
        let fix = |t: &str| r.unavailable(t).map(String::from);
        let wanted = |f: &str| {
            format!("build the program with fabric's `{f}` feature (Cargo.toml: fabric = {{ features = [\"{f}\"] }})")
        };
        assert_eq!(fix("aws:rds:DbInstance"), Some(wanted("rds")));
        assert_eq!(fix("aws:eks:Cluster"), Some(wanted("eks")));
        assert_eq!(fix("aws:autoscaling:TargetGroupAttachment"), Some(wanted("eks")), "Auto Scaling comes with eks");
        assert_eq!(fix("k8s:apps/v1:Deployment"), Some(wanted("k8s")));
        assert_eq!(fix("aws:ec2:Vpc"), None, "built");
        assert_eq!(fix("aws:s3:Bucket"), None, "always built");
    }

    #[cfg(feature = "k8s")]
    #[test]
    fn the_kubernetes_prefix_is_the_k8s_module_s() {
        assert_eq!(super::KUBERNETES_PREFIX, crate::k8s::TYPE_PREFIX);
    }

    /// Every resource type the SDK's source declares: each `const NAME: &str = "aws:<service>:<Type>"`
    /// (or `fabric:…`) in `sdk/src`, read from the code itself, so that a type added without being
    /// registered is caught.
    fn declared_types() -> std::collections::BTreeSet<String> {
        fn walk(dir: &std::path::Path, out: &mut std::collections::BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines().map(str::trim) {
                    let Some((decl, value)) =
                        line.split_once(": &str = \"").or_else(|| line.split_once(": &'static str = \""))
                    else {
                        continue;
                    };
                    let Some(value) = value.strip_suffix("\";") else { continue };
                    let parts: Vec<&str> = value.split(':').collect();
                    let a_type = parts.len() == 3
                        && matches!(parts[0], "aws" | "fabric")
                        && parts[2].starts_with(|c: char| c.is_ascii_uppercase());
                    if decl.contains("const ") && a_type {
                        out.insert(value.to_string());
                    }
                }
            }
        }
        let mut out = std::collections::BTreeSet::new();
        walk(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")), &mut out);
        out
    }

    #[cfg(feature = "full")]
    #[test]
    fn every_type_the_sdk_declares_has_a_provider_an_import_rule_and_a_feature() {
        let declared = declared_types();
        assert!(declared.len() >= 40, "the scan found only {declared:?}");
        let r = registry();
        for t in &declared {
            // Without a provider, a type could not be deleted once it left a program.
            let p = r
                .get(t)
                .unwrap_or_else(|| panic!("{t} is declared but not in registry(): add it to its module's providers()"));
            // Importable, or said why not (the rule is the provider's own `IMPORT`, beside its code;
            // a provider without one does not compile).
            if let crate::engine::Import::Never(why) = p.import_rule() {
                assert!(why.len() > 10, "{t}: not importable, with no reason worth the name: `{why}`");
            }
            // Behind a feature of the service table, or always built (S3, fabric's own).
            let always = t.starts_with("aws:s3:") || t.starts_with("fabric:");
            assert!(
                always || crate::aws::SERVICES.iter().any(|s| s.prefixes.iter().any(|p| t.starts_with(p))),
                "{t}: no line of the service table (aws/mod.rs) serves its prefix"
            );
        }
    }
}
