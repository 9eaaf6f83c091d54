//! The reference fabric through its command line: two fabrics side by side (`develop`, which owns
//! the team state bucket, and `alice`), each with its own state and resources; a second preview is
//! all `same`; destroying one leaves the other untouched; destroying both leaves nothing.

use fabric_tests::Fixture;
use std::process::Output;

fn reference(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli(env!("CARGO_BIN_EXE_reference-stack"), fx, state, "reference", args)
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabrics_side_by_side() {
    let fx = Fixture::start().await;
    let develop = tempfile::tempdir().unwrap();
    let alice = tempfile::tempdir().unwrap();

    ok(reference(&fx, develop.path(), &["deploy", "--local", "--yes"]));
    ok(reference(&fx, alice.path(), &["deploy", "--local", "--yes", "--env", "alice"]));

    // Each fabric has its VPC, zone and cluster; only develop has the bucket.
    assert!(!fx.tagged("reference-develop").await.is_empty());
    assert!(!fx.tagged("reference-alice").await.is_empty());
    let zones = fx.aws.route53.list_hosted_zones().send().await.unwrap();
    let mut names: Vec<&str> = zones.hosted_zones().iter().map(|z| z.name()).collect();
    names.sort();
    assert_eq!(names, ["alice.example.com.", "develop.example.com."]);
    let mut clusters = fx.aws.eks.list_clusters().send().await.unwrap().clusters().to_vec();
    clusters.sort();
    assert_eq!(clusters, ["reference-alice-main", "reference-develop-main"]);
    let versioning = fx.aws.s3.get_bucket_versioning().bucket("example-com-state").send().await;
    assert_eq!(fabric::aws::s3::versioning_enabled(versioning), Ok(true));
    let block = fx.aws.s3.get_public_access_block().bucket("example-com-state").send().await.unwrap();
    assert_eq!(block.public_access_block_configuration().and_then(|c| c.block_public_acls()), Some(true));

    for (dir, env) in [(develop.path(), "develop"), (alice.path(), "alice")] {
        // Refresh reads every resource back (the bucket's versioning, tags …): no drift.
        let out = ok(reference(&fx, dir, &["refresh", "--local", "--env", env]));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("no drift"), "{env}: {err}");
        let out = ok(reference(&fx, dir, &["preview", "--local", "--json", "--env", env]));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ops: Vec<&str> = doc["steps"].as_array().unwrap().iter().map(|s| s["op"].as_str().unwrap()).collect();
        assert!(!ops.is_empty() && ops.iter().all(|op| *op == "same"), "{env}: {doc}");
    }

    ok(reference(&fx, alice.path(), &["destroy", "--local", "--yes", "--env", "alice"]));
    assert_eq!(fx.tagged("reference-alice").await, vec![]);
    assert!(!fx.tagged("reference-develop").await.is_empty(), "develop is untouched");

    ok(reference(&fx, develop.path(), &["destroy", "--local", "--yes"]));
    assert_eq!(fx.tagged("reference-develop").await, vec![]);
    assert!(fx.aws.eks.list_clusters().send().await.unwrap().clusters().is_empty());
    assert!(fx.aws.s3.list_buckets().send().await.unwrap().buckets().is_empty());
    assert!(fx.aws.route53.list_hosted_zones().send().await.unwrap().hosted_zones().is_empty());
}
