//! The dns stack as a binary of this crate, so that tests can run it as `cargo xtask` does.
fn main() -> fabric::Result<()> {
    fabric::cli::run_as_env("dns", "develop", dns::program)
}
