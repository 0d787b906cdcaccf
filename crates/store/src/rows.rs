//! Row types, decoded from SQL (by each backend, see `queries.rs`) and serialized for the API.

use hyperdial_wire::{EndCause, RunState, SweepState};
use serde::Serialize;
use serde_json::{Map, Value};

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
    /// Where the sweep is in its life.
    pub state: SweepState,
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
    /// What ended it, when it was ended on purpose (the `ended_by` of
    /// [`crate::Storage::transition_sweep`]: `stop`, `cancel`, `wall_time`, `run_hours`,
    /// `stagnation`); `None` otherwise and while it is not over.
    pub end_reason: Option<String>,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
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
    pub state: RunState,
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
    /// Why it failed, in words (a message: never compared to decide anything).
    pub error: Option<String>,
    /// Why the server ended or changed it, when it did ([`EndCause`]); `None` for a run its
    /// reporter ended and for one in flight, but [`EndCause::LateEndPending`].
    pub end_cause: Option<EndCause>,
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
    /// The run whose configuration this one repeats with another seed, if it is a repeat
    /// ([`crate::Storage::queue_repeats`]).
    pub repeat_of: Option<String>,
    /// The seed a repeat was given; `None` for every other run.
    pub seed: Option<i64>,
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

/// What a strategy sees of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    /// The run's id.
    pub id: String,
    /// Its position in the sweep (`None` for a run that took no number).
    pub number: Option<i64>,
    /// When it was created (ms since the epoch): orders runs of equal number.
    pub created_ms: i64,
    /// The run it retries, if any.
    pub retry_of: Option<String>,
    /// Attempt number of its configuration (1 for a first run).
    pub attempt: i64,
    /// The run whose configuration this one repeats with another seed, if it is a repeat.
    pub repeat_of: Option<String>,
    /// Flat parameters.
    pub params: Value,
    /// Grid position.
    pub grid_index: Option<i64>,
    /// The sweep metric: best finite value of the history and the explicit summary.
    pub metric: Option<f64>,
    /// Life-cycle state.
    pub state: RunState,
    /// Last logged value of every metric.
    pub summary: Value,
    /// Values set explicitly in the summary.
    pub user_summary: Value,
    /// Why the run ended badly, if it did (as `RunRow::error`).
    pub error: Option<String>,
    /// Why the server ended or changed it, if it did (as `RunRow::end_cause`).
    pub end_cause: Option<EndCause>,
    /// When it started (ms since the epoch); `None` while queued.
    pub started_ms: Option<i64>,
    /// When it ended (ms since the epoch); `None` while in flight.
    pub finished_ms: Option<i64>,
    /// Its last sign of life when it last changed (heartbeats alone do not make a run
    /// changed: see [`crate::Storage::trials_changed`]).
    pub heartbeat_ms: Option<i64>,
}

