//! Beyond "is it in the process table", through the binary with real
//! processes: pidfiles (alive, stale, garbage, reused), `exe` against a
//! rewritten command line, `user`, `count`, and `stop` then `start`.

use std::process::Command;

use crate::sandbox::{free_port, lines, wait_for, Sandbox, Started};

/// Starts `program` with argv[0] set to `argv0` (bash's `exec -a`), as
/// daemons that rewrite their command line look.
fn start_as(argv0: &str, program: &str) -> Started {
    Started::spawn(
        Command::new("bash").args(["-c", &format!("exec -a '{argv0}' '{program}' 1000")]),
        argv0,
    )
}

#[test]
fn pidfile_alive_stale_garbage_and_reused() {
    let mut sb = Sandbox::new();
    sb.daemon("db");
    sb.daemon("other");
    let pidfile = sb.path("db.pid").display().to_string();
    // start writes the pidfile: the shell's pid, which then becomes db.
    sb.policy(
        "service db {\n  name \"Database\"\n  pidfile \"@DIR@/db.pid\"\n  process \"@DIR@/db\"\n  start \"setsid -f sh -c 'echo $$ > @DIR@/db.pid; exec @DIR@/db 1000'\"\n  grace 5s\n}\n",
    );
    // Alive: the pid in the file runs and is db.
    let db = sb.start("db");
    std::fs::write(sb.path("db.pid"), format!("{db}\n")).unwrap();
    let quiet = sb.tend(&[]);
    assert_eq!(
        (quiet.code, lines(&quiet)),
        (0, Vec::<String>::new()),
        "{quiet:?}"
    );

    // Garbage: down, with the reason, in a dry run and after a pass.
    std::fs::write(sb.path("db.pid"), "garbage").unwrap();
    let dry = sb.tend(&["--dry-run"]);
    assert_eq!(dry.code, 1);
    assert!(
        dry.stdout.contains(&format!(
            "Database (db): not running (pidfile {pidfile}: holds no pid (7 bytes)); would run: setsid -f sh"
        )),
        "{dry:?}"
    );

    // Reused: the pid now belongs to another program.
    let other = sb.start("other");
    std::fs::write(sb.path("db.pid"), other.to_string()).unwrap();
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout.contains(&format!(
            "not running (pidfile {pidfile}: pid {other} is another program ({}/other 1000))",
            sb.dir().display()
        )),
        "{dry:?}"
    );

    // Stale: the pid is gone. The pass starts db, which writes the file.
    sb.kill(db);
    std::fs::write(sb.path("db.pid"), db.to_string()).unwrap();
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    let new: u32 = std::fs::read_to_string(sb.path("db.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        lines(&run),
        vec![
            format!(
                "Database is not running (pidfile {pidfile}: pid {db} is not running), restarting..."
            ),
            format!("Database restarted (pid {new})"),
        ]
    );
    assert!(sb.pids_of("db").contains(&new));
    let status = sb.tend(&["status"]);
    assert!(status.stdout.contains("running"), "{status:?}");
}

#[test]
fn exe_matches_a_rewritten_command_line_and_not_a_mention() {
    let sb = Sandbox::new();
    let sshd = sb.daemon("sshd");
    let other = sb.daemon("other");
    sb.policy("service ssh {\n  exe \"@DIR@/sshd\"\n  restart \"false\"\n}\n");
    // A process whose command line names the path but runs something else.
    let _decoy = start_as(&sshd, &other);
    let dry = sb.tend(&["--dry-run"]);
    assert!(dry.stdout.contains("ssh (ssh): not running"), "{dry:?}");
    // sshd with its command line rewritten, as `sshd: ... [listener]`.
    let listener = start_as(
        "sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups",
        &sshd,
    );
    let pid = listener.pid();
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout
            .contains(&format!("ssh (ssh): running (pid {pid})")),
        "{dry:?}"
    );
}

