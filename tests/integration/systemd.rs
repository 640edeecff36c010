//! `unit`: a real systemd (Debian's, as PID 1 of a private PID and mount
//! namespace, with its own /run, /tmp and /var/tmp, tmpfiles masked so the
//! host's /tmp is untouched) runs test units; tend runs inside it (nsenter)
//! and is judged by what it says and by what systemd then says. As root
//! only; torn down by killing that systemd.

use std::process::{Child, Command, Stdio};

use crate::sandbox::{children_of, cmdline, wait_for, Sandbox};

const UNITS: &[(&str, &str)] = &[
    ("tend-test.target", "[Unit]\nDefaultDependencies=no\n"),
    (
        "simple.service",
        "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep 10000\n",
    ),
    (
        "flappy.service",
        "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep 10000\nRestart=always\nRestartSec=4\n",
    ),
    // Exits at once (cleanly: systemd 252 keeps the first failure's Result,
    // so an exit code would hide start-limit-hit) until /run/sb/ok exists;
    // systemd starts it again, twice, then refuses for ten minutes.
    (
        "limited.service",
        "[Unit]\nDefaultDependencies=no\nStartLimitBurst=2\nStartLimitIntervalSec=600\n[Service]\nExecStart=/bin/sh -c '[ -e /run/sb/ok ] && exec /bin/sleep 10000; exit 0'\nRestart=always\nRestartSec=100ms\n",
    ),
    (
        "once.service",
        "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
    ),
    // Says what it reads and why it cannot go on, and exits 3.
    (
        "crashy.service",
        "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sh -c 'echo reading /etc/crashy.conf; echo \"fatal: no key port\" >&2; exit 3'\n",
    ),
    (
        "masked.service",
        "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep 10000\n",
    ),
];

const BOOT: &str = r#"
set -e
sb=$1
# What a test mounts first (overlays over /etc, /usr and /var, say).
if [ -f "$sb/prelude.sh" ]; then . "$sb/prelude.sh"; fi
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system /run/sb
mount --bind "$sb" /run/sb
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
# Its own journal: the host's /var/log/journal would keep what it logs, and
# two systemds booted at once would read each other's lines.
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
# Its own /dev: journald's socket unit links /dev/log, systemd makes
# /dev/initctl; neither may reach the host's.
mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
mknod -m 666 /dev/tty c 5 0
mkdir /dev/shm /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
for u in systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
         systemd-tmpfiles-setup-dev-early.service systemd-tmpfiles-clean.service \
         systemd-tmpfiles-clean.timer; do
  ln -sf /dev/null "/run/systemd/system/$u"
