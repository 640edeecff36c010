//! Every policy the project ships parses and validates, and the README's
//! main command works.

use std::path::Path;

use assert_cmd::cargo::CommandCargoExt;

fn policy_files(dir: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tend"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_policy_validates() {
    let files: Vec<_> = policy_files("policies")
        .into_iter()
        .chain(policy_files("examples"))
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let out = std::process::Command::cargo_bin("tend")
            .unwrap()
            .arg("-f")
            .arg(&file)
            .arg("validate")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dry_run_of_the_shipped_policy_names_ssh_everywhere() {
    // Its own state and package manager root: what the host runs (an
    // upgrade in progress, an old pause) must not change what is asserted.
    let sandbox = tempfile::tempdir().unwrap();
    let out = std::process::Command::cargo_bin("tend")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--dry-run", "-f", "policies/services.tend"])
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .arg("--pkg-root")
        .arg(sandbox.path())
        .env("TEND_SYSLOG_SOCKET", sandbox.path().join("no-syslog"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("policy policies/services.tend (sha256 "),
        "{stdout}"
    );
    assert!(
        lines.next().unwrap().starts_with("OpenSSH (ssh): "),
        "{stdout}"
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
}

#[test]
fn version_names_the_git_revision_and_man_page_and_completions_generate() {
    let tend = |args: &[&str]| {
        std::process::Command::cargo_bin("tend")
            .unwrap()
            .args(args)
            .output()
            .unwrap()
    };
    let version = String::from_utf8(tend(&["--version"]).stdout).unwrap();
    assert!(
        version.starts_with(&format!("tend {} (git ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let man = tend(&["man"]);
    assert!(man.status.success());
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(man.contains(".TH tend 8"), "{man}");
    assert!(man.contains("pause"), "subcommands are in the man page");
    for shell in ["bash", "zsh", "fish"] {
        let out = tend(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("reset"),
            "{shell}"
        );
    }
    // The bash script is valid bash.
    let script = tend(&["completions", "bash"]).stdout;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tend.bash"), script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(dir.path().join("tend.bash"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

/// `tend man` carries the policy's attributes from the language's own
/// registry: every attribute docs/language.md's table names is there.
#[test]
fn the_man_page_lists_every_attribute_of_the_reference() {
    let out = std::process::Command::cargo_bin("tend")
        .unwrap()
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".SH \"POLICY ATTRIBUTES\"\n"), "{page}");
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md"))
            .unwrap();
    let table = doc
        .split_once("| attribute | value | default | meaning |")
        .unwrap()
        .1;
    let names: Vec<&str> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .map(|l| l.split('`').nth(1).unwrap())
        .collect();
    assert!(names.len() > 20, "{names:?}");
    for name in names {
        assert!(
            page.contains(&format!("\\fB{name}\\fR")),
            "{name} not in the man page"
        );
    }
}
