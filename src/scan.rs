//! Reads the process table, once per look.
//!
//! sysinfo is asked for only what matching needs (command line and
//! executable, no threads). Processes that can never be a service are dropped
//! here: the agent itself and its descendants, restart commands a killed
//! pass left running and theirs, zombies, threads and kernel threads.

use anyhow::{anyhow, Result};
use sysinfo::{ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

/// The process found to be a service: its pid and start time.
pub type Seen = Option<(u32, u64)>;

/// A process that could be a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Arguments joined by spaces.
    pub cmdline: String,
    /// The executable's path, when it can be read.
    pub exe: Option<String>,
    /// The real user id of its owner.
    pub uid: Option<u32>,
    /// Its parent's pid, to tell a service's main process from the workers
    /// and sessions it forks.
    pub ppid: Option<u32>,
    /// When it started (seconds since the epoch), to tell a new process
    /// with a reused pid from the old one.
    pub start_time: u64,
}

/// One look at the process table. Besides tend's own descendants, the
/// processes under `commands` (restart commands a killed pass left running,
/// whose command lines name the daemon they start) are never a service.
pub fn scan(commands: &[u32]) -> Result<Vec<Process>> {
    let mut system = System::new().map_err(|e| anyhow!("cannot read the process table: {e:?}"))?;
    let wanted = ProcessRefreshKind::nothing()
        .with_cmd(UpdateKind::Always)
        .with_exe(UpdateKind::Always)
        // Free: the owner is read from /proc/PID/status either way.
        .with_user(UpdateKind::Always)
        .without_tasks();
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, wanted);
    let me = sysinfo::Pid::from_u32(std::process::id());
    // tend and every process below it: the restart commands still running
    // (`setsid -f` between its fork and exec says the daemon's path, but is
    // not the daemon yet).
    let mut ours: std::collections::HashSet<sysinfo::Pid> = [me].into();
    ours.extend(commands.iter().map(|&p| sysinfo::Pid::from_u32(p)));
    loop {
        let before = ours.len();
        for p in system.processes().values() {
            if p.parent().is_some_and(|parent| ours.contains(&parent)) {
                ours.insert(p.pid());
            }
        }
        if ours.len() == before {
            break;
        }
    }
    let mut processes: Vec<Process> = system
        .processes()
        .values()
        .filter(|p| !ours.contains(&p.pid()))
        .filter(|p| p.thread_kind().is_none())
        .filter(|p| !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead))
        .map(|p| Process {
            pid: p.pid().as_u32(),
            cmdline: p
                .cmd()
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            exe: p.exe().map(|e| e.to_string_lossy().into_owned()),
            uid: p.user_id().map(|u| **u),
            ppid: p.parent().map(|pp| pp.as_u32()),
            start_time: p.start_time(),
        })
        .collect();
    processes.sort_unstable_by_key(|p| p.pid);
    Ok(processes)
}

/// The path of the binary a process runs, when that binary was deleted or
/// replaced on disk after the process started (an upgrade it has not
/// loaded): `/proc/PID/exe` ends in ` (deleted)` (the file was unlinked or
/// renamed over, as dpkg and rpm do), or the file at its absolute argv[0]
/// is not the inode that runs (the old one was moved aside and a new one
/// put in its place), as seen from the process's own root, so a daemon in a
/// chroot or a container is compared with its own files. None when it is
/// current or cannot be read.
pub fn replaced(pid: u32) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let exe = format!("/proc/{pid}/exe");
    let link = std::fs::read_link(&exe).ok()?;
    if let Some(path) = link.as_os_str().as_bytes().strip_suffix(b" (deleted)") {
        return Some(String::from_utf8_lossy(path).into_owned());
    }
    let running = std::fs::metadata(&exe).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|&b| b == 0).next()?;
    if !argv0.starts_with(b"/") {
        return None;
    }
    // The file at argv[0] as the process sees it: in its own root and
    // mount namespace (a chroot, a container), not the host's.
    let mut inside = std::ffi::OsString::from(format!("/proc/{pid}/root"));
    inside.push(std::ffi::OsStr::from_bytes(argv0));
    let on_disk = std::fs::metadata(&inside).ok()?;
    let argv0 = std::path::Path::new(std::ffi::OsStr::from_bytes(argv0));
    ((running.dev(), running.ino()) != (on_disk.dev(), on_disk.ino()))
        .then(|| argv0.to_string_lossy().into_owned())
}

/// When a process started, in clock ticks since boot (`/proc/PID/stat`'s
/// 22nd field): with its pid, what tells it from a later process that got
/// the same pid.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Resident memory (bytes) and CPU time used so far (milliseconds) of some
/// processes: one more read of the process table restricted to them, so it
/// costs as many services as need it, not the whole table.
pub fn usage(pids: &[u32]) -> std::collections::HashMap<u32, (u64, u64)> {
    if pids.is_empty() {
        return Default::default();
    }
    let Ok(mut system) = System::new() else {
        return Default::default();
    };
    let pids: Vec<sysinfo::Pid> = pids.iter().map(|&p| sysinfo::Pid::from_u32(p)).collect();
    let wanted = ProcessRefreshKind::nothing()
        .with_memory()
        .with_cpu()
        .without_tasks();
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, wanted);
    system
        .processes()
        .values()
        .map(|p| (p.pid().as_u32(), (p.memory(), p.accumulated_cpu_time())))
        .collect()
}
