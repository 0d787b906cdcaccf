//! Metrics at scale, against real `hyperdial server` processes on SQLite (or PostgreSQL with
//! `--db postgres://…`), one binary after the other for every case (so two builds are
//! compared in one sitting):
//!
//! - ingestion: points per second through `POST /api/v1/runs/{id}/metrics`, batches of 1,000
//!   points of 3 metrics (`--batch N`), from 1, 4 and 16 concurrent clients (one run each; `--clients 4`
//!   for one count);
//! - disk: bytes per million metric values of that database after `VACUUM` (PostgreSQL:
//!   `VACUUM FULL` of the metric tables, then the sum of `pg_total_relation_size` of every
//!   table whose name starts with `metric_`, indexes and TOAST included);
//! - history reads: a run of 10k, 100k and 1M steps, read whole and downsampled to 1,000
//!   points (median of 5 over loopback, JSON included);
//! - memory: the server's RSS idle, then after the dashboard's reads and full listings of a
//!   10,000-run sweep (points, importance, pages of runs, every run, export CSV and JSON).
//!
//! `cargo build --release -p hyperdial-cli -p hyperdial-bench && target/release/metrics_at_scale
//!  --build before=PATH/TO/OLD/hyperdial --build after=target/release/hyperdial`
//! (`--points N` per ingestion case, default 300000; `--runs N` in the sweep, default 10000;
//! `--batch N` points per ingestion request, default 1000; `--db URL` a PostgreSQL server, each
//! case in a database of its own created there and dropped after; `--cases
//! ingestion,reads,memory` a subset.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyperdial_bench::{flag, flag_num, Backend, Database, ServerProcess};
use serde_json::{json, Value};
use sqlx::Connection;

const SWEEP: &str = "method: random\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {min: 0.00001, max: 0.1, distribution: log_uniform_values}\n  batch: {values: [16, 32, 64, 128]}\n  opt: {values: [adam, sgd, rmsprop]}\n  dropout: {min: 0.0, max: 0.5}\n  layers: {min: 1, max: 8}\n";

