//! What a pass holds before it looks: the policy it enforces, this host's
//! classes, whether a package manager is at work, and its memory: under
//! the lock, the state (notices said), the pauses (damaged ones set aside,
//! overlong ones cut), what is said of the policy (broken, fixed, changed)
//! and its last good copy kept. A dry run peeks at the same without the
//! lock and changes nothing.

use anyhow::Result;

use super::Context;
use crate::classes::Classes;
use crate::clock;
use crate::event::Kind;
use crate::exit::Exit;
use crate::load::{self, Enforced};
use crate::pass::{self, Memory, Plan};
use crate::pause::{Holds, Pause};
use crate::pkgmgr::Busy;
use crate::report::{self, Reporter};
use crate::snapshot;
use crate::state::{PolicyError, State};
use crate::store::{Lock, Locking, Store};

pub(crate) struct Session {
    pub(crate) enforced: Enforced,
    pub(crate) classes: Classes,
    pub(crate) busy: Option<Busy>,
    /// Handed to the plan.
    memory: std::cell::Cell<Option<Memory>>,
    /// Held until the session ends (None: a dry run, or no lock to be
    /// had).
    _lock: Option<Lock>,
}

impl Session {
    /// A pass's session over `enforced`: Err(exit) when another pass holds
    /// the lock (this one then ends, said only if that one may be hung).
    pub(crate) fn open(
        ctx: &Context,
        enforced: Enforced,
        reporter: &mut Reporter,
        stale_after: u64,
    ) -> Result<Session, Exit> {
        let (store, now) = (&ctx.store, ctx.now);
        if let Some(why) = store.refused() {
            reporter.say(
                Kind::StateRefused,
                &format!("tend: {why}; this pass runs without its state: no lock, no memory of earlier passes, no last good policy"),
                true,
            );
        }
        let lock = lock(store, now, stale_after, reporter)?;
        let loaded = store.load(now);
        if let Some(notice) = &loaded.notice {
            reporter.say(Kind::StateDamaged, notice, true);
        }
        let prior = loaded.state;
        reporter.syslog_known(prior.syslog_error.clone());
        let policy_error = say_policy(&enforced, &prior, store, reporter, now);
        let (pause, holds) = pauses(store, reporter, now);
        let busy = ctx.busy();
        Ok(Session {
            classes: ctx.classes(&enforced, busy.as_ref()),
            enforced,
            busy,
            memory: std::cell::Cell::new(Some(Memory {
                prior,
                pause,
                holds,
                booted: crate::scan::booted(),
                policy_error,
            })),
            _lock: lock,
        })
    }

    /// The plan of this pass at `now`: the memory is handed to it (one
    /// plan per session).
    pub(crate) fn plan(&self, now: i64) -> Result<Plan<'_>> {
        let memory = self.memory.take().expect("one plan per session");
        pass::plan(
            &self.enforced,
            &self.classes,
            memory,
            self.busy.as_ref(),
            now,
        )
    }

    /// A dry run's: the same, peeked (damaged pause files printed), with
    /// nothing changed.
    pub(crate) fn peek(ctx: &Context, enforced: Enforced) -> Session {
        for (_, damaged) in ctx.store.pauses() {
            if let Err(e) = damaged {
                println!("tend: {e:#}");
            }
        }
        let busy = ctx.busy();
        Session {
            classes: ctx.classes(&enforced, busy.as_ref()),
            enforced,
            busy,
            memory: std::cell::Cell::new(Some(Memory {
                prior: ctx.store.peek(),
                pause: ctx.store.pause(ctx.now),
                holds: ctx.store.holds(ctx.now),
                booted: crate::scan::booted(),
                policy_error: None,
            })),
            _lock: None,
        }
    }
}

/// The pause of every service in force, and each service's own, of all
/// pause files. A damaged one is set aside, so it is said once; one that
/// began in the future or lasts more than 24h is cut, rewritten so, and
/// said once.
fn pauses(store: &Store, reporter: &mut Reporter, now: i64) -> (Option<Pause>, Holds) {
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
    let holds = Pause::holds(honoured.iter().cloned());
    let all = honoured.into_iter().filter(|p| p.service.is_none());
    (Pause::current(all, now), holds)
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

/// The policy error, as one line (`text`), and the source excerpts of its
/// errors below.
pub(crate) fn say_broken(reporter: &mut Reporter, text: &str, error: &load::Unusable) {
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
