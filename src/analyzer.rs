//! Checks what the policy means, once it is known to be well formed.
//!
//! The parser accepts any attribute with any words after it; here each
//! service is checked against the attributes the language knows, values are
//! read as the right type (durations, yes/no, regular expressions), required
//! attributes are required, ids are unique across all files, class
//! definitions name known functions and do not depend on themselves. Every
//! problem is collected, not only the first.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::decide::Limits;
use crate::diagnostic::{Diagnostic, FileId, Sources, Span};
use crate::matcher;
use crate::parser::{Attribute, Expr, Item, Value, ValueKind};
use crate::policy::{
    Action, ClassDef, Command, Connect, CpuLimit, MemoryLimit, Service, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_GRACE, DEFAULT_LIMITS, DEFAULT_TIMEOUT, LOCALHOST,
};

/// Attributes a service may have, in the order the docs list them.
pub const ATTRIBUTES: &[&str] = &[
    "name",
    "process",
    "exe",
    "pidfile",
    "user",
    "count",
    "port",
    "host",
    "unix",
    "connect_timeout",
    "memory",
    "cpu",
    "restart",
    "start",
    "stop",
    "depends",
    "shell",
    "timeout",
    "grace",
    "limit",
    "remind",
    "defer_limit",
    "restart_on_upgrade",
];

/// Attributes a `defaults` block may set for every service.
pub const DEFAULT_ATTRIBUTES: &[&str] = &[
    "timeout",
    "grace",
    "limit",
    "remind",
    "defer_limit",
    "restart_on_upgrade",
];

/// Settings every service starts from.
#[derive(Debug, Clone, Copy)]
struct Defaults {
    timeout: Duration,
    grace: Duration,
    limits: Limits,
    restart_on_upgrade: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: DEFAULT_TIMEOUT,
            grace: DEFAULT_GRACE,
            limits: DEFAULT_LIMITS,
            restart_on_upgrade: false,
        }
    }
}

/// Functions a class expression may call.
pub const FUNCTIONS: &[&str] = &["hostname"];

/// No wait in a pass is longer than a day: cron starts the next one long
/// before, and a longer one is surely a typo.
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

type Errors = Vec<Diagnostic>;

pub fn analyze(
    sources: &Sources,
    files: &[(FileId, Vec<Item>)],
) -> (Vec<ClassDef>, Vec<Service>, Errors) {
    let mut errors = Vec::new();
    let mut classes: Vec<ClassDef> = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    let mut class_at: HashMap<String, Span> = HashMap::new();
    let mut service_at: HashMap<String, Span> = HashMap::new();
    let defaults = defaults(sources, files, &mut errors);

    for (_, items) in files {
        // Every file starts under `any::`.
        let mut guard: Option<Expr> = None;
        for item in items {
            match item {
                Item::ClassDef { name, expr } => {
                    check_expr(expr, &mut errors);
                    if let Some(first) = class_at.get(&name.text) {
                        errors.push(Diagnostic::error(
                            name.span,
                            format!(
                                "class `{}` is already defined at {}",
                                name.text,
                                sources.locate(*first)
                            ),
                        ));
                        continue;
                    }
                    class_at.insert(name.text.clone(), name.span);
                    classes.push(ClassDef {
                        name: name.text.clone(),
                        expr: expr.clone(),
                        span: name.span,
                    });
                }
                Item::Guard(expr) => {
                    check_expr(expr, &mut errors);
                    guard = match expr {
                        Expr::Class(c) if c.text == "any" => None,
                        _ => Some(expr.clone()),
                    };
                }
                Item::Defaults { .. } => {}
                Item::Service { id, attributes } => {
                    let service = service(
                        &id.text,
                        id.span,
                        attributes,
                        &guard,
                        &defaults,
                        &mut errors,
                    );
                    if let Some(first) = service_at.get(&id.text) {
                        errors.push(Diagnostic::error(
                            id.span,
                            format!(
                                "service `{}` is already defined at {}",
                                id.text,
                                sources.locate(*first)
                            ),
                        ));
                        continue;
                    }
                    service_at.insert(id.text.clone(), id.span);
                    if let Some(s) = service {
                        services.push(s);
                    }
                }
            }
        }
    }
    check_class_cycles(&classes, &mut errors);
    check_dependencies(&services, &service_at, &mut errors);
    (classes, services, errors)
}

/// Every dependency names a service of the policy, and none leads back to
/// the service itself.
fn check_dependencies(services: &[Service], known: &HashMap<String, Span>, errors: &mut Errors) {
    let by_id: HashMap<&str, &Service> = services.iter().map(|s| (s.id.as_str(), s)).collect();
    for s in services {
        for (dep, span) in &s.depends {
            if !known.contains_key(dep) {
                errors.push(Diagnostic::error(
                    *span,
                    format!("`{}` depends on `{dep}`, which is not a service", s.id),
                ));
            }
        }
        // Depth-first from s, remembering the path to report the cycle.
        let mut stack: Vec<(&str, Vec<&str>)> = s
            .depends
            .iter()
            .map(|(d, _)| (d.as_str(), vec![s.id.as_str(), d.as_str()]))
            .collect();
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some((id, path)) = stack.pop() {
            if id == s.id {
                errors.push(Diagnostic::error(
                    s.depends[0].1,
                    format!("dependency cycle: {}", path.join(" -> ")),
                ));
                break;
            }
            if !seen.insert(id) {
                continue;
            }
            if let Some(next) = by_id.get(id) {
                for (d, _) in &next.depends {
                    let mut p = path.clone();
                    p.push(d);
                    stack.push((d, p));
                }
            }
        }
    }
}

