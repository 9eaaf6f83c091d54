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

fn dns(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli(env!("CARGO_BIN_EXE_dns-stack"), fx, state, "dns", args)
}

/// The dns stack reads the develop fabric's zone id and name servers from its state (a stack
/// reference through the shared backend: the state directories side by side): it delegates the
/// zone from the team's root zone to exactly those name servers and writes a record into it.
/// Before the fabric exists, and for an output it lacks, the errors say what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stack_reads_the_fabric_through_a_stack_reference() {
    let fx = Fixture::start().await;
    let root = tempfile::tempdir().unwrap();
    let fabric_state = root.path().join("reference-develop");
    let dns_state = root.path().join("dns-develop");

    let out = dns(&fx, &dns_state, &["preview", "--local"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stack `reference-develop` has no state in this backend"), "{err}");
    assert!(err.contains("deploy stack `reference-develop` first"), "{err}");

    ok(reference(&fx, &fabric_state, &["deploy", "--local", "--yes"]));
    let out = ok(dns(&fx, &dns_state, &["deploy", "--local", "--yes"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("delegated = \"develop.example.com.\""), "{stdout}");

    let zones = fx.aws.route53.list_hosted_zones().send().await.unwrap();
    let zone_id = |name: &str| {
        let z = zones.hosted_zones().iter().find(|z| z.name() == name).unwrap();
        z.id().trim_start_matches("/hostedzone/").to_string()
    };
    let route53 = fx.aws.route53.clone();
    let records = |id: String| {
        let route53 = route53.clone();
        async move {
            route53.list_resource_record_sets().hosted_zone_id(id).send().await.unwrap().resource_record_sets().to_vec()
        }
    };
    let fabric_ns: Vec<String> = {
        let z = fx.aws.route53.get_hosted_zone().id(zone_id("develop.example.com.")).send().await.unwrap();
        z.delegation_set().unwrap().name_servers().iter().map(|n| format!("{}.", n.trim_end_matches('.'))).collect()
    };
    let delegation = records(zone_id("example.com.")).await;
    let ns = delegation.iter().find(|r| r.name() == "develop.example.com." && r.r#type().as_str() == "NS").unwrap();
    let mut values: Vec<String> = ns.resource_records().iter().map(|v| v.value().to_string()).collect();
    values.sort();
    let mut expected = fabric_ns.clone();
    expected.sort();
    assert_eq!(values, expected, "delegated to the fabric zone's own name servers");
    let in_fabric = records(zone_id("develop.example.com.")).await;
    assert!(
        in_fabric.iter().any(|r| r.name() == "_owner.develop.example.com." && r.r#type().as_str() == "TXT"),
        "{in_fabric:?}"
    );
    let out = ok(dns(&fx, &dns_state, &["preview", "--local", "--json"]));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["steps"].as_array().unwrap().iter().all(|s| s["op"] == "same"), "{doc}");

    ok(dns(&fx, &dns_state, &["destroy", "--local", "--yes"]));
    ok(reference(&fx, &fabric_state, &["destroy", "--local", "--yes"]));
}
