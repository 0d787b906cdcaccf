//! # hyperdial-store
//!
//! Everything hyperdial keeps: projects, sweeps, runs, metric points, captured output and
//! agents, behind one interface, the [`Storage`] trait, reached through the clonable
//! [`Store`] handle. Two backends implement it with one copy of every query:
//!
//! - SQLite ([`sqlite`], the default, embedded): WAL mode with every commit flushed to the
//!   disk before it is acknowledged, so no acknowledged write is lost to a killed server or a
//!   power cut (`HYPERDIAL_SQLITE_SYNC=normal`: the log reaches the disk within a second of a
//!   write instead, and a power cut can lose that second); one writer connection and a small
//!   read-only pool beside it.
//! - PostgreSQL ([`postgres`]): a connection pool; row locks (`SELECT … FOR UPDATE`,
//!   `FOR UPDATE SKIP LOCKED`) where an operation reads before it writes, so several servers
//!   can share one database.
//!
//! [`Store::open`] takes a URL: `sqlite://PATH`, `sqlite:PATH` or a bare path for SQLite,
//! `postgres://…` or `postgresql://…` for PostgreSQL.
//!
//! The store records; it never decides. Which configuration runs next is the controller's
//! business (`hyperdial-server`). Every operation is atomic by itself and no transaction
//! crosses the seam: the controller reads a snapshot, decides outside any transaction, and
//! writes with a conditional operation ([`Storage::insert_suggested_run`],
//! [`Storage::transition_sweep`], [`Storage::finish_sweep_if_unchanged`]) that tells it when
//! the snapshot went stale. The locking contract is in `docs/ARCHITECTURE.md` ("Storage").

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use serde_json::Value;

mod dashboard;
mod error;
pub mod migrate;
pub mod postgres;
mod rows;
pub mod sqlite;
mod stopping;
mod storage;
mod summary;
pub mod testing;

pub use dashboard::{
    HistoryColumns, RunCondition, RunField, RunPoint, RunQuery, SeriesPoint, SeriesSample,
    MAX_NOTES_BYTES,
};
pub use error::{last_fault_ms, Fault, StoreError};
pub use hyperdial_wire::{EndCause, RunState, SweepState};
pub use migrate::AppliedMigration;
pub use rows::{Delivery, HistoryPoint, RunRow, SweepRow, TrialRow, MAX_DELIVERY_FILES};
pub use stopping::RunCurve;
pub use storage::{ChangeCheck, Checked, CurvePoint, Inserted, OwnWrite, Storage, SweepSnapshot};

/// Result alias of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh short id: `prefix` (`s` for sweeps, `r` for runs, `a` for agents), then 8 characters
/// of `[0-9a-z]`, so ids are recognizable in logs (`sk3x9q2ab`, `r7mz0c1d4`).
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
    /// The run's id when its caller chose it (a run outside a sweep that a later process may
    /// resume, [`Storage::reopen_run`]); `None` for a fresh one ([`new_id`]). An id already
    /// taken fails the insert as a unique violation.
    pub id: Option<String>,
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
    /// [`Storage::claim_queued`] hands it out.
    pub retry_of: Option<String>,
    /// Attempt number (default 1).
    pub attempt: Option<i64>,
    /// The idempotency key of the claim that hands this run out (a sweep's run claimed with a
    /// key; unique per sweep, see [`Storage::run_by_claim_key`]).
    pub claim_key: Option<String>,
}

/// A run to queue with given parameters and a seed ([`Storage::queue_repeats`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRepeat {
    /// The run of the same sweep whose configuration this repeats.
    pub repeat_of: String,
    /// Flat parameters by dotted name (the seed parameter, if any, already set to `seed`).
    pub params: Value,
    /// Nested config as the script sees it.
    pub config: Value,
    /// The seed it is given.
    pub seed: i64,
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

/// A finite JSON number (not a boolean, string or object): what counts as a metric value in
/// a summary.
pub fn finite_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    }
}

