//! One Kubernetes object as fabric declares it: a JSON tree (from a typed k8s-openapi object or
//! from YAML) with values known only at apply time (outputs of other resources, secrets) put in
//! at their places.

use super::{ClusterRef, DEFAULT_READY_TIMEOUT_SECS, ObjectRef, cluster_scoped};
use crate::model::secret::{SECRET_KEY, is_secret};
use crate::model::{Output, Stack, Urn, ValidationError, ValidationErrors};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// A Kubernetes object to apply.
///
/// ```
/// use fabric::k8s::{ClusterRef, Manifest};
/// let mut s = fabric::model::Stack::new("demo");
/// let cluster = ClusterRef::kubeconfig("kind");
/// let yaml = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web, namespace: apps}\n\
///             spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}\n";
/// for m in Manifest::from_yaml(yaml).unwrap() {
///     m.add(&mut s, &cluster).unwrap();
/// }
/// let graph = s.finish().unwrap();
/// assert_eq!(graph.nodes()[0].urn.name(), "kind/apps/web");
/// ```
#[derive(Clone, Debug)]
pub struct Manifest {
    value: Value,
    /// JSON pointer → value known at apply time.
    injections: Vec<(String, Output<Value>)>,
    ready_timeout_secs: u64,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

impl Manifest {
    /// An object from its JSON form (`apiVersion`, `kind`, `metadata.name` required). A namespaced
    /// kind without a namespace goes to `default`; the values of a `Secret` are kept as secrets.
    pub fn new(value: Value) -> Self {
        let mut m = Manifest { value, injections: Vec::new(), ready_timeout_secs: DEFAULT_READY_TIMEOUT_SECS };
        let kind = str_at(&m.value, "/kind").unwrap_or_default().to_string();
        if !cluster_scoped(&kind)
            && str_at(&m.value, "/metadata/namespace").is_none()
            && let Some(meta) = m.value.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("namespace".into(), Value::String("default".into()));
        }
        if kind == "Secret" {
            for field in ["data", "stringData"] {
                if let Some(Value::Object(map)) = m.value.get_mut(field) {
                    for v in map.values_mut() {
                        if !is_secret(v) {
                            *v = serde_json::json!({ SECRET_KEY: v.take() });
                        }
                    }
                }
            }
        }
        m
    }

    /// A typed object (k8s-openapi).
    pub fn of<T: Serialize>(object: &T) -> Self {
        Manifest::new(serde_json::to_value(object).expect("Kubernetes objects serialize to JSON"))
    }

