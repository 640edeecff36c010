//! Turns the text of one policy file into syntax items.
//!
//! The pest grammar in `grammar/policy.pest` decides what is well formed; this
//! module builds plain data from it (guards, class definitions, service
//! blocks, each with source spans) and turns pest's failures into diagnostics
//! an admin can read. When a file has a syntax error the rest of the file is
//! still parsed, statement by statement, so one run reports every mistake.

use pest::Parser as _;
use pest_derive::Parser;

use crate::diagnostic::{Diagnostic, FileId, Span};

#[derive(Parser)]
#[grammar = "../grammar/policy.pest"]
struct PolicyParser;

type Pair<'a> = pest::iterators::Pair<'a, Rule>;

/// Deeper nesting than this in a class expression is refused, so that no
/// input can exhaust the stack.
const MAX_NESTING: usize = 32;

/// A piece of text with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spanned {
    pub(crate) text: String,
    pub(crate) span: Span,
}

/// A class expression, as written in guards and class definitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expr {
    Class(Spanned),
    Call { name: Spanned, arg: Spanned },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Prints an expression back in policy syntax, with parentheses only where
/// precedence needs them.
impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn join(
            f: &mut std::fmt::Formatter<'_>,
            v: &[Expr],
            op: &str,
            wrap_or: bool,
        ) -> std::fmt::Result {
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, "{op}")?;
                }
                if wrap_or && matches!(e, Expr::Or(_)) {
                    write!(f, "({e})")?;
                } else {
                    write!(f, "{e}")?;
                }
            }
            Ok(())
        }
        match self {
            Expr::Class(c) => write!(f, "{}", c.text),
            Expr::Call { name, arg } => write!(f, "{}({:?})", name.text, arg.text),
            Expr::Not(e) => match **e {
                Expr::And(_) | Expr::Or(_) => write!(f, "!({e})"),
                _ => write!(f, "!{e}"),
            },
            Expr::And(v) => join(f, v, "&", true),
            Expr::Or(v) => join(f, v, "|", false),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// A quoted string: always text, never a number or keyword.
    Quoted,
    /// A bare word: a number, duration, yes/no, a keyword.
    Word,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) kind: ValueKind,
    pub(crate) text: String,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attribute {
    pub(crate) key: Spanned,
    pub(crate) values: Vec<Value>,
    pub(crate) span: Span,
    /// A `=` written between the key and its values (`process = "..."`,
    /// Monit's habit): an error the analyzer says; the values are read as
    /// if it were not there.
    pub(crate) equals: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    ClassDef {
        name: Spanned,
        expr: Expr,
    },
    Guard(Expr),
    Service {
        id: Spanned,
        attributes: Vec<Attribute>,
    },
    /// `defaults { ... }`: settings for every service of the policy.
    Defaults {
        span: Span,
        attributes: Vec<Attribute>,
    },
    /// `channel ID { ... }`: where events are sent beyond tend's output.
    Channel {
        id: Spanned,
        attributes: Vec<Attribute>,
    },
}

/// Parses one file. Returns the items that parsed and every syntax error.
pub(crate) fn parse(file: FileId, text: &str) -> (Vec<Item>, Vec<Diagnostic>) {
    match parse_at(file, text, 0) {
        Ok(items) => (items, Vec::new()),
        Err(first) => recover(file, text, first),
    }
}

/// Parses `text`, which stands at `offset` in `file`, as one class
/// expression (the value of `hold during`).
pub(crate) fn expression(file: FileId, text: &str, offset: usize) -> Result<Expr, Diagnostic> {
    let mut pairs = PolicyParser::parse(Rule::lone_expr, text).map_err(|e| {
        let mut d = syntax_error(file, text, offset, &e);
        let message = d
            .message
            .replace("end of file", "the end of the expression");
        d.message = format!("`hold during` needs a class expression: {message}");
        d
    })?;
    let builder = Builder { file, offset };
    let expr = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .expect("lone_expr holds an expr");
    builder.expr(expr, 0)
}

/// Parses `text[offset..]` as a whole policy.
fn parse_at(file: FileId, text: &str, offset: usize) -> Result<Vec<Item>, Diagnostic> {
    let chunk = &text[offset..];
    let pairs = PolicyParser::parse(Rule::policy, chunk)
        .map_err(|e| syntax_error(file, chunk, offset, &e))?;
    let builder = Builder { file, offset };
    let mut items = Vec::new();
    for pair in pairs.flatten().filter(is_statement) {
        items.push(builder.item(pair)?);
    }
    Ok(items)
}

