//! `tend doctor` through the binary, in a sandbox whose host root (the
//! files doctor reads: cron, the mail agent, the package managers' hooks)
//! is a directory of its own (`--pkg-root`), as a chroot's would be.

use std::os::unix::fs::PermissionsExt;

use crate::sandbox::{Run, Sandbox};

const T0: i64 = 1_800_000_000;

fn doctor(sb: &Sandbox, t: i64) -> Run {
    let root = sb.path("root").display().to_string();
    sb.pass().at(t).args(&["--pkg-root", &root, "doctor"]).run()
}

/// The lines that are problems, by check.
fn problems(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PROBLEM "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn doctor_says_what_is_missing_one_line_each_and_passes_a_complete_set_up() {
    let sb = Sandbox::new();
    sb.policy("service a { process \"/a\"; restart \"true\"; grace 1s }\n");
    std::fs::create_dir_all(sb.path("root/usr/bin")).unwrap();
    std::fs::write(sb.path("root/usr/bin/apt-get"), "").unwrap();
    // Nothing set up: no schedule, no pass yet, no apt hook.
    let bare = doctor(&sb, T0);
    assert_eq!(bare.code, 1, "{bare:?}");
    assert_eq!(problems(&bare), ["schedule", "last", "hook"], "{bare:?}");
    assert!(
        bare.stdout
            .contains("no pass is scheduled: no cron entry runs tend and no tend.timer is enabled"),
        "{bare:?}"
    );
    assert!(!sb.path("state").exists(), "doctor wrote state");

    // Cron runs tend, but there is no mail agent: reports are thrown away.
    std::fs::create_dir_all(sb.path("root/etc/cron.d")).unwrap();
    sb.write(
        "root/etc/cron.d/tend",
        "MAILTO=ops@example.org\n*/5 * * * * root /usr/sbin/tend --splay 60\n",
    );
    std::fs::create_dir_all(sb.path("root/etc/apt/apt.conf.d")).unwrap();
    sb.write("root/etc/apt/apt.conf.d/80tend", "// tend's hook\n");
    // A pass ran an hour ago.
    sb.at(T0, &[]);
    let stale = doctor(&sb, T0 + 3600);
    assert_eq!(stale.code, 1, "{stale:?}");
    assert_eq!(problems(&stale), ["last", "reports"], "{stale:?}");
    assert!(
        stale.stdout.contains("the last pass ran 60 min ago"),
        "{stale:?}"
    );
    assert!(
        stale.stdout.contains("cron mails reports, but there is no mail agent (/usr/sbin/sendmail) and the policy has no channel: reports are thrown away"),
        "{stale:?}"
    );

    // An unsafe state directory.
    std::fs::set_permissions(sb.path("state"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let unsafe_dir = doctor(&sb, T0 + 3600);
    assert!(
        problems(&unsafe_dir).contains(&"state".to_string()),
        "{unsafe_dir:?}"
    );
    std::fs::set_permissions(sb.path("state"), std::fs::Permissions::from_mode(0o700)).unwrap();

    // Complete: a mail agent, a recent pass.
    std::fs::create_dir_all(sb.path("root/usr/sbin")).unwrap();
    sb.write("root/usr/sbin/sendmail", "");
    sb.at(T0 + 3600, &[]);
    let fine = doctor(&sb, T0 + 3660);
    assert_eq!((fine.code, problems(&fine)), (0, vec![]), "{fine:?}");
    assert!(
        fine.stdout
            .contains("cron mails reports to ops@example.org"),
        "{fine:?}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &sb.pass()
            .at(T0 + 3660)
            .args(&[
                "--pkg-root",
                &sb.path("root").display().to_string(),
                "--format",
                "json",
                "doctor",
            ])
            .run()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["checks"][1]["check"], "schedule");

    // Cron and an enabled timer: fine when the cron line steps aside (the
    // shipped one), a problem when both would run.
    std::fs::create_dir_all(sb.path("root/etc/systemd/system/timers.target.wants")).unwrap();
    sb.write("root/etc/systemd/system/timers.target.wants/tend.timer", "");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cron.d-tend"),
    )
    .unwrap();
    sb.write("root/etc/cron.d/tend", &shipped);
    let timer = doctor(&sb, T0 + 3660);
    assert_eq!(problems(&timer), ["reports"], "{timer:?}");
    assert!(
        timer.stdout.contains("passes are run by tend.timer ("),
        "{timer:?}"
    );
    assert!(
        timer.stdout.contains(
            "passes run by tend.timer print to the journal only, and the policy has no channel"
        ),
        "{timer:?}"
    );
    sb.write(
        "root/etc/cron.d/tend",
        "MAILTO=ops@example.org\n*/5 * * * * root /usr/sbin/tend --splay 60\n",
    );
    let both = doctor(&sb, T0 + 3660);
    assert_eq!(problems(&both), ["schedule"], "{both:?}");
    // The package's line kept beside the admin's (dpkg's --force-confold):
    // cron skips it, and its stepping aside is not the admin's line's.
    sb.write("root/etc/cron.d/tend.dpkg-dist", &shipped);
    let kept = doctor(&sb, T0 + 3660);
    assert!(
        kept.stdout
            .contains("PROBLEM schedule passes are run by both cron and tend.timer: keep one\n"),
        "{kept:?}"
    );
    std::fs::remove_file(sb.path("root/etc/cron.d/tend.dpkg-dist")).unwrap();
    std::fs::remove_file(sb.path("root/etc/systemd/system/timers.target.wants/tend.timer"))
        .unwrap();
    // Two cron entries: said.
    sb.write("root/etc/crontab", "*/5 * * * * root tend\n");
    let twice = doctor(&sb, T0 + 3660);
    assert_eq!(problems(&twice), ["schedule"], "{twice:?}");
    std::fs::remove_file(sb.path("root/etc/crontab")).unwrap();

    // Files cron would skip are no schedule, and are said: a name with a
    // dot (run-parts' rule), one others can write.
    sb.write("root/etc/cron.d/tend.cron", "*/5 * * * * root tend\n");
    let dotted = doctor(&sb, T0 + 3660);
    assert_eq!(problems(&dotted), ["schedule"], "{dotted:?}");
    assert!(
        dotted
            .stdout
            .contains("tend.cron, which runs tend: its name has characters cron skips"),
        "{dotted:?}"
    );
    std::fs::remove_file(sb.path("root/etc/cron.d/tend.cron")).unwrap();
    std::fs::set_permissions(
        sb.path("root/etc/cron.d/tend"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let open = doctor(&sb, T0 + 3660);
    assert!(
        open.stdout
            .contains("which runs tend: writable by others (mode 0666)")
            && open.stdout.contains("no pass is scheduled"),
        "{open:?}"
    );
}

/// Each channel: whether it answered its last delivery, from what the
/// passes remember (doctor sends nothing); the metrics file the schedule's
/// passes write: there and fresh.
#[test]
fn doctor_says_which_channel_failed_and_whether_the_metrics_are_fresh() {
    let sb = Sandbox::new();
    let closed = crate::sandbox::free_port();
    sb.policy(&format!(
        "channel hook {{ webhook \"http://127.0.0.1:{closed}/tend\" }}\n\
         channel script {{ exec \"/bin/true\" }}\n\
         channel quiet {{ exec \"/bin/true\"; events gave_up }}\n\
         service a {{ process \"/a\"; restart \"true\"; grace 1s }}\n"
    ));
    std::fs::create_dir_all(sb.path("root/etc/cron.d")).unwrap();
    sb.write(
        "root/etc/cron.d/tend",
        "*/5 * * * * root /usr/sbin/tend --splay 60 --metrics /var/lib/node/tend.prom\n",
    );
    let before = doctor(&sb, T0);
    // The check's name is not said twice.
    assert!(
        before
            .stdout
            .starts_with("ok      policy   policy.tend is valid (1 service, 3 channels)\n"),
        "{before:?}"
    );
    assert!(
        before.stdout.contains(
            "ok      channel  channel hook: nothing sent yet; `tend notify test` tries it"
        ),
        "{before:?}"
    );
    assert!(
        before.stdout.contains(
            "PROBLEM metrics  no metrics file at /var/lib/node/tend.prom yet: passes write it"
        ),
        "{before:?}"
    );
    // A pass: `a` is down; its events reach the script, not the webhook.
    sb.at(T0, &[]);
    let after = doctor(&sb, T0 + 60);
    let channel_lines: Vec<&str> = after
        .stdout
        .lines()
        .filter(|l| l.contains(" channel "))
        .collect();
    assert_eq!(channel_lines.len(), 3, "{after:?}");
    assert!(
        channel_lines[0].starts_with("PROBLEM channel  channel hook: its last delivery failed (")
            && channel_lines[0].contains("events waiting; `tend notify test` tries it now"),
        "{after:?}"
    );
    assert_eq!(
        channel_lines[1],
        "ok      channel  channel script answered its last delivery"
    );
    assert_eq!(
        channel_lines[2],
        "ok      channel  channel quiet: nothing sent yet; `tend notify test` tries it"
    );
    // The metrics, written a minute ago, then an hour ago.
    std::fs::create_dir_all(sb.path("root/var/lib/node")).unwrap();
    sb.write("root/var/lib/node/tend.prom", "tend_up 1\n");
    let touch = |t: i64| {
        let ok = std::process::Command::new("touch")
            .arg("-d")
            .arg(format!("@{t}"))
            .arg(sb.path("root/var/lib/node/tend.prom"))
            .status()
            .unwrap();
        assert!(ok.success());
    };
    touch(T0);
    let fresh = doctor(&sb, T0 + 60);
    assert!(
        fresh.stdout.contains(
            "ok      metrics  the metrics in /var/lib/node/tend.prom were written 1 min ago"
        ),
        "{fresh:?}"
    );
    touch(T0 - 3600);
    let stale = doctor(&sb, T0 + 60);
    assert!(
        stale.stdout.contains("PROBLEM metrics  the metrics in /var/lib/node/tend.prom are 61 min old: node_exporter serves them as if current"),
        "{stale:?}"
    );
}
