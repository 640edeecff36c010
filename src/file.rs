//! Reading (and replacing) a file that someone else may control, safely.
//!
//! tend runs as root and reads files that other users can touch: a daemon's
//! pidfile in a directory its user owns, policy files from a repository,
//! state in a directory given on the command line. Any of them can be made a
//! symlink to /etc/shadow, a FIFO that never answers, /dev/zero, or 10 MB.
//! So every such file is read here, one way: the last component is not
//! followed when it is a symlink (unless the caller allows it), the open
//! never blocks, only a regular file is read, and never more than a cap.
//! Each refusal is one clear error naming the file; its content is never
//! part of it. A file tend writes where others can write too (the metrics
//! file) is replaced here, one way: [`replace`].

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum Refused {
    Missing,
    /// A symlink where a plain file is wanted.
    Symlink,
    /// A FIFO, a device, a socket or a directory: what it is.
    NotRegular(&'static str),
    /// Bigger than the cap (the cap).
    TooBig(u64),
    Io(std::io::Error),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing => write!(f, "missing"),
            Refused::Symlink => write!(f, "is a symbolic link; not following it"),
            Refused::NotRegular(what) => write!(f, "is {what}, not a regular file; not reading it"),
            Refused::TooBig(cap) => write!(f, "is larger than {}; not reading it", size(*cap)),
            Refused::Io(e) => write!(f, "cannot read it: {e}"),
        }
    }
}

impl std::error::Error for Refused {}

/// `4 MiB`, `64 KiB`, `512 bytes`.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        1 => "1 byte".to_string(),
        b => format!("{b} bytes"),
    }
}

/// Caps: a pidfile holds a number; state and pause files are small JSON;
/// a policy file is text an admin wrote.
pub(crate) const PIDFILE_MAX: u64 = 4 << 10;
pub(crate) const STATE_MAX: u64 = 8 << 20;
pub(crate) const POLICY_MAX: u64 = 4 << 20;

/// Whether a final symlink is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// Never: the path must name the file itself.
    Refuse,
    /// Yes: the caller checks what the file is (its owner, its place).
    Follow,
}

/// Reads at most `max` bytes of the regular file at `path`.
pub(crate) fn read(path: &Path, max: u64, links: Links) -> Result<Vec<u8>, Refused> {
    read_meta(path, max, links).map(|(bytes, _)| bytes)
}

/// The same, with the opened file's metadata (owner, mode, times: what was
/// read, not what the path names a moment later).
pub(crate) fn read_meta(
    path: &Path,
    max: u64,
    links: Links,
) -> Result<(Vec<u8>, std::fs::Metadata), Refused> {
    let mut flags = nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY;
    if links == Links::Refuse {
        flags |= nix::libc::O_NOFOLLOW;
    }
    // A FIFO or device is refused before it is opened where it can be seen
    // (opening some devices acts); the check after opening is the one that
    // counts.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let kind = meta.file_type();
        if kind.is_symlink() && links == Links::Refuse {
            return Err(Refused::Symlink);
        }
        if !kind.is_symlink() {
            kind_of(&meta)?;
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            _ if e.kind() == std::io::ErrorKind::NotFound => Refused::Missing,
            Some(nix::libc::ELOOP) if links == Links::Refuse => Refused::Symlink,
            _ => Refused::Io(e),
        })?;
    let meta = file.metadata().map_err(Refused::Io)?;
    kind_of(&meta)?;
    if meta.len() > max {
        return Err(Refused::TooBig(max));
    }
    let bytes = read_capped(file, max)?;
    Ok((bytes, meta))
}

/// A regular file is fine; anything else is named.
fn kind_of(meta: &std::fs::Metadata) -> Result<(), Refused> {
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(Refused::NotRegular(what))
}

/// Reads the whole file, but never more than `max` bytes (a file that grows
/// while it is read is refused as too big).
fn read_capped(file: File, max: u64) -> Result<Vec<u8>, Refused> {
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(Refused::Io)?;
    if bytes.len() as u64 > max {
        return Err(Refused::TooBig(max));
    }
    Ok(bytes)
}

