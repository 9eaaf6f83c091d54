//! RdsPostgres against the emulator: private, encrypted, Multi-AZ, generated password kept secret;
//! no-op; modify in place; major version → replace; deletion protection honoured; destroy.

use fabric::engine::{Outcome, StepOp};
use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

#[derive(Clone)]
struct Cfg {
    class: &'static str,
    version: &'static str,
    protect: bool,
}

fn graph(cfg: &Cfg) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("data");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(&mut s).unwrap();
    let app = SecurityGroup::builder().name("app").vpc(net.vpc()).description("app").build().add(&mut s).unwrap();
    let db = RdsPostgres::builder()
        .name("db")
        .network(&net)
        .instance_class(cfg.class)
        .engine_version(cfg.version)
        .deletion_protection(cfg.protect)
        .skip_final_snapshot(true)
        .allow_from(vec![&app])
        .build()
        .add(&mut s)
        .unwrap();
    s.export("db_url", db.url());
    Arc::new(s.finish().unwrap())
}

fn instance_step(plan: &fabric::engine::Plan) -> StepOp {
    plan.steps.iter().find(|s| s.type_name == "aws:rds:DbInstance").unwrap().op
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lifecycle() {
    let fx = Fixture::start().await;
    let engine = fx.engine("data").await;
    let mut cfg = Cfg { class: "db.t4g.medium", version: "16.4", protect: true };
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let text = fabric::engine::render::render_plan(&plan);
    assert!(text.contains("master_password = (known after apply)"), "{text}");

    let dbs = fx.aws.rds.describe_db_instances().send().await.unwrap();
    let d = &dbs.db_instances()[0];
    assert_eq!(
        (d.multi_az(), d.storage_encrypted(), d.publicly_accessible(), d.deletion_protection()),
        (Some(true), Some(true), Some(false), Some(true))
    );
    assert_eq!(
        (d.backup_retention_period(), d.storage_type(), d.max_allocated_storage()),
        (Some(7), Some("gp3"), Some(100))
    );

    // The password and the URL are secrets: encrypted in state, redacted in plans and outputs.
    let state = engine.store.load().await.unwrap();
    let url = state.outputs["db_url"]["$secret"].as_str().unwrap().to_string();
    assert!(url.starts_with("postgres://fabric_admin:") && url.ends_with(":5432/app?sslmode=require"), "{url}");
    let password = url.trim_start_matches("postgres://fabric_admin:").split('@').next().unwrap().to_string();
    assert_eq!(password.len(), 32);
    fx.assert_not_in_state("data", &password, "the password");

    // Re-deploy: all same (the password is stable, read from state).
    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty());
    assert!(!fabric::engine::render::render_plan(&plan).contains(&password));
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // A larger class: modified in place.
    cfg.class = "db.r7g.large";
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(instance_step(&plan), StepOp::Update);
    assert!(
        fx.aws.calls.writes().iter().any(|c| c.ends_with("ModifyDBInstance")),
        "{:?} {}",
        fx.aws.calls.calls(),
        fabric::engine::render::render_plan(&plan)
    );

    // A new major version replaces the instance; deletion protection stops the old one going.
    cfg.version = "17.2";
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert_eq!(instance_step(&plan), StepOp::Replace);
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let Outcome::Failed(message) = &failed[0].outcome else { unreachable!() };
    assert!(message.contains("has deletion protection"), "{message}");
    assert_eq!(fx.aws.rds.describe_db_instances().send().await.unwrap().db_instances().len(), 2);

    // Lift the protection: the old instance goes.
    cfg.protect = false;
    let (_, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let dbs = fx.aws.rds.describe_db_instances().send().await.unwrap();
    assert_eq!(dbs.db_instances().len(), 1);
    assert!(dbs.db_instances()[0].engine_version().unwrap().starts_with("17"));

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert!(fx.aws.rds.describe_db_instances().send().await.unwrap().db_instances().is_empty());
}

#[test]
fn unsafe_databases_are_refused_before_any_call() {
    let mut s = Stack::new("data");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
    let public_only = Vpc::builder().name("edge").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
    RdsPostgres::builder().name("open").network(&net).publicly_accessible(true).build().add(&mut s).unwrap();
    RdsPostgres::builder()
        .name("old")
        .network(&net)
        .engine_version("9.6")
        .backup_retention_days(0)
        .build()
        .add(&mut s)
        .unwrap();
    RdsPostgres::builder().name("tiny").network(&net).storage_gb(10).max_storage_gb(5).build().add(&mut s).unwrap();
    RdsPostgres::builder()
        .name("nowhere")
        .network(&public_only)
        .instance_class("t3.micro")
        .build()
        .add(&mut s)
        .unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:rds:DbInstance \"open\" field `publicly_accessible`: a database reachable from the internet is refused",
        "aws:rds:DbInstance \"old\" field `engine_version`: PostgreSQL `9.6` is not a supported version",
        "aws:rds:DbInstance \"old\" field `backup_retention_days`",
        "aws:rds:DbInstance \"tiny\" field `storage_gb`: 10 GiB is outside 20 to 65536",
        "aws:rds:DbInstance \"tiny\" field `max_storage_gb`",
        "aws:rds:DbInstance \"nowhere\" field `network`: the network has 0 private subnets",
        "aws:rds:DbInstance \"nowhere\" field `instance_class`: `t3.micro` is not an RDS instance class",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
    // With a named waiver, a public database is accepted.
    let mut s = Stack::new("data");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
    RdsPostgres::builder()
        .name("demo")
        .network(&net)
        .publicly_accessible(true)
        .public_waiver("public demo data only")
        .build()
        .add(&mut s)
        .unwrap();
    assert!(s.finish().is_ok());
}

fn restored(restore: Option<fabric::aws::rds::Restore>) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("dr");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(&mut s).unwrap();
    let b = RdsPostgres::builder().name("db").network(&net).deletion_protection(false).skip_final_snapshot(true);
    let db = match restore {
        Some(r) => b.restore(r).build().add(&mut s).unwrap(),
        None => b.build().add(&mut s).unwrap(),
    };
    s.export("db_url", db.url());
    Arc::new(s.finish().unwrap())
}

