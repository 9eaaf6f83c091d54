//! The provider trait: how one resource type is created, read, updated and deleted.
//!
//! Adding a resource type is one module: a [`TypedProvider`] implementation with typed inputs and
//! outputs, wrapped by [`typed`] into the JSON-level [`Provider`] the engine drives.

use crate::model::Urn;
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// What a provider call failed with. The message names the API call and the cloud's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError(pub String);

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProviderError {}

impl From<String> for ProviderError {
    fn from(s: String) -> Self {
        ProviderError(s)
    }
}

impl From<&str> for ProviderError {
    fn from(s: &str) -> Self {
        ProviderError(s.to_string())
    }
}

pub type ProviderResult<T> = Result<T, ProviderError>;

/// What a provider sees of the run: the stack name (for tags) and the clients this run was given.
///
/// The engine does not know what a client is: the command line puts the AWS clients and the
/// Kubernetes access in by their types ([`Ctx::with`]), and each provider family takes its own
/// out ([`Ctx::get`]).
///
/// ```
/// use fabric_core::engine::provider::Ctx;
///
/// struct Endpoint(String);
/// let ctx = Ctx::new("demo").with(Endpoint("http://127.0.0.1:5000".into()));
/// assert_eq!(ctx.get::<Endpoint>().unwrap().0, "http://127.0.0.1:5000");
/// assert!(ctx.get::<u32>().is_none());
/// ```
#[derive(Clone)]
pub struct Ctx {
    pub stack: String,
    clients: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Ctx {
    pub fn new(stack: impl Into<String>) -> Self {
        Ctx { stack: stack.into(), clients: HashMap::new() }
    }

    /// With this client (one per type: a second replaces the first).
    pub fn with<T: Any + Send + Sync>(self, client: T) -> Self {
        self.with_shared(Arc::new(client))
    }

    /// With this shared client.
    pub fn with_shared<T: Any + Send + Sync>(mut self, client: Arc<T>) -> Self {
        self.clients.insert(TypeId::of::<T>(), client);
        self
    }

    /// The client of type `T`, when this run has one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.clients.get(&TypeId::of::<T>()).and_then(|c| c.downcast_ref::<T>())
    }
}

/// A resource as it is in the cloud, read back: the inputs it shows (for drift) and its outputs.
///
/// A provider leaves out the input fields it cannot read back (a password): they keep their
/// recorded values (see [`Observed::over`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub inputs: Value,
    pub outputs: Value,
    /// Why it differs, where the provider can tell (`…image: changed by kubectl-set`).
    pub notes: Vec<String>,
}

impl Observed {
    pub fn new(inputs: Value, outputs: Value) -> Self {
        Observed { inputs, outputs, notes: Vec::new() }
    }

    /// `recorded` inputs with every field this read observed replaced by what it observed.
    pub fn over(&self, recorded: &Value) -> Value {
        match (recorded, &self.inputs) {
            (Value::Object(rec), Value::Object(obs)) => {
                let mut merged = rec.clone();
                for (k, v) in obs {
                    merged.insert(k.clone(), v.clone());
                }
                Value::Object(merged)
            }
            _ => self.inputs.clone(),
        }
    }
}

/// What a provider's dry run of one step found (see [`Provider::dry_run`]).
#[derive(Clone, Debug, PartialEq)]
pub enum DryRun {
    /// This provider cannot ask its cloud without changing it.
    NotSupported,
    /// Not asked, and why (the cluster is created by this deploy; an input is known only then).
    Skipped(String),
    /// Accepted. `change`: the resource's inputs as they are and as they would be, from the
    /// cloud's own answer (`None`: the answer changes nothing); `notes` say what the plan alone
    /// could not (fields another manager took, the namespace it was checked in).
    Accepted { change: Option<(Value, Value)>, notes: Vec<String> },
}

/// A resource as state recorded it, for reads that compare (see [`Provider::read_recorded`]).
#[derive(Clone, Debug)]
pub struct RecordedItem {
    pub urn: Urn,
    pub inputs: Value,
    pub outputs: Value,
}

