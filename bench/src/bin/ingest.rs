//! Metric ingestion through the HTTP API: points per second, for several batch sizes and
//! concurrent writers, on SQLite with `synchronous=FULL` (every batch durable when answered).
//!
//! `cargo run --release -p hyperdial-bench --bin ingest [-- --points 200000]`

use std::time::Instant;

use serde_json::json;

#[tokio::main]
async fn main() {
    let points: usize = std::env::args()
        .skip_while(|a| a != "--points")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let server = hyperdial_bench::scratch_server().await;
    let http = reqwest::Client::new();
    println!("metric ingestion through POST /api/v1/runs/{{id}}/metrics ({points} points per case, 3 metrics per point)");
    println!(
        "{:>8} {:>8} {:>14} {:>12}",
        "batch", "writers", "points/s", "values/s"
    );
    for (batch, writers) in [
        (1usize, 1usize),
        (10, 1),
        (100, 1),
        (1000, 1),
        (100, 4),
        (1000, 4),
    ] {
        let per_writer = points / writers;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..writers {
            let http = http.clone();
            let url = server.url.clone();
            let n = if batch == 1 {
                per_writer.min(5_000)
            } else {
                per_writer
            };
            tasks.push(tokio::spawn(async move {
                let run: serde_json::Value = http
                    .post(format!("{url}/api/v1/runs"))
                    .json(&json!({"config": {"x": 1}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let id = run["id"].as_str().unwrap().to_string();
                let mut step = 0usize;
                while step < n {
                    let pts: Vec<_> = (step..(step + batch).min(n))
                        .map(|s| json!({"step": s, "values": {"loss": 1.0 / (s as f64 + 1.0), "acc": 0.5, "lr": 1e-3}}))
                        .collect();
                    step += pts.len();
                    let r = http
                        .post(format!("{url}/api/v1/runs/{id}/metrics"))
                        .json(&json!({"points": pts}))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{batch:>8} {writers:>8} {:>14.0} {:>12.0}",
            total as f64 / secs,
            3.0 * total as f64 / secs
        );
    }
}
