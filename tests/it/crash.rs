//! kill -9 of a deploy at several points, then a second deploy: exactly one cloud resource per
//! URN, and state that matches the cloud. Also: a second concurrent deploy is refused.

use fabric_tests::{Fixture, example_graph};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn deploy_command(fx: &Fixture, state_dir: &std::path::Path) -> Command {
    let mut c = crate::stack_command("example");
    c.args(["deploy", "--yes", "--parallel", "4"])
        .env("FABRIC_AWS_ENDPOINT", fx.emulator.endpoint())
        .env("FABRIC_STATE_DIR", state_dir)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-2")
        .env_remove("FABRIC_BACKEND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Reads the child's progress lines until `until` says stop; returns the lines read.
pub(crate) fn read_until(child: &mut Child, mut until: impl FnMut(&str) -> bool) -> Vec<String> {
    let stderr = child.stderr.as_mut().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let stop = until(&line);
        lines.push(line);
        if stop {
            break;
        }
    }
    lines
}

pub(crate) fn kill9(child: &mut Child) {
    // SAFETY: our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploy_is_resumed_without_duplicates_or_orphans() {
    let fx = Fixture::start().await;
    let mut recovered = 0;
    for k in [1usize, 3, 7, 12] {
        fx.reset().await;
        let state_dir = fx.dir.path().join(format!("killed-after-{k}"));
        let mut child = deploy_command(&fx, &state_dir).spawn().unwrap();
        let mut done = 0;
        let lines = read_until(&mut child, |l| {
            if l.trim_start().starts_with("+ created") {
                done += 1;
            }
            done >= k
        });
        kill9(&mut child);
        assert!(done >= k, "the deploy ended before {k} steps: {lines:#?}");
        // What the journal says was in flight at the kill: each one is settled by the next run.
        let in_flight = fx_engine_at(&fx, &state_dir).await.store.load().await.unwrap().pending.len();

        let out = deploy_command(&fx, &state_dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "resumed deploy after {k} steps failed:\n{stderr}");
        let settled: Vec<&str> = stderr.lines().filter(|l| l.starts_with("recovered an interrupted")).collect();
        assert_eq!(settled.len(), in_flight, "after a kill at {k}, {in_flight} steps were in flight: {stderr}");
        assert!(
            settled.iter().all(|l| l.ends_with(": adopted") || l.ends_with(": absent")),
            "a create in flight is adopted or found absent: {settled:#?}"
        );
        assert!(!stderr.contains("could not settle"), "{stderr}");
        recovered += settled.len();

        // Exactly one cloud resource per URN.
        let tagged = fx.tagged("example").await;
        let count = |t: &str| tagged.iter().filter(|(ty, _)| ty == t).count();
        assert_eq!(
            (count("vpc"), count("subnet"), count("internet-gateway"), count("route-table")),
            (1, 3, 1, 1),
            "after a kill at {k}: {tagged:?}\n{stderr}"
        );
        assert_eq!((count("security-group"), count("security-group-rule")), (2, 2), "{tagged:?}");

        // State matches the cloud: every recorded id exists, and a preview is all `same`.
        let engine = fx_engine_at(&fx, &state_dir).await;
        let state = engine.store.load().await.unwrap();
        assert!(state.pending.is_empty());
        assert_eq!(state.resources.len(), 14);
        for (urn, rec) in &state.resources {
            let id = rec.outputs["id"].as_str().unwrap();
            let tagged_type = match urn.type_name() {
                "aws:ec2:Vpc" => Some("vpc"),
                "aws:ec2:Subnet" => Some("subnet"),
                "aws:ec2:InternetGateway" => Some("internet-gateway"),
                "aws:ec2:RouteTable" => Some("route-table"),
                "aws:ec2:SecurityGroup" => Some("security-group"),
                "aws:ec2:SecurityGroupIngressRule" => Some("security-group-rule"),
                _ => None,
            };
            if let Some(t) = tagged_type {
                assert!(
                    tagged.contains(&(t.to_string(), id.to_string())),
                    "{urn} records {id}, which is not in the cloud"
                );
            }
        }
        let (mut state, _) = engine.load_and_recover(None, false).await.unwrap();
        let drift = engine.refresh(&mut state, None, false).await.unwrap();
        assert!(drift.drift.is_empty(), "after a kill at {k}: {}", drift.render());
        let plan = fx.preview(&engine, &example_graph(&example::Config::default())).await;
        assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    }
    // Four kills in the middle of a parallel deploy: steps were in flight at some of them.
    assert!(recovered > 0, "no step was in flight at any of the four kills: the test did not test recovery");
}

async fn fx_engine_at(fx: &Fixture, dir: &std::path::Path) -> fabric::engine::Engine {
    use fabric::state::store::KeySource;
    use fabric::state::{LocalBackend, StateStore};
    let store = StateStore::open(std::sync::Arc::new(LocalBackend::new(dir)), "example", KeySource::LocalKeyFile)
        .await
        .unwrap();
    fabric::engine::Engine::new(
        fabric::providers::context("example", Some(fx.aws.clone())),
        std::sync::Arc::new(store),
        fabric::providers::registry(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_deploy_is_refused_naming_the_holder() {
    let fx = Fixture::start().await;
    let state_dir = fx.dir.path().join("locked");
    let mut first = deploy_command(&fx, &state_dir).spawn().unwrap();
    // Once the first deploy shows its plan, it holds the lock.
    read_until(&mut first, |l| l.starts_with("Plan for stack"));
    let t0 = Instant::now();
    let second = deploy_command(&fx, &state_dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("stack `example` is locked by pid {}", first.id())), "{stderr}");
    assert!(stderr.contains("cargo xtask unlock example"), "{stderr}");
    assert!(t0.elapsed() < Duration::from_secs(10), "refused fast");
    // The first one finishes normally, and releases the lock.
    let mut rest = String::new();
    std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut rest).unwrap();
    assert!(first.wait().unwrap().success(), "{rest}");
    assert!(!state_dir.join("lock.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_left_by_a_killed_deploy_is_taken_over_on_this_host() {
    let fx = Fixture::start().await;
    let state_dir = fx.dir.path().join("stale");
    let mut child = deploy_command(&fx, &state_dir).spawn().unwrap();
    read_until(&mut child, |l| l.starts_with("Plan for stack"));
    kill9(&mut child);
    assert!(state_dir.join("lock.json").exists(), "the killed deploy left its lock");
    let out = deploy_command(&fx, &state_dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("took over the lock") && stderr.contains("no longer running"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_steps_in_flight_records_them_and_releases_the_lock() {
    let fx = Fixture::start().await;
    let state_dir = fx.dir.path().join("interrupted");
    let mut child = deploy_command(&fx, &state_dir).spawn().unwrap();
    read_until(&mut child, |l| l.trim_start().starts_with("+ created"));
    // SAFETY: our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted: finishing the steps in flight"), "{rest}");
    assert!(rest.contains("not started: interrupted"), "{rest}");
    assert!(!state_dir.join("lock.json").exists(), "the lock is released");
    let engine = fx_engine_at(&fx, &state_dir).await;
    let state = engine.store.load().await.unwrap();
    assert!(state.pending.is_empty(), "every started step was recorded: {:?}", state.pending);
    assert!(!state.resources.is_empty() && state.resources.len() < 14);
    let out = deploy_command(&fx, &state_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fx.tagged("example").await.len(), 10, "one of each (routes and associations carry no tags)");
}
