//! What to do about each service, given what was seen, what was remembered
//! and the time.
//!
//! Pure functions, no I/O: every rule is a row in a table test. `decide`
//! runs before acting and says whether to restart, what to say, and what to
//! remember (written before any command runs, so a pass killed mid-way is
//! known to the next one); `conclude` runs after a restart with its outcome.
//!
//! The rules, so that cron mail carries only changes:
//! - a restart is announced, unless the service was already failing (then
//!   attempts go on quietly, with a reminder every `remind`);
//! - a restart that works is reported; a failure is reported once;
//! - a service found running after being down is reported once;
//! - every attempt counts against the budget (`limit N restarts within W`),
//!   also when the restart worked but the service died again; down a third
//!   time within the window it is flapping, said once, its restarts quiet;
//! - when the budget is spent it is crash-looping, said once: tend backs
//!   off, trying at growing intervals (`backoff`), quietly but for a
//!   reminder every `remind`; a service that has stayed up the first wait
//!   is forgiven, said once, its budget whole again (`Episode`);
//! - with `then give up` tend gives up instead, says so once, and reminds
//!   every `remind`; it re-arms when the service is seen running by itself
//!   or on `tend reset`;
//! - while a package manager is busy or tend is paused, restarts wait
//!   (status `down`), silently unless a package manager holds them past
//!   `defer_limit`; the next pass without a hold restarts what is still down;
//! - a process running a replaced binary is reported once per pid, or
//!   restarted with `restart_on_upgrade`, but never while a hold is on.

use crate::act::{Failure, Outcome};
use crate::check::CpuSample;
use crate::check::Problem;
use crate::event::Event;
use crate::policy::Limits;
use crate::probe::Checked;
use crate::scan::Running;
use crate::state::{
    Carried, Checks, Episode, Kind, ServiceState, Spawned, Status, Trouble, Wait, Why,
};

