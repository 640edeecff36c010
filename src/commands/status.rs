//! `tend status`: what the last pass found for every service that applies,
//! from the state file (nothing is looked at or changed). Its exit status
//! is the last pass's, so it also serves as a check.

use anyhow::Result;
use serde::Serialize;

use super::{print_json, Context};
use crate::cli::Format;
use crate::clock;
use crate::exit::Exit;
use crate::load::Enforced;
use crate::pause::Pause;
use crate::pkgmgr;
use crate::preview;
use crate::state::{Kind, ServiceState};

/// `tend status --format json`.
#[derive(Serialize)]
struct Doc<'a> {
    policy: PolicyRow<'a>,
    last_run: Option<i64>,
    pause: Option<PauseRow<'a>>,
    /// What holds the package manager's lock, if one is at work.
    package_manager: Option<String>,
    services: Vec<Row<'a>>,
}

/// The policy enforced: the configured one, or its last good copy.
#[derive(Serialize)]
struct PolicyRow<'a> {
    path: &'a str,
    digest: &'a str,
    last_good: bool,
    kept: Option<i64>,
    error: Option<String>,
}

#[derive(Serialize)]
struct PauseRow<'a> {
    since: i64,
    until: i64,
    reason: Option<&'a str>,
    active: bool,
}

/// One service that applies, as the last pass left it.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    since: Option<i64>,
    restarts_in_window: usize,
    restart_limit: usize,
    window_seconds: i64,
    pid: Option<u32>,
    failure: Option<&'a str>,
    reason: Option<&'a str>,
    note: Option<&'a str>,
    /// Flapping or crash-looping, and the next try.
    trouble: Option<preview::Trouble>,
}

pub(crate) fn run(ctx: &Context) -> Result<Exit> {
    let enforced = ctx.enforce()?;
    let busy = ctx.busy();
    let classes = ctx.classes(&enforced, busy.as_ref());
    let state = ctx.store.peek();
    let pause = ctx.store.pause(ctx.now);
    let now = ctx.now;
    let rows: Vec<Row> = classes
        .select(&enforced.policy)
        .into_iter()
        .map(|s| {
            let st = state.services.get(&s.id);
            Row {
                id: &s.id,
                name: &s.name,
                status: st.map_or("unknown", |st| st.status.label()),
                since: st.map(|st| st.since),
                restarts_in_window: st.map_or(0, |st| {
                    st.restarts
                        .iter()
                        .filter(|&&t| t > now - s.limits.within)
                        .count()
                }),
                restart_limit: s.limits.restarts,
                window_seconds: s.limits.within,
                pid: st.and_then(|st| st.status.process()).map(|p| p.pid),
                failure: st.and_then(|st| st.status.failure()),
                reason: st.and_then(|st| st.status.reason()),
                note: st.and_then(|st| st.status.note()),
                trouble: st.and_then(preview::Trouble::of),
            }
        })
        .collect();
    let all_running = rows.iter().all(|r| {
        state
            .services
            .get(r.id)
            .is_some_and(|st: &ServiceState| st.status.is_running())
    });
    let busy = busy.map(|b| b.to_string());
    if ctx.format == Format::Json {
        let f = enforced.fallback.as_ref();
        print_json(&Doc {
            policy: PolicyRow {
                path: f.map_or(&enforced.policy.origin, |f| &f.broken),
                digest: &enforced.policy.digest,
                last_good: f.is_some(),
                kept: f.map(|f| f.saved),
                error: f.map(|f| f.error.summary()),
            },
            last_run: state.last_run,
            pause: pause.as_ref().map(|p| PauseRow {
                since: p.since,
                until: p.until,
                reason: p.reason.as_deref(),
                active: now < p.until,
            }),
            package_manager: busy,
            services: rows,
        })?;
    } else {
        print_text(ctx, &enforced, &state.last_run, pause.as_ref(), busy, &rows);
    }
    Ok(Exit::converged_if(all_running))
}

fn print_text(
    ctx: &Context,
    enforced: &Enforced,
    last_run: &Option<i64>,
    pause: Option<&Pause>,
    busy: Option<String>,
    rows: &[Row],
) {
    let now = ctx.now;
    println!("{}", enforced.headline());
    match last_run {
        Some(t) => println!(
            "last pass: {} ({} ago)",
            clock::local_time(*t),
            clock::span(now - t)
        ),
        None => println!("last pass: never (state in {})", ctx.store.dir().display()),
    }
    match pause {
        Some(p) if now < p.until => println!("paused {}: restarts wait", p.describe()),
        Some(p) => println!("pause {} has ended", p.describe()),
        None => {}
    }
    if let Some(why) = &busy {
        println!("package manager at work: {why}: restarts wait");
    }
    for note in pkgmgr::stale(&ctx.pkg_root) {
        println!("note: {note}");
    }
    // Columns as wide as their widest cell, so long ids and names (and
    // `backing off`) keep the rows aligned.
    let width =
        |least: usize, cells: &mut dyn Iterator<Item = usize>| cells.fold(least, usize::max);
    let id_w = width(16, &mut rows.iter().map(|r| r.id.chars().count()));
    let name_w = width(20, &mut rows.iter().map(|r| r.name.chars().count()));
    let status_w = width(10, &mut rows.iter().map(|r| r.status.len()));
    println!(
        "{:<id_w$} {:<name_w$} {:<status_w$} {:<17} {:<9} PID",
        "SERVICE", "NAME", "STATUS", "SINCE", "RESTARTS"
    );
    for r in rows {
        println!(
            "{:<id_w$} {:<name_w$} {:<status_w$} {:<17} {:<9} {}",
            r.id,
            r.name,
            r.status,
            r.since.map_or("-".to_string(), clock::local_time),
            format!("{}/{}", r.restarts_in_window, r.restart_limit),
            r.pid.map_or("-".to_string(), |p| p.to_string()),
        );
        // Why, under the row: the check that failed, the last failure, or
        // what needs no action.
        for why in [r.reason, r.note].into_iter().flatten() {
            println!("    {why}");
        }
        if r.status != Kind::Running.label() {
            if let Some(failure) = r.failure {
                println!("    {failure}");
            }
        }
        if let Some(t) = &r.trouble {
            println!("    {}", t.text());
        }
    }
}
