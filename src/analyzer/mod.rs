//! Checks what the policy means, once it is known to be well formed.
//!
//! The parser accepts any attribute with any words after it; here each
//! service is checked against the attributes the language knows, values are
//! read as the right type (durations, yes/no, regular expressions), required
//! attributes are required, ids are unique across all files, class
//! definitions name known functions and do not depend on themselves. Every
//! problem is collected, not only the first.

mod attributes;
pub mod warnings;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::diagnostic::{Diagnostic, FileId, Sources, Span};
use crate::parser::{Attribute, Expr, Item};
use crate::policy::{
    Action, ClassDef, Command, Connect, CpuLimit, Limits, MemoryLimit, Service,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_GRACE, DEFAULT_LIMITS, DEFAULT_TIMEOUT, LOCALHOST,
};
use crate::suggest::closest;
pub use attributes::MAX_DURATION;
use attributes::{
    absolute_path, at_least_one_second, check_regex, count_range, cpu_limit, depends_on, duration,
    ip_address, limit, memory_limit, one_string, port_number, remind, user_name, yes_no,
};
pub use warnings::warnings;

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

    fn analyze_text(policy: &str) -> (Vec<Service>, Vec<String>) {
        let mut sources = Sources::default();
        sources.add(std::path::Path::new("p.tend"), policy.to_string());
        let (items, syntax) = crate::parser::parse(0, policy);
        assert!(syntax.is_empty(), "{policy}: {syntax:?}");
        let (_, services, errors) = analyze(&sources, &[(0, items)]);
        (services, errors.into_iter().map(|e| e.message).collect())
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
