//! `method: tpe`: a multivariate tree-structured Parzen estimator, after Bergstra et al.
//! (2011) and Optuna's `TPESampler(multivariate=True, constant_liar=True)`.
//!
//! With `n` observations `(x_i, y_i)` (smaller `y` is better, failed runs imputed), TPE
//! splits them at the `γ`-quantile into a good group `L` (the `n_L = min(⌈0.1 n⌉, 25)`
//! best) and a bad group `G` (the rest, plus every run in flight: the *constant liar*, which
//! pretends pending runs turned out badly so concurrent asks move away from them). Each
//! group becomes a mixture density over the encoded space (see [`crate::encode`]):
//!
//! ```text
//! l(x) = Σ_{i∈L} w_i K_i(x) + w_0 K_0(x),      g(x) likewise over G
//! ```
//!
//! where `K_i` is a product kernel centred on `x_i` and `K_0` a broad prior component
//! (weight `w_0 ∝ 1`). A numeric coordinate gets a normal kernel truncated to `[0, 1]`
//! whose bandwidth is the larger gap to the observation's neighbours along that coordinate
//! within its group (the rule of Optuna's univariate TPE, without the bounds as
//! neighbours), clipped to `[1/min(100, n_group + 1), 1]`; the prior component is `N(½, 1)`
//! truncated. Kernels narrow where a group's runs crowd together: the good group's around
//! the optimum, so the search converges, and the bad group's around each run already tried,
//! so its density stops penalizing the whole region those runs sit in. (One bandwidth per
//! group by Scott's rule, `0.2 · n^{−1/(d+4)}`, as in Optuna's multivariate mode, ranked
//! 5.1 of 8 optimizers at 50 trials in bench/quality; these bandwidths 4.7, Optuna's TPE
//! 4.6, with about ±0.3 of seed noise.) A categorical coordinate with `k` choices gets probability
//! `(1 + 1/k)/2` at the observed choice and `(1/k)/2` at each other one (uniform for the
//! prior). In `G`, older runs weigh less once there are more than 25 (a linear ramp from
//! `1/n` to `1`, the newest 25 at full weight). All coordinates of a kernel share its
//! component (the *multivariate* TPE), so dependencies between parameters are kept.
//!
//! An ordinal coordinate (a numeric `values` list, see [`crate::encode`]) gets the numeric
//! kernel, at least half the mean gap between its values' positions wide, as an integer or
//! quantized one gets half a cell; candidates snap to the nearest listed value.
//!
//! Noise: the split needs no correction. A lucky draw moves one run into `L`, where it is
//! one component of a mixture with the other good runs and the prior, so it shifts the
//! density but cannot pull the search to itself; averaging repeated runs would need
//! repeats, which a finite space does not make ([`crate::finite`]).
//!
//! The suggestion maximizes the expected-improvement proxy `log l(x) − log g(x)` over 24
//! candidates drawn from `l`. Discrete coordinates are snapped to their values' cells
//! before scoring. The first 10 suggestions come from the sweep's scrambled Sobol sequence.
//! In a finite space the configurations runs already have are skipped: candidates are drawn
//! from `l` until 24 untried ones are found (at most 480 draws); when none is, every
//! untried configuration of a small space is scored, or one is drawn at random.
//!
//! With conditional parameters (`when`) the space is decomposed into groups of parameters
//! that are active together; see [`crate::conditional`].
//!
//! Failures: failed runs count through `metric.impute`, and where the feasibility model of
//! [`crate::feasibility`] says a candidate is less than [`FEASIBLE_FLOOR`] likely to run, its
//! score pays `ln (P(feasible) / FEASIBLE_FLOOR)`. Measured on two tasks with a crash region,
//! it cut failed runs from 23.3 to 15.7 in 100 at equal regret (0.064 against 0.068 at 50
//! trials, 0.042 against 0.040 at 100); the whole `ln P(feasible)` with failed runs always in
//! `G` cut them to 13.0 but cost regret (0.061 at 100 trials). Not in conditional spaces.
//!
//! Cost: `O(24 · n · d)` per suggestion plus encoding the runs: about 1 ms at 1,000 runs and
//! 5 ms at 5,000 in 5 dimensions (bench/results/engine.md).

use hyperdial_space::SweepConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::encode::{Dim, Point, Space};
use crate::feasibility::{Outcomes, ParzenFeasibility};
use crate::finite::Taken;
use crate::{finite_untried, initial_point, Ask, History, Suggestion, SuggestionInfo, Trial};

