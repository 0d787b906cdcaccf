//! `method: bayes`: Gaussian-process Bayesian optimization.
//!
//! One suggestion, step by step:
//!
//! 1. **Initial design.** The first `max(10, min(d + 1, 20))` suggestions (`d` searched
//!    parameters), and any made before two runs have a value, are points of the sweep's
//!    scrambled Sobol sequence, indexed by the number of runs so far, so concurrent agents
//!    get distinct, evenly spread points. In a finite space, taken points are skipped
//!    ([`crate::finite`]).
//! 2. **Data.** Finished runs are observations; failed ones get `metric.impute` (worst by
//!    default); running ones are pending (see [`crate::History`]). `maximize` negates the
//!    metric. Inputs are the encoded points ([`crate::encode`]): unit coordinates (log space
//!    for log-scale parameters), one coordinate per numeric `values` list (its values'
//!    positions, in log space when geometric), one-hot blocks for categoricals; constants
//!    are left out.
//! 3. **Outputs** are standardized, then warped by a Yeo–Johnson power transform when that
//!    makes them markedly more normal (likelihood-ratio gain above 2 nats over no warp, at
//!    least 10 observations): heavy right tails, e.g. diverged runs, stop dominating the
//!    fit. See [`Warp`].
//! 4. **Model.** A GP with a Matérn-5/2 ARD kernel and fitted noise, hyperparameters by MAP
//!    with log-normal priors (length scales around half the unit range): 6 starting points
//!    scored and L-BFGS from the best 2 up to 50 observations, 4 and 1 with a looser
//!    tolerance beyond ([`gp`], [`gp::Effort`]).
//! 5. **Fantasies.** Each pending run is added as a noiseless observation at the posterior
//!    mean there (the *kriging believer*), and the incumbent counts it: the mean is
//!    unchanged but the variance collapses around pending points and no improvement is left
//!    to expect at them, so the next ask looks elsewhere. 8 agents asking at once get 8
//!    different, spread-out points.
//! 6. **Incumbent.** Expected improvement is measured from the lowest posterior mean at an
//!    observed point (and the fantasies), not from the lowest observed value: under noise
//!    the lowest value is a lucky draw as often as the best configuration, and measuring
//!    from it makes every point, the best one included, look hopeless, so the search
//!    chases variance (the rule of "plug-in" EI for noisy objectives; Picheny et al., 2013,
//!    *A benchmark of kriging-based infill criteria for noisy optimization*). With the
//!    fitted noise small (a deterministic metric; the prior's median is `σ_n² ≈ 0.018` of the
//!    standardized variance, see [`gp`]) the mean at a run is nearly its value and little
//!    changes. For a quantized metric whose best value
//!    recurs, such as accuracy on a fixed set, improvement is measured from half a step below
//!    the best value at most, so the search leaves the plateau ([`metric_quantum`]).
//! 7. **Acquisition.** LogEI ([`acquisition`]) below the incumbent, evaluated on 2,048
//!    scrambled Sobol candidates plus Gaussian perturbations of the 5 best observations; the
//!    5 best candidates are refined by bounded L-BFGS ([`optimize`]) over the numeric and
//!    ordinal coordinates (categories held). Discrete coordinates are snapped to their
//!    values' cells, ordinal ones to the nearest value, and the point decoded with
//!    `Distribution::from_unit` (or the listed value), so every suggestion is a valid value
//!    of its distribution. In a finite space ([`crate::finite`]) taken candidates are
//!    dropped, and a space of at most [`crate::finite::ENUMERATE_MAX`] configurations is
//!    scored whole: every untried configuration is a candidate and none is refined.
//!    With conditional parameters (`when`), inactive coordinates are imputed for the GP
//!    and refinement moves only the coordinates active in the candidate
//!    ([`crate::conditional`]).
//! 8. **Failures.** Once a run has failed (not cancelled), the acquisition is LogEI plus
//!    `ln P(feasible)`, a density ratio between the runs that ran and those that failed
//!    ([`crate::feasibility`]). The refinement climbs LogEI alone; the refined point is
//!    kept only when its weighted score beats the best candidate's.
//!
//! **Scale.** Exact GP inference costs `O(n³)`. Above [`FIT_MAX`] observations the
//! hyperparameters are fitted on a subset (the best half of the subset by value, the rest
//! drawn at random from the others, seeded), and above [`POST_MAX`] the posterior is
//! conditioned on such a subset too: the cost stops growing with the number of runs (about
//! 0.1–0.2 s per suggestion on a 2-core machine) while the region around the best runs stays
//! fully resolved.

