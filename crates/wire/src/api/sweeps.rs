//! Sweeps: creating, reading, acting on, retrying and exporting them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{is_false, BudgetStatus, EndReason, Goal, Run};
use crate::{RunState, SweepState};

/// `POST /api/v1/sweeps`: create a sweep from a config, or resume an unfinished one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateSweep {
    /// The sweep config as written (YAML or JSON text); give it or `config`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The sweep config as a JSON object, for a client that holds it as data (a dict) rather
    /// than as text; give it or `source`. Its mistakes are reported by key path
    /// (`parameters.lr.min`), without file, line or column: the caller wrote no text. The
    /// sweep keeps it as `source`, written as indented JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Map<String, Value>>,
    /// Project; `default` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The file the config came from, for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Return the newest unfinished sweep of the same project and config instead of creating
    /// one (answer `200` with `resumed: true`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub resume: bool,
    /// With `resume`: when no unfinished sweep matches, return the newest finished one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub resume_finished: bool,
    /// The sweep's random seed; drawn when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
}

/// The sweep metric and its goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricRef {
    /// The metric's name as logged.
    pub name: String,
    /// Whether smaller or larger is better.
    pub goal: Option<Goal>,
}

/// The best run of a sweep so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BestRef {
    /// Run id.
    pub run: String,
    /// Its number in the sweep.
    pub number: Option<i64>,
    /// Its sweep metric.
    pub value: Option<f64>,
}

/// How many runs of a sweep are in each state (every state is present, `0` when none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunCounts {
    /// Runs waiting for an agent.
    pub queued: i64,
    /// Runs in progress.
    pub running: i64,
    /// Runs that exited 0.
    pub finished: i64,
    /// Runs that exited non-zero.
    pub failed: i64,
    /// Runs whose agent or process went away.
    pub crashed: i64,
    /// Runs stopped by the early-termination rule.
    pub stopped_early: i64,
    /// Runs cancelled.
    pub cancelled: i64,
}

impl RunCounts {
    /// The count of `state`.
    pub fn get(&self, state: RunState) -> i64 {
        match state {
            RunState::Queued => self.queued,
            RunState::Running => self.running,
            RunState::Finished => self.finished,
            RunState::Failed => self.failed,
            RunState::Crashed => self.crashed,
            RunState::StoppedEarly => self.stopped_early,
            RunState::Cancelled => self.cancelled,
        }
    }

    /// The count of `state`, to change.
    pub fn get_mut(&mut self, state: RunState) -> &mut i64 {
        match state {
            RunState::Queued => &mut self.queued,
            RunState::Running => &mut self.running,
            RunState::Finished => &mut self.finished,
            RunState::Failed => &mut self.failed,
            RunState::Crashed => &mut self.crashed,
            RunState::StoppedEarly => &mut self.stopped_early,
            RunState::Cancelled => &mut self.cancelled,
        }
    }

    /// All runs.
    pub fn total(&self) -> i64 {
        RunState::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// A sweep, as `GET /api/v1/sweeps/{id}` and every sweep action answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sweep {
    /// Id.
    pub id: String,
    /// Project name.
    pub project: String,
    /// Display name (the config's `name`).
    pub name: Option<String>,
    /// Where the sweep is in its life.
    pub state: SweepState,
    /// Search method: `grid`, `random`, `sobol`, `tpe`, `bayes`.
    pub method: String,
    /// The validated config (`null` if it no longer validates).
    pub config: Option<Value>,
    /// The config as written.
    pub source: String,
    /// The file it came from.
    pub file: Option<String>,
    /// The sweep's random seed.
    pub seed: i64,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last changed, ms since the epoch.
    pub updated_ms: i64,
    /// The sweep metric, if the config names one.
    pub metric: Option<MetricRef>,
    /// Runs by state.
    pub counts: RunCounts,
    /// All runs, retries included.
    pub total_runs: i64,
    /// Runs that are retries of another run.
    pub retries: i64,
    /// Failed and crashed runs not retried yet.
    pub retryable: i64,
    /// Reopened by a retry or a repeat after it finished: it runs its queued runs, then
    /// finishes again.
    pub retries_only: bool,
    /// Time spent in runs, summed, in ms.
    pub compute_ms: i64,
    /// The best run with the metric so far.
    pub best: Option<BestRef>,
    /// Markdown notes.
    pub notes: String,
    /// What ended the sweep on purpose (`stop`, `cancel`, a budget limit); `null` when it ran
    /// out of runs, reached its target, or is not over.
    pub end_reason: Option<EndReason>,
    /// Where the sweep stands against its `budget`; `null` without one.
    pub budget: Option<BudgetStatus>,
    /// How many runs the sweep makes before it ends by itself (W&B's `expected_run_count`):
    /// the configurations of a finite space it runs each once, at most `run_cap`; `run_cap`
    /// otherwise; `null` when nothing ends it (retries and repeats not counted).
    #[serde(default)]
    pub expected_runs: Option<u64>,
}

/// One finding about a sweep config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Dotted key path of the offending value, e.g. `parameters.lr.min`; empty for the root.
    pub path: String,
    /// Where in the source the offending key or value starts.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
    /// How to fix it; absent when there is no clear fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config is accepted; something in it is ignored, deprecated or surprising.
    Warning,
    /// The config is rejected.
    Error,
}

