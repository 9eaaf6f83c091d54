//! AWS: client configuration (the standard `aws-config` chain, or one local endpoint), error
//! handling shared by providers, and one module per service.

pub mod create;
#[cfg(all(test, feature = "full"))]
mod definite_tests;
pub mod gap;
pub mod preflight;
#[cfg(all(test, feature = "full"))]
mod request_tests;
pub mod s3;
#[cfg(all(test, feature = "full"))]
pub(crate) mod scripted;
#[macro_use]
mod services;
pub mod wait;
#[cfg(any(feature = "rds", feature = "elasticache"))]
pub mod windows;

pub use services::Service;

// The service table: one line per AWS service behind a cargo feature — its module, the feature
// (in `sdk/Cargo.toml`), the type-name prefixes its providers serve, its client in [`Aws`], and
// `preflight` when the module has checks of its own for preflight.
// The modules, the clients, `providers()` and the registry's missing-feature table are derived
// from it; `services::tests` checks it against the manifest's features. Adding a service is its
// module, one line here, and the two Cargo manifests (docs/adding-a-resource-type.md).
table! {
    ec2: "ec2", ["aws:ec2:"], ec2 = aws_sdk_ec2;
    iam: "iam", ["aws:iam:"], iam = aws_sdk_iam;
    route53: "route53", ["aws:route53:"], route53 = aws_sdk_route53;
    acm: "acm", ["aws:acm:"], acm = aws_sdk_acm;
    elbv2: "elbv2", ["aws:elbv2:"], elbv2 = aws_sdk_elasticloadbalancingv2;
    rds: "rds", ["aws:rds:"], rds = aws_sdk_rds, preflight;
    backup: "backup", ["aws:backup:"], backup = aws_sdk_backup;
    eks: "eks", ["aws:eks:"], eks = aws_sdk_eks, preflight;
    autoscaling: "eks", ["aws:autoscaling:"], autoscaling = aws_sdk_autoscaling;
    kms: "kms", ["aws:kms:"], kms = aws_sdk_kms;
    elasticache: "elasticache", ["aws:elasticache:"], elasticache = aws_sdk_elasticache, preflight;
    opensearch: "opensearch", ["aws:opensearch:"], opensearch = aws_sdk_opensearch, preflight;
}

use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult};
use crate::model::{Checker, Urn};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::sync::{Arc, Mutex};

/// The AWS clients of a run, taken from its context (see [`crate::providers::context`]).
pub trait AwsCtx {
    /// An error when this run was started without AWS (tests with in-memory providers).
    fn aws(&self) -> ProviderResult<&Aws>;
}

impl AwsCtx for Ctx {
    fn aws(&self) -> ProviderResult<&Aws> {
        self.get::<Aws>().ok_or_else(|| ProviderError("no AWS configuration in this run".into()))
    }
}

/// Every provider of this module, for the registry: the S3 bucket (S3 is always built, for
/// state), and each built service's.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    let mut all = vec![s3::bucket_provider()];
    all.extend(service_providers());
    all
}

/// Checks user tags against AWS's rules (EC2's, the strictest: 50 tags, of which fabric uses up to
/// 5).
// Every tagged service uses it; a build with none of them (kms alone) does not.
#[cfg_attr(not(feature = "ec2"), allow(dead_code))]
pub(crate) fn check_tags(c: &mut Checker, tags: &Tags) {
    for (k, v) in tags {
        c.require(
            !k.is_empty() && k.len() <= 128,
            "tags",
            format!("tag key `{k}` must have 1 to 128 characters"),
            "shorten the key",
        );
        c.require(
            v.len() <= 256,
            "tags",
            format!("the value of tag `{k}` is longer than 256 characters"),
            "shorten the value",
        );
        let reserved = k.to_ascii_lowercase().starts_with("aws:") || k.starts_with("fabric:");
        c.require(
            !reserved,
            "tags",
            format!("tag key `{k}` uses a reserved prefix (`aws:` or `fabric:`)"),
            "choose another key",
        );
    }
    c.require(
        tags.len() <= 45,
        "tags",
        format!("{} tags given; EC2 allows 50 and fabric uses up to 5", tags.len()),
        "use at most 45 tags",
    );
}

