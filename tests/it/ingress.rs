//! AlbIngress against the emulator: load balancer in the public subnets, security group with 80
//! and 443 from the internet, HTTPS listener (TLS 1.3 policy, validated certificate), HTTP → HTTPS
//! redirect, a host rule, target group and alias record per route; no-op; a route added and
//! removed; destroy.

use fabric::aws::route53::HostedZone;
use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

fn graph(routes: &[(&str, &str)]) -> Arc<fabric::model::Graph> {
    graph_with(routes, 30080, "/healthz")
}

fn graph_with(routes: &[(&str, &str)], port: i32, health: &str) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("web");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::None).build().add(&mut s).unwrap();
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    let edge = AlbIngress::builder().name("edge").network(&net).zone(&zone).build().add(&mut s).unwrap();
    for (service, host) in routes {
        edge.route(&mut s, service, host, port, health).unwrap();
    }
    s.export("dns", edge.dns_name());
    Arc::new(s.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_edge_with_host_routes() {
    let fx = Fixture::start().await;
    let engine = fx.engine("web").await;
    let (_, report) = fx.deploy(&engine, graph(&[("api", "api.acme.example"), ("ui", "www.acme.example")])).await;
    assert!(report.ok(), "{report:?}");
    let elb = &fx.aws.elbv2;
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    let listeners = elb.describe_listeners().load_balancer_arn(lb.load_balancer_arn().unwrap()).send().await.unwrap();
    let https = listeners.listeners().iter().find(|l| l.port() == Some(443)).expect("443");
    assert_eq!(https.ssl_policy(), Some(fabric::aws::elbv2::TLS13_POLICY));
    assert!(!https.certificates().is_empty());
    let http = listeners.listeners().iter().find(|l| l.port() == Some(80)).expect("80");
    let redirect = http.default_actions()[0].redirect_config().expect("redirect");
    assert_eq!((redirect.protocol(), redirect.port()), (Some("HTTPS"), Some("443")));
    let rules = elb.describe_rules().listener_arn(https.listener_arn().unwrap()).send().await.unwrap();
    let mut hosts: Vec<String> = rules
        .rules()
        .iter()
        .flat_map(|r| r.conditions().iter().filter_map(|c| c.host_header_config()).flat_map(|h| h.values().to_vec()))
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["api.acme.example", "www.acme.example"]);
    // The load balancer's group admits 80 and 443 from anywhere, and nothing else.
    let sg = lb.security_groups()[0].clone();
    let rules = fx
        .aws
        .ec2
        .describe_security_group_rules()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-id").values(&sg).build())
        .send()
        .await
        .unwrap();
    let mut ingress: Vec<(i32, String)> = rules
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .map(|r| (r.from_port().unwrap_or(-1), r.cidr_ipv4().unwrap_or_default().to_string()))
        .collect();
    ingress.sort();
    assert_eq!(ingress, [(80, "0.0.0.0/0".to_string()), (443, "0.0.0.0/0".to_string())]);

    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(&[("api", "api.acme.example"), ("ui", "www.acme.example")])).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty(), "{:?}", fx.aws.calls.calls());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // A new health-check path is modified in place; a new NodePort makes a new target group,
    // repoints the rule, and removes the old group.
    let routes = [("api", "api.acme.example"), ("ui", "www.acme.example")];
    let (plan, report) = fx.deploy(&engine, graph_with(&routes, 30080, "/ready")).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().update, 2, "{}", fabric::engine::render::render_plan(&plan));
    let tgs = elb.describe_target_groups().send().await.unwrap();
    assert!(tgs.target_groups().iter().all(|t| t.health_check_path() == Some("/ready")));
    let (plan, report) = fx.deploy(&engine, graph_with(&routes, 30090, "/ready")).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().replace, 2, "{}", fabric::engine::render::render_plan(&plan));
    let tgs = elb.describe_target_groups().send().await.unwrap();
    let ports: Vec<i32> = tgs.target_groups().iter().filter_map(|t| t.port()).collect();
    assert_eq!(ports, [30090, 30090], "only the new groups remain");

    // A route removed: its rule, target group and record go; the rest stays.
    let (plan, report) = fx.deploy(&engine, graph_with(&[("api", "api.acme.example")], 30090, "/ready")).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().delete, 3, "{}", fabric::engine::render::render_plan(&plan));
    assert_eq!(plan.summary().create + plan.summary().update + plan.summary().replace, 0);

    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(elb.describe_load_balancers().send().await.unwrap().load_balancers().is_empty());
    assert_eq!(fx.tagged("web").await, Vec::<(String, String)>::new());
}

#[test]
fn routes_must_be_covered_by_the_certificate() {
    let mut s = Stack::new("web");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    let edge = AlbIngress::builder().name("edge").network(&net).zone(&zone).build().add(&mut s).unwrap();
    edge.route(&mut s, "deep", "a.b.acme.example", 30080, "/").unwrap();
    edge.route(&mut s, "other", "api.other.example", 30080, "/").unwrap();
    edge.route(&mut s, "port", "x.acme.example", 0, "health").unwrap();
    edge.route(&mut s, "twice", "x.acme.example", 30081, "/").unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:elbv2:ListenerRule \"edge/deep\" field `host`: `a.b.acme.example` is not the apex of zone acme.example. or one label below it",
        "aws:elbv2:ListenerRule \"edge/other\" field `host`",
        "aws:elbv2:ListenerRule \"edge/port\" field `port`: port 0 is not a port",
        "aws:elbv2:ListenerRule \"edge/port\" field `health_check_path`",
        "aws:elbv2:ListenerRule \"edge/twice\" field `host`: `x.acme.example` is already routed",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}
