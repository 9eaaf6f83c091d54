//! What every fabric workload's pods share: object metadata, requests and limits, the
//! restricted security contexts, zone spread, a disruption budget, a pinned image.

use crate::model::Checker;
use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext, TopologySpreadConstraint,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub(crate) fn meta(name: &str, namespace: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels.clone()),
        ..Default::default()
    }
}

pub(crate) fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    [("cpu".to_string(), Quantity(cpu.to_string())), ("memory".to_string(), Quantity(memory.to_string()))].into()
}

/// The restricted security context every fabric container runs with; `read_only_root`: its root
/// filesystem read-only (what it writes goes to volumes).
pub(crate) fn restricted_container(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(read_only_root),
        ..Default::default()
    }
}

pub(crate) fn restricted_pod(user: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(user),
        run_as_group: Some(user),
        fs_group: Some(user),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
        ..Default::default()
    }
}

/// At most one pod of `selector` down at a time for voluntary disruptions (node drains,
/// replacements).
pub(crate) fn disruption_budget(
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(name, namespace, labels),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(selector.clone()), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Spread over zones first, then over nodes, without blocking scheduling.
pub(crate) fn spread(selector: &BTreeMap<String, String>) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector { match_labels: Some(selector.clone()), ..Default::default() }),
            ..Default::default()
        })
        .collect()
}

/// Checks an image reference: a tag or digest, not `latest`.
pub(crate) fn check_image(c: &mut Checker, image: &str) {
    let last = image.rsplit('/').next().unwrap_or(image);
    let pinned = image.contains('@') || last.split_once(':').is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
    c.require(
        !image.is_empty() && !image.contains(char::is_whitespace) && pinned,
        "image",
        format!("`{image}` does not name a fixed version"),
        "give a tag or digest, such as `acme/api:1.4.2` (`latest` makes rollouts unrepeatable)",
    );
}
