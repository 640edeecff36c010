//! What tend remembers between runs: per service its status and what it
//! carries (the memory `decide` writes), and per host the policy error, the
//! pause whose end was said, the metrics error. The file format is these
//! types as JSON; `store.rs` reads and writes it.
//!
//! A one-shot agent forgets everything when it exits; without memory a
//! service that cannot start would be mailed about every five minutes forever
//! and a crash-looping daemon restarted without limit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::CpuSample;
use crate::probe::Checked;
use crate::scan::ProcessId;

/// Which status a service is in, without what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Running,
    Down,
    Restarting,
    Failing,
    BackingOff,
    GivenUp,
}

impl Kind {
    /// A status of this kind that knows nothing more.
    #[cfg(test)]
    pub(crate) fn bare(self) -> Status {
        let why = Why::default();
        match self {
            Kind::Running => Status::Running {
                process: None,
                replaced: None,
                note: None,
            },
            Kind::Down => Status::Down {
                waits: String::new(),
                reason: None,
                by: None,
            },
            Kind::Restarting => Status::Restarting { why },
            Kind::Failing => Status::Failing { why },
            Kind::BackingOff => Status::BackingOff { why },
            Kind::GivenUp => Status::GivenUp { why },
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Running => "running",
            Kind::Down => "down",
            Kind::Restarting => "restarting",
            Kind::Failing => "failing",
            Kind::BackingOff => "backing off",
            Kind::GivenUp => "given up",
        }
    }
}

/// The status of a service as the last pass left it, with what each
/// status knows. In the file, `status` names it and its fields sit beside
/// the record's own (the names of format 2, so its files read unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum Status {
    /// Seen running.
    Running {
        /// Its main process (none: a unit active without one).
        #[serde(flatten, default)]
        process: Option<ProcessId>,
        /// The pid whose replaced binary was reported (or restarted), so
        /// it is said once per process.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<u32>,
        /// What was last said that needs no action (too many processes),
        /// so it is said once while it lasts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Seen down while its restart waits (a package manager at work, a
    /// pause, a dependency, `when stopped`).
    Down {
        /// Why the restart waits, as `status` shows it (format 2 called it
        /// `failure`).
        #[serde(default, alias = "failure")]
        waits: String,
        /// What the look found (a stale pidfile, a failed check).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Held for this service alone (its own pause or window), or
        /// waited for after boot: its end is said if it is still down.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Wait>,
    },
    /// A restart was started and the pass did not finish (written before
    /// acting, so a pass killed mid-way is known to the next one).
    Restarting {
        #[serde(flatten)]
        why: Why,
    },
    /// The last restart failed.
    Failing {
        #[serde(flatten)]
        why: Why,
    },
    /// The restart budget is spent and the service is down: it is tried
    /// again at growing intervals (the next try in `Carried::episode`).
    BackingOff {
        #[serde(flatten)]
        why: Why,
    },
    /// The restart budget is spent (`then give up`); no more restarts until
    /// it is seen running or `tend reset`.
    GivenUp {
        #[serde(flatten)]
        why: Why,
    },
}

/// What holds one service's restart alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Wait {
    /// Its own pause (`tend pause ID`) or window (`hold during`).
    Hold,
    /// The host booted a short while ago (`after_boot`).
    Boot,
}

/// Why a service is not up: what the look found (a stale pidfile, a failed
/// check), and what its last restart failed with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Why {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<String>,
}

