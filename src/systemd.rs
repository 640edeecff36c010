//! Asks systemd about the units of a pass: one `systemctl show` for all of
//! them, bounded by a timeout, read as plain `KEY=VALUE` blocks. With
//! `unit`, the unit is the service's identity: systemd knows whether it
//! was stopped by an admin, crashed, is being restarted by systemd itself,
//! or hit its start limit, which no process table can tell.
//!
//! `systemctl show` rather than D-Bus (zbus): it is the interface systemd
//! documents as stable for scripts, it needs no bus connection code and no
//! async runtime in a one-shot agent, and one call answers for every unit.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The properties read, in the order systemd's docs list them.
const PROPERTIES: &str =
    "Id,LoadState,ActiveState,SubState,Result,MainPID,NRestarts,ExecMainCode,ExecMainStatus";

/// How long `systemctl show` may take before the units count as unknown.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What systemd says of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) id: String,
    pub(crate) load: String,
    pub(crate) active: String,
    pub(crate) sub: String,
    pub(crate) result: String,
    pub(crate) main_pid: u32,
    pub(crate) restarts: u32,
    /// How the main process ended (1 exited, 2 killed, 3 dumped core) and
    /// its exit status or signal.
    pub(crate) exec_code: i32,
    pub(crate) exec_status: i32,
}

/// A unit, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Active: its main process (0 when it has none).
    Active(u32),
    /// systemd is starting, stopping or restarting it: wait.
    Working(String),
    /// Down: crashed, failed to start, hit its start limit, or unknown.
    Failed(String),
    /// Stopped cleanly: an admin's `systemctl stop`, or the daemon exited
    /// 0 (or of a SIGTERM) by itself.
    Stopped(String),
    /// Masked: an admin's explicit "never run".
    Masked(String),
}

/// Why systemd could not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unasked {
    /// systemctl could not be run, or did not answer in time: asking again
    /// now would cost as much again.
    NoAnswer(String),
    /// It answered with a failure (one bad unit name fails the whole call):
    /// ask each unit alone.
    Failed(String),
}

impl std::fmt::Display for Unasked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unasked::NoAnswer(why) | Unasked::Failed(why) => f.write_str(why),
        }
    }
}

/// Each of `units`, judged, in order. One call for all; when it fails (a
/// unit systemd refuses fails the whole call), each unit is asked alone, so
/// one bad name leaves the others known. Err for a unit systemd could not
/// be asked about: unknown, never "down".
pub(crate) fn show_each(units: &[&str]) -> Vec<Result<Seen, Unasked>> {
    match show(units) {
        Ok(seen) => seen.into_iter().map(Ok).collect(),
        Err(Unasked::Failed(_)) if units.len() > 1 => units
            .iter()
            .map(|u| show(&[u]).map(|mut seen| seen.remove(0)))
            .collect(),
        Err(why) => units.iter().map(|_| Err(why.clone())).collect(),
    }
}

/// Runs `program args`, its output capped at 4 MiB, killed at [`TIMEOUT`];
/// Err when it cannot run or does not answer in time.
fn output(program: &str, args: &[&str]) -> Result<(std::process::ExitStatus, Vec<u8>), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {}", crate::probe::plain(&e)))?;
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = (&mut out).take(4 << 20).read_to_end(&mut text);
        text
    });
    let until = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} {} did not answer within {} s",
                    args.first().unwrap_or(&""),
                    TIMEOUT.as_secs()
                ));
            }
        }
    };
    Ok((status, reader.join().unwrap_or_default()))
}

/// The last lines the unit's last invocation wrote to the journal (the
/// one that failed): its invocation id from `systemctl show`, its lines
/// from `journalctl _SYSTEMD_INVOCATION_ID=`. A process that ended before
/// journald read its output (a busy host, a daemon that dies at once) has
/// lines the journal could not tie to the invocation: then the unit's lines
/// since that invocation started. None when there are none or systemd or
/// the journal cannot be asked.
pub(crate) fn last_words(unit: &str) -> Option<crate::words::Words> {
    let (_, shown) = output(
        "systemctl",
        &[
            "show",
            "--no-pager",
            "--timestamp=unix",
            "-p",
            "InvocationID",
            "-p",
            "ExecMainStartTimestamp",
            "--",
            unit,
        ],
    )
    .ok()?;
    let shown = String::from_utf8_lossy(&shown);
    let field = |key: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    let id = field("InvocationID")
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()))?;
    // `@1733460000`: seconds since the epoch, as journalctl reads them.
    let started = field("ExecMainStartTimestamp")
        .and_then(|t| t.strip_prefix('@'))
        .and_then(|t| t.parse::<u64>().ok());
    let by_invocation = format!("_SYSTEMD_INVOCATION_ID={id}");
    // The unit's own output, not what systemd says of it (`-u` has both).
    let by_unit = format!("_SYSTEMD_UNIT={unit}");
    let read = |args: &[&str]| -> Option<Vec<String>> {
        let mut all = args.to_vec();
        all.extend(["-n", "5", "-o", "cat", "--no-pager", "-q"]);
        let (status, text) = output("journalctl", &all).ok()?;
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<String> = (text.lines())
            .filter(|l| !l.trim().is_empty())
            .map(|l| crate::file::quote(l.trim_end(), 200))
            .collect();
        (status.success() && !lines.is_empty()).then_some(lines)
    };
    let since = started.map(|t| format!("@{t}"));
    let look = || {
        read(&[&by_invocation]).or_else(|| {
            let since = since.as_deref()?;
            read(&[&by_unit, "--since", since])
        })
    };
    // journald may lag a unit that just ended (more so on a busy host): ask
    // it to take in what its streams hold (`--sync`, as root), then look
    // again, a moment apart, for at most a second.
    let lines = look().or_else(|| {
        let _ = output("journalctl", &["--sync"]);
        (0..5).find_map(|k| {
            if k > 0 {
                std::thread::sleep(Duration::from_millis(250));
            }
            look()
        })
    })?;
    Some(crate::words::Words {
        from: format!("the journal of {unit}"),
        lines,
    })
}

