//! Checks what the policy means, once it is known to be well formed.
//!
//! The parser accepts any attribute with any words after it; here each
//! service is checked against the attributes the language knows, values are
//! read as the right type (durations, yes/no, regular expressions), required
//! attributes are required, ids are unique across all files, class
//! definitions name known functions and do not depend on themselves. Every
//! problem is collected, not only the first.

mod attributes;
pub(crate) mod channel;
mod probes;
mod registry;
mod service;
pub(crate) mod warnings;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::diagnostic::{Diagnostic, FileId, Sources, Span};
use crate::graph;
use crate::parser::{Attribute, Expr, Item, Spanned};
use crate::policy::{
    Channel, ClassDef, Limits, Service, WhenStopped, DEFAULT_GRACE, DEFAULT_LIMITS, DEFAULT_SETTLE,
    DEFAULT_TIMEOUT,
};
use attributes::{at_least_one_second, backoff, duration, limit, remind, when_stopped, yes_no};
pub(crate) use warnings::warnings;

/// Attributes a `defaults` block may set for every service (and a service
/// for itself).
pub(crate) fn default_attributes() -> Vec<&'static str> {
    registry::keys(registry::Scope::Defaults).collect()
}

/// The policy's attributes, as a section of `tend man`.
pub(crate) fn attributes_man() -> String {
    registry::man_section()
}

/// Every attribute a service may have, in the order the docs list them.
pub(crate) fn all_attributes() -> Vec<&'static str> {
    registry::ATTRIBUTES.iter().map(|a| a.key).collect()
}

/// Settings every service starts from.
#[derive(Debug, Clone, Copy)]
struct Defaults {
    timeout: Duration,
    grace: Duration,
    settle: Duration,
    limits: Limits,
    restart_on_upgrade: bool,
    when_stopped: WhenStopped,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: DEFAULT_TIMEOUT,
            grace: DEFAULT_GRACE,
            settle: DEFAULT_SETTLE,
            limits: DEFAULT_LIMITS,
            restart_on_upgrade: false,
            when_stopped: WhenStopped::Restart,
        }
    }
}

/// Functions a class expression may call.
pub(crate) const FUNCTIONS: &[&str] = &["hostname"];

type Errors = Vec<Diagnostic>;

/// What a policy comes to: its classes, services and channels.
pub(crate) struct Analyzed {
    pub(crate) classes: Vec<ClassDef>,
    pub(crate) services: Vec<Service>,
    pub(crate) channels: Vec<Channel>,
}