/// The tag keys fabric puts on every resource it creates.
pub const TAG_STACK: &str = "fabric:stack";
pub const TAG_URN: &str = "fabric:urn";

/// Resource tags (the user's, plus `Name` where a service shows it); fabric adds `fabric:stack`
/// and `fabric:urn`.
pub type Tags = std::collections::BTreeMap<String, String>;

/// The user's tags among `pairs` read back from a service (fabric's own, `fabric:*`, left out).
pub fn user_tags_of(pairs: impl IntoIterator<Item = (String, String)>) -> Tags {
    pairs.into_iter().filter(|(k, _)| !k.starts_with("fabric:")).collect()
}

/// The cloud name of a resource whose identity is its name: `base-<hash>`, the hash taken over the
/// values of the fields that force its replacement, so that a replacement gets a new name and can
/// be created before the old instance goes (as security groups do). At most `max` characters.
pub fn physical_name(base: &str, max: usize, forcing: &[&str]) -> String {
    let hash = crate::model::short_hash(&forcing.join("\u{0}"));
    let keep = max.saturating_sub(hash.len() + 1).min(base.len());
    format!("{}-{hash}", base[..keep].trim_end_matches('-'))
}

/// The base of a [`physical_name`] made with `forcing`; any other name (one made before physical
/// names) is its own base.
pub fn base_name<'a>(name: &'a str, forcing: &[&str]) -> &'a str {
    let hash = crate::model::short_hash(&forcing.join("\u{0}"));
    name.strip_suffix(&hash).and_then(|n| n.strip_suffix('-')).unwrap_or(name)
}

/// Whether tags read from a resource met by its name prove that it is `urn`'s.
pub fn tagged_for<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>, urn: &Urn) -> bool {
    tags.into_iter().any(|(k, v)| k == TAG_URN && v == urn.as_str())
}

/// The error of a create that met an existing resource of the same name that is not provably
/// this stack's: what was found, that nothing was changed, and how to go on.
pub fn not_ours<'a>(
    ctx: &crate::engine::Ctx,
    urn: &Urn,
    what: &str,
    tags: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> ProviderError {
    ProviderError(format!(
        "{what} already exists and is not this stack's ({}); nothing was changed\n    fix: give it another name in the program; or delete the existing one; or, to bring it under this stack, tag it {TAG_STACK}={} and {TAG_URN}={urn} and deploy again",
        holder(tags).unwrap_or_else(|| "it carries no fabric tags".into()),
        ctx.stack
    ))
}

/// Whose a resource is by its `fabric:urn` tag (`it belongs to …`), when it has one.
fn holder<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> Option<String> {
    tags.into_iter().find(|(k, _)| *k == TAG_URN).map(|(_, v)| format!("it belongs to {v}"))
}

/// Succeeds when `tags`, read from a resource met by its name, prove it is `urn`'s; otherwise the
/// [`not_ours`] refusal.
pub fn require_ours<'a, T>(ctx: &crate::engine::Ctx, urn: &Urn, what: &str, tags: &'a T) -> Result<(), ProviderError>
where
    &'a T: IntoIterator<Item = (&'a String, &'a String)>,
{
    if tagged_for(tags, urn) { Ok(()) } else { Err(not_ours(ctx, urn, what, tags)) }
}

/// For a names check ([`crate::engine::Provider::names_taken`]): `None` when a resource met by
/// `name` carries `tags` proving it is `urn`'s, else who holds it and how to go on.
pub fn taken_unless_ours<'a>(
    ctx: &Ctx,
    urn: &Urn,
    field: &str,
    name: &str,
    tags: impl IntoIterator<Item = (&'a String, &'a String)> + Clone,
) -> Option<crate::engine::Taken> {
    if tagged_for(tags.clone(), urn) {
        return None;
    }
    Some(crate::engine::Taken {
        field: field.to_string(),
        name: name.to_string(),
        holder: holder(tags).unwrap_or_else(|| "it exists in this account and carries no fabric tags".into()),
        fix: format!(
            "give it another name in the program; or adopt it with `import {urn} {name}`; or, if it is this stack's, tag it {TAG_STACK}={} and {TAG_URN}={urn}",
            ctx.stack
        ),
    })
}

