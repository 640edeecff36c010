//! `--metrics FILE`: the Prometheus textfile a pass writes, read as an
//! admin's monitoring reads it: the file itself, and Debian's real
//! node_exporter serving it over HTTP.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::sandbox::{free_port, lines, wait_for, Sandbox, Started};

/// The samples of a textfile: `name{labels}` -> value, every line checked
/// to be a comment or a sample.
fn samples(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        assert!(
            out.insert(series.to_string(), value.to_string()).is_none(),
            "twice: {line}"
        );
    }
    out
}

fn read(path: &Path) -> BTreeMap<String, String> {
    samples(&std::fs::read_to_string(path).unwrap())
}

fn get<'a>(m: &'a BTreeMap<String, String>, series: &str) -> &'a str {
    m.get(series)
        .unwrap_or_else(|| panic!("no {series} in {m:#?}"))
}

/// One daemon `alpha`, restarted with `setsid -f`, and a textfile
/// directory `textfile/`.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.daemon("alpha");
    sb.policy(
        "service alpha {\n  name \"Alpha \\\"one\\\"\"\n  process \"@DIR@/alpha\"\n  restart \"setsid -f @DIR@/alpha 1000\"\n  grace 5s\n}\n",
    );
    std::fs::create_dir(sb.path("textfile")).unwrap();
    sb
}

const PROM: &str = "textfile/tend.prom";

