//! Dashboard reads that stay fast at scale: sweep points (params + metric per run, columnar),
//! downsampled run history, the whole history as columns (for clients reading it all), a
//! sortable and filterable page of runs, and sweep notes.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use hyperdial_space::Distribution;
use hyperdial_store::{
    RunCondition, RunField, RunQuery, SeriesPoint, SeriesSample, MAX_NOTES_BYTES,
};
use hyperdial_wire::api::{
    Axis, ByName, HistoryColumns, Notes, NotesRequest, PackedHistory, PointColumns, RunHistory,
    RunsPage, Series, SeriesByName, SweepPoints,
};
use hyperdial_wire::RunState;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::importance::kind_of;
use super::query::{self, Param, QueryParams};
use super::{paged, views, ApiResult, Body, Params};
use crate::error::ApiError;
use crate::AppState;

/// Default and largest `max_points` of a history answer.
pub const DEFAULT_MAX_POINTS: usize = 1000;
const LARGEST_MAX_POINTS: usize = 100_000;
/// Smallest `max_points` of a history answer.
const SMALLEST_MAX_POINTS: usize = 10;
/// Most series in one history answer.
pub const MAX_SERIES: usize = 64;
/// Most `range=` and `in=` filters in one runs query.
pub const MAX_FILTERS: usize = 64;
/// Most values of one `in=` filter.
pub const MAX_IN_VALUES: usize = 1000;
/// Most values of all `in=` filters of one runs query together.
pub const MAX_FILTER_VALUES: usize = 4096;
/// Longest metric name asked for in `keys=`, in bytes (as for metric names logged).
const MAX_KEY_BYTES: usize = 256;

