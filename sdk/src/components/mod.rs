//! The builders users meet first: production defaults over the low-level resources of
//! [`crate::aws`].

pub mod backup;
pub mod database;
pub mod network;

pub use backup::{BackupPlan, BackupPlanRef, Protectable, Weekly};
pub use database::{Database, RdsPostgres};
pub use network::{Nat, Network, PrivateSubnet, PublicSubnet, Vpc, Zones};