done
cp /run/sb/units/* /run/systemd/system/
export container=tend-test
exec /lib/systemd/systemd --system --unit=tend-test.target
"#;

/// Runs the rest of the command line in /run/sb (nsenter's `--wd` is
/// opened before it enters the mount namespace).
const IN_SB: &[&str] = &["sh", "-c", "cd /run/sb && exec \"$0\" \"$@\""];

/// A systemd booted for this test; killed (and its namespace with it) when
/// dropped.
pub(crate) struct Booted {
    unshare: Child,
    pid: u32,
}

impl Booted {
    pub(crate) fn new(sb: &Sandbox) -> Booted {
        std::fs::create_dir_all(sb.path("units")).unwrap();
        for (name, text) in UNITS {
            sb.write(&format!("units/{name}"), text);
        }
        let unshare = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "sh",
                "-c",
                BOOT,
                "boot",
            ])
            .arg(sb.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut pid = 0;
        wait_for(|| {
            pid = children_of(unshare.id())
                .into_iter()
                .find(|&p| cmdline(p).is_some_and(|c| c.starts_with("/lib/systemd/systemd")))
                .unwrap_or(0);
            pid != 0
        });
        let booted = Booted { unshare, pid };
        wait_for(|| {
            let state = booted.run(&["systemctl", "is-system-running"]);
            state.contains("running") || state.contains("degraded")
        });
        booted
    }

    /// A shell command inside, in /run/sb: (status, stdout and stderr).
    pub(crate) fn sh(&self, script: &str) -> (i32, String) {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-p", "-m"])
            .args(IN_SB)
            .args(["sh", "-c", &format!("exec 2>&1; {script}")])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// A command inside, in /run/sb: its standard output.
    pub(crate) fn run(&self, argv: &[&str]) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-p", "-m"])
            .args(IN_SB)
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A property of a unit (`systemctl show -p KEY --value`).
    pub(crate) fn show(&self, unit: &str, key: &str) -> String {
        self.run(&["systemctl", "show", "-p", key, "--value", unit])
            .trim()
            .to_string()
    }

    /// tend inside, with the sandbox's policy and state: (status, lines).
    fn tend(&self, args: &[&str]) -> (i32, Vec<String>) {
        self.tend_logging(args, "/run/sb/no-syslog")
    }

    /// The same, with syslog at `socket`.
    fn tend_logging(&self, args: &[&str], socket: &str) -> (i32, Vec<String>) {
        // The binary as the sandbox holds it: the booted systemd has its own
        // /tmp, where a checkout (and its target/) may be.
        let tend = "/run/sb/tend";
        let out = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-p", "-m"])
            .args(IN_SB)
            .arg(tend)
            .args([
                "-f",
                "policy.tend",
                "--state-dir",
                "state",
                "--pkg-root",
                "no-pkgmgr",
            ])
            .args(args)
            .env("TEND_SYSLOG_SOCKET", socket)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines = text
            .lines()
            .filter(|l| !l.starts_with("tend: syslog not reached"))
            .map(str::to_string)
            .collect();
        (out.status.code().unwrap_or(-1), lines)
    }
}

/// A sandbox with `policy`, and a systemd booted for it (None, said, when
/// this is not root or systemd is missing). Booted first: it is dropped
/// before the sandbox.
fn boot(policy: &str) -> Option<(Booted, Sandbox)> {
    if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/lib/systemd/systemd").exists() {
        eprintln!("skipped: booting systemd in a namespace needs root and systemd");
        return None;
    }
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("no-pkgmgr")).unwrap();
    let copied = Command::new("cp")
        .arg(assert_cmd::cargo::cargo_bin("tend"))
        .arg(sb.path("tend"))
        .status()
        .unwrap();
    assert!(copied.success());
    sb.policy(policy);
    let systemd = Booted::new(&sb);
    Some((systemd, sb))
}

impl Drop for Booted {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.wait();
    }
}

#[test]
fn units_crashed_restarting_and_stopped() {
    let Some((systemd, sb)) = boot("service simple { unit \"simple.service\"; grace 5s }\nservice flappy { unit \"flappy\"; grace 5s }\n") else {
        return;
    };
    systemd.run(&["systemctl", "start", "simple.service", "flappy.service"]);
    wait_for(|| systemd.show("flappy.service", "ActiveState") == "active");
    let (code, said) = systemd.tend(&[]);
    assert_eq!((code, said), (0, vec![]));

    // Killed, no Restart=: systemd's reason, restarted through the unit,
    // the new main process reported.
    let old = systemd.show("simple.service", "MainPID");
    systemd.run(&["kill", "-9", &old]);
    wait_for(|| systemd.show("simple.service", "ActiveState") == "failed");
    let (_, said) = systemd.tend(&[]);
    let main = systemd.show("simple.service", "MainPID");
    assert_ne!(main, old);
    assert_eq!(
        said,
        vec![
            "simple is not running (simple.service failed (signal SIGKILL)), restarting..."
                .to_string(),
            format!("simple restarted (pid {main})"),
        ]
    );

    // Killed with Restart=always: systemd restarts it; tend waits, silently,
    // and does not restart it a second time.
    let old = systemd.show("flappy.service", "MainPID");
    systemd.run(&["kill", "-9", &old]);
    wait_for(|| systemd.show("flappy.service", "SubState") == "auto-restart");
    let (_, said) = systemd.tend(&[]);
    assert_eq!(said, Vec::<String>::new());
    wait_for(|| systemd.show("flappy.service", "ActiveState") == "active");
    assert_eq!(systemd.show("flappy.service", "NRestarts"), "1");
    let (code, said) = systemd.tend(&[]);
    assert_eq!((code, said), (0, vec![]));

    // `systemctl stop`: by default said and started again ...
    systemd.run(&["systemctl", "stop", "simple.service"]);
    let (_, said) = systemd.tend(&[]);
    let main = systemd.show("simple.service", "MainPID");
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].starts_with("simple is not running (simple.service is stopped), restarting..."),
        "{said:?}"
    );
    assert_eq!(said[1], format!("simple restarted (pid {main})"));
    // ... with `when stopped report`, said once and left stopped.
    sb.policy(
        "defaults { when stopped report }\nservice simple { unit \"simple.service\"; grace 5s }\n",
    );
    systemd.run(&["systemctl", "stop", "simple.service"]);
    let (_, said) = systemd.tend(&[]);
    assert_eq!(
        said,
        vec!["simple: simple.service is stopped; leaving it stopped".to_string()]
    );
    let (_, said) = systemd.tend(&[]);
    assert_eq!(said, Vec::<String>::new());
    assert_eq!(systemd.show("simple.service", "ActiveState"), "inactive");
}

#[test]
fn a_unit_past_its_start_limit_is_reset_and_restarted() {
    let Some((systemd, sb)) = boot("service limited { unit \"limited.service\"; grace 5s }\n")
    else {
        return;
    };
    systemd.run(&["systemctl", "start", "limited.service"]);
    wait_for(|| systemd.show("limited.service", "Result") == "start-limit-hit");
    assert_eq!(systemd.show("limited.service", "ActiveState"), "failed");
    // The cause is fixed, yet systemd itself refuses a plain restart ...
    sb.write("ok", "");
    systemd.run(&["systemctl", "restart", "limited.service"]);
    assert_eq!(systemd.show("limited.service", "ActiveState"), "failed");

    // ... and tend resets the limit and starts it.
    let (code, said) = systemd.tend(&[]);
    let main = systemd.show("limited.service", "MainPID");
    assert_eq!(systemd.show("limited.service", "ActiveState"), "active");
    assert_eq!(
        (code, said),
        (
            0,
            vec![
                "limited is not running (limited.service failed (start-limit-hit)), restarting..."
                    .to_string(),
                format!("limited restarted (pid {main})"),
            ]
        )
    );
    let (code, said) = systemd.tend(&[]);
    assert_eq!((code, said), (0, vec![]));
}

/// On a host with journald and no rsyslog, tend's events reach the
/// journal through its syslog socket (as /dev/log is there), under the
/// identifier `tend`: `journalctl -t tend -o cat` prints exactly what the
/// pass printed, one JSON object a line (docs/fleet.md, examples/journald).
#[test]
fn json_events_land_in_the_journal() {
    let Some((systemd, _sb)) = boot("service simple { unit \"simple.service\"; grace 5s }\n")
    else {
        return;
    };
    systemd.run(&[
        "systemctl",
        "start",
        "systemd-journald.service",
        "simple.service",
    ]);
    let socket = "/run/systemd/journal/dev-log";
    wait_for(|| {
        systemd.run(&["test", "-S", socket]).is_empty() && {
            systemd.show("systemd-journald.service", "ActiveState") == "active"
        }
    });
    let old = systemd.show("simple.service", "MainPID");
    systemd.run(&["kill", "-9", &old]);
    wait_for(|| systemd.show("simple.service", "ActiveState") == "failed");
    let (code, said) = systemd.tend_logging(&["--format", "json"], socket);
    assert_eq!(code, 0, "{said:?}");
    let events: Vec<serde_json::Value> = said
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["restarting", "restarted"], "{said:?}");
    let mut journal = Vec::new();
    wait_for(|| {
        journal = systemd
            .run(&["journalctl", "-t", "tend", "-o", "cat", "--no-pager"])
            .lines()
            .map(str::to_string)
            .collect();
        journal.len() >= 3
    });
    // The policy enforced (syslog only), then the two events as printed.
    assert_eq!(journal.len(), 3, "{journal:?}");
    assert!(journal[0].contains(r#""event":"policy""#), "{journal:?}");
    assert_eq!(journal[1..], said[..]);
}

/// The host's /dev/log and /dev/initctl as they are: what each is (a
/// socket, a FIFO, a symlink and where to), or absent.
fn host_dev() -> Vec<String> {
    ["/dev/log", "/dev/initctl"]
        .iter()
        .map(|p| match std::fs::symlink_metadata(p) {
            Err(_) => format!("{p}: absent"),
            Ok(m) if m.file_type().is_symlink() => {
                format!("{p} -> {:?}", std::fs::read_link(p).unwrap())
            }
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                format!("{p}: mode {:o} inode {}", m.mode(), m.ino())
            }
        })
        .collect()
}

/// A oneshot unit that remains active has no main process: restarted, with
/// no pid. A masked unit is an admin's "never run": said once, left so.
/// systemd not answering is not "down": tend waits, says nothing, and
/// restarts nothing. The booted systemd, journald's socket included, leaves
/// the host's /dev as it was.
#[test]
fn oneshot_masked_and_a_systemd_that_does_not_answer() {
    let before = host_dev();
    {
        let Some((systemd, sb)) = boot(
            "service once { unit \"once\"; grace 5s }\nservice masked { unit \"masked\"; grace 5s }\nservice simple { unit \"simple\"; grace 5s }\n",
        ) else {
            return;
        };
        systemd.run(&[
            "systemctl",
            "start",
            "once.service",
            "simple.service",
            "systemd-journald.socket",
        ]);
        // Masked under /run, the namespace's own (`systemctl mask` would
        // write the host's /etc; the unit itself is in /run).
        systemd.run(&[
            "sh",
            "-c",
            "ln -sf /dev/null /run/systemd/system/masked.service && systemctl daemon-reload",
        ]);
        wait_for(|| systemd.show("masked.service", "LoadState") == "masked");
        let (_, said) = systemd.tend(&[]);
        assert_eq!(
            said,
            vec!["masked: masked.service is masked; leaving it stopped".to_string()]
        );
        let (_, said) = systemd.tend(&[]);
        assert_eq!(said, Vec::<String>::new());
        assert_eq!(systemd.show("masked.service", "ActiveState"), "inactive");

        systemd.run(&["systemctl", "stop", "once.service"]);
        let (_, said) = systemd.tend(&["--format", "json"]);
        let events: Vec<serde_json::Value> = said
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["service"] == "once")
            .collect();
        assert_eq!(events.len(), 2, "{said:?}");
        assert_eq!(events[1]["event"], "restarted", "{said:?}");
        assert!(events[1].get("pid").is_none(), "{said:?}");
        assert_eq!(systemd.show("once.service", "ActiveState"), "active");
        systemd.run(&["systemctl", "stop", "once.service"]);
        let (_, said) = systemd.tend(&[]);
        assert_eq!(said[1], "once restarted", "{said:?}");

        // systemd stopped for a moment (a long daemon-reload, a loaded
        // host): nothing is restarted, nothing said, nothing "running again".
        sb.policy("service simple { unit \"simple\"; grace 5s }\n");
        let main = systemd.show("simple.service", "MainPID");
        let pid1 = nix::unistd::Pid::from_raw(systemd.pid as i32);
        nix::sys::signal::kill(pid1, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let (code, said) = systemd.tend(&[]);
        nix::sys::signal::kill(pid1, nix::sys::signal::Signal::SIGCONT).unwrap();
        assert_eq!((code, said), (1, vec![]));
        let (code, said) = systemd.tend(&[]);
        assert_eq!((code, said), (0, vec![]));
        assert_eq!(systemd.show("simple.service", "MainPID"), main);
        let dry = systemd.tend(&["--dry-run"]).1.join("\n");
        assert!(dry.contains("simple (simple): running"), "{dry}");
    }
    assert_eq!(
        host_dev(),
        before,
        "the booted systemd changed the host's /dev"
    );
}

/// A unit that exits with an error: the report that it died, and that
/// tend's restart failed, carries systemd's result and the failed
/// invocation's own journal lines.
#[test]
fn a_failed_unit_is_reported_with_its_journal_lines() {
    // grace 10s: the failed restart is said as soon as the unit failed
    // again, not when grace is over.
    let Some((systemd, _sb)) = boot("service crashy { unit \"crashy.service\"; grace 10s }\n")
    else {
        return;
    };
    systemd.run(&["systemctl", "start", "systemd-journald.service"]);
    wait_for(|| systemd.show("systemd-journald.service", "ActiveState") == "active");
    systemd.run(&["systemctl", "start", "crashy.service"]);
    wait_for(|| systemd.show("crashy.service", "ActiveState") == "failed");
    // Its lines are in the journal before tend looks.
    wait_for(|| {
        systemd
            .run(&[
                "journalctl",
                "-u",
                "crashy.service",
                "-o",
                "cat",
                "--no-pager",
            ])
            .contains("fatal: no key port")
    });
    let (code, said) = systemd.tend(&[]);
    assert_eq!(code, 1, "{said:?}");
    let words = [
        "  last lines of the journal of crashy.service:",
        "  | reading /etc/crashy.conf",
        "  | fatal: no key port",
    ];
    assert_eq!(
        said[0],
        "crashy is not running (crashy.service failed (exit code 3)), restarting..."
    );
    assert_eq!(said[1..3], words[..2], "{said:?}");
    assert!(said[3..].iter().any(|l| l == words[2]), "{said:?}");
    let failed = said
        .iter()
        .position(|l| l.starts_with("crashy failed to start!"))
        .unwrap_or_else(|| panic!("{said:?}"));
    // Said as soon as the unit failed again, with systemd's reason, not as
    // a process that did not appear within grace (10 s).
    assert_eq!(
        said[failed],
        "crashy failed to start! systemctl restart crashy.service exited 0, but crashy.service failed (exit code 3)"
    );
    assert!(said[failed + 1..].iter().any(|l| l == words[0]), "{said:?}");
}

/// The shipped timer runs a pass in a booted systemd, and the shipped cron
/// line steps aside there (tend.timer is enabled); on this host, where
/// systemd is not PID 1, the same cron line runs the pass.
#[test]
fn the_timer_runs_passes_and_the_cron_line_steps_aside_for_it() {
    let Some((systemd, sb)) = boot("service once { unit \"once.service\" }\n") else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tend_here = "/run/sb/tend -f /run/sb/policy.tend --state-dir /run/sb/state --pkg-root /run/sb/no-pkgmgr";
    let service = std::fs::read_to_string(root.join("examples/systemd/tend.service"))
        .unwrap()
        .replace(
            "ExecStart=/usr/local/sbin/tend",
            &format!("ExecStart={tend_here}"),
        );
    let timer = std::fs::read_to_string(root.join("examples/systemd/tend.timer")).unwrap();
    sb.write("tend.service", &service);
    sb.write("tend.timer", &timer);
    systemd.run(&[
        "cp",
        "/run/sb/tend.service",
        "/run/sb/tend.timer",
        "/run/systemd/system/",
    ]);
    systemd.run(&["systemctl", "daemon-reload"]);
    // --runtime: the link goes to the private /run, not the host's /etc.
    systemd.run(&["systemctl", "enable", "--runtime", "--now", "tend.timer"]);
    assert_eq!(systemd.show("tend.timer", "ActiveState"), "active");
    // What the timer starts: a pass (its state written).
    systemd.run(&["systemctl", "start", "tend.service"]);
    wait_for(|| sb.path("state/state.json").exists());
    let ran = std::fs::read_to_string(sb.path("state/state.json")).unwrap();
    // The cron line's command, as cron would run it with sh.
    let cron = std::fs::read_to_string(root.join("examples/cron.d-tend")).unwrap();
    let line = cron
        .lines()
        .find(|l| l.starts_with("*/5"))
        .expect("the cron line");
    let command = line.splitn(7, ' ').nth(6).unwrap().replace(
        "/usr/local/sbin/tend --splay 60",
        &format!("{tend_here} --splay 0"),
    );
    // Under systemd with the timer enabled: steps aside, no pass.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    systemd.run(&["sh", "-c", &command]);
    assert_eq!(
        std::fs::read_to_string(sb.path("state/state.json")).unwrap(),
        ran,
        "the cron line ran a pass beside the timer"
    );
    drop(systemd);
    // On this host (no /run/systemd/system): the cron line runs the pass.
    if !std::path::Path::new("/run/systemd/system").exists() {
        let host_command = command.replace("/run/sb/", &format!("{}/", sb.dir().display()));
        let status = std::process::Command::new("sh")
            .args(["-c", &host_command])
            .env("TEND_SYSLOG_SOCKET", sb.path("no-syslog"))
            .status()
            .unwrap();
        assert!(status.code().is_some());
        let after = std::fs::read_to_string(sb.path("state/state.json")).unwrap();
        assert_ne!(
            after, ran,
            "the cron line ran no pass on a host without systemd"
        );
    }
}
