//! One conformance suite for every storage backend: each test below runs once on SQLite (a
//! temporary file) and once on PostgreSQL (a database of its own, created in the server
//! `HYPERDIAL_TEST_PG` names and dropped afterwards). Without `HYPERDIAL_TEST_PG` the
//! PostgreSQL half reports itself SKIPPED, loudly, instead of passing.
//!
//! Besides every operation's behaviour, it checks what several servers on one database need:
//! concurrent claimers (separate `Store::open` handles) on a grid get distinct numbers and
//! grid points, concurrent metric batches and summary merges on one run lose and duplicate
//! nothing, and the schema itself refuses a second run with a taken number.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use hyperdial_store::{
    now_ms, ConfigMerge, EndCause, Inserted, MetricSpan, NewRepeat, NewRun, NewSweep, Objective,
    Point, RunCondition, RunField, RunFilter, RunFinish, RunQuery, RunState, Store, SweepState,
};
use hyperdial_store::{
    LateEnd, RetryFate, AGENT_PROCESS_GONE, AGENT_STOPPED_REPORTING, LATE_END_PENDING,
};
use serde_json::{json, Map, Value};

use hyperdial_store::testing::TestDb as Db;

/// Instantiate each test once per backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::Db::sqlite();
                    super::$name(&db).await;
                    db.remove().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let test = concat!("store conformance postgres::", stringify!($name));
                    let Some(db) = super::Db::postgres(test).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.remove().await;
                }
            )*
        }
    };
}

conformance!(
    extremes_follow_resends_that_replace_them,
    the_metric_is_the_best_the_history_holds_after_a_step_is_reported_again,
    sweep_and_run_round_trip,
    metrics_are_exact_and_keep_best_and_summary,
    the_metric_counts_history_and_summary,
    output_stop_and_crashes,
    reopening_keeps_everything,
    sweep_transitions_are_conditional,
    retries_are_queued_once_and_claimed_once,
    repeats_are_queued_with_their_params_and_seed,
    run_bookkeeping,
    reads_for_the_dashboard_and_early_termination,
    best_ended_runs_only,
    runs_page_filters_and_sorts_on_json_fields,
    the_schema_refuses_a_taken_number,
    concurrent_claimers_on_a_grid_take_each_point_once,
    concurrent_metric_batches_lose_and_duplicate_nothing,
    concurrent_summary_merges_keep_every_key,
    text_a_backend_cannot_store_is_refused_not_a_bug,
    batches_joined_in_one_commit_stay_exact,
    series_samples_are_even_and_counts_exact,
    trials_changed_reads_what_changed_since_a_mark,
    trials_changed_misses_nothing_committed_by_concurrent_writers,
    finishing_with_points_stores_both_in_one,
    a_tell_and_its_claim_commit_together_and_a_stale_claim_keeps_the_tell,
    a_tell_whose_claim_finds_its_number_taken_keeps_the_tell_and_the_number,
    a_sweep_run_belongs_to_its_sweeps_project,
    series_after_reads_the_tail_only,
    history_merges_series_by_step_and_counts_resent_points_once,
    history_columns_page_through_the_steps_with_gaps_and_non_finite_values,
    points_out_of_order_and_resent_across_a_long_series_stay_exact,
    concurrent_overlapping_resends_store_each_step_once,
    a_claim_key_hands_out_one_run_per_sweep,
    the_claim_key_lookup_is_an_index_seek,
    a_run_with_a_chosen_id_reopens_with_its_history,
    points_uploaded_late_never_replace_a_newer_summary_value,
    a_late_end_takes_back_a_run_crashed_for_silence_whatever_its_retry_did,
    a_run_uploaded_late_keeps_its_own_start_and_end,
);

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

fn sweep_run(sweep_id: &str, grid_index: i64) -> NewRun {
    NewRun {
        sweep_id: Some(sweep_id.to_string()),
        project: "default".into(),
        params: json!({ "a": grid_index }),
        config: json!({ "a": grid_index }),
        grid_index: Some(grid_index),
        ..Default::default()
    }
}

/// A run outside any sweep, with no params: what most tests below write metrics to.
fn plain_run() -> NewRun {
    NewRun {
        project: "p".into(),
        params: json!({}),
        config: json!({}),
        ..Default::default()
    }
}

fn point(values: &[(&str, Option<f64>)]) -> Point {
    Point {
        step: None,
        time_ms: None,
        values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

fn map(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

async fn inserted(store: &Store, new: NewRun, expected: i64) -> hyperdial_store::RunRow {
    match store.insert_suggested_run(new, expected).await.unwrap() {
        Inserted::Inserted(run) => *run,
        Inserted::Stale => panic!("stale at number {expected}"),
    }
}

const MIN: Objective<'static> = Objective {
    name: "loss",
    maximize: false,
};

async fn sweep_and_run_round_trip(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    assert_eq!(s.state, SweepState::Running);
    assert_eq!(s.next_number, 1);
    assert_eq!(
        store
            .find_resumable("default", "h")
            .await
            .unwrap()
            .unwrap()
            .id,
        s.id
    );
    assert!(store.find_finished("default", "h").await.unwrap().is_none());
    let run = inserted(&store, sweep_run(&s.id, 0), 1).await;
    assert_eq!(
        (run.number, run.state, run.grid_index),
        (Some(1), RunState::Running, Some(0))
    );
    // The number is taken: a claim computed from the old snapshot is stale.
    assert_eq!(
        store
            .insert_suggested_run(sweep_run(&s.id, 1), 1)
            .await
            .unwrap(),
        Inserted::Stale
    );
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().next_number, 2);
    assert_eq!(
        store.sweep_counts(&s.id).await.unwrap()[&RunState::Running],
        1
    );
    let done = store
        .finish_run(&run.id, RunState::Finished, Some(0), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, RunState::Finished);
    assert!(done.finished_ms.is_some());
    // A final state sticks.
    let again = store
        .finish_run(&run.id, RunState::Failed, Some(1), Some("late"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.state, again.error), (RunState::Finished, None));
    assert!(store
        .finish_run("nope", RunState::Failed, None, None)
        .await
        .unwrap()
        .is_none());
    // A paused sweep takes no suggested run.
    store
        .transition_sweep(&s.id, &[SweepState::Running], SweepState::Paused, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .insert_suggested_run(sweep_run(&s.id, 1), 2)
            .await
            .unwrap(),
        Inserted::Stale
    );
    store.close().await;
}

async fn metrics_are_exact_and_keep_best_and_summary(db: &Db) {
    let store = db.open().await.unwrap();
    let run = store.insert_run(plain_run()).await.unwrap();
    let values = [0.5, 0.123_456_789_012_345_68, 0.3, f64::MIN_POSITIVE, 0.4];
    let points: Vec<Point> = values
        .iter()
        .map(|v| point(&[("loss", Some(*v)), ("acc", None)]))
        .collect();
    let a = store
        .append_metrics(&run.id, &points, Some(MIN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.accepted, 10);
    assert_eq!(a.metric, Some(f64::MIN_POSITIVE));
    assert!(!a.stop);
    let h = store.history(&run.id).await.unwrap();
    assert_eq!(h.len(), 5);
    for (i, p) in h.iter().enumerate() {
        assert_eq!(p.step, i as i64);
        assert_eq!(
            p.values.get("loss").flatten().unwrap().to_bits(),
            values[i].to_bits()
        );
        assert_eq!(p.values.get("acc"), Some(None), "NaN reads back as null");
    }
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.summary["loss"], json!(0.4));
    assert_eq!(r.next_step, 5);
    // Explicit steps and re-logging a step overwrite; a batch naming a step twice keeps its
    // last value.
    let p = Point {
        step: Some(2),
        time_ms: Some(1),
        values: vec![("loss".into(), Some(8.0)), ("loss".into(), Some(9.0))],
    };
    let a = store
        .append_metrics(&run.id, &[p], Some(MIN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.accepted, 2);
    let h = store.history(&run.id).await.unwrap();
    assert_eq!(h.len(), 5);
    assert_eq!(h[2].values.get("loss"), Some(Some(9.0)));
    assert_eq!(
        store.last_value(&run.id, "loss").await.unwrap(),
        Some(Some(0.4))
    );
    assert_eq!(store.last_value(&run.id, "acc").await.unwrap(), Some(None));
    assert_eq!(store.last_value(&run.id, "nope").await.unwrap(), None);
    store
        .set_user_summary(&run.id, &map(json!({"loss": 1.5, "note": "x"})), None)
        .await
        .unwrap();
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.summary["loss"], json!(1.5));
    assert_eq!(r.summary["note"], json!("x"));
    assert!(store
        .append_metrics("nope", &[point(&[("x", Some(1.0))])], None)
        .await
        .unwrap()
        .is_none());
    store.close().await;
}

async fn the_metric_counts_history_and_summary(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let new_run = || NewRun {
        sweep_id: Some(s.id.clone()),
        project: "default".into(),
        params: json!({}),
        config: json!({}),
        ..Default::default()
    };
    let summary = |v: Value| map(json!({ "loss": v }));
    // Summary only: the summary value is the metric.
    let only = store.insert_run(new_run()).await.unwrap();
    let m = store
        .set_user_summary(&only.id, &summary(json!(0.25)), Some(MIN))
        .await
        .unwrap();
    assert_eq!(m, Some(Some(0.25)));
    // History and summary: the best of both; a replaced summary value no longer counts.
    let both = store.insert_run(new_run()).await.unwrap();
    let points: Vec<Point> = [3.0, f64::INFINITY, 1.0, 2.0]
        .iter()
        .map(|v| point(&[("loss", Some(*v))]))
        .collect();
    let a = store
        .append_metrics(&both.id, &points, Some(MIN))
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
    assert_eq!(set(json!(0.5), Some(MIN)).await, Some(0.5));
    assert_eq!(set(json!(4.0), Some(MIN)).await, Some(1.0));
    assert_eq!(set(json!("n/a"), Some(MIN)).await, Some(1.0));
    assert_eq!(set(json!(0.5), Some(MIN)).await, Some(0.5));
    let a = store
        .append_metrics(&both.id, &[point(&[("loss", Some(2.0))])], Some(MIN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.metric, Some(0.5));
    let max = Objective {
        name: "loss",
        maximize: true,
    };
    assert_eq!(set(json!(3.5), Some(max)).await, Some(3.5));
    let a = store
        .append_metrics(&both.id, &[point(&[("loss", Some(7.0))])], Some(max))
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
            .set_user_summary("nope", &summary(json!(1)), None)
            .await
            .unwrap(),
        None
    );
    store.close().await;
}

/// One value of `loss` at `step`.
fn loss_at(step: i64, value: Option<f64>) -> Point {
    Point {
        step: Some(step),
        time_ms: None,
        values: vec![("loss".into(), value)],
    }
}

async fn the_metric_is_the_best_the_history_holds_after_a_step_is_reported_again(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let append = |run: &str, points: Vec<Point>, obj: Objective<'static>| {
        let (store, run) = (&store, run.to_string());
        async move {
            store
                .append_metrics(&run, &points, Some(obj))
                .await
                .unwrap()
                .unwrap()
                .metric
        }
    };
    // A run with the sweep's next number.
    let new_run = || async {
        let n = store.sweep(&s.id).await.unwrap().unwrap().next_number;
        inserted(&store, sweep_run(&s.id, n), n).await
    };
    let losses = |run: &str| {
        let (store, run) = (&store, run.to_string());
        async move {
            store
                .history(&run)
                .await
                .unwrap()
                .iter()
                .map(|p| (p.step, p.values.get("loss").flatten()))
                .collect::<Vec<_>>()
        }
    };
    // report(0.2, step=0); report(0.3, step=0); tell(0.25), minimizing: the history holds
    // 0.3 and 0.25, so the metric is 0.25, not the replaced 0.2. Told alone and with the
    // next claim (PostgreSQL's one statement does not apply: the series exists).
    for with_claim in [false, true] {
        let run = new_run().await;
        assert_eq!(
            append(&run.id, vec![loss_at(0, Some(0.2))], MIN).await,
            Some(0.2)
        );
        assert_eq!(
            append(&run.id, vec![loss_at(0, Some(0.3))], MIN).await,
            Some(0.3)
        );
        let told = [point(&[("loss", Some(0.25))])];
        let (ended, next) = tell_as_the_server_does(&store, &s.id, &run, &told, with_claim).await;
        if let Some(next) = next {
            assert!(matches!(next, Inserted::Inserted(_)), "{next:?}");
        }
        assert_eq!(ended.metric, Some(0.25));
        assert_eq!(
            store.run(&run.id).await.unwrap().unwrap().metric,
            Some(0.25)
        );
        assert_eq!(losses(&run.id).await, [(0, Some(0.3)), (1, Some(0.25))]);
    }

    // A tell that replaces the best at its step (each backend's end with points).
    for with_claim in [false, true] {
        let run = new_run().await;
        let logged = vec![loss_at(0, Some(0.1)), loss_at(1, Some(0.4))];
        assert_eq!(append(&run.id, logged, MIN).await, Some(0.1));
        let told = [loss_at(0, Some(0.6))];
        let (ended, _) = tell_as_the_server_does(&store, &s.id, &run, &told, with_claim).await;
        assert_eq!(ended.metric, Some(0.4));
    }

    let run = new_run().await;
    // A batch naming a step twice keeps its last value, and so does the metric.
    let twice = vec![loss_at(0, Some(0.2)), loss_at(0, Some(0.9))];
    assert_eq!(append(&run.id, twice, MIN).await, Some(0.9));
    // The best replaced while another step still holds it: unchanged.
    append(
        &run.id,
        vec![loss_at(1, Some(0.1)), loss_at(2, Some(0.1))],
        MIN,
    )
    .await;
    assert_eq!(
        append(&run.id, vec![loss_at(1, Some(0.5))], MIN).await,
        Some(0.1)
    );
    // Replaced by NaN, then by the same value: the best of what is left; unchanged.
    assert_eq!(
        append(&run.id, vec![loss_at(2, None)], MIN).await,
        Some(0.5)
    );
    assert_eq!(
        append(&run.id, vec![loss_at(1, Some(0.5))], MIN).await,
        Some(0.5)
    );
    // The explicit summary's value counts as before: replacing the logged best leaves it.
    store
        .set_user_summary(&run.id, &map(json!({"loss": 0.7})), Some(MIN))
        .await
        .unwrap();
    assert_eq!(
        append(&run.id, vec![loss_at(1, Some(0.8))], MIN).await,
        Some(0.7)
    );
    // Back to the logged values alone when the summary's value is worse than them.
    store
        .set_user_summary(&run.id, &map(json!({"loss": 5.0})), Some(MIN))
        .await
        .unwrap();
    assert_eq!(store.run(&run.id).await.unwrap().unwrap().metric, Some(0.8));

    // Maximizing over a long series (several PostgreSQL chunks): the best, in an early chunk,
    // replaced by a resend of a lower value; the next best is in a later chunk.
    let max = Objective {
        name: "loss",
        maximize: true,
    };
    let long = new_run().await;
    let points: Vec<Point> = (0..300)
        .map(|i| loss_at(i, Some(i as f64 / 1000.0)))
        .collect();
    assert_eq!(append(&long.id, points, max).await, Some(0.299));
    let top = vec![loss_at(10, Some(5.0))];
    assert_eq!(append(&long.id, top, max).await, Some(5.0));
    let resent = vec![loss_at(9, Some(0.009)), loss_at(10, Some(0.0))];
    assert_eq!(append(&long.id, resent, max).await, Some(0.299));
    let h = losses(&long.id).await;
    assert_eq!((h.len(), h[10]), (300, (10, Some(0.0))));
    store.close().await;
}

