//! The model's estimate of the best configuration that has run: under a noisy metric, the run
//! with the best observed value is a lucky draw as often as the best configuration, and the
//! best run a user reports should not be one (the incumbent of noisy Bayesian optimization;
//! Picheny et al., 2013, *A benchmark of kriging-based infill criteria for noisy
//! optimization*, compare the rules).
//!
//! The rule: fit the same Gaussian process `bayes` fits (Matérn-5/2, fitted noise, the same
//! encoding and output warp; see [`super`]) to the runs that have a result, and take the run
//! whose configuration has the best posterior mean, provided the model gives it a
//! probability of at least [`MIN_P_BETTER`] of being better than the run with the best
//! value; otherwise the estimate is that run. The mean at a run pools its own value with
//! those of its neighbours, in proportion to how much the fitted noise says one value is
//! worth: with a deterministic metric the fitted noise is tiny, the mean at each run is its
//! value, and the estimate is the run with the best value; with noise, a run whose value is
//! far better than its neighbours' is pulled back towards them.
//!
//! The fit works harder than a suggestion's ([`gp::Effort::thorough`]): its starts include
//! noisy ones, every start is refined, and the highest posterior wins, since a fit that took
//! the noise for wiggles would estimate the lucky run best again.
//!
//! Pure and seeded like the strategies: the same runs and seed give the same estimate. The
//! cost is one model fit (tens of milliseconds for a hundred runs; above
//! [`super::FIT_MAX`] results the fit uses a subset, as `bayes` does).

use hyperdial_space::{Goal, SweepConfig};

use super::gp::{self, Gp};
use super::{select, Warp};
use crate::encode::Space;
use crate::Trial;

/// Fewest results for an estimate: below it, a model says nothing the values do not.
pub const MIN_RESULTS: usize = 5;

/// How sure the model must be that the best posterior mean's configuration beats the best
/// run's before the estimate is another run than the best one: `Φ(z) ≥ 0.75` (3 to 1), with
/// `z = (μ_best run − μ_estimate) / √(s²_best run + s²_estimate)`. On a rugged
/// deterministic metric (a lookup table) a GP fitted with noise smooths real differences
/// away, and a bare best posterior mean would trade the best configuration for a neighbour;
/// measured in `bench/results/quality-estimate.md`.
pub const MIN_P_BETTER: f64 = 0.75;

/// The model's estimate of the best run, in metric units (not negated for `maximize`).
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Index into the trials given of the run estimated best.
    pub trial: usize,
    /// The posterior mean of the metric at its configuration.
    pub mean: f64,
    /// The posterior standard deviation of that mean (the model's uncertainty about the
    /// configuration's true value, not the spread of one run's value).
    pub sd: f64,
    /// The fitted standard deviation of one run's value about its configuration's mean
    /// (the metric's noise), near the estimate.
    pub noise_sd: f64,
    /// Index of the run with the best observed value (the earliest on ties).
    pub observed: usize,
    /// The posterior mean at that run's configuration.
    pub observed_mean: f64,
    /// When the estimate is another run than the best observed one: the model's probability
    /// that its configuration is better than that run's (at least [`MIN_P_BETTER`]).
    pub p_better: Option<f64>,
    /// How many results the model was fitted to.
    pub results: usize,
}

