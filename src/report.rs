//! Says what happened: text for cron mail, the same events to syslog.
//!
//! Only changes are events; a pass where every service runs emits nothing, so
//! cron sends no mail. The wording keeps the seed's CFEngine reports
//! recognisable. Syslog is best effort: a host without /dev/log still gets
//! the text, plus one line saying syslog was not reached.

use std::fmt;
use std::io::Write;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::act::Failure;
use crate::cli::Format;

/// Something worth telling the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `times`: this is the Nth restart in a window that began S seconds ago.
    Restarting {
        name: String,
        times: Option<(usize, i64)>,
        problem: Option<crate::decide::Problem>,
    },
    Restarted {
        name: String,
        pid: u32,
    },
    Failed {
        name: String,
        command: String,
        failure: Failure,
    },
    /// A reminder: still failing, with the last failure.
    StillFailing {
        name: String,
        since: i64,
        failure: String,
    },
    /// Back after failing, thanks to a restart.
    Recovered {
        name: String,
        pid: u32,
    },
    /// Back by itself.
    RunningAgain {
        name: String,
        since: i64,
    },
    GaveUp {
        name: String,
        id: String,
        restarts: usize,
        span: i64,
    },
    /// A reminder: still down, no longer restarted.
    StillGivenUp {
        name: String,
        id: String,
        since: i64,
    },
    /// Down for `span` seconds, restarts held by a package manager.
    Deferred {
        name: String,
        span: i64,
        why: String,
    },
    /// Its process runs a binary that was replaced on disk.
    Replaced {
        name: String,
        path: String,
    },
    /// Same, and tend restarts it (`restart_on_upgrade`).
    Upgrading {
        name: String,
        path: String,
    },
    /// Needs no action, said once while it lasts.
    Note {
        name: String,
        text: String,
    },
    /// The restart to load an upgraded binary did not work.
    UpgradeFailed {
        name: String,
        command: String,
        failure: String,
    },
}

impl Event {
    /// The `event` field of its JSON report.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Restarting { .. } => "restarting",
            Event::Restarted { .. } => "restarted",
            Event::Failed { .. } => "failed",
            Event::StillFailing { .. } => "still_failing",
            Event::Recovered { .. } => "recovered",
            Event::RunningAgain { .. } => "running_again",
            Event::GaveUp { .. } => "gave_up",
            Event::StillGivenUp { .. } => "still_given_up",
            Event::Deferred { .. } => "deferred",
            Event::Replaced { .. } => "replaced",
            Event::Upgrading { .. } => "upgrading",
            Event::Note { .. } => "note",
            Event::UpgradeFailed { .. } => "upgrade_failed",
        }
    }

    /// The fields of its JSON report beyond the common ones: always `name`,
    /// then what the event is about (docs/reports.md lists them).
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let (name, more) = match self {
            Event::Restarting {
                name,
                times,
                problem,
            } => (
                name,
                json!({
                    "restarts": times.map(|(n, _)| n),
                    "reason": problem.as_ref().map(|p| match p {
                        crate::decide::Problem::Absent(why) | crate::decide::Problem::Failing(why) => why.clone(),
                    }),
                }),
            ),
            Event::Restarted { name, pid } | Event::Recovered { name, pid } => {
                (name, json!({ "pid": pid }))
            }
            Event::Failed {
                name,
                command,
                failure,
            } => (
                name,
                json!({ "command": command, "failure": failure.to_string() }),
            ),
            Event::UpgradeFailed {
                name,
                command,
                failure,
            } => (name, json!({ "command": command, "failure": failure })),
            Event::StillFailing {
                name,
                since,
                failure,
            } => (name, json!({ "since": since, "failure": failure })),
            Event::RunningAgain { name, since } | Event::StillGivenUp { name, since, .. } => {
                (name, json!({ "since": since }))
            }
            Event::GaveUp {
                name,
                restarts,
                span,
                ..
            } => (name, json!({ "restarts": restarts, "seconds": span })),
            Event::Deferred { name, span, why } => {
                (name, json!({ "seconds": span, "reason": why }))
            }
            Event::Replaced { name, path } | Event::Upgrading { name, path } => {
                (name, json!({ "path": path }))
            }
            Event::Note { name, text } => (name, json!({ "note": text })),
        };
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), name.clone().into());
        if let serde_json::Value::Object(more) = more {
            fields.extend(more.into_iter().filter(|(_, v)| !v.is_null()));
        }
        fields
    }

    fn is_error(&self) -> bool {
        matches!(
            self,
            Event::Failed { .. }
                | Event::StillFailing { .. }
                | Event::GaveUp { .. }
                | Event::StillGivenUp { .. }
                | Event::Deferred { .. }
                | Event::UpgradeFailed { .. }
        )
    }
}