/// The error of a sweep run that an agent ran and that [`Storage::crash_silent_runs`] marked
/// crashed: its agent sent no heartbeat, metrics or output for the run timeout.
pub const AGENT_STOPPED_REPORTING: &str = "the agent stopped reporting";

/// The error of a sweep run that [`Storage::crash_runs`] marked crashed at once because the
/// process of its agent, on the server's machine, is gone.
pub const AGENT_PROCESS_GONE: &str = "its agent process is gone (this machine)";

/// The error a sweep run holds while its end, kept by its agent while the server was away,
/// is being uploaded after [`Storage::take_back_late_end`] took it back: such a run is not
/// marked crashed again for its gone agent (only for silence, should the upload stop).
pub const LATE_END_PENDING: &str =
    "its end arrived after it was marked crashed and is being uploaded";

/// The error of a queued retry that [`Storage::take_back_late_end`] withdrew: the run it
/// retried delivered its end after all. Such a run is `cancelled`, no longer a retry
/// (`retry_of` is cleared), and never ran.
pub const RETRY_WITHDRAWN: &str =
    "withdrawn before it started: the run it retried delivered its end late, after all";

/// The stop reason of a retry that [`Storage::take_back_late_end`] superseded while it ran:
/// the run it retried delivered its end late, after all. Its agent stops it; it ends
/// `cancelled` with [`RETRY_SUPERSEDED`].
pub const RETRY_SUPERSEDED_REASON: &str = "superseded";

/// The error of a retry that [`Storage::take_back_late_end`] superseded while it ran: the run
/// it retried delivered its end late, after all, and holds the trial's result. Such a run is
/// a repeat of that run (`repeat_of`, `retry_of` cleared): not counted toward `run_cap`.
pub const RETRY_SUPERSEDED: &str =
    "stopped: the run it retried delivered its end late, after all, and holds the result";

/// What [`Storage::take_back_late_end`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum LateEnd {
    /// The run is `running` again, its error [`LATE_END_PENDING`], to take its points and
    /// its end; `retry` says what became of its retry, if it had one.
    TakenBack {
        /// The run afterwards.
        run: Box<RunRow>,
        /// What became of the run's retry.
        retry: Option<RetryFate>,
    },
    /// The run is unknown, not a sweep run, not `crashed`, or crashed for another reason than
    /// one of those given: nothing changed.
    NotTaken,
}

/// What became of the retry of a run taken back for its late end ([`LateEnd::TakenBack`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RetryFate {
    /// It was `queued`: withdrawn, never run (`cancelled` with [`RETRY_WITHDRAWN`],
    /// `retry_of` cleared).
    Withdrawn(String),
    /// It had been claimed: it is now a repeat of the run (`repeat_of` the run, `retry_of`
    /// cleared), so it no longer counts toward `run_cap` and the run is the trial again. One
    /// still `running` is asked to stop ([`RETRY_SUPERSEDED_REASON`]); one that ended keeps
    /// its end, a second observation of the configuration.
    Superseded {
        /// The retry's id.
        retry: String,
        /// The retry's state when it was superseded.
        state: RunState,
    },
}

/// The error of a run outside a sweep (`hyperdial run`, a script using the Python client, any
/// client of `POST /api/v1/runs`) that [`Storage::crash_silent_runs`] marked crashed: nothing
/// (no heartbeat, metrics or output) came for the run timeout. Such a run is only presumed
/// crashed: a later report for it makes it `running` again (see the server's
/// `Controller::reporting_run`).
pub const RUN_STOPPED_REPORTING: &str =
    "the process tracking this run stopped reporting (no heartbeat, metrics or output for the run timeout)";

/// The error of a sweep run without an agent (an ask/tell trial: a client claimed it and was
/// to tell its result) that [`Storage::crash_silent_runs`] marked crashed after `timeout` of
/// silence: `no heartbeat or tell for 60 s (the client that asked for this trial stopped)`,
/// the seconds as a plain number (`1.5` for a fraction).
pub fn client_stopped_reporting(timeout: std::time::Duration) -> String {
    format!(
        "no heartbeat or tell for {} s (the client that asked for this trial stopped)",
        timeout.as_secs_f64()
    )
}

