//! The SQLite backend's hot operations, each one transaction on the one-hop path
//! ([`super::raw`]): what an ask/tell trial or a running agent does on every step.
//!
//! Each is the operation of the same name in `queries.rs` (whose SQL and rules it follows and
//! whose documentation on [`crate::Storage`] holds), written against `rusqlite` so the whole
//! transaction runs on the locked connection: placeholders are `?N` (SQLite numbers `$N` by
//! first appearance, `?N` by `N`), and rows are decoded here. The PostgreSQL backend runs the
//! `queries.rs` versions; the conformance suite holds both to one behaviour.

use std::sync::LazyLock;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde_json::Value;

use super::metrics::{append_points_in, RunBatch};
use super::raw::End;
use super::{
    SqliteStorage, CHANGE_MARK_NOW, END_CLEARS_LATE_END, RUN_COLUMNS, RUN_RETURNING, SWEEP_COLUMNS,
    TRIAL_COLUMNS,
};
use crate::storage::{Inserted, SweepSnapshot};
use crate::{
    new_id, now_ms, NewRun, Objective, Point, Result, RunFinish, RunRow, RunState, StoreError,
    SweepRow, SweepState, TrialRow,
};

/// One sweep by id (`fetch_sweep`).
static SWEEP_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id WHERE s.id = ?1")
});

/// Insert a run (`insert_run_row`), answering it.
static INSERT_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO runs (id, sweep_id, project_id, number, name, state, params, config, suggestion, grid_index, \
         agent_id, host, argv, git_commit, git_dirty, created_ms, started_ms, heartbeat_ms, retry_of, attempt, claim_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18, ?19, ?20) \
         RETURNING {RUN_RETURNING}"
    )
});

/// One run by id (`fetch_run`).
static RUN_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = ?1"
    )
});

/// The run a claim key of a sweep claimed (`run_by_claim_key`): one seek in the partial
/// unique index on `(sweep_id, claim_key)`, which `claim_key = ?2` implies is usable.
static RUN_BY_CLAIM_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id \
         WHERE r.sweep_id = ?1 AND r.claim_key = ?2"
    )
});

/// End a run that is `running` or `queued` (`finish_run`), answering it.
///
/// `OR ROLLBACK`: a constraint this update breaks (none can: it sets no key, and every
/// `NOT NULL` column it sets gets a value) rolls the whole transaction back at once, instead
/// of this statement alone. Every caller fails its transaction on any error of this
/// statement, which is then rolled back whole either way; what it spares is the statement
/// journal SQLite otherwise keeps for a statement that may fail halfway (this one writes the
/// run, its indexes, and, through the `runs_mark_update` trigger, the change mark): a copy
/// of every page it touches, about 3 % of the server's instructions per ask/tell trial.
static END_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE OR ROLLBACK runs SET state = ?2, exit_code = ?3, error = ?4, finished_ms = ?5, \
         {END_CLEARS_LATE_END} WHERE id = ?1 AND state IN (?6, ?7) RETURNING {RUN_RETURNING}"
    )
});

/// Store a metric batch's effect on its run and end the run if it is `running` or `queued`,
/// in one statement, answering the run: the two updates of `finish_run_with_points` (every
/// right-hand side sees the row as it was, so each `CASE` tests the state before the end).
/// `OR ROLLBACK` for the reason given at [`END_RUN`].
static END_RUN_WITH_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE OR ROLLBACK runs SET next_step = ?8, summary = ?9, metric = ?10, heartbeat_ms = ?11, \
         state = CASE WHEN state IN (?6, ?7) THEN ?2 ELSE state END, \
         exit_code = CASE WHEN state IN (?6, ?7) THEN ?3 ELSE exit_code END, \
         error = CASE WHEN state IN (?6, ?7) THEN ?4 ELSE error END, \
         finished_ms = CASE WHEN state IN (?6, ?7) THEN ?5 ELSE finished_ms END, \
         {END_CLEARS_LATE_END} WHERE id = ?1 RETURNING {RUN_RETURNING}"
    )
});

