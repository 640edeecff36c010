//! What tend remembers between runs, and the lock that keeps runs apart.
//!
//! A one-shot agent forgets everything when it exits; without memory a
//! service that cannot start would be mailed about every five minutes forever
//! and a crash-looping daemon restarted without limit. The state file is
//! JSON, written atomically (temporary file, fsync, rename). A damaged one is
//! moved aside and reported, never a crash. An exclusive flock held for the
//! whole pass keeps overlapping cron runs from both acting.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::check::CpuSample;
use crate::clock;
use crate::file;
use crate::probe::Checked;

pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "lock";
pub const PAUSE_FILE: &str = "pause.json";

/// The status of a service as the last pass left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Seen running.
    Running,
    /// Seen down; the restart waits (a package manager at work, or a pause).
    Down,
    /// A restart was started and the pass did not finish (written before
    /// acting, so a pass killed mid-way is known to the next one).
    Restarting,
    /// The last restart failed.
    Failing,
    /// The restart budget is spent; no more restarts until it re-arms.
    GivenUp,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Down => "down",
            Status::Restarting => "restarting",
            Status::Failing => "failing",
            Status::GivenUp => "given up",
        }
    }
}

/// What is remembered of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub status: Status,
    /// When the service entered this status (unix seconds).
    pub since: i64,
    /// The pid last seen running, and its start time (seconds since boot
    /// epoch as sysinfo reports it), to tell a new process from the old.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub start_time: Option<u64>,
    /// When restarts were attempted, oldest first; only those inside the
    /// budget's window are kept.
    #[serde(default)]
    pub restarts: Vec<i64>,
    /// When the current problem was last reported (for reminders).
    #[serde(default)]
    pub reported: Option<i64>,
    /// The last failure, as reported (or why a restart is deferred).
    #[serde(default)]
    pub failure: Option<String>,
    /// The pid whose replaced binary was reported (or restarted), so it is
    /// said once per process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<u32>,
    /// What was last said that needs no action (too many processes), so it
    /// is said once while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why the service was judged not up (a stale pidfile, a failed check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The CPU time its process had used at the last pass (for `cpu above`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuSample>,
    /// The restart command running for it, written as soon as it is
    /// started: a pass killed meanwhile leaves it here, and the next pass
    /// waits for it instead of starting a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Spawned>,
    /// What its checks (`port`, `http`, ...) found when they last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
    /// Every restart attempted, kept across passes (unlike `restarts`,
    /// which keeps the budget's window): the metrics' counter.
    #[serde(default)]
    pub restarts_total: u64,
}

impl ServiceState {
    /// A service in `status` since `since`, with nothing else remembered.
    pub fn new(status: Status, since: i64) -> ServiceState {
        ServiceState {
            status,
            since,
            pid: None,
            start_time: None,
            restarts: Vec::new(),
            reported: None,
            failure: None,
            replaced: None,
            note: None,
            reason: None,
            cpu: None,
            command: None,
            checks: None,
            restarts_total: 0,
        }
    }
}

/// The checks of a service as they last ran: when, and what each found
/// (up to the first that failed). Kept while the service is down and its
/// checks cannot run, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    /// Unix seconds.
    pub at: i64,
    pub each: Vec<Checked>,
}

/// A restart command started by a pass: its process group, the leader's
/// start time (to tell a reused pid), when it started, and the boot it
/// started in (the kernel's boot id: after a reboot the same pid and start
/// time can come again). A record with its boot is the pass's own word
/// that this group is its command, whatever the command became (`#!`
/// scripts run as `/bin/sh SCRIPT`); records of older versions have none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spawned {
    pub pgid: u32,
    pub start_time: u64,
    pub since: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// When the last pass finished (unix seconds).
    #[serde(default)]
    pub last_run: Option<i64>,
    /// By service id.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceState>,
    /// The start of the last pause whose end was reported, so it is said
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_ended: Option<i64>,
    /// The digest of the policy the last pass enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The policy error last said, while the policy stays broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_error: Option<PolicyError>,
    /// Why the metrics file could not be written, as last said (said again
    /// only when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
}

impl State {
    /// Times in the future (stamped while the clock was ahead) taken as
    /// now: restarts that would fill the budget for a day, a reminder that
    /// would not come for a month. How far ahead the furthest was.
    pub fn clamp(&mut self, now: i64) -> i64 {
        let mut ahead = 0;
        let fix = |t: &mut i64| {
            if *t > now {
                ahead = ahead.max(*t - now);
                *t = now;
            }
        };
        let mut times: Vec<&mut i64> = Vec::new();
        times.extend(self.last_run.as_mut());
        times.extend(self.pause_ended.as_mut());
        if let Some(p) = self.policy_error.as_mut() {
            times.push(&mut p.since);
            times.push(&mut p.said);
        }
        for s in self.services.values_mut() {
            times.push(&mut s.since);
            times.extend(s.restarts.iter_mut());
            times.extend(s.reported.as_mut());
            times.extend(s.checks.as_mut().map(|c| &mut c.at));
            times.extend(s.command.as_mut().map(|c| &mut c.since));
        }
        times.into_iter().for_each(fix);
        ahead
    }
}

