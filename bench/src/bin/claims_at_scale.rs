//! Claim latency against the size of the sweep: does a claim cost the same at 10 runs and at
//! 100,000?
//!
//! For each method and size, a fresh SQLite database (WAL, as the server opens it;
//! `HYPERDIAL_SQLITE_SYNC` decides its durability) gets a sweep with that many finished runs, written straight into the tables in
//! one transaction (each with parameters, a grid position, a metric and a summary, as real
//! runs have). A controller then claims from it in process, the way the API handler does
//! (no HTTP): the first claim of the controller is reported on its own (a server that has not
//! seen the sweep yet reads it once), then `--claims` more are timed, each claimed run given
//! one metric point and finished before the next claim (untimed). Percentiles are exact
//! (nearest rank).
//!
//! ```sh
//! cargo build --release -p hyperdial-bench --bin claims_at_scale
//! target/release/claims_at_scale                          # random, sobol, grid: 10 … 100,000 runs
//! target/release/claims_at_scale --methods tpe,bayes --sizes 100,1000 --claims 30
//! ```
//!
//! Flags: `--methods LIST` (default `random,sobol,grid`), `--sizes LIST` (default
//! `10,1000,10000,100000`), `--claims N` (default 200), `--noise`: the sweep gets a budget
//! `stagnation: {runs: 1000000, min_delta: noise}` and nine runs in ten of the prefill are
//! repeats (seeds 1 to 9) of the run before them, so each claim needs the seed noise; the
//! table then also gives what a read of every run and [`hyperdial_server::noise::seed_noise`]
//! cost (what each such claim did before the history kept the seed noise). `--budget MAPPING`
//! sets the sweep's budget (e.g. `'{stagnation: {runs: 1000000, min_delta: 0.001}}'`) in
//! place of that one.

use std::time::Instant;

use hyperdial_bench::{flag, flag_num, Samples};
use hyperdial_server::controller::Claim;
use hyperdial_server::Controller;
use hyperdial_store::{Point, Store};
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

/// A config of `method` whose grid (when it has one) holds 160,000 points.
fn source(method: &str) -> String {
    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    match method {
        "grid" => format!(
            "method: grid\nmetric: {{name: loss, goal: minimize}}\ncommand: [/bin/true]\nparameters:\n  a: {{values: [{}]}}\n  b: {{values: [{}]}}\n",
            values(400),
            values(400)
        ),
        m => format!(
            "method: {m}\nmetric: {{name: loss, goal: minimize}}\ncommand: [/bin/true]\nparameters:\n  x1: {{min: 0.0, max: 1.0}}\n  x2: {{min: 0.0, max: 1.0}}\n  lr: {{distribution: log_uniform_values, min: 0.0001, max: 0.1}}\n  opt: {{values: [adam, sgd]}}\n"
        ),
    }
}

