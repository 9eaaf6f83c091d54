//! The Kubernetes YAML a deploy would apply: one document per object, in apply order (then by
//! namespace, kind and name), secrets shown as `[secret]` and values known only at apply time as
//! `(known after apply)`; and its offline validation against the Kubernetes OpenAPI schemas.

use super::version::{KubeVersion, VALIDATOR_RANGE};
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
    /// The Kubernetes version of its cluster, when known.
    pub version: Option<KubeVersion>,
}

/// An object with what orders it: tier, cluster, namespace, kind, name.
struct Row {
    key: (u8, String, String, String, String),
    object: Value,
    version: Option<KubeVersion>,
}

/// Every Kubernetes object of `graph`, in a deterministic order.
pub fn render_objects(graph: &Graph) -> Vec<Rendered> {
    let mut rows: Vec<Row> = graph
        .nodes()
        .iter()
        .filter(|n| n.type_name().starts_with(TYPE_PREFIX))
        .filter_map(|n| {
            let inputs = n.inputs(&NothingKnown).ok()?;
            let object = humanize(&redact(inputs.get("manifest")?));
            let s = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            let cluster = inputs.pointer("/cluster/name").and_then(Value::as_str).unwrap_or_default().to_string();
            let kind = s("/kind");
            let version = inputs.pointer("/cluster/version").and_then(Value::as_str).and_then(KubeVersion::parse);
            let key = (tier(&kind), cluster, s("/metadata/namespace"), kind, s("/metadata/name"));
            Some(Row { key, object, version })
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let several_clusters = rows.iter().any(|r| r.key.1 != rows[0].key.1);
    rows.into_iter()
        .enumerate()
        .map(|(i, Row { key: (_, cluster, ns, kind, name), object, version })| {
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
                version,
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

/// The Kubernetes version manifests of a cluster whose version is not known are validated
/// against (k8s-openapi's feature).
pub const KUBERNETES_VERSION: &str = "1.35";

/// The version `objects` of a cluster running `version` are validated against.
pub fn validation_version(version: Option<KubeVersion>) -> KubeVersion {
    version.unwrap_or_else(|| KubeVersion::parse(KUBERNETES_VERSION).expect("a version"))
}

/// Validates rendered `objects` (written to `files`, in the same order), each against the
/// schemas of its cluster's Kubernetes version — never newer ones. `Ok(None)` when the validator
/// is not installed; `Ok(Some(versions))`: the versions validated against.
pub fn validate_objects(
    home: &Path,
    objects: &[Rendered],
    files: &[PathBuf],
) -> Result<Option<Vec<KubeVersion>>, String> {
    let mut groups: Vec<(KubeVersion, Vec<PathBuf>)> = Vec::new();
    for (o, f) in objects.iter().zip(files) {
        let v = validation_version(o.version);
        match groups.iter_mut().find(|(g, _)| *g == v) {
            Some((_, fs)) => fs.push(f.clone()),
            None => groups.push((v, vec![f.clone()])),
        }
    }
    groups.sort_by_key(|(v, _)| *v);
    let mut problems = Vec::new();
    for (version, files) in &groups {
        if *version < VALIDATOR_RANGE.0 || *version > VALIDATOR_RANGE.1 {
            return Err(format!(
                "cannot validate for Kubernetes {version}: the pinned kubernetes-validate has schemas for {} to {}\n    fix: target a version in that range",
                VALIDATOR_RANGE.0, VALIDATOR_RANGE.1
            ));
        }
        match validate_files(home, files, *version) {
            Ok(Some(())) => {}
            Ok(None) => return Ok(None),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() { Ok(Some(groups.into_iter().map(|(v, _)| v).collect())) } else { Err(problems.join("\n")) }
}

/// Validates `files` against the Kubernetes `version` schemas with `kubernetes-validate
/// --strict` (installed by `--local` into the fabric venv, or on `PATH`). `Ok(None)` when the
/// validator is not installed.
pub fn validate_files(home: &Path, files: &[PathBuf], version: KubeVersion) -> Result<Option<()>, String> {
    let venv_tool = crate::local::kubernetes_validate(home);
    let tool = if venv_tool.exists() { venv_tool } else { PathBuf::from("kubernetes-validate") };
    if files.is_empty() {
        return Ok(Some(()));
    }
    let output = match std::process::Command::new(&tool)
        .args(["-k", &version.to_string(), "--strict", "--quiet"])
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
            "the manifests do not validate against the Kubernetes {version} schemas:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