async fn output_stop_and_crashes(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let by_agent = NewRun {
        agent_id: Some("agent-1".into()),
        ..sweep_run(&s.id, 0)
    };
    let run = inserted(&store, by_agent, 1).await;
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
    // A NUL byte a process printed is kept as U+FFFD (PostgreSQL text cannot hold it).
    assert!(store
        .append_output(&run.id, "stdout", "a\0b\n")
        .await
        .unwrap());
    assert_eq!(
        store.output(&run.id).await.unwrap(),
        "hello\noops\na\u{fffd}b\n"
    );
    assert_eq!(store.heartbeat(&run.id).await.unwrap(), Some((false, None)));
    assert_eq!(store.heartbeat("nope").await.unwrap(), None);
    assert_eq!(
        store
            .request_stop_for_sweep(&s.id, "cancelled")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.heartbeat(&run.id).await.unwrap(),
        Some((true, Some("cancelled".into())))
    );
    // Crashing is conditional: a second janitor (another server) crashes nothing more.
    let other = db.open().await.unwrap();
    let timeout = std::time::Duration::from_secs(60);
    let crashed = store
        .crash_silent_runs(now_ms() + 1000, timeout)
        .await
        .unwrap();
    assert_eq!(crashed, vec![run.id.clone()]);
    assert!(other
        .crash_silent_runs(now_ms() + 1000, timeout)
        .await
        .unwrap()
        .is_empty());
    assert!(other
        .crash_runs(std::slice::from_ref(&run.id), EndCause::AgentGone, "gone")
        .await
        .unwrap()
        .is_empty());
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.state, RunState::Crashed);
    assert_eq!(r.error.as_deref(), Some("the agent stopped reporting"));
    assert_eq!(r.end_cause, Some(EndCause::AgentSilent));
    // It ended when it was last heard from, not when the silence was noticed.
    assert!(r.heartbeat_ms.is_some());
    assert_eq!(r.finished_ms, r.heartbeat_ms);
    // A run that is heard from is not silent.
    let live = inserted(&store, sweep_run(&s.id, 1), 2).await;
    assert!(store
        .crash_silent_runs(live.created_ms - 1, timeout)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .crash_runs(
                &[live.id.clone(), "nope".into()],
                EndCause::AgentGone,
                "its agent process is gone"
            )
            .await
            .unwrap(),
        vec![live.id.clone()]
    );
    // A trial no agent ran (ask/tell: the client claimed it, then neither told nor sent a
    // heartbeat): the error names that silence, and the state is the same.
    let trial = inserted(&store, sweep_run(&s.id, 2), 3).await;
    let crashed = store
        .crash_silent_runs(now_ms() + 1000, std::time::Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(crashed, vec![trial.id.clone()]);
    let r = store.run(&trial.id).await.unwrap().unwrap();
    assert_eq!(r.state, RunState::Crashed);
    assert_eq!(
        r.error.as_deref(),
        Some("no heartbeat or tell for 1.5 s (the client that asked for this trial stopped)")
    );
    assert_eq!(r.end_cause, Some(EndCause::ClientSilent));
    store.close().await;
    other.close().await;
}

async fn reopening_keeps_everything(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    store.close().await;
    let store = db.open().await.unwrap();
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap(), s);
    assert_eq!(store.sweeps(Some("default")).await.unwrap().len(), 1);
    assert_eq!(store.sweeps(None).await.unwrap().len(), 1);
    assert_eq!(store.sweeps(Some("other")).await.unwrap().len(), 0);
    assert!(store
        .describe()
        .starts_with(db.url().split("://").next().unwrap()));
    store.close().await;
}

async fn sweep_transitions_are_conditional(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let paused = store
        .transition_sweep(&s.id, &[SweepState::Running], SweepState::Paused, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused.state, SweepState::Paused);
    assert_eq!(paused.end_reason, None, "only an end records a reason");
    // From a state it is no longer in: nothing changes.
    assert!(store
        .transition_sweep(&s.id, &[SweepState::Running], SweepState::Cancelled, None)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .transition_sweep("nope", &[SweepState::Running], SweepState::Paused, None)
        .await
        .unwrap()
        .is_none());
    store
        .transition_sweep(&s.id, &[SweepState::Paused], SweepState::Running, None)
        .await
        .unwrap()
        .unwrap();
    // An end records what ended it; a later transition clears it.
    let other = store.insert_sweep(sweep()).await.unwrap();
    let ended = store
        .transition_sweep(
            &other.id,
            &[SweepState::Running],
            SweepState::Finished,
            Some("stagnation"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("stagnation"));
    let read = store.sweep(&other.id).await.unwrap().unwrap();
    assert_eq!(read.end_reason.as_deref(), Some("stagnation"));
    let reopened = store
        .transition_sweep(
            &other.id,
            &[SweepState::Finished],
            SweepState::Running,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reopened.end_reason, None);
    // Finishing on an exhausted space is guarded by the number the decision saw.
    let run = inserted(&store, sweep_run(&s.id, 0), 1).await;
    assert!(
        !store
            .finish_sweep_if_unchanged(&s.id, 2, None)
            .await
            .unwrap(),
        "a run is in flight"
    );
    store
        .finish_run(&run.id, RunState::Failed, Some(1), None)
        .await
        .unwrap();
    assert!(
        !store
            .finish_sweep_if_unchanged(&s.id, 1, None)
            .await
            .unwrap(),
        "a stale number"
    );
    // A queued retry is in flight too.
    let retries = store
        .queue_retries(&s.id, std::slice::from_ref(&run.id), false)
        .await
        .unwrap();
    assert_eq!(retries.len(), 1);
    assert!(!store
        .finish_sweep_if_unchanged(&s.id, 3, None)
        .await
        .unwrap());
    // Ending the sweep by a user's action cancels its queued runs in the same step.
    let ended = store
        .transition_sweep(
            &s.id,
            &[SweepState::Running, SweepState::Paused],
            SweepState::Finished,
            Some("stop"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, SweepState::Finished);
    let retry = store.run(&retries[0].id).await.unwrap().unwrap();
    assert_eq!(retry.state, RunState::Cancelled);
    assert!(retry.error.unwrap().contains("`stop`"));
    // A sweep with nothing in flight and an unchanged number finishes.
    let t = store.insert_sweep(sweep()).await.unwrap();
    assert!(store
        .finish_sweep_if_unchanged(&t.id, 1, Some("run_cap"))
        .await
        .unwrap());
    assert!(!store
        .finish_sweep_if_unchanged(&t.id, 1, None)
        .await
        .unwrap());
    let finished = store.sweep(&t.id).await.unwrap().unwrap();
    assert_eq!(finished.state, SweepState::Finished);
    assert_eq!(finished.end_reason.as_deref(), Some("run_cap"));
    assert_eq!(
        store
            .find_finished("default", "h")
            .await
            .unwrap()
            .unwrap()
            .state,
        SweepState::Finished
    );
    store.close().await;
}

async fn retries_are_queued_once_and_claimed_once(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let a = inserted(&store, sweep_run(&s.id, 0), 1).await;
    let b = inserted(&store, sweep_run(&s.id, 1), 2).await;
    store
        .finish_run(&a.id, RunState::Crashed, None, Some("gone"))
        .await
        .unwrap();
    // A run still running is not retried.
    let ids = vec![a.id.clone(), b.id.clone()];
    let queued = store.queue_retries(&s.id, &ids, false).await.unwrap();
    assert_eq!(queued.len(), 1);
    let retry = &queued[0];
    assert_eq!(retry.retry_of.as_deref(), Some(a.id.as_str()));
    assert_eq!(
        (retry.number, retry.attempt, retry.state),
        (Some(3), 2, RunState::Queued)
    );
    assert_eq!((&retry.params, retry.grid_index), (&a.params, a.grid_index));
    assert!(retry.agent_id.is_none() && retry.started_ms.is_none());
    // Idempotent: the schema allows one retry per run, from any server.
    let other = db.open().await.unwrap();
    assert!(other
        .queue_retries(&s.id, std::slice::from_ref(&a.id), false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().next_number, 4);
    assert_eq!(store.retry_counts(&s.id).await.unwrap(), (1, 0));
    // Claimed once: the second claimer finds nothing queued.
    let agent = store
        .register_agent(Some(&s.id), Some("box"), Some(42), Some("linux:x"))
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        store.claim_queued(&s.id, Some(&agent), Some("box"), None),
        other.claim_queued(&s.id, None, None, None)
    );
    let claimed: Vec<_> = [first.unwrap(), second.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, retry.id);
    assert_eq!(claimed[0].state, RunState::Running);
    assert!(claimed[0].started_ms.is_some());
    // A paused sweep hands out no queued run.
    store
        .finish_run(&claimed[0].id, RunState::Failed, Some(1), None)
        .await
        .unwrap();
    let again = store
        .queue_retries(&s.id, std::slice::from_ref(&claimed[0].id), false)
        .await
        .unwrap();
    assert_eq!(again[0].attempt, 3);
    store
        .transition_sweep(&s.id, &[SweepState::Running], SweepState::Paused, None)
        .await
        .unwrap();
    assert!(store
        .claim_queued(&s.id, None, None, None)
        .await
        .unwrap()
        .is_none());
    // A finished sweep is reopened for its retries only when asked.
    store
        .transition_sweep(
            &s.id,
            &[SweepState::Paused],
            SweepState::Finished,
            Some("run_cap"),
        )
        .await
        .unwrap();
    store
        .finish_run(&b.id, RunState::Failed, Some(1), None)
        .await
        .unwrap();
    let none = store
        .queue_retries(&s.id, std::slice::from_ref(&b.id), false)
        .await
        .unwrap();
    assert!(none.is_empty());
    let reopened = store
        .queue_retries(&s.id, std::slice::from_ref(&b.id), true)
        .await
        .unwrap();
    assert_eq!(reopened.len(), 1);
    let sw = store.sweep(&s.id).await.unwrap().unwrap();
    assert_eq!((sw.state, sw.retries_only), (SweepState::Running, true));
    // A sweep running again is not over: it has no end reason until it ends again.
    assert_eq!(sw.end_reason, None);
    // Its retries done, it finishes again and `retries_only` is cleared.
    store
        .finish_run(&again[0].id, RunState::Cancelled, None, None)
        .await
        .unwrap();
    store
        .finish_run(&reopened[0].id, RunState::Finished, Some(0), None)
        .await
        .unwrap();
    assert!(store
        .finish_sweep_if_unchanged(&s.id, sw.next_number, None)
        .await
        .unwrap());
    let sw = store.sweep(&s.id).await.unwrap().unwrap();
    assert_eq!((sw.state, sw.retries_only), (SweepState::Finished, false));
    // Nothing is queued in a cancelled sweep.
    store
        .transition_sweep(&s.id, &[SweepState::Finished], SweepState::Cancelled, None)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .queue_retries(&s.id, std::slice::from_ref(&reopened[0].id), true)
        .await
        .unwrap()
        .is_empty());
    store.close().await;
    other.close().await;
}

fn repeat(of: &str, a: i64, seed: i64) -> NewRepeat {
    NewRepeat {
        repeat_of: of.to_string(),
        params: json!({ "a": a, "seed": seed }),
        config: json!({ "a": a, "seed": seed }),
        seed,
    }
}

async fn repeats_are_queued_with_their_params_and_seed(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let a = inserted(&store, sweep_run(&s.id, 0), 1).await;
    store
        .finish_run(&a.id, RunState::Finished, Some(0), None)
        .await
        .unwrap();
    let elsewhere = store.insert_sweep(sweep()).await.unwrap();
    let foreign = inserted(&store, sweep_run(&elsewhere.id, 0), 1).await;
    // A repeat of a run of another sweep is skipped; the others are numbered in order.
    let asked = vec![
        repeat(&a.id, 0, 11),
        repeat(&foreign.id, 0, 12),
        repeat(&a.id, 0, 13),
    ];
    let queued = store.queue_repeats(&s.id, &asked, false).await.unwrap();
    assert_eq!(queued.len(), 2);
    for (run, seed, number) in [(&queued[0], 11, 2), (&queued[1], 13, 3)] {
        assert_eq!(run.repeat_of.as_deref(), Some(a.id.as_str()));
        assert_eq!(run.seed, Some(seed));
        assert_eq!(run.params, json!({ "a": 0, "seed": seed }));
        assert_eq!(run.config, json!({ "a": 0, "seed": seed }));
        assert_eq!(
            (run.number, run.state, run.attempt, run.grid_index),
            (Some(number), RunState::Queued, 1, None)
        );
        assert!(run.retry_of.is_none() && run.agent_id.is_none());
    }
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().next_number, 4);
    // Read back the same, in the strategy's view too; other runs are no repeats.
    let back = store.run(&queued[1].id).await.unwrap().unwrap();
    assert_eq!((back.repeat_of, back.seed), (Some(a.id.clone()), Some(13)));
    let plain = store.run(&a.id).await.unwrap().unwrap();
    assert_eq!((plain.repeat_of, plain.seed), (None, None));
    let trials = store.trials(&s.id).await.unwrap();
    let repeats: Vec<_> = trials.iter().filter(|t| t.repeat_of.is_some()).collect();
    assert_eq!(repeats.len(), 2);
    // Claimed in order, each once, from two handles.
    let other = db.open().await.unwrap();
    let first = store
        .claim_queued(&s.id, None, None, None)
        .await
        .unwrap()
        .unwrap();
    let second = other
        .claim_queued(&s.id, None, None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.id.as_str(), second.id.as_str()),
        (queued[0].id.as_str(), queued[1].id.as_str())
    );
    assert_eq!(second.seed, Some(13));
    assert!(store
        .claim_queued(&s.id, None, None, None)
        .await
        .unwrap()
        .is_none());
    // A finished sweep is reopened only when asked, until its repeats are done.
    for r in [&first, &second] {
        store
            .finish_run(&r.id, RunState::Finished, Some(0), None)
            .await
            .unwrap();
    }
    store
        .transition_sweep(
            &s.id,
            &[SweepState::Running],
            SweepState::Finished,
            Some("stagnation"),
        )
        .await
        .unwrap()
        .unwrap();
    let more = [repeat(&a.id, 0, 14)];
    assert!(store
        .queue_repeats(&s.id, &more, false)
        .await
        .unwrap()
        .is_empty());
    let reopened = store.queue_repeats(&s.id, &more, true).await.unwrap();
    assert_eq!(reopened.len(), 1);
    let sw = store.sweep(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (sw.state, sw.retries_only, sw.end_reason, sw.next_number),
        (SweepState::Running, true, None, 5)
    );
    // A repeat's retry is the same repeat again: its configuration, `repeat_of` and seed.
    let failed = store
        .claim_queued(&s.id, None, None, None)
        .await
        .unwrap()
        .unwrap();
    store
        .finish_run(&failed.id, RunState::Failed, Some(1), None)
        .await
        .unwrap();
    let retry = store
        .queue_retries(&s.id, std::slice::from_ref(&failed.id), false)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (
            retry[0].repeat_of.as_deref(),
            retry[0].seed,
            retry[0].retry_of.as_deref(),
            retry[0].attempt
        ),
        (Some(a.id.as_str()), Some(14), Some(failed.id.as_str()), 2)
    );
    assert_eq!(retry[0].params, json!({ "a": 0, "seed": 14 }));
    // Nothing is queued in a cancelled sweep.
    store
        .transition_sweep(
            &s.id,
            &[SweepState::Running],
            SweepState::Cancelled,
            Some("cancel"),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .queue_repeats(&s.id, &more, true)
        .await
        .unwrap()
        .is_empty());
    store.close().await;
    other.close().await;
}

