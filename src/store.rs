//! The state directory: the state file (JSON, written atomically: temporary
//! file, fsync, rename; a damaged one moved aside and reported, never a
//! crash), the pause files, and the lock. An exclusive flock held for the
//! whole pass keeps overlapping cron runs from both acting. The directory
//! is checked like sshd's StrictModes before anything in it is believed.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;

use crate::clock;
use crate::file;
use crate::pause::Holds;
use crate::pause::{is_pause_file, pause_file, Pause};
use crate::state::State;

pub(crate) const STATE_FILE: &str = "state.json";

/// The state file's format: its own type, versioned. 2 added `version`
/// (and a command's `boot`); a file without one is version 1 and reads
/// the same. 3 gives each status its own fields (a held service's `waits`
/// was its `failure`, read as such). 4 adds the status `backing_off` and a
/// run of trouble (`episode`: flapping, crash-looping and its next try).
/// Fields a version does not know are
/// ignored, and a service whose record cannot be read (a status of a newer
/// tend) starts afresh alone, so a file of a newer tend still loads after
/// a downgrade.
const FORMAT: u32 = 4;

#[derive(Serialize)]
struct Written<'a> {
    version: u32,
    #[serde(flatten)]
    state: &'a State,
}

#[derive(serde::Deserialize)]
struct Stored {
    #[serde(default)]
    version: u32,
    /// Each record on its own, so one that cannot be read loses only itself.
    #[serde(default)]
    services: BTreeMap<String, serde_json::Value>,
    #[serde(flatten)]
    state: State,
}

/// What a state file's text holds: the state, its format (1 for a file
/// from before formats were numbered), and the services whose records
/// could not be read, with why.
struct Decoded {
    state: State,
    version: u32,
    unread: Vec<(String, String)>,
}

fn decode(text: &str) -> serde_json::Result<Decoded> {
    let stored = serde_json::from_str::<Stored>(text)?;
    let mut state = stored.state;
    let mut unread = Vec::new();
    for (id, record) in stored.services {
        match serde_json::from_value(record) {
            Ok(record) => {
                state.services.insert(id, record);
            }
            Err(e) => unread.push((id, e.to_string())),
        }
    }
    Ok(Decoded {
        state,
        version: stored.version.max(1),
        unread,
    })
}

pub(crate) const LOCK_FILE: &str = "lock";

/// Where state and lock live.
pub(crate) fn default_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/tend");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("tend")
}

/// The state directory of one run, and why it is refused, if it is.
pub(crate) struct Store {
    dir: PathBuf,
    refused: Option<String>,
}

/// Whether a directory can hold tend's state, as sshd's StrictModes judges a
/// home: it, and every directory above it, belongs to root or to the user
/// running tend, and no one else can write to it (a sticky directory such
/// as /tmp is fine above it: others cannot rename what is ours there). A
/// symlink on the way must be root's or ours too. A directory that does not
/// exist yet is judged by the ones above it.
pub(crate) fn check_dir(dir: &Path) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    let absolute = match dir.is_absolute() {
        true => dir.to_path_buf(),
        false => std::env::current_dir().unwrap_or_default().join(dir),
    };
    let whose = |uid: u32| {
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |u| u.name)
    };
    for at in absolute.ancestors() {
        let Ok(link) = std::fs::symlink_metadata(at) else {
            continue; // not made yet
        };
        let first = at == absolute;
        // `is owned by alice`, of the directory or of one above it.
        let refuse = |what: String| {
            let whom = match first {
                true => String::new(),
                false => format!(": {} above it", at.display()),
            };
            anyhow::anyhow!(
                "state directory {}{whom} {what}; refusing it (only root or the user running tend may control where tend keeps its state, lock and last good policy)",
                dir.display()
            )
        };
        if link.file_type().is_symlink() && link.uid() != 0 && link.uid() != me {
            return Err(refuse(format!(
                "is a symbolic link of {}",
                whose(link.uid())
            )));
        }
        let Ok(meta) = std::fs::metadata(at) else {
            return Err(refuse("leads nowhere".to_string()));
        };
        if !meta.is_dir() {
            return Err(refuse("is not a directory".to_string()));
        }
        if meta.uid() != 0 && meta.uid() != me {
            return Err(refuse(format!("is owned by {}", whose(meta.uid()))));
        }
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0 && !first;
        if mode & 0o022 != 0 && !sticky {
            return Err(refuse(format!("is writable by others (mode {mode:04o})")));
        }
    }
    Ok(())
}

