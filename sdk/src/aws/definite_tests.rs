//! Request-level tests (the scripted client, `scripted.rs`) of what a failed create proves: each
//! class of refusal AWS sends is definite — nothing was made, so the journal settles the step —
//! while a lost answer or a 5xx on the way stays ambiguous, even when a later attempt is refused.
//! The answers are RDS's query-protocol bytes, through the real provider and the SDK interceptor
//! that notes each write for the step's witness.

use super::RetryPolicy;
use super::rds::SubnetGroupInputs;
use super::scripted::{Script, Step, lost, query_error, xml};
use crate::engine::provider::witnessed;
use crate::model::Urn;
use std::sync::Arc;

fn urn() -> Urn {
    Urn::new("demo", super::rds::SUBNET_GROUP, "db")
}

fn inputs() -> serde_json::Value {
    serde_json::to_value(SubnetGroupInputs::<Vec<String>> {
        name: "demo-db".into(),
        description: "demo db".into(),
        subnet_ids: vec!["subnet-1".into(), "subnet-2".into()],
        tags: Default::default(),
    })
    .unwrap()
}

fn absent() -> Step {
    query_error("RDS.DescribeDBSubnetGroups", 404, "DBSubnetGroupNotFoundFault", "DBSubnetGroup demo-db not found.")
}

fn group(op: &'static str, root: &str) -> Step {
    xml(
        op,
        200,
        &format!(
            "<{root}Response><{root}Result><DBSubnetGroup><DBSubnetGroupName>demo-db</DBSubnetGroupName><DBSubnetGroupArn>arn:aws:rds:us-east-2:111122223333:subgrp:demo-db</DBSubnetGroupArn></DBSubnetGroup></{root}Result></{root}Response>"
        ),
    )
}

fn described() -> Step {
    xml(
        "RDS.DescribeDBSubnetGroups",
        200,
        "<DescribeDBSubnetGroupsResponse><DescribeDBSubnetGroupsResult><DBSubnetGroups><DBSubnetGroup><DBSubnetGroupName>demo-db</DBSubnetGroupName><DBSubnetGroupArn>arn:aws:rds:us-east-2:111122223333:subgrp:demo-db</DBSubnetGroupArn></DBSubnetGroup></DBSubnetGroups></DescribeDBSubnetGroupsResult></DescribeDBSubnetGroupsResponse>",
    )
}

/// Runs the provider's create over `script`: its error (if any), and whether it may have changed
/// the cloud.
async fn create(steps: Vec<Step>) -> (Result<serde_json::Value, String>, bool) {
    let script = Script::new(steps);
    let ctx = crate::providers::context("demo", Some(Arc::new(script.aws(RetryPolicy::Emulator))));
    let provider = super::rds::subnet_group_provider();
    let (result, may_have_changed) = witnessed(provider.create(&ctx, &urn(), &inputs())).await;
    script.assert_done();
    (result.map_err(|e| e.0), may_have_changed)
}

#[tokio::test(start_paused = true)]
async fn every_refusal_class_is_definite() {
    let create_refused = |status, code: &'static str, message: &'static str| {
        query_error("RDS.CreateDBSubnetGroup", status, code, message)
    };
    let cases: Vec<(&str, Vec<Step>)> = vec![
        ("validation", vec![absent(), create_refused(400, "InvalidParameterValue", "bad description")]),
        (
            "access denied",
            vec![absent(), create_refused(403, "AccessDenied", "not authorized to rds:CreateDBSubnetGroup")],
        ),
        ("quota", vec![absent(), create_refused(400, "DBSubnetGroupQuotaExceeded", "too many groups")]),
        ("bad subnet", vec![absent(), create_refused(400, "InvalidSubnet", "subnet-2 is not in the VPC")]),
        (
            "throttled, then refused",
            vec![
                absent(),
                create_refused(400, "Throttling", "Rate exceeded"),
                create_refused(400, "InvalidSubnet", "no"),
            ],
        ),
    ];
    for (class, steps) in cases {
        let (result, may_have_changed) = create(steps).await;
        assert!(result.is_err(), "{class}: {result:?}");
        assert!(!may_have_changed, "{class}: a refusal proves nothing was made ({result:?})");
    }
}

#[tokio::test(start_paused = true)]
async fn a_name_someone_else_holds_is_refused_before_any_write() {
    let foreign = xml(
        "RDS.ListTagsForResource",
        200,
        "<ListTagsForResourceResponse><ListTagsForResourceResult><TagList><Tag><Key>team</Key><Value>data</Value></Tag></TagList></ListTagsForResourceResult></ListTagsForResourceResponse>",
    );
    let (result, may_have_changed) = create(vec![described(), foreign]).await;
    let err = result.unwrap_err();
    assert!(err.contains("DB subnet group demo-db already exists and is not this stack's"), "{err}");
    assert!(!may_have_changed, "only reads were sent");
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_or_a_5xx_stays_ambiguous_even_when_a_retry_is_refused() {
    let refused = query_error("RDS.CreateDBSubnetGroup", 400, "InvalidParameterValue", "no");
    let (result, may_have_changed) =
        create(vec![absent(), lost("RDS.CreateDBSubnetGroup"), absent(), refused.clone()]).await;
    assert!(result.is_err());
    assert!(may_have_changed, "the first attempt may have made it: {result:?}");

    let server_error = query_error("RDS.CreateDBSubnetGroup", 500, "InternalFailure", "try again");
    let (result, may_have_changed) = create(vec![absent(), server_error, absent(), refused]).await;
    assert!(result.is_err());
    assert!(may_have_changed, "a 5xx proves nothing: {result:?}");

    let (result, may_have_changed) =
        create(vec![absent(), group("RDS.CreateDBSubnetGroup", "CreateDBSubnetGroup")]).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(may_have_changed, "a create that succeeded changed the cloud");
}
