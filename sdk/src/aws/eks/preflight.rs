//! EKS's preflight: add-ons and pinned versions that exist for the cluster's Kubernetes version
//! (`eks:DescribeAddonVersions`).

use crate::aws::Aws;
use crate::aws::preflight::{Changes, Preflight, text};
use crate::model::Urn;
use std::collections::BTreeMap;

/// EKS add-ons (and pinned versions) that exist for the cluster's Kubernetes version.
pub(crate) async fn preflight(aws: &Aws, changes: &Changes<'_>, pf: &mut Preflight) {
    let addons = changes.of(super::ADDON);
    if addons.is_empty() {
        return;
    }
    // The Kubernetes version of each cluster the program declares, by name.
    let mut k8s: BTreeMap<String, String> = BTreeMap::new();
    for (_, c) in changes.of(super::CLUSTER) {
        if let (Some(name), Some(version)) = (text(c, "name"), text(c, "version")) {
            k8s.insert(name.into(), version.into());
        }
    }
    // (add-on, Kubernetes version) → the resources asking, with their pinned version.
    type Users = Vec<(Urn, Option<String>)>;
    let mut asked: BTreeMap<(String, String), Users> = BTreeMap::new();
    for (urn, a) in addons {
        let Some(name) = text(a, "name") else { continue };
        // A new cluster's name is not known yet when it is an output: use the only cluster.
        let version = text(a, "cluster_name")
            .and_then(|c| k8s.get(c))
            .or_else(|| (k8s.len() == 1).then(|| k8s.values().next()).flatten());
        let Some(version) = version else { continue };
        asked
            .entry((name.into(), version.clone()))
            .or_default()
            .push((urn.clone(), text(a, "version").map(str::to_string)));
    }
    for ((name, version), users) in asked {
        pf.checked.push(format!("EKS add-on {name} for Kubernetes {version}"));
        let found = aws.eks.describe_addon_versions().addon_name(&name).kubernetes_version(&version).send().await;
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                pf.skip(aws, &format!("EKS add-on {name}"), "DescribeAddonVersions", &e);
                continue;
            }
        };
        let versions: Vec<String> = found
            .addons()
            .iter()
            .flat_map(|a| a.addon_versions())
            .filter_map(|v| v.addon_version().map(str::to_string))
            .collect();
        for (urn, pinned) in users {
            if versions.is_empty() {
                pf.problem(
                    &urn,
                    "name",
                    format!("EKS has no add-on `{name}` for Kubernetes {version}"),
                    "check the add-on's name (`aws eks describe-addon-versions --kubernetes-version <v>` lists them)"
                        .into(),
                );
            } else if let Some(p) = pinned.filter(|p| !versions.contains(p)) {
                pf.problem(
                    &urn,
                    "version",
                    format!("add-on {name} has no version `{p}` for Kubernetes {version}"),
                    format!("pin one of {}, or leave the version unset for the default", versions.join(", ")),
                );
            }
        }
    }
}
