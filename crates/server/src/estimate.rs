//! The model's estimate of a sweep's best configuration (`GET /api/v1/sweeps/{id}/estimate`,
//! `hyperdial best --estimate`).
//!
//! The best run (`GET /api/v1/sweeps/{id}/best`) is the run with the best observed metric, as
//! W&B reads it; under a noisy metric it is a lucky draw as often as the best configuration.
//! The estimate is the run whose configuration has the best posterior mean under the Gaussian
//! process `method: bayes` fits, with its fitted noise, when the model is confident it beats
//! the best run ([`hyperdial_search::bayes::estimate`]): with a deterministic metric it is the
//! best run; with noise, a value far better than its neighbours' is pulled back towards
//! theirs.
//!
//! The runs counted are the sweep's results: `finished` or `stopped_early` with a finite
//! metric, repeats (`hyperdial repeat`) included, each one observation. Bounded: the sweep's
//! light run rows are read once (the dashboard's read), and at most the best
//! [`MAX_ESTIMATE_RESULTS`] results by value are modelled; the model itself is fitted to a
//! subset above 200 of them, as `bayes` does. The fit runs off the request threads, and its
//! answer is kept per sweep until a run ends with the metric (the store's
//! `finished_fingerprint`), so a dashboard asking every few seconds costs one small read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use hyperdial_search::bayes::estimate::{estimated_best, Estimate, MIN_RESULTS};
use hyperdial_search::Trial;
use hyperdial_space::SweepConfig;
use hyperdial_store::{RunPoint, Store, SweepRow};
use hyperdial_wire::api::MAX_ESTIMATE_RESULTS;

/// An estimate: its run's id, the best observed run's id, and the figures.
pub(crate) type Found = (String, String, Estimate);

/// The last answer per (store, sweep), with the fingerprint of the results it was made from.
type Cache = Mutex<HashMap<String, ((i64, i64), Option<Found>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// [`estimate`] of `sweep` read from `store`, or the answer kept since no run has ended with
/// the metric: `None` with fewer than [`MIN_RESULTS`] results.
pub(crate) async fn cached(
    store: &Store,
    sweep: &SweepRow,
    config: Arc<SweepConfig>,
    maximize: bool,
) -> hyperdial_store::Result<Option<Found>> {
    let key = format!("{}\u{0}{}", store.describe(), sweep.id);
    let fingerprint = store.finished_fingerprint(&sweep.id).await?;
    if let Some((fp, found)) = cache().lock().expect("estimate cache").get(&key) {
        if *fp == fingerprint {
            return Ok(found.clone());
        }
    }
    let points = store.sweep_points(&sweep.id).await?;
    let found = estimate(sweep, config, points, maximize).await;
    cache()
        .lock()
        .expect("estimate cache")
        .insert(key, (fingerprint, found.clone()));
    Ok(found)
}

/// The results of a sweep's `points` as trials, best first when they had to be cut to
/// [`MAX_ESTIMATE_RESULTS`], otherwise in run order; with each its run id.
fn results(points: &[RunPoint], maximize: bool) -> Vec<(String, Trial)> {
    let mut kept: Vec<&RunPoint> = points
        .iter()
        .filter(|p| p.state.is_result() && p.metric.is_some_and(f64::is_finite))
        .collect();
    kept.sort_by_key(|p| (p.number.unwrap_or(i64::MAX), p.created_ms));
    if kept.len() > MAX_ESTIMATE_RESULTS {
        let value = |p: &RunPoint| {
            let m = p.metric.unwrap_or(f64::NAN);
            if maximize {
                -m
            } else {
                m
            }
        };
        // A stable sort: among equal values the earlier run comes first.
        kept.sort_by(|a, b| value(a).total_cmp(&value(b)));
        kept.truncate(MAX_ESTIMATE_RESULTS);
    }
    kept.into_iter()
        .map(|p| {
            let trial = Trial {
                params: p.params.as_object().cloned().unwrap_or_default(),
                value: p.metric,
                ..Default::default()
            };
            (p.id.clone(), trial)
        })
        .collect()
}

/// The estimate for `sweep` (its `config`) from its run `points`: `None` with fewer than
/// [`MIN_RESULTS`] results. The model is fitted on a blocking thread. Returns the estimate's
/// run id, the observed best's run id, and the estimate.
pub(crate) async fn estimate(
    sweep: &SweepRow,
    config: Arc<SweepConfig>,
    points: Vec<RunPoint>,
    maximize: bool,
) -> Option<Found> {
    let results = results(&points, maximize);
    if results.len() < MIN_RESULTS {
        return None;
    }
    // A seed of the sweep's own, so the same runs give the same answer.
    let seed = sweep.seed as u64;
    tokio::task::spawn_blocking(move || {
        let trials: Vec<Trial> = results.iter().map(|(_, t)| t.clone()).collect();
        let e = estimated_best(&config, &trials, seed)?;
        Some((results[e.trial].0.clone(), results[e.observed].0.clone(), e))
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperdial_store::RunState;
    use serde_json::json;

    fn point(number: i64, state: RunState, metric: Option<f64>) -> RunPoint {
        RunPoint {
            id: format!("r{number}"),
            number: Some(number),
            state,
            params: json!({"x": number}),
            metric,
            created_ms: number,
            started_ms: None,
            finished_ms: None,
            repeat_of: None,
        }
    }

    #[test]
    fn only_results_with_a_finite_metric_count_in_run_order() {
        let points = vec![
            point(3, RunState::Finished, Some(0.3)),
            point(1, RunState::StoppedEarly, Some(0.1)),
            point(2, RunState::Failed, Some(0.0)),
            point(4, RunState::Running, Some(0.0)),
            point(5, RunState::Finished, None),
            point(6, RunState::Finished, Some(f64::NAN)),
        ];
        let ids: Vec<String> = results(&points, false).into_iter().map(|r| r.0).collect();
        assert_eq!(ids, ["r1", "r3"]);
    }

    #[test]
    fn beyond_the_bound_the_best_values_are_kept() {
        let n = MAX_ESTIMATE_RESULTS as i64 + 10;
        let points: Vec<RunPoint> = (0..n)
            .map(|i| point(i, RunState::Finished, Some(i as f64)))
            .collect();
        let kept = results(&points, true);
        assert_eq!(kept.len(), MAX_ESTIMATE_RESULTS);
        assert_eq!(kept[0].1.value, Some((n - 1) as f64));
        assert!(kept.iter().all(|(_, t)| t.value.unwrap() >= 10.0));
    }
}
