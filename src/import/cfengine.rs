//! `tend import cfengine`: CFEngine 3 policy files read with the pest
//! grammar in grammar/cfengine.pest, their process promises made tend
//! services. It knows the seed's idiom (a `services[ID][name|process|
//! restart]` array walked with `getindices`, a `processes:` promise whose
//! `restart_class` guards the `commands:` promise that restarts it),
//! plain `processes:` promises with `restart_class`, `process_select` and
//! `process_count` bodies where tend has an equivalent, `services:`
//! promises with `service_policy => "start"`, and `classes:` promises with
//! an `expression`. Variables are expanded where the files define them;
//! class guards carry over as they are (CFEngine's syntax is tend's).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use pest::Parser as _;
use pest_derive::Parser;

use super::{line_of, literal, Draft, Import, Left};

#[derive(Parser)]
#[grammar = "../grammar/cfengine.pest"]
struct CfParser;

type Pair<'a> = pest::iterators::Pair<'a, Rule>;

/// Expansions of one string deeper than this are refused (a variable that
/// names itself).
const MAX_EXPANSIONS: usize = 64;

/// A value on the right of `=>`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Str(String),
    List(Vec<Value>),
    Call(String, Vec<Value>),
    /// `@(list)`, `$(var)`, or a bare name.
    Name(String),
}

impl Value {
    fn text(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Name(s) => Some(s),
            _ => None,
        }
    }
}

/// Where a statement is, and its text for reports.
#[derive(Debug, Clone)]
struct Place {
    file: PathBuf,
    line: usize,
    text: String,
}

impl Place {
    fn left(&self, why: impl Into<String>) -> Left {
        Left::new(&self.file, self.line, &self.text, why)
    }
}

/// A promise: its type, the class guard it stands under, promiser and
/// constraints.
#[derive(Debug, Clone)]
struct Promise {
    kind: String,
    guard: String,
    promiser: String,
    constraints: Vec<(String, Value)>,
    place: Place,
}

impl Promise {
    fn get(&self, key: &str) -> Option<&Value> {
        self.constraints
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn string(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::text)
    }
}

/// A body: `body process_select NAME(PARAMS) { KEY => VALUE; }`.
#[derive(Debug, Clone)]
struct Body {
    params: Vec<String>,
    settings: Vec<(String, Value)>,
}

/// Everything read from the files.
#[derive(Default)]
struct Read {
    promises: Vec<Promise>,
    bodies: HashMap<(String, String), Body>,
}

/// A variable's value and the class guard it was defined under.
#[derive(Debug, Clone)]
enum Var {
    Scalar(String, String),
    List(Vec<String>, String),
}

/// Reads `paths` and converts them. Err: a file that cannot be read or
/// parsed, with why.
pub fn import(paths: &[PathBuf]) -> Result<Import, String> {
    let mut read = Read::default();
    for path in paths {
        let text = super::read(path)?;
        let parsed = CfParser::parse(Rule::file, &text).map_err(|e| {
            let e = e.with_path(&path.display().to_string());
            format!("cannot parse: {e}")
        })?;
        let file = parsed.into_iter().next().expect("file");
        for block in file.into_inner() {
            match block.as_rule() {
                Rule::bundle => bundle(block, path, &text, &mut read),
                Rule::body => body(block, &mut read),
                _ => {}
            }
        }
    }
    let mut import = Import::default();
    convert(&read, &mut import);
    import.unique_ids();
    Ok(import)
}

fn string(pair: Pair) -> String {
    let inner = pair.into_inner().next().expect("string body");
    match inner.as_rule() {
        Rule::dq => inner.as_str().replace("\\\"", "\""),
        Rule::sq => inner.as_str().replace("\\'", "'"),
        _ => inner.as_str().to_string(),
    }
}