pub mod acquisition;
pub mod estimate;
pub mod gp;
pub mod optimize;

use std::time::Instant;

use hyperdial_space::{Goal, SweepConfig};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::encode::{Dim, Point, Space};
use crate::feasibility::{Outcomes, ParzenFeasibility};
use crate::finite::Taken;
use crate::sobol::Sobol;
use crate::{finite_untried, initial_point, Ask, History, Suggestion, SuggestionInfo, Trial};
use acquisition::log_ei;
use gp::Gp;
use optimize::{minimize, Options};

/// Most observations the hyperparameters are fitted on.
pub const FIT_MAX: usize = 200;
/// Most observations the posterior is conditioned on (fantasies come on top, at most a
/// quarter of this).
pub const POST_MAX: usize = 400;
/// Sobol candidates for the acquisition.
pub const SOBOL_CANDIDATES: usize = 2048;
/// Perturbations around each of the best observations.
const LOCAL_CANDIDATES: usize = 16;
/// How many of the best observations get local candidates.
const LOCAL_CENTRES: usize = 5;
/// Candidates refined by L-BFGS.
const REFINED: usize = 5;

/// The size of the initial design for `d` searched parameters.
pub fn initial_design(d: usize) -> usize {
    (d + 1).clamp(10, 20)
}

/// Output standardization followed by an optional Yeo–Johnson warp `ψ_λ`:
///
/// ```text
/// ψ_λ(z) = ((z + 1)^λ − 1)/λ            z ≥ 0, λ ≠ 0     (ln(z + 1) at λ = 0)
/// ψ_λ(z) = −((1 − z)^{2−λ} − 1)/(2 − λ)  z < 0,  λ ≠ 2     (−ln(1 − z) at λ = 2)
/// ```
///
/// `λ ∈ [−1, 2]` maximizes the profile log-likelihood of a normal fit,
/// `−n/2 ln σ̂²_ψ + (λ − 1) Σ sign(z) ln(|z| + 1)`, on a grid of step 0.05. The warp is
/// monotone, so it never reorders runs; the warped values are standardized again.
#[derive(Debug, Clone)]
pub struct Warp {
    mean: f64,
    sd: f64,
    lambda: Option<f64>,
    mean2: f64,
    sd2: f64,
}

fn yeo_johnson(z: f64, l: f64) -> f64 {
    if z >= 0.0 {
        if l.abs() < 1e-12 {
            z.ln_1p()
        } else {
            ((z + 1.0).powf(l) - 1.0) / l
        }
    } else if (l - 2.0).abs() < 1e-12 {
        -(-z).ln_1p()
    } else {
        -((1.0 - z).powf(2.0 - l) - 1.0) / (2.0 - l)
    }
}

fn yeo_johnson_inv(p: f64, l: f64) -> f64 {
    if p >= 0.0 {
        if l.abs() < 1e-12 {
            p.exp_m1()
        } else {
            (l * p + 1.0).max(1e-300).powf(1.0 / l) - 1.0
        }
    } else if (l - 2.0).abs() < 1e-12 {
        -(-p).exp_m1()
    } else {
        1.0 - (1.0 - (2.0 - l) * p).max(1e-300).powf(1.0 / (2.0 - l))
    }
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    let sd = var.sqrt();
    (
        m,
        if sd > 1e-12 * m.abs().max(1.0) {
            sd
        } else {
            1.0
        },
    )
}

