//! `hyperdial lr-find RUN`: read an LR range test's run and print the learning rate to use,
//! where the loss diverged, and an `lr` block to paste into a sweep.
//!
//! A run is an LR range test when its summary holds `lr_range_test` (what the Python client's
//! `hyperdial.lr_range_test` stores when the test ends: its settings and outcome), or, failing
//! that, when it logged both `lr` and `loss` (a test that crashed before storing its summary,
//! or one written without the helper). Either way the numbers are computed here again from
//! the logged series, with the rules of docs/python.md ("LR range test"), so that the command
//! and the client can never disagree about a run:
//!
//! * the loss is smoothed exponentially with bias correction (`beta`, default 0.98);
//! * the test diverged at the first step whose loss is not finite or whose smoothed loss is
//!   above `diverge_factor` (default 4) times the lowest smoothed loss before it (fastai's
//!   stopping rule);
//! * the first `skip_start` (10) and last `skip_end` (5) points are left out, then
//!   `min_loss_lr` is the learning rate of the lowest smoothed loss, the suggestion is a
//!   tenth of it, and `steepest_lr` is where the smoothed loss falls fastest against log(lr),
//!   the slope taken between the points `k` places either side (`k` a twentieth of the points
//!   looked at, at least 1). Fewer than 5 points left: no suggestion.
//!
//! The settings come from the run's summary when it has them, else the defaults above. The
//! sweep block spans a third to three times the suggestion, on a log scale
//! (`log_uniform_values`), its top capped at the divergence point and its bottom raised to the
//! lowest learning rate the test ran (nothing was measured below it).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::manage::urlencode;
use crate::api::Api;

/// Points the suggestion needs after the skips.
const MIN_POINTS: usize = 5;

/// How `lr-find` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for a person, ending with the YAML block to paste.
    Text,
    /// One JSON object: the run, the points, the suggested lr, the rule and a sweep `lr:` block.
    Json,
}

/// The settings of a range test (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Smoothing factor of the loss, in [0, 1).
    pub beta: f64,
    /// Divergence when the smoothed loss passes this multiple of its minimum (above 1).
    pub diverge_factor: f64,
    /// Points left out of the suggestion at the low-lr end.
    pub skip_start: usize,
    /// Points left out of the suggestion at the high-lr end.
    pub skip_end: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            beta: 0.98,
            diverge_factor: 4.0,
            skip_start: 10,
            skip_end: 5,
        }
    }
}

impl Settings {
    /// The settings stored in a run's `summary.lr_range_test`, each one that is missing or out
    /// of range replaced by its default.
    pub fn from_summary(stored: &Value) -> Settings {
        let d = Settings::default();
        let count =
            |key: &str, default: usize| stored[key].as_u64().map(|v| v as usize).unwrap_or(default);
        Settings {
            beta: stored["beta"]
                .as_f64()
                .filter(|b| (0.0..1.0).contains(b))
                .unwrap_or(d.beta),
            diverge_factor: stored["diverge_factor"]
                .as_f64()
                .filter(|f| f.is_finite() && *f > 1.0)
                .unwrap_or(d.diverge_factor),
            skip_start: count("skip_start", d.skip_start),
            skip_end: count("skip_end", d.skip_end),
        }
    }
}

/// What a range test found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Points (steps with a learning rate) the run logged.
    pub points: usize,
    /// Steps the test was set to run (from the summary; None without it).
    pub steps: Option<u64>,
    /// The learning rate of the step where the loss diverged (see the module docs), if any.
    pub divergence_lr: Option<f64>,
    /// The learning rate of the lowest smoothed loss among the points looked at.
    pub min_loss_lr: Option<f64>,
    /// That lowest smoothed loss.
    pub min_loss: Option<f64>,
    /// Where the smoothed loss falls fastest against log(lr).
    pub steepest_lr: Option<f64>,
    /// The suggestion: a tenth of `min_loss_lr`.
    pub suggested_lr: Option<f64>,
    /// The lowest learning rate the test ran (None without points): the sweep block never
    /// reaches below it, where nothing was measured.
    pub lowest_lr: Option<f64>,
    /// Why there is no suggestion, when there is none.
    pub reason: Option<String>,
}

/// Exponential smoothing with bias correction; NaN from the first non-finite loss on.
pub fn smooth(losses: &[f64], beta: f64) -> Vec<f64> {
    let mut avg = 0.0;
    let mut power = 1.0;
    losses
        .iter()
        .map(|&loss| {
            avg = beta * avg + (1.0 - beta) * loss;
            power *= beta;
            if avg.is_finite() {
                avg / (1.0 - power)
            } else {
                avg = f64::NAN;
                f64::NAN
            }
        })
        .collect()
}

