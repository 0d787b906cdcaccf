//! Do claims block writes? Latency of heartbeats and metric batches from running runs, without
//! claims and while many agents claim continuously from a large `bayes` sweep.
//!
//! The benchmark drives a real `hyperdial server` process (the release binary next to this
//! one, or `--hyperdial PATH`) on a fresh database:
//!
//! 1. **Setup.** A `bayes` sweep over 5 continuous parameters (one log-scaled) minimizing
//!    `loss` is created and filled with `--runs` (1,000) finished runs through the API, the way
//!    agents fill it: claim, one metric point, finish, from 4 concurrent clients. Each claim
//!    fits the search on everything before it, so the setup time is reported too.
//! 2. **Writers.** `--writers` (32) runs are claimed and stay `running`. Each writer sends, every
//!    `--interval-ms` (100 ms), a heartbeat and then a `--points` (10) point metric batch, and
//!    records the latency of each request (sent to answer read). Writers start staggered over
//!    one interval.
//! 3. **Phase (a):** writers alone for `--seconds` (20 s).
//! 4. **Phase (b):** `--agents` (64) simulated agents claim in a loop (claim, one metric point,
//!    finish at once); after a 2 s ramp the writers run for `--seconds` again while the agents
//!    go on. Claims completed within the writers' window give the claim rate.
//!
//! Latencies are exact percentiles of all samples (nearest rank). The p99 difference (b − a)
//! is what the target of ≤ 10 ms is about: a claim must not hold up the writes of running runs.
//! Failed requests (not 2xx) are counted, never timed.
//!
//! ```sh
//! cargo build --release -p hyperdial-cli -p hyperdial-bench
//! target/release/claim_contention                                  # SQLite, scratch file
//! target/release/claim_contention --db postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! Other flags: `--runs N --writers N --agents N --seconds S --interval-ms MS --points N`,
//! `--hyperdial PATH`. A PostgreSQL URL names the server: the benchmark creates a scratch
//! database there with `psql` and drops it at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperdial_bench::{flag, flag_num, Database, Samples, ServerProcess};
use serde_json::{json, Value};

const SWEEP: &str = "\
name: claim-contention
method: bayes
metric: {name: loss, goal: minimize}
command: [/bin/true]
parameters:
  x1: {min: 0.0, max: 1.0}
  x2: {min: 0.0, max: 1.0}
  x3: {min: 0.0, max: 1.0}
  x4: {min: 0.0, max: 1.0}
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
";

