//! The way back, against the emulator: `deploy --atomic` returning to the last successful
//! revision when an AWS step fails definitely (refused by the fault-injecting proxy), and
//! `rollback --to N` after two successful deploys; the settings are read back from the
//! emulator, not only from state.

use fabric_tests::Fixture;
use fabric_tests::faults::FaultProxy;

use crate::cli::{program_at as run, summary, text};

/// What the emulator holds of the example, as the test compares it: each security group of the
/// stack by name with its `team` tag, the stack's ingress rules as `group:port`, and the `team`
/// tag of every other resource of the stack.
async fn cloud(fx: &Fixture) -> (Vec<(String, String)>, Vec<String>, String) {
    let ec2 = &fx.aws.ec2;
    let team = |tags: &[aws_sdk_ec2::types::Tag]| {
        tags.iter().find(|t| t.key() == Some("team")).and_then(|t| t.value()).unwrap_or_default().to_string()
    };
    // `example-app-7c8225` → `app`.
    let short = |name: Option<&str>| {
        let name = name.unwrap_or_default().trim_start_matches("example-");
        name.rsplit_once('-').map_or(name, |(n, _)| n).to_string()
    };
    let stack = aws_sdk_ec2::types::Filter::builder().name("tag:fabric:stack").values("example").build();
    let groups = ec2.describe_security_groups().filters(stack.clone()).send().await.unwrap();
    let mut named: Vec<(String, String)> =
        groups.security_groups().iter().map(|g| (short(g.group_name()), team(g.tags()))).collect();
    named.sort();
    let ids: Vec<String> = groups.security_groups().iter().filter_map(|g| g.group_id().map(String::from)).collect();
    let rules = ec2.describe_security_group_rules().send().await.unwrap();
    let mut ports: Vec<String> = rules
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false) && ids.iter().any(|id| Some(id.as_str()) == r.group_id()))
        .map(|r| {
            let group = short(
                groups.security_groups().iter().find(|g| g.group_id() == r.group_id()).and_then(|g| g.group_name()),
            );
            format!("{group}:{}", r.from_port().unwrap_or(-1))
        })
        .collect();
    ports.sort();
    // Every other resource's `team` tag, by kind: the VPC, the subnets, the gateway, the table.
    let vpcs = ec2.describe_vpcs().filters(stack.clone()).send().await.unwrap();
    let mut tags: Vec<String> = vpcs.vpcs().iter().map(|v| format!("vpc:{}", team(v.tags()))).collect();
    let subnets = ec2.describe_subnets().filters(stack.clone()).send().await.unwrap();
    tags.extend(
        subnets.subnets().iter().map(|s| format!("subnet {}:{}", s.cidr_block().unwrap_or_default(), team(s.tags()))),
    );
    let gateways = ec2.describe_internet_gateways().filters(stack.clone()).send().await.unwrap();
    tags.extend(gateways.internet_gateways().iter().map(|g| format!("internet-gateway:{}", team(g.tags()))));
    let tables = ec2.describe_route_tables().filters(stack).send().await.unwrap();
    tags.extend(tables.route_tables().iter().map(|t| format!("route-table:{}", team(t.tags()))));
    tags.sort();
    (named, ports, tags.join(", "))
}

