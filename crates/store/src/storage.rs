//! The storage seam: every operation the server needs of a database, each atomic by itself.
//!
//! [`Storage`] is implemented once per backend ([`crate::sqlite`], [`crate::postgres`]) and
//! reached through the cheap clonable [`crate::Store`] handle. No transaction object crosses
//! this seam: an operation that reads and then writes (a metric batch, a summary merge, a
//! claim) does so inside the backend, in one statement or one short transaction holding the
//! row locks it needs (see "Storage" in `docs/ARCHITECTURE.md` for the locking contract).
//! State changes are conditional and say whether they applied, so several servers on one
//! database can race without corrupting anything: the loser learns it lost.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use hyperdial_wire::{EndCause, RunState, SweepState};
use serde_json::{Map, Value};

use crate::dashboard::{HistoryColumns, RunPoint, RunQuery, SeriesPoint, SeriesSample};
use crate::{
    Appended, ConfigMerge, HistoryPoint, MetricSpan, NewRepeat, NewRun, NewSweep, Objective, Point,
    Result, RunCurve, RunFilter, RunFinish, RunRow, SweepRow, TrialRow,
};

/// The answer of [`Storage::insert_suggested_run`].
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// The run was inserted with the expected number, and the sweep's next number moved on.
    Inserted(Box<RunRow>),
    /// The sweep changed since the snapshot the suggestion was computed from (another claim
    /// took the number, a retry was queued, or the sweep left `running`): nothing was written;
    /// read a fresh snapshot and try again.
    Stale,
}

/// The check [`Storage::tell_and_insert_checked`] makes: that no run of the sweep changed
/// after the caller's history mark but in the caller's own writes.
#[derive(Debug, Clone, Copy)]
pub struct ChangeCheck<'a> {
    /// The caller's history mark (as [`Storage::trials_changed`] returned it).
    pub since: i64,
    /// The marks of the caller's own earlier writes ([`OwnWrite::own`]) that may lie above
    /// `since`: runs carrying them are not changes.
    pub own: &'a [i64],
    /// Write nothing unless the check holds: the caller decided without reading the sweep.
    pub required: bool,
}

/// What [`Storage::tell_and_insert_checked`] did.
#[derive(Debug)]
pub enum Checked {
    /// Nothing was written: this store does not make the write in one statement, the run
    /// changed since it was read (or was ended, or a told metric already has a series), or
    /// the check was required and failed. The caller decides again from a fresh read, or
    /// calls [`Storage::finish_run_and_insert_suggested`].
    NotWritten,
    /// The run was ended, with the insert's answer.
    Written {
        /// The ended run.
        ended: Box<RunRow>,
        /// The insert's answer.
        inserted: Inserted,
        /// When the check held and the run was inserted: what the write did to the sweep's
        /// runs, for the caller's history.
        unchanged: Option<OwnWrite>,
    },
}

/// A write the caller's history may take in without reading it back
/// ([`Storage::tell_and_insert_checked`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnWrite {
    /// The change mark the written runs carry (on PostgreSQL, the transaction's id).
    pub own: i64,
    /// The mark to keep as the history's: every change not seen by the check (and this
    /// write's own) lies above it, as with [`Storage::trials_changed`]'s mark.
    pub mark: i64,
    /// The ended run, then the inserted one, as [`Storage::trials_changed`] reads them.
    pub trials: Vec<TrialRow>,
}

/// A curve point of one run: `(step, objective value, time_ms, step-key value)` (see
/// [`RunCurve::points`]).
pub type CurvePoint = (i64, Option<f64>, i64, Option<f64>);

/// A claim's snapshot of a sweep ([`Storage::sweep_and_changes`]): the sweep, its runs
/// changed since the mark passed, and the mark to pass next time.
pub type SweepSnapshot = (SweepRow, Vec<TrialRow>, i64);

