//! The Pareto front of a sweep: `GET /api/v1/sweeps/{id}/front`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Goal;

/// One objective of a sweep, in the config's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveSpec {
    /// The metric's name as logged.
    pub name: String,
    /// Whether smaller or larger is better.
    pub goal: Goal,
}

/// A run on a sweep's front or on a later layer of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FrontRun {
    /// Run id.
    pub run_id: String,
    /// Its number in the sweep.
    pub number: u64,
    /// Its value of each objective, in the order of [`ParetoFront::objectives`], in metric
    /// units as logged (not negated for `maximize`); always finite.
    pub values: Vec<f64>,
    /// Its non-dominated layer: 0 on the front (no other run is at least as good in every
    /// objective and better in one), 1 on the front of the rest, and so on.
    pub rank: u32,
}

/// `GET /api/v1/sweeps/{id}/front`: the sweep's runs sorted into non-dominated layers.
///
/// Only runs that ended `finished` or `stopped_early` with a finite value of every objective
/// are listed, sorted by rank, then by number. A single-objective sweep has one objective;
/// its front is the best run (every run tied for the best value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParetoFront {
    /// The objectives, in the config's order.
    pub objectives: Vec<ObjectiveSpec>,
    /// The runs, by rank, then number.
    pub runs: Vec<FrontRun>,
}