/// The estimate over `trials` (a sweep's runs in any order) for a single-objective `config`:
/// `None` for a multi-objective sweep or one without a metric, and with fewer than
/// [`MIN_RESULTS`] runs that have a value and neither failed nor are running. Runs whose
/// parameters are outside the space are left out.
pub fn estimated_best(config: &SweepConfig, trials: &[Trial], seed: u64) -> Option<Estimate> {
    if config.is_multi_objective() {
        return None;
    }
    let goal = config.metric.as_ref()?.goal;
    let sign = if goal == Goal::Maximize { -1.0 } else { 1.0 };
    let space = Space::new(config);
    let mut index = Vec::new();
    let mut points = Vec::new();
    let mut values = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        if t.running || t.failed {
            continue;
        }
        let Some(v) = t.value.filter(|v| v.is_finite()) else {
            continue;
        };
        let Some(point) = space.encode(&t.params) else {
            continue;
        };
        index.push(i);
        points.push(point);
        values.push(sign * v);
    }
    if values.len() < MIN_RESULTS {
        return None;
    }
    // The earliest of the best observed values.
    let observed = (0..values.len()).fold(0, |b, i| if values[i] < values[b] { i } else { b });
    if space.is_empty() {
        // Nothing searched: every run has the same configuration.
        return Some(Estimate {
            trial: index[observed],
            mean: sign * values[observed],
            sd: 0.0,
            noise_sd: 0.0,
            observed: index[observed],
            observed_mean: sign * values[observed],
            p_better: None,
            results: values.len(),
        });
    }
    let width = space.width;
    let (fit_idx, post_idx) = select(&values, seed);
    let raw: Vec<f64> = post_idx.iter().map(|&i| values[i]).collect();
    let warp = Warp::fit(&raw);
    let mut feat = Vec::with_capacity(width);
    let features = |idx: &[usize], feat: &mut Vec<f64>| {
        let mut x = Vec::with_capacity(idx.len() * width);
        for &i in idx {
            space.features(&points[i], feat);
            x.extend_from_slice(feat);
        }
        x
    };
    let x = features(&post_idx, &mut feat);
    let y: Vec<f64> = raw.iter().map(|&v| warp.forward(v)).collect();
    let (fx, fy) = if fit_idx.len() == post_idx.len() {
        (x.clone(), y.clone())
    } else {
        let fy = fit_idx.iter().map(|&i| warp.forward(values[i])).collect();
        (features(&fit_idx, &mut feat), fy)
    };
    let (hyper, _) = gp::fit(&fx, &fy, width, seed, gp::Effort::thorough(fy.len()));
    let noise = hyper.noise.sqrt();
    let model = Gp::new(x.clone(), &y, width, hyper, 0);
    let (mean, var) = model.predict(&x);
    // Every result gets a mean, also those the posterior's subset left out.
    let mut at = vec![None; values.len()];
    for (k, &i) in post_idx.iter().enumerate() {
        at[i] = Some((mean[k], var[k].max(0.0).sqrt()));
    }
    let missing: Vec<usize> = (0..values.len()).filter(|&i| at[i].is_none()).collect();
    if !missing.is_empty() {
        let (m, v) = model.predict(&features(&missing, &mut feat));
        for (k, &i) in missing.iter().enumerate() {
            at[i] = Some((m[k], v[k].max(0.0).sqrt()));
        }
    }
    let at: Vec<(f64, f64)> = at.into_iter().map(|a| a.expect("every result")).collect();
    // The best mean; ties (a model that cannot tell runs apart) go to the best value, then
    // to the earlier run.
    let best = (0..values.len())
        .min_by(|&a, &b| {
            at[a]
                .0
                .total_cmp(&at[b].0)
                .then(values[a].total_cmp(&values[b]))
                .then(a.cmp(&b))
        })
        .expect("at least MIN_RESULTS results");
    // The model's probability that the best mean's configuration is better than the best
    // run's, from their marginal posteriors: their positive correlation is left out, which
    // widens the difference's spread and makes the rule the more cautious the closer they are.
    let (mo, so) = at[observed];
    let (mb, sb) = at[best];
    let z = (mo - mb) / (so * so + sb * sb).sqrt().max(1e-12);
    let p_better = crate::tpe::norm_cdf(z);
    let (best, p_better) = if best != observed && p_better >= MIN_P_BETTER {
        (best, Some(p_better))
    } else {
        (observed, None)
    };
    // Model units to metric units through the warp, and spreads by the warp's slope there.
    let units = |t: f64| sign * warp.inverse(t);
    let spread = |t: f64, s: f64| 0.5 * (warp.inverse(t + s) - warp.inverse(t - s)).abs();
    let (m, s) = at[best];
    Some(Estimate {
        trial: index[best],
        mean: units(m),
        sd: spread(m, s),
        noise_sd: spread(m, noise),
        observed: index[observed],
        observed_mean: units(at[observed].0),
        p_better,
        results: values.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn config(goal: &str) -> SweepConfig {
        let text = format!(
            "method: bayes\nmetric: {{name: loss, goal: {goal}}}\nparameters:\n  \
             x: {{values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}\n  y: {{values: [a, b]}}\n"
        );
        hyperdial_space::parse_str(&text, "t.yaml").unwrap().config
    }

    fn trial(x: i64, y: &str, value: f64) -> Trial {
        Trial {
            params: json!({"x": x, "y": y}).as_object().unwrap().clone(),
            value: Some(value),
            ..Default::default()
        }
    }

    /// A smooth loss, `(x − 6)²/10`, `b` a little worse than `a`.
    fn truth(x: i64, y: &str) -> f64 {
        (x - 6) as f64 * (x - 6) as f64 / 10.0 + if y == "b" { 0.3 } else { 0.0 }
    }

    #[test]
    fn without_noise_the_estimate_is_the_best_value() {
        let trials: Vec<Trial> = (0..10)
            .flat_map(|x| ["a", "b"].map(|y| trial(x, y, truth(x, y))))
            .collect();
        let e = estimated_best(&config("minimize"), &trials, 1).unwrap();
        assert_eq!(e.trial, 12, "{e:?}");
        assert_eq!(e.trial, e.observed);
        assert_eq!(e.p_better, None);
        assert!((e.mean - 0.0).abs() < 0.02, "{e:?}");
        assert!(e.noise_sd < 0.05, "{e:?}");
        assert_eq!(e.results, 20);
    }

    #[test]
    fn a_lucky_draw_far_from_the_optimum_is_not_the_estimate() {
        // Every configuration twice, with noise; one run at x = 1 has a value far below what
        // its configuration and neighbours give.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut trials = Vec::new();
        for _ in 0..2 {
            for x in 0..10 {
                for y in ["a", "b"] {
                    let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                    trials.push(trial(x, y, truth(x, y) + 0.15 * z));
                }
            }
        }
        trials.push(trial(1, "a", -1.0));
        let lucky = trials.len() - 1;
        let e = estimated_best(&config("minimize"), &trials, 3).unwrap();
        assert_eq!(e.observed, lucky, "{e:?}");
        let best = &trials[e.trial].params;
        assert!(
            (5..=7).contains(&best["x"].as_i64().unwrap()),
            "{best:?}: {e:?}"
        );
        assert!(e.observed_mean > e.mean, "{e:?}");
        assert!(e.p_better.is_some_and(|p| p >= MIN_P_BETTER), "{e:?}");
        assert!(e.noise_sd > 0.05, "{e:?}");
    }

    #[test]
    fn maximize_reports_metric_units_and_too_few_results_give_none() {
        let trials: Vec<Trial> = (0..10).map(|x| trial(x, "a", -truth(x, "a"))).collect();
        let e = estimated_best(&config("maximize"), &trials, 1).unwrap();
        assert_eq!(e.trial, 6, "{e:?}");
        assert!(e.mean.abs() < 0.05, "{e:?}");
        assert!(estimated_best(&config("minimize"), &trials[..4], 1).is_none());
        let mut failed = trials.clone();
        for t in failed.iter_mut().skip(3) {
            t.failed = true;
        }
        assert!(estimated_best(&config("minimize"), &failed, 1).is_none());
    }
}
