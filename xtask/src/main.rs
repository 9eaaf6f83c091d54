//! `cargo xtask <verb> <stack> [flags]`: builds a stack binary and runs it with the verb; manages
//! the local AWS emulator; runs the tests and benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const STACK_VERBS: &[&str] = &[
    "deploy", "preview", "destroy", "refresh", "outputs", "render", "graph", "unlock", "import", "state", "history",
    "diff", "verify",
];

const USAGE: &str = "usage:
  cargo xtask <deploy|preview|destroy|refresh|outputs|render|graph|unlock> <stack> [--local] [--json] [--yes] [--parallel N] [--refresh] [--backend s3://bucket/prefix] [--target URN]... [--exclude URN]... [...]
  cargo xtask import <stack> <urn> <cloud-id> | --discover    adopt an existing resource
  cargo xtask state <stack> <list|show|rm|mv|unprotect|undo|settle> ...   edit state (journalled, undoable)
  cargo xtask history <stack> [--json]   every deploy, destroy, refresh, import, state command
  cargo xtask diff <stack> <rev-a> <rev-b>   what changed in the desired inputs between two entries
  cargo xtask verify <stack> [--local] [--json] [--kubeconfig PATH] [--no-canary]   check the deployed fabric:
                                         records, listeners, HTTPS, DNS through the zone's servers, canary upgrade
  cargo xtask local <up|down|status>     the local AWS emulator (moto) used by --local
  cargo xtask test [cargo test args]     install the emulator if needed, run every test
  cargo xtask bench [plan|apply|e2e|--loop]   run the benchmarks (all, or one: plan, apply,
                                         no-op preview as a process, edit→preview loop)
  cargo xtask docs                       regenerate the stack graphs embedded in docs/
  cargo xtask layers                     check that fabric-core (model, state, engine) links no cloud client
  cargo xtask features                   check that fabric builds, warning-free, with no service and with each one alone";

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
    let mut build = cargo();
    build.args(["build", "--quiet", "-p", stack]);
    if has_dylib_feature(&root, stack) {
        build.args(["--features", &format!("{stack}/dylib")]);
    }
    let build = build.status();
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

/// Whether the stack offers the `dylib` feature: fabric linked as a shared library, a fast relink
/// after each edit (`sdk-dylib/src/lib.rs`). Its executable finds the library through the library
/// path `cargo run` gives this process (and so its children).
fn has_dylib_feature(root: &Path, stack: &str) -> bool {
    std::fs::read_to_string(root.join("stacks").join(stack).join("Cargo.toml")).is_ok_and(|m| offers_dylib(&m))
}

/// Whether a stack's manifest declares `dylib = ["dep:fabric-dylib"]`.
fn offers_dylib(manifest: &str) -> bool {
    manifest.lines().any(|l| l.split_whitespace().collect::<String>() == "dylib=[\"dep:fabric-dylib\"]")
}

fn local(action: Option<&str>) -> ExitCode {
    let home = workspace_root().join(".fabric");
    let result = match action {
        Some("up") => fabric_local::ensure_running(&home).map(|(e, fresh)| {
            println!("{} ({})", e.endpoint(), if fresh { "started" } else { "already running" });
        }),
        Some("down") => fabric_local::stop(&home).map(|e| match e {
            Some(e) => println!("stopped the local AWS emulator (pid {}); local state was discarded with it", e.pid),
            None => println!("the local AWS emulator was not running"),
        }),
        Some("status") => {
            match fabric_local::running(&home) {
                Some(e) => println!("running at {} (pid {})", e.endpoint(), e.pid),
                None => println!("not running"),
            }
            Ok(())
        }
        _ => Err(USAGE.to_string()),
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
    match cargo().args(["test", "--workspace"]).args(&args).status() {
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

/// The cloud crates among the normal dependencies listed by `cargo tree --prefix none`.
fn cloud_crates_in(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| CLOUD_CRATES.iter().any(|c| name.starts_with(c)))
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// `engine` and `model` know no cloud: `fabric-core`, which holds them with `state`, must build
/// without the AWS SDK and the Kubernetes client (docs/design-notes.md, "Layers").
/// The cargo features of the `fabric` crate, one per service (`full` is all of them).
const FEATURES: &[&str] =
    &["", "ec2", "iam", "route53", "acm", "elbv2", "rds", "backup", "eks", "kms", "k8s", "verify"];

/// `cargo check -p fabric --no-default-features --features <one>` for each feature alone (and for
/// none): a feature must bring what it needs, and leave nothing unused behind it.
fn features() -> ExitCode {
    let mut failed = Vec::new();
    for feature in FEATURES {
        let shown = if feature.is_empty() { "(none)" } else { feature };
        let out = cargo()
            .args(["check", "-p", "fabric", "--lib", "--no-default-features", "--features", feature])
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
            failed.push(shown);
        }
    }
    // A program built without a service names the feature when its state holds that service's
    // types: the registry's table, tested where the feature is off.
    let table = cargo()
        .args(["test", "--quiet", "-p", "fabric", "--lib", "--no-default-features", "--features", "ec2"])
        .arg("providers::")
        .status();
    let table_ok = matches!(table, Ok(s) if s.success());
    println!("features: ec2 alone, the missing-feature table: {}", if table_ok { "ok" } else { "FAILED" });
    if !table_ok {
        failed.push("ec2 (providers:: tests)");
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
    let out = match cargo().args(["tree", "-p", "fabric-core", "-e", "normal", "--prefix", "none"]).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("error: cargo tree: {}", String::from_utf8_lossy(&o.stderr));
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("error: running cargo tree: {e}");
            return ExitCode::from(1);
        }
    };
    let tree = String::from_utf8_lossy(&out.stdout);
    match cloud_crates_in(&tree).as_slice() {
        [] => {
            println!(
                "layers: fabric-core (model, state, engine) depends on no cloud crate ({} crates)",
                tree.lines().count()
            );
            ExitCode::SUCCESS
        }
        found => {
            eprintln!(
                "error: fabric-core depends on {}\n  fix: the engine and the model know providers only through \
                 engine::provider (the trait and Ctx); move what needs a cloud client into the fabric crate",
                found.join(", ")
            );
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(verb) if STACK_VERBS.contains(&verb) => match args.get(1) {
            Some(stack) if !stack.starts_with('-') => run_stack(verb, stack, &args[2..]),
            _ => {
                eprintln!("error: `cargo xtask {verb}` needs a stack name\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("local") => local(args.get(1).map(String::as_str)),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("docs") => docs(),
        Some("layers") => layers(),
        Some("features") => features(),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cloud_crates_in, offers_dylib};

    #[test]
    fn a_stack_offers_the_shared_library_only_by_the_feature_line() {
        assert!(offers_dylib("[features]\ndylib = [\"dep:fabric-dylib\"]\n"));
        assert!(offers_dylib("[features]\ndylib=[ \"dep:fabric-dylib\" ]\n"));
        assert!(!offers_dylib("[dependencies]\nfabric-dylib = { path = \"../../sdk-dylib\" }\n"));
        assert!(!offers_dylib("# dylib = [\"dep:fabric-dylib\"]\n"));
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks/example/Cargo.toml")).unwrap();
        assert!(offers_dylib(&example), "stacks/example offers it");
    }

    #[test]
    fn the_layer_check_names_every_cloud_crate_it_sees() {
        let tree =
            "fabric-core v0.1.0 (/w/core)\nserde v1.0.228\naws-sdk-s3 v1.2.0\nkube-client v3.0.0\naws-sdk-s3 v1.2.0\n";
        assert_eq!(cloud_crates_in(tree), vec!["aws-sdk-s3", "kube-client"]);
        assert!(cloud_crates_in("fabric-core v0.1.0\ntokio v1.0.0\n").is_empty());
    }
}
