//! Previews: which services a policy gives a host, and why.
//!
//! One policy serves a whole fleet, and its guards decide what each host
//! runs. Before a push an admin wants to see the result on the hosts that
//! matter (`tend plan --host web-01`), or why one service does or does not
//! apply (`tend explain apache`): which guard, which classes it names, and
//! where each class came from. This stage builds those answers as rows;
//! the commands print them. Nothing here touches processes or state.

use serde::Serialize;

use crate::classes::{Classes, Host};
use crate::clock;
use crate::parser::Expr;
use crate::policy::{Policy, Service};
use crate::probe;
use crate::state::Checks;

/// A class or hostname() call a guard names, and whether it holds here.
#[derive(Debug, Serialize)]
pub(crate) struct Reason {
    pub(crate) name: String,
    pub(crate) defined: bool,
    /// Where it came from; None for a class nothing defines.
    pub(crate) origin: Option<String>,
    /// A policy class's definition.
    pub(crate) definition: Option<String>,
}

impl Reason {
    /// `web (policy class at p.tend:1:1: www1 | hostname("web-*"))`, `dns
    /// off (...)`, `ns1 not defined`.
    pub(crate) fn text(&self) -> String {
        let name = &self.name;
        let state = if self.defined || name.contains('(') {
            ""
        } else {
            " off"
        };
        match (&self.origin, &self.definition) {
            (Some(o), Some(d)) => format!("{name}{state} ({o}: {d})"),
            (Some(o), None) => format!("{name}{state} ({o})"),
            (None, _) => format!("{name} not defined"),
        }
    }
}

/// One service of the policy on the previewed host.
#[derive(Debug, Serialize)]
pub(crate) struct ServiceRow<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) applies: bool,
    pub(crate) guard: String,
    pub(crate) at: String,
    pub(crate) classes: Vec<Reason>,
}

impl ServiceRow<'_> {
    /// `Apache (apache): applies: web:: (web (...))`
    pub(crate) fn line(&self) -> String {
        let verdict = if self.applies {
            "applies"
        } else {
            "does not apply"
        };
        let mut line = format!("{} ({}): {verdict}: {}::", self.name, self.id, self.guard);
        if !self.classes.is_empty() {
            let why: Vec<String> = self.classes.iter().map(Reason::text).collect();
            line.push_str(&format!(" ({})", why.join(", ")));
        }
        line
    }
}

/// Why a guard holds or not: each class and hostname() call it names, once,
/// with whether it is defined and where from.
fn reasons(guard: Option<&Expr>, policy: &Policy, classes: &Classes) -> Vec<Reason> {
    fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
        match e {
            Expr::Class(_) | Expr::Call { .. } => out.push(e),
            Expr::Not(e) => walk(e, out),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| walk(e, out)),
        }
    }
    let mut atoms = Vec::new();
    if let Some(g) = guard {
        walk(g, &mut atoms);
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for atom in atoms {
        let name = atom.to_string();
        if !seen.insert(name.clone()) {
            continue;
        }
        let defined = classes.eval(atom);
        let definition = match atom {
            Expr::Class(c) => policy.classes.iter().find(|d| d.name == c.text),
            _ => None,
        };
        let origin = match atom {
            Expr::Class(c) => match classes.origin(&c.text) {
                Some(o) => Some(o.to_string()),
                None => {
                    definition.map(|d| format!("policy class at {}", policy.sources.locate(d.span)))
                }
            },
            _ if defined => Some("matches the host's name".to_string()),
            _ => Some("does not match the host's name".to_string()),
        };
        out.push(Reason {
            name,
            defined,
            origin,
            definition: definition.map(|d| d.expr.to_string()),
        });
    }
    out
}

pub(crate) fn guard_text(s: &Service) -> String {
    s.guard
        .as_ref()
        .map_or_else(|| "any".to_string(), ToString::to_string)
}

pub(crate) fn service_row<'a>(
    s: &'a Service,
    policy: &Policy,
    classes: &Classes,
) -> ServiceRow<'a> {
    ServiceRow {
        id: &s.id,
        name: &s.name,
        applies: classes.selects(s),
        guard: guard_text(s),
        at: policy.sources.locate(s.span),
        classes: reasons(s.guard.as_ref(), policy, classes),
    }
}

/// `web-01.example.com (debian 12, x86_64)`
pub(crate) fn host_line(host: &Host) -> String {
    let mut about = Vec::new();
    if let Some(id) = &host.os_id {
        about.push(match &host.os_version {
            Some(v) => format!("{id} {v}"),
            None => id.clone(),
        });
    }
    about.push(host.arch.clone());
    format!("{} ({})", host_name(host), about.join(", "))
}

/// The host's fully qualified name if known, else its short name.
pub(crate) fn host_name(host: &Host) -> &str {
    host.fqdn.as_deref().unwrap_or(&host.short)
}