async fn run_bookkeeping(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let agent = store
        .register_agent(Some(&s.id), Some("box"), Some(42), Some("linux:b:1:42:7"))
        .await
        .unwrap();
    assert_eq!(
        store.agent_host(&agent).await.unwrap(),
        Some(Some("box".into()))
    );
    assert_eq!(store.agent_host("nope").await.unwrap(), None);
    let mut new = sweep_run(&s.id, 0);
    new.agent_id = Some(agent.clone());
    let run = inserted(&store, new, 1).await;
    assert_eq!(
        store.running_agent_processes().await.unwrap(),
        vec![("linux:b:1:42:7".to_string(), vec![run.id.clone()])]
    );
    assert!(store
        .set_argv(
            &run.id,
            &["python3".into(), "t.py".into()],
            Some("abc"),
            Some(true)
        )
        .await
        .unwrap());
    assert!(store
        .set_argv(&run.id, &["python3".into()], None, None)
        .await
        .unwrap());
    assert!(!store.set_argv("nope", &[], None, None).await.unwrap());
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.argv, json!(["python3"]));
    assert_eq!(
        (r.git_commit.as_deref(), r.git_dirty),
        (Some("abc"), Some(true))
    );
    assert_eq!(
        store
            .merge_config(
                &run.id,
                &map(json!({"a": 9, "opt": {"lr": 0.1, "m": 1}})),
                Some(&json!({"a": 0})),
                100
            )
            .await
            .unwrap(),
        ConfigMerge::Merged
    );
    assert_eq!(
        store
            .merge_config(&run.id, &map(json!({"opt": {"m": 2}})), None, 100)
            .await
            .unwrap(),
        ConfigMerge::Merged
    );
    assert_eq!(
        store
            .merge_config("nope", &Map::new(), None, 100)
            .await
            .unwrap(),
        ConfigMerge::NoRun
    );
    // A merge that would pass the limit writes nothing: 3 values held, 2 new ones, 4 allowed.
    assert_eq!(
        store
            .merge_config(&run.id, &map(json!({"b": 1, "opt": {"w": 2}})), None, 4)
            .await
            .unwrap(),
        ConfigMerge::TooLarge(5)
    );
    assert_eq!(
        store.run(&run.id).await.unwrap().unwrap().config,
        json!({"a": 0, "opt": {"lr": 0.1, "m": 2}})
    );
    let d = store
        .add_delivery(&run.id, 5, 0, &["box:/tmp/a".into()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.delivery.as_ref().unwrap().outstanding(), 5);
    let d = store
        .add_delivery(&run.id, 0, 5, &["box:/tmp/a".into()])
        .await
        .unwrap()
        .unwrap();
    let delivery = d.delivery.unwrap();
    assert_eq!((delivery.missing, delivery.recovered), (5, 5));
    assert_eq!(delivery.files, vec!["box:/tmp/a".to_string()]);
    assert!(store
        .add_delivery("nope", 1, 0, &[])
        .await
        .unwrap()
        .is_none());
    assert!(store
        .request_stop(&run.id, "early", &json!({"rule": "hyperband"}))
        .await
        .unwrap());
    assert!(!store
        .request_stop(&run.id, "early", &json!({}))
        .await
        .unwrap());
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert!(r.stop_requested);
    assert_eq!(r.stop_info, json!({"rule": "hyperband"}));
    let (runs, total) = store
        .runs(&RunFilter {
            sweep: Some(s.id.clone()),
            state: Some(RunState::Running),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((runs.len(), total), (1, 1));
    let (runs, total) = store
        .runs(&RunFilter {
            project: Some("default".into()),
            state: Some(RunState::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((runs.len(), total), (0, 0));
    assert!(store.set_notes(&s.id, "# notes").await.unwrap());
    assert!(!store.set_notes("nope", "x").await.unwrap());
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().notes, "# notes");
    store.close().await;
}

/// The best run is one that ended `finished` or `stopped_early`: a cancelled, failed or
/// crashed run never is, even with the best value, and a running one not yet.
async fn best_ended_runs_only(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let mut runs = Vec::new();
    // (state, loss): the ended-early states hold the lowest and highest values.
    let plan = [
        (RunState::Finished, 2.0),
        (RunState::StoppedEarly, 3.0),
        (RunState::Cancelled, 0.5),
        (RunState::Failed, 0.25),
        (RunState::Crashed, 9.0),
        (RunState::Running, 0.1),
    ];
    for (i, (state, loss)) in plan.iter().enumerate() {
        let r = inserted(&store, sweep_run(&s.id, i as i64), i as i64 + 1).await;
        store
            .append_metrics(&r.id, &[point(&[("loss", Some(*loss))])], Some(MIN))
            .await
            .unwrap();
        if *state != RunState::Running {
            store
                .finish_run(&r.id, *state, Some(0), None)
                .await
                .unwrap();
        }
        runs.push(r.id);
    }
    let best = store.best_run(&s.id, false).await.unwrap().unwrap();
    assert_eq!(
        (best.id.as_str(), best.metric),
        (runs[0].as_str(), Some(2.0))
    );
    let best = store.best_run(&s.id, true).await.unwrap().unwrap();
    assert_eq!(
        (best.id.as_str(), best.metric),
        (runs[1].as_str(), Some(3.0))
    );
    let other = store.insert_sweep(sweep()).await.unwrap();
    let r = inserted(&store, sweep_run(&other.id, 0), 1).await;
    store
        .append_metrics(&r.id, &[point(&[("loss", Some(1.0))])], Some(MIN))
        .await
        .unwrap();
    store
        .finish_run(&r.id, RunState::Cancelled, Some(0), None)
        .await
        .unwrap();
    assert!(store.best_run(&other.id, false).await.unwrap().is_none());
}

async fn reads_for_the_dashboard_and_early_termination(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let a = inserted(&store, sweep_run(&s.id, 0), 1).await;
    let b = inserted(&store, sweep_run(&s.id, 1), 2).await;
    let steps = |vals: &[f64], key: f64| -> Vec<Point> {
        vals.iter()
            .map(|v| point(&[("loss", Some(*v)), ("epoch", Some(key))]))
            .collect()
    };
    store
        .append_metrics(&a.id, &steps(&[3.0, 2.0, 1.0], 1.0), Some(MIN))
        .await
        .unwrap();
    store
        .append_metrics(&b.id, &steps(&[5.0, 4.0], 2.0), Some(MIN))
        .await
        .unwrap();
    store
        .finish_run(&a.id, RunState::Finished, Some(0), None)
        .await
        .unwrap();
    let best = store.best_run(&s.id, false).await.unwrap().unwrap();
    assert_eq!(best.id, a.id);
    // A running run is not the best yet, whatever its value (see `best_ended_runs_only`).
    assert_eq!(store.best_run(&s.id, true).await.unwrap().unwrap().id, a.id);
    let curves = store.curves(&s.id, "loss", Some("epoch")).await.unwrap();
    assert_eq!(curves.len(), 2);
    assert_eq!(curves[0].run_id, a.id);
    assert_eq!(curves[0].state, RunState::Finished);
    assert_eq!(
        curves[0].points.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![Some(3.0), Some(2.0), Some(1.0)]
    );
    assert_eq!(curves[1].points[0].3, Some(2.0));
    let curve = store.run_curve(&b.id, "loss", None).await.unwrap();
    assert_eq!(curve.len(), 2);
    assert_eq!((curve[1].0, curve[1].1, curve[1].3), (1, Some(4.0), None));
    let states = store.run_states(&s.id).await.unwrap();
    assert_eq!(
        states,
        vec![
            (a.id.clone(), 1, RunState::Finished, false),
            (b.id.clone(), 2, RunState::Running, false)
        ]
    );
    let points = store.sweep_points(&s.id).await.unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].metric, Some(1.0));
    assert_eq!(points[1].state, RunState::Running);
    let (n, last) = store.finished_fingerprint(&s.id).await.unwrap();
    assert_eq!(n, 1);
    assert!(last > 0);
    assert!(store.compute_ms(&s.id).await.unwrap() >= 0);
    assert_eq!(
        store.metric_names(&a.id).await.unwrap(),
        vec!["epoch".to_string(), "loss".to_string()]
    );
    let series = store.series(&a.id, "loss").await.unwrap();
    assert_eq!(
        series.iter().map(|p| p.value).collect::<Vec<_>>(),
        vec![Some(3.0), Some(2.0), Some(1.0)]
    );
    let counts = store.sweep_counts(&s.id).await.unwrap();
    assert_eq!(counts[&RunState::Finished], 1);
    assert_eq!(counts[&RunState::Running], 1);
    store.close().await;
}

async fn runs_page_filters_and_sorts_on_json_fields(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let opts = ["adam", "sgd", "adam", "rmsprop"];
    let lrs = [0.1, 0.01, 0.001, 0.05];
    let mut ids = Vec::new();
    for i in 0..4 {
        let mut new = sweep_run(&s.id, i as i64);
        new.params = json!({"lr": lrs[i], "opt": opts[i], "deep.flag": i % 2 == 0});
        let run = inserted(&store, new, i as i64 + 1).await;
        if i < 3 {
            store
                .set_user_summary(&run.id, &map(json!({"acc": i as f64 / 10.0})), None)
                .await
                .unwrap();
        }
        ids.push(run.id);
    }
    store
        .finish_run(&ids[1], RunState::Failed, Some(1), None)
        .await
        .unwrap();
    let page = |q: RunQuery| {
        let store = store.clone();
        async move {
            let (rows, total) = store.runs_page(&q).await.unwrap();
            (
                rows.iter().map(|r| r.number.unwrap()).collect::<Vec<_>>(),
                total,
            )
        }
    };
    let base = RunQuery {
        sweep: Some(s.id.clone()),
        ..Default::default()
    };
    // Sort by a numeric parameter, both ways.
    assert_eq!(
        page(RunQuery {
            sort: Some(RunField::Param("lr".into())),
            ..base.clone()
        })
        .await,
        (vec![3, 2, 4, 1], 4)
    );
    assert_eq!(
        page(RunQuery {
            sort: Some(RunField::Param("lr".into())),
            descending: true,
            ..base.clone()
        })
        .await,
        (vec![1, 4, 2, 3], 4)
    );
    // Sort by a summary value: the run without one comes last.
    assert_eq!(
        page(RunQuery {
            sort: Some(RunField::Summary("acc".into())),
            descending: true,
            ..base.clone()
        })
        .await
        .0,
        vec![3, 2, 1, 4]
    );
    // Range on a parameter, words and booleans in `in`, states, paging.
    assert_eq!(
        page(RunQuery {
            conditions: vec![RunCondition::Range {
                field: RunField::Param("lr".into()),
                lo: Some(0.01),
                hi: Some(0.06),
            }],
            ..base.clone()
        })
        .await,
        (vec![2, 4], 2)
    );
    assert_eq!(
        page(RunQuery {
            conditions: vec![RunCondition::In {
                field: RunField::Param("opt".into()),
                values: vec!["adam".into(), "rmsprop".into(), "7".into()],
            }],
            ..base.clone()
        })
        .await,
        (vec![1, 3, 4], 3)
    );
    assert_eq!(
        page(RunQuery {
            conditions: vec![RunCondition::In {
                field: RunField::Param("deep.flag".into()),
                values: vec!["true".into()],
            }],
            ..base.clone()
        })
        .await,
        (vec![1, 3], 2)
    );
    assert_eq!(
        page(RunQuery {
            conditions: vec![RunCondition::In {
                field: RunField::Number,
                values: vec!["2".into(), "x".into()],
            }],
            ..base.clone()
        })
        .await,
        (vec![2], 1)
    );
    assert_eq!(
        page(RunQuery {
            conditions: vec![RunCondition::In {
                field: RunField::State,
                values: vec!["failed".into(), "1".into()],
            }],
            ..base.clone()
        })
        .await,
        (vec![2], 1)
    );
    assert_eq!(
        page(RunQuery {
            states: vec![RunState::Running],
            limit: Some(2),
            offset: Some(1),
            ..base.clone()
        })
        .await,
        (vec![3, 4], 3)
    );
    assert_eq!(
        page(RunQuery {
            conditions: vec![RunCondition::Range {
                field: RunField::Summary("acc".into()),
                lo: Some(0.05),
                hi: None,
            }],
            ..base.clone()
        })
        .await,
        (vec![2, 3], 2)
    );
    store.close().await;
}

async fn the_schema_refuses_a_taken_number(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let mut first = sweep_run(&s.id, 0);
    first.number = Some(1);
    store.insert_run(first.clone()).await.unwrap();
    let err = store.insert_run(first).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err:?}");
    assert_eq!(err.fault(), None);
    // Runs without a sweep have no number, and any count of them is fine.
    for _ in 0..2 {
        store.insert_run(plain_run()).await.unwrap();
    }
    store.close().await;
}

/// Claimers on separate handles (separate "servers") race for the points of a grid of `M`:
/// each reads a snapshot, picks the lowest free grid index as a grid strategy would, and
/// inserts against the number it read.
async fn concurrent_claimers_on_a_grid_take_each_point_once(db: &Db) {
    const M: i64 = 40;
    const CLAIMERS: usize = 6;
    let first = db.open().await.unwrap();
    let s = first.insert_sweep(sweep()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..CLAIMERS {
        let store = db.open().await.unwrap();
        let sweep_id = s.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = 0;
            let mut stale = 0;
            loop {
                let snapshot = store.sweep(&sweep_id).await.unwrap().unwrap();
                let taken: HashSet<i64> = store
                    .trials(&sweep_id)
                    .await
                    .unwrap()
                    .iter()
                    .filter_map(|t| t.grid_index)
                    .collect();
                let Some(next) = (0..M).find(|i| !taken.contains(i)) else {
                    break;
                };
                match store
                    .insert_suggested_run(sweep_run(&sweep_id, next), snapshot.next_number)
                    .await
                    .unwrap()
                {
                    Inserted::Inserted(_) => mine += 1,
                    Inserted::Stale => stale += 1,
                }
            }
            store.close().await;
            (mine, stale)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap().0;
    }
    assert_eq!(total, M);
    let rows = first.trials(&s.id).await.unwrap();
    let numbers: BTreeSet<i64> = first
        .run_states(&s.id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.1)
        .collect();
    let grid: BTreeSet<i64> = rows.iter().filter_map(|r| r.grid_index).collect();
    assert_eq!(rows.len() as i64, M);
    assert_eq!(numbers, (1..=M).collect());
    assert_eq!(grid, (0..M).collect());
    assert_eq!(
        first.sweep(&s.id).await.unwrap().unwrap().next_number,
        M + 1
    );
    first.close().await;
}

/// Two writers append batches of auto-stepped points to one run at once: every point gets a
/// step of its own, none is lost, none is stored twice.
async fn concurrent_metric_batches_lose_and_duplicate_nothing(db: &Db) {
    const BATCHES: usize = 40;
    let first = db.open().await.unwrap();
    let run = first.insert_run(plain_run()).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..2 {
        let store = db.open().await.unwrap();
        let id = run.id.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..BATCHES {
                let v = (writer * 1000 + i) as f64;
                let batch = [point(&[("x", Some(v))]), point(&[("x", Some(v + 0.5))])];
                store
                    .append_metrics(
                        &id,
                        &batch,
                        Some(Objective {
                            name: "x",
                            maximize: true,
                        }),
                    )
                    .await
                    .unwrap()
                    .unwrap();
            }
            store.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let history = first.history(&run.id).await.unwrap();
    let sent = 2 * BATCHES * 2;
    assert_eq!(history.len(), sent, "one step per point");
    let steps: Vec<i64> = history.iter().map(|p| p.step).collect();
    assert_eq!(steps, (0..sent as i64).collect::<Vec<_>>());
    let values: BTreeSet<u64> = history
        .iter()
        .map(|p| p.values.get("x").flatten().unwrap().to_bits())
        .collect();
    assert_eq!(values.len(), sent, "no value lost or stored twice");
    let r = first.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.next_step, sent as i64);
    assert_eq!(r.metric, Some(1000.0 + BATCHES as f64 - 1.0 + 0.5));
    first.close().await;
}

/// Two writers merge disjoint keys into one run's summary at once: every key stays.
async fn concurrent_summary_merges_keep_every_key(db: &Db) {
    const KEYS: usize = 25;
    let first = db.open().await.unwrap();
    let run = first.insert_run(plain_run()).await.unwrap();
    let stores = Arc::new(vec![db.open().await.unwrap(), db.open().await.unwrap()]);
    let mut tasks = Vec::new();
    for writer in 0..2 {
        let stores = stores.clone();
        let id = run.id.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..KEYS {
                stores[writer]
                    .set_user_summary(&id, &map(json!({ format!("w{writer}_{i}"): i })), None)
                    .await
                    .unwrap()
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = first.run(&run.id).await.unwrap().unwrap();
    for writer in 0..2 {
        for i in 0..KEYS {
            assert_eq!(
                r.summary[&format!("w{writer}_{i}")],
                json!(i),
                "w{writer}_{i}"
            );
        }
    }
    for s in stores.iter() {
        s.close().await;
    }
    first.close().await;
}

/// A name with a NUL character: SQLite stores it; PostgreSQL's text cannot, and the store
/// says the request is at fault (`Rejected`, a `400` at the API), never a bug or a fault.
async fn text_a_backend_cannot_store_is_refused_not_a_bug(db: &Db) {
    let store = db.open().await.unwrap();
    let result = store
        .insert_run(NewRun {
            project: "p".into(),
            name: Some("a\0b".into()),
            params: json!({}),
            config: json!({}),
            ..Default::default()
        })
        .await;
    match result {
        Ok(run) => assert_eq!(run.name.as_deref(), Some("a\0b")),
        Err(e) => {
            assert!(
                matches!(e, hyperdial_store::StoreError::Rejected(_)),
                "{e:?}"
            );
            assert_eq!(e.fault(), None);
        }
    }
    // The store works on.
    assert!(store.sweeps(None).await.unwrap().is_empty());
    store.close().await;
}

/// Many concurrent batches through one handle are written in shared transactions (group
/// commit): each run gets exactly its points, steps auto-assigned in arrival order never
/// collide, resent steps overwrite instead of duplicating, and each series' count of points
/// stays exact.
async fn batches_joined_in_one_commit_stay_exact(db: &Db) {
    const RUNS: usize = 4;
    const WRITERS_PER_RUN: usize = 3;
    const BATCHES: usize = 20;
    let store = db.open().await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let run = store.insert_run(plain_run()).await.unwrap();
        runs.push(run.id);
    }
    let mut tasks = Vec::new();
    for (r, id) in runs.iter().enumerate() {
        for writer in 0..WRITERS_PER_RUN {
            let (store, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..BATCHES {
                    // Explicit steps: writer `w` owns steps w, w + WRITERS, ...; each batch is
                    // sent twice, the second time with other values (a resend overwrites).
                    let step = (i * WRITERS_PER_RUN + writer) as i64;
                    for resend in [0.0, 0.25] {
                        let batch = [Point {
                            step: Some(step),
                            time_ms: Some(1000 + step),
                            values: vec![
                                ("loss".into(), Some(r as f64 + step as f64 + resend)),
                                ("acc".into(), None),
                            ],
                        }];
                        let done = store
                            .append_metrics(&id, &batch, None)
                            .await
                            .unwrap()
                            .unwrap();
                        assert_eq!(done.accepted, 2);
                    }
                }
                // And auto-assigned steps (after every explicit one of this writer).
                store
                    .append_metrics(&id, &[point(&[("extra", Some(writer as f64))])], None)
                    .await
                    .unwrap()
                    .unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let explicit = (BATCHES * WRITERS_PER_RUN) as u64;
    for (r, id) in runs.iter().enumerate() {
        let loss = store.series(id, "loss").await.unwrap();
        assert_eq!(loss.len() as u64, explicit, "one point per step");
        for (i, p) in loss.iter().enumerate() {
            assert_eq!(p.step, i as i64);
            assert_eq!(p.value, Some(r as f64 + i as f64 + 0.25), "the resend won");
            assert_eq!(p.time_ms, 1000 + i as i64);
        }
        let acc = store.series(id, "acc").await.unwrap();
        assert!(acc.iter().all(|p| p.value.is_none()), "NaN stays NaN");
        let extra = store.series(id, "extra").await.unwrap();
        assert_eq!(extra.len(), WRITERS_PER_RUN, "auto steps never collide");
        let sample = store.series_sample(id, "loss", 1_000).await.unwrap();
        assert_eq!(sample.total, explicit, "resends are not counted twice");
        assert_eq!(sample.points, loss);
        assert_eq!(
            store.metric_names(id).await.unwrap(),
            vec!["acc".to_string(), "extra".into(), "loss".into()]
        );
        assert_eq!(
            store.last_value(id, "loss").await.unwrap(),
            Some(Some(r as f64 + explicit as f64 - 1.0 + 0.25))
        );
    }
    store.close().await;
}

/// A long series is sampled at evenly spaced steps, first and last included, by seeks; a
/// short one is returned whole; gaps give one point per gap; counts stay exact when points
/// are resent.
async fn series_samples_are_even_and_counts_exact(db: &Db) {
    let store = db.open().await.unwrap();
    let run = store.insert_run(plain_run()).await.unwrap();
    // Steps 0, 2, 4, ..., 19_998 (10 000 points), in two batches, the first resent.
    let batch = |from: i64, to: i64| -> Vec<Point> {
        (from..to)
            .map(|i| Point {
                step: Some(2 * i),
                time_ms: Some(i),
                values: vec![("loss".into(), Some(i as f64))],
            })
            .collect()
    };
    for b in [batch(0, 6000), batch(0, 6000), batch(5000, 10_000)] {
        store
            .append_metrics(&run.id, &b, None)
            .await
            .unwrap()
            .unwrap();
    }
    let sample = store.series_sample(&run.id, "loss", 101).await.unwrap();
    assert_eq!(sample.total, 10_000);
    let steps: Vec<i64> = sample.points.iter().map(|p| p.step).collect();
    // Positions 0, 199.98·i, ... rounded down to an integer, then up to the next even step.
    let expected: Vec<i64> = (0..101i64)
        .map(|i| {
            let at = i * 19_998 / 100;
            at + at % 2
        })
        .collect();
    assert_eq!(steps, expected);
    assert_eq!(steps.first(), Some(&0));
    assert_eq!(steps.last(), Some(&19_998));
    for p in &sample.points {
        assert_eq!(
            p.value,
            Some((p.step / 2) as f64),
            "the stored point itself"
        );
        assert_eq!(p.time_ms, p.step / 2);
    }
    // A series with a long gap: positions inside it fall on the point after the gap, once.
    let gappy: Vec<Point> = (0..50)
        .chain(10_000..10_050)
        .map(|s| Point {
            step: Some(s),
            time_ms: None,
            values: vec![("gap".into(), Some(1.0))],
        })
        .collect();
    store
        .append_metrics(&run.id, &gappy, None)
        .await
        .unwrap()
        .unwrap();
    let g = store.series_sample(&run.id, "gap", 20).await.unwrap();
    assert_eq!(g.total, 100);
    let gsteps: Vec<i64> = g.points.iter().map(|p| p.step).collect();
    assert!(gsteps.windows(2).all(|w| w[0] < w[1]), "{gsteps:?}");
    assert_eq!(gsteps.first(), Some(&0));
    assert_eq!(gsteps.last(), Some(&10_049));
    assert!(
        gsteps.len() < 20,
        "positions in the gap share a point: {gsteps:?}"
    );
    // Whole when short enough; empty for what was never logged.
    let whole = store.series_sample(&run.id, "gap", 100).await.unwrap();
    assert_eq!(whole.points.len(), 100);
    assert_eq!(whole.points, store.series(&run.id, "gap").await.unwrap());
    let none = store.series_sample(&run.id, "nope", 100).await.unwrap();
    assert_eq!((none.total, none.points.len()), (0, 0));
    let none = store.series_sample("no-run", "loss", 100).await.unwrap();
    assert_eq!((none.total, none.points.len()), (0, 0));
    // Whole series read back bit for bit: doubles of every magnitude (subnormal to huge),
    // both signs, infinities and NaN, over several packs of steps.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let odd: Vec<Option<f64>> = (0..3000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match i % 500 {
                0 => None,
                1 => Some(f64::INFINITY),
                2 => Some(f64::NEG_INFINITY),
                3 => Some(f64::MIN_POSITIVE / 3.0),
                4 => Some(1.0),
                _ => Some(f64::from_bits(x)).filter(|v| v.is_finite() && *v != 0.0),
            }
        })
        .collect();
    let batch: Vec<Point> = odd
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            step: Some(3 * i as i64),
            time_ms: Some(i as i64 * 1000),
            values: vec![("odd".into(), *v)],
        })
        .collect();
    store
        .append_metrics(&run.id, &batch, None)
        .await
        .unwrap()
        .unwrap();
    let whole = store.series_sample(&run.id, "odd", 100_000).await.unwrap();
    assert_eq!(whole.total, 3000);
    let bits = |v: &[Option<f64>]| v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
    let got: Vec<Option<f64>> = whole.points.iter().map(|p| p.value).collect();
    assert_eq!(bits(&got), bits(&odd));
    assert!(whole
        .points
        .iter()
        .enumerate()
        .all(|(i, p)| p.step == 3 * i as i64 && p.time_ms == i as i64 * 1000));
    store.close().await;
}

/// The ids `trials_changed` returns after `since`, and its next mark.
async fn changed(store: &Store, sweep_id: &str, since: i64) -> (BTreeSet<String>, i64) {
    let (rows, mark) = store.trials_changed(sweep_id, since).await.unwrap();
    (rows.into_iter().map(|r| r.id).collect(), mark)
}

async fn trials_changed_reads_what_changed_since_a_mark(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let other = store.insert_sweep(sweep()).await.unwrap();
    let a = inserted(&store, sweep_run(&s.id, 0), 1).await;
    let b = inserted(&store, sweep_run(&s.id, 1), 2).await;
    inserted(&store, sweep_run(&other.id, 0), 1).await;
    let (all, mark) = changed(&store, &s.id, -1).await;
    assert_eq!(all, BTreeSet::from([a.id.clone(), b.id.clone()]));
    // Read in full, as `trials` reads them.
    let (rows, _) = store.trials_changed(&s.id, -1).await.unwrap();
    assert_eq!(rows, store.trials(&s.id).await.unwrap());
    assert_eq!(rows[0].number, Some(1));
    // SQLite's marks are exact. PostgreSQL's mark stops before the oldest transaction still
    // running anywhere on the server (other databases included), so it may return a run
    // again: never fewer than the runs that changed.
    let exact = store.path().is_some();
    let expect = |got: &BTreeSet<String>, want: &[&str]| {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        if exact {
            assert_eq!(got, &want);
        } else {
            assert!(got.is_superset(&want), "{got:?} lacks some of {want:?}");
        }
    };
    // Nothing changed: nothing read, and the mark does not go back.
    let (none, again) = changed(&store, &s.id, mark).await;
    expect(&none, &[]);
    assert!(again >= mark);
    // What the search sees changes the mark; heartbeats, output and argv do not.
    store.heartbeat(&a.id).await.unwrap();
    store.append_output(&a.id, "stdout", "x").await.unwrap();
    store
        .set_argv(&a.id, &["t".into()], None, None)
        .await
        .unwrap();
    expect(&changed(&store, &s.id, again).await.0, &[]);
    store
        .append_metrics(&a.id, &[point(&[("loss", Some(0.5))])], Some(MIN))
        .await
        .unwrap();
    let (ids, m1) = changed(&store, &s.id, again).await;
    expect(&ids, &[&a.id]);
    store
        .finish_run(&b.id, RunState::Failed, Some(1), Some("x"))
        .await
        .unwrap();
    store
        .set_user_summary(&a.id, &map(json!({"loss": 0.1})), Some(MIN))
        .await
        .unwrap();
    let (ids, m2) = changed(&store, &s.id, m1).await;
    expect(&ids, &[&a.id, &b.id]);
    // A queued retry is a new run.
    let queued = store
        .queue_retries(&s.id, std::slice::from_ref(&b.id), false)
        .await
        .unwrap();
    let (ids, _) = changed(&store, &s.id, m2).await;
    expect(&ids, &[&queued[0].id]);
    // A claim's snapshot: the sweep as it is (its next number counts the retry) and the same
    // runs and mark `trials_changed` gives, in one read; nothing for an unknown sweep.
    let (row, rows, m3) = store.sweep_and_changes(&s.id, m2).await.unwrap().unwrap();
    assert_eq!(row, store.sweep(&s.id).await.unwrap().unwrap());
    assert_eq!(row.next_number, 4);
    let ids: BTreeSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    expect(&ids, &[&queued[0].id]);
    assert!(m3 >= m2);
    // Nothing changed since: the sweep, a mark no lower, and no run that is new. (PostgreSQL's
    // mark is held back by any transaction open on its server, other tests' included, so a
    // run may be read again; each one read is the run as it is now.)
    let (same, again, m4) = store.sweep_and_changes(&s.id, m3).await.unwrap().unwrap();
    assert_eq!(same, row);
    assert!(m4 >= m3);
    let now = store.trials(&s.id).await.unwrap();
    assert!(again.iter().all(|r| now.contains(r)), "{again:#?}");
    let (_, all_rows, _) = store.sweep_and_changes(&s.id, -1).await.unwrap().unwrap();
    assert_eq!(all_rows, store.trials(&s.id).await.unwrap());
    assert!(store
        .sweep_and_changes("s_nope", -1)
        .await
        .unwrap()
        .is_none());
    // With a run read in the same view: the run as `run` reads it, the snapshot as
    // `sweep_and_changes` gives it; an unknown run or sweep is `None` on its side alone.
    let (told, snapshot) = store.run_sweep_and_changes(&a.id, &s.id, m3).await.unwrap();
    assert_eq!(told, store.run(&a.id).await.unwrap());
    let (with_run, with_rows, m5) = snapshot.unwrap();
    assert_eq!(with_run, row);
    assert!(m5 >= m3);
    let now = store.trials(&s.id).await.unwrap();
    assert!(with_rows.iter().all(|r| now.contains(r)), "{with_rows:#?}");
    let (_, snapshot) = store.run_sweep_and_changes(&b.id, &s.id, -1).await.unwrap();
    assert_eq!(snapshot.unwrap().1, now);
    let (nobody, snapshot) = store
        .run_sweep_and_changes("r_nope", &s.id, m3)
        .await
        .unwrap();
    assert!(nobody.is_none());
    assert_eq!(snapshot.unwrap().0, row);
    let (run_of_other, nothing) = store
        .run_sweep_and_changes(&a.id, "s_nope", -1)
        .await
        .unwrap();
    assert_eq!(run_of_other, store.run(&a.id).await.unwrap());
    assert!(nothing.is_none());
    // The spans of given runs are those of the whole sweep, restricted.
    let spans = store.metric_spans(&s.id, "loss").await.unwrap();
    assert_eq!(
        store
            .metric_spans_of(&[a.id.clone(), "nope".into()], "loss")
            .await
            .unwrap(),
        spans
    );
    assert!(store
        .metric_spans_of(std::slice::from_ref(&b.id), "loss")
        .await
        .unwrap()
        .is_empty());
    store.close().await;
}

/// Writers on several handles (several servers) change runs while a reader follows the sweep
/// with `trials_changed`: once the writers are done, what the reader saw of each run is its
/// final state, whatever order the writers' transactions committed in.
async fn trials_changed_misses_nothing_committed_by_concurrent_writers(db: &Db) {
    const WRITERS: usize = 4;
    const RUNS: i64 = 15;
    let first = db.open().await.unwrap();
    let s = first.insert_sweep(sweep()).await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = db.open().await.unwrap();
        let (sweep_id, done) = (s.id.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = std::collections::HashMap::new();
            let mut mark = -1;
            loop {
                let last = done.load(std::sync::atomic::Ordering::SeqCst);
                let (rows, next) = store.trials_changed(&sweep_id, mark).await.unwrap();
                for r in rows {
                    seen.insert(r.id.clone(), (r.state, r.metric));
                }
                mark = next;
                if last {
                    break;
                }
                tokio::task::yield_now().await;
            }
            store.close().await;
            seen
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = db.open().await.unwrap();
        let sweep_id = s.id.clone();
        writers.push(tokio::spawn(async move {
            let mut mine = 0;
            while mine < RUNS {
                let snapshot = store.sweep(&sweep_id).await.unwrap().unwrap();
                let grid = w as i64 * 1000 + mine;
                let run = match store
                    .insert_suggested_run(sweep_run(&sweep_id, grid), snapshot.next_number)
                    .await
                    .unwrap()
                {
                    Inserted::Inserted(run) => run,
                    Inserted::Stale => continue,
                };
                mine += 1;
                store
                    .append_metrics(&run.id, &[point(&[("loss", Some(grid as f64))])], Some(MIN))
                    .await
                    .unwrap();
                store
                    .finish_run(&run.id, RunState::Finished, Some(0), None)
                    .await
                    .unwrap();
            }
            store.close().await;
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let truth: std::collections::HashMap<String, (RunState, Option<f64>)> = first
        .trials(&s.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, (r.state, r.metric)))
        .collect();
    assert_eq!(truth.len(), WRITERS * RUNS as usize);
    assert_eq!(seen, truth);
    first.close().await;
}

/// `finish_run_and_insert_suggested`: the told end and the next run in one call; the end is
/// stored whatever the insert finds (a stale number, a sweep no longer running), and the
/// insert is guarded exactly as `insert_suggested_run`'s.
async fn a_tell_and_its_claim_commit_together_and_a_stale_claim_keeps_the_tell(db: &Db) {
    // Without the run as read, and with it (PostgreSQL then makes both in one statement).
    for read_first in [false, true] {
        tell_and_claim_with(db, read_first).await;
    }
}

/// Tell `told` to `run` as the server does, with the run read just before: alone, or with
/// the claim of the sweep's next run (`with_claim`, its answer returned). The run as ended.
async fn tell_as_the_server_does(
    store: &Store,
    sweep_id: &str,
    run: &hyperdial_store::RunRow,
    told: &[hyperdial_store::Point],
    with_claim: bool,
) -> (hyperdial_store::RunRow, Option<Inserted>) {
    let seen = store.run(&run.id).await.unwrap().unwrap();
    let finish = tell_of(&seen, told, true);
    if !with_claim {
        let ended = store.finish_run_with_points(finish).await.unwrap().unwrap();
        return (ended, None);
    }
    let expected = run.number.unwrap() + 1;
    let (ended, next) = store
        .finish_run_and_insert_suggested(finish, sweep_run(sweep_id, 99), expected)
        .await
        .unwrap();
    (ended.unwrap(), Some(next))
}

/// A tell of `told` finishing `run`, with the run as read when `read_first`.
fn tell_of<'a>(
    run: &'a hyperdial_store::RunRow,
    told: &'a [hyperdial_store::Point],
    read_first: bool,
) -> RunFinish<'a> {
    RunFinish {
        run_id: &run.id,
        points: told,
        objective: Some(MIN),
        state: RunState::Finished,
        exit_code: Some(0),
        error: None,
        seen: read_first.then_some(run),
    }
}

async fn tell_and_claim_with(db: &Db, read_first: bool) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let first = inserted(&store, sweep_run(&s.id, 0), 1).await;
    let told = [point(&[("loss", Some(0.25))])];
    let finish = |run| tell_of(run, &told, read_first);
    let (ended, next) = store
        .finish_run_and_insert_suggested(finish(&first), sweep_run(&s.id, 1), 2)
        .await
        .unwrap();
    let ended = ended.unwrap();
    assert_eq!(
        (ended.state, ended.metric, ended.next_step),
        (RunState::Finished, Some(0.25), 1)
    );
    let Inserted::Inserted(second) = next else {
        panic!("stale: {next:?}");
    };
    assert_eq!((second.number, second.grid_index), (Some(2), Some(1)));
    assert_eq!(second.state, RunState::Running);
    assert_eq!(second.project, "default");
    let sweep_now = store.sweep(&s.id).await.unwrap().unwrap();
    assert_eq!(sweep_now.next_number, 3);
    // A stale number (another claim took 3 meanwhile): the tell is stored, the insert is
    // not, and the sweep's number stays where the other claim left it.
    let third = inserted(&store, sweep_run(&s.id, 2), 3).await;
    let (ended, next) = store
        .finish_run_and_insert_suggested(finish(&second), sweep_run(&s.id, 9), 3)
        .await
        .unwrap();
    assert_eq!(next, Inserted::Stale);
    assert_eq!(ended.unwrap().state, RunState::Finished);
    let stored = store.run(&second.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.metric),
        (RunState::Finished, Some(0.25))
    );
    assert_eq!(store.history(&second.id).await.unwrap().len(), 1);
    let trials = store.trials(&s.id).await.unwrap();
    assert_eq!(trials.len(), 3, "the stale insert wrote no run");
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().next_number, 4);
    // The sweep no longer running: the tell is stored, nothing is inserted.
    store
        .transition_sweep(&s.id, &[SweepState::Running], SweepState::Finished, None)
        .await
        .unwrap()
        .unwrap();
    let (ended, next) = store
        .finish_run_and_insert_suggested(finish(&third), sweep_run(&s.id, 9), 4)
        .await
        .unwrap();
    assert_eq!(next, Inserted::Stale);
    assert_eq!(ended.unwrap().state, RunState::Finished);
    assert_eq!(store.trials(&s.id).await.unwrap().len(), 3);
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().next_number, 4);
    // An ended run keeps its end (conditional as finish_run's), and an unknown one is `None`;
    // with a stale insert too, nothing changes.
    let (again, next) = store
        .finish_run_and_insert_suggested(
            RunFinish {
                points: &[],
                state: RunState::Failed,
                ..finish(&third)
            },
            sweep_run(&s.id, 9),
            4,
        )
        .await
        .unwrap();
    assert_eq!(
        (again.unwrap().state, next),
        (RunState::Finished, Inserted::Stale)
    );
    let (unknown, next) = store
        .finish_run_and_insert_suggested(
            RunFinish {
                run_id: "r-none",
                ..finish(&third)
            },
            sweep_run(&s.id, 9),
            4,
        )
        .await
        .unwrap();
    assert_eq!((unknown, next), (None, Inserted::Stale));
    store.close().await;
}

