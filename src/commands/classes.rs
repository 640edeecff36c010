//! `tend classes [-v]`: the classes this host is in, and where each came
//! from, so an admin can see why a service does or does not apply.

use anyhow::Result;
use serde::Serialize;

use super::{print_json, Context};
use crate::classes::ClassRow;
use crate::cli::Format;
use crate::exit::Exit;

#[derive(Serialize)]
struct Doc<'a> {
    classes: Vec<ClassRow<'a>>,
    off: Vec<Off<'a>>,
}

/// A policy class that is not defined on this host.
#[derive(Serialize)]
struct Off<'a> {
    name: &'a str,
    at: &'a str,
}

pub(crate) fn run(ctx: &Context) -> Result<Exit> {
    let enforced = ctx.enforce_noting()?;
    let busy = ctx.busy();
    let classes = ctx.classes(&enforced, busy.as_ref());
    if ctx.format == Format::Json {
        print_json(&Doc {
            classes: classes.rows(),
            off: classes.off().map(|(name, at)| Off { name, at }).collect(),
        })?;
        return Ok(Exit::Converged);
    }
    for (name, origin) in classes.defined() {
        if ctx.verbose {
            println!("{name:<24} {origin}");
        } else {
            println!("{name}");
        }
    }
    if ctx.verbose {
        for (name, at) in classes.off() {
            println!("{name:<24} off: policy class at {at}");
        }
    }
    Ok(Exit::Converged)
}