#[test]
fn metrics_follow_restarts_and_the_counter_survives_passes() {
    let mut sb = sandbox();
    let pid = sb.start("alpha");
    let first = sb.tend(&["--metrics", PROM]);
    assert_eq!((first.code, lines(&first)), (0, vec![]), "{first:?}");
    let path = sb.path(PROM);
    let m = read(&path);
    assert_eq!(get(&m, r#"tend_service_up{service="alpha"}"#), "1");
    assert_eq!(
        get(&m, r#"tend_service_restarts_total{service="alpha"}"#),
        "0"
    );
    assert_eq!(
        get(
            &m,
            r#"tend_service_status{service="alpha",status="running"}"#
        ),
        "1"
    );
    assert_eq!(
        get(
            &m,
            r#"tend_service_info{service="alpha",name="Alpha \"one\""}"#
        ),
        "1"
    );
    assert_eq!(get(&m, "tend_policy_broken"), "0");
    assert_eq!(get(&m, "tend_paused"), "0");
    assert_eq!(get(&m, "tend_package_manager_busy"), "0");
    let info: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("tend_policy_info{"))
        .collect();
    assert_eq!(info.len(), 1, "{m:#?}");
    assert!(
        info[0].ends_with(r#"origin="policy.tend",enforced="live"}"#),
        "{info:?}"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o644,
        "node_exporter runs as another user and must read it"
    );
    let started = get(&m, "tend_last_pass_timestamp_seconds")
        .parse::<i64>()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - started).abs() < 60, "{started} vs {now}");

    sb.kill(pid);
    let restart = sb.tend(&["--metrics", PROM]);
    assert_eq!(restart.code, 0, "{restart:?}");
    let m = read(&path);
    assert_eq!(get(&m, r#"tend_service_up{service="alpha"}"#), "1");
    assert_eq!(
        get(&m, r#"tend_service_restarts_total{service="alpha"}"#),
        "1"
    );
    // Passes without a restart keep the count; the next restart adds one.
    sb.tend(&["--metrics", PROM]);
    assert_eq!(
        get(
            &read(&path),
            r#"tend_service_restarts_total{service="alpha"}"#
        ),
        "1"
    );
    for pid in sb.pids_of("alpha") {
        sb.kill(pid);
    }
    sb.tend(&["--metrics", PROM]);
    let m = read(&path);
    assert_eq!(
        get(&m, r#"tend_service_restarts_total{service="alpha"}"#),
        "2"
    );
    // A dry run writes nothing.
    std::fs::remove_file(&path).unwrap();
    sb.tend(&["--dry-run", "--metrics", PROM]);
    assert!(!path.exists(), "a dry run wrote the metrics");
}

#[test]
fn metrics_say_down_paused_backing_off_and_a_broken_push() {
    let mut sb = sandbox();
    let path = sb.path(PROM);
    let pid = sb.start("alpha");
    sb.tend(&["--metrics", PROM]);
    // Paused: down, not restarted, and the metrics say why.
    let pause = sb.tend(&["pause", "--for", "10m"]);
    assert_eq!(pause.code, 0, "{pause:?}");
    sb.kill(pid);
    sb.tend(&["--metrics", PROM]);
    let m = read(&path);
    assert_eq!(get(&m, r#"tend_service_up{service="alpha"}"#), "0");
    assert_eq!(
        get(
            &m,
            r#"tend_service_status{service="alpha",status="paused"}"#
        ),
        "1"
    );
    assert_eq!(
        get(
            &m,
            r#"tend_service_status{service="alpha",status="running"}"#
        ),
        "0"
    );
    assert_eq!(get(&m, "tend_paused"), "1");
    sb.tend(&["resume"]);

    // A push that breaks the policy: the last good copy is enforced.
    sb.tend(&["--metrics", PROM]);
    assert_eq!(
        get(&read(&path), r#"tend_service_up{service="alpha"}"#),
        "1"
    );
    sb.policy("service alpha {\n  process \"@DIR@/alpha\"\n  restart\n");
    let broken = sb.tend(&["--metrics", PROM]);
    assert_eq!(broken.code, 0, "{broken:?}");
    let m = read(&path);
    assert_eq!(get(&m, "tend_policy_broken"), "1");
    assert!(
        m.keys()
            .any(|k| k.starts_with("tend_policy_info{") && k.ends_with(r#"enforced="last_good"}"#)),
        "{m:#?}"
    );
    assert_eq!(get(&m, r#"tend_service_up{service="alpha"}"#), "1");

    // Backing off: a restart that never brings it back, budget of one.
    let sb2 = Sandbox::new();
    sb2.policy(&format!(
        "service beta {{\n  process \"{}/beta\"\n  restart \"true\"\n  grace 1s\n  limit 1 restarts within 1h\n}}\n",
        sb2.dir().display()
    ));
    std::fs::create_dir(sb2.path("textfile")).unwrap();
    let path2 = sb2.path(PROM);
    sb2.tend(&["--metrics", PROM]);
    let m = read(&path2);
    assert_eq!(
        get(
            &m,
            r#"tend_service_status{service="beta",status="failing"}"#
        ),
        "1"
    );
    assert_eq!(
        get(&m, r#"tend_service_restarts_total{service="beta"}"#),
        "1"
    );
    sb2.tend(&["--metrics", PROM]);
    let m = read(&path2);
    assert_eq!(
        get(
            &m,
            r#"tend_service_status{service="beta",status="backing_off"}"#
        ),
        "1"
    );
    // Its next try: the first wait (10 min) after this pass.
    let next = get(
        &m,
        r#"tend_service_next_try_timestamp_seconds{service="beta"}"#,
    );
    let at = get(&m, "tend_last_pass_timestamp_seconds");
    assert_eq!(
        next.parse::<i64>().unwrap() - at.parse::<i64>().unwrap(),
        600
    );
    assert_eq!(
        get(&m, r#"tend_service_restarts_total{service="beta"}"#),
        "1"
    );
    let since = get(&m, r#"tend_service_since_seconds{service="beta"}"#);
    assert!(since.parse::<i64>().unwrap() > 1_700_000_000, "{since}");
}

#[test]
fn metrics_of_a_policy_broken_from_the_start() {
    let sb = Sandbox::new();
    sb.policy("service a {\n");
    std::fs::create_dir(sb.path("textfile")).unwrap();
    let run = sb.tend(&["--metrics", PROM]);
    assert_eq!(run.code, 2, "{run:?}");
    let m = read(&sb.path(PROM));
    assert_eq!(get(&m, "tend_policy_broken"), "1");
    assert!(
        !m.keys()
            .any(|k| k.starts_with("tend_policy_info") || k.starts_with("tend_service_")),
        "{m:#?}"
    );
    get(&m, "tend_last_pass_timestamp_seconds");
}

/// The metrics file sits where another user (node_exporter's) may write:
/// what is planted there never steers root's write, and a failure is one
/// line, said once, with the pass unharmed.
#[test]
fn metrics_where_others_can_write() {
    let mut sb = sandbox();
    sb.start("alpha");
    // A symlink planted at the file's name is replaced, its target intact.
    let victim = sb.write("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, sb.path(PROM)).unwrap();
    let run = sb.tend(&["--metrics", PROM]);
    assert_eq!((run.code, lines(&run)), (0, vec![]), "{run:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(sb.path(PROM)).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");

    // A FIFO there: never opened (no hang), never replaced: said once, the
    // pass goes on. The same for a device (as `--metrics /dev/null` would
    // be: replacing it would break the host).
    std::fs::remove_file(sb.path(PROM)).unwrap();
    nix::unistd::mkfifo(
        &sb.path(PROM),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let run = sb.tend(&["--metrics", PROM]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        lines(&run),
        vec![format!("tend: cannot write metrics to {PROM}: it is a FIFO, not a regular file; not replacing it")],
        "{run:?}"
    );
    assert!(std::fs::symlink_metadata(sb.path(PROM))
        .unwrap()
        .file_type()
        .is_fifo());
    let null = sb.path("null");
    if nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .is_ok()
    {
        let run = sb.tend(&["--metrics", "null"]);
        assert_eq!(
            lines(&run),
            vec!["tend: cannot write metrics to null: it is a character device, not a regular file; not replacing it".to_string()],
            "{run:?}"
        );
        let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
        assert!(kind.is_char_device(), "{kind:?}");
    }

    // The directory swapped for a symlink (to where root's files are):
    // refused, said once, the pass goes on; said no more while it lasts.
    std::fs::create_dir(sb.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink(sb.path("elsewhere"), sb.path("linked")).unwrap();
    let run = sb.tend(&["--metrics", "linked/tend.prom"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        lines(&run),
        vec!["tend: cannot write metrics to linked/tend.prom: its directory is a symbolic link or not a directory".to_string()],
        "{run:?}"
    );
    assert_eq!(std::fs::read_dir(sb.path("elsewhere")).unwrap().count(), 0);
    let again = sb.tend(&["--metrics", "linked/tend.prom"]);
    assert_eq!((again.code, lines(&again)), (0, vec![]), "{again:?}");
    // Fixed: written again, silently; a new failure is said again.
    std::fs::remove_file(sb.path(PROM)).unwrap();
    assert_eq!(lines(&sb.tend(&["--metrics", PROM])), Vec::<String>::new());
    assert!(sb.path(PROM).is_file());
    let run = sb.tend(&["--metrics", "missing/tend.prom"]);
    assert_eq!(lines(&run).len(), 1, "{run:?}");
    assert!(
        lines(&run)[0].starts_with("tend: cannot write metrics to missing/tend.prom: "),
        "{run:?}"
    );
}

/// Whether `program` is there; if not, the test is skipped, said (but not
/// in CI, which installs `package`).
fn installed(program: &Path, package: &str) -> bool {
    if program.exists() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI installs {package}");
    eprintln!(
        "skipped: {} ({package}) is not installed",
        program.display()
    );
    false
}

/// GET /metrics from node_exporter on 127.0.0.1:`port`.
fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let (head, body) = body.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

/// Debian's prometheus-node-exporter with only its textfile collector, on
/// a loopback port: tend's metrics appear and parse (node_exporter reports
/// a file it cannot parse with node_textfile_scrape_error 1 and drops it).
#[test]
fn node_exporter_serves_the_metrics() {
    let exporter = Path::new("/usr/bin/prometheus-node-exporter");
    if !installed(exporter, "prometheus-node-exporter") {
        return;
    }
    let mut sb = sandbox();
    let pid = sb.start("alpha");
    sb.tend(&["--metrics", PROM]);
    sb.kill(pid);
    let run = sb.tend(&["--metrics", PROM]);
    assert_eq!(run.code, 0, "{run:?}");
    let port = free_port();
    let _exporter = Started::spawn(
        Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                sb.path("textfile").display()
            )),
        exporter.to_str().unwrap(),
    );
    let mut body = None;
    wait_for(|| {
        body = scrape(port);
        body.is_some()
    });
    let body = body.unwrap();
    let tend: String = body
        .lines()
        .filter(|l| l.starts_with("tend_") || l.starts_with("node_textfile_scrape_error"))
        .map(|l| format!("{l}\n"))
        .collect();
    let m = samples(&tend);
    assert_eq!(get(&m, "node_textfile_scrape_error"), "0", "{body}");
    // node_exporter sorts labels by name and writes large numbers in
    // exponent form: what a Prometheus server stores.
    assert_eq!(get(&m, r#"tend_service_up{service="alpha"}"#), "1");
    assert_eq!(
        get(&m, r#"tend_service_restarts_total{service="alpha"}"#),
        "1"
    );
    assert_eq!(
        get(
            &m,
            r#"tend_service_info{name="Alpha \"one\"",service="alpha"}"#
        ),
        "1"
    );
    assert_eq!(
        get(
            &m,
            r#"tend_service_status{service="alpha",status="running"}"#
        ),
        "1"
    );
    assert!(
        m.keys()
            .any(|k| k.starts_with("tend_policy_info{") && k.contains(r#"enforced="live""#)),
        "{tend}"
    );
    assert!(
        body.contains("# TYPE tend_service_restarts_total counter"),
        "{body}"
    );
}

/// The alert rules docs/fleet.md recommends (examples/prometheus) load, and
/// fire when they should and not otherwise: `promtool test rules` with
/// tests/prometheus/tend-alerts.test.yml (a service down 10 minutes but
/// not while paused, given up, flapping, no pass for 15 minutes, no tend
/// metrics at all, a broken policy).
#[test]
fn alert_rules_pass_their_tests() {
    let promtool = Path::new("/usr/bin/promtool");
    if !installed(promtool, "prometheus") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = Command::new(promtool)
        .args(["check", "rules", "examples/prometheus/tend-alerts.yml"])
        .current_dir(root)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("SUCCESS: 7 rules found"), "{said}");
    let test = Command::new(promtool)
        .args(["test", "rules", "tend-alerts.test.yml"])
        .current_dir(root.join("tests/prometheus"))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

/// A state directory tend refuses: nothing is remembered, so no restart
/// counter is published (it would reset every pass), and a gauge says why.
/// A metrics file node_exporter would not read (not `*.prom`) is written,
/// and said once.
#[test]
fn metrics_without_state_and_a_file_node_exporter_ignores() {
    let mut sb = sandbox();
    let pid = sb.start("alpha");
    std::fs::create_dir(sb.path("open")).unwrap();
    std::fs::set_permissions(sb.path("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = sb.tend(&["--metrics", PROM, "--state-dir", "open"]);
    assert_eq!(run.code, 0, "{run:?}");
    let m = read(&sb.path(PROM));
    assert_eq!(get(&m, "tend_state_available"), "0");
    assert!(
        !m.keys()
            .any(|k| k.starts_with("tend_service_restarts_total")),
        "{m:#?}"
    );
    assert_eq!(get(&m, r#"tend_service_up{service="alpha"}"#), "1");

    let txt = "textfile/tend.txt";
    let first = sb.tend(&["--metrics", txt]);
    let path = sb.path(txt);
    assert_eq!(
        lines(&first),
        vec![format!(
            "tend: metrics file {} does not end in .prom; node_exporter's textfile collector will not read it",
            path.strip_prefix(sb.dir()).unwrap().display()
        )],
        "{first:?}"
    );
    assert_eq!(get(&read(&path), "tend_state_available"), "1");
    let second = sb.tend(&["--metrics", txt]);
    assert_eq!(lines(&second), Vec::<String>::new());
    sb.kill(pid);
}
