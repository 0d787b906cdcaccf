//! The SQLite backend: one database file in WAL mode.
//!
//! Durability ([`Durability`]): by default (`synchronous=FULL`) every commit is flushed to the
//! disk before it is acknowledged, so neither a killed server (SIGKILL, a panic, out of
//! memory) nor a power cut loses anything acknowledged; a commit then costs a disk flush
//! (milliseconds on many disks), which bounds a single client's sequential writes to a few
//! hundred a second (concurrent metric batches share one flush: group commit). With
//! `HYPERDIAL_SQLITE_SYNC=normal` (`synchronous=NORMAL`) a commit reaches the operating system
//! before it is acknowledged and the write-ahead log is flushed to the disk (a WAL checkpoint,
//! which syncs) at most [`SYNC_EVERY`] after a write: a killed server still restarts with
//! every acknowledged write, but a power cut or an operating-system crash can lose the writes
//! of the last second before it (never more, and never damaging the database).
//!
//! Under `FULL` an answered write therefore survives a power cut: its `COMMIT` returns after
//! the log's new frames were synced (one `fdatasync(2)` per commit: the bundled SQLite is
//! built with `HAVE_FDATASYNC`, see the workspace's `.cargo/config.toml`; on Linux it flushes
//! the data and, when the log grew, its size, as `fsync(2)` does, without also waiting for
//! the file system's journal to record the file's modification time, which on a busy disk
//! made a commit's sync twice as slow on average and its slowest one percent five times).
//! Copying the log into the database file (a checkpoint, which syncs both files) happens off
//! the request path, on the hot writer's checkpointer thread ([`raw`]); it never decides
//! whether a commit is durable.
//!
//! Writes go through two connections: the hot operations' own ([`raw::HotWriter`], which keeps
//! its prepared statements) and sqlx's single writer for the rest. Every write transaction
//! begins with `BEGIN IMMEDIATE`, which takes SQLite's write lock, so write transactions run
//! one at a time and each sees everything committed before it: on this backend the write lock
//! is the row lock of every read-then-write operation. Reads use a small read-only pool of
//! their own, which WAL lets run beside the writer. Several servers on one SQLite file would
//! each have their own writer and wait on SQLite's file lock (busy timeout 30 s); sharing a
//! database between servers is what the PostgreSQL backend is for.
//!
//! A write is acknowledged only after its `COMMIT`. A failed statement or commit rolls back;
//! a connection whose rollback fails, or that met a storage fault during its transaction, is
//! closed instead of returned to the pool, so no later write runs inside a half-failed
//! transaction (after `SQLITE_FULL`, SQLite may already have rolled back on its own) and
//! writes work again once the fault clears.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::Sqlite;

use crate::dashboard::Dialect;
use crate::error;

type Db = Sqlite;
type DbRow = SqliteRow;
type DbConn = SqliteConnection;
type Backend = SqliteStorage;

/// The database-wide change counter: write transactions commit one at a time, in its order.
const CHANGE_MARK_NOW: &str = "SELECT mark FROM run_changes";
/// SQLite has no row locks: its write lock (`BEGIN IMMEDIATE`) serializes write transactions.
const FOR_UPDATE: &str = "";
/// The queued-run pick needs no lock clause under the single writer.
const SKIP_LOCKED_R: &str = "";
const DIALECT: Dialect = Dialect::Sqlite;

/// The SQLite backend of [`crate::Storage`].
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    /// The migrations applied when the database was opened.
    migrated: Arc<[crate::AppliedMigration]>,
    /// The metric writer's queue (group commit); `None` in the writer's own copy.
    metric_queue: Option<MetricQueue>,
    /// Set by every commit, cleared by the flush that follows it ([`Durability::Normal`]).
    written: Arc<AtomicBool>,
    /// The hot operations' writer connection ([`raw`]).
    hot: Arc<raw::HotWriter>,
}