#[test]
fn user_counts_only_processes_of_that_owner() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: starting a process as another user needs root");
        return;
    }
    let mut sb = Sandbox::new();
    // nobody must be able to run the daemon copy.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sb.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let program = sb.daemon("worker");
    sb.policy("service w {\n  process \"@DIR@/worker\"\n  user nobody\n  restart \"false\"\n}\n");
    let root_owned = sb.start("worker");
    let dry = sb.tend(&["--dry-run"]);
    assert!(dry.stdout.contains("w (w): not running"), "{dry:?}");
    let nobody = Started::spawn(
        Command::new("setpriv").args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            &program,
            "1000",
        ]),
        &program,
    );
    let pid = nobody.pid();
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout.contains(&format!("w (w): running (pid {pid})")),
        "{dry:?}"
    );
    sb.kill(root_owned);
}

#[test]
fn count_below_restarts_and_above_is_said_once() {
    let mut sb = Sandbox::new();
    sb.daemon("httpd");
    sb.policy(
        "service web {\n  name \"Web\"\n  process \"@DIR@/httpd\"\n  count 2..3\n  restart \"setsid -f @DIR@/httpd 1000\"\n  grace 5s\n}\n",
    );
    sb.start("httpd");
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        lines(&run)[0],
        "Web fails a check (1 of at least 2 processes), restarting..."
    );
    assert!(lines(&run)[1].starts_with("Web restarted (pid "), "{run:?}");
    // `setsid -f` may still be between its fork and its exec.
    wait_for(|| sb.pids_of("httpd").len() == 2);

    sb.start("httpd");
    sb.start("httpd");
    let above = sb.tend(&[]);
    assert_eq!(
        (above.code, lines(&above)),
        (0, vec!["Web: 4 processes run, more than 3".to_string()])
    );
    let again = sb.tend(&[]);
    assert_eq!(lines(&again), Vec::<String>::new(), "said twice");
    let status = sb.tend(&["status"]);
    assert!(
        status.stdout.contains("    4 processes run, more than 3"),
        "{status:?}"
    );
}

#[test]
fn a_failing_check_without_restart_runs_stop_then_start() {
    let sb = Sandbox::new();
    sb.daemon("app");
    sb.policy(
        "service app {\n  name \"App\"\n  process \"@DIR@/app\"\n  count 2\n  shell yes\n  stop \"echo stop >> @DIR@/log; pkill -f '^@DIR@/app '\"\n  start \"echo start >> @DIR@/log; setsid -f @DIR@/app 1000; setsid -f @DIR@/app 1000\"\n  grace 5s\n}\n",
    );
    let mut sb = sb;
    sb.start("app");
    let run = sb.tend_env(&[], &[("TEND_NOW", "1800000000")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(sb.path("log")).unwrap(),
        "stop\nstart\n"
    );
    wait_for(|| sb.pids_of("app").len() == 2);
    // Absent altogether: only start.
    for pid in sb.pids_of("app") {
        sb.kill(pid);
    }
    let run = sb.tend_env(&[], &[("TEND_NOW", "1800000060")]);
    assert_eq!(
        lines(&run)[0],
        "App is not running, restarting... (2nd time in 1 min)"
    );
    assert_eq!(
        std::fs::read_to_string(sb.path("log")).unwrap(),
        "stop\nstart\nstart\n"
    );
}

/// A daemon that listens (TCP port or UNIX socket) and closes its listening
/// socket on SIGUSR1 while it keeps running: alive to `ps`, dead to users.
const LISTENER: &str = r#"
import signal, socket, sys, time
where = sys.argv[1]
if where.startswith("/"):
    s = socket.socket(socket.AF_UNIX)
    s.bind(where)
else:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(where)))
s.listen(16)
signal.signal(signal.SIGUSR1, lambda *_: s.close())
while True:
    time.sleep(1)
"#;

/// A service `web` whose daemon is `python3 <dir>/web.py WHERE`, restarted
/// by killing it and starting a new one; `check` is its port or unix line.
fn listener_sandbox(where_: &str, check: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("web.py", LISTENER);
    let _ = std::fs::remove_file(sb.path("web.sock"));
    sb.policy(&format!(
        "service web {{\n  name \"Web\"\n  process \"@DIR@/web\\\\.py\"\n  {check}\n  connect_timeout 2s\n  shell yes\n  restart \"pkill -f '^/usr/bin/python3 @DIR@/web'; rm -f @DIR@/web.sock; setsid -f /usr/bin/python3 @DIR@/web.py {where_}\"\n  grace 5s\n}}\n"
    ));
    sb
}