/// `depends on ID, ID ...`: the ids, each with its position.
fn depends_on(a: &Attribute) -> Result<Vec<(String, Span)>, Diagnostic> {
    let bad = || {
        Diagnostic::error(
            values_span(a),
            "`depends` is written `depends on ID, ID ...`",
        )
    };
    let (first, rest) = a.values.split_first().ok_or_else(bad)?;
    if first.text != "on" || first.kind != ValueKind::Word || rest.is_empty() {
        return Err(bad());
    }
    let mut ids = Vec::new();
    for v in rest {
        let mut offset = 0;
        for part in v.text.split(',') {
            let start = v.span.start + offset;
            offset += part.len() + 1;
            if part.is_empty() {
                continue;
            }
            let span = Span::new(v.span.file, start, start + part.len());
            if !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            {
                return Err(Diagnostic::error(
                    span,
                    format!("`{part}` is not a service id"),
                ));
            }
            ids.push((part.to_string(), span));
        }
    }
    if ids.is_empty() {
        return Err(bad());
    }
    Ok(ids)
}

/// The one `defaults` block of the policy, if any, applies to every service
/// wherever it stands.
fn defaults(sources: &Sources, files: &[(FileId, Vec<Item>)], errors: &mut Errors) -> Defaults {
    let mut defaults = Defaults::default();
    let mut first: Option<Span> = None;
    for (_, items) in files {
        for item in items {
            let Item::Defaults { span, attributes } = item else {
                continue;
            };
            if let Some(first) = first {
                errors.push(Diagnostic::error(
                    Span::new(span.file, span.start, span.start + "defaults".len()),
                    format!("`defaults` is already given at {}", sources.locate(first)),
                ));
                continue;
            }
            first = Some(*span);
            let unknown = |key: &str| {
                format!(
                    "`defaults` sets {}, not `{key}`",
                    DEFAULT_ATTRIBUTES.join(", ")
                )
            };
            for a in known_once(
                attributes,
                DEFAULT_ATTRIBUTES,
                unknown,
                "`defaults`",
                errors,
            ) {
                if let Err(e) = setting(a, &mut defaults) {
                    errors.push(e);
                }
            }
        }
    }
    defaults
}

/// The known word nearest a misspelt one, if it is near enough.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// The attributes of a block that are known and given once; each other one
/// is an error.
fn known_once<'a>(
    attributes: &'a [Attribute],
    known: &[&str],
    unknown: impl Fn(&str) -> String,
    block: &str,
    errors: &mut Errors,
) -> Vec<&'a Attribute> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut good = Vec::new();
    for a in attributes {
        let key = a.key.text.as_str();
        if !known.contains(&key) {
            errors.push(Diagnostic::error(a.key.span, unknown(key)));
        } else if !seen.insert(key) {
            errors.push(Diagnostic::error(
                a.key.span,
                format!("`{key}` is given twice in {block}"),
            ));
        } else {
            good.push(a);
        }
    }
    good
}

/// Applies one of the attributes a `defaults` block and a service share.
fn setting(a: &Attribute, to: &mut Defaults) -> Result<(), Diagnostic> {
    match a.key.text.as_str() {
        "timeout" => to.timeout = at_least_one_second(duration(a)?, a)?,
        "grace" => to.grace = duration(a)?,
        "limit" => {
            let (restarts, within) = limit(a)?;
            to.limits.restarts = restarts;
            to.limits.within = within;
        }
        "defer_limit" => to.limits.defer = duration(a)?.as_secs() as i64,
        "restart_on_upgrade" => to.restart_on_upgrade = yes_no(a)?,
        _ => to.limits.remind = remind(a)?,
    }
    Ok(())
}

/// `limit N restarts within DURATION`
fn limit(a: &Attribute) -> Result<(usize, i64), Diagnostic> {
    let bad = || {
        Diagnostic::error(
            values_span(a),
            "`limit` is written `limit N restarts within DURATION`, e.g. `limit 3 restarts within 30 min`",
        )
    };
    let words: Vec<&str> = a.values.iter().map(|v| v.text.as_str()).collect();
    if a.values.len() < 4 || a.values.iter().any(|v| v.kind == ValueKind::Quoted) {
        return Err(bad());
    }
    if !matches!(words[1], "restarts" | "restart") || words[2] != "within" {
        return Err(bad());
    }
    let n: usize = words[0].parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(Diagnostic::error(
            a.values[0].span,
            "`limit` needs at least 1 restart",
        ));
    }
    let within = parse_duration(&a.values[3..]).ok_or_else(bad)?;
    if within.is_zero() || within > MAX_DURATION || a.values.len() > 5 {
        return Err(bad());
    }
    Ok((n, within.as_secs() as i64))
}

