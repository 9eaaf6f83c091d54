//! The integration tests: one binary (linking the SDK once, its tests run in parallel), one
//! module per area. Each test has an emulator of its own for as long as it runs — a wiped one from
//! the process's pool (`fabric_tests::pool`) — or uses the real test cluster named by
//! `FABRIC_TEST_KUBECONFIG` (those are `#[ignore]`d without one).

mod acm;
mod acme;
mod aurora;
mod backup;
mod bad_input;
mod call_log;
mod cli;
mod crash;
mod day2;
mod eks;
mod elasticache;
mod emulator;
mod iam;
mod ingress;
mod k8s_validate;
mod kube_cluster;
mod kube_reach;
mod lifecycle;
mod logs;
mod network;
mod opensearch;
mod policy;
mod rds;
mod reference;
mod rollback;
mod route53;
mod s3_backend;
mod s3_bucket;
mod shop;
mod taken;
mod verify;

/// A stack of this repository as `cargo xtask` runs it: the test build's `stacks` binary
/// (`tests/src/bin/stacks.rs`), its first argument the stack's name.
fn stack_command(stack: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stacks"));
    command.arg(stack);
    command
}