/// Analyse the points of a range test, `(lr, loss)` in the order they were logged (a NaN loss
/// for a non-finite one). Points after the divergence (a test run without the client's
/// helper, which stops there) are not looked at.
pub fn analyse(points: &[(f64, f64)], settings: Settings, steps: Option<u64>) -> Finding {
    let losses: Vec<f64> = points.iter().map(|p| p.1).collect();
    let smoothed = smooth(&losses, settings.beta);
    let mut lowest = f64::INFINITY;
    let mut divergence = None;
    for (i, &s) in smoothed.iter().enumerate() {
        if !s.is_finite() || s > settings.diverge_factor * lowest {
            divergence = Some(i);
            break;
        }
        lowest = lowest.min(s);
    }
    // What the client's helper records: the points up to the divergence, which stops it.
    let used = divergence.map_or(points.len(), |i| i + 1);
    let end = used.saturating_sub(settings.skip_end);
    let window: Vec<usize> = (settings.skip_start..end)
        .filter(|&i| smoothed[i].is_finite() && points[i].0 > 0.0)
        .collect();
    let mut finding = Finding {
        points: points.len(),
        steps,
        divergence_lr: divergence.map(|i| points[i].0),
        min_loss_lr: None,
        min_loss: None,
        steepest_lr: None,
        suggested_lr: None,
        lowest_lr: points
            .iter()
            .map(|p| p.0)
            .filter(|lr| *lr > 0.0)
            .reduce(f64::min),
        reason: None,
    };
    if window.len() < MIN_POINTS {
        finding.reason = Some(format!(
            "{} points are left after leaving out the first {} and the last {}; the suggestion \
             needs {MIN_POINTS}: run more steps, or a wider range",
            window.len(),
            settings.skip_start,
            settings.skip_end
        ));
        return finding;
    }
    // The first of equal minima, as Python's min() takes it.
    let best =
        window.iter().copied().fold(
            window[0],
            |b, i| if smoothed[i] < smoothed[b] { i } else { b },
        );
    let span = (window.len() / 20).max(1);
    let mut steepest: Option<(usize, f64)> = None;
    for j in span..window.len() - span {
        let (a, i, b) = (window[j - span], window[j], window[j + span]);
        let slope = (smoothed[b] - smoothed[a]) / (points[b].0.ln() - points[a].0.ln());
        if steepest.is_none_or(|(_, s)| slope < s) {
            steepest = Some((i, slope));
        }
    }
    finding.min_loss_lr = Some(points[best].0);
    finding.min_loss = Some(smoothed[best]);
    finding.steepest_lr = steepest.map(|(i, _)| points[i].0);
    finding.suggested_lr = Some(points[best].0 / 10.0);
    finding
}

/// `(lr, loss)` pairs from a history answer (`GET /runs/{id}/history?keys=lr,loss`), by step:
/// every step with a finite positive `lr`, its loss NaN when absent or null. Errors when the
/// run logged no `lr` or no `loss`, or when a series came back downsampled.
pub fn points_of(history: &Value) -> Result<Vec<(f64, f64)>> {
    let series = |key: &str| -> Result<Vec<(i64, f64)>> {
        let s = &history["series"][key];
        let (Some(steps), Some(values)) = (s["step"].as_array(), s["value"].as_array()) else {
            bail!("the run logged no `{key}`: it is not an LR range test");
        };
        if s["downsampled"].as_bool() == Some(true) {
            bail!(
                "the `{key}` series came back downsampled; it has more points than lr-find reads"
            );
        }
        Ok(steps
            .iter()
            .zip(values)
            .filter_map(|(step, v)| Some((step.as_i64()?, v.as_f64().unwrap_or(f64::NAN))))
            .collect())
    };
    let lrs = series("lr")?;
    let losses: std::collections::HashMap<i64, f64> = series("loss")?.into_iter().collect();
    if lrs.is_empty() || losses.is_empty() {
        bail!("the run logged no `lr` and `loss` points: it is not an LR range test");
    }
    let mut points: Vec<(i64, f64, f64)> = lrs
        .into_iter()
        .filter(|(_, lr)| lr.is_finite() && *lr > 0.0)
        .map(|(step, lr)| (step, lr, losses.get(&step).copied().unwrap_or(f64::NAN)))
        .collect();
    points.sort_by_key(|p| p.0);
    Ok(points.into_iter().map(|(_, lr, loss)| (lr, loss)).collect())
}