/// The runs of a sweep changed after a mark (`trials_changed`).
static TRIALS_CHANGED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TRIAL_COLUMNS} FROM runs r WHERE r.sweep_id = ?1 AND r.change_mark > ?2 \
         ORDER BY r.number, r.created_ms, r.id"
    )
});

impl SqliteStorage {
    /// [`crate::Storage::heartbeat`]: one statement, one hop.
    pub(crate) async fn raw_heartbeat(
        &self,
        run_id: &str,
    ) -> Result<Option<(bool, Option<String>)>> {
        self.write(|db| heartbeat_in(db, run_id)).await
    }

    /// [`crate::Storage::insert_suggested_run`]: the sweep's number moves on and the run is
    /// inserted in one transaction, one hop; the run comes back from the insert itself.
    pub(crate) async fn raw_insert_suggested_run(
        &self,
        new: &NewRun,
        expected: i64,
    ) -> Result<Inserted> {
        let sweep_id = needs_sweep(new)?;
        self.write_or_roll_back(|db| {
            Ok(match insert_suggested_in(db, sweep_id, new, expected)? {
                inserted @ Inserted::Inserted(_) => End::Commit(inserted),
                Inserted::Stale => End::RollBack(Inserted::Stale),
            })
        })
        .await
    }

    /// [`crate::Storage::finish_run_and_insert_suggested`]: the end as
    /// [`SqliteStorage::raw_finish_run`] makes it and the insert as
    /// [`SqliteStorage::raw_insert_suggested_run`] makes it (a stale insert leaves nothing
    /// behind, so the end commits alone), one transaction, one commit, one hop.
    pub(crate) async fn raw_finish_run_and_insert(
        &self,
        finish: &RunFinish<'_>,
        new: &NewRun,
        expected: i64,
    ) -> Result<(Option<RunRow>, Inserted)> {
        let sweep_id = needs_sweep(new)?;
        let end = RunEnd {
            state: finish.state,
            exit_code: finish.exit_code,
            error: finish.error,
        };
        self.write_or_roll_back(|db| {
            let (ended, wrote) =
                match finish_in(db, finish.run_id, finish.points, finish.objective, end)? {
                    End::Commit(run) => (run, true),
                    End::RollBack(run) => (run, false),
                };
            // A stale insert has written nothing (see `insert_suggested_in`): no savepoint.
            let inserted = insert_suggested_in(db, sweep_id, new, expected)?;
            Ok(if wrote || inserted != Inserted::Stale {
                End::Commit((ended, inserted))
            } else {
                End::RollBack((ended, inserted))
            })
        })
        .await
    }

    /// [`crate::Storage::run`]: one read, one hop.
    pub(crate) async fn raw_run(&self, id: &str) -> Result<Option<RunRow>> {
        self.read_on_writer(|db| run_in(db, id)).await
    }

    /// [`crate::Storage::run_by_claim_key`]: one read, one hop.
    pub(crate) async fn raw_run_by_claim_key(
        &self,
        sweep_id: &str,
        claim_key: &str,
    ) -> Result<Option<RunRow>> {
        self.read_on_writer(|db| {
            Ok(db
                .prepare_cached(&RUN_BY_CLAIM_KEY)?
                .query_row(params![sweep_id, claim_key], run_row)
                .optional()?)
        })
        .await
    }

    /// [`crate::Storage::finish_run_with_points`] (and [`crate::Storage::finish_run`], with no
    /// points): the batch and the end in one transaction, one hop, with one update of the run
    /// that also answers it.
    pub(crate) async fn raw_finish_run(
        &self,
        run_id: &str,
        points: &[Point],
        objective: Option<Objective<'_>>,
        end: RunEnd<'_>,
    ) -> Result<Option<RunRow>> {
        self.write_or_roll_back(|db| finish_in(db, run_id, points, objective, end))
            .await
    }

