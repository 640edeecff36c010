//! Reads the process table, once per look.
//!
//! Straight from /proc, and only what a pass needs: per process one read of
//! `stat` (state, parent, flags, start time) and one of `cmdline`; the
//! executable link only when a service matches by `exe`, the owner (`status`)
//! only when a service has `user`. sysinfo's generic refresh opened `stat`,
//! `cmdline` and `status` for every process and then tend read `status`
//! again (49,000 system calls for 2,000 processes where 6,000 do); sysinfo
//! stays for what it does well, memory and CPU of the few matched processes
//! ([`usage`]). Processes that can never be a service are dropped here: the
//! agent itself and its descendants, restart commands a killed pass left
//! running and theirs, zombies and kernel threads (threads are not listed).

use std::io::Read;

use anyhow::{Context, Result};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// The process found to be a service: its pid and start time.
pub type Seen = Option<(u32, u64)>;

/// A process that could be a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Arguments joined by spaces.
    pub cmdline: String,
    /// The executable's path, when it can be read (and a service needs it).
    pub exe: Option<String>,
    /// The real user id of its owner (when a service needs it).
    pub uid: Option<u32>,
    /// Its parent's pid, to tell a service's main process from the workers
    /// and sessions it forks.
    pub ppid: Option<u32>,
    /// When it started (seconds since the epoch), to tell a new process
    /// with a reused pid from the old one.
    pub start_time: u64,
}

/// What a look must read beyond the command line and `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// The executable link (a service matches by `exe`).
    pub exe: bool,
    /// The real uid (a service has `user`).
    pub uid: bool,
}

/// `stat`'s flag of a kernel thread (PF_KTHREAD).
const KERNEL_THREAD: u64 = 0x0020_0000;

/// The fields of `/proc/PID/stat` a pass uses.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    state: u8,
    ppid: u32,
    flags: u64,
    /// Clock ticks since boot.
    start: u64,
}

/// Parses `/proc/PID/stat`: the command name is in parentheses and may
/// itself hold spaces and parentheses, so the fields start after the last
/// `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // From field 3 (state): state, ppid, pgrp, session, tty, tpgid, flags,
    // ..., field 22 starttime.
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    let flags = fields.nth(4)?.parse().ok()?;
    let start = fields.nth(12)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        flags,
        start,
    })
}

/// The boot time (seconds since the epoch) and clock ticks per second, to
/// turn `stat`'s start time into a time of day.
fn boot_and_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let boot = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .context("no boot time in /proc/stat")?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .unwrap_or(100) as u64;
    Ok((boot, ticks))
}

/// Reads a /proc file into `buf` (cleared first); false when it is gone.
/// Plain reads: `read_to_end` would first ask the file's size and position
/// (two more system calls per file, for files whose size is 0), and a read
/// that returns less than asked is the end of a /proc file.
fn read_into(path: &str, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// The real uid in a `status` file.
fn real_uid(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_ascii_whitespace().next()?.parse().ok()
}

/// One look at the process table. Besides tend's own descendants, the
/// processes under `commands` (restart commands a killed pass left running,
/// whose command lines name the daemon they start) are never a service.
pub fn scan(commands: &[u32], wants: Wants) -> Result<Vec<Process>> {
    let (boot, ticks) = boot_and_ticks()?;
    let entries = std::fs::read_dir("/proc").context("cannot read the process table")?;
    let mut processes = Vec::new();
    let mut path = String::new();
    let mut buf = Vec::with_capacity(4096);
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        path.clear();
        path.push_str(&format!("/proc/{pid}/stat"));
        if !read_into(&path, &mut buf) {
            continue; // gone meanwhile
        }
        let Some(stat) = parse_stat(&buf) else {
            continue;
        };
        if matches!(stat.state, b'Z' | b'X' | b'x') || stat.flags & KERNEL_THREAD != 0 {
            continue;
        }
        path.truncate(path.len() - "stat".len());
        path.push_str("cmdline");
        if !read_into(&path, &mut buf) {
            continue;
        }
        let cmdline = cmdline_text(&buf);
        let exe = wants.exe.then(|| {
            path.truncate(path.len() - "cmdline".len());
            path.push_str("exe");
            std::fs::read_link(&path)
                .ok()
                .map(|l| l.to_string_lossy().into_owned())
        });
        let uid = wants.uid.then(|| {
            path.clear();
            path.push_str(&format!("/proc/{pid}/status"));
            read_into(&path, &mut buf).then(|| real_uid(&buf)).flatten()
        });
        processes.push(Process {
            pid,
            cmdline,
            exe: exe.flatten(),
            uid: uid.flatten(),
            ppid: Some(stat.ppid).filter(|&p| p > 0),
            start_time: boot + stat.start / ticks,
        });
    }
    processes.sort_unstable_by_key(|p| p.pid);
    drop_ours(&mut processes, commands);
    Ok(processes)
}

