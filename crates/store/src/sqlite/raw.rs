//! One hop per operation: a whole SQLite transaction run synchronously on one connection.
//!
//! sqlx runs every SQLite statement on its connection's own worker thread and hands each
//! result back through a channel: two thread switches per statement. An ask/tell trial takes
//! a couple of dozen statements, so on a small machine most of the server's time went to
//! waking threads rather than to SQLite. The hot operations run instead, all of their
//! statements from `BEGIN` to `COMMIT`, synchronously on the calling thread:
//!
//! - [`SqliteStorage::write`] and [`SqliteStorage::read_on_writer`] on the storage's own
//!   writer connection ([`HotWriter`]): a [`rusqlite::Connection`] opened by this module on
//!   the database file, taken by one operation at a time (an async lock, no thread hop), which
//!   keeps its prepared statements from one operation to the next. Preparing (parsing and
//!   planning) the couple of dozen statements of a trial anew each time was, once the thread
//!   hops were gone, the largest part of the server's time per trial.
//! - [`SqliteStorage::read`] on a connection of sqlx's read-only pool, taken from its worker
//!   ([`sqlx::sqlite::SqliteConnection::lock_handle`], one round trip) and wrapped for the
//!   operation ([`rusqlite::Connection::from_handle`]); its statements are prepared per
//!   operation (these are the long reads: a whole history, every run of a sweep).
//!
//! # Checkpoints
//!
//! SQLite copies the write-ahead log into the database file (a checkpoint) by default in the
//! commit that takes the log past 1,000 pages: about every fifty ask/tell trials, one request
//! copied a thousand pages and, under `synchronous=FULL`, synced the log and the database
//! file, while the client waited. [`HotWriter`]'s connection has a log hook instead
//! ([`wal_hook`], which replaces SQLite's automatic checkpoint on that connection) that wakes
//! a checkpointer thread with a connection of its own. The thread copies the log beside the
//! writers (`PASSIVE`), then once more with the hot writer held, which leaves only the frames
//! committed meanwhile to copy and the whole log copied, so the next commit starts the log
//! again from its beginning. The log file keeps the largest size the log reached: a few MiB
//! when the thread keeps up (about 5 MiB at 500 trials/s under `FULL`), more when a round
//! waits (under `NORMAL` the once-a-second flush is a checkpoint too, and only one runs at a
//! time: up to 27 MiB was seen at 1,300 trials/s). It is bounded when the thread falls behind:
//! a commit that takes the log past 8,000 pages (32 MiB) checkpoints inline, as SQLite would
//! have at 1,000; and a log that grew while a long read kept it from being copied is cut back
//! to 64 MiB when it starts again (`journal_size_limit`). Durability does not depend on
//! checkpoints: a commit is durable (under `FULL`) once its own sync of the log returns.
//!
//! Reads run inside a read transaction, so every statement of the operation sees one
//! snapshot. The write transactions of sqlx's own writer connection (`Tx` in the parent
//! module, the operations off the hot path) and of [`HotWriter`] are serialized by SQLite's
//! write lock (both begin with `BEGIN IMMEDIATE`), as those of two processes on one file are.
//!
//! The section never sleeps on a lock: SQLite's busy wait would hold the thread (a runtime
//! worker) while another connection on the file (sqlx's writer, or another process) finishes.
//! `BEGIN IMMEDIATE` runs with no busy timeout; a busy database releases the connection and
//! the write is tried again after a short pause, off the thread, for up to
//! [`super::BUSY_TIMEOUT`] before it answers busy. Reads in WAL mode do not wait for writers.
//!
//! # Why the `unsafe` is sound
//!
//! It concerns the reader pool's connections only ([`HotWriter`]'s connection is rusqlite's
//! own, closed by rusqlite after it finalized its statements).
//!
//! - **One SQLite.** `rusqlite` is pinned to the version that uses the same `libsqlite3-sys`
//!   as sqlx (the build has one copy of it, so one linked SQLite library and one
//!   `sqlite3` type: a mismatch would not compile).
//! - **Exclusive access.** Connections are opened `SQLITE_OPEN_NOMUTEX`: one thread at a time
//!   may use one. While the [`sqlx::sqlite::LockedSqliteHandle`] guard lives, sqlx's worker
//!   thread is parked waiting for that guard's mutex and makes no call on the handle or any of
//!   its statements; the wrapper is created after the guard and dropped before it, inside one
//!   synchronous section (no `.await` in between), so the future can neither be cancelled nor
//!   moved to another thread halfway.
//! - **The wrapper never closes the handle.** It is built with
//!   [`rusqlite::Connection::from_handle`], which does not own the handle (dropping it only
//!   finalizes the statements it prepared, so none outlives the section: sqlx's close would
//!   fail on one); closing stays sqlx's business. `rusqlite` is built without its `hooks`
//!   feature, whose drop would clear handlers sqlx may have set.
//! - **Transactions end inside the section.** Every `BEGIN` is matched by a `COMMIT` or a
//!   `ROLLBACK` before the guard is released (a connection found still inside a transaction is
//!   rolled back first), so sqlx's own idea of the connection (no transaction open; its
//!   prepared statements untouched) stays true when its worker takes the connection back.
//!
//! # Faults
//!
//! The rules of the sqlx path (`Tx` in the parent module) hold here too. A `rusqlite` error is
//! sorted exactly as an sqlx error of the same SQLite result code (it is carried as a
//! [`sqlx::Error::Database`] whose code is the extended result code: `SQLITE_FULL` is
//! [`StoreError::DiskFull`], `SQLITE_IOERR_*` is [`StoreError::Io`], a unique-key violation
//! is [`StoreError::is_unique_violation`], …), so a storage fault is counted
//! (`error::faults_seen`) and answered as on every other path. A failed operation or commit is
//! rolled back inside the section; if the rollback fails, or a storage fault was met while the
//! transaction was open, or the commit itself failed, the connection is closed instead of
//! being used again (a pooled one does not go back to its pool; [`HotWriter`]'s is dropped and
//! opened afresh by the next operation), so no later operation runs inside a half-failed
//! transaction. After each commit the storage's `written` flag is set, as `Tx::commit` does,
//! so [`super::Durability::Normal`] flushes the log within [`super::SYNC_EVERY`].

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use std::path::{Path, PathBuf};

