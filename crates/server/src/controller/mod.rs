//! The controller: decides what runs next and moves sweeps and runs through their states.
//!
//! A claim never holds a write transaction while it decides. It reads a snapshot (the sweep
//! row with its `next_number`, and every run of it, finished and in flight), hands out a
//! queued run if there is one ([`hyperdial_store::Storage::claim_queued`], atomic), else asks
//! the strategy for the next configuration outside any transaction (on a blocking thread:
//! a bayes fit takes tens of milliseconds at a thousand runs) and inserts the run with
//! [`hyperdial_store::Storage::insert_suggested_run`], which takes the number only if the
//! sweep's `next_number` is still the one of the snapshot. When another claim (of this server
//! or another one on the same database) got there first, the answer is stale and the claim
//! starts over from a fresh snapshot, a bounded number of times ([`CLAIM_ATTEMPTS`]), then
//! answers "wait" (the agent asks again). So two agents never get the same run and a grid
//! never repeats a configuration, however many agents and servers ask at once, while
//! heartbeats and metric writes never wait behind a strategy. Claims of one sweep on one
//! server take turns on an in-process lock, so they do not compute the same number twice.
//! Ending a sweep because it has nothing left (space exhausted, `run_cap`, its retries done)
//! is guarded the same way ([`hyperdial_store::Storage::finish_sweep_if_unchanged`]).
//!
//! Retries come first: a claim queues the retries the sweep's `retry` policy asks for (a
//! `queued` run with the configuration of the run it retries, `retry_of` and `attempt` set;
//! idempotent, since the schema allows one retry per run), hands out the oldest queued run,
//! and only then asks the strategy. A run superseded by its retry is left out of the trials
//! and of the `run_cap` count, so a configuration counts once however often it ran.
//! [`Controller::retry`] queues retries by hand, also on a finished sweep, which then runs
//! until they are done (`retries_only`) and finishes again.
//!
//! Idempotent claims: a claim may carry a key its client chose (`claim_key`), fresh for each
//! claim and the same on every retry of it. The run it hands out (a new run, or a queued one)
//! is stored with the key in the same commit, and the schema keeps a key unique per sweep.
//! [`Controller::claim_keyed`] looks the key up first (one index seek,
//! [`hyperdial_store::Storage::run_by_claim_key`]): a claim whose answer was lost after its
//! commit and that is sent again gets the same run ([`Keyed::Again`]) instead of a second one
//! that would sit `running`, holding a `run_cap` slot and a grid point, until its lease ran
//! out; once that run has ended the key claims nothing more ([`Keyed::Ended`]). A retry
//! racing its first attempt (two servers) cannot store a second run under the key: the
//! insert answers stale and the lookup after it finds the first attempt's run.
//!
//! The metric of a run is the best finite value it reported, in its history or its summary
//! (lowest for `minimize`, highest for `maximize`), as W&B's `metric_extremum` takes it; the
//! store keeps it up to date on every batch and summary update. What the strategy counts for
//! failed, cancelled and running runs is `hyperdial_search::metric`'s decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hyperdial_search::{suggest_by_tally, suggest_in_sweep, Ask, Trial};
use hyperdial_space::command::{args_for, args_json};
use hyperdial_space::{Goal, SweepConfig};
use hyperdial_store::{
    Inserted, NewRun, NewSweep, Objective, Point, RunFinish, RunRow, RunState, Store, SweepRow,
    SweepState, TrialRow,
};
use hyperdial_wire::api::EndReason;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

mod budget;
mod error;
mod history;
mod prior;
mod repeat;
mod tell;

pub use error::ControlError;
pub use tell::{Tell, TellClaim};

/// What a claim gives an agent.
#[derive(Debug)]
pub enum Claim {
    /// Start this run.
    Run(Box<RunRow>),
    /// Nothing to start now; ask again later.
    Wait,
    /// The sweep is over, in this state.
    Over(SweepState),
}

/// What a claim with an idempotency key answers ([`Controller::claim_keyed`]).
#[derive(Debug)]
pub enum Keyed {
    /// The key claimed nothing before: the claim made now.
    Now(Claim),
    /// The run the key claimed before, not ended: the same answer again.
    Again(Box<RunRow>),
    /// The run the key claimed before has ended since (crashed after its lease ran out, or
    /// cancelled with its sweep): nothing is claimed.
    Ended(Box<RunRow>),
}

/// What a metric batch did ([`Controller::ingest`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Points (name, step pairs) written.
    pub accepted: usize,
    /// Whether the run has been asked to stop.
    pub stop: bool,
    /// Why.
    pub reason: Option<String>,
    /// The run's step counter before the batch: the step given to a first point that came
    /// without one.
    pub first_step: i64,
}

/// What [`Controller::finish`] did.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The run afterwards.
    pub run: RunRow,
    /// With a told point: the step it was stored at when it named none (the run's step
    /// counter before the finish).
    pub told_step: Option<i64>,
}

/// A run's end as [`Controller::finish`] decides it before writing anything.
struct Ending<'p> {
    /// The run before its end.
    run: RunRow,
    final_state: RunState,
    exit_code: Option<i64>,
    error: Option<String>,
    /// Its sweep's config, if it is a sweep's run.
    config: Option<Arc<SweepConfig>>,
    /// Its sweep's metric: name, goal, target.
    objective: Option<(String, Goal, Option<f64>)>,
    /// The told point, `None` when the run had already ended (a finish sent again).
    told: Option<&'p Point>,
}

/// Outcome of creating a sweep.
#[derive(Debug)]
pub struct Created {
    /// The sweep.
    pub sweep: SweepRow,
    /// Whether an existing unfinished sweep was resumed instead.
    pub resumed: bool,
    /// Validation warnings.
    pub warnings: Vec<hyperdial_space::Diagnostic>,
}

/// The controller, holding the store and a cache of parsed sweep configs.
pub struct Controller {
    store: Store,
    /// Live events for the dashboard (`GET /api/v1/events`).
    pub events: crate::api::events::Bus,
    configs: Mutex<HashMap<String, Arc<SweepConfig>>>,
    /// Learning curves kept for early termination.
    pub(crate) curve_cache: crate::early_stop::CurveCache,
    /// One lock per sweep that claims of this process take turns on (see the module docs),
    /// guarding the sweep's [`history::History`] (built on the first claim, dropped when the
    /// sweep is over, or when the sweep is the least recently claimed of more than
    /// [`MAX_CACHED_HISTORIES`]), with the tick of its last use.
    claim_locks: Mutex<ClaimLocks>,
}

/// A sweep's claim lock and the history it guards.
type ClaimLock = Arc<tokio::sync::Mutex<Option<history::History>>>;

/// Most sweeps whose claim lock and history one server keeps. Beyond that the least
/// recently claimed sweep that no claim holds now is forgotten: its next claim reads its runs
/// once again (as after a restart). Each history is about a hundred bytes a run for `grid`,
/// `random` and `sobol`, more for `tpe` and `bayes` (their decoded parameters), so this bounds
/// the cache by the largest sweeps' sizes, not by how many sweeps a long-lived server saw.
pub const MAX_CACHED_HISTORIES: usize = 64;

/// The claim locks by sweep, each with the tick of its last use, and the tick counter.
#[derive(Debug, Default)]
struct ClaimLocks {
    by_sweep: HashMap<String, (ClaimLock, u64)>,
    tick: u64,
}

impl ClaimLocks {
    /// The claim lock of `sweep_id` (created on first use), marked as the most recently used;
    /// the least recently used ones nobody holds are dropped while more than `cap` are kept.
    fn get(&mut self, sweep_id: &str, cap: usize) -> ClaimLock {
        self.tick += 1;
        let tick = self.tick;
        let lock = {
            let entry = self
                .by_sweep
                .entry(sweep_id.to_string())
                .or_insert_with(|| (ClaimLock::default(), tick));
            entry.1 = tick;
            entry.0.clone()
        };
        while self.by_sweep.len() > cap {
            // Only a lock held by the map alone (no claim in progress or waiting) can go.
            let oldest = self
                .by_sweep
                .iter()
                .filter(|(_, (l, _))| Arc::strong_count(l) == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => {
                    self.by_sweep.remove(&id);
                }
                None => break,
            }
        }
        lock
    }
}

