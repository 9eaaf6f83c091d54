//! Redis (ElastiCache) against the emulator: private, encrypted at rest and in transit, a primary
//! and replicas over the zones with failover, a generated AUTH token kept secret; no-op; node type
//! changed in place; a new port replaces the group; a group someone else holds under the same id
//! is found by the names check and refused by the deploy, and left as it was; destroy.
//!
//! What the emulator cannot show (replica count changes, which it has no API for; an engine change
//! refused before any write) is tested at the request level in `sdk/src/aws/elasticache/`.

use fabric::engine::{Outcome, StepOp};
use fabric::model::NothingKnown;
use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

#[derive(Clone)]
struct Cfg {
    node_type: &'static str,
    port: i32,
}

fn graph(cfg: &Cfg) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("cache");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::Single).build().add(&mut s).unwrap();
    let app = SecurityGroup::builder().name("app").vpc(net.vpc()).description("app").build().add(&mut s).unwrap();
    let cache = Redis::builder()
        .name("sessions")
        .network(&net)
        .node_type(cfg.node_type)
        .port(cfg.port)
        .skip_final_snapshot(true)
        .allow_from(vec![&app])
        .build()
        .add(&mut s)
        .unwrap();
    s.export("redis_url", cache.url());
    Arc::new(s.finish().unwrap())
}

fn group_step(plan: &fabric::engine::Plan) -> StepOp {
    plan.steps.iter().find(|s| s.type_name == "aws:elasticache:ReplicationGroup").unwrap().op
}

/// The groups the emulator still has (it keeps deleted ones as `deleting`).
async fn live_groups(fx: &Fixture) -> Vec<aws_sdk_elasticache::types::ReplicationGroup> {
    let all = fx.aws.elasticache.describe_replication_groups().send().await.unwrap();
    all.replication_groups().iter().filter(|g| g.status() != Some("deleting")).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lifecycle() {
    let fx = Fixture::start().await;
    let engine = fx.engine("cache").await;
    let mut cfg = Cfg { node_type: "cache.t4g.small", port: 6379 };
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let text = fabric::engine::render::render_plan(&plan);
    assert!(text.contains("auth_token = (known after apply)"), "{text}");

    let groups = live_groups(&fx).await;
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(
        (g.at_rest_encryption_enabled(), g.transit_encryption_enabled(), g.auth_token_enabled()),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(g.automatic_failover().map(|s| s.as_str()), Some("enabled"));
    assert_eq!(g.multi_az().map(|s| s.as_str()), Some("enabled"));
    assert_eq!((g.member_clusters().len(), g.engine(), g.snapshot_retention_limit()), (3, Some("valkey"), Some(7)));
    // The subnet group is the network's three private subnets.
    let subnets = fx.aws.elasticache.describe_cache_subnet_groups().send().await.unwrap();
    assert_eq!(subnets.cache_subnet_groups()[0].subnets().len(), 3);

    // The token and the URL are secrets: encrypted in state, redacted in plans.
    let state = engine.store.load().await.unwrap();
    let url = state.outputs["redis_url"]["$secret"].as_str().unwrap().to_string();
    let primary = g.node_groups()[0].primary_endpoint().unwrap().address().unwrap();
    assert!(url.starts_with("rediss://:") && url.ends_with(&format!("@{primary}:6379")), "{url}");
    let token = url.trim_start_matches("rediss://:").split('@').next().unwrap().to_string();
    assert_eq!(token.len(), 32);
    fx.assert_not_in_state("cache", &token, "the AUTH token");

    // Re-deploy: all same, no call; refresh sees no drift.
    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty());
    assert!(!fabric::engine::render::render_plan(&plan).contains(&token));
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // Drift made outside fabric is seen: snapshots turned off by hand.
    let id = g.replication_group_id().unwrap().to_string();
    fx.aws
        .elasticache
        .modify_replication_group()
        .replication_group_id(&id)
        .snapshot_retention_limit(0)
        .send()
        .await
        .unwrap();
    let drift = engine.refresh(&mut st, None, true).await.unwrap();
    assert!(drift.render().contains("snapshot_retention_days"), "{}", drift.render());

    // A larger node type: modified in place (and the hand-made drift put back).
    cfg.node_type = "cache.r7g.large";
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(group_step(&plan), StepOp::Update);
    assert!(fx.aws.calls.writes().iter().any(|c| c.ends_with("ModifyReplicationGroup")), "{:?}", fx.aws.calls.calls());
    let g = &live_groups(&fx).await[0];
    assert_eq!((g.cache_node_type(), g.snapshot_retention_limit()), (Some("cache.r7g.large"), Some(7)));
    assert!(!fx.preview(&engine, &graph(&cfg)).await.has_changes());

    // A new port is something ElastiCache cannot change: a new group (new id) replaces it, made
    // before the old one goes.
    cfg.port = 6380;
    let plan = fx.preview(&engine, &graph(&cfg)).await;
    assert_eq!(group_step(&plan), StepOp::Replace);
    assert!(fabric::engine::render::render_plan(&plan).contains("port"), "the plan names the field that replaces");
    let (_, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let groups = live_groups(&fx).await;
    assert_eq!(groups.len(), 1, "the old group went after the new one");
    assert_ne!(groups[0].replication_group_id(), Some(id.as_str()));
    assert_eq!(groups[0].node_groups()[0].primary_endpoint().unwrap().port(), Some(6380));
    let state = engine.store.load().await.unwrap();
    assert!(state.outputs["redis_url"]["$secret"].as_str().unwrap().ends_with(":6380"));

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert!(live_groups(&fx).await.is_empty());
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}

/// A replication group someone else made under the id the program would use: preview's names
/// check finds it with reads only; a deploy meets it at that step, fails it as definite (nothing
/// pending), and the destroy that follows leaves it as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_someone_else_holds_is_found_refused_and_left_alone() {
    let fx = Fixture::start().await;
    let cfg = Cfg { node_type: "cache.t4g.small", port: 6379 };
    let g = graph(&cfg);
    let node = g.nodes().iter().find(|n| n.type_name() == "aws:elasticache:ReplicationGroup").unwrap();
    let id = node.inputs(&NothingKnown).unwrap()["id"].as_str().unwrap().to_string();
    fx.aws
        .elasticache
        .create_replication_group()
        .replication_group_id(&id)
        .replication_group_description("the data team's")
        .cache_node_type("cache.m7g.large")
        .engine("redis")
        .num_cache_clusters(1)
        .tags(aws_sdk_elasticache::types::Tag::builder().key("team").value("data").build())
        .send()
        .await
        .unwrap();

    let engine = fx.engine("cache").await;
    let (problems, skipped) = fx.names_taken(&engine, &g).await;
    assert_eq!(problems.len(), 1, "{problems:?} {skipped:?}");
    assert!(
        problems[0]
            .contains(&format!("aws:elasticache:ReplicationGroup \"sessions\" field `id`: the name `{id}` is taken")),
        "{problems:?}"
    );

    let (_, report) = fx.deploy(&engine, g.clone()).await;
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let Outcome::Failed(m) = &failed[0].outcome else { unreachable!() };
    assert!(m.contains(&format!("ElastiCache replication group {id} already exists and is not this stack's (it carries no fabric tags); nothing was changed")), "{m}");
    let (_, recovered) = engine.load_and_recover(None, true).await.unwrap();
    assert!(recovered.is_empty(), "nothing was left pending: {recovered:?}");

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    let theirs = live_groups(&fx).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        (theirs[0].cache_node_type(), theirs[0].description(), theirs[0].engine()),
        (Some("cache.m7g.large"), Some("the data team's"), Some("redis"))
    );
}

