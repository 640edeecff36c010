//! Policy errors and warnings that point at the source.
//!
//! Every problem found in a policy names the file, line and column and shows
//! the offending line with a caret under it, so an admin reading cron mail can
//! go straight to the mistake. This module owns the source text of every
//! policy file read in a pass and renders positions against it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Index of a file in [`Sources`].
pub(crate) type FileId = usize;

/// A byte range in one policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) file: FileId,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start, end }
    }
}

/// The text of every policy file read, kept to render diagnostics, with
/// where each of its lines starts (so that 40,000 positions in a big file
/// are found in a moment, not by counting newlines from the top each time).
#[derive(Debug, Default, Clone)]
pub(crate) struct Sources {
    files: Vec<(PathBuf, String)>,
    lines: Vec<Vec<usize>>,
    /// Per file, after each character of more than one byte: its offset
    /// and the extra bytes of such characters so far. A column is then
    /// found in log time, however long its line (an error on every word of
    /// a 100 KB line must not cost errors x line length).
    wide: Vec<Vec<(usize, usize)>>,
}

impl Sources {
    pub(crate) fn add(&mut self, path: &Path, text: String) -> FileId {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut extra = 0;
        let wide = text
            .char_indices()
            .filter(|(_, c)| !c.is_ascii())
            .map(|(i, c)| {
                extra += c.len_utf8() - 1;
                (i, extra)
            })
            .collect();
        self.files.push((path.to_path_buf(), text));
        self.lines.push(starts);
        self.wide.push(wide);
        self.files.len() - 1
    }

    /// The extra bytes of multi-byte characters before `offset`.
    fn extra_before(&self, file: FileId, offset: usize) -> usize {
        let wide = &self.wide[file];
        match wide.partition_point(|&(i, _)| i < offset) {
            0 => 0,
            n => wide[n - 1].1,
        }
    }

    pub(crate) fn path(&self, file: FileId) -> &Path {
        &self.files[file].0
    }

    pub(crate) fn text(&self, file: FileId) -> &str {
        &self.files[file].1
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let text = self.text(file);
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let starts = &self.lines[file];
        let line = starts.partition_point(|&s| s <= offset);
        let line_start = starts[line - 1];
        let col = (offset - line_start)
            - (self.extra_before(file, offset) - self.extra_before(file, line_start))
            + 1;
        (line, col)
    }

    /// `file:line:col` of a span's start.
    pub(crate) fn locate(&self, span: Span) -> String {
        let (line, col) = self.line_col(span.file, span.start);
        format!("{}:{}:{}", self.path(span.file).display(), line, col)
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Error,
    Warning,
}

/// One problem in a policy, at a place in its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) span: Span,
    pub(crate) message: String,
}

impl Diagnostic {
    pub(crate) fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
        }
    }

    pub(crate) fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            span,
            message: message.into(),
        }
    }

    /// Renders as
    ///
    /// ```text
    /// policy.tend:4:5: error: unknown attribute `restrat`
    ///     4 |     restrat "/usr/sbin/invoke-rc.d ssh restart"
    ///       |     ^^^^^^^
    /// ```
    pub(crate) fn render(&self, sources: &Sources) -> String {
        let text = sources.text(self.span.file);
        let start = floor_char_boundary(text, self.span.start.min(text.len()));
        let (line_no, _) = sources.line_col(self.span.file, start);
        let starts = &sources.lines[self.span.file];
        let line_start = starts[starts.partition_point(|&s| s <= start) - 1];
        let line_end = starts
            .get(starts.partition_point(|&s| s <= start))
            .map_or(text.len(), |&next| next - 1);
        // Only a window of a long line is read: what an excerpt can show.
        let from = floor_char_boundary(text, start.saturating_sub(WINDOW).max(line_start));
        let to = floor_char_boundary(text, start.saturating_add(WINDOW).min(line_end));
        let line = &hide_passwords(text[from..to].trim_end_matches('\r'));
        let end = floor_char_boundary(text, self.span.end.clamp(start, to));
        let (shown, under) = excerpt(
            line,
            (start - from).min(line.len()),
            (end - from).min(line.len()),
            (from > line_start, to < line_end),
        );
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let gutter = " ".repeat(line_no.to_string().len());
        // Whatever a message quotes, it stays a line of a mail.
        let message = match self.message.char_indices().nth(MESSAGE) {
            Some((cut, _)) => format!("{}…", &self.message[..cut]),
            None => self.message.clone(),
        };
        format!(
            "{}: {}: {}\n {} | {}\n {} | {}",
            sources.locate(Span { start, ..self.span }),
            severity,
            message,
            line_no,
            shown,
            gutter,
            under
        )
    }
}