/// What one write call's answer proves (see [`note_write_sent`], [`note_write_answered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAnswer {
    /// The service refused it (validation, already exists, access denied, quota, throttling):
    /// nothing happened.
    Refused,
    /// The service accepted it: something may have changed.
    Accepted,
}

/// The writes a running step sent, as their answers tell (see [`witnessed`]).
#[derive(Debug, Default)]
struct Writes {
    /// Sent and not (yet) answered: lost answers stay here.
    unanswered: std::sync::atomic::AtomicUsize,
    accepted: std::sync::atomic::AtomicBool,
}

tokio::task_local! {
    static WRITES: Arc<Writes>;
}

/// A client is about to send a call that may change the cloud (every call but reads). Clients
/// (the AWS SDK's interceptor, the Kubernetes provider) call this before each attempt, so that a
/// call whose answer never comes (a timeout, a dropped future) counts as one that may have
/// changed something.
pub fn note_write_sent() {
    let _ = WRITES.try_with(|w| w.unanswered.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
}

/// The answer to the last write sent (see [`note_write_sent`]) came back. Answers that prove
/// nothing (a 5xx, a broken connection) are not reported: the call stays unanswered.
pub fn note_write_answered(answer: WriteAnswer) {
    let _ = WRITES.try_with(|w| {
        use std::sync::atomic::Ordering::SeqCst;
        let _ = w.unanswered.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        if answer == WriteAnswer::Accepted {
            w.accepted.store(true, SeqCst);
        }
    });
}

/// Runs one provider call and tells whether it may have changed the cloud: `false` only when
/// every write it sent was answered with a refusal (or it sent none). A failed step for which
/// this is `false` failed definitely: nothing happened, and recovery has nothing to settle.
pub async fn witnessed<F: std::future::Future>(call: F) -> (F::Output, bool) {
    let writes = Arc::new(Writes::default());
    let out = WRITES.scope(writes.clone(), call).await;
    use std::sync::atomic::Ordering::SeqCst;
    let may_have_changed = writes.accepted.load(SeqCst) || writes.unanswered.load(SeqCst) > 0;
    (out, may_have_changed)
}

/// A name that a resource of the program would be created under and that someone else holds
/// (see [`Provider::names_taken`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The input field that chose the name (`identifier`, `name`).
    pub field: String,
    /// The name as the cloud knows it (`acme-dev-db-b31c0e`).
    pub name: String,
    /// Who holds it, as far as a read can tell (`it belongs to other::aws:rds:DbInstance::db`,
    /// `it carries no fabric tags`).
    pub holder: String,
    /// How to go on.
    pub fix: String,
}

/// What [`Provider::names_taken`] answers: `None` when the type has no such check, else one
/// answer per item asked, in order.
pub type NamesTaken = ProviderResult<Option<Vec<Option<Taken>>>>;

/// The text of input `field` of `inputs`, when the program already knows it (not an output of
/// another resource still to be made).
pub fn known_text<'a>(inputs: &'a Value, field: &str) -> Option<&'a str> {
    inputs.get(field).filter(|v| !crate::model::contains_unknown(v)).and_then(Value::as_str)
}

tokio::task_local! {
    /// How long the waits of the current step may take (`custom_timeouts`).
    static WAIT_LIMIT: std::time::Duration;
}

/// How long a wait of the running step may take: its custom timeout if it has one, else the
/// provider's own `default`. Every wait for the cloud asks this.
pub fn wait_limit(default: std::time::Duration) -> std::time::Duration {
    WAIT_LIMIT.try_with(|d| *d).unwrap_or(default)
}

/// Whether the running step has a custom timeout.
pub fn custom_wait_limit() -> Option<std::time::Duration> {
    WAIT_LIMIT.try_with(|d| *d).ok()
}

/// Runs `step` with its waits limited to `limit` (none: the providers' own limits).
pub async fn with_wait_limit<F: std::future::Future>(limit: Option<std::time::Duration>, step: F) -> F::Output {
    match limit {
        Some(d) => WAIT_LIMIT.scope(d, step).await,
        None => step.await,
    }
}

