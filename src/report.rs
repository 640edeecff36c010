//! Says what happened: text for cron mail, the same events to syslog.
//!
//! Only changes are events; a pass where every service runs emits nothing, so
//! cron sends no mail. The wording keeps the seed's CFEngine reports
//! recognisable. Syslog is best effort: a host without /dev/log still gets
//! the text, plus one line saying syslog was not reached.

use std::io::Write;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::cli::Format;
use crate::event::{Event, Kind};
use crate::probe::Checked;
use crate::words::Words;

/// An event as a channel may send it: its kind, its line, and its JSON
/// report (the `--format json` object).
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) kind: Kind,
    /// Its line, and what is shown under it (a daemon's last words).
    pub(crate) text: String,
    pub(crate) detail: Option<String>,
    pub(crate) event: serde_json::Map<String, serde_json::Value>,
}

/// Where events go.
pub(crate) struct Reporter {
    /// What was printed, for the policy's channels.
    sent: Vec<Outgoing>,
    syslog: Syslog,
    format: Format,
    /// The digest of the policy enforced, for JSON reports.
    policy: Option<String>,
    /// Lines kept instead of printed and logged (a unit test's reporter).
    kept: Option<Vec<String>>,
    /// Why syslog could not be reached at the last pass that tried (from
    /// the state): the same reason is not said again.
    syslog_known: Option<String>,
    /// What this run found when it tried: reached (None) or why not.
    syslog_found: Option<Option<String>>,
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
pub(crate) struct Line<'a> {
    pub(crate) kind: Kind,
    pub(crate) text: &'a str,
    pub(crate) detail: Option<&'a str>,
    pub(crate) error: bool,
}

impl Reporter {
    pub(crate) fn new(format: Format) -> Reporter {
        Reporter {
            sent: Vec::new(),
            syslog: Syslog::Untried,
            format,
            policy: None,
            kept: None,
            syslog_known: None,
            syslog_found: None,
        }
    }

    /// Why syslog was not reached at the last pass that tried (said then).
    pub(crate) fn syslog_known(&mut self, why: Option<String>) {
        self.syslog_known = why;
    }

    /// What this run found of syslog, if it tried: reached (None) or why
    /// not; for the state, so a reason is said once.
    pub(crate) fn syslog_found(&self) -> Option<Option<String>> {
        self.syslog_found.clone()
    }

    /// A reporter that keeps its lines (text) for a test to read.
    #[cfg(test)]
    pub(crate) fn keeping() -> Reporter {
        Reporter {
            kept: Some(Vec::new()),
            ..Reporter::new(Format::Text)
        }
    }

    /// The lines kept so far (`keeping`).
    #[cfg(test)]
    pub(crate) fn kept(&self) -> &[String] {
        self.kept.as_deref().unwrap_or_default()
    }

