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
//!
//! **Deciding from the last trial's own write.** Each trial reads the told run and the claim's
//! snapshot first, one round trip. Where the store can check it in the write
//! ([`hyperdial_store::Storage::tell_and_insert_checked`], PostgreSQL), the write also says
//! whether the sweep's runs changed since the history's mark in anything but this server's
//! own writes; when not, the history takes the two runs written in as returned, and keeps the
//! sweep row and the new run ([`history::Hot`]). The next trial, if it tells that run,
//! decides from them without reading, and its write requires the same check (and that the run
//! was not asked to stop meanwhile): any other change, by another server, another request of
//! this one, or the sweep's state or number moving, makes it write nothing or claim nothing,
//! as a stale snapshot does, and the trial is decided again from a read. What is decided is
//! therefore what a read would have given. One round trip per trial instead of two.

use hyperdial_search::{suggest_by_tally, Ask};
use hyperdial_store::{
    Checked, Inserted, NewRun, Point, RunFinish, RunRow, RunState, SweepRow, SweepState,
};

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
        // What the last trial wrote, when it was the only change: this trial then decides
        // without reading, and its write checks that nothing else changed.
        let mut hot = history.as_mut().and_then(|h| h.take_hot(tell.run_id));
        loop {
            let unread = hot.is_some();
            let (read, snapshot) = match (hot.take(), history.as_ref().map(history::History::since))
            {
                (Some(hot), Some(since)) => {
                    (Some(hot.run), Some((hot.sweep, Some((Vec::new(), since)))))
                }
                // With a history, the told run and the claim's snapshot in one read.
                (None, Some(since)) => {
                    let (run, snapshot) = self
                        .store
                        .run_sweep_and_changes(tell.run_id, sweep_id, since)
                        .await?;
                    let (sweep, rows, mark) =
                        snapshot.ok_or_else(|| ControlError::not_found("sweep", sweep_id))?;
                    (run, Some((sweep, Some((rows, mark)))))
                }
                (_, None) => (None, None),
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
            let suggestion =
                match suggest_by_tally(&config, &h.tally, sweep.seed as u64, number as u64) {
                    Some(Ok(Ask::Suggest(suggestion))) => suggestion,
                    // A model-based strategy, the space exhausted, or an error: decided after the
                    // end.
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
            let told_step = Some(run.next_step);
            let Some((ended, inserted)) = self
                .store_tell_and_claim(h, finish, new, (sweep, number), unread)
                .await?
            else {
                // Decided without reading, and the sweep or the run changed: decide again
                // from a fresh read.
                continue;
            };
            // Runs are never deleted while their sweep exists: the run read above is there.
            let ended = ended.ok_or_else(|| ControlError::not_found("run", tell.run_id))?;
            let finished = Finished {
                run: ended,
                told_step,
            };
            return Ok(match inserted {
                Inserted::Inserted(claimed) => TellClaim::Told(Box::new(finished), Some(claimed)),
                Inserted::Stale => TellClaim::Told(Box::new(finished), None),
            });
        }
    }
}

