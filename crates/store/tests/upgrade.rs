//! A database written at the schema before compact metric storage (migrations up to 0007:
//! one `metrics` row per (run, name, step) with text keys) upgrades in place when opened, on
//! every backend: every point reads back with the same step, value (NaN and infinities
//! included), and time, and each series knows its size and highest step. The same holds for a
//! PostgreSQL database written with one row per point in `metric_points` (migrations up to
//! 0011), which opening moves into chunks per series.

use std::path::Path;

use hyperdial_store::testing::{self, TestDb};
use hyperdial_store::Store;

/// A one-connection pool on the SQLite database `db`, with the migrations numbered below
/// `below` applied; and the directory of those migrations, to remove when done.
async fn old_sqlite(db: &TestDb, below: &str) -> (sqlx::SqlitePool, std::path::PathBuf) {
    let file = db.url().trim_start_matches("sqlite://").to_string();
    testing::old_sqlite(Path::new(&file), below).await
}

/// A one-connection pool on the PostgreSQL database `db`, with the migrations numbered below
/// `below` applied; and the directory of those migrations, to remove when done.
async fn old_postgres(db: &TestDb, below: &str) -> (sqlx::PgPool, std::path::PathBuf) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db.url())
        .await
        .unwrap();
    let old = testing::migrate_below(&pool, "postgres", below).await;
    (pool, old)
}

/// What the old schema holds: two runs, three metrics, gaps, NaN (NULL) and infinities.
fn old_points() -> Vec<(&'static str, &'static str, i64, Option<f64>, i64)> {
    let mut rows = Vec::new();
    for step in 0..300i64 {
        rows.push((
            "r1",
            "loss",
            step,
            Some(1.0 / (step as f64 + 1.0)),
            1_000 + step,
        ));
        if step % 3 == 0 {
            rows.push(("r1", "acc", step * 7, Some(step as f64 * 0.5), 2_000 + step));
        }
        rows.push(("r2", "loss", step, Some(-(step as f64) - 0.5), 3_000 + step));
    }
    rows.push(("r1", "acc", 5_000, None, 9));
    rows.push(("r2", "loss", 400, Some(f64::INFINITY), 10));
    rows.push(("r2", "odd", 0, Some(f64::NEG_INFINITY), 11));
    rows
}

const OLD_DATA: [&str; 4] = [
    "INSERT INTO projects (id, name, created_ms) VALUES (1, 'default', 0)",
    "INSERT INTO sweeps (id, project_id, method, state, source, config_hash, seed, next_number, created_ms, updated_ms) \
     VALUES ('s1', 1, 'grid', 'running', 'method: grid', 'h', 1, 3, 0, 0)",
    "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, next_step) \
     VALUES ('r1', 's1', 1, 1, 'finished', '{}', '{}', 0, 5001)",
    "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, next_step) \
     VALUES ('r2', 's1', 1, 2, 'running', '{}', '{}', 0, 401)",
];

