//! OpenSearch (a `SearchDomain`) against the emulator: a VPC domain over three zones, encrypted
//! at rest and between nodes, HTTPS only with TLS 1.2, fine-grained access control with a
//! generated master user kept secret, the domain-only access policy; no-op; a TLS policy changed
//! in place; an instance type change planned as a blue/green deployment and applied in place;
//! a new key replaces the domain; a domain someone else holds under the same name is found by the
//! names check and refused by the deploy, and left as it was; destroy leaves nothing.
//!
//! What the emulator cannot show (an engine upgrade, which it has no API for; the wait through a
//! domain that is still processing; preflight's version and instance type checks) is tested at
//! the request level in `sdk/src/aws/opensearch/`.

use fabric::engine::{Outcome, StepOp};
use fabric::model::NothingKnown;
use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

#[derive(Clone)]
struct Cfg {
    instance_type: &'static str,
    tls_policy: &'static str,
    with_key: bool,
}

const CFG: Cfg =
    Cfg { instance_type: "m7g.large.search", tls_policy: "Policy-Min-TLS-1-2-PFS-2023-10", with_key: false };

fn graph(cfg: &Cfg) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("find");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::Single).build().add(&mut s).unwrap();
    let app = SecurityGroup::builder().name("app").vpc(net.vpc()).description("app").build().add(&mut s).unwrap();
    let key =
        fabric::aws::kms::KmsKey::builder().name("search").description("search domain").build().add(&mut s).unwrap();
    let search = if cfg.with_key {
        SearchDomain::builder()
            .name("search")
            .network(&net)
            .instance_type(cfg.instance_type)
            .tls_policy(cfg.tls_policy)
            .allow_from(vec![&app])
            .kms_key(&key)
            .build()
            .add(&mut s)
    } else {
        SearchDomain::builder()
            .name("search")
            .network(&net)
            .instance_type(cfg.instance_type)
            .tls_policy(cfg.tls_policy)
            .allow_from(vec![&app])
            .build()
            .add(&mut s)
    }
    .unwrap();
    s.export("search_url", search.url());
    s.export("search_endpoint", search.endpoint());
    Arc::new(s.finish().unwrap())
}

fn domain_step(plan: &fabric::engine::Plan) -> &fabric::engine::Step {
    plan.steps.iter().find(|s| s.type_name == "aws:opensearch:Domain").unwrap()
}