use rusqlite::ffi;
use rusqlite::{Connection, OpenFlags};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::sqlite::SqliteConnection;

use super::{Durability, SqliteStorage, BUSY_TIMEOUT};
use crate::error;
use crate::{Result, StoreError};

/// A failed SQLite call of the raw path: its extended result code and SQLite's message. It
/// reaches [`StoreError`] as the [`sqlx::Error::Database`] sqlx itself would have made of the
/// same failure, so faults are sorted by one rule.
#[derive(Debug, thiserror::Error)]
#[error("(code: {code}) {message}")]
pub struct SqliteFailure {
    /// The extended result code (`SQLITE_FULL` = 13, `SQLITE_IOERR_WRITE` = 778, …).
    code: i32,
    /// SQLite's message.
    message: String,
}

impl DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let e = match e {
            rusqlite::Error::SqliteFailure(failure, message) => {
                sqlx::Error::Database(Box::new(SqliteFailure {
                    code: failure.extended_code,
                    message: message.unwrap_or_else(|| failure.to_string()),
                }))
            }
            rusqlite::Error::QueryReturnedNoRows => sqlx::Error::RowNotFound,
            // A value of the wrong type, a bad column name or index, text that is not
            // UTF-8: a bug of this crate or a damaged row, never a condition of the machine.
            other => sqlx::Error::Decode(Box::new(other)),
        };
        StoreError::from(e)
    }
}

/// How a write operation of the raw path wants its transaction to end.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End<T> {
    /// Commit, then answer the value.
    Commit(T),
    /// Roll back (nothing of it is stored), then answer the value: an operation that found,
    /// halfway, that it must not apply (a lost race) but did not fail.
    RollBack(T),
}

/// How a transaction of the raw path ended, and whether its connection may be reused.
struct Ended<T> {
    result: Result<T>,
    /// `false`: close the connection rather than return it to the pool.
    reusable: bool,
    /// Whether a `COMMIT` succeeded.
    committed: bool,
}

