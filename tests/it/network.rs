//! The `Vpc` component against the emulator: three zones chosen at apply and kept, two tiers, NAT
//! per zone; no-op re-deploy; NAT per zone → single NAT in place; destroy.

use fabric::engine::{StepOp, Summary};
use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

fn graph(nat: Nat) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("net");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(nat).build().add(&mut s).unwrap();
    s.export("private_subnets", Output::all(net.private_subnets().iter().map(|p| p.id())));
    s.export("zones", Output::all(net.private_subnets().iter().map(|p| p.zone())));
    Arc::new(s.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_zone_network_with_nat() {
    let fx = Fixture::start().await;
    let engine = fx.engine("net").await;
    let (plan, report) = fx.deploy(&engine, graph(Nat::PerZone)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary(), Summary { create: 29, ..Summary::default() });
    let state = engine.store.load().await.unwrap();
    assert_eq!(state.outputs["zones"], serde_json::json!(["us-east-2a", "us-east-2b", "us-east-2c"]));
    let subnets = fx
        .aws
        .ec2
        .describe_subnets()
        .filters(aws_sdk_ec2::types::Filter::builder().name("tag:tier").values("private").build())
        .send()
        .await
        .unwrap();
    let mut placed: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| (s.availability_zone().unwrap().to_string(), s.cidr_block().unwrap().to_string()))
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            ("us-east-2a".to_string(), "10.0.0.0/18".to_string()),
            ("us-east-2b".into(), "10.0.64.0/18".into()),
            ("us-east-2c".into(), "10.0.128.0/18".into())
        ]
    );
    let nats = fx.aws.ec2.describe_nat_gateways().send().await.unwrap();
    let live = |n: &&aws_sdk_ec2::types::NatGateway| n.state() == Some(&aws_sdk_ec2::types::NatGatewayState::Available);
    assert_eq!(nats.nat_gateways().iter().filter(live).count(), 3);
    // Each private route table sends 0.0.0.0/0 to its zone's NAT gateway.
    let tables = fx
        .aws
        .ec2
        .describe_route_tables()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:Name")
                .set_values(Some(vec!["main/private-a".into(), "main/private-b".into(), "main/private-c".into()]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut targets: Vec<String> = tables
        .route_tables()
        .iter()
        .flat_map(|t| t.routes().iter().filter_map(|r| r.nat_gateway_id().map(str::to_string)))
        .collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), 3);

    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(Nat::PerZone)).await;
    assert_eq!(plan.summary(), Summary { same: 29, ..Summary::default() });
    assert!(fx.aws.calls.calls().is_empty(), "{:?}", fx.aws.calls.calls());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // One NAT gateway for all: two private routes repointed in place, two gateways and addresses gone.
    let (plan, report) = fx.deploy(&engine, graph(Nat::Single)).await;
    assert!(report.ok(), "{report:?}");
    let changed = |op: StepOp| {
        let mut v: Vec<String> = plan.steps.iter().filter(|s| s.op == op).map(|s| s.urn.name().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(changed(StepOp::Update), ["main/private-b-egress", "main/private-c-egress"]);
    assert_eq!(changed(StepOp::Delete), ["main/nat-b", "main/nat-b", "main/nat-c", "main/nat-c"]);
    let nats = fx.aws.ec2.describe_nat_gateways().send().await.unwrap();
    assert_eq!(nats.nat_gateways().iter().filter(live).count(), 1);

    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(fx.tagged("net").await, Vec::<(String, String)>::new());
    let nats = fx.aws.ec2.describe_nat_gateways().send().await.unwrap();
    assert_eq!(nats.nat_gateways().iter().filter(live).count(), 0);
    let addresses = fx.aws.ec2.describe_addresses().send().await.unwrap();
    assert!(addresses.addresses().is_empty(), "{:?}", addresses.addresses());
}
