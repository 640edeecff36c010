//! Runs restart commands safely, then waits for the services to appear.
//!
//! A restart command is run without a shell (unless the service asks for
//! one), with stdin from /dev/null, its output in an unlinked temporary file
//! (never a pipe: a daemon that keeps the descriptor would otherwise hang the
//! agent, and cron with it), in its own process group so a timeout can kill
//! everything it started, with a PATH that has the sbin directories cron
//! leaves out, only the environment a daemon should have, and none of the
//! descriptors tend inherited. All commands of a pass run at once and are
//! watched from one loop, so five failing services cost one timeout or grace
//! period, not five. A restart is done when the service's main process has
//! appeared and stayed the same for its settle time.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::policy::Command;
use crate::scan::{Running, Seen};
use crate::state::Spawned;

pub(crate) const SANE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How often running commands are polled.
const TICK: Duration = Duration::from_millis(20);
/// How often the process table is read while waiting for services to appear.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// What a look after a restart found of one service: its main process if
/// it is up (and passes its checks), else why a process that runs fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sight {
    pub(crate) up: Seen,
    pub(crate) failing: Option<String>,
    /// Its unit failed (systemd says why): no process is coming.
    pub(crate) ended: Option<String>,
}

/// Told which command runs for a job, as soon as it is known.
pub(crate) type Spawn<'a> = dyn FnMut(usize, Option<Spawned>) + 'a;

/// How a restart ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The commands succeeded and the service is running.
    Restarted(Running),
    /// `command` (as written) failed, or the service did not appear after
    /// the last one.
    Failed { command: String, failure: Failure },
}

/// What to run for one service: its commands in order (`stop` then
/// `start`, or one of `start` and `restart`), each within `timeout`, then
/// wait up to `grace` for the service to appear, and `settle` for it to
/// stay up.
pub(crate) struct Job<'a> {
    pub(crate) commands: Vec<&'a Command>,
    pub(crate) timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) settle: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
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
    /// The service appeared as `pid` but was gone `after` the command
    /// ended, before it had stayed up for its settle time.
    Died {
        pid: Option<u32>,
        after: Duration,
    },
    /// Its process runs, but a check still failed (why) when `grace` was
    /// over.
    StillFails {
        why: String,
        grace: Duration,
    },
    /// The command succeeded, and the unit failed (systemd says why).
    UnitFailed(String),
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
            Failure::StillFails { why, grace } => write!(
                f,
                "started, but still fails a check after {} s: {why}",
                grace.as_secs()
            ),
            Failure::UnitFailed(why) => write!(f, "exited 0, but {why}"),
            Failure::Died { pid, after } => write!(
                f,
                "started{} but it exited after {} s",
                pid.map_or(String::new(), |pid| format!(" (pid {pid})")),
                after.as_secs_f64().round() as u64
            ),
        }
    }
}

enum Phase {
    Running {
        /// Which of the job's commands.
        step: usize,
        child: Child,
        output: File,
        deadline: Instant,
    },
    Appearing {
        /// When the last command ended, and until when the service may take
        /// to appear.
        since: Instant,
        until: Instant,
        /// The main process seen, and since when: done once it has stayed
        /// the same for the settle time.
        seen: Option<(Running, Instant)>,
    },
    Done(Outcome),
}

