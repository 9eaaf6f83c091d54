//! `cargo xtask <verb> <stack> [flags]`: builds a stack binary and runs it with the verb; manages
//! the local AWS emulator; runs the tests and benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

/// `cargo xtask`: fabric's tasks, and any other verb for a stack (`deploy`, `preview`, `destroy`,
/// `refresh`, `outputs`, `render`, `graph`, `unlock`, `import`, `state`, `history`, `diff`,
/// `verify`, …): the stack's binary is built and runs the verb, so its own command line (`cargo
/// xtask <verb> <stack> --help`) is the one reference of the verbs and their flags.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about, disable_help_subcommand = true)]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// The local AWS emulator (moto) used by --local.
    Local {
        #[arg(value_parser = ["up", "down", "status"])]
        action: String,
    },
    /// Install the emulator if needed, run every test (arguments go to `cargo test`).
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks: all, or one of plan, apply, e2e, --loop.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Format every Rust file of the repository (`--check`: only say which differ). `cargo fmt`
    /// does not reach modules declared inside a macro, as the service table declares each service's.
    Fmt {
        #[arg(long)]
        check: bool,
    },
    /// Regenerate the stack graphs embedded in docs/.
    Docs,
    /// Check that fabric-core (model, state, engine) links no cloud client and no crate of ours.
    Layers,
    /// Check that fabric builds, warning-free, with no service and with each one alone.
    Features,
    /// `prices refresh`: rebuild the cost estimate's price table (sdk/src/cost/prices.json) from
    /// the AWS Price List API (needs credentials that may call pricing:GetProducts).
    Prices {
        #[arg(value_parser = ["refresh"])]
        action: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// `<verb> <stack> [flags]`: build stack `<stack>` and run `<verb>` with it.
    #[command(external_subcommand)]
    Stack(Vec<String>),
}

