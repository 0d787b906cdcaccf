//! Queueing runs with given parameters and a seed (`POST /api/v1/sweeps/{id}/runs`, what
//! `hyperdial repeat` sends), to measure seed noise (see [`crate::noise`]).
//!
//! Each run repeats the configuration of a run of the same sweep (`repeat_of`), with the
//! given parameters laid over it (typically the seed parameter set to the new seed), and
//! records its seed. The runs are queued like retries ([`hyperdial_store::Storage::queue_repeats`]):
//! a claim hands out queued runs before it asks the strategy for anything new, and a finished
//! sweep runs again until they are done (`retries_only`), then finishes again. A repeat does
//! not count toward `run_cap` (the history leaves it out of the tally); a model-based strategy
//! sees it as one more observation of its configuration.

use std::collections::HashMap;

use hyperdial_store::{NewRepeat, RunRow, SweepState};
use hyperdial_wire::api::{QueueRun, MAX_QUEUED_RUNS};
use serde_json::Value;

use super::{nested_config, ControlError, Controller};

impl Controller {
    /// Queue `runs` in sweep `sweep_id` (see the module docs). Errors: an unknown sweep
    /// (404); no runs or more than [`MAX_QUEUED_RUNS`], a `repeat_of` that is not a run of
    /// the sweep, a parameter the sweep does not have, or a value the parameter cannot take
    /// (other than the run's seed) (400); a cancelled sweep (409).
    pub async fn queue_runs(
        &self,
        sweep_id: &str,
        runs: &[QueueRun],
    ) -> Result<Vec<RunRow>, ControlError> {
        if runs.is_empty() || runs.len() > MAX_QUEUED_RUNS {
            return Err(ControlError::invalid(format!(
                "name between 1 and {MAX_QUEUED_RUNS} runs to queue (got {})",
                runs.len()
            )));
        }
        let sweep = self.sweep(sweep_id).await?;
        if sweep.state == SweepState::Cancelled {
            return Err(ControlError::conflict(format!(
                "sweep {sweep_id} is cancelled: nothing more runs in it"
            )));
        }
        let config = self.config(&sweep)?;
        let mut sources: HashMap<&str, RunRow> = HashMap::new();
        for r in runs {
            if sources.contains_key(r.repeat_of.as_str()) {
                continue;
            }
            match self.store.run(&r.repeat_of).await? {
                Some(run) if run.sweep_id.as_deref() == Some(sweep_id) => {
                    sources.insert(&r.repeat_of, run);
                }
                _ => {
                    return Err(ControlError::invalid(format!(
                        "run {} is not a run of sweep {sweep_id}",
                        r.repeat_of
                    )))
                }
            }
        }
        let mut repeats = Vec::with_capacity(runs.len());
        for r in runs {
            if let Some(name) = r
                .params
                .keys()
                .find(|k| !config.parameters.iter().any(|p| &p.name == *k))
            {
                return Err(ControlError::invalid(format!(
                    "`{name}` is not a parameter of sweep {sweep_id}; name one of: {}",
                    config
                        .parameters
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            // A value must be one the parameter can take, but for the seed itself (the seed
            // parameter may be a constant, `seed: {value: 0}`, that repeats set to 1, 2, ...).
            for (name, value) in &r.params {
                let Some(p) = config.parameter(name) else {
                    continue;
                };
                let is_seed = value.as_i64() == Some(r.seed);
                if !is_seed && p.distribution.to_unit(value).is_none() {
                    let shown = value.to_string();
                    let shown = match shown.char_indices().nth(60) {
                        Some((cut, _)) => format!("{}...", &shown[..cut]),
                        None => shown,
                    };
                    return Err(ControlError::invalid(format!(
                        "`{name}`: {shown} is not a value of that parameter ({}); a repeat takes \
                         the sweep's values, or its seed ({}) for the seed parameter",
                        p.distribution.describe(),
                        r.seed
                    )));
                }
            }
            let source = &sources[r.repeat_of.as_str()];
            let mut params = source.params.as_object().cloned().unwrap_or_default();
            params.extend(r.params.iter().map(|(k, v)| (k.clone(), v.clone())));
            repeats.push(NewRepeat {
                repeat_of: source.id.clone(),
                config: nested_config(&config, &params),
                params: Value::Object(params),
                seed: r.seed,
            });
        }
        let queued = self.store.queue_repeats(sweep_id, &repeats, true).await?;
        if queued.len() < repeats.len() {
            // Only a sweep cancelled (or deleted) meanwhile queues less.
            return Err(ControlError::conflict(format!(
                "sweep {sweep_id} changed meanwhile; {} of {} runs were queued",
                queued.len(),
                repeats.len()
            )));
        }
        tracing::info!(
            sweep = sweep_id,
            "queued {} runs with given seeds",
            queued.len()
        );
        Ok(queued)
    }
}
