//! `hyperdial output RUN` and `export SWEEP`: a run's captured output, and every run of a
//! sweep as CSV or JSON (written to a file only where it can be written whole).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::urlencode;
use crate::api::Api;

/// `hyperdial output RUN`.
pub async fn output(api: &Api, run: &str) -> Result<ExitCode> {
    let text = api
        .get_text(&format!("/api/v1/runs/{}/output", urlencode(run)))
        .await?;
    print!("{text}");
    if text.is_empty() {
        // Empty, not missing: say why rather than print nothing.
        eprintln!(
            "run {run} has no captured output: it printed nothing yet, or it was not started \
             by `hyperdial agent`, `hyperdial tune` or `hyperdial run`, which capture it (a \
             script that calls `hyperdial.init()` by itself prints to its own terminal)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `hyperdial export SWEEP`.
pub async fn export(
    api: &Api,
    sweep: &str,
    format: &str,
    output: Option<&Path>,
) -> Result<ExitCode> {
    if format != "csv" && format != "json" {
        anyhow::bail!("--format {format}: use csv or json");
    }
    let text = api
        .get_text(&format!(
            "/api/v1/sweeps/{}/export?format={format}",
            urlencode(sweep)
        ))
        .await?;
    match output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuse an output file (`-o FILE` of `refine` and `export`) that cannot be written, before
/// any work is done: its directory must exist (the error says to create it, with the
/// `mkdir -p` that does), and the path must not be a directory.
pub fn check_output(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        anyhow::bail!("cannot write {shown}: it is a directory; name a file in it");
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => return Ok(()),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => anyhow::bail!("cannot write {shown}: {} is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "cannot write {shown}: the directory {} does not exist; create it first with \
             `mkdir -p {}`",
            dir.display(),
            crate::commands::validate::shell_quote(&dir.display().to_string())
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot write {shown}: cannot read {}",
            dir.display()
        ))),
    }
}