/// Write `runs` finished runs of sweep `sweep_id` into the database file at `path`; with
/// `repeats`, nine in ten repeat the run before them.
async fn prefill(path: &std::path::Path, sweep_id: &str, method: &str, runs: u64, repeats: bool) {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("open the database file");
    let project: i64 = sqlx::query_scalar("SELECT project_id FROM sweeps WHERE id = $1")
        .bind(sweep_id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    let now = hyperdial_store::now_ms();
    for i in 0..runs {
        // A deterministic spread of values in [0, 1).
        let u = |k: u64| ((i * 2_654_435_761 + k * 40_503) % 1_000_003) as f64 / 1_000_003.0;
        let (params, grid) = if method == "grid" {
            (json!({"a": i / 400, "b": i % 400}), Some(i as i64))
        } else {
            (
                json!({"x1": u(1), "x2": u(2), "lr": 1e-4 * 1000f64.powf(u(3)),
                       "opt": if u(4) < 0.5 { "adam" } else { "sgd" }}),
                None,
            )
        };
        let loss = (u(1) - 0.3).powi(2) + (u(2) - 0.6).powi(2);
        let (repeat_of, seed) = if repeats && i % 10 != 0 {
            (Some(format!("p{:09}", i - i % 10)), Some((i % 10) as i64))
        } else {
            (None, None)
        };
        sqlx::query(
            "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, grid_index, metric, \
             summary, created_ms, started_ms, heartbeat_ms, finished_ms, exit_code, repeat_of, seed) \
             VALUES ($1, $2, $3, $4, 'finished', $5, $5, $6, $7, $8, $9, $9, $9, $9, 0, $10, $11)",
        )
        .bind(format!("p{i:09}"))
        .bind(sweep_id)
        .bind(project)
        .bind(i as i64 + 1)
        .bind(params.to_string())
        .bind(grid)
        .bind(loss)
        .bind(json!({ "loss": loss, "_step": 0 }).to_string())
        .bind(now)
        .bind(repeat_of)
        .bind(seed)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE sweeps SET next_number = $2 WHERE id = $1")
        .bind(sweep_id)
        .bind(runs as i64 + 1)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
}

/// Claim once, then report and finish the run (untimed).
async fn claim_and_finish(c: &Controller, sweep_id: &str, value: f64) {
    match c.claim(sweep_id, None).await.expect("claim") {
        Claim::Run(run) => {
            let point = Point {
                step: None,
                time_ms: None,
                values: vec![("loss".into(), Some(value))],
            };
            c.ingest(&run.id, &[point]).await.expect("metrics");
            c.finish(&run.id, Some(0), None, None, None, None)
                .await
                .expect("finish");
        }
        other => panic!("expected a run, got {other:?}"),
    }
}

#[tokio::main]
async fn main() {
    let methods = flag("--methods").unwrap_or_else(|| "random,sobol,grid".into());
    let sizes = flag("--sizes").unwrap_or_else(|| "10,1000,10000,100000".into());
    let claims: usize = flag_num("--claims", 200);
    let noise = std::env::args().any(|a| a == "--noise");
    let budget = flag("--budget")
        .or_else(|| noise.then(|| "{stagnation: {runs: 1000000, min_delta: noise}}".to_string()));
    println!(
        "claim latency in process (SQLite, HYPERDIAL_SQLITE_SYNC={}), {claims} claims after the first",
        std::env::var("HYPERDIAL_SQLITE_SYNC").unwrap_or_else(|_| "normal".into())
    );
    println!(
        "{:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>14}",
        "method", "runs", "fill s", "first ms", "p50 ms", "p90 ms", "max ms", "full read ms"
    );
    for method in methods.split(',') {
        for size in sizes.split(',') {
            let runs: u64 = size.parse().expect("a size is a number");
            let dir = std::env::temp_dir().join(format!(
                "hyperdial-claims-{}-{method}-{runs}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("db.sqlite");
            let sweep_id = {
                let store = Store::open_sqlite(&path).await.expect("open");
                let c = Controller::new(store);
                let id = c
                    .create_sweep(
                        &match &budget {
                            Some(b) => format!("{}budget: {b}\n", source(method)),
                            None => source(method),
                        },
                        None,
                        None,
                        false,
                        Some(1),
                    )
                    .await
                    .expect("create")
                    .sweep
                    .id;
                c.store().close().await;
                id
            };
            let filled = Instant::now();
            prefill(&path, &sweep_id, method, runs, noise).await;
            let fill = filled.elapsed().as_secs_f64();
            let c = Controller::new(Store::open_sqlite(&path).await.expect("open"));
            let first = Instant::now();
            claim_and_finish(&c, &sweep_id, 0.5).await;
            let first = first.elapsed().as_secs_f64() * 1e3;
            let mut samples = Samples::default();
            for i in 0..claims {
                let started = Instant::now();
                let answer = c.claim(&sweep_id, None).await.expect("claim");
                samples.record(started.elapsed());
                let Claim::Run(run) = answer else {
                    panic!("expected a run, got {answer:?}");
                };
                let point = Point {
                    step: None,
                    time_ms: None,
                    values: vec![("loss".into(), Some(i as f64 / claims as f64))],
                };
                c.ingest(&run.id, &[point]).await.expect("metrics");
                c.finish(&run.id, Some(0), None, None, None, None)
                    .await
                    .expect("finish");
            }
            // What a claim added before: every run read, the seed noise computed from them.
            let full_read = if noise {
                let mut read = Samples::default();
                for _ in 0..5 {
                    let started = Instant::now();
                    let runs = hyperdial_server::noise::sweep_runs(c.store(), &sweep_id)
                        .await
                        .expect("read");
                    std::hint::black_box(hyperdial_server::noise::seed_noise(&runs));
                    read.record(started.elapsed());
                }
                format!("{:.1}", read.quantile_ms(0.5))
            } else {
                "-".to_string()
            };
            println!(
                "{:>7} {:>8} {:>10.2} {:>9.2} {:>9.3} {:>9.3} {:>9.3} {:>14}",
                method,
                runs,
                fill,
                first,
                samples.quantile_ms(0.5),
                samples.quantile_ms(0.9),
                samples.quantile_ms(1.0),
                full_read
            );
            c.store().close().await;
            std::fs::remove_dir_all(&dir).ok();
        }
    }
}
