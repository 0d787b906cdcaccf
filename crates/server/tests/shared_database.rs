//! Two controllers on one database, as two servers sharing it: claims racing through both
//! hand out every grid point exactly once, with numbers 1..N, `run_cap` holds exactly, and
//! one claim sent through both at once (the same `claim_key`) hands out one run, and ask/tell
//! loops through both (each trial's tell with the next claim, decided on PostgreSQL from the
//! last trial's own write when nothing else changed) store every told value on its run, and
//! finishes of one run at once store the told value of the one that ended it, alone.
//! Each test runs on SQLite and, when `HYPERDIAL_TEST_PG` is set, on PostgreSQL (otherwise
//! it reports SKIPPED).

use std::collections::BTreeSet;
use std::sync::Arc;

use hyperdial_server::controller::{Claim, Keyed, Tell, TellClaim};
use hyperdial_server::Controller;
use hyperdial_store::testing::TestDb;
use hyperdial_store::{Point, RunFilter, RunRow, RunState, SweepState};

/// Claimers per controller.
const CLAIMERS: usize = 4;

/// Run `CLAIMERS` claim loops on each of two controllers over `db` until the sweep of
/// `source` is over; every claimed run finishes at once. Returns the sweep id and one of the
/// controllers.
async fn race(db: &TestDb, source: &str) -> (String, Arc<Controller>) {
    let a = Arc::new(Controller::new(db.open().await.unwrap()));
    let b = Arc::new(Controller::new(db.open().await.unwrap()));
    let sweep = a
        .create_sweep(source, None, None, false, Some(3))
        .await
        .unwrap()
        .sweep;
    let mut tasks = Vec::new();
    for c in [&a, &b] {
        for _ in 0..CLAIMERS {
            let c = Arc::clone(c);
            let id = sweep.id.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match c.claim(&id, None).await.unwrap() {
                        Claim::Run(run) => {
                            c.finish(&run.id, Some(0), None, None, None, None)
                                .await
                                .unwrap();
                        }
                        // Runs of the other claimers are in flight; they finish at once.
                        Claim::Wait => tokio::task::yield_now().await,
                        Claim::Over(state) => return state,
                    }
                }
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), SweepState::Finished);
    }
    (sweep.id, a)
}

/// The value an ask/tell loop tells for a run: a function of its parameters alone.
fn loss_of(run: &RunRow) -> f64 {
    let p = &run.params;
    p["a"].as_f64().unwrap() * 10.0 + p["c"].as_f64().unwrap()
}