/// Nothing to do: the stack is what `program` declares.
fn unchanged(program: &str, endpoint: &str, state: &std::path::Path) {
    let out = run(program, endpoint, state, &["preview", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = summary(&out);
    let counts = ["create", "update", "replace", "delete"].map(|k| s[k].as_u64());
    assert_eq!(counts, [Some(0); 4], "{program} has nothing to do: {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomic_deploy_that_fails_returns_the_cloud_to_the_last_revision() {
    let fx = Fixture::start().await;
    let proxy = FaultProxy::start(fx.emulator.port, 0.0, 1);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let endpoint = proxy.endpoint();

    let out = run("example", &endpoint, state, &["deploy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = cloud(&fx).await;
    assert_eq!(before.1, ["app:8080", "lb:443"], "{before:?}");

    // The next version changes every resource's tags, replaces the app's rule (8080 → 9090) and
    // adds an SSH group and rule; the SSH rule is refused for good.
    let preview = run("example-next", &endpoint, state, &["preview", "--atomic"]);
    let err = text(&preview.stderr);
    assert!(err.contains("Atomic: if a step fails, everything this deploy changed goes back."), "{err}");
    proxy.refuse_next(&["Action=AuthorizeSecurityGroupIngress", "FromPort=22"]);
    let out = run("example-next", &endpoint, state, &["deploy", "--atomic", "--yes"]);
    let err = text(&out.stderr);
    assert!(proxy.refused(), "the SSH rule was asked for: {err}");
    assert_eq!(out.status.code(), Some(1), "the deploy failed: {err}");
    assert!(err.contains("InvalidParameterValue"), "{err}");
    assert!(err.contains("Rolling back to revision 1 (revision 2 failed)"), "{err}");
    assert!(err.contains("the old instance is kept"), "the app rule's old instance comes back: {err}");

    // The cloud is revision 1 again, resource by resource: tags, groups, rules.
    assert_eq!(cloud(&fx).await, before);
    unchanged("example", &endpoint, state);

    // History: the failed deploy, then the rollback.
    let out = run("example", &endpoint, state, &["history", "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["operation"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ops[0], ("rollback".to_string(), "succeeded".to_string()), "{history}");
    assert_eq!(ops[1].0, "deploy");
    assert!(ops[1].1.starts_with("failed"), "{history}");
    // `diff` works across them: the rollback undid what revision 2 meant to change.
    let out = run("example", &endpoint, state, &["diff", "1", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no differences"), "{}", text(&out.stdout));

    let out = run("example", &endpoint, state, &["destroy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fx.tagged("example").await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_a_revision_after_two_deploys_and_bad_revisions_refused() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let endpoint = fx.emulator.endpoint();

    let out = run("example", &endpoint, state, &["deploy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = cloud(&fx).await;
    let out = run("example-next", &endpoint, state, &["deploy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let next = cloud(&fx).await;
    assert_ne!(next, first);
    assert!(next.1.contains(&"ssh:22".to_string()) && !next.2.contains("platform"), "{next:?}");

    // Bad revisions: each refused with a clear error, before any change.
    for (to, says) in [("99", "no history entry 99"), ("0", "no history entry 0")] {
        let out = run("example", &endpoint, state, &["rollback", "--to", to, "--yes"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
    let out = run("example", &endpoint, state, &["refresh"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run("example", &endpoint, state, &["rollback", "--to", "3", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("history entry 3 is a `refresh`, not a deploy"), "{}", text(&out.stderr));
    assert_eq!(cloud(&fx).await, next, "nothing changed");

    // Back to revision 1: the cloud is what it was after the first deploy, and the first
    // program has nothing to do; the next program shows the way forward again.
    let out = run("example", &endpoint, state, &["rollback", "--to", "1", "--yes"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Revision 1 against the current state"), "{err}");
    assert_eq!(cloud(&fx).await, first);
    unchanged("example", &endpoint, state);
    let out = run("example-next", &endpoint, state, &["preview", "--json"]);
    let s = summary(&out);
    assert!(s["create"].as_u64().unwrap() >= 2 && s["update"].as_u64().unwrap() > 0, "{s}");

    let out = run("example", &endpoint, state, &["destroy", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fx.tagged("example").await, vec![]);
}

/// `kill -9` of an atomic deploy at several points of its rollback, then `rollback`: the same end
/// state as an uninterrupted rollback (the cloud of revision 1, read back), with no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_killed_at_any_point_is_finished_by_the_next_rollback() {
    let fx = Fixture::start().await;
    let proxy = FaultProxy::start(fx.emulator.port, 0.0, 1);
    let endpoint = proxy.endpoint();
    for k in [0usize, 2, 5] {
        fx.reset().await;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let out = run("example", &endpoint, state, &["deploy", "--yes"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let before = cloud(&fx).await;

        proxy.refuse_next(&["Action=AuthorizeSecurityGroupIngress", "FromPort=22"]);
        let mut child = crate::cli::program_command("example-next", &endpoint, state)
            .args(["deploy", "--atomic", "--yes", "--parallel", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Killed once the rollback has finished `k` steps (0: as soon as it is announced).
        let (mut rolling_back, mut done) = (false, 0);
        let lines = crate::crash::read_until(&mut child, |l| {
            if l.starts_with("Rolling back to revision") {
                rolling_back = true;
            } else if rolling_back
                && ["~ updated", "+ created", "- deleted"].iter().any(|p| l.trim_start().starts_with(p))
            {
                done += 1;
            }
            rolling_back && done >= k
        });
        crate::crash::kill9(&mut child);
        assert!(rolling_back, "the rollback started: {lines:?}");
        let out = run("example", &endpoint, state, &["history", "--json"]);
        let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_ne!(history[0]["operation"], "rollback", "killed after {k}: the rollback had not ended: {history}");

        let out = run("example", &endpoint, state, &["rollback", "--yes"]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "killed after {k} rollback steps, the next rollback finishes it: {err}");
        assert_eq!(cloud(&fx).await, before, "killed after {k}: the cloud of revision 1, no duplicates: {err}");
        unchanged("example", &endpoint, state);
    }
}
