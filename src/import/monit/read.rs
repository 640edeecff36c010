//! Reading a monitrc into statements: the pest grammar in
//! grammar/monit.pest, `include`s followed where they stand, each statement
//! kept with its file, line and text, and its clause as a small model of
//! what Monit means by it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pest::Parser as _;
use pest_derive::Parser;

use crate::import::{Left, Lines};

#[derive(Parser)]
#[grammar = "../grammar/monit.pest"]
pub(super) struct MonitParser;

pub(super) type Pair<'a> = pest::iterators::Pair<'a, Rule>;

/// Monit's noise words (the grammar's `noise`).
pub(super) const NOISE: &[&str] = &[
    "if", "and", "within", "with", "has", "using", "uses", "use", "only", "on", "then", "for", "of",
];
/// Includes nested deeper than this are not followed (a loop).
pub(super) const MAX_DEPTH: usize = 16;

/// One statement, read.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) file: PathBuf,
    pub(super) line: usize,
    /// Its source lines, whole.
    pub(super) text: String,
    pub(super) clause: Clause,
}

#[derive(Debug, Default)]
pub(super) struct Action {
    pub(super) what: String,
    /// `else if succeeded then ...`
    pub(super) otherwise: bool,
}

#[derive(Debug, Default)]
pub(super) struct Test {
    pub(super) host: Option<String>,
    pub(super) port: Option<String>,
    pub(super) socket: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) request: Option<String>,
    pub(super) status: Option<(String, String)>,
    pub(super) content: Option<String>,
    pub(super) hostheader: Option<String>,
    pub(super) timeout: Option<u64>,
    /// `retry N`: tries within one cycle.
    pub(super) retry: Option<u64>,
    pub(super) tolerance: Option<(u64, Option<u64>)>,
    pub(super) action: Action,
}

#[derive(Debug)]
pub(super) enum Clause {
    CheckProcess {
        name: String,
        pidfile: Option<String>,
        matching: Option<String>,
    },
    CheckOther {
        kind: String,
        name: String,
    },
    SetDaemon(u64),
    SetOther(String),
    Program {
        kind: String,
        command: String,
        run_as: bool,
        timeout: Option<u64>,
    },
    Restarts {
        n: u64,
        cycles: u64,
        action: Action,
    },
    Failed(Test),
    Resource {
        measure: String,
        operator: String,
        number: String,
        unit: Option<String>,
        tolerance: Option<(u64, Option<u64>)>,
        action: Action,
    },
    NotExist(Action),
    Depends(Vec<String>),
    Group,
    Mode(String),
    Every,
    Other,
}

pub(super) fn collect(
    path: &Path,
    depth: usize,
    open: &mut HashSet<PathBuf>,
    items: &mut Vec<Item>,
    left: &mut Vec<Left>,
) -> Result<(), String> {
    let (text, bad) = crate::import::read(path)?;
    left.extend(bad);
    let parsed = MonitParser::parse(Rule::file, &text).map_err(|e| {
        let e = e.with_path(&path.display().to_string());
        format!("cannot parse: {e}")
    })?;
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    open.insert(key.clone());
    let file = parsed.into_iter().next().expect("file");
    let mut lines = Lines::new(&text);
    for pair in file.into_inner() {
        if pair.as_rule() == Rule::EOI {
            continue;
        }
        let line = lines.of(pair.as_span().start());
        let whole = whole_lines(&text, pair.as_span().start(), pair.as_span().end());
        if pair.as_rule() == Rule::include {
            let pattern = value(pair.into_inner().next().expect("value"));
            let found = expand(path, &pattern);
            let files = match found {
                Ok(files) => files,
                Err(why) => {
                    left.push(Left::new(path, line, whole, why));
                    continue;
                }
            };
            for f in files {
                let k = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
                if depth >= MAX_DEPTH || open.contains(&k) {
                    left.push(Left::new(
                        path,
                        line,
                        whole,
                        format!("{} includes itself; not read again", f.display()),
                    ));
                    continue;
                }
                if let Some(why) = secret(&f) {
                    left.push(Left::new(path, line, whole, why));
                    continue;
                }
                if let Err(why) = collect(&f, depth + 1, open, items, left) {
                    left.push(Left::new(path, line, whole, why));
                }
            }
            continue;
        }
        items.push(Item {
            file: path.to_path_buf(),
            line,
            text: whole.to_string(),
            clause: clause(pair),
        });
    }
    open.remove(&key);
    Ok(())
}

