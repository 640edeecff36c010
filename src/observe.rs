//! Observe: which of the services that apply are up, from one read of the
//! process table.
//!
//! A [`Watch`] is built once per pass from the services the host's classes
//! select: one matcher for all of them, each `user` looked up once, each
//! dependency resolved to an index. Every look (the pass's, and the looks
//! that verify restarts) reads the process table once and judges every
//! service from it.

use std::collections::HashMap;

use anyhow::Result;

use crate::act;
use crate::check::{self, Owner, Verdict};
use crate::matcher::{Matcher, Spec};
use crate::policy::Service;
use crate::probe::Checked;
use crate::scan::{self, Running};
use crate::state::State;
use crate::systemd;

/// The services that apply to this host, and how to recognise and judge
/// them.
pub(crate) struct Watch<'p> {
    pub(crate) services: Vec<&'p Service>,
    matcher: Matcher,
    owners: Vec<Owner>,
    /// For each service, the services it depends on that apply here (a
    /// dependency guarded off here is no dependency here).
    depends: Vec<Vec<usize>>,
    /// Restart commands a killed pass left running: never a service.
    commands: Vec<u32>,
    /// What a look reads beyond command lines.
    wants: scan::Wants,
}

/// Whether the pids that pidfiles and units name are all a look needs:
/// every service has one, and none counts its processes (`count`), which
/// takes the whole table. A `process` or `exe` beside it is checked on the
/// named process itself. `TEND_FULL_SCAN=1` reads the whole table anyway
/// (the tests compare both).
fn pinned_only(services: &[&Service]) -> bool {
    std::env::var_os("TEND_FULL_SCAN").is_none()
        && !services.is_empty()
        && services
            .iter()
            .all(|s| (s.pidfile.is_some() || s.unit.is_some()) && s.count == (1, None))
}

impl<'p> Watch<'p> {
    pub(crate) fn new(services: Vec<&'p Service>, commands: Vec<u32>) -> Result<Watch<'p>> {
        let matcher = Matcher::new(services.iter().map(|s| Spec {
            process: s.process.as_deref(),
            anywhere: s.anywhere,
            exe: s.exe.as_deref(),
        }))?;
        let owners = services.iter().map(|s| Owner::of(s)).collect();
        let index: HashMap<&str, usize> = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let depends = services
            .iter()
            .map(|s| {
                s.depends
                    .iter()
                    .filter_map(|(id, _)| index.get(id.as_str()).copied())
                    .collect()
            })
            .collect();
        let wants = scan::Wants {
            exe: services.iter().any(|s| s.exe.is_some()),
            uid: services.iter().any(|s| s.user.is_some()),
            pinned_only: pinned_only(&services),
        };
        Ok(Watch {
            services,
            matcher,
            owners,
            depends,
            commands,
            wants,
        })
    }

    /// For each service, the indices of those it depends on.
    pub(crate) fn dependency_graph(&self) -> &[Vec<usize>] {
        &self.depends
    }

    /// The indices of the services that service `i` depends on.
    pub(crate) fn dependencies(&self, i: usize) -> &[usize] {
        &self.depends[i]
    }

    /// One read of the process table: for each service, whether it is up.
    /// Each service judged in one pipeline: its process (pidfile, unit,
    /// matches), the checks that speak to it, its memory, and its CPU load
    /// since the last pass (`prior`'s sample).
    pub(crate) fn look(&self, prior: &State) -> Result<Vec<Verdict>> {
        let failed: Vec<u32> = (self.services.iter())
            .map(|s| {
                prior
                    .services
                    .get(&s.id)
                    .map_or(0, |p| p.carried.failed_passes)
            })
            .collect();
        let mut found = self.look_at(&vec![true; self.services.len()], Some(&failed))?;
        self.cpu(&mut found, prior);
        Ok(found)
    }

    /// The same, where only the services `wanted` get their connections and
    /// resource reads (while restarts are verified, every 200 ms, only the
    /// restarted services need them).
    fn look_at(&self, wanted: &[bool], failed: Option<&[u32]>) -> Result<Vec<Verdict>> {
        if self.services.is_empty() {
            return Ok(Vec::new());
        }
        // Pidfiles and units first: the processes they name are held with
        // the matches; systemd is asked once for every unit.
        let units = self.units();
        let named: Vec<Named> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| match (&s.pidfile, units.get(&i)) {
                (_, Some(seen)) => Named::Unit(seen.clone()),
                (Some(path), None) => Named::Pid(
                    format!("pidfile {}", path.display()),
                    check::read_pidfile(path),
                ),
                (None, None) => Named::Nothing,
            })
            .collect();
        let pinned: Vec<u32> = named
            .iter()
            .filter_map(|n| match n {
                Named::Pid(_, Ok(pid)) | Named::Unit(Ok(systemd::Seen::Active(pid))) => Some(*pid),
                _ => None,
            })
            .collect();
        let processes = scan::scan(&self.commands, self.wants, &pinned, |p| {
            self.matcher.matches(p)
        })?;
        let mut verdicts: Vec<Verdict> = self
            .matcher
            .find(&processes)
            .iter()
            .zip(self.services.iter().zip(&self.owners))
            .zip(&named)
            .map(|((procs, (s, owner)), named)| {
                let unit = s.unit.as_deref().unwrap_or_default();
                match named {
                    Named::Pid(label, read) => {
                        check::judge(s, owner, Some((label, read)), procs, &processes)
                    }
                    Named::Nothing => check::judge(s, owner, None, procs, &processes),
                    // Not known is not down: wait, as for a unit systemd
                    // is at work on (said only past `defer_limit`).
                    Named::Unit(Err(why)) => {
                        let why = format!("systemd could not be asked about {unit}: {why}");
                        check::held(why.clone(), check::Held::Systemd(why))
                    }
                    Named::Unit(Ok(seen)) => unit_verdict(s, seen, |read| {
                        check::judge(s, owner, read, procs, &processes)
                    }),
                }
            })
            .collect();
        check::connect_all(&self.services, &mut verdicts, wanted, failed);
        check::resources(&self.services, &mut verdicts, wanted, failed);
        Ok(verdicts)
    }

