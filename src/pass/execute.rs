//! A pass's execution: the plan's restarts run wave by wave (dependencies
//! first, a package manager asked before each), each verified and
//! concluded, said and saved; what it does to the host goes through
//! [`Host`], so the sequencing is tested with a scripted one.

use anyhow::Result;

use crate::act;
use crate::check::Verdict;
use crate::clock;
use crate::decide::{self, Hold, Step};
use crate::event::{Event, Kind};
use crate::exit::Exit;
use crate::observe::Watch;
use crate::pkgmgr::Busy;
use crate::policy::Service;
use crate::probe::Checked;
use crate::report::Reporter;
use crate::state::{Spawned, State};
use crate::store::Store;
use crate::words::Words;

/// What the pass knows before it looks: the state the last pass left and
use super::{present, Plan};

/// What a pass does to the host once it has decided: ask whether a
/// package manager is at work, kill a command a killed pass left behind,
/// restart and verify. The pass's sequencing (waves, holds
/// mid-pass, what is said and saved when) is tested with a scripted one.
pub(crate) trait Host {
    /// What holds restarts now, if a package manager is at work (asked
    /// right before each wave).
    fn busy(&mut self) -> Option<String>;
    /// Kills a restart command a killed pass left running past its
    /// timeout.
    fn kill(&mut self, command: &Spawned);
    /// Runs a wave's jobs, all at once, telling `spawned` each command as
    /// it starts; for each, how it ended and what its checks found at the
    /// last look.
    fn restart(
        &mut self,
        wave: &Wave,
        spawned: &mut act::Spawn,
    ) -> Vec<(act::Outcome, Vec<Checked>)>;
    /// The service's own last words (its `log`'s last lines), for a report
    /// that it died or failed to start.
    fn words(&mut self, service: &Service) -> Option<Words>;
}

/// The restarts of one wave: the services `go` (indices into `watch`),
/// their jobs, and for each service whether its restart is to load an
/// upgraded binary.
pub(crate) struct Wave<'w> {
    pub(crate) watch: &'w Watch<'w>,
    pub(crate) go: &'w [usize],
    pub(crate) jobs: &'w [act::Job<'w>],
    pub(crate) upgrade: &'w [bool],
}

/// The real host: commands run and the process table read; `probe` asks
/// the package managers.
pub(crate) struct Real<'a> {
    pub(crate) probe: &'a dyn Fn() -> Option<Busy>,
}

impl Host for Real<'_> {
    fn words(&mut self, service: &Service) -> Option<Words> {
        match (&service.log, &service.unit) {
            (Some(log), _) => Some(crate::words::log_tail(log)),
            (None, Some(unit)) => crate::systemd::last_words(unit),
            _ => None,
        }
    }

    fn busy(&mut self) -> Option<String> {
        (self.probe)().map(|b| b.to_string())
    }

    fn kill(&mut self, command: &Spawned) {
        act::kill_left_behind(command);
    }

    fn restart(
        &mut self,
        wave: &Wave,
        spawned: &mut act::Spawn,
    ) -> Vec<(act::Outcome, Vec<Checked>)> {
        // What the checks found at the last look, for the state.
        let mut checked: Vec<Vec<Checked>> = vec![Vec::new(); wave.go.len()];
        let mut verify = || {
            let found = wave.watch.verify(wave.go, wave.upgrade);
            let (seen, checks) = found.into_iter().unzip();
            checked = checks;
            seen
        };
        let outcomes = act::restart_all(wave.jobs, &mut verify, spawned);
        outcomes.into_iter().zip(checked).collect()
    }
}

/// Saves the state in `store`; nothing in a state dir that was refused
/// (said at the start of the pass).
pub(crate) fn saving(store: &Store) -> impl FnMut(&State) -> Result<()> + '_ {
    move |state| match store.refused() {
        Some(_) => Ok(()),
        None => store.save(state),
    }
}

