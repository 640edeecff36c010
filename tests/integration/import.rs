//! `tend import`: the seed's CFEngine recipe comes to the shipped policy,
//! the seed's Monit configuration and every file Debian's monit ships
//! import and validate with each statement carried or reported, and an
//! imported policy keeps a real process running.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::sandbox::{Run, Sandbox};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The services Monit itself reads in `file` (`monit -t -v`, its own
/// parser as the oracle), as `(kind, name)`: `("Process", "sshd")`. None
/// when monit is not installed (CI installs it) or refuses the file on
/// this host. Its id and state files are the sandbox's, not root's.
fn monit_reads(sb: &Sandbox, file: &Path) -> Option<Vec<(String, String)>> {
    if !Path::new("/usr/bin/monit").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI installs monit");
        return None;
    }
    let rc = sb.write(
        "oracle.monitrc",
        &format!(
            "set idfile {0}/monit.id\nset statefile {0}/monit.state\ninclude {1}\n",
            sb.dir().display(),
            file.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("monit")
        .arg("-c")
        .arg(&rc)
        .args(["-t", "-v"])
        .env("HOME", sb.dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // What it names is not on this host (Debian's cron check wants a
        // `crontab` group): no oracle for that file here.
        eprintln!("monit refuses {} on this host: {out:?}", file.display());
        return None;
    }
    // Monit adds a `check system HOSTNAME` of its own when none is written.
    let own = !std::fs::read_to_string(file)
        .unwrap()
        .to_lowercase()
        .contains("check system");
    Some(
        text.lines()
            .filter_map(|l| {
                let (kind, name) = l.split_once(" Name")?;
                let name = name.trim_start().strip_prefix("= ")?;
                (!(kind.starts_with(' ') || own && kind == "System"))
                    .then(|| (kind.to_string(), name.trim().to_string()))
            })
            .collect(),
    )
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
        format!("tend import: {place}:7: `if 5 restarts within 5 cycles then timeout`: carried as `limit 5 restarts within 30m then give up`: at one restart a pass (cron's 5 minutes) 5 restarts never fall within 10m (5 cycles of 120 s), and tend would restart a crash-looping service forever; it gives up after 5 failed restarts, about 25m (Monit: about 10m)"),
        "tend import: 1 service carried over, 3 statements left out, 1 carried with a changed meaning".to_string(),
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
        "    limit           5 restarts within 30m then give up  # line 7",
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
    let mut written = Vec::new();
    let mut oracles = 0;
    for file in &files {
        let f = file.to_str().unwrap();
        let run = sb.tend(&["import", "monit", f]);
        assert!(run.code == 0 || run.code == 1, "{f}: {run:?}");
        let name = format!("{}.tend", file.file_name().unwrap().to_string_lossy());
        sb.write(&name, &run.stdout);
        written.push((name, run.stdout.clone()));
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
        // Each service Monit reads there is a tend service, or said.
        let oracle = monit_reads(&sb, file);
        oracles += usize::from(oracle.is_some());
        for (kind, name) in oracle.unwrap_or_default() {
            let check = format!("check {} {name}", kind.to_lowercase());
            let carried = run.stdout.contains(&format!("(check process {name})"));
            assert!(
                carried || run.stderr.contains(&format!("`{check}")),
                "{f}: Monit's `{check}` neither carried nor said\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
    validates(&sb, &written);
    if Path::new("/usr/bin/monit").exists() {
        assert!(
            oracles * 2 >= files.len(),
            "Monit read {oracles} of {files:?}"
        );
    }
}

/// Each policy written validates. Checked after all are written: a file
/// changed in the last moment is read again after a pause, as a copy that
/// may be in progress.
fn validates(sb: &Sandbox, written: &[(String, String)]) {
    for (name, text) in written {
        let validated = sb.tend(&["validate", name]);
        assert_eq!(validated.code, 0, "{name}: {validated:?}\n{text}");
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
        written.contains("    limit   3 restarts within 20m then give up  # line 3\n"),
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

/// What Monit accepts and tend import once shredded or dropped: a start
/// program without `=`, a test over several lines, `type tcpssl`, `total
/// memory`, two restart limits, `if not exist`, secrets: every meaning
/// kept, or said where it changed (exit 1), no secret in any output.
#[test]
fn a_monitrc_keeps_its_meaning_or_says_where_it_changed() {
    let sb = Sandbox::new();
    sb.write(
        "monitrc",
        "set daemon 120\n\
         set mailserver smtp.example.org port 587 username \"alerts\" password \"Tr0ub4dor\" using tls\n\
         set httpd port 2812 allow admin:Hunter2\n\
         set mmonit https://monit:Sw0rdfish@mmonit.example.org:8443/collector\n\
         check process web matching \"nginx: master\"\n\
         \x20 start program \"/usr/sbin/service nginx start\"\n\
         \x20 stop program \"/usr/sbin/service nginx stop\"\n\
         \x20 if failed port 8443 type tcpssl protocol http\n\
         \x20    request \"/health\"\n\
         \x20    with timeout 5 seconds\n\
         \x20    then restart\n\
         \x20 if total memory > 1 GB then restart\n\
         \x20 if not exist then restart\n\
         \x20 if 5 restarts within 5 cycles then timeout\n\
         \x20 if 3 restarts within 20 cycles then timeout\n\
         \x20 alert ops@example.org not on { instance,\n\
         \x20    action }\n\
         set mail-format {\n\
         \x20 from: monit@example.org\n\
         \x20 subject: $SERVICE $EVENT\n\
         }\n",
    );
    let run = sb.tend(&["import", "monit", "monitrc"]);
    assert_eq!(run.code, 1, "{run:?}");
    // It is Monit's own: Monit reads the one service in it.
    if Path::new("/usr/bin/monit").exists() {
        let services = monit_reads(&sb, &sb.path("monitrc")).unwrap();
        assert_eq!(services, [("Process".to_string(), "web".to_string())]);
    }
    for secret in ["Tr0ub4dor", "Hunter2", "Sw0rdfish"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret}: {run:?}"
        );
    }
    for line in [
        "    process \"nginx: master\" anywhere  # line 5",
        "    start   \"/usr/sbin/service nginx start\"  # line 6",
        "    http    \"https://127.0.0.1:8443/health\" timeout 5s insecure  # line 8",
        "    memory  above 1GB then restart  # line 12",
        "    limit   3 restarts within 40m then give up  # line 15",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    for said in [
        "monitrc:12: `if total memory > 1 GB then restart`: carried as `memory above` of the service's process",
        "monitrc:14: `if 5 restarts within 5 cycles then timeout`: carried as `limit 5 restarts within 30m then give up`",
        "monitrc:15: `if 3 restarts within 20 cycles then timeout`: a second restart limit: tend keeps one, the one that gives up sooner, this one",
        "monitrc:2: `set mailserver smtp.example.org port 587 username \"alerts\" password \"****\" using tls`",
        "monitrc:3: `set httpd port 2812 allow admin:****`",
        // A `{ ... }` over several lines is one statement, as Monit reads it.
        "monitrc:16: `alert ops@example.org not on { instance, action }`: a check's own alert recipient",
        "monitrc:18: `set mail-format { from: monit@example.org subject: $SERVICE $EVENT }`",
    ] {
        assert!(run.stderr.contains(said), "{said}\n{}", run.stderr);
    }
    // Nothing else is said of lines 6 to 13: each was carried.
    for n in [6, 7, 8, 9, 10, 11, 13, 17, 19, 20, 21] {
        assert!(
            !run.stderr.contains(&format!("monitrc:{n}:")),
            "line {n}\n{}",
            run.stderr
        );
    }
    sb.write("web.tend", &run.stdout);
    let validated = sb.tend(&["validate", "web.tend"]);
    assert_eq!(validated.code, 0, "{validated:?}");
}

/// CFEngine's promiser matches anywhere in a command line: `mysql` finds
/// `/usr/sbin/mysqld`. Imported, the policy finds it running as cf-agent
/// does (silent), and restarts it when it is killed.
#[test]
fn a_cfengine_promiser_finds_what_cf_agent_finds() {
    let mut sb = Sandbox::new();
    sb.daemon("mysqld");
    sb.script(
        "start",
        "#!/bin/sh\nsetsid @DIR@/mysqld 1000 </dev/null >/dev/null 2>&1 &\n",
    );
    sb.write(
        "db.cf",
        "bundle agent db {\n  processes:\n    \"mysql\" restart_class => \"start_mysql\";\n  commands:\n    start_mysql::\n      \"@DIR@/start\";\n}\n",
    );
    let run = sb.tend(&["import", "cfengine", "db.cf", "-o", "policy"]);
    assert_eq!(run.code, 0, "{run:?}");
    let written = std::fs::read_to_string(sb.path("policy/db.tend")).unwrap();
    assert!(written.contains("process \"mysql\" anywhere"), "{written}");
    let pid = sb.start("mysqld");
    sb.pass().args(&["-f", "policy"]).says(0, &[]);
    sb.kill(pid);
    let pass = sb.pass().args(&["-f", "policy"]).run();
    let back = sb.pids_of("mysqld");
    assert_eq!(back.len(), 1, "{pass:?}");
    assert_eq!(
        crate::sandbox::lines(&pass),
        vec![
            "mysql is not running, restarting...".to_string(),
            format!("mysql restarted (pid {})", back[0]),
        ]
    );
}

/// Monit's `5 restarts within 5 cycles`, imported: a daemon that never
/// starts is given up on after five failed restarts (one a pass, cron's
/// five minutes), not restarted forever.
#[test]
fn an_imported_monit_restart_limit_gives_up_on_a_crash_loop() {
    let sb = Sandbox::new();
    sb.write(
        "monitrc",
        "set daemon 120\ncheck process never with pidfile @DIR@/never.pid\n  start program = \"/bin/false\"\n  if 5 restarts within 5 cycles then timeout\n",
    );
    let run = sb.tend(&["import", "monit", "monitrc", "-o", "policy"]);
    assert_eq!(run.code, 1, "{run:?}");
    let t0 = 1_800_000_000;
    let mut said = Vec::new();
    for k in 0..8 {
        let pass = sb.pass().at(t0 + k * 300).args(&["-f", "policy"]).run();
        said.push(crate::sandbox::lines(&pass));
    }
    let gave_up = said
        .iter()
        .position(|lines| lines.iter().any(|l| l.contains("giving up")))
        .unwrap_or_else(|| panic!("never gave up: {said:?}"));
    assert_eq!(gave_up, 5, "{said:?}");
    assert!(said[6..].iter().all(Vec::is_empty), "{said:?}");
}

/// Every `.cf` file of CFEngine's own masterfiles (Debian's cfengine3,
/// GPL-3, Northern.tech: 79 real policy files using namespaces, `@if`
/// macros, `canonify()`, bundles called by variable) imports, and each
/// promise cf-promises itself reads in it (its JSON output is the oracle:
/// promise type, promiser and line) is carried into the policy or said
/// with its file and line; what is written validates.
#[test]
fn every_cfengine_masterfile_imports_each_promise_carried_or_said() {
    let root = Path::new("/usr/share/cfengine3/masterfiles");
    if !root.is_dir() || !Path::new("/usr/bin/cf-promises").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI installs cfengine3");
        eprintln!("skipped: cfengine3 is not installed");
        return;
    }
    let sb = Sandbox::new();
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "cf") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 50, "{files:?}");
    let work = sb.path("cfengine-work");
    let mut services = 0;
    let mut written = Vec::new();
    for file in &files {
        let f = file.to_str().unwrap();
        let oracle = std::process::Command::new("cf-promises")
            .args(["-w", work.to_str().unwrap(), "-p", "json", "-f", f])
            .output()
            .unwrap();
        assert!(
            oracle.status.success(),
            "cf-promises refuses {f}: {oracle:?}"
        );
        // Its JSON, after any lines it printed on evaluating functions.
        let out = String::from_utf8_lossy(&oracle.stdout);
        let at = if out.starts_with('{') {
            0
        } else {
            out.find("\n{").unwrap() + 1
        };
        let parsed: serde_json::Value = serde_json::from_str(&out[at..]).unwrap();
        let run = sb.tend(&["import", "cfengine", f]);
        assert!(run.code == 0 || run.code == 1, "{f}: {run:?}");
        let name = format!("{}.tend", file.file_name().unwrap().to_string_lossy());
        sb.write(&name, &run.stdout);
        written.push((name, run.stdout.clone()));
        services += run.stdout.matches("\n  service ").count();
        // The lines said (`FILE:N: ` on stderr) and carried (`# from
        // FILE:N (` or `# line N` in the policy).
        let numbers = |text: &str, before: &str, after: &str| -> HashSet<u64> {
            text.split(before)
                .skip(1)
                .filter_map(|rest| {
                    let (n, tail) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
                    tail.starts_with(after).then(|| n.parse().ok()).flatten()
                })
                .collect()
        };
        let said = numbers(&run.stderr, &format!("{f}:"), ": ");
        let mut carried = numbers(&run.stdout, &format!("# from {f}:"), " (");
        carried.extend(numbers(&run.stdout, "# line ", "\n"));
        let bundles = parsed["bundles"].as_array().cloned().unwrap_or_default();
        for bundle in &bundles {
            for kind in bundle["promiseTypes"].as_array().unwrap() {
                let type_name = kind["name"].as_str().unwrap();
                // Definitions, read into what they define; reports tend
                // makes itself are dropped silently (unit tested).
                if matches!(type_name, "vars" | "meta" | "reports") {
                    continue;
                }
                for context in kind["contexts"].as_array().unwrap() {
                    for promise in context["promises"].as_array().unwrap() {
                        let line = promise["line"].as_u64().unwrap();
                        let promiser = promise["promiser"].as_str().unwrap();
                        // cf-promises gives the line a promiser ends on;
                        // tend, the line it starts on.
                        let first = line - promiser.matches('\n').count() as u64;
                        let said = (first..=line).any(|l| said.contains(&l));
                        let carried = (first..=line).any(|l| carried.contains(&l))
                            || type_name == "classes"
                                && run.stdout.contains(&format!("\nclass {promiser} = "));
                        assert!(
                            said || carried,
                            "{f}:{line}: `{type_name}: \"{promiser}\"` neither carried nor said\n{}\n{}",
                            run.stdout,
                            run.stderr
                        );
                    }
                }
            }
        }
    }
    // Its own daemons' process promises are carried as services.
    assert!(services >= 3, "{services} services from the masterfiles");
    validates(&sb, &written);
}

/// A policy written with `-o DIR` is 0644, unless a command carried as
/// written holds what looks like a secret: then it is its owner's alone,
/// and that is said.
#[test]
fn an_imported_policy_holding_a_secret_is_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write(
        "plain",
        "check process a with pidfile /run/a.pid\n  start program = \"/usr/sbin/a\"\n",
    );
    sb.write(
        "secret",
        "check process b with pidfile /run/b.pid\n  start program = \"/usr/sbin/b --password Sw0rdf1sh\"\n",
    );
    for (input, mode) in [("plain", 0o644), ("secret", 0o600)] {
        let out = format!("out-{input}");
        let run = sb.tend(&["import", "monit", input, "-o", &out]);
        assert_eq!(run.code, 0, "{run:?}");
        let written = sb.path(&format!("{out}/{input}.tend"));
        let meta = std::fs::metadata(&written).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{input}: {run:?}");
        assert_eq!(
            run.stderr.contains("looks like a secret"),
            mode == 0o600,
            "{run:?}"
        );
    }
}
