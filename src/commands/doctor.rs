//! `tend doctor`: whether this host is really watched. One line a check,
//! what is fine and what is not: a pass scheduled (once), the last pass
//! recent, reports that reach someone, each channel answering, the policy
//! valid, the state directory safe, syslog, the metrics fresh, the package
//! manager's hook. Exit 0 when all is fine, 1 otherwise; right after an
//! install, and in a fleet's CI.
//!
//! The files it looks at (cron, timers, mail agent, hooks) are read under
//! `--pkg-root` (`/` by default), as the package manager locks are.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::{print_json, Context};
use crate::cli::Format;
use crate::clock;
use crate::exit::Exit;
use crate::file;
use crate::notify;
use crate::policy::Channel;

/// A pass older than this is not "the last five minutes" any more.
const STALE: i64 = 15 * 60;

/// One check and what it found.
#[derive(Serialize)]
struct Found {
    check: &'static str,
    ok: bool,
    text: String,
}

pub(crate) fn run(ctx: &Context) -> Result<Exit> {
    let root = &ctx.pkg_root;
    let mut found = Vec::new();
    let policy = ctx.read_policy();
    let channels = policy.as_ref().map_or(0, |p| p.channels.len());
    found.push(match &policy {
        Ok(p) => Found {
            check: "policy",
            ok: true,
            text: format!(
                "{} is valid ({} service{}, {channels} channel{})",
                p.origin,
                p.services.len(),
                plural(p.services.len()),
                plural(channels)
            ),
        },
        Err(e) => Found {
            check: "policy",
            ok: false,
            text: format!("{e:#}"),
        },
    });
    let schedule = schedule(root);
    found.push(schedule.found());
    found.push(last_pass(ctx));
    found.push(mail(root, &schedule, channels));
    if let Ok(p) = &policy {
        found.extend(answered(ctx, &p.channels));
    }
    found.push(match ctx.store.refused() {
        Some(why) => Found {
            check: "state",
            ok: false,
            text: format!("the state directory is refused: {why}"),
        },
        None => Found {
            check: "state",
            ok: true,
            text: format!("the state directory {} is safe", ctx.store.dir().display()),
        },
    });
    found.push(syslog());
    let mut metrics: Vec<PathBuf> = ctx.metrics.iter().cloned().collect();
    metrics.extend(schedule.metrics.iter().cloned());
    metrics.sort();
    metrics.dedup();
    found.extend(metrics.iter().map(|m| fresh(ctx, m)));
    if let Some(hook) = hook(root) {
        found.push(hook);
    }
    let all_ok = found.iter().all(|f| f.ok);
    if ctx.format == Format::Json {
        print_json(&serde_json::json!({ "ok": all_ok, "checks": found }))?;
    } else {
        for f in &found {
            let mark = if f.ok { "ok" } else { "PROBLEM" };
            println!("{mark:<7} {:<8} {}", f.check, f.text);
        }
    }
    Ok(if all_ok { Exit::Converged } else { Exit::Down })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `root` joined with an absolute path.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// A small file others cannot make tend hang on: read as tend reads any
/// file (no FIFO, no device, a size cap), with what it is, or nothing.
fn small(path: &Path) -> Option<(String, std::fs::Metadata)> {
    file::read_meta(path, 1 << 20, file::Links::Follow)
        .ok()
        .map(|(b, meta)| (String::from_utf8_lossy(&b).into_owned(), meta))
}

/// Why cron would not run a file of its (None: it would): as root, one
/// not owned by root or writable by others; in /etc/cron.d, a name with
/// other characters than letters, digits, `_` and `-` (run-parts' rule:
/// `tend.cron` is skipped).
fn ignored_by_cron(path: &Path, meta: &std::fs::Metadata, in_cron_d: bool) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if in_cron_d
        && !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Some("its name has characters cron skips".into());
    }
    if nix::unistd::geteuid().is_root() && meta.uid() != 0 {
        return Some(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "writable by others (mode {:04o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// How passes are scheduled: cron lines that run tend, and an enabled
/// timer.
struct Schedule {
    /// Each cron file with a line that runs tend, and its MAILTO.
    cron: Vec<(PathBuf, Option<String>)>,
    /// Files with such a line that cron would not run, and why.
    ignored: Vec<(PathBuf, String)>,
    /// A cron line steps aside where tend.timer is enabled (the shipped
    /// line's `systemctl -q is-enabled tend.timer ||`).
    steps_aside: bool,
    timer: bool,
    /// The files passes write metrics to (`--metrics` in a cron line or in
    /// tend.service's ExecStart).
    metrics: Vec<PathBuf>,
}

/// A package manager's copy beside a config file it did not overwrite
/// (`tend.dpkg-dist`, `tend.rpmnew`...): cron skips it, as the admin
/// expects; not a schedule, and not a problem.
fn package_leftover(path: &Path) -> bool {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    [
        ".dpkg-dist",
        ".dpkg-old",
        ".dpkg-new",
        ".dpkg-bak",
        ".dpkg-tmp",
        ".rpmnew",
        ".rpmsave",
        ".rpmorig",
        ".ucf-dist",
        ".ucf-old",
        ".ucf-new",
        "~",
    ]
    .iter()
    .any(|suffix| name.ends_with(suffix))
}

/// The path after `--metrics` (or in `--metrics=PATH`) in a command line.
fn metrics_in(line: &str) -> Option<PathBuf> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "--metrics" {
            return words.next().map(PathBuf::from);
        }
        if let Some(path) = w.strip_prefix("--metrics=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn schedule(root: &Path) -> Schedule {
    let mut cron = Vec::new();
    let mut ignored = Vec::new();
    let mut steps_aside = false;
    let mut metrics = Vec::new();
    let mut files: Vec<(PathBuf, bool)> = std::fs::read_dir(under(root, "/etc/cron.d"))
        .map(|d| d.flatten().map(|e| (e.path(), true)).collect())
        .unwrap_or_default();
    files.sort();
    files.push((under(root, "/etc/crontab"), false));
    files.push((under(root, "/var/spool/cron/crontabs/root"), false));
    for (path, in_cron_d) in files {
        // What cannot be read as a small regular file, cron does not run
        // either.
        let Some((text, meta)) = small(&path) else {
            continue;
        };
        let mut mailto = None;
        let mut runs = false;
        let mut aside = false;
        let mut writes = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') {
                continue;
            }
            if let Some(to) = line.strip_prefix("MAILTO=") {
                mailto = Some(to.trim_matches('"').to_string());
            } else if line
                .split_whitespace()
                .any(|w| w == "tend" || w.ends_with("/tend"))
            {
                runs = true;
                aside |= line.contains("is-enabled tend.timer");
                writes.extend(metrics_in(line));
            }
        }
        if !runs || package_leftover(&path) {
            continue;
        }
        // What a file says counts only if cron runs it.
        match ignored_by_cron(&path, &meta, in_cron_d) {
            Some(why) => ignored.push((path, why)),
            None => {
                cron.push((path, mailto));
                steps_aside |= aside;
                metrics.extend(writes);
            }
        }
    }
    let timer = ["/etc/systemd/system/timers.target.wants/tend.timer"]
        .iter()
        .any(|p| under(root, p).exists());
    if timer {
        // The unit a timer starts: the admin's copy, its drop-ins, the
        // package's.
        let mut units: Vec<PathBuf> =
            std::fs::read_dir(under(root, "/etc/systemd/system/tend.service.d"))
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
        units.sort();
        for unit in [
            "/etc/systemd/system/tend.service",
            "/usr/lib/systemd/system/tend.service",
        ] {
            units.push(under(root, unit));
        }
        for unit in units {
            if let Some((text, _)) = small(&unit) {
                (text.lines())
                    .filter_map(|l| l.trim().strip_prefix("ExecStart="))
                    .for_each(|l| metrics.extend(metrics_in(l)));
            }
        }
    }
    Schedule {
        cron,
        ignored,
        steps_aside,
        timer,
        metrics,
    }
}

