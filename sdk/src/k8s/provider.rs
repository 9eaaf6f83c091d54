//! The provider of every Kubernetes object type: server-side apply, readiness await, delete of
//! objects this stack owns, batched reads by label.

use super::ready::{Readiness, diagnose, readiness};
use super::{ClusterInfo, FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_STACK};
use crate::engine::provider::{Ctx, Observed, Provider, ProviderError, ProviderResult};
use crate::model::Urn;
use crate::model::secret::reveal;
use async_trait::async_trait;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, GroupVersionKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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
        kube::Error::Api(status) if status.is_forbidden() => ProviderError(format!(
            "{what}: {action} forbidden: {}\n    fix: give the deploying identity access to the cluster (EKS access entry or RBAC)",
            status.message
        )),
        other => ProviderError(format!("{what}: {action}: {other}")),
    }
}

fn owned_by(obj: &DynamicObject, stack: &str) -> bool {
    let labels = obj.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    get(LABEL_MANAGED_BY) == Some(FIELD_MANAGER) && get(LABEL_STACK) == Some(stack)
}

impl ObjectProvider {
    async fn client(&self, ctx: &Ctx, cluster: &ClusterInfo) -> ProviderResult<kube::Client> {
        ctx.kube.client(cluster, ctx.aws().ok()).await
    }

    /// Applies the manifest and waits until the object is ready.
    async fn apply(&self, ctx: &Ctx, inputs: &Value) -> ProviderResult<Value> {
        let inputs: Inputs = decode("inputs", inputs)?;
        let target = Target::of_manifest(&inputs.manifest);
        let client = self.client(ctx, &inputs.cluster).await?;
        let api = target.api(client.clone());
        let object: DynamicObject = decode("manifest", &reveal(&inputs.manifest))?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if ctx.kube.force_conflicts {
            params = params.force();
        }
        let applied =
            api.patch(&target.name, &params, &Patch::Apply(&object)).await.map_err(|e| explain(&target, "apply", e))?;
        let timeout = Duration::from_secs_f64(inputs.ready_timeout_secs as f64 * ctx.kube.timeout_scale);
        let ready = self.await_ready(ctx, &client, &api, &target, applied, timeout).await?;
        let outputs = Outputs {
            cluster: inputs.cluster,
            api_version: target.api_version,
            kind: target.kind,
            namespace: target.namespace,
            name: target.name,
            uid: ready.metadata.uid.unwrap_or_default(),
        };
        serde_json::to_value(outputs).map_err(|e| ProviderError(e.to_string()))
    }

    /// Polls the object until its kind's readiness holds; on timeout, says what is not ready and
    /// why (pods, events).
    async fn await_ready(
        &self,
        ctx: &Ctx,
        client: &kube::Client,
        api: &Api<DynamicObject>,
        target: &Target,
        applied: DynamicObject,
        timeout: Duration,
    ) -> ProviderResult<DynamicObject> {
        let deadline = Instant::now() + timeout;
        let mut current = applied;
        loop {
            let value = serde_json::to_value(&current).map_err(|e| ProviderError(e.to_string()))?;
            let why = match readiness(&target.kind, &value) {
                Readiness::Ready => return Ok(current),
                Readiness::Waiting(why) => why,
            };
            if Instant::now() >= deadline {
                let detail = diagnose(client, &value).await;
                return Err(ProviderError(format!(
                    "{}: not ready after {}: {why}{detail}",
                    target.describe(),
                    humantime::format_duration(Duration::from_secs(timeout.as_secs()))
                )));
            }
            tokio::time::sleep(ctx.kube.poll_interval.min(deadline.saturating_duration_since(Instant::now()))).await;
            current = match api.get_opt(&target.name).await.map_err(|e| explain(target, "read", e))? {
                Some(o) => o,
                None => return Err(ProviderError(format!("{}: deleted while waiting for it", target.describe()))),
            };
        }
    }
}

#[async_trait]
impl Provider for ObjectProvider {
    fn type_name(&self) -> &'static str {
        self.type_name
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