/// The engine's view of a provider: JSON in, JSON out.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// `aws:ec2:Vpc`, …
    fn type_name(&self) -> &'static str;
    /// Top-level input fields whose change forces a replacement (create new, then delete old).
    fn replace_on(&self) -> &'static [&'static str];
    /// Whether a replacement must delete the old instance before it creates the new one (the
    /// resource's identity is a name that the cloud cannot give two instances at once, and that
    /// others refer to). The plan says so: `-/+ replace (delete first)`.
    fn delete_before_replace(&self) -> bool {
        false
    }
    /// What the resource is in the cloud, independent of how the program names it, when two
    /// URNs can name the same thing (a Kubernetes object whose `apiVersion` changed is the same
    /// object under a new type). A removed resource whose identity a created one has is not
    /// deleted: it is forgotten once the new one is applied. From desired `inputs`, or from
    /// recorded `outputs` when given.
    fn identity(&self, _inputs: &Value, _outputs: Option<&Value>) -> Option<String> {
        None
    }
    /// What the plan says of an in-place update that changes these top-level input `fields`
    /// (to the desired inputs `new`, which may hold unknown values), beyond the fields themselves:
    /// how the cloud carries it out when that matters to the reader (an OpenSearch domain that a
    /// change moves to new nodes by a blue/green deployment).
    fn update_notes(&self, _fields: &[&str], _new: &Value) -> Vec<String> {
        Vec::new()
    }
    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Value>;
    async fn update(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        old_inputs: &Value,
        outputs: &Value,
        inputs: &Value,
    ) -> ProviderResult<Value>;
    /// Deletes; a resource that is already gone is not an error. `outputs` identify what to
    /// delete; `inputs` are the settings to delete it by (for the old instance of a replaced
    /// resource, the resource's current ones).
    async fn delete(&self, ctx: &Ctx, urn: &Urn, inputs: &Value, outputs: &Value) -> ProviderResult<()>;
    /// Reads many resources of this type at once (one batched call where the API allows);
    /// `None` for those that no longer exist. The answer has one entry per item, in order.
    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> ProviderResult<Vec<Option<Observed>>>;
    /// Finds a resource this stack created for `urn` whose create answer was lost (by its
    /// `fabric:urn` tag, or by its natural key for untaggable resources).
    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Option<Value>>;

    /// Like [`Provider::read_many`], given what state recorded, for refresh: a provider that can
    /// tell which recorded fields someone else changed, and who (Kubernetes, through
    /// `managedFields`), says so in [`Observed::notes`].
    async fn read_recorded(&self, ctx: &Ctx, items: &[RecordedItem]) -> ProviderResult<Vec<Option<Observed>>> {
        let batch: Vec<(Urn, Value)> = items.iter().map(|i| (i.urn.clone(), i.outputs.clone())).collect();
        self.read_many(ctx, &batch).await
    }

    /// Whether this provider can adopt an existing resource by its cloud id ([`Provider::import`]),
    /// and if not, why not (which `import` says).
    fn import_rule(&self) -> Import;

    /// Whether [`Provider::import_rule`] is [`Import::ById`].
    fn importable(&self) -> bool {
        self.import_rule() == Import::ById
    }

    /// Reads the existing resource whose cloud id is `id`, to adopt it as `urn` (`inputs`: what the
    /// program wants, where the provider needs them to find it, such as a Kubernetes cluster): its
    /// inputs as the program would write them, and its outputs. `Ok(None)`: there is none.
    async fn import(&self, _ctx: &Ctx, urn: &Urn, _id: &str, _inputs: &Value) -> ProviderResult<Option<Observed>> {
        Err(ProviderError(format!("{} cannot be imported", urn.type_name())))
    }

    /// Live resources that the program's `urn` (with `inputs`) could adopt, found by the name or
    /// the tags the program gives it: their cloud ids, for `import --discover`.
    async fn discover(&self, _ctx: &Ctx, _urn: &Urn, _inputs: &Value) -> ProviderResult<Vec<String>> {
        Ok(Vec::new())
    }

    /// A one-line stand-in for input `field` in a plan, for fields too large to list there (a
    /// Kubernetes manifest: its kind and name; `render` shows it whole). `None`: listed as it is.
    fn summarize(&self, _field: &str, _value: &Value) -> Option<String> {
        None
    }

    /// Whether the names these resources would be created under are free, for preflight: for each
    /// item (its URN and desired inputs, which may still hold unknown values), `None` when the
    /// name is free or is this resource's own (by tag, label or state), `Some` when someone else
    /// holds it. `Ok(None)`: this type has no such check (its identity is not a chosen name).
    /// Reads only, batched: one List or Describe per type where the API allows it.
    async fn names_taken(&self, _ctx: &Ctx, _items: &[(Urn, Value)]) -> NamesTaken {
        Ok(None)
    }

    /// Whether [`Provider::dry_run`] asks the cloud: the dry run of a plan skips the others without
    /// computing their inputs (a plan of thousands of resources without one stays fast).
    fn dry_runs(&self) -> bool {
        false
    }

    /// Asks the cloud, without changing anything, whether it would accept `inputs` for `urn`
    /// (`recorded`: state's inputs and outputs, when it exists) and what it would make of them.
    /// A refusal is an error naming the field. Providers whose cloud has no dry run keep the
    /// default.
    async fn dry_run(
        &self,
        _ctx: &Ctx,
        _urn: &Urn,
        _inputs: &Value,
        _recorded: Option<(&Value, &Value)>,
    ) -> ProviderResult<DryRun> {
        Ok(DryRun::NotSupported)
    }
}