#[test]
fn bad_caches_are_refused_before_any_call() {
    let mut s = Stack::new("cache");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).build().add(&mut s).unwrap();
    let public_only = Vpc::builder().name("edge").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
    Redis::builder()
        .name("old")
        .network(&net)
        .engine(Engine::RedisOss)
        .engine_version("5.0")
        .build()
        .add(&mut s)
        .unwrap();
    Redis::builder()
        .name("odd")
        .network(&net)
        .node_type("r7g.large")
        .engine_version("eight")
        .build()
        .add(&mut s)
        .unwrap();
    Redis::builder().name("crowded").network(&net).replicas(3).build().add(&mut s).unwrap();
    Redis::builder().name("lonely").network(&net).replicas(0).build().add(&mut s).unwrap();
    Redis::builder()
        .name("windows")
        .network(&net)
        .replicas(1)
        .maintenance_window("sun:03:30-sun:04:30")
        .snapshot_window("03:00-04:00")
        .snapshot_retention_days(0)
        .build()
        .add(&mut s)
        .unwrap();
    Redis::builder()
        .name("short")
        .network(&net)
        .replicas(1)
        .maintenance_window("mon:01:00-mon:01:30")
        .build()
        .add(&mut s)
        .unwrap();
    Redis::builder().name("nowhere").network(&public_only).build().add(&mut s).unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:elasticache:ReplicationGroup \"old\" field `engine_version`: redis `5.0` is not a version fabric runs",
        "aws:elasticache:ReplicationGroup \"odd\" field `engine_version`: valkey `eight`",
        "aws:elasticache:ReplicationGroup \"odd\" field `node_type`: `r7g.large` is not an ElastiCache node type",
        "aws:elasticache:ReplicationGroup \"crowded\" field `replicas`: 3 replicas over 2 zones",
        "fix: give at most 2 replicas, or a network over more zones",
        "aws:elasticache:ReplicationGroup \"lonely\" field `replicas`: 0 replicas; automatic failover needs 1",
        "aws:elasticache:ReplicationGroup \"windows\" field `snapshot_window`: the snapshot window `03:00-04:00` overlaps the maintenance window `sun:03:30-sun:04:30`",
        "aws:elasticache:ReplicationGroup \"windows\" field `snapshot_retention_days`",
        "aws:elasticache:ReplicationGroup \"short\" field `maintenance_window`: `mon:01:00-mon:01:30` is shorter than an hour",
        "aws:elasticache:ReplicationGroup \"nowhere\" field `network`: the network has 0 private subnets",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}
