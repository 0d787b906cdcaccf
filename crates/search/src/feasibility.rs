//! Failures as evidence: where runs crash, `bayes` and `tpe` stop suggesting.
//!
//! A run that fails (the script exits with an error, runs out of memory, reports NaN or an
//! infinite metric) says nothing about the metric but something about the space: nearby
//! configurations are likely to fail too (a learning rate too high for a batch too small
//! diverges; a model too wide for a batch too large runs out of memory). Both model-based
//! strategies learn that *failure region* from the sweep's runs and weigh each candidate by
//! its probability of running at all.
//!
//! ## What counts as a failure
//!
//! A run that ended `failed` or `crashed`, or whose metric is NaN or infinite
//! ([`is_failure`]). A cancelled run is not: someone stopped it, the configuration did not
//! fail. Runs in flight are neither. The model is active only when the sweep has at least
//! one failure and at least one run that did not fail; otherwise both strategies behave as
//! before, bit for bit.
//!
//! ## The probability that a configuration runs
//!
//! Bayes' rule over two Parzen estimators ([`crate::tpe`]'s kernels and prior component):
//! `f` over the runs that ran, `u` over the runs that failed, and `γ` the fraction that ran:
//!
//! ```text
//! P(feasible | x) = γ f(x) / (γ f(x) + (1 − γ) u(x))
//! ```
//!
//! This is the density ratio of the constrained TPE of Watanabe and Hutter (2023), *c-TPE:
//! tree-structured Parzen estimator with inequality constraints for expensive hyperparameter
//! optimization* (IJCAI), for one binary constraint. The kernels narrow where runs crowd, so
//! near a cluster of failures the probability falls close to 0 while the runs that ran
//! beside them keep it high; far from every run the prior components make it `γ`-ish.
//!
//! ## `bayes`: constraint-weighted expected improvement
//!
//! The rule of Gardner et al. (2014), *Bayesian optimization with inequality constraints*
//! (ICML), and Gelbart, Snoek and Adams (2014), *Bayesian optimization with unknown
//! constraints* (UAI): the acquisition is `EI(x) · P(feasible | x)`, in log space
//! `LogEI(x) + ln P(feasible | x)`, with the probability above. The objective model still
//! counts failed runs as `metric.impute` says. With `impute: best` or `latest` a failed run
//! that reported nothing is no observation at all, and the factor is all that keeps the
//! search out of the region (the toy of this module's tests: 24 crashes in 3 × 20 model
//! suggestions with it, 60 without); with `impute: worst` (the default) the failures' cliff
//! in the objective model already does much of that (2 against 3).
//!
//! Two alternatives were measured and dropped:
//!
//! - a Gaussian-process classifier (GP regression on the 0/1 failure indicator,
//!   `P = Φ((½ − μ)/σ)` after standardizing), on bench/quality's `crash-synth`: 9.6 failed
//!   runs in 100 against 7.3 without a factor (seeds 0–6). With a few failures among many
//!   runs that ran the standardized threshold sits two standard deviations out, and it gave
//!   `P(feasible) ≥ 0.95` at most of the configurations that then failed;
//! - taking failed runs out of the objective model (the objective is undefined where a run
//!   fails, as Gelbart et al. do): the model extrapolated the improvement that lies across
//!   the border (a first toy, whose optimum lay inside the region: 49 of 60 model
//!   suggestions crashed, against 4 without).
//!
//! ## `tpe`: a veto where failure is likely
//!
//! Failed runs count in the objective's split as `metric.impute` says (with the default
//! `worst`, in the bad group `G`), and the score of a candidate, `ln l(x) − ln g(x)`, gains
//!
//! ```text
//! min(0, ln P(feasible | x) − ln 0.25)
//! ```
//!
//! nothing where a configuration is at least 25 % likely to run
//! ([`crate::tpe::FEASIBLE_FLOOR`]), and the log-odds' full slope below: the term vetoes
//! where failure is likely and leaves the border of the region, where both measured
//! tasks' optima lie, to the objective's model.
//!
//! The first rule, after Optuna's constraint handling in `TPESampler` and c-TPE (failed runs
//! always in `G`, the score plus the whole `ln P(feasible | x)`), failed less but kept the
//! search away from that border and cost regret; so did every other rule tried (below).
//!
//! ## Measured
//!
//! bench/results/quality-failures.md (`bench/quality/run.py --suite failures`, two tasks with
//! a crash region, 10 seeds, 100 trials): `bayes` fails 10.9 runs in 100 against 12.4
//! without the model, at equal or better regret. `tpe` fails 15.7 against 23.3
//! (crash-synth 28.2 → 16.9, crash-mlp 18.4 → 14.4) at equal regret (0.064 against 0.068
//! at 50 trials, 0.042 against 0.040 at 100; over 50 and 40 seeds the task by task
//! differences are within a standard error, crash-mlp better at both budgets). The first
//! rule failed 13.0 at worse regret (0.098 at 50, 0.061 at 100). Also measured there and
//! dropped: failed runs in `G` with no term, or with the term halved, quartered, capped at
//! `ln 0.5`, or applied only once a fifth of the runs failed; failures counted through
//! `metric.impute` with the whole term, half of it, or a veto below 50 %.
//!
//! ## And `metric.impute`
//!
//! Nothing changes in what is stored or shown: a failed run keeps its imputed value for
//! W&B's semantics (what `metric.impute` says the search counts it as, the best-run rule,
//! the dashboard). The models above read the failure itself.

