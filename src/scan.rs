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

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, Result};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// One process, told from a later one that reuses its pid: the pid and
/// when it started (seconds since the epoch).
/// In the state file, `pid` and `start_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ProcessId {
    pub(crate) pid: u32,
    #[serde(rename = "start_time")]
    pub(crate) started: u64,
}

/// How a service that is up runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Running {
    /// As this process, its main one.
    Process(ProcessId),
    /// As a systemd unit that is active with no process (a oneshot that
    /// remains after it exited).
    NoProcess,
}

impl Running {
    pub(crate) fn process(self) -> Option<ProcessId> {
        match self {
            Running::Process(p) => Some(p),
            Running::NoProcess => None,
        }
    }

    pub(crate) fn pid(self) -> Option<u32> {
        self.process().map(|p| p.pid)
    }
}

/// The service as a look after a restart found it: up, or not (yet).
pub(crate) type Seen = Option<Running>;

/// A process that could be a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    /// Arguments joined by spaces.
    pub(crate) cmdline: String,
    /// The executable's path, when it can be read (and a service needs it).
    pub(crate) exe: Option<String>,
    /// The real user id of its owner (when a service needs it).
    pub(crate) uid: Option<u32>,
    /// Its parent's pid, to tell a service's main process from the workers
    /// and sessions it forks.
    pub(crate) ppid: Option<u32>,
    /// When it started (seconds since the epoch), to tell a new process
    /// with a reused pid from the old one.
    pub(crate) start_time: u64,
}

/// What a look must read beyond the command line and `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wants {
    /// The executable link (a service matches by `exe`).
    pub(crate) exe: bool,
    /// The real uid (a service has `user`).
    pub(crate) uid: bool,
    /// Only the pinned pids: every service is named by a pidfile or a unit
    /// and none counts its processes, so the rest of the table is not
    /// needed.
    pub(crate) pinned_only: bool,
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

/// When the host booted (unix seconds), for `after_boot`. `TEND_BOOTED`
/// overrides it; like `TEND_NOW` it exists for tests.
pub(crate) fn booted() -> Option<i64> {
    if let Some(t) = std::env::var("TEND_BOOTED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Some(t);
    }
    boot_and_ticks().ok().map(|(boot, _)| boot as i64)
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

/// One look at the process table, streamed: each process's command line
/// (and executable link, when wanted) is read and shown to `wanted`; only
/// the processes it keeps, and those of `pinned` (pids that pidfiles and
/// units name), are read further (`stat`, and `status` for the owner) and
/// held. With `wants.pinned_only`, only the pinned pids are read at all. So a look
/// costs one open and read per process and holds only the matches. Besides
/// tend's own descendants, the processes under `commands` (restart commands
/// a killed pass left running, whose command lines name the daemon they
/// start) are never a service.
pub(crate) fn scan(
    commands: &[u32],
    wants: Wants,
    pinned: &[u32],
    mut wanted: impl FnMut(&Process) -> bool,
) -> Result<Vec<Process>> {
    let (boot, ticks) = boot_and_ticks()?;
    let mut pinned = pinned.to_vec();
    pinned.sort_unstable();
    let pids: Box<dyn Iterator<Item = u32>> = if wants.pinned_only {
        Box::new(pinned.clone().into_iter())
    } else {
        let entries = std::fs::read_dir("/proc").context("cannot read the process table")?;
        Box::new(
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())),
        )
    };
    let mut kept = Vec::new();
    let mut path = String::new();
    let mut buf = Vec::with_capacity(4096);
    let mut candidate = Process {
        pid: 0,
        cmdline: String::new(),
        exe: None,
        uid: None,
        ppid: None,
        start_time: 0,
    };
    for pid in pids {
        proc_path(&mut path, pid, "cmdline");
        if !read_into(&path, &mut buf) {
            continue; // gone meanwhile
        }
        candidate.pid = pid;
        cmdline_into(&buf, &mut candidate.cmdline);
        if wants.exe {
            proc_path(&mut path, pid, "exe");
            candidate.exe = std::fs::read_link(&path).ok().map(|l| running_exe(&l));
        }
        if !wanted(&candidate) && pinned.binary_search(&pid).is_err() {
            continue;
        }
        let Some(stat) = read_stat(&mut path, &mut buf, pid) else {
            continue;
        };
        if matches!(stat.state, b'Z' | b'X' | b'x') || stat.flags & KERNEL_THREAD != 0 {
            continue;
        }
        let uid = wants.uid.then(|| {
            proc_path(&mut path, pid, "status");
            read_into(&path, &mut buf).then(|| real_uid(&buf)).flatten()
        });
        kept.push(Process {
            pid,
            cmdline: candidate.cmdline.clone(),
            exe: candidate.exe.take(),
            uid: uid.flatten(),
            ppid: Some(stat.ppid).filter(|&p| p > 0),
            start_time: boot + stat.start / ticks,
        });
    }
    kept.sort_unstable_by_key(|p| p.pid);
    let mut parents: HashMap<u32, Option<u32>> = HashMap::new();
    drop_ours(&mut kept, commands, |pid| {
        *parents.entry(pid).or_insert_with(|| {
            read_stat(&mut path, &mut buf, pid)
                .map(|s| s.ppid)
                .filter(|&p| p > 0)
        })
    });
    Ok(kept)
}

