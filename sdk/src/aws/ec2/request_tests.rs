//! What the local emulator cannot show of flow logs, request by request in EC2's wire format:
//! CreateFlowLogs and DeleteFlowLogs answer a refusal of one resource inside a successful answer
//! (`unsuccessful`), which must fail the step as definite, and a delete of a flow log that is
//! already gone must not.

use super::flow_log::{FlowLogInputs, FlowLogOutputs, Traffic, provider};
use crate::aws::RetryPolicy;
use crate::aws::scripted::{Script, xml};
use crate::engine::provider::Ctx;
use crate::model::Urn;
use serde_json::Value;
use std::sync::Arc;

const EC2: &str = "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"";

fn ctx(script: &Script) -> Ctx {
    crate::providers::context("demo", Some(Arc::new(script.aws(RetryPolicy::RealAccount))))
}

fn urn() -> Urn {
    Urn::new("demo", super::flow_log::TYPE, "main/flow-logs")
}

fn inputs() -> Value {
    serde_json::to_value(FlowLogInputs::<String> {
        vpc_id: "vpc-0abc".into(),
        destination: "arn:aws:s3:::demo-logs".into(),
        traffic: Traffic::All,
        tags: Default::default(),
    })
    .unwrap()
}

fn unsuccessful(op: &str, code: &str, message: &str) -> String {
    let ids = if op == "CreateFlowLogs" { "<flowLogIdSet/>" } else { "" };
    format!(
        "<{op}Response {EC2}><requestId>r</requestId>{ids}<unsuccessful><item><error><code>{code}</code>\
         <message>{message}</message></error><resourceId>vpc-0abc</resourceId></item></unsuccessful></{op}Response>"
    )
}

#[tokio::test(start_paused = true)]
async fn a_flow_log_refused_inside_a_successful_answer_fails_as_definite() {
    let script = Script::new([xml(
        "EC2.CreateFlowLogs",
        200,
        &unsuccessful(
            "CreateFlowLogs",
            "400",
            "Access Denied for LogDestination: demo-logs. Please check LogDestination permission",
        ),
    )]);
    let err = provider().create(&ctx(&script), &urn(), &inputs()).await.unwrap_err();
    script.assert_done();
    assert!(err.0.contains("Access Denied for LogDestination: demo-logs"), "{err}");
    let body = &script.sent()[0].body;
    for part in ["ResourceType=VPC", "ResourceId.1=vpc-0abc", "TrafficType=ALL", "LogDestinationType=s3"] {
        assert!(body.contains(part), "{part} in {body}");
    }
    assert!(body.contains("LogDestination=arn%3Aaws%3As3%3A%3A%3Ademo-logs"), "{body}");
    assert!(body.contains("ResourceType=vpc-flow-log"), "tagged in the create call: {body}");
}

#[tokio::test(start_paused = true)]
async fn a_flow_log_already_gone_is_deleted_and_another_refusal_is_not() {
    let out = serde_json::to_value(FlowLogOutputs { id: "fl-0abc".into() }).unwrap();
    let script = Script::new([xml(
        "EC2.DeleteFlowLogs",
        200,
        &unsuccessful(
            "DeleteFlowLogs",
            "InvalidFlowLogId.NotFound",
            "These flow log ids in the input list are not found: [TotalCount: 1] fl-0abc",
        ),
    )]);
    provider().delete(&ctx(&script), &urn(), &inputs(), &out).await.unwrap();
    script.assert_done();

    let script = Script::new([xml(
        "EC2.DeleteFlowLogs",
        200,
        &unsuccessful("DeleteFlowLogs", "UnauthorizedOperation", "You are not authorized to perform this operation"),
    )]);
    let err = provider().delete(&ctx(&script), &urn(), &inputs(), &out).await.unwrap_err();
    script.assert_done();
    assert!(err.0.contains("DeleteFlowLogs refused fl-0abc: UnauthorizedOperation"), "{err}");
}