    /// What systemd says of the units of the services, by service index
    /// (one `systemctl show` for all; each unit's Err when it cannot say).
    fn units(&self) -> HashMap<usize, Result<systemd::Seen, systemd::Unasked>> {
        let with: Vec<(usize, &str)> = self
            .services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.unit.as_deref().map(|u| (i, u)))
            .collect();
        if with.is_empty() {
            return HashMap::new();
        }
        let names: Vec<&str> = with.iter().map(|(_, u)| *u).collect();
        with.iter()
            .map(|(i, _)| *i)
            .zip(systemd::show_each(&names))
            .collect()
    }

    /// Verifies restarts: for each service of `restarted`, the process that
    /// is it now, if it is up and passes its checks. A restart to load an
    /// upgrade (`upgrade[i]`) counts only once a process runs the binary now
    /// on disk (a new process, or the old one re-executed). With it, what
    /// its checks found.
    pub(crate) fn verify(
        &self,
        restarted: &[usize],
        upgrade: &[bool],
    ) -> Vec<(act::Sight, Vec<Checked>)> {
        let mut wanted = vec![false; self.services.len()];
        restarted.iter().for_each(|&i| wanted[i] = true);
        let mut found = self.look_at(&wanted, None).unwrap_or_default();
        restarted
            .iter()
            .map(|&i| {
                let Some(v) = found.get_mut(i) else {
                    return (act::Sight::default(), Vec::new());
                };
                let up = v.running().filter(|r| {
                    !upgrade[i] || r.pid().is_none_or(|pid| scan::replaced(pid).is_none())
                });
                let failing = match v.problem() {
                    Some(check::Problem::Failing(why)) if up.is_none() => Some(why.clone()),
                    _ => None,
                };
                // A unit that failed again after its restart: done.
                let ended = match v.problem() {
                    Some(check::Problem::Absent(why)) if v.unit_failed => Some(why.clone()),
                    _ => None,
                };
                let sight = act::Sight { up, failing, ended };
                (sight, std::mem::take(&mut v.checks))
            })
            .collect()
    }

    /// `cpu above`: compares each CPU sample of this look with the last
    /// pass's, and acts on a load above the limit for enough passes.
    fn cpu(&self, found: &mut [Verdict], prior: &State) {
        for (s, v) in self.services.iter().zip(found.iter_mut()) {
            let (Some(limit), Some(now)) = (&s.cpu, v.cpu) else {
                continue;
            };
            let last = prior
                .services
                .get(&s.id)
                .and_then(|p| p.carried.cpu.as_ref());
            let (sample, why) = check::cpu_load(limit, last, now);
            v.cpu = Some(sample);
            if let Some(why) = why {
                check::over(v, limit.action, why);
            }
        }
    }

    /// For each service found running, the path of the binary it runs when
    /// that was replaced on disk (one readlink per running service).
    pub(crate) fn replaced(found: &[Verdict]) -> Vec<Option<String>> {
        found
            .iter()
            .map(|f| f.running().and_then(Running::pid).and_then(scan::replaced))
            .collect()
    }
}

/// Where a service's process is named, if anywhere.
enum Named {
    Pid(String, Result<u32, String>),
    Unit(Result<systemd::Seen, systemd::Unasked>),
    Nothing,
}

/// A unit service's verdict from what systemd said: active, its main
/// process judged as a pidfile's (with `process` it must match too);
/// systemd at work, a wait; failed, down with systemd's reason; stopped
/// cleanly, what `when stopped` says.
fn unit_verdict(
    s: &Service,
    seen: &systemd::Seen,
    judge: impl FnOnce(Option<(&str, &Result<u32, String>)>) -> Verdict,
) -> Verdict {
    use crate::policy::WhenStopped;
    let unit = s.unit.as_deref().unwrap_or_default();
    let held = |why: &str, held: check::Held| check::held(why.to_string(), held);
    match seen {
        // Active with no main process (a oneshot that remains).
        systemd::Seen::Active(0) if s.process.is_none() && s.exe.is_none() => {
            Verdict::up(Running::NoProcess)
        }
        systemd::Seen::Active(0) => judge(None),
        systemd::Seen::Active(pid) => judge(Some((&format!("{unit} main pid"), &Ok(*pid)))),
        systemd::Seen::Working(why) => held(why, check::Held::Systemd(why.clone())),
        systemd::Seen::Failed(why) => check::Verdict {
            unit_failed: true,
            ..check::absent(why.clone())
        },
        // A mask is an admin's "never run": left so, said once (unless
        // `when stopped leave`).
        systemd::Seen::Masked(why) => held(
            why,
            check::Held::Stopped {
                why: why.clone(),
                say: s.when_stopped != WhenStopped::Leave,
            },
        ),
        systemd::Seen::Stopped(why) => match s.when_stopped {
            WhenStopped::Restart => check::absent(why.clone()),
            WhenStopped::Report => held(
                why,
                check::Held::Stopped {
                    why: why.clone(),
                    say: true,
                },
            ),
            WhenStopped::Leave => held(
                why,
                check::Held::Stopped {
                    why: why.clone(),
                    say: false,
                },
            ),
        },
    }
}