/// How many times one claim reads a fresh snapshot after finding the last one stale, before
/// it answers "wait".
pub const CLAIM_ATTEMPTS: usize = 8;

/// How many times a sweep action re-reads a sweep whose state changed under it.
const ACT_ATTEMPTS: usize = 8;

/// The words of the states a run can end in, comma separated, for messages.
fn final_state_words() -> String {
    RunState::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A state a run can end in, from its word; a `400` naming the choices otherwise.
fn final_state(word: &str) -> Result<RunState, ControlError> {
    match word.parse::<RunState>() {
        Ok(s) if s.is_terminal() => Ok(s),
        _ => Err(ControlError::invalid(format!(
            "unknown run state `{word}`; use one of: {}",
            final_state_words()
        ))),
    }
}

impl Controller {
    /// A controller over `store`.
    pub fn new(store: Store) -> Self {
        Controller {
            store,
            events: crate::api::events::Bus::new(),
            configs: Mutex::new(HashMap::new()),
            curve_cache: Default::default(),
            claim_locks: Mutex::new(ClaimLocks::default()),
        }
    }

    /// The claim lock of a sweep (created on first use).
    fn claim_lock(&self, sweep_id: &str) -> ClaimLock {
        self.claim_locks
            .lock()
            .expect("claim locks")
            .get(sweep_id, MAX_CACHED_HISTORIES)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The parsed config of sweep `sweep_id` if [`Controller::config`] has cached it.
    fn cached_config(&self, sweep_id: &str) -> Option<Arc<SweepConfig>> {
        self.configs
            .lock()
            .expect("config cache")
            .get(sweep_id)
            .cloned()
    }

    /// The parsed config of a sweep (cached; sweep configs never change).
    pub fn config(&self, sweep: &SweepRow) -> Result<Arc<SweepConfig>, ControlError> {
        if let Some(c) = self.configs.lock().expect("config cache").get(&sweep.id) {
            return Ok(c.clone());
        }
        let file = hyperdial_space::source_name(sweep.source_file.as_deref());
        let parsed = hyperdial_space::parse_str(&sweep.source, file).map_err(|e| {
            ControlError::conflict(format!(
                "the stored config of sweep {} no longer validates: {e}",
                sweep.id
            ))
        })?;
        let config = Arc::new(parsed.config);
        self.configs
            .lock()
            .expect("config cache")
            .insert(sweep.id.clone(), config.clone());
        Ok(config)
    }

    /// Validate `source` and create a sweep, or with `resume` return the unfinished sweep of
    /// the same project with the same config. Messages name the source `file`, or
    /// [`hyperdial_space::TEXT_SOURCE`] when it has no (non-blank) name; the sweep keeps the
    /// name only when there is one.
    pub async fn create_sweep(
        &self,
        source: &str,
        file: Option<&str>,
        project: Option<&str>,
        resume: bool,
        seed: Option<i64>,
    ) -> Result<Created, ControlError> {
        let file = file.filter(|name| !name.trim().is_empty());
        let name = hyperdial_space::source_name(file);
        let validated =
            hyperdial_space::parse_str(source, name).map_err(ControlError::invalid_config)?;
        let config = validated.config;
        self.check_lineage(&config, name).await?;
        let project = project_of(project, &config)?;
        let hash = config_hash(&config);
        if resume {
            if let Some(sweep) = self.store.find_resumable(&project, &hash).await? {
                return Ok(Created {
                    sweep,
                    resumed: true,
                    warnings: validated.warnings,
                });
            }
        }
        let seed = seed.unwrap_or_else(|| (rand::random::<u32>() as i64) & 0x7fff_ffff);
        let sweep = self
            .store
            .insert_sweep(NewSweep {
                project: &project,
                name: config.name.as_deref(),
                method: config.method.as_str(),
                source,
                source_file: file,
                config_hash: &hash,
                seed,
                metric_name: config.metric.as_ref().map(|m| m.name.as_str()),
                goal: config.metric.as_ref().map(|m| m.goal.as_str()),
            })
            .await?;
        Ok(Created {
            sweep,
            resumed: false,
            warnings: validated.warnings,
        })
    }

    /// [`Controller::create_sweep`]; with `finished_too`, when no unfinished sweep matches, the
    /// newest *finished* sweep of the same project and config is returned (as resumed) instead
    /// of a new one, so `tune` can say that the file's sweep is over rather than start again.
    pub async fn create_sweep_or_find_finished(
        &self,
        source: &str,
        file: Option<&str>,
        project: Option<&str>,
        resume: bool,
        finished_too: bool,
        seed: Option<i64>,
    ) -> Result<Created, ControlError> {
        if finished_too {
            if let Ok(validated) =
                hyperdial_space::parse_str(source, hyperdial_space::source_name(file))
            {
                let config = validated.config;
                let project = project_of(project, &config)?;
                let hash = config_hash(&config);
                if self.store.find_resumable(&project, &hash).await?.is_none() {
                    if let Some(sweep) = self.store.find_finished(&project, &hash).await? {
                        return Ok(Created {
                            sweep,
                            resumed: true,
                            warnings: validated.warnings,
                        });
                    }
                }
            }
        }
        self.create_sweep(source, file, project, resume, seed).await
    }

    /// Hand the next run of a sweep to an agent (see the module docs for how).
    pub async fn claim(
        &self,
        sweep_id: &str,
        agent_id: Option<&str>,
    ) -> Result<Claim, ControlError> {
        Ok(match self.claim_keyed(sweep_id, agent_id, None).await? {
            Keyed::Now(claim) => claim,
            // Without a key a claim never finds an earlier one.
            Keyed::Again(run) => Claim::Run(run),
            Keyed::Ended(_) => Claim::Wait,
        })
    }

    /// [`Controller::claim`] with the claim's idempotency key `key` (see "Idempotent claims"
    /// in the module docs): the run `key` claimed before when there is one, else a claim made
    /// now whose run (if it gets one) is stored with `key`. The key is looked up under the
    /// sweep's claim lock, before the claim and again after any attempt that wrote nothing,
    /// so a retry racing its first attempt finds that attempt's run instead of taking
    /// another.
    pub async fn claim_keyed(
        &self,
        sweep_id: &str,
        agent_id: Option<&str>,
        key: Option<&str>,
    ) -> Result<Keyed, ControlError> {
        let host = match agent_id {
            Some(a) => self.store.agent_host(a).await?.flatten(),
            None => None,
        };
        let lock = self.claim_lock(sweep_id);
        let mut history = lock.lock().await;
        if let Some(found) = self.claimed_before(sweep_id, key).await? {
            return Ok(found);
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let claim = self
                .claim_once(sweep_id, agent_id, host.as_deref(), key, &mut history)
                .await?;
            if let Some(Claim::Run(run)) = claim {
                return Ok(Keyed::Now(Claim::Run(run)));
            }
            // Nothing written: the key may have claimed a run meanwhile (a request sent again
            // while its first attempt was being answered, through another server).
            if let Some(found) = self.claimed_before(sweep_id, key).await? {
                return Ok(found);
            }
            if let Some(claim) = claim {
                return Ok(Keyed::Now(claim));
            }
        }
        tracing::info!(
            sweep = sweep_id,
            "every claim attempt found the sweep changed meanwhile; the agent will ask again"
        );
        Ok(Keyed::Now(Claim::Wait))
    }

    /// The run that claim key `key` claimed in sweep `sweep_id` before, as a claim's answer:
    /// [`Keyed::Again`] while it has not ended, [`Keyed::Ended`] once it has; `None` without a
    /// key or when the key claimed nothing yet. One index seek.
    async fn claimed_before(
        &self,
        sweep_id: &str,
        key: Option<&str>,
    ) -> Result<Option<Keyed>, ControlError> {
        let Some(key) = key else {
            return Ok(None);
        };
        let Some(run) = self.store.run_by_claim_key(sweep_id, key).await? else {
            return Ok(None);
        };
        tracing::info!(
            sweep = sweep_id,
            run = %run.id,
            state = %run.state,
            "a claim sent again (its key claimed this run before)"
        );
        Ok(Some(if run.state.is_terminal() {
            Keyed::Ended(Box::new(run))
        } else {
            Keyed::Again(Box::new(run))
        }))
    }

    /// One claim from one snapshot: `None` when the snapshot went stale before the claim
    /// could be written. `history` is the sweep's history of this server, built here on first
    /// use and brought up to date from the runs that changed since (see [`history`]).
    async fn claim_once(
        &self,
        sweep_id: &str,
        agent_id: Option<&str>,
        host: Option<&str>,
        key: Option<&str>,
        history: &mut Option<history::History>,
    ) -> Result<Option<Claim>, ControlError> {
        let (sweep, changes) = self.snapshot(sweep_id, history.as_ref()).await?;
        match sweep.state {
            SweepState::Paused => return Ok(Some(Claim::Wait)),
            SweepState::Running => {}
            other => {
                // Nothing more to hand out: the history is rebuilt if the sweep reopens.
                *history = None;
                return Ok(Some(Claim::Over(other)));
            }
        }
        let config = self.config(&sweep)?;
        let h = history.get_or_insert_with(|| history::History::new(sweep_id, &config));
        self.bring_up_to_date(h, changes).await?;
        // A spent budget ends the sweep before anything else is handed out.
        if let Some(ended) = self.end_if_spent(&sweep, &config, h).await? {
            *history = None;
            return Ok(ended);
        }
        let Some(h) = history.as_mut() else {
            return Ok(None);
        };
        // Retries first: queue what the sweep's `retry` policy asks for, then hand out the
        // oldest queued run before the strategy is asked for anything new.
        let queued = self.queue_due_retries(&sweep, h).await?;
        // A run queued after the snapshot moved the sweep's number, so the insert below would
        // find the snapshot stale and the next round hands that run out.
        if queued > 0 || h.queued > 0 {
            if let Some(run) = self
                .store
                .claim_queued(sweep_id, agent_id, host, key)
                .await?
            {
                return Ok(Some(Claim::Run(Box::new(run))));
            }
        }
        if queued > 0 {
            // The snapshot no longer has the sweep's runs.
            return Ok(None);
        }
        let running = h.in_flight;
        if sweep.retries_only {
            if running > 0 {
                return Ok(Some(Claim::Wait));
            }
            return self.finish_spent(&sweep, None).await;
        }
        // A configuration counts once however often it was retried (for `run_cap` and for the
        // search): only the latest attempt of each is a trial.
        if let Some(cap) = config.run_cap {
            if h.tally.trials >= cap {
                if running > 0 {
                    return Ok(Some(Claim::Wait));
                }
                return self.finish_spent(&sweep, Some(EndReason::RunCap)).await;
            }
        }
        if h.target_reached() {
            // Reaching the target is final whatever else changed: no number guard.
            let ended = self
                .store
                .transition_sweep(
                    sweep_id,
                    &[SweepState::Running],
                    SweepState::Finished,
                    Some(EndReason::Target.as_str()),
                )
                .await?;
            if ended.is_none() {
                return Ok(None);
            }
            tracing::info!(sweep = sweep_id, "sweep finished: metric target reached");
            *history = None;
            return Ok(Some(Claim::Over(SweepState::Finished)));
        }
        let number = sweep.next_number;
        // The run's seed is run_seed(sweep seed, number); the sweep seed also scrambles the
        // Sobol sequence that sobol and the initial designs of bayes and tpe follow. grid,
        // random and sobol answer from the history's tally at once; a model-based strategy
        // runs on a blocking thread, outside any transaction.
        let seed = sweep.seed as u64;
        let asked = match suggest_by_tally(&config, &h.tally, seed, number as u64) {
            Some(asked) => asked,
            None => {
                let mut trials = h.trials(&self.store, &config).await?;
                // Runs of the `prior_runs` sweeps inside this space (bayes and tpe):
                // observations for the model after the sweep's own; `run_cap` and the target
                // counted the own ones only.
                trials.extend(self.prior_trials(&config).await?);
                let strategy_config = config.clone();
                tokio::task::spawn_blocking(move || {
                    suggest_in_sweep(&strategy_config, &trials, seed, number as u64)
                })
                .await
                .map_err(|e| {
                    tracing::error!(sweep = sweep_id, "the search strategy failed: {e}");
                    ControlError::Strategy
                })?
            }
        };
        let suggestion = match asked {
            Ok(Ask::Suggest(s)) => s,
            Ok(Ask::Exhausted) => {
                if running > 0 {
                    return Ok(Some(Claim::Wait));
                }
                return self.finish_spent(&sweep, Some(EndReason::Exhausted)).await;
            }
            Err(e) => return Err(ControlError::conflict(format!("cannot suggest a run: {e}"))),
        };
        let new = suggested_run(&sweep, &config, &suggestion, agent_id, host, key);
        Ok(match self.store.insert_suggested_run(new, number).await? {
            Inserted::Inserted(run) => Some(Claim::Run(run)),
            Inserted::Stale => None,
        })
    }

    /// A claim's snapshot of sweep `sweep_id` (a 404 if unknown): the sweep row and, when the
    /// claim has a `history`, the runs changed since its mark with the new mark. With a
    /// history both come in one read (the runs read after the row, so they hold every run the
    /// snapshot's number counts); without one, the row alone, so a sweep that is over costs
    /// no read of its runs.
    async fn snapshot(
        &self,
        sweep_id: &str,
        history: Option<&history::History>,
    ) -> Result<(SweepRow, Option<(Vec<TrialRow>, i64)>), ControlError> {
        let (sweep, changes) = match history.map(history::History::since) {
            Some(since) => match self.store.sweep_and_changes(sweep_id, since).await? {
                Some((sweep, rows, mark)) => (Some(sweep), Some((rows, mark))),
                None => (None, None),
            },
            None => (self.store.sweep(sweep_id).await?, None),
        };
        let sweep = sweep.ok_or_else(|| ControlError::not_found("sweep", sweep_id))?;
        Ok((sweep, changes))
    }

    /// Bring a claim's history up to date after its [`Controller::snapshot`]: with the changes
    /// read with the row, or else by a read of its own (after the sweep row, so it holds
    /// every run the snapshot's number counts).
    async fn bring_up_to_date(
        &self,
        h: &mut history::History,
        changes: Option<(Vec<TrialRow>, i64)>,
    ) -> Result<(), ControlError> {
        match changes {
            Some((rows, mark)) => {
                h.take_changes(rows, mark);
            }
            None => {
                h.refresh(&self.store).await?;
            }
        }
        Ok(())
    }

    /// Finish a sweep that has nothing left to hand out, if it is as the snapshot `sweep` saw
    /// it: `Over` when it finished, `None` when the snapshot went stale. `reason` is recorded
    /// as the sweep's `end_reason` (`None`: its retries are done).
    async fn finish_spent(
        &self,
        sweep: &SweepRow,
        reason: Option<EndReason>,
    ) -> Result<Option<Claim>, ControlError> {
        if self
            .store
            .finish_sweep_if_unchanged(&sweep.id, sweep.next_number, reason.map(EndReason::as_str))
            .await?
        {
            tracing::info!(
                sweep = sweep.id.as_str(),
                "sweep finished: {}",
                reason.map_or("its retries are done", EndReason::as_str)
            );
            return Ok(Some(Claim::Over(SweepState::Finished)));
        }
        Ok(None)
    }

    /// After a run of the sweep ended: finish the sweep now if nothing is left to hand out
    /// (`run_cap` reached or the space exhausted, or its retries done) and nothing is queued,
    /// in flight or due for a retry, as the next claim would, so it does not stay `running`
    /// until another agent asks.
    async fn finish_if_spent(&self, sweep_id: &str) -> Result<(), ControlError> {
        let lock = self.claim_lock(sweep_id);
        let mut history = lock.lock().await;
        let Some(sweep) = self.store.sweep(sweep_id).await? else {
            return Ok(());
        };
        if sweep.state != SweepState::Running {
            return Ok(());
        }
        let config = self.config(&sweep)?;
        let h = history.get_or_insert_with(|| history::History::new(sweep_id, &config));
        h.refresh(&self.store).await?;
        if h.in_flight > 0 || !h.due().is_empty() {
            return Ok(());
        }
        let reason = if sweep.retries_only {
            None
        } else if config.run_cap.is_some_and(|cap| h.tally.trials >= cap) {
            Some(EndReason::RunCap)
        } else if matches!(
            suggest_by_tally(
                &config,
                &h.tally,
                sweep.seed as u64,
                sweep.next_number as u64
            ),
            Some(Ok(Ask::Exhausted))
        ) {
            Some(EndReason::Exhausted)
        } else {
            return Ok(());
        };
        if self.finish_spent(&sweep, reason).await?.is_some() {
            *history = None;
            self.events.publish(
                "sweep",
                Some(sweep_id),
                &serde_json::json!({"id": sweep_id, "state": SweepState::Finished}),
            );
        }
        Ok(())
    }

    /// The objective of a run's sweep, if it has one.
    pub async fn objective(
        &self,
        run: &RunRow,
    ) -> Result<Option<(String, Goal, Option<f64>)>, ControlError> {
        let Some(sweep_id) = &run.sweep_id else {
            return Ok(None);
        };
        let Some(sweep) = self.store.sweep(sweep_id).await? else {
            return Ok(None);
        };
        let config = self.config(&sweep)?;
        Ok(config
            .metric
            .as_ref()
            .map(|m| (m.name.clone(), m.goal, m.target)))
    }

    /// Merge values into a run's explicit summary; a value for the sweep metric counts for the
    /// run's metric (and can reach `metric.target`, which finishes the sweep).
    pub async fn set_summary(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
    ) -> Result<(), ControlError> {
        let (run, objective) = self.run_with_objective(run_id).await?;
        let metric = self
            .store
            .set_user_summary(run_id, values, store_objective(&objective))
            .await?
            .ok_or_else(|| ControlError::not_found("run", run_id))?;
        self.finish_if_target_reached(&run, &objective, metric)
            .await
    }

    /// Run `run_id` if it still takes reports: not found, or
    /// [`ControlError::RunCrashed`] once the server gave up on it (a late report from an
    /// agent behind a cut link; see `api/late.rs`). A run outside a sweep that was only
    /// presumed crashed for its silence ([`hyperdial_wire::EndCause::RunSilent`]: its
    /// process was suspended or its link cut, and no retry replaced it) is `running` again
    /// and takes the report, as a W&B run shown crashed runs again when it is heard from.
    pub async fn reporting_run(&self, run_id: &str) -> Result<RunRow, ControlError> {
        let mut run = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| ControlError::not_found("run", run_id))?;
        for _ in 0..3 {
            let presumed = run.state == RunState::Crashed
                && run.sweep_id.is_none()
                && run.end_cause == Some(hyperdial_wire::EndCause::RunSilent);
            if !presumed {
                break;
            }
            match self.store.reopen_run(run_id, &run).await? {
                Some(reopened) => {
                    tracing::info!(run = run_id, "a run presumed crashed reports again");
                    self.events.publish(
                        "run_updated",
                        None,
                        &crate::api::views::run_brief(&reopened),
                    );
                    return Ok(reopened);
                }
                // Changed since it was read (another report revived it): read it again.
                None => {
                    run = self
                        .store
                        .run(run_id)
                        .await?
                        .ok_or_else(|| ControlError::not_found("run", run_id))?;
                }
            }
        }
        if run.state == RunState::Crashed {
            let why = run
                .error
                .as_deref()
                .filter(|e| !e.is_empty())
                .unwrap_or("its agent stopped reporting");
            return Err(ControlError::RunCrashed {
                id: run.id.clone(),
                why: why.to_string(),
                asked: run.sweep_id.is_some() && run.agent_id.is_none(),
            });
        }
        Ok(run)
    }

    /// Take back sweep run `run_id` for its late end: its agent kept the run's end while the
    /// server was away, and the server marked the run `crashed` only for that (its agent fell
    /// silent, or its process is gone). The run is `running` again, to take the points and the
    /// end that follow, and its retry gives way: withdrawn if still queued, made a repeat of
    /// the run (and stopped, if running) once claimed
    /// ([`hyperdial_store::Storage::take_back_late_end`]). A finished run is real work; a
    /// retry of it is a second try at the same configuration. A run that is not crashed is
    /// returned as it is (its reports are taken as usual). Refused: a run crashed for another
    /// reason ([`ControlError::RunCrashed`]).
    pub async fn take_back_late_end(&self, run_id: &str) -> Result<RunRow, ControlError> {
        let crashed = match self.reporting_run(run_id).await {
            Err(crashed @ ControlError::RunCrashed { .. }) => crashed,
            other => return other,
        };
        let silent = [
            hyperdial_wire::EndCause::AgentSilent,
            hyperdial_wire::EndCause::AgentGone,
        ];
        match self.store.take_back_late_end(run_id, &silent).await? {
            hyperdial_store::LateEnd::TakenBack { run, retry } => {
                let (retry_id, event) = match &retry {
                    Some(hyperdial_store::RetryFate::Withdrawn(id)) => {
                        (Some(id.as_str()), "run_finished")
                    }
                    Some(hyperdial_store::RetryFate::Superseded { retry, .. }) => {
                        (Some(retry.as_str()), "run_updated")
                    }
                    None => (None, ""),
                };
                tracing::info!(
                    run = run_id,
                    retry = retry_id.unwrap_or_default(),
                    "a run marked crashed delivers its end late; its retry gives way"
                );
                if let Some(retry) = retry_id {
                    if let Some(row) = self.store.run(retry).await? {
                        self.events.publish(
                            event,
                            row.sweep_id.as_deref(),
                            &crate::api::views::run_brief(&row),
                        );
                    }
                }
                self.events.publish(
                    "run_updated",
                    run.sweep_id.as_deref(),
                    &crate::api::views::run_brief(&run),
                );
                Ok(*run)
            }
            hyperdial_store::LateEnd::NotTaken => Err(crashed),
        }
    }

    /// A run that takes reports ([`Controller::reporting_run`]) and its sweep's objective
    /// (metric name, goal, target).
    async fn run_with_objective(
        &self,
        run_id: &str,
    ) -> Result<(RunRow, Option<(String, Goal, Option<f64>)>), ControlError> {
        let run = self.reporting_run(run_id).await?;
        let objective = self.objective(&run).await?;
        Ok((run, objective))
    }

    /// A run whose metric is now `value` finishes its sweep when that reaches `metric.target`
    /// (no new runs start).
    async fn finish_if_target_reached(
        &self,
        run: &RunRow,
        objective: &Option<(String, Goal, Option<f64>)>,
        value: Option<f64>,
    ) -> Result<(), ControlError> {
        if let (Some((_, goal, Some(target))), Some(value), Some(sweep_id)) =
            (objective, value, &run.sweep_id)
        {
            if reaches(*goal, value, *target) {
                self.finish_on_target(sweep_id, &run.id).await?;
            }
        }
        Ok(())
    }

    /// `metric.target` was reached by `run_id`: the sweep finishes (no new runs start).
    async fn finish_on_target(&self, sweep_id: &str, run_id: &str) -> Result<(), ControlError> {
        let ended = self
            .store
            .transition_sweep(
                sweep_id,
                &[SweepState::Running],
                SweepState::Finished,
                Some(EndReason::Target.as_str()),
            )
            .await?;
        if ended.is_some() {
            tracing::info!(sweep = sweep_id, run = run_id, "metric target reached");
            // Dashboards see the end, and claims parked on the sweep answer that it is over.
            self.events.publish(
                "sweep",
                Some(sweep_id),
                &serde_json::json!({"id": sweep_id, "state": SweepState::Finished}),
            );
        }
        Ok(())
    }

    /// Ingest a metric batch into a run that takes reports ([`Controller::reporting_run`]).
    pub async fn ingest(&self, run_id: &str, points: &[Point]) -> Result<Ingested, ControlError> {
        let (run, objective) = self.run_with_objective(run_id).await?;
        let appended = self
            .store
            .append_metrics(run_id, points, store_objective(&objective))
            .await?
            .ok_or_else(|| ControlError::not_found("run", run_id))?;
        self.finish_if_target_reached(&run, &objective, appended.metric)
            .await?;
        // Early termination: judge every running run of the sweep against the new data.
        let (mut stop, mut reason) = (appended.stop, appended.reason);
        // A run ended through the API (`hyperdial cancel RUN`) while its process still logs:
        // the answer tells that process to stop, as a heartbeat's does.
        if !stop && !matches!(run.state, RunState::Running | RunState::Queued) {
            stop = true;
            reason = Some(run.state.as_str().to_string());
        }
        if let Some(sweep_id) = &run.sweep_id {
            if let Some(sweep) = self.store.sweep(sweep_id).await? {
                let config = self.config(&sweep)?;
                let stopped = self
                    .enforce_early_termination(sweep_id, run_id, &config)
                    .await?;
                if stopped.iter().any(|id| id == run_id) {
                    stop = true;
                    reason = Some(crate::early_stop::REASON.to_string());
                }
            }
        }
        Ok(Ingested {
            accepted: appended.accepted,
            stop,
            reason,
            first_step: run.next_step,
        })
    }

    /// End a run with what its agent reports. The state is decided here: a requested stop
    /// wins; then an explicit state; then the exit code (0 finished, else failed); and a
    /// finished run whose sweep metric was last logged as NaN is failed.
    ///
    /// `told`, when given, is one metric point stored in the same transaction as the end (the
    /// value an ask/tell client tells: one request and one commit instead of a metric batch
    /// and a finish). A told sweep metric decides the NaN rule by itself; it counts for the
    /// run's metric, `metric.target` and early termination as a metric batch does. A run the
    /// server gave up on (`crashed`) refuses the finish with
    /// [`ControlError::RunCrashed`], as it refuses every late report. With `in_sweep`, a run
    /// of another sweep (or of none) is refused as invalid and left as it is.
    ///
    /// After the end, a sweep left with nothing to hand out is finished at once
    /// (`finish_if_spent`), except with `in_sweep`: that is a claim's tell, and the claim that
    /// follows decides the same from the same history (reading the sweep and its changes once
    /// per trial instead of twice).
    pub async fn finish(
        &self,
        run_id: &str,
        exit_code: Option<i64>,
        state: Option<&str>,
        error: Option<&str>,
        told: Option<&Point>,
        in_sweep: Option<&str>,
    ) -> Result<Finished, ControlError> {
        self.finish_ended_at(run_id, exit_code, state, error, told, in_sweep, None)
            .await
    }

    /// [`Controller::finish`] with when the process ended (`ended_ms`, ms since the epoch on
    /// the reporter's clock, as [`hyperdial_wire::FinishRequest::ended_ms`]): a stop the
    /// early-termination rule requested more than [`LATE_END_MS`] after that did not stop the
    /// process, which had already ended by itself (its points reached the server late, after
    /// an outage), so the run ends as its exit code says, not `stopped_early`.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_ended_at(
        &self,
        run_id: &str,
        exit_code: Option<i64>,
        state: Option<&str>,
        error: Option<&str>,
        told: Option<&Point>,
        in_sweep: Option<&str>,
        ended_ms: Option<i64>,
    ) -> Result<Finished, ControlError> {
        let ending = self
            .prepare_finish(
                None, run_id, exit_code, state, error, told, in_sweep, ended_ms,
            )
            .await?;
        let Ending {
            run,
            final_state,
            exit_code,
            error,
            config,
            objective,
            told,
        } = ending;
        let Some(told) = told else {
            let run = self
                .store
                .finish_run(run_id, final_state, exit_code, error.as_deref())
                .await?
                .ok_or_else(|| ControlError::not_found("run", run_id))?;
            if let (Some(sweep_id), None) = (&run.sweep_id, in_sweep) {
                self.finish_if_spent(sweep_id).await?;
            }
            return Ok(Finished {
                run,
                told_step: None,
            });
        };
        let ended = self
            .store
            .finish_run_with_points(RunFinish {
                run_id,
                points: std::slice::from_ref(told),
                objective: store_objective(&objective),
                state: final_state,
                exit_code,
                error: error.as_deref(),
                seen: Some(&run),
            })
            .await?
            .ok_or_else(|| ControlError::not_found("run", run_id))?;
        self.finish_if_target_reached(&run, &objective, ended.metric)
            .await?;
        if let (Some(sweep_id), Some(config)) = (&run.sweep_id, &config) {
            self.enforce_early_termination(sweep_id, run_id, config)
                .await?;
            if in_sweep.is_none() {
                self.finish_if_spent(sweep_id).await?;
            }
        }
        Ok(Finished {
            run: ended,
            told_step: Some(run.next_step),
        })
    }

    /// What [`Controller::finish`] decides before it writes anything: the run (refused as
    /// `finish` says), its final state and error, its sweep's config and objective, and the
    /// told point unless the run has already ended. `read` is the run as the caller has just
    /// read it (a run of a sweep), spared a read of its own; `None` reads it.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_finish<'p>(
        &self,
        read: Option<RunRow>,
        run_id: &str,
        exit_code: Option<i64>,
        state: Option<&str>,
        error: Option<&str>,
        told: Option<&'p Point>,
        in_sweep: Option<&str>,
        ended_ms: Option<i64>,
    ) -> Result<Ending<'p>, ControlError> {
        // A run of a sweep is never one presumed crashed that `reporting_run` reopens.
        let run = match read {
            Some(run) if run.id == run_id && run.sweep_id.is_some() => run,
            _ => self.reporting_run(run_id).await?,
        };
        if let Some(sweep) = in_sweep {
            if run.sweep_id.as_deref() != Some(sweep) {
                return Err(ControlError::invalid(format!(
                    "run {run_id} is not a run of sweep {sweep}"
                )));
            }
        }
        let state = state.map(final_state).transpose()?;
        let mut error = error.map(str::to_string);
        let stopped_by_us = |reason: Option<&str>| match reason {
            Some(crate::early_stop::REASON) => RunState::StoppedEarly,
            _ => RunState::Cancelled,
        };
        // A stop requested once the process had ended (its last points arrived late) stopped
        // nothing: the run ended by itself.
        let stop_came_after_the_end = ended_ms.is_some_and(|ended| {
            crate::early_stop::requested_ms(&run.stop_info)
                .is_some_and(|requested| requested - ended > LATE_END_MS)
        });
        let mut final_state = match (run.stop_requested && !stop_came_after_the_end, state) {
            (true, Some(s @ (RunState::StoppedEarly | RunState::Cancelled))) => s,
            // A run asked to stop ends as stopped, whatever its exit code: a script that
            // checks `should_stop()` ends cleanly (exit code 0) because it was asked to,
            // and one that reached its last step as the rule judged it was judged all the
            // same; its steps say how far it got.
            (true, _) => stopped_by_us(run.stop_reason.as_deref()),
            (false, Some(s)) => s,
            (false, None) if exit_code.unwrap_or(0) == 0 => RunState::Finished,
            (false, None) => RunState::Failed,
        };
        if final_state == RunState::StoppedEarly {
            if let Some(why) = crate::early_stop::explain(&run.stop_info) {
                error = Some(why);
            }
        }
        if final_state == RunState::Cancelled
            && run.end_cause == Some(hyperdial_wire::EndCause::RetrySuperseded)
        {
            error = Some(hyperdial_store::RETRY_SUPERSEDED.to_string());
        }
        // Stopped because its sweep was cancelled (`request_stop_for_sweep`): say so, as the
        // sweep's queued runs do, unless the reporter said more.
        if final_state == RunState::Cancelled
            && run.stop_requested
            && run.stop_reason.as_deref() == Some(RunState::Cancelled.as_str())
            && error.as_deref().is_none_or(str::is_empty)
        {
            error = Some(SWEEP_CANCELLED.to_string());
        }
        // Sweep configs never change: a cached one spares reading the sweep row.
        let config = match &run.sweep_id {
            Some(id) => match self.cached_config(id) {
                Some(config) => Some(config),
                None => match self.store.sweep(id).await? {
                    Some(sweep) => Some(self.config(&sweep)?),
                    None => None,
                },
            },
            None => None,
        };
        let objective = config
            .as_ref()
            .and_then(|c| c.metric.as_ref())
            .map(|m| (m.name.clone(), m.goal, m.target));
        if let (Some(config), Some(sweep_id)) = (&config, &run.sweep_id) {
            let interruption = (final_state == RunState::Cancelled)
                .then_some(error.as_deref())
                .flatten()
                .and_then(|e| e.strip_prefix(INTERRUPTED_PREFIX));
            if let Some(why) = interruption {
                let cap = config.retry.interrupted;
                let before = self.interruptions_before(&run, cap).await?;
                if before + 1 >= cap {
                    final_state = RunState::Failed;
                    error = Some(interrupted_too_often(sweep_id, run_id, cap, why));
                }
            }
        }
        if final_state == RunState::Finished {
            if let Some((name, _, _)) = &objective {
                let told_value = told
                    .and_then(|p| p.values.iter().rev().find(|(n, _)| n == name))
                    .map(|(_, v)| *v);
                let last = match told_value {
                    Some(v) => Some(v),
                    None => self.store.last_value(run_id, name).await?,
                };
                if let Some(None) = last {
                    final_state = RunState::Failed;
                    error = Some(format!(
                        "the last value of the sweep metric `{name}` is NaN or infinite: a \
                         run that diverged counts as failed, whatever it reported before"
                    ));
                }
            }
        }
        let told = match told {
            // Already ended (a finish sent again after its answer was lost): the told values
            // were stored with that end, and are not stored again at a later step.
            Some(_) if run.state.is_terminal() => None,
            told => told,
        };
        Ok(Ending {
            run,
            final_state,
            exit_code,
            error,
            config,
            objective,
            told,
        })
    }

    /// How many attempts in a row before `run` (following `retry_of`) its agent's shutdown
    /// interrupted, counting no further than `cap`.
    async fn interruptions_before(&self, run: &RunRow, cap: u32) -> Result<u32, ControlError> {
        let mut count = 0;
        let mut previous = run.retry_of.clone();
        while let Some(id) = previous {
            if count >= cap {
                break;
            }
            let Some(row) = self.store.run(&id).await? else {
                break;
            };
            let was_interrupted = row.state == RunState::Cancelled
                && row
                    .error
                    .as_deref()
                    .is_some_and(|e| e.starts_with(INTERRUPTED_PREFIX));
            if !was_interrupted {
                break;
            }
            count += 1;
            previous = row.retry_of;
        }
        Ok(count)
    }

    /// The sweep `id`, or a 404 naming it.
    pub async fn sweep(&self, id: &str) -> Result<SweepRow, ControlError> {
        self.store
            .sweep(id)
            .await?
            .ok_or_else(|| ControlError::not_found("sweep", id))
    }

    /// Change a sweep's state by a user action: `pause`, `resume`, `stop` or `cancel`.
    ///
    /// The change is conditional on the state the action was decided from, so an action never
    /// overwrites a state another request (or server) set meanwhile (a sweep finishing on its
    /// own is not turned into a cancelled one): when the state moved, the action is decided
    /// again from the new one. Pausing a paused sweep, resuming a running one, and stopping
    /// a sweep that has ended (finished or cancelled: it hands out no more runs, which is
    /// all `stop` asks; so a script or an `optimize` callback may stop a sweep more than
    /// once, as Optuna's `study.stop()`) change nothing. `cancel` on a finished sweep whose
    /// runs are still in flight (after `stop`) tells those runs to stop and leaves the sweep
    /// `finished`. Every other action on a finished or cancelled sweep is a `409` that says
    /// why.
    ///
    /// Returns the sweep, and whether the action changed anything (`false` for the actions
    /// above that change nothing), so that what is logged is what happened.
    pub async fn act(
        &self,
        sweep_id: &str,
        action: SweepAction,
    ) -> Result<(SweepRow, bool), ControlError> {
        for _ in 0..ACT_ATTEMPTS {
            let sweep = self.sweep(sweep_id).await?;
            let state = sweep.state;
            let refuse = |why: &str| {
                ControlError::conflict(format!(
                    "cannot {} sweep {sweep_id}: it is {state}{why}",
                    action.as_str()
                ))
            };
            let next = match (action, state) {
                (SweepAction::Pause, SweepState::Paused)
                | (SweepAction::Resume, SweepState::Running)
                | (SweepAction::Stop, SweepState::Finished | SweepState::Cancelled) => {
                    return Ok((sweep, false))
                }
                (SweepAction::Pause, SweepState::Running) => Some(SweepState::Paused),
                (SweepAction::Resume, SweepState::Paused) => Some(SweepState::Running),
                (SweepAction::Stop, SweepState::Running | SweepState::Paused) => {
                    Some(SweepState::Finished)
                }
                (SweepAction::Cancel, SweepState::Running | SweepState::Paused) => {
                    Some(SweepState::Cancelled)
                }
                (SweepAction::Cancel, SweepState::Finished) => {
                    let counts = self.store.sweep_counts(sweep_id).await?;
                    let in_flight: i64 = counts
                        .iter()
                        .filter(|(s, _)| s.in_flight())
                        .map(|(_, n)| n)
                        .sum();
                    if in_flight == 0 {
                        return Err(refuse(" and no run is in flight"));
                    }
                    None
                }
                (_, SweepState::Finished | SweepState::Cancelled) => {
                    return Err(refuse(
                        "; a sweep that has ended hands out no more runs and cannot be paused or resumed",
                    ))
                }
            };
            if let Some(next) = next {
                // Ending the sweep also cancels its queued retries, in the same transaction.
                let moved = self
                    .store
                    .transition_sweep(sweep_id, &[state], next, Some(action.as_str()))
                    .await?;
                if moved.is_none() {
                    continue;
                }
            }
            if action == SweepAction::Cancel {
                self.store
                    .request_stop_for_sweep(sweep_id, RunState::Cancelled.as_str())
                    .await?;
            }
            return Ok((self.sweep(sweep_id).await?, true));
        }
        Err(ControlError::conflict(format!(
            "sweep {sweep_id} kept changing state during `{}`; try again",
            action.as_str()
        )))
    }
}

