//! A sweep's history as the claim needs it, kept in memory and refreshed from only the runs
//! that changed.
//!
//! Each claim used to read every run of its sweep (parameters and summaries, as JSON) and
//! rebuild the strategy's view from it: a cost that grew with the sweep. A [`History`] is
//! built once per sweep and server from one full read, then brought up to date before each
//! claim with [`hyperdial_store::Storage::trials_changed`]: the runs inserted or changed (state,
//! metric, summaries, error, retry link) since the mark of its last refresh, through an
//! index. Runs changed by another server on the same database are read the same way, so the
//! history is never behind the snapshot a claim decides from (it is refreshed after the
//! sweep row is read, and a run is inserted together with the sweep's next number).
//!
//! Everything a claim asks is kept up to date run by run, so it costs the same at ten runs
//! and at a hundred thousand:
//!
//! - the [`Tally`] the strategies without a model answer from (`grid`, `random`, `sobol`):
//!   how many runs count as trials (the latest attempt of each configuration; repeats with
//!   another seed do not count) and the grid positions taken;
//! - how many runs are in flight and queued;
//! - the latest attempts the sweep's `retry` policy wants retried (and those an agent's
//!   shutdown interrupted), in run order;
//! - the latest attempts whose metric reaches `metric.target`;
//! - the run time of the ended runs, for a `run_hours` budget (the runs in flight, whose
//!   time grows with heartbeats that change no mark, are summed apart through an index);
//! - the seed noise of a `stagnation: {min_delta: noise}` budget ([`NoiseTally`]: each
//!   configuration's finished repeats and the pooled sums). A changed repeat is counted again
//!   after its whole batch is taken in, so its chain of `repeat_of` is followed among every
//!   run read; a chain that ends at a run not read yet is counted again when that run shows
//!   up.
//!
//! For `tpe` and `bayes` it also keeps each run's decoded parameters and metric values (no
//! JSON is parsed again), and the spans of logged values that imputation needs (lowest,
//! highest and last), read again only for runs that changed and only when a run needs
//! imputing. Their [`Trial`]s are built from memory in run order; the strategy's inputs
//! (finished observations and in-flight configurations) are the same as before. For the
//! other methods parameters are not kept, so the history of a large random sweep stays small
//! (about a hundred bytes a run).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use hyperdial_search::{Tally, Trial};
use hyperdial_space::budget::{Finished, Walk};
use hyperdial_space::{Goal, ImputeWhileRunning, Method, Retry, SweepConfig};
use hyperdial_store::{finite_number, MetricSpan, RunState, Store, TrialRow};

use crate::noise::NoiseTally;
use serde_json::{Map, Value};

use super::{
    failed, interrupted, multi_objective_names, objective_values_of, reaches, trial, RunReport,
};

/// Where a run sorts among its sweep's runs: by number, then creation, then id (the order of
/// [`hyperdial_store::Storage::trials`]).
type Order = (Option<i64>, i64, String);

/// Where a finished run sorts in a stagnation walk ([`Walk::order`]), then its id.
type FinishedKey = (i64, u64, String);

/// What the claim keeps of one run.
#[derive(Debug, Clone)]
struct Entry {
    number: Option<i64>,
    created_ms: i64,
    retry_of: Option<String>,
    attempt: i64,
    /// Flat parameters; kept for `tpe` and `bayes` only.
    params: Map<String, Value>,
    grid_index: Option<u64>,
    metric: Option<f64>,
    state: RunState,
    /// The metric's last logged value (the run's summary), if a number.
    last_logged: Option<f64>,
    /// The metric's value in the explicit summary, if a finite number.
    summary: Option<f64>,
    /// Stopped by its agent's shutdown ([`super::interrupted`]).
    interrupted: bool,
    /// The run whose configuration this one repeats with another seed: not counted toward
    /// `run_cap`, but an observation for a model, and a sample of the seed noise.
    repeat_of: Option<String>,
    /// A multi-objective sweep's values of each objective ([`super::objective_values`]);
    /// kept for `tpe` and `bayes` only.
    objectives: Vec<Option<f64>>,
    /// Its run time once ended ([`TrialRow::ended_compute_ms`]); 0 while in flight.
    ended_ms: i64,
    /// When it ended.
    finished_ms: Option<i64>,
}

impl Entry {
    fn order(&self, id: &str) -> Order {
        (self.number, self.created_ms, id.to_string())
    }
}

/// The claim's view of one sweep (see the module docs).
#[derive(Debug)]
pub(crate) struct History {
    sweep_id: String,
    /// The mark of the last refresh ([`hyperdial_store::Storage::trials_changed`]).
    since: i64,
    /// Whether parameters and values are kept for a model (`tpe`, `bayes`).
    model: bool,
    /// The sweep's objective: name, goal and target.
    metric: Option<(String, Goal, Option<f64>)>,
    /// The objective names of a multi-objective sweep (empty otherwise).
    objectives: Vec<String>,
    retry: Retry,
    runs: HashMap<String, Entry>,
    /// Runs that have a retry (superseded: not trials, not retried again).
    retried: HashSet<String>,
    /// The latest attempts in run order (kept for a model only).
    latest: BTreeSet<Order>,
    /// What the strategies without a model need.
    pub(crate) tally: Tally,
    /// Runs `queued` or `running`.
    pub(crate) in_flight: usize,
    /// Runs `queued`.
    pub(crate) queued: usize,
    /// Latest attempts to retry now, in run order.
    due: BTreeSet<Order>,
    /// Latest attempts whose metric reaches the target.
    reaching: HashSet<String>,
    /// Logged spans of the metric by run, for imputation (a model only).
    spans: HashMap<String, (f64, f64, f64)>,
    /// Runs whose span may have changed since it was read.
    spans_stale: HashSet<String>,
    /// The run time of the ended runs, in ms: with the runs in flight's
    /// ([`hyperdial_store::Storage::compute_ms_in_flight`]), the sweep's run time for a
    /// `run_hours` budget, without reading every run.
    pub(crate) ended_ms: i64,
    /// The seed noise of the sweep's repeats, for a `stagnation: {min_delta: noise}` budget.
    noise: NoiseTally,
    /// Repeats whose chain of `repeat_of` ends at a run not read (yet), by that run: counted
    /// again if it shows up.
    noise_waiting: HashMap<String, HashSet<String>>,
    /// Runs read from the store so far, for tests and diagnostics.
    pub(crate) rows_read: u64,
    /// The `finished` runs with a finite metric, in the order a stagnation walk takes them:
    /// what a `stagnation` budget counts.
    finished: BTreeMap<FinishedKey, f64>,
    /// The stagnation walk over `finished` ([`History::stagnation_walk`]) and the key of the
    /// last run it took; runs that finish after it are taken as they come, anything else
    /// (a run out of order, a finished run that changed) drops it, to be made again.
    /// (A mutex, uncontended: the claim lock already serializes users of the history, which
    /// is shared across awaits.)
    walk: Mutex<Option<(Walk, Option<FinishedKey>)>>,
    /// The change marks of this server's own writes taken in without reading them back
    /// ([`History::take_own_write`]) that lie above `since`: runs carrying them are not
    /// changes to the check of [`hyperdial_store::Storage::tell_and_insert_checked`].
    own: Vec<i64>,
    /// The sweep as the last ask/tell trial's write left it, when nothing else had changed
    /// the sweep's runs: with a run in [`History::hot_runs`], what the tell of that run may
    /// decide from without reading ([`super::tell`]).
    hot_sweep: Option<hyperdial_store::SweepRow>,
    /// The runs ask/tell trials inserted, as they wrote them, oldest first, at most
    /// [`MAX_OWN_MARKS`]: several loops on one sweep (`optimize(n_jobs=2)`) each tell the run
    /// their own last trial claimed, and each finds it here. A read drops those it finds
    /// ended; a write decided from one that changed otherwise writes nothing
    /// ([`History::take_changes`]).
    hot_runs: Vec<hyperdial_store::RunRow>,
    /// Trials to decide by reading first, after a decision without reading found the sweep
    /// changed ([`History::hot_failed`]); doubles with each such failure in a row, up to 64.
    hot_pause: u32,
    /// Decisions without reading that found the sweep changed, in a row.
    hot_failures: u32,
    /// Trials decided without reading and written, for tests and diagnostics.
    pub(crate) unread_trials: u64,
}

