//! The stack program's own command line: `fabric::run` parses it and drives the engine.
//!
//! ```text
//! <stack> deploy|preview|destroy|refresh|outputs [NAME]|render|graph [--mermaid]|unlock
//!         |import <urn> <id>|import --discover|state list|show|rm|mv|unprotect|undo|history|diff A B
//!         |verify [--no-canary]|rollback [--to N]
//!         [--local] [--json] [--yes] [--atomic] [--parallel N] [--backend s3://bucket/prefix] [--refresh]
//!         [--target URN]… [--exclude URN]…
//! ```

mod day2;
mod rollback;
pub use day2::StateLocator;

use crate::aws::AwsCtx;
use crate::aws::{Aws, AwsSettings};
use crate::engine::render::{render_plan, render_report};
use crate::engine::select::Direction;
use crate::engine::{Engine, Selection, Session, plan_json};
use crate::model::{Graph, Stack};
use crate::progress::Progress;
use crate::state::backend::Backend;
use crate::state::s3::{S3Backend, parse_s3_url};
use crate::state::store::KeySource;
use crate::state::{LocalBackend, StateStore};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "A fabric stack: plan, deploy and destroy its infrastructure.", version)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
    /// Run against the local AWS emulator (installed and started on first use).
    #[arg(long, global = true)]
    local: bool,
    /// Machine-readable output (plans, outputs) on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y', global = true)]
    yes: bool,
    /// Deploy: if a step fails (a rollout included), return to the last successful revision
    /// (shown, journalled, recorded as `rollback`; implies --yes for it). Preview: say what
    /// such a return could not undo. A program can make it the default (`Stack::set_atomic`).
    #[arg(long, global = true)]
    atomic: bool,
    /// At most this many provider calls at once.
    #[arg(long, global = true, default_value_t = 32)]
    parallel: usize,
    /// State backend: `s3://bucket/prefix` (default: local files under .fabric/).
    #[arg(long, global = true, env = "FABRIC_BACKEND")]
    backend: Option<String>,
    /// Read every resource before planning, and plan against what is really there.
    #[arg(long, global = true)]
    refresh: bool,
    /// One endpoint for every AWS service (`FABRIC_AWS_ENDPOINT`); with --local, the emulator to use
    /// instead of starting one.
    #[arg(long, global = true, env = "FABRIC_AWS_ENDPOINT")]
    endpoint: Option<String>,
    /// The environment (`dev`, `prod`, …): its own state, tags and config file
    /// (`stacks/<stack>/config/<env>.toml`, or `FABRIC_CONFIG_DIR/<env>.toml`).
    #[arg(long, global = true, env = "FABRIC_ENV")]
    env: Option<String>,
    /// A kubeconfig that reaches the program's clusters (kind, minikube, an existing EKS); without
    /// it, EKS clusters are reached with a token from STS.
    #[arg(long, global = true, env = "FABRIC_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Take over Kubernetes fields another field manager owns (server-side apply `force`).
    #[arg(long, global = true)]
    force_conflicts: bool,
    /// Do not ask AWS, before the first write, whether what the plan sends can work (instance
    /// types, zones, RDS classes, add-on versions, quotas). For when a check itself is wrong.
    #[arg(long, global = true)]
    skip_preflight: bool,
    /// Only this resource and what it needs (destroy: and what needs it); repeatable. A URN, a
    /// `type::name`, or a name only one resource has.
    #[arg(long, global = true)]
    target: Vec<String>,
    /// Leave this resource out, and what needs it (destroy: and what it needs); repeatable.
    #[arg(long, global = true)]
    exclude: Vec<String>,
    /// The directory of this stack's local state (default `.fabric/<stack>`).
    #[arg(long, global = true, env = "FABRIC_STATE_DIR", hide = true)]
    state_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Plan, show, apply, record state, print outputs.
    Deploy,
    /// Plan and show; change nothing.
    Preview,
    /// Delete everything in state, in reverse dependency order.
    Destroy,
    /// Read every resource and report drift; record what is there.
    Refresh,
    /// Print the stack outputs (one by name: its plain value).
    Outputs {
        name: Option<String>,
        /// Print secret outputs in plain text.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the resource graph as DOT (or Mermaid).
    Graph {
        #[arg(long)]
        mermaid: bool,
    },
    /// Print the Kubernetes YAML deploy would apply (with --out DIR: one file per object).
    Render {
        /// Write one file per object into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the desired inputs of every resource (what deploy would send), as JSON.
        #[arg(long)]
        inputs: bool,
    },
    /// Break the stack's lock (after a run was killed on another machine).
    Unlock,
    /// Adopt an existing resource as the program's `<urn>`: recorded in state, not changed.
    Import {
        urn: Option<String>,
        id: Option<String>,
        /// List the live resources that match the program's names or tags, with the lines to import them.
        #[arg(long)]
        discover: bool,
    },
    /// Inspect and edit state without touching the cloud (journalled, locked, undoable).
    State {
        #[command(subcommand)]
        cmd: day2::StateCmd,
    },
    /// Every deploy, destroy, refresh, import and state command, newest first.
    History,
    /// What changed in the desired inputs between two history entries.
    Diff { a: u64, b: u64 },
    /// Return the stack to a revision in its history (the last successful deploy by default):
    /// its recorded inputs are planned and applied, without running the program for them.
    Rollback {
        /// The history entry to return to (a successful deploy or rollback).
        #[arg(long)]
        to: Option<u64>,
    },
    /// The policy: every rule (built-in and the stack's own), what the program breaks, and its
    /// waivers. Exit 2 on a mandatory violation not waived. Makes no call.
    Policy,
    /// The monthly cost of what the program declares, resource by resource, on demand in the
    /// stack's region, with the usage it assumes. Makes no call.
    Cost,
    /// Check the deployed fabric: records, listeners, HTTPS, DNS through the zone's name servers,
    /// and a canary rolled from v1 to v2 under requests. One line per check; exit 1 on a failure.
    Verify {
        /// Do not run the rolling-upgrade canary on the cluster.
        #[arg(long)]
        no_canary: bool,
        /// The canary's image: an HTTP server on port 8080 (`agnhost netexec` by default).
        #[arg(long)]
        canary_image: Option<String>,
    },
}

