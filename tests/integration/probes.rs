//! Checks that speak the protocol, against real servers (Python's
//! http.server and ssl, a small line server) that this test starts: an HTTP
//! answer of 200, 500, a wrong body, none at all; HTTPS with certificates
//! made by `openssl req` (one for a day, one for a year); send/expect.

use std::process::Command;

use crate::sandbox::{free_port, lines, wait_for, Sandbox, Started};

/// `srv.py KIND PORT [CERT KEY | ANSWER]`: KIND `ok` (200 "ok"), `error`
/// (500), `wrong` (200 "maintenance"), `mute` (accepts, never answers),
/// `line` (answers ANSWER to each line it is sent).
const SERVER: &str = r#"
import http.server, socket, ssl, sys, time
kind, port = sys.argv[1], int(sys.argv[2])

def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s

if kind == "mute":
    s = listener()
    while True:
        time.sleep(60)
if kind == "line":
    s = listener()
    while True:
        c, _ = s.accept()
        c.settimeout(5)
        try:
            got = b""
            while b"\n" not in got:
                more = c.recv(100)
                if not more:
                    break
                got += more
            c.sendall(sys.argv[3].encode() + b"\r\n")
        except OSError:
            pass
        c.close()

served = [0]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # flaky: the first answer of every three is 500.
        served[0] += 1
        flaky = kind == "flaky" and served[0] % 3 == 1
        code = 500 if kind == "error" or flaky else 200
        body = b"maintenance\n" if kind == "wrong" else b"ok\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True

server = Server(("127.0.0.1", port), Handler)
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

/// Starts `srv.py` with `args` and waits until its port accepts.
fn serve(sb: &Sandbox, port: u16, args: &[&str]) -> Started {
    serve_with(sb, "srv.py", port, args)
}

/// Starts the Python server `script` (in the sandbox) with `args` and
/// waits until its port accepts.
fn serve_with(sb: &Sandbox, script: &str, port: u16, args: &[&str]) -> Started {
    let started = Started::spawn(
        Command::new("/usr/bin/python3")
            .arg(sb.path(script))
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "/usr/bin/python3",
    );
    wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    started
}

/// A service `web` (the server) checked by `check`; its restart stops any
/// server and starts one answering 200.
fn sandbox(port: u16, check: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("srv.py", SERVER);
    sb.policy(&format!(
        "service web {{\n  name \"Web\"\n  process \"@DIR@/srv\\\\.py\"\n  {check}\n  connect_timeout 2s\n  shell yes\n  restart \"pkill -f '^/usr/bin/python3 @DIR@/srv'; setsid -f /usr/bin/python3 @DIR@/srv.py ok {port}\"\n  grace 5s\n}}\n"
    ));
    sb
}

#[test]
fn http_tells_a_right_answer_from_500_a_wrong_body_and_silence() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let sb = sandbox(port, &format!("http \"{url}\" status 200 content \"^ok\""));
    let p = port.to_string();

    let ok = serve(&sb, port, &["ok", &p]);
    let quiet = sb.tend(&[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, vec![]), "{quiet:?}");
    drop(ok);

    for (kind, why) in [
        (
            "wrong",
            "status 200, but the body does not match `^ok`".to_string(),
        ),
        ("mute", "no answer within 2 s".to_string()),
        (
            "error",
            "status 500 Internal Server Error, not 200".to_string(),
        ),
    ] {
        let server = serve(&sb, port, &[kind, &p]);
        let dry = sb.tend(&["--dry-run"]);
        assert_eq!(dry.code, 1, "{kind}: {dry:?}");
        assert!(
            dry.stdout.contains(&format!(
                "Web (web): fails a check (http {url}: {why}); would run: pkill"
            )),
            "{kind}: {dry:?}"
        );
        assert!(
            dry.stdout
                .contains(&format!("\n  http {url}: failed ({why})\n")),
            "{kind}: {dry:?}"
        );
        if kind != "error" {
            drop(server);
            continue;
        }
        // A pass restarts it, and the new server answers.
        let run = sb.tend(&[]);
        assert_eq!(run.code, 0, "{run:?}");
        let said = lines(&run);
        assert_eq!(
            said[0],
            format!("Web fails a check (http {url}: {why}), restarting...")
        );
        assert!(said[1].starts_with("Web restarted (pid "), "{run:?}");
        assert!(crate::sandbox::cmdline(server.pid()).is_none());
        let again = sb.tend(&[]);
        assert_eq!((again.code, lines(&again)), (0, vec![]), "{again:?}");
        // explain shows what the check found when it last ran.
        let explain = sb.tend(&["explain", "web"]);
        assert!(
            explain
                .stdout
                .contains(&format!("\n    http {url}: passed (status 200 OK)\n")),
            "{explain:?}"
        );
    }
}

