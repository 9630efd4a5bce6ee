fn main() -> std::process::ExitCode {
    fleetbox::cli::main()
}