/// Takes the syntax trees and drops each item once it is analysed: the
/// policy model grows as the trees shrink (at 100,000 services both at
/// once were two thirds of the peak memory).
pub(crate) fn analyze(sources: &Sources, files: Vec<(FileId, Vec<Item>)>) -> (Analyzed, Errors) {
    let mut channels: Vec<Channel> = Vec::new();
    let mut channel_at: HashMap<String, Span> = HashMap::new();
    let mut errors = Vec::new();
    let mut classes: Vec<ClassDef> = Vec::new();
    // As many as declared, at once: a Vec that doubles as it grows holds
    // up to twice the services' room at its peak (a third of the memory
    // of validating 100,000 services).
    let declared = (files.iter().flat_map(|(_, items)| items))
        .filter(|i| matches!(i, Item::Service { .. }))
        .count();
    let mut services: Vec<Service> = Vec::with_capacity(declared);
    let mut class_at: HashMap<String, Span> = HashMap::new();
    let mut service_at: HashMap<String, Span> = HashMap::new();
    let mut unit_at: HashMap<String, (String, Span)> = HashMap::new();
    let defaults = defaults(sources, &files, &mut errors);

    for (_, items) in files {
        // Every file starts under `any::`.
        let mut guard: Option<Expr> = None;
        for item in items {
            match &item {
                Item::ClassDef { name, expr } => {
                    check_expr(expr, &mut errors);
                    if !first_definition(&mut class_at, name, "class", sources, &mut errors) {
                        continue;
                    }
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
                Item::Channel { id, attributes } => {
                    let channel =
                        channel::channel(&id.text, id.span, attributes, &guard, &mut errors);
                    if first_definition(&mut channel_at, id, "channel", sources, &mut errors) {
                        channels.extend(channel);
                    }
                }
                Item::Service { id, attributes } => {
                    let service = service::service(
                        &id.text,
                        id.span,
                        attributes,
                        &guard,
                        &defaults,
                        &mut errors,
                    );
                    if !first_definition(&mut service_at, id, "service", sources, &mut errors) {
                        continue;
                    }
                    if let Some(s) = service {
                        if one_service_per_unit(&s, attributes, &mut unit_at, sources, &mut errors)
                        {
                            services.push(s);
                        }
                    }
                }
            }
        }
    }
    let classes = settle_classes(classes, &mut errors);
    check_dependencies(&services, &service_at, &mut errors);
    let analyzed = Analyzed {
        classes,
        services,
        channels,
    };
    (analyzed, errors)
}

/// Remembers where `name` is defined; a second definition (in any file)
/// is an error that names the first. False for a second one.
fn first_definition(
    seen: &mut HashMap<String, Span>,
    name: &Spanned,
    what: &str,
    sources: &Sources,
    errors: &mut Errors,
) -> bool {
    if let Some(first) = seen.get(&name.text) {
        errors.push(Diagnostic::error(
            name.span,
            format!(
                "{what} `{}` is already defined at {}",
                name.text,
                sources.locate(*first)
            ),
        ));
        return false;
    }
    seen.insert(name.text.clone(), name.span);
    true
}

/// A systemd unit is one service's: two services naming it would both
/// restart it in one pass. False (and an error naming the first) for the
/// second.
fn one_service_per_unit(
    service: &Service,
    attributes: &[Attribute],
    unit_at: &mut HashMap<String, (String, Span)>,
    sources: &Sources,
    errors: &mut Errors,
) -> bool {
    let (Some(unit), Some(at)) = (
        &service.unit,
        attributes.iter().find(|a| a.key.text == "unit"),
    ) else {
        return true;
    };
    let span = at.values.first().map_or(at.key.span, |v| v.span);
    if let Some((first, first_at)) = unit_at.get(unit) {
        errors.push(Diagnostic::error(
            span,
            format!(
                "unit `{unit}` is already service `{first}`'s (at {}): two services would both restart it",
                sources.locate(*first_at)
            ),
        ));
        return false;
    }
    unit_at.insert(unit.clone(), (service.id.clone(), span));
    true
}

/// Every dependency names a service of the policy, and none leads back to
/// the service itself. Linear in services and dependencies, however long
/// the chains.
fn check_dependencies(services: &[Service], known: &HashMap<String, Span>, errors: &mut Errors) {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); services.len()];
    for (i, s) in services.iter().enumerate() {
        for (dep, span) in &s.depends {
            if !known.contains_key(dep) {
                errors.push(Diagnostic::error(
                    *span,
                    format!("`{}` depends on `{dep}`, which is not a service", s.id),
                ));
            }
            succ[i].extend(index.get(dep.as_str()));
        }
    }
    for members in graph::components(&succ) {
        if !graph::is_cycle(&members, &succ) {
            continue;
        }
        let mut reported = HashSet::new();
        let first = *members.iter().min().expect("a component has a node");
        let cycle = graph::cycle_through(first, &members, &succ);
        // Each service on the cycle, its path rotated to start there.
        let id = |i: usize| services[cycle[i % cycle.len()]].id.as_str();
        for k in 0..cycle.len() {
            let at = cycle[k];
            reported.insert(at);
            errors.push(Diagnostic::error(
                services[at].depends[0].1,
                format!(
                    "dependency cycle: {}",
                    route(|step| id(k + step), cycle.len())
                ),
            ));
        }
        for &other in members.iter().filter(|m| !reported.contains(*m)) {
            errors.push(Diagnostic::error(
                services[other].depends[0].1,
                format!(
                    "`{}` is in a dependency cycle with `{}`",
                    services[other].id, services[first].id
                ),
            ));
        }
    }
}

