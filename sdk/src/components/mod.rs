//! The builders users meet first: production defaults over the low-level resources of
//! [`crate::aws`].

pub mod network;

pub use network::{Nat, Network, PrivateSubnet, PublicSubnet, Vpc, Zones};
