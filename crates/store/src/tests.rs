//! Store tests on a temporary SQLite file.

use super::*;

async fn store() -> (Store, PathBuf) {
    let dir = std::env::temp_dir().join(format!("hyperdial-store-{}", new_id("t")));
    let store = Store::open(&dir.join("db.sqlite")).await.unwrap();
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

#[tokio::test]
async fn sweep_and_run_round_trip() {
    let (store, dir) = store().await;
    let s = store.insert_sweep(sweep()).await.unwrap();
    assert_eq!(s.state, "running");
    assert_eq!(
        store
            .find_resumable("default", "h")
            .await
            .unwrap()
            .unwrap()
            .id,
        s.id
    );
    let mut tx = store.begin().await.unwrap();
    let n = tx.next_number(&s.id).await.unwrap();
    let run = tx
        .insert_run(NewRun {
            sweep_id: Some(s.id.clone()),
            project: "default".into(),
            number: Some(n),
            params: serde_json::json!({"a": 1}),
            config: serde_json::json!({"a": 1}),
            grid_index: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(run.number, Some(1));
    assert_eq!(store.sweep_counts(&s.id).await.unwrap()["running"], 1);
    let done = store
        .finish_run(&run.id, "finished", Some(0), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, "finished");
    // A final state sticks.
    let again = store
        .finish_run(&run.id, "failed", Some(1), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.state, "finished");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn metrics_are_exact_and_keep_best_and_summary() {
    let (store, dir) = store().await;
    let run = store
        .insert_run(NewRun {
            project: "p".into(),
            params: Value::Object(Map::new()),
            config: Value::Object(Map::new()),
            ..Default::default()
        })
        .await
        .unwrap();
    let values = [0.5, 0.123_456_789_012_345_68, 0.3, f64::MIN_POSITIVE, 0.4];
    let points: Vec<Point> = values
        .iter()
        .map(|v| Point {
            step: None,
            time_ms: None,
            values: vec![("loss".into(), Some(*v)), ("acc".into(), None)],
        })
        .collect();
    let obj = Objective {
        name: "loss",
        maximize: false,
    };
    let a = store
        .append_metrics(&run.id, &points, Some(obj))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.accepted, 10);
    assert_eq!(a.metric, Some(f64::MIN_POSITIVE));
    let h = store.history(&run.id).await.unwrap();
    assert_eq!(h.len(), 5);
    for (i, p) in h.iter().enumerate() {
        assert_eq!(p.step, i as i64);
        assert_eq!(
            p.values["loss"].as_f64().unwrap().to_bits(),
            values[i].to_bits()
        );
        assert!(p.values["acc"].is_null());
    }
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.summary["loss"], serde_json::json!(0.4));
    assert_eq!(r.next_step, 5);
    // Explicit steps and re-logging a step overwrite.
    let p = Point {
        step: Some(2),
        time_ms: Some(1),
        values: vec![("loss".into(), Some(9.0))],
    };
    store
        .append_metrics(&run.id, &[p], Some(obj))
        .await
        .unwrap();
    let h = store.history(&run.id).await.unwrap();
    assert_eq!(h[2].values["loss"], serde_json::json!(9.0));
    assert_eq!(
        store.last_value(&run.id, "loss").await.unwrap(),
        Some(Some(0.4))
    );
    assert_eq!(store.last_value(&run.id, "acc").await.unwrap(), Some(None));
    store
        .set_user_summary(
            &run.id,
            &serde_json::from_str(r#"{"loss": 1.5, "note": "x"}"#).unwrap(),
            None,
        )
        .await
        .unwrap();
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.summary["loss"], serde_json::json!(1.5));
    assert_eq!(r.summary["note"], serde_json::json!("x"));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_metric_counts_history_and_summary() {
    let (store, dir) = store().await;
    let s = store.insert_sweep(sweep()).await.unwrap();
    let new_run = || NewRun {
        sweep_id: Some(s.id.clone()),
        project: "default".into(),
        params: Value::Object(Map::new()),
        config: Value::Object(Map::new()),
        ..Default::default()
    };
    let min = Objective {
        name: "loss",
        maximize: false,
    };
    let summary = |v: Value| {
        serde_json::json!({ "loss": v })
            .as_object()
            .unwrap()
            .clone()
    };
    // Summary only (what Keras' W&B callback writes): the summary value is the metric.
    let only = store.insert_run(new_run()).await.unwrap();
    let m = store
        .set_user_summary(&only.id, &summary(serde_json::json!(0.25)), Some(min))
        .await
        .unwrap();
    assert_eq!(m, Some(Some(0.25)));
    // History and summary: the best of both; a replaced summary value no longer counts.
    let both = store.insert_run(new_run()).await.unwrap();
    let points: Vec<Point> = [3.0, f64::INFINITY, 1.0, 2.0]
        .iter()
        .map(|v| Point {
            step: None,
            time_ms: None,
            values: vec![("loss".into(), Some(*v))],
        })
        .collect();
    let a = store
        .append_metrics(&both.id, &points, Some(min))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.metric, Some(1.0), "infinity is not a metric value");
    let set = |v: Value, obj| {
        let store = &store;
        let id = both.id.clone();
        async move {
            store
                .set_user_summary(&id, &summary(v), obj)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(set(serde_json::json!(0.5), Some(min)).await, Some(0.5));
    assert_eq!(set(serde_json::json!(4.0), Some(min)).await, Some(1.0));
    assert_eq!(set(serde_json::json!("n/a"), Some(min)).await, Some(1.0));
    // An explicit summary value stays when the metric is logged later, and keeps counting
    // (a documented difference: W&B replaces the summary value with the logged one, 1.0 here).
    assert_eq!(set(serde_json::json!(0.5), Some(min)).await, Some(0.5));
    let later = [Point {
        step: None,
        time_ms: None,
        values: vec![("loss".into(), Some(2.0))],
    }];
    let a = store
        .append_metrics(&both.id, &later, Some(min))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.metric, Some(0.5));
    let max = Objective {
        name: "loss",
        maximize: true,
    };
    assert_eq!(set(serde_json::json!(3.5), Some(max)).await, Some(3.5));
    // Later points keep counting against the summary value.
    let more = [Point {
        step: None,
        time_ms: None,
        values: vec![("loss".into(), Some(7.0))],
    }];
    let a = store
        .append_metrics(&both.id, &more, Some(max))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.metric, Some(7.0));
    // Spans for imputation: lowest, highest, last finite logged value (summary excluded).
    let spans = store.metric_spans(&s.id, "loss").await.unwrap();
    assert_eq!(
        spans,
        [MetricSpan {
            run_id: both.id.clone(),
            lowest: 1.0,
            highest: 7.0,
            last: 7.0
        }]
    );
    assert_eq!(
        store
            .set_user_summary("nope", &summary(serde_json::json!(1)), None)
            .await
            .unwrap(),
        None
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn output_stop_and_stale_runs() {
    let (store, dir) = store().await;
    let s = store.insert_sweep(sweep()).await.unwrap();
    let run = store
        .insert_run(NewRun {
            sweep_id: Some(s.id.clone()),
            project: "default".into(),
            params: Value::Object(Map::new()),
            config: Value::Object(Map::new()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(store
        .append_output(&run.id, "stdout", "hello\n")
        .await
        .unwrap());
    assert!(store
        .append_output(&run.id, "stderr", "oops\n")
        .await
        .unwrap());
    assert!(!store.append_output("nope", "stdout", "x").await.unwrap());
    assert_eq!(store.output(&run.id).await.unwrap(), "hello\noops\n");
    assert_eq!(store.heartbeat(&run.id).await.unwrap(), Some((false, None)));
    store
        .request_stop_for_sweep(&s.id, "cancelled")
        .await
        .unwrap();
    assert_eq!(
        store.heartbeat(&run.id).await.unwrap(),
        Some((true, Some("cancelled".into())))
    );
    let crashed = store.crash_silent_runs(now_ms() + 1000).await.unwrap();
    assert_eq!(crashed, vec![run.id.clone()]);
    assert_eq!(store.run(&run.id).await.unwrap().unwrap().state, "crashed");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let (store, dir) = store().await;
    let s = store.insert_sweep(sweep()).await.unwrap();
    store.close().await;
    let store = Store::open(&dir.join("db.sqlite")).await.unwrap();
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().id, s.id);
    assert_eq!(store.sweeps(Some("default")).await.unwrap().len(), 1);
    assert_eq!(store.sweeps(Some("other")).await.unwrap().len(), 0);
    std::fs::remove_dir_all(dir).ok();
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
    let s = store.insert_sweep(sweep()).await.unwrap();
    assert_eq!(s.state, "running");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_transaction_dropped_after_a_failed_statement_leaves_the_writer_usable() {
    let (store, dir) = store().await;
    for _ in 0..3 {
        let mut tx = store.begin().await.unwrap();
        tx.project_id("kept-out").await.unwrap();
        // A failing statement, then the transaction is dropped without commit.
        sqlx::query("INSERT INTO no_such_table VALUES (1)")
            .execute(&mut *tx.tx)
            .await
            .unwrap_err();
        drop(tx);
    }
    let s = store.insert_sweep(sweep()).await.unwrap();
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

/// The disk-full path on a real full volume (root only: it mounts a tmpfs), at the store's
/// level: the failing write is `DiskFull`, nothing of it is stored, and once space is freed
/// the very next write succeeds on the same `Store`.
#[tokio::test]
async fn a_full_volume_fails_writes_with_disk_full_and_the_store_heals() {
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
    if !mounted {
        let line = "SKIPPED: store disk-full test (mounting a tmpfs needs root)";
        println!("{line}");
        let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/skipped.txt");
        if list.exists() {
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(list) {
                writeln!(f, "{line}").ok();
            }
        }
        std::fs::remove_dir_all(&dir).ok();
        return;
    }
    let store = Store::open(&dir.join("db.sqlite")).await.unwrap();
    let run = store
        .insert_run(NewRun {
            project: "p".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    while f.write_all(&[0xa5; 4096]).is_ok() {}
    while f.write_all(&[0]).is_ok() {}
    drop(f);
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
    store.close().await;
    std::process::Command::new("umount")
        .arg("-l")
        .arg(&dir)
        .status()
        .ok();
    std::fs::remove_dir_all(&dir).ok();
}
