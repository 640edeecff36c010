//! Whether a service is up, beyond "some process matches its pattern".
//!
//! A process that exists can still be the wrong one: a stale pidfile whose
//! pid was reused, a daemon of another user, one master where a master and
//! its workers should run. This stage takes the processes the matcher found
//! for a service and judges it: up (and which process is it), absent, or
//! running but failing, with the reason shown in reports, `--dry-run` and
//! `status`. It reads only what one service needs (its pidfile), so its cost
//! grows with services, not processes.

use std::path::Path;

use crate::decide::Problem;
use crate::policy::Service;
use crate::scan::Process;

/// What one look found for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The process that is the service (pid, start time), if it is up.
    pub running: Option<(u32, u64)>,
    /// Why it is not up, beyond "no process matches".
    pub problem: Option<Problem>,
    /// Something to say that needs no action (more processes than `count`).
    pub note: Option<String>,
}

/// The owner a service's `user` names, looked up once per pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Any,
    Uid(u32),
    /// The name is not a user on this host.
    Unknown(String),
}

impl Owner {
    pub fn of(service: &Service) -> Owner {
        let Some(name) = &service.user else {
            return Owner::Any;
        };
        if let Ok(uid) = name.parse::<u32>() {
            return Owner::Uid(uid);
        }
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Owner::Uid(user.uid.as_raw()),
            _ => Owner::Unknown(name.clone()),
        }
    }
}

/// Judges one service from the processes that match it (ascending pid) and
/// the whole process table (ascending pid, to look up a pidfile's pid).
pub fn judge(service: &Service, owner: &Owner, matched: &[&Process], all: &[Process]) -> Verdict {
    let procs: Vec<&Process> = match owner {
        Owner::Any => matched.to_vec(),
        Owner::Uid(uid) => matched
            .iter()
            .copied()
            .filter(|p| p.uid == Some(*uid))
            .collect(),
        Owner::Unknown(name) => return absent(format!("there is no user `{name}` on this host")),
    };
    let matches_anything = service.process.is_some() || service.exe.is_some();
    let chosen = match &service.pidfile {
        Some(path) => {
            let pid = match read_pidfile(path) {
                Ok(pid) => pid,
                Err(why) => return absent(format!("pidfile {}: {why}", path.display())),
            };
            let Ok(at) = all.binary_search_by_key(&pid, |p| p.pid) else {
                return absent(format!(
                    "pidfile {}: pid {pid} is not running",
                    path.display()
                ));
            };
            let process = &all[at];
            let owned = match owner {
                Owner::Uid(uid) => process.uid == Some(*uid),
                _ => true,
            };
            if !owned || (matches_anything && !procs.iter().any(|p| p.pid == pid)) {
                return absent(format!(
                    "pidfile {}: pid {pid} is another program ({})",
                    path.display(),
                    shorten(&process.cmdline)
                ));
            }
            process
        }
        None => match procs.first() {
            Some(p) => p,
            None => return Verdict::default(),
        },
    };
    let mut verdict = Verdict {
        running: Some((chosen.pid, chosen.start_time)),
        ..Verdict::default()
    };
    if matches_anything || service.count != (1, None) {
        let (min, max) = service.count;
        let n = procs.len();
        if n < min {
            verdict.running = None;
            verdict.problem = Some(Problem::Failing(format!("{n} of at least {min} processes")));
        } else if let Some(max) = max.filter(|&m| n > m) {
            verdict.note = Some(format!("{n} processes run, more than {max}"));
        }
    }
    verdict
}

/// Connects to the sockets of every running service that has `port` or
/// `unix`, all at once, each within its `connect_timeout`; one that does not
/// accept makes the service failing. A pass with many services costs one
/// timeout, not one per service. Each attempt runs on a thread of its own so
/// that even a connect the kernel keeps waiting (a full UNIX socket backlog)
/// cannot hold the pass past the timeout.
pub fn connect_all(services: &[&Service], verdicts: &mut [Verdict]) {
    let pending: Vec<(usize, std::sync::mpsc::Receiver<Result<(), String>>)> = services
        .iter()
        .zip(verdicts.iter())
        .enumerate()
        .filter(|(_, (s, v))| {
            v.running.is_some() && (s.connect.tcp.is_some() || s.connect.unix.is_some())
        })
        .map(|(i, (s, _))| {
            let (tx, rx) = std::sync::mpsc::channel();
            let connect = s.connect.clone();
            std::thread::spawn(move || {
                let _ = tx.send(try_connect(&connect));
            });
            (i, rx)
        })
        .collect();
    let start = std::time::Instant::now();
    for (i, rx) in pending {
        let limit = services[i].connect.timeout;
        let left = limit.saturating_sub(start.elapsed());
        let result = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| Err(format!("no answer within {} s", limit.as_secs())));
        if let Err(why) = result {
            verdicts[i].running = None;
            verdicts[i].problem = Some(Problem::Failing(why));
        }
    }
}

fn try_connect(connect: &crate::policy::Connect) -> Result<(), String> {
    if let Some(addr) = connect.tcp {
        std::net::TcpStream::connect_timeout(&addr, connect.timeout)
            .map_err(|e| format!("port {addr}: {}", plain(&e)))?;
    }
    if let Some(path) = &connect.unix {
        std::os::unix::net::UnixStream::connect(path)
            .map_err(|e| format!("unix {}: {}", path.display(), plain(&e)))?;
    }
    Ok(())
}

/// `connection refused`, without Rust's ` (os error 111)`.
fn plain(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}

fn absent(why: String) -> Verdict {
    Verdict {
        problem: Some(Problem::Absent(why)),
        ..Verdict::default()
    }
}

/// The pid in a pidfile, or why there is none.
fn read_pidfile(path: &Path) -> Result<u32, String> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("missing".into()),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let text = String::from_utf8_lossy(&text);
    let word = text.split_whitespace().next().unwrap_or("");
    if word.is_empty() {
        return Err("empty".into());
    }
    word.parse::<u32>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("not a pid ({:?})", shorten(word)))
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_reasons_table() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            (Some("42\n"), Ok(42)),
            (Some("  42 extra"), Ok(42)),
            (Some(""), Err("empty")),
            (Some("\n \n"), Err("empty")),
            (Some("abc"), Err("not a pid (\"abc\")")),
            (Some("-3"), Err("not a pid (\"-3\")")),
            (Some("0"), Err("not a pid (\"0\")")),
            (None, Err("missing")),
        ] {
            let path = dir.path().join("x.pid");
            let _ = std::fs::remove_file(&path);
            if let Some(c) = content {
                std::fs::write(&path, c).unwrap();
            }
            assert_eq!(
                read_pidfile(&path),
                want.map_err(str::to_string),
                "{content:?}"
            );
        }
    }
}
