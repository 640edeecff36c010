//! `tend plan --host NAME`: every service of the policy, whether it applies
//! to that host, and why. Reads the live policy (never the last good copy):
//! it is for checking a policy before a push.

use anyhow::Result;
use serde::Serialize;

use super::{print_json, Context};
use crate::classes::{ClassRow, Classes, Host};
use crate::cli::{Format, OsArgs};
use crate::exit::Exit;
use crate::preview::{self, ServiceRow};

#[derive(Serialize)]
struct Doc<'a> {
    host: &'a str,
    os: Option<String>,
    arch: &'a str,
    policy: &'a str,
    digest: &'a str,
    classes: Vec<ClassRow<'a>>,
    services: Vec<ServiceRow<'a>>,
}

pub(crate) fn run(ctx: &Context, name: &str, os: &OsArgs) -> Result<Exit> {
    let policy = ctx.read_policy()?;
    let host = Host::named(name, os.os.as_deref(), os.arch.as_deref());
    let classes = Classes::evaluate(Some(&policy), &host, None, &ctx.define);
    let services: Vec<ServiceRow> = policy
        .services
        .iter()
        .map(|s| preview::service_row(s, &policy, &classes))
        .collect();
    if ctx.format == Format::Json {
        print_json(&Doc {
            host: preview::host_name(&host),
            os: host.os_id.as_ref().map(|id| match &host.os_version {
                Some(v) => format!("{id}_{v}"),
                None => id.clone(),
            }),
            arch: &host.arch,
            policy: &policy.origin,
            digest: &policy.digest,
            classes: classes.rows(),
            services,
        })?;
        return Ok(Exit::Converged);
    }
    let applies = services.iter().filter(|s| s.applies).count();
    println!(
        "plan for {}: {applies} of {} services apply (policy {}, sha256 {})",
        preview::host_line(&host),
        services.len(),
        policy.origin,
        policy.digest
    );
    let names: Vec<&str> = classes.defined().map(|(n, _)| n).collect();
    println!("classes: {}", names.join(" "));
    for s in &services {
        println!("{}", s.line());
    }
    Ok(Exit::Converged)
}
