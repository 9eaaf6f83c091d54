//! `cargo xtask bench`: measures plan time and peak memory for synthetic stacks of 1,000 to 20,000
//! resources (no-op and all-create), apply wall time against the critical path for a wide graph
//! with simulated latency, a no-op `preview` of a deployed stack of 1,000 and 10,000 resources
//! timed as a process (`e2e`), and the wall time of the edit → preview loop of the example stack.
//!
//! Each plan scenario runs in its own child process so that its peak RSS is its own.

use fabric::engine::{Ctx, Engine, Registry, Session, plan};
use fabric::model::{Graph, Stack};
use fabric::state::store::KeySource;
use fabric::state::{LocalBackend, Record, State, StateStore};
use fabric::testing::{MemoryCloud, MemoryProvider, Thing, ThingRef};
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

/// `n` things; each refers to an earlier one (a tree ten wide), like a real fabric's references.
fn synthetic(n: usize, provider: &Arc<MemoryProvider>) -> Graph {
    let mut s = Stack::new("bench");
    let mut refs: Vec<ThingRef> = Vec::with_capacity(n);
    for i in 0..n {
        let mut t = Thing::new(&format!("thing-{i}")).value(&format!("value-{i}"));
        if i > 0 {
            t = t.parent(&refs[(i - 1) / 10]);
        }
        refs.push(t.add(&mut s, provider));
    }
    s.finish().expect("valid")
}

/// The state a full deploy of `graph` would leave.
fn deployed_state(graph: &Graph) -> State {
    let mut state = State::new("bench");
    let mut outputs: HashMap<fabric::model::Urn, serde_json::Value> = HashMap::new();
    for (i, node) in graph.nodes().iter().enumerate() {
        let inputs = node.inputs(&outputs).expect("inputs");
        let out = serde_json::json!({"id": format!("thing-{i}")});
        outputs.insert(node.urn.clone(), out.clone());
        state.resources.insert(
            node.urn.clone(),
            Record {
                type_name: node.type_name().into(),
                inputs,
                outputs: out,
                deps: node.deps.clone(),
                options: Default::default(),
            },
        );
    }
    state
}

/// Child process: one plan scenario; prints `build_ms plan_ms peak_mib steps`.
fn plan_scenario(kind: &str, n: usize) {
    let provider = Arc::new(MemoryProvider { cloud: MemoryCloud::new() });
    let mut registry = Registry::new();
    registry.register(provider.clone());
    let t0 = Instant::now();
    let graph = synthetic(n, &provider);
    let build = t0.elapsed();
    let state = if kind == "noop" { deployed_state(&graph) } else { State::new("bench") };
    let t1 = Instant::now();
    let p = plan(&graph, &state, &registry).expect("plan");
    let planned = t1.elapsed();
    let expected = if kind == "noop" { p.summary().same } else { p.summary().create };
    assert_eq!(expected, n);
    println!("{} {} {:.1} {}", build.as_secs_f64() * 1e3, planned.as_secs_f64() * 1e3, peak_rss_mib(), p.steps.len());
}

fn run_plan_benchmarks() {
    println!("## Plan (in-memory provider; one process per row, so peak RSS is the row's own)\n");
    println!("| resources | plan | build graph | plan time | peak RSS | plan time per resource |");
    println!("|---:|---|---:|---:|---:|---:|");
    let me = std::env::current_exe().expect("exe");
    for kind in ["noop", "create"] {
        for n in [1_000usize, 10_000, 20_000] {
            let out = Command::new(&me).args(["plan-scenario", kind, &n.to_string()]).output().expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<f64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if f.len() < 3 {
                println!("| {n} | {kind} | failed: {} |", String::from_utf8_lossy(&out.stderr));
                continue;
            }
            println!(
                "| {n} | {} | {:.0} ms | {:.0} ms | {:.0} MiB | {:.1} µs |",
                if kind == "noop" { "no-op" } else { "all create" },
                f[0],
                f[1],
                f[2],
                f[1] * 1e3 / n as f64
            );
        }
    }
}

