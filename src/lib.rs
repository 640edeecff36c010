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
pub mod check;
pub mod classes;
pub mod cli;
pub mod decide;
pub mod diagnostic;
pub mod matcher;
pub mod parser;
pub mod pkgmgr;
pub mod policy;
pub mod preview;
pub mod report;
pub mod scan;
pub mod snapshot;
pub mod state;

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::check::{Owner, Verdict};
use crate::classes::{Classes, Host};
use crate::cli::{Cli, Command, Format};
use crate::decide::{Hold, Input, Problem, Step};
use crate::matcher::{Matcher, Spec};
use crate::policy::{Policy, Service};
use crate::report::Reporter;
use crate::snapshot::Snapshot;
use crate::state::{Locking, Pause, PolicyError, ServiceState, State, Status, Store};

/// Exit status: every service that applies is running.
pub const CONVERGED: u8 = 0;
/// Exit status: some service that applies is still down.
pub const DOWN: u8 = 1;
/// Exit status: bad usage, or a broken policy with no last good copy.
pub const BROKEN: u8 = 2;

/// The time of this run, in unix seconds. `TEND_NOW` overrides the clock; it
/// exists for tests (reminders, budgets) and is documented as such.
pub fn now() -> i64 {
    if let Some(t) = std::env::var("TEND_NOW").ok().and_then(|v| v.parse().ok()) {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The longest pause: a forgotten one must not disable monitoring for good.
pub const MAX_PAUSE: u64 = 86_400;

pub fn run(cli: Cli) -> Result<u8> {
    if cli.dry_run || !matches!(cli.command, None | Some(Command::Run)) {
        // Output for a terminal or a pipe: `tend status | head` ends
        // quietly. A pass goes on whatever happens to its output.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    let now = now();
    let store = Store::new(&cli.state_dir.clone().unwrap_or_else(state::default_dir));
    // Pause and resume come from package manager hooks: they must work
    // whatever state the policy is in.
    match &cli.command {
        Some(Command::Pause { duration, reason }) => {
            return pause(&store, *duration, reason.clone(), now, cli.format)
        }
        Some(Command::Resume) => return resume(&store, now, cli.format),
        Some(Command::Completions { shell }) => {
            // Into memory first: clap_complete panics on a failed write.
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "tend", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)?;
            return Ok(CONVERGED);
        }
        Some(Command::Man) => {
            let cmd = <Cli as clap::CommandFactory>::command().name("tend");
            clap_mangen::Man::new(cmd)
                .section("8")
                .render(&mut std::io::stdout())?;
            return Ok(CONVERGED);
        }
        _ => {}
    }
    let root_only = snapshot::must_be_root_only(cli.insecure);
    if let Some(Command::Validate { paths }) = &cli.command {
        // The installed policy is checked as a pass would read it; a
        // repository's files (PATHs) for their text only.
        return match paths.is_empty() {
            true => validate(std::slice::from_ref(&cli.policy), root_only, cli.format),
            false => validate(paths, false, cli.format),
        };
    }
    let local = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.with_timezone(&chrono::Local))
        .unwrap_or_else(chrono::Local::now);
    // Previews read the policy as it is: they are for checking it.
    match &cli.command {
        Some(Command::Plan { host, os }) => {
            let policy = policy::check(&snapshot::read(
                std::slice::from_ref(&cli.policy),
                root_only,
            )?)?;
            let host = Host::named(host, os.os.as_deref(), os.arch.as_deref());
            let classes = Classes::evaluate(Some(&policy), &host, &[], &cli.define);
            return preview::plan(&policy, &host, &classes, cli.format);
        }
        Some(Command::Explain { id, host, os }) => {
            let policy = policy::check(&snapshot::read(
                std::slice::from_ref(&cli.policy),
                root_only,
            )?)?;
            let (host, detected) = match host {
                Some(name) => (
                    Host::named(name, os.os.as_deref(), os.arch.as_deref()),
                    Vec::new(),
                ),
                None => (
                    Host::detect(local),
                    busy_classes(&pkgmgr::busy(&cli.pkg_root)),
                ),
            };
            let classes = Classes::evaluate(Some(&policy), &host, &detected, &cli.define);
            return preview::explain(&policy, id, &host, &classes, cli.format);
        }
        _ => {}
    }
    let command = cli.command.clone().unwrap_or(Command::Run);
    let enforced = match enforce(&cli.policy, &store, root_only) {
        Ok(enforced) => enforced,
        Err(error) if command == Command::Run && !cli.dry_run => {
            return broken(&store, &cli.policy, &error, now, cli.format)
        }
        Err(error) => return Err(error),
    };
    if enforced.fallback.is_some() && !matches!(command, Command::Run | Command::Status) {
        eprintln!("tend: {}", enforced.fallback_line());
    }
    let policy = &enforced.policy;
    let host = Host::detect(local);
    let busy = pkgmgr::busy(&cli.pkg_root);
    let detected = busy_classes(&busy);
    let classes = Classes::evaluate(Some(policy), &host, &detected, &cli.define);
    match command {
        Command::Pause { .. }
        | Command::Resume
        | Command::Completions { .. }
        | Command::Man
        | Command::Validate { .. }
        | Command::Plan { .. }
        | Command::Explain { .. } => {
            unreachable!("handled above")
        }
        Command::Classes => {
            print_classes(&classes, cli.verbose, cli.format)?;
            Ok(CONVERGED)
        }
        Command::Status => status(&enforced, &classes, &store, busy, now, cli.format),
        Command::Reset { ids, all } => reset(policy, &store, &ids, all, now),
        Command::Run if cli.dry_run => dry_run(&enforced, &classes, &store, busy, now, cli.verbose),
        Command::Run => {
            splay(&host, cli.splay);
            pass(
                &enforced,
                &classes,
                &store,
                &cli.pkg_root,
                now,
                cli.stale_after,
                cli.format,
            )
        }
    }
}

/// `tend validate [PATH]...`: every error of every file, or the policy's
/// warnings and an ok line. Errors are exit status 2.
fn validate(paths: &[std::path::PathBuf], root_only: bool, format: Format) -> Result<u8> {
    let checked = snapshot::read(paths, root_only).and_then(|s| policy::check(&s));
    if format == Format::Text {
        let policy = checked?;
        let warnings = analyzer::warnings(&policy);
        for w in &warnings {
            println!("{}", w.render(&policy.sources));
        }
        let said = match warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        };
        println!(
            "{}: ok ({} services, {} classes{said}; sha256 {})",
            policy.origin,
            policy.services.len(),
            policy.classes.len(),
            policy.digest
        );
        return Ok(CONVERGED);
    }
    let (diagnostics, policy): (Vec<serde_json::Value>, _) = match checked {
        Ok(p) => (
            analyzer::warnings(&p)
                .iter()
                .map(|d| d.to_json(&p.sources))
                .collect(),
            Some(p),
        ),
        Err(e) => match e.downcast_ref::<diagnostic::PolicyErrors>() {
            Some(errors) => (
                errors
                    .diagnostics
                    .iter()
                    .map(|d| d.to_json(&errors.sources))
                    .collect(),
                None,
            ),
            None => (
                vec![serde_json::json!({
                    "severity": "error", "file": null, "line": null, "column": null,
                    "message": format!("{e:#}"), "rendered": format!("{e:#}"),
                })],
                None,
            ),
        },
    };
    let count = |severity: &str| {
        diagnostics
            .iter()
            .filter(|d| d["severity"] == severity)
            .count()
    };
    let errors = count("error");
    let doc = serde_json::json!({
        "ok": errors == 0,
        "paths": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "digest": policy.as_ref().map(|p| p.digest.clone()),
        "services": policy.as_ref().map(|p| p.services.len()),
        "classes": policy.as_ref().map(|p| p.classes.len()),
        "errors": errors,
        "warnings": count("warning"),
        "diagnostics": diagnostics,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(if errors == 0 { CONVERGED } else { BROKEN })
}

/// `pkgmgr_busy` when a package manager is at work, with its lock.
fn busy_classes(busy: &Option<pkgmgr::Busy>) -> Vec<(&'static str, String)> {
    busy.iter()
        .map(|b| ("pkgmgr_busy", format!("package manager at work: {b}")))
        .collect()
}

/// The policy a command works with: the one at `-f` when it can be read
/// and checks, else the last good copy.
struct Enforced {
    policy: Policy,
    /// The policy as read, to keep as the last good copy (None when the
    /// copy is what is enforced).
    fresh: Option<Snapshot>,
    /// Why the policy at `-f` is not enforced, and where the copy is from.
    fallback: Option<Fallback>,
}

struct Fallback {
    /// The configured policy, as given.
    broken: String,
    error: anyhow::Error,
    origin: String,
    saved: i64,
}

impl Enforced {
    /// `policy /etc/tend (sha256 1a2b3c4d5e6f)`, or which last good copy.
    fn describe(&self) -> String {
        match &self.fallback {
            None => format!(
                "policy {} (sha256 {})",
                self.policy.origin, self.policy.digest
            ),
            Some(f) => format!(
                "the last good policy, kept {} from {} (sha256 {})",
                report::local_time(f.saved),
                f.origin,
                self.policy.digest
            ),
        }
    }

    /// One line: why the configured policy is not enforced, and what is.
    fn fallback_line(&self) -> String {
        match &self.fallback {
            Some(f) => format!(
                "{}; enforcing {} until it is fixed",
                what_is_wrong(&f.broken, &f.error),
                self.describe()
            ),
            None => String::new(),
        }
    }
}

/// `policy /etc/tend is broken: web.tend:2:3: ...` for errors in the
/// policy's text; other errors (unreadable, insecure, changing) name the
/// policy themselves.
fn what_is_wrong(path: &str, error: &anyhow::Error) -> String {
    if error.downcast_ref::<diagnostic::PolicyErrors>().is_some() {
        format!("policy {path} is broken: {}", diagnostic::summary(error))
    } else {
        diagnostic::summary(error)
    }
}

/// Reads and checks the policy at `path`; when that fails, the last good
/// copy in the state dir. Fails only when neither can be had.
fn enforce(path: &std::path::Path, store: &Store, root_only: bool) -> Result<Enforced> {
    let error = match snapshot::read(&[path.to_path_buf()], root_only)
        .and_then(|s| policy::check(&s).map(|p| (s, p)))
    {
        Ok((fresh, policy)) => {
            return Ok(Enforced {
                policy,
                fresh: Some(fresh),
                fallback: None,
            })
        }
        Err(e) => e,
    };
    let copy = match snapshot::last_good(store.dir()) {
        Ok(Some(good)) => policy::check(&good.snapshot).map(|p| (good, p)),
        Ok(None) => return Err(error),
        Err(e) => Err(e),
    };
    match copy {
        Ok((good, policy)) => Ok(Enforced {
            policy,
            fresh: None,
            fallback: Some(Fallback {
                broken: path.display().to_string(),
                error,
                origin: good.origin,
                saved: good.saved,
            }),
        }),
        Err(e) => Err(error.context(format!(
            "and the last good policy cannot be used: {}",
            diagnostic::summary(&e)
        ))),
    }
}

/// A pass with a broken policy and no last good copy: says the error (once,
/// then daily, like a copy's fallback) and does nothing else.
fn broken(
    store: &Store,
    path: &std::path::Path,
    error: &anyhow::Error,
    now: i64,
    format: Format,
) -> Result<u8> {
    let mut reporter = Reporter::new(format);
    let _lock = match store
        .ensure_dir()
        .and_then(|()| state::lock(store.dir(), now))
    {
        Ok(Locking::Acquired(lock)) => lock,
        Ok(Locking::Held(_)) => return Ok(BROKEN),
        Err(_) => {
            // No state to remember the error in: say it every time.
            say_broken(&mut reporter, path, error, None);
            return Ok(BROKEN);
        }
    };
    let mut state = store.load(now).state;
    let (remembered, say) =
        PolicyError::next(state.policy_error.as_ref(), &format!("{error:#}"), now);
    if say {
        say_broken(&mut reporter, path, error, None);
    }
    state.policy_error = Some(remembered);
    store.save(&state)?;
    Ok(BROKEN)
}

/// The policy error, as one line (and its source excerpts below), with what
/// is enforced instead.
fn say_broken(
    reporter: &mut Reporter,
    path: &std::path::Path,
    error: &anyhow::Error,
    enforced: Option<&Enforced>,
) {
    let text = match enforced {
        Some(e) => format!("tend: {}", e.fallback_line()),
        None => format!(
            "tend: {}; no last good policy to fall back on, nothing is checked until it is fixed",
            what_is_wrong(&path.display().to_string(), error)
        ),
    };
    let detail = error
        .downcast_ref::<diagnostic::PolicyErrors>()
        .map(ToString::to_string);
    reporter.line(&report::Line {
        kind: "policy_broken",
        text: &text,
        detail: detail.as_deref(),
        error: true,
    });
}

/// `tend pause`: writes the pause file; no lock needed, so a hook never
/// waits for a pass.
fn pause(
    store: &Store,
    duration: u64,
    reason: Option<String>,
    now: i64,
    format: Format,
) -> Result<u8> {
    if duration == 0 || duration > MAX_PAUSE {
        bail!("a pause lasts from 1s to 24h (--for {duration}s); a forgotten pause must not disable monitoring for good");
    }
    let pause = Pause {
        since: now,
        until: now + duration as i64,
        reason: reason.filter(|r| !r.trim().is_empty()),
    };
    store.set_pause(&pause)?;
    Reporter::new(format).say(
        "paused",
        &format!(
            "tend: paused {}; restarts wait until then or 'tend resume'",
            pause.describe()
        ),
        false,
    );
    Ok(CONVERGED)
}

/// `tend resume`: removes the pause file.
fn resume(store: &Store, now: i64, format: Format) -> Result<u8> {
    let pause = store.pause().ok().flatten();
    if !store.clear_pause()? {
        println!("tend: not paused");
        return Ok(CONVERGED);
    }
    let line = match pause {
        Some(p) if p.until > now => format!(
            "tend: resumed (was paused {}); the next pass restarts what is down",
            p.describe()
        ),
        _ => "tend: resumed".to_string(),
    };
    Reporter::new(format).say("resumed", &line, false);
    Ok(CONVERGED)
}

/// The pause as `tend pause` left it (in force or ended), or the line that
/// says why the pause file is ignored.
fn read_pause(store: &Store) -> (Option<Pause>, Option<String>) {
    match store.pause() {
        Ok(p) => (p, None),
        Err(e) => (None, Some(format!("tend: {e:#}"))),
    }
}

/// Why restarts wait in this pass, if they do: a pause first (the admin's
/// own choice, never nagged about), then a busy package manager.
fn hold<'a>(pause: &'a Option<String>, busy: &'a Option<String>) -> Option<Hold<'a>> {
    pause
        .as_deref()
        .map(Hold::Paused)
        .or(busy.as_deref().map(Hold::Busy))
}

/// Sleeps a delay in [0, splay) seconds fixed for this host (FNV-1a of its
/// name), like CFEngine's splaytime.
fn splay(host: &Host, splay: u64) {
    if splay == 0 {
        return;
    }
    let hash = host.short.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    std::thread::sleep(std::time::Duration::from_secs(hash % splay));
}

fn print_classes(classes: &Classes, verbose: bool, format: Format) -> Result<()> {
    if format == Format::Json {
        let defined = classes.defined_json();
        let off: Vec<serde_json::Value> = classes
            .off()
            .map(|(name, at)| serde_json::json!({"name": name, "at": at}))
            .collect();
        let doc = serde_json::json!({"classes": defined, "off": off});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
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
    Ok(())
}

/// The services that apply to this host, and how to recognise and judge
/// them (built once per pass, used for every look at the process table).
struct Watch<'p> {
    services: Vec<&'p Service>,
    matcher: Matcher,
    owners: Vec<Owner>,
}

impl<'p> Watch<'p> {
    fn new(policy: &'p Policy, classes: &Classes) -> Result<Watch<'p>> {
        let services: Vec<&Service> = policy
            .services
            .iter()
            .filter(|s| classes.selects(s))
            .collect();
        let matcher = Matcher::new(services.iter().map(|s| Spec {
            process: s.process.as_deref(),
            exe: s.exe.as_deref(),
        }))?;
        let owners = services.iter().map(|s| Owner::of(s)).collect();
        Ok(Watch {
            services,
            matcher,
            owners,
        })
    }

    /// One read of the process table: for each service, whether it is up.
    fn look(&self) -> Result<Vec<Verdict>> {
        self.look_at(&vec![true; self.services.len()])
    }

    /// The same, where only the services `wanted` get their connections and
    /// resource reads (while restarts are verified, every 200 ms, only the
    /// restarted services need them).
    fn look_at(&self, wanted: &[bool]) -> Result<Vec<Verdict>> {
        if self.services.is_empty() {
            return Ok(Vec::new());
        }
        let processes = scan::scan()?;
        let mut verdicts: Vec<Verdict> = self
            .matcher
            .find(&processes)
            .iter()
            .zip(self.services.iter().zip(&self.owners))
            .map(|(procs, (s, owner))| check::judge(s, owner, procs, &processes))
            .collect();
        check::connect_all(&self.services, &mut verdicts, wanted);
        check::resources(&self.services, &mut verdicts, wanted);
        Ok(verdicts)
    }

    /// `cpu above`: compares each CPU sample of this look with the last
    /// pass's, and acts on a load above the limit for enough passes.
    fn cpu(&self, found: &mut [Verdict], prior: &State) {
        for (s, v) in self.services.iter().zip(found.iter_mut()) {
            let (Some(limit), Some(now)) = (&s.cpu, v.cpu) else {
                continue;
            };
            let last = prior.services.get(&s.id).and_then(|p| p.cpu.as_ref());
            let (sample, why) = check::cpu_load(limit, last, now);
            v.cpu = Some(sample);
            if let Some(why) = why {
                check::over(v, limit.action, why);
            }
        }
    }

    /// For each service found running, the path of the binary it runs when
    /// that was replaced on disk (one readlink per running service).
    fn replaced(found: &[Verdict]) -> Vec<Option<String>> {
        found
            .iter()
            .map(|f| f.running.and_then(|(pid, _)| scan::replaced(pid)))
            .collect()
    }
}

fn input<'a>(
    service: &'a Service,
    verdict: &'a Verdict,
    replaced: Option<&'a str>,
    state: &'a State,
    hold: Option<Hold<'a>>,
    now: i64,
) -> Input<'a> {
    Input {
        id: &service.id,
        name: &service.name,
        running: verdict.running.map(|(pid, start)| (pid, Some(start))),
        problem: verdict.problem.as_ref(),
        note: verdict.note.as_deref(),
        replaced,
        prior: state.services.get(&service.id),
        limits: service.limits,
        hold,
        restart_on_upgrade: service.restart_on_upgrade,
        now,
    }
}

/// Whether a restart acts on a process that runs (a failed check, an
/// upgrade): then `restart`, or `stop` and `start`; else `start` or
/// `restart`.
fn present(verdict: &Verdict, step: &Step) -> bool {
    step.upgrade || matches!(verdict.problem, Some(Problem::Failing(_)))
}

/// Every service that applies, in policy order, with what a pass would do;
/// with `verbose`, also those that do not apply and why. Runs nothing,
/// changes nothing.
fn dry_run(
    enforced: &Enforced,
    classes: &Classes,
    store: &Store,
    busy: Option<pkgmgr::Busy>,
    now: i64,
    verbose: bool,
) -> Result<u8> {
    let policy = &enforced.policy;
    match &enforced.fallback {
        None => println!("{}", enforced.describe()),
        Some(f) => {
            println!("tend: {}", enforced.fallback_line());
            if let Some(errors) = f.error.downcast_ref::<diagnostic::PolicyErrors>() {
                println!("{errors}");
            }
        }
    }
    let watch = Watch::new(policy, classes)?;
    let (services, mut found) = (&watch.services, watch.look()?);
    let replaced = Watch::replaced(&found);
    let state = store.peek();
    watch.cpu(&mut found, &state);
    let (pause, problem) = read_pause(store);
    if let Some(line) = problem {
        println!("{line}");
    }
    let pause = pause.filter(|p| now < p.until).map(|p| p.describe());
    let busy = busy.map(|b| b.to_string());
    let hold = hold(&pause, &busy);
    match hold {
        Some(Hold::Paused(why)) => println!("tend is paused {why}: restarts wait"),
        Some(Hold::Busy(why)) => println!("package manager at work: {why}: restarts wait"),
        Some(Hold::Waiting(_)) | None => {}
    }
    let up: Vec<bool> = found.iter().map(|v| v.running.is_some()).collect();
    let mut found = services.iter().enumerate().zip(found.iter().zip(&replaced));
    let mut all_up = true;
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
        let Some(((index, _), (verdict, replaced))) = found.next() else {
            continue;
        };
        let waits: Vec<&str> = dependencies(services, index)
            .filter(|&d| !up[d])
            .map(|d| services[d].name.as_str())
            .collect();
        let step = decide::decide(&input(s, verdict, replaced.as_deref(), &state, hold, now));
        let what = match (&verdict.running, &verdict.problem) {
            (Some((pid, _)), _) => {
                let mut text = format!("running (pid {pid})");
                if let Some(note) = &verdict.note {
                    text.push_str(&format!("; {note}"));
                }
                if let Some(path) = replaced {
                    text.push_str(&format!("; runs a replaced binary ({path})"));
                }
                text
            }
            (None, None) => "not running".to_string(),
            (None, Some(Problem::Absent(why))) => format!("not running ({why})"),
            (None, Some(Problem::Failing(why))) => format!("fails a check ({why})"),
        };
        let then = match (step.restart, step.state.status) {
            (true, _) if !waits.is_empty() => format!(
                "; would run once {} is up: {}",
                waits.join(" and "),
                s.plan(present(verdict, &step))
            ),
            (true, _) => format!("; would run: {}", s.plan(present(verdict, &step))),
            (false, Status::Down) => "; restart deferred".to_string(),
            (false, Status::GivenUp) => {
                format!("; given up, would not restart (run 'tend reset {}')", s.id)
            }
            (false, _) => String::new(),
        };
        println!("{} ({}): {what}{then}", s.name, s.id);
        all_up &= verdict.running.is_some();
    }
    if services.is_empty() {
        println!("no service in {} applies to this host", policy.origin);
    }
    Ok(if all_up { CONVERGED } else { DOWN })
}