use crate::encode::{Point, Space};
use crate::tpe::Parzen;
use crate::Trial;

/// Whether `trial` is evidence of a failure region: it ended failed or crashed (not
/// cancelled), or its metric is NaN or infinite.
pub fn is_failure(trial: &Trial) -> bool {
    !trial.running
        && !trial.cancelled
        && (trial.failed || trial.value.is_some_and(|v| !v.is_finite()))
}

/// The ended runs of a sweep, each labelled ran or failed, encoded; `None` when the
/// feasibility model is not active (no failure, or no run that ran).
#[derive(Debug, Clone)]
pub struct Outcomes {
    /// Encoded points of ended runs (cancelled ones excluded), in run order.
    pub points: Vec<Point>,
    /// For each, whether it failed.
    pub failed: Vec<bool>,
}

impl Outcomes {
    /// The outcomes of `trials` in `space`; `None` unless at least one failed and one ran.
    pub fn new(space: &Space<'_>, trials: &[Trial]) -> Option<Self> {
        let mut out = Outcomes {
            points: Vec::new(),
            failed: Vec::new(),
        };
        for t in trials {
            if t.running || t.cancelled {
                continue;
            }
            let Some(p) = space.encode(&t.params) else {
                continue;
            };
            out.points.push(p);
            out.failed.push(is_failure(t));
        }
        let failures = out.failed.iter().filter(|&&f| f).count();
        (failures > 0 && failures < out.failed.len()).then_some(out)
    }

    /// The number of failures.
    pub fn failures(&self) -> usize {
        self.failed.iter().filter(|&&f| f).count()
    }

    /// The fraction of ended runs that ran.
    pub fn feasible_fraction(&self) -> f64 {
        1.0 - self.failures() as f64 / self.failed.len() as f64
    }
}

/// The feasibility density ratio of `bayes` and `tpe`; see the module documentation.
pub struct ParzenFeasibility {
    ran: Parzen,
    failed: Parzen,
    ln_gamma: f64,
    ln_one_minus_gamma: f64,
    failures: usize,
}

impl ParzenFeasibility {
    /// The estimators over `outcomes`.
    pub fn new(space: &Space<'_>, outcomes: &Outcomes) -> Self {
        let ran: Vec<&Point> = outcomes
            .points
            .iter()
            .zip(&outcomes.failed)
            .filter(|(_, &f)| !f)
            .map(|(p, _)| p)
            .collect();
        let failed: Vec<&Point> = outcomes
            .points
            .iter()
            .zip(&outcomes.failed)
            .filter(|(_, &f)| f)
            .map(|(p, _)| p)
            .collect();
        let gamma = outcomes.feasible_fraction();
        ParzenFeasibility {
            ran: Parzen::new(space, &ran, &vec![1.0; ran.len()]),
            failed: Parzen::new(space, &failed, &vec![1.0; failed.len()]),
            ln_gamma: gamma.ln(),
            ln_one_minus_gamma: (1.0 - gamma).ln(),
            failures: failed.len(),
        }
    }

    /// `ln P(feasible)` at the encoded point `x`.
    pub fn log_p(&self, x: &[f64]) -> f64 {
        let a = self.ln_gamma + self.ran.log_pdf(x);
        let b = self.ln_one_minus_gamma + self.failed.log_pdf(x);
        let hi = a.max(b);
        if !hi.is_finite() {
            return 0.0;
        }
        a - (hi + ((a - hi).exp() + (b - hi).exp()).ln())
    }

    /// The number of failures it was built from.
    pub fn failures(&self) -> usize {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run_seed, Ask};
    use serde_json::Value;

    /// A toy with a crash region, shaped like a learning rate `x` whose limit grows with the
    /// batch size `y`: `x > 0.5 + 0.3 y` fails (35 % of the square). The loss falls towards
    /// the limit and is lowest 0.1 below it, at `(0.55, 0.5)`, as a learning rate is.
    fn toy(x: f64, y: f64) -> Option<f64> {
        (x <= 0.5 + 0.3 * y).then(|| 4.0 * (x - 0.4 - 0.3 * y).powi(2) + 0.3 * (y - 0.5).powi(2))
    }