/// A self-signed certificate for 127.0.0.1, valid for `days`.
fn certificate(sb: &Sandbox, name: &str, days: u32) -> (String, String) {
    made_certificate(
        sb,
        name,
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1",
        days,
    )
}

/// `openssl req -x509` of a subject and its subjectAltName, valid for
/// `days`: its certificate and key files.
fn made_certificate(
    sb: &Sandbox,
    file: &str,
    subject: &str,
    alt: &str,
    days: u32,
) -> (String, String) {
    let cert = sb.path(&format!("{file}.crt")).display().to_string();
    let key = sb.path(&format!("{file}.key")).display().to_string();
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .args(["-subj", subject, "-addext", alt])
        .args(["-days", &days.to_string(), "-keyout", &key, "-out", &cert])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    (cert, key)
}

#[test]
fn https_and_certificate_expiry() {
    let port = free_port();
    let p = port.to_string();
    let url = format!("https://127.0.0.1:{port}/");
    let sb = sandbox(
        port,
        &format!("http \"{url}\" insecure\n  certificate valid for 14 days"),
    );
    let (year, year_key) = certificate(&sb, "year", 365);
    let (day, day_key) = certificate(&sb, "day", 1);
    // Past the second openssl made it in: from now on less than a full day
    // is left, the same count at every pass below.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // A year left: all is well.
    let server = serve(&sb, port, &["ok", &p, &year, &year_key]);
    let quiet = sb.tend(&[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, vec![]), "{quiet:?}");

    // Without `insecure`, a self-signed certificate fails the request.
    sb.policy(
        &std::fs::read_to_string(sb.path("policy.tend"))
            .unwrap()
            .replace(" insecure", ""),
    );
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout.contains(&format!(
            "Web (web): fails a check (http {url}: certificate not trusted (self-signed, or from an authority this host does not trust; `insecure` accepts it))"
        )),
        "{dry:?}"
    );
    drop(server);

    // A day left, 14 wanted, `then report` (the default): said once, the
    // service untouched.
    sb.policy(&format!(
        "service web {{\n  name \"Web\"\n  process \"@DIR@/srv\\\\.py\"\n  http \"{url}\" insecure\n  certificate valid for 14 days\n  connect_timeout 20s\n  restart \"false\"\n}}\n"
    ));
    let server = serve(&sb, port, &["ok", &p, &day, &day_key]);
    let first = sb.tend(&[]);
    assert_eq!(first.code, 0, "{first:?}");
    // `-days 1` is 86,400 s from when openssl ran: a full day left if tend
    // looks within that same second, less after.
    let said = lines(&first);
    let soon = ["within a day", "in 1 day"].map(|when| {
        format!("Web: certificate 127.0.0.1:{port}: expires {when}, before the 14 days wanted")
    });
    assert!(said.len() == 1 && soon.contains(&said[0]), "{first:?}");
    // explain: each check as the pass found it.
    let explain = sb.tend(&["explain", "web"]);
    let checked = &said[0]["Web: ".len()..].replace(": expires", ": warned (expires");
    assert!(
        explain.stdout.contains(&format!(
            "    http {url}: passed (status 200 OK)\n    {checked})\n"
        )),
        "{explain:?}"
    );
    let second = sb.tend(&[]);
    assert_eq!((second.code, lines(&second)), (0, vec![]), "{second:?}");
    assert!(crate::sandbox::cmdline(server.pid()).is_some());

    // `then restart`, with the place named: a failing check.
    sb.policy(&format!(
        "service web {{\n  name \"Web\"\n  process \"@DIR@/srv\\\\.py\"\n  certificate \"127.0.0.1:{port}\" valid for 14 days then restart\n  connect_timeout 20s\n  restart \"false\"\n}}\n"
    ));
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        ["within a day", "in 1 day"].iter().any(|when| dry.stdout.contains(&format!(
            "Web (web): fails a check (certificate 127.0.0.1:{port}: expires {when}, before the 14 days wanted); would run: false"
        ))),
        "{dry:?}"
    );
}

