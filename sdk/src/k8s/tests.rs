//! Apply, await, prune and read against kube's mock service: every request the provider makes is
//! asserted (method, path, query, content type, body), and answered as an API server would.

use super::*;
use crate::engine::provider::Ctx;
use crate::engine::{Engine, plan};
use crate::state::{LocalBackend, State, StateStore};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::Arc;
use tower_test::mock::Handle;

type Mock = Handle<Request<Body>, Response<Body>>;

/// One request as the server saw it.
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

async fn next(handle: &mut Mock, status: u16, answer: Value) -> Seen {
    let (req, send) = handle.next_request().await.expect("a request");
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let content_type = req.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
        .unwrap();
    send.send_response(response);
    Seen { method, path, query, content_type, body }
}

/// Awaits the provider call `call`, failing the test if it sends another request before it ends
/// (such a request would otherwise wait for an answer forever, hanging the test instead of
/// failing it).
async fn ends_without_another_request<T>(server: &mut Mock, call: tokio::task::JoinHandle<T>) -> T {
    tokio::select! {
        biased;
        out = call => out.unwrap(),
        req = server.next_request() => match req {
            Some((r, _)) => panic!("the call sent {} {} as well", r.method(), r.uri().path()),
            None => panic!("the client went away before the call ended"),
        },
    }
}

/// Answers the GET a create sends first (is an object of that name already there?) with 404.
async fn absent(handle: &mut Mock) {
    let get = next(handle, 404, status(404, "NotFound", "not found")).await;
    assert_eq!(get.method, "GET", "a create first looks for an object of the same name");
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

/// A list answer (at resourceVersion 10) holding `items`.
fn list_of(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items})
}

/// A watch event of `object`, at resourceVersion 11.
fn event(kind: &str, mut object: Value) -> Value {
    object["metadata"]["resourceVersion"] = json!("11");
    json!({"type": kind, "object": object})
}

/// Answers the next request, a WATCH, with `events` (one JSON line each); gives its query.
async fn watch_events(handle: &mut Mock, events: &[(&str, Value)]) -> String {
    let (req, send) = handle.next_request().await.expect("a watch");
    assert_eq!(req.method(), "GET");
    let query = req.uri().query().unwrap_or_default().to_string();
    let lines: String = events.iter().map(|(kind, object)| format!("{}\n", event(kind, object.clone()))).collect();
    let response = Response::builder().status(200).header("content-type", "application/json");
    send.send_response(response.body(Body::from(lines.into_bytes())).unwrap());
    query
}

fn ctx_with_mock(stack: &str) -> (Ctx, Mock) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let access = KubeAccess::with_client(client);
    (crate::providers::context(stack, None).with(access), handle)
}

/// The inputs of the single object `manifest` declares in stack `stack`.
fn inputs_of(stack: &str, manifest: Value) -> (crate::model::Urn, Value) {
    let mut s = Stack::new(stack);
    let r = Manifest::new(manifest).add(&mut s, &ClusterRef::kubeconfig("kind")).unwrap();
    let graph = s.finish().unwrap();
    let inputs = graph.get(r.urn()).unwrap().inputs(&crate::model::NothingKnown).unwrap();
    (r.urn().clone(), inputs)
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
}

fn live_deployment(generation: i64, observed: i64, ready: i32, done: bool) -> Value {
    let mut d = deployment();
    d["metadata"]["uid"] = json!("uid-1");
    d["metadata"]["generation"] = json!(generation);
    d["metadata"]["labels"] = json!({LABEL_MANAGED_BY: "fabric", LABEL_STACK: "demo"});
    d["status"] = json!({"observedGeneration": observed, "replicas": 2, "updatedReplicas": ready,
        "availableReplicas": ready, "conditions": [{"type": "Progressing", "status": "True",
        "reason": if done { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }}]});
    d
}

