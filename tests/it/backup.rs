//! BackupPlan against the emulator: vault, role and plan are created and re-deploy as `same`; the
//! selection hits an emulator gap (CreateBackupSelection answers HTTP 500, "not implemented"),
//! which is recorded as such — no selection id is invented — and reported by this test and by the
//! CLI. The request the real API receives is unit-tested in `sdk/src/aws/backup.rs`.

use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

fn graph(keep_days: i64) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("bk");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(&mut s).unwrap();
    let db = RdsPostgres::builder()
        .name("db")
        .network(&net)
        .deletion_protection(false)
        .skip_final_snapshot(true)
        .build()
        .add(&mut s)
        .unwrap();
    BackupPlan::builder()
        .name("daily")
        .daily_at("05:00")
        .keep_days(keep_days)
        .protect(&db)
        .build()
        .add(&mut s)
        .unwrap();
    Arc::new(s.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_plan_against_the_emulator() {
    let fx = Fixture::start().await;
    let engine = fx.engine("bk").await;
    let (_, report) = fx.deploy(&engine, graph(35)).await;
    assert!(report.ok(), "{report:?}");
    // The emulator lacks CreateBackupSelection: the selection is recorded as an emulator gap (and
    // the CLI says so after the deploy), never as a created selection.
    let state = engine.store.load().await.unwrap();
    let selection = state.resources.iter().find(|(u, _)| u.type_name() == "aws:backup:Selection").unwrap().1;
    // moto 5.2.5 (pinned, local/src/lib.rs) answers CreateBackupSelection with HTTP 500: the gap
    // must be recorded as such. An emulator that implements it fails here, on purpose: then the
    // selection is checked against it instead.
    let gap = selection.outputs.get("emulator_gap").and_then(|g| g.as_str()).unwrap_or_else(|| {
        panic!("the emulator now implements CreateBackupSelection: check the created selection here instead")
    });
    assert!(gap.contains("CreateBackupSelection") && gap.contains("HTTP 500"), "{gap}");
    assert_eq!(selection.outputs["id"], "", "nothing pretends to be a selection id");
    // With the gap recorded, a re-deploy is all `same`.
    let (plan, _) = fx.deploy(&engine, graph(35)).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    let vaults = fx.aws.backup.list_backup_vaults().send().await.unwrap();
    assert!(vaults.backup_vault_list().iter().any(|v| v.backup_vault_name() == Some("bk-daily")));
    let plans = fx.aws.backup.list_backup_plans().send().await.unwrap();
    let plan = plans.backup_plans_list().iter().find(|p| p.backup_plan_name() == Some("bk-daily")).expect("plan");
    let got = fx.aws.backup.get_backup_plan().backup_plan_id(plan.backup_plan_id().unwrap()).send().await.unwrap();
    let rule = &got.backup_plan().unwrap().rules()[0];
    assert_eq!(rule.schedule_expression(), Some("cron(0 5 * * ? *)"));
    assert_eq!(rule.lifecycle().and_then(|l| l.delete_after_days()), Some(35));
    fx.aws.iam.get_role().role_name("bk-backup-daily").send().await.unwrap();

    // The retention changes in place (UpdateBackupPlan) — another call the emulator lacks.
    let (plan, report) = fx.deploy(&engine, graph(60)).await;
    let updated: Vec<_> =
        plan.steps.iter().filter(|s| s.op == fabric::engine::StepOp::Update).map(|s| s.urn.type_name()).collect();
    assert_eq!(updated, ["aws:backup:Plan"], "{}", fabric::engine::render::render_plan(&plan));
    // moto 5.2.5 answers UpdateBackupPlan with HTTP 500 too: the step fails, naming the call (the
    // request-level shape of the real answer is the SDK's); nothing else does.
    let failed: Vec<String> = report.failed().map(|f| format!("{} {:?}", f.urn, f.outcome)).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("aws:backup:Plan")
            && failed[0].contains("UpdateBackupPlan")
            && failed[0].contains("HTTP 500"),
        "if the emulator now implements UpdateBackupPlan, check the new retention here instead: {failed:?}"
    );
    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let st = engine.store.load().await.unwrap();
    assert!(st.resources.is_empty() && st.pending.is_empty());
    let plans = fx.aws.backup.list_backup_plans().send().await.unwrap();
    assert!(plans.backup_plans_list().iter().all(|p| p.backup_plan_name() != Some("bk-daily")));
}