/// `GET /api/v1/sweeps/{id}/points`: one entry per run, column by column.
pub(crate) async fn points(
    State(s): State<AppState>,
    Path(id): Path<String>,
    _: Params<query::NoQuery>,
) -> ApiResult {
    let c = &s.controller;
    let store = c.store();
    let sweep = c.sweep(&id).await?;
    let config = c.config(&sweep)?;
    let rows = store.sweep_points(&id).await?;
    let mut axes = Vec::new();
    let mut columns: Map<String, Value> = Map::new();
    for p in &config.parameters {
        if matches!(p.distribution, Distribution::Constant { .. }) {
            continue;
        }
        let values = match &p.distribution {
            Distribution::Categorical { values }
            | Distribution::CategoricalWithProbabilities { values, .. } => Some(
                values
                    .iter()
                    .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
                    .collect(),
            ),
            _ => None,
        };
        let bounds = p.distribution.value_bounds();
        axes.push(Axis {
            name: p.name.clone(),
            kind: kind_of(&p.distribution),
            values,
            min: bounds.map(|b| b.0),
            max: bounds.map(|b| b.1),
            distribution: p.distribution.name().to_string(),
        });
        let col: Vec<Value> = rows
            .iter()
            .map(|r| r.params.get(&p.name).cloned().unwrap_or(Value::Null))
            .collect();
        columns.insert(p.name.clone(), Value::Array(col));
    }
    let runtime = |r: &hyperdial_store::RunPoint| match (r.started_ms, r.finished_ms) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(Json(SweepPoints {
        sweep: id,
        metric: views::metric_ref(&sweep),
        axes,
        count: rows.len() as u64,
        runs: PointColumns {
            id: rows.iter().map(|r| r.id.clone()).collect(),
            number: rows.iter().map(|r| r.number).collect(),
            state: rows.iter().map(|r| r.state).collect(),
            metric: rows.iter().map(|r| r.metric).collect(),
            created_ms: rows.iter().map(|r| r.created_ms).collect(),
            finished_ms: rows.iter().map(|r| r.finished_ms).collect(),
            runtime_ms: rows.iter().map(runtime).collect(),
            params: columns,
        },
    })
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    keys: Option<String>,
    max_points: Option<i64>,
    /// Only points with a step above this one (a live page asks for what it lacks).
    after_step: Option<i64>,
}

impl QueryParams for HistoryQuery {
    const PARAMS: &'static [Param] = &[
        Param {
            name: "keys",
            form: "a comma list of metric names (default every metric, at most 64)",
        },
        Param {
            name: "max_points",
            form: "an integer from 10 to 100000, the most points per metric (default 1000)",
        },
        Param {
            name: "after_step",
            form: "an integer, a step (only the points above it)",
        },
    ];

    fn check(&self) -> Result<(), ApiError> {
        match self.max_points {
            Some(n) if !(SMALLEST_MAX_POINTS as i64..=LARGEST_MAX_POINTS as i64).contains(&n) => {
                Err(query::invalid(
                    query::param::<Self>("max_points"),
                    &n.to_string(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// At most `max` (at least 2) of `points` (sorted by step), evenly spaced by index, the first
/// and the last always kept; `points` whole when it holds at most `max`.
fn thin_evenly(points: Vec<SeriesPoint>, max: usize) -> Vec<SeriesPoint> {
    let n = points.len();
    let max = max.max(2);
    if n <= max {
        return points;
    }
    (0..max).map(|i| points[i * (n - 1) / (max - 1)]).collect()
}

/// `GET /api/v1/runs/{id}/history?keys=a,b&max_points=N&after_step=S`: each metric as columns,
/// downsampled; with `after_step`, only the points whose step is above `S` (`total` then counts
/// those), so a page that shows a run live fetches only the points it lacks.
pub(crate) async fn history(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<HistoryQuery>,
) -> ApiResult {
    let store = s.controller.store();
    let run = store
        .run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &id))?;
    let names = store.metric_names(&id).await?;
    let wanted: Vec<String> = match q.keys.as_deref().filter(|k| !k.is_empty()) {
        Some(keys) => keys
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        None => names.clone(),
    };
    // A key asked twice is answered once, where it was first asked.
    let mut asked = std::collections::HashSet::with_capacity(wanted.len());
    let wanted: Vec<String> = wanted
        .into_iter()
        .filter(|k| asked.insert(k.clone()))
        .collect();
    if wanted.len() > MAX_SERIES {
        let asked_for = q.keys.as_deref().is_some_and(|k| !k.is_empty());
        return Err(ApiError::bad_request(if asked_for {
            format!(
                "query parameter `keys`: {} keys asked; ask for at most {MAX_SERIES} at once",
                wanted.len()
            )
        } else {
            format!(
                "run {id} logged {} metrics, more than the {MAX_SERIES} one downsampled answer \
                 holds: name at most {MAX_SERIES} of them with `keys=a,b,...`, or read every \
                 metric from GET /api/v1/runs/{id}/history/columns (its `keys` lists them)",
                wanted.len()
            )
        }));
    }
    if let Some(long) = wanted.iter().find(|k| k.len() > MAX_KEY_BYTES) {
        return Err(ApiError::bad_request(format!(
            "query parameter `keys`: `{}…` is longer than {MAX_KEY_BYTES} bytes, the longest metric name",
            long.chars().take(32).collect::<String>()
        )));
    }
    // In range: `HistoryQuery::check` refused any other.
    let max = q
        .max_points
        .map_or(DEFAULT_MAX_POINTS, |n| n as usize)
        .clamp(SMALLEST_MAX_POINTS, LARGEST_MAX_POINTS);
    // Only names asked for by `keys` can be unknown (without it, every name is the run's).
    let asked_keys = q
        .keys
        .as_deref()
        .is_some_and(|k| !k.is_empty())
        .then_some(&wanted[..]);
    let unknown = unknown_keys(&names, asked_keys);
    let mut series = Vec::with_capacity(wanted.len());
    for key in wanted.iter().cloned() {
        let sample = match q.after_step {
            // Only the points above `after_step` (a live page's catch-up: few points), read
            // from that step on, then evenly thinned to `max` if there are more.
            Some(after) => {
                let newer = store.series_after(&id, &key, after).await?;
                let total = newer.len() as u64;
                SeriesSample {
                    points: thin_evenly(newer, max),
                    total,
                }
            }
            // Evenly spaced by step when longer than `max`, read by seeks (see
            // `Storage::series_sample`), so the cost follows `max`, not the series' length.
            None => store.series_sample(&id, &key, max).await?,
        };
        let kept = &sample.points;
        let one = Series {
            step: kept.iter().map(|p| p.step).collect(),
            value: kept.iter().map(|p| p.value).collect(),
            time_ms: kept.iter().map(|p| p.time_ms).collect(),
            total: sample.total,
            downsampled: (kept.len() as u64) < sample.total,
        };
        series.push((key, one));
    }
    Ok(Json(RunHistory {
        run: id,
        sweep: run.sweep_id,
        unknown_keys: unknown,
        keys: names,
        max_points: max as u64,
        series: SeriesByName(series),
    })
    .into_response())
}

/// The names of `asked` (in order; none when `None`: every metric was asked for) that are
/// not among `names`, the run's metric names.
fn unknown_keys(names: &[String], asked: Option<&[String]>) -> Vec<String> {
    let Some(asked) = asked else {
        return Vec::new();
    };
    let known: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    asked
        .iter()
        .filter(|k| !known.contains(k.as_str()))
        .cloned()
        .collect()
}

/// Most values (steps × columns) in one answer of `GET /runs/{id}/history/columns` (and
/// `/history/packed`): about 20 MB of JSON at most; a longer history comes in pages.
pub const MAX_COLUMN_VALUES: usize = 1_000_000;
/// Most columns (metrics) in one answer of `GET /runs/{id}/history/columns`.
pub const MAX_COLUMNS: usize = 10_000;

/// The options of `GET /runs/{id}/history/columns`.
#[derive(Debug, Default, PartialEq)]
pub struct ColumnsQuery {
    /// The metrics asked for, each once, in the order asked; `None`: every metric.
    pub keys: Option<Vec<String>>,
    /// Only the steps above this one.
    pub after_step: Option<i64>,
    /// Most steps in the answer (at least 1).
    pub limit: Option<usize>,
}

/// The parameters of `GET /runs/{id}/history/columns` and `/history/packed`.
const COLUMNS_PARAMS: &[Param] = &[
    Param {
        name: "keys",
        form: "a comma list of metric names, repeatable (default every metric)",
    },
    Param {
        name: "after_step",
        form: "an integer, a step (only the steps above it)",
    },
    Param {
        name: "limit",
        form: "an integer, 1 or more: the most steps in the answer",
    },
];

/// Parse the query of `GET /runs/{id}/history/columns`: `keys=a,b` (repeatable), `after_step`
/// and `limit`; anything else, or a value that does not parse, is a `400` naming the
/// parameter, the value and its form (see [`query`]).
pub fn parse_columns_query(raw: &str) -> Result<ColumnsQuery, ApiError> {
    let mut q = ColumnsQuery::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let once = |seen: &mut std::collections::HashSet<String>| {
            if seen.insert(k.to_string()) {
                Ok(())
            } else {
                Err(query::twice(&k))
            }
        };
        match k.as_ref() {
            "keys" => {
                let keys = q.keys.get_or_insert_with(Vec::new);
                for key in v.split(',').filter(|k| !k.is_empty()) {
                    if key.len() > MAX_KEY_BYTES {
                        return Err(ApiError::bad_request(format!(
                            "query parameter `keys`: `{}…` is longer than {MAX_KEY_BYTES} bytes, the longest metric name",
                            key.chars().take(32).collect::<String>()
                        )));
                    }
                    if !keys.iter().any(|k| k == key) {
                        keys.push(key.to_string());
                    }
                    if keys.len() > MAX_COLUMNS {
                        return Err(ApiError::bad_request(format!(
                            "query parameter `keys`: ask for at most {MAX_COLUMNS} metrics at once"
                        )));
                    }
                }
            }
            "after_step" => {
                once(&mut seen)?;
                q.after_step = Some(
                    v.parse::<i64>()
                        .map_err(|_| query::invalid(&COLUMNS_PARAMS[1], &v))?,
                );
            }
            "limit" => {
                once(&mut seen)?;
                q.limit = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| query::invalid(&COLUMNS_PARAMS[2], &v))?,
                );
            }
            other => return Err(query::unknown(other, COLUMNS_PARAMS)),
        }
    }
    // `keys=` with nothing in it asks for every metric, as no `keys` does.
    if q.keys.as_ref().is_some_and(Vec::is_empty) {
        q.keys = None;
    }
    Ok(q)
}

/// What a columnar history answer holds, before it is written as lists or packed.
struct ColumnsRead {
    sweep: Option<String>,
    names: Vec<String>,
    wanted: Vec<String>,
    unknown: Vec<String>,
    read: hyperdial_store::HistoryColumns,
    limit: usize,
}

impl ColumnsRead {
    /// `non_finite` of the answer: the columns that have some, by name.
    fn non_finite(&self) -> std::collections::BTreeMap<String, Vec<u64>> {
        self.wanted
            .iter()
            .zip(&self.read.non_finite)
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(name, rows)| (name.clone(), rows.clone()))
            .collect()
    }

    fn next_after_step(&self) -> Option<i64> {
        if self.read.more {
            self.read.steps.last().copied()
        } else {
            None
        }
    }
}

/// The shared read of `/history/columns` and `/history/packed`: the options parsed, the run
/// found (`404` otherwise), at most [`MAX_COLUMN_VALUES`] values read.
async fn read_columns(s: &AppState, id: &str, raw: Option<&str>) -> Result<ColumnsRead, ApiError> {
    let q = parse_columns_query(raw.unwrap_or(""))?;
    let store = s.controller.store();
    let run = store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", id))?;
    let names = store.metric_names(id).await?;
    let unknown = unknown_keys(&names, q.keys.as_deref());
    let wanted = match q.keys {
        Some(keys) => keys,
        None if names.len() > MAX_COLUMNS => {
            return Err(ApiError::bad_request(format!(
                "the run logged {} metrics; ask for at most {MAX_COLUMNS} at once with `keys`",
                names.len()
            )))
        }
        None => names.clone(),
    };
    let cap = (MAX_COLUMN_VALUES / wanted.len().max(1)).max(1);
    let limit = q.limit.map_or(cap, |l| l.min(cap));
    let read = store
        .history_columns(id, &wanted, q.after_step, limit)
        .await?;
    Ok(ColumnsRead {
        sweep: run.sweep_id,
        names,
        wanted,
        unknown,
        read,
        limit,
    })
}

/// `GET /api/v1/runs/{id}/history/columns?keys=a,b&after_step=S&limit=N`: the run's history
/// as columns over the steps, every point of it (no downsampling), at most
/// [`MAX_COLUMN_VALUES`] values in one answer; a longer history comes in pages chained by
/// `next_after_step`. Each series is read through its key from `after_step` on, so a page
/// costs what it holds.
pub(crate) async fn history_columns(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let c = read_columns(&s, &id, raw.as_deref()).await?;
    let non_finite = c.non_finite();
    let next_after_step = c.next_after_step();
    Ok(Json(HistoryColumns {
        run: id,
        sweep: c.sweep,
        keys: c.names,
        unknown_keys: c.unknown,
        steps: c.read.steps,
        time_ms: c.read.time_ms,
        columns: ByName(c.wanted.into_iter().zip(c.read.columns).collect()),
        non_finite,
        limit: c.limit as u64,
        truncated: c.read.more,
        next_after_step,
    })
    .into_response())
}

/// Little-endian bytes of `values`, in base64 (standard alphabet, padded).
fn packed<T: Copy, const N: usize>(values: &[T], bytes: impl Fn(T) -> [u8; N]) -> String {
    use base64::Engine as _;
    let mut raw = Vec::with_capacity(values.len() * N);
    for &v in values {
        raw.extend_from_slice(&bytes(v));
    }
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// `GET /api/v1/runs/{id}/history/packed?keys=a,b&after_step=S&limit=N`: the answer of
/// [`history_columns`] with every list packed as little-endian binary numbers in base64 (a
/// missing or non-finite value is a NaN), for clients that decode it without parsing a
/// decimal number per value.
pub(crate) async fn history_packed(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let c = read_columns(&s, &id, raw.as_deref()).await?;
    let non_finite = c.non_finite();
    let next_after_step = c.next_after_step();
    let columns = c
        .wanted
        .into_iter()
        .zip(&c.read.columns)
        .map(|(name, column)| {
            (
                name,
                packed(column, |v| v.unwrap_or(f64::NAN).to_le_bytes()),
            )
        })
        .collect();
    Ok(Json(PackedHistory {
        run: id,
        sweep: c.sweep,
        keys: c.names,
        unknown_keys: c.unknown,
        count: c.read.steps.len() as u64,
        steps: packed(&c.read.steps, i64::to_le_bytes),
        time_ms: packed(&c.read.time_ms, i64::to_le_bytes),
        columns: ByName(columns),
        non_finite,
        limit: c.limit as u64,
        truncated: c.read.more,
        next_after_step,
    })
    .into_response())
}

/// `PUT /api/v1/sweeps/{id}/notes`: replace the sweep's markdown notes.
pub(crate) async fn put_notes(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<NotesRequest>,
) -> ApiResult {
    if body.notes.len() > MAX_NOTES_BYTES {
        return Err(ApiError::too_large(format!(
            "notes are {} bytes; keep them under {MAX_NOTES_BYTES}",
            body.notes.len()
        )));
    }
    if !s.controller.store().set_notes(&id, &body.notes).await? {
        return Err(ApiError::not_found("sweep", &id));
    }
    let notes = Notes {
        id,
        notes: body.notes,
    };
    s.controller
        .events
        .publish("sweep", Some(&notes.id), &notes);
    Ok(Json(notes).into_response())
}

/// The run fields a `/runs` query sorts and filters by.
const RUN_FIELDS: &str = "number, metric, state, created_ms, started_ms, finished_ms, \
                          runtime_ms, params.NAME or summary.NAME";

/// Most runs in one page of `GET /api/v1/runs`, and the default.
pub const MAX_RUNS_LIMIT: i64 = 100_000;
const DEFAULT_RUNS_LIMIT: i64 = 1000;

/// The parameters of `GET /api/v1/runs`.
const RUNS_PARAMS: &[Param] = &[
    Param {
        name: "sweep",
        form: "a sweep id",
    },
    Param {
        name: "project",
        form: "a project name",
    },
    Param {
        name: "state",
        form: "a comma list of run states (queued, running, finished, failed, crashed, \
               stopped_early, cancelled), repeatable",
    },
    Param {
        name: "limit",
        form: "an integer from 1 to 100000, the most runs in the page (default 1000)",
    },
    Param {
        name: "offset",
        form: "an integer, 0 or more: the runs to skip (default 0)",
    },
    Param {
        name: "sort",
        form: "a run field: number, metric, state, created_ms, started_ms, finished_ms, \
               runtime_ms, params.NAME or summary.NAME",
    },
    Param {
        name: "order",
        form: "`asc` or `desc`",
    },
    Param {
        name: "range",
        form: "FIELD:LO:HI (either bound may be empty), repeatable",
    },
    Param {
        name: "in",
        form: "FIELD:V1|V2|…, repeatable",
    },
];

/// The [`RUNS_PARAMS`] entry of `name`.
fn runs_param(name: &str) -> &'static Param {
    RUNS_PARAMS
        .iter()
        .find(|p| p.name == name)
        .unwrap_or(&RUNS_PARAMS[0])
}

/// The run field `s` names, in the value of parameter `what`.
fn field(s: &str, what: &str) -> Result<RunField, ApiError> {
    RunField::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "query parameter `{what}`: unknown run field `{}`; use {RUN_FIELDS}",
            s.chars().take(64).collect::<String>()
        ))
    })
}

