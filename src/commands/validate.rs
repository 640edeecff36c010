//! `tend validate [PATH]...`: every error of every file, or the policy's
//! warnings and an ok line. For a policy repository's CI or pre-commit hook,
//! and before a push. Errors are exit status 2.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{print_json, Context};
use crate::analyzer;
use crate::cli::Format;
use crate::diagnostic::{self, PolicyErrors, Severity};
use crate::exit::Exit;
use crate::load;

/// `tend validate --format json`.
#[derive(Serialize)]
struct Doc {
    ok: bool,
    paths: Vec<String>,
    digest: Option<String>,
    services: Option<usize>,
    classes: Option<usize>,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<diagnostic::Row>,
}

pub fn run(ctx: &Context, paths: &[PathBuf]) -> Result<Exit> {
    // The installed policy is checked as a pass would read it; a
    // repository's files (PATHs) for their text only.
    let (paths, root_only) = match paths.is_empty() {
        true => (std::slice::from_ref(&ctx.policy), ctx.root_only),
        false => (paths, false),
    };
    let checked = load::read(paths, root_only);
    if ctx.format == Format::Text {
        let policy = checked?;
        let warnings = analyzer::warnings(&policy.classes, &policy.services);
        for w in &warnings {
            println!("{}", w.render(&policy.sources));
        }
        let said = match warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        };
        println!(
            "{}: ok ({} services, {} classes{said}; sha256 {})",
            policy.origin,
            policy.services.len(),
            policy.classes.len(),
            policy.digest
        );
        return Ok(Exit::Converged);
    }
    let (diagnostics, policy) = match checked {
        Ok(p) => (
            analyzer::warnings(&p.classes, &p.services)
                .iter()
                .map(|d| d.row(&p.sources))
                .collect(),
            Some(p),
        ),
        Err(e) => match e.downcast_ref::<PolicyErrors>() {
            Some(errors) => (
                errors
                    .diagnostics
                    .iter()
                    .map(|d| d.row(&errors.sources))
                    .collect(),
                None,
            ),
            None => (
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
    };
    let count = |severity: Severity| {
        diagnostics
            .iter()
            .filter(|d: &&diagnostic::Row| d.severity == severity)
            .count()
    };
    let errors = count(Severity::Error);
    print_json(&Doc {
        ok: errors == 0,
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        digest: policy.as_ref().map(|p| p.digest.clone()),
        services: policy.as_ref().map(|p| p.services.len()),
        classes: policy.as_ref().map(|p| p.classes.len()),
        errors,
        warnings: count(Severity::Warning),
        diagnostics,
    })?;
    Ok(if errors == 0 {
        Exit::Converged
    } else {
        Exit::Broken
    })
}
