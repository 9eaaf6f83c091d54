//! Every manifest fabric renders validates against the OpenAPI schemas of its cluster's Kubernetes
//! version (`kubernetes-validate --strict`, pinned and installed into `.fabric/venv` with the
//! emulator), for every version from 1.29 to 1.35; and the validator is no rubber stamp: a broken
//! manifest, or a field newer than the version, fails.

use fabric::k8s::KubeVersion;
use fabric::k8s::render::{render_objects, validate_files, validate_objects, write_dir};

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
        assert_eq!(objects.len(), 31);
        let dir = tempfile::tempdir().unwrap();
        let files = write_dir(&objects, dir.path()).unwrap();
        let acme_version = KubeVersion::new(1, 33);
        assert_eq!(validate_objects(&home, &objects, &files), Ok(Some(vec![acme_version])), "{env}");
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
    let err = validate_files(&home, &[file], KubeVersion::new(1, 35)).unwrap_err();
    assert!(err.contains("replicas") || err.contains("three"), "{err}");
}

/// acme (dev) with its cluster at Kubernetes `version`.
fn acme_at(version: KubeVersion) -> fabric::model::Graph {
    let config = tempfile::tempdir().unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/acme/config/dev.toml");
    let text = std::fs::read_to_string(source).unwrap();
    assert!(text.contains("kubernetes_version = \"1.33\""), "the test edits this line");
    let text = text.replace("kubernetes_version = \"1.33\"", &format!("kubernetes_version = \"{version}\""));
    std::fs::write(config.path().join("dev.toml"), text).unwrap();
    fabric::testing::synthesize_env("acme", "dev", config.path().to_str().unwrap(), acme::program).unwrap()
}

/// The `preStop` hooks of the rendered Deployments.
fn pre_stop_hooks(objects: &[fabric::k8s::render::Rendered]) -> Vec<serde_json::Value> {
    objects
        .iter()
        .filter(|o| o.object["kind"] == "Deployment")
        .flat_map(|o| o.object["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c.pointer("/lifecycle/preStop").cloned())
        .collect()
}

#[test]
fn acme_validates_against_the_schemas_of_every_version_from_1_29_to_1_35() {
    let home = home();
    for minor in 29..=35 {
        let version = KubeVersion::new(1, minor);
        let objects = render_objects(&acme_at(version));
        assert!(objects.iter().all(|o| o.version == Some(version)), "{version}");
        let hooks = pre_stop_hooks(&objects);
        assert_eq!(hooks.len(), 2, "{version}: api and ui drain before they stop");
        for hook in &hooks {
            match minor {
                30.. => assert_eq!(hook["sleep"]["seconds"], 15, "{version}: {hook}"),
                _ => assert_eq!(hook["exec"]["command"], serde_json::json!(["sleep", "15"]), "{version}: {hook}"),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let files = write_dir(&objects, dir.path()).unwrap();
        assert_eq!(validate_objects(&home, &objects, &files), Ok(Some(vec![version])), "{version}");
    }
}

#[test]
fn a_field_newer_than_the_version_is_caught() {
    let home = home();
    // Objects built for 1.30 (the sleep action) do not validate against the 1.28 schemas. (1.29's
    // schema has the field, as an alpha feature that clusters leave off: builders use it from
    // 1.30 on, where it is on by default.)
    let objects = render_objects(&acme_at(KubeVersion::new(1, 30)));
    let dir = tempfile::tempdir().unwrap();
    let files = write_dir(&objects, dir.path()).unwrap();
    let err = validate_files(&home, &files, KubeVersion::new(1, 28)).unwrap_err();
    assert!(err.contains("1.28") && err.contains("sleep"), "{err}");
}
