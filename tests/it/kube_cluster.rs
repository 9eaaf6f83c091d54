//! Against a real Kubernetes API server: ignored unless run with `--include-ignored` and
//! `FABRIC_TEST_KUBECONFIG` naming a kubeconfig (kind, minikube, EKS, `../shared/kube`);
//! `cargo xtask test` does both when the variable is set, and CI starts `../shared/kube` for it. Applies a namespace, a ConfigMap
//! and a WebService (Deployment awaited until rolled out), prunes the ConfigMap when the program
//! drops it, and destroys everything.

use fabric::engine::{Engine, plan, plan_destroy};
use fabric::k8s::{ClusterRef, KubeAccess};
use fabric::prelude::*;
use fabric::state::store::KeySource;
use fabric::state::{LocalBackend, StateStore};
use fabric_tests::{AvailabilityWatch, test_cluster_client, test_kubeconfig};
use std::sync::Arc;

/// State in a fresh directory (kept while the returned guard lives) and an engine that reaches
/// the test cluster through its kubeconfig.
async fn test_engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        StateStore::open(Arc::new(LocalBackend::new(dir.path().to_path_buf())), "kube", KeySource::LocalKeyFile)
            .await
            .unwrap();
    let ctx = fabric::providers::context("kube", None).with(KubeAccess::new(Some(test_kubeconfig())));
    (dir, Engine::new(ctx, Arc::new(store), fabric::providers::registry()))
}

