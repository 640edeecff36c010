//! `tend completions SHELL` and `tend man`: generated from the clap
//! definitions, so they never disagree with the command line.

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

/// The man page: the command line's, and the policy's attributes from the
/// language's own registry (so neither can drift from the code).
pub(crate) fn man() -> Result<Exit> {
    let cmd = <Cli as clap::CommandFactory>::command().name("tend");
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).section("8").render(&mut page)?;
    page.extend_from_slice(crate::analyzer::attributes_man().as_bytes());
    std::io::Write::write_all(&mut std::io::stdout(), &page)?;
    Ok(Exit::Converged)
}
