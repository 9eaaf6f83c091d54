//! The provider of every Kubernetes object type: server-side apply, readiness await, delete of
//! objects this stack owns, batched reads by label.

use super::fields::{self, FieldPath};
use super::ready::{Readiness, diagnose, readiness, stall_limit};
use super::{ClusterInfo, FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_STACK};
use crate::aws::AwsCtx;
use crate::engine::provider::{Ctx, DryRun, Observed, Provider, ProviderError, ProviderResult, RecordedItem};
use crate::k8s::access::KubeCtx;
use crate::model::Urn;
use crate::model::contains_unknown;
use crate::model::secret::reveal;
use async_trait::async_trait;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The provider for objects of `type_name` (`k8s:apps/v1:Deployment`).
pub fn provider_for(type_name: &str) -> Arc<dyn Provider> {
    static NAMES: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().expect("type names poisoned");
    let name: &'static str = match names.get(type_name) {
        Some(n) => n,
        None => {
            let leaked: &'static str = Box::leak(type_name.to_string().into_boxed_str());
            names.insert(type_name.to_string(), leaked);
            leaked
        }
    };
    Arc::new(ObjectProvider { type_name: name })
}

struct ObjectProvider {
    type_name: &'static str,
}

#[derive(Deserialize)]
struct Inputs {
    cluster: ClusterInfo,
    manifest: Value,
    ready_timeout_secs: u64,
}

/// What state keeps of an applied object.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Outputs {
    cluster: ClusterInfo,
    api_version: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
    uid: String,
    /// Imported and not applied since: the object does not carry this stack's label yet, so reads
    /// find it by name (and uid) instead of by the label.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unlabelled: bool,
}

impl Outputs {
    /// What state keeps of `live`, the object `target` names in `cluster`.
    fn of_live(cluster: ClusterInfo, target: Target, live: &DynamicObject, stack: &str) -> Self {
        Outputs {
            cluster,
            uid: live.metadata.uid.clone().unwrap_or_default(),
            api_version: target.api_version,
            kind: target.kind,
            namespace: target.namespace,
            name: target.name,
            unlabelled: !owned_by(live, stack),
        }
    }
}

/// The object an input or output names.
struct Target {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

impl Target {
    fn of_manifest(m: &Value) -> Self {
        let s = |p: &str| m.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
        Target {
            api_version: s("/apiVersion"),
            kind: s("/kind"),
            namespace: m.pointer("/metadata/namespace").and_then(Value::as_str).map(String::from),
            name: s("/metadata/name"),
        }
    }

    fn of_outputs(o: &Outputs) -> Self {
        Target {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }
    }

    fn resource(&self) -> ApiResource {
        let (group, version) = self.api_version.split_once('/').unwrap_or(("", &self.api_version));
        ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &self.kind))
    }

    fn api(&self, client: kube::Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &self.resource()),
            None => Api::all_with(client, &self.resource()),
        }
    }

    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> ProviderResult<T> {
    serde_json::from_value(v.clone()).map_err(|e| ProviderError(format!("cannot read {what}: {e}")))
}

/// A Kubernetes API error as a message that says what to do.
fn explain(target: &Target, action: &str, e: kube::Error) -> ProviderError {
    let what = target.describe();
    match e {
        kube::Error::Api(status) if status.is_conflict() && action == "apply" => ProviderError(format!(
            "{what}: server-side apply conflict: {}\n    fix: another field manager owns these fields; stop managing them there, or let fabric take them over with `--force-conflicts`",
            status.message
        )),
        kube::Error::Api(status) if status.is_invalid() => ProviderError(format!(
            "{what}: the cluster rejected the object: {}\n    fix: correct the field named above{}",
            status.message,
            if status.message.contains("immutable") || status.message.contains("are forbidden") {
                " (an immutable field changes only by deleting the object: rename it, or remove it, deploy, and add it back)"
            } else {
                ""
            }
        )),
        kube::Error::Api(status) if status.code == 404 && action == "apply" => ProviderError(format!(
            "{what}: the cluster does not serve {}: {}\n    fix: install the CRD or API first (declare it in the same program: CRDs are applied before other objects)",
            target.api_version, status.message
        )),
        kube::Error::Api(status) if status.message.contains("field not declared in schema") => ProviderError(format!(
            "{what}: the cluster rejected the object: {}\n    fix: this cluster's Kubernetes version does not have that field: remove it, or target the version the cluster runs (`EksCluster` version, or `ClusterRef::kubeconfig(..).version(..)`) so builders emit what it accepts",
            schema_error(&status.message)
        )),
        kube::Error::Api(status) if status.is_forbidden() => ProviderError(format!(
            "{what}: {action} forbidden: {}\n    fix: give the deploying identity access to the cluster (EKS access entry or RBAC)",
            status.message
        )),
        other => ProviderError(format!("{what}: {action}: {other}")),
    }
}