/// Sets `path` to `/proc/PID/NAME`.
fn proc_path(path: &mut String, pid: u32, name: &str) {
    use std::fmt::Write;
    path.clear();
    let _ = write!(path, "/proc/{pid}/{name}");
}

/// A process's `stat`, when it is still there.
fn read_stat(path: &mut String, buf: &mut Vec<u8>, pid: u32) -> Option<Stat> {
    proc_path(path, pid, "stat");
    if !read_into(path, buf) {
        return None;
    }
    parse_stat(buf)
}

/// The arguments of a `cmdline` file joined by spaces (its NULs, and the
/// trailing one, dropped), into `text`.
fn cmdline_into(raw: &[u8], text: &mut String) {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    text.clear();
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            text.push(if c == '\0' { ' ' } else { c });
        }
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Removes the processes that are tend or below it (the restart commands
/// still running: `setsid -f` between its fork and exec says the daemon's
/// path, but is not the daemon yet), or below the left-behind `commands`.
/// Walks up from each kept process; `parent_of` reads the parent of one
/// that was not kept (only ancestors of matches are read, and each once).
fn drop_ours(
    processes: &mut Vec<Process>,
    commands: &[u32],
    mut parent_of: impl FnMut(u32) -> Option<u32>,
) {
    let mut ours: HashMap<u32, bool> = commands.iter().map(|&c| (c, true)).collect();
    ours.insert(std::process::id(), true);
    let known: HashMap<u32, Option<u32>> = processes.iter().map(|p| (p.pid, p.ppid)).collect();
    let mut mine = Vec::with_capacity(processes.len());
    for p in processes.iter() {
        let mut chain = Vec::new();
        let mut at = Some(p.pid);
        let verdict = loop {
            let Some(pid) = at.filter(|&pid| pid > 1) else {
                break false;
            };
            if let Some(&is) = ours.get(&pid) {
                break is;
            }
            // A table read while it changes could show a loop, and no real
            // process tree is this deep.
            if chain.len() > 256 || chain.contains(&pid) {
                break false;
            }
            chain.push(pid);
            at = match known.get(&pid) {
                Some(&ppid) => ppid,
                None => parent_of(pid),
            };
        };
        for pid in chain {
            ours.insert(pid, verdict);
        }
        mine.push(verdict);
    }
    let mut verdicts = mine.into_iter();
    processes.retain(|_| !verdicts.next().unwrap_or(false));
}

/// The path a process's executable link names, as `exe` compares it: a
/// binary an upgrade renamed over or deleted reads `PATH (deleted)`, and
/// is still that service's program (an old copy of it), so the suffix is
/// dropped.
fn running_exe(link: &std::path::Path) -> String {
    let text = link.to_string_lossy();
    text.strip_suffix(" (deleted)").unwrap_or(&text).to_string()
}

/// The path of the binary a process runs, when that binary was deleted or
/// replaced on disk after the process started (an upgrade it has not
/// loaded): `/proc/PID/exe` ends in ` (deleted)` (the file was unlinked or
/// renamed over, as dpkg and rpm do), or the file at its absolute argv[0]
/// is not the inode that runs (the old one was moved aside and a new one
/// put in its place), as seen from the process's own root, so a daemon in a
/// chroot or a container is compared with its own files. None when it is
/// current or cannot be read.
pub(crate) fn replaced(pid: u32) -> Option<String> {
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
    ((running.dev(), running.ino()) != (on_disk.dev(), on_disk.ino()) && moved_aside(argv0, &link))
        .then(|| argv0.to_string_lossy().into_owned())
}

/// Whether the file a process runs (`link`) is the one at `argv0` moved
/// aside by an upgrade (`apache2` to `apache2.old`, `apache2.dpkg-old`,
/// `apache2~`): the same directory, and its name is argv[0]'s with a
/// suffix. A process started under another program's name (`exec -a
/// /usr/sbin/apache2 other`) runs a file of another name, and is no
/// replaced binary.
fn moved_aside(argv0: &std::path::Path, link: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Some(name), Some(ran)) = (argv0.file_name(), link.file_name()) else {
        return false;
    };
    argv0.parent() == link.parent()
        && ran
            .as_bytes()
            .strip_prefix(name.as_bytes())
            .is_some_and(|rest| matches!(rest.first(), Some(b'.' | b'~' | b'-' | b'_')))
}

