//! The stack of the end-to-end benchmark (`cargo xtask bench e2e`): `FABRIC_BENCH_N` generated
//! passwords, a resource that needs no cloud, so that a preview of it times fabric alone
//! (process start, state read and decryption, plan, output), as `cargo xtask preview` runs it.

fn main() {
    let n: usize = std::env::var("FABRIC_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let done = fabric::cli::run_as("bench-e2e", |s| {
        for i in 0..n {
            fabric::random::Password::add(s, &format!("password-{i}"), 24);
        }
        Ok(())
    });
    if let Err(e) = done {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