/// `--build NAME=PATH`, in order.
fn builds() -> Vec<(String, PathBuf)> {
    let args: Vec<String> = std::env::args().collect();
    let mut out = Vec::new();
    for w in args.windows(2) {
        if w[0] == "--build" {
            let (name, path) = w[1].split_once('=').expect("--build NAME=PATH");
            let path = PathBuf::from(path);
            assert!(path.exists(), "{} missing", path.display());
            out.push((name.to_string(), path));
        }
    }
    assert!(!out.is_empty(), "name at least one --build NAME=PATH");
    out
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> Value {
    let r = http.post(&url).json(body).send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn new_run(http: &reqwest::Client, base: &str) -> String {
    let run = post(
        http,
        format!("{base}/api/v1/runs"),
        &json!({"config": {"x": 1}}),
    )
    .await;
    run["id"].as_str().expect("run id").to_string()
}

/// Send `n` points of 3 metrics to a new run in batches of `batch`.
async fn feed(http: reqwest::Client, base: String, n: usize, batch: usize) {
    let id = new_run(&http, &base).await;
    let mut step = 0;
    while step < n {
        let points: Vec<Value> = (step..(step + batch).min(n))
            .map(|s| json!({"step": s, "values": {"loss": 1.0 / (s as f64 + 1.0), "acc": (s % 1000) as f64 / 1000.0, "lr": 1e-3}}))
            .collect();
        step += points.len();
        post(
            &http,
            format!("{base}/api/v1/runs/{id}/metrics"),
            &json!({ "points": points }),
        )
        .await;
    }
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime is the 12th, stime
    // the 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

/// VmRSS and VmHWM of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn vacuumed_size(path: &str) -> u64 {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .expect("open for vacuum");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .ok();
    sqlx::query("VACUUM")
        .execute(&mut conn)
        .await
        .expect("vacuum");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .ok();
    conn.close().await.ok();
    let mut size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    for ext in ["-wal", "-shm"] {
        size += std::fs::metadata(format!("{path}{ext}"))
            .map(|m| m.len())
            .unwrap_or(0);
    }
    size
}

/// `VACUUM FULL` the metric tables of a PostgreSQL database (its URL), then their size with
/// indexes and TOAST, in bytes.
fn pg_metric_bytes(url: &str) -> u64 {
    let psql = |sql: &str| -> String {
        let out = std::process::Command::new("psql")
            .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .expect("psql must be on PATH for PostgreSQL benchmarks");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let tables = psql(
        "SELECT string_agg(quote_ident(tablename), ',') FROM pg_tables \
         WHERE schemaname = 'public' AND tablename LIKE 'metric\\_%'",
    );
    psql(&format!("VACUUM FULL {tables}"));
    let bytes = psql(
        "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'metric\\_%'",
    );
    bytes.parse().expect("a size")
}

async fn timed_get(http: &reqwest::Client, url: &str) -> (f64, usize) {
    let started = Instant::now();
    let r = http.get(url).send().await.expect("get");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let bytes = r.bytes().await.expect("body").len();
    (started.elapsed().as_secs_f64() * 1000.0, bytes)
}

async fn median_ms(http: &reqwest::Client, url: &str) -> (f64, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let (ms, b) = timed_get(http, url).await;
        times.push(ms);
        bytes = b;
    }
    times.sort_by(f64::total_cmp);
    (times[2], bytes)
}

async fn ingestion(bin: &Path, name: &str, points: usize, db_url: Option<&str>) {
    let db = Database::fresh(db_url, "ingest");
    let server = ServerProcess::start(bin, &db);
    let http = reqwest::Client::new();
    let mut total_points = 0;
    let clients_list: Vec<usize> = match flag("--clients") {
        Some(list) => list
            .split(',')
            .map(|c| c.trim().parse().expect("--clients 1,4,16"))
            .collect(),
        None => vec![1, 4, 16],
    };
    let batch: usize = flag_num("--batch", 1000);
    for clients in clients_list {
        let per = points / clients;
        let cpu = cpu_seconds(server.pid());
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(feed(http.clone(), server.url.clone(), per, batch)))
            .collect();
        for t in tasks {
            t.await.expect("client");
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(server.pid()) - cpu;
        total_points += per * clients;
        println!(
            "| {name} | ingestion | {clients} clients, batches of {batch} | {:.0} points/s ({:.0} values/s); server CPU {:.1} s per million points |",
            (per * clients) as f64 / secs,
            3.0 * (per * clients) as f64 / secs,
            cpu / ((per * clients) as f64 / 1e6)
        );
    }
    drop(server);
    let size = match db.backend {
        Backend::Sqlite => vacuumed_size(&db.arg).await,
        Backend::Postgres => pg_metric_bytes(&db.arg),
    };
    let values = 3 * total_points;
    println!(
        "| {name} | disk | {values} values, vacuumed ({}) | {:.1} MB per million values |",
        db.backend.label(),
        size as f64 / 1e6 / (values as f64 / 1e6)
    );
}

async fn reads(bin: &Path, name: &str, db_url: Option<&str>) {
    let db = Database::fresh(db_url, "reads");
    let server = ServerProcess::start(bin, &db);
    let http = reqwest::Client::new();
    let base = &server.url;
    for steps in [10_000usize, 100_000, 1_000_000] {
        let id = new_run(&http, base).await;
        let mut step = 0;
        while step < steps {
            let points: Vec<Value> = (step..(step + 10_000).min(steps))
                .map(|s| json!({"step": s, "values": {"loss": (s as f64 * 0.001).sin()}}))
                .collect();
            step += points.len();
            post(
                &http,
                format!("{base}/api/v1/runs/{id}/metrics"),
                &json!({ "points": points }),
            )
            .await;
        }
        let full = if steps <= 100_000 {
            format!("{base}/api/v1/runs/{id}/history?keys=loss&max_points={steps}")
        } else {
            format!("{base}/api/v1/runs/{id}")
        };
        let (full_ms, full_bytes) = median_ms(&http, &full).await;
        let sampled = format!("{base}/api/v1/runs/{id}/history?keys=loss&max_points=1000");
        let (ds_ms, ds_bytes) = median_ms(&http, &sampled).await;
        let how = if steps <= 100_000 {
            "history, max_points = all"
        } else {
            "GET /runs/{id} (whole history)"
        };
        println!(
            "| {name} | read {steps} points | full ({how}) | {full_ms:.1} ms, {full_bytes} bytes |"
        );
        println!("| {name} | read {steps} points | downsampled to 1000 | {ds_ms:.1} ms, {ds_bytes} bytes |");
    }
}

async fn memory(bin: &Path, name: &str, runs: usize) {
    let db = Database::fresh(None, "memory");
    let http = reqwest::Client::new();
    let sweep;
    {
        let server = ServerProcess::start(bin, &db);
        let created = post(
            &http,
            format!("{}/api/v1/sweeps", server.url),
            &json!({"source": SWEEP, "project": "bench"}),
        )
        .await;
        sweep = created["id"].as_str().expect("sweep id").to_string();
    }
    // Runs straight into the database (the same `runs` table in both schemas): claiming 10,000
    // runs one by one would measure the claim, not the listings.
    let ids: Vec<String> = (0..runs).map(|i| format!("rb{i:07}")).collect();
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.arg))
            .await
            .expect("open");
        let mut tx = conn.begin().await.expect("begin");
        let now = hyperdial_store::now_ms();
        let mut x: u64 = 42;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for (i, id) in ids.iter().enumerate() {
            let (batch, opt) = ([16, 32, 64, 128][i % 4], ["adam", "sgd", "rmsprop"][i % 3]);
            let params = json!({"lr": 10f64.powf(-5.0 + 4.0 * next()), "batch": batch,
                "opt": opt, "dropout": 0.5 * next(), "layers": 1 + i as i64 % 8});
            sqlx::query(
                "INSERT INTO runs (id, sweep_id, project_id, number, state, params, config, host, created_ms, started_ms, heartbeat_ms) \
                 SELECT $1, s.id, s.project_id, $2, 'running', $3, $3, 'bench-host', $4, $4, $4 FROM sweeps s WHERE s.id = $5",
            )
            .bind(id)
            .bind(i as i64 + 1)
            .bind(params.to_string())
            .bind(now)
            .bind(&sweep)
            .execute(&mut *tx)
            .await
            .expect("insert run");
        }
        sqlx::query("UPDATE sweeps SET next_number = $1 WHERE id = $2")
            .bind(runs as i64 + 1)
            .bind(&sweep)
            .execute(&mut *tx)
            .await
            .expect("next number");
        tx.commit().await.expect("commit");
    }
    {
        let server = ServerProcess::start(bin, &db);
        let chunks: Vec<Vec<String>> = ids.chunks(runs.div_ceil(8)).map(|c| c.to_vec()).collect();
        let tasks: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (http, base) = (http.clone(), server.url.clone());
                tokio::spawn(async move {
                    for (k, id) in chunk.iter().enumerate() {
                        let points: Vec<Value> = (0..100)
                            .map(|s| json!({"step": s, "values": {"loss": 2.0 / (1.0 + s as f64 * 0.1) + (k % 7) as f64 * 0.01, "acc": s as f64 / 100.0}}))
                            .collect();
                        post(&http, format!("{base}/api/v1/runs/{id}/metrics"), &json!({ "points": points })).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("feed");
        }
    }
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.arg))
            .await
            .expect("open");
        sqlx::query("UPDATE runs SET state = 'finished', finished_ms = heartbeat_ms + 1000, exit_code = 0 WHERE sweep_id = $1 AND number % 10 <> 0")
            .bind(&sweep)
            .execute(&mut conn)
            .await
            .expect("finish");
        conn.close().await.ok();
    }
    let server = ServerProcess::start(bin, &db);
    let base = &server.url;
    timed_get(&http, &format!("{base}/api/v1/sweeps")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle, _) = rss_mib(server.pid());
    let mut urls = vec![
        format!("{base}/api/v1/sweeps"),
        format!("{base}/api/v1/sweeps/{sweep}"),
        format!("{base}/api/v1/sweeps/{sweep}/points"),
        format!("{base}/api/v1/sweeps/{sweep}/importance"),
        format!("{base}/api/v1/runs?sweep={sweep}&limit=50&sort=metric&order=desc"),
        format!("{base}/api/v1/runs?sweep={sweep}&limit=100000"),
        format!("{base}/api/v1/sweeps/{sweep}/export?format=csv"),
        format!("{base}/api/v1/sweeps/{sweep}/export?format=json"),
    ];
    for id in ids.iter().step_by(runs / 10) {
        urls.push(format!("{base}/api/v1/runs/{id}/history?max_points=500"));
    }
    let mut listing = Vec::new();
    for round in 0..3 {
        let tasks: Vec<_> = urls
            .iter()
            .map(|u| {
                let (http, u) = (http.clone(), u.clone());
                tokio::spawn(async move { timed_get(&http, &u).await })
            })
            .collect();
        for (t, u) in tasks.into_iter().zip(&urls) {
            let (ms, bytes) = t.await.expect("get");
            if round == 0 && u.contains("limit=100000") {
                listing.push(format!("every run: {ms:.0} ms, {bytes} bytes"));
            }
        }
    }
    let (after, peak) = rss_mib(server.pid());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (later, _) = rss_mib(server.pid());
    println!(
        "| {name} | memory, {runs}-run sweep | idle {idle:.0} MiB; after 3 rounds of listings (concurrent) {after:.0} MiB, 3 s later {later:.0} MiB, peak {peak:.0} MiB ({}) |",
        listing.join("; ")
    );
}

#[tokio::main]
async fn main() {
    let builds = builds();
    let points: usize = flag_num("--points", 300_000);
    let runs: usize = flag_num("--runs", 10_000);
    let db_url = flag("--db");
    let db_url = db_url.as_deref();
    let cases = flag("--cases").unwrap_or_else(|| "ingestion,reads,memory".into());
    let cases: Vec<&str> = cases.split(',').map(str::trim).collect();
    println!("| build | case | setting | result |\n| --- | --- | --- | --- |");
    if cases.contains(&"ingestion") {
        for (name, bin) in &builds {
            ingestion(bin, name, points, db_url).await;
        }
    }
    if cases.contains(&"reads") {
        for (name, bin) in &builds {
            reads(bin, name, db_url).await;
        }
    }
    if cases.contains(&"memory") {
        assert!(db_url.is_none(), "the memory case runs on SQLite only");
        for (name, bin) in &builds {
            memory(bin, name, runs).await;
        }
    }
}
