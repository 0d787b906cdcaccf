//! The validated sweep configuration: what [`crate::parse`] produces and every other crate
//! consumes.
//!
//! Field names and defaults follow W&B Sweeps; hyperdial's additions are marked as such.

use serde::Serialize;
use serde_json::Value;

pub use crate::budget::Budget;
pub use crate::condition::Condition;
use crate::diagnostic::{Diagnostic, Location};
pub use crate::lineage::SweepRef;

/// A validated sweep configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepConfig {
    /// Display name of the sweep.
    pub name: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// Project the sweep belongs to.
    pub project: Option<String>,
    /// The training script, substituted for `${program}`.
    pub program: Option<String>,
    /// How the next configuration is chosen.
    pub method: Method,
    /// The metric to optimize; required by `bayes`, `tpe` and by early termination. In a
    /// multi-objective sweep, the first objective (every single-objective path reads it).
    pub metric: Option<Metric>,
    /// Every objective of a multi-objective sweep (hyperdial addition, `metrics:` with two
    /// or more entries), in file order, each with `target: None`; empty for a sweep with one
    /// objective (`metric:`, or `metrics:` with one entry). Use [`SweepConfig::objectives`].
    /// Left out of the serialized config when empty, so the config hash of single-objective
    /// files stays what it was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// Every parameter, flattened to dotted names, in file order.
    pub parameters: Vec<Parameter>,
    /// The early-termination rule, if any.
    pub early_terminate: Option<EarlyTerminate>,
    /// The command template; `None` means [`crate::command::DEFAULT_COMMAND`].
    pub command: Option<Vec<String>>,
    /// Interpreter substituted for `${interpreter}` (hyperdial addition; default `python3`).
    pub interpreter: Option<String>,
    /// Upper bound on the number of runs, across all agents.
    pub run_cap: Option<u64>,
    /// `method: random` over a finite space draws each configuration at most once
    /// (hyperdial addition).
    pub sample_without_replacement: bool,
    /// `method: bayes` and `tpe` over a finite space may suggest a configuration that has
    /// already run (hyperdial addition, `allow_repeats: true`). By default they do not: each
    /// configuration runs once and the sweep ends when all have run. Left out of the
    /// serialized config when false, so the config hash of files without it stays what it was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_repeats: bool,
    /// When runs that ended badly run again with the same configuration (hyperdial addition;
    /// [`Retry::default`] when the file has no `retry`). Left out of the serialized config
    /// when it is the default, so files without `retry` keep their config hash.
    #[serde(skip_serializing_if = "Retry::is_default")]
    pub retry: Retry,
    /// Run the training script with hyperdial's `wandb`-compatible module first on its
    /// `PYTHONPATH`, so a script written for W&B runs unchanged (hyperdial addition, `wandb:
    /// true`; the same as `--wandb` on `agent` and `tune`). Left out of the serialized config
    /// when false, so the config hash of files without it stays what it was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wandb: bool,
    /// The sweep this one was refined from (hyperdial addition, `parent: SWEEP`; lineage
    /// only). Left out of the serialized config when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<SweepRef>,
    /// Sweeps whose runs `bayes` and `tpe` start from, when inside this space (hyperdial
    /// addition, `prior_runs: [SWEEP, ...]`). Left out of the serialized config when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prior_runs: Vec<SweepRef>,
    /// When the sweep has spent enough (hyperdial addition, `budget:`). Left out of the
    /// serialized config when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Longest a run may take, in seconds (hyperdial addition, `run_time_limit: 2h`): its
    /// agent stops a run still going after this long (SIGTERM, SIGKILL after the grace
    /// period) and the run ends `failed`, so a run that hangs cannot hold an agent for ever.
    /// Left out of the serialized config when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_time_limit_s: Option<f64>,
}