/// A unix time as local `YYYY-MM-DD HH:MM`.
pub fn local_time(t: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(t, 0) {
        chrono::LocalResult::Single(d) | chrono::LocalResult::Ambiguous(d, _) => {
            d.format("%Y-%m-%d %H:%M").to_string()
        }
        chrono::LocalResult::None => t.to_string(),
    }
}

/// `45 s`, `12 min`, `3 h`, `2 d`.
pub fn span(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86400),
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Restarting { name, times, problem } => {
                use crate::decide::Problem;
                match problem {
                    None => write!(f, "{name} is not running, restarting...")?,
                    Some(Problem::Absent(why)) => write!(f, "{name} is not running ({why}), restarting...")?,
                    Some(Problem::Failing(why)) => write!(f, "{name} fails a check ({why}), restarting...")?,
                }
                match times {
                    Some((n, s)) => write!(f, " ({} time in {})", ordinal(*n), span(*s)),
                    None => Ok(()),
                }
            }
            Event::Restarted { name, pid } => write!(f, "{name} restarted (pid {pid})"),
            Event::Failed { name, command, failure } => write!(f, "{name} failed to start! {command} {failure}"),
            Event::StillFailing { name, since, failure } => {
                write!(f, "{name} is still failing (down since {}): {failure}", local_time(*since))
            }
            Event::Recovered { name, pid } => write!(f, "{name} is running again (restarted, pid {pid})"),
            Event::RunningAgain { name, since } => {
                write!(f, "{name} is running again (was down since {})", local_time(*since))
            }
            Event::GaveUp { name, id, restarts, span: s } => write!(
                f,
                "{name}: giving up after {restarts} restarts in {}; run 'tend reset {id}' to try again",
                span(*s)
            ),
            Event::StillGivenUp { name, id, since } => write!(
                f,
                "{name} is still down (since {}); tend gave up restarting it; run 'tend reset {id}' to try again",
                local_time(*since)
            ),
            Event::Deferred { name, span: s, why } => {
                write!(f, "{name} is down; restart deferred for {}: {why}", span(*s))
            }
            Event::Replaced { name, path } => {
                write!(f, "{name} runs a replaced binary ({path}); restart it to load the upgrade")
            }
            Event::Upgrading { name, path } => {
                write!(f, "{name} runs a replaced binary ({path}), restarting...")
            }
            Event::Note { name, text } => write!(f, "{name}: {text}"),
            Event::UpgradeFailed { name, command, failure } => {
                write!(f, "{name} failed to restart onto the upgrade! {command} {failure}")
            }
        }
    }
}

/// Where events go.
pub struct Reporter {
    syslog: Syslog,
    format: Format,
    /// The digest of the policy enforced, for JSON reports.
    policy: Option<String>,
}

enum Syslog {
    /// Not connected yet: a pass with nothing to say never touches syslog.
    Untried,
    Connected(Box<Logger<LoggerBackend, Formatter3164>>),
    Unavailable,
}

/// Something to say that is not a service event: its kind (the JSON
/// `event`), one line, and more lines for the terminal (a policy error's
/// source excerpts).
pub struct Line<'a> {
    pub kind: &'a str,
    pub text: &'a str,
    pub detail: Option<&'a str>,
    pub error: bool,
}

impl Reporter {
    pub fn new(format: Format) -> Reporter {
        Reporter {
            syslog: Syslog::Untried,
            format,
            policy: None,
        }
    }

    /// JSON reports carry the digest of the policy enforced from now on.
    pub fn set_policy(&mut self, digest: &str) {
        self.policy = Some(digest.to_string());
    }