#[tokio::test]
async fn apply_is_a_server_side_apply_patch_then_watches_until_the_rollout_is_done() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let (urn, inputs) = inputs_of("demo", deployment());
    let provider = provider::provider_for(urn.type_name());
    let call = tokio::spawn(async move { provider.create(&ctx, &urn, &inputs).await });

    absent(&mut server).await;
    let patch = next(&mut server, 200, live_deployment(1, 0, 0, false)).await;
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, "/apis/apps/v1/namespaces/apps/deployments/web");
    assert!(patch.query.contains("fieldManager=fabric"), "{}", patch.query);
    assert!(!patch.query.contains("force=true"), "no force unless asked: {}", patch.query);
    assert_eq!(patch.content_type, "application/apply-patch+yaml");
    assert_eq!(patch.body["metadata"]["labels"], json!({LABEL_MANAGED_BY: "fabric", LABEL_STACK: "demo"}));
    assert_eq!(patch.body["spec"]["replicas"], 2);

    // Not ready yet: the provider watches that one object (a LIST, then a WATCH from its
    // resourceVersion) until the rollout completes.
    let list = next(&mut server, 200, list_of("DeploymentList", vec![live_deployment(1, 1, 1, false)])).await;
    assert_eq!((list.method.as_str(), list.path.as_str()), ("GET", "/apis/apps/v1/namespaces/apps/deployments"));
    assert!(list.query.contains("fieldSelector=metadata.name%3Dweb"), "{}", list.query);
    let watch = watch_events(&mut server, &[("MODIFIED", live_deployment(1, 1, 2, true))]).await;
    assert!(watch.contains("watch=true") && watch.contains("resourceVersion=10"), "{watch}");

    let outputs = call.await.unwrap().unwrap();
    assert_eq!(outputs["uid"], "uid-1");
    assert_eq!(outputs["kind"], "Deployment");
}

#[tokio::test]
async fn conflicts_are_explained_and_force_conflicts_takes_over() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let (urn, inputs) = inputs_of(
        "demo",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "apps"}, "data": {"a": "1"}}),
    );
    let provider = provider::provider_for(urn.type_name());
    let (u, i, p) = (urn.clone(), inputs.clone(), provider.clone());
    let call = tokio::spawn(async move { p.create(&ctx, &u, &i).await });
    absent(&mut server).await;
    next(
        &mut server,
        409,
        status(409, "Conflict", "Apply failed with 1 conflict: conflict with \"kubectl-edit\": .data.a"),
    )
    .await;
    let err = call.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("ConfigMap apps/cfg: server-side apply conflict"), "{err}");
    assert!(err.contains("kubectl-edit") && err.contains("--force-conflicts"), "{err}");

    let (service, mut server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut access = KubeAccess::with_client(kube::Client::new(service, "default"));
    access.force_conflicts = true;
    let ctx = crate::providers::context("demo", None).with(access);
    let call = tokio::spawn(async move { provider.create(&ctx, &urn, &inputs).await });
    let mut live =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "apps", "uid": "u2"}});
    absent(&mut server).await;
    let patch = next(&mut server, 200, live.take()).await;
    assert!(patch.query.contains("force=true") && patch.query.contains("fieldManager=fabric"), "{}", patch.query);
    // A ConfigMap is ready once applied: no polling.
    assert_eq!(call.await.unwrap().unwrap()["uid"], "u2");
}

#[tokio::test]
async fn a_create_never_takes_over_an_object_that_is_not_this_stacks() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let (urn, inputs) = inputs_of("demo", deployment());
    let provider = provider::provider_for(urn.type_name());
    let call = tokio::spawn(async move { provider.create(&ctx, &urn, &inputs).await });
    let mut theirs = live_deployment(1, 1, 2, true);
    theirs["metadata"]["labels"] = json!({LABEL_MANAGED_BY: "Helm"});
    let get = next(&mut server, 200, theirs).await;
    assert_eq!((get.method.as_str(), get.path.as_str()), ("GET", "/apis/apps/v1/namespaces/apps/deployments/web"));
    let err = ends_without_another_request(&mut server, call).await.unwrap_err().to_string();
    assert!(err.contains("Deployment apps/web already exists") && err.contains("managed by Helm"), "{err}");
    assert!(err.contains("fabric.dev/stack=demo"), "says how to bring it under the stack: {err}");
}

#[tokio::test]
async fn delete_leaves_an_object_that_is_another_one_than_the_one_applied() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let outputs = json!({"cluster": {"name": "kind", "via": "kubeconfig"}, "api_version": "apps/v1",
        "kind": "Deployment", "namespace": "apps", "name": "web", "uid": "uid-old"});
    let urn = crate::model::Urn::new("demo", "k8s:apps/v1:Deployment", "kind/apps/web");
    let provider = provider::provider_for(urn.type_name());
    let call = tokio::spawn(async move { provider.delete(&ctx, &urn, &json!({}), &outputs).await });
    // Same name and labels, but another object (uid-1): not the one this state recorded.
    let get = next(&mut server, 200, live_deployment(1, 1, 2, true)).await;
    assert_eq!((get.method.as_str(), get.path.as_str()), ("GET", "/apis/apps/v1/namespaces/apps/deployments/web"));
    ends_without_another_request(&mut server, call).await.expect("left in place, without an error");
}

