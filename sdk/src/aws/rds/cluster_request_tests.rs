//! What the local emulator cannot show of Aurora, request by request in the query protocol's wire
//! format: its clusters are `available` at once and it takes any version change, so a major
//! upgrade (the flag AWS requires, the new family's parameter group, the wait through
//! `upgrading`), a downgrade refused before any request, and a delete that meets deletion
//! protection are tested here.

use super::cluster::{ClusterInputs, cluster_provider};
use crate::aws::RetryPolicy;
use crate::aws::scripted::{Script, query_error, xml};
use crate::engine::provider::Ctx;
use crate::model::{Secret, Urn};
use serde_json::{Value, json};
use std::sync::Arc;

const ID: &str = "demo-orders-1a2b3c";

fn ctx(script: &Script) -> Ctx {
    crate::providers::context("demo", Some(Arc::new(script.aws(RetryPolicy::RealAccount))))
}

fn urn() -> Urn {
    Urn::new("demo", super::cluster::CLUSTER, "orders")
}

fn inputs(version: &str, protected: bool) -> Value {
    let major = version.split('.').next().unwrap();
    serde_json::to_value(ClusterInputs::<String> {
        identifier: ID.into(),
        engine: "aurora-postgresql".into(),
        engine_version: version.into(),
        db_subnet_group_name: ID.into(),
        vpc_security_group_ids: vec!["sg-0123".into()],
        parameter_group_name: format!("{ID}-pg{major}"),
        database_name: "app".into(),
        master_username: "fabric_admin".into(),
        master_password: Some(Secret::new("p".repeat(32))),
        port: 5432,
        storage_encrypted: true,
        kms_key_id: None,
        backup_retention_days: 7,
        backup_window: "03:00-04:00".into(),
        maintenance_window: "sun:05:00-sun:06:00".into(),
        deletion_protection: protected,
        serverless_v2: None,
        log_exports: vec!["postgresql".into()],
        skip_final_snapshot: Some(true),
        apply_immediately: Some(true),
        restore: None,
        tags: Default::default(),
    })
    .unwrap()
}

fn outputs() -> Value {
    json!({"identifier": ID, "arn": format!("arn:aws:rds:us-east-2:111122223333:cluster:{ID}"),
        "address": format!("{ID}.cluster-x.us-east-2.rds.amazonaws.com"),
        "reader_address": format!("{ID}.cluster-ro-x.us-east-2.rds.amazonaws.com"), "port": 5432,
        "resource_id": "cluster-ABC"})
}

fn cluster(status: &str, version: &str) -> String {
    format!(
        "<DBCluster><DBClusterIdentifier>{ID}</DBClusterIdentifier><Status>{status}</Status>\
         <Engine>aurora-postgresql</Engine><EngineVersion>{version}</EngineVersion>\
         <Endpoint>{ID}.cluster-x.us-east-2.rds.amazonaws.com</Endpoint>\
         <ReaderEndpoint>{ID}.cluster-ro-x.us-east-2.rds.amazonaws.com</ReaderEndpoint><Port>5432</Port>\
         <DbClusterResourceId>cluster-ABC</DbClusterResourceId>\
         <DBClusterArn>arn:aws:rds:us-east-2:111122223333:cluster:{ID}</DBClusterArn></DBCluster>"
    )
}

fn answer(op: &str, result: &str) -> String {
    format!(
        "<{op}Response xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><{op}Result>{result}</{op}Result>\
         <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{op}Response>"
    )
}

fn described(status: &str, version: &str) -> String {
    answer("DescribeDBClusters", &format!("<DBClusters>{}</DBClusters>", cluster(status, version)))
}

#[tokio::test(start_paused = true)]
async fn a_major_upgrade_is_asked_for_by_name_with_its_parameter_group_and_waited_for() {
    let script = Script::new([
        xml("RDS.ModifyDBCluster", 200, &answer("ModifyDBCluster", &cluster("upgrading", "15.4"))),
        xml("RDS.DescribeDBClusters", 200, &described("upgrading", "15.4")),
        xml("RDS.DescribeDBClusters", 200, &described("available", "16.4")),
        xml("RDS.DescribeDBClusters", 200, &described("available", "16.4")),
    ]);
    let out = cluster_provider()
        .update(&ctx(&script), &urn(), &inputs("15.4", true), &outputs(), &inputs("16.4", true))
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out, outputs());
    let body = &script.sent()[0].body;
    assert!(body.contains("EngineVersion=16.4") && body.contains("AllowMajorVersionUpgrade=true"), "{body}");
    assert!(body.contains(&format!("DBClusterParameterGroupName={ID}-pg16")), "the new family's group: {body}");

    // A minor one does not ask for a major upgrade.
    let script = Script::new([
        xml("RDS.ModifyDBCluster", 200, &answer("ModifyDBCluster", &cluster("upgrading", "16.4"))),
        xml("RDS.DescribeDBClusters", 200, &described("available", "16.6")),
        xml("RDS.DescribeDBClusters", 200, &described("available", "16.6")),
    ]);
    cluster_provider()
        .update(&ctx(&script), &urn(), &inputs("16.4", true), &outputs(), &inputs("16.6", true))
        .await
        .unwrap();
    script.assert_done();
    let body = &script.sent()[0].body;
    assert!(body.contains("AllowMajorVersionUpgrade=false") && !body.contains("DBClusterParameterGroupName"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_downgrade_is_refused_before_any_request() {
    let script = Script::new([]);
    let err = cluster_provider()
        .update(&ctx(&script), &urn(), &inputs("16.4", true), &outputs(), &inputs("15.4", true))
        .await
        .unwrap_err();
    assert!(err.0.contains("cannot downgrade a cluster from 16.4 to 15.4"), "{err}");
    assert!(err.0.contains("restore a snapshot into a new cluster"), "{err}");
    assert!(script.sent().is_empty(), "{:?}", script.ops());
}

#[tokio::test(start_paused = true)]
async fn a_protected_cluster_is_not_deleted_while_the_program_protects_it() {
    let protected =
        || query_error("RDS.DeleteDBCluster", 400, "InvalidParameterCombination", "Cannot delete protected Cluster");
    let script = Script::new([protected()]);
    let err = cluster_provider().delete(&ctx(&script), &urn(), &inputs("16.4", true), &outputs()).await.unwrap_err();
    assert!(
        err.0.contains("has deletion protection: set `.deletion_protection(false)`, deploy, then delete it"),
        "{err}"
    );
    script.assert_done();

    // Protection left on in AWS by an old program: the program's word (off) lifts it, once.
    let gone = query_error("RDS.DescribeDBClusters", 404, "DBClusterNotFoundFault", "not found");
    let script = Script::new([
        protected(),
        xml("RDS.ModifyDBCluster", 200, &answer("ModifyDBCluster", &cluster("available", "16.4"))),
        xml("RDS.DeleteDBCluster", 200, &answer("DeleteDBCluster", &cluster("deleting", "16.4"))),
        xml("RDS.DescribeDBClusters", 200, &described("deleting", "16.4")),
        gone,
    ]);
    cluster_provider().delete(&ctx(&script), &urn(), &inputs("16.4", false), &outputs()).await.unwrap();
    script.assert_done();
    assert!(script.sent()[1].body.contains("DeletionProtection=false"), "{}", script.sent()[1].body);
}
