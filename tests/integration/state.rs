//! Memory between runs, through the binary: change-only reports, reminders,
//! the restart budget, damaged state, overlapping runs, a pass killed
//! mid-way. Time is driven with TEND_NOW (unix seconds), which exists for
//! tests.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sandbox::{lines, wait_for, Run, Sandbox};

const T0: i64 = 1_800_000_000;

fn state_json(sb: &Sandbox) -> serde_json::Value {
    let text = std::fs::read_to_string(sb.path("state/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn failing_service_is_reported_once_reminded_then_recovery_reported() {
    let sb = Sandbox::new();
    sb.daemon("db");
    // The restart fails until the file `fixed` exists.
    sb.policy(
        "service db {\n  name \"Database\"\n  process \"@DIR@/db\"\n  restart \"test -e @DIR@/fixed && setsid -f @DIR@/db 1000 || { echo no config; exit 1; }\"\n  shell yes\n  limit 100 restarts within 1h\n  remind 6h\n  grace 5s\n}\n",
    );
    let first = sb.at(T0, &[]);
    assert_eq!(first.code, 1);
    assert_eq!(lines(&first)[0], "Database is not running, restarting...");
    assert!(
        lines(&first)[1].starts_with("Database failed to start! "),
        "{first:?}"
    );
    assert!(
        lines(&first)[1].ends_with("exited 1: no config"),
        "{first:?}"
    );

    for minutes in [5, 10, 60] {
        let quiet = sb.at(T0 + minutes * 60, &[]);
        assert_eq!(
            (quiet.code, lines(&quiet)),
            (1, Vec::<String>::new()),
            "after {minutes} min"
        );
    }
    let reminder = sb.at(T0 + 6 * 3600 + 60, &[]);
    assert_eq!(lines(&reminder).len(), 1, "{reminder:?}");
    assert!(
        lines(&reminder)[0].starts_with("Database is still failing (down since "),
        "{reminder:?}"
    );
    assert!(lines(&reminder)[0].ends_with("exited 1: no config"));
    let quiet = sb.at(T0 + 6 * 3600 + 360, &[]);
    assert!(lines(&quiet).is_empty(), "{quiet:?}");

    std::fs::write(sb.path("fixed"), "").unwrap();
    let recovered = sb.at(T0 + 7 * 3600, &[]);
    assert_eq!(recovered.code, 0, "{recovered:?}");
    let pid = sb.pids_of("db")[0];
    assert_eq!(
        lines(&recovered),
        [format!("Database is running again (restarted, pid {pid})")]
    );
    let quiet = sb.at(T0 + 7 * 3600 + 300, &[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, Vec::<String>::new()));
}

#[test]
fn service_back_by_itself_is_reported_once() {
    let mut sb = Sandbox::new();
    sb.policy("service db {\n  process \"@DIR@/db\"\n  restart \"false\"\n}\n");
    assert_eq!(sb.at(T0, &[]).code, 1);
    sb.start("db");
    let back = sb.at(T0 + 300, &[]);
    assert_eq!(back.code, 0);
    let want_prefix = "db is running again (was down since ";
    assert!(
        lines(&back).len() == 1 && lines(&back)[0].starts_with(want_prefix),
        "{back:?}"
    );
    assert!(lines(&sb.at(T0 + 600, &[])).is_empty());
}

#[test]
fn restart_budget_then_give_up_gives_up_once_and_reset_re_arms() {
    let mut sb = Sandbox::new();
    sb.daemon("flappy");
    sb.policy(
        "service f {\n  name \"Flappy\"\n  process \"@DIR@/flappy\"\n  restart \"setsid -f @DIR@/flappy 1000\"\n  limit 2 restarts within 1h then give up\n  grace 5s\n}\n",
    );
    // It dies after each restart.
    let die = |sb: &mut Sandbox| {
        for pid in sb.pids_of("flappy") {
            sb.kill(pid);
        }
    };
    let p1 = sb.at(T0, &[]);
    assert_eq!(
        lines(&p1)[0],
        "Flappy is not running, restarting...",
        "{p1:?}"
    );
    die(&mut sb);
    let p2 = sb.at(T0 + 300, &[]);
    assert_eq!(
        lines(&p2)[0],
        "Flappy is not running, restarting... (2nd time in 5 min)",
        "{p2:?}"
    );
    assert!(lines(&p2)[1].starts_with("Flappy restarted (pid "));
    die(&mut sb);
    let p3 = sb.at(T0 + 600, &[]);
    assert_eq!(
        lines(&p3),
        ["Flappy: giving up after 2 restarts in 10 min; run 'tend reset f' to try again"]
    );
    assert_eq!(p3.code, 1);
    assert!(sb.pids_of("flappy").is_empty(), "no restart once given up");
    for t in [900, 1200, 4000] {
        let later = sb.at(T0 + t, &[]);
        assert_eq!((later.code, lines(&later)), (1, Vec::<String>::new()));
        assert!(sb.pids_of("flappy").is_empty());
    }
    let status = sb.at(T0 + 4000, &["status"]);
    assert!(status.stdout.contains("given up"), "{status:?}");

    let reset = sb.at(T0 + 4100, &["reset", "f"]);
    assert_eq!(reset.code, 0, "{reset:?}");
    let p4 = sb.at(T0 + 4200, &[]);
    assert_eq!(
        lines(&p4)[0],
        "Flappy is not running, restarting...",
        "{p4:?}"
    );
    assert_eq!(p4.code, 0);
    assert_eq!(sb.pids_of("flappy").len(), 1);
}

/// A daemon that always dies at once: restarted until its budget (3 within
/// an hour) is spent, said once to be crash-looping, then tried 10, 20, 40
/// minutes apart and every 40 (`backoff 10m up to 40m`), reminded every
/// hour; fixed, it comes up at its next try, and once it has stayed up 10
/// minutes that is said once and its budget is whole again.
#[test]
fn a_crash_loop_backs_off_at_growing_intervals_and_is_forgiven_once_it_stays_up() {
    let mut sb = Sandbox::new();
    sb.daemon("d");
    sb.policy(
        "service d {\n  name \"Loop\"\n  process \"@DIR@/d\"\n  restart \"echo >> @DIR@/tries; if test -e @DIR@/fixed; then setsid -f @DIR@/d 1000; else setsid -f @DIR@/d 0.2; fi\"\n  shell yes\n  limit 3 restarts within 1h\n  backoff 10m up to 40m\n  remind 1h\n  grace 3s\n  settle 1s\n}\n",
    );
    let tries = |sb: &Sandbox| {
        std::fs::read_to_string(sb.path("tries"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let mut tried_at = Vec::new();
    let mut said = Vec::new();
    for minute in (0..=205).step_by(5) {
        if minute == 170 {
            sb.write("fixed", "");
        }
        let before = tries(&sb);
        let run = sb.at(T0 + minute * 60, &[]);
        if tries(&sb) > before {
            tried_at.push(minute);
        }
        for line in lines(&run) {
            said.push((minute, line));
        }
        if minute == 100 {
            // Backing off: status says so, with its next try, and exits 1.
            let status = sb.at(T0 + minute * 60, &["status"]);
            assert_eq!(status.code, 1, "{status:?}");
            assert!(status.stdout.contains(" backing off "), "{status:?}");
            let next = tend::clock::local_time(T0 + 125 * 60);
            assert!(
                status.stdout.contains(&format!(
                    "crash-looping since {}; next try at {next}",
                    tend::clock::local_time(T0)
                )),
                "{status:?}"
            );
            let json: serde_json::Value = serde_json::from_str(
                &sb.at(T0 + minute * 60, &["status", "--format", "json"])
                    .stdout,
            )
            .unwrap();
            assert_eq!(json["services"][0]["status"], "backing off");
            assert_eq!(json["services"][0]["trouble"]["next_try"], T0 + 125 * 60);
            let explain = sb.at(T0 + minute * 60, &["explain", "d"]);
            assert!(
                explain
                    .stdout
                    .contains("then tries after 10 min, doubling up to 40 min")
                    && explain.stdout.contains(&format!("next try at {next}")),
                "{explain:?}"
            );
        }
    }
    assert_eq!(tried_at, [0, 5, 10, 25, 45, 85, 125, 165, 205], "{said:?}");
    let kinds: Vec<(i64, &str)> = said
        .iter()
        .map(|(m, l)| {
            let kind = [
                "is not running, restarting",
                "failed to start!",
                "is crash-looping (3 restarts in 15 min); tend tries again at ",
                "is still crash-looping",
                "has stayed up for 10 min: no longer crash-looping",
            ]
            .into_iter()
            .find(|k| l.contains(k))
            .unwrap_or(l);
            (*m, kind)
        })
        .filter(|(_, l)| !l.starts_with("tend: syslog"))
        .collect();
    assert_eq!(
        kinds,
        [
            (0, "is not running, restarting"),
            (0, "failed to start!"),
            (
                15,
                "is crash-looping (3 restarts in 15 min); tend tries again at "
            ),
            (75, "is still crash-looping"),
            (135, "is still crash-looping"),
            (195, "is still crash-looping"),
        ],
        "{said:?}"
    );
    assert_eq!(sb.pids_of("d").len(), 1);
    // Stayed up from 205: forgiven at 215, said once.
    let steady = sb.at(T0 + 215 * 60, &[]);
    assert_eq!(
        lines(&steady),
        [format!(
            "Loop has stayed up for 10 min: no longer crash-looping (since {})",
            tend::clock::local_time(T0)
        )]
    );
    assert!(sb.at(T0 + 220 * 60, &[]).stdout.is_empty());
    // Its budget is whole: killed, it is restarted at once, as a first.
    for pid in sb.pids_of("d") {
        sb.kill(pid);
    }
    let again = sb.at(T0 + 225 * 60, &[]);
    assert_eq!(lines(&again)[0], "Loop is not running, restarting...");
    assert_eq!(again.code, 0, "{again:?}");
    for pid in sb.pids_of("d") {
        sb.kill(pid);
    }
}

#[test]
fn status_reports_every_service_as_text_and_json() {
    let mut sb = Sandbox::new();
    let pid = sb.start("up");
    sb.policy("service up { process \"@DIR@/up\"; restart \"true\" }\nservice down { process \"@DIR@/down\"; restart \"false\" }\n");
    let never = sb.at(T0, &["status"]);
    assert!(
        never
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("last pass: never"),
        "{never:?}"
    );
    sb.at(T0, &[]);
    let text = sb.at(T0 + 60, &["status"]);
    assert_eq!(text.code, 1);
    let rows: Vec<Vec<&str>> = text
        .stdout
        .lines()
        .skip(3)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][0], "up");
    assert_eq!(rows[0][2], "running");
    assert_eq!(rows[0].last().unwrap(), &pid.to_string());
    assert_eq!((rows[1][0], rows[1][2]), ("down", "failing"));
    let json: serde_json::Value =
        serde_json::from_str(&sb.at(T0 + 60, &["status", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["last_run"], T0);
    assert_eq!(json["services"][0]["status"], "running");
    assert_eq!(json["services"][0]["pid"], pid);
    assert_eq!(json["services"][1]["status"], "failing");
    assert_eq!(json["services"][1]["restarts_in_window"], 1);
    assert_eq!(json["services"][1]["restart_limit"], 5);
}

#[test]
fn damaged_state_is_set_aside_reported_once_and_replaced() {
    for (what, damage) in [
        ("garbage", "x\u{0}\u{1}garbage"),
        ("truncated", "{\"last_run\": 17, \"services\": {\"a\""),
        ("empty", ""),
        ("directory", ""),
    ] {
        let mut sb = Sandbox::new();
        sb.start("a");
        sb.policy("service a { process \"@DIR@/a\"; restart \"false\" }\n");
        std::fs::create_dir(sb.path("state")).unwrap();
        if what == "directory" {
            std::fs::create_dir(sb.path("state/state.json")).unwrap();
        } else {
            std::fs::write(sb.path("state/state.json"), damage).unwrap();
        }
        let run = sb.at(T0, &[]);
        assert_eq!(run.code, 0, "{what}: {run:?}");
        let notes = lines(&run);
        assert_eq!(notes.len(), 1, "{what}: {run:?}");
        assert!(
            notes[0].contains("was damaged") && notes[0].contains("state.json.bad-1800000000"),
            "{what}: {notes:?}"
        );
        assert!(
            sb.path("state/state.json.bad-1800000000").exists(),
            "{what}: set aside"
        );
        assert_eq!(
            state_json(&sb)["services"]["a"]["status"],
            "running",
            "{what}: a good state again"
        );
        let again = sb.at(T0 + 300, &[]);
        assert_eq!(
            (again.code, again.stdout.as_str()),
            (0, ""),
            "{what}: reported once"
        );
    }
}

#[test]
fn unusable_state_dir_is_reported_and_the_pass_still_restarts() {
    let sb = Sandbox::new();
    sb.daemon("a");
    sb.policy("service a { process \"@DIR@/a\"; restart \"setsid -f @DIR@/a 1000\"; grace 5s }\n");
    std::fs::write(sb.path("not-a-dir"), "").unwrap();
    let run = sb.tend_env(&["--state-dir", "not-a-dir/state"], &[]);
    let out = lines(&run);
    assert_eq!(
        out[0],
        format!("tend: state directory not-a-dir/state: {} above it is not a directory; refusing it (only root or the user running tend may control where tend keeps its state, lock and last good policy); this pass runs without its state: no lock, no memory of earlier passes, no last good policy", sb.path("not-a-dir").display()),
        "{run:?}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("a restarted (pid ")),
        "{run:?}"
    );
    assert_eq!(run.code, 0);
    assert_eq!(sb.pids_of("a").len(), 1);
}

#[test]
fn two_passes_at_once_only_one_acts() {
    let sb = Sandbox::new();
    sb.daemon("a");
    sb.policy(
        "service a {\n  process \"@DIR@/a\"\n  restart \"echo ran >> @DIR@/count; sleep 1; setsid -f @DIR@/a 1000\"\n  shell yes\n  grace 5s\n}\n",
    );
    let spawn = || sb.command(&[], &[]).stdout(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(std::fs::read_to_string(sb.path("count")).unwrap(), "ran\n");
    let outputs = [
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout),
    ];
    assert_eq!(
        outputs.iter().filter(|o| o.is_empty()).count(),
        1,
        "the other exits quietly: {outputs:?}"
    );
    assert!(a.status.success() && b.status.success());
}

#[test]
fn a_lock_held_too_long_is_reported() {
    let sb = Sandbox::new();
    sb.policy("service a { process \"@DIR@/a\"; restart \"false\" }\n");
    std::fs::create_dir(sb.path("state")).unwrap();
    std::fs::write(sb.path("state/lock"), format!("4242 {T0}\n")).unwrap();
    // Another process holds the lock: flock execs (no fork) a sandbox
    // daemon, so the sandbox kills it whatever happens.
    let holder_program = sb.daemon("holder");
    let mut holder = Command::new("flock")
        .args(["-n", "-F", "state/lock", &holder_program, "1000"])
        .current_dir(sb.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .count()
            > 0
            && holder.try_wait().unwrap().is_none()
    });
    std::thread::sleep(Duration::from_millis(200));
    let fresh = sb.at(T0 + 60, &[]);
    assert_eq!(
        (fresh.code, fresh.stdout.as_str()),
        (0, ""),
        "held briefly: quiet"
    );
    let stale = sb.at(T0 + 3600, &[]);
    assert_eq!(stale.code, 1);
    let line = lines(&stale).join("\n");
    assert!(
        line.starts_with("tend: another pass (pid 4242) has held the lock in state since "),
        "{line}"
    );
    assert!(line.ends_with("(60 min); it may be hung"), "{line}");
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn a_pass_killed_mid_restart_is_followed_by_a_correct_quiet_pass() {
    let sb = Sandbox::new();
    sb.daemon("slow");
    sb.policy(
        "service s {\n  process \"@DIR@/slow\"\n  restart \"touch @DIR@/started; sleep 1; setsid -f @DIR@/slow 1000\"\n  shell yes\n  grace 10s\n}\n",
    );
    let mut pass = sb
        .command(&[], &[("TEND_NOW", &T0.to_string())])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| sb.path("started").exists());
    pass.kill().unwrap(); // SIGKILL, between the restart and the state save
    pass.wait().unwrap();
    // The restart command goes on without it and the service comes up.
    wait_for(|| sb.pids_of("slow").len() == 1);
    // The state written before acting survived intact.
    assert_eq!(state_json(&sb)["services"]["s"]["status"], "restarting");
    let next = sb.at(T0 + 300, &[]);
    assert_eq!(
        (next.code, next.stdout.as_str()),
        (0, ""),
        "nothing reported twice"
    );
    assert_eq!(state_json(&sb)["services"]["s"]["status"], "running");
    assert_eq!(sb.pids_of("slow").len(), 1, "not restarted again");
}

/// A failure last said by a pass whose clock was a month ahead: once the
/// clock is right, the future stamps are taken as now (said once), so the
/// reminder comes on its schedule, not a month later.
#[test]
fn stamps_from_a_clock_that_was_ahead_are_taken_as_now() {
    let sb = Sandbox::new();
    sb.policy(
        "service db {\n  name \"Database\"\n  process \"@DIR@/db\"\n  restart \"false\"\n  limit 100 restarts within 1h\n  remind 6h\n}\n",
    );
    let month = 30 * 86_400;
    let ahead = sb.at(T0 + month, &[]);
    assert_eq!(lines(&ahead).len(), 2, "{ahead:?}");
    sb.pass().at(T0).says(
        1,
        &["tend: state file state/state.json has times up to 30 d ahead of the clock (the clock was ahead, or set back); taken as now"],
    );
    sb.pass().at(T0 + 300).says(1, &[]);
    let reminder = sb.at(T0 + 6 * 3600 + 60, &[]);
    assert!(
        lines(&reminder).len() == 1
            && lines(&reminder)[0].starts_with("Database is still failing (down since "),
        "{reminder:?}"
    );
    let json = state_json(&sb);
    assert!(json["services"]["db"]["since"].as_i64().unwrap() <= T0 + 6 * 3600 + 60);
}

/// A state directory that cannot be written (here read-only, in a mount
/// namespace of the pass's own): the pass still restarts, and says why the
/// state was not saved in the same words every time, naming the state
/// file, never a temporary file's random name.
#[test]
fn a_read_only_state_dir_is_said_the_same_way_each_pass() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut sb = Sandbox::new();
    sb.policy("service db {\n  name \"Database\"\n  process \"@DIR@/db\"\n  restart \"true\"\n  grace 1s\n}\n");
    let pid = sb.start("db");
    assert!(lines(&sb.at(T0, &[])).is_empty());
    sb.kill(pid);
    let said: Vec<Vec<String>> = (0..2)
        .map(|_| {
            let tend = assert_cmd::cargo::cargo_bin("tend");
            let out = Command::new("unshare")
                .args(["--mount", "sh", "-c"])
                .arg("mount --bind state state && mount -o remount,bind,ro state && exec \"$@\"")
                .arg("sh")
                .arg(tend)
                .args([
                    "-f",
                    "policy.tend",
                    "--state-dir",
                    "state",
                    "--pkg-root",
                    ".",
                ])
                .current_dir(sb.dir())
                .env("TEND_NOW", (T0 + 300).to_string())
                .env("TEND_SYSLOG_SOCKET", sb.path("no-syslog"))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            lines(&Run::from(out))
        })
        .collect();
    let unsaved =
        "tend: cannot save state to state/state.json: read-only filesystem or storage medium";
    assert!(said[0].iter().any(|l| l == unsaved), "{said:?}");
    assert_eq!(said[0], said[1]);
}

/// `tend reset --all` forgets failures and budgets, not what is known to
/// run: `status` still shows a healthy service running, not `unknown`.
#[test]
fn reset_keeps_a_running_service_running_in_status() {
    let mut sb = Sandbox::new();
    let pid = sb.start("up");
    sb.policy("service up { process \"@DIR@/up\"; restart \"true\" }\nservice down { process \"@DIR@/down\"; restart \"false\" }\n");
    sb.at(T0, &[]);
    assert_eq!(sb.at(T0 + 60, &["reset", "--all"]).code, 0);
    let json: serde_json::Value =
        serde_json::from_str(&sb.at(T0 + 60, &["status", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["services"][0]["status"], "running");
    assert_eq!(json["services"][0]["pid"], pid);
    assert_eq!(json["services"][1]["status"], "unknown");
    assert_eq!(json["services"][1]["restarts_in_window"], 0);
    sb.kill(pid);
}
