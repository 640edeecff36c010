//! tend keeps a host's services running. One pass:
//!
//! ```text
//! load policy -> host classes -> select services -> scan processes once
//!   -> decide -> act (run commands) -> verify -> report changes
//! ```
//!
//! Each stage is a module; `run` strings them together and returns the exit
//! status: 0 every service that applies runs, 1 some service is still down.
//! Errors (bad usage, a broken policy) are exit status 2, in `main`.

pub mod act;
pub mod analyzer;
pub mod classes;
pub mod cli;
pub mod decide;
pub mod diagnostic;
pub mod matcher;
pub mod parser;
pub mod policy;
pub mod report;
pub mod scan;
pub mod state;

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::classes::{Classes, Host};
use crate::cli::{Cli, Command, Format};
use crate::decide::{Input, Step};
use crate::matcher::Matcher;
use crate::policy::{Policy, Service};
use crate::report::Reporter;
use crate::state::{Locking, ServiceState, State, Status, Store};

/// Exit status: every service that applies is running.
pub const CONVERGED: u8 = 0;
/// Exit status: some service that applies is still down.
pub const DOWN: u8 = 1;

/// The time of this run, in unix seconds. `TEND_NOW` overrides the clock; it
/// exists for tests (reminders, budgets) and is documented as such.
pub fn now() -> i64 {
    if let Some(t) = std::env::var("TEND_NOW").ok().and_then(|v| v.parse().ok()) {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn run(cli: Cli) -> Result<u8> {
    let policy = policy::load(&cli.policy)?;
    let now = now();
    let local = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.with_timezone(&chrono::Local))
        .unwrap_or_else(chrono::Local::now);
    let host = Host::detect(local);
    let classes = Classes::evaluate(Some(&policy), &host, &cli.define);
    let store = Store::new(&cli.state_dir.clone().unwrap_or_else(state::default_dir));
    match cli.command.clone().unwrap_or(Command::Run) {
        Command::Validate => {
            println!(
                "{}: ok ({} services, {} classes)",
                policy.origin.display(),
                policy.services.len(),
                policy.classes.len()
            );
            Ok(CONVERGED)
        }
        Command::Classes => {
            print_classes(&classes, cli.verbose);
            Ok(CONVERGED)
        }
        Command::Status => status(&policy, &classes, &store, now, cli.format),
        Command::Reset { ids, all } => reset(&policy, &store, &ids, all, now),
        Command::Run if cli.dry_run => dry_run(&policy, &classes, &store, now, cli.verbose),
        Command::Run => {
            splay(&host, cli.splay);
            pass(&policy, &classes, &store, now, cli.stale_after)
        }
    }
}

/// Sleeps a delay in [0, splay) seconds fixed for this host (FNV-1a of its
/// name), like CFEngine's splaytime.
fn splay(host: &Host, splay: u64) {
    if splay == 0 {
        return;
    }
    let hash = host.short.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    std::thread::sleep(std::time::Duration::from_secs(hash % splay));
}

fn print_classes(classes: &Classes, verbose: bool) {
    for (name, origin) in classes.defined() {
        if verbose {
            println!("{name:<24} {origin}");
        } else {
            println!("{name}");
        }
    }
    if verbose {
        for (name, at) in classes.off() {
            println!("{name:<24} off: policy class at {at}");
        }
    }
}

/// The services that apply to this host, and the matcher for them (built
/// once per pass, used for every look at the process table).
struct Watch<'p> {
    services: Vec<&'p Service>,
    matcher: Matcher,
}

