//! Aurora PostgreSQL against the emulator: a private, encrypted cluster with TLS required (its own
//! cluster parameter group), a writer and readers in different zones, writer and reader URLs as
//! secrets; no-op; drift seen; readers added and backup retention changed in place; a new
//! database name replaces the cluster; a cluster someone else holds under the identifier is found
//! by the names check, refused by the deploy and left as it was; destroy leaves nothing.
//! Preflight's orderable check asks the emulator's `aurora-postgresql` catalogue (it ends at 15.2).

use fabric::engine::{Outcome, StepOp};
use fabric::model::NothingKnown;
use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

#[derive(Clone)]
struct Cfg {
    readers: i32,
    retention: i32,
    database: &'static str,
    class: &'static str,
    version: &'static str,
}

impl Default for Cfg {
    fn default() -> Self {
        Cfg { readers: 1, retention: 7, database: "app", class: "db.r6g.large", version: "15.2" }
    }
}

fn graph(cfg: &Cfg) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("aurora");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::Single).build().add(&mut s).unwrap();
    let app = SecurityGroup::builder().name("app").vpc(net.vpc()).description("app").build().add(&mut s).unwrap();
    let db = AuroraPostgres::builder()
        .name("orders")
        .network(&net)
        .engine_version(cfg.version)
        .instance_class(cfg.class)
        .readers(cfg.readers)
        .backup_retention_days(cfg.retention)
        .database(cfg.database)
        .deletion_protection(false)
        .skip_final_snapshot(true)
        .allow_from(vec![&app])
        .build()
        .add(&mut s)
        .unwrap();
    s.export("db_url", db.url());
    s.export("db_reader_url", db.reader_url().unwrap());
    Arc::new(s.finish().unwrap())
}

fn step(plan: &fabric::engine::Plan, type_name: &str) -> Vec<StepOp> {
    plan.steps.iter().filter(|s| s.type_name == type_name && s.op != StepOp::Same).map(|s| s.op).collect()
}

async fn clusters(fx: &Fixture) -> Vec<aws_sdk_rds::types::DbCluster> {
    fx.aws.rds.describe_db_clusters().send().await.unwrap().db_clusters().to_vec()
}

