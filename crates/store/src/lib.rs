//! # hyperdial-store
//!
//! Everything hyperdial keeps: projects, sweeps, runs, metric points, captured output and
//! agents, behind one interface. The backend is SQLite in WAL mode with `synchronous=FULL`,
//! so every acknowledged write survives a killed server (and a power cut).
//!
//! The store records; it never decides. Which configuration runs next is the controller's
//! business (`hyperdial-server`), which calls [`Store::begin`] to get a [`Tx`] and makes its
//! decision inside that transaction.
//!
//! Writes go through a single connection, so write transactions are serialized without
//! SQLite's busy retries (two claims can never interleave); reads use a small pool of their
//! own, which WAL lets run beside the writer.
//!
//! SQL is kept valid for PostgreSQL too (`$n` placeholders, integer timestamps, JSON as text,
//! `ON CONFLICT` upserts), so a second backend can share these queries.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite};

mod dashboard;
mod error;
mod rows;
mod stopping;

pub use dashboard::{RunCondition, RunField, RunPoint, RunQuery, SeriesPoint, MAX_NOTES_BYTES};
pub use error::{Fault, StoreError};
pub use rows::{Delivery, HistoryPoint, RunRow, SweepRow, TrialRow, MAX_DELIVERY_FILES};
pub use stopping::RunCurve;

/// Result alias of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh short id: 8 characters of `[0-9a-z]`, prefixed by `prefix`'s first letter for runs
/// and agents so ids are recognizable in logs.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

/// A sweep to insert.
#[derive(Debug, Clone)]
pub struct NewSweep<'a> {
    /// Project name (created if missing).
    pub project: &'a str,
    /// Display name.
    pub name: Option<&'a str>,
    /// Search method name.
    pub method: &'a str,
    /// The config text as the user wrote it.
    pub source: &'a str,
    /// The file it came from, for display.
    pub source_file: Option<&'a str>,
    /// Hash of the validated config, to find a sweep to resume.
    pub config_hash: &'a str,
    /// The sweep's seed.
    pub seed: i64,
    /// Metric name, if any.
    pub metric_name: Option<&'a str>,
    /// `minimize` or `maximize`.
    pub goal: Option<&'a str>,
}

/// A run to insert.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    /// The sweep, or `None` for a manual run.
    pub sweep_id: Option<String>,
    /// Project name (created if missing).
    pub project: String,
    /// Position in the sweep (1-based).
    pub number: Option<i64>,
    /// Display name.
    pub name: Option<String>,
    /// Flat parameters by dotted name.
    pub params: Value,
    /// Nested config as the script sees it.
    pub config: Value,
    /// How the configuration was chosen.
    pub suggestion: Option<Value>,
    /// Grid position for finite-space strategies.
    pub grid_index: Option<i64>,
    /// The agent running it.
    pub agent_id: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// The command line.
    pub argv: Option<Value>,
    /// Git commit of the working tree.
    pub git_commit: Option<String>,
    /// Whether the tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The run this one retries; such a run is inserted `queued`, without an agent, until
    /// [`Tx::claim_queued`] hands it out.
    pub retry_of: Option<String>,
    /// Attempt number (default 1).
    pub attempt: Option<i64>,
}

/// One metric report: a step and named values (`None` is NaN or infinite).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The step; `None` takes the run's next step.
    pub step: Option<i64>,
    /// Wall time; `None` is now.
    pub time_ms: Option<i64>,
    /// Values by metric name.
    pub values: Vec<(String, Option<f64>)>,
}

/// SQL condition: a stored metric value that is a finite number (NULL stands for NaN;
/// infinities can be stored).
const FINITE: &str = "value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308";
const FINITE_L: &str = "l.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308";
const FINITE_M: &str = "m.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308";

/// A finite JSON number (not a boolean, string or object): what counts as a metric value in
/// a summary.
pub fn finite_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    }
}

