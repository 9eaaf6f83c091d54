//! Route 53 against the emulator: a zone and its records through create, no-op, update, replace,
//! drift and destroy; an existing zone looked up by domain; bad input.

use fabric::aws::route53::{HostedZone, Record, RecordValue};
use fabric::engine::Summary;
use fabric::model::{Output, Stack};
use fabric_tests::Fixture;
use std::sync::Arc;

struct Cfg {
    www_target: &'static str,
    txt: &'static str,
    api_name: &'static str,
    ttl: i64,
}

fn graph(cfg: &Cfg) -> Arc<fabric::model::Graph> {
    let mut s = Stack::new("dns");
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    Record::builder()
        .name("www")
        .zone(&zone)
        .record_name("www")
        .value(RecordValue::Cname(cfg.www_target.into()))
        .ttl(cfg.ttl)
        .build()
        .add(&mut s)
        .unwrap();
    Record::builder()
        .name("verify")
        .zone(&zone)
        .record_name("")
        .value(RecordValue::Txt(vec![cfg.txt.into()]))
        .build()
        .add(&mut s)
        .unwrap();
    Record::builder()
        .name("api")
        .zone(&zone)
        .record_name(cfg.api_name)
        .value(RecordValue::A(vec!["192.0.2.10".into()]))
        .build()
        .add(&mut s)
        .unwrap();
    Record::builder()
        .name("apex")
        .zone(&zone)
        .record_name("")
        .value(RecordValue::AliasA {
            dns_name: Output::known("edge-123.us-east-2.elb.amazonaws.com".to_string()),
            zone_id: Output::known("Z3AADJGX6KTTL2".to_string()),
        })
        .build()
        .add(&mut s)
        .unwrap();
    s.export("name_servers", zone.name_servers());
    Arc::new(s.finish().unwrap())
}

/// The zone's records, without NS, SOA and fabric's owner records.
async fn records(fx: &Fixture, zone_id: &str) -> Vec<(String, String, Vec<String>)> {
    all_records(fx, zone_id).await.into_iter().filter(|(n, _, _)| !n.starts_with("_fabric-")).collect()
}

