//! The command line: what an admin or cron can ask of tend.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tend",
    version,
    about = "Keeps this host's services running: checks the process table once, restarts what is down, \
             and prints only what changed.",
    after_help = "Exit status: 0 every service that applies is running, 1 some service is still down, \
                  2 bad usage or a broken policy."
)]
pub struct Cli {
    /// Policy file, or directory of *.tend files read in name order.
    #[arg(
        short = 'f',
        long = "policy",
        value_name = "PATH",
        default_value = "/etc/tend",
        global = true
    )]
    pub policy: PathBuf,

    /// Define a class for this run (repeatable, or comma-separated).
    #[arg(short = 'D', long = "define", value_name = "CLASS", global = true)]
    pub define: Vec<String>,

    /// Show what a pass would do for every service that applies; run nothing.
    #[arg(short = 'n', long, global = true)]
    pub dry_run: bool,

    /// Say more: why classes are on or off, which services do not apply.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// One pass: check every service that applies, restart what is down (the default).
    Run,
    /// Parse and check the policy; run nothing.
    Validate,
    /// Print the classes this host is in.
    Classes,
}