/// How much earlier than the server's clock a reported end time must be to count as earlier:
/// a reporter's clock a second or two off never moves an end, nor decides whether a stop
/// came after it ([`Controller::finish_ended_at`], and the backdating of a late end).
pub const LATE_END_MS: i64 = 2_000;

/// The error of a run stopped because its sweep was cancelled.
pub const SWEEP_CANCELLED: &str = "stopped: its sweep was cancelled (`cancel`)";

/// One run chosen by [`Controller::retry`] and the retry queued for it.
#[derive(Debug)]
pub struct Retried {
    /// The run that is retried (the latest attempt of its configuration).
    pub run: String,
    /// The queued retry.
    pub retry: RunRow,
}

/// What [`Controller::retry`] did.
#[derive(Debug, Default)]
pub struct RetryOutcome {
    /// Retries queued.
    pub retried: Vec<Retried>,
    /// Runs named or chosen that were not retried: `(run id, why)`.
    pub skipped: Vec<(String, String)>,
}

/// Most runs one retry request may name.
pub const MAX_RETRY_RUNS: usize = 10_000;

/// Run states that `hyperdial retry` selects by default.
pub const DEFAULT_RETRY_STATES: &[RunState] = &[RunState::Failed, RunState::Crashed];

impl Controller {
    /// Queue runs of a sweep again with the same configuration: the runs named in `runs` (a
    /// run already retried stands for its latest attempt), and every latest attempt whose state
    /// is in `states`; with neither, the `failed` and `crashed` ones. A run that is still
    /// `queued` or `running` is skipped, as is a `finished` run that was only selected by
    /// state. A finished sweep with something to retry runs again, only until its retries are
    /// done; a cancelled sweep answers 409. Explicit retries do not count against the sweep's
    /// `retry.max`.
    pub async fn retry(
        &self,
        sweep_id: &str,
        states: &[String],
        runs: &[String],
    ) -> Result<RetryOutcome, ControlError> {
        let terminal = RunState::ALL.iter().filter(|s| s.is_terminal()).count();
        if runs.len() > MAX_RETRY_RUNS || states.len() > terminal {
            return Err(ControlError::invalid(format!(
                "name at most {MAX_RETRY_RUNS} runs and {terminal} states in one retry"
            )));
        }
        let states: Vec<RunState> = states
            .iter()
            .map(|s| final_state(s))
            .collect::<Result<_, _>>()?;
        let sweep = self.sweep(sweep_id).await?;
        if sweep.state == SweepState::Cancelled {
            return Err(ControlError::conflict(format!(
                "sweep {sweep_id} is cancelled: its runs are not retried; start a new sweep with `hyperdial tune FILE --new`"
            )));
        }
        let rows = self.store.trials(sweep_id).await?;
        let successor: HashMap<&str, &str> = rows
            .iter()
            .filter_map(|r| r.retry_of.as_deref().map(|of| (of, r.id.as_str())))
            .collect();
        let by_id: HashMap<&str, &TrialRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
        let states: Vec<RunState> = if states.is_empty() && runs.is_empty() {
            DEFAULT_RETRY_STATES.to_vec()
        } else {
            states
        };
        let mut chosen: Vec<&str> = Vec::new();
        let mut outcome = RetryOutcome::default();
        for name in runs {
            let Some(mut id) = by_id.get(name.as_str()).map(|r| r.id.as_str()) else {
                return Err(ControlError::invalid(format!(
                    "run {name} is not a run of sweep {sweep_id}"
                )));
            };
            while let Some(next) = successor.get(id) {
                id = next;
            }
            let latest = by_id[id];
            if !latest.state.is_terminal() {
                let why = if id == name {
                    format!("it is {}", latest.state)
                } else {
                    format!("its retry {id} is {}", latest.state)
                };
                outcome.skipped.push((name.clone(), why));
            } else if !chosen.contains(&id) {
                chosen.push(id);
            }
        }
        for r in &rows {
            if states.contains(&r.state)
                && !successor.contains_key(r.id.as_str())
                && !chosen.contains(&r.id.as_str())
            {
                chosen.push(&r.id);
            }
        }
        let chosen: Vec<String> = chosen.into_iter().map(str::to_string).collect();
        // One atomic step: the retries are numbered under the sweep's lock, a finished sweep
        // reopens, and a run someone else retried meanwhile gets no second retry.
        let queued = self.store.queue_retries(sweep_id, &chosen, true).await?;
        for id in &chosen {
            match queued.iter().find(|r| r.retry_of.as_deref() == Some(id)) {
                Some(retry) => outcome.retried.push(Retried {
                    run: id.clone(),
                    retry: retry.clone(),
                }),
                None => outcome
                    .skipped
                    .push((id.clone(), "it was retried meanwhile".to_string())),
            }
        }
        Ok(outcome)
    }
}

