//! Checks that speak to a running service: a port that must accept (and
//! answer what `expect` says to `send`), a UNIX socket, an HTTP(S) request
//! whose status and body must be right, a TLS certificate that must not
//! expire soon. A process that accepts connections but answers nothing, or
//! answers 500, is not a healthy service.
//!
//! Every check of a service runs within one deadline, on the thread
//! `check::connect_all` gives the service, so a pass costs one timeout
//! however many services answer slowly. What is read from the peer is
//! capped (64 KiB for `expect`, 1 MiB for HTTP) and quoted, never trusted.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};

use crate::file::quote;
use crate::policy::{Action, Certificate, Connect, Http, Service};

const EXPECT_MAX: usize = 64 << 10;
const HTTP_MAX: usize = 1 << 20;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Passed,
    /// Passed, with something to say (`certificate ... then report`).
    Warned,
    Failed,
}

/// One check and what it found, as dry runs, `explain` and JSON events
/// show it, and as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checked {
    /// The check as the policy names it: `port 127.0.0.1:6379`, `unix
    /// PATH`, `http URL`, `certificate HOST:PORT`.
    pub(crate) check: String,
    pub(crate) status: Status,
    /// What it found: `accepted`, `status 200 OK`, `expires in 41 days`,
    /// or why it failed.
    pub(crate) result: String,
}

impl Checked {
    /// `http http://127.0.0.1/health: status 500 Internal Server Error, not below 400`
    pub(crate) fn sentence(&self) -> String {
        format!("{}: {}", self.check, self.result)
    }

    /// `http http://127.0.0.1/health: failed (status 500 ...)`
    pub(crate) fn line(&self) -> String {
        let status = match self.status {
            Status::Passed => "passed",
            Status::Warned => "warned",
            Status::Failed => "failed",
        };
        format!("{}: {status} ({})", self.check, self.result)
    }
}

/// A check that speaks to a running service. A new kind is one impl of
/// this and one line in [`checks`].
trait Check {
    /// The check as the policy names it: `port 127.0.0.1:6379`.
    fn label(&self) -> String;
    /// How long it may take, from when it starts.
    fn timeout(&self) -> Duration;
    /// What it found by `deadline`: passed (or warned) and in what words,
    /// or why it failed.
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String>;
}

impl<T: Check + ?Sized> Check for &T {
    fn label(&self) -> String {
        (**self).label()
    }
    fn timeout(&self) -> Duration {
        (**self).timeout()
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        (**self).judge(deadline)
    }
}

/// `port N [send TEXT] [expect RE]` (on `host`).
struct Port<'a>(std::net::SocketAddr, &'a Connect);

impl Check for Port<'_> {
    fn label(&self) -> String {
        format!("port {}", self.0)
    }
    fn timeout(&self) -> Duration {
        self.1.timeout
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        port(self.0, self.1, deadline).map(|r| (Status::Passed, r))
    }
}

/// `unix PATH`: the socket accepts.
struct Unix<'a>(&'a std::path::Path, Duration);

impl Check for Unix<'_> {
    fn label(&self) -> String {
        format!("unix {}", self.0.display())
    }
    fn timeout(&self) -> Duration {
        self.1
    }
    fn judge(&self, _: Instant) -> Result<(Status, String), String> {
        std::os::unix::net::UnixStream::connect(self.0)
            .map(|_| (Status::Passed, "accepted".to_string()))
            .map_err(|e| plain(&e))
    }
}

impl Check for Http {
    fn label(&self) -> String {
        format!("http {}", self.url)
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        request(self, deadline).map(|r| (Status::Passed, r))
    }
}

impl Check for Certificate {
    fn label(&self) -> String {
        format!("certificate {}:{}", self.host, self.port)
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn judge(&self, deadline: Instant) -> Result<(Status, String), String> {
        let days = expiry(self, deadline)?;
        Ok(match lifetime(days, self.days) {
            (true, words) => (Status::Passed, words),
            (false, words) if self.action == Action::Report => (Status::Warned, words),
            (false, words) => (Status::Failed, words),
        })
    }
}

/// The checks of `service`, in the order they run (port, unix, http,
/// certificate): the registry of checks.
fn checks(service: &Service) -> Vec<Box<dyn Check + '_>> {
    let c = &service.connect;
    let mut all: Vec<Box<dyn Check + '_>> = Vec::new();
    all.extend(c.tcp.map(|addr| Box::new(Port(addr, c)) as Box<dyn Check>));
    all.extend(
        c.unix
            .as_deref()
            .map(|path| Box::new(Unix(path, c.timeout)) as Box<dyn Check>),
    );
    all.extend(service.http.as_ref().map(|h| Box::new(h) as Box<dyn Check>));
    all.extend(
        service
            .certificate
            .as_ref()
            .map(|cert| Box::new(cert) as Box<dyn Check>),
    );
    all
}

