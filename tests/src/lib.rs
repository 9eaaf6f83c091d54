//! Fixtures for the integration tests: a private emulator per test, engines over temporary state,
//! and queries of what is tagged in the emulated account.

pub mod faults;
pub mod policy;
pub mod pool;

use fabric::aws::{Aws, AwsSettings};
use fabric::engine::{ApplyReport, Engine, Plan, Session};
use fabric::model::{Graph, Stack};
use fabric::state::store::KeySource;
use fabric::state::{LocalBackend, StateStore};
use pool::PooledEmulator;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The workspace's `.fabric` (where `cargo xtask test` installed the emulator).
pub fn fabric_home() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(".fabric")
}

/// An emulator of this test's own (wiped, from the process's pool: [`pool`]) and state in a temp
/// dir.
pub struct Fixture {
    pub emulator: PooledEmulator,
    pub aws: Arc<Aws>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start() -> Fixture {
        let home = fabric_home();
        let emulator =
            tokio::task::spawn_blocking(move || PooledEmulator::take(home)).await.unwrap().expect("emulator");
        let aws = Arc::new(Aws::connect(&AwsSettings::local(&emulator.endpoint())).await);
        Fixture { emulator, aws, dir: tempfile::tempdir().unwrap() }
    }

    pub fn state_dir(&self, stack: &str) -> PathBuf {
        self.dir.path().join(stack)
    }

    pub async fn engine(&self, stack: &str) -> Engine {
        self.engine_with(stack, self.aws.clone()).await
    }

    /// An engine of `stack` that calls AWS at `endpoint` (a fault proxy in front of the emulator).
    pub async fn engine_through(&self, stack: &str, endpoint: &str) -> Engine {
        self.engine_with(stack, Arc::new(Aws::connect(&AwsSettings::local(endpoint)).await)).await
    }

    async fn engine_with(&self, stack: &str, aws: Arc<Aws>) -> Engine {
        let store =
            StateStore::open(Arc::new(LocalBackend::new(self.state_dir(stack))), stack, KeySource::LocalKeyFile)
                .await
                .unwrap();
        Engine::new(fabric::providers::context(stack, Some(aws)), Arc::new(store), fabric::providers::registry())
    }

    /// Plans and applies `graph`, as `deploy --yes` does.
    pub async fn deploy(&self, engine: &Engine, graph: Arc<Graph>) -> (Plan, ApplyReport) {
        Session::deploy(engine, graph).await.unwrap()
    }

    /// The plan of `graph`, as `preview` makes it.
    pub async fn preview(&self, engine: &Engine, graph: &Graph) -> Plan {
        Session::preview(engine, graph).await.unwrap()
    }

    /// Fails when `secret` stands in plain text in any file of `stack`'s local state (`what`
    /// names it in the message).
    pub fn assert_not_in_state(&self, stack: &str, secret: &str, what: &str) {
        for entry in std::fs::read_dir(self.state_dir(stack)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            assert!(!text.contains(secret), "{what} is in plain text in state");
        }
    }

    /// The names check's problems for `graph` (after a preview), as the command line prints
    /// them, and what it skipped.
    pub async fn names_taken(&self, engine: &Engine, graph: &Graph) -> (Vec<String>, Vec<String>) {
        let plan = self.preview(engine, graph).await;
        let state = engine.store.load().await.unwrap();
        let names = fabric::engine::names::check(&engine.ctx, graph, &plan, &state).await;
        (names.problems.iter().map(|p| p.to_string()).collect(), names.skipped)
    }

    /// Makes an S3 bucket in the emulator's region.
    pub async fn bucket(&self, name: &str) {
        self.aws
            .s3
            .create_bucket()
            .bucket(name)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsEast2)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Wipes the emulated account.
    pub async fn reset(&self) {
        let port = self.emulator.port;
        tokio::task::spawn_blocking(move || pool::reset(port)).await.unwrap().expect("emulator reset");
    }

