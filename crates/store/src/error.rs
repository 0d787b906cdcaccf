//! The store's errors, sorted by what the operator has to do about them.
//!
//! SQLite reports a storage fault as a result code: `SQLITE_FULL` when the volume has no room
//! left, `SQLITE_READONLY` when the file or its directory cannot be written, `SQLITE_IOERR_*`
//! when the disk fails, `SQLITE_CORRUPT`/`SQLITE_NOTADB` when the file is damaged, and
//! `SQLITE_BUSY`/`SQLITE_LOCKED` when another process holds the lock. [`StoreError::from`]
//! turns each into its own variant (the raw error stays attached as the source, for the log),
//! so the server can answer `503` with a message that names the cause and the volume, and the
//! database's own text never reaches a client. Faults are passing conditions: the store drops
//! the connection that met one (see `crate::sqlite`) and the next request opens a fresh one,
//! so writes succeed again as soon as the fault clears.
//!
//! PostgreSQL reports SQLSTATE codes instead: class `53` (insufficient resources: `53100`
//! disk full, the others busy), class `08` and `57P01`–`57P03` (the server cannot be reached
//! or is shutting down: unavailable), `25006` (a read-only standby) and `40001`/`40P01`
//! (serialization failure, deadlock: the backend retries the whole operation a few times,
//! then answers busy). Connection-level I/O errors (refused, reset, timed out) are
//! unavailable too.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// How many storage faults this process has met. A transaction that sees it change between
/// its `BEGIN` and its end met a fault (or ran beside one), and its connection is replaced
/// rather than reused.
static FAULTS: AtomicU64 = AtomicU64::new(0);

/// When this process last met a storage fault, in ms since the Unix epoch (0: never).
static LAST_FAULT_MS: AtomicI64 = AtomicI64::new(0);

/// The current count of storage faults (see [`FAULTS`]).
pub(crate) fn faults_seen() -> u64 {
    FAULTS.load(Ordering::Acquire)
}

/// When this process last met a storage fault (the database down, full, read-only, busy or
/// failing), in ms since the Unix epoch; `None` if it never did. While its store fails, a
/// server cannot record the heartbeats it is sent, so a run's silence up to this moment says
/// nothing about the run (see the server's `silence_cutoff`).
pub fn last_fault_ms() -> Option<i64> {
    let at = LAST_FAULT_MS.load(Ordering::Acquire);
    (at > 0).then_some(at)
}

