//! Never fighting the package manager, through the binary: real fcntl locks
//! held by another process, real pid files, pause and resume, daemons whose
//! binary is replaced under them. Package manager files live under a
//! sandbox root given with `--pkg-root`; time is driven with TEND_NOW.

use std::process::{Command, Stdio};

use crate::sandbox::{copy_sleep, lines, wait_for, Run, Sandbox};

const T0: i64 = 1_800_000_000;
const MIN: i64 = 60;

fn at(sb: &Sandbox, t: i64, args: &[&str]) -> Run {
    let root = sb.path("root").to_string_lossy().into_owned();
    let mut all = vec!["--pkg-root", root.as_str()];
    all.extend_from_slice(args);
    sb.tend_env(&all, &[("TEND_NOW", &t.to_string())])
}

fn silent(run: &Run) -> bool {
    lines(run).is_empty()
}

/// One daemon, restarted by `setsid -f` so it outlives the pass.
fn sandbox_with(name: &str, extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.daemon(name);
    std::fs::create_dir_all(sb.path("root")).unwrap();
    sb.policy(&format!(
        "service {name} {{\n  name \"Daemon\"\n  process \"@DIR@/{name}\"\n  restart \"setsid -f @DIR@/{name} 1000\"\n  grace 5s\n{extra}}}\n"
    ));
    sb
}

/// A file under the sandbox's package root, with its directories.
fn pkg_file(sb: &Sandbox, rel: &str, content: &str) -> std::path::PathBuf {
    let path = sb.path("root").join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

/// Another process takes a POSIX (fcntl) write lock on `path`, as dpkg and
/// apt do, and holds it until killed.
fn hold_fcntl_lock(sb: &Sandbox, path: &std::path::Path) -> std::process::Child {
    let ready = sb.path("locked");
    let child = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time\n\
             f = open(sys.argv[1], 'r+')\n\
             fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
             open(sys.argv[2], 'w').close()\n\
             time.sleep(1000)\n",
        ])
        .arg(path)
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs");
    wait_for(|| ready.exists());
    child
}

#[test]
fn a_held_dpkg_lock_defers_the_restart_until_it_is_released() {
    let mut sb = sandbox_with("sshd", "");
    let lock = pkg_file(&sb, "var/lib/dpkg/lock-frontend", "");
    let mut holder = hold_fcntl_lock(&sb, &lock);

    // Down during the upgrade: no restart, nothing said.
    let first = at(&sb, T0, &[]);
    assert_eq!(
        (first.code, lines(&first)),
        (1, Vec::<String>::new()),
        "{first:?}"
    );
    assert!(sb.pids_of("sshd").is_empty(), "restarted during an upgrade");
    let quiet = at(&sb, T0 + 20 * MIN, &[]);
    assert!(silent(&quiet) && quiet.code == 1, "{quiet:?}");

    // The class is there for guards, naming the holder.
    let classes = at(&sb, T0, &["classes", "-v"]);
    let want = format!(
        "pkgmgr_busy              package manager at work: python3 (pid {}) holds {}",
        holder.id(),
        lock.display()
    );
    assert!(
        classes.stdout.lines().any(|l| l == want),
        "{}",
        classes.stdout
    );
    let status = at(&sb, T0, &["status"]);
    assert!(
        status.stdout.contains("package manager at work: python3"),
        "{status:?}"
    );
    assert!(status.stdout.contains("down"), "{status:?}");

    // Past defer_limit (30 min): one line, then quiet again.
    let late = at(&sb, T0 + 35 * MIN, &[]);
    assert_eq!(
        lines(&late),
        vec![format!(
            "Daemon is down; restart deferred for 35 min: python3 (pid {}) holds {}",
            holder.id(),
            lock.display()
        )]
    );
    assert!(silent(&at(&sb, T0 + 40 * MIN, &[])));
    assert!(sb.pids_of("sshd").is_empty());

    // The package manager is done: the next pass restarts what is down.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let after = at(&sb, T0 + 45 * MIN, &[]);
    assert_eq!(after.code, 0, "{after:?}");
    assert_eq!(lines(&after)[0], "Daemon is not running, restarting...");
    let pids = sb.pids_of("sshd");
    assert_eq!(
        lines(&after)[1],
        format!("Daemon restarted (pid {})", pids[0])
    );
    assert!(silent(&at(&sb, T0 + 50 * MIN, &[])));
    for pid in pids {
        sb.kill(pid);
    }
}