impl Warp {
    /// Fit the warp to `y`.
    pub fn fit(y: &[f64]) -> Self {
        let (mean, sd) = mean_sd(y);
        let z: Vec<f64> = y.iter().map(|v| (v - mean) / sd).collect();
        let mut lambda = None;
        if z.len() >= 10 {
            let jac: f64 = z.iter().map(|v| v.signum() * v.abs().ln_1p()).sum();
            let n = z.len() as f64;
            let ll = |l: f64| {
                let w: Vec<f64> = z.iter().map(|&v| yeo_johnson(v, l)).collect();
                let (_, s) = mean_sd(&w);
                -0.5 * n * (s * s).ln() + (l - 1.0) * jac
            };
            let base = ll(1.0);
            let mut best = (base, 1.0);
            for k in 0..=60 {
                let l = -1.0 + 0.05 * k as f64;
                let v = ll(l);
                if v.is_finite() && v > best.0 {
                    best = (v, l);
                }
            }
            if best.0 - base > 2.0 {
                lambda = Some(best.1);
            }
        }
        let w: Vec<f64> = z
            .iter()
            .map(|&v| lambda.map_or(v, |l| yeo_johnson(v, l)))
            .collect();
        let (mean2, sd2) = mean_sd(&w);
        Warp {
            mean,
            sd,
            lambda,
            mean2,
            sd2,
        }
    }

    /// Raw value → model space.
    pub fn forward(&self, y: f64) -> f64 {
        let z = (y - self.mean) / self.sd;
        (self.lambda.map_or(z, |l| yeo_johnson(z, l)) - self.mean2) / self.sd2
    }

    /// Model space → raw value.
    pub fn inverse(&self, t: f64) -> f64 {
        let w = t * self.sd2 + self.mean2;
        self.lambda.map_or(w, |l| yeo_johnson_inv(w, l)) * self.sd + self.mean
    }

    /// The Yeo–Johnson exponent, when the warp is on.
    pub fn lambda(&self) -> Option<f64> {
        self.lambda
    }
}

/// The observations used: `(fit, posterior)` index lists into the history. Both start with
/// the best observations; the rest are a seeded random sample of the others, the fit set a
/// prefix of the posterior set.
fn select(values: &[f64], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let n = values.len();
    if n <= FIT_MAX {
        let all: Vec<usize> = (0..n).collect();
        return (all.clone(), all);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let post_n = n.min(POST_MAX);
    let best_post = post_n / 2;
    let best_fit = FIT_MAX / 2;
    let mut rest: Vec<usize> = order[best_post..].to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5e1e_c7ed);
    rest.shuffle(&mut rng);
    let mut post: Vec<usize> = order[..best_post].to_vec();
    post.extend(rest.iter().take(post_n - best_post));
    let mut fit: Vec<usize> = order[..best_fit].to_vec();
    // The best `best_post − best_fit` that the fit skips are replaced by random others.
    fit.extend(rest.iter().take(FIT_MAX - best_fit));
    (fit, post)
}

/// The Bayesian-optimization suggestion; see the module documentation.
/// [`Ask::Exhausted`] only in a finite space whose every configuration has run
/// ([`crate::finite`]).
pub fn suggest(config: &SweepConfig, trials: &[Trial], seed: u64, sequence_seed: u64) -> Ask {
    suggest_with(config, trials, seed, sequence_seed, true)
}