/// One pass over the services that apply to this host.
fn pass(
    enforced: &Enforced,
    classes: &Classes,
    store: &Store,
    pkg_root: &std::path::Path,
    now: i64,
    stale_after: u64,
    format: Format,
) -> Result<u8> {
    let policy = &enforced.policy;
    let mut reporter = Reporter::new(format);
    reporter.set_policy(&policy.digest);
    // The lock is held until this function returns.
    let _lock = match store
        .ensure_dir()
        .and_then(|()| state::lock(store.dir(), now))
    {
        Ok(Locking::Acquired(lock)) => Some(lock),
        Ok(Locking::Held(holder)) => {
            return Ok(match holder {
                Some(h) if now - h.since > stale_after as i64 => {
                    reporter.say(
                        "lock_held",
                        &format!(
                            "tend: another pass (pid {}) has held the lock in {} since {} ({}); it may be hung",
                            h.pid,
                            store.dir().display(),
                            report::local_time(h.since),
                            report::span(now - h.since)
                        ),
                        true,
                    );
                    DOWN
                }
                _ => CONVERGED,
            });
        }
        Err(e) => {
            reporter.say(
                "lock_failed",
                &format!("tend: {e:#}; running without the lock"),
                true,
            );
            None
        }
    };
    let loaded = store.load(now);
    if let Some(notice) = &loaded.notice {
        reporter.say("state_damaged", notice, true);
    }
    let prior = loaded.state;
    let policy_error = say_policy(enforced, &prior, store, &mut reporter, now);

    // A damaged pause file is set aside, so it is said once.
    let (pause, problem) = read_pause(store);
    if let Some(line) = problem {
        reporter.say(
            "pause_damaged",
            &format!("{line}; {}", store.set_pause_aside(now)),
            true,
        );
    }
    let mut pause_ended = prior.pause_ended;
    if let Some(p) = pause.as_ref() {
        if p.until <= now && pause_ended != Some(p.since) {
            reporter.say(
                "pause_ended",
                &format!(
                    "tend: the pause {} has ended; restarts resumed",
                    p.describe()
                ),
                false,
            );
            pause_ended = Some(p.since);
        }
    }
    let pause = pause.filter(|p| now < p.until);

    let watch = Watch::new(policy, classes)?;
    let (services, mut found) = (&watch.services, watch.look()?);
    watch.cpu(&mut found, &prior);
    let replaced = Watch::replaced(&found);
    // Probed after the scan, right before deciding: the narrowest window
    // for an upgrade to start unseen.
    let busy = pkgmgr::busy(pkg_root).map(|b| b.to_string());
    let pause = pause.map(|p| p.describe());
    let hold = hold(&pause, &busy);
    let inputs: Vec<Input> = services
        .iter()
        .zip(found.iter().zip(&replaced))
        .map(|(s, (verdict, replaced))| input(s, verdict, replaced.as_deref(), &prior, hold, now))
        .collect();
    let mut steps: Vec<Step> = inputs.iter().map(decide::decide).collect();
    for (step, verdict) in steps.iter_mut().zip(&found) {
        step.state.cpu = verdict.cpu;
    }
    // Restarts are announced when their turn comes (below).
    for (s, step) in services.iter().zip(&steps).filter(|(_, s)| !s.restart) {
        step.events.iter().for_each(|e| reporter.emit(&s.id, e));
    }
    let mut next = State {
        last_run: Some(now),
        services: services
            .iter()
            .zip(&steps)
            .map(|(s, step)| (s.id.clone(), step.state.clone()))
            .collect::<BTreeMap<String, ServiceState>>(),
        pause_ended,
        policy: Some(policy.digest.clone()),
        policy_error,
    };
    let mut save_failed = false;
    let mut save = |state: &State, reporter: &mut Reporter| {
        if let Err(e) = store.save(state) {
            if !save_failed {
                reporter.say("state_unsaved", &format!("tend: {e:#}"), true);
                save_failed = true;
            }
        }
    };

    let to_restart: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].restart).collect();
    if !to_restart.is_empty() {
        // Remember the attempts before acting: a pass killed from here on
        // is known to the next one.
        save(&next, &mut reporter);
        let mut up: Vec<bool> = found.iter().map(|v| v.running.is_some()).collect();
        for wave in waves(services, &to_restart) {
            // A dependency still down: wait for it, like a deferral.
            let mut go = Vec::new();
            for i in wave {
                let waiting = dependencies(services, i).find(|&d| !up[d]);
                match waiting {
                    Some(d) => {
                        let why = format!("waits for {}, which is down", services[d].name);
                        let step = decide::decide(&Input {
                            hold: Some(Hold::Waiting(&why)),
                            ..inputs[i].clone()
                        });
                        let id = &services[i].id;
                        step.events.iter().for_each(|e| reporter.emit(id, e));
                        next.services
                            .insert(services[i].id.clone(), step.state.clone());
                        steps[i] = step;
                    }
                    None => go.push(i),
                }
            }
            for &i in &go {
                let id = &services[i].id;
                steps[i].events.iter().for_each(|e| reporter.emit(id, e));
            }
            let jobs: Vec<act::Job> = go
                .iter()
                .map(|&i| act::Job {
                    commands: services[i].commands(present(&found[i], &steps[i])),
                    timeout: services[i].timeout,
                    grace: services[i].grace,
                })
                .collect();
            // Done when the service is up and passes its checks; a restart
            // to load an upgrade, when a process runs the binary now on disk
            // (a new process, or the old one re-executed).
            let mut look = || {
                let mut wanted = vec![false; services.len()];
                go.iter().for_each(|&i| wanted[i] = true);
                let found = watch.look_at(&wanted).unwrap_or_default();
                go.iter()
                    .map(|&i| {
                        let seen = found.get(i).and_then(|v| v.running);
                        seen.filter(|&(pid, _)| !steps[i].upgrade || scan::replaced(pid).is_none())
                    })
                    .collect()
            };
            let outcomes = act::restart_all(&jobs, &mut look);
            for (&i, outcome) in go.iter().zip(&outcomes) {
                let (state, event) = decide::settle(&inputs[i], &steps[i], outcome);
                if let Some(event) = event {
                    reporter.emit(&services[i].id, &event);
                }
                up[i] = state.status == Status::Running;
                next.services.insert(services[i].id.clone(), state);
            }
        }
    }
    save(&next, &mut reporter);
    let all_up = next.services.values().all(|s| s.status == Status::Running);
    Ok(if all_up { CONVERGED } else { DOWN })
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
                std::path::Path::new(&f.broken),
                &f.error,
                Some(enforced),
            );
        }
        return Some(remembered);
    }
    if let Some(e) = &prior.policy_error {
        reporter.say(
            "policy_fixed",
            &format!(
                "tend: {} is good again (broken since {}); enforcing it",
                enforced.describe(),
                report::local_time(e.since)
            ),
            false,
        );
    }
    if prior.policy.as_deref() != Some(policy.digest.as_str()) {
        reporter.log(
            "policy",
            &format!("tend: enforcing {}", enforced.describe()),
        );
    }
    if let Some(fresh) = &enforced.fresh {
        if let Err(e) = snapshot::keep(store.dir(), fresh, now) {
            reporter.say("policy_unkept", &format!("tend: {e:#}"), true);
        }
    }
    None
}

