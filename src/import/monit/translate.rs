//! Turning Monit's statements into tend services: each `check process` a
//! service (its pidfile or pattern, programs, tests, restart limit, cycles
//! turned into time), everything else reported with its place and why.

use std::collections::{HashMap, HashSet};

use super::read::{tolerance_text, Clause, Item, Test};
use crate::import::{claim, id_of, literal, process_value, Draft, Import, Left};

/// Monit's own default cycle when no `set daemon` says (Debian's monitrc
/// says 120).
pub(super) const DEFAULT_CYCLE: u64 = 120;
/// How often cron runs tend, for turning cycles into passes.
pub(super) const PASS: u64 = 300;

/// What the items are in: the service being built, a check or setting
/// that is not carried over (its clauses go with it), or nothing yet.
pub(super) enum Open {
    Nothing,
    Service(usize),
    Skipped,
}

pub(super) fn convert(items: Vec<Item>, import: &mut Import) {
    let set = items.iter().find_map(|i| match i.clause {
        Clause::SetDaemon(n) if n > 0 => Some(n),
        _ => None,
    });
    let cycle = set.unwrap_or(DEFAULT_CYCLE);
    let counted = items
        .iter()
        .any(|i| matches!(i.clause, Clause::Restarts { .. } | Clause::Resource { .. }));
    match set {
        Some(n) if counted => import.notes.push(format!(
            "Monit's cycles are counted as {n} s (`set daemon {n}`); tend's passes as 5 minutes (cron's)"
        )),
        None if counted => import.notes.push(format!(
            "Monit's cycles are counted as {DEFAULT_CYCLE} s (no `set daemon` in these files; Debian's monitrc says 120); tend's passes as 5 minutes (cron's)"
        )),
        _ => {}
    }
    let (kinds, ids) = names(&items);
    let mut open = Open::Nothing;
    let mut seen: HashSet<String> = HashSet::new();
    for item in items {
        let left = |why: &str| Left::new(&item.file, item.line, &item.text, why);
        let draft = match open {
            Open::Service(k) => Some(k),
            _ => None,
        };
        match &item.clause {
            Clause::CheckProcess { name, .. } | Clause::CheckOther { name, .. }
                if !seen.insert(name.clone()) =>
            {
                import.left.push(left(&format!(
                    "a second check named `{name}`: Monit refuses the file (`Service name conflict`); tend import carries the first"
                )));
                open = Open::Skipped;
            }
            Clause::CheckProcess {
                name,
                pidfile,
                matching,
            } => {
                let from = format!(
                    "{}:{} (check process {name})",
                    item.file.display(),
                    item.line
                );
                let mut d = Draft::new(name, from, &item.file);
                d.id = ids[name].clone();
                if d.id != *name {
                    d.set("name", literal(name));
                }
                d.at = Some(format!("line {}", item.line));
                match (pidfile, matching) {
                    (Some(p), _) => d.set("pidfile", literal(p)),
                    (None, Some(m)) => {
                        let (value, note) = process_value(m, "Monit's `matching`");
                        d.set("process", value);
                        d.notes.push(note);
                    }
                    (None, None) => {
                        d.set("process", literal(name));
                        d.left.push(left("neither `pidfile` nor `matching`: the process is looked for by the check's name"));
                    }
                }
                import.drafts.push(d);
                open = Open::Service(import.drafts.len() - 1);
            }
            Clause::CheckOther { kind, .. } => {
                let more = match kind.as_str() {
                    "file" | "directory" | "fifo" => "; it notices by itself a process whose binary was replaced (see `restart_on_upgrade`); watch files with a file integrity tool",
                    _ => "; watch hosts, disks and programs with your monitoring",
                };
                import.left.push(left(&format!(
                    "a `check {kind}` is not carried over: tend keeps processes running{more}"
                )));
                open = Open::Skipped;
            }
            Clause::SetDaemon(_) => open = Open::Skipped,
            Clause::SetOther(kind) => {
                let why = match kind.as_str() {
                    "httpd" => "Monit's web interface: tend has none (`tend status` on the host, metrics for a fleet)",
                    "mailserver" | "alert" | "mail-format" => "tend says what happened on its output, which cron mails, and to syslog",
                    "log" | "logfile" => "tend logs to syslog",
                    "idfile" | "statefile" | "pidfile" | "eventqueue" => "Monit's own files: tend keeps its state in /var/lib/tend",
                    _ => "Monit's own setting: nothing to carry over",
                };
                import.left.push(left(why));
                open = Open::Skipped;
            }
            _ if matches!(open, Open::Skipped) => {}
            _ if draft.is_none() => import.left.push(left("outside any `check process`")),
            clause => {
                let d = &mut import.drafts[draft.expect("open service")];
                d.carried_from(&item.file, item.line);
                carry_clause(d, clause, &item, cycle, &kinds, &ids);
            }
        }
    }
    for d in &mut import.drafts {
        finish(d);
    }
    keep_startable(import);
}