#[test]
fn send_and_expect_on_a_line_protocol() {
    let port = free_port();
    let p = port.to_string();
    let sb = sandbox(
        port,
        &format!("port {port} send \"PING\\r\\n\" expect \"^\\+PONG\""),
    );
    let pong = serve(&sb, port, &["line", &p, "+PONG"]);
    let quiet = sb.tend(&[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, vec![]), "{quiet:?}");
    drop(pong);

    for (args, why) in [
        (
            vec!["line", &p, "-ERR unknown command"],
            r#"answered "-ERR unknown command\r\n", not matching `^\+PONG`"#,
        ),
        (vec!["mute", &p], "no answer within 2 s"),
    ] {
        let server = serve(&sb, port, &args);
        let dry = sb.tend(&["--dry-run"]);
        assert!(
            dry.stdout.contains(&format!(
                "Web (web): fails a check (port 127.0.0.1:{port}: {why}); would run: pkill"
            )),
            "{args:?}: {dry:?}"
        );
        drop(server);
    }

    // A pass in JSON, whose restart starts a server answering +PONG: the
    // events say what the check found before and after.
    sb.policy(&format!(
        "service web {{\n  process \"@DIR@/srv\\\\.py\"\n  port {port} send \"PING\\r\\n\" expect \"^\\+PONG\"\n  connect_timeout 2s\n  shell yes\n  restart \"pkill -f '^/usr/bin/python3 @DIR@/srv'; setsid -f /usr/bin/python3 @DIR@/srv.py line {port} +PONG\"\n  grace 5s\n}}\n"
    ));
    let _err = serve(&sb, port, &["line", &p, "-ERR"]);
    let run = sb.tend(&["--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let events: Vec<serde_json::Value> = lines(&run)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["event"] != "syslog_unavailable")
        .collect();
    let first = &events[0];
    assert_eq!(first["event"], "restarting", "{run:?}");
    assert_eq!(
        first["checks"],
        serde_json::json!([{
            "check": format!("port 127.0.0.1:{port}"),
            "status": "failed",
            "result": "answered \"-ERR\\r\\n\", not matching `^\\+PONG`",
        }]),
        "{run:?}"
    );
    // The restart's check, in the event that says it is back.
    let back = &events[1];
    assert_eq!(back["event"], "restarted", "{run:?}");
    assert_eq!(
        back["checks"],
        serde_json::json!([{
            "check": format!("port 127.0.0.1:{port}"),
            "status": "passed",
            "result": "answered \"+PONG\\r\\n\"",
        }]),
        "{run:?}"
    );
}

/// `raw.py KIND PORT [CERT KEY SNI_CERT SNI_KEY]`: `many` answers 200 with
/// 100 Set-Cookie lines and `ok\n`; `continue` sends `100 Continue` before
/// `200 OK`; `sni` is TLS whose certificate depends on the name asked for.
const RAW: &str = r#"
import socket, ssl, sys, threading
kind, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
if kind == "sni":
    default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    default.load_cert_chain(sys.argv[3], sys.argv[4])
    site = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    site.load_cert_chain(sys.argv[5], sys.argv[6])
    def pick(sock, name, ctx):
        if name == "site.test":
            sock.context = site
    default.sni_callback = pick
def answer(c):
    try:
        c.settimeout(5)
        if kind == "sni":
            c = default.wrap_socket(c, server_side=True)
        got = b""
        while b"\r\n\r\n" not in got:
            more = c.recv(1000)
            if not more:
                return
            got += more
        if kind == "many":
            head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"Set-Cookie: c%d=v\r\n" % i for i in range(100))
            c.sendall(head + b"Content-Length: 3\r\n\r\nok\n")
        elif kind == "continue":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=answer, args=(c,)).start()
"#;

fn serve_raw(sb: &Sandbox, port: u16, args: &[&str]) -> Started {
    sb.write("raw.py", RAW);
    serve_with(sb, "raw.py", port, args)
}

/// A certificate for the name `name`, valid for `days`.
fn named_certificate(sb: &Sandbox, file: &str, name: &str, days: u32) -> (String, String) {
    let (subject, alt) = (format!("/CN={name}"), format!("subjectAltName=DNS:{name}"));
    made_certificate(sb, file, &subject, &alt, days)
}

