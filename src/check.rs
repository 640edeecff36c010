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

use serde::{Deserialize, Serialize};

use crate::file;
use crate::policy::{Action, CpuLimit, Service};
use crate::probe;
use crate::scan::{Process, ProcessId, Running};

/// Why a service is not up, beyond "its process is not there".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Not running, and why (`pidfile /run/x.pid: pid 42 is not running`).
    Absent(String),
    /// Its process runs but fails a check (`port 80: connection refused`).
    Failing(String),
}

impl Problem {
    /// The reason alone, without "not running" or "fails a check".
    pub(crate) fn why(&self) -> &str {
        match self {
            Problem::Absent(why) | Problem::Failing(why) => why,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Absent(why) => write!(f, "not running ({why})"),
            Problem::Failing(why) => write!(f, "fails a check ({why})"),
        }
    }
}

/// The CPU time a process had used, when; and for how many passes in a row
/// its load was above the service's limit (kept in the state file between
/// passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CpuSample {
    pub(crate) pid: u32,
    pub(crate) start_time: u64,
    /// CPU time used since it started, in milliseconds.
    pub(crate) cpu_ms: u64,
    /// When, in unix milliseconds (the real clock, even under TEND_NOW).
    pub(crate) at_ms: u64,
    #[serde(default)]
    pub(crate) runs_above: u32,
}

/// What one look found for one service: whether it is up, and what its
/// checks and its CPU sample found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) seen: Observed,
    /// The CPU sample of this look, for services with `cpu above`.
    pub(crate) cpu: Option<CpuSample>,
    /// Passes in a row its checks have failed, this one included (0 when
    /// they passed or did not run), for `tolerate`.
    pub(crate) failed_passes: u32,
    /// What each check that speaks to it found (`port`, `http`, ...), in
    /// order, up to the first that failed; none while it is not running.
    pub(crate) checks: Vec<probe::Checked>,
    /// Its unit is `failed` (systemd's word for a run that ended badly):
    /// after a restart, nothing more is to be waited for.
    pub(crate) unit_failed: bool,
}

/// Whether a service is up, as one look found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Up, as `running`, with maybe something to say that needs no action
    /// (more processes than `count`, a certificate soon due).
    Up {
        running: Running,
        note: Option<String>,
    },
    /// Down: no process, or why it is not up (a stale pidfile, a process
    /// that fails a check).
    Down(Option<Problem>),
    /// Down, and not for tend to restart now (systemd is at work on the
    /// unit, or an admin stopped it and the policy leaves it so).
    Held(Held, Problem),
}

impl Default for Verdict {
    fn default() -> Verdict {
        Verdict {
            seen: Observed::Down(None),
            cpu: None,
            failed_passes: 0,
            checks: Vec::new(),
            unit_failed: false,
        }
    }
}

impl Verdict {
    /// Up, as this.
    pub(crate) fn up(running: Running) -> Verdict {
        Verdict {
            seen: Observed::Up {
                running,
                note: None,
            },
            ..Verdict::default()
        }
    }

    /// How it runs, if it is up.
    pub(crate) fn running(&self) -> Option<Running> {
        match &self.seen {
            Observed::Up { running, .. } => Some(*running),
            _ => None,
        }
    }

    /// Whether it is ready for the services that depend on it: up, and
    /// none of its checks failing (one failing within `tolerate` keeps it
    /// up, not ready).
    pub(crate) fn ready(&self) -> bool {
        self.running().is_some()
            && !self
                .checks
                .iter()
                .any(|c| c.status == probe::Status::Failed)
    }

    /// Why it is not up, beyond "no process matches".
    pub(crate) fn problem(&self) -> Option<&Problem> {
        match &self.seen {
            Observed::Up { .. } => None,
            Observed::Down(problem) => problem.as_ref(),
            Observed::Held(_, problem) => Some(problem),
        }
    }

    /// Something to say that needs no action, while it is up.
    pub(crate) fn note(&self) -> Option<&str> {
        match &self.seen {
            Observed::Up { note, .. } => note.as_deref(),
            _ => None,
        }
    }

