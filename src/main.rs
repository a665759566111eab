mod cli;
mod terminal;

fn main() -> std::process::ExitCode {
    cli::main()
}