async fn instances(fx: &Fixture) -> Vec<aws_sdk_rds::types::DbInstance> {
    fx.aws.rds.describe_db_instances().send().await.unwrap().db_instances().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aurora_lifecycle() {
    let fx = Fixture::start().await;
    let engine = fx.engine("aurora").await;
    let mut cfg = Cfg::default();
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert!(fabric::engine::render::render_plan(&plan).contains("master_password = (known after apply)"));

    let all = clusters(&fx).await;
    assert_eq!(all.len(), 1);
    let c = &all[0];
    let id = c.db_cluster_identifier().unwrap().to_string();
    assert_eq!(
        (c.engine(), c.engine_version(), c.storage_encrypted(), c.deletion_protection(), c.backup_retention_period()),
        (Some("aurora-postgresql"), Some("15.2"), Some(true), Some(false), Some(7))
    );
    assert_eq!(c.vpc_security_groups().len(), 1, "its own group only");
    assert_eq!(c.enabled_cloudwatch_logs_exports(), ["postgresql"]);
    // TLS required by its own cluster parameter group.
    let group = c.db_cluster_parameter_group().unwrap().to_string();
    assert!(group.starts_with(&id) && group.ends_with("-pg15"), "{group}");
    let params =
        fx.aws.rds.describe_db_cluster_parameters().db_cluster_parameter_group_name(&group).send().await.unwrap();
    assert!(
        params
            .parameters()
            .iter()
            .any(|p| p.parameter_name() == Some("rds.force_ssl") && p.parameter_value() == Some("1")),
        "{params:?}"
    );
    // A writer and a reader, in different zones, private.
    let members = instances(&fx).await;
    assert_eq!(members.len(), 2);
    assert!(
        members
            .iter()
            .all(|d| d.db_cluster_identifier() == Some(id.as_str()) && d.publicly_accessible() == Some(false))
    );
    assert_ne!(members[0].availability_zone(), members[1].availability_zone());
    let writers = c.db_cluster_members().iter().filter(|m| m.is_cluster_writer() == Some(true)).count();
    assert_eq!(writers, 1, "{:?}", c.db_cluster_members());

    // The URLs are secrets: the writer's and the reader's endpoints, encrypted in state.
    let state = engine.store.load().await.unwrap();
    let url = state.outputs["db_url"]["$secret"].as_str().unwrap().to_string();
    let reader = state.outputs["db_reader_url"]["$secret"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("@{}:5432/app?sslmode=require", c.endpoint().unwrap())), "{url}");
    assert!(reader.ends_with(&format!("@{}:5432/app?sslmode=require", c.reader_endpoint().unwrap())), "{reader}");
    let password = url.trim_start_matches("postgres://fabric_admin:").split('@').next().unwrap().to_string();
    assert_eq!(password.len(), 32);
    fx.assert_not_in_state("aurora", &password, "the master password");

    // Re-deploy: all same, no call; refresh sees no drift.
    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty(), "{:?}", fx.aws.calls.calls());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // Drift made outside fabric is seen: backups cut to a day by hand.
    fx.aws.rds.modify_db_cluster().db_cluster_identifier(&id).backup_retention_period(1).send().await.unwrap();
    let drift = engine.refresh(&mut st, None, true).await.unwrap();
    assert!(drift.render().contains("backup_retention_days"), "{}", drift.render());

    // Two readers and 14 days of backups: the cluster modified in place, a third instance made.
    cfg.readers = 2;
    cfg.retention = 14;
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(step(&plan, "aws:rds:DbCluster"), [StepOp::Update]);
    assert_eq!(step(&plan, "aws:rds:ClusterInstance"), [StepOp::Create]);
    assert_eq!(clusters(&fx).await[0].backup_retention_period(), Some(14));
    let members = instances(&fx).await;
    assert_eq!(members.len(), 3);
    let mut zones: Vec<_> = members.iter().filter_map(|d| d.availability_zone()).collect();
    zones.sort();
    zones.dedup();
    assert_eq!(zones.len(), 3, "one instance per zone");

    // A larger class: each instance modified in place.
    cfg.class = "db.r6g.xlarge";
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(step(&plan, "aws:rds:ClusterInstance"), [StepOp::Update; 3]);
    assert!(instances(&fx).await.iter().all(|d| d.db_instance_class() == Some("db.r6g.xlarge")));
    assert!(!fx.preview(&engine, &graph(&cfg)).await.has_changes());

    // Another first database is something Aurora cannot change: a new cluster (new identifier)
    // replaces it, made before the old one goes.
    cfg.database = "orders";
    let plan = fx.preview(&engine, &graph(&cfg)).await;
    assert_eq!(step(&plan, "aws:rds:DbCluster"), [StepOp::Replace]);
    assert!(fabric::engine::render::render_plan(&plan).contains("database_name"), "the plan names the field");
    let (_, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let all = clusters(&fx).await;
    assert_eq!(all.len(), 1, "the old cluster went after the new one");
    assert_ne!(all[0].db_cluster_identifier(), Some(id.as_str()));
    assert_eq!(all[0].database_name(), Some("orders"));
    assert_eq!(instances(&fx).await.len(), 3);

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert!(clusters(&fx).await.is_empty());
    assert!(instances(&fx).await.is_empty());
    let groups = fx.aws.rds.describe_db_cluster_parameter_groups().send().await.unwrap();
    assert!(
        !groups
            .db_cluster_parameter_groups()
            .iter()
            .any(|g| g.db_cluster_parameter_group_name().unwrap_or_default().starts_with("aurora-")),
        "{groups:?}"
    );
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}

/// A cluster someone else made under the identifier the program would use: preview's names check
/// finds it with reads only; a deploy meets it at that step, fails it as definite (nothing
/// pending), and the destroy that follows leaves it as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_someone_else_holds_is_found_refused_and_left_alone() {
    let fx = Fixture::start().await;
    let g = graph(&Cfg::default());
    let node = g.nodes().iter().find(|n| n.type_name() == "aws:rds:DbCluster").unwrap();
    let id = node.inputs(&NothingKnown).unwrap()["identifier"].as_str().unwrap().to_string();
    fx.aws
        .rds
        .create_db_cluster()
        .db_cluster_identifier(&id)
        .engine("aurora-postgresql")
        .engine_version("15.2")
        .master_username("theirs")
        .master_user_password("their-secret-password")
        .database_name("ledger")
        .tags(aws_sdk_rds::types::Tag::builder().key("team").value("data").build())
        .send()
        .await
        .unwrap();

    let engine = fx.engine("aurora").await;
    let (problems, skipped) = fx.names_taken(&engine, &g).await;
    assert_eq!(problems.len(), 1, "{problems:?} {skipped:?}");
    assert!(
        problems[0].contains(&format!("aws:rds:DbCluster \"orders\" field `identifier`: the name `{id}` is taken")),
        "{problems:?}"
    );

    let (_, report) = fx.deploy(&engine, g.clone()).await;
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let Outcome::Failed(m) = &failed[0].outcome else { unreachable!() };
    assert!(m.contains(&format!("Aurora cluster {id} already exists and is not this stack's")), "{m}");
    let (_, recovered) = engine.load_and_recover(None, true).await.unwrap();
    assert!(recovered.is_empty(), "nothing was left pending: {recovered:?}");

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    let theirs = clusters(&fx).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].master_username(), theirs[0].database_name()), (Some("theirs"), Some("ledger")));
    assert!(instances(&fx).await.is_empty(), "no instance was made in their cluster");
    // Everything the failed deploy made of its own is gone: state, groups, subnet group.
    assert!(engine.store.load().await.unwrap().resources.is_empty());
    let groups = fx.aws.rds.describe_db_cluster_parameter_groups().send().await.unwrap();
    assert!(
        !groups
            .db_cluster_parameter_groups()
            .iter()
            .any(|g| g.db_cluster_parameter_group_name() == Some(format!("{id}-pg15").as_str()))
    );
    let subnets = fx.aws.rds.describe_db_subnet_groups().send().await.unwrap();
    assert!(!subnets.db_subnet_groups().iter().any(|g| g.db_subnet_group_name() == Some(id.as_str())), "{subnets:?}");
}