/// Whether a type can adopt what exists (`import`, `import --discover`). Every provider says,
/// beside its code: a type without a decision does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Import {
    /// By its cloud id ([`Provider::import`]).
    ById,
    /// Not importable, and why: a link found again by its pair, a read that is no resource, a
    /// secret fabric makes, or "not implemented yet".
    Never(&'static str),
}

/// A provider with typed inputs and outputs. Implement this; [`typed`] makes it a [`Provider`].
#[async_trait]
pub trait TypedProvider: Send + Sync + 'static {
    type Inputs: Serialize + DeserializeOwned + Send + Sync;
    type Outputs: Serialize + DeserializeOwned + Send + Sync;
    const TYPE: &'static str;
    const REPLACE_ON: &'static [&'static str];
    /// See [`Provider::delete_before_replace`].
    const DELETE_BEFORE_REPLACE: bool = false;
    /// See [`Provider::update_notes`].
    fn update_notes(&self, _fields: &[&str], _new: &Value) -> Vec<String> {
        Vec::new()
    }

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &Self::Inputs) -> ProviderResult<Self::Outputs>;
    /// Changes the resource in place (see [`Update`]); what [`TypedProvider::REPLACE_ON`] names
    /// never reaches here.
    async fn update(&self, ctx: &Ctx, urn: &Urn, change: Update<'_, Self>) -> ProviderResult<Self::Outputs>;
    async fn delete(&self, ctx: &Ctx, urn: &Urn, inputs: &Self::Inputs, outputs: &Self::Outputs) -> ProviderResult<()>;
    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, Self::Outputs)]) -> Reads<Self>;
    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &Self::Inputs) -> ProviderResult<Option<Self::Outputs>>;

    /// One resource through [`TypedProvider::read_many`]: `None` when it is not there.
    async fn read_one(&self, ctx: &Ctx, urn: &Urn, outputs: Self::Outputs) -> Read<Self> {
        Ok(self.read_many(ctx, &[(urn.clone(), outputs)]).await?.pop().flatten())
    }

    /// Whether [`TypedProvider::import`] is implemented, and if not, why not.
    const IMPORT: Import;

    /// Reads the resource with cloud id `id` for an import (see [`Provider::import`]).
    async fn import(&self, _ctx: &Ctx, urn: &Urn, _id: &str) -> Read<Self> {
        Err(ProviderError(format!("{} cannot be imported", urn.type_name())))
    }

    /// See [`Provider::discover`].
    async fn discover(&self, _ctx: &Ctx, _urn: &Urn, _inputs: &Self::Inputs) -> ProviderResult<Vec<String>> {
        Ok(Vec::new())
    }

    /// See [`Provider::names_taken`]: the inputs are given as JSON, since fields other than the
    /// name may still be unknown (read the name with [`known_text`]).
    async fn names_taken(&self, _ctx: &Ctx, _items: &[(Urn, Value)]) -> NamesTaken {
        Ok(None)
    }
}