/// `limit N restarts within W` for Monit's `N restarts within C cycles`,
/// in a window tend's passes can fill: at one restart a pass (cron's 5
/// minutes) N restarts fall within W only if W is over N passes, else tend
/// would restart a crash-looping service forever. A window widened so is
/// said.
fn limit(d: &mut Draft, n: u64, cycles: u64, cycle: u64, left: &dyn Fn(&str) -> Left) {
    let within = cycles.max(1).saturating_mul(cycle);
    let reachable = (n + 1).saturating_mul(PASS);
    if within > n.saturating_mul(PASS) {
        d.set(
            "limit",
            format!("{n} restarts within {} then give up", span(within)),
        );
        return;
    }
    d.set(
        "limit",
        format!("{n} restarts within {} then give up", span(reachable)),
    );
    d.left.push(left(&format!(
        "carried as `limit {n} restarts within {} then give up`: at one restart a pass (cron's 5 minutes) {n} restarts never fall within {} ({cycles} cycles of {cycle} s), and tend would restart a crash-looping service forever; it gives up after {n} failed restarts, about {} (Monit: about {})",
        span(reachable),
        span(within),
        span(n * PASS),
        span(n.min(cycles.max(1)) * cycle)
    )));
}

/// Whether a kept `limit N restarts within W` gives up no later than one
/// of `n` restarts.
fn fewer(kept: &str, n: u64) -> bool {
    kept.split_whitespace()
        .next()
        .and_then(|k| k.parse::<u64>().ok())
        .is_some_and(|k| k <= n)
}

/// Every check's name, and what kind it is, for `depends on`; the id of
/// each `check process`.
fn names(items: &[Item]) -> (HashMap<String, String>, HashMap<String, String>) {
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    for i in items {
        match &i.clause {
            Clause::CheckProcess { name, .. } => {
                kinds.insert(name.clone(), "process".into());
                let id = claim(&id_of(name), &mut taken);
                ids.entry(name.clone()).or_insert(id);
            }
            Clause::CheckOther { kind, name } => {
                kinds.insert(name.clone(), kind.clone());
            }
            _ => {}
        }
    }
    (kinds, ids)
}

/// A service with no way to be brought back is not one tend can keep:
/// left out, and said.
fn keep_startable(import: &mut Import) {
    let (kept, dropped): (Vec<Draft>, Vec<Draft>) = std::mem::take(&mut import.drafts)
        .into_iter()
        .partition(|d| d.has("restart") || d.has("start"));
    for d in dropped {
        import.left.push(Left {
            place: d.from.clone(),
            statement: format!("check process {}", d.id),
            why: "no `start program`: Monit can only watch it; tend needs a way to start it".into(),
        });
        import.left.extend(d.left);
    }
    import.drafts = kept;
}

