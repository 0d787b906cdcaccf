//! Why a sweep ended and where it stands against its `budget` (`docs/config.md#budget`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What ended a sweep on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// `hyperdial stop` (or the API's `stop`).
    Stop,
    /// `hyperdial cancel`.
    Cancel,
    /// The budget's `wall_time` passed.
    WallTime,
    /// The budget's `run_hours` were used.
    RunHours,
    /// The best value stopped improving (the budget's `stagnation`).
    Stagnation,
    /// `run_cap` runs ended.
    RunCap,
    /// The search space has no configuration left (a grid ran every point).
    Exhausted,
    /// A run reached `metric.target`.
    Target,
}

impl EndReason {
    /// The word the store records (as `ended_by`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Stop => "stop",
            EndReason::Cancel => "cancel",
            EndReason::WallTime => "wall_time",
            EndReason::RunHours => "run_hours",
            EndReason::Stagnation => "stagnation",
            EndReason::RunCap => "run_cap",
            EndReason::Exhausted => "exhausted",
            EndReason::Target => "target",
        }
    }

    /// The reason a stored word names; `None` for anything else.
    pub fn from_word(word: &str) -> Option<Self> {
        [
            EndReason::Stop,
            EndReason::Cancel,
            EndReason::WallTime,
            EndReason::RunHours,
            EndReason::Stagnation,
            EndReason::RunCap,
            EndReason::Exhausted,
            EndReason::Target,
        ]
        .into_iter()
        .find(|r| r.as_str() == word)
    }
}

/// Where a sweep with a `budget` stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetStatus {
    /// Seconds of `wall_time` left (≥ 0); `null` without that limit.
    pub wall_time_left_s: Option<f64>,
    /// Run-hours left (≥ 0); `null` without that limit.
    pub run_hours_left: Option<f64>,
    /// Finished runs since the last improvement beyond `min_delta`.
    pub runs_since_improvement: u64,
    /// Seconds since the last improvement (since creation when none).
    pub since_improvement_s: f64,
    /// When the first limit is expected to be reached, ms since the epoch: wall time exactly,
    /// run-hours at the rate spent so far, stagnation as if nothing improves again at the
    /// rate runs finished so far; `null` when it cannot be estimated yet or the sweep is
    /// over.
    pub estimated_end_ms: Option<i64>,
    /// The limit that estimate reaches first.
    pub first_limit: Option<EndReason>,
    /// The smallest improvement that counts for `stagnation` now, in metric units: the
    /// configured `min_delta`, or with `min_delta: noise` the measured seed noise (0 until
    /// known); `null` without `stagnation`.
    #[serde(default)]
    pub min_delta: Option<f64>,
}
