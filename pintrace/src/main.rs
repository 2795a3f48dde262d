use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = pintrace::cli::Cli::parse();
    match pintrace::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pintrace: {e:#}");
            ExitCode::FAILURE
        }
    }
}
