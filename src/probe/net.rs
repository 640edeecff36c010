//! Speaking to a peer within a deadline: connect, send, read until an
//! answer is whole, a cap or the deadline, each failure in plain words.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::plain;
use super::tls::tls_error;
use crate::file::quote;
use crate::policy::Port;

const EXPECT_MAX: usize = 64 << 10;

/// Time left before `deadline`, or the failure of having none.
pub(super) fn left(deadline: Instant, budget: Duration) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("no answer within {}", seconds(budget)));
    }
    Ok(left)
}

pub(super) fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs().max(1))
}

/// Connects to the port's address, and converses if `send` or `expect`
/// say so, within `timeout` (the check's) by `deadline`.
pub(super) fn port(p: &Port, timeout: Duration, deadline: Instant) -> Result<String, String> {
    let wait = left(deadline, timeout)?;
    let mut stream = TcpStream::connect_timeout(&p.addr, wait).map_err(|e| plain(&e))?;
    if p.send.is_none() && p.expect.is_none() {
        return Ok("accepted".to_string());
    }
    converse(&mut stream, p, timeout, deadline)
}

/// `send`, then read until the answer matches `expect`, the peer closes,
/// 64 KiB or the deadline.
pub(super) fn converse(
    stream: &mut TcpStream,
    p: &Port,
    timeout: Duration,
    deadline: Instant,
) -> Result<String, String> {
    if let Some(text) = &p.send {
        send(stream, text, deadline, timeout).map_err(|e| format!("sending: {e}"))?;
    }
    let Some(expect) = &p.expect else {
        return Ok("accepted what was sent".to_string());
    };
    let re = regex::bytes::Regex::new(expect).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let end = read_until(stream, deadline, timeout, EXPECT_MAX, &mut got, |b| {
        re.is_match(b)
    });
    let heard = quote(&String::from_utf8_lossy(&got), 80);
    if re.is_match(&got) {
        return Ok(format!("answered \"{heard}\""));
    }
    match end {
        End::Timeout if got.is_empty() => Err(format!("no answer within {}", seconds(timeout))),
        End::Error(e) if got.is_empty() => Err(e),
        _ if got.is_empty() => Err(format!("closed without an answer, not matching `{expect}`")),
        _ => Err(format!("answered \"{heard}\", not matching `{expect}`")),
    }
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum End {
    Done,
    Closed,
    Full,
    Timeout,
    Error(String),
}

/// A stream whose reads a deadline can bound.
pub(super) trait Timed: Read + Write {
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
pub(super) fn send(
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
pub(super) fn timed_out(e: &std::io::Error, budget: Duration) -> Option<String> {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
    .then(|| format!("no answer within {}", seconds(budget)))
}

/// Reads into `got` until `done` says so, the peer closes, `cap` bytes or
/// the deadline.
pub(super) fn read_until(
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
pub(super) fn dial(
    host: &str,
    port: u16,
    deadline: Instant,
    budget: Duration,
) -> Result<TcpStream, String> {
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
