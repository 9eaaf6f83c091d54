//! fabric as one shared library, so that a stack's binary relinks in well under a second after an
//! edit instead of ~3 s: a stack that depends on this crate and names it once
//! (`use fabric_dylib as _;`) links fabric, the AWS SDK and the rest of fabric's dependencies from
//! `libfabric_dylib.so` rather than copying ~900 MB of object code into each executable. The
//! library is linked again only when fabric itself changes.
//!
//! The executable then needs the directory of that library and of Rust's `libstd` on its library
//! path: `cargo run`, `cargo test` and `cargo xtask` set both. A binary copied elsewhere and run by
//! hand does not find them: build that one without this dependency.
//!
//! ```toml
//! [dependencies]
//! fabric = { path = "../../sdk", default-features = false, features = ["ec2"] }
//! fabric-dylib = { path = "../../sdk-dylib" }
//! ```
//!
//! ```ignore
//! // in the stack's lib.rs (or main.rs)
//! use fabric_dylib as _;
//! ```
//!
//! This is how Bevy's `dynamic_linking` feature works; fabric's features are the stack's, as
//! cargo unifies them.

pub use fabric::*;
