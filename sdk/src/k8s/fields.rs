//! Field paths of server-side apply: who owns which field of a live object (`managedFields`), and
//! which of the fields fabric set someone else has changed since.
//!
//! The API server names fields two ways, both read here without the schema:
//! - in `managedFields` (`FieldsV1`): `{"f:spec": {"f:containers": {"k:{\"name\":\"api\"}": {"f:image": {}}}}}`;
//! - in conflict answers: `.spec.containers[name="api"].image`.
//!
//! A list's merge keys are taken from the live object's own `managedFields` (the `k:` entries at
//! that list), so keyed lists (containers by name, ports by port and protocol) need no table.

use crate::model::output::UNKNOWN_KEY;
use crate::model::secret::is_secret;
use serde_json::{Map, Value};
use std::fmt;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    /// A field of an object (`f:name`, `.name`).
    Field(String),
    /// The element of a keyed list whose fields have these values (`k:{…}`, `[name="api"]`).
    Key(Map<String, Value>),
    /// The element of a set-like list with this value (`v:…`, `[=…]`).
    Value(Value),
    /// The element at this index of an atomic list (`i:0`, `[0]`).
    Index(usize),
}

/// A field path, shown as `spec.template.spec.containers[name=api].image`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FieldPath(pub Vec<Seg>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Field(name) if i == 0 => write!(f, "{name}")?,
                Seg::Field(name) => write!(f, ".{name}")?,
                Seg::Key(keys) => {
                    let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
                    write!(f, "[{}]", parts.join(","))?
                }
                Seg::Value(v) => write!(f, "[={}]", plain(v))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl FieldPath {
    /// Parses a path as conflict answers write it: `.spec.containers[name="api"].image`,
    /// `.spec.ports[port=80,protocol="TCP"]`, `.metadata.finalizers[="x"]`, `.spec.args[0]`.
    pub fn parse(text: &str) -> Option<FieldPath> {
        let mut segs = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    i = start;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    if i == start {
                        return None;
                    }
                    segs.push(Seg::Field(chars[start..i].iter().collect()));
                }
                '[' => {
                    let start = i + 1;
                    let mut in_quotes = false;
                    i = start;
                    while i < chars.len() && (in_quotes || chars[i] != ']') {
                        if chars[i] == '"' && chars[i - 1] != '\\' {
                            in_quotes = !in_quotes;
                        }
                        i += 1;
                    }
                    if i >= chars.len() {
                        return None;
                    }
                    let inner: String = chars[start..i].iter().collect();
                    i += 1;
                    segs.push(parse_bracket(&inner)?);
                }
                _ if segs.is_empty() => {
                    // Tolerate a path without the leading dot.
                    return FieldPath::parse(&format!(".{text}"));
                }
                _ => return None,
            }
        }
        Some(FieldPath(segs))
    }
}

fn parse_bracket(inner: &str) -> Option<Seg> {
    if let Some(value) = inner.strip_prefix('=') {
        return Some(Seg::Value(scalar(value)));
    }
    if let Ok(n) = inner.parse::<usize>() {
        return Some(Seg::Index(n));
    }
    let mut keys = Map::new();
    let mut part = String::new();
    let mut in_quotes = false;
    let mut parts = Vec::new();
    for c in inner.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                part.push(c);
            }
            ',' if !in_quotes => parts.push(std::mem::take(&mut part)),
            _ => part.push(c),
        }
    }
    parts.push(part);
    for p in parts {
        let (k, v) = p.split_once('=')?;
        keys.insert(k.trim().to_string(), scalar(v.trim()));
    }
    Some(Seg::Key(keys))
}

