//! `hyperdial best SWEEP` on a multi-objective sweep: its Pareto front
//! (`GET /api/v1/sweeps/{id}/front`, rank 0), one run per line or exported.
//!
//! Formats: the default prints a header naming the objectives and one line per run of the
//! front (number, id, each objective, the parameters); `csv` writes a header
//! (`number,run_id,<objectives>,<parameters>`) and one row per run; `json` the objectives
//! and the runs with their parameters; `args` one line per run, its parameters as the
//! sweep's command passes them.

use std::process::ExitCode;

use anyhow::Result;
use hyperdial_wire::api::{FrontRun, ParetoFront};
use serde_json::{json, Map, Value};

use super::manage::{args_line, urlencode};
use crate::api::Api;

/// Print the front when `sweep` has several objectives; `None` (nothing printed) when it has
/// one, so the caller prints its best run.
pub async fn best(api: &Api, sweep: &str, format: &str) -> Result<Option<ExitCode>> {
    let info = api
        .get(&format!("/api/v1/sweeps/{}", urlencode(sweep)))
        .await?;
    if super::manage::objective_names(&info).is_empty() {
        return Ok(None);
    }
    if !matches!(format, "yaml" | "csv" | "json" | "args") {
        anyhow::bail!("--format {format}: use yaml (the default), csv, json or args");
    }
    let id = info["id"].as_str().unwrap_or(sweep);
    let front: ParetoFront = serde_json::from_value(
        api.get(&format!("/api/v1/sweeps/{}/front", urlencode(id)))
            .await?,
    )?;
    let runs: Vec<&FrontRun> = front.runs.iter().filter(|r| r.rank == 0).collect();
    let mut params: Vec<Map<String, Value>> = Vec::with_capacity(runs.len());
    for r in &runs {
        let run = api
            .get(&format!("/api/v1/runs/{}", urlencode(&r.run_id)))
            .await?;
        params.push(run["params"].as_object().cloned().unwrap_or_default());
    }
    let names: Vec<&str> = front.objectives.iter().map(|o| o.name.as_str()).collect();
    match format {
        "json" => {
            let listed: Vec<Value> = runs
                .iter()
                .zip(&params)
                .map(|(r, p)| {
                    json!({"run_id": r.run_id, "number": r.number, "values": r.values, "params": p})
                })
                .collect();
            let out = json!({"objectives": front.objectives, "runs": listed});
            outln!("{}", serde_json::to_string_pretty(&out)?);
        }
        "csv" => {
            let mut keys: Vec<String> = Vec::new();
            for p in &params {
                for k in p.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            let mut header = vec!["number".to_string(), "run_id".to_string()];
            header.extend(names.iter().map(|n| n.to_string()));
            header.extend(keys.iter().cloned());
            outln!("{}", csv_line(&header));
            for (r, p) in runs.iter().zip(&params) {
                let mut row = vec![r.number.to_string(), r.run_id.clone()];
                row.extend(r.values.iter().map(|v| v.to_string()));
                row.extend(keys.iter().map(|k| p.get(k).map(plain).unwrap_or_default()));
                outln!("{}", csv_line(&row));
            }
        }
        "args" => {
            for p in &params {
                outln!("{}", args_line(&info, p));
            }
        }
        _ => {
            let goals: Vec<String> = front
                .objectives
                .iter()
                .map(|o| {
                    format!(
                        "{} ({})",
                        o.name,
                        if o.goal.maximize() {
                            "maximize"
                        } else {
                            "minimize"
                        }
                    )
                })
                .collect();
            outln!(
                "# Pareto front of sweep {id}: {} run(s) of {} with every objective; {}",
                runs.len(),
                front.runs.len(),
                goals.join(", ")
            );
            for (r, p) in runs.iter().zip(&params) {
                let values: Vec<String> = names
                    .iter()
                    .zip(&r.values)
                    .map(|(n, v)| format!("{n}={}", super::number::metric(*v)))
                    .collect();
                let shown: Vec<String> =
                    p.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
                outln!(
                    "#{} {} {}  {}",
                    r.number,
                    r.run_id,
                    values.join(" "),
                    shown.join(" ")
                );
            }
        }
    }
    Ok(Some(ExitCode::SUCCESS))
}

/// A JSON value as plain text: strings without quotes, everything else as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One CSV line (RFC 4180 quoting: fields with a comma, quote or line break are quoted).
fn csv_line(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
