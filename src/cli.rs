//! The command line: what an admin or cron can ask of tend.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::duration;

#[derive(Debug, Parser)]
#[command(
    name = "tend",
    args_override_self = true,
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("TEND_GIT_REV"), ")"),
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
        global = true,
        help_heading = "Options of every command"
    )]
    pub policy: PathBuf,

    /// Define a class for this run (repeatable, or comma-separated).
    #[arg(
        short = 'D',
        long = "define",
        value_name = "CLASS",
        global = true,
        help_heading = "Options of every command"
    )]
    pub define: Vec<String>,

    /// Show what a pass would do for every service that applies; run nothing.
    #[arg(
        short = 'n',
        long,
        global = true,
        help_heading = "Options of every command"
    )]
    pub dry_run: bool,

    /// Say more: why classes are on or off, which services do not apply.
    #[arg(short, long, global = true, help_heading = "Options of every command")]
    pub verbose: bool,

    /// Where state and lock live [default: /var/lib/tend as root, else
    /// $XDG_STATE_HOME/tend].
    #[arg(
        long,
        value_name = "DIR",
        global = true,
        help_heading = "Options of every command"
    )]
    pub state_dir: Option<PathBuf>,

    /// Say so when another pass has held the lock longer than this.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = duration::seconds, global = true,
        help_heading = "Options of every command")]
    pub stale_after: u64,

    /// Before the pass, sleep up to this many seconds, a delay fixed per host
    /// (a hash of its name), so a fleet started by one cron line spreads out.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        global = true,
        help_heading = "Options of every command"
    )]
    pub splay: u64,

    /// Look for package manager locks under this directory instead of /
    /// (for tests, chroots and unusual layouts).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/",
        global = true,
        help_heading = "Options of every command"
    )]
    pub pkg_root: PathBuf,

    /// Output format: of reports (one JSON object per line, the same to
    /// syslog), and of `status`, `classes`, `validate`, `plan`, `explain`.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true,
        help_heading = "Options of every command")]
    pub format: Format,

    /// After each pass, write its metrics to this file (Prometheus text
    /// format, for node_exporter's textfile collector: name it *.prom in
    /// the collector's directory).
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Options of every command"
    )]
    pub metrics: Option<PathBuf>,

    /// As root, read a policy that others than root can change (owned by
    /// another user, or group- or world-writable). Refused by default, as
    /// cron and sudo refuse such files.
    #[arg(long, global = true, help_heading = "Options of every command")]
    pub insecure: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// One pass: check every service that applies, restart what is down (the default).
    #[command(
        after_help = "Examples:\n  tend run            # one pass, as cron runs it\n  tend --dry-run      # what a pass would do; runs nothing"
    )]
    Run,
    /// Check a policy (all errors of all files, and warnings); run
    /// nothing. For a policy repository's CI or pre-commit hook.
    #[command(
        after_help = "Examples:\n  tend validate\n  tend validate --strict policy/     # in a policy repository's CI"
    )]
    Validate {
        /// Policy files or directories, checked as one policy [default: the
        /// policy of -f].
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Confirm that the policy of -f is meant to be empty (or to have
        /// no services): passes refuse such a policy where the last good
        /// one had services, as a copy in progress, until it is confirmed.
        #[arg(long, conflicts_with = "paths")]
        accept_empty: bool,
        /// Warnings fail too (exit 2): a class nothing defines in a guard
        /// leaves its services checked nowhere. For a fleet's CI.
        #[arg(long)]
        strict: bool,
    },
    /// Print the classes this host is in.
    #[command(after_help = "Examples:\n  tend classes -v")]
    Classes,
    /// Whether this host is really watched: a pass scheduled once, the
    /// last pass recent, reports that reach someone, each channel
    /// answering, the policy valid, the state directory safe, syslog, the
    /// metrics fresh, the package manager's hook. Exit 1 when something is
    /// not fine.
    #[command(after_help = "Examples:\n  tend doctor\n  tend doctor --format json")]
    Doctor,
    /// What the last pass found for every service that applies.
    #[command(after_help = "Examples:\n  tend status\n  tend status --format json")]
    Status,
    /// Forget a service's failures and restart budget, so the next pass tries again.
    #[command(override_usage = "tend reset <ID>...\n       tend reset --all")]
    #[command(after_help = "Examples:\n  tend reset bind\n  tend reset --all")]
    Reset {
        /// Service ids.
        #[arg(required_unless_present = "all", value_name = "ID")]
        ids: Vec<String>,
        /// Reset every service.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Hold all restarts, or those of the services named, for a while
    /// (maintenance, an upgrade); checks go on. A pause always ends.
    #[command(
        after_help = "Examples:\n  tend pause --for 2h --reason \"kernel upgrade\"\n  tend pause db --for 30m --reason \"schema migration\""
    )]
    Pause {
        /// Service ids: hold only these (each its own pause).
        #[arg(value_name = "ID", conflicts_with = "by")]
        ids: Vec<String>,
        /// How long, at most 24h.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h", value_parser = duration::seconds)]
        duration: u64,
        /// Why, for status and reports.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Whose pause this is (a package manager hook: `--by apt`); its
        /// resume ends only its own pause. Without it, the admin's.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// End a pause now (or the pauses of the services named); the next
    /// pass restarts what is down.
    #[command(after_help = "Examples:\n  tend resume\n  tend resume db")]
    Resume {
        /// Service ids: end only their own pauses.
        #[arg(value_name = "ID", conflicts_with = "by")]
        ids: Vec<String>,
        /// End the pause set with this `--by` (a hook's), not the admin's.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:\n  tend completions bash > /etc/bash_completion.d/tend")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page in roff: tend(8), the commands (default), or with
    /// 5, tend.tend(5), the policy language.
    #[command(
        after_help = "Examples:\n  tend man > tend.8 && man ./tend.8\n  tend man 5 > tend.tend.5 && man ./tend.tend.5"
    )]
    #[command(
        after_help = "Examples:\n  tend man > tend.8 && man ./tend.8\n  tend man 5 > tend.tend.5 && man ./tend.tend.5"
    )]
    Man {
        /// 8: the commands; 5: the policy language.
        #[arg(value_parser = ["8", "5"])]
        section: Option<String>,
    },
    /// Which services would apply on another host, and why (which guard,
    /// which class, from where). Classes of time are left out; add them
    /// with -D.
    #[command(after_help = "Examples:\n  tend plan --host www1 --os debian_12")]
    Plan {
        /// Its host name (short or fully qualified).
        #[arg(long, value_name = "NAME")]
        host: String,
        #[command(flatten)]
        os: OsArgs,
    },
    /// Why one service does or does not apply to this host (or --host), and
    /// how it is checked and restarted.
    #[command(after_help = "Examples:\n  tend explain apache\n  tend explain apache --host www1")]
    Explain {
        /// The service id.
        id: String,
        /// Explain it for another host instead.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        #[command(flatten)]
        os: OsArgs,
    },
    /// Send a test event through the policy's channels now, and say what
    /// each receiver answered. Exit status 1 when one was not delivered.
    #[command(after_help = "Examples:\n  tend notify test")]
    Notify {
        #[command(subcommand)]
        what: NotifyCommand,
    },
    /// Turn a CFEngine policy or a Monit configuration into a tend policy,
    /// on standard output (or files in -o DIR). Every statement that could
    /// not be carried over is said on standard error and as a comment in
    /// place. Exit status: 0 all carried over, 1 something left out, 2 an
    /// input that cannot be read.
    #[command(
        after_help = "Examples:\n  tend import monit /etc/monit/monitrc -o imported/\n  tend import cfengine promises.cf"
    )]
    Import {
        /// What the files are.
        #[arg(value_enum)]
        from: ImportFrom,
        /// CFEngine .cf files; a monitrc (its `include`s are followed).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Write one .tend file per input file into DIR (created if need
        /// be; existing files are not overwritten).
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
    },
}

/// What `tend notify` does.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum NotifyCommand {
    /// A test event through each channel that applies to this host, or
    /// the one named.
    Test {
        /// A channel id.
        channel: Option<String>,
    },
}

/// What `tend import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFrom {
    Cfengine,
    Monit,
}

/// The operating system of a host previewed with `plan` or `explain`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct OsArgs {
    /// Its OS as ID_VERSION (`debian_12`, `rocky_9.4`, `ubuntu_24.04`), as in
    /// its /etc/os-release [default for plan: none].
    #[arg(long, value_name = "ID_VERSION")]
    pub os: Option<String>,
    /// Its architecture [default: this host's].
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}
