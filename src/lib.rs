//! tend keeps a host's services running. One pass:
//!
//! ```text
//! load policy -> host classes -> select services -> scan processes once
//!   -> decide -> act (run commands) -> verify -> report changes -> save
//! ```
//!
//! Each stage is a module; `pass` strings them together as a plan and its
//! execution, and each subcommand is a file under `commands/`. `run` only
//! dispatches. docs/architecture.md is the map.

mod act;
mod analyzer;
mod check;
mod classes;
pub mod cli;
pub mod clock;
mod commands;
mod decide;
mod diagnostic;
mod duration;
mod event;
pub mod exit;
mod file;
mod graph;
mod import;
mod load;
mod matcher;
mod metrics;
mod notify;
mod observe;
mod parser;
mod pass;
mod pause;
mod pkgmgr;
mod policy;
mod preview;
mod probe;
mod report;
mod scan;
mod snapshot;
mod state;
mod store;
mod suggest;
mod systemd;
mod words;

use anyhow::Result;

use crate::cli::{Cli, Command, NotifyCommand};
use crate::commands::{self as cmd, Context};
use crate::exit::Exit;

pub fn run(cli: Cli) -> Result<Exit> {
    let command = cli.command.clone().unwrap_or(Command::Run);
    if cli.dry_run || command != Command::Run {
        // Output for a terminal or a pipe: `tend status | head` ends
        // quietly. A pass goes on whatever happens to its output.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    let ctx = Context::new(&cli);
    match command {
        Command::Run if cli.dry_run => cmd::dry_run::run(&ctx),
        Command::Run => cmd::run::run(&ctx, cli.splay, cli.stale_after),
        Command::Validate {
            paths,
            accept_empty,
            strict,
        } => cmd::validate::run(&ctx, &paths, accept_empty, strict),
        Command::Classes => cmd::classes::run(&ctx),
        Command::Status => cmd::status::run(&ctx),
        Command::Doctor => cmd::doctor::run(&ctx),
        Command::Reset { ids, all } => cmd::reset::run(&ctx, &ids, all),
        Command::Pause {
            ids,
            duration,
            reason,
            by,
        } => cmd::pause::pause(&ctx, &ids, duration, reason, by),
        Command::Resume { ids, by } => cmd::pause::resume(&ctx, &ids, by),
        Command::Completions { shell } => cmd::completions::completions(shell),
        Command::Man { section } => cmd::man::man(section.as_deref() == Some("5")),
        Command::Plan { host, os } => cmd::plan::run(&ctx, &host, &os),
        Command::Explain { id, host, os } => cmd::explain::run(&ctx, &id, host.as_deref(), &os),
        Command::Notify {
            what: NotifyCommand::Test { channel },
        } => cmd::notify::test(&ctx, channel.as_deref()),
        Command::Import {
            from,
            files,
            output,
        } => cmd::import::run(from, &files, output.as_deref()),
    }
}
