//! A fault-injecting HTTP proxy in front of the emulator, on loopback: it answers a share of the
//! requests as a throttled or failing AWS would, in each protocol's own error format, and for
//! another share forwards the request and then drops the answer (the write happened, the caller
//! never hears of it). Stopped when dropped.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy did, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub forwarded: AtomicUsize,
    pub throttled: AtomicUsize,
    pub unavailable: AtomicUsize,
    pub dropped: AtomicUsize,
}

pub struct FaultProxy {
    pub port: u16,
    pub counts: Arc<FaultCounts>,
    stop: Arc<AtomicBool>,
    rate: Arc<Mutex<f64>>,
    refusal: Arc<Mutex<Option<Vec<String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `127.0.0.1:upstream` that spoils `rate` of the requests, in turn throttled,
    /// 503 and answer dropped: which requests, a generator seeded with `seed` decides, so that over
    /// any stretch the share is `rate` and every kind comes up.
    pub fn start(upstream: u16, rate: f64, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(FaultCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let rate = Arc::new(Mutex::new(rate));
        let refusal: Arc<Mutex<Option<Vec<String>>>> = Arc::new(Mutex::new(None));
        let rng = Arc::new(Mutex::new(Schedule { rng: StdRng::seed_from_u64(seed), owed: 0.0, next_kind: 0 }));
        let thread = {
            let (counts, stop, rate, refusal) = (counts.clone(), stop.clone(), rate.clone(), refusal.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let (counts, rate, schedule) = (counts.clone(), rate.clone(), rng.clone());
                            let refusal = refusal.clone();
                            std::thread::spawn(move || serve(client, upstream, &counts, &rate, &schedule, &refusal));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        FaultProxy { port, counts, stop, rate, refusal, thread: Some(thread) }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Refuses the next request whose body holds every one of `parts` with a definite EC2 error
    /// (HTTP 400 `InvalidParameterValue`, which no retry changes), once; it never reaches the
    /// emulator.
    pub fn refuse_next(&self, parts: &[&str]) {
        *self.refusal.lock().unwrap() = Some(parts.iter().map(|p| p.to_string()).collect());
    }

    /// Whether the refusal asked for has been made.
    pub fn refused(&self) -> bool {
        self.refusal.lock().unwrap().is_none()
    }

    /// From now on, spoil this share of the requests.
    pub fn set_rate(&self, rate: f64) {
        *self.rate.lock().unwrap() = rate;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Which requests to spoil: each request adds `rate` to what is owed; a request spoils when a
/// random draw falls under the debt (so spoils come at random, but never drift from the rate),
/// and the kinds of fault take turns.
struct Schedule {
    rng: StdRng,
    owed: f64,
    next_kind: u8,
}

impl Schedule {
    fn next(&mut self, rate: f64) -> Option<u8> {
        self.owed += rate;
        if rate > 0.0 && self.rng.random::<f64>() < self.owed {
            self.owed -= 1.0;
            self.next_kind = (self.next_kind + 1) % 3;
            Some(self.next_kind)
        } else {
            None
        }
    }
}

/// One HTTP/1.1 request: head lines and body.
struct Request {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut req = Request { head, body: Vec::new() };
    let len: usize = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    req.body.resize(len, 0);
    r.read_exact(&mut req.body).ok()?;
    Some(req)
}

fn serve(
    client: TcpStream,
    upstream: u16,
    counts: &FaultCounts,
    rate: &Mutex<f64>,
    schedule: &Mutex<Schedule>,
    refusal: &Mutex<Option<Vec<String>>>,
) {
    client.set_nonblocking(false).ok();
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut client = client;
    while let Some(req) = read_request(&mut reader) {
        let refuse = {
            let mut wanted = refusal.lock().unwrap();
            let body = String::from_utf8_lossy(&req.body);
            let hit = wanted.as_ref().is_some_and(|parts| parts.iter().all(|p| body.contains(p.as_str())));
            if hit {
                *wanted = None;
            }
            hit
        };
        if refuse {
            let xml = "<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>refused by the test's proxy</Message></Error></Errors><RequestID>refused-1</RequestID></Response>";
            if respond(&mut client, 400, &[("content-type", "text/xml")], xml.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let rate = *rate.lock().unwrap();
        let fault = schedule.lock().unwrap().next(rate);
        let (spoil, kind) = (fault.is_some(), fault.unwrap_or(0));
        if spoil && kind == 0 {
            counts.throttled.fetch_add(1, Ordering::SeqCst);
            let (status, headers, body) = throttled(&req);
            if respond(&mut client, status, &headers, body.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if spoil && kind == 1 {
            counts.unavailable.fetch_add(1, Ordering::SeqCst);
            let body = "<html><body>503 Service Unavailable</body></html>";
            if respond(&mut client, 503, &[("content-type", "text/html")], body.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let Some(answer) = forward(&req, upstream) else { return };
        if spoil {
            // The request reached the emulator (a create happened); its answer never arrives.
            counts.dropped.fetch_add(1, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        counts.forwarded.fetch_add(1, Ordering::SeqCst);
        if client.write_all(&answer).is_err() {
            return;
        }
    }
}

/// Sends `req` to the emulator on a connection of its own; the whole answer, as sent.
fn forward(req: &Request, upstream: u16) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let mut out = Vec::new();
    out.extend_from_slice(req.head[0].as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in req.head.iter().skip(1) {
        let name = h.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        if name == "connection" || name == "keep-alive" {
            continue;
        }
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&req.body);
    up.write_all(&out).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    // The client keeps its connection: say how long the answer is, not "close".
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let body = answer[end..].to_vec();
    let mut fixed = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        if name == "connection" || name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        fixed.push_str(line);
        fixed.push_str("\r\n");
    }
    fixed.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = fixed.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

fn respond(client: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    client.write_all(out.as_bytes())?;
    client.write_all(body)
}

/// A throttling answer in the protocol of `req`, as that service sends it.
fn throttled(req: &Request) -> (u16, Vec<(&'static str, &'static str)>, String) {
    let body = String::from_utf8_lossy(&req.body);
    let content_type = req.header("content-type").unwrap_or_default();
    let path = req.head[0].split_whitespace().nth(1).unwrap_or("/");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        if body.contains("Version=2016-11-15") {
            // EC2's query protocol.
            let xml = "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault-1</RequestID></Response>";
            return (503, vec![("content-type", "text/xml")], xml.into());
        }
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-1</RequestId></ErrorResponse>";
        return (400, vec![("content-type", "text/xml")], xml.into());
    }
    if content_type.contains("json") || req.header("x-amz-target").is_some() {
        let json = "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}";
        return (
            400,
            vec![("content-type", "application/json"), ("x-amzn-errortype", "ThrottlingException")],
            json.into(),
        );
    }
    if path.starts_with("/2013-04-01/") {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-1</RequestId></ErrorResponse>";
        return (400, vec![("content-type", "text/xml")], xml.into());
    }
    let xml = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    (503, vec![("content-type", "application/xml")], xml.into())
}
