//! The attributes of a service, each declared once: its name, how its
//! value is written, its default and what it means. The analyzer's lists of
//! known attributes come from here, and docs/language.md's table is checked
//! against it row by row (a test), so the language and its reference cannot
//! drift apart.

use std::path::PathBuf;

use super::attributes::{
    absolute_path, at_least_one_second, count_range, cpu_limit, depends_on, duration, hold_during,
    ip_address, memory_limit, one_string, pattern, retry, tolerate, unit_name, user_name, yes_no,
};
use super::probes;
use super::service::Draft;
use super::setting;
use crate::diagnostic::Diagnostic;
use crate::parser::Attribute;

/// Where an attribute may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Only in a service block.
    Service,
    /// In a service, or in `defaults` for every service.
    Defaults,
}

/// One attribute of the language.
#[derive(Debug)]
pub(crate) struct Attr {
    /// The key the parser reads (`depends`, `when`).
    pub(crate) key: &'static str,
    /// How it is written (`depends on`, `when stopped`).
    pub(crate) written: &'static str,
    /// Its value, its default and what it means, as the reference says.
    pub(crate) value: &'static str,
    pub(crate) default: &'static str,
    pub(crate) meaning: &'static str,
    pub(crate) scope: Scope,
    /// Whether a block may give it more than once (each one more check).
    pub(crate) many: bool,
    /// Reads its value into the service being read (the attributes that
    /// need each other are checked together afterwards).
    pub(crate) read: Reader,
}

/// Whether the attribute `key` may be given more than once.
pub(crate) fn many(key: &str) -> bool {
    find(key).is_some_and(|a| a.many)
}

/// An attribute's reader.
pub(crate) type Reader = fn(&Attribute, &mut Draft) -> Result<(), Diagnostic>;

impl Attr {
    /// Its row in docs/language.md's table of attributes.
    #[cfg(test)]
    pub(crate) fn doc_row(&self) -> String {
        let cell = |s: &str| {
            if s.is_empty() {
                " ".to_string()
            } else {
                format!(" {s} ")
            }
        };
        format!(
            "| `{}` |{}|{}|{}|",
            self.written,
            cell(self.value),
            cell(self.default),
            cell(self.meaning)
        )
    }
}