/// Replaces the file at `path` with `bytes`, atomically, in a directory
/// another user may control (node_exporter's textfile directory): a reader
/// sees the old file or the new one, never half of either. The directory
/// is opened without following a final symlink (one swapped in is
/// refused), the temporary file is created there exclusively with a name
/// no one can guess, written, synced and renamed over `path` (a symlink
/// planted at `path` is replaced, not followed). Anything at `path` but a
/// file or a symlink (`/dev/null`, a FIFO, a directory) is refused, never
/// replaced.
pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use nix::fcntl::{openat, renameat, OFlag};
    use nix::sys::stat::{fchmod, Mode};
    use std::io::Write;
    let invalid =
        |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string());
    let name = path.file_name().ok_or_else(|| invalid("not a file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => {
            invalid("its directory is a symbolic link or not a directory")
        }
        e => std::io::Error::from(e),
    })?;
    match nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode)
                & nix::sys::stat::SFlag::S_IFMT;
            let what = match kind {
                nix::sys::stat::SFlag::S_IFREG | nix::sys::stat::SFlag::S_IFLNK => None,
                nix::sys::stat::SFlag::S_IFDIR => Some("a directory"),
                nix::sys::stat::SFlag::S_IFIFO => Some("a FIFO"),
                nix::sys::stat::SFlag::S_IFCHR => Some("a character device"),
                nix::sys::stat::SFlag::S_IFBLK => Some("a block device"),
                nix::sys::stat::SFlag::S_IFSOCK => Some("a socket"),
                _ => Some("not a file"),
            };
            if let Some(what) = what {
                return Err(invalid(&format!(
                    "it is {what}, not a regular file; not replacing it"
                )));
            }
        }
        Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let mode = Mode::from_bits_truncate(mode);
    let mut attempt = 0u32;
    let (tmp, fd) = loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = format!(
            ".{}.{}.{nanos:x}{attempt}",
            name.to_string_lossy(),
            std::process::id()
        );
        match openat(
            &dir,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            mode,
        ) {
            Ok(fd) => break (tmp, fd),
            Err(nix::errno::Errno::EEXIST) if attempt < 16 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let mut file = File::from(fd);
    let written = file
        .write_all(bytes)
        .and_then(|()| fchmod(&file, mode).map_err(std::io::Error::from))
        .and_then(|()| file.sync_all())
        .and_then(|()| renameat(&dir, tmp.as_str(), &dir, name).map_err(std::io::Error::from));
    if written.is_err() {
        let _ = nix::unistd::unlinkat(&dir, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    } else {
        let _ = nix::unistd::fsync(&dir);
    }
    written
}

/// Text from somewhere tend does not control (a pidfile, a pause reason, a
/// command's output, a process's command line), made safe to print in a
/// one-line report: control characters and newlines escaped as `\n`,
/// `\x1b`, `\u{2028}`; cut to `max` characters with `…`.
pub(crate) fn quote(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // C1 controls, line and paragraph separators, bidi overrides:
            // they reorder or break a line in a terminal or a mail reader.
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_table() {
        for (text, max, want) in [
            ("plain words", 60, "plain words"),
            ("two\nlines", 60, "two\\nlines"),
            (
                "x\r\nOpenSSH restarted (pid 1)",
                60,
                "x\\r\\nOpenSSH restarted (pid 1)",
            ),
            ("\u{1b}[31mred", 60, "\\x1b[31mred"),
            ("tab\there", 60, "tab\\there"),
            ("nul\0", 60, "nul\\x00"),
            ("bidi \u{202e}txt", 60, "bidi \\u{202e}txt"),
            ("日本語", 60, "日本語"),
            ("abcdef", 3, "abc…"),
            ("abc", 3, "abc"),
        ] {
            assert_eq!(quote(text, max), want, "{text:?}");
        }
    }

    #[test]
    fn refusals_table() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "1234\n").unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'1'; 5000]).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&plain, &link).unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let missing = dir.path().join("missing");
        let zero = Path::new("/dev/zero");
        let cases: [(&Path, Links, &str); 8] = [
            (&plain, Links::Refuse, "ok 5"),
            (&link, Links::Follow, "ok 5"),
            (&link, Links::Refuse, "is a symbolic link; not following it"),
            (
                &fifo,
                Links::Refuse,
                "is a FIFO, not a regular file; not reading it",
            ),
            (
                zero,
                Links::Follow,
                "is a character device, not a regular file; not reading it",
            ),
            (&big, Links::Refuse, "is larger than 4 KiB; not reading it"),
            (&missing, Links::Refuse, "missing"),
            (
                dir.path(),
                Links::Refuse,
                "is a directory, not a regular file; not reading it",
            ),
        ];
        for (path, links, want) in cases {
            let got = match read(path, PIDFILE_MAX, links) {
                Ok(bytes) => format!("ok {}", bytes.len()),
                Err(e) => e.to_string(),
            };
            assert_eq!(got, want, "{}", path.display());
        }
    }
}