    /// Why it is held, if it is.
    pub(crate) fn held(&self) -> Option<&Held> {
        match &self.seen {
            Observed::Held(held, _) => Some(held),
            _ => None,
        }
    }

    /// Its process runs but fails a check: `why`.
    fn fail(&mut self, why: String) {
        self.seen = Observed::Down(Some(Problem::Failing(why)));
    }

    /// Says `note` (needing no action) while it is up.
    fn say(&mut self, said: String) {
        if let Observed::Up { note, .. } = &mut self.seen {
            *note = Some(said);
        }
    }
}

/// Why a service that is down is not restarted in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// systemd is starting, stopping or restarting the unit.
    Systemd(String),
    /// Stopped cleanly, and `when stopped report` (say) or `leave`.
    Stopped { why: String, say: bool },
}

/// The owner a service's `user` names, looked up once per pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    Any,
    Uid(u32),
    /// The name is not a user on this host.
    Unknown(String),
}

impl Owner {
    pub(crate) fn of(service: &Service) -> Owner {
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

/// Judges one service from the pid its pidfile or its unit names (read
/// before the table, when it has one: `pidfile PATH` or `unit NAME` as
/// `named.0`), the processes that match it (ascending pid) and those the
/// look kept (ascending pid, with the named pids).
pub(crate) fn judge(
    service: &Service,
    owner: &Owner,
    named: Option<(&str, &Result<u32, String>)>,
    matched: &[&Process],
    all: &[Process],
) -> Verdict {
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
    let chosen = match named {
        Some((label, read)) => {
            let pid = match read {
                Ok(pid) => *pid,
                Err(why) => return absent(format!("{label}: {why}")),
            };
            let Ok(at) = all.binary_search_by_key(&pid, |p| p.pid) else {
                return absent(format!("{label}: pid {pid} is not running"));
            };
            let process = &all[at];
            let owned = match owner {
                Owner::Uid(uid) => process.uid == Some(*uid),
                _ => true,
            };
            if !owned || (matches_anything && !procs.iter().any(|p| p.pid == pid)) {
                return absent(format!(
                    "{label}: pid {pid} is another program ({})",
                    file::quote(&process.cmdline, 60)
                ));
            }
            process
        }
        None => match main_process(&procs) {
            Some(p) => p,
            None => return Verdict::default(),
        },
    };
    let mut verdict = Verdict::up(Running::Process(ProcessId {
        pid: chosen.pid,
        started: chosen.start_time,
    }));
    if matches_anything || service.count != (1, None) {
        let (min, max) = service.count;
        let n = procs.len();
        if n < min {
            // `count 2` is exactly two: not "at least".
            let least = if max == Some(min) { "" } else { "at least " };
            verdict.fail(format!("{n} of {least}{min} processes"));
        } else if let Some(max) = max.filter(|&m| n > m) {
            verdict.say(format!("{n} processes run, more than {max}"));
        }
    }
    verdict
}

/// The service's main process among the processes that match it: one
/// whose parent is not itself a match (a daemon's workers and sessions are
/// children of a match), the oldest such. With no `pidfile`, this is what
/// `pid`, `status` and the reports name. Linear in the matches.
pub(crate) fn main_process<'a>(procs: &[&'a Process]) -> Option<&'a Process> {
    if procs.len() <= 1 {
        return procs.first().copied();
    }
    let matched: std::collections::HashSet<u32> = procs.iter().map(|p| p.pid).collect();
    procs
        .iter()
        .copied()
        .filter(|p| p.ppid.is_none_or(|parent| !matched.contains(&parent)))
        .min_by_key(|p| (p.start_time, p.pid))
        // Every match a child of another: a cycle cannot be, but the table
        // is read while it changes; take the oldest.
        .or_else(|| procs.iter().copied().min_by_key(|p| (p.start_time, p.pid)))
}