/// The indices of the services `i` depends on that apply to this host (a
/// dependency guarded off here is no dependency here).
fn dependencies<'a>(services: &'a [&Service], i: usize) -> impl Iterator<Item = usize> + 'a {
    services[i]
        .depends
        .iter()
        .filter_map(|(id, _)| services.iter().position(|s| &s.id == id))
}

/// The services to restart, in waves: each after the dependencies it
/// restarts in the same pass (the analyzer refused cycles).
fn waves(services: &[&Service], to_restart: &[usize]) -> Vec<Vec<usize>> {
    fn level(
        i: usize,
        services: &[&Service],
        to_restart: &[usize],
        memo: &mut BTreeMap<usize, usize>,
    ) -> usize {
        if let Some(&l) = memo.get(&i) {
            return l;
        }
        let l = dependencies(services, i)
            .filter(|d| to_restart.contains(d))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|d| level(d, services, to_restart, memo) + 1)
            .max()
            .unwrap_or(0);
        memo.insert(i, l);
        l
    }
    let mut memo = BTreeMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &i in to_restart {
        let l = level(i, services, to_restart, &mut memo);
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(i);
    }
    out
}

/// What the last pass found, for every service that applies.
fn status(
    enforced: &Enforced,
    classes: &Classes,
    store: &Store,
    busy: Option<pkgmgr::Busy>,
    now: i64,
    format: Format,
) -> Result<u8> {
    let policy = &enforced.policy;
    let state = store.peek();
    let pause = store.pause().ok().flatten();
    let busy = busy.map(|b| b.to_string());
    let rows: Vec<(&Service, Option<&ServiceState>, usize)> = policy
        .services
        .iter()
        .filter(|s| classes.selects(s))
        .map(|s| {
            let st = state.services.get(&s.id);
            let recent = st.map_or(0, |st| {
                st.restarts
                    .iter()
                    .filter(|&&t| t > now - s.limits.within)
                    .count()
            });
            (s, st, recent)
        })
        .collect();
    if format == Format::Json {
        let services: Vec<serde_json::Value> = rows
            .iter()
            .map(|(s, st, recent)| {
                serde_json::json!({
                    "id": s.id,
                    "name": s.name,
                    "status": st.map_or("unknown", |st| st.status.label()),
                    "since": st.map(|st| st.since),
                    "restarts_in_window": recent,
                    "restart_limit": s.limits.restarts,
                    "window_seconds": s.limits.within,
                    "pid": st.and_then(|st| st.pid),
                    "failure": st.and_then(|st| st.failure.clone()),
                    "reason": st.and_then(|st| st.reason.clone()),
                    "note": st.and_then(|st| st.note.clone()),
                })
            })
            .collect();
        let pause = pause.map(|p| {
            serde_json::json!({
                "since": p.since,
                "until": p.until,
                "reason": p.reason,
                "active": now < p.until,
            })
        });
        let f = enforced.fallback.as_ref();
        let doc = serde_json::json!({
            "policy": {
                "path": f.map_or(&policy.origin, |f| &f.broken),
                "digest": policy.digest,
                "last_good": f.is_some(),
                "kept": f.map(|f| f.saved),
                "error": f.map(|f| diagnostic::summary(&f.error)),
            },
            "last_run": state.last_run,
            "pause": pause,
            "package_manager": busy,
            "services": services,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        match &enforced.fallback {
            None => println!("{}", enforced.describe()),
            Some(_) => println!("tend: {}", enforced.fallback_line()),
        }
        match state.last_run {
            Some(t) => println!(
                "last pass: {} ({} ago)",
                report::local_time(t),
                report::span(now - t)
            ),
            None => println!("last pass: never (state in {})", store.dir().display()),
        }
        match &pause {
            Some(p) if now < p.until => println!("paused {}: restarts wait", p.describe()),
            Some(p) => println!("pause {} has ended", p.describe()),
            None => {}
        }
        if let Some(why) = &busy {
            println!("package manager at work: {why}: restarts wait");
        }
        println!(
            "{:<16} {:<20} {:<10} {:<17} {:<9} PID",
            "SERVICE", "NAME", "STATUS", "SINCE", "RESTARTS"
        );
        for (s, st, recent) in &rows {
            println!(
                "{:<16} {:<20} {:<10} {:<17} {:<9} {}",
                s.id,
                s.name,
                st.map_or("unknown", |st| st.status.label()),
                st.map_or("-".to_string(), |st| report::local_time(st.since)),
                format!("{recent}/{}", s.limits.restarts),
                st.and_then(|st| st.pid)
                    .map_or("-".to_string(), |p| p.to_string()),
            );
            // Why, under the row: the check that failed, the last failure,
            // or what needs no action.
            if let Some(st) = st {
                for why in [&st.reason, &st.note].into_iter().flatten() {
                    println!("    {why}");
                }
                if st.status != Status::Running {
                    if let Some(failure) = &st.failure {
                        println!("    {failure}");
                    }
                }
            }
        }
    }
    Ok(
        if rows
            .iter()
            .all(|(_, st, _)| st.is_some_and(|st| st.status == Status::Running))
        {
            CONVERGED
        } else {
            DOWN
        },
    )
}

/// Forgets what is remembered of some services, under the pass lock.
fn reset(policy: &Policy, store: &Store, ids: &[String], all: bool, now: i64) -> Result<u8> {
    for id in ids {
        if !policy.services.iter().any(|s| &s.id == id) {
            bail!("no service `{id}` in {}", policy.origin);
        }
    }
    store.ensure_dir()?;
    let _lock = match state::lock(store.dir(), now)? {
        Locking::Acquired(lock) => lock,
        Locking::Held(_) => bail!(
            "a pass is running (it holds the lock in {}); try again",
            store.dir().display()
        ),
    };
    let loaded = store.load(now);
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
        state.services.remove(id);
        println!("{id}: reset; the next pass restarts it if it is down");
    }
    store.save(&state)?;
    Ok(CONVERGED)
}