fn bound(s: &str, what: &str) -> Result<Option<f64>, ApiError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .ok()
        .filter(|x| !x.is_nan())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "query parameter `{what}`: the bound `{}` is not a number; it takes {}",
                s.chars().take(64).collect::<String>(),
                runs_param(what).form
            ))
        })
}

/// Parse the query of `GET /api/v1/runs`; every mistake is a `400` naming the parameter,
/// the value and its form (see [`query`]). `limit` and `offset` are set (defaults 1000 and 0).
pub fn parse_runs_query(raw: &str) -> Result<RunQuery, ApiError> {
    let mut q = RunQuery::default();
    let int = |k: &str, v: &str, lo: i64, hi: i64| {
        v.parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| query::invalid(runs_param(k), v))
    };
    let mut in_values = 0usize;
    let mut seen = std::collections::HashSet::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let v = v.as_ref();
        let Some(param) = RUNS_PARAMS.iter().find(|p| p.name == k) else {
            return Err(query::unknown(&k, RUNS_PARAMS));
        };
        let repeatable = matches!(param.name, "state" | "range" | "in");
        if !repeatable && !seen.insert(param.name) {
            return Err(query::twice(param.name));
        }
        if k == "range" || k == "in" {
            // Checked before parsing, so a flood of filters costs nothing.
            if q.conditions.len() >= MAX_FILTERS {
                return Err(ApiError::bad_request(format!(
                    "at most {MAX_FILTERS} range/in filters in one query"
                )));
            }
        }
        match k.as_ref() {
            "sweep" => q.sweep = Some(v.to_string()),
            "project" => q.project = Some(v.to_string()),
            "state" => {
                // `state=` with no state is a mistake, not "every state" (leave it out).
                if v.split(',').all(|w| w.trim().is_empty()) {
                    return Err(query::invalid(runs_param("state"), v));
                }
                for word in v.split(',').filter(|s| !s.is_empty()) {
                    let Ok(state) = word.parse::<RunState>() else {
                        return Err(query::invalid(runs_param("state"), word));
                    };
                    if !q.states.contains(&state) {
                        q.states.push(state);
                    }
                }
            }
            "limit" => q.limit = Some(int("limit", v, 1, MAX_RUNS_LIMIT)?),
            "offset" => q.offset = Some(int("offset", v, 0, i64::MAX)?),
            "sort" => q.sort = Some(field(v, "sort")?),
            "order" => {
                q.descending = match v {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(query::invalid(runs_param("order"), v)),
                }
            }
            "range" => {
                // FIELD:LO:HI, the field may itself hold colons.
                let mut parts = v.rsplitn(3, ':');
                let (hi, lo, name) = match (parts.next(), parts.next(), parts.next()) {
                    (Some(hi), Some(lo), Some(name)) => (hi, lo, name),
                    _ => return Err(query::invalid(runs_param("range"), v)),
                };
                q.conditions.push(RunCondition::Range {
                    field: field(name, "range")?,
                    lo: bound(lo, "range")?,
                    hi: bound(hi, "range")?,
                });
            }
            "in" => {
                let Some((name, values)) = v.split_once(':') else {
                    return Err(query::invalid(runs_param("in"), v));
                };
                let values: Vec<String> = values.split('|').map(str::to_string).collect();
                if values.len() > MAX_IN_VALUES {
                    return Err(ApiError::bad_request(format!(
                        "`in={name}:…` lists {} values; one `in` filter takes at most {MAX_IN_VALUES}",
                        values.len()
                    )));
                }
                in_values += values.len();
                if in_values > MAX_FILTER_VALUES {
                    return Err(ApiError::bad_request(format!(
                        "the `in` filters list more than {MAX_FILTER_VALUES} values in all; \
                         narrow the query (a range filter takes one)"
                    )));
                }
                q.conditions.push(RunCondition::In {
                    field: field(name, "in")?,
                    values,
                });
            }
            other => return Err(query::unknown(other, RUNS_PARAMS)),
        }
    }
    q.limit.get_or_insert(DEFAULT_RUNS_LIMIT);
    q.offset.get_or_insert(0);
    Ok(q)
}