/// `remind DURATION` or `remind never`
fn remind(a: &Attribute) -> Result<Option<i64>, Diagnostic> {
    if a.values.len() == 1 && a.values[0].text == "never" && a.values[0].kind == ValueKind::Word {
        return Ok(None);
    }
    let d = parse_duration(&a.values)
        .filter(|d| {
            !d.is_zero()
                && a.values.len() <= 2
                && a.values.iter().all(|v| v.kind == ValueKind::Word)
        })
        .ok_or_else(|| {
            Diagnostic::error(
                values_span(a),
                "`remind` needs a duration such as 6h, or `never`",
            )
        })?;
    Ok(Some(d.as_secs() as i64))
}

fn service(
    id: &str,
    span: Span,
    attributes: &[Attribute],
    guard: &Option<Expr>,
    defaults: &Defaults,
    errors: &mut Errors,
) -> Option<Service> {
    let before = errors.len();
    let mut name = None;
    let mut process = None;
    let mut exe = None;
    let mut pidfile = None;
    let mut user = None;
    let mut count = (1, None);
    let mut depends = Vec::new();
    let mut memory = None;
    let mut cpu = None;
    let mut port = None;
    let mut host = None;
    let mut unix = None;
    let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut commands: [Option<String>; 3] = [None, None, None];
    let mut shell = false;
    let mut settings = *defaults;
    let unknown = |key: &str| match closest(key, ATTRIBUTES) {
        Some(near) => format!("unknown attribute `{key}`; did you mean `{near}`?"),
        None => format!("unknown attribute `{key}`; the attributes are listed in docs/language.md"),
    };
    let good = known_once(
        attributes,
        ATTRIBUTES,
        unknown,
        &format!("service `{id}`"),
        errors,
    );
    for a in &good {
        let key = a.key.text.as_str();
        let result = match key {
            "name" => one_string(a).map(|s| name = Some(s)),
            "process" => one_string(a).and_then(|s| check_regex(&s, a).map(|()| process = Some(s))),
            "exe" => absolute_path(a).map(|p| exe = Some(p)),
            "pidfile" => absolute_path(a).map(|p| pidfile = Some(PathBuf::from(p))),
            "user" => user_name(a).map(|u| user = Some(u)),
            "count" => count_range(a).map(|c| count = c),
            "port" => port_number(a).map(|p| port = Some(p)),
            "host" => ip_address(a).map(|h| host = Some(h)),
            "unix" => absolute_path(a).map(|p| unix = Some(PathBuf::from(p))),
            "connect_timeout" => duration(a)
                .and_then(|d| at_least_one_second(d, a))
                .map(|d| connect_timeout = d),
            "restart" => one_string(a).map(|s| commands[0] = Some(s)),
            "start" => one_string(a).map(|s| commands[1] = Some(s)),
            "stop" => one_string(a).map(|s| commands[2] = Some(s)),
            "depends" => depends_on(a).map(|d| depends = d),
            "memory" => memory_limit(a).map(|m| memory = Some(m)),
            "cpu" => cpu_limit(a).map(|c| cpu = Some(c)),
            "shell" => yes_no(a).map(|b| shell = b),
            _ => setting(a, &mut settings),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    let has = |key: &str| good.iter().any(|a| a.key.text == key);
    if !has("process") && !has("exe") && !has("pidfile") {
        errors.push(Diagnostic::error(
            span,
            format!("service `{id}` has no `process` (or `exe`, or `pidfile`)"),
        ));
    }
    if !has("restart") && !has("start") {
        errors.push(Diagnostic::error(
            span,
            format!("service `{id}` has no `restart` (or `start`)"),
        ));
    }
    // A check of a running process needs a way to act on one.
    let restarts_on = |key: &str| match key {
        "memory" => memory.is_some_and(|m: MemoryLimit| m.action == Action::Restart),
        "cpu" => cpu.is_some_and(|c: CpuLimit| c.action == Action::Restart),
        _ => true,
    };
    for key in ["port", "unix", "memory", "cpu"] {
        if let Some(a) = good.iter().find(|a| a.key.text == key) {
            if !has("restart") && !has("stop") && restarts_on(key) {
                errors.push(Diagnostic::error(
                    a.key.span,
                    format!("`{key}` needs `restart`, or `stop` and `start`, to act on a process that runs but fails a check"),
                ));
            }
        }
    }
    if let Some(a) = good.iter().find(|a| a.key.text == "host") {
        if !has("port") {
            errors.push(Diagnostic::error(a.key.span, "`host` goes with `port`"));
        }
    }
    let [restart, start, stop] = [("restart", 0), ("start", 1), ("stop", 2)].map(|(key, i)| {
        match commands[i]
            .take()
            .map(|text| command(key, text, shell, attributes))
        {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            None => None,
        }
    });
    if errors.len() > before {
        return None;
    }
    Some(Service {
        id: id.to_string(),
        name: name.unwrap_or_else(|| id.to_string()),
        process,
        exe,
        pidfile,
        user,
        count,
        connect: Connect {
            tcp: port.map(|p| std::net::SocketAddr::new(host.unwrap_or(LOCALHOST), p)),
            unix,
            timeout: connect_timeout,
        },
        restart,
        start,
        stop,
        depends,
        memory,
        cpu,
        timeout: settings.timeout,
        grace: settings.grace,
        limits: settings.limits,
        restart_on_upgrade: settings.restart_on_upgrade,
        guard: guard.clone(),
        span,
    })
}

fn command(
    key: &str,
    text: String,
    shell: bool,
    attributes: &[Attribute],
) -> Result<Command, Diagnostic> {
    let at = attributes
        .iter()
        .find(|a| a.key.text == key)
        .map(|a| a.values[0].span)
        .expect("the command was seen");
    let argv = if shell {
        vec!["/bin/sh".to_string(), "-c".to_string(), text.clone()]
    } else {
        shell_words::split(&text).map_err(|_| {
            Diagnostic::error(
                at,
                "unbalanced quotes in command (or set `shell yes` to run it with /bin/sh)",
            )
        })?
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(Diagnostic::error(at, "empty command"));
    }
    Ok(Command { text, argv })
}

fn values_span(a: &Attribute) -> Span {
    match (a.values.first(), a.values.last()) {
        (Some(f), Some(l)) => Span::new(f.span.file, f.span.start, l.span.end),
        _ => Span::new(a.key.span.file, a.key.span.end, a.key.span.end),
    }
}

fn one_value<'a>(a: &'a Attribute, what: &str) -> Result<&'a Value, Diagnostic> {
    match a.values.as_slice() {
        [v] => Ok(v),
        [] => Err(Diagnostic::error(
            values_span(a),
            format!("`{}` needs {what}", a.key.text),
        )),
        [_, extra, ..] => Err(Diagnostic::error(
            extra.span,
            format!(
                "`{}` takes one value, {what}; quote it if it has spaces",
                a.key.text
            ),
        )),
    }
}