/// [`suggest`], with the feasibility model ([`crate::feasibility`]) on or off.
pub(crate) fn suggest_with(
    config: &SweepConfig,
    trials: &[Trial],
    seed: u64,
    sequence_seed: u64,
    feasibility: bool,
) -> Ask {
    let started = Instant::now();
    let space = Space::new(config);
    let taken = Taken::new(config, &space, trials);
    if taken.as_ref().is_some_and(Taken::exhausted) {
        return Ask::Exhausted;
    }
    // Failures: the feasibility model (crate::feasibility); the objective model keeps
    // them as `metric.impute` says.
    let outcomes = Outcomes::new(&space, trials).filter(|_| feasibility);
    let mut history = History::new(config, &space, trials);
    crate::multi::scalarize(&mut history, seed);
    let n_init = initial_design(space.len());
    if space.is_empty() || trials.len() < n_init || history.values.len() < 2 {
        return Ask::Suggest(initial_point(
            &space,
            taken.as_ref(),
            trials.len() as u64,
            seed,
            sequence_seed,
            "bayes",
        ));
    }
    let width = space.width;
    let (fit_idx, post_idx) = select(&history.values, seed);
    let raw: Vec<f64> = post_idx.iter().map(|&i| history.values[i]).collect();
    let warp = Warp::fit(&raw);
    let y: Vec<f64> = raw.iter().map(|&v| warp.forward(v)).collect();
    let mut feat = Vec::with_capacity(width);
    let mut x = Vec::with_capacity(post_idx.len() * width);
    for &i in &post_idx {
        space.features(&history.points[i], &mut feat);
        x.extend_from_slice(&feat);
    }
    // The fit set, when it is not every observation used.
    let (fx, fy) = if fit_idx.len() == post_idx.len() {
        (x.clone(), y.clone())
    } else {
        let mut fx = Vec::with_capacity(fit_idx.len() * width);
        let mut fy = Vec::with_capacity(fit_idx.len());
        for &i in &fit_idx {
            space.features(&history.points[i], &mut feat);
            fx.extend_from_slice(&feat);
            fy.push(warp.forward(history.values[i]));
        }
        (fx, fy)
    };
    let (hyper, fit_evals) = gp::fit(
        &fx,
        &fy,
        width,
        seed,
        gp::Effort::for_observations(fy.len()),
    );
    let fit_ms = started.elapsed().as_secs_f64() * 1e3;
    let n_obs = y.len();
    let mut gp = Gp::new(x.clone(), &y, width, hyper, 0);
    // The incumbent: the best posterior mean at an observed point, not the best observed
    // value, which under noise is a lucky draw more often than the best configuration.
    let (observed_mean, _) = gp.predict(&x);
    // Fantasies: the most recent pending runs, at most a quarter of POST_MAX.
    let pending: Vec<&Point> = history.pending.iter().rev().take(POST_MAX / 4).collect();
    let mut fantasy_best = f64::INFINITY;
    if !pending.is_empty() {
        let mut px = Vec::with_capacity(pending.len() * width);
        for p in &pending {
            space.features(p, &mut feat);
            px.extend_from_slice(&feat);
        }
        let (mu, _) = gp.predict(&px);
        let mut xa = x;
        xa.extend_from_slice(&px);
        let mut ya = y.clone();
        ya.extend_from_slice(&mu);
        gp = Gp::new(xa, &ya, width, gp.hyper.clone(), pending.len());
        fantasy_best = mu.iter().copied().fold(f64::INFINITY, f64::min);
    }
    // The incumbent counts the fantasies as observations: a pending run predicted to beat
    // the best so far leaves no improvement to expect at its own point.
    let mut best_y = observed_mean.iter().copied().fold(fantasy_best, f64::min);
    // A quantized metric (accuracy on a fixed set) whose best value keeps recurring sits on
    // a plateau; improving on it means reaching the next step, so expected improvement is
    // measured from half a step below the best instead of inviting more runs onto the
    // plateau.
    // Imputed values (failed runs) are no evidence of a quantum.
    let observed: Vec<f64> = post_idx
        .iter()
        .filter(|&&i| !history.imputed[i])
        .map(|&i| history.values[i])
        .collect();
    let quantum = metric_quantum(&observed);
    if let Some(q) = quantum {
        let raw_best = observed.iter().copied().fold(f64::INFINITY, f64::min);
        best_y = best_y.min(warp.forward(raw_best - 0.5 * q));
    }

    // Candidates: in a small finite space every untried configuration, else Sobol points
    // and perturbations of the best observations (untried ones only, in a finite space).
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let enumerated = taken.as_ref().and_then(|t| t.untried(&space));
    let exhaustive = enumerated.is_some();
    let mut cands: Vec<Point> = enumerated.unwrap_or_default();
    let sobol = Sobol::new(space.len(), Some(seed));
    if !exhaustive {
        cands.extend((0..SOBOL_CANDIDATES as u64).map(|i| space.from_cube(&sobol.point(i))));
    }
    let mut ranked: Vec<usize> = (0..n_obs).collect();
    ranked.sort_by(|&a, &b| y[a].total_cmp(&y[b]));
    let n_dims = space.len();
    let local_centres = if exhaustive { 0 } else { LOCAL_CENTRES };
    for &i in ranked.iter().take(local_centres) {
        let centre = &history.points[post_idx[i]];
        for k in 0..LOCAL_CANDIDATES {
            // Scales from 0.2 down to 0.0125: coarse and fine moves.
            let scale = 0.2 / f64::from(1u32 << (k % 5));
            let mut p = centre.clone();
            for (dim, v) in space.dims.iter().zip(p.iter_mut()) {
                match dim {
                    Dim::Numeric { .. } | Dim::Ordinal { .. } => *v += scale * normal(&mut rng),
                    Dim::Categorical { choices, .. } => {
                        if rng.random::<f64>() < 1.0 / n_dims as f64 {
                            *v = rng.random_range(0..choices.len()) as f64;
                        }
                    }
                }
            }
            space.snap(&mut p);
            cands.push(p);
        }
    }
    if let Some(t) = &taken {
        if !exhaustive {
            cands.retain(|p| !t.contains(&space, p));
        }
        if cands.is_empty() {
            cands.extend(t.random_untried(&space, &mut rng));
        }
    }
    if cands.is_empty() {
        // Unreachable: a space with an untried configuration yields one.
        return Ask::Exhausted;
    }
    let mut cx = Vec::with_capacity(cands.len() * width);
    for c in &cands {
        space.features(c, &mut feat);
        cx.extend_from_slice(&feat);
    }
    let (cm, cv) = gp.predict(&cx);
    let mut scores: Vec<f64> = cm
        .iter()
        .zip(&cv)
        .map(|(&m, &v)| log_ei(m, v, best_y).0)
        .collect();
    // Constraint-weighted EI: + ln P(feasible).
    let feasible = outcomes.as_ref().map(|o| ParzenFeasibility::new(&space, o));
    if let Some(f) = &feasible {
        for (s, c) in scores.iter_mut().zip(&cands) {
            *s += f.log_p(c);
        }
    }
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));

    // Refinement over the numeric coordinates.
    let numeric: Vec<(usize, usize)> = {
        let mut out = Vec::new();
        let mut f = 0;
        for (i, dim) in space.dims.iter().enumerate() {
            match dim {
                Dim::Numeric { .. } | Dim::Ordinal { .. } => {
                    out.push((i, f));
                    f += 1;
                }
                Dim::Categorical { choices, .. } => f += choices.len(),
            }
        }
        out
    };
    let active: Vec<usize> = numeric.iter().map(|&(_, f)| f).collect();
    let mut best = (
        scores[order[0]],
        cands[order[0]].clone(),
        cm[order[0]],
        cv[order[0]],
    );
    if !active.is_empty() && !exhaustive {
        let lo = vec![0.0; active.len()];
        let hi = vec![1.0; active.len()];
        for &c in order.iter().take(REFINED) {
            let start = &cands[c];
            space.features(start, &mut feat);
            let base = feat.clone();
            // Only the coordinates active in the candidate move (conditional parameters).
            let numeric: Vec<(usize, usize)> = numeric
                .iter()
                .copied()
                .filter(|&(dim, _)| !start[dim].is_nan())
                .collect();
            let active: Vec<usize> = numeric.iter().map(|&(_, f)| f).collect();
            if active.is_empty() {
                continue;
            }
            let (lo, hi) = (&lo[..active.len()], &hi[..active.len()]);
            let u0: Vec<f64> = active.iter().map(|&f| base[f]).collect();
            let mut xf = base.clone();
            let m = minimize(
                |u, g| {
                    for (k, &f) in active.iter().enumerate() {
                        xf[f] = u[k];
                    }
                    let (mu, var, dmu, dvar) = gp.predict_grad(&xf, &active);
                    let (val, dm, dv) = log_ei(mu, var, best_y);
                    for k in 0..g.len() {
                        g[k] = -(dm * dmu[k] + dv * dvar[k]);
                    }
                    -val
                },
                &u0,
                lo,
                hi,
                Options {
                    max_iter: 30,
                    pgtol: 1e-5,
                    ftol: 1e-9,
                    ..Default::default()
                },
            );
            let mut p = start.clone();
            for (k, &(dim, _)) in numeric.iter().enumerate() {
                p[dim] = m.x[k];
            }
            space.snap(&mut p);
            if taken.as_ref().is_some_and(|t| t.contains(&space, &p)) {
                continue;
            }
            space.features(&p, &mut feat);
            let (pm, pv) = gp.predict(&feat);
            let s = log_ei(pm[0], pv[0], best_y).0 + feasible.as_ref().map_or(0.0, |f| f.log_p(&p));
            if s > best.0 {
                best = (s, p, pm[0], pv[0]);
            }
        }
    }
    let (score, point, mean, var) = best;
    let p_feasible = feasible.as_ref().map(|f| round4(f.log_p(&point).exp()));
    let sign = match config.metric.as_ref().map(|m| m.goal) {
        // A multi-objective sweep models its scalarization, which is minimized.
        _ if config.is_multi_objective() => 1.0,
        Some(Goal::Maximize) => -1.0,
        _ => 1.0,
    };
    let sd = var.sqrt();
    let metric_mean = sign * warp.inverse(mean);
    let metric_sd = 0.5 * (warp.inverse(mean + sd) - warp.inverse(mean - sd)).abs();
    let hyper = &gp.hyper;
    let lengthscales: serde_json::Map<String, serde_json::Value> = {
        let mut out = serde_json::Map::new();
        let mut f = 0;
        for dim in &space.dims {
            let w = match dim {
                Dim::Numeric { .. } | Dim::Ordinal { .. } => 1,
                Dim::Categorical { choices, .. } => choices.len(),
            };
            let param = dim.param();
            let l = hyper.lengthscales[f..f + w]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            out.insert(config.parameters[param].name.clone(), json!(round4(l)));
            f += w;
        }
        out
    };
    Ask::Suggest(Suggestion {
        params: space.decode(&point),
        info: SuggestionInfo {
            strategy: "bayes".into(),
            seed,
            grid_index: None,
            diagnostics: Some(json!({
                "phase": "model",
                "mean": finite(metric_mean),
                "std": finite(metric_sd),
                "log_ei": finite(score),
                "observations": n_obs,
                "fit_observations": fit_idx.len(),
                "total_observations": history.values.len(),
                "imputed": history.imputed.iter().filter(|&&b| b).count(),
                "fantasies": pending.len(),
                "lengthscales": lengthscales,
                "signal": round4(hyper.signal),
                "noise": round4(hyper.noise),
                "warp_lambda": warp.lambda(),
                "metric_quantum": quantum,
                "fit_evals": fit_evals,
                "fit_ms": round4(fit_ms),
                "incumbent": finite(sign * warp.inverse(best_y)),
                "candidates": cands.len(),
                "untried": taken.as_ref().map(finite_untried),
                "failures": outcomes.as_ref().map(Outcomes::failures),
                "p_feasible": p_feasible,
                "total_ms": round4(started.elapsed().as_secs_f64() * 1e3),
            })),
        },
    })
}