/// The longest the checks of `service` may take together: each has its
/// own timeout, from when it starts.
pub(crate) fn budget(service: &Service) -> Duration {
    checks(service).iter().map(|c| c.timeout()).sum()
}

/// Whether `service` has a check to run while it runs.
pub(crate) fn wanted(service: &Service) -> bool {
    !checks(service).is_empty()
}

/// Runs the checks of `service` in order, each within its own timeout from
/// when it starts, the first failure ending them: what each that ran found.
pub(crate) fn run(service: &Service) -> Vec<Checked> {
    let mut done = Vec::new();
    for check in checks(service) {
        let deadline = Instant::now() + check.timeout();
        let (status, result) = check
            .judge(deadline)
            .unwrap_or_else(|why| (Status::Failed, why));
        done.push(Checked {
            check: check.label(),
            status,
            result,
        });
        if status == Status::Failed {
            break;
        }
    }
    done
}

/// Time left before `deadline`, or the failure of having none.
fn left(deadline: Instant, budget: Duration) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("no answer within {}", seconds(budget)));
    }
    Ok(left)
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs().max(1))
}

/// Connects to `addr`, and converses if `send` or `expect` say so.
fn port(addr: std::net::SocketAddr, c: &Connect, deadline: Instant) -> Result<String, String> {
    let wait = left(deadline, c.timeout)?;
    let mut stream = TcpStream::connect_timeout(&addr, wait).map_err(|e| plain(&e))?;
    if c.send.is_none() && c.expect.is_none() {
        return Ok("accepted".to_string());
    }
    converse(&mut stream, c, deadline)
}

/// `send`, then read until the answer matches `expect`, the peer closes,
/// 64 KiB or the deadline.
fn converse(stream: &mut TcpStream, c: &Connect, deadline: Instant) -> Result<String, String> {
    if let Some(text) = &c.send {
        send(stream, text, deadline, c.timeout).map_err(|e| format!("sending: {e}"))?;
    }
    let Some(expect) = &c.expect else {
        return Ok("accepted what was sent".to_string());
    };
    let re = regex::bytes::Regex::new(expect).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let end = read_until(stream, deadline, c.timeout, EXPECT_MAX, &mut got, |b| {
        re.is_match(b)
    });
    let heard = quote(&String::from_utf8_lossy(&got), 80);
    if re.is_match(&got) {
        return Ok(format!("answered \"{heard}\""));
    }
    match end {
        End::Timeout if got.is_empty() => Err(format!("no answer within {}", seconds(c.timeout))),
        End::Error(e) if got.is_empty() => Err(e),
        _ if got.is_empty() => Err(format!("closed without an answer, not matching `{expect}`")),
        _ => Err(format!("answered \"{heard}\", not matching `{expect}`")),
    }
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Done,
    Closed,
    Full,
    Timeout,
    Error(String),
}

/// A stream whose reads a deadline can bound.
trait Timed: Read + Write {
    /// The socket under it, whose timeouts bound its reads and writes.
    fn socket(&self) -> &TcpStream;
}

impl Timed for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl Timed for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn socket(&self) -> &TcpStream {
        &self.sock
    }
}

/// Writes all of `bytes` before the deadline.
fn send(
    stream: &mut impl Timed,
    bytes: &[u8],
    deadline: Instant,
    budget: Duration,
) -> Result<(), String> {
    let wait = left(deadline, budget)?;
    stream
        .socket()
        .set_write_timeout(Some(wait))
        .and_then(|()| stream.write_all(bytes))
        .map_err(|e| timed_out(&e, budget).unwrap_or_else(|| tls_error(&e)))
}

/// A read or write that ran out of time (a TLS handshake reads while it
/// writes), in the words of every other check: `no answer within N s`.
fn timed_out(e: &std::io::Error, budget: Duration) -> Option<String> {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
    .then(|| format!("no answer within {}", seconds(budget)))
}

/// Reads into `got` until `done` says so, the peer closes, `cap` bytes or
/// the deadline.
fn read_until(
    stream: &mut impl Timed,
    deadline: Instant,
    budget: Duration,
    cap: usize,
    got: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> bool,
) -> End {
    let mut chunk = [0u8; 8192];
    loop {
        if done(got) {
            return End::Done;
        }
        if got.len() >= cap {
            return End::Full;
        }
        let Ok(wait) = left(deadline, budget) else {
            return End::Timeout;
        };
        if let Err(e) = stream.socket().set_read_timeout(Some(wait)) {
            return End::Error(plain(&e));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return End::Closed,
            Ok(n) => got.extend_from_slice(&chunk[..n.min(cap - got.len())]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return End::Timeout
            }
            // A TLS peer that closes without saying so has still closed.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return End::Closed,
            Err(e) => return End::Error(plain(&e)),
        }
    }
}

/// Connects to HOST:PORT (a name is looked up here, on the check's thread,
/// within its deadline).
fn dial(host: &str, port: u16, deadline: Instant, budget: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {}", plain(&e)))?
        .collect();
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline, budget)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{addr}: {}", plain(&e)),
        }
    }
    Err(last)
}