/// Everything the server stores and reads, atomic operation by operation.
///
/// Errors: every method fails with [`crate::StoreError`]; a storage fault (disk full,
/// database unreachable, busy) is sorted by [`crate::StoreError::fault`]. Unknown ids are not
/// errors: methods answer `None`, `false` or an empty list as documented.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Where the data lives, for logs and the startup line: the SQLite file as a
    /// `sqlite://` URL, or the PostgreSQL URL without its password.
    fn describe(&self) -> String;

    /// The SQLite database file, if this backend has one (fault messages name its volume).
    fn path(&self) -> Option<&Path>;

    /// The migrations applied when this handle opened the database, in order (empty when its
    /// schema was up to date).
    fn migrations_applied(&self) -> &[crate::AppliedMigration];

    /// Close the connections (SQLite checkpoints its write-ahead log).
    async fn close(&self);

    // ---- sweeps -------------------------------------------------------------------------

    /// Insert a sweep in state `running` (its project is created if missing).
    async fn insert_sweep(&self, new: NewSweep<'_>) -> Result<SweepRow>;

    /// One sweep.
    async fn sweep(&self, id: &str) -> Result<Option<SweepRow>>;

    /// Sweeps, newest first, optionally of one project.
    async fn sweeps(&self, project: Option<&str>) -> Result<Vec<SweepRow>>;

    /// The newest `running` or `paused` sweep of `project` with this config hash.
    async fn find_resumable(&self, project: &str, config_hash: &str) -> Result<Option<SweepRow>>;

    /// The newest `finished` sweep of `project` with this config hash.
    async fn find_finished(&self, project: &str, config_hash: &str) -> Result<Option<SweepRow>>;

    /// Number of runs of a sweep in each state.
    async fn sweep_counts(&self, id: &str) -> Result<BTreeMap<RunState, i64>>;

    /// The run with the best metric in a sweep (lowest, or highest with `maximize`) among its
    /// runs that ended `finished` or `stopped_early`: a running run is not done yet, and a
    /// failed, crashed or cancelled one did not train as configured, so it is never the best
    /// (`docs/config.md`, "the best run"). Ties go to the lower run number.
    async fn best_run(&self, sweep_id: &str, maximize: bool) -> Result<Option<RunRow>>;

    /// Move a sweep from one of the states `from` to `to`, atomically: `None` when the sweep
    /// is unknown or was in none of `from` (nothing changed), else the sweep afterwards. When
    /// `to` is final ([`SweepState::is_over`]) and `ended_by` names what ended it (`stop`,
    /// `cancel`, or a budget limit: `wall_time`, `run_hours`, `stagnation`), its `queued` runs
    /// are cancelled in the same transaction and `ended_by` is recorded as the sweep's
    /// `end_reason` (cleared by any other transition). Any transition clears `retries_only`.
    async fn transition_sweep(
        &self,
        id: &str,
        from: &[SweepState],
        to: SweepState,
        ended_by: Option<&str>,
    ) -> Result<Option<SweepRow>>;

    /// Finish a `running` sweep because it has nothing left to hand out (space exhausted,
    /// `run_cap` reached, its retries done), only if nothing changed since the snapshot that
    /// decided it: its next number is still `expected_next_number` and no run of it is queued
    /// or running. Clears `retries_only` and records `end_reason` (`run_cap`, `exhausted`, or
    /// none). Returns whether the sweep finished.
    async fn finish_sweep_if_unchanged(
        &self,
        id: &str,
        expected_next_number: i64,
        end_reason: Option<&str>,
    ) -> Result<bool>;

    /// Ask every running or queued run of a sweep to stop; returns how many were asked.
    async fn request_stop_for_sweep(&self, sweep_id: &str, reason: &str) -> Result<u64>;

    /// Replace a sweep's notes. Returns whether the sweep exists.
    async fn set_notes(&self, sweep_id: &str, notes: &str) -> Result<bool>;

    /// Of a sweep's runs: how many are retries of another run, and how many `failed` or
    /// `crashed` ones have not been retried.
    async fn retry_counts(&self, sweep_id: &str) -> Result<(i64, i64)>;

    /// Total run time of a sweep's runs in milliseconds (running runs up to their last sign
    /// of life).
    async fn compute_ms(&self, sweep_id: &str) -> Result<i64>;

    /// The part of [`Storage::compute_ms`] that runs in flight (`running` or `queued`) add:
    /// each started one's time up to its last sign of life. Reads only those runs (an index
    /// on the sweep and the state), so with the ended runs' time kept from
    /// [`Storage::trials_changed`] ([`crate::TrialRow::ended_compute_ms`]) a sweep's run time
    /// costs the same at any number of runs.
    async fn compute_ms_in_flight(&self, sweep_id: &str) -> Result<i64>;

    /// Every run of a sweep with what the sweep charts need, by run number.
    async fn sweep_points(&self, sweep_id: &str) -> Result<Vec<RunPoint>>;

    /// How many of a sweep's runs ended with the metric, and when the last ended (ms); it
    /// changes exactly when a run with the metric ends.
    async fn finished_fingerprint(&self, sweep_id: &str) -> Result<(i64, i64)>;

    // ---- agents -------------------------------------------------------------------------

    /// Register an agent; returns its new id. `process` (a `hyperdial_procid` key) is kept
    /// when at most 256 bytes.
    async fn register_agent(
        &self,
        sweep_id: Option<&str>,
        host: Option<&str>,
        pid: Option<i64>,
        process: Option<&str>,
    ) -> Result<String>;

    /// Host name an agent registered with: `None` for an unknown agent.
    async fn agent_host(&self, agent_id: &str) -> Result<Option<Option<String>>>;

    /// The process keys of the agents that have sweep runs `running`, each with those runs'
    /// ids.
    async fn running_agent_processes(&self) -> Result<Vec<(String, Vec<String>)>>;

    // ---- runs ---------------------------------------------------------------------------

    /// Insert a run in state `running`, or `queued` when it is a retry
    /// ([`NewRun::retry_of`]). Runs of a sweep that take a number go through
    /// [`Storage::insert_suggested_run`] instead; this is for manual runs.
    async fn insert_run(&self, new: NewRun) -> Result<RunRow>;

    /// One run.
    async fn run(&self, id: &str) -> Result<Option<RunRow>>;

    /// Runs matching `filter`, ordered by sweep position (then creation), and the total count.
    async fn runs(&self, filter: &RunFilter) -> Result<(Vec<RunRow>, i64)>;

    /// A page of runs matching `q`, sorted as asked (missing values last), and the number of
    /// runs matching.
    async fn runs_page(&self, q: &RunQuery) -> Result<(Vec<RunRow>, i64)>;

    /// What the strategy needs to know about every run of a sweep, by number.
    async fn trials(&self, sweep_id: &str) -> Result<Vec<TrialRow>>;

    /// The runs of a sweep that changed after change mark `since`, by number, and the mark to
    /// pass next time: the runs inserted, or whose state, metric, summaries, error or retry
    /// link changed, in a transaction that committed after the call that returned `since`
    /// (heartbeats, output and config merges do not count). `since = -1` reads every run.
    /// Marks only grow, within one database; a run may be returned again by the next call (a
    /// reader merges by id). This is how a server keeps a sweep's history up to date without
    /// reading every run on each claim: the cost is the runs changed, through the index on
    /// `(sweep_id, change_mark)`.
    async fn trials_changed(&self, sweep_id: &str, since: i64) -> Result<(Vec<TrialRow>, i64)>;

    /// A claim's snapshot of a sweep, in one read: the sweep (`None` if unknown) and, as
    /// [`Storage::trials_changed`] answers them, its runs changed after mark `since` and the
    /// mark to pass next time, both from one consistent view (the runs read after the row).
    async fn sweep_and_changes(&self, sweep_id: &str, since: i64) -> Result<Option<SweepSnapshot>>;

    /// [`Storage::run`] of `run_id` and [`Storage::sweep_and_changes`] of `sweep_id` in one
    /// read, from one consistent view: an ask/tell trial's tell reads the run it ends together
    /// with the claim's snapshot (on PostgreSQL one round trip instead of two). The run is
    /// `None` if unknown, the snapshot `None` if the sweep is.
    async fn run_sweep_and_changes(
        &self,
        run_id: &str,
        sweep_id: &str,
        since: i64,
    ) -> Result<(Option<RunRow>, Option<SweepSnapshot>)>;

    /// [`Storage::metric_spans`] of the given runs only (unknown ids and runs without finite
    /// values of `name` are left out).
    async fn metric_spans_of(&self, run_ids: &[String], name: &str) -> Result<Vec<MetricSpan>>;

    /// Record the argv a run's process was started with and, when `git_commit` is given, the
    /// git state of its working directory. Returns false for an unknown run.
    async fn set_argv(
        &self,
        run_id: &str,
        argv: &[String],
        git_commit: Option<&str>,
        git_dirty: Option<bool>,
    ) -> Result<bool>;

    /// Set (or with `None` clear) a run's name. Returns false for an unknown run.
    async fn set_run_name(&self, run_id: &str, name: Option<&str>) -> Result<bool>;

    /// Merge `values` into a run's stored config, nested objects key by key, then lay
    /// `locked` over the result, under the run's row lock. Nothing is written when the result
    /// would hold more than `max_entries` values ([`config_entries`](crate::config_entries)).
    async fn merge_config(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        locked: Option<&Value>,
        max_entries: usize,
    ) -> Result<ConfigMerge>;

    /// Record a heartbeat; returns whether the run should stop and why, or `None` for an
    /// unknown run. One statement.
    async fn heartbeat(&self, run_id: &str) -> Result<Option<(bool, Option<String>)>>;

    /// Append metric points to a run under its row lock: points are upserted by (run, name,
    /// step) (a resent step overwrites, never duplicates), steps left open take the run's next
    /// step, and the run's next step, summary (last value of each metric) and, given the
    /// sweep's objective, metric (best finite value of history and explicit summary) are
    /// updated in the same transaction. Returns `None` for an unknown run.
    ///
    /// Concurrent calls on one handle are joined into shared transactions by the handle's
    /// metric writer (group commit); each call returns only after the commit that holds its
    /// batch, and a batch whose shared transaction failed is retried alone.
    async fn append_metrics(
        &self,
        run_id: &str,
        points: &[Point],
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Appended>>;

    /// The last logged value of one metric: `None` if never logged, `Some(None)` if NaN.
    async fn last_value(&self, run_id: &str, name: &str) -> Result<Option<Option<f64>>>;

    /// Every metric point of a run, grouped by step.
    async fn history(&self, run_id: &str) -> Result<Vec<HistoryPoint>>;

    /// Names of the metrics a run has logged, sorted.
    async fn metric_names(&self, run_id: &str) -> Result<Vec<String>>;

    /// The metrics `names` of a run as columns over their steps, for a full read of the
    /// history: the steps above `after_step` (every step with `None`) at which at least one of
    /// the metrics has a point, the lowest `max_steps` (at least 1) of them, with each
    /// metric's value at each (see [`HistoryColumns`]); `more` says whether higher steps were
    /// left out (ask again with `after_step` the last step returned). Each series is read
    /// through its (series, step) key from `after_step` on, at most `max_steps + 1` points of
    /// it, so the cost follows the answer, not the run's length. A name the run never logged
    /// gives a column of `None`s; an unknown run gives no steps. One read snapshot.
    async fn history_columns(
        &self,
        run_id: &str,
        names: &[String],
        after_step: Option<i64>,
        max_steps: usize,
    ) -> Result<HistoryColumns>;

    /// One metric of a run, by step.
    async fn series(&self, run_id: &str, name: &str) -> Result<Vec<SeriesPoint>>;

    /// The points of one metric series with a step above `after_step`, by step, read through
    /// the series' (series, step) key from that step on, so the cost follows the points
    /// returned, not the series' length (a live page catching up). Empty when the run or
    /// metric is unknown.
    async fn series_after(
        &self,
        run_id: &str,
        name: &str,
        after_step: i64,
    ) -> Result<Vec<SeriesPoint>>;

    /// One metric of a run, at most `max_points` (at least 2) of it, at a cost in proportion
    /// to the points returned, not to the series' length. A series of at most `max_points`
    /// points is returned whole. A longer one is sampled evenly by step: with `first` and
    /// `last` its lowest and highest steps, position `i` (`0 ≤ i < max_points`) is
    /// `first + i·(last − first)/(max_points − 1)` (integer division), and the sample holds,
    /// for each position, the point of the lowest stored step at or after it (so the first
    /// and the last point are always in it; positions falling in one gap give one point).
    /// Each position is one seek in the (series, step) key. An unknown run or metric gives an
    /// empty sample.
    async fn series_sample(
        &self,
        run_id: &str,
        name: &str,
        max_points: usize,
    ) -> Result<SeriesSample>;

    /// Append captured output (`stream` is `stdout` or `stderr`); false for an unknown run.
    async fn append_output(&self, run_id: &str, stream: &str, text: &str) -> Result<bool>;

    /// The captured output of a run, in arrival order.
    async fn output(&self, run_id: &str) -> Result<String>;

    /// Merge values into the run's explicit summary under its row lock; given the sweep's
    /// objective and a value for it, the run's metric becomes the best finite value of its
    /// history and the new summary value. Returns `None` for an unknown run, else the run's
    /// metric afterwards.
    async fn set_user_summary(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Option<f64>>>;

    /// For every run of a sweep that logged finite values of `name`: the lowest, the highest
    /// and the last (by step).
    async fn metric_spans(&self, sweep_id: &str, name: &str) -> Result<Vec<MetricSpan>>;

    /// Reopen run `id`, outside any sweep, for a process that resumes it (W&B's
    /// `wandb.init(id=..., resume="allow")`): its state becomes `running` whatever it was, its
    /// end (`exit_code`, `error`, `end_cause`, `finished_ms`) and any stop request are cleared, and its
    /// heartbeat is now. Its history, summary, config and next step stay as they are, so the
    /// resumed process logs on from where the last one stopped. Conditional on the run as the
    /// caller read it (`seen`: its state and heartbeat), so of two processes resuming one run
    /// at once exactly one reopens it. Returns the run afterwards, or `None` when no run
    /// outside a sweep has that id (a sweep's runs are resumed by their agents, never through
    /// this) or the run changed since it was read (read it again).
    async fn reopen_run(&self, id: &str, seen: &RunRow) -> Result<Option<RunRow>>;

    /// Take back sweep run `id`, `crashed` for one of `causes` (its agent went silent, or its
    /// process is gone: [`EndCause::AgentSilent`], [`EndCause::AgentGone`]), for an end its
    /// agent kept while the server was away and delivers now. In one transaction the run
    /// becomes `running` (its end and stop request cleared, heartbeat now, cause
    /// [`EndCause::LateEndPending`], error [`crate::LATE_END_PENDING`]) to take its points and
    /// its end, and its retry, if it has one ([`crate::RetryFate`]): a `queued` retry is
    /// withdrawn (`cancelled` for [`EndCause::RetryWithdrawn`], `retry_of` cleared); a claimed
    /// one becomes a repeat of the run (`repeat_of` the run, `retry_of` cleared, cause
    /// [`EndCause::RetrySuperseded`]), asked to stop ([`crate::RETRY_SUPERSEDED_REASON`]) if
    /// still `running`. A finished run is real work: it is never thrown away for a retry of it.
    async fn take_back_late_end(&self, id: &str, causes: &[EndCause]) -> Result<crate::LateEnd>;

    /// Set the end time of an ended run to `ended_ms` when that is earlier than the end
    /// recorded (a late end: the run ended before its end reached the server) and not before
    /// it started. Returns the run afterwards, or `None` if unknown.
    async fn backdate_end(&self, id: &str, ended_ms: i64) -> Result<Option<RunRow>>;

    /// Set the creation and start time of a run that has not ended to `started_ms` when that
    /// is earlier than its creation (a run recorded offline and uploaded later: it started
    /// when its script did, not when the upload came). Its heartbeat is left as it is, so the
    /// run is not taken for silent. Returns the run afterwards, or `None` if unknown.
    async fn backdate_start(&self, id: &str, started_ms: i64) -> Result<Option<RunRow>>;

    /// End a run that is `running` or `queued` (conditional: a run already in a final state
    /// keeps it). Returns the run afterwards, or `None` if unknown.
    async fn finish_run(
        &self,
        run_id: &str,
        state: RunState,
        exit_code: Option<i64>,
        error: Option<&str>,
    ) -> Result<Option<RunRow>>;

    /// End a run as [`Storage::finish_run`] does, after appending `points` to it as
    /// [`Storage::append_metrics`] does (summary, `metric` and `next_step` included), in one
    /// transaction: the told values and the end are stored together or not at all, with one
    /// commit. The points belong to the end: a run that had already ended keeps its end and
    /// takes none of them (two finishes at once store the values of the one that ended the
    /// run, alone). Returns the run afterwards, or `None` if unknown.
    async fn finish_run_with_points(&self, finish: RunFinish<'_>) -> Result<Option<RunRow>>;

    /// Add to a run's record of undelivered metric points (see [`crate::Delivery`]), under its
    /// row lock. Returns the run, or `None` if unknown.
    async fn add_delivery(
        &self,
        run_id: &str,
        missing: u64,
        recovered: u64,
        files: &[String],
    ) -> Result<Option<RunRow>>;

    /// Mark the given runs `crashed` for `cause`, with `error` its words, those still `running`
    /// but one taken back for its late end ([`EndCause::LateEndPending`]: its upload is under
    /// way, only silence crashes it); returns the ids this call crashed (a run crashed twice,
    /// by two servers, is reported once). A run's end (`finished_ms`) is when it was last heard
    /// from (`heartbeat_ms`, else its start), not now.
    async fn crash_runs(&self, ids: &[String], cause: EndCause, error: &str)
        -> Result<Vec<String>>;

    /// Mark `running` runs (of a sweep or not) not heard from since before `cutoff_ms`
    /// crashed, in one conditional statement; returns the ids this call crashed. The cause
    /// and the error say what went silent: [`EndCause::AgentSilent`] and
    /// [`crate::AGENT_STOPPED_REPORTING`] for a sweep run an agent claimed,
    /// [`EndCause::ClientSilent`] and [`crate::client_stopped_reporting`] of `timeout` (the
    /// silence the caller allows) for a sweep run without one (an ask/tell trial),
    /// [`EndCause::RunSilent`] and [`crate::RUN_STOPPED_REPORTING`] for a run outside a sweep.
    /// A run's end (`finished_ms`) is when it was last heard from (`heartbeat_ms`: its last
    /// heartbeat, metric batch or output; else its start), not when the silence was noticed,
    /// so its duration does not count the silence.
    async fn crash_silent_runs(
        &self,
        cutoff_ms: i64,
        timeout: std::time::Duration,
    ) -> Result<Vec<String>>;

    /// Ask a running run to stop, recording why. Returns whether this call made the request.
    async fn request_stop(&self, run_id: &str, reason: &str, info: &Value) -> Result<bool>;

    /// Every run of a sweep with its `objective` points (and `step_key` values, if named).
    async fn curves(
        &self,
        sweep_id: &str,
        objective: &str,
        step_key: Option<&str>,
    ) -> Result<Vec<RunCurve>>;

    /// The curve of one run (as in [`Storage::curves`]).
    async fn run_curve(
        &self,
        run_id: &str,
        objective: &str,
        step_key: Option<&str>,
    ) -> Result<Vec<CurvePoint>>;

    /// `(run id, number, state, stop requested)` of every run of a sweep.
    async fn run_states(&self, sweep_id: &str) -> Result<Vec<(String, i64, RunState, bool)>>;

    // ---- the claim ------------------------------------------------------------------------

    /// Hand the oldest `queued` run of a `running` sweep to an agent: it becomes `running` now,
    /// stored with `claim_key` (the claim's idempotency key, if any) in the same statement.
    /// Atomic; concurrent callers never get the same run (PostgreSQL skips rows another
    /// claim holds). `None` when no run is queued, or when `claim_key` already claimed a run
    /// of this sweep (nothing is written; [`Storage::run_by_claim_key`] finds that run).
    async fn claim_queued(
        &self,
        sweep_id: &str,
        agent_id: Option<&str>,
        host: Option<&str>,
        claim_key: Option<&str>,
    ) -> Result<Option<RunRow>>;

    /// The run of sweep `sweep_id` that a claim with idempotency key `claim_key` handed out
    /// ([`NewRun::claim_key`], [`Storage::claim_queued`]), in whatever state it is now, or
    /// `None`. One seek in the unique index on `(sweep_id, claim_key)` (migration 0014).
    async fn run_by_claim_key(&self, sweep_id: &str, claim_key: &str) -> Result<Option<RunRow>>;

    /// Insert a run computed from a snapshot in which the sweep's next number was
    /// `expected_next_number`: in one short transaction the sweep's next number moves on only
    /// if it is still that and the sweep is still `running`, and the run is inserted `running`
    /// with that number (and [`NewRun::claim_key`]). Otherwise nothing is written and the
    /// answer is [`Inserted::Stale`]; so it is when the run's claim key already claimed a run
    /// of the sweep (the unique index refuses a second). `new.sweep_id` must be set; `new.number` is ignored, and so is
    /// `new.project`: the run belongs to its sweep's project.
    async fn insert_suggested_run(
        &self,
        new: NewRun,
        expected_next_number: i64,
    ) -> Result<Inserted>;

    /// End a run as [`Storage::finish_run_with_points`] does and insert a suggested run as
    /// [`Storage::insert_suggested_run`] does, in one transaction with one commit: an
    /// ask/tell client's tell and the claim that follows it. The end does not depend on the
    /// insert: when the sweep changed since the snapshot ([`Inserted::Stale`]) the end is
    /// stored alone, and when the run is unknown (nothing ended) the insert is still made.
    /// Nothing is stored when neither applies. Returns the ended run (`None` if unknown) and
    /// the insert's answer.
    async fn finish_run_and_insert_suggested(
        &self,
        finish: RunFinish<'_>,
        new: NewRun,
        expected_next_number: i64,
    ) -> Result<(Option<RunRow>, Inserted)>;

    /// [`Storage::finish_run_and_insert_suggested`] in one statement that also checks that
    /// no run of the sweep changed after `check.since` other than in the caller's own writes
    /// (`check.own`): an ask/tell server that keeps the sweep's history may then take its own
    /// write in ([`OwnWrite`]) and decide the next trial without reading the sweep again; the
    /// statement it then sends is this one with `check.required`, which writes nothing when
    /// anything else changed (the guards of the sweep's number and state stand as in
    /// [`Storage::insert_suggested_run`]). The told run is also guarded on its stop request.
    /// Stores without such a statement answer [`Checked::NotWritten`] and never
    /// [`OwnWrite`], so a caller keeps reading (the default).
    async fn tell_and_insert_checked(
        &self,
        finish: RunFinish<'_>,
        new: &NewRun,
        expected_next_number: i64,
        check: ChangeCheck<'_>,
    ) -> Result<Checked> {
        let _ = (finish, new, expected_next_number, check);
        Ok(Checked::NotWritten)
    }

    /// Queue a retry of each of `runs` (runs of sweep `sweep_id`): a `queued` run with its
    /// configuration (a repeat's retry is a repeat too: the same `repeat_of` and seed),
    /// `retry_of` it and the next attempt number, numbered in order under the
    /// sweep's row lock. Idempotent: a run that already has a retry gets none (the schema
    /// allows one retry per run). Nothing is queued in a `cancelled` sweep, nor in a
    /// `finished` one unless `reopen_finished`, which sets it `running` with `retries_only`
    /// when anything was queued. Returns the retries queued, in the order of `runs`.
    async fn queue_retries(
        &self,
        sweep_id: &str,
        runs: &[String],
        reopen_finished: bool,
    ) -> Result<Vec<RunRow>>;

    /// Queue `repeats` in sweep `sweep_id`: each a `queued` run with the given parameters,
    /// config and seed, `repeat_of` its source run (attempt 1, no grid position), numbered in
    /// order under the sweep's row lock; [`Storage::claim_queued`] hands them out before the
    /// strategy is asked for anything new. A repeat whose `repeat_of` is not a run of this
    /// sweep is skipped. Nothing is queued in a `cancelled` sweep, nor in a `finished` one
    /// unless `reopen_finished`, which sets it `running` with `retries_only` (and clears its
    /// `end_reason`) when anything was queued, so it finishes again once they are done.
    /// Returns the runs queued, in the order of `repeats`.
    async fn queue_repeats(
        &self,
        sweep_id: &str,
        repeats: &[NewRepeat],
        reopen_finished: bool,
    ) -> Result<Vec<RunRow>>;
}