impl<'p> Watch<'p> {
    fn new(policy: &'p Policy, classes: &Classes) -> Result<Watch<'p>> {
        let services: Vec<&Service> = policy
            .services
            .iter()
            .filter(|s| classes.selects(s))
            .collect();
        let matcher = Matcher::new(services.iter().map(|s| s.process.as_str()))?;
        Ok(Watch { services, matcher })
    }

    /// One read of the process table: for each service, the process that is
    /// it, if any.
    fn look(&self) -> Result<Vec<scan::Seen>> {
        if self.services.is_empty() {
            return Ok(Vec::new());
        }
        let processes = scan::scan()?;
        Ok(self
            .matcher
            .find(&processes)
            .into_iter()
            .map(|procs| procs.first().map(|p| (p.pid, p.start_time)))
            .collect())
    }
}

fn input<'a>(service: &'a Service, running: scan::Seen, state: &'a State, now: i64) -> Input<'a> {
    Input {
        id: &service.id,
        name: &service.name,
        running: running.map(|(pid, start)| (pid, Some(start))),
        prior: state.services.get(&service.id),
        limits: service.limits,
        now,
    }
}

/// Every service that applies, in policy order, with what a pass would do;
/// with `verbose`, also those that do not apply and why. Runs nothing,
/// changes nothing.
fn dry_run(
    policy: &Policy,
    classes: &Classes,
    store: &Store,
    now: i64,
    verbose: bool,
) -> Result<u8> {
    let watch = Watch::new(policy, classes)?;
    let (services, found) = (&watch.services, watch.look()?);
    let state = store.peek();
    let mut found = services.iter().zip(found);
    let mut all_up = true;
    for s in &policy.services {
        if !classes.selects(s) {
            if verbose {
                let guard = s
                    .guard
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                println!("{} ({}): does not apply (guard {guard}::)", s.name, s.id);
            }
            continue;
        }
        let Some((_, running)) = found.next() else {
            continue;
        };
        let step = decide::decide(&input(s, running, &state, now));
        match (running, step.restart) {
            (Some((pid, _)), _) => println!("{} ({}): running (pid {pid})", s.name, s.id),
            (None, true) => println!(
                "{} ({}): not running; would run: {}",
                s.name, s.id, s.restart.text
            ),
            (None, false) => println!(
                "{} ({}): not running; given up, would not restart (run 'tend reset {}')",
                s.name, s.id, s.id
            ),
        }
        all_up &= running.is_some();
    }
    if services.is_empty() {
        println!(
            "no service in {} applies to this host",
            policy.origin.display()
        );
    }
    Ok(if all_up { CONVERGED } else { DOWN })
}

/// One pass over the services that apply to this host.
fn pass(
    policy: &Policy,
    classes: &Classes,
    store: &Store,
    now: i64,
    stale_after: u64,
) -> Result<u8> {
    let mut reporter = Reporter::new();
    // The lock is held until this function returns.
    let _lock = match store
        .ensure_dir()
        .and_then(|()| state::lock(store.dir(), now))
    {
        Ok(Locking::Acquired(lock)) => Some(lock),
        Ok(Locking::Held(holder)) => {
            return Ok(match holder {
                Some(h) if now - h.since > stale_after as i64 => {
                    reporter.say(
                        &format!(
                            "tend: another pass (pid {}) has held the lock in {} since {} ({}); it may be hung",
                            h.pid,
                            store.dir().display(),
                            report::local_time(h.since),
                            report::span(now - h.since)
                        ),
                        true,
                    );
                    DOWN
                }
                _ => CONVERGED,
            });
        }
        Err(e) => {
            reporter.say(&format!("tend: {e:#}; running without the lock"), true);
            None
        }
    };
    let loaded = store.load(now);
    if let Some(notice) = &loaded.notice {
        reporter.say(notice, true);
    }
    let prior = loaded.state;

    let watch = Watch::new(policy, classes)?;
    let (services, found) = (&watch.services, watch.look()?);
    let inputs: Vec<Input> = services
        .iter()
        .zip(&found)
        .map(|(s, running)| input(s, *running, &prior, now))
        .collect();
    let steps: Vec<Step> = inputs.iter().map(decide::decide).collect();
    for event in steps.iter().filter_map(|s| s.event.as_ref()) {
        reporter.emit(event);
    }
    let mut next = State {
        last_run: Some(now),
        services: services
            .iter()
            .zip(&steps)
            .map(|(s, step)| (s.id.clone(), step.state.clone()))
            .collect::<BTreeMap<String, ServiceState>>(),
    };
    let mut save_failed = false;
    let mut save = |state: &State, reporter: &mut Reporter| {
        if let Err(e) = store.save(state) {
            if !save_failed {
                reporter.say(&format!("tend: {e:#}"), true);
                save_failed = true;
            }
        }
    };

    let to_restart: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].restart).collect();
    if !to_restart.is_empty() {
        // Remember the attempts before acting: a pass killed from here on
        // is known to the next one.
        save(&next, &mut reporter);
        let restarting: Vec<&Service> = to_restart.iter().map(|&i| services[i]).collect();
        let mut look = || {
            let found = watch.look().unwrap_or_default();
            to_restart
                .iter()
                .map(|&i| found.get(i).copied().flatten())
                .collect()
        };
        let outcomes = act::restart_all(&restarting, &mut look);
        for (&i, outcome) in to_restart.iter().zip(&outcomes) {
            let s = services[i];
            let (state, event) =
                decide::settle(&inputs[i], &steps[i].state, &s.restart.text, outcome);
            if let Some(event) = event {
                reporter.emit(&event);
            }
            next.services.insert(s.id.clone(), state);
        }
    }
    save(&next, &mut reporter);
    let all_up = next.services.values().all(|s| s.status == Status::Running);
    Ok(if all_up { CONVERGED } else { DOWN })
}

