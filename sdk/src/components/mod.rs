//! The builders users meet first: production defaults over the low-level resources of
//! [`crate::aws`].

#[cfg(feature = "ec2")]
pub mod access;
#[cfg(feature = "backup")]
pub mod backup;
#[cfg(feature = "eks")]
pub mod cluster_autoscaler;
#[cfg(feature = "rds")]
pub mod database;
#[cfg(feature = "eks")]
pub mod eks;
#[cfg(feature = "elbv2")]
pub mod ingress;
#[cfg(feature = "ec2")]
pub mod network;
#[cfg(feature = "ec2")]
pub mod peering;
#[cfg(feature = "k8s")]
pub(crate) mod pod;
#[cfg(feature = "k8s")]
pub mod prometheus;
#[cfg(all(feature = "k8s", feature = "elbv2"))]
pub mod web_service;

#[cfg(feature = "ec2")]
pub use access::{Bastion, BastionRef, SessionManagerEndpoints};
#[cfg(feature = "backup")]
pub use backup::{BackupPlan, BackupPlanRef, Protectable, Weekly};
#[cfg(feature = "rds")]
pub use database::{Database, RdsPostgres};
#[cfg(feature = "eks")]
pub use eks::{Capacity, Cluster, EksCluster, NodePool};
#[cfg(feature = "elbv2")]
pub use ingress::{AlbIngress, Edge};
#[cfg(feature = "ec2")]
pub use network::{Nat, Network, PrivateSubnet, PublicSubnet, Vpc, Zones};
#[cfg(feature = "ec2")]
pub use peering::{PeerNetwork, Peering, VpcPeering};
#[cfg(feature = "k8s")]
pub use prometheus::{Prometheus, PrometheusRef};
#[cfg(all(feature = "k8s", feature = "elbv2"))]
pub use web_service::{EnvValue, Health, WebService, WebServiceRef};