impl Controller {
    /// Queue the retries the `retry` policy of sweep `sweep_id` asks for now, if the sweep is
    /// running or paused (the janitor calls this after marking runs crashed, so the retries
    /// show as `queued` before an agent asks). Returns how many were queued.
    pub async fn queue_retries(&self, sweep_id: &str) -> Result<usize, ControlError> {
        let lock = self.claim_lock(sweep_id);
        let mut history = lock.lock().await;
        let Some(sweep) = self.store.sweep(sweep_id).await? else {
            return Ok(0);
        };
        if !matches!(sweep.state, SweepState::Running | SweepState::Paused) {
            return Ok(0);
        }
        let config = self.config(&sweep)?;
        let h = history.get_or_insert_with(|| history::History::new(sweep_id, &config));
        h.refresh(&self.store).await?;
        self.queue_due_retries(&sweep, h).await
    }

    /// Queue a retry of every latest attempt the sweep's `retry` policy covers (its state is
    /// in `retry.on` and it has had fewer than `retry.max` retries), and of every run its
    /// agent's shutdown interrupted ([`interrupted`]), as `history` has them. Idempotent.
    /// Returns how many were queued.
    async fn queue_due_retries(
        &self,
        sweep: &SweepRow,
        history: &history::History,
    ) -> Result<usize, ControlError> {
        let due = history.due();
        if due.is_empty() {
            return Ok(0);
        }
        let queued = self.store.queue_retries(&sweep.id, &due, false).await?;
        for retry in &queued {
            tracing::info!(
                sweep = sweep.id.as_str(),
                run = retry.retry_of.as_deref().unwrap_or_default(),
                retry = retry.id.as_str(),
                "queued a retry (attempt {})",
                retry.attempt
            );
        }
        Ok(queued.len())
    }
}

