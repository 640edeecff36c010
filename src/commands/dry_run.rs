//! `tend --dry-run`: prints the plan of a pass (every service that applies,
//! what the process table says of it, and what a pass would run) without
//! running or changing anything. It is the same plan a pass executes.
//! Under each service, what each of its checks found in this look.

use anyhow::Result;

use super::session::Session;
use super::Context;
use crate::check::Problem;
use crate::decide::Hold;
use crate::exit::Exit;
use crate::pass::{self, Planned};
use crate::policy::Service;
use crate::state::Kind;

pub(crate) fn run(ctx: &Context) -> Result<Exit> {
    let enforced = ctx.enforce()?;
    println!("{}", enforced.headline());
    if let Some(detail) = enforced.fallback_detail() {
        println!("{detail}");
    }
    let session = Session::peek(ctx, enforced);
    let plan = session.plan(ctx.now)?;
    let enforced = &session.enforced;
    match plan.hold() {
        Some(Hold::Paused(why)) => println!("tend is paused {why}: restarts wait"),
        Some(Hold::Busy(why)) => println!("package manager at work: {why}: restarts wait"),
        Some(Hold::Waiting(_) | Hold::Left(..) | Hold::Held(_) | Hold::Boot(_)) | None => {}
    }
    for note in crate::pkgmgr::stale(&ctx.pkg_root) {
        println!("note: {note}");
    }
    let services = &plan.watch.services;
    let mut planned = services.iter().zip(&plan.services).peekable();
    for s in &enforced.policy.services {
        // The plan has the services that apply, in policy order.
        let Some((_, p)) = planned.next_if(|(applies, _)| std::ptr::eq(**applies, s)) else {
            if ctx.verbose {
                let guard = s
                    .guard
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                println!("{} ({}): does not apply (guard {guard}::)", s.name, s.id);
            }
            continue;
        };
        let what = seen(p);
        let then = would(s, p, services);
        println!("{} ({}): {what}{then}", s.name, s.id);
        for c in &p.verdict.checks {
            println!("  {}", c.line());
        }
    }
    if services.is_empty() {
        println!(
            "no service in {} applies to this host",
            enforced.policy.origin
        );
    }
    Ok(Exit::converged_if(plan.all_up()))
}

/// What the look found of a service: `running (pid 42)` and what to say
/// of it, or why it is not up.
fn seen(p: &Planned) -> String {
    let verdict = &p.verdict;
    match (verdict.running(), verdict.problem()) {
        (Some(running), _) => {
            let mut text = match running.pid() {
                None => "running (active, no main process)".to_string(),
                Some(pid) => format!("running (pid {pid})"),
            };
            if let Some(note) = verdict.note() {
                text.push_str(&format!("; {note}"));
            }
            if let Some(path) = &p.replaced {
                text.push_str(&format!("; runs a replaced binary ({path})"));
            }
            text
        }
        (None, None) => "not running".to_string(),
        (None, Some(Problem::Absent(why))) => format!("not running ({why})"),
        (None, Some(Problem::Failing(why))) => format!("fails a check ({why})"),
    }
}

/// What a pass would do about it: the commands it would run (once its
/// dependencies are up), or why it would not.
fn would(s: &Service, p: &Planned, services: &[&Service]) -> String {
    let step = &p.step;
    let commands = s.commands_text(pass::present(&p.verdict, step));
    match (step.restart, step.state.status.kind()) {
        (true, _) if !p.waits.is_empty() => {
            let names: Vec<&str> = p.waits.iter().map(|&d| services[d].name.as_str()).collect();
            format!("; would run once {} is up: {commands}", names.join(" and "))
        }
        (true, _) => format!("; would run: {commands}"),
        (false, Kind::Down) => match step.state.status.failure() {
            // Held alone, or waited for after boot: why, and until when.
            Some(why) if step.state.status.waited().is_some() => format!("; {why}"),
            _ => "; restart deferred".to_string(),
        },
        (false, Kind::GivenUp) => {
            format!("; given up, would not restart (run 'tend reset {}')", s.id)
        }
        (false, Kind::BackingOff) => match p.step.state.carried.episode {
            Some(e) => format!(
                "; crash-looping, would try again at {} (or now after 'tend reset {}')",
                crate::clock::local_time(e.next),
                s.id
            ),
            None => String::new(),
        },
        (false, _) => String::new(),
    }
}
