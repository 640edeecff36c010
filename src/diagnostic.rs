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
pub type FileId = usize;

/// A byte range in one policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start, end }
    }
}

/// The text of every policy file read, kept to render diagnostics.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<(PathBuf, String)>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        self.files.push((path.to_path_buf(), text));
        self.files.len() - 1
    }

    pub fn path(&self, file: FileId) -> &Path {
        &self.files[file].0
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.files[file].1
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let text = self.text(file);
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// `file:line:col` of a span's start.
    pub fn locate(&self, span: Span) -> String {
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
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a policy, at a place in its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
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
    pub fn render(&self, sources: &Sources) -> String {
        let text = sources.text(self.span.file);
        let start = floor_char_boundary(text, self.span.start.min(text.len()));
        let (line_no, _) = sources.line_col(self.span.file, start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[line_start..line_end].trim_end_matches('\r');
        // Keep tabs under tabs so the caret lines up in a terminal.
        let pad: String = text[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let end = floor_char_boundary(text, self.span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let gutter = " ".repeat(line_no.to_string().len());
        format!(
            "{}: {}: {}\n {} | {}\n {} | {}{}",
            sources.locate(Span { start, ..self.span }),
            severity,
            self.message,
            line_no,
            printable(line),
            gutter,
            pad,
            "^".repeat(width)
        )
    }
}

/// A diagnostic as `tend validate --format json` shows it: severity, file,
/// line, column, message, and the excerpt with its caret. An error that is
/// not in the policy's text (an unreadable file) has no position.
#[derive(Debug, Serialize)]
pub struct Row {
    pub severity: Severity,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub rendered: String,
}

impl Diagnostic {
    pub fn row(&self, sources: &Sources) -> Row {
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

/// Control characters in a broken file must not garble the admin's terminal.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

/// An error in one line, for syslog and the first line of a report:
/// a policy's first diagnostic (`web.tend:2:3: unknown attribute
/// `restrat``, and how many more), or any other error as it reads.
pub fn summary(error: &anyhow::Error) -> String {
    let Some(errors) = error.downcast_ref::<PolicyErrors>() else {
        return format!("{error:#}");
    };
    let Some(first) = errors.diagnostics.first() else {
        return format!("{error:#}");
    };
    let mut text = format!("{}: {}", errors.sources.locate(first.span), first.message);
    match errors.diagnostics.len() - 1 {
        0 => {}
        1 => text.push_str(" (and 1 more error)"),
        n => text.push_str(&format!(" (and {n} more errors)")),
    }
    text
}

/// Every problem found in a policy, rendered together.
#[derive(Debug)]
pub struct PolicyErrors {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let plural = if errors == 1 { "" } else { "s" };
        writeln!(f, "policy has {errors} error{plural}:")?;
        let rendered: Vec<String> = self
            .diagnostics
            .iter()
            .map(|d| d.render(&self.sources))
            .collect();
        write!(f, "{}", rendered.join("\n"))
    }
}

impl std::error::Error for PolicyErrors {}

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
    fn span_at_end_of_file_renders() {
        let s = one("service x {");
        let d = Diagnostic::error(Span::new(0, 11, 11), "expected `}`");
        assert_eq!(
            d.render(&s),
            "p.tend:1:12: error: expected `}`\n 1 | service x {\n   |            ^"
        );
    }
}