/// Under [`Durability::Normal`]: every [`SYNC_EVERY`], if anything was committed since the last
/// time, checkpoint the write-ahead log (`PASSIVE`: it never waits for readers), which syncs
/// the log to the disk first. Ends when the pool is closed.
async fn flush_now_and_then(writer: SqlitePool, written: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if writer.is_closed() {
            return;
        }
        if !written.swap(false, Ordering::AcqRel) {
            continue;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&writer)
            .await
        {
            if writer.is_closed() {
                return;
            }
            // Flushed on a later tick; the commits stay acknowledged to the operating system.
            written.store(true, Ordering::Release);
            tracing::warn!("flushing the database log to the disk failed: {e}");
        }
    }
}

/// How commits reach the disk (see the module docs); from `HYPERDIAL_SQLITE_SYNC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged at commit; the log is flushed to the disk within [`SYNC_EVERY`].
    Normal,
    /// Every commit flushed to the disk before it is acknowledged.
    Full,
}

impl Durability {
    /// `HYPERDIAL_SQLITE_SYNC`: `normal`, or `full` (the default, also for anything else, so a
    /// misspelt value never weakens durability).
    pub fn from_env() -> Durability {
        match std::env::var("HYPERDIAL_SQLITE_SYNC") {
            Ok(v) if v.trim().eq_ignore_ascii_case("normal") => Durability::Normal,
            _ => Durability::Full,
        }
    }
}

/// How long a write waits for another connection on the file (another process) to finish
/// its write before it answers busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Under [`Durability::Normal`], how soon after a write the log is flushed to the disk.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

impl SqliteStorage {
    /// Open (creating if needed) the database file at `path`, creating its directory, and
    /// bring its schema up to date (`migrations/sqlite`).
    pub async fn open(path: &Path) -> Result<SqliteStorage> {
        // SQLite reports a directory as an I/O error ("unable to open database file").
        if path.is_dir() {
            return Err(StoreError::Url {
                url: path.display().to_string(),
                why: format!(
                    "it is a directory; give the database file, e.g. {}",
                    path.join("hyperdial.db").display()
                ),
            });
        }
        let sync = Durability::from_env();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Sorts and temporary tables in memory rather than in files of their own.
            .pragma("temp_store", "memory");
        // No ping before each acquire: a connection to a local file does not go stale, and on
        // SQLite the ping is one more round trip to the connection's thread per operation.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await?;
        let migrated =
            crate::migrate::run(&writer, sqlx::migrate!("./migrations/sqlite"), "SQLite").await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.read_only(true))
            .await?;
        let written = Arc::new(AtomicBool::new(false));
        if sync == Durability::Normal {
            tokio::spawn(flush_now_and_then(writer.clone(), written.clone()));
        }
        let mut storage = SqliteStorage {
            writer,
            reader,
            path: path.to_path_buf(),
            migrated: migrated.into(),
            metric_queue: None,
            written,
            hot: raw::HotWriter::new(path, sync),
        };
        storage.metric_queue = Some(start_metric_writer(storage.clone()));
        Ok(storage)
    }

    fn describe_location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    async fn close_pools(&self) {
        self.hot.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The hot operations run on the one-hop path ([`raw`], `hot.rs`).
    fn one_hop(&self) -> Option<&SqliteStorage> {
        Some(self)
    }

    /// SQLite runs the hot operations on its one-hop path instead (`one_hop`).
    fn one_statement(&self) -> Option<&crate::postgres::PostgresStorage> {
        None
    }

    /// A connection of the read pool.
    async fn read_conn(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.reader.acquire().await?)
    }

    /// Start a write transaction (`BEGIN IMMEDIATE` on the writer connection). Write
    /// transactions run one at a time.
    ///
    /// A connection that cannot begin (it met a storage fault, or a cancelled request left it
    /// inside a transaction and the rollback fails) is closed rather than returned to the
    /// pool, so the next caller gets a fresh one.
    async fn begin(&self) -> Result<Tx> {
        let mut conn = self.writer.acquire().await?;
        if let Err(first) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            // A request cancelled between BEGIN and COMMIT can hand back a connection still
            // inside its transaction; roll that back and try once more.
            let retried = match sqlx::query("ROLLBACK").execute(&mut *conn).await {
                Ok(_) => sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await,
                Err(_) => Err(first),
            };
            if let Err(e) = retried {
                conn.close_on_drop();
                return Err(e.into());
            }
        }
        Ok(Tx {
            conn: Some(conn),
            faults_at_begin: error::faults_seen(),
            written: self.written.clone(),
        })
    }
}