/// Suggestions drawn from the Sobol sequence before the model takes over.
pub const STARTUP_TRIALS: usize = 10;
/// Candidates drawn from `l(x)`.
pub const CANDIDATES: usize = 24;
/// Draws from `l(x)` per candidate wanted, in a finite space where taken configurations
/// are drawn and skipped.
pub(crate) const DRAWS_PER_CANDIDATE: usize = 20;
/// Weight of the prior component, relative to one observation.
const PRIOR_WEIGHT: f64 = 1.0;

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The standard normal distribution function.
pub(crate) fn norm_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2)
}

/// A standard normal draw (Box–Muller).
fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One kernel coordinate.
#[derive(Debug, Clone, Copy)]
enum Kernel {
    /// A normal truncated to `[0, 1]`; `c = −ln σ − ln √(2π) − ln Z`.
    Normal { mu: f64, inv_sigma: f64, c: f64 },
    /// A smoothed point mass on `choice` (`log_hit`), `log_miss` elsewhere.
    Cat {
        choice: usize,
        log_hit: f64,
        log_miss: f64,
    },
}

impl Kernel {
    fn normal(mu: f64, sigma: f64) -> Self {
        let z = (norm_cdf((1.0 - mu) / sigma) - norm_cdf(-mu / sigma)).max(1e-300);
        Kernel::Normal {
            mu,
            inv_sigma: 1.0 / sigma,
            c: -sigma.ln() - LN_SQRT_2PI - z.ln(),
        }
    }

    #[inline]
    fn log_pdf(&self, x: f64) -> f64 {
        match *self {
            Kernel::Normal { mu, inv_sigma, c } => {
                let t = (x - mu) * inv_sigma;
                c - 0.5 * t * t
            }
            Kernel::Cat {
                choice,
                log_hit,
                log_miss,
            } => {
                if x as usize == choice {
                    log_hit
                } else {
                    log_miss
                }
            }
        }
    }

    fn sample<R: Rng>(&self, rng: &mut R, choices: usize) -> f64 {
        match *self {
            Kernel::Normal { mu, inv_sigma, .. } => {
                let sigma = 1.0 / inv_sigma;
                // Rejection: with μ ∈ [0, 1] and σ ≤ 1 at least a third of draws land inside.
                for _ in 0..64 {
                    let x = mu + sigma * normal(rng);
                    if (0.0..=1.0).contains(&x) {
                        return x;
                    }
                }
                mu.clamp(0.0, 1.0)
            }
            Kernel::Cat {
                choice,
                log_hit,
                log_miss,
            } => {
                let (hit, miss) = (log_hit.exp(), log_miss.exp());
                let mut u = rng.random::<f64>() * (hit + miss * (choices - 1) as f64);
                for c in 0..choices {
                    u -= if c == choice { hit } else { miss };
                    if u <= 0.0 {
                        return c as f64;
                    }
                }
                (choices - 1) as f64
            }
        }
    }
}

/// A Parzen estimator: a weighted mixture of product kernels.
#[derive(Debug, Clone)]
pub(crate) struct Parzen {
    dims: usize,
    /// Kernels, `dims` per component.
    kernels: Vec<Kernel>,
    /// Log weights (normalized).
    log_weights: Vec<f64>,
    weights: Vec<f64>,
}

impl Parzen {
    /// The estimator over `points` (weights `weights`, not necessarily normalized) plus the
    /// prior component.
    pub(crate) fn new(space: &Space<'_>, points: &[&Point], weights: &[f64]) -> Self {
        let d = space.len();
        let n = points.len();
        let bandwidths = neighbour_bandwidths(points, d);
        let mut kernels = Vec::with_capacity((n + 1) * d);
        for (pi, p) in points.iter().enumerate() {
            for (k, (dim, &x)) in space.dims.iter().zip(p.iter()).enumerate() {
                kernels.push(match dim {
                    Dim::Numeric { .. } | Dim::Ordinal { .. } => {
                        // A discrete coordinate's kernel is at least half a cell wide.
                        Kernel::normal(x, bandwidths[k][pi].max(dim.half_cell()))
                    }
                    Dim::Categorical { choices, .. } => {
                        let k = choices.len() as f64;
                        let miss = PRIOR_WEIGHT / k / (1.0 + PRIOR_WEIGHT);
                        Kernel::Cat {
                            choice: x as usize,
                            log_hit: (1.0 / (1.0 + PRIOR_WEIGHT) + miss).ln(),
                            log_miss: miss.ln(),
                        }
                    }
                });
            }
        }
        for dim in &space.dims {
            kernels.push(match dim {
                Dim::Numeric { .. } | Dim::Ordinal { .. } => Kernel::normal(0.5, 1.0),
                Dim::Categorical { choices, .. } => {
                    let p = (1.0 / choices.len() as f64).ln();
                    Kernel::Cat {
                        choice: 0,
                        log_hit: p,
                        log_miss: p,
                    }
                }
            });
        }
        let mut w: Vec<f64> = weights.to_vec();
        w.push(PRIOR_WEIGHT);
        let total: f64 = w.iter().sum();
        let weights: Vec<f64> = w.iter().map(|x| x / total).collect();
        Parzen {
            dims: d,
            kernels,
            log_weights: weights.iter().map(|w| w.ln()).collect(),
            weights,
        }
    }