fn value(pair: Pair) -> Value {
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

fn bundle(pair: Pair, path: &Path, text: &str, read: &mut Read) {
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
                let mut parts = item.into_inner();
                let promiser = string(parts.next().expect("promiser"));
                let constraints = parts
                    .filter(|p| p.as_rule() == Rule::constraint)
                    .map(|c| {
                        let mut kv = c.into_inner();
                        let key = kv.next().expect("key").as_str().to_string();
                        (key, value(kv.next().expect("value")))
                    })
                    .collect();
                read.promises.push(Promise {
                    kind: section.clone(),
                    guard: guard.clone(),
                    promiser,
                    constraints,
                    place: Place {
                        file: path.to_path_buf(),
                        line: line_of(text, span.start()),
                        text: span.as_str().to_string(),
                    },
                });
            }
            _ => {}
        }
    }
}

fn body(pair: Pair, read: &mut Read) {
    let mut inner = pair.into_inner();
    let kind = inner.next().expect("kind").as_str().to_string();
    let name = inner.next().expect("name").as_str().to_string();
    let mut params = Vec::new();
    let mut settings = Vec::new();
    for item in inner {
        match item.as_rule() {
            Rule::params => params = item.into_inner().map(|p| p.as_str().to_string()).collect(),
            Rule::setting => {
                let mut kv = item.into_inner();
                let key = kv.next().expect("key").as_str().to_string();
                settings.push((key, value(kv.next().expect("value"))));
            }
            _ => {}
        }
    }
    read.bodies.insert((kind, name), Body { params, settings });
}