fn program(namespace: String, with_config: bool) -> impl Fn(&mut Stack) -> fabric::Result<()> {
    move |s| {
        let cluster = ClusterRef::kubeconfig("test");
        Namespace::builder().name(namespace.as_str()).cluster(&cluster).build().add(s)?;
        if with_config {
            ConfigMap::builder()
                .name("settings")
                .namespace(namespace.as_str())
                .cluster(&cluster)
                .data([("LOG_LEVEL".to_string(), "info".to_string())].into())
                .build()
                .add(s)?;
        }
        WebService::builder()
            .name("web")
            .cluster(&cluster)
            .namespace(namespace.as_str())
            .image("nginxinc/nginx-unprivileged:1.27-alpine")
            .port(8080)
            .health(Health::http("/"))
            .run_as_user(101)
            .cpu(("50m".into(), "200m".into()))
            .memory(("32Mi".into(), "64Mi".into()))
            .drain_seconds(1)
            .build()
            .add(s)?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
async fn apply_await_prune_destroy_on_a_real_cluster() {
    let namespace = format!("fabric-test-{}", std::process::id());
    let (_dir, engine) = test_engine().await;

    for with_config in [true, false] {
        let graph = Arc::new(fabric::testing::synthesize("kube", program(namespace.clone(), with_config)).unwrap());
        let (mut state, _) = engine.load_and_recover(Some(&graph), true).await.unwrap();
        let p = plan(&graph, &state, &engine.registry).unwrap();
        if !with_config {
            let deletes: Vec<_> = p.steps.iter().filter(|s| s.op.as_str() == "delete").collect();
            assert_eq!(deletes.len(), 1, "the ConfigMap is pruned");
        }
        let report = engine.apply(graph, &mut state, &p).await.unwrap();
        assert!(report.ok(), "{report:?}");
    }
    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}

/// A namespace, a ConfigMap and a two-replica WebService running `image`.
fn service_program(namespace: String, image: &'static str) -> impl Fn(&mut Stack) -> fabric::Result<()> {
    move |s| {
        let cluster = ClusterRef::kubeconfig("test");
        Namespace::builder().name(namespace.as_str()).cluster(&cluster).build().add(s)?;
        ConfigMap::builder()
            .name("settings")
            .namespace(namespace.as_str())
            .cluster(&cluster)
            .data([("LOG_LEVEL".to_string(), "info".to_string())].into())
            .build()
            .add(s)?;
        WebService::builder()
            .name("api")
            .cluster(&cluster)
            .namespace(namespace.as_str())
            .image(image)
            .port(8080)
            .health(Health::http("/"))
            .run_as_user(101)
            .cpu(("50m".into(), "200m".into()))
            .memory(("32Mi".into(), "64Mi".into()))
            .drain_seconds(1)
            .build()
            .add(s)?;
        Ok(())
    }
}

/// Deploys, follows a rolling image change (available replicas never below the two wanted),
/// has another field manager change the image and the ConfigMap, and checks that refresh names
/// that manager, that the dry-run gate turns the unchanged plan into a repair, and that deploy
/// puts the fields back and owns them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
async fn rollout_drift_report_and_repair_on_a_real_cluster() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap as KubeConfigMap;
    use kube::api::{Api, Patch, PatchParams};

    let namespace = format!("fabric-drift-{}", std::process::id());
    let (_dir, engine) = test_engine().await;
    let deploy = |image: &'static str| {
        let graph = Arc::new(fabric::testing::synthesize("kube", service_program(namespace.clone(), image)).unwrap());
        let engine = &engine;
        async move {
            let (mut state, _) = engine.load_and_recover(Some(&graph), true).await.unwrap();
            let mut p = plan(&graph, &state, &engine.registry).unwrap();
            let checked = engine.dry_run(&graph, &state, &mut p).await;
            assert!(checked.ok(), "{}", checked.render());
            let report = engine.apply(graph, &mut state, &p).await.unwrap();
            assert!(report.ok(), "{report:?}");
            (p, checked)
        }
    };
    let v1 = "nginxinc/nginx-unprivileged:1.27-alpine";
    let v2 = "nginxinc/nginx-unprivileged:1.28-alpine";

    // First deploy: the namespace is new, so its objects are checked in `default`.
    let (p, checked) = deploy(v1).await;
    assert_eq!(
        checked.accepted,
        9,
        "namespace, its two NetworkPolicies, ConfigMap, ServiceAccount, Service, PDB, Deployment and its policy: {}",
        checked.render()
    );
    let in_default = p.steps.iter().filter(|s| s.notes.iter().any(|n| n.contains("checked in namespace `default`")));
    assert_eq!(in_default.count(), 8, "{}", fabric::engine::render::render_plan(&p));

    // A rolling image change: availability never drops below the two wanted replicas.
    let client = test_cluster_client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let watch = AvailabilityWatch::start(deployments.clone(), "api");
    let (p, _) = deploy(v2).await;
    let lowest = watch.lowest().await;
    assert_eq!(p.summary().update, 1, "{}", fabric::engine::render::render_plan(&p));
    assert!(lowest >= 2, "available replicas fell to {lowest} during the rollout");
    let live = deployments.get("api").await.unwrap();
    assert_eq!(live.spec.unwrap().template.spec.unwrap().containers[0].image.as_deref(), Some(v2));

    // Someone else changes the image and the ConfigMap (plain updates, as kubectl does).
    let foreign = |manager: &str| PatchParams { field_manager: Some(manager.into()), ..Default::default() };
    let image_patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "evil/api:latest"}]}}}});
    deployments.patch("api", &foreign("kubectl-set"), &Patch::Strategic(image_patch)).await.unwrap();
    let config_maps: Api<KubeConfigMap> = Api::namespaced(client.clone(), &namespace);
    let data_patch = serde_json::json!({"data": {"LOG_LEVEL": "debug"}});
    config_maps.patch("settings", &foreign("kubectl-edit"), &Patch::Merge(data_patch)).await.unwrap();

    // Refresh reports both, each with the manager that made it.
    let graph = Arc::new(fabric::testing::synthesize("kube", service_program(namespace.clone(), v2)).unwrap());
    let (mut state, _) = engine.load_and_recover(Some(&graph), true).await.unwrap();
    let mut read = state.clone();
    let report = engine.refresh(&mut read, Some(&graph), false).await.unwrap();
    let text = report.render();
    assert_eq!(report.drift.len(), 2, "{text}");
    assert!(
        text.contains("\"evil/api:latest\"") && text.contains("containers[name=api].image: changed by kubectl-set"),
        "{text}"
    );
    assert!(text.contains("data.LOG_LEVEL: changed by kubectl-edit"), "{text}");

    // Without a refresh, the plan alone sees nothing; the dry run sees the drift and plans its repair.
    let mut p = plan(&graph, &state, &engine.registry).unwrap();
    assert!(!p.has_changes());
    let checked = engine.dry_run(&graph, &state, &mut p).await;
    assert!(checked.ok(), "{}", checked.render());
    let shown = fabric::engine::render::render_plan(&p);
    assert_eq!(p.summary().update, 2, "{shown}");
    assert!(shown.contains("\"evil/api:latest\" => \"nginxinc/nginx-unprivileged:1.28-alpine\""), "{shown}");
    assert!(shown.contains("changed by kubectl-set since fabric applied it; deploy puts it back"), "{shown}");

    // Deploy puts the fields back, and fabric owns them again (the next refresh finds nothing).
    let report = engine.apply(graph.clone(), &mut state, &p).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let live = deployments.get("api").await.unwrap();
    assert_eq!(live.spec.unwrap().template.spec.unwrap().containers[0].image.as_deref(), Some(v2));
    assert_eq!(config_maps.get("settings").await.unwrap().data.unwrap()["LOG_LEVEL"], "info");
    let report = engine.refresh(&mut state, Some(&graph), true).await.unwrap();
    assert!(report.drift.is_empty(), "{}", report.render());

    let p = plan_destroy(&state, &engine.registry).unwrap();
    let report = engine.destroy(&mut state, &p).await.unwrap();
    assert!(report.ok(), "{report:?}");
}