/// The `retry` policy (hyperdial addition): a run that ended in one of the `on` states is
/// queued again with the same parameters, up to `max` times per configuration. The default,
/// `{max: 1, on: [crashed]}`, runs a configuration once more when its agent was lost.
///
/// A run interrupted by its agent's shutdown is queued again whatever `max` and `on` say,
/// until it has been interrupted `interrupted` times in a row: that attempt ends `failed`
/// instead, so a configuration whose jobs are always stopped cannot come back for ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// Retries per configuration after its first attempt (0 turns retries off).
    pub max: u32,
    /// The final states that are retried, in file order, without duplicates.
    pub on: Vec<RetryOn>,
    /// How many interruptions in a row end a configuration's run `failed` rather than
    /// `cancelled` and queued again. Left out of the serialized config when it is the default
    /// ([`Retry::INTERRUPTED_DEFAULT`]), so the config hash of existing files stays what it was.
    #[serde(skip_serializing_if = "Retry::interrupted_is_default")]
    pub interrupted: u32,
}

impl Retry {
    /// The largest `max` accepted.
    pub const MAX_RETRIES: u32 = 100;

    /// The default of `interrupted`: the third interruption in a row ends the run `failed`.
    pub const INTERRUPTED_DEFAULT: u32 = 3;

    fn interrupted_is_default(n: &u32) -> bool {
        *n == Self::INTERRUPTED_DEFAULT
    }

    /// Whether this is the policy of a file without `retry`.
    pub fn is_default(&self) -> bool {
        *self == Retry::default()
    }

    /// Whether a run that ended in `state` (a run state name such as `crashed`) is retried.
    pub fn applies_to(&self, state: &str) -> bool {
        self.max > 0 && self.on.iter().any(|s| s.as_str() == state)
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max: 1,
            on: vec![RetryOn::Crashed],
            interrupted: Retry::INTERRUPTED_DEFAULT,
        }
    }
}

/// A final run state that `retry.on` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryOn {
    /// The run's agent stopped reporting (killed, machine lost), or the client that asked
    /// for the trial neither told it nor sent heartbeats.
    Crashed,
    /// The process failed: non-zero exit, killed by a signal, could not start, NaN metric.
    Failed,
    /// The run was stopped because its agent was shut down (SIGTERM, SIGINT, SIGHUP).
    Cancelled,
}

impl RetryOn {
    /// Every name, for messages.
    pub const NAMES: &'static [&'static str] = &["crashed", "failed", "cancelled"];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryOn::Crashed => "crashed",
            RetryOn::Failed => "failed",
            RetryOn::Cancelled => "cancelled",
        }
    }

    /// Parse a state name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "crashed" => Some(RetryOn::Crashed),
            "failed" => Some(RetryOn::Failed),
            "cancelled" => Some(RetryOn::Cancelled),
            _ => None,
        }
    }
}

impl SweepConfig {
    /// Every objective in file order: the `metrics` list of a multi-objective sweep, else
    /// the one `metric` (empty when the sweep has none).
    pub fn objectives(&self) -> Vec<Metric> {
        if self.metrics.is_empty() {
            self.metric.iter().cloned().collect()
        } else {
            self.metrics.clone()
        }
    }

    /// Whether the sweep has two or more objectives.
    pub fn is_multi_objective(&self) -> bool {
        self.metrics.len() > 1
    }

    /// The parameter with this dotted name.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Whether the sweep runs each configuration of a finite space once and then ends: a
    /// grid, random search with `sample_without_replacement`, and `bayes` or `tpe` without
    /// `allow_repeats` (when the space is finite, [`crate::grid::grid_size`]).
    pub fn runs_each_configuration_once(&self) -> bool {
        match self.method {
            Method::Grid => true,
            Method::Random => self.sample_without_replacement,
            Method::Bayes | Method::Tpe => !self.allow_repeats,
            Method::Sobol => false,
        }
    }