    /// [`crate::Storage::sweep`]: one read, one hop.
    pub(crate) async fn raw_sweep(&self, id: &str) -> Result<Option<SweepRow>> {
        self.read_on_writer(|db| sweep_in(db, id)).await
    }

    /// [`crate::Storage::sweep_and_changes`]: the sweep row, the mark and the changed runs in
    /// one read transaction on the writer connection, one hop.
    pub(crate) async fn raw_sweep_and_changes(
        &self,
        sweep_id: &str,
        since: i64,
    ) -> Result<Option<SweepSnapshot>> {
        let read = |db: &Connection| {
            let Some(sweep) = sweep_in(db, sweep_id)? else {
                return Ok(None);
            };
            let (rows, mark) = trials_changed_in(db, sweep_id, since)?;
            Ok(Some((sweep, rows, mark)))
        };
        if since < 0 {
            return self.read(read).await;
        }
        self.read_on_writer(read).await
    }

    /// [`crate::Storage::run_sweep_and_changes`]: the run, the sweep and its changed runs in
    /// one read transaction, one hop, where [`Self::raw_sweep_and_changes`] reads.
    pub(crate) async fn raw_run_sweep_and_changes(
        &self,
        run_id: &str,
        sweep_id: &str,
        since: i64,
    ) -> Result<(Option<RunRow>, Option<SweepSnapshot>)> {
        let read = |db: &Connection| {
            let run = run_in(db, run_id)?;
            let Some(sweep) = sweep_in(db, sweep_id)? else {
                return Ok((run, None));
            };
            let (rows, mark) = trials_changed_in(db, sweep_id, since)?;
            Ok((run, Some((sweep, rows, mark))))
        };
        if since < 0 {
            return self.read(read).await;
        }
        self.read_on_writer(read).await
    }

    /// [`crate::Storage::trials_changed`]: the mark and the changed runs in one read
    /// transaction, one hop; on the writer connection, but for a read of every run
    /// (`since < 0`), which goes to the read-only pool.
    pub(crate) async fn raw_trials_changed(
        &self,
        sweep_id: &str,
        since: i64,
    ) -> Result<(Vec<TrialRow>, i64)> {
        if since < 0 {
            // Every run (a history built for the first time): a long read, beside the writer.
            return self.read(|db| trials_changed_in(db, sweep_id, since)).await;
        }
        self.read_on_writer(|db| trials_changed_in(db, sweep_id, since))
            .await
    }
}

/// Insert `new` with `number` in `state` into project `project` (`queued` runs get no start
/// time), inside the transaction on `db`; answers the run as stored.
fn insert_run_in(
    db: &Connection,
    new: &NewRun,
    number: Option<i64>,
    state: RunState,
    project: i64,
) -> Result<RunRow> {
    let now = now_ms();
    let started = (state != RunState::Queued).then_some(now);
    Ok(db.prepare_cached(&INSERT_RUN)?.query_row(
        params![
            new.id.clone().unwrap_or_else(|| new_id("r")),
            new.sweep_id,
            project,
            number,
            new.name,
            state.as_str(),
            new.params.to_string(),
            new.config.to_string(),
            new.suggestion.as_ref().map(Value::to_string),
            new.grid_index,
            new.agent_id,
            new.host,
            new.argv.as_ref().map(Value::to_string),
            new.git_commit,
            new.git_dirty,
            now,
            started,
            new.retry_of,
            new.attempt.unwrap_or(1),
            new.claim_key,
        ],
        run_row,
    )?)
}

/// `new`'s sweep, which a suggested run must have.
fn needs_sweep(new: &NewRun) -> Result<&str> {
    new.sweep_id.as_deref().ok_or_else(|| {
        StoreError::Db(sqlx::Error::Protocol(
            "insert_suggested_run needs a sweep".into(),
        ))
    })
}

