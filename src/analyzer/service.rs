//! One service block: each attribute read as its type, the attributes
//! that need each other checked together, and the [`Service`] built with
//! the policy's defaults under it.

use std::path::PathBuf;

use super::probes;
use super::registry;
use super::{all_attributes, known_once, Defaults, Errors};
use crate::diagnostic::{Diagnostic, Span};
use crate::file::quote;
use crate::parser::{Attribute, Expr};
use crate::policy::{
    Action, Certificate, Command, Connect, CpuLimit, MemoryLimit, Port, Service,
    DEFAULT_CONNECT_TIMEOUT, LOCALHOST,
};
use crate::suggest::closest;

/// What a service block says, attribute by attribute (each read by its
/// registry entry), before the attributes that need each other are
/// checked together.
pub(crate) struct Draft {
    pub(crate) name: Option<String>,
    pub(crate) process: Option<String>,
    pub(crate) anywhere: bool,
    pub(crate) exe: Option<String>,
    pub(crate) pidfile: Option<PathBuf>,
    pub(crate) log: Option<PathBuf>,
    pub(crate) user: Option<String>,
    pub(crate) unit: Option<(String, Span)>,
    pub(crate) count: (usize, Option<usize>),
    pub(crate) depends: Vec<(String, Span)>,
    pub(crate) memory: Option<MemoryLimit>,
    pub(crate) cpu: Option<CpuLimit>,
    /// Each `port` line.
    pub(crate) ports: Vec<probes::PortCheck>,
    pub(crate) certificate: Option<(probes::CertificateCheck, Attribute)>,
    pub(crate) host: Option<std::net::IpAddr>,
    pub(crate) unix: Vec<PathBuf>,
    pub(crate) connect_timeout: std::time::Duration,
    pub(crate) retry: (u32, std::time::Duration),
    pub(crate) tolerate: u32,
    pub(crate) start_period: std::time::Duration,
    pub(crate) hold_during: Option<Expr>,
    /// `restart`, `start`, `stop`, as written.
    pub(crate) commands: [Option<String>; 3],
    pub(crate) shell: bool,
    /// The settings `defaults` may give, as this service has them.
    pub(crate) settings: Defaults,
}

impl Draft {
    fn new(defaults: &Defaults) -> Draft {
        Draft {
            name: None,
            process: None,
            anywhere: false,
            exe: None,
            pidfile: None,
            log: None,
            user: None,
            unit: None,
            count: (1, None),
            depends: Vec::new(),
            memory: None,
            cpu: None,
            ports: Vec::new(),
            certificate: None,
            host: None,
            unix: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: (1, std::time::Duration::from_secs(1)),
            tolerate: 1,
            start_period: std::time::Duration::ZERO,
            hold_during: None,
            commands: [None, None, None],
            shell: false,
            settings: *defaults,
        }
    }
}

pub(super) fn service(
    id: &str,
    span: Span,
    attributes: &[Attribute],
    guard: &Option<Expr>,
    defaults: &Defaults,
    errors: &mut Errors,
) -> Option<Service> {
    let before = errors.len();
    let (mut d, good) = read(id, attributes, defaults, errors);
    let http: Vec<crate::policy::Http> = good
        .iter()
        .filter(|a| a.key.text == "http")
        .filter_map(|a| {
            probes::http(a, d.connect_timeout)
                .map_err(|e| errors.push(e))
                .ok()
        })
        .collect();
    let certificate = d
        .certificate
        .take()
        .and_then(|c| certificate_of(c, &http, d.connect_timeout, errors));
    let has = |key: &str| good.iter().any(|a| a.key.text == key);
    // A unit's commands are systemd's unless the policy says otherwise.
    let systemd = d
        .unit
        .as_ref()
        .filter(|_| !has("restart") && !has("start"))
        .map(|(unit, at)| systemd_commands(unit, *at));
    together(
        id,
        span,
        &d,
        &good,
        certificate.as_ref(),
        systemd.is_some(),
        errors,
    );
    let [restart, start, stop] = commands(&mut d, attributes, errors);
    if errors.len() > before {
        return None;
    }
    let (reset, restart, stop) = match systemd {
        Some(s) => (Some(s.reset), Some(s.restart), stop.or(Some(s.stop))),
        None => (None, restart, stop),
    };
    let settings = d.settings;
    Some(Service {
        id: id.to_string(),
        name: d.name.unwrap_or_else(|| id.to_string()),
        process: d.process,
        anywhere: d.anywhere,
        exe: d.exe,
        pidfile: d.pidfile,
        log: d.log,
        unit: d.unit.map(|(u, _)| u),
        when_stopped: settings.when_stopped,
        reset,
        user: d.user,
        count: d.count,
        connect: Connect {
            ports: d
                .ports
                .into_iter()
                .map(|(port, send, expect)| Port {
                    addr: std::net::SocketAddr::new(d.host.unwrap_or(LOCALHOST), port),
                    send,
                    expect,
                })
                .collect(),
            unix: d.unix,
            timeout: d.connect_timeout,
        },
        http,
        certificate,
        retry: d.retry,
        tolerate: d.tolerate,
        start_period: d.start_period,
        hold_during: d.hold_during,
        restart,
        start,
        stop,
        depends: d.depends,
        memory: d.memory,
        cpu: d.cpu,
        timeout: settings.timeout,
        grace: settings.grace,
        settle: settings.settle,
        limits: settings.limits,
        restart_on_upgrade: settings.restart_on_upgrade,
        guard: guard.clone(),
        span,
    })
}