/// Exit codes: 0 success, 1 failure, 2 invalid stack or usage.
fn fail(code: i32, message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {message}");
    code
}

/// The name of the running executable, as the stack name.
fn exe_stack_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "stack".into())
}

// The entry points are generic over the program (and the arguments); each does nothing but hand
// them on as trait objects to `run_program`, so that a stack's binary compiles (and relinks after an
// edit) only these few lines: everything else is compiled once, in this crate. (With the whole run
// generic, the stack crate compiled the CLI, the tokio runtime's `block_on` and the tracing set-up
// anew: 2.8 s of a 6 s rebuild of `example`'s binary.)

/// A stack program, as the CLI runs it.
type Program<'a> = &'a mut dyn FnMut(&mut Stack) -> crate::Result<()>;

/// Runs the stack program named after the executable with the process's arguments, and exits.
pub fn run(program: impl FnOnce(&mut Stack) -> crate::Result<()>) -> crate::Result<()> {
    run_as(&exe_stack_name(), program)
}

/// Like [`run`], with an explicit stack name.
pub fn run_as(stack: &str, program: impl FnOnce(&mut Stack) -> crate::Result<()>) -> crate::Result<()> {
    let code = run_program(stack, std::env::args_os().collect(), None, &mut once(program), Ending::ExitProcess);
    std::process::exit(code);
}

/// Runs a stack program that reads per-environment config: `default_env` unless `--env` (or
/// `FABRIC_ENV`) names another.
pub fn run_env(default_env: &str, program: impl FnOnce(&mut Stack) -> crate::Result<()>) -> crate::Result<()> {
    let code = run_program(
        &exe_stack_name(),
        std::env::args_os().collect(),
        Some(default_env),
        &mut once(program),
        Ending::ExitProcess,
    );
    std::process::exit(code);
}

/// Like [`run_env`], with an explicit stack name.
pub fn run_as_env(
    stack: &str,
    default_env: &str,
    program: impl FnOnce(&mut Stack) -> crate::Result<()>,
) -> crate::Result<()> {
    let code =
        run_program(stack, std::env::args_os().collect(), Some(default_env), &mut once(program), Ending::ExitProcess);
    std::process::exit(code);
}

/// Runs the stack program with `args` (the first is the program name); returns the exit code.
pub fn run_with_args<I, T>(stack: &str, args: I, program: impl FnOnce(&mut Stack) -> crate::Result<()>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    run_program(stack, args.into_iter().map(Into::into).collect(), None, &mut once(program), Ending::Return)
}

/// [`run_with_args`] with a default environment.
pub fn run_with_args_env<I, T>(
    stack: &str,
    args: I,
    default_env: Option<&str>,
    program: impl FnOnce(&mut Stack) -> crate::Result<()>,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    run_program(stack, args.into_iter().map(Into::into).collect(), default_env, &mut once(program), Ending::Return)
}

/// A run-once program as the `FnMut` a trait object can hold (the CLI calls it at most once).
fn once(program: impl FnOnce(&mut Stack) -> crate::Result<()>) -> impl FnMut(&mut Stack) -> crate::Result<()> {
    let mut program = Some(program);
    move |s: &mut Stack| match program.take() {
        Some(p) => p(s),
        None => Err(crate::Error::Other("the stack program ran twice".into())),
    }
}

/// The CLI itself: parses `args`, builds the stack with `program`, and runs the verb.
/// What follows a run: the process exits with its code (a stack's `main`), or the caller goes on
/// (tests, embedding).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    ExitProcess,
    Return,
}

