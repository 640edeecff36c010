//! `tend import monit`: a monitrc (and the files its `include`s name) read
//! with the pest grammar in grammar/monit.pest, each `check process` made a
//! tend service: its pidfile or pattern, its programs, its port, socket,
//! HTTP, memory and CPU tests, its restart limit (cycles turned into time
//! with `set daemon`), its dependencies. Every other check, setting and
//! test is reported with its place and why.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use pest::Parser as _;
use pest_derive::Parser;

use super::{line_of, literal, Draft, Import, Left};

#[derive(Parser)]
#[grammar = "../grammar/monit.pest"]
struct MonitParser;

type Pair<'a> = pest::iterators::Pair<'a, Rule>;

/// Monit's own default cycle when no `set daemon` says (Debian's monitrc
/// says 120).
const DEFAULT_CYCLE: u64 = 120;
/// How often cron runs tend, for turning cycles into passes.
const PASS: u64 = 300;
/// Monit's noise words (the grammar's `noise`).
const NOISE: &[&str] = &[
    "if", "and", "within", "with", "has", "using", "uses", "use", "only", "on", "then", "for", "of",
];
/// Includes nested deeper than this are not followed (a loop).
const MAX_DEPTH: usize = 16;

/// One statement, read.
#[derive(Debug)]
struct Item {
    file: PathBuf,
    line: usize,
    /// Its source lines, whole.
    text: String,
    clause: Clause,
}

#[derive(Debug, Default)]
struct Action {
    what: String,
    /// `else if succeeded then ...`
    otherwise: bool,
}

#[derive(Debug, Default)]
struct Test {
    host: Option<String>,
    port: Option<String>,
    socket: Option<String>,
    kind: Option<String>,
    protocol: Option<String>,
    request: Option<String>,
    status: Option<(String, String)>,
    content: Option<String>,
    hostheader: Option<String>,
    timeout: Option<u64>,
    tolerance: Option<String>,
    action: Action,
}

