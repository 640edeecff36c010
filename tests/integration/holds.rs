//! Holds of one service, through the binary: `tend pause ID`, a window in
//! the policy (`hold during`), and the wait after boot. Each holds exactly
//! its service: nothing said while it lasts, the metrics say paused, and
//! its end is said once if the service is still down.

use crate::sandbox::{lines, Run, Sandbox};

const T0: i64 = 1_800_000_000;

/// Two daemons, each restarted with `setsid -f`; `web` depends on `db`.
fn two(sb: &mut Sandbox, db_extra: &str) {
    sb.daemon("db");
    sb.daemon("web");
    sb.policy(&format!(
        "service db {{\n  name \"Database\"\n  process \"@DIR@/db\"\n  restart \"setsid -f @DIR@/db 1000\"\n  grace 5s\n  settle 0\n{db_extra}}}\nservice web {{\n  name \"Web\"\n  process \"@DIR@/web\"\n  restart \"setsid -f @DIR@/web 1000\"\n  depends on db\n  grace 5s\n  settle 0\n}}\nservice cache {{\n  name \"Cache\"\n  process \"@DIR@/cache\"\n  restart \"setsid -f @DIR@/cache 1000\"\n  grace 5s\n  settle 0\n}}\n"
    ));
    sb.daemon("cache");
}

/// A run at `t` with the host's zone UTC (for time classes).
fn utc(sb: &Sandbox, t: i64, args: &[&str]) -> Run {
    sb.pass().at(t).env("TZ", "UTC").args(args).run()
}

/// A pass at `t` on a host booted at `boot`.
fn after(sb: &Sandbox, boot: i64, t: i64) -> Run {
    sb.pass().at(t).env("TEND_BOOTED", &boot.to_string()).run()
}

fn kill_all(sb: &mut Sandbox, name: &str) {
    for pid in sb.pids_of(name) {
        sb.kill(pid);
    }
}

