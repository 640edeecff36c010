//! `tend` / `tend run`: one pass, as cron starts it.
//!
//! Everything around the pass engine that only a real pass does: the splay,
//! the lock, the state file under it, what is said about the policy (broken,
//! fixed, changed) and keeping its last good copy, the damaged pause file.
//! Then [`pass::plan`] and [`pass::execute`], and the metrics file.

use std::time::Instant;

use anyhow::Result;

use super::Context;
use crate::classes::Host;
use crate::clock;
use crate::event::Kind;
use crate::exit::Exit;
use crate::file;
use crate::load::{self, Enforced};
use crate::metrics;
use crate::pass::{self, Memory};
use crate::pause::Pause;
use crate::report::{self, Reporter};
use crate::snapshot;
use crate::state::{PolicyError, State};
use crate::store::{Lock, Locking, Store};

pub fn run(ctx: &Context, splay_seconds: u64, stale_after: u64) -> Result<Exit> {
    let host = ctx.host();
    splay(&host, splay_seconds);
    let started = Instant::now();
    let enforced = match ctx.enforce() {
        Ok(enforced) => enforced,
        Err(error) => return broken(ctx, &error, started),
    };
    let busy = ctx.busy();
    let classes = ctx.classes(&enforced, busy.as_ref());
    let now = ctx.now;
    let store = &ctx.store;
    let mut reporter = Reporter::new(ctx.format);
    reporter.set_policy(&enforced.policy.digest);
    if let Some(why) = store.refused() {
        reporter.say(
            Kind::StateRefused,
            &format!("tend: {why}; this pass runs without its state: no lock, no memory of earlier passes, no last good policy"),
            true,
        );
    }
    // The lock is held until this function returns.
    let _lock = match lock(store, now, stale_after, &mut reporter) {
        Ok(lock) => lock,
        Err(exit) => return Ok(exit),
    };
    let loaded = store.load(now);
    if let Some(notice) = &loaded.notice {
        reporter.say(Kind::StateDamaged, notice, true);
    }
    let prior = loaded.state;
    let policy_error = say_policy(&enforced, &prior, store, &mut reporter, now);
    let pause = pauses(store, &mut reporter, now);
    let memory = Memory {
        prior,
        pause,
        policy_error,
    };
    let plan = pass::plan(&enforced, &classes, memory, busy.as_ref(), now)?;
    let services: Vec<(&str, &str)> = (plan.watch.services.iter())
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    let (paused, busy) = (plan.pause.is_some(), plan.busy.is_some());
    let probe = || ctx.busy();
    let mut host = pass::Real { probe: &probe };
    let (exit, mut state) = pass::execute(plan, &mut host, &mut pass::saving(store), &mut reporter);
    let policy = &enforced.policy;
    let text = ctx.metrics.as_ref().map(|_| {
        let rows = services
            .iter()
            .filter_map(|&(id, name)| {
                let state = state.services.get(id)?;
                Some(metrics::Row { id, name, state })
            })
            .collect();
        metrics_of(
            ctx,
            started,
            rows,
            Some(metrics::Enforced {
                digest: &policy.digest,
                origin: enforced
                    .fallback
                    .as_ref()
                    .map_or(policy.origin.as_str(), |f| f.origin.as_str()),
                last_good: enforced.fallback.is_some(),
            }),
            (busy, paused),
        )
    });
    write_metrics(ctx, text, &mut state, &mut reporter);
    Ok(exit)
}

/// The metrics of this pass: its services' rows, the policy enforced
/// (None: nothing is, a broken policy with no last good copy), whether a
/// package manager was busy and a pause held restarts.
fn metrics_of(
    ctx: &Context,
    started: Instant,
    services: Vec<metrics::Row>,
    policy: Option<metrics::Enforced>,
    (busy, paused): (bool, bool),
) -> String {
    metrics::render(&metrics::Pass {
        broken: policy.as_ref().is_none_or(|p| p.last_good),
        services,
        at: ctx.now,
        seconds: started.elapsed().as_secs_f64(),
        policy,
        busy,
        paused,
        state_kept: ctx.store.refused().is_none(),
    })
}

/// Writes the metrics file, if asked for. A failure is said when it is new
/// (or another than the last), and remembered in the state; not every five
/// minutes.
fn write_metrics(ctx: &Context, text: Option<String>, state: &mut State, reporter: &mut Reporter) {
    let (Some(path), Some(text)) = (&ctx.metrics, text) else {
        return;
    };
    let store = &ctx.store;
    let error = file::replace(path, text.as_bytes(), 0o644)
        .err()
        .map(|e| format!("cannot write metrics to {}: {e}", path.display()))
        .or_else(|| {
            // Written, but node_exporter's textfile collector reads only
            // `*.prom`: said once, like a failure.
            (path.extension().is_none_or(|e| e != "prom")).then(|| {
                format!(
                    "metrics file {} does not end in .prom; node_exporter's textfile collector will not read it",
                    path.display()
                )
            })
        });
    if error == state.metrics_error {
        return;
    }
    if let Some(e) = &error {
        reporter.say(Kind::MetricsUnwritten, &format!("tend: {e}"), true);
    }
    state.metrics_error = error;
    if store.refused().is_none() {
        if let Err(e) = store.save(state) {
            reporter.say(Kind::StateUnsaved, &format!("tend: {e:#}"), true);
        }
    }
}

