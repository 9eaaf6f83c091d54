//! The example stack as a binary of this crate, so that tests can run (and kill) it.
fn main() -> fabric::Result<()> {
    fabric::cli::run_as("example", example::program)
}
