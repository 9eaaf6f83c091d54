//! Nothing but a dependency list: see `Cargo.toml`. `fabric` depends on it so that every build of
//! the workspace resolves its shared dependencies with one set of features.
