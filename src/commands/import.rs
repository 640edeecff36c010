//! `tend import cfengine|monit FILE...`: prints (or writes to -o DIR) the
//! tend policy the files come to, and says on standard error every
//! statement left out. Reads nothing of this host's state or policy.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::cli::ImportFrom;
use crate::exit::Exit;
use crate::import::{self, Import};

/// An importer: its files to what they come to, or why they cannot be read.
type Reader = fn(&[PathBuf]) -> Result<Import, String>;

pub(crate) fn run(from: ImportFrom, files: &[PathBuf], output: Option<&Path>) -> Result<Exit> {
    let (kind, read): (&str, Reader) = match from {
        ImportFrom::Cfengine => ("cfengine", import::cfengine::import),
        ImportFrom::Monit => ("monit", import::monit::import),
    };
    let mut imported = match read(files) {
        Ok(i) => i,
        Err(why) => {
            eprintln!("tend import: {why}");
            return Ok(Exit::Broken);
        }
    };
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let header = format!("tend import {kind} {}", names.join(" "));
    // What is written must be a policy tend reads: a service tend refuses
    // is left out and said; anything else is a reader's mistake.
    let parts = match import::checked(&mut imported, &header, files) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("tend import: the policy written is not valid (a fault of tend import's; please report it with its input):\n{e:#}");
            return Ok(Exit::Broken);
        }
    };
    match output {
        Some(dir) => write_files(dir, &parts)?,
        None => {
            let mut out = std::io::stdout().lock();
            for (k, (_, text)) in parts.iter().enumerate() {
                if k > 0 {
                    writeln!(out)?;
                }
                out.write_all(text.as_bytes())?;
            }
        }
    }
    let left = imported.all_left();
    for l in &left {
        eprintln!("tend import: {}", l.line());
    }
    let services = imported.drafts.len();
    let changed = left.iter().filter(|l| l.changed()).count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let out = left.len() - changed;
    let mut summary = format!(
        "tend import: {services} service{} carried over, {out} statement{} left out",
        plural(services),
        plural(out)
    );
    if changed > 0 {
        summary.push_str(&format!(", {changed} carried with a changed meaning"));
    }
    eprintln!("{summary}");
    Ok(Exit::converged_if(left.is_empty()))
}

/// One `STEM.tend` per input file in `dir`; none overwritten.
fn write_files(dir: &Path, parts: &[(PathBuf, String)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut taken = std::collections::HashSet::new();
    for (source, text) in parts {
        let stem = source
            .file_stem()
            .map(|s| import::id_of(&s.to_string_lossy()))
            .unwrap_or_else(|| "imported".into());
        let path = dir.join(format!("{}.tend", import::claim(&stem, &mut taken)));
        // A command carried as written may hold a secret (`--password X`):
        // such a file is its owner's alone.
        let secret = import::redact(text) != *text;
        if secret {
            eprintln!(
                "tend import: {} holds what looks like a secret (a password, token or URL credential in a command); written readable by its owner only",
                path.display()
            );
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if secret { 0o600 } else { 0o644 })
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot write {} (an existing file is not overwritten)",
                    path.display()
                )
            })?;
        file.write_all(text.as_bytes())?;
    }
    Ok(())
}