impl Status {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Status::Running { .. } => Kind::Running,
            Status::Down { .. } => Kind::Down,
            Status::Restarting { .. } => Kind::Restarting,
            Status::Failing { .. } => Kind::Failing,
            Status::BackingOff { .. } => Kind::BackingOff,
            Status::GivenUp { .. } => Kind::GivenUp,
        }
    }

    /// As `tend status` shows it: a service held alone is `paused`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Status::Down {
                by: Some(Wait::Hold),
                ..
            } => "paused",
            _ => self.kind().label(),
        }
    }

    /// What held its restart alone, if anything.
    pub(crate) fn waited(&self) -> Option<Wait> {
        match self {
            Status::Down { by, .. } => *by,
            _ => None,
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.kind() == Kind::Running
    }

    /// Why it is not up, with what its last restart failed with (None
    /// when running or held).
    fn why(&self) -> Option<&Why> {
        match self {
            Status::Running { .. } | Status::Down { .. } => None,
            Status::Restarting { why }
            | Status::Failing { why }
            | Status::BackingOff { why }
            | Status::GivenUp { why } => Some(why),
        }
    }

    /// What its last restart failed with.
    pub(crate) fn restart_failure(&self) -> Option<&str> {
        self.why().and_then(|w| w.failure.as_deref())
    }

    /// What `status` shows as its last failure: the restart's failure, or
    /// why the restart waits.
    pub(crate) fn failure(&self) -> Option<&str> {
        match self {
            Status::Down { waits, .. } => Some(waits.as_str()).filter(|w| !w.is_empty()),
            _ => self.restart_failure(),
        }
    }

    /// What the look found that made it not up.
    pub(crate) fn reason(&self) -> Option<&str> {
        match self {
            Status::Down { reason, .. } => reason.as_deref(),
            _ => self.why().and_then(|w| w.reason.as_deref()),
        }
    }

    /// The main process last seen running.
    pub(crate) fn process(&self) -> Option<ProcessId> {
        match self {
            Status::Running { process, .. } => *process,
            _ => None,
        }
    }

    /// The pid whose replaced binary was said.
    pub(crate) fn replaced(&self) -> Option<u32> {
        match self {
            Status::Running { replaced, .. } => *replaced,
            _ => None,
        }
    }

    pub(crate) fn note(&self) -> Option<&str> {
        match self {
            Status::Running { note, .. } => note.as_deref(),
            _ => None,
        }
    }
}

/// What is remembered of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceState {
    #[serde(flatten)]
    pub(crate) status: Status,
    /// When the service entered this status (unix seconds).
    pub(crate) since: i64,
    /// When restarts were attempted, oldest first; only those inside the
    /// budget's window are kept.
    #[serde(default)]
    pub(crate) restarts: Vec<i64>,
    /// When the current problem was last reported (for reminders).
    #[serde(default)]
    pub(crate) reported: Option<i64>,
    /// What is carried over whatever the status.
    #[serde(flatten)]
    pub(crate) carried: Carried,
}

/// What a service's memory carries over whatever its status (in the file,
/// beside the status's own fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Carried {
    /// The CPU time its process had used at the last pass (for `cpu above`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpu: Option<CpuSample>,
    /// The restart command running for it, written as soon as it is
    /// started: a pass killed meanwhile leaves it here, and the next pass
    /// waits for it instead of starting a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<Spawned>,
    /// What its checks (`port`, `http`, ...) found when they last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checks: Option<Checks>,
    /// Every restart attempted, kept across passes (unlike `restarts`,
    /// which keeps the budget's window): the metrics' counter.
    #[serde(default)]
    pub(crate) restarts_total: u64,
    /// Passes in a row its checks have failed (for `tolerate`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) failed_passes: u32,
    /// A run of trouble said once (flapping, crash-looping), until the
    /// service has stayed up long enough to be forgiven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) episode: Option<Episode>,
}

/// A service that keeps coming back down: said once when it starts, its
/// restarts quiet meanwhile, its end said once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Episode {
    /// When it began (unix seconds).
    pub(crate) since: i64,
    /// Flapping (down again after restarts that worked) or crash-looping
    /// (the budget spent: tried at growing intervals).
    pub(crate) kind: Trouble,
    /// Crash-looping: the tries made since the budget was spent ...
    #[serde(default)]
    pub(crate) tries: u32,
    /// ... and when the next one is due (unix seconds).
    #[serde(default)]
    pub(crate) next: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Trouble {
    Flapping,
    CrashLooping,
}

impl Trouble {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Trouble::Flapping => "flapping",
            Trouble::CrashLooping => "crash-looping",
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ServiceState {
    /// When tend next tries a crash-looping service, while it is down and
    /// backing off.
    pub(crate) fn next_try(&self) -> Option<i64> {
        self.carried
            .episode
            .filter(|_| self.status.kind() == Kind::BackingOff)
            .map(|e| e.next)
    }

    /// A service in `status` since `since`, with nothing else remembered.
    pub(crate) fn new(status: Status, since: i64) -> ServiceState {
        ServiceState {
            status,
            since,
            restarts: Vec::new(),
            reported: None,
            carried: Carried::default(),
        }
    }
}

/// The checks of a service as they last ran: when, and what each found
/// (up to the first that failed). Kept while the service is down and its
/// checks cannot run, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checks {
    /// Unix seconds.
    pub(crate) at: i64,
    pub(crate) each: Vec<Checked>,
}

