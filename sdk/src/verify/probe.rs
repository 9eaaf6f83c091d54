//! Network probes of a deployed fabric: one HTTP(S) request (TLS verified by rustls against the
//! system's roots for the URL's host; the status line and `Location` read back), and a DNS query
//! sent to a zone's own name servers (hickory).

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::CertificateDer, pki_types::ServerName};

/// What a server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
}

/// How the probes reach the fabric. [`Probes::real`] asks the internet as a user would; tests
/// point them at loopback servers.
#[derive(Clone)]
pub struct Probes {
    tls: Arc<ClientConfig>,
    /// Connect here instead of resolving a URL's host, by port (as `curl --resolve` does).
    connect_to: Vec<(u16, SocketAddr)>,
    /// Send DNS queries here instead of to the zone's name servers.
    dns_server: Option<SocketAddr>,
    timeout: Duration,
}

impl Probes {
    /// The system's trusted roots; hosts and name servers resolved normally.
    pub fn real() -> Result<Probes, String> {
        Probes::with_roots(Vec::new())
    }

    /// The system's roots and `extra` (a test CA).
    pub fn with_roots(extra: Vec<CertificateDer<'static>>) -> Result<Probes, String> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        for cert in extra {
            roots.add(cert).map_err(|e| format!("a trusted root: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Probes { tls: Arc::new(tls), connect_to: Vec::new(), dns_server: None, timeout: Duration::from_secs(10) })
    }

    /// Connections to `port` of any host go to `addr` (the TLS name and `Host` stay the URL's).
    pub fn connect_to(mut self, port: u16, addr: SocketAddr) -> Self {
        self.connect_to.push((port, addr));
        self
    }

    /// Every DNS query goes to `addr`.
    pub fn dns_server(mut self, addr: SocketAddr) -> Self {
        self.dns_server = Some(addr);
        self
    }

    /// One GET of `url` (`http://` or `https://`), no redirect followed.
    pub async fn get(&self, url: &str) -> Result<Answer, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("`{url}` is neither http:// nor https://")),
        };
        let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
        let work = async {
            let stream = match self.connect_to.iter().find(|(p, _)| *p == port) {
                Some((_, addr)) => TcpStream::connect(addr).await,
                None => TcpStream::connect((host.as_str(), port)).await,
            }
            .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
            if https {
                let name = ServerName::try_from(host.clone()).map_err(|e| format!("`{host}`: {e}"))?;
                let tls = TlsConnector::from(self.tls.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS with {host}: {e}"))?;
                exchange(tls, &host, &path).await
            } else {
                exchange(stream, &host, &path).await
            }
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| format!("{url}: no answer in {:?}", self.timeout))?
    }

    /// The answers to `name`/`record_type` (`A`, `AAAA`, `CNAME`, `TXT`, `NS`) from name server
    /// `server` (a host name, as Route 53 lists a zone's), as text: addresses, names ending in
    /// a dot, TXT strings in quotes.
    pub async fn dns(&self, server: &str, name: &str, record_type: &str) -> Result<Vec<String>, String> {
        let addr = match self.dns_server {
            Some(addr) => addr,
            None => tokio::net::lookup_host((server.trim_end_matches('.'), 53))
                .await
                .map_err(|e| format!("resolving name server {server}: {e}"))?
                .next()
                .ok_or_else(|| format!("name server {server} has no address"))?,
        };
        let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], servers),
            TokioConnectionProvider::default(),
        );
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.attempts = 2;
        opts.timeout = Duration::from_secs(3);
        let resolver = builder.build();
        let rtype: RecordType = record_type.parse().map_err(|e| format!("record type {record_type}: {e}"))?;
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = match resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
            Err(e) => return Err(format!("asking {server} for {name} {record_type}: {e}")),
        };
        let mut out: Vec<String> = lookup
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| match r {
                RData::A(a) => a.to_string(),
                RData::AAAA(a) => a.to_string(),
                RData::CNAME(c) => lower_fqdn(&c.0.to_string()),
                RData::NS(n) => lower_fqdn(&n.0.to_string()),
                RData::TXT(t) => {
                    t.iter().map(|s| format!("\"{}\"", String::from_utf8_lossy(s))).collect::<Vec<_>>().join(" ")
                }
                other => other.to_string(),
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

impl Probes {
    /// The addresses `name` resolves to through the system's resolver (or the DNS server given
    /// with [`Probes::dns_server`]); empty when it does not resolve.
    pub async fn dns_system(&self, name: &str) -> Vec<String> {
        if self.dns_server.is_some() {
            return self.dns("", name, "A").await.unwrap_or_default();
        }
        match tokio::net::lookup_host((name.trim_end_matches('.'), 0)).await {
            Ok(addrs) => addrs.map(|a| a.ip().to_string()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn lower_fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

/// Sends one GET and reads the response head.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, host: &str, path: &str) -> Result<Answer, String> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fabric-verify\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("sending to {host}: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| format!("reading from {host}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > 64 * 1024 {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(_) => {}
        Err(e) => return Err(format!("{host} answered something that is not HTTP: {e}")),
    }
    let status = response.code.ok_or_else(|| format!("{host} closed the connection without answering"))?;
    let location = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("location"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    Ok(Answer { status, location })
}
