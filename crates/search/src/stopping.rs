//! Early-termination rules as pure functions of the sweep's learning curves.
//!
//! The controller calls [`decide`] after every metric batch with the curve of every run of
//! the sweep (finished and running) and stops the runs it names. Nothing here keeps state:
//! a decision depends only on the stored metric points, so a restarted server or a resumed
//! sweep decides exactly as before.
//!
//! Values are oriented internally so that lower is better (a `maximize` metric is negated),
//! and reported back in the metric's own units.
//!
//! ## hyperband (W&B semantics)
//!
//! An *iteration* is one logged value of the metric (non-finite values are skipped, as W&B
//! filters them). Bands are iteration indices: `min_iter · eta^k` (k = 0, 1, …) or
//! `max_iter / eta^k` (k = 1 … s). For each band `b`, the threshold is taken over every run
//! whose history is longer than `b`: sort the values `h[b]` ascending and take the element at
//! index `⌊len / eta⌋`. A running run is compared at the largest band below its history
//! length: it stops when the best value of its whole history is worse than that band's
//! threshold. All running runs are re-checked on every batch, since thresholds move as other
//! runs report (W&B re-checks every few minutes). W&B accepts `strict` but its controller does
//! not use it; neither does hyperdial.
//!
//! Worked example (minimize, `max_iter: 5, s: 2, eta: 2` → bands 1 and 2): finished run A
//! logged 10, 9; finished E logged 10, 6, 6; running B logged 10, 10; running C logged 10, 8, 8;
//! running D logged 10, 7, 7. Band 1 holds 9, 10, 8, 7, 6 → sorted, index ⌊5/2⌋ = 2 → threshold
//! 8. Band 2 holds 8, 7, 6 → index 1 → threshold 7. B (length 2) is judged at band 1: best 10 >
//! 8 → stop. C (length 3) at band 2: best 8 > 7 → stop. D: best 7 ≤ 7 → goes on.
//!
//! ## asha
//!
//! Progress is the value of `step_key` (e.g. `epoch`) logged with the metric, or else the
//! count of logged metric values. Rungs sit at `grace_period · rf^k` (up to `max_t`); with
//! several brackets, bracket `j` (runs spread by `number mod brackets`) starts at
//! `grace_period · rf^j`. A run's value at a rung is its metric at the first point whose
//! progress reaches the rung. When a run reaches a rung it is compared with the runs that
//! reached the same rung *before it* (by wall time): it goes on if its value is among the
//! best `⌈n / rf⌉` of those `n` values (its own included), else it stops. Being judged only
//! against earlier arrivals is what makes the rule asynchronous: a run that passed a rung is
//! never stopped there later.
//!
//! ## median
//!
//! Once `min_runs` runs have finished, a running run at progress `t ≥ warmup` stops when its
//! best value so far is worse than the median of the finished runs' values at `t` (each
//! finished run's last value at progress ≤ `t`; runs that never got that far are left out).

use hyperdial_space::{Asha, EarlyTerminate, Goal, Hyperband, Median};
use serde::{Deserialize, Serialize};

/// One metric point of a run's curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Progress: the step key's value, or the 1-based count of logged metric values.
    pub progress: f64,
    /// The metric (finite).
    pub value: f64,
    /// When it was logged (milliseconds), to order arrivals at ASHA rungs.
    pub time_ms: i64,
}

/// The learning curve of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The run's position in the sweep (brackets and tie-breaks).
    pub number: i64,
    /// Whether it is still running (only running runs can be stopped).
    pub running: bool,
    /// Whether it ended `finished` (the median rule compares with those).
    pub finished: bool,
    /// Points in logging order.
    pub points: Vec<CurvePoint>,
}

/// A run to stop, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    /// Index of the run in the `curves` slice.
    pub index: usize,
    /// The rule's name.
    pub rule: String,
    /// The band, rung or step at which it was judged.
    pub rung: f64,
    /// Its value there (hyperband and median: its best so far), in metric units.
    pub value: f64,
    /// The value it needed to reach, in metric units.
    pub threshold: f64,
}

