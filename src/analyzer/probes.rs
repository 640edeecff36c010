//! The attributes of checks that speak a protocol: `port N [send TEXT]
//! [expect RE]`, `http URL [options]` and `certificate [HOST:PORT] valid
//! for N days [then restart|report]`. Each reads its words as options in
//! any order, so a line says what it checks the way an admin would say it.

use std::time::Duration;

use super::attributes::{valid_regex, values_span, words_duration, MAX_DURATION};
use crate::diagnostic::Diagnostic;
use crate::parser::{Attribute, Value, ValueKind};
use crate::policy::{Action, Http};

/// `port N [send TEXT] [expect RE]`: the port, what to write, what the
/// answer must match.
pub(super) type PortCheck = (u16, Option<Vec<u8>>, Option<String>);

pub(super) fn port(a: &Attribute) -> Result<PortCheck, Diagnostic> {
    let bad_port = |at| Diagnostic::error(at, "`port` needs a port number, 1 to 65535");
    let (first, rest) = a
        .values
        .split_first()
        .ok_or_else(|| bad_port(values_span(a)))?;
    let number = first
        .text
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0 && first.kind == ValueKind::Word)
        .ok_or_else(|| bad_port(first.span))?;
    let (mut send, mut expect) = (None, None);
    let mut words = rest.iter();
    while let Some(option) = words.next() {
        let value = quoted_after(option, words.next(), "port N [send TEXT] [expect RE]")?;
        match option.text.as_str() {
            "send" if send.is_none() => send = Some(unescape(&value.text)),
            "expect" if expect.is_none() => {
                regex(&value.text, value)?;
                expect = Some(value.text.clone());
            }
            _ => return Err(usage(option, "port N [send TEXT] [expect RE]")),
        }
    }
    Ok((number, send, expect))
}

/// Where an `http` check's URL points, with no option yet applied.
fn target(url: &Value, connect_timeout: Duration) -> Result<Http, Diagnostic> {
    let bad_url = |why: &str| Diagnostic::error(url.span, format!("bad URL: {why}"));
    let uri: http::Uri = url
        .text
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad_url(&e.to_string()))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad_url("it must start with http:// or https://")),
    };
    let authority = uri.authority().map_or("", |a| a.as_str());
    // Credentials would be printed with the URL in every report, syslog
    // line and JSON event: refused (the error does not repeat them).
    if authority.contains('@') {
        return Err(bad_url(
            "it carries a user name and password, which every report would show; tend sends none",
        ));
    }
    // A port the URL gives must be one (the URL parser reads 99999 as "no
    // port", and the default port would be probed instead).
    let given = authority
        .rsplit_once(']')
        .map_or(authority, |(_, after)| after)
        .rsplit_once(':')
        .map(|(_, p)| p);
    let port = match given {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad_url("its port must be 1 to 65535"))?,
        ),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad_url("it names no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut check = Http {
        url: url.text.clone(),
        tls,
        port: port.unwrap_or(if tls { 443 } else { 80 }),
        path: uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string()),
        host_header: uri.authority().map_or(host.clone(), |a| a.to_string()),
        host,
        status: None,
        content: None,
        timeout: connect_timeout,
        insecure: false,
    };
    if check.path.is_empty() {
        check.path = "/".into();
    }
    Ok(check)
}

/// `http "URL" [status N] [content RE] [timeout D] [host NAME] [insecure]`
pub(super) fn http(a: &Attribute, connect_timeout: Duration) -> Result<Http, Diagnostic> {
    const USAGE: &str =
        "http \"URL\" [status N] [content \"RE\"] [timeout DURATION] [host \"NAME\"] [insecure]";
    let (url, rest) = a
        .values
        .split_first()
        .filter(|(u, _)| u.kind == ValueKind::Quoted)
        .ok_or_else(|| {
            Diagnostic::error(
                values_span(a),
                format!("`http` is written `{USAGE}`, e.g. `http \"http://127.0.0.1:8080/health\" status 200`"),
            )
        })?;
    let mut check = target(url, connect_timeout)?;
    options(&mut check, rest, USAGE)?;
    Ok(check)
}