/// The workspace this command runs in: found from the current directory at run time (a build
/// shared between checkouts must not point at another checkout), else where xtask was built.
fn workspace_root() -> PathBuf {
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        if std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
            && d.join("xtask").is_dir()
        {
            return d;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn status_code(s: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8)
}

fn run_stack(verb: &str, stack: &str, rest: &[String]) -> ExitCode {
    let root = workspace_root();
    if !root.join("stacks").join(stack).join("Cargo.toml").exists() {
        eprintln!("error: no stack `{stack}` (looked for stacks/{stack}/Cargo.toml)");
        return ExitCode::from(2);
    }
    // With `--local`, the emulator is installed while cargo builds the stack, at the lowest CPU
    // priority so that it takes only what the build leaves idle (one core, while `aws-sdk-ec2`
    // compiles alone): on a fresh clone, pip's half a minute is off the first deploy.
    let installing = rest.iter().any(|a| a == "--local").then(|| {
        let home = local_home(&root);
        std::thread::spawn(move || {
            // SAFETY: lowers this thread's own priority (Linux: `0` is the calling thread), which
            // the venv and pip processes it starts inherit; no memory is involved.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
            fabric_local::ensure_installed(&home)
        })
    });
    let mut build = cargo();
    build.args(["build", "--quiet", "-p", stack]);
    if has_dylib_feature(&root, stack) {
        build.args(["--features", &format!("{stack}/dylib")]);
    }
    let build = build.status();
    if let Some(install) = installing {
        match install.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            Err(_) => {
                eprintln!("error: installing the local emulator failed (panicked)");
                return ExitCode::from(1);
            }
        }
    }
    match build {
        Ok(s) if s.success() => {}
        Ok(s) => return status_code(s),
        Err(e) => {
            eprintln!("error: running cargo: {e}");
            return ExitCode::from(1);
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() { target } else { root.join(target) };
    let binary = target.join("debug").join(stack);
    match Command::new(&binary).arg(verb).args(rest).current_dir(&root).status() {
        Ok(s) => status_code(s),
        Err(e) => {
            eprintln!("error: running {}: {e}", binary.display());
            ExitCode::from(1)
        }
    }
}

/// Where a stack run from `root` keeps its local emulator: `FABRIC_HOME` (relative to `root`, the
/// stack's working directory), else `root/.fabric`.
fn local_home(root: &Path) -> PathBuf {
    std::env::var_os("FABRIC_HOME").map(|h| root.join(h)).unwrap_or_else(|| root.join(".fabric"))
}

/// Whether the stack offers the `dylib` feature: fabric linked as a shared library, a fast relink
/// after each edit (`sdk-dylib/src/lib.rs`). Its executable finds the library through the library
/// path `cargo run` gives this process (and so its children).
fn has_dylib_feature(root: &Path, stack: &str) -> bool {
    std::fs::read_to_string(root.join("stacks").join(stack).join("Cargo.toml")).is_ok_and(|m| offers_dylib(&m))
}

/// Whether a stack's manifest declares a `dylib` feature that brings `fabric-dylib`.
fn offers_dylib(manifest: &str) -> bool {
    let Ok(manifest) = manifest.parse::<toml::Table>() else { return false };
    manifest
        .get("features")
        .and_then(|f| f.get("dylib"))
        .and_then(toml::Value::as_array)
        .is_some_and(|deps| deps.iter().any(|d| d.as_str() == Some("dep:fabric-dylib")))
}

fn local(action: &str) -> ExitCode {
    let home = workspace_root().join(".fabric");
    let result = match action {
        "up" => fabric_local::ensure_running(&home).map(|(e, fresh)| {
            println!("{} ({})", e.endpoint(), if fresh { "started" } else { "already running" });
        }),
        "down" => fabric_local::stop(&home).map(|e| match e {
            Some(e) => println!("stopped the local AWS emulator (pid {}); local state was discarded with it", e.pid),
            None => println!("the local AWS emulator was not running"),
        }),
        "status" => {
            match fabric_local::running(&home) {
                Some(e) => println!("running at {} (pid {})", e.endpoint(), e.pid),
                None => println!("not running"),
            }
            Ok(())
        }
        other => Err(format!("unknown action `{other}`: up, down or status")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn test(rest: &[String]) -> ExitCode {
    let home = workspace_root().join(".fabric");
    if let Err(e) = fabric_local::ensure_installed(&home) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let mut args: Vec<String> = rest.to_vec();
    // Tests that need a real cluster are `#[ignore]`d; with a cluster named, they run too.
    if std::env::var_os("FABRIC_TEST_KUBECONFIG").is_some() {
        if !args.iter().any(|a| a == "--") {
            args.push("--".into());
        }
        args.push("--include-ignored".into());
        eprintln!("FABRIC_TEST_KUBECONFIG is set: the real-cluster tests run too");
    }
    // CI asks for cargo's timing report (`FABRIC_CI_TIMINGS`): which crates the test build spent
    // its minutes on, so that the next regression is visible (target/cargo-timings/).
    let timings = std::env::var_os("FABRIC_CI_TIMINGS").is_some();
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    if timings {
        test.arg("--timings");
    }
    match test.args(&args).status() {
        Ok(s) => status_code(s),
        Err(e) => {
            eprintln!("error: running cargo test: {e}");
            ExitCode::from(1)
        }
    }
}

fn bench(rest: &[String]) -> ExitCode {
    // The scenarios that time stack processes (built in the dev profile, as `cargo xtask` builds
    // them) need no optimized runner; the in-process ones do.
    let profile = match rest.first().map(String::as_str) {
        Some("e2e" | "edit-loop" | "--loop") => "dev",
        _ => "perf",
    };
    let run = ["run", "--profile", profile, "-q", "-p", "fabric-bench", "--bin", "fabric-bench", "--"];
    match cargo().args(run).args(rest).status() {
        Ok(s) => status_code(s),
        Err(e) => {
            eprintln!("error: running the benchmarks: {e}");
            ExitCode::from(1)
        }
    }
}

/// Crates the cloud-free layers must not link: the AWS SDK, and the Kubernetes client and types.
const CLOUD_CRATES: &[&str] = &["aws-", "kube", "k8s-openapi"];

/// What `fabric-core` links through normal dependencies that it must not: cloud crates and
/// crates of this workspace, by name, from `cargo metadata`'s resolved graph.
fn forbidden_in_core(metadata: &cargo_metadata::Metadata) -> Result<(Vec<String>, usize), String> {
    use cargo_metadata::DependencyKind;
    let resolve = metadata.resolve.as_ref().ok_or("cargo metadata resolved nothing")?;
    let core =
        metadata.workspace_packages().into_iter().find(|p| p.name.as_str() == "fabric-core").ok_or("no fabric-core")?;
    let members: std::collections::HashSet<_> = metadata.workspace_members.iter().collect();
    let nodes: std::collections::HashMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![&core.id];
    let mut found = Vec::new();
    while let Some(id) = todo.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let normal = dep.dep_kinds.iter().any(|k| k.kind == DependencyKind::Normal);
            if !normal || !seen.insert(&dep.pkg) {
                continue;
            }
            let name = metadata[&dep.pkg].name.to_string();
            if members.contains(&dep.pkg) {
                found.push(format!("{name} (a crate of this workspace)"));
            } else if CLOUD_CRATES.iter().any(|c| name.starts_with(c)) {
                found.push(name);
            }
            todo.push(&dep.pkg);
        }
    }
    found.sort();
    found.dedup();
    Ok((found, seen.len()))
}

/// `engine` and `model` know no cloud: `fabric-core`, which holds them with `state`, must build
/// without the AWS SDK and the Kubernetes client (docs/design-notes.md, "Layers").
/// The cargo features of the `fabric` crate to check alone (and none): every feature of
/// `sdk/Cargo.toml` but `default` and `full`, read from the manifest.
fn fabric_features(manifest: &str) -> Result<Vec<String>, String> {
    let manifest: toml::Table = manifest.parse().map_err(|e| format!("sdk/Cargo.toml: {e}"))?;
    let features =
        manifest.get("features").and_then(toml::Value::as_table).ok_or("sdk/Cargo.toml has no [features]")?;
    let mut all = vec![String::new()];
    all.extend(features.keys().filter(|k| !matches!(k.as_str(), "default" | "full")).cloned());
    Ok(all)
}

/// `cargo check -p fabric --no-default-features --features <one>` for each feature alone (and for
/// none): a feature must bring what it needs, and leave nothing unused behind it.
fn features() -> ExitCode {
    let manifest = std::fs::read_to_string(workspace_root().join("sdk/Cargo.toml")).unwrap_or_default();
    let features = match fabric_features(&manifest) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = Vec::new();
    for feature in &features {
        let shown = if feature.is_empty() { "(none)".to_string() } else { feature.clone() };
        let out = cargo()
            .args(["check", "-p", "fabric", "--lib", "--no-default-features", "--features", feature.as_str()])
            .args(["--message-format", "short"])
            .output();
        let ok = match out {
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stderr);
                let warnings: Vec<&str> = text.lines().filter(|l| l.contains(": warning: ")).collect();
                for w in &warnings {
                    eprintln!("  {shown}: {w}");
                }
                if !o.status.success() {
                    eprintln!("{text}");
                }
                o.status.success() && warnings.is_empty()
            }
            Err(e) => {
                eprintln!("error: running cargo check: {e}");
                false
            }
        };
        println!("features: {shown:<8} {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(shown.clone());
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: fabric does not build cleanly with feature(s) {}\n  fix: gate what a service needs with \
             #[cfg(feature = \"…\")], and add to a feature the ones it refers to (sdk/Cargo.toml)",
            failed.join(", ")
        );
        ExitCode::from(1)
    }
}

fn layers() -> ExitCode {
    let metadata = cargo_metadata::MetadataCommand::new().current_dir(workspace_root()).exec();
    let checked = metadata.map_err(|e| e.to_string()).and_then(|m| forbidden_in_core(&m));
    match checked {
        Ok((found, _)) if !found.is_empty() => {
            eprintln!(
                "error: fabric-core depends on {}\n  fix: the engine and the model know providers only through \
                 engine::provider (the trait and Ctx); move what needs a cloud client, or a crate of ours, into the fabric crate",
                found.join(", ")
            );
            ExitCode::from(1)
        }
        Ok((_, n)) => {
            println!(
                "layers: fabric-core (model, state, engine) depends on no cloud crate and no crate of ours ({n} crates)"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cargo metadata: {e}");
            ExitCode::from(1)
        }
    }
}

/// rustfmt over every `.rs` file git tracks, each with the `rustfmt.toml` above it.
fn fmt(check: bool) -> ExitCode {
    let root = workspace_root();
    let listed = match Command::new("git").args(["ls-files", "-z", "*.rs"]).current_dir(&root).output() {
        Ok(o) if o.status.success() => o.stdout,
        Ok(o) => {
            eprintln!("error: git ls-files: {}", String::from_utf8_lossy(&o.stderr));
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("error: running git: {e}");
            return ExitCode::from(1);
        }
    };
    let files: Vec<String> =
        listed.split(|b| *b == 0).filter(|f| !f.is_empty()).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let mut rustfmt = Command::new("rustfmt");
    rustfmt.args(["--edition", "2024"]).args(check.then_some("--check")).args(&files).current_dir(&root);
    match rustfmt.status() {
        Ok(s) if s.success() => {
            println!("fmt: {} files {}", files.len(), if check { "formatted" } else { "formatted now" });
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("error: files above differ from rustfmt's layout\n  fix: run `cargo xtask fmt`");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: running rustfmt: {e} (rustup component add rustfmt)");
            ExitCode::from(1)
        }
    }
}

/// The docs that embed a stack's `graph --mermaid` picture (checked by each stack's tests).
const DOCUMENTED_GRAPHS: &[(&str, &str)] = &[("acme", "docs/acme.md"), ("reference", "docs/reference.md")];

/// Replaces the ```mermaid block of each documented graph with the stack's current picture.
fn docs() -> ExitCode {
    let root = workspace_root();
    for (stack, doc) in DOCUMENTED_GRAPHS {
        let out = match cargo().args(["run", "--quiet", "-p", stack, "--", "graph", "--mermaid"]).output() {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!("error: graph of {stack}: {}", String::from_utf8_lossy(&o.stderr));
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("error: running cargo: {e}");
                return ExitCode::from(1);
            }
        };
        let path = root.join(doc);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: reading {doc}: {e}");
                return ExitCode::from(1);
            }
        };
        let Some((before, rest)) = text.split_once("```mermaid\n") else {
            eprintln!("error: {doc} has no ```mermaid block");
            return ExitCode::from(1);
        };
        let after = rest.split_once("```").map(|(_, a)| a).unwrap_or("");
        let graph = String::from_utf8_lossy(&out.stdout);
        let updated = format!("{before}```mermaid\n{}\n```{after}", graph.trim_end());
        if let Err(e) = std::fs::write(&path, updated) {
            eprintln!("error: writing {doc}: {e}");
            return ExitCode::from(1);
        }
        eprintln!("{doc}: graph of {stack} regenerated");
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    match Xtask::parse().task {
        Task::Local { action } => local(&action),
        Task::Test { args } => test(&args),
        Task::Bench { args } => bench(&args),
        Task::Fmt { check } => fmt(check),
        Task::Docs => docs(),
        Task::Layers => layers(),
        Task::Features => features(),
        Task::Prices { action, args } => {
            match cargo().args(["run", "-q", "-p", "fabric-prices", "--", &action]).args(&args).status() {
                Ok(s) => status_code(s),
                Err(e) => {
                    eprintln!("error: running fabric-prices: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Task::Stack(args) => match args.as_slice() {
            [verb, stack, rest @ ..] if !stack.starts_with('-') => run_stack(verb, stack, rest),
            [verb, ..] => {
                eprintln!(
                    "error: `cargo xtask {verb}` needs a stack name: `cargo xtask {verb} <stack>` (stacks/<stack>)"
                );
                ExitCode::from(2)
            }
            [] => ExitCode::from(2),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{fabric_features, forbidden_in_core, offers_dylib};

    #[test]
    fn a_stack_offers_the_shared_library_only_by_the_feature() {
        assert!(offers_dylib("[features]\ndylib = [\"dep:fabric-dylib\"]\n"));
        assert!(offers_dylib("[features]\ndylib=[ \"dep:fabric-dylib\" ]\n"));
        assert!(!offers_dylib("[dependencies]\nfabric-dylib = { path = \"../../sdk-dylib\" }\n"));
        assert!(!offers_dylib("# dylib = [\"dep:fabric-dylib\"]\n"));
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/example/Cargo.toml")).unwrap();
        assert!(offers_dylib(&example), "stacks/example offers it");
    }

    #[test]
    fn the_features_checked_are_the_manifest_s() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/Cargo.toml")).unwrap();
        let features = fabric_features(&manifest).unwrap();
        assert_eq!(features[0], "", "none first");
        assert!(features.iter().any(|f| f == "rds") && features.iter().any(|f| f == "k8s"), "{features:?}");
        assert!(!features.iter().any(|f| f == "full" || f == "default"), "{features:?}");
    }

    #[test]
    fn fabric_core_links_no_cloud_crate_and_no_crate_of_ours() {
        let metadata = cargo_metadata::MetadataCommand::new()
            .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
            .exec()
            .unwrap();
        let (found, n) = forbidden_in_core(&metadata).unwrap();
        assert!(found.is_empty(), "{found:?}");
        assert!(n > 10, "the walk saw {n} crates");
    }
}
