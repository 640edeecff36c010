//! One service block: each attribute read as its type, the attributes
//! that need each other checked together, and the [`Service`] built with
//! the policy's defaults under it.

use std::path::PathBuf;

use super::attributes::{
    absolute_path, at_least_one_second, check_regex, count_range, cpu_limit, depends_on, duration,
    ip_address, memory_limit, one_string, unit_name, user_name, yes_no,
};
use super::probes;
use super::{all_attributes, known_once, setting, Defaults, Errors};
use crate::diagnostic::{Diagnostic, Span};
use crate::file::quote;
use crate::parser::{Attribute, Expr};
use crate::policy::{
    Action, Certificate, Command, Connect, CpuLimit, MemoryLimit, Service, DEFAULT_CONNECT_TIMEOUT,
    LOCALHOST,
};
use crate::suggest::closest;

pub(super) fn service(
    id: &str,
    span: Span,
    attributes: &[Attribute],
    guard: &Option<Expr>,
    defaults: &Defaults,
    errors: &mut Errors,
) -> Option<Service> {
    let before = errors.len();
    let mut name = None;
    let mut process = None;
    let mut exe = None;
    let mut pidfile = None;
    let mut user = None;
    let mut unit = None;
    let mut count = (1, None);
    let mut depends = Vec::new();
    let mut memory = None;
    let mut cpu = None;
    let mut port = None;
    let mut send_expect = (None, None);
    let mut certificate = None;
    let mut host = None;
    let mut unix = None;
    let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut commands: [Option<String>; 3] = [None, None, None];
    let mut shell = false;
    let mut settings = *defaults;
    let known = all_attributes();
    // The name is quoted short: a 1 MB name must not make a 1 MB mail.
    let unknown = |key: &str| match (key.len() <= 64).then(|| closest(key, &known)).flatten() {
        Some(near) => format!(
            "unknown attribute `{}`; did you mean `{near}`?",
            quote(key, 60)
        ),
        None => format!(
            "unknown attribute `{}`; the attributes are listed in docs/language.md",
            quote(key, 60)
        ),
    };
    let good = known_once(
        attributes,
        &known,
        unknown,
        &format!("service `{id}`"),
        errors,
    );
    for a in &good {
        let key = a.key.text.as_str();
        let result = match key {
            "name" => one_string(a).map(|s| name = Some(s)),
            "process" => one_string(a).and_then(|s| check_regex(&s, a).map(|()| process = Some(s))),
            "exe" => absolute_path(a).map(|p| exe = Some(p)),
            "pidfile" => absolute_path(a).map(|p| pidfile = Some(PathBuf::from(p))),
            "user" => user_name(a).map(|u| user = Some(u)),
            "unit" => unit_name(a).map(|u| unit = Some((u, a.values[0].span))),
            "count" => count_range(a).map(|c| count = c),
            "port" => probes::port(a).map(|(p, send, expect)| {
                port = Some(p);
                send_expect = (send, expect);
            }),
            "certificate" => probes::certificate(a).map(|c| certificate = Some((c, a))),
            "http" => Ok(()), // once `connect_timeout` is known
            "host" => ip_address(a).map(|h| host = Some(h)),
            "unix" => absolute_path(a).map(|p| unix = Some(PathBuf::from(p))),
            "connect_timeout" => duration(a)
                .and_then(|d| at_least_one_second(d, a))
                .map(|d| connect_timeout = d),
            "restart" => one_string(a).map(|s| commands[0] = Some(s)),
            "start" => one_string(a).map(|s| commands[1] = Some(s)),
            "stop" => one_string(a).map(|s| commands[2] = Some(s)),
            "depends" => depends_on(a).map(|d| depends = d),
            "memory" => memory_limit(a).map(|m| memory = Some(m)),
            "cpu" => cpu_limit(a).map(|c| cpu = Some(c)),
            "shell" => yes_no(a).map(|b| shell = b),
            _ => setting(a, &mut settings),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    let http = good.iter().find(|a| a.key.text == "http").and_then(|a| {
        probes::http(a, connect_timeout)
            .map_err(|e| errors.push(e))
            .ok()
    });
    let certificate = certificate.and_then(|((target, days, action), a)| {
        // Taken from an https check, it asks for the same site (the same
        // server name) as that check.
        let at = target.map(|(h, p)| (h.clone(), p, h)).or_else(|| {
            http.as_ref()
                .filter(|h| h.tls)
                .map(|h| (h.host.clone(), h.port, h.host_header.clone()))
        });
        match at {
            Some((host, port, name)) => Some(Certificate {
                host,
                port,
                name,
                days,
                action,
                timeout: connect_timeout,
            }),
            None => {
                errors.push(Diagnostic::error(
                    a.key.span,
                    "`certificate` needs \"HOST:PORT\", or an `http \"https://...\"` check to take it from",
                ));
                None
            }
        }
    });
    let has = |key: &str| good.iter().any(|a| a.key.text == key);
    if !has("process") && !has("exe") && !has("pidfile") && !has("unit") {
        errors.push(Diagnostic::error(
            span,
            format!("service `{id}` has no `process` (or `exe`, `pidfile`, `unit`)"),
        ));
    }
    // A unit's commands are systemd's unless the policy says otherwise.
    let systemd = unit
        .as_ref()
        .filter(|_| !has("restart") && !has("start"))
        .map(|(unit, at)| systemd_commands(unit, *at));
    // (A `unit` that was refused has said so already.)
    if !has("restart") && !has("start") && !has("unit") {
        errors.push(Diagnostic::error(
            span,
            format!("service `{id}` has no `restart` (or `start`)"),
        ));
    }
    // A check of a running process needs a way to act on one.
    let restarts_on = |key: &str| match key {
        "memory" => memory.is_some_and(|m: MemoryLimit| m.action == Action::Restart),
        "cpu" => cpu.is_some_and(|c: CpuLimit| c.action == Action::Restart),
        "certificate" => certificate
            .as_ref()
            .is_some_and(|c: &Certificate| c.action == Action::Restart),
        _ => true,
    };
    for key in ["port", "unix", "http", "certificate", "memory", "cpu"] {
        if let Some(a) = good.iter().find(|a| a.key.text == key) {
            if !has("restart") && !has("stop") && systemd.is_none() && restarts_on(key) {
                errors.push(Diagnostic::error(
                    a.key.span,
                    format!("`{key}` needs `restart`, or `stop` and `start`, to act on a process that runs but fails a check"),
                ));
            }
        }
    }
    // systemd names a unit's main process; a pidfile beside it would be a
    // second, silently ignored answer. (`process` and `exe` are kept: the
    // main process must match them too.)
    if let (true, Some(a)) = (has("unit"), good.iter().find(|a| a.key.text == "pidfile")) {
        errors.push(Diagnostic::error(
            a.key.span,
            "`pidfile` cannot go with `unit`: systemd names the unit's main process",
        ));
    }
    if let Some(a) = good.iter().find(|a| a.key.text == "host") {
        if !has("port") {
            errors.push(Diagnostic::error(a.key.span, "`host` goes with `port`"));
        }
    }
    let [restart, start, stop] = [("restart", 0), ("start", 1), ("stop", 2)].map(|(key, i)| {
        match commands[i]
            .take()
            .map(|text| command(key, text, shell, attributes))
        {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            None => None,
        }
    });
    if errors.len() > before {
        return None;
    }
    let (reset, restart, stop) = match systemd {
        Some(d) => (Some(d.reset), Some(d.restart), stop.or(Some(d.stop))),
        None => (None, restart, stop),
    };
    Some(Service {
        id: id.to_string(),
        name: name.unwrap_or_else(|| id.to_string()),
        process,
        exe,
        pidfile,
        unit: unit.map(|(u, _)| u),
        when_stopped: settings.when_stopped,
        reset,
        user,
        count,
        connect: Connect {
            tcp: port.map(|p| std::net::SocketAddr::new(host.unwrap_or(LOCALHOST), p)),
            unix,
            timeout: connect_timeout,
            send: send_expect.0,
            expect: send_expect.1,
        },
        http,
        certificate,
        restart,
        start,
        stop,
        depends,
        memory,
        cpu,
        timeout: settings.timeout,
        grace: settings.grace,
        settle: settings.settle,
        limits: settings.limits,
        restart_on_upgrade: settings.restart_on_upgrade,
        guard: guard.clone(),
        span,
    })
}

/// The commands of a unit whose policy gives none.
struct SystemdCommands {
    reset: Command,
    restart: Command,
    stop: Command,
}

fn systemd_commands(unit: &str, at: Span) -> SystemdCommands {
    let systemctl = |verb: &str| Command {
        text: format!("systemctl {verb} {unit}"),
        argv: vec!["systemctl".into(), verb.into(), unit.to_string()],
        shell: false,
        span: at,
    };
    SystemdCommands {
        // A unit that is not failed (or no longer loaded) has nothing to
        // reset: that is no reason not to start it.
        reset: Command {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("systemctl reset-failed -- '{unit}' 2>/dev/null || true"),
            ],
            ..systemctl("reset-failed")
        },
        restart: systemctl("restart"),
        stop: systemctl("stop"),
    }
}

fn command(
    key: &str,
    text: String,
    shell: bool,
    attributes: &[Attribute],
) -> Result<Command, Diagnostic> {
    let at = attributes
        .iter()
        .find(|a| a.key.text == key)
        .map(|a| a.values[0].span)
        .expect("the command was seen");
    let argv = if shell {
        vec!["/bin/sh".to_string(), "-c".to_string(), text.clone()]
    } else {
        shell_words::split(&text).map_err(|_| {
            Diagnostic::error(
                at,
                "unbalanced quotes in command (or set `shell yes` to run it with /bin/sh)",
            )
        })?
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(Diagnostic::error(at, "empty command"));
    }
    Ok(Command {
        text,
        argv,
        shell,
        span: at,
    })
}