/// Count a storage fault met now.
pub(crate) fn fault_met() {
    FAULTS.fetch_add(1, Ordering::AcqRel);
    LAST_FAULT_MS.fetch_max(crate::now_ms(), Ordering::AcqRel);
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The volume holding the database is full (`SQLITE_FULL`, or `ENOSPC`).
    #[error("the database disk is full")]
    DiskFull(#[source] sqlx::Error),
    /// The database file, its directory or its volume cannot be written (`SQLITE_READONLY`,
    /// or `EROFS`).
    #[error("the database is read-only")]
    ReadOnly(#[source] sqlx::Error),
    /// Reading or writing the database file failed (`SQLITE_IOERR_*`, `SQLITE_CANTOPEN`, or an
    /// operating-system I/O error).
    #[error("the database could not be read or written (I/O error)")]
    Io(#[source] sqlx::Error),
    /// The database is locked by another process, or every connection stayed busy for the
    /// acquire timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`, pool timeout).
    #[error("the database is busy")]
    Busy(#[source] sqlx::Error),
    /// The database file is damaged or not a database (`SQLITE_CORRUPT`, `SQLITE_NOTADB`).
    #[error("the database file is damaged")]
    Corrupt(#[source] sqlx::Error),
    /// The database server cannot be reached, or is shutting down (PostgreSQL SQLSTATE class
    /// `08`, `57P01`–`57P03`, a refused or reset connection).
    #[error("the database server is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused a value of the request: text it cannot store (PostgreSQL's
    /// `22021`/`22P05`, e.g. a NUL character in a name). The request is at fault, not the
    /// machine or the code.
    #[error("the database cannot store a value of this request (text with a NUL character or an invalid encoding)")]
    Rejected(#[source] sqlx::Error),
    /// Any other database failure: a bug, not a condition of the machine.
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// Applying the schema failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A migration failed when the database was opened. Its transaction was rolled back, so
    /// the database is as the migration before it left it.
    #[error(
        "migration {name} failed on {backend} and was rolled back: {why}. The database is \
         as the previous migration left it{}, and was not opened. Restore the backup taken \
         before the upgrade (or keep using the previous version of hyperdial with this \
         database), and report this error with the migration's name",
        kept_note(.kept)
    )]
    MigrationFailed {
        /// The migration's file name without `.sql` (`0014_claim_keys`).
        name: String,
        /// `SQLite` or `PostgreSQL`.
        backend: String,
        /// The database's error.
        why: String,
        /// The migrations applied before it in the same start, which stay applied.
        kept: Vec<String>,
    },
    /// The database has a migration this build does not know: a newer version of hyperdial
    /// upgraded it.
    #[error(
        "this {backend} database was upgraded by a newer version of hyperdial (it has \
         migration {version:04}, which this version does not know): run that version or a \
         newer one, or restore a backup taken before the upgrade"
    )]
    NewerSchema {
        /// The unknown migration's number.
        version: i64,
        /// `SQLite` or `PostgreSQL`.
        backend: String,
    },
    /// The database URL names no backend this build knows, or is malformed.
    #[error("bad database location `{url}`: {why}")]
    Url {
        /// The URL, its password replaced by `***`.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The database server could not be reached or refused the connection at start-up.
    #[error("cannot connect to the database `{url}`: {why}")]
    Connect {
        /// The URL, its password replaced by `***`.
        url: String,
        /// The cause, once (e.g. `Connection refused`, `role "x" does not exist`).
        why: String,
        /// Whether the database server may simply not be up yet: nothing accepted the
        /// connection, no answer came, or it answered that it is starting up. Not for an
        /// answer that refuses (a wrong password, an unknown role or database).
        not_up: bool,
    },
    /// The database directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The kind of a storage fault: a condition of the machine that clears without a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No space left on the database's volume.
    DiskFull,
    /// The database cannot be written.
    ReadOnly,
    /// The disk failed a read or a write.
    Io,
    /// Another process holds the database, or every connection is in use.
    Busy,
    /// The file is damaged.
    Corrupt,
    /// The database server cannot be reached.
    Unavailable,
}

impl Fault {
    /// A stable machine-readable name: `disk_full`, `read_only`, `io_error`, `busy`, `corrupt`,
    /// `unavailable`.
    pub fn code(self) -> &'static str {
        match self {
            Fault::DiskFull => "disk_full",
            Fault::ReadOnly => "read_only",
            Fault::Io => "io_error",
            Fault::Busy => "busy",
            Fault::Corrupt => "corrupt",
            Fault::Unavailable => "unavailable",
        }
    }
}

impl StoreError {
    /// The storage fault behind this error, or `None` for a bug (or a migration or directory
    /// failure at start-up).
    pub fn fault(&self) -> Option<Fault> {
        Some(match self {
            StoreError::DiskFull(_) => Fault::DiskFull,
            StoreError::ReadOnly(_) => Fault::ReadOnly,
            StoreError::Io(_) => Fault::Io,
            StoreError::Busy(_) => Fault::Busy,
            StoreError::Corrupt(_) => Fault::Corrupt,
            StoreError::Unavailable(_) => Fault::Unavailable,
            StoreError::Db(_)
            | StoreError::Rejected(_)
            | StoreError::Migrate(_)
            | StoreError::MigrationFailed { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::Url { .. }
            | StoreError::Connect { .. }
            | StoreError::Dir { .. } => return None,
        })
    }

    /// Whether opening the database failed because its server is not accepting connections
    /// (yet): worth trying again for a while at start-up, when the database may be starting
    /// alongside the server. False for everything a retry cannot fix (authentication, an
    /// unknown database, a bad URL, a failed migration).
    pub fn database_not_up(&self) -> bool {
        match self {
            StoreError::Connect { not_up, .. } => *not_up,
            StoreError::Unavailable(_) => true,
            _ => false,
        }
    }

    /// Whether the operation that failed should simply be run again: a PostgreSQL
    /// serialization failure (`40001`) or deadlock (`40P01`), where the database rolled the
    /// transaction back on purpose.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Busy(e) => sqlstate(e).is_some_and(|c| c == "40001" || c == "40P01"),
            _ => false,
        }
    }

    /// Whether this is a unique-constraint violation (SQLite's `SQLITE_CONSTRAINT_UNIQUE` or
    /// `SQLITE_CONSTRAINT_PRIMARYKEY`, PostgreSQL's `23505`): in a conditional operation,
    /// another writer won the race.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(db)) => {
                matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
            }
            _ => false,
        }
    }
}