impl Controller {
    /// Store the end `finish` and the claim of `new` as number `number` of `sweep` (the row
    /// the decision was made from), checked as [`hyperdial_store::Storage::tell_and_insert_checked`]
    /// does against history `h`; when the check held, `h` takes the write in for the next
    /// trial. `unread`: decided without reading, so the check is required, and `None` (nothing
    /// written) means decide again from a read. Otherwise the ended run (`None` if unknown) and
    /// the insert's answer, falling back to
    /// [`hyperdial_store::Storage::finish_run_and_insert_suggested`] where the store wrote
    /// nothing.
    async fn store_tell_and_claim(
        &self,
        h: &mut history::History,
        finish: RunFinish<'_>,
        new: NewRun,
        (sweep, number): (SweepRow, i64),
        unread: bool,
    ) -> Result<Option<(Option<RunRow>, Inserted)>, ControlError> {
        match self
            .store
            .tell_and_insert_checked(finish, &new, number, h.check(unread))
            .await?
        {
            Checked::Written {
                ended,
                inserted,
                unchanged,
            } => {
                if let (Inserted::Inserted(claimed), Some(write)) = (&inserted, unchanged) {
                    let mut sweep = sweep;
                    sweep.next_number = number + 1;
                    let hot = history::Hot {
                        sweep,
                        run: (**claimed).clone(),
                    };
                    h.take_own_write(write, hot, unread);
                }
                Ok(Some((Some(*ended), inserted)))
            }
            Checked::NotWritten if unread => {
                h.hot_failed();
                Ok(None)
            }
            Checked::NotWritten => Ok(Some(
                self.store
                    .finish_run_and_insert_suggested(finish, new, number)
                    .await?,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use hyperdial_store::testing::TestDb;
    use hyperdial_store::{Point, RunRow, RunState};

    use super::super::{Claim, Controller};
    use super::{Tell, TellClaim};

    /// Trials the sweep's history decided without reading.
    async fn unread_trials(c: &Controller, sweep_id: &str) -> u64 {
        let lock = c.claim_lock(sweep_id);
        let h = lock.lock().await;
        h.as_ref().map_or(0, |h| h.unread_trials)
    }

    fn point(loss: f64) -> Point {
        Point {
            step: None,
            time_ms: None,
            values: vec![("loss".into(), Some(loss))],
        }
    }

    async fn tell(c: &Controller, sweep: &str, run: &RunRow, loss: f64) -> TellClaim {
        let told = point(loss);
        let tell = Tell {
            run_id: &run.id,
            exit_code: Some(0),
            state: None,
            error: None,
            told: Some(&told),
        };
        c.tell_and_claim(sweep, None, None, tell).await.unwrap()
    }

    async fn first_run(c: &Controller, sweep: &str) -> RunRow {
        match c.claim(sweep, None).await.unwrap() {
            Claim::Run(run) => *run,
            other => panic!("no run: {other:?}"),
        }
    }

    /// Tell `run` and take the run claimed with it.
    async fn next(c: &Controller, sweep: &str, run: &RunRow, loss: f64) -> RunRow {
        match tell(c, sweep, run, loss).await {
            TellClaim::Told(_, Some(next)) => *next,
            other => panic!("no run claimed with the tell: {other:?}"),
        }
    }

    const SOURCE: &str = "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n\
        retry: {max: 1, on: [failed]}\nparameters:\n  a: {min: 0.0, max: 1.0}\n";

    /// A controller on `db` and a new sweep of [`SOURCE`]; a second controller on the same
    /// database, as another server.
    async fn two_servers(db: &TestDb) -> (Controller, Controller, String) {
        let a = Controller::new(db.open().await.unwrap());
        let b = Controller::new(db.open().await.unwrap());
        let sweep = a
            .create_sweep(SOURCE, None, None, false, Some(5))
            .await
            .unwrap()
            .sweep;
        (a, b, sweep.id)
    }

    /// An ask/tell loop alone on its sweep: on PostgreSQL each trial after the second is
    /// decided from the last one's write, without reading; every told value is stored.
    async fn a_lone_loop_decides_from_its_own_writes(db: TestDb, unread: bool) {
        // A transaction open elsewhere on the database server (another test's, on a loaded
        // machine for the whole loop) holds the history's mark back and makes trials read,
        // as it should: the loop is then run again on a new sweep, up to five times.
        let mut decided = Vec::new();
        for _ in 0..5 {
            let (c, _, sweep) = two_servers(&db).await;
            decided.push(lone_loop(&c, &sweep).await);
            if !unread || decided.last() >= Some(&10) {
                break;
            }
        }
        if unread {
            assert!(
                decided.iter().any(|&d| d >= 10),
                "trials of 19 decided without reading, loop by loop: {decided:?}"
            );
        } else {
            assert_eq!(decided, [0]);
        }
        db.remove().await;
    }

    /// Two ask/tell loops on one sweep of one server (`optimize(n_jobs=2)`), their trials
    /// interleaved: on PostgreSQL each loop's tell finds the run its last trial claimed, though
    /// the other loop wrote in between, and decides without reading; every told value is
    /// stored.
    async fn two_loops_decide_from_their_own_writes(db: TestDb, unread: bool) {
        let mut decided = Vec::new();
        for _ in 0..5 {
            let (c, _, sweep) = two_servers(&db).await;
            let mut runs = [first_run(&c, &sweep).await, first_run(&c, &sweep).await];
            let mut told = Vec::new();
            for i in 0..40u32 {
                let loop_ = (i % 2) as usize;
                let loss = 1.0 / f64::from(i + 1);
                let claimed = next(&c, &sweep, &runs[loop_], loss).await;
                told.push((runs[loop_].id.clone(), loss));
                runs[loop_] = claimed;
            }
            for (id, loss) in told {
                let run = c.store().run(&id).await.unwrap().unwrap();
                assert_eq!((run.state, run.metric), (RunState::Finished, Some(loss)));
            }
            decided.push(unread_trials(&c, &sweep).await);
            // (A transaction open elsewhere on the database server holds the mark back and
            // makes trials read, as in the lone loop's test: try again on a new sweep.)
            if !unread || decided.last() >= Some(&25) {
                break;
            }
        }
        if unread {
            assert!(
                decided.iter().any(|&d| d >= 25),
                "trials of 40 decided without reading, sweep by sweep: {decided:?}"
            );
        } else {
            assert_eq!(decided, [0]);
        }
        db.remove().await;
    }

    #[tokio::test]
    async fn sqlite_two_loops_read_every_trial() {
        two_loops_decide_from_their_own_writes(TestDb::sqlite(), false).await;
    }

    #[tokio::test]
    async fn postgres_two_loops_decide_from_their_own_writes() {
        if let Some(db) =
            TestDb::postgres("controller::tell postgres_two_loops_decide_from_their_own_writes")
                .await
        {
            two_loops_decide_from_their_own_writes(db, true).await;
        }
    }

    /// 20 trials of a loop on `sweep`, checked stored: how many were decided without reading.
    async fn lone_loop(c: &Controller, sweep: &str) -> u64 {
        let mut run = first_run(c, sweep).await;
        let mut told = Vec::new();
        for i in 0..20 {
            let loss = 1.0 / f64::from(i + 1);
            let claimed = next(c, sweep, &run, loss).await;
            told.push((run.id.clone(), loss));
            run = claimed;
        }
        for (id, loss) in told {
            let run = c.store().run(&id).await.unwrap().unwrap();
            assert_eq!((run.state, run.metric), (RunState::Finished, Some(loss)));
        }
        assert_eq!(run.number, Some(21));
        unread_trials(c, sweep).await
    }

    /// What another server does between two trials of a loop decided from its own writes is
    /// seen by the next trial: a stop asked for the told run, and a failed run due a retry.
    async fn another_servers_changes_are_seen(db: TestDb) {
        let (a, b, sweep) = two_servers(&db).await;
        let first = first_run(&a, &sweep).await;
        let second = next(&a, &sweep, &first, 0.5).await;
        let third = next(&a, &sweep, &second, 0.25).await;
        // A stop asked for the run about to be told: it ends stopped, not finished, and its
        // end is made apart from the claim.
        assert!(b
            .store()
            .request_stop(&third.id, "cancelled", &serde_json::json!({}))
            .await
            .unwrap());
        assert!(matches!(
            tell(&a, &sweep, &third, 0.125).await,
            TellClaim::Separately
        ));
        let still = a.store().run(&third.id).await.unwrap().unwrap();
        assert_eq!(still.state, RunState::Running);
        a.finish(
            &third.id,
            Some(0),
            None,
            None,
            Some(&point(0.125)),
            Some(&sweep),
        )
        .await
        .unwrap();
        // Back to deciding from its own writes, then a run of the other server fails and is
        // due a retry: the next tell is made apart, and the claim hands out the retry.
        let mut run = first_run(&a, &sweep).await;
        for _ in 0..3 {
            run = next(&a, &sweep, &run, 0.75).await;
        }
        let other = first_run(&b, &sweep).await;
        b.finish(&other.id, Some(1), None, None, None, None)
            .await
            .unwrap();
        assert!(matches!(
            tell(&a, &sweep, &run, 0.0625).await,
            TellClaim::Separately
        ));
        a.finish(
            &run.id,
            Some(0),
            None,
            None,
            Some(&point(0.0625)),
            Some(&sweep),
        )
        .await
        .unwrap();
        let retry = first_run(&a, &sweep).await;
        assert_eq!(retry.retry_of.as_deref(), Some(other.id.as_str()));
        // A pause by the other server: the told value is stored, nothing is claimed.
        let run = next(&a, &sweep, &retry, 0.5).await;
        let run = next(&a, &sweep, &run, 0.5).await;
        b.act(&sweep, crate::controller::SweepAction::Pause)
            .await
            .unwrap();
        match tell(&a, &sweep, &run, 0.5).await {
            TellClaim::Told(ended, None) => assert_eq!(ended.run.state, RunState::Finished),
            TellClaim::Separately => {}
            other => panic!("a run claimed in a paused sweep: {other:?}"),
        }
        db.remove().await;
    }

    #[tokio::test]
    async fn sqlite_a_lone_loop_reads_every_trial() {
        a_lone_loop_decides_from_its_own_writes(TestDb::sqlite(), false).await;
    }

    #[tokio::test]
    async fn postgres_a_lone_loop_decides_from_its_own_writes() {
        if let Some(db) =
            TestDb::postgres("controller::tell postgres_a_lone_loop_decides_from_its_own_writes")
                .await
        {
            a_lone_loop_decides_from_its_own_writes(db, true).await;
        }
    }

    #[tokio::test]
    async fn sqlite_another_servers_changes_are_seen() {
        another_servers_changes_are_seen(TestDb::sqlite()).await;
    }

    #[tokio::test]
    async fn postgres_another_servers_changes_are_seen() {
        if let Some(db) =
            TestDb::postgres("controller::tell postgres_another_servers_changes_are_seen").await
        {
            another_servers_changes_are_seen(db).await;
        }
    }
}
