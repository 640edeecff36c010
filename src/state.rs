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

/// The status of a service as the last pass left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Seen running.
    Running,
    /// Seen down; the restart waits (a package manager at work, or a pause).
    Down,
    /// A restart was started and the pass did not finish (written before
    /// acting, so a pass killed mid-way is known to the next one).
    Restarting,
    /// The last restart failed.
    Failing,
    /// The restart budget is spent; no more restarts until it re-arms.
    GivenUp,
}

impl Status {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Down => "down",
            Status::Restarting => "restarting",
            Status::Failing => "failing",
            Status::GivenUp => "given up",
        }
    }
}

/// What is remembered of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceState {
    pub(crate) status: Status,
    /// When the service entered this status (unix seconds).
    pub(crate) since: i64,
    /// The pid last seen running, and its start time (seconds since boot
    /// epoch as sysinfo reports it), to tell a new process from the old.
    #[serde(default)]
    pub(crate) pid: Option<u32>,
    #[serde(default)]
    pub(crate) start_time: Option<u64>,
    /// When restarts were attempted, oldest first; only those inside the
    /// budget's window are kept.
    #[serde(default)]
    pub(crate) restarts: Vec<i64>,
    /// When the current problem was last reported (for reminders).
    #[serde(default)]
    pub(crate) reported: Option<i64>,
    /// The last failure, as reported (or why a restart is deferred).
    #[serde(default)]
    pub(crate) failure: Option<String>,
    /// The pid whose replaced binary was reported (or restarted), so it is
    /// said once per process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) replaced: Option<u32>,
    /// What was last said that needs no action (too many processes), so it
    /// is said once while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// Why the service was judged not up (a stale pidfile, a failed check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
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
}

impl ServiceState {
    /// A service in `status` since `since`, with nothing else remembered.
    pub(crate) fn new(status: Status, since: i64) -> ServiceState {
        ServiceState {
            status,
            since,
            pid: None,
            start_time: None,
            restarts: Vec::new(),
            reported: None,
            failure: None,
            replaced: None,
            note: None,
            reason: None,
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