/// What [`StoreError::MigrationFailed`] says of the migrations applied before the one that
/// failed, in the same start.
fn kept_note(kept: &[String]) -> String {
    match kept {
        [] => String::new(),
        [one] => format!(" (migration {one}, applied just before, stays applied)"),
        many => format!(
            " (migrations {}, applied just before, stay applied)",
            many.join(", ")
        ),
    }
}

/// The PostgreSQL SQLSTATE of an error, if it is one.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .map(|pg| pg.code().to_string()),
        _ => None,
    }
}

/// The fault a PostgreSQL SQLSTATE names, if any.
fn postgres_fault(code: &str) -> Option<Fault> {
    Some(match code {
        "53100" => Fault::DiskFull,
        c if c.starts_with("53") => Fault::Busy,
        c if c.starts_with("08") => Fault::Unavailable,
        "57P01" | "57P02" | "57P03" => Fault::Unavailable,
        "25006" => Fault::ReadOnly,
        "40001" | "40P01" | "55P03" => Fault::Busy,
        "58030" => Fault::Io,
        "XX001" | "XX002" => Fault::Corrupt,
        _ => return None,
    })
}

/// SQLite primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// `errno` values of the operating system's I/O errors that name a fault.
const ENOSPC: i32 = 28;
const EROFS: i32 = 30;
const EDQUOT: i32 = 122;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let fault = match &e {
            sqlx::Error::Database(db)
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some() =>
            {
                sqlstate(&e).as_deref().and_then(postgres_fault)
            }
            sqlx::Error::Database(db) => {
                db.code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .and_then(|code| match code & 0xff {
                        SQLITE_FULL => Some(Fault::DiskFull),
                        SQLITE_READONLY => Some(Fault::ReadOnly),
                        SQLITE_IOERR | SQLITE_CANTOPEN => Some(Fault::Io),
                        SQLITE_BUSY | SQLITE_LOCKED => Some(Fault::Busy),
                        SQLITE_CORRUPT | SQLITE_NOTADB => Some(Fault::Corrupt),
                        _ => None,
                    })
            }
            sqlx::Error::Io(io) => Some(match (io.raw_os_error(), io.kind()) {
                (Some(ENOSPC | EDQUOT), _) => Fault::DiskFull,
                (Some(EROFS), _) => Fault::ReadOnly,
                (
                    _,
                    ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotConnected
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::TimedOut
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable,
                ) => Fault::Unavailable,
                _ => Fault::Io,
            }),
            sqlx::Error::Tls(_) => Some(Fault::Unavailable),
            sqlx::Error::PoolTimedOut => Some(Fault::Busy),
            _ => None,
        };
        if fault.is_some() {
            fault_met();
        }
        if fault.is_none() && sqlstate(&e).is_some_and(|c| c == "22021" || c == "22P05") {
            return StoreError::Rejected(e);
        }
        match fault {
            Some(Fault::DiskFull) => StoreError::DiskFull(e),
            Some(Fault::ReadOnly) => StoreError::ReadOnly(e),
            Some(Fault::Io) => StoreError::Io(e),
            Some(Fault::Busy) => StoreError::Busy(e),
            Some(Fault::Corrupt) => StoreError::Corrupt(e),
            Some(Fault::Unavailable) => StoreError::Unavailable(e),
            None => StoreError::Db(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_sqlstates_are_sorted_by_cause() {
        assert_eq!(postgres_fault("53100"), Some(Fault::DiskFull));
        assert_eq!(postgres_fault("53300"), Some(Fault::Busy));
        assert_eq!(postgres_fault("08006"), Some(Fault::Unavailable));
        assert_eq!(postgres_fault("57P01"), Some(Fault::Unavailable));
        assert_eq!(postgres_fault("25006"), Some(Fault::ReadOnly));
        assert_eq!(postgres_fault("40P01"), Some(Fault::Busy));
        assert_eq!(postgres_fault("23505"), None, "a lost race is no fault");
        assert_eq!(postgres_fault("42P01"), None, "a bug is no fault");
    }

    #[test]
    fn a_refused_connection_is_unavailable() {
        let refused: StoreError =
            sqlx::Error::Io(std::io::Error::from(ErrorKind::ConnectionRefused)).into();
        assert_eq!(refused.fault(), Some(Fault::Unavailable));
        assert_eq!(Fault::Unavailable.code(), "unavailable");
        assert!(!refused.is_retryable());
    }
}