fn start_listener(sb: &Sandbox, where_: &str) -> Started {
    let script = sb.path("web.py").display().to_string();
    let ready = |sb: &Sandbox| -> bool {
        match where_.parse::<u16>() {
            Ok(port) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Err(_) => std::os::unix::net::UnixStream::connect(sb.path("web.sock")).is_ok(),
        }
    };
    let started = Started::spawn(
        Command::new("/usr/bin/python3").args([&script, where_]),
        "/usr/bin/python3",
    );
    wait_for(|| ready(sb));
    started
}

fn close_listener(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
}

#[test]
fn a_process_that_stops_listening_on_its_port_is_restarted() {
    let port = free_port().to_string();
    let sb = listener_sandbox(&port, &format!("port {port}"));
    let web = start_listener(&sb, &port);
    let quiet = sb.tend(&[]);
    assert_eq!(
        (quiet.code, lines(&quiet)),
        (0, Vec::<String>::new()),
        "{quiet:?}"
    );

    close_listener(web.pid());
    wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err());
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout.contains(&format!(
            "Web (web): fails a check (port 127.0.0.1:{port}: connection refused); would run: pkill"
        )),
        "{dry:?}"
    );
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        lines(&run)[0],
        format!("Web fails a check (port 127.0.0.1:{port}: connection refused), restarting...")
    );
    assert!(lines(&run)[1].starts_with("Web restarted (pid "), "{run:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok());
    assert!(
        crate::sandbox::cmdline(web.pid()).is_none(),
        "the old process was stopped"
    );
}