fn run_program(
    stack: &str,
    args: Vec<std::ffi::OsString>,
    default_env: Option<&str>,
    program: Program<'_>,
    ending: Ending,
) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("FABRIC_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let env = cli.env.clone().or(default_env.map(String::from));
    let mut s = match &env {
        Some(env) => {
            if env.is_empty() || !env.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                return fail(2, format!("`--env {env}`: an environment name is lowercase letters, digits and `-`"));
            }
            let dir = std::env::var_os("FABRIC_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("stacks").join(stack).join("config"));
            Stack::for_env(stack, env, dir.join(format!("{env}.toml")))
        }
        None => Stack::new(stack),
    };
    let own = s.name().to_string();
    s.set_reference_reader(reference_reader(&cli, &own));
    if let Err(e) = program(&mut s) {
        return fail(2, e);
    }
    let graph = match s.finish() {
        Ok(g) => Arc::new(g),
        Err(errors) => return fail(2, errors),
    };
    // The policy and the cost assumptions, checked before any call: a waiver of an unknown rule,
    // or an assumption the estimate does not know, is refused here.
    if matches!(cli.verb, Verb::Deploy | Verb::Preview | Verb::Policy | Verb::Cost) {
        let errors = crate::cost::check_assumptions(graph.stack(), graph.assumptions());
        if !errors.is_empty() {
            return fail(2, crate::model::ValidationErrors(errors));
        }
    }
    // What the policy and the cost estimate read of the program, built once for both.
    let view = matches!(cli.verb, Verb::Deploy | Verb::Preview | Verb::Policy | Verb::Cost)
        .then(|| crate::model::policy::PolicyView::of_graph(&graph));
    let policy = match (&cli.verb, view) {
        (Verb::Deploy | Verb::Preview | Verb::Policy, Some(view)) => {
            match crate::policy::check_view(&graph, &view, &crate::model::policy::today()) {
                Ok(report) => Some(Checked { report, view }),
                Err(errors) => return fail(2, errors),
            }
        }
        (Verb::Cost, Some(view)) => {
            let estimate = crate::cost::estimate(&view, &cost_region(&graph), graph.assumptions());
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&estimate).expect("JSON"));
            } else {
                print!("{}", crate::cost::render_breakdown(&estimate));
            }
            return 0;
        }
        _ => None,
    };
    match &cli.verb {
        Verb::Policy => {
            let checked = policy.as_ref().expect("checked above");
            return policy_command(&cli, graph.as_ref(), &checked.report);
        }
        Verb::Graph { mermaid } => {
            print!("{}", if *mermaid { graph.to_mermaid() } else { graph.to_dot() });
            return 0;
        }
        Verb::Render { inputs: true, .. } => {
            let rendered = crate::engine::render::render_inputs(&graph);
            println!("{}", serde_json::to_string_pretty(&rendered).expect("JSON"));
            return 0;
        }
        #[cfg(not(feature = "k8s"))]
        Verb::Render { .. } => {
            return fail(2, "`render` shows Kubernetes objects: build the program with fabric's `k8s` feature");
        }
        #[cfg(feature = "k8s")]
        Verb::Render { out, .. } => {
            let objects = crate::k8s::render::render_objects(&graph);
            return match out {
                Some(dir) => match crate::k8s::render::write_dir(&objects, dir) {
                    Ok(files) => {
                        eprintln!("wrote {} Kubernetes objects to {}", files.len(), dir.display());
                        0
                    }
                    Err(e) => fail(1, format!("writing {}: {e}", dir.display())),
                },
                None => {
                    print!("{}", crate::k8s::render::to_yaml_stream(&objects));
                    0
                }
            };
        }
        _ => {}
    }
    #[cfg(feature = "k8s")]
    let (graph, policy) = {
        let declared = graph.nodes().len();
        let graph = match kubernetes_reach(&cli, graph) {
            Ok(g) => g,
            Err((code, message)) => return fail(code, message),
        };
        // Objects only rendered are left out of the run, and so out of the cost of the change.
        let policy = match policy {
            Some(checked) if graph.nodes().len() != declared => {
                Some(Checked { view: crate::model::policy::PolicyView::of_graph(&graph), ..checked })
            }
            other => other,
        };
        (graph, policy)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async move {
        match drive(&cli, graph, policy, ending).await {
            Ok(code) => code,
            Err(e) => fail(1, e),
        }
    })
}