/// What one attempt at a transaction of the raw path came to.
enum Attempt<T, F> {
    /// It ran (or failed).
    Ended(Ended<T>),
    /// `BEGIN IMMEDIATE` found the database locked by another connection: `op`, not run,
    /// and the error, to try again after a pause.
    Busy(F, StoreError),
}

/// Run `op` between `begin` and `COMMIT` on `db`, rolling back when it fails (see the module
/// docs for when the connection is no longer reusable). `begin` never waits for a lock: a
/// busy database is answered at once ([`Attempt::Busy`]) so the caller waits without
/// holding a thread.
fn in_transaction<T, F>(db: &Connection, begin: &str, op: F) -> Attempt<T, F>
where
    F: FnOnce(&Connection) -> Result<End<T>>,
{
    let faults_at_begin = error::faults_seen();
    let failed = |e: StoreError, reusable: bool| {
        Attempt::Ended(Ended {
            result: Err(e),
            reusable,
            committed: false,
        })
    };
    // A connection left inside a transaction (it cannot be by this path, but the sqlx path
    // can hand one back after a cancelled request) is rolled back first.
    if !db.is_autocommit() {
        if let Err(e) = run(db, "ROLLBACK") {
            return failed(e.into(), false);
        }
    }
    if let Err(e) = begin_now(db, begin) {
        if is_busy(&e) {
            return Attempt::Busy(op, e.into());
        }
        return failed(e.into(), false);
    }
    let result = op(db);
    Attempt::Ended(match result {
        Ok(End::RollBack(value)) => {
            let rolled_back = run(db, "ROLLBACK").is_ok();
            Ended {
                result: Ok(value),
                reusable: rolled_back && error::faults_seen() == faults_at_begin,
                committed: false,
            }
        }
        Ok(End::Commit(value)) => match run(db, "COMMIT") {
            Ok(()) => Ended {
                result: Ok(value),
                reusable: true,
                committed: true,
            },
            Err(e) => {
                let e = StoreError::from(e);
                if !db.is_autocommit() {
                    run(db, "ROLLBACK").ok();
                }
                Ended {
                    result: Err(e),
                    reusable: false,
                    committed: false,
                }
            }
        },
        Err(e) => {
            // After some faults (SQLITE_FULL, SQLITE_IOERR) SQLite has already rolled back.
            let rolled_back = db.is_autocommit() || run(db, "ROLLBACK").is_ok();
            Ended {
                result: Err(e),
                reusable: rolled_back && error::faults_seen() == faults_at_begin,
                committed: false,
            }
        }
    })
}

/// Run `begin` without SQLite's busy wait (which would sleep on this thread), restoring the
/// connection's busy timeout after.
fn begin_now(db: &Connection, begin: &str) -> rusqlite::Result<()> {
    db.busy_timeout(std::time::Duration::ZERO)?;
    let begun = run(db, begin);
    db.busy_timeout(BUSY_TIMEOUT)?;
    begun
}

/// Run one statement of transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`) from the
/// connection's statement cache: on [`HotWriter`]'s connection it is parsed once.
fn run(db: &Connection, sql: &str) -> rusqlite::Result<()> {
    db.prepare_cached(sql)?.execute([]).map(drop)
}

/// Whether `e` is `SQLITE_BUSY` (another connection holds the lock).
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy)
}

/// Lock `conn` away from its sqlx worker and run `op` in a transaction opened by `begin`, on
/// the calling thread.
async fn locked<T, F>(conn: &mut SqliteConnection, begin: &str, op: F) -> Attempt<T, F>
where
    F: FnOnce(&Connection) -> Result<End<T>>,
{
    // Neither failure leaves a usable connection (its worker is gone).
    let gone = |e: StoreError| {
        Attempt::Ended(Ended {
            result: Err(e),
            reusable: false,
            committed: false,
        })
    };
    let mut handle = match conn.lock_handle().await {
        Ok(handle) => handle,
        Err(e) => return gone(e.into()),
    };
    // SAFETY: see the module docs. The handle is a live `sqlite3*` opened by sqlx; the guard
    // keeps sqlx's worker off it until it is dropped, after `db`; `from_handle` never closes
    // it.
    let db = match unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) } {
        Ok(db) => db,
        Err(e) => return gone(e.into()),
    };
    let attempt = in_transaction(&db, begin, op);
    drop(db);
    drop(handle);
    attempt
}

