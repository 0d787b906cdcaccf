// The one copy of every query of the store, and the `Storage` implementation built on them.
//
// This file is not a module of its own: `sqlite/mod.rs` and `postgres/mod.rs` each
// `include!` it after defining the backend's names:
//
// - `Db` (the `sqlx::Database`), `DbRow`, `DbConn` (its row and connection types);
// - `Backend`, the backend struct, with a field `reader` (its pool) and `async fn
//   read_conn(&self) -> Result<PoolConnection<Db>>` (a pooled connection for reads, which
//   go through it: PostgreSQL tells a database that is down from a busy pool when none comes
//   in time) and
//   `async fn begin(&self) -> Result<Tx>` (a write transaction: SQLite `BEGIN IMMEDIATE` on
//   the single writer connection, PostgreSQL `BEGIN` on a pooled one), plus
//   `fn describe_location`, `fn file` and `async fn close_pools`, and `fn one_hop`: the
//   SQLite backend itself, whose hot operations (heartbeats, the claim, the finish of a
//   trial) run on its one-hop path (`sqlite/hot.rs`) instead of the versions here, or `None`
//   (PostgreSQL runs these), and `fn one_statement`: the PostgreSQL backend itself, whose
//   claim insert, and tell with a claim, are each one statement (`postgres/hot.rs`) instead of
//   the transactions here, or `None` (SQLite);
// - `Tx`, which derefs to `DbConn` and has `async fn commit(self) -> Result<()>` (dropped
//   without commit, it rolls back);
// - `CHANGE_MARK_NOW`, a query answering `mark`: the change mark every later change of a
//   run will exceed (see `Storage::trials_changed` and migration 0009 of each backend);
// - `FOR_UPDATE` (` FOR UPDATE` on PostgreSQL, empty on SQLite, whose single writer already
//   serializes write transactions), `SKIP_LOCKED_R` (the lock clause of the queued-run pick),
//   and `DIALECT`;
// - the metric points, which each backend lays out its own way (SQLite: a row per point in
//   `metric_points`; PostgreSQL: chunks of points per series in `metric_chunks`, see
//   `postgres/chunks.rs`): `write_series_points` (a batch's points of each series written
//   inside the run's write transaction, each series' count and highest step brought up to
//   date, answering the points written), `SERIES_TAIL` (the rest of the query of a batch's
//   series `s` after its columns: `tail_first` and `tail_points` of its last chunk, and
//   `FROM metric_series s …`), `METRIC_POINTS` (SQL for a relation of rows
//   `(series, step, value, time_ms)`, for the aggregates below), `METRIC_EXTREMES` (SQL for a
//   relation of rows `(series, lo, hi, at, last)` over the finite values: SQLite a row per
//   point, PostgreSQL a row per chunk from the lowest, highest and last finite value it keeps,
//   so the best value and the spans cost chunks there, not points), and the `Backend` methods
//   `read_history`, `read_series`, `read_series_sample`, `read_last_value` and
//   `read_curve_rows`.
//
// The SQL is the shared dialect of both: `$n` placeholders, integer milliseconds, JSON as
// text, `ON CONFLICT` upserts, `RETURNING`, and `CAST(… AS BIGINT)` around sums (PostgreSQL
// sums BIGINT into NUMERIC). State words are bound from `RunState`/`SweepState`, never
// written into the SQL.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::{FromRow, Row};

use crate::dashboard::{
    merge_columns, page_sql, Bind, HistoryColumns, RunPoint, RunQuery, SeriesPoint, SeriesSample,
};
use crate::stopping::fold_point;
use crate::storage::{ChangeCheck, Checked, CurvePoint, Inserted, Storage, SweepSnapshot};
use crate::{
    deep_merge, finite_number, new_id, ConfigMerge, now_ms, Appended, Delivery, HistoryPoint, MetricSpan,
    NewRepeat, NewRun, NewSweep, Objective, Point, Result, RunCurve, RunFilter, RunFinish, RunRow,
    RunState, StoreError, SweepRow, SweepState, TrialRow, MAX_DELIVERY_FILES,
};
use hyperdial_wire::EndCause;

/// A run's columns, in the order `rows::run_row_from!` reads them (the SQLite hot path finds
/// each column by name starting after the one found last, so this order makes that one
/// comparison per column).
const RUN_COLUMNS: &str = "r.summary, r.user_summary, r.delivery, r.id, r.sweep_id, p.name AS project, r.number, r.name, \
     r.state, r.params, r.config, r.suggestion, r.grid_index, r.agent_id, r.host, r.argv, r.exit_code, r.error, r.end_cause, r.metric, \
     r.next_step, r.git_commit, r.git_dirty, r.stop_requested, r.stop_reason, r.stop_info, r.created_ms, \
     r.started_ms, r.heartbeat_ms, r.finished_ms, r.retry_of, r.attempt, r.repeat_of, r.seed";

/// [`RUN_COLUMNS`] for the `RETURNING` clause of a statement on `runs`, which joins nothing:
/// the project's name comes from a subquery on its key.
const RUN_RETURNING: &str = "summary, user_summary, delivery, id, sweep_id, \
     (SELECT p.name FROM projects p WHERE p.id = runs.project_id) AS project, number, name, state, params, config, \
     suggestion, grid_index, agent_id, host, argv, exit_code, error, end_cause, metric, next_step, git_commit, git_dirty, \
     stop_requested, stop_reason, stop_info, created_ms, started_ms, heartbeat_ms, finished_ms, retry_of, attempt, \
     repeat_of, seed";

/// The assignment every end of a run makes to its cause: an end delivered late
/// ([`EndCause::LateEndPending`]) is the run's own end, so its cause goes; any other cause is
/// kept (a superseded retry stopping keeps [`EndCause::RetrySuperseded`]).
const END_CLEARS_LATE_END: &str =
    "end_cause = CASE WHEN end_cause = 'late_end_pending' THEN NULL ELSE end_cause END";

/// What [`TrialRow`] reads of a run, from `runs r`.
const TRIAL_COLUMNS: &str = "r.id, r.number, r.created_ms, r.retry_of, r.attempt, r.repeat_of, r.params, \
     r.grid_index, r.metric, r.state, r.summary, r.user_summary, r.error, r.end_cause, r.started_ms, r.finished_ms, r.heartbeat_ms";

const SWEEP_COLUMNS: &str = "s.id, p.name AS project, s.name, s.method, s.state, s.source, s.source_file, \
     s.config_hash, s.seed, s.next_number, s.metric_name, s.goal, s.notes, s.retries_only, s.end_reason, s.created_ms, s.updated_ms";


/// How often an operation the database rolled back on purpose (serialization failure,
/// deadlock) is run again before its error is returned.
const RETRIES: u32 = 4;

/// Run `op` again while it fails with [`StoreError::is_retryable`], at most [`RETRIES`] more
/// times, with a short growing pause.
async fn retrying<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && tries < RETRIES => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2 << tries)).await;
            }
            result => return result,
        }
    }
}

/// The runs of sweep `$1` changed since the mark `$2` (`$3` is `i64::MAX`), as a subquery in
/// the order of the (sweep, change mark) index. PostgreSQL plans a prepared statement once for
/// any parameters after its first runs (the generic plan), often while the table is new and
/// its statistics say it is nearly empty, and keeps that plan as the table grows. Written as
/// `change_mark > $2` alone, that plan guessed a third of the rows changed and read every run
/// of the sweep (a scan of the table, or of another index that starts with the sweep):
/// measured at 10,000 runs, 0.4 to 1.5 ms and 60 to 230 buffers per read against 0.03 ms and
/// 5. A range between two unknown bounds is guessed narrow, so an index is taken; the order
/// makes the (sweep, change mark) index the one that needs no sort. A subquery with
/// `ORDER BY` is planned on its own.
fn changed_since() -> String {
    format!(
        "SELECT {TRIAL_COLUMNS} FROM runs r WHERE r.sweep_id = $1 AND r.change_mark > $2 \
         AND r.change_mark <= $3 ORDER BY r.change_mark"
    )
}

/// The statement of `trials_changed` (`$1` sweep, `$2` mark, `$3` `i64::MAX`): the mark, and
/// the runs changed since, one per row (see [`changed_since`]).
pub(crate) fn trials_changed_sql() -> String {
    format!(
        "SELECT m.mark AS mark, r.* FROM ({CHANGE_MARK_NOW}) m LEFT JOIN ({}) r ON TRUE",
        changed_since()
    )
}

/// The statement of `sweep_and_changes` (parameters as [`trials_changed_sql`]): the sweep's
/// columns ([`sweep_columns_prefixed`]) on every row of [`trials_changed_sql`]'s.
pub(crate) fn sweep_and_changes_sql() -> String {
    format!(
        "SELECT {}, m.mark AS mark, {TRIAL_COLUMNS} \
         FROM sweeps s JOIN projects p ON p.id = s.project_id CROSS JOIN ({CHANGE_MARK_NOW}) m \
         LEFT JOIN ({}) r ON TRUE WHERE s.id = $1",
        sweep_columns_prefixed(),
        changed_since()
    )
}

/// The statement of `run_sweep_and_changes` (`$1` to `$3` as [`trials_changed_sql`], `$4` the
/// run): [`sweep_and_changes_sql`]'s rows with the run's columns ([`run_columns_prefixed`],
/// NULL when there is no such run) on each.
pub(crate) fn run_sweep_and_changes_sql() -> String {
    format!(
        "SELECT {}, {}, m.mark AS mark, {TRIAL_COLUMNS} \
         FROM sweeps s JOIN projects p ON p.id = s.project_id CROSS JOIN ({CHANGE_MARK_NOW}) m \
         LEFT JOIN (SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id \
           WHERE r.id = $4) t ON TRUE \
         LEFT JOIN ({}) r ON TRUE WHERE s.id = $1",
        sweep_columns_prefixed(),
        run_columns_prefixed(),
        changed_since()
    )
}

// ---- row decoding ---------------------------------------------------------------------

/// The name a column of `columns` (`SWEEP_COLUMNS`, `RUN_COLUMNS`) has in the rows, with its
/// expression: `p.name AS project` is `project`, `r.state` is `state`.
fn column_names(columns: &str) -> impl Iterator<Item = (&str, &str)> {
    columns.split(',').map(|c| {
        let c = c.trim();
        match c.split_once(" AS ") {
            Some((expr, name)) => (expr, name),
            None => (c, c.rsplit('.').next().unwrap_or(c)),
        }
    })
}