/// `….lifecycle.preStop.sleep: field not declared in schema`, without the server's preamble.
fn schema_error(message: &str) -> String {
    match message.split_once("): ") {
        Some((_, rest)) => match rest.split_once(": ") {
            Some((path, why)) => match FieldPath::parse(path) {
                Some(p) => format!("field `{p}`: {why}"),
                None => rest.to_string(),
            },
            None => rest.to_string(),
        },
        None => message.to_string(),
    }
}

/// The conflicts of a 409 that are all on fields fabric set before (present in `applied`, the
/// manifest state recorded): someone else changed them since, and taking them back is a repair,
/// not a take-over. `None` when any conflict is on a field fabric never set.
fn reclaimable(status: &kube::core::Status, applied: Option<&Value>) -> Option<Vec<fields::Conflict>> {
    let applied = applied?;
    let conflicts = fields::conflicts(status);
    let ours = !conflicts.is_empty()
        && conflicts.iter().all(|c| !c.path.0.is_empty() && fields::lookup(applied, &c.path, true).is_some());
    ours.then_some(conflicts)
}

/// A refusal of server-side apply's conflicts, naming each field and the manager that owns it.
fn conflict_refusal(target: &Target, status: &kube::core::Status, applied: Option<&Value>) -> ProviderError {
    let lines: Vec<String> = fields::conflicts(status)
        .iter()
        .map(|c| {
            let ours = applied.is_some_and(|a| fields::lookup(a, &c.path, true).is_some());
            format!(
                "      {}: owned by field manager `{}`{}",
                if c.path.0.is_empty() { c.raw.clone() } else { c.path.to_string() },
                c.manager,
                if ours { " (fabric set it before)" } else { " (fabric never set it)" }
            )
        })
        .collect();
    let detail = if lines.is_empty() { format!("      {}", status.message) } else { lines.join("\n") };
    ProviderError(format!(
        "{}: server-side apply conflict: fields another field manager owns:\n{detail}\n    fix: stop managing these fields there, or remove them from the program, or let fabric take them over with `--force-conflicts`",
        target.describe()
    ))
}

/// An object as a plan compares it: without what the server keeps for itself (status,
/// managedFields, resourceVersion, …), and with Secret values masked.
fn comparable(object: &Value, masked_against: Option<&Value>) -> Value {
    let mut o = object.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"] {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("deployment.kubernetes.io/revision");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if o.get("kind").and_then(Value::as_str) == Some("Secret") {
        let before = masked_against.and_then(|b| b.get("data")).cloned();
        if let Some(data) = o.get_mut("data").and_then(Value::as_object_mut) {
            for (k, v) in data.iter_mut() {
                let same = before.as_ref().and_then(|b| b.get(k)).is_none_or(|b| b == v);
                *v = Value::String(if same { "[secret]" } else { "[secret, changed]" }.into());
            }
        }
    }
    o
}

/// A write to the cluster, noted for the running step's witness
/// ([`crate::engine::provider::witnessed`]): a refusal (4xx) proves nothing changed.
async fn noted<T>(call: impl std::future::Future<Output = Result<T, kube::Error>>) -> Result<T, kube::Error> {
    use crate::engine::provider::{WriteAnswer, note_write_answered, note_write_sent};
    note_write_sent();
    let answer = call.await;
    match &answer {
        Ok(_) => note_write_answered(WriteAnswer::Accepted),
        Err(kube::Error::Api(s)) if (400..500).contains(&s.code) && s.code != 408 => {
            note_write_answered(WriteAnswer::Refused)
        }
        Err(_) => {}
    }
    answer
}

/// Who an object that is not this stack's belongs to, as its labels say.
fn owner_of(obj: &DynamicObject) -> String {
    let labels = obj.metadata.labels.clone().unwrap_or_default();
    match (labels.get(LABEL_MANAGED_BY), labels.get(LABEL_STACK)) {
        (Some(m), Some(s)) => format!("it is managed by {m} for stack `{s}`"),
        (Some(m), None) => format!("it is managed by {m}"),
        _ => "it does not carry fabric's labels".to_string(),
    }
}