/// The run a claim with idempotency key `key` inserts for the strategy's `suggestion`
/// (numbered by the insert).
fn suggested_run(
    sweep: &SweepRow,
    config: &SweepConfig,
    suggestion: &hyperdial_search::Suggestion,
    agent_id: Option<&str>,
    host: Option<&str>,
    key: Option<&str>,
) -> NewRun {
    let params: Map<String, Value> = suggestion.params.iter().cloned().collect();
    let config_value = nested_config(config, &params);
    NewRun {
        sweep_id: Some(sweep.id.clone()),
        project: sweep.project.clone(),
        params: Value::Object(params),
        config: config_value,
        suggestion: Some(serde_json::to_value(&suggestion.info).unwrap_or(Value::Null)),
        grid_index: suggestion
            .info
            .grid_index
            .and_then(|i| i64::try_from(i).ok()),
        agent_id: agent_id.map(str::to_string),
        host: host.map(str::to_string),
        claim_key: key.map(str::to_string),
        ..Default::default()
    }
}

/// How an agent marks the runs it stopped because it was itself shut down (a signal to
/// `hyperdial agent`, `tune` or `run`): state `cancelled`, error starting with this (see
/// `hyperdial_agent::supervise`).
pub const INTERRUPTED_PREFIX: &str = "interrupted: ";

