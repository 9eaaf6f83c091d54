//! The acme fabric through its command line, as `cargo xtask deploy acme --local --yes` runs it:
//! the AWS half is deployed to the emulator; the Kubernetes half is rendered, validated against
//! the Kubernetes schemas and plainly not applied; a second preview is all `same`; the
//! kubeconfig is an output and a file; destroy leaves nothing.

use fabric_tests::Fixture;
use std::process::{Command, Output, Stdio};

fn acme(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli(env!("CARGO_BIN_EXE_acme-stack"), fx, state, "acme", args)
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
    assert!(err.contains("Kubernetes: 29 objects rendered to"), "{err}");
    assert!(err.contains("validated against the Kubernetes 1.33 schemas"), "{err}");
    assert!(err.contains("No cluster was reached"), "{err}");
    assert!(err.contains("Apply complete"), "{err}");
    let manifests: Vec<_> = std::fs::read_dir(state.join("manifests")).unwrap().collect();
    assert_eq!(manifests.len(), 29);
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

    let out = acme(&fx, state, &["refresh", "--local"]);
    let err = text(&out.stderr);
    assert!(out.status.success() && err.contains("no drift"), "{err}");
    let out = acme(&fx, state, &["preview", "--local", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<&str> = doc["steps"].as_array().unwrap().iter().map(|s| s["op"].as_str().unwrap()).collect();
    assert!(!ops.is_empty() && ops.iter().all(|op| *op == "same"), "{doc}");

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
    let out = Command::new(env!("CARGO_BIN_EXE_acme-stack"))
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
