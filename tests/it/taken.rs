//! Names someone else holds, in an account that is not empty: acme (dev) meets a foreign RDS
//! instance, IAM role, DB subnet group and backup vault under the names it would create.
//! Preview finds all four with reads only and exits 2; a deploy that meets them anyway (the names
//! taken after its preflight) fails at those steps and records them as definite failures; the
//! destroy that follows removes everything the stack made and leaves the foreign resources as
//! they were, setting by setting.

use fabric::model::NothingKnown;
use fabric_tests::Fixture;
use std::process::Output;

fn acme(fx: &Fixture, state: &std::path::Path, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = crate::stack_command("acme");
    for (k, v) in extra_env {
        command.env(k, v);
    }
    fabric_tests::stack_cli(command, fx, state, "acme", args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The names acme (dev) gives its database, subnet group, first IAM role and backup vault.
struct Names {
    db: String,
    subnet_group: String,
    role: String,
    vault: String,
}

fn acme_names() -> Names {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/acme/config");
    let graph = fabric::testing::synthesize_env("acme", "dev", config, acme::program).unwrap();
    let first = |t: &str, field: &str| {
        let node = graph.nodes().iter().find(|n| n.type_name() == t).unwrap_or_else(|| panic!("no {t}"));
        node.inputs(&NothingKnown).unwrap()[field].as_str().unwrap().to_string()
    };
    Names {
        db: first("aws:rds:DbInstance", "identifier"),
        subnet_group: first("aws:rds:DbSubnetGroup", "name"),
        role: first("aws:iam:Role", "role_name"),
        vault: first("aws:backup:Vault", "name"),
    }
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// What the foreign resources look like: compared before and after.
async fn foreign_settings(fx: &Fixture, n: &Names) -> serde_json::Value {
    let db = fx.aws.rds.describe_db_instances().db_instance_identifier(&n.db).send().await.unwrap();
    let db = &db.db_instances()[0];
    let group = fx.aws.rds.describe_db_subnet_groups().db_subnet_group_name(&n.subnet_group).send().await.unwrap();
    let group = &group.db_subnet_groups()[0];
    let mut subnets: Vec<&str> = group.subnets().iter().filter_map(|s| s.subnet_identifier()).collect();
    subnets.sort();
    let role = fx.aws.iam.get_role().role_name(&n.role).send().await.unwrap();
    let role = role.role().unwrap();
    let role_tags = fx.aws.iam.list_role_tags().role_name(&n.role).send().await.unwrap();
    let vault = fx.aws.backup.describe_backup_vault().backup_vault_name(&n.vault).send().await.unwrap();
    let vault_tags = fx.aws.backup.list_tags().resource_arn(vault.backup_vault_arn().unwrap()).send().await.unwrap();
    serde_json::json!({
        "db": {
            "class": db.db_instance_class(), "engine": db.engine(), "user": db.master_username(),
            "storage": db.allocated_storage(), "multi_az": db.multi_az(),
            "tags": db.tag_list().iter().map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or(""))).collect::<Vec<_>>(),
        },
        "subnet_group": {"description": group.db_subnet_group_description(), "subnets": subnets},
        "role": {
            "description": role.description(),
            "tags": role_tags.tags().iter().map(|t| format!("{}={}", t.key(), t.value())).collect::<Vec<_>>(),
        },
        "vault": {"tags": vault_tags.tags().cloned().unwrap_or_default().into_iter().collect::<std::collections::BTreeMap<_, _>>()},
    })
}

/// The data team's resources, made outside fabric with acme's names.
async fn make_foreign(fx: &Fixture, n: &Names) {
    let ec2 = &fx.aws.ec2;
    let vpc = ec2.create_vpc().cidr_block("10.99.0.0/16").send().await.unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.99.1.0/24", "us-east-2a"), ("10.99.2.0/24", "us-east-2b")] {
        let s = ec2.create_subnet().vpc_id(&vpc_id).cidr_block(cidr).availability_zone(zone).send().await.unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let team = aws_sdk_rds::types::Tag::builder().key("team").value("data").build();
    fx.aws
        .rds
        .create_db_subnet_group()
        .db_subnet_group_name(&n.subnet_group)
        .db_subnet_group_description("the data team's")
        .set_subnet_ids(Some(subnets))
        .tags(team.clone())
        .send()
        .await
        .unwrap();
    fx.aws
        .rds
        .create_db_instance()
        .db_instance_identifier(&n.db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("data")
        .master_user_password("not-acmes-Passw0rd")
        .tags(team)
        .send()
        .await
        .unwrap();
    let tag = aws_sdk_iam::types::Tag::builder().key("team").value("data").build().unwrap();
    let iam = &fx.aws.iam;
    iam.create_role()
        .role_name(&n.role)
        .assume_role_policy_document(TRUST)
        .description("the data team's")
        .tags(tag)
        .send()
        .await
        .unwrap();
    fx.aws
        .backup
        .create_backup_vault()
        .backup_vault_name(&n.vault)
        .backup_vault_tags("team", "data")
        .send()
        .await
        .unwrap();
}

fn writes(log: &std::path::Path) -> Vec<String> {
    let calls = std::fs::read_to_string(log).unwrap_or_default();
    calls
        .lines()
        .filter(|c| {
            let op = c.rsplit('.').next().unwrap_or("");
            !["Describe", "Get", "List", "Head"].iter().any(|p| op.starts_with(p))
        })
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_someone_else_holds_stop_preview_and_never_wedge_the_stack() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let names = acme_names();
    make_foreign(&fx, &names).await;
    let before = foreign_settings(&fx, &names).await;

    // Preview: all four found, by name and field, with reads only; exit 2.
    let log = dir.path().join("api.log");
    let log_env = [("FABRIC_API_LOG", log.to_str().unwrap())];
    let out = acme(&fx, state, &log_env, &["preview", "--local"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for (what, field, name) in [
        ("aws:rds:DbInstance", "identifier", &names.db),
        ("aws:rds:DbSubnetGroup", "name", &names.subnet_group),
        ("aws:iam:Role", "role_name", &names.role),
        ("aws:backup:Vault", "name", &names.vault),
    ] {
        let line = format!(
            "field `{field}`: the name `{name}` is taken: it exists in this account and carries no fabric tags"
        );
        assert!(err.contains(&line) && err.contains(what), "{what}: {err}");
    }
    assert!(err.contains("preflight found 4 problems"), "{err}");
    assert_eq!(writes(&log), Vec::<String>::new(), "preview wrote");
    assert!(!state.join("acme-dev").join("state.json").exists() || fx.tagged("acme-dev").await.is_empty());

    // The names taken after preflight (simulated by skipping it): the deploy fails at those
    // steps, and what failed is settled, not pending.
    let out = acme(&fx, state, &[], &["deploy", "--local", "--yes", "--skip-preflight"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("RDS instance {} already exists and is not this stack's", names.db))
            || err.contains(&format!("DB subnet group {} already exists and is not this stack's", names.subnet_group)),
        "{err}"
    );
    assert!(!fx.tagged("acme-dev").await.is_empty(), "the rest was created");

    // Destroy: everything the stack made goes, at the first try; the foreign four are untouched.
    let out = acme(&fx, state, &[], &["destroy", "--local", "--yes"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("recovering"), "{err}");
    assert_eq!(fx.tagged("acme-dev").await, vec![]);
    let out = acme(&fx, state, &[], &["state", "list", "--local"]);
    assert!(text(&out.stderr).contains("0 resources in stack `acme-dev`"), "{}", text(&out.stderr));
    let roles = fx.aws.iam.list_roles().send().await.unwrap();
    let acme_roles: Vec<&str> =
        roles.roles().iter().map(|r| r.role_name()).filter(|r| r.starts_with("acme-dev")).collect();
    assert_eq!(acme_roles, [names.role.as_str()], "only the foreign role is left");
    let instances = fx.aws.rds.describe_db_instances().send().await.unwrap();
    assert_eq!(instances.db_instances().len(), 1);
    assert_eq!(foreign_settings(&fx, &names).await, before, "the foreign resources are as they were");
}
