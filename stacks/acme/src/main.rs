fn main() -> fabric::Result<()> {
    fabric::run_env("dev", acme::program)
}
