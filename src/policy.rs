//! The policy as the rest of the pass sees it: plain data.
//!
//! The load stage builds it (snapshot, parse, analyze) and every later
//! stage reads it; nothing here does I/O or knows how a policy is written.

use std::path::PathBuf;
use std::time::Duration;

use crate::diagnostic::{Sources, Span};
use crate::parser::Expr;

/// The restart budget, reminder interval and deferral limit of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many restarts ...
    pub restarts: usize,
    /// ... within this many seconds.
    pub within: i64,
    /// Seconds between reminders of a problem that lasts; None: never.
    pub remind: Option<i64>,
    /// Seconds a busy package manager may hold a restart before it is said.
    pub defer: i64,
}

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The files or directories it was read from, as given.
    pub origin: String,
    /// Its fingerprint (`Snapshot::digest`).
    pub digest: String,
    pub sources: Sources,
    pub classes: Vec<ClassDef>,
    pub services: Vec<Service>,
}

/// `class NAME = EXPR`
#[derive(Debug, Clone)]
pub struct ClassDef {
    pub name: String,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Service {
    /// The id after `service`, unique in the policy.
    pub id: String,
    /// What reports call it (`name`, default: the id).
    pub name: String,
    /// The `process` pattern.
    pub process: Option<String>,
    /// `exe`: the exact executable path.
    pub exe: Option<String>,
    /// `pidfile`: the service is the live process whose pid it holds.
    pub pidfile: Option<PathBuf>,
    /// `unit`: the systemd unit that is the service (its main process is
    /// the service's process).
    pub unit: Option<String>,
    /// `when stopped`: what to do with a unit stopped cleanly.
    pub when_stopped: WhenStopped,
    /// Run before the restart commands: `systemctl reset-failed UNIT` for a
    /// unit whose commands are systemd's, so a unit that hit its start
    /// limit can be started again (tend's own `limit` bounds restarts).
    pub reset: Option<Command>,
    /// `user`: only processes of this owner (name or uid) count.
    pub user: Option<String>,
    /// `count`: how many matching processes there must be (min, max).
    pub count: (usize, Option<usize>),
    /// `port`, `host`, `unix`, `connect_timeout`: sockets that must accept
    /// (and answer, with `send`/`expect`).
    pub connect: Connect,
    /// `http URL ...`: a request whose answer must be right.
    pub http: Option<Http>,
    /// `certificate [HOST:PORT] valid for N days`: the TLS certificate a
    /// port presents must not expire sooner.
    pub certificate: Option<Certificate>,
    /// At least one of `restart` and `start` is given.
    pub restart: Option<Command>,
    pub start: Option<Command>,
    pub stop: Option<Command>,
    /// `depends on`: ids of services to be up before this one is restarted,
    /// each with its position.
    pub depends: Vec<(String, Span)>,
    /// `memory above SIZE`
    pub memory: Option<MemoryLimit>,
    /// `cpu above PERCENT for N runs`
    pub cpu: Option<CpuLimit>,
    /// How long the restart command may run before it is killed.
    pub timeout: Duration,
    /// How long to wait for the process to appear after the command succeeds.
    pub grace: Duration,
    /// How long a restarted service must stay up (the same main process)
    /// before it counts as restarted.
    pub settle: Duration,
    /// Restart budget, reminder interval, deferral limit.
    pub limits: Limits,
    /// Restart a process that runs a replaced binary (`restart_on_upgrade`).
    pub restart_on_upgrade: bool,
    /// The guard in force where the service was written; None is `any`.
    pub guard: Option<Expr>,
    /// The service id in the source.
    pub span: Span,
}

/// A command from the policy, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// As written, for reports.
    pub text: String,
    /// Program and arguments: the words of `text`, or `/bin/sh -c text` for a
    /// service with `shell yes`.
    pub argv: Vec<String>,
    /// `shell yes` was given.
    pub shell: bool,
    /// Where the command is written.
    pub span: Span,
}

/// `when stopped restart|report|leave`: a unit an admin stopped cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenStopped {
    /// Say it and start it again (the default: a service the policy says
    /// must run, runs).
    Restart,
    /// Say it once; leave it stopped.
    Report,
    /// Leave it stopped, silently.
    Leave,
}

/// What to do when a running process is over a resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    Report,
}

impl std::fmt::Display for Action {
    /// As the policy writes it: `restart`, `report`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Restart => "restart",
            Action::Report => "report",
        })
    }
}

/// `memory above SIZE`: the resident memory of the service's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub action: Action,
}

/// `cpu above PERCENT for N runs`: CPU time used between two passes over
/// the wall time between them, above PERCENT in N passes in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuLimit {
    pub percent: f64,
    pub runs: u32,
    pub action: Action,
}

/// The sockets a running service must accept connections on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub tcp: Option<std::net::SocketAddr>,
    pub unix: Option<PathBuf>,
    pub timeout: Duration,
    /// `port N send TEXT`: written once connected (escapes decoded).
    pub send: Option<Vec<u8>>,
    /// `port N ... expect RE`: the answer must match (read until it does,
    /// the connection closes or the timeout).
    pub expect: Option<String>,
}

/// `http "http[s]://HOST[:PORT]/PATH" [status N] [content RE] [timeout D]
/// [host NAME] [insecure]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// As written, for reports.
    pub url: String,
    pub tls: bool,
    /// The host of the URL (an address or a name) and the port.
    pub host: String,
    pub port: u16,
    /// Path and query.
    pub path: String,
    /// The `Host` header (and TLS server name): `host`, else the URL's.
    pub host_header: String,
    /// The status the answer must have; None: any below 400.
    pub status: Option<u16>,
    /// A regular expression the body must match.
    pub content: Option<String>,
    pub timeout: Duration,
    /// Accept any certificate (self-signed).
    pub insecure: bool,
}

/// `certificate [HOST:PORT] valid for N days [then report|restart]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Where to connect (an address or a name).
    pub host: String,
    pub port: u16,
    /// The TLS server name to present (SNI): the `http` check's (its
    /// `host`, else its URL's) when taken from it, else `host`.
    pub name: String,
    pub days: u32,
    pub action: Action,
    pub timeout: Duration,
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl Service {
    /// The commands that bring the service back: when its process is absent,
    /// `start` (else `restart`); when it runs but fails a check, `restart`
    /// (else `stop` then `start`).
    pub fn commands(&self, present: bool) -> Vec<&Command> {
        let start = self.start.as_ref().or(self.restart.as_ref());
        let reset = self.reset.iter();
        match (present, &self.restart) {
            (false, _) => reset.chain(start).collect(),
            (true, Some(restart)) => reset.chain([restart]).collect(),
            (true, None) => reset.chain(&self.stop).chain(start).collect(),
        }
    }

    /// The same, as text for reports: `a`, or `a; then b`.
    pub fn commands_text(&self, present: bool) -> String {
        let texts: Vec<&str> = self
            .commands(present)
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        texts.join("; then ")
    }
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);
/// Five restarts within an hour; a reminder every six hours; a restart
/// deferred by a package manager for 30 minutes is said.
pub const DEFAULT_LIMITS: Limits = Limits {
    restarts: 5,
    within: 3600,
    remind: Some(6 * 3600),
    defer: 1800,
};