/// What the last pass found, for every service that applies.
fn status(
    policy: &Policy,
    classes: &Classes,
    store: &Store,
    now: i64,
    format: Format,
) -> Result<u8> {
    let state = store.peek();
    let rows: Vec<(&Service, Option<&ServiceState>, usize)> = policy
        .services
        .iter()
        .filter(|s| classes.selects(s))
        .map(|s| {
            let st = state.services.get(&s.id);
            let recent = st.map_or(0, |st| {
                st.restarts
                    .iter()
                    .filter(|&&t| t > now - s.limits.within)
                    .count()
            });
            (s, st, recent)
        })
        .collect();
    if format == Format::Json {
        let services: Vec<serde_json::Value> = rows
            .iter()
            .map(|(s, st, recent)| {
                serde_json::json!({
                    "id": s.id,
                    "name": s.name,
                    "status": st.map_or("unknown", |st| st.status.label()),
                    "since": st.map(|st| st.since),
                    "restarts_in_window": recent,
                    "restart_limit": s.limits.restarts,
                    "window_seconds": s.limits.within,
                    "pid": st.and_then(|st| st.pid),
                    "failure": st.and_then(|st| st.failure.clone()),
                })
            })
            .collect();
        let doc = serde_json::json!({ "last_run": state.last_run, "services": services });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        match state.last_run {
            Some(t) => println!(
                "last pass: {} ({} ago)",
                report::local_time(t),
                report::span(now - t)
            ),
            None => println!("last pass: never (state in {})", store.dir().display()),
        }
        println!(
            "{:<16} {:<20} {:<10} {:<17} {:<9} PID",
            "SERVICE", "NAME", "STATUS", "SINCE", "RESTARTS"
        );
        for (s, st, recent) in &rows {
            println!(
                "{:<16} {:<20} {:<10} {:<17} {:<9} {}",
                s.id,
                s.name,
                st.map_or("unknown", |st| st.status.label()),
                st.map_or("-".to_string(), |st| report::local_time(st.since)),
                format!("{recent}/{}", s.limits.restarts),
                st.and_then(|st| st.pid)
                    .map_or("-".to_string(), |p| p.to_string()),
            );
        }
    }
    Ok(
        if rows
            .iter()
            .all(|(_, st, _)| st.is_some_and(|st| st.status == Status::Running))
        {
            CONVERGED
        } else {
            DOWN
        },
    )
}

/// Forgets what is remembered of some services, under the pass lock.
fn reset(policy: &Policy, store: &Store, ids: &[String], all: bool, now: i64) -> Result<u8> {
    for id in ids {
        if !policy.services.iter().any(|s| &s.id == id) {
            bail!("no service `{id}` in {}", policy.origin.display());
        }
    }
    store.ensure_dir()?;
    let _lock = match state::lock(store.dir(), now)? {
        Locking::Acquired(lock) => lock,
        Locking::Held(_) => bail!(
            "a pass is running (it holds the lock in {}); try again",
            store.dir().display()
        ),
    };
    let loaded = store.load(now);
    if let Some(notice) = loaded.notice {
        println!("{notice}");
    }
    let mut state = loaded.state;
    let forget: Vec<String> = if all {
        state.services.keys().cloned().collect()
    } else {
        ids.to_vec()
    };
    for id in &forget {
        state.services.remove(id);
        println!("{id}: reset; the next pass restarts it if it is down");
    }
    store.save(&state)?;
    Ok(CONVERGED)
}