/// What [`TypedProvider::read_many`] answers: for each item asked, in order, its inputs and outputs
/// as read, or `None` when it is gone.
pub type Reads<P> = ProviderResult<Vec<Option<(<P as TypedProvider>::Inputs, <P as TypedProvider>::Outputs)>>>;

/// One resource as [`TypedProvider::read_one`] and [`TypedProvider::import`] read it.
pub type Read<P> = ProviderResult<Option<(<P as TypedProvider>::Inputs, <P as TypedProvider>::Outputs)>>;

/// The body of a [`TypedProvider::read_many`] whose service reads one resource at a time: `read`
/// is called for each item, in order, and answers `Ok(None)` for one that is gone. The first error
/// ends the read.
///
/// ```
/// # use fabric_core::engine::provider::{read_each, ProviderResult};
/// # use fabric_core::model::Urn;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let items = [(Urn::new("dev", "aws:s3:Bucket", "logs"), 1), (Urn::new("dev", "aws:s3:Bucket", "gone"), 2)];
/// let read = read_each(&items, |urn, o| async move {
///     Ok((urn.name() != "gone").then(|| (format!("inputs of {}", urn.name()), *o)))
/// })
/// .await?;
/// assert_eq!(read, [Some(("inputs of logs".to_string(), 1)), None]);
/// # ProviderResult::Ok(())
/// # }).unwrap();
/// ```
pub async fn read_each<'a, I, O, F, Fut>(items: &'a [(Urn, O)], read: F) -> ProviderResult<Vec<Option<(I, O)>>>
where
    F: Fn(&'a Urn, &'a O) -> Fut,
    Fut: std::future::Future<Output = ProviderResult<Option<(I, O)>>>,
{
    let mut out = Vec::with_capacity(items.len());
    for (urn, outputs) in items {
        out.push(read(urn, outputs).await?);
    }
    Ok(out)
}

/// An in-place change handed to [`TypedProvider::update`]: the inputs recorded at the last apply,
/// the outputs recorded then, and the inputs wanted now.
pub struct Update<'a, P: TypedProvider + ?Sized> {
    pub old: &'a P::Inputs,
    pub outputs: &'a P::Outputs,
    pub new: &'a P::Inputs,
}

struct Typed<P>(P);

/// Wraps a typed provider for the engine.
pub fn typed<P: TypedProvider>(provider: P) -> Arc<dyn Provider> {
    Arc::new(Typed(provider))
}

fn decode<T: DeserializeOwned>(what: &str, v: &Value) -> ProviderResult<T> {
    serde_json::from_value(v.clone()).map_err(|e| ProviderError(format!("cannot read {what}: {e}")))
}

fn encode<T: Serialize>(v: &T) -> ProviderResult<Value> {
    serde_json::to_value(v).map_err(|e| ProviderError(format!("cannot write outputs: {e}")))
}

