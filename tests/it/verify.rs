//! `verify` of a deployed acme fabric, passing and failing.
//!
//! - Through the command line with `--local`: the checks the emulator can answer (records through
//!   the Route 53 API, the listeners' settings) pass, the others are listed as not checkable;
//!   after an HTTP listener loses its redirect and a record is pointed elsewhere, both are
//!   reported and the exit code is 1.
//! - In-process, as on a real account: HTTPS, the HTTP redirect and DNS through the zone's name
//!   servers are asked of servers this test runs on loopback — an HTTPS server with a certificate
//!   from a test CA, an HTTP server that redirects (or not), and an authoritative DNS server that
//!   answers from the emulator's zone — so a wrong certificate, a missing redirect and a record
//!   pointing elsewhere each fail their check.

use fabric::verify::probe::Probes;
use fabric::verify::{Outcome, Report, Target, verify};
use fabric_tests::Fixture;
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, CNAME, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Output;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::rustls;

fn acme(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    fabric_tests::stack_cli(crate::stack_command("acme"), fx, state, "acme", args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HOSTS: [&str; 2] = ["api.dev.acme.example", "www.dev.acme.example"];

/// The zone id of `domain` and its records, from the emulator.
async fn zone(fx: &Fixture, domain: &str) -> (String, Vec<aws_sdk_route53::types::ResourceRecordSet>) {
    let zones = fx.aws.route53.list_hosted_zones().send().await.unwrap();
    let id = zones.hosted_zones().iter().find(|z| z.name() == domain).unwrap().id().to_string();
    let sets = fx.aws.route53.list_resource_record_sets().hosted_zone_id(&id).send().await.unwrap();
    (id, sets.resource_record_sets().to_vec())
}

/// Breaks the fabric the way `verify` must notice: the HTTP listener forwards instead of
/// redirecting, and `www` points at another load balancer.
async fn break_fabric(fx: &Fixture) {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, FixedResponseActionConfig};
    let lbs = fx.aws.elbv2.describe_load_balancers().send().await.unwrap();
    let lb = lbs.load_balancers()[0].load_balancer_arn().unwrap();
    let listeners = fx.aws.elbv2.describe_listeners().load_balancer_arn(lb).send().await.unwrap();
    let http = listeners.listeners().iter().find(|l| l.port() == Some(80)).unwrap().listener_arn().unwrap();
    let plain = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(FixedResponseActionConfig::builder().status_code("200").build())
        .build();
    fx.aws.elbv2.modify_listener().listener_arn(http).default_actions(plain).send().await.unwrap();

    use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};
    let (id, _) = zone(fx, "dev.acme.example.").await;
    let elsewhere = ResourceRecordSet::builder()
        .name("www.dev.acme.example.")
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .dns_name("other-lb-1.us-east-2.elb.amazonaws.com")
                .hosted_zone_id("Z3AADJGX6KTTL2")
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(elsewhere).build().unwrap();
    let batch = ChangeBatch::builder().changes(change).build().unwrap();
    fx.aws.route53.change_resource_record_sets().hosted_zone_id(id).change_batch(batch).send().await.unwrap();
}