#[cfg(feature = "k8s")]
/// Decides, before any call, what happens to the program's Kubernetes objects: applied (EKS
/// reachable, or `--kubeconfig`), or — with `--local` and no kubeconfig, where the emulator's
/// EKS has no API server — rendered, validated offline and left out of the run, said plainly.
fn kubernetes_reach(cli: &Cli, graph: Arc<Graph>) -> Result<Arc<Graph>, (i32, String)> {
    if !matches!(cli.verb, Verb::Deploy | Verb::Preview | Verb::Refresh) || cli.kubeconfig.is_some() {
        return Ok(graph);
    }
    let via = |n: &crate::model::Node| {
        n.inputs(&crate::model::NothingKnown).ok().and_then(|i| {
            Some((i.pointer("/cluster/via")?.as_str()?.to_string(), i.pointer("/cluster/name")?.as_str()?.to_string()))
        })
    };
    let mut kubeconfig_only: Vec<String> = Vec::new();
    let mut any = false;
    for n in graph.nodes().iter().filter(|n| n.type_name().starts_with(crate::k8s::TYPE_PREFIX)) {
        any = true;
        if let Some((v, name)) = via(n)
            && v == "kubeconfig"
            && !kubeconfig_only.contains(&name)
        {
            kubeconfig_only.push(name);
        }
    }
    if !kubeconfig_only.is_empty() {
        return Err((
            2,
            format!(
                "cluster `{}` is reached only through a kubeconfig, and none was given\n    fix: pass --kubeconfig PATH (or set FABRIC_KUBECONFIG)",
                kubeconfig_only.join("`, `")
            ),
        ));
    }
    if !any || !cli.local {
        return Ok(graph);
    }
    let home = crate::local::fabric_home();
    let dir =
        cli.state_dir.clone().unwrap_or_else(|| crate::local::local_state_dir(&home, graph.stack())).join("manifests");
    let objects = crate::k8s::render::render_objects(&graph);
    let files =
        crate::k8s::render::write_dir(&objects, &dir).map_err(|e| (1, format!("writing {}: {e}", dir.display())))?;
    crate::local::ensure_installed(&home).map_err(|e| (1, e))?;
    let validated = match crate::k8s::render::validate_objects(&home, &objects, &files) {
        Ok(Some(versions)) => {
            let shown: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
            let unknown = objects.iter().any(|o| o.version.is_none());
            format!(
                "validated against the Kubernetes {} schemas{}",
                shown.join(" and "),
                if unknown { " (a cluster of unknown version: its API server checks the rest)" } else { "" }
            )
        }
        Ok(None) => "NOT validated (kubernetes-validate is not installed)".to_string(),
        Err(e) => return Err((2, e)),
    };
    eprintln!(
        "Kubernetes: {} objects rendered to {} and {validated}.\n  No cluster was reached: the local emulator's EKS has no API server, so nothing is applied to Kubernetes.\n  Pass --kubeconfig PATH to apply them to a real cluster (kind, minikube, EKS).\n",
        objects.len(),
        dir.display()
    );
    let graph = Arc::try_unwrap(graph).unwrap_or_else(|_| unreachable!("the graph has one owner here"));
    Ok(Arc::new(graph.without(|n| n.type_name().starts_with(crate::k8s::TYPE_PREFIX))))
}

/// AWS settings for this run: the local emulator (started on first use) with `--local`, the
/// given endpoint, or the standard configuration chain.
async fn aws_settings(local: bool, endpoint: Option<&str>) -> crate::Result<AwsSettings> {
    if let (true, Some(ep)) = (local, endpoint) {
        // An emulator the user (or a test) runs: local semantics, that endpoint.
        return Ok(AwsSettings::local(ep));
    }
    if local {
        let home = crate::local::fabric_home();
        let (emulator, _) = tokio::task::spawn_blocking(move || crate::local::ensure_running(&home))
            .await
            .map_err(|e| crate::Error::Other(e.to_string()))?
            .map_err(crate::Error::Other)?;
        return Ok(AwsSettings::local(&emulator.endpoint()));
    }
    let mut settings = AwsSettings::default();
    if let Some(ep) = endpoint {
        // Any endpoint but the local emulator is treated as a real account (retries included).
        settings = AwsSettings {
            endpoint: Some(ep.to_string()),
            emulator: false,
            retry: crate::aws::RetryPolicy::RealAccount,
            ..AwsSettings::local(ep)
        };
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            settings.dummy_credentials = false;
        }
    }
    Ok(settings)
}

/// The directory of `stack`'s local state for this run.
fn local_state_dir(cli: &Cli, stack: &str) -> PathBuf {
    let home = crate::local::fabric_home();
    match &cli.state_dir {
        Some(d) => d.clone(),
        None if cli.local => crate::local::local_state_dir(&home, stack),
        None => home.join(stack),
    }
}

/// Reads other stacks' outputs from the backend this run uses (for [`Stack::reference`]): the
/// state directories beside this stack's, or the same bucket and prefix.
fn reference_reader(cli: &Cli, own: &str) -> crate::model::ReferenceReader {
    let parent = local_state_dir(cli, own).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let (local, endpoint) = (cli.local, cli.endpoint.clone());
    let backend = cli.backend.clone();
    Arc::new(move |other: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let (locator, local_backend) = match &backend {
                Some(url) => {
                    let (bucket, prefix) = parse_s3_url(url)
                        .ok_or_else(|| format!("`{url}` is not an S3 URL: write s3://bucket/prefix"))?;
                    let settings = aws_settings(local, endpoint.as_deref()).await.map_err(|e| e.to_string())?;
                    let aws = Aws::connect(&settings).await;
                    (StateLocator::S3 { client: aws.s3.clone(), bucket, prefix }, false)
                }
                None => (StateLocator::Local(parent.clone()), true),
            };
            let store = StateStore::open(locator.backend(other), other, KeySource::from_env(local_backend))
                .await
                .map_err(|e| e.to_string())?;
            let state = store.load().await.map_err(|e| e.to_string())?;
            let deployed = state.serial > 0 || !state.resources.is_empty() || !state.outputs.is_empty();
            Ok(deployed.then_some(state.outputs))
        })
    })
}

struct Setup {
    engine: Engine,
    aws: Arc<Aws>,
    locator: StateLocator,
}

