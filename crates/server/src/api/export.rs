//! `GET /api/v1/sweeps/{id}/export?format=csv|json`: every run of a sweep, one row each, sent
//! while it is read, a page of runs at a time (see [`super::paged`]); at most 100,000 runs.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;

use hyperdial_store::{RunFilter, RunRow};
use hyperdial_wire::api::ExportRow;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{paged, Param, Params, QueryParams};
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    format: Option<Format>,
}

impl QueryParams for ExportQuery {
    const PARAMS: &'static [Param] = &[Param {
        name: "format",
        form: "`json` (the default) or `csv`",
    }];
}

/// Most runs an export holds.
const MAX_EXPORT_RUNS: i64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    Csv,
    Json,
}

pub(super) async fn export(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<ExportQuery>,
) -> Result<Response, ApiError> {
    let c = &s.controller;
    let sweep = c.sweep(&id).await?;
    let config = c.config(&sweep)?;
    let format = q.format.unwrap_or(Format::Json);
    let store = c.store().clone();
    let params: Vec<String> = config.parameters.iter().map(|p| p.name.clone()).collect();
    // The first page is read now, so a failure gets its status; the rest while sending.
    let first = store.runs(&page_filter(&id, 0)).await?.0;
    let mut summary_keys = Vec::new();
    let mut config_keys = Vec::new();
    if format == Format::Csv {
        // The header names every summary key and config key of the script's own: a first
        // pass over the pages collects them.
        let mut keys = std::collections::BTreeSet::new();
        let mut own = std::collections::BTreeSet::new();
        let mut offset = 0;
        let mut page = first.clone();
        loop {
            keys.extend(page.iter().flat_map(|r| r.summary.keys().cloned()));
            for r in &page {
                own.extend(own_config(r, &params).into_iter().map(|(k, _)| k));
            }
            offset += page.len() as i64;
            if (page.len() as i64) < paged::PAGE || offset >= MAX_EXPORT_RUNS {
                break;
            }
            page = store.runs(&page_filter(&id, offset)).await?.0;
        }
        summary_keys = keys.into_iter().collect();
        config_keys = own.into_iter().collect();
    }
    let pages = ExportPages {
        store,
        sweep: id,
        format,
        params,
        summary_keys,
        config_keys,
        rows: Some(first),
        offset: 0,
        started: false,
        done: false,
    };
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json => "application/json",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], paged::body(pages)).into_response())
}

/// The runs of a sweep from `offset`, one page, by number.
fn page_filter(sweep: &str, offset: i64) -> RunFilter {
    RunFilter {
        sweep: Some(sweep.to_string()),
        limit: Some(paged::PAGE.min(MAX_EXPORT_RUNS - offset).max(1)),
        offset: Some(offset),
        ..Default::default()
    }
}

/// An export, a page of runs at a time (see [`paged`]).
struct ExportPages {
    store: hyperdial_store::Store,
    sweep: String,
    format: Format,
    params: Vec<String>,
    summary_keys: Vec<String>,
    /// The CSV's `config.*` columns ([`own_config`] of every run).
    config_keys: Vec<String>,
    /// A page read but not sent yet.
    rows: Option<Vec<RunRow>>,
    /// Runs read so far.
    offset: i64,
    started: bool,
    done: bool,
}

impl paged::Pages for ExportPages {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = paged::Chunk> + Send + '_>> {
        Box::pin(async move {
            if self.done {
                return Ok(None);
            }
            let mut out = String::new();
            if !self.started {
                self.started = true;
                match self.format {
                    Format::Json => {
                        out.push_str("{\"sweep\":");
                        out.push_str(&Value::String(self.sweep.clone()).to_string());
                        out.push_str(",\"runs\":[");
                    }
                    Format::Csv => push_row(&mut out, &self.header()),
                }
            }
            let rows = match self.rows.take() {
                Some(rows) => rows,
                None => {
                    self.store
                        .runs(&page_filter(&self.sweep, self.offset))
                        .await?
                        .0
                }
            };
            let first_page = self.offset == 0;
            self.offset += rows.len() as i64;
            for (i, r) in rows.iter().enumerate() {
                match self.format {
                    Format::Json => {
                        if !(first_page && i == 0) {
                            out.push(',');
                        }
                        let row =
                            serde_json::to_string(&export_row(r, &self.params)).map_err(|e| {
                                ApiError::new(
                                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                                    e.to_string(),
                                )
                            })?;
                        out.push_str(&row);
                    }
                    Format::Csv => push_row(&mut out, &self.csv_row(r)),
                }
            }
            if (rows.len() as i64) < paged::PAGE || self.offset >= MAX_EXPORT_RUNS {
                if self.format == Format::Json {
                    out.push_str("]}");
                }
                self.done = true;
            }
            Ok(Some(out.into_bytes()))
        })
    }
}