/// Preflight asks the orderable options of `aurora-postgresql` once per version and class: a
/// class the region does not offer for the version is refused before any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_class_aurora_does_not_offer() {
    let fx = Fixture::start().await;
    let engine = fx.engine("aurora").await;
    let cfg = Cfg { class: "db.m1.small", ..Cfg::default() };
    let graph = graph(&cfg);
    let (state, _) = engine.load_and_recover(Some(&graph), false).await.unwrap();
    let plan = fabric::engine::plan(&graph, &state, &engine.registry).unwrap();
    fx.aws.calls.clear();
    let pf = fabric::aws::preflight::run(&fx.aws, &graph, &plan, &state).await;
    let problems: Vec<String> = pf.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        problems.iter().any(|p| p.contains("aurora-postgresql 15.2 cannot be ordered on db.m1.small in this region")),
        "{problems:#?}"
    );
    assert!(fx.aws.calls.writes().is_empty(), "preflight only reads: {:?}", fx.aws.calls.writes());
    let asked = fx.aws.calls.calls().iter().filter(|c| c.ends_with("DescribeOrderableDBInstanceOptions")).count();
    assert_eq!(asked, 1, "the two instances share one question");

    // The default class is offered: no problem.
    let graph = self::graph(&Cfg::default());
    let plan = fabric::engine::plan(&graph, &state, &engine.registry).unwrap();
    let pf = fabric::aws::preflight::run(&fx.aws, &graph, &plan, &state).await;
    assert!(!pf.problems.iter().any(|p| p.to_string().contains("aws:rds:")), "{:?}", pf.problems);
}

#[test]
fn bad_clusters_are_refused_before_any_call() {
    let mut s = Stack::new("aurora");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).build().add(&mut s).unwrap();
    let public_only = Vpc::builder().name("edge").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
    let add = |s: &mut Stack, b: AuroraPostgres| {
        b.add(s).unwrap();
    };
    add(
        &mut s,
        AuroraPostgres::builder().name("range").network(&net).serverless_v2(Acus { min: 8.0, max: 2.0 }).build(),
    );
    add(
        &mut s,
        AuroraPostgres::builder().name("huge").network(&net).serverless_v2(Acus { min: 0.7, max: 512.0 }).build(),
    );
    add(
        &mut s,
        AuroraPostgres::builder()
            .name("both")
            .network(&net)
            .instance_class("db.r6g.large")
            .serverless_v2(Acus { min: 0.5, max: 4.0 })
            .build(),
    );
    add(&mut s, AuroraPostgres::builder().name("old").network(&net).engine_version("12.9").readers(16).build());
    add(
        &mut s,
        AuroraPostgres::builder()
            .name("windows")
            .network(&net)
            .maintenance_window("sun:03:30-sun:04:30")
            .backup_window("03:00-04:00")
            .backup_retention_days(0)
            .build(),
    );
    add(&mut s, AuroraPostgres::builder().name("nowhere").network(&public_only).master_username("rdsadmin").build());
    add(
        &mut s,
        AuroraPostgres::builder()
            .name("restored")
            .network(&net)
            .restore(Restore::PointInTime { source: "Not_A_Cluster".into(), time: Some("yesterday".into()) })
            .build(),
    );
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:rds:DbCluster \"range\" field `serverless_v2`: the capacity range 8..2 ACUs has its minimum above its maximum",
        "aws:rds:DbCluster \"huge\" field `serverless_v2`: 0.7..512 ACUs is outside what Aurora Serverless v2 offers",
        "aws:rds:DbCluster \"both\" field `instance_class`: `db.r6g.large` is given with `serverless_v2`",
        "aws:rds:DbCluster \"old\" field `engine_version`: Aurora PostgreSQL `12.9` is not a version fabric runs",
        "aws:rds:DbCluster \"old\" field `readers`: 16 readers; an Aurora cluster has 0 to 15",
        "aws:rds:DbCluster \"windows\" field `backup_window`: the backup window `03:00-04:00` overlaps the maintenance window `sun:03:30-sun:04:30`",
        "aws:rds:DbCluster \"windows\" field `backup_retention_days`: 0 days of backups",
        "aws:rds:DbCluster \"nowhere\" field `network`: the network has 0 private subnets; an Aurora cluster needs two zones",
        "aws:rds:DbCluster \"nowhere\" field `master_username`: `rdsadmin` is reserved",
        "aws:rds:DbCluster \"restored\" field `restore`: `Not_A_Cluster` is not an RDS cluster identifier",
        "aws:rds:DbCluster \"restored\" field `restore`: `yesterday` is not an RFC 3339 UTC time",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}