async fn setup(cli: &Cli, stack: &str, region: Option<&str>) -> crate::Result<Setup> {
    let mut settings = aws_settings(cli.local, cli.endpoint.as_deref()).await?;
    if let Some(r) = region {
        settings.region = Some(r.to_string());
    }
    let aws = Arc::new(Aws::connect(&settings).await);
    let (backend, local_backend, locator): (Arc<dyn Backend>, bool, StateLocator) = match &cli.backend {
        Some(url) if url.starts_with("s3://") => {
            let (bucket, prefix) = parse_s3_url(url)
                .ok_or_else(|| crate::Error::Other(format!("`{url}` is not an S3 URL: write s3://bucket/prefix")))?;
            let locator = StateLocator::S3 { client: aws.s3.clone(), bucket: bucket.clone(), prefix: prefix.clone() };
            (Arc::new(S3Backend::new(aws.s3.clone(), &bucket, &prefix, stack)), false, locator)
        }
        Some(other) => {
            return Err(crate::Error::Other(format!(
                "unknown state backend `{other}`: use s3://bucket/prefix, or leave it unset for local files"
            )));
        }
        None => {
            let dir = local_state_dir(cli, stack);
            // Other stacks of this backend live beside this one.
            let parent = dir.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
            (Arc::new(LocalBackend::new(dir)), true, StateLocator::Local(parent))
        }
    };
    let store = Arc::new(StateStore::open(backend, stack, KeySource::from_env(local_backend)).await?);
    let ctx = crate::providers::context(stack, Some(aws.clone()));
    #[cfg(feature = "k8s")]
    let ctx = {
        let mut kube = crate::k8s::KubeAccess::new(cli.kubeconfig.clone());
        kube.force_conflicts = cli.force_conflicts;
        ctx.with(kube)
    };
    let mut engine = Engine::new(ctx, store, crate::providers::registry());
    engine.parallel = cli.parallel.max(1);
    engine.observer = Arc::new(Progress::new());
    Ok(Setup { engine, aws, locator })
}

/// `verify`: every check of the deployed fabric, one line each (or `--json`); exit 1 on a failure.
#[cfg(feature = "verify")]
async fn verify_command(
    cli: &Cli,
    state: &crate::state::State,
    aws: &Aws,
    no_canary: bool,
    canary_image: Option<String>,
) -> crate::Result<i32> {
    use crate::verify::{Check, Outcome, canary};
    if state.resources.is_empty() {
        return Ok(fail(1, format!("stack `{}` has nothing deployed: deploy it first", state.stack)));
    }
    let probes = crate::verify::probe::Probes::real().map_err(crate::Error::Other)?;
    let target = crate::verify::Target { aws, local: cli.local, probes };
    let mut report = crate::verify::verify(state, &target).await;
    // The cluster the stack's Kubernetes objects went to, or (with --local, where they are only
    // rendered) its EKS cluster.
    let applied = state.resources.values().find_map(|r| {
        r.type_name.starts_with("k8s:").then(|| serde_json::from_value(r.inputs["cluster"].clone()).ok())?
    });
    let eks = || {
        state.resources.iter().find(|(_, r)| r.type_name == "aws:eks:Cluster").and_then(|(urn, r)| {
            let info = serde_json::json!({"name": urn.name(), "via": "eks", "cluster_name": r.outputs["name"],
                "endpoint": r.outputs["endpoint"], "ca_data": r.outputs["ca_data"]});
            serde_json::from_value(info).ok()
        })
    };
    let cluster: Option<crate::k8s::ClusterInfo> = applied.or_else(eks);
    if let Some(cluster) = cluster {
        let access = crate::k8s::KubeAccess::new(cli.kubeconfig.clone());
        let subject = format!("namespace {}", canary::NAMESPACE);
        let check = if no_canary {
            Check { check: "canary", subject, outcome: Outcome::NotCheckable, detail: "skipped (--no-canary)".into() }
        } else if !access.can_reach(&cluster.via, cli.local) {
            Check {
                check: "canary",
                subject,
                outcome: Outcome::NotCheckable,
                detail: "not checkable locally: no cluster is reached (pass --kubeconfig to run the canary on one)"
                    .into(),
            }
        } else {
            match access.client(&cluster, Some(aws)).await {
                Ok(client) => {
                    let mut c = canary::Canary::default();
                    if let Some(image) = canary_image {
                        c.image = image;
                    }
                    canary::run(client, &c).await
                }
                Err(e) => Check { check: "canary", subject, outcome: Outcome::Fail, detail: e.0 },
            }
        };
        report = crate::verify::with_canary(report, check);
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        print!("{}", report.render());
    }
    Ok(if report.passed { 0 } else { 1 })
}

#[cfg(not(feature = "verify"))]
async fn verify_command(_: &Cli, _: &crate::state::State, _: &Aws, _: bool, _: Option<String>) -> crate::Result<i32> {
    Ok(fail(
        2,
        "this program was built without fabric's `verify` feature: add it to the `fabric` dependency's features",
    ))
}

fn confirm(cli: &Cli, question: &str) -> Result<bool, String> {
    if cli.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err("not running on a terminal, so nothing was changed: pass --yes to confirm".into());
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}

/// `policy`: the rules, the findings and the waivers (or `--json`); exit 2 when a mandatory
/// violation is not waived.
fn policy_command(cli: &Cli, graph: &Graph, report: &crate::model::policy::PolicyReport) -> i32 {
    if cli.json {
        let rules: Vec<serde_json::Value> = crate::policy::rules_of(graph)
            .iter()
            .map(|r| serde_json::json!({"id": r.id(), "severity": r.severity(), "title": r.title(), "equivalents": r.equivalents()}))
            .collect();
        let out = serde_json::json!({"rules": rules, "report": report, "waivers": graph.policy().waivers});
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    } else {
        println!("Rules of stack `{}`{}:", graph.stack(), if graph.production() { " (production)" } else { "" });
        print!("{}", crate::policy::catalogue(&crate::policy::rules_of(graph)));
        let waivers = &graph.policy().waivers;
        if !waivers.is_empty() {
            println!("Waivers:");
            waivers.iter().for_each(|w| println!("  {}", w.describe()));
        }
        print!("{}", report.render());
    }
    policy_verdict(report)
}

