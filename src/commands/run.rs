//! `tend` / `tend run`: one pass, as cron starts it: the splay, the
//! session (lock, state, pauses, what is said of the policy: `session.rs`),
//! the plan and its execution on the real host, the metrics file; or, with
//! a broken policy and no last good copy, its error said and nothing done.

use std::time::Instant;

use anyhow::Result;

use super::session::{say_broken, Session};
use super::Context;
use crate::classes::Host;
use crate::event::Kind;
use crate::exit::Exit;
use crate::file;
use crate::load;
use crate::metrics;
use crate::notify;
use crate::pass;
use crate::policy::Channel;
use crate::report::Reporter;
use crate::state::{PolicyError, State};
use crate::store::Locking;

pub(crate) fn run(ctx: &Context, splay_seconds: u64, stale_after: u64) -> Result<Exit> {
    let host = ctx.host();
    splay(&host, splay_seconds);
    let started = Instant::now();
    let enforced = match ctx.enforce() {
        Ok(enforced) => enforced,
        Err(error) => return broken(ctx, &error, started),
    };
    let store = &ctx.store;
    let mut reporter = Reporter::new(ctx.format);
    reporter.set_policy(&enforced.policy.digest);
    // The lock is held until the session ends, with this function.
    let session = match Session::open(ctx, enforced, &mut reporter, stale_after) {
        Ok(session) => session,
        Err(exit) => return Ok(exit),
    };
    let plan = session.plan(ctx.now)?;
    let services: Vec<(String, String)> = (plan.watch.services.iter())
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let (paused, busy) = (plan.pause.is_some(), plan.busy.is_some());
    let probe = || ctx.busy();
    let mut host = pass::Real { probe: &probe };
    let (exit, mut state) = pass::execute(plan, &mut host, &mut pass::saving(store), &mut reporter);
    let enforced = &session.enforced;
    let policy = &enforced.policy;
    let text = ctx.metrics.as_ref().map(|_| {
        let rows = services
            .iter()
            .filter_map(|(id, name)| {
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
    remember_syslog(ctx, &mut state, &reporter);
    // Last: no receiver, however slow, delays a restart.
    let channels: Vec<&Channel> = (policy.channels.iter())
        .filter(|c| c.guard.as_ref().is_none_or(|g| session.classes.eval(g)))
        .collect();
    if let Some(dir) = store.usable() {
        let sent = reporter.take_sent();
        let down = exit != Exit::Converged;
        notify::deliver(dir, &channels, &sent, (ctx.now, down), &mut reporter);
    }
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

/// Remembers what this pass found of syslog, when it changed, so a host
/// without syslog is told once per reason, not in every mail.
fn remember_syslog(ctx: &Context, state: &mut State, reporter: &Reporter) {
    let Some(found) = reporter.syslog_found() else {
        return;
    };
    if found == state.syslog_error || ctx.store.refused().is_some() {
        return;
    }
    state.syslog_error = found;
    let _ = ctx.store.save(state);
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