/// A PodDisruptionBudget `web` under `api_version`, as a program declares it.
fn pdb(api_version: &str) -> Value {
    json!({"apiVersion": api_version, "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "apps"}, "spec": {"minAvailable": 1}})
}

fn pdb_program(api_version: &str) -> Arc<crate::model::Graph> {
    let mut s = Stack::new("demo");
    Manifest::new(pdb(api_version)).add(&mut s, &ClusterRef::kubeconfig("kind")).unwrap();
    Arc::new(s.finish().unwrap())
}

/// The state record of the PDB as deployed earlier under `policy/v1beta1` (uid `u1`).
fn deployed_v1beta1_pdb() -> (crate::model::Urn, crate::state::Record) {
    let old = pdb_program("policy/v1beta1");
    let node = &old.nodes()[0];
    let record = crate::state::Record {
        type_name: node.type_name().to_string(),
        inputs: node.inputs(&crate::model::NothingKnown).unwrap(),
        outputs: json!({"cluster": {"name": "kind", "via": "kubeconfig"}, "api_version": "policy/v1beta1",
            "kind": "PodDisruptionBudget", "namespace": "apps", "name": "web", "uid": "u1"}),
        deps: vec![],
        options: Default::default(),
    };
    (node.urn.clone(), record)
}

#[test]
fn an_api_version_change_keeps_the_object_and_forgets_the_old_urn() {
    let mut state = crate::state::State::new("demo");
    let (urn, record) = deployed_v1beta1_pdb();
    state.resources.insert(urn, record);
    let p = plan(&pdb_program("policy/v1"), &state, &crate::providers::registry()).unwrap();
    let steps: Vec<(&str, &str, Option<String>)> = p
        .steps
        .iter()
        .map(|s| (s.type_name.as_str(), s.op.as_str(), s.moved_to.as_ref().map(|u| u.type_name().to_string())))
        .collect();
    assert_eq!(
        steps,
        [
            ("k8s:policy/v1:PodDisruptionBudget", "create", None),
            ("k8s:policy/v1beta1:PodDisruptionBudget", "delete", Some("k8s:policy/v1:PodDisruptionBudget".into())),
        ]
    );
    let text = crate::engine::render::render_plan(&p);
    assert!(text.contains("forget (the same object is now"), "{text}");
}

#[tokio::test]
async fn secrets_reach_the_cluster_only_in_the_apply_request() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let (urn, inputs) = inputs_of(
        "demo",
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "apps"}, "stringData": {"POSTGRES_URL": "postgres://u:pw@db/app"}}),
    );
    assert_eq!(inputs["manifest"]["stringData"]["POSTGRES_URL"], json!({"$secret": "postgres://u:pw@db/app"}));
    let provider = provider::provider_for(urn.type_name());
    let call = tokio::spawn(async move { provider.create(&ctx, &urn, &inputs).await });
    absent(&mut server).await;
    let patch = next(
        &mut server,
        200,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "apps", "uid": "s1"}}),
    )
    .await;
    assert_eq!(patch.body["stringData"]["POSTGRES_URL"], "postgres://u:pw@db/app");
    let outputs = call.await.unwrap().unwrap();
    assert!(!outputs.to_string().contains("pw@"), "outputs keep no secret: {outputs}");
}

#[tokio::test]
async fn a_rollout_that_times_out_says_which_pods_are_stuck_and_why() {
    let (service, mut server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut access = KubeAccess::with_client(kube::Client::new(service, "default"));
    access.timeout_scale = 0.00005; // 600 s → 30 ms
    let ctx = crate::providers::context("demo", None).with(access);
    let (urn, inputs) = inputs_of("demo", deployment());
    let provider = provider::provider_for(urn.type_name());
    let call = tokio::spawn(async move { provider.create(&ctx, &urn, &inputs).await });
    absent(&mut server).await;
    let patch = next(&mut server, 200, live_deployment(1, 1, 0, false)).await;
    assert_eq!(patch.method, "PATCH");
    // The watch sees "not ready" until the provider gives up, reads the object once more and
    // looks at the pods.
    loop {
        let (req, send) = server.next_request().await.unwrap();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        if path == "/apis/apps/v1/namespaces/apps/deployments" {
            let answer = if query.contains("watch=true") {
                event("MODIFIED", live_deployment(1, 1, 0, false))
            } else {
                list_of("DeploymentList", vec![live_deployment(1, 1, 0, false)])
            };
            send.send_response(json_response(answer));
            continue;
        }
        if path == "/api/v1/namespaces/apps/pods" {
            assert_eq!(req.uri().query().unwrap_or_default(), "&labelSelector=app%3Dweb");
            send.send_response(json_response(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "web-7f9c-x2"}, "status": {"phase": "Pending",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [{"name": "web", "image": "nginx:1.27", "imageID": "", "ready": false,
                        "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff",
                        "message": "Back-off pulling image \"nginx:1.27\""}}}]}}]})));
            break;
        }
        assert_eq!((req.method().as_str(), path.as_str()), ("GET", "/apis/apps/v1/namespaces/apps/deployments/web"));
        send.send_response(json_response(live_deployment(1, 1, 0, false)));
    }
    let events = next(
        &mut server,
        200,
        json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [
        {"metadata": {"name": "e1"}, "involvedObject": {"name": "web-7f9c-x2"}, "reason": "Failed", "type": "Warning",
         "message": "Failed to pull image \"nginx:1.27\": not found"}]}),
    )
    .await;
    assert_eq!(events.path, "/api/v1/namespaces/apps/events");
    assert!(events.query.contains("fieldSelector=type%3DWarning"), "{}", events.query);
    let err = call.await.unwrap().unwrap_err().to_string();
    assert!(err.starts_with("Deployment apps/web: not ready after"), "{err}");
    assert!(err.contains("0 of 2 replicas updated"), "{err}");
    assert!(err.contains("pod web-7f9c-x2: phase Pending; container web: ImagePullBackOff"), "{err}");
    assert!(err.contains("event web-7f9c-x2 Failed: Failed to pull image"), "{err}");
}

