//! One file per subcommand; `crate::run` dispatches to them. Each takes the
//! [`Context`] built once from the command line, and returns the exit
//! status.

pub(crate) mod classes;
pub(crate) mod completions;
pub(crate) mod doctor;
pub(crate) mod dry_run;
pub(crate) mod explain;
pub(crate) mod import;
pub(crate) mod man;
pub(crate) mod notify;
pub(crate) mod pause;
pub(crate) mod plan;
pub(crate) mod reset;
pub(crate) mod run;
mod session;
pub(crate) mod status;
pub(crate) mod validate;

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
pub(crate) struct Context {
    pub(crate) now: i64,
    pub(crate) store: Store,
    pub(crate) format: Format,
    pub(crate) root_only: bool,
    pub(crate) policy: PathBuf,
    pub(crate) define: Vec<String>,
    pub(crate) pkg_root: PathBuf,
    pub(crate) verbose: bool,
    /// Where a pass writes its metrics.
    pub(crate) metrics: Option<PathBuf>,
}

impl Context {
    pub(crate) fn new(cli: &Cli) -> Context {
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
    pub(crate) fn enforce(&self) -> Result<Enforced, load::NotEnforced> {
        load::enforce(&self.policy, self.store.usable(), self.root_only)
    }

    /// The same, for commands other than a pass and `status`: when the
    /// copy is used, one line on stderr says why.
    pub(crate) fn enforce_noting(&self) -> Result<Enforced> {
        let enforced = self.enforce()?;
        if enforced.fallback.is_some() {
            eprintln!("tend: {}", enforced.fallback_line());
        }
        Ok(enforced)
    }

    /// The policy at `-f` as it is, never the copy (for checking it).
    pub(crate) fn read_policy(&self) -> Result<crate::policy::Policy> {
        Ok(load::read(
            std::slice::from_ref(&self.policy),
            self.root_only,
        )?)
    }

    /// This host, at the time of the run.
    pub(crate) fn host(&self) -> Host {
        Host::detect(clock::local(self.now))
    }

    /// The package manager at work, if any: probed once per command.
    pub(crate) fn busy(&self) -> Option<Busy> {
        pkgmgr::busy(&self.pkg_root)
    }

    /// This host's classes under `enforced`'s policy, with `busy`'s class.
    pub(crate) fn classes(&self, enforced: &Enforced, busy: Option<&Busy>) -> Classes {
        Classes::evaluate(Some(&enforced.policy), &self.host(), busy, &self.define)
    }
}

/// Prints a JSON document for a command's `--format json`.
pub(crate) fn print_json<T: serde::Serialize>(doc: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}