/// The region the estimate prices: the stack's own, else the environment's, else us-east-1.
fn cost_region(graph: &Graph) -> String {
    graph
        .region()
        .map(String::from)
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into())
}

/// The policy's verdict on the program, and what it read of it (the cost estimate reads the same).
struct Checked {
    report: crate::model::policy::PolicyReport,
    view: crate::model::policy::PolicyView,
}

/// What the change does to the monthly cost: what state holds against what the program declares
/// (`after`, the program as the policy read it).
fn cost_diff(
    graph: &Graph,
    after: &crate::model::policy::PolicyView,
    state: &crate::state::State,
) -> crate::cost::CostDiff {
    let region = cost_region(graph);
    crate::cost::CostDiff {
        before: crate::cost::estimate(&crate::cost::view_of_state(state), &region, graph.assumptions()),
        after: crate::cost::estimate(after, &region, graph.assumptions()),
    }
}

/// Exit 2, said plainly, when the policy stops the run.
fn policy_verdict(report: &crate::model::policy::PolicyReport) -> i32 {
    let n = report.blocking().count();
    if n == 0 {
        return 0;
    }
    eprintln!(
        "error: {n} mandatory policy violation{} not waived; nothing was changed (fix them, or waive each in code with a reason: `s.waive(\"<rule>\", <resource>, \"why\")`)",
        if n == 1 { "" } else { "s" }
    );
    2
}

async fn drive(cli: &Cli, graph: Arc<Graph>, policy: Option<Checked>, ending: Ending) -> crate::Result<i32> {
    let stack = graph.stack().to_string();
    let Setup { engine, aws, locator } = setup(cli, &stack, graph.region()).await?;
    if let Verb::Unlock = cli.verb {
        match engine.store.break_lock().await? {
            Some(holder) => eprintln!("broke the lock of stack `{stack}` held by {holder}"),
            None => eprintln!("stack `{stack}` was not locked"),
        }
        return Ok(0);
    }
    if let Verb::Outputs { name, show_secrets } = &cli.verb {
        let state = engine.store.load().await?;
        let shown = |v: &serde_json::Value| if *show_secrets { v.clone() } else { crate::model::secret::redact(v) };
        match name {
            Some(n) => match state.outputs.get(n) {
                Some(serde_json::Value::String(s)) => println!("{s}"),
                Some(v) => println!("{}", shown(v)),
                None => return Ok(fail(1, format!("stack `{stack}` has no output `{n}`"))),
            },
            None if cli.json => {
                let all: serde_json::Map<_, _> = state.outputs.iter().map(|(k, v)| (k.clone(), shown(v))).collect();
                println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
            }
            None => state.outputs.iter().for_each(|(k, v)| println!("{k} = {}", shown(v))),
        }
        return Ok(0);
    }
    if let Verb::Verify { no_canary, canary_image } = &cli.verb {
        let state = engine.store.load().await?;
        return verify_command(cli, &state, &aws, *no_canary, canary_image.clone()).await;
    }
    match &cli.verb {
        Verb::History => return day2::history_command(cli, &engine).await,
        Verb::Diff { a, b } => return day2::diff_command(cli, &engine, *a, *b).await,
        _ => {}
    }
    let mutating = !matches!(
        cli.verb,
        Verb::Preview
            | Verb::State { cmd: day2::StateCmd::List | day2::StateCmd::Show { .. } }
            | Verb::Import { discover: true, .. }
    );
    // Ctrl-C: start nothing new, let the steps in flight finish and be recorded, release the lock.
    // A second Ctrl-C exits at once (the journal still knows what was in flight).
    let stop = engine.stop.clone();
    let interrupts = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!(
                "\ninterrupted: finishing the steps in flight (Ctrl-C again to quit now; the next deploy resumes)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let opened = if mutating {
        Session::change_of(&engine, &format!("{:?}", cli.verb).to_lowercase(), Some(&graph)).await
    } else {
        Session::read(&engine, Some(&graph)).await
    };
    let mut session = match opened {
        Ok(session) => session,
        Err(e) => {
            interrupts.abort();
            return Err(e.into());
        }
    };
    if let Some(holder) = session.took_over() {
        eprintln!("warning: took over the lock of stack `{stack}` left by {holder}");
    }
    for r in session.recovered() {
        eprintln!("{}{}", if r.unsettled() { "warning: " } else { "" }, r.describe());
    }
    let result = match &cli.verb {
        Verb::State { cmd } => day2::state_command(cli, &mut session, &graph, &locator, cmd).await,
        Verb::Import { urn, id, discover } => {
            day2::import_command(cli, &mut session, &graph, urn.as_deref(), id.as_deref(), *discover).await
        }
        Verb::Rollback { to } => rollback::rollback_command(cli, &mut session, &graph, *to).await,
        _ => run_verb(cli, &mut session, &graph, policy.as_ref()).await,
    };
    interrupts.abort();
    let _state = session.end().await?;
    if engine.stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(130);
    }
    if let Ok(path) = std::env::var("FABRIC_API_LOG") {
        let _ = std::fs::write(path, aws.calls.calls().join("\n"));
    }
    if ending == Ending::ExitProcess
        && let Ok(code) = result
    {
        // The state is written and the lock released: exit now, rather than free the program's
        // graph, the state and the policy's view value by value first (30 ms of a 10,000-resource
        // no-op preview, `cargo xtask bench e2e`). Exiting flushes standard output.
        std::process::exit(code);
    }
    result
}