/// A rollback to a ReplicaSet that is still up: the controller keeps the earlier rollout's
/// `ProgressDeadlineExceeded` (it even re-stamps it) until it sees progress. That verdict is not
/// this rollout's: the provider waits on, and the rollout completes.
#[tokio::test]
async fn an_earlier_rollouts_deadline_verdict_does_not_fail_the_next_rollout() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let (urn, inputs) = inputs_of("demo", deployment());
    let provider = provider::provider_for(urn.type_name());
    let call = tokio::spawn(async move { provider.create(&ctx, &urn, &inputs).await });
    let mut judged = live_deployment(2, 2, 0, false);
    judged["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"web-bad\" has timed out progressing.", "lastUpdateTime": "2099-01-01T00:00:00Z"}]);
    absent(&mut server).await;
    next(&mut server, 200, judged.clone()).await;
    let list = next(&mut server, 200, list_of("DeploymentList", vec![judged])).await;
    assert_eq!(list.method, "GET");
    watch_events(&mut server, &[("MODIFIED", live_deployment(2, 2, 2, true))]).await;
    let outputs = call.await.unwrap().unwrap();
    assert_eq!(outputs["uid"], "uid-1");
}

/// A StatefulSet has no progress deadline of its own: one whose readiness does not move for its
/// `fabric.dev/progress-deadline-seconds` fails the step then, with its pods' reasons, long
/// before the step's timeout (10 min here).
#[tokio::test]
async fn a_stateful_set_that_makes_no_progress_fails_at_its_deadline_not_its_timeout() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let mut manifest = deployment();
    manifest["kind"] = json!("StatefulSet");
    manifest["metadata"]["annotations"] = json!({crate::k8s::ready::PROGRESS_DEADLINE_ANNOTATION: "1"});
    let (urn, inputs) = inputs_of("demo", manifest.clone());
    let provider = provider::provider_for(urn.type_name());
    let started = std::time::Instant::now();
    let call = tokio::spawn(async move { provider.create(&ctx, &urn, &inputs).await });
    let mut stuck = manifest;
    stuck["metadata"]["uid"] = json!("uid-1");
    stuck["metadata"]["generation"] = json!(1);
    stuck["metadata"]["labels"] = json!({LABEL_MANAGED_BY: "fabric", LABEL_STACK: "demo"});
    stuck["status"] = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2,
        "currentRevision": "web-1", "updateRevision": "web-1"});
    absent(&mut server).await;
    let patch = next(&mut server, 200, stuck.clone()).await;
    assert_eq!(patch.path, "/apis/apps/v1/namespaces/apps/statefulsets/web");
    // The watch keeps seeing one of two pods ready, until the provider stops it after 1 s.
    loop {
        let (req, send) = server.next_request().await.unwrap();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        if path == "/apis/apps/v1/namespaces/apps/statefulsets" {
            let answer = if query.contains("watch=true") {
                event("MODIFIED", stuck.clone())
            } else {
                list_of("StatefulSetList", vec![stuck.clone()])
            };
            send.send_response(json_response(answer));
            continue;
        }
        if path == "/api/v1/namespaces/apps/pods" {
            send.send_response(json_response(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "web-1"}, "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [{"name": "web", "image": "nginx:1.27", "imageID": "", "ready": false,
                        "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff",
                        "message": "back-off 40s restarting failed container"}}}]}}]})));
            break;
        }
        assert_eq!((req.method().as_str(), path.as_str()), ("GET", "/apis/apps/v1/namespaces/apps/statefulsets/web"));
        send.send_response(json_response(stuck.clone()));
    }
    next(&mut server, 200, json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []})).await;
    let err = call.await.unwrap().unwrap_err().to_string();
    assert!(
        err.starts_with("StatefulSet apps/web: the rollout failed: no progress in 1s (1 of 2 replicas ready"),
        "{err}"
    );
    assert!(err.contains("pod web-1: phase Running; container web: CrashLoopBackOff"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "stopped at the deadline, not the timeout");
}

