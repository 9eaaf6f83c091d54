//! Amazon S3 buckets: private (all four public access blocks, ACLs off: the bucket owner owns
//! every object), encrypted at rest (SSE-S3, or SSE-KMS with a key of the stack), reachable over
//! TLS only (a bucket policy denies any request without it), versioned, with lifecycle rules. A
//! bucket that still holds objects is never deleted unless its program says `force_destroy`: the
//! delete fails and says so. `BucketRef::grant` lets a Kubernetes workload use it through EKS Pod
//! Identity, scoped to this bucket.

use super::{TAG_URN, Tags, call_failed, error_code, found};
use crate::aws::AwsCtx;
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, Provider, ProviderError, ProviderResult, Read, Reads, Taken, TypedProvider, Update, read_each, typed,
};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use typed_builder::TypedBuilder;

pub const BUCKET: &str = "aws:s3:Bucket";

pub fn bucket_provider() -> Arc<dyn Provider> {
    typed(BucketProvider)
}

/// Whether `name` is a valid bucket name: 3–63 lowercase letters, digits, `-` and `.`, starting
/// and ending with a letter or digit, not an IP address.
pub fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

/// What a bucket's objects go through as they age: after `transition_days` to
/// `transition_class`, after `expire_days` gone; noncurrent versions gone after
/// `noncurrent_expire_days`; unfinished multipart uploads aborted after `abort_multipart_days`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// The rule's id (unique in the bucket).
    pub id: String,
    /// The key prefix it applies to (empty: every object).
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_days: Option<i32>,
    /// `STANDARD_IA`, `INTELLIGENT_TIERING`, `GLACIER_IR`, `GLACIER`, `DEEP_ARCHIVE`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_expire_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_multipart_days: Option<i32>,
}

impl LifecycleRule {
    /// A rule of that id over the keys under `prefix`, doing nothing yet.
    pub fn new(id: &str, prefix: &str) -> Self {
        LifecycleRule { id: id.into(), prefix: prefix.into(), ..Default::default() }
    }
    pub fn transition(mut self, days: i32, class: &str) -> Self {
        self.transition_days = Some(days);
        self.transition_class = Some(class.into());
        self
    }
    pub fn expire(mut self, days: i32) -> Self {
        self.expire_days = Some(days);
        self
    }
    pub fn expire_noncurrent(mut self, days: i32) -> Self {
        self.noncurrent_expire_days = Some(days);
        self
    }
    pub fn abort_multipart(mut self, days: i32) -> Self {
        self.abort_multipart_days = Some(days);
        self
    }
}

/// The storage classes a lifecycle rule may move objects to, and the fewest days S3 accepts.
const TRANSITIONS: &[(&str, i32)] = &[
    ("STANDARD_IA", 30),
    ("ONEZONE_IA", 30),
    ("INTELLIGENT_TIERING", 0),
    ("GLACIER_IR", 0),
    ("GLACIER", 0),
    ("DEEP_ARCHIVE", 0),
];

