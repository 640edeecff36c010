//! A policy distributed to many hosts: a broken push, a half-copied one, an
//! insecure one; the last good copy; validate, plan and explain for the
//! policy repository; JSON for log shippers.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

use crate::sandbox::{lines, wait_for, Run, Sandbox};

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// A service `id` (named `id` too) whose restart starts `<dir>/<daemon>`.
fn service(id: &str, daemon: &str) -> String {
    format!(
        "service {id} {{\n  process \"@DIR@/{daemon}\"\n  restart \"setsid -f @DIR@/{daemon} 1000\"\n  grace 5s\n}}\n"
    )
}

fn kill_all(sb: &mut Sandbox, daemon: &str) {
    for pid in sb.pids_of(daemon) {
        sb.kill(pid);
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_broken_policy_with_no_good_copy_runs_nothing_exits_2_and_is_said_once_a_day() {
    let sb = Sandbox::new();
    sb.policy("service a { process \"@DIR@/alpha\"; restart \"touch @DIR@/ran\" }\nservice b {\n");
    let first = sb.at(T0, &[]);
    assert_eq!(first.code, 2, "{first:?}");
    let said = lines(&first);
    assert!(
        said[0].starts_with("tend: policy policy.tend is broken: policy.tend:2:11: ")
            && said[0].ends_with(
                "; no last good policy to fall back on, nothing is checked until it is fixed"
            ),
        "{first:?}"
    );
    // The excerpt with its caret follows, for the admin reading the mail.
    assert!(
        said.iter()
            .any(|l| l.trim_start().starts_with('|') && l.trim_end().ends_with('^')),
        "{first:?}"
    );
    assert!(!sb.path("ran").exists());
    // Five minutes later: the same error, not mailed again; still exit 2.
    let again = sb.at(T0 + 300, &[]);
    assert_eq!((again.code, lines(&again)), (2, vec![]), "{again:?}");
    // A day later: said again.
    let day = sb.at(T0 + DAY, &[]);
    assert_eq!(day.code, 2);
    assert_eq!(lines(&day)[0], said[0], "{day:?}");
    // An admin asking always gets the error.
    let dry = sb.at(T0 + DAY + 60, &["--dry-run"]);
    assert_eq!(dry.code, 2);
    assert!(dry.stderr.contains("policy.tend:2:11: error: "), "{dry:?}");
}

#[test]
fn a_broken_policy_enforces_the_last_good_copy_said_once_then_daily_until_fixed() {
    let mut sb = Sandbox::new();
    sb.daemon("alpha");
    let good = service("a", "alpha");
    sb.policy(&good);
    assert_eq!(sb.at(T0, &[]).code, 0);
    assert_eq!(sb.pids_of("alpha").len(), 1);

    // A push with a typo; alpha dies meanwhile.
    sb.policy(&format!(
        "{good}service b {{ process \"@DIR@/beta\"; restrat \"true\" }}\n"
    ));
    kill_all(&mut sb, "alpha");
    let broken = sb.at(T0 + 300, &[]);
    let said = lines(&broken);
    assert!(
        said[0].starts_with("tend: policy policy.tend is broken: policy.tend:6:")
            && said[0].contains(" (and 1 more error); enforcing the last good policy, kept ")
            && said[0].ends_with(" until it is fixed"),
        "{broken:?}"
    );
    assert!(
        said.iter()
            .any(|l| l.contains("error: unknown attribute `restrat`; did you mean `restart`?")),
        "{broken:?}"
    );
    // The good copy is enforced: alpha is back.
    assert!(
        said.iter()
            .any(|l| l.starts_with("a is not running, restarting...")),
        "{broken:?}"
    );
    assert_eq!(broken.code, 0, "{broken:?}");
    assert_eq!(sb.pids_of("alpha").len(), 1);

    // Five minutes later the same error is not mailed again; the copy still
    // does its work (alpha, killed a third time in 10 minutes, flaps).
    kill_all(&mut sb, "alpha");
    let quiet = sb.at(T0 + 600, &[]);
    let said_quiet = lines(&quiet);
    assert!(
        said_quiet[0]
            .starts_with("a is flapping (down again, 3rd restart in 10 min), restarting..."),
        "{quiet:?}"
    );
    assert!(!quiet.stdout.contains("broken"), "{quiet:?}");
    assert_eq!(sb.pids_of("alpha").len(), 1);

    // The admin sees which policy is enforced.
    let dry = sb.at(T0 + 700, &["--dry-run"]);
    assert!(
        dry.stdout
            .starts_with("tend: policy policy.tend is broken: "),
        "{dry:?}"
    );
    assert!(dry.stdout.contains("\na (a): running (pid "), "{dry:?}");
    let status = sb.at(T0 + 700, &["status"]);
    assert!(
        status
            .stdout
            .lines()
            .next()
            .unwrap()
            .contains("enforcing the last good policy"),
        "{status:?}"
    );
    let status = json(&sb.at(T0 + 700, &["status", "--format", "json"]).stdout);
    assert_eq!(status["policy"]["last_good"], true);
    assert_eq!(status["policy"]["path"], "policy.tend");
    assert!(status["policy"]["error"]
        .as_str()
        .unwrap()
        .starts_with("policy.tend:6:"));

    // A day later, said again; a different error, said at once.
    let daily = sb.at(T0 + 300 + DAY, &[]);
    assert_eq!(lines(&daily)[0], said[0], "{daily:?}");
    sb.policy(&format!("{good}service b {{\n"));
    let other = sb.at(T0 + 300 + DAY + 60, &[]);
    assert!(
        lines(&other)[0].starts_with(
            "tend: policy policy.tend is broken: policy.tend:6:11: `service b {` is not closed"
        ),
        "{other:?}"
    );

    // Fixed: said once, then silence.
    sb.policy(&good);
    let fixed = sb.at(T0 + 2 * DAY, &[]);
    let said_fixed = lines(&fixed);
    assert_eq!(said_fixed.len(), 1, "{fixed:?}");
    assert!(
        said_fixed[0].starts_with("tend: policy policy.tend (sha256 ")
            && said_fixed[0].contains(") is good again (broken since "),
        "{fixed:?}"
    );
    assert!(lines(&sb.at(T0 + 2 * DAY + 300, &[])).is_empty());
}

#[test]
fn a_policy_changed_between_passes_is_picked_up_kept_and_named_in_syslog() {
    let sb = Sandbox::new();
    sb.daemon("alpha");
    sb.daemon("beta");
    sb.policy(&service("a", "alpha"));
    assert_eq!(sb.at(T0, &[]).code, 0);
    assert!(sb.pids_of("beta").is_empty());

    sb.policy(&format!(
        "{}{}",
        service("a", "alpha"),
        service("b", "beta")
    ));
    let digest = json(
        &sb.at(T0, &["validate", "policy.tend", "--format", "json"])
            .stdout,
    )["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (socket, socket_path) = sb.syslog();
    let run = sb.tend_env(
        &[],
        &[
            ("TEND_SYSLOG_SOCKET", socket_path.to_str().unwrap()),
            ("TEND_NOW", &(T0 + 300).to_string()),
        ],
    );
    assert_eq!(
        lines(&run)[0],
        "b is not running, restarting...",
        "the new service is enforced: {run:?}"
    );
    assert_eq!(sb.pids_of("beta").len(), 1);
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).unwrap();
    let logged = String::from_utf8_lossy(&buf[..n]);
    assert!(
        logged.ends_with(&format!(
            "tend: enforcing policy policy.tend (sha256 {digest})"
        )),
        "{logged}"
    );
    // The new policy is the last good copy now, readable by root only.
    let manifest =
        json(&std::fs::read_to_string(sb.path("state/policy.good/manifest.json")).unwrap());
    assert_eq!(manifest["digest"], digest.as_str());
    let copy = std::fs::read_to_string(sb.path("state/policy.good/policy.tend")).unwrap();
    assert!(copy.contains("service b {"));
    let mode = |p: &str| std::fs::metadata(sb.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (
            mode("state"),
            mode("state/state.json"),
            mode("state/policy.good/policy.tend")
        ),
        (0o700, 0o600, 0o600)
    );
}

#[test]
fn a_policy_being_written_during_the_read_is_not_used() {
    let sb = Sandbox::new();
    sb.policy("service a { process \"@DIR@/alpha\"; restart \"false\" }\n");
    sb.at(T0, &["status"]); // nothing kept by a status
    assert!(!sb.path("state/policy.good").exists());
    assert_eq!(sb.at(T0, &[]).code, 1);
    assert!(sb.path("state/policy.good").exists());
    // A writer that never finishes: the file changes all the time.
    let mut writer = Command::new("python3")
        .args([
            "-c",
            "import os, sys, time\nwhile True:\n    os.utime(sys.argv[1])\n    time.sleep(0.001)\n",
        ])
        .arg(sb.path("policy.tend"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let modified = || {
        std::fs::metadata(sb.path("policy.tend"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = modified();
    crate::sandbox::wait_for(|| modified() != before);
    let run = sb.at(T0 + 300, &[]);
    let _ = writer.kill();
    let _ = writer.wait();
    let said = lines(&run);
    assert!(
        said[0].starts_with(
            "tend: policy policy.tend changed while it was being read, twice (a copy or checkout in progress?); not using it for this pass; enforcing the last good policy, kept "
        ),
        "{run:?}"
    );
    // Settled: enforced again.
    let settled = sb.at(T0 + 600, &[]);
    assert!(
        lines(&settled)[0].contains(") is good again"),
        "{settled:?}"
    );
}

/// The digest the last pass enforced (state.json) and the last good copy's.
fn enforced_and_kept(sb: &Sandbox) -> (String, String) {
    let state = json(&std::fs::read_to_string(sb.path("state/state.json")).unwrap());
    let kept = json(&std::fs::read_to_string(sb.path("state/policy.good/manifest.json")).unwrap());
    (
        state["policy"].as_str().unwrap().to_string(),
        kept["digest"].as_str().unwrap().to_string(),
    )
}

fn digest_of(sb: &Sandbox) -> String {
    let ok = sb.tend(&["validate"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let line = ok.stdout.lines().last().unwrap().to_string();
    line.rsplit("sha256 ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string()
}

#[test]
fn a_slow_writer_leaves_an_empty_file_and_the_last_good_copy_is_enforced_meanwhile() {
    let mut sb = Sandbox::new();
    sb.daemon("alpha");
    sb.policy(&service("a", "alpha"));
    let full = digest_of(&sb);
    assert_eq!(sb.at(T0, &[]).code, 0);
    std::fs::copy(sb.path("policy.tend"), sb.path("full.tend")).unwrap();
    // A copy that truncates, is slow to start writing, then writes.
    let mut writer = Command::new("sh")
        .args(["-c", "(sleep 2; cat full.tend) > policy.tend"])
        .current_dir(sb.dir())
        .spawn()
        .unwrap();
    let file = sb.path("policy.tend");
    let len = || std::fs::metadata(&file).unwrap().len();
    crate::sandbox::wait_for(|| len() == 0);
    kill_all(&mut sb, "alpha");
    // Past any quiet window: the empty file looks settled.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let gap = sb.at(T0 + 300, &[]);
    let said = lines(&gap);
    assert!(
        said[0].starts_with(
            "tend: policy file policy.tend is empty, where its last good copy was not (being written?); not using it until it is whole, or confirmed with `tend validate --accept-empty`; enforcing the last good policy, kept "
        ) && said[0].ends_with(" until it is fixed"),
        "{gap:?}"
    );
    assert!(
        said.iter().any(|l| l.starts_with("a restarted (pid ")),
        "{gap:?}"
    );
    assert_eq!(sb.pids_of("alpha").len(), 1);
    assert_eq!(enforced_and_kept(&sb), (full.clone(), full.clone()));
    writer.wait().unwrap();
    let whole = sb.at(T0 + 600, &[]);
    assert!(lines(&whole)[0].contains(") is good again"), "{whole:?}");
    assert_eq!(enforced_and_kept(&sb), (full.clone(), full));
}

#[test]
fn a_policy_rewritten_in_a_loop_is_never_enforced_nor_kept_truncated() {
    let mut sb = Sandbox::new();
    sb.daemon("alpha");
    sb.policy(&service("a", "alpha").replace("grace 5s", "grace 5s\n  settle 0s"));
    let full = digest_of(&sb);
    assert_eq!(sb.at(T0, &[]).code, 0);
    // Truncate, wait up to 60 ms, write it whole, wait up to 60 ms; again.
    let mut writer = Command::new("python3")
        .args([
            "-c",
            "import random, sys, time\ntext = open(sys.argv[1]).read()\nwhile True:\n    f = open(sys.argv[1], 'w')\n    f.flush()\n    time.sleep(random.random() * 0.06)\n    f.write(text)\n    f.close()\n    time.sleep(random.random() * 0.06)\n",
        ])
        .arg(sb.path("policy.tend"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut refused = 0;
    for i in 1..=12 {
        kill_all(&mut sb, "alpha");
        let run = sb.at(T0 + 1800 * i, &[]);
        // Every pass enforces the whole policy (its own read or the copy):
        // alpha is back, and nothing but the whole policy is kept. (With
        // `settle 0s` the pass may have seen it as `setsid -f .../alpha`,
        // its command line before the exec: wait for the exec.)
        assert!(
            run.stdout.contains("a restarted (pid "),
            "pass {i}: {run:?}"
        );
        wait_for(|| sb.pids_of("alpha").len() == 1);
        assert_eq!(
            enforced_and_kept(&sb),
            (full.clone(), full.clone()),
            "pass {i}: {run:?}"
        );
        if run.stdout.contains("enforcing the last good policy") {
            refused += 1;
        }
    }
    let _ = writer.kill();
    let _ = writer.wait();
    eprintln!("{refused} of 12 passes fell back on the last good copy");
}

#[test]
fn an_emptied_policy_is_enforced_once_the_admin_accepts_it() {
    let mut sb = Sandbox::new();
    sb.daemon("alpha");
    sb.policy(&service("a", "alpha"));
    assert_eq!(sb.at(T0, &[]).code, 0);
    // The admin empties the policy on purpose: it looks like a copy in
    // progress, so the copy is still enforced, and validate says why.
    sb.policy("# nothing runs here any more\n");
    let check = sb.tend(&["validate"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check.stdout.starts_with("warning: policy policy.tend has no services, where its last good copy had 1 (being written?); "),
        "{check:?}"
    );
    kill_all(&mut sb, "alpha");
    let held = sb.at(T0 + 300, &[]);
    assert!(
        lines(&held)[0].contains("enforcing the last good policy"),
        "{held:?}"
    );
    assert_eq!(sb.pids_of("alpha").len(), 1);
    let accept = sb.tend(&["validate", "--accept-empty"]);
    assert_eq!(accept.code, 0, "{accept:?}");
    assert!(
        accept
            .stdout
            .starts_with("policy.tend: accepted as it is (0 services; sha256 "),
        "{accept:?}"
    );
    kill_all(&mut sb, "alpha");
    let now_empty = sb.at(T0 + 600, &[]);
    assert!(
        lines(&now_empty)[0].contains(") is good again"),
        "{now_empty:?}"
    );
    assert!(sb.pids_of("alpha").is_empty(), "{now_empty:?}");
    let quiet = sb.at(T0 + 900, &[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, vec![]), "{quiet:?}");
}

#[test]
fn as_root_a_policy_others_can_change_is_refused_unless_insecure() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the ownership and mode checks apply only when tend runs as root");
        return;
    }
    let sb = Sandbox::new();
    let policy = sb.policy("service a { process \"@DIR@/alpha\"; restart \"false\" }\n");
    assert_eq!(sb.at(T0, &[]).code, 1, "kept as the last good copy");
    let set_mode =
        |mode| std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(mode)).unwrap();

    set_mode(0o646);
    let open = sb.at(T0 + 300, &[]);
    assert!(
        lines(&open)[0].starts_with(
            "tend: policy file policy.tend is writable by others (mode 0646); refusing it (as root tend reads only a policy that only root can change; --insecure allows it); enforcing the last good policy"
        ),
        "{open:?}"
    );
    let insecure = sb.at(T0 + 600, &["--insecure"]);
    assert!(
        lines(&insecure)[0].contains("is good again"),
        "{insecure:?}"
    );

    set_mode(0o644);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    nix::unistd::chown(&policy, Some(nobody.uid), None).unwrap();
    let owned = sb.at(T0 + 900, &[]);
    assert!(
        lines(&owned)[0]
            .starts_with("tend: policy file policy.tend is owned by nobody, not root; refusing it"),
        "{owned:?}"
    );
    // A policy directory others can write to is refused the same way.
    let dir = sb.path("policy.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("a.tend"),
        "service a { process \"/a\"; restart \"true\" }\n",
    )
    .unwrap();
    std::fs::set_permissions(dir.join("a.tend"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let group = sb.at(T0 + 1200, &["-f", "policy.d", "validate"]);
    assert_eq!(group.code, 2);
    assert!(
        group
            .stderr
            .starts_with("tend: policy directory policy.d is writable by group (mode 0775)"),
        "{group:?}"
    );
}

/// `tend validate` as a policy repository's CI runs it.
fn validate(sb: &Sandbox, args: &[&str]) -> Run {
    let mut all = vec!["validate"];
    all.extend_from_slice(args);
    sb.at(T0, &all)
}

#[test]
fn validate_warns_about_unknown_classes_and_guards_no_host_satisfies_with_json() {
    let sb = Sandbox::new();
    sb.write(
        "a.tend",
        "class web = www1 | hostname(\"web-*\")\nwbe::\n  service apache { process \"/usr/sbin/apache2\"; restart \"true\" }\n",
    );
    sb.write(
        "b.tend",
        "web.!web::\n  service never { process \"/x\"; restart \"true\" }\nlinux.debian_12.web01::\n  service ok { process \"/y\"; restart \"true\" }\n",
    );
    let text = validate(&sb, &["a.tend", "b.tend"]);
    assert_eq!(text.code, 0, "warnings do not fail: {text:?}");
    let out: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        out[0],
        "a.tend:2:1: warning: class `wbe` is never defined by the policy and is not a built-in class; did you mean `web`?"
    );
    assert!(
        text.stdout.contains("b.tend:2:11: warning: service `never` can never apply: no host's classes satisfy its guard `web&!web::`"),
        "{text:?}"
    );
    assert!(
        out.last()
            .unwrap()
            .starts_with("a.tend b.tend: ok (3 services, 1 class, 2 warnings; sha256 "),
        "{text:?}"
    );

    let doc = json(&validate(&sb, &["a.tend", "b.tend", "--format", "json"]).stdout);
    assert_eq!(
        (
            doc["ok"].clone(),
            doc["errors"].clone(),
            doc["warnings"].clone()
        ),
        (true.into(), 0.into(), 2.into())
    );
    assert_eq!(doc["services"], 3);
    let first = &doc["diagnostics"][0];
    assert_eq!(
        (
            first["severity"].as_str(),
            first["file"].as_str(),
            first["line"].as_u64(),
            first["column"].as_u64()
        ),
        (Some("warning"), Some("a.tend"), Some(2), Some(1))
    );
    assert!(first["rendered"].as_str().unwrap().ends_with("| ^^^"));

    // Every error of every file; a service id given in two files is one.
    sb.write(
        "c.tend",
        "service apache { process \"/z\"; restrat \"true\" }\n",
    );
    let doc = json(&validate(&sb, &["a.tend", "c.tend", "--format", "json"]).stdout);
    assert_eq!(doc["ok"], false);
    let messages: Vec<String> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}: {}",
                d["file"].as_str().unwrap(),
                d["line"],
                d["column"],
                d["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        messages.iter().any(
            |m| m.starts_with("c.tend:1:9: service `apache` is already defined at a.tend:3:11")
        ),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("c.tend:1:32: unknown attribute `restrat`")),
        "{messages:?}"
    );
    let failed = validate(&sb, &["a.tend", "c.tend", "--format", "json"]);
    assert_eq!(failed.code, 2);
}

fn plan(host: &str, extra: &[&str]) -> Run {
    let mut cmd = Command::cargo_bin("tend").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-f", "policies/services.tend", "plan", "--host", host])
        .args(extra);
    Run::from(cmd.output().unwrap())
}

#[test]
fn plan_shows_the_seeds_services_for_several_hosts() {
    // The seed: ssh everywhere, LDAP and BIND on web and dns, Apache on web.
    for (host, want) in [
        ("web-01", vec!["ssh", "ldap", "bind", "apache"]),
        // Host names are case-insensitive.
        ("WEB-01", vec!["ssh", "ldap", "bind", "apache"]),
        ("www2.example.com", vec!["ssh", "ldap", "bind", "apache"]),
        ("ns1", vec!["ssh", "ldap", "bind"]),
        ("db1", vec!["ssh"]),
    ] {
        let run = plan(host, &["--os", "debian_12"]);
        assert_eq!(run.code, 0, "{run:?}");
        let applies: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.contains("): applies"))
            .map(|l| l.split(['(', ')']).nth(1).unwrap())
            .collect();
        assert_eq!(applies, want, "{host}: {run:?}");
        let doc = json(&plan(host, &["--os", "debian_12", "--format", "json"]).stdout);
        let applies: Vec<&str> = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["applies"] == true)
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(applies, want, "{host} (json)");
        assert_eq!(doc["os"], "debian_12");
        assert!(doc["classes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "debian_12" && c["kind"] == "hard"));
    }
    // Why: the guard, the class, where it came from.
    let web = plan("web-01", &[]);
    assert!(
        web.stdout.contains(
            "Apache (apache): applies: web:: (web (policy class at policies/services.tend:12:7: www1|www2|hostname(\"web-*\")))"
        ),
        "{web:?}"
    );
    let db = plan("db1", &[]);
    assert!(
        db.stdout.contains("Apache (apache): does not apply: web:: (web off (policy class at policies/services.tend:12:7: "),
        "{db:?}"
    );
    // -D adds a class, as on the host's cron line.
    let forced = json(&plan("db1", &["-D", "web", "--format", "json"]).stdout);
    let apache = &forced["services"].as_array().unwrap()[3];
    assert_eq!(
        (apache["id"].as_str(), apache["applies"].as_bool()),
        (Some("apache"), Some(true))
    );
    assert_eq!(apache["classes"][0]["origin"], "-D on the command line");
}

#[test]
fn explain_says_why_a_service_applies_and_how_it_is_kept() {
    let run = |args: &[&str]| {
        Command::cargo_bin("tend")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["-f", "policies/services.tend", "explain"])
            .args(args)
            .output()
            .unwrap()
    };
    let text = String::from_utf8(run(&["apache", "--host", "www1"]).stdout).unwrap();
    let want = [
        "Apache (apache), at policies/services.tend:44:11",
        "  applies to www1 (",
        "    web (policy class at policies/services.tend:12:7: www1|www2|hostname(\"web-*\"))",
        "  found by: process \"/usr/sbin/apache2\", pidfile /run/apache2/apache2.pid",
        "  when down: /usr/sbin/invoke-rc.d apache2 restart",
    ];
    for (line, want) in text.lines().zip(want) {
        assert!(
            line.starts_with(want),
            "{line:?} should start with {want:?}\n{text}"
        );
    }
    let doc = json(
        &String::from_utf8(run(&["apache", "--host", "db1", "--format", "json"]).stdout).unwrap(),
    );
    assert_eq!(doc["applies"], false);
    assert_eq!(doc["host"], "db1");
    assert_eq!(doc["when_down"], "/usr/sbin/invoke-rc.d apache2 restart");
    assert_eq!(doc["limits"]["restarts"], 5);
    let unknown = run(&["apach"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).starts_with(
            "tend: no service `apach` in policies/services.tend; did you mean `apache`?"
        ),
        "{unknown:?}"
    );
}

#[test]
fn json_reports_are_one_object_per_line_with_the_same_object_in_syslog() {
    let sb = Sandbox::new();
    sb.daemon("alpha");
    sb.policy(&format!(
        "{}service broken {{ process \"@DIR@/nothing\"; restart \"false\" }}\n",
        service("a", "alpha")
    ));
    let (socket, socket_path) = sb.syslog();
    let run = sb.tend_env(
        &["--format", "json"],
        &[
            ("TEND_SYSLOG_SOCKET", socket_path.to_str().unwrap()),
            ("TEND_NOW", &T0.to_string()),
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let events: Vec<serde_json::Value> = run.stdout.lines().map(json).collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["restarting", "restarting", "restarted", "failed"],
        "{run:?}"
    );
    let digest = json(
        &sb.at(T0, &["validate", "policy.tend", "--format", "json"])
            .stdout,
    )["digest"]
        .clone();
    for e in &events {
        for field in [
            "time", "host", "event", "level", "message", "service", "name", "policy",
        ] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
        assert_eq!(e["time"], T0);
        assert_eq!(e["policy"], digest);
    }
    // A first restart: its documented fields are there, null.
    for restarting in events.iter().filter(|e| e["event"] == "restarting") {
        let fields = restarting.as_object().unwrap();
        assert!(
            fields.contains_key("reason") && fields.contains_key("restarts"),
            "{restarting}"
        );
        assert!(restarting["restarts"].is_null(), "{restarting}");
    }
    let restarted = events.iter().find(|e| e["event"] == "restarted").unwrap();
    assert_eq!(restarted["service"], "a");
    assert_eq!(restarted["pid"], sb.pids_of("alpha")[0]);
    let failed = events.iter().find(|e| e["event"] == "failed").unwrap();
    assert_eq!(
        (failed["level"].as_str(), failed["command"].as_str()),
        (Some("error"), Some("false"))
    );
    assert_eq!(failed["failure"], "exited 1");
    // Syslog gets the same objects, after the policy line.
    let mut buf = [0u8; 4096];
    let mut logged = Vec::new();
    while logged.len() < events.len() + 1 {
        let n = socket.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        logged.push(json(&line[line.find('{').unwrap()..]));
    }
    assert_eq!(logged[0]["event"], "policy");
    assert_eq!(&logged[1..], &events[..]);

    // status and classes, as documented.
    let status = json(&sb.at(T0 + 60, &["status", "--format", "json"]).stdout);
    for field in ["policy", "last_run", "pause", "package_manager", "services"] {
        assert!(status.get(field).is_some(), "status has no {field}");
    }
    for field in [
        "id",
        "name",
        "status",
        "since",
        "restarts_in_window",
        "restart_limit",
        "window_seconds",
        "pid",
        "failure",
        "reason",
        "note",
    ] {
        assert!(
            status["services"][0].get(field).is_some(),
            "status service has no {field}"
        );
    }
    let classes = json(
        &sb.at(T0, &["classes", "--format", "json", "-D", "canary"])
            .stdout,
    );
    let canary = classes["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "canary")
        .unwrap();
    assert_eq!(
        (canary["kind"].as_str(), canary["origin"].as_str()),
        (Some("define"), Some("-D on the command line"))
    );
    assert!(classes["off"].is_array());
}

/// The fleet simulation (tests/fleet/simulate) in its short form: ten
/// hosts, each in its own UTS, mount and PID namespaces with its own
/// rsyslogd, a git hub, a central rsyslogd; steady state, daemons killed,
/// a broken push, its fix, a service removed. The script asserts each
/// scenario and exits 1 saying what went wrong.
#[test]
fn a_simulated_fleet_of_ten_hosts() {
    let rsyslogd = std::path::Path::new("/usr/sbin/rsyslogd");
    if !nix::unistd::geteuid().is_root() || !rsyslogd.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and installs rsyslog"
        );
        eprintln!("skipped: the fleet simulation needs root and rsyslog");
        return;
    }
    let tend = assert_cmd::cargo::cargo_bin("tend");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fleet/simulate");
    let out = Command::new("python3")
        .arg(script)
        .args(["--hosts", "10", "--splay", "2", "--tend"])
        .arg(&tend)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("summary: 10 hosts, 80 passes, "),
        "{stdout}"
    );
    assert_eq!(stdout.matches(": ok (").count(), 8, "{stdout}");
}