/// A write transaction on the writer connection; dropped without [`Tx::commit`] it rolls
/// back. When a statement or the commit fails, the transaction is rolled back; if the
/// rollback fails too, or a storage fault was met meanwhile, the connection is closed
/// instead of going back to the pool.
struct Tx {
    /// `Some` for the whole life of the `Tx`: only `commit` (which consumes it) and `Drop`
    /// take it out.
    conn: Option<PoolConnection<Sqlite>>,
    /// [`error::faults_seen`] at `BEGIN`.
    faults_at_begin: u64,
    /// The storage's "written since the last flush" flag, set on commit.
    written: Arc<AtomicBool>,
}

impl Deref for Tx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_deref()
            .expect("a live transaction holds its connection")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_deref_mut()
            .expect("a live transaction holds its connection")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if error::faults_seen() != self.faults_at_begin {
            // Closing a connection rolls back whatever it had open.
            conn.close_on_drop();
            return;
        }
        // The rollback needs the runtime; the connection stays checked out until it is done,
        // so the next transaction cannot start before it.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                        conn.close().await.ok();
                    }
                });
            }
            // Closing a connection rolls back whatever it had open.
            Err(_) => conn.close_on_drop(),
        }
    }
}

impl Tx {
    /// Commit. On failure nothing of the transaction is stored, and the connection is closed
    /// (SQLite rolls back what it still held) so the next transaction starts on a fresh one.
    async fn commit(mut self) -> Result<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => {
                self.written.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await.ok();
                conn.close().await.ok();
                Err(e.into())
            }
        }
    }

    /// Roll back now (as `Drop` does, but awaited); a connection whose rollback fails is
    /// closed, which rolls back whatever it had open.
    async fn rollback(mut self) -> Result<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        if error::faults_seen() != self.faults_at_begin
            || sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err()
        {
            // After a fault, or a failed rollback, the connection is not reused.
            conn.close().await.ok();
        }
        Ok(())
    }
}