    /// The events printed so far, handed over once (to the channels).
    pub(crate) fn take_sent(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.sent)
    }

    /// JSON reports carry the digest of the policy enforced from now on.
    pub(crate) fn set_policy(&mut self, digest: &str) {
        self.policy = Some(digest.to_string());
    }

    /// A service's event; in JSON with what its checks found in this pass
    /// (`checks`: the look that decided it, or the one that verified a
    /// restart), when they ran.
    pub(crate) fn emit(&mut self, service: &str, event: &Event, checks: &[Checked]) {
        self.emit_words(service, event, checks, None);
    }

    /// The same, with the daemon's own last words (its log's last lines),
    /// shown under the line and in JSON as `last_words`.
    pub(crate) fn emit_words(
        &mut self,
        service: &str,
        event: &Event,
        checks: &[Checked],
        words: Option<&Words>,
    ) {
        let text = event.to_string();
        let mut fields = event.fields();
        fields.insert("service".into(), service.into());
        if !checks.is_empty() {
            if let Ok(value) = serde_json::to_value(checks) {
                fields.insert("checks".into(), value);
            }
        }
        if let Some(words) = words {
            if let Ok(value) = serde_json::to_value(words) {
                fields.insert("last_words".into(), value);
            }
        }
        let detail = words.map(Words::detail);
        self.out(
            event.kind(),
            &text,
            detail.as_deref(),
            event.is_error(),
            fields,
            true,
        );
    }

    /// A line that is not a service event (a damaged state file, a hung
    /// pass): printed and logged the same way.
    pub(crate) fn say(&mut self, kind: Kind, text: &str, error: bool) {
        self.line(&Line {
            kind,
            text,
            detail: None,
            error,
        });
    }

    pub(crate) fn line(&mut self, line: &Line) {
        let fields = serde_json::Map::new();
        self.out(line.kind, line.text, line.detail, line.error, fields, true);
    }

    /// To syslog only: worth a trace, not a mail.
    pub(crate) fn log(&mut self, kind: Kind, text: &str) {
        let fields = serde_json::Map::new();
        self.out(kind, text, None, false, fields, false);
    }

    fn out(
        &mut self,
        kind: Kind,
        text: &str,
        detail: Option<&str>,
        error: bool,
        mut fields: serde_json::Map<String, serde_json::Value>,
        print: bool,
    ) {
        let mut object = serde_json::Map::new();
        object.insert("time".into(), crate::clock::now().into());
        object.insert("host".into(), host().into());
        object.insert("event".into(), kind.name().into());
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
        let message = match self.format {
            Format::Text => text.to_string(),
            Format::Json => serde_json::Value::Object(object.clone()).to_string(),
        };
        // What is printed may be sent on, by the policy's channels; what
        // they say of themselves is not sent through them.
        if print
            && !matches!(
                kind,
                Kind::Notified | Kind::NotifyFailed | Kind::NotifyDropped
            )
        {
            self.sent.push(Outgoing {
                kind,
                text: text.to_string(),
                detail: detail.map(str::to_string),
                event: object,
            });
        }
        if let Some(kept) = &mut self.kept {
            if print {
                kept.push(message);
            }
            return;
        }
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
                Ok(logger) => {
                    self.syslog_found = Some(None);
                    Syslog::Connected(Box::new(logger))
                }
                // Said with the first line that is printed, if any.
                Err(_) if !print => return,
                // Said once per reason: a host without syslog is not news
                // every five minutes.
                Err(why) if self.syslog_known.as_ref() == Some(&why) => {
                    self.syslog_found = Some(Some(why));
                    Syslog::Unavailable
                }
                Err(why) => {
                    self.syslog = Syslog::Unavailable;
                    self.syslog_found = Some(Some(why.clone()));
                    self.say(
                        Kind::SyslogUnavailable,
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
pub(crate) fn host() -> String {
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

/// The syslog socket, /dev/log, or where `TEND_SYSLOG_SOCKET` points (tests
/// use it to read what tend logs); why not, in words that name what is
/// missing.
fn connect() -> Result<Logger<LoggerBackend, Formatter3164>, String> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "tend".into(),
        pid: std::process::id(),
    };
    let path = std::env::var_os("TEND_SYSLOG_SOCKET")
        .map_or_else(|| std::path::PathBuf::from("/dev/log"), Into::into);
    let shown = path.display();
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "there is no {shown}: no syslog daemon on this host"
            ));
        }
        Ok(meta)
            if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type())
                && !meta.is_symlink() =>
        {
            return Err(format!("{shown} is not a socket"));
        }
        _ => {}
    }
    syslog::unix_custom(formatter, &path).map_err(|e| {
        // The crate's words (`Initialization error: Io error: Connection
        // refused (os error 111)`): their last part, as an admin reads it.
        let text = e.to_string();
        let last = text.rsplit(": ").next().unwrap_or(&text);
        let last = last.split(" (os error").next().unwrap_or(last);
        format!("{shown}: {}", last.to_lowercase())
    })
}