/// A deploy whose dry run the cluster refuses (a field its schema does not have) stops before
/// its first step: through the command line, exit code 2, and not even the namespace is made.
#[test]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
fn a_refused_dry_run_stops_the_deploy_before_its_first_step() {
    let namespace = format!("fabric-refused-{}", std::process::id());
    let program = {
        let namespace = namespace.clone();
        move |s: &mut Stack| {
            let cluster = ClusterRef::kubeconfig("test");
            Namespace::builder().name(namespace.as_str()).cluster(&cluster).build().add(s)?;
            fabric::k8s::Manifest::new(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": namespace}, "datta": {"a": "1"}}))
            .add(s, &cluster)?;
            Ok(())
        }
    };
    let aws = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    aws.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", aws.local_addr().unwrap());
    let state = tempfile::tempdir().unwrap();
    let kubeconfig = test_kubeconfig();
    let args = [
        "kube",
        "deploy",
        "--yes",
        "--skip-preflight",
        "--endpoint",
        &endpoint,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--state-dir",
        state.path().to_str().unwrap(),
    ];
    assert_eq!(fabric::cli::run_with_args("kube", args, program), 2);
    assert!(aws.accept().is_err(), "nothing connected to the AWS endpoint");
    let exists = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(test_cluster_client().await);
        namespaces.get_opt(&namespace).await.unwrap().is_some()
    });
    assert!(!exists, "the namespace was created: the deploy did not stop before its first step");
}

/// Objects built for a newer Kubernetes than the cluster's API server answers on `/version` are
/// refused by the dry run, saying which version to declare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
async fn objects_built_for_a_newer_version_than_the_cluster_runs_are_refused() {
    let program = |s: &mut Stack| {
        let cluster = ClusterRef::kubeconfig("test").with_version(fabric::k8s::KubeVersion::new(1, 99));
        ConfigMap::builder().name("settings").namespace("default").cluster(&cluster).build().add(s)?;
        Ok(())
    };
    let graph = fabric::testing::synthesize("kube", program).unwrap();
    let (_dir, engine) = test_engine().await;
    let state = fabric::state::State::new("kube");
    let mut p = plan(&graph, &state, &engine.registry).unwrap();
    let checked = engine.dry_run(&graph, &state, &mut p).await;
    let text = checked.render();
    assert!(!checked.ok(), "{text}");
    assert!(text.contains("runs Kubernetes 1.36, but the program builds its objects for 1.99"), "{text}");
    assert!(text.contains("with_version(KubeVersion::new(1, 36))"), "{text}");
}

