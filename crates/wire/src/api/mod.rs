//! Every request and response body of the `/api/v1` HTTP API (`docs/api.md`).
//!
//! The server deserializes requests into these types and serializes its answers from them;
//! the agent and the command line build their requests from the same types, and the
//! OpenAPI document, the dashboard's TypeScript types and the Python state list are generated
//! from their schemas ([`crate::gen`]). They are plain data: size bounds and other checks
//! stay in the server's handlers.
//!
//! Conventions, the same in every type:
//! - times are integer milliseconds since the Unix epoch (`*_ms`), durations integer
//!   milliseconds unless the name says seconds (`duration_s`);
//! - in answers, a field that has no value is `null`, never absent (the exceptions say so);
//! - in requests, optional fields may be left out, which means the same as `null`;
//! - metric values are JSON numbers, `null` for NaN and infinities;
//! - `params` are a run's parameters by dotted name (`{"optimizer.lr": 0.01}`), `config` the
//!   same values nested (`{"optimizer": {"lr": 0.01}}`).

mod agents;
mod budget;
mod events;
mod front;
mod insights;
mod repeats;
mod runs;
mod sweeps;

pub use agents::{
    AgentRegistered, ClaimRequest, RegisterAgent, SweepOver, Tell, MAX_CLAIM_KEY_CHARS,
    MAX_CLAIM_WAIT_MS, WAITED_HEADER,
};
pub use budget::{BudgetStatus, EndReason};
pub use events::{EventPoint, Hello, MetricsEvent, Resync, RunBrief};
pub use front::{FrontRun, ObjectiveSpec, ParetoFront};
pub use insights::{
    Axis, AxisKind, ByName, ColumnsByName, Evidence, HistoryColumns, Importance, PackedHistory,
    ParamImportance, PointColumns, RunHistory, RunsPage, Series, SeriesByName, SweepPoints,
};
pub use repeats::{
    EstimateAnswer, NoiseComparison, NoiseConfiguration, NoiseReport, QueueRun, QueueRunsRequest,
    QueuedRuns, MAX_ESTIMATE_RESULTS, MAX_QUEUED_RUNS,
};
pub use runs::{
    ConfigUpdate, CreateRun, DeliveryRecord, DeliveryRequest, FinishRequest, GitInfo,
    HeartbeatAnswer, HistoryPoint, MetricPoint, MetricValues, MetricsAnswer, MetricsRequest,
    OutputRequest, OutputStream, PointValues, Resume, Run, RunAnswer, RunGit, RunName, Started,
    SummaryUpdate, MAX_METRIC_NAME_BYTES, MAX_POINT_VALUES,
};
pub use sweeps::{
    BestRef, CreateSweep, CreatedSweep, Diagnostic, Export, ExportRow, Location, MetricRef, Notes,
    NotesRequest, Retried, RetryAnswer, RetryRequest, RunCounts, Severity, Skipped, Sweep,
    SweepList,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether a sweep's metric is to be made small or large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// Smaller is better (the default).
    Minimize,
    /// Larger is better.
    Maximize,
}

impl Goal {
    /// The goal a stored word names: `maximize` is [`Goal::Maximize`], anything else
    /// (`minimize`, absent) [`Goal::Minimize`], as the search reads it.
    pub fn from_word(word: Option<&str>) -> Goal {
        match word {
            Some("maximize") => Goal::Maximize,
            _ => Goal::Minimize,
        }
    }

    /// Whether larger is better.
    pub fn maximize(self) -> bool {
        self == Goal::Maximize
    }
}

/// The body of a successful answer that has nothing to say: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

/// What kind of failure an error answer is, in its `code`: storage faults, server bugs, and
/// the refusals a client acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `503`: the database's disk is full.
    DiskFull,
    /// `503`: the database cannot be written.
    ReadOnly,
    /// `503`: the database could not be read or written.
    IoError,
    /// `503`: the database is locked or overloaded.
    Busy,
    /// `503`: the database file is damaged.
    Corrupt,
    /// `503`: the database server cannot be reached (or is shutting down).
    Unavailable,
    /// `409`: the run was marked `crashed` (its agent went silent) and takes no more reports;
    /// its agent stops the run's process (a retry runs the configuration again).
    RunCrashed,
    /// `409`: the run to resume (`POST /api/v1/runs` with `id` and `resume`) is `running` and
    /// was heard from within the server's run timeout: another process may still be writing
    /// to it. Once that process is gone, the run can be resumed after the timeout.
    RunActive,
    /// `500`: any other storage error (a bug; the server logged it).
    Storage,
}

/// The body of every error answer (4xx and 5xx).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong and how to fix it.
    pub error: String,
    /// Storage faults, bugs and the refusals a client acts on: which one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// With [`ErrorCode::RunCrashed`]: the run's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::RunState>,
    /// `413` only: the largest request body accepted, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    /// An invalid sweep config only: every finding, errors and warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<Diagnostic>>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}