async fn a_tell_whose_claim_finds_its_number_taken_keeps_the_tell_and_the_number(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let first = inserted(&store, sweep_run(&s.id, 0), 1).await;
    // Number 2 is taken by a run inserted without moving the sweep's number: the claim's
    // number moves, then its insert meets the schema's unique number.
    let mut taken = sweep_run(&s.id, 1);
    taken.number = Some(2);
    store.insert_run(taken).await.unwrap();
    let told = [point(&[("loss", Some(0.5))])];
    let (ended, next) = store
        .finish_run_and_insert_suggested(
            RunFinish {
                run_id: &first.id,
                points: &told,
                objective: Some(MIN),
                state: RunState::Finished,
                exit_code: Some(0),
                error: None,
                seen: Some(&first),
            },
            sweep_run(&s.id, 5),
            2,
        )
        .await
        .unwrap();
    assert_eq!(next, Inserted::Stale);
    assert_eq!(ended.unwrap().metric, Some(0.5));
    let stored = store.run(&first.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.metric),
        (RunState::Finished, Some(0.5))
    );
    assert_eq!(store.history(&first.id).await.unwrap().len(), 1);
    assert_eq!(
        store.trials(&s.id).await.unwrap().len(),
        2,
        "no run inserted"
    );
    assert_eq!(
        store.sweep(&s.id).await.unwrap().unwrap().next_number,
        2,
        "the sweep's number is where it was"
    );
    store.close().await;
}

