//! The package manager hooks shipped in examples/, run the way each package
//! manager runs them: apt's snippet as `apt-config` reads it, the pacman
//! hooks' Exec lines, the dnf5 actions' commands, the dnf and yum plugins
//! with stand-ins for the dnf and yum modules, the zypper commit plugin fed
//! real frames. Each must pause and resume a real tend, and must succeed
//! quietly when tend is missing or fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sandbox::Sandbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tend {
    /// The built binary, with the sandbox's state dir.
    Real,
    /// A `tend` that complains and exits 3.
    Failing,
    /// No `tend` on the PATH.
    Absent,
    /// A `tend` that never ends.
    Hanging,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    After,
}

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(rel)
}

/// A program on the test's own PATH (the hooks get a PATH of their own).
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{program} is not installed"))
}

fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A PATH with the kind of `tend` asked for, then the system's bin dirs
/// (never /usr/local, where a real tend may be installed).
fn path_with(sb: &Sandbox, kind: Tend) -> String {
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    match kind {
        Tend::Real => script(
            &bin.join("tend"),
            &format!(
                "#!/bin/sh\nexec '{}' --state-dir '{}' \"$@\"\n",
                assert_cmd::cargo::cargo_bin("tend").display(),
                sb.path("state").display()
            ),
        ),
        Tend::Failing => script(&bin.join("tend"), "#!/bin/sh\necho broken >&2\nexit 3\n"),
        Tend::Absent => {}
        Tend::Hanging => script(&bin.join("tend"), "#!/bin/sh\nexec sleep 1000\n"),
    }
    format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", bin.display())
}

/// Runs a hook's command for both phases with each kind of tend: it always
/// exits 0, prints nothing on stderr, and ends within its time limit (2 s
/// here, by TEND_HOOK_TIMEOUT) even when tend hangs; with a real tend the
/// hook's own pause is set before and gone after.
fn check(hook: impl Fn(Phase) -> Command) {
    check_talk(|phase| (hook(phase), Vec::new()), |_, _| {});
}

/// `check`, for a hook that reads `input` on stdin; `answer` checks what it
/// printed.
fn check_talk(hook: impl Fn(Phase) -> (Command, Vec<u8>), answer: impl Fn(Phase, &[u8])) {
    use std::io::Write;
    for kind in [Tend::Real, Tend::Failing, Tend::Absent, Tend::Hanging] {
        let sb = Sandbox::new();
        let path = path_with(&sb, kind);
        for phase in [Phase::Before, Phase::After] {
            let (mut cmd, input) = hook(phase);
            let started = std::time::Instant::now();
            let mut child = cmd
                .env("PATH", &path)
                .env("TEND_HOOK_TIMEOUT", "2")
                .env("TEND_SYSLOG_SOCKET", sb.path("no-syslog"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&input).unwrap();
            let out = child.wait_with_output().unwrap();
            answer(phase, &out.stdout);
            let what = format!("{kind:?} tend, {phase:?}: {out:?}");
            assert!(out.status.success(), "{what}");
            assert!(
                started.elapsed().as_secs() < 8,
                "{what}: took {:?}",
                started.elapsed()
            );
            assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{what}");
            // The hook's own pause: `pause.NAME.json`, never the admin's.
            assert!(!sb.path("state/pause.json").exists(), "{what}");
            let paused = std::fs::read_dir(sb.path("state")).is_ok_and(|d| {
                d.flatten().any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("pause.") && n.ends_with(".json")
                })
            });
            assert_eq!(
                paused,
                kind == Tend::Real && phase == Phase::Before,
                "{what}"
            );
        }
    }
}

fn sh(command: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", command]);
    cmd
}

#[test]
fn apt_snippet_parses_and_its_commands_pause_and_resume() {
    let out = Command::new(which("apt-config"))
        .arg("-c")
        .arg(example("apt/80tend"))
        .args(["dump", "--format", "%f=%v%n"])
        .output()
        .unwrap();
    assert!(out.status.success(), "apt-config refused it: {out:?}");
    let dump = String::from_utf8(out.stdout).unwrap();
    let command = |key: &str| -> String {
        let found: Vec<&str> = dump
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}::=")))
            .filter(|v| v.contains("tend"))
            .collect();
        assert_eq!(found.len(), 1, "{key} in {dump}");
        found[0].to_string()
    };
    let (before, after) = (command("DPkg::Pre-Invoke"), command("DPkg::Post-Invoke"));
    check(|phase| match phase {
        Phase::Before => sh(&before),
        Phase::After => sh(&after),
    });
}