async fn fill_old<DB: sqlx::Database>(pool: &sqlx::Pool<DB>)
where
    for<'c> &'c mut <DB as sqlx::Database>::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut conn = pool.acquire().await.unwrap();
    for sql in OLD_DATA {
        sqlx::query(sql).execute(&mut *conn).await.unwrap();
    }
    for (run, name, step, value, time) in old_points() {
        sqlx::query(
            "INSERT INTO metrics (run_id, name, step, value, time_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run)
        .bind(name)
        .bind(step)
        .bind(value)
        .bind(time)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// Read everything back through the store and compare with what the old schema held.
async fn check_upgraded(store: &Store) {
    let rows = old_points();
    for run in ["r1", "r2"] {
        let mut names: Vec<&str> = rows.iter().filter(|r| r.0 == run).map(|r| r.1).collect();
        names.sort();
        names.dedup();
        assert_eq!(store.metric_names(run).await.unwrap(), names);
        for name in names {
            let mut want: Vec<(i64, Option<f64>, i64)> = rows
                .iter()
                .filter(|r| r.0 == run && r.1 == name)
                .map(|r| (r.2, r.3, r.4))
                .collect();
            want.sort_by_key(|w| w.0);
            let got: Vec<(i64, Option<f64>, i64)> = store
                .series(run, name)
                .await
                .unwrap()
                .iter()
                .map(|p| (p.step, p.value, p.time_ms))
                .collect();
            let bits = |v: &[(i64, Option<f64>, i64)]| {
                v.iter()
                    .map(|(s, x, t)| (*s, x.map(f64::to_bits), *t))
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&got), bits(&want), "{run}/{name}");
            let sample = store.series_sample(run, name, 10).await.unwrap();
            assert_eq!(sample.total, want.len() as u64, "{run}/{name} count");
            assert_eq!(
                sample.points.last().map(|p| p.step),
                want.last().map(|w| w.0),
                "{run}/{name}: the highest step is known"
            );
        }
    }
    let history = store.history("r1").await.unwrap();
    assert_eq!(
        history.first().unwrap().values.len(),
        2,
        "loss and acc at step 0"
    );
    // Writing goes on after the upgrade, into the same series.
    store
        .append_metrics(
            "r2",
            &[hyperdial_store::Point {
                step: None,
                time_ms: Some(1),
                values: vec![("loss".into(), Some(0.5))],
            }],
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let loss = store.series("r2", "loss").await.unwrap();
    assert_eq!(
        loss.last().map(|p| (p.step, p.value)),
        Some((401, Some(0.5)))
    );
    assert_eq!(
        store.series_sample("r2", "loss", 1000).await.unwrap().total,
        302
    );
}

#[tokio::test]
async fn a_sqlite_database_of_the_old_metric_schema_upgrades_in_place() {
    let db = TestDb::sqlite();
    let (pool, old) = old_sqlite(&db, "0008").await;
    fill_old(&pool).await;
    pool.close().await;
    let store = db.open().await.unwrap();
    check_upgraded(&store).await;
    store.close().await;
    std::fs::remove_dir_all(old).ok();
    db.remove().await;
}

#[tokio::test]
async fn a_postgres_database_of_the_old_metric_schema_upgrades_in_place() {
    let Some(db) = TestDb::postgres(
        "store upgrade a_postgres_database_of_the_old_metric_schema_upgrades_in_place",
    )
    .await
    else {
        return;
    };
    let (pool, old) = old_postgres(&db, "0008").await;
    fill_old(&pool).await;
    pool.close().await;
    let store = db.open().await.unwrap();
    check_upgraded(&store).await;
    store.close().await;
    std::fs::remove_dir_all(old).ok();
    db.remove().await;
}

/// Fill a PostgreSQL database at migration 0011 (a row per point in `metric_points`, keyed by
/// series ids interned in `metric_series`) with [`OLD_DATA`] and [`old_points`].
async fn fill_rows(pool: &sqlx::PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    for sql in OLD_DATA {
        sqlx::query(sql).execute(&mut *conn).await.unwrap();
    }
    let rows = old_points();
    let mut series: std::collections::BTreeMap<(&str, &str), (i64, i64)> = Default::default();
    for (run, name, step, _, _) in &rows {
        let e = series.entry((run, name)).or_insert((0, -1));
        e.0 += 1;
        e.1 = e.1.max(*step);
    }
    let mut ids = std::collections::HashMap::new();
    for ((run, name), (points, last)) in &series {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO metric_series (run_id, name, points, last_step) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(run)
        .bind(name)
        .bind(points)
        .bind(last)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        ids.insert((*run, *name), id);
    }
    for (run, name, step, value, time) in rows {
        sqlx::query(
            "INSERT INTO metric_points (series, step, value, time_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(ids[&(run, name)])
        .bind(step)
        .bind(value)
        .bind(time)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_postgres_database_of_one_row_per_point_moves_into_chunks() {
    let Some(db) = TestDb::postgres(
        "store upgrade a_postgres_database_of_one_row_per_point_moves_into_chunks",
    )
    .await
    else {
        return;
    };
    let (pool, old) = old_postgres(&db, "0012").await;
    fill_rows(&pool).await;
    pool.close().await;
    let store = db.open().await.unwrap();
    check_upgraded(&store).await;
    store.close().await;
    // The points are in chunks now: r1's 300 losses in four of at most 78, in step order.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db.url())
        .await
        .unwrap();
    let sizes: Vec<(i64, i64, i32)> = sqlx::query_as(
        "SELECT c.first_step, c.last_step, cardinality(c.steps) FROM metric_chunks c \
         JOIN metric_series s ON s.id = c.series WHERE s.run_id = 'r1' AND s.name = 'loss' ORDER BY c.first_step",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        sizes,
        vec![(0, 77, 78), (78, 155, 78), (156, 233, 78), (234, 299, 66)]
    );
    // Each chunk's lowest, highest and last finite value (migration 0013) are its points'.
    type Extremes = (
        Vec<i64>,
        Vec<Option<f64>>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    );
    let chunks: Vec<Extremes> =
        sqlx::query_as("SELECT steps, vals, vmin, vmax, vlast FROM metric_chunks")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(chunks.len() >= 4);
    for (steps, vals, vmin, vmax, vlast) in chunks {
        let finite: Vec<f64> = vals
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        assert_eq!(steps.len(), vals.len());
        assert_eq!(vmin, finite.iter().copied().reduce(f64::min));
        assert_eq!(vmax, finite.iter().copied().reduce(f64::max));
        assert_eq!(vlast, finite.last().copied());
    }
    let left: Option<String> =
        sqlx::query_scalar("SELECT CAST(to_regclass('metric_points') AS TEXT)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(left, None, "the table of rows is gone");
    pool.close().await;
    std::fs::remove_dir_all(old).ok();
    db.remove().await;
}

/// What makes migration 0014 fail halfway on both backends: an index already named as the
/// one it creates, on another table. Its first statement (a new column on `runs`) succeeds;
/// the second fails.
const IN_THE_WAY: [&str; 2] = [
    "CREATE TABLE in_the_way (x INTEGER)",
    "CREATE INDEX runs_by_claim_key ON in_the_way (x)",
];

/// The names of the migrations `store` applied when it opened.
fn applied(store: &Store) -> Vec<String> {
    store
        .migrations_applied()
        .iter()
        .map(|m| m.to_string())
        .collect()
}

/// The failed migration's error names it, says it was rolled back and what to do.
fn check_failure(e: &hyperdial_store::StoreError, backend: &str, kept: &str) {
    let text = e.to_string();
    for part in [
        &format!("migration 0014_claim_keys failed on {backend} and was rolled back"),
        "runs_by_claim_key",
        "The database is as the previous migration left it",
        kept,
        "Restore the backup",
        "report this error",
    ] {
        assert!(text.contains(part), "`{part}` missing: {text}");
    }
}

#[tokio::test]
async fn a_failed_sqlite_migration_is_named_and_rolled_back() {
    let db = TestDb::sqlite();
    let (pool, old) = old_sqlite(&db, "0014").await;
    for sql in IN_THE_WAY {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let e = db.open().await.unwrap_err();
    check_failure(&e, "SQLite", "was not opened");
    // Nothing of 0014 is left: not its column, not its record.
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('runs')")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(columns.iter().any(|c| c == "repeat_of"), "{columns:?}");
    assert!(!columns.iter().any(|c| c == "claim_key"), "{columns:?}");
    let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(newest, 11);
    // Out of the way, the next start applies it and says so.
    sqlx::query("DROP TABLE in_the_way")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    applied_once_out_of_the_way(db, old).await;
}

#[tokio::test]
async fn a_failed_postgres_migration_is_named_and_rolled_back() {
    let Some(db) =
        TestDb::postgres("store upgrade a_failed_postgres_migration_is_named_and_rolled_back")
            .await
    else {
        return;
    };
    let (pool, old) = old_postgres(&db, "0012").await;
    for sql in IN_THE_WAY {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let e = db.open().await.unwrap_err();
    // 0012 and 0013 went in before 0014 failed, and stay.
    check_failure(
        &e,
        "PostgreSQL",
        "(migrations 0012_metric_chunks, 0013_chunk_summaries, applied just before, stay applied)",
    );
    let claim_key: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.columns \
         WHERE table_name = 'runs' AND column_name = 'claim_key'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(claim_key, 0);
    let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(newest, 13);
    sqlx::query("DROP TABLE in_the_way")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    applied_once_out_of_the_way(db, old).await;
}

/// With what was in the way dropped: the next open applies the failed migration and the one
/// after it (and says so), the open after that applies nothing; then `db` and the directory
/// of old migrations `old` are removed.
async fn applied_once_out_of_the_way(db: TestDb, old: std::path::PathBuf) {
    let store = db.open().await.unwrap();
    assert_eq!(
        applied(&store),
        [
            "0014_claim_keys",
            "0015_partial_repeat_index",
            "0016_end_cause"
        ]
    );
    store.close().await;
    let store = db.open().await.unwrap();
    assert!(applied(&store).is_empty());
    store.close().await;
    std::fs::remove_dir_all(old).ok();
    db.remove().await;
}

/// Runs the server ended before runs had a cause (migrations up to 0015), one per error the
/// server wrote then, and a run its agent reported crashed in the server's own words.
const ENDED_BEFORE_CAUSES: [&str; 7] = [
    "INSERT INTO projects (id, name, created_ms) VALUES (1, 'default', 0)",
    "INSERT INTO sweeps (id, project_id, method, state, source, config_hash, seed, next_number, created_ms, updated_ms) \
     VALUES ('s1', 1, 'random', 'running', 'method: random', 'h', 1, 5, 0, 0)",
    "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, next_step, agent_id, error) \
     VALUES ('silent', 's1', 1, 1, 'crashed', '{}', '{}', 0, 0, 'a1', 'the agent stopped reporting')",
    "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, next_step, agent_id, error) \
     VALUES ('gone', 's1', 1, 2, 'crashed', '{}', '{}', 0, 0, 'a1', 'its agent process is gone (this machine)')",
    "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, next_step, error) \
     VALUES ('trial', 's1', 1, 3, 'crashed', '{}', '{}', 0, 0, \
     'no heartbeat or tell for 60 s (the client that asked for this trial stopped)')",
    "INSERT INTO runs (id, project_id, state, params, config, created_ms, next_step, error) \
     VALUES ('alone', 1, 'crashed', '{}', '{}', 0, 0, \
     'the process tracking this run stopped reporting (no heartbeat, metrics or output for the run timeout)')",
    "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, next_step, agent_id, error) \
     VALUES ('killed', 's1', 1, 4, 'failed', '{}', '{}', 0, 0, 'a1', 'the agent stopped reporting')",
];

/// Opening a database of the schema before run causes gives each run the server ended the
/// cause its error named then; a run ended by its reporter gets none, whatever its words; and
/// the server's decisions work on the causes at once (a late end takes back the silent run).
async fn check_causes(store: &Store) {
    use hyperdial_store::{EndCause, LateEnd};
    let cause = |id: &'static str| async move { store.run(id).await.unwrap().unwrap().end_cause };
    assert_eq!(cause("silent").await, Some(EndCause::AgentSilent));
    assert_eq!(cause("gone").await, Some(EndCause::AgentGone));
    assert_eq!(cause("trial").await, Some(EndCause::ClientSilent));
    assert_eq!(cause("alone").await, Some(EndCause::RunSilent));
    assert_eq!(cause("killed").await, None);
    let silent = [EndCause::AgentSilent, EndCause::AgentGone];
    assert!(matches!(
        store.take_back_late_end("silent", &silent).await.unwrap(),
        LateEnd::TakenBack { .. }
    ));
    assert_eq!(
        store.take_back_late_end("killed", &silent).await.unwrap(),
        LateEnd::NotTaken
    );
}

/// Open `db`, whose schema is before run causes (its old migrations in `old`): the one
/// migration applied, the causes right; then remove both.
async fn upgraded_with_causes(db: TestDb, old: std::path::PathBuf) {
    let store = db.open().await.unwrap();
    assert_eq!(applied(&store), ["0016_end_cause"]);
    check_causes(&store).await;
    store.close().await;
    std::fs::remove_dir_all(old).ok();
    db.remove().await;
}

#[tokio::test]
async fn sqlite_runs_ended_by_the_server_get_their_cause_on_upgrade() {
    let db = TestDb::sqlite();
    let (pool, old) = old_sqlite(&db, "0016").await;
    for sql in ENDED_BEFORE_CAUSES {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    upgraded_with_causes(db, old).await;
}

#[tokio::test]
async fn postgres_runs_ended_by_the_server_get_their_cause_on_upgrade() {
    let Some(db) = TestDb::postgres(
        "store upgrade postgres_runs_ended_by_the_server_get_their_cause_on_upgrade",
    )
    .await
    else {
        return;
    };
    let (pool, old) = old_postgres(&db, "0016").await;
    for sql in ENDED_BEFORE_CAUSES {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    upgraded_with_causes(db, old).await;
}
