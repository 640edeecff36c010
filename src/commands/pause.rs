//! `tend pause [--for D] [--reason TEXT]` and `tend resume`: a maintenance
//! window. Run from package manager hooks, so they work whatever state the
//! policy is in, and never wait for a pass's lock.

use anyhow::{bail, Result};

use super::Context;
use crate::event::Kind;
use crate::exit::Exit;
use crate::report::Reporter;
use crate::state::{Pause, MAX_PAUSE};

/// Writes the pause file.
pub fn pause(ctx: &Context, duration: u64, reason: Option<String>) -> Result<Exit> {
    if duration == 0 || duration > MAX_PAUSE {
        bail!("a pause lasts from 1s to 24h (--for {duration}s); a forgotten pause must not disable monitoring for good");
    }
    let pause = Pause {
        since: ctx.now,
        until: ctx.now + duration as i64,
        reason: reason.filter(|r| !r.trim().is_empty()),
    };
    ctx.store.set_pause(&pause)?;
    Reporter::new(ctx.format).say(
        Kind::Paused,
        &format!(
            "tend: paused {}; restarts wait until then or 'tend resume'",
            pause.describe()
        ),
        false,
    );
    Ok(Exit::Converged)
}

/// Removes the pause file.
pub fn resume(ctx: &Context) -> Result<Exit> {
    let pause = ctx.store.pause().ok().flatten();
    if !ctx.store.clear_pause()? {
        println!("tend: not paused");
        return Ok(Exit::Converged);
    }
    let line = match pause {
        Some(p) if p.until > ctx.now => format!(
            "tend: resumed (was paused {}); the next pass restarts what is down",
            p.describe()
        ),
        _ => "tend: resumed".to_string(),
    };
    Reporter::new(ctx.format).say(Kind::Resumed, &line, false);
    Ok(Exit::Converged)
}