    /// Server-side apply, but never over an object of the same name that is not this stack's
    /// (server-side apply alone would adopt it).
    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Value> {
        let decoded: Inputs = decode("inputs", inputs)?;
        let target = Target::of_manifest(&decoded.manifest);
        let client = self.client(ctx, &decoded.cluster).await?;
        if let Some(live) = target.api(client).get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))?
            && !owned_by(&live, &ctx.stack)
        {
            let labels = live.metadata.labels.unwrap_or_default();
            let owner = match (labels.get(LABEL_MANAGED_BY), labels.get(LABEL_STACK)) {
                (Some(m), Some(s)) => format!("it is managed by {m} for stack `{s}`"),
                (Some(m), None) => format!("it is managed by {m}"),
                _ => "it does not carry fabric's labels".to_string(),
            };
            return Err(ProviderError(format!(
                "{} already exists in cluster {} and is not this stack's ({owner}); nothing was changed\n    fix: give it another name in the program; or delete the existing object; or, to bring it under this stack ({}), label it {LABEL_MANAGED_BY}={FIELD_MANAGER} and {LABEL_STACK}={} and deploy again",
                target.describe(),
                decoded.cluster.name,
                urn.display_short(),
                ctx.stack
            )));
        }
        self.apply(ctx, inputs).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _urn: &Urn,
        _old: &Value,
        _outputs: &Value,
        inputs: &Value,
    ) -> ProviderResult<Value> {
        self.apply(ctx, inputs).await
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
        match api.delete(&target.name, &params).await {
            Ok(_) => {}
            // Gone already, or replaced by a new object of the same name (uid precondition).
            Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => return Ok(()),
            Err(e) => return Err(explain(&target, "delete", e)),
        }
        let deadline = Instant::now() + Duration::from_secs_f64(timeout as f64 * ctx.kube.timeout_scale);
        loop {
            match api.get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))? {
                Some(o) if o.metadata.uid.as_deref() == Some(uid.as_str()) => {}
                _ => return Ok(()),
            }
            if Instant::now() >= deadline {
                return Err(ProviderError(format!(
                    "{}: still terminating after the timeout (finalizers: {:?})",
                    target.describe(),
                    live.metadata.finalizers.unwrap_or_default()
                )));
            }
            tokio::time::sleep(ctx.kube.poll_interval).await;
        }
    }

    /// One LIST per cluster and type, by this stack's label; objects not found (deleted, or
    /// relabelled) read as gone. Fields are not compared: the next deploy re-applies on change.
    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> ProviderResult<Vec<Option<Observed>>> {
        let mut decoded = Vec::with_capacity(items.len());
        for (_, o) in items {
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
        Ok(decoded
            .into_iter()
            .map(|o| {
                let live = found.get(&(o.cluster.clone(), o.namespace.clone(), o.name.clone()))?;
                let outputs = Outputs { uid: live.metadata.uid.clone().unwrap_or_default(), ..o };
                Some(Observed {
                    inputs: Value::Object(Default::default()),
                    outputs: serde_json::to_value(outputs).ok()?,
                })
            })
            .collect())
    }

    /// An object this stack applied whose answer was lost: found by name, if it has our labels.
    async fn find(&self, ctx: &Ctx, _urn: &Urn, inputs: &Value) -> ProviderResult<Option<Value>> {
        let inputs: Inputs = decode("inputs", inputs)?;
        let target = Target::of_manifest(&inputs.manifest);
        let client = self.client(ctx, &inputs.cluster).await?;
        match target.api(client).get_opt(&target.name).await.map_err(|e| explain(&target, "read", e))? {
            Some(live) if owned_by(&live, &ctx.stack) => {
                let outputs = Outputs {
                    cluster: inputs.cluster,
                    uid: live.metadata.uid.clone().unwrap_or_default(),
                    api_version: target.api_version,
                    kind: target.kind,
                    namespace: target.namespace,
                    name: target.name,
                };
                Ok(Some(serde_json::to_value(outputs).map_err(|e| ProviderError(e.to_string()))?))
            }
            _ => Ok(None),
        }
    }
}