/// One clause of a `check process`, carried into `d` or reported.
pub(super) fn carry_clause(
    d: &mut Draft,
    clause: &Clause,
    item: &Item,
    cycle: u64,
    kinds: &HashMap<String, String>,
    ids: &HashMap<String, String>,
) {
    let left = |why: &str| Left::new(&item.file, item.line, &item.text, why);
    match clause {
        Clause::Program {
            kind,
            command,
            run_as,
            timeout,
        } => {
            d.set(kind, literal(command));
            if *run_as {
                d.left.push(left("`as uid`: tend runs commands as its own user (root); use `runuser -u USER -- CMD`"));
            }
            if let Some(t) = timeout {
                d.set("timeout", format!("{t}s"));
            }
        }
        Clause::Restarts { n, cycles, action } => match action.what.as_str() {
            "timeout" | "unmonitor" => {
                let within = cycles.max(&1).saturating_mul(cycle);
                if *n == 0 || *n > 10_000 || within > 30 * 86_400 {
                    d.left.push(left("a restart limit tend cannot keep (at most 10,000 restarts within 30 days)"));
                } else if let Some(kept) = d.value("limit").filter(|l| fewer(l, *n)) {
                    d.left.push(left(&format!("a second restart limit: tend keeps one, the one that gives up sooner (`limit {kept}`)")));
                } else {
                    if let Some(earlier) = d.value("limit") {
                        d.left.push(left(&format!("a second restart limit: tend keeps one, the one that gives up sooner, this one (the earlier `limit {earlier}` is dropped)")));
                    }
                    limit(d, *n, *cycles, cycle, &left);
                }
            }
            _ => d.left.push(left(&format!(
                "then {}: once the budget is spent tend backs off (tries again at growing intervals) and says so",
                action.what
            ))),
        },
        Clause::Failed(t) => failed(d, t, cycle, &left),
        Clause::Resource { .. } => resource(d, clause, cycle, &left),
        Clause::NotExist(action) => {
            if action.what != "restart" {
                d.left.push(left(&format!(
                    "then {}: tend restarts a service that is not running",
                    action.what
                )));
            }
        }
        Clause::Depends(names) => {
            let mut on: Vec<String> = Vec::new();
            for name in names {
                match (kinds.get(name).map(String::as_str), ids.get(name)) {
                    (Some("process"), Some(id)) => on.push(id.clone()),
                    (Some(kind), _) => d.left.push(left(&format!(
                        "`{name}` is a `check {kind}`, not carried over"
                    ))),
                    (None, _) => d.left.push(left(&format!("no check is called `{name}`"))),
                }
            }
            if !on.is_empty() {
                let mut all: Vec<String> = d
                    .attrs
                    .iter()
                    .find(|(k, _)| k == "depends on")
                    .map(|(_, v)| v.split(", ").map(str::to_string).collect())
                    .unwrap_or_default();
                all.extend(on);
                d.set("depends on", all.join(", "));
            }
        }
        Clause::Group => d.left.push(left(
            "tend has no service groups (`monit -g`); a guard or a policy file per role plays their part",
        )),
        Clause::Mode(mode) if mode == "active" => {}
        Clause::Mode(mode) => d.left.push(left(&format!(
            "mode {mode}: tend restarts what is down (a service it should only watch does not belong in its policy)"
        ))),
        Clause::Every => d.left.push(left("tend checks at every pass; cron sets how often")),
        _ if item.text.to_ascii_lowercase().starts_with("alert") => d.left.push(left(
            "a check's own alert recipient: tend says what happened on its output, which cron mails, and to syslog",
        )),
        _ => d.left.push(left("not a test tend import knows")),
    }
}

/// `if totalmem|cpu > N ... then restart|alert`: tend's `memory above` or
/// `cpu above`.
fn resource(d: &mut Draft, clause: &Clause, cycle: u64, left: &dyn Fn(&str) -> Left) {
    let Clause::Resource {
        measure,
        operator,
        number,
        unit,
        tolerance,
        action,
    } = clause
    else {
        return;
    };
    let then = match action.what.as_str() {
        "restart" => "restart",
        "alert" => "report",
        other => {
            d.left
                .push(left(&format!("then {other}: tend restarts or reports")));
            return;
        }
    };
    if !matches!(operator.as_str(), ">" | ">=" | "gt" | "greater") {
        d.left
            .push(left("tend's limits are upper bounds (`above`)"));
        return;
    }
    let percent = unit.as_deref() == Some("%");
    let key = if measure.contains("cpu") {
        "cpu"
    } else {
        "memory"
    };
    if d.has(key) && (key == "cpu" || measure.contains("mem")) {
        d.left.push(left(&format!(
            "a second `{key}` limit: tend takes one per service"
        )));
        return;
    }
    match measure.split_whitespace().next().unwrap_or("") {
        m if m.starts_with("totalmem") || m.starts_with("mem") => {
            if percent {
                d.left.push(left(
                    "a share of the host's memory: tend's `memory above` takes a size",
                ));
                return;
            }
            let (unit, bytes) = match unit.as_deref() {
                Some("kb" | "kilobytes") => ("KB", 1u64 << 10),
                Some("gb" | "gigabytes") => ("GB", 1 << 30),
                Some("tb") => ("TB", 1 << 40),
                Some("b" | "byte" | "bytes") => ("B", 1),
                _ => ("MB", 1 << 20),
            };
            let n = number.split('.').next().unwrap_or("0");
            let fits = n.parse::<u64>().ok().and_then(|n| n.checked_mul(bytes));
            if unit == "TB" || fits.is_none_or(|b| b == 0) {
                d.left
                    .push(left("a memory limit tend cannot keep (up to gigabytes)"));
                return;
            }
            d.set("memory", format!("above {n}{unit} then {then}"));
            if m.starts_with("total") {
                d.left.push(left("carried as `memory above` of the service's process; Monit's `totalmem` counts its children too"));
            }
            if let Some(t) = tolerance {
                d.left.push(left(&format!(
                    "`{}`: tend acts on the first pass above the limit",
                    tolerance_text(*t)
                )));
            }
        }
        m if m.ends_with("cpu") && percent => {
            // Cycles become passes (cron's five minutes): at least one.
            let cycles = match tolerance {
                Some((n, Some(_))) | Some((n, None)) => *n,
                None => 1,
            };
            let runs = cycles.saturating_mul(cycle).div_ceil(PASS).clamp(1, 1000);
            let runs = match runs {
                1 => String::new(),
                n => format!(" for {n} runs"),
            };
            d.set("cpu", format!("above {number}%{runs} then {then}"));
            if let Some((n, Some(m))) = tolerance {
                d.left.push(left(&format!(
                    "`for {n} times within {m} cycles`: tend counts passes in a row"
                )));
            }
            if m == "totalcpu" {
                d.left.push(left("carried as `cpu above` of the service's process; Monit's `totalcpu` counts its children too"));
            }
        }
        m => d.left.push(left(&format!("tend has no `{m}` test"))),
    }
}

