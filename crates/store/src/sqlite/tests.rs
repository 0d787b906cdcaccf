//! SQLite-only store tests: how faults are sorted, a transaction dropped midway, a full
//! volume, and the in-place upgrade of a database of an older schema. Behaviour shared by
//! every backend is in `tests/conformance.rs`.

use std::path::{Path, PathBuf};

use sqlx::Row;

use super::*;
use crate::storage::Inserted;
use crate::Fault;

async fn store() -> (SqliteStorage, PathBuf) {
    let dir = std::env::temp_dir().join(format!("hyperdial-store-{}", new_id("t")));
    let store = SqliteStorage::open(&dir.join("db.sqlite")).await.unwrap();
    (store, dir)
}

fn sweep<'a>() -> NewSweep<'a> {
    NewSweep {
        project: "default",
        name: Some("s"),
        method: "grid",
        source: "method: grid",
        source_file: None,
        config_hash: "h",
        seed: 7,
        metric_name: Some("loss"),
        goal: Some("minimize"),
    }
}

/// A directory named as the database is said to be one, with the file to name instead, not
/// reported as SQLite's "unable to open database file" I/O error.
#[tokio::test]
async fn a_directory_named_as_the_database_names_the_file_to_give() {
    let dir = std::env::temp_dir().join(format!("hyperdial-store-{}", new_id("t")));
    std::fs::create_dir_all(&dir).unwrap();
    let Err(err) = SqliteStorage::open(&dir).await else {
        panic!("a directory opened as a database");
    };
    assert!(matches!(err, StoreError::Url { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "give the database file, e.g. {}",
            dir.join("hyperdial.db").display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn sqlite_faults_are_sorted_by_cause() {
    let (store, dir) = store().await;
    // A write through a read-only connection is SQLite's own SQLITE_READONLY.
    let err: StoreError = sqlx::query("INSERT INTO projects (name, created_ms) VALUES ('x', 0)")
        .execute(&store.reader)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
    assert_eq!(err.fault(), Some(Fault::ReadOnly));
    assert_eq!(err.to_string(), "the database is read-only");
    // A bug (bad SQL) is no fault.
    let err: StoreError = sqlx::query("SELECT * FROM no_such_table")
        .execute(&store.reader)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(err, StoreError::Db(_)), "{err:?}");
    assert_eq!(err.fault(), None);
    let full: StoreError =
        sqlx::Error::Io(std::io::Error::from_raw_os_error(28 /* ENOSPC */)).into();
    assert_eq!(full.fault(), Some(Fault::DiskFull));
    // After a fault the writer still works (a fresh connection if need be).
    let s = store.insert_sweep_once(&sweep()).await.unwrap();
    assert_eq!(s.state, SweepState::Running);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_transaction_dropped_after_a_failed_statement_leaves_the_writer_usable() {
    let (store, dir) = store().await;
    for _ in 0..3 {
        let mut tx = store.begin().await.unwrap();
        project_id(&mut tx, "kept-out").await.unwrap();
        // A failing statement, then the transaction is dropped without commit.
        sqlx::query("INSERT INTO no_such_table VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        drop(tx);
    }
    let s = store.insert_sweep_once(&sweep()).await.unwrap();
    assert!(store.sweep(&s.id).await.unwrap().is_some());
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM projects WHERE name = 'kept-out'")
        .fetch_one(&store.reader)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 0, "a dropped transaction stored nothing");
    std::fs::remove_dir_all(dir).ok();
}

/// How many projects are named `name`.
async fn projects_named(store: &SqliteStorage, name: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM projects WHERE name = $1")
        .bind(name)
        .fetch_one(&store.reader)
        .await
        .unwrap()
        .get("n")
}

/// A storage fault met on the one-hop path rolls the whole transaction back, and the
/// connection that met it is closed rather than reused: here the fault (`SQLITE_READONLY`)
/// is made by switching the writer connection itself to read-only (`query_only`), so a reused
/// connection would refuse every later write too.
#[tokio::test]
async fn a_fault_on_the_one_hop_path_rolls_back_and_the_next_write_works() {
    let (store, dir) = store().await;
    let err = store
        .write(|db| {
            db.execute(
                "INSERT INTO projects (name, created_ms) VALUES ('rolled-back', 0)",
                [],
            )?;
            db.execute_batch("PRAGMA query_only = ON")?;
            db.execute(
                "INSERT INTO projects (name, created_ms) VALUES ('refused', 0)",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
    assert_eq!(err.fault(), Some(Fault::ReadOnly));
    assert_eq!(projects_named(&store, "rolled-back").await, 0);
    // The next writes, on either path, get a fresh connection and succeed.
    store
        .write(|db| {
            db.execute(
                "INSERT INTO projects (name, created_ms) VALUES ('after', 0)",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(projects_named(&store, "after").await, 1);
    let s = store.insert_sweep_once(&sweep()).await.unwrap();
    let run = store
        .insert_suggested_run(
            NewRun {
                sweep_id: Some(s.id.clone()),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
    assert!(matches!(run, Inserted::Inserted(_)), "{run:?}");
    // An operation's own error (a bug, not a fault) rolls back too and keeps the connection.
    let err = store
        .write(|db| {
            db.execute(
                "INSERT INTO projects (name, created_ms) VALUES ('bug', 0)",
                [],
            )?;
            db.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.fault(), None, "{err:?}");
    assert_eq!(projects_named(&store, "bug").await, 0);
    assert_eq!(
        store.heartbeat(&inserted_id(run)).await.unwrap(),
        Some((false, None))
    );
    store.close_pools().await;
    std::fs::remove_dir_all(dir).ok();
}

fn inserted_id(inserted: Inserted) -> String {
    match inserted {
        Inserted::Inserted(run) => run.id,
        Inserted::Stale => panic!("stale"),
    }
}

/// A fresh directory with a tmpfs of 2 MiB mounted on it (root only), else `None` after
/// recording the skip.
fn small_volume(what: &str) -> Option<PathBuf> {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("hyperdial-store-full-{}", new_id("t")));
    std::fs::create_dir_all(&dir).unwrap();
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    let mounted = root.unwrap_or(false)
        && std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
    if mounted {
        return Some(dir);
    }
    let line = format!("SKIPPED: {what} (mounting a tmpfs needs root)");
    println!("{line}");
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/skipped.txt");
    if list.exists() {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(list) {
            writeln!(f, "{line}").ok();
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    None
}

/// Fill the volume at `dir` to the last byte; the file returned frees it when removed.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    while f.write_all(&[0xa5; 4096]).is_ok() {}
    while f.write_all(&[0]).is_ok() {}
    filler
}

/// The one-hop path on a real full volume: a claim's insert that does not fit is `DiskFull`
/// and leaves the sweep's next number where it was (the whole transaction rolled back); once
/// space is freed the same claim succeeds on the same store.
#[tokio::test]
async fn a_full_volume_refuses_a_one_hop_claim_whole_and_the_store_heals() {
    let Some(dir) = small_volume("store one-hop disk-full test") else {
        return;
    };
    let store = SqliteStorage::open(&dir.join("db.sqlite")).await.unwrap();
    let s = store.insert_sweep_once(&sweep()).await.unwrap();
    let filler = fill(&dir);
    let big = serde_json::json!({ "blob": "x".repeat(64 * 1024) });
    let claim = |number: i64| {
        store.insert_suggested_run(
            NewRun {
                sweep_id: Some(s.id.clone()),
                params: big.clone(),
                config: big.clone(),
                ..Default::default()
            },
            number,
        )
    };
    let mut next = 1;
    let err = loop {
        match claim(next).await {
            Ok(Inserted::Inserted(_)) => next += 1,
            Ok(Inserted::Stale) => panic!("stale at {next}"),
            Err(e) => break e,
        }
        assert!(next < 200, "the full volume refused nothing");
    };
    assert!(matches!(err, StoreError::DiskFull(_)), "{err:?}");
    let sweep_now = store.sweep(&s.id).await.unwrap().unwrap();
    assert_eq!(
        sweep_now.next_number, next,
        "the refused claim took no number"
    );
    assert_eq!(store.trials(&s.id).await.unwrap().len() as i64, next - 1);
    std::fs::remove_file(&filler).unwrap();
    assert!(matches!(claim(next).await.unwrap(), Inserted::Inserted(_)));
    assert_eq!(
        store.sweep(&s.id).await.unwrap().unwrap().next_number,
        next + 1
    );
    store.close_pools().await;
    std::process::Command::new("umount")
        .arg("-l")
        .arg(&dir)
        .status()
        .ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// The disk-full path on a real full volume (root only: it mounts a tmpfs), at the store's
/// level: the failing write is `DiskFull`, nothing of it is stored, and once space is freed
/// the very next write succeeds on the same `Store`.
#[tokio::test]
async fn a_full_volume_fails_writes_with_disk_full_and_the_store_heals() {
    let Some(dir) = small_volume("store disk-full test") else {
        return;
    };
    let store = SqliteStorage::open(&dir.join("db.sqlite")).await.unwrap();
    let run = store
        .insert_run(NewRun {
            project: "p".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let filler = fill(&dir);
    let text = "x".repeat(64 * 1024);
    let mut refused = None;
    for i in 0..200 {
        match store.append_output(&run.id, "stdout", &text).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (written, err) = refused.expect("the full volume refused a write");
    assert!(matches!(err, StoreError::DiskFull(_)), "{err:?}");
    assert_eq!(
        store.output(&run.id).await.unwrap().len(),
        written * text.len()
    );
    std::fs::remove_file(&filler).unwrap();
    assert!(store
        .append_output(&run.id, "stdout", "back")
        .await
        .unwrap());
    assert_eq!(
        store.output(&run.id).await.unwrap().len(),
        written * text.len() + 4
    );
    store.close_pools().await;
    std::process::Command::new("umount")
        .arg("-l")
        .arg(&dir)
        .status()
        .ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// A database written by the schema of migrations 0001-0006 (before the unique run numbers)
/// upgrades in place when opened: its data stays, duplicate numbers are renumbered after the
/// sweep's last, a second retry of one run becomes a plain run, and the new indexes hold.
#[tokio::test]
async fn a_database_of_the_previous_schema_upgrades_in_place() {
    let dir = std::env::temp_dir().join(format!("hyperdial-upgrade-{}", new_id("t")));
    let old = dir.join("migrations");
    std::fs::create_dir_all(&old).unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&here).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "0007" {
            std::fs::copy(&path, old.join(&name)).unwrap();
        }
    }
    let file = dir.join("db.sqlite");
    let options = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(&file)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let rows = [
        // (id, number, created_ms, retry_of)
        ("r1", 1, 10, None),
        ("r2", 2, 20, None),
        ("r2b", 2, 25, None),
        ("r3", 3, 30, Some("r1")),
        ("r4", 4, 40, Some("r1")),
    ];
    sqlx::query("INSERT INTO projects (id, name, created_ms) VALUES (1, 'default', 0)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO sweeps (id, project_id, method, state, source, config_hash, seed, next_number, created_ms, updated_ms) \
         VALUES ('s1', 1, 'grid', 'running', 'method: grid', 'h', 1, 5, 0, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (id, number, created, retry_of) in rows {
        sqlx::query(
            "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms, retry_of, attempt) \
             VALUES ($1, 's1', 1, $2, 'finished', '{}', '{}', $3, $4, $5)",
        )
        .bind(id)
        .bind(number)
        .bind(created)
        .bind(retry_of)
        .bind(if retry_of.is_some() { 2 } else { 1 })
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = SqliteStorage::open(&file).await.unwrap();
    let numbers: Vec<(String, i64, i64, Option<String>)> =
        sqlx::query("SELECT id, number, attempt, retry_of FROM runs ORDER BY number")
            .fetch_all(&store.reader)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get("id"),
                    r.get("number"),
                    r.get("attempt"),
                    r.get("retry_of"),
                )
            })
            .collect();
    assert_eq!(
        numbers,
        vec![
            ("r1".into(), 1, 1, None),
            ("r2".into(), 2, 1, None),
            ("r3".into(), 3, 2, Some("r1".into())),
            ("r4".into(), 4, 2, None),
            ("r2b".into(), 5, 1, None),
        ]
    );
    let sweep = store.sweep("s1").await.unwrap().unwrap();
    assert_eq!(
        sweep.next_number, 6,
        "the next number follows the renumbered runs"
    );
    // The new backstops hold.
    let taken = sqlx::query(
        "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, created_ms) \
         VALUES ('x', 's1', 1, 3, 'queued', '{}', '{}', 0)",
    )
    .execute(&mut *store.begin().await.unwrap())
    .await
    .unwrap_err();
    assert!(StoreError::from(taken).is_unique_violation());
    let retried = store
        .queue_retries_once("s1", &["r1".into(), "r2".into()], false)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1, "r1 has its retry already");
    assert_eq!(retried[0].retry_of.as_deref(), Some("r2"));
    assert_eq!(retried[0].number, Some(6));
    store.close_pools().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// The log grown past the checkpoint threshold by the hot writer is copied into the database
/// file by the checkpointer thread, not by the commits (whose automatic checkpoint the log
/// hook replaces), and the writer's next commit starts the log again from its beginning.
#[tokio::test]
async fn the_checkpointer_copies_the_log_off_the_writer_and_the_log_starts_again() {
    let (store, dir) = store().await;
    store
        .write(|db| {
            db.execute("CREATE TABLE filler (x BLOB)", [])?;
            Ok(())
        })
        .await
        .unwrap();
    // Commit until the log passes the threshold (about five pages a commit), short of the
    // inline checkpoint's.
    let mut commits = 0;
    while store.hot.wal_pages() < raw::CHECKPOINT_AT {
        assert!(commits < raw::CHECKPOINT_AT, "the log does not grow");
        store
            .write(|db| {
                db.execute("INSERT INTO filler VALUES (randomblob(16000))", [])?;
                Ok(())
            })
            .await
            .unwrap();
        commits += 1;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store.hot.wal_pages() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint round; the log has {} pages",
            store.hot.wal_pages()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    store
        .write(|db| {
            db.execute("INSERT INTO filler VALUES (randomblob(100))", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let pages = store.hot.wal_pages();
    assert!(
        (1..10).contains(&pages),
        "the log did not start again: {pages} pages"
    );
    let wal = std::fs::metadata(dir.join("db.sqlite-wal")).unwrap().len();
    assert!(
        wal < 2 * 4096 * u64::try_from(raw::CHECKPOINT_AT).unwrap(),
        "log file of {wal} bytes"
    );
    let rows: i64 = store
        .read(|db| Ok(db.query_row("SELECT count(*) FROM filler", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(rows, i64::from(commits) + 1);
    store.close_pools().await;
    std::fs::remove_dir_all(dir).ok();
}
