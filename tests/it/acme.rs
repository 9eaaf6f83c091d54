//! The acme fabric through its command line, as `cargo xtask deploy acme --local --yes` runs it:
//! the AWS half is deployed to the emulator; the Kubernetes half is rendered, validated against
//! the Kubernetes schemas and plainly not applied; a second preview is all `same`; the
//! kubeconfig is an output and a file; destroy leaves nothing.

use fabric_tests::Fixture;
use std::process::{Output, Stdio};

fn acme(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli(crate::stack_command("acme"), fx, state, "acme", args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_deploys_locally_previews_same_and_destroys_clean() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();

    let out = acme(&fx, state, &["deploy", "--local", "--yes"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Kubernetes: 31 objects rendered to"), "{err}");
    assert!(err.contains("validated against the Kubernetes 1.33 schemas"), "{err}");
    assert!(err.contains("No cluster was reached"), "{err}");
    assert!(err.contains("Apply complete"), "{err}");
    let manifests: Vec<_> = std::fs::read_dir(state.join("manifests")).unwrap().collect();
    assert_eq!(manifests.len(), 31);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("db_url = \"[secret]\""), "{stdout}");
    assert!(stdout.contains("kubeconfig = (") && !stdout.contains("certificate-authority-data"), "{stdout}");

    // The kubeconfig: an output, and a file only its owner reads; it asks `aws` for tokens.
    let kubeconfig = std::fs::read_to_string(state.join("kubeconfig")).unwrap();
    assert!(kubeconfig.contains("get-token") && kubeconfig.contains("acme-dev-main"), "{kubeconfig}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(state.join("kubeconfig")).unwrap().permissions().mode() & 0o777, 0o600);
    let out = acme(&fx, state, &["outputs", "kubeconfig", "--local"]);
    assert_eq!(text(&out.stdout).trim(), kubeconfig.trim());

    // Internal names: `acme-dev.internal` is private and attached to the fabric's VPC only (it
    // resolves nowhere else), and `db.acme-dev.internal` names the database's address (the
    // api's POSTGRES_URL uses that name: `stacks/acme/tests`).
    assert!(stdout.contains("db_host = \"db.acme-dev.internal\""), "{stdout}");
    let zones = fx.aws.route53.list_hosted_zones().send().await.unwrap();
    let internal = zones.hosted_zones().iter().find(|z| z.name() == "acme-dev.internal.").expect("the internal zone");
    assert_eq!(internal.config().map(|c| c.private_zone()), Some(true));
    let zone = fx.aws.route53.get_hosted_zone().id(internal.id()).send().await.unwrap();
    let vpc_filter = aws_sdk_ec2::types::Filter::builder().name("tag:fabric:stack").values("acme-dev").build();
    let vpcs = fx.aws.ec2.describe_vpcs().filters(vpc_filter).send().await.unwrap();
    let vpc_ids: Vec<&str> = vpcs.vpcs().iter().filter_map(|v| v.vpc_id()).collect();
    let attached: Vec<&str> = zone.vpcs().iter().filter_map(|v| v.vpc_id()).collect();
    assert_eq!(attached, vpc_ids, "attached to the fabric's VPC, and to nothing else");
    assert!(zone.delegation_set().is_none(), "a private zone has no public name servers");
    let records = fx.aws.route53.list_resource_record_sets().hosted_zone_id(internal.id()).send().await.unwrap();
    let db = records.resource_record_sets().iter().find(|r| r.name() == "db.acme-dev.internal.").expect("db record");
    let instances = fx.aws.rds.describe_db_instances().send().await.unwrap();
    let address = instances.db_instances()[0].endpoint().and_then(|e| e.address()).unwrap();
    assert_eq!(db.resource_records()[0].value(), address);

    let out = acme(&fx, state, &["refresh", "--local"]);
    let err = text(&out.stderr);
    assert!(out.status.success() && err.contains("no drift"), "{err}");
    let out = acme(&fx, state, &["preview", "--local", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<&str> = doc["steps"].as_array().unwrap().iter().map(|s| s["op"].as_str().unwrap()).collect();
    assert!(!ops.is_empty() && ops.iter().all(|op| *op == "same"), "{doc}");
    assert_eq!(
        doc["policy"]["findings"].as_array().map(|f| f.iter().filter(|f| f["severity"] == "mandatory").count()),
        Some(0),
        "{doc}"
    );
    assert_eq!(doc["cost"]["delta"], serde_json::json!({"low": 0.0, "high": 0.0}), "{doc}");
    assert!(doc["cost"]["after"]["low"].as_f64().unwrap() > 400.0, "{doc}");

    // A bigger node pool (2–4 → 3–6 nodes): the plan says what it costs.
    let config = tempfile::tempdir().unwrap();
    let dev = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/acme/config/dev.toml")).unwrap();
    assert!(dev.contains("min = 2\nmax = 4\n"), "{dev}");
    std::fs::write(config.path().join("dev.toml"), dev.replace("min = 2\nmax = 4\n", "min = 3\nmax = 6\n")).unwrap();
    let out =
        fabric_tests::stack_cli_in(crate::stack_command("acme"), &fx, state, config.path(), &["preview", "--local"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "aws:eks:NodeGroup \"main/general\": $129.47–$258.94 → $194.21–$388.42  3–6 × t3.large, 50 GB gp3 each"
        ),
        "{err}"
    );
    assert!(err.contains("$444.10–$573.57/month → $508.84–$703.05/month (+$64.74–+$129.48/month)"), "{err}");

    let out = acme(&fx, state, &["destroy", "--local", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fx.tagged("acme-dev").await, vec![]);
    let clusters = fx.aws.eks.list_clusters().send().await.unwrap();
    assert!(clusters.clusters().is_empty(), "{clusters:?}");
}

/// An environment without a config file: refused before any call, naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_without_config_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let aws = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    aws.set_nonblocking(true).unwrap();
    let out = crate::stack_command("acme")
        .args(["preview", "--env", "staging"])
        .env("FABRIC_STATE_DIR", dir.path())
        .env("FABRIC_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/acme/config"))
        .env("FABRIC_AWS_ENDPOINT", format!("http://{}", aws.local_addr().unwrap()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("staging.toml"), "{err}");
    assert!(aws.accept().is_err(), "something connected to the AWS endpoint");
}

/// acme's Kubernetes half on a real API server (`FABRIC_TEST_KUBECONFIG`; CI starts
/// `../shared/kube`), its AWS half on the emulator, through its command line: deploy; a preview
/// the cluster checks (every object asked, nothing to do); an image change rolled out with
/// availability never below what it was; a change by another field manager reported by refresh
/// with that manager and put back by deploy; a rollout of an image that never becomes ready,
/// reported with the pods' reason once its progress deadline passes (not waited out), the old
/// pods still serving and the new ReplicaSet left; the same with `--atomic`, which rolls the api
/// back by itself; destroy, after which the namespace is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
async fn acme_on_a_real_cluster_rolls_out_repairs_drift_and_destroys() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, Patch, PatchParams};

    let kubeconfig = fabric_tests::test_kubeconfig();
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let dev = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/acme/config/dev.toml")).unwrap();
    assert!(dev.contains("acme/api:1.4.2"), "the test edits the api image");
    // A short start-up time: the api's rollouts fail 20 + 15 s after no new pod became ready.
    let dev = dev.replacen("[api]\n", "[api]\nstart_seconds = 20\n", 1);
    assert!(dev.contains("start_seconds = 20"), "the test shortens the api's start-up time");
    std::fs::write(config.join("dev.toml"), &dev).unwrap();
    let run = |args: &[&str]| {
        let args = [args, &["--local", "--kubeconfig", kubeconfig.to_str().unwrap()]].concat();
        let out = fabric_tests::stack_cli_in(crate::stack_command("acme"), &fx, &state, &config, &args);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        err
    };
    let client = fabric_tests::test_cluster_client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "acme");
    let image = |d: Deployment| d.spec.unwrap().template.spec.unwrap().containers[0].image.clone().unwrap();

    let err = run(&["deploy", "--yes"]);
    assert!(err.contains("Apply complete"), "{err}");
    assert_eq!(image(deployments.get("api").await.unwrap()), "acme/api:1.4.2");

    // Asked again, the cluster accepts every object and nothing changes.
    let err = run(&["preview"]);
    assert!(err.contains("No changes") && err.contains("accepted 31 of 31"), "{err}");

    // An image change: availability never drops below what it was before the rollout.
    let before = deployments.get("api").await.unwrap().status.unwrap().available_replicas.unwrap_or(0);
    assert!(before >= 1, "api is available before the rollout");
    std::fs::write(config.join("dev.toml"), dev.replace("acme/api:1.4.2", "acme/api:1.4.3")).unwrap();
    let watch = fabric_tests::AvailabilityWatch::start(deployments.clone(), "api");
    let err = tokio::task::block_in_place(|| run(&["deploy", "--yes"]));
    let lowest = watch.lowest().await;
    assert!(err.contains("1 to update"), "{err}");
    assert!(lowest >= before, "available replicas fell from {before} to {lowest} during the rollout");
    assert_eq!(image(deployments.get("api").await.unwrap()), "acme/api:1.4.3");

    // Another field manager changes the image: refresh names it; deploy puts the image back.
    let foreign = PatchParams { field_manager: Some("kubectl-set".into()), ..Default::default() };
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "evil/api:latest"}]}}}});
    deployments.patch("api", &foreign, &Patch::Strategic(patch)).await.unwrap();
    let err = run(&["refresh"]);
    assert!(err.contains("containers[name=api].image: changed by kubectl-set"), "{err}");
    let err = run(&["deploy", "--yes"]);
    assert!(err.contains("deploy puts it back") && err.contains("Apply complete"), "{err}");
    assert_eq!(image(deployments.get("api").await.unwrap()), "acme/api:1.4.3");

    // An image whose pods never become ready: the deploy fails once the Deployment's progress
    // deadline (35 s) has passed, with the pods' reason, well before the step's timeout; the old
    // pods keep serving, and the new ReplicaSet is left as it is (no --atomic).
    std::fs::write(config.join("dev.toml"), dev.replace("acme/api:1.4.2", "acme/api:never-ready")).unwrap();
    let deployment = deployments.get("api").await.unwrap();
    assert_eq!(deployment.spec.as_ref().unwrap().progress_deadline_seconds, Some(35));
    let before = deployment.status.unwrap().available_replicas.unwrap_or(0);
    let watch = fabric_tests::AvailabilityWatch::start(deployments.clone(), "api");
    let started = std::time::Instant::now();
    let out = tokio::task::block_in_place(|| {
        let args = ["deploy", "--yes", "--local", "--kubeconfig", kubeconfig.to_str().unwrap()];
        fabric_tests::stack_cli_in(crate::stack_command("acme"), &fx, &state, &config, &args)
    });
    let took = started.elapsed();
    let lowest = watch.lowest().await;
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a rollout that never becomes ready fails the deploy: {err}");
    assert!(err.contains("Deployment acme/api: the rollout failed"), "{err}");
    assert!(err.contains("ProgressDeadlineExceeded"), "the controller's verdict: {err}");
    assert!(err.contains("CrashLoopBackOff"), "the pods' reason: {err}");
    assert!(took < std::time::Duration::from_secs(35 + 90), "not waited out: took {took:?}: {err}");
    assert!(lowest >= before, "available replicas fell from {before} to {lowest} during the failed rollout");
    assert_eq!(image(deployments.get("api").await.unwrap()), "acme/api:never-ready", "the new ReplicaSet is left");

    // Deploying forward mends it; then the same image with --atomic: the failure is reported as
    // before and the deploy returns to that last revision by itself, rolling the api back to
    // 1.4.3 with availability never below what it was.
    std::fs::write(config.join("dev.toml"), dev.replace("acme/api:1.4.2", "acme/api:1.4.3")).unwrap();
    let err = run(&["deploy", "--yes"]);
    assert!(err.contains("Apply complete"), "{err}");
    std::fs::write(config.join("dev.toml"), dev.replace("acme/api:1.4.2", "acme/api:never-ready")).unwrap();
    let before = deployments.get("api").await.unwrap().status.unwrap().available_replicas.unwrap_or(0);
    let watch = fabric_tests::AvailabilityWatch::start(deployments.clone(), "api");
    let started = std::time::Instant::now();
    let out = tokio::task::block_in_place(|| {
        let args = ["deploy", "--atomic", "--yes", "--local", "--kubeconfig", kubeconfig.to_str().unwrap()];
        fabric_tests::stack_cli_in(crate::stack_command("acme"), &fx, &state, &config, &args)
    });
    let took = started.elapsed();
    let lowest = watch.lowest().await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the deploy failed, and says so after rolling back: {err}");
    assert!(err.contains("ProgressDeadlineExceeded") && err.contains("CrashLoopBackOff"), "{err}");
    assert!(err.contains("Rolling back to revision"), "{err}");
    assert!(took < std::time::Duration::from_secs(35 + 120), "failure and rollback took {took:?}: {err}");
    assert!(
        lowest >= before,
        "available replicas fell from {before} to {lowest} during the failed rollout and its rollback"
    );
    let deployment = deployments.get("api").await.unwrap();
    assert_eq!(image(deployment.clone()), "acme/api:1.4.3", "the Deployment is back on the previous image: {err}");
    let status = deployment.status.unwrap();
    assert_eq!(status.updated_replicas, status.replicas, "the rollback's rollout is complete");
    let out = fabric_tests::stack_cli_in(crate::stack_command("acme"), &fx, &state, &config, &["history", "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history[0]["operation"], "rollback", "{history}");
    assert_eq!(history[0]["outcome"], "succeeded", "{history}");

    run(&["destroy", "--yes"]);
    let namespaces: Api<Namespace> = Api::all(client);
    assert!(namespaces.get_opt("acme").await.unwrap().is_none(), "the namespace is gone");
    assert_eq!(fx.tagged("acme-dev").await, vec![]);
}