async fn run_verb(
    cli: &Cli,
    session: &mut Session<'_>,
    graph: &Arc<Graph>,
    policy: Option<&Checked>,
) -> crate::Result<i32> {
    let engine = session.engine();
    let persist = !matches!(cli.verb, Verb::Preview);
    let in_program = !matches!(cli.verb, Verb::Destroy);
    let selection = match Selection::resolve(&cli.target, &cli.exclude, in_program.then_some(&**graph), session.state())
    {
        Ok(s) => s,
        Err(e) => return Ok(fail(2, e)),
    };
    let interrupted = || engine.stop.load(std::sync::atomic::Ordering::SeqCst);
    let outcome = |report: &crate::engine::ApplyReport| {
        if interrupted() {
            "interrupted".to_string()
        } else if report.ok() {
            "succeeded".to_string()
        } else {
            format!("failed ({} of {} steps)", report.failed().count(), report.results.len())
        }
    };
    match cli.verb {
        Verb::Refresh => {
            let only = selection.as_ref().map(|s| s.members(Direction::Read, Some(graph), session.state()));
            if let Some(sel) = &selection {
                let n = only.as_ref().map(|o| o.len()).unwrap_or(0);
                eprintln!("{}", sel.describe(n, session.state().resources.len()));
            }
            let report = engine.refresh_only(session.state_mut(), Some(graph), true, only.as_ref()).await?;
            eprint!("{}", report.render());
            let summary = format!("read {} resources, {} drifted", report.read, report.drift.len());
            day2::record_history(engine, "refresh", summary, "succeeded".into(), Default::default()).await;
            Ok(0)
        }
        Verb::Preview | Verb::Deploy => {
            if cli.refresh {
                let only = selection.as_ref().map(|s| s.members(Direction::Apply, Some(graph), session.state()));
                let report = engine.refresh_only(session.state_mut(), Some(graph), persist, only.as_ref()).await?;
                eprint!("{}", report.render());
            }
            let mut plan = session.plan(graph, selection.clone()).await?;
            // The clusters' own answer (server-side dry run) before the plan is shown.
            let checked = engine.dry_run(graph, session.state(), &mut plan).await;
            let Checked { report: policy, view } = policy.expect("checked before the run");
            let cost = cost_diff(graph, view, session.state());
            if cli.json && matches!(cli.verb, Verb::Preview) {
                let mut out = plan_json(&plan);
                out["policy"] = serde_json::to_value(policy).expect("JSON");
                out["cost"] = cost.to_json();
                println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
            } else {
                eprint!("{}", render_plan(&plan));
            }
            for w in graph.warnings() {
                eprintln!("warning: {w}");
            }
            eprint!("{}", policy.render());
            eprint!("{}", crate::cost::render_diff(&cost));
            if policy.blocks() {
                return Ok(policy_verdict(policy));
            }
            if checked.asked() {
                eprint!("{}", checked.render());
            }
            if !checked.ok() {
                let n = checked.rejected.len();
                eprintln!(
                    "error: the cluster refused {n} object{} in a dry run; nothing was changed",
                    if n == 1 { "" } else { "s" }
                );
                return Ok(2);
            }
            if plan.has_changes() && !cli.skip_preflight {
                let aws = engine.ctx.aws().map_err(|e| crate::Error::Other(e.0))?;
                let mut pf = crate::aws::preflight::run(aws, graph, &plan, session.state()).await;
                // Names held by others, asked of every provider that creates under a chosen name.
                let names = crate::engine::names::check(&engine.ctx, graph, &plan, session.state()).await;
                pf.add_names(names);
                eprintln!("{}", pf.summary());
                if !pf.problems.is_empty() {
                    let n = pf.problems.len();
                    eprintln!(
                        "error: preflight found {n} problem{} that AWS would refuse; nothing was changed:",
                        if n == 1 { "" } else { "s" }
                    );
                    for p in &pf.problems {
                        eprintln!("  - {p}");
                    }
                    return Ok(2);
                }
            }
            let atomic = cli.atomic || graph.atomic();
            if atomic && plan.has_changes() {
                let lost = rollback::cannot_go_back(&plan);
                if lost.is_empty() {
                    eprintln!("Atomic: if a step fails, everything this deploy changed goes back.");
                } else {
                    eprintln!("Atomic: if a step fails, this deploy goes back, except:");
                    lost.iter().for_each(|l| eprintln!("  - {l}"));
                }
            }
            if matches!(cli.verb, Verb::Preview) {
                return Ok(0);
            }
            if plan.has_changes() && !confirm(cli, "Apply these changes?").map_err(crate::Error::Other)? {
                eprintln!("Nothing was changed.");
                return Ok(1);
            }
            // Where an atomic deploy returns to: found before anything changes, so that a stack
            // with nothing to return to says so up front.
            let was_empty = session.state().resources.is_empty();
            let t0 = Instant::now();
            let report = session.apply(graph.clone(), &plan).await?;
            let state = session.state();
            if plan.has_changes() {
                eprint!("{}", render_report(&report, t0.elapsed()));
            }
            let mut detail = rollback::revision_detail(graph, state);
            detail.waivers = policy.waivers_used();
            let id = day2::record_history(engine, "deploy", day2::summary_line(&plan), outcome(&report), detail).await;
            if atomic && !report.ok() && !interrupted() {
                match rollback::find(session, None, id).await {
                    Ok(Some(rev)) => {
                        let why = format!("revision {} failed", id.map(|i| i.to_string()).unwrap_or_default());
                        rollback::roll_back(session, graph, &rev, why.trim()).await?;
                    }
                    Ok(None) if was_empty => {
                        // The first deploy: the way back is to nothing.
                        let empty = rollback::Revision::empty();
                        rollback::roll_back(session, graph, &empty, "the first deploy failed").await?;
                    }
                    Ok(None) => eprintln!(
                        "warning: --atomic: this stack has no successful deploy recorded to return to; nothing was rolled back"
                    ),
                    Err(problem) => eprintln!("warning: --atomic: nothing was rolled back: {problem}"),
                }
            }
            let state = session.state();
            report_emulator_gaps(state);
            write_kubeconfigs(cli, graph.stack(), &state.outputs);
            print_outputs(cli, &state.outputs);
            Ok(if report.ok() { 0 } else { 1 })
        }
        Verb::Destroy => {
            let plan = session.plan_destroy(selection.as_ref())?;
            eprint!("{}", render_plan(&plan));
            if !plan.has_changes() {
                return Ok(0);
            }
            if !confirm(cli, &format!("Destroy every resource of stack `{}`?", graph.stack()))
                .map_err(crate::Error::Other)?
            {
                eprintln!("Nothing was changed.");
                return Ok(1);
            }
            let t0 = Instant::now();
            let report = session.destroy(&plan).await?;
            let state = session.state();
            eprint!("{}", render_report(&report, t0.elapsed()));
            let remaining: std::collections::BTreeMap<String, serde_json::Value> =
                state.resources.iter().map(|(u, r)| (u.to_string(), r.inputs.clone())).collect();
            let detail = crate::state::history::HistoryDetail { inputs: remaining, ..Default::default() };
            day2::record_history(engine, "destroy", day2::summary_line(&plan), outcome(&report), detail).await;
            Ok(if report.ok() { 0 } else { 1 })
        }
        _ => unreachable!("handled before"),
    }
}