fn owned_by(obj: &DynamicObject, stack: &str) -> bool {
    let labels = obj.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    get(LABEL_MANAGED_BY) == Some(FIELD_MANAGER) && get(LABEL_STACK) == Some(stack)
}

impl ObjectProvider {
    async fn client(&self, ctx: &Ctx, cluster: &ClusterInfo) -> ProviderResult<kube::Client> {
        ctx.kube().client(cluster, ctx.aws().ok()).await
    }

    /// Applies the manifest and waits until the object is ready. `applied`: the manifest applied
    /// before (state's), whose fields someone else changed since are taken back.
    async fn apply(&self, ctx: &Ctx, inputs: &Value, applied: Option<&Value>) -> ProviderResult<Value> {
        let inputs: Inputs = decode("inputs", inputs)?;
        let target = Target::of_manifest(&inputs.manifest);
        let client = self.client(ctx, &inputs.cluster).await?;
        let api = target.api(client.clone());
        let object: DynamicObject = decode("manifest", &reveal(&inputs.manifest))?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if ctx.kube().force_conflicts {
            params = params.force();
        }
        let applied = match noted(api.patch(&target.name, &params, &Patch::Apply(&object))).await {
            Ok(o) => o,
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                let Some(taken) = reclaimable(&status, applied) else {
                    return Err(conflict_refusal(&target, &status, applied));
                };
                for c in &taken {
                    tracing::warn!(
                        "{}: taking back {} from field manager `{}` (fabric set it; it was changed outside fabric)",
                        target.describe(),
                        c.path,
                        c.manager
                    );
                }
                noted(api.patch(&target.name, &params.clone().force(), &Patch::Apply(&object)))
                    .await
                    .map_err(|e| explain(&target, "apply", e))?
            }
            Err(e) => return Err(explain(&target, "apply", e)),
        };
        let timeout = crate::engine::provider::wait_limit(Duration::from_secs_f64(
            inputs.ready_timeout_secs as f64 * ctx.kube().timeout_scale,
        ));
        let ready = self.await_ready(&client, &api, &target, applied, timeout).await?;
        let outputs = Outputs {
            cluster: inputs.cluster,
            api_version: target.api_version,
            kind: target.kind,
            namespace: target.namespace,
            name: target.name,
            uid: ready.metadata.uid.unwrap_or_default(),
            unlabelled: false,
        };
        serde_json::to_value(outputs).map_err(|e| ProviderError(e.to_string()))
    }

    /// The live object of each recorded `outputs` (one LIST per cluster, by this stack's label),
    /// with outputs updated to it; `None` for objects that are gone (or relabelled).
    async fn list_live(&self, ctx: &Ctx, outputs: &[&Value]) -> ProviderResult<Vec<Option<(Value, Value)>>> {
        let mut decoded = Vec::with_capacity(outputs.len());
        for o in outputs {
            decoded.push(decode::<Outputs>("recorded outputs", o)?);
        }
        let mut found: HashMap<(ClusterInfo, Option<String>, String), DynamicObject> = HashMap::new();
        let mut listed: Vec<&ClusterInfo> = Vec::new();
        for o in &decoded {
            if listed.contains(&&o.cluster) {
                continue;
            }
            listed.push(&o.cluster);
            let target = Target::of_outputs(o);
            let client = self.client(ctx, &o.cluster).await?;
            let all: Api<DynamicObject> = Api::all_with(client, &target.resource());
            let params = ListParams::default().labels(&format!("{LABEL_STACK}={}", ctx.stack));
            let list = all.list(&params).await.map_err(|e| explain(&target, "list", e))?;
            for obj in list.items {
                let key =
                    (o.cluster.clone(), obj.metadata.namespace.clone(), obj.metadata.name.clone().unwrap_or_default());
                found.insert(key, obj);
            }
        }
        // An object state records that does not carry this stack's label yet (imported, not
        // deployed since) is read by name: it is still there if it is the same object (its uid).
        for o in decoded.iter().filter(|o| o.unlabelled) {
            let key = (o.cluster.clone(), o.namespace.clone(), o.name.clone());
            if found.contains_key(&key) {
                continue;
            }
            let target = Target::of_outputs(o);
            let client = self.client(ctx, &o.cluster).await?;
            if let Some(live) = target.api(client).get_opt(&o.name).await.map_err(|e| explain(&target, "read", e))?
                && live.metadata.uid.as_deref() == Some(o.uid.as_str())
            {
                found.insert(key, live);
            }
        }
        decoded
            .into_iter()
            .map(|o| {
                let Some(live) = found.get(&(o.cluster.clone(), o.namespace.clone(), o.name.clone())) else {
                    return Ok(None);
                };
                let unlabelled = o.unlabelled && !owned_by(live, &ctx.stack);
                let outputs = Outputs { uid: live.metadata.uid.clone().unwrap_or_default(), unlabelled, ..o };
                Ok(Some((
                    serde_json::to_value(outputs).map_err(|e| ProviderError(e.to_string()))?,
                    serde_json::to_value(live).map_err(|e| ProviderError(e.to_string()))?,
                )))
            })
            .collect()
    }

    /// Waits until the object's kind's readiness holds, following it with a watch of that one
    /// object (`kube::runtime::wait::await_condition`) rather than reading it again and again.
    /// Stops early, with the pods' reasons (container states, events), when the rollout has
    /// failed: a Deployment past its progress deadline, or a StatefulSet or DaemonSet whose
    /// readiness has not moved for its [`stall_limit`]. On timeout, says what is not ready and why.
    async fn await_ready(
        &self,
        client: &kube::Client,
        api: &Api<DynamicObject>,
        target: &Target,
        applied: DynamicObject,
        timeout: Duration,
    ) -> ProviderResult<DynamicObject> {
        // A Deployment's `ProgressDeadlineExceeded` is about this rollout only once its deadline
        // has passed since the apply: before that it is the verdict on an earlier rollout, which
        // the controller keeps (and even re-stamps) until it sees progress — a rollback to a
        // ReplicaSet that is still up shows it for a moment. Until then it is waited on, and
        // looked at again when the deadline has passed.
        let applied_at = tokio::time::Instant::now();
        let state = |o: &DynamicObject| {
            let value = match serde_json::to_value(o) {
                Ok(value) => value,
                Err(e) => return (Readiness::Waiting(e.to_string()), Value::Null, None),
            };
            match readiness(&target.kind, &value) {
                Readiness::Failed(why) => {
                    let seconds = value.pointer("/spec/progressDeadlineSeconds").and_then(Value::as_u64).unwrap_or(600);
                    let judged_from = applied_at + Duration::from_secs(seconds);
                    if tokio::time::Instant::now() < judged_from {
                        (
                            Readiness::Waiting(format!("an earlier rollout's verdict stands: {why}")),
                            value,
                            Some(judged_from),
                        )
                    } else {
                        (Readiness::Failed(why), value, None)
                    }
                }
                other => (other, value, None),
            }
        };
        let (mut now, mut value, mut recheck) = state(&applied);
        let uid = applied.metadata.uid.clone();
        let stall = stall_limit(&target.kind, &value);
        let deadline = tokio::time::Instant::now() + timeout;
        let gone = || ProviderError(format!("{}: deleted while waiting for it", target.describe()));
        let failed = |why: &str, detail: String| {
            ProviderError(format!("{}: the rollout failed: {why}{detail}", target.describe()))
        };
        loop {
            let why = match now {
                Readiness::Ready => return Ok(serde_json::from_value(value).unwrap_or(applied)),
                Readiness::Failed(why) => return Err(failed(&why, diagnose(client, &value).await)),
                Readiness::Waiting(why) => why,
            };
            // Ends one watch: ready, failed, gone (or replaced by another object of that name),
            // or, for a kind with a stall limit, progress (what it waits for has changed, which
            // restarts the stall clock with a new watch).
            let moved = |o: Option<&DynamicObject>| {
                o.is_none_or(|o| {
                    o.metadata.uid != uid
                        || match state(o).0 {
                            Readiness::Waiting(w) => stall.is_some() && w != why,
                            _ => true,
                        }
                })
            };
            let at = tokio::time::Instant::now();
            let left = deadline.saturating_duration_since(at);
            let until_recheck = recheck.map(|r| r.saturating_duration_since(at));
            let window = [Some(left), stall, until_recheck].into_iter().flatten().min().unwrap_or(left);
            match tokio::time::timeout(window, await_condition(api.clone(), &target.name, moved)).await {
                Ok(Ok(Some(o))) if o.metadata.uid == uid => (now, value, recheck) = state(&o),
                Ok(Ok(_)) => return Err(gone()),
                Ok(Err(e)) => return Err(ProviderError(format!("{}: watching it: {e}", target.describe()))),
                Err(_) => {
                    let current =
                        api.get_opt(&target.name).await.map_err(|e| explain(target, "read", e))?.ok_or_else(gone)?;
                    let (latest, latest_value, next_recheck) = state(&current);
                    // The window that ended was the wait for an old verdict to count: look again.
                    let rechecking = until_recheck.is_some_and(|r| r == window) && window < left;
                    let Readiness::Waiting(latest_why) = latest else {
                        (now, value, recheck) = (latest, latest_value, next_recheck);
                        continue;
                    };
                    if rechecking {
                        (now, value, recheck) = (Readiness::Waiting(latest_why), latest_value, next_recheck);
                        continue;
                    }
                    let detail = diagnose(client, &latest_value).await;
                    let seconds = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
                    return Err(if tokio::time::Instant::now() < deadline {
                        let stall = stall.unwrap_or(window);
                        failed(&format!("no progress in {} ({latest_why})", seconds(stall)), detail)
                    } else {
                        ProviderError(format!(
                            "{}: not ready after {}: {latest_why}{detail}",
                            target.describe(),
                            seconds(timeout)
                        ))
                    });
                }
            }
        }
    }
}

