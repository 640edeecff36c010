//! `tend import`: a CFEngine bundle or a monitrc turned into a tend policy,
//! so nobody rewrites fifty services by hand to try tend.
//!
//! Each reader ([`cfengine`], [`monit`]) turns its files into [`Draft`]
//! services and [`Left`] statements (what could not be carried over, with
//! its place and why); [`render`] writes the policy text, one service block
//! per check or process promise, a comment saying where each came from, and
//! every statement left out as a `# tend import:` comment at its place.

pub(crate) mod cfengine;
pub(crate) mod monit;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::file;

/// The largest input file read (a policy of thousands of services is far
/// smaller).
pub(crate) const INPUT_MAX: u64 = 4 << 20;

/// One service as the import writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draft {
    /// The id: the name the user chose, made a valid tend id.
    pub(crate) id: String,
    /// A class expression, as tend writes it; None for every host.
    pub(crate) guard: Option<String>,
    /// Where it came from: `FILE:LINE (what)`.
    pub(crate) from: String,
    /// The file it came from, to split the output by (`-o DIR`).
    pub(crate) file: PathBuf,
    /// Attributes in order: key and value as written (`pidfile`,
    /// `"/run/x.pid"`).
    pub(crate) attrs: Vec<(String, String)>,
    /// Where each attribute came from (`line 4`), by key and which of
    /// that key it is (0 the first: `port` may be given more than once),
    /// when known.
    pub(crate) origin: BTreeMap<(String, usize), String>,
    /// Where the statement being carried is: what `set` records.
    pub(crate) at: Option<String>,
    /// Statements of this service left out, said inside its block.
    pub(crate) left: Vec<Left>,
    /// What the reader wants the admin to check, said inside its block
    /// (`# note: ...`); nothing was left out for them.
    pub(crate) notes: Vec<String>,
}

impl Draft {
    pub(crate) fn new(id: &str, from: String, file: &Path) -> Draft {
        Draft {
            id: id_of(id),
            guard: None,
            from,
            file: file.to_path_buf(),
            attrs: Vec::new(),
            origin: BTreeMap::new(),
            at: None,
            left: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn set(&mut self, key: &str, value: String) {
        if let Some(at) = &self.at {
            self.origin.insert((key.to_string(), 0), at.clone());
        }
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((key.to_string(), value)),
        }
    }

    /// One more of an attribute that may be given more than once (a second
    /// `port`).
    pub(crate) fn add(&mut self, key: &str, value: String) {
        let nth = self.attrs.iter().filter(|(k, _)| k == key).count();
        if let Some(at) = &self.at {
            self.origin.insert((key.to_string(), nth), at.clone());
        }
        self.attrs.push((key.to_string(), value));
    }

    /// The value set for `key`, as written.
    pub(crate) fn value(&self, key: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// What is set next was carried from `line` of `file`: `# line N` by
    /// it, or `# FILE:N` when the service's block began in another file.
    pub(crate) fn carried_from(&mut self, file: &Path, line: usize) {
        self.at = Some(if file == self.file {
            format!("line {line}")
        } else {
            format!("{}:{line}", file.display())
        });
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.attrs.iter().any(|(k, _)| k == key)
    }
}

/// A statement that could not be carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Left {
    /// `FILE:LINE`
    pub(crate) place: String,
    /// The statement, as written (one line, shortened).
    pub(crate) statement: String,
    pub(crate) why: String,
}

impl Left {
    pub(crate) fn new(file: &Path, line: usize, statement: &str, why: impl Into<String>) -> Left {
        let one_line = redact(&statement.split_whitespace().collect::<Vec<_>>().join(" "));
        Left {
            place: format!("{}:{line}", file.display()),
            statement: file::quote(&one_line, 100),
            why: why.into(),
        }
    }

    /// Whether the statement was carried with a changed meaning (said
    /// `carried as ...`) rather than left out.
    pub(crate) fn changed(&self) -> bool {
        self.why.starts_with("carried as")
    }

    /// `FILE:LINE: `STATEMENT`: WHY`
    pub(crate) fn line(&self) -> String {
        format!("{}: `{}`: {}", self.place, self.statement, self.why)
    }
}

/// What an import made of its files.
#[derive(Debug, Default)]
pub(crate) struct Import {
    /// Class definitions (`class web = www1 | www2`), by file.
    pub(crate) classes: Vec<(PathBuf, String, String)>,
    pub(crate) drafts: Vec<Draft>,
    /// Statements left out that belong to no service.
    pub(crate) left: Vec<Left>,
    /// What the reader assumed, said at the top (`# note: ...`).
    pub(crate) notes: Vec<String>,
}

impl Import {
    /// Every statement left out, in the order they were met.
    pub(crate) fn all_left(&self) -> Vec<&Left> {
        let mut all: Vec<&Left> = self.left.iter().collect();
        all.extend(self.drafts.iter().flat_map(|d| &d.left));
        all
    }