fn json_response(v: Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&v).unwrap()))
        .unwrap()
}

#[tokio::test]
async fn delete_checks_the_labels_then_deletes_that_very_object_and_waits() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let outputs = json!({"cluster": {"name": "kind", "via": "kubeconfig"}, "api_version": "apps/v1",
        "kind": "Deployment", "namespace": "apps", "name": "web", "uid": "uid-1"});
    let urn = crate::model::Urn::new("demo", "k8s:apps/v1:Deployment", "kind/apps/web");
    let provider = provider::provider_for(urn.type_name());
    let (p, u, o, c) = (provider.clone(), urn.clone(), outputs.clone(), ctx.clone());
    let call = tokio::spawn(async move { p.delete(&c, &u, &json!({"ready_timeout_secs": 5}), &o).await });
    let get = next(&mut server, 200, live_deployment(1, 1, 2, true)).await;
    assert_eq!((get.method.as_str(), get.path.as_str()), ("GET", "/apis/apps/v1/namespaces/apps/deployments/web"));
    let delete = next(&mut server, 200, live_deployment(1, 1, 2, true)).await;
    assert_eq!(delete.method, "DELETE");
    assert_eq!(delete.body["propagationPolicy"], "Background");
    assert_eq!(delete.body["preconditions"]["uid"], "uid-1");
    // Then it watches that object until it is gone.
    let list = next(&mut server, 200, list_of("DeploymentList", vec![live_deployment(1, 1, 2, true)])).await;
    assert_eq!((list.method.as_str(), list.path.as_str()), ("GET", "/apis/apps/v1/namespaces/apps/deployments"));
    assert!(list.query.contains("fieldSelector=metadata.name%3Dweb"), "{}", list.query);
    watch_events(&mut server, &[("DELETED", live_deployment(1, 1, 2, true))]).await;
    call.await.unwrap().unwrap();

    // An object someone else relabelled is left alone: no DELETE.
    let call = tokio::spawn(async move { provider.delete(&ctx, &urn, &json!({}), &outputs).await });
    let mut theirs = live_deployment(1, 1, 2, true);
    theirs["metadata"]["labels"] = json!({LABEL_MANAGED_BY: "helm"});
    next(&mut server, 200, theirs).await;
    call.await.unwrap().unwrap();
    drop(server); // any further request would fail the call above
}

#[tokio::test]
async fn refresh_lists_each_type_once_by_the_stack_label() {
    let (ctx, mut server) = ctx_with_mock("demo");
    let outputs = |name: &str| {
        json!({"cluster": {"name": "kind", "via": "kubeconfig"}, "api_version": "v1", "kind": "ConfigMap",
            "namespace": "apps", "name": name, "uid": format!("u-{name}")})
    };
    let urn = |name: &str| crate::model::Urn::new("demo", "k8s:v1:ConfigMap", &format!("kind/apps/{name}"));
    let items = vec![(urn("a"), outputs("a")), (urn("b"), outputs("b"))];
    let provider = provider::provider_for("k8s:v1:ConfigMap");
    let call = tokio::spawn(async move { provider.read_many(&ctx, &items).await });
    let list = next(
        &mut server,
        200,
        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [
        {"metadata": {"name": "a", "namespace": "apps", "uid": "u-a2"}}]}),
    )
    .await;
    assert_eq!((list.method.as_str(), list.path.as_str()), ("GET", "/api/v1/configmaps"));
    assert_eq!(list.query, "&labelSelector=fabric.dev%2Fstack%3Ddemo");
    let read = call.await.unwrap().unwrap();
    assert_eq!(read[0].as_ref().unwrap().outputs["uid"], "u-a2");
    assert!(read[1].is_none(), "b was deleted outside fabric");
}

/// State in `dir` and a context whose cluster is kube's mock service, for engine-level tests.
async fn engine_parts(dir: &std::path::Path) -> (Arc<StateStore>, Ctx, Mock) {
    let backend = Arc::new(LocalBackend::new(dir.to_path_buf()));
    let store = StateStore::open(backend, "demo", crate::state::store::KeySource::LocalKeyFile).await.unwrap();
    let (ctx, server) = ctx_with_mock("demo");
    (Arc::new(store), ctx, server)
}

