//! One pass, as a plan and its execution.
//!
//! [`plan`] observes the host and decides, with no side effect: which
//! services apply, what the process table says of each, what is held and
//! why, what each service's step is (restart or not, what to say, what to
//! remember). `--dry-run` prints the plan; a real pass hands the same value
//! to [`execute`], which acts (runs commands, verifies, concludes), reports
//! and saves. So a dry run cannot drift from a pass. The execution
//! lives in `execute.rs`.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::act;
use crate::check::{Held, Problem, Verdict};
use crate::classes::Classes;
use crate::decide::{self, Hold, Input, Step};
use crate::load::Enforced;
use crate::observe::Watch;
use crate::pause::{Holds, Pause};
use crate::pkgmgr::Busy;
use crate::policy::{self, Service};
use crate::state::{PolicyError, ServiceState, Spawned, State, Status, Wait};

mod execute;

pub(crate) use execute::{execute, saving, Real};

/// What the pass knows before it looks: the state the last pass left and
/// the pause file, read under the lock by a pass and peeked at by a dry run.
pub(crate) struct Memory {
    pub(crate) prior: State,
    pub(crate) pause: Option<Pause>,
    /// Each service's own pause (`tend pause ID`).
    pub(crate) holds: Holds,
    /// When the host booted (unix seconds), for `after_boot`.
    pub(crate) booted: Option<i64>,
    /// The policy error to remember (a pass with a last good copy).
    pub(crate) policy_error: Option<PolicyError>,
}

/// One service that applies, as the pass sees it and what it will do.
pub(crate) struct Planned {
    pub(crate) verdict: Verdict,
    /// The path of the replaced binary its process runs, if any.
    pub(crate) replaced: Option<String>,
    pub(crate) step: Step,
    /// The services it depends on that are down now: its restart waits for
    /// them.
    pub(crate) waits: Vec<usize>,
    /// A restart command a killed pass left running past its timeout: to be
    /// killed before anything is restarted.
    pub(crate) overdue: Option<Spawned>,
    /// One within its timeout: waited for, and remembered again.
    left: Option<Spawned>,
}

/// Everything a pass will do, decided before anything is done.
pub(crate) struct Plan<'p> {
    pub(crate) watch: Watch<'p>,
    /// Index-aligned with `watch.services`.
    pub(crate) services: Vec<Planned>,
    pub(crate) prior: State,
    /// Why restarts wait, if they do: an active pause (its description),
    /// and a package manager at work (what holds it).
    pub(crate) pause: Option<String>,
    pub(crate) busy: Option<String>,
    /// A pause whose end is to be said in this pass.
    pub(crate) pause_ended: Option<Pause>,
    /// The state to save before acting (and to conclude afterwards).
    pub(crate) next: State,
    pub(crate) now: i64,
}

impl Plan<'_> {
    /// Why restarts wait in this pass.
    pub(crate) fn hold(&self) -> Option<Hold<'_>> {
        hold(&self.pause, &self.busy)
    }

    /// What `decide` is given for service `i`.
    fn input<'a>(&'a self, i: usize, hold: Option<Hold<'a>>) -> Input<'a> {
        let planned = &self.services[i];
        input(
            self.watch.services[i],
            &planned.verdict,
            planned.replaced.as_deref(),
            &self.prior,
            hold,
            planned.left.clone(),
            self.now,
        )
    }

    /// Service `i`'s step decided again, held in the middle of the pass.
    fn held_step(&self, i: usize, hold: Hold) -> Step {
        decide::decide(&self.input(i, Some(hold)))
    }

    /// For each service, whether it is up now.
    /// Whether each service is ready for its dependents: up, its checks
    /// passing.
    fn up(&self) -> Vec<bool> {
        self.services.iter().map(|p| p.verdict.ready()).collect()
    }

    /// Whether every service that applies is up now.
    pub(crate) fn all_up(&self) -> bool {
        self.services.iter().all(|p| p.verdict.running().is_some())
    }
}

/// A restart command that a killed pass left running for a service still
/// down: within its timeout, to wait for (remembered again); past it, to
/// kill. Only while the service is not up: a command whose service came
/// up is done, whatever it does now.
fn left_behind(
    service: &Service,
    verdict: &Verdict,
    command: Option<Spawned>,
    now: i64,
) -> (Option<Spawned>, Option<Spawned>) {
    let Some(command) = command.filter(|_| verdict.running().is_none()) else {
        return (None, None);
    };
    if now - command.since > service.timeout.as_secs() as i64 {
        (None, Some(command))
    } else {
        (Some(command), None)
    }
}

