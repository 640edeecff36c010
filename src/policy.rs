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
pub(crate) struct Limits {
    /// At most this many restarts ...
    pub(crate) restarts: usize,
    /// ... within this many seconds.
    pub(crate) within: i64,
    /// Seconds between reminders of a problem that lasts; None: never.
    pub(crate) remind: Option<i64>,
    /// Seconds a busy package manager may hold a restart before it is said.
    pub(crate) defer: i64,
    /// Once the budget is spent: give up until `tend reset` (`then give
    /// up`), rather than back off.
    pub(crate) give_up: bool,
    /// Backing off: the first wait in seconds (doubled at each try; also
    /// how long a service must stay up to be forgiven) ...
    pub(crate) backoff: i64,
    /// ... and the longest.
    pub(crate) backoff_cap: i64,
    /// Seconds after the host booted during which a service not up yet is
    /// waited for, not restarted (0: none).
    pub(crate) after_boot: i64,
}

impl Limits {
    /// The wait after the `tries`th try of a crash-looping service (0: the
    /// wait before the first): the first wait doubled each try, capped.
    pub(crate) fn wait(&self, tries: u32) -> i64 {
        let doubled = self.backoff.saturating_mul(1_i64 << tries.min(40));
        doubled.min(self.backoff_cap)
    }
}

/// A checked policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// The files or directories it was read from, as given.
    pub(crate) origin: String,
    /// Its fingerprint (`Snapshot::digest`).
    pub(crate) digest: String,
    pub(crate) sources: Sources,
    pub(crate) classes: Vec<ClassDef>,
    pub(crate) services: Vec<Service>,
    pub(crate) channels: Vec<Channel>,
}

/// `channel ID { ... }`: where the events of a pass are sent, beyond
/// tend's output and syslog.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    /// The id after `channel`, unique in the policy.
    pub(crate) id: String,
    pub(crate) kind: ChannelKind,
    /// The JSON names of the events it wants (`failed`, `recovered`...).
    pub(crate) events: Vec<String>,
    /// How long one delivery may take.
    pub(crate) timeout: Duration,
    /// The guard in force where it was written; None is `any`.
    pub(crate) guard: Option<Expr>,
}

/// How a channel sends.
#[derive(Debug, Clone)]
pub(crate) enum ChannelKind {
    /// `exec "CMD"`: run with Monit's and tend's variables, the event as
    /// JSON on its standard input.
    Exec(Command),
    /// `webhook URL`: the event as JSON, POSTed.
    Webhook(Url),
    /// `slack URL`: `{"text": ...}` POSTed (Slack, Mattermost, Rocket.Chat).
    Slack(Url),
    /// `heartbeat URL`: pinged every pass, `URL/fail` when something is
    /// down (healthchecks.io's convention), the pass's lines as the body.
    Heartbeat(Url),
    /// `alertmanager URL`: Prometheus Alertmanager's v2 API: an alert per
    /// service down, refreshed every pass, resolved when it is back.
    Alertmanager(Url),
}

/// A channel's URL: written in the policy, or read from a file only root
/// may read and change (a secret kept out of the policy repository).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Url {
    Written(String),
    File(PathBuf),
}

/// `class NAME = EXPR`
#[derive(Debug, Clone)]
pub(crate) struct ClassDef {
    pub(crate) name: String,
    pub(crate) expr: Expr,
    pub(crate) span: Span,
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    /// The id after `service`, unique in the policy.
    pub(crate) id: String,
    /// What reports call it (`name`, default: the id).
    pub(crate) name: String,
    /// The `process` pattern.
    pub(crate) process: Option<String>,
    /// `process ... anywhere`: the pattern may match inside a word (as
    /// CFEngine's and Monit's do), not only whole words.
    pub(crate) anywhere: bool,
    /// `exe`: the exact executable path.
    pub(crate) exe: Option<String>,
    /// `pidfile`: the service is the live process whose pid it holds.
    pub(crate) pidfile: Option<PathBuf>,
    /// `log`: the service's own log, whose last lines go with a report
    /// that it died or failed to start.
    pub(crate) log: Option<PathBuf>,
    /// `unit`: the systemd unit that is the service (its main process is
    /// the service's process).
    pub(crate) unit: Option<String>,
    /// `when stopped`: what to do with a unit stopped cleanly.
    pub(crate) when_stopped: WhenStopped,
    /// Run before the restart commands: `systemctl reset-failed UNIT` for a
    /// unit whose commands are systemd's, so a unit that hit its start
    /// limit can be started again (tend's own `limit` bounds restarts).
    pub(crate) reset: Option<Command>,
    /// `user`: only processes of this owner (name or uid) count.
    pub(crate) user: Option<String>,
    /// `count`: how many matching processes there must be (min, max).
    pub(crate) count: (usize, Option<usize>),
    /// `port`, `host`, `unix`, `connect_timeout`: sockets that must accept
    /// (and answer, with `send`/`expect`).
    pub(crate) connect: Connect,
    /// `http URL ...`: a request whose answer must be right.
    pub(crate) http: Vec<Http>,
    /// `certificate [HOST:PORT] valid for N days`: the TLS certificate a
    /// port presents must not expire sooner.
    pub(crate) certificate: Option<Certificate>,
    /// `retry N [every D]`: tries a failing check gets within a pass
    /// before it counts, and the wait between them (Kubernetes'
    /// failureThreshold and periodSeconds).
    pub(crate) retry: (u32, Duration),
    /// `tolerate N passes`: passes in a row a check may fail before the
    /// service is restarted (Monit's `for N cycles`).
    pub(crate) tolerate: u32,
    /// `start_period`: how long a process that just started may fail its
    /// checks before a failure counts (Kubernetes' startupProbe).
    pub(crate) start_period: Duration,
    /// `hold during EXPR`: while true, its restarts are held.
    pub(crate) hold_during: Option<Expr>,
    /// At least one of `restart` and `start` is given.
    pub(crate) restart: Option<Command>,
    pub(crate) start: Option<Command>,
    pub(crate) stop: Option<Command>,
    /// `depends on`: ids of services to be up before this one is restarted,
    /// each with its position.
    pub(crate) depends: Vec<(String, Span)>,
    /// `memory above SIZE`
    pub(crate) memory: Option<MemoryLimit>,
    /// `cpu above PERCENT for N runs`
    pub(crate) cpu: Option<CpuLimit>,
    /// How long the restart command may run before it is killed.
    pub(crate) timeout: Duration,
    /// How long to wait for the process to appear after the command succeeds.
    pub(crate) grace: Duration,
    /// How long a restarted service must stay up (the same main process)
    /// before it counts as restarted.
    pub(crate) settle: Duration,
    /// Restart budget, reminder interval, deferral limit.
    pub(crate) limits: Limits,
    /// Restart a process that runs a replaced binary (`restart_on_upgrade`).
    pub(crate) restart_on_upgrade: bool,
    /// The guard in force where the service was written; None is `any`.
    pub(crate) guard: Option<Expr>,
    /// The service id in the source.
    pub(crate) span: Span,
}

