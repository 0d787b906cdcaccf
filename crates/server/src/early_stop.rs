//! Early termination, enforced as metric batches arrive: read the sweep's curves, ask the rule
//! (`hyperdial_search::stopping`) which running runs to stop, and flag them. The flagged run
//! learns it in the answer to its next metric batch or heartbeat (seconds), its agent stops
//! the process, and the run ends `stopped_early` with the rule's rung and threshold recorded.

use hyperdial_search::stopping::{decide, Curve, CurvePoint};
use hyperdial_space::{EarlyTerminate, SweepConfig};
use hyperdial_store::RunState;
use serde_json::json;

use crate::controller::Controller;
use crate::error::ApiError;

/// The stop reason recorded for runs stopped by a rule.
pub const REASON: &str = "early_terminated";

/// Points of one run: `(step, objective, time_ms, step-key value)`.
type Points = Vec<(i64, Option<f64>, i64, Option<f64>)>;

/// Learning curves of the sweeps with a rule, kept between batches so that a batch costs a
/// read of the reporting run's points and of the runs' states, not of the whole sweep. Filled
/// from the store on first use, so a restarted server rebuilds it.
#[derive(Default)]
pub struct CurveCache {
    sweeps: std::sync::Mutex<
        std::collections::HashMap<String, std::collections::HashMap<String, Points>>,
    >,
}

impl Controller {
    /// Apply the sweep's early-termination rule after `run_id` reported; returns the ids of
    /// runs newly asked to stop.
    pub async fn enforce_early_termination(
        &self,
        sweep_id: &str,
        run_id: &str,
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
        let store = self.store();
        let cached = self
            .curve_cache
            .sweeps
            .lock()
            .expect("curve cache")
            .contains_key(sweep_id);
        if cached {
            let points = store.run_curve(run_id, &metric.name, step_key).await?;
            let mut all = self.curve_cache.sweeps.lock().expect("curve cache");
            all.entry(sweep_id.to_string())
                .or_default()
                .insert(run_id.to_string(), points);
        } else {
            let loaded = store.curves(sweep_id, &metric.name, step_key).await?;
            let map = loaded.into_iter().map(|c| (c.run_id, c.points)).collect();
            self.curve_cache
                .sweeps
                .lock()
                .expect("curve cache")
                .insert(sweep_id.to_string(), map);
        }
        let states = store.run_states(sweep_id).await?;
        let curves: Vec<Curve> = {
            let all = self.curve_cache.sweeps.lock().expect("curve cache");
            let known = all.get(sweep_id);
            states
                .iter()
                .map(|(id, number, state, stop_requested)| {
                    let raw = known
                        .and_then(|m| m.get(id))
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    Curve {
                        number: *number,
                        running: *state == RunState::Running && !stop_requested,
                        finished: *state == RunState::Finished,
                        points: to_points(raw, step_key.is_some()),
                    }
                })
                .collect()
        };
        let mut stopped = Vec::new();
        for stop in decide(rule, metric.goal, &curves) {
            let (id, ..) = &states[stop.index];
            let info = json!({
                "rule": stop.rule, "rung": stop.rung, "value": stop.value,
                "threshold": stop.threshold, "metric": metric.name,
                "step_key": step_key,
            });
            if store.request_stop(id, REASON, &info).await? {
                tracing::info!(
                    run = id.as_str(),
                    rule = stop.rule.as_str(),
                    rung = stop.rung,
                    "early termination"
                );
                stopped.push(id.clone());
            }
        }
        Ok(stopped)
    }
}

/// Curve points from stored points: non-finite values skipped; progress is the step key's
/// value, or the count of logged values.
fn to_points(raw: &[(i64, Option<f64>, i64, Option<f64>)], by_key: bool) -> Vec<CurvePoint> {
    let mut count = 0.0;
    raw.iter()
        .filter_map(|&(_, value, time_ms, key)| {
            let value = value.filter(|v| v.is_finite())?;
            count += 1.0;
            let progress = if by_key { key? } else { count };
            Some(CurvePoint {
                progress,
                value,
                time_ms,
            })
        })
        .collect()
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