#[async_trait]
impl<P: TypedProvider> Provider for Typed<P> {
    fn type_name(&self) -> &'static str {
        P::TYPE
    }

    fn replace_on(&self) -> &'static [&'static str] {
        P::REPLACE_ON
    }

    fn delete_before_replace(&self) -> bool {
        P::DELETE_BEFORE_REPLACE
    }

    fn update_notes(&self, fields: &[&str], new: &Value) -> Vec<String> {
        self.0.update_notes(fields, new)
    }

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Value> {
        let inputs: P::Inputs = decode("inputs", inputs)?;
        encode(&self.0.create(ctx, urn, &inputs).await?)
    }

    async fn update(&self, ctx: &Ctx, urn: &Urn, old: &Value, outputs: &Value, new: &Value) -> ProviderResult<Value> {
        let old: P::Inputs = decode("recorded inputs", old)?;
        let outputs: P::Outputs = decode("recorded outputs", outputs)?;
        let new: P::Inputs = decode("inputs", new)?;
        encode(&self.0.update(ctx, urn, Update { old: &old, outputs: &outputs, new: &new }).await?)
    }

    async fn delete(&self, ctx: &Ctx, urn: &Urn, inputs: &Value, outputs: &Value) -> ProviderResult<()> {
        let inputs: P::Inputs = decode("recorded inputs", inputs)?;
        let outputs: P::Outputs = decode("recorded outputs", outputs)?;
        self.0.delete(ctx, urn, &inputs, &outputs).await
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> ProviderResult<Vec<Option<Observed>>> {
        let mut typed_items = Vec::with_capacity(items.len());
        for (urn, outputs) in items {
            typed_items.push((urn.clone(), decode::<P::Outputs>("recorded outputs", outputs)?));
        }
        let found = self.0.read_many(ctx, &typed_items).await?;
        found
            .into_iter()
            .map(|o| match o {
                None => Ok(None),
                Some((i, out)) => Ok(Some(Observed::new(encode(&i)?, encode(&out)?))),
            })
            .collect()
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Option<Value>> {
        let inputs: P::Inputs = decode("inputs", inputs)?;
        match self.0.find(ctx, urn, &inputs).await? {
            Some(out) => Ok(Some(encode(&out)?)),
            None => Ok(None),
        }
    }

    fn import_rule(&self) -> Import {
        P::IMPORT
    }

    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str, _inputs: &Value) -> ProviderResult<Option<Observed>> {
        match self.0.import(ctx, urn, id).await? {
            Some((i, out)) => Ok(Some(Observed::new(encode(&i)?, encode(&out)?))),
            None => Ok(None),
        }
    }

    async fn discover(&self, ctx: &Ctx, urn: &Urn, inputs: &Value) -> ProviderResult<Vec<String>> {
        let inputs: P::Inputs = decode("inputs", inputs)?;
        self.0.discover(ctx, urn, &inputs).await
    }

    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        self.0.names_taken(ctx, items).await
    }
}

/// Providers by type name: what the engine uses for resources that are in state but no longer in
/// the program (to delete them). A family of types served by one provider (every Kubernetes kind)
/// registers its type-name prefix.
#[derive(Clone, Default)]
pub struct Registry {
    providers: HashMap<&'static str, Arc<dyn Provider>>,
    families: Vec<(&'static str, ProviderFor)>,
    unavailable: Vec<(&'static str, String)>,
}

/// The provider of one type of a family, by its type name.
pub type ProviderFor = fn(&str) -> Arc<dyn Provider>;

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.providers.insert(provider.type_name(), provider);
    }

    /// Every type whose name starts with `prefix` is served by `provider_for(type_name)`.
    pub fn register_family(&mut self, prefix: &'static str, provider_for: ProviderFor) {
        self.families.push((prefix, provider_for));
    }

    /// Types whose name starts with `prefix` have no provider in this build, and `fix` says how to
    /// get one (a program built without the cargo feature of their service).
    pub fn register_unavailable(&mut self, prefix: &'static str, fix: impl Into<String>) {
        self.unavailable.push((prefix, fix.into()));
    }

    /// How to get a provider for `type_name`, when it is one of [`Registry::register_unavailable`].
    pub fn unavailable(&self, type_name: &str) -> Option<&str> {
        self.unavailable.iter().find(|(prefix, _)| type_name.starts_with(prefix)).map(|(_, fix)| fix.as_str())
    }

    pub fn get(&self, type_name: &str) -> Option<Arc<dyn Provider>> {
        if let Some(p) = self.providers.get(type_name) {
            return Some(p.clone());
        }
        self.families.iter().find(|(prefix, _)| type_name.starts_with(prefix)).map(|(_, make)| make(type_name))
    }
}