/// Like a Helm release: an object removed from the program is deleted by the next deploy.
#[tokio::test]
async fn objects_removed_from_the_program_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ctx, mut server) = engine_parts(dir.path()).await;
    let engine = Engine::new(ctx, store, crate::providers::registry());
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "apps"}});
    let program = |names: &[&str]| {
        let mut s = Stack::new("demo");
        for n in names {
            Manifest::new(cm(n)).add(&mut s, &ClusterRef::kubeconfig("kind")).unwrap();
        }
        Arc::new(s.finish().unwrap())
    };

    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let graph = program(&["keep", "old"]);
    let p = plan(&graph, &state, &crate::providers::registry()).unwrap();
    let server_task = tokio::spawn(async move {
        // Each create: a GET (nothing there yet), then the apply PATCH; the two objects in any order.
        let mut methods = Vec::new();
        for _ in 0..4 {
            let (req, send) = server.next_request().await.expect("a request");
            methods.push(req.method().to_string());
            let (code, body) = match req.method().as_str() {
                "GET" => (404, status(404, "NotFound", "not found")),
                _ => (200, json!({})),
            };
            send.send_response(
                Response::builder().status(code).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap(),
            );
        }
        methods.sort();
        assert_eq!(methods, ["GET", "GET", "PATCH", "PATCH"]);
        server
    });
    let report = engine.apply(graph, &mut state, &p).await.unwrap();
    assert!(report.ok());
    let mut server = server_task.await.unwrap();

    let graph = program(&["keep"]);
    let p = plan(&graph, &state, &crate::providers::registry()).unwrap();
    let ops: Vec<(String, &str)> = p.steps.iter().map(|s| (s.urn.name().to_string(), s.op.as_str())).collect();
    assert_eq!(ops, [("kind/apps/keep".to_string(), "same"), ("kind/apps/old".to_string(), "delete")]);
    let server_task = tokio::spawn(async move {
        let mut live = cm("old");
        live["metadata"]["uid"] = json!("u-old");
        live["metadata"]["labels"] = json!({LABEL_MANAGED_BY: "fabric", LABEL_STACK: "demo"});
        let get = next(&mut server, 200, live.clone()).await;
        assert_eq!((get.method.as_str(), get.path.as_str()), ("GET", "/api/v1/namespaces/apps/configmaps/old"));
        let delete = next(&mut server, 200, live).await;
        assert_eq!(
            (delete.method.as_str(), delete.path.as_str()),
            ("DELETE", "/api/v1/namespaces/apps/configmaps/old")
        );
        // The watch of that object finds it gone at once.
        let list = next(&mut server, 200, list_of("ConfigMapList", vec![])).await;
        assert_eq!((list.method.as_str(), list.path.as_str()), ("GET", "/api/v1/namespaces/apps/configmaps"));
    });
    let report = engine.apply(graph, &mut state, &p).await.unwrap();
    assert!(report.ok());
    server_task.await.unwrap();
    assert_eq!(state.resources.len(), 1);
}

/// An object whose `apiVersion` changed is the same object: deploy applies it under its new URN
/// and forgets the old one, and never sends a DELETE (which would delete what was just applied).
#[tokio::test]
async fn an_api_version_change_applies_and_never_deletes_the_object() {
    use crate::state::{JournalEntry, Op};
    let dir = tempfile::tempdir().unwrap();
    let (store, ctx, mut server) = engine_parts(dir.path()).await;
    let engine = Engine::new(ctx, store.clone(), crate::providers::registry());
    // Deployed earlier as policy/v1beta1.
    let (urn, record) = deployed_v1beta1_pdb();
    store.record(&JournalEntry::Done { urn, op: Op::Create, record: Some(record) }).await.unwrap();

    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let graph = pdb_program("policy/v1");
    let p = plan(&graph, &state, &crate::providers::registry()).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server_task = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut live = pdb("policy/v1");
            live["metadata"]["uid"] = json!("u1");
            live["metadata"]["labels"] = json!({LABEL_MANAGED_BY: "fabric", LABEL_STACK: "demo"});
            // Every request is answered (a DELETE too: the object is then gone), and noted.
            let mut deleted = false;
            while let Some((req, send)) = server.next_request().await {
                seen.lock().unwrap().push(format!("{} {}", req.method(), req.uri().path()));
                deleted |= req.method() == "DELETE";
                let answer = if deleted && req.method() == "GET" {
                    Response::builder()
                        .status(404)
                        .body(Body::from(serde_json::to_vec(&status(404, "NotFound", "gone")).unwrap()))
                        .unwrap()
                } else {
                    json_response(live.clone())
                };
                send.send_response(answer);
            }
        }
    });
    let report = engine.apply(graph, &mut state, &p).await.unwrap();
    server_task.abort();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /apis/policy/v1/namespaces/apps/poddisruptionbudgets/web",
            "PATCH /apis/policy/v1/namespaces/apps/poddisruptionbudgets/web"
        ],
        "applied under the new version; no DELETE"
    );
    let types: Vec<&str> = state.resources.keys().map(|u| u.type_name()).collect();
    assert_eq!(types, ["k8s:policy/v1:PodDisruptionBudget"]);
    assert_eq!(state.resources.values().next().unwrap().outputs["uid"], "u1");
}