fn scalar(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The `FieldsV1` key of `seg` as it is spelled in `managedFields`.
fn fields_v1_matches(entry: &str, seg: &Seg) -> bool {
    match seg {
        Seg::Field(name) => entry.strip_prefix("f:") == Some(name.as_str()),
        Seg::Key(keys) => entry
            .strip_prefix("k:")
            .and_then(|j| serde_json::from_str::<Map<String, Value>>(j).ok())
            .is_some_and(|k| &k == keys),
        Seg::Value(v) => {
            entry.strip_prefix("v:").and_then(|j| serde_json::from_str::<Value>(j).ok()).as_ref() == Some(v)
        }
        Seg::Index(n) => entry.strip_prefix("i:").and_then(|j| j.parse::<usize>().ok()) == Some(*n),
    }
}

/// The list element `seg` names. Strict: every key field must be there with that value.
fn element<'a>(list: &'a [Value], seg: &Seg, lenient: bool) -> Option<&'a Value> {
    match seg {
        Seg::Key(keys) => list.iter().find(|e| {
            keys.iter().all(|(k, v)| match e.get(k) {
                Some(x) => x == v || x.as_str().is_some_and(|s| Some(s) == v.as_str()),
                // A key field the program left to its default (`protocol: TCP` of a port).
                None => lenient,
            })
        }),
        Seg::Value(v) => list.iter().find(|e| *e == v),
        Seg::Index(n) => list.get(*n),
        Seg::Field(_) => None,
    }
}

/// The value at `path` in `value`. `lenient`: a keyed element matches when a key field it lacks
/// (one the server defaults) is the only difference — how a manifest names a live element.
pub fn lookup<'a>(value: &'a Value, path: &FieldPath, lenient: bool) -> Option<&'a Value> {
    let mut here = value;
    for seg in &path.0 {
        here = match (seg, here) {
            (Seg::Field(name), Value::Object(m)) => m.get(name)?,
            (_, Value::Array(items)) => element(items, seg, lenient)?,
            _ => return None,
        };
    }
    Some(here)
}

/// Sets the value at `path` in `value` (`None`: removes it); nothing when the path's parent is
/// not there. Keyed elements are named leniently, as in [`lookup`].
pub fn set(value: &mut Value, path: &FieldPath, new: Option<Value>) {
    let Some((last, parents)) = path.0.split_last() else {
        if let Some(v) = new {
            *value = v;
        }
        return;
    };
    let mut here = value;
    for seg in parents {
        let next = match (seg, here) {
            (Seg::Field(name), Value::Object(m)) => m.get_mut(name),
            (_, Value::Array(items)) => {
                let at = items.iter().position(|e| element(std::slice::from_ref(e), seg, true).is_some());
                at.and_then(move |i| items.get_mut(i))
            }
            _ => None,
        };
        match next {
            Some(n) => here = n,
            None => return,
        }
    }
    match (last, here, new) {
        (Seg::Field(name), Value::Object(m), Some(v)) => {
            m.insert(name.clone(), v);
        }
        (Seg::Field(name), Value::Object(m), None) => {
            m.remove(name);
        }
        (seg, Value::Array(items), new) => {
            if let Some(i) = items.iter().position(|e| element(std::slice::from_ref(e), seg, true).is_some()) {
                match new {
                    Some(v) => items[i] = v,
                    None => {
                        items.remove(i);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The `FieldsV1` node at `path`, if the set has it.
fn fields_v1_node<'a>(set: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut here = set;
    for seg in &path.0 {
        let m = here.as_object()?;
        here = m.iter().find(|(k, _)| fields_v1_matches(k, seg)).map(|(_, v)| v)?;
    }
    Some(here)
}

/// The field managers of a live object, each with the fields it owns.
#[derive(Clone, Debug, Default)]
pub struct Managers(pub Vec<(String, Value)>);

impl Managers {
    /// From a live object's `metadata.managedFields`: one entry per manager (a manager that both
    /// applied and updated owns the union).
    pub fn of(live: &Value) -> Managers {
        let mut out: Vec<(String, Value)> = Vec::new();
        for entry in live.pointer("/metadata/managedFields").and_then(Value::as_array).into_iter().flatten() {
            let manager = entry.get("manager").and_then(Value::as_str).unwrap_or("(unnamed)");
            let operation = entry.get("operation").and_then(Value::as_str).unwrap_or("");
            let name = if manager == super::FIELD_MANAGER && operation != "Apply" {
                // fabric's own non-apply writes (none today) are not the applied set.
                format!("{manager} ({operation})")
            } else {
                manager.to_string()
            };
            let fields = entry.get("fieldsV1").cloned().unwrap_or(Value::Object(Map::new()));
            match out.iter_mut().find(|(m, _)| *m == name) {
                Some((_, set)) => merge(set, &fields),
                None => out.push((name, fields)),
            }
        }
        Managers(out)
    }

    /// The managers that own `path` (the field itself, or an atomic value above it).
    pub fn owners(&self, path: &FieldPath) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, set)| {
                (1..=path.0.len()).any(|n| {
                    let prefix = FieldPath(path.0[..n].to_vec());
                    fields_v1_node(set, &prefix).is_some_and(|node| n == path.0.len() || is_leaf(node))
                })
            })
            .map(|(m, _)| m.as_str())
            .collect()
    }

    fn sets_at<'a>(&'a self, path: &FieldPath) -> Vec<&'a Value> {
        self.0.iter().filter_map(|(_, set)| fields_v1_node(set, path)).collect()
    }
}

