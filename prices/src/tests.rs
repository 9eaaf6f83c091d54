//! Request-level tests: a Pricing client whose HTTP layer answers `GetProducts` from recorded
//! answers (the Price List API's awsJson 1.1 format, price documents as strings), and keeps every
//! request so that the filters sent can be checked.

use super::*;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// How a test answers a request body: a status and a JSON body.
type Answer = Arc<dyn Fn(&Value) -> (u16, Value) + Send + Sync>;

/// Answers each request with `answer(request body)`, and keeps the bodies.
#[derive(Clone)]
struct Replay {
    sent: Arc<Mutex<Vec<Value>>>,
    answer: Answer,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Replay")
    }
}

impl HttpClient for Replay {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        assert_eq!(request.headers().get("x-amz-target"), Some("AWSPriceListService.GetProducts"));
        let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default()).unwrap_or(Value::Null);
        self.sent.lock().unwrap().push(body.clone());
        let (status, answer) = (self.answer)(&body);
        let mut response = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(answer.to_string()));
        response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
        if status >= 400 {
            response.headers_mut().insert("x-amzn-errortype", "InvalidParameterException");
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

fn client(replay: &Replay) -> aws_sdk_pricing::Client {
    let config = aws_sdk_pricing::Config::builder()
        .behavior_version(aws_sdk_pricing::config::BehaviorVersion::latest())
        .region(aws_sdk_pricing::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::from_keys("test", "test", None))
        .http_client(SharedHttpClient::new(replay.clone()))
        .build();
    aws_sdk_pricing::Client::from_conf(config)
}

/// A price document as the API sends it (one product, an on-demand term of `usd` an hour).
fn product(size: &str, usd: &str) -> String {
    json!({
        "product": {"productFamily": "Compute Instance", "attributes": {"instanceType": size, "regionCode": "us-east-1"}, "sku": "SKU1"},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {"priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "description": format!("${usd} per On Demand Linux {size} Instance Hour"),
            "pricePerUnit": {"USD": usd}}}, "sku": "SKU1", "effectiveDate": "2026-12-01T00:00:00Z"}}}
    })
    .to_string()
}

fn filters(body: &Value) -> Vec<(String, String)> {
    body["Filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["Type"], "TERM_MATCH");
            (f["Field"].as_str().unwrap().to_string(), f["Value"].as_str().unwrap().to_string())
        })
        .collect()
}

fn small_table() -> Value {
    json!({
        "date": "2026-12-01", "rates_date": "2026-12-01", "currency": "USD", "source": "hand",
        "regions": {"us-east-1": "us-east", "us-east-2": "us-east"},
        "tables": {"us-east": {
            "ec2_hour": {"t3.large": 0.08, "x9.mega": 9.0},
            "rds_postgres_hour": {"db.t4g.micro": 0.016},
            "aurora_postgres_hour": {}, "elasticache_node_hour": {}, "opensearch_instance_hour": {},
            "rates": {"eks_cluster_hour": 0.1}
        }}
    })
}

#[tokio::test]
async fn a_refresh_asks_for_each_sku_with_its_filters_and_keeps_what_the_api_does_not_know() {
    let replay = Replay {
        sent: Default::default(),
        answer: Arc::new(|body: &Value| {
            let size = filters(body).into_iter().find(|(f, _)| f == "instanceType").unwrap().1;
            let list: Vec<String> = match size.as_str() {
                // Two products (standard and a pricier variant), and a zero-priced placeholder.
                "t3.large" => vec![
                    product("t3.large", "0.0832000000"),
                    product("t3.large", "0.1000000000"),
                    product("t3.large", "0.0000000000"),
                ],
                "db.t4g.micro" => vec![product("db.t4g.micro", "0.0160000000")],
                _ => vec![],
            };
            (200, json!({"FormatVersion": "aws_v1", "PriceList": list}))
        }),
    };
    let mut table = small_table();
    let done = refresh(&client(&replay), &mut table, "2026-12-07").await.unwrap();
    assert_eq!(done.asked, 3);
    assert_eq!(done.changed, vec!["us-east ec2_hour t3.large: 0.08 → 0.0832".to_string()]);
    assert_eq!(done.missing, vec!["us-east ec2_hour x9.mega (us-east-1)".to_string()]);
    assert_eq!(table["tables"]["us-east"]["ec2_hour"]["t3.large"], 0.0832);
    assert_eq!(table["tables"]["us-east"]["ec2_hour"]["x9.mega"], 9.0, "kept, never zeroed");
    assert_eq!(table["date"], "2026-12-07");
    assert_eq!(table["rates_date"], "2026-12-01", "the flat rates were not refreshed");
    assert!(table["source"].as_str().unwrap().contains("flat rates (gp3, NAT"), "{}", table["source"]);

    let sent = replay.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0]["ServiceCode"], "AmazonEC2");
    assert_eq!(sent[0]["FormatVersion"], "aws_v1");
    let ec2: Vec<(String, String)> = filters(&sent[0]);
    for want in [
        ("instanceType", "t3.large"),
        ("regionCode", "us-east-1"),
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("preInstalledSw", "NA"),
        ("capacitystatus", "Used"),
    ] {
        assert!(ec2.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {ec2:?}");
    }
    let rds = filters(&sent[2]);
    assert_eq!(sent[2]["ServiceCode"], "AmazonRDS");
    assert!(
        rds.contains(&("databaseEngine".into(), "PostgreSQL".into()))
            && rds.contains(&("deploymentOption".into(), "Single-AZ".into())),
        "{rds:?}"
    );
}

#[tokio::test]
async fn pages_are_followed_and_an_error_is_reported_with_the_sku() {
    let replay = Replay {
        sent: Default::default(),
        answer: Arc::new(|body: &Value| match body.get("NextToken").and_then(Value::as_str) {
            None => (
                200,
                json!({"FormatVersion": "aws_v1", "PriceList": [product("t3.large", "0.0900000000")], "NextToken": "page-2"}),
            ),
            Some("page-2") => {
                (200, json!({"FormatVersion": "aws_v1", "PriceList": [product("t3.large", "0.0832000000")]}))
            }
            Some(_) => (400, json!({"Message": "bad token"})),
        }),
    };
    let price = ask(&client(&replay), &TABLES[0], "us-east-1", "t3.large").await.unwrap();
    assert_eq!(price, Some(0.0832), "the lowest over both pages");
    assert_eq!(replay.sent.lock().unwrap().len(), 2);

    let failing =
        Replay { sent: Default::default(), answer: Arc::new(|_: &Value| (400, json!({"Message": "Invalid filter"}))) };
    let err = ask(&client(&failing), &TABLES[0], "us-east-1", "t3.large").await.unwrap_err();
    assert!(err.contains("GetProducts AmazonEC2 t3.large us-east-1") && err.contains("Invalid filter"), "{err}");
}

#[test]
fn only_positive_on_demand_hourly_prices_count() {
    assert_eq!(hourly_price(&[product("t3.large", "0.0000000000")]), None);
    assert_eq!(hourly_price(&["not json".into()]), None);
    let monthly = product("gp3", "0.08").replace("\"Hrs\"", "\"GB-Mo\"");
    assert_eq!(hourly_price(&[monthly]), None);
}
