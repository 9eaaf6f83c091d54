//! Snapshots of what the components generate, and their validation.

use fabric::prelude::*;
use fabric::testing::{plan_against, rendered_inputs, synthesize};

#[test]
fn vpc_per_zone_nat_generates_a_three_zone_two_tier_network() {
    let graph = synthesize("snap", |s| {
        Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::PerZone).build().add(s)?;
        Ok(())
    })
    .unwrap();
    insta::assert_json_snapshot!(rendered_inputs(&graph));
    let plan = plan_against(&graph, &fabric::state::State::new("snap"));
    insta::assert_snapshot!(fabric::engine::render::render_plan(&plan));
}

#[test]
fn vpc_without_nat_is_public_only_in_named_zones() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder()
            .name("ref")
            .cidr("10.1.0.0/16")
            .zones(["us-east-2a", "us-east-2b", "us-east-2c"])
            .nat(Nat::None)
            .build()
            .add(s)?;
        assert!(net.private_subnets().is_empty());
        Ok(())
    })
    .unwrap();
    let types: Vec<&str> = graph.nodes().iter().map(|n| n.type_name()).collect();
    assert!(!types.contains(&"aws:ec2:NatGateway") && !types.contains(&"aws:ec2:AvailabilityZones"), "{types:?}");
    insta::assert_json_snapshot!(rendered_inputs(&graph));
}

#[test]
fn single_nat_serves_every_private_zone() {
    let graph = synthesize("snap", |s| {
        Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(s)?;
        Ok(())
    })
    .unwrap();
    let nats = graph.nodes().iter().filter(|n| n.type_name() == "aws:ec2:NatGateway").count();
    let egress: Vec<_> = graph.nodes().iter().filter(|n| n.urn.name().ends_with("-egress")).collect();
    assert_eq!((nats, egress.len()), (1, 2));
    for e in egress {
        assert!(e.deps.iter().any(|d| d.name() == "main/nat-a"), "{:?}", e.deps);
    }
}

type Program = Box<dyn FnOnce(&mut Stack) -> fabric::Result<()>>;

#[test]
fn invalid_vpcs_are_rejected_with_field_and_fix() {
    let cases: Vec<(Program, &str)> = vec![
        (
            Box::new(|s| Vpc::builder().name("one").cidr("10.0.0.0/16").zones(1).build().add(s).map(|_| ())),
            "fabric:Vpc \"one\" field `zones`: 1 zone(s) asked for; a production network spans 2 to 6",
        ),
        (
            Box::new(|s| Vpc::builder().name("many").cidr("10.0.0.0/16").zones(7).build().add(s).map(|_| ())),
            "fabric:Vpc \"many\" field `zones`: 7 zone(s)",
        ),
        (
            Box::new(|s| Vpc::builder().name("small").cidr("10.0.0.0/26").build().add(s).map(|_| ())),
            "fabric:Vpc \"small\" field `cidr`: 10.0.0.0/26 is too small",
        ),
        (
            Box::new(|s| {
                Vpc::builder()
                    .name("twice")
                    .cidr("10.0.0.0/16")
                    .zones(["us-east-2a", "us-east-2a"])
                    .build()
                    .add(s)
                    .map(|_| ())
            }),
            "fabric:Vpc \"twice\" field `zones`: a zone is named twice",
        ),
        (
            Box::new(|s| Vpc::builder().name("bad").cidr("10.0.0.0/99").build().add(s).map(|_| ())),
            "aws:ec2:Vpc \"bad\" field `cidr`: `10.0.0.0/99` is not an IPv4 CIDR block",
        ),
        (
            Box::new(|s| {
                Vpc::builder()
                    .name("zone")
                    .cidr("10.0.0.0/16")
                    .zones(["us-east-2a", "nowhere"])
                    .build()
                    .add(s)
                    .map(|_| ())
            }),
            "aws:ec2:Subnet \"zone/public-b\" field `zone`: `nowhere` is not an availability zone name",
        ),
    ];
    for (program, expected) in cases {
        let err = synthesize("bad", program).err().expect(expected).to_string();
        assert!(err.contains(expected), "expected `{expected}` in\n{err}");
    }
}

