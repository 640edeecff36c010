//! Previews: which services a policy gives a host, and why.
//!
//! One policy serves a whole fleet, and its guards decide what each host
//! runs. Before a push an admin wants to see the result on the hosts that
//! matter (`tend plan --host web-01`), or why one service does or does not
//! apply (`tend explain apache`): which guard, which classes it names, and
//! where each class came from. Nothing here touches processes or state.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::classes::{Classes, Host};
use crate::cli::Format;
use crate::parser::Expr;
use crate::policy::{Policy, Service};

/// Why a guard holds or not: each class and hostname() call it names, with
/// whether it is defined and where from.
fn reasons(guard: Option<&Expr>, policy: &Policy, classes: &Classes) -> Vec<Value> {
    fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
        match e {
            Expr::Class(_) | Expr::Call { .. } => out.push(e),
            Expr::Not(e) => walk(e, out),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| walk(e, out)),
        }
    }
    let mut atoms = Vec::new();
    if let Some(g) = guard {
        walk(g, &mut atoms);
    }
    let mut out: Vec<Value> = Vec::new();
    for atom in atoms {
        let name = atom.to_string();
        if out.iter().any(|v| v["name"] == name.as_str()) {
            continue;
        }
        let defined = classes.eval(atom);
        let origin = match atom {
            Expr::Class(c) => match classes.origin(&c.text) {
                Some(o) => Some(o.to_string()),
                None => policy
                    .classes
                    .iter()
                    .find(|d| d.name == c.text)
                    .map(|d| format!("policy class at {}", policy.sources.locate(d.span))),
            },
            _ if defined => Some("matches the host's name".to_string()),
            _ => Some("does not match the host's name".to_string()),
        };
        let definition = match atom {
            Expr::Class(c) => policy
                .classes
                .iter()
                .find(|d| d.name == c.text)
                .map(|d| d.expr.to_string()),
            _ => None,
        };
        out.push(json!({
            "name": name,
            "defined": defined,
            "origin": origin,
            "definition": definition,
        }));
    }
    out
}

/// `web (policy class at p.tend:1:1: www1 | hostname("web-*"))`, `dns off
/// (...)`, `ns1 not defined`.
fn reason_text(r: &Value) -> String {
    let name = r["name"].as_str().unwrap_or_default();
    let state = if r["defined"] == true || name.contains('(') {
        ""
    } else {
        " off"
    };
    let origin = r["origin"].as_str();
    let definition = r["definition"].as_str();
    match (origin, definition) {
        (Some(o), Some(d)) => format!("{name}{state} ({o}: {d})"),
        (Some(o), None) => format!("{name}{state} ({o})"),
        (None, _) => format!("{name} not defined"),
    }
}

fn guard_text(s: &Service) -> String {
    s.guard
        .as_ref()
        .map_or_else(|| "any".to_string(), ToString::to_string)
}

fn service_json(s: &Service, policy: &Policy, classes: &Classes) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "applies": classes.selects(s),
        "guard": guard_text(s),
        "at": policy.sources.locate(s.span),
        "classes": reasons(s.guard.as_ref(), policy, classes),
    })
}

fn host_line(host: &Host) -> String {
    let mut about = Vec::new();
    if let Some(id) = &host.os_id {
        about.push(match &host.os_version {
            Some(v) => format!("{id} {v}"),
            None => id.clone(),
        });
    }
    about.push(host.arch.clone());
    let name = host.fqdn.as_deref().unwrap_or(&host.short);
    format!("{name} ({})", about.join(", "))
}