/// Each attribute of the block read by its registry entry (an unknown or
/// repeated one is an error): the draft, and the attributes read.
fn read<'a>(
    id: &str,
    attributes: &'a [Attribute],
    defaults: &Defaults,
    errors: &mut Errors,
) -> (Draft, Vec<&'a Attribute>) {
    let known = all_attributes();
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
    let mut draft = Draft::new(defaults);
    for a in &good {
        let read = registry::find(&a.key.text).expect("a known attribute").read;
        if let Err(e) = read(a, &mut draft) {
            errors.push(e);
        }
    }
    (draft, good)
}

/// `certificate`: where it is read (given, or the first `https` check's
/// place, asked for with that check's server name).
fn certificate_of(
    ((target, days, action), a): (probes::CertificateCheck, Attribute),
    http: &[crate::policy::Http],
    timeout: std::time::Duration,
    errors: &mut Errors,
) -> Option<Certificate> {
    // Taken from an https check, it asks for the same site (the same
    // server name) as that check.
    let at = target.map(|(h, p)| (h.clone(), p, h)).or_else(|| {
        http.iter()
            .find(|h| h.tls)
            .map(|h| (h.host.clone(), h.port, h.host_header.clone()))
    });
    match at {
        Some((host, port, name)) => Some(Certificate {
            host,
            port,
            name,
            days,
            action,
            timeout,
        }),
        None => {
            errors.push(Diagnostic::error(
                a.key.span,
                "`certificate` needs \"HOST:PORT\", or an `http \"https://...\"` check to take it from",
            ));
            None
        }
    }
}

/// What the attributes of a block need of each other: a way to recognise
/// the service and to start it, a way to act on a process that fails a
/// check, no pidfile beside a unit, no host without a port.
fn together(
    id: &str,
    span: Span,
    d: &Draft,
    good: &[&Attribute],
    certificate: Option<&Certificate>,
    systemd: bool,
    errors: &mut Errors,
) {
    let has = |key: &str| good.iter().any(|a| a.key.text == key);
    let at = |key: &str| good.iter().find(|a| a.key.text == key);
    if !has("process") && !has("exe") && !has("pidfile") && !has("unit") {
        errors.push(Diagnostic::error(
            span,
            format!("service `{id}` has no `process` (or `exe`, `pidfile`, `unit`)"),
        ));
    }
    // (A `unit` that was refused has said so already.)
    if !has("restart") && !has("start") && !has("unit") {
        errors.push(Diagnostic::error(
            span,
            format!("service `{id}` has no `restart` (or `start`)"),
        ));
    }
    // A check of a running process needs a way to act on one.
    let restarts_on = |key: &str| match key {
        "memory" => d
            .memory
            .is_some_and(|m: MemoryLimit| m.action == Action::Restart),
        "cpu" => d.cpu.is_some_and(|c: CpuLimit| c.action == Action::Restart),
        "certificate" => certificate.is_some_and(|c| c.action == Action::Restart),
        _ => true,
    };
    for key in ["port", "unix", "http", "certificate", "memory", "cpu"] {
        if let Some(a) = at(key) {
            if !has("restart") && !has("stop") && !systemd && restarts_on(key) {
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
    if let (true, Some(a)) = (has("unit"), at("pidfile")) {
        errors.push(Diagnostic::error(
            a.key.span,
            "`pidfile` cannot go with `unit`: systemd names the unit's main process",
        ));
    }
    if let (Some(a), false) = (at("host"), has("port")) {
        errors.push(Diagnostic::error(a.key.span, "`host` goes with `port`"));
    }
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

/// The `restart`, `start` and `stop` commands, each parsed (an error
/// said and None if it cannot be).
fn commands(d: &mut Draft, attributes: &[Attribute], errors: &mut Errors) -> [Option<Command>; 3] {
    [("restart", 0), ("start", 1), ("stop", 2)].map(|(key, i)| {
        match d.commands[i]
            .take()
            .map(|text| command(key, text, d.shell, attributes))
        {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            None => None,
        }
    })
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
