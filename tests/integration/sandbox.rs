//! A throwaway directory with daemons, a policy, and a way to run tend on it.
//!
//! Daemons are copies of /bin/sleep under the sandbox directory, so their
//! command line names a path no other test uses. Every process whose command
//! line mentions the directory is killed when the sandbox is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

pub struct Sandbox {
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

/// What a run of tend printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("tend-test-")
                .tempdir()
                .unwrap(),
            children: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A daemon program at `<dir>/<name>`: a copy of sleep.
    pub fn daemon(&self, name: &str) -> String {
        let path = self.path(name);
        if !path.exists() {
            copy_sleep(&path);
        }
        path.to_string_lossy().into_owned()
    }

    /// Starts `<dir>/<name> 1000` and waits until it is in the process table.
    pub fn start(&mut self, name: &str) -> u32 {
        let program = self.daemon(name);
        // A fork in another test's thread can briefly hold the copy open for
        // writing (ETXTBSY); try again.
        let mut tries = 0;
        let child = loop {
            match Command::new(&program)
                .arg("1000")
                .stdin(Stdio::null())
                .spawn()
            {
                Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other.unwrap(),
            }
        };
        let pid = child.id();
        self.children.push(child);
        wait_for(|| cmdline(pid).is_some_and(|c| c.starts_with(&program)));
        pid
    }

    /// Kills a process and reaps it if it is ours.
    pub fn kill(&mut self, pid: u32) {
        unsafe_kill(pid);
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut child = self.children.remove(i);
            let _ = child.wait();
        }
        wait_for(|| cmdline(pid).is_none());
    }

    /// Pids of running processes whose command line starts with `<dir>/<name>`.
    pub fn pids_of(&self, name: &str) -> Vec<u32> {
        let program = self.path(name).to_string_lossy().into_owned();
        all_pids()
            .into_iter()
            .filter(|&pid| {
                cmdline(pid).is_some_and(|c| c == program || c.starts_with(&format!("{program} ")))
                    && !is_zombie(pid)
            })
            .collect()
    }

    /// Writes `text` to `<dir>/<name>`, with `@DIR@` replaced by the sandbox
    /// directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text.replace("@DIR@", &self.dir().to_string_lossy())).unwrap();
        path
    }

    /// Writes an executable script `<dir>/<name>` (as `write` does).
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        let path = self.write(name, text);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A syslog socket at `<dir>/syslog.sock` (for TEND_SYSLOG_SOCKET) that
    /// waits up to 5 s for each message.
    pub fn syslog(&self) -> (std::os::unix::net::UnixDatagram, PathBuf) {
        let path = self.path("syslog.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (socket, path)
    }

    /// Writes the policy `<dir>/policy.tend`, 0644 whatever the umask (as
    /// root, tend refuses a policy others can write).
    pub fn policy(&self, text: &str) -> PathBuf {
        let path = self.write("policy.tend", text);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// Runs tend in the sandbox directory with `-f policy.tend` and `args`.
    pub fn tend(&self, args: &[&str]) -> Run {
        self.tend_env(args, &[])
    }

    /// Runs tend as `tend` does, with the clock at `t` (TEND_NOW, unix
    /// seconds).
    pub fn at(&self, t: i64, args: &[&str]) -> Run {
        self.tend_env(args, &[("TEND_NOW", &t.to_string())])
    }

    pub fn tend_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args, env);
        Run::from(cmd.stdin(Stdio::null()).output().unwrap())
    }
}

/// A run of tend in a sandbox, written the way a test reads it (in the
/// manner of casey/just's `Test`): `sb.pass().at(T).args(&[..])`, then
/// `.says(status, &[lines])` runs it and asserts what cron would mail
/// (lines without the syslog notice) and the exit status.
pub struct Pass<'a> {
    sb: &'a Sandbox,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Pass<'_> {
    /// With the clock at `t` (TEND_NOW, unix seconds).
    pub fn at(mut self, t: i64) -> Self {
        self.env.push(("TEND_NOW".into(), t.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn run(&self) -> Run {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.sb.tend_env(&args, &env)
    }

    /// Runs it: it must exit `code` having said exactly `said`.
    pub fn says(&self, code: i32, said: &[&str]) -> Run {
        let run = self.run();
        assert_eq!(
            (run.code, lines(&run)),
            (code, said.iter().map(|l| l.to_string()).collect::<Vec<_>>()),
            "{run:?}"
        );
        run
    }
}

impl Sandbox {
    /// A run of tend to write as a builder (see [`Pass`]).
    pub fn pass(&self) -> Pass<'_> {
        Pass {
            sb: self,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// tend as `tend_env` runs it, for a test that needs the process itself.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::cargo_bin("tend").unwrap();
        cmd.current_dir(self.dir())
            .args(["-f", "policy.tend"])
            .args(args);
        if !args.contains(&"--state-dir") {
            cmd.args(["--state-dir", "state"]);
        }
        // The host's own package managers (an unattended upgrade holding
        // dpkg's lock) never hold a test's restarts: tests that are about
        // package managers give their own root.
        if !args.contains(&"--pkg-root") {
            let root = self.path("no-pkgmgr");
            std::fs::create_dir_all(&root).unwrap();
            cmd.arg("--pkg-root").arg(root);
        }
        // Syslog goes to a socket nobody listens on unless a test says otherwise.
        cmd.env("TEND_SYSLOG_SOCKET", self.path("no-syslog"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let dir = self.dir().to_string_lossy().into_owned();
        for pid in all_pids() {
            if cmdline(pid).is_some_and(|c| c.contains(&dir)) {
                unsafe_kill(pid);
            }
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies /bin/sleep to `path` with cp, not in this process: a fork in
/// another test's thread would inherit our descriptor open for writing, and
/// an exec of the copy meanwhile would fail with ETXTBSY.
pub fn copy_sleep(path: &Path) {
    let copied = Command::new("cp")
        .arg("/bin/sleep")
        .arg(path)
        .status()
        .unwrap();
    assert!(copied.success());
}

fn unsafe_kill(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&raw);
    Some(text.trim_end_matches('\0').replace('\0', " "))
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Lines a pass printed, without the note about syslog being absent.
pub fn lines(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| !l.starts_with("tend: syslog not reached"))
        .map(str::to_string)
        .collect()
}

/// A dry run's lines after its first, which names the policy enforced
/// (checked here).
pub fn dry(run: &Run) -> String {
    let (first, rest) = run.stdout.split_once('\n').unwrap_or((&run.stdout, ""));
    assert!(
        first.starts_with("policy ") && first.contains("(sha256 "),
        "a dry run starts by naming the policy: {run:?}"
    );
    rest.to_string()
}

/// Waits up to 10 s for a condition the test needs before it goes on.
pub fn wait_for(mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < until, "condition not met within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids whose parent is `pid` (from /proc/PID/stat).
pub fn children_of(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let (_, rest) = s.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Pids of live processes whose command line contains `text`.
pub fn all_pids_matching(text: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| cmdline(p).is_some_and(|c| c.contains(text)) && !is_zombie(p))
        .collect()
}

/// A process this test started outside the sandbox's own helpers, killed
/// and reaped when dropped. Its output goes nowhere (never the test's pipe).
pub struct Started(std::process::Child);

impl Started {
    pub fn spawn(cmd: &mut Command, shows: &str) -> Started {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_for(|| cmdline(pid).is_some_and(|c| c.starts_with(shows)));
        Started(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
