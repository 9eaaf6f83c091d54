//! The local AWS emulator (re-exported from the `fabric-local` crate, which `xtask` shares).

pub use fabric_local::*;