/// Run `op` in a read transaction on `conn`: its answer, and whether the connection may be
/// reused.
async fn read_on<T>(
    conn: &mut SqliteConnection,
    op: impl FnOnce(&Connection) -> Result<T>,
) -> (Result<T>, bool) {
    // A deferred `BEGIN` takes no lock, so it is never busy.
    match locked(conn, "BEGIN", |db| op(db).map(End::Commit)).await {
        Attempt::Ended(ended) => (ended.result, ended.reusable),
        Attempt::Busy(_, e) => (Err(e), true),
    }
}

/// The first pause before `BEGIN IMMEDIATE` is tried again on a busy database; each pause
/// doubles, up to [`MAX_BUSY_PAUSE`], until [`BUSY_TIMEOUT`] has passed.
const FIRST_BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);
/// The longest pause between two tries of `BEGIN IMMEDIATE`.
const MAX_BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Prepared statements kept by [`HotWriter`]'s connection: more than the hot operations use
/// (about thirty), so none is parsed twice.
const STATEMENTS_KEPT: usize = 128;

/// The one-hop path's writer connection (see the module docs): opened on first use, taken by
/// one operation at a time, dropped after a fault (the next operation opens a fresh one) and
/// when the storage closes.
pub(crate) struct HotWriter {
    /// The database file.
    path: PathBuf,
    /// `synchronous` for the connection, as the storage's other connections have it.
    sync: Durability,
    /// Declared before `wal`: the connection, whose log hook points into `wal`, is dropped
    /// first.
    slot: tokio::sync::Mutex<Slot>,
    /// The log's size as the connection's last commit left it, and the checkpointer to wake
    /// ([`wal_hook`]).
    wal: Arc<WalState>,
}

/// What [`HotWriter`] holds between operations.
#[derive(Default)]
struct Slot {
    /// The open connection with its prepared statements, if any.
    conn: Option<Connection>,
    /// The storage was closed: nothing opens the connection again.
    closed: bool,
}

