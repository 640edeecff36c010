//! What tend tells an admin: the kinds of report, and the events of a
//! service with their wording.
//!
//! The JSON `event` names are a public contract (docs/fleet.md lists them):
//! they are defined here once, as [`Kind`]. The text of each service event
//! keeps the seed's CFEngine reports recognisable (`OpenSSH is not
//! running, restarting...`).

use std::fmt;

use serde::Serialize;

use crate::act::Failure;
use crate::check::Problem;
use crate::clock;

/// Every kind of report, as the JSON `event` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    // About one service.
    Restarting,
    Restarted,
    Failed,
    StillFailing,
    Recovered,
    RunningAgain,
    Flapping,
    CrashLooping,
    StillCrashLooping,
    Steady,
    GaveUp,
    StillGivenUp,
    Deferred,
    Replaced,
    Upgrading,
    Note,
    UpgradeFailed,
    // About the policy.
    PolicyBroken,
    PolicyFixed,
    /// Syslog only: the policy enforced changed.
    Policy,
    PolicyUnkept,
    // About the pass itself.
    LockHeld,
    LockFailed,
    StateDamaged,
    StateUnsaved,
    StateRefused,
    PauseDamaged,
    PauseCut,
    PauseEnded,
    MetricsUnwritten,
    Paused,
    Resumed,
    SyslogUnavailable,
    // About the channels.
    /// `tend notify test`: what a receiver answered.
    Notified,
    /// A channel's receiver refused or could not be reached (said once).
    NotifyFailed,
    /// Events dropped from a full outbox (said once).
    NotifyDropped,
}

impl Kind {
    /// Every kind, in the order docs/reports.md lists them.
    pub(crate) const ALL: [Kind; 36] = [
        Kind::Restarting,
        Kind::Restarted,
        Kind::Failed,
        Kind::StillFailing,
        Kind::Recovered,
        Kind::RunningAgain,
        Kind::Flapping,
        Kind::CrashLooping,
        Kind::StillCrashLooping,
        Kind::Steady,
        Kind::GaveUp,
        Kind::StillGivenUp,
        Kind::Deferred,
        Kind::Replaced,
        Kind::Upgrading,
        Kind::Note,
        Kind::UpgradeFailed,
        Kind::PolicyBroken,
        Kind::PolicyFixed,
        Kind::Policy,
        Kind::PolicyUnkept,
        Kind::LockHeld,
        Kind::LockFailed,
        Kind::StateDamaged,
        Kind::StateUnsaved,
        Kind::StateRefused,
        Kind::PauseDamaged,
        Kind::PauseCut,
        Kind::PauseEnded,
        Kind::MetricsUnwritten,
        Kind::Paused,
        Kind::Resumed,
        Kind::SyslogUnavailable,
        Kind::Notified,
        Kind::NotifyFailed,
        Kind::NotifyDropped,
    ];

    /// The kind a JSON name names.
    pub(crate) fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The name in JSON reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Restarting => "restarting",
            Kind::Restarted => "restarted",
            Kind::Failed => "failed",
            Kind::StillFailing => "still_failing",
            Kind::Recovered => "recovered",
            Kind::RunningAgain => "running_again",
            Kind::Flapping => "flapping",
            Kind::CrashLooping => "crash_looping",
            Kind::StillCrashLooping => "still_crash_looping",
            Kind::Steady => "steady",
            Kind::GaveUp => "gave_up",
            Kind::StillGivenUp => "still_given_up",
            Kind::Deferred => "deferred",
            Kind::Replaced => "replaced",
            Kind::Upgrading => "upgrading",
            Kind::Note => "note",
            Kind::UpgradeFailed => "upgrade_failed",
            Kind::PolicyBroken => "policy_broken",
            Kind::PolicyFixed => "policy_fixed",
            Kind::Policy => "policy",
            Kind::PolicyUnkept => "policy_unkept",
            Kind::LockHeld => "lock_held",
            Kind::LockFailed => "lock_failed",
            Kind::StateDamaged => "state_damaged",
            Kind::StateUnsaved => "state_unsaved",
            Kind::StateRefused => "state_refused",
            Kind::MetricsUnwritten => "metrics_unwritten",
            Kind::PauseDamaged => "pause_damaged",
            Kind::PauseCut => "pause_cut",
            Kind::PauseEnded => "pause_ended",
            Kind::Paused => "paused",
            Kind::Resumed => "resumed",
            Kind::SyslogUnavailable => "syslog_unavailable",
            Kind::Notified => "notified",
            Kind::NotifyFailed => "notify_failed",
            Kind::NotifyDropped => "notify_dropped",
        }
    }
}

