//! Reads the dashboard needs at scale: a page of runs sorted and filtered by parameters,
//! summary values or the sweep metric; the compact per-run points of a sweep; one metric
//! series of a run; sweep notes; compute time.
//!
//! Sorting and filtering on JSON fields uses SQLite's `json_extract` (PostgreSQL would use
//! `->>`); everything else stays in the shared SQL dialect. JSON paths are always bound as
//! parameters, never spliced into the SQL text.

use serde_json::Value;
use sqlx::Row;

use crate::{Result, RunRow, Store, RUN_COLUMNS};

/// Largest sweep notes, in bytes.
pub const MAX_NOTES_BYTES: usize = 64 * 1024;

/// A field of a run to sort or filter by.
#[derive(Debug, Clone, PartialEq)]
pub enum RunField {
    /// Position in the sweep.
    Number,
    /// The sweep metric.
    Metric,
    /// Life-cycle state.
    State,
    /// Created time.
    Created,
    /// Started time.
    Started,
    /// Finished time.
    Finished,
    /// Run time (finished or last heartbeat minus started).
    Runtime,
    /// A flat parameter by dotted name.
    Param(String),
    /// A summary value by metric name.
    Summary(String),
}

impl RunField {
    /// Parse `number`, `metric`, `state`, `created_ms`, `started_ms`, `finished_ms`,
    /// `runtime_ms`, `params.NAME` or `summary.NAME`.
    pub fn parse(s: &str) -> Option<RunField> {
        let named = |name: &str| {
            (!name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control))
                .then(|| name.to_string())
        };
        Some(match s {
            "number" => RunField::Number,
            "metric" => RunField::Metric,
            "state" => RunField::State,
            "created_ms" | "created" => RunField::Created,
            "started_ms" | "started" => RunField::Started,
            "finished_ms" | "finished" => RunField::Finished,
            "runtime_ms" | "runtime" => RunField::Runtime,
            _ => {
                if let Some(name) = s.strip_prefix("params.") {
                    RunField::Param(named(name)?)
                } else if let Some(name) = s.strip_prefix("summary.") {
                    RunField::Summary(named(name)?)
                } else {
                    return None;
                }
            }
        })
    }
}

/// A value bound into a query.
#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    Real(f64),
}

/// JSON path `$."name"` with the name escaped for SQLite's path syntax.
fn json_path(name: &str) -> String {
    format!("$.\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One condition on a run field.
#[derive(Debug, Clone)]
pub enum RunCondition {
    /// `lo <= field <= hi` (either bound optional); rows without the field fail.
    Range {
        /// The field.
        field: RunField,
        /// Lowest accepted.
        lo: Option<f64>,
        /// Highest accepted.
        hi: Option<f64>,
    },
    /// The field equals one of these (numbers compare as numbers, `true`/`false` as 1/0).
    /// Each value is one SQL parameter: callers cap the count (SQLite allows 32 766
    /// parameters in one statement).
    In {
        /// The field.
        field: RunField,
        /// Accepted values as written.
        values: Vec<String>,
    },
}

/// A page of runs.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    /// Only runs of this sweep.
    pub sweep: Option<String>,
    /// Only runs of this project.
    pub project: Option<String>,
    /// Only runs in one of these states (empty: any).
    pub states: Vec<String>,
    /// Further conditions, all of which must hold.
    pub conditions: Vec<RunCondition>,
    /// Sort field (default: number).
    pub sort: Option<RunField>,
    /// Descending.
    pub descending: bool,
    /// Page size (default 1000, at most 100 000).
    pub limit: Option<i64>,
    /// Page start.
    pub offset: Option<i64>,
}

/// What the sweep charts need of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPoint {
    /// Run id.
    pub id: String,
    /// Position in the sweep.
    pub number: Option<i64>,
    /// State.
    pub state: String,
    /// Flat parameters.
    pub params: Value,
    /// The sweep metric.
    pub metric: Option<f64>,
    /// Created.
    pub created_ms: i64,
    /// Started.
    pub started_ms: Option<i64>,
    /// Finished.
    pub finished_ms: Option<i64>,
}

