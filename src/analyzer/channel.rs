//! `channel ID { ... }` blocks: where events go beyond tend's output. Each
//! names one way to send (`exec`, `webhook`, `slack`), its URL written or
//! in a file (`url_file`), the events it wants (names and groups) and a
//! timeout; every mistake is an error at its place.

use std::time::Duration;

use super::attributes::{duration, one_string, yes_no};
use super::Errors;
use crate::diagnostic::{Diagnostic, Span};
use crate::event::Kind;
use crate::parser::{Attribute, Expr, ValueKind};
use crate::policy::{Channel, ChannelKind, Command, Url};

/// How long one delivery may take unless `timeout` says.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The attributes a channel may have.
pub(crate) const KEYS: &[&str] = &[
    "exec",
    "webhook",
    "slack",
    "heartbeat",
    "alertmanager",
    "url_file",
    "events",
    "timeout",
    "shell",
];

/// Named groups of events: what a channel wants unless `events` says.
pub(crate) const GROUPS: &[(&str, &[&str])] = &[
    (
        "problems",
        &[
            "restarting",
            "failed",
            "flapping",
            "crash_looping",
            "gave_up",
            "deferred",
            "upgrade_failed",
            "policy_broken",
            "lock_held",
            "state_damaged",
            "state_unsaved",
        ],
    ),
    (
        "reminders",
        &["still_failing", "still_crash_looping", "still_given_up"],
    ),
    (
        "recoveries",
        &[
            "restarted",
            "recovered",
            "running_again",
            "steady",
            "policy_fixed",
        ],
    ),
];

/// The events a channel wants when it does not say.
pub(crate) const DEFAULT_EVENTS: &[&str] = &["problems", "recoveries"];

/// The channel written as `id` with `attributes`, or None after its errors.
pub(super) fn channel(
    id: &str,
    span: Span,
    attributes: &[Attribute],
    guard: &Option<Expr>,
    errors: &mut Errors,
) -> Option<Channel> {
    let before = errors.len();
    let mut kind: Option<(&Attribute, ChannelKind)> = None;
    let mut url_file: Option<(&Attribute, String)> = None;
    let mut events: Option<Vec<String>> = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut shell = false;
    // A way of sending was written (maybe wrong, and said).
    let mut tried = false;
    for a in attributes {
        let key = a.key.text.as_str();
        let read = match key {
            "exec" | "webhook" | "slack" | "heartbeat" | "alertmanager" => {
                if let Some((first, _)) = &kind {
                    errors.push(Diagnostic::error(
                        a.key.span,
                        format!(
                            "a channel sends one way: `{}` is already given",
                            first.key.text
                        ),
                    ));
                    continue;
                }
                tried = true;
                sender(a).map(|k| kind = Some((a, k)))
            }
            "url_file" => super::attributes::absolute_path(a).map(|p| url_file = Some((a, p))),
            "events" => event_names(a).map(|e| events = Some(e)),
            "timeout" => duration(a).map(|d| timeout = d),
            "shell" => yes_no(a).map(|y| shell = y),
            _ => Err(unknown(a)),
        };
        if let Err(e) = read {
            errors.push(e);
        }
    }
    let Some((at, mut kind)) = kind else {
        if tried {
            return None;
        }
        errors.push(Diagnostic::error(
            span,
            format!(
                "channel `{id}` says none of `exec`, `webhook`, `slack`, `heartbeat`, `alertmanager`: how to send"
            ),
        ));
        return None;
    };
    match (&mut kind, url_file) {
        (
            ChannelKind::Webhook(url)
            | ChannelKind::Slack(url)
            | ChannelKind::Heartbeat(url)
            | ChannelKind::Alertmanager(url),
            Some((_, path)),
        ) => {
            if *url != Url::File(path.clone().into()) && *url != Url::Written(String::new()) {
                errors.push(Diagnostic::error(
                    at.span,
                    "a URL is written here and `url_file` names a file: give one",
                ));
            }
            *url = Url::File(path.into());
        }
        (
            ChannelKind::Webhook(Url::Written(u))
            | ChannelKind::Slack(Url::Written(u))
            | ChannelKind::Heartbeat(Url::Written(u))
            | ChannelKind::Alertmanager(Url::Written(u)),
            None,
        ) if u.is_empty() => {
            errors.push(Diagnostic::error(
                at.span,
                format!(
                    "`{}` needs a URL, or `url_file` naming a file that holds it",
                    at.key.text
                ),
            ));
        }
        (ChannelKind::Exec(_), Some((a, _))) => errors.push(Diagnostic::error(
            a.key.span,
            "`url_file` is for the channels that send to a URL",
        )),
        _ => {}
    }
    if let ChannelKind::Exec(command) = &mut kind {
        if shell {
            command.argv = vec!["/bin/sh".into(), "-c".into(), command.text.clone()];
            command.shell = true;
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(Channel {
        id: id.to_string(),
        kind,
        events: events.unwrap_or_else(|| expand(DEFAULT_EVENTS)),
        timeout,
        guard: guard.clone(),
    })
}

fn unknown(a: &Attribute) -> Diagnostic {
    let key = crate::file::quote(&a.key.text, 60);
    let message = match crate::suggest::closest(&a.key.text, KEYS) {
        Some(near) => format!("unknown channel attribute `{key}`; did you mean `{near}`?"),
        None => format!(
            "unknown channel attribute `{key}`; a channel has {}",
            KEYS.join(", ")
        ),
    };
    Diagnostic::error(a.key.span, message)
}

/// `exec "CMD"`, `webhook "URL"`, `slack "URL"` (a URL may come from
/// `url_file` instead: then none is written here).
fn sender(a: &Attribute) -> Result<ChannelKind, Diagnostic> {
    if a.key.text == "exec" {
        let text = one_string(a)?;
        let at = a.values[0].span;
        let argv = shell_words::split(&text).map_err(|_| {
            Diagnostic::error(
                at,
                "unbalanced quotes in command (or set `shell yes` to run it with /bin/sh)",
            )
        })?;
        if argv.first().is_none_or(|w| w.is_empty()) {
            return Err(Diagnostic::error(at, "empty command"));
        }
        return Ok(ChannelKind::Exec(Command {
            text,
            argv,
            shell: false,
            span: at,
        }));
    }
    let url = match a.values.as_slice() {
        [] => Url::Written(String::new()),
        [word, path] if word.kind == ValueKind::Word && word.text == "url_file" => {
            if path.kind != ValueKind::Quoted || !path.text.starts_with('/') {
                return Err(Diagnostic::error(
                    path.span,
                    "`url_file` takes the absolute path of the file that holds the URL, quoted",
                ));
            }
            Url::File(path.text.clone().into())
        }
        _ => {
            let url = one_string(a)?;
            check_url(&url, a.values[0].span)?;
            Url::Written(url)
        }
    };
    Ok(match a.key.text.as_str() {
        "webhook" => ChannelKind::Webhook(url),
        "heartbeat" => ChannelKind::Heartbeat(url),
        "alertmanager" => ChannelKind::Alertmanager(url),
        _ => ChannelKind::Slack(url),
    })
}

/// An http or https URL with a host: what can be POSTed to.
pub(crate) fn is_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    })
}

