//! The built-in rules over Kubernetes objects: workloads' pods, namespaces and disruption budgets.

use super::Builtin;
use crate::model::policy::{PolicyResource, PolicyView, Severity::*, Violations};
use serde_json::Value;

pub(super) const RULES: &[Builtin] = &[
    Builtin {
        id: "FAB-K8S-1",
        severity: Mandatory,
        title: "no privileged containers, no privilege escalation",
        equivalents: &["checkov CKV_K8S_16", "checkov CKV_K8S_20"],
        check: privileged,
    },
    Builtin {
        id: "FAB-K8S-2",
        severity: Advisory,
        title: "pods run as a non-root user",
        equivalents: &["checkov CKV_K8S_23", "checkov CKV_K8S_40"],
        check: root,
    },
    Builtin {
        id: "FAB-K8S-3",
        severity: Advisory,
        title: "every container has CPU and memory limits",
        equivalents: &["checkov CKV_K8S_11", "checkov CKV_K8S_13"],
        check: limits,
    },
    Builtin {
        id: "FAB-K8S-4",
        severity: Mandatory,
        title: "images are pinned by a tag other than `latest`, or by digest",
        equivalents: &["checkov CKV_K8S_14", "checkov CKV_K8S_43"],
        check: image_pinned,
    },
    Builtin {
        id: "FAB-K8S-5",
        severity: Advisory,
        title: "every namespace of the stack has a default-deny NetworkPolicy",
        equivalents: &["checkov CKV2_K8S_6"],
        check: default_deny,
    },
    Builtin {
        id: "FAB-K8S-6",
        severity: Advisory,
        title: "a workload of more than one replica has a PodDisruptionBudget",
        equivalents: &["kube-score pod-disruption-budget"],
        check: disruption_budget,
    },
];

/// A workload: its object, namespace, pod template and where the template is.
struct Workload<'a> {
    res: &'a PolicyResource,
    namespace: &'a str,
    name: &'a str,
    template: &'a Value,
    path: &'static str,
}

fn workloads(view: &PolicyView) -> impl Iterator<Item = Workload<'_>> {
    view.resources.iter().filter(|r| r.type_name.starts_with("k8s:")).filter_map(|res| {
        let m = res.at("/manifest")?;
        let path = match m.get("kind")?.as_str()? {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template",
            "CronJob" => "/spec/jobTemplate/spec/template",
            _ => return None,
        };
        Some(Workload {
            res,
            namespace: m.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default"),
            name: m.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default(),
            template: m.pointer(path)?,
            path,
        })
    })
}

/// The containers and init containers of a pod template, with the field that names them.
fn containers<'a>(w: &Workload<'a>) -> impl Iterator<Item = (String, &'a Value)> + 'a {
    let (path, template) = (w.path, w.template);
    ["containers", "initContainers"].into_iter().flat_map(move |kind| {
        let list = template.pointer(&format!("/spec/{kind}")).and_then(Value::as_array);
        list.into_iter().flatten().enumerate().map(move |(i, c)| (format!("manifest{path}/spec/{kind}/{i}"), c))
    })
}

fn container_name(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("?")
}

fn privileged(view: &PolicyView, out: &mut Violations) {
    for w in workloads(view) {
        for (field, c) in containers(&w) {
            let sc = c.get("securityContext");
            let flag = |k: &str| sc.and_then(|s| s.get(k)).and_then(Value::as_bool);
            if flag("privileged") == Some(true) || flag("allowPrivilegeEscalation") == Some(true) {
                out.add(
                    &w.res.urn,
                    &field,
                    format!("container `{}` runs privileged or may escalate its privileges", container_name(c)),
                    "drop `privileged` and set `allowPrivilegeEscalation: false`",
                );
            }
        }
    }
}

fn root(view: &PolicyView, out: &mut Violations) {
    for w in workloads(view) {
        let pod = w.template.pointer("/spec/securityContext");
        let pod_non_root = pod.and_then(|s| s.get("runAsNonRoot")).and_then(Value::as_bool) == Some(true);
        let pod_uid = pod.and_then(|s| s.get("runAsUser")).and_then(Value::as_i64);
        for (field, c) in containers(&w) {
            let sc = c.get("securityContext");
            let non_root = sc.and_then(|s| s.get("runAsNonRoot")).and_then(Value::as_bool).unwrap_or(pod_non_root);
            let uid = sc.and_then(|s| s.get("runAsUser")).and_then(Value::as_i64).or(pod_uid);
            if !non_root || uid == Some(0) {
                out.add(
                    &w.res.urn,
                    &field,
                    format!("container `{}` may run as root", container_name(c)),
                    "set `runAsNonRoot: true` (and a non-zero `runAsUser`) in the pod's security context",
                );
            }
        }
    }
}

fn limits(view: &PolicyView, out: &mut Violations) {
    for w in workloads(view) {
        for (field, c) in containers(&w) {
            let missing: Vec<&str> = ["cpu", "memory"]
                .into_iter()
                .filter(|k| c.pointer(&format!("/resources/limits/{k}")).is_none_or(Value::is_null))
                .collect();
            if !missing.is_empty() {
                out.add(
                    &w.res.urn,
                    &format!("{field}/resources/limits"),
                    format!("container `{}` has no {} limit", container_name(c), missing.join(" or ")),
                    "give it `resources.limits` (a `WebService` sets them from `.cpu(..)` and `.memory(..)`)",
                );
            }
        }
    }
}

/// Whether an image reference names a digest, or a tag other than `latest`.
pub(crate) fn pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest")
}

