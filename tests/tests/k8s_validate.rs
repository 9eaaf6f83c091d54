//! Every manifest fabric renders validates against the Kubernetes 1.35 OpenAPI schemas
//! (`kubernetes-validate --strict`, pinned and installed into `.fabric/venv` with the emulator),
//! and the validator is no rubber stamp: a broken manifest fails.

use fabric::k8s::render::{render_objects, validate_files, write_dir};

fn home() -> std::path::PathBuf {
    let home = fabric_tests::fabric_home();
    fabric_local::ensure_installed(&home).expect("the venv with kubernetes-validate");
    home
}

#[test]
fn every_rendered_object_of_the_acme_stack_is_valid() {
    let home = home();
    for env in ["dev", "prod"] {
        let graph = fabric::testing::synthesize_env(
            "acme",
            env,
            concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/acme/config"),
            acme::program,
        )
        .unwrap();
        let objects = render_objects(&graph);
        assert_eq!(objects.len(), 24);
        let dir = tempfile::tempdir().unwrap();
        let files = write_dir(&objects, dir.path()).unwrap();
        assert_eq!(validate_files(&home, &files), Ok(Some(())), "{env}");
    }
}

#[test]
fn an_invalid_manifest_is_caught() {
    let home = home();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: three\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx:1.27}]}\n",
    )
    .unwrap();
    let err = validate_files(&home, &[file]).unwrap_err();
    assert!(err.contains("replicas") || err.contains("three"), "{err}");
}