/// The variables the files define: scalars and lists, by name (arrays
/// under their full name, `services[ssh][name]`), in the order met.
fn variables(read: &Read, left: &mut Vec<Left>) -> (HashMap<String, Var>, Vec<String>) {
    let mut vars: HashMap<String, Var> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for p in read.promises.iter().filter(|p| p.kind == "vars") {
        let (kind, v) = match p.constraints.first() {
            Some((k, v)) => (k.as_str(), v),
            None => continue,
        };
        let var = match (kind, v) {
            ("string" | "int" | "real", Value::Str(s)) => Var::Scalar(s.clone(), p.guard.clone()),
            ("slist" | "ilist" | "rlist", Value::List(items)) => {
                let items: Option<Vec<String>> =
                    items.iter().map(|i| i.text().map(str::to_string)).collect();
                match items {
                    Some(items) => Var::List(items, p.guard.clone()),
                    None => {
                        left.push(p.place.left("a list of other than strings"));
                        continue;
                    }
                }
            }
            ("slist", Value::Call(f, args)) if f == "getindices" => {
                let Some(array) = args.first().and_then(Value::text) else {
                    continue;
                };
                let array = array.trim_start_matches("$(").trim_end_matches(')');
                let prefix = format!("{array}[");
                let mut keys: Vec<String> = Vec::new();
                for name in &order {
                    if let Some(rest) = name.strip_prefix(&prefix) {
                        let key = rest.split(']').next().unwrap_or("").to_string();
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
                Var::List(keys, p.guard.clone())
            }
            (_, Value::Call(f, _)) => {
                left.push(p.place.left(format!(
                    "`{f}()` is CFEngine's to evaluate; tend import expands only values written in the files"
                )));
                continue;
            }
            _ => {
                left.push(
                    p.place
                        .left(format!("a `{kind}` variable is not carried over")),
                );
                continue;
            }
        };
        order.push(p.promiser.clone());
        vars.insert(p.promiser.clone(), var);
    }
    (vars, order)
}

/// `$(NAME)` and `${NAME}` replaced, innermost first, from `bound` (the
/// lists walked) then `vars`; the guards of the variables used are added
/// to `guards`. Err: the first variable the files do not define.
fn expand(
    text: &str,
    bound: &HashMap<String, String>,
    vars: &HashMap<String, Var>,
    guards: &mut Vec<String>,
) -> Result<String, String> {
    let mut text = text.to_string();
    for _ in 0..MAX_EXPANSIONS {
        // The innermost reference: the last `$(` or `${` (its content has
        // none), up to its closing bracket.
        let Some(at) = text.rfind("$(").into_iter().chain(text.rfind("${")).max() else {
            return Ok(text);
        };
        let close = if &text[at + 1..at + 2] == "(" {
            ')'
        } else {
            '}'
        };
        let Some(len) = text[at + 2..].find(close) else {
            return Ok(text);
        };
        let name = text[at + 2..at + 2 + len].to_string();
        let short = name.rsplit_once('.').map_or(name.as_str(), |(_, n)| n);
        let value = if let Some(v) = bound.get(&name) {
            v.clone()
        } else {
            match vars.get(&name).or_else(|| {
                // `$(bundle.var)`: the files' own bundles only.
                (!name.starts_with("sys.") && !name.starts_with("const."))
                    .then(|| vars.get(short))
                    .flatten()
            }) {
                Some(Var::Scalar(v, guard)) => {
                    guards.push(guard.clone());
                    v.clone()
                }
                _ => return Err(name),
            }
        };
        text.replace_range(at..at + 2 + len + 1, &value);
    }
    Err(text)
}

/// The lists a promise walks: those its strings name as `$(LIST)`.
fn walked<'a>(
    p: &Promise,
    vars: &'a HashMap<String, Var>,
) -> Vec<(&'a str, &'a [String], &'a str)> {
    let mut texts = vec![p.promiser.as_str()];
    for (_, v) in &p.constraints {
        if let Some(t) = v.text() {
            texts.push(t);
        }
    }
    let mut out: Vec<(&str, &[String], &str)> = Vec::new();
    for (name, var) in vars {
        if let Var::List(items, guard) = var {
            let r1 = format!("$({name})");
            let r2 = format!("${{{name}}}");
            if texts.iter().any(|t| t.contains(&r1) || t.contains(&r2))
                && !out.iter().any(|(n, _, _)| n == name)
            {
                out.push((name.as_str(), items.as_slice(), guard.as_str()));
            }
        }
    }
    out.sort_by_key(|(n, _, _)| *n);
    out
}

/// Every binding of the lists a promise walks (one, empty, when none).
fn bindings(lists: &[(&str, &[String], &str)]) -> Vec<HashMap<String, String>> {
    let mut all = vec![HashMap::new()];
    for (name, items, _) in lists {
        let mut next = Vec::new();
        for b in &all {
            for item in *items {
                let mut b = b.clone();
                b.insert(name.to_string(), item.clone());
                next.push(b);
            }
        }
        all = next;
    }
    all
}

/// A tend guard from CFEngine class expressions (all must hold).
fn guard_of(parts: &[String]) -> Option<String> {
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
struct Command {
    command: String,
    when: String,
    guards: Vec<String>,
    shell: bool,
    /// The classes it sets (`classes => if_notkept("x")`): reports under
    /// them say what tend says itself.
    sets: Vec<String>,
    index: usize,
}

fn convert(read: &Read, import: &mut Import) {
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
            let when = p
                .string("ifvarclass")
                .or_else(|| p.string("if"))
                .map(|c| expand(c, &b, &vars, &mut guards).unwrap_or_default())
                .unwrap_or_else(|| p.guard.clone());
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
    let mut used: HashSet<usize> = HashSet::new();
    let mut quiet: HashSet<String> = HashSet::new();
    for p in &read.promises {
        match p.kind.as_str() {
            "vars" | "commands" | "reports" => {}
            "processes" => processes(p, read, &vars, &commands, &mut used, &mut quiet, import),
            "services" => services(p, import),
            "classes" => classes(p, import),
            "meta" => {}
            kind => import.left.push(p.place.left(format!(
                "`{kind}:` promises are not carried over: tend keeps processes running"
            ))),
        }
    }
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

#[allow(clippy::too_many_arguments)]
fn processes(
    p: &Promise,
    read: &Read,
    vars: &HashMap<String, Var>,
    commands: &[Command],
    used: &mut HashSet<usize>,
    quiet: &mut HashSet<String>,
    import: &mut Import,
) {
    let lists = walked(p, vars);
    for b in bindings(&lists) {
        let mut guards: Vec<String> = vec![p.guard.clone()];
        guards.extend(lists.iter().map(|(_, _, g)| g.to_string()));
        let pattern = match expand(&p.promiser, &b, vars, &mut guards) {
            Ok(s) => s,
            Err(name) => {
                import.left.push(p.place.left(format!(
                    "`$({name})` is not defined in these files; expand it by hand"
                )));
                continue;
            }
        };
        let Some(class) = p.string("restart_class") else {
            import.left.push(p.place.left(
                "no `restart_class`: the promise restarts nothing (tend's services are what must run)",
            ));
            continue;
        };
        let class = expand(class, &b, vars, &mut Vec::new()).unwrap_or_default();
        quiet.insert(class.clone());
        let restart: Vec<&Command> = commands.iter().filter(|c| c.when == class).collect();
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
        d.set("process", literal(&pattern));
        select(p, read, &b, vars, &mut d);
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
fn select(
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
        for (key, v) in &body.settings {
            match (kind, key.as_str()) {
                ("process_select", "process_owner") => match text(v) {
                    Some(user) => d.set("user", literal(&user)),
                    None => d.left.push(
                        p.place
                            .left("`process_owner` of several users: tend's `user` is one"),
                    ),
                },
                ("process_select", "command") => match text(v) {
                    Some(re) => d.set("process", literal(&re)),
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
fn id_from_pattern(pattern: &str) -> String {
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

/// `services: "ssh" service_policy => "start";` -> a service with that unit.
fn services(p: &Promise, import: &mut Import) {
    match p.string("service_policy") {
        Some("start") | None => {
            let from = format!("{}:{} (services)", p.place.file.display(), p.place.line);
            let mut d = Draft::new(&p.promiser, from, &p.place.file);
            d.guard = guard_of(std::slice::from_ref(&p.guard));
            if d.guard.as_deref().is_some_and(|g| !plain(g)) {
                import.left.push(p.place.left(
                    "its classes are CFEngine's to evaluate (variables, functions); write the guard by hand",
                ));
                return;
            }
            d.set("unit", literal(&p.promiser));
            for (key, _) in &p.constraints {
                if !matches!(key.as_str(), "service_policy" | "comment" | "handle") {
                    d.left.push(p.place.left(format!("`{key}` is not carried over")));
                }
            }
            import.drafts.push(d);
        }
        Some(policy) => import.left.push(p.place.left(format!(
            "service_policy `{policy}`: tend keeps services running; it starts, it never stops or disables"
        ))),
    }
}

/// `classes: "web" expression => "www1|www2";` -> `class web = www1|www2`.
fn classes(p: &Promise, import: &mut Import) {
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
    match expr {
        _ if p.guard != "any" => import.left.push(p.place.left(
            "a class defined under a guard: write it as `class NAME = ...` with the guard in the expression",
        )),
        Some(e) if plain(&e) => import.classes.push((p.place.file.clone(), p.promiser.clone(), e)),
        _ => import.left.push(p.place.left(
            "only classes from `expression`, `or`, `and` or `not` of class names carry over",
        )),
    }
}

/// A class expression tend reads as it is: names, `! & | . ( )`, no
/// function calls.
fn plain(e: &str) -> bool {
    let chars_ok = e
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_!&|.() ".contains(c));
    let call = e
        .as_bytes()
        .windows(2)
        .any(|w| (w[0].is_ascii_alphanumeric() || w[0] == b'_') && w[1] == b'(');
    !e.is_empty() && chars_ok && !call
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_table() {
        let mut vars = HashMap::new();
        vars.insert(
            "s[ssh][process]".to_string(),
            Var::Scalar("/usr/sbin/sshd".into(), "any".into()),
        );
        vars.insert("dir".to_string(), Var::Scalar("/opt".into(), "web".into()));
        let mut bound = HashMap::new();
        bound.insert("s".to_string(), "ssh".to_string());
        for (text, want, guards) in [
            ("$(s[$(s)][process])", Ok("/usr/sbin/sshd"), vec!["any"]),
            (
                "${dir}/bin/x $(main.dir)",
                Ok("/opt/bin/x /opt"),
                vec!["web", "web"],
            ),
            ("$(sys.fqhost)", Err("sys.fqhost"), vec![]),
            ("no vars", Ok("no vars"), vec![]),
        ] {
            let mut g = Vec::new();
            assert_eq!(
                expand(text, &bound, &vars, &mut g),
                want.map(str::to_string).map_err(str::to_string),
                "{text}"
            );
            assert_eq!(g, guards, "{text}");
        }
    }

    /// A bundle: the services it comes to (id, guard, attributes) and how
    /// many statements it reports.
    #[test]
    fn promises_table() {
        let dir = tempfile::tempdir().unwrap();
        type Want<'a> = Vec<(&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>)>;
        let rows: Vec<(&str, Want, usize)> = vec![
            (
                r#"bundle agent main {
  classes: "web" expression => "www1|www2";
  processes:
    linux::
      "/usr/sbin/ntpd" restart_class => "ntp_down", process_select => mine("ntp"),
          process_count => one;
  commands:
    ntp_down::
      "/usr/sbin/service ntp restart" contain => in_shell;
  services:
    web:: "nginx" service_policy => "start";
    "telnet" service_policy => "disable";
  files: "/etc/motd" create => "true";
}
body process_select mine(u) { process_owner => { "$(u)" }; command => "ntpd -g"; process_result => "process_owner"; }
body process_count one { match_range => irange("1", "1"); }"#,
                vec![
                    (
                        "ntpd",
                        Some("linux"),
                        vec![
                            ("process", "\"ntpd -g\""),
                            ("user", "\"ntp\""),
                            ("count", "1"),
                            ("restart", "\"/usr/sbin/service ntp restart\""),
                            ("shell", "yes"),
                        ],
                    ),
                    ("nginx", Some("web"), vec![("unit", "\"nginx\"")]),
                ],
                2,
            ),
            (
                r#"bundle agent main {
  vars: "bin" string => "/opt/app/bin";
  processes:
    "$(bin)/app --serve" restart_class => "app_gone";
    "$(sys.workdir)/x" restart_class => "x_gone";
    "/usr/bin/lonely" signals => { "term" };
  commands:
    "$(bin)/app --serve" ifvarclass => "app_gone";
    "/usr/bin/unrelated";
  reports:
    "app restarted" ifvarclass => "app_gone";
    "hello";
}"#,
                vec![(
                    "app",
                    None,
                    vec![
                        ("process", "\"/opt/app/bin/app --serve\""),
                        ("restart", "\"/opt/app/bin/app --serve\""),
                    ],
                )],
                4,
            ),
        ];
        for (text, want, left) in rows {
            let path = dir.path().join("p.cf");
            std::fs::write(&path, text).unwrap();
            let import = import(&[path]).unwrap();
            let got: Want = import
                .drafts
                .iter()
                .map(|d| {
                    let attrs = d
                        .attrs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    (d.id.as_str(), d.guard.as_deref(), attrs)
                })
                .collect();
            assert_eq!(got, want, "{text}");
            assert_eq!(import.all_left().len(), left, "{:#?}", import.all_left());
        }
    }

    #[test]
    fn guard_table() {
        for (parts, want) in [
            (vec!["any"], None),
            (vec!["any", "web|dns"], Some("web|dns")),
            (vec!["web|dns", "web|dns"], Some("web|dns")),
            (vec!["linux", "web|dns"], Some("linux & (web|dns)")),
        ] {
            let parts: Vec<String> = parts.into_iter().map(str::to_string).collect();
            assert_eq!(guard_of(&parts).as_deref(), want);
        }
    }
}
