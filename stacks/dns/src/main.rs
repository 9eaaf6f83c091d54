fn main() -> fabric::Result<()> {
    fabric::run_env("develop", dns::program)
}