/// Something worth telling the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// `times`: this is the Nth restart in a window that began S seconds ago.
    /// `after`: what it was waited for until now (its hold, the boot),
    /// said once as it ends with the service still down.
    Restarting {
        name: String,
        times: Option<(usize, i64)>,
        problem: Option<Problem>,
        after: Option<String>,
    },
    /// Restarted; its main process (none for a unit that remains active
    /// with no process, a oneshot).
    Restarted { name: String, pid: Option<u32> },
    Failed {
        name: String,
        command: String,
        failure: Failure,
    },
    /// A reminder: still failing, with the last failure.
    StillFailing {
        name: String,
        since: i64,
        failure: String,
    },
    /// Back after failing, thanks to a restart.
    Recovered { name: String, pid: Option<u32> },
    /// Back by itself; `failing`: what was wrong was a failed check, not
    /// a process gone.
    RunningAgain {
        name: String,
        since: i64,
        failing: bool,
    },
    /// Down again after restarts that worked: said once, its restarts
    /// quiet until it has stayed up `quiet` seconds.
    Flapping {
        name: String,
        restarts: usize,
        span: i64,
        quiet: i64,
    },
    /// The budget is spent: tried again at `next`, then at growing
    /// intervals up to `cap` seconds.
    CrashLooping {
        name: String,
        id: String,
        restarts: usize,
        span: i64,
        next: i64,
        cap: i64,
    },
    /// A reminder: still down and backing off.
    StillCrashLooping {
        name: String,
        id: String,
        since: i64,
        next: i64,
    },
    /// Up for `up` seconds after flapping or crash-looping since `since`:
    /// forgiven.
    Steady {
        name: String,
        trouble: &'static str,
        since: i64,
        up: i64,
    },
    GaveUp {
        name: String,
        id: String,
        restarts: usize,
        span: i64,
    },
    /// A reminder: still down, no longer restarted.
    StillGivenUp {
        name: String,
        id: String,
        since: i64,
    },
    /// Down for `span` seconds, restarts held by a package manager.
    Deferred {
        name: String,
        span: i64,
        why: String,
    },
    /// Its process runs a binary that was replaced on disk.
    Replaced { name: String, path: String },
    /// Same, and tend restarts it (`restart_on_upgrade`).
    Upgrading { name: String, path: String },
    /// Needs no action, said once while it lasts.
    Note { name: String, text: String },
    /// The restart to load an upgraded binary did not work.
    UpgradeFailed {
        name: String,
        command: String,
        failure: String,
    },
}