/// `Key = Value` lines of one section of a pacman hook.
fn hook_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
        } else if current == section {
            let (k, v) = line.split_once('=').expect("Key = Value");
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[test]
fn pacman_hooks_trigger_on_every_transaction_and_are_harmless() {
    let exec = |file: &str, when: &str| -> Vec<String> {
        let text = std::fs::read_to_string(example(file)).unwrap();
        let trigger = hook_section(&text, "Trigger");
        for op in ["Install", "Upgrade", "Remove"] {
            assert!(trigger.contains(&("Operation".into(), op.into())), "{file}");
        }
        assert!(
            trigger.contains(&("Type".into(), "Package".into())),
            "{file}"
        );
        assert!(trigger.contains(&("Target".into(), "*".into())), "{file}");
        let action = hook_section(&text, "Action");
        assert!(action.contains(&("When".into(), when.into())), "{file}");
        assert!(!action.iter().any(|(k, _)| k == "AbortOnFail"), "{file}");
        let exec = &action.iter().find(|(k, _)| k == "Exec").expect("Exec").1;
        // pacman splits Exec into words, honouring quotes, and runs no shell.
        shell_words::split(exec).unwrap()
    };
    check_argv(
        exec("pacman/tend-pause.hook", "PreTransaction"),
        exec("pacman/tend-resume.hook", "PostTransaction"),
    );
}

/// `check` for a hook that runs a program with arguments, no shell.
fn check_argv(before: Vec<String>, after: Vec<String>) {
    check(|phase| {
        let argv = if phase == Phase::Before {
            &before
        } else {
            &after
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd
    });
}

/// The words of a libdnf5 action command: split on spaces, `\` escapes.
fn dnf5_words(command: &str) -> Vec<String> {
    let mut words = vec![String::new()];
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => words.last_mut().unwrap().extend(chars.next()),
            ' ' if !words.last().unwrap().is_empty() => words.push(String::new()),
            ' ' => {}
            c => words.last_mut().unwrap().push(c),
        }
    }
    words
}

#[test]
fn dnf5_actions_pause_and_resume() {
    let text = std::fs::read_to_string(example("dnf5/tend.actions")).unwrap();
    let actions: Vec<(String, Vec<String>)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let fields: Vec<&str> = l.splitn(5, ':').collect();
            assert_eq!(fields.len(), 5, "{l}");
            assert_eq!(fields[1..4], ["", "", ""], "run once per transaction: {l}");
            (fields[0].to_string(), dnf5_words(fields[4]))
        })
        .collect();
    let argv = |callback: &str| {
        let found: Vec<&Vec<String>> = actions
            .iter()
            .filter(|(c, _)| c == callback)
            .map(|(_, argv)| argv)
            .collect();
        assert_eq!(found.len(), 1, "{callback}");
        found[0].clone()
    };
    check_argv(argv("pre_transaction"), argv("post_transaction"));
}

/// Stand-ins for the `dnf` and `yum.plugins` modules, enough to load the
/// plugins outside a package manager.
fn python_stubs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dnf")).unwrap();
    std::fs::write(
        dir.path().join("dnf/__init__.py"),
        "class Plugin(object):\n    def __init__(self, base=None, cli=None):\n        pass\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("yum")).unwrap();
    std::fs::write(dir.path().join("yum/__init__.py"), "").unwrap();
    std::fs::write(dir.path().join("yum/plugins.py"), "TYPE_CORE = 0\n").unwrap();
    dir
}

fn python(stubs: &Path, code: &str, plugin: &str) -> Command {
    let mut cmd = Command::new(which("python3"));
    cmd.env("PYTHONPATH", stubs)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-c", code])
        .arg(example(plugin));
    cmd
}