/// The error of a run of sweep `sweep_id` interrupted for the `cap`-th time in a row (`why`:
/// what interrupted it this time), which ends `failed` instead of being queued again.
fn interrupted_too_often(sweep_id: &str, run_id: &str, cap: u32, why: &str) -> String {
    format!(
        "interrupted {cap} times in a row (this time: {why}), so it is not queued again: the \
         jobs running this configuration keep being stopped (preempted, cancelled, or killed \
         at a time or memory limit). Run it again with `hyperdial retry {sweep_id} {run_id}`; \
         `retry: {{interrupted: N}}` in a sweep file raises this cap (default {})",
        hyperdial_space::Retry::INTERRUPTED_DEFAULT
    )
}

/// Whether a run was stopped by its agent's shutdown rather than by its own doing: such a run
/// is queued again whatever the `retry` policy says, so resuming (`tune` again, or any other
/// agent of the sweep) runs it, and its configuration still counts once for `run_cap`.
fn interrupted(r: &TrialRow) -> bool {
    r.state == RunState::Cancelled
        && r.error
            .as_deref()
            .is_some_and(|e| e.starts_with(INTERRUPTED_PREFIX))
}

/// Whether a run in `state` counts as failed for the strategy: failed, crashed, or cancelled
/// (W&B's `killed`).
fn failed(state: RunState) -> bool {
    matches!(
        state,
        RunState::Failed | RunState::Crashed | RunState::Cancelled
    )
}