/// Writes each exported kubeconfig (`kubeconfig`, `kubeconfig-<cluster>`) beside the stack's
/// local state, readable by its owner only.
fn write_kubeconfigs(cli: &Cli, stack: &str, outputs: &std::collections::BTreeMap<String, serde_json::Value>) {
    let dir = local_state_dir(cli, stack);
    for (name, value) in outputs.iter().filter(|(k, _)| k.as_str() == "kubeconfig" || k.starts_with("kubeconfig-")) {
        let Some(text) = value.as_str() else { continue };
        let path = dir.join(name);
        let written = std::fs::create_dir_all(&dir).and_then(|_| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
            f.write_all(text.as_bytes())
        });
        match written {
            Ok(()) => eprintln!("kubeconfig written to {}", path.display()),
            Err(e) => eprintln!("warning: could not write {}: {e}", path.display()),
        }
    }
}

/// Says plainly what the local emulator could not create.
fn report_emulator_gaps(state: &crate::state::State) {
    for (urn, rec) in &state.resources {
        if let Some(gap) = rec.outputs.get(crate::aws::EMULATOR_GAP).and_then(|g| g.as_str()) {
            let what = if gap.contains("does not implement") || gap.contains("have no") {
                "NOT CREATED"
            } else {
                "emulated in part"
            };
            eprintln!(
                "warning: {what} in the local emulator: {}: {gap}; against AWS this step does all of it",
                urn.display_short()
            );
        }
    }
}

fn print_outputs(cli: &Cli, outputs: &std::collections::BTreeMap<String, serde_json::Value>) {
    if outputs.is_empty() {
        return;
    }
    let redacted: serde_json::Map<_, _> =
        outputs.iter().map(|(k, v)| (k.clone(), crate::model::secret::redact(v))).collect();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&redacted).expect("JSON"));
    } else {
        println!("\nOutputs:");
        for (k, v) in &redacted {
            match v.as_str() {
                // Documents (kubeconfigs) and blobs (CA data) are shown by `outputs NAME`, not inline.
                Some(text) if text.contains('\n') => {
                    println!("  {k} = ({} lines: print it with `outputs {k}`)", text.lines().count())
                }
                Some(text) if text.len() > 200 => {
                    println!("  {k} = ({} characters: print it with `outputs {k}`)", text.len())
                }
                _ => println!("  {k} = {v}"),
            }
        }
    }
}