    /// Every resource tagged `fabric:stack=<stack>` that exists, as (type, id). (The emulator's
    /// DescribeTags keeps the tags of deleted resources, so each type is described instead.)
    pub async fn tagged(&self, stack: &str) -> Vec<(String, String)> {
        let ec2 = &self.aws.ec2;
        let f = || aws_sdk_ec2::types::Filter::builder().name("tag:fabric:stack").values(stack).build();
        let mut v: Vec<(String, String)> = Vec::new();
        let vpcs = ec2.describe_vpcs().filters(f()).send().await.unwrap();
        v.extend(vpcs.vpcs().iter().map(|x| ("vpc".into(), x.vpc_id().unwrap_or_default().into())));
        let subnets = ec2.describe_subnets().filters(f()).send().await.unwrap();
        v.extend(subnets.subnets().iter().map(|x| ("subnet".into(), x.subnet_id().unwrap_or_default().into())));
        let igws = ec2.describe_internet_gateways().filters(f()).send().await.unwrap();
        v.extend(
            igws.internet_gateways()
                .iter()
                .map(|x| ("internet-gateway".into(), x.internet_gateway_id().unwrap_or_default().into())),
        );
        let rts = ec2.describe_route_tables().filters(f()).send().await.unwrap();
        v.extend(
            rts.route_tables().iter().map(|x| ("route-table".into(), x.route_table_id().unwrap_or_default().into())),
        );
        let sgs = ec2.describe_security_groups().filters(f()).send().await.unwrap();
        v.extend(
            sgs.security_groups().iter().map(|x| ("security-group".into(), x.group_id().unwrap_or_default().into())),
        );
        let endpoints = ec2.describe_vpc_endpoints().filters(f()).send().await.unwrap();
        v.extend(
            endpoints
                .vpc_endpoints()
                .iter()
                .filter(|e| e.state().is_some_and(|s| !s.as_str().eq_ignore_ascii_case("deleted")))
                .map(|x| ("vpc-endpoint".into(), x.vpc_endpoint_id().unwrap_or_default().into())),
        );
        let instances = ec2.describe_instances().filters(f()).send().await.unwrap();
        v.extend(
            instances
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() != "terminated"))
                .map(|x| ("instance".into(), x.instance_id().unwrap_or_default().into())),
        );
        let peerings = ec2.describe_vpc_peering_connections().filters(f()).send().await.unwrap();
        v.extend(
            peerings
                .vpc_peering_connections()
                .iter()
                .filter(|p| p.status().and_then(|s| s.code()).is_some_and(|c| c.as_str() != "deleted"))
                .map(|x| ("vpc-peering".into(), x.vpc_peering_connection_id().unwrap_or_default().into())),
        );
        let rules = ec2.describe_security_group_rules().send().await.unwrap();
        v.extend(
            rules
                .security_group_rules()
                .iter()
                .filter(|r| r.tags().iter().any(|t| t.key() == Some("fabric:stack") && t.value() == Some(stack)))
                .map(|x| ("security-group-rule".into(), x.security_group_rule_id().unwrap_or_default().into())),
        );
        v.sort();
        v
    }
}

/// POSTs nothing to `path` on the loopback `port`; the whole answer.
fn http_post(port: u16, path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(buf)
}

/// A stack of this repository (`command`: the test build's `stacks` binary with the stack's name,
/// `stack_command` in the integration tests) run as `cargo xtask <verb> <stack> --local` runs it:
/// against this fixture's emulator, with state in `state` and config from `stacks/<config>/config`,
/// no ambient FABRIC_* settings, no terminal.
pub fn stack_cli(command: Command, fx: &Fixture, state: &Path, config: &str, args: &[&str]) -> std::process::Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks").join(config).join("config");
    stack_cli_in(command, fx, state, &dir, args)
}

/// [`stack_cli`] with the config files of `config_dir`.
pub fn stack_cli_in(
    mut command: Command,
    fx: &Fixture,
    state: &Path,
    config_dir: &Path,
    args: &[&str],
) -> std::process::Output {
    command
        .args(args)
        .env("FABRIC_AWS_ENDPOINT", fx.emulator.endpoint())
        .env("FABRIC_STATE_DIR", state)
        .env("FABRIC_HOME", fabric_home())
        .env("FABRIC_CONFIG_DIR", config_dir)
        .env_remove("FABRIC_BACKEND")
        .env_remove("FABRIC_PASSPHRASE")
        .env_remove("FABRIC_KUBECONFIG")
        .env_remove("FABRIC_ENV")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The kubeconfig of the real test cluster (`FABRIC_TEST_KUBECONFIG`: kind, minikube,
/// `../shared/kube`); the tests that call it are `#[ignore]`d without one.
pub fn test_kubeconfig() -> PathBuf {
    std::env::var_os("FABRIC_TEST_KUBECONFIG")
        .expect("FABRIC_TEST_KUBECONFIG names the kubeconfig of a test cluster (kind, minikube, ../shared/kube)")
        .into()
}

/// A client of the real test cluster.
pub async fn test_cluster_client() -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(test_kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Follows a Deployment's available replicas (a read every 100 ms) while something runs, and
/// gives the lowest count seen: a rollout with no downtime never lowers it.
pub struct AvailabilityWatch {
    watching: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<i32>,
}

impl AvailabilityWatch {
    pub fn start(deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment>, name: &str) -> Self {
        let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (flag, name) = (watching.clone(), name.to_string());
        let task = tokio::spawn(async move {
            let mut lowest = i32::MAX;
            while flag.load(std::sync::atomic::Ordering::SeqCst) {
                let d = deployments.get(&name).await.unwrap();
                lowest = lowest.min(d.status.and_then(|s| s.available_replicas).unwrap_or(0));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            lowest
        });
        AvailabilityWatch { watching, task }
    }

    /// Stops following; the lowest count seen.
    pub async fn lowest(self) -> i32 {
        self.watching.store(false, std::sync::atomic::Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// The example stack for `cfg`, validated.
pub fn example_graph(cfg: &example::Config) -> Arc<Graph> {
    let mut s = Stack::new("example");
    example::program_with(cfg)(&mut s).unwrap();
    Arc::new(s.finish().unwrap())
}

/// `kind-demo`: a ConfigMap on a cluster reached only through a kubeconfig (`tests/it/kube_reach.rs`,
/// run as `stacks kind-demo <verb>`).
pub fn kind_demo_program(s: &mut fabric::model::Stack) -> fabric::Result<()> {
    let kind = fabric::k8s::ClusterRef::kubeconfig("kind");
    fabric::k8s::ConfigMap::builder().name("settings").namespace("apps").cluster(&kind).build().add(s)?;
    Ok(())
}
