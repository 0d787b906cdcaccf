//! # hyperdial-search
//!
//! Search strategies as pure ask/tell code: a suggestion is a function of the space, the
//! runs so far (finished, failed and in flight) and a seed. No IO and no global state, so
//! the controller can call it inside a database transaction and any suggestion can be
//! reproduced from what is stored with its run (only the timing fields of
//! [`SuggestionInfo::diagnostics`] read the clock; they never influence the choice).
//!
//! Strategies:
//!
//! - [`Method::Grid`]: every combination once, in grid order.
//! - [`Method::Random`]: independent draws (optionally without replacement over a finite
//!   space).
//! - [`Method::Sobol`]: scrambled Sobol quasi-random points ([`sobol`]).
//! - [`Method::Tpe`]: multivariate tree-structured Parzen estimator ([`tpe`]).
//! - [`Method::Bayes`]: Gaussian-process Bayesian optimization with LogEI ([`bayes`]).
//!
//! Model-based strategies see the space through [`encode`] and the runs through
//! [`History`]: finished runs are observations (oriented so that smaller is better), failed
//! ones are imputed per `metric.impute`, running ones are pending (fantasized) or, with
//! `metric.impute_while_running`, observations with an imputed value; [`metric`] says how, as
//! W&B decides it.

use std::collections::HashSet;

use hyperdial_space::{grid, Goal, Method, SweepConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod bayes;
pub mod encode;
pub mod finite;
pub mod metric;
pub mod multi;
pub mod sobol;
pub mod stopping;
pub mod tpe;

use encode::{Point, Space};
use finite::Taken;

/// A run the strategy has seen: what it tried and, once known, how it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Flat parameter values by dotted name.
    pub params: serde_json::Map<String, Value>,
    /// The grid position of the configuration, for strategies over a finite space.
    pub grid_index: Option<u64>,
    /// The run's metric: the goal-aware best finite value of its history and summary
    /// ([`metric::RunValues::best`]); `None` while unknown. A failed run may still carry one
    /// (used by `impute: best`).
    pub value: Option<f64>,
    /// The goal-aware worst finite value of its history and summary
    /// ([`metric::RunValues::worst`]), for `impute: worst`; `None` means the same as `value`.
    #[serde(default)]
    pub worst: Option<f64>,
    /// Its last finite logged value ([`metric::RunValues::latest`]), for `impute: latest`.
    #[serde(default)]
    pub latest: Option<f64>,
    /// Whether the run is still in flight.
    pub running: bool,
    /// Whether it is in flight but not started yet (W&B's `pending`): it stays pending
    /// whatever `metric.impute_while_running` says.
    #[serde(default)]
    pub queued: bool,
    /// Whether the run failed, crashed or was cancelled; its value is then imputed per
    /// `metric.impute`. A run whose value is NaN or infinite counts as failed too.
    #[serde(default)]
    pub failed: bool,
    /// A multi-objective sweep's values of each objective, as logged (not negated for
    /// `maximize`), in the config's order (see [`multi`]); empty for other sweeps and for
    /// runs whose objectives are unknown to this sweep.
    #[serde(default)]
    pub objectives: Vec<Option<f64>>,
}

/// Why and how a configuration was chosen; stored with the run so it can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionInfo {
    /// The strategy's name (`grid`, `random`, `sobol`, `tpe`, `bayes`).
    pub strategy: String,
    /// The seed this suggestion was drawn with.
    pub seed: u64,
    /// The grid position, for finite-space strategies.
    pub grid_index: Option<u64>,
    /// What the strategy saw and predicted (for `bayes`: the predicted mean and standard
    /// deviation at the suggestion in metric units, the log expected improvement, the
    /// number of observations and fantasies, the fitted length scales and noise, timings;
    /// for `tpe`: the sizes of the good and bad groups). Free-form JSON for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Value>,
}

/// A configuration to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Values by dotted name, in the config's parameter order.
    pub params: Vec<(String, Value)>,
    /// How it was chosen.
    pub info: SuggestionInfo,
}