/// A ConfigMap `cfg` in `apps` with `data`, as a program declares it, and the state record of
/// it applied earlier (uid `u1`).
fn recorded_config_map(data: Value) -> (Arc<crate::model::Graph>, crate::state::State) {
    let mut s = Stack::new("demo");
    Manifest::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "apps"}, "data": data}))
    .add(&mut s, &ClusterRef::kubeconfig("kind"))
    .unwrap();
    let graph = Arc::new(s.finish().unwrap());
    let node = &graph.nodes()[0];
    let mut state = crate::state::State::new("demo");
    state.resources.insert(
        node.urn.clone(),
        crate::state::Record {
            type_name: node.type_name().to_string(),
            inputs: node.inputs(&crate::model::NothingKnown).unwrap(),
            outputs: json!({"cluster": {"name": "kind", "via": "kubeconfig"}, "api_version": "v1",
                "kind": "ConfigMap", "namespace": "apps", "name": "cfg", "uid": "u1"}),
            deps: vec![],
            options: Default::default(),
        },
    );
    (graph, state)
}

fn live_config_map(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "apps", "uid": "u1",
        "resourceVersion": "7", "labels": {LABEL_MANAGED_BY: "fabric", LABEL_STACK: "demo"},
        "managedFields": [{"manager": "fabric", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}}}]}, "data": data})
}

/// The dry run is a server-side apply with `dryRun=All` as the `fabric` manager, and the plan
/// shows the server's answer: here an annotation an admission webhook would add turns an
/// unchanged resource into an update, shown field by field.
#[tokio::test]
async fn the_plan_shows_the_dry_run_answer_of_the_server() {
    let (graph, state) = recorded_config_map(json!({"a": "1"}));
    let mut p = plan(&graph, &state, &crate::providers::registry()).unwrap();
    assert!(!p.has_changes(), "the program and state agree");
    let (ctx, mut server) = ctx_with_mock("demo");
    let task = tokio::spawn(async move {
        let report = crate::engine::dry_run::dry_run(&ctx, &graph, &state, &mut p, 4).await;
        (report, p)
    });
    let get = next(&mut server, 200, live_config_map(json!({"a": "1"}))).await;
    assert_eq!((get.method.as_str(), get.path.as_str()), ("GET", "/api/v1/namespaces/apps/configmaps/cfg"));
    let mut answer = live_config_map(json!({"a": "1"}));
    answer["metadata"]["annotations"] = json!({"policy.example/injected": "yes"});
    answer["metadata"]["resourceVersion"] = json!("8");
    let patch = next(&mut server, 200, answer).await;
    assert_eq!((patch.method.as_str(), patch.path.as_str()), ("PATCH", "/api/v1/namespaces/apps/configmaps/cfg"));
    assert!(patch.query.contains("dryRun=All") && patch.query.contains("fieldManager=fabric"), "{}", patch.query);
    assert!(!patch.query.contains("force"), "{}", patch.query);
    let (report, p) = task.await.unwrap();
    assert_eq!((report.accepted, report.ok()), (1, true));
    assert_eq!(p.steps[0].op, crate::engine::StepOp::Update);
    let text = crate::engine::render::render_plan(&p);
    assert!(
        text.contains("manifest.metadata.annotations: (none) => {\"policy.example/injected\":\"yes\"}"),
        "the change is the server's, field by field (resourceVersion is not shown): {text}"
    );
    assert!(!text.contains("resourceVersion"), "{text}");
}

/// A 422 on the dry run is a refusal naming the object and the field; nothing but the GET and
/// the dry run was sent, so a deploy stops before its first step.
#[tokio::test]
async fn a_refused_dry_run_names_the_object_and_the_field() {
    let (graph, state) = recorded_config_map(json!({"a": "1"}));
    let mut p = plan(&graph, &State::new("demo"), &crate::providers::registry()).unwrap();
    let (ctx, mut server) = ctx_with_mock("demo");
    let task = tokio::spawn(async move { crate::engine::dry_run::dry_run(&ctx, &graph, &state, &mut p, 4).await });
    next(&mut server, 404, status(404, "NotFound", "not found")).await;
    let mut refusal = status(
        422,
        "Invalid",
        "ConfigMap \"cfg\" is invalid: data.a b: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters",
    );
    refusal["details"] = json!({"name": "cfg", "kind": "ConfigMap", "causes": [{"reason": "FieldValueInvalid",
        "message": "Invalid value: \"a b\"", "field": "data.a b"}]});
    let patch = next(&mut server, 422, refusal).await;
    assert!(patch.query.contains("dryRun=All"), "{}", patch.query);
    let report = task.await.unwrap();
    drop(server); // nothing else was sent
    assert!(!report.ok());
    let text = report.render();
    assert!(
        text.contains("refused: k8s:v1:ConfigMap \"kind/apps/cfg\": ConfigMap apps/cfg: the cluster rejected"),
        "{text}"
    );
    assert!(text.contains("data.a b: Invalid value"), "{text}");
}