/// A command from the policy, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// As written, for reports.
    pub(crate) text: String,
    /// Program and arguments: the words of `text`, or `/bin/sh -c text` for a
    /// service with `shell yes`.
    pub(crate) argv: Vec<String>,
    /// `shell yes` was given.
    pub(crate) shell: bool,
    /// Where the command is written.
    pub(crate) span: Span,
}

/// `when stopped restart|report|leave`: a unit an admin stopped cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenStopped {
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
pub(crate) enum Action {
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
pub(crate) struct MemoryLimit {
    pub(crate) bytes: u64,
    pub(crate) action: Action,
}

/// `cpu above PERCENT for N runs`: CPU time used between two passes over
/// the wall time between them, above PERCENT in N passes in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuLimit {
    pub(crate) percent: f64,
    pub(crate) runs: u32,
    pub(crate) action: Action,
}

/// The sockets a running service must accept connections on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connect {
    /// `port N [send TEXT] [expect RE]`, each one check.
    pub(crate) ports: Vec<Port>,
    /// `unix PATH`, each one check.
    pub(crate) unix: Vec<PathBuf>,
    pub(crate) timeout: Duration,
}

/// `port N [send TEXT] [expect RE]` on `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    pub(crate) addr: std::net::SocketAddr,
    /// Written once connected (escapes decoded).
    pub(crate) send: Option<Vec<u8>>,
    /// The answer must match (read until it does, the connection closes
    /// or the timeout).
    pub(crate) expect: Option<String>,
}

/// `http "http[s]://HOST[:PORT]/PATH" [status N] [content RE] [timeout D]
/// [host NAME] [insecure]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Http {
    /// As written, for reports.
    pub(crate) url: String,
    pub(crate) tls: bool,
    /// The host of the URL (an address or a name) and the port.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query.
    pub(crate) path: String,
    /// The `Host` header (and TLS server name): `host`, else the URL's.
    pub(crate) host_header: String,
    /// The status the answer must have; None: any below 400.
    pub(crate) status: Option<u16>,
    /// A regular expression the body must match.
    pub(crate) content: Option<String>,
    pub(crate) timeout: Duration,
    /// Accept any certificate (self-signed).
    pub(crate) insecure: bool,
}

/// `certificate [HOST:PORT] valid for N days [then report|restart]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Certificate {
    /// Where to connect (an address or a name).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The TLS server name to present (SNI): the `http` check's (its
    /// `host`, else its URL's) when taken from it, else `host`.
    pub(crate) name: String,
    pub(crate) days: u32,
    pub(crate) action: Action,
    pub(crate) timeout: Duration,
}

pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl Service {
    /// The commands that bring the service back: when its process is absent,
    /// `start` (else `restart`); when it runs but fails a check, `restart`
    /// (else `stop` then `start`).
    pub(crate) fn commands(&self, present: bool) -> Vec<&Command> {
        let start = self.start.as_ref().or(self.restart.as_ref());
        let reset = self.reset.iter();
        match (present, &self.restart) {
            (false, _) => reset.chain(start).collect(),
            (true, Some(restart)) => reset.chain([restart]).collect(),
            (true, None) => reset.chain(&self.stop).chain(start).collect(),
        }
    }

    /// The same, as text for reports: `a`, or `a; then b`.
    pub(crate) fn commands_text(&self, present: bool) -> String {
        let texts: Vec<&str> = self
            .commands(present)
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        texts.join("; then ")
    }
}

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_SETTLE: Duration = Duration::from_secs(2);
/// Five restarts within an hour, then tries after 10 minutes, 20, 40 ...
/// up to 6 hours; a reminder every six hours; a restart deferred by a
/// package manager for 30 minutes is said.
pub(crate) const DEFAULT_LIMITS: Limits = Limits {
    restarts: 5,
    within: 3600,
    remind: Some(6 * 3600),
    defer: 1800,
    give_up: false,
    backoff: 600,
    backoff_cap: DEFAULT_LIMITS_BACKOFF_CAP.as_secs() as i64,
    after_boot: 300,
};
/// The longest wait of a crash-looping service, unless `backoff` says.
pub(crate) const DEFAULT_LIMITS_BACKOFF_CAP: Duration = Duration::from_secs(6 * 3600);