fn restored(restore: Option<Restore>) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("dr");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(&mut s).unwrap();
    let b = AuroraPostgres::builder()
        .name("db")
        .network(&net)
        .engine_version("15.2")
        .instance_class("db.r6g.large")
        .readers(0)
        .deletion_protection(false)
        .skip_final_snapshot(true);
    let db = match restore {
        Some(r) => b.restore(r).build().add(&mut s).unwrap(),
        None => b.build().add(&mut s).unwrap(),
    };
    s.export("db_url", db.url());
    Arc::new(s.finish().unwrap())
}

/// Disaster recovery as a config change: restoring from a cluster snapshot replaces the cluster
/// with a restored one (new identifier and URL) that gets this stack's password, and only then
/// the mark that the restore is finished; the old cluster goes after it. A restored cluster that
/// lacks the mark (a run killed between the restore and the password) is finished by the next
/// deploy, not taken as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_from_a_cluster_snapshot_finishes_before_it_counts() {
    let fx = Fixture::start().await;
    let engine = fx.engine("dr").await;
    let (_, report) = fx.deploy(&engine, restored(None)).await;
    assert!(report.ok(), "{report:?}");
    let first = clusters(&fx).await[0].db_cluster_identifier().unwrap().to_string();
    fx.aws
        .rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier(&first)
        .db_cluster_snapshot_identifier("before-upgrade")
        .send()
        .await
        .unwrap();

    let from_snapshot = Restore::Snapshot { snapshot: "before-upgrade".into() };
    let (plan, report) = fx.deploy(&engine, restored(Some(from_snapshot.clone()))).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(step(&plan, "aws:rds:DbCluster"), [StepOp::Replace]);
    assert!(fabric::engine::render::render_plan(&plan).contains("restore"), "the plan names the restore");
    let calls = fx.aws.calls.calls();
    let restore_at = calls.iter().position(|c| c == "RDS.RestoreDBClusterFromSnapshot").expect("restored");
    let password_at = calls.iter().rposition(|c| c == "RDS.ModifyDBCluster").expect("password set");
    let finished_at = calls.iter().rposition(|c| c == "RDS.AddTagsToResource").expect("marked finished");
    assert!(restore_at < password_at && password_at < finished_at, "{calls:?}");
    let now = clusters(&fx).await;
    assert_eq!(now.len(), 1, "the old cluster went after the restored one");
    let second = now[0].db_cluster_identifier().unwrap().to_string();
    assert_ne!(second, first);
    assert!(now[0].tag_list().iter().any(|t| t.key() == Some("fabric:restore-finished")));
    assert_eq!(instances(&fx).await.len(), 1, "the writer, in the restored cluster");

    // The same restore again changes nothing.
    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, restored(Some(from_snapshot.clone()))).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));

    // A restored cluster without the mark is not a finished restore: find() does not adopt it,
    // so a lost create is made again, which finishes it (password, then the mark).
    let arn = now[0].db_cluster_arn().unwrap().to_string();
    fx.aws
        .rds
        .remove_tags_from_resource()
        .resource_name(&arn)
        .tag_keys("fabric:restore-finished")
        .send()
        .await
        .unwrap();
    let provider = fabric::aws::rds::cluster::cluster_provider();
    let g = restored(Some(from_snapshot));
    let node = g.nodes().iter().find(|n| n.type_name() == "aws:rds:DbCluster").unwrap();
    let state = engine.store.load().await.unwrap();
    let inputs = node.inputs(&state).unwrap();
    assert!(provider.find(&engine.ctx, &node.urn, &inputs).await.unwrap().is_none(), "unfinished is not adopted");
    fx.aws.calls.clear();
    provider.create(&engine.ctx, &node.urn, &inputs).await.unwrap();
    let calls = fx.aws.calls.calls();
    assert!(!calls.iter().any(|c| c.starts_with("RDS.Restore")), "not restored twice: {calls:?}");
    assert!(calls.iter().any(|c| c == "RDS.ModifyDBCluster"), "{calls:?}");
    assert!(provider.find(&engine.ctx, &node.urn, &inputs).await.unwrap().is_some(), "finished now");
    assert_eq!(clusters(&fx).await.len(), 1);
}
