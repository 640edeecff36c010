//! Loading the policy: snapshot -> parse -> analyze -> [`Policy`], and the
//! last good copy when that fails.
//!
//! A policy is one file or a directory of `*.tend` files read in name order
//! ([`crate::snapshot`] reads them). Checking runs the parser on every file
//! and the analyzer on the whole, so that either a fully checked [`Policy`]
//! comes back or every problem in it, each with its file, line and column.
//! A pass never goes unmonitored because of a broken push: when the policy
//! cannot be used, the last good copy kept in the state directory is.

use std::path::Path;

use crate::analyzer;
use crate::clock;
use crate::diagnostic::{Diagnostic, PolicyErrors, Sources, Span};
use crate::parser;
use crate::policy::Policy;
use crate::snapshot::{self, Snapshot};

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unusable {
    /// Errors in its text (syntax, meaning), each with its place.
    #[error(transparent)]
    Text(#[from] PolicyErrors),
    /// It cannot be read, is refused (insecure, out of bounds), kept
    /// changing while read, or was emptied.
    #[error("{0:#}")]
    Read(anyhow::Error),
}

impl Unusable {
    /// In one line, for syslog and the first line of a report: the first
    /// error in the text (`web.tend:2:3: unknown attribute `restrat``, and
    /// how many more), or the error as it reads.
    pub(crate) fn summary(&self) -> String {
        let Unusable::Text(errors) = self else {
            return format!("{self:#}");
        };
        let Some(first) = errors.diagnostics.first() else {
            return format!("{self:#}");
        };
        let mut text = format!("{}: {}", errors.sources.locate(first.span), first.message);
        match errors.diagnostics.len() - 1 {
            0 => {}
            1 => text.push_str(" (and 1 more error)"),
            n => text.push_str(&format!(" (and {n} more errors)")),
        }
        text
    }

    /// `policy /etc/tend is broken: web.tend:2:3: ...` for errors in the
    /// policy's text; other errors (unreadable, insecure, changing) name
    /// the policy themselves.
    pub(crate) fn what_is_wrong(&self, path: &str) -> String {
        match self {
            Unusable::Text(_) => format!("policy {path} is broken: {}", self.summary()),
            Unusable::Read(_) => self.summary(),
        }
    }

    /// Each error in the text with its source excerpt.
    pub(crate) fn detail(&self) -> Option<String> {
        match self {
            Unusable::Text(errors) => Some(errors.report()),
            Unusable::Read(_) => None,
        }
    }
}

/// Parses and checks the files of a snapshot as one policy.
pub(crate) fn check(snapshot: &Snapshot) -> Result<Policy, PolicyErrors> {
    let mut sources = Sources::default();
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (file, bytes) in &snapshot.files {
        let bytes = without_bom(bytes);
        let (text, bad_utf8) = match String::from_utf8(bytes.to_vec()) {
            Ok(text) => (text, None),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
            }
        };
        let id = sources.add(file, text);
        if let Some(at) = bad_utf8 {
            errors.push(Diagnostic::error(
                Span::new(id, at, at + 1),
                "not valid UTF-8 text",
            ));
            continue;
        }
        let (parsed, mut syntax) = parser::parse(id, sources.text(id));
        errors.append(&mut syntax);
        items.push((id, parsed));
    }
    let (analyzed, mut semantic) = analyzer::analyze(&sources, items);
    errors.append(&mut semantic);
    if !errors.is_empty() {
        errors.sort_by_key(|d| (d.span.file, d.span.start));
        return Err(PolicyErrors {
            sources,
            diagnostics: errors,
        });
    }
    Ok(Policy {
        origin: snapshot.describe(),
        digest: snapshot.digest(),
        sources,
        classes: analyzed.classes,
        services: analyzed.services,
        channels: analyzed.channels,
    })
}

/// Reads and checks the policy at `paths` as it is (for `validate`, `plan`
/// and `explain`, which are for checking it).
pub(crate) fn read(paths: &[std::path::PathBuf], root_only: bool) -> Result<Policy, Unusable> {
    Ok(check(
        &snapshot::read(paths, root_only).map_err(Unusable::Read)?,
    )?)
}

