//! What the local emulator cannot show of ElastiCache, request by request in the query protocol's
//! wire format: a change of replica count (the emulator has no IncreaseReplicaCount or
//! DecreaseReplicaCount), and an engine change ElastiCache cannot make, refused before any request.

use super::ReplicationGroupInputs;
use crate::aws::RetryPolicy;
use crate::aws::scripted::{Script, xml};
use crate::engine::provider::Ctx;
use crate::model::{Secret, Urn};
use serde_json::{Value, json};
use std::sync::Arc;

const ID: &str = "demo-sessions-1a2b3c";

fn ctx(script: &Script) -> Ctx {
    crate::providers::context("demo", Some(Arc::new(script.aws(RetryPolicy::RealAccount))))
}

fn urn() -> Urn {
    Urn::new("demo", super::REPLICATION_GROUP, "sessions")
}

fn inputs(engine: &str, version: &str, replicas: i32) -> Value {
    serde_json::to_value(ReplicationGroupInputs::<String> {
        id: ID.into(),
        description: "valkey sessions of stack demo".into(),
        engine: engine.into(),
        engine_version: Some(version.into()),
        node_type: "cache.t4g.small".into(),
        replicas,
        automatic_failover: true,
        multi_az: true,
        subnet_group_name: Some(ID.into()),
        security_group_ids: Some(vec!["sg-0123".into()]),
        port: 6379,
        at_rest_encryption: true,
        kms_key_id: None,
        transit_encryption: true,
        maintenance_window: Some("sun:05:00-sun:06:00".into()),
        snapshot_window: "03:00-04:00".into(),
        snapshot_retention_days: 7,
        auth_token: Some(Secret::new("t".repeat(32))),
        skip_final_snapshot: Some(true),
        tags: Default::default(),
    })
    .unwrap()
}

fn outputs() -> Value {
    json!({"id": ID, "arn": format!("arn:aws:elasticache:us-east-2:111122223333:replicationgroup:{ID}"),
        "primary_address": "master.x.use2.cache.amazonaws.com", "reader_address": "replica.x.use2.cache.amazonaws.com",
        "port": 6379})
}

/// A replication group as ElastiCache describes it, inside `<tag>` (the operation's result).
fn group(status: &str, members: usize) -> String {
    let members: String = (1..=members).map(|n| format!("<ClusterId>{ID}-00{n}</ClusterId>")).collect();
    format!(
        "<ReplicationGroup><ReplicationGroupId>{ID}</ReplicationGroupId><Status>{status}</Status>\
         <MemberClusters>{members}</MemberClusters><NodeGroups><NodeGroup><NodeGroupId>0001</NodeGroupId>\
         <PrimaryEndpoint><Address>master.x.use2.cache.amazonaws.com</Address><Port>6379</Port></PrimaryEndpoint>\
         <ReaderEndpoint><Address>replica.x.use2.cache.amazonaws.com</Address><Port>6379</Port></ReaderEndpoint>\
         </NodeGroup></NodeGroups><ARN>arn:aws:elasticache:us-east-2:111122223333:replicationgroup:{ID}</ARN>\
         </ReplicationGroup>"
    )
}

fn answer(op: &str, result: &str) -> String {
    format!(
        "<{op}Response xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><{op}Result>{result}</{op}Result>\
         <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{op}Response>"
    )
}

fn described(status: &str, members: usize) -> String {
    answer("DescribeReplicationGroups", &format!("<ReplicationGroups>{}</ReplicationGroups>", group(status, members)))
}

#[tokio::test(start_paused = true)]
async fn more_replicas_are_added_in_place_and_waited_for() {
    let script = Script::new([
        xml("ElastiCache.IncreaseReplicaCount", 200, &answer("IncreaseReplicaCount", &group("modifying", 3))),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("modifying", 4)),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("available", 4)),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("available", 4)),
    ]);
    let out = super::replication_group_provider()
        .update(&ctx(&script), &urn(), &inputs("valkey", "8.0", 2), &outputs(), &inputs("valkey", "8.0", 3))
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out, outputs());
    let sent = script.sent();
    assert!(sent[0].body.contains("Action=IncreaseReplicaCount"), "{}", sent[0].body);
    assert!(
        sent[0].body.contains("NewReplicaCount=3") && sent[0].body.contains("ApplyImmediately=true"),
        "{}",
        sent[0].body
    );
    assert!(
        !script.ops().iter().any(|o| o.ends_with("ModifyReplicationGroup")),
        "nothing else changed: {:?}",
        script.ops()
    );
}

#[tokio::test(start_paused = true)]
async fn fewer_replicas_are_removed_after_the_other_changes() {
    let script = Script::new([
        xml("ElastiCache.ModifyReplicationGroup", 200, &answer("ModifyReplicationGroup", &group("modifying", 3))),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("available", 3)),
        xml("ElastiCache.DecreaseReplicaCount", 200, &answer("DecreaseReplicaCount", &group("modifying", 3))),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("available", 2)),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("available", 2)),
    ]);
    let mut new = inputs("valkey", "8.0", 1);
    new["node_type"] = json!("cache.r7g.large");
    super::replication_group_provider()
        .update(&ctx(&script), &urn(), &inputs("valkey", "8.0", 2), &outputs(), &new)
        .await
        .unwrap();
    script.assert_done();
    let sent = script.sent();
    assert!(sent[0].body.contains("CacheNodeType=cache.r7g.large"), "{}", sent[0].body);
    assert!(sent[2].body.contains("NewReplicaCount=1"), "{}", sent[2].body);
}

#[tokio::test(start_paused = true)]
async fn an_engine_change_elasticache_cannot_make_is_refused_before_any_request() {
    for (old, new, why) in [
        (("valkey", "8.0"), ("redis", "7.1"), "cannot move a Valkey group back to Redis OSS"),
        (("valkey", "8.1"), ("valkey", "8.0"), "cannot downgrade valkey 8.1 to 8.0"),
    ] {
        let script = Script::new([]);
        let err = super::replication_group_provider()
            .update(&ctx(&script), &urn(), &inputs(old.0, old.1, 2), &outputs(), &inputs(new.0, new.1, 2))
            .await
            .unwrap_err();
        assert!(err.0.contains(why) && err.0.contains("keep `engine` and `engine_version` as deployed"), "{err}");
        assert!(script.sent().is_empty(), "{:?}", script.ops());
        script.assert_done();
    }
    // Redis OSS to Valkey is ElastiCache's in-place upgrade: one ModifyReplicationGroup.
    let script = Script::new([
        xml("ElastiCache.ModifyReplicationGroup", 200, &answer("ModifyReplicationGroup", &group("modifying", 3))),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("available", 3)),
        xml("ElastiCache.DescribeReplicationGroups", 200, &described("available", 3)),
    ]);
    super::replication_group_provider()
        .update(&ctx(&script), &urn(), &inputs("redis", "7.1", 2), &outputs(), &inputs("valkey", "8.0", 2))
        .await
        .unwrap();
    script.assert_done();
    let body = &script.sent()[0].body;
    assert!(body.contains("Engine=valkey") && body.contains("EngineVersion=8.0"), "{body}");
}
