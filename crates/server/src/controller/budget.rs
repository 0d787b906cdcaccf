//! Ending a sweep on its `budget` (see `hyperdial_space::budget`).
//!
//! A claim of a running sweep with a budget first asks [`hyperdial_space::Budget::spent`]
//! whether a limit is reached, from the sweep's creation time, its run time so far and its
//! finished runs with their metric values and finish times; if so the sweep goes from
//! `running` to `finished` with the limit recorded as its `end_reason` (queued runs are
//! cancelled in the same transaction; runs in flight finish), and the agent is told the sweep
//! is over. The same inputs give the budget's [`Progress`] for the API's sweep views.
//!
//! A claim takes the run time of the ended runs, the stagnation walk over the finished runs'
//! values ([`hyperdial_space::budget::Walk`], kept by the history and extended as runs finish,
//! so a check costs the same at any sweep size) and the measured seed noise
//! (`stagnation: {min_delta: noise}`, [`crate::noise::seed_noise`]) from its history, so only
//! the runs in flight are read; the API's views read every run (the seed noise page by page,
//! [`crate::noise::read_input`]). A sweep reopened for queued retries or repeats
//! (`retries_only`) runs them whatever its budget says: they were asked for by hand.

use hyperdial_space::budget::{Finished, MinDelta, Progress, Spending, Walk};
use hyperdial_space::{Goal, SweepConfig};
use hyperdial_store::{RunState, SweepRow, SweepState};

use super::history::History;
use super::{Claim, ControlError, Controller};

impl Controller {
    /// What the sweep has spent: `None` when its config has no budget. `history`: the
    /// claim's, up to date, when the caller has it: the run time of the ended runs and the
    /// finished runs' values come from it, so only the runs in flight are read; `None` reads
    /// every run.
    async fn spending_inputs(
        &self,
        sweep: &SweepRow,
        config: &SweepConfig,
        history: Option<&History>,
    ) -> Result<Option<SpendingInputs>, ControlError> {
        let Some(budget) = &config.budget else {
            return Ok(None);
        };
        let compute_ms = match (budget.run_hours, history) {
            (None, _) => 0,
            (Some(_), Some(h)) => h.ended_ms + self.store.compute_ms_in_flight(&sweep.id).await?,
            (Some(_), None) => self.store.compute_ms(&sweep.id).await?,
        };
        let finished = if let (Some(_), Some(_)) = (&budget.stagnation, history) {
            Vec::new() // the history's walk stands for them
        } else if budget.stagnation.is_some() {
            self.store
                .sweep_points(&sweep.id)
                .await?
                .into_iter()
                .filter(|p| p.state == RunState::Finished)
                .filter_map(|p| {
                    Some(Finished {
                        finished_ms: p.finished_ms?,
                        value: p.metric.filter(|v| v.is_finite())?,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let seed_noise = match (&budget.stagnation, history) {
            (Some(st), Some(h)) if st.min_delta == MinDelta::SeedNoise => h.seed_noise(),
            (Some(st), None) if st.min_delta == MinDelta::SeedNoise => {
                crate::noise::read_input(&self.store, &sweep.id)
                    .await?
                    .seed_noise()
            }
            _ => None,
        };
        let walk = match (&budget.stagnation, history) {
            (Some(st), Some(h)) => {
                Some(h.stagnation_walk(goal(config), st.min_delta.resolve(seed_noise)))
            }
            _ => None,
        };
        Ok(Some(SpendingInputs {
            compute_ms,
            finished,
            walk,
            seed_noise,
        }))
    }

    /// End a running sweep whose budget is spent: `Ok(None)` when it is not (or has no
    /// budget), `Ok(Some(Some(Over)))` when it ended now, `Ok(Some(None))` when the sweep
    /// changed state meanwhile (the claim starts over). `history` is the claim's, refreshed
    /// after `sweep` was read: the run time of the ended runs and the finished runs' values
    /// come from it (a run that ends between that refresh and the read of the runs in flight
    /// counts from the next claim on).
    pub(super) async fn end_if_spent(
        &self,
        sweep: &SweepRow,
        config: &SweepConfig,
        history: &History,
    ) -> Result<Option<Option<Claim>>, ControlError> {
        if sweep.retries_only {
            return Ok(None);
        }
        let (Some(budget), Some(inputs)) = (
            &config.budget,
            self.spending_inputs(sweep, config, Some(history)).await?,
        ) else {
            return Ok(None);
        };
        let spending = inputs.spending(now_ms(), sweep, config);
        let Some(reason) = budget.spent(&spending) else {
            return Ok(None);
        };
        let ended = self
            .store
            .transition_sweep(
                &sweep.id,
                &[SweepState::Running],
                SweepState::Finished,
                Some(reason.as_str()),
            )
            .await?;
        if ended.is_none() {
            return Ok(Some(None));
        }
        tracing::info!(
            sweep = sweep.id.as_str(),
            "sweep finished: budget spent ({})",
            reason.as_str()
        );
        Ok(Some(Some(Claim::Over(SweepState::Finished))))
    }

    /// Where a sweep stands against its budget; `None` without one. A sweep that is over
    /// has no estimated end.
    pub async fn budget_progress(
        &self,
        sweep: &SweepRow,
    ) -> Result<Option<Progress>, ControlError> {
        let Ok(config) = self.config(sweep) else {
            return Ok(None);
        };
        let (Some(budget), Some(inputs)) = (
            &config.budget,
            self.spending_inputs(sweep, &config, None).await?,
        ) else {
            return Ok(None);
        };
        let over = sweep.state.is_over();
        let now = if over { sweep.updated_ms } else { now_ms() };
        let mut progress = budget.progress(&inputs.spending(now, sweep, &config));
        if over {
            progress.estimated_end_ms = None;
            progress.first_limit = None;
        }
        Ok(Some(progress))
    }
}

/// What a budget check reads besides the sweep row: the run time so far, the finished runs
/// or the history's stagnation walk over them, and the seed noise.
struct SpendingInputs {
    compute_ms: i64,
    /// The finished runs, read from the store; empty when `walk` stands for them.
    finished: Vec<Finished>,
    /// The history's stagnation walk ([`History::stagnation_walk`]).
    walk: Option<Walk>,
    seed_noise: Option<f64>,
}

impl SpendingInputs {
    fn spending<'a>(&'a self, now_ms: i64, sweep: &SweepRow, config: &SweepConfig) -> Spending<'a> {
        Spending {
            now_ms,
            created_ms: sweep.created_ms,
            compute_ms: self.compute_ms,
            finished: &self.finished,
            walk: self.walk.as_ref(),
            goal: goal(config),
            seed_noise: self.seed_noise,
        }
    }
}

fn goal(config: &SweepConfig) -> Goal {
    config.metric.as_ref().map_or(Goal::Minimize, |m| m.goal)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
