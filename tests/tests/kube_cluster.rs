//! Against a real Kubernetes API server: ignored unless run with `--include-ignored` and
//! `FABRIC_TEST_KUBECONFIG` naming a kubeconfig (kind, minikube, EKS, `../shared/kube`);
//! `cargo xtask test` does both when the variable is set, and CI starts `../shared/kube` for it. Applies a namespace, a ConfigMap
//! and a WebService (Deployment awaited until rolled out), prunes the ConfigMap when the program
//! drops it, and destroys everything.

use fabric::engine::{Ctx, Engine, Registry, plan, plan_destroy};
use fabric::k8s::{ClusterRef, KubeAccess};
use fabric::prelude::*;
use fabric::state::store::KeySource;
use fabric::state::{LocalBackend, StateStore};
use std::sync::Arc;

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
    let kubeconfig = std::env::var_os("FABRIC_TEST_KUBECONFIG")
        .expect("FABRIC_TEST_KUBECONFIG names the kubeconfig of a test cluster (kind, minikube, ../shared/kube)");
    let namespace = format!("fabric-test-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let store =
        StateStore::open(Arc::new(LocalBackend::new(dir.path().to_path_buf())), "kube", KeySource::LocalKeyFile)
            .await
            .unwrap();
    let ctx = Ctx::new("kube", None).with_kube(KubeAccess::new(Some(kubeconfig.into())));
    let engine = Engine::new(ctx, Arc::new(store), Registry::standard());

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
    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let p = plan_destroy(&state, &engine.registry).unwrap();
    let report = engine.destroy(&mut state, &p).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(state.resources.is_empty());
}
