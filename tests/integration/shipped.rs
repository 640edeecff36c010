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

/// The packages' starter policy watches nothing, and its example, with each
/// line's `# ` removed as it says, is a policy `validate --strict` takes.
#[test]
fn the_starter_policy_watches_nothing_and_its_example_is_valid() {
    let starter = std::fs::read_to_string("policies/starter.tend").unwrap();
    let example: String = starter
        .lines()
        .skip_while(|l| !l.starts_with("# For example"))
        .skip_while(|l| *l != "#")
        .skip(1)
        .map(|l| {
            format!(
                "{}\n",
                l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l)
            )
        })
        .collect();
    assert!(example.contains("service ssh {"), "{example}");
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (&starter, "(0 services, 0 classes;"),
        (&example, "(2 services, 1 class;"),
    ] {
        let file = dir.path().join("p.tend");
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::cargo_bin("tend")
            .unwrap()
            .arg("-f")
            .arg(&file)
            .args(["validate", "--strict"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains(says),
            "{said}{}",
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
    assert!(man.contains(".TH TEND 8"), "{man}");
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

/// `tend man 5`, tend.tend(5), carries the policy's attributes from the
/// language's own registry: every attribute docs/language.md's table names
/// is there.
#[test]
fn the_man_page_lists_every_attribute_of_the_reference() {
    let out = std::process::Command::cargo_bin("tend")
        .unwrap()
        .args(["man", "5"])
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

/// Both pages render with man(1): tend(8) with its commands, EXAMPLES,
/// FILES, EXIT STATUS and ENVIRONMENT; tend.tend(5) with the language; and
/// each names in SEE ALSO only the other, which exists.
#[test]
fn the_man_pages_render_with_examples_files_and_see_also_that_exists() {
    let man = Path::new("/usr/bin/man");
    if !man.exists() {
        assert!(std::env::var_os("CI").is_none(), "CI installs man-db");
        eprintln!("skipped: man-db is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rendered = Vec::new();
    for (args, file) in [(&["man"][..], "tend.8"), (&["man", "5"][..], "tend.tend.5")] {
        let out = std::process::Command::cargo_bin("tend")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::fs::write(dir.path().join(file), &out.stdout).unwrap();
        let shown = std::process::Command::new(man)
            .arg("-l")
            .arg(dir.path().join(file))
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(shown.status.success(), "{shown:?}");
        // man(1) warns on stderr of a page it cannot format.
        let warnings = String::from_utf8_lossy(&shown.stderr).to_string();
        assert!(warnings.trim().is_empty(), "{file}: {warnings}");
        // Bold and underline as overstrikes (`N\x08N`): the plain text.
        let text = String::from_utf8_lossy(&shown.stdout).to_string();
        let mut plain = String::new();
        for c in text.chars() {
            if c == '\u{8}' {
                plain.pop();
            } else {
                plain.push(c);
            }
        }
        rendered.push(plain);
    }
    let (eight, five) = (&rendered[0], &rendered[1]);
    for section in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "EXAMPLES",
        "FILES",
        "EXIT STATUS",
        "ENVIRONMENT",
        "SEE ALSO",
    ] {
        assert!(
            eight.contains(&format!("\n{section}\n")),
            "tend(8) has no {section}:\n{eight}"
        );
    }
    for needed in [
        "tend --dry-run",
        "/var/lib/tend/state.json",
        "tend pause db --for 30m",
        "tend reset --all",
    ] {
        assert!(eight.contains(needed), "tend(8) lacks {needed:?}");
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "POLICY ATTRIBUTES",
        "SEE ALSO",
    ] {
        assert!(
            five.contains(&format!("\n{section}\n")),
            "tend.tend(5) has no {section}:\n{five}"
        );
    }
    // SEE ALSO names only pages that exist: each other.
    let see_also = |page: &str| -> Vec<String> {
        let after = page.split("\nSEE ALSO\n").nth(1).unwrap_or("");
        let block: String = after
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .collect::<Vec<_>>()
            .join(" ");
        block
            .split_whitespace()
            .map(|w| w.trim_end_matches(',').to_string())
            .filter(|w| w.contains('('))
            .collect()
    };
    assert_eq!(see_also(eight), ["tend.tend(5)"]);
    assert_eq!(see_also(five), ["tend(8)"]);
    // No page of a subcommand (tend-run(8)) is named anywhere.
    assert!(!eight.contains("tend-"), "{eight}");
}

/// Each command's `--help` teaches: its own options first, the shared ones
/// under their own heading, and examples; and it does nothing else.
#[test]
fn each_commands_help_has_examples_and_does_nothing() {
    let sb = crate::sandbox::Sandbox::new();
    sb.policy("service a { process \"/a\"; restart \"true\" }\n");
    for command in [
        "run", "validate", "status", "reset", "pause", "resume", "plan", "explain", "import", "man",
    ] {
        let help = sb.tend(&[command, "--help"]);
        assert_eq!(help.code, 0, "{command}: {help:?}");
        assert!(
            help.stdout.contains("\nExamples:\n  tend "),
            "{command}: {help:?}"
        );
        assert!(
            help.stdout.contains("\nOptions of every command:\n"),
            "{command}: {help:?}"
        );
    }
    let reset = sb.tend(&["reset", "--help"]);
    assert!(reset.stdout.contains("tend reset --all"), "{reset:?}");
    assert!(
        !sb.path("state").exists(),
        "a help paused or reset something"
    );
}