async fn finishing_with_points_stores_both_in_one(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let run = inserted(&store, sweep_run(&s.id, 0), 1).await;
    store
        .append_metrics(&run.id, &[point(&[("loss", Some(0.5))])], Some(MIN))
        .await
        .unwrap()
        .unwrap();
    // The told values land at the next step, count for the metric and the summary, and the
    // run ends in the same call.
    let told = [point(&[("loss", Some(0.25)), ("acc", Some(0.9))])];
    let ended = store
        .finish_run_with_points(end(
            &run.id,
            &told,
            Some(MIN),
            RunState::Finished,
            Some(0),
            None,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, RunState::Finished);
    assert_eq!(ended.exit_code, Some(0));
    assert_eq!(ended.metric, Some(0.25));
    assert_eq!(ended.next_step, 2);
    assert_eq!(ended.summary.get("acc"), Some(&json!(0.9)));
    let history = store.history(&run.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].step, 1);
    assert_eq!(history[1].values.get("loss"), Some(Some(0.25)));
    assert_eq!(
        store.last_value(&run.id, "acc").await.unwrap(),
        Some(Some(0.9))
    );
    // The end is conditional as finish_run's: an ended run keeps its state.
    let again = store
        .finish_run_with_points(end(
            &run.id,
            &[],
            None,
            RunState::Failed,
            Some(1),
            Some("late"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.state, again.exit_code),
        (RunState::Finished, Some(0))
    );
    // Told values sent to the ended run (a finish resent after its answer was lost, or two
    // finishes at once, the later one here): nothing of them is stored, at the step given
    // or at a new one, and the end stays as it was.
    let resent = Point {
        step: Some(1),
        time_ms: None,
        values: vec![("loss".to_string(), Some(0.2))],
    };
    let late = store
        .finish_run_with_points(end(
            &run.id,
            &[resent],
            Some(MIN),
            RunState::Failed,
            Some(3),
            None,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (late.state, late.exit_code, late.error.as_deref()),
        (RunState::Finished, Some(0), None)
    );
    assert_eq!((late.metric, late.next_step), (Some(0.25), 2));
    assert_eq!(late.finished_ms, ended.finished_ms);
    let stepless = [point(&[("loss", Some(0.1))])];
    let late = store
        .finish_run_with_points(end(
            &run.id,
            &stepless,
            Some(MIN),
            RunState::Failed,
            Some(1),
            None,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (late.state, late.metric, late.next_step),
        (RunState::Finished, Some(0.25), 2)
    );
    let loss = store.series_sample(&run.id, "loss", 10).await.unwrap();
    assert_eq!(loss.total, 2, "{loss:?}");
    assert_eq!(loss.points[1].value, Some(0.25));
    assert_eq!(store.history(&run.id).await.unwrap().len(), 2);
    // An unknown run: nothing, and no points stored anywhere.
    assert!(store
        .finish_run_with_points(end(
            "r_nope",
            &told,
            Some(MIN),
            RunState::Finished,
            None,
            None
        ))
        .await
        .unwrap()
        .is_none());
    // A NaN told value is stored as NaN and leaves the best metric alone; with the run as
    // read too (PostgreSQL then ends it in one statement).
    for seen in [false, true] {
        let other = inserted(&store, sweep_run(&s.id, 1 + seen as i64), 2 + seen as i64).await;
        let told = [point(&[("loss", None), ("acc", Some(f64::INFINITY))])];
        let nan = store
            .finish_run_with_points(RunFinish {
                seen: seen.then_some(&other),
                ..end(
                    &other.id,
                    &told,
                    Some(MIN),
                    RunState::Failed,
                    Some(1),
                    Some("nan"),
                )
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (nan.state, nan.metric, nan.error.as_deref(), nan.next_step),
            (RunState::Failed, None, Some("nan"), 1)
        );
        assert_eq!(
            store.last_value(&other.id, "loss").await.unwrap(),
            Some(None)
        );
        assert_eq!(
            store.last_value(&other.id, "acc").await.unwrap(),
            Some(Some(f64::INFINITY))
        );
        assert!(
            store
                .metric_spans_of(std::slice::from_ref(&other.id), "acc")
                .await
                .unwrap()
                .is_empty(),
            "no finite value"
        );
    }
    // A fresh run told with the run as read: the values, the summary and the end in one.
    let fresh = inserted(&store, sweep_run(&s.id, 3), 4).await;
    let told = [point(&[("loss", Some(0.125)), ("acc", Some(0.5))])];
    let ended = store
        .finish_run_with_points(RunFinish {
            seen: Some(&fresh),
            ..end(
                &fresh.id,
                &told,
                Some(MIN),
                RunState::Finished,
                Some(0),
                None,
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ended.state, ended.metric, ended.next_step),
        (RunState::Finished, Some(0.125), 1)
    );
    assert_eq!(ended.summary.get("acc"), Some(&json!(0.5)));
    let history = store.history(&fresh.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].values.get("loss"), Some(Some(0.125)));
    // Told again from the same read (two finishes at once): the run has ended since, so the
    // statement does not apply, and the transaction stores nothing of the later one.
    let again = store
        .finish_run_with_points(RunFinish {
            seen: Some(&fresh),
            ..end(&fresh.id, &told, Some(MIN), RunState::Failed, Some(2), None)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.state, again.exit_code, again.next_step),
        (RunState::Finished, Some(0), 1)
    );
    assert_eq!(store.history(&fresh.id).await.unwrap().len(), 1);
}

/// The arguments of a finish, without the run as read.
fn end<'a>(
    run_id: &'a str,
    points: &'a [Point],
    objective: Option<Objective<'a>>,
    state: RunState,
    exit_code: Option<i64>,
    error: Option<&'a str>,
) -> RunFinish<'a> {
    RunFinish {
        run_id,
        points,
        objective,
        state,
        exit_code,
        error,
        seen: None,
    }
}

async fn a_sweep_run_belongs_to_its_sweeps_project(db: &Db) {
    let store = db.open().await.unwrap();
    let mut new = sweep();
    new.project = "vision";
    let s = store.insert_sweep(new).await.unwrap();
    // The run's own project name is not what decides: the sweep's project is.
    let mut run = sweep_run(&s.id, 0);
    run.project = "elsewhere".into();
    let run = inserted(&store, run, 1).await;
    assert_eq!(run.project, "vision");
    assert_eq!(store.run(&run.id).await.unwrap().unwrap().project, "vision");
}

async fn series_after_reads_the_tail_only(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let run = inserted(&store, sweep_run(&s.id, 0), 1).await;
    // Steps 0, 2, 4, ..., 18 for loss; acc only at the even tens; one NaN.
    let points: Vec<Point> = (0..10)
        .map(|i| Point {
            step: Some(i * 2),
            time_ms: Some(1000 + i),
            values: if i % 5 == 0 {
                vec![("loss".into(), Some(i as f64)), ("acc".into(), None)]
            } else {
                vec![("loss".into(), Some(i as f64))]
            },
        })
        .collect();
    store
        .append_metrics(&run.id, &points, Some(MIN))
        .await
        .unwrap()
        .unwrap();
    let steps = |ps: &[hyperdial_store::SeriesPoint]| ps.iter().map(|p| p.step).collect::<Vec<_>>();
    let tail = store.series_after(&run.id, "loss", 13).await.unwrap();
    assert_eq!(steps(&tail), [14, 16, 18]);
    assert_eq!((tail[0].value, tail[0].time_ms), (Some(7.0), 1007));
    // Strictly above: a step equal to `after_step` is left out; below the first, everything.
    assert_eq!(
        steps(&store.series_after(&run.id, "loss", 14).await.unwrap()),
        [16, 18]
    );
    assert_eq!(
        store.series_after(&run.id, "loss", -1).await.unwrap(),
        store.series(&run.id, "loss").await.unwrap()
    );
    assert!(store
        .series_after(&run.id, "loss", 18)
        .await
        .unwrap()
        .is_empty());
    let acc = store.series_after(&run.id, "acc", 0).await.unwrap();
    assert_eq!((steps(&acc), acc[0].value), (vec![10], None));
    assert!(store
        .series_after(&run.id, "nope", 0)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .series_after("r_nope", "loss", 0)
        .await
        .unwrap()
        .is_empty());
}

/// A run's history merges its series by step (names in order within a step, a step only
/// where some series has it); a (name, step) sent twice in one batch keeps its last value, and
/// one sent again in a later batch is overwritten, neither counted twice; infinities are
/// stored (a sample reads them back) but answered as `null` in the history and the summary.
async fn history_merges_series_by_step_and_counts_resent_points_once(db: &Db) {
    let store = db.open().await.unwrap();
    let run = store.insert_run(NewRun::default()).await.unwrap();
    let at = |step: i64, values: &[(&str, Option<f64>)]| Point {
        step: Some(step),
        time_ms: Some(1_000 + step),
        ..point(values)
    };
    let first = [
        at(0, &[("b", Some(0.0))]),
        at(2, &[("b", Some(2.0)), ("a", Some(f64::INFINITY))]),
        at(2, &[("b", Some(2.5))]),
        at(4, &[("b", None), ("a", Some(4.0))]),
    ];
    let a = store
        .append_metrics(&run.id, &first, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.accepted, 6, "every value sent counts as written");
    let again = [at(2, &[("a", Some(-2.0))]), at(5, &[("a", Some(5.0))])];
    store
        .append_metrics(&run.id, &again, None)
        .await
        .unwrap()
        .unwrap();
    let h = store.history(&run.id).await.unwrap();
    let steps: Vec<i64> = h.iter().map(|p| p.step).collect();
    assert_eq!(steps, [0, 2, 4, 5]);
    let names: Vec<Vec<&str>> = h
        .iter()
        .map(|p| p.values.0.iter().map(|(n, _)| &**n).collect())
        .collect();
    assert_eq!(
        names,
        [vec!["b"], vec!["a", "b"], vec!["a", "b"], vec!["a"]]
    );
    assert_eq!(
        h[1].values.get("a"),
        Some(Some(-2.0)),
        "the later batch overwrites"
    );
    assert_eq!(
        h[1].values.get("b"),
        Some(Some(2.5)),
        "the last value of the batch"
    );
    assert_eq!(h[2].values.get("b"), Some(None));
    assert_eq!(h[1].time_ms, 1_002);
    let json = serde_json::to_value(&h[2].values).unwrap();
    assert_eq!(json, json!({"a": 4.0, "b": null}));
    let whole = store.series_sample(&run.id, "a", 100).await.unwrap();
    assert_eq!(whole.total, 3, "step 2 of `a` is stored once");
    let b = store.series(&run.id, "b").await.unwrap();
    assert_eq!(b.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 2, 4]);
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(
        Value::Object(r.summary.clone()),
        json!({"b": null, "a": 5.0})
    );
    assert_eq!(r.next_step, 6);
    // An infinity is kept as such in the series (only NaN is NULL).
    store
        .append_metrics(&run.id, &[at(7, &[("c", Some(f64::NEG_INFINITY))])], None)
        .await
        .unwrap()
        .unwrap();
    let c = store.series(&run.id, "c").await.unwrap();
    assert_eq!(c[0].value, Some(f64::NEG_INFINITY));
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.summary["c"], Value::Null);
}

