//! PostgreSQL's hot writes as one statement each: the claim's insert, and an ask/tell trial's
//! tell with the claim that follows.
//!
//! Each round trip to PostgreSQL is a wake-up of the server and of a PostgreSQL backend, and
//! these bound an ask/tell loop far more than the commit's flush does. As transactions,
//! [`crate::Storage::insert_suggested_run`] is four round trips (`BEGIN`, the sweep's number,
//! the insert, `COMMIT`) and [`crate::Storage::finish_run_and_insert_suggested`] about a dozen
//! (`BEGIN`, the run's row lock, the series lookup and insert, the chunk insert, the series
//! count, the end, a savepoint, the number, the insert, the release, `COMMIT`; the tell alone
//! is the first seven and `COMMIT`). Here each is one
//! statement of data-modifying common table expressions, run as its own transaction, and the
//! answer is sent after its commit, as before.
//!
//! **The claim's insert** ([`insert_suggested`]): `bump` takes the sweep's next number
//! (`UPDATE sweeps … WHERE id = … AND next_number = <expected> AND state = 'running'`), and
//! `ins` inserts the run with it (`INSERT … SELECT … FROM bump`). No row: the snapshot is stale.
//! A unique violation (another writer holds the number, or the claim key already claimed a
//! run) fails the whole statement, so the number does not move: stale too.
//!
//! **The tell**, alone ([`tell`], for [`crate::Storage::finish_run_with_points`]: the `tell` of
//! an ask/tell client that asks separately) or with the claim that follows
//! ([`tell_and_insert`]), when the caller read the run just before
//! ([`crate::RunFinish::seen`]):
//!
//! 1. `fin` ends the run with the told point's effect, computed here from the run as read
//!    ([`super::fold_points`]: next step, summary, best value), only if the run is still as
//!    read: still `running` or `queued`, the same next step, stored summary and metric, no
//!    explicit summary (the stored summary is then the one read), and no series yet for any
//!    told metric. Its row lock makes a concurrent metric batch of the run wait, or, when the
//!    batch came first, makes `fin` re-check its guard on the batch's row and match nothing;
//! 2. `ser` and `chk` create each told metric's series with its one point, in one chunk (the
//!    layout of [`super::chunks`]: NaN stored as NULL, the extremes over finite values);
//! 3. with the claim, `bump` and `ins` as in the claim's insert, `bump` only if `fin` ended
//!    the run.
//!
//! **With a change check** ([`tell_and_insert_checked`]): `ok` asks whether every run of the
//! sweep changed after the caller's mark carries one of the caller's own marks (its earlier
//! writes), `w` gives this transaction's own mark and a new mark for the caller's history,
//! and `fin` also requires the run's stop request as read. With the check required (the
//! caller decided without reading), `fin` writes only when it holds, and so nothing else is
//! written; `bump` also requires that the sweep is not `retries_only`.
//!
//! The answer tells the outcomes apart: no row (nothing written: the run changed since it was
//! read, is unknown or ended, or a told metric already has a series; the transaction then
//! does it all from the run as it is), the ended run alone (the sweep's number or state moved:
//! the end is stored, the claim is stale, as the transaction answers), or both. A unique
//! violation fails the whole statement, so nothing is written, and the transaction, which
//! confines it to a savepoint, answers it.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};

use super::warm::WarmConnection;
use super::{fold_points, Folded, CHANGE_MARK_NOW, END_CLEARS_LATE_END, RUN_RETURNING};
use crate::storage::{ChangeCheck, Checked, Inserted, OwnWrite};
use crate::{
    new_id, now_ms, NewRun, Result, RunFinish, RunRow, RunState, StoreError, SweepState, TrialRow,
};

/// Finite doubles: the bounds of the extremes a chunk keeps (see [`super::chunks`]).
const FINITE: &str = "BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308";

/// How many parameters [`claim_ctes`] takes.
const CLAIM_PARAMS: usize = 19;

/// How many parameters the tell's part of [`tell_statement`] takes (`$1` to `$17`).
const TELL_PARAMS: usize = 17;