#[test]
fn python_plugins_compile() {
    for plugin in ["dnf/tend.py", "yum/tend.py", "zypper/tend"] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(which("python3"))
            .args(["-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"])
            .arg(example(plugin))
            .arg(dir.path().join("out.pyc"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{plugin}: {out:?}");
    }
    for conf in ["dnf/tend.conf", "yum/tend.conf"] {
        let text = std::fs::read_to_string(example(conf)).unwrap();
        assert_eq!(text, "[main]\nenabled=1\n", "{conf}");
    }
}

const LOAD: &str = "import importlib.util, sys\n\
    spec = importlib.util.spec_from_file_location('tend_plugin', sys.argv[1])\n\
    plugin = importlib.util.module_from_spec(spec)\n\
    spec.loader.exec_module(plugin)\n";

/// Loads a Python plugin and calls `before` or `after` on it.
fn check_plugin(plugin: &str, before: &str, after: &str) {
    let stubs = python_stubs();
    let (before, after) = (format!("{LOAD}{before}\n"), format!("{LOAD}{after}\n"));
    check(|phase| {
        let code = if phase == Phase::Before {
            &before
        } else {
            &after
        };
        python(stubs.path(), code, plugin)
    });
}

#[test]
fn dnf_plugin_pauses_before_and_resumes_after_the_transaction() {
    check_plugin(
        "dnf/tend.py",
        "plugin.Tend(None, None).pre_transaction()",
        "plugin.Tend(None, None).transaction()",
    );
}

#[test]
fn yum_plugin_pauses_before_and_resumes_after_the_transaction() {
    let conduit = "class Conduit(object):\n    def info(self, level, message):\n        pass\n";
    check_plugin(
        "yum/tend.py",
        &format!("{conduit}plugin.pretrans_hook(Conduit())"),
        &format!("{conduit}plugin.posttrans_hook(Conduit())"),
    );
}

#[test]
fn zypper_commit_plugin_acknowledges_every_frame() {
    // One conversation per phase, cut where the phase ends: libzypp's
    // frames up to COMMITBEGIN, then the rest.
    let frames = |phase: Phase| -> &'static [u8] {
        match phase {
            Phase::Before => {
                b"PLUGINBEGIN\nuserdata:x\n\n\0COMMITBEGIN\n\n{\"TransactionStepList\":[]}\0"
            }
            Phase::After => b"COMMITEND\n\n{}\0PLUGINEND\n\n\0_DISCONNECT\n\n\0",
        }
    };
    check_talk(
        |phase| {
            let mut cmd = Command::new(which("python3"));
            cmd.arg(example("zypper/tend"));
            (cmd, frames(phase).to_vec())
        },
        |phase, out| {
            let sent = frames(phase).iter().filter(|&&b| b == 0).count();
            assert_eq!(out, b"ACK\n\n\0".repeat(sent), "{phase:?}");
        },
    );
}

#[test]
fn git_pre_commit_hook_refuses_a_policy_that_does_not_validate() {
    let sb = Sandbox::new();
    let path = path_with(&sb, Tend::Real);
    let repo = sb.path("repo");
    std::fs::create_dir_all(repo.join(".git/hooks")).unwrap();
    let git = |args: &[&str]| {
        Command::new(which("git"))
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&repo)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert!(git(&["init", "-q"]).status.success());
    std::fs::copy(
        example("git/pre-commit"),
        repo.join(".git/hooks/pre-commit"),
    )
    .unwrap();
    std::fs::write(
        repo.join("ssh.tend"),
        "service ssh {\n  process \"/usr/sbin/sshd\"\n  restart \"x\"\n}\n",
    )
    .unwrap();
    assert!(git(&["add", "."]).status.success());
    let good = git(&["commit", "-q", "-m", "good"]);
    assert!(good.status.success(), "{good:?}");

    // Broken in the index, fixed only in the working tree: still refused.
    std::fs::write(repo.join("web.tend"), "service web {\n  restrat \"x\"\n}\n").unwrap();
    assert!(git(&["add", "web.tend"]).status.success());
    std::fs::write(
        repo.join("web.tend"),
        "service web {\n  process \"/w\"\n  restart \"x\"\n}\n",
    )
    .unwrap();
    let bad = git(&["commit", "-q", "-m", "bad"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{bad:?}");
    assert!(
        stderr.contains("web.tend:2:3: error: unknown attribute `restrat`"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was committed"), "{stderr}");
    let log = git(&["rev-list", "--count", "HEAD"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "1");
}
