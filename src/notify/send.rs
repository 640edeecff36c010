//! One event through one channel: POSTed as JSON (`webhook`), as Slack's
//! `{"text": ...}` (`slack`), or given to a command (`exec`) with Monit's
//! variables and tend's. A URL kept in a file is read here, each time, and
//! refused unless only tend's user may read and change it; no URL is ever
//! said (what is said of a channel names its host at most).

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Answer;
use crate::file;
use crate::policy::{Channel, ChannelKind, Url};

type Event = serde_json::Map<String, serde_json::Value>;

/// Sends `event` (`text` its line) through `channel`, by `deadline` at the
/// latest.
pub(crate) fn send(
    channel: &Channel,
    (text, detail): (&str, Option<&str>),
    event: &Event,
    deadline: Instant,
) -> Answer {
    let left = deadline.saturating_duration_since(Instant::now());
    let timeout = channel.timeout.min(left).max(Duration::from_millis(100));
    match &channel.kind {
        ChannelKind::Exec(command) => exec(&command.argv, text, event, timeout),
        // A URL file that cannot be used keeps the events until it is
        // fixed: the admin's mistake costs no alert.
        ChannelKind::Webhook(url) => match target(url) {
            Ok(url) => post(&url, &serde_json::Value::Object(event.clone()), timeout),
            Err(why) => Answer::Later(why),
        },
        ChannelKind::Slack(url) => match target(url) {
            Ok(url) => {
                let text = match detail {
                    Some(d) => format!("{text}\n{d}"),
                    None => text.to_string(),
                };
                post(&url, &serde_json::json!({ "text": text }), timeout)
            }
            Err(why) => Answer::Later(why),
        },
        // The alerts of the channel's memory, as Alertmanager's v2 API
        // takes them (an array).
        ChannelKind::Alertmanager(url) => match target(url) {
            Ok(url) => {
                let alerts = event.get("alerts").cloned().unwrap_or_default();
                let url = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
                post(&url, &alerts, timeout)
            }
            Err(why) => Answer::Later(why),
        },
        // healthchecks.io's convention: the URL when all is well, URL/fail
        // when something is down; the pass's lines as the body.
        ChannelKind::Heartbeat(url) => match target(url) {
            Ok(url) => {
                let down = event.get("down").and_then(serde_json::Value::as_bool) == Some(true);
                let url = match down {
                    true => format!("{}/fail", url.trim_end_matches('/')),
                    false => url,
                };
                request(&url, text.to_string(), "text/plain; charset=utf-8", timeout)
            }
            Err(why) => Answer::Later(why),
        },
    }
}

/// The URL to send to: as written, or read from its file, which must be
/// a regular file (no symlink) only tend's user may read and change.
pub(crate) fn target(url: &Url) -> Result<String, String> {
    let path = match url {
        Url::Written(u) => return Ok(u.clone()),
        Url::File(p) => p,
    };
    let (bytes, meta) = file::read_meta(path, 64 << 10, file::Links::Refuse)
        .map_err(|e| format!("url_file {}: {e}", path.display()))?;
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "url_file {} is not used: others than its owner may read or change it (mode {:o}, owner {}); it must be {}'s alone (chmod 600)",
            path.display(),
            meta.mode() & 0o7777,
            meta.uid(),
            if euid == 0 { "root" } else { "tend's user" }
        ));
    }
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if !crate::analyzer::channel::is_url(&text) {
        return Err(format!(
            "url_file {} does not hold an http:// or https:// URL",
            path.display()
        ));
    }
    Ok(text)
}

/// A URL as it may be shown: scheme and host, the rest starred (Slack's
/// secret is its path; a token may be in the query).
pub(crate) fn shown(url: &Url) -> String {
    match url {
        Url::File(p) => format!("url_file {}", p.display()),
        Url::Written(u) => match u.parse::<http::Uri>() {
            Ok(uri) => format!(
                "{}://{}/****",
                uri.scheme_str().unwrap_or("http"),
                uri.host().unwrap_or("")
            ),
            Err(_) => "****".into(),
        },
    }
}

/// `text` with `url` and its parts beyond the host taken out: an error of
/// the HTTP client may quote what it was given.
fn hidden(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "<url>");
    if let Ok(uri) = url.parse::<http::Uri>() {
        if let Some(pq) = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| p.len() > 1)
        {
            out = out.replace(pq, "/****");
        }
    }
    crate::diagnostic::hide_passwords(&out)
}

/// POSTs `body` as JSON; the answer's status decides.
fn post(url: &str, body: &serde_json::Value, timeout: Duration) -> Answer {
    request(url, body.to_string(), "application/json", timeout)
}

