//! A run's metric, and what the search counts each run as, decided as W&B's `sweeps` library
//! (0.3.0) decides them: `SweepRun.metric_extremum` and the imputation of its bayes search.
//!
//! ## The metric of a run
//!
//! Every finite number the run reported for the sweep metric counts: each value logged to its
//! history and the value in its summary (`run.summary["val_loss"] = ...` in the Python client,
//! `PUT /api/v1/runs/{id}/summary`). So a script that writes the metric only to the summary,
//! as Keras' W&B callback does with `best_val_loss`, has a metric. The run's metric is the best
//! of them (lowest for `minimize`, highest for `maximize`); NaN, infinities, booleans and
//! non-numbers are ignored; a run that reported none has no metric. [`RunValues`] holds the
//! best, the worst and the latest of them; the store keeps the best (the `metric` of a run)
//! up to date as points and summary values arrive.
//!
//! ## What the search counts
//!
//! Model-based strategies ([`crate::History`]) see one value per run, chosen by [`count`]:
//!
//! | run | counted as |
//! | --- | --- |
//! | finished, stopped early | its metric; without one, per `metric.impute`: `worst` → the sweep's worst value, `latest` → its last logged value |
//! | failed, crashed, cancelled | per `metric.impute`: `worst` (default) → the sweep's worst value, `best` → its own metric, `latest` → its own last finite logged value |
//! | running | pending; with `metric.impute_while_running` set, its own metric, and without one the sweep's worst value (`worst`) |
//! | queued | pending |
//!
//! The sweep's worst value is the worst single value any ended run reported (history or
//! summary). `latest` reads the history only, as W&B does.
//!
//! One deliberate difference: where W&B counts a run as `0.0` because there is nothing to
//! impute from (no ended run has a value, or the run itself reported nothing), hyperdial
//! leaves the run out (running runs stay pending). `0.0` is a real metric value, often the
//! best possible loss; counting a run that never reported as `0.0` would steer the search
//! towards configurations that crash.

use hyperdial_space::{Goal, Impute, ImputeWhileRunning, Metric};
use serde_json::Value;

use crate::Trial;

/// The finite number in a summary or history value: JSON numbers only (not booleans,
/// strings, objects), and not NaN or infinite.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    }
}

/// What one run reported for the sweep metric, in metric units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunValues {
    /// The best finite value of the history and the summary: the run's metric.
    pub best: Option<f64>,
    /// The worst finite value of the history and the summary.
    pub worst: Option<f64>,
    /// The last finite value of the history (the summary does not count).
    pub latest: Option<f64>,
}

impl RunValues {
    /// From the logged values in history order (`None` or non-finite entries are skipped) and
    /// the summary's value for the metric, if any.
    pub fn new(goal: Goal, history: &[Option<f64>], summary: Option<&Value>) -> Self {
        let finite: Vec<f64> = history
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let latest = finite.last().copied();
        let all = finite.into_iter().chain(summary.and_then(number));
        let mut out = RunValues {
            latest,
            ..Default::default()
        };
        for v in all {
            out.best = Some(match out.best {
                Some(b) if !goal.better(v, b) => b,
                _ => v,
            });
            out.worst = Some(match out.worst {
                Some(w) if !goal.better(w, v) => w,
                _ => v,
            });
        }
        out
    }
}

/// How the search counts one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Counted {
    /// An observation with the run's own metric.
    Observed(f64),
    /// An observation with a value that stands in for the run (`impute`,
    /// `impute_while_running`), in metric units.
    Imputed(f64),
    /// In flight without a value: the strategy knows it is being tried.
    Pending,
    /// Not counted: nothing to impute from.
    Omitted,
}

