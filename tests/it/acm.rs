//! A DNS-validated certificate against the emulator: the validation records land in the zone, the
//! deploy waits for ISSUED, a re-deploy calls nothing, destroy removes records and certificate.
//! (The emulator issues certificates after a fixed wait whatever the records say; that the records
//! are written is checked here, in the zone.)

use fabric::aws::acm::Certificate;
use fabric::aws::route53::HostedZone;
use fabric::model::Stack;
use fabric_tests::Fixture;
use std::sync::Arc;

fn graph() -> Arc<fabric::model::Graph> {
    graph_with(&["*.acme.example", "api.acme.example"], "platform")
}

fn graph_with(alt_names: &[&str], team: &str) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("tls");
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    let cert = Certificate::builder()
        .name("edge")
        .domain("acme.example")
        .alt_names(alt_names.iter().map(|n| n.to_string()).collect())
        .zone(&zone)
        .tags(fabric::prelude::tags([("team", team)]))
        .build()
        .add(&mut s)
        .unwrap();
    s.export("certificate", cert.arn());
    Arc::new(s.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_is_validated_through_the_zone() {
    let fx = Fixture::start().await;
    let engine = fx.engine("tls").await;
    let (_, report) = fx.deploy(&engine, graph()).await;
    assert!(report.ok(), "{report:?}");
    let state = engine.store.load().await.unwrap();
    let arn = state.outputs["certificate"].as_str().unwrap().to_string();
    let cert = fx.aws.acm.describe_certificate().certificate_arn(&arn).send().await.unwrap();
    assert_eq!(cert.certificate().unwrap().status(), Some(&aws_sdk_acm::types::CertificateStatus::Issued));
    let zone_id =
        state.resources.iter().find(|(u, _)| u.type_name() == "aws:route53:HostedZone").unwrap().1.outputs["id"]
            .as_str()
            .unwrap()
            .to_string();
    let cnames = |fx: &Fixture| {
        let fx_aws = fx.aws.clone();
        let zone_id = zone_id.clone();
        async move {
            let sets = fx_aws.route53.list_resource_record_sets().hosted_zone_id(&zone_id).send().await.unwrap();
            sets.resource_record_sets()
                .iter()
                .filter(|r| r.r#type().as_str() == "CNAME")
                .map(|r| r.name().to_string())
                .collect::<Vec<_>>()
        }
    };
    let written = cnames(&fx).await;
    // acme.example and *.acme.example share a record; api.acme.example has its own.
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written.iter().all(|n| n.starts_with('_') && n.ends_with("acme.example.")), "{written:?}");

    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph()).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty(), "{:?}", fx.aws.calls.calls());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // A tag changes in place; a new name replaces the certificate (new one issued first).
    let (plan, report) = fx.deploy(&engine, graph_with(&["*.acme.example", "api.acme.example"], "web")).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().update, 1, "{}", fabric::engine::render::render_plan(&plan));
    let tags = fx.aws.acm.list_tags_for_certificate().certificate_arn(&arn).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "team" && t.value() == Some("web")));
    let (plan, report) = fx.deploy(&engine, graph_with(&["*.acme.example"], "web")).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().replace, 2, "certificate and validation: {}", fabric::engine::render::render_plan(&plan));
    let state = engine.store.load().await.unwrap();
    let new_arn = state.outputs["certificate"].as_str().unwrap().to_string();
    assert_ne!(new_arn, arn);
    assert!(
        fx.aws.acm.describe_certificate().certificate_arn(&arn).send().await.is_err(),
        "the old certificate is gone"
    );
    let arn = new_arn;

    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(fx.aws.acm.describe_certificate().certificate_arn(&arn).send().await.is_err());
    assert!(fx.aws.route53.get_hosted_zone().id(&zone_id).send().await.is_err(), "records went first, then the zone");
}

#[test]
fn names_outside_the_zone_are_rejected() {
    let mut s = Stack::new("tls");
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    Certificate::builder().name("other").domain("other.example").zone(&zone).build().add(&mut s).unwrap();
    Certificate::builder()
        .name("bad")
        .domain("acme.example")
        .alt_names(vec!["no_such..name".into()])
        .zone(&zone)
        .build()
        .add(&mut s)
        .unwrap();
    Certificate::builder()
        .name("quick")
        .domain("acme.example")
        .zone(&zone)
        .validation_timeout(std::time::Duration::from_secs(5))
        .build()
        .add(&mut s)
        .unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:acm:Certificate \"other\" field `zone`: `other.example` is not inside zone acme.example.",
        "aws:acm:Certificate \"bad\" field `domain`: `no_such..name` is not a domain name",
        "aws:acm:Certificate \"quick\" field `validation_timeout`",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}
