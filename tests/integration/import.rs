//! `tend import`: the seed's CFEngine recipe comes to the shipped policy,
//! the seed's Monit configuration and every file Debian's monit ships
//! import and validate with each statement carried or reported, and an
//! imported policy keeps a real process running.

use std::path::{Path, PathBuf};

use crate::sandbox::{Run, Sandbox};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn json(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

/// What a policy says of a host: each service that is in it, whether it
/// applies, its name, its process and what brings it back.
fn seen_by(sb: &Sandbox, policy: &Path, host: &str) -> Vec<(String, String, bool, String, String)> {
    let p = policy.to_str().unwrap();
    let plan = json(&sb.tend(&["-f", p, "plan", "--host", host, "--format", "json"]));
    let mut out = Vec::new();
    for s in plan["services"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap().to_string();
        let about = json(&sb.tend(&["-f", p, "explain", &id, "--host", host, "--format", "json"]));
        let process = about["found_by"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .find(|f| f.starts_with("process "))
            .unwrap_or("")
            .to_string();
        out.push((
            id,
            s["name"].as_str().unwrap().to_string(),
            s["applies"].as_bool().unwrap(),
            process,
            about["when_down"].as_str().unwrap().to_string(),
        ));
    }
    out
}

#[test]
fn the_seed_recipe_comes_to_the_shipped_policy() {
    let sb = Sandbox::new();
    let seed = repo("tests/import/seed.cf");
    let run = sb.tend(&[
        "import",
        "cfengine",
        seed.to_str().unwrap(),
        "-o",
        "imported",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(
        run.stderr,
        "tend import: 4 services carried over, 0 statements left out\n"
    );
    let validated = sb.tend(&["validate", "imported"]);
    assert_eq!(validated.code, 0, "{validated:?}");

    let shipped = repo("policies/services.tend");
    for host in ["web", "dns", "other"] {
        let want = seen_by(&sb, &shipped, host);
        assert_eq!(want.len(), 4);
        assert_eq!(seen_by(&sb, &sb.path("imported"), host), want, "{host}");
    }
    // Printed instead: the same policy, said to be the same file.
    let printed = sb.tend(&["import", "cfengine", seed.to_str().unwrap()]);
    let written = std::fs::read_to_string(sb.path("imported/seed.tend")).unwrap();
    assert_eq!(printed.stdout, written);
    // Written again: the files there are not overwritten.
    let again = sb.tend(&[
        "import",
        "cfengine",
        seed.to_str().unwrap(),
        "-o",
        "imported",
    ]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("is not overwritten"), "{again:?}");
}

#[test]
fn the_seed_monit_configuration_reports_its_file_check() {
    let sb = Sandbox::new();
    let seed = repo("tests/import/seed.monitrc");
    let run = sb.tend(&["import", "monit", seed.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    let place = seed.display();
    for said in [
        format!("tend import: {place}:10: `check file mysql_bin with path /usr/sbin/mysqld`: a `check file` is not carried over"),
        format!("tend import: {place}:8: `depends on mysql_bin`: `mysql_bin` is a `check file`, not carried over"),
        format!("tend import: {place}:6: `if failed host 127.0.0.1 port 3306 protocol mysql with timeout 10 seconds then restart`: protocol mysql: tend checks that the port accepts connections"),
        "tend import: 1 service carried over, 3 statements left out".to_string(),
    ] {
        assert!(run.stderr.contains(&said), "{said}\n{run:?}");
    }
    let service = [
        "  service mysqld {",
        "    pidfile         \"/var/run/mysqld.pid\"  # line 3",
        "    start           \"/usr/bin/systemctl start mysql\"  # line 4",
        "    stop            \"/usr/bin/systemctl stop mysql\"  # line 5",
        "    port            3306  # line 6",
        "    connect_timeout 10s  # line 6",
        "    limit           5 restarts within 10m  # line 7",
    ]
    .join("\n");
    assert!(run.stdout.contains(&service), "{}", run.stdout);
    // Said in place too.
    assert!(run
        .stdout
        .contains(&format!("# tend import: {place}:10: `check file mysql_bin")));
    sb.write("mysql.tend", &run.stdout);
    let validated = sb.tend(&["validate", "mysql.tend"]);
    assert_eq!(validated.code, 0, "{validated:?}");
}

/// Every file Debian's monit package ships as an example: each imports,
/// the policy validates, and each statement is carried (its line named in
/// the policy) or reported (on stderr), or belongs to a check reported
/// whole.
#[test]
fn every_configuration_debian_ships_imports() {
    let dir = Path::new("/etc/monit/conf-available");
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI installs monit");
        eprintln!("skipped: monit is not installed");
        return;
    }
    let sb = Sandbox::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let f = file.to_str().unwrap();
        let run = sb.tend(&["import", "monit", f]);
        assert!(run.code == 0 || run.code == 1, "{f}: {run:?}");
        let name = format!("{}.tend", file.file_name().unwrap().to_string_lossy());
        sb.write(&name, &run.stdout);
        let validated = sb.tend(&["validate", &name]);
        assert_eq!(validated.code, 0, "{f}: {validated:?}\n{}", run.stdout);
        let text = std::fs::read_to_string(file).unwrap();
        let mut skipped = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let reported = run.stderr.contains(&format!("{f}:{n}: "));
            if line.to_lowercase().starts_with("check ") {
                skipped = reported;
            }
            let carried = run.stdout.contains(&format!("# line {n}\n"))
                || run
                    .stdout
                    .contains(&format!("# from {f}:{n} (check process"));
            assert!(
                reported || carried || skipped,
                "{f}:{n}: `{line}` neither carried nor reported\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

/// A monitrc that includes a directory of checks, as Debian's does; the
/// policy it comes to restarts a killed daemon.
#[test]
fn an_imported_policy_restarts_a_killed_daemon() {
    let mut sb = Sandbox::new();
    sb.daemon("d");
    sb.write(
        "start",
        "#!/bin/sh\nsetsid @DIR@/d 1000 </dev/null >/dev/null 2>&1 &\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sb.path("start"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(sb.path("conf-enabled")).unwrap();
    sb.write(
        "monitrc",
        "set daemon 60\nset log /var/log/monit.log\ninclude @DIR@/conf-enabled/*\n",
    );
    sb.write(
        "conf-enabled/d",
        "CHECK PROCESS daemon MATCHING \"^@DIR@/d \"\n  start program = \"@DIR@/start\" with timeout 10 seconds\n  if 3 restarts within 10 cycles then timeout\n",
    );
    let run = sb.tend(&["import", "monit", "monitrc", "-o", "policy"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("monitrc:2: `set log /var/log/monit.log`: tend logs to syslog"),
        "{run:?}"
    );
    let written = std::fs::read_to_string(sb.path("policy/d.tend")).unwrap();
    assert!(
        written.contains("    limit   3 restarts within 10m  # line 3\n"),
        "{written}"
    );

    let pid = sb.start("d");
    let quiet = sb.tend(&["-f", "policy"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""), "{quiet:?}");
    sb.kill(pid);
    let pass = sb.tend(&["-f", "policy"]);
    assert_eq!(pass.code, 0, "{pass:?}");
    let back = sb.pids_of("d");
    assert_eq!(back.len(), 1, "{pass:?}");
    assert_eq!(
        crate::sandbox::lines(&pass),
        vec![
            "daemon is not running, restarting...".to_string(),
            format!("daemon restarted (pid {})", back[0]),
        ]
    );
}
