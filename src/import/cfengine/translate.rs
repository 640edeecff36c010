//! Turning CFEngine promises into tend services: the seed's idiom, process
//! promises with their restart class and commands, `process_select` and
//! `process_count` bodies, `services:` and `classes:` promises; what has no
//! equivalent reported with its place and why.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::expand::{bindings, canonify, class_of, expand, variables, walked, Var};
use super::read::{Promise, Read, Value};
use crate::import::{literal, process_value, Draft, Import};

/// A tend guard from CFEngine class expressions (all must hold).
pub(super) fn guard_of(parts: &[String]) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() || p == "any" || seen.contains(&p) {
            continue;
        }
        seen.push(p);
    }
    match seen.as_slice() {
        [] => None,
        [one] => Some(one.to_string()),
        many => Some(
            many.iter()
                .map(|p| {
                    if p.contains('|') {
                        format!("({p})")
                    } else {
                        p.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" & "),
        ),
    }
}

/// A command promise once expanded: its command, the class it runs
/// under, and whether it runs in a shell.
pub(super) struct Command {
    pub(super) command: String,
    pub(super) when: String,
    pub(super) guards: Vec<String>,
    pub(super) shell: bool,
    /// The classes it sets (`classes => if_notkept("x")`): reports under
    /// them say what tend says itself.
    pub(super) sets: Vec<String>,
    pub(super) index: usize,
}

pub(super) fn convert(read: &Read, import: &mut Import) {
    import.left.extend(read.left.iter().cloned());
    let (vars, _) = variables(read, &mut import.left);
    let mut commands: Vec<Command> = Vec::new();
    for (i, p) in read.promises.iter().enumerate() {
        if p.kind != "commands" {
            continue;
        }
        let lists = walked(p, &vars);
        for b in bindings(&lists) {
            let mut guards: Vec<String> = lists.iter().map(|(_, _, g)| g.to_string()).collect();
            let command = match expand(&p.promiser, &b, &vars, &mut guards) {
                Ok(c) => c,
                Err(_) => continue,
            };
            let when = match p.get("ifvarclass").or_else(|| p.get("if")) {
                Some(c) => class_of(c, &b, &vars, &mut guards).unwrap_or_default(),
                None => expand(&p.guard, &b, &vars, &mut guards).unwrap_or_default(),
            };
            let shell = match p.get("contain") {
                Some(Value::Name(n)) => n.contains("shell"),
                Some(Value::Call(n, _)) => n.contains("shell"),
                _ => false,
            } || matches!(p.string("useshell"), Some("true" | "useshell"));
            let sets = match p.get("classes") {
                Some(Value::Call(_, args)) => args
                    .iter()
                    .filter_map(Value::text)
                    .filter_map(|a| expand(a, &b, &vars, &mut Vec::new()).ok())
                    .collect(),
                _ => Vec::new(),
            };
            commands.push(Command {
                command,
                when,
                guards,
                shell,
                sets,
                index: i,
            });
        }
    }
    let runs = by_class(&commands);
    let mut used: HashSet<usize> = HashSet::new();
    let mut quiet: HashSet<String> = HashSet::new();
    for p in &read.promises {
        match p.kind.as_str() {
            "vars" | "commands" | "reports" => {}
            "processes" => processes(p, read, &vars, &runs, &mut used, &mut quiet, import),
            "services" => services(p, &vars, import),
            "methods" => import.left.push(p.place.left(
                "a bundle call: tend import reads the promises of every bundle in these files once, as written; a bundle's parameters are not passed (expand them by hand)",
            )),
            "classes" => classes(p, import),
            "meta" => {}
            kind => import.left.push(p.place.left(format!(
                "`{kind}:` promises are not carried over: tend keeps processes running"
            ))),
        }
    }
    merge_classes(&mut import.classes);
    for c in &commands {
        if used.contains(&c.index) {
            quiet.extend(c.sets.iter().cloned());
        }
    }
    for (i, p) in read.promises.iter().enumerate() {
        match p.kind.as_str() {
            "commands" if !used.contains(&i) => import.left.push(p.place.left(
                "a command that restarts no process promise (no `restart_class` names its class)",
            )),
            "reports" => {
                let when = p
                    .string("ifvarclass")
                    .or_else(|| p.string("if"))
                    .unwrap_or(&p.guard);
                let lists = walked(p, &vars);
                let said = bindings(&lists).iter().all(|b| {
                    expand(when, b, &vars, &mut Vec::new()).is_ok_and(|w| quiet.contains(&w))
                });
                if !said || lists.is_empty() && !quiet.contains(when) {
                    import.left.push(p.place.left(
                        "a report tend does not make (it says itself when it restarts a service, and when a restart fails)",
                    ));
                }
            }
            _ => {}
        }
    }
}

/// The commands by the class they run under: their guard as written, and
/// canonified when it is one class (a guard `"start_$(c)"::` names the
/// class `canonify("start_$(c)")` sets). One lookup a process promise.
pub(super) fn by_class(commands: &[Command]) -> HashMap<String, Vec<&Command>> {
    let mut by: HashMap<String, Vec<&Command>> = HashMap::new();
    for c in commands {
        by.entry(c.when.clone()).or_default().push(c);
        let canonical = canonify(&c.when);
        if canonical != c.when && !c.when.contains(['|', '&', '!', '.', '(']) {
            by.entry(canonical).or_default().push(c);
        }
    }
    by
}

#[allow(clippy::too_many_arguments)]
pub(super) fn processes(
    p: &Promise,
    read: &Read,
    vars: &HashMap<String, Var>,
    runs: &HashMap<String, Vec<&Command>>,
    used: &mut HashSet<usize>,
    quiet: &mut HashSet<String>,
    import: &mut Import,
) {
    let lists = walked(p, vars);
    for b in bindings(&lists) {
        let mut guards: Vec<String> = lists.iter().map(|(_, _, g)| g.to_string()).collect();
        guards
            .push(expand(&p.guard, &b, vars, &mut Vec::new()).unwrap_or_else(|_| p.guard.clone()));
        let pattern = match expand(&p.promiser, &b, vars, &mut guards) {
            Ok(s) => s,
            Err(name) => {
                import.left.push(p.place.left(format!(
                    "`$({name})` is not defined in these files; expand it by hand"
                )));
                continue;
            }
        };
        let Some(named) = p.get("restart_class") else {
            import.left.push(p.place.left(
                "no `restart_class`: the promise restarts nothing (tend's services are what must run)",
            ));
            continue;
        };
        let Some(class) = class_of(named, &b, vars, &mut Vec::new()) else {
            import.left.push(p.place.left(
                "its `restart_class` is a function or variable CFEngine evaluates (tend import reads strings and `canonify()`)",
            ));
            continue;
        };
        quiet.insert(class.clone());
        let restart: &[&Command] = runs.get(&class).map_or(&[], Vec::as_slice);
        let Some(command) = restart.first() else {
            import.left.push(p.place.left(format!(
                "no `commands:` promise runs under `{class}`: nothing restarts it"
            )));
            continue;
        };
        restart.iter().for_each(|c| {
            used.insert(c.index);
        });
        guards.extend(command.guards.iter().cloned());
        if let Some(cond) = p.string("ifvarclass").or_else(|| p.string("if")) {
            guards
                .push(expand(cond, &b, vars, &mut Vec::new()).unwrap_or_else(|_| cond.to_string()));
        }
        // The seed's idiom: `$(ARRAY[$(LIST)][process])` names the service
        // LIST's value, and ARRAY[KEY][name] its name.
        let idiom = lists.iter().find_map(|(list, _, _)| {
            let key = b.get(*list)?;
            let (array, _) = p.promiser.trim_start_matches("$(").split_once('[')?;
            p.promiser
                .contains(&format!("[$({list})]"))
                .then(|| (array.to_string(), key.clone()))
        });
        let id = match &idiom {
            Some((_, key)) => key.clone(),
            None => id_from_pattern(&pattern),
        };
        let from = format!("{}:{} (processes)", p.place.file.display(), p.place.line);
        let mut d = Draft::new(&id, from, &p.place.file);
        d.carried_from(&p.place.file, p.place.line);
        if let Some((array, key)) = &idiom {
            if let Some(Var::Scalar(name, g)) = vars.get(&format!("{array}[{key}][name]")) {
                d.set("name", literal(name));
                guards.push(g.clone());
            }
        }
        d.guard = guard_of(&guards);
        if let Some(g) = d.guard.as_deref().filter(|g| !plain(g)) {
            import.left.push(p.place.left(format!(
                "its classes `{g}` are CFEngine's to evaluate (variables, functions); write the guard by hand"
            )));
            continue;
        }
        let (value, note) = process_value(&pattern, "CFEngine");
        d.set("process", value.clone());
        select(p, read, &b, vars, &mut d);
        if d.value("process") == Some(value) {
            d.notes.push(note);
        }
        let run = &read.promises[command.index].place;
        d.carried_from(&run.file, run.line);
        d.set("restart", literal(&command.command));
        if command.shell {
            d.set("shell", "yes".into());
        }
        for (key, _) in &p.constraints {
            match key.as_str() {
                "restart_class" | "process_select" | "process_count" | "ifvarclass" | "if"
                | "comment" | "handle" => {}
                other => d
                    .left
                    .push(p.place.left(format!("`{other}` is not carried over"))),
            }
        }
        import.drafts.push(d);
    }
}

/// `process_select` and `process_count` bodies, where tend has an
/// equivalent: `process_owner` -> `user`, `command` -> `process`,
/// `match_range` -> `count`.
pub(super) fn select(
    p: &Promise,
    read: &Read,
    bound: &HashMap<String, String>,
    vars: &HashMap<String, Var>,
    d: &mut Draft,
) {
    for kind in ["process_select", "process_count"] {
        let Some(reference) = p.get(kind) else {
            continue;
        };
        let (name, args) = match reference {
            Value::Name(n) | Value::Str(n) => (n.as_str(), Vec::new()),
            Value::Call(n, a) => (n.as_str(), a.iter().filter_map(Value::text).collect()),
            Value::List(_) => continue,
        };
        // The standard library's `by_owner("USER")`.
        if kind == "process_select"
            && name == "by_owner"
            && !read.bodies.contains_key(&(kind.into(), name.into()))
        {
            if let Some(user) = args.first() {
                d.carried_from(&p.place.file, p.line(kind));
                d.set("user", literal(user));
            }
            continue;
        }
        let Some(body) = read.bodies.get(&(kind.to_string(), name.to_string())) else {
            d.left.push(p.place.left(format!(
                "body {kind} {name} is not in these files (the standard library's are not read)"
            )));
            continue;
        };
        let mut bound = bound.clone();
        for (param, arg) in body.params.iter().zip(&args) {
            bound.insert(param.clone(), arg.to_string());
        }
        let text = |v: &Value| {
            let t = match v {
                Value::List(items) if items.len() == 1 => items[0].text(),
                v => v.text(),
            };
            t.and_then(|t| expand(t, &bound, vars, &mut Vec::new()).ok())
        };
        for (i, (key, v)) in body.settings.iter().enumerate() {
            d.carried_from(&body.file, body.lines[i]);
            match (kind, key.as_str()) {
                ("process_select", "process_owner") => match text(v) {
                    Some(user) => d.set("user", literal(&user)),
                    None => d.left.push(
                        p.place
                            .left("`process_owner` of several users: tend's `user` is one"),
                    ),
                },
                ("process_select", "command") => match text(v) {
                    Some(re) => {
                        d.set("process", literal(&format!("^(?:{re})$")));
                        d.notes.push("CFEngine's process_select `command` matches the whole command line, and so does `^(?:...)$`".into());
                    }
                    None => d
                        .left
                        .push(p.place.left("`command` in body {name}: not one string")),
                },
                ("process_select", "process_result") => {}
                ("process_count", "match_range") => {
                    let range = match v {
                        Value::Call(f, a) if f == "irange" => a
                            .iter()
                            .filter_map(Value::text)
                            .map(str::to_string)
                            .collect::<Vec<_>>(),
                        Value::List(a) => a
                            .iter()
                            .filter_map(Value::text)
                            .map(str::to_string)
                            .collect(),
                        _ => Vec::new(),
                    };
                    match range.as_slice() {
                        [lo, hi] if lo == hi => d.set("count", lo.clone()),
                        [lo, hi] if hi == "inf" || hi.len() > 6 => {
                            d.set("count", format!("{lo}.."))
                        }
                        [lo, hi] => d.set("count", format!("{lo}..{hi}")),
                        _ => d.left.push(p.place.left("`match_range` not read")),
                    }
                }
                ("process_count", "in_range_define" | "out_of_range_define") => {}
                (_, other) => d.left.push(p.place.left(format!(
                    "`{other}` in body {kind} {name}: tend has no such test"
                ))),
            }
        }
    }
}

/// An id from a process pattern: the program's name (`/usr/sbin/sshd` ->
/// `sshd`).
pub(super) fn id_from_pattern(pattern: &str) -> String {
    let word = pattern.split_whitespace().next().unwrap_or("");
    let base = word.rsplit('/').next().unwrap_or(word);
    let id: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if id.is_empty() {
        "process".to_string()
    } else {
        id
    }
}

/// `services: "ssh" service_policy => "start";` -> a service with that
/// unit; `"$(s)"` walks the list `s` as CFEngine does.
pub(super) fn services(p: &Promise, vars: &HashMap<String, Var>, import: &mut Import) {
    if let Some(policy) = p.string("service_policy").filter(|&s| s != "start") {
        import.left.push(p.place.left(format!(
            "service_policy `{policy}`: tend keeps services running; it starts, it never stops or disables"
        )));
        return;
    }
    let lists = walked(p, vars);
    for b in bindings(&lists) {
        let mut guards: Vec<String> = lists.iter().map(|(_, _, g)| g.to_string()).collect();
        let (unit, guard) = match (
            expand(&p.promiser, &b, vars, &mut guards),
            expand(&p.guard, &b, vars, &mut Vec::new()),
        ) {
            (Ok(unit), Ok(guard)) => (unit, guard),
            (Err(name), _) | (_, Err(name)) => {
                import.left.push(p.place.left(format!(
                    "`$({name})` is not defined in these files; expand it by hand"
                )));
                continue;
            }
        };
        guards.push(guard);
        let from = format!("{}:{} (services)", p.place.file.display(), p.place.line);
        let mut d = Draft::new(&unit, from, &p.place.file);
        d.guard = guard_of(&guards);
        if d.guard.as_deref().is_some_and(|g| !plain(g)) {
            import.left.push(p.place.left(
                "its classes are CFEngine's to evaluate (variables, functions); write the guard by hand",
            ));
            continue;
        }
        d.carried_from(&p.place.file, p.place.line);
        d.set("unit", literal(&unit));
        for (key, _) in &p.constraints {
            if !matches!(key.as_str(), "service_policy" | "comment" | "handle") {
                d.left
                    .push(p.place.left(format!("`{key}` is not carried over")));
            }
        }
        import.drafts.push(d);
    }
}

/// `classes: "web" expression => "www1|www2";` -> `class web = www1|www2`.
pub(super) fn classes(p: &Promise, import: &mut Import) {
    let joined = |op: &str| -> Option<String> {
        match p.get(op)? {
            Value::List(items) => Some(
                items
                    .iter()
                    .filter_map(Value::text)
                    .collect::<Vec<_>>()
                    .join(if op == "or" { " | " } else { " & " }),
            ),
            v => v.text().map(str::to_string),
        }
    };
    let expr = p
        .string("expression")
        .map(str::to_string)
        .or_else(|| joined("or"))
        .or_else(|| joined("and"))
        .or_else(|| p.string("not").map(|n| format!("!({n})")));
    let named = p
        .promiser
        .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && p.promiser
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    match expr {
        _ if !named => import.left.push(p.place.left(
            "a class named by a variable or a name tend's classes cannot have: CFEngine's to evaluate; write it by hand",
        )),
        _ if p.guard != "any" => import.left.push(p.place.left(
            "a class defined under a guard: write it as `class NAME = ...` with the guard in the expression",
        )),
        Some(e) if plain(&e) => import.classes.push((p.place.file.clone(), p.promiser.clone(), e)),
        _ => import.left.push(p.place.left(
            "only classes from `expression`, `or`, `and` or `not` of class names carry over",
        )),
    }
}

/// One definition a class: a class several promises define is set when
/// any of them holds, as in CFEngine (`class c = (a) | (b)`, where the
/// first stood).
pub(super) fn merge_classes(classes: &mut Vec<(PathBuf, String, String)>) {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut merged: Vec<(PathBuf, String, String)> = Vec::with_capacity(classes.len());
    for (file, name, expr) in classes.drain(..) {
        match at.get(&name) {
            Some(&i) => {
                let before = &mut merged[i].2;
                *before = format!("({before}) | ({expr})");
            }
            None => {
                at.insert(name.clone(), merged.len());
                merged.push((file, name, expr));
            }
        }
    }
    *classes = merged;
}

/// A class expression tend reads as it is: names, `! & | . ( )`, no
/// function calls.
pub(super) fn plain(e: &str) -> bool {
    let chars_ok = e
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_!&|.() ".contains(c));
    let call = e
        .as_bytes()
        .windows(2)
        .any(|w| (w[0].is_ascii_alphanumeric() || w[0] == b'_') && w[1] == b'(');
    !e.is_empty() && chars_ok && !call
}