/// Answers a names check from one batched listing, for names that are input `field` as it is:
/// see [`names_held_by`].
pub async fn names_held<F, Fut>(
    ctx: &Ctx,
    items: &[(Urn, serde_json::Value)],
    field: &str,
    existing: &std::collections::BTreeMap<String, String>,
    tags_of: F,
) -> crate::engine::provider::NamesTaken
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ProviderResult<Tags>>,
{
    let name_of = |inputs: &serde_json::Value| crate::engine::provider::known_text(inputs, field).map(String::from);
    names_held_by(ctx, items, field, name_of, existing, tags_of).await
}

/// Answers a names check from a listing that came with each entry's tags (name → tags).
pub async fn names_held_listed(
    ctx: &Ctx,
    items: &[(Urn, serde_json::Value)],
    field: &str,
    listed: &std::collections::BTreeMap<String, Tags>,
) -> crate::engine::provider::NamesTaken {
    let existing = listed.keys().map(|k| (k.clone(), k.clone())).collect();
    names_held(ctx, items, field, &existing, |name| async move { Ok(listed.get(&name).cloned().unwrap_or_default()) })
        .await
}

/// Answers a names check from one batched listing: `name_of` gives the name each item would be
/// created under (`None`: not known yet, not checked), `existing` maps each name that exists to
/// what `tags_of` needs to read its tags (an ARN), which is read only for names the program
/// wants.
pub async fn names_held_by<F, Fut>(
    ctx: &Ctx,
    items: &[(Urn, serde_json::Value)],
    field: &str,
    name_of: impl Fn(&serde_json::Value) -> Option<String>,
    existing: &std::collections::BTreeMap<String, String>,
    tags_of: F,
) -> crate::engine::provider::NamesTaken
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ProviderResult<Tags>>,
{
    let mut out = Vec::with_capacity(items.len());
    for (urn, inputs) in items {
        let taken = match name_of(inputs).and_then(|name| existing.get(&name).map(|id| (name, id))) {
            Some((name, id)) => taken_unless_ours(ctx, urn, field, &name, &tags_of(id.clone()).await?),
            None => None,
        };
        out.push(taken);
    }
    Ok(Some(out))
}

/// What it takes to go from tags `old` to `new`: keys to remove, pairs to add or overwrite.
#[derive(Debug, Default, PartialEq)]
pub struct TagChanges {
    pub removed: Vec<String>,
    pub set: Vec<(String, String)>,
}

impl TagChanges {
    pub fn between(old: &Tags, new: &Tags) -> Self {
        TagChanges {
            removed: old.keys().filter(|k| !new.contains_key(*k)).cloned().collect(),
            set: new.iter().filter(|(k, v)| old.get(*k) != Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    /// Makes a resource's user tags go from `old` to `new` through its service's own calls:
    /// `remove` with the keys that go, then `set` with the pairs added or changed. A half with
    /// nothing to do is not called.
    pub async fn sync<R, S>(
        old: &Tags,
        new: &Tags,
        remove: impl FnOnce(Vec<String>) -> R,
        set: impl FnOnce(Vec<(String, String)>) -> S,
    ) -> ProviderResult<()>
    where
        R: std::future::Future<Output = ProviderResult<()>>,
        S: std::future::Future<Output = ProviderResult<()>>,
    {
        let changes = TagChanges::between(old, new);
        if !changes.removed.is_empty() {
            remove(changes.removed).await?;
        }
        if !changes.set.is_empty() {
            set(changes.set).await?;
        }
        Ok(())
    }
}

/// The tags a resource is made with: the user's, then fabric's own (`fabric:stack`, `fabric:urn`)
/// that prove it is this stack's.
pub fn with_fabric_tags(ctx: &Ctx, urn: &Urn, user: &Tags) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = user.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    all.push((TAG_STACK.to_string(), ctx.stack.clone()));
    all.push((TAG_URN.to_string(), urn.to_string()));
    all
}

/// How to reach AWS.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// One endpoint for every service (`FABRIC_AWS_ENDPOINT`, or the local emulator).
    pub endpoint: Option<String>,
    /// Overrides the region of the standard chain.
    pub region: Option<String>,
    /// Dummy static credentials (for the local emulator).
    pub dummy_credentials: bool,
    /// How calls are retried (see [`RetryPolicy`]). Creates that are not idempotent are never
    /// retried blindly whatever the policy: see [`create`].
    pub retry: RetryPolicy,
    /// The endpoint is the local emulator (some providers record its known gaps, see
    /// [`Aws::emulator`]).
    pub emulator: bool,
}

impl AwsSettings {
    /// Settings for the local emulator at `endpoint`.
    pub fn local(endpoint: &str) -> Self {
        AwsSettings {
            endpoint: Some(endpoint.to_string()),
            region: Some("us-east-2".into()),
            dummy_credentials: true,
            retry: RetryPolicy::Emulator,
            emulator: true,
        }
    }
}

/// How AWS calls are retried: the SDK's standard retry (exponential backoff with full jitter on
/// throttling, 5xx, timeouts and lost connections), configured for the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryPolicy {
    /// A real account (or any endpoint but the local emulator): throttling and 5xx are ordinary,
    /// so every read, update, delete and wait is retried for minutes —
    /// [`RetryPolicy::REAL_ATTEMPTS`] attempts, backoff from 1 s up to 30 s between them (about
    /// 2.5 minutes on average, at most 6), without the SDK's retry quota, which would stop
    /// retrying altogether after a burst of throttling. (Terraform's AWS provider retries 25 times.)
    #[default]
    RealAccount,
    /// The local emulator answers actions it does not implement with HTTP 500: one attempt.
    Emulator,
}