/// What loading found.
pub(crate) struct Loaded {
    pub(crate) state: State,
    /// A line for the admin when the file was damaged and set aside.
    pub(crate) notice: Option<String>,
}

impl Store {
    pub(crate) fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
            refused: check_dir(dir).err().map(|e| format!("{e:#}")),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why the directory is not used, if it is not: nothing is read from it
    /// or written to it then (a pass still checks and restarts).
    pub(crate) fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// The directory, when it may be used.
    pub(crate) fn usable(&self) -> Option<&Path> {
        self.refused.is_none().then_some(self.dir.as_path())
    }

    fn usable_or_fail(&self) -> Result<()> {
        match &self.refused {
            Some(why) => bail!("{why}"),
            None => Ok(()),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Creates the directory (0700) if needed.
    pub(crate) fn ensure_dir(&self) -> Result<()> {
        self.usable_or_fail()?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create state directory {}", self.dir.display()))?;
        check_dir(&self.dir)
    }

    /// Takes the pass lock in the state directory (made if need be), the
    /// one way every command that changes the state takes it.
    pub(crate) fn lock(&self, now: i64) -> Result<Locking> {
        self.ensure_dir()?;
        lock(&self.dir, now)
    }

    /// Reads the state without changing anything (for `status` and dry
    /// runs): a missing or damaged file reads as empty.
    pub(crate) fn peek(&self) -> State {
        if self.refused.is_some() {
            return State::default();
        }
        read(&self.file())
            .ok()
            .flatten()
            .and_then(|text| decode(&text).ok())
            .map(|decoded| decoded.state)
            .unwrap_or_default()
    }

    /// Reads the state. A missing file is a first run. A damaged one (not
    /// JSON, truncated, empty, a directory) is renamed to
    /// `state.json.bad-TIMESTAMP` and the pass starts from a fresh state.
    pub(crate) fn load(&self, now: i64) -> Loaded {
        if self.refused.is_some() {
            return Loaded {
                state: State::default(),
                notice: None,
            };
        }
        let path = self.file();
        let damage = match read(&path) {
            Ok(None) => {
                return Loaded {
                    state: State::default(),
                    notice: None,
                }
            }
            Ok(Some(text)) => match decode(&text) {
                Ok(Decoded {
                    mut state,
                    version,
                    unread,
                }) => {
                    let ahead = state.clamp(now);
                    let newer = (version > FORMAT).then(|| {
                        format!(
                            "tend: state file {} is of a newer tend (format {version}, this one knows {FORMAT}); reading what it knows",
                            path.display()
                        )
                    });
                    let future = (ahead > 0).then(|| {
                        format!(
                            "tend: state file {} has times up to {} ahead of the clock (the clock was ahead, or set back); taken as now",
                            path.display(),
                            clock::span(ahead)
                        )
                    });
                    let lost = unread.first().map(|(id, why)| {
                        format!(
                            "tend: state file {}: what was remembered of {} could not be read ({why}); {} afresh",
                            path.display(),
                            unread.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", "),
                            if unread.len() == 1 { format!("{id} starts") } else { "they start".to_string() }
                        )
                    });
                    return Loaded {
                        state,
                        notice: lost.or(newer).or(future),
                    };
                }
                Err(e) if text.trim().is_empty() => format!("empty ({e})"),
                Err(e) => e.to_string(),
            },
            Err(e) => format!("{e:#}"),
        };
        let aside = self.dir.join(format!("{STATE_FILE}.bad-{now}"));
        let notice = match std::fs::rename(&path, &aside) {
            Ok(()) => format!(
                "tend: state file {} was damaged ({damage}); moved it to {} and started afresh",
                path.display(),
                aside.display()
            ),
            Err(e) => format!(
                "tend: state file {} was damaged ({damage}) and could not be moved aside ({e}); started afresh",
                path.display()
            ),
        };
        Loaded {
            state: State::default(),
            notice: Some(notice),
        }
    }

    /// Writes the state atomically.
    pub(crate) fn save(&self, state: &State) -> Result<()> {
        self.write_json(
            STATE_FILE,
            &Written {
                version: FORMAT,
                state,
            },
        )
    }

    /// Every pause file (an admin's and each hook's), each read (or why it
    /// cannot be), for a pass to honour, bound and set aside.
    pub(crate) fn pauses(&self) -> Vec<(String, Result<Pause>)> {
        let Some(dir) = self.usable() else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_pause_file(n))
            .collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let path = dir.join(&name);
                let pause = match read(&path) {
                    Ok(None) => return None, // gone meanwhile
                    Ok(Some(text)) => serde_json::from_str(&text).with_context(|| {
                        format!("pause file {} is damaged; ignoring it", path.display())
                    }),
                    Err(e) => Err(e.context(format!("pause file {}", path.display()))),
                };
                Some((name, pause))
            })
            .collect()
    }

    /// Every readable pause as it is honoured at `now` (bounded), for
    /// commands that change nothing of them.
    pub(crate) fn bounded_pauses(&self, now: i64) -> Vec<Pause> {
        self.pauses()
            .into_iter()
            .filter_map(|(_, p)| p.ok())
            .map(|p| p.bounded(now).0)
            .collect()
    }

    /// The pause of every service in force (or the last to end), for
    /// `status` and dry runs.
    pub(crate) fn pause(&self, now: i64) -> Option<Pause> {
        let pauses = self.bounded_pauses(now);
        Pause::current(pauses.into_iter().filter(|p| p.service.is_none()), now)
    }

    /// Each service's own pause, for `status` and dry runs.
    pub(crate) fn holds(&self, now: i64) -> Holds {
        Pause::holds(self.bounded_pauses(now))
    }

    /// Writes a pause (its owner's file, or its service's).
    pub(crate) fn set_pause(&self, pause: &Pause) -> Result<()> {
        self.ensure_dir()?;
        let name = pause_file(pause.by.as_deref(), pause.service.as_deref());
        self.write_json(&name, pause)
    }

    /// Moves a damaged pause file aside; says where.
    pub(crate) fn set_pause_aside(&self, name: &str, now: i64) -> String {
        let aside = self.dir.join(format!("{name}.bad-{now}"));
        match std::fs::rename(self.dir.join(name), &aside) {
            Ok(()) => format!("moved it to {}", aside.display()),
            Err(e) => format!("could not move it aside: {e}"),
        }
    }

    /// Removes the pause of `by` (an admin's: None), or of one service;
    /// false when there was none.
    pub(crate) fn clear_pause(&self, by: Option<&str>, service: Option<&str>) -> Result<bool> {
        self.usable_or_fail()?;
        let path = self.dir.join(pause_file(by, service));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// Rewrites a pause file with the pause as bounded.
    pub(crate) fn rewrite_pause(&self, name: &str, pause: &Pause) -> Result<()> {
        self.write_json(name, pause)
    }

    /// Writes a file of the state dir atomically: a temporary file in the
    /// same directory, fsync, rename over the old one, fsync the directory.
    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.usable_or_fail()?;
        let path = self.dir.join(name);
        let text = serde_json::to_string_pretty(value).context("encoding state")?;
        // The same words for the same cause at every pass: the file to be
        // saved and why, never the random name of a temporary file.
        let failed = |e: std::io::Error| {
            anyhow::anyhow!("cannot save state to {}: {}", path.display(), e.kind())
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempfile_in(&self.dir)
            .map_err(failed)?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.write_all(b"\n"))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(failed)?;
        tmp.persist(&path).map_err(|e| failed(e.error))?;
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Reads a file of the state dir that may be missing; a symlink, a FIFO, a
/// directory, a file too big or unreadable is an error.
fn read(path: &Path) -> Result<Option<String>> {
    match file::read(path, file::STATE_MAX, file::Links::Refuse) {
        Ok(bytes) => Ok(Some(String::from_utf8(bytes).context("not UTF-8")?)),
        Err(file::Refused::Missing) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The pass lock, held until dropped.
pub(crate) struct Lock {
    _file: Flock<File>,
}

/// Who holds the lock, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) since: i64,
}

pub(crate) enum Locking {
    Acquired(Lock),
    /// Another pass holds it.
    Held(Option<Holder>),
}

/// Takes the pass lock without waiting. The holder writes its pid and start
/// time into the lock file so a second run can say how long it has held it.
fn lock(dir: &Path, now: i64) -> Result<Locking> {
    let path = dir.join(LOCK_FILE);
    // Never through a symlink, never a FIFO or device.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        bail!("lock file {} is not a regular file", path.display());
    }
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            let _ = locked.set_len(0);
            let _ = writeln!(&mut *locked, "{} {now}", std::process::id());
            let _ = locked.sync_all();
            Ok(Locking::Acquired(Lock { _file: locked }))
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let mut words = text.split_whitespace().map(str::parse::<i64>);
            let holder = match (words.next(), words.next()) {
                (Some(Ok(pid)), Some(Ok(since))) => Some(Holder {
                    pid: pid as u32,
                    since,
                }),
                _ => None,
            };
            Ok(Locking::Held(holder))
        }
        Err((_, errno)) => Err(anyhow::anyhow!("cannot lock {}: {errno}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::ProcessId;
    use crate::state::{Kind, ServiceState, Status, Why};

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut state = State {
            last_run: Some(5),
            ..State::default()
        };
        let carried = crate::state::Carried {
            restarts_total: 7,
            failed_passes: 2,
            episode: Some(crate::state::Episode {
                since: 1,
                kind: crate::state::Trouble::CrashLooping,
                tries: 3,
                next: 900,
            }),
            ..Default::default()
        };
        let why = |reason: &str, failure: &str| Why {
            reason: Some(reason.into()),
            failure: Some(failure.into()),
        };
        let statuses = [
            Status::Running {
                process: Some(ProcessId {
                    pid: 9,
                    started: 100,
                }),
                replaced: Some(9),
                note: Some("3 processes run, more than 2".into()),
            },
            Status::Running {
                process: None,
                replaced: None,
                note: None,
            },
            Status::Down {
                waits: "restart deferred: dpkg holds the lock".into(),
                reason: Some("pidfile stale".into()),
                by: None,
            },
            Status::Down {
                waits: "restart held until 2026-12-06 14:30 (deploy)".into(),
                reason: None,
                by: Some(crate::state::Wait::Hold),
            },
            Status::BackingOff {
                why: why("fails a check", "true exited 1"),
            },
            Status::Restarting {
                why: Why::default(),
            },
            Status::Failing {
                why: why("fails a check", "true exited 1"),
            },
            Status::GivenUp {
                why: why("not in the process table", "exited 1"),
            },
        ];
        for (i, status) in statuses.into_iter().enumerate() {
            let record = ServiceState {
                restarts: vec![1, 2],
                reported: Some(3),
                carried: carried.clone(),
                ..ServiceState::new(status, 3)
            };
            state.services.insert(format!("s{i}"), record);
        }
        store.save(&state).unwrap();
        let loaded = store.load(10);
        assert_eq!(loaded.state, state);
        assert!(loaded.notice.is_none());
    }

    /// State files of earlier formats (1: before formats were numbered,
    /// saved from a real pass with a CPU sample, a command, checks, a
    /// pause's end and the policy's and metrics' errors added; 2: the same
    /// with a command's boot and a held service; 3: format 2 as the
    /// previous tend wrote it, with a check's count of failed passes) load
    /// unchanged, and are
    /// written back as the current format.
    #[test]
    fn state_files_of_earlier_formats_load() {
        for (format, text) in [
            (1, include_str!("../tests/state/v1.json")),
            (2, include_str!("../tests/state/v2.json")),
            (3, include_str!("../tests/state/v3.json")),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(STATE_FILE), text).unwrap();
            let store = Store::new(dir.path());
            let loaded = store.load(1_790_000_900);
            assert!(loaded.notice.is_none(), "{format}: {:?}", loaded.notice);
            let state = loaded.state;
            assert_eq!(state.last_run, Some(1_790_000_600));
            let up = &state.services["up"];
            assert_eq!(up.status.kind(), Kind::Failing);
            assert_eq!(
                up.status.failure().unwrap(),
                "true started, but still fails a check after 10 s: unix /nonexistent.sock: no such file or directory"
            );
            assert_eq!(
                up.status.reason().unwrap(),
                "fails a check (unix /nonexistent.sock: no such file or directory)"
            );
            assert_eq!(up.carried.restarts_total, 3);
            assert_eq!(up.carried.failed_passes, if format == 3 { 2 } else { 0 });
            assert_eq!(up.carried.cpu.unwrap().runs_above, 1);
            assert_eq!(
                up.carried.checks.as_ref().unwrap().each[0].check,
                "unix /nonexistent.sock"
            );
            let failing = &state.services["failing"];
            assert_eq!(failing.status.kind(), Kind::GivenUp);
            assert_eq!(failing.status.failure(), Some("false exited 1"));
            let command = failing.carried.command.as_ref().unwrap();
            let boot = (format > 1).then_some("6f1c0b1e-8d1a-4d43-9f64-1f3b0e5d2a77");
            assert_eq!((command.pgid, command.boot.as_deref()), (4300, boot));
            let web = &state.services["web"].status;
            assert_eq!(web.replaced(), Some(4242));
            assert_eq!(web.note(), Some("3 processes run, more than 2"));
            let process = web.process().unwrap();
            assert_eq!((process.pid, process.started), (4242, 1_789_990_000));
            if format >= 2 {
                let held = &state.services["held"].status;
                assert_eq!(
                    held.failure(),
                    Some("restart deferred: dpkg (pid 812) holds /var/lib/dpkg/lock-frontend")
                );
                assert_eq!(
                    held.reason(),
                    Some("pidfile /run/held.pid: pid 99 is not running")
                );
            }
            assert_eq!(state.policy_error.as_ref().unwrap().said, 1_789_500_000);
            assert!(state.metrics_error.is_some());
            store.save(&state).unwrap();
            let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["version"], FORMAT);
            assert_eq!(store.load(1_790_000_900).state, state);
        }
    }

    /// A record this tend cannot read (a status of a newer one) is
    /// forgotten alone, and said; the others keep their memory.
    #[test]
    fn a_record_that_cannot_be_read_starts_afresh_alone() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"version": 5, "services": {
            "web": {"status": "failing", "since": 5, "failure": "x exited 1"},
            "db": {"status": "hibernating", "since": 5, "wake": 900}
        }}"#;
        std::fs::write(dir.path().join(STATE_FILE), text).unwrap();
        let loaded = Store::new(dir.path()).load(1000);
        let web = &loaded.state.services["web"];
        assert_eq!(web.status.failure(), Some("x exited 1"));
        assert!(!loaded.state.services.contains_key("db"));
        let notice = loaded.notice.unwrap();
        assert!(
            notice.contains(
                "what was remembered of db could not be read (unknown variant `hibernating`"
            ),
            "{notice}"
        );
        assert!(notice.ends_with("db starts afresh"), "{notice}");
    }

    #[test]
    fn damaged_files_are_set_aside_table() {
        for (what, content) in [
            ("garbage", "\u{1}garbage"),
            ("truncated", "{\"services\": {\"a\": {"),
            ("empty", ""),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(STATE_FILE), content).unwrap();
            let loaded = Store::new(dir.path()).load(77);
            assert_eq!(loaded.state, State::default(), "{what}");
            assert!(loaded.notice.unwrap().contains("was damaged"), "{what}");
            assert_eq!(
                std::fs::read_to_string(dir.path().join("state.json.bad-77")).unwrap(),
                content
            );
            assert!(!dir.path().join(STATE_FILE).exists());
        }
    }

    #[test]
    fn second_lock_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), 1234).unwrap();
        assert!(matches!(first, Locking::Acquired(_)));
        match lock(dir.path(), 1300).unwrap() {
            Locking::Held(Some(h)) => assert_eq!(
                h,
                Holder {
                    pid: std::process::id(),
                    since: 1234
                }
            ),
            _ => panic!("second lock acquired"),
        }
        drop(first);
        assert!(matches!(
            lock(dir.path(), 1400).unwrap(),
            Locking::Acquired(_)
        ));
    }
}
