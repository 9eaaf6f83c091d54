//! When an applied object is ready, per kind (kube's `runtime::wait::conditions` where they
//! exist), and why it is not: the pods behind a workload and the warnings about them.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::wait::{Condition, conditions};
use serde_json::Value;

/// Whether an object is ready, what it is waiting for, or why it never will be.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Waiting(String),
    /// The controller gave up: a Deployment whose rollout passed its progress deadline
    /// (`Progressing=False`, `ProgressDeadlineExceeded`). Waiting longer changes nothing.
    Failed(String),
}

/// How long a StatefulSet or DaemonSet may go without progress (its readiness unchanged) before
/// its rollout counts as failed: the annotation `fabric.dev/progress-deadline-seconds`, or the
/// 600 s Kubernetes gives a Deployment by default. A Deployment's own `progressDeadlineSeconds`
/// is its controller's to enforce (see [`Readiness::Failed`]); other kinds have none.
pub fn stall_limit(kind: &str, object: &Value) -> Option<std::time::Duration> {
    if !matches!(kind, "StatefulSet" | "DaemonSet") {
        return None;
    }
    let annotated = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PROGRESS_DEADLINE_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok());
    Some(std::time::Duration::from_secs(annotated.unwrap_or(600)))
}

/// The annotation that gives a StatefulSet or DaemonSet its progress deadline, in seconds.
pub const PROGRESS_DEADLINE_ANNOTATION: &str = "fabric.dev/progress-deadline-seconds";

/// A Deployment's rollout that its controller has given up on, with the controller's message.
/// (The controller keeps that verdict until it sees progress, even over a new spec: the watch in
/// `k8s::provider` counts it only once the deadline has passed since fabric's apply.)
fn deadline_exceeded(object: &Value) -> Option<String> {
    let d: Deployment = typed(object)?;
    let condition = d.status?.conditions?.into_iter().find(|c| c.type_ == "Progressing")?;
    (condition.status == "False" && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")).then(|| {
        let deadline = d.spec.and_then(|s| s.progress_deadline_seconds).unwrap_or(600);
        format!(
            "the rollout made no progress within its deadline of {deadline} s (ProgressDeadlineExceeded: {})",
            condition.message.unwrap_or_default()
        )
    })
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

/// The controller has seen the latest spec.
fn observed(v: &Value) -> Result<(), String> {
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let seen = v.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
    if seen < generation { Err(format!("the controller has not seen generation {generation} yet")) } else { Ok(()) }
}

/// Readiness of `object` (its JSON form) of `kind`. Kinds without a notion of readiness are
/// ready once applied.
pub fn readiness(kind: &str, object: &Value) -> Readiness {
    if kind == "Deployment"
        && observed(object).is_ok()
        && let Some(why) = deadline_exceeded(object)
    {
        return Readiness::Failed(why);
    }
    let waiting = |why: String| Readiness::Waiting(why);
    let check = || -> Result<(), String> {
        match kind {
            "Deployment" => {
                observed(object)?;
                let d: Deployment = typed(object).ok_or("unreadable Deployment")?;
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let st = d.status.clone().unwrap_or_default();
                let (updated, available, total) =
                    (st.updated_replicas.unwrap_or(0), st.available_replicas.unwrap_or(0), st.replicas.unwrap_or(0));
                if updated < want || available < want || total > want {
                    return Err(format!(
                        "{updated} of {want} replicas updated, {available} available, {total} running in all"
                    ));
                }
                if !conditions::is_deployment_completed().matches_object(Some(&d)) {
                    return Err("the rollout has not completed (Progressing: NewReplicaSetAvailable)".into());
                }
                Ok(())
            }
            "StatefulSet" => {
                observed(object)?;
                let s: StatefulSet = typed(object).ok_or("unreadable StatefulSet")?;
                let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let st = s.status.clone().unwrap_or_default();
                let (ready, updated) = (st.ready_replicas.unwrap_or(0), st.updated_replicas.unwrap_or(0));
                if ready < want || updated < want || st.current_revision != st.update_revision {
                    return Err(format!("{ready} of {want} replicas ready, {updated} updated"));
                }
                Ok(())
            }
            "DaemonSet" => {
                observed(object)?;
                let d: DaemonSet = typed(object).ok_or("unreadable DaemonSet")?;
                let st = d.status.unwrap_or_default();
                if st.number_ready < st.desired_number_scheduled
                    || st.updated_number_scheduled.unwrap_or(0) < st.desired_number_scheduled
                {
                    return Err(format!("{} of {} pods ready", st.number_ready, st.desired_number_scheduled));
                }
                Ok(())
            }
            "CustomResourceDefinition" => {
                let crd: CustomResourceDefinition = typed(object).ok_or("unreadable CRD")?;
                if conditions::is_crd_established().matches_object(Some(&crd)) {
                    Ok(())
                } else {
                    Err("not established yet".into())
                }
            }
            "Job" => {
                let job: Job = typed(object).ok_or("unreadable Job")?;
                if conditions::is_job_completed().matches_object(Some(&job)) {
                    Ok(())
                } else {
                    Err("not completed yet".into())
                }
            }
            "Service" => {
                let svc: Service = typed(object).ok_or("unreadable Service")?;
                if conditions::is_service_loadbalancer_provisioned().matches_object(Some(&svc)) {
                    Ok(())
                } else {
                    Err("its load balancer has no address yet".into())
                }
            }
            _ => Ok(()),
        }
    };
    match check() {
        Ok(()) => Readiness::Ready,
        Err(why) => waiting(why),
    }
}

