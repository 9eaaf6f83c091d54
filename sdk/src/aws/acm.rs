//! AWS Certificate Manager: a certificate validated through DNS records in a Route 53 zone.
//!
//! Two resources: `aws:acm:Certificate` requests it (with an idempotency token, so a retried
//! request never makes a second one) and exposes the validation records ACM asks for;
//! `aws:acm:CertificateValidation` writes those records into the zone (UPSERT) and waits for the
//! certificate to be ISSUED, with a timeout. Dependents take the ARN from the validation, so
//! nothing uses the certificate before it is issued.

/// What a stack program needs of ACM in scope (part of [`crate::prelude`]): nothing by default;
/// its builders are named by path (`fabric::aws::…`).
pub mod prelude {}

use super::route53::{Created, RecordInputs, ZoneRef, create_owned, delete_owned};
use super::wait::{Poll, poll_until};
use super::{TAG_URN, call_failed, error_code};
use crate::aws::AwsCtx;
use crate::aws::found;
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, read_each, typed,
};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub use crate::aws::Tags;

pub const CERTIFICATE: &str = "aws:acm:Certificate";
pub const VALIDATION: &str = "aws:acm:CertificateValidation";

/// A DNS-validated public certificate.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::acm::Certificate;
/// use fabric::aws::route53::HostedZone;
/// let mut s = Stack::new("demo");
/// let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
/// let cert = Certificate::builder().name("edge").domain("acme.example").alt_names(vec!["*.acme.example".into()])
///     .zone(&zone).build().add(&mut s).unwrap();
/// s.export("certificate", cert.arn());
/// assert_eq!(s.finish().unwrap().nodes().len(), 3);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Certificate<'a> {
    #[builder(setter(into))]
    name: String,
    /// The main domain (`acme.com`, `*.acme.com`).
    #[builder(setter(into))]
    domain: String,
    #[builder(default)]
    alt_names: Vec<String>,
    /// The zone the validation records go into; every name must be inside it.
    zone: &'a ZoneRef,
    /// How long to wait for ACM to issue it.
    #[builder(default = Duration::from_secs(45 * 60))]
    validation_timeout: Duration,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateInputs {
    pub domain: String,
    pub alt_names: Vec<String>,
    pub tags: Tags,
}

/// One CNAME ACM asks for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValidationRecord {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateOutputs {
    pub arn: String,
    pub validation_records: Vec<ValidationRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationInputs<R = String, L = Vec<ValidationRecord>> {
    pub certificate_arn: R,
    pub zone_id: R,
    pub records: L,
    pub timeout_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationOutputs {
    pub certificate_arn: String,
    pub zone_id: String,
    pub records: Vec<ValidationRecord>,
    pub status: String,
    pub timeout_secs: u64,
    /// The names of the validation records this stack created (and so deletes). A record that was
    /// already in the zone with the same value (ACM gives every certificate of a domain in an
    /// account the same one) is shared: used, never deleted. `None` in state written before
    /// ownership was recorded: every record is taken as this stack's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_records: Option<Vec<String>>,
}

/// A declared certificate.
#[derive(Clone, Debug)]
pub struct CertificateRef {
    validation: Urn,
}

impl CertificateRef {
    /// The ARN, known once the certificate is issued.
    pub fn arn(&self) -> Output<String> {
        Output::reference(self.validation.clone(), "certificate_arn")
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    let n = crate::aws::route53::fqdn(name.trim_start_matches("*."));
    n == zone || n.ends_with(&format!(".{zone}"))
}

impl Certificate<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<CertificateRef> {
        let mut c = Checker::new(s.urn(CERTIFICATE, &self.name));
        let mut names = vec![self.domain.clone()];
        names.extend(self.alt_names.iter().cloned());
        for n in &names {
            let bare = n.trim_start_matches("*.");
            let ok = !bare.is_empty()
                && bare.len() <= 253
                && bare.contains('.')
                && bare.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                });
            c.require(
                ok,
                "domain",
                format!("`{n}` is not a domain name a certificate can name"),
                "use names such as `acme.com` or `*.acme.com`",
            );
            c.require(
                in_zone(n, self.zone.domain()),
                "zone",
                format!("`{n}` is not inside zone {}, so it cannot be validated there", self.zone.domain()),
                "give the zone that holds every name, or certify only names in it",
            );
        }
        c.require(
            names.len() <= 10,
            "alt_names",
            format!("{} names; ACM allows 10 by default", names.len()),
            "split them over several certificates",
        );
        c.require(
            self.validation_timeout >= Duration::from_secs(60),
            "validation_timeout",
            "less than a minute to validate",
            "give ACM at least a few minutes",
        );
        crate::aws::check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let mut alt_names = self.alt_names.clone();
        alt_names.sort();
        alt_names.dedup();
        let cert = s.declare(
            certificate_provider(),
            &self.name,
            CertificateInputs { domain: self.domain.to_ascii_lowercase(), alt_names, tags: self.tags.clone() },
            vec![],
        );
        let validation = ValidationInputs {
            certificate_arn: Output::<String>::reference(cert.clone(), "arn"),
            zone_id: self.zone.id(),
            records: Output::<Vec<ValidationRecord>>::reference(cert, "validation_records"),
            timeout_secs: self.validation_timeout.as_secs(),
        };
        Ok(CertificateRef { validation: s.declare(validation_provider(), &self.name, validation, vec![]) })
    }
}

