//! `tend reset ID... | --all`: forgets a service's failures and restart
//! budget, under the pass lock, so the next pass tries again.

use anyhow::{bail, Result};

use super::Context;
use crate::exit::Exit;
use crate::store::Locking;

pub(crate) fn run(ctx: &Context, ids: &[String], all: bool) -> Result<Exit> {
    let enforced = ctx.enforce_noting()?;
    let policy = &enforced.policy;
    let have: Vec<&str> = policy.services.iter().map(|s| s.id.as_str()).collect();
    for id in ids {
        if !have.contains(&id.as_str()) {
            let near = crate::suggest::closest(id, &have)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            bail!("no service `{id}` in {}{near}", policy.origin);
        }
    }
    let store = &ctx.store;
    let _lock = match store.lock(ctx.now)? {
        Locking::Acquired(lock) => lock,
        Locking::Held(_) => bail!(
            "a pass is running (it holds the lock in {}); try again",
            store.dir().display()
        ),
    };
    let loaded = store.load(ctx.now);
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
        // A service seen running stays so (status would otherwise say
        // `unknown` until the next pass); its budget, reminders and run of
        // trouble are forgotten. Any other is forgotten whole.
        match state.services.get_mut(id) {
            Some(memory) if memory.status.is_running() => {
                memory.restarts.clear();
                memory.reported = None;
                memory.carried.episode = None;
                memory.carried.failed_passes = 0;
            }
            _ => {
                state.services.remove(id);
            }
        }
        println!("{id}: reset; the next pass restarts it if it is down");
    }
    store.save(&state)?;
    Ok(Exit::Converged)
}