/// Whether the last pass was killed while it started a restart command for
/// this service, before it could write down which: it remembered the
/// service as restarting, no command, and its last attempt is within the
/// command's timeout. Its command may be at work: the next pass waits it
/// out rather than start a second daemon beside it.
fn starting(service: &Service, prior: Option<&ServiceState>, now: i64) -> bool {
    prior.is_some_and(|p| {
        matches!(p.status, Status::Restarting { .. })
            && p.carried.command.is_none()
            && p.restarts
                .last()
                .is_some_and(|&t| t <= now && now - t <= service.timeout.as_secs() as i64)
    })
}

/// Why restarts wait: a pause first (the admin's own choice, never nagged
/// about), then a busy package manager.
fn hold<'a>(pause: &'a Option<String>, busy: &'a Option<String>) -> Option<Hold<'a>> {
    pause
        .as_deref()
        .map(Hold::Paused)
        .or(busy.as_deref().map(Hold::Busy))
}

/// What `decide` is given for one service.
fn input<'a>(
    service: &'a Service,
    verdict: &'a Verdict,
    replaced: Option<&'a str>,
    prior: &'a State,
    hold: Option<Hold<'a>>,
    left: Option<Spawned>,
    now: i64,
) -> Input<'a> {
    Input {
        id: &service.id,
        name: &service.name,
        running: verdict.running(),
        problem: verdict.problem(),
        note: verdict.note(),
        replaced,
        prior: prior.services.get(&service.id),
        limits: service.limits,
        // What the unit says comes first: systemd at work, or stopped and
        // left so, is no restart whatever else holds.
        hold: match verdict.held() {
            Some(Held::Systemd(why)) => Some(Hold::Waiting(why)),
            Some(Held::Stopped { why, say }) => Some(Hold::Left(why, *say)),
            None => hold,
        },
        restart_on_upgrade: service.restart_on_upgrade,
        now,
        cpu: verdict.cpu,
        failed_passes: verdict.failed_passes,
        checks: &verdict.checks,
        checked: crate::probe::wanted(service),
        left,
    }
}

/// Whether a restart acts on a process that runs (a failed check, an
/// upgrade): then `restart`, or `stop` and `start`; else `start` or
/// `restart`.
pub(crate) fn present(verdict: &Verdict, step: &Step) -> bool {
    step.upgrade || matches!(verdict.problem(), Some(Problem::Failing(_)))
}

/// Observes and decides: one read of the process table for the services
/// the classes select, and each one's step. Runs nothing, writes nothing.
pub(crate) fn plan<'p>(
    enforced: &'p Enforced,
    classes: &Classes,
    memory: Memory,
    busy: Option<&Busy>,
    now: i64,
) -> Result<Plan<'p>> {
    let policy = &enforced.policy;
    let selected = classes.select(policy);
    let commands = commands_left(&selected, &memory.prior);
    let watch = Watch::new(
        selected,
        commands.iter().flatten().map(|c| c.pgid).collect(),
    )?;
    let verdicts = watch.look(&memory.prior)?;
    let replaced = Watch::replaced(&verdicts);
    let looked = Looked {
        verdicts,
        replaced,
        commands,
        windows: Vec::new(),
    };
    let busy = busy.map(ToString::to_string);
    // A service's window (`hold during`) is open while its expression is
    // true of this host now.
    let windows = watch
        .services
        .iter()
        .map(|s| {
            s.hold_during
                .as_ref()
                .filter(|e| classes.eval(e))
                .map(|e| format!("during {e}"))
        })
        .collect();
    let looked = Looked { windows, ..looked };
    Ok(decided(watch, looked, memory, busy, &policy.digest, now))
}

/// What the look found: per service its verdict, the replaced binary its
/// process runs, and a restart command a killed pass left running.
struct Looked {
    verdicts: Vec<Verdict>,
    replaced: Vec<Option<String>>,
    commands: Vec<Option<Spawned>>,
    /// The window (`hold during`) open for it now, described.
    windows: Vec<Option<String>>,
}