/// One point of a metric series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// Step.
    pub step: i64,
    /// Value (`None` for NaN).
    pub value: Option<f64>,
    /// Wall time.
    pub time_ms: i64,
}

/// Builds the SQL expression for a field, pushing its binds.
struct Sql {
    binds: Vec<Bind>,
}

impl Sql {
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    fn field(&mut self, f: &RunField) -> String {
        match f {
            RunField::Number => "r.number".into(),
            RunField::Metric => "r.metric".into(),
            RunField::State => "r.state".into(),
            RunField::Created => "r.created_ms".into(),
            RunField::Started => "r.started_ms".into(),
            RunField::Finished => "r.finished_ms".into(),
            RunField::Runtime => {
                "(COALESCE(r.finished_ms, r.heartbeat_ms, r.started_ms) - r.started_ms)".into()
            }
            RunField::Param(name) => {
                let p = self.bind(Bind::Text(json_path(name)));
                format!("json_extract(r.params, {p})")
            }
            RunField::Summary(name) => {
                let p = self.bind(Bind::Text(json_path(name)));
                format!("COALESCE(json_extract(r.user_summary, {p}), json_extract(r.summary, {p}))")
            }
        }
    }
}

impl Store {
    /// A page of runs matching `q`, sorted as asked (missing values last), and the number of
    /// runs matching.
    pub async fn runs_page(&self, q: &RunQuery) -> Result<(Vec<RunRow>, i64)> {
        let mut sql = Sql { binds: Vec::new() };
        let mut conds: Vec<String> = Vec::new();
        if let Some(s) = &q.sweep {
            let p = sql.bind(Bind::Text(s.clone()));
            conds.push(format!("r.sweep_id = {p}"));
        }
        if let Some(s) = &q.project {
            let p = sql.bind(Bind::Text(s.clone()));
            conds.push(format!("p.name = {p}"));
        }
        if !q.states.is_empty() {
            let ps: Vec<String> = q
                .states
                .iter()
                .map(|s| sql.bind(Bind::Text(s.clone())))
                .collect();
            conds.push(format!("r.state IN ({})", ps.join(", ")));
        }
        for c in &q.conditions {
            match c {
                RunCondition::Range { field, lo, hi } => {
                    let x = sql.field(field);
                    let mut parts = vec![format!("{x} IS NOT NULL")];
                    if let Some(lo) = lo {
                        let p = sql.bind(Bind::Real(*lo));
                        parts.push(format!("{x} >= {p}"));
                    }
                    if let Some(hi) = hi {
                        let p = sql.bind(Bind::Real(*hi));
                        parts.push(format!("{x} <= {p}"));
                    }
                    conds.push(format!("({})", parts.join(" AND ")));
                }
                RunCondition::In { field, values } => {
                    // One flat `IN` list: a chain of `OR`s would hit SQLite's expression depth
                    // limit (1000) on long lists.
                    let x = sql.field(field);
                    let mut alts = Vec::new();
                    for v in values {
                        let b = match v.as_str() {
                            "true" => Bind::Real(1.0),
                            "false" => Bind::Real(0.0),
                            _ => match v.parse::<f64>() {
                                Ok(n) if n.is_finite() => Bind::Real(n),
                                _ => Bind::Text(v.clone()),
                            },
                        };
                        alts.push(sql.bind(b));
                    }
                    if alts.is_empty() {
                        conds.push("0 = 1".into());
                    } else {
                        conds.push(format!("{x} IN ({})", alts.join(", ")));
                    }
                }
            }
        }
        let condition = if conds.is_empty() {
            "1 = 1".to_string()
        } else {
            conds.join(" AND ")
        };
        let count_binds = sql.binds.clone();
        let order = if q.descending { "DESC" } else { "ASC" };
        let sort = match &q.sort {
            None | Some(RunField::Number) => format!("r.number {order}, r.created_ms {order}"),
            Some(f) => {
                let x = sql.field(f);
                format!("({x} IS NULL), {x} {order}, r.number")
            }
        };
        let limit = sql.bind(Bind::Real(0.0));
        let offset = sql.bind(Bind::Real(0.0));
        let select = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition} \
             ORDER BY {sort}, r.id LIMIT {limit} OFFSET {offset}"
        );
        let n = sql.binds.len();
        let mut query = sqlx::query_as::<_, RunRow>(&select);
        for b in &sql.binds[..n - 2] {
            query = match b {
                Bind::Text(t) => query.bind(t.clone()),
                Bind::Real(x) => query.bind(*x),
            };
        }
        let rows = query
            .bind(q.limit.unwrap_or(1000).clamp(1, 100_000))
            .bind(q.offset.unwrap_or(0).max(0))
            .fetch_all(&self.reader)
            .await?;
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition}"
        );
        let mut count = sqlx::query(&count_sql);
        for b in &count_binds {
            count = match b {
                Bind::Text(t) => count.bind(t.clone()),
                Bind::Real(x) => count.bind(*x),
            };
        }
        let total: i64 = count.fetch_one(&self.reader).await?.try_get("n")?;
        Ok((rows, total))
    }

    /// Every run of a sweep with what the sweep charts need, by run number.
    pub async fn sweep_points(&self, sweep_id: &str) -> Result<Vec<RunPoint>> {
        let rows = sqlx::query(
            "SELECT id, number, state, params, metric, created_ms, started_ms, finished_ms \
             FROM runs WHERE sweep_id = $1 ORDER BY number",
        )
        .bind(sweep_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let params: String = r.try_get("params")?;
                Ok(RunPoint {
                    id: r.try_get("id")?,
                    number: r.try_get("number")?,
                    state: r.try_get("state")?,
                    params: serde_json::from_str(&params).unwrap_or(Value::Null),
                    metric: r.try_get("metric")?,
                    created_ms: r.try_get("created_ms")?,
                    started_ms: r.try_get("started_ms")?,
                    finished_ms: r.try_get("finished_ms")?,
                })
            })
            .collect()
    }

    /// A cheap fingerprint of a sweep's ended runs: how many ended with the metric and when
    /// the last ended. It changes exactly when a run with the metric ends.
    pub async fn finished_fingerprint(&self, sweep_id: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(finished_ms), 0) AS last FROM runs \
             WHERE sweep_id = $1 AND metric IS NOT NULL AND state NOT IN ('running', 'queued')",
        )
        .bind(sweep_id)
        .fetch_one(&self.reader)
        .await?;
        Ok((row.try_get("n")?, row.try_get("last")?))
    }

    /// Names of the metrics a run has logged, sorted.
    pub async fn metric_names(&self, run_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT name FROM metrics WHERE run_id = $1 ORDER BY name")
            .bind(run_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").map_err(Into::into))
            .collect()
    }

    /// One metric of a run, by step.
    pub async fn series(&self, run_id: &str, name: &str) -> Result<Vec<SeriesPoint>> {
        let rows = sqlx::query(
            "SELECT step, value, time_ms FROM metrics WHERE run_id = $1 AND name = $2 ORDER BY step",
        )
        .bind(run_id)
        .bind(name)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SeriesPoint {
                    step: r.try_get("step")?,
                    value: r.try_get("value")?,
                    time_ms: r.try_get("time_ms")?,
                })
            })
            .collect()
    }

    /// Replace a sweep's notes. Returns whether the sweep exists.
    pub async fn set_notes(&self, sweep_id: &str, notes: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE sweeps SET notes = $2 WHERE id = $1")
            .bind(sweep_id)
            .bind(notes)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Total run time of a sweep's runs in milliseconds (running runs up to their last sign of
    /// life).
    pub async fn compute_ms(&self, sweep_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(COALESCE(finished_ms, heartbeat_ms, started_ms) - started_ms), 0) AS ms \
             FROM runs WHERE sweep_id = $1 AND started_ms IS NOT NULL",
        )
        .bind(sweep_id)
        .fetch_one(&self.reader)
        .await?;
        Ok(row.try_get("ms")?)
    }
}
