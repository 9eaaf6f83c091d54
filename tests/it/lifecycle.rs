//! The example fabric through its whole life against the emulator: create, no-op, update in place,
//! replace, drift, destroy.

use fabric::engine::{StepOp, Summary};
use fabric_tests::{Fixture, example_graph};

fn ops(plan: &fabric::engine::Plan, op: StepOp) -> Vec<String> {
    let mut v: Vec<String> =
        plan.steps.iter().filter(|s| s.op == op).map(|s| format!("{} {}", s.type_name, s.urn.name())).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_lifecycle() {
    let fx = Fixture::start().await;
    let engine = fx.engine("example").await;
    let mut cfg = example::Config::default();

    // Create: 14 resources, each tagged in the same call.
    let (plan, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary(), Summary { create: 14, ..Summary::default() });
    let tagged = fx.tagged("example").await;
    let count = |t: &str| tagged.iter().filter(|(ty, _)| ty == t).count();
    assert_eq!((count("vpc"), count("subnet"), count("internet-gateway")), (1, 3, 1), "{tagged:?}");
    assert_eq!((count("route-table"), count("security-group"), count("security-group-rule")), (1, 2, 2), "{tagged:?}");
    let vpcs = fx.aws.ec2.describe_vpcs().filters(fabric_filter("example")).send().await.unwrap();
    let vpc_id = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let dns = fx
        .aws
        .ec2
        .describe_vpc_attribute()
        .vpc_id(&vpc_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(dns.enable_dns_hostnames().and_then(|v| v.value()), Some(true));

    // Re-deploy: everything `same`, and not one write call.
    fx.aws.calls.clear();
    let (plan, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok());
    assert_eq!(plan.summary(), Summary { same: 14, ..Summary::default() });
    assert!(fx.aws.calls.calls().is_empty(), "a no-op deploy makes no call: {:?}", fx.aws.calls.calls());

    // A tag change updates the tagged resources in place.
    cfg.tags = vec![("team".into(), "web".into())];
    let (plan, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        plan.summary(),
        Summary { update: 8, same: 6, ..Summary::default() },
        "{:?}",
        ops(&plan, StepOp::Update)
    );
    let vpcs = fx.aws.ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.unwrap();
    let team =
        vpcs.vpcs()[0].tags().iter().find(|t| t.key() == Some("team")).and_then(|t| t.value()).map(str::to_string);
    assert_eq!(team.as_deref(), Some("web"));
    assert!(fx.aws.calls.writes().iter().all(|c| c.ends_with("CreateTags")), "{:?}", fx.aws.calls.writes());

    // A subnet CIDR change replaces the subnet and its association (create before delete).
    cfg.public_subnets[0].1 = "10.0.10.0/24".into();
    let (plan, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        ops(&plan, StepOp::Replace),
        ["aws:ec2:RouteTableAssociation public-a", "aws:ec2:Subnet public-a"],
        "{}",
        fabric::engine::render::render_plan(&plan)
    );
    let subnet_change =
        plan.steps.iter().find(|s| s.urn.name() == "public-a" && s.type_name == "aws:ec2:Subnet").unwrap();
    assert_eq!(subnet_change.changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), ["cidr_block"]);
    let subnets = fx.aws.ec2.describe_subnets().filters(fabric_filter("example")).send().await.unwrap();
    let mut cidrs: Vec<&str> = subnets.subnets().iter().filter_map(|s| s.cidr_block()).collect();
    cidrs.sort();
    assert_eq!(cidrs, ["10.0.1.0/24", "10.0.10.0/24", "10.0.2.0/24"]);
    let (plan, _) = (fx.preview(&engine, &example_graph(&cfg)).await, ());
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));

    // A subnet deleted out of band: refresh reports it; deploy puts it back.
    let state = engine.store.load().await.unwrap();
    let subnet_b =
        state.resources.iter().find(|(u, _)| u.name() == "public-b" && u.type_name() == "aws:ec2:Subnet").unwrap();
    let subnet_b_id = subnet_b.1.outputs["id"].as_str().unwrap().to_string();
    let assoc_b = state
        .resources
        .iter()
        .find(|(u, _)| u.name() == "public-b" && u.type_name() == "aws:ec2:RouteTableAssociation")
        .unwrap();
    fx.aws
        .ec2
        .disassociate_route_table()
        .association_id(assoc_b.1.outputs["id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    fx.aws.ec2.delete_subnet().subnet_id(&subnet_b_id).send().await.unwrap();
    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut state, None, true).await.unwrap();
    let text = drift.render();
    assert!(text.contains("aws:ec2:Subnet \"public-b\" was deleted outside fabric"), "{text}");
    assert!(text.contains("aws:ec2:RouteTableAssociation \"public-b\" was deleted outside fabric"), "{text}");
    let (plan, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().create, 2, "{}", fabric::engine::render::render_plan(&plan));

    // A tag changed out of band is drift too.
    fx.aws
        .ec2
        .create_tags()
        .resources(&vpc_id)
        .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("intruder").build())
        .send()
        .await
        .unwrap();
    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut state, None, false).await.unwrap();
    assert!(drift.render().contains("aws:ec2:Vpc \"main\" changed outside fabric"), "{}", drift.render());

    // Destroy: nothing tagged with the stack remains, and state is empty.
    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(fx.tagged("example").await, Vec::<(String, String)>::new());
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}

fn fabric_filter(stack: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name("tag:fabric:stack").values(stack).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_gone_and_already_there_are_not_errors() {
    let fx = Fixture::start().await;
    let engine = fx.engine("example").await;
    let cfg = example::Config::default();
    let (_, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok());
    let state = engine.store.load().await.unwrap();
    // Every provider's delete of something already deleted succeeds (reverse dependency order).
    let order = fabric::engine::plan_destroy(&state, &engine.registry).unwrap();
    for round in 0..2 {
        for step in &order.steps {
            let rec = &state.resources[&step.urn];
            let p = engine.registry.get(&rec.type_name).unwrap();
            p.delete(&engine.ctx, &step.urn, &rec.inputs, &rec.outputs)
                .await
                .unwrap_or_else(|e| panic!("delete #{round} of {}: {e}", step.urn));
        }
    }
    // Refresh sees that all of it is gone; deploy makes it again.
    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    assert_eq!(engine.refresh(&mut state, None, true).await.unwrap().drift.len(), 14);
    let (plan, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok());
    assert_eq!(plan.summary().create, 14);
    // Every provider finds what exists (by tag or natural key), so a lost create is adopted.
    let before = fx.tagged("example").await;
    let state = engine.store.load().await.unwrap();
    for (urn, rec) in &state.resources {
        let p = engine.registry.get(&rec.type_name).unwrap();
        let found = p.find(&engine.ctx, urn, &rec.inputs).await.unwrap();
        assert_eq!(found.as_ref(), Some(&rec.outputs), "{urn} is found by tag or natural key");
    }
    assert_eq!(fx.tagged("example").await, before);
    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert_eq!(fx.tagged("example").await, Vec::<(String, String)>::new());
}
