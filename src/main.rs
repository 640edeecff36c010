//! The `tend` binary: runs the command line and turns the result into an
//! exit status (0 converged, 1 some service down, 2 bad usage or a broken
//! policy).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match tend::run(tend::cli::Cli::parse()) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("tend: {e:#}");
            tend::exit::Exit::Broken.into()
        }
    }
}
