//! Reading CFEngine policy files into promises and bodies: the pest
//! grammar in grammar/cfengine.pest, each promise kept with its place, its
//! promiser, its constraints and the class guard it stands under.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pest::Parser as _;
use pest_derive::Parser;

use crate::import::{Left, Lines};

#[derive(Parser)]
#[grammar = "../grammar/cfengine.pest"]
pub(super) struct CfParser;

pub(super) type Pair<'a> = pest::iterators::Pair<'a, Rule>;

/// A value on the right of `=>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Str(String),
    List(Vec<Value>),
    Call(String, Vec<Value>),
    /// `@(list)`, `$(var)`, or a bare name.
    Name(String),
}

impl Value {
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Name(s) => Some(s),
            _ => None,
        }
    }
}

/// Where a statement is, and its text for reports.
#[derive(Debug, Clone)]
pub(super) struct Place {
    pub(super) file: PathBuf,
    pub(super) line: usize,
    pub(super) text: String,
}

impl Place {
    pub(super) fn left(&self, why: impl Into<String>) -> Left {
        Left::new(&self.file, self.line, &self.text, why)
    }
}

/// A promise: its type, the class guard it stands under, promiser and
/// constraints.
#[derive(Debug, Clone)]
pub(super) struct Promise {
    pub(super) kind: String,
    pub(super) guard: String,
    pub(super) promiser: String,
    pub(super) constraints: Vec<(String, Value)>,
    /// The line of each constraint, in their order.
    pub(super) lines: Vec<usize>,
    pub(super) place: Place,
}

impl Promise {
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.constraints
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub(super) fn string(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::text)
    }

    /// The line `key` is written on (the promise's own when not there).
    pub(super) fn line(&self, key: &str) -> usize {
        self.constraints
            .iter()
            .position(|(k, _)| k == key)
            .and_then(|i| self.lines.get(i).copied())
            .unwrap_or(self.place.line)
    }
}

/// A body: `body process_select NAME(PARAMS) { KEY => VALUE; }`.
#[derive(Debug, Clone)]
pub(super) struct Body {
    pub(super) params: Vec<String>,
    pub(super) settings: Vec<(String, Value)>,
    /// The file it is in and the line of each setting, in their order.
    pub(super) file: PathBuf,
    pub(super) lines: Vec<usize>,
}

/// Everything read from the files.
#[derive(Default)]
pub(super) struct Read {
    pub(super) promises: Vec<Promise>,
    pub(super) bodies: HashMap<(String, String), Body>,
    /// What reading said of the files themselves (bytes not UTF-8).
    pub(super) left: Vec<Left>,
}

pub(super) fn string(pair: Pair) -> String {
    let inner = pair.into_inner().next().expect("string body");
    match inner.as_rule() {
        Rule::dq => inner.as_str().replace("\\\"", "\""),
        Rule::sq => inner.as_str().replace("\\'", "'"),
        _ => inner.as_str().to_string(),
    }
}

pub(super) fn value(pair: Pair) -> Value {
    match pair.as_rule() {
        Rule::string => Value::Str(string(pair)),
        Rule::list => Value::List(pair.into_inner().map(value).collect()),
        Rule::call => {
            let mut inner = pair.into_inner();
            let name = inner.next().expect("name").as_str().to_string();
            Value::Call(name, inner.map(value).collect())
        }
        _ => Value::Name(pair.as_str().to_string()),
    }
}

pub(super) fn bundle(pair: Pair, path: &Path, lines: &mut Lines, read: &mut Read) {
    let mut inner = pair.into_inner();
    let _kind = inner.next();
    let _name = inner.next();
    let mut section = String::new();
    let mut guard = "any".to_string();
    for item in inner {
        match item.as_rule() {
            Rule::section => {
                section = item.as_str().trim_end_matches(':').trim().to_string();
                guard = "any".to_string();
            }
            Rule::guard => {
                let g = item.into_inner().next().expect("guard");
                guard = match g.as_rule() {
                    Rule::string => string(g),
                    _ => g.as_str().to_string(),
                };
            }
            Rule::promise => {
                let span = item.as_span();
                let line = lines.of(span.start());
                let mut parts = item.into_inner();
                let promiser = string(parts.next().expect("promiser"));
                let (mut constraints, mut at) = (Vec::new(), Vec::new());
                for c in parts.filter(|p| p.as_rule() == Rule::constraint) {
                    at.push(lines.of(c.as_span().start()));
                    let mut kv = c.into_inner();
                    let key = kv.next().expect("key").as_str().to_string();
                    constraints.push((key, value(kv.next().expect("value"))));
                }
                read.promises.push(Promise {
                    kind: section.clone(),
                    guard: guard.clone(),
                    promiser,
                    constraints,
                    lines: at,
                    place: Place {
                        file: path.to_path_buf(),
                        line,
                        text: span.as_str().to_string(),
                    },
                });
            }
            _ => {}
        }
    }
}