/// A broken policy, remembered so that cron does not mail the same error
/// every five minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyError {
    /// The error as said.
    pub error: String,
    /// Since when the policy has been broken, and when this error was last
    /// said.
    pub since: i64,
    pub said: i64,
}

/// A broken policy's error is said again after this long.
pub const POLICY_ERROR_REMIND: i64 = 86_400;

impl PolicyError {
    /// What to remember of `error` seen at `now`, and whether to say it: a
    /// new or different error is said at once, the same one once a day.
    pub fn next(prior: Option<&PolicyError>, error: &str, now: i64) -> (PolicyError, bool) {
        match prior {
            Some(p) if p.error == error && now - p.said < POLICY_ERROR_REMIND => (p.clone(), false),
            Some(p) => (
                PolicyError {
                    error: error.to_string(),
                    since: p.since,
                    said: now,
                },
                true,
            ),
            None => (
                PolicyError {
                    error: error.to_string(),
                    since: now,
                    said: now,
                },
                true,
            ),
        }
    }
}

/// The longest pause: a forgotten one must not disable monitoring for good.
pub const MAX_PAUSE: u64 = 86_400;

/// A maintenance window set by `tend pause`: restarts wait until `until`.
/// It lives in its own file so that `pause` and `resume` (run from package
/// manager hooks) never wait for a pass's lock.
///
/// Pauses have owners: an admin's (`pause.json`) and each package manager
/// hook's (`tend pause --by apt`: `pause.apt.json`), so a hook's resume ends
/// only the hook's own pause, never an admin's maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub since: i64,
    pub until: i64,
    #[serde(default)]
    pub reason: Option<String>,
    /// Who set it (`--by`); None is an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// How far ahead of this clock a pause may say it began (clocks of one
/// host's commands differ by little; a year means a wrong clock).
const PAUSE_SKEW: i64 = 300;

/// A name for `--by`: short, plain, usable in a file name.
pub fn pause_owner(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        bail!("--by {name:?}: a name of lower-case letters, digits, - and _ (at most 32), such as apt");
    }
    Ok(())
}

/// The file a pause of `by` lives in.
pub fn pause_file(by: Option<&str>) -> String {
    match by {
        None => PAUSE_FILE.to_string(),
        Some(by) => format!("pause.{by}.json"),
    }
}

impl Pause {
    /// The pause as it may be honoured at `now`: one that began in the
    /// future (set with a wrong clock) begins now, and none lasts more than
    /// [`MAX_PAUSE`] from its start, whatever its file says. With the cut,
    /// a line that says what was cut.
    pub fn bounded(&self, now: i64) -> (Pause, Option<String>) {
        let mut p = self.clone();
        let mut why = Vec::new();
        if p.since > now + PAUSE_SKEW {
            why.push(format!(
                "began in the future ({}; set with a wrong clock?)",
                clock::local_time(p.since)
            ));
            p.until = now + (p.until - p.since).max(0);
            p.since = now;
        }
        if p.until - p.since > MAX_PAUSE as i64 {
            why.push(format!(
                "lasted more than 24h (until {})",
                clock::local_time(p.until)
            ));
            p.until = p.since + MAX_PAUSE as i64;
        }
        if why.is_empty() {
            return (p, None);
        }
        let line = format!(
            "{} and {}; it now ends {}",
            why.join(" and "),
            "a pause always ends",
            clock::local_time(p.until)
        );
        (p, Some(line))
    }

    /// Of several pauses, the one that holds restarts longest, else the
    /// one that ended last (to say it ended).
    pub fn current(pauses: impl IntoIterator<Item = Pause>, now: i64) -> Option<Pause> {
        pauses
            .into_iter()
            .max_by_key(|p| (p.until > now, p.until, p.since))
    }

    /// `until 2026-11-21 14:30 (kernel upgrade)`
    pub fn describe(&self) -> String {
        let mut text = format!("until {}", clock::local_time(self.until));
        if let Some(by) = &self.by {
            text.push_str(&format!(" by {by}"));
        }
        // Whoever wrote the pause file wrote the reason: one line, escaped.
        if let Some(reason) = &self.reason {
            text.push_str(&format!(" ({})", file::quote(reason, 200)));
        }
        text
    }
}