impl RetryPolicy {
    pub const REAL_ATTEMPTS: u32 = 15;

    /// The SDK retry configuration of this policy.
    pub fn retry_config(self) -> RetryConfig {
        match self {
            RetryPolicy::RealAccount => RetryConfig::standard()
                .with_max_attempts(Self::REAL_ATTEMPTS)
                .with_initial_backoff(std::time::Duration::from_secs(1))
                .with_max_backoff(std::time::Duration::from_secs(30)),
            RetryPolicy::Emulator => RetryConfig::standard().with_max_attempts(1),
        }
    }

    /// The retry partition: for a real account, one without a retry quota (a deploy runs a
    /// bounded number of calls at once, so retries cannot snowball).
    fn partition(self) -> aws_smithy_runtime::client::retries::RetryPartition {
        use aws_smithy_runtime::client::retries::RetryPartition;
        use aws_smithy_runtime::client::retries::TokenBucket;
        match self {
            RetryPolicy::RealAccount => {
                RetryPartition::custom("fabric-real-account").token_bucket(TokenBucket::unlimited()).build()
            }
            RetryPolicy::Emulator => RetryPartition::new("fabric-emulator"),
        }
    }
}

/// A record of every AWS operation called, as `Service.Operation` (for tests and `--api-log`).
#[derive(Clone, Debug, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().expect("call log poisoned").clone()
    }

    pub fn clear(&self) {
        self.0.lock().expect("call log poisoned").clear();
    }

    /// Calls that change something (everything but Describe/Get/List/Head).
    pub fn writes(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| is_write(c.rsplit('.').next().unwrap_or(""))).collect()
    }
}

/// Whether an operation may change something: every one but Describe/Get/List/Head.
fn is_write(operation: &str) -> bool {
    !["Describe", "Get", "List", "Head"].iter().any(|p| operation.starts_with(p))
}

/// Whether the operation of this call (its config bag) may change something.
fn writes_in(cfg: &ConfigBag) -> bool {
    cfg.load::<Metadata>().is_some_and(|m| is_write(m.name()))
}