/// The finite values one run logged for one metric: see [`Storage::metric_spans`].
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

impl Objective<'_> {
    /// The best value so far after `value` of metric `name` is seen: `best` unless `name` is
    /// this objective's metric and `value` is finite and better (larger when maximizing,
    /// smaller otherwise; a tie keeps `best`).
    pub fn best_after(&self, best: Option<f64>, name: &str, value: Option<f64>) -> Option<f64> {
        match value.filter(|v| v.is_finite()) {
            Some(v) if name == self.name => match best {
                Some(b) if (self.maximize && v <= b) || (!self.maximize && v >= b) => Some(b),
                _ => Some(v),
            },
            _ => best,
        }
    }
}

/// How a run ends, with the values told at its end ([`Storage::finish_run_with_points`]'s
/// arguments), for [`Storage::finish_run_and_insert_suggested`].
#[derive(Debug, Clone, Copy)]
pub struct RunFinish<'a> {
    /// The run.
    pub run_id: &'a str,
    /// Metric points stored with the end (possibly none).
    pub points: &'a [Point],
    /// The sweep's metric, for the run's best value.
    pub objective: Option<Objective<'a>>,
    /// The final state.
    pub state: RunState,
    /// The process's exit code.
    pub exit_code: Option<i64>,
    /// Why it ended badly.
    pub error: Option<&'a str>,
    /// The run as the caller read it just before, when it did. A backend may then store the
    /// end (and the claim that follows it) in one statement guarded by it (PostgreSQL, see
    /// `postgres/hot.rs`): when the run changed since, it ends the run from the run as it is
    /// instead. Never needed for correctness.
    pub seen: Option<&'a RunRow>,
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
    pub state: Option<RunState>,
    /// Page size (default 1000).
    pub limit: Option<i64>,
    /// Page start.
    pub offset: Option<i64>,
}

/// The store: a cheap clonable handle on one backend ([`Storage`] through `Deref`).
#[derive(Debug, Clone)]
pub struct Store(Arc<dyn Storage>);

impl Deref for Store {
    type Target = dyn Storage;

    fn deref(&self) -> &(dyn Storage + 'static) {
        &*self.0
    }
}

/// Which backend a database URL names, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL server URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Location {
    /// Read a database URL: `sqlite://PATH`, `sqlite:PATH`, a bare path (SQLite), or
    /// `postgres://…`/`postgresql://…`. Any other `SCHEME://` is an error naming the URL.
    pub fn parse(url: &str) -> Result<Location> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::Url {
                    url: url.to_string(),
                    why: "no file named after `sqlite://`".into(),
                });
            }
            return Ok(Location::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(StoreError::Url {
                url: hyperdial_wire::redact_url(url),
                why: format!(
                    "unknown database scheme `{scheme}`; use sqlite://PATH, postgres://USER@HOST/DB, or a file path"
                ),
            });
        }
        if url.is_empty() {
            return Err(StoreError::Url {
                url: String::new(),
                why: "empty database location".into(),
            });
        }
        Ok(Location::Sqlite(url.into()))
    }
}

impl Store {
    /// Open (creating if needed) the database at `url` (see [`Location::parse`]) and bring its
    /// schema up to date. Errors: a bad URL ([`StoreError::Url`], naming it), a database that
    /// cannot be reached or created, a failed migration.
    pub async fn open(url: &str) -> Result<Store> {
        match Location::parse(url)? {
            Location::Sqlite(path) => Store::open_sqlite(&path).await,
            Location::Postgres(url) => Ok(Store::from_backend(
                postgres::PostgresStorage::open(&url).await?,
            )),
        }
    }

    /// Open (creating if needed) the SQLite database file at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        Ok(Store::from_backend(
            sqlite::SqliteStorage::open(path).await?,
        ))
    }

    /// A handle on any backend.
    pub fn from_backend(backend: impl Storage + 'static) -> Store {
        Store(Arc::new(backend))
    }
}

/// What [`Storage::merge_config`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigMerge {
    /// The merged config is stored.
    Merged,
    /// No run has that id.
    NoRun,
    /// Nothing was written: the merged config would hold this many values, more than allowed.
    TooLarge(usize),
}

