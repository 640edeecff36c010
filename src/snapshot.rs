//! The policy files as one consistent, trusted snapshot, and the last known
//! good copy of them kept in the state directory.
//!
//! A fleet gets its policy by rsync or git: a pass can start while files are
//! half copied, a push can be broken, a directory can be left writable by
//! anyone. So each file is read once; a policy whose files change while they
//! are read is not used (tried again once). As root, a file or directory that
//! someone other than root could change is refused, as cron and sudo do. And
//! the last policy that checked is kept, so a broken push never leaves a host
//! unmonitored.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::file;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The policy files as read, each once.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The paths the policy was asked for (`-f`, or `validate`'s).
    pub(crate) origin: Vec<PathBuf>,
    /// Each file's path and contents, in reading order.
    pub(crate) files: Vec<(PathBuf, Vec<u8>)>,
}

impl Snapshot {
    /// A fingerprint of the policy: SHA-256 of each file's name and
    /// contents, first 12 hex digits. The same policy has the same digest on
    /// every host, and its last good copy keeps it.
    pub(crate) fn digest(&self) -> String {
        let mut hash = Sha256::new();
        for (path, bytes) in &self.files {
            let name = path.file_name().map_or_else(
                || path.as_os_str().as_encoded_bytes(),
                |n| n.as_encoded_bytes(),
            );
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name);
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        hash.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The origin as an admin wrote it: `/etc/tend`, or `a.tend b.tend`.
    pub(crate) fn describe(&self) -> String {
        let names: Vec<String> = self
            .origin
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        names.join(" ")
    }
}

/// Whether to refuse files others than root could change (running as root,
/// without `--insecure`).
pub(crate) fn must_be_root_only(insecure: bool) -> bool {
    !insecure && nix::unistd::geteuid().is_root()
}

/// Reads the policy at `paths` (files, or directories of `*.tend` files read
/// in name order). When a file or directory changes during the read, waits
/// a moment and reads again; a second change makes the policy unusable for
/// this pass.
pub(crate) fn read(paths: &[PathBuf], root_only: bool) -> Result<Snapshot> {
    read_as(paths, root_only, false)
}

/// Reads files to check (`tend validate PATH`: a repository's checkout),
/// which no symlink may lead out of.
pub(crate) fn read_checkout(paths: &[PathBuf]) -> Result<Snapshot> {
    read_as(paths, false, true)
}

fn read_as(paths: &[PathBuf], root_only: bool, checkout: bool) -> Result<Snapshot> {
    if let Some(snapshot) = attempt(paths, root_only, checkout)? {
        return Ok(snapshot);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    match attempt(paths, root_only, checkout)? {
        Some(snapshot) => Ok(snapshot),
        None => bail!(
            "policy {} changed while it was being read, twice (a copy or checkout in progress?); not using it for this pass",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// What identifies a file's version: a write, a replacement or a chmod
/// changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// When the file last changed in any way (contents, name, mode).
    fn changed(&self) -> std::time::SystemTime {
        let (s, ns) = self.ctime;
        std::time::UNIX_EPOCH
            + std::time::Duration::new(s.max(0) as u64, ns.clamp(0, 999_999_999) as u32)
    }

    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A file or directory changed less than this before the read started may
/// still be being written (a checkout in progress): read it again later.
/// File times are kept to the kernel's tick, a few milliseconds.
const QUIET: std::time::Duration = std::time::Duration::from_millis(20);

/// One read of every file; None when something changed meanwhile.
fn attempt(paths: &[PathBuf], root_only: bool, checkout: bool) -> Result<Option<Snapshot>> {
    let start = std::time::SystemTime::now();
    // Every directory and file read, with its stamp before reading.
    let mut seen: Vec<(PathBuf, Stamp)> = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read policy {}", path.display()))?;
        if root_only {
            trusted(path, &meta)?;
            trusted_place(path)?;
        }
        if meta.is_dir() {
            seen.push((path.clone(), Stamp::of(&meta)));
            let listed = list(path)?;
            if listed.is_empty() {
                bail!("no *.tend files in policy directory {}", path.display());
            }
            files.extend(listed);
        } else {
            files.push(path.clone());
        }
    }
    let mut read = Vec::new();
    for path in files {
        if !paths.contains(&path) {
            linked(&path, paths, checkout)?;
        }
        let (bytes, meta) = file::read_meta(&path, file::POLICY_MAX, file::Links::Follow)
            .map_err(|e| anyhow::anyhow!("policy file {} {e}", path.display()))?;
        if root_only {
            trusted(&path, &meta)?;
        }
        if bytes.len() as u64 != meta.len() {
            return Ok(None);
        }
        seen.push((path.clone(), Stamp::of(&meta)));
        read.push((path, bytes));
    }
    // Nothing may have changed since (not a file, not a directory's
    // list), nor just before.
    let settled = start.checked_sub(QUIET).unwrap_or(std::time::UNIX_EPOCH);
    for (path, stamp) in &seen {
        match std::fs::metadata(path) {
            Ok(meta) if Stamp::of(&meta) == *stamp && stamp.changed() < settled => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(Snapshot {
        origin: paths.to_vec(),
        files: read,
    }))
}

/// The `*.tend` files of a directory, in name order.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let p = entry.path();
        let dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if p.extension().is_some_and(|e| e == "tend") && !dir {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// A symlink in a policy directory is followed to a file inside the policy
/// (any of `roots`), or to one outside that only its owner (root or the user
/// running tend) can change and that anyone may read: never to a secret
/// such as /etc/shadow, whose lines an error excerpt would quote. Out of a
/// `checkout` (a repository checked with `tend validate PATH`), never.
fn linked(path: &Path, roots: &[PathBuf], checkout: bool) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(()); // gone: reading it says so
    };
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "policy file {} is a symbolic link {why}; refusing it",
            path.display()
        )
    };
    let target = std::fs::canonicalize(path).map_err(|_| refuse("that leads nowhere"))?;
    let inside = roots
        .iter()
        .any(|root| std::fs::canonicalize(root).is_ok_and(|root| target.starts_with(root)));
    if inside {
        return Ok(());
    }
    if checkout {
        return Err(refuse(&format!(
            "out of the files checked, to {}",
            target.display()
        )));
    }
    let meta = std::fs::metadata(&target).map_err(|_| refuse("that leads nowhere"))?;
    let me = nix::unistd::geteuid().as_raw();
    let mode = meta.permissions().mode();
    if (meta.uid() != 0 && meta.uid() != me) || mode & 0o022 != 0 || mode & 0o004 == 0 {
        return Err(refuse(&format!(
            "out of the policy to {}, which is not a file only its owner can change and anyone can read",
            target.display()
        )));
    }
    Ok(())
}

/// As root, only root may be able to change the policy.
fn trusted(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let what = if meta.is_dir() { "directory" } else { "file" };
    if meta.uid() != 0 {
        let owner = nix::unistd::User::from_uid(meta.uid().into())
            .ok()
            .flatten()
            .map_or_else(|| meta.uid().to_string(), |u| u.name);
        bail!(
            "policy {what} {} is owned by {owner}, not root; refusing it (as root tend reads only a policy that only root can change; --insecure allows it)",
            path.display()
        );
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "group",
            _ => "others",
        };
        bail!(
            "policy {what} {} is writable by {who} (mode {mode:04o}); refusing it (as root tend reads only a policy that only root can change; --insecure allows it)",
            path.display()
        );
    }
    Ok(())
}

/// As root, the directory a policy is in must not let others rename it
/// away and put theirs in its place: not writable by others unless sticky
/// (as /tmp is), and owned by root.
fn trusted_place(path: &Path) -> Result<()> {
    let Some(dir) = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return Ok(());
    };
    let meta = std::fs::metadata(&dir)
        .with_context(|| format!("cannot read policy directory {}", dir.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    let open = mode & 0o022 != 0 && mode & 0o1000 == 0;
    if meta.uid() != 0 || open {
        bail!(
            "policy {} is in {}, which {} (mode {mode:04o}): another user could put their own policy in its place; refusing it (--insecure allows it)",
            path.display(),
            dir.display(),
            if open { "others can write and is not sticky" } else { "is not root's" },
        );
    }
    Ok(())
}

/// Where the last good copy lives in the state directory: a symlink to a
/// directory named after the policy's digest, swapped atomically.
pub(crate) const LAST_GOOD: &str = "policy.good";
const MANIFEST: &str = "manifest.json";

/// The last policy that checked, as kept by [`keep`].
#[derive(Debug, Clone)]
pub(crate) struct LastGood {
    pub(crate) snapshot: Snapshot,
    /// Where it was read from, and when it was kept (unix seconds).
    pub(crate) origin: String,
    pub(crate) saved: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    origin: String,
    saved: i64,
    digest: String,
    /// The copies' file names, in reading order.
    files: Vec<String>,
}

/// The last good copy in `state_dir`, if there is one.
pub(crate) fn last_good(state_dir: &Path) -> Result<Option<LastGood>> {
    let dir = state_dir.join(LAST_GOOD);
    // The copy is a symlink to a directory of the state dir, swapped
    // atomically by `keep`: it must name one beside it, nothing else.
    match std::fs::read_link(&dir) {
        Ok(target)
            if target
                .as_os_str()
                .to_string_lossy()
                .starts_with(&format!("{LAST_GOOD}."))
                && target.components().count() == 1 => {}
        Ok(_) => bail!(
            "last good policy {} does not point to a copy tend made; not using it",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => bail!(
            "last good policy {} is not a link tend made; not using it",
            dir.display()
        ),
    }
    let path = dir.join(MANIFEST);
    let manifest = match file::read(&path, file::STATE_MAX, file::Links::Refuse) {
        Ok(bytes) => bytes,
        Err(file::Refused::Missing) => return Ok(None),
        Err(e) => bail!("last good policy: {} {e}", path.display()),
    };
    let manifest: Manifest = serde_json::from_slice(&manifest)
        .with_context(|| format!("last good policy {} is damaged", dir.display()))?;
    let mut files = Vec::new();
    for name in &manifest.files {
        let mut parts = Path::new(name).components();
        if !matches!(
            (parts.next(), parts.next()),
            (Some(std::path::Component::Normal(_)), None)
        ) {
            bail!(
                "last good policy {} names a file outside it; not using it",
                dir.display()
            );
        }
        let path = dir.join(name);
        let bytes = file::read(&path, file::POLICY_MAX, file::Links::Refuse)
            .map_err(|e| anyhow::anyhow!("last good policy: {} {e}", path.display()))?;
        files.push((path, bytes));
    }
    Ok(Some(LastGood {
        snapshot: Snapshot {
            origin: vec![dir],
            files,
        },
        origin: manifest.origin,
        saved: manifest.saved,
    }))
}

/// Keeps `snapshot` as the last good copy, unless it already is. The copy
/// is written whole in a new directory (0700, files 0600), then a symlink is
/// renamed over the old one: a pass killed midway leaves the old copy.
/// Returns whether a new copy was written.
pub(crate) fn keep(state_dir: &Path, snapshot: &Snapshot, now: i64) -> Result<bool> {
    let digest = snapshot.digest();
    // The manifest says what the copy is; the files are read only when it
    // is enforced.
    let kept = std::fs::read(state_dir.join(LAST_GOOD).join(MANIFEST))
        .ok()
        .and_then(|m| serde_json::from_slice::<Manifest>(&m).ok());
    if kept.is_some_and(|m| m.digest == digest && m.files.len() == snapshot.files.len()) {
        return Ok(false);
    }
    let name = format!("{LAST_GOOD}.{digest}");
    let target = state_dir.join(&name);
    let building = state_dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let failed = || {
        format!(
            "cannot keep the last good policy in {}",
            state_dir.display()
        )
    };
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&building)
        .with_context(failed)?;
    let mut names = Vec::new();
    for (i, (path, bytes)) in snapshot.files.iter().enumerate() {
        let base = path.file_name().map_or_else(
            || format!("policy{i}"),
            |n| n.to_string_lossy().into_owned(),
        );
        // A name given twice (validate's paths) cannot be; keep them apart.
        let name = if names.contains(&base) {
            format!("{i}-{base}")
        } else {
            base
        };
        write_file(&building.join(&name), bytes).with_context(failed)?;
        names.push(name);
    }
    let manifest = Manifest {
        origin: snapshot.describe(),
        saved: now,
        digest,
        files: names,
    };
    let text = serde_json::to_vec_pretty(&manifest)?;
    write_file(&building.join(MANIFEST), &text).with_context(failed)?;
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&building, &target).with_context(failed)?;
    let link = state_dir.join(format!(".{LAST_GOOD}.link.{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&name, &link).with_context(failed)?;
    std::fs::rename(&link, state_dir.join(LAST_GOOD)).with_context(failed)?;
    if let Ok(dir) = File::open(state_dir) {
        let _ = dir.sync_all();
    }
    // Older copies go.
    if let Ok(entries) = std::fs::read_dir(state_dir) {
        for entry in entries.flatten() {
            let n = entry.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!("{LAST_GOOD}.")) && n != name {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(true)
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn reads_tend_files_in_name_order_only() {
        let dir = dir_with(&[("b.tend", "B"), ("a.tend", "A"), ("notes.txt", "x")]);
        let s = read(&[dir.path().to_path_buf()], false).unwrap();
        let names: Vec<String> = s
            .files
            .iter()
            .map(|(p, b)| {
                format!(
                    "{}={}",
                    p.file_name().unwrap().to_string_lossy(),
                    String::from_utf8_lossy(b)
                )
            })
            .collect();
        assert_eq!(names, ["a.tend=A", "b.tend=B"]);
    }

    #[test]
    fn digest_follows_names_and_contents_not_the_directory() {
        let digest = |files: &[(&str, &str)]| {
            let dir = dir_with(files);
            read(&[dir.path().to_path_buf()], false).unwrap().digest()
        };
        let base = digest(&[("a.tend", "A"), ("b.tend", "B")]);
        assert_eq!(base.len(), 12);
        assert_eq!(base, digest(&[("a.tend", "A"), ("b.tend", "B")]));
        for other in [
            digest(&[("a.tend", "A"), ("b.tend", "C")]),
            digest(&[("a.tend", "A"), ("c.tend", "B")]),
            digest(&[("a.tend", "AB")]),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn keep_then_last_good_round_trips_and_keeps_one_copy() {
        let state = tempfile::tempdir().unwrap();
        assert!(last_good(state.path()).unwrap().is_none());
        let one = dir_with(&[("a.tend", "A1")]);
        let s1 = read(&[one.path().to_path_buf()], false).unwrap();
        assert!(keep(state.path(), &s1, 100).unwrap());
        assert!(
            !keep(state.path(), &s1, 200).unwrap(),
            "same policy kept twice"
        );
        let two = dir_with(&[("a.tend", "A2"), ("b.tend", "B2")]);
        let s2 = read(&[two.path().to_path_buf()], false).unwrap();
        assert!(keep(state.path(), &s2, 300).unwrap());
        let good = last_good(state.path()).unwrap().unwrap();
        assert_eq!((good.saved, good.snapshot.digest()), (300, s2.digest()));
        assert_eq!(good.origin, two.path().display().to_string());
        let copies = std::fs::read_dir(state.path())
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                n.to_string_lossy().starts_with("policy.good.")
            })
            .count();
        assert_eq!(copies, 1);
        let mode = std::fs::metadata(state.path().join("policy.good/a.tend"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
