//! Bringing a database's schema up to date when it is opened, with the migrations of
//! `migrations/sqlite` or `migrations/postgres`.
//!
//! Each migration runs in a transaction of its own, together with the row recording it in
//! `_sqlx_migrations` (none of the migrations opts out), on both backends: SQLite and
//! PostgreSQL both roll schema changes back with the transaction. A migration that fails
//! therefore leaves the database exactly as the previous migration left it, and the error
//! ([`StoreError::MigrationFailed`]) says which one failed, that it was rolled back, and what
//! to do. The migrations applied before it in the same start stay applied.
//!
//! On PostgreSQL the whole run holds an advisory lock, so servers starting together migrate
//! once; the list of what was applied is read under that lock, so each server reports only
//! what it applied itself.

use std::collections::HashSet;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{Database, Pool};

use crate::{Result, StoreError};

/// A migration applied when the database was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Its number (`14` for `0014_claim_keys.sql`).
    pub version: i64,
    /// Its file name without `.sql` (`0014_claim_keys`).
    pub name: String,
}

impl std::fmt::Display for AppliedMigration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A migration's file name without `.sql`, from its number and description (sqlx turns the
/// file name's underscores into spaces).
fn file_name(version: i64, description: &str) -> String {
    format!("{version:04}_{}", description.replace(' ', "_"))
}

/// Apply `migrator`'s pending migrations to the database of `pool`, answering those applied
/// (in order). `backend` names the backend in errors (`SQLite`, `PostgreSQL`).
pub(crate) async fn run<DB>(
    pool: &Pool<DB>,
    mut migrator: Migrator,
    backend: &str,
) -> Result<Vec<AppliedMigration>>
where
    DB: Database,
    DB::Connection: Migrate,
{
    let mut pooled = pool.acquire().await?;
    let conn: &mut DB::Connection = &mut pooled;
    conn.lock().await?;
    let result = run_locked(conn, &mut migrator, backend).await;
    // Released in any case (a failed run included), so another server is not kept waiting.
    let unlocked = conn.unlock().await;
    let applied = result?;
    unlocked?;
    for m in &applied {
        tracing::info!(version = m.version, "applied database migration {m}");
    }
    Ok(applied)
}

async fn run_locked<C: Migrate>(
    conn: &mut C,
    migrator: &mut Migrator,
    backend: &str,
) -> Result<Vec<AppliedMigration>> {
    conn.ensure_migrations_table().await?;
    let before: HashSet<i64> = conn
        .list_applied_migrations()
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect();
    // This function holds the lock; the migrator must not take it again.
    migrator.set_locking(false);
    let name_of = |version: i64| {
        migrator
            .iter()
            .find(|m| m.version == version)
            .map(|m| file_name(m.version, &m.description))
            .unwrap_or_else(|| format!("{version:04}"))
    };
    match migrator.run_direct(conn).await {
        Ok(()) => {}
        Err(MigrateError::ExecuteMigration(e, version)) => {
            let done_now: Vec<String> = migrator
                .iter()
                .filter(|m| m.version < version && !before.contains(&m.version))
                .map(|m| file_name(m.version, &m.description))
                .collect();
            return Err(StoreError::MigrationFailed {
                name: name_of(version),
                backend: backend.to_string(),
                why: e.to_string(),
                kept: done_now,
            });
        }
        Err(MigrateError::VersionMissing(version)) => {
            return Err(StoreError::NewerSchema {
                version,
                backend: backend.to_string(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !before.contains(&m.version))
        .map(|m| AppliedMigration {
            version: m.version,
            name: file_name(m.version, &m.description),
        })
        .collect())
}
