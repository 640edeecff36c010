//! The `http` check: one GET over TCP or TLS, its answer read within the
//! deadline and 1 MiB, parsed (chunked or not) and judged by status and
//! body.

use std::time::Instant;

use super::net::{dial, left, read_until, seconds, send, End};
use super::plain;
use super::tls::{server_name, tls_config};
use crate::file::quote;
use crate::policy::Http;

const HTTP_MAX: usize = 1 << 20;

/// One GET, its answer judged: the status (`status N`, else below 400),
/// then the body (`content`): `status 200 OK`, or why not.
pub(super) fn request(h: &Http, deadline: Instant) -> Result<String, String> {
    let tcp = dial(&h.host, h.port, deadline, h.timeout)?;
    let ask = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tend\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        h.path, h.host_header
    );
    let mut raw = Vec::new();
    let end = if h.tls {
        let name = server_name(&h.host_header, &h.host)?;
        let conn = rustls::ClientConnection::new(tls_config(!h.insecure), name)
            .map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // The handshake happens in the first write: it reads too.
        tls.sock
            .set_read_timeout(Some(left(deadline, h.timeout)?))
            .map_err(|e| plain(&e))?;
        send(&mut tls, ask.as_bytes(), deadline, h.timeout)?;
        read_until(&mut tls, deadline, h.timeout, HTTP_MAX, &mut raw, answered)
    } else {
        let mut tcp = tcp;
        send(&mut tcp, ask.as_bytes(), deadline, h.timeout)?;
        read_until(&mut tcp, deadline, h.timeout, HTTP_MAX, &mut raw, answered)
    };
    let Some((status, reason, body)) = parse_answer(&raw) else {
        return Err(match end {
            End::Timeout if raw.is_empty() => format!("no answer within {}", seconds(h.timeout)),
            End::Timeout => format!("no whole answer within {}", seconds(h.timeout)),
            End::Error(e) => e,
            _ if raw.is_empty() => "closed without an answer".to_string(),
            _ => format!(
                "not an HTTP answer (\"{}\")",
                quote(&String::from_utf8_lossy(&raw[..raw.len().min(60)]), 60)
            ),
        });
    };
    let ok = match h.status {
        Some(want) => status == want,
        None => status < 400,
    };
    let said = format!("status {status} {}", quote(&reason, 40));
    if !ok {
        let want = h.status.map_or("below 400".to_string(), |s| s.to_string());
        return Err(format!("{said}, not {want}"));
    }
    if let Some(content) = &h.content {
        let re = regex::bytes::Regex::new(content).map_err(|e| e.to_string())?;
        // Health endpoints end their answer with a newline: `^ok$` matches
        // the body `ok\n`. One final line break is not part of the text.
        let text = body
            .strip_suffix(b"\n")
            .map_or(&body[..], |b| b.strip_suffix(b"\r").unwrap_or(b));
        if !re.is_match(text) {
            return Err(format!(
                "status {status}, but the body does not match `{content}`"
            ));
        }
    }
    Ok(said.trim_end().to_string())
}

/// Whether `raw` holds a whole HTTP answer: its head and, by
/// Content-Length or the last chunk, its body.
fn answered(raw: &[u8]) -> bool {
    let Some(head) = head(raw) else {
        return false;
    };
    let body = &raw[head.at..];
    match head.framing {
        Framing::Length(n) => body.len() as u64 >= n,
        Framing::Chunked => dechunk(body).is_some(),
        Framing::Close => false,
    }
}

enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// The head of the final answer in `raw`: interim answers (`100
/// Continue`, `103 Early Hints`) skipped; as many header lines as came
/// (the whole answer is capped at 1 MiB).
struct Head {
    status: u16,
    reason: String,
    framing: Framing,
    /// Where its body starts in `raw`.
    at: usize,
}

fn head(raw: &[u8]) -> Option<Head> {
    let mut start = 0;
    loop {
        let rest = &raw[start..];
        // As many header slots as the head has lines (the head ends at its
        // first empty line; until it has come there is no answer).
        let end = rest.windows(2).position(|w| w == b"\n\n" || w == b"\n\r")?;
        let lines = rest[..end].iter().filter(|&&b| b == b'\n').count() + 1;
        let mut headers = vec![httparse::EMPTY_HEADER; lines];
        let mut parsed = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(at) = parsed.parse(rest).ok()? else {
            return None;
        };
        let status = parsed.code?;
        if (100..200).contains(&status) && status != 101 {
            start += at;
            continue;
        }
        return Some(Head {
            status,
            reason: parsed.reason.unwrap_or("").to_string(),
            framing: framing(parsed.headers),
            at: start + at,
        });
    }
}

fn framing(headers: &[httparse::Header]) -> Framing {
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if value("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        return Framing::Chunked;
    }
    match value("content-length").and_then(|v| v.parse().ok()) {
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    }
}

/// The status, reason and body of an answer (as much body as came).
fn parse_answer(raw: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let head = head(raw)?;
    let body = &raw[head.at..];
    let body = match head.framing {
        Framing::Chunked => dechunk(body).unwrap_or_else(|| body.to_vec()),
        Framing::Length(n) => body[..body.len().min(n as usize)].to_vec(),
        Framing::Close => body.to_vec(),
    };
    Some((head.status, head.reason, body))
}

/// A chunked body decoded, or None while its last chunk has not come.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let httparse::Status::Complete((at, size)) = httparse::parse_chunk_size(raw).ok()? else {
            return None;
        };
        if size == 0 {
            return Some(body);
        }
        let size = usize::try_from(size).ok()?;
        let chunk = raw.get(at..at.checked_add(size)?)?;
        body.extend_from_slice(chunk);
        raw = raw.get(at + size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_table() {
        // (raw answer, whole?, status and body)
        for (raw, whole, want) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
                true,
                Some((200, "ok")),
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", false, Some((200, "ok"))),
            (
                b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n",
                true,
                Some((500, "ok!!!")),
            ),
            (b"HTTP/1.0 200 OK\r\n\r\nuntil close", false, Some((200, "until close"))),
            (b"HTTP/1.1 200 OK\r\nContent-", false, None),
            (b"SSH-2.0-OpenSSH_9.2\r\n", false, None),
            (b"", false, None),
        ] {
            assert_eq!(answered(raw), whole, "{raw:?}");
            let got = parse_answer(raw).map(|(s, _, b)| (s, String::from_utf8(b).unwrap()));
            assert_eq!(got, want.map(|(s, b)| (s, b.to_string())), "{raw:?}");
        }
    }
}