    /// `ln p(x)`, by a streaming log-sum-exp over the components (one pass, no buffer:
    /// the running sum is rescaled whenever a larger term arrives).
    pub(crate) fn log_pdf(&self, x: &[f64]) -> f64 {
        let d = self.dims;
        let mut max = f64::NEG_INFINITY;
        let mut sum = 0.0;
        for (ks, &lw) in self.kernels.chunks_exact(d).zip(&self.log_weights) {
            let mut s = lw;
            for (k, &xi) in ks.iter().zip(x) {
                s += k.log_pdf(xi);
            }
            if s > max {
                sum = sum * (max - s).exp() + 1.0;
                max = s;
            } else {
                sum += (s - max).exp();
            }
        }
        if !max.is_finite() {
            return max;
        }
        max + sum.ln()
    }

    /// A draw: a component by weight, then each coordinate from its kernel.
    pub(crate) fn sample<R: Rng>(&self, space: &Space<'_>, rng: &mut R) -> Point {
        let d = self.dims;
        let mut u = rng.random::<f64>();
        let mut c = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            u -= w;
            if u <= 0.0 {
                c = i;
                break;
            }
        }
        self.kernels[c * d..(c + 1) * d]
            .iter()
            .zip(&space.dims)
            .map(|(k, dim)| {
                let choices = match dim {
                    Dim::Categorical { choices, .. } => choices.len(),
                    Dim::Numeric { .. } | Dim::Ordinal { .. } => 0,
                };
                k.sample(rng, choices)
            })
            .collect()
    }
}

/// Per point and coordinate, the bandwidth of its kernel: the larger of the gaps to its
/// neighbours along that coordinate (the outermost points: the gap to their inner
/// neighbour; a lone point: the distance to the farther bound), clipped to
/// `[1/min(100, n + 1), 1]`. Indexed `[coordinate][point]`.
fn neighbour_bandwidths(points: &[&Point], d: usize) -> Vec<Vec<f64>> {
    let n = points.len();
    let min_bw = 1.0 / (n as f64 + 1.0).min(100.0);
    (0..d)
        .map(|k| {
            // (coordinate, point) pairs sorted by coordinate: contiguous, so the sort
            // stays cheap at thousands of runs.
            let mut sorted: Vec<(f64, usize)> = (0..n).map(|i| (points[i][k], i)).collect();
            sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut out = vec![0.0; n];
            for (r, &(x, i)) in sorted.iter().enumerate() {
                let gap = if n == 1 {
                    x.max(1.0 - x)
                } else if r == 0 {
                    sorted[1].0 - x
                } else if r + 1 == n {
                    x - sorted[r - 1].0
                } else {
                    (x - sorted[r - 1].0).max(sorted[r + 1].0 - x)
                };
                out[i] = gap.clamp(min_bw, 1.0);
            }
            out
        })
        .collect()
}

/// Optuna's default weights for a group of `n` in age order: a ramp from `1/n` to `1` over
/// the oldest `n − 25`, then `1` for the newest 25.
pub(crate) fn age_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// The score's feasibility term for `ln P(feasible)`: nothing where a run is at least
/// [`FEASIBLE_FLOOR`] likely to run, `ln (P / FEASIBLE_FLOOR)` below.
fn veto(log_p: f64) -> f64 {
    (log_p - FEASIBLE_FLOOR.ln()).min(0.0)
}

/// The size of the good group for `n` observations.
pub fn n_below(n: usize) -> usize {
    n.div_ceil(10).clamp(1, 25)
}

/// Below this probability of running, a candidate's score pays for the risk of failing
/// ([`crate::feasibility`]): `min(0, ln P(feasible) − ln FEASIBLE_FLOOR)`.
pub const FEASIBLE_FLOOR: f64 = 0.25;

