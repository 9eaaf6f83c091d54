//! Request-level tests of what the local emulator cannot show: an AWS client whose HTTP layer
//! answers from a script, in the wire format the real API uses, and records every request.
//!
//! Each step names the operation it expects (`EKS.CreateAddon`), so a test reads as the exchange
//! it asserts; a request that is not the next step fails the test with both names. This uses the
//! SDK's public HTTP-client traits rather than `aws-smithy-mocks`: that crate turns on `test-util`
//! features of the SDK's runtime crates, which would rebuild every service crate for the tests
//! (minutes, on two cores), and it answers with typed outputs where this answers with the bytes
//! AWS sends, so the SDK's own deserializers are exercised too.

use super::{Aws, CallLog, RetryPolicy};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One expected request and its answer.
#[derive(Clone, Debug)]
pub struct Step {
    /// `Service.Operation`, as the call log names it.
    pub op: &'static str,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// A JSON answer (restJson and awsJson services: EKS, ACM, Backup).
pub fn json(op: &'static str, status: u16, body: serde_json::Value) -> Step {
    Step { op, status, headers: vec![("content-type", "application/json".into())], body: body.to_string() }
}

/// A JSON error answer of `code` (`x-amzn-errortype`, as restJson services send it).
pub fn json_error(op: &'static str, status: u16, code: &str, message: &str) -> Step {
    Step {
        op,
        status,
        headers: vec![("content-type", "application/json".into()), ("x-amzn-errortype", code.to_string())],
        body: serde_json::json!({ "message": message }).to_string(),
    }
}

/// An XML answer (query and restXml services: RDS, EC2, IAM, Route 53).
pub fn xml(op: &'static str, status: u16, body: &str) -> Step {
    Step { op, status, headers: vec![("content-type", "text/xml".into())], body: body.to_string() }
}

/// A query-protocol error (`<ErrorResponse>`), as RDS, IAM and ELBv2 send it.
pub fn query_error(op: &'static str, status: u16, code: &str, message: &str) -> Step {
    xml(
        op,
        status,
        &format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        ),
    )
}

/// A request whose answer is lost on the way (the connection is reset after it was sent).
pub fn lost(op: &'static str) -> Step {
    Step { op, status: 0, headers: Vec::new(), body: String::new() }
}

/// A request as it was sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub op: String,
    pub method: String,
    pub uri: String,
    pub body: String,
}

#[derive(Debug, Default)]
struct Inner {
    steps: Mutex<VecDeque<Step>>,
    sent: Mutex<Vec<Sent>>,
    unexpected: Mutex<Vec<String>>,
    calls: CallLog,
}

/// The script and what was sent; [`Script::aws`] makes clients that follow it.
#[derive(Clone, Debug, Default)]
pub struct Script(Arc<Inner>);

impl Script {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        let s = Script::default();
        s.0.steps.lock().unwrap().extend(steps);
        s
    }

    /// AWS clients (region us-east-2, static credentials) whose every request is answered by
    /// this script, retried under `retry`.
    pub fn aws(&self, retry: RetryPolicy) -> Aws {
        let config = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-2"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::from_keys("test", "test", None),
            ))
            .http_client(SharedHttpClient::new(self.clone()))
            .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio sleep"))
            .retry_config(retry.retry_config())
            .build();
        Aws::with_call_log(config, false, retry, self.0.calls.clone())
    }

    /// Every request sent, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.0.sent.lock().unwrap().clone()
    }

    /// The operations sent, in order.
    pub fn ops(&self) -> Vec<String> {
        self.sent().into_iter().map(|s| s.op).collect()
    }

    /// Asserts that every step was used and nothing unexpected was sent.
    pub fn assert_done(&self) {
        let unexpected = self.0.unexpected.lock().unwrap().clone();
        assert!(unexpected.is_empty(), "unexpected requests: {unexpected:#?}\nsent: {:#?}", self.ops());
        let left: Vec<&str> = self.0.steps.lock().unwrap().iter().map(|s| s.op).collect();
        assert!(left.is_empty(), "steps never requested: {left:?}\nsent: {:#?}", self.ops());
    }
}

impl HttpClient for Script {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Script {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // The call log names the operation in flight (tests send one request at a time).
        let op = self.0.calls.calls().last().cloned().unwrap_or_default();
        let body = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        self.0.sent.lock().unwrap().push(Sent {
            op: op.clone(),
            method: request.method().to_string(),
            uri: request.uri().to_string(),
            body,
        });
        let next = self.0.steps.lock().unwrap().pop_front();
        let step = match next {
            Some(step) if step.op == op => step,
            other => {
                let expected = other.as_ref().map(|s| s.op).unwrap_or("(end of script)");
                self.0.unexpected.lock().unwrap().push(format!("{op} (the script expected {expected})"));
                if let Some(s) = other {
                    self.0.steps.lock().unwrap().push_front(s);
                }
                // An answer no retry policy retries, so the test ends at once.
                Step {
                    op: "",
                    status: 400,
                    headers: vec![("x-amzn-errortype", "UnexpectedRequest".into())],
                    body: "{\"message\":\"not in the script\"}".into(),
                }
            }
        };
        if step.status == 0 {
            return HttpConnectorFuture::ready(Err(aws_smithy_runtime_api::client::result::ConnectorError::io(
                "connection reset by peer (scripted)".into(),
            )));
        }
        let mut response = Response::new(StatusCode::try_from(step.status).expect("status"), SdkBody::from(step.body));
        for (k, v) in step.headers {
            response.headers_mut().insert(k, v);
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}
