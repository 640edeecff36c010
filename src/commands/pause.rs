//! `tend pause [--for D] [--reason TEXT]` and `tend resume`: a maintenance
//! window. Run from package manager hooks, so they work whatever state the
//! policy is in, and never wait for a pass's lock.

use anyhow::{bail, Result};

use super::Context;
use crate::event::Kind;
use crate::exit::Exit;
use crate::pause::{self, Pause, MAX_PAUSE};
use crate::report::Reporter;

/// Writes the pause file (of `by`, or the admin's).
pub(crate) fn pause(
    ctx: &Context,
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
    let pause = Pause {
        since: ctx.now,
        until: ctx.now + duration as i64,
        reason: reason.filter(|r| !r.trim().is_empty()),
        by,
    };
    ctx.store.set_pause(&pause)?;
    Reporter::new(ctx.format).say(
        Kind::Paused,
        &format!(
            "tend: paused {}; restarts wait until then or 'tend resume{}'",
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

/// Removes the pause file of `by` (or the admin's); says what pause, if
/// any, still holds restarts.
pub(crate) fn resume(ctx: &Context, by: Option<String>) -> Result<Exit> {
    if let Some(by) = &by {
        pause::pause_owner(by)?;
    }
    let mine = |p: &Pause| p.by == by;
    let pauses = ctx.store.bounded_pauses(ctx.now);
    let ended = pauses.iter().find(|p| mine(p)).cloned();
    let others = Pause::current(pauses.into_iter().filter(|p| !mine(p)), ctx.now)
        .filter(|p| p.until > ctx.now);
    let still = match &others {
        Some(p) => format!("; still paused {}", p.describe()),
        None => String::new(),
    };
    if !ctx.store.clear_pause(by.as_deref())? {
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
    Reporter::new(ctx.format).say(Kind::Resumed, &line, false);
    Ok(Exit::Converged)
}
