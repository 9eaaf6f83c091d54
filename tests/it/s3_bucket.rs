//! `Bucket` against the emulator: private (four public access blocks, ACLs off), SSE-KMS with a
//! bucket key, a policy denying requests without TLS, versioning, lifecycle rules; no-op; drift
//! (the policy removed by hand) seen by refresh and put back; lifecycle changed in place; a new
//! name replaces the bucket (made before the old one goes); a
//! destroy of a bucket that holds objects refused until `force_destroy` is set in code, then
//! emptied (every version) and deleted.
//!
//! A name someone else holds: `s3_backend::a_bucket_that_is_not_ours_is_never_taken_over`.

use fabric::aws::s3::{Bucket, LifecycleRule};
use fabric::engine::{Outcome, StepOp};
use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

const NAME: &str = "fabric-test-uploads";

fn graph(rules: Vec<LifecycleRule>, force_destroy: bool) -> Arc<fabric::model::Graph> {
    graph_named(NAME, rules, force_destroy)
}

fn graph_named(name: &str, rules: Vec<LifecycleRule>, force_destroy: bool) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("files");
    let key = fabric::aws::kms::KmsKey::builder().name("uploads").description("uploads").build().add(&mut s).unwrap();
    let bucket = Bucket::builder()
        .name("uploads")
        .bucket(name)
        .kms_key(&key)
        .lifecycle(rules)
        .force_destroy(force_destroy)
        .build()
        .add(&mut s)
        .unwrap();
    s.export("bucket", bucket.name());
    Arc::new(s.finish().unwrap())
}

fn rules() -> Vec<LifecycleRule> {
    vec![
        LifecycleRule::new("tmp", "tmp/").expire(7),
        LifecycleRule::new("archive", "").transition(30, "STANDARD_IA").expire_noncurrent(90).abort_multipart(2),
    ]
}