fn is_leaf(node: &Value) -> bool {
    node.as_object().is_some_and(|m| m.is_empty())
}

fn merge(into: &mut Value, from: &Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        for (k, v) in b {
            match a.get_mut(k) {
                Some(existing) => merge(existing, v),
                None => {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// A field fabric set that someone else changed (or removed) since.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDrift {
    pub path: FieldPath,
    /// What fabric applied.
    pub ours: Value,
    /// What the cluster has now (`None`: removed).
    pub live: Option<Value>,
    /// The managers that own the field now (empty when it was removed).
    pub managers: Vec<String>,
}

impl FieldDrift {
    /// `spec.replicas: 2 => 5 (changed by kubectl-scale)`.
    pub fn describe(&self) -> String {
        let by = if self.managers.is_empty() {
            "removed outside fabric".to_string()
        } else {
            format!("changed by {}", self.managers.join(", "))
        };
        format!("{}: {by}", self.path)
    }
}

/// The fields of `manifest` (what fabric applied) that fabric no longer owns in `live` and whose
/// value there differs: each a change another field manager made (or a removal).
///
/// Secret values (`$secret`) and `stringData` are not compared: the cluster never shows them back.
pub fn drift(manifest: &Value, live: &Value) -> Vec<FieldDrift> {
    let managers = Managers::of(live);
    let mut out = Vec::new();
    let mut path = FieldPath::default();
    for (k, v) in manifest.as_object().into_iter().flatten() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "stringData") {
            continue;
        }
        if k == "data" && manifest.get("kind").and_then(Value::as_str) == Some("Secret") {
            continue;
        }
        path.0.push(Seg::Field(k.clone()));
        walk(v, live.get(k), &managers, &mut path, &mut out);
        path.0.pop();
    }
    out
}

fn opaque(v: &Value) -> bool {
    is_secret(v) || v.get(UNKNOWN_KEY).is_some()
}

fn walk(ours: &Value, live: Option<&Value>, managers: &Managers, path: &mut FieldPath, out: &mut Vec<FieldDrift>) {
    if opaque(ours) {
        return;
    }
    let sets = managers.sets_at(path);
    let atomic = sets.iter().any(|s| is_leaf(s));
    match ours {
        Value::Object(m) if !m.is_empty() && !atomic => {
            for (k, v) in m {
                path.0.push(Seg::Field(k.clone()));
                walk(v, live.and_then(|l| l.get(k)), managers, path, out);
                path.0.pop();
            }
            return;
        }
        Value::Array(items) if !items.is_empty() && !atomic => {
            // The keys of the list's elements, as the managers name them.
            let keys: Vec<Seg> = sets
                .iter()
                .filter_map(|s| s.as_object())
                .flat_map(|m| m.keys())
                .filter_map(|k| seg_of_fields_v1_key(k))
                .collect();
            if keys.iter().any(|k| matches!(k, Seg::Key(_) | Seg::Value(_))) {
                let live_items = live.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                for (i, item) in items.iter().enumerate() {
                    let key = keys.iter().find(|k| element(std::slice::from_ref(item), k, true).is_some());
                    match key {
                        Some(key) => {
                            path.0.push(key.clone());
                            walk(item, element(live_items, key, false), managers, path, out);
                            path.0.pop();
                        }
                        None => out.push(FieldDrift {
                            path: FieldPath([path.0.clone(), vec![Seg::Index(i)]].concat()),
                            ours: item.clone(),
                            live: None,
                            managers: Vec::new(),
                        }),
                    }
                }
                return;
            }
        }
        _ => {}
    }
    // A leaf (or an atomic value): drifted when fabric no longer owns it and it differs.
    let owners = managers.owners(path);
    if owners.contains(&super::FIELD_MANAGER) || live == Some(ours) {
        return;
    }
    out.push(FieldDrift {
        path: path.clone(),
        ours: ours.clone(),
        live: live.cloned(),
        managers: if live.is_some() { owners.iter().map(|s| s.to_string()).collect() } else { Vec::new() },
    });
}

fn seg_of_fields_v1_key(key: &str) -> Option<Seg> {
    if let Some(j) = key.strip_prefix("k:") {
        return serde_json::from_str(j).ok().map(Seg::Key);
    }
    if let Some(j) = key.strip_prefix("v:") {
        return serde_json::from_str(j).ok().map(Seg::Value);
    }
    None
}

/// A field another manager owns, as a conflict answer names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub path: FieldPath,
    /// The manager that owns it (`kubectl-set`).
    pub manager: String,
    pub raw: String,
}