/// The sweep's number moves on (if it is still `expected` and the sweep `running`) and `new`
/// is inserted with it, inside the transaction on `db`. [`Inserted::Stale`] leaves the
/// sweep's number and the runs as they were (a failed insert is undone by SQLite with its
/// statement, and the number is moved back), so the transaction may still commit other
/// writes.
fn insert_suggested_in(
    db: &Connection,
    sweep_id: &str,
    new: &NewRun,
    expected: i64,
) -> Result<Inserted> {
    let project: Option<i64> = db
        .prepare_cached(
            "UPDATE sweeps SET next_number = next_number + 1, updated_ms = ?3 \
             WHERE id = ?1 AND next_number = ?2 AND state = ?4 RETURNING project_id",
        )?
        .query_row(
            params![sweep_id, expected, now_ms(), SweepState::Running.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(project) = project else {
        return Ok(Inserted::Stale);
    };
    // The run belongs to its sweep's project.
    match insert_run_in(db, new, Some(expected), RunState::Running, project) {
        Ok(run) => Ok(Inserted::Inserted(Box::new(run))),
        // The schema's unique (sweep_id, number), or (sweep_id, claim_key): another writer
        // holds the number, or the key already claimed a run. The number goes back to what
        // the caller read.
        Err(e) if e.is_unique_violation() => {
            db.prepare_cached("UPDATE sweeps SET next_number = next_number - 1 WHERE id = ?1")?
                .execute(params![sweep_id])?;
            Ok(Inserted::Stale)
        }
        Err(e) => Err(e),
    }
}

/// End `run_id` inside the transaction on `db`, with `points` (possibly none) stored first
/// (`finish_run_with_points`): [`End::Commit`] with the run when something was written,
/// [`End::RollBack`] when nothing was (the run is unknown, or already ended: its points are
/// not stored), with the run as it is (`None`: unknown).
fn finish_in(
    db: &Connection,
    run_id: &str,
    points: &[Point],
    objective: Option<Objective<'_>>,
    end: RunEnd<'_>,
) -> Result<End<Option<RunRow>>> {
    if points.is_empty() {
        let ended = db
            .prepare_cached(&END_RUN)?
            .query_row(params_from_iter(end.params(run_id).iter()), run_row)
            .optional()?;
        return Ok(match ended {
            Some(run) => End::Commit(Some(run)),
            // Unknown, or already ended (it keeps its state): nothing was written.
            None => End::RollBack(run_in(db, run_id)?),
        });
    }
    // A finish's point belongs to the end it makes: a run that has already ended (by a
    // finish sent again, or a cancel) keeps its end and takes no point.
    let Some((_, batch)) =
        append_points_in(db, run_id, points, objective, crate::AppendTo::OpenRun)?
    else {
        // Unknown (`None`), or ended: as it is.
        return Ok(End::RollBack(run_in(db, run_id)?));
    };
    let mut params = end.params(run_id);
    params.extend(batch.params());
    let run = db
        .prepare_cached(&END_RUN_WITH_BATCH)?
        .query_row(params_from_iter(params.iter()), run_row)?;
    Ok(End::Commit(Some(run)))
}

/// One run, read on `db`.
fn run_in(db: &Connection, id: &str) -> Result<Option<RunRow>> {
    Ok(db
        .prepare_cached(&RUN_BY_ID)?
        .query_row(params![id], run_row)
        .optional()?)
}

/// How a run ends ([`crate::Storage::finish_run`]): its final state, exit code and error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunEnd<'a> {
    /// The final state.
    pub(crate) state: RunState,
    /// The process's exit code.
    pub(crate) exit_code: Option<i64>,
    /// Why it ended badly.
    pub(crate) error: Option<&'a str>,
}

impl RunEnd<'_> {
    /// Parameters `?1` to `?7` of [`END_RUN`] and [`END_RUN_WITH_BATCH`].
    fn params<'p>(&'p self, run_id: &'p str) -> Vec<Box<dyn rusqlite::ToSql + 'p>> {
        vec![
            Box::new(run_id),
            Box::new(self.state.as_str()),
            Box::new(self.exit_code),
            Box::new(self.error),
            Box::new(now_ms()),
            Box::new(RunState::Running.as_str()),
            Box::new(RunState::Queued.as_str()),
        ]
    }
}

