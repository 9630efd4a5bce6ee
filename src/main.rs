fn main() -> std::process::ExitCode {
    fleetbox::allocator::tune();
    fleetbox::cli::main()
}
