//! A daemon's own last words: the last lines of the log a service names
//! (`log FILE`), read when a report says it died or failed to start, so
//! the mail says why and not only that. Read as every file tend does not
//! trust: no symlink followed (a daemon's user may own its log's
//! directory), a regular file only, never blocking, the last few KiB at
//! most, each line escaped and cut.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

/// How many lines are kept, and of how many bytes at the end of the file.
const LINES: usize = 5;
const TAIL: u64 = 8 << 10;

/// Where the lines came from, and the lines (escaped, each at most 200
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Words {
    pub(crate) from: String,
    pub(crate) lines: Vec<String>,
}

impl Words {
    /// The lines as a report shows them under its line.
    pub(crate) fn detail(&self) -> String {
        let mut text = format!("  last lines of {}:", self.from);
        for line in &self.lines {
            text.push_str(&format!("\n  | {line}"));
        }
        text
    }
}

/// The last lines of the log at `path`; why not, as the one line shown
/// instead (a symlink, a FIFO, a missing file).
pub(crate) fn log_tail(path: &Path) -> Words {
    let from = path.display().to_string();
    let lines = match tail(path) {
        Ok(lines) if lines.is_empty() => vec!["(empty)".to_string()],
        Ok(lines) => lines,
        Err(why) => vec![format!("({why})")],
    };
    Words { from, lines }
}

fn tail(path: &Path) -> Result<Vec<String>, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => "a symbolic link; not following it".to_string(),
            _ => crate::probe::plain(&e),
        })?;
    let meta = file.metadata().map_err(|e| crate::probe::plain(&e))?;
    if !meta.is_file() {
        return Err("not a regular file; not reading it".into());
    }
    let mut file = file;
    let start = meta.len().saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| crate::probe::plain(&e))?;
    let mut bytes = Vec::new();
    file.take(TAIL)
        .read_to_end(&mut bytes)
        .map_err(|e| crate::probe::plain(&e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = (text.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| crate::file::quote(l.trim_end(), 200))
        .collect();
    // A tail that starts mid-line: its first, partial line is not shown,
    // unless it is all there is (one line longer than the tail): then its
    // end is, marked as cut.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
        if lines.is_empty() {
            let chars: Vec<char> = text.trim_end().chars().collect();
            let end: String = chars[chars.len().saturating_sub(200)..].iter().collect();
            lines.push(format!("…{}", crate::file::quote(&end, 200)));
        }
    }
    let from = lines.len().saturating_sub(LINES);
    Ok(lines.split_off(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_table() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}\nlast\n", "x".repeat(20_000));
        let many: String = (1..=9).map(|i| format!("line {i}\n")).collect();
        let one_line = format!("{}end\n", "y".repeat(10_000_000));
        let cut = format!("…{}end", "y".repeat(197));
        for (name, text, want) in [
            ("empty", "", vec!["(empty)"]),
            ("few", "a\n\nb\n", vec!["a", "b"]),
            (
                "many",
                many.as_str(),
                vec!["line 5", "line 6", "line 7", "line 8", "line 9"],
            ),
            ("long", long.as_str(), vec!["last"]),
            ("one long line", one_line.as_str(), vec![cut.as_str()]),
            ("escape", "boom \u{1b}[31m\n", vec!["boom \\x1b[31m"]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            assert_eq!(log_tail(&path).lines, want, "{name}");
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        assert_eq!(
            log_tail(&link).lines,
            ["(a symbolic link; not following it)"]
        );
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            log_tail(&dir.path().join("fifo")).lines,
            ["(not a regular file; not reading it)"]
        );
    }
}
