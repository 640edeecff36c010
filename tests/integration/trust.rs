//! Nothing another user controls can hang, blind, leak through or steer a
//! root pass: pidfiles, policy files, state and pause files made symlinks to
//! a secret, FIFOs, /dev/zero or huge; state directories planted or left
//! open; text that forges report lines. Through the binary, with a deadline
//! on every run and every syslog datagram read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::sandbox::{Run, Sandbox};

const T0: i64 = 1_805_000_000;
/// What a secret looks like; it must never appear anywhere.
const SECRET: &str = "root:$y$j9T$TOPSECRETHASH:19000:0:99999:7:::";

/// Runs tend with a deadline (a hang fails the test instead of stalling
/// it) and syslog captured. Returns the run and the syslog datagrams.
fn bounded(sb: &Sandbox, args: &[&str]) -> (Run, Vec<String>) {
    let socket_path = sb.path("syslog.sock");
    let _ = std::fs::remove_file(&socket_path);
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = sb
        .command(
            args,
            &[
                ("TEND_NOW", &T0.to_string()),
                ("TEND_SYSLOG_SOCKET", socket_path.to_str().unwrap()),
            ],
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tend {args:?} hung (killed after 15 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut text = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut text).unwrap();
        text
    };
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = socket.recv(&mut buf) {
        datagrams.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: read(out),
        stderr: read(err),
    };
    (run, datagrams)
}

/// The secret appears nowhere: not on stdout, stderr, nor in syslog.
fn never_told(what: &str, run: &Run, syslog: &[String]) {
    for (place, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains("TOPSECRET"),
            "{what}: the secret is on {place}: {run:?}"
        );
    }
    for d in syslog {
        assert!(
            !d.contains("TOPSECRET"),
            "{what}: the secret is in syslog: {d}"
        );
    }
}

