//! The Kubernetes YAML a deploy would apply: one document per object, in apply order (then by
//! namespace, kind and name), secrets shown as `[secret]` and values known only at apply time as
//! `(known after apply)`; and its offline validation against the Kubernetes OpenAPI schemas.

use super::{TYPE_PREFIX, tier};
use crate::engine::render::humanize;
use crate::model::secret::redact;
use crate::model::{Graph, NothingKnown};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One rendered object.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `003-deployment-apps-web.yaml`.
    pub file_name: String,
    pub yaml: String,
    pub object: Value,
}

/// Every Kubernetes object of `graph`, in a deterministic order.
pub fn render_objects(graph: &Graph) -> Vec<Rendered> {
    let mut objects: Vec<(u8, String, String, String, String, Value)> = graph
        .nodes()
        .iter()
        .filter(|n| n.type_name().starts_with(TYPE_PREFIX))
        .filter_map(|n| {
            let inputs = n.inputs(&NothingKnown).ok()?;
            let object = humanize(&redact(inputs.get("manifest")?));
            let s = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            let cluster = inputs.pointer("/cluster/name").and_then(Value::as_str).unwrap_or_default().to_string();
            let kind = s("/kind");
            Some((tier(&kind), cluster, s("/metadata/namespace"), kind, s("/metadata/name"), object))
        })
        .collect();
    objects.sort_by(|a, b| (a.0, &a.1, &a.2, &a.3, &a.4).cmp(&(b.0, &b.1, &b.2, &b.3, &b.4)));
    let several_clusters = objects.iter().any(|o| o.1 != objects[0].1);
    objects
        .into_iter()
        .enumerate()
        .map(|(i, (_, cluster, ns, kind, name, object))| {
            let mut parts = vec![format!("{:03}", i + 1)];
            if several_clusters {
                parts.push(cluster);
            }
            parts.push(kind.to_ascii_lowercase());
            if !ns.is_empty() {
                parts.push(ns);
            }
            parts.push(name);
            Rendered {
                file_name: format!("{}.yaml", parts.join("-")),
                yaml: serde_saphyr::to_string(&object).expect("a manifest serializes to YAML"),
                object,
            }
        })
        .collect()
}

/// All objects as one YAML stream.
pub fn to_yaml_stream(objects: &[Rendered]) -> String {
    objects.iter().map(|o| format!("---\n{}", o.yaml)).collect()
}

/// Writes one file per object into `dir` (emptied of earlier `.yaml` files first); returns the
/// paths written.
pub fn write_dir(objects: &[Rendered], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::remove_file(path)?;
        }
    }
    let mut written = Vec::new();
    for o in objects {
        let path = dir.join(&o.file_name);
        std::fs::write(&path, &o.yaml)?;
        written.push(path);
    }
    Ok(written)
}

/// The Kubernetes version manifests are validated against (k8s-openapi's feature).
pub const KUBERNETES_VERSION: &str = "1.35";

/// Validates `files` with `kubernetes-validate --strict` (installed by `--local` into the fabric
/// venv, or on `PATH`). `Ok(None)` when the validator is not installed.
pub fn validate_files(home: &Path, files: &[PathBuf]) -> Result<Option<()>, String> {
    let venv_tool = crate::local::kubernetes_validate(home);
    let tool = if venv_tool.exists() { venv_tool } else { PathBuf::from("kubernetes-validate") };
    if files.is_empty() {
        return Ok(Some(()));
    }
    let output = match std::process::Command::new(&tool)
        .args(["-k", KUBERNETES_VERSION, "--strict", "--quiet"])
        .args(files)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("running {}: {e}", tool.display())),
    };
    if output.status.success() {
        Ok(Some(()))
    } else {
        Err(format!(
            "the manifests do not validate against the Kubernetes {KUBERNETES_VERSION} schemas:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