/// A position in a source text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Location {
    /// Line, from 1.
    pub line: u64,
    /// Column in characters, from 1.
    pub column: u64,
}

/// The answer to `POST /api/v1/sweeps`: the sweep (`201` created, `200` resumed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreatedSweep {
    /// The sweep.
    #[serde(flatten)]
    pub sweep: Sweep,
    /// Whether an existing sweep was returned instead of a new one.
    pub resumed: bool,
    /// Warnings about the config.
    pub warnings: Vec<Diagnostic>,
}

/// `GET /api/v1/sweeps`: sweeps, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepList {
    /// The sweeps.
    pub sweeps: Vec<Sweep>,
}

/// `POST /api/v1/sweeps/{id}/retry`; both lists empty (or no body): the failed and crashed
/// runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Retry the latest attempts in these states (terminal states only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<RunState>,
    /// Retry these runs (or their latest attempts); at most 10,000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
}

/// A retry queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Retried {
    /// The run retried (the latest attempt of its configuration).
    pub run: String,
    /// The queued retry.
    pub retry: Run,
}

/// A run named or chosen that was not retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    /// Run id.
    pub run: String,
    /// Why not.
    pub reason: String,
}

/// The answer to `POST /api/v1/sweeps/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetryAnswer {
    /// Retries queued.
    pub retried: Vec<Retried>,
    /// Runs not retried, with the reason.
    pub skipped: Vec<Skipped>,
    /// The sweep afterwards.
    pub sweep: Sweep,
}

/// `PUT /api/v1/sweeps/{id}/notes`: the sweep's new markdown notes (at most 64 KiB).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotesRequest {
    /// Markdown.
    pub notes: String,
}

/// The answer to `PUT /api/v1/sweeps/{id}/notes` (also the payload of its `sweep` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Notes {
    /// Sweep id.
    pub id: String,
    /// Markdown.
    pub notes: String,
}

/// One run in `GET /api/v1/sweeps/{id}/export?format=json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportRow {
    /// Run id.
    pub id: String,
    /// Its number in the sweep.
    pub number: Option<i64>,
    /// Its state.
    pub state: RunState,
    /// Its display name (`wandb.run.name`, `init(name=...)`), if any.
    #[serde(default)]
    pub name: Option<String>,
    /// Its sweep metric.
    pub metric: Option<f64>,
    /// Parameters by dotted name.
    pub params: Map<String, Value>,
    /// The rest of the run's config by dotted name: what the script set itself (its defaults
    /// to `init`, `config.update`), beside the sweep's parameters (the CSV's `config.*`
    /// columns).
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Summary values by name.
    pub summary: Map<String, Value>,
    /// Exit code of its process.
    pub exit_code: Option<i64>,
    /// Why the run ended as it did (the CSV's `error` column): the error of a failed or crashed
    /// run, the reason it was stopped early, or that it was cancelled; `null` for a finished
    /// run.
    pub error: Option<String>,
    /// Host it ran on.
    pub host: Option<String>,
    /// Started, ms since the epoch.
    pub started_ms: Option<i64>,
    /// Ended, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// Run time in seconds.
    pub duration_s: Option<f64>,
    /// The run it retries.
    pub retry_of: Option<String>,
    /// Attempt number of its configuration, from 1.
    pub attempt: i64,
}

/// `GET /api/v1/sweeps/{id}/export?format=json`: every run, one row each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Export {
    /// Sweep id.
    pub sweep: String,
    /// The runs.
    pub runs: Vec<ExportRow>,
}
