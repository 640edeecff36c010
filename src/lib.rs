//! tend keeps a host's services running. One pass:
//!
//! ```text
//! load policy -> host classes -> select services -> scan processes once
//!   -> decide -> act (run commands) -> verify -> report changes
//! ```
//!
//! Each stage is a module; `run` strings them together and returns the exit
//! status: 0 every service that applies runs, 1 some service is still down.
//! Errors (bad usage, a broken policy) are exit status 2, in `main`.

pub mod act;
pub mod analyzer;
pub mod classes;
pub mod cli;
pub mod decide;
pub mod diagnostic;
pub mod matcher;
pub mod parser;
pub mod policy;
pub mod report;
pub mod scan;

use anyhow::Result;

use crate::classes::{Classes, Host};
use crate::cli::{Cli, Command};
use crate::decide::{Decision, Observation};
use crate::matcher::Matcher;
use crate::policy::{Policy, Service};
use crate::report::{Event, Reporter};

/// Exit status: every service that applies is running.
pub const CONVERGED: u8 = 0;
/// Exit status: some service that applies is still down.
pub const DOWN: u8 = 1;

pub fn run(cli: Cli) -> Result<u8> {
    let policy = policy::load(&cli.policy)?;
    let host = Host::detect(chrono::Local::now());
    let classes = Classes::evaluate(Some(&policy), &host, &cli.define);
    match cli.command.unwrap_or(Command::Run) {
        Command::Validate => {
            println!(
                "{}: ok ({} services, {} classes)",
                policy.origin.display(),
                policy.services.len(),
                policy.classes.len()
            );
            Ok(CONVERGED)
        }
        Command::Classes => {
            print_classes(&classes, cli.verbose);
            Ok(CONVERGED)
        }
        Command::Run => pass(&policy, &classes, &cli),
    }
}

/// Every service that applies, in policy order, with what a pass would do;
/// with `verbose`, also those that do not apply and why. `decisions` are for
/// the services that apply, in order.
fn print_dry_run(policy: &Policy, classes: &Classes, decisions: &[Decision], verbose: bool) {
    let mut decisions = decisions.iter();
    for s in &policy.services {
        if !classes.selects(s) {
            if verbose {
                let guard = s
                    .guard
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                println!("{} ({}): does not apply (guard {guard}::)", s.name, s.id);
            }
            continue;
        }
        match decisions.next() {
            Some(Decision::Running { pid }) => {
                println!("{} ({}): running (pid {pid})", s.name, s.id)
            }
            Some(Decision::Restart) => {
                println!(
                    "{} ({}): not running; would run: {}",
                    s.name, s.id, s.restart.text
                )
            }
            None => {}
        }
    }
}

fn print_classes(classes: &Classes, verbose: bool) {
    for (name, origin) in classes.defined() {
        if verbose {
            println!("{name:<24} {origin}");
        } else {
            println!("{name}");
        }
    }
    if verbose {
        for (name, at) in classes.off() {
            println!("{name:<24} off: policy class at {at}");
        }
    }
}

/// One pass over the services that apply to this host.
fn pass(policy: &Policy, classes: &Classes, cli: &Cli) -> Result<u8> {
    let services: Vec<&Service> = policy
        .services
        .iter()
        .filter(|s| classes.selects(s))
        .collect();
    if services.is_empty() {
        if cli.dry_run {
            print_dry_run(policy, classes, &[], cli.verbose);
            println!(
                "no service in {} applies to this host",
                policy.origin.display()
            );
        }
        return Ok(CONVERGED);
    }
    let matcher = Matcher::new(services.iter().map(|s| s.process.as_str()))?;
    let found = matcher.find(&scan::scan()?);
    let observations: Vec<Observation> =
        found.into_iter().map(|pids| Observation { pids }).collect();
    let decisions = decide::decide(&observations);

    if cli.dry_run {
        print_dry_run(policy, classes, &decisions, cli.verbose);
        let all_up = decisions
            .iter()
            .all(|d| matches!(d, Decision::Running { .. }));
        return Ok(if all_up { CONVERGED } else { DOWN });
    }

    let down: Vec<usize> = (0..services.len())
        .filter(|&i| decisions[i] == Decision::Restart)
        .collect();
    if down.is_empty() {
        return Ok(CONVERGED);
    }
    let mut reporter = Reporter::new();
    let to_restart: Vec<&Service> = down.iter().map(|&i| services[i]).collect();
    for s in &to_restart {
        reporter.emit(&Event::Restarting {
            name: s.name.clone(),
        });
    }
    // While waiting for restarted services to appear, each look reads the
    // process table once for all of them.
    let mut look = || match scan::scan() {
        Ok(processes) => {
            let found = matcher.find(&processes);
            down.iter().map(|&i| found[i].clone()).collect()
        }
        Err(_) => vec![Vec::new(); down.len()],
    };
    let outcomes = act::restart_all(&to_restart, &mut look);
    let mut status = CONVERGED;
    for (s, outcome) in to_restart.iter().zip(outcomes) {
        let event = match outcome {
            act::Outcome::Restarted { pid } => Event::Restarted {
                name: s.name.clone(),
                pid,
            },
            act::Outcome::Failed(failure) => {
                status = DOWN;
                Event::Failed {
                    name: s.name.clone(),
                    command: s.restart.text.clone(),
                    failure,
                }
            }
        };
        reporter.emit(&event);
    }
    Ok(status)
}
