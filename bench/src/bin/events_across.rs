//! Live events across servers: two servers in this process on one PostgreSQL database, metric
//! batches posted one at a time through server B, read back as `metrics` events by a
//! subscriber of B (local) and one of A (through `LISTEN`/`NOTIFY`). Prints p50/p99 of the
//! request, of each event's arrival after the request was sent, and of the same request on a
//! third server of the database without the fan-out (what the fan-out adds to a request).
//!
//! `HYPERDIAL_TEST_PG=postgres://USER@HOST:PORT/postgres cargo run --release -p hyperdial-bench --bin events_across [-- --batches 1000]`
//! (creates and drops a database of its own in that server).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::oneshot;

struct Server {
    url: String,
    _stop: oneshot::Sender<()>,
}

async fn server(db: &str, fanout: bool) -> Server {
    let store = hyperdial_store::Store::open(db)
        .await
        .expect("open the database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let options = hyperdial_server::Options {
        events_url: fanout.then(|| db.to_string()),
        ..Default::default()
    };
    tokio::spawn(async move {
        hyperdial_server::serve(listener, store, options, async {
            stopped.await.ok();
        })
        .await
        .unwrap();
    });
    Server { url, _stop: stop }
}

/// A live-event stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(http: &reqwest::Client, server: &str) -> Events {
        let response = http
            .get(format!("{server}/api/v1/events"))
            .send()
            .await
            .unwrap();
        let mut events = Events {
            response,
            buffer: String::new(),
        };
        assert_eq!(
            events.next(Duration::from_secs(10)).await.unwrap().0,
            "hello"
        );
        events
    }

    async fn next(&mut self, limit: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let message: String = self.buffer.drain(..end + 2).collect();
                let mut kind = None;
                let mut data = String::new();
                for line in message.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = Some(k.trim().to_string());
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if let Some(kind) = kind {
                    return Some((kind, serde_json::from_str(&data).unwrap_or(Value::Null)));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Wait for the next `metrics` event of `run`; the time it arrived.
    async fn metrics_of(&mut self, run: &str) -> Instant {
        loop {
            let (kind, data) = self
                .next(Duration::from_secs(30))
                .await
                .expect("an event within 30 s");
            if kind == "metrics" && data["run"]["id"] == run {
                return Instant::now();
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name:<44} {:>8.2} {:>8.2} {:>8.2}",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
}

async fn new_run(http: &reqwest::Client, server: &str) -> String {
    let run: Value = http
        .post(format!("{server}/api/v1/runs"))
        .json(&json!({"config": {"x": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    run["id"].as_str().unwrap().to_string()
}

async fn post_batch(http: &reqwest::Client, server: &str, run: &str, step: usize) -> f64 {
    let started = Instant::now();
    let r = http
        .post(format!("{server}/api/v1/runs/{run}/metrics"))
        .json(&json!({"points": [{"step": step, "values": {"loss": 1.0 / (step as f64 + 1.0)}}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    started.elapsed().as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let batches: usize = std::env::args()
        .skip_while(|a| a != "--batches")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let admin_url = std::env::var("HYPERDIAL_TEST_PG")
        .expect("HYPERDIAL_TEST_PG names a PostgreSQL server (postgres://USER@HOST:PORT/postgres)");
    let name = format!("hd_bench_events_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("HYPERDIAL_TEST_PG reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let db = with_database(&admin_url, &name);

    let a = server(&db, true).await;
    let b = server(&db, true).await;
    let plain = server(&db, false).await;
    let http = reqwest::Client::new();
    let mut remote = Events::open(&http, &a.url).await;
    let mut local = Events::open(&http, &b.url).await;
    let mut plain_events = Events::open(&http, &plain.url).await;

    // Until A's listener is connected, B's notices reach nobody: post until one arrives.
    let run = new_run(&http, &b.url).await;
    let mut step = 0;
    loop {
        post_batch(&http, &b.url, &run, step).await;
        step += 1;
        if let Some((kind, _)) = remote.next(Duration::from_millis(500)).await {
            if kind == "metrics" {
                break;
            }
        }
    }
    // Drain what is left of the warm-up.
    while remote.next(Duration::from_millis(300)).await.is_some() {}
    while local.next(Duration::from_millis(100)).await.is_some() {}

    // Alternate between the servers with and without the fan-out, so that both see the same
    // load on the machine and the database.
    let plain_run = new_run(&http, &plain.url).await;
    let ms = |since: Instant, at: Instant| at.duration_since(since).as_secs_f64() * 1e3;
    let (mut request, mut here, mut there) = (Vec::new(), Vec::new(), Vec::new());
    let mut plain_request = Vec::new();
    for i in 0..batches {
        let sent = Instant::now();
        request.push(post_batch(&http, &b.url, &run, step).await);
        step += 1;
        here.push(ms(sent, local.metrics_of(&run).await));
        there.push(ms(sent, remote.metrics_of(&run).await));
        plain_request.push(post_batch(&http, &plain.url, &plain_run, i).await);
        plain_events.metrics_of(&plain_run).await;
    }

    println!(
        "live events across two servers on one PostgreSQL database, {batches} metric batches of 1 point, one at a time"
    );
    println!("{:<44} {:>8} {:>8} {:>8}", "ms", "p50", "p99", "max");
    summary("POST metrics, server without fan-out", plain_request);
    summary("POST metrics, server with fan-out", request);
    summary("event at a subscriber of the same server", here);
    summary("event at a subscriber of the other server", there);
    drop((a, b, plain, remote, local, plain_events));
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .ok();
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (rest, query) = match url.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = rest.find("://").map_or(0, |i| i + 3);
    let host_end = rest[scheme_end..]
        .find('/')
        .map_or(rest.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &rest[..host_end])
}