/// `tend plan --host NAME`: every service of the policy, whether it applies
/// to that host, and why.
pub fn plan(policy: &Policy, host: &Host, classes: &Classes, format: Format) -> Result<u8> {
    let services: Vec<Value> = policy
        .services
        .iter()
        .map(|s| service_json(s, policy, classes))
        .collect();
    let names: Vec<&str> = classes.defined().map(|(n, _)| n).collect();
    if format == Format::Json {
        let defined = classes.defined_json();
        let doc = json!({
            "host": host.fqdn.as_deref().unwrap_or(&host.short),
            "os": host.os_id.as_ref().map(|id| match &host.os_version {
                Some(v) => format!("{id}_{v}"),
                None => id.clone(),
            }),
            "arch": host.arch,
            "policy": policy.origin,
            "digest": policy.digest,
            "classes": defined,
            "services": services,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(crate::CONVERGED);
    }
    let applies = services.iter().filter(|s| s["applies"] == true).count();
    println!(
        "plan for {}: {applies} of {} services apply (policy {}, sha256 {})",
        host_line(host),
        services.len(),
        policy.origin,
        policy.digest
    );
    println!("classes: {}", names.join(" "));
    for s in &services {
        let why: Vec<String> = s["classes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(reason_text)
            .collect();
        let verdict = if s["applies"] == true {
            "applies"
        } else {
            "does not apply"
        };
        let mut line = format!(
            "{} ({}): {verdict}: {}::",
            s["name"].as_str().unwrap_or_default(),
            s["id"].as_str().unwrap_or_default(),
            s["guard"].as_str().unwrap_or_default(),
        );
        if !why.is_empty() {
            line.push_str(&format!(" ({})", why.join(", ")));
        }
        println!("{line}");
    }
    Ok(crate::CONVERGED)
}

/// `tend explain ID`: one service, for this host or another: why it
/// applies or not, how it is recognised and checked, what brings it back.
pub fn explain(
    policy: &Policy,
    id: &str,
    host: &Host,
    classes: &Classes,
    format: Format,
) -> Result<u8> {
    let Some(s) = policy.services.iter().find(|s| s.id == id) else {
        let ids: Vec<&str> = policy.services.iter().map(|s| s.id.as_str()).collect();
        let near = crate::analyzer::closest(id, &ids)
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        bail!("no service `{id}` in {}{near}", policy.origin);
    };
    let mut about = service_json(s, policy, classes);
    let mut found_by = Vec::new();
    if let Some(p) = &s.process {
        found_by.push(format!("process {p:?}"));
    }
    if let Some(e) = &s.exe {
        found_by.push(format!("exe {e}"));
    }
    if let Some(p) = &s.pidfile {
        found_by.push(format!("pidfile {}", p.display()));
    }
    if let Some(u) = &s.user {
        found_by.push(format!("user {u}"));
    }
    match s.count {
        (1, None) => {}
        (min, None) => found_by.push(format!("count {min}..")),
        (min, Some(max)) if min == max => found_by.push(format!("count {min}")),
        (min, Some(max)) => found_by.push(format!("count {min}..{max}")),
    }
    let mut checks = Vec::new();
    if let Some(addr) = s.connect.tcp {
        checks.push(format!("port {addr} accepts"));
    }
    if let Some(path) = &s.connect.unix {
        checks.push(format!("unix {} accepts", path.display()));
    }
    if let Some(m) = s.memory {
        checks.push(format!(
            "memory above {} MiB then {:?}",
            m.bytes / (1 << 20),
            m.action
        ));
    }
    if let Some(c) = s.cpu {
        checks.push(format!(
            "cpu above {}% for {} runs then {:?}",
            c.percent, c.runs, c.action
        ));
    }
    let depends: Vec<&str> = s.depends.iter().map(|(d, _)| d.as_str()).collect();
    let limits = s.limits;
    if let Value::Object(map) = &mut about {
        map.insert(
            "host".into(),
            host.fqdn.as_deref().unwrap_or(&host.short).into(),
        );
        map.insert("found_by".into(), json!(found_by));
        map.insert("checks".into(), json!(checks));
        map.insert("when_down".into(), s.plan(false).into());
        map.insert("when_failing".into(), s.plan(true).into());
        map.insert("depends_on".into(), json!(depends));
        map.insert(
            "limits".into(),
            json!({
                "restarts": limits.restarts,
                "within_seconds": limits.within,
                "remind_seconds": limits.remind,
                "defer_seconds": limits.defer,
                "timeout_seconds": s.timeout.as_secs(),
                "grace_seconds": s.grace.as_secs(),
            }),
        );
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&about)?);
        return Ok(crate::CONVERGED);
    }
    let applies = about["applies"] == true;
    println!(
        "{} ({}), at {}",
        s.name,
        s.id,
        about["at"].as_str().unwrap_or_default()
    );
    println!(
        "  {} to {}: guard {}:: is {}",
        if applies { "applies" } else { "does not apply" },
        host_line(host),
        guard_text(s),
        applies
    );
    for r in about["classes"].as_array().into_iter().flatten() {
        println!("    {}", reason_text(r));
    }
    println!("  found by: {}", found_by.join(", "));
    if !checks.is_empty() {
        println!("  checks: {}", checks.join("; "));
    }
    println!("  when down: {}", s.plan(false));
    if s.plan(true) != s.plan(false) {
        println!("  when failing a check: {}", s.plan(true));
    }
    if !depends.is_empty() {
        println!("  depends on: {}", depends.join(", "));
    }
    println!(
        "  at most {} restarts within {}, each given {} to run and {} to come up",
        limits.restarts,
        crate::report::span(limits.within),
        crate::report::span(s.timeout.as_secs() as i64),
        crate::report::span(s.grace.as_secs() as i64)
    );
    Ok(crate::CONVERGED)
}