    /// How many runs the sweep makes before it ends by itself (W&B's `expected_run_count`):
    /// the number of configurations of its space when it runs each once
    /// ([`Self::runs_each_configuration_once`]) and the space is finite, at most `run_cap`;
    /// `run_cap` otherwise; `None` when nothing ends it. A space of more than 2^64
    /// configurations counts as unbounded. Retries and repeats are runs beyond this number;
    /// `budget` limits and `metric.target` may end a sweep earlier.
    pub fn expected_runs(&self) -> Option<u64> {
        let space = if self.runs_each_configuration_once() {
            crate::grid::grid_size(&self.parameters)
                .ok()
                .and_then(|n| u64::try_from(n).ok())
        } else {
            None
        };
        match (space, self.run_cap) {
            (Some(n), Some(cap)) => Some(n.min(cap)),
            (n, cap) => n.or(cap),
        }
    }
}

/// Search strategy named by `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Every combination of the (finite) parameter values, once each.
    Grid,
    /// Independent samples from each parameter's distribution.
    Random,
    /// Bayesian optimization with a Gaussian-process surrogate.
    Bayes,
    /// Multivariate tree-structured Parzen estimator (hyperdial addition).
    Tpe,
    /// Scrambled Sobol quasi-random search (hyperdial addition; `quasi_random` is an alias).
    Sobol,
}

impl Method {
    /// Every accepted spelling, for error messages.
    pub const NAMES: &'static [&'static str] =
        &["grid", "random", "bayes", "tpe", "sobol", "quasi_random"];

    /// The name as written in a sweep file.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Grid => "grid",
            Method::Random => "random",
            Method::Bayes => "bayes",
            Method::Tpe => "tpe",
            Method::Sobol => "sobol",
        }
    }

    /// Parse a method name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "grid" => Some(Method::Grid),
            "random" => Some(Method::Random),
            "bayes" => Some(Method::Bayes),
            "tpe" => Some(Method::Tpe),
            "sobol" | "quasi_random" => Some(Method::Sobol),
            _ => None,
        }
    }
}

/// Whether larger or smaller metric values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// Smaller is better (the W&B default).
    Minimize,
    /// Larger is better.
    Maximize,
}

impl Goal {
    /// The name as written in a sweep file.
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Minimize => "minimize",
            Goal::Maximize => "maximize",
        }
    }

    /// Whether `a` is strictly better than `b` under this goal.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Minimize => a < b,
            Goal::Maximize => a > b,
        }
    }
}

/// Which value stands in for a run that failed, crashed or was killed (W&B `metric.impute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Impute {
    /// The worst value seen in the sweep (default).
    Worst,
    /// The best value seen in the sweep.
    Best,
    /// The run's own last logged value.
    Latest,
}

/// Whether running runs contribute an imputed value to the search (W&B
/// `metric.impute_while_running`); `False` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImputeWhileRunning {
    /// Running runs are not counted as observations.
    False,
    /// Count them with the sweep's worst value.
    Worst,
    /// Count them with the sweep's best value.
    Best,
    /// Count them with their own last logged value.
    Latest,
}

/// The metric a sweep optimizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Name of the logged metric.
    pub name: String,
    /// Direction of improvement.
    pub goal: Goal,
    /// The sweep finishes once any run reaches this value.
    pub target: Option<f64>,
    /// Stand-in value for failed runs.
    pub impute: Impute,
    /// Stand-in value for running runs.
    pub impute_while_running: ImputeWhileRunning,
}

/// An early-termination rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EarlyTerminate {
    /// W&B's hyperband: runs are compared at bands of logged iterations.
    Hyperband(Hyperband),
    /// Asynchronous successive halving (hyperdial addition).
    Asha(Asha),
    /// The median stopping rule (hyperdial addition).
    Median(Median),
}

impl EarlyTerminate {
    /// The rule's name as written in `type`.
    pub fn name(&self) -> &'static str {
        match self {
            EarlyTerminate::Hyperband(_) => "hyperband",
            EarlyTerminate::Asha(_) => "asha",
            EarlyTerminate::Median(_) => "median",
        }
    }
}