/// A line with the password of every `scheme://user:password@` in it
/// starred out, byte for byte (so carets still line up): a policy line
/// quoted in an error reaches cron mail and syslog.
pub(crate) fn hide_passwords(line: &str) -> String {
    let mut bytes = line.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = line[from..].find("://").map(|i| from + i + 3) {
        let end = line[at..]
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"') || c.is_whitespace())
            .map_or(line.len(), |i| at + i);
        if let Some(user_end) = line[at..end].rfind('@').map(|i| at + i) {
            if let Some(colon) = line[at..user_end].find(':').map(|i| at + i) {
                bytes[colon + 1..user_end].fill(b'*');
            }
        }
        from = end.max(at);
    }
    String::from_utf8(bytes).unwrap_or_else(|_| line.to_string())
}

/// How many terminal columns of a line an excerpt shows, at most.
const EXCERPT: usize = 100;
/// How many characters of a message are shown, at most.
const MESSAGE: usize = 300;
/// How many bytes either side of an error's place are read for its
/// excerpt (enough for [`EXCERPT`] columns of any characters).
const WINDOW: usize = 1024;

/// A line as an excerpt shows it, and the line of carets under the bytes
/// `start..end` of it. Carets line up under wide characters (CJK, emoji
/// take two columns) and tabs (a tab is kept under a tab). Control
/// characters show as `?`. A line wider than [`EXCERPT`] columns is cut to
/// a window around `start`, with `...` where it was cut.
fn excerpt(line: &str, start: usize, end: usize, more: (bool, bool)) -> (String, String) {
    use unicode_width::UnicodeWidthChar;
    // Each character: its byte offset, how it is shown, its width.
    let cells: Vec<(usize, char, usize)> = line
        .char_indices()
        .map(|(i, c)| match c {
            '\t' => (i, '\t', 1),
            c if c.is_control() => (i, '?', 1),
            c => (i, c, c.width().unwrap_or(0)),
        })
        .collect();
    let first = cells.partition_point(|&(i, _, _)| i < start);
    let last = cells.partition_point(|&(i, _, _)| i < end).max(first);
    let total: usize = cells.iter().map(|c| c.2).sum();
    // The window [from, to) of cells shown.
    let (mut from, mut to) = (0, cells.len());
    if total > EXCERPT {
        let mut room = EXCERPT / 3;
        from = first;
        while from > 0 && cells[from - 1].2 <= room {
            room -= cells[from - 1].2;
            from -= 1;
        }
        let mut room = EXCERPT;
        to = from;
        while to < cells.len() && cells[to].2 <= room {
            room -= cells[to].2;
            to += 1;
        }
        // Near the end of the line, the room left shows more before.
        while from > 0 && cells[from - 1].2 <= room {
            room -= cells[from - 1].2;
            from -= 1;
        }
        to = to.max((first + 1).min(cells.len()));
    }
    let cut_left = from > 0 || more.0;
    let cut_right = to < cells.len() || more.1;
    let mut shown = String::new();
    let mut under = String::new();
    if cut_left {
        shown.push_str("...");
        under.push_str("   ");
    }
    for (k, &(_, c, w)) in cells[from..to].iter().enumerate() {
        shown.push(c);
        let k = from + k;
        if k < first {
            under.push_str(if c == '\t' { "\t" } else { &"  "[..w.min(2)] });
        } else if k < last {
            under.push_str(&"^^"[..w.clamp(1, 2)]);
        }
    }
    if cut_right {
        shown.push_str("...");
    }
    if last == first || first >= to {
        // An empty span (the end of a line), or one past the window.
        under.push('^');
    }
    (shown, under)
}

/// A diagnostic as `tend validate --format json` shows it: severity, file,
/// line, column, message, and the excerpt with its caret. An error that is
/// not in the policy's text (an unreadable file) has no position.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) severity: Severity,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    pub(crate) message: String,
    pub(crate) rendered: String,
}

impl Diagnostic {
    pub(crate) fn row(&self, sources: &Sources) -> Row {
        let (line, column) = sources.line_col(self.span.file, self.span.start);
        Row {
            severity: self.severity,
            file: Some(sources.path(self.span.file).display().to_string()),
            line: Some(line),
            column: Some(column),
            message: self.message.clone(),
            rendered: self.render(sources),
        }
    }
}

/// Every problem found in a policy, rendered together.
#[derive(Debug)]
pub(crate) struct PolicyErrors {
    pub(crate) sources: Sources,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        let rendered: Vec<String> = self
            .diagnostics
            .iter()
            .map(|d| d.render(&self.sources))
            .collect();
        write!(f, "{}", rendered.join("\n"))
    }
}

