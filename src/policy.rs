//! The policy as the rest of the pass sees it, and how it is checked.
//!
//! A policy is one file or a directory of `*.tend` files read in name order
//! ([`crate::snapshot`] reads them). Checking runs the parser on every file
//! and the analyzer on the whole, so that either a fully checked [`Policy`]
//! comes back or every problem in it, each with its file, line and column.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::analyzer;
use crate::decide::Limits;
use crate::diagnostic::{Diagnostic, PolicyErrors, Sources, Span};
use crate::parser::{self, Expr};
use crate::snapshot::Snapshot;

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The files or directories it was read from, as given.
    pub origin: String,
    /// Its fingerprint ([`Snapshot::digest`]).
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
    /// `user`: only processes of this owner (name or uid) count.
    pub user: Option<String>,
    /// `count`: how many matching processes there must be (min, max).
    pub count: (usize, Option<usize>),
    /// `port`, `host`, `unix`, `connect_timeout`: sockets that must accept.
    pub connect: Connect,
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
}

/// What to do when a running process is over a resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    Report,
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
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl Service {
    /// The commands that bring the service back: when its process is absent,
    /// `start` (else `restart`); when it runs but fails a check, `restart`
    /// (else `stop` then `start`).
    pub fn commands(&self, present: bool) -> Vec<&Command> {
        let start = self.start.as_ref().or(self.restart.as_ref());
        match (present, &self.restart) {
            (false, _) => start.into_iter().collect(),
            (true, Some(restart)) => vec![restart],
            (true, None) => self.stop.iter().chain(start).collect(),
        }
    }

    /// The same, as text for reports: `a`, or `a; then b`.
    pub fn plan(&self, present: bool) -> String {
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
/// Five restarts within an hour; a reminder every six hours; a restart
/// deferred by a package manager for 30 minutes is said.
pub const DEFAULT_LIMITS: Limits = Limits {
    restarts: 5,
    within: 3600,
    remind: Some(6 * 3600),
    defer: 1800,
};

/// Parses and checks the files of a snapshot as one policy.
pub fn check(snapshot: &Snapshot) -> Result<Policy> {
    let mut sources = Sources::default();
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (file, bytes) in &snapshot.files {
        let (text, bad_utf8) = match String::from_utf8(bytes.clone()) {
            Ok(text) => (text, None),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
            }
        };
        let id = sources.add(file, text);
        if let Some(at) = bad_utf8 {
            errors.push(Diagnostic::error(
                Span::new(id, at, at + 1),
                "not valid UTF-8 text",
            ));
            continue;
        }
        let (parsed, mut syntax) = parser::parse(id, sources.text(id));
        errors.append(&mut syntax);
        items.push((id, parsed));
    }
    let (classes, services, mut semantic) = analyzer::analyze(&sources, &items);
    errors.append(&mut semantic);
    if !errors.is_empty() {
        errors.sort_by_key(|d| (d.span.file, d.span.start));
        return Err(PolicyErrors {
            sources,
            diagnostics: errors,
        }
        .into());
    }
    Ok(Policy {
        origin: snapshot.describe(),
        digest: snapshot.digest(),
        sources,
        classes,
        services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn load_text(bytes: &[u8]) -> Result<Policy> {
        let policy = check(&Snapshot {
            origin: vec!["p.tend".into()],
            files: vec![("p.tend".into(), bytes.to_vec())],
        });
        // Rendering every diagnostic must not panic either.
        if let Err(e) = &policy {
            let _ = format!("{e:#}");
        }
        policy
    }

    proptest! {
        #[test]
        fn loading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = load_text(&bytes);
        }

        #[test]
        fn loading_service_soup_never_panics(
            lines in proptest::collection::vec(
                proptest::sample::select(vec![
                    "service a {", "service a {}", "}", "  process \"/a\"", "  process \"(\"",
                    "  restart \"x\"", "  restart \"'\"", "  restart \"\"", "  shell yes", "  shell",
                    "  timeout 0", "  timeout 5 min", "  grace 99999999999999999999d", "  name",
                    "  bogus 1", "class c = c", "class d = hostname(\"[\")", "web|dns::", "x(\"y\")::",
                    "  process 'a' 'b'", "  name \"é\\\"\"",
                ]),
                0..25,
            )
        ) {
            let _ = load_text(lines.join("\n").as_bytes());
        }
    }

    #[test]
    fn a_valid_policy_loads_with_defaults() {
        let p = load_text(b"service ssh {\n process \"/usr/sbin/sshd\"\n restart \"/usr/sbin/invoke-rc.d ssh restart\"\n}\n")
            .unwrap();
        let s = &p.services[0];
        assert_eq!(
            (s.name.as_str(), s.timeout, s.grace),
            ("ssh", DEFAULT_TIMEOUT, DEFAULT_GRACE)
        );
        assert_eq!(
            s.restart.as_ref().unwrap().argv,
            ["/usr/sbin/invoke-rc.d", "ssh", "restart"]
        );
    }
}