/// How a service is recognised, checked and brought back, for `explain`.
#[derive(Debug, Serialize)]
pub(crate) struct Explanation<'a> {
    #[serde(flatten)]
    pub(crate) service: ServiceRow<'a>,
    pub(crate) host: String,
    pub(crate) found_by: Vec<String>,
    pub(crate) checks: Vec<String>,
    pub(crate) when_down: String,
    pub(crate) when_failing: String,
    pub(crate) depends_on: Vec<&'a str>,
    pub(crate) limits: LimitsRow,
    /// What the checks found when a pass last ran them on this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_checks: Option<Checks>,
    /// The run of trouble the last pass on this host remembered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trouble: Option<Trouble>,
}

/// A run of trouble as `explain` and `status` show it.
#[derive(Debug, Serialize)]
pub(crate) struct Trouble {
    /// `flapping` or `crash-looping`.
    pub(crate) trouble: &'static str,
    pub(crate) since: i64,
    /// Crash-looping: when tend next tries (unix seconds).
    pub(crate) next_try: Option<i64>,
}

impl Trouble {
    /// The run of trouble a service's memory holds, if any; its next try
    /// while it is down and backing off.
    pub(crate) fn of(memory: &crate::state::ServiceState) -> Option<Trouble> {
        let episode = memory.carried.episode.as_ref()?;
        Some(Trouble {
            trouble: episode.kind.label(),
            since: episode.since,
            next_try: memory.next_try(),
        })
    }

    /// `crash-looping since 2026-12-06 10:40; next try at 2026-12-06 11:20`
    pub(crate) fn text(&self) -> String {
        let next = self
            .next_try
            .map(|t| format!("; next try at {}", clock::local_time(t)))
            .unwrap_or_default();
        format!(
            "{} since {}{next}",
            self.trouble,
            clock::local_time(self.since)
        )
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct LimitsRow {
    pub(crate) restarts: usize,
    pub(crate) within_seconds: i64,
    pub(crate) remind_seconds: Option<i64>,
    pub(crate) defer_seconds: i64,
    pub(crate) timeout_seconds: u64,
    pub(crate) grace_seconds: u64,
    /// When the budget is spent: `back off` or `give up`.
    pub(crate) then: &'static str,
    pub(crate) backoff_seconds: i64,
    pub(crate) backoff_cap_seconds: i64,
}

impl LimitsRow {
    /// `at most 5 restarts within 60 min, each given 60 s to run and 10 s
    /// to come up`
    pub(crate) fn text(&self) -> String {
        let then = if self.then == "give up" {
            "then gives up until 'tend reset'".to_string()
        } else {
            format!(
                "then tries after {}, doubling up to {}",
                clock::exact(self.backoff_seconds),
                clock::exact(self.backoff_cap_seconds)
            )
        };
        format!(
            "at most {} restarts within {}, {then}; each given {} to run and {} to come up",
            self.restarts,
            clock::exact(self.within_seconds),
            clock::exact(self.timeout_seconds as i64),
            clock::exact(self.grace_seconds as i64)
        )
    }
}

pub(crate) fn explain<'a>(
    s: &'a Service,
    policy: &Policy,
    host: &Host,
    classes: &Classes,
) -> Explanation<'a> {
    let mut found_by = Vec::new();
    if let Some(p) = &s.process {
        let anywhere = if s.anywhere { " anywhere" } else { "" };
        found_by.push(format!("process {p:?}{anywhere}"));
    }
    if let Some(e) = &s.exe {
        found_by.push(format!("exe {e}"));
    }
    if let Some(p) = &s.pidfile {
        found_by.push(format!("pidfile {}", p.display()));
    }
    if let Some(u) = &s.unit {
        found_by.push(format!("unit {u} (its main process)"));
    }
    if let Some(u) = &s.user {
        found_by.push(format!("user {u}"));
    }
    match s.count {
        (1, None) => {}
        (min, None) => found_by.push(format!("count {min}..")),
        (min, Some(max)) if min == max => found_by.push(format!("count {min}")),
        (min, Some(max)) => found_by.push(format!("count {min}..{max}")),
    }
    let mut checks = probe::explained(s);
    if let Some(m) = s.memory {
        checks.push(format!(
            "memory above {} MiB then {}",
            m.bytes / (1 << 20),
            m.action
        ));
    }
    if let Some(c) = s.cpu {
        checks.push(format!(
            "cpu above {}% for {} runs then {}",
            c.percent, c.runs, c.action
        ));
    }
    Explanation {
        service: service_row(s, policy, classes),
        host: host_name(host).to_string(),
        found_by,
        checks,
        when_down: s.commands_text(false),
        when_failing: s.commands_text(true),
        depends_on: s.depends.iter().map(|(d, _)| d.as_str()).collect(),
        limits: LimitsRow {
            restarts: s.limits.restarts,
            within_seconds: s.limits.within,
            remind_seconds: s.limits.remind,
            defer_seconds: s.limits.defer,
            timeout_seconds: s.timeout.as_secs(),
            grace_seconds: s.grace.as_secs(),
            then: if s.limits.give_up {
                "give up"
            } else {
                "back off"
            },
            backoff_seconds: s.limits.backoff,
            backoff_cap_seconds: s.limits.backoff_cap,
        },
        last_checks: None,
        trouble: None,
    }
}
