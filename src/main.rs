use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match tend::run(tend::cli::Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tend: {e:#}");
            ExitCode::from(2)
        }
    }
}
