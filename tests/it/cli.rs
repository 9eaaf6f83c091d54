//! The stack binary's command line, as a user and CI run it: preview --json, the confirmation
//! rule, deploy, outputs, graph, refresh, destroy, and S3 state with --backend.

use fabric_tests::Fixture;
use std::process::{Output, Stdio};

fn stack(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    stack_at(&fx.emulator.endpoint(), state, args)
}

/// The example stack's binary, against `endpoint` as an AWS endpoint (not `--local`).
fn stack_at(endpoint: &str, state: &std::path::Path, args: &[&str]) -> Output {
    program_at("example", endpoint, state, args)
}

/// `stacks <program> …` (a program of the `stacks` binary) against `endpoint` as an AWS
/// endpoint, with its state in `state`.
pub(crate) fn program_at(program: &str, endpoint: &str, state: &std::path::Path, args: &[&str]) -> Output {
    program_command(program, endpoint, state).args(args).output().unwrap()
}

/// The command [`program_at`] runs, without its arguments (for a test that spawns it).
pub(crate) fn program_command(program: &str, endpoint: &str, state: &std::path::Path) -> std::process::Command {
    let mut command = crate::stack_command(program);
    command
        .env("FABRIC_AWS_ENDPOINT", endpoint)
        .env("FABRIC_STATE_DIR", state)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-2")
        .env_remove("FABRIC_BACKEND")
        .env_remove("FABRIC_PASSPHRASE")
        .stdin(Stdio::null());
    command
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn summary(out: &Output) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    doc["summary"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_deploy_outputs_refresh_destroy() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();

    let out = stack(&fx, state, &["preview", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stack"], "example");
    assert_eq!(doc["summary"], serde_json::json!({"create": 14, "update": 0, "replace": 0, "delete": 0, "same": 0}));
    let first = &doc["steps"][0];
    assert_eq!((first["type"].as_str(), first["op"].as_str()), (Some("aws:ec2:Vpc"), Some("create")));
    assert!(first["changed"].as_array().unwrap().iter().any(|f| f == "cidr_block"));
    assert!(!state.join("state.json").exists(), "preview writes no state");

    // Without a terminal, deploy needs --yes and changes nothing without it.
    let out = stack(&fx, state, &["deploy"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("pass --yes"), "{}", text(&out.stderr));
    assert_eq!(fx.tagged("example").await.len(), 0);

    let out = stack(&fx, state, &["deploy", "--yes"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Plan: 14 to create") && err.contains("Apply complete"), "{err}");
    assert!(text(&out.stdout).contains("vpc_id = \"vpc-"), "{}", text(&out.stdout));

    let out = stack(&fx, state, &["preview", "--json"]);
    assert_eq!(summary(&out), serde_json::json!({"create": 0, "update": 0, "replace": 0, "delete": 0, "same": 14}));

    let out = stack(&fx, state, &["outputs", "vpc_id"]);
    assert!(text(&out.stdout).trim().starts_with("vpc-"), "{}", text(&out.stdout));
    let out = stack(&fx, state, &["outputs", "--json"]);
    let outputs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outputs["public_subnet_ids"].as_array().unwrap().len(), 3);

    let out = stack(&fx, state, &["graph", "--mermaid"]);
    assert!(text(&out.stdout).starts_with("flowchart LR"));
    let out = stack(&fx, state, &["graph"]);
    assert!(text(&out.stdout).starts_with("digraph \"example\""));

    // Drift out of band, seen by refresh, repaired by deploy --refresh.
    let outputs: serde_json::Value = serde_json::from_slice(&stack(&fx, state, &["outputs", "--json"]).stdout).unwrap();
    let lb = outputs["lb_security_group_id"].as_str().unwrap();
    fx.aws
        .ec2
        .create_tags()
        .resources(lb)
        .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("intruder").build())
        .send()
        .await
        .unwrap();
    let out = stack(&fx, state, &["preview", "--refresh", "--json"]);
    assert!(text(&out.stderr).contains("aws:ec2:SecurityGroup \"lb\" changed outside fabric"), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["update"], 1);
    let out = stack(&fx, state, &["deploy", "--refresh", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = stack(&fx, state, &["refresh"]);
    assert!(text(&out.stderr).contains("no drift"), "{}", text(&out.stderr));

    let out = stack(&fx, state, &["destroy"]);
    assert!(!out.status.success() && text(&out.stderr).contains("pass --yes"));
    let out = stack(&fx, state, &["destroy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fx.tagged("example").await, Vec::<(String, String)>::new());
    let out = stack(&fx, state, &["preview", "--json"]);
    assert_eq!(summary(&out)["create"], 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_in_s3_with_backend_flag() {
    let fx = Fixture::start().await;
    fx.bucket("state").await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], pass: Option<&str>| {
        let mut c = crate::stack_command("example");
        c.args(args)
            .args(["--backend", "s3://state/teams/web"])
            .env("FABRIC_AWS_ENDPOINT", fx.emulator.endpoint())
            .env("FABRIC_STATE_DIR", dir.path())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-2")
            .env_remove("FABRIC_PASSPHRASE")
            .stdin(Stdio::null());
        if let Some(p) = pass {
            c.env("FABRIC_PASSPHRASE", p);
        }
        c.output().unwrap()
    };
    let out = run(&["deploy", "--yes"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("set FABRIC_PASSPHRASE"), "{}", text(&out.stderr));
    let out = run(&["deploy", "--yes"], Some("s3cret"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["preview", "--json"], Some("s3cret"));
    assert_eq!(summary(&out)["same"], 14);
    let listed = fx.aws.s3.list_objects_v2().bucket("state").prefix("teams/web/example/").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"teams/web/example/state.json"), "{keys:?}");
    assert!(!keys.iter().any(|k| k.ends_with("lock.json")), "the lock is released: {keys:?}");
    assert_eq!(std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 0, "nothing local");
    let out = run(&["destroy", "--yes"], Some("s3cret"));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_environment_is_its_own_stack_with_its_own_state() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = stack(&fx, dir.path(), &["preview", "--json", "--env", "staging"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stack"], "example-staging");
    assert!(doc["steps"][0]["urn"].as_str().unwrap().starts_with("example-staging::"));
    let out = stack(&fx, dir.path(), &["preview", "--env", "Prod!"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("an environment name is lowercase letters"), "{}", text(&out.stderr));
}

/// A deploy through an endpoint that is not the local emulator gets the real-account retry
/// policy: with a quarter of the requests throttled, failing with 503 or losing their answer
/// after the write, one `deploy` converges, makes no duplicate, and the next preview is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_deploy_converges_through_throttling_5xx_and_lost_answers() {
    let fx = Fixture::start().await;
    let proxy = fabric_tests::faults::FaultProxy::start(fx.emulator.port, 0.25, 20261129);
    let dir = tempfile::tempdir().unwrap();
    let through_proxy = |args: &[&str]| stack_at(&proxy.endpoint(), dir.path(), args);
    let out = through_proxy(&["deploy", "--yes"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "one run converges:\n{err}");
    let c = &proxy.counts;
    let spoiled = [&c.throttled, &c.unavailable, &c.dropped].map(|n| n.load(std::sync::atomic::Ordering::SeqCst));
    assert!(spoiled.iter().all(|&n| n > 0), "every kind of fault was injected: {c:?}");

    // No duplicates: exactly one of each resource in the emulated account.
    let tagged = fx.tagged("example").await;
    let count = |k: &str| tagged.iter().filter(|(kind, _)| kind == k).count();
    assert_eq!(
        (count("vpc"), count("subnet"), count("internet-gateway"), count("route-table"), count("security-group")),
        (1, 3, 1, 1, 2),
        "{tagged:?}"
    );

    // The next preview, through the same faults, has nothing to do.
    let out = through_proxy(&["preview", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = summary(&out);
    assert_eq!((s["create"].as_u64(), s["update"].as_u64(), s["replace"].as_u64()), (Some(0), Some(0), Some(0)));

    proxy.set_rate(0.0);
    let out = through_proxy(&["destroy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(fx.tagged("example").await.is_empty());
}

/// A pending step recovery cannot settle (here: of a type no provider of this program knows) is
/// reported by name with the command that settles it, blocks neither preview nor deploy, and
/// `state settle` clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_step_recovery_cannot_settle_is_reported_and_settled_by_hand() {
    use fabric::state::store::KeySource;
    use fabric::state::{JournalEntry, LocalBackend, Op, StateStore};
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let out = stack(&fx, state, &["deploy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let urn = fabric::model::Urn::new("example", "test:Gone", "left-over");
    {
        let backend = std::sync::Arc::new(LocalBackend::new(state));
        let store = StateStore::open(backend, "example", KeySource::LocalKeyFile).await.unwrap();
        let entry = JournalEntry::Intent {
            urn: urn.clone(),
            op: Op::Create,
            type_name: "test:Gone".into(),
            inputs: serde_json::json!({}),
            deps: vec![],
        };
        store.record(&entry).await.unwrap();
    }
    let out = stack(&fx, state, &["preview"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: could not settle an interrupted create of test:Gone \"left-over\""), "{err}");
    assert!(err.contains("cargo xtask state <stack> settle example::test:Gone::left-over"), "{err}");
    let out = stack(&fx, state, &["deploy", "--yes"]);
    assert!(out.status.success(), "a deploy goes on: {}", text(&out.stderr));

    let out = stack(&fx, state, &["state", "settle", "nothing-like-it", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pending: example::test:Gone::left-over"), "{}", text(&out.stderr));
    let out = stack(&fx, state, &["state", "settle", "left-over", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("settled the pending create of example::test:Gone::left-over"));
    let out = stack(&fx, state, &["preview"]);
    assert!(!text(&out.stderr).contains("could not settle"), "{}", text(&out.stderr));
    let out = stack(&fx, state, &["destroy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fx.tagged("example").await.len(), 0);
}