#[test]
fn a_paused_service_alone_is_held_its_dependents_wait_and_its_end_is_said_once() {
    let mut sb = Sandbox::new();
    two(&mut sb, "");
    std::fs::create_dir(sb.path("textfile")).unwrap();
    let paused = sb.at(
        T0,
        &[
            "pause",
            "db",
            "--for",
            "10m",
            "--reason",
            "schema migration",
        ],
    );
    assert_eq!(paused.code, 0, "{paused:?}");
    let until = tend::clock::local_time(T0 + 600);
    assert_eq!(
        lines(&paused),
        [format!("tend: db paused until {until} (schema migration); its restarts wait until then or 'tend resume db'")]
    );
    // Everything is down: only cache is restarted. db is held, web waits
    // for it; nothing is said of either.
    let run = sb.at(T0 + 60, &["--metrics", "textfile/tend.prom"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        lines(&run),
        [
            "Cache is not running, restarting...".to_string(),
            format!("Cache restarted (pid {})", sb.pids_of("cache")[0])
        ]
    );
    assert!(sb.pids_of("db").is_empty() && sb.pids_of("web").is_empty());
    let metrics = std::fs::read_to_string(sb.path("textfile/tend.prom")).unwrap();
    assert!(
        metrics.contains("tend_service_status{service=\"db\",status=\"paused\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("tend_paused 0\n"), "{metrics}");
    let status = sb.at(T0 + 60, &["status"]);
    let db = status
        .stdout
        .lines()
        .find(|l| l.starts_with("db "))
        .unwrap();
    assert!(db.contains(" paused "), "{status:?}");
    assert!(
        status
            .stdout
            .contains(&format!("restart held until {until} (schema migration)")),
        "{status:?}"
    );
    // Still held five minutes later: nothing said.
    assert_eq!(sb.at(T0 + 360, &[]).stdout, "");
    // The pause ends with db still down: said once, in its restart.
    let ended = sb.at(T0 + 660, &[]);
    assert_eq!(ended.code, 0, "{ended:?}");
    let said = lines(&ended);
    assert_eq!(
        said[0],
        format!("Database is not running after its hold (held until {until} (schema migration)), restarting...")
    );
    assert!(
        said.contains(&"Web is not running, restarting...".to_string()),
        "{said:?}"
    );
    assert_eq!((sb.pids_of("db").len(), sb.pids_of("web").len()), (1, 1));
    assert_eq!(sb.at(T0 + 960, &[]).stdout, "");
    for name in ["db", "web", "cache"] {
        kill_all(&mut sb, name);
    }
}

#[test]
fn resume_ends_one_services_pause_and_a_typo_is_refused() {
    let mut sb = Sandbox::new();
    two(&mut sb, "");
    let typo = sb.at(T0, &["pause", "dbb"]);
    assert_eq!(typo.code, 2, "{typo:?}");
    assert!(
        typo.stderr
            .contains("no service `dbb` in policy.tend; did you mean `db`?"),
        "{typo:?}"
    );
    let bad = sb.at(T0, &["pause", "../x"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(!sb.path("state/hold.../x.json").exists());
    assert_eq!(sb.at(T0, &["pause", "db", "cache", "--for", "1h"]).code, 0);
    let run = sb.at(T0 + 60, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    let resumed = sb.at(T0 + 120, &["resume", "cache"]);
    assert!(
        resumed
            .stdout
            .starts_with("tend: resumed cache (was paused until "),
        "{resumed:?}"
    );
    assert_eq!(
        sb.at(T0 + 120, &["resume", "cache"]).stdout,
        "tend: cache was not paused\n"
    );
    // cache is restarted (its hold said ended); db is still held, web waits.
    let run = sb.at(T0 + 180, &[]);
    let said = lines(&run);
    assert!(
        said[0].starts_with("Cache is not running after its hold (held until "),
        "{said:?}"
    );
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(sb.pids_of("db").is_empty());
    for name in ["db", "web", "cache"] {
        kill_all(&mut sb, name);
    }
}

/// `hold during EXPR`: a class of the policy (`-D` here) or of the time
/// (`Hr03`, with the host's zone set to UTC) opens the window.
#[test]
fn a_window_in_the_policy_holds_its_service_while_its_expression_is_true() {
    let mut sb = Sandbox::new();
    two(&mut sb, "  hold during \"backup|Hr03\"\n");
    let day = T0 - T0 % 86_400;
    let three = day + 3 * 3600 + 600; // 03:10 UTC
                                      // 03:10: db held, web waits; cache restarted.
    let run = utc(&sb, three, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        lines(&run)[0].starts_with("Cache is not running"),
        "{run:?}"
    );
    assert_eq!(lines(&run).len(), 2, "{run:?}");
    assert!(sb.pids_of("db").is_empty());
    let dry = utc(&sb, three + 60, &["--dry-run"]);
    assert!(
        dry.stdout.contains("restart held during backup|Hr03"),
        "{dry:?}"
    );
    // 04:00: the window has closed with db down: said once, restarted.
    let run = utc(&sb, day + 4 * 3600, &[]);
    assert_eq!(
        lines(&run)[0],
        "Database is not running after its hold (held during backup|Hr03), restarting..."
    );
    assert_eq!(sb.pids_of("db").len(), 1);
    // At noon, with the class `backup` defined: held again (db killed).
    kill_all(&mut sb, "db");
    let noon = day + 12 * 3600;
    let run = utc(&sb, noon, &["-D", "backup"]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{run:?}");
    assert!(sb.pids_of("db").is_empty());
    let run = utc(&sb, noon + 300, &[]);
    assert!(
        lines(&run)[0].starts_with("Database is not running after its hold"),
        "{run:?}"
    );
    for name in ["db", "web", "cache"] {
        kill_all(&mut sb, name);
    }
}

/// After a reboot (a pass before it, then the host booted 1 min ago), a
/// service not up yet is waited for, not restarted; one that comes up by
/// itself meanwhile is never mentioned; one still down 5 minutes after
/// boot is restarted, and that says so.
#[test]
fn after_boot_a_service_not_up_yet_is_waited_for_then_restarted_once_said() {
    let mut sb = Sandbox::new();
    two(&mut sb, "");
    let boot = T0 + 3600;
    // Before the reboot: all started and running.
    after(&sb, boot, T0);
    assert_eq!(after(&sb, boot, T0 + 300).stdout, "");
    for name in ["db", "web", "cache"] {
        kill_all(&mut sb, name);
    }
    // 1 min after boot: all down, none restarted, nothing said.
    let early = after(&sb, boot, boot + 60);
    assert_eq!((early.code, early.stdout.as_str()), (1, ""), "{early:?}");
    assert!(sb.pids_of("db").is_empty() && sb.pids_of("cache").is_empty());
    // db and web come up by themselves (as init starts them).
    sb.start("db");
    sb.start("web");
    let status = sb
        .pass()
        .at(boot + 90)
        .args(&["--dry-run"])
        .env("TEND_BOOTED", &boot.to_string())
        .run();
    assert!(
        status.stdout.contains(
            "waiting for it to start: the host booted 1 min ago; waiting up to 5 min after boot"
        ),
        "{status:?}"
    );
    assert_eq!(after(&sb, boot, boot + 180).stdout, "");
    // 6 min after boot, cache is still down: restarted, said once.
    let late = after(&sb, boot, boot + 360);
    assert_eq!(late.code, 0, "{late:?}");
    assert_eq!(
        lines(&late)[0],
        "Cache is not running 5 min after boot, restarting..."
    );
    assert_eq!(lines(&late).len(), 2, "{late:?}");
    assert_eq!(sb.pids_of("cache").len(), 1);
    // Killed after it was seen up since boot: restarted at once.
    kill_all(&mut sb, "cache");
    let again = after(&sb, boot, boot + 420);
    assert_eq!(
        lines(&again)[0],
        "Cache is not running, restarting... (2nd time in 1 min)"
    );
    for name in ["db", "web", "cache"] {
        kill_all(&mut sb, name);
    }
}
