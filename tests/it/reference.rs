//! The reference fabric through its command line: two fabrics side by side (`develop`, which owns
//! the team state bucket, and `alice`), each with its own state and resources; a second preview is
//! all `same`; destroying one leaves the other untouched; destroying both leaves nothing.

use fabric_tests::Fixture;
use std::process::Output;

fn reference(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli(crate::stack_command("reference"), fx, state, "reference", args)
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabrics_side_by_side() {
    let fx = Fixture::start().await;
    let develop = tempfile::tempdir().unwrap();
    let alice = tempfile::tempdir().unwrap();

    ok(reference(&fx, develop.path(), &["deploy", "--local", "--yes"]));
    ok(reference(&fx, alice.path(), &["deploy", "--local", "--yes", "--env", "alice"]));

    // Each fabric has its VPC, zone and cluster; only develop has the bucket.
    assert!(!fx.tagged("reference-develop").await.is_empty());
    assert!(!fx.tagged("reference-alice").await.is_empty());
    let zones = fx.aws.route53.list_hosted_zones().send().await.unwrap();
    let mut names: Vec<&str> = zones.hosted_zones().iter().map(|z| z.name()).collect();
    names.sort();
    assert_eq!(names, ["alice.example.com.", "develop.example.com."]);
    let mut clusters = fx.aws.eks.list_clusters().send().await.unwrap().clusters().to_vec();
    clusters.sort();
    assert_eq!(clusters, ["reference-alice-main", "reference-develop-main"]);
    let versioning = fx.aws.s3.get_bucket_versioning().bucket("example-com-state").send().await;
    assert_eq!(fabric::aws::s3::versioning_enabled(versioning), Ok(true));
    let block = fx.aws.s3.get_public_access_block().bucket("example-com-state").send().await.unwrap();
    assert_eq!(block.public_access_block_configuration().and_then(|c| c.block_public_acls()), Some(true));

    // Operator access: develop reaches Session Manager through its three endpoints; alice has
    // a running bastion admitting SSH from her block only.
    let develop_things = fx.tagged("reference-develop").await;
    assert_eq!(develop_things.iter().filter(|(kind, _)| kind == "vpc-endpoint").count(), 3, "{develop_things:?}");
    let alice_things = fx.tagged("reference-alice").await;
    assert_eq!(alice_things.iter().filter(|(kind, _)| kind == "instance").count(), 1, "{alice_things:?}");
    assert!(!develop_things.iter().any(|(kind, _)| kind == "instance"));
    let rules = fx.aws.ec2.describe_security_group_rules().send().await.unwrap();
    let ssh: Vec<&str> = rules
        .security_group_rules()
        .iter()
        .filter(|r| r.from_port() == Some(22) && r.is_egress() == Some(false))
        .filter_map(|r| r.cidr_ipv4())
        .collect();
    assert_eq!(ssh, ["203.0.113.0/24"]);

    for (dir, env) in [(develop.path(), "develop"), (alice.path(), "alice")] {
        // Refresh reads every resource back (the bucket's versioning, tags …): no drift.
        let out = ok(reference(&fx, dir, &["refresh", "--local", "--env", env]));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("no drift"), "{env}: {err}");
        let out = ok(reference(&fx, dir, &["preview", "--local", "--json", "--env", env]));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ops: Vec<&str> = doc["steps"].as_array().unwrap().iter().map(|s| s["op"].as_str().unwrap()).collect();
        assert!(!ops.is_empty() && ops.iter().all(|op| *op == "same"), "{env}: {doc}");
    }

    ok(reference(&fx, alice.path(), &["destroy", "--local", "--yes", "--env", "alice"]));
    assert_eq!(fx.tagged("reference-alice").await, vec![]);
    assert!(!fx.tagged("reference-develop").await.is_empty(), "develop is untouched");

    ok(reference(&fx, develop.path(), &["destroy", "--local", "--yes"]));
    assert_eq!(fx.tagged("reference-develop").await, vec![]);
    assert!(fx.aws.eks.list_clusters().send().await.unwrap().clusters().is_empty());
    assert!(fx.aws.s3.list_buckets().send().await.unwrap().buckets().is_empty());
    assert!(fx.aws.route53.list_hosted_zones().send().await.unwrap().hosted_zones().is_empty());
}

fn dns(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli(crate::stack_command("dns"), fx, state, "dns", args)
}