/// The step of a quantized metric (accuracy over a fixed evaluation set, a count), when the
/// best value (smallest) has been observed at least three times: the gap from the best
/// value to the next distinct one. `None` for a metric that looks continuous.
///
/// ```
/// use hyperdial_search::bayes::metric_quantum;
/// let acc_err = [0.05, 0.04, 0.04, 0.06, 0.04, 0.05];
/// assert!((metric_quantum(&acc_err).unwrap() - 0.01).abs() < 1e-12);
/// assert_eq!(metric_quantum(&[0.3, 0.1, 0.2, 0.1]), None); // best seen twice only
/// ```
pub fn metric_quantum(raw: &[f64]) -> Option<f64> {
    let best = raw.iter().copied().fold(f64::INFINITY, f64::min);
    let scale = raw
        .iter()
        .fold(best.abs(), |m, x| m.max(x.abs()))
        .max(1e-300);
    let tol = 1e-9 * scale;
    if !best.is_finite() || raw.iter().filter(|&&x| x - best <= tol).count() < 3 {
        return None;
    }
    raw.iter()
        .copied()
        .filter(|&x| x - best > tol)
        .min_by(f64::total_cmp)
        .map(|next| next - best)
}

fn round4(x: f64) -> f64 {
    if x.is_finite() && x != 0.0 {
        let digits = 4 - x.abs().log10().ceil() as i32;
        let f = 10f64.powi(digits.clamp(-300, 300));
        (x * f).round() / f
    } else {
        finite(x)
    }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// A standard normal draw (Box–Muller).
fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