/// The pause in force, of all pause files. A damaged one is set aside, so
/// it is said once; one that began in the future or lasts more than 24h is
/// cut, rewritten so, and said once.
fn pauses(store: &Store, reporter: &mut Reporter, now: i64) -> Option<Pause> {
    let mut honoured = Vec::new();
    for (name, pause) in store.pauses() {
        let pause = match pause {
            Ok(pause) => pause,
            Err(e) => {
                reporter.say(
                    Kind::PauseDamaged,
                    &format!("tend: {e:#}; {}", store.set_pause_aside(&name, now)),
                    true,
                );
                continue;
            }
        };
        let (bounded, cut) = pause.bounded(now);
        if let Some(cut) = cut {
            let path = store.dir().join(&name);
            let kept = match store.rewrite_pause(&name, &bounded) {
                Ok(()) => String::new(),
                Err(e) => format!(" (the file could not be rewritten: {e:#})"),
            };
            reporter.say(
                Kind::PauseCut,
                &format!("tend: pause file {} {cut}{kept}", path.display()),
                true,
            );
        }
        honoured.push(bounded);
    }
    Pause::current(honoured, now)
}

/// Takes the pass lock. Another pass holding it ends this one: silently,
/// unless it has held it longer than `stale_after` (it may be hung). A lock
/// that cannot be taken at all is said, and the pass goes on without it.
fn lock(
    store: &Store,
    now: i64,
    stale_after: u64,
    reporter: &mut Reporter,
) -> Result<Option<Lock>, Exit> {
    if store.refused().is_some() {
        return Ok(None);
    }
    match store.lock(now) {
        Ok(Locking::Acquired(lock)) => Ok(Some(lock)),
        Ok(Locking::Held(Some(h))) if now - h.since > stale_after as i64 => {
            reporter.say(
                Kind::LockHeld,
                &format!(
                    "tend: another pass (pid {}) has held the lock in {} since {} ({}); it may be hung",
                    h.pid,
                    store.dir().display(),
                    clock::local_time(h.since),
                    clock::span(now - h.since)
                ),
                true,
            );
            Err(Exit::Down)
        }
        Ok(Locking::Held(_)) => Err(Exit::Converged),
        Err(e) => {
            reporter.say(
                Kind::LockFailed,
                &format!("tend: {e:#}; running without the lock"),
                true,
            );
            Ok(None)
        }
    }
}

/// A pass with a broken policy and no last good copy: says the error (once,
/// then daily, like a copy's fallback), writes the metrics (no services,
/// the policy broken) and does nothing else.
fn broken(ctx: &Context, error: &load::NotEnforced, started: Instant) -> Result<Exit> {
    let store = &ctx.store;
    let mut reporter = Reporter::new(ctx.format);
    let wrong = error.error.what_is_wrong(&ctx.policy.display().to_string());
    let text = match &error.copy {
        Some(copy) => format!(
            "tend: {wrong}; the last good policy cannot be used either ({copy}), nothing is checked until it is fixed"
        ),
        None => format!(
            "tend: {wrong}; no last good policy to fall back on, nothing is checked until it is fixed"
        ),
    };
    let _lock = match store.lock(ctx.now) {
        Ok(Locking::Acquired(lock)) => lock,
        Ok(Locking::Held(_)) => return Ok(Exit::Broken),
        Err(_) => {
            // No state to remember the error in: say it every time.
            say_broken(&mut reporter, &text, &error.error);
            return Ok(Exit::Broken);
        }
    };
    let mut state = store.load(ctx.now).state;
    let (remembered, say) =
        PolicyError::next(state.policy_error.as_ref(), &format!("{error:#}"), ctx.now);
    if say {
        say_broken(&mut reporter, &text, &error.error);
    }
    state.policy_error = Some(remembered);
    store.save(&state)?;
    let text = ctx.metrics.as_ref().map(|_| {
        let paused = store.pause(ctx.now).is_some_and(|p| ctx.now < p.until);
        metrics_of(
            ctx,
            started,
            Vec::new(),
            None,
            (ctx.busy().is_some(), paused),
        )
    });
    write_metrics(ctx, text, &mut state, &mut reporter);
    Ok(Exit::Broken)
}

/// The policy error, as one line (`text`), and the source excerpts of its
/// errors below.
fn say_broken(reporter: &mut Reporter, text: &str, error: &load::Unusable) {
    reporter.line(&report::Line {
        kind: Kind::PolicyBroken,
        text,
        detail: error.detail().as_deref(),
        error: true,
    });
}

/// Says what there is to say of the policy at the start of a pass: the
/// error of a broken one whose last good copy is enforced (once, then
/// daily), that it is good again, and (to syslog only) a change of policy.
/// Keeps a fresh policy as the last good copy. Returns the error to
/// remember.
fn say_policy(
    enforced: &Enforced,
    prior: &State,
    store: &Store,
    reporter: &mut Reporter,
    now: i64,
) -> Option<PolicyError> {
    let policy = &enforced.policy;
    if let Some(f) = &enforced.fallback {
        let (remembered, say) =
            PolicyError::next(prior.policy_error.as_ref(), &format!("{:#}", f.error), now);
        if say {
            say_broken(
                reporter,
                &format!("tend: {}", enforced.fallback_line()),
                &f.error,
            );
        }
        return Some(remembered);
    }
    if let Some(e) = &prior.policy_error {
        reporter.say(
            Kind::PolicyFixed,
            &format!(
                "tend: {} is good again (broken since {}); enforcing it",
                enforced.describe(),
                clock::local_time(e.since)
            ),
            false,
        );
    }
    if prior.policy.as_deref() != Some(policy.digest.as_str()) {
        reporter.log(
            Kind::Policy,
            &format!("tend: enforcing {}", enforced.describe()),
        );
    }
    if let Some(fresh) = enforced
        .fresh
        .as_ref()
        .filter(|_| store.refused().is_none())
    {
        if let Err(e) = snapshot::keep(store.dir(), fresh, now) {
            reporter.say(Kind::PolicyUnkept, &format!("tend: {e:#}"), true);
        }
    }
    None
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