pub fn certificate_provider() -> Arc<dyn Provider> {
    typed(CertificateProvider)
}

pub struct CertificateProvider;

fn idempotency_token(urn: &Urn, inputs: &CertificateInputs) -> String {
    let h = crate::model::stable_hash(&format!("{urn}/{}/{}", inputs.domain, inputs.alt_names.join(",")));
    format!("fabric{h:016x}")
}

impl CertificateProvider {
    async fn describe(&self, ctx: &Ctx, arn: &str) -> ProviderResult<Option<aws_sdk_acm::types::CertificateDetail>> {
        Ok(found(
            "DescribeCertificate",
            |c| c == Some("ResourceNotFoundException"),
            ctx.aws()?.acm.describe_certificate().certificate_arn(arn).send().await,
        )?
        .and_then(|o| o.certificate().cloned()))
    }

    /// ACM fills in the validation records shortly after the request.
    async fn records(&self, ctx: &Ctx, arn: &str) -> ProviderResult<Vec<ValidationRecord>> {
        let check = || async move {
            let detail =
                self.describe(ctx, arn).await?.ok_or_else(|| ProviderError(format!("certificate {arn} vanished")))?;
            let options = detail.domain_validation_options();
            if options.is_empty() || !options.iter().all(|o| o.resource_record().is_some()) {
                return Ok(Poll::Waiting("without records".into()));
            }
            let mut records: Vec<ValidationRecord> = options
                .iter()
                .filter_map(|o| o.resource_record())
                .map(|r| ValidationRecord { name: crate::aws::route53::fqdn(r.name()), value: r.value().to_string() })
                .collect();
            // A name and its wildcard share one record.
            records.sort();
            records.dedup();
            Ok(Poll::Ready(records))
        };
        poll_until(Duration::from_secs(300), Duration::from_secs(5), check, |_| {
            format!("ACM gave no DNS validation records for {arn} within 5 minutes")
        })
        .await
    }
}

