//! Inspection and control over the API: `sweep`, `sweeps`, `runs`, `best`, `export`, and
//! `pause`/`resume`/`stop`/`cancel`.
//!
//! The read commands (`sweeps`, `runs`, `best`, `export`, `output`) take an [`Api`] and print
//! its answers; [`read`] opens it on a server or, with none given, on the local store
//! ([`crate::source`]), so their output is the same either way. One file per job:
//! [`create`] (`sweep FILE`), [`listing`] (`sweeps`, `runs`), [`best`], [`export`] (`export`,
//! `output`) and [`control`] (`pause`, `resume`, `stop`, `cancel`, `retry`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::api::Api;
use crate::source::Source;

mod best;
mod control;
mod create;
mod export;
mod listing;

pub use best::{args_line, best, estimate_said};
pub use control::{act, cancel, retry};
pub use create::{agent_command, create};
pub use export::{check_output, export, output};
pub use listing::{all_runs, runs, sweeps, AllRuns};

/// Open the source of a read command, run `command` on its API, then close it.
pub async fn read(
    source: &Source,
    command: impl AsyncFnOnce(&Api) -> Result<ExitCode>,
) -> Result<ExitCode> {
    let reader = source.open().await?;
    let result = command(&reader.api).await;
    reader.close().await;
    result
}

/// Read a sweep file, failing with the validator's messages if it is invalid.
pub fn read_sweep_file(file: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match hyperdial_space::parse_str(&text, &file.display().to_string()) {
        Ok(v) => {
            for w in &v.warnings {
                eprintln!("{}", w.render(&file.display().to_string()));
            }
            Ok(text)
        }
        Err(e) => Err(crate::Rendered(e.render()).into()),
    }
}

/// Percent-encode a path or query component.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A metric value as the tables print it ([`crate::commands::number::metric`]), `—` without one.
pub(super) fn fmt_metric(v: &Value) -> String {
    v.as_f64()
        .map(crate::commands::number::metric)
        .unwrap_or_else(|| "—".into())
}

/// The objective names of a multi-objective sweep (the API's Sweep object), in order; empty
/// for a sweep of one metric.
pub fn objective_names(sweep: &Value) -> Vec<String> {
    let listed = sweep["config"]["metrics"].as_array();
    listed
        .filter(|m| m.len() > 1)
        .into_iter()
        .flatten()
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect()
}