/// Refuse a `params.NAME` in the sort or a filter of a query on sweep `sweep` that names no
/// parameter of the sweep: a misspelt name would otherwise match no run, which reads as "no
/// such runs" (a `400` naming the parameter, the query parameter and the sweep's parameters).
/// A query without `params.` fields costs nothing; a config that no longer validates is not
/// checked against.
fn known_params(
    controller: &crate::controller::Controller,
    sweep: &hyperdial_store::SweepRow,
    q: &RunQuery,
) -> Result<(), ApiError> {
    let fields = q
        .sort
        .iter()
        .map(|f| ("sort", f))
        .chain(q.conditions.iter().map(|c| match c {
            RunCondition::Range { field, .. } => ("range", field),
            RunCondition::In { field, .. } => ("in", field),
        }));
    let named: Vec<(&str, &String)> = fields
        .filter_map(|(what, field)| match field {
            RunField::Param(name) => Some((what, name)),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let Ok(config) = controller.config(sweep) else {
        return Ok(());
    };
    let names: Vec<&str> = config.parameters.iter().map(|p| p.name.as_str()).collect();
    match named
        .iter()
        .find(|(_, name)| !names.contains(&name.as_str()))
    {
        None => Ok(()),
        Some((what, name)) => Err(ApiError::bad_request(format!(
            "query parameter `{what}`: sweep {} has no parameter `{}`; its parameters are {}",
            sweep.id,
            name.chars().take(64).collect::<String>(),
            names.join(", ")
        ))),
    }
}

/// `GET /api/v1/runs`: a sorted, filtered page of runs and how many match. A page longer than
/// [`paged::PAGE`] runs is sent while it is read, [`paged::PAGE`] runs at a time.
pub(crate) async fn list_runs(State(s): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = parse_runs_query(raw.as_deref().unwrap_or(""))?;
    if let Some(sweep) = &q.sweep {
        let row = query::existing_sweep(&s.controller, runs_param("sweep"), sweep).await?;
        known_params(&s.controller, &row, &q)?;
    }
    // Set and in range: `parse_runs_query` refused any other.
    let limit = q.limit.unwrap_or(DEFAULT_RUNS_LIMIT);
    let offset = q.offset.unwrap_or(0);
    let store = s.controller.store().clone();
    if limit <= paged::PAGE {
        let (rows, total) = store.runs_page(&q).await?;
        let runs = rows.iter().map(views::run).collect();
        return Ok(Json(RunsPage {
            runs,
            total,
            offset,
            limit,
        })
        .into_response());
    }
    let first = RunQuery {
        limit: Some(paged::PAGE.min(limit)),
        offset: Some(offset),
        ..q.clone()
    };
    let (rows, total) = store.runs_page(&first).await?;
    let pages = RunPages {
        store,
        query: q,
        head: Some(format!(
            "{{\"total\":{total},\"offset\":{offset},\"limit\":{limit},\"runs\":["
        )),
        rows: Some(rows),
        next: offset,
        end: offset.saturating_add(limit),
        sent: 0,
        done: false,
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        paged::body(pages),
    )
        .into_response())
}

/// The runs of a long listing, a page at a time (see [`paged`]).
struct RunPages {
    store: hyperdial_store::Store,
    query: RunQuery,
    /// The answer's opening, sent first.
    head: Option<String>,
    /// A page read but not sent yet.
    rows: Option<Vec<hyperdial_store::RunRow>>,
    /// Offset of the next page to read.
    next: i64,
    /// Offset after the last run to send.
    end: i64,
    /// Runs sent.
    sent: usize,
    done: bool,
}

impl paged::Pages for RunPages {
    fn next(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = paged::Chunk> + Send + '_>> {
        Box::pin(async move {
            if self.done {
                return Ok(None);
            }
            let mut out = self.head.take().map(String::into_bytes).unwrap_or_default();
            let rows = match self.rows.take() {
                Some(rows) => rows,
                None if self.next < self.end => {
                    let page = RunQuery {
                        limit: Some(paged::PAGE.min(self.end - self.next)),
                        offset: Some(self.next),
                        ..self.query.clone()
                    };
                    self.store.runs_page(&page).await?.0
                }
                None => Vec::new(),
            };
            self.next += rows.len() as i64;
            if (rows.len() as i64) < paged::PAGE || self.next >= self.end {
                self.end = self.next;
            }
            for r in &rows {
                if self.sent > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, &views::run(r))
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                self.sent += 1;
            }
            if self.next >= self.end {
                out.extend_from_slice(b"]}");
                self.done = true;
            }
            Ok(Some(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_query_caps_every_list() {
        let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join("|");
        assert!(parse_runs_query(&format!("in=params.lr:{}", values(MAX_IN_VALUES))).is_ok());
        let err =
            parse_runs_query(&format!("in=params.lr:{}", values(MAX_IN_VALUES + 1))).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message().contains("at most 1000"), "{}", err.message());
        let many = (0..5)
            .map(|_| format!("in=params.lr:{}", values(MAX_IN_VALUES)))
            .collect::<Vec<_>>()
            .join("&");
        let err = parse_runs_query(&many).unwrap_err();
        assert!(err.message().contains("4096"), "{}", err.message());
        let filters = (0..=MAX_FILTERS)
            .map(|_| "range=metric:0:1")
            .collect::<Vec<_>>()
            .join("&");
        let err = parse_runs_query(&filters).unwrap_err();
        assert!(err.message().contains("at most 64"), "{}", err.message());
    }

    #[test]
    fn runs_query_parses_filters() {
        let q = parse_runs_query(
            "sweep=s1&state=finished,failed&sort=params.lr&order=desc&range=params.lr:0.001:&in=params.opt:adam|sgd&limit=5",
        )
        .unwrap();
        assert_eq!(q.states, vec![RunState::Finished, RunState::Failed]);
        assert!(q.descending);
        assert_eq!(q.sort, Some(RunField::Param("lr".into())));
        assert_eq!(q.conditions.len(), 2);
        assert!(parse_runs_query("sort=bogus").is_err());
        // A state filter given without a state is refused, not read as "every state".
        for empty in ["state=", "state=,", "sweep=s1&state="] {
            let err = parse_runs_query(empty).unwrap_err();
            assert!(
                err.message().contains("query parameter `state`"),
                "{}",
                err.message()
            );
        }
        assert!(parse_runs_query("state=bogus").is_err());
        assert_eq!(
            parse_runs_query("state=finished,finished&state=failed")
                .unwrap()
                .states,
            vec![RunState::Finished, RunState::Failed]
        );
        assert!(parse_runs_query("range=metric:x:1").is_err());
    }
}