/// The dns stack reads the develop fabric's zone id and name servers from its state (a stack
/// reference through the shared backend: the state directories side by side): it delegates the
/// zone from the team's root zone to exactly those name servers and writes a record into it.
/// Before the fabric exists, and for an output it lacks, the errors say what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stack_reads_the_fabric_through_a_stack_reference() {
    let fx = Fixture::start().await;
    let root = tempfile::tempdir().unwrap();
    let fabric_state = root.path().join("reference-develop");
    let dns_state = root.path().join("dns-develop");

    let out = dns(&fx, &dns_state, &["preview", "--local"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stack `reference-develop` has no state in this backend"), "{err}");
    assert!(err.contains("deploy stack `reference-develop` first"), "{err}");

    ok(reference(&fx, &fabric_state, &["deploy", "--local", "--yes"]));
    let out = ok(dns(&fx, &dns_state, &["deploy", "--local", "--yes"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("delegated = \"develop.example.com.\""), "{stdout}");

    let zones = fx.aws.route53.list_hosted_zones().send().await.unwrap();
    let zone_id = |name: &str| {
        let z = zones.hosted_zones().iter().find(|z| z.name() == name).unwrap();
        z.id().trim_start_matches("/hostedzone/").to_string()
    };
    let route53 = fx.aws.route53.clone();
    let records = |id: String| {
        let route53 = route53.clone();
        async move {
            route53.list_resource_record_sets().hosted_zone_id(id).send().await.unwrap().resource_record_sets().to_vec()
        }
    };
    let fabric_ns: Vec<String> = {
        let z = fx.aws.route53.get_hosted_zone().id(zone_id("develop.example.com.")).send().await.unwrap();
        z.delegation_set().unwrap().name_servers().iter().map(|n| format!("{}.", n.trim_end_matches('.'))).collect()
    };
    let delegation = records(zone_id("example.com.")).await;
    let ns = delegation.iter().find(|r| r.name() == "develop.example.com." && r.r#type().as_str() == "NS").unwrap();
    let mut values: Vec<String> = ns.resource_records().iter().map(|v| v.value().to_string()).collect();
    values.sort();
    let mut expected = fabric_ns.clone();
    expected.sort();
    assert_eq!(values, expected, "delegated to the fabric zone's own name servers");
    let in_fabric = records(zone_id("develop.example.com.")).await;
    assert!(
        in_fabric.iter().any(|r| r.name() == "_owner.develop.example.com." && r.r#type().as_str() == "TXT"),
        "{in_fabric:?}"
    );
    let out = ok(dns(&fx, &dns_state, &["preview", "--local", "--json"]));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["steps"].as_array().unwrap().iter().all(|s| s["op"] == "same"), "{doc}");

    ok(dns(&fx, &dns_state, &["destroy", "--local", "--yes"]));
    ok(reference(&fx, &fabric_state, &["destroy", "--local", "--yes"]));
}

fn reference_in(fx: &Fixture, state: &std::path::Path, config: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli_in(crate::stack_command("reference"), fx, state, config, args)
}

/// Two numbered fabrics joined: alice names develop in `peers`, reads its VPC, block and route
/// tables from its state, and deploys the peering (requested and accepted) with a route to the
/// other side's block in every route table of both. A second preview is all `same`; destroying
/// alice takes the peering and the routes it put into develop's table, and leaves develop whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_numbered_fabrics_are_peered_with_routes_both_ways() {
    let fx = Fixture::start().await;
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/reference/config");
    for env in ["develop", "staging", "prod", "alice"] {
        std::fs::copy(format!("{shipped}/{env}.toml"), config.join(format!("{env}.toml"))).unwrap();
    }
    let alice_cfg = std::fs::read_to_string(config.join("alice.toml")).unwrap();
    std::fs::write(
        config.join("alice.toml"),
        alice_cfg.replace("network = 10\n", "network = 10\npeers = [\"develop\"]\n"),
    )
    .unwrap();
    let (develop, alice) = (root.path().join("reference-develop"), root.path().join("reference-alice"));

    ok(reference_in(&fx, &develop, &config, &["deploy", "--local", "--yes"]));
    ok(reference_in(&fx, &alice, &config, &["deploy", "--local", "--yes", "--env", "alice"]));

    let ec2 = &fx.aws.ec2;
    let vpc_of = |cidr: &'static str| async move {
        let f = aws_sdk_ec2::types::Filter::builder().name("cidr").values(cidr).build();
        let vpcs = ec2.describe_vpcs().filters(f).send().await.unwrap();
        assert_eq!(vpcs.vpcs().len(), 1, "one VPC numbered {cidr}");
        vpcs.vpcs()[0].vpc_id().unwrap().to_string()
    };
    let (develop_vpc, alice_vpc) = (vpc_of("10.1.0.0/16").await, vpc_of("10.10.0.0/16").await);
    let peerings = ec2.describe_vpc_peering_connections().send().await.unwrap();
    let live: Vec<_> = peerings
        .vpc_peering_connections()
        .iter()
        .filter(|p| p.status().and_then(|s| s.code()).map(|c| c.as_str()) == Some("active"))
        .collect();
    assert_eq!(live.len(), 1, "{peerings:?}");
    let pcx = live[0].vpc_peering_connection_id().unwrap();
    assert_eq!(live[0].requester_vpc_info().and_then(|v| v.vpc_id()), Some(alice_vpc.as_str()));
    assert_eq!(live[0].accepter_vpc_info().and_then(|v| v.vpc_id()), Some(develop_vpc.as_str()));
    let routes_to = |vpc: String, destination: &'static str| async move {
        let f = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(vpc).build();
        let tables = ec2.describe_route_tables().filters(f).send().await.unwrap();
        tables
            .route_tables()
            .iter()
            .filter(|t| t.tags().iter().any(|t| t.key() == Some("fabric:stack")))
            .map(|t| {
                t.routes()
                    .iter()
                    .find(|r| r.destination_cidr_block() == Some(destination))
                    .and_then(|r| r.vpc_peering_connection_id())
                    .map(String::from)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(routes_to(alice_vpc.clone(), "10.1.0.0/16").await, [Some(pcx.to_string())], "alice → develop");
    assert_eq!(routes_to(develop_vpc.clone(), "10.10.0.0/16").await, [Some(pcx.to_string())], "develop → alice");
    let eks = fx.aws.eks.describe_cluster().name("reference-alice-main").send().await.unwrap();
    let services = eks.cluster().and_then(|c| c.kubernetes_network_config()).and_then(|k| k.service_ipv4_cidr());
    assert_eq!(services, Some("10.138.0.0/16"));

    let out = ok(reference_in(&fx, &alice, &config, &["preview", "--local", "--json", "--env", "alice"]));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["steps"].as_array().unwrap().iter().all(|s| s["op"] == "same"), "{doc}");

    ok(reference_in(&fx, &alice, &config, &["destroy", "--local", "--yes", "--env", "alice"]));
    assert_eq!(fx.tagged("reference-alice").await, vec![]);
    assert_eq!(
        routes_to(develop_vpc.clone(), "10.10.0.0/16").await,
        [None],
        "alice's route in develop's table is gone"
    );
    let out = ok(reference_in(&fx, &develop, &config, &["preview", "--local", "--json"]));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["steps"].as_array().unwrap().iter().all(|s| s["op"] == "same"), "develop is whole: {doc}");
    ok(reference_in(&fx, &develop, &config, &["destroy", "--local", "--yes"]));
    assert_eq!(fx.tagged("reference-develop").await, vec![]);
}

/// A fabric with the private tier and its data services (`nat`, `[db] engine = "aurora"`,
/// `[cache]`, `[search]`) through the command line: deployed, each service admitting the
/// cluster's nodes only, the URLs exported as secrets; a second preview is all `same`; destroy
/// leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_with_its_data_services() {
    let fx = Fixture::start().await;
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/reference/config");
    let develop = std::fs::read_to_string(format!("{shipped}/develop.toml")).unwrap();
    let sections = "[db]\nengine = \"aurora\"\ninstance_class = \"db.r6g.large\"\nreaders = 1\n\n\
        [cache]\nnode_type = \"cache.t4g.small\"\nreplicas = 2\n\n\
        [search]\ninstance_type = \"m7g.large.search\"\ninstance_count = 3\nvolume_gb = 20\n";
    std::fs::write(config.join("develop.toml"), format!("nat = \"single\"\n{develop}\n{sections}")).unwrap();
    let state = root.path().join("reference-develop");

    let out = ok(reference_in(&fx, &state, &config, &["deploy", "--local", "--yes"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for export in ["db_url = \"[secret]\"", "redis_url = \"[secret]\"", "search_url = \"[secret]\""] {
        assert!(stdout.contains(export), "{export} in {stdout}");
    }
    let clusters = fx.aws.rds.describe_db_clusters().send().await.unwrap();
    assert_eq!(clusters.db_clusters().len(), 1);
    let groups = fx.aws.elasticache.describe_replication_groups().send().await.unwrap();
    assert_eq!(groups.replication_groups().len(), 1);
    let domains = fx.aws.opensearch.list_domain_names().send().await.unwrap();
    assert_eq!(domains.domain_names().len(), 1);

    let out = ok(reference_in(&fx, &state, &config, &["preview", "--local", "--json"]));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["steps"].as_array().unwrap().iter().all(|s| s["op"] == "same"), "{doc}");

    ok(reference_in(&fx, &state, &config, &["destroy", "--local", "--yes"]));
    assert_eq!(fx.tagged("reference-develop").await, vec![]);
    assert!(fx.aws.opensearch.list_domain_names().send().await.unwrap().domain_names().is_empty());
}