/// POSTs `body`; the answer's status decides.
fn request(url: &str, body: String, content_type: &str, timeout: Duration) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("tend/", env!("CARGO_PKG_VERSION")))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots()).build())
        .build()
        .into();
    let sent = agent
        .post(url)
        .header("Content-Type", content_type)
        .send(body);
    match sent {
        Ok(mut answer) => {
            let status = answer.status();
            let said: String = answer
                .body_mut()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            let line = format!(
                "HTTP {}{}",
                status.as_u16(),
                status
                    .canonical_reason()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default()
            );
            let line = hidden(&line, url);
            match status.as_u16() {
                200..=299 => Answer::Delivered(line),
                408 | 429 => Answer::Later(line),
                400..=499 => Answer::Refused(format!("{line}: {}", hidden(said.trim(), url))),
                _ => Answer::Later(line),
            }
        }
        Err(ureq::Error::Timeout(_)) => Answer::Later(format!(
            "no answer within {}",
            crate::clock::span(timeout.as_secs().max(1) as i64)
        )),
        Err(e) => Answer::Later(hidden(&e.to_string(), url)),
    }
}

/// The trusted authorities of this host, as the `http` check uses them.
fn roots() -> ureq::tls::RootCerts {
    use std::sync::OnceLock;
    static ROOTS: OnceLock<ureq::tls::RootCerts> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let certs: Vec<ureq::tls::Certificate<'static>> =
                rustls_native_certs::load_native_certs()
                    .certs
                    .into_iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
            ureq::tls::RootCerts::new_with_certs(&certs)
        })
        .clone()
}

/// Monit's name for what happened, for scripts written for Monit.
fn monit_event(kind: &str) -> &str {
    match kind {
        "restarting" => "Does not exist",
        "restarted" | "recovered" | "running_again" => "Exists",
        "failed" | "still_failing" | "upgrade_failed" => "Execution failed",
        "gave_up" | "still_given_up" => "Timeout",
        other => other,
    }
}

/// The environment of an `exec` channel: a sane PATH, Monit's variables
/// (MONIT_SERVICE, MONIT_EVENT, MONIT_DESCRIPTION, MONIT_HOST, MONIT_DATE,
/// MONIT_PROCESS_PID) and tend's (TEND_*); nothing of tend's own.
pub(crate) fn environment(text: &str, event: &Event) -> Vec<(String, String)> {
    let field = |k: &str| -> String {
        match event.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    };
    let kind = field("event");
    let time = event
        .get("time")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    let date = chrono::DateTime::from_timestamp(time, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%a, %d %b %Y %H:%M:%S %z")
                .to_string()
        })
        .unwrap_or_default();
    let service = match field("name") {
        n if n.is_empty() => field("host"),
        n => n,
    };
    vec![
        ("PATH".into(), crate::act::SANE_PATH.into()),
        ("MONIT_SERVICE".into(), service),
        ("MONIT_EVENT".into(), monit_event(&kind).into()),
        ("MONIT_DESCRIPTION".into(), text.into()),
        ("MONIT_HOST".into(), field("host")),
        ("MONIT_DATE".into(), date),
        ("MONIT_PROCESS_PID".into(), field("pid")),
        ("TEND_EVENT".into(), kind),
        ("TEND_SERVICE".into(), field("service")),
        ("TEND_NAME".into(), field("name")),
        ("TEND_MESSAGE".into(), text.into()),
        ("TEND_HOST".into(), field("host")),
        ("TEND_TIME".into(), time.to_string()),
        ("TEND_ID".into(), field("id")),
        ("TEND_LEVEL".into(), field("level")),
    ]
}

/// Runs the channel's command, the event as JSON on its standard input,
/// killed with its process group at `timeout`. Exit 0 is delivered.
fn exec(argv: &[String], text: &str, event: &Event, timeout: Duration) -> Answer {
    let (mut output, out, err) = match crate::act::output_file() {
        Ok(files) => files,
        Err(why) => return Answer::Later(why),
    };
    let child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(environment(text, event))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Answer::Later(format!("{}: {e}", argv[0])),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that reads nothing closes its end: that is fine.
        let _ = stdin.write_all(
            serde_json::Value::Object(event.clone())
                .to_string()
                .as_bytes(),
        );
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => break None,
        }
    };
    let said = crate::act::last_line(&mut output);
    match status {
        Some(s) if s.success() => Answer::Delivered(said.unwrap_or_else(|| "exit 0".into())),
        Some(s) => Answer::Later(format!(
            "{} exited {}{}",
            argv[0],
            s.code().map_or("by a signal".into(), |c| c.to_string()),
            said.map(|l| format!(": {l}")).unwrap_or_default()
        )),
        None => {
            crate::act::kill_group(&mut child);
            Answer::Later(format!(
                "{} did not finish within {}s",
                argv[0],
                timeout.as_secs()
            ))
        }
    }
}