/// `if failed [host H] port N ...` or `if failed unixsocket PATH ...`.
pub(super) fn failed(d: &mut Draft, t: &Test, cycle: u64, left: &dyn Fn(&str) -> Left) {
    if t.action.what != "restart" {
        d.left.push(left(&format!(
            "then {}: a failed check makes tend restart the service; not carried over",
            t.action.what
        )));
        return;
    }
    // `for N cycles`: N failing cycles in a row, as passes (cron's five
    // minutes; at least one); `for N times within M cycles` has no
    // counterpart.
    match t.tolerance {
        Some((n, None)) => {
            let passes = n.saturating_mul(cycle).div_ceil(PASS).clamp(1, 100);
            if passes > 1 {
                d.set("tolerate", format!("{passes} passes"));
            }
            if n.saturating_mul(cycle) != passes * PASS {
                d.left.push(left(&format!(
                    "carried as `tolerate {passes} pass{}`: {n} cycles of {cycle} s in a row, counted in tend's five-minute passes",
                    if passes == 1 { "" } else { "es" }
                )));
            }
        }
        Some(tol) => d.left.push(left(&format!(
            "`{}`: tend counts failing passes in a row (`tolerate N passes`), not N of M",
            tolerance_text(tol)
        ))),
        None => {}
    }
    // Monit's `retry N`: N tries within the cycle; tend's, within a pass
    // (for each check of the service, 1 s apart).
    if let Some(n) = t.retry.filter(|&n| n > 1) {
        let kept = d
            .value("retry")
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(1);
        let tries = n.clamp(kept, 10);
        d.set("retry", tries.to_string());
        if n > 10 {
            d.left.push(left(&format!(
                "carried as `retry 10`: tend gives a check at most 10 tries a pass (Monit: {n})"
            )));
        } else if kept == 1 {
            d.notes.push(
                "tend's `retry` gives each check of the service its tries, 1 s apart, within a pass".into(),
            );
        }
    }
    if t.action.otherwise {
        d.left.push(left(
            "`else if succeeded`: tend says when a service is back by itself",
        ));
    }
    if let Some(path) = &t.socket {
        return unix(d, t, path, left);
    }
    let kind = t.kind.as_deref().unwrap_or("tcp").to_ascii_lowercase();
    if kind == "udp" {
        d.left.push(left("a UDP port: tend's port check is TCP"));
        return;
    }
    let host = match t.host.as_deref() {
        None | Some("localhost") => "127.0.0.1".to_string(),
        Some(h) if h.parse::<std::net::IpAddr>().is_ok() => h.to_string(),
        Some(h) => {
            d.left.push(left(&format!(
                "host {h}: tend connects to addresses only (it never asks DNS)"
            )));
            return;
        }
    };
    let port = t.port.clone().unwrap_or_default();
    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
        d.left.push(left(&format!("{port} is not a TCP port")));
        return;
    }
    let tls = matches!(kind.as_str(), "tcpssl" | "ssl" | "tls");
    let web = matches!(t.protocol.as_deref(), Some("http" | "https"));
    // Every `port` of a service is on its one `host`.
    let other_host = d.value("host").map_or(host != "127.0.0.1", |h| h != host);
    if !web && d.has("port") && other_host {
        d.left.push(left(&format!(
            "a second port on another host ({host}): tend connects every `port` of a service to its one `host`"
        )));
        return;
    }
    if web {
        return http(d, t, &host, &port, tls, left);
    }
    if tls {
        d.left.push(left("carried as `port`: tend checks that the port accepts connections, not the TLS handshake on it"));
    }
    let mut check = port.clone();
    match t.protocol.as_deref() {
        None | Some("default" | "generic") => {}
        Some(p) => match speaks(p).filter(|_| !tls) {
            Some(talk) => check.push_str(talk),
            None => d.left.push(left(&format!(
                "protocol {p}: tend checks that the port accepts connections"
            ))),
        },
    }
    d.add("port", check);
    if host != "127.0.0.1" {
        d.set("host", host);
    }
    if let Some(s) = t.timeout {
        d.set("connect_timeout", format!("{s}s"));
    }
}