/// Every attribute, in the order the reference lists them.
pub(crate) const ATTRIBUTES: &[Attr] = &[
    Attr {
        key: "name",
        written: "name",
        value: "string",
        default: "the id",
        meaning: "what reports call the service",
        scope: Scope::Service,
        many: false,
        read: |a, d| one_string(a).map(|s| d.name = Some(s)),
    },
    Attr {
        key: "process",
        written: "process",
        value: "string (regular expression) [`anywhere`]",
        default: "one of `process`, `exe`, `pidfile`, `unit`",
        meaning: "how to recognise the service's processes by command line: whole words, or `anywhere` in it (below)",
        scope: Scope::Service,
        many: false,
        read: |a, d| {
            let (pattern, anywhere) = pattern(a)?;
            d.process = Some(pattern);
            d.anywhere = anywhere;
            Ok(())
        },
    },
    Attr {
        key: "exe",
        written: "exe",
        value: "string (absolute path)",
        default: "",
        meaning: "only processes running exactly this executable",
        scope: Scope::Service,
        many: false,
        read: |a, d| absolute_path(a).map(|p| d.exe = Some(p)),
    },
    Attr {
        key: "pidfile",
        written: "pidfile",
        value: "string (absolute path)",
        default: "",
        meaning: "the service is the live process whose pid the file holds",
        scope: Scope::Service,
        many: false,
        read: |a, d| absolute_path(a).map(|p| d.pidfile = Some(PathBuf::from(p))),
    },
    Attr {
        key: "log",
        written: "log",
        value: "string (absolute path)",
        default: "a `unit`'s journal",
        meaning: "the service's own log: its last lines go with a report that it died or failed to start",
        scope: Scope::Service,
        many: false,
        read: |a, d| absolute_path(a).map(|p| d.log = Some(PathBuf::from(p))),
    },
    Attr {
        key: "unit",
        written: "unit",
        value: "systemd unit name",
        default: "",
        meaning: "the unit is the service: its state says whether it is up, its main process is the service's process",
        scope: Scope::Service,
        many: false,
        read: |a, d| unit_name(a).map(|u| d.unit = Some((u, a.values[0].span))),
    },
    Attr {
        key: "user",
        written: "user",
        value: "user name or uid",
        default: "any",
        meaning: "only processes of this owner count",
        scope: Scope::Service,
        many: false,
        read: |a, d| user_name(a).map(|u| d.user = Some(u)),
    },
    Attr {
        key: "count",
        written: "count",
        value: "`N`, `N..M` or `N..`",
        default: "`1..`",
        meaning: "how many matching processes must run",
        scope: Scope::Service,
        many: false,
        read: |a, d| count_range(a).map(|c| d.count = c),
    },
    Attr {
        key: "port",
        written: "port",
        value: "`N [send TEXT] [expect RE]`",
        default: "",
        meaning: "a TCP port that must accept connections (on `host`), and answer TEXT with something matching RE; several `port` lines are several checks",
        scope: Scope::Service,
        many: true,
        read: |a, d| probes::port(a).map(|check| d.ports.push(check)),
    },
    Attr {
        key: "host",
        written: "host",
        value: "IP address",
        default: "`127.0.0.1`",
        meaning: "where `port` is connected to (never a name: tend never asks DNS)",
        scope: Scope::Service,
        many: false,
        read: |a, d| ip_address(a).map(|h| d.host = Some(h)),
    },
    Attr {
        key: "unix",
        written: "unix",
        value: "string (absolute path)",
        default: "",
        meaning: "a UNIX socket that must accept connections; several `unix` lines are several checks",
        scope: Scope::Service,
        many: true,
        read: |a, d| absolute_path(a).map(|p| d.unix.push(PathBuf::from(p))),
    },
    Attr {
        key: "retry",
        written: "retry",
        value: "`N [every DURATION]`",
        default: "`1`",
        meaning: "how many tries a failing `port`, `unix`, `http` or `certificate` check gets within a pass before it counts, `every` apart (default 1s)",
        scope: Scope::Service,
        many: false,
        read: |a, d| retry(a).map(|r| d.retry = r),
    },
    Attr {
        key: "tolerate",
        written: "tolerate",
        value: "`N passes`",
        default: "`1 pass`",
        meaning: "how many passes in a row a `port`, `unix`, `http` or `certificate` check, or a `memory` limit that restarts, may fail before the service is restarted (Monit's `for N cycles`)",
        scope: Scope::Service,
        many: false,
        read: |a, d| tolerate(a).map(|n| d.tolerate = n),
    },
    Attr {
        key: "start_period",
        written: "start_period",
        value: "duration",
        default: "`0`",
        meaning: "how long a process that just started (restarted by tend, or seen new) may fail its checks before a failure counts; a restart waits this long (at least `grace`) for them to pass",
        scope: Scope::Service,
        many: false,
        read: |a, d| duration(a).map(|t| d.start_period = t),
    },
    Attr {
        key: "connect_timeout",
        written: "connect_timeout",
        value: "duration",
        default: "`5s`",
        meaning: "how long a `port` or `unix` connection (and its answer) may take",
        scope: Scope::Service,
        many: false,
        read: |a, d| {
            duration(a)
                .and_then(|t| at_least_one_second(t, a))
                .map(|t| d.connect_timeout = t)
        },
    },
    Attr {
        key: "http",
        written: "http",
        value: "`\"URL\" [status N] [content \"RE\"] [timeout D] [host \"NAME\"] [insecure]`",
        default: "",
        meaning: "a GET that must answer (below 400, or N; a body matching RE); several `http` lines are several checks",
        scope: Scope::Service,
        many: true,
        // Read once `connect_timeout` is known.
        read: |_, _| Ok(()),
    },
    Attr {
        key: "certificate",
        written: "certificate",
        value: "`[\"HOST:PORT\"] valid for N days [then report\\|restart]`",
        default: "report",
        meaning: "the TLS certificate there (or of the `https` URL) must not expire within N days",
        scope: Scope::Service,
        many: false,
        read: |a, d| probes::certificate(a).map(|c| d.certificate = Some((c, a.clone()))),
    },
    Attr {
        key: "memory",
        written: "memory",
        value: "`above SIZE [then restart\\|report]`",
        default: "",
        meaning: "resident memory of the service's process above SIZE (`500MB`, `2GB`)",
        scope: Scope::Service,
        many: false,
        read: |a, d| memory_limit(a).map(|m| d.memory = Some(m)),
    },
    Attr {
        key: "cpu",
        written: "cpu",
        value: "`above PERCENT [for N runs] [then restart\\|report]`",
        default: "",
        meaning: "CPU load of the service's process between passes above PERCENT for N passes in a row",
        scope: Scope::Service,
        many: false,
        read: |a, d| cpu_limit(a).map(|c| d.cpu = Some(c)),
    },
    Attr {
        key: "restart",
        written: "restart",
        value: "string (command)",
        default: "`restart` or `start`",
        meaning: "brings the service back; also used when a running process fails a check",
        scope: Scope::Service,
        many: false,
        read: |a, d| one_string(a).map(|s| d.commands[0] = Some(s)),
    },
    Attr {
        key: "start",
        written: "start",
        value: "string (command)",
        default: "",
        meaning: "run instead of `restart` when no process runs",
        scope: Scope::Service,
        many: false,
        read: |a, d| one_string(a).map(|s| d.commands[1] = Some(s)),
    },
    Attr {
        key: "stop",
        written: "stop",
        value: "string (command)",
        default: "",
        meaning: "with `start`, replaces `restart` for a process that runs but fails a check",
        scope: Scope::Service,
        many: false,
        read: |a, d| one_string(a).map(|s| d.commands[2] = Some(s)),
    },
    Attr {
        key: "depends",
        written: "depends on",
        value: "`ID, ID ...`",
        default: "",
        meaning: "services that must be up before this one is restarted",
        scope: Scope::Service,
        many: false,
        read: |a, d| depends_on(a).map(|v| d.depends = v),
    },
    Attr {
        key: "shell",
        written: "shell",
        value: "`yes` / `no`",
        default: "`no`",
        meaning: "run the commands with `/bin/sh -c`",
        scope: Scope::Service,
        many: false,
        read: |a, d| yes_no(a).map(|b| d.shell = b),
    },
    Attr {
        key: "timeout",
        written: "timeout",
        value: "duration",
        default: "`60s`",
        meaning: "how long each command may run before it is killed",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "grace",
        written: "grace",
        value: "duration",
        default: "`10s`",
        meaning: "how long to wait, after the commands succeed, for the service to be up",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "settle",
        written: "settle",
        value: "duration",
        default: "`2s`",
        meaning: "how long a restarted service's main process must then stay up for the restart to count (`0`: seen once is enough)",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "limit",
        written: "limit",
        value: "`N restarts within DURATION`, then `then back off` or `then give up`",
        default: "`5 restarts within 1h then back off`",
        meaning: "the restart budget; when spent, tend backs off (tries again at growing intervals, see `backoff`) or, with `then give up`, stops until `tend reset` (see [lifecycle.md](lifecycle.md))",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "backoff",
        written: "backoff",
        value: "duration, then optionally `up to DURATION`",
        default: "`10m up to 6h`",
        meaning: "once the budget is spent, the first wait before tend tries again, doubled at each try up to the longest; a service that then stays up this first wait is forgiven (its budget whole again)",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "remind",
        written: "remind",
        value: "duration, or `never`",
        default: "`6h`",
        meaning: "how often a problem that lasts (failing, crash-looping, given up, deferred) is mentioned again",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "defer_limit",
        written: "defer_limit",
        value: "duration",
        default: "`30m`",
        meaning: "how long a busy package manager may hold a restart before it is said ([package-upgrades.md](package-upgrades.md))",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "restart_on_upgrade",
        written: "restart_on_upgrade",
        value: "`yes` / `no`",
        default: "`no`",
        meaning: "when the process runs a binary replaced on disk, run `restart` (else only say so once)",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "hold",
        written: "hold during",
        value: "class expression",
        default: "",
        meaning: "while the expression is true (`Sunday.Hr03`, a class of the policy), the service's restarts are held, as by `tend pause ID`: nothing is said, the metrics say `paused`; if it is still down when the window ends, its restart says so",
        scope: Scope::Service,
        many: false,
        read: |a, d| hold_during(a).map(|e| d.hold_during = Some(e)),
    },
    Attr {
        key: "after_boot",
        written: "after_boot",
        value: "duration",
        default: "`5m`",
        meaning: "for this long after the host booted, a service that has not been up since is waited for, not restarted (`0`: restarted at once); if it is still down then, its restart says so",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
    Attr {
        key: "when",
        written: "when stopped",
        value: "`restart` / `report` / `leave`",
        default: "`restart`",
        meaning: "what to do with a `unit` stopped cleanly (an admin's `systemctl stop`)",
        scope: Scope::Defaults,
        many: false,
        read: |a, d| setting(a, &mut d.settings),
    },
];

/// The attributes as a section of the man page (roff): each with how it is
/// written, its value, what it means and its default.
pub(crate) fn man_section() -> String {
    // The reference is Markdown: no backticks, `\|` is `|`; roff's own
    // backslash and leading dots escaped.
    let plain = |s: &str| {
        unlink(s)
            .replace('`', "")
            .replace("\\|", "|")
            .replace('\\', "\\e")
            .replace('-', "\\-")
    };
    let mut out = String::from(".SH \"POLICY ATTRIBUTES\"\n");
    for a in ATTRIBUTES {
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR {}\n\\&{}",
            plain(a.written),
            plain(a.value),
            plain(a.meaning)
        ));
        if !a.default.is_empty() {
            out.push_str(&format!(" (default: {})", plain(a.default)));
        }
        if a.scope == Scope::Defaults {
            out.push_str("; also in \\fBdefaults\\fR");
        }
        out.push('\n');
    }
    out
}