/// The history as columns: the union of the asked metrics' steps, `None` where a metric has
/// no point (a gap) and where its value is not finite (listed in `non_finite`), a point sent
/// again read once with its last value, and pages of at most `max_steps` steps that follow
/// one another through `after_step` to the same columns as one whole read.
async fn history_columns_page_through_the_steps_with_gaps_and_non_finite_values(db: &Db) {
    let store = db.open().await.unwrap();
    let run = store.insert_run(NewRun::default()).await.unwrap();
    let at = |step: i64, values: &[(&str, Option<f64>)]| Point {
        step: Some(step),
        time_ms: Some(1_000 + step),
        ..point(values)
    };
    let batch = [
        at(0, &[("loss", Some(1.0)), ("acc", Some(0.1))]),
        at(1, &[("loss", Some(0.9))]),
        at(3, &[("loss", None), ("acc", Some(0.3))]),
        at(4, &[("loss", Some(0.7)), ("acc", Some(f64::INFINITY))]),
        at(6, &[("acc", Some(0.6))]),
    ];
    store
        .append_metrics(&run.id, &batch, None)
        .await
        .unwrap()
        .unwrap();
    // Step 1 of `loss` sent again: one point, the later value.
    store
        .append_metrics(&run.id, &[at(1, &[("loss", Some(0.8))])], None)
        .await
        .unwrap()
        .unwrap();
    let names = vec!["loss".to_string(), "acc".to_string(), "never".to_string()];
    let all = store
        .history_columns(&run.id, &names, None, 100)
        .await
        .unwrap();
    assert_eq!(all.steps, [0, 1, 3, 4, 6]);
    assert_eq!(all.time_ms, [1_000, 1_001, 1_003, 1_004, 1_006]);
    assert_eq!(
        all.columns[0],
        [Some(1.0), Some(0.8), None, Some(0.7), None]
    );
    assert_eq!(
        all.columns[1],
        [Some(0.1), None, Some(0.3), None, Some(0.6)]
    );
    assert_eq!(all.columns[2], [None; 5], "a name never logged is all gaps");
    assert_eq!(all.non_finite, [vec![2], vec![3], vec![]]);
    assert!(!all.more);
    // Only `acc`: only its steps.
    let acc = store
        .history_columns(&run.id, &names[1..2], None, 100)
        .await
        .unwrap();
    assert_eq!(acc.steps, [0, 3, 4, 6]);
    // Pages of two steps, each read from the last step of the one before.
    let mut after = None;
    let mut steps = Vec::new();
    let mut loss = Vec::new();
    let mut pages = 0;
    loop {
        let page = store
            .history_columns(&run.id, &names, after, 2)
            .await
            .unwrap();
        pages += 1;
        assert!(page.steps.len() <= 2);
        steps.extend(&page.steps);
        loss.extend(&page.columns[0]);
        if !page.more {
            break;
        }
        after = page.steps.last().copied();
    }
    assert_eq!(
        (steps, loss, pages),
        (all.steps.clone(), all.columns[0].clone(), 3)
    );
    // A page that ends exactly at the last step says there is no more.
    let end = store
        .history_columns(&run.id, &names, Some(3), 2)
        .await
        .unwrap();
    assert_eq!((end.steps, end.more), (vec![4, 6], false));
    let unknown = store
        .history_columns("r_nope", &names, None, 10)
        .await
        .unwrap();
    assert!(unknown.steps.is_empty() && !unknown.more);
}