/// The answer to "what next?".
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Run this.
    Suggest(Suggestion),
    /// The space is exhausted: every configuration has been handed out.
    Exhausted,
}

/// Errors of a strategy.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The space cannot be enumerated (a grid over a continuous parameter, or too large).
    #[error("{0}")]
    Grid(#[from] grid::GridError),
    /// The method has no strategy in this build.
    #[error("method `{0}` is not available yet")]
    Unsupported(&'static str),
}

/// Derive the seed of the `number`-th suggestion of a sweep from the sweep's seed
/// (SplitMix64 finalizer: consecutive numbers give unrelated streams).
pub fn run_seed(sweep_seed: u64, number: u64) -> u64 {
    let mut z = sweep_seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Choose the next configuration.
///
/// `trials` holds every run of the sweep so far, finished and in flight; `seed` is this
/// suggestion's seed (see [`run_seed`]). Strategies that follow one sequence over the whole
/// sweep (the Sobol points of `sobol` and of the initial designs) scramble it with `seed`
/// and index it by `trials.len()`; to keep one sequence across a sweep whose suggestions
/// have different seeds, use [`suggest_in_sweep`].
pub fn suggest(config: &SweepConfig, trials: &[Trial], seed: u64) -> Result<Ask, SearchError> {
    dispatch(config, trials, seed, seed)
}

/// Choose the `number`-th configuration of a sweep seeded with `sweep_seed`: the suggestion's
/// own seed is [`run_seed`]`(sweep_seed, number)`, and the sweep-wide Sobol sequence is
/// scrambled with `sweep_seed` and indexed by `trials.len()`. This is what the controller
/// calls.
pub fn suggest_in_sweep(
    config: &SweepConfig,
    trials: &[Trial],
    sweep_seed: u64,
    number: u64,
) -> Result<Ask, SearchError> {
    dispatch(config, trials, run_seed(sweep_seed, number), sweep_seed)
}

fn dispatch(
    config: &SweepConfig,
    trials: &[Trial],
    seed: u64,
    sequence_seed: u64,
) -> Result<Ask, SearchError> {
    match config.method {
        Method::Grid => next_grid(config, trials, seed),
        Method::Random if config.sample_without_replacement => {
            random_without_replacement(config, trials, seed)
        }
        Method::Random => Ok(Ask::Suggest(random(config, seed))),
        Method::Sobol => Ok(Ask::Suggest(quasi_random(
            config,
            trials.len() as u64,
            seed,
            sequence_seed,
            "sobol",
        ))),
        Method::Tpe => Ok(tpe::suggest(config, trials, seed, sequence_seed)),
        Method::Bayes => Ok(bayes::suggest(config, trials, seed, sequence_seed)),
    }
}

/// What the strategies without a model (`grid`, `random`, `sobol`) need of a sweep's runs, in
/// a form a caller keeps up to date run by run, so that a suggestion costs the same at ten
/// runs and at a hundred thousand ([`suggest_by_tally`]). It stands for the `trials` of
/// [`suggest_in_sweep`]: `trials` is `trials.len()`, `grid_used` the `grid_index` of every
/// trial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// How many runs count as trials.
    pub trials: u64,
    /// The grid positions the trials took.
    grid_used: HashSet<u64>,
    /// The lowest position not in `grid_used`.
    grid_free: u64,
}

impl Tally {
    /// Count one more trial, at grid position `grid_index` if it has one.
    pub fn add(&mut self, grid_index: Option<u64>) {
        self.trials += 1;
        if let Some(i) = grid_index {
            self.take(i);
        }
    }

    /// Mark grid position `i` taken (without counting a trial: a retry of a run takes its
    /// position again).
    pub fn take(&mut self, i: u64) {
        self.grid_used.insert(i);
        while self.grid_used.contains(&self.grid_free) {
            self.grid_free += 1;
        }
    }

    /// The tally of `trials`.
    pub fn of(trials: &[Trial]) -> Tally {
        let mut tally = Tally::default();
        for t in trials {
            tally.add(t.grid_index);
        }
        tally
    }
}

/// [`suggest_in_sweep`] for the strategies without a model, from a [`Tally`] of the runs
/// instead of the runs themselves: the same answer in time that does not grow with the runs
/// (except `random` without replacement over a space nearly used up, which picks among the
/// free positions). `None` for `tpe` and `bayes`, which need the runs.
pub fn suggest_by_tally(
    config: &SweepConfig,
    tally: &Tally,
    sweep_seed: u64,
    number: u64,
) -> Option<Result<Ask, SearchError>> {
    let seed = run_seed(sweep_seed, number);
    Some(match config.method {
        Method::Grid => grid_at(config, tally.grid_free, seed),
        Method::Random if config.sample_without_replacement => {
            random_free_position(config, &tally.grid_used, seed)
        }
        Method::Random => Ok(Ask::Suggest(random(config, seed))),
        Method::Sobol => Ok(Ask::Suggest(quasi_random(
            config,
            tally.trials,
            seed,
            sweep_seed,
            "sobol",
        ))),
        Method::Tpe | Method::Bayes => return None,
    })
}

/// Point `index` of the sweep's scrambled Sobol sequence, decoded.
pub(crate) fn quasi_random(
    config: &SweepConfig,
    index: u64,
    seed: u64,
    sequence_seed: u64,
    strategy: &str,
) -> Suggestion {
    initial_point(
        &Space::new(config),
        None,
        index,
        seed,
        sequence_seed,
        strategy,
    )
}

/// Sobol points the initial design of a finite space walks past taken configurations.
const SOBOL_SKIP: u64 = 64;

/// The initial-design suggestion of a model-based strategy: point `index` of the sweep's
/// scrambled Sobol sequence; with `taken` (a finite space, see [`finite`]), the first
/// point from `index` on whose configuration is untried (at most [`SOBOL_SKIP`] further),
/// else a random untried configuration.
pub(crate) fn initial_point(
    space: &Space<'_>,
    taken: Option<&Taken>,
    index: u64,
    seed: u64,
    sequence_seed: u64,
    strategy: &str,
) -> Suggestion {
    let sobol = sobol::Sobol::new(space.len().max(1), Some(sequence_seed));
    let mut point = space.from_cube(&sobol.point(index));
    let mut diagnostics = serde_json::json!({ "phase": "initial", "sobol_index": index });
    if let Some(taken) = taken {
        let free = (index..index.saturating_add(SOBOL_SKIP))
            .map(|i| (i, space.from_cube(&sobol.point(i))))
            .find(|(_, p)| !taken.contains(space, p));
        match free {
            Some((i, p)) => {
                point = p;
                diagnostics["sobol_index"] = i.into();
            }
            None => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                if let Some(p) = taken.random_untried(space, &mut rng) {
                    point = p;
                    diagnostics = serde_json::json!({ "phase": "initial", "random_untried": true });
                }
            }
        }
        diagnostics["untried"] = finite_untried(taken).into();
    }
    Suggestion {
        params: space.decode(&point),
        info: SuggestionInfo {
            strategy: strategy.into(),
            seed,
            grid_index: None,
            diagnostics: Some(diagnostics),
        },
    }
}

