//! Early termination, enforced as metric batches arrive: read the sweep's curves, ask the rule
//! (`hyperdial_search::stopping`) which running runs to stop, and flag them. The flagged run
//! learns it in the answer to its next metric batch or heartbeat (seconds), its agent stops
//! the process, and the run ends `stopped_early` with the rule's rung and threshold recorded.

use hyperdial_search::stopping::{decide, Curve, CurvePoint};
use hyperdial_space::{EarlyTerminate, SweepConfig};
use serde_json::json;

use crate::controller::Controller;
use crate::error::ApiError;

/// The stop reason recorded for runs stopped by a rule.
pub const REASON: &str = "early_terminated";

impl Controller {
    /// Apply the sweep's early-termination rule; returns the ids of runs newly asked to stop.
    pub async fn enforce_early_termination(
        &self,
        sweep_id: &str,
        config: &SweepConfig,
    ) -> Result<Vec<String>, ApiError> {
        let (Some(rule), Some(metric)) = (&config.early_terminate, &config.metric) else {
            return Ok(Vec::new());
        };
        let step_key = match rule {
            EarlyTerminate::Asha(a) => a.step_key.as_deref(),
            EarlyTerminate::Median(m) => m.step_key.as_deref(),
            EarlyTerminate::Hyperband(_) => None,
        };
        let raw = self
            .store()
            .curves(sweep_id, &metric.name, step_key)
            .await?;
        let curves: Vec<Curve> = raw
            .iter()
            .map(|r| {
                let mut count = 0.0;
                let points = r
                    .points
                    .iter()
                    .filter_map(|&(_, value, time_ms, key)| {
                        let value = value.filter(|v| v.is_finite())?;
                        count += 1.0;
                        let progress = match step_key {
                            Some(_) => key?,
                            None => count,
                        };
                        Some(CurvePoint {
                            progress,
                            value,
                            time_ms,
                        })
                    })
                    .collect();
                Curve {
                    number: r.number,
                    running: r.state == "running" && !r.stop_requested,
                    finished: r.state == "finished",
                    points,
                }
            })
            .collect();
        let mut stopped = Vec::new();
        for stop in decide(rule, metric.goal, &curves) {
            let run = &raw[stop.index];
            let info = json!({
                "rule": stop.rule, "rung": stop.rung, "value": stop.value,
                "threshold": stop.threshold, "metric": metric.name,
                "step_key": step_key,
            });
            if self
                .store()
                .request_stop(&run.run_id, REASON, &info)
                .await?
            {
                tracing::info!(
                    run = run.run_id.as_str(),
                    rule = stop.rule.as_str(),
                    rung = stop.rung,
                    "early termination"
                );
                stopped.push(run.run_id.clone());
            }
        }
        Ok(stopped)
    }
}

/// A one-line explanation of an early stop, for the run's `error` field and listings.
pub fn explain(info: &serde_json::Value) -> Option<String> {
    let rule = info["rule"].as_str()?;
    let rung = info["rung"].as_f64()?;
    let value = info["value"].as_f64()?;
    let threshold = info["threshold"].as_f64()?;
    let metric = info["metric"].as_str().unwrap_or("metric");
    let at = match (rule, info["step_key"].as_str()) {
        ("hyperband", _) => format!("band {rung}"),
        (_, Some(key)) => format!("{key} {rung}"),
        _ => format!("step {rung}"),
    };
    Some(format!(
        "stopped early by {rule} at {at}: {metric} {value} is worse than the threshold {threshold}"
    ))
}
