//! What a policy's author most likely got wrong though the policy is
//! valid, for `tend validate`: classes nothing defines, guards no host can
//! satisfy, a class named like one tend sets itself, shell syntax in a
//! command that no shell runs.

use std::collections::{HashMap, HashSet};

use crate::classes::{built_in_shape, hard_name};
use crate::diagnostic::{Diagnostic, Span};
use crate::parser::{Expr, Spanned};
use crate::policy::{ClassDef, Service};
use crate::suggest::closest;

/// What a policy's author most likely got wrong though the policy is valid
/// (for `tend validate`): a guard naming a class that nothing defines and
/// that is not a built-in class, and a service whose guard no host can
/// satisfy, a class defined with the name of a class tend sets itself, and
/// a command with shell syntax but no `shell yes`. Duplicate ids, in one
/// file or across files, are errors.
pub(crate) fn warnings(classes: &[ClassDef], services: &[Service]) -> Vec<Diagnostic> {
    let defs: HashMap<&str, &Expr> = classes.iter().map(|c| (c.name.as_str(), &c.expr)).collect();
    let mut out = Vec::new();
    for c in classes.iter().filter(|c| hard_name(&c.name)) {
        out.push(Diagnostic::warning(
            c.span,
            format!(
                "class `{}` is also a class tend sets itself: on hosts where tend sets it this definition is ignored, and elsewhere it makes guards on `{}` true; give it a name of its own",
                c.name, c.name
            ),
        ));
    }
    out.extend(services.iter().flat_map(shell_warnings));
    unknown_classes(classes, services, &defs, &mut out);
    // Services under one guard share it: judge each guard once.
    let mut judged: HashMap<String, bool> = HashMap::new();
    for s in services {
        let Some(guard) = &s.guard else { continue };
        let ok = *judged
            .entry(guard.to_string())
            .or_insert_with(|| satisfiable(guard, &defs));
        if !ok {
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

/// A command with shell syntax but no `shell yes`.
fn shell_warnings(s: &Service) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (key, command) in [
        ("restart", &s.restart),
        ("start", &s.start),
        ("stop", &s.stop),
    ] {
        let Some(command) = command.as_ref().filter(|c| !c.shell) else {
            continue;
        };
        if let Some((at, syntax)) = shell_syntax(&command.text) {
            // The caret goes under the syntax itself when the quoted
            // text is the command as it reads (no escapes in it).
            let span = command.span;
            let span = match span.end - span.start == command.text.len() + 2 {
                true => Span::new(
                    span.file,
                    span.start + 1 + at,
                    span.start + 1 + at + syntax.len(),
                ),
                false => span,
            };
            out.push(Diagnostic::warning(
                    span,
                    format!(
                        "`{key}` runs `{}` directly, not through a shell: `{syntax}` is passed to it as an argument; write `shell yes` in the service to run the command with /bin/sh",
                        command.argv[0]
                    ),
                ));
        }
    }
    out
}

/// A guard, definition or window (`hold during`) naming a class nothing
/// defines and that is not built in.
fn unknown_classes(
    classes: &[ClassDef],
    services: &[Service],
    defs: &HashMap<&str, &Expr>,
    out: &mut Vec<Diagnostic>,
) {
    let defined: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
    let mut seen = HashSet::new();
    let guards = services.iter().filter_map(|s| s.guard.as_ref());
    let windows = services.iter().filter_map(|s| s.hold_during.as_ref());
    let definitions = classes.iter().map(|c| &c.expr);
    for expr in guards.chain(windows).chain(definitions) {
        let mut names = Vec::new();
        spanned_classes(expr, &mut names);
        for c in names {
            if defs.contains_key(c.text.as_str())
                || built_in_shape(&c.text)
                || !seen.insert((c.span.file, c.span.start))
            {
                continue;
            }
            // A suggestion costs a look at every definition: for the first
            // hundred unknown names only.
            let near = match out.len() < 100 {
                true => closest(&c.text, &defined),
                false => None,
            };
            let hint = match near {
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
}

/// The first piece of shell syntax outside quotes in a command (`|`, `||`,
/// `&&`, `;`, `>`, `<`, `$(`, a backquote, `$NAME`), if any.
fn shell_syntax(text: &str) -> Option<(usize, &'static str)> {
    let bytes = text.as_bytes();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        let (b, next) = (bytes[i], bytes.get(i + 1).copied());
        i += 1;
        match b {
            b'\'' if !double => single = !single,
            _ if single => {}
            b'\\' => i += 1,
            b'"' => double = !double,
            b'$' if next == Some(b'(') => return Some((i - 1, "$(")),
            b'$' if next.is_some_and(|n| n == b'{' || n == b'_' || n.is_ascii_alphabetic()) => {
                return Some((i - 1, "$"))
            }
            b'`' => return Some((i - 1, "`")),
            _ if double => {}
            b'|' if next == Some(b'|') => return Some((i - 1, "||")),
            b'|' => return Some((i - 1, "|")),
            b'&' if next == Some(b'&') => return Some((i - 1, "&&")),
            b';' => return Some((i - 1, ";")),
            b'>' => return Some((i - 1, ">")),
            b'<' => return Some((i - 1, "<")),
            _ => {}
        }
    }
    None
}

fn spanned_classes<'a>(expr: &'a Expr, out: &mut Vec<&'a Spanned>) {
    match expr {
        Expr::Class(c) => out.push(c),
        Expr::Call { .. } => {}
        Expr::Not(e) => spanned_classes(e, out),
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| spanned_classes(e, out)),
    }
}

/// Whether some host could satisfy `guard`: the policy's classes are
/// replaced by their definitions (32 deep at most), then every way of
/// setting the remaining classes and hostname() calls is tried (up to 16 of
/// them; more is assumed satisfiable, as is a guard whose definitions
/// expand to more than a few thousand terms).
fn satisfiable(guard: &Expr, defs: &HashMap<&str, &Expr>) -> bool {
    const BUDGET: usize = 4096;
    fn atoms(
        e: &Expr,
        defs: &HashMap<&str, &Expr>,
        depth: usize,
        out: &mut Vec<String>,
        budget: &mut usize,
    ) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        match e {
            Expr::Class(c) => match defs.get(c.text.as_str()) {
                Some(d) if depth < 32 => atoms(d, defs, depth + 1, out, budget),
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
            Expr::Not(e) => atoms(e, defs, depth, out, budget),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| atoms(e, defs, depth, out, budget)),
        }
    }
    fn eval(
        e: &Expr,
        defs: &HashMap<&str, &Expr>,
        depth: usize,
        atoms: &[String],
        bits: u32,
    ) -> bool {
        let atom = |key: &str| {
            atoms
                .iter()
                .position(|a| a == key)
                .is_some_and(|i| bits >> i & 1 == 1)
        };
        match e {
            Expr::Class(c) => match defs.get(c.text.as_str()) {
                Some(d) if depth < 32 => eval(d, defs, depth + 1, atoms, bits),
                _ => atom(&c.text),
            },
            Expr::Call { .. } => atom(&e.to_string()),
            Expr::Not(e) => !eval(e, defs, depth, atoms, bits),
            Expr::And(v) => v.iter().all(|e| eval(e, defs, depth, atoms, bits)),
            Expr::Or(v) => v.iter().any(|e| eval(e, defs, depth, atoms, bits)),
        }
    }
    let mut names = Vec::new();
    let mut budget = BUDGET;
    atoms(guard, defs, 0, &mut names, &mut budget);
    if names.len() > 16 || budget == 0 {
        return true;
    }
    (0..1u32 << names.len()).any(|bits| eval(guard, defs, 0, &names, bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Sources;

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
            // A class with the name of a hard one; one with digits is fine.
            ("class linux = www1\nclass web01 = www1\n", vec![
                "class `linux` is also a class tend sets itself: on hosts where tend sets it this definition is ignored, and elsewhere it makes guards on `linux` true; give it a name of its own",
            ]),
            // Shell syntax with no shell; with `shell yes` it is meant.
            ("service a { process \"a\"; restart \"/etc/init.d/a restart > /dev/null\" }", vec![
                "`restart` runs `/etc/init.d/a` directly, not through a shell: `>` is passed to it as an argument; write `shell yes` in the service to run the command with /bin/sh",
            ]),
            ("service a { process \"a\"; restart \"/a\"; shell yes; stop \"pkill a && rm /run/a.pid\" }", vec![]),
        ] {
            let mut sources = Sources::default();
            sources.add(std::path::Path::new("p.tend"), policy.to_string());
            let (items, syntax) = crate::parser::parse(0, policy);
            assert!(syntax.is_empty(), "{policy}: {syntax:?}");
            let (analyzed, errors) = super::super::analyze(&sources, vec![(0, items)]);
            assert!(errors.is_empty(), "{policy}: {errors:?}");
            let got: Vec<String> = warnings(&analyzed.classes, &analyzed.services).into_iter().map(|d| d.message).collect();
            assert_eq!(got, want, "{policy}");
        }
    }

    #[test]
    fn shell_syntax_table() {
        for (command, want) in [
            ("/usr/sbin/invoke-rc.d ssh restart", None),
            ("a | b", Some("|")),
            ("a || b", Some("||")),
            ("a && b", Some("&&")),
            ("a; b", Some(";")),
            ("a > /dev/null 2>&1", Some(">")),
            ("a < in", Some("<")),
            ("kill $(cat /run/a.pid)", Some("$(")),
            ("kill `cat /run/a.pid`", Some("`")),
            ("a $HOME", Some("$")),
            ("a \"$HOME\"", Some("$")),
            // Quoted, it is an argument as meant.
            ("pkill -f 'web|api'", None),
            ("pkill -f \"web|api\"", None),
            ("a 'b > c' d", None),
            ("a '$HOME'", None),
            ("a \\| b", None),
            ("a 100$", None),
        ] {
            let got = shell_syntax(command);
            assert_eq!(got.map(|(_, s)| s), want, "{command}");
            if let Some((at, syntax)) = got {
                assert!(command[at..].starts_with(syntax), "{command}: at {at}");
            }
        }
    }
}
