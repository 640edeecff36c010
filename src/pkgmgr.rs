//! Whether a package manager is at work on this host right now.
//!
//! During an upgrade the package manager stops a daemon, replaces its files
//! and starts it again; a monitor that restarts the daemon in the middle
//! fights it (the story in seeds/004). So before any restart tend looks for
//! the locks and pid files of dpkg/apt, rpm, dnf, yum, zypper and pacman, and
//! while one is held restarts wait. Probing only: these files are opened
//! read-only, never created, truncated, locked or removed.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

/// How a package manager shows that it is at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    /// An fcntl (POSIX) write lock is held on the file.
    WriteLock,
    /// The file holds the pid of a live process that is the package
    /// manager (a pid reused after a reboot is someone else).
    PidFile,
    /// The file exists while the package manager runs (it holds no pid).
    Exists,
}

/// Command names (`/proc/PID/comm`, 15 characters at most) of the programs
/// that hold each manager's pid file or lock: the manager, its front ends
/// and daemons, and the interpreters its scripts run in.
fn is_manager(manager: &str, comm: &str) -> bool {
    let names: &[&str] = match manager {
        "dnf" => &[
            "dnf",
            "dnf-3",
            "dnf5",
            "dnf-automatic",
            "microdnf",
            "packagekitd",
        ],
        "yum" => &["yum", "yum-cron", "packagekitd"],
        "zypper" => &[
            "zypper",
            "zypp-refresh",
            "packagekitd",
            "y2base",
            "YaST2",
            "yast2",
        ],
        "pacman" => &["pacman", "pamac-daemon", "pamac", "packagekitd"],
        _ => &[],
    };
    // dnf and yum are Python programs, YaST a Ruby one: run as
    // `python3 /usr/bin/dnf`, they have the interpreter's name. Not pacman
    // (C): any Python running must not make a crash's db.lck look held.
    let interpreted = matches!(manager, "dnf" | "yum" | "zypper")
        && (comm.starts_with("python") || comm.starts_with("ruby"));
    names.contains(&comm) || interpreted
}

/// What is probed, in this order, relative to the root (`/` unless
/// `--pkg-root` says otherwise).
const PROBES: &[(&str, &str, Sign)] = &[
    ("apt", "var/lib/dpkg/lock-frontend", Sign::WriteLock),
    ("dpkg", "var/lib/dpkg/lock", Sign::WriteLock),
    ("rpm", "var/lib/rpm/.rpm.lock", Sign::WriteLock),
    ("rpm", "usr/lib/sysimage/rpm/.rpm.lock", Sign::WriteLock),
    ("dnf", "run/dnf/rpmtransaction.lock", Sign::WriteLock),
    ("dnf", "var/lib/dnf/rpmdb_lock.pid", Sign::PidFile),
    ("yum", "var/run/yum.pid", Sign::PidFile),
    ("zypper", "run/zypp.pid", Sign::PidFile),
    ("pacman", "var/lib/pacman/db.lck", Sign::Exists),
];

/// A package manager at work: who, and the file that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Busy {
    /// The holder's command name when it can be read, else the manager.
    pub(crate) who: String,
    pub(crate) pid: Option<i32>,
    pub(crate) path: PathBuf,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "{} (pid {pid}) holds {}", self.who, self.path.display()),
            None => write!(f, "{} holds {}", self.who, self.path.display()),
        }
    }
}

/// The first package manager found at work under `root`, if any.
pub(crate) fn busy(root: &Path) -> Option<Busy> {
    PROBES.iter().find_map(|&(manager, rel, sign)| {
        let path = root.join(rel);
        let pid = match sign {
            Sign::WriteLock => write_lock_holder(&path)?,
            Sign::PidFile => Some(live_pid(&path).filter(|&p| is_manager_pid(manager, p))?),
            Sign::Exists => {
                path.symlink_metadata().ok()?;
                Some(running(manager)?)
            }
        };
        let who = pid
            .and_then(command_name)
            .unwrap_or_else(|| manager.to_string());
        Some(Busy { who, pid, path })
    })
}

/// Whether a write lock is held on `path` by another process: Some(holder
/// pid, when the kernel tells it), None when the file is missing or free.
/// Asks F_GETLK whether a read lock could be taken, which only a write lock
/// prevents (rpm queries take read locks and are no upgrade).
fn write_lock_holder(path: &Path) -> Option<Option<i32>> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    // SAFETY: flock is a plain C struct; all-zero is a valid value.
    let mut probe: libc::flock = unsafe { std::mem::zeroed() };
    probe.l_type = libc::F_RDLCK as libc::c_short;
    probe.l_whence = libc::SEEK_SET as libc::c_short;
    fcntl(&file, FcntlArg::F_GETLK(&mut probe)).ok()?;
    if probe.l_type == libc::F_UNLCK as libc::c_short {
        return None;
    }
    // Open file description locks report no pid (-1).
    Some((probe.l_pid > 0).then_some(probe.l_pid))
}

