//! Checks that speak to a running service: a port that must accept (and
//! answer what `expect` says to `send`), a UNIX socket, an HTTP(S) request
//! whose status and body must be right, a TLS certificate that must not
//! expire soon. A process that accepts connections but answers nothing, or
//! answers 500, is not a healthy service.
//!
//! Every check of a service runs within one deadline, on the thread
//! `check::connect_all` gives the service, so a pass costs one timeout
//! however many services answer slowly. What is read from the peer is
//! capped (64 KiB for `expect`, 1 MiB for HTTP) and quoted, never trusted.

mod http;
mod net;
mod tls;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use http::request;
use net::port;
use tls::{expiry, lifetime};

use crate::policy::{Action, Certificate, Http, Port, Service};

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Passed,
    /// Passed, with something to say (`certificate ... then report`).
    Warned,
    Failed,
}

/// One check and what it found, as dry runs, `explain` and JSON events
/// show it, and as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checked {
    /// The check as the policy names it: `port 127.0.0.1:6379`, `unix
    /// PATH`, `http URL`, `certificate HOST:PORT`.
    pub(crate) check: String,
    pub(crate) status: Status,
    /// What it found: `accepted`, `status 200 OK`, `expires in 41 days`,
    /// or why it failed.
    pub(crate) result: String,
}

impl Checked {
    /// `http http://127.0.0.1/health: status 500 Internal Server Error, not below 400`
    pub(crate) fn sentence(&self) -> String {
        format!("{}: {}", self.check, self.result)
    }

    /// `http http://127.0.0.1/health: failed (status 500 ...)`
    pub(crate) fn line(&self) -> String {
        let status = match self.status {
            Status::Passed => "passed",
            Status::Warned => "warned",
            Status::Failed => "failed",
        };
        format!("{}: {status} ({})", self.check, self.result)
    }
}

/// A check that speaks to a running service. A new kind is one impl of
/// this and one line in [`checks`].
trait Check {
    /// The check as the policy names it: `port 127.0.0.1:6379`.
    fn label(&self) -> String;
    /// What it asks, in words (`tend explain`).
    fn explain(&self) -> String;
    /// How long it may take, from when it starts.
    fn timeout(&self) -> Duration;
    /// What it found by `deadline`: passed (or warned) and in what words,
    /// or why it failed.
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String>;
}

impl<T: Check + ?Sized> Check for &T {
    fn label(&self) -> String {
        (**self).label()
    }
    fn explain(&self) -> String {
        (**self).explain()
    }
    fn timeout(&self) -> Duration {
        (**self).timeout()
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        (**self).judge(deadline)
    }
}

/// `port N [send TEXT] [expect RE]` (on `host`), with the timeout.
struct PortCheck<'a>(&'a Port, Duration);

impl Check for PortCheck<'_> {
    fn label(&self) -> String {
        format!("port {}", self.0.addr)
    }
    fn explain(&self) -> String {
        let mut words = format!("port {} accepts", self.0.addr);
        if let Some(send) = &self.0.send {
            words.push_str(&format!(
                ", is sent \"{}\"",
                String::from_utf8_lossy(send).escape_debug()
            ));
        }
        if let Some(expect) = &self.0.expect {
            words.push_str(&format!(", answers matching `{expect}`"));
        }
        words
    }
    fn timeout(&self) -> Duration {
        self.1
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        port(self.0, self.1, deadline).map(|r| (Status::Passed, r))
    }
}

/// `unix PATH`: the socket accepts.
struct Unix<'a>(&'a std::path::Path, Duration);

impl Check for Unix<'_> {
    fn label(&self) -> String {
        format!("unix {}", self.0.display())
    }
    fn explain(&self) -> String {
        format!("unix {} accepts", self.0.display())
    }
    fn timeout(&self) -> Duration {
        self.1
    }
    fn judge(&self, _: Instant) -> Result<(Status, String), String> {
        std::os::unix::net::UnixStream::connect(self.0)
            .map(|_| (Status::Passed, "accepted".to_string()))
            .map_err(|e| plain(&e))
    }
}