/// The conflicts of a 409 answer to a server-side apply (`details.causes`).
pub fn conflicts(status: &kube::core::Status) -> Vec<Conflict> {
    let causes = status.details.as_ref().map(|d| d.causes.as_slice()).unwrap_or(&[]);
    causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict" || c.message.starts_with("conflict with"))
        .map(|c| Conflict {
            path: FieldPath::parse(&c.field).unwrap_or_default(),
            manager: c.message.split('"').nth(1).unwrap_or(&c.message).to_string(),
            raw: c.field.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conflict_paths_parse_keys_values_and_indexes() {
        let p = FieldPath::parse(r#".spec.template.spec.containers[name="api"].image"#).unwrap();
        assert_eq!(p.to_string(), "spec.template.spec.containers[name=api].image");
        let mut key = Map::new();
        key.insert("name".into(), json!("api"));
        assert_eq!(p.0[4], Seg::Key(key));
        let p = FieldPath::parse(r#".spec.ports[port=80,protocol="TCP"].targetPort"#).unwrap();
        assert_eq!(p.to_string(), "spec.ports[port=80,protocol=TCP].targetPort");
        assert_eq!(FieldPath::parse(r#".metadata.finalizers[="a.b/c"]"#).unwrap().0[2], Seg::Value(json!("a.b/c")));
        assert_eq!(FieldPath::parse(".spec.args[1]").unwrap().0[2], Seg::Index(1));
        assert_eq!(FieldPath::parse(r#".data[name="a]b"]"#).unwrap().to_string(), "data[name=a]b]");
        assert!(FieldPath::parse(".spec..x").is_none());
        assert!(FieldPath::parse(".spec[name=\"x\"").is_none());
    }

    #[test]
    fn a_manifest_names_a_live_element_even_without_its_defaulted_key_fields() {
        let manifest = json!({"spec": {"ports": [{"containerPort": 8080}]}});
        let p = FieldPath::parse(r#".spec.ports[containerPort=8080,protocol="TCP"]"#).unwrap();
        assert!(lookup(&manifest, &p, true).is_some());
        assert!(lookup(&manifest, &p, false).is_none());
    }

    /// The api Deployment after `kubectl set image` (manager `kubectl-set`): the answer a 1.36 API
    /// server gave (managedFields as read from `../shared/kube`).
    fn live_after_set_image() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "demo", "labels": {"a": "b"},
                "managedFields": [
                    {"manager": "fabric", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}},
                        "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                            "f:metadata": {"f:labels": {"f:app": {}}},
                            "f:spec": {"f:containers": {"k:{\"name\":\"api\"}": {".": {}, "f:name": {},
                                "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}}},
                    {"manager": "kubectl-set", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"api\"}": {"f:image": {}}}}}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                     "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}}
                ]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "api", "image": "evil/api:latest",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}], "imagePullPolicy": "Always"}]}}},
            "status": {"replicas": 2}
        })
    }

    fn applied() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "demo", "labels": {"a": "b"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "api", "image": "api:1.0", "ports": [{"containerPort": 8080}]}]}}}})
    }

    #[test]
    fn a_field_another_manager_changed_is_drift_named_with_that_manager() {
        let found = drift(&applied(), &live_after_set_image());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path.to_string(), "spec.template.spec.containers[name=api].image");
        assert_eq!(found[0].ours, json!("api:1.0"));
        assert_eq!(found[0].live, Some(json!("evil/api:latest")));
        assert_eq!(found[0].managers, ["kubectl-set"]);
        assert_eq!(found[0].describe(), "spec.template.spec.containers[name=api].image: changed by kubectl-set");
    }

    #[test]
    fn fields_fabric_still_owns_and_defaults_the_server_added_are_no_drift() {
        let mut live = live_after_set_image();
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("api:1.0");
        let fields = &mut live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"api\"}"];
        fields["f:image"] = json!({});
        live["metadata"]["managedFields"].as_array_mut().unwrap().remove(1);
        assert_eq!(drift(&applied(), &live), []);
    }

    #[test]
    fn a_removed_label_and_a_removed_container_are_drift_without_a_manager() {
        let mut live = live_after_set_image();
        live["metadata"]["labels"] = json!({});
        // The server drops fabric's claim on the label with the label (and the emptied parents).
        live["metadata"]["managedFields"][0]["fieldsV1"].as_object_mut().unwrap().remove("f:metadata");
        let mut ours = applied();
        ours["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil/api:latest");
        ours["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "s:1"}));
        let found: Vec<String> = drift(&ours, &live).iter().map(FieldDrift::describe).collect();
        assert_eq!(
            found,
            ["metadata.labels.a: removed outside fabric", "spec.template.spec.containers[1]: removed outside fabric"]
        );
    }

    #[test]
    fn set_replaces_and_removes_by_path() {
        let mut m = applied();
        let image = FieldPath::parse(r#".spec.template.spec.containers[name="api"].image"#).unwrap();
        set(&mut m, &image, Some(json!("evil/api:latest")));
        assert_eq!(lookup(&m, &image, true), Some(&json!("evil/api:latest")));
        let label = FieldPath::parse(".metadata.labels.a").unwrap();
        set(&mut m, &label, None);
        assert_eq!(m["metadata"]["labels"], json!({}));
        set(&mut m, &FieldPath::parse(".nowhere.x").unwrap(), Some(json!(1)));
        assert!(m.get("nowhere").is_none());
    }

    #[test]
    fn secret_values_are_never_compared() {
        let ours = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"a": {"$secret": "pw"}}, "data": {"b": {"$secret": "x"}}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "managedFields": []}, "data": {"a": "cHc="}});
        assert_eq!(drift(&ours, &live), []);
    }

    #[test]
    fn owners_of_a_field_include_who_owns_an_atomic_value_above_it() {
        let live = live_after_set_image();
        let managers = Managers::of(&live);
        let p = FieldPath::parse(".spec.selector.matchLabels.app").unwrap();
        assert_eq!(managers.owners(&p), ["fabric"]);
        let p = FieldPath::parse(r#".spec.template.spec.containers[name="api"].image"#).unwrap();
        assert_eq!(managers.owners(&p), ["kubectl-set"]);
    }
}
