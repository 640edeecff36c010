//! CFEngine's variables: where the files define them (with the guard they
//! stand under), expanded in the strings that use them, lists walked as
//! CFEngine iterates them; an undefined or self-naming variable reported.

use std::collections::HashMap;

use super::read::{Promise, Read, Value};
use crate::import::Left;

/// Expansions of one string deeper than this are refused (a variable that
/// names itself).
pub(super) const MAX_EXPANSIONS: usize = 64;

/// A variable's value and the class guard it was defined under.
#[derive(Debug, Clone)]
pub(super) enum Var {
    Scalar(String, String),
    List(Vec<String>, String),
}

/// The variables the files define: scalars and lists, by name (arrays
/// under their full name, `services[ssh][name]`), in the order met.
pub(super) fn variables(read: &Read, left: &mut Vec<Left>) -> (HashMap<String, Var>, Vec<String>) {
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
pub(super) fn expand(
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
pub(super) fn walked<'a>(
    p: &Promise,
    vars: &'a HashMap<String, Var>,
) -> Vec<(&'a str, &'a [String], &'a str)> {
    let mut texts = vec![p.promiser.as_str(), p.guard.as_str()];
    for (_, v) in &p.constraints {
        strings(v, &mut texts);
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
pub(super) fn bindings(lists: &[(&str, &[String], &str)]) -> Vec<HashMap<String, String>> {
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

/// Every string in `v`, in lists and calls' arguments too.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Str(s) | Value::Name(s) => out.push(s),
        Value::List(items) | Value::Call(_, items) => items.iter().for_each(|i| strings(i, out)),
    }
}

/// CFEngine's `canonify()`: every character but letters, digits and `_`
/// made `_`, as CFEngine does to the classes a promise sets.
pub(super) fn canonify(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A class a constraint names, expanded: a string, or `canonify(STRING)`
/// (CFEngine's own example: `restart_class => canonify("start_$(c)")`).
/// None: another function, or a variable the files do not define.
pub(super) fn class_of(
    v: &Value,
    bound: &HashMap<String, String>,
    vars: &HashMap<String, Var>,
    guards: &mut Vec<String>,
) -> Option<String> {
    match v {
        Value::Str(s) | Value::Name(s) => expand(s, bound, vars, guards).ok(),
        Value::Call(f, args) if f == "canonify" || f == "default:canonify" => match args.as_slice()
        {
            [arg] => class_of(arg, bound, vars, guards).map(|c| canonify(&c)),
            _ => None,
        },
        _ => None,
    }
}