/// Which running runs the rule stops now.
pub fn decide(rule: &EarlyTerminate, goal: Goal, curves: &[Curve]) -> Vec<Stop> {
    let sign = match goal {
        Goal::Minimize => 1.0,
        Goal::Maximize => -1.0,
    };
    // Orient: lower is better.
    let oriented: Vec<Curve> = curves
        .iter()
        .map(|c| Curve {
            points: c
                .points
                .iter()
                .filter(|p| p.value.is_finite())
                .map(|p| CurvePoint {
                    value: sign * p.value,
                    ..*p
                })
                .collect(),
            ..c.clone()
        })
        .collect();
    let mut stops = match rule {
        EarlyTerminate::Hyperband(hb) => hyperband(hb, &oriented),
        EarlyTerminate::Asha(a) => asha(a, &oriented),
        EarlyTerminate::Median(m) => median(m, &oriented),
    };
    for s in &mut stops {
        s.value *= sign;
        s.threshold *= sign;
    }
    stops
}

fn best(points: &[CurvePoint]) -> f64 {
    points.iter().map(|p| p.value).fold(f64::INFINITY, f64::min)
}

fn hyperband(hb: &Hyperband, curves: &[Curve]) -> Vec<Stop> {
    let longest = curves.iter().map(|c| c.points.len()).max().unwrap_or(0);
    // Only bands some run has passed matter; the min_iter form is unbounded.
    let bands: Vec<usize> = hb
        .bands(256)
        .into_iter()
        .map(|b| b as usize)
        .take_while(|b| *b < longest)
        .collect();
    let thresholds: Vec<f64> = bands
        .iter()
        .map(|&b| {
            let mut at: Vec<f64> = curves
                .iter()
                .filter(|c| c.points.len() > b)
                .map(|c| c.points[b].value)
                .collect();
            at.sort_by(f64::total_cmp);
            let index = ((at.len() as f64) / hb.eta) as usize;
            at.get(index.min(at.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::INFINITY)
        })
        .collect();
    let mut stops = Vec::new();
    for (index, c) in curves.iter().enumerate() {
        if !c.running {
            continue;
        }
        let Some(k) = bands.iter().rposition(|&b| b < c.points.len()) else {
            continue;
        };
        let value = best(&c.points);
        if value > thresholds[k] {
            stops.push(Stop {
                index,
                rule: "hyperband".into(),
                rung: bands[k] as f64,
                value,
                threshold: thresholds[k],
            });
        }
    }
    stops
}

/// Rungs of bracket `bracket`, ascending.
fn rungs(a: &Asha, bracket: u64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut r = a.grace_period as f64 * a.reduction_factor.powi(bracket as i32);
    while out.len() < 64 && a.max_t.is_none_or(|m| r <= m as f64) {
        out.push(r);
        r *= a.reduction_factor;
    }
    out
}

/// The point at which a curve first reaches `rung`.
fn arrival(c: &Curve, rung: f64) -> Option<&CurvePoint> {
    c.points.iter().find(|p| p.progress >= rung)
}

fn asha(a: &Asha, curves: &[Curve]) -> Vec<Stop> {
    let brackets = a.brackets.max(1);
    let mut stops = Vec::new();
    for (index, c) in curves.iter().enumerate() {
        if !c.running {
            continue;
        }
        let bracket = c.number.rem_euclid(brackets as i64) as u64;
        // Judge at the highest rung reached; lower rungs were passed when they were reached.
        let Some((rung, mine)) = rungs(a, bracket)
            .into_iter()
            .rev()
            .find_map(|r| arrival(c, r).map(|p| (r, *p)))
        else {
            continue;
        };
        let mut values: Vec<f64> = curves
            .iter()
            .filter(|o| o.number.rem_euclid(brackets as i64) as u64 == bracket)
            .filter_map(|o| arrival(o, rung).map(|p| (o, *p)))
            .filter(|(o, p)| (p.time_ms, o.number) <= (mine.time_ms, c.number))
            .map(|(_, p)| p.value)
            .collect();
        values.sort_by(f64::total_cmp);
        let keep = ((values.len() as f64) / a.reduction_factor).ceil().max(1.0) as usize;
        let threshold = values[keep.min(values.len()) - 1];
        if mine.value > threshold {
            stops.push(Stop {
                index,
                rule: "asha".into(),
                rung,
                value: mine.value,
                threshold,
            });
        }
    }
    stops
}

fn median(m: &Median, curves: &[Curve]) -> Vec<Stop> {
    let finished: Vec<&Curve> = curves
        .iter()
        .filter(|c| c.finished && !c.points.is_empty())
        .collect();
    if (finished.len() as u64) < m.min_runs {
        return Vec::new();
    }
    let mut stops = Vec::new();
    for (index, c) in curves.iter().enumerate() {
        if !c.running {
            continue;
        }
        let Some(last) = c.points.last() else {
            continue;
        };
        let t = last.progress;
        if t < m.warmup as f64 || t <= 0.0 {
            continue;
        }
        let mut at: Vec<f64> = finished
            .iter()
            .filter(|f| f.points.last().is_some_and(|p| p.progress >= t))
            .filter_map(|f| {
                f.points
                    .iter()
                    .rev()
                    .find(|p| p.progress <= t)
                    .map(|p| p.value)
            })
            .collect();
        if (at.len() as u64) < m.min_runs {
            continue;
        }
        at.sort_by(f64::total_cmp);
        let n = at.len();
        let med = if n % 2 == 1 {
            at[n / 2]
        } else {
            (at[n / 2 - 1] + at[n / 2]) / 2.0
        };
        let value = best(&c.points);
        if value > med {
            stops.push(Stop {
                index,
                rule: "median".into(),
                rung: t,
                value,
                threshold: med,
            });
        }
    }
    stops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(number: i64, running: bool, values: &[f64]) -> Curve {
        Curve {
            number,
            running,
            finished: !running,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| CurvePoint {
                    progress: (i + 1) as f64,
                    value: *v,
                    time_ms: number * 1000 + i as i64,
                })
                .collect(),
        }
    }

    fn hb(
        min_iter: Option<u64>,
        max_iter: Option<u64>,
        s: Option<u64>,
        eta: f64,
    ) -> EarlyTerminate {
        EarlyTerminate::Hyperband(Hyperband {
            min_iter,
            max_iter,
            s,
            eta,
            strict: true,
        })
    }

    #[test]
    fn hyperband_worked_example() {
        let curves = [
            curve(1, false, &[10.0, 9.0]),
            curve(2, true, &[10.0, 10.0]),
            curve(3, true, &[10.0, 8.0, 8.0]),
            curve(4, true, &[10.0, 7.0, 7.0]),
            curve(5, false, &[10.0, 6.0, 6.0]),
        ];
        let stops = decide(&hb(None, Some(5), Some(2), 2.0), Goal::Minimize, &curves);
        let stopped: Vec<(usize, f64, f64)> = stops
            .iter()
            .map(|s| (s.index, s.rung, s.threshold))
            .collect();
        assert_eq!(stopped, [(1, 1.0, 8.0), (2, 2.0, 7.0)]);
    }

    #[test]
    fn hyperband_maximize_reports_metric_units() {
        let curves = [
            curve(1, false, &[0.5, 0.9]),
            curve(2, true, &[0.5, 0.2]),
            curve(3, false, &[0.5, 0.8]),
        ];
        let stops = decide(&hb(Some(1), None, None, 3.0), Goal::Maximize, &curves);
        assert_eq!(stops.len(), 1);
        assert_eq!(stops[0].index, 1);
        assert_eq!(stops[0].value, 0.5);
        assert_eq!(stops[0].threshold, 0.8);
    }

    #[test]
    fn hyperband_skips_non_finite_values_and_unreached_bands() {
        let curves = [curve(1, true, &[f64::NAN, 3.0]), curve(2, false, &[1.0])];
        // Band 1 (index 1) not reached by anyone after filtering the NaN: nothing to compare.
        assert!(decide(&hb(Some(1), None, None, 3.0), Goal::Minimize, &curves).is_empty());
    }

    fn asha_rule(grace: u64, rf: f64, brackets: u64) -> EarlyTerminate {
        EarlyTerminate::Asha(Asha {
            grace_period: grace,
            reduction_factor: rf,
            brackets,
            max_t: None,
            step_key: None,
        })
    }

    #[test]
    fn asha_judges_against_earlier_arrivals_only() {
        // Rungs at 1, 3, 9. Runs 1–3 reached rung 1 before run 4.
        let mut curves = vec![
            curve(1, false, &[0.1, 0.1, 0.1]),
            curve(2, false, &[0.2, 0.2, 0.2]),
            curve(3, false, &[0.3, 0.3, 0.3]),
            curve(4, true, &[0.25]),
        ];
        // Run 4 at rung 1: values 0.1, 0.2, 0.3, 0.25 → keep ⌈4/3⌉ = 2 → threshold 0.2 → stop.
        let stops = decide(&asha_rule(1, 3.0, 1), Goal::Minimize, &curves);
        assert_eq!(stops.len(), 1);
        assert_eq!(
            (stops[0].index, stops[0].rung, stops[0].threshold),
            (3, 1.0, 0.2)
        );
        // A run that was first to a rung passes it, however good later runs are.
        curves[3] = curve(0, true, &[0.9]);
        assert!(decide(&asha_rule(1, 3.0, 1), Goal::Minimize, &curves).is_empty());
    }

    #[test]
    fn asha_brackets_compare_within_a_bracket() {
        let curves = [curve(2, false, &[0.1, 0.1, 0.1]), curve(3, true, &[0.9])];
        // Two brackets: run 2 in bracket 0, run 3 in bracket 1 (rungs 3, 9): not at a rung yet.
        assert!(decide(&asha_rule(1, 3.0, 2), Goal::Minimize, &curves).is_empty());
        assert_eq!(
            decide(&asha_rule(1, 3.0, 1), Goal::Minimize, &curves).len(),
            1
        );
    }

    #[test]
    fn median_waits_for_min_runs_and_warmup() {
        let finished: Vec<Curve> = (1..=4).map(|n| curve(n, false, &[1.0, 0.5, 0.4])).collect();
        let mut curves = finished.clone();
        curves.push(curve(9, true, &[2.0, 1.0]));
        let rule = |min_runs, warmup| {
            EarlyTerminate::Median(Median {
                warmup,
                min_runs,
                step_key: None,
            })
        };
        assert!(
            decide(&rule(5, 0), Goal::Minimize, &curves).is_empty(),
            "4 finished < 5"
        );
        let stops = decide(&rule(4, 0), Goal::Minimize, &curves);
        assert_eq!(stops.len(), 1);
        assert_eq!(
            (stops[0].rung, stops[0].value, stops[0].threshold),
            (2.0, 1.0, 0.5)
        );
        assert!(
            decide(&rule(4, 3), Goal::Minimize, &curves).is_empty(),
            "still in warm-up"
        );
        // A run as good as the median goes on.
        curves[4] = curve(9, true, &[2.0, 0.5]);
        assert!(decide(&rule(4, 0), Goal::Minimize, &curves).is_empty());
    }

    #[test]
    fn finished_runs_are_never_stopped() {
        let curves = [curve(1, false, &[1.0, 1.0]), curve(2, false, &[0.1, 0.1])];
        assert!(decide(&hb(Some(1), None, None, 3.0), Goal::Minimize, &curves).is_empty());
    }
}