fn one_string(a: &Attribute) -> Result<String, Diagnostic> {
    let v = one_value(a, "a quoted string")?;
    if v.kind != ValueKind::Quoted {
        return Err(Diagnostic::error(
            v.span,
            format!("`{}` needs a quoted string", a.key.text),
        ));
    }
    Ok(v.text.clone())
}

/// `... [then restart|report]` at the end of a resource check: the action,
/// and the values before it.
fn action<'a>(a: &'a Attribute, usage: &str) -> Result<(&'a [Value], Action), Diagnostic> {
    let values = a.values.as_slice();
    let bad = || {
        Diagnostic::error(
            values_span(a),
            format!("`{}` is written `{usage}`", a.key.text),
        )
    };
    if values.iter().any(|v| v.kind != ValueKind::Word) {
        return Err(bad());
    }
    match values {
        [rest @ .., then, act] if then.text == "then" => match act.text.as_str() {
            "restart" => Ok((rest, Action::Restart)),
            "report" => Ok((rest, Action::Report)),
            _ => Err(Diagnostic::error(
                act.span,
                "after `then` comes `restart` or `report`",
            )),
        },
        _ => Ok((values, Action::Restart)),
    }
}

/// `memory above SIZE [then restart|report]`; sizes in B, KB, MB, GB
/// (powers of 1024, as ps and top count).
fn memory_limit(a: &Attribute) -> Result<MemoryLimit, Diagnostic> {
    const USAGE: &str = "memory above SIZE [then restart|report]`, e.g. `memory above 500MB";
    let (values, action) = action(a, USAGE)?;
    let bad = || Diagnostic::error(values_span(a), format!("`memory` is written `{USAGE}`"));
    let (above, size) = values.split_first().ok_or_else(bad)?;
    if above.text != "above" || size.is_empty() || size.len() > 2 {
        return Err(bad());
    }
    let text: String = size.iter().map(|v| v.text.as_str()).collect();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit: u64 = match text[digits..].to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(unit).filter(|&b| b > 0).ok_or_else(bad)?;
    Ok(MemoryLimit { bytes, action })
}

/// `cpu above PERCENT [for N runs] [then restart|report]`.
fn cpu_limit(a: &Attribute) -> Result<CpuLimit, Diagnostic> {
    const USAGE: &str =
        "cpu above PERCENT [for N runs] [then restart|report]`, e.g. `cpu above 90% for 3 runs";
    let (values, action) = action(a, USAGE)?;
    let bad = || Diagnostic::error(values_span(a), format!("`cpu` is written `{USAGE}`"));
    let words: Vec<&str> = values.iter().map(|v| v.text.as_str()).collect();
    let (percent, runs) = match words.as_slice() {
        ["above", p] => (*p, "1"),
        ["above", p, "for", n, "runs" | "run"] => (*p, *n),
        _ => return Err(bad()),
    };
    let percent: f64 = percent
        .trim_end_matches('%')
        .parse()
        .ok()
        .filter(|p: &f64| *p > 0.0 && p.is_finite())
        .ok_or_else(bad)?;
    let runs: u32 = runs.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
    Ok(CpuLimit {
        percent,
        runs,
        action,
    })
}