/// The CSV's columns before the parameters'.
const FRONT_COLUMNS: [&str; 5] = ["id", "number", "name", "state", "metric"];

/// The CSV's columns after the summary's.
const BACK_COLUMNS: [&str; 6] = [
    "exit_code",
    "error",
    "host",
    "started_ms",
    "finished_ms",
    "duration_s",
];

impl ExportPages {
    fn header(&self) -> Vec<String> {
        let config: Vec<String> = self
            .config_keys
            .iter()
            .map(|k| format!("config.{k}"))
            .collect();
        let summary: Vec<String> = self
            .summary_keys
            .iter()
            .map(|k| format!("summary.{k}"))
            .collect();
        // A parameter named as another column (`id`, `state`, `summary.loss` beside the
        // summary's `loss`) is `params.NAME`, so that every column has a name of its own
        // (a CSV reader keys a row by its header).
        let taken = |name: &str| {
            FRONT_COLUMNS.contains(&name)
                || BACK_COLUMNS.contains(&name)
                || config.iter().chain(&summary).any(|c| c == name)
                || name.starts_with("params.")
        };
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if taken(p) {
                    format!("params.{p}")
                } else {
                    p.clone()
                }
            })
            .collect();
        FRONT_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .chain(params)
            .chain(config)
            .chain(summary)
            .chain(BACK_COLUMNS.iter().map(|s| s.to_string()))
            .collect()
    }

    fn csv_row(&self, r: &RunRow) -> Vec<String> {
        let mut row = vec![
            text(&r.id),
            r.number.map(|n| n.to_string()).unwrap_or_default(),
            r.name.as_deref().map(text).unwrap_or_default(),
            r.state.to_string(),
            r.metric.map(|m| m.to_string()).unwrap_or_default(),
        ];
        row.extend(self.params.iter().map(|p| cell(r.params.get(p))));
        let own = own_config(r, &self.params);
        row.extend(self.config_keys.iter().map(|k| cell(own.get(k))));
        row.extend(self.summary_keys.iter().map(|k| cell(r.summary.get(k))));
        row.push(r.exit_code.map(|c| c.to_string()).unwrap_or_default());
        // Why the run ended as it did: its error, or the reason it was stopped early.
        row.push(r.error.as_deref().map(text).unwrap_or_default());
        row.push(r.host.as_deref().map(text).unwrap_or_default());
        row.push(r.started_ms.map(|t| t.to_string()).unwrap_or_default());
        row.push(r.finished_ms.map(|t| t.to_string()).unwrap_or_default());
        row.push(
            duration(r.started_ms, r.finished_ms)
                .map(|d| d.to_string())
                .unwrap_or_default(),
        );
        row
    }
}

/// The run's config by dotted name, less the sweep's parameters `params`: what the script
/// set itself.
fn own_config(r: &RunRow, params: &[String]) -> Map<String, Value> {
    let mut flat = Map::new();
    super::views::flatten("", &r.config, &mut flat);
    flat.retain(|k, _| !params.iter().any(|p| p == k));
    flat
}

fn export_row(r: &RunRow, params: &[String]) -> ExportRow {
    ExportRow {
        id: r.id.clone(),
        number: r.number,
        state: r.state,
        name: r.name.clone(),
        metric: r.metric,
        params: super::views::object(&r.params),
        config: own_config(r, params),
        summary: r.summary.clone(),
        exit_code: r.exit_code,
        error: r.error.clone(),
        host: r.host.clone(),
        started_ms: r.started_ms,
        finished_ms: r.finished_ms,
        duration_s: duration(r.started_ms, r.finished_ms),
        retry_of: r.retry_of.clone(),
        attempt: r.attempt,
    }
}

fn duration(start: Option<i64>, end: Option<i64>) -> Option<f64> {
    Some((end? - start?) as f64 / 1000.0)
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => text(s),
        Some(other) => other.to_string(),
    }
}

/// A text cell, kept from being read as a formula by a spreadsheet: text starting with `=`,
/// `+`, `-`, `@`, a tab or a carriage return gets a leading `'` (OWASP's advice against CSV
/// injection: a run name or a logged string such as `=HYPERLINK(...)` would otherwise run
/// when the file is opened in Excel or LibreOffice). Numbers are never text cells, so a
/// negative metric stays a number; only such strings read back with the `'`.
fn text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
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
