//! Repeats and seed noise: queueing runs with given parameters and a seed
//! (`POST /api/v1/sweeps/{id}/runs`, what `hyperdial repeat` sends) and the seed-noise report
//! of a sweep (`GET /api/v1/sweeps/{id}/noise`). See "Seed noise" in `docs/config.md`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Goal, Run, Sweep};

/// Most runs one `POST /api/v1/sweeps/{id}/runs` may queue.
pub const MAX_QUEUED_RUNS: usize = 1_000;

/// One run to queue: the configuration of run `repeat_of` (a run of the same sweep) with
/// `params` laid over it, given `seed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRun {
    /// The run whose configuration this one repeats.
    pub repeat_of: String,
    /// Parameters by dotted name laid over that run's (each must be a parameter of the
    /// sweep); typically the seed parameter set to `seed`. Empty: the same parameters.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
    /// The seed; the agent sets `HYPERDIAL_SEED` to it for the run's process.
    pub seed: i64,
}

/// `POST /api/v1/sweeps/{id}/runs`: queue runs with given parameters and seeds (at most
/// [`MAX_QUEUED_RUNS`]). Agents claim queued runs before the search suggests new ones; a
/// finished sweep runs again until they are done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRunsRequest {
    /// The runs, queued in this order.
    pub runs: Vec<QueueRun>,
}

/// The answer to `POST /api/v1/sweeps/{id}/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueuedRuns {
    /// The runs queued (state `queued`), in the order asked.
    pub runs: Vec<Run>,
    /// The sweep afterwards.
    pub sweep: Sweep,
}

/// One configuration of a sweep's seed-noise report: its repeats' metric values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoiseConfiguration {
    /// The run whose configuration was repeated.
    pub run: String,
    /// Its number in the sweep.
    pub number: Option<i64>,
    /// Its parameters by dotted name (the seed parameter, if any, as that run had it).
    pub params: Map<String, Value>,
    /// The metric of that run (not in the statistics below: it was picked for scoring well).
    pub original: Option<f64>,
    /// Repeats of it that ended `finished` with a finite metric.
    pub count: u64,
    /// Their seeds, in run order.
    pub seeds: Vec<i64>,
    /// Their metric values, in run order.
    pub values: Vec<f64>,
    /// Mean of `values`; `null` when there are none.
    pub mean: Option<f64>,
    /// Sample standard deviation of `values` (n − 1); `null` below 2 values.
    pub std: Option<f64>,
    /// Repeats still queued or running.
    pub pending: u64,
}

/// Best configuration against the runner-up: Welch's two-sample t-test on their repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoiseComparison {
    /// The best configuration (by mean), as its repeated run's id.
    pub best: String,
    /// The runner-up.
    pub runner_up: String,
    /// Best mean minus runner-up mean, in metric units.
    pub difference: f64,
    /// Welch's t statistic.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// The threshold: distinguishable when `p_value` is below it.
    pub alpha: f64,
    /// Whether the best configuration is distinguishable from the runner-up.
    pub distinguishable: bool,
}

/// `GET /api/v1/sweeps/{id}/noise`: how much the metric moves when only the seed changes,
/// against how much it moves between configurations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoiseReport {
    /// Sweep id.
    pub sweep: String,
    /// The sweep metric's name; `null` when the sweep has none.
    pub metric: Option<String>,
    /// Its goal.
    pub goal: Goal,
    /// The repeated configurations, best mean first (those without finished repeats last).
    pub configurations: Vec<NoiseConfiguration>,
    /// The seed-noise level: the pooled within-configuration standard deviation of the
    /// repeats, in metric units; `null` until some configuration has 2 finished repeats.
    pub seed_noise: Option<f64>,
    /// Its degrees of freedom: Σ (count − 1) over the configurations.
    pub seed_noise_df: u64,
    /// The spread across configurations: the standard deviation of the configuration means
    /// of the sweep's finished runs (a repeated configuration counts once, with the mean of
    /// its repeats); `null` below 2 configurations.
    pub spread: Option<f64>,
    /// How many configurations `spread` is over.
    pub spread_configurations: u64,
    /// `seed_noise / spread`; `null` when either is unknown or the spread is 0.
    pub ratio: Option<f64>,
    /// Best against runner-up; `null` until two configurations have 2 finished repeats each.
    pub comparison: Option<NoiseComparison>,
}

/// `GET /api/v1/sweeps/{id}/estimate`: the model's estimate of the sweep's best
/// configuration among the runs that have a result, so that under a noisy metric the best
/// run a user is told of is not a lucky draw. A Gaussian process (the one `method: bayes`
/// fits, with fitted noise) is fitted to the results; the estimate is the run whose
/// configuration has the best posterior mean, when the model is confident it beats the run
/// with the best value (else that run). Values are in the metric's units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EstimateAnswer {
    /// The run estimated best.
    pub run: Run,
    /// The posterior mean of the metric at its configuration.
    pub mean: f64,
    /// The posterior standard deviation of that mean (uncertainty about the
    /// configuration's true value).
    pub sd: f64,
    /// The fitted standard deviation of one run's value about its configuration's mean
    /// (the metric's noise), near the estimate.
    pub noise_sd: f64,
    /// The id of the run with the best observed metric (`GET /api/v1/sweeps/{id}/best`).
    pub observed_best: String,
    /// The posterior mean at that run's configuration.
    pub observed_best_mean: f64,
    /// Whether the estimate is another run than the observed best: only when the model gives
    /// its configuration a probability of at least 0.75 of being better than that run's.
    pub differs: bool,
    /// That probability, when `differs`; else `null`.
    pub p_better: Option<f64>,
    /// How many results the model was fitted to (runs `finished` or `stopped_early` with
    /// the metric; at most the best [`MAX_ESTIMATE_RESULTS`] by value).
    pub results: u64,
}

/// Most results `GET /api/v1/sweeps/{id}/estimate` considers: the best ones by value.
pub const MAX_ESTIMATE_RESULTS: usize = 5_000;