/// A ConfigMap made with kubectl (no fabric labels) is imported by `namespace/name`: the plan
/// shows `= import` with exactly the fields deploy changes (fabric's labels, the program's data),
/// deploy applies them to that very object (same uid, nothing created), and then nothing differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
async fn an_object_made_by_hand_is_imported_and_taken_over() {
    use k8s_openapi::api::core::v1::{ConfigMap as KConfigMap, Namespace as KNamespace};
    use kube::api::{Api, DeleteParams, PostParams};
    let namespace = format!("fabric-import-{}", std::process::id());
    let client = test_cluster_client().await;
    let namespaces: Api<KNamespace> = Api::all(client.clone());
    let mut ns = KNamespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let maps: Api<KConfigMap> = Api::namespaced(client.clone(), &namespace);
    let mut cm = KConfigMap::default();
    cm.metadata.name = Some("settings".into());
    cm.data = Some([("LOG_LEVEL".to_string(), "debug".to_string())].into());
    let made = maps.create(&PostParams::default(), &cm).await.unwrap();

    let (_dir, engine) = test_engine().await;
    let ns_for_program = namespace.clone();
    let graph = Arc::new(
        fabric::testing::synthesize("kube", move |s| {
            let cluster = ClusterRef::kubeconfig("test");
            s.with(fabric::model::Options::new().import(format!("{ns_for_program}/settings")), |s| {
                ConfigMap::builder()
                    .name("settings")
                    .namespace(ns_for_program.as_str())
                    .cluster(&cluster)
                    .data([("LOG_LEVEL".to_string(), "info".to_string())].into())
                    .build()
                    .add(s)
            })?;
            Ok(())
        })
        .unwrap(),
    );
    let (mut state, _) = engine.load_and_recover(Some(&graph), true).await.unwrap();
    let imports = engine.read_imports(&graph, &state).await.unwrap();
    let inputs = fabric::engine::PlanInputs { imports, ..Default::default() };
    let p = fabric::engine::plan_with(&graph, &state, &engine.registry, &inputs).unwrap();
    let text = fabric::engine::render::render_plan(&p);
    assert_eq!(p.summary().import, 1, "{text}");
    assert!(text.contains("manifest.data.LOG_LEVEL: \"debug\" => \"info\""), "{text}");
    assert!(text.contains("app.kubernetes.io/managed-by"), "fabric's labels are added: {text}");
    // Recorded but not yet labelled: a refresh still finds it (by name and uid), never "deleted".
    let mut recorded = state.clone();
    recorded.apply(&fabric::state::JournalEntry::Recorded {
        urn: p.steps[0].urn.clone(),
        record: fabric::state::Record {
            type_name: p.steps[0].type_name.clone(),
            inputs: p.steps[0].imported.clone().unwrap().inputs,
            outputs: p.steps[0].imported.clone().unwrap().outputs,
            deps: vec![],
            options: Default::default(),
        },
    });
    let report = engine.refresh(&mut recorded, Some(&graph), false).await.unwrap();
    assert!(report.drift.iter().all(|d| d.observed.is_some()), "{}", report.render());
    let report = engine.apply(graph.clone(), &mut state, &p).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let now = maps.get("settings").await.unwrap();
    assert_eq!(now.metadata.uid, made.metadata.uid, "the same object, taken over");
    assert_eq!(now.data.unwrap()["LOG_LEVEL"], "info");
    let (state, _) = engine.load_and_recover(Some(&graph), false).await.unwrap();
    let again = plan(&graph, &state, &engine.registry).unwrap();
    assert!(!again.has_changes(), "{}", fabric::engine::render::render_plan(&again));
    namespaces.delete(&namespace, &DeleteParams::default()).await.unwrap();
}

/// A namespace and a ConfigMap someone made by hand, under the names the program gives its own:
/// the names check (what preview runs before the first write) finds both, with one LIST per kind
/// and namespace; a deploy that meets them anyway is refused at the namespace with nothing
/// written (a definite failure: nothing left pending), and both are left as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
async fn names_someone_else_holds_on_a_real_cluster_are_found_before_any_write() {
    use k8s_openapi::api::core::v1::{ConfigMap as KubeConfigMap, Namespace as KubeNamespace};
    use kube::api::{Api, DeleteParams, PostParams};

    let namespace = format!("fabric-taken-{}", std::process::id());
    let client = test_cluster_client().await;
    let namespaces: Api<KubeNamespace> = Api::all(client.clone());
    let mut ns: KubeNamespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": namespace, "labels": {"team": "data"}}
    }))
    .unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let maps: Api<KubeConfigMap> = Api::namespaced(client.clone(), &namespace);
    let map: KubeConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"}, "data": {"OWNER": "data team"}
    }))
    .unwrap();
    maps.create(&PostParams::default(), &map).await.unwrap();

    let (_dir, engine) = test_engine().await;
    let graph = Arc::new(
        fabric::testing::synthesize(
            "kube",
            service_program(namespace.clone(), "nginxinc/nginx-unprivileged:1.27-alpine"),
        )
        .unwrap(),
    );
    let (mut state, _) = engine.load_and_recover(Some(&graph), true).await.unwrap();
    let p = plan(&graph, &state, &engine.registry).unwrap();
    let names = fabric::engine::names::check(&engine.ctx, &graph, &p, &state).await;
    let problems: Vec<String> = names.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 2, "{problems:#?} {:?}", names.skipped);
    assert!(
        problems.iter().any(|p| p.contains(&format!("the name `Namespace {namespace}` is taken"))
            && p.contains("it does not carry fabric's labels")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains(&format!("the name `ConfigMap {namespace}/settings` is taken"))),
        "{problems:#?}"
    );

    // Applied anyway (the objects made after the check): refused at the namespace, nothing
    // written, nothing pending.
    let report = engine.apply(graph, &mut state, &p).await.unwrap();
    assert!(!report.ok());
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert!(state.resources.is_empty(), "{:?}", state.resources.keys().collect::<Vec<_>>());
    ns = namespaces.get(&namespace).await.unwrap();
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("data"));
    assert!(!labels.contains_key("fabric.dev/stack"), "{labels:?}");
    let map = maps.get("settings").await.unwrap();
    assert_eq!(map.data.unwrap().get("OWNER").map(String::as_str), Some("data team"));
    namespaces.delete(&namespace, &DeleteParams::default()).await.unwrap();
}
