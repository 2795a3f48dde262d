use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so that `pintrace report FILE | head -1` would end
    // in a write error (a panic inside println!). Unix tools die quietly
    // of SIGPIPE instead when the reader goes away; so does pintrace.
    // SAFETY: called before any thread starts; SIG_DFL is a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = pintrace::cli::Cli::parse();
    match pintrace::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pintrace: {e:#}");
            ExitCode::FAILURE
        }
    }
}