fn secret(sb: &Sandbox) -> std::path::PathBuf {
    let path = sb.path("shadow");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// A policy directory `policy.d` (0755) with one good file, `a.tend`.
fn policy_dir(sb: &Sandbox) {
    std::fs::create_dir(sb.path("policy.d")).unwrap();
    std::fs::set_permissions(sb.path("policy.d"), std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.write(
        "policy.d/a.tend",
        "service a { process \"/a\"; restart \"true\" }\n",
    );
}

fn pidfile_service(sb: &Sandbox) {
    sb.policy(
        "service db {\n  name \"Database\"\n  pidfile \"@DIR@/db.pid\"\n  restart \"true\"\n  grace 1s\n  settle 0s\n}\n",
    );
}

#[test]
fn a_pidfile_made_a_symlink_to_a_secret_leaks_nothing() {
    let sb = Sandbox::new();
    pidfile_service(&sb);
    std::os::unix::fs::symlink(secret(&sb), sb.path("db.pid")).unwrap();
    for args in [
        vec![],
        vec!["--dry-run"],
        vec!["status"],
        vec!["--format", "json"],
    ] {
        let (run, syslog) = bounded(&sb, &args);
        never_told(&format!("{args:?}"), &run, &syslog);
    }
    let (dry, _) = bounded(&sb, &["--dry-run"]);
    assert!(
        dry.stdout.contains(&format!(
            "Database (db): not running (pidfile {}: is a symbolic link; not following it)",
            sb.path("db.pid").display()
        )),
        "{dry:?}"
    );
}

#[test]
fn fifos_where_files_belong_never_hang_a_pass_status_or_dry_run() {
    // The pidfile.
    let sb = Sandbox::new();
    pidfile_service(&sb);
    fifo(&sb.path("db.pid"));
    bounded(&sb, &["status"]);
    for args in [vec!["--dry-run"], vec![]] {
        let (run, _) = bounded(&sb, &args);
        assert!(
            run.stdout
                .contains("db.pid: is a FIFO, not a regular file; not reading it"),
            "{args:?}: {run:?}"
        );
    }

    // A policy file in the policy directory.
    let sb = Sandbox::new();
    policy_dir(&sb);
    fifo(&sb.path("policy.d/b.tend"));
    for args in [
        vec!["-f", "policy.d"],
        vec!["-f", "policy.d", "--dry-run"],
        vec!["-f", "policy.d", "status"],
        vec!["validate", "policy.d"],
    ] {
        let (run, _) = bounded(&sb, &args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains(
                "policy file policy.d/b.tend is a FIFO, not a regular file; not reading it"
            ),
            "{args:?}: {run:?}"
        );
    }

    // The state file and the pause file: set aside, said, the pass goes on.
    for name in ["state.json", "pause.json"] {
        let sb = Sandbox::new();
        pidfile_service(&sb);
        std::fs::write(sb.path("db.pid"), "1\n").unwrap(); // pid 1 runs
        std::fs::create_dir(sb.path("state")).unwrap();
        fifo(&sb.path(&format!("state/{name}")));
        for args in [vec!["--dry-run"], vec!["status"]] {
            bounded(&sb, &args);
        }
        let (run, _) = bounded(&sb, &[]);
        assert!(
            run.stdout.contains(&format!("state/{name}"))
                && run
                    .stdout
                    .contains("is a FIFO, not a regular file; not reading it"),
            "{name}: {run:?}"
        );
        // Set aside: the FIFO is gone (a new state file is a plain file).
        assert!(
            std::fs::symlink_metadata(sb.path(&format!("state/{name}")))
                .map_or(true, |m| m.is_file()),
            "{name}: set aside"
        );
        let (again, _) = bounded(&sb, &[]);
        assert!(
            !again.stdout.contains("FIFO"),
            "{name}: said once: {again:?}"
        );
    }
}

/// The peak memory (KiB) of tend run with `args` in the sandbox, measured
/// by a python parent of its own (this test's other children do not count).
fn peak_rss_kb(sb: &Sandbox, args: &[&str]) -> i64 {
    let tend = sb.command(args, &[]);
    let mut cmd = std::process::Command::new("python3");
    cmd.args([
        "-c",
        "import resource, subprocess, sys\nsubprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
    ])
    .arg(tend.get_program())
    .args(tend.get_args())
    .current_dir(sb.dir())
    .env("TEND_SYSLOG_SOCKET", sb.path("no-syslog"));
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn endless_or_huge_files_are_refused_in_bounded_time_memory_and_output() {
    let sb = Sandbox::new();
    pidfile_service(&sb);
    // /dev/zero behind a symlink, then a 10 MB pidfile.
    std::os::unix::fs::symlink("/dev/zero", sb.path("db.pid")).unwrap();
    let (run, _) = bounded(&sb, &["--dry-run"]);
    assert!(
        run.stdout
            .contains("db.pid: is a symbolic link; not following it"),
        "{run:?}"
    );
    std::fs::remove_file(sb.path("db.pid")).unwrap();
    std::fs::write(sb.path("db.pid"), vec![b'7'; 10 << 20]).unwrap();
    let (run, _) = bounded(&sb, &["--dry-run"]);
    assert!(
        run.stdout
            .contains("db.pid: is larger than 4 KiB; not reading it"),
        "{run:?}"
    );

    // A 10 MB policy file: refused. A 3 MB line with an error in it: a
    // window of it is shown, not megabytes.
    let sb = Sandbox::new();
    sb.policy(&format!("# {}\n", "x".repeat(10 << 20)));
    let (run, _) = bounded(&sb, &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("policy file policy.tend is larger than 4 MiB; not reading it"),
        "{}",
        &run.stderr[..run.stderr.len().min(300)]
    );
    sb.policy(&format!(
        "service a {{ process \"/a\"; restart \"x\"; name \"{}\"; grace soon }}\n",
        "n".repeat(3 << 20)
    ));
    let (run, syslog) = bounded(&sb, &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.len() + run.stderr.len() < 2000,
        "{} bytes said",
        run.stdout.len()
    );
    assert!(syslog.iter().all(|d| d.len() < 2000));
    // Memory follows the 4 MiB cap on a policy file (about 20 times it in
    // a debug build, 6 in a release build), never the file named.
    let peak = peak_rss_kb(&sb, &[]);
    assert!(peak > 0 && peak < 200 << 10, "{peak} KiB");
    std::fs::remove_file(sb.path("policy.tend")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", sb.path("policy.tend")).unwrap();
    let peak = peak_rss_kb(&sb, &["--insecure", "validate"]);
    assert!(peak > 0 && peak < 200 << 10, "{peak} KiB");
}

#[test]
fn a_pause_reason_cannot_forge_a_report_line() {
    let sb = Sandbox::new();
    pidfile_service(&sb);
    std::fs::create_dir(sb.path("state")).unwrap();
    std::fs::write(
        sb.path("state/pause.json"),
        format!(
            "{{\"since\": {}, \"until\": {}, \"reason\": \"ok\\nDatabase restarted (pid 1)\\u001b[2K\"}}",
            T0 - 60,
            T0 + 600
        ),
    )
    .unwrap();
    for args in [vec!["status"], vec!["--dry-run"], vec!["resume"]] {
        let (run, syslog) = bounded(&sb, &args);
        let all = format!("{}{}{}", run.stdout, run.stderr, syslog.join("\n"));
        assert!(
            all.lines().all(|l| !l.starts_with("Database restarted")) && !all.contains('\u{1b}'),
            "{args:?}: {run:?}"
        );
        assert!(
            all.contains("(ok\\nDatabase restarted (pid 1)\\x1b[2K)"),
            "{args:?}: {run:?}"
        );
    }
}

#[test]
fn a_policy_symlink_to_a_secret_is_refused_and_never_quoted() {
    let sb = Sandbox::new();
    policy_dir(&sb);
    std::os::unix::fs::symlink(secret(&sb), sb.path("policy.d/x.tend")).unwrap();
    // A link inside the policy is fine.
    sb.write(
        "policy.d/b.inc",
        "service b { process \"/b\"; restart \"true\" }\n",
    );
    std::os::unix::fs::symlink("b.inc", sb.path("policy.d/b.tend")).unwrap();
    let secret_refused = format!(
        "policy file policy.d/x.tend is a symbolic link out of the policy to {}, which is not a file only its owner can change and anyone can read; refusing it",
        sb.path("shadow").display()
    );
    let checkout_refused = format!(
        "policy file policy.d/x.tend is a symbolic link out of the files checked, to {}; refusing it",
        sb.path("shadow").display()
    );
    for (args, want) in [
        (vec!["-f", "policy.d", "--dry-run"], &secret_refused),
        (vec!["-f", "policy.d"], &secret_refused),
        (
            vec!["-f", "policy.d", "validate", "--format", "json"],
            &secret_refused,
        ),
        (vec!["validate", "policy.d"], &checkout_refused),
    ] {
        let (run, syslog) = bounded(&sb, &args);
        never_told(&format!("{args:?}"), &run, &syslog);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains(want.as_str()),
            "{args:?}: {run:?}"
        );
    }
    // A repository's link to a file anyone may read (/etc/passwd): the
    // installed policy may use one, a checkout never leads out of itself.
    std::fs::remove_file(sb.path("policy.d/x.tend")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", sb.path("policy.d/x.tend")).unwrap();
    let (run, _) = bounded(&sb, &["validate", "policy.d"]);
    assert!(
        run.stderr.contains("policy file policy.d/x.tend is a symbolic link out of the files checked, to /etc/passwd; refusing it"),
        "{run:?}"
    );
    std::fs::remove_file(sb.path("policy.d/x.tend")).unwrap();
    let (ok, _) = bounded(&sb, &["validate", "policy.d"]);
    assert!(ok.stdout.contains("policy.d: ok (2 services"), "{ok:?}");
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
}

#[test]
fn a_state_directory_others_control_is_refused_and_its_planted_policy_never_run() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (files owned by another user)");
        return;
    }
    let nobody = 65534;
    let mut sb = Sandbox::new();
    sb.daemon("a");
    // The policy is broken; a last good copy planted in the state dir
    // would run its command as root.
    sb.policy("service a {\n");
    let home = sb.dir().to_path_buf();
    let planted = |dir: &Path| {
        let copy = dir.join("policy.good.0123456789ab");
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::write(
            copy.join("policy.tend"),
            format!(
                "service a {{ process \"{0}/a\"; restart \"touch {0}/pwned\" }}\n",
                home.display()
            ),
        )
        .unwrap();
        std::fs::write(
            copy.join("manifest.json"),
            "{\"origin\": \"x\", \"saved\": 1, \"digest\": \"0123456789ab\", \"files\": [\"policy.tend\"]}",
        )
        .unwrap();
        let _ = std::fs::remove_file(dir.join("policy.good"));
        std::os::unix::fs::symlink("policy.good.0123456789ab", dir.join("policy.good")).unwrap();
    };

    // 1. Writable by others.
    std::fs::create_dir(sb.path("open")).unwrap();
    planted(&sb.path("open"));
    std::fs::set_permissions(sb.path("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (run, _) = bounded(&sb, &["--state-dir", "open"]);
    assert!(
        run.stdout
            .starts_with("tend: policy policy.tend is broken: ")
            && run.stdout.contains("no last good policy to fall back on"),
        "{run:?}"
    );
    assert!(!sb.path("pwned").exists(), "the planted policy ran");
    assert!(!sb.path("open/state.json").exists() && !sb.path("open/lock").exists());

    // 2. Owned by another user.
    std::fs::set_permissions(sb.path("open"), std::fs::Permissions::from_mode(0o700)).unwrap();
    chown(&sb.path("open"), nobody);
    let (run, _) = bounded(&sb, &["--state-dir", "open"]);
    assert!(
        !sb.path("pwned").exists(),
        "the planted policy ran: {run:?}"
    );
    assert!(!sb.path("open/state.json").exists());

    // 3. A symlink planted by another user, to a root-owned directory.
    std::fs::create_dir(sb.path("target")).unwrap();
    planted(&sb.path("target"));
    std::os::unix::fs::symlink(sb.path("target"), sb.path("link")).unwrap();
    chown(&sb.path("link"), nobody);
    // The pass still restarts (with a good policy), without state.
    sb.policy("service a { process \"@DIR@/a\"; restart \"setsid -f @DIR@/a 1000\"; grace 5s }\n");
    let (run, _) = bounded(&sb, &["--state-dir", "link"]);
    assert!(
        run.stdout.starts_with(
            "tend: state directory link is a symbolic link of nobody; refusing it (only root or the user running tend may control where tend keeps its state, lock and last good policy); this pass runs without its state"
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains("a restarted (pid "), "{run:?}");
    assert!(!sb.path("target/state.json").exists() && !sb.path("target/lock").exists());
    for pid in sb.pids_of("a") {
        sb.kill(pid);
    }

    // 4. A trusted directory, but `policy.good` pointing out of it.
    sb.policy("service a {\n");
    std::fs::create_dir(sb.path("state")).unwrap();
    planted(&sb.path("target"));
    std::os::unix::fs::symlink(
        sb.path("target/policy.good.0123456789ab"),
        sb.path("state/policy.good"),
    )
    .unwrap();
    let (run, _) = bounded(&sb, &[]);
    assert!(
        run.stdout.contains("; the last good policy cannot be used either (last good policy state/policy.good does not point to a copy tend made; not using it), nothing is checked until it is fixed"),
        "{run:?}"
    );
    assert!(!sb.path("pwned").exists(), "the planted policy ran");
}

#[test]
fn a_lock_symlinked_to_a_precious_file_leaves_it_intact() {
    let sb = Sandbox::new();
    pidfile_service(&sb);
    std::fs::write(sb.path("db.pid"), "1\n").unwrap();
    std::fs::create_dir(sb.path("state")).unwrap();
    std::fs::write(sb.path("precious"), "keep me\n").unwrap();
    std::os::unix::fs::symlink(sb.path("precious"), sb.path("state/lock")).unwrap();
    let (run, _) = bounded(&sb, &[]);
    assert!(
        run.stdout
            .starts_with("tend: cannot open lock file state/lock")
            && run.stdout.contains("running without the lock"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.path("precious")).unwrap(),
        "keep me\n"
    );
}

#[test]
fn deep_or_long_policies_never_crash_and_a_broken_one_falls_back() {
    let sb = Sandbox::new();
    pidfile_service(&sb);
    std::fs::write(sb.path("db.pid"), "1\n").unwrap();
    let (first, _) = bounded(&sb, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    // 100,000 `!`: a valid guard (an even number of them is none).
    sb.policy(&format!(
        "{}linux::\nservice db {{ pidfile \"@DIR@/db.pid\"; restart \"true\" }}\n",
        "!".repeat(100_000)
    ));
    for args in [vec!["validate"], vec![], vec!["status"]] {
        let (run, _) = bounded(&sb, &args);
        assert!(run.code == 0 || run.code == 1, "{args:?}: {run:?}");
    }
    // Chains of 20,000 definitions and dependencies: no recursion to
    // overflow; a cycle through all of them is one readable line each.
    let chain: String = (0..20_000)
        .map(|i| format!("class c{i} = c{}\n", i + 1))
        .chain(["class c20000 = linux\nc0::\n".to_string()])
        .chain((0..20_000).map(|i| {
            format!(
                "service s{i} {{ process \"/s{i}\"; restart \"true\"; depends on s{} }}\n",
                (i + 1) % 20_000
            )
        }))
        .collect();
    sb.policy(&chain);
    let (run, _) = bounded(&sb, &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "error: dependency cycle: s0 -> s1 -> s2 -> s3 -> s4 -> s5 -> ... -> s0 (a cycle of 20000)"
        ),
        "{}",
        &run.stderr[..run.stderr.len().min(500)]
    );
    // A pass quotes 20 of the 20,000 errors and enforces the last good copy.
    let (pass, _) = bounded(&sb, &[]);
    assert!(
        pass.stdout
            .starts_with("tend: policy policy.tend is broken: ")
            && pass
                .stdout
                .contains("(and 19999 more errors); enforcing the last good policy"),
        "{}",
        &pass.stdout[..pass.stdout.len().min(500)]
    );
    assert!(
        pass.stdout
            .contains("... and 19980 more (`tend validate` shows them all)"),
        "{}",
        &pass.stdout[pass.stdout.len().saturating_sub(300)..]
    );
    assert!(pass.stdout.lines().count() < 80);
    // Nested too deep: a positioned error, and the copy still serves.
    sb.policy(&format!(
        "{}a{}::\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    ));
    let (status, _) = bounded(&sb, &["status"]);
    assert!(
        status.stdout.contains("nested too deeply")
            && status.stdout.contains("enforcing the last good policy"),
        "{}",
        &status.stdout[..status.stdout.len().min(500)]
    );
}

/// As root, a root-owned policy in a directory others can write (and that
/// is not sticky) could be renamed away and replaced: refused, as the
/// state directory would be. A sticky one (/tmp's mode) is fine.
#[test]
fn a_policy_in_a_directory_others_can_write_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("open")).unwrap();
    sb.write(
        "open/p.tend",
        "service a { process \"/nonexistent/a\"; restart \"true\" }\n",
    );
    std::fs::set_permissions(
        sb.path("open/p.tend"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(sb.path("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = sb.tend(&["-f", "open/p.tend", "validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    let dir = std::fs::canonicalize(sb.path("open")).unwrap();
    assert!(
        run.stderr.contains(&format!(
            "policy open/p.tend is in {}, which others can write and is not sticky (mode 0777): another user could put their own policy in its place; refusing it (--insecure allows it)",
            dir.display()
        )),
        "{run:?}"
    );
    std::fs::set_permissions(sb.path("open"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let run = sb.tend(&["-f", "open/p.tend", "validate"]);
    assert_eq!(run.code, 0, "{run:?}");
}