async fn domains(fx: &Fixture) -> Vec<aws_sdk_opensearch::types::DomainStatus> {
    let names = fx.aws.opensearch.list_domain_names().send().await.unwrap();
    let mut out = Vec::new();
    for n in names.domain_names() {
        let d = fx.aws.opensearch.describe_domain().domain_name(n.domain_name().unwrap()).send().await.unwrap();
        out.push(d.domain_status().unwrap().clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_domain_lifecycle() {
    let fx = Fixture::start().await;
    let engine = fx.engine("find").await;
    let mut cfg = CFG;
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let text = fabric::engine::render::render_plan(&plan);
    assert!(text.contains("master_password = (known after apply)"), "{text}");

    let all = domains(&fx).await;
    assert_eq!(all.len(), 1);
    let d = &all[0];
    let cluster = d.cluster_config().unwrap();
    assert_eq!((cluster.instance_count(), cluster.zone_awareness_enabled()), (Some(3), Some(true)));
    assert_eq!(cluster.zone_awareness_config().unwrap().availability_zone_count(), Some(3));
    assert_eq!(d.vpc_options().unwrap().subnet_ids().len(), 3);
    assert_eq!(d.vpc_options().unwrap().security_group_ids().len(), 1);
    assert_eq!(d.ebs_options().unwrap().volume_type().map(|t| t.as_str()), Some("gp3"));
    assert_eq!(d.encryption_at_rest_options().unwrap().enabled(), Some(true));
    assert_eq!(d.node_to_node_encryption_options().unwrap().enabled(), Some(true));
    let endpoint = d.domain_endpoint_options().unwrap();
    assert_eq!(endpoint.enforce_https(), Some(true));
    assert_eq!(endpoint.tls_security_policy().map(|p| p.as_str()), Some("Policy-Min-TLS-1-2-PFS-2023-10"));
    let security = d.advanced_security_options().unwrap();
    assert_eq!((security.enabled(), security.internal_user_database_enabled()), (Some(true), Some(true)));
    let policy: serde_json::Value = serde_json::from_str(d.access_policies().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Action"], "es:ESHttp*");
    assert_eq!(policy["Statement"][0]["Resource"], format!("{}/*", d.arn()));
    assert_eq!(policy["Statement"].as_array().unwrap().len(), 1);

    // The password and the URL are secrets: encrypted in state, redacted in plans.
    let state = engine.store.load().await.unwrap();
    let url = state.outputs["search_url"]["$secret"].as_str().unwrap().to_string();
    let host = d.endpoints().unwrap()["vpc"].clone();
    assert_eq!(state.outputs["search_endpoint"], serde_json::json!(host));
    assert!(url.starts_with("https://fabric-admin:") && url.ends_with(&format!("@{host}")), "{url}");
    let password = url.trim_start_matches("https://fabric-admin:").split('@').next().unwrap().to_string();
    assert_eq!(password.len(), 36);
    fx.assert_not_in_state("find", &password, "the master password");

    // Re-deploy: all same, no call; refresh sees no drift.
    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // Drift made outside fabric is seen: the access policy opened by hand.
    let name = d.domain_name().to_string();
    let open = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"es:*","Resource":"*"}]}"#;
    fx.aws.opensearch.update_domain_config().domain_name(&name).access_policies(open).send().await.unwrap();
    let drift = engine.refresh(&mut st, None, true).await.unwrap();
    assert!(drift.render().contains("access_policy"), "{}", drift.render());

    // A stricter TLS policy: in place, no blue/green (and the hand-made policy put back).
    cfg.tls_policy = "Policy-Min-TLS-1-2-RFC9151-FIPS-2024-08";
    let plan = fx.preview(&engine, &graph(&cfg)).await;
    assert_eq!(domain_step(&plan).op, StepOp::Update);
    assert!(domain_step(&plan).notes.is_empty(), "{:?}", domain_step(&plan).notes);
    let (_, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let d = &domains(&fx).await[0];
    assert_eq!(
        d.domain_endpoint_options().unwrap().tls_security_policy().map(|p| p.as_str()),
        Some("Policy-Min-TLS-1-2-RFC9151-FIPS-2024-08")
    );
    let policy: serde_json::Value = serde_json::from_str(d.access_policies().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Action"], "es:ESHttp*");

    // A larger instance type: in place, and the plan says it is a blue/green deployment.
    cfg.instance_type = "r7g.large.search";
    let plan = fx.preview(&engine, &graph(&cfg)).await;
    let step = domain_step(&plan);
    assert_eq!(step.op, StepOp::Update);
    assert!(
        step.notes.iter().any(|n| n.starts_with("blue/green deployment") && n.contains("instance type")),
        "{:?}",
        step.notes
    );
    assert!(fabric::engine::render::render_plan(&plan).contains("! blue/green deployment"));
    let (_, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert!(fx.aws.calls.writes().iter().any(|c| c.ends_with("UpdateDomainConfig")), "{:?}", fx.aws.calls.calls());
    let d = &domains(&fx).await[0];
    assert_eq!(d.cluster_config().unwrap().instance_type().map(|t| t.as_str()), Some("r7g.large.search"));
    assert!(!fx.preview(&engine, &graph(&cfg)).await.has_changes());

    // A customer managed key cannot be swapped in: a new domain (new name) replaces it, made
    // before the old one goes.
    cfg.with_key = true;
    let plan = fx.preview(&engine, &graph(&cfg)).await;
    assert_eq!(domain_step(&plan).op, StepOp::Replace);
    let (_, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    let all = domains(&fx).await;
    assert_eq!(all.len(), 1, "the old domain went after the new one");
    assert_ne!(all[0].domain_name(), name);
    assert!(all[0].encryption_at_rest_options().unwrap().kms_key_id().is_some());

    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert!(domains(&fx).await.is_empty());
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}

/// A domain someone else made under the name the program would use: preview's names check finds
/// it with reads only; a deploy meets it at that step, fails it as definite (nothing pending), and
/// the destroy that follows leaves it as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_someone_else_holds_is_found_refused_and_left_alone() {
    let fx = Fixture::start().await;
    let g = graph(&CFG);
    let node = g.nodes().iter().find(|n| n.type_name() == "aws:opensearch:Domain").unwrap();
    let name = node.inputs(&NothingKnown).unwrap()["name"].as_str().unwrap().to_string();
    fx.aws
        .opensearch
        .create_domain()
        .domain_name(&name)
        .engine_version("OpenSearch_2.11")
        .tag_list(aws_sdk_opensearch::types::Tag::builder().key("team").value("data").build().unwrap())
        .send()
        .await
        .unwrap();

    let engine = fx.engine("find").await;
    let (problems, skipped) = fx.names_taken(&engine, &g).await;
    assert_eq!(problems.len(), 1, "{problems:?} {skipped:?}");
    assert!(
        problems[0].contains(&format!("aws:opensearch:Domain \"search\" field `name`: the name `{name}` is taken")),
        "{problems:?}"
    );

    let (_, report) = fx.deploy(&engine, g.clone()).await;
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let Outcome::Failed(m) = &failed[0].outcome else { unreachable!() };
    assert!(m.contains(&format!("OpenSearch domain {name} already exists and is not this stack's")), "{m}");
    let (_, recovered) = engine.load_and_recover(None, true).await.unwrap();
    assert!(recovered.is_empty(), "nothing was left pending: {recovered:?}");

    // The destroy after the failed deploy removes what the deploy made, and leaves theirs.
    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    assert!(engine.store.load().await.unwrap().resources.is_empty());
    let theirs = domains(&fx).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].engine_version(), Some("OpenSearch_2.11"));
    assert!(theirs[0].vpc_options().is_none(), "their domain was not changed");
}

#[test]
fn bad_search_domains_are_refused_before_any_call() {
    let mut s = Stack::new("find");
    let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(&mut s).unwrap();
    let public_only = Vpc::builder().name("edge").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
    SearchDomain::builder().name("uneven").network(&net).instance_count(3).build().add(&mut s).unwrap();
    SearchDomain::builder().name("wide").network(&net).zones(3).instance_count(6).build().add(&mut s).unwrap();
    SearchDomain::builder()
        .name("old-tls")
        .network(&net)
        .instance_count(2)
        .tls_policy("Policy-Min-TLS-1-0-2019-07")
        .build()
        .add(&mut s)
        .unwrap();
    SearchDomain::builder()
        .name("odd")
        .network(&net)
        .instance_count(2)
        .instance_type("m7g.large")
        .engine_version("Elasticsearch_7.10")
        .volume_gb(5)
        .dedicated_masters(fabric::aws::opensearch::Masters { instance_type: "m7g.large.search".into(), count: 2 })
        .build()
        .add(&mut s)
        .unwrap();
    SearchDomain::builder().name("nowhere").network(&public_only).build().add(&mut s).unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:opensearch:Domain \"uneven\" field `instance_count`: 3 data nodes over 2 zones",
        "fix: give a multiple of 2 (2, 4, …)",
        "aws:opensearch:Domain \"wide\" field `zones`: 3 zones, but the network has private subnets in 2",
        "aws:opensearch:Domain \"old-tls\" field `tls_policy`: `Policy-Min-TLS-1-0-2019-07` is not a TLS policy of TLS 1.2 or newer",
        "aws:opensearch:Domain \"odd\" field `instance_type`: `m7g.large` is not an OpenSearch instance type",
        "aws:opensearch:Domain \"odd\" field `engine_version`: `Elasticsearch_7.10` is not an OpenSearch version fabric runs",
        "aws:opensearch:Domain \"odd\" field `volume_gb`: 5 GiB per node",
        "aws:opensearch:Domain \"odd\" field `dedicated_masters`: 2 dedicated masters",
        "aws:opensearch:Domain \"nowhere\" field `network`: the network has 0 private subnets",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}
