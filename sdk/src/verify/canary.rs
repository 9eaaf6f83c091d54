//! The rolling-upgrade canary: a small service deployed at v1 into namespace `fabric-verify`,
//! asked continuously (through the API server's service proxy, so no port is opened) while it is
//! upgraded to v2 the way fabric rolls every `WebService` (a surge pod first, none taken away
//! before its successor is Ready), then removed. It passes when no request failed.

use super::{Check, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The canary's namespace: created and deleted by the check.
pub const NAMESPACE: &str = "fabric-verify";
const MANAGER: &str = "fabric-verify";

/// What the canary runs.
#[derive(Clone, Debug)]
pub struct Canary {
    /// An HTTP server on port 8080 (`agnhost netexec`, from the Kubernetes end-to-end images).
    pub image: String,
    pub replicas: i32,
    /// How long a rollout may take.
    pub timeout: Duration,
    /// Time between two requests.
    pub interval: Duration,
}

impl Default for Canary {
    fn default() -> Self {
        Canary {
            image: "registry.k8s.io/e2e-test-images/agnhost:2.53".into(),
            replicas: 2,
            timeout: Duration::from_secs(300),
            interval: Duration::from_millis(100),
        }
    }
}

fn deployment(c: &Canary, version: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "canary", "namespace": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "fabric"}},
        "spec": {
            "replicas": c.replicas,
            "selector": {"matchLabels": {"app": "canary"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "canary", "version": version}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "canary", "image": c.image,
                        "args": ["netexec", "--http-port=8080"],
                        "env": [{"name": "CANARY_VERSION", "value": version}],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
                    }]
                }
            }
        }
    })
}

/// Applies the canary at `version` and waits until every pod runs it and is available.
async fn roll(deployments: &Api<Deployment>, c: &Canary, version: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let params = PatchParams::apply(MANAGER).force();
    let applied = deployments
        .patch("canary", &params, &Patch::Apply(deployment(c, version)))
        .await
        .map_err(|e| format!("applying the canary at {version}: {e}"))?;
    let generation = applied.metadata.generation.unwrap_or_default();
    let replicas = c.replicas;
    let done = move |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            s.observed_generation.unwrap_or_default() >= generation
                && s.updated_replicas.unwrap_or_default() == replicas
                && s.available_replicas.unwrap_or_default() == replicas
                && s.replicas.unwrap_or_default() == replicas
        })
    };
    tokio::time::timeout(c.timeout, await_condition(deployments.clone(), "canary", done))
        .await
        .map_err(|_| format!("the canary did not roll out {version} within {:?}", c.timeout))?
        .map_err(|e| format!("watching the canary: {e}"))?;
    Ok(started.elapsed())
}

/// What one canary run saw: requests sent, requests failed, how long v1 → v2 took, the first
/// failure.
type Seen = (usize, usize, Duration, Option<String>);

/// Runs the canary on the cluster `client` reaches and reports it as one check.
pub async fn run(client: kube::Client, c: &Canary) -> Check {
    let seen = attempt(client.clone(), c).await;
    let removed = remove(client).await;
    verdict(seen, removed)
}

/// The check a run makes: it passes only when requests were sent, none failed, the rollout
/// finished and the canary is gone.
fn verdict(seen: Result<Seen, String>, removed: Result<(), String>) -> Check {
    let (outcome, detail) = match (seen, removed) {
        (Ok((total, failed, took, _)), Ok(())) if failed == 0 && total > 0 => {
            (Outcome::Pass, format!("{total} requests while v1 rolled to v2 in {took:.0?}, 0 failed; canary removed"))
        }
        (Ok((total, failed, took, first)), removed) => (
            Outcome::Fail,
            format!(
                "{failed} of {total} requests failed while v1 rolled to v2 in {took:.0?}{}{}",
                first.map(|e| format!(" (first: {e})")).unwrap_or_default(),
                removed.err().map(|e| format!("; {e}")).unwrap_or_else(|| "; canary removed".into())
            ),
        ),
        (Err(e), removed) => (
            Outcome::Fail,
            format!("{e}{}", removed.err().map(|e| format!("; {e}")).unwrap_or_else(|| "; canary removed".into())),
        ),
    };
    Check::new("canary", format!("namespace {NAMESPACE}"), outcome, detail)
}

