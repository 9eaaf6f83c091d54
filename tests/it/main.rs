//! The integration tests: one binary (linking the SDK once, its tests run in parallel), one
//! module per area. Each test starts its own emulator (or uses the real test cluster named by
//! `FABRIC_TEST_KUBECONFIG`; those are `#[ignore]`d without one).

mod acm;
mod acme;
mod backup;
mod bad_input;
mod call_log;
mod cli;
mod crash;
mod day2;
mod eks;
mod iam;
mod ingress;
mod k8s_validate;
mod kube_cluster;
mod kube_reach;
mod lifecycle;
mod network;
mod rds;
mod reference;
mod route53;
mod s3_backend;
mod shop;
mod verify;
