//! A claim that carries a tell, in one commit.
//!
//! An ask/tell client tells its last trial and asks for the next in one request (a claim with
//! a `tell`). Made as a finish and then a claim, that is two write transactions, and on
//! SQLite with `synchronous=FULL` two flushes to the disk per trial. When the end cannot
//! change what the claim decides, [`Controller::tell_and_claim`] decides the claim first, from
//! the snapshot in which the told run is still in flight, and stores the end and the new run
//! together ([`hyperdial_store::Storage::finish_run_and_insert_suggested`]). That is so when:
//!
//! - the told run ends `finished` (a failed run may be due a retry; a NaN told value fails
//!   it) with its told values, and it had not ended before (a tell sent again is stored as a
//!   finish alone);
//! - the sweep has no `budget` (the stagnation and run-time limits count ended runs), no
//!   `early_terminate` (an end is judged against the runs in flight) and no `metric.target`
//!   (the told value may reach it and end the sweep);
//! - the claim would insert a new run at once: the sweep is `running` and not `retries_only`,
//!   no run is queued and no retry due, `run_cap` is not reached, and the strategy answers
//!   from the history's tally (`grid`, `random`, `sobol`: the told value is not an input;
//!   `tpe` and `bayes` learn from it). `run_cap` counts the told run either way, since a run
//!   in flight is a trial.
//!
//! Otherwise nothing is written and the route ends the run and claims separately, as before
//! ([`TellClaim::Separately`]): every answer that is not a new run (wait, the sweep is over,
//! a queued run) is decided after the end, exactly as without a tell.
//!
//! Durability is the one of each part: the answer is sent after the commit, so a crash before
//! the commit loses the end and the new run together, and the client, which had no answer,
//! tells again. A crash (or a lost connection) after the commit and before the answer keeps
//! both; the client sends the same request again, with the same claim key: its tell is then a
//! finish of a run that has ended (stored once) and its claim finds the run stored with that
//! key ([`Controller::claim_keyed`]), so no second run is handed out. When the insert finds
//! the snapshot stale (another claim took the number, the sweep changed state, or the key
//! already claimed a run), the end is committed alone and the claim is made afresh; the end is
//! never lost to a claim that could not be made.

use hyperdial_search::{suggest_by_tally, Ask};
use hyperdial_store::{Inserted, Point, RunFinish, RunRow, RunState, SweepState};

use super::{history, store_objective, suggested_run, ControlError, Controller, Ending, Finished};

/// A run to end with the claim that follows ([`Controller::tell_and_claim`]): the arguments
/// of [`Controller::finish`].
#[derive(Debug, Clone, Copy)]
pub struct Tell<'a> {
    /// The run.
    pub run_id: &'a str,
    /// The process's exit code.
    pub exit_code: Option<i64>,
    /// An explicit final state word (`finished`, `failed`, …).
    pub state: Option<&'a str>,
    /// Why it ended badly.
    pub error: Option<&'a str>,
    /// The told values, one metric point.
    pub told: Option<&'a Point>,
}

/// What [`Controller::tell_and_claim`] did.
#[derive(Debug)]
pub enum TellClaim {
    /// Nothing: the end could change the claim's answer (see the module docs); end the run
    /// with [`Controller::finish`], then claim.
    Separately,
    /// The run ended; with the run claimed in the same commit, or `None` when the claim's
    /// snapshot went stale (claim again).
    Told(Box<Finished>, Option<Box<RunRow>>),
}

impl Controller {
    /// End `tell`'s run (a run of sweep `sweep_id`) and claim the sweep's next run for
    /// `agent_id` in one commit, when the end cannot change the claim (see the module docs);
    /// the run claimed is stored with the claim's idempotency key `key`.
    ///
    /// Errors: those of [`Controller::finish`] (an unknown or crashed run, a run of another
    /// sweep, an unknown state word), which refuse the tell before anything is written, and
    /// storage faults (nothing written).
    pub async fn tell_and_claim(
        &self,
        sweep_id: &str,
        agent_id: Option<&str>,
        key: Option<&str>,
        tell: Tell<'_>,
    ) -> Result<TellClaim, ControlError> {
        let Some(told) = tell.told else {
            return Ok(TellClaim::Separately);
        };
        let lock = self.claim_lock(sweep_id);
        let mut history = lock.lock().await;
        // With a history, the told run and the claim's snapshot in one read.
        let (read, snapshot) = match history.as_ref().map(history::History::since) {
            Some(since) => {
                let (run, snapshot) = self
                    .store
                    .run_sweep_and_changes(tell.run_id, sweep_id, since)
                    .await?;
                let (sweep, rows, mark) =
                    snapshot.ok_or_else(|| ControlError::not_found("sweep", sweep_id))?;
                (run, Some((sweep, Some((rows, mark)))))
            }
            None => (None, None),
        };
        let ending = self
            .prepare_finish(
                read,
                tell.run_id,
                tell.exit_code,
                tell.state,
                tell.error,
                Some(told),
                Some(sweep_id),
                None,
            )
            .await?;
        let Some(config) = ending.config.clone() else {
            return Ok(TellClaim::Separately);
        };
        let target = config.metric.as_ref().and_then(|m| m.target);
        if ending.final_state != RunState::Finished
            || ending.told.is_none()
            || config.budget.is_some()
            || config.early_terminate.is_some()
            || target.is_some()
        {
            return Ok(TellClaim::Separately);
        }
        let host = match agent_id {
            Some(a) => self.store.agent_host(a).await?.flatten(),
            None => None,
        };
        let (sweep, changes) = match snapshot {
            Some(snapshot) => snapshot,
            None => self.snapshot(sweep_id, history.as_ref()).await?,
        };
        if sweep.state != SweepState::Running || sweep.retries_only {
            return Ok(TellClaim::Separately);
        }
        let h = history.get_or_insert_with(|| history::History::new(sweep_id, &config));
        self.bring_up_to_date(h, changes).await?;
        if h.queued > 0 || !h.due().is_empty() || h.target_reached() {
            return Ok(TellClaim::Separately);
        }
        if config.run_cap.is_some_and(|cap| h.tally.trials >= cap) {
            return Ok(TellClaim::Separately);
        }
        let number = sweep.next_number;
        let suggestion = match suggest_by_tally(&config, &h.tally, sweep.seed as u64, number as u64)
        {
            Some(Ok(Ask::Suggest(suggestion))) => suggestion,
            // A model-based strategy, the space exhausted, or an error: decided after the end.
            _ => return Ok(TellClaim::Separately),
        };
        let new = suggested_run(&sweep, &config, &suggestion, agent_id, host.as_deref(), key);
        let Ending {
            run,
            final_state,
            exit_code,
            error,
            objective,
            ..
        } = ending;
        let finish = RunFinish {
            run_id: tell.run_id,
            points: std::slice::from_ref(told),
            objective: store_objective(&objective),
            state: final_state,
            exit_code,
            error: error.as_deref(),
            seen: Some(&run),
        };
        let (ended, inserted) = self
            .store
            .finish_run_and_insert_suggested(finish, new, number)
            .await?;
        // Runs are never deleted while their sweep exists: the run read above is there.
        let ended = ended.ok_or_else(|| ControlError::not_found("run", tell.run_id))?;
        let finished = Finished {
            run: ended,
            told_step: Some(run.next_step),
        };
        Ok(match inserted {
            Inserted::Inserted(claimed) => TellClaim::Told(Box::new(finished), Some(claimed)),
            Inserted::Stale => TellClaim::Told(Box::new(finished), None),
        })
    }
}