/// A user's action on a sweep (`POST /api/v1/sweeps/{id}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepAction {
    /// Hand out no new runs for now.
    Pause,
    /// Hand out runs again after a pause.
    Resume,
    /// End the sweep; runs in flight finish.
    Stop,
    /// End the sweep and stop its runs in flight.
    Cancel,
}

impl SweepAction {
    /// The action's name in the API path.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepAction::Pause => "pause",
            SweepAction::Resume => "resume",
            SweepAction::Stop => "stop",
            SweepAction::Cancel => "cancel",
        }
    }
}

impl std::str::FromStr for SweepAction {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "pause" => SweepAction::Pause,
            "resume" => SweepAction::Resume,
            "stop" => SweepAction::Stop,
            "cancel" => SweepAction::Cancel,
            _ => return Err(()),
        })
    }
}

/// What the controller knows of one run's metric, to make its [`Trial`].
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run's state.
    pub state: RunState,
    /// Flat parameters.
    pub params: Map<String, Value>,
    /// Grid position.
    pub grid_index: Option<u64>,
    /// The run's metric: best finite value of its history and summary.
    pub metric: Option<f64>,
    /// The last logged value of the metric, if finite.
    pub last_logged: Option<f64>,
    /// The metric's value in the explicit summary, if a finite number.
    pub summary: Option<f64>,
    /// Lowest, highest and last finite logged values, when known (needed only to impute).
    pub logged: Option<(f64, f64, f64)>,
}

