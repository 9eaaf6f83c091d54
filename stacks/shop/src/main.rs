fn main() -> fabric::Result<()> {
    fabric::run(shop::program)
}