/// Why an included file is not read: one its group may read but others
/// may not is how secrets are kept (`/etc/shadow`, TLS keys); a monitrc is
/// its owner's alone, or everyone's.
fn secret(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(path).ok()?.mode();
    (mode & 0o044 == 0o040).then(|| {
        format!(
            "{} is not read: its group may read it and others may not, as a secret's file is; a monitrc is its owner's alone or everyone's",
            path.display()
        )
    })
}

/// The files an `include` names: a path, or a glob in its last part
/// (`/etc/monit/conf.d/*`), in name order. A relative path is from the
/// including file's directory.
pub(super) fn expand(from: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let path = Path::new(pattern);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        from.parent().unwrap_or(Path::new(".")).join(path)
    };
    let glob_chars = ['*', '?', '['];
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("/"));
    if dir.to_string_lossy().contains(glob_chars) {
        return Err("a pattern in a directory name is not followed; name the files".into());
    }
    if !name.contains(glob_chars) {
        return Ok(vec![path]);
    }
    let glob = globset::Glob::new(&name)
        .map_err(|e| format!("not a pattern: {e}"))?
        .compile_matcher();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Monit ignores an include that matches nothing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {}", dir.display(), crate::probe::plain(&e))),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            glob.is_match(e.file_name()) && !e.file_name().to_string_lossy().starts_with('.')
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The lines `start..end` touch, trimmed. A pair's span can end past
/// whitespace, noise words and comments that follow it: those are not
/// its own.
pub(super) fn whole_lines(text: &str, start: usize, end: usize) -> &str {
    let mut end = end;
    loop {
        let body = text[start..end].trim_end();
        let last_line = body.rsplit('\n').next().unwrap_or("");
        let last_word = body.rsplit([' ', '\t', '\n']).next().unwrap_or("");
        end = start + body.len();
        if last_line.trim_start().starts_with('#') && body.contains('\n') {
            end = start + body.len() - last_line.len();
        } else if body.len() > last_word.len()
            && NOISE.contains(&last_word.to_ascii_lowercase().as_str())
        {
            end = start + body.len() - last_word.len();
        } else {
            break;
        }
    }
    let from = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let to = text[end..].find('\n').map_or(text.len(), |i| end + i);
    text[from..to].trim()
}

/// A name or value without its quotes.
pub(super) fn value(pair: Pair) -> String {
    match pair.clone().into_inner().next() {
        Some(inner) => inner.as_str().to_string(),
        None => pair.as_str().to_string(),
    }
}

pub(super) fn number(pair: Option<Pair>) -> u64 {
    pair.and_then(|p| p.as_str().split('.').next()?.parse().ok())
        .unwrap_or(0)
}

pub(super) fn action(pair: Pair) -> Action {
    let mut inner = pair.clone().into_inner();
    let text = pair.as_str().to_ascii_lowercase();
    let what = text.split_whitespace().next().unwrap_or("").to_string();
    Action {
        what,
        otherwise: inner.any(|p| p.as_rule() == Rule::else_part),
    }
}

pub(super) fn tolerance(pair: Pair) -> (u64, Option<u64>) {
    let mut numbers = pair.into_inner().filter(|p| p.as_rule() == Rule::number);
    let first = number(numbers.next());
    match numbers.next() {
        Some(cycles) => (first, Some(number(Some(cycles)))),
        None => (first, None),
    }
}

pub(super) fn tolerance_text((n, m): (u64, Option<u64>)) -> String {
    match m {
        Some(m) => format!("for {n} times within {m} cycles"),
        None => format!("for {n} cycles"),
    }
}

