mod cli;
mod loadgen_cli;
mod printable;
mod terminal;

fn main() -> std::process::ExitCode {
    cli::main()
}
