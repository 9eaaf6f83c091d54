//! Test doubles for the engine: an in-memory cloud and provider (engine tests, benchmarks), with
//! call counting, latency and failure injection.

use crate::engine::provider::{Ctx, Observed, Provider, ProviderError, ProviderResult};
use crate::model::{Output, Stack, Urn};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A pretend cloud: objects by id, with call counting, latency and failure injection.
#[derive(Default)]
pub struct MemoryCloud {
    objects: Mutex<BTreeMap<String, (Urn, Value)>>,
    next_id: AtomicU64,
    latency: Mutex<Duration>,
    failing: Mutex<HashSet<String>>,
    refusing: Mutex<HashSet<String>>,
    find_failing: std::sync::atomic::AtomicBool,
    calls: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    find_by_name: std::sync::atomic::AtomicBool,
    stale_replacements: std::sync::atomic::AtomicBool,
    delete_before_replace: std::sync::atomic::AtomicBool,
}

impl MemoryCloud {
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryCloud::default())
    }

    /// Every provider call sleeps this long.
    pub fn set_latency(&self, d: Duration) {
        *self.latency.lock().unwrap() = d;
    }

    /// Calls for resources with this name fail.
    pub fn fail_on(&self, name: &str) {
        self.failing.lock().unwrap().insert(name.to_string());
    }

    /// Calls for resources with this name are refused, with an answer that proves nothing
    /// happened (a validation error, a name someone else holds).
    pub fn refuse_on(&self, name: &str) {
        self.refusing.lock().unwrap().insert(name.to_string());
    }

    /// `find` fails (the cloud cannot tell, or what it found is not this stack's).
    pub fn fail_finds(&self) {
        self.find_failing.store(true, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
        self.refusing.lock().unwrap().clear();
        self.find_failing.store(false, Ordering::SeqCst);
    }

    /// `op name` for every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Objects in the cloud: id → (urn, inputs).
    pub fn objects(&self) -> BTreeMap<String, (Urn, Value)> {
        self.objects.lock().unwrap().clone()
    }

    /// Removes an object behind fabric's back.
    pub fn delete_out_of_band(&self, id: &str) {
        self.objects.lock().unwrap().remove(id);
    }

    /// Changes an object's input behind fabric's back.
    pub fn edit_out_of_band(&self, id: &str, field: &str, value: Value) {
        if let Some((_, inputs)) = self.objects.lock().unwrap().get_mut(id) {
            inputs[field] = value;
        }
    }

    /// Creates return the object already there for the same URN, as providers that find by name
    /// do (a load balancer, a target group).
    pub fn create_finds_by_name(&self) {
        self.find_by_name.store(true, Ordering::SeqCst);
    }

    /// Creates for a URN that already has an object make a new object with the old one's
    /// settings (a cloud that ignored what the replacement asked for).
    pub fn replacements_keep_old_settings(&self) {
        self.stale_replacements.store(true, Ordering::SeqCst);
    }

    /// The provider declares that replacements delete the old instance first.
    pub fn replace_deletes_first(&self) {
        self.delete_before_replace.store(true, Ordering::SeqCst);
    }

    /// The most calls that were in flight at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// One write call: noted for the step's witness before it is sent; an injected failure is a
    /// lost answer (`fail_on`: it may have happened) or a refusal (`refuse_on`: it did not).
    async fn call(&self, op: &str, urn: &Urn) -> ProviderResult<()> {
        use crate::engine::provider::{WriteAnswer, note_write_answered, note_write_sent};
        if op != "import" {
            note_write_sent();
        }
        self.calls.lock().unwrap().push(format!("{op} {}", urn.name()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.refusing.lock().unwrap().contains(urn.name()) {
            note_write_answered(WriteAnswer::Refused);
            return Err(ProviderError(format!("{op} {}: refused (injected)", urn.name())));
        }
        if self.failing.lock().unwrap().contains(urn.name()) {
            return Err(ProviderError(format!("{op} {}: injected failure", urn.name())));
        }
        if op != "import" {
            note_write_answered(WriteAnswer::Accepted);
        }
        Ok(())
    }
}

/// The provider of [`Thing`]s, backed by a [`MemoryCloud`].
pub struct MemoryProvider {
    pub cloud: Arc<MemoryCloud>,
}

pub const THING: &str = "test:Thing";

fn id_of(outputs: &Value) -> String {
    outputs["id"].as_str().unwrap_or_default().to_string()
}

#[async_trait]
impl Provider for MemoryProvider {
    fn type_name(&self) -> &'static str {
        THING
    }

    fn replace_on(&self) -> &'static [&'static str] {
        &["zone"]
    }

    fn delete_before_replace(&self) -> bool {
        self.cloud.delete_before_replace.load(Ordering::SeqCst)
    }

    async fn create(&self, _: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Value> {
        self.cloud.call("create", urn).await?;
        let mut inputs = inputs.clone();
        {
            let objects = self.cloud.objects.lock().unwrap();
            if let Some((id, (_, old))) = objects.iter().find(|(_, (u, _))| u == urn) {
                if self.cloud.find_by_name.load(Ordering::SeqCst) {
                    return Ok(json!({"id": id}));
                }
                if self.cloud.stale_replacements.load(Ordering::SeqCst) {
                    inputs = old.clone();
                }
            }
        }
        let id = format!("thing-{}", self.cloud.next_id.fetch_add(1, Ordering::SeqCst));
        self.cloud.objects.lock().unwrap().insert(id.clone(), (urn.clone(), inputs));
        Ok(json!({"id": id}))
    }

    async fn update(&self, _: &Ctx, urn: &Urn, _: &Value, outputs: &Value, inputs: &Value) -> ProviderResult<Value> {
        self.cloud.call("update", urn).await?;
        let id = id_of(outputs);
        match self.cloud.objects.lock().unwrap().get_mut(&id) {
            Some(o) => o.1 = inputs.clone(),
            None => return Err(ProviderError(format!("update {}: {id} does not exist", urn.name()))),
        }
        Ok(outputs.clone())
    }

    async fn delete(&self, _: &Ctx, urn: &Urn, _: &Value, outputs: &Value) -> ProviderResult<()> {
        self.cloud.call("delete", urn).await?;
        self.cloud.objects.lock().unwrap().remove(&id_of(outputs));
        Ok(())
    }

    async fn read_many(&self, _: &Ctx, items: &[(Urn, Value)]) -> ProviderResult<Vec<Option<Observed>>> {
        self.cloud.calls.lock().unwrap().push(format!("read_many {}", items.len()));
        let objects = self.cloud.objects.lock().unwrap();
        Ok(items
            .iter()
            .map(|(_, out)| objects.get(&id_of(out)).map(|(_, inputs)| Observed::new(inputs.clone(), out.clone())))
            .collect())
    }

    async fn find(&self, _: &Ctx, urn: &Urn, _: &Value) -> ProviderResult<Option<Value>> {
        self.cloud.calls.lock().unwrap().push(format!("find {}", urn.name()));
        if self.cloud.find_failing.load(Ordering::SeqCst) {
            return Err(ProviderError(format!("find {}: injected failure", urn.name())));
        }
        let objects = self.cloud.objects.lock().unwrap();
        Ok(objects.iter().find(|(_, (u, _))| u == urn).map(|(id, _)| json!({"id": id})))
    }

    fn import_rule(&self) -> crate::engine::Import {
        crate::engine::Import::ById
    }

    /// A thing's name is its `value`: taken when an object of another stack has it.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> crate::engine::provider::NamesTaken {
        let objects = self.cloud.objects.lock().unwrap();
        Ok(Some(
            items
                .iter()
                .map(|(_, inputs)| {
                    let value = inputs["value"].as_str().filter(|v| !v.is_empty())?;
                    let (id, (owner, _)) =
                        objects.iter().find(|(_, (u, i))| u.stack() != ctx.stack && i["value"] == value)?;
                    Some(crate::engine::Taken {
                        field: "value".into(),
                        name: value.to_string(),
                        holder: format!("{id} belongs to {owner}"),
                        fix: "choose another value".into(),
                    })
                })
                .collect(),
        ))
    }

    async fn import(&self, _: &Ctx, urn: &Urn, id: &str, _: &Value) -> ProviderResult<Option<Observed>> {
        self.cloud.call("import", urn).await?;
        let objects = self.cloud.objects.lock().unwrap();
        Ok(objects.get(id).map(|(_, inputs)| Observed::new(inputs.clone(), json!({"id": id}))))
    }

    /// Objects whose `value` is the program's: what a name match is for real providers.
    async fn discover(&self, _: &Ctx, _: &Urn, inputs: &Value) -> ProviderResult<Vec<String>> {
        let objects = self.cloud.objects.lock().unwrap();
        Ok(objects.iter().filter(|(_, (_, i))| i["value"] == inputs["value"]).map(|(id, _)| id.clone()).collect())
    }
}