/// Acts on a plan: says what is not a restart, restarts in dependency
/// waves (all of a wave at once), verifies, concludes, reports and saves.
/// A package manager that started during the pass holds what is left.
/// `save` keeps the state (before acting, as each command starts, at the
/// end). Returns the exit status and the state saved.
pub(crate) fn execute(
    plan: Plan,
    host: &mut dyn Host,
    save: &mut dyn FnMut(&State) -> Result<()>,
    reporter: &mut Reporter,
) -> (Exit, State) {
    let mut acting = Acting {
        plan: &plan,
        host,
        keep: save,
        reporter,
        steps: plan.services.iter().map(|p| p.step.clone()).collect(),
        next: plan.next.clone(),
        up: plan.up(),
        save_failed: false,
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
            let busy = plan.hold().is_none().then(|| acting.host.busy()).flatten();
            let go = acting.hold_or_go(wave, busy.as_deref());
            acting.restart(&go);
        }
    }
    acting.save();
    let next = acting.next;
    let exit = Exit::converged_if(next.services.values().all(|s| s.status.is_running()));
    (exit, next)
}

/// Saves `state` with `keep`; a failure is said once, and saving is not
/// tried again in this pass.
fn save(
    keep: &mut dyn FnMut(&State) -> Result<()>,
    state: &State,
    reporter: &mut Reporter,
    failed: &mut bool,
) {
    if *failed {
        return;
    }
    if let Err(e) = keep(state) {
        reporter.say(Kind::StateUnsaved, &format!("tend: {e:#}"), true);
        *failed = true;
    }
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
    host: &'a mut dyn Host,
    keep: &'a mut dyn FnMut(&State) -> Result<()>,
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
                self.host.kill(command);
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
        save(self.keep, &self.next, self.reporter, &mut self.save_failed);
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
            // Its restart is announced with why it died, in its own words.
            let (id, checks) = (&plan.watch.services[i].id, &plan.services[i].verdict.checks);
            for e in &self.steps[i].events {
                let words = match e {
                    Event::Restarting { .. } => self.host.words(plan.watch.services[i]),
                    _ => None,
                };
                self.reporter.emit_words(id, e, checks, words.as_ref());
            }
        }
        go
    }

    /// Restarts the services `go` at once, verifies each, and concludes:
    /// what to say and remember of each.
    fn restart(&mut self, go: &[usize]) {
        if go.is_empty() {
            return;
        }
        let plan = self.plan;
        let services = &plan.watch.services;
        let jobs: Vec<act::Job> = go
            .iter()
            .map(|&i| job(services[i], &plan.services[i].verdict, &self.steps[i]))
            .collect();
        let upgrade: Vec<bool> = self.steps.iter().map(|s| s.upgrade).collect();
        let (next, keep, reporter) = (&mut self.next, &mut *self.keep, &mut *self.reporter);
        let save_failed = &mut self.save_failed;
        let mut spawned = |job: usize, command: Option<Spawned>| {
            if let Some(state) = next.services.get_mut(&services[go[job]].id) {
                *state = decide::started(state, command);
            }
            save(keep, next, reporter, save_failed);
        };
        let wave = Wave {
            watch: &plan.watch,
            go,
            jobs: &jobs,
            upgrade: &upgrade,
        };
        let done = self.host.restart(&wave, &mut spawned);
        for (&i, (outcome, checks)) in go.iter().zip(done) {
            let input = plan.input(i, plan.hold());
            let (state, event) = decide::conclude(&input, &self.steps[i], &outcome, checks.clone());
            if let Some(event) = event {
                let words = match &event {
                    Event::Failed { .. } => self.host.words(services[i]),
                    _ => None,
                };
                self.reporter
                    .emit_words(&services[i].id, &event, &checks, words.as_ref());
            }
            self.up[i] = state.status.is_running();
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
        // Checks get their start period to pass after a restart.
        grace: service.grace.max(service.start_period),
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