fn lines_of(report: &Report, outcome: Outcome) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| c.outcome == outcome)
        .map(|c| format!("{} {}: {}", c.check, c.subject, c.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_a_sound_fabric_and_names_what_is_broken() {
    let fx = Fixture::start().await;
    let state = fx.state_dir("acme-dev");
    let out = acme(&fx, &state, &["deploy", "--local", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // --local: what the emulator answers passes; the rest is listed, never passed.
    let out = acme(&fx, &state, &["verify", "--local"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for line in [
        "pass  record    api.dev.acme.example. A: → alias ",
        "pass  record    db.acme-dev.internal. CNAME: → ",
        "pass  redirect  edge/http :80: HTTP redirects to HTTPS:443 (HTTP_301)",
        "pass  listener  edge/https :443: HTTPS with certificate arn:aws:acm:",
        "n/a   dns       www.dev.acme.example. A: not checkable locally: the emulator serves no DNS",
        "n/a   https     api https://api.dev.acme.example: not checkable locally",
        "n/a   canary    namespace fabric-verify: not checkable locally: no cluster is reached",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert!(stdout.contains("verify: 5 passed, 0 failed, 8 not checkable"), "{stdout}");
    let out = acme(&fx, &state, &["verify", "--local", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], true, "{doc}");
    assert!(doc["checks"].as_array().unwrap().iter().all(|c| c["outcome"] != "fail"), "{doc}");

    // As on a real account, against loopback servers: everything passes.
    let saved = fx.engine("acme-dev").await.store.load().await.unwrap();
    let ca = TestCa::new();
    let https = serve_https(ca.server_config(&HOSTS)).await;
    let redirecting = serve_http(true).await;
    let dns = serve_dns(&fx).await;
    let probes = |roots: Vec<rustls::pki_types::CertificateDer<'static>>, http: SocketAddr| {
        Probes::with_roots(roots).unwrap().connect_to(443, https.addr).connect_to(80, http).dns_server(dns.addr)
    };
    let target = Target { aws: &fx.aws, local: false, probes: probes(vec![ca.root()], redirecting.addr) };
    let report = verify(&saved, &target).await;
    assert!(report.passed, "{}", report.render());
    let passed = lines_of(&report, Outcome::Pass);
    for line in [
        "https api https://api.dev.acme.example: HTTP 200, certificate valid for api.dev.acme.example",
        "redirect www https://www.dev.acme.example: http://www.dev.acme.example → 301 https://www.dev.acme.example/",
        "dns api.dev.acme.example. A: ",
    ] {
        assert!(passed.iter().any(|l| l.starts_with(line)), "missing `{line}` in:\n{}", report.render());
    }
    let unanswerable = lines_of(&report, Outcome::NotCheckable);
    assert_eq!(unanswerable.len(), 1, "only the private zone's record: {unanswerable:?}");
    assert!(unanswerable[0].contains("private zone: it answers only inside its VPC"), "{unanswerable:?}");

    // A certificate no trusted CA signed, and a plain HTTP answer instead of the redirect.
    let plain = serve_http(false).await;
    let target = Target { aws: &fx.aws, local: false, probes: probes(vec![], plain.addr) };
    let report = verify(&saved, &target).await;
    assert!(!report.passed);
    let failed = lines_of(&report, Outcome::Fail);
    assert_eq!(failed.len(), 4, "{}", report.render());
    assert!(failed.iter().any(|l| l.starts_with("https api") && l.contains("UnknownIssuer")), "{failed:?}");
    assert!(
        failed.iter().any(|l| l.starts_with("redirect www")
            && l.contains("answered HTTP 200 instead of a redirect to https://www.dev.acme.example")),
        "{failed:?}"
    );

    // The listener loses its redirect, and www points at another load balancer.
    break_fabric(&fx).await;
    let out = acme(&fx, &state, &["verify", "--local"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL  redirect  edge/http :80: HTTP does not redirect to HTTPS: its default action is `fixed-response`"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "FAIL  record    www.dev.acme.example. A: points elsewhere: alias other-lb-1.us-east-2.elb.amazonaws.com."
        ),
        "{stdout}"
    );
    assert!(stdout.contains("verify: 3 passed, 2 failed, 8 not checkable"), "{stdout}");
    let target = Target { aws: &fx.aws, local: false, probes: probes(vec![ca.root()], redirecting.addr) };
    let report = verify(&saved, &target).await;
    let failed = lines_of(&report, Outcome::Fail);
    assert!(
        failed.iter().any(|l| l.starts_with("dns www.dev.acme.example. A:") && l.contains("(want alias ")),
        "the name servers answer with the other load balancer: {}",
        report.render()
    );

    let out = acme(&fx, &state, &["destroy", "--local", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = acme(&fx, &state, &["verify", "--local"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("has nothing deployed: deploy it first"), "{}", text(&out.stderr));
}

/// A CA of this test, and certificates it signs.
struct TestCa {
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
    cert: rcgen::Certificate,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "fabric verify test CA");
        let cert = params.self_signed(&key).unwrap();
        TestCa { key, params, cert }
    }

    fn root(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn server_config(&self, hosts: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let leaf = params.signed_by(&key, &issuer).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], der)
            .unwrap();
        Arc::new(config)
    }
}

/// A loopback server, stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `Host` header of a request head.
fn host_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: ")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// HTTPS on loopback: `200 ok` to every request.
async fn serve_https(config: Arc<rustls::ServerConfig>) -> Server {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                read_head(&mut tls).await;
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Server { addr, task }
}

/// Plain HTTP on loopback: a 301 to `https://<host>/`, or (`redirect` false) `200 ok`.
async fn serve_http(redirect: bool) -> Server {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut tcp).await;
                let answer = match redirect {
                    true => format!(
                        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://{}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        host_of(&head)
                    ),
                    false => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string(),
                };
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    Server { addr, task }
}

/// The address a name "resolves" to in this test: one per name, in 192.0.2.0/24.
fn address_of(name: &str) -> Ipv4Addr {
    let sum = name
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    Ipv4Addr::new(192, 0, 2, (sum % 250) as u8 + 1)
}

/// An authoritative DNS server on loopback answering from the emulator's public zones as they
/// are at each query: alias records with their target's address, which it also answers.
async fn serve_dns(fx: &Fixture) -> Server {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let route53 = fx.aws.route53.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let Some(q) = query.queries().first().cloned() else { continue };
            let name = q.name().to_ascii().to_ascii_lowercase();
            let mut answers: Vec<RData> = Vec::new();
            let zones = route53.list_hosted_zones().send().await.unwrap();
            for z in zones.hosted_zones().iter().filter(|z| !z.config().is_some_and(|c| c.private_zone())) {
                let sets = route53.list_resource_record_sets().hosted_zone_id(z.id()).send().await.unwrap();
                for set in sets.resource_record_sets().iter().filter(|s| s.name().to_ascii_lowercase() == name) {
                    if set.r#type().as_str() != q.query_type().to_string() {
                        continue;
                    }
                    if let Some(alias) = set.alias_target() {
                        answers.push(RData::A(A(address_of(alias.dns_name()))));
                    }
                    for r in set.resource_records() {
                        answers.push(match q.query_type() {
                            RecordType::A => RData::A(A(r.value().parse().unwrap())),
                            RecordType::CNAME => RData::CNAME(CNAME(Name::from_ascii(r.value()).unwrap())),
                            RecordType::TXT => RData::TXT(TXT::new(vec![r.value().trim_matches('"').to_string()])),
                            _ => continue,
                        });
                    }
                }
            }
            // Load balancer names (the targets of aliases) answer with their address.
            if answers.is_empty() && name.ends_with(".elb.amazonaws.com.") && q.query_type() == RecordType::A {
                answers.push(RData::A(A(address_of(&name))));
            }
            let mut reply = Message::new();
            reply.set_id(query.id()).set_message_type(MessageType::Response).set_authoritative(true);
            reply.set_response_code(ResponseCode::NoError);
            reply.add_query(q.clone());
            for rdata in answers {
                reply.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
        }
    });
    Server { addr, task }
}

/// The canary on a real API server (`../shared/kube`): it is applied at v1, rolled to v2 by the
/// Deployment controller under continuous requests through the service proxy, and removed with
/// its namespace. The simulated nodes run no container, so every request fails there, and the
/// check must say so — it never passes a rollout nothing answered. (On nodes that run the
/// image, the same check counts the failed requests of a real rolling upgrade.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: FABRIC_TEST_KUBECONFIG (`cargo xtask test` runs it when that is set; CI starts ../shared/kube)"]
async fn the_canary_rolls_from_v1_to_v2_under_requests_and_is_removed() {
    use fabric::verify::canary::{Canary, NAMESPACE, run};
    let client = fabric_tests::test_cluster_client().await;
    let canary = Canary { timeout: std::time::Duration::from_secs(120), ..Canary::default() };
    let check = run(client.clone(), &canary).await;
    assert_eq!(check.check, "canary");
    assert_eq!(check.outcome, Outcome::Fail, "{check:?}");
    assert!(check.detail.contains("requests failed while v1 rolled to v2 in"), "the rollout completed: {check:?}");
    assert!(check.detail.ends_with("; canary removed"), "{check:?}");
    let (failed, total) =
        check.detail.split_once(" of ").map(|(f, rest)| (f, rest.split(' ').next().unwrap())).unwrap();
    assert_eq!(failed, total, "nothing runs on simulated nodes: {check:?}");
    assert!(total.parse::<usize>().unwrap() > 0, "{check:?}");
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    assert!(namespaces.get_opt(NAMESPACE).await.unwrap().is_none(), "the canary's namespace is gone");

    // A namespace of that name that is not the canary's is left alone.
    let foreign = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    let params = kube::api::PatchParams::apply("someone-else");
    namespaces.patch(NAMESPACE, &params, &kube::api::Patch::Apply(foreign)).await.unwrap();
    let check = run(client.clone(), &canary).await;
    assert_eq!(check.outcome, Outcome::Fail);
    assert!(check.detail.contains("exists and is not the canary's"), "{check:?}");
    assert!(namespaces.get_opt(NAMESPACE).await.unwrap().is_some(), "not deleted");
    namespaces.delete(NAMESPACE, &Default::default()).await.unwrap();
}
