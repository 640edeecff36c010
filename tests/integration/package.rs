//! The packages `examples/packaging/build` makes, installed for real: the
//! .deb with dpkg and apt into this host's own /etc, /usr and /var seen
//! through overlays (so the host is left as it was), under a booted systemd
//! (as in `systemd.rs`); the .rpm with rpm the same way. Skipped, said, when
//! no package was built (`.ci/run` builds them and sets
//! TEND_REQUIRE_PACKAGES=1, so there they must be).

use std::path::PathBuf;

use crate::sandbox::{wait_for, Sandbox};
use crate::systemd::Booted;

/// Overlays over /etc, /usr and /var, their upper layers in the sandbox:
/// what the package manager writes lands there, not on the host.
const OVERLAYS: &str = r#"
for d in etc usr var; do
  mkdir -p "$sb/layers/$d" "$sb/layers/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$sb/layers/$d,workdir=$sb/layers/$d.work" "/$d"
done
"#;

/// The newest package of `kind` ("debian/*.deb", "generate-rpm/*.rpm"), or
/// None (said) when none was built and none is required.
fn package(dir: &str, ext: &str) -> Option<PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(dir);
    let newest = std::fs::read_dir(&root).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
    });
    let usable = nix::unistd::geteuid().is_root()
        && std::path::Path::new("/lib/systemd/systemd").exists()
        && which("unshare");
    match newest {
        Some(p) if usable => Some(p),
        _ if std::env::var_os("TEND_REQUIRE_PACKAGES").is_some() => {
            panic!("no .{ext} in {} (run examples/packaging/build), or not root with systemd and unshare", root.display())
        }
        _ => {
            eprintln!("skipped: no .{ext} built (examples/packaging/build), or not root");
            None
        }
    }
}

