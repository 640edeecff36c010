//! The Prometheus textfile: what each pass found, for node_exporter.
//!
//! An admin with a hundred hosts wants one place to see which services are
//! down, failing, given up or paused, and which hosts stopped running tend.
//! Every host already runs node_exporter; its textfile collector serves any
//! `*.prom` file in a directory. With `--metrics FILE` a pass writes the
//! whole file anew after it ends (atomically: a scrape never sees half a
//! file), in the text exposition format. This module renders it; the
//! writing is [`crate::file::replace`].

use std::fmt::Write as _;

use crate::state::{Kind, ServiceState};

/// One service that applies, as the pass left it.
pub(crate) struct Row<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) state: &'a ServiceState,
}

/// The policy a pass enforced.
pub(crate) struct Enforced<'a> {
    pub(crate) digest: &'a str,
    /// Where it was read from (the last good copy: where the copy was read
    /// from).
    pub(crate) origin: &'a str,
    /// Whether it is the last good copy (the policy at `-f` is broken).
    pub(crate) last_good: bool,
}

/// Everything the file says of one pass.
pub(crate) struct Pass<'a> {
    pub(crate) services: Vec<Row<'a>>,
    /// When the pass started (unix seconds), and how long it took.
    pub(crate) at: i64,
    pub(crate) seconds: f64,
    /// None when nothing is enforced (a broken policy, no last good copy).
    pub(crate) policy: Option<Enforced<'a>>,
    /// Whether the policy at `-f` is broken (so a last good copy, or
    /// nothing, is enforced).
    pub(crate) broken: bool,
    pub(crate) busy: bool,
    pub(crate) paused: bool,
    /// Whether the state directory could be used: without it nothing is
    /// remembered between passes, and the restart counter is not published
    /// (it would read as a counter reset every pass).
    pub(crate) state_kept: bool,
}

/// Every value of `tend_service_status`'s `status` label.
pub(crate) const STATUSES: [&str; 7] = [
    "running",
    "down",
    "paused",
    "restarting",
    "failing",
    "backing_off",
    "given_up",
];

/// A service's status as the metrics name it: `down` while a pause (the
/// host's, or its own) holds its restart is `paused`.
pub(crate) fn status(state: &ServiceState, paused: bool) -> &'static str {
    let held = state.status.waited() == Some(crate::state::Wait::Hold);
    match state.status.kind() {
        Kind::Running => "running",
        Kind::Down if paused || held => "paused",
        Kind::Down => "down",
        Kind::Restarting => "restarting",
        Kind::Failing => "failing",
        Kind::BackingOff => "backing_off",
        Kind::GivenUp => "given_up",
    }
}

/// A label value as the exposition format wants it: backslash, double
/// quote and line feed escaped.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The file: each metric family once, with its HELP and TYPE, in a fixed
/// order (services in policy order).
pub(crate) fn render(pass: &Pass) -> String {
    let mut out = String::new();
    let o = &mut out;
    head(
        o,
        "tend_service_info",
        "gauge",
        "A service that applies to this host: its id and name in the policy.",
    );
    for row in &pass.services {
        let (id, name) = (escape(row.id), escape(row.name));
        let _ = writeln!(o, "tend_service_info{{service=\"{id}\",name=\"{name}\"}} 1");
    }
    each(
        o,
        pass,
        "tend_service_up",
        "gauge",
        "Whether the service was running when tend's last pass ended.",
        |s| u8::from(s.status.is_running()).to_string(),
    );
    head(
        o,
        "tend_service_status",
        "gauge",
        "The service's status as tend's last pass left it (1 for the status it is in).",
    );
    for row in &pass.services {
        let now = status(row.state, pass.paused);
        for s in STATUSES {
            let (id, on) = (escape(row.id), u8::from(s == now));
            let _ = writeln!(
                o,
                "tend_service_status{{service=\"{id}\",status=\"{s}\"}} {on}"
            );
        }
    }
    each(
        o,
        pass,
        "tend_service_since_seconds",
        "gauge",
        "When the service entered its status, in unix seconds.",
        |s| s.since.to_string(),
    );
    head(
        o,
        "tend_service_next_try_timestamp_seconds",
        "gauge",
        "When tend next tries to restart a crash-looping service (backing off), in unix seconds; only such services have a sample.",
    );
    for row in &pass.services {
        if let Some(next) = row.state.next_try() {
            let id = escape(row.id);
            let _ = writeln!(
                o,
                "tend_service_next_try_timestamp_seconds{{service=\"{id}\"}} {next}"
            );
        }
    }
    if pass.state_kept {
        each(
            o,
            pass,
            "tend_service_restarts_total",
            "counter",
            "Restarts tend has attempted for the service (kept across passes; reset by tend reset).",
            |s| s.carried.restarts_total.to_string(),
        );
    }
    host(o, pass);
    out
}

