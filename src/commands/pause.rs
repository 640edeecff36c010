//! `tend pause [ID...] [--for D] [--reason TEXT]` and `tend resume [ID...]`:
//! a maintenance window, for the host or for the services named. Run from
//! package manager hooks, so they work whatever state the policy is in, and
//! never wait for a pass's lock.

use anyhow::{bail, Result};

use super::Context;
use crate::event::Kind;
use crate::exit::Exit;
use crate::pause::{self, Pause, MAX_PAUSE};
use crate::report::Reporter;
use crate::suggest::closest;

/// Writes the pause file (of `by`, or the admin's), or one for each
/// service named.
pub(crate) fn pause(
    ctx: &Context,
    ids: &[String],
    duration: u64,
    reason: Option<String>,
    by: Option<String>,
) -> Result<Exit> {
    if duration == 0 || duration > MAX_PAUSE {
        bail!("a pause lasts from 1s to 24h (--for {duration}s); a forgotten pause must not disable monitoring for good");
    }
    if let Some(by) = &by {
        pause::pause_owner(by)?;
    }
    known(ctx, ids)?;
    let pause = Pause {
        since: ctx.now,
        until: ctx.now + duration as i64,
        reason: reason.filter(|r| !r.trim().is_empty()),
        by,
        service: None,
    };
    let mut reporter = Reporter::new(ctx.format);
    // A pause of the same owner (or service) still in force is replaced:
    // said, not silently.
    let before = ctx.store.bounded_pauses(ctx.now);
    let replaces = |p: &Pause| {
        before
            .iter()
            .find(|old| old.by == p.by && old.service == p.service && old.until > ctx.now)
            .map_or(String::new(), |old| {
                format!(" (it replaces the pause {})", old.describe())
            })
    };
    if !ids.is_empty() {
        for id in ids {
            let held = Pause {
                service: Some(id.clone()),
                ..pause.clone()
            };
            let replaced = replaces(&held);
            ctx.store.set_pause(&held)?;
            reporter.say(
                Kind::Paused,
                &format!(
                    "tend: {id} paused {}{replaced}; its restarts wait until then or 'tend resume {id}'",
                    held.describe()
                ),
                false,
            );
        }
        return Ok(Exit::Converged);
    }
    let replaced = replaces(&pause);
    ctx.store.set_pause(&pause)?;
    reporter.say(
        Kind::Paused,
        &format!(
            "tend: paused {}{replaced}; restarts wait until then or 'tend resume{}'",
            pause.describe(),
            pause
                .by
                .as_ref()
                .map_or(String::new(), |b| format!(" --by {b}"))
        ),
        false,
    );
    Ok(Exit::Converged)
}

/// Service ids as the language writes them, and, when the policy can be
/// read, ones it has (a typo would hold nothing).
fn known(ctx: &Context, ids: &[String]) -> Result<()> {
    for id in ids {
        pause::service_id(id)?;
    }
    let Ok(policy) = ctx.read_policy() else {
        return Ok(());
    };
    let have: Vec<&str> = policy.services.iter().map(|s| s.id.as_str()).collect();
    for id in ids {
        if !have.contains(&id.as_str()) {
            let near = closest(id, &have)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            bail!("no service `{id}` in {}{near}", policy.origin);
        }
    }
    Ok(())
}

/// Removes the pause file of `by` (or the admin's), or those of the
/// services named; says what pause, if any, still holds restarts.
pub(crate) fn resume(ctx: &Context, ids: &[String], by: Option<String>) -> Result<Exit> {
    if let Some(by) = &by {
        pause::pause_owner(by)?;
    }
    for id in ids {
        pause::service_id(id)?;
    }
    let mut reporter = Reporter::new(ctx.format);
    if !ids.is_empty() {
        let holds = ctx.store.holds(ctx.now);
        for id in ids {
            let held = holds.get(id).filter(|p| p.until > ctx.now);
            if !ctx.store.clear_pause(None, Some(id))? {
                println!("tend: {id} was not paused");
                continue;
            }
            let line = match held {
                Some(p) => format!(
                    "tend: resumed {id} (was paused {}); the next pass restarts it if it is down",
                    p.describe()
                ),
                None => format!("tend: resumed {id}"),
            };
            reporter.say(Kind::Resumed, &line, false);
        }
        return Ok(Exit::Converged);
    }
    let mine = |p: &Pause| p.by == by;
    let pauses: Vec<Pause> = ctx
        .store
        .bounded_pauses(ctx.now)
        .into_iter()
        .filter(|p| p.service.is_none())
        .collect();
    let ended = pauses.iter().find(|p| mine(p)).cloned();
    let others = Pause::current(pauses.into_iter().filter(|p| !mine(p)), ctx.now)
        .filter(|p| p.until > ctx.now);
    let still = match &others {
        Some(p) => format!("; still paused {}", p.describe()),
        None => String::new(),
    };
    if !ctx.store.clear_pause(by.as_deref(), None)? {
        println!(
            "tend: not paused{}{still}",
            by.as_ref().map_or(String::new(), |b| format!(" by {b}"))
        );
        return Ok(Exit::Converged);
    }
    let line = match ended {
        Some(p) if p.until > ctx.now && others.is_none() => format!(
            "tend: resumed (was paused {}); the next pass restarts what is down",
            p.describe()
        ),
        Some(p) if p.until > ctx.now => {
            format!("tend: resumed (was paused {}){still}", p.describe())
        }
        _ => format!("tend: resumed{still}"),
    };
    reporter.say(Kind::Resumed, &line, false);
    Ok(Exit::Converged)
}