#[derive(Debug)]
enum Clause {
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

/// Reads `paths` (and what they include) and converts them. Err: a file
/// that cannot be read or parsed at all, with why.
pub fn import(paths: &[PathBuf]) -> Result<Import, String> {
    let mut items = Vec::new();
    let mut import = Import::default();
    let mut open = HashSet::new();
    for path in paths {
        collect(path, 0, &mut open, &mut items, &mut import.left)?;
    }
    convert(items, &mut import);
    Ok(import)
}

fn collect(
    path: &Path,
    depth: usize,
    open: &mut HashSet<PathBuf>,
    items: &mut Vec<Item>,
    left: &mut Vec<Left>,
) -> Result<(), String> {
    let text = super::read(path)?;
    let parsed = MonitParser::parse(Rule::file, &text).map_err(|e| {
        let e = e.with_path(&path.display().to_string());
        format!("cannot parse: {e}")
    })?;
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    open.insert(key.clone());
    let file = parsed.into_iter().next().expect("file");
    for pair in file.into_inner() {
        if pair.as_rule() == Rule::EOI {
            continue;
        }
        let line = line_of(&text, pair.as_span().start());
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

/// The files an `include` names: a path, or a glob in its last part
/// (`/etc/monit/conf.d/*`), in name order. A relative path is from the
/// including file's directory.
fn expand(from: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
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
fn whole_lines(text: &str, start: usize, end: usize) -> &str {
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
fn value(pair: Pair) -> String {
    match pair.clone().into_inner().next() {
        Some(inner) => inner.as_str().to_string(),
        None => pair.as_str().to_string(),
    }
}

fn number(pair: Option<Pair>) -> u64 {
    pair.and_then(|p| p.as_str().split('.').next()?.parse().ok())
        .unwrap_or(0)
}

fn action(pair: Pair) -> Action {
    let mut inner = pair.clone().into_inner();
    let text = pair.as_str().to_ascii_lowercase();
    let what = text.split_whitespace().next().unwrap_or("").to_string();
    Action {
        what,
        otherwise: inner.any(|p| p.as_rule() == Rule::else_part),
    }
}

fn tolerance(pair: Pair) -> (u64, Option<u64>) {
    let mut numbers = pair.into_inner().filter(|p| p.as_rule() == Rule::number);
    let first = number(numbers.next());
    match numbers.next() {
        Some(cycles) => (first, Some(number(Some(cycles)))),
        None => (first, None),
    }
}

fn tolerance_text((n, m): (u64, Option<u64>)) -> String {
    match m {
        Some(m) => format!("for {n} times within {m} cycles"),
        None => format!("for {n} cycles"),
    }
}

fn clause(pair: Pair) -> Clause {
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
                    Rule::tolerance => t.tolerance = Some(tolerance_text(tolerance(p))),
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
            let measure = inner.next().expect("measure").as_str().to_ascii_lowercase();
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
fn before_port(t: &Test) -> bool {
    t.port.is_none() && t.host.is_none()
}

fn text_of(pair: Option<Pair>) -> String {
    pair.map(|p| p.as_str().to_string()).unwrap_or_default()
}

/// What the items are in: the service being built, a check or setting
/// that is not carried over (its clauses go with it), or nothing yet.
enum Open {
    Nothing,
    Service(usize),
    Skipped,
}

fn convert(items: Vec<Item>, import: &mut Import) {
    let set = items.iter().find_map(|i| match i.clause {
        Clause::SetDaemon(n) if n > 0 => Some(n),
        _ => None,
    });
    let cycle = set.unwrap_or(DEFAULT_CYCLE);
    let counted = items
        .iter()
        .any(|i| matches!(i.clause, Clause::Restarts { .. } | Clause::Resource { .. }));
    match set {
        Some(n) if counted => import.notes.push(format!(
            "Monit's cycles are counted as {n} s (`set daemon {n}`); tend's passes as 5 minutes (cron's)"
        )),
        None if counted => import.notes.push(format!(
            "Monit's cycles are counted as {DEFAULT_CYCLE} s (no `set daemon` in these files; Debian's monitrc says 120); tend's passes as 5 minutes (cron's)"
        )),
        _ => {}
    }
    // Every check's name, and what kind it is, for `depends on`.
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    for i in &items {
        match &i.clause {
            Clause::CheckProcess { name, .. } => {
                kinds.insert(name.clone(), "process".into());
                let id = super::claim(&super::id_of(name), &mut taken);
                ids.entry(name.clone()).or_insert(id);
            }
            Clause::CheckOther { kind, name } => {
                kinds.insert(name.clone(), kind.clone());
            }
            _ => {}
        }
    }
    let mut open = Open::Nothing;
    for item in items {
        let left = |why: &str| Left::new(&item.file, item.line, &item.text, why);
        let draft = match open {
            Open::Service(k) => Some(k),
            _ => None,
        };
        match &item.clause {
            Clause::CheckProcess {
                name,
                pidfile,
                matching,
            } => {
                let from = format!(
                    "{}:{} (check process {name})",
                    item.file.display(),
                    item.line
                );
                let mut d = Draft::new(name, from, &item.file);
                d.id = ids[name].clone();
                if d.id != *name {
                    d.set("name", literal(name));
                }
                d.at = Some(format!("line {}", item.line));
                match (pidfile, matching) {
                    (Some(p), _) => d.set("pidfile", literal(p)),
                    (None, Some(m)) => {
                        // tend's patterns match whole words, so the
                        // boundary a space gave is kept without it.
                        d.set("process", literal(m.trim()));
                        d.notes.push("Monit's `matching` finds its pattern anywhere in a command line; tend's `process` matches whole words (`apache` does not find `apache2`): see what it finds with `tend --dry-run`".into());
                    }
                    (None, None) => {
                        d.set("process", literal(name));
                        d.left.push(left("neither `pidfile` nor `matching`: the process is looked for by the check's name"));
                    }
                }
                import.drafts.push(d);
                open = Open::Service(import.drafts.len() - 1);
            }
            Clause::CheckOther { kind, .. } => {
                let more = match kind.as_str() {
                    "file" | "directory" | "fifo" => "; it notices by itself a process whose binary was replaced (see `restart_on_upgrade`); watch files with a file integrity tool",
                    _ => "; watch hosts, disks and programs with your monitoring",
                };
                import.left.push(left(&format!(
                    "a `check {kind}` is not carried over: tend keeps processes running{more}"
                )));
                open = Open::Skipped;
            }
            Clause::SetDaemon(_) => open = Open::Skipped,
            Clause::SetOther(kind) => {
                let why = match kind.as_str() {
                    "httpd" => "Monit's web interface: tend has none (`tend status` on the host, metrics for a fleet)",
                    "mailserver" | "alert" | "mail-format" => "tend says what happened on its output, which cron mails, and to syslog",
                    "log" | "logfile" => "tend logs to syslog",
                    "idfile" | "statefile" | "pidfile" | "eventqueue" => "Monit's own files: tend keeps its state in /var/lib/tend",
                    _ => "Monit's own setting: nothing to carry over",
                };
                import.left.push(left(why));
                open = Open::Skipped;
            }
            _ if matches!(open, Open::Skipped) => {}
            _ if draft.is_none() => import.left.push(left("outside any `check process`")),
            clause => {
                let d = &mut import.drafts[draft.expect("open service")];
                d.at = Some(if item.file == d.file {
                    format!("line {}", item.line)
                } else {
                    format!("{}:{}", item.file.display(), item.line)
                });
                carry_clause(d, clause, &item, cycle, &kinds, &ids);
            }
        }
    }
    for d in &mut import.drafts {
        finish(d);
    }
    // A service with no way to be brought back is not one tend can keep.
    let (kept, dropped): (Vec<Draft>, Vec<Draft>) = std::mem::take(&mut import.drafts)
        .into_iter()
        .partition(|d| d.has("restart") || d.has("start"));
    for d in dropped {
        import.left.push(Left {
            place: d.from.clone(),
            statement: format!("check process {}", d.id),
            why: "no `start program`: Monit can only watch it; tend needs a way to start it".into(),
        });
        import.left.extend(d.left);
    }
    import.drafts = kept;
}

/// One clause of a `check process`, carried into `d` or reported.
fn carry_clause(
    d: &mut Draft,
    clause: &Clause,
    item: &Item,
    cycle: u64,
    kinds: &HashMap<String, String>,
    ids: &HashMap<String, String>,
) {
    let left = |why: &str| Left::new(&item.file, item.line, &item.text, why);
    match clause {
        Clause::Program {
            kind,
            command,
            run_as,
            timeout,
        } => {
            d.set(kind, literal(command));
            if *run_as {
                d.left.push(left("`as uid`: tend runs commands as its own user (root); use `runuser -u USER -- CMD`"));
            }
            if let Some(t) = timeout {
                d.set("timeout", format!("{t}s"));
            }
        }
        Clause::Restarts { n, cycles, action } => match action.what.as_str() {
            "timeout" | "unmonitor" => {
                let within = cycles.max(&1).saturating_mul(cycle);
                if *n == 0 || *n > 10_000 || within > 30 * 86_400 {
                    d.left.push(left("a restart limit tend cannot keep (at most 10,000 restarts within 30 days)"));
                } else {
                    d.set("limit", format!("{n} restarts within {}", span(within)));
                }
            }
            _ => d.left.push(left(&format!(
                "then {}: tend's limit gives up and says so (it is what `then timeout` does)",
                action.what
            ))),
        },
        Clause::Failed(t) => failed(d, t, &left),
        Clause::Resource {
            measure,
            operator,
            number,
            unit,
            tolerance,
            action,
        } => {
            let then = match action.what.as_str() {
                "restart" => "restart",
                "alert" => "report",
                other => {
                    d.left.push(left(&format!("then {other}: tend restarts or reports")));
                    return;
                }
            };
            if !matches!(operator.as_str(), ">" | ">=" | "gt" | "greater") {
                d.left.push(left("tend's limits are upper bounds (`above`)"));
                return;
            }
            let percent = unit.as_deref() == Some("%");
            let key = if measure.contains("cpu") { "cpu" } else { "memory" };
            if d.has(key) && (key == "cpu" || measure.contains("mem")) {
                d.left.push(left(&format!("a second `{key}` limit: tend takes one per service")));
                return;
            }
            match measure.split_whitespace().next().unwrap_or("") {
                m if m.starts_with("totalmem") || m.starts_with("mem") => {
                    if percent {
                        d.left.push(left("a share of the host's memory: tend's `memory above` takes a size"));
                        return;
                    }
                    let (unit, bytes) = match unit.as_deref() {
                        Some("kb" | "kilobytes") => ("KB", 1u64 << 10),
                        Some("gb" | "gigabytes") => ("GB", 1 << 30),
                        Some("tb") => ("TB", 1 << 40),
                        Some("b" | "byte" | "bytes") => ("B", 1),
                        _ => ("MB", 1 << 20),
                    };
                    let n = number.split('.').next().unwrap_or("0");
                    let fits = n.parse::<u64>().ok().and_then(|n| n.checked_mul(bytes));
                    if unit == "TB" || fits.is_none_or(|b| b == 0) {
                        d.left.push(left("a memory limit tend cannot keep (up to gigabytes)"));
                        return;
                    }
                    d.set("memory", format!("above {n}{unit} then {then}"));
                    if m.starts_with("total") {
                        d.left.push(left("carried as `memory above` of the service's process; Monit's `totalmem` counts its children too"));
                    }
                    if let Some(t) = tolerance {
                        d.left.push(left(&format!("`{}`: tend acts on the first pass above the limit", tolerance_text(*t))));
                    }
                }
                m if m.ends_with("cpu") && percent => {
                    // Cycles become passes (cron's five minutes): at least one.
                    let cycles = match tolerance {
                        Some((n, Some(_))) | Some((n, None)) => *n,
                        None => 1,
                    };
                    let runs = cycles.saturating_mul(cycle).div_ceil(PASS).clamp(1, 1000);
                    let runs = match runs {
                        1 => String::new(),
                        n => format!(" for {n} runs"),
                    };
                    d.set("cpu", format!("above {number}%{runs} then {then}"));
                    if let Some((n, Some(m))) = tolerance {
                        d.left.push(left(&format!("`for {n} times within {m} cycles`: tend counts passes in a row")));
                    }
                    if m == "totalcpu" {
                        d.left.push(left("carried as `cpu above` of the service's process; Monit's `totalcpu` counts its children too"));
                    }
                }
                m => d.left.push(left(&format!("tend has no `{m}` test"))),
            }
        }
        Clause::NotExist(action) => {
            if action.what != "restart" {
                d.left.push(left(&format!(
                    "then {}: tend restarts a service that is not running",
                    action.what
                )));
            }
        }
        Clause::Depends(names) => {
            let mut on: Vec<String> = Vec::new();
            for name in names {
                match (kinds.get(name).map(String::as_str), ids.get(name)) {
                    (Some("process"), Some(id)) => on.push(id.clone()),
                    (Some(kind), _) => d.left.push(left(&format!(
                        "`{name}` is a `check {kind}`, not carried over"
                    ))),
                    (None, _) => d.left.push(left(&format!("no check is called `{name}`"))),
                }
            }
            if !on.is_empty() {
                let mut all: Vec<String> = d
                    .attrs
                    .iter()
                    .find(|(k, _)| k == "depends on")
                    .map(|(_, v)| v.split(", ").map(str::to_string).collect())
                    .unwrap_or_default();
                all.extend(on);
                d.set("depends on", all.join(", "));
            }
        }
        Clause::Group => d.left.push(left(
            "tend has no service groups (`monit -g`); a guard or a policy file per role plays their part",
        )),
        Clause::Mode(mode) if mode == "active" => {}
        Clause::Mode(mode) => d.left.push(left(&format!(
            "mode {mode}: tend restarts what is down (a service it should only watch does not belong in its policy)"
        ))),
        Clause::Every => d.left.push(left("tend checks at every pass; cron sets how often")),
        _ => d.left.push(left("not a test tend import knows")),
    }
}

/// `if failed [host H] port N ...` or `if failed unixsocket PATH ...`.
fn failed(d: &mut Draft, t: &Test, left: &dyn Fn(&str) -> Left) {
    if t.action.what != "restart" {
        d.left.push(left(&format!(
            "then {}: a failed check makes tend restart the service; not carried over",
            t.action.what
        )));
        return;
    }
    if let Some(tol) = &t.tolerance {
        d.left.push(left(&format!(
            "`{tol}`: tend restarts at the first failed check"
        )));
    }
    if t.action.otherwise {
        d.left.push(left(
            "`else if succeeded`: tend says when a service is back by itself",
        ));
    }
    if let Some(path) = &t.socket {
        if d.has("unix") {
            d.left
                .push(left("a second socket: tend checks one per service"));
            return;
        }
        d.set("unix", literal(path));
        if let Some(p) = &t.protocol {
            d.left.push(left(&format!(
                "protocol {p}: tend checks that the socket accepts connections"
            )));
        }
        return;
    }
    if matches!(t.kind.as_deref(), Some(k) if k.eq_ignore_ascii_case("udp")) {
        d.left.push(left("a UDP port: tend's port check is TCP"));
        return;
    }
    let host = match t.host.as_deref() {
        None | Some("localhost") => "127.0.0.1".to_string(),
        Some(h) if h.parse::<std::net::IpAddr>().is_ok() => h.to_string(),
        Some(h) => {
            d.left.push(left(&format!(
                "host {h}: tend connects to addresses only (it never asks DNS)"
            )));
            return;
        }
    };
    let port = t.port.clone().unwrap_or_default();
    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
        d.left.push(left(&format!("{port} is not a TCP port")));
        return;
    }
    let web = matches!(t.protocol.as_deref(), Some("http" | "https"));
    if (web && d.has("http")) || (!web && d.has("port")) {
        d.left.push(left(
            "a second check of this kind: tend checks one per service",
        ));
        return;
    }
    if web {
        let scheme = t.protocol.as_deref().unwrap_or("http");
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let path = t.request.clone().unwrap_or_else(|| "/".into());
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let mut http = literal(&format!("{scheme}://{bracketed}:{port}{path}"));
        match &t.status {
            Some((op, n)) if op == "=" || op == "==" || op.starts_with("eq") => {
                http.push_str(&format!(" status {n}"));
            }
            Some((op, n)) => d.left.push(left(&format!(
                "status {op} {n}: tend checks one status, or any below 400"
            ))),
            None => {}
        }
        if let Some(c) = &t.content {
            http.push_str(&format!(" content {}", literal(c)));
        }
        if let Some(s) = t.timeout {
            http.push_str(&format!(" timeout {s}s"));
        }
        if let Some(h) = &t.hostheader {
            http.push_str(&format!(" host {}", literal(h)));
        }
        if scheme == "https" {
            d.left.push(left("https: checked against this host's trusted authorities (add `insecure` for a self-signed certificate)"));
        }
        d.set("http", http);
        return;
    }
    let mut check = port.clone();
    match t.protocol.as_deref() {
        None | Some("default" | "generic") => {}
        Some(p) => match speaks(p) {
            Some(talk) => check.push_str(talk),
            None => d.left.push(left(&format!(
                "protocol {p}: tend checks that the port accepts connections"
            ))),
        },
    }
    d.set("port", check);
    if host != "127.0.0.1" {
        d.set("host", host);
    }
    if let Some(s) = t.timeout {
        d.set("connect_timeout", format!("{s}s"));
    }
}

/// What a line protocol's server says first, or answers to a word: the
/// `send`/`expect` that checks it speaks.
fn speaks(protocol: &str) -> Option<&'static str> {
    Some(match protocol {
        "ssh" => r#" expect "^SSH-""#,
        "smtp" | "ftp" => r#" expect "^220""#,
        "pop" => r#" expect "^\+OK""#,
        "imap" => r#" expect "^\* OK""#,
        "redis" => r#" send "PING\r\n" expect "^\+PONG""#,
        "memcache" => r#" send "version\r\n" expect "^VERSION ""#,
        _ => return None,
    })
}

/// What a draft needs to be a valid tend service: a check of a running
/// process needs `restart`, or `stop` and `start`.
fn finish(d: &mut Draft) {
    if d.has("restart") || d.has("stop") || !d.has("start") {
        return;
    }
    let checks = ["port", "unix", "http", "memory", "cpu"];
    let (dropped, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut d.attrs)
        .into_iter()
        .partition(|(k, v)| checks.contains(&k.as_str()) && !v.ends_with("then report"));
    d.attrs = kept;
    for (k, v) in dropped {
        d.left.push(Left {
            place: d.from.clone(),
            statement: format!("{k} {v}"),
            why:
                "no `stop program` or `restart program` to act on a process that runs but fails it"
                    .into(),
        });
    }
}

/// `600` -> `10m`
fn span(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One check, its clauses: what tend import writes, and how many
    /// statements it reports.
    #[test]
    fn clauses_table() {
        let dir = tempfile::tempdir().unwrap();
        for (text, want, left) in [
            (
                "check process sshd with pidfile /run/sshd.pid\n start program = \"/etc/init.d/ssh start\"\n stop program = \"/etc/init.d/ssh stop\"\n if failed host localhost port 22 with proto ssh then restart\n if 5 restarts with 5 cycles then timeout",
                vec![
                    ("pidfile", "\"/run/sshd.pid\""),
                    ("start", "\"/etc/init.d/ssh start\""),
                    ("stop", "\"/etc/init.d/ssh stop\""),
                    ("port", "22 expect \"^SSH-\""),
                    ("limit", "5 restarts within 10m"),
                ],
                0,
            ),
            (
                "set daemon 60\nCHECK PROCESS web MATCHING \"^/usr/sbin/apache2\"\n  START PROGRAM = \"/usr/sbin/apachectl start\" with timeout 90 seconds\n  RESTART PROGRAM = '/usr/sbin/apachectl graceful'\n  IF FAILED PORT 80 PROTOCOL HTTP REQUEST \"/health\" STATUS = 200 CONTENT = \"ok\" THEN RESTART\n  if totalmem > 512 MB for 3 cycles then alert\n  if cpu > 90% for 10 cycles then restart\n  if 3 restarts within 10 cycles then unmonitor",
                vec![
                    ("process", "\"^/usr/sbin/apache2\""),
                    ("start", "\"/usr/sbin/apachectl start\""),
                    ("timeout", "90s"),
                    ("restart", "\"/usr/sbin/apachectl graceful\""),
                    ("http", "\"http://127.0.0.1:80/health\" status 200 content \"ok\""),
                    ("memory", "above 512MB then report"),
                    ("cpu", "above 90% for 2 runs then restart"),
                    ("limit", "3 restarts within 10m"),
                ],
                2,
            ),
            (
                "check process m with pidfile /run/m.pid\n start program = \"/bin/m\" as uid nobody\n restart program = \"/bin/m -r\"\n if failed unixsocket /run/m.sock then restart\n if failed port 161 type udp then restart\n if failed host db.example.org port 5432 then restart\n if changed pid then alert\n group db",
                vec![
                    ("pidfile", "\"/run/m.pid\""),
                    ("start", "\"/bin/m\""),
                    ("restart", "\"/bin/m -r\""),
                    ("unix", "\"/run/m.sock\""),
                ],
                5,
            ),
        ] {
            let path = dir.path().join("monitrc");
            std::fs::write(&path, text).unwrap();
            let import = import(&[path]).unwrap();
            assert_eq!(import.drafts.len(), 1, "{text}");
            let got: Vec<(&str, &str)> = import.drafts[0]
                .attrs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, want, "{text}");
            assert_eq!(import.all_left().len(), left, "{text}: {:?}", import.all_left());
        }
    }

    #[test]
    fn span_table() {
        for (s, want) in [(600, "10m"), (7200, "2h"), (90, "90s")] {
            assert_eq!(span(s), want);
        }
    }
}
