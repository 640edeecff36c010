//! Typed readers for attribute values: each turns the words after an
//! attribute into the value it means (a duration, a port, a path, a limit),
//! or a diagnostic at the words that are wrong.

use std::time::Duration;

use crate::diagnostic::{Diagnostic, Span};
use crate::duration;
use crate::matcher;
use crate::parser::{Attribute, Value, ValueKind};
use crate::policy::{Action, CpuLimit, MemoryLimit, WhenStopped};

/// A duration written as one or two words (`5m`, `5 min`); the grammar is
/// [`crate::duration`]'s, the same as the command line's.
pub(super) fn words_duration(values: &[Value]) -> Option<Duration> {
    let text: Vec<&str> = values.iter().map(|v| v.text.as_str()).collect();
    duration::parse(&text.join(" "))
}

/// No wait in a pass is longer than a day: cron starts the next one long
/// before, and a longer one is surely a typo.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// `depends on ID, ID ...`: the ids, each with its position.
pub(super) fn depends_on(a: &Attribute) -> Result<Vec<(String, Span)>, Diagnostic> {
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

/// `limit N restarts within DURATION [then back off | then give up]`: the
/// budget, and whether tend backs off (the default) or gives up for good
/// once it is spent.
pub(super) fn limit(a: &Attribute) -> Result<(usize, i64, bool), Diagnostic> {
    let bad = || {
        Diagnostic::error(
            values_span(a),
            "`limit` is written `limit N restarts within DURATION [then back off | then give up]`, e.g. `limit 3 restarts within 30 min`",
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
    let then = words
        .iter()
        .position(|&w| w == "then")
        .unwrap_or(words.len());
    let give_up = match &words[then..] {
        [] | ["then", "back", "off"] => false,
        ["then", "give", "up"] => true,
        _ => return Err(bad()),
    };
    let within = words_duration(&a.values[3..then]).ok_or_else(bad)?;
    if within.is_zero() || within > MAX_DURATION || then > 5 {
        return Err(bad());
    }
    Ok((n, within.as_secs() as i64, give_up))
}

/// `hold during EXPR`: a class expression (a word such as `Sunday.Hr03`,
/// or quoted) while which the service's restarts are held.
pub(super) fn hold_during(a: &Attribute) -> Result<crate::parser::Expr, Diagnostic> {
    match a.values.as_slice() {
        [during, v] if during.text == "during" && during.kind == ValueKind::Word => {
            // A quoted value's text starts one byte into its span.
            let offset = v.span.start + usize::from(v.kind == ValueKind::Quoted);
            crate::parser::expression(v.span.file, &v.text, offset)
        }
        _ => Err(Diagnostic::error(
            values_span(a),
            "`hold` is written `hold during CLASS-EXPRESSION`, e.g. `hold during Sunday.Hr03` or `hold during \"backup_window|Hr03\"`",
        )),
    }
}

/// `backoff DURATION [up to DURATION]`: the first wait once the budget is
/// spent (also how long a service must then stay up to be forgiven), and
/// the longest, each at most a day.
pub(super) fn backoff(a: &Attribute) -> Result<(i64, i64), Diagnostic> {
    let bad = || {
        Diagnostic::error(
            values_span(a),
            "`backoff` is written `backoff DURATION [up to DURATION]`, e.g. `backoff 10m up to 6h`",
        )
    };
    if a.values.iter().any(|v| v.kind == ValueKind::Quoted) {
        return Err(bad());
    }
    let words: Vec<&str> = a.values.iter().map(|v| v.text.as_str()).collect();
    let up = words.iter().position(|&w| w == "up").unwrap_or(words.len());
    let first = words_duration(&a.values[..up]).ok_or_else(bad)?;
    let cap = match &words[up..] {
        [] => first.max(crate::policy::DEFAULT_LIMITS_BACKOFF_CAP),
        ["up", "to", ..] => words_duration(&a.values[up + 2..]).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if first.is_zero() || up > 2 {
        return Err(bad());
    }
    if cap < first || cap > MAX_DURATION {
        return Err(Diagnostic::error(
            values_span(a),
            "`backoff`'s longest wait must be at least its first, and at most 1 day",
        ));
    }
    Ok((first.as_secs() as i64, cap.as_secs() as i64))
}

/// `retry N [every DURATION]`: how many tries a failing check gets within
/// a pass (1 to 10), and the wait between them (default 1s, at most 60s).
pub(super) fn retry(a: &Attribute) -> Result<(u32, Duration), Diagnostic> {
    let bad = || {
        Diagnostic::error(
            values_span(a),
            "`retry` is written `retry N [every DURATION]`, N from 1 to 10, e.g. `retry 3 every 2s`",
        )
    };
    if a.values.is_empty() || a.values.iter().any(|v| v.kind == ValueKind::Quoted) {
        return Err(bad());
    }
    let n: u32 = a.values[0].text.parse().map_err(|_| bad())?;
    if !(1..=10).contains(&n) {
        return Err(bad());
    }
    let every = match a.values.get(1).map(|v| v.text.as_str()) {
        None => Duration::from_secs(1),
        Some("every") => words_duration(&a.values[2..]).ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    if every > Duration::from_secs(60) {
        return Err(bad());
    }
    Ok((n, every))
}

/// `tolerate N passes`: how many passes in a row a check may fail before
/// the service is restarted (1 to 100).
pub(super) fn tolerate(a: &Attribute) -> Result<u32, Diagnostic> {
    let bad = || {
        Diagnostic::error(
            values_span(a),
            "`tolerate` is written `tolerate N passes`, N from 1 to 100, e.g. `tolerate 3 passes`",
        )
    };
    let words: Vec<&str> = a.values.iter().map(|v| v.text.as_str()).collect();
    let n: u32 = match words.as_slice() {
        [n, "passes" | "pass"] if a.values.iter().all(|v| v.kind == ValueKind::Word) => {
            n.parse().map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    match n {
        1..=100 => Ok(n),
        _ => Err(bad()),
    }
}

/// `remind DURATION` or `remind never`
pub(super) fn remind(a: &Attribute) -> Result<Option<i64>, Diagnostic> {
    if a.values.len() == 1 && a.values[0].text == "never" && a.values[0].kind == ValueKind::Word {
        return Ok(None);
    }
    let d = words_duration(&a.values)
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

pub(super) fn values_span(a: &Attribute) -> Span {
    match (a.values.first(), a.values.last()) {
        (Some(f), Some(l)) => Span::new(f.span.file, f.span.start, l.span.end),
        _ => Span::new(a.key.span.file, a.key.span.end, a.key.span.end),
    }
}

pub(super) fn one_value<'a>(a: &'a Attribute, what: &str) -> Result<&'a Value, Diagnostic> {
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

pub(super) fn one_string(a: &Attribute) -> Result<String, Diagnostic> {
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
pub(super) fn action<'a>(
    a: &'a Attribute,
    usage: &str,
) -> Result<(&'a [Value], Action), Diagnostic> {
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
pub(super) fn memory_limit(a: &Attribute) -> Result<MemoryLimit, Diagnostic> {
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
pub(super) fn cpu_limit(a: &Attribute) -> Result<CpuLimit, Diagnostic> {
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
/// `host ADDRESS`: an IP address; never a name (a pass must not wait on DNS).
pub(super) fn ip_address(a: &Attribute) -> Result<std::net::IpAddr, Diagnostic> {
    let v = one_value(a, "an IP address")?;
    v.text.parse().map_err(|_| {
        Diagnostic::error(
            v.span,
            "`host` needs an IP address such as 127.0.0.1 or ::1 (tend never asks DNS)",
        )
    })
}

/// A quoted absolute path.
pub(super) fn absolute_path(a: &Attribute) -> Result<String, Diagnostic> {
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
pub(super) fn user_name(a: &Attribute) -> Result<String, Diagnostic> {
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
pub(super) fn count_range(a: &Attribute) -> Result<(usize, Option<usize>), Diagnostic> {
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

pub(super) fn yes_no(a: &Attribute) -> Result<bool, Diagnostic> {
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

/// `process "RE" [anywhere]`: the pattern, checked, and whether it may
/// match inside a word.
pub(super) fn pattern(a: &Attribute) -> Result<(String, bool), Diagnostic> {
    let anywhere = matches!(a.values.as_slice(),
        [_, w] if w.kind == ValueKind::Word && w.text == "anywhere");
    let first = match anywhere {
        true => &a.values[0],
        false => one_value(a, "a quoted string")?,
    };
    if first.kind != ValueKind::Quoted {
        return Err(Diagnostic::error(
            first.span,
            "`process` needs a quoted string",
        ));
    }
    check_regex(&first.text, a)?;
    Ok((first.text.clone(), anywhere))
}

/// Parsing is enough to know a pattern is valid; compiling every pattern
/// here would cost more than the pass that uses them. Plain text needs no
/// parsing at all, and only a pattern with groups can be valid alone and
/// not inside the whole-word wrapper (its nesting one level deeper).
pub(super) fn check_regex(pattern: &str, a: &Attribute) -> Result<(), Diagnostic> {
    if matcher::plain(pattern) {
        return Ok(());
    }
    valid_regex(pattern, a.values[0].span)?;
    if pattern.contains('(') {
        valid_regex(&matcher::whole_words(pattern), a.values[0].span)?;
    }
    Ok(())
}

/// A regular expression that parses, or its error at `at`.
pub(super) fn valid_regex(pattern: &str, at: Span) -> Result<(), Diagnostic> {
    regex_syntax::Parser::new()
        .parse(pattern)
        .map(|_| ())
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid");
            Diagnostic::error(
                at,
                format!(
                    "bad regular expression: {}",
                    last.trim().trim_start_matches("error: ")
                ),
            )
        })
}

pub(super) fn duration(a: &Attribute) -> Result<Duration, Diagnostic> {
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
    let d = words_duration(&a.values).ok_or_else(bad)?;
    if d > MAX_DURATION {
        return Err(Diagnostic::error(
            values_span(a),
            format!("`{}` is at most 24h", a.key.text),
        ));
    }
    Ok(d)
}

pub(super) fn at_least_one_second(d: Duration, a: &Attribute) -> Result<Duration, Diagnostic> {
    if d.is_zero() {
        return Err(Diagnostic::error(
            values_span(a),
            format!("`{}` must be at least 1s", a.key.text),
        ));
    }
    Ok(d)
}

/// `when stopped restart|report|leave`
pub(super) fn when_stopped(a: &Attribute) -> Result<WhenStopped, Diagnostic> {
    let words: Vec<&str> = a.values.iter().map(|v| v.text.as_str()).collect();
    let quoted = a.values.iter().any(|v| v.kind == ValueKind::Quoted);
    match words.as_slice() {
        ["stopped", "restart"] if !quoted => Ok(WhenStopped::Restart),
        ["stopped", "report"] if !quoted => Ok(WhenStopped::Report),
        ["stopped", "leave"] if !quoted => Ok(WhenStopped::Leave),
        _ => Err(Diagnostic::error(
            values_span(a),
            "`when` is written `when stopped restart|report|leave`",
        )),
    }
}

/// `unit NAME`: a systemd unit name (`.service` added when it has no
/// type), never one that could be read as an option.
pub(super) fn unit_name(a: &Attribute) -> Result<String, Diagnostic> {
    let v = one_value(a, "a unit name such as \"nginx.service\"")?;
    let ok = !v.text.starts_with('-')
        && !v.text.is_empty()
        && v.text.len() <= 255
        && v.text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '\\' | '@' | '-'));
    if !ok {
        return Err(Diagnostic::error(
            v.span,
            "`unit` needs a systemd unit name such as \"nginx.service\"",
        ));
    }
    const TYPES: &[&str] = &[
        ".service",
        ".socket",
        ".target",
        ".mount",
        ".timer",
        ".path",
        ".scope",
        ".slice",
        ".swap",
        ".device",
        ".automount",
    ];
    let name = if TYPES.iter().any(|t| v.text.ends_with(t)) {
        v.text.clone()
    } else {
        format!("{}.service", v.text)
    };
    // What systemd itself refuses: over 255 characters with its type, a
    // template with no instance (`getty@`, `getty@.service`), no name
    // before the type or the `@`.
    let (stem, _) = name.rsplit_once('.').unwrap_or((&name, ""));
    let refused = if name.len() > 255 {
        Some(format!(
            "unit `{}` is longer than the 255 characters systemd allows",
            crate::file::quote(&name, 40)
        ))
    } else if stem.is_empty() || stem.starts_with('@') {
        Some(format!("unit `{name}` has no name before its type"))
    } else if stem.ends_with('@') {
        Some(format!(
            "unit `{name}` is a template: name an instance, such as \"{stem}NAME\""
        ))
    } else if stem.matches('@').count() > 1 {
        Some(format!("unit `{name}` has more than one `@`"))
    } else {
        None
    };
    match refused {
        Some(why) => Err(Diagnostic::error(v.span, why)),
        None => Ok(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn duration_words_join_table() {
        // The grammar itself is duration.rs's; here, that words join.
        for (text, want) in [
            ("5 min", Some(300)),
            ("2 days", Some(172_800)),
            ("60s", Some(60)),
            ("5 parsecs", None),
        ] {
            assert_eq!(
                words_duration(&words(text)),
                want.map(Duration::from_secs),
                "{text}"
            );
        }
    }
}
