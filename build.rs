// Puts the git revision the binary is built from into `tend --version`, so
// an admin can tell which build runs on a host. Outside a git checkout (a
// source tarball) it says `unknown`.
//
// And in a release build, where the linker is rustc's own lld (x86_64 Linux
// since Rust 1.90), hands it benches/hot.order, the functions a pass runs, so
// they lie side by side: the kernel maps code 64 KiB around each page a
// pass touches, and scattered they make nearly the whole binary resident
// (benches/hot-order.sh writes the file; docs/performance.md).
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

/// Whether this build links with lld, which takes a symbol order: rustc's
/// default for x86_64-unknown-linux-gnu since 1.90, unless a linker is set.
fn links_with_lld() -> bool {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("TARGET") != "x86_64-unknown-linux-gnu"
        || env("CARGO_ENCODED_RUSTFLAGS").contains("link")
        || std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
    {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    // "rustc 1.95.0 (...)"
    let version = String::from_utf8_lossy(&out.stdout);
    let mut parts = (version.split_whitespace().nth(1).unwrap_or(""))
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=benches/hot.order");
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("benches/hot.order");
    if std::env::var("PROFILE").as_deref() == Ok("release") && order.exists() && links_with_lld() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
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