/// A restart command started by a pass: its process group, the leader's
/// start time (to tell a reused pid), when it started, and the boot it
/// started in (the kernel's boot id: after a reboot the same pid and start
/// time can come again). A record with its boot is the pass's own word
/// that this group is its command, whatever the command became (`#!`
/// scripts run as `/bin/sh SCRIPT`); records of older versions have none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Spawned {
    pub(crate) pgid: u32,
    pub(crate) start_time: u64,
    pub(crate) since: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) boot: Option<String>,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// When the last pass finished (unix seconds).
    #[serde(default)]
    pub(crate) last_run: Option<i64>,
    /// By service id.
    #[serde(default)]
    pub(crate) services: BTreeMap<String, ServiceState>,
    /// The start of the last pause whose end was reported, so it is said
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pause_ended: Option<i64>,
    /// The digest of the policy the last pass enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<String>,
    /// The policy error last said, while the policy stays broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) policy_error: Option<PolicyError>,
    /// Why the metrics file could not be written, as last said (said again
    /// only when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metrics_error: Option<String>,
    /// Why syslog was not reached at the last pass that tried (said once
    /// per reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) syslog_error: Option<String>,
}

impl State {
    /// Times in the future (stamped while the clock was ahead) taken as
    /// now: restarts that would fill the budget for a day, a reminder that
    /// would not come for a month. How far ahead the furthest was.
    pub(crate) fn clamp(&mut self, now: i64) -> i64 {
        let mut ahead = 0;
        let fix = |t: &mut i64| {
            if *t > now {
                ahead = ahead.max(*t - now);
                *t = now;
            }
        };
        let mut times: Vec<&mut i64> = Vec::new();
        times.extend(self.last_run.as_mut());
        times.extend(self.pause_ended.as_mut());
        if let Some(p) = self.policy_error.as_mut() {
            times.push(&mut p.since);
            times.push(&mut p.said);
        }
        for s in self.services.values_mut() {
            times.push(&mut s.since);
            times.extend(s.restarts.iter_mut());
            times.extend(s.reported.as_mut());
            times.extend(s.carried.checks.as_mut().map(|c| &mut c.at));
            times.extend(s.carried.command.as_mut().map(|c| &mut c.since));
        }
        times.into_iter().for_each(fix);
        ahead
    }
}

/// A broken policy, remembered so that cron does not mail the same error
/// every five minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PolicyError {
    /// The error as said.
    pub(crate) error: String,
    /// Since when the policy has been broken, and when this error was last
    /// said.
    pub(crate) since: i64,
    pub(crate) said: i64,
}

/// A broken policy's error is said again after this long.
pub(crate) const POLICY_ERROR_REMIND: i64 = 86_400;

impl PolicyError {
    /// What to remember of `error` seen at `now`, and whether to say it: a
    /// new or different error is said at once, the same one once a day.
    pub(crate) fn next(prior: Option<&PolicyError>, error: &str, now: i64) -> (PolicyError, bool) {
        match prior {
            Some(p) if p.error == error && now - p.said < POLICY_ERROR_REMIND => (p.clone(), false),
            Some(p) => (
                PolicyError {
                    error: error.to_string(),
                    since: p.since,
                    said: now,
                },
                true,
            ),
            None => (
                PolicyError {
                    error: error.to_string(),
                    since: now,
                    said: now,
                },
                true,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_errors_are_said_once_then_daily_table() {
        let seen = |error: &str, since, said| PolicyError {
            error: error.into(),
            since,
            said,
        };
        let day = POLICY_ERROR_REMIND;
        for (prior, error, now, want, say) in [
            (None, "e1", 100, seen("e1", 100, 100), true),
            (
                Some(seen("e1", 100, 100)),
                "e1",
                400,
                seen("e1", 100, 100),
                false,
            ),
            (
                Some(seen("e1", 100, 100)),
                "e1",
                100 + day - 1,
                seen("e1", 100, 100),
                false,
            ),
            (
                Some(seen("e1", 100, 100)),
                "e1",
                100 + day,
                seen("e1", 100, 100 + day),
                true,
            ),
            (
                Some(seen("e1", 100, 100)),
                "e2",
                400,
                seen("e2", 100, 400),
                true,
            ),
        ] {
            assert_eq!(
                PolicyError::next(prior.as_ref(), error, now),
                (want, say),
                "{prior:?} {error} at {now}"
            );
        }
    }
}