/// `a -> b -> a` for a cycle of `len` services whose `step`th is
/// `name(step)`, or for a long one its first steps and its end:
/// `a -> b -> c -> d -> e -> f -> ... -> a (a cycle of 100001)`.
fn route<'a>(name: impl Fn(usize) -> &'a str, len: usize) -> String {
    const SHOWN: usize = 6;
    let steps = len.min(SHOWN);
    let mut text: Vec<&str> = (0..steps).map(&name).collect();
    if len > SHOWN {
        text.push("...");
    }
    text.push(name(0));
    let text = text.join(" -> ");
    match len > SHOWN {
        true => format!("{text} (a cycle of {len})"),
        false => text,
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
            let known = default_attributes();
            let unknown = |key: &str| {
                format!(
                    "`defaults` sets {}, not `{}`",
                    known.join(", "),
                    crate::file::quote(key, 60)
                )
            };
            for a in known_once(attributes, &known, unknown, "`defaults`", errors) {
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
            continue;
        }
        if let Some(eq) = a.equals {
            // `process = "/usr/sbin/x"`: Monit's and CFEngine's habit. Said,
            // and the value read as meant, so nothing else is said of it.
            let rest: Vec<String> = (a.values.iter())
                .map(|v| match v.kind {
                    crate::parser::ValueKind::Quoted => format!("{:?}", v.text),
                    crate::parser::ValueKind::Word => v.text.clone(),
                })
                .collect();
            errors.push(Diagnostic::error(
                eq,
                format!(
                    "`{key}` takes its value after a space, without `=`: write `{key} {}`",
                    rest.join(" ")
                ),
            ));
        }
        if !seen.insert(key) && !registry::many(key) {
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
        "settle" => to.settle = duration(a)?,
        "limit" => {
            let (restarts, within, give_up) = limit(a)?;
            to.limits.restarts = restarts;
            to.limits.within = within;
            to.limits.give_up = give_up;
        }
        "backoff" => (to.limits.backoff, to.limits.backoff_cap) = backoff(a)?,
        "defer_limit" => to.limits.defer = duration(a)?.as_secs() as i64,
        "after_boot" => to.limits.after_boot = duration(a)?.as_secs() as i64,
        "restart_on_upgrade" => to.restart_on_upgrade = yes_no(a)?,
        "when" => to.when_stopped = when_stopped(a)?,
        _ => to.limits.remind = remind(a)?,
    }
    Ok(())
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
/// meaning: each such class is an error. Returns the definitions in an
/// order where each comes after those it refers to, so that one pass
/// evaluates them all ([`crate::classes::Classes`]). Linear in the
/// definitions, however long the chains.
fn settle_classes(classes: Vec<ClassDef>, errors: &mut Errors) -> Vec<ClassDef> {
    let succ = class_graph(&classes);
    // Components come dependencies first (graph::dependencies_first).
    let components = graph::components(&succ);
    let mut cyclic: Vec<usize> = components
        .iter()
        .filter(|c| graph::is_cycle(c, &succ))
        .flatten()
        .copied()
        .collect();
    cyclic.sort_unstable();
    for i in cyclic {
        errors.push(Diagnostic::error(
            classes[i].span,
            format!("class `{}` depends on itself", classes[i].name),
        ));
    }
    let mut slots: Vec<Option<ClassDef>> = classes.into_iter().map(Some).collect();
    components
        .into_iter()
        .flatten()
        .filter_map(|i| slots[i].take())
        .collect()
}

/// Which definitions each definition refers to.
fn class_graph(classes: &[ClassDef]) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    classes
        .iter()
        .map(|c| {
            let mut names = Vec::new();
            references(&c.expr, &mut names);
            names.iter().filter_map(|n| index.get(n).copied()).collect()
        })
        .collect()
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
        let (analyzed, errors) = analyze(&sources, vec![(0, items)]);
        (
            analyzed.services,
            errors.into_iter().map(|e| e.message).collect(),
        )
    }

    #[test]
    fn defaults_apply_to_every_service_and_services_override_them() {
        let (services, errors) = analyze_text(
            "service a { process \"/a\"; restart \"x\" }\n\
             defaults {\n  limit 3 restarts within 30 min then give up\n  remind never\n  grace 2s\n}\n\
             service b { process \"/b\"; restart \"x\"; limit 1 restart within 5m then back off; remind 1h; backoff 1m }\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let a = &services[0];
        assert_eq!(
            (
                a.limits.restarts,
                a.limits.within,
                a.limits.remind,
                a.limits.give_up
            ),
            (3, 1800, None, true)
        );
        assert_eq!(a.grace, Duration::from_secs(2));
        let b = &services[1];
        assert_eq!(
            (
                b.limits.restarts,
                b.limits.within,
                b.limits.remind,
                b.limits.give_up
            ),
            (1, 300, Some(3600), false)
        );
        // `backoff` without `up to`: the default longest wait.
        assert_eq!((b.limits.backoff, b.limits.backoff_cap), (60, 6 * 3600));
        assert_eq!(b.grace, Duration::from_secs(2));
        let (services, _) = analyze_text("service c { process \"/c\"; restart \"x\" }");
        assert_eq!(services[0].limits, DEFAULT_LIMITS);
    }

    #[test]
    fn budget_error_table() {
        for (policy, want) in [
            ("defaults { limit 3 }", "`limit` is written `limit N restarts within DURATION [then back off | then give up]`, e.g. `limit 3 restarts within 30 min`"),
            ("defaults { limit 0 restarts within 1h }", "`limit` needs at least 1 restart"),
            ("defaults { limit 3 restarts during 1h }", "`limit` is written `limit N restarts within DURATION [then back off | then give up]`, e.g. `limit 3 restarts within 30 min`"),
            ("defaults { limit 3 restarts within 1h then stop }", "`limit` is written `limit N restarts within DURATION [then back off | then give up]`, e.g. `limit 3 restarts within 30 min`"),
            ("defaults { backoff soon }", "`backoff` is written `backoff DURATION [up to DURATION]`, e.g. `backoff 10m up to 6h`"),
            ("defaults { backoff 10m until 6h }", "`backoff` is written `backoff DURATION [up to DURATION]`, e.g. `backoff 10m up to 6h`"),
            ("defaults { backoff 1h up to 10m }", "`backoff`'s longest wait must be at least its first, and at most 1 day"),
            ("defaults { backoff 1h up to 2d }", "`backoff`'s longest wait must be at least its first, and at most 1 day"),
            ("defaults { remind sometimes }", "`remind` needs a duration such as 6h, or `never`"),
            ("defaults { name \"x\" }", "`defaults` sets timeout, grace, settle, limit, backoff, remind, defer_limit, restart_on_upgrade, after_boot, when, not `name`"),
            ("defaults { }\ndefaults { }", "`defaults` is already given at p.tend:1:1"),
        ] {
            assert_eq!(analyze_text(policy).1, [want], "{policy}");
        }
    }

    #[test]
    fn semantic_error_table() {
        let long = format!(
            "service a {{ unit \"{}\"; restart \"x\" }}",
            "x".repeat(250)
        );
        let long_error = format!(
            "unit `{}…` is longer than the 255 characters systemd allows",
            "x".repeat(40)
        );
        for (policy, want) in [
            (
                "service a { unit \"getty@\"; restart \"x\" }",
                "unit `getty@.service` is a template: name an instance, such as \"getty@NAME\"",
            ),
            (
                "service a { unit \"getty@.service\"; restart \"x\" }",
                "unit `getty@.service` is a template: name an instance, such as \"getty@NAME\"",
            ),
            ("service a { unit \".service\"; restart \"x\" }", "unit `.service` has no name before its type"),
            ("service a { process \"/a\"; restart \"x\"; hold while x }", "`hold` is written `hold during CLASS-EXPRESSION`, e.g. `hold during Sunday.Hr03` or `hold during \"backup_window|Hr03\"`"),
            ("service a { process \"/a\"; restart \"x\"; hold during \"Hr03|(\" }", "`hold during` needs a class expression: expected a class expression, found the end of the expression"),
            ("service a { process \"/a\"; restart \"x\"; hold during Hr03 Hr04 }", "`hold` is written `hold during CLASS-EXPRESSION`, e.g. `hold during Sunday.Hr03` or `hold during \"backup_window|Hr03\"`"),
            ("service a { unit \"@x\"; restart \"x\" }", "unit `@x.service` has no name before its type"),
            ("service a { unit \"a@b@c\"; restart \"x\" }", "unit `a@b@c.service` has more than one `@`"),
            (
                long.as_str(),
                long_error.as_str(),
            ),
            (
                "service a { unit \"a\"; pidfile \"/run/a.pid\" }",
                "`pidfile` cannot go with `unit`: systemd names the unit's main process",
            ),
            (
                "service a { unit \"a\" }\nservice b { unit \"a.service\"; process \"/b\" }",
                "unit `a.service` is already service `a`'s (at p.tend:1:18): two services would both restart it",
            ),
            (
                "service a { process \"/a\" }",
                "service `a` has no `restart` (or `start`)",
            ),
            (
                "service a { restart \"x\" }",
                "service `a` has no `process` (or `exe`, `pidfile`, `unit`)",
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
                "service a { process \"/a\"; restart \"x\"; port 80 send PING }",
                "this is written `port N [send TEXT] [expect RE]`",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; port 80 expect \"(\" }",
                "bad regular expression: unclosed group",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; http \"ftp://h/\" }",
                "bad URL: it must start with http:// or https://",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; http \"http://h/\" status 700 }",
                "`status` needs an HTTP status, 100 to 599",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; http \"http://h/\" fast }",
                "this is written `http \"URL\" [status N] [content \"RE\"] [timeout DURATION] [host \"NAME\"] [insecure]`",
            ),
            (
                "service a { process \"/a\"; start \"x\"; http \"http://h/\" }",
                "`http` needs `restart`, or `stop` and `start`, to act on a process that runs but fails a check",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; certificate valid for 14 days }",
                "`certificate` needs \"HOST:PORT\", or an `http \"https://...\"` check to take it from",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; certificate \"h\" valid for 14 days }",
                "a certificate's place is written \"HOST:PORT\"",
            ),
            (
                "service a { process \"/a\"; restart \"x\"; certificate \"h:443\" valid 14 days }",
                "`certificate` is written `certificate [\"HOST:PORT\"] valid for N days [then restart|report]`, e.g. `certificate \"127.0.0.1:443\" valid for 14 days`",
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
            let (_, errors) = analyze(&sources, vec![(0, items)]);
            let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
            assert_eq!(messages, [want], "{policy}");
        }
    }
}
