//! What to do about each service, given what was seen, what was remembered
//! and the time.
//!
//! Pure functions, no I/O: every rule is a row in a table test. `decide`
//! runs before acting and says whether to restart, what to say, and what to
//! remember (written before any command runs, so a pass killed mid-way is
//! known to the next one); `settle` runs after a restart with its outcome.
//!
//! The rules, so that cron mail carries only changes:
//! - a restart is announced, unless the service was already failing (then
//!   attempts go on quietly, with a reminder every `remind`);
//! - a restart that works is reported; a failure is reported once;
//! - a service found running after being down is reported once;
//! - every attempt counts against the budget (`limit N restarts within W`),
//!   also when the restart worked but the service died again (flapping);
//!   when it is spent tend gives up, says so once, and reminds every
//!   `remind`; it re-arms when the service is seen running by itself or on
//!   `tend reset`.

use crate::act::Outcome;
use crate::report::Event;
use crate::state::{ServiceState, Status};

/// The restart budget and reminder interval of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many restarts ...
    pub restarts: usize,
    /// ... within this many seconds.
    pub within: i64,
    /// Seconds between reminders of a problem that lasts; None: never.
    pub remind: Option<i64>,
}

/// One service, as this pass sees it.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The process that is this service (pid, start time), if any.
    pub running: Option<(u32, Option<u64>)>,
    /// What the last pass remembered.
    pub prior: Option<&'a ServiceState>,
    pub limits: Limits,
    pub now: i64,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What to remember (before acting, when restarting).
    pub state: ServiceState,
    pub event: Option<Event>,
    pub restart: bool,
}

fn due(last: Option<i64>, every: Option<i64>, now: i64) -> bool {
    match (last, every) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(last), Some(every)) => now - last >= every,
    }
}

pub fn decide(input: &Input) -> Step {
    let now = input.now;
    let prior_status = input.prior.map(|p| p.status);
    let window_start = now - input.limits.within;
    let mut restarts: Vec<i64> = input
        .prior
        .map(|p| {
            p.restarts
                .iter()
                .copied()
                .filter(|&t| t > window_start)
                .collect()
        })
        .unwrap_or_default();
    let fresh = |status, since| ServiceState {
        status,
        since,
        pid: None,
        start_time: None,
        restarts: Vec::new(),
        reported: None,
        failure: None,
    };

    if let Some((pid, start_time)) = input.running {
        let came_back = matches!(
            prior_status,
            Some(Status::Down | Status::Failing | Status::GivenUp)
        );
        let since = match (prior_status, input.prior) {
            (Some(Status::Running), Some(p)) => p.since,
            _ => now,
        };
        let event = match (came_back, input.prior) {
            (true, Some(p)) => Some(Event::RunningAgain {
                name: input.name.to_string(),
                since: p.since,
            }),
            _ => None,
        };
        if prior_status == Some(Status::GivenUp) {
            restarts.clear(); // re-armed
        }
        let state = ServiceState {
            pid: Some(pid),
            start_time,
            restarts,
            ..fresh(Status::Running, since)
        };
        return Step {
            state,
            event,
            restart: false,
        };
    }

    let prior = input.prior.cloned();
    let down_since = match (&prior, prior_status) {
        (Some(p), Some(Status::Down | Status::Failing | Status::GivenUp | Status::Restarting)) => {
            p.since
        }
        _ => now,
    };
    let (reported, failure) = prior
        .as_ref()
        .map(|p| (p.reported, p.failure.clone()))
        .unwrap_or_default();

    if prior_status == Some(Status::GivenUp) {
        let remind = due(reported, input.limits.remind, now);
        let state = ServiceState {
            restarts,
            reported: if remind { Some(now) } else { reported },
            failure,
            ..fresh(Status::GivenUp, down_since)
        };
        let event = remind.then(|| Event::StillGivenUp {
            name: input.name.to_string(),
            id: input.id.to_string(),
            since: down_since,
        });
        return Step {
            state,
            event,
            restart: false,
        };
    }

    if restarts.len() >= input.limits.restarts {
        let event = Event::GaveUp {
            name: input.name.to_string(),
            id: input.id.to_string(),
            restarts: restarts.len(),
            span: restarts.first().map_or(0, |first| now - first),
        };
        let state = ServiceState {
            restarts,
            reported: Some(now),
            failure,
            ..fresh(Status::GivenUp, down_since)
        };
        return Step {
            state,
            event: Some(event),
            restart: false,
        };
    }

    let announce = prior_status != Some(Status::Failing);
    let times = restarts
        .first()
        .map(|first| (restarts.len() + 1, now - first));
    restarts.push(now);
    let event = announce.then(|| Event::Restarting {
        name: input.name.to_string(),
        times,
    });
    let state = ServiceState {
        restarts,
        reported,
        failure,
        ..fresh(Status::Restarting, down_since)
    };
    Step {
        state,
        event,
        restart: true,
    }
}