/// A private, encrypted, versioned bucket, reachable over TLS only.
///
/// ```
/// use fabric::aws::s3::{Bucket, LifecycleRule};
/// let mut s = fabric::model::Stack::new("demo");
/// let b = Bucket::builder()
///     .name("uploads")
///     .bucket("example-com-uploads")
///     .lifecycle(vec![LifecycleRule::new("tmp", "tmp/").expire(7).abort_multipart(1)])
///     .build()
///     .add(&mut s)
///     .unwrap();
/// s.export("bucket", b.name());
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Bucket<'a> {
    /// The resource's name in the stack.
    #[builder(setter(into))]
    name: String,
    /// The bucket's global name.
    #[builder(setter(into))]
    bucket: String,
    #[builder(default = true)]
    versioning: bool,
    /// SSE-KMS with this key (none: SSE-S3). Objects written before a change keep their old
    /// encryption.
    #[cfg(feature = "kms")]
    #[builder(default, setter(strip_option))]
    kms_key: Option<&'a crate::aws::kms::KmsKeyRef>,
    #[builder(default)]
    lifecycle: Vec<LifecycleRule>,
    /// Let destroy delete every object (and every version) before it deletes the bucket. Off: a
    /// bucket that holds objects is kept, and the destroy says so.
    #[builder(default = false)]
    force_destroy: bool,
    /// Let AWS's log delivery write under `…/AWSLogs/` here: load balancers' access logs
    /// ([`crate::aws::elbv2::AlbIngress`]'s `access_logs`) and VPC flow logs
    /// ([`crate::aws::ec2::Vpc`]'s `flow_logs`). The bucket's policy then admits the regional
    /// Elastic Load Balancing principal and `delivery.logs.amazonaws.com` besides denying plain
    /// HTTP. Load balancers write with S3's own key only, so such a bucket takes no `kms_key`.
    #[builder(default = false)]
    log_delivery: bool,
    #[builder(default, setter(into))]
    tags: Tags,
    #[builder(default, setter(skip))]
    _key: std::marker::PhantomData<&'a ()>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketInputs<R = String> {
    pub bucket: String,
    pub versioning: bool,
    /// A KMS key's ARN for SSE-KMS; none: SSE-S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<R>,
    /// ACLs off (`BucketOwnerEnforced`) and a policy denying requests without TLS: always on for
    /// buckets fabric makes; a read shows whether they still are.
    #[serde(default)]
    pub hardened: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<LifecycleRule>,
    /// fabric's own: whether destroy empties the bucket first (not a setting of the bucket).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_destroy: bool,
    /// The policy also lets AWS's log delivery write under `AWSLogs/` ([`bucket_policy`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_delivery: bool,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketOutputs {
    pub bucket: String,
    pub arn: String,
}

/// A declared bucket.
#[derive(Clone, Debug)]
pub struct BucketRef {
    urn: Urn,
    versioned: bool,
    log_delivery: bool,
    #[cfg_attr(not(feature = "k8s"), allow(dead_code))]
    bucket: String,
    #[cfg_attr(not(feature = "eks"), allow(dead_code))]
    kms_key_arn: Option<Output<String>>,
}

impl BucketRef {
    outputs!(urn => arn: String);
    pub fn name(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "bucket")
    }
    /// Whether the bucket keeps versions of its objects.
    pub fn versioned(&self) -> bool {
        self.versioned
    }

    /// Whether AWS's log delivery may write to it (`log_delivery(true)`).
    pub fn log_delivery(&self) -> bool {
        self.log_delivery
    }

    /// Reports on `c` a bucket given as the destination of `what` that does not let AWS's log
    /// delivery write to it (flow logs and load balancers: EC2's and ELB's builders).
    #[cfg(feature = "ec2")]
    pub(crate) fn check_log_destination(&self, c: &mut Checker, field: &str, what: &str) {
        c.require(
            self.log_delivery,
            field,
            format!("bucket `{}` does not let AWS deliver {what} to it", self.urn.name()),
            "declare the bucket with `.log_delivery(true)`",
        );
    }
}

/// What a workload may do with a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// List and get objects.
    Read,
    /// List, get, put and delete objects.
    ReadWrite,
}

#[cfg(feature = "k8s")]
impl BucketRef {
    /// What a workload names in `.reach(..)` to use the bucket: the AWS APIs over HTTPS and the
    /// Pod Identity agent (who may do what is the role's business: [`BucketRef::grant`]).
    pub fn reach(&self) -> crate::k8s::policy::Reach {
        crate::k8s::policy::Reach::AwsApis { name: format!("bucket {}", self.bucket) }
    }
}

