//! `tend completions SHELL`: generated from the clap definitions, so they
//! never disagree with the command line.

use anyhow::Result;

use crate::cli::Cli;
use crate::exit::Exit;

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<Exit> {
    // Into memory first: clap_complete panics on a failed write.
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tend", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)?;
    Ok(Exit::Converged)
}