/// A number with 3 significant digits that YAML 1.1 and 1.2 both read as a float
/// (`0.00652`, `1.5`, `300.0`, `1.23e-5`).
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    if x == 0.0 {
        return "0.0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - magnitude).max(0) as usize;
    let mut text = format!("{x:.decimals$}");
    if text.contains('.') {
        while text.ends_with('0') && !text.ends_with(".0") {
            text.pop();
        }
    } else {
        text.push_str(".0");
    }
    text
}

/// The sweep bounds around a suggestion: a third of it to three times it, the top capped at
/// the divergence point when that is lower.
pub fn bounds(suggested: f64, divergence: Option<f64>, lowest: Option<f64>) -> (f64, f64) {
    let top = suggested * 3.0;
    let top = match divergence {
        Some(d) if d < top && d > suggested => d,
        _ => top,
    };
    let bottom = suggested / 3.0;
    // Below the test's range nothing was measured: the block starts where the test did.
    let bottom = match lowest {
        Some(l) if l > bottom && l < top => l,
        _ => bottom,
    };
    (bottom, top)
}

impl Finding {
    /// The YAML block to paste under a sweep's `parameters:` (None without a suggestion).
    pub fn sweep_block(&self) -> Option<String> {
        let (lo, hi) = bounds(self.suggested_lr?, self.divergence_lr, self.lowest_lr);
        Some(format!(
            "lr:\n  distribution: log_uniform_values\n  min: {}\n  max: {}\n",
            number(lo),
            number(hi)
        ))
    }

    /// The finding as JSON: `run`, `points`, `steps`, `suggested_lr`, `rule`
    /// (`"tenth_min_loss"`), `min_loss_lr`, `min_loss`, `steepest_lr`, `divergence_lr`,
    /// `reason`, and `sweep` (`{"lr": {"distribution", "min", "max"}}`, null without a
    /// suggestion). Absent numbers are null.
    pub fn to_json(&self, run: &str) -> Value {
        let sweep = self.suggested_lr.map(|s| {
            let (lo, hi) = bounds(s, self.divergence_lr, self.lowest_lr);
            json!({"lr": {"distribution": "log_uniform_values", "min": lo, "max": hi}})
        });
        json!({
            "run": run,
            "points": self.points,
            "steps": self.steps,
            "suggested_lr": self.suggested_lr,
            "rule": "tenth_min_loss",
            "min_loss_lr": self.min_loss_lr,
            "min_loss": self.min_loss,
            "steepest_lr": self.steepest_lr,
            "divergence_lr": self.divergence_lr,
            "reason": self.reason,
            "sweep": sweep,
        })
    }

    /// The lines printed for a person.
    pub fn text(&self, run: &str) -> String {
        let opt = |x: Option<f64>| x.map(number).unwrap_or_else(|| "-".into());
        let of_steps = match self.steps {
            Some(steps) => format!("{} of {steps} steps", self.points),
            None => format!("{} steps", self.points),
        };
        let mut out = format!("run {run}: LR range test, {of_steps}\n");
        match self.divergence_lr {
            Some(d) => out += &format!("diverged at lr      {}\n", number(d)),
            None => {
                out += "diverged at lr      - (the loss never diverged: a wider range may help)\n"
            }
        }
        out += &format!(
            "minimum loss at lr  {} (smoothed loss {})\n",
            opt(self.min_loss_lr),
            opt(self.min_loss)
        );
        out += &format!("steepest descent    {}\n", opt(self.steepest_lr));
        match (self.suggested_lr, &self.reason) {
            (Some(s), _) => {
                out += &format!(
                    "suggested lr        {} (a tenth of the minimum-loss lr)\n",
                    number(s)
                );
                out += "\nPaste under a sweep's `parameters:`\n";
                for line in self.sweep_block().unwrap_or_default().lines() {
                    out += &format!("  {line}\n");
                }
            }
            (None, reason) => {
                out += &format!(
                    "no suggestion: {}\n",
                    reason.as_deref().unwrap_or("too few points")
                );
            }
        }
        out
    }
}