    /// Every object of a YAML stream (documents separated by `---`; empty documents skipped).
    pub fn from_yaml(text: &str) -> crate::Result<Vec<Manifest>> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| {
            invalid(0, "yaml", format!("not YAML: {e}"), "fix the YAML (one object per `---` document)")
        })?;
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (i, doc) in docs.into_iter().enumerate().filter(|(_, d)| !d.is_null()) {
            let problem = if !doc.is_object() {
                Some(("document", "is not a mapping"))
            } else if str_at(&doc, "/apiVersion").is_none_or(str::is_empty) {
                Some(("apiVersion", "is missing"))
            } else if str_at(&doc, "/kind").is_none_or(str::is_empty) {
                Some(("kind", "is missing"))
            } else if str_at(&doc, "/metadata/name").is_none_or(str::is_empty) {
                Some(("metadata.name", "is missing (generateName cannot be tracked across deploys)"))
            } else {
                None
            };
            match problem {
                Some((field, what)) => errors.extend(
                    invalid(
                        i + 1,
                        field,
                        format!("document {}: `{field}` {what}", i + 1),
                        "give every object apiVersion, kind and metadata.name",
                    )
                    .0,
                ),
                None => out.push(Manifest::new(doc)),
            }
        }
        if errors.is_empty() { Ok(out) } else { Err(crate::Error::Invalid(ValidationErrors(errors))) }
    }

    /// Puts a value known at apply time at `pointer` (a JSON pointer such as
    /// `/spec/template/spec/containers/0/env/1/value`).
    pub fn inject(&mut self, pointer: &str, value: Output<Value>) {
        self.injections.push((pointer.to_string(), value));
    }

    /// How long to wait for the object to be ready after each apply (default 10 minutes).
    pub fn ready_timeout(mut self, seconds: u64) -> Self {
        self.ready_timeout_secs = seconds;
        self
    }

    /// Sets a label in `metadata.labels`.
    pub fn label(&mut self, key: &str, value: &str) {
        if let Some(meta) = self.value.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = meta.entry("labels").or_insert_with(|| Value::Object(Default::default()));
            if let Some(l) = labels.as_object_mut() {
                l.insert(key.into(), Value::String(value.into()));
            }
        }
    }

    /// `(apiVersion, kind, namespace, name)`.
    pub fn identity(&self) -> (String, String, Option<String>, String) {
        let s = |p| str_at(&self.value, p).unwrap_or_default().to_string();
        (
            s("/apiVersion"),
            s("/kind"),
            str_at(&self.value, "/metadata/namespace").map(String::from),
            s("/metadata/name"),
        )
    }

    /// The object as known now (values known only at apply time as unknown markers).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Declares this object in `s`, applied to `cluster`.
    pub fn add(self, s: &mut Stack, cluster: &ClusterRef) -> crate::Result<ObjectRef> {
        let timeout = self.ready_timeout_secs;
        super::declare(s, cluster, self, timeout)
    }

    /// Problems that Kubernetes would reject, found before any call: names, namespaces, labels.
    pub fn check(&self, urn: &Urn) -> Vec<ValidationError> {
        let mut c = crate::model::Checker::new(urn.clone());
        let (api_version, kind, namespace, name) = self.identity();
        c.require(!api_version.is_empty(), "apiVersion", "is missing", "set apiVersion, such as `apps/v1`");
        c.require(!kind.is_empty(), "kind", "is missing", "set kind, such as `Deployment`");
        c.require(
            dns_subdomain(&name),
            "metadata.name",
            format!("`{name}` is not a valid object name"),
            "use at most 253 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit",
        );
        if let Some(ns) = &namespace {
            c.require(
                dns_label(ns),
                "metadata.namespace",
                format!("`{ns}` is not a valid namespace"),
                "use at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
            );
        }
        for field in ["labels", "annotations"] {
            if let Some(map) = self.value.pointer(&format!("/metadata/{field}")).and_then(Value::as_object) {
                for (k, v) in map {
                    c.require(
                        label_key(k),
                        &format!("metadata.{field}"),
                        format!("`{k}` is not a valid key"),
                        "use an optional DNS prefix and `/`, then at most 63 letters, digits, `-`, `_` and `.`",
                    );
                    if field == "labels" {
                        let v = v.as_str().unwrap_or("");
                        c.require(
                            label_value(v),
                            "metadata.labels",
                            format!("the value `{v}` of label `{k}` is not a valid label value"),
                            "use at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit",
                        );
                    }
                }
            }
        }
        if let Some((path, spec)) = pod_spec(&self.value) {
            check_pod_spec(&mut c, &path, spec);
        }
        c.into_errors()
    }
}

/// The pod spec of a workload object and its path (`spec.template.spec`), if it has one.
fn pod_spec(object: &Value) -> Option<(String, &Value)> {
    for (pointer, path) in [
        ("/spec/template/spec", "spec.template.spec"),
        ("/spec/jobTemplate/spec/template/spec", "spec.jobTemplate.spec.template.spec"),
    ] {
        if let Some(spec) = object.pointer(pointer) {
            return Some((path.to_string(), spec));
        }
    }
    if object.get("kind").and_then(Value::as_str) == Some("Pod") {
        return object.get("spec").map(|s| ("spec".to_string(), s));
    }
    None
}

/// What the schema check lets through and the API server or kubelet refuses later: quantities
/// that are not quantities, requests above limits, negative durations, root with `runAsNonRoot`.
fn check_pod_spec(c: &mut crate::model::Checker, path: &str, spec: &Value) {
    use super::values::quantity;
    let non_negative = |c: &mut crate::model::Checker, field: String, v: Option<&Value>| {
        if let Some(n) = v.and_then(Value::as_i64) {
            c.require(n >= 0, &field, format!("{n} is negative"), "give a duration of zero or more seconds");
        }
    };
    non_negative(c, format!("{path}.terminationGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds"));
    let pod_user = spec.pointer("/securityContext/runAsUser").and_then(Value::as_i64);
    let pod_non_root = spec.pointer("/securityContext/runAsNonRoot").and_then(Value::as_bool);
    for list in ["initContainers", "containers"] {
        for (i, ctr) in spec.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let at = format!("{path}.{list}[{i}]");
            let mut requests: Vec<(String, f64)> = Vec::new();
            let mut limits: Vec<(String, f64)> = Vec::new();
            for kind in ["requests", "limits"] {
                let entries = ctr.pointer(&format!("/resources/{kind}")).and_then(Value::as_object);
                for (res, q) in entries.into_iter().flatten() {
                    let text = match q {
                        Value::String(t) => t.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    let field = format!("{at}.resources.{kind}.{res}");
                    match quantity(&text) {
                        Ok(v) if v < 0.0 => {
                            c.error(&field, format!("`{text}` is negative"), "give a quantity of zero or more")
                        }
                        Ok(v) if kind == "requests" => requests.push((res.clone(), v)),
                        Ok(v) => limits.push((res.clone(), v)),
                        Err(e) => c.error(
                            &field,
                            e,
                            "write it as Kubernetes does: `250m` or `0.5` CPU, `512Mi` or `1Gi` memory",
                        ),
                    }
                }
            }
            for (res, request) in &requests {
                if let Some((_, limit)) = limits.iter().find(|(r, _)| r == res)
                    && request > limit
                {
                    let shown = |k: &str| ctr.pointer(&format!("/resources/{k}/{res}")).cloned().unwrap_or(Value::Null);
                    c.error(
                        &format!("{at}.resources.requests.{res}"),
                        format!("the request {} is above the limit {}", shown("requests"), shown("limits")),
                        "request at most the limit (the API server refuses the pod otherwise)",
                    );
                }
            }
            let user = ctr.pointer("/securityContext/runAsUser").and_then(Value::as_i64).or(pod_user);
            let non_root = ctr.pointer("/securityContext/runAsNonRoot").and_then(Value::as_bool).or(pod_non_root);
            if non_root == Some(true) && user == Some(0) {
                c.error(
                    &format!("{at}.securityContext.runAsUser"),
                    "runs as user 0 (root) while runAsNonRoot is true: the kubelet refuses to start it",
                    "run as a non-zero user (10001), or drop runAsNonRoot (not recommended)",
                );
            }
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                for field in ["initialDelaySeconds", "periodSeconds", "timeoutSeconds"] {
                    non_negative(c, format!("{at}.{probe}.{field}"), ctr.pointer(&format!("/{probe}/{field}")));
                }
            }
            non_negative(
                c,
                format!("{at}.lifecycle.preStop.sleep.seconds"),
                ctr.pointer("/lifecycle/preStop/sleep/seconds"),
            );
        }
    }
}

