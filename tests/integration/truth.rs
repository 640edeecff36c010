//! tend never says a dead service is running, nor that a restart worked
//! when the daemon died: the main process among workers, a restart that
//! must stay up, double forks, descriptors and environment a daemon must
//! not inherit. Real daemons (small Python programs, copies of sleep).

use std::os::unix::process::CommandExt;

use crate::sandbox::{lines, wait_for, Sandbox};

const T0: i64 = 1_790_000_000;

/// A daemon that forks: the restart command's process exits at once; the
/// master writes `<name>.pid`, then forks two workers with its own command
/// line, and all sleep.
const FORKER: &str = r#"
import os, sys, time
if os.fork():
    sys.exit(0)
os.setsid()
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % os.getpid())
for _ in range(2):
    if os.fork() == 0:
        time.sleep(1000)
        os._exit(0)
time.sleep(1000)
"#;

#[test]
fn a_master_killed_beside_its_workers_is_restarted_and_the_workers_do_not_count() {
    let mut sb = Sandbox::new();
    sb.write("forker.py", FORKER);
    sb.policy(
        "service web {\n  name \"Web\"\n  process \"@DIR@/forker.py\"\n  pidfile \"@DIR@/forker.pid\"\n  restart \"python3 @DIR@/forker.py @DIR@/forker.pid\"\n  grace 5s\n  settle 1s\n}\n",
    );
    let started = sb.at(T0, &[]);
    assert_eq!(started.code, 0, "{started:?}");
    let master: u32 = std::fs::read_to_string(sb.path("forker.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        lines(&started),
        vec![
            format!(
                "Web is not running (pidfile {}: missing), restarting...",
                sb.path("forker.pid").display()
            ),
            format!("Web restarted (pid {master})")
        ]
    );
    let workers = || {
        crate::sandbox::children_of(master)
            .into_iter()
            .collect::<Vec<u32>>()
    };
    wait_for(|| workers().len() == 2);
    let orphans = workers();
    sb.kill(master);
    // The workers run on with the master's command line; the service is
    // down all the same.
    let dry = sb.tend(&["--dry-run"]);
    assert!(
        dry.stdout.contains(&format!(
            "Web (web): not running (pidfile {}: pid {master} is not running)",
            sb.path("forker.pid").display()
        )),
        "{dry:?}"
    );
    let again = sb.at(T0 + 300, &[]);
    let new_master: u32 = std::fs::read_to_string(sb.path("forker.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(new_master, master);
    assert_eq!(
        lines(&again),
        vec![
            format!(
                "Web is not running (pidfile {}: pid {master} is not running), restarting... (2nd time in 5 min)",
                sb.path("forker.pid").display()
            ),
            format!("Web restarted (pid {new_master})")
        ]
    );
    assert_eq!(again.code, 0);
    for pid in orphans {
        assert!(
            crate::sandbox::cmdline(pid).is_some(),
            "old worker left alone"
        );
    }
}

#[test]
fn a_daemon_that_dies_a_second_after_start_failed_to_start() {
    let sb = Sandbox::new();
    sb.daemon("crashy");
    sb.policy(
        "service crashy {\n  name \"Crashy\"\n  process \"@DIR@/crashy\"\n  restart \"setsid -f @DIR@/crashy 1\"\n  grace 5s\n  settle 3s\n}\n",
    );
    let first = sb.at(T0, &[]);
    assert_eq!(first.code, 1, "{first:?}");
    let said = lines(&first);
    assert_eq!(said[0], "Crashy is not running, restarting...");
    let failed = &said[1];
    assert!(
        failed.starts_with("Crashy failed to start! setsid -f ")
            && failed.contains("/crashy 1 started (pid ")
            && failed.ends_with(") but it exited after 1 s"),
        "{failed}"
    );
    assert_eq!(said.len(), 2);
    // The failure rules from here: attempts go on quietly, the budget
    // counts them.
    let second = sb.at(T0 + 300, &[]);
    assert_eq!(second.code, 1);
    assert!(lines(&second).is_empty(), "{second:?}");
    let status = sb.at(T0 + 400, &["status"]);
    assert!(status.stdout.contains("failing"), "{status:?}");
    assert!(status.stdout.contains(" 2/5 "), "{status:?}");
}

/// A classic double fork whose middle process lingers 200 ms; the daemon
/// writes its pid to `<dir>/daemon.pid` (which the policy does not use).
const DOUBLE_FORK: &str = r#"
import os, sys, time
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    time.sleep(0.2)
    os._exit(0)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % os.getpid())
time.sleep(1000)
"#;

#[test]
fn a_double_forking_daemon_is_reported_by_its_own_pid() {
    let sb = Sandbox::new();
    sb.write("dfork.py", DOUBLE_FORK);
    sb.policy(
        "service d {\n  name \"Forky\"\n  process \"@DIR@/dfork.py\"\n  restart \"python3 @DIR@/dfork.py @DIR@/daemon.pid\"\n  grace 5s\n  settle 1s\n}\n",
    );
    let run = sb.tend(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    let daemon = std::fs::read_to_string(sb.path("daemon.pid")).unwrap();
    let daemon = daemon.trim();
    assert_eq!(lines(&run)[1], format!("Forky restarted (pid {daemon})"));
    let status = sb.tend(&["status", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["services"][0]["pid"].to_string(), daemon);
}

#[test]
fn restarted_daemons_inherit_no_descriptor_and_only_a_clean_environment() {
    let sb = Sandbox::new();
    sb.daemon("daemon");
    let secret = sb.write("secret.txt", "not for daemons\n");
    sb.policy(
        "service d {\n  process \"@DIR@/daemon\"\n  restart \"env > @DIR@/env.txt; exec setsid -f @DIR@/daemon 1000\"\n  shell yes\n  grace 5s\n  settle 1s\n}\n",
    );
    // tend started with descriptor 7 open on a file, as a wrapper (flock,
    // a shell) may leave it, and a variable cron or a shell set.
    let file = std::fs::File::open(&secret).unwrap();
    let mut cmd = sb.command(&[], &[("SECRET_TOKEN", "hunter2"), ("LANG", "C.UTF-8")]);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let pids = sb.pids_of("daemon");
    assert_eq!(pids.len(), 1);
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", pids[0]))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        !fds.iter().any(|f| f.contains("secret.txt")),
        "the daemon holds tend's descriptor: {fds:?}"
    );
    let env = std::fs::read_to_string(sb.path("env.txt")).unwrap();
    assert!(!env.contains("SECRET_TOKEN"), "{env}");
    assert!(env.contains("LANG=C.UTF-8"), "{env}");
    assert!(
        env.lines()
            .any(|l| l == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "{env}"
    );
}

#[test]
fn flock_around_tend_is_not_held_by_the_daemon_it_restarts() {
    let sb = Sandbox::new();
    sb.daemon("daemon");
    sb.policy(
        "service d {\n  process \"@DIR@/daemon\"\n  restart \"setsid -f @DIR@/daemon 1000\"\n  grace 5s\n  settle 1s\n}\n",
    );
    // The common cron line: flock -n LOCK tend.
    let flocked = |sb: &Sandbox| {
        let tend = assert_cmd::cargo::cargo_bin("tend");
        let mut cmd = std::process::Command::new("flock");
        cmd.current_dir(sb.dir())
            .arg("-n")
            .arg(sb.path("cron.lock"))
            .arg(tend)
            .args(["-f", "policy.tend", "--state-dir", "state", "--pkg-root"])
            .arg(sb.path("no-pkgmgr"))
            .env("TEND_SYSLOG_SOCKET", sb.path("no-syslog"));
        std::fs::create_dir_all(sb.path("no-pkgmgr")).unwrap();
        cmd.output().unwrap()
    };
    let first = flocked(&sb);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(sb.pids_of("daemon").len(), 1);
    // The daemon runs on; the next cron run still gets the lock.
    let second = flocked(&sb);
    assert!(
        second.status.success(),
        "the next pass is locked out: {second:?}"
    );
}

#[test]
fn a_daemon_in_its_own_mount_namespace_is_not_taken_for_a_replaced_binary() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: unshare --mount needs root");
        return;
    }
    let sb = Sandbox::new();
    sb.daemon("daemon");
    crate::sandbox::copy_sleep(&sb.path("other"));
    sb.policy(
        "service d {\n  name \"Daemon\"\n  process \"@DIR@/daemon\"\n  restart \"setsid -f @DIR@/daemon 1000\"\n}\n",
    );
    // In its own mount namespace, a different file is at the daemon's path
    // (as in a container or chroot): the host's file there is not the inode
    // that runs, and that is no upgrade.
    let script = format!(
        "mount --bind {dir}/other {dir}/daemon && exec {dir}/daemon 1000",
        dir = sb.dir().display()
    );
    let mut inside = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| sb.pids_of("daemon").len() == 1);
    let run = sb.tend(&["--dry-run"]);
    assert!(
        !run.stdout.contains("replaced"),
        "a daemon in a namespace was taken for a replaced binary: {run:?}"
    );
    assert!(lines(&sb.tend(&[])).is_empty());
    let _ = inside.kill();
    let _ = inside.wait();
}

/// Holds a write lock on `<root>/var/lib/dpkg/lock-frontend`, as apt does,
/// until killed.
const HOLD_DPKG: &str = r#"
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + "/var/lib/dpkg/lock-frontend", os.O_RDWR | os.O_CREAT, 0o640)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[1] + "/locked", "w").close()
time.sleep(1000)
"#;