#[test]
fn a_process_that_stops_accepting_on_its_unix_socket_is_restarted() {
    // The policy says @DIR@ for the sandbox directory.
    let sb = listener_sandbox("@DIR@/web.sock", "unix \"@DIR@/web.sock\"");
    let sock_path = sb.path("web.sock").display().to_string();
    let web = start_listener(&sb, &sock_path);
    let quiet = sb.tend(&[]);
    assert_eq!(
        (quiet.code, lines(&quiet)),
        (0, Vec::<String>::new()),
        "{quiet:?}"
    );
    close_listener(web.pid());
    wait_for(|| std::os::unix::net::UnixStream::connect(&sock_path).is_err());
    let run = sb.tend(&[]);
    assert_eq!(
        lines(&run)[0],
        format!("Web fails a check (unix {sock_path}: connection refused), restarting...")
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(std::os::unix::net::UnixStream::connect(&sock_path).is_ok());
}

#[test]
fn dependencies_are_restarted_first_and_a_dependency_down_holds_the_dependent() {
    let sb = Sandbox::new();
    sb.daemon("db");
    sb.daemon("web");
    // db takes a second to come up; web's restart fails unless db is up.
    let policy = |db_restart: &str| {
        sb.policy(&format!(
            "service web {{\n  name \"Web\"\n  process \"@DIR@/web\"\n  depends on db\n  shell yes\n  restart \"pgrep -f '^@DIR@/db ' >/dev/null || {{ echo db was not up; exit 1; }}; setsid -f @DIR@/web 1000\"\n  grace 5s\n}}\nservice db {{\n  name \"Database\"\n  process \"@DIR@/db\"\n  shell yes\n  restart \"{db_restart}\"\n  grace 5s\n}}\n"
        ));
    };
    policy("false");
    // The dependency cannot start: the dependent is not restarted, and only
    // the dependency's failure is said.
    let held = sb.tend(&[]);
    assert_eq!(held.code, 1);
    assert_eq!(
        lines(&held),
        vec![
            "Database is not running, restarting...".to_string(),
            "Database failed to start! false exited 1".to_string(),
        ]
    );
    assert!(sb.pids_of("web").is_empty());
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout
            .contains("Web (web): not running; would run once Database is up: pgrep"),
        "{dry:?}"
    );
    let status = sb.tend(&["status"]);
    assert!(
        status
            .stdout
            .contains("restart deferred: waits for Database, which is down"),
        "{status:?}"
    );

    // The dependency can start, slowly: it is restarted and seen up first.
    policy("sleep 1; setsid -f @DIR@/db 1000");
    let run = sb.tend(&["reset", "--all"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = lines(&run);
    assert_eq!(lines[0], "Database is not running, restarting...");
    assert!(lines[1].starts_with("Database restarted (pid "), "{run:?}");
    assert_eq!(lines[2], "Web is not running, restarting...");
    assert!(lines[3].starts_with("Web restarted (pid "), "{run:?}");
    assert_eq!(sb.pids_of("web").len(), 1);
}

/// `python3 <dir>/hog.py MB`: holds MB megabytes (touched, so resident)
/// and, with `spin`, keeps a CPU busy.
const HOG: &str = r#"
import sys, time
hold = b"x" * (int(sys.argv[1]) << 20)
spin = len(sys.argv) > 2
while True:
    if spin:
        end = time.time() + 1
        while time.time() < end:
            pass
    else:
        time.sleep(1)
"#;

fn hog_sandbox(check: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("hog.py", HOG);
    sb.policy(&format!(
        "service hog {{\n  name \"Hog\"\n  process \"@DIR@/hog\\\\.py\"\n  {check}\n  shell yes\n  restart \"pkill -f '^/usr/bin/python3 @DIR@/hog'; setsid -f /usr/bin/python3 @DIR@/hog.py 1\"\n  grace 5s\n}}\n"
    ));
    sb
}

#[test]
fn a_process_above_its_memory_limit_is_restarted_or_reported() {
    let sb = hog_sandbox("memory above 100MB");
    let script = sb.path("hog.py").display().to_string();
    let hog = Started::spawn(
        Command::new("/usr/bin/python3").args([&script, "200"]),
        "/usr/bin/python3",
    );
    // Wait until the 200 MB are resident.
    wait_for(|| {
        std::fs::read_to_string(format!("/proc/{}/statm", hog.pid()))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .is_some_and(|pages| pages * 4096 > 200 << 20)
    });
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    let first = &lines(&run)[0];
    assert!(
        first.starts_with("Hog fails a check (memory 2")
            && first.ends_with(" MB above 100 MB), restarting..."),
        "{run:?}"
    );
    assert!(lines(&run)[1].starts_with("Hog restarted (pid "), "{run:?}");
    assert!(
        crate::sandbox::cmdline(hog.pid()).is_none(),
        "the hog was stopped"
    );
    assert_eq!(lines(&sb.tend(&[])), Vec::<String>::new());

    // With `tolerate 2 passes`: the first pass above counts, the second
    // restarts.
    let sb = hog_sandbox("memory above 100KB\n  tolerate 2 passes");
    let script = sb.path("hog.py").display().to_string();
    let hog = Started::spawn(
        Command::new("/usr/bin/python3").args([&script, "1"]),
        "/usr/bin/python3",
    );
    let first = sb.tend(&[]);
    assert_eq!((first.code, lines(&first)), (0, vec![]), "{first:?}");
    let second = sb.tend(&[]);
    assert!(
        lines(&second)[0].starts_with("Hog fails a check (memory ")
            && lines(&second)[0].ends_with(" above 100 KB; 2 passes in a row), restarting..."),
        "{second:?}"
    );
    assert!(crate::sandbox::cmdline(hog.pid()).is_none());

    // `then report`: said once, nothing done.
    let sb = hog_sandbox("memory above 100KB then report");
    let _small = Started::spawn(
        Command::new("/usr/bin/python3").args([&sb.path("hog.py").display().to_string(), "1"]),
        "/usr/bin/python3",
    );
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0);
    assert!(lines(&run)[0].starts_with("Hog: memory "), "{run:?}");
    assert!(lines(&run)[0].ends_with(" above 100 KB"), "{run:?}");
    assert_eq!(lines(&run).len(), 1, "{run:?}");
}

#[test]
fn a_busy_process_above_its_cpu_limit_for_n_runs_is_restarted() {
    let sb = hog_sandbox("cpu above 30% for 2 runs");
    let script = sb.path("hog.py").display().to_string();
    let spin = Started::spawn(
        Command::new("/usr/bin/python3").args([&script, "1", "spin"]),
        "/usr/bin/python3",
    );
    let pause = || std::thread::sleep(std::time::Duration::from_millis(1500));
    // First pass: a sample. Second: above once. Third: above twice -> act.
    for n in 1..=2 {
        let run = sb.tend(&[]);
        assert_eq!(
            (run.code, lines(&run)),
            (0, Vec::<String>::new()),
            "pass {n}"
        );
        pause();
    }
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout.contains("Hog (hog): fails a check (cpu "),
        "{dry:?}"
    );
    let run = sb.tend(&[]);
    let first = &lines(&run)[0];
    assert!(
        first.starts_with("Hog fails a check (cpu ")
            && first.ends_with("% above 30% for 2 runs), restarting..."),
        "{run:?}"
    );
    assert!(
        crate::sandbox::cmdline(spin.pid()).is_none(),
        "the busy process was stopped"
    );
    // The new, idle process stays under the limit.
    pause();
    assert_eq!(lines(&sb.tend(&[])), Vec::<String>::new());
}