pub(super) fn body(pair: Pair, path: &Path, lines: &mut Lines, read: &mut Read) {
    let mut inner = pair.into_inner();
    let kind = inner.next().expect("kind").as_str().to_string();
    let name = inner.next().expect("name").as_str().to_string();
    let mut body = Body {
        params: Vec::new(),
        settings: Vec::new(),
        file: path.to_path_buf(),
        lines: Vec::new(),
    };
    for item in inner {
        match item.as_rule() {
            Rule::params => {
                body.params = item.into_inner().map(|p| p.as_str().to_string()).collect()
            }
            Rule::setting => {
                body.lines.push(lines.of(item.as_span().start()));
                let mut kv = item.into_inner();
                let key = kv.next().expect("key").as_str().to_string();
                body.settings.push((key, value(kv.next().expect("value"))));
            }
            _ => {}
        }
    }
    read.bodies.insert((kind, name), body);
}

/// Every promise and body of `paths`. Err: a file that cannot be read or
/// parsed, with why.
pub(super) fn files(paths: &[PathBuf]) -> Result<Read, String> {
    let mut read = Read::default();
    for path in paths {
        let (text, bad) = crate::import::read(path)?;
        read.left.extend(bad);
        let text = macros(&text);
        let mut lines = Lines::new(&text);
        let parsed = CfParser::parse(Rule::file, &text).map_err(|e| {
            let e = e.with_path(&path.display().to_string());
            format!("cannot parse: {e}")
        })?;
        let file = parsed.into_iter().next().expect("file");
        for block in file.into_inner() {
            match block.as_rule() {
                Rule::bundle => bundle(block, path, &mut lines, &mut read),
                Rule::body => body(block, path, &mut lines, &mut read),
                _ => {}
            }
        }
    }
    Ok(read)
}

/// The CFEngine version whose reading of `@if` macros the import follows:
/// the one in Debian 12, its oracle (`cf-promises`).
pub(super) const VERSION: (u32, u32, u32) = (3, 21, 0);

/// `text` with CFEngine's parser macros applied as cf-promises [`VERSION`]
/// applies them: the lines of a branch not taken (`@if
/// minimum_version(3.22)`, or the `@else` of a taken one) and the macro
/// lines themselves blanked, so line numbers stay those of the file.
/// `@if feature(X)` is taken (a policy's authors expect a whole agent).
pub(super) fn macros(text: &str) -> String {
    if !text.contains("\n@") && !text.starts_with('@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut keep = true;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        let blank = if let Some(cond) = t.strip_prefix("@if ") {
            keep = taken(cond.trim());
            true
        } else if t == "@else" {
            keep = !keep;
            true
        } else if t == "@endif" {
            keep = true;
            true
        } else {
            !keep
        };
        match blank {
            true => out.push_str(if line.ends_with('\n') { "\n" } else { "" }),
            false => out.push_str(line),
        }
    }
    out
}

/// Whether `@if COND` holds for [`VERSION`].
fn taken(cond: &str) -> bool {
    let Some((name, args)) = cond.strip_suffix(')').and_then(|c| c.split_once('(')) else {
        return true;
    };
    let versions: Vec<(u32, u32, u32)> = args.split(',').map(|v| version(v.trim())).collect();
    match (name.trim(), versions.as_slice()) {
        ("minimum_version", [v]) => VERSION >= *v,
        ("maximum_version", [v]) => VERSION <= *v,
        ("before_version", [v]) => VERSION < *v,
        ("at_version", [v]) => VERSION == *v,
        ("after_version", [v]) => VERSION > *v,
        ("between_versions", [a, b]) => *a <= VERSION && VERSION <= *b,
        _ => true,
    }
}

/// `3.12.2` -> (3, 12, 2); missing parts are 0.
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text
        .trim_matches('"')
        .split('.')
        .map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}