#[cfg(feature = "eks")]
impl BucketRef {
    /// Lets `workload`'s pods use this bucket, and nothing else, through EKS Pod Identity: a role
    /// only its service account can take (`<bucket's name>-<workload>`), a policy scoped to this
    /// bucket (and its key, for SSE-KMS), and the association of the two in the workload's
    /// cluster. The AWS SDKs in the pods find the credentials themselves.
    ///
    /// ```
    /// use fabric::prelude::*;
    /// use fabric::aws::eks::NodePool;
    /// use fabric::aws::s3::{Access, Bucket};
    /// let mut s = Stack::new("demo");
    /// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").nat(Nat::Single).build().add(&mut s).unwrap();
    /// let eks = EksCluster::builder().name("main").network(&net)
    ///     .pool(NodePool::builder().name("general").instance_types(vec!["t3.large".into()]).size(2..=6).build())
    ///     .build().add(&mut s).unwrap();
    /// let api = WebService::builder().name("api").cluster(&eks).image("acme/api:1.0.0").port(8080)
    ///     .health(Health::http("/healthz")).build().add(&mut s).unwrap();
    /// let uploads = Bucket::builder().name("uploads").bucket("demo-uploads-example").build().add(&mut s).unwrap();
    /// uploads.grant(&mut s, &api, Access::ReadWrite).unwrap();
    /// if let Err(e) = s.finish() { panic!("{e}") }
    /// ```
    pub fn grant(&self, s: &mut Stack, workload: &impl crate::k8s::Workload, access: Access) -> crate::Result<()> {
        use crate::aws::iam::{PolicyDocument, Role, RolePolicy};
        let who = workload.identity();
        let label = format!("{}-{}", self.urn.name().replace('/', "-"), who.name);
        let Some(cluster_name) = who.cluster.eks_cluster_name() else {
            let mut c = Checker::new(self.urn.clone());
            c.error(
                "grant",
                format!(
                    "workload `{}` runs in cluster `{}`, which is not an EKS cluster of this stack",
                    who.name,
                    who.cluster.name()
                ),
                "grant a workload of an `EksCluster` (Pod Identity is EKS's)",
            );
            s.report(c.into_errors());
            return Ok(());
        };
        let role = Role::builder()
            .name(label.clone())
            .trust(PolicyDocument::trust_eks_pods())
            .description(format!("Workload {} (namespace {}): bucket {}", who.name, who.namespace, self.bucket))
            .build()
            .add(s)?;
        let bucket_arn = format!("arn:aws:s3:::{}", self.bucket);
        let objects = format!("{bucket_arn}/*");
        let object_actions: &[&str] = match access {
            Access::Read => &["s3:GetObject", "s3:GetObjectVersion"],
            Access::ReadWrite => {
                &["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
            }
        };
        let mut policy = PolicyDocument::new()
            .allow(&["s3:ListBucket", "s3:GetBucketLocation"], &[&bucket_arn])
            .allow(object_actions, &[&objects]);
        if self.kms_key_arn.is_some() {
            // The key's ARN is known only once it is made; what S3 asks of it on this bucket's
            // behalf carries the bucket in its encryption context, which scopes the grant.
            let key_actions: &[&str] = match access {
                Access::Read => &["kms:Decrypt"],
                Access::ReadWrite => &["kms:Decrypt", "kms:GenerateDataKey"],
            };
            policy = policy.allow_when(
                key_actions,
                &["*"],
                serde_json::json!({"StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, objects]}}),
            );
        }
        RolePolicy::builder().name(label.clone()).role(&role).policy(policy).build().add(s)?;
        s.declare(
            crate::aws::eks::pod_identity_provider(),
            &label,
            crate::aws::eks::PodIdentityInputs {
                cluster_name,
                namespace: who.namespace.clone(),
                service_account: who.service_account.clone(),
                role_arn: role.arn(),
                tags: Tags::new(),
            },
            vec![],
        );
        Ok(())
    }
}

impl Bucket<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<BucketRef> {
        let mut c = Checker::new(s.urn(BUCKET, &self.name));
        c.require(
            valid_bucket_name(&self.bucket),
            "bucket",
            format!("`{}` is not a valid bucket name", self.bucket),
            "use 3 to 63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit",
        );
        check_lifecycle(&mut c, &self.lifecycle);
        #[cfg(feature = "kms")]
        c.require(
            !(self.log_delivery && self.kms_key.is_some()),
            "kms_key",
            "load balancers write access logs only to buckets encrypted with S3's own key (SSE-S3)",
            "leave out `kms_key` on the log bucket, or keep logs and KMS-encrypted data in two buckets",
        );
        s.report(c.into_errors());
        #[cfg(feature = "kms")]
        let kms_key_arn = self.kms_key.map(|k| k.arn());
        #[cfg(not(feature = "kms"))]
        let kms_key_arn: Option<Output<String>> = None;
        let inputs = BucketInputs {
            bucket: self.bucket.clone(),
            versioning: self.versioning,
            kms_key_id: kms_key_arn.clone(),
            hardened: true,
            lifecycle: self.lifecycle,
            force_destroy: self.force_destroy,
            log_delivery: self.log_delivery,
            tags: self.tags,
        };
        let urn = s.declare(bucket_provider(), &self.name, inputs, vec![]);
        Ok(BucketRef {
            urn,
            versioned: self.versioning,
            log_delivery: self.log_delivery,
            bucket: self.bucket,
            kms_key_arn,
        })
    }
}

/// Every problem of a bucket's lifecycle rules.
fn check_lifecycle(c: &mut Checker, rules: &[LifecycleRule]) {
    for (i, r) in rules.iter().enumerate() {
        let field = format!("lifecycle[{i}]");
        c.require(
            !r.id.is_empty() && r.id.len() <= 255,
            &field,
            "a lifecycle rule needs an id of 1 to 255 characters",
            "name it: `LifecycleRule::new(\"logs\", \"logs/\")`",
        );
        if rules[..i].iter().any(|o| o.id == r.id) {
            c.error(&field, format!("two lifecycle rules are named `{}`", r.id), "name each rule once");
        }
        let days = [r.transition_days, r.expire_days, r.noncurrent_expire_days, r.abort_multipart_days];
        let below_one =
            [r.expire_days, r.noncurrent_expire_days, r.abort_multipart_days].iter().flatten().any(|d| *d < 1);
        c.require(
            !below_one && r.transition_days.is_none_or(|d| d >= 0),
            &field,
            format!("rule `{}` counts days below 1", r.id),
            "give every age in whole days from 1 (a transition may be from day 0)",
        );
        c.require(
            days.iter().any(Option::is_some),
            &field,
            format!("rule `{}` does nothing", r.id),
            "give it a transition, an expiry, a noncurrent expiry or a multipart abort",
        );
        if let Some(class) = &r.transition_class {
            match TRANSITIONS.iter().find(|(k, _)| k == class) {
                None => c.error(
                    &field,
                    format!("`{class}` is not a storage class a lifecycle rule moves objects to"),
                    format!("use one of {}", TRANSITIONS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")),
                ),
                Some((_, min)) => c.require(
                    r.transition_days.is_some_and(|d| d >= *min),
                    &field,
                    format!("S3 moves objects to {class} after {min} days at the earliest"),
                    format!("give `transition_days` of at least {min}"),
                ),
            }
        }
        c.require(
            r.transition_days.is_some() == r.transition_class.is_some(),
            &field,
            format!("rule `{}` has a transition without both its days and its storage class", r.id),
            "use `.transition(days, \"GLACIER_IR\")`",
        );
        if let (Some(t), Some(e)) = (r.transition_days, r.expire_days) {
            c.require(
                t < e,
                &field,
                format!("rule `{}` moves objects to {} after {t} days but expires them after {e}: the transition never happens", r.id, r.transition_class.as_deref().unwrap_or("another class")),
                "expire after the transition (or drop the transition)",
            );
        }
    }
}

pub struct BucketProvider;

/// Whether versioning is on, from a GetBucketVersioning answer. The local emulator answers with
/// the wrong XML root element, which the SDK cannot decode; the status is then read from the
/// answer's body itself.
pub fn versioning_enabled(
    answer: Result<
        aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput,
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningError,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
) -> ProviderResult<bool> {
    match answer {
        Ok(v) => Ok(v.status() == Some(&BucketVersioningStatus::Enabled)),
        Err(e) => match e.raw_response().filter(|r| r.status().is_success()).and_then(|r| r.body().bytes()) {
            Some(body) => Ok(String::from_utf8_lossy(body).contains("<Status>Enabled</Status>")),
            None => Err(call_failed("GetBucketVersioning", e)),
        },
    }
}

fn tagging(ctx: &Ctx, urn: &Urn, tags: &Tags) -> ProviderResult<Tagging> {
    let set: Result<Vec<Tag>, _> = super::with_fabric_tags(ctx, urn, tags)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    Tagging::builder()
        .set_tag_set(Some(set.map_err(|e| ProviderError(e.to_string()))?))
        .build()
        .map_err(|e| ProviderError(e.to_string()))
}

/// The account that writes Elastic Load Balancing's access logs in each region that opened
/// before August 2022; newer regions name the service principal instead
/// (<https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html>).
const ELB_LOG_ACCOUNTS: &[(&str, &str)] = &[
    ("us-east-1", "127311923021"),
    ("us-east-2", "033677994240"),
    ("us-west-1", "027434742980"),
    ("us-west-2", "797873946194"),
    ("af-south-1", "098369216593"),
    ("ap-east-1", "754344448648"),
    ("ap-south-1", "718504428378"),
    ("ap-northeast-1", "582318560864"),
    ("ap-northeast-2", "600734575887"),
    ("ap-northeast-3", "383597477331"),
    ("ap-southeast-1", "114774131450"),
    ("ap-southeast-2", "783225319266"),
    ("ap-southeast-3", "589379963580"),
    ("ca-central-1", "985666609251"),
    ("eu-central-1", "054676820928"),
    ("eu-west-1", "156460612806"),
    ("eu-west-2", "652711504416"),
    ("eu-west-3", "009996457667"),
    ("eu-south-1", "635631232127"),
    ("eu-north-1", "897822967062"),
    ("me-south-1", "076674570225"),
    ("sa-east-1", "507241528517"),
];

/// Who writes load balancers' access logs in `region`.
fn elb_log_writer(region: &str) -> Value {
    match ELB_LOG_ACCOUNTS.iter().find(|(r, _)| *r == region) {
        Some((_, account)) => serde_json::json!({"AWS": format!("arn:aws:iam::{account}:root")}),
        None => serde_json::json!({"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
    }
}

/// The bucket policy of every bucket fabric makes: any request without TLS is denied. With
/// `log_delivery` (the bucket's region), the load balancers' log writer and
/// `delivery.logs.amazonaws.com` (VPC flow logs) may also put objects under `AWSLogs/`, and the
/// latter check the bucket's ACL.
pub fn bucket_policy(bucket: &str, log_delivery: Option<&str>) -> Value {
    let arn = format!("arn:aws:s3:::{bucket}");
    let logs = format!("{arn}/*AWSLogs/*");
    let mut statements = vec![serde_json::json!({
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn.clone(), format!("{arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })];
    if let Some(region) = log_delivery {
        statements.extend([
            serde_json::json!({
                "Sid": "LoadBalancerLogs",
                "Effect": "Allow",
                "Principal": elb_log_writer(region),
                "Action": "s3:PutObject",
                "Resource": logs.clone(),
            }),
            serde_json::json!({
                "Sid": "LogDeliveryWrite",
                "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": logs,
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
            }),
            serde_json::json!({
                "Sid": "LogDeliveryAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": arn,
            }),
        ]);
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

fn lifecycle_rule(r: &LifecycleRule) -> ProviderResult<aws_sdk_s3::types::LifecycleRule> {
    use aws_sdk_s3::types::{
        AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleExpiration, LifecycleRuleFilter,
        NoncurrentVersionExpiration, Transition, TransitionStorageClass,
    };
    aws_sdk_s3::types::LifecycleRule::builder()
        .id(&r.id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build())
        .set_transitions(r.transition_days.zip(r.transition_class.as_ref()).map(|(days, class)| {
            vec![Transition::builder().days(days).storage_class(TransitionStorageClass::from(class.as_str())).build()]
        }))
        .set_expiration(r.expire_days.map(|d| LifecycleExpiration::builder().days(d).build()))
        .set_noncurrent_version_expiration(
            r.noncurrent_expire_days.map(|d| NoncurrentVersionExpiration::builder().noncurrent_days(d).build()),
        )
        .set_abort_incomplete_multipart_upload(
            r.abort_multipart_days.map(|d| AbortIncompleteMultipartUpload::builder().days_after_initiation(d).build()),
        )
        .build()
        .map_err(|e| ProviderError(e.to_string()))
}

/// A bucket's lifecycle rules as the program gives them, from S3's answer.
fn lifecycle_of(rules: &[aws_sdk_s3::types::LifecycleRule]) -> Vec<LifecycleRule> {
    rules
        .iter()
        .map(|r| {
            let transition = r.transitions().first();
            LifecycleRule {
                id: r.id().unwrap_or_default().to_string(),
                prefix: r.filter().and_then(|f| f.prefix()).unwrap_or_default().to_string(),
                transition_days: transition.and_then(|t| t.days()),
                transition_class: transition.and_then(|t| t.storage_class()).map(|c| c.as_str().to_string()),
                expire_days: r.expiration().and_then(|e| e.days()),
                noncurrent_expire_days: r.noncurrent_version_expiration().and_then(|e| e.noncurrent_days()),
                abort_multipart_days: r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()),
            }
        })
        .collect()
}

/// What a read shows of a bucket's settings besides versioning and tags.
struct Settings {
    kms_key_id: Option<String>,
    hardened: bool,
    log_delivery: bool,
    lifecycle: Vec<LifecycleRule>,
}

impl BucketProvider {
    /// What a read shows of encryption (the KMS key, when SSE-KMS), hardening (ACLs off and the
    /// TLS-only policy), log delivery (the policy's other statements) and lifecycle.
    async fn settings(&self, ctx: &Ctx, bucket: &str) -> ProviderResult<Settings> {
        let s3 = &ctx.aws()?.s3;
        // Each setting is a call of its own; "there is none" is an error code of its own.
        let absent = |code: &'static str| move |c: Option<&str>| c == Some(code);
        let encryption = s3.get_bucket_encryption().bucket(bucket).send().await;
        let key = found("GetBucketEncryption", absent("ServerSideEncryptionConfigurationNotFoundError"), encryption)?
            .and_then(|o| {
                o.server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default())
                    .and_then(|d| d.kms_master_key_id())
                    .map(str::to_string)
            });
        let ownership = s3.get_bucket_ownership_controls().bucket(bucket).send().await;
        let owner_enforced = found("GetBucketOwnershipControls", absent("OwnershipControlsNotFoundError"), ownership)?
            .is_some_and(|o| {
                o.ownership_controls().is_some_and(|c| {
                    c.rules().iter().any(|r| r.object_ownership() == &ObjectOwnership::BucketOwnerEnforced)
                })
            });
        let policy = s3.get_bucket_policy().bucket(bucket).send().await;
        let policy = found("GetBucketPolicy", absent("NoSuchBucketPolicy"), policy)?
            .and_then(|o| o.policy().and_then(|p| serde_json::from_str::<Value>(p).ok()));
        let region = ctx.aws()?.region();
        let log_delivery = policy == Some(bucket_policy(bucket, Some(&region)));
        let tls_only = log_delivery || policy == Some(bucket_policy(bucket, None));
        let lifecycle = s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await;
        let lifecycle = found("GetBucketLifecycleConfiguration", absent("NoSuchLifecycleConfiguration"), lifecycle)?
            .map(|o| lifecycle_of(o.rules()))
            .unwrap_or_default();
        let hardened = owner_enforced && tls_only;
        Ok(Settings { kms_key_id: key, hardened, log_delivery: hardened && log_delivery, lifecycle })
    }

    /// Deletes every object version and delete marker of the bucket (`force_destroy`), a page
    /// (up to 1,000) at a time.
    async fn empty(&self, ctx: &Ctx, bucket: &str) -> ProviderResult<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let s3 = &ctx.aws()?.s3;
        loop {
            let page = s3
                .list_object_versions()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| call_failed("ListObjectVersions", e))?;
            let mut ids = Vec::new();
            for v in page.versions() {
                ids.push((v.key().unwrap_or_default().to_string(), v.version_id().map(str::to_string)));
            }
            for m in page.delete_markers() {
                ids.push((m.key().unwrap_or_default().to_string(), m.version_id().map(str::to_string)));
            }
            if ids.is_empty() {
                return Ok(());
            }
            let objects: Result<Vec<ObjectIdentifier>, _> =
                ids.into_iter().map(|(k, v)| ObjectIdentifier::builder().key(k).set_version_id(v).build()).collect();
            let delete = Delete::builder()
                .set_objects(Some(objects.map_err(|e| ProviderError(e.to_string()))?))
                .quiet(true)
                .build()
                .map_err(|e| ProviderError(e.to_string()))?;
            let out = s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| call_failed("DeleteObjects", e))?;
            if let Some(e) = out.errors().first() {
                return Err(ProviderError(format!(
                    "bucket {bucket}: object {} could not be deleted: {}",
                    e.key().unwrap_or_default(),
                    e.message().unwrap_or_default()
                )));
            }
        }
    }

    /// The bucket's tags, or `None` when there is no such bucket of ours.
    async fn tags(&self, ctx: &Ctx, bucket: &str) -> ProviderResult<Option<Vec<(String, String)>>> {
        let s3 = &ctx.aws()?.s3;
        match s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 404 | 403)) => return Ok(None),
            Err(e) => return Err(call_failed("HeadBucket", e)),
        }
        match s3.get_bucket_tagging().bucket(bucket).send().await {
            Ok(t) => Ok(Some(t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())),
            Err(e) if error_code(&e) == Some("NoSuchTagSet") => Ok(Some(vec![])),
            Err(e) => Err(call_failed("GetBucketTagging", e)),
        }
    }

    async fn configure(&self, ctx: &Ctx, urn: &Urn, i: &BucketInputs) -> ProviderResult<()> {
        let s3 = &ctx.aws()?.s3;
        s3.put_public_access_block()
            .bucket(&i.bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .block_public_policy(true)
                    .ignore_public_acls(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| call_failed("PutPublicAccessBlock", e))?;
        let by_default = match &i.kms_key_id {
            Some(key) => ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(key),
            None => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
        };
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(by_default.build().map_err(|e| ProviderError(e.to_string()))?)
            // One data key per bucket rather than per object: KMS calls (and their cost) drop by
            // orders of magnitude.
            .set_bucket_key_enabled(i.kms_key_id.is_some().then_some(true))
            .build();
        s3.put_bucket_encryption()
            .bucket(&i.bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(|e| ProviderError(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| call_failed("PutBucketEncryption", e))?;
        if i.hardened {
            let owner = OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                .build()
                .map_err(|e| ProviderError(e.to_string()))?;
            s3.put_bucket_ownership_controls()
                .bucket(&i.bucket)
                .ownership_controls(
                    OwnershipControls::builder().rules(owner).build().map_err(|e| ProviderError(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| call_failed("PutBucketOwnershipControls", e))?;
            let region = ctx.aws()?.region();
            s3.put_bucket_policy()
                .bucket(&i.bucket)
                .policy(bucket_policy(&i.bucket, i.log_delivery.then_some(region.as_str())).to_string())
                .send()
                .await
                .map_err(|e| call_failed("PutBucketPolicy", e))?;
        }
        if i.lifecycle.is_empty() {
            match s3.delete_bucket_lifecycle().bucket(&i.bucket).send().await {
                Ok(_) => {}
                Err(e) if error_code(&e) == Some("NoSuchLifecycleConfiguration") => {}
                Err(e) => return Err(call_failed("DeleteBucketLifecycle", e)),
            }
        } else {
            let rules: Result<Vec<_>, _> = i.lifecycle.iter().map(lifecycle_rule).collect();
            s3.put_bucket_lifecycle_configuration()
                .bucket(&i.bucket)
                .lifecycle_configuration(
                    BucketLifecycleConfiguration::builder()
                        .set_rules(Some(rules?))
                        .build()
                        .map_err(|e| ProviderError(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| call_failed("PutBucketLifecycleConfiguration", e))?;
        }
        s3.put_bucket_versioning()
            .bucket(&i.bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(if i.versioning {
                        BucketVersioningStatus::Enabled
                    } else {
                        BucketVersioningStatus::Suspended
                    })
                    .build(),
            )
            .send()
            .await
            .map_err(|e| call_failed("PutBucketVersioning", e))?;
        s3.put_bucket_tagging()
            .bucket(&i.bucket)
            .tagging(tagging(ctx, urn, &i.tags)?)
            .send()
            .await
            .map_err(|e| call_failed("PutBucketTagging", e))?;
        Ok(())
    }

    fn outputs(bucket: &str) -> BucketOutputs {
        BucketOutputs { bucket: bucket.to_string(), arn: format!("arn:aws:s3:::{bucket}") }
    }
}

#[async_trait]
impl TypedProvider for BucketProvider {
    resource_type!(BUCKET, BucketInputs => BucketOutputs, replace_on &["bucket"], import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &BucketInputs) -> ProviderResult<BucketOutputs> {
        let aws = ctx.aws()?;
        let region = aws.region();
        // Tagged in the create call itself, so a bucket of this name is provably ours or not.
        let mut config = CreateBucketConfiguration::builder().set_tags(Some(tagging(ctx, urn, &i.tags)?.tag_set));
        if region != "us-east-1" && !region.is_empty() {
            config = config.location_constraint(BucketLocationConstraint::from(region.as_str()));
        }
        match aws.s3.create_bucket().bucket(&i.bucket).create_bucket_configuration(config.build()).send().await {
            Ok(_) => {}
            // Ours only if it carries this resource's tag (an earlier attempt whose answer was lost).
            Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => {
                let tags: Tags = self.tags(ctx, &i.bucket).await?.unwrap_or_default().into_iter().collect();
                super::require_ours(ctx, urn, &format!("S3 bucket {}", i.bucket), &tags)?;
            }
            Err(e) if error_code(&e) == Some("BucketAlreadyExists") => {
                return Err(ProviderError(format!(
                    "bucket name {} is taken by another AWS account: bucket names are global; choose another",
                    i.bucket
                )));
            }
            Err(e) => return Err(call_failed("CreateBucket", e)),
        }
        self.configure(ctx, urn, i).await?;
        Ok(Self::outputs(&i.bucket))
    }

    async fn update(&self, ctx: &Ctx, urn: &Urn, change: Update<'_, Self>) -> ProviderResult<BucketOutputs> {
        let Update { outputs: out, new, .. } = change;
        self.configure(ctx, urn, new).await?;
        Ok(out.clone())
    }

    /// Deletes the bucket; one that holds objects is kept (the delete fails and says so) unless
    /// its program set `force_destroy`, which empties it first.
    async fn delete(&self, ctx: &Ctx, _: &Urn, i: &BucketInputs, out: &BucketOutputs) -> ProviderResult<()> {
        if i.force_destroy {
            match self.tags(ctx, &out.bucket).await? {
                Some(_) => self.empty(ctx, &out.bucket).await?,
                None => return Ok(()),
            }
        }
        match ctx.aws()?.s3.delete_bucket().bucket(&out.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("NoSuchBucket") => Ok(()),
            Err(e) if error_code(&e) == Some("BucketNotEmpty") => Err(ProviderError(format!(
                "bucket {} still holds objects (state, backups?), so it is kept\n    fix: move or delete its objects (every version) first, or set `force_destroy(true)` on the bucket in the program and deploy, then destroy again",
                out.bucket
            ))),
            Err(e) => Err(call_failed("DeleteBucket", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, BucketOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let Some(tags) = self.tags(ctx, &o.bucket).await? else { return Ok(None) };
            let versioning = versioning_enabled(ctx.aws()?.s3.get_bucket_versioning().bucket(&o.bucket).send().await)?;
            let Settings { kms_key_id, hardened, log_delivery, lifecycle } = self.settings(ctx, &o.bucket).await?;
            let inputs = BucketInputs {
                bucket: o.bucket.clone(),
                versioning,
                kms_key_id,
                hardened,
                lifecycle,
                force_destroy: false,
                log_delivery,
                tags: super::user_tags_of(tags),
            };
            Ok(Some((inputs, o.clone())))
        })
        .await
    }

    /// By bucket name.
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        self.read_one(ctx, urn, Self::outputs(id)).await
    }

    /// The bucket of the program's name, if it exists (a name is global).
    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &BucketInputs) -> ProviderResult<Vec<String>> {
        Ok(self.tags(ctx, &i.bucket).await?.map(|_| i.bucket.clone()).into_iter().collect())
    }

    /// Bucket names are global, and no call lists another account's: one `HeadBucket` per bucket
    /// (403: another account holds it), and the tags of those this account holds.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> crate::engine::provider::NamesTaken {
        let s3 = &ctx.aws()?.s3;
        let mut out = Vec::with_capacity(items.len());
        for (urn, inputs) in items {
            let Some(bucket) = crate::engine::provider::known_text(inputs, "bucket") else {
                out.push(None);
                continue;
            };
            let taken = match s3.head_bucket().bucket(bucket).send().await {
                Ok(_) => {
                    let tags: Tags = self.tags(ctx, bucket).await?.unwrap_or_default().into_iter().collect();
                    super::taken_unless_ours(ctx, urn, "bucket", bucket, &tags)
                }
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => None,
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Some(Taken {
                    field: "bucket".into(),
                    name: bucket.to_string(),
                    holder: "another AWS account holds it (bucket names are global)".into(),
                    fix: "choose another bucket name (a prefix of your own, such as the account id or domain)".into(),
                }),
                Err(e) => return Err(call_failed("HeadBucket", e)),
            };
            out.push(taken);
        }
        Ok(Some(out))
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &BucketInputs) -> ProviderResult<Option<BucketOutputs>> {
        let tags = self.tags(ctx, &i.bucket).await?;
        Ok(tags.filter(|t| t.iter().any(|(k, v)| k == TAG_URN && v == urn.as_str())).map(|_| Self::outputs(&i.bucket)))
    }
}