/// Asynchronous successive halving (ASHA). Rungs sit at `grace_period · reduction_factor^k`
/// units of the step (up to `max_t`); a run reaching a rung goes on only if its metric there
/// is in the best `1/reduction_factor` of all values recorded at that rung so far. With
/// several `brackets`, bracket `b` starts its rungs at `grace_period · reduction_factor^b`
/// and runs are spread over brackets by run number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asha {
    /// First rung, in step units (default 1).
    pub grace_period: u64,
    /// Keep the best `1/reduction_factor` at each rung (default 3, must be > 1).
    pub reduction_factor: f64,
    /// Number of brackets (default 1).
    pub brackets: u64,
    /// Last step at which runs are compared (default: no limit).
    pub max_t: Option<u64>,
    /// Logged metric that measures progress (e.g. `epoch`); default: the count of logged
    /// values of the sweep metric.
    pub step_key: Option<String>,
}

/// The median stopping rule: once `min_runs` runs have finished, a run whose best value so
/// far is worse than the median of the finished runs' values at the same step is stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Median {
    /// Steps during which no run is stopped (default 0).
    pub warmup: u64,
    /// Finished runs needed before the rule applies (default 5).
    pub min_runs: u64,
    /// Logged metric that measures progress (e.g. `epoch`); default: the count of logged
    /// values of the sweep metric.
    pub step_key: Option<String>,
}

/// W&B hyperband settings. Exactly one of the two ways to place the bands is used:
/// `min_iter` (bands at `min_iter * eta^k`) or `max_iter` with `s` (bands at
/// `max_iter / eta^k` for `k = 1..=s`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hyperband {
    /// First band, in logged iterations of the metric.
    pub min_iter: Option<u64>,
    /// Last iteration, for bands counted down from it.
    pub max_iter: Option<u64>,
    /// Number of bands below `max_iter`.
    pub s: Option<u64>,
    /// Reduction factor; the top `1/eta` of runs survive each band. Default 3.
    pub eta: f64,
    /// Judge a run by its value at the band (`true`, the default, as in W&B's schema) rather
    /// than by its best value so far.
    pub strict: bool,
}

impl Hyperband {
    /// How many bands W&B's `min_iter` form has: `min_iter · eta^k` for `k = 0..100`.
    pub const MIN_ITER_BANDS: usize = 100;

    /// The iterations (counts of logged values, each ≥ 1) at which runs are compared,
    /// ascending, exactly as W&B's `sweeps` 0.3.0 computes them: for `max_iter` and `s`,
    /// `band = max_iter`, then `s` times `band /= eta`, stopping before a band below 1, each
    /// truncated to an integer; for `min_iter`, `band = min_iter`, then `band *= eta` for
    /// [`Self::MIN_ITER_BANDS`] bands, each truncated. Bands may repeat when `eta` is close to
    /// 1 (a repeated band changes nothing). At most `limit` bands are returned.
    pub fn bands(&self, limit: usize) -> Vec<u64> {
        let mut bands = Vec::new();
        if let (Some(max_iter), Some(s)) = (self.max_iter, self.s) {
            let mut band = max_iter as f64;
            for _ in 0..s {
                band /= self.eta;
                if band < 1.0 {
                    break;
                }
                bands.push(band as u64);
            }
            bands.sort_unstable();
            bands.truncate(limit);
        } else if let Some(min_iter) = self.min_iter {
            let mut band = min_iter as f64;
            // Bands past u64::MAX are never reached by any history; the cast would saturate.
            while bands.len() < limit.min(Self::MIN_ITER_BANDS) && band < u64::MAX as f64 {
                bands.push(band as u64);
                band *= self.eta;
            }
        }
        bands
    }
}

/// One parameter of the search space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    /// Dotted name: `optimizer.lr` for `lr` nested under `optimizer`.
    pub name: String,
    /// The name split at nesting levels (a key that itself holds a dot stays whole), used to
    /// re-nest the run's config.
    pub path: Vec<String>,
    /// What values the parameter takes and how they are drawn.
    pub distribution: Distribution,
    /// When the parameter is active (hyperdial addition, `when:`): all of these conditions
    /// hold. Empty for a parameter that is always active, and then left out of the serialized
    /// config, so files without `when` keep their config hash. See [`crate::condition`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    /// Where the parameter is defined.
    #[serde(skip)]
    pub location: Location,
}

