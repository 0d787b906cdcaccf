//! The claim's long poll against the real binary: a parked claim (`wait_ms`) is answered with
//! the run that becomes available or with the sweep's end, the wait is bounded, a server
//! shutting down answers its parked claims at once, and a claim whose client went away hands
//! out nothing.
//!
//! The tests know a claim is parked from the server's own debug log (`claim parked`), so no
//! step depends on how long anything takes; what they assert is what each claim answered.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{free_port, Scratch};
use serde_json::{json, Value};

const GRID: &str = "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1, 2]}\n";
const ONE: &str =
    "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1]}\n";

/// A `hyperdial server` child whose claim debug log is read line by line.
struct Server {
    child: Child,
    url: String,
    http: reqwest::Client,
    log: mpsc::Receiver<String>,
    parked: usize,
}

impl Server {
    fn start(s: &Scratch) -> Server {
        let port = free_port();
        let mut child = s
            .cmd(&[
                "server",
                "--db",
                s.dir.join("db.sqlite").to_str().unwrap(),
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .env("HYPERDIAL_LOG", "warn,hyperdial_server::api::claim=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The first stdout line says the server listens.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.contains("hyperdial server on"), "{first}");
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            log,
            parked: 0,
        }
    }

    /// Block until the server has parked `n` more claims (its log says so).
    fn await_parked(&mut self, n: usize) {
        let want = self.parked + n;
        while self.parked < want {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(120))
                .expect("the server parked no claim");
            if line.contains("claim parked") {
                self.parked += 1;
            }
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn sweep(&self, source: &str) -> String {
        let (status, created) = self
            .post("/api/v1/sweeps", json!({ "source": source }))
            .await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// What a claim answered: the status, the waited header and the JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    waited_ms: Option<u64>,
    body: Value,
}

/// `POST /sweeps/{id}/claim` with `wait_ms` (none when `None`), as a task of its own.
fn claim(server: &Server, sweep: &str, wait_ms: Option<u64>) -> tokio::task::JoinHandle<Answer> {
    let http = server.http.clone();
    let url = format!("{}/api/v1/sweeps/{sweep}/claim", server.url);
    let mut body = json!({});
    if let Some(ms) = wait_ms {
        body["wait_ms"] = json!(ms);
    }
    tokio::spawn(async move {
        let r = http.post(url).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let waited_ms = r
            .headers()
            .get("x-hyperdial-waited-ms")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let body = r.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            waited_ms,
            body,
        }
    })
}

/// Run `f` on a blocking thread (it waits on the server's log).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Wait for `n` more parked claims without blocking the runtime.
async fn parked(server: Server, n: usize) -> Server {
    blocking(move || {
        let mut server = server;
        server.await_parked(n);
        server
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_claim_gets_the_run_that_becomes_available_then_the_sweeps_end() {
    let s = Scratch::new("claim-wait-wake");
    let server = Server::start(&s);
    let sweep = server.sweep(GRID).await;
    let (status, _) = server
        .post(&format!("/api/v1/sweeps/{sweep}/pause"), json!({}))
        .await;
    assert_eq!(status, 200);

    // Paused: the claim parks, and the resume hands it the first run.
    let first = claim(&server, &sweep, Some(30_000));
    let server = parked(server, 1).await;
    let (status, _) = server
        .post(&format!("/api/v1/sweeps/{sweep}/resume"), json!({}))
        .await;
    assert_eq!(status, 200);
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["run"]["number"], 1);
    let second = claim(&server, &sweep, None).await.unwrap();
    assert_eq!(second.body["run"]["number"], 2, "{second:?}");

    // The grid is spent with two runs in flight: the claim parks; the first run's end wakes
    // it, it finds the second still running and parks again; the second's end ends the sweep.
    let last = claim(&server, &sweep, Some(30_000));
    let server = parked(server, 1).await;
    let run = first.body["run"]["id"].as_str().unwrap();
    let (status, _) = server
        .post(
            &format!("/api/v1/runs/{run}/finish"),
            json!({"exit_code": 0}),
        )
        .await;
    assert_eq!(status, 200);
    let server = parked(server, 1).await;
    let run = second.body["run"]["id"].as_str().unwrap();
    let (status, _) = server
        .post(
            &format!("/api/v1/runs/{run}/finish"),
            json!({"exit_code": 0}),
        )
        .await;
    assert_eq!(status, 200);
    let last = last.await.unwrap();
    assert_eq!(last.status, 410, "{last:?}");
    assert_eq!(last.body["state"], "finished");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_of_a_crashed_run_reaches_a_parked_claim() {
    let s = Scratch::new("claim-wait-retry");
    let server = Server::start(&s);
    let sweep = server.sweep(ONE).await;
    let only = claim(&server, &sweep, None).await.unwrap();
    let run = only.body["run"]["id"].as_str().unwrap().to_string();
    // The grid is spent and its run in flight: the claim parks. The run crashes; the sweep's
    // default retry policy queues it again, and the parked claim gets that retry.
    let waiting = claim(&server, &sweep, Some(30_000));
    let server = parked(server, 1).await;
    let (status, ended) = server
        .post(
            &format!("/api/v1/runs/{run}/finish"),
            json!({"state": "crashed", "error": "lost"}),
        )
        .await;
    assert_eq!((status, ended["state"].as_str()), (200, Some("crashed")));
    let got = waiting.await.unwrap();
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body["run"]["retry_of"], run.as_str());
    assert_eq!(got.body["run"]["attempt"], 2);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_is_bounded_by_the_request_and_by_the_server() {
    let s = Scratch::new("claim-wait-bound");
    let server = Server::start(&s);
    let sweep = server.sweep(GRID).await;
    let (status, _) = server
        .post(&format!("/api/v1/sweeps/{sweep}/pause"), json!({}))
        .await;
    assert_eq!(status, 200);
    // Without `wait_ms`: at once, and no header (what an older server answers too).
    let now = claim(&server, &sweep, None).await.unwrap();
    assert_eq!((now.status, now.waited_ms), (204, None));
    // A short wait, and one far beyond the server's cap (30 s): both end in a 204 that says
    // the server waited, at least what it granted.
    let short = claim(&server, &sweep, Some(300));
    let huge = claim(&server, &sweep, Some(u64::MAX / 2));
    let short = short.await.unwrap();
    assert_eq!(short.status, 204);
    assert!(short.waited_ms.is_some_and(|ms| ms >= 300), "{short:?}");
    let huge = huge.await.unwrap();
    assert_eq!(huge.status, 204);
    let waited = huge.waited_ms.expect("the header of a held claim");
    assert!((30_000..60_000).contains(&waited), "waited {waited} ms");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_parked_claims_at_once_and_a_gone_client_claims_nothing() {
    let s = Scratch::new("claim-wait-shutdown");
    let server = Server::start(&s);
    let sweep = server.sweep(ONE).await;
    let (status, _) = server
        .post(&format!("/api/v1/sweeps/{sweep}/pause"), json!({}))
        .await;
    assert_eq!(status, 200);

    // A client that gives up while its claim is parked: the server drops the claim, so the
    // resume does not hand the only run to nobody.
    let gone = claim(&server, &sweep, Some(30_000));
    let server = parked(server, 1).await;
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    let parked_one = claim(&server, &sweep, Some(30_000));
    let server = parked(server, 1).await;
    let (status, _) = server
        .post(&format!("/api/v1/sweeps/{sweep}/resume"), json!({}))
        .await;
    assert_eq!(status, 200);
    let got = parked_one.await.unwrap();
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body["run"]["number"], 1);

    // An open dashboard's live event stream, which never ends by itself: SIGTERM ends it
    // too, so it does not hold the shutdown for the server's grace period.
    let mut events = server
        .http
        .get(format!("{}/api/v1/events", server.url))
        .send()
        .await
        .unwrap();
    let hello = events.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&hello).contains("hello"));
    let stream = tokio::spawn(async move {
        while let Some(chunk) = events.chunk().await.transpose() {
            if chunk.is_err() {
                return false;
            }
        }
        true
    });

    // The grid is spent and its run in flight: the next claim parks until SIGTERM, which
    // answers it at once, without the header (the client falls back to its poll).
    let held = claim(&server, &sweep, Some(30_000));
    let mut server = parked(server, 1).await;
    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let held = held.await.unwrap();
    assert_eq!((held.status, held.waited_ms), (204, None), "{held:?}");
    assert!(stream.await.unwrap(), "the event stream was cut, not ended");
    let status = blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    })
    .await;
    assert!(status.0.success(), "{:?}", status.0);
    let logged: Vec<String> = status.1.log.try_iter().collect();
    assert!(
        !logged.iter().any(|l| l.contains("requests still open")),
        "{logged:?}"
    );
}
