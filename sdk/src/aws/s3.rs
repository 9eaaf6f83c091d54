//! Amazon S3 buckets: private (public access blocked), encrypted at rest, versioned — what a
//! bucket for state or backups needs. A bucket that still holds objects is never deleted: the
//! delete fails and says so.

use super::{TAG_URN, Tags, call_failed, error_code};
use crate::aws::AwsCtx;
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, Provider, ProviderError, ProviderResult, Read, Reads, Taken, TypedProvider, Update, typed,
};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
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

/// A private, encrypted, versioned bucket.
///
/// ```
/// use fabric::aws::s3::Bucket;
/// let mut s = fabric::model::Stack::new("demo");
/// let b = Bucket::builder().name("state").bucket("example-com-state").build().add(&mut s).unwrap();
/// s.export("bucket", b.name());
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Bucket {
    /// The resource's name in the stack.
    #[builder(setter(into))]
    name: String,
    /// The bucket's global name.
    #[builder(setter(into))]
    bucket: String,
    #[builder(default = true)]
    versioning: bool,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketInputs {
    pub bucket: String,
    pub versioning: bool,
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
}

impl BucketRef {
    pub fn name(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "bucket")
    }
    pub fn arn(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "arn")
    }
}

impl Bucket {
    pub fn add(self, s: &mut Stack) -> crate::Result<BucketRef> {
        let mut c = Checker::new(s.urn(BUCKET, &self.name));
        c.require(
            valid_bucket_name(&self.bucket),
            "bucket",
            format!("`{}` is not a valid bucket name", self.bucket),
            "use 3 to 63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit",
        );
        s.report(c.into_errors());
        let inputs = BucketInputs { bucket: self.bucket, versioning: self.versioning, tags: self.tags };
        let urn = s.declare(bucket_provider(), &self.name, inputs, vec![]);
        Ok(BucketRef { urn })
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

impl BucketProvider {
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
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .map_err(|e| ProviderError(e.to_string()))?,
            )
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
    type Inputs = BucketInputs;
    type Outputs = BucketOutputs;
    const TYPE: &'static str = BUCKET;
    const REPLACE_ON: &'static [&'static str] = &["bucket"];

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

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &BucketInputs, out: &BucketOutputs) -> ProviderResult<()> {
        match ctx.aws()?.s3.delete_bucket().bucket(&out.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("NoSuchBucket") => Ok(()),
            Err(e) if error_code(&e) == Some("BucketNotEmpty") => Err(ProviderError(format!(
                "bucket {} still holds objects (state, backups?), so it is kept\n    fix: move or delete its objects (every version) first, then destroy again",
                out.bucket
            ))),
            Err(e) => Err(call_failed("DeleteBucket", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, BucketOutputs)]) -> Reads<Self> {
        let mut out = Vec::with_capacity(items.len());
        for (_, o) in items {
            let Some(tags) = self.tags(ctx, &o.bucket).await? else {
                out.push(None);
                continue;
            };
            let versioning = versioning_enabled(ctx.aws()?.s3.get_bucket_versioning().bucket(&o.bucket).send().await)?;
            let inputs = BucketInputs { bucket: o.bucket.clone(), versioning, tags: super::user_tags_of(tags) };
            out.push(Some((inputs, o.clone())));
        }
        Ok(out)
    }

    const IMPORT: Import = Import::ById;

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