/// Generated inputs of the nodes whose type starts with one of `prefixes`.
fn inputs_of(graph: &fabric::model::Graph, prefixes: &[&str]) -> serde_json::Value {
    let all = rendered_inputs(graph);
    let kept: serde_json::Map<String, serde_json::Value> = all
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| prefixes.iter().any(|p| v["type"].as_str().unwrap_or("").starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::Value::Object(kept)
}

#[test]
fn rds_postgres_generates_a_private_encrypted_multi_az_instance() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(s)?;
        let app = SecurityGroup::builder().name("app").vpc(net.vpc()).build().add(s)?;
        let db = RdsPostgres::builder().name("db").network(&net).allow_from(vec![&app]).build().add(s)?;
        s.export("db_url", db.url());
        Ok(())
    })
    .unwrap();
    let generated = inputs_of(&graph, &["aws:rds:", "fabric:random:"]);
    let db = &generated["snap::aws:rds:DbInstance::db"]["inputs"];
    assert_eq!(
        (db["multi_az"].as_bool(), db["storage_encrypted"].as_bool(), db["publicly_accessible"].as_bool()),
        (Some(true), Some(true), Some(false))
    );
    insta::assert_json_snapshot!(generated);
    insta::assert_json_snapshot!("rds_security", inputs_of(&graph, &["aws:ec2:SecurityGroup"]));
}

#[test]
fn aurora_postgres_generates_a_tls_only_cluster_with_a_writer_and_readers_over_the_zones() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(s)?;
        let app = SecurityGroup::builder().name("app").vpc(net.vpc()).build().add(s)?;
        let db =
            AuroraPostgres::builder().name("orders").network(&net).readers(2).allow_from(vec![&app]).build().add(s)?;
        AuroraPostgres::builder()
            .name("events")
            .network(&net)
            .serverless_v2(Acus { min: 0.5, max: 16.0 })
            .readers(0)
            .build()
            .add(s)?;
        s.export("db_url", db.url());
        s.export("db_reader_url", db.reader_url().unwrap());
        Ok(())
    })
    .unwrap();
    let generated = inputs_of(&graph, &["aws:rds:", "aws:ec2:SecurityGroup", "fabric:random:"]);
    let cluster = &generated["snap::aws:rds:DbCluster::orders"]["inputs"];
    assert_eq!(
        (cluster["storage_encrypted"].as_bool(), cluster["deletion_protection"].as_bool()),
        (Some(true), Some(true))
    );
    let group = &generated["snap::aws:rds:DbClusterParameterGroup::orders"]["inputs"];
    assert_eq!(group["parameters"]["rds.force_ssl"], "1");
    insta::assert_json_snapshot!(generated);
}

#[test]
fn redis_generates_a_tls_only_group_with_a_replica_per_zone() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(s)?;
        let app = SecurityGroup::builder().name("app").vpc(net.vpc()).build().add(s)?;
        let cache = Redis::builder().name("cache").network(&net).allow_from(vec![&app]).build().add(s)?;
        s.export("redis_url", cache.url());
        Ok(())
    })
    .unwrap();
    let generated = inputs_of(&graph, &["aws:elasticache:", "aws:ec2:SecurityGroup", "fabric:random:"]);
    let group = &generated["snap::aws:elasticache:ReplicationGroup::cache"]["inputs"];
    assert_eq!(
        (group["transit_encryption"].as_bool(), group["at_rest_encryption"].as_bool()),
        (Some(true), Some(true))
    );
    insta::assert_json_snapshot!(generated);
}