/// A long series written every way a batch can meet it: appended in batches of every size,
/// filled in between its steps, resent over wide ranges, extended below its first step,
/// point by point at its end. After each batch every read agrees with a plain model: points
/// ascending by step, each once, with the last value sent.
async fn points_out_of_order_and_resent_across_a_long_series_stay_exact(db: &Db) {
    use std::collections::BTreeMap;
    let store = db.open().await.unwrap();
    let run = store.insert_run(NewRun::default()).await.unwrap();
    let mut model: BTreeMap<i64, (Option<f64>, i64)> = BTreeMap::new();
    let value = |step: i64, round: i64| -> Option<f64> {
        (step % 97 != 0).then_some(step as f64 * 0.5 + round as f64)
    };
    // (steps, round): even steps 0..1000, then the odd ones in descending order, a resend of
    // the middle, steps below the first, single points past the end, a wide sparse resend.
    let mut batches: Vec<(Vec<i64>, i64)> = vec![
        ((0..500).map(|i| 2 * i).collect(), 0),
        ((0..500).rev().map(|i| 2 * i + 1).collect(), 1),
        ((300..700).collect(), 2),
        ((-40..0).collect(), 3),
    ];
    for s in 1000..1010 {
        batches.push((vec![s], 4));
    }
    batches.push(((-40..1010).step_by(13).collect(), 5));
    batches.push(((2000..2200).step_by(3).collect(), 6));
    for (steps, round) in &batches {
        let points: Vec<Point> = steps
            .iter()
            .map(|&s| Point {
                step: Some(s),
                time_ms: Some(round * 10_000 + s),
                values: vec![("x".into(), value(s, *round))],
            })
            .collect();
        let a = store
            .append_metrics(&run.id, &points, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.accepted, steps.len());
        for &s in steps {
            model.insert(s, (value(s, *round), round * 10_000 + s));
        }
        let want: Vec<(i64, Option<u64>, i64)> = model
            .iter()
            .map(|(s, (v, t))| (*s, v.map(f64::to_bits), *t))
            .collect();
        let got: Vec<(i64, Option<u64>, i64)> = store
            .series(&run.id, "x")
            .await
            .unwrap()
            .iter()
            .map(|p| (p.step, p.value.map(f64::to_bits), p.time_ms))
            .collect();
        assert_eq!(got, want, "after round {round}");
        let sample = store.series_sample(&run.id, "x", 100_000).await.unwrap();
        assert_eq!(sample.total, model.len() as u64, "the count, round {round}");
    }
    // The tail after a step, the last value, the history and a sample agree with the model.
    let tail: Vec<i64> = store
        .series_after(&run.id, "x", 501)
        .await
        .unwrap()
        .iter()
        .map(|p| p.step)
        .collect();
    assert_eq!(
        tail,
        model.range(502..).map(|(s, _)| *s).collect::<Vec<_>>()
    );
    let last = model.iter().next_back().map(|(_, (v, _))| *v);
    assert_eq!(store.last_value(&run.id, "x").await.unwrap(), last);
    let history = store.history(&run.id).await.unwrap();
    assert_eq!(
        history.iter().map(|p| p.step).collect::<Vec<_>>(),
        model.keys().copied().collect::<Vec<_>>()
    );
    let sample = store.series_sample(&run.id, "x", 50).await.unwrap();
    let (first, highest) = (*model.keys().next().unwrap(), *model.keys().last().unwrap());
    let expected: Vec<i64> = (0..50i64)
        .map(|i| {
            let at = first + i * (highest - first) / 49;
            *model.range(at..).next().unwrap().0
        })
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        });
    assert_eq!(
        sample.points.iter().map(|p| p.step).collect::<Vec<_>>(),
        expected
    );
    for p in &sample.points {
        assert_eq!(
            p.value.map(f64::to_bits),
            model[&p.step].0.map(f64::to_bits)
        );
    }
    let finite: Vec<f64> = model.values().filter_map(|(v, _)| *v).collect();
    let spans = store
        .metric_spans_of(std::slice::from_ref(&run.id), "x")
        .await
        .unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].lowest,
        finite.iter().copied().fold(f64::INFINITY, f64::min)
    );
    assert_eq!(
        spans[0].highest,
        finite.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    assert_eq!(Some(spans[0].last), finite.last().copied());
    store.close().await;
}

/// Three writers (separate handles, as several servers) send one run's series overlapping
/// batches of explicit steps at once, as retries do: every step is stored once, the count is
/// exact, and the series reads back in order.
async fn concurrent_overlapping_resends_store_each_step_once(db: &Db) {
    let first = db.open().await.unwrap();
    let run = first.insert_run(NewRun::default()).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..3i64 {
        let store = db.open().await.unwrap();
        let id = run.id.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15i64 {
                // Windows of 120 steps, 40 apart; each writer in its own order.
                let from = ((i * 7 + writer * 5) % 15) * 40;
                let batch: Vec<Point> = (from..from + 120)
                    .map(|s| Point {
                        step: Some(s),
                        time_ms: Some(s),
                        values: vec![("x".into(), Some(s as f64))],
                    })
                    .collect();
                store
                    .append_metrics(&id, &batch, None)
                    .await
                    .unwrap()
                    .unwrap();
            }
            store.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let series = first.series(&run.id, "x").await.unwrap();
    let steps: Vec<i64> = series.iter().map(|p| p.step).collect();
    assert_eq!(steps, (0..14 * 40 + 120).collect::<Vec<_>>());
    assert!(series.iter().all(|p| p.value == Some(p.step as f64)));
    let sample = first.series_sample(&run.id, "x", 10).await.unwrap();
    assert_eq!(sample.total, steps.len() as u64);
    first.close().await;
}

/// The lowest, highest and last finite value of a series (the spans imputation reads, the best
/// value an explicit summary is compared with) after resends that replace them: PostgreSQL keeps
/// them per chunk, so a resend that replaces a chunk's lowest or highest value must recompute
/// them, not only widen them.
async fn extremes_follow_resends_that_replace_them(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    let run = inserted(&store, sweep_run(&s.id, 0), 1).await;
    let max = Objective {
        name: "loss",
        maximize: true,
    };
    let mut model: std::collections::BTreeMap<i64, Option<f64>> = Default::default();
    let mut send = |points: &[(i64, Option<f64>)]| {
        for (step, v) in points {
            model.insert(*step, *v);
        }
        let batch: Vec<Point> = points
            .iter()
            .map(|(step, v)| Point {
                step: Some(*step),
                time_ms: Some(1_000 + step),
                values: vec![("loss".into(), *v)],
            })
            .collect();
        let finite: Vec<(i64, f64)> = model
            .iter()
            .filter_map(|(s, v)| v.filter(|x| x.is_finite()).map(|x| (*s, x)))
            .collect();
        let lo = finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        (batch, (lo, hi, finite.last().unwrap().1))
    };
    let store = &store;
    let run_id = run.id.clone();
    let check = |batch: Vec<Point>, (lo, hi, last): (f64, f64, f64), what: &'static str| {
        let run_id = run_id.clone();
        async move {
            store
                .append_metrics(&run_id, &batch, Some(MIN))
                .await
                .unwrap()
                .unwrap();
            let spans = store
                .metric_spans_of(std::slice::from_ref(&run_id), "loss")
                .await
                .unwrap();
            assert_eq!(spans.len(), 1, "{what}");
            assert_eq!(
                (spans[0].lowest, spans[0].highest, spans[0].last),
                (lo, hi, last),
                "{what}"
            );
            // The best logged value decides against a worse explicit summary.
            let best_low = store
                .set_user_summary(&run_id, &map(json!({"loss": 1e9})), Some(MIN))
                .await
                .unwrap();
            assert_eq!(best_low, Some(Some(lo)), "{what}");
            let best_high = store
                .set_user_summary(&run_id, &map(json!({"loss": -1e9})), Some(max))
                .await
                .unwrap();
            assert_eq!(best_high, Some(Some(hi)), "{what}");
        }
    };
    // 200 steps (three chunks on PostgreSQL): 10 + step % 7, the lowest 1 at step 50, the
    // highest 50 at step 120, an infinity at 198 and NaN at 199.
    let first: Vec<(i64, Option<f64>)> = (0..200)
        .map(|s| {
            let v = match s {
                50 => 1.0,
                120 => 50.0,
                198 => f64::INFINITY,
                199 => f64::NAN,
                s => 10.0 + (s % 7) as f64,
            };
            (s, (!v.is_nan()).then_some(v))
        })
        .collect();
    let (b, want) = send(&first);
    assert_eq!(want, (1.0, 50.0, 10.0 + (197 % 7) as f64));
    check(b, want, "first batch").await;
    // A resend replaces the lowest value with a higher one: the lowest goes up.
    let (b, want) = send(&(45..=55).map(|s| (s, Some(20.0))).collect::<Vec<_>>());
    assert_eq!(want.0, 10.0);
    check(b, want, "lowest replaced").await;
    // And the highest with a lower one: the highest goes down.
    let (b, want) = send(&[(120, Some(15.0))]);
    assert_eq!(want.1, 20.0);
    check(b, want, "highest replaced").await;
    // The last finite value becomes NaN: the one before it is the last.
    let (b, want) = send(&[(197, None)]);
    assert_eq!(want.2, 10.0 + (196 % 7) as f64);
    check(b, want, "last replaced by NaN").await;
    // NaN replaced by a value that is the last and the lowest; then appended points.
    let (b, want) = send(&[(199, Some(0.5))]);
    check(b, want, "NaN replaced").await;
    let (b, want) = send(&[
        (200, Some(f64::NEG_INFINITY)),
        (201, Some(99.0)),
        (202, None),
    ]);
    assert_eq!(want, (0.5, 99.0, 99.0));
    check(b, want, "appended").await;
    store.close().await;
}

/// `sweep_run` claimed with idempotency key `key`.
fn keyed(sweep_id: &str, grid_index: i64, key: &str) -> NewRun {
    NewRun {
        claim_key: Some(key.to_string()),
        ..sweep_run(sweep_id, grid_index)
    }
}

