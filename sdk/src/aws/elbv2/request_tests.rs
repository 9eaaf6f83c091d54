//! What the local emulator cannot show of load balancers, request by request in the query
//! protocol's wire format: it deletes a load balancer whatever its deletion protection, where AWS
//! refuses with `OperationNotPermitted`. A load balancer the program protects is kept, with the
//! way out named; protection the program no longer asks for is lifted, then the delete goes on.

use super::{AccessLogs, LoadBalancerInputs, LoadBalancerOutputs, load_balancer_provider};
use crate::aws::RetryPolicy;
use crate::aws::scripted::{Script, query_error, xml};
use crate::engine::provider::Ctx;
use crate::model::Urn;
use serde_json::Value;
use std::sync::Arc;

const ARN: &str = "arn:aws:elasticloadbalancing:us-east-2:111122223333:loadbalancer/app/demo-edge/50dc6c495c0c9188";

fn ctx(script: &Script) -> Ctx {
    crate::providers::context("demo", Some(Arc::new(script.aws(RetryPolicy::RealAccount))))
}

fn urn() -> Urn {
    Urn::new("demo", super::LOAD_BALANCER, "edge")
}

fn inputs(protected: bool) -> Value {
    serde_json::to_value(LoadBalancerInputs::<Vec<String>, String> {
        name: "demo-edge".into(),
        subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
        security_group_ids: vec!["sg-1".into()],
        internet_facing: true,
        drop_invalid_header_fields: true,
        deletion_protection: protected,
        access_logs: Some(AccessLogs { bucket: "demo-logs".into(), prefix: "alb/demo-edge".into() }),
        tags: Default::default(),
    })
    .unwrap()
}

fn outputs() -> Value {
    serde_json::to_value(LoadBalancerOutputs {
        arn: ARN.into(),
        dns_name: "demo-edge-1.us-east-2.elb.amazonaws.com".into(),
        zone_id: "Z3AADJGX6KTTL2".into(),
    })
    .unwrap()
}

fn answer(op: &str) -> String {
    format!(
        "<{op}Response xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><{op}Result/>\
         <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{op}Response>"
    )
}

fn refused() -> crate::aws::scripted::Step {
    query_error(
        "Elastic Load Balancing v2.DeleteLoadBalancer",
        400,
        "OperationNotPermitted",
        &format!("Load balancer '{ARN}' cannot be deleted because deletion protection is enabled"),
    )
}

#[tokio::test(start_paused = true)]
async fn a_protected_load_balancer_is_kept_while_the_program_protects_it() {
    let script = Script::new([refused()]);
    let err = load_balancer_provider().delete(&ctx(&script), &urn(), &inputs(true), &outputs()).await.unwrap_err();
    script.assert_done();
    assert!(
        err.0.contains(
            "load balancer demo-edge has deletion protection: set `.deletion_protection(false)`, deploy, then delete it"
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn protection_the_program_no_longer_asks_for_is_lifted_once_then_the_delete_goes_on() {
    let script = Script::new([
        refused(),
        xml("Elastic Load Balancing v2.ModifyLoadBalancerAttributes", 200, &answer("ModifyLoadBalancerAttributes")),
        xml("Elastic Load Balancing v2.DeleteLoadBalancer", 200, &answer("DeleteLoadBalancer")),
    ]);
    load_balancer_provider().delete(&ctx(&script), &urn(), &inputs(false), &outputs()).await.unwrap();
    script.assert_done();
    let lift = &script.sent()[1].body;
    assert!(lift.contains("Key=deletion_protection.enabled") && lift.contains("Value=false"), "{lift}");

    // Refused again after the lift: the second refusal is the answer, not a loop.
    let script = Script::new([
        refused(),
        xml("Elastic Load Balancing v2.ModifyLoadBalancerAttributes", 200, &answer("ModifyLoadBalancerAttributes")),
        refused(),
    ]);
    let err = load_balancer_provider().delete(&ctx(&script), &urn(), &inputs(false), &outputs()).await.unwrap_err();
    script.assert_done();
    assert!(err.0.contains("DeleteLoadBalancer failed: OperationNotPermitted"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn an_attribute_change_sends_only_what_changed() {
    let script = Script::new([xml(
        "Elastic Load Balancing v2.ModifyLoadBalancerAttributes",
        200,
        &answer("ModifyLoadBalancerAttributes"),
    )]);
    let mut off = inputs(false);
    off["access_logs"] = Value::Null;
    load_balancer_provider().update(&ctx(&script), &urn(), &inputs(false), &outputs(), &off).await.unwrap();
    script.assert_done();
    let body = &script.sent()[0].body;
    assert!(body.contains("Key=access_logs.s3.enabled") && body.contains("Value=false"), "{body}");
    assert!(!body.contains("deletion_protection") && !body.contains("drop_invalid"), "{body}");
}