    pub fn emit(&mut self, service: &str, event: &Event) {
        let text = event.to_string();
        let mut fields = event.fields();
        fields.insert("service".into(), service.into());
        self.out(event.kind(), &text, None, event.is_error(), fields, true);
    }

    /// A line that is not a service event (a damaged state file, a hung
    /// pass): printed and logged the same way.
    pub fn say(&mut self, kind: &str, text: &str, error: bool) {
        self.line(&Line {
            kind,
            text,
            detail: None,
            error,
        });
    }

    pub fn line(&mut self, line: &Line) {
        let fields = serde_json::Map::new();
        self.out(line.kind, line.text, line.detail, line.error, fields, true);
    }

    /// To syslog only: worth a trace, not a mail.
    pub fn log(&mut self, kind: &str, text: &str) {
        let fields = serde_json::Map::new();
        self.out(kind, text, None, false, fields, false);
    }

    fn out(
        &mut self,
        kind: &str,
        text: &str,
        detail: Option<&str>,
        error: bool,
        mut fields: serde_json::Map<String, serde_json::Value>,
        print: bool,
    ) {
        let message = match self.format {
            Format::Text => text.to_string(),
            Format::Json => {
                let mut object = serde_json::Map::new();
                object.insert("time".into(), crate::now().into());
                object.insert("host".into(), host().into());
                object.insert("event".into(), kind.into());
                let level = if error { "error" } else { "notice" };
                object.insert("level".into(), level.into());
                object.insert("message".into(), text.into());
                if let Some(detail) = detail {
                    object.insert("detail".into(), detail.into());
                }
                if let Some(policy) = &self.policy {
                    object.insert("policy".into(), policy.clone().into());
                }
                object.append(&mut fields);
                serde_json::Value::Object(object).to_string()
            }
        };
        if print {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{message}");
            if let (Format::Text, Some(detail)) = (self.format, detail) {
                let _ = writeln!(out, "{detail}");
            }
            let _ = out.flush();
        }
        self.syslog(&message, error, print);
    }

    /// `print`: whether the line was printed too; only then is a missing
    /// syslog worth saying.
    fn syslog(&mut self, message: &str, error: bool, print: bool) {
        if let Syslog::Untried = self.syslog {
            self.syslog = match connect() {
                Ok(logger) => Syslog::Connected(Box::new(logger)),
                // Said with the first line that is printed, if any.
                Err(_) if !print => return,
                Err(why) => {
                    self.syslog = Syslog::Unavailable;
                    self.say(
                        "syslog_unavailable",
                        &format!(
                            "tend: syslog not reached ({why}); events are on this output only"
                        ),
                        false,
                    );
                    return;
                }
            };
        }
        if let Syslog::Connected(logger) = &mut self.syslog {
            let sent = if error {
                logger.err(message)
            } else {
                logger.notice(message)
            };
            if sent.is_err() {
                self.syslog = Syslog::Unavailable;
            }
        }
    }
}

/// The short host name, for JSON reports.
fn host() -> String {
    hostname::get()
        .map(|h| {
            h.to_string_lossy()
                .split('.')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// `TEND_SYSLOG_SOCKET` points syslog elsewhere than /dev/log; tests use it
/// to read what tend logs.
fn connect() -> Result<Logger<LoggerBackend, Formatter3164>, String> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "tend".into(),
        pid: std::process::id(),
    };
    match std::env::var_os("TEND_SYSLOG_SOCKET") {
        Some(path) => syslog::unix_custom(formatter, &path)
            .map_err(|e| format!("{}: {e}", path.to_string_lossy())),
        None => syslog::unix(formatter).map_err(|e| format!("/dev/log: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_and_ordinal_tables() {
        for (s, want) in [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (2400, "40 min"),
            (7200, "2 h"),
            (200_000, "2 d"),
        ] {
            assert_eq!(span(s), want);
        }
        for (n, want) in [
            (1, "1st"),
            (2, "2nd"),
            (3, "3rd"),
            (4, "4th"),
            (11, "11th"),
            (12, "12th"),
            (13, "13th"),
            (21, "21st"),
            (22, "22nd"),
            (101, "101st"),
        ] {
            assert_eq!(ordinal(n), want);
        }
    }
}