/// The `bump` and `ins` expressions of a claim's insert, their parameters numbered from
/// `$f` in the order [`bind_claim`] binds them; `bump` runs only when `guard` (SQL) holds.
fn claim_ctes(f: usize, guard: &str) -> String {
    let p = |i: usize| format!("${}", f + i);
    format!(
        "bump AS (\
           UPDATE sweeps SET next_number = next_number + 1, updated_ms = {now} \
           WHERE id = {sweep} AND next_number = {number} AND state = {sweep_running}{guard} \
           RETURNING project_id), \
         ins AS (\
           INSERT INTO runs (id, sweep_id, project_id, number, name, state, params, config, suggestion, grid_index, \
             agent_id, host, argv, git_commit, git_dirty, created_ms, started_ms, heartbeat_ms, retry_of, attempt, claim_key) \
           SELECT {id}, {sweep}, bump.project_id, {number}, {name}, {running}, {params}, {config}, {suggestion}, \
             {grid}, {agent}, {host}, {argv}, {commit}, {dirty}, {now}, {now}, {now}, {retry_of}, {attempt}, {key} \
           FROM bump \
           RETURNING {RUN_RETURNING})",
        now = p(0),
        running = p(1),
        sweep = p(2),
        number = p(3),
        sweep_running = p(4),
        id = p(5),
        name = p(6),
        params = p(7),
        config = p(8),
        suggestion = p(9),
        grid = p(10),
        agent = p(11),
        host = p(12),
        argv = p(13),
        commit = p(14),
        dirty = p(15),
        retry_of = p(16),
        attempt = p(17),
        key = p(18),
    )
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Bind the [`CLAIM_PARAMS`] parameters of [`claim_ctes`]: the run `new` of its sweep, with
/// the sweep's `expected` number.
fn bind_claim<'q>(
    q: PgQuery<'q>,
    new: &'q NewRun,
    sweep_id: &'q str,
    expected: i64,
    now: i64,
) -> PgQuery<'q> {
    q.bind(now)
        .bind(RunState::Running.as_str())
        .bind(sweep_id)
        .bind(expected)
        .bind(SweepState::Running.as_str())
        .bind(new_id("r"))
        .bind(&new.name)
        .bind(new.params.to_string())
        .bind(new.config.to_string())
        .bind(new.suggestion.as_ref().map(serde_json::Value::to_string))
        .bind(new.grid_index)
        .bind(&new.agent_id)
        .bind(&new.host)
        .bind(new.argv.as_ref().map(serde_json::Value::to_string))
        .bind(&new.git_commit)
        .bind(new.git_dirty)
        .bind(&new.retry_of)
        .bind(new.attempt.unwrap_or(1))
        .bind(&new.claim_key)
}

/// What follows the tell in [`tell_statement`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum After {
    /// Nothing: the tell alone.
    Nothing,
    /// The claim's insert, its parameters from `$18` ([`claim_ctes`]).
    Claim,
    /// The claim's insert and the change check of [`tell_and_insert_checked`]: `$37` the
    /// mark, `$38` `i64::MAX`, `$39` the caller's own marks, `$40` the run's stop request as
    /// read; `required`: the tell and the claim only if the check holds.
    Checked { required: bool },
}

/// The check of [`tell_and_insert_checked`] as a query of one row (`clean`): whether the
/// runs of sweep `$sweep` changed after mark `$since` (`$since + 1` is `i64::MAX`) all carry
/// one of the marks in `$since + 2` (the caller's own writes). The closed range keeps
/// PostgreSQL's generic plan on the (sweep, change mark) index (see `changed_since` in
/// `queries.rs`).
fn own_changes_only(sweep: usize, since: usize) -> String {
    format!(
        "SELECT NOT EXISTS (SELECT 1 FROM runs r WHERE r.sweep_id = ${sweep} \
           AND r.change_mark > ${since} AND r.change_mark <= ${} \
           AND r.change_mark <> ALL(${}::BIGINT[])) AS clean",
        since + 1,
        since + 2
    )
}

/// How many parameters [`tell_and_insert_checked`]'s statement takes.
const CHECKED_PARAMS: usize = TELL_PARAMS + CLAIM_PARAMS + 4;

