//! `hyperdial debug`: hidden, machine-readable views of decisions the server makes, for the
//! differential conformance tests against W&B's `sweeps` library (`conformance/wandb`).
//! Each reads one JSON object on standard input and prints one JSON object.
//!
//! `stop-decisions` — which running runs the sweep's early-termination rule stops:
//!
//! ```text
//! in:  {"config": "<sweep file text, YAML or JSON>",
//!       "runs": [{"state": "running", "history": [0.9, null, 0.7]}, ...]}
//! out: {"stop": [2, 5], "decisions": [{"index": 2, "rung": 3, "value": 0.9, "threshold": 0.7}]}
//! ```
//!
//! `history` holds the run's logged values of the sweep metric in order (`null` for NaN or a
//! missing value, skipped as the server skips them); `state` is a run state as the API names
//! it (`running`, `finished`, `failed`, `crashed`, `stopped_early`, `cancelled`, `queued`).
//! The curves and the rule are the ones the server uses after every metric batch.
//!
//! `run-metric` — each run's metric and what the search counts it as:
//!
//! ```text
//! in:  {"config": "...", "runs": [{"state": "finished", "history": [...], "summary": 0.2}]}
//! out: {"runs": [{"metric": 0.2, "counted": "observed", "value": 0.2}, ...]}
//! ```
//!
//! `summary` is the run's summary value for the sweep metric (any JSON; absent if none).
//! `counted` is `observed`, `imputed` (with `value`), `pending` or `omitted`; values are in
//! metric units. The metric is computed as the store computes it, and the count by the same
//! function the controller uses before every suggestion.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use hyperdial_search::metric::{count, number, Counted, RunValues};
use hyperdial_search::stopping::{decide, Curve, CurvePoint};
use hyperdial_server::controller::{trial, RunReport};
use hyperdial_space::{Goal, SweepConfig};
use hyperdial_store::RunState;
use serde::Deserialize;
use serde_json::{json, Value};

/// Which view to print.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum View {
    /// The runs the early-termination rule stops now.
    StopDecisions,
    /// Each run's metric and how the search counts it.
    RunMetric,
}

#[derive(Deserialize)]
struct Input {
    config: String,
    runs: Vec<RunIn>,
}

#[derive(Deserialize)]
struct RunIn {
    state: String,
    #[serde(default)]
    history: Vec<Option<f64>>,
    summary: Option<Value>,
}

/// Read the input from standard input, print the view.
pub fn run(view: View) -> Result<ExitCode> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    let input: Input = serde_json::from_str(&text).context("parsing the input JSON")?;
    let config = match hyperdial_space::parse_str(&input.config, hyperdial_space::TEXT_SOURCE) {
        Ok(v) => v.config,
        Err(e) => bail!("the sweep config is invalid:\n{}", e.render()),
    };
    let out = match view {
        View::StopDecisions => stop_decisions(&config, &input.runs)?,
        View::RunMetric => run_metric(&config, &input.runs),
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn stop_decisions(config: &SweepConfig, runs: &[RunIn]) -> Result<Value> {
    let (Some(rule), Some(metric)) = (&config.early_terminate, &config.metric) else {
        bail!("the sweep has no early_terminate rule (or no metric)");
    };
    let curves: Vec<Curve> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Curve {
            number: i as i64 + 1,
            running: r.state.parse() == Ok(RunState::Running),
            finished: r.state.parse() == Ok(RunState::Finished),
            points: r
                .history
                .iter()
                .flatten()
                .filter(|v| v.is_finite())
                .enumerate()
                .map(|(k, &value)| CurvePoint {
                    progress: (k + 1) as f64,
                    value,
                    time_ms: k as i64,
                })
                .collect(),
        })
        .collect();
    let stops = decide(rule, metric.goal, &curves);
    Ok(json!({
        "stop": stops.iter().map(|s| s.index).collect::<Vec<_>>(),
        "decisions": stops.iter().map(|s| json!({
            "index": s.index, "rung": s.rung, "value": s.value, "threshold": s.threshold,
        })).collect::<Vec<_>>(),
    }))
}

fn run_metric(config: &SweepConfig, runs: &[RunIn]) -> Value {
    let goal = config.metric.as_ref().map_or(Goal::Minimize, |m| m.goal);
    let values: Vec<RunValues> = runs
        .iter()
        .map(|r| RunValues::new(goal, &r.history, r.summary.as_ref()))
        .collect();
    let trials: Vec<_> = runs
        .iter()
        .zip(&values)
        .map(|(r, v)| {
            let finite: Vec<f64> = r
                .history
                .iter()
                .flatten()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            let logged = finite.last().map(|&last| {
                let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (lo, hi, last)
            });
            trial(
                config,
                &RunReport {
                    // A word that names no state counts as an ended run with its values.
                    state: r.state.parse().unwrap_or(RunState::Finished),
                    metric: v.best,
                    last_logged: r
                        .history
                        .last()
                        .copied()
                        .flatten()
                        .filter(|x| x.is_finite()),
                    summary: r.summary.as_ref().and_then(number),
                    logged,
                    ..Default::default()
                },
            )
        })
        .collect();
    let counted = count(config.metric.as_ref(), &trials);
    let runs: Vec<Value> = values
        .iter()
        .zip(counted)
        .map(|(v, c)| {
            let (kind, value) = match c {
                Counted::Observed(x) => ("observed", Some(x)),
                Counted::Imputed(x) => ("imputed", Some(x)),
                Counted::Pending => ("pending", None),
                Counted::Omitted => ("omitted", None),
            };
            json!({"metric": v.best, "counted": kind, "value": value})
        })
        .collect();
    json!({ "runs": runs })
}