/// Where state and lock live.
pub fn default_dir() -> PathBuf {
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
pub struct Store {
    dir: PathBuf,
    refused: Option<String>,
}

/// Whether a directory can hold tend's state, as sshd's StrictModes judges a
/// home: it, and every directory above it, belongs to root or to the user
/// running tend, and no one else can write to it (a sticky directory such
/// as /tmp is fine above it: others cannot rename what is ours there). A
/// symlink on the way must be root's or ours too. A directory that does not
/// exist yet is judged by the ones above it.
pub fn check_dir(dir: &Path) -> Result<()> {
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
pub struct Loaded {
    pub state: State,
    /// A line for the admin when the file was damaged and set aside.
    pub notice: Option<String>,
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
            refused: check_dir(dir).err().map(|e| format!("{e:#}")),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why the directory is not used, if it is not: nothing is read from it
    /// or written to it then (a pass still checks and restarts).
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// The directory, when it may be used.
    pub fn usable(&self) -> Option<&Path> {
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
    pub fn ensure_dir(&self) -> Result<()> {
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
    pub fn lock(&self, now: i64) -> Result<Locking> {
        self.ensure_dir()?;
        lock(&self.dir, now)
    }

    /// Reads the state without changing anything (for `status` and dry
    /// runs): a missing or damaged file reads as empty.
    pub fn peek(&self) -> State {
        if self.refused.is_some() {
            return State::default();
        }
        read(&self.file())
            .ok()
            .flatten()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Reads the state. A missing file is a first run. A damaged one (not
    /// JSON, truncated, empty, a directory) is renamed to
    /// `state.json.bad-TIMESTAMP` and the pass starts from a fresh state.
    pub fn load(&self, now: i64) -> Loaded {
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
            Ok(Some(text)) => match serde_json::from_str::<State>(&text) {
                Ok(mut state) => {
                    let ahead = state.clamp(now);
                    return Loaded {
                        state,
                        notice: (ahead > 0).then(|| {
                            format!(
                                "tend: state file {} has times up to {} ahead of the clock (the clock was ahead, or set back); taken as now",
                                path.display(),
                                clock::span(ahead)
                            )
                        }),
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
    pub fn save(&self, state: &State) -> Result<()> {
        self.write_json(STATE_FILE, state)
    }

    /// Every pause file (an admin's and each hook's), each read (or why it
    /// cannot be), for a pass to honour, bound and set aside.
    pub fn pauses(&self) -> Vec<(String, Result<Pause>)> {
        let Some(dir) = self.usable() else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n == PAUSE_FILE || (n.starts_with("pause.") && n.ends_with(".json") && n.len() > 10)
            })
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
    pub fn bounded_pauses(&self, now: i64) -> Vec<Pause> {
        self.pauses()
            .into_iter()
            .filter_map(|(_, p)| p.ok())
            .map(|p| p.bounded(now).0)
            .collect()
    }

    /// The pause in force (or the last to end), for `status` and dry runs.
    pub fn pause(&self, now: i64) -> Option<Pause> {
        Pause::current(self.bounded_pauses(now), now)
    }

    /// Writes a pause (its owner's file).
    pub fn set_pause(&self, pause: &Pause) -> Result<()> {
        self.ensure_dir()?;
        self.write_json(&pause_file(pause.by.as_deref()), pause)
    }

    /// Moves a damaged pause file aside; says where.
    pub fn set_pause_aside(&self, name: &str, now: i64) -> String {
        let aside = self.dir.join(format!("{name}.bad-{now}"));
        match std::fs::rename(self.dir.join(name), &aside) {
            Ok(()) => format!("moved it to {}", aside.display()),
            Err(e) => format!("could not move it aside: {e}"),
        }
    }

    /// Removes the pause of `by` (an admin's: None); false when there was
    /// none.
    pub fn clear_pause(&self, by: Option<&str>) -> Result<bool> {
        self.usable_or_fail()?;
        let path = self.dir.join(pause_file(by));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// Rewrites a pause file with the pause as bounded.
    pub fn rewrite_pause(&self, name: &str, pause: &Pause) -> Result<()> {
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
pub struct Lock {
    _file: Flock<File>,
}

/// Who holds the lock, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub since: i64,
}

pub enum Locking {
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

    #[test]
    fn policy_errors_are_said_once_then_daily_table() {
        let seen = |error: &str, since, said| PolicyError {
            error: error.into(),
            since,
            said,
        };
        let day = POLICY_ERROR_REMIND;
        for (prior, error, now, want, say) in [
            (None, "e1", 100, seen("e1", 100, 100), true),
            (
                Some(seen("e1", 100, 100)),
                "e1",
                400,
                seen("e1", 100, 100),
                false,
            ),
            (
                Some(seen("e1", 100, 100)),
                "e1",
                100 + day - 1,
                seen("e1", 100, 100),
                false,
            ),
            (
                Some(seen("e1", 100, 100)),
                "e1",
                100 + day,
                seen("e1", 100, 100 + day),
                true,
            ),
            (
                Some(seen("e1", 100, 100)),
                "e2",
                400,
                seen("e2", 100, 400),
                true,
            ),
        ] {
            assert_eq!(
                PolicyError::next(prior.as_ref(), error, now),
                (want, say),
                "{prior:?} {error} at {now}"
            );
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut state = State {
            last_run: Some(5),
            ..State::default()
        };
        state.services.insert(
            "ssh".into(),
            ServiceState {
                pid: Some(9),
                start_time: Some(100),
                restarts: vec![1, 2],
                reported: Some(3),
                failure: Some("exited 1".into()),
                replaced: Some(9),
                restarts_total: 7,
                ..ServiceState::new(Status::GivenUp, 3)
            },
        );
        store.save(&state).unwrap();
        let loaded = store.load(10);
        assert_eq!(loaded.state, state);
        assert!(loaded.notice.is_none());
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
