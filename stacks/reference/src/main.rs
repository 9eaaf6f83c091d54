fn main() -> fabric::Result<()> {
    fabric::run_env("develop", reference::program)
}