fn bucket_step(plan: &fabric::engine::Plan) -> StepOp {
    plan.steps.iter().find(|s| s.type_name == "aws:s3:Bucket").unwrap().op
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_lifecycle() {
    let fx = Fixture::start().await;
    let engine = fx.engine("files").await;
    let (_, report) = fx.deploy(&engine, graph(rules(), false)).await;
    assert!(report.ok(), "{report:?}");
    let s3 = &fx.aws.s3;

    let block = s3.get_public_access_block().bucket(NAME).send().await.unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let owner = s3.get_bucket_ownership_controls().bucket(NAME).send().await.unwrap();
    assert_eq!(owner.ownership_controls().unwrap().rules()[0].object_ownership().as_str(), "BucketOwnerEnforced");
    let sse = s3.get_bucket_encryption().bucket(NAME).send().await.unwrap();
    let rule = &sse.server_side_encryption_configuration().unwrap().rules()[0];
    let by_default = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(by_default.sse_algorithm().as_str(), "aws:kms");
    let state = engine.store.load().await.unwrap();
    let key_arn = state.resources.values().find(|r| r.type_name == "aws:kms:Key").unwrap().outputs["arn"].clone();
    assert_eq!(by_default.kms_master_key_id(), key_arn.as_str());
    let policy: serde_json::Value =
        serde_json::from_str(s3.get_bucket_policy().bucket(NAME).send().await.unwrap().policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Effect"], "Deny");
    assert_eq!(policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"], "false");
    let lifecycle = s3.get_bucket_lifecycle_configuration().bucket(NAME).send().await.unwrap();
    assert_eq!(lifecycle.rules().len(), 2);
    let archive = lifecycle.rules().iter().find(|r| r.id() == Some("archive")).unwrap();
    assert_eq!(archive.transitions()[0].days(), Some(30));
    assert_eq!(archive.abort_incomplete_multipart_upload().unwrap().days_after_initiation(), Some(2));

    // Re-deploy: all same, no call; refresh sees no drift.
    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(rules(), false)).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // The TLS-only policy removed by hand: refresh sees it, and a deploy puts it back.
    s3.delete_bucket_policy().bucket(NAME).send().await.unwrap();
    let drift = engine.refresh(&mut st, None, true).await.unwrap();
    assert!(drift.render().contains("hardened"), "{}", drift.render());
    let (_, report) = fx.deploy(&engine, graph(rules(), false)).await;
    assert!(report.ok(), "{report:?}");
    assert!(s3.get_bucket_policy().bucket(NAME).send().await.is_ok());

    // A lifecycle change is in place.
    let fewer = vec![LifecycleRule::new("tmp", "tmp/").expire(3)];
    let plan = fx.preview(&engine, &graph(fewer.clone(), false)).await;
    assert_eq!(bucket_step(&plan), StepOp::Update);
    let (_, report) = fx.deploy(&engine, graph(fewer.clone(), false)).await;
    assert!(report.ok(), "{report:?}");
    let lifecycle = s3.get_bucket_lifecycle_configuration().bucket(NAME).send().await.unwrap();
    assert_eq!((lifecycle.rules().len(), lifecycle.rules()[0].expiration().unwrap().days()), (1, Some(3)));

    // A new bucket name is a new bucket: made before the old (empty) one goes.
    const RENAMED: &str = "fabric-test-uploads-2";
    let plan = fx.preview(&engine, &graph_named(RENAMED, fewer.clone(), false)).await;
    assert_eq!(bucket_step(&plan), StepOp::Replace);
    let (_, report) = fx.deploy(&engine, graph_named(RENAMED, fewer.clone(), false)).await;
    assert!(report.ok(), "{report:?}");
    assert!(s3.head_bucket().bucket(NAME).send().await.is_err(), "the old bucket is gone");
    assert!(s3.head_bucket().bucket(RENAMED).send().await.is_ok());
    let (_, report) = fx.deploy(&engine, graph(fewer.clone(), false)).await;
    assert!(report.ok(), "{report:?}");

    // The emulator speaks plain HTTP, and the bucket's policy denies object requests without TLS
    // as AWS would: the policy is proven, and taken off by hand to put objects in.
    let denied = s3.put_object().bucket(NAME).key("tmp/a.txt").body(b"v0".to_vec().into()).send().await.unwrap_err();
    assert_eq!(denied.raw_response().map(|r| r.status().as_u16()), Some(403), "{denied:?}");
    s3.delete_bucket_policy().bucket(NAME).send().await.unwrap();
    // A bucket that holds objects (two versions of one) is kept by destroy, which says how to go on.
    for body in ["v1", "v2"] {
        s3.put_object().bucket(NAME).key("tmp/a.txt").body(body.as_bytes().to_vec().into()).send().await.unwrap();
    }
    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let Outcome::Failed(m) = &failed[0].outcome else { unreachable!() };
    assert!(m.contains(&format!("bucket {NAME} still holds objects")) && m.contains("force_destroy(true)"), "{m}");
    assert!(s3.head_bucket().bucket(NAME).send().await.is_ok(), "the bucket is kept");

    // `force_destroy` set in code (a deploy records it), then destroy empties it and deletes it.
    let (_, report) = fx.deploy(&engine, graph(fewer.clone(), true)).await;
    assert!(report.ok(), "{report:?}");
    // (The deploy put the TLS-only policy back; over the emulator's plain HTTP it would deny the
    // deletes of the objects, as AWS would. Over TLS it does not: it is taken off again here.)
    s3.delete_bucket_policy().bucket(NAME).send().await.unwrap();
    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(s3.head_bucket().bucket(NAME).send().await.is_err(), "the bucket is gone");
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}

#[test]
fn bad_buckets_are_refused_before_any_call() {
    let mut s = Stack::new("files");
    Bucket::builder().name("shouty").bucket("Uploads_Bucket").build().add(&mut s).unwrap();
    Bucket::builder()
        .name("late")
        .bucket("late-bucket")
        .lifecycle(vec![
            LifecycleRule::new("old", "").transition(90, "GLACIER").expire(30),
            LifecycleRule::new("soon", "").transition(7, "STANDARD_IA"),
            LifecycleRule::new("idle", "logs/"),
            LifecycleRule::new("odd", "").transition(1, "TAPE"),
        ])
        .build()
        .add(&mut s)
        .unwrap();
    let unversioned =
        Bucket::builder().name("scratch").bucket("scratch-bucket").versioning(false).build().add(&mut s).unwrap();
    BackupPlan::builder()
        .name("scratch")
        .daily_at("05:00")
        .keep_days(7)
        .protect(&unversioned)
        .build()
        .add(&mut s)
        .unwrap();
    // Pod Identity is EKS's: a grant to a workload of another cluster is refused by name.
    let kind = fabric::k8s::ClusterRef::kubeconfig("kind");
    let api = WebService::builder()
        .name("api")
        .cluster(&kind)
        .image("acme/api:1.0.0")
        .port(8080)
        .health(Health::http("/healthz"))
        .build()
        .add(&mut s)
        .unwrap();
    unversioned.grant(&mut s, &api, fabric::aws::s3::Access::Read).unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:s3:Bucket \"scratch\" field `grant`: workload `api` runs in cluster `kind`, which is not an EKS cluster of this stack",
        "aws:backup:Plan \"scratch\" field `protect`: bucket `scratch` is not versioned, and AWS Backup backs up only versioned buckets",
        "aws:s3:Bucket \"shouty\" field `bucket`: `Uploads_Bucket` is not a valid bucket name",
        "aws:s3:Bucket \"late\" field `lifecycle[0]`: rule `old` moves objects to GLACIER after 90 days but expires them after 30",
        "aws:s3:Bucket \"late\" field `lifecycle[1]`: S3 moves objects to STANDARD_IA after 30 days at the earliest",
        "aws:s3:Bucket \"late\" field `lifecycle[2]`: rule `idle` does nothing",
        "aws:s3:Bucket \"late\" field `lifecycle[3]`: `TAPE` is not a storage class",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}