async fn attempt(client: kube::Client, c: &Canary) -> Result<Seen, String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Some(ns) = namespaces.get_opt(NAMESPACE).await.map_err(|e| format!("reading namespace {NAMESPACE}: {e}"))? {
        let ours = ns.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/managed-by")).map(String::as_str)
            == Some("fabric-verify");
        if !ours {
            return Err(format!(
                "namespace {NAMESPACE} exists and is not the canary's: rename or remove it, then verify again"
            ));
        }
    }
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "fabric-verify"}}});
    let params = PatchParams::apply(MANAGER).force();
    namespaces.patch(NAMESPACE, &params, &Patch::Apply(ns)).await.map_err(|e| format!("creating {NAMESPACE}: {e}"))?;
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "canary", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "canary"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    services
        .patch("canary", &params, &Patch::Apply(service))
        .await
        .map_err(|e| format!("the canary's service: {e}"))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    roll(&deployments, c, "v1").await?;

    // Ask continuously while v2 rolls out, and a moment after.
    let (total, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let first = Arc::new(tokio::sync::Mutex::new(None::<String>));
    let asker = {
        let (client, total, failed, stop, first, interval) =
            (client.clone(), total.clone(), failed.clone(), stop.clone(), first.clone(), c.interval);
        tokio::spawn(async move {
            let path = format!("/api/v1/namespaces/{NAMESPACE}/services/canary:80/proxy/");
            while !stop.load(Ordering::SeqCst) {
                let request = http::Request::get(&path).body(Vec::new()).expect("a GET");
                let answer = tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await;
                total.fetch_add(1, Ordering::SeqCst);
                let error = match answer {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("no answer within 5 s".to_string()),
                };
                if let Some(e) = error {
                    failed.fetch_add(1, Ordering::SeqCst);
                    first.lock().await.get_or_insert(e);
                }
                tokio::time::sleep(interval).await;
            }
        })
    };
    let rolled = roll(&deployments, c, "v2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let _ = asker.await;
    let took = rolled?;
    let first = first.lock().await.clone();
    Ok((total.load(Ordering::SeqCst), failed.load(Ordering::SeqCst), took, first))
}

/// Deletes the canary's namespace and waits until it is gone.
async fn remove(client: kube::Client) -> Result<(), String> {
    let namespaces: Api<Namespace> = Api::all(client);
    let Some(ns) = namespaces.get_opt(NAMESPACE).await.map_err(|e| format!("reading {NAMESPACE}: {e}"))? else {
        return Ok(());
    };
    let ours = ns.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/managed-by")).map(String::as_str)
        == Some("fabric-verify");
    if !ours {
        return Ok(());
    }
    let uid = ns.metadata.uid.clone().unwrap_or_default();
    namespaces
        .delete(NAMESPACE, &DeleteParams::foreground())
        .await
        .map_err(|e| format!("removing the canary ({NAMESPACE}): {e}"))?;
    tokio::time::timeout(
        Duration::from_secs(180),
        await_condition(namespaces, NAMESPACE, conditions::is_deleted(&uid)),
    )
    .await
    .map_err(|_| format!("namespace {NAMESPACE} still there after 3 minutes: delete it by hand"))?
    .map_err(|e| format!("watching {NAMESPACE} go: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_passes_only_with_requests_none_failed_and_nothing_left() {
        let took = Duration::from_secs(12);
        let pass = verdict(Ok((120, 0, took, None)), Ok(()));
        assert_eq!(pass.outcome, Outcome::Pass);
        assert_eq!(pass.detail, "120 requests while v1 rolled to v2 in 12s, 0 failed; canary removed");

        let dropped = verdict(Ok((120, 3, took, Some("503 Service Unavailable".into()))), Ok(()));
        assert_eq!(dropped.outcome, Outcome::Fail);
        assert_eq!(
            dropped.detail,
            "3 of 120 requests failed while v1 rolled to v2 in 12s (first: 503 Service Unavailable); canary removed"
        );
        assert_eq!(verdict(Ok((0, 0, took, None)), Ok(())).outcome, Outcome::Fail, "nothing was asked");
        let left = verdict(Ok((120, 0, took, None)), Err("namespace fabric-verify still there".into()));
        assert_eq!(left.outcome, Outcome::Fail);
        assert!(left.detail.ends_with("; namespace fabric-verify still there"), "{}", left.detail);
        let stuck = verdict(Err("the canary did not roll out v2 within 300s".into()), Ok(()));
        assert_eq!(
            (stuck.outcome, stuck.detail.as_str()),
            (Outcome::Fail, "the canary did not roll out v2 within 300s; canary removed")
        );
    }
}