/// `loops` ask/tell loops on each of two controllers over `db`, as `Sweep.optimize` runs
/// them: each trial's tell carries the next claim; when the controller tells it to, the run
/// is ended apart and the next claimed apart, as the claim route does. Returns the sweep id
/// and one of the controllers once the sweep of `source` is over.
async fn ask_tell_race(db: &TestDb, source: &str, loops: usize) -> (String, Arc<Controller>) {
    let a = Arc::new(Controller::new(db.open().await.unwrap()));
    let b = Arc::new(Controller::new(db.open().await.unwrap()));
    let sweep = a
        .create_sweep(source, None, None, false, Some(3))
        .await
        .unwrap()
        .sweep;
    let mut tasks = Vec::new();
    for c in [&a, &b] {
        for _ in 0..loops {
            let c = Arc::clone(c);
            let id = sweep.id.clone();
            tasks.push(tokio::spawn(async move {
                let mut run: Option<RunRow> = None;
                loop {
                    let next = match run.take() {
                        Some(told) => {
                            let point = Point {
                                step: None,
                                time_ms: None,
                                values: vec![("loss".into(), Some(loss_of(&told)))],
                            };
                            let tell = Tell {
                                run_id: &told.id,
                                exit_code: Some(0),
                                state: None,
                                error: None,
                                told: Some(&point),
                            };
                            match c.tell_and_claim(&id, None, None, tell).await.unwrap() {
                                TellClaim::Told(_, Some(next)) => Some(*next),
                                TellClaim::Told(_, None) => None,
                                TellClaim::Separately => {
                                    c.finish(
                                        &told.id,
                                        Some(0),
                                        None,
                                        None,
                                        Some(&point),
                                        Some(&id),
                                    )
                                    .await
                                    .unwrap();
                                    None
                                }
                            }
                        }
                        None => None,
                    };
                    if next.is_some() {
                        run = next;
                        continue;
                    }
                    match c.claim(&id, None).await.unwrap() {
                        Claim::Run(claimed) => run = Some(*claimed),
                        Claim::Wait => tokio::task::yield_now().await,
                        Claim::Over(state) => return state,
                    }
                }
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), SweepState::Finished);
    }
    (sweep.id, a)
}

/// Every grid point once, numbers 1..N, and every run finished with the value told for it.
async fn ask_tell_loops_store_every_told_value(db: TestDb, loops: usize) {
    // 4 × 3 × 3 = 36 points.
    let source = "program: t.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1, 2, 3, 4]}\n  b: {values: [x, y, z]}\n  c: {values: [0.1, 0.2, 0.3]}\n";
    let (sweep, c) = ask_tell_race(&db, source, loops).await;
    let (runs, total) = c
        .store()
        .runs(&RunFilter {
            sweep: Some(sweep.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 36);
    let numbers: BTreeSet<i64> = runs.iter().filter_map(|r| r.number).collect();
    assert_eq!(numbers, (1..=36).collect());
    let grid: BTreeSet<i64> = runs.iter().filter_map(|r| r.grid_index).collect();
    assert_eq!(grid, (0..36).collect());
    for r in &runs {
        assert_eq!(r.state, RunState::Finished, "{r:?}");
        assert_eq!(r.metric, Some(loss_of(r)), "{r:?}");
        assert_eq!(
            r.summary.get("loss").and_then(|v| v.as_f64()),
            Some(loss_of(r))
        );
    }
    c.store().close().await;
    db.remove().await;
}

async fn every_grid_point_once(db: TestDb) {
    // 4 × 3 × 3 = 36 points.
    let source = "program: t.py\nmethod: grid\nparameters:\n  a: {values: [1, 2, 3, 4]}\n  b: {values: [x, y, z]}\n  c: {values: [0.1, 0.2, 0.3]}\n";
    let (sweep, c) = race(&db, source).await;
    let (runs, total) = c
        .store()
        .runs(&RunFilter {
            sweep: Some(sweep.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 36);
    let numbers: BTreeSet<i64> = runs.iter().filter_map(|r| r.number).collect();
    assert_eq!(numbers, (1..=36).collect());
    let grid: BTreeSet<i64> = runs.iter().filter_map(|r| r.grid_index).collect();
    assert_eq!(grid, (0..36).collect());
    let params: BTreeSet<String> = runs.iter().map(|r| r.params.to_string()).collect();
    assert_eq!(params.len(), 36);
    assert!(runs.iter().all(|r| r.state == RunState::Finished));
    c.store().close().await;
    db.remove().await;
}

async fn run_cap_holds_exactly(db: TestDb) {
    let source =
        "program: t.py\nmethod: random\nrun_cap: 25\nparameters:\n  a: {min: 0.0, max: 1.0}\n";
    let (sweep, c) = race(&db, source).await;
    let (runs, total) = c
        .store()
        .runs(&RunFilter {
            sweep: Some(sweep),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 25);
    let numbers: BTreeSet<i64> = runs.iter().filter_map(|r| r.number).collect();
    assert_eq!(numbers, (1..=25).collect());
    c.store().close().await;
    db.remove().await;
}

/// A claim and its retry at once, each through another controller (a client that gave up
/// on one server and asked the other): one run, which both answer.
async fn one_key_through_two_controllers_claims_one_run(db: TestDb) {
    let a = Arc::new(Controller::new(db.open().await.unwrap()));
    let b = Arc::new(Controller::new(db.open().await.unwrap()));
    let source = "program: t.py\nmethod: random\nparameters:\n  a: {min: 0.0, max: 1.0}\n";
    let sweep = a
        .create_sweep(source, None, None, false, Some(3))
        .await
        .unwrap()
        .sweep;
    let run_of = |keyed: Keyed| match keyed {
        Keyed::Now(Claim::Run(run)) | Keyed::Again(run) => run.id,
        other => panic!("no run: {other:?}"),
    };
    for round in 0..20 {
        let key = format!("key-{round}");
        let (first, second) = tokio::join!(
            a.claim_keyed(&sweep.id, None, Some(&key)),
            b.claim_keyed(&sweep.id, None, Some(&key))
        );
        let (first, second) = (run_of(first.unwrap()), run_of(second.unwrap()));
        assert_eq!(first, second, "round {round}");
    }
    let (_, total) = a
        .store()
        .runs(&RunFilter {
            sweep: Some(sweep.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 20);
    a.store().close().await;
    b.store().close().await;
    db.remove().await;
}

/// Finishes of one run sent at once through two controllers, each telling a value (a finish
/// retried on the other server while the first was still on its way): one of them ends the
/// run, and only its value is stored; the others change nothing.
async fn finishes_at_once_store_one_told_value(db: TestDb) {
    let a = Arc::new(Controller::new(db.open().await.unwrap()));
    let b = Arc::new(Controller::new(db.open().await.unwrap()));
    let source = "program: t.py\nmethod: random\nmetric: {name: l}\nparameters:\n  a: {min: 0.0, max: 1.0}\n";
    let sweep = a
        .create_sweep(source, None, None, false, Some(3))
        .await
        .unwrap()
        .sweep;
    for round in 0..5 {
        let Claim::Run(run) = a.claim(&sweep.id, None).await.unwrap() else {
            panic!("no run to claim");
        };
        let mut tasks = Vec::new();
        for i in 0..10 {
            let c = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let id = run.id.clone();
            tasks.push(tokio::spawn(async move {
                let (value, exit, state) = if i % 2 == 0 {
                    (0.5, 0, None)
                } else {
                    (0.9, 1, Some("failed"))
                };
                let told = Point {
                    step: None,
                    time_ms: None,
                    values: vec![("l".to_string(), Some(value))],
                };
                c.finish(&id, Some(exit), state, None, Some(&told), None)
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let ended = a.store().run(&run.id).await.unwrap().unwrap();
        let history = a.store().history(&run.id).await.unwrap();
        assert_eq!(history.len(), 1, "round {round}: {history:?}");
        let stored = history[0].values.get("l").flatten();
        assert_eq!(ended.metric, stored, "round {round}");
        let expected = if ended.state == RunState::Finished {
            0.5
        } else {
            0.9
        };
        assert_eq!(stored, Some(expected), "round {round}: {:?}", ended.state);
    }
    a.store().close().await;
    b.store().close().await;
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_finishes_at_once_store_one_told_value() {
    finishes_at_once_store_one_told_value(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_finishes_at_once_store_one_told_value() {
    if let Some(db) =
        TestDb::postgres("server postgres_finishes_at_once_store_one_told_value").await
    {
        finishes_at_once_store_one_told_value(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_one_key_through_two_controllers_claims_one_run() {
    one_key_through_two_controllers_claims_one_run(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_one_key_through_two_controllers_claims_one_run() {
    if let Some(db) =
        TestDb::postgres("server postgres_one_key_through_two_controllers_claims_one_run").await
    {
        one_key_through_two_controllers_claims_one_run(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_controllers_hand_out_every_grid_point_once() {
    every_grid_point_once(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_controllers_hand_out_every_grid_point_once() {
    if let Some(db) =
        TestDb::postgres("server postgres_two_controllers_hand_out_every_grid_point_once").await
    {
        every_grid_point_once(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_controllers_keep_run_cap_exactly() {
    run_cap_holds_exactly(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_controllers_keep_run_cap_exactly() {
    if let Some(db) = TestDb::postgres("server postgres_two_controllers_keep_run_cap_exactly").await
    {
        run_cap_holds_exactly(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_ask_tell_loops_through_two_controllers_store_every_told_value() {
    ask_tell_loops_store_every_told_value(TestDb::sqlite(), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_ask_tell_loops_through_two_controllers_store_every_told_value() {
    if let Some(db) = TestDb::postgres(
        "server postgres_ask_tell_loops_through_two_controllers_store_every_told_value",
    )
    .await
    {
        ask_tell_loops_store_every_told_value(db, 2).await;
    }
}

/// One loop per controller: each mostly decides from its own last write, and the other's
/// writes in between make it read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_one_ask_tell_loop_per_controller_stores_every_told_value() {
    if let Some(db) =
        TestDb::postgres("server postgres_one_ask_tell_loop_per_controller_stores_every_told_value")
            .await
    {
        ask_tell_loops_store_every_told_value(db, 1).await;
    }
}