    /// Makes ids unique (`name`, `name-2`, ...): tend's must be, CFEngine's
    /// and Monit's need not be across files.
    pub(crate) fn unique_ids(&mut self) {
        let mut taken = HashSet::new();
        for d in &mut self.drafts {
            d.id = claim(&d.id, &mut taken);
        }
    }
}

/// `base`, or `base-2`, `base-3` ... : the first not yet in `taken`, which
/// then holds it.
pub(crate) fn claim(base: &str, taken: &mut HashSet<String>) -> String {
    let mut name = base.to_string();
    let mut n = 1;
    while !taken.insert(name.clone()) {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

/// A tend id from a name: letters, digits, `_` and `-`; anything else
/// becomes `_`.
pub(crate) fn id_of(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() {
        "service".to_string()
    } else {
        id
    }
}

/// A tend string literal holding exactly `text`: single-quoted (taken as
/// written) when it can be, else double-quoted with `\"` and `\\`.
pub(crate) fn literal(text: &str) -> String {
    if !text.contains(['\'', '\n']) && text.contains(['\\', '"']) {
        return format!("'{text}'");
    }
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ");
    format!("\"{escaped}\"")
}

/// A statement with its secrets starred: a URL's password
/// (`https://user:****@host`), the word after `password`, `passwd`,
/// `secret` or `token`, and the password of Monit's `allow user:password`.
/// What an import says is mailed and committed; a secret is not.
pub(crate) fn redact(statement: &str) -> String {
    let hidden = crate::diagnostic::hide_passwords(statement);
    let mut out: Vec<String> = Vec::new();
    let mut after = "";
    // The quote a starred secret opened and has not closed yet.
    let mut open: Option<char> = None;
    for word in hidden.split(' ') {
        if let Some(q) = open {
            if word.ends_with(q) {
                open = None;
            }
            continue;
        }
        let starred = match after {
            "password" => {
                open = word.chars().next().filter(|&q| {
                    (q == '"' || q == '\'') && (word.len() == 1 || !word.ends_with(q))
                });
                stars(word)
            }
            "allow" => match word.split_once(':') {
                Some((user, _))
                    if !user.is_empty()
                        && user
                            .chars()
                            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@')) =>
                {
                    format!("{user}:****")
                }
                _ => word.to_string(),
            },
            // `--password=X`, `token=X`
            _ => match word.split_once('=') {
                Some((key, value)) if secret_word(key) && !value.is_empty() => {
                    format!("{key}={}", stars(value))
                }
                _ => word.to_string(),
            },
        };
        out.push(starred);
        after = match word.to_ascii_lowercase().trim_matches('"') {
            "allow" => "allow",
            w if secret_word(w) => "password",
            _ => "",
        };
    }
    out.join(" ")
}

/// Whether `word` names a secret that follows it: `password`, `passwd`,
/// `secret`, `token`, also as an option (`--password`).
fn secret_word(word: &str) -> bool {
    let word = word.trim_matches(['"', '\'']).trim_start_matches('-');
    ["password", "passwd", "secret", "token"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

/// `****`, in the quotes the word had (a quote that closes a longer
/// string stays: `--password X"` -> `--password ****"`).
fn stars(word: &str) -> String {
    match (word.chars().next(), word.chars().last()) {
        (Some(q @ ('"' | '\'')), _) => format!("{q}****{q}"),
        (_, Some(q @ ('"' | '\''))) if word.len() > 1 => format!("****{q}"),
        _ => "****".to_string(),
    }
}

/// A `process` value that finds what a pattern matched anywhere in a
/// command line (CFEngine's promisers, Monit's `matching`), with what the
/// admin should know of it. A pattern that is an absolute path names an
/// executable: tend's whole words keep that meaning and drop the matches
/// inside a longer word (`/usr/sbin/mysqld` no longer finds
/// `/usr/sbin/mysqld_safe` or `vi /usr/sbin/mysqld.cnf`); anything else
/// (`mysql`, `redis`, `jar$`) is written `anywhere`, so it finds what the
/// source found.
pub(crate) fn process_value(pattern: &str, source: &str) -> (String, String) {
    let trimmed = pattern.trim();
    let path = trimmed.starts_with('/')
        && trimmed.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !trimmed.contains(['|', '(', '[', '*', '+', '?', '{', '^', '$']);
    match path {
        true => (
            literal(trimmed),
            format!("{source} matched this anywhere in a command line; tend matches whole words, the executable itself (not `{trimmed}_safe`, not `vi {trimmed}.conf`): check with `tend --dry-run`"),
        ),
        false => (
            format!("{} anywhere", literal(pattern)),
            format!("{source} matched this anywhere in a command line, and so does `anywhere`; drop it for whole words once `tend --dry-run` shows what it finds"),
        ),
    }
}

/// The policy text of `import`, split by the file each part came from
/// (for `-o DIR`), in the order the files were met. `header` opens each.
pub(crate) fn render(import: &Import, header: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut note = |f: &PathBuf| {
        if !files.contains(f) {
            files.push(f.clone());
        }
    };
    import.classes.iter().for_each(|(f, _, _)| note(f));
    import.drafts.iter().for_each(|d| note(&d.file));
    let mut out = Vec::new();
    for (k, f) in files.iter().enumerate() {
        let mut text = format!("# {header}\n# from {}\n", f.display());
        if k == 0 {
            for note in &import.notes {
                text.push_str(&format!("# note: {note}\n"));
            }
            for left in &import.left {
                text.push_str(&format!("# tend import: {}\n", left.line()));
            }
        }
        for (_, name, expr) in import.classes.iter().filter(|(cf, _, _)| cf == f) {
            text.push_str(&format!("class {name} = {expr}\n"));
        }
        // Files are printed one after another: each states its first
        // guard when any service has one.
        let guarded = import.drafts.iter().any(|d| d.guard.is_some());
        let mut guard: Option<&str> = if guarded { Some("") } else { None };
        for d in import.drafts.iter().filter(|d| &d.file == f) {
            if d.guard.as_deref() != guard {
                text.push_str(&format!("\n{}::\n", d.guard.as_deref().unwrap_or("any")));
                guard = d.guard.as_deref();
            }
            text.push_str(&service_text(d));
        }
        out.push((f.clone(), text));
    }
    if out.is_empty() {
        let mut text = format!("# {header}\n# nothing to carry over\n");
        for left in &import.left {
            text.push_str(&format!("# tend import: {}\n", left.line()));
        }
        out.push((PathBuf::from("imported"), text));
    }
    out
}

/// The policy text of `import` checked as a pass would read it (`origin`:
/// the input files). A service whose text tend refuses (a pattern Rust's
/// regex rejects, a dependency left out, ...) is left out and said, with
/// tend's error, and the rest checked again: one statement never costs the
/// file. Err only for an error outside every service (a fault of import's).
pub(crate) fn checked(
    import: &mut Import,
    header: &str,
    origin: &[PathBuf],
) -> Result<Vec<(PathBuf, String)>, crate::diagnostic::PolicyErrors> {
    loop {
        let parts = render(import, header);
        let snapshot = crate::snapshot::Snapshot {
            origin: origin.to_vec(),
            // Named as what they are: a position in tend's error is one
            // in the policy written, not in the input.
            files: parts
                .iter()
                .map(|(f, text)| {
                    let written = PathBuf::from(format!("{} as imported", f.display()));
                    (written, text.clone().into_bytes())
                })
                .collect(),
        };
        let errors = match crate::load::check(&snapshot) {
            Ok(_) => return Ok(parts),
            Err(e) => e,
        };
        let mut refused: BTreeMap<String, String> = BTreeMap::new();
        for d in &errors.diagnostics {
            let text = &parts.get(d.span.file).map_or("", |(_, t)| t.as_str());
            match service_at(text, d.span.start) {
                Some(id) => {
                    refused
                        .entry(id.to_string())
                        .or_insert_with(|| d.message.clone());
                }
                None => return Err(errors),
            }
        }
        let drafts = std::mem::take(&mut import.drafts);
        let before = drafts.len();
        for d in drafts {
            match refused.remove(&d.id) {
                Some(why) => {
                    import.left.push(Left {
                        place: d.from.clone(),
                        statement: format!("service {}", d.id),
                        why: format!(
                            "not carried over: tend refuses the service written from it: {why}"
                        ),
                    });
                    import.left.extend(d.left);
                }
                None => import.drafts.push(d),
            }
        }
        if import.drafts.len() == before {
            return Err(errors);
        }
    }
}

/// The id of the service whose block holds byte `at` of a rendered file.
fn service_at(text: &str, at: usize) -> Option<&str> {
    let head = text.get(..at.min(text.len()))?;
    let start = head.rfind("\n  service ")? + "\n  service ".len();
    text[start..].split(' ').next()
}

fn service_text(d: &Draft) -> String {
    let mut text = format!("\n  # from {}\n  service {} {{\n", d.from, d.id);
    let width = d.attrs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, value) in &d.attrs {
        let nth = seen.entry(key.as_str()).or_default();
        let at = d.origin.get(&(key.clone(), *nth));
        *nth += 1;
        match at {
            Some(at) => text.push_str(&format!("    {key:width$} {value}  # {at}\n")),
            None => text.push_str(&format!("    {key:width$} {value}\n")),
        }
    }
    for note in &d.notes {
        text.push_str(&format!("    # note: {note}\n"));
    }
    for left in &d.left {
        text.push_str(&format!("    # tend import: {}\n", left.line()));
    }
    text.push_str("  }\n");
    text
}

/// Reads one input file: refused if it is not a regular file or larger
/// than [`INPUT_MAX`] (symlinks are followed: Debian's conf-enabled is
/// links). Bytes that are not UTF-8 (a Latin-1 name in a comment) do not
/// refuse the file: they are read as U+FFFD, and the first is said with
/// its line and column, as the statement it stands in may have changed.
pub(crate) fn read(path: &Path) -> Result<(String, Option<Left>), String> {
    let bytes = file::read(path, INPUT_MAX, file::Links::Follow)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, None)),
        Err(e) => {
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // A comment means nothing: a byte there changes nothing.
            let said = text
                .lines()
                .enumerate()
                .find(|(_, l)| l.contains('\u{FFFD}') && !l.trim_start().starts_with('#'));
            let left = said.map(|(i, l)| {
                let column = l.chars().take_while(|&c| c != '\u{FFFD}').count() + 1;
                Left::new(path, i + 1, l, format!(
                    "not UTF-8 from column {column}: such bytes are read as U+FFFD, so what holds one may not mean what it did; convert the file (`iconv -f latin1 -t utf-8`)"
                ))
            });
            Ok((text, left))
        }
    }
}

/// The newlines in `bytes`.
fn count_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Line numbers of byte offsets met in order, counted on from the last
/// one asked: linear in the text however many statements it holds.
pub(crate) struct Lines<'a> {
    text: &'a str,
    at: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line (1-based) of byte `at`; an offset before the last one
    /// asked is counted from the start.
    pub(crate) fn of(&mut self, at: usize) -> usize {
        let at = at.min(self.text.len());
        if at < self.at {
            (self.at, self.line) = (0, 1);
        }
        self.line += count_lines(&self.text.as_bytes()[self.at..at]);
        self.at = at;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_table() {
        for (text, want) in [
            ("/usr/sbin/sshd", "\"/usr/sbin/sshd\""),
            (r"^/usr/bin/python3 .*\.py", r"'^/usr/bin/python3 .*\.py'"),
            ("say \"hi\"", "'say \"hi\"'"),
            (r#"it's a \d"#, r#""it's a \\d""#),
            ("it's", "\"it's\""),
        ] {
            assert_eq!(literal(text), want, "{text}");
        }
    }

    #[test]
    fn redact_table() {
        for (statement, want) in [
            (
                "set mailserver smtp.example.org port 587 username \"alerts\" password \"s3cret\" using tls",
                "set mailserver smtp.example.org port 587 username \"alerts\" password \"****\" using tls",
            ),
            ("set httpd port 2812 allow admin:monit", "set httpd port 2812 allow admin:****"),
            ("allow 127.0.0.1 allow ::1 allow @monit", "allow 127.0.0.1 allow ::1 allow @monit"),
            (
                "set mmonit https://monit:hunter2@mmonit.example.org:8443/collector",
                "set mmonit https://monit:*******@mmonit.example.org:8443/collector",
            ),
            ("set eventqueue basedir /var/monit", "set eventqueue basedir /var/monit"),
            ("token abc123 secret 'x y z' done", "token **** secret '****' done"),
            (
                "start \"/usr/sbin/b --password Sw0rd\"",
                "start \"/usr/sbin/b --password ****\"",
            ),
            ("/usr/bin/x --token=abc -v PASSWORD=\"y\"", "/usr/bin/x --token=**** -v PASSWORD=\"****\""),
        ] {
            assert_eq!(redact(statement), want, "{statement}");
        }
    }

    #[test]
    fn id_table() {
        for (name, want) in [
            ("mysqld", "mysqld"),
            ("pdns-recursor", "pdns-recursor"),
            ("my.service", "my_service"),
            ("", "service"),
        ] {
            assert_eq!(id_of(name), want);
        }
    }

    #[test]
    fn claim_table() {
        let mut taken = HashSet::new();
        let got: Vec<String> = ["a", "a", "a-2", "b", "a"]
            .iter()
            .map(|b| claim(b, &mut taken))
            .collect();
        assert_eq!(got, ["a", "a-2", "a-2-2", "b", "a-3"]);
    }
}