/// The families of the host and the pass.
fn host(o: &mut String, pass: &Pass) {
    gauge(
        o,
        "tend_last_pass_timestamp_seconds",
        "When tend's last pass started, in unix seconds.",
        pass.at,
    );
    gauge(
        o,
        "tend_pass_duration_seconds",
        "How long tend's last pass took (its splay not counted).",
        format!("{:.3}", pass.seconds),
    );
    if let Some(p) = &pass.policy {
        head(o, "tend_policy_info", "gauge", "The policy tend enforced: its digest, where it was read from, and whether it is the last good copy.");
        let enforced = if p.last_good { "last_good" } else { "live" };
        let (digest, origin) = (escape(p.digest), escape(p.origin));
        let _ = writeln!(
            o,
            "tend_policy_info{{digest=\"{digest}\",origin=\"{origin}\",enforced=\"{enforced}\"}} 1"
        );
    }
    for (name, help, on) in [
        ("tend_policy_broken", "Whether the configured policy is broken (its last good copy, or nothing, is enforced).", pass.broken),
        ("tend_package_manager_busy", "Whether a package manager was at work when the pass started (restarts wait).", pass.busy),
        ("tend_state_available", "Whether tend could use its state directory (0: nothing is remembered between passes; restarts are not counted).", pass.state_kept),
        ("tend_paused", "Whether a pause (tend pause) held restarts during the pass.", pass.paused),
    ] {
        gauge(o, name, help, u8::from(on));
    }
}

/// A family's HELP and TYPE lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A family with one sample per service, labelled by its id.
fn each(
    out: &mut String,
    pass: &Pass,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&ServiceState) -> String,
) {
    head(out, name, kind, help);
    for row in &pass.services {
        let _ = writeln!(
            out,
            "{name}{{service=\"{}\"}} {}",
            escape(row.id),
            value(row.state)
        );
    }
}

