//! Throwaway databases for tests of every backend, shared by the store's conformance suite and
//! the tests of the crates above it (server, command line).
//!
//! [`TestDb::sqlite`] is a file in a fresh temporary directory. [`TestDb::postgres`] is a
//! database of its own, `hd_<random>`, created in the PostgreSQL server that
//! `HYPERDIAL_TEST_PG` names (a server URL such as `postgres://postgres@127.0.0.1:5433/postgres`)
//! and dropped by [`TestDb::remove`]; when the variable is unset it prints a `SKIPPED:` line
//! (appended to the file `HYPERDIAL_SKIPPED` names, when set) and answers `None`, so a test
//! that cannot run says so instead of passing silently.
//!
//! [`migrations_below`], [`migrate_below`] and [`old_sqlite`] build a database of an older
//! schema (the migrations before a given one), to test what opening it upgrades.

use std::io::Write;
use std::path::{Path, PathBuf};

use sqlx::Connection;

use crate::{new_id, Result, Store};

/// The environment variable naming the PostgreSQL server tests create their databases in.
pub const TEST_PG_ENV: &str = "HYPERDIAL_TEST_PG";

/// A database for one test.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(PathBuf),
    Database { server: String, name: String },
}

impl TestDb {
    /// A SQLite database in a new temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("hyperdial-test-{}", new_id("t")));
        TestDb {
            url: format!("sqlite://{}", dir.join("db.sqlite").display()),
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new, empty PostgreSQL database in the server of `HYPERDIAL_TEST_PG`, or `None` after
    /// reporting `test` as skipped when the variable is not set. Panics when the server cannot
    /// be reached or the database cannot be created: a test environment that promised
    /// PostgreSQL and has none is a failure, not a skip.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let server = match std::env::var(TEST_PG_ENV) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                skipped(&format!(
                    "SKIPPED: {test} ({TEST_PG_ENV} is not set; .ci/run starts PostgreSQL and sets it)"
                ));
                return None;
            }
        };
        let name = format!("hd_{}", new_id("t"));
        let mut conn = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {TEST_PG_ENV}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        conn.close().await.ok();
        Some(TestDb {
            url: with_database(&server, &name),
            cleanup: Cleanup::Database { server, name },
        })
    }

    /// The database's URL, for `Store::open` or `--db`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new handle on the database (each handle has its own connections, like a server).
    pub async fn open(&self) -> Result<Store> {
        Store::open(&self.url).await
    }

    /// Delete the database (its directory, or `DROP DATABASE … WITH (FORCE)`).
    pub async fn remove(self) {
        match self.cleanup {
            Cleanup::Dir(dir) => {
                std::fs::remove_dir_all(dir).ok();
            }
            Cleanup::Database { server, name } => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok();
                }
            }
        }
    }
}

/// The migrations of `backend` (`sqlite` or `postgres`) numbered below `below` (`"0008"`:
/// those before 0008), copied from this crate's `migrations/` to a new temporary directory
/// that the caller removes: the schema of an older release, to test an upgrade. Panics when
/// the files cannot be copied.
pub fn migrations_below(backend: &str, below: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hyperdial-old-{}", new_id("m")));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let here = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let entries = std::fs::read_dir(&here).unwrap_or_else(|e| panic!("{}: {e}", here.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", here.display()))
            .path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.as_ref() < below {
            std::fs::copy(&path, dir.join(name.as_ref()))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    dir
}

/// Apply to `pool` the migrations of `backend` numbered below `below`
/// ([`migrations_below`]), and answer their directory, which the caller removes. Panics when
/// a migration fails.
pub async fn migrate_below<DB>(pool: &sqlx::Pool<DB>, backend: &str, below: &str) -> PathBuf
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
{
    let old = migrations_below(backend, below);
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap_or_else(|e| panic!("the migrations in {}: {e}", old.display()))
        .run(pool)
        .await
        .unwrap_or_else(|e| panic!("migrating {backend} below {below}: {e}"));
    old
}

/// A one-connection pool on the SQLite file `path` (created, with its directory), with the
/// migrations numbered below `below` applied ([`migrate_below`]), and their directory, which
/// the caller removes. Panics when the file cannot be opened or a migration fails.
pub async fn old_sqlite(path: &Path, below: &str) -> (sqlx::SqlitePool, PathBuf) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let old = migrate_below(&pool, "sqlite", below).await;
    (pool, old)
}

/// Print a `SKIPPED:` line and append it to the file `HYPERDIAL_SKIPPED` names, if any.
pub fn skipped(line: &str) {
    println!("{line}");
    if let Ok(file) = std::env::var("HYPERDIAL_SKIPPED") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            writeln!(f, "{line}").ok();
        }
    }
}

/// `url` (a PostgreSQL URL) naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_servers() {
        assert_eq!(
            with_database("postgres://u@h:5433/postgres", "hd_x"),
            "postgres://u@h:5433/hd_x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/postgres?sslmode=disable", "hd_x"),
            "postgresql://u:p@h/hd_x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "hd_x"), "postgres://h/hd_x");
    }
}
