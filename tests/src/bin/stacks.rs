//! The stacks of this repository as one binary, run by the integration tests as `cargo xtask`
//! runs a stack: `stacks <acme|dns|example|reference> <verb> …`. (One binary links the SDK once;
//! one per stack cost a link of ~150 MB each on every test build.)

use std::ffi::OsString;

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let stack = if args.len() > 1 { args.remove(1) } else { OsString::new() };
    let code = match stack.to_str() {
        Some("acme") => fabric::cli::run_with_args_env("acme", args, Some("dev"), acme::program),
        Some("dns") => fabric::cli::run_with_args_env("dns", args, Some("develop"), dns::program),
        Some("example") => fabric::cli::run_with_args("example", args, example::program),
        // The example's next version, for the rollback tests: other tags (every resource
        // updated), the app on 9090 (its rule replaced), and SSH admitted (two new resources).
        Some("example-next") => {
            let cfg = example::Config {
                tags: vec![("team".into(), "edge".into())],
                app_port: 9090,
                ssh_from: Some("203.0.113.0/24".into()),
                ..Default::default()
            };
            fabric::cli::run_with_args("example", args, example::program_with(&cfg))
        }
        // The example with a policy variant (`FABRIC_TEST_POLICY`), for the policy tests.
        Some("example-policy") => {
            let variant = std::env::var("FABRIC_TEST_POLICY").unwrap_or_default();
            fabric::cli::run_with_args("example", args, fabric_tests::policy::example_policy_program(&variant))
        }
        Some("kind-demo") => fabric::cli::run_with_args("kind-demo", args, fabric_tests::kind_demo_program),
        Some("reference") => fabric::cli::run_with_args_env("reference", args, Some("develop"), reference::program),
        _ => {
            eprintln!("usage: stacks <acme|dns|example|example-next|example-policy|kind-demo|reference> <verb> …");
            2
        }
    };
    std::process::exit(code);
}