/// A policy whose every service is named by a pidfile reads only the pids
/// the pidfiles name, not the whole process table: what it finds is what a
/// full scan (`TEND_FULL_SCAN=1`) finds, for a pidfile alive, stale,
/// holding garbage, naming another program, and a restart.
#[test]
fn a_pidfile_only_policy_finds_what_a_full_scan_finds() {
    let mut sb = Sandbox::new();
    for name in ["a", "b", "c", "other"] {
        sb.daemon(name);
    }
    sb.policy(
        "service a {\n  pidfile \"@DIR@/a.pid\"\n  process \"@DIR@/a\"\n  restart \"true\"\n  grace 1s\n}\n\
         service b {\n  pidfile \"@DIR@/b.pid\"\n  restart \"setsid -f sh -c 'echo $$ > @DIR@/b.pid; exec @DIR@/b 1000'\"\n  shell yes\n  grace 5s\n}\n\
         service c {\n  pidfile \"@DIR@/c.pid\"\n  process \"@DIR@/c\"\n  restart \"true\"\n  grace 1s\n}\n\
         service d {\n  pidfile \"@DIR@/d.pid\"\n  restart \"true\"\n  grace 1s\n}\n",
    );
    let a = sb.start("a");
    sb.write("a.pid", &format!("{a}\n"));
    let gone = sb.start("b");
    sb.kill(gone);
    sb.write("b.pid", &gone.to_string());
    let other = sb.start("other");
    sb.write("c.pid", &other.to_string());
    sb.write("d.pid", "garbage");
    let full = sb.tend_env(&["--dry-run"], &[("TEND_FULL_SCAN", "1")]);
    let pinned = sb.tend(&["--dry-run"]);
    assert_eq!(pinned.stdout, full.stdout);
    assert_eq!(pinned.code, 1);
    for want in [
        format!("a (a): running (pid {a})"),
        format!(
            "b (b): not running (pidfile {}/b.pid: pid {gone} is not running)",
            sb.dir().display()
        ),
        format!(
            "c (c): not running (pidfile {}/c.pid: pid {other} is another program",
            sb.dir().display()
        ),
        format!(
            "d (d): not running (pidfile {}/d.pid: holds no pid",
            sb.dir().display()
        ),
    ] {
        assert!(pinned.stdout.contains(&want), "{want} in {pinned:?}");
    }
    // A pass restarts b and finds it, as a full scan would.
    let run = sb.tend(&[]);
    let new: u32 = std::fs::read_to_string(sb.path("b.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        lines(&run).contains(&format!("b restarted (pid {new})")),
        "{run:?}"
    );
    let after = sb.tend_env(&["--dry-run"], &[("TEND_FULL_SCAN", "1")]);
    assert_eq!(sb.tend(&["--dry-run"]).stdout, after.stdout);
}

/// `count 2` is exactly two: one running is "1 of 2", not "at least".
#[test]
fn an_exact_count_says_exactly() {
    let mut sb = Sandbox::new();
    sb.daemon("httpd");
    sb.policy(
        "service web {\n  name \"Web\"\n  process \"@DIR@/httpd\"\n  count 2\n  restart \"true\"\n}\n",
    );
    sb.start("httpd");
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout
            .contains("Web (web): fails a check (1 of 2 processes); would run: true"),
        "{dry:?}"
    );
}
