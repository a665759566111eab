mod cli;
mod terminal;
mod loadgen_cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
