//! What FAB-NET-2, FAB-NET-3, FAB-ALB-2, FAB-ALB-3 and FAB-ALB-4 ask for, against the emulator: a
//! log bucket whose policy lets the regional load-balancer account and `delivery.logs` write
//! under `AWSLogs/`; a VPC whose default security group is closed, with flow logs into that
//! bucket; a load balancer that drops invalid header fields and writes access logs there. No-op;
//! the default group opened by hand is drift, closed again by the next deploy; reopened on
//! request; a flow log refused for good (through the fault proxy) fails its step alone, and the
//! destroy that follows removes everything.
//!
//! What the emulator cannot show (it deletes a protected load balancer; it answers refusals
//! inside successful answers only for missing buckets) is tested at the request level in
//! `sdk/src/aws/elbv2/request_tests.rs` and `sdk/src/aws/ec2/request_tests.rs`.

use fabric::aws::ec2::FlowLog;
use fabric::aws::route53::HostedZone;
use fabric::aws::s3::Bucket;
use fabric::engine::{Outcome, StepOp};
use fabric::prelude::*;
use fabric_tests::Fixture;
use fabric_tests::faults::FaultProxy;
use std::sync::Arc;

const BUCKET: &str = "logs-acme-example";

/// The bucket every log goes to (emptied by the destroy).
fn log_bucket(s: &mut Stack) -> fabric::aws::s3::BucketRef {
    Bucket::builder().name("logs").bucket(BUCKET).log_delivery(true).force_destroy(true).build().add(s).unwrap()
}

fn graph(close_default_group: bool) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("logs");
    let logs = log_bucket(&mut s);
    let net = Vpc::builder()
        .name("main")
        .cidr("10.0.0.0/16")
        .zones(2)
        .nat(Nat::None)
        .close_default_security_group(close_default_group)
        .flow_logs(&logs)
        .build()
        .add(&mut s)
        .unwrap();
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    AlbIngress::builder().name("edge").network(&net).zone(&zone).access_logs(&logs).build().add(&mut s).unwrap();
    Arc::new(s.finish().unwrap())
}

/// A VPC with flow logs into the log bucket, declared with the low-level builders.
fn flow_log_graph() -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("logs");
    let logs = log_bucket(&mut s);
    let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
    FlowLog::builder().name("main/flow-logs").vpc(&vpc).bucket(&logs).build().add(&mut s).unwrap();
    Arc::new(s.finish().unwrap())
}

async fn default_group(fx: &Fixture) -> aws_sdk_ec2::types::SecurityGroup {
    let f = |k: &str, v: &str| aws_sdk_ec2::types::Filter::builder().name(k).values(v).build();
    let vpcs = fx.aws.ec2.describe_vpcs().filters(f("tag:fabric:stack", "logs")).send().await.unwrap();
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let groups = fx.aws.ec2.describe_security_groups().filters(f("vpc-id", &vpc)).filters(f("group-name", "default"));
    groups.send().await.unwrap().security_groups()[0].clone()
}