impl RunBatch {
    /// Parameters `?8` to `?11` of [`END_RUN_WITH_BATCH`].
    fn params(self) -> Vec<Box<dyn rusqlite::ToSql>> {
        vec![
            Box::new(self.next_step),
            Box::new(self.summary),
            Box::new(self.metric),
            Box::new(self.now),
        ]
    }
}

/// One sweep, read on `db`.
fn sweep_in(db: &Connection, id: &str) -> Result<Option<SweepRow>> {
    Ok(db
        .prepare_cached(&SWEEP_BY_ID)?
        .query_row(params![id], sweep_row)
        .optional()?)
}

/// The runs of `sweep_id` changed after mark `since`, and the mark to pass next time (see
/// [`crate::Storage::trials_changed`]), read on `db` in one snapshot.
fn trials_changed_in(db: &Connection, sweep_id: &str, since: i64) -> Result<(Vec<TrialRow>, i64)> {
    // The mark first: whatever commits after it gets a later mark, so the next call reads it.
    let mark: i64 = db
        .prepare_cached(CHANGE_MARK_NOW)?
        .query_row([], |row| row.get("mark"))?;
    let mut changed = db.prepare_cached(&TRIALS_CHANGED)?;
    let rows = changed
        .query_map(params![sweep_id, since], trial_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, mark.max(since)))
}

/// Record a heartbeat of `run_id` inside the transaction on `db`: whether the run should
/// stop and why, or `None` for an unknown run.
fn heartbeat_in(db: &Connection, run_id: &str) -> Result<Option<(bool, Option<String>)>> {
    let mut update = db.prepare_cached(
        "UPDATE runs SET heartbeat_ms = ?2 WHERE id = ?1 RETURNING stop_requested, stop_reason",
    )?;
    Ok(update
        .query_row(params![run_id, now_ms()], |row| {
            Ok((row.get("stop_requested")?, row.get("stop_reason")?))
        })
        .optional()?)
}

// ---- row decoding (the mappings of `crate::rows`, for rusqlite rows) --------------------

/// The names of the columns of a column list (`RUN_COLUMNS`, …), in its order: each entry's
/// alias (`… AS name`) or its column name (what follows the table's `r.`). Commas inside
/// parentheses (a subquery) do not split entries.
fn column_names(list: &'static str) -> Vec<&'static str> {
    let mut names = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    let bytes = list.as_bytes();
    for (i, b) in bytes
        .iter()
        .enumerate()
        .chain(std::iter::once((bytes.len(), &b',')))
    {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                let entry = list[start..i].trim();
                let name = match entry.rfind(" AS ") {
                    Some(at) => &entry[at + 4..],
                    None => entry.rsplit('.').next().unwrap_or(entry),
                };
                names.push(name.trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    names
}

/// The column names of `SELECT {RUN_COLUMNS} …` and of `RETURNING {RUN_RETURNING}` (one
/// order, see `RUN_RETURNING`).
static RUN_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| column_names(RUN_COLUMNS));
/// The column names of `SELECT {TRIAL_COLUMNS} …`.
static TRIAL_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| column_names(TRIAL_COLUMNS));
/// The column names of `SELECT {SWEEP_COLUMNS} …`.
static SWEEP_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| column_names(SWEEP_COLUMNS));