/// When a process started, in clock ticks since boot (`/proc/PID/stat`'s
/// 22nd field): with its pid, what tells it from a later process that got
/// the same pid.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    leader(pid).map(|(start, _)| start)
}

/// A process's start time (clock ticks since boot) and its process group,
/// from `/proc/PID/stat`; None when it is gone or a zombie.
pub(crate) fn leader(pid: u32) -> Option<(u64, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z" | &"X")) {
        return None;
    }
    Some((fields.get(19)?.parse().ok()?, fields.get(2)?.parse().ok()?))
}

/// The kernel's id of this boot (a new one at every boot).
pub(crate) fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// Resident memory (bytes) and CPU time used so far (milliseconds) of some
/// processes: one more read of the process table restricted to them, so it
/// costs as many services as need it, not the whole table.
pub(crate) fn usage(pids: &[u32]) -> std::collections::HashMap<u32, (u64, u64)> {
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
    fn replaced_binary_names() {
        use std::path::Path;
        for (link, want) in [
            ("/usr/sbin/apache2 (deleted)", "/usr/sbin/apache2"),
            ("/usr/sbin/apache2", "/usr/sbin/apache2"),
            ("/opt/my (deleted) app", "/opt/my (deleted) app"),
        ] {
            assert_eq!(running_exe(Path::new(link)), want, "{link}");
        }
        for (argv0, link, want) in [
            ("/usr/sbin/apache2", "/usr/sbin/apache2.old", true),
            ("/usr/sbin/apache2", "/usr/sbin/apache2.dpkg-old", true),
            ("/usr/sbin/apache2", "/usr/sbin/apache2~", true),
            ("/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8.2.rpmsave", true),
            // exec -a: another program under the daemon's name.
            ("/usr/sbin/apache2", "/usr/bin/sleep", false),
            ("/usr/sbin/apache2", "/usr/sbin/apache2ctl", false),
            ("/usr/sbin/apache2", "/opt/apache2.old", false),
            ("/usr/sbin/apache2", "/usr/sbin/apache", false),
        ] {
            assert_eq!(
                moved_aside(Path::new(argv0), Path::new(link)),
                want,
                "{argv0} {link}"
            );
        }
    }

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
            let mut text = String::from("left over");
            cmdline_into(raw, &mut text);
            assert_eq!(text, want, "{raw:?}");
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
        drop_ours(&mut all, &[500], |_| None);
        let left: Vec<u32> = all.iter().map(|p| p.pid).collect();
        assert_eq!(left, vec![1, 600]);
        // Only matches are kept: their ancestors are read, each once.
        let mut read = Vec::new();
        let mut kept = vec![p(700, 701), p(710, 702), p(720, 703), p(730, 704)];
        let tree = [
            (701, me),
            (702, 705),
            (705, 500),
            (703, 706),
            (706, 1),
            (704, 704),
        ];
        drop_ours(&mut kept, &[500], |pid| {
            read.push(pid);
            tree.iter().find(|t| t.0 == pid).map(|t| t.1)
        });
        let left: Vec<u32> = kept.iter().map(|p| p.pid).collect();
        // 700 is under tend, 710 under a left-behind command, 720 under init,
        // 730 under one that is its own parent (a table read as it changed).
        assert_eq!(left, vec![720, 730]);
        assert_eq!(read, vec![701, 702, 705, 703, 706, 704]);
    }

    #[test]
    fn this_process_table_is_read() {
        let wants = Wants {
            exe: true,
            uid: true,
            pinned_only: false,
        };
        let parent = nix::unistd::getppid().as_raw() as u32;
        let all = scan(&[], wants, &[1], |p| p.pid == parent).unwrap();
        // pid 1 is there with a command line or an owner; tend itself is not.
        assert!(all.iter().any(|p| p.pid == 1 && p.uid == Some(0)));
        assert!(all.iter().all(|p| p.pid != std::process::id()));
        // Only what was asked for is held.
        assert_eq!(all.len(), 2, "{all:?}");
        let cargo = all
            .iter()
            .find(|p| p.pid == parent)
            .expect("the parent runs");
        assert!(cargo.exe.is_some() && cargo.start_time > 1_600_000_000);
        // Pinned only: the pinned pids are read, nothing else, whatever
        // `wanted` says; one that is gone is not there.
        let pinned = Wants {
            pinned_only: true,
            ..wants
        };
        let gone = u32::MAX - 1;
        let some = scan(&[], pinned, &[1, parent, gone], |_| true).unwrap();
        let pids: Vec<u32> = some.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, parent]);
    }
}