/// Healthy answers that are not the simplest: many header lines, an
/// interim `100 Continue`, a body ending in a newline under `^ok$`. A
/// check's own timeout is what it waits and what it says; a TLS peer that
/// never answers says so in the same words. A certificate check beside an
/// https check with `host NAME` asks for that name's certificate.
#[test]
fn http_answers_timeouts_and_server_names() {
    let port = free_port();
    let p = port.to_string();
    let url = format!("http://127.0.0.1:{port}/health");
    let sb = Sandbox::new();
    let policy = |check: &str| {
        format!("service web {{\n  name \"Web\"\n  process \"@DIR@/(srv|raw)\\\\.py\"\n  {check}\n  connect_timeout 10s\n  restart \"false\"\n}}\n")
    };
    sb.policy(&policy(&format!("http \"{url}\" content \"^ok$\"")));
    for kind in ["many", "continue"] {
        let server = serve_raw(&sb, port, &[kind, &p]);
        let run = sb.tend(&[]);
        assert_eq!((run.code, lines(&run)), (0, vec![]), "{kind}: {run:?}");
        drop(server);
    }

    // `timeout 3s` with a longer connect_timeout: 3 s, said as 3 s.
    sb.write("srv.py", SERVER);
    let mute = serve(&sb, port, &["mute", &p]);
    sb.policy(&policy(&format!("http \"{url}\" timeout 3s")));
    let started = std::time::Instant::now();
    let dry = sb.tend(&["--dry-run"]);
    let took = started.elapsed();
    assert!(
        dry.stdout
            .contains(&format!("fails a check (http {url}: no answer within 3 s)")),
        "{dry:?}"
    );
    assert!(took < std::time::Duration::from_secs(8), "waited {took:?}");
    // A TLS peer that accepts and never answers.
    let tls = format!("https://127.0.0.1:{port}/");
    sb.policy(&policy(&format!("http \"{tls}\" timeout 2s")));
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout
            .contains(&format!("fails a check (http {tls}: no answer within 2 s)")),
        "{dry:?}"
    );
    drop(mute);

    // The default certificate has a year; site.test's, a day.
    let (year, year_key) = named_certificate(&sb, "default", "default.test", 365);
    let (day, day_key) = named_certificate(&sb, "site", "site.test", 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let _sni = serve_raw(&sb, port, &["sni", &p, &year, &year_key, &day, &day_key]);
    sb.policy(&policy(&format!(
        "http \"{tls}\" host \"site.test\" insecure\n  certificate valid for 14 days"
    )));
    let run = sb.tend(&[]);
    let said = lines(&run);
    assert!(
        said.len() == 1
            && said[0].starts_with(&format!("Web: certificate 127.0.0.1:{port}: expires "))
            && said[0].ends_with(", before the 14 days wanted"),
        "{run:?}"
    );
}

/// A restart whose process comes up but still fails its check is said as
/// that, with what the check found, not as a process that never appeared.
#[test]
fn a_restart_that_still_fails_its_check_says_why() {
    let port = free_port();
    let p = port.to_string();
    let url = format!("http://127.0.0.1:{port}/");
    let sb = Sandbox::new();
    sb.write("srv.py", SERVER);
    sb.policy(&format!(
        "service web {{\n  name \"Web\"\n  process \"@DIR@/srv\\\\.py\"\n  http \"{url}\" status 200\n  connect_timeout 2s\n  shell yes\n  restart \"pkill -f '^/usr/bin/python3 @DIR@/srv'; setsid -f /usr/bin/python3 @DIR@/srv.py error {port}\"\n  grace 2s\n}}\n"
    ));
    let _first = serve(&sb, port, &["error", &p]);
    let run = sb.tend(&[]);
    let said = lines(&run);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        said[0],
        format!("Web fails a check (http {url}: status 500 Internal Server Error, not 200), restarting...")
    );
    assert!(
        said[1].ends_with(&format!(
            " started, but still fails a check after 2 s: http {url}: status 500 Internal Server Error, not 200"
        )),
        "{run:?}"
    );
}