/// The columns of a run selected as `t` ([`RUN_COLUMNS`] in a subquery) each named
/// `t_<its name>`, for a row that holds other runs' columns too; decoded by [`run_prefixed`].
fn run_columns_prefixed() -> String {
    column_names(RUN_COLUMNS)
        .map(|(_, name)| format!("t.{name} AS t_{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The [`RunRow`] of a row selecting [`run_columns_prefixed`], `None` when its id is NULL.
fn run_prefixed(row: &DbRow) -> std::result::Result<Option<RunRow>, sqlx::Error> {
    fn get<'r, T>(row: &'r DbRow, column: &str) -> std::result::Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
    {
        row.try_get(format!("t_{column}").as_str())
    }
    fn json_of(row: &DbRow, column: &str) -> std::result::Result<Value, sqlx::Error> {
        json(row, &format!("t_{column}"))
    }
    fn state_of<S>(row: &DbRow, column: &str) -> std::result::Result<S, sqlx::Error>
    where
        S: std::str::FromStr,
        S::Err: std::error::Error + Send + Sync + 'static,
    {
        state(row, &format!("t_{column}"))
    }
    if row.try_get::<Option<String>, _>("t_id")?.is_none() {
        return Ok(None);
    }
    Ok(Some(crate::rows::run_row_from!(row, get, json_of, state_of)))
}

/// [`SWEEP_COLUMNS`] each named `s_<its name>`, for a row that holds a run's columns too
/// (`id`, `state` and `created_ms` are in both); decoded by [`sweep_prefixed`].
fn sweep_columns_prefixed() -> String {
    column_names(SWEEP_COLUMNS)
        .map(|(expr, name)| format!("{expr} AS s_{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A [`SweepRow`] from a row selecting [`sweep_columns_prefixed`].
fn sweep_prefixed(row: &DbRow) -> std::result::Result<SweepRow, sqlx::Error> {
    fn get<'r, T>(row: &'r DbRow, column: &str) -> std::result::Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
    {
        row.try_get(format!("s_{column}").as_str())
    }
    fn state_of<S>(row: &DbRow, column: &str) -> std::result::Result<S, sqlx::Error>
    where
        S: std::str::FromStr,
        S::Err: std::error::Error + Send + Sync + 'static,
    {
        state(row, &format!("s_{column}"))
    }
    Ok(crate::rows::sweep_row_from!(row, get, state_of))
}

/// The rows of `sql` ([`trials_changed_sql`] or [`sweep_and_changes_sql`]) for the runs of
/// `sweep_id` changed since the mark `since`.
async fn fetch_changed(
    reader: &mut DbConn,
    sql: &str,
    sweep_id: &str,
    since: i64,
) -> Result<Vec<DbRow>> {
    Ok(sqlx::query(sql)
        .bind(sweep_id)
        .bind(since)
        .bind(i64::MAX)
        .fetch_all(&mut *reader)
        .await?)
}

/// The runs and the mark of rows selecting `m.mark AS mark, {TRIAL_COLUMNS}` with a left
/// join (a row whose run `id` is NULL holds the mark alone), ordered as `trials` orders them:
/// by number (none last), creation, id. The mark is never below `since`.
fn changed_trials(found: &[DbRow], since: i64) -> Result<(Vec<TrialRow>, i64)> {
    let mut mark = since;
    let mut rows = Vec::with_capacity(found.len());
    for row in found {
        mark = mark.max(row.try_get("mark")?);
        if row.try_get::<Option<String>, _>("id")?.is_some() {
            rows.push(TrialRow::from_row(row)?);
        }
    }
    rows.sort_by(|a, b| {
        (a.number.is_none(), a.number, a.created_ms, &a.id).cmp(&(
            b.number.is_none(),
            b.number,
            b.created_ms,
            &b.id,
        ))
    });
    Ok((rows, mark))
}

fn json(row: &DbRow, column: &str) -> std::result::Result<Value, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    Ok(match text {
        Some(t) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        None => Value::Null,
    })
}

/// A state column, as its enum; an unknown word is a decode error naming the column.
fn state<S>(row: &DbRow, column: &str) -> std::result::Result<S, sqlx::Error>
where
    S: std::str::FromStr,
    S::Err: std::error::Error + Send + Sync + 'static,
{
    let word: String = row.try_get(column)?;
    word.parse().map_err(|e: S::Err| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

impl FromRow<'_, DbRow> for SweepRow {
    fn from_row(row: &DbRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(crate::rows::sweep_row_from!(row, Row::try_get, state))
    }
}

impl FromRow<'_, DbRow> for RunRow {
    fn from_row(row: &DbRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(crate::rows::run_row_from!(row, Row::try_get, json, state))
    }
}

impl FromRow<'_, DbRow> for TrialRow {
    fn from_row(row: &DbRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(crate::rows::trial_row_from!(row, Row::try_get, json, state))
    }
}

// ---- pieces of write transactions -----------------------------------------------------

/// One run, read with `conn` (inside a transaction, or from the pool).
/// Lock a sweep's row to queue runs in it (retries, repeats): its next run number and whether
/// queuing reopens it (`reopen_finished` and a finished sweep). `None` when there is no such
/// sweep, it was cancelled, or it is finished and may not reopen: nothing is queued then.
async fn lock_for_queue(
    conn: &mut DbConn,
    sweep_id: &str,
    reopen_finished: bool,
) -> Result<Option<(i64, bool)>> {
    let sql = format!("SELECT state, next_number FROM sweeps WHERE id = $1{FOR_UPDATE}");
    let Some(row) = sqlx::query(&sql)
        .bind(sweep_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let sweep_state: SweepState = state(&row, "state")?;
    let first: i64 = row.try_get("next_number")?;
    let reopen = match sweep_state {
        SweepState::Cancelled => return Ok(None),
        SweepState::Finished if !reopen_finished => return Ok(None),
        SweepState::Finished => true,
        SweepState::Running | SweepState::Paused => false,
    };
    Ok(Some((first, reopen)))
}

async fn fetch_run<'c, E>(conn: E, id: &str) -> Result<Option<RunRow>>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = $1"
    );
    Ok(sqlx::query_as::<_, RunRow>(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// One sweep, read with `conn`.
async fn fetch_sweep<'c, E>(conn: E, id: &str) -> Result<Option<SweepRow>>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let sql = format!(
        "SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id WHERE s.id = $1"
    );
    Ok(sqlx::query_as::<_, SweepRow>(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The id of a project, created if missing (concurrent creators agree on one row).
async fn project_id(conn: &mut DbConn, name: &str) -> Result<i64> {
    sqlx::query(
        "INSERT INTO projects (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query("SELECT id FROM projects WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?
        .try_get("id")?)
}

/// Insert `new` with `number` in `state` (`queued` runs get no start time); returns the run
/// as stored (from the insert's `RETURNING`, not a second read).
async fn insert_run_row(
    conn: &mut DbConn,
    new: &NewRun,
    number: Option<i64>,
    state: RunState,
    project: Option<i64>,
) -> Result<RunRow> {
    // `project`: the project's id when the caller has it (a sweep run's is its sweep's).
    let project_id = match project {
        Some(id) => id,
        None => project_id(conn, &new.project).await?,
    };
    let id = new.id.clone().unwrap_or_else(|| new_id("r"));
    let now = now_ms();
    let started = (state != RunState::Queued).then_some(now);
    let sql = format!(
        "INSERT INTO runs (id, sweep_id, project_id, number, name, state, params, config, suggestion, grid_index, \
         agent_id, host, argv, git_commit, git_dirty, created_ms, started_ms, heartbeat_ms, retry_of, attempt, claim_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19, $20) \
         RETURNING {RUN_RETURNING}"
    );
    Ok(sqlx::query_as::<_, RunRow>(&sql)
    .bind(&id)
    .bind(&new.sweep_id)
    .bind(project_id)
    .bind(number)
    .bind(&new.name)
    .bind(state.as_str())
    .bind(new.params.to_string())
    .bind(new.config.to_string())
    .bind(new.suggestion.as_ref().map(Value::to_string))
    .bind(new.grid_index)
    .bind(&new.agent_id)
    .bind(&new.host)
    .bind(new.argv.as_ref().map(Value::to_string))
    .bind(&new.git_commit)
    .bind(new.git_dirty)
    .bind(now)
    .bind(started)
    .bind(&new.retry_of)
    .bind(new.attempt.unwrap_or(1))
    .bind(&new.claim_key)
    .fetch_one(&mut *conn)
    .await?)
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- the operations, each one attempt ---------------------------------------------------

impl Backend {
    async fn insert_sweep_once(&self, new: &NewSweep<'_>) -> Result<SweepRow> {
        let mut tx = self.begin().await?;
        let project_id = project_id(&mut tx, new.project).await?;
        let id = new_id("s");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sweeps (id, project_id, name, method, state, source, source_file, config_hash, seed, \
             metric_name, goal, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        )
        .bind(&id)
        .bind(project_id)
        .bind(new.name)
        .bind(new.method)
        .bind(SweepState::Running.as_str())
        .bind(new.source)
        .bind(new.source_file)
        .bind(new.config_hash)
        .bind(new.seed)
        .bind(new.metric_name)
        .bind(new.goal)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = fetch_sweep(&mut *tx, &id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        Ok(row)
    }

    async fn find_sweep_in(
        &self,
        project: &str,
        config_hash: &str,
        states: &[SweepState],
    ) -> Result<Option<SweepRow>> {
        let sql = format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id \
             WHERE p.name = $1 AND s.config_hash = $2 AND s.state IN ({}) \
             ORDER BY s.created_ms DESC LIMIT 1",
            placeholders(3, states.len())
        );
        let mut q = sqlx::query_as::<_, SweepRow>(&sql)
            .bind(project)
            .bind(config_hash);
        for s in states {
            q = q.bind(s.as_str());
        }
        Ok(q.fetch_optional(&mut *self.read_conn().await?).await?)
    }

    async fn transition_sweep_once(
        &self,
        id: &str,
        from: &[SweepState],
        to: SweepState,
        ended_by: Option<&str>,
    ) -> Result<Option<SweepRow>> {
        if from.is_empty() {
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE sweeps SET state = $2, updated_ms = $3, end_reason = $4 WHERE id = $1 AND state IN ({})",
            placeholders(5, from.len())
        );
        let mut q = sqlx::query(&sql)
            .bind(id)
            .bind(to.as_str())
            .bind(now_ms())
            .bind(ended_by.filter(|_| to.is_over()));
        for s in from {
            q = q.bind(s.as_str());
        }
        if q.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(None);
        }
        if let (true, Some(action)) = (to.is_over(), ended_by) {
            // Queued retries never start in a sweep that is over.
            sqlx::query(
                "UPDATE runs SET state = $2, error = $3, finished_ms = $4 WHERE sweep_id = $1 AND state = $5",
            )
            .bind(id)
            .bind(RunState::Cancelled.as_str())
            .bind(format!(
                "not started: the sweep was ended by `{action}` first"
            ))
            .bind(now_ms())
            .bind(RunState::Queued.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let row = fetch_sweep(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn finish_sweep_if_unchanged_once(
        &self,
        id: &str,
        expected: i64,
        end_reason: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE sweeps SET state = $3, retries_only = FALSE, updated_ms = $4, end_reason = $8 \
             WHERE id = $1 AND next_number = $2 AND state = $5 \
             AND NOT EXISTS (SELECT 1 FROM runs WHERE sweep_id = $1 AND state IN ($6, $7))",
        )
        .bind(id)
        .bind(expected)
        .bind(SweepState::Finished.as_str())
        .bind(now_ms())
        .bind(SweepState::Running.as_str())
        .bind(RunState::Queued.as_str())
        .bind(RunState::Running.as_str())
        .bind(end_reason)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn request_stop_for_sweep_once(&self, sweep_id: &str, reason: &str) -> Result<u64> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE runs SET stop_requested = TRUE, stop_reason = $2 WHERE sweep_id = $1 AND state IN ($3, $4)",
        )
        .bind(sweep_id)
        .bind(reason)
        .bind(RunState::Running.as_str())
        .bind(RunState::Queued.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn set_notes_once(&self, sweep_id: &str, notes: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE sweeps SET notes = $2 WHERE id = $1")
            .bind(sweep_id)
            .bind(notes)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn register_agent_once(
        &self,
        sweep_id: Option<&str>,
        host: Option<&str>,
        pid: Option<i64>,
        process: Option<&str>,
    ) -> Result<String> {
        let id = new_id("a");
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO agents (id, sweep_id, host, pid, process_key, created_ms, seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)")
            .bind(&id)
            .bind(sweep_id)
            .bind(host)
            .bind(pid)
            .bind(process.filter(|p| p.len() <= 256))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn insert_run_once(&self, new: &NewRun) -> Result<RunRow> {
        let mut tx = self.begin().await?;
        let state = if new.retry_of.is_some() {
            RunState::Queued
        } else {
            RunState::Running
        };
        let run = insert_run_row(&mut tx, new, new.number, state, None).await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn set_argv_once(
        &self,
        run_id: &str,
        argv: &[String],
        git_commit: Option<&str>,
        git_dirty: Option<bool>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE runs SET argv = $2, git_commit = COALESCE($3, git_commit), \
             git_dirty = CASE WHEN $3 IS NULL THEN git_dirty ELSE $4 END WHERE id = $1",
        )
        .bind(run_id)
        .bind(serde_json::to_string(argv).unwrap_or_else(|_| "[]".into()))
        .bind(git_commit)
        .bind(git_dirty)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_run_name_once(&self, run_id: &str, name: Option<&str>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE runs SET name = $2 WHERE id = $1")
            .bind(run_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn merge_config_once(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        locked: Option<&Value>,
        max_entries: usize,
    ) -> Result<ConfigMerge> {
        let mut tx = self.begin().await?;
        let sql = format!("SELECT config FROM runs WHERE id = $1{FOR_UPDATE}");
        let row = sqlx::query(&sql)
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(ConfigMerge::NoRun);
        };
        let mut config: Value = serde_json::from_str(&row.try_get::<String, _>("config")?)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Map::new()));
        deep_merge(&mut config, &Value::Object(values.clone()));
        if let Some(locked) = locked {
            deep_merge(&mut config, locked);
        }
        let entries = crate::config_entries(&config);
        if entries > max_entries {
            return Ok(ConfigMerge::TooLarge(entries));
        }
        sqlx::query("UPDATE runs SET config = $2 WHERE id = $1")
            .bind(run_id)
            .bind(config.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ConfigMerge::Merged)
    }

    async fn heartbeat_once(&self, run_id: &str) -> Result<Option<(bool, Option<String>)>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE runs SET heartbeat_ms = $2 WHERE id = $1 RETURNING stop_requested, stop_reason",
        )
        .bind(run_id)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(match row {
            Some(r) => Some((r.try_get("stop_requested")?, r.try_get("stop_reason")?)),
            None => None,
        })
    }

    async fn append_metrics_once(
        &self,
        run_id: &str,
        points: &[Point],
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Appended>> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite.raw_append_metrics(run_id, points, objective).await;
        }
        let mut tx = self.begin().await?;
        let answer = append_in(&mut tx, run_id, points, objective).await?;
        tx.commit().await?;
        Ok(answer)
    }

    /// Several metric batches in one transaction (group commit): each is applied as
    /// [`append_in`] does alone, in the order given, and all are committed together. The
    /// batches are taken in the order of their run ids (the order of arrival within a run), so
    /// two groups lock their runs in the same order.
    async fn append_group_once(&self, jobs: &[MetricJob]) -> Result<Vec<Option<Appended>>> {
        if let Some(sqlite) = self.one_hop() {
            let batches: Vec<(&str, &[Point], Option<Objective<'_>>)> = jobs
                .iter()
                .map(|j| (j.run_id.as_str(), j.points.as_slice(), j.objective()))
                .collect();
            return sqlite.raw_append_group(&batches).await;
        }
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|&a, &b| jobs[a].run_id.cmp(&jobs[b].run_id));
        let mut answers = vec![None; jobs.len()];
        let mut tx = self.begin().await?;
        for i in order {
            let job = &jobs[i];
            answers[i] = append_in(&mut tx, &job.run_id, &job.points, job.objective()).await?;
        }
        tx.commit().await?;
        Ok(answers)
    }

    /// Write what the writer task took from its queue: one transaction for all of `jobs`,
    /// answered only after its commit. If that transaction fails, each batch is written again
    /// alone, so a batch that cannot be written fails by itself and the others still land.
    async fn write_metric_group(&self, jobs: Vec<MetricJob>) {
        if jobs.len() > 1 {
            if let Ok(answers) = retrying(|| self.append_group_once(&jobs)).await {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    job.answer.send(Ok(answer)).ok();
                }
                return;
            }
        }
        for job in jobs {
            let answer =
                retrying(|| self.append_metrics_once(&job.run_id, &job.points, job.objective()))
                    .await;
            job.answer.send(answer).ok();
        }
    }
}

/// A metric batch waiting for the writer task (see [`metric_writer`]).
struct MetricJob {
    run_id: String,
    points: Vec<Point>,
    /// The sweep's objective: metric name and whether larger is better.
    objective: Option<(String, bool)>,
    answer: tokio::sync::oneshot::Sender<Result<Option<Appended>>>,
}

impl MetricJob {
    fn objective(&self) -> Option<Objective<'_>> {
        self.objective.as_ref().map(|(name, maximize)| Objective {
            name,
            maximize: *maximize,
        })
    }
}

/// Most batches joined into one transaction.
const MAX_GROUP_BATCHES: usize = 64;
/// Most metric batches waiting for the writer; senders wait beyond that.
const METRIC_QUEUE: usize = 256;

/// The queue of the metric writer: a handle sends its batches here and awaits the answer.
type MetricQueue = tokio::sync::mpsc::Sender<MetricJob>;

/// Metric writers of a PostgreSQL store: groups written at once, each on a connection of its
/// own. SQLite has one writer (the database takes one write transaction at a time).
const PG_METRIC_WRITERS: usize = 4;

/// Start the metric writers of `backend` (copies without a queue of their own, so the tasks
/// end when the last handle holding the returned queue is dropped).
///
/// Group commit: a writer takes every batch waiting (at most [`MAX_GROUP_BATCHES`]) and
/// writes them in one transaction, so concurrent clients share one commit (one `fsync` on
/// SQLite) instead of paying one each; a batch is answered only after the commit that holds
/// it. A batch arriving while a group is being written waits for the next group.
///
/// SQLite has one writer. PostgreSQL has [`PG_METRIC_WRITERS`], which take groups from the
/// one queue in turn and write them at the same time: a group's statements wait on the
/// database's round trips and its commit on the log's flush, time in which another group's
/// can run (one writer left PostgreSQL's and the server's cores mostly idle). Two groups
/// never deadlock: each locks its runs' rows in the order of their ids
/// ([`Backend::append_group_once`]). Batches of one run stay in order as long as a client
/// sends its next batch after the answer to the last, as the clients do.
fn start_metric_writer(backend: Backend) -> MetricQueue {
    let (queue, jobs) = tokio::sync::mpsc::channel::<MetricJob>(METRIC_QUEUE);
    let writers = if backend.one_hop().is_some() {
        1
    } else {
        PG_METRIC_WRITERS
    };
    let jobs = std::sync::Arc::new(tokio::sync::Mutex::new(jobs));
    for _ in 0..writers {
        let (backend, jobs) = (backend.clone(), jobs.clone());
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(MAX_GROUP_BATCHES);
            loop {
                // Take a group, then let the next writer take one while this one writes.
                let taken = jobs.lock().await.recv_many(&mut group, MAX_GROUP_BATCHES).await;
                if taken == 0 {
                    break;
                }
                backend.write_metric_group(std::mem::take(&mut group)).await;
            }
        });
    }
    queue
}

/// A metric series of a run as a batch finds it: its id, how many steps it holds and its
/// highest step.
#[derive(Debug, Clone, Copy)]
struct SeriesState {
    id: i64,
    points: i64,
    last_step: i64,
    /// The highest step once the batch is written.
    highest: i64,
    /// PostgreSQL: the first step and size of the series' last chunk, if it has one (SQLite,
    /// whose points are rows, reads `None` and never looks).
    #[allow(dead_code)]
    tail: Option<(i64, i64)>,
}

/// One series' share of a metric batch, for `write_series_points`: the series as the batch
/// found it (`points` and `highest` are brought up to date by the write), and its points
/// `(step, value, time_ms)`, ascending by step and distinct.
struct SeriesPoints {
    state: SeriesState,
    points: Vec<(i64, Option<f64>, i64)>,
    /// Filled by the write: the finite values it replaced with a different one at a step
    /// already stored (for the run's best, see `append_points_in`).
    replaced: Vec<f64>,
}

/// The series of `run_id` named `names`, created where missing (inside the run's write
/// transaction, so no other batch of the run creates them meanwhile).
async fn series_of(
    conn: &mut DbConn,
    run_id: &str,
    names: &[&str],
) -> Result<std::collections::HashMap<String, SeriesState>> {
    let mut found = std::collections::HashMap::with_capacity(names.len());
    for chunk in names.chunks(500) {
        let sql = format!(
            "SELECT s.id AS id, s.name AS name, s.points AS points, s.last_step AS last_step{SERIES_TAIL} \
             WHERE s.run_id = $1 AND s.name IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(run_id);
        for name in chunk {
            q = q.bind(*name);
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.insert(
                row.try_get::<String, _>("name")?,
                {
                    let last_step: i64 = row.try_get("last_step")?;
                    SeriesState {
                        id: row.try_get("id")?,
                        points: row.try_get("points")?,
                        last_step,
                        highest: last_step,
                        tail: match (
                            row.try_get::<Option<i64>, _>("tail_first")?,
                            row.try_get::<Option<i64>, _>("tail_points")?,
                        ) {
                            (Some(first), Some(n)) => Some((first, n)),
                            _ => None,
                        },
                    }
                },
            );
        }
    }
    for name in names {
        if found.contains_key(*name) {
            continue;
        }
        let id: i64 = sqlx::query(
            "INSERT INTO metric_series (run_id, name, points, last_step) VALUES ($1, $2, 0, -1) RETURNING id",
        )
        .bind(run_id)
        .bind(*name)
        .fetch_one(&mut *conn)
        .await?
        .try_get("id")?;
        found.insert(
            name.to_string(),
            SeriesState {
                id,
                points: 0,
                last_step: -1,
                highest: -1,
                tail: None,
            },
        );
    }
    Ok(found)
}

/// End a run inside the transaction on `conn` ([`Storage::finish_run_with_points`]): its
/// points (possibly none) appended by [`append_points_in`] and the conditional end, in one
/// update that answers the run. `None`: the run is unknown (nothing written).
async fn finish_in(conn: &mut DbConn, finish: &RunFinish<'_>) -> Result<Option<RunRow>> {
    // One update of the run stores the batch's effect and the end, and answers the run.
    // Every right-hand side sees the row as it was, so each `CASE` tests the state before
    // the end (the run is running or queued by then, under its row lock).
    let (sql, batch) = if finish.points.is_empty() {
        let sql = format!(
            "UPDATE runs SET state = $2, exit_code = $3, error = $4, finished_ms = $5, \
             {END_CLEARS_LATE_END} WHERE id = $1 AND state IN ($6, $7) RETURNING {RUN_RETURNING}"
        );
        (sql, None)
    } else {
        // A finish's point belongs to the end it makes: a run that has already ended (by a
        // finish sent again, or at once from two places, or a cancel) keeps its end and takes
        // no point (the row lock holds off the other finish until commit).
        let Some((_, batch)) = append_points_in(
            conn,
            finish.run_id,
            finish.points,
            finish.objective,
            crate::AppendTo::OpenRun,
        )
        .await?
        else {
            // Unknown (`None`), or ended: as it is.
            return fetch_run(&mut *conn, finish.run_id).await;
        };
        let sql = format!(
            "UPDATE runs SET next_step = $8, summary = $9, metric = $10, heartbeat_ms = $11, \
             state = CASE WHEN state IN ($6, $7) THEN $2 ELSE state END, \
             exit_code = CASE WHEN state IN ($6, $7) THEN $3 ELSE exit_code END, \
             error = CASE WHEN state IN ($6, $7) THEN $4 ELSE error END, \
             finished_ms = CASE WHEN state IN ($6, $7) THEN $5 ELSE finished_ms END, \
             {END_CLEARS_LATE_END} WHERE id = $1 RETURNING {RUN_RETURNING}"
        );
        (sql, Some(batch))
    };
    let mut q = sqlx::query_as::<_, RunRow>(&sql)
        .bind(finish.run_id)
        .bind(finish.state.as_str())
        .bind(finish.exit_code)
        .bind(finish.error)
        .bind(now_ms())
        .bind(RunState::Running.as_str())
        .bind(RunState::Queued.as_str());
    if let Some(batch) = batch {
        q = q
            .bind(batch.next_step)
            .bind(batch.summary)
            .bind(batch.metric)
            .bind(batch.now);
    }
    Ok(match q.fetch_optional(&mut *conn).await? {
        Some(row) => Some(row),
        // Unknown, or already ended (it keeps its state).
        None => fetch_run(&mut *conn, finish.run_id).await?,
    })
}

/// Insert a suggested run inside the transaction on `conn`
/// ([`Storage::insert_suggested_run`]); on [`Inserted::Stale`] the caller must not commit
/// what this wrote (the sweep's number may have moved before a unique violation).
async fn insert_suggested_in(conn: &mut DbConn, new: &NewRun, expected: i64) -> Result<Inserted> {
    let Some(sweep_id) = new.sweep_id.as_deref() else {
        return Err(StoreError::Db(sqlx::Error::Protocol(
            "insert_suggested_run needs a sweep".into(),
        )));
    };
    // Takes the sweep's row lock on PostgreSQL until commit: the next claim of this sweep
    // waits here, then finds the number moved on and answers stale.
    let taken = sqlx::query(
        "UPDATE sweeps SET next_number = next_number + 1, updated_ms = $3 \
         WHERE id = $1 AND next_number = $2 AND state = $4 RETURNING project_id",
    )
    .bind(sweep_id)
    .bind(expected)
    .bind(now_ms())
    .bind(SweepState::Running.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(taken) = taken else {
        return Ok(Inserted::Stale);
    };
    // The run belongs to its sweep's project.
    let project: i64 = taken.try_get("project_id")?;
    match insert_run_row(conn, new, Some(expected), RunState::Running, Some(project)).await {
        Ok(run) => Ok(Inserted::Inserted(Box::new(run))),
        // The schema's unique (sweep_id, number): another writer holds the number.
        Err(e) if e.is_unique_violation() => Ok(Inserted::Stale),
        Err(e) => Err(e),
    }
}

/// The points of one metric batch, written inside the transaction `conn` (see
/// [`Storage::append_metrics`]), and what the batch leaves to write on the run's row (by
/// [`append_in`], or with the run's end by `finish_run_with_points`).
async fn append_points_in(
    conn: &mut DbConn,
    run_id: &str,
    points: &[Point],
    objective: Option<Objective<'_>>,
    to: crate::AppendTo,
) -> Result<Option<(Appended, RunBatch)>> {
    // The run's row lock (PostgreSQL) or the single writer (SQLite) holds off every other
    // batch of this run until commit, so `next_step`, the summary, the metric and the run's
    // series are read and written by one batch at a time (and a finish's check of the state
    // holds until its end is stored).
    let sql = format!(
        "SELECT next_step, summary, metric, stop_requested, stop_reason, state FROM runs WHERE id = $1{FOR_UPDATE}"
    );
    let row = sqlx::query(&sql)
        .bind(run_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if to == crate::AppendTo::OpenRun {
        let state: String = row.try_get("state")?;
        if !matches!(
            state.parse::<RunState>(),
            Ok(RunState::Running | RunState::Queued)
        ) {
            return Ok(None);
        }
    }
    let next_step: i64 = row.try_get("next_step")?;
    let summary: String = row.try_get("summary")?;
    let metric: Option<f64> = row.try_get("metric")?;
    let folded = fold_points(next_step, metric, points, objective);
    let series = series_of(conn, run_id, &folded.names).await?;
    let mut batch = folded.batch(&summary, |name| series[name].last_step);
    let Folded {
        flat,
        names,
        overwritten,
        ..
    } = folded;
    // Points overwritten by a later one of the same batch still count as written.
    let mut accepted = overwritten;
    let mut writes: Vec<SeriesPoints> = names
        .iter()
        .map(|n| SeriesPoints {
            state: series[*n],
            points: Vec::new(),
            replaced: Vec::new(),
        })
        .collect();
    let slot: std::collections::HashMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    for (name, step, value, time) in &flat {
        writes[slot[*name]].points.push((*step, *value, *time));
    }
    for w in &mut writes {
        w.points.sort_unstable_by_key(|p| p.0);
    }
    let before: Vec<(i64, i64)> = writes
        .iter()
        .map(|w| (w.state.points, w.state.last_step))
        .collect();
    accepted += write_series_points(conn, &mut writes).await? as usize;
    // New steps keep the best incrementally (`fold_points`); a stored value replaced by another
    // may have been the best, which is then gone from the history: the best is computed again
    // from what the run holds (its series' extremes and its explicit summary).
    if let (Some(obj), Some(best)) = (objective, batch.metric) {
        let replaced_best = names
            .iter()
            .zip(&writes)
            .any(|(n, w)| *n == obj.name && w.replaced.contains(&best));
        if replaced_best {
            batch.metric = best_held(conn, run_id, obj).await?;
        }
    }
    let series: std::collections::HashMap<&str, SeriesState> = names
        .iter()
        .zip(&writes)
        .map(|(n, w)| (*n, w.state))
        .collect();
    for (name, (points, last_step)) in names.iter().zip(before) {
        let s = &series[*name];
        if (s.points, s.highest) == (points, last_step) {
            continue;
        }
        sqlx::query("UPDATE metric_series SET points = $2, last_step = $3 WHERE id = $1")
            .bind(s.id)
            .bind(s.points)
            .bind(s.highest)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some((
        Appended {
            accepted,
            stop: row.try_get("stop_requested")?,
            reason: row.try_get("stop_reason")?,
            metric: batch.metric,
        },
        batch,
    )))
}

/// The run's best objective value from what it holds now: the best of the objective's finite
/// logged values (aggregated over [`METRIC_EXTREMES`]: a row per point on SQLite, per chunk on
/// PostgreSQL) and of its explicit summary's value, inside the transaction `conn`.
async fn best_held(conn: &mut DbConn, run_id: &str, obj: Objective<'_>) -> Result<Option<f64>> {
    let logged = best_logged(conn, run_id, obj).await?;
    let summary: String = sqlx::query("SELECT user_summary FROM runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("user_summary")?;
    let summary: Map<String, Value> = serde_json::from_str(&summary).unwrap_or_default();
    let reported = summary.get(obj.name).and_then(finite_number);
    Ok(reported
        .into_iter()
        .fold(logged, |best, v| obj.best_after(best, obj.name, Some(v))))
}

/// The best of the objective's finite values the run logged, `None` without one.
async fn best_logged(conn: &mut DbConn, run_id: &str, obj: Objective<'_>) -> Result<Option<f64>> {
    let aggregate = if obj.maximize { "MAX(p.hi)" } else { "MIN(p.lo)" };
    let sql = format!(
        "SELECT {aggregate} AS v FROM metric_series s JOIN {METRIC_EXTREMES} p ON p.series = s.id \
         WHERE s.run_id = $1 AND s.name = $2"
    );
    Ok(sqlx::query(&sql)
        .bind(run_id)
        .bind(obj.name)
        .fetch_one(&mut *conn)
        .await?
        .try_get("v")?)
}

/// A metric batch folded into its run's row ([`fold_points`]).
struct Folded<'p> {
    /// One entry per (name, step): `(name, step, value, time_ms)`, the last of the batch's
    /// values for a (name, step) it names twice.
    flat: Vec<(&'p str, i64, Option<f64>, i64)>,
    /// The batch's metric names, in first-seen order.
    names: Vec<&'p str>,
    /// For each of `names`, its highest step in the batch and its value there.
    newest: Vec<(i64, Option<f64>)>,
    /// Points the batch overwrote itself (they count as written).
    overwritten: usize,
    /// The run's next step, best objective value and heartbeat (ms) after the batch.
    next_step: i64,
    metric: Option<f64>,
    now: i64,
}

impl Folded<'_> {
    /// What the batch leaves to write on the run's row: its summary is `stored` (the summary
    /// before the batch, JSON text) with each named metric's newest value taken by the rule
    /// of [`crate::summary::take_newest`], given each series' highest step before the batch
    /// (`last_step_of`, -1 for a new series).
    fn batch(&self, stored: &str, last_step_of: impl Fn(&str) -> i64) -> RunBatch {
        let mut summary: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
        for (name, &(step, value)) in self.names.iter().zip(&self.newest) {
            crate::summary::take_newest(&mut summary, name, step, value, last_step_of(name));
        }
        RunBatch {
            next_step: self.next_step,
            summary: Value::Object(summary).to_string(),
            metric: self.metric,
            now: self.now,
        }
    }
}

/// Fold `points` into a run whose row holds `next_step` and `metric`: a point without a step
/// takes the run's next step, which moves past every step seen; each metric's value at its
/// highest step in the batch is noted for the summary ([`Folded::batch`]); the objective's
/// best finite value is kept, over the values the batch leaves (one it names twice at a step
/// counts with its last value only). Pure: the
/// caller reads the row (under its lock, or guarded by the values it read) and writes the
/// result; a batch that replaces stored values may need the best computed again from what
/// the run then holds (`append_points_in`).
fn fold_points<'p>(
    next_step: i64,
    metric: Option<f64>,
    points: &'p [Point],
    objective: Option<Objective<'_>>,
) -> Folded<'p> {
    let mut next_step = next_step;
    let mut metric = metric;
    let now = now_ms();
    // One entry per (name, step); a batch that names one (name, step) twice keeps the last
    // value (one statement cannot upsert a row twice on PostgreSQL).
    let mut flat: Vec<(&str, i64, Option<f64>, i64)> = Vec::new();
    let mut seen: std::collections::HashMap<(&str, i64), usize> = std::collections::HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut newest: Vec<(i64, Option<f64>)> = Vec::new();
    let mut named: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in points {
        let step = p.step.unwrap_or(next_step);
        next_step = next_step.max(step + 1);
        let time = p.time_ms.unwrap_or(now);
        for (name, value) in &p.values {
            match seen.get(&(name.as_str(), step)) {
                Some(&i) => flat[i] = (name, step, *value, time),
                None => {
                    seen.insert((name.as_str(), step), flat.len());
                    flat.push((name, step, *value, time));
                }
            }
            let k = *named.entry(name.as_str()).or_insert_with(|| {
                names.push(name);
                newest.push((i64::MIN, None));
                names.len() - 1
            });
            if step >= newest[k].0 {
                newest[k] = (step, *value);
            }
        }
    }
    if let Some(obj) = objective {
        for (name, _, value, _) in &flat {
            metric = obj.best_after(metric, name, *value);
        }
    }
    let overwritten = points.iter().map(|p| p.values.len()).sum::<usize>() - flat.len();
    Folded {
        flat,
        names,
        newest,
        overwritten,
        next_step,
        metric,
        now,
    }
}

/// What a metric batch leaves to write on its run's row: its next step, summary (as JSON
/// text), metric and heartbeat.
struct RunBatch {
    next_step: i64,
    summary: String,
    metric: Option<f64>,
    now: i64,
}

/// Apply one metric batch inside the transaction `conn` (see [`Storage::append_metrics`]).
async fn append_in(
    conn: &mut DbConn,
    run_id: &str,
    points: &[Point],
    objective: Option<Objective<'_>>,
) -> Result<Option<Appended>> {
    let Some((appended, batch)) =
        append_points_in(conn, run_id, points, objective, crate::AppendTo::AnyRun).await?
    else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE runs SET next_step = $2, summary = $3, metric = $4, heartbeat_ms = $5 WHERE id = $1",
    )
    .bind(run_id)
    .bind(batch.next_step)
    .bind(batch.summary)
    .bind(batch.metric)
    .bind(batch.now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(appended))
}

impl Backend {

    async fn append_output_once(&self, run_id: &str, stream: &str, text: &str) -> Result<bool> {
        // Captured output is whatever a process printed: a NUL byte (which PostgreSQL's text
        // cannot hold) is stored as U+FFFD on every backend.
        let text = if text.contains('\0') {
            std::borrow::Cow::Owned(text.replace('\0', "\u{fffd}"))
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let text = text.as_ref();
        let now = now_ms();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO outputs (run_id, stream, text, time_ms) SELECT id, $2, $3, $4 FROM runs WHERE id = $1",
        )
        .bind(run_id)
        .bind(stream)
        .bind(text)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE runs SET heartbeat_ms = $2 WHERE id = $1")
            .bind(run_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_user_summary_once(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Option<f64>>> {
        let mut tx = self.begin().await?;
        let sql = format!("SELECT user_summary, metric FROM runs WHERE id = $1{FOR_UPDATE}");
        let row = sqlx::query(&sql)
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut summary: Map<String, Value> =
            serde_json::from_str(&row.try_get::<String, _>("user_summary")?).unwrap_or_default();
        for (k, v) in values {
            summary.insert(k.clone(), v.clone());
        }
        let mut metric: Option<f64> = row.try_get("metric")?;
        if let Some(obj) = objective.filter(|o| values.contains_key(o.name)) {
            let logged = best_logged(&mut tx, run_id, obj).await?;
            let reported = summary.get(obj.name).and_then(finite_number);
            metric = match (logged, reported) {
                (Some(a), Some(b)) if obj.maximize => Some(a.max(b)),
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        sqlx::query("UPDATE runs SET user_summary = $2, metric = $3 WHERE id = $1")
            .bind(run_id)
            .bind(Value::Object(summary).to_string())
            .bind(metric)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(metric))
    }

    async fn finish_run_once(
        &self,
        run_id: &str,
        state: RunState,
        exit_code: Option<i64>,
        error: Option<&str>,
    ) -> Result<Option<RunRow>> {
        self.finish_run_with_points_once(&RunFinish {
            run_id,
            points: &[],
            objective: None,
            state,
            exit_code,
            error,
            seen: None,
        })
        .await
    }

    /// [`Storage::finish_run_with_points`], once: `points` (possibly none) appended by
    /// [`append_in`], then the conditional end, then one commit.
    async fn finish_run_with_points_once(&self, finish: &RunFinish<'_>) -> Result<Option<RunRow>> {
        let mut tx = self.begin().await?;
        let Some(row) = finish_in(&mut tx, finish).await? else {
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(row))
    }

    /// [`Storage::finish_run_and_insert_suggested`], once: the end as
    /// [`Backend::finish_run_with_points_once`] makes it, then the insert as
    /// [`Backend::insert_suggested_run_once`] makes it inside a savepoint (a stale insert
    /// undoes only its own writes), then one commit.
    async fn finish_run_and_insert_suggested_once(
        &self,
        finish: &RunFinish<'_>,
        new: &NewRun,
        expected: i64,
    ) -> Result<(Option<RunRow>, Inserted)> {
        let mut tx = self.begin().await?;
        let ended = finish_in(&mut tx, finish).await?;
        sqlx::query("SAVEPOINT claim").execute(&mut *tx).await?;
        let inserted = insert_suggested_in(&mut tx, new, expected).await?;
        let undo = match inserted {
            Inserted::Inserted(_) => "RELEASE SAVEPOINT claim",
            Inserted::Stale => "ROLLBACK TO SAVEPOINT claim",
        };
        sqlx::query(undo).execute(&mut *tx).await?;
        if ended.is_some() || inserted != Inserted::Stale {
            tx.commit().await?;
        }
        Ok((ended, inserted))
    }

    async fn add_delivery_once(
        &self,
        run_id: &str,
        missing: u64,
        recovered: u64,
        files: &[String],
    ) -> Result<Option<RunRow>> {
        let mut tx = self.begin().await?;
        let sql = format!("SELECT delivery FROM runs WHERE id = $1{FOR_UPDATE}");
        let row = sqlx::query(&sql)
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: Option<String> = row.try_get("delivery")?;
        let mut delivery = text
            .and_then(|t| serde_json::from_str::<Delivery>(&t).ok())
            .unwrap_or_default();
        delivery.missing = delivery.missing.saturating_add(missing);
        delivery.recovered = delivery.recovered.saturating_add(recovered);
        for file in files {
            if !delivery.files.contains(file) && delivery.files.len() < MAX_DELIVERY_FILES {
                delivery.files.push(file.clone());
            }
        }
        let text = serde_json::to_string(&delivery).unwrap_or_else(|_| "{}".into());
        sqlx::query("UPDATE runs SET delivery = $2 WHERE id = $1")
            .bind(run_id)
            .bind(text)
            .execute(&mut *tx)
            .await?;
        let run = fetch_run(&mut *tx, run_id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// [`Storage::take_back_late_end`], once.
    async fn take_back_late_end_once(
        &self,
        id: &str,
        causes: &[EndCause],
    ) -> Result<crate::LateEnd> {
        let mut tx = self.begin().await?;
        // Locked on PostgreSQL: a claim of a queued retry skips it until this commits.
        let retry = sqlx::query(&format!(
            "SELECT id, state FROM runs WHERE retry_of = $1{FOR_UPDATE}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let retry: Option<(String, String)> = match retry {
            Some(row) => Some((row.try_get("id")?, row.try_get("state")?)),
            None => None,
        };
        let mut causes_in = String::new();
        for i in 0..causes.len().max(1) {
            if i > 0 {
                causes_in.push_str(", ");
            }
            causes_in.push_str(&format!("${}", i + 8));
        }
        let sql = format!(
            "UPDATE runs SET state = $2, exit_code = NULL, error = $3, finished_ms = NULL, \
             stop_requested = $4, stop_reason = NULL, stop_info = NULL, heartbeat_ms = $5, \
             end_cause = $7 \
             WHERE id = $1 AND sweep_id IS NOT NULL AND state = $6 AND end_cause IN ({causes_in}) \
             RETURNING {RUN_RETURNING}"
        );
        let mut query = sqlx::query_as::<_, RunRow>(&sql)
            .bind(id)
            .bind(RunState::Running.as_str())
            .bind(crate::LATE_END_PENDING)
            .bind(false)
            .bind(now_ms())
            .bind(RunState::Crashed.as_str())
            .bind(EndCause::LateEndPending.as_str());
        if causes.is_empty() {
            // Nothing matches: no cause was allowed.
            query = query.bind(Option::<String>::None);
        }
        for cause in causes {
            query = query.bind(cause.as_str());
        }
        let Some(run) = query.fetch_optional(&mut *tx).await? else {
            return Ok(crate::LateEnd::NotTaken);
        };
        let mut fate = None;
        if let Some((retry, state)) = retry {
            if state == RunState::Queued.as_str() {
                let done = sqlx::query(
                    "UPDATE runs SET state = $2, error = $3, retry_of = NULL, finished_ms = $4, \
                     end_cause = $6 WHERE id = $1 AND state = $5",
                )
                .bind(&retry)
                .bind(RunState::Cancelled.as_str())
                .bind(crate::RETRY_WITHDRAWN)
                .bind(now_ms())
                .bind(RunState::Queued.as_str())
                .bind(EndCause::RetryWithdrawn.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() > 0 {
                    fate = Some(crate::RetryFate::Withdrawn(retry.clone()));
                }
            }
            if fate.is_none() {
                // Claimed: the run holds the trial's result again, and the retry becomes a
                // repeat of it; one still running is asked to stop.
                let row = sqlx::query(
                    "UPDATE runs SET retry_of = NULL, repeat_of = $2, end_cause = $5, \
                     stop_requested = CASE WHEN state = $3 THEN TRUE ELSE stop_requested END, \
                     stop_reason = CASE WHEN state = $3 THEN $4 ELSE stop_reason END \
                     WHERE id = $1 RETURNING state",
                )
                .bind(&retry)
                .bind(id)
                .bind(RunState::Running.as_str())
                .bind(crate::RETRY_SUPERSEDED_REASON)
                .bind(EndCause::RetrySuperseded.as_str())
                .fetch_one(&mut *tx)
                .await?;
                let state: String = row.try_get("state")?;
                fate = Some(crate::RetryFate::Superseded {
                    retry,
                    state: state.parse::<RunState>().unwrap_or(RunState::Running),
                });
            }
        }
        tx.commit().await?;
        Ok(crate::LateEnd::TakenBack {
            run: Box::new(run),
            retry: fate,
        })
    }

    async fn crash_runs_once(
        &self,
        ids: &[String],
        cause: EndCause,
        error: &str,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let mut crashed = Vec::new();
        for id in ids {
            // The run ended when it was last heard from, not when its end was noticed.
            let done = sqlx::query(
                "UPDATE runs SET state = $4, error = $2, finished_ms = COALESCE(heartbeat_ms, started_ms, $3), \
                 end_cause = $7 WHERE id = $1 AND state = $5 AND COALESCE(end_cause, '') <> $6",
            )
            .bind(id)
            .bind(error)
            .bind(now_ms())
            .bind(RunState::Crashed.as_str())
            .bind(RunState::Running.as_str())
            // A run taken back for its late end has no agent any more; its upload is under
            // way (only silence crashes it again).
            .bind(EndCause::LateEndPending.as_str())
            .bind(cause.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                crashed.push(id.clone());
            }
        }
        tx.commit().await?;
        Ok(crashed)
    }

    async fn crash_silent_runs_once(
        &self,
        cutoff_ms: i64,
        timeout: std::time::Duration,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        // Worded by what the run had: an agent, (an ask/tell trial) only the client that
        // claimed it, or (outside a sweep) the process that created it. The run ended when it was last heard from (its last heartbeat, metric
        // batch or output), not when the silence was noticed, a run timeout later.
        let rows = sqlx::query(
            "UPDATE runs SET state = $3, finished_ms = COALESCE(heartbeat_ms, started_ms, created_ms), \
             error = CASE WHEN sweep_id IS NULL THEN $6 WHEN agent_id IS NULL THEN $5 ELSE $4 END, \
             end_cause = CASE WHEN sweep_id IS NULL THEN $9 WHEN agent_id IS NULL THEN $8 ELSE $7 END \
             WHERE state = $2 AND COALESCE(heartbeat_ms, started_ms, created_ms) < $1 \
             RETURNING id",
        )
        .bind(cutoff_ms)
        .bind(RunState::Running.as_str())
        .bind(RunState::Crashed.as_str())
        .bind(crate::AGENT_STOPPED_REPORTING)
        .bind(crate::client_stopped_reporting(timeout))
        .bind(crate::RUN_STOPPED_REPORTING)
        .bind(EndCause::AgentSilent.as_str())
        .bind(EndCause::ClientSilent.as_str())
        .bind(EndCause::RunSilent.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
            .collect()
    }

    async fn request_stop_once(&self, run_id: &str, reason: &str, info: &Value) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE runs SET stop_requested = TRUE, stop_reason = $2, stop_info = $3 \
             WHERE id = $1 AND state = $4 AND NOT stop_requested",
        )
        .bind(run_id)
        .bind(reason)
        .bind(info.to_string())
        .bind(RunState::Running.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_queued_once(
        &self,
        sweep_id: &str,
        agent_id: Option<&str>,
        host: Option<&str>,
        claim_key: Option<&str>,
    ) -> Result<Option<RunRow>> {
        let mut tx = self.begin().await?;
        // The pick and the update are one statement; on PostgreSQL the pick locks the row it
        // takes and skips rows another claim holds, so concurrent claims take different runs.
        let sql = format!(
            "UPDATE runs SET state = $2, agent_id = $3, host = $4, started_ms = $5, heartbeat_ms = $5, \
             claim_key = $8 \
             WHERE state = $6 AND id = (SELECT r.id FROM runs r JOIN sweeps s ON s.id = r.sweep_id \
                 WHERE r.sweep_id = $1 AND r.state = $6 AND s.state = $7 \
                 ORDER BY r.number, r.created_ms, r.id LIMIT 1{SKIP_LOCKED_R}) \
             RETURNING {RUN_RETURNING}"
        );
        let run = sqlx::query_as::<_, RunRow>(&sql)
            .bind(sweep_id)
            .bind(RunState::Running.as_str())
            .bind(agent_id)
            .bind(host)
            .bind(now_ms())
            .bind(RunState::Queued.as_str())
            .bind(SweepState::Running.as_str())
            .bind(claim_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from);
        let run = match run {
            // The key already claimed a run of this sweep (a retry racing its first attempt):
            // nothing is handed out; the caller finds that run by its key.
            Err(e) if e.is_unique_violation() => None,
            run => run?,
        };
        if run.is_some() {
            tx.commit().await?;
        } else {
            // Roll back now: a transaction dropped unfinished is rolled back only when its
            // connection is next used, and until then it keeps the row it locked, which the
            // next claim's `SKIP LOCKED` would pass over.
            tx.rollback().await?;
        }
        Ok(run)
    }

    async fn insert_suggested_run_once(&self, new: &NewRun, expected: i64) -> Result<Inserted> {
        let mut tx = self.begin().await?;
        let inserted = insert_suggested_in(&mut tx, new, expected).await?;
        if inserted != Inserted::Stale {
            tx.commit().await?;
        } else {
            // At once, not when the connection is next used: a stale insert may hold the
            // sweep's row lock (its number moved before a unique violation).
            tx.rollback().await?;
        }
        Ok(inserted)
    }

    async fn queue_repeats_once(
        &self,
        sweep_id: &str,
        repeats: &[NewRepeat],
        reopen_finished: bool,
    ) -> Result<Vec<RunRow>> {
        if repeats.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let Some((first, reopen)) = lock_for_queue(&mut tx, sweep_id, reopen_finished).await? else {
            return Ok(Vec::new());
        };
        let mut number = first;
        let mut queued = Vec::new();
        for repeat in repeats {
            let id = new_id("r");
            let done = sqlx::query(
                "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, \
                 attempt, repeat_of, seed) \
                 SELECT $1, o.sweep_id, o.project_id, $3, $4, $5, $6, $7, 1, o.id, $8 \
                 FROM runs o WHERE o.id = $2 AND o.sweep_id = $9",
            )
            .bind(&id)
            .bind(&repeat.repeat_of)
            .bind(number)
            .bind(RunState::Queued.as_str())
            .bind(repeat.params.to_string())
            .bind(repeat.config.to_string())
            .bind(now_ms())
            .bind(repeat.seed)
            .bind(sweep_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                number += 1;
                if let Some(run) = fetch_run(&mut *tx, &id).await? {
                    queued.push(run);
                }
            }
        }
        if number != first {
            let mut q = sqlx::query(if reopen {
                "UPDATE sweeps SET next_number = $2, updated_ms = $3, state = $4, retries_only = TRUE, \
                 end_reason = NULL WHERE id = $1"
            } else {
                "UPDATE sweeps SET next_number = $2, updated_ms = $3 WHERE id = $1"
            })
            .bind(sweep_id)
            .bind(number)
            .bind(now_ms());
            if reopen {
                q = q.bind(SweepState::Running.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn queue_retries_once(
        &self,
        sweep_id: &str,
        runs: &[String],
        reopen_finished: bool,
    ) -> Result<Vec<RunRow>> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let Some((first, reopen)) = lock_for_queue(&mut tx, sweep_id, reopen_finished).await? else {
            return Ok(Vec::new());
        };
        let mut number = first;
        let mut queued = Vec::new();
        for original in runs {
            let id = new_id("r");
            let done = sqlx::query(
                "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, suggestion, grid_index, \
                 created_ms, retry_of, attempt, repeat_of, seed) \
                 SELECT $1, o.sweep_id, o.project_id, $3, $4, o.params, o.config, o.suggestion, o.grid_index, $5, o.id, o.attempt + 1, \
                 o.repeat_of, o.seed \
                 FROM runs o WHERE o.id = $2 AND o.sweep_id = $6 AND o.state NOT IN ($4, $7) \
                 ON CONFLICT (retry_of) WHERE retry_of IS NOT NULL DO NOTHING",
            )
            .bind(&id)
            .bind(original)
            .bind(number)
            .bind(RunState::Queued.as_str())
            .bind(now_ms())
            .bind(sweep_id)
            .bind(RunState::Running.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                number += 1;
                if let Some(run) = fetch_run(&mut *tx, &id).await? {
                    queued.push(run);
                }
            }
        }
        if number != first {
            let mut q = sqlx::query(if reopen {
                "UPDATE sweeps SET next_number = $2, updated_ms = $3, state = $4, retries_only = TRUE, \
                 end_reason = NULL WHERE id = $1"
            } else {
                "UPDATE sweeps SET next_number = $2, updated_ms = $3 WHERE id = $1"
            })
            .bind(sweep_id)
            .bind(number)
            .bind(now_ms());
            if reopen {
                q = q.bind(SweepState::Running.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(queued)
    }
}

// ---- the seam ---------------------------------------------------------------------------

#[async_trait]
impl Storage for Backend {
    fn describe(&self) -> String {
        self.describe_location()
    }

    fn path(&self) -> Option<&Path> {
        self.file()
    }

    fn migrations_applied(&self) -> &[crate::AppliedMigration] {
        &self.migrated
    }

    async fn close(&self) {
        self.close_pools().await
    }

    async fn insert_sweep(&self, new: NewSweep<'_>) -> Result<SweepRow> {
        retrying(|| self.insert_sweep_once(&new)).await
    }

    async fn sweep(&self, id: &str) -> Result<Option<SweepRow>> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite.raw_sweep(id).await;
        }
        fetch_sweep(&mut *self.read_conn().await?, id).await
    }

    async fn sweeps(&self, project: Option<&str>) -> Result<Vec<SweepRow>> {
        let sql = format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id \
             WHERE (CAST($1 AS TEXT) IS NULL OR p.name = $1) ORDER BY s.created_ms DESC, s.id"
        );
        Ok(sqlx::query_as::<_, SweepRow>(&sql)
            .bind(project)
            .fetch_all(&mut *self.read_conn().await?)
            .await?)
    }

    async fn find_resumable(&self, project: &str, config_hash: &str) -> Result<Option<SweepRow>> {
        self.find_sweep_in(
            project,
            config_hash,
            &[SweepState::Running, SweepState::Paused],
        )
        .await
    }

    async fn find_finished(&self, project: &str, config_hash: &str) -> Result<Option<SweepRow>> {
        self.find_sweep_in(project, config_hash, &[SweepState::Finished])
            .await
    }

    async fn sweep_counts(&self, id: &str) -> Result<BTreeMap<RunState, i64>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM runs WHERE sweep_id = $1 GROUP BY state")
                .bind(id)
                .fetch_all(&mut *self.read_conn().await?)
                .await?;
        let mut counts = BTreeMap::new();
        for row in rows {
            counts.insert(state(&row, "state")?, row.try_get::<i64, _>("n")?);
        }
        Ok(counts)
    }

    async fn best_run(&self, sweep_id: &str, maximize: bool) -> Result<Option<RunRow>> {
        let order = if maximize { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id \
             WHERE r.sweep_id = $1 AND r.metric IS NOT NULL AND r.state IN ('finished', 'stopped_early') \
             ORDER BY r.metric {order}, r.number LIMIT 1"
        );
        Ok(sqlx::query_as::<_, RunRow>(&sql)
            .bind(sweep_id)
            .fetch_optional(&mut *self.read_conn().await?)
            .await?)
    }

    async fn transition_sweep(
        &self,
        id: &str,
        from: &[SweepState],
        to: SweepState,
        ended_by: Option<&str>,
    ) -> Result<Option<SweepRow>> {
        retrying(|| self.transition_sweep_once(id, from, to, ended_by)).await
    }

    async fn finish_sweep_if_unchanged(
        &self,
        id: &str,
        expected_next_number: i64,
        end_reason: Option<&str>,
    ) -> Result<bool> {
        retrying(|| self.finish_sweep_if_unchanged_once(id, expected_next_number, end_reason))
            .await
    }

    async fn request_stop_for_sweep(&self, sweep_id: &str, reason: &str) -> Result<u64> {
        retrying(|| self.request_stop_for_sweep_once(sweep_id, reason)).await
    }

    async fn set_notes(&self, sweep_id: &str, notes: &str) -> Result<bool> {
        retrying(|| self.set_notes_once(sweep_id, notes)).await
    }

    async fn retry_counts(&self, sweep_id: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN r.retry_of IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS retries, \
             CAST(COALESCE(SUM(CASE WHEN r.state IN ($2, $3) \
                 AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.retry_of = r.id) THEN 1 ELSE 0 END), 0) AS BIGINT) AS retryable \
             FROM runs r WHERE r.sweep_id = $1",
        )
        .bind(sweep_id)
        .bind(RunState::Failed.as_str())
        .bind(RunState::Crashed.as_str())
        .fetch_one(&mut *self.read_conn().await?)
        .await?;
        Ok((row.try_get("retries")?, row.try_get("retryable")?))
    }

    async fn compute_ms(&self, sweep_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(COALESCE(finished_ms, heartbeat_ms, started_ms) - started_ms), 0) AS BIGINT) AS ms \
             FROM runs WHERE sweep_id = $1 AND started_ms IS NOT NULL",
        )
        .bind(sweep_id)
        .fetch_one(&mut *self.read_conn().await?)
        .await?;
        Ok(row.try_get("ms")?)
    }

    async fn compute_ms_in_flight(&self, sweep_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(COALESCE(finished_ms, heartbeat_ms, started_ms) - started_ms), 0) AS BIGINT) AS ms \
             FROM runs WHERE sweep_id = $1 AND state IN ($2, $3) AND started_ms IS NOT NULL",
        )
        .bind(sweep_id)
        .bind(RunState::Running.as_str())
        .bind(RunState::Queued.as_str())
        .fetch_one(&mut *self.read_conn().await?)
        .await?;
        Ok(row.try_get("ms")?)
    }

    async fn sweep_points(&self, sweep_id: &str) -> Result<Vec<RunPoint>> {
        let rows = sqlx::query(
            "SELECT id, number, state, params, metric, created_ms, started_ms, finished_ms, repeat_of \
             FROM runs WHERE sweep_id = $1 ORDER BY number",
        )
        .bind(sweep_id)
        .fetch_all(&mut *self.read_conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let params: String = r.try_get("params")?;
                Ok(RunPoint {
                    id: r.try_get("id")?,
                    number: r.try_get("number")?,
                    state: state(r, "state")?,
                    params: serde_json::from_str(&params).unwrap_or(Value::Null),
                    metric: r.try_get("metric")?,
                    created_ms: r.try_get("created_ms")?,
                    started_ms: r.try_get("started_ms")?,
                    finished_ms: r.try_get("finished_ms")?,
                    repeat_of: r.try_get("repeat_of")?,
                })
            })
            .collect()
    }

    async fn finished_fingerprint(&self, sweep_id: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(finished_ms), 0) AS last FROM runs \
             WHERE sweep_id = $1 AND metric IS NOT NULL AND state NOT IN ($2, $3)",
        )
        .bind(sweep_id)
        .bind(RunState::Running.as_str())
        .bind(RunState::Queued.as_str())
        .fetch_one(&mut *self.read_conn().await?)
        .await?;
        Ok((row.try_get("n")?, row.try_get("last")?))
    }

    async fn register_agent(
        &self,
        sweep_id: Option<&str>,
        host: Option<&str>,
        pid: Option<i64>,
        process: Option<&str>,
    ) -> Result<String> {
        retrying(|| self.register_agent_once(sweep_id, host, pid, process)).await
    }

    async fn agent_host(&self, agent_id: &str) -> Result<Option<Option<String>>> {
        let row = sqlx::query("SELECT host FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_optional(&mut *self.read_conn().await?)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("host").ok().flatten()))
    }

    async fn running_agent_processes(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT a.process_key AS process_key, r.id AS id FROM runs r JOIN agents a ON a.id = r.agent_id \
             WHERE r.state = $1 AND r.sweep_id IS NOT NULL AND a.process_key IS NOT NULL \
             ORDER BY a.process_key",
        )
        .bind(RunState::Running.as_str())
        .fetch_all(&mut *self.read_conn().await?)
        .await?;
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for row in rows {
            let key: String = row.try_get("process_key")?;
            let id: String = row.try_get("id")?;
            match out.last_mut() {
                Some((last, ids)) if *last == key => ids.push(id),
                _ => out.push((key, vec![id])),
            }
        }
        Ok(out)
    }

    async fn insert_run(&self, new: NewRun) -> Result<RunRow> {
        retrying(|| self.insert_run_once(&new)).await
    }

    async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite.raw_run(id).await;
        }
        fetch_run(&mut *self.read_conn().await?, id).await
    }

    async fn runs(&self, filter: &RunFilter) -> Result<(Vec<RunRow>, i64)> {
        let condition = "(CAST($1 AS TEXT) IS NULL OR r.sweep_id = $1) AND (CAST($2 AS TEXT) IS NULL OR p.name = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR r.state = $3)";
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition} \
             ORDER BY r.number, r.created_ms, r.id LIMIT $4 OFFSET $5"
        );
        let state = filter.state.map(RunState::as_str);
        let rows = sqlx::query_as::<_, RunRow>(&sql)
            .bind(&filter.sweep)
            .bind(&filter.project)
            .bind(state)
            .bind(filter.limit.unwrap_or(1000).clamp(1, 100_000))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&mut *self.read_conn().await?)
            .await?;
        let total_sql = format!(
            "SELECT COUNT(*) AS n FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition}"
        );
        let total: i64 = sqlx::query(&total_sql)
            .bind(&filter.sweep)
            .bind(&filter.project)
            .bind(state)
            .fetch_one(&mut *self.read_conn().await?)
            .await?
            .try_get("n")?;
        Ok((rows, total))
    }

    async fn runs_page(&self, q: &RunQuery) -> Result<(Vec<RunRow>, i64)> {
        let page = page_sql(q, DIALECT, RUN_COLUMNS);
        let mut query = sqlx::query_as::<_, RunRow>(&page.select);
        for b in &page.binds {
            query = match b {
                Bind::Text(t) => query.bind(t.clone()),
                Bind::Real(x) => query.bind(*x),
            };
        }
        let rows = query
            .bind(q.limit.unwrap_or(1000).clamp(1, 100_000))
            .bind(q.offset.unwrap_or(0).max(0))
            .fetch_all(&mut *self.read_conn().await?)
            .await?;
        let mut count = sqlx::query(&page.count);
        for b in &page.binds[..page.count_binds] {
            count = match b {
                Bind::Text(t) => count.bind(t.clone()),
                Bind::Real(x) => count.bind(*x),
            };
        }
        let total: i64 = count.fetch_one(&mut *self.read_conn().await?).await?.try_get("n")?;
        Ok((rows, total))
    }

    async fn trials(&self, sweep_id: &str) -> Result<Vec<TrialRow>> {
        let sql = format!(
            "SELECT {TRIAL_COLUMNS} FROM runs r WHERE r.sweep_id = $1 ORDER BY r.number, r.created_ms, r.id"
        );
        Ok(sqlx::query_as::<_, TrialRow>(&sql)
            .bind(sweep_id)
            .fetch_all(&mut *self.read_conn().await?)
            .await?)
    }

    async fn trials_changed(&self, sweep_id: &str, since: i64) -> Result<(Vec<TrialRow>, i64)> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite.raw_trials_changed(sweep_id, since).await;
        }
        // The mark and the rows from one snapshot: whatever commits after it was still running
        // when the mark was taken, so its change mark is above it and the next call reads it.
        // One row when nothing changed (the mark, the run's columns NULL). The rows come in
        // change-mark order (see `changed_since`: the order that keeps the plan on the index)
        // and are sorted here as `trials` orders them.
        let found = fetch_changed(&mut *self.read_conn().await?, &trials_changed_sql(), sweep_id, since).await?;
        changed_trials(&found, since)
    }

    async fn sweep_and_changes(
        &self,
        sweep_id: &str,
        since: i64,
    ) -> Result<Option<SweepSnapshot>> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite.raw_sweep_and_changes(sweep_id, since).await;
        }
        // One statement, so one snapshot: the runs are exactly those the row's next number
        // counts (a run is inserted together with the number), and the mark is taken with
        // them (see `trials_changed`). One row per changed run, or one with the run's columns
        // NULL; none when there is no such sweep. One round trip instead of two: a trial of
        // an ask/tell loop reads this once.
        let found = fetch_changed(&mut *self.read_conn().await?, &sweep_and_changes_sql(), sweep_id, since).await?;
        let Some(first) = found.first() else {
            return Ok(None);
        };
        let sweep = sweep_prefixed(first)?;
        let (rows, mark) = changed_trials(&found, since)?;
        Ok(Some((sweep, rows, mark)))
    }

    async fn run_sweep_and_changes(
        &self,
        run_id: &str,
        sweep_id: &str,
        since: i64,
    ) -> Result<(Option<RunRow>, Option<SweepSnapshot>)> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite
                .raw_run_sweep_and_changes(run_id, sweep_id, since)
                .await;
        }
        // As `sweep_and_changes`, with the run's columns on every row: one statement, one
        // snapshot, one round trip. No row: no such sweep (the run is then read alone).
        let found = sqlx::query(&run_sweep_and_changes_sql())
            .bind(sweep_id)
            .bind(since)
            .bind(i64::MAX)
            .bind(run_id)
            .fetch_all(&mut *self.read_conn().await?)
            .await?;
        let Some(first) = found.first() else {
            return Ok((self.run(run_id).await?, None));
        };
        let run = run_prefixed(first)?;
        let sweep = sweep_prefixed(first)?;
        let (rows, mark) = changed_trials(&found, since)?;
        Ok((run, Some((sweep, rows, mark))))
    }

    async fn metric_spans_of(&self, run_ids: &[String], name: &str) -> Result<Vec<MetricSpan>> {
        let mut spans = Vec::new();
        for chunk in run_ids.chunks(200) {
            let sql = format!(
                "SELECT s.run_id AS run_id, MIN(m.lo) AS lo, MAX(m.hi) AS hi, \
                 (SELECT l.last FROM {METRIC_EXTREMES} l WHERE l.series = s.id \
                  ORDER BY l.at DESC LIMIT 1) AS last \
                 FROM metric_series s JOIN {METRIC_EXTREMES} m ON m.series = s.id \
                 WHERE s.run_id IN ({}) AND s.name = $1 GROUP BY s.id, s.run_id",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(name);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&mut *self.read_conn().await?).await? {
                spans.push(MetricSpan {
                    run_id: r.try_get("run_id")?,
                    lowest: r.try_get("lo")?,
                    highest: r.try_get("hi")?,
                    last: r.try_get("last")?,
                });
            }
        }
        Ok(spans)
    }

    async fn set_argv(
        &self,
        run_id: &str,
        argv: &[String],
        git_commit: Option<&str>,
        git_dirty: Option<bool>,
    ) -> Result<bool> {
        retrying(|| self.set_argv_once(run_id, argv, git_commit, git_dirty)).await
    }

    async fn set_run_name(&self, run_id: &str, name: Option<&str>) -> Result<bool> {
        retrying(|| self.set_run_name_once(run_id, name)).await
    }

    async fn merge_config(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        locked: Option<&Value>,
        max_entries: usize,
    ) -> Result<ConfigMerge> {
        retrying(|| self.merge_config_once(run_id, values, locked, max_entries)).await
    }

    async fn heartbeat(&self, run_id: &str) -> Result<Option<(bool, Option<String>)>> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite.raw_heartbeat(run_id).await;
        }
        retrying(|| self.heartbeat_once(run_id)).await
    }

    async fn append_metrics(
        &self,
        run_id: &str,
        points: &[Point],
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Appended>> {
        let Some(queue) = &self.metric_queue else {
            return retrying(|| self.append_metrics_once(run_id, points, objective)).await;
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = MetricJob {
            run_id: run_id.to_string(),
            points: points.to_vec(),
            objective: objective.map(|o| (o.name.to_string(), o.maximize)),
            answer,
        };
        // Either fails only when the store was closed (the writer is gone).
        queue
            .send(job)
            .await
            .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))?;
        answered
            .await
            .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))?
    }

    async fn last_value(&self, run_id: &str, name: &str) -> Result<Option<Option<f64>>> {
        self.read_last_value(run_id, name).await
    }

    async fn history(&self, run_id: &str) -> Result<Vec<HistoryPoint>> {
        self.read_history(run_id).await
    }

    async fn metric_names(&self, run_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT name FROM metric_series WHERE run_id = $1 AND points > 0 ORDER BY name",
        )
            .bind(run_id)
            .fetch_all(&mut *self.read_conn().await?)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").map_err(Into::into))
            .collect()
    }

    async fn history_columns(
        &self,
        run_id: &str,
        names: &[String],
        after_step: Option<i64>,
        max_steps: usize,
    ) -> Result<HistoryColumns> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite
                .raw_history_columns(run_id, names, after_step, max_steps)
                .await;
        }
        let max_steps = max_steps.max(1);
        let limit = i64::try_from(max_steps).unwrap_or(i64::MAX - 1) + 1;
        let after = after_step.unwrap_or(i64::MIN);
        // One snapshot for every series, so the columns agree.
        let mut conn = self.read_conn().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut series = Vec::with_capacity(names.len());
        for name in names {
            // PostgreSQL unnests the series' chunks (`METRIC_POINTS`), then keeps the page.
            let sql = format!(
                "SELECT p.step AS step, p.value AS value, p.time_ms AS time_ms FROM metric_series s \
                 JOIN {METRIC_POINTS} p ON p.series = s.id WHERE s.run_id = $1 AND s.name = $2 AND p.step > $3 \
                 ORDER BY p.step LIMIT $4"
            );
            let rows = sqlx::query(&sql)
            .bind(run_id)
            .bind(name)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let points = rows
                .iter()
                .map(|r| {
                    Ok(SeriesPoint {
                        step: r.try_get("step")?,
                        value: r.try_get("value")?,
                        time_ms: r.try_get("time_ms")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            series.push(points);
        }
        tx.commit().await?;
        Ok(merge_columns(&series, max_steps))
    }

    async fn series(&self, run_id: &str, name: &str) -> Result<Vec<SeriesPoint>> {
        self.read_series(run_id, name, None).await
    }

    async fn series_after(
        &self,
        run_id: &str,
        name: &str,
        after_step: i64,
    ) -> Result<Vec<SeriesPoint>> {
        self.read_series(run_id, name, Some(after_step)).await
    }

    async fn series_sample(
        &self,
        run_id: &str,
        name: &str,
        max_points: usize,
    ) -> Result<SeriesSample> {
        self.read_series_sample(run_id, name, max_points).await
    }

    async fn append_output(&self, run_id: &str, stream: &str, text: &str) -> Result<bool> {
        retrying(|| self.append_output_once(run_id, stream, text)).await
    }

    async fn output(&self, run_id: &str) -> Result<String> {
        let rows = sqlx::query("SELECT text FROM outputs WHERE run_id = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(&mut *self.read_conn().await?)
            .await?;
        let mut out = String::new();
        for r in rows {
            out.push_str(&r.try_get::<String, _>("text")?);
        }
        Ok(out)
    }

    async fn set_user_summary(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Option<f64>>> {
        retrying(|| self.set_user_summary_once(run_id, values, objective)).await
    }

    async fn metric_spans(&self, sweep_id: &str, name: &str) -> Result<Vec<MetricSpan>> {
        let sql = format!(
            "SELECT s.run_id AS run_id, MIN(m.lo) AS lo, MAX(m.hi) AS hi, \
             (SELECT l.last FROM {METRIC_EXTREMES} l WHERE l.series = s.id \
              ORDER BY l.at DESC LIMIT 1) AS last \
             FROM runs r JOIN metric_series s ON s.run_id = r.id AND s.name = $2 \
             JOIN {METRIC_EXTREMES} m ON m.series = s.id \
             WHERE r.sweep_id = $1 GROUP BY s.id, s.run_id"
        );
        let rows = sqlx::query(&sql)
            .bind(sweep_id)
            .bind(name)
            .fetch_all(&mut *self.read_conn().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricSpan {
                    run_id: r.try_get("run_id")?,
                    lowest: r.try_get("lo")?,
                    highest: r.try_get("hi")?,
                    last: r.try_get("last")?,
                })
            })
            .collect()
    }

    async fn reopen_run(&self, id: &str, seen: &RunRow) -> Result<Option<RunRow>> {
        retrying(|| async {
            let mut tx = self.begin().await?;
            let sql = format!(
                "UPDATE runs SET state = $2, exit_code = NULL, error = NULL, finished_ms = NULL, \
                 stop_requested = $3, stop_reason = NULL, stop_info = NULL, heartbeat_ms = $4, \
                 end_cause = NULL WHERE id = $1 AND sweep_id IS NULL AND state = $5 \
                 AND COALESCE(heartbeat_ms, -1) = $6 RETURNING {RUN_RETURNING}"
            );
            let row = sqlx::query_as::<_, RunRow>(&sql)
                .bind(id)
                .bind(RunState::Running.as_str())
                .bind(false)
                .bind(now_ms())
                .bind(seen.state.as_str())
                .bind(seen.heartbeat_ms.unwrap_or(-1))
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row)
        })
        .await
    }

    async fn take_back_late_end(&self, id: &str, causes: &[EndCause]) -> Result<crate::LateEnd> {
        retrying(|| self.take_back_late_end_once(id, causes)).await
    }

    async fn backdate_end(&self, id: &str, ended_ms: i64) -> Result<Option<RunRow>> {
        retrying(|| async {
            let mut tx = self.begin().await?;
            let sql = format!(
                "UPDATE runs SET finished_ms = CASE WHEN finished_ms IS NOT NULL AND $2 < finished_ms \
                 AND $2 >= COALESCE(started_ms, created_ms) THEN $2 ELSE finished_ms END \
                 WHERE id = $1 RETURNING {RUN_RETURNING}"
            );
            let row = sqlx::query_as::<_, RunRow>(&sql)
                .bind(id)
                .bind(ended_ms)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row)
        })
        .await
    }

    async fn backdate_start(&self, id: &str, started_ms: i64) -> Result<Option<RunRow>> {
        retrying(|| async {
            let mut tx = self.begin().await?;
            let sql = format!(
                "UPDATE runs SET created_ms = CASE WHEN $2 > 0 AND $2 < created_ms AND finished_ms IS NULL \
                 THEN $2 ELSE created_ms END, \
                 started_ms = CASE WHEN started_ms IS NOT NULL AND $2 > 0 AND $2 < created_ms \
                 AND finished_ms IS NULL THEN $2 ELSE started_ms END \
                 WHERE id = $1 RETURNING {RUN_RETURNING}"
            );
            let row = sqlx::query_as::<_, RunRow>(&sql)
                .bind(id)
                .bind(started_ms)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(row)
        })
        .await
    }

    async fn finish_run(
        &self,
        run_id: &str,
        state: RunState,
        exit_code: Option<i64>,
        error: Option<&str>,
    ) -> Result<Option<RunRow>> {
        if let Some(sqlite) = self.one_hop() {
            let end = crate::sqlite::RunEnd {
                state,
                exit_code,
                error,
            };
            return sqlite.raw_finish_run(run_id, &[], None, end).await;
        }
        retrying(|| self.finish_run_once(run_id, state, exit_code, error)).await
    }

    async fn finish_run_with_points(&self, finish: RunFinish<'_>) -> Result<Option<RunRow>> {
        if let Some(sqlite) = self.one_hop() {
            let end = crate::sqlite::RunEnd {
                state: finish.state,
                exit_code: finish.exit_code,
                error: finish.error,
            };
            return sqlite
                .raw_finish_run(finish.run_id, finish.points, finish.objective, end)
                .await;
        }
        if let Some(pg) = self.one_statement() {
            if let Some(ended) = pg.hot_tell(&finish).await? {
                return Ok(Some(ended));
            }
        }
        retrying(|| self.finish_run_with_points_once(&finish)).await
    }

    async fn add_delivery(
        &self,
        run_id: &str,
        missing: u64,
        recovered: u64,
        files: &[String],
    ) -> Result<Option<RunRow>> {
        retrying(|| self.add_delivery_once(run_id, missing, recovered, files)).await
    }

    async fn crash_runs(
        &self,
        ids: &[String],
        cause: EndCause,
        error: &str,
    ) -> Result<Vec<String>> {
        retrying(|| self.crash_runs_once(ids, cause, error)).await
    }

    async fn crash_silent_runs(
        &self,
        cutoff_ms: i64,
        timeout: std::time::Duration,
    ) -> Result<Vec<String>> {
        retrying(|| self.crash_silent_runs_once(cutoff_ms, timeout)).await
    }

    async fn request_stop(&self, run_id: &str, reason: &str, info: &Value) -> Result<bool> {
        retrying(|| self.request_stop_once(run_id, reason, info)).await
    }

    async fn curves(
        &self,
        sweep_id: &str,
        objective: &str,
        step_key: Option<&str>,
    ) -> Result<Vec<RunCurve>> {
        let sql = format!(
            "SELECT r.id AS id, r.number AS number, r.state AS state, r.stop_requested AS stop_requested, \
             m.step AS step, k.name AS name, m.value AS value, m.time_ms AS time_ms \
             FROM runs r LEFT JOIN metric_series k ON k.run_id = r.id AND (k.name = $2 OR k.name = $3) \
             LEFT JOIN {METRIC_POINTS} m ON m.series = k.id \
             WHERE r.sweep_id = $1 ORDER BY r.number, r.id, m.step"
        );
        let rows = sqlx::query(&sql)
        .bind(sweep_id)
        .bind(objective)
        .bind(step_key.unwrap_or(objective))
        .fetch_all(&mut *self.read_conn().await?)
        .await?;
        let mut out: Vec<RunCurve> = Vec::new();
        for r in rows {
            let id: String = r.try_get("id")?;
            if out.last().map(|c| c.run_id.as_str()) != Some(id.as_str()) {
                out.push(RunCurve {
                    run_id: id,
                    number: r.try_get::<Option<i64>, _>("number")?.unwrap_or(0),
                    state: state(&r, "state")?,
                    stop_requested: r.try_get("stop_requested")?,
                    points: Vec::new(),
                });
            }
            let Some(name) = r.try_get::<Option<String>, _>("name")? else {
                continue;
            };
            let curve = out.last_mut().expect("pushed above");
            fold_point(
                &mut curve.points,
                (
                    r.try_get("step")?,
                    &name,
                    r.try_get("value")?,
                    r.try_get("time_ms")?,
                ),
                objective,
                step_key,
            );
        }
        Ok(out)
    }

    async fn run_curve(
        &self,
        run_id: &str,
        objective: &str,
        step_key: Option<&str>,
    ) -> Result<Vec<CurvePoint>> {
        let rows = self
            .read_curve_rows(run_id, objective, step_key.unwrap_or(objective))
            .await?;
        let mut points: Vec<CurvePoint> = Vec::new();
        for (step, name, value, time) in rows {
            fold_point(&mut points, (step, &name, value, time), objective, step_key);
        }
        Ok(points)
    }

    async fn run_states(&self, sweep_id: &str) -> Result<Vec<(String, i64, RunState, bool)>> {
        let rows = sqlx::query(
            "SELECT id, number, state, stop_requested FROM runs WHERE sweep_id = $1 ORDER BY number, id",
        )
        .bind(sweep_id)
        .fetch_all(&mut *self.read_conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get::<Option<i64>, _>("number")?.unwrap_or(0),
                    state(r, "state")?,
                    r.try_get("stop_requested")?,
                ))
            })
            .collect()
    }

    async fn claim_queued(
        &self,
        sweep_id: &str,
        agent_id: Option<&str>,
        host: Option<&str>,
        claim_key: Option<&str>,
    ) -> Result<Option<RunRow>> {
        retrying(|| self.claim_queued_once(sweep_id, agent_id, host, claim_key)).await
    }

    async fn run_by_claim_key(&self, sweep_id: &str, claim_key: &str) -> Result<Option<RunRow>> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite.raw_run_by_claim_key(sweep_id, claim_key).await;
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id \
             WHERE r.sweep_id = $1 AND r.claim_key = $2"
        );
        Ok(sqlx::query_as::<_, RunRow>(&sql)
            .bind(sweep_id)
            .bind(claim_key)
            .fetch_optional(&mut *self.read_conn().await?)
            .await?)
    }

    async fn insert_suggested_run(
        &self,
        new: NewRun,
        expected_next_number: i64,
    ) -> Result<Inserted> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite
                .raw_insert_suggested_run(&new, expected_next_number)
                .await;
        }
        if let Some(pg) = self.one_statement() {
            return retrying(|| pg.hot_insert_suggested(&new, expected_next_number)).await;
        }
        retrying(|| self.insert_suggested_run_once(&new, expected_next_number)).await
    }

    async fn finish_run_and_insert_suggested(
        &self,
        finish: RunFinish<'_>,
        new: NewRun,
        expected_next_number: i64,
    ) -> Result<(Option<RunRow>, Inserted)> {
        if let Some(sqlite) = self.one_hop() {
            return sqlite
                .raw_finish_run_and_insert(&finish, &new, expected_next_number)
                .await;
        }
        if let Some(pg) = self.one_statement() {
            if let Some(done) = pg
                .hot_tell_and_insert(&finish, &new, expected_next_number)
                .await?
            {
                return Ok(done);
            }
        }
        retrying(|| self.finish_run_and_insert_suggested_once(&finish, &new, expected_next_number))
            .await
    }

    async fn tell_and_insert_checked(
        &self,
        finish: RunFinish<'_>,
        new: &NewRun,
        expected_next_number: i64,
        check: ChangeCheck<'_>,
    ) -> Result<Checked> {
        match self.one_statement() {
            Some(pg) => {
                pg.hot_tell_and_insert_checked(&finish, new, expected_next_number, check)
                    .await
            }
            None => Ok(Checked::NotWritten),
        }
    }

    async fn queue_retries(
        &self,
        sweep_id: &str,
        runs: &[String],
        reopen_finished: bool,
    ) -> Result<Vec<RunRow>> {
        retrying(|| self.queue_retries_once(sweep_id, runs, reopen_finished)).await
    }

    async fn queue_repeats(
        &self,
        sweep_id: &str,
        repeats: &[NewRepeat],
        reopen_finished: bool,
    ) -> Result<Vec<RunRow>> {
        retrying(|| self.queue_repeats_once(sweep_id, repeats, reopen_finished)).await
    }
}