/// `port N`: 1 to 65535.
fn port_number(a: &Attribute) -> Result<u16, Diagnostic> {
    let v = one_value(a, "a port number")?;
    v.text
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0 && v.kind == ValueKind::Word)
        .ok_or_else(|| Diagnostic::error(v.span, "`port` needs a port number, 1 to 65535"))
}

/// `host ADDRESS`: an IP address; never a name (a pass must not wait on DNS).
fn ip_address(a: &Attribute) -> Result<std::net::IpAddr, Diagnostic> {
    let v = one_value(a, "an IP address")?;
    v.text.parse().map_err(|_| {
        Diagnostic::error(
            v.span,
            "`host` needs an IP address such as 127.0.0.1 or ::1 (tend never asks DNS)",
        )
    })
}

/// A quoted absolute path.
fn absolute_path(a: &Attribute) -> Result<String, Diagnostic> {
    let text = one_string(a)?;
    if !text.starts_with('/') {
        return Err(Diagnostic::error(
            a.values[0].span,
            format!("`{}` needs an absolute path", a.key.text),
        ));
    }
    Ok(text)
}

/// A user name or numeric uid, as a word or a string. Whether it exists is
/// a matter of the host, looked up in each pass.
fn user_name(a: &Attribute) -> Result<String, Diagnostic> {
    let v = one_value(a, "a user name")?;
    let ok = !v.text.is_empty()
        && v.text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if !ok {
        return Err(Diagnostic::error(v.span, "`user` needs a user name or uid"));
    }
    Ok(v.text.clone())
}

/// `count N` (exactly N), `count N..M`, `count N..` (at least N).
fn count_range(a: &Attribute) -> Result<(usize, Option<usize>), Diagnostic> {
    let v = one_value(a, "a number or a range such as 1..40")?;
    let bad = || {
        Diagnostic::error(
            v.span,
            "`count` is a number or a range such as 1..40 or 2.. (at least 1)",
        )
    };
    if v.kind == ValueKind::Quoted {
        return Err(bad());
    }
    let (min, max) = match v.text.split_once("..") {
        None => {
            let n: usize = v.text.parse().map_err(|_| bad())?;
            (n, Some(n))
        }
        Some((lo, "")) => (lo.parse().map_err(|_| bad())?, None),
        Some((lo, hi)) => (
            lo.parse().map_err(|_| bad())?,
            Some(hi.parse().map_err(|_| bad())?),
        ),
    };
    if min == 0 || max.is_some_and(|m| m < min) {
        return Err(bad());
    }
    Ok((min, max))
}

fn yes_no(a: &Attribute) -> Result<bool, Diagnostic> {
    let v = one_value(a, "yes or no")?;
    match v.text.as_str() {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(Diagnostic::error(
            v.span,
            format!("`{}` is yes or no", a.key.text),
        )),
    }
}

/// Parsing is enough to know a pattern is valid; compiling every pattern
/// here would cost more than the pass that uses them.
fn check_regex(pattern: &str, a: &Attribute) -> Result<(), Diagnostic> {
    let parse = |p: &str| {
        regex_syntax::Parser::new()
            .parse(p)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    parse(pattern)
        .and_then(|()| parse(&matcher::whole_words(pattern)))
        .map_err(|detail| {
            let last = detail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid");
            Diagnostic::error(
                a.values[0].span,
                format!(
                    "bad regular expression: {}",
                    last.trim().trim_start_matches("error: ")
                ),
            )
        })
}

/// `60`, `60s`, `5m`, `5 min`, `1h`, `2 days`.
pub fn parse_duration(values: &[Value]) -> Option<Duration> {
    let text: String = values
        .iter()
        .map(|v| v.text.as_str())
        .collect::<Vec<_>>()
        .join("");
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let unit = match &text[digits..] {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        _ => return None,
    };
    n.checked_mul(unit).map(Duration::from_secs)
}

fn duration(a: &Attribute) -> Result<Duration, Diagnostic> {
    let bad = || {
        Diagnostic::error(
            values_span(a),
            format!("`{}` needs a duration such as 30s, 5m or 1h", a.key.text),
        )
    };
    if a.values.is_empty()
        || a.values.len() > 2
        || a.values.iter().any(|v| v.kind == ValueKind::Quoted)
    {
        return Err(bad());
    }
    let d = parse_duration(&a.values).ok_or_else(bad)?;
    if d > MAX_DURATION {
        return Err(Diagnostic::error(
            values_span(a),
            format!("`{}` is at most 24h", a.key.text),
        ));
    }
    Ok(d)
}

fn at_least_one_second(d: Duration, a: &Attribute) -> Result<Duration, Diagnostic> {
    if d.is_zero() {
        return Err(Diagnostic::error(
            values_span(a),
            format!("`{}` must be at least 1s", a.key.text),
        ));
    }
    Ok(d)
}

fn check_expr(expr: &Expr, errors: &mut Errors) {
    match expr {
        Expr::Class(_) => {}
        Expr::Call { name, arg } => {
            if !FUNCTIONS.contains(&name.text.as_str()) {
                errors.push(Diagnostic::error(
                    name.span,
                    format!(
                        "unknown function `{}`; known: {}",
                        name.text,
                        FUNCTIONS.join(", ")
                    ),
                ));
            } else if let Err(e) = globset::Glob::new(&arg.text) {
                errors.push(Diagnostic::error(
                    arg.span,
                    format!("bad pattern: {}", e.kind()),
                ));
            }
        }
        Expr::Not(e) => check_expr(e, errors),
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| check_expr(e, errors)),
    }
}

