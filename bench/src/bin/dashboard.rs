//! The dashboard's API at scale: a sweep of 10 000 finished runs with 1 000 000 metric points
//! (100 steps × 1 metric per run), plus one long run of 100 000 steps, then the response time
//! of every request the dashboard makes.
//!
//! `cargo run --release -p hyperdial-bench --bin dashboard [-- --runs 10000 --steps 100 --db PATH]`
//! With `--db PATH` the database is kept for the browser half (`bench/dashboard.sh`); with
//! `--populate-only` it only fills that database (for the live browser measurement).

use std::time::Instant;

use hyperdial_store::{NewRun, NewSweep, Objective, Point, Store};
use serde_json::json;

const SOURCE: &str = "name: dashboard-bench\nprogram: train.py\nmethod: random\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {distribution: log_uniform_values, min: 0.00001, max: 0.1}\n  batch: {values: [16, 32, 64, 128]}\n  opt: {values: [adam, sgd, rmsprop]}\n  dropout: {min: 0.0, max: 0.5}\n  layers: {distribution: int_uniform, min: 1, max: 8}\n";

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = arg("--runs").and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let steps: usize = arg("--steps").and_then(|s| s.parse().ok()).unwrap_or(100);
    let keep = arg("--db");
    let dir = std::env::temp_dir().join(format!("hyperdial-dash-bench-{}", std::process::id()));
    let path = keep
        .clone()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("db.sqlite"));
    if path.exists() {
        std::fs::remove_file(&path).ok();
    }
    let store = Store::open_sqlite(&path).await.expect("open store");
    let started = Instant::now();
    let sweep = store
        .insert_sweep(NewSweep {
            project: "bench",
            name: Some("dashboard-bench"),
            method: "random",
            source: SOURCE,
            source_file: Some("sweep.yaml"),
            config_hash: "bench",
            seed: 1,
            metric_name: Some("loss"),
            goal: Some("minimize"),
        })
        .await
        .expect("sweep");
    let mut rng = Lcg(42);
    let mut ids = Vec::with_capacity(runs);
    {
        for n in 0..runs {
            let lr = 10f64.powf(-5.0 + 4.0 * rng.next());
            let batch = [16, 32, 64, 128][(rng.next() * 4.0) as usize % 4];
            let opt = ["adam", "sgd", "rmsprop"][(rng.next() * 3.0) as usize % 3];
            let dropout = 0.5 * rng.next();
            let layers = 1 + (rng.next() * 8.0) as i64 % 8;
            let params =
                json!({"lr": lr, "batch": batch, "opt": opt, "dropout": dropout, "layers": layers});
            let run = store
                .insert_run(NewRun {
                    sweep_id: Some(sweep.id.clone()),
                    project: "bench".into(),
                    number: Some(n as i64 + 1),
                    params: params.clone(),
                    config: params,
                    host: Some("bench-host".into()),
                    ..Default::default()
                })
                .await
                .expect("run");
            ids.push((run.id, lr, opt, dropout));
        }
    }
    let objective = Some(Objective {
        name: "loss",
        maximize: false,
    });
    for (k, (id, lr, opt, dropout)) in ids.iter().enumerate() {
        let floor =
            (lr.log10() + 3.0).abs() * 0.3 + if *opt == "sgd" { 0.2 } else { 0.0 } + dropout * 0.1;
        let n = if k == 0 { 100_000 } else { steps };
        let points: Vec<Point> = (0..n)
            .map(|s| Point {
                step: Some(s as i64),
                time_ms: None,
                values: vec![("loss".into(), Some(floor + 2.0 / (1.0 + s as f64 * 0.1)))],
            })
            .collect();
        for chunk in points.chunks(10_000) {
            store
                .append_metrics(id, chunk, objective)
                .await
                .expect("metrics");
        }
        store
            .finish_run(id, hyperdial_store::RunState::Finished, Some(0), None)
            .await
            .expect("finish");
    }
    let total_points = runs * steps + 100_000 - steps;
    println!(
        "populated sweep {} with {runs} runs and {total_points} metric points in {:.1} s",
        sweep.id,
        started.elapsed().as_secs_f64()
    );
    println!("SWEEP={}", sweep.id);
    if std::env::args().any(|a| a == "--populate-only") {
        store.close().await;
        return;
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = store.clone();
    let server = tokio::spawn(async move {
        hyperdial_server::serve(
            listener,
            served,
            hyperdial_server::Options::default(),
            async {
                stop_rx.await.ok();
            },
        )
        .await
        .expect("serve");
    });
    let http = reqwest::Client::new();
    let id = &sweep.id;
    let long = &ids[0].0;
    let short = &ids[1].0;
    let cases = vec![
        ("sweeps list", "/api/v1/sweeps".to_string()),
        ("sweep", format!("/api/v1/sweeps/{id}")),
        ("points (10k runs, columnar)", format!("/api/v1/sweeps/{id}/points")),
        ("importance (first: forest)", format!("/api/v1/sweeps/{id}/importance")),
        ("importance (cached)", format!("/api/v1/sweeps/{id}/importance")),
        ("runs page 1 (50, by number)", format!("/api/v1/runs?sweep={id}&limit=50")),
        ("runs page 100 (50, by number)", format!("/api/v1/runs?sweep={id}&limit=50&offset=4950")),
        ("runs by metric desc", format!("/api/v1/runs?sweep={id}&limit=50&sort=metric&order=desc")),
        ("runs by params.lr", format!("/api/v1/runs?sweep={id}&limit=50&sort=params.lr")),
        ("runs by summary.loss", format!("/api/v1/runs?sweep={id}&limit=50&sort=summary.loss")),
        ("runs brushed (range+in)", format!("/api/v1/runs?sweep={id}&limit=50&range=params.lr:0.0001:0.001&in=params.opt:adam|sgd&range=metric::1.0")),
        ("history 100 steps", format!("/api/v1/runs/{short}/history?keys=loss&max_points=500")),
        ("history 100k steps → 500", format!("/api/v1/runs/{long}/history?keys=loss&max_points=500")),
        ("run (no history)", format!("/api/v1/runs/{long}?history=false")),
        ("dashboard index.html", "/".to_string()),
    ];
    println!();
    println!("| request | first (ms) | median of 5 (ms) | bytes |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, path) in cases {
        let mut times = Vec::new();
        let mut bytes = 0;
        let reps = if name.starts_with("importance (first") {
            1
        } else {
            6
        };
        for _ in 0..reps {
            let t = Instant::now();
            let r = http
                .get(format!("{url}{path}"))
                .send()
                .await
                .expect("request");
            assert!(r.status().is_success(), "{path}: {}", r.status());
            bytes = r.bytes().await.expect("body").len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let first = times[0];
        let mut rest = if times.len() > 1 {
            times[1..].to_vec()
        } else {
            times.clone()
        };
        rest.sort_by(f64::total_cmp);
        println!(
            "| {name} | {first:.1} | {:.1} | {bytes} |",
            rest[rest.len() / 2]
        );
    }
    stop_tx.send(()).ok();
    server.await.ok();
    store.close().await;
    if keep.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
}