impl TrialRow {
    /// The run time this run adds to [`crate::Storage::compute_ms`] once it has ended
    /// (`finished_ms − started_ms`, 0 if it never started); `None` while it is in flight, whose
    /// time grows with its heartbeats ([`crate::Storage::compute_ms_in_flight`]).
    pub fn ended_compute_ms(&self) -> Option<i64> {
        if self.state.in_flight() {
            return None;
        }
        Some(match self.started_ms {
            Some(started) => self.finished_ms.or(self.heartbeat_ms).unwrap_or(started) - started,
            None => 0,
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
    /// Values by name, in name order (`None` for NaN).
    pub values: hyperdial_wire::api::MetricValues,
}

// ---- one mapping per row type, for both SQL drivers ---------------------------------------
//
// A row is read through sqlx (`queries.rs`, both backends) or, on SQLite's one-hop path,
// through rusqlite (`sqlite/hot.rs`). The drivers' row types share no trait, so each mapping
// below is a macro called with the driver's column getter (`$get(row, column)`, decoding the
// column as the field's type: `sqlx::Row::try_get` or `rusqlite::Row::get`) and the caller's
// `json(row, column)` (a JSON text column as a value) and `state(row, column)` (a state word as
// its enum). A column added to a row type is then added here once.

/// A [`SweepRow`] from a row of `SELECT {SWEEP_COLUMNS} …` (see the module comment above).
macro_rules! sweep_row_from {
    ($row:expr, $get:path, $state:path) => {{
        let row = $row;
        $crate::SweepRow {
            id: $get(row, "id")?,
            project: $get(row, "project")?,
            name: $get(row, "name")?,
            method: $get(row, "method")?,
            state: $state(row, "state")?,
            source: $get(row, "source")?,
            source_file: $get(row, "source_file")?,
            config_hash: $get(row, "config_hash")?,
            seed: $get(row, "seed")?,
            next_number: $get(row, "next_number")?,
            metric_name: $get(row, "metric_name")?,
            goal: $get(row, "goal")?,
            notes: $get(row, "notes")?,
            retries_only: $get(row, "retries_only")?,
            end_reason: $get(row, "end_reason")?,
            created_ms: $get(row, "created_ms")?,
            updated_ms: $get(row, "updated_ms")?,
        }
    }};
}

/// A [`RunRow`] from a row of `SELECT {RUN_COLUMNS} …`; its summary is the stored summary
/// with the user's explicit summary merged over it.
macro_rules! run_row_from {
    ($row:expr, $get:path, $json:path, $state:path) => {{
        let row = $row;
        let mut summary = match $json(row, "summary")? {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        if let serde_json::Value::Object(user) = $json(row, "user_summary")? {
            summary.extend(user);
        }
        let delivery: Option<String> = $get(row, "delivery")?;
        $crate::RunRow {
            id: $get(row, "id")?,
            sweep_id: $get(row, "sweep_id")?,
            project: $get(row, "project")?,
            number: $get(row, "number")?,
            name: $get(row, "name")?,
            state: $state(row, "state")?,
            params: $json(row, "params")?,
            config: $json(row, "config")?,
            suggestion: $json(row, "suggestion")?,
            grid_index: $get(row, "grid_index")?,
            agent_id: $get(row, "agent_id")?,
            host: $get(row, "host")?,
            argv: $json(row, "argv")?,
            exit_code: $get(row, "exit_code")?,
            error: $get(row, "error")?,
            end_cause: {
                let word: Option<String> = $get(row, "end_cause")?;
                word.as_deref()
                    .and_then(hyperdial_wire::EndCause::from_word)
            },
            metric: $get(row, "metric")?,
            summary,
            next_step: $get(row, "next_step")?,
            git_commit: $get(row, "git_commit")?,
            git_dirty: $get(row, "git_dirty")?,
            stop_requested: $get(row, "stop_requested")?,
            stop_reason: $get(row, "stop_reason")?,
            stop_info: $json(row, "stop_info")?,
            created_ms: $get(row, "created_ms")?,
            started_ms: $get(row, "started_ms")?,
            heartbeat_ms: $get(row, "heartbeat_ms")?,
            finished_ms: $get(row, "finished_ms")?,
            retry_of: $get(row, "retry_of")?,
            attempt: $get(row, "attempt")?,
            delivery: delivery.and_then(|t| serde_json::from_str(&t).ok()),
            repeat_of: $get(row, "repeat_of")?,
            seed: $get(row, "seed")?,
        }
    }};
}

/// A [`TrialRow`] from a row of `SELECT {TRIAL_COLUMNS} …`.
macro_rules! trial_row_from {
    ($row:expr, $get:path, $json:path, $state:path) => {{
        let row = $row;
        $crate::TrialRow {
            id: $get(row, "id")?,
            number: $get(row, "number")?,
            created_ms: $get(row, "created_ms")?,
            retry_of: $get(row, "retry_of")?,
            attempt: $get(row, "attempt")?,
            repeat_of: $get(row, "repeat_of")?,
            params: $json(row, "params")?,
            grid_index: $get(row, "grid_index")?,
            metric: $get(row, "metric")?,
            state: $state(row, "state")?,
            summary: $json(row, "summary")?,
            user_summary: $json(row, "user_summary")?,
            error: $get(row, "error")?,
            end_cause: {
                let word: Option<String> = $get(row, "end_cause")?;
                word.as_deref()
                    .and_then(hyperdial_wire::EndCause::from_word)
            },
            started_ms: $get(row, "started_ms")?,
            finished_ms: $get(row, "finished_ms")?,
            heartbeat_ms: $get(row, "heartbeat_ms")?,
        }
    }};
}

pub(crate) use {run_row_from, sweep_row_from, trial_row_from};
