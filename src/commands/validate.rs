//! `tend validate [--strict] [PATH]...`: every error of every file, or the
//! policy's warnings and an ok line. For a policy repository's CI or
//! pre-commit hook, and before a push. Errors are exit status 2, and so are
//! warnings with `--strict`.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{print_json, Context};
use crate::analyzer;
use crate::cli::Format;
use crate::diagnostic::{self, Severity};
use crate::exit::Exit;
use crate::load;
use crate::policy::Policy;
use crate::snapshot;

/// `tend validate --format json`.
#[derive(Serialize)]
struct Doc {
    ok: bool,
    paths: Vec<String>,
    digest: Option<String>,
    services: Option<usize>,
    classes: Option<usize>,
    /// Why passes would not use this (installed) policy yet.
    refused: Option<String>,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<diagnostic::Row>,
}

pub(crate) fn run(
    ctx: &Context,
    paths: &[PathBuf],
    accept_empty: bool,
    strict: bool,
) -> Result<Exit> {
    if accept_empty {
        return accept(ctx);
    }
    // The installed policy is checked as a pass would read it; a
    // repository's files (PATHs) for their text only.
    let (paths, root_only) = match paths.is_empty() {
        true => (std::slice::from_ref(&ctx.policy), ctx.root_only),
        false => (paths, false),
    };
    let installed = paths == std::slice::from_ref(&ctx.policy);
    let read = match installed {
        true => snapshot::read(paths, root_only),
        false => snapshot::read_checkout(paths),
    };
    // The installed policy a pass would still refuse, as a copy in progress.
    let (checked, refused) = match read {
        Err(e) => (Err(load::Unusable::Read(e)), None),
        Ok(s) => {
            let checked = load::check(&s).map_err(load::Unusable::from);
            let refused = match &checked {
                Ok(p) if installed => ctx.store.usable().and_then(|dir| load::shrank(&s, p, dir)),
                _ => None,
            };
            (checked, refused)
        }
    };
    if ctx.format == Format::Text {
        return text(checked?, refused, strict);
    }
    let (diagnostics, policy) = rows(checked);
    let count = |severity: Severity| {
        diagnostics
            .iter()
            .filter(|d: &&diagnostic::Row| d.severity == severity)
            .count()
    };
    let errors = count(Severity::Error);
    let failed = errors > 0 || (strict && count(Severity::Warning) > 0);
    print_json(&Doc {
        ok: !failed,
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        digest: policy.as_ref().map(|p| p.digest.clone()),
        refused,
        services: policy.as_ref().map(|p| p.services.len()),
        classes: policy.as_ref().map(|p| p.classes.len()),
        errors,
        warnings: count(Severity::Warning),
        diagnostics,
    })?;
    Ok(if failed {
        Exit::Broken
    } else {
        Exit::Converged
    })
}

/// The diagnostics of a check as JSON rows, and the policy if it checked.
fn rows(checked: Result<Policy, load::Unusable>) -> (Vec<diagnostic::Row>, Option<Policy>) {
    match checked {
        Ok(p) => (
            analyzer::warnings(&p.classes, &p.services)
                .iter()
                .map(|d| d.row(&p.sources))
                .collect(),
            Some(p),
        ),
        Err(e) => match &e {
            load::Unusable::Text(errors) => (
                errors
                    .diagnostics
                    .iter()
                    .map(|d| d.row(&errors.sources))
                    .collect(),
                None,
            ),
            load::Unusable::Read(_) => (
                vec![diagnostic::Row {
                    severity: Severity::Error,
                    file: None,
                    line: None,
                    column: None,
                    message: format!("{e:#}"),
                    rendered: format!("{e:#}"),
                }],
                None,
            ),
        },
    }
}

/// `tend validate --accept-empty`: the policy of -f, if it checks, becomes
/// the last good one, so passes enforce it even though it lost every
/// service the previous one had.
fn accept(ctx: &Context) -> Result<Exit> {
    let snapshot = snapshot::read(std::slice::from_ref(&ctx.policy), ctx.root_only)?;
    let policy = load::check(&snapshot)?;
    ctx.store.ensure_dir()?;
    snapshot::keep(ctx.store.dir(), &snapshot, ctx.now)?;
    println!(
        "{}: accepted as it is ({} services; sha256 {}); passes enforce it from now on",
        policy.origin,
        policy.services.len(),
        policy.digest
    );
    Ok(Exit::Converged)
}

/// `validate` as text: the policy's warnings, a refused copy's warning,
/// and the one line that says it is ok.
fn text(policy: Policy, refused: Option<String>, strict: bool) -> Result<Exit> {
    let warnings = analyzer::warnings(&policy.classes, &policy.services);
    for w in &warnings {
        println!("{}", w.render(&policy.sources));
    }
    let said = match warnings.len() {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    };
    if let Some(why) = refused {
        println!("warning: {why}");
    }
    let (services, classes) = (policy.services.len(), policy.classes.len());
    let counted = format!(
        "{services} service{}, {classes} class{}{said}",
        if services == 1 { "" } else { "s" },
        if classes == 1 { "" } else { "es" }
    );
    if strict && !warnings.is_empty() {
        println!(
            "{}: not ok with --strict ({counted}; sha256 {})",
            policy.origin, policy.digest
        );
        return Ok(Exit::Broken);
    }
    println!(
        "{}: ok ({counted}; sha256 {})",
        policy.origin, policy.digest
    );
    Ok(Exit::Converged)
}