/// A quantization step. W&B returns integers when `q` is written as an integer, and so does
/// hyperdial.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantum {
    /// The step, > 0.
    pub q: f64,
    /// Whether `q` was an integer in the file, making quantized values integers.
    pub integer: bool,
}

impl Default for Quantum {
    fn default() -> Self {
        Quantum {
            q: 1.0,
            integer: true,
        }
    }
}

/// Every distribution of the W&B schema, with W&B's parameters and meaning.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum Distribution {
    /// Always `value`.
    Constant {
        /// The value.
        value: Value,
    },
    /// One of `values`, uniformly.
    Categorical {
        /// The choices, with their YAML types kept.
        values: Vec<Value>,
    },
    /// One of `values` with the given probabilities (summing to 1).
    #[serde(rename = "categorical_w_probabilities")]
    CategoricalWithProbabilities {
        /// The choices.
        values: Vec<Value>,
        /// Probability of each choice.
        probabilities: Vec<f64>,
    },
    /// An integer in `[min, max]`, both inclusive.
    IntUniform {
        /// Lowest value.
        min: i64,
        /// Highest value.
        max: i64,
    },
    /// A real number in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `round(X / q) * q` with `X` uniform in `[min, max]`, kept inside the bounds.
    QUniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Step.
        q: Quantum,
    },
    /// `exp(X)` with `X` uniform in `[min, max]` (deprecated: bounds are natural-log exponents).
    LogUniform {
        /// Lower exponent.
        min: f64,
        /// Upper exponent.
        max: f64,
    },
    /// `exp(-X)` with `X` uniform in `[min, max]` (deprecated: bounds are exponents).
    InvLogUniform {
        /// Lower exponent.
        min: f64,
        /// Upper exponent.
        max: f64,
    },
    /// Quantized [`Distribution::LogUniform`] (deprecated: bounds are exponents).
    QLogUniform {
        /// Lower exponent.
        min: f64,
        /// Upper exponent.
        max: f64,
        /// Step.
        q: Quantum,
    },
    /// Log-uniform between the values `min` and `max` (both > 0).
    LogUniformValues {
        /// Lower bound, > 0.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// W&B's `inv_log_uniform_values`: `exp(-X)` with `X` uniform in
    /// `[-ln max, -ln min]`, so values lie in `[min, max]` (log-uniformly, as W&B computes it).
    InvLogUniformValues {
        /// Lower bound, > 0.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Quantized [`Distribution::LogUniformValues`]; `q` defaults to 1.
    QLogUniformValues {
        /// Lower bound, > 0.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Step.
        q: Quantum,
    },
    /// Normal with mean `mu` and standard deviation `sigma`.
    Normal {
        /// Mean (default 0).
        mu: f64,
        /// Standard deviation (default 1).
        sigma: f64,
    },
    /// Quantized normal.
    QNormal {
        /// Mean (default 0).
        mu: f64,
        /// Standard deviation (default 1).
        sigma: f64,
        /// Step.
        q: Quantum,
    },
    /// `exp(N(mu, sigma))`.
    LogNormal {
        /// Mean of the logarithm (default 0).
        mu: f64,
        /// Standard deviation of the logarithm (default 1).
        sigma: f64,
    },
    /// Quantized log-normal.
    QLogNormal {
        /// Mean of the logarithm (default 0).
        mu: f64,
        /// Standard deviation of the logarithm (default 1).
        sigma: f64,
        /// Step.
        q: Quantum,
    },
    /// Beta(a, b) on `[0, 1]`.
    Beta {
        /// First shape (default 1).
        a: f64,
        /// Second shape (default 1).
        b: f64,
    },
    /// Quantized beta.
    QBeta {
        /// First shape (default 1).
        a: f64,
        /// Second shape (default 1).
        b: f64,
        /// Step.
        q: Quantum,
    },
}

/// A validated config together with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The configuration.
    pub config: SweepConfig,
    /// Warnings: ignored keys, deprecated distributions, YAML 1.1 hazards.
    pub warnings: Vec<Diagnostic>,
}
