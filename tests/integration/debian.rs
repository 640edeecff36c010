//! Debian's own daemons, as a host runs them: the shipped policy's words
//! against the real binaries (installed by `.ci/run`), each started with its
//! own configuration in the sandbox, never the host's instance.

use std::process::{Child, Command, Stdio};

use crate::sandbox::{children_of, cmdline, lines, wait_for, Sandbox};

const T0: i64 = 1_795_000_000;
const SSHD: &str = "/usr/sbin/sshd";

/// A port nobody listens on now.
fn spare_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

fn pid_in(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// An ssh client logged in as root with the sandbox's key.
fn ssh(sb: &Sandbox, port: u16, remote: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null", "-i"])
        .arg(sb.path("user_key"))
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-p",
            &port.to_string(),
            "root@127.0.0.1",
            remote,
        ])
        .stdin(Stdio::null());
    cmd
}

/// The logged-in sessions (`sshd: root@notty`, or `sshd-session: root@...`
/// from OpenSSH 9.8) below a listener.
fn sessions(listener: u32) -> Vec<u32> {
    children_of(listener)
        .into_iter()
        .filter(|&pid| {
            cmdline(pid).is_some_and(|c| {
                c.starts_with("sshd: root@") || c.starts_with("sshd-session: root@")
            })
        })
        .collect()
}

struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_sshd_listener_is_restarted_while_an_admin_is_logged_in() {
    if !nix::unistd::geteuid().is_root() || !std::path::Path::new(SSHD).exists() {
        eprintln!("skipped: needs root and openssh-server (.ci/run installs it)");
        return;
    }
    let sb = Sandbox::new();
    // sshd as root wants its privilege separation directory, as Debian's
    // unit creates it.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = spare_port();
    for key in ["host_key", "user_key"] {
        let path = sb.path(key).to_string_lossy().into_owned();
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", &path],
        );
    }
    std::fs::copy(sb.path("user_key.pub"), sb.path("authorized_keys")).unwrap();
    sb.write(
        "sshd_config",
        &format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey @DIR@/host_key\nPidFile @DIR@/sshd.pid\nAuthorizedKeysFile @DIR@/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        ),
    );
    // The shipped ssh service's words; its own pidfile and config.
    sb.policy(
        "any::\n  service ssh {\n    name    \"OpenSSH\"\n    process \"/usr/sbin/sshd\"\n    pidfile \"@DIR@/sshd.pid\"\n    restart \"/usr/sbin/sshd -f @DIR@/sshd_config\"\n    grace 10s\n  }\n",
    );
    let pidfile = sb.path("sshd.pid");
    let first = sb.at(T0, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let listener = pid_in(&pidfile).expect("sshd wrote its pidfile");
    assert_eq!(
        lines(&first).last().unwrap(),
        &format!("OpenSSH restarted (pid {listener})"),
        "{first:?}"
    );
    // The listener's command line differs by OpenSSH version (`sshd:
    // /usr/sbin/sshd -f ... [listener] 0 of 10-100 startups` from 8.x,
    // `/usr/sbin/sshd -f ...` before); the pidfile names it either way.
    let listener_line = cmdline(listener).unwrap();
    eprintln!("OpenSSH listener: {listener_line:?}");
    assert!(listener_line.contains(SSHD), "{listener_line}");

    // An admin logs in and stays.
    let client = Client(ssh(&sb, port, "sleep 1000").spawn().unwrap());
    wait_for(|| !sessions(listener).is_empty());
    let session = sessions(listener)[0];
    let session_line = cmdline(session).unwrap();
    eprintln!("OpenSSH session: {session_line:?}");
    let dry = sb.at(T0 + 60, &["--dry-run"]);
    assert!(
        dry.stdout
            .contains(&format!("OpenSSH (ssh): running (pid {listener})")),
        "{dry:?}"
    );

    // The listener dies; the session lives on.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(listener as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(|| {
        std::fs::read_to_string(format!("/proc/{listener}/stat"))
            .map_or(true, |s| s.contains(") Z "))
    });
    let dry = sb.at(T0 + 240, &["--dry-run"]);
    assert!(
        dry.stdout.contains("OpenSSH (ssh): not running"),
        "the session must not count as the service: {dry:?}"
    );
    let pass = sb.at(T0 + 300, &[]);
    assert_eq!(pass.code, 0, "{pass:?}");
    let said: Vec<String> = lines(&pass)
        .into_iter()
        .filter(|l| !l.starts_with("tend: syslog not reached"))
        .collect();
    let restarted = pid_in(&pidfile).unwrap();
    assert_ne!(restarted, listener);
    assert!(
        said[0].starts_with("OpenSSH is not running (pidfile ")
            && said[0].contains(" is not running), restarting..."),
        "{pass:?}"
    );
    assert_eq!(
        said[1],
        format!("OpenSSH restarted (pid {restarted})"),
        "{pass:?}"
    );
    // The session is untouched, and the new listener takes logins.
    assert_eq!(cmdline(session).as_deref(), Some(session_line.as_str()));
    let login = ssh(&sb, port, "echo in").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&login.stdout), "in\n", "{login:?}");
    // Then all is quiet.
    let quiet = sb.at(T0 + 600, &[]);
    assert_eq!((quiet.code, lines(&quiet)), (0, vec![]), "{quiet:?}");
    // The remote command would outlive a killed client: the session goes
    // with everything under it.
    let mut gone = vec![session, restarted];
    let mut i = 0;
    while i < gone.len() {
        gone.extend(children_of(gone[i]));
        i += 1;
    }
    drop(client);
    for pid in gone {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
