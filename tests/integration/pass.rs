//! One pass of tend against real processes: silence when all is well,
//! restarts with reports when not, and failures said plainly.

use std::time::{Duration, Instant};

use crate::sandbox::{dry, Sandbox};

/// A service whose restart command starts `<dir>/<daemon> 1000` detached.
fn service(id: &str, daemon: &str) -> String {
    format!(
        "service {id} {{\n  name \"{id}-name\"\n  process \"@DIR@/{daemon}\"\n  restart \"setsid -f @DIR@/{daemon} 1000\"\n  grace 5s\n}}\n"
    )
}

#[test]
fn all_running_prints_nothing_and_exits_0() {
    let mut sb = Sandbox::new();
    sb.start("alpha");
    sb.start("beta");
    sb.policy(&format!(
        "{}{}",
        service("a", "alpha"),
        service("b", "beta")
    ));
    let run = sb.tend(&[]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
}

#[test]
fn killed_service_is_restarted_reported_and_then_quiet() {
    let mut sb = Sandbox::new();
    sb.start("alpha");
    let beta = sb.start("beta");
    sb.policy(&format!(
        "{}{}",
        service("a", "alpha"),
        service("b", "beta")
    ));
    sb.daemon("beta");
    sb.kill(beta);
    assert!(sb.pids_of("beta").is_empty());

    let run = sb.tend(&[]);
    let pids = sb.pids_of("beta");
    assert_eq!(pids.len(), 1, "beta is back: {run:?}");
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("tend: syslog"))
        .collect();
    assert_eq!(
        lines,
        [
            "b-name is not running, restarting...",
            &format!("b-name restarted (pid {})", pids[0])
        ]
    );
    assert_eq!(run.code, 0, "{run:?}");

    let again = sb.tend(&[]);
    assert_eq!((again.code, again.stdout.as_str()), (0, ""));
    assert_eq!(sb.pids_of("beta"), pids, "no second restart");
}

#[test]
fn restart_events_go_to_syslog_as_daemon_facility() {
    let sb = Sandbox::new();
    sb.daemon("alpha");
    sb.policy(&service("a", "alpha"));
    let (socket, socket_path) = sb.syslog();
    let run = sb.tend_env(
        &[],
        &[("TEND_SYSLOG_SOCKET", socket_path.to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("syslog not reached"), "{run:?}");
    let mut buf = [0u8; 2048];
    // First, which policy the pass enforces (to syslog only).
    let n = socket.recv(&mut buf).unwrap();
    let said = String::from_utf8_lossy(&buf[..n]);
    assert!(
        said.contains("tend: enforcing policy policy.tend (sha256 "),
        "{said}"
    );
    assert!(!run.stdout.contains("enforcing"), "{run:?}");
    let n = socket.recv(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]);
    // daemon.notice = 3 * 8 + 5
    assert!(first.starts_with("<29>"), "{first}");
    assert!(first.contains("tend["), "{first}");
    assert!(
        first.ends_with("a-name is not running, restarting..."),
        "{first}"
    );
    let n = socket.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("a-name restarted (pid "));
}

#[test]
/// A host without syslog (a container, a minimal image): one line that
/// names what is missing, said once, not in every mail; again when the
/// reason changes.
fn missing_syslog_is_one_line_said_once_not_an_error() {
    let mut sb = Sandbox::new();
    sb.daemon("alpha");
    sb.policy(&service("a", "alpha"));
    let notes = |run: &crate::sandbox::Run| -> Vec<String> {
        run.stdout
            .lines()
            .filter(|l| l.starts_with("tend: syslog not reached"))
            .map(str::to_string)
            .collect()
    };
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        notes(&run),
        [format!(
            "tend: syslog not reached (there is no {}: no syslog daemon on this host); events are on this output only",
            sb.path("no-syslog").display()
        )]
    );
    // The next pass with something to say: not again.
    for pid in sb.pids_of("alpha") {
        sb.kill(pid);
    }
    let again = sb.tend(&[]);
    assert!(
        again
            .stdout
            .contains("a-name is not running, restarting..."),
        "{again:?}"
    );
    assert_eq!(notes(&again), Vec::<String>::new(), "{again:?}");
    // Another reason (a file that is no socket): said, once.
    sb.write("no-syslog", "");
    for pid in sb.pids_of("alpha") {
        sb.kill(pid);
    }
    let other = sb.tend(&[]);
    assert_eq!(
        notes(&other),
        [format!(
            "tend: syslog not reached ({} is not a socket); events are on this output only",
            sb.path("no-syslog").display()
        )]
    );
    for pid in sb.pids_of("alpha") {
        sb.kill(pid);
    }
}

#[test]
fn failing_restart_command_reports_exit_status_and_last_line() {
    let sb = Sandbox::new();
    sb.policy(
        "service db {\n  name \"Database\"\n  process \"@DIR@/db\"\n  restart \"sh -c 'echo starting; echo cannot bind port 5432 >&2; exit 3'\"\n}\n",
    );
    let run = sb.tend(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("Database is not running, restarting...\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "Database failed to start! sh -c 'echo starting; echo cannot bind port 5432 >&2; exit 3' exited 3: cannot bind port 5432\n"
        ),
        "{run:?}"
    );
}