#[test]
fn an_unlocked_lock_file_is_not_an_upgrade() {
    let sb = sandbox_with("sshd", "");
    pkg_file(&sb, "var/lib/dpkg/lock-frontend", "");
    pkg_file(&sb, "var/lib/rpm/.rpm.lock", "");
    let run = at(&sb, T0, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(lines(&run)[0], "Daemon is not running, restarting...");
}

#[test]
fn stale_pid_files_are_ignored_and_a_live_yum_pid_defers() {
    let mut sb = sandbox_with("mysqld", "");
    // A dead pid, and a zombie (a child of this test not yet reaped).
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let mut zombie = Command::new("true").spawn().unwrap();
    wait_for(|| {
        std::fs::read_to_string(format!("/proc/{}/stat", zombie.id())).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    });
    for (file, pid) in [("var/run/yum.pid", dead_pid), ("run/zypp.pid", zombie.id())] {
        pkg_file(&sb, file, &format!("{pid}\n"));
    }
    pkg_file(&sb, "var/lib/dnf/rpmdb_lock.pid", "not a pid");
    let run = at(&sb, T0, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(lines(&run)[0], "Daemon is not running, restarting...");
    zombie.wait().unwrap();

    // A live process in yum.pid: the restart waits.
    for pid in sb.pids_of("mysqld") {
        sb.kill(pid);
    }
    let yum = sb.start("yum");
    let pidfile = pkg_file(&sb, "var/run/yum.pid", &yum.to_string());
    let held = at(&sb, T0 + 10 * MIN, &[]);
    assert_eq!(
        (held.code, lines(&held)),
        (1, Vec::<String>::new()),
        "{held:?}"
    );
    assert!(sb.pids_of("mysqld").is_empty());
    let late = at(&sb, T0 + 45 * MIN, &[]);
    assert_eq!(
        lines(&late),
        vec![format!(
            "Daemon is down; restart deferred for 35 min: yum (pid {yum}) holds {}",
            pidfile.display()
        )]
    );
    // yum finished but left its pid file: stale now, so the restart goes on
    // (the second in the budget's window; deferrals do not count).
    sb.kill(yum);
    let after = at(&sb, T0 + 50 * MIN, &[]);
    assert_eq!(after.code, 0, "{after:?}");
    assert_eq!(
        lines(&after)[0],
        "Daemon is not running, restarting... (2nd time in 50 min)"
    );
}

#[test]
fn markers_left_by_a_crash_or_a_reboot_do_not_hold_restarts_forever() {
    let mut sb = sandbox_with("named", "");
    // zypp.pid names pid 1 (the pid was reused after a reboot), pacman's
    // lock is left by a crash: neither is a package manager at work.
    pkg_file(&sb, "run/zypp.pid", "1\n");
    let lock = pkg_file(&sb, "var/lib/pacman/db.lck", "");
    let dry = at(&sb, T0, &["--dry-run"]);
    let root = sb.path("root");
    assert!(
        dry.stdout.contains(&format!(
            "note: {}/run/zypp.pid names pid 1 (",
        root.display()
        )) && dry.stdout.contains("), which is not zypper: left behind (a pid reused after a reboot?); not waiting for it"),
        "{dry:?}"
    );
    assert!(
        dry.stdout.contains(&format!(
            "note: {} is left behind: no pacman is running; not waiting for it (pacman itself refuses to run until it is removed)",
            lock.display()
        )),
        "{dry:?}"
    );
    let status = at(&sb, T0, &["status"]);
    assert!(status.stdout.contains("note: "), "{status:?}");
    let run = at(&sb, T0, &[]);
    assert_eq!(
        lines(&run)[0],
        "Daemon is not running, restarting...",
        "{run:?}"
    );
    for pid in sb.pids_of("named") {
        sb.kill(pid);
    }
    // A pacman at work: the same lock holds the restart.
    let pacman = sb.start("pacman");
    let held = at(&sb, T0 + 5 * MIN, &["--dry-run"]);
    assert!(
        held.stdout.contains(&format!(
            "package manager at work: pacman (pid {pacman}) holds {}: restarts wait",
            lock.display()
        )),
        "{held:?}"
    );
    let quiet = at(&sb, T0 + 5 * MIN, &[]);
    assert!(
        silent(&quiet) && sb.pids_of("named").is_empty(),
        "{quiet:?}"
    );
    sb.kill(pacman);
}

#[test]
fn a_service_back_by_itself_after_an_upgrade_is_not_mailed() {
    let mut sb = sandbox_with("sshd", "");
    let pidfile = pkg_file(&sb, "run/zypp.pid", "");
    let zypper = sb.start("zypper");
    std::fs::write(&pidfile, zypper.to_string()).unwrap();
    let held = at(&sb, T0, &[]);
    assert!(silent(&held) && held.code == 1, "{held:?}");
    // The package's own scripts start the daemon again.
    let pid = sb.start("sshd");
    sb.kill(zypper);
    let back = at(&sb, T0 + 5 * MIN, &[]);
    assert_eq!(
        (back.code, lines(&back)),
        (0, Vec::<String>::new()),
        "{back:?}"
    );
    sb.kill(pid);
}

#[test]
fn pause_holds_restarts_and_its_end_is_said_once() {
    let mut sb = sandbox_with("slapd", "");
    let paused = at(
        &sb,
        T0,
        &["pause", "--for", "30m", "--reason", "kernel upgrade"],
    );
    let until = tend::clock::local_time(T0 + 30 * MIN);
    assert_eq!(paused.code, 0, "{paused:?}");
    assert_eq!(
        lines(&paused),
        vec![format!(
            "tend: paused until {until} (kernel upgrade); restarts wait until then or 'tend resume'"
        )]
    );
    let status = at(&sb, T0 + MIN, &["status"]);
    assert!(
        status.stdout.contains(&format!(
            "paused until {until} (kernel upgrade): restarts wait"
        )),
        "{status:?}"
    );
    let json = at(&sb, T0 + MIN, &["status", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["pause"]["reason"], "kernel upgrade");
    assert_eq!(doc["pause"]["until"], T0 + 30 * MIN);
    assert_eq!(doc["pause"]["active"], true);

    // Paused: no restart, nothing said, however long.
    let quiet = at(&sb, T0 + 5 * MIN, &[]);
    assert!(silent(&quiet) && quiet.code == 1, "{quiet:?}");
    assert!(silent(&at(&sb, T0 + 29 * MIN, &[])));
    assert!(sb.pids_of("slapd").is_empty());

    // It ends by itself: said once, and the restart happens.
    let ended = at(&sb, T0 + 31 * MIN, &[]);
    assert_eq!(
        lines(&ended)[..2],
        [
            format!("tend: the pause until {until} (kernel upgrade) has ended; restarts resumed"),
            "Daemon is not running, restarting...".to_string()
        ],
        "{ended:?}"
    );
    assert_eq!(ended.code, 0);
    assert!(silent(&at(&sb, T0 + 36 * MIN, &[])));

    // Pause, resume early: the next pass restarts.
    assert_eq!(at(&sb, T0 + 40 * MIN, &["pause"]).code, 0);
    for pid in sb.pids_of("slapd") {
        sb.kill(pid);
    }
    assert!(silent(&at(&sb, T0 + 41 * MIN, &[])));
    let resumed = at(&sb, T0 + 42 * MIN, &["resume"]);
    assert_eq!(
        lines(&resumed),
        vec![format!(
            "tend: resumed (was paused until {}); the next pass restarts what is down",
            tend::clock::local_time(T0 + 100 * MIN)
        )]
    );
    let run = at(&sb, T0 + 43 * MIN, &[]);
    assert_eq!(
        lines(&run)[0],
        "Daemon is not running, restarting... (2nd time in 12 min)"
    );
    assert_eq!(
        lines(&at(&sb, T0 + 44 * MIN, &["resume"])),
        vec!["tend: not paused"]
    );

    // A pause always ends: no more than a day.
    let forever = at(&sb, T0, &["pause", "--for", "25h"]);
    assert_eq!(forever.code, 2);
    assert!(
        forever.stderr.contains("a pause lasts from 1s to 24h"),
        "{forever:?}"
    );

    // The command line reads durations as the policy does.
    for (written, until) in [("2hours", 2 * 60), ("2 hours", 2 * 60), ("90 min", 90)] {
        let run = at(&sb, T0, &["pause", "--for", written]);
        assert_eq!(run.code, 0, "{written}: {run:?}");
        let until = tend::clock::local_time(T0 + until * MIN);
        assert_eq!(
            lines(&run),
            vec![format!(
                "tend: paused until {until}; restarts wait until then or 'tend resume'"
            )],
            "{written}"
        );
        at(&sb, T0, &["resume"]);
    }
    // A second pause while one is in force replaces it, and says so.
    at(&sb, T0, &["pause", "--for", "1h", "--reason", "first"]);
    let second = at(
        &sb,
        T0 + MIN,
        &["pause", "--for", "2h", "--reason", "second"],
    );
    assert_eq!(
        lines(&second),
        vec![format!(
            "tend: paused until {} (second) (it replaces the pause until {} (first)); restarts wait until then or 'tend resume'",
            tend::clock::local_time(T0 + 121 * MIN),
            tend::clock::local_time(T0 + 60 * MIN)
        )]
    );
    at(&sb, T0 + MIN, &["resume"]);
    let fortnight = at(&sb, T0, &["pause", "--for", "1 fortnight"]);
    assert_eq!(fortnight.code, 2);
    assert!(
        fortnight
            .stderr
            .contains("is not a duration such as 90s, 30m, 2h or 2 hours"),
        "{fortnight:?}"
    );
}

#[test]
fn a_hooks_resume_ends_only_its_own_pause_not_the_admins() {
    let mut sb = sandbox_with("slapd", "");
    let admin = at(
        &sb,
        T0,
        &["pause", "--for", "2h", "--reason", "maintenance"],
    );
    assert_eq!(admin.code, 0, "{admin:?}");
    // apt runs meanwhile: its hook pauses and resumes with --by apt.
    let hook = at(
        &sb,
        T0 + MIN,
        &["pause", "--by", "apt", "--reason", "dpkg run by apt"],
    );
    assert_eq!(
        lines(&hook),
        vec![format!(
            "tend: paused until {} by apt (dpkg run by apt); restarts wait until then or 'tend resume --by apt'",
            tend::clock::local_time(T0 + 61 * MIN)
        )]
    );
    let admin_until = tend::clock::local_time(T0 + 120 * MIN);
    let resumed = at(&sb, T0 + 2 * MIN, &["resume", "--by", "apt"]);
    assert_eq!(
        lines(&resumed),
        vec![format!(
            "tend: resumed (was paused until {} by apt (dpkg run by apt)); still paused until {admin_until} (maintenance)",
            tend::clock::local_time(T0 + 61 * MIN)
        )],
        "{resumed:?}"
    );
    // The admin's window holds: no restart.
    let status = at(&sb, T0 + 3 * MIN, &["status"]);
    assert!(
        status.stdout.contains(&format!(
            "paused until {admin_until} (maintenance): restarts wait"
        )),
        "{status:?}"
    );
    let quiet = at(&sb, T0 + 5 * MIN, &[]);
    assert!(silent(&quiet), "{quiet:?}");
    assert!(sb.pids_of("slapd").is_empty());
    // The admin's own resume ends it.
    assert_eq!(at(&sb, T0 + 6 * MIN, &["resume"]).code, 0);
    let run = at(&sb, T0 + 7 * MIN, &[]);
    assert!(
        lines(&run)[0].starts_with("Daemon is not running, restarting..."),
        "{run:?}"
    );
    assert_eq!(sb.pids_of("slapd").len(), 1);
    for pid in sb.pids_of("slapd") {
        sb.kill(pid);
    }
    let bad = at(&sb, T0, &["pause", "--by", "../x"]);
    assert_eq!(bad.code, 2, "{bad:?}");
}

#[test]
fn a_pause_from_a_wrong_clock_or_of_a_month_is_cut_and_said_once() {
    let sb = sandbox_with("slapd", "");
    let year = 365 * 24 * 60 * MIN;
    for (what, since, until, ends) in [
        // Set with a clock a year ahead, for 2 hours: 2 hours from now.
        (
            "began in the future",
            T0 + year,
            T0 + year + 120 * MIN,
            T0 + 120 * MIN,
        ),
        // Written by hand for 30 days: a day from its start.
        (
            "lasted more than 24h",
            T0 - 60 * MIN,
            T0 + 30 * 24 * 60 * MIN,
            T0 + 23 * 60 * MIN,
        ),
    ] {
        std::fs::create_dir_all(sb.path("state")).unwrap();
        std::fs::write(
            sb.path("state/pause.json"),
            format!("{{\"since\": {since}, \"until\": {until}, \"reason\": \"x\"}}"),
        )
        .unwrap();
        let first = at(&sb, T0, &[]);
        let said: Vec<String> = lines(&first)
            .into_iter()
            .filter(|l| !l.starts_with("tend: syslog not reached"))
            .collect();
        assert!(
            said[0].starts_with(&format!("tend: pause file state/pause.json {what} ("))
                && said[0].ends_with(&format!(
                    "and a pause always ends; it now ends {}",
                    tend::clock::local_time(ends)
                )),
            "{what}: {first:?}"
        );
        assert_eq!(said.len(), 1, "{what}: restarts still wait: {first:?}");
        // Said once: the file now says what is honoured.
        let again = at(&sb, T0 + 5 * MIN, &[]);
        assert!(silent(&again), "{what}: {again:?}");
        // And it ends then.
        let ended = at(&sb, ends + MIN, &[]);
        assert!(
            lines(&ended)[0].starts_with("tend: the pause until "),
            "{what}: {ended:?}"
        );
        assert!(
            lines(&ended)
                .iter()
                .any(|l| l.starts_with("Daemon restarted (pid ")),
            "{what}: {ended:?}"
        );
        for pid in sb.pids_of("slapd") {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        }
        wait_for(|| sb.pids_of("slapd").is_empty());
        std::fs::remove_dir_all(sb.path("state")).unwrap();
    }
}

#[test]
fn pause_and_resume_work_with_a_broken_policy() {
    let sb = Sandbox::new();
    sb.policy("service {\n");
    assert_eq!(sb.tend(&["pause", "--for", "10m"]).code, 0);
    assert!(sb.path("state/pause.json").exists());
    assert_eq!(sb.tend(&["resume"]).code, 0);
    assert!(!sb.path("state/pause.json").exists());
}

/// Puts a new copy of the binary at `<dir>/<name>` by renaming over the
/// old one, as dpkg and rpm do.
fn upgrade(sb: &Sandbox, name: &str) {
    let new = sb.path(&format!("{name}.new"));
    copy_sleep(&new);
    std::fs::rename(&new, sb.path(name)).unwrap();
}

#[test]
fn a_replaced_binary_is_said_once_per_pid_and_not_during_an_upgrade() {
    let mut sb = sandbox_with("apache2", "");
    let old = sb.start("apache2");
    assert!(silent(&at(&sb, T0, &[])));

    // The upgrade is under way: nothing is said yet.
    let yum = sb.start("yum");
    let pidfile = pkg_file(&sb, "var/run/yum.pid", &yum.to_string());
    upgrade(&sb, "apache2");
    assert!(silent(&at(&sb, T0 + 5 * MIN, &[])));
    std::fs::remove_file(&pidfile).unwrap();

    let said = at(&sb, T0 + 10 * MIN, &[]);
    let path = sb.path("apache2").display().to_string();
    assert_eq!(
        (said.code, lines(&said)),
        (
            0,
            vec![format!(
                "Daemon runs a replaced binary ({path}); restart it to load the upgrade"
            )]
        )
    );
    assert!(
        silent(&at(&sb, T0 + 15 * MIN, &[])),
        "said twice for one pid"
    );
    let dry = at(&sb, T0 + 15 * MIN, &["--dry-run"]);
    assert!(
        dry.stdout.contains(&format!(
            "running (pid {old}); runs a replaced binary ({path})"
        )),
        "{dry:?}"
    );

    // A new process on the new binary is fine; monitoring never stopped.
    sb.kill(old);
    let new = sb.start("apache2");
    assert!(silent(&at(&sb, T0 + 20 * MIN, &[])));

    // The old file moved aside and a new one put in its place: the inode at
    // the path is not the one running.
    std::fs::rename(sb.path("apache2"), sb.path("apache2.old")).unwrap();
    copy_sleep(&sb.path("apache2"));
    let moved = at(&sb, T0 + 25 * MIN, &[]);
    assert_eq!(
        lines(&moved),
        vec![format!(
            "Daemon runs a replaced binary ({path}); restart it to load the upgrade"
        )]
    );
    sb.kill(new);
    sb.kill(yum);
}

#[test]
fn restart_on_upgrade_restarts_onto_the_new_binary() {
    let mut sb = sandbox_with("nginx", "  restart_on_upgrade yes\n  shell yes\n");
    // The restart stops the old process, then starts a new one.
    let policy = std::fs::read_to_string(sb.path("policy.tend"))
        .unwrap()
        .replace(
            "restart \"setsid -f",
            "restart \"pkill -f '^@DIR@/nginx ' ; setsid -f",
        );
    sb.policy(&policy);
    let old = sb.start("nginx");
    assert!(silent(&at(&sb, T0, &[])));
    upgrade(&sb, "nginx");
    let run = at(&sb, T0 + 5 * MIN, &[]);
    let path = sb.path("nginx").display().to_string();
    assert_eq!(run.code, 0, "{run:?}");
    let pids = sb.pids_of("nginx");
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert_ne!(pids[0], old);
    assert_eq!(
        lines(&run),
        vec![
            format!("Daemon runs a replaced binary ({path}), restarting..."),
            format!("Daemon restarted (pid {})", pids[0]),
        ]
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", pids[0])).unwrap();
    assert_eq!(exe.display().to_string(), path, "runs the new binary");
    assert!(silent(&at(&sb, T0 + 10 * MIN, &[])));
    for pid in pids {
        sb.kill(pid);
    }
}

#[test]
fn a_damaged_pause_file_is_said_once_set_aside_and_ignored() {
    let mut sb = sandbox_with("named", "");
    std::fs::create_dir_all(sb.path("state")).unwrap();
    std::fs::write(sb.path("state/pause.json"), "{\"since\": 1, \"unt").unwrap();
    let run = at(&sb, T0, &[]);
    let lines = lines(&run);
    // The state dir is given as `state`, relative to the sandbox.
    assert!(
        lines[0].starts_with("tend: pause file state/pause.json is damaged; ignoring it: ")
            && lines[0].ends_with(&format!("; moved it to state/pause.json.bad-{T0}")),
        "{run:?}"
    );
    assert_eq!(lines[1], "Daemon is not running, restarting...");
    assert_eq!(run.code, 0);
    assert_eq!(
        std::fs::read_to_string(sb.path(&format!("state/pause.json.bad-{T0}"))).unwrap(),
        "{\"since\": 1, \"unt"
    );
    assert!(silent(&at(&sb, T0 + 5 * MIN, &[])));
    for pid in sb.pids_of("named") {
        sb.kill(pid);
    }
}

/// `exe` with `pidfile`, as the docs advise: an upgrade renames a new
/// binary over the one the daemon runs (`mv -f`, as dpkg does). The daemon
/// is still the service, on its old binary: said once, never restarted.
#[test]
fn a_daemon_known_by_exe_and_pidfile_stays_itself_after_its_binary_is_replaced() {
    let mut sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("root")).unwrap();
    let pid = sb.start("daemon");
    sb.write("d.pid", &format!("{pid}\n"));
    sb.policy(
        "service db {\n  name \"DB\"\n  exe \"@DIR@/daemon\"\n  pidfile \"@DIR@/d.pid\"\n  restart \"/bin/true\"\n  grace 1s\n}\n",
    );
    assert!(silent(&at(&sb, T0, &[])));
    upgrade(&sb, "daemon");
    let path = sb.path("daemon").display().to_string();
    let run = at(&sb, T0 + 5 * MIN, &[]);
    assert_eq!(
        (run.code, lines(&run)),
        (
            0,
            vec![format!(
                "DB runs a replaced binary ({path}); restart it to load the upgrade"
            )]
        ),
        "{run:?}"
    );
    assert!(silent(&at(&sb, T0 + 10 * MIN, &[])));
    assert_eq!(sb.pids_of("daemon"), vec![pid], "restarted or lost");
    sb.kill(pid);
}

/// A process started under a daemon's name (`exec -a PATH other`) runs
/// another program, not a replaced copy of that daemon.
#[test]
fn a_process_named_after_another_file_is_no_replaced_binary() {
    let sb = sandbox_with("apache2", "");
    copy_sleep(&sb.path("other"));
    let apache = sb.path("apache2").display().to_string();
    let other = sb.path("other").display().to_string();
    let _named = crate::sandbox::Started::spawn(
        Command::new("bash").args(["-c", &format!("exec -a {apache} {other} 1000")]),
        &apache,
    );
    sb.pass().at(T0).args(&["--pkg-root", "root"]).says(0, &[]);
    let dry = at(&sb, T0, &["--dry-run"]);
    assert!(!dry.stdout.contains("replaced"), "{dry:?}");
}