/// Runs every job at once (the commands of one job in order), and waits for
/// each to finish and its service to appear. `look` reads the process table
/// and says, for each job, the process (pid, start time) that is its
/// service, if any. Outcomes come back in the order of `jobs`.
///
/// `spawned` is told each command's process group as soon as it starts, so
/// it can be remembered before anything else happens (and None right
/// before a job's second command starts).
pub(crate) fn restart_all(
    jobs: &[Job],
    look: &mut dyn FnMut() -> Vec<Sight>,
    spawned: &mut Spawn,
) -> Vec<Outcome> {
    close_inherited();
    let mut phases: Vec<Phase> = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        phases.push(start(job, 0, i, spawned));
    }
    let mut last_look: Option<Instant> = None;
    loop {
        let now = Instant::now();
        for (i, (phase, job)) in phases.iter_mut().zip(jobs).enumerate() {
            if let Phase::Running {
                step,
                child,
                output,
                deadline,
            } = phase
            {
                let step = *step;
                let failed = |failure| {
                    Some(Phase::Done(Outcome::Failed {
                        command: job.commands[step].text.clone(),
                        failure,
                    }))
                };
                let next = match child.try_wait() {
                    Ok(Some(status)) if status.success() && step + 1 < job.commands.len() => {
                        Some(start(job, step + 1, i, spawned))
                    }
                    Ok(Some(status)) if status.success() => Some(Phase::Appearing {
                        since: now,
                        until: now + job.grace,
                        seen: None,
                    }),
                    Ok(Some(status)) => failed(Failure::Exited {
                        status: describe(status),
                        last_line: last_line(output),
                    }),
                    Ok(None) if now >= *deadline => {
                        kill_group(child);
                        failed(Failure::TimedOut(job.timeout))
                    }
                    Ok(None) => None,
                    Err(e) => failed(Failure::CannotRun(e.to_string())),
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
            for ((phase, job), process) in phases.iter_mut().zip(jobs).zip(found) {
                if let Some(next) = watch_appearing(phase, job, process, now) {
                    *phase = next;
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

/// One look at a service waiting to appear and stay up: its next phase, if
/// it changes. The same main process for `settle` is a restart; one that was
/// seen and is gone is a failed start; none within `grace` never appeared. A
/// main process that changes (a double fork's middle process exits) starts
/// the settle time again with the new one.
fn watch_appearing(phase: &mut Phase, job: &Job, sight: Sight, now: Instant) -> Option<Phase> {
    let process = sight.up;
    let Phase::Appearing { since, until, seen } = phase else {
        return None;
    };
    let last = || {
        job.commands
            .last()
            .map_or(String::new(), |c| c.text.clone())
    };
    match (process, *seen) {
        (Some(p), Some((q, first))) if p == q => {
            // Stayed up; the settle time is bounded too, by grace + settle.
            (now.duration_since(first) >= job.settle || now >= *until + job.settle)
                .then_some(Phase::Done(Outcome::Restarted(p)))
        }
        (Some(p), _) if job.settle.is_zero() => Some(Phase::Done(Outcome::Restarted(p))),
        (Some(p), _) => {
            *seen = Some((p, now));
            None
        }
        (None, Some((was, _))) if sight.failing.is_none() => Some(Phase::Done(Outcome::Failed {
            command: last(),
            failure: Failure::Died {
                pid: was.pid(),
                after: now.duration_since(*since),
            },
        })),
        // The unit failed again: said at once, not at the end of grace.
        (None, _) if sight.ended.is_some() => Some(Phase::Done(Outcome::Failed {
            command: last(),
            failure: Failure::UnitFailed(sight.ended.clone().unwrap_or_default()),
        })),
        // A process that runs but fails its check is said as such, not as
        // one that never appeared.
        (None, _) if now >= *until => Some(Phase::Done(Outcome::Failed {
            command: last(),
            failure: match sight.failing {
                Some(why) => Failure::StillFails {
                    why,
                    grace: job.grace,
                },
                None => Failure::NeverAppeared(job.grace),
            },
        })),
        (None, _) => None,
    }
}

fn start(job: &Job, step: usize, index: usize, spawned: &mut Spawn) -> Phase {
    let command = job.commands[step];
    if step > 0 {
        // The record of the previous command is forgotten before the next
        // starts: a pass killed between this command's start and its record
        // leaves "starting, not yet known", which the next pass waits out.
        spawned(index, None);
    }
    let failed = |why: String| {
        Phase::Done(Outcome::Failed {
            command: command.text.clone(),
            failure: Failure::CannotRun(why),
        })
    };
    let (output, out, err) = match output_file() {
        Ok(files) => files,
        Err(why) => return failed(why),
    };
    let argv = &command.argv;
    let child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(environment())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn();
    match child {
        Ok(child) => {
            spawned(
                index,
                Some(Spawned {
                    pgid: child.id(),
                    start_time: crate::scan::start_ticks(child.id()).unwrap_or(0),
                    since: crate::clock::now(),
                    boot: crate::scan::boot_id(),
                }),
            );
            Phase::Running {
                step,
                child,
                output,
                deadline: Instant::now() + job.timeout,
            }
        }
        Err(e) => failed(format!("{}: {e}", argv[0])),
    }
}

/// An unnamed file for a command's output, and two handles on it for its
/// standard output and error (read afterwards with [`last_line`]).
pub(crate) fn output_file() -> Result<(File, File, File), String> {
    let why = |e: std::io::Error| format!("cannot create a file for its output: {e}");
    let output = tempfile::tempfile().map_err(why)?;
    let out = output.try_clone().map_err(why)?;
    let err = output.try_clone().map_err(why)?;
    Ok((output, out, err))
}

/// Variables a restart command (and so the daemon it starts) is given:
/// a PATH with the sbin directories cron leaves out, and the locale and
/// time zone tend was started with. Nothing else of tend's environment
/// (cron's MAILTO, a shell's variables) reaches a daemon.
pub(crate) const PASSED: &[&str] = &["LANG", "LANGUAGE", "TZ", "HOME"];

fn environment() -> Vec<(String, std::ffi::OsString)> {
    let mut env: Vec<(String, std::ffi::OsString)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            (PASSED.contains(&k.as_str()) || k.starts_with("LC_")).then_some((k, v))
        })
        .collect();
    env.push(("PATH".into(), SANE_PATH.into()));
    env
}

/// Marks every descriptor tend inherited (3 and above: a `flock` wrapper's
/// lock, a shell's stray file) close-on-exec, so no restart command, and no
/// daemon it starts, keeps one: a daemon holding cron's flock would block
/// every later pass. tend's own descriptors are close-on-exec already.
fn close_inherited() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: only used for this one fcntl; a number that closed since
        // the listing (the directory's own descriptor) fails harmlessly.
        let _ = nix::fcntl::fcntl(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".to_string(),
    }
}

/// Whether a restart command a pass started (and maybe never saw end) still
/// runs: its leader is alive, is the same process (same pid and start time,
/// in the same boot) and still leads its process group. What the leader
/// runs now is no test: a `#!` script runs as `/bin/sh SCRIPT ARGS`, and a
/// command may exec another program. A record of an older version (no
/// boot) is believed only while the leader runs one of the service's own
/// commands word for word.
pub(crate) fn still_running(command: &Spawned, ours: &[&Command]) -> bool {
    let Some((start, group)) = crate::scan::leader(command.pgid) else {
        return false;
    };
    if start != command.start_time || group != command.pgid {
        return false;
    }
    if let Some(boot) = &command.boot {
        return crate::scan::boot_id().as_deref() == Some(boot.as_str());
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", command.pgid)) else {
        return false;
    };
    let argv: Vec<&[u8]> = cmdline
        .strip_suffix(b"\0")
        .unwrap_or(&cmdline)
        .split(|&b| b == 0)
        .collect();
    ours.iter().any(|c| {
        c.argv.len() == argv.len() && c.argv.iter().zip(&argv).all(|(a, b)| a.as_bytes() == *b)
    })
}

/// Kills a restart command a killed pass left behind, with its group.
pub(crate) fn kill_left_behind(command: &Spawned) {
    if let Ok(pgid) = i32::try_from(command.pgid) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// Kills the command and everything in its process group, and reaps it.
pub(crate) fn kill_group(child: &mut Child) {
    if let Ok(pgid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last non-empty line the command printed, shortened for a report.
pub(crate) fn last_line(output: &mut File) -> Option<String> {
    let len = output.seek(SeekFrom::End(0)).ok()?;
    output
        .seek(SeekFrom::Start(len.saturating_sub(4096)))
        .ok()?;
    let mut tail = Vec::new();
    output.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(crate::file::quote(line, 200))
}