/// A row whose columns are read by name, each name looked for from the column after the
/// one found last: the row macros read a row's columns in the order of its `SELECT`, so a
/// lookup compares one name.
///
/// The names compared are those of the column list the statement was written from
/// (`RUN_COLUMNS`, …), not the statement's own: asking SQLite for a column's name
/// ([`rusqlite::Statement::column_name`]: a call through its API, a C string measured and
/// checked as UTF-8) for each of a row's thirty columns was a sixteenth of the server's
/// instructions per ask/tell trial. A statement with another number of columns than its list
/// is read by its own names, as is any row when no list is given; debug builds check every
/// name found in a list against the statement's.
struct Named<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    /// The statement's column names, from its column list, when their count matches.
    names: Option<&'static [&'static str]>,
    /// Where the next lookup starts.
    next: std::cell::Cell<usize>,
}

impl<'r, 's> Named<'r, 's> {
    /// `row` of a statement written from the column list whose names are `names`.
    fn new(row: &'r rusqlite::Row<'s>, names: &'static [&'static str]) -> Self {
        let count = row.as_ref().column_count();
        Named {
            row,
            names: (count == names.len()).then_some(names),
            next: std::cell::Cell::new(0),
        }
    }

    /// The index of column `name` (matched as SQLite matches names, ignoring ASCII case).
    fn index(&self, name: &str) -> rusqlite::Result<usize> {
        let statement = self.row.as_ref();
        let start = self.next.get();
        let found = match self.names {
            // Most often the very next name, spelled as in the list.
            Some(names) if names.get(start) == Some(&name) => Some(start),
            Some(names) => {
                let count = names.len();
                (0..count)
                    .map(|k| (start + k) % count)
                    .find(|&i| names[i].eq_ignore_ascii_case(name))
            }
            None => {
                let count = statement.column_count();
                (0..count).map(|k| (start + k) % count).find(|&i| {
                    statement
                        .column_name(i)
                        .is_ok_and(|c| c.eq_ignore_ascii_case(name))
                })
            }
        };
        let Some(i) = found else {
            return Err(rusqlite::Error::InvalidColumnName(name.to_string()));
        };
        debug_assert!(
            statement
                .column_name(i)
                .is_ok_and(|c| c.eq_ignore_ascii_case(name)),
            "column {i} of `{}` is not {name}",
            statement.expanded_sql().unwrap_or_default()
        );
        self.next.set(i + 1);
        Ok(i)
    }
}

/// Column `column` of `row`.
fn get<T: rusqlite::types::FromSql>(row: &Named<'_, '_>, column: &str) -> rusqlite::Result<T> {
    row.row.get(row.index(column)?)
}

/// A JSON text column as a value (`Null` for SQL NULL; text that is not JSON stays a string),
/// parsed from the row's own text (no copy of it first).
fn json(row: &Named<'_, '_>, column: &str) -> rusqlite::Result<Value> {
    let Some(text) = text(row, column)? else {
        return Ok(Value::Null);
    };
    Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
}

/// A text column as the row's own text (`None` for SQL NULL); another type is the error
/// [`Named`]'s `get::<Option<String>>` gives.
fn text<'r>(row: &Named<'r, '_>, column: &str) -> rusqlite::Result<Option<&'r str>> {
    let index = row.index(column)?;
    let value = row.row.get_ref(index)?;
    value
        .as_str_or_null()
        .map_err(|_| wrong_type(index, column, value.data_type()))
}

/// The error of column `index` (`column`) holding a value of type `found` it cannot be.
fn wrong_type(index: usize, column: &str, found: rusqlite::types::Type) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(index, column.to_string(), found)
}