/// The values a config holds, counted as its flattened `a.b.c` keys are: every value that is
/// not a non-empty object, the top level aside.
pub fn config_entries(config: &Value) -> usize {
    fn leaves(value: &Value) -> usize {
        match value {
            Value::Object(map) if !map.is_empty() => map.values().map(leaves).sum(),
            _ => 1,
        }
    }
    match config {
        Value::Object(map) => map.values().map(leaves).sum(),
        _ => 0,
    }
}

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

/// Which runs a metric batch is appended to (each backend's `append_points_in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendTo {
    /// Any run: a late batch of a run that has ended is kept.
    AnyRun,
    /// A run still `running` or `queued`, else nothing is written: a finish's told point,
    /// which belongs to the end it makes (two finishes at once store one's values).
    OpenRun,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_after_keeps_the_better_finite_value_of_the_objective_only() {
        let min = Objective {
            name: "loss",
            maximize: false,
        };
        let max = Objective {
            name: "acc",
            maximize: true,
        };
        assert_eq!(min.best_after(None, "loss", Some(2.0)), Some(2.0));
        assert_eq!(min.best_after(Some(2.0), "loss", Some(1.0)), Some(1.0));
        assert_eq!(min.best_after(Some(1.0), "loss", Some(3.0)), Some(1.0));
        assert_eq!(max.best_after(Some(1.0), "acc", Some(3.0)), Some(3.0));
        assert_eq!(max.best_after(Some(3.0), "acc", Some(1.0)), Some(3.0));
        assert_eq!(
            min.best_after(Some(1.0), "acc", Some(0.5)),
            Some(1.0),
            "another metric"
        );
        assert_eq!(min.best_after(Some(1.0), "loss", Some(f64::NAN)), Some(1.0));
        assert_eq!(min.best_after(None, "loss", Some(f64::NEG_INFINITY)), None);
        assert_eq!(min.best_after(Some(1.0), "loss", None), Some(1.0));
    }

    #[test]
    fn database_urls_name_their_backend() {
        assert_eq!(
            Location::parse("sqlite:///var/db/h.db").unwrap(),
            Location::Sqlite("/var/db/h.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:rel/h.db").unwrap(),
            Location::Sqlite("rel/h.db".into())
        );
        assert_eq!(
            Location::parse(".hyperdial/hyperdial.db").unwrap(),
            Location::Sqlite(".hyperdial/hyperdial.db".into())
        );
        for url in [
            "postgres://u@h/db",
            "postgresql://u:p@h:5432/db?sslmode=disable",
        ] {
            assert_eq!(
                Location::parse(url).unwrap(),
                Location::Postgres(url.into())
            );
        }
        let err = Location::parse("mysql://root:pw@h/db").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("mysql://root:***@h/db"), "{text}");
        assert!(text.contains("unknown database scheme `mysql`"), "{text}");
        assert!(!text.contains("pw"), "{text}");
        assert!(Location::parse("").is_err());
        assert!(Location::parse("sqlite://").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_named_with_its_cause_at_once() {
        // Nothing listens on port 1: the first connection is refused, and the error says so
        // once, with the URL (password hidden), instead of a pool timing out.
        let Err(err) = Store::open("postgres://hd:pw@127.0.0.1:1/hyperdial").await else {
            panic!("nothing listens on port 1, yet the database opened");
        };
        let text = err.to_string();
        assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
        assert!(
            text.contains("postgres://hd:***@127.0.0.1:1/hyperdial"),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert_eq!(text.matches("refused").count(), 1, "{text}");
        assert!(!text.contains("pw@"), "{text}");
        // Nothing listening may be a database still starting: worth waiting for.
        assert!(err.database_not_up(), "{err:?}");
        // A malformed URL is not.
        let Err(bad) = Store::open("postgres://hd:pw@127.0.0.1:notaport/h").await else {
            panic!("a malformed URL opened");
        };
        assert!(!bad.database_not_up(), "{bad:?}");
    }
}