#[test]
fn a_package_manager_that_starts_mid_pass_holds_the_next_wave() {
    let sb = Sandbox::new();
    sb.daemon("db");
    sb.daemon("web");
    sb.write("hold.py", HOLD_DPKG);
    let root = sb.path("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    // Restarting the database starts an "upgrade" (the lock is taken)
    // before the web server's turn comes.
    sb.policy(
        "service db {\n  name \"Database\"\n  process \"@DIR@/db\"\n  shell yes\n  restart \"setsid -f python3 @DIR@/hold.py @DIR@/root; while [ ! -e @DIR@/root/locked ]; do sleep 0.05; done; setsid -f @DIR@/db 1000\"\n  grace 5s\n  settle 1s\n}\nservice web {\n  name \"Web\"\n  process \"@DIR@/web\"\n  depends on db\n  restart \"setsid -f @DIR@/web 1000\"\n  grace 5s\n  settle 1s\n}\n",
    );
    let root_arg = root.to_string_lossy().into_owned();
    let run = sb.at(T0, &["--pkg-root", &root_arg]);
    assert_eq!(
        lines(&run),
        vec![
            "Database is not running, restarting...".to_string(),
            format!("Database restarted (pid {})", sb.pids_of("db")[0]),
        ],
        "the web server waits for the upgrade: {run:?}"
    );
    assert_eq!(run.code, 1);
    assert!(sb.pids_of("web").is_empty());
    let status = sb.at(T0 + 60, &["--pkg-root", &root_arg, "status"]);
    assert!(
        status.stdout.contains("restart deferred: python3 (pid "),
        "{status:?}"
    );
    // The upgrade over, the next pass restarts it.
    let holder = sb.path("hold.py").display().to_string();
    for pid in crate::sandbox::all_pids_matching(&holder) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    wait_for(|| crate::sandbox::all_pids_matching(&holder).is_empty());
    let after = sb.at(T0 + 300, &["--pkg-root", &root_arg]);
    assert_eq!(lines(&after)[0], "Web is not running, restarting...");
    assert_eq!(after.code, 0, "{after:?}");
}

/// Starts a pass in the background, waits until its restart command has
/// begun (it writes `<dir>/runs.log`), and kills the pass with SIGKILL.
fn kill_pass_during_restart(sb: &Sandbox, t: i64) {
    let mut pass = sb.command(&[], &[("TEND_NOW", &t.to_string())]);
    let mut child = pass
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| sb.path("runs.log").exists());
    child.kill().unwrap();
    child.wait().unwrap();
}