#[derive(Debug)]
struct Recorder(CallLog);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "fabric-call-log"
    }

    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name =
            cfg.load::<Metadata>().map(|m| format!("{}.{}", m.service(), m.name())).unwrap_or_else(|| "unknown".into());
        self.0.0.lock().expect("call log poisoned").push(name);
        cfg.interceptor_state().store_put(CallStarted(std::time::Instant::now()));
        Ok(())
    }

    /// Each attempt of a write is noted before it is sent, for the running step's witness
    /// ([`crate::engine::provider::witnessed`]): an attempt whose answer never comes may have
    /// changed the cloud.
    fn read_before_transmit(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if writes_in(cfg) {
            crate::engine::provider::note_write_sent();
        }
        Ok(())
    }

    /// A write's answer, when one came: a refusal (4xx, throttling included) proves nothing
    /// happened; a success that something did. A 5xx or no answer proves nothing either way.
    fn read_after_attempt(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if writes_in(cfg)
            && let Some(answer) = context.response().and_then(|r| write_answer(r.status().as_u16()))
        {
            crate::engine::provider::note_write_answered(answer);
        }
        Ok(())
    }

    /// Notes on the final answer how many attempts the call took and for how long, for
    /// [`call_failed`]'s one-line errors.
    fn modify_before_completion(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempts = cfg.load::<aws_smithy_runtime_api::client::retries::RequestAttempts>().map(|a| a.attempts());
        let elapsed = cfg.load::<CallStarted>().map(|s| s.0.elapsed());
        if let Some(response) = context.response_mut() {
            if let Some(n) = attempts {
                response.headers_mut().insert(ATTEMPTS_HEADER, n.to_string());
            }
            if let Some(t) = elapsed {
                response.headers_mut().insert(ELAPSED_HEADER, t.as_millis().to_string());
            }
        }
        Ok(())
    }
}

/// What an HTTP status proves about a write: a refusal (4xx but a request timeout), an acceptance
/// (2xx, 3xx), or nothing (5xx).
fn write_answer(status: u16) -> Option<crate::engine::provider::WriteAnswer> {
    use crate::engine::provider::WriteAnswer;
    match status {
        200..=399 => Some(WriteAnswer::Accepted),
        408 => None,
        400..=499 => Some(WriteAnswer::Refused),
        _ => None,
    }
}

/// When a call started (kept in the call's own config bag).
#[derive(Clone, Debug)]
struct CallStarted(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for CallStarted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Response headers fabric adds (never sent anywhere): the attempts a call took, its duration.
const ATTEMPTS_HEADER: &str = "x-fabric-attempts";
const ELAPSED_HEADER: &str = "x-fabric-elapsed-ms";

impl Aws {
    /// Loads configuration from the standard chain (environment, profiles, SSO, IMDS), with the
    /// overrides of `settings`.
    pub async fn connect(settings: &AwsSettings) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if settings.dummy_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::from_keys("test", "test", None));
        }
        loader = loader.retry_config(settings.retry.retry_config());
        let config = loader.load().await;
        let mut aws = Aws::from_config_with(config, settings.endpoint.is_some(), settings.retry);
        aws.emulator = settings.emulator;
        aws
    }

    /// Clients for `config` (its retry configuration as given), with the real-account retry
    /// partition.
    pub fn from_config(config: aws_types::SdkConfig, custom_endpoint: bool) -> Self {
        Aws::from_config_with(config, custom_endpoint, RetryPolicy::RealAccount)
    }

    fn from_config_with(config: aws_types::SdkConfig, custom_endpoint: bool, retry: RetryPolicy) -> Self {
        Aws::with_call_log(config, custom_endpoint, retry, CallLog::default())
    }

    /// Clients recording their calls into `calls`.
    pub(crate) fn with_call_log(
        config: aws_types::SdkConfig,
        custom_endpoint: bool,
        retry: RetryPolicy,
        calls: CallLog,
    ) -> Self {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .interceptor(Recorder(calls.clone()))
                .retry_partition(retry.partition())
                .force_path_style(custom_endpoint)
                .build(),
        );
        let sts = client!(aws_sdk_sts, &config, &calls, retry);
        let quotas = client!(aws_sdk_servicequotas, &config, &calls, retry);
        Aws::with_service_clients(config, s3, sts, quotas, calls, retry)
    }

    pub fn region(&self) -> String {
        self.config.region().map(|r| r.to_string()).unwrap_or_default()
    }
}

/// How an AWS call failed, for deciding what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request was refused; nothing happened.
    Refused { code: String, message: String },
    /// Throttled: nothing happened; try again later.
    Throttled(String),
    /// The answer was lost (timeout, connection, 5xx): it may or may not have happened.
    Ambiguous(String),
}

