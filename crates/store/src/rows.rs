//! Row types, decoded from SQL and serialized for the API.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row};

fn json(row: &SqliteRow, column: &str) -> Result<Value, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    Ok(match text {
        Some(t) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        None => Value::Null,
    })
}

/// A sweep as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Id.
    pub id: String,
    /// Project name.
    pub project: String,
    /// Display name.
    pub name: Option<String>,
    /// Search method.
    pub method: String,
    /// `running`, `paused`, `finished` or `cancelled`.
    pub state: String,
    /// The config as written.
    pub source: String,
    /// The file it came from.
    pub source_file: Option<String>,
    /// Hash of the validated config.
    pub config_hash: String,
    /// The sweep's seed.
    pub seed: i64,
    /// Number the next run gets.
    pub next_number: i64,
    /// The metric name.
    pub metric_name: Option<String>,
    /// `minimize` or `maximize`.
    pub goal: Option<String>,
    /// Markdown notes.
    pub notes: String,
    /// Reopened by a retry after it finished: it hands out its queued retries, then finishes
    /// again without asking the search for new runs.
    pub retries_only: bool,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
}

impl FromRow<'_, SqliteRow> for SweepRow {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(SweepRow {
            id: row.try_get("id")?,
            project: row.try_get("project")?,
            name: row.try_get("name")?,
            method: row.try_get("method")?,
            state: row.try_get("state")?,
            source: row.try_get("source")?,
            source_file: row.try_get("source_file")?,
            config_hash: row.try_get("config_hash")?,
            seed: row.try_get("seed")?,
            next_number: row.try_get("next_number")?,
            metric_name: row.try_get("metric_name")?,
            goal: row.try_get("goal")?,
            notes: row.try_get("notes")?,
            retries_only: row.try_get("retries_only")?,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
        })
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Id.
    pub id: String,
    /// Its sweep, if any.
    pub sweep_id: Option<String>,
    /// Project name.
    pub project: String,
    /// Position in the sweep.
    pub number: Option<i64>,
    /// Display name.
    pub name: Option<String>,
    /// Life-cycle state.
    pub state: String,
    /// Flat parameters.
    pub params: Value,
    /// Nested config.
    pub config: Value,
    /// How the configuration was chosen.
    pub suggestion: Value,
    /// Grid position.
    pub grid_index: Option<i64>,
    /// Agent running it.
    pub agent_id: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Command line.
    pub argv: Value,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The sweep metric (best of the history).
    pub metric: Option<f64>,
    /// Last value of every metric, overlaid by explicit summary values.
    pub summary: Map<String, Value>,
    /// Next automatic step.
    pub next_step: i64,
    /// Git commit.
    pub git_commit: Option<String>,
    /// Uncommitted changes at start.
    pub git_dirty: Option<bool>,
    /// Asked to stop.
    pub stop_requested: bool,
    /// Why.
    pub stop_reason: Option<String>,
    /// Details of an early-termination stop: rule, rung, value, threshold.
    pub stop_info: Value,
    /// Created.
    pub created_ms: i64,
    /// Started.
    pub started_ms: Option<i64>,
    /// Last sign of life.
    pub heartbeat_ms: Option<i64>,
    /// Ended.
    pub finished_ms: Option<i64>,
    /// The run this one retries (same configuration), if it is a retry.
    pub retry_of: Option<String>,
    /// Attempt number of its configuration: 1 for a first run, 2 for its first retry, ...
    pub attempt: i64,
    /// Metric points reported undelivered, and recovered since; `None` when none were.
    pub delivery: Option<Delivery>,
}

/// Most spill files named in one run's [`Delivery`].
pub const MAX_DELIVERY_FILES: usize = 16;

/// What a run's clients reported they could not deliver (see `Store::add_delivery`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Delivery {
    /// Metric points reported missing, in total (each a step's values of one request).
    #[serde(default)]
    pub missing: u64,
    /// Of those, points uploaded later (`hyperdial sync`).
    #[serde(default)]
    pub recovered: u64,
    /// Local files holding the missing points, as `host:path`.
    #[serde(default)]
    pub files: Vec<String>,
}

impl Delivery {
    /// Points still missing: reported missing and not recovered.
    pub fn outstanding(&self) -> u64 {
        self.missing.saturating_sub(self.recovered)
    }
}

impl FromRow<'_, SqliteRow> for RunRow {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        let mut summary = match json(row, "summary")? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Value::Object(user) = json(row, "user_summary")? {
            summary.extend(user);
        }
        Ok(RunRow {
            id: row.try_get("id")?,
            sweep_id: row.try_get("sweep_id")?,
            project: row.try_get("project")?,
            number: row.try_get("number")?,
            name: row.try_get("name")?,
            state: row.try_get("state")?,
            params: json(row, "params")?,
            config: json(row, "config")?,
            suggestion: json(row, "suggestion")?,
            grid_index: row.try_get("grid_index")?,
            agent_id: row.try_get("agent_id")?,
            host: row.try_get("host")?,
            argv: json(row, "argv")?,
            exit_code: row.try_get("exit_code")?,
            error: row.try_get("error")?,
            metric: row.try_get("metric")?,
            summary,
            next_step: row.try_get("next_step")?,
            git_commit: row.try_get("git_commit")?,
            git_dirty: row.try_get("git_dirty")?,
            stop_requested: row.try_get("stop_requested")?,
            stop_reason: row.try_get("stop_reason")?,
            stop_info: json(row, "stop_info")?,
            created_ms: row.try_get("created_ms")?,
            started_ms: row.try_get("started_ms")?,
            heartbeat_ms: row.try_get("heartbeat_ms")?,
            finished_ms: row.try_get("finished_ms")?,
            retry_of: row.try_get("retry_of")?,
            attempt: row.try_get("attempt")?,
            delivery: row
                .try_get::<Option<String>, _>("delivery")?
                .and_then(|t| serde_json::from_str(&t).ok()),
        })
    }
}

/// What a strategy sees of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    /// The run's id.
    pub id: String,
    /// The run it retries, if any.
    pub retry_of: Option<String>,
    /// Attempt number of its configuration (1 for a first run).
    pub attempt: i64,
    /// Flat parameters.
    pub params: Value,
    /// Grid position.
    pub grid_index: Option<i64>,
    /// The sweep metric: best finite value of the history and the explicit summary.
    pub metric: Option<f64>,
    /// Life-cycle state.
    pub state: String,
    /// Last logged value of every metric.
    pub summary: Value,
    /// Values set explicitly in the summary.
    pub user_summary: Value,
    /// Why the run ended badly, if it did (as `RunRow::error`).
    pub error: Option<String>,
}

impl FromRow<'_, SqliteRow> for TrialRow {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(TrialRow {
            id: row.try_get("id")?,
            retry_of: row.try_get("retry_of")?,
            attempt: row.try_get("attempt")?,
            params: json(row, "params")?,
            grid_index: row.try_get("grid_index")?,
            metric: row.try_get("metric")?,
            state: row.try_get("state")?,
            summary: json(row, "summary")?,
            user_summary: json(row, "user_summary")?,
            error: row.try_get("error")?,
        })
    }
}

/// One step of a run's metric history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Step.
    pub step: i64,
    /// Latest wall time of the step's values.
    pub time_ms: i64,
    /// Values by name (`null` for NaN).
    pub values: Map<String, Value>,
}
