//! IAM roles, managed-policy attachments and inline policies against the emulator: create, no-op,
//! update in place, replace, destroy, and a role name already taken.

use fabric::aws::iam::{PolicyDocument, Role, RolePolicy, RolePolicyAttachment, aws_managed_policy};
use fabric::engine::Summary;
use fabric::model::Stack;
use fabric_tests::Fixture;
use std::sync::Arc;

struct Cfg {
    services: Vec<&'static str>,
    team: &'static str,
    policy: &'static str,
    bucket: &'static str,
}

fn graph(cfg: &Cfg) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("iam");
    let role = Role::builder()
        .name("backup")
        .trust(PolicyDocument::trust_services(&cfg.services))
        .description("AWS Backup")
        .tags(fabric::prelude::tags([("team", cfg.team)]))
        .build()
        .add(&mut s)
        .unwrap();
    RolePolicyAttachment::builder()
        .name("backup-managed")
        .role(&role)
        .policy_arn(aws_managed_policy(cfg.policy))
        .build()
        .add(&mut s)
        .unwrap();
    RolePolicy::builder()
        .name("read-bucket")
        .role(&role)
        .policy(PolicyDocument::new().allow(&["s3:GetObject"], &[cfg.bucket]))
        .build()
        .add(&mut s)
        .unwrap();
    Arc::new(s.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_attachments_and_inline_policies() {
    let fx = Fixture::start().await;
    let engine = fx.engine("iam").await;
    let mut cfg = Cfg {
        services: vec!["backup.amazonaws.com"],
        team: "platform",
        policy: "service-role/AWSBackupServiceRolePolicyForBackup",
        bucket: "arn:aws:s3:::a/*",
    };
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary(), Summary { create: 3, ..Summary::default() });
    let role = fx.aws.iam.get_role().role_name("iam-backup").send().await.unwrap();
    assert!(role.role().unwrap().arn().ends_with(":role/iam-backup"));
    let attached = fx.aws.iam.list_attached_role_policies().role_name("iam-backup").send().await.unwrap();
    assert_eq!(attached.attached_policies()[0].policy_name(), Some("AWSBackupServiceRolePolicyForBackup"));

    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(&cfg)).await;
    assert_eq!(plan.summary(), Summary { same: 3, ..Summary::default() });
    assert!(fx.aws.calls.calls().is_empty());
    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut state, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // In place: the trust policy, a tag, the inline document.
    cfg.services.push("ec2.amazonaws.com");
    cfg.team = "web";
    cfg.bucket = "arn:aws:s3:::b/*";
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary(), Summary { update: 2, same: 1, ..Summary::default() });
    let inline = fx.aws.iam.get_role_policy().role_name("iam-backup").policy_name("read-bucket").send().await.unwrap();
    // IAM answers the document URL-encoded.
    assert!(inline.policy_document().contains("%3A%3A%3Ab/%2A"), "{}", inline.policy_document());

    // Another managed policy: the attachment is replaced (attach the new, detach the old).
    cfg.policy = "service-role/AWSBackupServiceRolePolicyForRestores";
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary(), Summary { replace: 1, same: 2, ..Summary::default() });
    let attached = fx.aws.iam.list_attached_role_policies().role_name("iam-backup").send().await.unwrap();
    let names: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_name()).collect();
    assert_eq!(names, ["AWSBackupServiceRolePolicyForRestores"]);

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert!(fx.aws.iam.get_role().role_name("iam-backup").send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_name_taken_by_someone_else_is_reported_not_adopted() {
    let fx = Fixture::start().await;
    fx.aws
        .iam
        .create_role()
        .role_name("iam-backup")
        .assume_role_policy_document(PolicyDocument::trust_services(&["ec2.amazonaws.com"]).json().to_string())
        .send()
        .await
        .unwrap();
    let engine = fx.engine("iam").await;
    let cfg = Cfg { services: vec!["backup.amazonaws.com"], team: "x", policy: "AdministratorAccess", bucket: "*" };
    let (_, report) = fx.deploy(&engine, graph(&cfg)).await;
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let fabric::engine::Outcome::Failed(message) = &failed[0].outcome else { unreachable!() };
    assert!(message.contains("a role named `iam-backup` exists and was not created by"), "{message}");
}

#[test]
fn invalid_iam_input_is_rejected_before_any_call() {
    let mut s = Stack::new("iam");
    let role = Role::builder()
        .name("x".repeat(70))
        .trust(PolicyDocument::new().allow(&["sts:AssumeRole"], &["*"]))
        .build()
        .add(&mut s)
        .unwrap();
    RolePolicyAttachment::builder()
        .name("bad-arn")
        .role(&role)
        .policy_arn("AmazonEKSClusterPolicy")
        .build()
        .add(&mut s)
        .unwrap();
    RolePolicy::builder()
        .name("bad-doc")
        .role(&role)
        .policy(PolicyDocument::new().allow(&["GetObject"], &[]))
        .build()
        .add(&mut s)
        .unwrap();
    RolePolicy::builder().name("empty").role(&role).policy(PolicyDocument::new()).build().add(&mut s).unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:iam:Role \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" field `name`",
        "is not a valid IAM role name",
        "field `trust`: every statement of a trust policy needs a Principal",
        "aws:iam:RolePolicyAttachment \"bad-arn\" field `policy_arn`: `AmazonEKSClusterPolicy` is not an IAM policy ARN",
        "aws:iam:RolePolicy \"bad-doc\" field `policy`: statement 0: `GetObject` is not an action",
        "statement 0 has no resource",
        "aws:iam:RolePolicy \"empty\" field `policy`: the policy has no statement",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}
