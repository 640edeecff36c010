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
    let out = std::process::Command::cargo_bin("tend")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--dry-run", "-f", "policies/services.tend"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("OpenSSH (ssh): "), "{stdout}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
}
