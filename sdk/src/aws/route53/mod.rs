//! Amazon Route 53: hosted zones (created, or an existing one looked up by domain) and records
//! (alias A/AAAA, CNAME, TXT, A, AAAA).
//!
//! Zones are found by their caller reference, which carries a hash of the URN and is set in the
//! create call itself. Records carry no tags: each record fabric creates gets an owner marker, a
//! TXT record `_fabric-<type>.<name>` naming the stack and the URN, written in the same
//! all-or-nothing change batch ([`owner_record_name`]). A record is created with CREATE, never
//! UPSERT, so a record that is already there and not marked as this resource's is never taken over.

/// What a stack program needs of Route 53 in scope (part of [`crate::prelude`]): nothing by default;
/// its builders are named by path (`fabric::aws::…`).
pub mod prelude {}

use super::wait::{Poll, poll_until};
use super::{TAG_STACK, TAG_URN, call_failed, error_code};
use crate::aws::AwsCtx;
use crate::aws::found;
use crate::engine::provider::{
    Ctx, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, typed,
};
use crate::model::{Checker, Output, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, HostedZoneConfig, ResourceRecord, ResourceRecordSet,
    RrType, Tag, TagResourceType, Vpc, VpcRegion,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use typed_builder::TypedBuilder;

pub const ZONE: &str = "aws:route53:HostedZone";
pub const ZONE_LOOKUP: &str = "aws:route53:ZoneLookup";
pub const RECORD: &str = "aws:route53:Record";

mod record;
mod zone;

pub use record::*;
pub use zone::*;

pub use crate::aws::Tags;

/// `example.com.`: lowercase, with the trailing dot Route 53 uses.
pub fn fqdn(name: &str) -> String {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    format!("{n}.")
}

/// Whether `name` is a DNS name (labels of letters, digits and hyphens; `_` and a leading `*`
/// allowed for records), at most 253 characters.
fn valid_dns_name(name: &str, record: bool) -> bool {
    let n = name.trim_end_matches('.');
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').enumerate().all(|(i, label)| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && (label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || (record && c == '_'))
                    || (record && i == 0 && label == "*"))
        })
}

fn zone_id_plain(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// The caller-reference prefix of the zone fabric creates for `urn`.
fn caller_prefix(urn: &Urn) -> String {
    format!("fabric-{:016x}-", crate::model::stable_hash(urn.as_str()))
}

/// Every Route 53 provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![zone_provider(), lookup_provider(), record_provider()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(fqdn("Acme.COM"), "acme.com.");
        assert_eq!(record_fqdn("www", "acme.com."), "www.acme.com.");
        assert_eq!(record_fqdn("", "acme.com."), "acme.com.");
        assert_eq!(record_fqdn("api.acme.com.", "acme.com."), "api.acme.com.");
        assert_eq!(normalize_name("\\052.acme.com."), "*.acme.com.");
        assert!(valid_dns_name("*.acme.com", true));
        assert!(valid_dns_name("_acme-challenge.acme.com", true));
        assert!(!valid_dns_name("_acme.com", false));
        assert!(!valid_dns_name("-bad.acme.com", true));
        assert!(!valid_dns_name("a..b", true));
    }
}
