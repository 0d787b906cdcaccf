//! Storage throughput through a real `hyperdial server` on SQLite or PostgreSQL: trivial runs
//! per second with `hyperdial agent` processes, and metric points per second through the API.
//!
//! - **Runs.** For each agent count in `--agents` (`1,2,4`): a fresh database and server, a
//!   `random` sweep of `--runs` (500) runs with `/bin/true` as the command, and that many
//!   `hyperdial agent SWEEP` processes started at once; each claims, starts `/bin/true` under
//!   its reaper, heartbeats, relays output and finishes, until the sweep is over. Reported:
//!   runs per second over the runs' own span (first claim to last finish, from the server's
//!   timestamps) and over the wall time from starting the agents to their exit (which adds
//!   process start-up and the up to 1 s poll of agents waiting for the last runs).
//! - **Metric points.** `--points` (100,000) points of 3 metrics each, sent to
//!   `POST /runs/{id}/metrics` by 1 and 4 writers in batches of 1, 10, 100 and 1,000 (the
//!   batch of 1 sends at most 5,000 points per writer); every batch is durable when answered.
//!
//! ```sh
//! cargo build --release -p hyperdial-cli -p hyperdial-bench
//! target/release/throughput                                       # SQLite, scratch files
//! target/release/throughput --db postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! `--db postgres://…` names a server: a scratch database is created per case with `psql` and
//! dropped afterwards. `--hyperdial PATH` picks the binary (default: next to this one).

use std::process::{Command, Stdio};
use std::time::Instant;

use hyperdial_bench::{flag, flag_num, Backend, Database, ServerProcess};
use serde_json::{json, Value};

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    let r = http
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {url} answered {status}: {v}");
    v
}

/// Runs per second for `agents` agent processes: (span-based, wall-based, seconds of span).
async fn runs_case(
    bin: &std::path::Path,
    db_url: Option<&str>,
    runs: u64,
    agents: usize,
) -> (f64, f64, f64) {
    let db = Database::fresh(db_url, &format!("runs{agents}"));
    let server = ServerProcess::start(bin, &db);
    let http = reqwest::Client::new();
    let source = format!(
        "method: random\nrun_cap: {runs}\ncommand: [/bin/true]\nparameters:\n  x: {{min: 0.0, max: 1.0}}\n"
    );
    let sweep = post(
        &http,
        &format!("{}/api/v1/sweeps", server.url),
        &json!({ "source": source }),
    )
    .await;
    let id = sweep["id"].as_str().expect("sweep id").to_string();
    let work = std::env::temp_dir().join(format!(
        "hyperdial-bench-agents-{}-{agents}",
        std::process::id()
    ));
    std::fs::create_dir_all(&work).expect("agent dir");
    let started = Instant::now();
    let children: Vec<_> = (0..agents)
        .map(|_| {
            Command::new(bin)
                .args(["agent", &id, "--server", &server.url])
                .current_dir(&work)
                .env_remove("HYPERDIAL_TOKEN")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start hyperdial agent")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("agent");
        assert!(
            out.status.success(),
            "agent failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let wall = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&work).ok();
    let listed: Value = http
        .get(format!(
            "{}/api/v1/runs?sweep={id}&limit=100000",
            server.url
        ))
        .send()
        .await
        .expect("runs")
        .json()
        .await
        .expect("runs JSON");
    let list = listed["runs"].as_array().expect("runs");
    let finished = list.iter().filter(|r| r["state"] == "finished").count() as u64;
    assert_eq!(finished, runs, "every run finished");
    let first = list
        .iter()
        .filter_map(|r| r["created_ms"].as_i64())
        .min()
        .expect("created");
    let last = list
        .iter()
        .filter_map(|r| r["finished_ms"].as_i64())
        .max()
        .expect("finished");
    let span = (last - first).max(1) as f64 / 1000.0;
    drop(server);
    drop(db);
    (runs as f64 / span, runs as f64 / wall, span)
}

/// Points per second for one batch size and writer count.
async fn points_case(url: &str, points: usize, batch: usize, writers: usize) -> f64 {
    let http = reqwest::Client::new();
    let per_writer = if batch == 1 {
        (points / writers).min(5_000)
    } else {
        points / writers
    };
    let mut runs = Vec::new();
    for _ in 0..writers {
        let run = post(
            &http,
            &format!("{url}/api/v1/runs"),
            &json!({"config": {"x": 1}}),
        )
        .await;
        runs.push(run["id"].as_str().expect("run id").to_string());
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in runs {
        let http = http.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut step = 0usize;
            while step < per_writer {
                let pts: Vec<Value> = (step..(step + batch).min(per_writer))
                    .map(|s| json!({"step": s, "values": {"loss": 1.0 / (s as f64 + 1.0), "acc": 0.5, "lr": 1e-3}}))
                    .collect();
                step += pts.len();
                post(
                    &http,
                    &format!("{url}/api/v1/runs/{id}/metrics"),
                    &json!({ "points": pts }),
                )
                .await;
            }
            per_writer
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let db_url = flag("--db");
    let runs: u64 = flag_num("--runs", 500);
    let points: usize = flag_num("--points", 100_000);
    let agents: Vec<usize> = flag("--agents")
        .unwrap_or_else(|| "1,2,4".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--agents: comma-separated counts"))
        .collect();
    let bin = hyperdial_bench::hyperdial_binary();
    let backend = Backend::of(db_url.as_deref());

    println!(
        "## Throughput — {} (load average at start: {})\n",
        backend.label(),
        hyperdial_bench::load_average().unwrap_or_else(|| "unknown".into())
    );
    println!("Trivial runs (`/bin/true`) through `hyperdial server` + `hyperdial agent` processes, {runs} runs per case:\n");
    println!("| agents | span s | runs/s (span) | runs/s (wall) |");
    println!("| ---: | ---: | ---: | ---: |");
    for &k in &agents {
        let (per_span, per_wall, span) = runs_case(&bin, db_url.as_deref(), runs, k).await;
        println!("| {k} | {span:.2} | {per_span:.0} | {per_wall:.0} |");
    }

    let db = Database::fresh(db_url.as_deref(), "points");
    let server = ServerProcess::start(&bin, &db);
    println!("\nMetric points (3 values each) through `POST /api/v1/runs/{{id}}/metrics`, {points} points per case:\n");
    println!("| batch | writers | points/s | values/s |");
    println!("| ---: | ---: | ---: | ---: |");
    for (batch, writers) in [
        (1usize, 1usize),
        (1, 4),
        (10, 1),
        (100, 1),
        (1000, 1),
        (100, 4),
        (1000, 4),
    ] {
        let rate = points_case(&server.url, points, batch, writers).await;
        println!("| {batch} | {writers} | {rate:.0} | {:.0} |", 3.0 * rate);
    }
    println!(
        "\nLoad average at the end: {}.",
        hyperdial_bench::load_average().unwrap_or_else(|| "unknown".into())
    );
}