/// Whether a live pid is the package manager, by its command name.
fn is_manager_pid(manager: &str, pid: i32) -> bool {
    command_name(pid).is_some_and(|c| is_manager(manager, &c))
}

/// A running process of `manager`, if any (a walk of /proc, done only when
/// its marker exists).
fn running(manager: &str) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| is_manager_pid(manager, pid) && alive(pid))
}

/// Markers a package manager left behind that tend does not wait for,
/// each as a line for `status` and dry runs: a pid file naming a live
/// process that is not the manager (its pid reused, after a reboot), and
/// pacman's lock with no pacman running (pacman itself refuses to run until
/// it is removed).
pub(crate) fn stale(root: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    for &(manager, rel, sign) in PROBES {
        let path = root.join(rel);
        match sign {
            Sign::PidFile => {
                if let Some(pid) = live_pid(&path).filter(|&p| !is_manager_pid(manager, p)) {
                    let comm = command_name(pid).unwrap_or_else(|| "?".into());
                    notes.push(format!(
                        "{} names pid {pid} ({}), which is not {manager}: left behind (a pid reused after a reboot?); not waiting for it",
                        path.display(),
                        crate::file::quote(&comm, 20)
                    ));
                }
            }
            Sign::Exists if path.symlink_metadata().is_ok() && running(manager).is_none() => {
                notes.push(format!(
                    "{} is left behind: no {manager} is running; not waiting for it ({manager} itself refuses to run until it is removed)",
                    path.display()
                ));
            }
            _ => {}
        }
    }
    notes
}

/// The pid in a pid file, when that process is alive (not a zombie).
fn live_pid(path: &Path) -> Option<i32> {
    let bytes =
        crate::file::read(path, crate::file::PIDFILE_MAX, crate::file::Links::Refuse).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let pid: i32 = text.trim().parse().ok().filter(|&p| p > 0)?;
    alive(pid).then_some(pid)
}

/// A process exists and has not exited (a zombie has).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and
        // may itself contain them.
        Ok(stat) => stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X" | "x")),
        Err(_) => match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) => true,
            Err(e) => e == nix::errno::Errno::EPERM,
        },
    }
}

fn command_name(pid: i32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim().to_string()).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_under_an_empty_root() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(busy(root.path()), None);
    }

    /// (file, content) -> busy? A pid file naming a live process that is no
    /// package manager (this test, pid 1) does not count, nor do dead,
    /// garbage and empty ones; an unlocked lock file does not; pacman's lock
    /// with no pacman running does not. (Live managers: the integration
    /// tests start processes named yum, zypper and pacman.)
    #[test]
    fn pid_files_and_markers_table() {
        let me = std::process::id().to_string();
        let rows: &[(&str, &str, bool)] = &[
            ("var/run/yum.pid", &me, false),
            ("var/run/yum.pid", "1", false),
            ("var/run/yum.pid", "999999999", false),
            ("var/run/yum.pid", "garbage", false),
            ("var/run/yum.pid", "", false),
            ("var/run/yum.pid", "-1", false),
            ("run/zypp.pid", &me, false),
            ("var/lib/dnf/rpmdb_lock.pid", &format!("{me}\n"), false),
            ("var/lib/pacman/db.lck", "", false),
            ("var/lib/dpkg/lock-frontend", "", false),
            ("var/lib/rpm/.rpm.lock", "", false),
        ];
        for (i, (rel, content, want)) in rows.iter().enumerate() {
            let root = tempfile::tempdir().unwrap();
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            let found = busy(root.path());
            assert_eq!(found.is_some(), *want, "row {i}: {rel} {content:?}");
            if let Some(b) = found {
                assert_eq!(b.path, path);
            }
        }
    }

    #[test]
    fn managers_by_command_name_table() {
        for (manager, comm, want) in [
            ("yum", "yum", true),
            ("dnf", "dnf", true),
            ("dnf", "python3", true),
            ("zypper", "zypper", true),
            ("zypper", "packagekitd", true),
            ("pacman", "pacman", true),
            ("zypper", "systemd", false),
            ("yum", "sshd", false),
            ("pacman", "bash", false),
            ("pacman", "python3", false),
        ] {
            assert_eq!(is_manager(manager, comm), want, "{manager} {comm}");
        }
    }

    #[test]
    fn busy_names_holder_pid_and_file() {
        let b = Busy {
            who: "dpkg".into(),
            pid: Some(812),
            path: "/var/lib/dpkg/lock-frontend".into(),
        };
        assert_eq!(
            b.to_string(),
            "dpkg (pid 812) holds /var/lib/dpkg/lock-frontend"
        );
        let b = Busy {
            pid: None,
            who: "pacman".into(),
            path: "/var/lib/pacman/db.lck".into(),
        };
        assert_eq!(b.to_string(), "pacman holds /var/lib/pacman/db.lck");
    }
}
