//! The builders users meet first: production defaults over the low-level resources of
//! [`crate::aws`].

pub mod backup;
pub mod cluster_autoscaler;
pub mod database;
pub mod eks;
pub mod ingress;
pub mod network;
pub mod prometheus;
pub mod web_service;

pub use backup::{BackupPlan, BackupPlanRef, Protectable, Weekly};
pub use database::{Database, RdsPostgres};
pub use eks::{Capacity, Cluster, EksCluster, NodePool};
pub use ingress::{AlbIngress, Edge};
pub use network::{Nat, Network, PrivateSubnet, PublicSubnet, Vpc, Zones};
pub use prometheus::{Prometheus, PrometheusRef};
pub use web_service::{EnvValue, Health, WebService, WebServiceRef};