/// `if failed unixsocket PATH`: tend's `unix`.
fn unix(d: &mut Draft, t: &Test, path: &str, left: &dyn Fn(&str) -> Left) {
    d.add("unix", literal(path));
    if let Some(p) = &t.protocol {
        d.left.push(left(&format!(
            "protocol {p}: tend checks that the socket accepts connections"
        )));
    }
}

/// `if failed port N protocol http(s)`: tend's `http`, over TLS when the
/// protocol is https or the port's type is `tcpssl` (whose certificate
/// Monit does not verify unless told, nor does `insecure`).
fn http(d: &mut Draft, t: &Test, host: &str, port: &str, tls: bool, left: &dyn Fn(&str) -> Left) {
    let https = tls || t.protocol.as_deref() == Some("https");
    let scheme = if https { "https" } else { "http" };
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = t.request.clone().unwrap_or_else(|| "/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let mut check = literal(&format!("{scheme}://{bracketed}:{port}{path}"));
    match &t.status {
        Some((op, n)) if op == "=" || op == "==" || op.starts_with("eq") => {
            check.push_str(&format!(" status {n}"));
        }
        Some((op, n)) => d.left.push(left(&format!(
            "status {op} {n}: tend checks one status, or any below 400"
        ))),
        None => {}
    }
    if let Some(c) = &t.content {
        check.push_str(&format!(" content {}", literal(c)));
    }
    if let Some(s) = t.timeout {
        check.push_str(&format!(" timeout {s}s"));
    }
    if let Some(h) = &t.hostheader {
        check.push_str(&format!(" host {}", literal(h)));
    }
    if tls {
        check.push_str(" insecure");
        d.notes.push("`type tcpssl`: HTTPS with any certificate (`insecure`), as Monit checks it unless its `ssl` options say to verify; drop `insecure` to verify against this host's trusted authorities".into());
    } else if https {
        d.left.push(left("https: checked against this host's trusted authorities (add `insecure` for a self-signed certificate)"));
    }
    d.add("http", check);
}

/// What a line protocol's server says first, or answers to a word: the
/// `send`/`expect` that checks it speaks.
pub(super) fn speaks(protocol: &str) -> Option<&'static str> {
    Some(match protocol {
        "ssh" => r#" expect "^SSH-""#,
        "smtp" | "ftp" => r#" expect "^220""#,
        "pop" => r#" expect "^\+OK""#,
        "imap" => r#" expect "^\* OK""#,
        "redis" => r#" send "PING\r\n" expect "^\+PONG""#,
        "memcache" => r#" send "version\r\n" expect "^VERSION ""#,
        _ => return None,
    })
}

/// What a draft needs to be a valid tend service: a check of a running
/// process needs `restart`, or `stop` and `start`.
pub(super) fn finish(d: &mut Draft) {
    if d.has("restart") || d.has("stop") || !d.has("start") {
        return;
    }
    let checks = ["port", "unix", "http", "memory", "cpu"];
    let (dropped, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut d.attrs)
        .into_iter()
        .partition(|(k, v)| checks.contains(&k.as_str()) && !v.ends_with("then report"));
    d.attrs = kept;
    for (k, v) in dropped {
        d.left.push(Left {
            place: d.from.clone(),
            statement: format!("{k} {v}"),
            why:
                "no `stop program` or `restart program` to act on a process that runs but fails it"
                    .into(),
        });
    }
}

/// `600` -> `10m`
pub(super) fn span(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
