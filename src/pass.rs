//! One pass, as a plan and its execution.
//!
//! [`plan`] observes the host and decides, with no side effect: which
//! services apply, what the process table says of each, what is held and
//! why, what each service's step is (restart or not, what to say, what to
//! remember). `--dry-run` prints the plan; a real pass hands the same value
//! to [`execute`], which acts (runs commands, verifies, concludes), reports
//! and saves. So a dry run cannot drift from a pass.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::act;
use crate::check::{Held, Problem, Verdict};
use crate::classes::Classes;
use crate::clock;
use crate::decide::{self, Hold, Input, Step};
use crate::event::{Event, Kind};
use crate::exit::Exit;
use crate::load::Enforced;
use crate::observe::Watch;
use crate::pause::Pause;
use crate::pkgmgr::Busy;
use crate::policy::{self, Service};
use crate::probe::Checked;
use crate::report::Reporter;
use crate::state::{PolicyError, ServiceState, Spawned, State, Status};
use crate::store::Store;

/// What the pass knows before it looks: the state the last pass left and
/// the pause file, read under the lock by a pass and peeked at by a dry run.
pub struct Memory {
    pub prior: State,
    pub pause: Option<Pause>,
    /// The policy error to remember (a pass with a last good copy).
    pub policy_error: Option<PolicyError>,
}

/// One service that applies, as the pass sees it and what it will do.
pub struct Planned {
    pub verdict: Verdict,
    /// The path of the replaced binary its process runs, if any.
    pub replaced: Option<String>,
    pub step: Step,
    /// The services it depends on that are down now: its restart waits for
    /// them.
    pub waits: Vec<usize>,
    /// A restart command a killed pass left running past its timeout: to be
    /// killed before anything is restarted.
    pub overdue: Option<Spawned>,
    /// One within its timeout: waited for, and remembered again.
    left: Option<Spawned>,
}

/// Everything a pass will do, decided before anything is done.
pub struct Plan<'p> {
    pub watch: Watch<'p>,
    /// Index-aligned with `watch.services`.
    pub services: Vec<Planned>,
    pub prior: State,
    /// Why restarts wait, if they do: an active pause (its description),
    /// and a package manager at work (what holds it).
    pub pause: Option<String>,
    pub busy: Option<String>,
    /// A pause whose end is to be said in this pass.
    pub pause_ended: Option<Pause>,
    /// The state to save before acting (and to conclude afterwards).
    pub next: State,
    pub now: i64,
}

impl Plan<'_> {
    /// Why restarts wait in this pass.
    pub fn hold(&self) -> Option<Hold<'_>> {
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
    fn up(&self) -> Vec<bool> {
        self.services
            .iter()
            .map(|p| p.verdict.running.is_some())
            .collect()
    }

    /// Whether every service that applies is up now.
    pub fn all_up(&self) -> bool {
        self.services.iter().all(|p| p.verdict.running.is_some())
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
    let Some(command) = command.filter(|_| verdict.running.is_none()) else {
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
        p.status == Status::Restarting
            && p.command.is_none()
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
        running: verdict.running,
        problem: verdict.problem.as_ref(),
        note: verdict.note.as_deref(),
        replaced,
        prior: prior.services.get(&service.id),
        limits: service.limits,
        // What the unit says comes first: systemd at work, or stopped and
        // left so, is no restart whatever else holds.
        hold: match &verdict.held {
            Some(Held::Systemd(why)) => Some(Hold::Waiting(why)),
            Some(Held::Stopped { why, say }) => Some(Hold::Left(why, *say)),
            None => hold,
        },
        restart_on_upgrade: service.restart_on_upgrade,
        now,
        cpu: verdict.cpu,
        checks: &verdict.checks,
        checked: crate::probe::wanted(service),
        left,
    }
}

/// Whether a restart acts on a process that runs (a failed check, an
/// upgrade): then `restart`, or `stop` and `start`; else `start` or
/// `restart`.
pub fn present(verdict: &Verdict, step: &Step) -> bool {
    step.upgrade || matches!(verdict.problem, Some(Problem::Failing(_)))
}

