//! Two controllers on one database, as two servers sharing it: claims racing through both
//! hand out every grid point exactly once, with numbers 1..N, `run_cap` holds exactly, and
//! one claim sent through both at once (the same `claim_key`) hands out one run.
//! Each test runs on SQLite and, when `HYPERDIAL_TEST_PG` is set, on PostgreSQL (otherwise
//! it reports SKIPPED).

use std::collections::BTreeSet;
use std::sync::Arc;

use hyperdial_server::controller::{Claim, Keyed};
use hyperdial_server::Controller;
use hyperdial_store::testing::TestDb;
use hyperdial_store::{RunFilter, RunState, SweepState};

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