/// What `argv` and then `file` print.
fn query(argv: &[&str], file: &std::path::Path) -> String {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn which(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `script` inside; panics with what it said unless it exits 0.
fn ok(systemd: &Booted, script: &str) -> String {
    let (code, out) = systemd.sh(script);
    assert_eq!(code, 0, "{script}\n{out}");
    out
}

/// What is left in the overlays' upper layers whose path names tend, other
/// than the package managers' own records and logs.
fn leftovers(sb: &Sandbox) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(sb.path("layers"))
        .output()
        .unwrap();
    let prefix = format!("{}/", sb.path("layers").display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|p| p.contains("tend"))
        .filter(|p| {
            ![
                "var/log/",
                "var/lib/dpkg/",
                "var/lib/apt/",
                "var/cache/",
                "var/lib/rpm",
            ]
            .iter()
            .any(|skip| p.starts_with(skip))
        })
        .map(str::to_string)
        .collect()
}

/// The .deb: lintian finds no error; installed where policy-rc.d forbids
/// starting, it enables the timer but starts nothing; tend, its man pages
/// and completions work; the timer's pass runs and the cron line steps
/// aside; a daemon a pass starts outlives the pass; an upgrade keeps the
/// admin's policy (and a changed starter lands beside it); remove keeps the
/// policy, the state and the daemons; purge leaves nothing.
#[test]
fn the_deb_installs_runs_upgrades_and_purges() {
    let Some(deb) = package("debian", "deb") else {
        return;
    };
    if which("lintian") {
        let lintian = std::process::Command::new("lintian")
            .args(["--fail-on", "error"])
            .arg(&deb)
            .output()
            .unwrap();
        assert!(
            lintian.status.success(),
            "lintian: {}",
            String::from_utf8_lossy(&lintian.stdout)
        );
    } else if std::env::var_os("TEND_REQUIRE_PACKAGES").is_some() {
        panic!("lintian is not installed");
    }
    let sb = Sandbox::new();
    std::fs::copy(&deb, sb.path("tend_1.deb")).unwrap();
    sb.write("prelude.sh", OVERLAYS);
    sb.daemon("napper");
    let systemd = Booted::new(&sb);
    // Newer builds of the same package: one whose starter policy is the
    // same, one whose starter changed.
    ok(
        &systemd,
        "dpkg-deb -R tend_1.deb v && sed -i 's/^Version: .*/Version: 99.0.0-1/' v/DEBIAN/control \
         && dpkg-deb -b v tend_2.deb >/dev/null \
         && sed -i 's/^Version: .*/Version: 99.0.1-1/' v/DEBIAN/control \
         && echo '# a line the next release added' >> v/etc/tend/services.tend \
         && dpkg-deb -b v tend_3.deb >/dev/null",
    );

    // Installed where policy-rc.d forbids starting services (a chroot, a
    // container being built): the timer is enabled, nothing is started.
    ok(
        &systemd,
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
    );
    ok(&systemd, "dpkg -i tend_1.deb </dev/null");
    assert_eq!(systemd.show("tend.timer", "UnitFileState"), "enabled");
    assert_eq!(systemd.show("tend.timer", "ActiveState"), "inactive");
    assert_eq!(systemd.show("tend.service", "ActiveState"), "inactive");
    assert_eq!(
        ok(&systemd, "stat -c %a:%U /var/lib/tend").trim(),
        "700:root"
    );

    // What an admin types first.
    let validate = ok(&systemd, "tend validate");
    assert!(
        validate.starts_with("/etc/tend: ok (0 services, 0 classes; sha256 "),
        "{validate}"
    );
    let dry = ok(&systemd, "tend --dry-run");
    assert!(
        dry.contains("no service in /etc/tend applies to this host"),
        "{dry}"
    );
    let doctor = systemd.sh("tend doctor").1;
    assert!(
        doctor.contains("passes are run by tend.timer (/etc/cron.d/tend steps aside for it)"),
        "{doctor}"
    );
    assert!(doctor.contains("apt"), "{doctor}");
    let man = ok(&systemd, "MANPAGER=cat MANWIDTH=80 man tend 2>/dev/null");
    assert!(man.contains("EXAMPLES") && man.contains("FILES"), "{man}");
    let man5 = ok(
        &systemd,
        "MANPAGER=cat MANWIDTH=80 man 5 tend.tend 2>/dev/null",
    );
    assert!(man5.contains("restart"), "{man5}");
    let completion = ok(
        &systemd,
        "bash -c '. /usr/share/bash-completion/completions/tend && complete -p tend'",
    );
    assert!(completion.contains("tend"), "{completion}");
    assert!(ok(&systemd, "apt-config dump").contains("tend pause --by apt"));

    // The timer's pass: it runs with the package's policy and state; the
    // cron line, as cron runs it, steps aside.
    systemd.run(&["systemctl", "start", "tend.service"]);
    wait_for(|| systemd.sh("test -s /var/lib/tend/state.json").0 == 0);
    let state = ok(&systemd, "cat /var/lib/tend/state.json");
    let cron = ok(
        &systemd,
        "sed -n 's/^\\*\\/5 \\* \\* \\* \\* root //p' /etc/cron.d/tend",
    );
    assert!(cron.trim().ends_with("/usr/sbin/tend --splay 60"), "{cron}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(&systemd, &format!("{} ; true", cron.trim()));
    assert_eq!(ok(&systemd, "cat /var/lib/tend/state.json"), state);

    // The admin's policy: a daemon its restart command starts itself. The
    // pass ends; the daemon lives on (KillMode=process).
    let napper = sb.path("napper");
    let napper = napper
        .to_str()
        .unwrap()
        .replace(&sb.dir().display().to_string(), "/run/sb");
    let policy = format!(
        "any::\n  service napper {{\n    process \"{napper} 4242\"\n    restart \"sh -c '{napper} 4242 </dev/null >/dev/null 2>&1 &'\"\n  }}\n"
    );
    ok(
        &systemd,
        &format!("cat > /etc/tend/services.tend <<'EOF'\n{policy}EOF"),
    );
    systemd.run(&["systemctl", "start", "tend.service"]);
    let said = ok(&systemd, "journalctl -u tend.service -o cat --no-pager");
    assert!(
        said.contains("napper is not running, restarting..."),
        "{said}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(systemd.show("tend.service", "ActiveState"), "inactive");
    let alive = ok(&systemd, "pgrep -x napper || true");
    assert!(
        !alive.trim().is_empty(),
        "the daemon died with the pass: {said}"
    );

    // An upgrade where services may be started: the edited policy is kept,
    // the timer started.
    ok(&systemd, "rm /usr/sbin/policy-rc.d");
    ok(&systemd, "dpkg -i tend_2.deb </dev/null");
    assert_eq!(ok(&systemd, "cat /etc/tend/services.tend"), policy);
    assert_eq!(systemd.show("tend.timer", "ActiveState"), "active");
    // The next release changed the starter policy: the admin's stays, the
    // new one lands beside it, as apt does with --force-confold.
    ok(&systemd, "dpkg -i --force-confold tend_3.deb </dev/null");
    assert_eq!(ok(&systemd, "cat /etc/tend/services.tend"), policy);
    assert!(ok(&systemd, "cat /etc/tend/services.tend.dpkg-dist")
        .contains("a line the next release added"));

    // Remove: the timer stops, the policy and state stay, and the daemon
    // tend restarted keeps running.
    ok(
        &systemd,
        "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq tend </dev/null",
    );
    assert_eq!(systemd.show("tend.timer", "ActiveState"), "inactive");
    assert_eq!(systemd.sh("test -e /usr/sbin/tend").0, 1);
    assert_eq!(ok(&systemd, "cat /etc/tend/services.tend"), policy);
    ok(&systemd, "test -s /var/lib/tend/state.json");
    assert!(!ok(&systemd, "pgrep -x napper || true").trim().is_empty());
    ok(&systemd, "pkill -x napper || true");

    // Purge: nothing is left but the package managers' own records.
    ok(
        &systemd,
        "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tend </dev/null",
    );
    assert_eq!(systemd.show("tend.timer", "LoadState"), "not-found");
    assert_eq!(systemd.sh("test -e /usr/sbin/tend").0, 1);
    drop(systemd);
    assert_eq!(leftovers(&sb), Vec::<String>::new());
}

/// The .rpm holds the .deb's layout (and the dnf and yum plugins), and
/// installs and erases with rpm, its scriptlets run for real.
#[test]
fn the_rpm_has_the_same_layout_and_installs() {
    let Some(rpm) = package("generate-rpm", "rpm") else {
        return;
    };
    if !which("rpm") {
        assert!(
            std::env::var_os("TEND_REQUIRE_PACKAGES").is_none(),
            "rpm is not installed"
        );
        eprintln!("skipped: no rpm here");
        return;
    }
    let files = query(&["rpm", "-qlp"], &rpm);
    // The .deb's files, where Debian and the .rpm's distributions agree on
    // the place: the same in the .rpm.
    if let Some(deb) = package("debian", "deb") {
        let listed = std::process::Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$0\" | tar t")
            .arg(&deb)
            .output()
            .unwrap();
        let debian_only = [
            "./etc/apt/",
            "./usr/share/doc/tend/copyright",
            "./usr/share/doc/tend/changelog.Debian.gz",
        ];
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            if line.ends_with('/') || debian_only.iter().any(|d| line.starts_with(d)) {
                continue;
            }
            let path = line.trim_start_matches('.').replace(
                "/usr/share/zsh/vendor-completions/",
                "/usr/share/zsh/site-functions/",
            );
            assert!(
                files.lines().any(|l| l == path),
                "{path} of the .deb is not in the .rpm:\n{files}"
            );
        }
    }
    for path in [
        "/usr/sbin/tend",
        "/usr/share/man/man8/tend.8.gz",
        "/usr/share/man/man5/tend.tend.5.gz",
        "/etc/tend/services.tend",
        "/etc/cron.d/tend",
        "/usr/lib/systemd/system/tend.service",
        "/usr/lib/systemd/system/tend.timer",
        "/etc/dnf/plugins/tend.conf",
        "/etc/dnf/libdnf5-plugins/actions.d/tend.actions",
        "/usr/lib/yum-plugins/tend.py",
    ] {
        assert!(files.lines().any(|l| l == path), "{path} not in\n{files}");
    }
    let configs = query(&["rpm", "-qcp"], &rpm);
    assert!(
        configs.lines().any(|l| l == "/etc/tend/services.tend"),
        "{configs}"
    );

    // Installed into this host's root seen through overlays (rpm --root
    // would need a shell inside the root to run the scriptlets), where a
    // dnf's plugin directory exists.
    let sb = Sandbox::new();
    std::fs::copy(&rpm, sb.path("tend.rpm")).unwrap();
    let script = format!(
        "{OVERLAYS}
set -x
mkdir -p /usr/lib/python3.99/site-packages/dnf-plugins
rpm -i --nodeps --nosignature tend.rpm
stat -c %a /var/lib/tend
readlink /usr/lib/python3.99/site-packages/dnf-plugins/tend.py
/usr/sbin/tend validate
rpm -e --nodeps tend
test ! -e /usr/sbin/tend && test ! -e /usr/lib/python3.99/site-packages/dnf-plugins/tend.py && echo erased
"
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--mount-proc", "sh", "-ec"])
        .arg(format!(
            "sb={}; cd \"$sb\"; mount -t tmpfs tmpfs /run; {script}",
            sb.dir().display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let trace = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}\n{trace}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines[0], "700", "{said}");
    assert_eq!(lines[1], "/usr/share/tend/dnf-plugins/tend.py", "{said}");
    assert!(lines[2].starts_with("/etc/tend: ok (0 services"), "{said}");
    assert_eq!(lines[3], "erased", "{said}");
}