/// A class defined in terms of itself, directly or through others, has no
/// meaning.
fn check_class_cycles(classes: &[ClassDef], errors: &mut Errors) {
    let by_name: HashMap<&str, &ClassDef> = classes.iter().map(|c| (c.name.as_str(), c)).collect();
    for start in classes {
        let mut stack: Vec<&str> = Vec::new();
        references(&start.expr, &mut stack);
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some(name) = stack.pop() {
            if name == start.name {
                errors.push(Diagnostic::error(
                    start.span,
                    format!("class `{}` depends on itself", start.name),
                ));
                break;
            }
            if seen.insert(name) {
                if let Some(def) = by_name.get(name) {
                    references(&def.expr, &mut stack);
                }
            }
        }
    }
}

/// What a policy's author most likely got wrong though the policy is valid
/// (for `tend validate`): a guard naming a class that nothing defines and
/// that is not a built-in class, and a service whose guard no host can
/// satisfy. Duplicate ids, in one file or across files, are errors.
pub fn warnings(policy: &crate::policy::Policy) -> Vec<Diagnostic> {
    let defined: Vec<&str> = policy.classes.iter().map(|c| c.name.as_str()).collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let guards = policy.services.iter().filter_map(|s| s.guard.as_ref());
    let definitions = policy.classes.iter().map(|c| &c.expr);
    for expr in guards.chain(definitions) {
        let mut names = Vec::new();
        spanned_classes(expr, &mut names);
        for c in names {
            if defined.contains(&c.text.as_str())
                || crate::classes::built_in_shape(&c.text)
                || !seen.insert((c.span.file, c.span.start))
            {
                continue;
            }
            let hint = match closest(&c.text, &defined) {
                Some(near) => format!("; did you mean `{near}`?"),
                None => format!(
                    "; a host name? write hostname(\"{}\") to say so, or define it with -D",
                    c.text
                ),
            };
            out.push(Diagnostic::warning(
                c.span,
                format!(
                    "class `{}` is never defined by the policy and is not a built-in class{hint}",
                    c.text
                ),
            ));
        }
    }
    for s in &policy.services {
        let Some(guard) = &s.guard else { continue };
        if !satisfiable(guard, &policy.classes) {
            out.push(Diagnostic::warning(
                s.span,
                format!(
                    "service `{}` can never apply: no host's classes satisfy its guard `{guard}::`",
                    s.id
                ),
            ));
        }
    }
    out.sort_by_key(|d| (d.span.file, d.span.start));
    out
}

fn spanned_classes<'a>(expr: &'a Expr, out: &mut Vec<&'a crate::parser::Spanned>) {
    match expr {
        Expr::Class(c) => out.push(c),
        Expr::Call { .. } => {}
        Expr::Not(e) => spanned_classes(e, out),
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| spanned_classes(e, out)),
    }
}

/// Whether some host could satisfy `guard`: the policy's classes are
/// replaced by their definitions, then every way of setting the remaining
/// classes and hostname() calls is tried (up to 16 of them; more is assumed
/// satisfiable).
fn satisfiable(guard: &Expr, classes: &[ClassDef]) -> bool {
    fn atoms(e: &Expr, classes: &[ClassDef], depth: usize, out: &mut Vec<String>) {
        match e {
            Expr::Class(c) => match classes.iter().find(|d| d.name == c.text) {
                Some(d) if depth < 32 => atoms(&d.expr, classes, depth + 1, out),
                _ => {
                    if !out.contains(&c.text) {
                        out.push(c.text.clone())
                    }
                }
            },
            Expr::Call { .. } => {
                let key = e.to_string();
                if !out.contains(&key) {
                    out.push(key);
                }
            }
            Expr::Not(e) => atoms(e, classes, depth, out),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| atoms(e, classes, depth, out)),
        }
    }
    fn eval(e: &Expr, classes: &[ClassDef], depth: usize, atoms: &[String], bits: u32) -> bool {
        let atom = |key: &str| {
            atoms
                .iter()
                .position(|a| a == key)
                .is_some_and(|i| bits >> i & 1 == 1)
        };
        match e {
            Expr::Class(c) => match classes.iter().find(|d| d.name == c.text) {
                Some(d) if depth < 32 => eval(&d.expr, classes, depth + 1, atoms, bits),
                _ => atom(&c.text),
            },
            Expr::Call { .. } => atom(&e.to_string()),
            Expr::Not(e) => !eval(e, classes, depth, atoms, bits),
            Expr::And(v) => v.iter().all(|e| eval(e, classes, depth, atoms, bits)),
            Expr::Or(v) => v.iter().any(|e| eval(e, classes, depth, atoms, bits)),
        }
    }
    let mut names = Vec::new();
    atoms(guard, classes, 0, &mut names);
    if names.len() > 16 {
        return true;
    }
    (0..1u32 << names.len()).any(|bits| eval(guard, classes, 0, &names, bits))
}

