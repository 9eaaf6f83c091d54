//! Kubernetes objects on a cluster reached only through a kubeconfig, with no kubeconfig given:
//! refused with exit code 2, saying how to fix it, before any AWS or Kubernetes call. The stack
//! runs as its own process (`stacks kind-demo`), with `FABRIC_KUBECONFIG` removed from its
//! environment only: the tests of this binary run in parallel and share one environment.

use std::net::TcpListener;

#[test]
fn no_kubeconfig_no_call() {
    let aws = TcpListener::bind("127.0.0.1:0").unwrap();
    aws.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", aws.local_addr().unwrap());
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::stack_command("kind-demo")
            .args(args)
            .env_remove("FABRIC_KUBECONFIG")
            .env_remove("FABRIC_BACKEND")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for verb in ["preview", "deploy"] {
        let out = run(&[verb, "--yes", "--endpoint", &endpoint, "--state-dir", state.path().to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {err}");
        assert!(
            err.contains("cluster `kind` is reached only through a kubeconfig") && err.contains("--kubeconfig"),
            "{err}"
        );
        assert!(aws.accept().is_err(), "{verb}: something connected to the AWS endpoint");
    }
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0, "no state was written");
    // Render needs no cluster.
    let out = run(&["render"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