/// The number of untried configurations, for diagnostics (saturating at `u64::MAX`).
pub(crate) fn finite_untried(taken: &Taken) -> u64 {
    u64::try_from(taken.size.saturating_sub(taken.len() as u128)).unwrap_or(u64::MAX)
}

/// The runs as a model-based strategy sees them, oriented so that smaller is better.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Observed points, in run order.
    pub points: Vec<Point>,
    /// Their values (negated metric when the goal is `maximize`; imputed for failed runs).
    pub values: Vec<f64>,
    /// For each observation, whether its value was imputed.
    pub imputed: Vec<bool>,
    /// Points of runs in flight, without a value.
    pub pending: Vec<Point>,
    /// A multi-objective sweep's objective vectors of the observations, oriented to
    /// minimize (see [`multi`]); empty for a single-objective sweep.
    pub objectives: Vec<Vec<f64>>,
}

impl History {
    /// Sort `trials` out for `space` as [`metric::count`] decides (W&B's imputation, see
    /// [`metric`]): runs with their metric are observations; failed, crashed and cancelled
    /// runs, and finished runs without a metric, are imputed per `metric.impute`; running
    /// runs are pending, or with `metric.impute_while_running` observations with their own
    /// metric (or the sweep's worst value). Runs with nothing to impute from are left out;
    /// so are trials whose parameters are not in the space.
    pub fn new(config: &SweepConfig, space: &Space<'_>, trials: &[Trial]) -> Self {
        if config.is_multi_objective() {
            return multi::history(config, space, trials);
        }
        let metric = config.metric.as_ref();
        let sign = match metric.map(|m| m.goal) {
            Some(Goal::Maximize) => -1.0,
            _ => 1.0,
        };
        let mut h = History::default();
        for (t, counted) in trials.iter().zip(metric::count(metric, trials)) {
            let Some(point) = space.encode(&t.params) else {
                continue;
            };
            match counted {
                metric::Counted::Observed(v) => {
                    h.points.push(point);
                    h.values.push(sign * v);
                    h.imputed.push(false);
                }
                metric::Counted::Imputed(v) => {
                    h.points.push(point);
                    h.values.push(sign * v);
                    h.imputed.push(true);
                }
                metric::Counted::Pending => h.pending.push(point),
                metric::Counted::Omitted => {}
            }
        }
        h
    }
}