/// The tell's statement (see the module docs), with what follows it (`after`). Parameters:
/// `$1` run, `$2` final state, `$3` exit code, `$4` error, `$5` now (ms), `$6`/`$7` the
/// running and queued state words, `$8` next step, `$9` summary, `$10` metric after the
/// point; `$11`, `$12`, `$13` next step, stored summary and metric as read; `$14` names,
/// `$15` values, `$16` step, `$17` time of the point; then those of [`claim_ctes`] and of the
/// check ([`After`]).
fn tell_statement(after: After) -> String {
    let first = TELL_PARAMS + 1;
    let sweep = first + 2;
    let check = first + CLAIM_PARAMS;
    let (ok, guard) = match after {
        After::Checked { required } => (
            format!(
                "ok AS ({}), \
                 w AS (SELECT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT) AS own, m.mark \
                   FROM ({CHANGE_MARK_NOW}) m), ",
                own_changes_only(sweep, check)
            ),
            format!(
                " AND stop_requested = ${}{}",
                check + 3,
                if required {
                    " AND (SELECT clean FROM ok)"
                } else {
                    ""
                }
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let (claim, answer) = match after {
        After::Nothing => (
            String::new(),
            "SELECT 0 AS part, fin.* FROM fin".to_string(),
        ),
        After::Claim => (
            format!(", {}", claim_ctes(first, " AND EXISTS (SELECT 1 FROM fin)")),
            "SELECT 0 AS part, fin.* FROM fin UNION ALL SELECT 1 AS part, ins.* FROM ins"
                .to_string(),
        ),
        After::Checked { .. } => (
            format!(
                ", {}",
                claim_ctes(
                    first,
                    " AND EXISTS (SELECT 1 FROM fin) AND NOT retries_only"
                )
            ),
            "SELECT 0 AS part, ok.clean, w.own, w.mark, fin.* FROM fin, ok, w \
             UNION ALL SELECT 1 AS part, ok.clean, w.own, w.mark, ins.* FROM ins, ok, w"
                .to_string(),
        ),
    };
    format!(
        "WITH {ok}fin AS (\
           UPDATE runs SET next_step = $8, summary = $9, metric = $10, heartbeat_ms = $5, \
             state = $2, exit_code = $3, error = $4, finished_ms = $5, {END_CLEARS_LATE_END} \
           WHERE id = $1 AND state IN ($6, $7) AND next_step = $11 AND summary = $12 \
             AND metric IS NOT DISTINCT FROM $13 AND user_summary = '{{}}'{guard} \
             AND NOT EXISTS (SELECT 1 FROM metric_series m WHERE m.run_id = $1 AND m.name = ANY($14::TEXT[])) \
           RETURNING {RUN_RETURNING}), \
         ser AS (\
           INSERT INTO metric_series (run_id, name, points, last_step) \
           SELECT $1, u.name, 1, $16 FROM UNNEST($14::TEXT[]) AS u(name) WHERE EXISTS (SELECT 1 FROM fin) \
           RETURNING id, name), \
         chk AS (\
           INSERT INTO metric_chunks (series, first_step, last_step, steps, vals, times, vmin, vmax, vlast) \
           SELECT ser.id, $16, $16, ARRAY[$16::BIGINT], ARRAY[u.value], ARRAY[$17::BIGINT], \
             CASE WHEN u.value {FINITE} THEN u.value END, CASE WHEN u.value {FINITE} THEN u.value END, \
             CASE WHEN u.value {FINITE} THEN u.value END \
           FROM ser JOIN UNNEST($14::TEXT[], $15::DOUBLE PRECISION[]) AS u(name, value) ON u.name = ser.name)\
         {claim} {answer}"
    )
}

/// The claim's insert in one statement (see the module docs): the run inserted with the
/// sweep's number `expected`, or [`Inserted::Stale`] with nothing written.
pub(super) async fn insert_suggested(
    warm: &WarmConnection,
    new: &NewRun,
    expected: i64,
) -> Result<Inserted> {
    let Some(sweep_id) = new.sweep_id.as_deref() else {
        return Err(StoreError::Db(sqlx::Error::Protocol(
            "insert_suggested_run needs a sweep".into(),
        )));
    };
    let sql = format!("WITH {} SELECT * FROM ins", claim_ctes(1, ""));
    debug_assert!(sql.contains(&format!("${CLAIM_PARAMS}")));
    let q = bind_claim(sqlx::query(&sql), new, sweep_id, expected, now_ms());
    // At most one row: the claimed run, or none when the sweep moved on.
    let outcome = fetch_all(warm, q)
        .await?
        .map(|rows| rows.into_iter().next());
    match outcome.map_err(StoreError::from) {
        Ok(Some(row)) => Ok(Inserted::Inserted(Box::new(RunRow::from_row(&row)?))),
        Ok(None) => Ok(Inserted::Stale),
        Err(e) if e.is_unique_violation() => Ok(Inserted::Stale),
        Err(e) => Err(e),
    }
}

/// What the tell's statement binds, computed from the run as read: `None` when the
/// statement cannot apply (no run read, not exactly one point, a run already ended, a point
/// naming a metric twice or none).
struct Told<'a> {
    finish: &'a RunFinish<'a>,
    seen: &'a RunRow,
    stored_summary: String,
    names: Vec<&'a str>,
    values: Vec<Option<f64>>,
    step: i64,
    time: i64,
    batch: super::RunBatch,
}

impl<'a> Told<'a> {
    fn of(finish: &'a RunFinish<'a>) -> Option<Told<'a>> {
        let (Some(seen), [point]) = (finish.seen, finish.points) else {
            return None;
        };
        if seen.state.is_terminal() {
            return None;
        }
        // The run as read shows the stored summary with the explicit one merged over it: the
        // stored summary when there is no explicit one, which the statement checks.
        let stored_summary = serde_json::Value::Object(seen.summary.clone()).to_string();
        let folded = fold_points(seen.next_step, seen.metric, finish.points, finish.objective);
        // The statement writes only when no told metric has a series yet (-1: new).
        let batch = folded.batch(&stored_summary, |_| -1);
        let Folded {
            flat,
            names,
            overwritten,
            ..
        } = folded;
        if overwritten > 0 || names.is_empty() {
            return None;
        }
        Some(Told {
            finish,
            seen,
            step: flat[0].1,
            time: point.time_ms.unwrap_or(batch.now),
            values: flat.iter().map(|f| f.2).collect(),
            names,
            stored_summary,
            batch,
        })
    }

    /// `sql` with the tell's [`TELL_PARAMS`] parameters bound.
    fn bind<'q>(&'q self, sql: &'q str) -> PgQuery<'q> {
        let (finish, batch) = (self.finish, &self.batch);
        sqlx::query(sql)
            .bind(finish.run_id)
            .bind(finish.state.as_str())
            .bind(finish.exit_code)
            .bind(finish.error)
            .bind(batch.now)
            .bind(RunState::Running.as_str())
            .bind(RunState::Queued.as_str())
            .bind(batch.next_step)
            .bind(&batch.summary)
            .bind(batch.metric)
            .bind(self.seen.next_step)
            .bind(&self.stored_summary)
            .bind(self.seen.metric)
            .bind(&self.names)
            .bind(&self.values)
            .bind(self.step)
            .bind(self.time)
    }
}

/// The rows of `q` run on the warm connection ([`WarmConnection::take`]), which keeps the
/// connection for the next hot statement when the database answered; the outer error is the
/// pool's (no connection to run it on).
async fn fetch_all(
    warm: &WarmConnection,
    q: PgQuery<'_>,
) -> Result<std::result::Result<Vec<PgRow>, sqlx::Error>> {
    let mut conn = warm.take().await?;
    let outcome = q.fetch_all(&mut *conn).await;
    warm.keep(conn, &outcome);
    Ok(outcome)
}

/// Rows of a hot statement, or `None` when it failed in a way that wrote nothing and that
/// the transaction answers (a unique violation, which it confines to a savepoint; what the
/// database rolled back on purpose, which it runs again).
fn written(rows: std::result::Result<Vec<PgRow>, sqlx::Error>) -> Result<Option<Vec<PgRow>>> {
    match rows.map_err(StoreError::from) {
        Ok(rows) => Ok(Some(rows)),
        Err(e) if e.is_unique_violation() || e.is_retryable() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A trial's tell alone in one statement (see the module docs): the ended run, or `None`
/// when the statement does not apply or wrote nothing (the caller makes it as a
/// transaction).
pub(super) async fn tell(warm: &WarmConnection, finish: &RunFinish<'_>) -> Result<Option<RunRow>> {
    let Some(told) = Told::of(finish) else {
        return Ok(None);
    };
    let sql = tell_statement(After::Nothing);
    let Some(rows) = written(fetch_all(warm, told.bind(&sql)).await?)? else {
        return Ok(None);
    };
    Ok(match rows.first() {
        Some(row) => Some(RunRow::from_row(row)?),
        None => None,
    })
}

/// The tell and the claim in one statement (see the module docs): `None` when the statement
/// does not apply or wrote nothing (the caller makes them as a transaction), else the ended
/// run and the insert's answer.
pub(super) async fn tell_and_insert(
    warm: &WarmConnection,
    finish: &RunFinish<'_>,
    new: &NewRun,
    expected: i64,
) -> Result<Option<(Option<RunRow>, Inserted)>> {
    let (Some(told), Some(sweep_id)) = (Told::of(finish), new.sweep_id.as_deref()) else {
        return Ok(None);
    };
    let sql = tell_statement(After::Claim);
    let q = bind_claim(told.bind(&sql), new, sweep_id, expected, told.batch.now);
    let Some(rows) = written(fetch_all(warm, q).await?)? else {
        return Ok(None);
    };
    let mut ended = None;
    let mut inserted = Inserted::Stale;
    for row in &rows {
        let run = RunRow::from_row(row)?;
        match row.try_get::<i32, _>("part")? {
            0 => ended = Some(run),
            _ => inserted = Inserted::Inserted(Box::new(run)),
        }
    }
    Ok(ended.map(|ended| (Some(ended), inserted)))
}

/// The tell and the claim in one statement with the change check of
/// [`crate::Storage::tell_and_insert_checked`]: [`Checked::NotWritten`] when the statement
/// does not apply or wrote nothing (with `check.required`, also when anything but the
/// caller's own writes changed the sweep's runs after `check.since`).
pub(super) async fn tell_and_insert_checked(
    warm: &WarmConnection,
    finish: &RunFinish<'_>,
    new: &NewRun,
    expected: i64,
    check: ChangeCheck<'_>,
) -> Result<Checked> {
    let (Some(told), Some(sweep_id)) = (Told::of(finish), new.sweep_id.as_deref()) else {
        return Ok(Checked::NotWritten);
    };
    let sql = tell_statement(After::Checked {
        required: check.required,
    });
    debug_assert!(sql.contains(&format!("${CHECKED_PARAMS}")));
    let q = bind_claim(told.bind(&sql), new, sweep_id, expected, told.batch.now)
        .bind(check.since)
        .bind(i64::MAX)
        .bind(check.own)
        .bind(told.seen.stop_requested);
    let Some(rows) = written(fetch_all(warm, q).await?)? else {
        return Ok(Checked::NotWritten);
    };
    let (mut ended, mut inserted) = (None, None);
    let mut clean = false;
    let (mut own, mut mark) = (0, 0);
    for row in &rows {
        let pair = (RunRow::from_row(row)?, TrialRow::from_row(row)?);
        clean = row.try_get("clean")?;
        own = row.try_get("own")?;
        mark = row.try_get("mark")?;
        match row.try_get::<i32, _>("part")? {
            0 => ended = Some(pair),
            _ => inserted = Some(pair),
        }
    }
    let Some((ended, ended_trial)) = ended else {
        return Ok(Checked::NotWritten);
    };
    let (inserted, unchanged) = match inserted {
        Some((run, trial)) => (
            Inserted::Inserted(Box::new(run)),
            clean.then(|| OwnWrite {
                own,
                mark,
                trials: vec![ended_trial, trial],
            }),
        ),
        None => (Inserted::Stale, None),
    };
    Ok(Checked::Written {
        ended: Box::new(ended),
        inserted,
        unchanged,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::postgres::PostgresStorage;
    use crate::storage::Storage;
    use crate::testing::TestDb;
    use crate::{NewSweep, Objective, Point};

    const LOSS: Objective<'static> = Objective {
        name: "loss",
        maximize: false,
    };

    fn run_of(sweep: &str, a: i64) -> NewRun {
        NewRun {
            sweep_id: Some(sweep.into()),
            project: "default".into(),
            params: json!({ "a": a }),
            config: json!({ "a": a }),
            grid_index: Some(a),
            ..Default::default()
        }
    }

    fn told(loss: f64) -> [Point; 1] {
        [Point {
            step: None,
            time_ms: None,
            values: vec![("loss".into(), Some(loss))],
        }]
    }

    fn tell_of<'a>(run: &'a RunRow, points: &'a [Point]) -> RunFinish<'a> {
        RunFinish {
            run_id: &run.id,
            points,
            objective: Some(LOSS),
            state: RunState::Finished,
            exit_code: Some(0),
            error: None,
            seen: Some(run),
        }
    }

    /// A sweep with its first run claimed: the store, the sweep's id and the run.
    async fn claimed(db: &TestDb) -> (PostgresStorage, String, RunRow) {
        let store = PostgresStorage::open(db.url()).await.unwrap();
        let sweep = store
            .insert_sweep(NewSweep {
                project: "default",
                name: None,
                method: "grid",
                source: "method: grid",
                source_file: None,
                config_hash: "h",
                seed: 1,
                metric_name: Some("loss"),
                goal: Some("minimize"),
            })
            .await
            .unwrap();
        let Inserted::Inserted(run) = store
            .insert_suggested_run(run_of(&sweep.id, 0), 1)
            .await
            .unwrap()
        else {
            panic!("the first claim is stale");
        };
        (store, sweep.id, *run)
    }

    /// The reads of a claim's snapshot stay on the (sweep, change mark) index in the plan
    /// PostgreSQL keeps for any parameters, planned while the table is nearly empty (as in a
    /// new database's first sweep), and still once it holds thousands of runs.
    #[tokio::test]
    async fn the_snapshot_reads_walk_the_change_index_in_the_plan_for_any_parameters() {
        let Some(db) = TestDb::postgres("postgres::hot::snapshot_plan").await else {
            return;
        };
        let (store, sweep, _) = claimed(&db).await;
        let mut conn = store.reader.acquire().await.unwrap();
        sqlx::query("SET plan_cache_mode = force_generic_plan")
            .execute(&mut *conn)
            .await
            .unwrap();
        let plans = |sql: String| format!("EXPLAIN (FORMAT JSON) {sql}");
        for (sql, with_run) in [
            (crate::postgres::trials_changed_sql(), false),
            (crate::postgres::sweep_and_changes_sql(), false),
            (crate::postgres::run_sweep_and_changes_sql(), true),
        ] {
            for rows in [0, 3000] {
                if rows > 0 {
                    // Thousands of runs in the sweep, and statistics that know them.
                    sqlx::query(
                        "INSERT INTO runs (id, sweep_id, project_id, state, created_ms, params, config) \
                         SELECT 'x' || i, $1, project_id, 'finished', 0, '{}', '{}' FROM sweeps, \
                         generate_series(1, $2) AS i WHERE id = $1 ON CONFLICT DO NOTHING",
                    )
                    .bind(&sweep)
                    .bind(rows)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                    sqlx::query("ANALYZE runs")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
                let explain = plans(sql.clone());
                let mut query = sqlx::query_scalar(&explain)
                    .bind(&sweep)
                    .bind(5_i64)
                    .bind(i64::MAX);
                if with_run {
                    query = query.bind("x1");
                }
                let plan: serde_json::Value = query.fetch_one(&mut *conn).await.unwrap();
                let text = plan.to_string();
                assert!(text.contains("runs_by_sweep_change"), "{rows} runs: {text}");
                assert!(
                    !text.contains("\"Relation Name\":\"runs\"") || !text.contains("Seq Scan"),
                    "{rows} runs: {text}"
                );
            }
        }
    }

    /// The check of a tell decided without reading stays on the (sweep, change mark) index in
    /// the generic plan, on a nearly empty table and on one of thousands of runs.
    #[tokio::test]
    async fn the_change_check_walks_the_change_index_in_the_generic_plan() {
        let Some(db) = TestDb::postgres("postgres::hot::change_check_plan").await else {
            return;
        };
        let (store, sweep, _) = claimed(&db).await;
        let mut conn = store.reader.acquire().await.unwrap();
        for sql in [
            "SET plan_cache_mode = force_generic_plan".to_string(),
            format!(
                "PREPARE check_plan(TEXT, BIGINT, BIGINT, BIGINT[]) AS {}",
                own_changes_only(1, 2)
            ),
        ] {
            sqlx::raw_sql(&sql).execute(&mut *conn).await.unwrap();
        }
        for rows in [0, 3000] {
            if rows > 0 {
                sqlx::query(
                    "INSERT INTO runs (id, sweep_id, project_id, state, created_ms, params, config) \
                     SELECT 'x' || i, $1, project_id, 'finished', 0, '{}', '{}' FROM sweeps, \
                     generate_series(1, $2) AS i WHERE id = $1",
                )
                .bind(&sweep)
                .bind(rows)
                .execute(&mut *conn)
                .await
                .unwrap();
                sqlx::raw_sql("ANALYZE runs")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            let explain = format!(
                "EXPLAIN (FORMAT JSON) EXECUTE check_plan('{sweep}', 5, {}, '{{7,9}}')",
                i64::MAX
            );
            let plan: serde_json::Value = sqlx::query_scalar(&explain)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let text = plan.to_string();
            assert!(text.contains("runs_by_sweep_change"), "{rows} runs: {text}");
            assert!(!text.contains("Seq Scan"), "{rows} runs: {text}");
            assert!(text.contains("$2"), "not the generic plan: {text}");
        }
    }

    async fn next_number(store: &PostgresStorage, sweep: &str) -> i64 {
        store.sweep(sweep).await.unwrap().unwrap().next_number
    }

    #[tokio::test]
    async fn a_run_as_read_is_ended_and_the_next_claimed_in_one_statement() {
        let Some(db) = TestDb::postgres("postgres::hot::one_statement").await else {
            return;
        };
        let (store, sweep, run) = claimed(&db).await;
        let points = told(0.5);
        let done = tell_and_insert(&store.warm, &tell_of(&run, &points), &run_of(&sweep, 1), 2)
            .await
            .unwrap();
        let Some((Some(ended), Inserted::Inserted(next))) = done else {
            panic!("the statement did not apply: {done:?}");
        };
        assert_eq!(
            (ended.state, ended.metric, ended.next_step, ended.exit_code),
            (RunState::Finished, Some(0.5), 1, Some(0))
        );
        assert_eq!(ended.summary.get("loss"), Some(&json!(0.5)));
        assert_eq!(
            (
                next.number,
                next.state,
                next.project.as_str(),
                next.grid_index
            ),
            (Some(2), RunState::Running, "default", Some(1))
        );
        assert_eq!(next_number(&store, &sweep).await, 3);
        // The point is stored as the chunked layout keeps it: readable, counted, its extremes
        // there for the best value.
        let history = store.history(&run.id).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].step, 0);
        assert_eq!(history[0].values.get("loss"), Some(Some(0.5)));
        let spans = store.metric_spans(&sweep, "loss").await.unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].lowest, spans[0].highest), (0.5, 0.5));
        // A later point of the same series appends to that chunk through the batch path.
        let later = [Point {
            step: Some(3),
            time_ms: None,
            values: vec![("loss".into(), Some(0.25))],
        }];
        store
            .append_metrics(&next.id, &later, Some(LOSS))
            .await
            .unwrap();
        store
            .append_metrics(&run.id, &later, Some(LOSS))
            .await
            .unwrap();
        let steps: Vec<i64> = store
            .history(&run.id)
            .await
            .unwrap()
            .iter()
            .map(|p| p.step)
            .collect();
        assert_eq!(steps, [0, 3]);
        db.remove().await;
    }

    #[tokio::test]
    async fn a_tell_alone_ends_the_run_in_one_statement_and_takes_no_number() {
        let Some(db) = TestDb::postgres("postgres::hot::tell_alone").await else {
            return;
        };
        let (store, sweep, run) = claimed(&db).await;
        let points = told(0.5);
        let ended = tell(&store.warm, &tell_of(&run, &points)).await.unwrap();
        let Some(ended) = ended else {
            panic!("the statement did not apply");
        };
        assert_eq!(
            (ended.state, ended.metric, ended.next_step),
            (RunState::Finished, Some(0.5), 1)
        );
        assert_eq!(store.history(&run.id).await.unwrap().len(), 1);
        assert_eq!(next_number(&store, &sweep).await, 2);
        // The same tell again: the run has ended, nothing is written.
        let again = tell(&store.warm, &tell_of(&run, &points)).await.unwrap();
        assert!(again.is_none(), "{again:?}");
        assert_eq!(store.history(&run.id).await.unwrap().len(), 1);
        db.remove().await;
    }

    /// A checked write says what a read of the changes would show: its runs as
    /// `trials_changed` reads them, a mark that the next check passes with its own mark, and
    /// with the check required, nothing written once anything else changed.
    #[tokio::test]
    async fn a_checked_write_is_what_a_read_shows_and_a_required_check_guards_it() {
        let Some(db) = TestDb::postgres("postgres::hot::checked").await else {
            return;
        };
        let (store, sweep, mut run) = claimed(&db).await;
        fn check(since: i64, own: &[i64], required: bool) -> ChangeCheck<'_> {
            ChangeCheck {
                since,
                own,
                required,
            }
        }
        // A transaction open elsewhere on the cluster (other tests) holds the mark back, and
        // the write is then rightly not clean: trials go on until one is.
        let points = told(0.5);
        let mut number = 1;
        let (since, second, write) = loop {
            let (_, since) = store.trials_changed(&sweep, -1).await.unwrap();
            let done = tell_and_insert_checked(
                &store.warm,
                &tell_of(&run, &points),
                &run_of(&sweep, number),
                number + 1,
                check(since, &[], false),
            )
            .await
            .unwrap();
            number += 1;
            match done {
                Checked::Written {
                    inserted: Inserted::Inserted(next),
                    unchanged: Some(write),
                    ..
                } => break (since, next, write),
                Checked::Written {
                    inserted: Inserted::Inserted(next),
                    unchanged: None,
                    ..
                } if number < 50 => run = *next,
                other => panic!("not written clean: {other:?}"),
            }
        };
        let (read, _) = store.trials_changed(&sweep, since).await.unwrap();
        assert_eq!(read, write.trials);
        assert!(write.mark < write.own && since <= write.mark, "{write:?}");
        // The next trial, decided without reading: its own earlier write is not a change.
        let own = [write.own];
        let points = told(0.25);
        let done = tell_and_insert_checked(
            &store.warm,
            &tell_of(&second, &points),
            &run_of(&sweep, number),
            number + 1,
            check(write.mark, &own, true),
        )
        .await
        .unwrap();
        let Checked::Written {
            inserted: Inserted::Inserted(third),
            unchanged: Some(next),
            ..
        } = done
        else {
            panic!("not written clean: {done:?}");
        };
        // Another writer changes a run of the sweep (here: the first run's error);
        // a required check then writes nothing, and one not required writes and says so.
        sqlx::query("UPDATE runs SET error = 'x' WHERE id = $1")
            .bind(&run.id)
            .execute(&store.reader)
            .await
            .unwrap();
        let own = [next.own];
        let points = told(0.125);
        let done = tell_and_insert_checked(
            &store.warm,
            &tell_of(&third, &points),
            &run_of(&sweep, number + 1),
            number + 2,
            check(next.mark, &own, true),
        )
        .await
        .unwrap();
        assert!(matches!(done, Checked::NotWritten), "{done:?}");
        let unchanged = store.run(&third.id).await.unwrap().unwrap();
        assert_eq!(
            (unchanged.state, unchanged.metric),
            (RunState::Running, None)
        );
        assert_eq!(next_number(&store, &sweep).await, number + 2);
        let done = tell_and_insert_checked(
            &store.warm,
            &tell_of(&third, &points),
            &run_of(&sweep, number + 1),
            number + 2,
            check(next.mark, &own, false),
        )
        .await
        .unwrap();
        assert!(
            matches!(
                done,
                Checked::Written {
                    inserted: Inserted::Inserted(_),
                    unchanged: None,
                    ..
                }
            ),
            "{done:?}"
        );
    }

    #[tokio::test]
    async fn a_run_changed_since_it_was_read_writes_nothing() {
        let Some(db) = TestDb::postgres("postgres::hot::changed_since_read").await else {
            return;
        };
        let (store, sweep, run) = claimed(&db).await;
        let points = told(0.5);
        let new = run_of(&sweep, 1);
        // A metric batch after the read: the run's next step and summary moved.
        let batch = [Point {
            step: None,
            time_ms: None,
            values: vec![("acc".into(), Some(0.9))],
        }];
        store
            .append_metrics(&run.id, &batch, Some(LOSS))
            .await
            .unwrap();
        let done = tell_and_insert(&store.warm, &tell_of(&run, &points), &new, 2)
            .await
            .unwrap();
        assert!(done.is_none(), "{done:?}");
        let now = store.run(&run.id).await.unwrap().unwrap();
        assert_eq!((now.state, now.next_step), (RunState::Running, 1));
        assert_eq!(next_number(&store, &sweep).await, 2, "no number taken");
        // Read again, it applies; the told point takes the next step after the batch's.
        let done = tell_and_insert(&store.warm, &tell_of(&now, &points), &new, 2)
            .await
            .unwrap();
        let Some((Some(ended), Inserted::Inserted(_))) = done else {
            panic!("{done:?}");
        };
        assert_eq!(ended.next_step, 2);
        assert_eq!(ended.summary.get("acc"), Some(&json!(0.9)));
        assert_eq!(ended.summary.get("loss"), Some(&json!(0.5)));
        db.remove().await;
    }

    #[tokio::test]
    async fn a_series_already_there_an_explicit_summary_or_an_ended_run_write_nothing() {
        let Some(db) = TestDb::postgres("postgres::hot::not_for_this_statement").await else {
            return;
        };
        let (store, sweep, run) = claimed(&db).await;
        let points = told(0.5);
        let new = run_of(&sweep, 1);
        // The told metric was reported before: the series exists.
        let reported = [Point {
            step: None,
            time_ms: None,
            values: vec![("loss".into(), Some(0.7))],
        }];
        store
            .append_metrics(&run.id, &reported, Some(LOSS))
            .await
            .unwrap();
        let read = store.run(&run.id).await.unwrap().unwrap();
        let done = tell_and_insert(&store.warm, &tell_of(&read, &points), &new, 2)
            .await
            .unwrap();
        assert!(done.is_none(), "{done:?}");
        // An explicit summary: the summary as read is not the stored one.
        let Inserted::Inserted(other) = store
            .insert_suggested_run(run_of(&sweep, 2), 2)
            .await
            .unwrap()
        else {
            panic!("stale");
        };
        let mut explicit = serde_json::Map::new();
        explicit.insert("note".into(), json!(1.0));
        store
            .set_user_summary(&other.id, &explicit, Some(LOSS))
            .await
            .unwrap();
        let read = store.run(&other.id).await.unwrap().unwrap();
        let done = tell_and_insert(&store.warm, &tell_of(&read, &points), &new, 3)
            .await
            .unwrap();
        assert!(done.is_none(), "{done:?}");
        // An ended run keeps its end.
        let ended = store
            .finish_run(&other.id, RunState::Failed, Some(1), None)
            .await
            .unwrap()
            .unwrap();
        let done = tell_and_insert(&store.warm, &tell_of(&read, &points), &new, 3)
            .await
            .unwrap();
        assert!(done.is_none(), "{done:?}");
        assert_eq!(ended.state, RunState::Failed);
        assert_eq!(next_number(&store, &sweep).await, 3, "no number taken");
        db.remove().await;
    }

    #[tokio::test]
    async fn a_moved_number_keeps_the_end_and_a_taken_one_writes_nothing() {
        let Some(db) = TestDb::postgres("postgres::hot::numbers").await else {
            return;
        };
        let (store, sweep, run) = claimed(&db).await;
        let points = told(0.5);
        // Another claim took number 2: the end is stored, the claim is stale.
        store
            .insert_suggested_run(run_of(&sweep, 1), 2)
            .await
            .unwrap();
        let done = tell_and_insert(&store.warm, &tell_of(&run, &points), &run_of(&sweep, 2), 2)
            .await
            .unwrap();
        let Some((Some(ended), Inserted::Stale)) = done else {
            panic!("{done:?}");
        };
        assert_eq!((ended.state, ended.metric), (RunState::Finished, Some(0.5)));
        assert_eq!(next_number(&store, &sweep).await, 3);
        // Number 4 held by a run inserted without moving the sweep's number: the unique
        // number fails the statement, and nothing of it stays.
        let Inserted::Inserted(third) = store
            .insert_suggested_run(run_of(&sweep, 3), 3)
            .await
            .unwrap()
        else {
            panic!("stale");
        };
        let mut taken = run_of(&sweep, 4);
        taken.number = Some(4);
        store.insert_run(taken).await.unwrap();
        let done = tell_and_insert(
            &store.warm,
            &tell_of(&third, &points),
            &run_of(&sweep, 5),
            4,
        )
        .await
        .unwrap();
        assert!(done.is_none(), "{done:?}");
        let now = store.run(&third.id).await.unwrap().unwrap();
        assert_eq!(now.state, RunState::Running);
        assert!(store.history(&third.id).await.unwrap().is_empty());
        assert_eq!(next_number(&store, &sweep).await, 4);
        db.remove().await;
    }
}
