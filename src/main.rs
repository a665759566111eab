mod cli;
mod loadgen_cli;
mod terminal;

fn main() -> std::process::ExitCode {
    cli::main()
}