/// Grid: the lowest grid position no run has taken yet, so concurrent claims (serialized by
/// the controller's transaction) never repeat a configuration.
fn next_grid(config: &SweepConfig, trials: &[Trial], seed: u64) -> Result<Ask, SearchError> {
    let used: HashSet<u64> = trials.iter().filter_map(|t| t.grid_index).collect();
    let next = (0..).find(|i| !used.contains(i)).unwrap_or(u64::MAX);
    grid_at(config, next, seed)
}

/// Grid position `next` (the lowest one no run has taken), or exhausted past the grid's end.
fn grid_at(config: &SweepConfig, next: u64, seed: u64) -> Result<Ask, SearchError> {
    let size = grid::grid_size(&config.parameters)?;
    if u128::from(next) >= size {
        return Ok(Ask::Exhausted);
    }
    Ok(Ask::Suggest(Suggestion {
        params: grid::grid_point(&config.parameters, u128::from(next))?,
        info: SuggestionInfo {
            strategy: "grid".into(),
            seed,
            grid_index: Some(next),
            diagnostics: None,
        },
    }))
}

/// Random: every parameter drawn independently from its distribution.
fn random(config: &SweepConfig, seed: u64) -> Suggestion {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = config
        .parameters
        .iter()
        .map(|p| (p.name.clone(), p.distribution.sample(&mut rng)))
        .collect();
    Suggestion {
        params,
        info: SuggestionInfo {
            strategy: "random".into(),
            seed,
            grid_index: None,
            diagnostics: None,
        },
    }
}

/// Random without replacement over a finite space: a uniformly random grid position among
/// those not yet taken.
fn random_without_replacement(
    config: &SweepConfig,
    trials: &[Trial],
    seed: u64,
) -> Result<Ask, SearchError> {
    let used: HashSet<u64> = trials.iter().filter_map(|t| t.grid_index).collect();
    random_free_position(config, &used, seed)
}