    const TOY: &str = "parameters: {x: {min: 0.0, max: 1.0}, y: {min: 0.0, max: 1.0}}\n";

    /// Failed runs among the model's suggestions (after the initial design) in `budget`
    /// sequential suggestions, and the best value reached.
    fn crashes(method: &str, impute: &str, seed: u64, budget: usize, model: bool) -> (usize, f64) {
        let text = format!("method: {method}\nmetric: {{name: loss, impute: {impute}}}\n{TOY}");
        let c = hyperdial_space::parse_str(&text, "t.yaml").unwrap().config;
        let mut trials: Vec<Trial> = Vec::new();
        let (mut failed, mut best) = (0, f64::INFINITY);
        for n in 0..budget {
            let s = run_seed(seed, n as u64 + 1);
            let ask = match method {
                "bayes" => crate::bayes::suggest_with(&c, &trials, s, seed, model),
                _ => crate::tpe::suggest_with(&c, &trials, s, seed, model),
            };
            let Ask::Suggest(sugg) = ask else {
                panic!("exhausted")
            };
            let num = |i: usize| sugg.params[i].1.as_f64().unwrap();
            let v = toy(num(0), num(1));
            let phase = sugg
                .info
                .diagnostics
                .as_ref()
                .and_then(|d| d.get("phase").cloned());
            if v.is_none() && phase == Some(Value::from("model")) {
                failed += 1;
            }
            best = best.min(v.unwrap_or(f64::INFINITY));
            trials.push(Trial {
                params: sugg.params.iter().cloned().collect(),
                value: v,
                failed: v.is_none(),
                ..Default::default()
            });
        }
        (failed, best)
    }

    /// Crashes of the model's suggestions over 3 seeds, with and without the model.
    fn compare(method: &str, impute: &str, budget: usize, reach: f64) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for seed in 0..3 {
            let (a, best_on) = crashes(method, impute, seed, budget, true);
            let (b, _) = crashes(method, impute, seed, budget, false);
            on += a;
            off += b;
            // And the search still converges.
            assert!(best_on < reach, "{method} seed {seed}: {best_on}");
        }
        (on, off)
    }

    #[test]
    fn bayes_suggests_fewer_points_in_a_crash_region() {
        // `impute: best`: a failed run that reported nothing is no observation, so without
        // the model nothing keeps the search out of the region.
        let (on, off) = compare("bayes", "best", 30, 0.01);
        assert!(
            2 * on < off,
            "impute best: with the model {on} crashes, without {off}"
        );
        // `impute: worst` (the default) already draws a cliff there; the factor adds to it.
        let (on, off) = compare("bayes", "worst", 30, 0.01);
        assert!(
            on <= off,
            "impute worst: with the model {on} crashes, without {off}"
        );
    }

    #[test]
    fn tpe_suggests_fewer_points_in_a_crash_region() {
        // The veto leaves the border of the region to the objective's model, where the
        // toy's optimum lies, so it cuts less than the whole factor would (20 against 28).
        let (on, off) = compare("tpe", "worst", 40, 0.02);
        assert!(on < off, "with the model {on} crashes, without {off}");
    }

    #[test]
    fn cancelled_runs_and_runs_in_flight_are_no_evidence() {
        let c = hyperdial_space::parse_str(
            &format!("method: bayes\nmetric: {{name: loss}}\n{TOY}"),
            "t.yaml",
        )
        .unwrap()
        .config;
        let space = Space::new(&c);
        let at = |x: f64, y: f64| {
            [
                ("x".to_string(), Value::from(x)),
                ("y".to_string(), Value::from(y)),
            ]
            .into_iter()
            .collect()
        };
        let ran = Trial {
            params: at(0.1, 0.1),
            value: Some(1.0),
            ..Default::default()
        };
        let cancelled = Trial {
            params: at(0.9, 0.1),
            failed: true,
            cancelled: true,
            ..Default::default()
        };
        let running = Trial {
            params: at(0.5, 0.5),
            running: true,
            ..Default::default()
        };
        assert!(Outcomes::new(&space, &[ran.clone(), cancelled, running]).is_none());
        let nan = Trial {
            params: at(0.9, 0.2),
            value: Some(f64::NAN),
            ..Default::default()
        };
        let o = Outcomes::new(&space, &[ran, nan]).unwrap();
        assert_eq!(o.failed, [false, true]);
        // The model says the failure's neighbourhood is less likely to run.
        let p = ParzenFeasibility::new(&space, &o);
        assert!(p.log_p(&[0.88, 0.22]) < p.log_p(&[0.12, 0.12]));
    }
}