/// Disaster recovery as a config change: restoring to a point in time, then from a snapshot,
/// each replaces the instance with a restored one (new identifier and URL), which gets this
/// stack's password; the old instance goes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_a_point_in_time_and_from_a_snapshot() {
    use fabric::aws::rds::Restore;
    let fx = Fixture::start().await;
    let engine = fx.engine("dr").await;
    let (_, report) = fx.deploy(&engine, restored(None)).await;
    assert!(report.ok(), "{report:?}");
    let first = fx.aws.rds.describe_db_instances().send().await.unwrap().db_instances()[0]
        .db_instance_identifier()
        .unwrap()
        .to_string();

    let pitr = Restore::PointInTime { source: first.clone(), time: None };
    let (plan, report) = fx.deploy(&engine, restored(Some(pitr.clone()))).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(instance_step(&plan), StepOp::Replace);
    assert!(fabric::engine::render::render_plan(&plan).contains("restore"), "the plan names the restore");
    let dbs = fx.aws.rds.describe_db_instances().send().await.unwrap();
    let now: Vec<&str> = dbs.db_instances().iter().filter_map(|d| d.db_instance_identifier()).collect();
    assert_eq!(now.len(), 1, "the old instance went after the restored one: {now:?}");
    assert_ne!(now[0], first);
    assert!(
        fx.aws.calls.calls().iter().any(|c| c == "RDS.RestoreDBInstanceToPointInTime"),
        "{:?}",
        fx.aws.calls.calls()
    );
    let second = now[0].to_string();

    fx.aws
        .rds
        .create_db_snapshot()
        .db_instance_identifier(&second)
        .db_snapshot_identifier("before-upgrade")
        .send()
        .await
        .unwrap();
    let (plan, report) =
        fx.deploy(&engine, restored(Some(Restore::Snapshot { snapshot: "before-upgrade".into() }))).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(instance_step(&plan), StepOp::Replace);
    assert!(fx.aws.calls.calls().iter().any(|c| c == "RDS.RestoreDBInstanceFromDBSnapshot"));
    let dbs = fx.aws.rds.describe_db_instances().send().await.unwrap();
    let now: Vec<&str> = dbs.db_instances().iter().filter_map(|d| d.db_instance_identifier()).collect();
    assert_eq!(now.len(), 1);
    assert!(now[0] != first && now[0] != second);

    // The same restore again changes nothing.
    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, restored(Some(Restore::Snapshot { snapshot: "before-upgrade".into() }))).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
}