fn is_statement(pair: &Pair) -> bool {
    matches!(
        pair.as_rule(),
        Rule::class_def | Rule::guard | Rule::service | Rule::defaults | Rule::channel
    )
}

/// After a syntax error, parse each statement on its own: a statement starts
/// on a line that begins with `class`, `service`, `defaults` or `channel` (indented or
/// not: services are often indented under their guard), or with a guard
/// ending in `::` in its first column. Items from statements that parse are
/// kept so their meaning can be checked too: a broken guard does not hide
/// the errors of the services under it.
fn recover(file: FileId, text: &str, first: Diagnostic) -> (Vec<Item>, Vec<Diagnostic>) {
    let mut starts: Vec<usize> = statement_starts(text);
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        // Parse the statement alone: cut the text at its end.
        match parse_at(file, &text[..end], start) {
            Ok(mut parsed) => items.append(&mut parsed),
            // The statement ran into the next one: say which block is not
            // closed, not "end of file" at the next statement.
            Err(e)
                if end < text.len()
                    && (e.message.ends_with("found end of file")
                        || e.message.ends_with("is missing at the end of the file")) =>
            {
                let next = text[end..].lines().next().unwrap_or("").trim();
                errors.push(
                    unclosed(file, &text[..end], start, &format!("before `{next}`")).unwrap_or(e),
                );
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        // Splitting hid the problem (it lies across statements): report the
        // error the whole file gave.
        errors.push(first);
    }
    (items, errors)
}

fn statement_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.split('#').next().unwrap_or("").trim_end();
        let indented = line.starts_with([' ', '\t']);
        let first_word = code
            .trim_start()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next();
        let keyword = matches!(
            first_word,
            Some("class" | "service" | "defaults" | "channel")
        );
        if keyword || (code.ends_with("::") && !indented) {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
}

/// The last `{` of `text[start..]` that no `}` closes (quotes and comments
/// skipped), said as a block not closed `where` (`before `service b {``,
/// `at the end of the file`).
fn unclosed(file: FileId, text: &str, start: usize, place: &str) -> Option<Diagnostic> {
    let mut open = Vec::new();
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        let at = start + i;
        match (quote, c) {
            _ if comment => comment = c != '\n',
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (Some(_), '\n') => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => comment = true,
            (None, '{') => open.push(at),
            (None, '}') => {
                open.pop();
            }
            _ => {}
        }
        escaped = false;
    }
    let brace = *open.last()?;
    let head = text[..brace].rsplit('\n').next().unwrap_or("").trim();
    Some(Diagnostic::error(
        Span::new(file, brace, brace + 1),
        format!("`{head} {{` is not closed: a `}}` is missing {place}"),
    ))
}

fn syntax_error(
    file: FileId,
    chunk: &str,
    offset: usize,
    e: &pest::error::Error<Rule>,
) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    // A quote that its line does not close: the string, not what follows.
    let rest = &chunk[pos..];
    if let Some(q) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        let line = rest[1..].lines().next().unwrap_or("");
        let closed = match q {
            '"' => {
                let mut escaped = false;
                line.chars().any(|c| {
                    let end = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                })
            }
            _ => line.contains('\''),
        };
        if !closed {
            return Diagnostic::error(
                Span::new(file, offset + pos, offset + pos + 1),
                format!("this string is not closed: add the closing `{q}` (a quoted string ends on its line)"),
            );
        }
    }
    // The end of the file inside a block.
    if pos == chunk.len() {
        let expects_brace = matches!(&e.variant, pest::error::ErrorVariant::ParsingError { positives, .. } if positives.contains(&Rule::rbrace));
        if let Some(d) = expects_brace
            .then(|| unclosed(file, chunk, 0, "at the end of the file"))
            .flatten()
        {
            return Diagnostic::error(
                Span::new(file, offset + d.span.start, offset + d.span.end),
                d.message,
            );
        }
    }
    let found = describe_found(&chunk[pos..]);
    let line_before = chunk[..pos].rsplit('\n').next().unwrap_or("").trim_end();
    let message = match &e.variant {
        // `web:: service x {`: the guard's line must end after `::`.
        _ if line_before.ends_with("::") && !chunk[pos..].starts_with(['\n', '\r', '#']) => {
            format!(
                "a guard must end its line: put {found} on the line after `{}`",
                line_before.trim_start()
            )
        }
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut wanted: Vec<&str> = positives.iter().filter_map(|r| label(*r)).collect();
            wanted.sort_unstable();
            wanted.dedup();
            match wanted.as_slice() {
                [] => format!("unexpected {found}"),
                [one] => format!("expected {one}, found {found}"),
                [init @ .., last] => {
                    format!("expected {} or {last}, found {found}", init.join(", "))
                }
            }
        }
        // pest's own guard against deep recursion.
        pest::error::ErrorVariant::CustomError { message } if message.contains("stack limit") => {
            format!("nested too deeply (a class expression may nest {MAX_NESTING} deep)")
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let end = offset + pos + chunk[pos..].chars().next().map_or(0, char::len_utf8);
    Diagnostic::error(Span::new(file, offset + pos, end), message)
}

