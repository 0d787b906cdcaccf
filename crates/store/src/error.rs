//! The store's errors, sorted by what the operator has to do about them.
//!
//! SQLite reports a storage fault as a result code: `SQLITE_FULL` when the volume has no room
//! left, `SQLITE_READONLY` when the file or its directory cannot be written, `SQLITE_IOERR_*`
//! when the disk fails, `SQLITE_CORRUPT`/`SQLITE_NOTADB` when the file is damaged, and
//! `SQLITE_BUSY`/`SQLITE_LOCKED` when another process holds the lock. [`StoreError::from`]
//! turns each into its own variant (the raw error stays attached as the source, for the log),
//! so the server can answer `503` with a message that names the cause and the volume, and the
//! database's own text never reaches a client. Faults are passing conditions: the store drops
//! the connection that met one (see [`crate::Tx`]) and the next request opens a fresh one, so
//! writes succeed again as soon as the fault clears.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many storage faults this process has met. A transaction that sees it change between
/// its `BEGIN` and its end met a fault (or ran beside one), and its connection is replaced
/// rather than reused.
static FAULTS: AtomicU64 = AtomicU64::new(0);

/// The current count of storage faults (see [`FAULTS`]).
pub(crate) fn faults_seen() -> u64 {
    FAULTS.load(Ordering::Acquire)
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
    /// Any other database failure: a bug, not a condition of the machine.
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// Applying the schema failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
}

impl Fault {
    /// A stable machine-readable name: `disk_full`, `read_only`, `io_error`, `busy`, `corrupt`.
    pub fn code(self) -> &'static str {
        match self {
            Fault::DiskFull => "disk_full",
            Fault::ReadOnly => "read_only",
            Fault::Io => "io_error",
            Fault::Busy => "busy",
            Fault::Corrupt => "corrupt",
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
            StoreError::Db(_) | StoreError::Migrate(_) | StoreError::Dir { .. } => return None,
        })
    }
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
            sqlx::Error::Io(io) => Some(match io.raw_os_error() {
                Some(ENOSPC | EDQUOT) => Fault::DiskFull,
                Some(EROFS) => Fault::ReadOnly,
                _ => Fault::Io,
            }),
            sqlx::Error::PoolTimedOut => Some(Fault::Busy),
            _ => None,
        };
        if fault.is_some() {
            FAULTS.fetch_add(1, Ordering::AcqRel);
        }
        match fault {
            Some(Fault::DiskFull) => StoreError::DiskFull(e),
            Some(Fault::ReadOnly) => StoreError::ReadOnly(e),
            Some(Fault::Io) => StoreError::Io(e),
            Some(Fault::Busy) => StoreError::Busy(e),
            Some(Fault::Corrupt) => StoreError::Corrupt(e),
            None => StoreError::Db(e),
        }
    }
}