/// TPE's split of the observations: the good group (the [`n_below`] best by value, or by
/// non-dominated layers for a multi-objective history, [`crate::multi::tpe_order`]) and the
/// rest in observation order. `history` has at least one observation.
pub(crate) fn split(history: &History) -> (Vec<&Point>, Vec<&Point>) {
    let n = history.values.len();
    let nb = n_below(n);
    let order = if history.objectives.is_empty() {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            history.values[a]
                .total_cmp(&history.values[b])
                .then(a.cmp(&b))
        });
        order
    } else {
        crate::multi::tpe_order(&history.objectives, nb)
    };
    let below = order[..nb].iter().map(|&i| &history.points[i]).collect();
    let mut above_idx: Vec<usize> = order[nb..].to_vec();
    above_idx.sort_unstable();
    let above = above_idx.iter().map(|&i| &history.points[i]).collect();
    (below, above)
}

/// The TPE suggestion; see the module documentation. [`Ask::Exhausted`] only in a finite
/// space whose every configuration has run ([`crate::finite`]).
pub fn suggest(config: &SweepConfig, trials: &[Trial], seed: u64, sequence_seed: u64) -> Ask {
    suggest_with(config, trials, seed, sequence_seed, true)
}

/// [`suggest`], with the feasibility veto ([`crate::feasibility`]) on or off.
pub(crate) fn suggest_with(
    config: &SweepConfig,
    trials: &[Trial],
    seed: u64,
    sequence_seed: u64,
    feasibility: bool,
) -> Ask {
    let space = Space::new(config);
    let taken = Taken::new(config, &space, trials);
    if taken.as_ref().is_some_and(Taken::exhausted) {
        return Ask::Exhausted;
    }
    // Failures count through `metric.impute`; the feasibility ratio only vetoes where
    // failure is likely (crate::feasibility).
    let outcomes = Outcomes::new(&space, trials).filter(|_| feasibility);
    let history = History::new(config, &space, trials);
    let n = history.values.len();
    if space.is_empty() || trials.len() < STARTUP_TRIALS || n < 2 {
        return Ask::Suggest(initial_point(
            &space,
            taken.as_ref(),
            trials.len() as u64,
            seed,
            sequence_seed,
            "tpe",
        ));
    }
    if space.is_conditional() {
        return crate::conditional::tpe(&space, config, &history, taken.as_ref(), seed);
    }
    let (below, mut above) = split(&history);
    above.extend(history.pending.iter());
    let feasible = outcomes.as_ref().map(|o| ParzenFeasibility::new(&space, o));

    let l = Parzen::new(&space, &below, &vec![1.0; below.len()]);
    let g = Parzen::new(&space, &above, &age_weights(above.len()));

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<(f64, Point, f64, f64)> = None;
    // Candidates: draws from l; in a finite space untried ones only, and when l keeps
    // drawing taken configurations, every untried one (small spaces) or a random one.
    let mut cands: Vec<Point> = Vec::with_capacity(CANDIDATES);
    match &taken {
        None => {
            for _ in 0..CANDIDATES {
                let mut x = l.sample(&space, &mut rng);
                space.snap(&mut x);
                cands.push(x);
            }
        }
        Some(t) => {
            for _ in 0..CANDIDATES * DRAWS_PER_CANDIDATE {
                let mut x = l.sample(&space, &mut rng);
                space.snap(&mut x);
                if !t.contains(&space, &x) {
                    cands.push(x);
                    if cands.len() == CANDIDATES {
                        break;
                    }
                }
            }
            if cands.is_empty() {
                match t.untried(&space) {
                    Some(all) => cands = all,
                    None => cands.extend(t.random_untried(&space, &mut rng)),
                }
            }
        }
    }
    for x in cands {
        let (ll, lg) = (l.log_pdf(&x), g.log_pdf(&x));
        let score = ll - lg + feasible.as_ref().map_or(0.0, |f| veto(f.log_p(&x)));
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, x, ll, lg));
        }
    }
    let Some((score, x, ll, lg)) = best else {
        // Unreachable: a space with an untried configuration yields a candidate.
        return Ask::Exhausted;
    };
    Ask::Suggest(Suggestion {
        params: space.decode(&x),
        info: SuggestionInfo {
            strategy: "tpe".into(),
            seed,
            grid_index: None,
            diagnostics: Some(json!({
                "phase": "model",
                "observations": n,
                "below": below.len(),
                "above": above.len(),
                "pending": history.pending.len(),
                "log_l": ll,
                "log_g": lg,
                "score": score,
                "untried": taken.as_ref().map(finite_untried),
                "failures": feasible.as_ref().map(ParzenFeasibility::failures),
                "log_feasible": feasible.as_ref().map(|f| f.log_p(&x)),
            })),
        },
    })
}
