//! Which classes this host is in, and so which services apply to it.
//!
//! Hard classes come from what the host is (CFEngine-style: `any`, host
//! names, `linux`, OS id and version, architecture, time of day), more come
//! from `-D` on the command line, and the policy's `class` definitions are
//! evaluated on top of those. Every class remembers where it came from, so
//! `tend classes -v` can say why a service does or does not apply.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Local, Timelike};

use serde::Serialize;

use crate::parser::Expr;
use crate::pkgmgr::Busy;
use crate::policy::{Policy, Service};

/// The class a busy package manager defines for the pass.
pub(crate) const PKGMGR_BUSY: &str = "pkgmgr_busy";

/// What the host is, as far as classes are concerned.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// Short host name, as the system reports it (not canonified).
    pub(crate) short: String,
    /// Fully qualified name, when it is known without asking DNS.
    pub(crate) fqdn: Option<String>,
    /// /etc/os-release ID, VERSION_ID, ID_LIKE.
    pub(crate) os_id: Option<String>,
    pub(crate) os_version: Option<String>,
    pub(crate) os_like: Vec<String>,
    pub(crate) arch: String,
    /// The time of the run, for time classes; None for a previewed host.
    pub(crate) now: Option<DateTime<Local>>,
}

impl Host {
    /// Looks at this machine. Never asks DNS: a pass must not hang on a
    /// resolver. The FQDN is the host name if it has a dot, else the first
    /// dotted alias of it in /etc/hosts.
    pub(crate) fn detect(now: DateTime<Local>) -> Host {
        let name = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".to_string());
        let short = name.split('.').next().unwrap_or(&name).to_string();
        let fqdn = if name.contains('.') {
            Some(name.clone())
        } else {
            std::fs::read_to_string("/etc/hosts")
                .ok()
                .and_then(|hosts| fqdn_from_hosts(&hosts, &short))
        };
        let os = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        let field = |key: &str| os_release_field(&os, key);
        Host {
            short,
            fqdn,
            os_id: field("ID"),
            os_version: field("VERSION_ID"),
            os_like: field("ID_LIKE")
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            arch: std::env::consts::ARCH.to_string(),
            now: Some(now),
        }
    }

    /// Another host, as `tend plan --host NAME --os debian_12` describes
    /// it: no time classes (they depend on when), no ID_LIKE.
    pub(crate) fn named(name: &str, os: Option<&str>, arch: Option<&str>) -> Host {
        let short = name.split('.').next().unwrap_or(name).to_string();
        let (os_id, os_version) = match os.map(|os| os.split_once('_').unwrap_or((os, ""))) {
            Some((id, version)) => (
                Some(id.to_string()),
                Some(version.replace('_', ".")).filter(|v| !v.is_empty()),
            ),
            None => (None, None),
        };
        Host {
            short,
            fqdn: name.contains('.').then(|| name.to_string()),
            os_id,
            os_version,
            os_like: Vec::new(),
            arch: arch.unwrap_or(std::env::consts::ARCH).to_string(),
            now: None,
        }
    }
}

/// Host names are case-insensitive: `WEB1.Example.com` in /etc/hosts is
/// web1's name.
fn fqdn_from_hosts(hosts: &str, short: &str) -> Option<String> {
    let first_label = |n: &str| {
        n.split('.')
            .next()
            .is_some_and(|l| l.eq_ignore_ascii_case(short))
    };
    hosts.lines().find_map(|line| {
        let names: Vec<&str> = line.split('#').next()?.split_whitespace().skip(1).collect();
        let mentions = names.iter().any(|n| first_label(n));
        mentions
            .then(|| names.iter().find(|n| n.contains('.') && first_label(n)))
            .flatten()
            .map(|n| n.to_string())
    })
}

fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_string())
        })
        .filter(|v| !v.is_empty())
}

/// CFEngine's canonify: every character that is not a letter, digit or `_`
/// becomes `_` (`web-01.example.com` is `web_01_example_com`).
pub(crate) fn canonify(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where a class came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A hard class, with what defined it ("short host name", "time").
    Hard(&'static str),
    /// `-D` on the command line.
    Define,
    /// Found on the host this run (`pkgmgr_busy`: which lock).
    Detected(String),
    /// A policy `class` definition (its location).
    Policy(String),
}

impl Origin {
    /// `hard`, `define`, `detected` or `policy`, for JSON.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Origin::Hard(_) => "hard",
            Origin::Define => "define",
            Origin::Detected(_) => "detected",
            Origin::Policy(_) => "policy",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Hard(what) => write!(f, "{what}"),
            Origin::Define => write!(f, "-D on the command line"),
            Origin::Detected(what) => write!(f, "{what}"),
            Origin::Policy(at) => write!(f, "policy class at {at}"),
        }
    }
}