/// Runs the checks that speak to every running service (`port`, `unix`,
/// `http`, `certificate`: [`probe`]), all services at once, each within
/// its timeout; one that fails makes its service failing. A pass with many
/// services costs one timeout, not one per service. Each service's checks
/// run on a thread of their own so that even a connect the kernel keeps
/// waiting (a full UNIX socket backlog) cannot hold the pass past the
/// timeout.
///
/// `failed`: for each service, the passes in a row its checks had failed
/// before this look (None while a restart is verified: no tolerance
/// then). A failure within the service's `tolerate` is counted and shown
/// with the checks, and the service stays up.
pub(crate) fn connect_all(
    services: &[&Service],
    verdicts: &mut [Verdict],
    wanted: &[bool],
    failed: Option<&[u32]>,
) {
    let pending: Vec<(usize, std::sync::mpsc::Receiver<Vec<probe::Checked>>)> = services
        .iter()
        .zip(verdicts.iter())
        .enumerate()
        .filter(|(i, (s, v))| wanted[*i] && v.running().is_some() && probe::wanted(s))
        .map(|(i, (s, _))| {
            let (tx, rx) = std::sync::mpsc::channel();
            let service = (*s).clone();
            std::thread::spawn(move || {
                let _ = tx.send(probe::run(&service));
            });
            (i, rx)
        })
        .collect();
    let start = std::time::Instant::now();
    for (i, rx) in pending {
        let limit = probe::budget(services[i]);
        // Each check ends by its own deadline and says what it heard; this
        // bound is only for one the kernel keeps waiting (a UNIX connect on
        // a full backlog), well past the checks' own.
        let left = (limit + std::time::Duration::from_secs(2)).saturating_sub(start.elapsed());
        let Ok(checks) = rx.recv_timeout(left) else {
            verdicts[i].fail(format!("no answer within {} s", limit.as_secs()));
            continue;
        };
        let before = failed.and_then(|f| f.get(i).copied());
        // A process that started within its start period is not judged by
        // its checks yet (they are shown, and it is not ready).
        let young = verdicts[i]
            .running()
            .and_then(Running::process)
            .is_some_and(|p| {
                // Start times are the kernel's, on the real clock.
                let age = (crate::clock::real_ms() / 1000).saturating_sub(p.started);
                failed.is_some() && u128::from(age) * 1000 < services[i].start_period.as_millis()
            });
        for c in &checks {
            match c.status {
                probe::Status::Passed => {}
                probe::Status::Warned => verdicts[i].say(c.sentence()),
                probe::Status::Failed if young => {}
                probe::Status::Failed => {
                    let tolerate = services[i].tolerate;
                    let count = before.unwrap_or(0) + 1;
                    verdicts[i].failed_passes = count;
                    match (before, tolerate) {
                        (Some(_), 2..) if count < tolerate => {}
                        (Some(_), 2..) => {
                            verdicts[i].fail(format!("{}; {count} passes in a row", c.sentence()))
                        }
                        _ => verdicts[i].fail(c.sentence()),
                    }
                }
            }
        }
        verdicts[i].checks = checks;
    }
}