/// Observes and decides: one read of the process table for the services
/// the classes select, and each one's step. Runs nothing, writes nothing.
pub fn plan<'p>(
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
    let mut found = watch.look()?;
    watch.cpu(&mut found, &memory.prior);
    let replaced = Watch::replaced(&found);
    let up: Vec<bool> = found.iter().map(|v| v.running.is_some()).collect();
    let (pause, pause_ended, ended) = pause_of(memory.pause, memory.prior.pause_ended, now);
    let busy = busy.map(ToString::to_string);
    let hold = hold(&pause, &busy);
    let mut services = Vec::with_capacity(found.len());
    for (i, (verdict, replaced)) in found.into_iter().zip(replaced).enumerate() {
        let s = watch.services[i];
        let r = replaced.as_deref();
        let prior = memory.prior.services.get(&s.id);
        let (left, overdue) = left_behind(s, &verdict, commands[i].clone(), now);
        let waiting = interrupted(s, &verdict, left.as_ref(), prior, now);
        let hold = waiting.as_deref().map(Hold::Waiting).or(hold);
        let step = decide::decide(&input(
            s,
            &verdict,
            r,
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
        policy: Some(policy.digest.clone()),
        policy_error: memory.policy_error,
        metrics_error: memory.prior.metrics_error.clone(),
    };
    Ok(Plan {
        watch,
        services,
        prior: memory.prior,
        pause,
        busy,
        pause_ended: ended,
        next,
        now,
    })
}

/// Restart commands a killed pass left running, by service: the one its
/// memory names, if it still runs.
fn commands_left(selected: &[&Service], prior: &State) -> Vec<Option<Spawned>> {
    selected
        .iter()
        .map(|s| {
            let command = prior.services.get(&s.id)?.command.clone()?;
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
        None if verdict.running.is_none() && starting(service, prior, now) => Some(
            "a restart command an interrupted pass was starting may still be running".to_string(),
        ),
        None => None,
    }
}

/// Acts on a plan: says what is not a restart, restarts in dependency
/// waves (all of a wave at once), verifies, concludes, reports and saves.
/// `probe` asks again whether a package manager is at work, right before
/// each wave: one that started during the pass holds what is left. Returns
/// the exit status and the state saved.
pub fn execute(
    plan: Plan,
    store: &Store,
    reporter: &mut Reporter,
    probe: &dyn Fn() -> Option<Busy>,
) -> (Exit, State) {
    let mut acting = Acting {
        plan: &plan,
        store,
        reporter,
        steps: plan.services.iter().map(|p| p.step.clone()).collect(),
        next: plan.next.clone(),
        up: plan.up(),
        // A refused state dir was said at the start of the pass.
        save_failed: store.refused().is_some(),
    };
    acting.say_first();
    let to_restart: Vec<usize> = (0..acting.steps.len())
        .filter(|&i| acting.steps[i].restart)
        .collect();
    if !to_restart.is_empty() {
        // Remember the attempts before acting: a pass killed from here on
        // is known to the next one.
        acting.save();
        for wave in waves(&plan.watch, &to_restart) {
            // A package manager that started meanwhile holds the wave.
            let busy = plan.hold().is_none().then(probe).flatten();
            let go = acting.hold_or_go(wave, busy.map(|b| b.to_string()).as_deref());
            acting.restart(&go);
        }
    }
    acting.save();
    let next = acting.next;
    let exit = Exit::converged_if(next.services.values().all(|s| s.status == Status::Running));
    (exit, next)
}

/// Says `events` of service `i`, with what its checks found.
fn say(plan: &Plan, reporter: &mut Reporter, i: usize, events: &[Event]) {
    let (id, checks) = (&plan.watch.services[i].id, &plan.services[i].verdict.checks);
    events.iter().for_each(|e| reporter.emit(id, e, checks));
}

/// A pass at work on its plan: the steps as they stand, the state to save,
/// which services are up now.
struct Acting<'a, 'p> {
    plan: &'a Plan<'p>,
    store: &'a Store,
    reporter: &'a mut Reporter,
    steps: Vec<Step>,
    next: State,
    up: Vec<bool>,
    /// Saving failed once (said then): not tried again in this pass.
    save_failed: bool,
}

impl Acting<'_, '_> {
    /// What is said before any restart: a pause that ended, commands left
    /// by a killed pass past their timeout (killed), and every event that
    /// is not a restart's (restarts are announced when their turn comes).
    fn say_first(&mut self) {
        if let Some(p) = &self.plan.pause_ended {
            self.reporter.say(
                Kind::PauseEnded,
                &format!(
                    "tend: the pause {} has ended; restarts resumed",
                    p.describe()
                ),
                false,
            );
        }
        let services = &self.plan.watch.services;
        for (s, p) in services.iter().zip(&self.plan.services) {
            if let Some(command) = &p.overdue {
                act::kill_left_behind(command);
                let text = format!(
                    "its restart command (pid {}) from an interrupted pass ran past its timeout of {}; killed it",
                    command.pgid,
                    clock::span(s.timeout.as_secs() as i64)
                );
                let name = s.name.clone();
                self.reporter.emit(&s.id, &Event::Note { name, text }, &[]);
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            if !step.restart {
                say(self.plan, self.reporter, i, &step.events);
            }
        }
    }

    /// Saves the state to remember; a failure is said once.
    fn save(&mut self) {
        if self.save_failed {
            return;
        }
        if let Err(e) = self.store.save(&self.next) {
            self.reporter
                .say(Kind::StateUnsaved, &format!("tend: {e:#}"), true);
            self.save_failed = true;
        }
    }

    /// Of a wave, the services held now (a package manager at work, a
    /// dependency still down: like a deferral, their step decided again
    /// and said), and those to restart (their restart announced).
    fn hold_or_go(&mut self, wave: Vec<usize>, busy: Option<&str>) -> Vec<usize> {
        let plan = self.plan;
        let mut go = Vec::new();
        for i in wave {
            let waiting;
            let down = plan.watch.dependencies(i).iter().find(|&&d| !self.up[d]);
            let hold = match (busy, down) {
                (Some(b), _) => Hold::Busy(b),
                (None, Some(&d)) => {
                    let name = &plan.watch.services[d].name;
                    waiting = format!("waits for {name}, which is down");
                    Hold::Waiting(&waiting)
                }
                (None, None) => {
                    go.push(i);
                    continue;
                }
            };
            let step = plan.held_step(i, hold);
            say(plan, self.reporter, i, &step.events);
            self.next
                .services
                .insert(plan.watch.services[i].id.clone(), step.state.clone());
            self.steps[i] = step;
        }
        for &i in &go {
            say(plan, self.reporter, i, &self.steps[i].events);
        }
        go
    }

    /// Restarts the services `go` at once, verifies each, and concludes:
    /// what to say and remember of each.
    fn restart(&mut self, go: &[usize]) {
        let plan = self.plan;
        let services = &plan.watch.services;
        let jobs: Vec<act::Job> = go
            .iter()
            .map(|&i| job(services[i], &plan.services[i].verdict, &self.steps[i]))
            .collect();
        let upgrade: Vec<bool> = self.steps.iter().map(|s| s.upgrade).collect();
        // What the checks found at the last look, for the state.
        let mut checked: Vec<Vec<Checked>> = vec![Vec::new(); go.len()];
        let mut verify = || {
            let (seen, checks) = plan.watch.verify(go, &upgrade).into_iter().unzip();
            checked = checks;
            seen
        };
        let mut spawned = |job: usize, command: Option<Spawned>| {
            if let Some(state) = self.next.services.get_mut(&services[go[job]].id) {
                *state = decide::started(state, command);
            }
            self.save();
        };
        let outcomes = act::restart_all(&jobs, &mut verify, &mut spawned);
        for ((&i, outcome), checks) in go.iter().zip(&outcomes).zip(checked) {
            let input = plan.input(i, plan.hold());
            let (state, event) = decide::conclude(&input, &self.steps[i], outcome, checks.clone());
            if let Some(event) = event {
                self.reporter.emit(&services[i].id, &event, &checks);
            }
            self.up[i] = state.status == Status::Running;
            self.next.services.insert(services[i].id.clone(), state);
        }
    }
}

/// What to run for one service: its commands in order, each within its
/// timeout, then up to `grace` for it to appear.
fn job<'a>(service: &'a Service, verdict: &Verdict, step: &Step) -> act::Job<'a> {
    act::Job {
        commands: service.commands(present(verdict, step)),
        timeout: service.timeout,
        grace: service.grace,
        settle: service.settle,
    }
}

/// The services to restart, in waves: each after the dependencies it
/// restarts in the same pass (the analyzer refused cycles). Linear in
/// services and dependencies.
fn waves(watch: &Watch, to_restart: &[usize]) -> Vec<Vec<usize>> {
    let n = watch.services.len();
    let mut restarting = vec![false; n];
    to_restart.iter().for_each(|&i| restarting[i] = true);
    // Each service's wave: one after the latest of the dependencies it
    // restarts too, computed dependencies first (no recursion: chains can
    // be 100,000 long).
    let succ = watch.dependency_graph();
    let mut level = vec![0usize; n];
    for i in crate::graph::dependencies_first(succ) {
        level[i] = succ[i]
            .iter()
            .filter(|&&d| restarting[d])
            .map(|&d| level[d] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &i in to_restart {
        let l = level[i];
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(i);
    }
    out
}