/// The arguments of a `cmdline` file joined by spaces (its NULs, and the
/// trailing one, dropped).
fn cmdline_text(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    text.replace('\0', " ")
}

/// Removes tend and every process below it (the restart commands still
/// running: `setsid -f` between its fork and exec says the daemon's path,
/// but is not the daemon yet), and the left-behind `commands` and theirs.
/// `processes` is sorted by pid.
fn drop_ours(processes: &mut Vec<Process>, commands: &[u32]) {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for p in processes.iter() {
        if let Some(ppid) = p.ppid {
            children.entry(ppid).or_default().push(p.pid);
        }
    }
    let mut ours: std::collections::HashSet<u32> = Default::default();
    let mut todo: Vec<u32> = vec![std::process::id()];
    todo.extend(commands);
    while let Some(pid) = todo.pop() {
        if ours.insert(pid) {
            todo.extend(children.get(&pid).into_iter().flatten());
        }
    }
    processes.retain(|p| !ours.contains(&p.pid));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_table() {
        let line = |comm: &str, state: char, ppid: u32, flags: u64, start: u64| {
            format!("42 ({comm}) {state} {ppid} 42 42 0 -1 {flags} 0 0 0 0 1 2 0 0 20 0 1 0 {start} 1000 200 1844")
        };
        for (text, want) in [
            (
                line("sshd", 'S', 1, 0x400100, 777),
                Some((b'S', 1, 0x400100, 777)),
            ),
            // A command name with spaces and parentheses.
            (line("a) (b c", 'R', 9, 0, 5), Some((b'R', 9, 0, 5))),
            (line("z", 'Z', 1, 0, 6), Some((b'Z', 1, 0, 6))),
            (
                line("kthreadd", 'S', 0, 0x208040, 0),
                Some((b'S', 0, 0x208040, 0)),
            ),
            ("garbage".to_string(), None),
            ("1 (x) S".to_string(), None),
        ] {
            let got = parse_stat(text.as_bytes()).map(|s| (s.state, s.ppid, s.flags, s.start));
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn cmdline_and_uid_table() {
        for (raw, want) in [
            (&b"/usr/sbin/sshd\0-D\0"[..], "/usr/sbin/sshd -D"),
            (
                b"sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups",
                "sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups",
            ),
            (b"a\0\0b\0", "a  b"),
            (b"", ""),
            (b"\xff\0x\0", "\u{fffd} x"),
        ] {
            assert_eq!(cmdline_text(raw), want, "{raw:?}");
        }
        assert_eq!(
            real_uid(b"Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\n"),
            Some(1000)
        );
        assert_eq!(real_uid(b"Name:\tx\n"), None);
    }

    #[test]
    fn ours_are_dropped_with_their_descendants() {
        let me = std::process::id();
        let p = |pid: u32, ppid: u32| Process {
            pid,
            cmdline: String::new(),
            exe: None,
            uid: None,
            ppid: Some(ppid),
            start_time: 0,
        };
        let mut all = vec![
            p(1, 0),
            p(me, 1),
            p(me + 1, me),
            p(me + 2, me + 1),
            p(500, 1),
            p(501, 500),
            p(600, 1),
        ];
        all.sort_unstable_by_key(|p| p.pid);
        drop_ours(&mut all, &[500]);
        let left: Vec<u32> = all.iter().map(|p| p.pid).collect();
        assert_eq!(left, vec![1, 600]);
    }

    #[test]
    fn this_process_table_is_read() {
        let all = scan(
            &[],
            Wants {
                exe: true,
                uid: true,
            },
        )
        .unwrap();
        // pid 1 is there with a command line or an owner; tend itself is not.
        assert!(all.iter().any(|p| p.pid == 1 && p.uid == Some(0)));
        assert!(all.iter().all(|p| p.pid != std::process::id()));
        let parent = nix::unistd::getppid().as_raw() as u32;
        let cargo = all
            .iter()
            .find(|p| p.pid == parent)
            .expect("the parent runs");
        assert!(cargo.exe.is_some() && cargo.start_time > 1_600_000_000);
    }
}
