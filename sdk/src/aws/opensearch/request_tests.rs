//! What the local emulator cannot show of OpenSearch, request by request in the REST-JSON wire
//! format: an engine upgrade (the emulator has no UpgradeDomain), the wait through a domain that
//! is still processing a change (the emulator finishes every change at once), and a downgrade,
//! refused before any request.

use super::DomainInputs;
use crate::aws::RetryPolicy;
use crate::aws::scripted::{Script, json};
use crate::engine::provider::{Ctx, ProviderResult};
use crate::model::{Secret, Urn};
use serde_json::{Value, json as j};
use std::sync::Arc;

const NAME: &str = "demo-search-1a2b3c";
const ARN: &str = "arn:aws:es:us-east-2:111122223333:domain/demo-search-1a2b3c";

fn ctx(script: &Script) -> Ctx {
    crate::providers::context("demo", Some(Arc::new(script.aws(RetryPolicy::RealAccount))))
}

fn urn() -> Urn {
    Urn::new("demo", super::DOMAIN, "search")
}

fn inputs(version: &str, instance_type: &str) -> Value {
    serde_json::to_value(DomainInputs::<String> {
        name: NAME.into(),
        engine_version: version.into(),
        instance_type: instance_type.into(),
        instance_count: 3,
        zone_count: 3,
        dedicated_masters: None,
        volume_gb: 20,
        volume_type: "gp3".into(),
        subnet_ids: vec!["subnet-a".into(), "subnet-b".into(), "subnet-c".into()],
        security_group_ids: vec!["sg-0123".into()],
        at_rest_encryption: true,
        kms_key_id: None,
        node_to_node_encryption: true,
        enforce_https: true,
        tls_policy: "Policy-Min-TLS-1-2-PFS-2023-10".into(),
        master_user: "fabric-admin".into(),
        master_password: Some(Secret::new("p".repeat(36))),
        access_policy: super::DOMAIN_ONLY.into(),
        tags: Default::default(),
    })
    .unwrap()
}

/// The domain provider's update from `from` to `to` (engine version, instance type), against `script`.
async fn update(script: &Script, from: (&str, &str), to: (&str, &str)) -> ProviderResult<Value> {
    super::domain_provider()
        .update(&ctx(script), &urn(), &inputs(from.0, from.1), &outputs(), &inputs(to.0, to.1))
        .await
}

fn outputs() -> Value {
    j!({"name": NAME, "arn": ARN, "endpoint": "vpc-demo-search.us-east-2.es.amazonaws.com"})
}

/// `DescribeDomain`'s answer: the domain `processing` (or not) in `status`.
fn described(processing: bool, upgrading: bool, status: &str) -> Value {
    j!({"DomainStatus": {
        "DomainId": format!("111122223333/{NAME}"), "DomainName": NAME, "ARN": ARN,
        "Created": true, "Deleted": false, "Processing": processing, "UpgradeProcessing": upgrading,
        "DomainProcessingStatus": status,
        "Endpoints": {"vpc": "vpc-demo-search.us-east-2.es.amazonaws.com"},
        "ClusterConfig": {}, "EngineVersion": "OpenSearch_2.17"
    }})
}

#[tokio::test(start_paused = true)]
async fn an_engine_upgrade_goes_through_upgrade_domain_and_is_waited_for() {
    let script = Script::new([
        json(
            "OpenSearch.UpgradeDomain",
            200,
            j!({"DomainName": NAME, "TargetVersion": "OpenSearch_2.17", "UpgradeId": "u-1"}),
        ),
        json("OpenSearch.DescribeDomain", 200, described(false, true, "UpgradingEngineVersion")),
        json("OpenSearch.DescribeDomain", 200, described(false, false, "Active")),
        json("OpenSearch.DescribeDomain", 200, described(false, false, "Active")),
    ]);
    let out = update(&script, ("OpenSearch_2.15", "m7g.large.search"), ("OpenSearch_2.17", "m7g.large.search"))
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out, outputs());
    let sent = script.sent();
    assert!(sent[0].uri.contains("/upgradeDomain"), "{}", sent[0].uri);
    assert_eq!(serde_json::from_str::<Value>(&sent[0].body).unwrap()["TargetVersion"], "OpenSearch_2.17");
    assert!(
        !script.ops().iter().any(|o| o.ends_with("UpdateDomainConfig")),
        "nothing else changed: {:?}",
        script.ops()
    );
}

#[tokio::test(start_paused = true)]
async fn a_blue_green_change_is_waited_for_until_the_domain_is_active_again() {
    let script = Script::new([
        json("OpenSearch.UpdateDomainConfig", 200, j!({"DomainConfig": {}})),
        json("OpenSearch.DescribeDomain", 200, described(true, false, "Modifying")),
        json("OpenSearch.DescribeDomain", 200, described(true, false, "Modifying")),
        json("OpenSearch.DescribeDomain", 200, described(false, false, "Active")),
        json("OpenSearch.DescribeDomain", 200, described(false, false, "Active")),
    ]);
    update(&script, ("OpenSearch_2.17", "m7g.large.search"), ("OpenSearch_2.17", "r7g.large.search")).await.unwrap();
    script.assert_done();
    let body: Value = serde_json::from_str(&script.sent()[0].body).unwrap();
    assert_eq!(body["ClusterConfig"]["InstanceType"], "r7g.large.search");
    assert_eq!(body["ClusterConfig"]["ZoneAwarenessConfig"]["AvailabilityZoneCount"], 3);
    // Only what changed is sent: no storage, network, TLS, security or policy section.
    for untouched in ["EBSOptions", "VPCOptions", "DomainEndpointOptions", "AdvancedSecurityOptions", "AccessPolicies"]
    {
        assert!(body.get(untouched).is_none(), "{untouched} sent: {body}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_downgrade_is_refused_before_any_request() {
    let script = Script::new([]);
    let err = update(&script, ("OpenSearch_2.17", "m7g.large.search"), ("OpenSearch_2.15", "m7g.large.search"))
        .await
        .unwrap_err();
    assert!(
        err.0.contains("cannot downgrade domain demo-search-1a2b3c from OpenSearch_2.17 to OpenSearch_2.15"),
        "{err}"
    );
    assert!(script.sent().is_empty(), "{:?}", script.ops());
    script.assert_done();
}

#[tokio::test(start_paused = true)]
async fn a_domain_that_aws_isolates_fails_the_wait_at_once() {
    let script = Script::new([
        json("OpenSearch.UpdateDomainConfig", 200, j!({"DomainConfig": {}})),
        json("OpenSearch.DescribeDomain", 200, described(true, false, "Isolated")),
    ]);
    let err = update(&script, ("OpenSearch_2.17", "m7g.large.search"), ("OpenSearch_2.17", "r7g.large.search"))
        .await
        .unwrap_err();
    script.assert_done();
    assert!(err.0.contains("OpenSearch domain demo-search-1a2b3c is isolated by AWS"), "{err}");
}
