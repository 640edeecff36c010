//! Channels: events POSTed to a real HTTP receiver on loopback (webhook and
//! Slack form), given to a script written for Monit, kept in the outbox
//! while the receiver is down and delivered once, in order, when it is
//! back; a hanging receiver costs a pass no more than the budget; a pass
//! killed mid-send loses nothing; a URL file others may read is refused
//! and no URL is ever shown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sandbox::{lines, wait_for, Sandbox};

const T0: i64 = 1_790_000_000;

/// A small HTTP server on a loopback port: it records each request's path
/// and body, and answers with the status set (0: it reads the request and
/// never answers).
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<(String, String)>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (g, s) = (g.clone(), s.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    reader.read_line(&mut first).unwrap_or(0);
                    let path = first.split(' ').nth(1).unwrap_or("").to_string();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let body = String::from_utf8_lossy(&body).into_owned();
                    g.lock().unwrap().push((path, body));
                    let code = s.load(Ordering::SeqCst);
                    if code == 0 {
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                });
            }
        });
        Receiver { port, got, status }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The `event` of each JSON body received at `path`, in order.
    fn events(&self, path: &str) -> Vec<String> {
        self.bodies(path)
            .iter()
            .map(|b| b["event"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn bodies(&self, path: &str) -> Vec<serde_json::Value> {
        self.texts(path)
            .iter()
            .map(|b| serde_json::from_str(b).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// The bodies received at `path`, as text.
    fn texts(&self, path: &str) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

/// A policy of one daemon `d` (restarted with setsid) and `channels`.
fn policy(sb: &Sandbox, channels: &str) {
    sb.daemon("d");
    sb.policy(&format!(
        "{channels}\nservice d {{\n  process \"@DIR@/d\"\n  restart \"setsid -f @DIR@/d 1000\"\n  grace 5s\n  settle 1s\n}}\n"
    ));
}

/// Kills every `d` of the sandbox.
fn kill_d(sb: &mut Sandbox) {
    for pid in sb.pids_of("d") {
        sb.kill(pid);
    }
}

#[test]
fn a_webhook_gets_one_event_per_incident_and_one_recovery_and_slack_gets_text() {
    let mut sb = Sandbox::new();
    let rx = Receiver::start();
    policy(
        &sb,
        &format!(
            "channel hook {{\n  webhook \"{}\"\n}}\nchannel chat {{\n  slack \"{}\"\n}}\n",
            rx.url("/hook"),
            rx.url("/chat")
        ),
    );
    let first = sb.at(T0, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let pid = sb.pids_of("d")[0];
    assert_eq!(rx.events("/hook"), ["restarting", "restarted"]);
    let bodies = rx.bodies("/hook");
    for (b, line) in bodies.iter().zip(lines(&first)) {
        // The documented JSON event, with its host and an id.
        assert_eq!(b["service"], "d");
        assert_eq!(b["message"], line.as_str());
        assert_eq!(b["channel"], "hook");
        assert!(b["host"].as_str().is_some_and(|h| !h.is_empty()), "{b}");
        assert!(b["id"].as_str().is_some_and(|i| !i.is_empty()), "{b}");
        assert!(b["time"].as_i64().is_some(), "{b}");
    }
    assert_eq!(bodies[1]["pid"], pid);
    assert_ne!(bodies[0]["id"], bodies[1]["id"]);
    let texts: Vec<String> = rx
        .bodies("/chat")
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "d is not running, restarting...".to_string(),
            format!("d restarted (pid {pid})")
        ]
    );
    // All is well: nothing more is sent, pass after pass.
    for k in 1..3 {
        assert_eq!(sb.at(T0 + 300 * k, &[]).stdout, "");
    }
    assert_eq!(rx.events("/hook").len(), 2);
    assert_eq!(rx.bodies("/chat").len(), 2);
    kill_d(&mut sb);
}

#[test]
fn a_receiver_down_for_three_passes_then_up_gets_every_event_once_in_order() {
    let mut sb = Sandbox::new();
    let rx = Receiver::start();
    policy(
        &sb,
        &format!("channel hook {{\n  webhook \"{}\"\n}}\n", rx.url("/hook")),
    );
    rx.answer(503);
    let mut said = Vec::new();
    for k in 0..3 {
        kill_d(&mut sb);
        let run = sb.at(T0 + 300 * k, &[]);
        assert_eq!(run.code, 0, "{run:?}");
        said.extend(
            lines(&run)
                .into_iter()
                .filter(|l| !l.starts_with("tend: channel")),
        );
        // The receiver's failure is said once, not every pass.
        let failed = run
            .stdout
            .matches("tend: channel hook: cannot deliver (HTTP 503")
            .count();
        assert_eq!(failed, usize::from(k == 0), "{run:?}");
    }
    rx.answer(200);
    let up = sb.at(T0 + 900, &[]);
    assert_eq!(up.stdout, "", "{up:?}");
    let got: Vec<String> = rx
        .bodies("/hook")
        .iter()
        .map(|b| format!("{} {}", b["id"], b["message"]))
        .collect();
    // Each was tried while the receiver was down (a try each pass), then
    // delivered: the delivered ones are the last of each id, in order.
    let mut delivered: Vec<String> = Vec::new();
    for g in got.iter().rev() {
        if !delivered.contains(g) {
            delivered.insert(0, g.clone());
        }
    }
    let messages: Vec<String> = delivered
        .iter()
        .map(|g| g.split_once(' ').unwrap().1.trim_matches('"').to_string())
        .collect();
    assert_eq!(messages, said);
    // Restarting and restarted twice, then flapping (its restart quiet).
    assert_eq!(said.len(), 5, "{said:?}");
    // Nothing is left to send: the next pass sends only that it has
    // stayed up 10 minutes (no longer flapping), and the one after nothing.
    let before = rx.bodies("/hook").len();
    sb.at(T0 + 1200, &[]);
    let bodies = rx.bodies("/hook");
    assert_eq!(bodies.len(), before + 1);
    assert_eq!(bodies[before]["event"], "steady", "{:?}", bodies[before]);
    sb.at(T0 + 1500, &[]);
    assert_eq!(rx.bodies("/hook").len(), before + 1);
    kill_d(&mut sb);
}

#[test]
fn a_hanging_receiver_delays_no_restart_and_costs_the_pass_at_most_the_budget() {
    let mut sb = Sandbox::new();
    let rx = Receiver::start();
    rx.answer(0);
    policy(
        &sb,
        &format!(
            "channel hook {{\n  webhook \"{}\"\n  timeout 30s\n}}\n",
            rx.url("/hook")
        ),
    );
    let started = Instant::now();
    let run = sb.at(T0, &[]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    // Restarted (settle 1 s) before anything was sent ...
    assert_eq!(sb.pids_of("d").len(), 1);
    assert!(
        lines(&run)[..2]
            .join("\n")
            .starts_with("d is not running, restarting...\nd restarted"),
        "{run:?}"
    );
    // ... and the hung receiver held the pass at most the 5 s budget,
    // whatever the channel's own timeout.
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert!(
        run.stdout.contains("tend: channel hook: cannot deliver"),
        "{run:?}"
    );
    kill_d(&mut sb);
}

#[test]
fn a_pass_killed_mid_delivery_loses_nothing() {
    let mut sb = Sandbox::new();
    let rx = Receiver::start();
    rx.answer(0);
    policy(
        &sb,
        &format!("channel hook {{\n  webhook \"{}\"\n}}\n", rx.url("/hook")),
    );
    let mut pass = sb
        .command(&[], &[("TEND_NOW", &T0.to_string())])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first event is being sent: the pass is killed there.
    wait_for(|| !rx.bodies("/hook").is_empty());
    let first = rx.bodies("/hook")[0].clone();
    pass.kill().unwrap();
    pass.wait().unwrap();
    rx.answer(200);
    let next = sb.at(T0 + 300, &[]);
    assert_eq!(next.code, 0, "{next:?}");
    let bodies = rx.bodies("/hook");
    let ids: Vec<&serde_json::Value> = bodies.iter().map(|b| &b["id"]).collect();
    // Sent again, under the same id (a receiver drops the repeat), then
    // the rest, each once.
    assert_eq!(ids[0], &first["id"]);
    assert_eq!(ids[1], &first["id"], "{bodies:?}");
    assert_eq!(rx.events("/hook")[1..], ["restarting", "restarted"]);
    kill_d(&mut sb);
}

#[test]
fn a_script_written_for_monit_gets_monit_variables_and_the_event_on_stdin() {
    let mut sb = Sandbox::new();
    sb.script(
        "to-chat.sh",
        "#!/bin/sh\n\
         echo \"$MONIT_SERVICE|$MONIT_EVENT|$MONIT_DESCRIPTION|$MONIT_HOST|$MONIT_PROCESS_PID|$TEND_EVENT\" >> @DIR@/monit.out\n\
         case \"$MONIT_DATE\" in ???,\\ [0-9][0-9]\\ ???\\ 2026\\ *) ;; *) echo \"bad date $MONIT_DATE\" >> @DIR@/monit.out ;; esac\n\
         cat >> @DIR@/stdin.out; echo >> @DIR@/stdin.out\n",
    );
    policy(&sb, "channel script {\n  exec \"@DIR@/to-chat.sh\"\n}\n");
    let run = sb.at(T0, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let pid = sb.pids_of("d")[0];
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim().split('.').next().unwrap();
    let out = std::fs::read_to_string(sb.path("monit.out")).unwrap();
    assert_eq!(
        out,
        format!(
            "d|Does not exist|d is not running, restarting...|{host}||restarting\n\
             d|Exists|d restarted (pid {pid})|{host}|{pid}|restarted\n"
        )
    );
    let stdin = std::fs::read_to_string(sb.path("stdin.out")).unwrap();
    let events: Vec<serde_json::Value> = stdin
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[1]["event"], "restarted");
    assert_eq!(events[1]["pid"], pid);
    kill_d(&mut sb);
}

#[test]
fn a_url_file_others_may_read_is_refused_and_no_url_is_ever_shown() {
    use std::os::unix::fs::PermissionsExt;
    let mut sb = Sandbox::new();
    let rx = Receiver::start();
    let secret = "T0ken-9f8e7d6c";
    let url_file = sb.write(
        "hook.url",
        &format!("{}\n", rx.url(&format!("/hooks/{secret}"))),
    );
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    policy(
        &sb,
        "channel hook {\n  webhook url_file \"@DIR@/hook.url\"\n}\n",
    );
    let (syslog, socket) = sb.syslog();
    let env = [
        ("TEND_NOW", T0.to_string()),
        ("TEND_SYSLOG_SOCKET", socket.to_string_lossy().into_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = sb.tend_env(&[], &env);
    assert_eq!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stdout.contains(&format!(
            "tend: channel hook: cannot deliver (url_file {} is not used: others than its owner may read or change it (mode 644",
            url_file.display()
        )),
        "{refused:?}"
    );
    assert!(rx.bodies(&format!("/hooks/{secret}")).is_empty());
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    kill_d(&mut sb);
    let sent = sb.at(T0 + 300, &[]);
    // The events kept while the file was refused, then this pass's.
    assert_eq!(
        rx.events(&format!("/hooks/{secret}")),
        ["restarting", "restarted", "restarting", "restarted"]
    );
    // The secret is in no output: passes, validate, a dry run, syslog,
    // the outbox and the state.
    let mut outputs = vec![format!("{refused:?}"), format!("{sent:?}")];
    for args in [&["validate"][..], &["--dry-run"], &["plan"], &["status"]] {
        outputs.push(format!("{:?}", sb.at(T0 + 400, args)));
    }
    let mut buf = [0u8; 4096];
    while let Ok(n) = syslog.recv(&mut buf) {
        outputs.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        syslog
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    for file in ["state/outbox.json", "state/state.json"] {
        outputs.push(std::fs::read_to_string(sb.path(file)).unwrap_or_default());
    }
    for out in outputs {
        assert!(!out.contains(secret), "{out}");
    }
    kill_d(&mut sb);
}

#[test]
fn a_full_outbox_keeps_the_newest_and_says_so_once() {
    let mut sb = Sandbox::new();
    let rx = Receiver::start();
    rx.answer(503);
    policy(
        &sb,
        &format!("channel hook {{\n  webhook \"{}\"\n}}\n", rx.url("/hook")),
    );
    // A backlog of 10,000 events a receiver never took, as tend keeps it.
    let entries: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            serde_json::json!({
                "id": format!("old-{i}"), "channel": "hook", "text": format!("old {i}"),
                "event": {"event": "restarting", "id": format!("old-{i}"), "message": format!("old {i}")},
                "tries": 3
            })
        })
        .collect();
    std::fs::create_dir_all(sb.path("state")).unwrap();
    sb.write(
        "state/outbox.json",
        &serde_json::json!({"entries": entries, "seq": 10_000}).to_string(),
    );
    let run = sb.at(T0, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "tend: the outbox is full (1000 events not yet delivered); the oldest are dropped"
        ),
        "{run:?}"
    );
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("state/outbox.json")).unwrap())
            .unwrap();
    let kept = kept["entries"].as_array().unwrap();
    assert_eq!(kept.len(), 1000);
    // The newest are kept: this pass's two, after the last 998 old ones.
    assert_eq!(kept[0]["id"], "old-9002");
    assert_eq!(kept[999]["event"]["event"], "restarted");
    // Said once: the next pass, still full, says nothing of it.
    kill_d(&mut sb);
    let again = sb.at(T0 + 3600, &[]);
    assert!(!again.stdout.contains("outbox is full"), "{again:?}");
    kill_d(&mut sb);
}

#[test]
fn notify_test_says_what_each_receiver_answered() {
    let sb = Sandbox::new();
    let rx = Receiver::start();
    policy(
        &sb,
        &format!(
            "channel ok {{\n  webhook \"{}\"\n}}\nchannel gone {{\n  slack \"{}\"\n}}\nnowhere::\nchannel off {{\n  exec \"/bin/true\"\n}}\n",
            rx.url("/ok/secret-path"),
            rx.url("/gone/secret-path")
        ),
    );
    let all = sb.tend(&["notify", "test"]);
    // The receiver answers 200 to both: both delivered; the guarded-off
    // channel is not tried; no URL path is shown.
    assert_eq!(all.code, 0, "{all:?}");
    assert_eq!(
        lines(&all),
        [
            "channel ok (webhook http://127.0.0.1/****): delivered (HTTP 200 OK)",
            "channel gone (slack http://127.0.0.1/****): delivered (HTTP 200 OK)",
        ]
    );
    assert_eq!(rx.events("/ok/secret-path"), ["test"]);
    assert_eq!(
        rx.bodies("/gone/secret-path")[0]["text"].as_str().unwrap(),
        format!(
            "tend notify test from {}: this channel works",
            rx.bodies("/ok/secret-path")[0]["host"].as_str().unwrap()
        )
    );
    rx.answer(404);
    let one = sb.tend(&["notify", "test", "gone"]);
    assert_eq!(one.code, 1, "{one:?}");
    assert_eq!(
        lines(&one),
        ["channel gone (slack http://127.0.0.1/****): refused (HTTP 404 Not Found: ok)"]
    );
    let unknown = sb.tend(&["notify", "test", "nope"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("no channel `nope`"), "{unknown:?}");
}

#[test]
fn a_channel_written_wrong_is_an_error_at_its_place() {
    let sb = Sandbox::new();
    sb.policy(
        "channel a {\n  webhook \"ftp://x/\"\n}\nchannel b {\n  events failed, recoverd\n  exec \"/bin/true\"\n}\nchannel c {\n  timeout 5s\n}\nchannel d {\n  slack \"https://h/x\"\n  exec \"/bin/true\"\n  colour red\n}\n",
    );
    let run = sb.tend(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    for said in [
        "policy.tend:2:11: error: not an http:// or https:// URL with a host",
        "policy.tend:5:18: error: `recoverd` is not an event; did you mean `recovered`?",
        "policy.tend:8:9: error: channel `c` says none of `exec`, `webhook`, `slack`, `heartbeat`, `alertmanager`: how to send",
        "policy.tend:13:3: error: a channel sends one way: `slack` is already given",
        "policy.tend:14:3: error: unknown channel attribute `colour`",
    ] {
        assert!(run.stderr.contains(said), "{said}\n{run:?}");
    }
    // A channel whose way of sending is written wrong has that one error.
    assert!(!run.stderr.contains("channel `a` says none"), "{run:?}");
}

/// A heartbeat is pinged every pass: its URL when all is well, URL/fail
/// when something is down, with what the pass said; never kept for later.
#[test]
fn a_heartbeat_is_pinged_every_pass_and_fails_when_something_is_down() {
    let mut sb = Sandbox::new();
    let rx = Receiver::start();
    sb.daemon("d");
    sb.policy(&format!(
        "channel hc {{\n  heartbeat \"{}\"\n}}\nservice d {{\n  process \"@DIR@/d\"\n  restart \"sh -c 'test ! -e @DIR@/broken && setsid -f @DIR@/d 1000'\"\n  grace 5s\n  settle 1s\n}}\n",
        rx.url("/ping/abc")
    ));
    let up = sb.at(T0, &[]);
    assert_eq!(up.code, 0, "{up:?}");
    let quiet = sb.at(T0 + 300, &[]);
    assert_eq!(quiet.stdout, "", "{quiet:?}");
    let pings = rx.texts("/ping/abc");
    assert_eq!(pings.len(), 2, "{pings:?}");
    assert!(
        pings[0].starts_with("d is not running, restarting..."),
        "{pings:?}"
    );
    assert_eq!(pings[1], "all is well");
    // Down, and the restart fails: the fail URL, with the lines.
    sb.write("broken", "");
    kill_d(&mut sb);
    let down = sb.at(T0 + 600, &[]);
    assert_eq!(down.code, 1, "{down:?}");
    let fails = rx.texts("/ping/abc/fail");
    assert_eq!(fails.len(), 1, "{:?}", rx.got.lock().unwrap());
    assert!(fails[0].contains("d failed to start!"), "{fails:?}");
    // A receiver that is down is said once; nothing is kept for later.
    rx.answer(503);
    let k1 = sb.at(T0 + 900, &[]);
    let k2 = sb.at(T0 + 1200, &[]);
    assert!(
        k1.stdout
            .contains("tend: channel hc: cannot deliver (HTTP 503 Service Unavailable)\n"),
        "{k1:?}"
    );
    assert!(!k2.stdout.contains("channel hc"), "{k2:?}");
    let outbox = std::fs::read_to_string(sb.path("state/outbox.json")).unwrap();
    let outbox: serde_json::Value = serde_json::from_str(&outbox).unwrap();
    assert_eq!(outbox["entries"].as_array().unwrap().len(), 0);
    kill_d(&mut sb);
}

/// Debian's Alertmanager on a loopback port, with a configuration the test
/// writes; killed with the test.
struct Alertmanager {
    child: std::process::Child,
    url: String,
}

impl Alertmanager {
    fn start(sb: &Sandbox) -> Option<Alertmanager> {
        let binary = std::path::Path::new("/usr/bin/prometheus-alertmanager");
        if !binary.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI installs prometheus-alertmanager"
            );
            eprintln!("skipped: prometheus-alertmanager is not installed");
            return None;
        }
        let config = sb.write(
            "alertmanager.yml",
            "route:\n  receiver: none\nreceivers:\n  - name: none\n",
        );
        let port = crate::sandbox::free_port();
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", sb.path("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_for(|| am.query().is_some());
        Some(am)
    }

    /// The active alerts, as `amtool alert query` lists them.
    fn query(&self) -> Option<Vec<serde_json::Value>> {
        let out = std::process::Command::new("amtool")
            .arg(format!("--alertmanager.url={}", self.url))
            .args(["alert", "query", "-o", "json"])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alertmanager_shows_a_service_down_while_it_lasts_and_resolves_it() {
    let mut sb = Sandbox::new();
    let Some(am) = Alertmanager::start(&sb) else {
        return;
    };
    sb.daemon("d");
    sb.policy(&format!(
        "channel am {{\n  alertmanager \"{}\"\n}}\nservice d {{\n  name \"Daemon\"\n  process \"@DIR@/d\"\n  restart \"sh -c 'test ! -e @DIR@/broken && setsid -f @DIR@/d 1000'\"\n  grace 5s\n  settle 1s\n}}\n",
        am.url
    ));
    // Down, and its restart fails: a firing alert.
    sb.write("broken", "");
    let down = sb.at(T0, &[]);
    assert_eq!(down.code, 1, "{down:?}");
    let alerts = am.query().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["alertname"], "TendServiceDown");
    assert_eq!(labels["service"], "d");
    assert_eq!(labels["severity"], "critical");
    assert!(labels["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(alerts[0]["annotations"]["name"], "Daemon");
    assert!(
        alerts[0]["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Daemon failed to start!"),
        "{alerts:?}"
    );
    // Still down, a pass later: still the one alert, refreshed.
    let still = sb.at(T0 + 300, &[]);
    assert_eq!(still.code, 1, "{still:?}");
    assert_eq!(am.query().unwrap().len(), 1);
    // Fixed: the next pass brings it back, and the alert is resolved.
    std::fs::remove_file(sb.path("broken")).unwrap();
    let back = sb.at(T0 + 600, &[]);
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(am.query().unwrap(), Vec::<serde_json::Value>::new());
    // A daemon killed and restarted within one pass was never an alert
    // (its memory reset: a third restart in 15 min would be flapping).
    assert_eq!(sb.at(T0 + 850, &["reset", "d"]).code, 0);
    kill_d(&mut sb);
    let quick = sb.at(T0 + 900, &[]);
    assert_eq!(quick.code, 0, "{quick:?}");
    assert_eq!(am.query().unwrap(), Vec::<serde_json::Value>::new());
    kill_d(&mut sb);
}

/// A service that names its `log`: the report that it died, and that its
/// restart failed, carries the log's last lines: in the mail, in the JSON
/// event a webhook gets, in a Slack text.
#[test]
fn a_daemon_that_died_is_reported_with_its_own_last_words() {
    let sb = Sandbox::new();
    let rx = Receiver::start();
    sb.daemon("d");
    sb.write(
        "d.log",
        "starting\nlistening on 127.0.0.1:8080\npanic: cannot allocate \u{1b}[31m4 GB\u{1b}[0m\n",
    );
    sb.write("broken", "");
    sb.policy(&format!(
        "channel hook {{\n  webhook \"{}\"\n}}\nchannel chat {{\n  slack \"{}\"\n}}\nservice d {{\n  process \"@DIR@/d\"\n  log \"@DIR@/d.log\"\n  restart \"sh -c 'test ! -e @DIR@/broken && setsid -f @DIR@/d 1000'\"\n  grace 5s\n}}\n",
        rx.url("/hook"),
        rx.url("/chat")
    ));
    let run = sb.at(T0, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let log = sb.path("d.log");
    let words = [
        format!("  last lines of {}:", log.display()),
        "  | starting".to_string(),
        "  | listening on 127.0.0.1:8080".to_string(),
        "  | panic: cannot allocate \\x1b[31m4 GB\\x1b[0m".to_string(),
    ];
    let said = lines(&run);
    assert_eq!(said[0], "d is not running, restarting...");
    assert_eq!(said[1..5], words[..], "{run:?}");
    assert!(said[5].starts_with("d failed to start! sh -c"), "{run:?}");
    assert_eq!(said[6..10], words[..], "{run:?}");
    let events = rx.bodies("/hook");
    assert_eq!(rx.events("/hook"), ["restarting", "failed"]);
    for e in &events {
        assert_eq!(e["last_words"]["from"], log.to_str().unwrap());
        assert_eq!(
            e["last_words"]["lines"],
            serde_json::json!([
                "starting",
                "listening on 127.0.0.1:8080",
                "panic: cannot allocate \\x1b[31m4 GB\\x1b[0m"
            ])
        );
    }
    let chat = rx.bodies("/chat");
    assert_eq!(
        chat[0]["text"].as_str().unwrap(),
        format!("d is not running, restarting...\n{}", words.join("\n"))
    );
}
