//! AWS: client configuration (the standard `aws-config` chain, or one local endpoint), error
//! handling shared by providers, and one module per service.

pub mod acm;
pub mod autoscaling;
pub mod backup;
pub mod create;
pub mod ec2;
pub mod eks;
pub mod elbv2;
pub mod iam;
pub mod random;
pub mod rds;
pub mod route53;
pub mod s3;
pub mod wait;

use crate::engine::provider::{Provider, ProviderError};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::{Arc, Mutex};

/// Every provider of this module, for the registry.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    ec2::providers()
        .into_iter()
        .chain(iam::providers())
        .chain(route53::providers())
        .chain(rds::providers())
        .chain([random::provider()])
        .chain(acm::providers())
        .chain(backup::providers())
        .chain(elbv2::providers())
        .chain(eks::providers())
        .chain([autoscaling::attachment_provider(), s3::bucket_provider()])
        .collect()
}

/// The tag keys fabric puts on every resource it creates.
pub const TAG_STACK: &str = "fabric:stack";
pub const TAG_URN: &str = "fabric:urn";

/// Resource tags (the user's, plus `Name` where a service shows it); fabric adds `fabric:stack`
/// and `fabric:urn`.
pub type Tags = std::collections::BTreeMap<String, String>;

/// The user's tags among `pairs` read back from a service (fabric's own left out).
pub fn user_tags_of(pairs: impl IntoIterator<Item = (String, String)>) -> Tags {
    pairs.into_iter().filter(|(k, _)| k != TAG_STACK && k != TAG_URN).collect()
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
    /// Attempts per call, including the first (the SDK's standard retry with backoff). Creates that
    /// are not idempotent are never retried blindly: see [`create`].
    pub max_attempts: Option<u32>,
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
            // The emulator answers unimplemented actions with HTTP 500; do not retry those.
            max_attempts: Some(1),
            emulator: true,
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
        self.calls()
            .into_iter()
            .filter(|c| {
                let op = c.rsplit('.').next().unwrap_or("");
                !["Describe", "Get", "List", "Head"].iter().any(|p| op.starts_with(p))
            })
            .collect()
    }
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
        Ok(())
    }
}

/// The AWS clients of one run.
pub struct Aws {
    pub config: aws_types::SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    pub route53: aws_sdk_route53::Client,
    pub rds: aws_sdk_rds::Client,
    pub acm: aws_sdk_acm::Client,
    pub backup: aws_sdk_backup::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub eks: aws_sdk_eks::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub calls: CallLog,
    /// Talking to the local emulator: an API it does not implement (HTTP 500) may be recorded as
    /// an *emulator gap* by providers that know it, and is reported after the deploy — never on
    /// real AWS.
    pub emulator: bool,
}

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
        if let Some(n) = settings.max_attempts {
            loader = loader.retry_config(RetryConfig::standard().with_max_attempts(n.max(1)));
        }
        let config = loader.load().await;
        let mut aws = Aws::from_config(config, settings.endpoint.is_some());
        aws.emulator = settings.emulator;
        aws
    }

    pub fn from_config(config: aws_types::SdkConfig, custom_endpoint: bool) -> Self {
        let calls = CallLog::default();
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .interceptor(Recorder(calls.clone()))
                .force_path_style(custom_endpoint)
                .build(),
        );
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let route53 = aws_sdk_route53::Client::from_conf(
            aws_sdk_route53::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let rds = aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let acm = aws_sdk_acm::Client::from_conf(
            aws_sdk_acm::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let backup = aws_sdk_backup::Client::from_conf(
            aws_sdk_backup::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let elbv2 = aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let eks = aws_sdk_eks::Client::from_conf(
            aws_sdk_eks::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        let autoscaling = aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(&config).interceptor(Recorder(calls.clone())).build(),
        );
        Aws { config, ec2, s3, iam, route53, rds, acm, backup, elbv2, eks, autoscaling, calls, emulator: false }
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
    let text = aws_sdk_ec2::error::DisplayErrorContext(e).to_string();
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

/// A provider error naming the call and the full error chain.
pub fn call_failed<E: std::error::Error + Send + Sync + 'static>(
    call: &str,
    e: SdkError<E, HttpResponse>,
) -> ProviderError {
    ProviderError(format!("{call} failed: {}", aws_sdk_ec2::error::DisplayErrorContext(e)))
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
    ) -> SdkError<aws_sdk_backup::operation::create_backup_selection::CreateBackupSelectionError, HttpResponse> {
        let err = aws_sdk_backup::operation::create_backup_selection::CreateBackupSelectionError::unhandled("boom");
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
