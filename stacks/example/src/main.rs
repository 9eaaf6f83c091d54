fn main() -> fabric::Result<()> {
    fabric::run(example::program)
}