async fn a_claim_key_hands_out_one_run_per_sweep(db: &Db) {
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    assert!(store.run_by_claim_key(&s.id, "k1").await.unwrap().is_none());
    // A claim with a key: its run is found by the key.
    let first = inserted(&store, keyed(&s.id, 0, "k1"), 1).await;
    let found = store.run_by_claim_key(&s.id, "k1").await.unwrap().unwrap();
    assert_eq!(
        (&found.id, found.number, &found.params, found.state),
        (&first.id, Some(1), &first.params, RunState::Running)
    );
    // The same key again (its answer was lost, the claim is sent again) with the right
    // number: nothing is written, not even the number.
    let other = db.open().await.unwrap();
    let again = other
        .insert_suggested_run(keyed(&s.id, 1, "k1"), 2)
        .await
        .unwrap();
    assert_eq!(again, Inserted::Stale);
    assert_eq!(store.trials(&s.id).await.unwrap().len(), 1);
    assert_eq!(store.sweep(&s.id).await.unwrap().unwrap().next_number, 2);
    // Inside a tell's commit too: the end is stored, the second run is not.
    let told = [point(&[("loss", Some(0.5))])];
    let finish = RunFinish {
        run_id: &first.id,
        points: &told,
        objective: Some(MIN),
        state: RunState::Finished,
        exit_code: Some(0),
        error: None,
        seen: Some(&first),
    };
    let (ended, next) = store
        .finish_run_and_insert_suggested(finish, keyed(&s.id, 1, "k1"), 2)
        .await
        .unwrap();
    assert_eq!(next, Inserted::Stale);
    assert_eq!(ended.unwrap().state, RunState::Finished);
    assert_eq!(store.trials(&s.id).await.unwrap().len(), 1);
    // The key after its run ended: the run, in its final state.
    let found = store.run_by_claim_key(&s.id, "k1").await.unwrap().unwrap();
    assert_eq!((&found.id, found.state), (&first.id, RunState::Finished));
    // A different key is a new claim: a new run, with the next number; with a tell, in the
    // same commit.
    let second = inserted(&store, keyed(&s.id, 1, "k2"), 2).await;
    assert_eq!(second.number, Some(2));
    let finish = RunFinish {
        run_id: &second.id,
        seen: Some(&second),
        ..finish
    };
    let (_, next) = store
        .finish_run_and_insert_suggested(finish, keyed(&s.id, 2, "k3"), 3)
        .await
        .unwrap();
    let Inserted::Inserted(third) = next else {
        panic!("stale: {next:?}");
    };
    let found = store.run_by_claim_key(&s.id, "k3").await.unwrap().unwrap();
    assert_eq!((&found.id, found.number), (&third.id, Some(3)));
    // Runs without a key share nothing.
    inserted(&store, sweep_run(&s.id, 3), 4).await;
    inserted(&store, sweep_run(&s.id, 4), 5).await;
    // Unique per sweep, not across sweeps.
    let s2 = store.insert_sweep(sweep()).await.unwrap();
    let elsewhere = inserted(&store, keyed(&s2.id, 0, "k1"), 1).await;
    assert_eq!(
        store
            .run_by_claim_key(&s2.id, "k1")
            .await
            .unwrap()
            .unwrap()
            .id,
        elsewhere.id
    );
    assert_eq!(
        store
            .run_by_claim_key(&s.id, "k1")
            .await
            .unwrap()
            .unwrap()
            .id,
        first.id
    );
    // A queued run handed out with a key is stored with it; the key again hands out nothing,
    // and the other queued run waits for another claim.
    for run in [&first, &second] {
        store
            .finish_run(&run.id, RunState::Crashed, None, Some("gone"))
            .await
            .unwrap();
    }
    let ids = vec![first.id.clone(), second.id.clone()];
    let queued = store.queue_retries(&s.id, &ids, false).await.unwrap();
    assert_eq!(queued.len(), 2);
    let retry = store
        .claim_queued(&s.id, None, None, Some("k4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retry.id, queued[0].id);
    assert!(other
        .claim_queued(&s.id, None, None, Some("k4"))
        .await
        .unwrap()
        .is_none());
    let found = store.run_by_claim_key(&s.id, "k4").await.unwrap().unwrap();
    assert_eq!((&found.id, found.state), (&retry.id, RunState::Running));
    assert_eq!(
        store.run(&queued[1].id).await.unwrap().unwrap().state,
        RunState::Queued
    );
    // A queued run is not claimed by the key of a run inserted earlier either.
    assert!(store
        .claim_queued(&s.id, None, None, Some("k2"))
        .await
        .unwrap()
        .is_none());
    let last = store
        .claim_queued(&s.id, None, None, Some("k5"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.id, queued[1].id);
    other.close().await;
    store.close().await;
}

/// The lookup of [`hyperdial_store::Storage::run_by_claim_key`] (its SQL as the store runs it)
/// seeks the unique index on `(sweep_id, claim_key)` rather than scanning the sweep's runs.
async fn the_claim_key_lookup_is_an_index_seek(db: &Db) {
    use sqlx::Connection;
    let store = db.open().await.unwrap();
    let s = store.insert_sweep(sweep()).await.unwrap();
    for i in 0..20 {
        inserted(&store, keyed(&s.id, i, &format!("k{i}")), i + 1).await;
    }
    store.close().await;
    let lookup = "SELECT r.id FROM runs r JOIN projects p ON p.id = r.project_id \
                  WHERE r.sweep_id = $1 AND r.claim_key = $2";
    let plan: String = if db.url().starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {lookup}"))
            .bind(&s.id)
            .bind("k3")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        use sqlx::Row;
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
        // Whether the index can answer it at all: on a table this small a scan may be cheaper.
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("SET plan_cache_mode = force_generic_plan")
            .execute(&mut conn)
            .await
            .unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(&format!("EXPLAIN {lookup}"))
            .bind(&s.id)
            .bind("k3")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n")
    };
    assert!(plan.contains("runs_by_claim_key"), "{plan}");
    assert!(!plan.contains("SCAN r"), "{plan}");
}

/// A run inserted with a chosen id ([`NewRun::id`]) keeps it; a second insert of the id is a
/// unique violation; `reopen_run` makes an ended run `running` with its end cleared and its
/// history, summary and next step kept, once for two resumes from one read, and never reopens
/// a sweep's run or an unknown id.
async fn a_run_with_a_chosen_id_reopens_with_its_history(db: &Db) {
    let store = db.open().await.unwrap();
    let new = NewRun {
        id: Some("resumable-1".into()),
        project: "p".into(),
        params: json!({"lr": 0.1}),
        config: json!({"lr": 0.1}),
        ..Default::default()
    };
    let run = store.insert_run(new.clone()).await.unwrap();
    assert_eq!(run.id, "resumable-1");
    let again = store.insert_run(new).await.unwrap_err();
    assert!(again.is_unique_violation(), "{again}");
    let points = [point(&[("loss", Some(0.9))]), point(&[("loss", Some(0.4))])];
    store
        .append_metrics(&run.id, &points, Some(MIN))
        .await
        .unwrap()
        .unwrap();
    let ended = store
        .finish_run(&run.id, RunState::Failed, Some(137), Some("preempted"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, RunState::Failed);
    assert!(ended.finished_ms.is_some());

    let reopened = store
        .reopen_run("resumable-1", &ended)
        .await
        .unwrap()
        .unwrap();
    // A second resume from the same read finds the run changed: exactly one reopens it.
    assert!(store
        .reopen_run("resumable-1", &ended)
        .await
        .unwrap()
        .is_none());
    assert_eq!(reopened.state, RunState::Running);
    assert_eq!(reopened.exit_code, None);
    assert_eq!(reopened.error, None);
    assert_eq!(reopened.finished_ms, None);
    assert_eq!(reopened.next_step, 2);
    assert_eq!(reopened.metric, Some(0.4));
    assert_eq!(reopened.params, json!({"lr": 0.1}));
    assert_eq!(store.history(&run.id).await.unwrap().len(), 2);
    // It ends again as any running run does.
    let done = store
        .finish_run(&run.id, RunState::Finished, Some(0), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, RunState::Finished);

    assert!(store
        .reopen_run("no-such-run", &done)
        .await
        .unwrap()
        .is_none());
    let s = store.insert_sweep(sweep()).await.unwrap();
    let in_sweep = store.insert_run(sweep_run(&s.id, 0)).await.unwrap();
    assert!(store
        .reopen_run(&in_sweep.id, &in_sweep)
        .await
        .unwrap()
        .is_none());
    store.close().await;
}

/// A spill file uploaded after the run logged on: its points (lower steps) fill the history
/// but the summary keeps each metric's value at its highest step; a resend of the highest
/// step still replaces it, and a metric seen first in the late batch gets its value.
async fn points_uploaded_late_never_replace_a_newer_summary_value(db: &Db) {
    let store = db.open().await.unwrap();
    let run = store.insert_run(plain_run()).await.unwrap();
    let at = |step: i64, values: &[(&str, Option<f64>)]| Point {
        step: Some(step),
        ..point(values)
    };
    let later: Vec<Point> = (5..10)
        .map(|s| at(s, &[("loss", Some(s as f64))]))
        .collect();
    store
        .append_metrics(&run.id, &later, Some(MIN))
        .await
        .unwrap()
        .unwrap();
    let late: Vec<Point> = (0..5)
        .map(|s| at(s, &[("loss", Some(100.0 + s as f64)), ("lr", Some(0.1))]))
        .collect();
    let a = store
        .append_metrics(&run.id, &late, Some(MIN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.accepted, 10);
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.summary["loss"], json!(9.0), "{:?}", r.summary);
    assert_eq!(r.summary["lr"], json!(0.1), "{:?}", r.summary);
    assert_eq!(store.history(&run.id).await.unwrap().len(), 10);
    // The highest step sent again replaces its value, and the summary's.
    store
        .append_metrics(&run.id, &[at(9, &[("loss", Some(0.5))])], Some(MIN))
        .await
        .unwrap()
        .unwrap();
    let r = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(r.summary["loss"], json!(0.5));
    store.close().await;
}

/// A run crashed because its agent went silent (or is gone) is taken back for the end its
/// agent kept, whatever became of its retry: a queued retry is withdrawn (no longer a retry,
/// never claimed), a claimed one becomes a repeat of the run (asked to stop while it runs, kept
/// as it is once ended); the run is running again and ends when it really did. A run that
/// crashed for another reason is not taken back.
async fn a_late_end_takes_back_a_run_crashed_for_silence_whatever_its_retry_did(db: &Db) {
    let store = db.open().await.unwrap();
    let silent = [EndCause::AgentSilent, EndCause::AgentGone];
    let s = store.insert_sweep(sweep()).await.unwrap();
    let a = inserted(&store, sweep_run(&s.id, 0), 1).await;
    let b = inserted(&store, sweep_run(&s.id, 1), 2).await;
    let c = inserted(&store, sweep_run(&s.id, 2), 3).await;
    // Not crashed: nothing to take back.
    assert_eq!(
        store.take_back_late_end(&a.id, &silent).await.unwrap(),
        LateEnd::NotTaken
    );
    assert_eq!(
        store.take_back_late_end("nope", &silent).await.unwrap(),
        LateEnd::NotTaken
    );
    let crashed = store
        .crash_runs(
            &[a.id.clone(), b.id.clone()],
            EndCause::AgentGone,
            AGENT_PROCESS_GONE,
        )
        .await
        .unwrap();
    assert_eq!(crashed.len(), 2);
    store
        .finish_run(&c.id, RunState::Crashed, None, Some("killed by SIGKILL"))
        .await
        .unwrap();
    let ids = vec![a.id.clone(), b.id.clone(), c.id.clone()];
    let retries = store.queue_retries(&s.id, &ids, false).await.unwrap();
    assert_eq!(retries.len(), 3);
    let retry_of = |id: &str| {
        retries
            .iter()
            .find(|r| r.retry_of.as_deref() == Some(id))
            .unwrap()
            .clone()
    };
    // Crashed for another reason than silence: not taken back. Nor when its agent reported
    // the crash in the words the server uses for silence: the cause decides, never the text.
    assert_eq!(
        store.take_back_late_end(&c.id, &silent).await.unwrap(),
        LateEnd::NotTaken
    );
    let e = inserted(&store, sweep_run(&s.id, 4), 7).await;
    store
        .finish_run(
            &e.id,
            RunState::Crashed,
            None,
            Some(AGENT_STOPPED_REPORTING),
        )
        .await
        .unwrap();
    assert_eq!(store.run(&e.id).await.unwrap().unwrap().end_cause, None);
    assert_eq!(
        store.take_back_late_end(&e.id, &silent).await.unwrap(),
        LateEnd::NotTaken
    );
    // A's retry is claimed and running: A takes its end back, and the retry becomes a repeat
    // of A, asked to stop.
    let claimed = store
        .claim_queued(&s.id, None, None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.retry_of.as_deref(), Some(a.id.as_str()));
    let (_, mark) = store.trials_changed(&s.id, -1).await.unwrap();
    let LateEnd::TakenBack { run, retry } = store.take_back_late_end(&a.id, &silent).await.unwrap()
    else {
        panic!("A not taken back");
    };
    assert_eq!(run.state, RunState::Running);
    assert_eq!(
        retry,
        Some(RetryFate::Superseded {
            retry: claimed.id.clone(),
            state: RunState::Running
        })
    );
    let sup = store.run(&claimed.id).await.unwrap().unwrap();
    assert_eq!(sup.state, RunState::Running);
    assert!(sup.retry_of.is_none());
    assert_eq!(sup.repeat_of.as_deref(), Some(a.id.as_str()));
    assert!(sup.stop_requested);
    assert_eq!(sup.end_cause, Some(EndCause::RetrySuperseded));
    assert_eq!(
        sup.stop_reason.as_deref(),
        Some(hyperdial_store::RETRY_SUPERSEDED_REASON)
    );
    // B's retry still waits: it is withdrawn and B takes its end.
    let withdrawn = retry_of(&b.id);
    let LateEnd::TakenBack { run, retry } = store.take_back_late_end(&b.id, &silent).await.unwrap()
    else {
        panic!("not taken back");
    };
    assert_eq!(retry, Some(RetryFate::Withdrawn(withdrawn.id.clone())));
    assert_eq!(run.state, RunState::Running);
    assert_eq!(run.error.as_deref(), Some(LATE_END_PENDING));
    assert_eq!(run.end_cause, Some(EndCause::LateEndPending));
    assert!(run.finished_ms.is_none());
    let w = store.run(&withdrawn.id).await.unwrap().unwrap();
    assert_eq!(w.state, RunState::Cancelled);
    assert_eq!(w.error.as_deref(), Some(hyperdial_store::RETRY_WITHDRAWN));
    assert_eq!(w.end_cause, Some(EndCause::RetryWithdrawn));
    assert!(w.retry_of.is_none() && w.started_ms.is_none());
    // Both changes are seen by a reader of what changed.
    let (rows, _) = store.trials_changed(&s.id, mark).await.unwrap();
    let seen: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for id in [&a.id, &claimed.id, &b.id, &withdrawn.id] {
        assert!(seen.contains(id.as_str()), "{id} not seen as changed");
    }
    // Taken back once: a second late end finds it running, and its gone agent does not crash
    // it again while its end is uploaded.
    assert_eq!(
        store.take_back_late_end(&b.id, &silent).await.unwrap(),
        LateEnd::NotTaken
    );
    assert!(store
        .crash_runs(
            std::slice::from_ref(&b.id),
            EndCause::AgentGone,
            AGENT_PROCESS_GONE
        )
        .await
        .unwrap()
        .is_empty());
    // D's retry ran and finished before D's late end came: D takes its end all the same, and
    // the ended retry stays as it ended, a repeat of D (no stop asked of it).
    let d = inserted(&store, sweep_run(&s.id, 3), 8).await;
    store
        .crash_runs(
            std::slice::from_ref(&d.id),
            EndCause::AgentGone,
            AGENT_PROCESS_GONE,
        )
        .await
        .unwrap();
    store
        .queue_retries(&s.id, std::slice::from_ref(&d.id), false)
        .await
        .unwrap();
    // C's retry is older and is handed out first.
    let mut d_retry = None;
    for _ in 0..2 {
        let claimed = store
            .claim_queued(&s.id, None, None, None)
            .await
            .unwrap()
            .unwrap();
        if claimed.retry_of.as_deref() == Some(d.id.as_str()) {
            d_retry = Some(claimed);
        }
    }
    let d_retry = d_retry.expect("D's retry claimed");
    store
        .finish_run(&d_retry.id, RunState::Finished, Some(0), None)
        .await
        .unwrap();
    let LateEnd::TakenBack { retry, .. } = store.take_back_late_end(&d.id, &silent).await.unwrap()
    else {
        panic!("D not taken back");
    };
    assert_eq!(
        retry,
        Some(RetryFate::Superseded {
            retry: d_retry.id.clone(),
            state: RunState::Finished
        })
    );
    let kept = store.run(&d_retry.id).await.unwrap().unwrap();
    assert_eq!(kept.state, RunState::Finished);
    assert!(!kept.stop_requested && kept.retry_of.is_none());
    assert_eq!(kept.repeat_of.as_deref(), Some(d.id.as_str()));
    assert_eq!(kept.end_cause, Some(EndCause::RetrySuperseded));
    // Its end, dated when it really was (not before it started, not later than recorded).
    let ended = store
        .finish_run(&b.id, RunState::Finished, Some(0), None)
        .await
        .unwrap()
        .unwrap();
    // The late end is the run's own: no cause is left on it.
    assert_eq!(ended.end_cause, None);
    let recorded = ended.finished_ms.unwrap();
    let started = ended.started_ms.unwrap_or(ended.created_ms);
    let early = store
        .backdate_end(&b.id, started - 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(early.finished_ms, Some(recorded));
    let late = store
        .backdate_end(&b.id, recorded + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.finished_ms, Some(recorded));
    let real = store.backdate_end(&b.id, started).await.unwrap().unwrap();
    assert_eq!(
        (real.state, real.finished_ms),
        (RunState::Finished, Some(started))
    );
    assert!(store.backdate_end("nope", 1).await.unwrap().is_none());
    store.close().await;
}

/// A run recorded offline and uploaded later (`hyperdial sync`) is dated when its script ran:
/// its start moves back (never forward, never past its end, and its heartbeat stays recent),
/// then its end.
async fn a_run_uploaded_late_keeps_its_own_start_and_end(db: &Db) {
    let store = db.open().await.unwrap();
    let run = store.insert_run(plain_run()).await.unwrap();
    let created = run.created_ms;
    let heartbeat = run.heartbeat_ms;
    let started = created - 60_000;
    // Later than the creation: nothing moves.
    let later = store
        .backdate_start(&run.id, created + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (later.created_ms, later.started_ms),
        (created, run.started_ms)
    );
    let moved = store
        .backdate_start(&run.id, started)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.created_ms, started);
    assert_eq!(moved.started_ms, Some(started));
    assert_eq!(moved.heartbeat_ms, heartbeat);
    assert_eq!(moved.state, RunState::Running);
    let ended = store
        .finish_run(&run.id, RunState::Finished, Some(0), None)
        .await
        .unwrap()
        .unwrap();
    let real = store
        .backdate_end(&run.id, started + 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(real.finished_ms, Some(started + 3_000));
    assert!(ended.finished_ms.unwrap() > started + 3_000);
    // An ended run's start stays.
    let after = store
        .backdate_start(&run.id, started - 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.created_ms, started);
    assert!(store.backdate_start("nope", 1).await.unwrap().is_none());
    store.close().await;
}