/// Reads memory and CPU time of the running services that have `memory`
/// or `cpu` limits (one restricted read for all), and applies `memory
/// above`; `cpu above` needs the last pass's sample and is `cpu_load`.
/// `failed` is as for [`connect_all`]: a memory limit that restarts counts
/// as a failed pass within the service's `tolerate`.
pub(crate) fn resources(
    services: &[&Service],
    verdicts: &mut [Verdict],
    wanted: &[bool],
    failed: Option<&[u32]>,
) {
    let measured =
        |s: &Service, v: &Verdict| v.running().is_some() && (s.memory.is_some() || s.cpu.is_some());
    let pids: Vec<u32> = services
        .iter()
        .zip(verdicts.iter())
        .zip(wanted)
        .filter(|((s, v), &w)| w && measured(s, v))
        .filter_map(|((_, v), _)| v.running().and_then(Running::pid))
        .collect();
    let usage = crate::scan::usage(&pids);
    let at_ms = crate::clock::real_ms();
    for (i, (s, v)) in services.iter().zip(verdicts.iter_mut()).enumerate() {
        // Only the pids read above are in `usage`.
        let Some(ProcessId {
            pid,
            started: start_time,
        }) = v
            .running()
            .filter(|_| measured(s, v))
            .and_then(Running::process)
        else {
            continue;
        };
        let Some(&(rss, cpu_ms)) = usage.get(&pid) else {
            continue;
        };
        if s.cpu.is_some() {
            v.cpu = Some(CpuSample {
                pid,
                start_time,
                cpu_ms,
                at_ms,
                runs_above: 0,
            });
        }
        if let Some(limit) = s.memory.filter(|m| rss > m.bytes) {
            let why = format!("memory {} above {}", size(rss), size(limit.bytes));
            let before = failed.and_then(|f| f.get(i).copied());
            if limit.action == Action::Restart {
                // One failed pass, whether a check failed too or not.
                let count = match v.failed_passes {
                    0 => before.unwrap_or(0) + 1,
                    counted => counted,
                };
                v.failed_passes = count;
                match (before, s.tolerate) {
                    (Some(_), 2..) if count < s.tolerate => continue,
                    (Some(_), 2..) => {
                        v.fail(format!("{why}; {count} passes in a row"));
                        continue;
                    }
                    _ => {}
                }
            }
            over(v, limit.action, why);
        }
    }
}

/// `cpu above`: the load between the last pass's sample and this one (the
/// same process), how many passes in a row it has been above, and whether
/// that is enough to act.
pub(crate) fn cpu_load(
    limit: &CpuLimit,
    prior: Option<&CpuSample>,
    now: CpuSample,
) -> (CpuSample, Option<String>) {
    let same =
        prior.filter(|p| (p.pid, p.start_time) == (now.pid, now.start_time) && now.at_ms > p.at_ms);
    let Some(p) = same else {
        return (now, None);
    };
    let percent = now.cpu_ms.saturating_sub(p.cpu_ms) as f64 * 100.0 / (now.at_ms - p.at_ms) as f64;
    let runs_above = if percent > limit.percent {
        p.runs_above + 1
    } else {
        0
    };
    let sample = CpuSample { runs_above, ..now };
    let why = (runs_above >= limit.runs).then(|| {
        let runs = if limit.runs == 1 {
            "1 run".to_string()
        } else {
            format!("{} runs", limit.runs)
        };
        format!("cpu {percent:.0}% above {}% for {runs}", limit.percent)
    });
    (sample, why)
}

/// A resource over its limit: restart (failing) or only say so (a note).
pub(crate) fn over(v: &mut Verdict, action: Action, why: String) {
    match action {
        Action::Restart => v.fail(why),
        Action::Report => v.say(why),
    }
}

/// `612 MB`
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 10 << 30 => format!("{} GB", b >> 30),
        b if b >= 10 << 20 => format!("{} MB", b >> 20),
        b if b >= 10 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} B"),
    }
}

pub(crate) fn absent(why: String) -> Verdict {
    Verdict {
        seen: Observed::Down(Some(Problem::Absent(why))),
        ..Verdict::default()
    }
}

/// Down, held (systemd at work; stopped and left so): `why`.
pub(crate) fn held(why: String, held: Held) -> Verdict {
    Verdict {
        seen: Observed::Held(held, Problem::Absent(why)),
        ..Verdict::default()
    }
}