/// The plan from what was seen: pure, each service's step decided.
fn decided<'p>(
    watch: Watch<'p>,
    looked: Looked,
    memory: Memory,
    busy: Option<String>,
    digest: &str,
    now: i64,
) -> Plan<'p> {
    let up: Vec<bool> = looked.verdicts.iter().map(Verdict::ready).collect();
    let (pause, pause_ended, ended) = pause_of(memory.pause.clone(), memory.prior.pause_ended, now);
    let hold = hold(&pause, &busy);
    let mut services = Vec::with_capacity(up.len());
    let found = looked.verdicts.into_iter().zip(looked.replaced);
    for (i, ((verdict, replaced), command)) in found.zip(looked.commands).enumerate() {
        let s = watch.services[i];
        let prior = memory.prior.services.get(&s.id);
        let (left, overdue) = left_behind(s, &verdict, command, now);
        let waiting = interrupted(s, &verdict, left.as_ref(), prior, now);
        // Its own pause, or its window, then the boot, then the host's.
        let own = memory
            .holds
            .get(&s.id)
            .filter(|p| now < p.until)
            .map(Pause::describe)
            .or_else(|| looked.windows.get(i).cloned().flatten());
        let boot = booting(s, &verdict, prior, &memory, now);
        let hold = waiting
            .as_deref()
            .map(Hold::Waiting)
            .or(own.as_deref().map(Hold::Held))
            .or(boot.as_deref().map(Hold::Boot))
            .or(hold);
        let step = decide::decide(&input(
            s,
            &verdict,
            replaced.as_deref(),
            &memory.prior,
            hold,
            left.clone(),
            now,
        ));
        let waits = watch.dependencies(i).iter().copied().filter(|&d| !up[d]);
        services.push(Planned {
            waits: waits.collect(),
            overdue,
            left,
            verdict,
            replaced,
            step,
        });
    }
    let next = State {
        last_run: Some(now),
        services: watch
            .services
            .iter()
            .zip(&services)
            .map(|(s, p)| (s.id.clone(), p.step.state.clone()))
            .collect::<BTreeMap<String, ServiceState>>(),
        pause_ended,
        policy: Some(digest.to_string()),
        policy_error: memory.policy_error,
        metrics_error: memory.prior.metrics_error.clone(),
        syslog_error: memory.prior.syslog_error.clone(),
    };
    Plan {
        watch,
        services,
        prior: memory.prior,
        pause,
        busy,
        pause_ended: ended,
        next,
        now,
    }
}

/// Whether a service that is not up is waited for after boot: the host
/// booted less than its `after_boot` ago, and the service has not been up
/// since (tend's last pass was before the boot, or it is still waited
/// for). A first pass ever, with no memory, waits for nothing.
fn booting(
    service: &Service,
    verdict: &Verdict,
    prior: Option<&ServiceState>,
    memory: &Memory,
    now: i64,
) -> Option<String> {
    let booted = memory.booted?;
    let up = now - booted;
    let absent =
        verdict.running().is_none() && !matches!(verdict.problem(), Some(Problem::Failing(_)));
    let before = memory.prior.last_run.is_some_and(|t| t < booted)
        || prior.is_some_and(|p| p.status.waited() == Some(Wait::Boot));
    (absent && before && (0..service.limits.after_boot).contains(&up)).then(|| {
        format!(
            "the host booted {} ago; waiting up to {} after boot",
            crate::clock::span(up),
            crate::clock::span(service.limits.after_boot)
        )
    })
}

/// Restart commands a killed pass left running, by service: the one its
/// memory names, if it still runs.
fn commands_left(selected: &[&Service], prior: &State) -> Vec<Option<Spawned>> {
    selected
        .iter()
        .map(|s| {
            let command = prior.services.get(&s.id)?.carried.command.clone()?;
            let ours: Vec<&policy::Command> = [&s.restart, &s.start, &s.stop]
                .into_iter()
                .flatten()
                .collect();
            act::still_running(&command, &ours).then_some(command)
        })
        .collect()
}

/// The pause: whether one holds restarts now (its description), the start
/// of the last pause whose end was said, and a pause whose end is to be
/// said in this pass.
fn pause_of(
    pause: Option<Pause>,
    mut said: Option<i64>,
    now: i64,
) -> (Option<String>, Option<i64>, Option<Pause>) {
    match pause {
        Some(p) if now < p.until => (Some(p.describe()), said, None),
        Some(p) if said != Some(p.since) => {
            said = Some(p.since);
            (None, said, Some(p))
        }
        _ => (None, said, None),
    }
}

