// Puts the git revision the binary is built from into `tend --version`, so
// an admin can tell which build runs on a host. Outside a git checkout (a
// source tarball) it says `unknown`.
//
// Cargo reruns this script when a watched path changes, and on every build
// when a watched path does not exist: so only the files that exist and that
// HEAD resolves through are watched (HEAD, the branch's ref file, the packed
// refs), as git itself names them.
use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TEND_GIT_REV={rev}");
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