/// A server that fails one answer in three: with `retry 3` a pass tries
/// again and never restarts it (and `explain` shows the try it passed
/// on); without, the failing answer restarts it, as before.
#[test]
fn a_check_that_passes_on_a_retry_restarts_nothing() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let sb = sandbox(
        port,
        &format!("http \"{url}\" status 200\n  retry 3 every 1s"),
    );
    let _flaky = serve(&sb, port, &["flaky", &port.to_string()]);
    for _ in 0..5 {
        let run = sb.tend(&[]);
        assert_eq!((run.code, lines(&run)), (0, vec![]), "{run:?}");
    }
    let explain = sb.tend(&["explain", "web"]);
    assert!(
        explain.stdout.contains(
            "a check that fails is tried again, up to 3 tries 1 s apart, before it counts"
        ),
        "{explain:?}"
    );
    // The fifth pass's look was its 7th answer, a 500, then the 8th, a 200.
    assert!(
        explain.stdout.contains(&format!(
            "http {url}: passed (status 200 OK; on try 2 of 3, the first: status 500 Internal Server Error, not 200)"
        )),
        "{explain:?}"
    );

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let sb = sandbox(port, &format!("http \"{url}\" status 200"));
    let _flaky = serve(&sb, port, &["flaky", &port.to_string()]);
    let run = sb.tend(&[]);
    assert_eq!(
        lines(&run)[0],
        format!("Web fails a check (http {url}: status 500 Internal Server Error, not 200), restarting...")
    );
}

/// `tolerate 3 passes`: a check that keeps failing restarts the service on
/// the third failing pass in a row, not before; one that fails now and
/// then (one answer in three) never does, the count starting over at each
/// success; and the state keeps the count between passes.
#[test]
fn a_failing_check_is_tolerated_for_its_passes_and_the_count_resets() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let sb = sandbox(
        port,
        &format!("http \"{url}\" status 200\n  tolerate 3 passes"),
    );
    let error = serve(&sb, port, &["error", &port.to_string()]);
    for pass in 1..=2 {
        let run = sb.tend(&[]);
        assert_eq!((run.code, lines(&run)), (0, vec![]), "pass {pass}: {run:?}");
        let state = std::fs::read_to_string(sb.path("state/state.json")).unwrap();
        assert!(
            state.contains(&format!("\"failed_passes\": {pass}")),
            "{state}"
        );
    }
    let third = sb.tend(&[]);
    assert_eq!(third.code, 0, "{third:?}");
    assert_eq!(
        lines(&third)[0],
        format!("Web fails a check (http {url}: status 500 Internal Server Error, not 200; 3 passes in a row), restarting...")
    );
    assert!(crate::sandbox::cmdline(error.pid()).is_none());
    drop(error);

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let sb = sandbox(
        port,
        &format!("http \"{url}\" status 200\n  tolerate 2 passes"),
    );
    let _flaky = serve(&sb, port, &["flaky", &port.to_string()]);
    // Answers 500, 200, 200, 500, 200, 200: never two failing passes.
    for pass in 1..=6 {
        let run = sb.tend(&[]);
        assert_eq!((run.code, lines(&run)), (0, vec![]), "pass {pass}: {run:?}");
    }
}

/// A service others depend on is ready for them when its checks pass, not
/// merely when its process runs: a dependent of a server whose check
/// fails (tolerated, so not restarted yet) waits for it.
#[test]
fn a_dependent_waits_for_a_service_whose_check_fails() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let sb = sandbox(
        port,
        &format!("http \"{url}\" status 200\n  tolerate 3 passes"),
    );
    let policy = std::fs::read_to_string(sb.path("policy.tend")).unwrap();
    sb.daemon("app");
    sb.policy(&format!(
        "{policy}service app {{\n  process \"@DIR@/app\"\n  restart \"setsid -f @DIR@/app 1000\"\n  depends on web\n  grace 5s\n}}\n"
    ));
    let _error = serve(&sb, port, &["error", &port.to_string()]);
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout
            .contains("app (app): not running; would run once Web is up"),
        "{dry:?}"
    );
    let run = sb.tend(&[]);
    assert!(sb.pids_of("app").is_empty(), "{run:?}");
    assert_eq!(run.code, 1, "{run:?}");
}

/// A server that opens its port 4 s after it starts.
const SLOW: &str = "import socket, sys, time\ntime.sleep(4)\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen(16)\nwhile True:\n    c, _ = s.accept()\n    c.close()\n";