/// Write the points of a metric batch, series by series, inside the write transaction `conn`
/// (the SQLite side of `write_series_points`, see `queries.rs`): an upsert per point keyed by
/// (series, step). Steps above a series' highest step are new; the others may exist already
/// (a resent batch): those are looked up, so each series' count of points stays exact and the
/// finite values replaced are known (`replaced`). The points written.
///
/// Only the sqlx path uses it (a finish with told values): metric batches run on the one-hop
/// path (`metrics.rs`).
async fn write_series_points(
    conn: &mut SqliteConnection,
    writes: &mut [SeriesPoints],
) -> Result<u64> {
    let mut rows: Vec<(i64, i64, Option<f64>, i64)> = Vec::new();
    for w in writes.iter_mut() {
        let s = &mut w.state;
        let mut maybe_old: Vec<i64> = Vec::new();
        for &(step, value, time) in &w.points {
            if step <= s.last_step {
                maybe_old.push(step);
            } else {
                s.points += 1;
                s.highest = s.highest.max(step);
            }
            rows.push((s.id, step, value, time));
        }
        let mut fresh = maybe_old.len() as i64;
        for chunk in maybe_old.chunks(500) {
            let sql = format!(
                "SELECT step, value FROM metric_points WHERE series = $1 AND step IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(s.id);
            for step in chunk {
                q = q.bind(*step);
            }
            for row in q.fetch_all(&mut *conn).await? {
                fresh -= 1;
                let step: i64 = row.try_get("step")?;
                let old: Option<f64> = row.try_get("value")?;
                // The points are ascending and distinct by step.
                let new = w
                    .points
                    .binary_search_by_key(&step, |p| p.0)
                    .ok()
                    .and_then(|i| w.points[i].1);
                if let Some(old) = old.filter(|v| v.is_finite() && Some(*v) != new) {
                    w.replaced.push(old);
                }
            }
        }
        s.points += fresh;
    }
    // In key order, so the b-tree takes them as appends.
    rows.sort_unstable_by_key(|r| (r.0, r.1));
    upsert_metric_rows(conn, &rows).await
}

/// The series of a batch have no chunks here (see `queries.rs`).
const SERIES_TAIL: &str = ", NULL AS tail_first, NULL AS tail_points FROM metric_series s";

/// The relation of metric points `(series, step, value, time_ms)`: one row each.
const METRIC_POINTS: &str = "metric_points";

/// The finite metric points as `(series, lo, hi, at, last)` (lowest, highest, step, last: the
/// point's value three times), one row each; PostgreSQL has a row per chunk (see
/// `queries.rs`).
const METRIC_EXTREMES: &str =
    "(SELECT series, value AS lo, value AS hi, step AS at, value AS last \
     FROM metric_points WHERE value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308)";

impl SqliteStorage {
    async fn read_history(&self, run_id: &str) -> Result<Vec<HistoryPoint>> {
        self.raw_history(run_id).await
    }

    async fn read_series(
        &self,
        run_id: &str,
        name: &str,
        after_step: Option<i64>,
    ) -> Result<Vec<SeriesPoint>> {
        self.raw_series(run_id, name, after_step).await
    }

    async fn read_series_sample(
        &self,
        run_id: &str,
        name: &str,
        max_points: usize,
    ) -> Result<SeriesSample> {
        self.raw_series_sample(run_id, name, max_points).await
    }

    /// The value at the highest step of a series; `None` when it has no point.
    async fn read_last_value(&self, run_id: &str, name: &str) -> Result<Option<Option<f64>>> {
        let row = sqlx::query(
            "SELECT p.value AS value FROM metric_series s JOIN metric_points p ON p.series = s.id \
             WHERE s.run_id = $1 AND s.name = $2 ORDER BY p.step DESC LIMIT 1",
        )
        .bind(run_id)
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    /// The points `(step, name, value, time_ms)` of a run's series named `a` or `b`, by step.
    async fn read_curve_rows(
        &self,
        run_id: &str,
        a: &str,
        b: &str,
    ) -> Result<Vec<(i64, String, Option<f64>, i64)>> {
        let rows = sqlx::query(
            "SELECT p.step AS step, s.name AS name, p.value AS value, p.time_ms AS time_ms \
             FROM metric_series s JOIN metric_points p ON p.series = s.id \
             WHERE s.run_id = $1 AND (s.name = $2 OR s.name = $3) ORDER BY p.step",
        )
        .bind(run_id)
        .bind(a)
        .bind(b)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("step")?,
                    r.try_get("name")?,
                    r.try_get("value")?,
                    r.try_get("time_ms")?,
                ))
            })
            .collect()
    }
}

/// Points (rows) per insert statement of [`upsert_metric_rows`]: 4 parameters each.
const POINTS_PER_STATEMENT: usize = 250;

/// Upsert metric rows `(series, step, value, time_ms)` (distinct keys) with multi-row inserts;
/// the rows written.
async fn upsert_metric_rows(
    conn: &mut SqliteConnection,
    rows: &[(i64, i64, Option<f64>, i64)],
) -> Result<u64> {
    let mut written = 0;
    for chunk in rows.chunks(POINTS_PER_STATEMENT) {
        let mut sql =
            String::from("INSERT INTO metric_points (series, step, value, time_ms) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        sql.push_str(
            " ON CONFLICT (series, step) DO UPDATE SET value = excluded.value, time_ms = excluded.time_ms",
        );
        let mut q = sqlx::query(&sql);
        for (id, step, value, time) in chunk {
            q = q.bind(*id).bind(*step).bind(*value).bind(*time);
        }
        written += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(written)
}

include!("../queries.rs");

mod hot;
mod metrics;
pub mod raw;

pub(crate) use hot::RunEnd;

#[cfg(test)]
mod tests;