/// Each of `units`, judged, in order; Err when systemd cannot be asked.
fn show(units: &[&str]) -> Result<Vec<Seen>, Unasked> {
    let mut args = vec!["show", "--no-pager", "-p", PROPERTIES, "--"];
    args.extend(units);
    let (status, text) = output("systemctl", &args).map_err(Unasked::NoAnswer)?;
    if !status.success() {
        return Err(Unasked::Failed(format!("systemctl show failed ({status})")));
    }
    let units_seen = parse(&String::from_utf8_lossy(&text));
    if units_seen.len() != units.len() {
        return Err(Unasked::Failed(
            "systemctl show answered for other units than asked".into(),
        ));
    }
    Ok(units_seen.iter().map(judge).collect())
}

/// `KEY=VALUE` lines, a blank line between units.
fn parse(text: &str) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut unit: Option<Unit> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            if let Some(u) = unit.take() {
                units.push(u);
            }
            continue;
        };
        let u = unit.get_or_insert_with(Unit::default);
        match key {
            "Id" => u.id = value.to_string(),
            "LoadState" => u.load = value.to_string(),
            "ActiveState" => u.active = value.to_string(),
            "SubState" => u.sub = value.to_string(),
            "Result" => u.result = value.to_string(),
            "MainPID" => u.main_pid = value.parse().unwrap_or(0),
            "NRestarts" => u.restarts = value.parse().unwrap_or(0),
            "ExecMainCode" => u.exec_code = value.parse().unwrap_or(0),
            "ExecMainStatus" => u.exec_status = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    units.extend(unit);
    units
}

/// What a unit's states mean for tend.
pub(crate) fn judge(u: &Unit) -> Seen {
    let id = &u.id;
    match u.load.as_str() {
        "loaded" => {}
        "masked" => return Seen::Masked(format!("{id} is masked")),
        "not-found" => return Seen::Failed(format!("there is no unit {id}")),
        other => return Seen::Failed(format!("{id} cannot be loaded ({other})")),
    }
    if u.sub == "auto-restart" {
        return Seen::Working(format!("systemd is restarting {id} ({})", why(u)));
    }
    match u.active.as_str() {
        "active" | "reloading" => Seen::Active(u.main_pid),
        "activating" => Seen::Working(format!("systemd is starting {id}")),
        "deactivating" => Seen::Working(format!("systemd is stopping {id}")),
        "inactive" if u.result == "success" => Seen::Stopped(format!("{id} is stopped")),
        _ => Seen::Failed(format!("{id} failed ({})", why(u))),
    }
}

/// systemd's reason: `signal SIGKILL`, `exit code 1`, `start-limit-hit`.
fn why(u: &Unit) -> String {
    let signal = || {
        nix::sys::signal::Signal::try_from(u.exec_status)
            .map_or(format!("signal {}", u.exec_status), |s| {
                format!("signal {s}")
            })
    };
    match u.result.as_str() {
        "signal" => signal(),
        "core-dump" => format!("core dump, {}", signal()),
        "exit-code" => format!("exit code {}", u.exec_status),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_table() {
        let text = "Id=a.service\nLoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nMainPID=42\nNRestarts=0\nExecMainCode=0\nExecMainStatus=0\n\n\
Id=b.service\nLoadState=loaded\nActiveState=activating\nSubState=auto-restart\nResult=signal\nMainPID=0\nExecMainCode=2\nExecMainStatus=9\n\n\
Id=c.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\nResult=signal\nMainPID=0\nExecMainCode=2\nExecMainStatus=9\n\n\
Id=d.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\nResult=start-limit-hit\nMainPID=0\n\n\
Id=e.service\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nResult=success\nMainPID=0\n\n\
Id=f.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\n\n\
Id=g.service\nLoadState=loaded\nActiveState=failed\nResult=exit-code\nExecMainCode=1\nExecMainStatus=3\n\n\
Id=h.service\nLoadState=masked\nActiveState=inactive\nResult=success\n";
        let seen: Vec<Seen> = parse(text).iter().map(judge).collect();
        assert_eq!(
            seen,
            vec![
                Seen::Active(42),
                Seen::Working("systemd is restarting b.service (signal SIGKILL)".into()),
                Seen::Failed("c.service failed (signal SIGKILL)".into()),
                Seen::Failed("d.service failed (start-limit-hit)".into()),
                Seen::Stopped("e.service is stopped".into()),
                Seen::Failed("there is no unit f.service".into()),
                Seen::Failed("g.service failed (exit code 3)".into()),
                Seen::Masked("h.service is masked".into()),
            ]
        );
    }
}
