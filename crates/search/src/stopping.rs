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
//! The rule of W&B's `sweeps` library (0.3.0, `hyperband_stop_runs`), decision for decision.
//! An *iteration* is one logged value of the metric (non-finite values are skipped, as W&B
//! filters them), and a band is a count of iterations: `min_iter · eta^k` for k = 0 … 99, or
//! `max_iter / eta^k` for k = 1 … s (each truncated to an integer; see
//! [`Hyperband::bands`]). For each band `b`, the threshold is taken over every run whose
//! history holds at least `b` values, whatever its state: sort their `b`-th values ascending
//! and take the element at index `⌊(1/eta) · len⌋`. A running run is judged at the largest
//! band it has reached (`b ≤` its number of values). With `strict: true` (the default, as in
//! W&B's schema) its `b`-th value is compared, so a run that was behind at the band stops even
//! if it has caught up since; with `strict: false` its best value so far is. It stops when that
//! value is worse than the band's threshold (strictly: a tie goes on). All running runs are
//! re-checked on every batch, since thresholds move as other runs report (W&B re-checks every
//! few minutes).
//!
//! Worked example (minimize, `min_iter: 2, eta: 2` → bands 2, 4, 8, …): finished runs logged
//! 5, 4, 3, 2, 1 and 5, 3, 2, 1, 1 and 5, 2, 1, 1, 1; running X logged 5, 1, 6 and running Y
//! 6, 4.5, 1. Band 2 holds the second values 4, 3, 2, 1, 4.5 → sorted, index ⌊5/2⌋ = 2 →
//! threshold 3. Band 4 holds 2, 1, 1 → index 1 → threshold 1. X and Y (3 values) are judged at
//! band 2. Strict: X's second value 1 ≤ 3 goes on, Y's 4.5 > 3 stops. Not strict: both bests
//! are 1 ≤ 3, nobody stops.
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
    /// Its value there, in metric units: for hyperband its value at the band (`strict`) or its
    /// best so far; for median its best so far.
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
    // Only bands some run has reached matter (the others have no values, so no threshold).
    let bands: Vec<usize> = hb
        .bands(usize::MAX)
        .into_iter()
        .map(|b| b as usize)
        .take_while(|&b| b <= longest)
        .filter(|&b| b >= 1)
        .collect();
    let keep = 1.0 / hb.eta;
    let thresholds: Vec<f64> = bands
        .iter()
        .map(|&b| {
            let mut at: Vec<f64> = curves
                .iter()
                .filter(|c| c.points.len() >= b)
                .map(|c| c.points[b - 1].value)
                .collect();
            at.sort_by(f64::total_cmp);
            // W&B: sorted(values)[int(r * len(values))] with r = 1 / eta (< 1, so in range).
            let index = (keep * at.len() as f64) as usize;
            at.get(index).copied().unwrap_or(f64::INFINITY)
        })
        .collect();
    let mut stops = Vec::new();
    for (index, c) in curves.iter().enumerate() {
        if !c.running {
            continue;
        }
        let Some(k) = bands.iter().rposition(|&b| b <= c.points.len()) else {
            continue;
        };
        let value = if hb.strict {
            c.points[bands[k] - 1].value
        } else {
            best(&c.points)
        };
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
        strictness(min_iter, max_iter, s, eta, true)
    }

    fn strictness(
        min_iter: Option<u64>,
        max_iter: Option<u64>,
        s: Option<u64>,
        eta: f64,
        strict: bool,
    ) -> EarlyTerminate {
        EarlyTerminate::Hyperband(Hyperband {
            min_iter,
            max_iter,
            s,
            eta,
            strict,
        })
    }

    fn judged(rule: &EarlyTerminate, goal: Goal, curves: &[Curve]) -> Vec<(usize, f64, f64, f64)> {
        decide(rule, goal, curves)
            .iter()
            .map(|s| (s.index, s.rung, s.value, s.threshold))
            .collect()
    }

    #[test]
    fn hyperband_worked_example_strict_both_ways() {
        // The module docs' example; W&B's sweeps 0.3.0 stops Y when strict, nobody otherwise.
        let curves = [
            curve(1, false, &[5.0, 4.0, 3.0, 2.0, 1.0]),
            curve(2, false, &[5.0, 3.0, 2.0, 1.0, 1.0]),
            curve(3, false, &[5.0, 2.0, 1.0, 1.0, 1.0]),
            curve(4, true, &[5.0, 1.0, 6.0]),
            curve(5, true, &[6.0, 4.5, 1.0]),
        ];
        let strict = strictness(Some(2), None, None, 2.0, true);
        assert_eq!(
            judged(&strict, Goal::Minimize, &curves),
            [(4, 2.0, 4.5, 3.0)]
        );
        let lenient = strictness(Some(2), None, None, 2.0, false);
        assert!(judged(&lenient, Goal::Minimize, &curves).is_empty());
    }

    #[test]
    fn hyperband_wandb_docstring_example() {
        // W&B's own example (max_iter 5, eta 2, s 2 → bands 1 and 2): only B stops, judged at
        // band 2 against the middle of 9, 6, 10, 8, 7; C's 8 ties the threshold and goes on.
        let curves = [
            curve(1, false, &[10.0, 9.0]),
            curve(2, true, &[10.0, 10.0]),
            curve(3, true, &[10.0, 8.0, 8.0]),
            curve(4, true, &[10.0, 7.0, 7.0]),
            curve(5, false, &[10.0, 6.0, 6.0]),
        ];
        for strict in [true, false] {
            let rule = strictness(None, Some(5), Some(2), 2.0, strict);
            assert_eq!(
                judged(&rule, Goal::Minimize, &curves),
                [(1, 2.0, 10.0, 8.0)],
                "strict {strict}"
            );
        }
    }

    #[test]
    fn hyperband_judges_at_the_band_value_not_one_later() {
        // min_iter 3, eta 3: three finished runs logged 5, 4, 3, 2, 1; X logged 9, 9, 9. Band 3
        // is the third value: 3, 3, 3, 9 → index ⌊4/3⌋ = 1 → threshold 3; X stops after three.
        let mut curves: Vec<Curve> = (1..=3)
            .map(|n| curve(n, false, &[5.0, 4.0, 3.0, 2.0, 1.0]))
            .collect();
        curves.push(curve(4, true, &[9.0, 9.0, 9.0]));
        assert_eq!(
            judged(&hb(Some(3), None, None, 3.0), Goal::Minimize, &curves),
            [(3, 3.0, 9.0, 3.0)]
        );
        // With two values it has not reached a band yet.
        curves[3] = curve(4, true, &[9.0, 9.0]);
        assert!(judged(&hb(Some(3), None, None, 3.0), Goal::Minimize, &curves).is_empty());
    }

    #[test]
    fn hyperband_maximize_reports_metric_units() {
        // Band 2 holds 0.9, 0.2, 0.8 → the top third by value is 0.8 (index ⌊3/3⌋ = 1 of the
        // negated, sorted values).
        let curves = [
            curve(1, false, &[0.5, 0.9]),
            curve(2, true, &[0.5, 0.2]),
            curve(3, false, &[0.5, 0.8]),
        ];
        assert_eq!(
            judged(&hb(Some(2), None, None, 3.0), Goal::Maximize, &curves),
            [(1, 2.0, 0.2, 0.8)]
        );
    }

    #[test]
    fn hyperband_skips_non_finite_values_and_unreached_bands() {
        // The NaN is not an iteration: run 1's first value is 3.0, judged at band 1 against
        // the values 3.0 and 1.0 (index ⌊2/3⌋ = 0 → 1.0).
        let curves = [curve(1, true, &[f64::NAN, 3.0]), curve(2, false, &[1.0])];
        assert_eq!(
            judged(&hb(Some(1), None, None, 3.0), Goal::Minimize, &curves),
            [(0, 1.0, 3.0, 1.0)]
        );
        // Band 5 is reached by nobody: nothing to compare.
        assert!(judged(&hb(Some(5), None, None, 3.0), Goal::Minimize, &curves).is_empty());
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