/// After a restart: what to remember and what to say. `step` is what
/// `decide` returned for the same input.
pub fn settle(
    input: &Input,
    step: &ServiceState,
    command: &str,
    outcome: &Outcome,
) -> (ServiceState, Option<Event>) {
    let now = input.now;
    let was_failing = input.prior.map(|p| p.status) == Some(Status::Failing);
    match outcome {
        Outcome::Restarted { pid, start_time } => {
            let state = ServiceState {
                status: Status::Running,
                since: now,
                pid: Some(*pid),
                start_time: *start_time,
                restarts: step.restarts.clone(),
                reported: None,
                failure: None,
            };
            let name = input.name.to_string();
            let event = if was_failing {
                Event::Recovered { name, pid: *pid }
            } else {
                Event::Restarted { name, pid: *pid }
            };
            (state, Some(event))
        }
        Outcome::Failed(failure) => {
            let text = format!("{command} {failure}");
            let remind = !was_failing || due(step.reported, input.limits.remind, now);
            let state = ServiceState {
                status: Status::Failing,
                failure: Some(text.clone()),
                reported: if remind { Some(now) } else { step.reported },
                ..step.clone()
            };
            let name = input.name.to_string();
            let event = match (was_failing, remind) {
                (false, _) => Some(Event::Failed {
                    name,
                    command: command.to_string(),
                    failure: failure.clone(),
                }),
                (true, true) => Some(Event::StillFailing {
                    name,
                    since: step.since,
                    failure: text,
                }),
                (true, false) => None,
            };
            (state, event)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::Failure;

    const LIMITS: Limits = Limits {
        restarts: 3,
        within: 3600,
        remind: Some(6 * 3600),
    };
    const NOW: i64 = 100_000;

    fn prior(status: Status, since: i64, restarts: &[i64], reported: Option<i64>) -> ServiceState {
        ServiceState {
            status,
            since,
            pid: None,
            start_time: None,
            restarts: restarts.to_vec(),
            reported,
            failure: None,
        }
    }

    fn input<'a>(running: bool, prior: Option<&'a ServiceState>) -> Input<'a> {
        Input {
            id: "ssh",
            name: "OpenSSH",
            running: running.then_some((42, Some(7))),
            prior,
            limits: LIMITS,
            now: NOW,
        }
    }

    /// (running now, prior state) -> (status after, restart?, event line)
    #[test]
    fn decide_table() {
        let t = NOW;
        type Row = (bool, Option<ServiceState>, Status, bool, Option<String>);
        let rows: Vec<Row> = vec![
            // First sight.
            (true, None, Status::Running, false, None),
            (false, None, Status::Restarting, true, Some("OpenSSH is not running, restarting...".into())),
            // Steady running is silent.
            (true, Some(prior(Status::Running, t - 500, &[], None)), Status::Running, false, None),
            // Came back by itself.
            (true, Some(prior(Status::Failing, t - 600, &[t - 600], Some(t - 600))), Status::Running, false,
             Some("OpenSSH is running again (was down since @)".into())),
            (true, Some(prior(Status::GivenUp, t - 600, &[t - 900, t - 600], Some(t - 600))), Status::Running, false,
             Some("OpenSSH is running again (was down since @)".into())),
            // A pass killed mid-restart: service up, nothing said twice.
            (true, Some(prior(Status::Restarting, t - 300, &[t - 300], None)), Status::Running, false, None),
            // Flapping: restarted fine, down again.
            (false, Some(prior(Status::Running, t - 300, &[t - 600], None)), Status::Restarting, true,
             Some("OpenSSH is not running, restarting... (2nd time in 10 min)".into())),
            (false, Some(prior(Status::Running, t - 300, &[t - 2400, t - 600], None)), Status::Restarting, true,
             Some("OpenSSH is not running, restarting... (3rd time in 40 min)".into())),
            // Old restarts fall out of the window.
            (false, Some(prior(Status::Running, t - 300, &[t - 7200, t - 5000], None)), Status::Restarting, true,
             Some("OpenSSH is not running, restarting...".into())),
            // Already failing: retry quietly.
            (false, Some(prior(Status::Failing, t - 300, &[t - 300], Some(t - 300))), Status::Restarting, true, None),
            // Budget spent: give up, once.
            (false, Some(prior(Status::Failing, t - 900, &[t - 900, t - 600, t - 300], Some(t - 900))), Status::GivenUp, false,
             Some("OpenSSH: giving up after 3 restarts in 15 min; run 'tend reset ssh' to try again".into())),
            (false, Some(prior(Status::Running, t - 100, &[t - 900, t - 600, t - 300], None)), Status::GivenUp, false,
             Some("OpenSSH: giving up after 3 restarts in 15 min; run 'tend reset ssh' to try again".into())),
            // Given up: silent, no restart, until the reminder is due.
            (false, Some(prior(Status::GivenUp, t - 900, &[t - 900], Some(t - 600))), Status::GivenUp, false, None),
            (false, Some(prior(Status::GivenUp, t - 30000, &[], Some(t - 6 * 3600))), Status::GivenUp, false,
             Some("OpenSSH is still down (since @); tend gave up restarting it; run 'tend reset ssh' to try again".into())),
        ];
        for (i, (running, prior, want_status, want_restart, want_event)) in
            rows.into_iter().enumerate()
        {
            let step = decide(&input(running, prior.as_ref()));
            let since = prior
                .as_ref()
                .map(|p| crate::report::local_time(p.since))
                .unwrap_or_default();
            let event = step.event.as_ref().map(|e| e.to_string());
            let want_event = want_event.map(|e| e.replace('@', &since));
            assert_eq!(
                (step.state.status, step.restart, event),
                (want_status, want_restart, want_event),
                "row {i}"
            );
        }
    }

    #[test]
    fn every_attempt_is_remembered_before_acting() {
        let p = prior(Status::Running, 1, &[NOW - 60], None);
        let step = decide(&input(false, Some(&p)));
        assert_eq!(step.state.restarts, vec![NOW - 60, NOW]);
        assert_eq!(step.state.since, NOW);
    }

    #[test]
    fn given_up_re_arms_when_seen_running() {
        let p = prior(Status::GivenUp, 1, &[NOW - 60, NOW - 30], Some(NOW));
        assert!(decide(&input(true, Some(&p))).state.restarts.is_empty());
    }

    /// (prior status, outcome) -> (status after, event line)
    #[test]
    fn settle_table() {
        let failed = Outcome::Failed(Failure::Exited {
            status: "exited 1".into(),
            last_line: Some("no config".into()),
        });
        let ok = Outcome::Restarted {
            pid: 77,
            start_time: None,
        };
        let rows: Vec<(Option<ServiceState>, &Outcome, Status, Option<&str>)> = vec![
            (
                None,
                &ok,
                Status::Running,
                Some("OpenSSH restarted (pid 77)"),
            ),
            (
                None,
                &failed,
                Status::Failing,
                Some("OpenSSH failed to start! rc exited 1: no config"),
            ),
            (
                Some(prior(
                    Status::Failing,
                    NOW - 300,
                    &[NOW - 300],
                    Some(NOW - 300),
                )),
                &ok,
                Status::Running,
                Some("OpenSSH is running again (restarted, pid 77)"),
            ),
            (
                Some(prior(
                    Status::Failing,
                    NOW - 300,
                    &[NOW - 300],
                    Some(NOW - 300),
                )),
                &failed,
                Status::Failing,
                None,
            ),
            (
                Some(prior(
                    Status::Failing,
                    NOW - 30000,
                    &[],
                    Some(NOW - 6 * 3600),
                )),
                &failed,
                Status::Failing,
                Some("OpenSSH is still failing (down since @): rc exited 1: no config"),
            ),
        ];
        for (i, (prior, outcome, want_status, want_event)) in rows.into_iter().enumerate() {
            let inp = input(false, prior.as_ref());
            let step = decide(&inp);
            let (state, event) = settle(&inp, &step.state, "rc", outcome);
            let since = prior
                .as_ref()
                .map(|p| crate::report::local_time(p.since))
                .unwrap_or_default();
            let want_event = want_event.map(|e| e.replace('@', &since));
            assert_eq!(
                (state.status, event.map(|e| e.to_string())),
                (want_status, want_event),
                "row {i}"
            );
        }
    }
}
