//! Early termination, enforced as metric batches arrive: read the sweep's curves, ask the rule
//! (`hyperdial_search::stopping`) which running runs to stop, and flag them. The flagged run
//! learns it in the answer to its next metric batch or heartbeat (seconds), its agent stops
//! the process, and the run ends `stopped_early` with the rule's rung and threshold recorded.

use hyperdial_search::stopping::{decide, Curve, CurvePoint};
use hyperdial_space::{EarlyTerminate, SweepConfig};
use hyperdial_store::RunState;
use serde_json::json;

use crate::controller::ControlError;
use crate::controller::Controller;

/// The stop reason recorded for runs stopped by a rule.
pub const REASON: &str = "early_terminated";

/// Points of one run: `(step, objective, time_ms, step-key value)`.
type Points = Vec<(i64, Option<f64>, i64, Option<f64>)>;

/// Learning curves of the sweeps with a rule, kept between batches so that a batch costs a
/// read of the reporting run's points and of the runs' states, not of the whole sweep. Filled
/// from the store on first use, so a restarted server rebuilds it.
///
/// With several servers on one database, other servers append points to runs this one does
/// not hear from: their notices mark those runs stale ([`CurveCache::mark_stale`]), and the
/// next decision reads them again; when notices may have been lost, [`CurveCache::clear`]
/// drops everything. States (running, stop requested) are never cached: every decision reads
/// them from the store.
#[derive(Default)]
pub struct CurveCache {
    sweeps: std::sync::Mutex<Sweeps>,
}

/// The cached sweeps, and how often the cache was cleared (a read that began before a clear
/// may predate what was missed, so it is not kept as a whole sweep).
#[derive(Default)]
struct Sweeps {
    clears: u64,
    by_id: std::collections::HashMap<String, SweepCurves>,
}

/// The cached curves of one sweep and the runs whose curves changed elsewhere.
#[derive(Default)]
struct SweepCurves {
    /// Whether `runs` holds the whole sweep (false while the first read is under way).
    loaded: bool,
    runs: std::collections::HashMap<String, Points>,
    /// Runs to read again; marks that arrive during the first read are kept.
    stale: std::collections::HashSet<String>,
}

impl CurveCache {
    /// Another server stored points of `run_id`: read its curve again before the next
    /// decision in `sweep_id` (nothing to do when the sweep is not cached).
    pub fn mark_stale(&self, sweep_id: &str, run_id: &str) {
        if let Some(sweep) = self.lock().by_id.get_mut(sweep_id) {
            sweep.stale.insert(run_id.to_string());
        }
    }