impl std::error::Error for PolicyErrors {}

impl PolicyErrors {
    /// `policy has 2 errors:`
    fn headline(&self) -> String {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let plural = if errors == 1 { "" } else { "s" };
        format!("policy has {errors} error{plural}:")
    }

    /// The errors as a report shows them (cron mail, a dry run): the first
    /// [`IN_REPORT`], then how many more; `tend validate` shows them all.
    pub(crate) fn report(&self) -> String {
        if self.diagnostics.len() <= IN_REPORT {
            return self.to_string();
        }
        let shown: Vec<String> = self.diagnostics[..IN_REPORT]
            .iter()
            .map(|d| d.render(&self.sources))
            .collect();
        let head = self.headline();
        format!(
            "{head}\n{}\n... and {} more (`tend validate` shows them all)",
            shown.join("\n"),
            self.diagnostics.len() - IN_REPORT
        )
    }
}

/// How many of a broken policy's errors a report quotes.
pub(crate) const IN_REPORT: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Sources {
        let mut s = Sources::default();
        s.add(Path::new("p.tend"), text.to_string());
        s
    }

    #[test]
    fn line_and_column_table() {
        let s = one("ab\ncdé\n\nx");
        for (offset, want) in [
            (0, (1, 1)),
            (1, (1, 2)),
            (3, (2, 1)),
            (8, (3, 1)),
            (9, (4, 1)),
        ] {
            assert_eq!(s.line_col(0, offset), want, "offset {offset}");
        }
        // After a multibyte character columns count characters.
        assert_eq!(s.line_col(0, "ab\ncdé".len()), (2, 4));
    }

    #[test]
    fn renders_caret_under_span() {
        let s = one("any::\n  service x {\n\trestrat \"y\"\n  }\n");
        let start = s.text(0).find("restrat").unwrap();
        let d = Diagnostic::error(
            Span::new(0, start, start + 7),
            "unknown attribute `restrat`",
        );
        assert_eq!(
            d.render(&s),
            "p.tend:3:2: error: unknown attribute `restrat`\n 3 | \trestrat \"y\"\n   | \t^^^^^^^"
        );
    }

    #[test]
    fn excerpt_carets_line_up_table() {
        let long = format!("{}bad{}", "a".repeat(200), "z".repeat(200));
        let at = long.find("bad").unwrap();
        for (line, span, want_line, want_under) in [
            ("restrat x", "restrat", "restrat x", "^^^^^^^"),
            ("\trestrat", "restrat", "\trestrat", "\t^^^^^^^"),
            // Wide characters take two columns, carets too.
            (
                "name \"日本\" bad",
                "bad",
                "name \"日本\" bad",
                "            ^^^",
            ),
            ("name \"日本\"", "日本", "name \"日本\"", "      ^^^^"),
            ("x \"🦀🦀\" y", "y", "x \"🦀🦀\" y", "         ^"),
            // A control character shows as `?`, one column.
            ("a\u{7}b", "b", "a?b", "  ^"),
        ] {
            let s0 = line.find(span).unwrap();
            let (shown, under) = excerpt(line, s0, s0 + span.len(), (false, false));
            assert_eq!(
                (shown.as_str(), under.as_str()),
                (want_line, want_under),
                "{line}"
            );
        }
        // A long line: a window around the column, cut with `...`.
        let (shown, under) = excerpt(&long, at, at + 3, (false, false));
        assert!(
            shown.starts_with("...") && shown.ends_with("..."),
            "{shown}"
        );
        assert!(shown.chars().count() <= EXCERPT + 6, "{}", shown.len());
        assert_eq!(under.find('^'), shown.find("bad"));
        assert_eq!(under.trim_start(), "^^^");
        // At its start, and past its end.
        let (shown, under) = excerpt(&long, 0, 1, (false, false));
        assert!(!shown.starts_with("...") && shown.ends_with("..."));
        assert_eq!(under, "^");
        let (shown, under) = excerpt(&long, long.len(), long.len(), (false, false));
        assert!(shown.starts_with("...") && !shown.ends_with("..."));
        assert_eq!(under.len(), shown.len() + 1);
    }

    #[test]
    fn span_at_end_of_file_renders() {
        let s = one("service x {");
        let d = Diagnostic::error(Span::new(0, 11, 11), "expected `}`");
        assert_eq!(
            d.render(&s),
            "p.tend:1:12: error: expected `}`\n 1 | service x {\n   |            ^"
        );
    }
}