impl Event {
    /// Its kind: the `event` field of its JSON report.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Event::Restarting { .. } => Kind::Restarting,
            Event::Restarted { .. } => Kind::Restarted,
            Event::Failed { .. } => Kind::Failed,
            Event::StillFailing { .. } => Kind::StillFailing,
            Event::Recovered { .. } => Kind::Recovered,
            Event::RunningAgain { .. } => Kind::RunningAgain,
            Event::Flapping { .. } => Kind::Flapping,
            Event::CrashLooping { .. } => Kind::CrashLooping,
            Event::StillCrashLooping { .. } => Kind::StillCrashLooping,
            Event::Steady { .. } => Kind::Steady,
            Event::GaveUp { .. } => Kind::GaveUp,
            Event::StillGivenUp { .. } => Kind::StillGivenUp,
            Event::Deferred { .. } => Kind::Deferred,
            Event::Replaced { .. } => Kind::Replaced,
            Event::Upgrading { .. } => Kind::Upgrading,
            Event::Note { .. } => Kind::Note,
            Event::UpgradeFailed { .. } => Kind::UpgradeFailed,
        }
    }

    /// The fields of its JSON report beyond the common ones: always `name`,
    /// then what the event is about (docs/reports.md lists them).
    pub(crate) fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let (name, more) = match self {
            Event::Restarting {
                name,
                times,
                problem,
                after,
            } => (
                name,
                json!({
                    "restarts": times.map(|(n, _)| n),
                    "reason": problem.as_ref().map(Problem::why),
                    "after": after,
                }),
            ),
            Event::Restarted { name, pid } | Event::Recovered { name, pid } => (
                name,
                match pid {
                    Some(pid) => json!({ "pid": pid }),
                    None => json!({}),
                },
            ),
            Event::Failed {
                name,
                command,
                failure,
            } => (
                name,
                json!({ "command": command, "failure": failure.to_string() }),
            ),
            Event::UpgradeFailed {
                name,
                command,
                failure,
            } => (name, json!({ "command": command, "failure": failure })),
            Event::StillFailing {
                name,
                since,
                failure,
            } => (name, json!({ "since": since, "failure": failure })),
            Event::RunningAgain { name, since, .. } | Event::StillGivenUp { name, since, .. } => {
                (name, json!({ "since": since }))
            }
            Event::GaveUp {
                name,
                restarts,
                span,
                ..
            }
            | Event::Flapping {
                name,
                restarts,
                span,
                ..
            } => (name, json!({ "restarts": restarts, "seconds": span })),
            Event::CrashLooping {
                name,
                restarts,
                span,
                next,
                ..
            } => (
                name,
                json!({ "restarts": restarts, "seconds": span, "next_try": next }),
            ),
            Event::StillCrashLooping {
                name, since, next, ..
            } => (name, json!({ "since": since, "next_try": next })),
            Event::Steady {
                name,
                trouble,
                since,
                up,
            } => (
                name,
                json!({ "trouble": trouble, "since": since, "seconds": up }),
            ),
            Event::Deferred { name, span, why } => {
                (name, json!({ "seconds": span, "reason": why }))
            }
            Event::Replaced { name, path } | Event::Upgrading { name, path } => {
                (name, json!({ "path": path }))
            }
            Event::Note { name, text } => (name, json!({ "note": text })),
        };
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), name.clone().into());
        if let serde_json::Value::Object(more) = more {
            // Every documented field is present, null when it does not apply.
            fields.extend(more);
        }
        fields
    }

    pub(crate) fn is_error(&self) -> bool {
        matches!(
            self,
            Event::Failed { .. }
                | Event::StillFailing { .. }
                | Event::GaveUp { .. }
                | Event::StillGivenUp { .. }
                | Event::CrashLooping { .. }
                | Event::StillCrashLooping { .. }
                | Event::Deferred { .. }
                | Event::UpgradeFailed { .. }
        )
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Restarting { name, times, problem, after } => {
                let after = after.as_ref().map_or(String::new(), |a| format!(" {a}"));
                match problem {
                    None => write!(f, "{name} is not running{after}, restarting...")?,
                    Some(Problem::Absent(why)) => write!(f, "{name} is not running ({why}){after}, restarting...")?,
                    Some(Problem::Failing(why)) => write!(f, "{name} fails a check ({why}){after}, restarting...")?,
                }
                match times {
                    Some((n, s)) => write!(f, " ({} time in {})", ordinal(*n), clock::span(*s)),
                    None => Ok(()),
                }
            }
            Event::Restarted { name, pid: Some(pid) } => write!(f, "{name} restarted (pid {pid})"),
            Event::Restarted { name, pid: None } => write!(f, "{name} restarted"),
            Event::Failed { name, command, failure } => write!(f, "{name} failed to start! {command} {failure}"),
            Event::StillFailing { name, since, failure } => {
                write!(f, "{name} is still failing (down since {}): {failure}", clock::local_time(*since))
            }
            Event::Recovered { name, pid: Some(pid) } => write!(f, "{name} is running again (restarted, pid {pid})"),
            Event::Recovered { name, pid: None } => write!(f, "{name} is running again (restarted)"),
            Event::RunningAgain { name, since, failing } => {
                let was = if *failing { "was failing a check" } else { "was down" };
                write!(f, "{name} is running again ({was} since {})", clock::local_time(*since))
            }
            Event::Flapping { name, restarts, span, quiet } => write!(
                f,
                "{name} is flapping (down again, {} restart in {}), restarting...; its restarts are not mailed until it stays up {}",
                ordinal(*restarts + 1),
                clock::span(*span),
                clock::span(*quiet)
            ),
            Event::CrashLooping { name, id, restarts, span, next, cap } => write!(
                f,
                "{name} is crash-looping ({restarts} restarts in {}); tend tries again at {}, then at doubling intervals up to {}; run 'tend reset {id}' to try now",
                clock::span(*span),
                clock::local_time(*next),
                clock::span(*cap)
            ),
            Event::StillCrashLooping { name, id, since, next } => write!(
                f,
                "{name} is still crash-looping (down since {}); tend tries again at {}; run 'tend reset {id}' to try now",
                clock::local_time(*since),
                clock::local_time(*next)
            ),
            Event::Steady { name, trouble, since, up } => write!(
                f,
                "{name} has stayed up for {}: no longer {trouble} (since {})",
                clock::span(*up),
                clock::local_time(*since)
            ),
            Event::GaveUp { name, id, restarts, span: s } => write!(
                f,
                "{name}: giving up after {restarts} restarts in {}; run 'tend reset {id}' to try again",
                clock::span(*s)
            ),
            Event::StillGivenUp { name, id, since } => write!(
                f,
                "{name} is still down (since {}); tend gave up restarting it; run 'tend reset {id}' to try again",
                clock::local_time(*since)
            ),
            Event::Deferred { name, span: s, why } => {
                write!(f, "{name} is down; restart deferred for {}: {why}", clock::span(*s))
            }
            Event::Replaced { name, path } => {
                write!(f, "{name} runs a replaced binary ({path}); restart it to load the upgrade")
            }
            Event::Upgrading { name, path } => {
                write!(f, "{name} runs a replaced binary ({path}), restarting...")
            }
            Event::Note { name, text } => write!(f, "{name}: {text}"),
            Event::UpgradeFailed { name, command, failure } => {
                write!(f, "{name} failed to restart onto the upgrade! {command} {failure}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinal_table() {
        for (n, want) in [
            (1, "1st"),
            (2, "2nd"),
            (3, "3rd"),
            (4, "4th"),
            (11, "11th"),
            (12, "12th"),
            (13, "13th"),
            (21, "21st"),
            (22, "22nd"),
            (101, "101st"),
        ] {
            assert_eq!(ordinal(n), want);
        }
    }

    #[test]
    fn kind_names_are_what_serde_writes() {
        // The documented names, and serde's spelling of the same variants,
        // are one contract.
        for kind in [
            Kind::Restarting,
            Kind::StillGivenUp,
            Kind::UpgradeFailed,
            Kind::PolicyBroken,
            Kind::Policy,
            Kind::SyslogUnavailable,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.name())
            );
        }
    }
}