#[async_trait]
impl Provider for ObjectProvider {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// A manifest is shown in a plan as its kind and name (`Deployment acme/api`).
    fn summarize(&self, field: &str, manifest: &Value) -> Option<String> {
        let s = |p: &str| manifest.pointer(p).and_then(Value::as_str).unwrap_or_default();
        (field == "manifest").then(|| match s("/metadata/namespace") {
            "" => format!("{} {}", s("/kind"), s("/metadata/name")),
            ns => format!("{} {ns}/{}", s("/kind"), s("/metadata/name")),
        })
    }

    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }

    /// The cluster, API group, kind, namespace and name: an object keeps its identity when its
    /// `apiVersion` changes (`policy/v1beta1` → `policy/v1` serve the same object).
    fn identity(&self, inputs: &Value, outputs: Option<&Value>) -> Option<String> {
        let (cluster, target) = match outputs {
            Some(o) => {
                let o: Outputs = serde_json::from_value(o.clone()).ok()?;
                (o.cluster.name.clone(), Target::of_outputs(&o))
            }
            None => {
                let cluster = inputs.pointer("/cluster/name")?.as_str()?.to_string();
                (cluster, Target::of_manifest(inputs.get("manifest")?))
            }
        };
        let group = target.api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
        Some(format!(
            "k8s:{cluster}:{group}:{}:{}:{}",
            target.kind,
            target.namespace.as_deref().unwrap_or(""),
            target.name
        ))
    }

    /// One LIST per cluster and namespace (this provider serves one kind): an object of the
    /// program's name that does not carry this stack's labels is someone else's. Objects of a
    /// cluster this deploy creates are not checked.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> crate::engine::provider::NamesTaken {
        let mut groups: HashMap<(ClusterInfo, Option<String>), Vec<usize>> = HashMap::new();
        let mut targets = Vec::with_capacity(items.len());
        for (i, (_, inputs)) in items.iter().enumerate() {
            let target = Target::of_manifest(inputs.get("manifest").unwrap_or(&Value::Null));
            let cluster = inputs.get("cluster").filter(|c| !contains_unknown(c));
            if let Some(cluster) = cluster.and_then(|c| serde_json::from_value::<ClusterInfo>(c.clone()).ok())
                && !target.name.is_empty()
            {
                groups.entry((cluster, target.namespace.clone())).or_default().push(i);
            }
            targets.push(target);
        }
        let mut out = vec![None; items.len()];
        for ((cluster, namespace), indices) in groups {
            let target = &targets[indices[0]];
            let client = self.client(ctx, &cluster).await?;
            let api: Api<DynamicObject> = match &namespace {
                Some(ns) => Api::namespaced_with(client, ns, &target.resource()),
                None => Api::all_with(client, &target.resource()),
            };
            let live = api.list(&ListParams::default()).await.map_err(|e| explain(target, "list", e))?;
            for i in indices {
                let (urn, t) = (&items[i].0, &targets[i]);
                let Some(obj) = live.items.iter().find(|o| o.metadata.name.as_deref() == Some(t.name.as_str())) else {
                    continue;
                };
                if owned_by(obj, &ctx.stack) {
                    continue;
                }
                out[i] = Some(crate::engine::Taken {
                    field: "manifest".into(),
                    name: t.describe(),
                    holder: format!("it exists in cluster {} and {}", cluster.name, owner_of(obj)),
                    fix: format!(
                        "give it another name in the program; or delete the existing object; or, to bring it under this stack ({}), label it {LABEL_MANAGED_BY}={FIELD_MANAGER} and {LABEL_STACK}={}",
                        urn.display_short(),
                        ctx.stack
                    ),
                });
            }
        }
        Ok(Some(out))
    }

    /// Server-side apply, but never over an object of the same name that is not this stack's
    /// (server-side apply alone would adopt it).
    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Value> {
        let decoded: Inputs = decode("inputs", inputs)?;
        let target = Target::of_manifest(&decoded.manifest);
        let client = self.client(ctx, &decoded.cluster).await?;
        if let Some(live) = target.api(client).get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))?
            && !owned_by(&live, &ctx.stack)
        {
            let owner = owner_of(&live);
            return Err(ProviderError(format!(
                "{} already exists in cluster {} and is not this stack's ({owner}); nothing was changed\n    fix: give it another name in the program; or delete the existing object; or, to bring it under this stack ({}), label it {LABEL_MANAGED_BY}={FIELD_MANAGER} and {LABEL_STACK}={} and deploy again",
                target.describe(),
                decoded.cluster.name,
                urn.display_short(),
                ctx.stack
            )));
        }
        self.apply(ctx, inputs, None).await
    }

    /// Server-side apply; fields of the manifest applied before that another manager changed since
    /// (drift) are taken back, fields fabric never set are not (`--force-conflicts`).
    async fn update(
        &self,
        ctx: &Ctx,
        _urn: &Urn,
        old: &Value,
        _outputs: &Value,
        inputs: &Value,
    ) -> ProviderResult<Value> {
        self.apply(ctx, inputs, old.get("manifest")).await
    }

    /// Deletes the object when it still carries this stack's labels (one that another owner
    /// took over is left in place, with a warning), then waits until it is gone.
    async fn delete(&self, ctx: &Ctx, urn: &Urn, inputs: &Value, outputs: &Value) -> ProviderResult<()> {
        let outputs: Outputs = decode("recorded outputs", outputs)?;
        let timeout =
            inputs.get("ready_timeout_secs").and_then(Value::as_u64).unwrap_or(super::DEFAULT_READY_TIMEOUT_SECS);
        let target = Target::of_outputs(&outputs);
        let client = self.client(ctx, &outputs.cluster).await?;
        let api = target.api(client);
        let Some(live) = api.get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))? else {
            return Ok(());
        };
        if !outputs.uid.is_empty() && live.metadata.uid.as_deref() != Some(outputs.uid.as_str()) {
            tracing::warn!(
                "{}: left in place: the object there now is another one than the one this stack applied (uid {} ≠ {})",
                urn.display_short(),
                live.metadata.uid.as_deref().unwrap_or("?"),
                outputs.uid
            );
            return Ok(());
        }
        if !owned_by(&live, &ctx.stack) {
            tracing::warn!(
                "{}: left in place: it no longer carries the labels {LABEL_MANAGED_BY}={FIELD_MANAGER} and {LABEL_STACK}={}",
                urn.display_short(),
                ctx.stack
            );
            return Ok(());
        }
        let uid = live.metadata.uid.clone().unwrap_or_default();
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(kube::api::Preconditions { uid: Some(uid.clone()), resource_version: None }),
            ..Default::default()
        };
        match noted(api.delete(&target.name, &params)).await {
            Ok(_) => {}
            // Gone already, or replaced by a new object of the same name (uid precondition).
            Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => return Ok(()),
            Err(e) => return Err(explain(&target, "delete", e)),
        }
        // Followed with a watch of that one object until it is gone (or another object has its name).
        let limit =
            crate::engine::provider::wait_limit(Duration::from_secs_f64(timeout as f64 * ctx.kube().timeout_scale));
        match tokio::time::timeout(limit, await_condition(api, &target.name, conditions::is_deleted(&uid))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ProviderError(format!("{}: watching its deletion: {e}", target.describe()))),
            Err(_) => Err(ProviderError(format!(
                "{}: still terminating after the timeout (finalizers: {:?})",
                target.describe(),
                live.metadata.finalizers.unwrap_or_default()
            ))),
        }
    }

    /// One LIST per cluster and type, by this stack's label; objects not found (deleted, or
    /// relabelled) read as gone. Fields are compared by [`Provider::read_recorded`] (refresh).
    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> ProviderResult<Vec<Option<Observed>>> {
        let outputs: Vec<&Value> = items.iter().map(|(_, o)| o).collect();
        let live = self.list_live(ctx, &outputs).await?;
        Ok(live
            .into_iter()
            .map(|l| l.map(|(outputs, _)| Observed::new(Value::Object(Default::default()), outputs)))
            .collect())
    }

    /// Like `read_many`, and reports field drift: every field of the applied manifest that fabric
    /// no longer owns (per `managedFields`) and whose value differs, with the manager that has it
    /// now. The observed manifest carries the live values, so a later deploy puts them back.
    async fn read_recorded(&self, ctx: &Ctx, items: &[RecordedItem]) -> ProviderResult<Vec<Option<Observed>>> {
        let outputs: Vec<&Value> = items.iter().map(|i| &i.outputs).collect();
        let live = self.list_live(ctx, &outputs).await?;
        Ok(items
            .iter()
            .zip(live)
            .map(|(item, live)| {
                let (outputs, object) = live?;
                let mut observed = Observed::new(Value::Object(Default::default()), outputs);
                if let Some(applied) = item.inputs.get("manifest") {
                    let drift = fields::drift(applied, &object);
                    if !drift.is_empty() {
                        let mut manifest = applied.clone();
                        for d in &drift {
                            fields::set(&mut manifest, &d.path, d.live.clone());
                        }
                        observed.inputs = serde_json::json!({ "manifest": manifest });
                        observed.notes = drift.iter().map(fields::FieldDrift::describe).collect();
                    }
                }
                Some(observed)
            })
            .collect())
    }

    fn dry_runs(&self) -> bool {
        true
    }

    /// A server-side apply with `dryRun=All` as the `fabric` manager: the cluster's own answer
    /// (defaults, admission, schema of its version), compared with the live object. Fields
    /// fabric set that another manager changed since are drift (deploy takes them back); fields
    /// fabric never set that another manager owns are a refusal, unless `--force-conflicts`.
    async fn dry_run(
        &self,
        ctx: &Ctx,
        _urn: &Urn,
        inputs: &Value,
        recorded: Option<(&Value, &Value)>,
    ) -> ProviderResult<DryRun> {
        if contains_unknown(inputs) {
            return Ok(DryRun::Skipped(
                "a value it holds is known only after apply (its cluster, or a resource it names, is created by this deploy)"
                    .into(),
            ));
        }
        let decoded: Inputs = decode("inputs", inputs)?;
        let target = Target::of_manifest(&decoded.manifest);
        let client = self.client(ctx, &decoded.cluster).await?;
        if let Some(built_for) = decoded.cluster.version
            && let Some(running) = ctx.kube().server_version(&decoded.cluster, &client).await?
            && running < built_for
        {
            if decoded.cluster.via == "eks" {
                // The cluster's upgrade is a step of this deploy: the objects are for the new version.
                return Ok(DryRun::Skipped(format!(
                    "the cluster runs Kubernetes {running} until this deploy upgrades it to {built_for}"
                )));
            }
            return Err(ProviderError(format!(
                "{}: cluster `{}` runs Kubernetes {running}, but the program builds its objects for {built_for} (fields newer than {running} would be refused)\n    fix: declare the version the cluster runs: `ClusterRef::kubeconfig(\"{}\").with_version(KubeVersion::new({}, {}))`",
                target.describe(),
                decoded.cluster.name,
                decoded.cluster.name,
                running.major,
                running.minor
            )));
        }
        let api = target.api(client.clone());
        let mut object: DynamicObject = decode("manifest", &reveal(&decoded.manifest))?;
        let applied = recorded.and_then(|(i, _)| i.get("manifest"));
        let live = api.get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))?;
        let mut params = PatchParams::apply(FIELD_MANAGER).dry_run();
        if ctx.kube().force_conflicts {
            params = params.force();
        }
        let mut notes = Vec::new();
        let answer = match api.patch(&target.name, &params, &Patch::Apply(&object)).await {
            Ok(a) => a,
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                let Some(taken) = reclaimable(&status, applied) else {
                    return Err(conflict_refusal(&target, &status, applied));
                };
                notes.extend(taken.iter().map(|c| {
                    format!("{}: changed by {} since fabric applied it; deploy puts it back", c.path, c.manager)
                }));
                api.patch(&target.name, &params.clone().force(), &Patch::Apply(&object))
                    .await
                    .map_err(|e| explain(&target, "dry-run apply", e))?
            }
            Err(kube::Error::Api(status))
                if status.code == 404 && status.details.as_ref().is_some_and(|d| d.kind == "namespaces") =>
            {
                // The namespace is created by this deploy: check the object in `default` (the schema,
                // defaults and admission of the cluster are the same).
                let ns = target.namespace.clone().unwrap_or_default();
                object.metadata.namespace = Some("default".into());
                let in_default: Api<DynamicObject> = Api::namespaced_with(client, "default", &target.resource());
                in_default
                    .patch(&target.name, &params.clone().force(), &Patch::Apply(&object))
                    .await
                    .map_err(|e| explain(&target, "dry-run apply", e))?;
                notes.push(format!("checked in namespace `default`: namespace `{ns}` is created by this deploy"));
                return Ok(DryRun::Accepted { change: None, notes });
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Ok(DryRun::Skipped(format!(
                    "the cluster does not serve {} {} yet (a CRD this deploy applies first?)",
                    target.api_version, target.kind
                )));
            }
            Err(e) => return Err(explain(&target, "dry-run apply", e)),
        };
        let Some(live) = live else {
            return Ok(DryRun::Accepted { change: None, notes });
        };
        let to_value = |o: &DynamicObject| serde_json::to_value(o).map_err(|e| ProviderError(e.to_string()));
        let live = to_value(&live)?;
        let before = comparable(&live, None);
        let after = comparable(&to_value(&answer)?, Some(&live));
        let change = (before != after)
            .then(|| (serde_json::json!({ "manifest": before }), serde_json::json!({ "manifest": after })));
        Ok(DryRun::Accepted { change, notes })
    }

    fn import_rule(&self) -> crate::engine::Import {
        crate::engine::Import::ById
    }

    /// By `namespace/name` (or `name` for cluster-scoped kinds, or when the program's manifest
    /// names the namespace), in the cluster the program's manifest is for. The inputs it shows are
    /// the live values of the fields the program sets, so the plan lists exactly what deploy
    /// changes (fabric's labels among them: the first deploy takes the object over).
    async fn import(&self, ctx: &Ctx, _urn: &Urn, id: &str, inputs: &Value) -> ProviderResult<Option<Observed>> {
        let inputs: Inputs = decode("inputs", inputs)?;
        let mut target = Target::of_manifest(&inputs.manifest);
        match id.split_once('/') {
            Some((ns, name)) => {
                target.namespace = Some(ns.to_string());
                target.name = name.to_string();
            }
            None => target.name = id.to_string(),
        }
        let client = self.client(ctx, &inputs.cluster).await?;
        let Some(live) = target.api(client).get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))?
        else {
            return Ok(None);
        };
        let live_value = serde_json::to_value(&live).map_err(|e| ProviderError(e.to_string()))?;
        let outputs = Outputs::of_live(inputs.cluster, target, &live, &ctx.stack);
        let observed = serde_json::json!({ "manifest": project(&inputs.manifest, &live_value) });
        Ok(Some(Observed::new(observed, serde_json::to_value(outputs).map_err(|e| ProviderError(e.to_string()))?)))
    }

    /// An object this stack applied whose answer was lost: found by name, if it has our labels.
    async fn find(&self, ctx: &Ctx, _urn: &Urn, inputs: &Value) -> ProviderResult<Option<Value>> {
        let inputs: Inputs = decode("inputs", inputs)?;
        let target = Target::of_manifest(&inputs.manifest);
        let client = self.client(ctx, &inputs.cluster).await?;
        match target.api(client).get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))? {
            Some(live) if owned_by(&live, &ctx.stack) => {
                let outputs = Outputs::of_live(inputs.cluster, target, &live, &ctx.stack);
                Ok(Some(serde_json::to_value(outputs).map_err(|e| ProviderError(e.to_string()))?))
            }
            _ => Ok(None),
        }
    }
}

/// The live values of the fields `desired` sets: objects walked into key by key (a key the live
/// object lacks is left out), everything else taken whole.
fn project(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            Value::Object(d.iter().filter_map(|(k, dv)| l.get(k).map(|lv| (k.clone(), project(dv, lv)))).collect())
        }
        (_, live) => live.clone(),
    }
}