/// A family of one unlabelled gauge.
fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    head(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Kind, since: i64, restarts_total: u64) -> ServiceState {
        let mut state = ServiceState::new(status.bare(), since);
        state.carried.restarts_total = restarts_total;
        state
    }

    #[test]
    fn escape_table() {
        for (value, escaped) in [
            ("plain", "plain"),
            ("", ""),
            (r#"say "hi""#, r#"say \"hi\""#),
            (r"C:\dir", r"C:\\dir"),
            ("two\nlines", r"two\nlines"),
            (r#"\"#, r#"\\"#),
            ("tab\tstays", "tab\tstays"),
            ("ünïcode", "ünïcode"),
        ] {
            assert_eq!(escape(value), escaped, "{value:?}");
        }
    }

    #[test]
    fn status_table() {
        for (was, paused, label) in [
            (Kind::Running, false, "running"),
            (Kind::Running, true, "running"),
            (Kind::Down, false, "down"),
            (Kind::Down, true, "paused"),
            (Kind::Restarting, false, "restarting"),
            (Kind::Failing, true, "failing"),
            (Kind::BackingOff, true, "backing_off"),
            (Kind::GivenUp, false, "given_up"),
        ] {
            assert_eq!(status(&state(was, 0, 0), paused), label);
        }
    }

    #[test]
    fn renders_every_family_once_with_its_samples() {
        let up = state(Kind::Running, 1_700_000_000, 3);
        let mut down = state(Kind::BackingOff, 1_700_000_100, 5);
        down.carried.episode = Some(crate::state::Episode {
            since: 1_700_000_000,
            kind: crate::state::Trouble::CrashLooping,
            tries: 1,
            next: 1_700_001_300,
        });
        let pass = Pass {
            services: vec![
                Row {
                    id: "ssh",
                    name: "OpenSSH",
                    state: &up,
                },
                Row {
                    id: "web",
                    name: "Apache \"front\"",
                    state: &down,
                },
            ],
            at: 1_700_000_200,
            seconds: 0.0234,
            policy: Some(Enforced {
                digest: "1a2b3c4d5e6f",
                origin: "/etc/tend",
                last_good: true,
            }),
            broken: true,
            busy: false,
            paused: false,
            state_kept: true,
        };
        let text = render(&pass);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        for line in [
            r#"tend_service_info{service="web",name="Apache \"front\""} 1"#,
            r#"tend_service_up{service="ssh"} 1"#,
            r#"tend_service_up{service="web"} 0"#,
            r#"tend_service_status{service="web",status="backing_off"} 1"#,
            r#"tend_service_next_try_timestamp_seconds{service="web"} 1700001300"#,
            r#"tend_service_status{service="web",status="running"} 0"#,
            r#"tend_service_since_seconds{service="web"} 1700000100"#,
            r#"tend_service_restarts_total{service="ssh"} 3"#,
            "tend_last_pass_timestamp_seconds 1700000200",
            "tend_pass_duration_seconds 0.023",
            r#"tend_policy_info{digest="1a2b3c4d5e6f",origin="/etc/tend",enforced="last_good"} 1"#,
            "tend_policy_broken 1",
            "tend_package_manager_busy 0",
            "tend_state_available 1",
            "tend_paused 0",
        ] {
            assert!(samples.contains(&line), "{line} not in\n{text}");
        }
        // Only a service backing off has a next try.
        assert!(!text.contains("next_try_timestamp_seconds{service=\"ssh\""));
        // Seven status samples per service, one of them 1.
        let statuses = samples
            .iter()
            .filter(|l| l.starts_with("tend_service_status{service=\"ssh\""));
        assert_eq!(statuses.clone().count(), 7);
        assert_eq!(statuses.filter(|l| l.ends_with(" 1")).count(), 1);
        // Each family's TYPE once, before its samples.
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(types.len(), 13);
        let mut names: Vec<&str> = types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
        names.dedup();
        assert_eq!(names.len(), 13);
        // Without a state directory: no counter (it would reset every
        // pass), and the gauge says why.
        let text = render(&Pass {
            state_kept: false,
            ..pass
        });
        assert!(!text.contains("tend_service_restarts_total"), "{text}");
        assert!(text.contains("\ntend_state_available 0\n"), "{text}");
    }

    #[test]
    fn nothing_enforced_has_no_policy_info_and_no_services() {
        let pass = Pass {
            services: Vec::new(),
            at: 5,
            seconds: 0.0,
            policy: None,
            broken: true,
            busy: true,
            paused: true,
            state_kept: true,
        };
        let text = render(&pass);
        assert!(!text.contains("tend_policy_info{"));
        assert!(!text.contains("tend_service_up{"));
        assert!(text.contains("\ntend_policy_broken 1\n"));
        assert!(text.contains("\ntend_package_manager_busy 1\n"));
        assert!(text.contains("\ntend_paused 1\n"));
    }
}