/// The hard classes of a host, CFEngine-style, with where each came from.
pub(crate) fn hard_classes(host: &Host) -> Vec<(String, &'static str)> {
    let mut out = vec![("any".to_string(), "always defined")];
    out.push((canonify(&host.short), "short host name"));
    if let Some(fqdn) = &host.fqdn {
        out.push((canonify(fqdn), "fully qualified host name"));
    }
    out.push((canonify(std::env::consts::OS), "kernel"));
    out.push((canonify(&host.arch), "architecture"));
    if let Some(id) = &host.os_id {
        out.push((canonify(id), "/etc/os-release ID"));
        if let Some(version) = &host.os_version {
            let mut parts: Vec<&str> = Vec::new();
            for part in version.split('.') {
                parts.push(part);
                out.push((
                    canonify(&format!("{id}_{}", parts.join("_"))),
                    "/etc/os-release VERSION_ID",
                ));
            }
        }
    }
    for like in &host.os_like {
        out.push((canonify(like), "/etc/os-release ID_LIKE"));
    }
    for t in host.now.map(time_classes).unwrap_or_default() {
        out.push((t, "time"));
    }
    out
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Whether a class name is one tend could define by itself on some host
/// (so `tend validate` does not warn about it): `any`, kernels, common
/// architectures and OS ids, `ID_VERSION` classes, time classes,
/// `pkgmgr_busy`, and host names with a digit in them (`www1`, `web_01`).
pub(crate) fn built_in_shape(name: &str) -> bool {
    hard_name(name) || name.bytes().any(|b| b.is_ascii_digit())
}

/// Whether `name` is a class tend sets itself on the hosts it fits (a
/// kernel, an architecture, a distribution, a time, `pkgmgr_busy`): a
/// policy's class of that name would be ignored there.
pub(crate) fn hard_name(name: &str) -> bool {
    const FIXED: &[&str] = &[
        "any",
        "linux",
        "freebsd",
        "openbsd",
        "netbsd",
        "macos",
        "solaris",
        "x86_64",
        "x86",
        "i386",
        "i686",
        "aarch64",
        "arm",
        "armv7l",
        "riscv64",
        "powerpc64",
        "ppc64le",
        "s390x",
        "debian",
        "ubuntu",
        "rhel",
        "centos",
        "rocky",
        "almalinux",
        "fedora",
        "opensuse",
        "opensuse_leap",
        "sles",
        "suse",
        "arch",
        "alpine",
        "amzn",
        "ol",
        "raspbian",
        "linuxmint",
        "gentoo",
        "void",
        "nixos",
        "pkgmgr_busy",
        "Night",
        "Morning",
        "Afternoon",
        "Evening",
        "Q1",
        "Q2",
        "Q3",
        "Q4",
    ];
    static TIME: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let time = TIME.get_or_init(|| {
        regex::Regex::new(r"^(Yr\d{4}|Day\d{1,2}|Hr\d\d(_Q[1-4])?|Min\d\d(_\d\d)?)$")
            .expect("a valid pattern")
    });
    FIXED.contains(&name) || DAYS.contains(&name) || MONTHS.contains(&name) || time.is_match(name)
}

/// CFEngine's time classes for a local time.
pub(crate) fn time_classes(now: DateTime<Local>) -> Vec<String> {
    let (h, m) = (now.hour(), now.minute());
    let five = m / 5 * 5;
    let quarter = m / 15 + 1;
    let shift = match h {
        0..=5 => "Night",
        6..=11 => "Morning",
        12..=17 => "Afternoon",
        _ => "Evening",
    };
    vec![
        DAYS[now.weekday().num_days_from_monday() as usize].to_string(),
        MONTHS[now.month0() as usize].to_string(),
        format!("Yr{}", now.year()),
        format!("Day{}", now.day()),
        format!("Hr{h:02}"),
        format!("Min{m:02}"),
        format!("Min{five:02}_{:02}", (five + 5) % 60),
        format!("Q{quarter}"),
        format!("Hr{h:02}_Q{quarter}"),
        shift.to_string(),
    ]
}

/// A defined class as `classes`, `plan` and `explain` show it in JSON.
#[derive(Debug, Serialize)]
pub(crate) struct ClassRow<'a> {
    pub(crate) name: &'a str,
    /// `hard`, `define`, `detected` or `policy`.
    pub(crate) kind: &'static str,
    pub(crate) origin: String,
}

