//! `GET /api/v1/sweeps/{id}/export?format=csv|json`: every run of a sweep, one row each.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyperdial_store::RunFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Params;
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    format: Option<String>,
}

pub(super) async fn export(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<ExportQuery>,
) -> Result<Response, ApiError> {
    let c = &s.controller;
    let sweep = c.sweep(&id).await?;
    let config = c.config(&sweep)?;
    let filter = RunFilter {
        sweep: Some(id.clone()),
        limit: Some(100_000),
        ..Default::default()
    };
    let (runs, _) = c.store().runs(&filter).await?;
    let params: Vec<&str> = config.parameters.iter().map(|p| p.name.as_str()).collect();
    let mut summary_keys: Vec<String> = runs
        .iter()
        .flat_map(|r| r.summary.keys().cloned())
        .collect();
    summary_keys.sort();
    summary_keys.dedup();
    match q.format.as_deref().unwrap_or("json") {
        "json" => {
            let rows: Vec<Value> = runs
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id, "number": r.number, "state": r.state, "metric": r.metric,
                        "params": r.params, "summary": r.summary, "exit_code": r.exit_code,
                        "host": r.host, "started_ms": r.started_ms, "finished_ms": r.finished_ms,
                        "duration_s": duration(r.started_ms, r.finished_ms),
                        "retry_of": r.retry_of, "attempt": r.attempt,
                    })
                })
                .collect();
            Ok(Json(json!({ "sweep": id, "runs": rows })).into_response())
        }
        "csv" => {
            let mut out = String::new();
            let mut header_row: Vec<String> = ["id", "number", "state", "metric"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            header_row.extend(params.iter().map(|p| p.to_string()));
            header_row.extend(summary_keys.iter().map(|k| format!("summary.{k}")));
            header_row.extend(
                [
                    "exit_code",
                    "host",
                    "started_ms",
                    "finished_ms",
                    "duration_s",
                ]
                .iter()
                .map(|s| s.to_string()),
            );
            push_row(&mut out, &header_row);
            for r in &runs {
                let mut row = vec![
                    r.id.clone(),
                    r.number.map(|n| n.to_string()).unwrap_or_default(),
                    r.state.to_string(),
                    r.metric.map(|m| m.to_string()).unwrap_or_default(),
                ];
                row.extend(params.iter().map(|p| cell(r.params.get(*p))));
                row.extend(summary_keys.iter().map(|k| cell(r.summary.get(k))));
                row.push(r.exit_code.map(|c| c.to_string()).unwrap_or_default());
                row.push(r.host.clone().unwrap_or_default());
                row.push(r.started_ms.map(|t| t.to_string()).unwrap_or_default());
                row.push(r.finished_ms.map(|t| t.to_string()).unwrap_or_default());
                row.push(
                    duration(r.started_ms, r.finished_ms)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                );
                push_row(&mut out, &row);
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
        }
        other => Err(ApiError::bad_request(format!(
            "unknown export format `{other}`; use csv or json"
        ))),
    }
}

fn duration(start: Option<i64>, end: Option<i64>) -> Option<f64> {
    Some((end? - start?) as f64 / 1000.0)
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn push_row(out: &mut String, cells: &[String]) {
    let escaped: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    out.push_str(&escaped.join(","));
    out.push_str("\r\n");
}