fn invalid(doc: usize, field: &str, problem: String, fix: &str) -> ValidationErrors {
    ValidationErrors(vec![ValidationError {
        urn: Urn::new("yaml", "k8s:Manifest", &format!("document-{doc}")),
        field: field.into(),
        problem,
        fix: fix.into(),
    }])
}

fn alnum_edges(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric()) && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// RFC 1123 label: namespaces, most names.
pub fn dns_label(s: &str) -> bool {
    s.len() <= 63 && alnum_edges(s) && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// RFC 1123 subdomain: object names.
pub fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && alnum_edges(s)
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

fn label_name(s: &str) -> bool {
    s.len() <= 63 && alnum_edges(s) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn label_key(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => dns_subdomain(prefix) && label_name(name),
        None => label_name(k),
    }
}

fn label_value(v: &str) -> bool {
    v.is_empty() || label_name(v)
}

impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.injections.is_empty() {
            return self.value.serialize(serializer);
        }
        let mut value = self.value.clone();
        for (pointer, output) in &self.injections {
            let resolved = serde_json::to_value(output).map_err(serde::ser::Error::custom)?;
            match value.pointer_mut(pointer) {
                Some(slot) => *slot = resolved,
                None => return Err(serde::ser::Error::custom(format!("no place `{pointer}` in the manifest"))),
            }
        }
        value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_in_yaml_stay_secret_and_namespaces_default() {
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2}\n";
        let m = Manifest::from_yaml(yaml).unwrap().remove(0);
        assert_eq!(m.value()["stringData"]["password"], json!({"$secret": "hunter2"}));
        assert_eq!(m.identity().2.as_deref(), Some("default"));
        let ns = Manifest::new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}));
        assert_eq!(ns.identity().2, None);
    }

    #[test]
    fn bad_yaml_says_which_document_and_field() {
        let err = Manifest::from_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: Pod\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("document 2: `apiVersion` is missing"), "{err}");
        assert!(Manifest::from_yaml("a: [").unwrap_err().to_string().contains("not YAML"));
    }

    #[test]
    fn names_and_labels_are_checked() {
        let mut m = Manifest::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "Bad_Name", "namespace": "ok", "labels": {"tier": "-x"}}}));
        m.label("fabric.dev/stack", "demo");
        let errors = m.check(&Urn::new("demo", "k8s:v1:ConfigMap", "c/ok/x"));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "metadata.labels"]);
    }

    #[test]
    fn injected_values_are_resolved_when_serialized() {
        let mut m = Manifest::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"url": ""}}));
        let db = Urn::new("demo", "aws:rds:Instance", "db");
        m.inject("/data/url", Output::<String>::reference(db.clone(), "endpoint").map(Value::String));
        let (v, deps) =
            crate::model::output::with_resolver(&crate::model::output::NothingKnown, || serde_json::to_value(&m));
        assert_eq!(v.unwrap()["data"]["url"], json!({"$unknown": "demo::aws:rds:Instance::db.endpoint"}));
        assert!(deps.contains(&db));
    }
}
