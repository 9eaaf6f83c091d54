//! Policy and cost through the command line, against the emulator: a mandatory violation (of a
//! rule of the stack's own) stops preview and deploy before any call; a waiver that holds lets the
//! deploy through and is recorded in its history; an expired one fails like the rule; a stale one
//! warns; bad waivers and assumptions are refused before any call. `policy` and `cost` make none.

use crate::cli::program_command;
use fabric_tests::Fixture;
use std::process::Output;

fn run(variant: &str, endpoint: &str, state: &std::path::Path, api_log: &std::path::Path, args: &[&str]) -> Output {
    program_command("example-policy", endpoint, state)
        .env("FABRIC_TEST_POLICY", variant)
        .env("FABRIC_API_LOG", api_log)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The AWS calls a run made (its `FABRIC_API_LOG`), none when it wrote no log.
fn calls(log: &std::path::Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mandatory_violation_stops_the_deploy_until_waived_and_the_waiver_is_history() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("api.log"));
    let endpoint = fx.emulator.endpoint();

    // The stack's own rule is broken: preview shows the plan and the finding, and stops.
    for verb in ["preview", "deploy"] {
        let out = run("rule", &endpoint, &state, &log, &[verb, "--yes"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("mandatory ACME-TAG-1: aws:ec2:Vpc \"main\" field `tags`: the VPC has no `cost-center` tag"),
            "{err}"
        );
        assert!(err.contains("error: 1 mandatory policy violation not waived; nothing was changed"), "{err}");
        assert!(!calls(&log).contains("Create"), "no write: {}", calls(&log));
    }
    assert!(fx.tagged("example").await.is_empty(), "nothing was created");

    // Its waiver ran out: the same.
    let out = run("expired", &endpoint, &state, &log, &["deploy", "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("mandatory (waiver expired) ACME-TAG-1"), "{err}");
    assert!(err.contains("the waiver ran out on 2020-01-01: tagged by the account's tag policy"), "{err}");

    // A waiver that holds: the deploy goes through, and its history names both waivers.
    let out = run("waived", &endpoint, &state, &log, &["deploy", "--yes"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Policy: 35 rules; 0 mandatory, 1 advisory, 2 waived"), "{err}");
    assert!(
        err.contains("waived ACME-TAG-1")
            && err.contains("reason: tagged by the account's tag policy (until 2999-01-01)"),
        "{err}"
    );
    let out = run("waived", &endpoint, &state, &log, &["history"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains(
            "waived: ACME-TAG-1 on `main` and its parts: tagged by the account's tag policy, until 2999-01-01"
        ),
        "{shown}"
    );
    assert!(shown.contains("waived: FAB-NET-1 on `lb-https-from-internet` and its parts"), "{shown}");

    // A waiver of a rule nothing breaks is stale: a warning, never a stop.
    let out = run("stale", &endpoint, &state, &log, &["preview", "--json"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stale waiver FAB-S3-2: `main` and its parts does not break the rule"), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["policy"]["stale"][0]["rule"], "FAB-S3-2", "{doc}");
    assert_eq!(doc["cost"]["delta"], serde_json::json!({"low": 0.0, "high": 0.0}), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_waivers_and_assumptions_are_refused_before_any_call() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("api.log"));
    let endpoint = fx.emulator.endpoint();
    let cases = [
        (
            "unknown-rule",
            "waives rule `FAB-NET-9`, and no rule has that id",
            "name one of FAB-NET-1, FAB-NET-2, FAB-NET-3",
        ),
        ("no-reason", "the waiver of rule `FAB-NET-2` gives no reason", "say why the rule does not apply here"),
        ("bad-date", "runs out on `1 March 2027`, which is not a date", "write the day as YYYY-MM-DD"),
        ("bad-assumption", "`nat_gbs` is not a usage assumption of the cost estimate", "name one of nat_gb_per_month"),
    ];
    for (variant, problem, fix) in cases {
        for verb in ["preview", "deploy", "policy"] {
            let out = run(variant, &endpoint, &state, &log, &[verb, "--yes"]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{variant} {verb}: {err}");
            assert!(err.contains(problem) && err.contains(fix), "{variant} {verb}: {err}");
            assert_eq!(calls(&log), "", "{variant} {verb}: no call");
        }
    }
    assert!(fx.tagged("example").await.is_empty());
}

#[test]
fn policy_and_cost_need_no_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let (state, log) = (dir.path().join("state"), dir.path().join("api.log"));
    // An endpoint nothing listens on: neither verb may reach for it.
    let nowhere = "http://127.0.0.1:9";
    let out = run("rule", nowhere, &state, &log, &["policy"]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "a mandatory violation: {}", text(&out.stderr));
    assert!(shown.contains("ACME-TAG-1   mandatory every VPC carries a cost-center tag"), "{shown}");
    assert!(
        shown.contains("FAB-EKS-2    mandatory EKS Secrets are envelope-encrypted with a KMS key [checkov CKV_AWS_58]"),
        "{shown}"
    );
    assert!(shown.contains("FAB-NET-1 on `lb-https-from-internet` and its parts: the group of a load balancer declared outside this stack"), "{shown}");
    let out = run("", nowhere, &state, &log, &["cost", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["region"], "us-east-2", "the run's region: {doc}");
    assert_eq!((doc["low"].as_f64(), doc["lines"].as_array().map(Vec::len)), (Some(0.0), Some(0)), "{doc}");
    assert_eq!(calls(&log), "");
}