/// The sweep and the run an ask/tell trial's write left, as it wrote them: what the next
/// trial's tell decides from when it tells that run ([`History::take_hot`]).
#[derive(Debug, Clone)]
pub(crate) struct Hot {
    /// The sweep, its next number moved past the run inserted.
    pub(crate) sweep: hyperdial_store::SweepRow,
    /// The run inserted.
    pub(crate) run: hyperdial_store::RunRow,
}

/// At most this many own marks are kept above the history's mark (they pile up only while
/// another transaction on the database stays open); past it the next trial reads.
const MAX_OWN_MARKS: usize = 16;

/// The key and value a finished run with a finite metric has in [`History::finished`].
fn finished_key(id: &str, e: &Entry) -> Option<(FinishedKey, f64)> {
    if e.state != RunState::Finished {
        return None;
    }
    let value = e.metric.filter(|v| v.is_finite())?;
    let (ms, order) = Walk::order(&Finished {
        finished_ms: e.finished_ms?,
        value,
    });
    Some(((ms, order, id.to_string()), value))
}

impl History {
    /// An empty history of sweep `sweep_id`; the first [`History::refresh`] reads every run.
    pub(crate) fn new(sweep_id: &str, config: &SweepConfig) -> History {
        History {
            sweep_id: sweep_id.to_string(),
            since: -1,
            model: matches!(config.method, Method::Tpe | Method::Bayes),
            metric: config
                .metric
                .as_ref()
                .map(|m| (m.name.clone(), m.goal, m.target)),
            objectives: multi_objective_names(config),
            retry: config.retry.clone(),
            runs: HashMap::new(),
            retried: HashSet::new(),
            latest: BTreeSet::new(),
            tally: Tally::default(),
            in_flight: 0,
            queued: 0,
            due: BTreeSet::new(),
            reaching: HashSet::new(),
            spans: HashMap::new(),
            spans_stale: HashSet::new(),
            ended_ms: 0,
            noise: NoiseTally::default(),
            noise_waiting: HashMap::new(),
            rows_read: 0,
            finished: BTreeMap::new(),
            walk: Mutex::new(None),
            own: Vec::new(),
            hot_sweep: None,
            hot_runs: Vec::new(),
            hot_pause: 0,
            hot_failures: 0,
            unread_trials: 0,
        }
    }