/// The finite values one run logged for one metric: see [`Store::metric_spans`].
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpan {
    /// The run.
    pub run_id: String,
    /// Lowest finite value.
    pub lowest: f64,
    /// Highest finite value.
    pub highest: f64,
    /// The finite value of the highest step.
    pub last: f64,
}

/// The metric a sweep optimizes, for keeping each run's best value up to date.
#[derive(Debug, Clone, Copy)]
pub struct Objective<'a> {
    /// Metric name.
    pub name: &'a str,
    /// Larger is better.
    pub maximize: bool,
}

/// What a metric batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// Points (name, step pairs) written.
    pub accepted: usize,
    /// Whether the run has been asked to stop.
    pub stop: bool,
    /// Why.
    pub reason: Option<String>,
    /// The run's sweep metric after the batch.
    pub metric: Option<f64>,
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this sweep.
    pub sweep: Option<String>,
    /// Only runs of this project.
    pub project: Option<String>,
    /// Only runs in this state.
    pub state: Option<String>,
    /// Page size (default 1000).
    pub limit: Option<i64>,
    /// Page start.
    pub offset: Option<i64>,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
}

const RUN_COLUMNS: &str = "r.id, r.sweep_id, p.name AS project, r.number, r.name, r.state, r.params, r.config, \
     r.suggestion, r.grid_index, r.agent_id, r.host, r.argv, r.exit_code, r.error, r.metric, r.summary, \
     r.user_summary, r.next_step, r.git_commit, r.git_dirty, r.stop_requested, r.stop_reason, r.stop_info, r.created_ms, \
     r.started_ms, r.heartbeat_ms, r.finished_ms, r.retry_of, r.attempt, r.delivery";

const SWEEP_COLUMNS: &str = "s.id, p.name AS project, s.name, s.method, s.state, s.source, s.source_file, \
     s.config_hash, s.seed, s.next_number, s.metric_name, s.goal, s.notes, s.retries_only, s.created_ms, s.updated_ms";