async fn apply_wide(width: usize, latency: Duration, parallel: usize) -> (Duration, Duration) {
    let cloud = MemoryCloud::new();
    cloud.set_latency(latency);
    let provider = Arc::new(MemoryProvider { cloud: cloud.clone() });
    let mut s = Stack::new("bench");
    let root = Thing::new("root").add(&mut s, &provider);
    let mut leaves = Vec::new();
    for i in 0..width {
        leaves.push(Thing::new(&format!("leaf-{i}")).parent(&root).add(&mut s, &provider));
    }
    let mut sink = Thing::new("sink");
    for l in leaves.iter().take(10) {
        sink = sink.parent(l);
    }
    sink.add(&mut s, &provider);
    let graph = Arc::new(s.finish().expect("valid"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(Arc::new(LocalBackend::new(dir.path())), "bench", KeySource::LocalKeyFile)
        .await
        .expect("store");
    let mut registry = Registry::new();
    registry.register(provider.clone());
    let mut engine = Engine::new(Ctx::new("bench"), Arc::new(store), registry);
    engine.parallel = parallel;
    let mut session = Session::change(&engine, "bench").await.expect("lock and load");
    let p = session.plan(&graph, None).await.expect("plan");
    let t0 = Instant::now();
    let report = session.apply(graph, &p).await.expect("apply");
    let wall = t0.elapsed();
    session.end().await.expect("unlock");
    assert!(report.ok());
    // root → leaves → sink: three steps deep. With a bound, the root runs alone, then the leaves
    // and the sink need at least ceil((width + 1) / parallel) rounds, and at least two.
    let rounds = 1 + (width + 1).div_ceil(parallel).max(2) as u32;
    (wall, latency * rounds)
}

async fn run_apply_benchmarks() {
    println!(
        "\n## Apply of a wide graph (root → 1,000 leaves → sink), simulated latency per step, journal on local disk\n"
    );
    println!("| latency | --parallel | wall | critical path (with the bound) | wall ÷ critical path |");
    println!("|---:|---:|---:|---:|---:|");
    for (latency, parallel) in [(200u64, 1000usize), (200, 32), (50, 1000), (0, 1000)] {
        let (wall, critical) = apply_wide(1000, Duration::from_millis(latency), parallel).await;
        println!(
            "| {latency} ms | {parallel} | {:.2} s | {:.2} s | {:.3} |",
            wall.as_secs_f64(),
            critical.as_secs_f64(),
            wall.as_secs_f64() / critical.as_secs_f64()
        );
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn run_edit_loop() {
    println!("\n## Edit → preview loop of the example stack (`cargo xtask preview example --local`)\n");
    let root = workspace_root();
    let file = root.join("stacks/example/src/lib.rs");
    let original = std::fs::read_to_string(&file).expect("example source");
    let preview = || {
        let t0 = Instant::now();
        let out = Command::new("cargo")
            .args(["xtask", "preview", "example", "--local"])
            .current_dir(&root)
            .output()
            .expect("cargo xtask preview");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        t0.elapsed()
    };
    preview(); // build and start the emulator once
    let mut times = Vec::new();
    for i in 0..3 {
        // A one-line edit: a tag value of every resource.
        let edited = original.replacen(
            "(\"team\".into(), \"platform\".into())",
            &format!("(\"team\".into(), \"platform-{i}\".into())"),
            1,
        );
        assert_ne!(edited, original, "the edit point moved");
        std::fs::write(&file, edited).expect("edit");
        times.push(preview());
    }
    std::fs::write(&file, &original).expect("restore");
    times.sort();
    println!("| runs | fastest | median | slowest |");
    println!("|---:|---:|---:|---:|");
    println!(
        "| {} | {:.1} s | {:.1} s | {:.1} s |",
        times.len(),
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}

/// Runs the benchmark stack (`bench-stack`, built in the dev profile as `cargo xtask` builds
/// stacks) with `verb`, its state in `state`; nothing reaches a network (the AWS endpoint is a
/// closed loopback port, and a no-op preview calls nothing). Returns the process's wall time and
/// its own peak RSS in MiB.
fn bench_stack(
    binary: &std::path::Path,
    state: &std::path::Path,
    n: usize,
    passphrase: Option<&str>,
    verb: &[&str],
) -> (Duration, f64) {
    let mut c = Command::new(binary);
    c.args(verb)
        .env("FABRIC_BENCH_N", n.to_string())
        .env("FABRIC_STATE_DIR", state)
        .env("FABRIC_AWS_ENDPOINT", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-2")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env_remove("FABRIC_BACKEND")
        .env_remove("FABRIC_KUBECONFIG")
        .stdin(std::process::Stdio::null());
    match passphrase {
        Some(p) => c.env("FABRIC_PASSPHRASE", p),
        None => c.env_remove("FABRIC_PASSPHRASE"),
    };
    c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let t0 = Instant::now();
    #[allow(clippy::zombie_processes, reason = "reaped by wait4 below, which also reads its peak RSS")]
    let mut child = c.spawn().expect("bench-stack runs");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr).expect("stderr");
    // wait4 rather than `wait`: the child's own resource usage, its peak RSS among it.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into two locals that outlive the call.
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = t0.elapsed();
    assert_eq!(waited, child.id() as libc::pid_t, "wait4: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "bench-stack {verb:?}: {stderr}");
    (wall, usage.ru_maxrss as f64 / 1024.0)
}

/// The dev-profile build of `bench-stack`.
fn build_bench_stack() -> std::path::PathBuf {
    let root = workspace_root();
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "-p", "fabric-bench", "--bin", "bench-stack", "--message-format", "json"])
        .current_dir(&root)
        .output()
        .expect("cargo build");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    String::from_utf8_lossy(&built.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "bench-stack")
        .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
        .expect("the bench-stack executable")
}

fn run_e2e_benchmarks() {
    println!("\n## No-op `preview` of a deployed stack, as a process (dev profile, state on local disk)\n");
    println!("| resources | passphrase | preview (median of 5) | fastest | slowest | peak RSS (median) |");
    println!("|---:|---|---:|---:|---:|---:|");
    let binary = build_bench_stack();
    let mut peak_by_size: Vec<(usize, f64)> = Vec::new();
    for n in [1_000usize, 10_000] {
        for passphrase in [None, Some("correct horse battery staple")] {
            let dir = tempfile::tempdir().expect("tempdir");
            bench_stack(&binary, dir.path(), n, passphrase, &["deploy", "--yes", "--skip-preflight"]);
            let runs: Vec<(Duration, f64)> =
                (0..5).map(|_| bench_stack(&binary, dir.path(), n, passphrase, &["preview"])).collect();
            let mut times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
            times.sort();
            let mut peaks: Vec<f64> = runs.iter().map(|r| r.1).collect();
            peaks.sort_by(f64::total_cmp);
            if passphrase.is_none() {
                peak_by_size.push((n, peaks[2]));
            }
            println!(
                "| {n} | {} | {:.2} s | {:.2} s | {:.2} s | {:.0} MiB |",
                if passphrase.is_some() { "yes (Argon2)" } else { "no (local key file)" },
                times[2].as_secs_f64(),
                times[0].as_secs_f64(),
                times[4].as_secs_f64(),
                peaks[2]
            );
        }
    }
    if let [(small, low), (large, high)] = peak_by_size[..] {
        println!(
            "\nMemory per resource (peak RSS from {small} to {large} resources): {:.1} KiB",
            (high - low) * 1024.0 / (large - small) as f64
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plan-scenario") => plan_scenario(&args[1], args[2].parse().expect("n")),
        Some("plan") => run_plan_benchmarks(),
        Some("apply") => tokio::runtime::Runtime::new().expect("rt").block_on(run_apply_benchmarks()),
        Some("e2e") => run_e2e_benchmarks(),
        Some("edit-loop" | "--loop") => run_edit_loop(),
        None => {
            run_plan_benchmarks();
            tokio::runtime::Runtime::new().expect("rt").block_on(run_apply_benchmarks());
            run_e2e_benchmarks();
            run_edit_loop();
        }
        Some(other) => {
            eprintln!("unknown benchmark `{other}`: plan, apply, e2e, edit-loop (--loop), or nothing for all")
        }
    }
}
