//! A maintenance window: `tend pause` (the admin's) and the package
//! managers' hooks (each its own file) hold restarts until their end, at
//! most a day, and a pass says once when one ended.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::file;

/// The admin's pause file in the state directory (hooks write
/// `pause.NAME.json`).
pub(crate) const PAUSE_FILE: &str = "pause.json";

/// Each service's own pause, by service id.
pub(crate) type Holds = std::collections::BTreeMap<String, Pause>;

/// The longest pause: a forgotten one must not disable monitoring for good.
pub(crate) const MAX_PAUSE: u64 = 86_400;

/// A maintenance window set by `tend pause`: restarts wait until `until`.
/// It lives in its own file so that `pause` and `resume` (run from package
/// manager hooks) never wait for a pass's lock.
///
/// Pauses have owners: an admin's (`pause.json`) and each package manager
/// hook's (`tend pause --by apt`: `pause.apt.json`), so a hook's resume ends
/// only the hook's own pause, never an admin's maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pause {
    pub(crate) since: i64,
    pub(crate) until: i64,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// Who set it (`--by`); None is an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) by: Option<String>,
    /// The one service it holds (`tend pause ID`); None: every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) service: Option<String>,
}

/// How far ahead of this clock a pause may say it began (clocks of one
/// host's commands differ by little; a year means a wrong clock).
const PAUSE_SKEW: i64 = 300;

/// A name for `--by`: short, plain, usable in a file name.
pub(crate) fn pause_owner(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        bail!("--by {name:?}: a name of lower-case letters, digits, - and _ (at most 32), such as apt");
    }
    Ok(())
}

/// The file a pause of `by` lives in; a service's own, `hold.ID.json`.
pub(crate) fn pause_file(by: Option<&str>, service: Option<&str>) -> String {
    match (service, by) {
        (Some(id), _) => format!("hold.{id}.json"),
        (None, None) => PAUSE_FILE.to_string(),
        (None, Some(by)) => format!("pause.{by}.json"),
    }
}

/// Whether a file of the state directory is a pause's.
pub(crate) fn is_pause_file(name: &str) -> bool {
    name == PAUSE_FILE
        || [("pause.", 6), ("hold.", 5)].iter().any(|(prefix, len)| {
            name.starts_with(prefix) && name.ends_with(".json") && name.len() > len + 5
        })
}

/// A service id for `tend pause ID`: as the policy language writes one
/// (letters, digits, `_`, `-`), so it is a plain file name.
pub(crate) fn service_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        bail!("{id:?} is not a service id (letters, digits, _ and -)");
    }
    Ok(())
}

impl Pause {
    /// The pause as it may be honoured at `now`: one that began in the
    /// future (set with a wrong clock) begins now, and none lasts more than
    /// [`MAX_PAUSE`] from its start, whatever its file says. With the cut,
    /// a line that says what was cut.
    pub(crate) fn bounded(&self, now: i64) -> (Pause, Option<String>) {
        let mut p = self.clone();
        let mut why = Vec::new();
        if p.since > now + PAUSE_SKEW {
            why.push(format!(
                "began in the future ({}; set with a wrong clock?)",
                clock::local_time(p.since)
            ));
            p.until = now + (p.until - p.since).max(0);
            p.since = now;
        }
        if p.until - p.since > MAX_PAUSE as i64 {
            why.push(format!(
                "lasted more than 24h (until {})",
                clock::local_time(p.until)
            ));
            p.until = p.since + MAX_PAUSE as i64;
        }
        if why.is_empty() {
            return (p, None);
        }
        let line = format!(
            "{} and {}; it now ends {}",
            why.join(" and "),
            "a pause always ends",
            clock::local_time(p.until)
        );
        (p, Some(line))
    }

    /// Of pauses of single services, each service's (the one that holds
    /// it longest).
    pub(crate) fn holds(pauses: impl IntoIterator<Item = Pause>) -> Holds {
        let mut holds = Holds::new();
        for p in pauses {
            if let Some(id) = p.service.clone() {
                let longer = holds.get(&id).is_none_or(|h: &Pause| h.until < p.until);
                if longer {
                    holds.insert(id, p);
                }
            }
        }
        holds
    }

    /// Of several pauses, the one that holds restarts longest, else the
    /// one that ended last (to say it ended).
    pub(crate) fn current(pauses: impl IntoIterator<Item = Pause>, now: i64) -> Option<Pause> {
        pauses
            .into_iter()
            .max_by_key(|p| (p.until > now, p.until, p.since))
    }

    /// `until 2026-11-21 14:30 (kernel upgrade)`
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("until {}", clock::local_time(self.until));
        if let Some(by) = &self.by {
            text.push_str(&format!(" by {by}"));
        }
        // Whoever wrote the pause file wrote the reason: one line, escaped.
        if let Some(reason) = &self.reason {
            text.push_str(&format!(" ({})", file::quote(reason, 200)));
        }
        text
    }
}