fn describe_found(rest: &str) -> String {
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some('\n' | '\r') => "end of line".to_string(),
        Some(c) if c.is_control() => format!("control character U+{:04X}", c as u32),
        Some(_) => {
            let token: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(20)
                .collect();
            format!("`{token}`")
        }
    }
}

/// What an admin calls the thing a rule stands for; None hides a rule that
/// only repeats what another label says.
fn label(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::equals => "`=`",
        Rule::guard_end => "`::`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::class_def | Rule::kw_class => "`class`",
        Rule::service | Rule::kw_service => "`service`",
        Rule::defaults | Rule::kw_defaults => "`defaults`",
        Rule::channel | Rule::kw_channel => "`channel`",
        Rule::guard => "a guard (`CLASS::`)",
        Rule::class_name => "a class name",
        Rule::service_id => "a service id",
        Rule::key | Rule::attribute => "an attribute",
        Rule::string | Rule::raw_string => "a quoted string",
        Rule::word => "a value",
        Rule::expr | Rule::and_expr | Rule::term | Rule::class_ref | Rule::call | Rule::not => {
            "a class expression"
        }
        _ => return None,
    })
}

fn is_punctuation(pair: &Pair) -> bool {
    matches!(
        pair.as_rule(),
        Rule::equals
            | Rule::guard_end
            | Rule::lbrace
            | Rule::rbrace
            | Rule::kw_class
            | Rule::kw_service
            | Rule::kw_defaults
            | Rule::kw_channel
    )
}

struct Builder {
    file: FileId,
    offset: usize,
}