fn image_pinned(view: &PolicyView, out: &mut Violations) {
    for w in workloads(view) {
        for (field, c) in containers(&w) {
            // An image known only after apply (from another resource) is checked by that resource.
            let Some(image) = c.get("image").and_then(Value::as_str) else { continue };
            if !pinned(image) {
                out.add(
                    &w.res.urn,
                    &format!("{field}/image"),
                    format!("image `{image}` of container `{}` can change under the same name", container_name(c)),
                    "name a version tag (`acme/api:1.4.2`) or a digest (`@sha256:…`)",
                );
            }
        }
    }
}

fn default_deny(view: &PolicyView, out: &mut Violations) {
    let denies = |ns: &str| {
        view.resources.iter().filter(|r| r.type_name.ends_with(":NetworkPolicy")).any(|p| {
            let m = p.at("/manifest");
            let here = m.and_then(|m| m.pointer("/metadata/namespace")).and_then(Value::as_str) == Some(ns);
            let all_pods = m.and_then(|m| m.pointer("/spec/podSelector")).is_some_and(|s| {
                s.as_object().is_some_and(|o| o.values().all(|v| v.as_object().is_some_and(|o| o.is_empty())))
            });
            let types: Vec<&str> = m
                .and_then(|m| m.pointer("/spec/policyTypes"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let no_ingress =
                m.and_then(|m| m.pointer("/spec/ingress")).is_none_or(|i| i.as_array().is_some_and(|a| a.is_empty()));
            here && all_pods && types.contains(&"Ingress") && no_ingress
        })
    };
    for ns in view.resources.iter().filter(|r| r.type_name == "k8s:v1:Namespace") {
        let Some(name) = ns.text("/manifest/metadata/name") else { continue };
        if !denies(name) {
            out.add(
                &ns.urn,
                "manifest",
                format!("namespace `{name}` admits traffic to every pod that no policy names"),
                "declare a NetworkPolicy selecting every pod with no ingress rule (`fabric::k8s::policy::default_deny(namespace)` is its manifest)",
            );
        }
    }
}

fn disruption_budget(view: &PolicyView, out: &mut Violations) {
    let budgets: Vec<(&str, &serde_json::Map<String, Value>)> = view
        .resources
        .iter()
        .filter(|r| r.type_name.ends_with(":PodDisruptionBudget"))
        .filter_map(|r| {
            Some((
                r.text("/manifest/metadata/namespace").unwrap_or("default"),
                r.at("/manifest/spec/selector/matchLabels")?.as_object()?,
            ))
        })
        .collect();
    // The lowest replica count an autoscaler keeps, by namespace/name of its target.
    let autoscaled = |ns: &str, name: &str| {
        view.resources.iter().filter(|r| r.type_name.ends_with(":HorizontalPodAutoscaler")).find_map(|h| {
            let m = h.at("/manifest")?;
            let here = m.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default") == ns
                && m.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str) == Some(name);
            here.then(|| m.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1))
        })
    };
    for w in workloads(view) {
        let kind = w.res.text("/manifest/kind").unwrap_or_default();
        if !matches!(kind, "Deployment" | "StatefulSet") {
            continue;
        }
        let replicas = w
            .res
            .at("/manifest/spec/replicas")
            .and_then(Value::as_i64)
            .or_else(|| autoscaled(w.namespace, w.name))
            .unwrap_or(1);
        if replicas <= 1 {
            continue;
        }
        let labels = w.template.pointer("/metadata/labels").and_then(Value::as_object);
        let covered = budgets.iter().any(|(ns, selector)| {
            *ns == w.namespace && labels.is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
        });
        if !covered {
            out.add(
                &w.res.urn,
                "manifest/spec/replicas",
                format!(
                    "{kind} `{}` runs {replicas} replicas and no PodDisruptionBudget keeps some up during a node drain",
                    w.name
                ),
                "declare a PodDisruptionBudget selecting its pods (`WebService` does)",
            );
        }
    }
}