/// Why a workload is not ready: each pod that is not ready (phase, container waiting and
/// termination reasons) and the latest warning events about the object and its pods.
pub async fn diagnose(client: &kube::Client, object: &Value) -> String {
    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let mut lines = Vec::new();
    let mut involved = vec![name.to_string()];
    let selector = object.pointer("/spec/selector/matchLabels").and_then(Value::as_object).map(|m| {
        m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(",")
    });
    if let Some(selector) = selector.filter(|s| !s.is_empty()) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        if let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await {
            for pod in list.items {
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                let status = pod.status.unwrap_or_default();
                let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
                if ready {
                    continue;
                }
                let mut why = vec![format!("phase {}", status.phase.unwrap_or_else(|| "Unknown".into()))];
                for cs in status.container_statuses.iter().flatten() {
                    let state = cs.state.clone().unwrap_or_default();
                    if let Some(w) = state.waiting {
                        why.push(format!(
                            "container {}: {} {}",
                            cs.name,
                            w.reason.unwrap_or_default(),
                            w.message.unwrap_or_default()
                        ));
                    }
                    if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                        why.push(format!(
                            "container {} last exited {} ({})",
                            cs.name,
                            t.exit_code,
                            t.reason.clone().unwrap_or_default()
                        ));
                    }
                }
                lines.push(format!("pod {pod_name}: {}", why.join("; ").trim_end()));
                involved.push(pod_name);
            }
        }
    }
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = events.list(&ListParams::default().fields("type=Warning")).await {
        let mut warnings: Vec<Event> = list
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_ref().is_some_and(|n| involved.contains(n)))
            .collect();
        warnings.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
        for e in warnings.iter().rev().take(5).rev() {
            lines.push(format!(
                "event {} {}: {}",
                e.involved_object.name.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            ));
        }
    }
    if lines.is_empty() { String::new() } else { format!("\n      {}", lines.join("\n      ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, observed: i64, updated: i32, available: i32, total: i32, done: bool) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "generation": generation},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
                "replicas": total, "conditions": [{"type": "Progressing", "status": "True",
                "reason": if done { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }}]}})
    }

    #[test]
    fn deployments_are_ready_when_the_rollout_is_done() {
        assert_eq!(readiness("Deployment", &deployment(2, 2, 3, 3, 3, true)), Readiness::Ready);
        let stale = readiness("Deployment", &deployment(3, 2, 3, 3, 3, true));
        assert_eq!(stale, Readiness::Waiting("the controller has not seen generation 3 yet".into()));
        assert_eq!(
            readiness("Deployment", &deployment(2, 2, 2, 3, 4, false)),
            Readiness::Waiting("2 of 3 replicas updated, 3 available, 4 running in all".into())
        );
        assert!(matches!(readiness("Deployment", &deployment(2, 2, 3, 3, 3, false)), Readiness::Waiting(_)));
    }

    #[test]
    fn a_rollout_past_its_progress_deadline_has_failed_once_the_controller_saw_the_spec() {
        let mut d = deployment(2, 2, 1, 3, 4, false);
        d["spec"]["progressDeadlineSeconds"] = json!(75);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-5d4\" has timed out progressing."}]);
        assert_eq!(
            readiness("Deployment", &d),
            Readiness::Failed(
                "the rollout made no progress within its deadline of 75 s (ProgressDeadlineExceeded: \
                 ReplicaSet \"web-5d4\" has timed out progressing.)"
                    .into()
            )
        );
        // A new spec the controller has not seen yet: the old verdict does not hold for it.
        d["metadata"]["generation"] = json!(3);
        assert!(matches!(readiness("Deployment", &d), Readiness::Waiting(_)));
    }

    #[test]
    fn stateful_sets_and_daemon_sets_stall_after_their_annotated_deadline_or_600_s() {
        let plain = json!({"metadata": {"name": "db"}});
        assert_eq!(stall_limit("StatefulSet", &plain), Some(std::time::Duration::from_secs(600)));
        let annotated = json!({"metadata": {"annotations": {PROGRESS_DEADLINE_ANNOTATION: "90"}}});
        assert_eq!(stall_limit("DaemonSet", &annotated), Some(std::time::Duration::from_secs(90)));
        assert_eq!(stall_limit("Deployment", &annotated), None, "the Deployment controller enforces its own");
        assert_eq!(stall_limit("ConfigMap", &plain), None);
    }

    #[test]
    fn statefulsets_wait_for_every_replica_of_the_new_revision() {
        let sts = |ready: i32, cur: &str| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "m", "generation": 1},
                "spec": {"replicas": 2, "selector": {}, "serviceName": "m", "template": {}},
                "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": ready, "updatedReplicas": 2,
                    "currentRevision": cur, "updateRevision": "r2"}})
        };
        assert_eq!(readiness("StatefulSet", &sts(2, "r2")), Readiness::Ready);
        assert!(matches!(readiness("StatefulSet", &sts(1, "r2")), Readiness::Waiting(_)));
        assert!(matches!(readiness("StatefulSet", &sts(2, "r1")), Readiness::Waiting(_)));
    }

    #[test]
    fn kinds_without_readiness_are_ready_at_once() {
        assert_eq!(readiness("ConfigMap", &json!({"metadata": {"name": "c"}})), Readiness::Ready);
        let cluster_ip =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(readiness("Service", &cluster_ip), Readiness::Ready);
    }
}
