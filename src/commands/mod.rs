//! One file per subcommand; `crate::run` dispatches to them. Each takes the
//! [`Context`] built once from the command line, and returns the exit
//! status.

pub mod classes;
pub mod completions;
pub mod dry_run;
pub mod explain;
pub mod import;
pub mod pause;
pub mod plan;
pub mod reset;
pub mod run;
mod session;
pub mod status;
pub mod validate;

use std::path::PathBuf;

use anyhow::Result;

use crate::classes::{Classes, Host};
use crate::cli::{Cli, Format};
use crate::clock;
use crate::load::{self, Enforced};
use crate::pkgmgr::{self, Busy};
use crate::snapshot;
use crate::store::{self, Store};

/// What every command may need, read from the command line once: the time
/// of the run, the state directory, the output format, whether policy files
/// must be root's alone, and where the policy and the package managers'
/// locks are.
pub struct Context {
    pub now: i64,
    pub store: Store,
    pub format: Format,
    pub root_only: bool,
    pub policy: PathBuf,
    pub define: Vec<String>,
    pub pkg_root: PathBuf,
    pub verbose: bool,
    /// Where a pass writes its metrics.
    pub metrics: Option<PathBuf>,
}

impl Context {
    pub fn new(cli: &Cli) -> Context {
        Context {
            now: clock::now(),
            store: Store::new(&cli.state_dir.clone().unwrap_or_else(store::default_dir)),
            format: cli.format,
            root_only: snapshot::must_be_root_only(cli.insecure),
            policy: cli.policy.clone(),
            define: cli.define.clone(),
            pkg_root: cli.pkg_root.clone(),
            verbose: cli.verbose,
            metrics: cli.metrics.clone(),
        }
    }

    /// The policy at `-f`, or its last good copy.
    pub fn enforce(&self) -> Result<Enforced, load::NotEnforced> {
        load::enforce(&self.policy, self.store.usable(), self.root_only)
    }

    /// The same, for commands other than a pass and `status`: when the
    /// copy is used, one line on stderr says why.
    pub fn enforce_noting(&self) -> Result<Enforced> {
        let enforced = self.enforce()?;
        if enforced.fallback.is_some() {
            eprintln!("tend: {}", enforced.fallback_line());
        }
        Ok(enforced)
    }

    /// The policy at `-f` as it is, never the copy (for checking it).
    pub fn read_policy(&self) -> Result<crate::policy::Policy> {
        Ok(load::read(
            std::slice::from_ref(&self.policy),
            self.root_only,
        )?)
    }

    /// This host, at the time of the run.
    pub fn host(&self) -> Host {
        Host::detect(clock::local(self.now))
    }

    /// The package manager at work, if any: probed once per command.
    pub fn busy(&self) -> Option<Busy> {
        pkgmgr::busy(&self.pkg_root)
    }

    /// This host's classes under `enforced`'s policy, with `busy`'s class.
    pub fn classes(&self, enforced: &Enforced, busy: Option<&Busy>) -> Classes {
        Classes::evaluate(Some(&enforced.policy), &self.host(), busy, &self.define)
    }
}

/// Prints a JSON document for a command's `--format json`.
pub fn print_json<T: serde::Serialize>(doc: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}