#[test]
fn restart_command_that_hangs_is_killed_at_its_timeout() {
    let sb = Sandbox::new();
    sb.policy(
        "service db {\n  process \"@DIR@/db\"\n  restart \"@DIR@/hang 1000\"\n  timeout 1s\n}\n",
    );
    sb.daemon("hang");
    let run = sb.tend(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "db failed to start! {}/hang 1000 timed out after 1 s\n",
            sb.dir().display()
        )),
        "{run:?}"
    );
    // The hung command was killed, not left behind.
    assert!(sb.pids_of("hang").is_empty());
}

#[test]
fn command_that_succeeds_but_starts_nothing_fails_after_grace() {
    let sb = Sandbox::new();
    sb.policy("service db {\n  process \"@DIR@/db\"\n  restart \"true\"\n  grace 1s\n}\n");
    let run = sb.tend(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(
            "db failed to start! true exited 0 but the process did not appear within 1 s\n"
        ),
        "{run:?}"
    );
}

#[test]
fn missing_restart_program_is_reported() {
    let sb = Sandbox::new();
    sb.policy("service db {\n  process \"@DIR@/db\"\n  restart \"@DIR@/no-such-script\"\n}\n");
    let run = sb.tend(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("db failed to start! "), "{run:?}");
    assert!(run.stdout.contains("cannot run: "), "{run:?}");
    assert!(run.stdout.contains("No such file or directory"), "{run:?}");
}

#[test]
fn daemon_keeping_stdout_does_not_hang_the_pass() {
    // The restart command leaves a daemon that holds its stdout and stderr
    // open; tend must return as soon as the command itself exits.
    let sb = Sandbox::new();
    sb.daemon("holder");
    sb.policy("service h {\n  process \"@DIR@/holder\"\n  restart \"@DIR@/holder 1000 &\"\n  shell yes\n  timeout 60s\n}\n");
    let started = Instant::now();
    let run = sb.tend(&[]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("h restarted (pid "), "{run:?}");
    assert!(
        took < Duration::from_secs(30),
        "the pass waited {took:?} on a descriptor the daemon holds"
    );
}

#[test]
fn failing_services_are_restarted_concurrently() {
    // Three services whose command succeeds but never starts them: with a
    // 2 s grace each, one pass waits one grace period, not three.
    let sb = Sandbox::new();
    let mut policy = String::new();
    for id in ["a", "b", "c"] {
        policy.push_str(&format!(
            "service {id} {{\n  process \"@DIR@/{id}\"\n  restart \"true\"\n  grace 2s\n}}\n"
        ));
    }
    sb.policy(&policy);
    let started = Instant::now();
    let run = sb.tend(&[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout.matches("did not appear within 2 s").count(),
        3,
        "{run:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn guards_select_services_by_class() {
    let sb = Sandbox::new();
    sb.policy(
        "class web = www1\n\
         any::\n  service ssh { process \"@DIR@/sshd\"; restart \"true\" }\n\
         web|dns::\n  service ldap { process \"@DIR@/slapd\"; restart \"true\" }\n\
         dns::\n  service bind { process \"@DIR@/named\"; restart \"true\" }\n\
         web::\n  service apache { process \"@DIR@/apache2\"; restart \"true\" }\n",
    );
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--dry-run"];
        all.extend_from_slice(args);
        let run = sb.tend(&all);
        assert_eq!(run.code, 1, "{run:?}");
        dry(&run)
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]), ["ssh"]);
    assert_eq!(ids(&["-D", "web"]), ["ssh", "ldap", "apache"]);
    assert_eq!(ids(&["-D", "dns"]), ["ssh", "ldap", "bind"]);
    assert_eq!(ids(&["-D", "web,dns"]), ["ssh", "ldap", "bind", "apache"]);
}

#[test]
fn dry_run_lists_every_service_and_runs_nothing() {
    let mut sb = Sandbox::new();
    let pid = sb.start("alpha");
    sb.policy(
        "service a { name \"Alpha\"; process \"@DIR@/alpha\"; restart \"touch @DIR@/ran\" }\n\
         service b { name \"Beta\"; process \"@DIR@/beta\"; restart \"touch @DIR@/ran\" }\n",
    );
    let run = sb.tend(&["--dry-run"]);
    assert_eq!(
        dry(&run),
        format!(
            "Alpha (a): running (pid {pid})\nBeta (b): not running; would run: touch {}/ran\n",
            sb.dir().display()
        )
    );
    assert_eq!(run.code, 1);
    assert!(!sb.path("ran").exists(), "a dry run ran a command");
}

#[test]
fn decoy_with_the_path_inside_a_longer_word_is_not_the_service() {
    let mut sb = Sandbox::new();
    // `<dir>/sshd_config 1000` and `<dir>/sshd.old 1000` contain `<dir>/sshd`.
    sb.start("sshd_config");
    sb.start("sshd.old");
    sb.policy("service ssh { process \"@DIR@/sshd\"; restart \"true\" }\n");
    let run = sb.tend(&["--dry-run"]);
    assert!(dry(&run).starts_with("ssh (ssh): not running"), "{run:?}");
    // And the real thing is found.
    let pid = sb.start("sshd");
    let run = sb.tend(&["--dry-run"]);
    assert_eq!(dry(&run), format!("ssh (ssh): running (pid {pid})\n"));
}

#[test]
fn the_agent_itself_never_counts_as_the_service() {
    // Only this tend's own command line contains the marker.
    let sb = Sandbox::new();
    let marker = format!("marker_{}", std::process::id());
    sb.policy(&format!(
        "service self {{ process \"{marker}\"; restart \"true\" }}\n"
    ));
    let run = sb.tend(&["--dry-run", "-D", &marker]);
    assert_eq!(dry(&run), "self (self): not running; would run: true\n");
}