fn runs(sb: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(sb.path("runs.log"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// After a killed pass's restart command has finished: one daemon, the
/// command ran once, and the next pass finds all well.
fn one_run_one_daemon(sb: &Sandbox) {
    wait_for(|| sb.pids_of("daemon").len() == 1);
    let after = sb.at(T0 + 300, &[]);
    assert_eq!(after.code, 0, "{after:?}");
    assert_eq!(runs(sb), ["run"], "the restart command ran twice");
    assert_eq!(sb.pids_of("daemon").len(), 1);
}

#[test]
fn a_pass_killed_during_a_restart_leaves_one_restart_not_two() {
    let sb = Sandbox::new();
    sb.daemon("daemon");
    sb.policy(
        "service d {\n  name \"Slow\"\n  process \"@DIR@/daemon\"\n  shell yes\n  restart \"echo run >> @DIR@/runs.log; sleep 2; setsid -f @DIR@/daemon 1000\"\n  grace 5s\n  settle 1s\n}\n",
    );
    kill_pass_during_restart(&sb, T0);
    // The next pass finds the command still at work and waits for it.
    let next = sb.at(T0 + 1, &[]);
    assert!(lines(&next).is_empty(), "{next:?}");
    assert_eq!(next.code, 1);
    let dry = sb.at(T0 + 1, &["--dry-run"]);
    assert!(
        dry.stdout
            .contains("Slow (d): not running; restart deferred"),
        "{dry:?}"
    );
    one_run_one_daemon(&sb);
}

#[test]
fn a_left_behind_restart_past_its_timeout_is_killed_and_said() {
    let sb = Sandbox::new();
    sb.daemon("daemon");
    sb.policy(
        "service d {\n  name \"Slow\"\n  process \"@DIR@/daemon\"\n  shell yes\n  restart \"if [ -e @DIR@/runs.log ]; then echo again >> @DIR@/runs.log; else echo first >> @DIR@/runs.log; sleep 30; fi; setsid -f @DIR@/daemon 1000\"\n  timeout 10s\n  grace 5s\n  settle 1s\n}\n",
    );
    kill_pass_during_restart(&sb, T0);
    let stuck = crate::sandbox::all_pids_matching("sleep 30");
    let next = sb.at(T0 + 300, &[]);
    let said = lines(&next);
    assert!(
        said[0].starts_with("Slow: its restart command (pid ")
            && said[0]
                .ends_with(") from an interrupted pass ran past its timeout of 10 s; killed it"),
        "{next:?}"
    );
    assert_eq!(
        said[1],
        "Slow is not running, restarting... (2nd time in 5 min)"
    );
    assert_eq!(next.code, 0, "{next:?}");
    assert_eq!(runs(&sb), ["first", "again"]);
    for pid in stuck {
        wait_for(|| crate::sandbox::cmdline(pid).is_none_or(|c| !c.contains("sleep 30")));
    }
}

#[test]
fn a_state_file_naming_another_process_group_kills_nothing() {
    let mut sb = Sandbox::new();
    sb.daemon("daemon");
    sb.policy(
        "service d {\n  name \"Slow\"\n  process \"@DIR@/daemon\"\n  restart \"setsid -f @DIR@/daemon 1000\"\n  timeout 10s\n  grace 5s\n  settle 1s\n}\n",
    );
    // An unrelated process leading its own group, named in a forged state
    // file as a restart command left running for ages.
    let victim = sb.path("victim");
    crate::sandbox::copy_sleep(&victim);
    let mut child = std::process::Command::new(&victim)
        .arg("1000")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    std::fs::create_dir_all(sb.path("state")).unwrap();
    std::fs::write(
        sb.path("state/state.json"),
        format!(
            r#"{{"services": {{"d": {{"status": "restarting", "since": {T0}, "command": {{"pgid": {pid}, "start_time": {ticks}, "since": {}}}}}}}}}"#,
            T0 - 1000
        ),
    )
    .unwrap();
    let run = sb.at(T0 + 300, &[]);
    assert_eq!(
        lines(&run)[0],
        "Slow is not running, restarting...",
        "{run:?}"
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        crate::sandbox::cmdline(pid).is_some(),
        "tend killed a process group a state file named"
    );
    let _ = child.kill();
    let _ = child.wait();
    sb.kill(sb.pids_of("daemon")[0]);
}

/// A restart command that is a `#!` script (as every init script,
/// `service` and `invoke-rc.d` are) runs as `/bin/sh SCRIPT`: a pass killed
/// while it runs must still be known to the next by what it recorded, not
/// by the command line.
#[test]
fn a_pass_killed_during_a_script_restart_leaves_one_daemon_not_two() {
    let sb = Sandbox::new();
    sb.daemon("daemon");
    sb.script(
        "restart.sh",
        "#!/bin/sh\necho run >> @DIR@/runs.log\nsleep 3\nsetsid -f @DIR@/daemon 1000\n",
    );
    sb.policy(
        "service d {\n  name \"Slow\"\n  process \"@DIR@/daemon\"\n  restart \"@DIR@/restart.sh\"\n  grace 5s\n  settle 1s\n}\n",
    );
    kill_pass_during_restart(&sb, T0);
    let next = sb.at(T0 + 1, &[]);
    assert!(lines(&next).is_empty(), "{next:?}");
    assert_eq!(next.code, 1);
    one_run_one_daemon(&sb);
}

/// Passes killed with SIGKILL at random moments against a daemon that
/// crashes a few seconds after it starts, restarted by a slow script: at
/// no moment do two daemons run. 20 kills; `TEND_TEST_KILLS=200 cargo
/// test passes_killed_at_random` for more.
#[test]
fn passes_killed_at_random_never_leave_two_daemons() {
    let sb = Sandbox::new();
    sb.daemon("daemon");
    sb.script(
        "restart.sh",
        "#!/bin/sh\nsleep 0.$(( $$ % 9 + 1 ))\nsetsid -f @DIR@/daemon 2\nsleep 0.5\n",
    );
    sb.policy(
        "service d {\n  name \"Loop\"\n  process \"@DIR@/daemon\"\n  restart \"@DIR@/restart.sh\"\n  grace 3s\n  settle 0\n  timeout 20s\n  limit 100000 restarts within 1h\n}\n",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = {
        let (stop, most) = (stop.clone(), most.clone());
        let daemon = sb.path("daemon").display().to_string();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // The daemon itself: not `setsid -f DAEMON 2` (the
                // wrapper, and its child for the moment before its exec).
                let n = crate::sandbox::all_pids_matching(&format!("{daemon} 2"))
                    .into_iter()
                    .filter(|&p| crate::sandbox::cmdline(p).is_some_and(|c| c.starts_with(&daemon)))
                    .count();
                most.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let kills: usize = std::env::var("TEND_TEST_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    for _ in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut pass = sb.command(&[], &[]);
        let mut child = pass
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(seed % 1500));
        let _ = child.kill();
        child.wait().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(
        most.load(std::sync::atomic::Ordering::Relaxed) <= 1,
        "two daemons ran at once"
    );
}