/// A backup vault or plan of the stack's name that someone else made (the emulator accepts a
/// second one of either, so the providers look first): the step is refused before any write, as a
/// definite failure (nothing pending), the foreign one is left as it was, and destroy removes
/// everything the stack made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_or_plan_someone_else_named_is_refused_and_left_alone() {
    let fx = Fixture::start().await;
    let backup = &fx.aws.backup;
    for foreign in ["vault", "plan"] {
        fx.reset().await;
        let engine = fx.engine("bk").await;
        // The foreign vault as it is: still there afterwards, with the same tags (none of ours).
        let vault_tags = || async {
            let vault = backup.describe_backup_vault().backup_vault_name("bk-daily").send().await.unwrap();
            let tags = backup.list_tags().resource_arn(vault.backup_vault_arn().unwrap()).send().await.unwrap();
            let mut tags: Vec<(String, String)> = tags.tags().cloned().unwrap_or_default().into_iter().collect();
            tags.sort();
            tags
        };
        let mut before = None;
        if foreign == "vault" {
            backup
                .create_backup_vault()
                .backup_vault_name("bk-daily")
                .backup_vault_tags("team", "data")
                .send()
                .await
                .unwrap();
            before = Some(vault_tags().await);
        } else {
            let rule = aws_sdk_backup::types::BackupRuleInput::builder()
                .rule_name("theirs")
                .target_backup_vault_name("Default")
                .schedule_expression("cron(0 1 * * ? *)")
                .build()
                .unwrap();
            let plan = aws_sdk_backup::types::BackupPlanInput::builder()
                .backup_plan_name("bk-daily")
                .rules(rule)
                .build()
                .unwrap();
            backup.create_backup_plan().backup_plan(plan).backup_plan_tags("team", "data").send().await.unwrap();
        }
        let (_, report) = fx.deploy(&engine, graph(35)).await;
        let failed: Vec<String> = report.failed().map(|f| format!("{} {:?}", f.urn, f.outcome)).collect();
        assert_eq!(failed.len(), 1, "{foreign}: {failed:?}");
        let what = if foreign == "vault" { "backup vault bk-daily" } else { "backup plan bk-daily" };
        assert!(failed[0].contains(&format!("{what} already exists and is not this stack's")), "{failed:?}");
        assert!(engine.store.load().await.unwrap().pending.is_empty(), "{foreign}: a refusal leaves nothing pending");

        let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
        assert!(report.ok(), "{report:?}");
        assert!(fx.tagged("bk").await.is_empty());
        if let Some(before) = &before {
            let after = vault_tags().await;
            assert_eq!(&after, before, "the foreign vault is untouched");
            assert!(after.iter().all(|(k, _)| !k.starts_with("fabric:")), "{after:?}");
        } else {
            let plans = backup.list_backup_plans().send().await.unwrap();
            let theirs: Vec<_> =
                plans.backup_plans_list().iter().filter(|p| p.backup_plan_name() == Some("bk-daily")).collect();
            assert_eq!(theirs.len(), 1, "no second plan of that name");
            let got =
                backup.get_backup_plan().backup_plan_id(theirs[0].backup_plan_id().unwrap()).send().await.unwrap();
            assert_eq!(got.backup_plan().unwrap().rules()[0].rule_name(), "theirs", "the foreign plan is untouched");
        }
    }
}