#[async_trait]
impl TypedProvider for CertificateProvider {
    resource_type!(CERTIFICATE, CertificateInputs => CertificateOutputs,
        replace_on &["domain", "alt_names"], import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &CertificateInputs) -> ProviderResult<CertificateOutputs> {
        let tags: Vec<Tag> = crate::aws::with_fabric_tags(ctx, urn, &inputs.tags)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| ProviderError(e.to_string())))
            .collect::<ProviderResult<_>>()?;
        // The idempotency token makes the request safe to retry (the SDK's standard retry).
        let out = ctx
            .aws()?
            .acm
            .request_certificate()
            .domain_name(&inputs.domain)
            .set_subject_alternative_names((!inputs.alt_names.is_empty()).then(|| inputs.alt_names.clone()))
            .validation_method(ValidationMethod::Dns)
            .idempotency_token(idempotency_token(urn, inputs))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| call_failed("RequestCertificate", e))?;
        let arn = out.certificate_arn().unwrap_or_default().to_string();
        let validation_records = self.records(ctx, &arn).await?;
        Ok(CertificateOutputs { arn, validation_records })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<CertificateOutputs> {
        let Update { old, outputs: out, new } = change;
        let acm = &ctx.aws()?.acm;
        let arn = out.arn.as_str();
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().map_err(|e| ProviderError(e.to_string()));
        let remove = |keys: Vec<String>| async move {
            let tags = keys.iter().map(|k| tag(k, &old.tags[k])).collect::<ProviderResult<Vec<_>>>()?;
            let call = acm.remove_tags_from_certificate().certificate_arn(arn).set_tags(Some(tags));
            call.send().await.map(drop).map_err(|e| call_failed("RemoveTagsFromCertificate", e))
        };
        let set = |pairs: Vec<(String, String)>| async move {
            let tags = pairs.iter().map(|(k, v)| tag(k, v)).collect::<ProviderResult<Vec<_>>>()?;
            let call = acm.add_tags_to_certificate().certificate_arn(arn).set_tags(Some(tags));
            call.send().await.map(drop).map_err(|e| call_failed("AddTagsToCertificate", e))
        };
        crate::aws::TagChanges::sync(&old.tags, &new.tags, remove, set).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &CertificateInputs, out: &CertificateOutputs) -> ProviderResult<()> {
        // A certificate still attached to a listener being replaced is released shortly.
        let acm = &ctx.aws()?.acm;
        let check = || async {
            match acm.delete_certificate().certificate_arn(&out.arn).send().await {
                Ok(_) => Ok(Poll::Ready(())),
                Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(Poll::Ready(())),
                Err(e) if error_code(&e) == Some("ResourceInUseException") => Ok(Poll::Waiting("in use".into())),
                Err(e) => Err(call_failed("DeleteCertificate", e)),
            }
        };
        poll_until(Duration::from_secs(300), Duration::from_secs(10), check, |_| {
            format!("certificate {}: still in use after 5 minutes (a listener holds it)", out.arn)
        })
        .await
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, CertificateOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let Some(d) = self.describe(ctx, &o.arn).await? else { return Ok(None) };
            let tags = ctx
                .aws()?
                .acm
                .list_tags_for_certificate()
                .certificate_arn(&o.arn)
                .send()
                .await
                .map_err(|e| call_failed("ListTagsForCertificate", e))?;
            let domain = d.domain_name().unwrap_or_default().to_string();
            let mut alt_names: Vec<String> =
                d.subject_alternative_names().iter().filter(|n| **n != domain).cloned().collect();
            alt_names.sort();
            Ok(Some((
                CertificateInputs {
                    domain,
                    alt_names,
                    tags: crate::aws::user_tags_of(
                        tags.tags().iter().map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string())),
                    ),
                },
                o.clone(),
            )))
        })
        .await
    }

    /// By certificate ARN.
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        let probe = CertificateOutputs { arn: id.to_string(), validation_records: Vec::new() };
        let Some((inputs, _)) = self.read_one(ctx, urn, probe).await? else {
            return Ok(None);
        };
        let validation_records = self.records(ctx, id).await?;
        Ok(Some((inputs, CertificateOutputs { arn: id.to_string(), validation_records })))
    }

    /// Certificates of the program's domain.
    async fn discover(&self, ctx: &Ctx, _: &Urn, inputs: &CertificateInputs) -> ProviderResult<Vec<String>> {
        let mut found = Vec::new();
        let mut pages = ctx.aws()?.acm.list_certificates().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("ListCertificates", e))?;
            found.extend(
                page.certificate_summary_list()
                    .iter()
                    .filter(|s| s.domain_name() == Some(inputs.domain.as_str()))
                    .filter_map(|s| s.certificate_arn().map(String::from)),
            );
        }
        Ok(found)
    }

    async fn find(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &CertificateInputs,
    ) -> ProviderResult<Option<CertificateOutputs>> {
        let acm = &ctx.aws()?.acm;
        let mut pages = acm.list_certificates().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("ListCertificates", e))?;
            for summary in page.certificate_summary_list() {
                if summary.domain_name() != Some(inputs.domain.as_str()) {
                    continue;
                }
                let Some(arn) = summary.certificate_arn() else { continue };
                let tags = acm
                    .list_tags_for_certificate()
                    .certificate_arn(arn)
                    .send()
                    .await
                    .map_err(|e| call_failed("ListTagsForCertificate", e))?;
                if tags.tags().iter().any(|t| t.key() == TAG_URN && t.value() == Some(urn.as_str())) {
                    let validation_records = self.records(ctx, arn).await?;
                    return Ok(Some(CertificateOutputs { arn: arn.to_string(), validation_records }));
                }
            }
        }
        Ok(None)
    }
}