/// Why restarts wait in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold<'a> {
    /// A package manager is at work (what `pkgmgr::Busy` says).
    Busy(&'a str),
    /// `tend pause` (its description).
    Paused(&'a str),
    /// A dependency is down (`waits for NAME, which is down`), or systemd
    /// is at work on the unit.
    Waiting(&'a str),
    /// Stopped cleanly and left so by `when stopped report` (true: said
    /// once) or `leave`.
    Left(&'a str, bool),
    /// This service alone is held: its own pause (`tend pause ID`) or
    /// window (`hold during`), described.
    Held(&'a str),
    /// The host booted a short while ago and the service has not been up
    /// since (`after_boot`): it is waited for.
    Boot(&'a str),
}

/// One service, as this pass sees it.
#[derive(Debug, Clone)]
pub(crate) struct Input<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    /// How this service runs (its main process), if it runs and passes its
    /// checks.
    pub(crate) running: Option<Running>,
    /// When it is not `running`: why, beyond "not in the process table"
    /// (a stale pidfile, too few processes, a failed check).
    pub(crate) problem: Option<&'a Problem>,
    /// Something to say once that needs no action (too many processes).
    pub(crate) note: Option<&'a str>,
    /// The path of the binary that process runs, when it was deleted or
    /// replaced on disk since it started.
    pub(crate) replaced: Option<&'a str>,
    /// What the last pass remembered.
    pub(crate) prior: Option<&'a ServiceState>,
    pub(crate) limits: Limits,
    pub(crate) hold: Option<Hold<'a>>,
    /// `restart_on_upgrade yes`
    pub(crate) restart_on_upgrade: bool,
    pub(crate) now: i64,
    /// What this look carried over: its CPU sample (`cpu above`), what the
    /// checks that speak to the service found, whether it has such checks,
    /// and a restart command a killed pass left at work for it.
    pub(crate) cpu: Option<CpuSample>,
    /// Passes in a row its checks have failed, this one included.
    pub(crate) failed_passes: u32,
    pub(crate) checks: &'a [Checked],
    pub(crate) checked: bool,
    pub(crate) left: Option<Spawned>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// What to remember (before acting, when restarting).
    pub(crate) state: ServiceState,
    pub(crate) events: Vec<Event>,
    pub(crate) restart: bool,
    /// The restart is to load an upgraded binary: it is done when a process
    /// that runs the binary now on disk is found.
    pub(crate) upgrade: bool,
}

fn due(last: Option<i64>, every: Option<i64>, now: i64) -> bool {
    match (last, every) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(last), Some(every)) => now - last >= every,
    }
}

fn step(state: ServiceState, event: Option<Event>, restart: bool) -> Step {
    Step {
        state,
        events: event.into_iter().collect(),
        restart,
        upgrade: false,
    }
}

/// The step for one service: what to say, whether to restart, and the
/// whole memory to keep, carried parts included.
pub(crate) fn decide(input: &Input) -> Step {
    let mut step = judge(input);
    carry(input, &mut step.state, step.restart);
    step
}

/// What is carried over whatever the status: the CPU sample, the last
/// checks (this look's, or while the service is down and its checks cannot
/// run, the last that ran), the command left at work, and the restart
/// counter (plus this pass's attempt).
fn carry(input: &Input, state: &mut ServiceState, attempted: bool) {
    let checks = if input.checks.is_empty() {
        input
            .prior
            .filter(|_| input.running.is_none() && input.checked)
            .and_then(|p| p.carried.checks.clone())
    } else {
        Some(Checks {
            at: input.now,
            each: input.checks.to_vec(),
        })
    };
    state.carried = Carried {
        cpu: input.cpu,
        command: input.left.clone(),
        checks,
        restarts_total: counted(input.prior, attempted),
        failed_passes: input.failed_passes,
        episode: state.carried.episode,
    };
}

/// The restart counter of the metrics: carried over from the last pass,
/// plus this pass's attempt.
fn counted(prior: Option<&ServiceState>, attempted: bool) -> u64 {
    prior.map_or(0, |p| p.carried.restarts_total) + u64::from(attempted)
}

/// The memory of a service whose restart command has just started (Some)
/// or is about to (None): remembered before anything else happens, so a
/// pass killed meanwhile is known to the next.
pub(crate) fn started(state: &ServiceState, command: Option<Spawned>) -> ServiceState {
    let mut state = state.clone();
    state.carried.command = command;
    state
}

fn judge(input: &Input) -> Step {
    let prior_kind = input.prior.map(|p| p.status.kind());
    let window_start = input.now - input.limits.within;
    let restarts: Vec<i64> = input
        .prior
        .map(|p| {
            p.restarts
                .iter()
                .copied()
                .filter(|&t| t > window_start)
                .collect()
        })
        .unwrap_or_default();
    if let Some(up) = input.running {
        return running(input, up, restarts);
    }
    let down_since = match input.prior {
        Some(p) if !p.status.is_running() => p.since,
        _ => input.now,
    };
    let mut step = match (prior_kind, input.hold) {
        (Some(Kind::GivenUp), _) if input.limits.give_up => given_up(input, down_since, restarts),
        (_, Some(hold)) => held(input, hold, down_since, restarts),
        _ => down(input, down_since, restarts),
    };
    // A run of trouble lasts while the service is down, whatever holds it.
    if step.state.carried.episode.is_none() && step.state.status.kind() != Kind::GivenUp {
        step.state.carried.episode = episode(input);
    }
    step
}

/// The run of trouble the last pass remembered.
fn episode(input: &Input) -> Option<Episode> {
    input.prior.and_then(|p| p.carried.episode)
}

/// Why the service is not up: what this look found, and the failure of
/// its last restart (`failure`).
fn why(input: &Input, failure: Option<String>) -> Why {
    Why {
        reason: input.problem.map(ToString::to_string),
        failure,
    }
}

/// The last restart's failure, while the service has not been seen up or
/// held since.
fn last_failure(input: &Input) -> Option<String> {
    input
        .prior
        .and_then(|p| p.status.restart_failure())
        .map(str::to_string)
}

fn running(input: &Input, up: Running, mut restarts: Vec<i64>) -> Step {
    let pid = up.pid();
    let now = input.now;
    let prior_kind = input.prior.map(|p| p.status.kind());
    let since = match (prior_kind, input.prior) {
        (Some(Kind::Running), Some(p)) => p.since,
        _ => now,
    };
    let mut events = Vec::new();
    // A run of trouble ends when the service has stayed up the first wait
    // of its backoff: said once, its budget whole again. Until then its
    // coming back is not said (it may well go down again).
    let mut trouble = episode(input);
    if let Some(ep) = trouble {
        if now - since >= input.limits.backoff {
            events.push(Event::Steady {
                name: input.name.to_string(),
                trouble: ep.kind.label(),
                since: ep.since,
                up: now - since,
            });
            restarts.clear();
            trouble = None;
        }
    } else if let Some(p) = input.prior {
        // Back by itself; after a deferral only if the deferral was said.
        let said = match p.status.kind() {
            Kind::Failing | Kind::BackingOff | Kind::GivenUp => true,
            Kind::Down => p.reported.is_some(),
            Kind::Running | Kind::Restarting => false,
        };
        if said {
            events.push(Event::RunningAgain {
                name: input.name.to_string(),
                since: p.since,
                failing: p
                    .status
                    .reason()
                    .is_some_and(|r| r.starts_with("fails a check")),
            });
        }
    }
    if prior_kind == Some(Kind::GivenUp) {
        restarts.clear(); // re-armed
    }
    // A replaced binary is said once per pid, and not while an upgrade may
    // still be under way (the package manager restarts the daemon itself).
    let handled = input
        .prior
        .and_then(|p| p.status.replaced())
        .filter(|&old| Some(old) == pid);
    if let Some(note) = input
        .note
        .filter(|&n| input.prior.and_then(|p| p.status.note()) != Some(n))
    {
        events.push(Event::Note {
            name: input.name.to_string(),
            text: note.to_string(),
        });
    }
    let mut replaced = handled;
    let mut restart = false;
    if let (Some(path), None, None, Some(pid)) = (input.replaced, input.hold, handled, pid) {
        replaced = Some(pid);
        let name = input.name.to_string();
        let path = path.to_string();
        if input.restart_on_upgrade {
            restarts.push(now);
            events.push(Event::Upgrading { name, path });
            restart = true;
        } else {
            events.push(Event::Replaced { name, path });
        }
    }
    let status = Status::Running {
        process: up.process(),
        replaced,
        note: input.note.map(str::to_string),
    };
    let mut state = ServiceState {
        restarts,
        ..ServiceState::new(status, since)
    };
    state.carried.episode = trouble;
    Step {
        state,
        events,
        restart,
        upgrade: restart,
    }
}

fn given_up(input: &Input, down_since: i64, restarts: Vec<i64>) -> Step {
    let now = input.now;
    let prior = input.prior.expect("given up was remembered");
    let remind = due(prior.reported, input.limits.remind, now);
    let status = Status::GivenUp {
        why: why(input, last_failure(input)),
    };
    let state = ServiceState {
        restarts,
        reported: if remind { Some(now) } else { prior.reported },
        ..ServiceState::new(status, down_since)
    };
    let event = remind.then(|| Event::StillGivenUp {
        name: input.name.to_string(),
        id: input.id.to_string(),
        since: down_since,
    });
    step(state, event, false)
}

/// Down while restarts wait. A failing service stays failing (its failure
/// was said); otherwise it is `down`, and a package manager's hold is said
/// once it lasts past `defer_limit`, then every `remind`. A pause is the
/// admin's own choice and is not said (its end is).
fn held(input: &Input, hold: Hold, down_since: i64, restarts: Vec<i64>) -> Step {
    let now = input.now;
    if let Some(p) = input
        .prior
        .filter(|p| matches!(p.status.kind(), Kind::Failing | Kind::BackingOff))
    {
        let mut state = p.clone();
        let why = why(input, last_failure(input));
        state.status = match p.status.kind() {
            Kind::Failing => Status::Failing { why },
            _ => Status::BackingOff { why },
        };
        return step(state, None, false);
    }
    let prior_reported = input
        .prior
        .filter(|p| p.status.kind() == Kind::Down)
        .and_then(|p| p.reported);
    let (waits, event) = match hold {
        Hold::Busy(why) | Hold::Waiting(why) => {
            let tell = now - down_since >= input.limits.defer
                && match prior_reported {
                    None => true,
                    reported => due(reported, input.limits.remind, now),
                };
            let event = tell.then(|| Event::Deferred {
                name: input.name.to_string(),
                span: now - down_since,
                why: why.to_string(),
            });
            (format!("restart deferred: {why}"), event)
        }
        Hold::Paused(why) => (format!("restart deferred: tend is paused {why}"), None),
        Hold::Held(why) => (format!("restart held {why}"), None),
        Hold::Boot(why) => (format!("waiting for it to start: {why}"), None),
        Hold::Left(why, say) => {
            let event = (say && prior_reported.is_none()).then(|| Event::Note {
                name: input.name.to_string(),
                text: format!("{why}; leaving it stopped"),
            });
            (format!("{why}; left so (when stopped)"), event)
        }
    };
    let status = Status::Down {
        waits,
        reason: input.problem.map(ToString::to_string),
        by: match hold {
            Hold::Held(_) => Some(Wait::Hold),
            Hold::Boot(_) => Some(Wait::Boot),
            _ => None,
        },
    };
    let state = ServiceState {
        restarts,
        reported: if event.is_some() {
            Some(now)
        } else {
            prior_reported
        },
        ..ServiceState::new(status, down_since)
    };
    step(state, event, false)
}

fn down(input: &Input, down_since: i64, mut restarts: Vec<i64>) -> Step {
    let now = input.now;
    let limits = &input.limits;
    let prior_kind = input.prior.map(|p| p.status.kind());
    let (reported, failure) = input
        .prior
        .filter(|p| p.status.kind() != Kind::Down)
        .map(|p| (p.reported, last_failure(input)))
        .unwrap_or_default();
    let trouble = episode(input);
    if let Some(ep) = trouble.filter(|e| e.kind == Trouble::CrashLooping) {
        return backing_off(input, ep, down_since, restarts);
    }
    if restarts.len() >= limits.restarts {
        let span = restarts.first().map_or(0, |first| now - first);
        let name = input.name.to_string();
        let id = input.id.to_string();
        let why = why(input, failure);
        if limits.give_up {
            let event = Event::GaveUp {
                name,
                id,
                restarts: restarts.len(),
                span,
            };
            let state = ServiceState {
                restarts,
                reported: Some(now),
                ..ServiceState::new(Status::GivenUp { why }, down_since)
            };
            return step(state, Some(event), false);
        }
        let next = now + limits.wait(0);
        let event = Event::CrashLooping {
            name,
            id,
            restarts: restarts.len(),
            span,
            next,
            cap: limits.backoff_cap,
        };
        let mut state = ServiceState {
            restarts,
            reported: Some(now),
            ..ServiceState::new(Status::BackingOff { why }, down_since)
        };
        state.carried.episode = Some(Episode {
            since: trouble.map_or(down_since, |t| t.since),
            kind: Trouble::CrashLooping,
            tries: 0,
            next,
        });
        return step(state, Some(event), false);
    }
    // Down a third time within the budget's window, after restarts that
    // worked: flapping, said once; its restarts are quiet until it stays
    // up. (Twice can be chance.)
    let flapping = trouble.is_none() && prior_kind == Some(Kind::Running) && restarts.len() >= 2;
    let announce = prior_kind != Some(Kind::Failing) && trouble.is_none();
    let times = restarts
        .first()
        .map(|first| (restarts.len() + 1, now - first));
    let event = if flapping {
        Some(Event::Flapping {
            name: input.name.to_string(),
            restarts: restarts.len(),
            span: now - restarts[0],
            quiet: limits.backoff,
        })
    } else {
        announce.then(|| Event::Restarting {
            name: input.name.to_string(),
            times,
            problem: input.problem.cloned(),
            after: waited(input),
        })
    };
    restarts.push(now);
    let mut state = ServiceState {
        restarts,
        reported: if flapping { Some(now) } else { reported },
        ..ServiceState::new(
            Status::Restarting {
                why: why(input, failure),
            },
            down_since,
        )
    };
    state.carried.episode = if flapping {
        Some(Episode {
            since: now,
            kind: Trouble::Flapping,
            tries: 0,
            next: 0,
        })
    } else {
        trouble
    };
    step(state, event, true)
}

/// What a service still down was waited for until this pass, said as the
/// wait ends: its own hold, or the boot.
fn waited(input: &Input) -> Option<String> {
    match &input.prior?.status {
        Status::Down {
            by: Some(Wait::Hold),
            waits,
            ..
        } => Some(format!(
            "after its hold ({})",
            waits.strip_prefix("restart ").unwrap_or(waits)
        )),
        Status::Down {
            by: Some(Wait::Boot),
            ..
        } => Some(format!(
            "{} after boot",
            crate::clock::span(input.limits.after_boot)
        )),
        _ => None,
    }
}

/// Crash-looping: quiet until the next try is due (but for a reminder
/// every `remind`); then one restart, and the wait after it doubled.
fn backing_off(input: &Input, ep: Episode, down_since: i64, mut restarts: Vec<i64>) -> Step {
    let now = input.now;
    let prior = input.prior.expect("an episode was remembered");
    let why = why(input, last_failure(input));
    if now < ep.next {
        let remind = due(prior.reported, input.limits.remind, now);
        let event = remind.then(|| Event::StillCrashLooping {
            name: input.name.to_string(),
            id: input.id.to_string(),
            since: down_since,
            next: ep.next,
        });
        let mut state = ServiceState {
            restarts,
            reported: if remind { Some(now) } else { prior.reported },
            ..ServiceState::new(Status::BackingOff { why }, down_since)
        };
        state.carried.episode = Some(ep);
        return step(state, event, false);
    }
    let tries = ep.tries + 1;
    restarts.push(now);
    let mut state = ServiceState {
        restarts,
        reported: prior.reported,
        ..ServiceState::new(Status::Restarting { why }, down_since)
    };
    state.carried.episode = Some(Episode {
        tries,
        next: now + input.limits.wait(tries),
        ..ep
    });
    step(state, None, true)
}

/// After a restart: what to remember and what to say. `step` is what
/// `decide` returned for the same input; `checks`, what the service's
/// checks found at the last look of the restart's verification.
pub(crate) fn conclude(
    input: &Input,
    step: &Step,
    outcome: &Outcome,
    checks: Vec<Checked>,
) -> (ServiceState, Option<Event>) {
    let (mut state, event) = concluded(input, step, outcome);
    state.carried.restarts_total = counted(input.prior, true);
    if !checks.is_empty() {
        state.carried.checks = Some(Checks {
            at: input.now,
            each: checks,
        });
    }
    (state, event)
}

fn concluded(input: &Input, step: &Step, outcome: &Outcome) -> (ServiceState, Option<Event>) {
    let now = input.now;
    let was_failing = input.prior.map(|p| p.status.kind()) == Some(Kind::Failing);
    let name = input.name.to_string();
    let trouble = step.state.carried.episode;
    match outcome {
        Outcome::Restarted(running) => {
            // A unit active with no main process (a oneshot that remains):
            // restarted, with no pid to name.
            let pid = running.pid();
            let status = Status::Running {
                process: running.process(),
                replaced: None,
                note: None,
            };
            let mut state = ServiceState {
                restarts: step.state.restarts.clone(),
                ..ServiceState::new(status, now)
            };
            // In a run of trouble it is said once it has stayed up.
            state.carried.episode = trouble;
            let event = if trouble.is_some() {
                None
            } else if was_failing {
                Some(Event::Recovered { name, pid })
            } else {
                Some(Event::Restarted { name, pid })
            };
            (state, event)
        }
        // The old process may well run on: it stays what is remembered, as
        // running (the failure is said once, for this pid); if it is gone,
        // the next pass finds the service down and restarts it as usual.
        Outcome::Failed { command, failure } if step.upgrade => {
            let failure = match failure {
                Failure::NeverAppeared(d) => format!(
                    "exited 0 but it still runs the replaced binary after {} s",
                    d.as_secs()
                ),
                other => other.to_string(),
            };
            let event = Event::UpgradeFailed {
                name,
                command: command.to_string(),
                failure,
            };
            (step.state.clone(), Some(event))
        }
        // A try of a crash-looping service that failed: back to waiting,
        // quietly (crash-looping was said; reminders go on).
        Outcome::Failed { command, failure }
            if trouble.is_some_and(|t| t.kind == Trouble::CrashLooping) =>
        {
            let reason = step.state.status.reason().map(str::to_string);
            let status = Status::BackingOff {
                why: Why {
                    reason,
                    failure: Some(format!("{command} {failure}")),
                },
            };
            (
                ServiceState {
                    status,
                    ..step.state.clone()
                },
                None,
            )
        }
        Outcome::Failed { command, failure } => {
            let text = format!("{command} {failure}");
            let remind = !was_failing || due(step.state.reported, input.limits.remind, now);
            let reason = step.state.status.reason().map(str::to_string);
            let status = Status::Failing {
                why: Why {
                    reason,
                    failure: Some(text.clone()),
                },
            };
            let state = ServiceState {
                status,
                reported: if remind {
                    Some(now)
                } else {
                    step.state.reported
                },
                ..step.state.clone()
            };
            let event = match (was_failing, remind) {
                (false, _) => Some(Event::Failed {
                    name,
                    command: command.to_string(),
                    failure: failure.clone(),
                }),
                (true, true) => Some(Event::StillFailing {
                    name,
                    since: step.state.since,
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
    use crate::scan::ProcessId;

    /// A wanted event's text, with `@` standing for the prior's `since`.
    fn at_since(want: Option<&str>, prior: Option<&ServiceState>) -> Option<String> {
        let since = prior
            .map(|p| crate::clock::local_time(p.since))
            .unwrap_or_default();
        want.map(|e| e.replace('@', &since))
    }

    const LIMITS: Limits = Limits {
        restarts: 3,
        within: 3600,
        remind: Some(6 * 3600),
        defer: 1800,
        give_up: false,
        backoff: 600,
        backoff_cap: 3 * 3600,
        after_boot: 300,
    };
    const GIVE_UP: Limits = Limits {
        give_up: true,
        ..LIMITS
    };
    const NOW: i64 = 100_000;

    fn prior(status: Kind, since: i64, restarts: &[i64], reported: Option<i64>) -> ServiceState {
        ServiceState {
            restarts: restarts.to_vec(),
            reported,
            ..ServiceState::new(status.bare(), since)
        }
    }

    /// `state` in a run of trouble since its `since`; crash-looping with
    /// its next try 1 s from now (`due` 1) or 1 s ago (-1).
    fn in_episode(mut state: ServiceState, kind: Trouble, due: i64) -> ServiceState {
        state.carried.episode = Some(Episode {
            since: state.since,
            kind,
            tries: 1,
            next: NOW + due,
        });
        state
    }

    fn input<'a>(running: bool, prior: Option<&'a ServiceState>) -> Input<'a> {
        Input {
            id: "ssh",
            name: "OpenSSH",
            running: running.then_some(Running::Process(ProcessId {
                pid: 42,
                started: 7,
            })),
            problem: None,
            note: None,
            replaced: None,
            prior,
            limits: LIMITS,
            hold: None,
            restart_on_upgrade: false,
            now: NOW,
            cpu: None,
            failed_passes: 0,
            checks: &[],
            checked: false,
            left: None,
        }
    }

    /// The events of a step as one line (None: silent).
    fn said(events: &[Event]) -> Option<String> {
        let lines: Vec<String> = events.iter().map(ToString::to_string).collect();
        (!lines.is_empty()).then(|| lines.join(" | "))
    }

    /// (running now, prior state) -> (status after, restart?, event line)
    #[test]
    fn decide_table() {
        let t = NOW;
        type Row = (bool, Option<ServiceState>, Kind, bool, Option<String>);
        let rows: Vec<Row> = vec![
            // First sight.
            (true, None, Kind::Running, false, None),
            (false, None, Kind::Restarting, true, Some("OpenSSH is not running, restarting...".into())),
            // Steady running is silent.
            (true, Some(prior(Kind::Running, t - 500, &[], None)), Kind::Running, false, None),
            // Came back by itself.
            (true, Some(prior(Kind::Failing, t - 600, &[t - 600], Some(t - 600))), Kind::Running, false,
             Some("OpenSSH is running again (was down since @)".into())),
            (true, Some(prior(Kind::GivenUp, t - 600, &[t - 900, t - 600], Some(t - 600))), Kind::Running, false,
             Some("OpenSSH is running again (was down since @)".into())),
            // A pass killed mid-restart: service up, nothing said twice.
            (true, Some(prior(Kind::Restarting, t - 300, &[t - 300], None)), Kind::Running, false, None),
            // Flapping: restarted fine, down again, a third time: said
            // once, then quiet.
            (false, Some(prior(Kind::Running, t - 300, &[t - 600], None)), Kind::Restarting, true,
             Some("OpenSSH is not running, restarting... (2nd time in 10 min)".into())),
            (false, Some(prior(Kind::Running, t - 300, &[t - 2400, t - 600], None)), Kind::Restarting, true,
             Some("OpenSSH is flapping (down again, 3rd restart in 40 min), restarting...; its restarts are not mailed until it stays up 10 min".into())),
            (false, Some(in_episode(prior(Kind::Running, t - 300, &[t - 600], None), Trouble::Flapping, 0)), Kind::Restarting, true, None),
            // Old restarts fall out of the window.
            (false, Some(prior(Kind::Running, t - 300, &[t - 7200, t - 5000], None)), Kind::Restarting, true,
             Some("OpenSSH is not running, restarting...".into())),
            // Already failing: retry quietly.
            (false, Some(prior(Kind::Failing, t - 300, &[t - 300], Some(t - 300))), Kind::Restarting, true, None),
            // Budget spent: crash-looping, said once, the first try in 10 min.
            (false, Some(prior(Kind::Failing, t - 900, &[t - 900, t - 600, t - 300], Some(t - 900))), Kind::BackingOff, false,
             Some(format!("OpenSSH is crash-looping (3 restarts in 15 min); tend tries again at {}, then at doubling intervals up to 3 h; run 'tend reset ssh' to try now", crate::clock::local_time(t + 600)))),
            (false, Some(in_episode(prior(Kind::Running, t - 100, &[t - 900, t - 600, t - 300], None), Trouble::Flapping, 0)), Kind::BackingOff, false,
             Some(format!("OpenSSH is crash-looping (3 restarts in 15 min); tend tries again at {}, then at doubling intervals up to 3 h; run 'tend reset ssh' to try now", crate::clock::local_time(t + 600)))),
            // Backing off: quiet until the try is due, or a reminder.
            (false, Some(in_episode(prior(Kind::BackingOff, t - 900, &[t - 900], Some(t - 600)), Trouble::CrashLooping, 1)), Kind::BackingOff, false, None),
            (false, Some(in_episode(prior(Kind::BackingOff, t - 30000, &[], Some(t - 6 * 3600)), Trouble::CrashLooping, 1)), Kind::BackingOff, false,
             Some(format!("OpenSSH is still crash-looping (down since @); tend tries again at {}; run 'tend reset ssh' to try now", crate::clock::local_time(t + 1)))),
            // The try is due: one restart, quietly.
            (false, Some(in_episode(prior(Kind::BackingOff, t - 900, &[t - 900], Some(t - 900)), Trouble::CrashLooping, -1)), Kind::Restarting, true, None),
            // Up again after trouble: quiet until it has stayed up 10 min.
            (true, Some(in_episode(prior(Kind::BackingOff, t - 900, &[t - 900], Some(t - 900)), Trouble::CrashLooping, 1)), Kind::Running, false, None),
            (true, Some(in_episode(prior(Kind::Running, t - 599, &[t - 900], None), Trouble::CrashLooping, 1)), Kind::Running, false, None),
            (true, Some(in_episode(prior(Kind::Running, t - 600, &[t - 900], None), Trouble::CrashLooping, 1)), Kind::Running, false,
             Some("OpenSSH has stayed up for 10 min: no longer crash-looping (since @)".into())),
            (true, Some(in_episode(prior(Kind::Running, t - 700, &[t - 900], None), Trouble::Flapping, 0)), Kind::Running, false,
             Some("OpenSSH has stayed up for 11 min: no longer flapping (since @)".into())),
        ];
        for (i, (running, prior, want_status, want_restart, want_event)) in
            rows.into_iter().enumerate()
        {
            let step = decide(&input(running, prior.as_ref()));
            let since = prior
                .as_ref()
                .map(|p| crate::clock::local_time(p.since))
                .unwrap_or_default();
            let event = said(&step.events);
            let want_event = want_event.map(|e| e.replace('@', &since));
            assert_eq!(
                (step.state.status.kind(), step.restart, event),
                (want_status, want_restart, want_event),
                "row {i}"
            );
        }
    }

    /// `limit ... then give up`: the budget spent, no restart until the
    /// service is seen running or `tend reset`.
    #[test]
    fn give_up_table() {
        let t = NOW;
        type Row = (bool, ServiceState, Kind, bool, Option<&'static str>);
        let rows: Vec<Row> = vec![
            (false, prior(Kind::Failing, t - 900, &[t - 900, t - 600, t - 300], Some(t - 900)), Kind::GivenUp, false,
             Some("OpenSSH: giving up after 3 restarts in 15 min; run 'tend reset ssh' to try again")),
            (false, prior(Kind::Running, t - 100, &[t - 900, t - 600, t - 300], None), Kind::GivenUp, false,
             Some("OpenSSH: giving up after 3 restarts in 15 min; run 'tend reset ssh' to try again")),
            // Given up: silent, no restart, until the reminder is due.
            (false, prior(Kind::GivenUp, t - 900, &[t - 900], Some(t - 600)), Kind::GivenUp, false, None),
            (false, prior(Kind::GivenUp, t - 30000, &[], Some(t - 6 * 3600)), Kind::GivenUp, false,
             Some("OpenSSH is still down (since @); tend gave up restarting it; run 'tend reset ssh' to try again")),
            (true, prior(Kind::GivenUp, t - 600, &[t - 900, t - 600], Some(t - 600)), Kind::Running, false,
             Some("OpenSSH is running again (was down since @)")),
        ];
        for (i, (running, prior, want_status, want_restart, want_event)) in
            rows.into_iter().enumerate()
        {
            let step = decide(&Input {
                limits: GIVE_UP,
                ..input(running, Some(&prior))
            });
            let want_event = at_since(want_event, Some(&prior));
            assert_eq!(
                (step.state.status.kind(), step.restart, said(&step.events)),
                (want_status, want_restart, want_event),
                "row {i}"
            );
        }
    }

    /// A daemon that always dies, one pass every 5 minutes for a day:
    /// restarted until the budget is spent, then tried at 10, 20, 40 ...
    /// minutes up to the cap; said once, reminded every 6 h. Then it
    /// stays up: said once after 10 min, its budget whole again.
    #[test]
    fn a_crash_loop_backs_off_and_is_forgiven() {
        let failed = Outcome::Failed {
            command: "rc".into(),
            failure: Failure::Exited {
                status: "exited 1".into(),
                last_line: None,
            },
        };
        let mut memory: Option<ServiceState> = None;
        let mut tries = Vec::new();
        let mut said_at = Vec::new();
        let start = NOW;
        for pass in 0..(24 * 12) {
            let now = start + pass * 300;
            let inp = Input {
                now,
                ..input(false, memory.as_ref())
            };
            let step = decide(&inp);
            let mut events = step.events.clone();
            let mut state = step.state.clone();
            if step.restart {
                tries.push((now - start) / 60);
                let (s, e) = conclude(&inp, &step, &failed, Vec::new());
                state = s;
                events.extend(e);
            }
            for e in events {
                said_at.push(((now - start) / 60, e.kind().name()));
            }
            memory = Some(state);
        }
        // 3 restarts (the budget), then tries 10, 20, 40, 80, 160 min
        // apart, then every 3 h (the cap).
        assert_eq!(
            tries,
            [0, 5, 10, 25, 45, 85, 165, 325, 505, 685, 865, 1045, 1225, 1405]
        );
        assert_eq!(
            said_at,
            [
                (0, "restarting"),
                (0, "failed"),
                (15, "crash_looping"),
                (375, "still_crash_looping"),
                (735, "still_crash_looping"),
                (1095, "still_crash_looping"),
            ]
        );
        // Its try is due, it comes up and stays up: quiet, then said once.
        let mut due = memory.unwrap();
        let now = start + 1500 * 60;
        due.carried.episode.as_mut().unwrap().next = now;
        let inp = Input {
            now,
            ..input(false, Some(&due))
        };
        let step = decide(&inp);
        assert!(step.restart && step.events.is_empty());
        let up = Running::Process(ProcessId { pid: 9, started: 1 });
        let (state, event) = conclude(&inp, &step, &Outcome::Restarted(up), Vec::new());
        assert_eq!(event, None);
        let quiet = decide(&Input {
            now: now + 300,
            ..input(true, Some(&state))
        });
        assert!(quiet.events.is_empty());
        let steady = decide(&Input {
            now: now + 600,
            ..input(true, Some(&quiet.state))
        });
        assert_eq!(
            said(&steady.events).unwrap(),
            format!(
                "OpenSSH has stayed up for 10 min: no longer crash-looping (since {})",
                crate::clock::local_time(start)
            )
        );
        assert!(steady.state.restarts.is_empty() && steady.state.carried.episode.is_none());
    }

    const DPKG: Hold = Hold::Busy("dpkg (pid 812) holds /var/lib/dpkg/lock-frontend");
    const PAUSE: Hold = Hold::Paused("until 2026-11-21 14:30 (kernel upgrade)");

    /// (running now, hold, prior state) -> (status after, restart?, lines)
    #[test]
    fn held_restarts_table() {
        let t = NOW;
        let down = |since, reported| {
            let mut p = prior(Kind::Down, since, &[], reported);
            p.status = Status::Down {
                waits: "restart deferred: x".into(),
                reason: None,
                by: None,
            };
            p
        };
        type Row = (
            bool,
            Option<Hold<'static>>,
            Option<ServiceState>,
            Kind,
            bool,
            Option<&'static str>,
        );
        let rows: Vec<Row> = vec![
            // Just went down during an upgrade: wait, silently.
            (false, Some(DPKG), Some(prior(Kind::Running, t - 900, &[], None)), Kind::Down, false, None),
            (false, Some(DPKG), None, Kind::Down, false, None),
            // Still held, not yet past defer_limit (30 min).
            (false, Some(DPKG), Some(down(t - 1700, None)), Kind::Down, false, None),
            // Past defer_limit: said once ...
            (false, Some(DPKG), Some(down(t - 2100, None)), Kind::Down, false,
             Some("OpenSSH is down; restart deferred for 35 min: dpkg (pid 812) holds /var/lib/dpkg/lock-frontend")),
            // ... then quiet until the reminder is due.
            (false, Some(DPKG), Some(down(t - 2400, Some(t - 300))), Kind::Down, false, None),
            (false, Some(DPKG), Some(down(t - 30000, Some(t - 6 * 3600))), Kind::Down, false,
             Some("OpenSSH is down; restart deferred for 8 h: dpkg (pid 812) holds /var/lib/dpkg/lock-frontend")),
            // A pause is never said, however long.
            (false, Some(PAUSE), Some(down(t - 30000, None)), Kind::Down, false, None),
            // A failing service stays failing, no attempt, nothing said.
            (false, Some(DPKG), Some(prior(Kind::Failing, t - 900, &[t - 900], Some(t - 900))), Kind::Failing, false, None),
            // Backing off stays so; given up (of an older tend, now that
            // the policy backs off) waits as any other.
            (false, Some(DPKG), Some(prior(Kind::GivenUp, t - 900, &[t - 900], Some(t - 600))), Kind::Down, false, None),
            (false, Some(DPKG), Some(prior(Kind::BackingOff, t - 900, &[t - 900], Some(t - 600))), Kind::BackingOff, false, None),
            // Hold gone: restart what is still down, announced as usual.
            (false, None, Some(down(t - 600, None)), Kind::Restarting, true, Some("OpenSSH is not running, restarting...")),
            (false, None, Some(down(t - 3000, Some(t - 1000))), Kind::Restarting, true, Some("OpenSSH is not running, restarting...")),
            // Back by itself after the upgrade: silent, unless the deferral was said.
            (true, None, Some(down(t - 600, None)), Kind::Running, false, None),
            (true, Some(DPKG), Some(down(t - 600, None)), Kind::Running, false, None),
            (true, None, Some(down(t - 3000, Some(t - 1000))), Kind::Running, false,
             Some("OpenSSH is running again (was down since @)")),
        ];
        for (i, (running, hold, prior, want_status, want_restart, want_event)) in
            rows.into_iter().enumerate()
        {
            let step = decide(&Input {
                hold,
                ..input(running, prior.as_ref())
            });
            let want_event = at_since(want_event, prior.as_ref());
            assert_eq!(
                (step.state.status.kind(), step.restart, said(&step.events)),
                (want_status, want_restart, want_event),
                "row {i}"
            );
        }
    }

    /// A service's own hold (`tend pause ID`, `hold during`) and the wait
    /// after boot: nothing said while they last; the end said once, in the
    /// restart's line, when the service is still down.
    #[test]
    fn own_holds_and_the_boot_table() {
        let t = NOW;
        let waited = |by, waits: &str| {
            let mut p = prior(Kind::Down, t - 600, &[], None);
            p.status = Status::Down {
                waits: waits.into(),
                reason: None,
                by: Some(by),
            };
            p
        };
        let held = Hold::Held("until 2026-12-06 14:30 (deploy)");
        let boot = Hold::Boot("the host booted 1 min ago; waiting up to 5 min after boot");
        type Row = (
            Option<Hold<'static>>,
            Option<ServiceState>,
            &'static str,
            bool,
            Option<&'static str>,
        );
        let rows: Vec<Row> = vec![
            // Held: down, `paused`, nothing said, however long.
            (Some(held), Some(prior(Kind::Running, t - 900, &[], None)), "paused", false, None),
            (Some(held), Some(waited(Wait::Hold, "restart held until x")), "paused", false, None),
            // A failing service keeps its status (its failure was said).
            (Some(held), Some(prior(Kind::Failing, t - 900, &[t - 900], Some(t - 900))), "failing", false, None),
            // The hold is over and it is still down: said once, restarted.
            (None, Some(waited(Wait::Hold, "restart held until 2026-12-06 14:30 (deploy)")), "restarting", true,
             Some("OpenSSH is not running after its hold (held until 2026-12-06 14:30 (deploy)), restarting...")),
            (None, Some(waited(Wait::Hold, "restart held during Sunday.Hr03")), "restarting", true,
             Some("OpenSSH is not running after its hold (held during Sunday.Hr03), restarting...")),
            // After boot: waited for, quietly; then restarted, said so.
            (Some(boot), None, "down", false, None),
            (Some(boot), Some(waited(Wait::Boot, "waiting")), "down", false, None),
            (None, Some(waited(Wait::Boot, "waiting")), "restarting", true,
             Some("OpenSSH is not running 5 min after boot, restarting...")),
        ];
        for (i, (hold, prior, want_status, want_restart, want_event)) in
            rows.into_iter().enumerate()
        {
            let step = decide(&Input {
                hold,
                ..input(false, prior.as_ref())
            });
            assert_eq!(
                (
                    step.state.status.label(),
                    step.restart,
                    said(&step.events).as_deref()
                ),
                (want_status, want_restart, want_event),
                "row {i}"
            );
        }
        // Up again after its hold or the boot: nothing to say.
        for by in [Wait::Hold, Wait::Boot] {
            let p = waited(by, "x");
            assert!(decide(&input(true, Some(&p))).events.is_empty());
        }
    }

    #[test]
    fn deferrals_do_not_spend_the_budget() {
        let p = prior(Kind::Running, 1, &[NOW - 60], None);
        let step = decide(&Input {
            hold: Some(DPKG),
            ..input(false, Some(&p))
        });
        assert_eq!(step.state.restarts, vec![NOW - 60]);
        assert_eq!(step.state.since, NOW);
    }

    /// (hold, restart_on_upgrade, pid already handled) -> (restart?, lines)
    #[test]
    fn replaced_binary_table() {
        type Row = (
            Option<Hold<'static>>,
            bool,
            Option<u32>,
            bool,
            Option<&'static str>,
        );
        let rows: Vec<Row> = vec![
            (None, false, None, false,
             Some("OpenSSH runs a replaced binary (/usr/sbin/sshd); restart it to load the upgrade")),
            (None, true, None, true, Some("OpenSSH runs a replaced binary (/usr/sbin/sshd), restarting...")),
            // Once per pid.
            (None, false, Some(42), false, None),
            (None, true, Some(42), false, None),
            // A new pid with a replaced binary is said again.
            (None, false, Some(41), false,
             Some("OpenSSH runs a replaced binary (/usr/sbin/sshd); restart it to load the upgrade")),
            // Never while an upgrade may be under way, nor in a pause.
            (Some(DPKG), false, None, false, None),
            (Some(DPKG), true, None, false, None),
            (Some(PAUSE), true, None, false, None),
        ];
        for (i, (hold, upgrade, handled, want_restart, want_event)) in rows.into_iter().enumerate()
        {
            let mut p = prior(Kind::Running, NOW - 600, &[], None);
            p.status = Status::Running {
                process: None,
                replaced: handled,
                note: None,
            };
            let step = decide(&Input {
                replaced: Some("/usr/sbin/sshd"),
                hold,
                restart_on_upgrade: upgrade,
                ..input(true, Some(&p))
            });
            assert_eq!(
                (step.restart, step.upgrade, said(&step.events).as_deref()),
                (want_restart, want_restart, want_event),
                "row {i}"
            );
            assert_eq!(step.state.status.kind(), Kind::Running, "row {i}");
            // Remembered so it is said once; forgotten while a hold is on.
            let want_remembered = if hold.is_some() {
                handled.filter(|&h| h == 42)
            } else {
                Some(42)
            };
            assert_eq!(step.state.status.replaced(), want_remembered, "row {i}");
        }
    }

    #[test]
    fn a_failed_upgrade_restart_is_said_once_and_keeps_the_process() {
        let p = prior(Kind::Running, NOW - 600, &[], None);
        let inp = Input {
            replaced: Some("/usr/sbin/sshd"),
            restart_on_upgrade: true,
            ..input(true, Some(&p))
        };
        let step = decide(&inp);
        let outcome = Outcome::Failed {
            command: "rc".into(),
            failure: Failure::NeverAppeared(std::time::Duration::from_secs(10)),
        };
        let (state, event) = conclude(&inp, &step, &outcome, Vec::new());
        assert_eq!(
            event.unwrap().to_string(),
            "OpenSSH failed to restart onto the upgrade! rc exited 0 but it still runs the replaced binary after 10 s"
        );
        assert_eq!(
            (
                state.status.kind(),
                state.status.process().map(|p| p.pid),
                state.status.replaced()
            ),
            (Kind::Running, Some(42), Some(42))
        );
        // The next pass, same old process: silent.
        let next = decide(&Input {
            replaced: Some("/usr/sbin/sshd"),
            restart_on_upgrade: true,
            ..input(true, Some(&state))
        });
        assert_eq!((next.restart, next.events.len()), (false, 0));
    }

    #[test]
    fn every_attempt_is_remembered_before_acting() {
        let p = prior(Kind::Running, 1, &[NOW - 60], None);
        let step = decide(&input(false, Some(&p)));
        assert_eq!(step.state.restarts, vec![NOW - 60, NOW]);
        assert_eq!(step.state.since, NOW);
    }

    /// Back after failing a check, not after its process was gone: said so.
    #[test]
    fn back_after_a_failed_check_says_it_was_failing_a_check() {
        let mut p = prior(Kind::Failing, NOW - 600, &[NOW - 600], Some(NOW - 600));
        p.status = Status::Failing {
            why: Why {
                reason: Some("fails a check (port 127.0.0.1:80: connection refused)".into()),
                failure: Some("rc exited 1".into()),
            },
        };
        let step = decide(&input(true, Some(&p)));
        assert_eq!(
            said(&step.events).unwrap(),
            format!(
                "OpenSSH is running again (was failing a check since {})",
                crate::clock::local_time(NOW - 600)
            )
        );
    }

    #[test]
    fn given_up_re_arms_when_seen_running() {
        let p = prior(Kind::GivenUp, 1, &[NOW - 60, NOW - 30], Some(NOW));
        assert!(decide(&input(true, Some(&p))).state.restarts.is_empty());
    }

    /// (prior status, outcome) -> (status after, event line)
    #[test]
    fn conclude_table() {
        let failed = Outcome::Failed {
            command: "rc".into(),
            failure: Failure::Exited {
                status: "exited 1".into(),
                last_line: Some("no config".into()),
            },
        };
        let ok = Outcome::Restarted(Running::Process(ProcessId {
            pid: 77,
            started: 5,
        }));
        let rows: Vec<(Option<ServiceState>, &Outcome, Kind, Option<&str>)> = vec![
            (None, &ok, Kind::Running, Some("OpenSSH restarted (pid 77)")),
            (
                None,
                &failed,
                Kind::Failing,
                Some("OpenSSH failed to start! rc exited 1: no config"),
            ),
            (
                Some(prior(
                    Kind::Failing,
                    NOW - 300,
                    &[NOW - 300],
                    Some(NOW - 300),
                )),
                &ok,
                Kind::Running,
                Some("OpenSSH is running again (restarted, pid 77)"),
            ),
            (
                Some(prior(
                    Kind::Failing,
                    NOW - 300,
                    &[NOW - 300],
                    Some(NOW - 300),
                )),
                &failed,
                Kind::Failing,
                None,
            ),
            (
                Some(prior(Kind::Failing, NOW - 30000, &[], Some(NOW - 6 * 3600))),
                &failed,
                Kind::Failing,
                Some("OpenSSH is still failing (down since @): rc exited 1: no config"),
            ),
        ];
        for (i, (prior, outcome, want_status, want_event)) in rows.into_iter().enumerate() {
            let inp = input(false, prior.as_ref());
            let step = decide(&inp);
            let (state, event) = conclude(&inp, &step, outcome, Vec::new());
            let want_event = at_since(want_event, prior.as_ref());
            assert_eq!(
                (state.status.kind(), event.map(|e| e.to_string())),
                (want_status, want_event),
                "row {i}"
            );
        }
    }
}