/// A uniformly random grid position not in `used`.
fn random_free_position(
    config: &SweepConfig,
    used: &HashSet<u64>,
    seed: u64,
) -> Result<Ask, SearchError> {
    let size = grid::grid_size(&config.parameters)?;
    if used.len() as u128 >= size {
        return Ok(Ask::Exhausted);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let size64 = u64::try_from(size).unwrap_or(u64::MAX);
    // Rejection sampling is fast while the space is mostly free; when it is mostly taken,
    // pick among the free positions directly.
    let mut pick = None;
    for _ in 0..64 {
        let i = rng.random_range(0..size64);
        if !used.contains(&i) {
            pick = Some(i);
            break;
        }
    }
    let index = match pick {
        Some(i) => i,
        None => {
            let free = size64 - used.len() as u64;
            let k = rng.random_range(0..free);
            (0..size64)
                .filter(|i| !used.contains(i))
                .nth(k as usize)
                .unwrap_or(0)
        }
    };
    Ok(Ask::Suggest(Suggestion {
        params: grid::grid_point(&config.parameters, u128::from(index))?,
        info: SuggestionInfo {
            strategy: "random".into(),
            seed,
            grid_index: Some(index),
            diagnostics: None,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> SweepConfig {
        hyperdial_space::parse_str(text, "t.yaml").unwrap().config
    }

    fn taken(ask: &Ask) -> Trial {
        let Ask::Suggest(s) = ask else {
            panic!("exhausted")
        };
        Trial {
            params: s.params.iter().cloned().collect(),
            grid_index: s.info.grid_index,
            running: true,
            ..Default::default()
        }
    }

    #[test]
    fn grid_hands_out_each_point_once_then_ends() {
        let c = config(
            "program: t\nmethod: grid\nparameters: {a: {values: [1, 2, 3]}, b: {values: [x, y]}}\n",
        );
        let mut trials = Vec::new();
        let mut seen = HashSet::new();
        loop {
            match suggest(&c, &trials, 0).unwrap() {
                Ask::Exhausted => break,
                ask => {
                    let t = taken(&ask);
                    assert!(seen.insert(serde_json::to_string(&t.params).unwrap()));
                    trials.push(t);
                }
            }
        }
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn grid_fills_gaps_first() {
        let c = config("program: t\nmethod: grid\nparameters: {a: {values: [1, 2, 3]}}\n");
        let trials = vec![
            Trial {
                grid_index: Some(0),
                ..Default::default()
            },
            Trial {
                grid_index: Some(2),
                ..Default::default()
            },
        ];
        let Ask::Suggest(s) = suggest(&c, &trials, 0).unwrap() else {
            panic!()
        };
        assert_eq!(s.info.grid_index, Some(1));
        assert_eq!(s.params[0].1, serde_json::json!(2));
    }

    #[test]
    fn random_is_reproducible_per_seed() {
        let c = config("program: t\nmethod: random\nparameters: {lr: {distribution: log_uniform_values, min: 1e-4, max: 1}}\n");
        let a = suggest(&c, &[], run_seed(7, 1)).unwrap();
        let b = suggest(&c, &[], run_seed(7, 1)).unwrap();
        let d = suggest(&c, &[], run_seed(7, 2)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, d);
    }

    #[test]
    fn without_replacement_covers_the_space_exactly() {
        let c = config(
            "program: t\nmethod: random\nsample_without_replacement: true\nparameters: {a: {values: [1, 2, 3, 4]}, b: {min: 1, max: 5}}\n",
        );
        let mut trials = Vec::new();
        let mut n = 0;
        while let Ask::Suggest(_) = suggest(&c, &trials, run_seed(3, n)).unwrap() {
            let t = taken(&suggest(&c, &trials, run_seed(3, n)).unwrap());
            trials.push(t);
            n += 1;
            assert!(n <= 20);
        }
        let distinct: HashSet<_> = trials.iter().map(|t| t.grid_index).collect();
        assert_eq!(distinct.len(), 20);
        assert_eq!(trials.len(), 20);
    }

    #[test]
    fn run_seeds_differ() {
        let seeds: HashSet<u64> = (0..1000).map(|n| run_seed(42, n)).collect();
        assert_eq!(seeds.len(), 1000);
    }
}

#[cfg(test)]
mod strategy_tests;