impl Check for Http {
    fn label(&self) -> String {
        format!("http {}", self.url)
    }
    fn explain(&self) -> String {
        let mut words = format!("GET {}", self.url);
        match self.status {
            Some(status) => words.push_str(&format!(" answers {status}")),
            None => words.push_str(" answers below 400"),
        }
        if let Some(content) = &self.content {
            words.push_str(&format!(" with a body matching `{content}`"));
        }
        words.push_str(&format!(" within {} s", self.timeout.as_secs()));
        if self.insecure {
            words.push_str(" (any certificate)");
        }
        words
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        request(self, deadline).map(|r| (Status::Passed, r))
    }
}

impl Check for Certificate {
    fn label(&self) -> String {
        format!("certificate {}:{}", self.host, self.port)
    }
    fn explain(&self) -> String {
        format!(
            "certificate {}:{} valid for {} days then {}",
            self.host, self.port, self.days, self.action
        )
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        let days = expiry(self, deadline)?;
        Ok(match lifetime(days, self.days) {
            (true, words) => (Status::Passed, words),
            (false, words) if self.action == Action::Report => (Status::Warned, words),
            (false, words) => (Status::Failed, words),
        })
    }
}

/// The checks of `service`, in the order they run (each port, each unix
/// socket, each http, the certificate): the registry of checks.
fn checks(service: &Service) -> Vec<Box<dyn Check + '_>> {
    let c = &service.connect;
    let mut all: Vec<Box<dyn Check + '_>> = Vec::new();
    all.extend(
        c.ports
            .iter()
            .map(|p| Box::new(PortCheck(p, c.timeout)) as Box<dyn Check>),
    );
    all.extend(
        c.unix
            .iter()
            .map(|path| Box::new(Unix(path, c.timeout)) as Box<dyn Check>),
    );
    all.extend(service.http.iter().map(|h| Box::new(h) as Box<dyn Check>));
    all.extend(
        service
            .certificate
            .as_ref()
            .map(|cert| Box::new(cert) as Box<dyn Check>),
    );
    all
}

/// The longest the checks of `service` may take together: each has its
/// own timeout, from when it starts, for each of its tries, and the waits
/// between tries.
pub(crate) fn budget(service: &Service) -> Duration {
    let (tries, every) = service.retry;
    let all = checks(service);
    let once: Duration = all.iter().map(|c| c.timeout()).sum();
    once * tries + every * (tries - 1) * all.len() as u32
}

/// What the checks of `service` ask, in words, in the order they run.
pub(crate) fn explained(service: &Service) -> Vec<String> {
    let mut said: Vec<String> = checks(service).iter().map(|c| c.explain()).collect();
    if let (tries @ 2.., every) = service.retry {
        said.push(format!(
            "a check that fails is tried again, up to {tries} tries {} apart, before it counts",
            crate::clock::span(every.as_secs() as i64)
        ));
    }
    said
}

/// Whether `service` has a check to run while it runs.
pub(crate) fn wanted(service: &Service) -> bool {
    !checks(service).is_empty()
}

/// Runs the checks of `service` in order, each within its own timeout from
/// when it starts, a failing one tried again as `retry` says, the first
/// failure that counts ending them: what each that ran found (a pass on a
/// later try says so, with what the first try found).
pub(crate) fn run(service: &Service) -> Vec<Checked> {
    let (tries, every) = service.retry;
    let mut done = Vec::new();
    for check in checks(service) {
        let mut first: Option<String> = None;
        let mut attempt = 1;
        let (status, result) = loop {
            let deadline = Instant::now() + check.timeout();
            let (status, result) = check
                .judge(deadline)
                .unwrap_or_else(|why| (Status::Failed, why));
            if status != Status::Failed || attempt >= tries {
                break (status, result);
            }
            first.get_or_insert(result);
            attempt += 1;
            std::thread::sleep(every);
        };
        let result = match (first, status) {
            (None, _) => result,
            (Some(_), Status::Failed) => format!("{result}; {tries} tries"),
            (Some(f), _) => format!("{result}; on try {attempt} of {tries}, the first: {f}"),
        };
        done.push(Checked {
            check: check.label(),
            status,
            result,
        });
        if status == Status::Failed {
            break;
        }
    }
    done
}

pub(crate) fn plain(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}