/// The pid in a pidfile, or why there is none. The pidfile's directory is
/// often its daemon's to write: a symlink, a FIFO or a huge file there is
/// refused, and its content is never quoted (it could be anything).
pub(crate) fn read_pidfile(path: &Path) -> Result<u32, String> {
    let bytes =
        file::read(path, file::PIDFILE_MAX, file::Links::Refuse).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    let word = text.split_whitespace().next().unwrap_or("");
    if word.is_empty() {
        return Err("empty".into());
    }
    word.parse::<u32>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("holds no pid ({})", file::size(bytes.len() as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_process_table() {
        let p = |pid, ppid, start_time| Process {
            pid,
            cmdline: String::new(),
            exe: None,
            uid: None,
            ppid: Some(ppid),
            start_time,
        };
        // (processes as (pid, ppid, start), the main one's pid)
        for (procs, want) in [
            (vec![], None),
            (vec![(10, 1, 5)], Some(10)),
            // A master and its workers: the master.
            (vec![(10, 1, 5), (11, 10, 6), (12, 10, 6)], Some(10)),
            // Workers whose master died: the oldest of them.
            (vec![(11, 1, 6), (12, 1, 7)], Some(11)),
            // A double fork: the middle process while it lives ...
            (vec![(20, 1, 9), (21, 20, 9)], Some(20)),
            // ... and the daemon once it is gone.
            (vec![(21, 1, 9)], Some(21)),
            // A new master beside old orphaned workers: the oldest top.
            (vec![(11, 1, 6), (30, 1, 8), (31, 30, 8)], Some(11)),
            // Same start: the lowest pid.
            (vec![(41, 1, 3), (40, 1, 3)], Some(40)),
        ] {
            let procs: Vec<Process> = procs.iter().map(|&(a, b, c)| p(a, b, c)).collect();
            let refs: Vec<&Process> = procs.iter().collect();
            assert_eq!(main_process(&refs).map(|p| p.pid), want, "{procs:?}");
        }
    }

    /// (prior sample, CPU ms used since, wall ms since, runs needed) ->
    /// (runs above after, acts?)
    #[test]
    fn cpu_load_table() {
        let limit = |runs| CpuLimit {
            percent: 50.0,
            runs,
            action: Action::Restart,
        };
        let at = |cpu_ms, at_ms, runs_above| CpuSample {
            pid: 7,
            start_time: 1,
            cpu_ms,
            at_ms,
            runs_above,
        };
        let rows: Vec<(Option<CpuSample>, CpuSample, u32, u32, bool)> = vec![
            // First sample: nothing to compare with.
            (None, at(5000, 10_000, 0), 1, 0, false),
            // 900 ms of CPU in 1000 ms: 90%.
            (Some(at(0, 0, 0)), at(900, 1000, 0), 1, 1, true),
            (Some(at(0, 0, 0)), at(900, 1000, 0), 3, 1, false),
            (Some(at(0, 0, 2)), at(900, 1000, 0), 3, 3, true),
            // 10%: the count starts over.
            (Some(at(0, 0, 2)), at(100, 1000, 0), 3, 0, false),
            // Another process (restarted): start over.
            (
                Some(CpuSample {
                    pid: 8,
                    ..at(0, 0, 2)
                }),
                at(900, 1000, 0),
                3,
                0,
                false,
            ),
        ];
        for (i, (prior, now, runs, want_runs, want_act)) in rows.into_iter().enumerate() {
            let (sample, why) = cpu_load(&limit(runs), prior.as_ref(), now);
            assert_eq!(
                (sample.runs_above, why.is_some()),
                (want_runs, want_act),
                "row {i}"
            );
        }
        let (_, why) = cpu_load(&limit(2), Some(&at(0, 0, 1)), at(900, 1000, 0));
        assert_eq!(why.unwrap(), "cpu 90% above 50% for 2 runs");
    }

    #[test]
    fn pidfile_reasons_table() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            (Some("42\n"), Ok(42)),
            (Some("  42 extra"), Ok(42)),
            (Some(""), Err("empty")),
            (Some("\n \n"), Err("empty")),
            (Some("abc"), Err("holds no pid (3 bytes)")),
            (Some("-3"), Err("holds no pid (2 bytes)")),
            (Some("0"), Err("holds no pid (1 byte)")),
            (
                Some("root:$y$j9T$secret:19000:0:99999:7:::\n"),
                Err("holds no pid (38 bytes)"),
            ),
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