impl MemoryCloud {
    /// Puts an object in the cloud that no stack created (for imports).
    pub fn insert_foreign(&self, id: &str, inputs: Value) {
        self.objects.lock().unwrap().insert(id.to_string(), (Urn::new("elsewhere", THING, id), inputs));
    }
}

/// A test resource: a value, a zone (replace-forcing), optional references to other things.
pub struct Thing {
    name: String,
    secret: Option<crate::model::Secret<String>>,
    value: String,
    zone: String,
    parents: Vec<ThingRef>,
    depends_on: Vec<Urn>,
}

#[derive(Serialize)]
struct ThingInputs {
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<crate::model::Secret<String>>,
    zone: String,
    parents: Vec<Output<String>>,
}

/// A declared [`Thing`].
#[derive(Clone, Debug)]
pub struct ThingRef {
    pub urn: Urn,
}

impl ThingRef {
    pub fn id(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "id")
    }
}

impl Thing {
    pub fn new(name: &str) -> Self {
        Thing {
            name: name.into(),
            secret: None,
            value: String::new(),
            zone: "a".into(),
            parents: Vec::new(),
            depends_on: Vec::new(),
        }
    }

    pub fn value(mut self, v: &str) -> Self {
        self.value = v.into();
        self
    }

    /// A secret input (redacted in plans, encrypted in state).
    pub fn secret(mut self, v: &str) -> Self {
        self.secret = Some(crate::model::Secret::new(v.to_string()));
        self
    }

    pub fn zone(mut self, z: &str) -> Self {
        self.zone = z.into();
        self
    }

    /// Refers to `parent`'s id (a data dependency).
    pub fn parent(mut self, parent: &ThingRef) -> Self {
        self.parents.push(parent.clone());
        self
    }

    /// An explicit dependency by URN (may name something not declared, for validation tests).
    pub fn depends_on(mut self, urn: Urn) -> Self {
        self.depends_on.push(urn);
        self
    }

    pub fn add(self, s: &mut Stack, provider: &Arc<MemoryProvider>) -> ThingRef {
        let inputs = ThingInputs {
            value: self.value,
            secret: self.secret,
            zone: self.zone,
            parents: self.parents.iter().map(ThingRef::id).collect(),
        };
        let p: Arc<dyn Provider> = provider.clone();
        ThingRef { urn: s.declare(p, &self.name, inputs, self.depends_on) }
    }
}