pub(super) fn clause(pair: Pair) -> Clause {
    let rule = pair.as_rule();
    let mut inner = pair.into_inner();
    match rule {
        Rule::check_process => {
            let name = value(inner.next().expect("name"));
            let (mut pidfile, mut matching) = (None, None);
            for p in inner {
                let v = value(p.clone().into_inner().next().expect("value"));
                match p.as_rule() {
                    Rule::pidfile => pidfile = Some(v),
                    _ => matching = Some(v),
                }
            }
            Clause::CheckProcess {
                name,
                pidfile,
                matching,
            }
        }
        Rule::check_other => Clause::CheckOther {
            kind: inner.next().expect("kind").as_str().to_ascii_lowercase(),
            name: value(inner.next().expect("name")),
        },
        Rule::set_daemon => Clause::SetDaemon(number(inner.next())),
        Rule::set_other => {
            Clause::SetOther(inner.next().expect("kind").as_str().to_ascii_lowercase())
        }
        Rule::program => {
            let kind = inner.next().expect("kind").as_str().to_ascii_lowercase();
            let command = value(inner.next().expect("command"));
            let (mut run_as, mut timeout) = (false, None);
            for p in inner {
                match p.as_rule() {
                    Rule::run_as => run_as = true,
                    _ => timeout = Some(number(p.into_inner().next())),
                }
            }
            Clause::Program {
                kind,
                command,
                run_as,
                timeout,
            }
        }
        Rule::restarts => Clause::Restarts {
            n: number(inner.next()),
            cycles: number(inner.next()),
            action: action(inner.next().expect("action")),
        },
        Rule::failed_port | Rule::failed_unix => {
            let mut t = Test::default();
            for p in inner {
                let rule = p.as_rule();
                let text = p.as_str().to_string();
                let mut sub = p.clone().into_inner();
                match rule {
                    Rule::value if before_port(&t) => t.host = Some(value(p)),
                    Rule::value => t.socket = Some(value(p)),
                    Rule::number => t.port = Some(text),
                    Rule::socket_type => t.kind = Some(text_of(sub.next())),
                    Rule::protocol => t.protocol = Some(text_of(sub.next()).to_ascii_lowercase()),
                    Rule::request => t.request = sub.next().map(value),
                    Rule::status => {
                        let parts: Vec<Pair> = sub.collect();
                        let op = parts
                            .iter()
                            .find(|p| p.as_rule() == Rule::operator)
                            .map_or("=".to_string(), |p| p.as_str().to_string());
                        let n = parts
                            .last()
                            .map_or(String::new(), |p| p.as_str().to_string());
                        t.status = Some((op, n));
                    }
                    Rule::content => t.content = sub.last().map(value),
                    Rule::hostheader => t.hostheader = sub.next().map(value),
                    Rule::timeout => t.timeout = Some(number(sub.next())),
                    Rule::retry => t.retry = Some(number(sub.next())),
                    Rule::tolerance => t.tolerance = Some(tolerance(p)),
                    Rule::action => t.action = action(p),
                    _ => {}
                }
            }
            if rule == Rule::failed_unix && t.socket.is_none() {
                t.socket = t.host.take();
            }
            Clause::Failed(t)
        }
        Rule::resource => {
            // `total memory` is `totalmemory`.
            let measure = inner.next().expect("measure").as_str().to_ascii_lowercase();
            let measure = match measure.strip_prefix("total") {
                Some(rest) => format!("total{}", rest.trim_start()),
                None => measure,
            };
            let operator = inner
                .next()
                .expect("operator")
                .as_str()
                .to_ascii_lowercase();
            let number = inner.next().expect("number").as_str().to_string();
            let (mut unit, mut tol, mut act) = (None, None, Action::default());
            for p in inner {
                match p.as_rule() {
                    Rule::unit => unit = Some(p.as_str().to_ascii_lowercase()),
                    Rule::tolerance => tol = Some(tolerance(p)),
                    _ => act = action(p),
                }
            }
            Clause::Resource {
                measure,
                operator,
                number,
                unit,
                tolerance: tol,
                action: act,
            }
        }
        Rule::not_exist => Clause::NotExist(action(inner.last().expect("action"))),
        Rule::depends => Clause::Depends(inner.map(value).collect()),
        Rule::group => Clause::Group,
        Rule::mode => Clause::Mode(inner.next().expect("mode").as_str().to_ascii_lowercase()),
        Rule::every => Clause::Every,
        _ => Clause::Other,
    }
}

/// While reading a `failed` test: a value before the port is its host.
pub(super) fn before_port(t: &Test) -> bool {
    t.port.is_none() && t.host.is_none()
}

pub(super) fn text_of(pair: Option<Pair>) -> String {
    pair.map(|p| p.as_str().to_string()).unwrap_or_default()
}
