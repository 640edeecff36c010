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
    Restarting {
        name: String,
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
}

impl Event {
    fn is_error(&self) -> bool {
        matches!(self, Event::Failed { .. })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Restarting { name } => write!(f, "{name} is not running, restarting..."),
            Event::Restarted { name, pid } => write!(f, "{name} restarted (pid {pid})"),
            Event::Failed {
                name,
                command,
                failure,
            } => write!(f, "{name} failed to start! {command} {failure}"),
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
        let line = event.to_string();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        drop(out);
        self.log(&line, event.is_error());
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