fn references<'a>(expr: &'a Expr, out: &mut Vec<&'a str>) {
    match expr {
        Expr::Class(c) => out.push(&c.text),
        Expr::Call { .. } => {}
        Expr::Not(e) => references(e, out),
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| references(e, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Value;

    fn words(text: &str) -> Vec<Value> {
        text.split(' ')
            .map(|w| Value {
                kind: ValueKind::Word,
                text: w.to_string(),
                span: Span::new(0, 0, 0),
            })
            .collect()
    }

    #[test]
    fn duration_table() {
        for (text, want) in [
            ("60", Some(60)),
            ("60s", Some(60)),
            ("5m", Some(300)),
            ("5 min", Some(300)),
            ("1h", Some(3600)),
            ("2 days", Some(172_800)),
            ("0", Some(0)),
            ("soon", None),
            ("5 parsecs", None),
            ("-1", None),
            ("1.5h", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(
                parse_duration(&words(text)),
                want.map(Duration::from_secs),
                "{text}"
            );
        }
    }

    fn analyze_text(policy: &str) -> (Vec<Service>, Vec<String>) {
        let mut sources = Sources::default();
        sources.add(std::path::Path::new("p.tend"), policy.to_string());
        let (items, syntax) = crate::parser::parse(0, policy);
        assert!(syntax.is_empty(), "{policy}: {syntax:?}");
        let (_, services, errors) = analyze(&sources, &[(0, items)]);
        (services, errors.into_iter().map(|e| e.message).collect())
    }

    #[test]
    fn warning_table() {
        for (policy, want) in [
            ("web::\nservice a { process \"a\"; restart \"r\" }", vec![
                "class `web` is never defined by the policy and is not a built-in class; a host name? write hostname(\"web\") to say so, or define it with -D",
            ]),
            ("class web = www1\nwbe::\nservice a { process \"a\"; restart \"r\" }", vec![
                "class `wbe` is never defined by the policy and is not a built-in class; did you mean `web`?",
            ]),
            // Built-in shapes, defined classes, host names with digits: quiet.
            ("class web = www1 | gandalf\nweb.debian_12.linux.Monday.Hr08.pkgmgr_busy.x86_64::\nservice a { process \"a\"; restart \"r\" }", vec![
                "class `gandalf` is never defined by the policy and is not a built-in class; a host name? write hostname(\"gandalf\") to say so, or define it with -D",
            ]),
            ("class web = www1\nweb|ns1|hostname(\"x*\")::\nservice a { process \"a\"; restart \"r\" }", vec![]),
            // Guards no host can satisfy, directly or through definitions.
            ("class web = www1\nweb.!web::\nservice a { process \"a\"; restart \"r\" }", vec![
                "service `a` can never apply: no host's classes satisfy its guard `web&!web::`",
            ]),
            ("class web = www1\nclass notweb = !web\nweb.notweb::\nservice a { process \"a\"; restart \"r\" }", vec![
                "service `a` can never apply: no host's classes satisfy its guard `web&notweb::`",
            ]),
            ("class web = www1\nclass dns = ns1\nweb.!dns::\nservice a { process \"a\"; restart \"r\" }", vec![]),
        ] {
            let mut sources = Sources::default();
            sources.add(std::path::Path::new("p.tend"), policy.to_string());
            let snapshot = crate::snapshot::Snapshot {
                origin: vec!["p.tend".into()],
                files: vec![("p.tend".into(), policy.as_bytes().to_vec())],
            };
            let policy_ = crate::policy::check(&snapshot).unwrap_or_else(|e| panic!("{policy}: {e:#}"));
            let got: Vec<String> = warnings(&policy_).into_iter().map(|d| d.message).collect();
            assert_eq!(got, want, "{policy}");
        }
    }

    #[test]
    fn defaults_apply_to_every_service_and_services_override_them() {
        let (services, errors) = analyze_text(
            "service a { process \"/a\"; restart \"x\" }\n\
             defaults {\n  limit 3 restarts within 30 min\n  remind never\n  grace 2s\n}\n\
             service b { process \"/b\"; restart \"x\"; limit 1 restart within 5m; remind 1h }\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let a = &services[0];
        assert_eq!(
            (a.limits.restarts, a.limits.within, a.limits.remind),
            (3, 1800, None)
        );
        assert_eq!(a.grace, Duration::from_secs(2));
        let b = &services[1];
        assert_eq!(
            (b.limits.restarts, b.limits.within, b.limits.remind),
            (1, 300, Some(3600))
        );
        assert_eq!(b.grace, Duration::from_secs(2));
        let (services, _) = analyze_text("service c { process \"/c\"; restart \"x\" }");
        assert_eq!(services[0].limits, DEFAULT_LIMITS);
    }

    #[test]
    fn budget_error_table() {
        for (policy, want) in [
            ("defaults { limit 3 }", "`limit` is written `limit N restarts within DURATION`, e.g. `limit 3 restarts within 30 min`"),
            ("defaults { limit 0 restarts within 1h }", "`limit` needs at least 1 restart"),
            ("defaults { limit 3 restarts during 1h }", "`limit` is written `limit N restarts within DURATION`, e.g. `limit 3 restarts within 30 min`"),
            ("defaults { remind sometimes }", "`remind` needs a duration such as 6h, or `never`"),
            ("defaults { name \"x\" }", "`defaults` sets timeout, grace, limit, remind, defer_limit, restart_on_upgrade, not `name`"),
            ("defaults { }\ndefaults { }", "`defaults` is already given at p.tend:1:1"),
        ] {
            assert_eq!(analyze_text(policy).1, [want], "{policy}");
        }
    }

    #[test]
    fn semantic_error_table() {
        for (policy, want) in [
            (
                "service a { process \"/a\" }",
                "service `a` has no `restart` (or `start`)",
            ),
            (
                "service a { restart \"x\" }",
                "service `a` has no `process` (or `exe`, or `pidfile`)",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; grace 2d }",
                "`grace` is at most 24h",
            ),
            (
                "service a { exe \"sbin/a\"; restart \"x\" }",
                "`exe` needs an absolute path",
            ),
            (
                "service a { pidfile \"a.pid\"; start \"x\" }",
                "`pidfile` needs an absolute path",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; user \"a b\" }",
                "`user` needs a user name or uid",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; count 0 }",
                "`count` is a number or a range such as 1..40 or 2.. (at least 1)",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; count 5..2 }",
                "`count` is a number or a range such as 1..40 or 2.. (at least 1)",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; count 1..x }",
                "`count` is a number or a range such as 1..40 or 2.. (at least 1)",
            ),
            (
                "service a { process \"/a\"; stop \"x\" }",
                "service `a` has no `restart` (or `start`)",
            ),
            (
                "service a { process \"/a\"; start \"x\"; port 80 }",
                "`port` needs `restart`, or `stop` and `start`, to act on a process that runs but fails a check",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; port 0 }",
                "`port` needs a port number, 1 to 65535",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; port 80; host db.example.com }",
                "`host` needs an IP address such as 127.0.0.1 or ::1 (tend never asks DNS)",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; host 10.0.0.1 }",
                "`host` goes with `port`",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; memory above lots }",
                "`memory` is written `memory above SIZE [then restart|report]`, e.g. `memory above 500MB`",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; memory above 5 MB then panic }",
                "after `then` comes `restart` or `report`",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; cpu above 90% for 0 runs }",
                "`cpu` is written `cpu above PERCENT [for N runs] [then restart|report]`, e.g. `cpu above 90% for 3 runs`",
            ),
            (
                "service a { process \"/a\"; start \"x\"; cpu above 90% }",
                "`cpu` needs `restart`, or `stop` and `start`, to act on a process that runs but fails a check",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; pidfle \"/a.pid\" }",
                "unknown attribute `pidfle`; did you mean `pidfile`?",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; colour red }",
                "unknown attribute `colour`; the attributes are listed in docs/language.md",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; timeout 0 }",
                "`timeout` must be at least 1s",
            ),
            (
                "service a { process \"/a\"; restart \"'x\" }",
                "unbalanced quotes in command (or set `shell yes` to run it with /bin/sh)",
            ),
            (
                "service a { process \"/a\"; restart \"\" }",
                "empty command",
            ),
            (
                "service a { process /a; restart \"x\" }",
                "`process` needs a quoted string",
            ),
            (
                "service a { process \"/a\" \"/b\"; restart \"x\" }",
                "`process` takes one value, a quoted string; quote it if it has spaces",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; shell maybe }",
                "`shell` is yes or no",
            ),
            (
                "service a { process \"/a\"; process \"/b\"; restart \"x\" }",
                "`process` is given twice in service `a`",
            ),
            (
                "class a = x\nclass a = y",
                "class `a` is already defined at p.tend:1:7",
            ),
            (
                "class a = hostname(\"[\")",
                "bad pattern: unclosed character class; missing ']'",
            ),
            (
                "service a { process \"(?x)a#\"; restart \"x\" }",
                "bad regular expression: unclosed group",
            ),
        ] {
            let mut sources = Sources::default();
            sources.add(std::path::Path::new("p.tend"), policy.to_string());
            let (items, syntax) = crate::parser::parse(0, policy);
            assert!(syntax.is_empty(), "{policy}: {syntax:?}");
            let (_, _, errors) = analyze(&sources, &[(0, items)]);
            let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
            assert_eq!(messages, [want], "{policy}");
        }
    }
}