impl Failure {
    pub fn code(&self) -> &str {
        match self {
            Failure::Refused { code, .. } => code,
            _ => "",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Refused { code, message } => format!("{code}: {message}"),
            Failure::Throttled(m) | Failure::Ambiguous(m) => m.clone(),
        }
    }
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];

/// Classifies an SDK error.
pub fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: &SdkError<E, HttpResponse>,
) -> Failure {
    let text = describe(e);
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("").to_string();
            if THROTTLING.contains(&code.as_str()) || status == 429 {
                Failure::Throttled(text)
            } else if status >= 500 {
                Failure::Ambiguous(text)
            } else {
                Failure::Refused { message: se.err().message().unwrap_or(&text).to_string(), code }
            }
        }
        SdkError::ConstructionFailure(_) => Failure::Refused { code: "ConstructionFailure".into(), message: text },
        _ => Failure::Ambiguous(text),
    }
}

/// Sends a delete until it is accepted (`Ok(false)`), or finds the resource gone (`Ok(true)`).
/// Refused for deletion protection (the error code `refusal`: RDS and ELB spell it each their own
/// way), the program's word decides: still protected in the program
/// (`protected`), it refuses with the way out; no longer (an old instance of a replaced
/// database), `lift` turns protection off once and the delete is sent again.
#[cfg(any(feature = "rds", feature = "elbv2"))]
pub(crate) async fn delete_unless_protected<E, D, DF, L, LF>(
    what: &str,
    call: &str,
    refusal: &str,
    protected: bool,
    gone: impl Fn(&str) -> bool,
    delete: D,
    lift: L,
) -> ProviderResult<bool>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    D: Fn() -> DF,
    DF: std::future::Future<
            Output = Result<
                (),
                aws_smithy_runtime_api::client::result::SdkError<
                    E,
                    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
                >,
            >,
        >,
    L: Fn() -> LF,
    LF: std::future::Future<Output = ProviderResult<()>>,
{
    let mut lifted = false;
    loop {
        match delete().await {
            Ok(()) => return Ok(false),
            Err(e) if error_code(&e).is_some_and(&gone) => return Ok(true),
            Err(e) if error_code(&e) == Some(refusal) && protected => {
                return Err(ProviderError(format!(
                    "{what} has deletion protection: set `.deletion_protection(false)`, deploy, then delete it"
                )));
            }
            Err(e) if error_code(&e) == Some(refusal) && !lifted => {
                lift().await?;
                lifted = true;
            }
            Err(e) => return Err(call_failed(call, e)),
        }
    }
}

/// The error code of an SDK error (`InvalidVpcID.NotFound` …), if the service answered one.
pub fn error_code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// The key of an output that records an emulator gap instead of a created resource.
pub const EMULATOR_GAP: &str = "emulator_gap";

/// Whether `e` is the emulator's answer to an action it does not implement (HTTP 500, HTML).
pub fn is_emulator_gap<E>(aws: &Aws, e: &SdkError<E, HttpResponse>) -> bool {
    aws.emulator && e.raw_response().is_some_and(|r| r.status().as_u16() == 500)
}

/// A call's answer in which "there is no such thing" (an error whose code `absent` accepts) is
/// `None`, and any other error names the call: a delete of what is already gone, a read of what
/// was deleted.
pub fn found<T, E>(
    call: &str,
    absent: impl Fn(Option<&str>) -> bool,
    answer: Result<T, SdkError<E, HttpResponse>>,
) -> ProviderResult<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer {
        Ok(v) => Ok(Some(v)),
        Err(e) if absent(error_code(&e)) => Ok(None),
        Err(e) => Err(call_failed(call, e)),
    }
}

/// A provider error in one line: the call, the service's code and message (or what went wrong on
/// the way), the attempts and the time spent.
pub fn call_failed<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    call: &str,
    e: SdkError<E, HttpResponse>,
) -> ProviderError {
    ProviderError(format!("{call} failed: {}", describe(&e)))
}

