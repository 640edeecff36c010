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
}

enum Syslog {
    /// Not connected yet: a pass with nothing to say never touches syslog.
    Untried,
    Connected(Box<Logger<LoggerBackend, Formatter3164>>),
    Unavailable,
}

impl Default for Reporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter {
            syslog: Syslog::Untried,
        }
    }

    pub fn emit(&mut self, event: &Event) {
        self.say(&event.to_string(), event.is_error());
    }

    /// A line that is not a service event (a damaged state file, a hung
    /// pass): printed and logged the same way.
    pub fn say(&mut self, line: &str, error: bool) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        drop(out);
        self.log(line, error);
    }

    fn log(&mut self, line: &str, error: bool) {
        if let Syslog::Untried = self.syslog {
            self.syslog = match connect() {
                Ok(logger) => Syslog::Connected(Box::new(logger)),
                Err(why) => {
                    println!("tend: syslog not reached ({why}); events are on this output only");
                    Syslog::Unavailable
                }
            };
        }
        if let Syslog::Connected(logger) = &mut self.syslog {
            let sent = if error {
                logger.err(line)
            } else {
                logger.notice(line)
            };
            if sent.is_err() {
                self.syslog = Syslog::Unavailable;
            }
        }
    }
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