/// An `http` check's options after its URL.
fn options(check: &mut Http, rest: &[Value], usage_text: &str) -> Result<(), Diagnostic> {
    let mut words = rest.iter();
    while let Some(option) = words.next() {
        match option.text.as_str() {
            "insecure" if option.kind == ValueKind::Word => check.insecure = true,
            "status" if option.kind == ValueKind::Word => {
                let n = words.next().ok_or_else(|| usage(option, usage_text))?;
                check.status = Some(
                    n.text
                        .parse()
                        .ok()
                        .filter(|s| (100..600).contains(s))
                        .ok_or_else(|| {
                            Diagnostic::error(n.span, "`status` needs an HTTP status, 100 to 599")
                        })?,
                );
            }
            "content" if option.kind == ValueKind::Word => {
                let re = quoted_after(option, words.next(), usage_text)?;
                regex(&re.text, re)?;
                check.content = Some(re.text.clone());
            }
            "host" if option.kind == ValueKind::Word => {
                let name = quoted_after(option, words.next(), usage_text)?;
                check.host_header = name.text.clone();
            }
            "timeout" if option.kind == ValueKind::Word => {
                let mut taken = vec![words
                    .next()
                    .ok_or_else(|| usage(option, usage_text))?
                    .clone()];
                // `timeout 5 s` as well as `timeout 5s`.
                if words_duration(&taken).is_none() {
                    if let Some(unit) = words.next() {
                        taken.push(unit.clone());
                    }
                }
                check.timeout = words_duration(&taken)
                    .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_DURATION)
                    .ok_or_else(|| {
                        Diagnostic::error(taken[0].span, "`timeout` needs a duration of 1s to 1d")
                    })?;
            }
            _ => return Err(usage(option, usage_text)),
        }
    }
    Ok(())
}

/// `certificate ["HOST:PORT"] valid for N days [then restart|report]`:
/// where (None: the service's `https` URL), the days, the action (report
/// unless said: a restart rarely renews a certificate).
pub(super) type CertificateCheck = (Option<(String, u16)>, u32, Action);

pub(super) fn certificate(a: &Attribute) -> Result<CertificateCheck, Diagnostic> {
    const USAGE: &str = "certificate [\"HOST:PORT\"] valid for N days [then restart|report]";
    let bad = || {
        Diagnostic::error(
            values_span(a),
            format!("`certificate` is written `{USAGE}`, e.g. `certificate \"127.0.0.1:443\" valid for 14 days`"),
        )
    };
    let mut values = a.values.as_slice();
    let mut target = None;
    if let Some((first, rest)) = values
        .split_first()
        .filter(|(f, _)| f.kind == ValueKind::Quoted)
    {
        let (host, port) = first
            .text
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok().filter(|&p| p > 0)?)))
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| {
                Diagnostic::error(first.span, "a certificate's place is written \"HOST:PORT\"")
            })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        target = Some((host.to_string(), port));
        values = rest;
    }
    let words: Vec<&str> = values.iter().map(|v| v.text.as_str()).collect();
    if values.iter().any(|v| v.kind != ValueKind::Word) {
        return Err(bad());
    }
    let (days, action) = match words.as_slice() {
        ["valid", "for", n, "days" | "day"] => (*n, Action::Report),
        ["valid", "for", n, "days" | "day", "then", "report"] => (*n, Action::Report),
        ["valid", "for", n, "days" | "day", "then", "restart"] => (*n, Action::Restart),
        _ => return Err(bad()),
    };
    let days = days
        .parse::<u32>()
        .ok()
        .filter(|&d| (1..=3650).contains(&d))
        .ok_or_else(bad)?;
    Ok((target, days, action))
}

/// `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH` in a `send` text; any other
/// backslash stays as written.
pub(crate) fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let (byte, used) = match (b, next) {
            (b'\\', Some(b'r')) => (b'\r', 2),
            (b'\\', Some(b'n')) => (b'\n', 2),
            (b'\\', Some(b't')) => (b'\t', 2),
            (b'\\', Some(b'0')) => (0, 2),
            (b'\\', Some(b'\\')) => (b'\\', 2),
            (b'\\', Some(b'x')) => match text
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => (v, 4),
                None => (b, 1),
            },
            _ => (b, 1),
        };
        out.push(byte);
        i += used;
    }
    out
}

fn quoted_after<'a>(
    option: &Value,
    value: Option<&'a Value>,
    usage_text: &str,
) -> Result<&'a Value, Diagnostic> {
    value
        .filter(|v| v.kind == ValueKind::Quoted && option.kind == ValueKind::Word)
        .ok_or_else(|| usage(option, usage_text))
}

fn usage(at: &Value, usage_text: &str) -> Diagnostic {
    Diagnostic::error(at.span, format!("this is written `{usage_text}`"))
}

fn regex(pattern: &str, at: &Value) -> Result<(), Diagnostic> {
    valid_regex(pattern, at.span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_table() {
        for (text, want) in [
            ("PING\\r\\n", &b"PING\r\n"[..]),
            ("a\\tb\\0", b"a\tb\0"),
            ("\\x41\\x4a", b"AJ"),
            ("\\xZZ \\q \\\\", b"\\xZZ \\q \\"),
            ("trailing \\", b"trailing \\"),
            ("", b""),
        ] {
            assert_eq!(unescape(text), want, "{text}");
        }
    }
}