/// How the search counts each of `trials` (same order), in metric units. `metric` is the
/// sweep's metric (without one, the goal is `minimize` and imputation `worst`). A trial's
/// `worst` defaults to its `value` when not given.
pub fn count(metric: Option<&Metric>, trials: &[Trial]) -> Vec<Counted> {
    let goal = metric.map_or(Goal::Minimize, |m| m.goal);
    let impute = metric.map_or(Impute::Worst, |m| m.impute);
    let while_running = metric.map_or(ImputeWhileRunning::False, |m| m.impute_while_running);
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    // The sweep's worst value: over ended runs, the worst value each reported.
    let worst = trials
        .iter()
        .filter(|t| !t.running)
        .filter_map(|t| finite(t.worst).or(finite(t.value)))
        .fold(None, |acc: Option<f64>, v| match acc {
            Some(w) if !goal.better(w, v) => Some(w),
            _ => Some(v),
        });
    trials
        .iter()
        .map(|t| {
            let own = finite(t.value);
            if t.running {
                if t.queued {
                    return Counted::Pending;
                }
                let v = match while_running {
                    ImputeWhileRunning::False => None,
                    ImputeWhileRunning::Worst => own.or(worst),
                    ImputeWhileRunning::Best | ImputeWhileRunning::Latest => own,
                };
                return v.map_or(Counted::Pending, Counted::Imputed);
            }
            let failed = t.failed || t.value.is_some_and(|v| !v.is_finite());
            if !failed {
                if let Some(v) = own {
                    return Counted::Observed(v);
                }
            }
            let v = match impute {
                Impute::Worst => worst,
                Impute::Best => own,
                Impute::Latest => finite(t.latest),
            };
            v.map_or(Counted::Omitted, Counted::Imputed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_values_read_history_and_summary() {
        let h = [Some(3.0), None, Some(f64::NAN), Some(1.0), Some(2.0)];
        // sweeps 0.3.0: metric_extremum over history + summary, finite numbers only.
        let v = RunValues::new(Goal::Minimize, &h, Some(&json!(0.5)));
        assert_eq!(
            (v.best, v.worst, v.latest),
            (Some(0.5), Some(3.0), Some(2.0))
        );
        let v = RunValues::new(Goal::Maximize, &h, Some(&json!(0.5)));
        assert_eq!(
            (v.best, v.worst, v.latest),
            (Some(3.0), Some(0.5), Some(2.0))
        );
        // Summary only (Keras' callback): the summary is the metric; no latest.
        let v = RunValues::new(Goal::Minimize, &[], Some(&json!(0.25)));
        assert_eq!((v.best, v.worst, v.latest), (Some(0.25), Some(0.25), None));
        // Booleans, strings and objects in the summary are not metric values.
        for s in [json!(true), json!("0.1"), json!({"min": 0.1}), Value::Null] {
            let v = RunValues::new(Goal::Minimize, &[Some(4.0)], Some(&s));
            assert_eq!(v.best, Some(4.0), "{s}");
        }
        assert_eq!(
            RunValues::new(Goal::Minimize, &[None], None),
            RunValues::default()
        );
    }

    fn trial(value: Option<f64>, worst: Option<f64>, latest: Option<f64>) -> Trial {
        Trial {
            value,
            worst,
            latest,
            ..Default::default()
        }
    }

    fn metric(goal: Goal, impute: Impute, while_running: ImputeWhileRunning) -> Metric {
        Metric {
            name: "m".into(),
            goal,
            target: None,
            impute,
            impute_while_running: while_running,
        }
    }

    #[test]
    fn counts_as_wandb_imputes() {
        // Expected values from sweeps 0.3.0's bayes search on the same runs, except where it
        // counts 0.0 for lack of anything to impute (here: Omitted / Pending).
        let finished = trial(Some(1.0), Some(5.0), Some(2.0));
        let finished2 = trial(Some(0.5), Some(3.0), Some(0.5));
        let failed = Trial {
            failed: true,
            ..trial(Some(0.2), Some(9.0), Some(4.0))
        };
        let failed_silent = Trial {
            failed: true,
            ..trial(None, None, None)
        };
        let finished_without = trial(None, None, None);
        let running = Trial {
            running: true,
            ..trial(Some(0.7), Some(6.0), Some(6.0))
        };
        let running_silent = Trial {
            running: true,
            ..trial(None, None, None)
        };
        let trials = [
            finished,
            finished2,
            failed,
            failed_silent.clone(),
            finished_without,
            running,
            running_silent.clone(),
        ];
        use Counted::*;
        use Goal::*;
        let m = metric(Minimize, Impute::Worst, ImputeWhileRunning::False);
        // The sweep's worst: 9.0, the failed run's own worst value.
        assert_eq!(
            count(Some(&m), &trials),
            [
                Observed(1.0),
                Observed(0.5),
                Imputed(9.0),
                Imputed(9.0),
                Imputed(9.0),
                Pending,
                Pending
            ]
        );
        let m = metric(Minimize, Impute::Best, ImputeWhileRunning::Worst);
        assert_eq!(
            count(Some(&m), &trials),
            [
                Observed(1.0),
                Observed(0.5),
                Imputed(0.2),
                Omitted,
                Omitted,
                Imputed(0.7),
                Imputed(9.0)
            ]
        );
        let m = metric(Minimize, Impute::Latest, ImputeWhileRunning::Latest);
        assert_eq!(
            count(Some(&m), &trials),
            [
                Observed(1.0),
                Observed(0.5),
                Imputed(4.0),
                Omitted,
                Omitted,
                Imputed(0.7),
                Pending
            ]
        );
        // Maximize: the sweep's worst is the lowest value any ended run reported.
        let max = [
            trial(Some(5.0), Some(1.0), Some(5.0)),
            Trial {
                failed: true,
                ..trial(Some(9.0), Some(0.5), Some(9.0))
            },
        ];
        let m = metric(Maximize, Impute::Worst, ImputeWhileRunning::False);
        assert_eq!(count(Some(&m), &max), [Observed(5.0), Imputed(0.5)]);
        // Nothing ended with a value: nothing to impute from.
        let m = metric(Minimize, Impute::Worst, ImputeWhileRunning::Worst);
        assert_eq!(
            count(Some(&m), &[failed_silent, running_silent]),
            [Omitted, Pending]
        );
    }
}