impl std::fmt::Debug for HotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotWriter")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl HotWriter {
    /// A writer for the database file at `path` (already created and migrated), opened on
    /// first use.
    /// Starts its checkpointer thread ([`checkpoint_in_background`]), which ends when the
    /// writer is closed or dropped.
    pub(crate) fn new(path: &Path, sync: Durability) -> Arc<HotWriter> {
        let hot = Arc::new(HotWriter {
            path: path.to_path_buf(),
            sync,
            slot: tokio::sync::Mutex::new(Slot::default()),
            wal: Arc::new(WalState::default()),
        });
        let weak = Arc::downgrade(&hot);
        match std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_in_background(weak))
        {
            Ok(handle) => {
                hot.wal.checkpointer.set(handle.thread().clone()).ok();
            }
            // Without the thread the log is still checkpointed, by the commit that takes it
            // past [`CHECKPOINT_INLINE_AT`].
            Err(e) => tracing::warn!("could not start the checkpoint thread: {e}"),
        }
        hot
    }

    /// Pages in the log after this writer's last commit, 0 after a checkpoint round.
    #[cfg(test)]
    pub(crate) fn wal_pages(&self) -> i32 {
        self.wal.pages.load(Ordering::Acquire)
    }

    /// Close the connection (at once, or when the operation holding it ends); operations after
    /// this fail as on a closed pool. The checkpointer stops.
    pub(crate) async fn close(&self) {
        let mut slot = self.slot.lock().await;
        slot.closed = true;
        slot.conn = None;
        self.wal.closed.store(true, Ordering::Release);
        self.wal.wake();
    }

    /// Open the connection as sqlx opens the storage's others: read-write, no SQLite mutex
    /// (one operation at a time uses it), extended result codes (rusqlite's default), foreign
    /// keys on, the storage's `synchronous`, the busy timeout. The file is in WAL mode already
    /// (a persistent setting, made when the storage opened it).
    fn open(&self) -> Result<Connection> {
        let db = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let sync = match self.sync {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        db.execute_batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync}; \
             PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
        ))?;
        db.busy_timeout(BUSY_TIMEOUT)?;
        db.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        // SAFETY: the handle is this connection's own; the hook's argument, `self.wal`, lives
        // as long as `self`, whose `slot` (holding the connection) is dropped before it, and
        // the hook is only called by this connection's commits. Setting a log hook replaces
        // SQLite's automatic checkpoint on this connection (see `wal_hook`).
        unsafe {
            ffi::sqlite3_wal_hook(
                db.handle(),
                Some(wal_hook),
                Arc::as_ptr(&self.wal).cast_mut().cast(),
            );
        }
        Ok(db)
    }

    /// Copy the log into the database file if it has grown past [`CHECKPOINT_AT`]: a
    /// `PASSIVE` checkpoint on `db` (the checkpointer's connection) beside the writers, then
    /// another with this writer held, which has only the frames committed meanwhile to copy
    /// and leaves the whole log copied, so this writer's next commit starts the log again
    /// from its beginning (unless a reader still reads an older snapshot; then a later
    /// round does). Errors are answered; nothing is lost by a failed checkpoint (the log
    /// keeps the commits).
    fn checkpoint(&self, db: &Connection) -> rusqlite::Result<()> {
        if self.wal.pages.load(Ordering::Acquire) < CHECKPOINT_AT {
            return Ok(());
        }
        passive_checkpoint(db)?;
        let slot = self.slot.blocking_lock();
        if slot.closed {
            return Ok(());
        }
        passive_checkpoint(db)?;
        // The next commit's hook tells the log's new size.
        self.wal.pages.store(0, Ordering::Release);
        drop(slot);
        Ok(())
    }

    /// The checkpointer's own connection: as [`HotWriter::open`]'s, with the storage's
    /// `synchronous` (under both `FULL` and `NORMAL` a checkpoint syncs the log before it
    /// copies it, and the database file after).
    fn open_for_checkpoints(&self) -> rusqlite::Result<Connection> {
        let db = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let sync = match self.sync {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        db.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA wal_autocheckpoint = 0;"
        ))?;
        Ok(db)
    }

    /// Run `op` in a transaction opened by `begin` on the connection, opening it first if
    /// needed; the connection is dropped when the transaction leaves it unusable.
    async fn run<T, F>(&self, begin: &str, op: F) -> Attempt<T, F>
    where
        F: FnOnce(&Connection) -> Result<End<T>>,
    {
        let mut slot = self.slot.lock().await;
        if slot.closed {
            return Attempt::Ended(Ended {
                result: Err(sqlx::Error::PoolClosed.into()),
                reusable: false,
                committed: false,
            });
        }
        if slot.conn.is_none() {
            match self.open() {
                Ok(db) => slot.conn = Some(db),
                Err(e) => {
                    return Attempt::Ended(Ended {
                        result: Err(e),
                        reusable: false,
                        committed: false,
                    })
                }
            }
        }
        let Some(db) = slot.conn.as_ref() else {
            unreachable!("opened above");
        };
        let attempt = in_transaction(db, begin, op);
        if let Attempt::Ended(Ended {
            reusable: false, ..
        }) = &attempt
        {
            // Closing rolls back whatever SQLite still held.
            slot.conn = None;
        }
        attempt
    }
}

/// The log's size, in pages, past which the checkpointer copies it into the database file:
/// SQLite's own automatic checkpoint threshold (4 MiB of 4 KiB pages).
pub(crate) const CHECKPOINT_AT: i32 = 1000;

/// The log's size, in pages, past which the writer's commit checkpoints it itself, in the
/// request's path, as SQLite's automatic checkpoint would: the bound on the log when the
/// checkpointer falls behind (or never started).
const CHECKPOINT_INLINE_AT: i32 = 8 * CHECKPOINT_AT;