impl Schedule {
    fn found(&self) -> Found {
        let (ok, text) = match (self.cron.as_slice(), self.timer) {
            ([], false) => (
                false,
                "no pass is scheduled: no cron entry runs tend and no tend.timer is enabled; install examples/cron.d-tend as /etc/cron.d/tend".to_string(),
            ),
            ([(path, _)], false) => (true, format!("passes are run by cron ({})", path.display())),
            ([], true) => (true, "passes are run by tend.timer".to_string()),
            ([(path, _)], true) if self.steps_aside => (
                true,
                format!(
                    "passes are run by tend.timer ({} steps aside for it)",
                    path.display()
                ),
            ),
            (_, true) => (
                false,
                "passes are run by both cron and tend.timer: keep one".to_string(),
            ),
            (many, false) => (
                false,
                format!(
                    "{} cron entries run tend ({}): keep one",
                    many.len(),
                    many.iter()
                        .map(|(p, _)| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        // A cron file meant to run tend that cron skips is a problem
        // whatever else runs passes.
        let skipped: Vec<String> = (self.ignored.iter())
            .map(|(p, why)| format!("cron skips {}, which runs tend: {why}", p.display()))
            .collect();
        let (ok, text) = match skipped.is_empty() {
            true => (ok, text),
            false => (false, format!("{text}; {}", skipped.join("; "))),
        };
        Found {
            check: "schedule",
            ok,
            text,
        }
    }
}

fn last_pass(ctx: &Context) -> Found {
    let state = ctx.store.peek();
    let (ok, text) = match state.last_run {
        None => (
            false,
            format!(
                "no pass has run yet (state in {})",
                ctx.store.dir().display()
            ),
        ),
        Some(t) if ctx.now - t > STALE => (
            false,
            format!(
                "the last pass ran {} ago ({}): is the schedule running?",
                clock::span(ctx.now - t),
                clock::local_time(t)
            ),
        ),
        Some(t) => (
            true,
            format!(
                "the last pass ran {} ago ({})",
                clock::span(ctx.now - t),
                clock::local_time(t)
            ),
        ),
    };
    Found {
        check: "last",
        ok,
        text,
    }
}

/// Whether reports reach someone: cron's mail needs a MAILTO and a mail
/// agent; channels of the policy reach people without one.
fn mail(root: &Path, schedule: &Schedule, channels: usize) -> Found {
    let agent = under(root, "/usr/sbin/sendmail").exists();
    let mailto = schedule.cron.first().and_then(|(_, to)| to.clone());
    // Where the timer runs the passes, cron's mail is not what reports.
    let by_cron = !(schedule.cron.is_empty() || schedule.timer && schedule.steps_aside);
    let (ok, text) = match (!by_cron, agent, mailto.as_deref(), channels) {
        (true, _, _, 0) if schedule.timer => (
            false,
            "passes run by tend.timer print to the journal only, and the policy has no channel: nobody is told of a problem".to_string(),
        ),
        (true, _, _, n) if n > 0 => (true, format!("reports go through the policy's {n} channel{}", plural(n))),
        (true, _, _, _) => (true, "no schedule, no reports (see schedule)".to_string()),
        (false, false, _, 0) => (
            false,
            "cron mails reports, but there is no mail agent (/usr/sbin/sendmail) and the policy has no channel: reports are thrown away".to_string(),
        ),
        (false, _, Some(""), 0) => (
            false,
            "cron's MAILTO is empty and the policy has no channel: reports are thrown away".to_string(),
        ),
        (false, true, to, n) => (
            true,
            format!(
                "cron mails reports to {}{}",
                to.unwrap_or("the crontab's owner"),
                if n > 0 { format!(", and the policy has {n} channel{}", plural(n)) } else { String::new() }
            ),
        ),
        (false, false, _, n) => (
            true,
            format!("no mail agent, but reports go through the policy's {n} channel{}", plural(n)),
        ),
    };
    Found {
        check: "reports",
        ok,
        text,
    }
}

/// Whether each channel answered its last delivery, from what passes
/// remember of it (the outbox in the state directory): doctor sends
/// nothing itself; `tend notify test` does.
fn answered(ctx: &Context, channels: &[Channel]) -> Vec<Found> {
    let (outbox, damaged) = notify::load(ctx.store.dir());
    let mut found: Vec<Found> = damaged
        .map(|why| Found {
            check: "channel",
            ok: false,
            text: why,
        })
        .into_iter()
        .collect();
    for c in channels {
        let waiting = outbox.entries.iter().filter(|e| e.channel == c.id).count();
        let kept = match waiting {
            0 => String::new(),
            n => format!("; {n} event{} waiting", plural(n)),
        };
        let (ok, text) = match outbox.channels.get(&c.id) {
            Some(m) if m.failures > 0 => {
                let why = (m.said.as_deref())
                    .map(|s| s.split_once(": ").map_or(s, |(_, why)| why))
                    .map_or(String::new(), |why| format!(" ({why})"));
                let last = match m.failures {
                    1 => "its last delivery".to_string(),
                    n => format!("its last {n} deliveries"),
                };
                (
                    false,
                    format!(
                        "channel {}: {last} failed{why}{kept}; `tend notify test` tries it now",
                        c.id
                    ),
                )
            }
            Some(_) => (
                true,
                format!("channel {} answered its last delivery{kept}", c.id),
            ),
            None => (
                true,
                format!(
                    "channel {}: nothing sent yet{kept}; `tend notify test` tries it",
                    c.id
                ),
            ),
        };
        found.push(Found {
            check: "channel",
            ok,
            text,
        });
    }
    found
}

/// Whether a metrics file passes write is fresh: node_exporter serves
/// whatever is there, however old.
fn fresh(ctx: &Context, path: &Path) -> Found {
    let at = under(&ctx.pkg_root, &path.to_string_lossy());
    let meta = std::fs::symlink_metadata(&at).ok();
    let modified = (meta.as_ref())
        .filter(|m| m.is_file())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let (ok, text) = match modified {
        None if meta.as_ref().is_some_and(|m| m.file_type().is_symlink()) => (
            false,
            format!(
                "no metrics file at {} yet (a symbolic link is there: passes replace it)",
                path.display()
            ),
        ),
        // A FIFO, a directory, a device: passes write over none of them.
        None if meta.is_some() => (
            false,
            format!(
                "{} is not a regular file: passes cannot write the metrics there",
                path.display()
            ),
        ),
        None => (
            false,
            format!("no metrics file at {} yet: passes write it", path.display()),
        ),
        Some(t) if ctx.now - t > STALE => (
            false,
            format!(
                "the metrics in {} are {} old: node_exporter serves them as if current",
                path.display(),
                clock::span(ctx.now - t)
            ),
        ),
        Some(t) => (
            true,
            format!(
                "the metrics in {} were written {} ago",
                path.display(),
                clock::span(ctx.now - t)
            ),
        ),
    };
    Found {
        check: "metrics",
        ok,
        text,
    }
}

fn syslog() -> Found {
    let path = std::env::var_os("TEND_SYSLOG_SOCKET")
        .map_or_else(|| PathBuf::from("/dev/log"), PathBuf::from);
    let (ok, text) =
        match std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.connect(&path)) {
            Ok(()) => (true, format!("syslog answers at {}", path.display())),
            Err(e) => (
                // Not an error for tend (events are on its output), but said.
                true,
                format!(
                    "syslog does not answer at {} ({}): events are on tend's output only",
                    path.display(),
                    crate::probe::plain(&e)
                ),
            ),
        };
    Found {
        check: "syslog",
        ok,
        text,
    }
}

/// The package manager's hook, when this host has that package manager.
fn hook(root: &Path) -> Option<Found> {
    let managers: [(&str, &str, &str); 2] = [
        (
            "/usr/bin/apt-get",
            "/etc/apt/apt.conf.d",
            "examples/apt/80tend",
        ),
        ("/usr/bin/dnf", "/etc/dnf/plugins", "examples/dnf"),
    ];
    let (bin, dir, example) = managers
        .into_iter()
        .find(|(bin, _, _)| under(root, bin).exists())?;
    let installed = std::fs::read_dir(under(root, dir))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("tend"))
        })
        .unwrap_or(false);
    let name = Path::new(bin)
        .file_name()
        .map_or(bin.into(), |n| n.to_string_lossy());
    Some(Found {
        check: "hook",
        ok: installed,
        text: match installed {
            true => format!("{name}'s hook is installed in {dir}: upgrades pause tend"),
            false => format!(
                "{name} is here but tend's hook is not in {dir}: an upgrade's restarts may be fought; install {example}"
            ),
        },
    })
}