/// The classes in force for one pass.
#[derive(Debug, Clone)]
pub(crate) struct Classes {
    defined: BTreeMap<String, Origin>,
    /// Policy classes that are off, with their location, for `classes -v`.
    off: BTreeMap<String, String>,
    names: Vec<String>,
}

impl Classes {
    /// Hard classes, then what this run detected (`pkgmgr_busy`, from the
    /// pass's one package manager probe), then `-D` classes, then the
    /// policy's definitions.
    pub(crate) fn evaluate(
        policy: Option<&Policy>,
        host: &Host,
        busy: Option<&Busy>,
        defines: &[String],
    ) -> Classes {
        let mut defined = BTreeMap::new();
        for (name, why) in hard_classes(host) {
            defined.entry(name).or_insert(Origin::Hard(why));
        }
        if let Some(busy) = busy {
            defined
                .entry(PKGMGR_BUSY.to_string())
                .or_insert_with(|| Origin::Detected(format!("package manager at work: {busy}")));
        }
        for d in defines
            .iter()
            .flat_map(|d| d.split(','))
            .filter(|d| !d.is_empty())
        {
            defined.entry(canonify(d)).or_insert(Origin::Define);
        }
        let mut names = vec![host.short.clone()];
        names.extend(host.fqdn.clone());
        let mut classes = Classes {
            defined,
            off: BTreeMap::new(),
            names,
        };
        if let Some(policy) = policy {
            // The analyzer put each definition after those it refers to
            // (and refused cycles): one pass settles them all, and a
            // negation (`class b = !a`) sees `a` already decided.
            for def in &policy.classes {
                if !classes.defined.contains_key(&def.name) && classes.eval(&def.expr) {
                    let at = policy.sources.locate(def.span);
                    classes.defined.insert(def.name.clone(), Origin::Policy(at));
                }
            }
            for def in &policy.classes {
                if !classes.defined.contains_key(&def.name) {
                    classes
                        .off
                        .insert(def.name.clone(), policy.sources.locate(def.span));
                }
            }
        }
        classes
    }

    pub(crate) fn contains(&self, class: &str) -> bool {
        self.defined.contains_key(class)
    }