/// `journal_size_limit` of the writer (bytes): when the log starts again from its beginning
/// after having grown past this (a long read kept it from being copied), the file is cut
/// back to this size.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// How often the checkpointer looks at the log without being woken.
const CHECKPOINT_IDLE_WAKE: std::time::Duration = std::time::Duration::from_secs(1);

/// What [`HotWriter`]'s log hook shares with its checkpointer thread.
#[derive(Debug, Default)]
struct WalState {
    /// Pages in the log after the writer's last commit (0 after a checkpoint round).
    pages: AtomicI32,
    /// The writer was closed: the checkpointer ends.
    closed: AtomicBool,
    /// The checkpointer thread, once started.
    checkpointer: OnceLock<std::thread::Thread>,
}

impl WalState {
    fn wake(&self) {
        if let Some(thread) = self.checkpointer.get() {
            thread.unpark();
        }
    }
}

/// [`HotWriter`]'s log hook (`sqlite3_wal_hook`), called by SQLite after each commit of the
/// writer's connection with the log's size in pages: it records the size and wakes the
/// checkpointer past [`CHECKPOINT_AT`], so the copy into the database file (and, under
/// `FULL`, its two syncs) runs off the request's path; past [`CHECKPOINT_INLINE_AT`] it
/// checkpoints at once (`PASSIVE`), as SQLite's automatic checkpoint (which this hook
/// replaces) would have at 1,000. It answers `SQLITE_OK` whatever the checkpoint does: the
/// commit has happened.
unsafe extern "C" fn wal_hook(
    state: *mut std::ffi::c_void,
    db: *mut ffi::sqlite3,
    name: *const std::ffi::c_char,
    pages: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: `state` is the `WalState` given to `sqlite3_wal_hook` in `HotWriter::open`,
    // alive while the connection is (see there).
    let state = unsafe { &*state.cast::<WalState>() };
    state.pages.store(pages, Ordering::Release);
    if pages >= CHECKPOINT_INLINE_AT {
        // SAFETY: `db` and `name` are the live connection and schema name SQLite passes.
        unsafe {
            ffi::sqlite3_wal_checkpoint_v2(
                db,
                name,
                ffi::SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    } else if pages >= CHECKPOINT_AT {
        state.wake();
    }
    ffi::SQLITE_OK
}

/// One `PASSIVE` checkpoint of the main database on `db`. Another checkpoint in progress
/// (the periodic flush under `NORMAL`, a commit's inline one) is not an error: that one
/// copies the log.
fn passive_checkpoint(db: &Connection) -> rusqlite::Result<()> {
    match db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        Err(e) if is_busy(&e) => Ok(()),
        other => other,
    }
}

/// The checkpointer thread of a [`HotWriter`]: woken by the log hook (or every
/// [`CHECKPOINT_IDLE_WAKE`]), it runs [`HotWriter::checkpoint`] on a connection of its own,
/// opened on first need and again after a failure. It ends when the writer is closed or
/// dropped.
fn checkpoint_in_background(hot: std::sync::Weak<HotWriter>) {
    let mut db: Option<Connection> = None;
    loop {
        std::thread::park_timeout(CHECKPOINT_IDLE_WAKE);
        let Some(hot) = hot.upgrade() else { return };
        if hot.wal.closed.load(Ordering::Acquire) {
            return;
        }
        if hot.wal.pages.load(Ordering::Acquire) < CHECKPOINT_AT {
            continue;
        }
        let conn = match db.take() {
            Some(conn) => Ok(conn),
            None => hot.open_for_checkpoints(),
        };
        match conn.and_then(|conn| hot.checkpoint(&conn).map(|()| conn)) {
            Ok(conn) => db = Some(conn),
            // The log keeps every commit; a later round (or a commit's inline checkpoint)
            // copies it. A storage fault is counted when a request meets it.
            Err(e) => tracing::warn!("checkpointing the database log failed: {e}"),
        }
    }
}

impl SqliteStorage {
    /// Run `op` as one write transaction (`BEGIN IMMEDIATE` … `COMMIT`) on the one-hop
    /// path's writer connection ([`HotWriter`]), synchronously on the calling thread.
    /// `op`'s error rolls the transaction back and is returned; so is a failed commit. `Ok`
    /// is answered only after the commit (see [`super::Durability`] for what that promises).
    ///
    /// `op` must not block on anything but SQLite: it holds the writer.
    pub(crate) async fn write<T>(&self, op: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.write_or_roll_back(|db| op(db).map(End::Commit)).await
    }

    /// [`SqliteStorage::write`] for an operation that may decide to roll back without
    /// failing ([`End::RollBack`]).
    pub(crate) async fn write_or_roll_back<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<End<T>>,
    ) -> Result<T> {
        let give_up = tokio::time::Instant::now() + BUSY_TIMEOUT;
        let mut pause = FIRST_BUSY_PAUSE;
        let mut op = op;
        loop {
            let ended = match self.hot.run("BEGIN IMMEDIATE", op).await {
                Attempt::Ended(ended) => ended,
                // Another connection on the file (sqlx's writer, or another process) is
                // writing: wait for it here, off the connection and off the thread.
                Attempt::Busy(back, e) => {
                    if tokio::time::Instant::now() >= give_up {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_BUSY_PAUSE);
                    op = back;
                    continue;
                }
            };
            if ended.committed {
                self.written.store(true, Ordering::Release);
            }
            return ended.result;
        }
    }

    /// [`SqliteStorage::read`] on the writer connection ([`HotWriter`]) instead of the
    /// read-only pool, for the reads of the hot path (a run before its finish, a sweep and its
    /// changed runs before a claim's insert): the writer's page cache holds what it just
    /// wrote, while a reader's is dropped by every commit it did not make and each page read
    /// again from the file (system calls and copies), and the writer keeps its prepared
    /// statements. Such a read waits for a write of this path in progress, as the write that
    /// follows it would anyway.
    pub(crate) async fn read_on_writer<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        // A deferred `BEGIN` takes no lock, so it is never busy.
        match self.hot.run("BEGIN", |db| op(db).map(End::Commit)).await {
            Attempt::Ended(ended) => ended.result,
            Attempt::Busy(_, e) => Err(e),
        }
    }

    /// Run `op` in one read transaction (one snapshot for all its statements) on a connection
    /// of the read-only pool, synchronously, after one hop.
    pub(crate) async fn read<T>(&self, op: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.reader.acquire().await?;
        let (result, reusable) = read_on(&mut conn, op).await;
        if !reusable {
            conn.close_on_drop();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fault;

    #[test]
    fn raw_failures_are_sorted_as_sqlx_sorts_them() {
        let fail = |code: i32| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                ffi::Error::new(code),
                Some("m".into()),
            ))
        };
        assert_eq!(fail(ffi::SQLITE_FULL).fault(), Some(Fault::DiskFull));
        assert_eq!(fail(ffi::SQLITE_IOERR_WRITE).fault(), Some(Fault::Io));
        assert_eq!(fail(ffi::SQLITE_IOERR_FSYNC).fault(), Some(Fault::Io));
        assert_eq!(fail(ffi::SQLITE_READONLY).fault(), Some(Fault::ReadOnly));
        assert_eq!(fail(ffi::SQLITE_BUSY).fault(), Some(Fault::Busy));
        assert_eq!(fail(ffi::SQLITE_CORRUPT).fault(), Some(Fault::Corrupt));
        assert_eq!(fail(ffi::SQLITE_ERROR).fault(), None);
        assert!(fail(ffi::SQLITE_CONSTRAINT_UNIQUE).is_unique_violation());
        assert!(fail(ffi::SQLITE_CONSTRAINT_PRIMARYKEY).is_unique_violation());
        assert!(!fail(ffi::SQLITE_CONSTRAINT_FOREIGNKEY).is_unique_violation());
        let decode = StoreError::from(rusqlite::Error::InvalidColumnName("x".into()));
        assert!(matches!(decode, StoreError::Db(_)), "{decode:?}");
        assert_eq!(decode.fault(), None);
    }
}