/// Why a service that is down waits for a killed pass's restart: its
/// command still at work, or one the pass was starting when it was killed.
fn interrupted(
    service: &Service,
    verdict: &Verdict,
    left: Option<&Spawned>,
    prior: Option<&ServiceState>,
    now: i64,
) -> Option<String> {
    match left {
        Some(c) => Some(format!(
            "its restart command (pid {}) from an interrupted pass is still running",
            c.pgid
        )),
        None if verdict.running().is_none() && starting(service, prior, now) => Some(
            "a restart command an interrupted pass was starting may still be running".to_string(),
        ),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::execute::{Host, Wave};
    use super::*;
    use crate::act::{Failure, Outcome};
    use crate::exit::Exit;
    use crate::probe::Checked;
    use crate::report::Reporter;
    use crate::scan::{ProcessId, Running};
    use crate::snapshot::Snapshot;

    const NOW: i64 = 1_800_000_000;

    /// A host whose answers are scripted: what holds each wave, how each
    /// service's restart ends; it keeps which services each wave ran.
    struct Scripted {
        busy: Vec<Option<String>>,
        fails: Vec<&'static str>,
        waves: Vec<Vec<String>>,
    }

    impl Host for Scripted {
        fn busy(&mut self) -> Option<String> {
            (!self.busy.is_empty())
                .then(|| self.busy.remove(0))
                .flatten()
        }
        fn kill(&mut self, _: &Spawned) {}
        fn words(&mut self, _: &crate::policy::Service) -> Option<crate::words::Words> {
            None
        }
        fn restart(
            &mut self,
            wave: &Wave,
            spawned: &mut act::Spawn,
        ) -> Vec<(Outcome, Vec<Checked>)> {
            let services = &wave.watch.services;
            let ids: Vec<String> = wave.go.iter().map(|&i| services[i].id.clone()).collect();
            self.waves.push(ids.clone());
            ids.iter()
                .enumerate()
                .map(|(j, id)| {
                    spawned(
                        j,
                        Some(Spawned {
                            pgid: 900 + j as u32,
                            start_time: 1,
                            since: NOW,
                            boot: None,
                        }),
                    );
                    let outcome = if self.fails.contains(&id.as_str()) {
                        Outcome::Failed {
                            command: "x".into(),
                            failure: Failure::Exited {
                                status: "exited 1".into(),
                                last_line: None,
                            },
                        }
                    } else {
                        Outcome::Restarted(Running::Process(ProcessId {
                            pid: 100 + j as u32,
                            started: 5,
                        }))
                    };
                    (outcome, Vec::new())
                })
                .collect()
        }
    }

    /// db, cache and web (web depends on db), all down.
    fn policy() -> crate::policy::Policy {
        let text = "service db { process \"/db\"; restart \"x\" }\n\
                    service cache { process \"/cache\"; restart \"x\" }\n\
                    service web { process \"/web\"; restart \"x\"; depends on db }\n";
        crate::load::check(&Snapshot {
            origin: vec!["p.tend".into()],
            files: vec![("p.tend".into(), text.as_bytes().to_vec())],
        })
        .unwrap()
    }

    /// A pass over the policy with every service down, on `host`: what it
    /// said, the states it saved (each as `id:status` of every service,
    /// `+` for a command written down), and what it ended with.
    fn pass(host: &mut Scripted) -> (Vec<String>, Vec<String>, Exit, State) {
        let policy = policy();
        let watch = Watch::new(policy.services.iter().collect(), Vec::new()).unwrap();
        let n = watch.services.len();
        let looked = Looked {
            verdicts: vec![Verdict::default(); n],
            replaced: vec![None; n],
            commands: vec![None; n],
            windows: vec![None; n],
        };
        let memory = Memory {
            prior: State::default(),
            pause: None,
            holds: Holds::new(),
            booted: None,
            policy_error: None,
        };
        let plan = decided(watch, looked, memory, None, "d1", NOW);
        let mut saved = Vec::new();
        let mut keep = |state: &State| {
            let each: Vec<String> = state
                .services
                .iter()
                .map(|(id, s)| {
                    let command = if s.carried.command.is_some() { "+" } else { "" };
                    format!("{id}:{}{command}", s.status.label())
                })
                .collect();
            saved.push(each.join(" "));
            Ok(())
        };
        let mut reporter = Reporter::keeping();
        let (exit, state) = execute(plan, host, &mut keep, &mut reporter);
        (reporter.kept().to_vec(), saved, exit, state)
    }

    /// (booted, the last pass, its memory waited for the boot, up now)
    /// -> whether a down service is waited for (`after_boot` 5 min).
    #[test]
    fn boot_wait_table() {
        let policy = policy();
        let service = &policy.services[0];
        const BOOT: i64 = 1_000_000;
        let waiting = {
            let mut p = ServiceState::new(crate::state::Kind::Down.bare(), BOOT);
            p.status = Status::Down {
                waits: String::new(),
                reason: None,
                by: Some(Wait::Boot),
            };
            p
        };
        type Row = (Option<i64>, Option<i64>, bool, i64, bool);
        let rows: Vec<Row> = vec![
            // A pass before the boot, 1 min after it: waited for.
            (Some(BOOT), Some(BOOT - 600), false, BOOT + 60, true),
            // Past the window: no more.
            (Some(BOOT), Some(BOOT - 600), true, BOOT + 300, false),
            // Still waited for at the next pass.
            (Some(BOOT), Some(BOOT + 60), true, BOOT + 120, true),
            // Seen after the boot (up, or restarted): never waited for.
            (Some(BOOT), Some(BOOT + 60), false, BOOT + 120, false),
            // No memory at all (a first pass ever): nothing to wait for.
            (Some(BOOT), None, false, BOOT + 60, false),
            // No boot time, or a clock before it: no wait.
            (None, Some(BOOT - 600), false, BOOT + 60, false),
            (Some(BOOT), Some(BOOT - 600), false, BOOT - 60, false),
        ];
        for (i, (booted, last_run, waited, now, want)) in rows.into_iter().enumerate() {
            let memory = Memory {
                prior: State {
                    last_run,
                    ..State::default()
                },
                pause: None,
                holds: Holds::new(),
                booted,
                policy_error: None,
            };
            let prior = waited.then_some(&waiting);
            let got = booting(service, &Verdict::default(), prior, &memory, now);
            assert_eq!(got.is_some(), want, "row {i}: {got:?}");
        }
        // A process that runs is never waited for.
        let memory = Memory {
            prior: State {
                last_run: Some(BOOT - 600),
                ..State::default()
            },
            pause: None,
            holds: Holds::new(),
            booted: Some(BOOT),
            policy_error: None,
        };
        let up = Verdict::up(crate::scan::Running::Process(crate::scan::ProcessId {
            pid: 1,
            started: 1,
        }));
        assert!(booting(service, &up, None, &memory, BOOT + 60).is_none());
    }

    #[test]
    fn waves_holds_and_what_is_said_table() {
        let restarting = |n: &str| format!("{n} is not running, restarting...");
        for (i, (busy, fails, waves, said, exit)) in [
            // All come back: db and cache at once, then web.
            (
                vec![],
                vec![],
                vec![vec!["db", "cache"], vec!["web"]],
                vec![
                    restarting("db"),
                    restarting("cache"),
                    "db restarted (pid 100)".into(),
                    "cache restarted (pid 101)".into(),
                    restarting("web"),
                    "web restarted (pid 100)".into(),
                ],
                Exit::Converged,
            ),
            // db does not come back: web waits for it (silently, within
            // defer_limit).
            (
                vec![],
                vec!["db"],
                vec![vec!["db", "cache"]],
                vec![
                    restarting("db"),
                    restarting("cache"),
                    "db failed to start! x exited 1".into(),
                    "cache restarted (pid 101)".into(),
                ],
                Exit::Down,
            ),
            // A package manager starts before the second wave: web waits.
            (
                vec![None, Some("dpkg (pid 9) holds /var/lib/dpkg/lock".into())],
                vec![],
                vec![vec!["db", "cache"]],
                vec![
                    restarting("db"),
                    restarting("cache"),
                    "db restarted (pid 100)".into(),
                    "cache restarted (pid 101)".into(),
                ],
                Exit::Down,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let mut host = Scripted {
                busy,
                fails,
                waves: Vec::new(),
            };
            let (lines, _, got, state) = pass(&mut host);
            let waves: Vec<Vec<String>> = waves
                .into_iter()
                .map(|w| w.into_iter().map(String::from).collect())
                .collect();
            assert_eq!(host.waves, waves, "row {i}");
            assert_eq!(lines, said, "row {i}");
            assert_eq!(got, exit, "row {i}");
            if exit == Exit::Down {
                assert_eq!(state.services["web"].status.label(), "down", "row {i}");
            }
        }
    }

    /// The state is saved before any command runs, again as each command
    /// starts (with the command written down), and at the end (commands
    /// done and forgotten).
    #[test]
    fn saved_before_acting_as_each_command_starts_and_at_the_end() {
        let mut host = Scripted {
            busy: vec![],
            fails: vec!["db"],
            waves: Vec::new(),
        };
        let (_, saved, _, _) = pass(&mut host);
        assert_eq!(
            saved,
            [
                "cache:restarting db:restarting web:restarting",
                "cache:restarting db:restarting+ web:restarting",
                "cache:restarting+ db:restarting+ web:restarting",
                "cache:running db:failing web:down",
            ]
        );
    }
}