/// `hyperdial lr-find RUN`: read the run and its `lr` and `loss` series, print the finding.
/// Exit 0 with a suggestion, 1 without one; errors for a run that is not an LR range test.
pub async fn run(api: &Api, run: &str, format: Format) -> Result<ExitCode> {
    let id = urlencode(run);
    let record = api
        .get(&format!("/api/v1/runs/{id}?history=false"))
        .await
        .with_context(|| format!("cannot read run {run}"))?;
    let history = api
        .get(&format!(
            "/api/v1/runs/{id}/history?keys=lr,loss&max_points=100000"
        ))
        .await
        .with_context(|| format!("cannot read the history of run {run}"))?;
    let stored = &record["summary"]["lr_range_test"];
    let points = points_of(&history).with_context(|| format!("run {run}"))?;
    let finding = analyse(
        &points,
        Settings::from_summary(stored),
        stored["steps"].as_u64(),
    );
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&finding.to_json(run))?),
        Format::Text => print!("{}", finding.text(run)),
    }
    Ok(if finding.suggested_lr.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The learning rates of the client's schedule: `n` values from `lo` to `hi`, log-evenly.
    fn schedule(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64))
            .collect()
    }

    /// Flat, falling around lr 1e-2, lowest near 0.1, then rising steeply (as
    /// python/tests/test_lr_range.py's `bowl`).
    fn bowl(lr: f64) -> f64 {
        let x = lr.log10();
        2.0 - 1.5 / (1.0 + (-4.0 * (x + 2.0)).exp()) + (x + 1.0).max(0.0).powi(2) * 20.0
    }

    #[test]
    fn smoothing_is_bias_corrected_and_nan_sticks() {
        let s = smooth(&[2.0, 2.0, 2.0], 0.98);
        assert!(s.iter().all(|v| (v - 2.0).abs() < 1e-12), "{s:?}");
        let s = smooth(&[1.0, 3.0, 0.0], 0.5);
        assert_eq!(s[0], 1.0);
        assert!((s[1] - 1.75 / 0.75).abs() < 1e-12);
        assert!((s[2] - 1.0).abs() < 1e-12);
        let s = smooth(&[1.0, f64::NAN, 1.0], 0.98);
        assert!(s[1].is_nan() && s[2].is_nan());
    }

    #[test]
    fn a_bowl_gives_a_tenth_of_its_minimum_and_its_steepest_point() {
        let lrs = schedule(1e-5, 10.0, 121);
        let points: Vec<(f64, f64)> = lrs.iter().map(|&lr| (lr, bowl(lr))).collect();
        // beta 0: no smoothing, so the rules see the bowl itself.
        let unsmoothed = Settings {
            beta: 0.0,
            ..Settings::default()
        };
        let f = analyse(&points, unsmoothed, Some(121));
        let min = f.min_loss_lr.unwrap();
        assert!((min.log10() + 1.0).abs() < 0.1, "{f:?}");
        assert_eq!(f.suggested_lr, Some(min / 10.0));
        assert!((f.steepest_lr.unwrap().log10() + 2.0).abs() < 0.06, "{f:?}");
        // Beyond 0.1 the loss climbs 20 per decade squared: it passes 4x its minimum.
        assert!(f.divergence_lr.unwrap() > min, "{f:?}");
        assert!(f.reason.is_none());
    }

    #[test]
    fn divergence_is_the_first_step_past_the_factor_or_a_nan() {
        let lrs = schedule(1e-4, 10.0, 100);
        let points: Vec<(f64, f64)> = lrs
            .iter()
            .map(|&lr| (lr, if lr < 0.1 { 1.0 } else { 100.0 }))
            .collect();
        let f = analyse(&points, Settings::default(), None);
        let s = smooth(&points.iter().map(|p| p.1).collect::<Vec<_>>(), 0.98);
        let first = s.iter().position(|&v| v > 4.0).unwrap();
        assert_eq!(f.divergence_lr, Some(lrs[first]));
        let mut with_nan = points.clone();
        with_nan[30].1 = f64::NAN;
        let f = analyse(&with_nan, Settings::default(), None);
        assert_eq!(f.divergence_lr, Some(lrs[30]));
    }

    #[test]
    fn too_few_points_give_a_reason_and_no_block() {
        let points: Vec<(f64, f64)> = schedule(1e-3, 1.0, 19)
            .into_iter()
            .map(|lr| (lr, 1.0))
            .collect();
        let f = analyse(&points, Settings::default(), Some(19));
        assert_eq!(f.suggested_lr, None);
        assert!(f
            .reason
            .as_deref()
            .unwrap()
            .starts_with("4 points are left"));
        assert_eq!(f.sweep_block(), None);
        assert!(f.text("r1").contains("no suggestion: 4 points are left"));
        assert_eq!(f.to_json("r1")["sweep"], Value::Null);
    }

    #[test]
    fn settings_come_from_the_summary_with_defaults_for_the_rest() {
        let s =
            Settings::from_summary(&json!({"beta": 0.9, "skip_start": 3, "diverge_factor": 0.5}));
        assert_eq!(
            s,
            Settings {
                beta: 0.9,
                diverge_factor: 4.0,
                skip_start: 3,
                skip_end: 5
            }
        );
        assert_eq!(Settings::from_summary(&Value::Null), Settings::default());
    }

    #[test]
    fn points_are_paired_by_step_and_null_losses_are_nan() {
        let history = json!({"series": {
            "lr": {"step": [2, 0, 1], "value": [0.3, 0.1, 0.2], "downsampled": false},
            "loss": {"step": [0, 1, 2], "value": [1.0, null, 0.5], "downsampled": false},
        }});
        let points = points_of(&history).unwrap();
        assert_eq!(points.len(), 3);
        assert_eq!((points[0], points[2]), ((0.1, 1.0), (0.3, 0.5)));
        assert!(points[1].1.is_nan());
        let no_loss = json!({"series": {"lr": {"step": [0], "value": [0.1]}}});
        let err = points_of(&no_loss).unwrap_err().to_string();
        assert!(err.contains("no `loss`"), "{err}");
        let thinned = json!({"series": {"lr": {"step": [0], "value": [0.1], "downsampled": true}}});
        assert!(points_of(&thinned)
            .unwrap_err()
            .to_string()
            .contains("downsampled"));
    }

    #[test]
    fn numbers_are_yaml_floats_with_three_digits() {
        assert_eq!(number(0.0065193), "0.00652");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(10.0), "10.0");
        assert_eq!(number(300.0), "300.0");
        assert_eq!(number(0.000123456), "0.000123");
        assert_eq!(number(1.234e-5), "1.23e-5");
        assert_eq!(number(2.0e7), "2.00e7");
        for x in [0.0065193, 1.5, 300.0, 1.234e-5] {
            let back: f64 = number(x).parse().unwrap();
            assert!((back - x).abs() / x < 5e-3);
        }
    }

    #[test]
    fn the_block_spans_a_third_to_three_times_capped_at_divergence() {
        assert_eq!(bounds(0.01, None, None), (0.01 / 3.0, 0.03));
        assert_eq!(bounds(0.01, Some(1.0), Some(1e-5)), (0.01 / 3.0, 0.03));
        assert_eq!(bounds(0.01, Some(0.02), None), (0.01 / 3.0, 0.02));
        // A test that started above a third of the suggestion: the block starts there.
        assert_eq!(bounds(1.04e-5, None, Some(1e-5)), (1e-5, 1.04e-5 * 3.0));
        let f = Finding {
            points: 150,
            steps: Some(200),
            divergence_lr: Some(1.2),
            min_loss_lr: Some(0.0652),
            min_loss: Some(0.21),
            steepest_lr: Some(0.000283),
            suggested_lr: Some(0.00652),
            lowest_lr: Some(1e-6),
            reason: None,
        };
        assert_eq!(
            f.sweep_block().unwrap(),
            "lr:\n  distribution: log_uniform_values\n  min: 0.00217\n  max: 0.0196\n"
        );
        let text = f.text("r7");
        assert!(
            text.starts_with("run r7: LR range test, 150 of 200 steps\n"),
            "{text}"
        );
        assert!(text.contains("diverged at lr      1.2\n"), "{text}");
        assert!(
            text.contains("suggested lr        0.00652 (a tenth"),
            "{text}"
        );
        assert!(text.ends_with("    max: 0.0196\n"), "{text}");
        let j = f.to_json("r7");
        assert_eq!(j["suggested_lr"], 0.00652);
        assert_eq!(j["rule"], "tenth_min_loss");
        assert_eq!(j["sweep"]["lr"]["distribution"], "log_uniform_values");
        assert_eq!(j["sweep"]["lr"]["max"], 0.00652 * 3.0);
    }

    #[test]
    fn the_block_is_a_valid_sweep_parameter() {
        let f = Finding {
            points: 150,
            steps: None,
            divergence_lr: None,
            min_loss_lr: Some(0.0652),
            min_loss: Some(0.2),
            steepest_lr: None,
            suggested_lr: Some(0.00652),
            lowest_lr: Some(1e-6),
            reason: None,
        };
        let mut sweep =
            String::from("method: random\nmetric: {name: loss, goal: minimize}\nparameters:\n");
        for line in f.sweep_block().unwrap().lines() {
            sweep += &format!("  {line}\n");
        }
        let parsed = hyperdial_space::parse_str(&sweep, "sweep.yaml");
        assert!(parsed.is_ok(), "{sweep}");
    }
}
