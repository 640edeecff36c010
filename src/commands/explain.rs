//! `tend explain ID [--host NAME]`: one service, for this host or another:
//! why it applies or not, how it is recognised and checked, what brings it
//! back. Reads the live policy, as `plan` does.

use anyhow::{bail, Result};

use super::{print_json, Context};
use crate::classes::{Classes, Host};
use crate::cli::{Format, OsArgs};
use crate::clock;
use crate::exit::Exit;
use crate::preview;
use crate::suggest::closest;

pub(crate) fn run(ctx: &Context, id: &str, name: Option<&str>, os: &OsArgs) -> Result<Exit> {
    let policy = ctx.read_policy()?;
    let (host, busy) = match name {
        Some(name) => (
            Host::named(name, os.os.as_deref(), os.arch.as_deref()),
            None,
        ),
        None => (ctx.host(), ctx.busy()),
    };
    let classes = Classes::evaluate(Some(&policy), &host, busy.as_ref(), &ctx.define);
    let Some(s) = policy.services.iter().find(|s| s.id == id) else {
        let ids: Vec<&str> = policy.services.iter().map(|s| s.id.as_str()).collect();
        let near = closest(id, &ids)
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        bail!("no service `{id}` in {}{near}", policy.origin);
    };
    let mut about = preview::explain(s, &policy, &host, &classes);
    // What the last pass found is this host's only.
    if name.is_none() {
        if let Some(memory) = ctx.store.peek().services.remove(id) {
            about.trouble = preview::Trouble::of(&memory);
            if crate::probe::wanted(s) {
                about.last_checks = memory.carried.checks;
            }
        }
    }
    if ctx.format == Format::Json {
        print_json(&about)?;
        return Ok(Exit::Converged);
    }
    let row = &about.service;
    println!("{} ({}), at {}", s.name, s.id, row.at);
    println!(
        "  {} to {}: guard {}:: is {}",
        if row.applies {
            "applies"
        } else {
            "does not apply"
        },
        preview::host_line(&host),
        row.guard,
        row.applies
    );
    for r in &row.classes {
        println!("    {}", r.text());
    }
    println!("  found by: {}", about.found_by.join(", "));
    if !about.checks.is_empty() {
        println!("  checks: {}", about.checks.join("; "));
    }
    if let Some(last) = &about.last_checks {
        println!("  last checked {}:", clock::local_time(last.at));
        for c in &last.each {
            println!("    {}", c.line());
        }
    }
    println!("  when down: {}", about.when_down);
    if about.when_failing != about.when_down {
        println!("  when failing a check: {}", about.when_failing);
    }
    if !about.depends_on.is_empty() {
        println!("  depends on: {}", about.depends_on.join(", "));
    }
    println!("  {}", about.limits.text());
    if let Some(t) = &about.trouble {
        println!("  now {}", t.text());
    }
    Ok(Exit::Converged)
}
