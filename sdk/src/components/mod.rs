//! What composes AWS and Kubernetes: workloads on a cluster, routed from a load balancer. The
//! builders of one AWS service live in its module (`aws::ec2::Vpc`, `aws::rds::RdsPostgres`, …).

#[cfg(feature = "k8s")]
pub mod prometheus;
#[cfg(all(feature = "k8s", feature = "elbv2"))]
pub mod web_service;

#[cfg(feature = "k8s")]
pub use prometheus::{Prometheus, PrometheusRef};
#[cfg(all(feature = "k8s", feature = "elbv2"))]
pub use web_service::{EnvValue, Health, WebService, WebServiceRef};