/// A state column, as its enum; an unknown word is a conversion error naming the column.
fn state<S>(row: &Named<'_, '_>, column: &str) -> rusqlite::Result<S>
where
    S: std::str::FromStr,
    S::Err: std::error::Error + Send + Sync + 'static,
{
    let index = row.index(column)?;
    let word = match text(row, column)? {
        Some(word) => word,
        None => return Err(wrong_type(index, column, rusqlite::types::Type::Null)),
    };
    word.parse().map_err(|e: S::Err| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A row of `SELECT {SWEEP_COLUMNS} …`.
fn sweep_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SweepRow> {
    let row = &Named::new(row, &SWEEP_NAMES);
    Ok(crate::rows::sweep_row_from!(row, get, state))
}

/// A row of `SELECT {RUN_COLUMNS} …` or of `RETURNING {RUN_RETURNING}`.
fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let row = &Named::new(row, &RUN_NAMES);
    Ok(crate::rows::run_row_from!(row, get, json, state))
}

/// A row of `SELECT {TRIAL_COLUMNS} …`.
fn trial_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TrialRow> {
    let row = &Named::new(row, &TRIAL_NAMES);
    Ok(crate::rows::trial_row_from!(row, get, json, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names found through a column list, and (`None`) through the statement's own names.
    fn read_abc(names: &'static [&'static str]) -> (i64, i64, i64, i64) {
        let db = Connection::open_in_memory().unwrap();
        let mut statement = db.prepare("SELECT 1 AS a, 2 AS b, 3 AS c").unwrap();
        statement
            .query_row([], |row| {
                let row = Named::new(row, names);
                let c: i64 = get(&row, "c")?;
                let a: i64 = get(&row, "a")?;
                let b: i64 = get(&row, "B")?;
                let b_again: i64 = get(&row, "b")?;
                let missing = get::<i64>(&row, "d").unwrap_err();
                assert!(
                    matches!(&missing, rusqlite::Error::InvalidColumnName(n) if n == "d"),
                    "{missing:?}"
                );
                Ok((a, b, c, b_again))
            })
            .unwrap()
    }

    #[test]
    fn named_columns_are_found_in_any_order_and_an_unknown_one_is_an_error() {
        // By the column list.
        assert_eq!(read_abc(&["a", "b", "c"]), (1, 2, 3, 2));
        // A list of another length than the statement's columns is not used.
        assert_eq!(read_abc(&["x", "y"]), (1, 2, 3, 2));
        assert_eq!(read_abc(&[]), (1, 2, 3, 2));
    }

    #[test]
    fn column_lists_name_their_columns_as_sqlite_does() {
        assert_eq!(
            column_names("r.id, p.name AS project, (SELECT f(a, b) FROM t) AS x, y"),
            ["id", "project", "x", "y"]
        );
        assert_eq!(RUN_NAMES.len(), 34);
        assert_eq!(*RUN_NAMES, column_names(RUN_RETURNING));
        assert_eq!(TRIAL_NAMES.len(), 17);
        assert_eq!(SWEEP_NAMES.len(), 17);
    }

    #[tokio::test]
    async fn every_statement_read_by_a_column_list_has_its_names_in_its_order() {
        let dir = std::env::temp_dir().join(format!("hyperdial-store-{}", new_id("t")));
        let store = SqliteStorage::open(&dir.join("db.sqlite")).await.unwrap();
        store
            .read_on_writer(|db| {
                let statements: [(&str, &[&str]); 8] = [
                    (&SWEEP_BY_ID, &SWEEP_NAMES),
                    (&INSERT_RUN, &RUN_NAMES),
                    (&RUN_BY_ID, &RUN_NAMES),
                    (&RUN_BY_CLAIM_KEY, &RUN_NAMES),
                    (&END_RUN, &RUN_NAMES),
                    (&END_RUN_WITH_BATCH, &RUN_NAMES),
                    (&TRIALS_CHANGED, &TRIAL_NAMES),
                    (CHANGE_MARK_NOW, &["mark"]),
                ];
                for (sql, names) in statements {
                    let statement = db.prepare(sql)?;
                    assert_eq!(statement.column_names(), names, "{sql}");
                }
                Ok(())
            })
            .await
            .unwrap();
        store.close_pools().await;
        std::fs::remove_dir_all(&dir).ok();
    }
}