/// The policy a command works with: the one at `-f` when it can be read
/// and checks, else the last good copy.
pub(crate) struct Enforced {
    pub(crate) policy: Policy,
    /// The policy as read, to keep as the last good copy (None when the
    /// copy is what is enforced).
    pub(crate) fresh: Option<Snapshot>,
    /// Why the policy at `-f` is not enforced, and where the copy is from.
    pub(crate) fallback: Option<Fallback>,
}

pub(crate) struct Fallback {
    /// The configured policy, as given.
    pub(crate) broken: String,
    pub(crate) error: Unusable,
    pub(crate) origin: String,
    pub(crate) saved: i64,
}

impl Enforced {
    /// `policy /etc/tend (sha256 1a2b3c4d5e6f)`, or which last good copy.
    pub(crate) fn describe(&self) -> String {
        match &self.fallback {
            None => format!(
                "policy {} (sha256 {})",
                self.policy.origin, self.policy.digest
            ),
            Some(f) => format!(
                "the last good policy, kept {} from {} (sha256 {})",
                clock::local_time(f.saved),
                f.origin,
                self.policy.digest
            ),
        }
    }

    /// One line: why the configured policy is not enforced, and what is.
    pub(crate) fn fallback_line(&self) -> String {
        match &self.fallback {
            Some(f) => format!(
                "{}; enforcing {} until it is fixed",
                f.error.what_is_wrong(&f.broken),
                self.describe()
            ),
            None => String::new(),
        }
    }

    /// The first line of a dry run and of `status`: the policy enforced.
    pub(crate) fn headline(&self) -> String {
        match &self.fallback {
            None => self.describe(),
            Some(_) => format!("tend: {}", self.fallback_line()),
        }
    }

    /// The source excerpts of the configured policy's errors, when it is
    /// broken in its text.
    pub(crate) fn fallback_detail(&self) -> Option<String> {
        self.fallback.as_ref().and_then(|f| f.error.detail())
    }
}

/// Neither the policy nor a last good copy can be used: why not, and why
/// the copy cannot either (None: there is none, or no state directory).
#[derive(Debug)]
pub(crate) struct NotEnforced {
    pub(crate) error: Unusable,
    pub(crate) copy: Option<String>,
}

impl std::fmt::Display for NotEnforced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.copy {
            Some(why) => write!(
                f,
                "and the last good policy cannot be used: {why}: {:#}",
                self.error
            ),
            None => write!(f, "{:#}", self.error),
        }
    }
}

impl std::error::Error for NotEnforced {}

/// Reads and checks the policy at `path`; when that fails, the last good
/// copy in the state dir (none when the state dir is refused). Fails only
/// when neither can be had.
pub(crate) fn enforce(
    path: &Path,
    state_dir: Option<&Path>,
    root_only: bool,
) -> Result<Enforced, NotEnforced> {
    let read = snapshot::read(&[path.to_path_buf()], root_only).map_err(Unusable::Read);
    let error = match read.and_then(|s| Ok(check(&s).map(|p| (s, p))?)) {
        Ok((fresh, policy)) => match state_dir.and_then(|dir| shrank(&fresh, &policy, dir)) {
            None => {
                return Ok(Enforced {
                    policy,
                    fresh: Some(fresh),
                    fallback: None,
                })
            }
            Some(why) => Unusable::Read(anyhow::anyhow!(why)),
        },
        Err(e) => e,
    };
    let Some(state_dir) = state_dir else {
        return Err(NotEnforced { error, copy: None });
    };
    let copy = match snapshot::last_good(state_dir) {
        Ok(Some(good)) => check(&good.snapshot)
            .map(|p| (good, p))
            .map_err(Unusable::from),
        Ok(None) => return Err(NotEnforced { error, copy: None }),
        Err(e) => Err(Unusable::Read(e)),
    };
    match copy {
        Ok((good, policy)) => Ok(Enforced {
            policy,
            fresh: None,
            fallback: Some(Fallback {
                broken: path.display().to_string(),
                error,
                origin: good.origin,
                saved: good.saved,
            }),
        }),
        Err(e) => Err(NotEnforced {
            error,
            copy: Some(e.summary()),
        }),
    }
}

/// Whether a policy file has nothing in it but blanks (what a writer that
/// truncates first leaves until it writes).
fn blank(bytes: &[u8]) -> bool {
    without_bom(bytes).iter().all(u8::is_ascii_whitespace)
}