async fn flow_logs(fx: &Fixture) -> Vec<aws_sdk_ec2::types::FlowLog> {
    fx.aws.ec2.describe_flow_logs().send().await.unwrap().flow_logs().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_a_closed_default_group() {
    let fx = Fixture::start().await;
    let engine = fx.engine("logs").await;
    let (_, report) = fx.deploy(&engine, graph(true)).await;
    assert!(report.ok(), "{report:?}");

    // The bucket's policy: TLS only, and AWS's log writers under AWSLogs/ (us-east-2's account).
    let policy = fx.aws.s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let sids: Vec<&str> = policy["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
    assert_eq!(sids, ["TlsOnly", "LoadBalancerLogs", "LogDeliveryWrite", "LogDeliveryAclCheck"]);
    assert_eq!(policy["Statement"][1]["Principal"]["AWS"], "arn:aws:iam::033677994240:root");
    assert_eq!(policy["Statement"][1]["Resource"], format!("arn:aws:s3:::{BUCKET}/*AWSLogs/*"));

    // The default group has no rule left.
    let group = default_group(&fx).await;
    assert!(group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty(), "{group:?}");

    // One flow log of the VPC, all traffic, into the bucket, tagged as this stack's.
    let logs = flow_logs(&fx).await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].resource_id(), group.vpc_id());
    assert_eq!(logs[0].log_destination(), Some(format!("arn:aws:s3:::{BUCKET}").as_str()));
    assert_eq!(logs[0].traffic_type().map(|t| t.as_str()), Some("ALL"));
    assert!(
        logs[0]
            .tags()
            .iter()
            .any(|t| t.key() == Some("fabric:urn") && t.value() == Some("logs::aws:ec2:FlowLog::main/flow-logs"))
    );

    // The load balancer drops invalid header fields and logs to the bucket; not protected (the
    // stack is not production).
    let elb = &fx.aws.elbv2;
    let lb = elb.describe_load_balancers().send().await.unwrap().load_balancers()[0].clone();
    let attrs = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let get =
        |k: &str| attrs.attributes().iter().find(|a| a.key() == Some(k)).and_then(|a| a.value()).map(str::to_string);
    assert_eq!(get("routing.http.drop_invalid_header_fields.enabled").as_deref(), Some("true"));
    assert_eq!(get("access_logs.s3.enabled").as_deref(), Some("true"));
    assert_eq!(get("access_logs.s3.bucket").as_deref(), Some(BUCKET));
    assert_eq!(get("access_logs.s3.prefix").as_deref(), Some("alb/logs-edge"));
    assert_eq!(get("deletion_protection.enabled").as_deref(), Some("false"));

    // Again: nothing to do, and what was read back is what was asked for.
    assert!(!fx.preview(&engine, &graph(true)).await.has_changes());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // Someone opens the default group: drift (refresh records it), and the next deploy closes it
    // again.
    let id = group.group_id().unwrap();
    let all_out = aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    fx.aws.ec2.authorize_security_group_egress().group_id(id).ip_permissions(all_out).send().await.unwrap();
    let drift = engine.refresh(&mut st, None, true).await.unwrap();
    assert!(drift.render().contains("close_default_security_group"), "{}", drift.render());
    let (plan, report) = fx.deploy(&engine, graph(true)).await;
    assert!(report.ok(), "{report:?}");
    assert!(plan.steps.iter().any(|s| s.type_name == "aws:ec2:Vpc" && s.op == StepOp::Update), "{plan:?}");
    assert!(default_group(&fx).await.ip_permissions_egress().is_empty());

    // Kept open on request: AWS's rules come back (egress to anywhere; members to each other).
    let (_, report) = fx.deploy(&engine, graph(false)).await;
    assert!(report.ok(), "{report:?}");
    let group = default_group(&fx).await;
    let egress = group.ip_permissions_egress();
    assert!(egress.iter().any(|p| p.ip_ranges().iter().any(|r| r.cidr_ip() == Some("0.0.0.0/0"))), "{group:?}");
    assert!(!group.ip_permissions().is_empty(), "{group:?}");
    assert!(!fx.preview(&engine, &graph(false)).await.has_changes());

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert!(flow_logs(&fx).await.is_empty());
    assert!(fx.aws.elbv2.describe_load_balancers().send().await.unwrap().load_balancers().is_empty());
    assert_eq!(fx.tagged("logs").await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_log_refused_fails_alone_and_the_destroy_after_it_removes_the_rest() {
    let fx = Fixture::start().await;
    let proxy = FaultProxy::start(fx.emulator.port, 0.0, 7);
    let engine = fx.engine_through("logs", &proxy.endpoint()).await;
    proxy.refuse_next(&["Action=CreateFlowLogs"]);
    let (_, report) = fx.deploy(&engine, flow_log_graph()).await;
    assert!(proxy.refused(), "CreateFlowLogs was asked for");
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    assert_eq!(failed[0].urn.type_name(), "aws:ec2:FlowLog");
    let Outcome::Failed(m) = &failed[0].outcome else { unreachable!() };
    assert!(m.contains("InvalidParameterValue"), "{m}");
    let (_, recovered) = engine.load_and_recover(None, true).await.unwrap();
    assert!(recovered.is_empty(), "a definite refusal leaves nothing pending: {recovered:?}");
    assert!(flow_logs(&fx).await.is_empty());

    // The destroy after the failed deploy removes the VPC and the bucket it made.
    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert_eq!(fx.tagged("logs").await, vec![]);
    assert!(fx.aws.s3.head_bucket().bucket(BUCKET).send().await.is_err(), "the bucket is gone");
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}

#[test]
fn log_destinations_must_take_logs_before_any_call() {
    let mut s = Stack::new("logs");
    let plain = Bucket::builder().name("plain").bucket("plain-acme-example").build().add(&mut s).unwrap();
    let net = Vpc::builder()
        .name("main")
        .cidr("10.0.0.0/16")
        .zones(2)
        .nat(Nat::None)
        .flow_logs(&plain)
        .build()
        .add(&mut s)
        .unwrap();
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    AlbIngress::builder().name("edge").network(&net).zone(&zone).access_logs(&plain).build().add(&mut s).unwrap();
    let vpc = Vpc::builder().name("other").cidr("10.1.0.0/16").build().add_alone(&mut s).unwrap();
    let logs = Bucket::builder().name("logs").bucket(BUCKET).log_delivery(true).build().add(&mut s).unwrap();
    FlowLog::builder().name("other/flow-logs").vpc(&vpc).bucket(&logs).prefix("x/AWSLogs").build().add(&mut s).unwrap();
    let key = fabric::aws::kms::KmsKey::builder().name("k").description("k").build().add(&mut s).unwrap();
    Bucket::builder()
        .name("sealed")
        .bucket("sealed-acme-example")
        .log_delivery(true)
        .kms_key(&key)
        .build()
        .add(&mut s)
        .unwrap();
    let Err(e) = s.finish() else { panic!("bad log destinations were accepted") };
    let err = e.to_string();
    for expected in [
        "aws:ec2:FlowLog \"main/flow-logs\" field `bucket`: bucket `plain` does not let AWS deliver VPC flow logs to it",
        "aws:elbv2:LoadBalancer \"edge\" field `access_logs`: bucket `plain` does not let AWS deliver load balancer access logs to it",
        "fix: declare the bucket with `.log_delivery(true)`",
        "aws:ec2:FlowLog \"other/flow-logs\" field `prefix`: `x/AWSLogs` is not a prefix AWS takes",
        "aws:s3:Bucket \"sealed\" field `kms_key`: load balancers write access logs only to buckets encrypted with S3's own key (SSE-S3)",
    ] {
        assert!(err.contains(expected), "{expected}\n in\n{err}");
    }
}
