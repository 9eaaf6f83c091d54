//! Kubernetes objects on a cluster reached only through a kubeconfig, with no kubeconfig given:
//! refused with exit code 2, saying how to fix it, before any AWS or Kubernetes call.

use fabric::k8s::{ClusterRef, ConfigMap};
use fabric::model::Stack;
use std::net::TcpListener;

fn program(s: &mut Stack) -> fabric::Result<()> {
    let kind = ClusterRef::kubeconfig("kind");
    ConfigMap::builder().name("settings").namespace("apps").cluster(&kind).build().add(s)?;
    Ok(())
}

#[test]
fn no_kubeconfig_no_call() {
    // SAFETY: this test binary runs this one test; nothing else reads the environment meanwhile.
    unsafe { std::env::remove_var("FABRIC_KUBECONFIG") };
    let aws = TcpListener::bind("127.0.0.1:0").unwrap();
    aws.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", aws.local_addr().unwrap());
    let state = tempfile::tempdir().unwrap();
    for verb in ["preview", "deploy"] {
        let args = ["kind-demo", verb, "--yes", "--endpoint", &endpoint, "--state-dir", state.path().to_str().unwrap()];
        assert_eq!(fabric::cli::run_with_args("kind-demo", args, program), 2, "{verb}");
        assert!(aws.accept().is_err(), "{verb}: something connected to the AWS endpoint");
    }
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0, "no state was written");
    // Render needs no cluster.
    assert_eq!(fabric::cli::run_with_args("kind-demo", ["kind-demo", "render"], program), 0);
}