/// One GET, its answer judged: the status (`status N`, else below 400),
/// then the body (`content`): `status 200 OK`, or why not.
fn request(h: &Http, deadline: Instant) -> Result<String, String> {
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

/// The days before the certificate `cert` names expires (negative: since
/// it expired), read from the leaf certificate the port presents. The
/// chain is not judged here: expiry is the question.
fn expiry(cert: &Certificate, deadline: Instant) -> Result<i64, String> {
    let mut tcp = dial(&cert.host, cert.port, deadline, cert.timeout)?;
    let name = server_name(&cert.name, &cert.host)?;
    let mut conn =
        rustls::ClientConnection::new(tls_config(false), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        tcp.set_read_timeout(Some(left(deadline, cert.timeout)?))
            .map_err(|e| plain(&e))?;
        conn.complete_io(&mut tcp)
            .map_err(|e| timed_out(&e, cert.timeout).unwrap_or_else(|| tls_error(&e)))?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate presented")?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("unreadable: {e}"))?;
    let not_after = parsed.validity().not_after.timestamp();
    Ok((not_after - crate::clock::real_ms() as i64 / 1000).div_euclid(86_400))
}

/// A certificate with `days` left, `want` wanted: whether that is enough,
/// and in words.
pub(crate) fn lifetime(days: i64, want: u32) -> (bool, String) {
    let left = match days {
        d if d < 0 => return (false, "has expired".to_string()),
        0 => "expires within a day".to_string(),
        1 => "expires in 1 day".to_string(),
        d => format!("expires in {d} days"),
    };
    if days >= i64::from(want) {
        (true, left)
    } else {
        (false, format!("{left}, before the {want} days wanted"))
    }
}

/// The TLS name to present: a host name, or an address.
fn server_name(header: &str, host: &str) -> Result<ServerName<'static>, String> {
    // The Host header may carry a port; IPv6 addresses are bracketed.
    let name = match header.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => header,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_string())
        .or_else(|_| ServerName::try_from(host.to_string()))
        .map_err(|_| format!("`{name}` is not a name TLS can present"))
}

/// What went wrong in a TLS exchange, in words (rustls's own names are
/// for programmers: `UnknownIssuer`, `CaUsedAsEndEntity`).
fn tls_error(e: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return plain(e);
    };
    let untrusted = "certificate not trusted (self-signed, or from an authority this host does not trust; `insecure` accepts it)";
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer | C::Other(_) => untrusted.to_string(),
            C::Expired | C::ExpiredContext { .. } => "certificate expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "certificate not valid yet".to_string()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate not for this name (`host` sets the name)".to_string()
            }
            C::Revoked => "certificate revoked".to_string(),
            other => format!("bad certificate ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// `connection refused`, without Rust's ` (os error 111)`.
pub(crate) fn plain(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}

/// The client configuration, made once per pass: the system's trusted
/// roots (`verify`), or any certificate (for `insecure` and for reading a
/// certificate's expiry), the handshake itself still checked.
fn tls_config(verify: bool) -> Arc<rustls::ClientConfig> {
    static VERIFIED: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    static ANY: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
    };
    if verify {
        VERIFIED
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                Arc::new(
                    builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            })
            .clone()
    } else {
        ANY.get_or_init(|| {
            Arc::new(
                builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                    .with_no_client_auth(),
            )
        })
        .clone()
    }
}

/// Accepts whatever certificate the peer shows, but checks that the peer
/// holds its key (the handshake's signatures).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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

    #[test]
    fn lifetime_table() {
        for (days, want, enough, said) in [
            (30, 14, true, "expires in 30 days"),
            (14, 14, true, "expires in 14 days"),
            (1, 1, true, "expires in 1 day"),
            (0, 0, true, "expires within a day"),
            (
                13,
                14,
                false,
                "expires in 13 days, before the 14 days wanted",
            ),
            (1, 14, false, "expires in 1 day, before the 14 days wanted"),
            (
                0,
                14,
                false,
                "expires within a day, before the 14 days wanted",
            ),
            (-3, 14, false, "has expired"),
            (-3, 0, false, "has expired"),
        ] {
            assert_eq!(lifetime(days, want), (enough, said.to_string()), "{days}");
        }
    }

    #[test]
    fn server_name_table() {
        for (header, host, want) in [
            ("example.org", "1.2.3.4", Some("example.org")),
            ("example.org:8443", "1.2.3.4", Some("example.org")),
            ("127.0.0.1:8443", "127.0.0.1", Some("127.0.0.1")),
            ("[::1]:8443", "::1", Some("::1")),
        ] {
            let got = server_name(header, host).ok().map(|n| match n {
                ServerName::DnsName(d) => d.as_ref().to_string(),
                ServerName::IpAddress(ip) => std::net::IpAddr::from(ip).to_string(),
                _ => String::new(),
            });
            assert_eq!(got.as_deref(), want, "{header}");
        }
    }
}