    /// The check of [`hyperdial_store::Storage::tell_and_insert_checked`] for a write decided
    /// from this history (`required`: decided without reading the sweep first).
    pub(crate) fn check(&self, required: bool) -> hyperdial_store::ChangeCheck<'_> {
        hyperdial_store::ChangeCheck {
            since: self.since,
            own: &self.own,
            required,
        }
    }

    /// Take in this server's own write, checked to be the only change to the sweep's runs
    /// since the history's mark: its runs as written, its mark, and what the tell of the run
    /// it inserted may decide from ([`History::take_hot`]); the other runs kept for such tells
    /// stay, since nothing but this write changed the sweep. `unread`: the write was decided
    /// without reading (from a [`Hot`]), which ends a run of failures.
    pub(crate) fn take_own_write(
        &mut self,
        write: hyperdial_store::OwnWrite,
        hot: Hot,
        unread: bool,
    ) {
        let kept = std::mem::take(&mut self.hot_runs);
        self.take_changes(write.trials, write.mark);
        self.own.push(write.own);
        if unread {
            self.hot_failures = 0;
            self.unread_trials += 1;
        }
        if self.own.len() <= MAX_OWN_MARKS {
            self.hot_runs = kept;
            self.hot_runs.retain(|r| r.id != hot.run.id);
            self.hot_runs.push(hot.run);
            if self.hot_runs.len() > MAX_OWN_MARKS {
                self.hot_runs.remove(0);
            }
            self.hot_sweep = Some(hot.sweep);
        }
    }

    /// What a tell of `run_id` may decide from without reading: the sweep as the last write
    /// left it and the run as its trial's write inserted it, if that run is kept and no failure
    /// asks to read first. The run is taken either way (its end is being decided now).
    pub(crate) fn take_hot(&mut self, run_id: &str) -> Option<Hot> {
        let run = self
            .hot_runs
            .iter()
            .position(|r| r.id == run_id)
            .map(|i| self.hot_runs.remove(i));
        let sweep = self.hot_sweep.clone()?;
        if self.hot_pause > 0 {
            self.hot_pause -= 1;
            self.hot_sweep = None;
            return None;
        }
        Some(Hot { sweep, run: run? })
    }

    /// A decision without reading found the sweep or the run changed: read first for the next
    /// 2, 4, … 64 trials.
    pub(crate) fn hot_failed(&mut self) {
        self.hot_sweep = None;
        self.hot_runs.clear();
        self.hot_failures = self.hot_failures.saturating_add(1);
        self.hot_pause = 1 << self.hot_failures.min(6);
    }

    /// Read the runs that changed since the last refresh (every run, the first time).
    /// Returns how many were read.
    pub(crate) async fn refresh(&mut self, store: &Store) -> hyperdial_store::Result<usize> {
        let (rows, mark) = store.trials_changed(&self.sweep_id, self.since).await?;
        Ok(self.take_changes(rows, mark))
    }

    /// The mark of the last refresh: what to pass to
    /// [`hyperdial_store::Storage::sweep_and_changes`] for the runs changed since.
    pub(crate) fn since(&self) -> i64 {
        self.since
    }

    /// Take in the runs read as changed since [`History::since`] and the mark they were read
    /// up to (what a refresh reads). Returns how many there were.
    pub(crate) fn take_changes(&mut self, rows: Vec<TrialRow>, mark: i64) -> usize {
        let n = rows.len();
        // Kept runs read as no longer running (ended, or queued again). The rows of this
        // server's own writes come back in reads too (their mark lies above the one kept), so
        // a kept run read as running stays: if anything else changed it meanwhile, the
        // write decided from it finds that and writes nothing (its guard requires the run's
        // step, summary, metric and stop request as kept), and the trial is decided again
        // from a read.
        let changed: Vec<String> = if self.hot_runs.is_empty() {
            Vec::new()
        } else {
            rows.iter()
                .filter(|r| r.state != RunState::Running || r.finished_ms.is_some())
                .map(|r| r.id.clone())
                .collect()
        };
        let mut noisy: Vec<String> = Vec::new();
        for row in rows {
            let new = !self.runs.contains_key(&row.id);
            if new {
                if let Some(waiting) = self.noise_waiting.remove(&row.id) {
                    noisy.extend(waiting);
                }
            }
            if row.repeat_of.is_some() {
                noisy.push(row.id.clone());
            }
            self.apply(row);
        }
        // After the whole batch: a repeat's chain may name runs read after it.
        for id in noisy {
            self.count_noise(&id);
        }
        self.since = mark;
        self.rows_read += n as u64;
        // Own writes at or below the mark are read as changes like any other's; the sweep as
        // a write left it is stale after a read (its number may have moved), and so is every
        // kept run the read found ended.
        self.own.retain(|own| *own > mark);
        self.hot_sweep = None;
        self.hot_runs.retain(|r| !changed.contains(&r.id));
        n
    }

    /// Count repeat `id` in the seed noise as it stands now (see [`crate::noise::seed_noise`]:
    /// its configuration is the run at the root of its chain of `repeat_of` among the sweep's
    /// runs, its value the finite metric of a finished run).
    fn count_noise(&mut self, id: &str) {
        let Some(e) = self.runs.get(id) else {
            return;
        };
        let order = (e.number.unwrap_or(i64::MAX), e.created_ms, id.to_string());
        let value = (e.state == RunState::Finished)
            .then_some(e.metric)
            .flatten()
            .filter(|v| v.is_finite());
        let mut root = None;
        if let Some(of) = e.repeat_of.as_deref() {
            if self.runs.contains_key(of) {
                let mut at = of;
                for _ in 0..64 {
                    match self.runs[at].repeat_of.as_deref() {
                        Some(next) if self.runs.contains_key(next) => at = next,
                        Some(next) => {
                            self.noise_waiting
                                .entry(next.to_string())
                                .or_default()
                                .insert(id.to_string());
                            break;
                        }
                        None => break,
                    }
                }
                root = Some(at.to_string());
            } else {
                self.noise_waiting
                    .entry(of.to_string())
                    .or_default()
                    .insert(id.to_string());
            }
        }
        self.noise.set(id, root.as_deref(), order, value);
    }

    /// The seed-noise level of the sweep's repeats ([`crate::noise::seed_noise`] of its
    /// runs), kept up to date run by run.
    pub(crate) fn seed_noise(&self) -> Option<f64> {
        self.noise.level()
    }

    /// Whether some latest attempt reached the metric's target.
    pub(crate) fn target_reached(&self) -> bool {
        !self.reaching.is_empty()
    }

    /// Every `finished` run of the sweep with a finite metric and its finish time, in no
    /// particular order: what a `stagnation` budget counts
    /// ([`hyperdial_space::budget::Spending::finished`]), taken from memory instead of a read of
    /// every run.
    #[cfg(test)]
    pub(crate) fn finished_points(&self) -> Vec<Finished> {
        self.runs
            .values()
            .filter(|e| e.state == RunState::Finished)
            .filter_map(|e| {
                Some(Finished {
                    finished_ms: e.finished_ms?,
                    value: e.metric.filter(|v| v.is_finite())?,
                })
            })
            .collect()
    }

    /// The stagnation walk over the finished runs ([`History::finished_points`]) for `goal`
    /// and `min_delta`: kept between claims and extended by the runs that finished since,
    /// so a claim with a `stagnation` budget costs the same at 10 and at 100,000 runs; made
    /// again (one pass in order) when `min_delta` changed (`min_delta: noise` as the seed
    /// noise moves) or a run came out of order.
    pub(crate) fn stagnation_walk(&self, goal: Goal, min_delta: f64) -> Walk {
        let mut kept = self.walk.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((walk, _)) = kept.as_ref() {
            if walk.goal == goal && walk.min_delta.to_bits() == min_delta.to_bits() {
                return walk.clone();
            }
        }
        let mut walk = Walk::new(goal, min_delta);
        for ((ms, _, _), value) in &self.finished {
            walk.push(Finished {
                finished_ms: *ms,
                value: *value,
            });
        }
        let last = self.finished.keys().next_back().cloned();
        *kept = Some((walk.clone(), last));
        walk
    }

    /// Keep [`History::finished`] and the walk over it right as run `id` goes from the key
    /// it had there (`before`) to `new`.
    fn refile_finished(&mut self, id: &str, before: Option<(FinishedKey, f64)>, new: &Entry) {
        let after = finished_key(id, new);
        if before == after {
            return;
        }
        let walk = self.walk.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some((key, _)) = before {
            self.finished.remove(&key);
            *walk = None;
        }
        if let Some((key, value)) = after {
            if let Some((w, last)) = walk.as_mut() {
                if last.as_ref().is_none_or(|l| *l < key) {
                    w.push(Finished {
                        finished_ms: key.0,
                        value,
                    });
                    *last = Some(key.clone());
                } else {
                    *walk = None;
                }
            }
            self.finished.insert(key, value);
        }
    }

    /// The latest attempts to retry now, in run order.
    pub(crate) fn due(&self) -> Vec<String> {
        self.due.iter().map(|(_, _, id)| id.clone()).collect()
    }

    /// Whether the run is due a retry: a latest attempt its agent's shutdown interrupted, or
    /// one the `retry` policy covers (its state is in `retry.on`, fewer than `retry.max`
    /// retries so far, [`History::retries_spent`]).
    fn is_due(&self, e: &Entry) -> bool {
        e.interrupted
            || (self.retry.applies_to(e.state.as_str())
                && self.retries_spent(e) < i64::from(self.retry.max))
    }

    /// How many of `retry.max` the configuration of `e` has used: the attempts before `e`
    /// (following `retry_of`) that its agent's shutdown did not interrupt. An interruption is
    /// queued again without using up `max` (docs/config.md, `retry`), so a configuration
    /// interrupted once and then crashed is retried as one that crashed at its first attempt.
    /// An attempt this history does not hold counts as spent.
    fn retries_spent(&self, e: &Entry) -> i64 {
        let mut spent = 0;
        let mut seen = 0;
        let mut previous = e.retry_of.as_deref();
        while let Some(id) = previous {
            let Some(p) = self.runs.get(id) else {
                break;
            };
            spent += i64::from(!p.interrupted);
            seen += 1;
            previous = p.retry_of.as_deref();
            if seen >= e.attempt {
                break;
            }
        }
        spent + (e.attempt - 1 - seen).max(0)
    }

    fn reaches_target(&self, e: &Entry) -> bool {
        match (&self.metric, e.metric) {
            (Some((_, goal, Some(target))), Some(m)) => reaches(*goal, m, *target),
            _ => false,
        }
    }

    /// Add (`add`) or take away what run `id` contributes to the aggregates, as it stands.
    fn account(&mut self, id: &str, add: bool) {
        let Some(e) = self.runs.get(id) else {
            return;
        };
        let latest = !self.retried.contains(id);
        let counts = latest && e.repeat_of.is_none();
        let order = e.order(id);
        let due = latest && self.is_due(e);
        let reaching = latest && self.reaches_target(e);
        let (in_flight, queued) = (e.state.in_flight(), e.state == RunState::Queued);
        // Every run's time counts, retried or not.
        self.ended_ms += if add { e.ended_ms } else { -e.ended_ms };
        let step = |n: &mut usize, on: bool| {
            if on {
                *n = if add { *n + 1 } else { n.saturating_sub(1) };
            }
        };
        step(&mut self.in_flight, in_flight);
        step(&mut self.queued, queued);
        if counts {
            self.tally.trials = if add {
                self.tally.trials + 1
            } else {
                self.tally.trials.saturating_sub(1)
            };
        }
        if latest && self.model {
            if add {
                self.latest.insert(order.clone());
            } else {
                self.latest.remove(&order);
            }
        }
        if due {
            if add {
                self.due.insert(order);
            } else {
                self.due.remove(&order);
            }
        }
        if reaching {
            if add {
                self.reaching.insert(id.to_string());
            } else {
                self.reaching.remove(id);
            }
        }
    }

    /// Mark run `target` retried (or not), keeping the aggregates right.
    fn set_retried(&mut self, target: &str, retried: bool) {
        self.account(target, false);
        if retried {
            self.retried.insert(target.to_string());
        } else {
            self.retried.remove(target);
        }
        self.account(target, true);
    }

    /// Forget run `id`: a retry withdrawn before it started
    /// ([`hyperdial_wire::EndCause::RetryWithdrawn`]) is no run of the sweep's search.
    fn forget(&mut self, id: &str) {
        self.account(id, false);
        let Some(entry) = self.runs.remove(id) else {
            return;
        };
        if let Some((key, _)) = finished_key(id, &entry) {
            self.finished.remove(&key);
            *self.walk.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        }
        if let Some(target) = entry.retry_of {
            self.set_retried(&target, false);
        }
        self.spans.remove(id);
        self.spans_stale.remove(id);
    }

    /// Take in the current state of one run.
    fn apply(&mut self, row: TrialRow) {
        if row.state == RunState::Cancelled
            && row.end_cause == Some(hyperdial_wire::EndCause::RetryWithdrawn)
        {
            self.forget(&row.id);
            return;
        }
        let name = self.metric.as_ref().map(|(n, _, _)| n.as_str());
        let entry = Entry {
            number: row.number,
            created_ms: row.created_ms,
            attempt: row.attempt,
            params: match (self.model, &row.params) {
                (true, Value::Object(m)) => m.clone(),
                _ => Map::new(),
            },
            grid_index: row.grid_index.and_then(|i| u64::try_from(i).ok()),
            metric: row.metric,
            state: row.state,
            last_logged: name
                .and_then(|n| row.summary.get(n))
                .and_then(Value::as_f64),
            summary: name
                .and_then(|n| row.user_summary.get(n))
                .and_then(finite_number),
            interrupted: interrupted(&row),
            repeat_of: row.repeat_of.clone(),
            objectives: if self.model {
                objective_values_of(&self.objectives, &row.summary, &row.user_summary)
            } else {
                Vec::new()
            },
            ended_ms: row.ended_compute_ms().unwrap_or(0),
            finished_ms: row.finished_ms,
            retry_of: row.retry_of,
        };
        let id = row.id;
        self.account(&id, false);
        let before = self.runs.get(&id).and_then(|e| finished_key(&id, e));
        self.refile_finished(&id, before, &entry);
        let old_link = self.runs.get(&id).and_then(|e| e.retry_of.clone());
        let new_link = entry.retry_of.clone();
        if let Some(i) = entry.grid_index {
            self.tally.take(i);
        }
        self.runs.insert(id.clone(), entry);
        if old_link != new_link {
            if let Some(t) = old_link {
                self.set_retried(&t, false);
            }
            if let Some(t) = new_link {
                self.set_retried(&t, true);
            }
        }
        self.account(&id, true);
        if self.model && self.metric.is_some() {
            self.spans_stale.insert(id);
        }
    }

    /// The trials a model-based strategy sees, in run order: each latest attempt with its
    /// metric, and for imputation its worst and latest logged values (read, for the runs that
    /// changed, only when some run needs imputing: see `hyperdial_search::metric`).
    pub(crate) async fn trials(
        &mut self,
        store: &Store,
        config: &SweepConfig,
    ) -> hyperdial_store::Result<Vec<Trial>> {
        let metric = config.metric.as_ref();
        let imputes = metric.is_some_and(|m| {
            self.latest.iter().any(|(_, _, id)| {
                let r = &self.runs[id];
                failed(r.state)
                    || (r.metric.is_none() && !r.state.in_flight())
                    || (r.state.in_flight() && m.impute_while_running != ImputeWhileRunning::False)
            })
        });
        if let (Some(m), true) = (metric, imputes) {
            if !self.spans_stale.is_empty() {
                let read: Vec<MetricSpan> = if self.spans_stale.len() * 2 > self.runs.len() {
                    self.spans.clear();
                    store.metric_spans(&self.sweep_id, &m.name).await?
                } else {
                    let ids: Vec<String> = self.spans_stale.iter().cloned().collect();
                    for id in &ids {
                        self.spans.remove(id);
                    }
                    store.metric_spans_of(&ids, &m.name).await?
                };
                for s in read {
                    self.spans.insert(s.run_id, (s.lowest, s.highest, s.last));
                }
                self.spans_stale.clear();
            }
        }
        Ok(self
            .latest
            .iter()
            .map(|(_, _, id)| {
                let r = &self.runs[id];
                let mut t = trial(
                    config,
                    &RunReport {
                        state: r.state,
                        params: r.params.clone(),
                        grid_index: r.grid_index,
                        metric: r.metric,
                        last_logged: r.last_logged,
                        summary: r.summary,
                        logged: if imputes {
                            self.spans.get(id).copied()
                        } else {
                            None
                        },
                    },
                );
                t.objectives = r.objectives.clone();
                t
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use hyperdial_search::Trial;
    use hyperdial_space::budget::{Finished, Walk};
    use hyperdial_space::Goal;
    use hyperdial_space::{ImputeWhileRunning, SweepConfig};
    use hyperdial_store::testing::TestDb;
    use hyperdial_store::{finite_number, Point, RunState, Store, SweepState, TrialRow};
    use serde_json::{Map, Value};

    use hyperdial_wire::api::QueueRun;
    use hyperdial_wire::EndCause;

    use super::super::{failed, trial, Claim, Controller, RunReport};
    use super::History;

    /// The runs the sweep's history has read so far.
    async fn rows_read(c: &Controller, sweep_id: &str) -> u64 {
        let lock = c.claim_lock(sweep_id);
        let h = lock.lock().await;
        h.as_ref().map_or(0, |h| h.rows_read)
    }

    /// The trials as they were built before the history: every run read again, the
    /// superseded ones left out, spans of the whole sweep when some run needs imputing.
    async fn full_read(store: &Store, sweep_id: &str, config: &SweepConfig) -> Vec<Trial> {
        let mut rows = store.trials(sweep_id).await.unwrap();
        let superseded: HashSet<String> = rows.iter().filter_map(|r| r.retry_of.clone()).collect();
        rows.retain(|r| !superseded.contains(&r.id));
        let m = config.metric.as_ref().unwrap();
        let imputes = rows.iter().any(|r| {
            failed(r.state)
                || (r.metric.is_none() && !r.state.in_flight())
                || (r.state.in_flight() && m.impute_while_running != ImputeWhileRunning::False)
        });
        let spans: HashMap<String, (f64, f64, f64)> = if imputes {
            store
                .metric_spans(sweep_id, &m.name)
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.run_id, (s.lowest, s.highest, s.last)))
                .collect()
        } else {
            HashMap::new()
        };
        rows.iter()
            .map(|r| {
                trial(
                    config,
                    &RunReport {
                        state: r.state,
                        params: r.params.as_object().cloned().unwrap_or_default(),
                        grid_index: r.grid_index.map(|i| i as u64),
                        metric: r.metric,
                        last_logged: r.summary.get(&m.name).and_then(Value::as_f64),
                        summary: r.user_summary.get(&m.name).and_then(finite_number),
                        logged: spans.get(&r.id).copied(),
                    },
                )
            })
            .collect()
    }

    fn loss(v: f64) -> Vec<Point> {
        vec![Point {
            step: None,
            time_ms: None,
            values: vec![("loss".into(), Some(v))],
        }]
    }

    #[tokio::test]
    async fn a_claim_reads_only_the_runs_that_changed() {
        for method in ["random", "sobol", "grid"] {
            let db = TestDb::sqlite();
            let c = Controller::new(db.open().await.unwrap());
            let source = format!(
                "program: t.py\nmethod: {method}\nmetric: {{name: loss, goal: minimize}}\nparameters:\n  a: {{values: [{}]}}\n",
                (0..150).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
            );
            let sweep = c
                .create_sweep(&source, None, None, false, Some(1))
                .await
                .unwrap()
                .sweep;
            let mut claims = 0;
            loop {
                let before = rows_read(&c, &sweep.id).await;
                match c.claim(&sweep.id, None).await.unwrap() {
                    Claim::Run(run) => {
                        // One run changed since the last claim: the one it handed out, which
                        // reported and finished.
                        let read = rows_read(&c, &sweep.id).await - before;
                        assert!(read <= 1, "{method}: claim {claims} read {read} runs");
                        c.ingest(&run.id, &loss(claims as f64)).await.unwrap();
                        c.finish(&run.id, Some(0), None, None, None, None)
                            .await
                            .unwrap();
                        claims += 1;
                        if method != "grid" && claims == 150 {
                            break;
                        }
                    }
                    Claim::Over(state) => {
                        assert_eq!((method, state), ("grid", SweepState::Finished));
                        break;
                    }
                    Claim::Wait => panic!("{method}: nothing in flight, yet wait"),
                }
            }
            assert_eq!(claims, 150, "{method}");
            c.store().close().await;
            db.remove().await;
        }
    }

    /// Move a run's start `ms` back, as if it had run that much longer (`state = state` makes
    /// it a change, as a real start is: the claim's history sees it).
    async fn started_earlier(db: &TestDb, run_id: &str, ms: i64) {
        let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
        sqlx::query("UPDATE runs SET started_ms = started_ms - $2, state = state WHERE id = $1")
            .bind(run_id)
            .bind(ms)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }

    /// The run time the claim's history and the runs in flight give, against a read of every
    /// run.
    async fn run_time_kept_and_read(c: &Controller, sweep_id: &str) -> (i64, i64) {
        let lock = c.claim_lock(sweep_id);
        let mut h = lock.lock().await;
        let h = h.as_mut().expect("built by the claim");
        h.refresh(c.store()).await.unwrap();
        (
            h.ended_ms + c.store().compute_ms_in_flight(sweep_id).await.unwrap(),
            c.store().compute_ms(sweep_id).await.unwrap(),
        )
    }

    #[tokio::test]
    async fn a_run_hours_budget_ends_the_sweep_where_a_full_read_would() {
        let db = TestDb::sqlite();
        let c = Controller::new(db.open().await.unwrap());
        // 0.02 h = 72 s of run time; each run is made to take 30 s. Two ended runs (60 s) and
        // a third in flight (30 s so far) spend it: the fourth claim ends the sweep.
        let source = "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n\
                      budget: {run_hours: 0.02}\nparameters:\n  a: {min: 0.0, max: 1.0}\n";
        let sweep = c
            .create_sweep(source, None, None, false, Some(3))
            .await
            .unwrap()
            .sweep;
        let mut handed = 0;
        loop {
            match c.claim(&sweep.id, None).await.unwrap() {
                Claim::Run(run) => {
                    handed += 1;
                    started_earlier(&db, &run.id, 30_000).await;
                    let (kept, read) = run_time_kept_and_read(&c, &sweep.id).await;
                    assert_eq!(kept, read, "run {handed} in flight");
                    if handed < 3 {
                        c.ingest(&run.id, &loss(1.0)).await.unwrap();
                        c.finish(&run.id, Some(0), None, None, None, None)
                            .await
                            .unwrap();
                        let (kept, read) = run_time_kept_and_read(&c, &sweep.id).await;
                        assert_eq!(kept, read, "run {handed} ended");
                        assert!(read >= 30_000 * handed, "{read}");
                    }
                }
                Claim::Over(state) => {
                    assert_eq!(state, SweepState::Finished);
                    break;
                }
                Claim::Wait => panic!("wait after {handed} runs"),
            }
            assert!(handed <= 3, "the budget did not end the sweep");
        }
        assert_eq!(handed, 3);
        let ended = c.store().sweep(&sweep.id).await.unwrap().unwrap();
        assert_eq!(ended.end_reason.as_deref(), Some("run_hours"));
        c.store().close().await;
        db.remove().await;
    }

    /// The finished runs' values the claim's history gives a `stagnation` budget, against a
    /// read of every run (`sweep_points`): the same runs, the same values and finish times.
    async fn finished_kept_and_read(
        c: &Controller,
        sweep_id: &str,
    ) -> (Vec<(i64, u64)>, Vec<(i64, u64)>) {
        let lock = c.claim_lock(sweep_id);
        let mut h = lock.lock().await;
        let h = h.as_mut().expect("built by the claim");
        h.refresh(c.store()).await.unwrap();
        let mut kept: Vec<(i64, u64)> = h
            .finished_points()
            .iter()
            .map(|f| (f.finished_ms, f.value.to_bits()))
            .collect();
        let mut read: Vec<(i64, u64)> = c
            .store()
            .sweep_points(sweep_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.state == hyperdial_store::RunState::Finished)
            .filter_map(|p| {
                Some((
                    p.finished_ms?,
                    p.metric.filter(|v| v.is_finite())?.to_bits(),
                ))
            })
            .collect();
        kept.sort_unstable();
        read.sort_unstable();
        // The walk the claim keeps is the walk of the runs read, whatever it was asked before.
        let listed: Vec<Finished> = read
            .iter()
            .map(|(ms, bits)| Finished {
                finished_ms: *ms,
                value: f64::from_bits(*bits),
            })
            .collect();
        for min_delta in [0.5, 0.0, 0.5] {
            assert_eq!(
                h.stagnation_walk(Goal::Minimize, min_delta),
                Walk::of(&listed, Goal::Minimize, min_delta)
            );
        }
        (kept, read)
    }

    /// A random sweep of one parameter minimizing `loss`.
    fn random_sweep() -> hyperdial_space::SweepConfig {
        hyperdial_space::parse_str(
            "method: random\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n",
            "sweep.yaml",
        )
        .unwrap()
        .config
    }

    fn trial_row(
        id: &str,
        state: RunState,
        metric: Option<f64>,
        finished_ms: Option<i64>,
    ) -> TrialRow {
        TrialRow {
            id: id.to_string(),
            number: Some(id.trim_start_matches('r').parse().unwrap()),
            created_ms: 0,
            retry_of: None,
            attempt: 1,
            repeat_of: None,
            params: Value::Object(Map::new()),
            grid_index: None,
            metric,
            state,
            summary: Value::Object(Map::new()),
            user_summary: Value::Object(Map::new()),
            error: None,
            end_cause: None,
            started_ms: Some(0),
            finished_ms,
            heartbeat_ms: None,
        }
    }

    /// A retry withdrawn before it started (its run's end came late) is no run of the search:
    /// the run it retried is a trial again, with its result, and nothing is in flight.
    #[test]
    fn a_withdrawn_retry_is_forgotten_and_its_run_counts_again() {
        let config = random_sweep();
        let mut h = History::new("s", &config);
        let mut crashed = trial_row("r1", RunState::Crashed, None, Some(10));
        crashed.error = Some(hyperdial_store::AGENT_STOPPED_REPORTING.into());
        crashed.end_cause = Some(EndCause::AgentSilent);
        let mut retry = trial_row("r2", RunState::Queued, None, None);
        retry.retry_of = Some("r1".into());
        retry.attempt = 2;
        h.take_changes(vec![crashed, retry.clone()], 1);
        assert_eq!((h.tally.trials, h.in_flight, h.queued), (1, 1, 1));
        assert!(h.retried.contains("r1"));
        // Taken back, then withdrawn and finished: one trial, finished, nothing in flight.
        let mut withdrawn = retry;
        withdrawn.state = RunState::Cancelled;
        withdrawn.retry_of = None;
        withdrawn.error = Some(hyperdial_store::RETRY_WITHDRAWN.into());
        withdrawn.end_cause = Some(EndCause::RetryWithdrawn);
        let finished = trial_row("r1", RunState::Finished, Some(0.5), Some(20));
        h.take_changes(vec![withdrawn.clone(), finished], 2);
        assert_eq!((h.tally.trials, h.in_flight, h.queued), (1, 0, 0));
        assert!(h.retried.is_empty() && !h.runs.contains_key("r2"));
        assert_eq!(h.finished_points().len(), 1);
        // A history read afresh never takes it in.
        let mut fresh = History::new("s", &config);
        fresh.take_changes(
            vec![
                withdrawn,
                trial_row("r1", RunState::Finished, Some(0.5), Some(20)),
            ],
            1,
        );
        assert_eq!((fresh.tally.trials, fresh.in_flight), (1, 0));
        assert!(!fresh.runs.contains_key("r2"));
    }

    /// A retry superseded once claimed (its run's end came late) becomes a repeat of that run:
    /// the run is the trial again, with its result; the repeat counts toward no `run_cap` and,
    /// ended, is a second observation of the configuration.
    #[test]
    fn a_superseded_retry_is_a_repeat_and_its_run_counts_again() {
        let config = random_sweep();
        let mut h = History::new("s", &config);
        let mut crashed = trial_row("r1", RunState::Crashed, None, Some(10));
        crashed.error = Some(hyperdial_store::AGENT_PROCESS_GONE.into());
        crashed.end_cause = Some(EndCause::AgentGone);
        let mut retry = trial_row("r2", RunState::Running, None, None);
        retry.retry_of = Some("r1".into());
        retry.attempt = 2;
        h.take_changes(vec![crashed, retry.clone()], 1);
        assert_eq!((h.tally.trials, h.in_flight), (1, 1));
        assert!(h.retried.contains("r1"));
        // Taken back: the retry is a repeat of r1, still running; r1 finishes.
        let mut repeat = retry;
        repeat.retry_of = None;
        repeat.repeat_of = Some("r1".into());
        repeat.end_cause = Some(EndCause::RetrySuperseded);
        let finished = trial_row("r1", RunState::Finished, Some(0.5), Some(20));
        h.take_changes(vec![repeat.clone(), finished], 2);
        assert!(h.retried.is_empty());
        assert_eq!((h.tally.trials, h.in_flight), (1, 1));
        assert_eq!(h.finished_points().len(), 1);
        // The repeat is stopped: still one trial, nothing in flight.
        repeat.state = RunState::Cancelled;
        repeat.finished_ms = Some(30);
        repeat.error = Some(hyperdial_store::RETRY_SUPERSEDED.into());
        h.take_changes(vec![repeat], 3);
        assert_eq!((h.tally.trials, h.in_flight), (1, 0));
    }

    #[test]
    fn the_stagnation_walk_follows_runs_finishing_late_changing_and_out_of_order() {
        let config = random_sweep();
        let mut h = History::new("s", &config);
        let check = |h: &History| {
            for d in [0.1, 0.0] {
                assert_eq!(
                    h.stagnation_walk(Goal::Minimize, d),
                    Walk::of(&h.finished_points(), Goal::Minimize, d)
                );
            }
        };
        let mut mark = 0;
        let mut change = |h: &mut History, rows: Vec<TrialRow>| {
            mark += 1;
            h.take_changes(rows, mark);
            check(h);
        };
        change(&mut h, vec![trial_row("r1", RunState::Running, None, None)]);
        change(
            &mut h,
            vec![trial_row("r1", RunState::Finished, Some(1.0), Some(10))],
        );
        // In order: taken as they come.
        change(
            &mut h,
            vec![trial_row("r2", RunState::Finished, Some(0.5), Some(20))],
        );
        change(
            &mut h,
            vec![trial_row("r3", RunState::Finished, Some(0.45), Some(30))],
        );
        // Out of order (finished before r3), a NaN, a failed run, a run whose value changes.
        change(
            &mut h,
            vec![trial_row("r4", RunState::Finished, Some(0.1), Some(25))],
        );
        change(
            &mut h,
            vec![trial_row(
                "r5",
                RunState::Finished,
                Some(f64::NAN),
                Some(40),
            )],
        );
        change(
            &mut h,
            vec![trial_row("r6", RunState::Failed, Some(0.0), Some(50))],
        );
        change(
            &mut h,
            vec![trial_row("r2", RunState::Finished, Some(0.05), Some(20))],
        );
        // Equal finish times: taken by value.
        change(
            &mut h,
            vec![
                trial_row("r8", RunState::Finished, Some(0.3), Some(60)),
                trial_row("r7", RunState::Finished, Some(0.02), Some(60)),
            ],
        );
        assert_eq!(h.stagnation_walk(Goal::Minimize, 0.1).runs, 6);
    }

    #[tokio::test]
    async fn a_stagnation_budget_ends_the_sweep_where_a_full_read_would() {
        let db = TestDb::sqlite();
        let c = Controller::new(db.open().await.unwrap());
        // Losses 5, 4, then 4, 4, 4 (no improvement beyond 0.5), with a failed run and a NaN
        // between: the claim after the third run without improvement ends the sweep.
        let source = "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n\
                      budget: {stagnation: {runs: 3, min_delta: 0.5}}\n\
                      parameters:\n  a: {min: 0.0, max: 1.0}\n";
        let sweep = c
            .create_sweep(source, None, None, false, Some(3))
            .await
            .unwrap()
            .sweep;
        let reports = [
            Some(5.0),
            Some(4.0),
            None,
            Some(4.0),
            Some(f64::NAN),
            Some(4.0),
            Some(4.2),
        ];
        let mut handed = 0;
        loop {
            match c.claim(&sweep.id, None).await.unwrap() {
                Claim::Run(run) => {
                    let report = reports[handed];
                    handed += 1;
                    match report {
                        Some(v) => {
                            c.ingest(&run.id, &loss(v)).await.unwrap();
                            c.finish(&run.id, Some(0), None, None, None, None)
                                .await
                                .unwrap();
                        }
                        None => {
                            c.finish(&run.id, Some(1), None, None, None, None)
                                .await
                                .unwrap();
                        }
                    }
                    let (kept, read) = finished_kept_and_read(&c, &sweep.id).await;
                    assert_eq!(kept, read, "after run {handed}");
                }
                Claim::Over(state) => {
                    assert_eq!(state, SweepState::Finished);
                    break;
                }
                Claim::Wait => panic!("nothing in flight, yet wait"),
            }
        }
        assert_eq!(
            handed,
            reports.len(),
            "ended at the claim after the seventh run"
        );
        let ended = c.store().sweep(&sweep.id).await.unwrap().unwrap();
        assert_eq!(ended.end_reason.as_deref(), Some("stagnation"));
        c.store().close().await;
        db.remove().await;
    }

    /// The seed noise the claim's history keeps, against [`crate::noise::seed_noise`] of a
    /// read of every run (and the paged read of the report and API views, to the bit).
    async fn noise_kept_and_read(c: &Controller, sweep_id: &str) -> (Option<f64>, Option<f64>) {
        let lock = c.claim_lock(sweep_id);
        let mut h = lock.lock().await;
        let h = h.as_mut().expect("built by the claim");
        h.refresh(c.store()).await.unwrap();
        let read =
            crate::noise::seed_noise(&crate::noise::sweep_runs(c.store(), sweep_id).await.unwrap());
        // Pages of 3 runs: repeats and the runs they name fall on different pages.
        let paged = crate::noise::read_input_in_pages(c.store(), sweep_id, 3)
            .await
            .unwrap()
            .seed_noise();
        assert_eq!(paged.map(f64::to_bits), read.map(f64::to_bits));
        let kept = h.seed_noise();
        match (kept, read) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12 * b, "{a} against {b}"),
            (a, b) => assert_eq!(a, b),
        }
        (kept, read)
    }

    /// What the budget decides from a read of every run (as claims did before the history
    /// kept the seed noise); `noise: false` decides as if it were not measured.
    async fn spent_by_full_read(
        c: &Controller,
        sweep_id: &str,
        budget: &hyperdial_space::budget::Budget,
        noise: bool,
    ) -> Option<hyperdial_space::budget::Spent> {
        let sweep = c.store().sweep(sweep_id).await.unwrap().unwrap();
        let finished: Vec<hyperdial_space::budget::Finished> = c
            .store()
            .sweep_points(sweep_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.state == hyperdial_store::RunState::Finished)
            .filter_map(|p| {
                Some(hyperdial_space::budget::Finished {
                    finished_ms: p.finished_ms?,
                    value: p.metric.filter(|v| v.is_finite())?,
                })
            })
            .collect();
        let seed_noise = if noise {
            crate::noise::seed_noise(&crate::noise::sweep_runs(c.store(), sweep_id).await.unwrap())
        } else {
            None
        };
        budget.spent(&hyperdial_space::budget::Spending {
            now_ms: sweep.created_ms,
            created_ms: sweep.created_ms,
            compute_ms: 0,
            finished: &finished,
            walk: None,
            goal: hyperdial_space::Goal::Minimize,
            seed_noise,
        })
    }

    async fn set_state(db: &TestDb, run_id: &str, state: &str) {
        let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
        sqlx::query("UPDATE runs SET state = $2 WHERE id = $1")
            .bind(run_id)
            .bind(state)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }

    #[tokio::test]
    async fn a_noise_stagnation_budget_ends_the_sweep_where_a_full_read_would() {
        let db = TestDb::sqlite();
        let c = Controller::new(db.open().await.unwrap());
        // Runs A (5.0) and B (4.0), then three repeats of each: A's 5.1, 5.3 and a failed one
        // whose retry gives 5.2, B's 4.05, 4.1, 4.15 (pooled noise √(0.025 / 4) ≈ 0.079). New
        // runs then give 3.93 (better than 4.0 by less than the noise) and 3.99: 8 finished
        // runs without an improvement beyond the noise, so the claim after them ends the sweep
        // (measured as 0, the 3.93 would have been an improvement).
        let source = "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\n\
                      retry: {max: 1, on: [failed]}\n\
                      budget: {stagnation: {runs: 8, min_delta: noise}}\n\
                      parameters:\n  a: {min: 0.0, max: 1.0}\n";
        let sweep = c
            .create_sweep(source, None, None, false, Some(7))
            .await
            .unwrap()
            .sweep;
        let budget = c.config(&sweep).unwrap().budget.clone().unwrap();
        let mut fresh = [3.93, 3.99].into_iter();
        let mut firsts: Vec<String> = Vec::new();
        let mut handed = 0;
        let mut noise_seen = false;
        loop {
            let oracle = spent_by_full_read(&c, &sweep.id, &budget, true).await;
            let claim = c.claim(&sweep.id, None).await.unwrap();
            let run = match claim {
                Claim::Run(run) => run,
                Claim::Over(state) => {
                    assert_eq!(state, SweepState::Finished);
                    assert!(
                        oracle.is_some(),
                        "ended at claim {handed}; a full read goes on"
                    );
                    assert!(spent_by_full_read(&c, &sweep.id, &budget, false)
                        .await
                        .is_none());
                    break;
                }
                Claim::Wait => panic!("nothing in flight, yet wait"),
            };
            assert!(oracle.is_none(), "claim {handed} went on; a full read ends");
            handed += 1;
            let value = match run.repeat_of.as_deref() {
                None if firsts.len() < 2 => {
                    firsts.push(run.id.clone());
                    Some(if firsts.len() == 1 { 5.0 } else { 4.0 })
                }
                None => Some(fresh.next().expect("the budget ends the sweep first")),
                Some(of) if of == firsts[0] => match (run.seed, run.retry_of.is_some()) {
                    (Some(1), _) => Some(5.1),
                    (Some(2), _) => Some(5.3),
                    (Some(3), false) => None,
                    (Some(3), true) => Some(5.2),
                    other => panic!("unexpected repeat {other:?}"),
                },
                Some(_) => Some(4.0 + 0.05 * run.seed.unwrap() as f64),
            };
            match value {
                Some(v) => {
                    c.ingest(&run.id, &loss(v)).await.unwrap();
                    c.finish(&run.id, Some(0), None, None, None, None)
                        .await
                        .unwrap();
                }
                None => {
                    c.finish(&run.id, Some(1), None, None, None, None)
                        .await
                        .unwrap();
                }
            }
            // Finish times tell the runs apart for the stagnation order.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let (kept, _) = noise_kept_and_read(&c, &sweep.id).await;
            noise_seen |= kept.is_some();
            if handed == 2 {
                let runs: Vec<QueueRun> = firsts
                    .iter()
                    .flat_map(|of| {
                        (1..=3).map(move |seed| QueueRun {
                            repeat_of: of.clone(),
                            params: serde_json::Map::new(),
                            seed,
                        })
                    })
                    .collect();
                c.queue_runs(&sweep.id, &runs).await.unwrap();
            }
            if run.repeat_of.as_deref() == Some(firsts[0].as_str()) && run.seed == Some(2) {
                // A counted repeat changes state, then changes back.
                set_state(&db, &run.id, "crashed").await;
                let (crashed, _) = noise_kept_and_read(&c, &sweep.id).await;
                assert_ne!(crashed, kept);
                set_state(&db, &run.id, "finished").await;
                assert_eq!(noise_kept_and_read(&c, &sweep.id).await.0, kept);
            }
        }
        assert!(noise_seen);
        // A, B, six repeats, one retry, two new runs.
        assert_eq!(handed, 11);
        let ended = c.store().sweep(&sweep.id).await.unwrap().unwrap();
        assert_eq!(ended.end_reason.as_deref(), Some("stagnation"));
        c.store().close().await;
        db.remove().await;
    }

    #[tokio::test]
    async fn a_forgotten_history_is_rebuilt_and_claims_go_on() {
        let db = TestDb::sqlite();
        let c = Controller::new(db.open().await.unwrap());
        let source = "program: t.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n\
                      parameters:\n  a: {values: [1, 2, 3]}\n";
        let mut sweeps = Vec::new();
        for seed in 0..=super::super::MAX_CACHED_HISTORIES as i64 {
            let sweep = c
                .create_sweep(source, None, None, false, Some(seed))
                .await
                .unwrap()
                .sweep;
            let Claim::Run(run) = c.claim(&sweep.id, None).await.unwrap() else {
                panic!("no first run");
            };
            c.finish(&run.id, Some(0), None, None, None, None)
                .await
                .unwrap();
            sweeps.push(sweep.id);
        }
        // The first sweep was the least recently claimed: its history went.
        assert_eq!(
            c.claim_locks.lock().unwrap().by_sweep.len(),
            super::super::MAX_CACHED_HISTORIES
        );
        assert!(!c
            .claim_locks
            .lock()
            .unwrap()
            .by_sweep
            .contains_key(&sweeps[0]));
        // Its next claims read its runs again and hand out the rest of the grid, once each.
        let mut grid = Vec::new();
        while let Claim::Run(run) = c.claim(&sweeps[0], None).await.unwrap() {
            grid.push(run.grid_index);
            c.finish(&run.id, Some(0), None, None, None, None)
                .await
                .unwrap();
        }
        assert_eq!(grid, [Some(1), Some(2)]);
        c.store().close().await;
        db.remove().await;
    }

    #[tokio::test]
    async fn the_model_sees_what_a_full_read_shows() {
        let db = TestDb::sqlite();
        let c = Controller::new(db.open().await.unwrap());
        let source = "program: t.py\nmethod: tpe\nmetric: {name: loss, goal: minimize, impute: worst}\n\
                      retry: {max: 1, on: [crashed]}\nparameters:\n  a: {min: 0.0, max: 1.0}\n  b: {values: [x, y]}\n";
        let sweep = c
            .create_sweep(source, None, None, false, Some(5))
            .await
            .unwrap()
            .sweep;
        let config = c.config(&sweep).unwrap();
        let mut open = Vec::new();
        for i in 0..40u32 {
            let Claim::Run(run) = c.claim(&sweep.id, None).await.unwrap() else {
                panic!("claim {i} handed out nothing");
            };
            c.ingest(&run.id, &loss(f64::from(i % 7) + 0.5))
                .await
                .unwrap();
            open.push(run.id.clone());
            // End runs in every way the search tells apart, some while others are in flight.
            if i % 3 == 0 {
                let id = open.remove(0);
                let (code, state) = match i % 4 {
                    0 => (Some(0), None),
                    1 => (Some(1), None),
                    2 => (None, Some("crashed")),
                    _ => (None, Some("stopped_early")),
                };
                c.finish(&id, code, state, None, None, None).await.unwrap();
            }
            if i % 5 == 0 && !open.is_empty() {
                let id = open.remove(0);
                c.ingest(&id, &loss(9.0)).await.unwrap();
                c.finish(&id, Some(0), None, None, None, None)
                    .await
                    .unwrap();
            }
            let lock = c.claim_lock(&sweep.id);
            let mut h = lock.lock().await;
            let h = h.as_mut().expect("built by the claim");
            h.refresh(c.store()).await.unwrap();
            assert_eq!(
                h.trials(c.store(), &config).await.unwrap(),
                full_read(c.store(), &sweep.id, &config).await,
                "after claim {i}"
            );
        }
        c.store().close().await;
        db.remove().await;
    }
}