/// `start_period`: a slow starter gets it after a restart (reported
/// restarted, once, not killed in a loop), and when it is seen new; with
/// none, the same restart failed to start.
#[test]
fn a_slow_starter_gets_its_start_period() {
    for (period, restarted) in [("10s", true), ("0", false)] {
        let port = free_port();
        let sb = Sandbox::new();
        sb.write("slow.py", SLOW);
        sb.policy(&format!(
            "service web {{\n  name \"Web\"\n  process \"@DIR@/slow\\\\.py\"\n  port {port}\n  start_period {period}\n  restart \"setsid -f /usr/bin/python3 @DIR@/slow.py {port}\"\n  grace 2s\n}}\n"
        ));
        let run = sb.tend(&[]);
        let said = lines(&run);
        assert_eq!(said[0], "Web is not running, restarting...", "{run:?}");
        if restarted {
            assert_eq!(run.code, 0, "{run:?}");
            assert!(said[1].starts_with("Web restarted (pid "), "{run:?}");
            let again = sb.tend(&[]);
            assert_eq!((again.code, lines(&again)), (0, vec![]), "{again:?}");
        } else {
            assert!(said[1].starts_with("Web failed to start!"), "{run:?}");
            assert!(said[1].contains("connection refused"), "{run:?}");
        }
        let _ = std::process::Command::new("pkill")
            .args(["-f", &format!("{}/slow", sb.dir().display())])
            .status();
    }
    // Seen new, started by someone else a moment ago: not judged yet.
    let port = free_port();
    let sb = Sandbox::new();
    sb.write("slow.py", SLOW);
    sb.policy(&format!(
        "service web {{\n  name \"Web\"\n  process \"@DIR@/slow\\\\.py\"\n  port {port}\n  start_period 10s\n  restart \"setsid -f /usr/bin/python3 @DIR@/slow.py {port}\"\n}}\n"
    ));
    let _slow = Started::spawn(
        Command::new("/usr/bin/python3")
            .arg(sb.path("slow.py"))
            .arg(port.to_string()),
        "/usr/bin/python3",
    );
    let quiet = sb.tend(&[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, vec![]), "{quiet:?}");
}

/// Two `port` checks on one daemon (an HTTP port and a line protocol's):
/// both are checked; with the second failing, the service is restarted
/// and the report names that check. Monit's file with the same two tests
/// imports with both carried.
#[test]
fn two_port_checks_on_one_service_each_counts_and_the_failing_one_is_named() {
    let (web, admin) = (free_port(), free_port());
    let sb = Sandbox::new();
    sb.write("srv.py", SERVER);
    sb.policy(&format!(
        "service web {{\n  name \"Web\"\n  process \"@DIR@/srv\\\\.py\"\n  port {web}\n  port {admin} send \"PING\\n\" expect \"^PONG\"\n  connect_timeout 2s\n  shell yes\n  restart \"pkill -f '^/usr/bin/python3 @DIR@/srv'; setsid -f /usr/bin/python3 @DIR@/srv.py ok {web}; setsid -f /usr/bin/python3 @DIR@/srv.py line {admin} PONG\"\n  grace 5s\n}}\n"
    ));
    let _http = serve(&sb, web, &["ok", &web.to_string()]);
    let line = serve(&sb, admin, &["line", &admin.to_string(), "PONG"]);
    let quiet = sb.tend(&[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, vec![]), "{quiet:?}");
    let explain = sb.tend(&["explain", "web"]);
    for port in [web, admin] {
        assert!(
            explain
                .stdout
                .contains(&format!("\n    port 127.0.0.1:{port}: passed (")),
            "{explain:?}"
        );
    }
    // The second port's server dies; the first still answers.
    drop(line);
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    let said = lines(&run);
    assert_eq!(
        said[0],
        format!("Web fails a check (port 127.0.0.1:{admin}: connection refused), restarting...")
    );
    assert!(said[1].starts_with("Web restarted (pid "), "{run:?}");
    wait_for(|| std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok());
    let again = sb.tend(&[]);
    assert_eq!((again.code, lines(&again)), (0, vec![]), "{again:?}");

    // The same two tests in Monit's words: both carried, and valid.
    sb.write(
        "monitrc",
        &format!("check process web matching \"srv.py\"\n  start program = \"/bin/true\"\n  stop program = \"/bin/true\"\n  if failed port {web} then restart\n  if failed port {admin} then restart\n"),
    );
    let import = sb.tend(&["import", "monit", "monitrc", "-o", "imported"]);
    assert_eq!(import.code, 0, "{import:?}");
    let written = std::fs::read_to_string(sb.path("imported/monitrc.tend")).unwrap();
    for port in [web, admin] {
        assert!(
            written.contains(&format!("    port    {port}  # line ")),
            "{written}"
        );
    }
    let valid = sb.tend(&["validate", "imported"]);
    assert_eq!(valid.code, 0, "{valid:?}");
    let _ = Command::new("pkill")
        .args([
            "-f",
            &format!("^/usr/bin/python3 {}/srv", sb.dir().display()),
        ])
        .status();
}
