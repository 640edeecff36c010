//! Reads the process table, once per look.
//!
//! sysinfo is asked for only what matching needs (command line and
//! executable, no threads). Processes that can never be a service are dropped
//! here: the agent itself and its children, zombies, threads and kernel
//! threads.

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
    /// When it started (seconds since the epoch), to tell a new process
    /// with a reused pid from the old one.
    pub start_time: u64,
}

/// One look at the process table.
pub fn scan() -> Result<Vec<Process>> {
    let mut system = System::new().map_err(|e| anyhow!("cannot read the process table: {e:?}"))?;
    let wanted = ProcessRefreshKind::nothing()
        .with_cmd(UpdateKind::Always)
        .with_exe(UpdateKind::Always)
        .without_tasks();
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, wanted);
    let me = sysinfo::Pid::from_u32(std::process::id());
    let mut processes: Vec<Process> = system
        .processes()
        .values()
        .filter(|p| p.pid() != me && p.parent() != Some(me))
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
            start_time: p.start_time(),
        })
        .collect();
    processes.sort_unstable_by_key(|p| p.pid);
    Ok(processes)
}