pub fn validation_provider() -> Arc<dyn Provider> {
    typed(ValidationProvider)
}

pub struct ValidationProvider;

fn record_inputs(zone_id: &str, r: &ValidationRecord) -> RecordInputs {
    RecordInputs {
        zone_id: zone_id.to_string(),
        name: r.name.clone(),
        record_type: "CNAME".into(),
        ttl: Some(300),
        values: vec![r.value.clone()],
        alias: None,
    }
}

impl ValidationProvider {
    async fn validate(&self, ctx: &Ctx, urn: &Urn, i: &ValidationInputs) -> ProviderResult<ValidationOutputs> {
        let mut owned = Vec::new();
        for r in &i.records {
            if create_owned(ctx, urn, &record_inputs(&i.zone_id, r), true).await? == Created::Owned {
                owned.push(r.name.clone());
            }
        }
        let arn = &i.certificate_arn;
        let check = || async move {
            let detail = CertificateProvider
                .describe(ctx, arn)
                .await?
                .ok_or_else(|| ProviderError(format!("certificate {arn} vanished")))?;
            match detail.status() {
                Some(CertificateStatus::Issued) => Ok(Poll::Ready(())),
                Some(
                    s
                    @ (CertificateStatus::Failed | CertificateStatus::ValidationTimedOut | CertificateStatus::Revoked),
                ) => Err(ProviderError(format!("certificate {arn} is {s:?}: {:?}", detail.failure_reason()))),
                other => Ok(Poll::Waiting(format!("{other:?}"))),
            }
        };
        poll_until(Duration::from_secs(i.timeout_secs), Duration::from_secs(5), check, |_| {
            format!(
                "certificate {arn} was not ISSUED within {} s; its validation records are in the zone — check that the zone is the one the domain delegates to",
                i.timeout_secs
            )
        })
        .await?;
        Ok(ValidationOutputs {
            certificate_arn: i.certificate_arn.clone(),
            zone_id: i.zone_id.clone(),
            records: i.records.clone(),
            status: "ISSUED".into(),
            timeout_secs: i.timeout_secs,
            owned_records: Some(owned),
        })
    }
}

#[async_trait]
impl TypedProvider for ValidationProvider {
    resource_type!(VALIDATION, ValidationInputs => ValidationOutputs,
        replace_on &["certificate_arn", "zone_id"],
        import Import::Never("a wait for the certificate's validation: nothing in the cloud to adopt"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &ValidationInputs) -> ProviderResult<ValidationOutputs> {
        self.validate(ctx, urn, inputs).await
    }

    async fn update(&self, ctx: &Ctx, urn: &Urn, change: Update<'_, Self>) -> ProviderResult<ValidationOutputs> {
        let new = change.new;
        self.validate(ctx, urn, new).await
    }

    /// Deletes the validation records this stack created; shared ones stay.
    async fn delete(&self, ctx: &Ctx, urn: &Urn, _: &ValidationInputs, out: &ValidationOutputs) -> ProviderResult<()> {
        for r in &out.records {
            if out.owned_records.as_ref().is_some_and(|owned| !owned.contains(&r.name)) {
                continue;
            }
            delete_owned(ctx, urn, &out.zone_id, &r.name, "CNAME").await?;
        }
        Ok(())
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ValidationOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let present = CertificateProvider.describe(ctx, &o.certificate_arn).await?.is_some();
            Ok(present.then(|| {
                (
                    ValidationInputs {
                        certificate_arn: o.certificate_arn.clone(),
                        zone_id: o.zone_id.clone(),
                        records: o.records.clone(),
                        timeout_secs: o.timeout_secs,
                    },
                    o.clone(),
                )
            }))
        })
        .await
    }

    async fn find(&self, _: &Ctx, _: &Urn, _: &ValidationInputs) -> ProviderResult<Option<ValidationOutputs>> {
        // Validating again is harmless (UPSERT, then a status check): let the step run again.
        Ok(None)
    }
}

/// Every ACM provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![certificate_provider(), validation_provider()]
}