/// The zone's records but NS and SOA, owner records included.
async fn all_records(fx: &Fixture, zone_id: &str) -> Vec<(String, String, Vec<String>)> {
    let out = fx.aws.route53.list_resource_record_sets().hosted_zone_id(zone_id).send().await.unwrap();
    let mut v: Vec<_> = out
        .resource_record_sets()
        .iter()
        .map(|r| {
            let values = match r.alias_target() {
                Some(a) => vec![format!("alias {}", a.dns_name())],
                None => r.resource_records().iter().map(|v| v.value().to_string()).collect(),
            };
            (r.name().to_string(), r.r#type().as_str().to_string(), values)
        })
        .filter(|(_, t, _)| t != "NS" && t != "SOA")
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_and_records_lifecycle() {
    let fx = Fixture::start().await;
    let engine = fx.engine("dns").await;
    let mut cfg = Cfg { www_target: "acme.example", txt: "v=spf1 -all", api_name: "api", ttl: 300 };
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary(), Summary { create: 5, ..Summary::default() });
    let state = engine.store.load().await.unwrap();
    let zone_id =
        state.resources.iter().find(|(u, _)| u.type_name() == "aws:route53:HostedZone").unwrap().1.outputs["id"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(!state.outputs["name_servers"].as_array().unwrap().is_empty());
    assert_eq!(
        records(&fx, &zone_id).await,
        vec![
            ("acme.example.".into(), "A".into(), vec!["alias edge-123.us-east-2.elb.amazonaws.com".into()]),
            ("acme.example.".into(), "TXT".into(), vec!["\"v=spf1 -all\"".into()]),
            ("api.acme.example.".into(), "A".into(), vec!["192.0.2.10".into()]),
            ("www.acme.example.".into(), "CNAME".into(), vec!["acme.example".into()]),
        ]
    );

    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph(&cfg)).await;
    assert_eq!(plan.summary(), Summary { same: 5, ..Summary::default() });
    assert!(fx.aws.calls.calls().is_empty());
    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut state, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    // Update in place (UPSERT), and a record renamed: created anew, the old one deleted.
    cfg.www_target = "cdn.acme.example";
    cfg.ttl = 60;
    cfg.txt = "v=spf1 include:mail.example -all";
    cfg.api_name = "api-v2";
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary(), Summary { update: 2, replace: 1, same: 2, ..Summary::default() });
    let now = records(&fx, &zone_id).await;
    assert!(now.contains(&("www.acme.example.".into(), "CNAME".into(), vec!["cdn.acme.example".into()])), "{now:?}");
    assert!(now.iter().any(|(n, _, _)| n == "api-v2.acme.example."));
    assert!(!now.iter().any(|(n, _, _)| n == "api.acme.example."), "{now:?}");

    // A record deleted out of band is drift; deploy writes it again.
    fx.aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(
                    aws_sdk_route53::types::Change::builder()
                        .action(aws_sdk_route53::types::ChangeAction::Delete)
                        .resource_record_set(
                            aws_sdk_route53::types::ResourceRecordSet::builder()
                                .name("www.acme.example.")
                                .r#type(aws_sdk_route53::types::RrType::Cname)
                                .ttl(60)
                                .resource_records(
                                    aws_sdk_route53::types::ResourceRecord::builder()
                                        .value("cdn.acme.example")
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (mut state, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut state, None, true).await.unwrap();
    assert!(drift.render().contains("aws:route53:Record \"www\" was deleted outside fabric"), "{}", drift.render());
    let (plan, report) = fx.deploy(&engine, graph(&cfg)).await;
    assert!(report.ok());
    assert_eq!(plan.summary().create, 1);

    // Another stack refers to the zone by domain, and destroying it leaves the zone alone.
    let mut s = Stack::new("dns-user");
    let zone = HostedZone::existing("acme.example").add(&mut s).unwrap();
    Record::builder()
        .name("mail")
        .zone(&zone)
        .record_name("mail")
        .value(RecordValue::A(vec!["192.0.2.25".into()]))
        .build()
        .add(&mut s)
        .unwrap();
    let other = fx.engine("dns-user").await;
    let (plan, report) = fx.deploy(&other, Arc::new(s.finish().unwrap())).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().create, 2);
    assert!(records(&fx, &zone_id).await.iter().any(|(n, _, _)| n == "mail.acme.example."));
    assert!(fabric::engine::Session::destroy_all(&other).await.unwrap().1.ok());
    assert!(!records(&fx, &zone_id).await.iter().any(|(n, _, _)| n == "mail.acme.example."));

    // Destroy: records first, then the zone.
    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(fx.aws.route53.get_hosted_zone().id(&zone_id).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_existing_zone_is_a_clear_error() {
    let fx = Fixture::start().await;
    let mut s = Stack::new("dns");
    HostedZone::existing("nowhere.example").add(&mut s).unwrap();
    let engine = fx.engine("dns").await;
    let (_, report) = fx.deploy(&engine, Arc::new(s.finish().unwrap())).await;
    let fabric::engine::Outcome::Failed(m) = &report.results[0].outcome else { panic!("{report:?}") };
    assert!(m.contains("no public hosted zone named nowhere.example."), "{m}");
}

#[test]
fn invalid_dns_input_is_rejected_before_any_call() {
    let mut s = Stack::new("dns");
    let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
    HostedZone::builder().name("bad").domain("localhost").build().add(&mut s).unwrap();
    Record::builder()
        .name("apex-cname")
        .zone(&zone)
        .record_name("")
        .value(RecordValue::Cname("x.example".into()))
        .build()
        .add(&mut s)
        .unwrap();
    Record::builder()
        .name("outside")
        .zone(&zone)
        .record_name("www.other.example.")
        .value(RecordValue::A(vec!["192.0.2.1".into()]))
        .build()
        .add(&mut s)
        .unwrap();
    Record::builder()
        .name("bad-ip")
        .zone(&zone)
        .record_name("x")
        .value(RecordValue::A(vec!["300.1.1.1".into()]))
        .build()
        .add(&mut s)
        .unwrap();
    Record::builder()
        .name("long-txt")
        .zone(&zone)
        .record_name("t")
        .value(RecordValue::Txt(vec!["x".repeat(300)]))
        .build()
        .add(&mut s)
        .unwrap();
    Record::builder()
        .name("bad-label")
        .zone(&zone)
        .record_name("-x")
        .value(RecordValue::A(vec!["192.0.2.1".into()]))
        .build()
        .add(&mut s)
        .unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "aws:route53:HostedZone \"bad\" field `domain`: `localhost` is not a domain name",
        "aws:route53:Record \"apex-cname\" field `record_name`: a CNAME cannot be at the zone apex",
        "aws:route53:Record \"outside\" field `record_name`: `www.other.example.` is not inside zone acme.example.",
        "aws:route53:Record \"bad-ip\" field `value`: `300.1.1.1` is not an IPv4 address",
        "aws:route53:Record \"long-txt\" field `value`: a TXT string is longer than 255 characters",
        "aws:route53:Record \"bad-label\" field `record_name`: `-x` is not a DNS name",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}

async fn put_record(fx: &Fixture, zone_id: &str, name: &str, rr_type: &str, values: &[&str]) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    let mut set = ResourceRecordSet::builder().name(name).r#type(RrType::from(rr_type)).ttl(300);
    for v in values {
        set = set.resource_records(ResourceRecord::builder().value(*v).build().unwrap());
    }
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(set.build().unwrap()).build();
    fx.aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(ChangeBatch::builder().changes(change.unwrap()).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// The acme prod case: a `www` record that was already in an existing zone is neither overwritten
/// by deploy nor deleted by destroy; marked as the stack's (as the error says), it is adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_are_not_ours_are_never_overwritten_or_deleted() {
    let fx = Fixture::start().await;
    let zone =
        fx.aws.route53.create_hosted_zone().name("shop.example").caller_reference("by-hand").send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    put_record(&fx, &zone_id, "www.shop.example.", "A", &["203.0.113.7"]).await;
    let program = || {
        let mut s = Stack::new("shop-dns");
        let zone = HostedZone::existing("shop.example").add(&mut s).unwrap();
        for (name, ip) in [("www", "192.0.2.10"), ("api", "192.0.2.11")] {
            Record::builder()
                .name(name)
                .zone(&zone)
                .record_name(name)
                .value(RecordValue::A(vec![ip.into()]))
                .build()
                .add(&mut s)
                .unwrap();
        }
        Arc::new(s.finish().unwrap())
    };
    let engine = fx.engine("shop-dns").await;
    let (_, report) = fx.deploy(&engine, program()).await;
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let fabric::engine::Outcome::Failed(m) = &failed[0].outcome else { unreachable!() };
    assert!(m.contains("Route 53 record www.shop.example. A already exists") && m.contains("[203.0.113.7]"), "{m}");
    assert!(m.contains("nothing was changed") && m.contains("_fabric-a.www.shop.example."), "{m}");
    // Once the zone's id is known (recorded), the names check preview runs finds `www` with one
    // listing of the zone; `api` is this stack's now.
    let graph = program();
    let plan = fx.preview(&engine, &graph).await;
    let state = engine.store.load().await.unwrap();
    let names = fabric::engine::names::check(&engine.ctx, &graph, &plan, &state).await;
    let problems: Vec<String> = names.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 1, "{problems:?} {:?}", names.skipped);
    assert!(problems[0].contains("aws:route53:Record \"www\" field `name`: the name `www.shop.example. A` is taken: it holds [203.0.113.7] and carries no fabric owner record"), "{problems:?}");
    let now = records(&fx, &zone_id).await;
    assert!(now.contains(&("www.shop.example.".into(), "A".into(), vec!["203.0.113.7".into()])), "untouched: {now:?}");
    assert!(now.contains(&("api.shop.example.".into(), "A".into(), vec!["192.0.2.11".into()])), "{now:?}");
    let all = all_records(&fx, &zone_id).await;
    let marker = all.iter().find(|(n, t, _)| n == "_fabric-a.api.shop.example." && t == "TXT").expect("owner record");
    assert!(marker.2.iter().any(|v| v.contains("fabric:urn=shop-dns::aws:route53:Record::api")), "{marker:?}");

    // Destroy deletes the stack's record and its owner record; theirs stays.
    assert!(fabric::engine::Session::destroy_all(&engine).await.unwrap().1.ok());
    let now = all_records(&fx, &zone_id).await;
    assert_eq!(now, vec![("www.shop.example.".into(), "A".into(), vec!["203.0.113.7".into()])], "owner records go too");

    // Marked as this stack's, as the error said: adopted, and made what the program says.
    let values = ["\"fabric:stack=shop-dns\"", "\"fabric:urn=shop-dns::aws:route53:Record::www\""];
    put_record(&fx, &zone_id, "_fabric-a.www.shop.example.", "TXT", &values).await;
    let (_, report) = fx.deploy(&engine, program()).await;
    assert!(report.ok(), "{report:?}");
    let now = records(&fx, &zone_id).await;
    assert!(now.contains(&("www.shop.example.".into(), "A".into(), vec!["192.0.2.10".into()])), "{now:?}");
    assert!(!fx.preview(&engine, &program()).await.has_changes());
}