    /// Forget every curve (after notices from other servers may have been missed).
    pub fn clear(&self) {
        let mut all = self.lock();
        all.by_id.clear();
        all.clears += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sweeps> {
        // The map holds plain data and is left consistent at every await-free step, so a
        // panic elsewhere while it was held leaves nothing half-done.
        self.sweeps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The runs of a cached sweep to read again: the reporting run and the stale ones, whose
    /// marks are taken. A sweep not cached yet is registered as loading, so that marks
    /// arriving during its read are kept, and the error is the number of clears so far (for
    /// [`CurveCache::loaded`]): read the whole sweep.
    pub(crate) fn to_refresh(&self, sweep_id: &str, run_id: &str) -> Result<Vec<String>, u64> {
        let mut all = self.lock();
        let clears = all.clears;
        let sweep = all.by_id.entry(sweep_id.to_string()).or_default();
        if !sweep.loaded {
            sweep.stale.clear();
            return Err(clears);
        }
        let mut ids: Vec<String> = sweep.stale.drain().filter(|id| id != run_id).collect();
        ids.push(run_id.to_string());
        Ok(ids)
    }

    /// Keep the curves of a whole sweep read after `clears` clears; false (nothing kept)
    /// when a clear overtook the read.
    pub(crate) fn loaded(
        &self,
        sweep_id: &str,
        clears: u64,
        runs: &std::collections::HashMap<String, Points>,
    ) -> bool {
        let mut all = self.lock();
        if all.clears != clears {
            return false;
        }
        let sweep = all.by_id.entry(sweep_id.to_string()).or_default();
        sweep.runs = runs.clone();
        sweep.loaded = true;
        true
    }
}

impl Controller {
    /// Apply the sweep's early-termination rule after `run_id` reported; returns the ids of
    /// runs newly asked to stop.
    pub async fn enforce_early_termination(
        &self,
        sweep_id: &str,
        run_id: &str,
        config: &SweepConfig,
    ) -> Result<Vec<String>, ControlError> {
        let (Some(rule), Some(metric)) = (&config.early_terminate, &config.metric) else {
            return Ok(Vec::new());
        };
        let step_key = match rule {
            EarlyTerminate::Asha(a) => a.step_key.as_deref(),
            EarlyTerminate::Median(m) => m.step_key.as_deref(),
            EarlyTerminate::Hyperband(_) => None,
        };
        let store = self.store();
        // A read of the whole sweep that a clear overtook is used for this decision only.
        let mut fresh = None;
        match self.curve_cache.to_refresh(sweep_id, run_id) {
            Ok(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    let points = match store.run_curve(id, &metric.name, step_key).await {
                        Ok(points) => points,
                        Err(e) => {
                            // Not read: keep the marks for the next decision.
                            for id in &ids[i..] {
                                self.curve_cache.mark_stale(sweep_id, id);
                            }
                            return Err(e.into());
                        }
                    };
                    if let Some(sweep) = self.curve_cache.lock().by_id.get_mut(sweep_id) {
                        sweep.runs.insert(id.clone(), points);
                    }
                }
            }
            Err(clears) => {
                let loaded = store.curves(sweep_id, &metric.name, step_key).await?;
                let runs: std::collections::HashMap<String, Points> =
                    loaded.into_iter().map(|c| (c.run_id, c.points)).collect();
                if !self.curve_cache.loaded(sweep_id, clears, &runs) {
                    fresh = Some(runs);
                }
            }
        }
        let states = store.run_states(sweep_id).await?;
        let curves: Vec<Curve> = {
            let all = self.curve_cache.lock();
            let known = match &fresh {
                Some(runs) => Some(runs),
                None => all.by_id.get(sweep_id).map(|s| &s.runs),
            };
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
                "step_key": step_key, "requested_ms": hyperdial_store::now_ms(),
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

/// A one-line explanation of an early stop, for the run's `error` field and listings:
/// `stopped early by ` and [`reason`] with every digit of its numbers.
pub fn explain(info: &serde_json::Value) -> Option<String> {
    reason(info, |x| x.to_string()).map(|why| format!("stopped early by {why}"))
}

/// When the rule asked for the stop (ms since the epoch, the server's clock), from a run's
/// `stop_info`; `None` for a stop recorded before this was kept, or not by a rule.
pub fn requested_ms(info: &serde_json::Value) -> Option<i64> {
    info["requested_ms"].as_i64()
}

/// Why a rule stopped a run, from its `stop_info`, with numbers written by `number`:
/// `hyperband at band 3: val_loss 1.4 worse than threshold 1.0` (`step N`, or the step
/// key's name, for the other rules). `None` when `info` is not a rule's record.
pub fn reason(info: &serde_json::Value, number: impl Fn(f64) -> String) -> Option<String> {
    let rule = info["rule"].as_str()?;
    let rung = info["rung"].as_f64()?;
    let value = info["value"].as_f64()?;
    let threshold = info["threshold"].as_f64()?;
    let metric = info["metric"].as_str().unwrap_or("metric");
    let at = match (rule, info["step_key"].as_str()) {
        ("hyperband", _) => format!("band {}", number(rung)),
        (_, Some(key)) => format!("{key} {}", number(rung)),
        _ => format!("step {}", number(rung)),
    };
    Some(format!(
        "{rule} at {at}: {metric} {} worse than threshold {}",
        number(value),
        number(threshold)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: i64) -> Points {
        (0..n).map(|i| (i, Some(1.0), i, None)).collect()
    }

    pub(crate) fn loaded(cache: &CurveCache, sweep: &str, runs: &[(&str, i64)]) {
        let Err(clears) = cache.to_refresh(sweep, runs[0].0) else {
            panic!("a new sweep is read whole");
        };
        let runs = runs
            .iter()
            .map(|(id, n)| (id.to_string(), points(*n)))
            .collect();
        assert!(cache.loaded(sweep, clears, &runs));
    }

    #[test]
    fn runs_changed_elsewhere_are_read_again_once() {
        let cache = CurveCache::default();
        // Marks for a sweep that is not cached are not kept (nothing to correct).
        cache.mark_stale("s", "b");
        loaded(&cache, "s", &[("a", 2), ("b", 2)]);
        assert_eq!(cache.to_refresh("s", "a"), Ok(vec!["a".to_string()]));
        cache.mark_stale("s", "b");
        cache.mark_stale("s", "a");
        cache.mark_stale("other", "x");
        let mut ids = cache.to_refresh("s", "a").unwrap();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        // The marks were taken.
        assert_eq!(cache.to_refresh("s", "a"), Ok(vec!["a".to_string()]));
    }

    #[test]
    fn marks_made_while_a_sweep_is_first_read_are_kept() {
        let cache = CurveCache::default();
        let Err(clears) = cache.to_refresh("s", "a") else {
            panic!("a new sweep is read whole");
        };
        // Another server's points for `b` arrive while the whole sweep is being read.
        cache.mark_stale("s", "b");
        let runs = [("a".to_string(), points(1)), ("b".to_string(), points(1))].into();
        assert!(cache.loaded("s", clears, &runs));
        let mut ids = cache.to_refresh("s", "a").unwrap();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn a_clear_forgets_everything_and_overrides_reads_under_way() {
        let cache = CurveCache::default();
        loaded(&cache, "s", &[("a", 3)]);
        let Err(clears) = cache.to_refresh("t", "x") else {
            panic!("a new sweep is read whole");
        };
        cache.clear();
        // The read of `t` began before the clear: used once, not kept.
        assert!(!cache.loaded("t", clears, &[("x".to_string(), points(1))].into()));
        assert!(cache.to_refresh("t", "x").is_err());
        assert!(cache.to_refresh("s", "a").is_err());
    }
}