#[test]
fn dns_and_iam_generate_what_they_say() {
    use fabric::aws::iam::{PolicyDocument, Role, RolePolicy, RolePolicyAttachment, aws_managed_policy};
    use fabric::aws::route53::{HostedZone, Record, RecordValue};
    let graph = synthesize("snap", |s| {
        let zone = HostedZone::builder().name("main").domain("acme.example").build().add(s)?;
        Record::builder()
            .name("www")
            .zone(&zone)
            .record_name("www")
            .value(RecordValue::Cname("acme.example".into()))
            .build()
            .add(s)?;
        Record::builder()
            .name("spf")
            .zone(&zone)
            .record_name("")
            .value(RecordValue::Txt(vec!["v=spf1 -all".into()]))
            .build()
            .add(s)?;
        let role = Role::builder()
            .name("backup")
            .trust(PolicyDocument::trust_services(&["backup.amazonaws.com"]))
            .build()
            .add(s)?;
        RolePolicyAttachment::builder()
            .name("backup")
            .role(&role)
            .policy_arn(aws_managed_policy("service-role/AWSBackupServiceRolePolicyForBackup"))
            .build()
            .add(s)?;
        RolePolicy::builder()
            .name("read")
            .role(&role)
            .policy(PolicyDocument::new().allow(&["s3:GetObject"], &["arn:aws:s3:::b/*"]))
            .build()
            .add(s)?;
        Ok(())
    })
    .unwrap();
    insta::assert_json_snapshot!(rendered_inputs(&graph));
}

#[test]
fn backup_plan_generates_vault_role_plan_and_selection() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(s)?;
        let db = RdsPostgres::builder().name("db").network(&net).build().add(s)?;
        BackupPlan::builder()
            .name("daily")
            .daily_at("05:00")
            .keep_days(120)
            .cold_after_days(30)
            .weekly(Weekly { day: "SUN", at: "06:00".into(), keep_days: 365 })
            .protect(&db)
            .build()
            .add(s)?;
        Ok(())
    })
    .unwrap();
    insta::assert_json_snapshot!(inputs_of(&graph, &["aws:backup:", "aws:iam:"]));
}

#[test]
fn invalid_backup_plans_are_rejected() {
    let err = synthesize("bad", |s| {
        BackupPlan::builder().name("a").daily_at("25:00").keep_days(0).build().add(s)?;
        BackupPlan::builder()
            .name("b")
            .keep_days(60)
            .cold_after_days(30)
            .by_tag("backup", "yes")
            .copy_to_vault_arn("vault")
            .build()
            .add(s)?;
        Ok(())
    })
    .err()
    .unwrap()
    .to_string();
    for expected in [
        "aws:backup:Plan \"a\" field `daily_at`: `25:00` is not a UTC time of day",
        "aws:backup:Plan \"a\" field `keep_days`",
        "aws:backup:Plan \"a\" field `protect`: the plan protects nothing",
        "aws:backup:Plan \"b\" field `cold_after_days`: cold storage after 30 days needs at least 120 days",
        "aws:backup:Plan \"b\" field `copy_to_vault_arn`: `vault` is not a backup vault ARN",
    ] {
        assert!(err.contains(expected), "expected `{expected}` in\n{err}");
    }
}

#[test]
fn alb_ingress_generates_https_edge_and_routes() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder().name("main").cidr("10.0.0.0/16").nat(Nat::None).build().add(s)?;
        let zone = fabric::aws::route53::HostedZone::builder().name("main").domain("acme.example").build().add(s)?;
        let edge = AlbIngress::builder().name("edge").network(&net).zone(&zone).build().add(s)?;
        edge.route(s, "api", "api.acme.example", 30080, "/healthz")?;
        Ok(())
    })
    .unwrap();
    insta::assert_json_snapshot!(inputs_of(
        &graph,
        &["aws:elbv2:", "aws:acm:", "aws:route53:Record", "aws:ec2:SecurityGroup"]
    ));
}

#[test]
fn search_domain_generates_a_zone_aware_https_only_domain_behind_fine_grained_access() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(s)?;
        let app = SecurityGroup::builder().name("app").vpc(net.vpc()).build().add(s)?;
        let search = SearchDomain::builder().name("search").network(&net).allow_from(vec![&app]).build().add(s)?;
        s.export("search_url", search.url());
        Ok(())
    })
    .unwrap();
    let generated = inputs_of(&graph, &["aws:opensearch:", "aws:ec2:SecurityGroup", "fabric:random:"]);
    let domain = &generated["snap::aws:opensearch:Domain::search"]["inputs"];
    assert_eq!(
        (
            domain["enforce_https"].as_bool(),
            domain["node_to_node_encryption"].as_bool(),
            domain["at_rest_encryption"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!((domain["zone_count"].as_i64(), domain["instance_count"].as_i64()), (Some(3), Some(3)));
    assert_eq!(domain["access_policy"], "domain-only");
    insta::assert_json_snapshot!(generated);
}