/// A file's bytes without the byte-order mark some Windows editors write:
/// it is not text.
fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Why a policy that checks is still not to be trusted: it lost everything
/// the last good copy had (an emptied file, or no services left), which is
/// what a copy or an editor caught between truncating and writing leaves.
/// Deleting a file, or removing services one by one, is not suspicious; an
/// admin who means it confirms with `tend validate --accept-empty`, which
/// makes this policy the last good one.
pub(crate) fn shrank(fresh: &Snapshot, policy: &Policy, state_dir: &Path) -> Option<String> {
    let emptied: Vec<&std::path::PathBuf> = fresh
        .files
        .iter()
        .filter(|(_, bytes)| blank(bytes))
        .map(|(path, _)| path)
        .collect();
    if emptied.is_empty() && !policy.services.is_empty() {
        return None;
    }
    let good = snapshot::last_good(state_dir).ok().flatten()?;
    if good.snapshot.digest() == fresh.digest() {
        return None;
    }
    const CONFIRM: &str =
        "being written?); not using it until it is whole, or confirmed with `tend validate --accept-empty`";
    for path in emptied {
        let name = path.file_name();
        let had = good
            .snapshot
            .files
            .iter()
            .any(|(kept, bytes)| kept.file_name() == name && !blank(bytes));
        if had {
            return Some(format!(
                "policy file {} is empty, where its last good copy was not ({CONFIRM}",
                path.display()
            ));
        }
    }
    let kept = check(&good.snapshot).map_or(0, |p| p.services.len());
    (policy.services.is_empty() && kept > 0).then(|| {
        format!(
            "policy {} has no services, where its last good copy had {kept} ({CONFIRM}",
            fresh.describe()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DEFAULT_GRACE, DEFAULT_TIMEOUT};
    use proptest::prelude::*;

    fn load_text(bytes: &[u8]) -> Result<Policy, PolicyErrors> {
        let policy = check(&Snapshot {
            origin: vec!["p.tend".into()],
            files: vec![("p.tend".into(), bytes.to_vec())],
        });
        // Rendering every diagnostic must not panic either.
        if let Err(e) = &policy {
            let _ = format!("{e:#}");
        }
        policy
    }

    proptest! {
        #[test]
        fn loading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = load_text(&bytes);
        }

        #[test]
        fn loading_service_soup_never_panics(
            lines in proptest::collection::vec(
                proptest::sample::select(vec![
                    "service a {", "service a {}", "}", "  process \"/a\"", "  process \"(\"",
                    "  restart \"x\"", "  restart \"'\"", "  restart \"\"", "  shell yes", "  shell",
                    "  timeout 0", "  timeout 5 min", "  grace 99999999999999999999d", "  name",
                    "  bogus 1", "class c = c", "class d = hostname(\"[\")", "web|dns::", "x(\"y\")::",
                    "  process 'a' 'b'", "  name \"é\\\"\"",
                ]),
                0..25,
            )
        ) {
            let _ = load_text(lines.join("\n").as_bytes());
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_policy() {
        let p = load_text(
            b"\xEF\xBB\xBFservice ssh {\n process \"/usr/sbin/sshd\"\n restart \"r\"\n}\n",
        )
        .unwrap();
        assert_eq!(p.services[0].id, "ssh");
        let e = load_text(b"\xEF\xBB\xBFservice ssh {\n bogus 1\n}\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("p.tend:2:2: error: unknown attribute `bogus`"),
            "{e:#}"
        );
    }

    #[test]
    fn a_valid_policy_loads_with_defaults() {
        let p = load_text(b"service ssh {\n process \"/usr/sbin/sshd\"\n restart \"/usr/sbin/invoke-rc.d ssh restart\"\n}\n")
            .unwrap();
        let s = &p.services[0];
        assert_eq!(
            (s.name.as_str(), s.timeout, s.grace),
            ("ssh", DEFAULT_TIMEOUT, DEFAULT_GRACE)
        );
        assert_eq!(
            s.restart.as_ref().unwrap().argv,
            ["/usr/sbin/invoke-rc.d", "ssh", "restart"]
        );
    }
}