/// One line for an SDK error: `Code: message (HTTP 400, 3 attempts in 4.2 s)`.
pub fn describe<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: &SdkError<E, HttpResponse>,
) -> String {
    let one_line = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let chain = |e: &dyn std::error::Error| {
        let mut parts = Vec::new();
        let mut next = e.source();
        while let Some(s) = next {
            parts.push(s.to_string());
            next = s.source();
        }
        one_line(parts.join(": "))
    };
    let what = match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {}", one_line(message.to_string())),
                (Some(code), None) => code.to_string(),
                (None, _) => format!("unrecognized answer: {}", chain(e)),
            }
        }
        SdkError::TimeoutError(_) => format!(
            "timed out{}",
            Some(chain(e)).filter(|c| !c.is_empty()).map(|c| format!(": {c}")).unwrap_or_default()
        ),
        SdkError::DispatchFailure(_) => format!("could not reach AWS: {}", chain(e)),
        SdkError::ResponseError(_) => format!("unreadable answer: {}", chain(e)),
        SdkError::ConstructionFailure(_) => format!("invalid request: {}", chain(e)),
        _ => one_line(e.to_string()),
    };
    let mut facts = Vec::new();
    if let Some(r) = e.raw_response() {
        facts.push(format!("HTTP {}", r.status().as_u16()));
        let attempts = r.headers().get(ATTEMPTS_HEADER).and_then(|v| v.parse::<u32>().ok());
        let millis = r.headers().get(ELAPSED_HEADER).and_then(|v| v.parse::<u64>().ok());
        match (attempts, millis) {
            (Some(n), Some(ms)) => {
                facts.push(format!("{n} attempt{} in {:.1} s", if n == 1 { "" } else { "s" }, ms as f64 / 1000.0))
            }
            (Some(n), None) => facts.push(format!("{n} attempt{}", if n == 1 { "" } else { "s" })),
            _ => {}
        }
    }
    if facts.is_empty() { what } else { format!("{what} ({})", facts.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn aws(emulator: bool) -> Aws {
        let config = aws_types::SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
        let mut a = Aws::from_config(config, false);
        a.emulator = emulator;
        a
    }

    fn answer(
        status: u16,
    ) -> SdkError<aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError, HttpResponse> {
        let err = aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError::unhandled("boom");
        SdkError::service_error(err, HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()))
    }

    #[test]
    fn tag_changes_remove_add_and_overwrite() {
        let old: Tags = [("a", "1"), ("b", "2")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let new: Tags = [("b", "3"), ("c", "4")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let c = TagChanges::between(&old, &new);
        assert_eq!(c.removed, ["a"]);
        assert_eq!(c.set, [("b".to_string(), "3".to_string()), ("c".to_string(), "4".to_string())]);
        assert_eq!(TagChanges::between(&new, &new), TagChanges::default());
        let read = user_tags_of([(TAG_URN.to_string(), "x".to_string()), ("team".to_string(), "web".to_string())]);
        assert_eq!(read.keys().collect::<Vec<_>>(), ["team"]);
    }

    #[test]
    fn physical_names_follow_the_fields_that_force_replacement() {
        let a = physical_name("general", 63, &["t3.large", "ON_DEMAND"]);
        let b = physical_name("general", 63, &["m6i.large", "ON_DEMAND"]);
        assert!(a.starts_with("general-") && a.len() == "general-".len() + 6, "{a}");
        assert_ne!(a, b, "a replacement gets a new name");
        assert_eq!(a, physical_name("general", 63, &["t3.large", "ON_DEMAND"]), "stable");
        assert_eq!(base_name(&a, &["t3.large", "ON_DEMAND"]), "general");
        assert_eq!(base_name("general", &["t3.large", "ON_DEMAND"]), "general", "names made before stay");
        let long = physical_name(&"x".repeat(40), 32, &["80"]);
        assert_eq!(long.len(), 32);
    }

    #[test]
    fn only_the_emulator_has_gaps() {
        assert!(is_emulator_gap(&aws(true), &answer(500)));
        assert!(!is_emulator_gap(&aws(false), &answer(500)), "real AWS errors are errors");
        assert!(!is_emulator_gap(&aws(true), &answer(400)));
    }

    #[test]
    fn failures_are_classified_by_what_may_have_happened() {
        assert!(matches!(classify(&answer(500)), Failure::Ambiguous(_)));
        assert!(matches!(classify(&answer(400)), Failure::Refused { .. }));
        assert!(matches!(classify(&answer(429)), Failure::Throttled(_)));
    }
}