fn check_url(url: &str, at: Span) -> Result<(), Diagnostic> {
    match is_url(url) {
        true => Ok(()),
        false => Err(Diagnostic::error(
            at,
            "not an http:// or https:// URL with a host",
        )),
    }
}

/// `events failed gave_up recovered` or groups (`problems`, `reminders`,
/// `recoveries`, `all`), in any mix: the names they come to.
fn event_names(a: &Attribute) -> Result<Vec<String>, Diagnostic> {
    if a.values.is_empty() {
        return Err(Diagnostic::error(
            a.key.span,
            "`events` needs the names of events, or `problems`, `reminders`, `recoveries`, `all`",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for v in &a.values {
        for word in v.text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if v.kind == ValueKind::Quoted || !known(word) {
                let mut names: Vec<&str> = Kind::ALL.map(Kind::name).to_vec();
                names.extend(GROUPS.iter().map(|(g, _)| *g));
                names.push("all");
                let word = crate::file::quote(word, 60);
                let message = match crate::suggest::closest(&word, &names) {
                    Some(near) => format!("`{word}` is not an event; did you mean `{near}`?"),
                    None => format!("`{word}` is not an event; docs/alerts.md lists them"),
                };
                return Err(Diagnostic::error(v.span, message));
            }
            for name in expand(&[word]) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    Ok(names)
}

fn known(word: &str) -> bool {
    word == "all" || GROUPS.iter().any(|(g, _)| *g == word) || Kind::named(word).is_some()
}

/// Event names, groups expanded.
fn expand(words: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in words {
        let names: Vec<&str> = match *word {
            "all" => Kind::ALL.iter().map(|k| k.name()).collect(),
            w => GROUPS
                .iter()
                .find(|(g, _)| *g == w)
                .map_or_else(|| vec![w], |(_, names)| names.to_vec()),
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    out
}