impl Default for RunReport {
    /// A finished run with no parameters and no values.
    fn default() -> Self {
        RunReport {
            state: RunState::Finished,
            params: Map::new(),
            grid_index: None,
            metric: None,
            last_logged: None,
            summary: None,
            logged: None,
        }
    }
}

/// The [`Trial`] the strategy sees for a run: failed, crashed and cancelled runs (W&B's
/// `killed`) are failed, running and queued ones in flight (queued ones are W&B's `pending`:
/// never imputed while running); a run stopped early counts by
/// its last logged value (its best so far would flatter a curve the rule judged hopeless).
pub fn trial(config: &SweepConfig, r: &RunReport) -> Trial {
    let goal = config.metric.as_ref().map_or(Goal::Minimize, |m| m.goal);
    let logged_worst = r.logged.map(|(lo, hi, _)| match goal {
        Goal::Maximize => lo,
        Goal::Minimize => hi,
    });
    let worst = match (logged_worst, r.summary) {
        (Some(a), Some(b)) if goal.better(a, b) => Some(b),
        (a, b) => a.or(b),
    };
    Trial {
        params: r.params.clone(),
        grid_index: r.grid_index,
        value: match r.state {
            RunState::StoppedEarly => r.last_logged.or(r.metric),
            _ => r.metric,
        },
        worst,
        latest: r.logged.map(|(_, _, last)| last),
        running: r.state.in_flight(),
        queued: r.state == RunState::Queued,
        failed: failed(r.state),
        cancelled: r.state == RunState::Cancelled,
        // Filled in by the caller for a multi-objective sweep (`objective_values`).
        objectives: Vec::new(),
    }
}

/// A run's value of each objective of a multi-objective sweep, in the config's order: the
/// explicit summary value (`user_summary`) when a finite number, else the last logged one
/// (`summary`) when finite. The final values, not the best of each history: the best loss of
/// one step and the best latency of another are not a trade-off the configuration reached.
/// Empty for a single-objective sweep (its runs are counted by their metric).
pub fn objective_values(
    config: &SweepConfig,
    summary: &Value,
    user_summary: &Value,
) -> Vec<Option<f64>> {
    objective_values_of(&multi_objective_names(config), summary, user_summary)
}

/// The objective names of a multi-objective sweep, in order; empty for other sweeps.
pub fn multi_objective_names(config: &SweepConfig) -> Vec<String> {
    if config.is_multi_objective() {
        config.metrics.iter().map(|m| m.name.clone()).collect()
    } else {
        Vec::new()
    }
}

/// [`objective_values`] for the objectives named `names`.
pub fn objective_values_of(
    names: &[String],
    summary: &Value,
    user_summary: &Value,
) -> Vec<Option<f64>> {
    names
        .iter()
        .map(|name| {
            user_summary
                .get(name)
                .and_then(hyperdial_store::finite_number)
                .or_else(|| summary.get(name).and_then(hyperdial_store::finite_number))
        })
        .collect()
}

/// The objective in the form the store keeps a run's metric by.
fn store_objective(objective: &Option<(String, Goal, Option<f64>)>) -> Option<Objective<'_>> {
    objective.as_ref().map(|(name, goal, _)| Objective {
        name,
        maximize: *goal == Goal::Maximize,
    })
}

/// Whether `value` reaches `target` under `goal`.
fn reaches(goal: Goal, value: f64, target: f64) -> bool {
    match goal {
        Goal::Minimize => value <= target,
        Goal::Maximize => value >= target,
    }
}

/// The nested config a run's script sees, from flat dotted parameters.
pub fn nested_config(config: &SweepConfig, params: &Map<String, Value>) -> Value {
    serde_json::from_str(&args_json(&args_for(config, params))).unwrap_or(Value::Null)
}

/// A stable hash of a validated config, so the same sweep file (whatever its formatting or
/// comments) finds its sweep again.
pub fn config_hash(config: &SweepConfig) -> String {
    let canonical = serde_json::to_string(config).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The project a sweep is created in: the one the request names, else the config's
/// `project`, else `default`; checked by [`check_project`].
fn project_of(given: Option<&str>, config: &SweepConfig) -> Result<String, ControlError> {
    let project = given
        .map(str::to_string)
        .or_else(|| config.project.clone())
        .unwrap_or_else(|| "default".to_string());
    check_project(&project)?;
    Ok(project)
}

/// The longest project name, in bytes.
pub const MAX_PROJECT_BYTES: usize = 256;

/// A project name a store keeps as it is and a filter finds again: 1 to
/// [`MAX_PROJECT_BYTES`] bytes, no control characters (a NUL, which PostgreSQL cannot store;
/// a newline). Errors: `400` naming what to change.
pub fn check_project(name: &str) -> Result<(), ControlError> {
    if name.is_empty() || name.len() > MAX_PROJECT_BYTES {
        return Err(ControlError::invalid(format!(
            "a project name is 1 to {MAX_PROJECT_BYTES} bytes (got {})",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(ControlError::invalid(format!(
            "a project name holds no control characters (got {:?} in {:?})",
            c,
            name.chars().take(60).collect::<String>()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_locks_keep_the_most_recently_used_and_never_one_in_use() {
        let mut locks = ClaimLocks::default();
        for i in 0..5 {
            locks.get(&format!("s{i}"), 3);
        }
        let mut kept: Vec<&String> = locks.by_sweep.keys().collect();
        kept.sort();
        assert_eq!(kept, ["s2", "s3", "s4"]);
        // Using s2 again makes s3 the oldest.
        locks.get("s2", 3);
        locks.get("s5", 3);
        assert!(!locks.by_sweep.contains_key("s3"));
        assert!(locks.by_sweep.contains_key("s2"));
        // A lock a claim holds is never dropped, even when it is the oldest: the cap is
        // exceeded until it is let go.
        let held = locks.get("s4", 3);
        for i in 6..9 {
            locks.get(&format!("s{i}"), 3);
        }
        assert!(locks.by_sweep.contains_key("s4"));
        assert!(locks.by_sweep.len() <= 3);
        assert!(Arc::ptr_eq(&held, &locks.get("s4", 3)));
        drop(held);
        for i in 9..12 {
            locks.get(&format!("s{i}"), 3);
        }
        assert!(!locks.by_sweep.contains_key("s4"));
        assert_eq!(locks.by_sweep.len(), 3);
    }

    #[test]
    fn trials_carry_wandb_states_and_values() {
        let config = hyperdial_space::parse_str(
            "method: bayes\nmetric: {name: loss, goal: minimize}\nparameters: {a: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        let report = |state| RunReport {
            state,
            metric: Some(0.2),
            last_logged: Some(0.9),
            summary: Some(1.5),
            logged: Some((0.2, 1.2, 0.9)),
            ..Default::default()
        };
        let t = trial(&config, &report(RunState::Finished));
        assert_eq!(
            (t.value, t.worst, t.latest),
            (Some(0.2), Some(1.5), Some(0.9))
        );
        assert!(!t.running && !t.failed);
        // Stopped early: counted by the last logged value (a documented difference).
        assert_eq!(
            trial(&config, &report(RunState::StoppedEarly)).value,
            Some(0.9)
        );
        // Cancelled is W&B's killed: imputed.
        assert!(trial(&config, &report(RunState::Cancelled)).failed);
        assert!(trial(&config, &report(RunState::Crashed)).failed);
        let queued = trial(&config, &report(RunState::Queued));
        assert!(queued.running && queued.queued);
        // Worst without a summary value: the worst logged one.
        let t = trial(
            &config,
            &RunReport {
                summary: None,
                ..report(RunState::Failed)
            },
        );
        assert_eq!(t.worst, Some(1.2));
    }
}
