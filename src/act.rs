//! Runs restart commands safely, then waits for the services to appear.
//!
//! A restart command is run without a shell (unless the service asks for
//! one), with stdin from /dev/null, its output in an unlinked temporary file
//! (never a pipe: a daemon that keeps the descriptor would otherwise hang the
//! agent, and cron with it), in its own process group so a timeout can kill
//! everything it started, and with a PATH that has the sbin directories cron
//! leaves out. All commands of a pass run at once and are watched from one
//! loop, so five failing services cost one timeout or grace period, not five.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::policy::Service;

pub const SANE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How often running commands are polled.
const TICK: Duration = Duration::from_millis(20);
/// How often the process table is read while waiting for services to appear.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// How a restart ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command succeeded and the service is running.
    Restarted {
        pid: u32,
        start_time: Option<u64>,
    },
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The command could not be started at all.
    CannotRun(String),
    /// The command exited non-zero or was killed by a signal.
    Exited {
        status: String,
        last_line: Option<String>,
    },
    TimedOut(Duration),
    /// The command succeeded but no matching process showed up.
    NeverAppeared(Duration),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::CannotRun(why) => write!(f, "cannot run: {why}"),
            Failure::Exited {
                status,
                last_line: Some(line),
            } => write!(f, "{status}: {line}"),
            Failure::Exited {
                status,
                last_line: None,
            } => write!(f, "{status}"),
            Failure::TimedOut(d) => write!(f, "timed out after {} s", d.as_secs()),
            Failure::NeverAppeared(d) => {
                write!(
                    f,
                    "exited 0 but the process did not appear within {} s",
                    d.as_secs()
                )
            }
        }
    }
}

enum Phase {
    Running {
        child: Child,
        output: File,
        deadline: Instant,
    },
    Appearing {
        until: Instant,
    },
    Done(Outcome),
}

/// Runs every service's restart command at once, and waits for each to
/// finish and its process to appear. `look` reads the process table and says,
/// for each of `services`, the process (pid, start time) that is it, if any.
/// Outcomes come back in the order of `services`.
pub fn restart_all(
    services: &[&Service],
    look: &mut dyn FnMut() -> Vec<crate::scan::Seen>,
) -> Vec<Outcome> {
    let mut phases: Vec<Phase> = services.iter().map(|s| start(s)).collect();
    let mut last_look: Option<Instant> = None;
    loop {
        let now = Instant::now();
        for (phase, service) in phases.iter_mut().zip(services) {
            if let Phase::Running {
                child,
                output,
                deadline,
            } = phase
            {
                let next = match child.try_wait() {
                    Ok(Some(status)) if status.success() => Some(Phase::Appearing {
                        until: now + service.grace,
                    }),
                    Ok(Some(status)) => Some(Phase::Done(Outcome::Failed(Failure::Exited {
                        status: describe(status),
                        last_line: last_line(output),
                    }))),
                    Ok(None) if now >= *deadline => {
                        kill_group(child);
                        Some(Phase::Done(Outcome::Failed(Failure::TimedOut(
                            service.timeout,
                        ))))
                    }
                    Ok(None) => None,
                    Err(e) => Some(Phase::Done(Outcome::Failed(Failure::CannotRun(
                        e.to_string(),
                    )))),
                };
                if let Some(next) = next {
                    *phase = next;
                }
            }
        }
        let appearing = phases.iter().any(|p| matches!(p, Phase::Appearing { .. }));
        if appearing && last_look.is_none_or(|t| now.duration_since(t) >= LOOK_EVERY) {
            last_look = Some(now);
            let found = look();
            for ((phase, service), process) in phases.iter_mut().zip(services).zip(found) {
                if let Phase::Appearing { until } = phase {
                    if let Some((pid, start_time)) = process {
                        *phase = Phase::Done(Outcome::Restarted {
                            pid,
                            start_time: Some(start_time),
                        });
                    } else if now >= *until {
                        *phase =
                            Phase::Done(Outcome::Failed(Failure::NeverAppeared(service.grace)));
                    }
                }
            }
        }
        if phases.iter().all(|p| matches!(p, Phase::Done(_))) {
            break;
        }
        std::thread::sleep(TICK);
    }
    phases
        .into_iter()
        .map(|p| match p {
            Phase::Done(outcome) => outcome,
            _ => unreachable!("the loop ends when every phase is done"),
        })
        .collect()
}

fn start(service: &Service) -> Phase {
    let failed = |why: String| Phase::Done(Outcome::Failed(Failure::CannotRun(why)));
    let output = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return failed(format!("cannot create a file for its output: {e}")),
    };
    let (out, err) = match (output.try_clone(), output.try_clone()) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            return failed(format!("cannot create a file for its output: {e}"))
        }
    };
    let argv = &service.restart.argv;
    let spawned = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env("PATH", SANE_PATH)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn();
    match spawned {
        Ok(child) => Phase::Running {
            child,
            output,
            deadline: Instant::now() + service.timeout,
        },
        Err(e) => failed(format!("{}: {e}", argv[0])),
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".to_string(),
    }
}

/// Kills the command and everything in its process group, and reaps it.
fn kill_group(child: &mut Child) {
    if let Ok(pgid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last non-empty line the command printed, shortened for a report.
fn last_line(output: &mut File) -> Option<String> {
    let len = output.seek(SeekFrom::End(0)).ok()?;
    output
        .seek(SeekFrom::Start(len.saturating_sub(4096)))
        .ok()?;
    let mut tail = Vec::new();
    output.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    let mut line: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
    if line.len() < text.trim().len() && line.chars().count() == 200 {
        line.push('…');
    }
    Some(line)
}