/// Markdown links as their text: `[reports.md](reports.md)` is `reports.md`.
fn unlink(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The attribute a key names, if any.
pub(crate) fn find(key: &str) -> Option<&'static Attr> {
    ATTRIBUTES.iter().find(|a| a.key == key)
}

/// The keys of the attributes of `scope`, in the reference's order.
pub(crate) fn keys(scope: Scope) -> impl Iterator<Item = &'static str> {
    ATTRIBUTES
        .iter()
        .filter(move |a| a.scope == scope)
        .map(|a| a.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/language.md's table of attributes is the registry's, row for
    /// row: an attribute the docs name and the language lacks fails, and
    /// the reverse.
    #[test]
    fn the_man_page_has_every_attribute() {
        let man = man_section();
        for a in ATTRIBUTES {
            assert!(man.contains(&format!("\\fB{}\\fR", a.written)), "{}", a.key);
        }
        assert!(!man.contains('`') && !man.contains("]("), "{man}");
    }

    #[test]
    fn the_reference_table_is_the_registry() {
        let doc = include_str!("../../docs/language.md");
        let table = doc
            .split_once("| attribute | value | default | meaning |\n|---|---|---|---|\n")
            .expect("the table of attributes")
            .1;
        let rows: Vec<&str> = table.lines().take_while(|l| l.starts_with('|')).collect();
        let want: Vec<String> = ATTRIBUTES.iter().map(Attr::doc_row).collect();
        assert_eq!(rows, want);
    }
}