/// A conflict on a field fabric applied before is drift: the dry run is repeated with `force`
/// and the plan says deploy puts the field back. A conflict on a field fabric never set is a
/// refusal naming the field and the manager that owns it.
#[tokio::test]
async fn conflicts_are_drift_when_fabric_set_the_field_and_refusals_when_it_never_did() {
    let conflict = |field: &str| {
        let mut s = status(409, "Conflict", "Apply failed with 1 conflict");
        s["details"] = json!({"causes": [{"reason": "FieldManagerConflict",
            "message": "conflict with \"kubectl-edit\" using v1", "field": field}]});
        s
    };
    // `data.a` was applied by fabric (it is in state's manifest): drift.
    let (graph, state) = recorded_config_map(json!({"a": "1"}));
    let mut p = plan(&graph, &state, &crate::providers::registry()).unwrap();
    let (ctx, mut server) = ctx_with_mock("demo");
    let task = tokio::spawn(async move {
        let report = crate::engine::dry_run::dry_run(&ctx, &graph, &state, &mut p, 4).await;
        (report, p)
    });
    next(&mut server, 200, live_config_map(json!({"a": "2"}))).await;
    next(&mut server, 409, conflict(".data.a")).await;
    let forced = next(&mut server, 200, live_config_map(json!({"a": "1"}))).await;
    assert!(forced.query.contains("dryRun=All") && forced.query.contains("force=true"), "{}", forced.query);
    let (report, p) = task.await.unwrap();
    assert!(report.ok(), "{}", report.render());
    let text = crate::engine::render::render_plan(&p);
    assert!(text.contains("manifest.data.a: \"2\" => \"1\""), "{text}");
    assert!(text.contains("! data.a: changed by kubectl-edit since fabric applied it; deploy puts it back"), "{text}");

    // `data.b` is new in the program and another manager owns it: refused.
    let (graph, state) = recorded_config_map(json!({"a": "1", "b": "x"}));
    let mut state = state;
    state.resources.values_mut().for_each(|r| r.inputs["manifest"]["data"] = json!({"a": "1"}));
    let mut p = plan(&graph, &state, &crate::providers::registry()).unwrap();
    let (ctx, mut server) = ctx_with_mock("demo");
    let task = tokio::spawn(async move { crate::engine::dry_run::dry_run(&ctx, &graph, &state, &mut p, 4).await });
    next(&mut server, 200, live_config_map(json!({"a": "1", "b": "theirs"}))).await;
    next(&mut server, 409, conflict(".data.b")).await;
    let report = task.await.unwrap();
    drop(server);
    let text = report.render();
    assert!(text.contains("data.b: owned by field manager `kubectl-edit` (fabric never set it)"), "{text}");
    assert!(text.contains("--force-conflicts"), "{text}");
}

/// Refresh reads `managedFields`: a field fabric applied that another manager changed is drift,
/// named with that manager, and the observed manifest holds the live value.
#[tokio::test]
async fn refresh_reports_field_drift_with_the_manager_that_made_it() {
    let (_, state) = recorded_config_map(json!({"a": "1"}));
    let (ctx, mut server) = ctx_with_mock("demo");
    let (urn, rec) = state.resources.iter().next().map(|(u, r)| (u.clone(), r.clone())).unwrap();
    let provider = provider::provider_for(urn.type_name());
    let items = vec![crate::engine::provider::RecordedItem { urn, inputs: rec.inputs, outputs: rec.outputs }];
    let call = tokio::spawn(async move { provider.read_recorded(&ctx, &items).await });
    let mut live = live_config_map(json!({"a": "2"}));
    live["metadata"]["managedFields"] = json!([
        {"manager": "fabric", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {}},
        {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:a": {}}}}]);
    next(&mut server, 200, json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [live]})).await;
    let observed = call.await.unwrap().unwrap().pop().unwrap().unwrap();
    assert_eq!(observed.notes, ["data.a: changed by kubectl-edit"]);
    assert_eq!(observed.inputs["manifest"]["data"]["a"], "2");
}