    pub(crate) fn eval(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Class(c) => self.contains(&c.text),
            Expr::Call { arg, .. } => {
                // `hostname(GLOB)`: the only function; the analyzer checked it.
                // Host names are case-insensitive: WEB-01 is web-01.
                globset::GlobBuilder::new(&arg.text)
                    .case_insensitive(true)
                    .build()
                    .map(|g| g.compile_matcher())
                    .is_ok_and(|m| self.names.iter().any(|n| m.is_match(n)))
            }
            Expr::Not(e) => !self.eval(e),
            Expr::And(v) => v.iter().all(|e| self.eval(e)),
            Expr::Or(v) => v.iter().any(|e| self.eval(e)),
        }
    }

    /// Whether a service applies to this host.
    pub(crate) fn selects(&self, service: &Service) -> bool {
        service.guard.as_ref().is_none_or(|g| self.eval(g))
    }

    /// The services of `policy` that apply to this host, in policy order:
    /// the one place a pass, a dry run and `status` choose them.
    pub(crate) fn select<'p>(&self, policy: &'p Policy) -> Vec<&'p Service> {
        policy.services.iter().filter(|s| self.selects(s)).collect()
    }

    /// Where a defined class came from.
    pub(crate) fn origin(&self, class: &str) -> Option<&Origin> {
        self.defined.get(class)
    }

    /// The classes defined, as rows for JSON.
    pub(crate) fn rows(&self) -> Vec<ClassRow<'_>> {
        self.defined()
            .map(|(name, origin)| ClassRow {
                name,
                kind: origin.kind(),
                origin: origin.to_string(),
            })
            .collect()
    }

    pub(crate) fn defined(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.defined.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Policy classes that are not defined on this host, with their location.
    pub(crate) fn off(&self) -> impl Iterator<Item = (&str, &str)> {
        self.off.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse, Item};
    use chrono::TimeZone;

    fn host(short: &str) -> Host {
        Host {
            short: short.to_string(),
            fqdn: Some(format!("{short}.example.com")),
            os_id: Some("debian".into()),
            os_version: Some("12.5".into()),
            os_like: vec![],
            arch: "x86_64".into(),
            now: Some(Local.with_ymd_and_hms(2026, 11, 23, 8, 7, 0).unwrap()),
        }
    }

    fn guard(src: &str) -> Expr {
        match parse(0, &format!("{src}::")).0.remove(0) {
            Item::Guard(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hard_classes_of_a_debian_web_host() {
        let classes = Classes::evaluate(None, &host("web-01"), None, &[]);
        for want in [
            "any",
            "web_01",
            "web_01_example_com",
            "linux",
            "x86_64",
            "debian",
            "debian_12",
            "debian_12_5",
            "Monday",
            "November",
            "Yr2026",
            "Day23",
            "Hr08",
            "Min07",
            "Min05_10",
            "Q1",
            "Hr08_Q1",
            "Morning",
        ] {
            assert!(classes.contains(want), "missing {want}");
        }
        assert!(!classes.contains("Tuesday"));
    }

    #[test]
    fn expression_table() {
        let defines = vec!["web".to_string(), "x,y".to_string()];
        let classes = Classes::evaluate(None, &host("www1"), None, &defines);
        for (expr, want) in [
            ("any", true),
            ("web", true),
            ("dns", false),
            ("web|dns", true),
            ("web&dns", false),
            ("web.dns", false),
            ("!dns", true),
            ("!web|dns", false),
            ("x.y", true),
            ("dns|x.y", true),
            ("(dns|x).!y", false),
            ("web.Monday.Hr08", true),
            ("hostname(\"www*\")", true),
            ("hostname(\"www1.example.*\")", true),
            ("hostname(\"web-*\")", false),
            ("www1", true),
        ] {
            assert_eq!(classes.eval(&guard(expr)), want, "{expr}");
        }
    }

    #[test]
    fn a_named_host_has_its_names_and_os_and_no_time_table() {
        for (name, os, want, not) in [
            (
                "web-01",
                Some("debian_12"),
                &["any", "web_01", "linux", "debian", "debian_12"][..],
                &["debian_12_5", "Monday", "Hr08"][..],
            ),
            (
                "db1.example.com",
                Some("rocky_9.4"),
                &["db1", "db1_example_com", "rocky", "rocky_9", "rocky_9_4"],
                &["debian"],
            ),
            ("ns1", None, &["ns1", "any"], &["debian", "Q1"]),
        ] {
            let classes =
                Classes::evaluate(None, &Host::named(name, os, Some("x86_64")), None, &[]);
            for w in want {
                assert!(classes.contains(w), "{name}: missing {w}");
            }
            for n in not {
                assert!(!classes.contains(n), "{name}: has {n}");
            }
        }
    }

    #[test]
    fn time_class_boundaries() {
        let at = |h, m| time_classes(Local.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap());
        assert!(at(23, 59).contains(&"Min55_00".to_string()));
        assert!(at(23, 59).contains(&"Hr23_Q4".to_string()));
        assert!(at(0, 0).contains(&"Night".to_string()));
        assert!(at(0, 0).contains(&"Sunday".to_string()));
        assert!(at(12, 15).contains(&"Q2".to_string()));
    }

    #[test]
    fn canonify_table() {
        for (raw, want) in [
            ("web-01.example.com", "web_01_example_com"),
            ("x86_64", "x86_64"),
            ("a b/c", "a_b_c"),
        ] {
            assert_eq!(canonify(raw), want);
        }
    }

    #[test]
    fn fqdn_from_hosts_table() {
        let hosts = "127.0.0.1 localhost\n10.0.0.5 web1.example.com web1 # main\n";
        assert_eq!(
            fqdn_from_hosts(hosts, "web1").as_deref(),
            Some("web1.example.com")
        );
        assert_eq!(fqdn_from_hosts(hosts, "db1"), None);
        let shouted = "10.0.0.5 WEB1.Example.COM Web1\n";
        assert_eq!(
            fqdn_from_hosts(shouted, "web1").as_deref(),
            Some("WEB1.Example.COM")
        );
    }
}