/// The objective the simulated agents report: a bowl with its minimum at x = 0.3, lr = 3e-3.
fn loss(run: &Value) -> f64 {
    let params = &run["params"];
    let mut sum = 0.0;
    for k in ["x1", "x2", "x3", "x4"] {
        let v = params[k].as_f64().unwrap_or(0.5);
        sum += (v - 0.3) * (v - 0.3);
    }
    let lr = params["lr"].as_f64().unwrap_or(1e-3);
    sum + 0.1 * (lr.log10() + 2.5).powi(2)
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn post(&self, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/api/v1{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status();
        let bytes = r.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Claim a run; `None` when the server has none to give right now (204).
    async fn claim(&self, sweep: &str, agent: &str) -> Option<Value> {
        let (status, body) = self
            .post(&format!("/sweeps/{sweep}/claim"), &json!({"agent": agent}))
            .await;
        match status.as_u16() {
            200 => Some(body["run"].clone()),
            204 => None,
            s => panic!("claim answered {s}: {body}"),
        }
    }

    /// One metric point with the run's loss, then finish: what an agent does for a run of a
    /// trivial command.
    async fn complete(&self, run: &Value) {
        let id = run["id"].as_str().expect("run id");
        let (s, b) = self
            .post(
                &format!("/runs/{id}/metrics"),
                &json!({"points": [{"step": 0, "values": {"loss": loss(run)}}]}),
            )
            .await;
        assert!(s.is_success(), "metrics answered {s}: {b}");
        let (s, b) = self
            .post(&format!("/runs/{id}/finish"), &json!({"exit_code": 0}))
            .await;
        assert!(s.is_success(), "finish answered {s}: {b}");
    }

    async fn agent(&self, sweep: &str, n: usize) -> String {
        let (s, b) = self
            .post(
                "/agents",
                &json!({"sweep": sweep, "host": format!("bench-{n}"), "pid": 1}),
            )
            .await;
        assert!(s.is_success(), "agent registration answered {s}: {b}");
        b["id"].as_str().expect("agent id").to_string()
    }
}

/// What one phase measured.
#[derive(Default)]
struct Phase {
    heartbeat: Samples,
    metrics: Samples,
    errors: u64,
    seconds: f64,
}

struct WriterConfig {
    interval: Duration,
    points: usize,
    duration: Duration,
}

/// One writer: heartbeat + metric batch every interval until the phase ends.
async fn writer(api: Arc<Api>, run: String, cfg: Arc<WriterConfig>, offset: Duration) -> Phase {
    tokio::time::sleep(offset).await;
    let mut out = Phase::default();
    let end = Instant::now() + cfg.duration;
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut step: u64 = 0;
    while Instant::now() < end {
        tick.tick().await;
        let started = Instant::now();
        let (s, _) = api
            .post(&format!("/runs/{run}/heartbeat"), &json!({}))
            .await;
        if s.is_success() {
            out.heartbeat.record(started.elapsed());
        } else {
            out.errors += 1;
        }
        let points: Vec<Value> = (0..cfg.points)
            .map(|i| {
                let s = step + i as u64;
                json!({"step": s, "values": {"loss": 1.0 / (s as f64 + 1.0), "acc": 0.5}})
            })
            .collect();
        step += cfg.points as u64;
        let started = Instant::now();
        let (s, _) = api
            .post(
                &format!("/runs/{run}/metrics"),
                &json!({ "points": points }),
            )
            .await;
        if s.is_success() {
            out.metrics.record(started.elapsed());
        } else {
            out.errors += 1;
        }
    }
    out
}

async fn writers_phase(api: &Arc<Api>, runs: &[String], cfg: &Arc<WriterConfig>) -> Phase {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let offset = cfg.interval * i as u32 / runs.len() as u32;
        tasks.push(tokio::spawn(writer(
            api.clone(),
            run.clone(),
            cfg.clone(),
            offset,
        )));
    }
    let mut phase = Phase::default();
    for t in tasks {
        let p = t.await.expect("writer task");
        phase.heartbeat.extend(p.heartbeat);
        phase.metrics.extend(p.metrics);
        phase.errors += p.errors;
    }
    phase.seconds = started.elapsed().as_secs_f64();
    phase
}

#[tokio::main]
async fn main() {
    let db_url = flag("--db");
    let runs: usize = flag_num("--runs", 1000);
    let writers: usize = flag_num("--writers", 32);
    let agents: usize = flag_num("--agents", 64);
    let seconds: f64 = flag_num("--seconds", 20.0);
    let interval_ms: u64 = flag_num("--interval-ms", 100);
    let points: usize = flag_num("--points", 10);
    let bin = hyperdial_bench::hyperdial_binary();

    let db = Database::fresh(db_url.as_deref(), "contention");
    let server = ServerProcess::start(&bin, &db);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("http client");
    let api = Arc::new(Api {
        http,
        url: server.url.clone(),
    });

    let (s, sweep) = api.post("/sweeps", &json!({"source": SWEEP})).await;
    assert!(s.is_success(), "create sweep answered {s}: {sweep}");
    let sweep = sweep["id"].as_str().expect("sweep id").to_string();

    // Setup: `runs` finished runs, claimed and completed by 4 concurrent clients.
    let setup_started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let mut setup_claims = Samples::default();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let api = api.clone();
        let sweep = sweep.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let agent = api.agent(&sweep, n).await;
            let mut claims = Samples::default();
            while done.fetch_add(1, Ordering::SeqCst) < runs as u64 {
                let started = Instant::now();
                let run = api.claim(&sweep, &agent).await.expect("a bayes sweep");
                claims.record(started.elapsed());
                api.complete(&run).await;
            }
            claims
        }));
    }
    for t in tasks {
        setup_claims.extend(t.await.expect("setup task"));
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();

    // The writers' runs: claimed from the same sweep, so they are in flight for the search.
    let writer_agent = api.agent(&sweep, 1000).await;
    let mut writer_runs = Vec::new();
    for _ in 0..writers {
        let run = api
            .claim(&sweep, &writer_agent)
            .await
            .expect("a bayes sweep");
        writer_runs.push(run["id"].as_str().expect("run id").to_string());
    }
    let cfg = Arc::new(WriterConfig {
        interval: Duration::from_millis(interval_ms),
        points,
        duration: Duration::from_secs_f64(seconds),
    });

    // Phase (a): writers alone.
    let mut a = writers_phase(&api, &writer_runs, &cfg).await;

    // Phase (b): the same writers while agents claim continuously.
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let claimed = Arc::new(AtomicU64::new(0));
    let mut agent_tasks = Vec::new();
    for n in 0..agents {
        let api = api.clone();
        let sweep = sweep.clone();
        let (stop, counting, claimed) = (stop.clone(), counting.clone(), claimed.clone());
        agent_tasks.push(tokio::spawn(async move {
            let agent = api.agent(&sweep, 2000 + n).await;
            let mut claims = Samples::default();
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                match api.claim(&sweep, &agent).await {
                    Some(run) => {
                        let took = started.elapsed();
                        api.complete(&run).await;
                        if counting.load(Ordering::SeqCst) {
                            claims.record(took);
                            claimed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            claims
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    counting.store(true, Ordering::SeqCst);
    let mut b = writers_phase(&api, &writer_runs, &cfg).await;
    counting.store(false, Ordering::SeqCst);
    let claims_in_b = claimed.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let mut b_claims = Samples::default();
    for t in agent_tasks {
        b_claims.extend(t.await.expect("agent task"));
    }
    let total_runs = {
        let r = api
            .http
            .get(format!("{}/api/v1/sweeps/{sweep}", api.url))
            .send()
            .await
            .expect("sweep");
        let v: Value = r.json().await.unwrap_or(Value::Null);
        v["counts"]
            .as_object()
            .map(|c| c.values().filter_map(Value::as_i64).sum::<i64>())
            .unwrap_or(-1)
    };

    println!(
        "## Claim contention — {} ({} runs, {writers} writers every {interval_ms} ms: \
         heartbeat + {points}-point batch; {agents} claiming agents; {seconds} s per phase)\n",
        db.backend.label(),
        runs
    );
    println!(
        "Setup: {runs} finished runs through the API in {setup_secs:.1} s \
         (claim p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms). Load average at the end: {}.\n",
        setup_claims.quantile_ms(0.5),
        setup_claims.quantile_ms(0.99),
        setup_claims.quantile_ms(1.0),
        hyperdial_bench::load_average().unwrap_or_else(|| "unknown".into())
    );
    println!("| phase | request | measured | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (name, phase) in [("(a) no claims", &mut a), ("(b) claims", &mut b)] {
        for (kind, samples) in [
            ("heartbeat", &mut phase.heartbeat),
            ("metrics", &mut phase.metrics),
        ] {
            println!(
                "| {name} | {kind} | {} | {:.2} | {:.2} | {:.2} |",
                samples.len(),
                samples.quantile_ms(0.5),
                samples.quantile_ms(0.99),
                samples.quantile_ms(1.0)
            );
        }
    }
    println!(
        "| (b) claims | claim ({agents} agents) | {} | {:.2} | {:.2} | {:.2} |",
        b_claims.len(),
        b_claims.quantile_ms(0.5),
        b_claims.quantile_ms(0.99),
        b_claims.quantile_ms(1.0)
    );
    println!();
    let dh = b.heartbeat.quantile_ms(0.99) - a.heartbeat.quantile_ms(0.99);
    let dm = b.metrics.quantile_ms(0.99) - a.metrics.quantile_ms(0.99);
    let verdict = |d: f64| if d <= 10.0 { "met" } else { "missed" };
    println!(
        "p99 difference (b − a): heartbeat {dh:+.2} ms ({}), metrics {dm:+.2} ms ({}); target ≤ 10 ms.",
        verdict(dh),
        verdict(dm)
    );
    println!(
        "Claims in (b): {claims_in_b} in {:.1} s = {:.1} claims/s (sweep ended with {total_runs} runs). \
         Writer requests: {:.0}/s in (a), {:.0}/s in (b). Failed requests: {} in (a), {} in (b).",
        b.seconds,
        claims_in_b as f64 / b.seconds,
        (a.heartbeat.len() + a.metrics.len()) as f64 / a.seconds,
        (b.heartbeat.len() + b.metrics.len()) as f64 / b.seconds,
        a.errors,
        b.errors
    );
    drop(server);
    drop(db);
}