impl Builder {
    fn span(&self, pair: &Pair) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.offset + s.start(), self.offset + s.end())
    }

    fn spanned(&self, pair: &Pair) -> Spanned {
        Spanned {
            text: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    fn item(&self, pair: Pair) -> Result<Item, Diagnostic> {
        let rule = pair.as_rule();
        if rule == Rule::defaults {
            let span = self.span(&pair);
            let attributes = pair
                .into_inner()
                .filter(|p| p.as_rule() == Rule::attribute)
                .map(|a| self.attribute(a))
                .collect();
            return Ok(Item::Defaults { span, attributes });
        }
        let mut inner = pair.into_inner().filter(|p| !is_punctuation(p));
        let mut next = || {
            inner
                .next()
                .expect("grammar guarantees the parts of a statement")
        };
        Ok(match rule {
            Rule::class_def => {
                let name = self.spanned(&next());
                let expr = self.expr(next(), 0)?;
                Item::ClassDef { name, expr }
            }
            Rule::guard => Item::Guard(self.expr(next(), 0)?),
            Rule::channel => {
                let id = self.spanned(&next());
                let attributes = inner.map(|a| self.attribute(a)).collect();
                Item::Channel { id, attributes }
            }
            _ => {
                let id = self.spanned(&next());
                let attributes = inner.map(|a| self.attribute(a)).collect();
                Item::Service { id, attributes }
            }
        })
    }

    fn attribute(&self, pair: Pair) -> Attribute {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let key = self.spanned(&inner.next().expect("an attribute starts with its key"));
        let mut values: Vec<Value> = inner.map(|v| self.value(v)).collect();
        let equals =
            (values.len() > 1 && values[0].kind == ValueKind::Word && values[0].text == "=")
                .then(|| values.remove(0).span);
        Attribute {
            key,
            values,
            span,
            equals,
        }
    }

    fn value(&self, pair: Pair) -> Value {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::word => Value {
                kind: ValueKind::Word,
                text: pair.as_str().to_string(),
                span,
            },
            _ => Value {
                kind: ValueKind::Quoted,
                text: self.string(pair),
                span,
            },
        }
    }

    fn string(&self, pair: Pair) -> String {
        let quoted = pair.as_rule() == Rule::string;
        let body = pair.into_inner().next().map_or("", |b| b.as_str());
        if quoted {
            unescape(body)
        } else {
            body.to_string()
        }
    }

    fn expr(&self, pair: Pair, depth: usize) -> Result<Expr, Diagnostic> {
        if depth > MAX_NESTING {
            return Err(Diagnostic::error(
                self.span(&pair),
                format!("class expression nested more than {MAX_NESTING} deep"),
            ));
        }
        match pair.as_rule() {
            Rule::expr | Rule::and_expr => {
                let or = pair.as_rule() == Rule::expr;
                let mut parts = pair
                    .into_inner()
                    .map(|p| self.expr(p, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(match (parts.len(), or) {
                    (1, _) => parts.remove(0),
                    (_, true) => Expr::Or(parts),
                    (_, false) => Expr::And(parts),
                })
            }
            Rule::term => {
                let mut nots = 0;
                let mut primary = None;
                for p in pair.into_inner() {
                    if p.as_rule() == Rule::not {
                        nots += 1;
                    } else {
                        primary = Some(self.expr(p, depth + 1)?);
                    }
                }
                // `!!x` is `x`: any number of `!` is one or none, so no
                // run of them nests (100,000 would overflow the stack).
                let e = primary.expect("a term ends with a primary");
                Ok(match nots % 2 {
                    1 => Expr::Not(Box::new(e)),
                    _ => e,
                })
            }
            Rule::call => {
                let mut inner = pair.into_inner();
                let name = self.spanned(&inner.next().expect("a call has a name"));
                let arg_pair = inner.next().expect("a call has an argument");
                let span = self.span(&arg_pair);
                let arg = Spanned {
                    text: self.string(arg_pair),
                    span,
                };
                Ok(Expr::Call { name, arg })
            }
            _ => Ok(Expr::Class(self.spanned(&pair))),
        }
    }
}

/// `\"` and `\\` are escapes; every other backslash is kept, so that
/// regular expressions need no doubling.
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(q @ ('"' | '\\')) => out.push(q),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<Item> {
        let (items, errors) = parse(0, text);
        assert!(errors.is_empty(), "{text:?}: {errors:?}");
        items
    }

    fn error_messages(text: &str) -> Vec<String> {
        parse(0, text).1.into_iter().map(|d| d.message).collect()
    }

    /// Expressions printed back fully parenthesised show the precedence.
    fn shape(e: &Expr) -> String {
        match e {
            Expr::Class(c) => c.text.clone(),
            Expr::Call { name, arg } => format!("{}({:?})", name.text, arg.text),
            Expr::Not(e) => format!("!{}", shape(e)),
            Expr::And(v) => format!("({})", v.iter().map(shape).collect::<Vec<_>>().join(" & ")),
            Expr::Or(v) => format!("({})", v.iter().map(shape).collect::<Vec<_>>().join(" | ")),
        }
    }

    #[test]
    fn guard_precedence_table() {
        for (src, want) in [
            ("any::", "any"),
            ("web|dns::", "(web | dns)"),
            ("web||dns::", "(web | dns)"),
            ("a|b&c::", "(a | (b & c))"),
            ("a.b|c::", "((a & b) | c)"),
            ("a&&b::", "(a & b)"),
            ("!a&b::", "(!a & b)"),
            ("!(a|b)::", "!(a | b)"),
            // Any run of `!` is one or none.
            ("!!a::", "a"),
            ("!!!a::", "!a"),
            ("( a | b ) . c ::", "((a | b) & c)"),
            (
                "hostname(\"web-*\")|debian_12::",
                "(hostname(\"web-*\") | debian_12)",
            ),
            ("Min05_10.Hr08::", "(Min05_10 & Hr08)"),
        ] {
            let got = match items(src).as_slice() {
                [Item::Guard(e)] => shape(e),
                other => panic!("{src}: {other:?}"),
            };
            assert_eq!(got, want, "{src}");
        }
    }

    #[test]
    fn expressions_print_back_table() {
        for (src, want) in [
            ("a | b . c::", "a|b&c"),
            ("(a|b)&c::", "(a|b)&c"),
            ("!(a&b)::", "!(a&b)"),
            ("hostname('web-*')::", "hostname(\"web-*\")"),
        ] {
            let Some(Item::Guard(e)) = items(src).pop() else {
                panic!("{src}")
            };
            assert_eq!(e.to_string(), want, "{src}");
        }
    }

    #[test]
    fn service_block_forms() {
        let text = "service ssh {\n  name \"OpenSSH\"   # comment\n  process '/usr/sbin/sshd'\n\n  timeout 30s; grace 5\n}\nservice x { restart \"a \\\"b\\\" \\d\" }\n";
        let all = items(text);
        let Item::Service { id, attributes } = &all[0] else {
            panic!()
        };
        assert_eq!(id.text, "ssh");
        let keys: Vec<_> = attributes.iter().map(|a| a.key.text.as_str()).collect();
        assert_eq!(keys, ["name", "process", "timeout", "grace"]);
        assert_eq!(attributes[0].values[0].text, "OpenSSH");
        assert_eq!(attributes[1].values[0].text, "/usr/sbin/sshd");
        assert_eq!(attributes[2].values[0].kind, ValueKind::Word);
        let Item::Service { attributes, .. } = &all[1] else {
            panic!()
        };
        assert_eq!(attributes[0].values[0].text, "a \"b\" \\d");
    }

    #[test]
    fn class_definitions_and_comments() {
        let all = items("# top\nclass web = www1 | hostname(\"web-*\")  # trailing\n\nweb::\n");
        assert!(matches!(&all[0], Item::ClassDef { name, .. } if name.text == "web"));
        assert!(matches!(&all[1], Item::Guard(_)));
        // A guard may be called `class` or `service`.
        assert!(matches!(items("class::")[0], Item::Guard(_)));
        assert!(matches!(items("service|x::")[0], Item::Guard(_)));
    }

    #[test]
    fn syntax_errors_table() {
        for (src, want) in [
            (
                "service ssh {\n  name \"x\n}\n",
                "this string is not closed: add the closing `\"` (a quoted string ends on its line)",
            ),
            (
                "service ssh {\n  name 'x\n}\n",
                "this string is not closed: add the closing `'` (a quoted string ends on its line)",
            ),
            (
                "service a {\n  process \"/a\"\n\nservice b {\n  process \"/b\"\n}\n",
                "`service a {` is not closed: a `}` is missing before `service b {`",
            ),
            (
                "service a {\n  process \"a}b\" # a } in a comment\n",
                "`service a {` is not closed: a `}` is missing at the end of the file",
            ),
            ("web|::\n", "expected a class expression, found `::`"),
            ("service {\n}\n", "expected `::` or a service id, found `{`"),
            (
                "service x {\n",
                "`service x {` is not closed: a `}` is missing at the end of the file",
            ),
            ("class = a\n", "expected `::` or a class name, found `=`"),
            ("web\n", "expected `::`, found end of line"),
            (
                "web:: service x {\n}\n",
                "a guard must end its line: put `service` on the line after `web::`",
            ),
            (
                "  web|dns:: class a = b\n",
                "a guard must end its line: put `class` on the line after `web|dns::`",
            ),
        ] {
            let got = error_messages(src);
            assert_eq!(got.len(), 1, "{src:?}: {got:?}");
            assert_eq!(got[0], want, "{src:?}");
        }
    }

    #[test]
    fn every_syntax_error_in_a_file_is_reported() {
        let src = "any::\nservice a {\n  name \"x\n}\nservice b {\n  restart \"ok\"\n}\nweb|::\n";
        let (items, errors) = parse(0, src);
        assert_eq!(errors.len(), 2, "{errors:?}");
        // The good statements between them still parse.
        assert!(items
            .iter()
            .any(|i| matches!(i, Item::Service { id, .. } if id.text == "b")));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for depth in [40, 5000, 100_000] {
            let src = format!("{}a{}::\n", "(".repeat(depth), ")".repeat(depth));
            let (_, errors) = parse(0, &src);
            assert_eq!(errors.len(), 1, "{depth}");
            assert!(
                errors[0].message.contains("nested") && errors[0].message.contains("32 deep"),
                "{depth}: {}",
                errors[0].message
            );
        }
        // A run of `!` does not nest at all.
        let (items, errors) = parse(0, &format!("{}a::\n", "!".repeat(100_001)));
        assert!(errors.is_empty());
        assert_eq!(items.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "\\PC*") {
            let _ = parse(0, &text);
        }

        /// Token soup near the language reaches deeper into the grammar than
        /// random text does.
        #[test]
        fn never_panics_on_policy_like_text(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    "service", "class", "any", "web", "::", "|", "&", ".", "!", "(", ")", "{", "}",
                    "=", "\"", "'", "#", "\n", ";", " ", "\t", "hostname", "process", "\"/x\"",
                    "restart", "10s", "\\", "é", "\r\n",
                ]),
                0..60,
            )
        ) {
            let text: String = tokens.concat();
            let (items, errors) = parse(0, &text);
            // Whatever happens, every error points inside the text.
            for e in &errors {
                proptest::prop_assert!(e.span.start <= text.len());
            }
            let _ = items;
        }
    }

    #[test]
    fn unescape_table() {
        for (raw, want) in [
            (r"a", "a"),
            (r#"\""#, "\""),
            (r"\\", "\\"),
            (r"\d+", r"\d+"),
            (r"x\", r"x\"),
        ] {
            assert_eq!(unescape(raw), want, "{raw}");
        }
    }
}