impl Store {
    /// Open (creating if needed) the SQLite database at `path` and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
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
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Store {
            writer,
            reader,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Close both pools, flushing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Start a write transaction (`BEGIN IMMEDIATE` on the writer connection). Write
    /// transactions run one at a time.
    ///
    /// A connection that cannot begin (it met a storage fault, or a cancelled request left it
    /// inside a transaction and the rollback fails) is closed rather than returned to the pool,
    /// so the next caller gets a fresh one.
    pub async fn begin(&self) -> Result<Tx> {
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
            tx: Writer(Some(conn)),
            faults_at_begin: error::faults_seen(),
        })
    }

    // ---- sweeps -------------------------------------------------------------------------

    /// Insert a sweep in state `running`.
    pub async fn insert_sweep(&self, new: NewSweep<'_>) -> Result<SweepRow> {
        let mut tx = self.begin().await?;
        let project_id = tx.project_id(new.project).await?;
        let id = new_id("s");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sweeps (id, project_id, name, method, state, source, source_file, config_hash, seed, \
             metric_name, goal, created_ms, updated_ms) VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(&id)
        .bind(project_id)
        .bind(new.name)
        .bind(new.method)
        .bind(new.source)
        .bind(new.source_file)
        .bind(new.config_hash)
        .bind(new.seed)
        .bind(new.metric_name)
        .bind(new.goal)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        let row = tx.sweep(&id).await?.ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        Ok(row)
    }

    /// The newest unfinished sweep of `project` with this config hash, to resume it.
    pub async fn find_resumable(
        &self,
        project: &str,
        config_hash: &str,
    ) -> Result<Option<SweepRow>> {
        let sql = format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id \
             WHERE p.name = $1 AND s.config_hash = $2 AND s.state IN ('running', 'paused') \
             ORDER BY s.created_ms DESC LIMIT 1"
        );
        Ok(sqlx::query_as::<_, SweepRow>(&sql)
            .bind(project)
            .bind(config_hash)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// One sweep.
    pub async fn sweep(&self, id: &str) -> Result<Option<SweepRow>> {
        let sql = format!("SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id WHERE s.id = $1");
        Ok(sqlx::query_as::<_, SweepRow>(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Sweeps, newest first, optionally of one project.
    pub async fn sweeps(&self, project: Option<&str>) -> Result<Vec<SweepRow>> {
        let sql = format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id \
             WHERE (CAST($1 AS TEXT) IS NULL OR p.name = $1) ORDER BY s.created_ms DESC, s.id"
        );
        Ok(sqlx::query_as::<_, SweepRow>(&sql)
            .bind(project)
            .fetch_all(&self.reader)
            .await?)
    }

    /// Set a sweep's state.
    pub async fn set_sweep_state(&self, id: &str, state: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.set_sweep_state(id, state).await?;
        tx.commit().await
    }

    /// Number of runs of a sweep in each state.
    pub async fn sweep_counts(&self, id: &str) -> Result<BTreeMap<String, i64>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM runs WHERE sweep_id = $1 GROUP BY state")
                .bind(id)
                .fetch_all(&self.reader)
                .await?;
        let mut counts = BTreeMap::new();
        for row in rows {
            counts.insert(
                row.try_get::<String, _>("state")?,
                row.try_get::<i64, _>("n")?,
            );
        }
        Ok(counts)
    }

    /// The run with the best metric in a sweep.
    pub async fn best_run(&self, sweep_id: &str, maximize: bool) -> Result<Option<RunRow>> {
        let order = if maximize { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id \
             WHERE r.sweep_id = $1 AND r.metric IS NOT NULL ORDER BY r.metric {order}, r.number LIMIT 1"
        );
        Ok(sqlx::query_as::<_, RunRow>(&sql)
            .bind(sweep_id)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Ask every running run of a sweep to stop.
    pub async fn request_stop_for_sweep(&self, sweep_id: &str, reason: &str) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = tx.request_stop_for_sweep(sweep_id, reason).await?;
        tx.commit().await?;
        Ok(n)
    }

    // ---- agents and runs ----------------------------------------------------------------

    /// Register an agent.
    pub async fn register_agent(
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
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Host name an agent registered with.
    pub async fn agent_host(&self, agent_id: &str) -> Result<Option<Option<String>>> {
        let row = sqlx::query("SELECT host FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("host").ok().flatten()))
    }

    /// Insert a run in state `running` outside any transaction (manual runs).
    pub async fn insert_run(&self, new: NewRun) -> Result<RunRow> {
        let mut tx = self.begin().await?;
        let run = tx.insert_run(new).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// One run.
    pub async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = $1");
        Ok(sqlx::query_as::<_, RunRow>(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Runs matching `filter`, ordered by sweep position (then creation), and the total count.
    pub async fn runs(&self, filter: &RunFilter) -> Result<(Vec<RunRow>, i64)> {
        let condition = "(CAST($1 AS TEXT) IS NULL OR r.sweep_id = $1) AND (CAST($2 AS TEXT) IS NULL OR p.name = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR r.state = $3)";
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition} \
             ORDER BY r.number, r.created_ms, r.id LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query_as::<_, RunRow>(&sql)
            .bind(&filter.sweep)
            .bind(&filter.project)
            .bind(&filter.state)
            .bind(filter.limit.unwrap_or(1000).clamp(1, 100_000))
            .bind(filter.offset.unwrap_or(0).max(0))
            .fetch_all(&self.reader)
            .await?;
        let total_sql =
            format!("SELECT COUNT(*) AS n FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition}");
        let total: i64 = sqlx::query(&total_sql)
            .bind(&filter.sweep)
            .bind(&filter.project)
            .bind(&filter.state)
            .fetch_one(&self.reader)
            .await?
            .try_get("n")?;
        Ok((rows, total))
    }

    /// Record the argv a run's process was started with and, when `git_commit` is given, the
    /// git state of its working directory (else the stored one stays). Returns false for an
    /// unknown run.
    pub async fn set_argv(
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
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Merge `values` (the training script's own config: its defaults and later additions)
    /// into a run's stored config, nested objects key by key, then lay `locked` over the result
    /// (a sweep run's values from its sweep, which the script's never replace). Returns false
    /// for an unknown run.
    pub async fn merge_config(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        locked: Option<&Value>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT config FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&mut *tx.tx)
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut config: Value = serde_json::from_str(&row.try_get::<String, _>("config")?)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Map::new()));
        deep_merge(&mut config, &Value::Object(values.clone()));
        if let Some(locked) = locked {
            deep_merge(&mut config, locked);
        }
        sqlx::query("UPDATE runs SET config = $2 WHERE id = $1")
            .bind(run_id)
            .bind(config.to_string())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Record a heartbeat; returns whether the run should stop, or `None` for an unknown run.
    pub async fn heartbeat(&self, run_id: &str) -> Result<Option<(bool, Option<String>)>> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE runs SET heartbeat_ms = $2 WHERE id = $1")
            .bind(run_id)
            .bind(now_ms())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        self.stop_flag(run_id).await
    }

    async fn stop_flag(&self, run_id: &str) -> Result<Option<(bool, Option<String>)>> {
        let row = sqlx::query("SELECT stop_requested, stop_reason FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.writer)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("stop_requested")?, r.try_get("stop_reason")?)),
            None => None,
        })
    }

    /// Append metric points to a run in one transaction, keep its summary (last value of each
    /// metric) and, given the sweep's objective, its metric up to date: the best finite value
    /// of its history and of its explicit summary (W&B's `metric_extremum`).
    /// Returns `None` for an unknown run.
    pub async fn append_metrics(
        &self,
        run_id: &str,
        points: &[Point],
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Appended>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT next_step, summary, metric, stop_requested, stop_reason FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&mut *tx.tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut next_step: i64 = row.try_get("next_step")?;
        let mut summary: Map<String, Value> =
            serde_json::from_str(&row.try_get::<String, _>("summary")?).unwrap_or_default();
        let mut metric: Option<f64> = row.try_get("metric")?;
        let now = now_ms();
        let mut accepted = 0;
        // Multi-row inserts in chunks keep large batches to a few statements.
        let mut flat: Vec<(i64, &str, Option<f64>, i64)> = Vec::new();
        for p in points {
            let step = p.step.unwrap_or(next_step);
            next_step = next_step.max(step + 1);
            let time = p.time_ms.unwrap_or(now);
            for (name, value) in &p.values {
                flat.push((step, name, *value, time));
                summary.insert(name.clone(), value.map(Value::from).unwrap_or(Value::Null));
                if let (Some(obj), Some(v)) = (objective, value.filter(|v| v.is_finite())) {
                    if obj.name == name {
                        let better = match metric {
                            None => true,
                            Some(m) if obj.maximize => v > m,
                            Some(m) => v < m,
                        };
                        if better {
                            metric = Some(v);
                        }
                    }
                }
            }
        }
        for chunk in flat.chunks(200) {
            let mut sql =
                String::from("INSERT INTO metrics (run_id, name, step, value, time_ms) VALUES ");
            for i in 0..chunk.len() {
                let b = i * 5;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                ));
            }
            sql.push_str(" ON CONFLICT (run_id, name, step) DO UPDATE SET value = excluded.value, time_ms = excluded.time_ms");
            let mut q = sqlx::query(&sql);
            for (step, name, value, time) in chunk {
                q = q
                    .bind(run_id)
                    .bind(*name)
                    .bind(*step)
                    .bind(*value)
                    .bind(*time);
            }
            accepted += q.execute(&mut *tx.tx).await?.rows_affected() as usize;
        }
        sqlx::query("UPDATE runs SET next_step = $2, summary = $3, metric = $4, heartbeat_ms = $5 WHERE id = $1")
            .bind(run_id)
            .bind(next_step)
            .bind(Value::Object(summary).to_string())
            .bind(metric)
            .bind(now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Appended {
            accepted,
            stop: row.try_get("stop_requested")?,
            reason: row.try_get("stop_reason")?,
            metric,
        }))
    }

    /// The last logged value of one metric: `None` if never logged, `Some(None)` if NaN.
    pub async fn last_value(&self, run_id: &str, name: &str) -> Result<Option<Option<f64>>> {
        let row = sqlx::query(
            "SELECT value FROM metrics WHERE run_id = $1 AND name = $2 ORDER BY step DESC LIMIT 1",
        )
        .bind(run_id)
        .bind(name)
        .fetch_optional(&self.writer)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    /// Every metric point of a run, grouped by step.
    pub async fn history(&self, run_id: &str) -> Result<Vec<HistoryPoint>> {
        let rows = sqlx::query(
            "SELECT step, name, value, time_ms FROM metrics WHERE run_id = $1 ORDER BY step, name",
        )
        .bind(run_id)
        .fetch_all(&self.reader)
        .await?;
        let mut out: Vec<HistoryPoint> = Vec::new();
        for r in rows {
            let step: i64 = r.try_get("step")?;
            let name: String = r.try_get("name")?;
            let value: Option<f64> = r.try_get("value")?;
            let time_ms: i64 = r.try_get("time_ms")?;
            if out.last().map(|p| p.step) != Some(step) {
                out.push(HistoryPoint {
                    step,
                    time_ms,
                    values: Map::new(),
                });
            }
            let last = out.last_mut().expect("pushed above");
            last.time_ms = last.time_ms.max(time_ms);
            last.values
                .insert(name, value.map(Value::from).unwrap_or(Value::Null));
        }
        Ok(out)
    }

    /// Append captured output.
    pub async fn append_output(&self, run_id: &str, stream: &str, text: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO outputs (run_id, stream, text, time_ms) SELECT id, $2, $3, $4 FROM runs WHERE id = $1",
        )
        .bind(run_id)
        .bind(stream)
        .bind(text)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        sqlx::query("UPDATE runs SET heartbeat_ms = $2 WHERE id = $1")
            .bind(run_id)
            .bind(now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The captured output of a run, in arrival order.
    pub async fn output(&self, run_id: &str) -> Result<String> {
        let rows = sqlx::query("SELECT text FROM outputs WHERE run_id = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(&self.reader)
            .await?;
        let mut out = String::new();
        for r in rows {
            out.push_str(&r.try_get::<String, _>("text")?);
        }
        Ok(out)
    }

    /// Merge values into the run's explicit summary. Given the sweep's objective and a value
    /// for it, the run's metric becomes the best finite value of its history and the new
    /// summary value (a summary value counts as one more report of the metric, as in W&B;
    /// a replaced summary value no longer counts). Returns `None` for an unknown run, else
    /// the run's metric afterwards.
    pub async fn set_user_summary(
        &self,
        run_id: &str,
        values: &Map<String, Value>,
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Option<f64>>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT user_summary, metric FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&mut *tx.tx)
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
            let aggregate = if obj.maximize { "MAX" } else { "MIN" };
            let sql = format!(
                "SELECT {aggregate}(value) AS v FROM metrics WHERE run_id = $1 AND name = $2 AND {FINITE}"
            );
            let logged: Option<f64> = sqlx::query(&sql)
                .bind(run_id)
                .bind(obj.name)
                .fetch_one(&mut *tx.tx)
                .await?
                .try_get("v")?;
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
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(Some(metric))
    }

    /// For every run of a sweep that logged finite values of `name`: the lowest, the highest
    /// and the last (by step) of them. The summary is not included. One query over the
    /// sweep's points of that metric; the controller asks only when a run must be imputed.
    pub async fn metric_spans(&self, sweep_id: &str, name: &str) -> Result<Vec<MetricSpan>> {
        let sql = format!(
            "SELECT m.run_id AS run_id, MIN(m.value) AS lo, MAX(m.value) AS hi, \
             (SELECT l.value FROM metrics l WHERE l.run_id = m.run_id AND l.name = $2 AND {FINITE_L} \
              ORDER BY l.step DESC LIMIT 1) AS last \
             FROM metrics m JOIN runs r ON r.id = m.run_id \
             WHERE r.sweep_id = $1 AND m.name = $2 AND {FINITE_M} GROUP BY m.run_id"
        );
        let rows = sqlx::query(&sql)
            .bind(sweep_id)
            .bind(name)
            .fetch_all(&self.reader)
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

    /// End a run. A run already in a final state keeps it (a late finish cannot revive a
    /// cancelled or crashed run). Returns the run, or `None` if unknown.
    pub async fn finish_run(
        &self,
        run_id: &str,
        state: &str,
        exit_code: Option<i64>,
        error: Option<&str>,
    ) -> Result<Option<RunRow>> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE runs SET state = $2, exit_code = $3, error = $4, finished_ms = $5 \
             WHERE id = $1 AND state IN ('running', 'queued')",
        )
        .bind(run_id)
        .bind(state)
        .bind(exit_code)
        .bind(error)
        .bind(now_ms())
        .execute(&mut *tx.tx)
        .await?;
        let row = tx.run(run_id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Record metric points a client could not deliver: `missing` more points are reported
    /// missing (spilled to a local file or dropped), `recovered` more were uploaded later (by
    /// `hyperdial sync`), and `files` names the local files holding them (added once each,
    /// at most [`MAX_DELIVERY_FILES`] kept). Works in every state, a finished run included.
    /// Returns the run, or `None` if unknown.
    pub async fn add_delivery(
        &self,
        run_id: &str,
        missing: u64,
        recovered: u64,
        files: &[String],
    ) -> Result<Option<RunRow>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT delivery FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&mut *tx.tx)
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
            .execute(&mut *tx.tx)
            .await?;
        let run = tx.run(run_id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// The process keys of the agents that have sweep runs `running`, each with those runs'
    /// ids (see `hyperdial_procid`).
    pub async fn running_agent_processes(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT a.process_key AS process_key, r.id AS id FROM runs r JOIN agents a ON a.id = r.agent_id \
             WHERE r.state = 'running' AND r.sweep_id IS NOT NULL AND a.process_key IS NOT NULL \
             ORDER BY a.process_key",
        )
        .fetch_all(&self.reader)
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

    /// Mark the given runs crashed with `error`, those still `running`; returns their ids.
    pub async fn crash_runs(&self, ids: &[String], error: &str) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let mut crashed = Vec::new();
        for id in ids {
            let done = sqlx::query(
                "UPDATE runs SET state = 'crashed', error = $2, finished_ms = $3 \
                 WHERE id = $1 AND state = 'running'",
            )
            .bind(id)
            .bind(error)
            .bind(now_ms())
            .execute(&mut *tx.tx)
            .await?;
            if done.rows_affected() > 0 {
                crashed.push(id.clone());
            }
        }
        tx.commit().await?;
        Ok(crashed)
    }

    /// Mark sweep runs whose agent has been silent since before `cutoff_ms` as crashed.
    pub async fn crash_silent_runs(&self, cutoff_ms: i64) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "UPDATE runs SET state = 'crashed', error = 'the agent stopped reporting', finished_ms = $2 \
             WHERE state = 'running' AND sweep_id IS NOT NULL AND COALESCE(heartbeat_ms, started_ms, created_ms) < $1 \
             RETURNING id",
        )
        .bind(cutoff_ms)
        .bind(now_ms())
        .fetch_all(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
            .collect()
    }
}

/// A write transaction on the writer connection; dropped without [`Tx::commit`] it rolls
/// back.
///
/// Every write of the store runs in one, so a write is acknowledged only once its `COMMIT`
/// has succeeded. When a statement or the commit fails, the transaction is rolled back; if
/// the rollback fails too (SQLite may already have rolled back on its own after
/// `SQLITE_FULL` or an I/O error), or a storage fault was met meanwhile, the connection is
/// closed instead of going back to the pool: no later request runs inside a half-failed
/// transaction, and the next one opens a fresh connection.
pub struct Tx {
    tx: Writer,
    /// [`error::faults_seen`] at `BEGIN`.
    faults_at_begin: u64,
}

/// The writer connection, held by one transaction from `BEGIN` to `COMMIT` or `ROLLBACK`.
/// It is `Some` for the whole life of the [`Tx`] that owns it: only [`Tx::commit`] (which
/// consumes the `Tx`) and `Drop` take it out.
struct Writer(Option<PoolConnection<Sqlite>>);

impl Deref for Writer {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.0
            .as_deref()
            .expect("a live transaction holds its connection")
    }
}

impl DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.0
            .as_deref_mut()
            .expect("a live transaction holds its connection")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.tx.0.take() else {
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
    pub async fn commit(mut self) -> Result<()> {
        let Some(mut conn) = self.tx.0.take() else {
            return Ok(());
        };
        match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await.ok();
                conn.close().await.ok();
                Err(e.into())
            }
        }
    }

    /// The id of a project, created if missing.
    pub async fn project_id(&mut self, name: &str) -> Result<i64> {
        sqlx::query(
            "INSERT INTO projects (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await?;
        Ok(sqlx::query("SELECT id FROM projects WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *self.tx)
            .await?
            .try_get("id")?)
    }

    /// One sweep, read inside the transaction.
    pub async fn sweep(&mut self, id: &str) -> Result<Option<SweepRow>> {
        let sql = format!("SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id WHERE s.id = $1");
        Ok(sqlx::query_as::<_, SweepRow>(&sql)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Set a sweep's state.
    pub async fn set_sweep_state(&mut self, id: &str, state: &str) -> Result<()> {
        sqlx::query("UPDATE sweeps SET state = $2, updated_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(state)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Ask every running or queued run of a sweep to stop; returns how many were asked.
    pub async fn request_stop_for_sweep(&mut self, sweep_id: &str, reason: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE runs SET stop_requested = TRUE, stop_reason = $2 WHERE sweep_id = $1 AND state IN ('running', 'queued')",
        )
        .bind(sweep_id)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// Number of runs of a sweep still running or queued, read inside the transaction.
    pub async fn runs_in_flight(&mut self, sweep_id: &str) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM runs WHERE sweep_id = $1 AND state IN ('running', 'queued')",
        )
        .bind(sweep_id)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("n")?)
    }

    /// What the strategy needs to know about every run of a sweep.
    pub async fn trials(&mut self, sweep_id: &str) -> Result<Vec<TrialRow>> {
        Ok(sqlx::query_as::<_, TrialRow>(
            "SELECT id, retry_of, attempt, params, grid_index, metric, state, summary, user_summary, error FROM runs WHERE sweep_id = $1 ORDER BY number",
        )
        .bind(sweep_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// Take the next run number of a sweep.
    pub async fn next_number(&mut self, sweep_id: &str) -> Result<i64> {
        let n: i64 = sqlx::query("SELECT next_number FROM sweeps WHERE id = $1")
            .bind(sweep_id)
            .fetch_one(&mut *self.tx)
            .await?
            .try_get("next_number")?;
        sqlx::query("UPDATE sweeps SET next_number = $2, updated_ms = $3 WHERE id = $1")
            .bind(sweep_id)
            .bind(n + 1)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await?;
        Ok(n)
    }

    /// Insert a run in state `running`, or `queued` (not started, no agent) when it is a retry
    /// ([`NewRun::retry_of`]).
    pub async fn insert_run(&mut self, new: NewRun) -> Result<RunRow> {
        let project_id = self.project_id(&new.project).await?;
        let id = new_id("r");
        let now = now_ms();
        let queued = new.retry_of.is_some();
        let started = (!queued).then_some(now);
        sqlx::query(
            "INSERT INTO runs (id, sweep_id, project_id, number, name, state, params, config, suggestion, grid_index, \
             agent_id, host, argv, git_commit, git_dirty, created_ms, started_ms, heartbeat_ms, retry_of, attempt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19)",
        )
        .bind(&id)
        .bind(&new.sweep_id)
        .bind(project_id)
        .bind(new.number)
        .bind(&new.name)
        .bind(if queued { "queued" } else { "running" })
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
        .execute(&mut *self.tx)
        .await?;
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = $1");
        Ok(sqlx::query_as::<_, RunRow>(&sql)
            .bind(&id)
            .fetch_one(&mut *self.tx)
            .await?)
    }
}

impl Tx {
    /// One run, read inside the transaction.
    pub async fn run(&mut self, id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = $1");
        Ok(sqlx::query_as::<_, RunRow>(&sql)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Hand the oldest `queued` run of a sweep to an agent: it becomes `running` now.
    pub async fn claim_queued(
        &mut self,
        sweep_id: &str,
        agent_id: Option<&str>,
        host: Option<&str>,
    ) -> Result<Option<RunRow>> {
        let row = sqlx::query(
            "SELECT id FROM runs WHERE sweep_id = $1 AND state = 'queued' ORDER BY number, created_ms LIMIT 1",
        )
        .bind(sweep_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let now = now_ms();
        sqlx::query(
            "UPDATE runs SET state = 'running', agent_id = $2, host = $3, started_ms = $4, heartbeat_ms = $4 \
             WHERE id = $1",
        )
        .bind(&id)
        .bind(agent_id)
        .bind(host)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        self.run(&id).await
    }

    /// Set whether a sweep only hands out its queued retries (see [`SweepRow::retries_only`]).
    pub async fn set_retries_only(&mut self, id: &str, retries_only: bool) -> Result<()> {
        sqlx::query("UPDATE sweeps SET retries_only = $2, updated_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(retries_only)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Tx {
    /// End the `queued` runs of a sweep as `cancelled` (the sweep is over before they started;
    /// `action` names what ended it, e.g. `stop`). Returns how many there were.
    pub async fn cancel_queued(&mut self, sweep_id: &str, action: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE runs SET state = 'cancelled', error = $2, finished_ms = $3 \
             WHERE sweep_id = $1 AND state = 'queued'",
        )
        .bind(sweep_id)
        .bind(format!(
            "not started: the sweep was ended by `{action}` first"
        ))
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Of a sweep's runs: how many are retries of another run, and how many `failed` or
    /// `crashed` ones have not been retried (what `hyperdial retry SWEEP` would queue).
    pub async fn retry_counts(&self, sweep_id: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN r.retry_of IS NOT NULL THEN 1 ELSE 0 END), 0) AS retries, \
             COALESCE(SUM(CASE WHEN r.state IN ('failed', 'crashed') \
                 AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.retry_of = r.id) THEN 1 ELSE 0 END), 0) AS retryable \
             FROM runs r WHERE r.sweep_id = $1",
        )
        .bind(sweep_id)
        .fetch_one(&self.reader)
        .await?;
        Ok((row.try_get("retries")?, row.try_get("retryable")?))
    }

    /// The newest finished sweep of `project` with this config hash (what `tune` offers to show
    /// or retry when the file's sweep is over).
    pub async fn find_finished(
        &self,
        project: &str,
        config_hash: &str,
    ) -> Result<Option<SweepRow>> {
        let sql = format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps s JOIN projects p ON p.id = s.project_id \
             WHERE p.name = $1 AND s.config_hash = $2 AND s.state = 'finished' \
             ORDER BY s.created_ms DESC LIMIT 1"
        );
        Ok(sqlx::query_as::<_, SweepRow>(&sql)
            .bind(project)
            .bind(config_hash)
            .fetch_optional(&self.reader)
            .await?)
    }
}

#[cfg(test)]
mod tests;

/// Lay `over` onto `base`: objects are merged key by key (recursively), anything else replaces.
fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) if slot.is_object() && value.is_object() => deep_merge(slot, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}
