//! Several `hyperdial server` processes on one PostgreSQL database: claims stay unique across
//! them, a dashboard connected to one server sees what happens through the other, and a sweep
//! paused through one is paused for all.
//!
//! Each test creates a database of its own in the PostgreSQL server named by
//! `HYPERDIAL_TEST_PG` (`.ci/run` starts one); without it each test prints `SKIPPED: ...` (and
//! appends it to the file named by `HYPERDIAL_SKIPPED`) instead of passing silently.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    create_sweep, free_port, json_of, text, wait_answering, wait_child, Scratch, ServerProcess,
};
use serde_json::{json, Value};

/// Report a test that could not run.
fn skip(test: &str) {
    let line = format!(
        "SKIPPED: {test} (HYPERDIAL_TEST_PG is not set; .ci/run starts PostgreSQL and sets it)"
    );
    println!("{line}");
    if let Some(path) = std::env::var_os("HYPERDIAL_SKIPPED") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The URL of a new, empty database in the test server, or `None` (announced) without one.
fn database(test: &str) -> Option<String> {
    let Ok(server) = std::env::var("HYPERDIAL_TEST_PG") else {
        skip(test);
        return None;
    };
    let name = format!(
        "hd_multi_{}_{}",
        std::process::id(),
        test.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase()
    );
    // A thread of its own, so that async tests can call this too.
    let admin = server.clone();
    let create = name.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("HYPERDIAL_TEST_PG reachable");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {create} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {create}"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.ok();
        })
    })
    .join()
    .unwrap();
    let (rest, query) = match server.split_once('?') {
        Some((r, q)) => (r.to_string(), format!("?{q}")),
        None => (server.clone(), String::new()),
    };
    let scheme_end = rest.find("://").map_or(0, |i| i + 3);
    let host_end = rest[scheme_end..]
        .find('/')
        .map_or(rest.len(), |i| scheme_end + i);
    Some(format!("{}/{name}{query}", &rest[..host_end]))
}

/// Two servers on the database at `url`, on ports of their own.
fn two_servers(s: &Scratch, url: &str) -> (ServerProcess, ServerProcess) {
    let one = ServerProcess::start(s, Path::new(url), free_port());
    let two = ServerProcess::start(s, Path::new(url), free_port());
    (one, two)
}

/// `hyperdial agent SWEEP` against `server`, its output captured.
fn agent(s: &Scratch, server: &str, sweep: &str) -> Child {
    s.cmd(&["agent", sweep, "--server", server])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for every agent to end on its own (the sweep is over), each successfully; the number
/// of runs each ran (its last line says).
fn wait_agents(agents: Vec<Child>) -> Vec<u64> {
    let mut ran = Vec::new();
    for mut a in agents {
        let status = wait_child(&mut a, Duration::from_secs(120));
        let out = a.wait_with_output().unwrap();
        assert!(status.success(), "an agent failed: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let runs = stdout
            .lines()
            .find_map(|l| l.strip_prefix("agent done: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no summary line: {}", text(&out)));
        ran.push(runs);
    }
    ran
}

/// A grid of `n` points over one parameter, each run a one-step script.
fn grid(n: usize) -> String {
    let values: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    format!(
        "program: train.py\nmethod: grid\nparameters:\n  a:\n    values: [{}]\n  steps:\n    value: 1\n",
        values.join(", ")
    )
}

/// An agent given both servers (`--server ONE,TWO`) carries on through the second when the
/// first dies (SIGKILL) mid-run: the run in flight keeps every point and finishes (it is not
/// left to the run timeout and retried), and the next run is claimed through the second.
#[test]
fn an_agent_given_two_servers_carries_on_through_the_other_when_one_dies() {
    let Some(db) = database("multi_server agent fails over") else {
        return;
    };
    const STEPS: usize = 80;
    let s = Scratch::new("multi-failover");
    let (mut one, two) = two_servers(&s, &db);
    let id = create_sweep(
        &s,
        &one.url,
        &format!(
            "program: train.py\nmethod: grid\nmetric: {{name: loss}}\nparameters:\n  a: {{values: [1.0, 2.0]}}\n  steps: {{value: {STEPS}}}\n  sleep: {{value: 0.1}}\n"
        ),
    );
    let log = s.dir.join("agent.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut agent = s
        .cmd(&[
            "agent",
            &id,
            "--server",
            &format!("{},{}", one.url, two.url),
        ])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let runs = |url: &str| -> Vec<Value> {
        json_of(&s, &["runs", &id, "--json", "--server", url])
            .as_array()
            .unwrap()
            .clone()
    };
    // The first run reports (through the first server) before that server dies.
    let deadline = Instant::now() + Duration::from_secs(60);
    let reported = |runs: &[Value]| runs.first().is_some_and(|r| !r["metric"].is_null());
    while !reported(&runs(&two.url)) {
        assert!(Instant::now() < deadline, "no point arrived: {}", said());
        std::thread::sleep(Duration::from_millis(100));
    }
    one.child.kill().unwrap(); // SIGKILL
    one.child.wait().unwrap();
    let status = wait_child(&mut agent, Duration::from_secs(120));
    let said = said();
    assert!(status.success(), "{status}: {said}");
    assert!(
        said.contains(&format!("going on with {}", two.url)),
        "{said}"
    );
    let runs = runs(&two.url);
    assert_eq!(runs.len(), 2, "no run crashed or retried: {runs:#?}");
    for run in &runs {
        assert_eq!(run["state"], "finished", "{run:#}");
        let view: Value = serde_json::from_str(&common::http_get(&format!(
            "{}/api/v1/runs/{}",
            two.url,
            run["id"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(
            view["history"].as_array().unwrap().len(),
            STEPS,
            "every step of run {} kept: {said}",
            run["number"]
        );
    }
}

#[test]
fn a_grid_claimed_through_two_servers_runs_every_point_exactly_once() {
    let Some(db) = database("multi_server grid through two servers") else {
        return;
    };
    const N: usize = 24;
    let s = Scratch::new("multi-grid");
    let (one, two) = two_servers(&s, &db);
    let id = create_sweep(&s, &one.url, &grid(N));
    let agents: Vec<Child> = [&one.url, &two.url, &one.url, &two.url]
        .into_iter()
        .map(|url| agent(&s, url, &id))
        .collect();
    let ran = wait_agents(agents);
    println!(
        "runs handed out: server one {} (agents {:?}), server two {} (agents {:?})",
        ran[0] + ran[2],
        [ran[0], ran[2]],
        ran[1] + ran[3],
        [ran[1], ran[3]]
    );
    assert_eq!(ran.iter().sum::<u64>(), N as u64, "{ran:?}");

    // Both servers read the same runs.
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &two.url]);
    assert_eq!(
        runs,
        json_of(&s, &["runs", &id, "--json", "--server", &one.url])
    );
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), N, "{runs:#?}");
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:#?}");
    let ids: BTreeSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), N);
    let numbers: Vec<i64> = {
        let mut n: Vec<i64> = runs.iter().map(|r| r["number"].as_i64().unwrap()).collect();
        n.sort();
        n
    };
    assert_eq!(numbers, (1..=N as i64).collect::<Vec<_>>());
    let cells: BTreeSet<u64> = runs
        .iter()
        .map(|r| {
            r["suggestion"]["grid_index"]
                .as_u64()
                .expect("a grid index")
        })
        .collect();
    assert_eq!(cells, (0..N as u64).collect::<BTreeSet<_>>());
    let values: BTreeSet<i64> = runs
        .iter()
        .map(|r| r["params"]["a"].as_i64().unwrap())
        .collect();
    assert_eq!(values, (1..=N as i64).collect::<BTreeSet<_>>());
    let sweep = json_of(&s, &["sweeps", "--json", "--server", &two.url]);
    assert_eq!(sweep[0]["state"], "finished");
}

/// A live-event stream (`GET /api/v1/events`), read with a deadline per event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(server: &str, sweep: &str) -> Events {
        let response = reqwest::Client::new()
            .get(format!("{server}/api/v1/events?sweep={sweep}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut events = Events {
            response,
            buffer: String::new(),
        };
        let (kind, _) = events.next().await.expect("hello");
        assert_eq!(kind, "hello");
        events
    }

    /// The next event (kind and data), or `None` when none comes within 60 s.
    async fn next(&mut self) -> Option<(String, Value)> {
        self.next_within(Duration::from_secs(60)).await
    }

    async fn next_within(&mut self, limit: Duration) -> Option<(String, Value)> {
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
                // Comment lines (keep-alive) carry no event.
                if let Some(kind) = kind {
                    return Some((kind, serde_json::from_str(&data).unwrap_or(Value::Null)));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("the event stream")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// `POST path` on `server` with an empty JSON body: the status and answer.
async fn post(server: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{server}{path}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Pause and resume `sweep` through `via` until `events` (of another server) shows the
/// pause: then that server listens to the database.
async fn until_events_flow(events: &mut Events, via: &str, sweep: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "no event came from the other server"
        );
        assert_eq!(
            post(via, &format!("/api/v1/sweeps/{sweep}/pause")).await.0,
            200
        );
        let mut seen = false;
        while let Some((kind, data)) = events.next_within(Duration::from_secs(2)).await {
            if kind == "sweep" && data["state"] == "paused" {
                seen = true;
                break;
            }
        }
        assert_eq!(
            post(via, &format!("/api/v1/sweeps/{sweep}/resume")).await.0,
            200
        );
        if seen {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_one_server_sees_the_runs_of_the_other() {
    let Some(db) = database("multi_server events across servers") else {
        return;
    };
    const N: usize = 6;
    let s = Scratch::new("multi-events");
    let (one, two) = two_servers(&s, &db);
    let id = create_sweep(&s, &two.url, &grid(N));
    let mut events = Events::open(&one.url, &id).await;
    until_events_flow(&mut events, &two.url, &id).await;

    // Agents only on server two; the subscriber only on server one.
    let agents: Vec<Child> = (0..2).map(|_| agent(&s, &two.url, &id)).collect();
    let mut created = BTreeSet::new();
    let mut finished = BTreeSet::new();
    let mut resumed = false;
    while created.len() < N || finished.len() < N {
        let Some((kind, data)) = events.next().await else {
            panic!(
                "events stopped: {} created, {} finished of {N}",
                created.len(),
                finished.len()
            );
        };
        match kind.as_str() {
            "run_created" => {
                assert_eq!(data["sweep"], id.as_str());
                created.insert(data["id"].as_str().unwrap().to_string());
            }
            "run_finished" => {
                assert_eq!(data["state"], "finished", "{data}");
                finished.insert(data["id"].as_str().unwrap().to_string());
            }
            "metrics" => {
                // Points stay on the server that stored them; the run says where it is.
                assert_eq!(data["points"], json!([]));
                assert_eq!(data["truncated"], true);
                assert!(data["run"]["id"].is_string());
            }
            "sweep" => resumed |= data["state"] == "running",
            "resync" => panic!("a resync while nothing was lost: {data}"),
            _ => {}
        }
    }
    assert!(resumed, "the resume through server two was seen");
    let ran = tokio::task::spawn_blocking(move || wait_agents(agents));
    assert_eq!(ran.await.unwrap().iter().sum::<u64>(), N as u64);
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &one.url]);
    let stored: BTreeSet<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, stored);
    assert_eq!(finished, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_through_one_server_holds_the_claims_of_the_other() {
    let Some(db) = database("multi_server pause across servers") else {
        return;
    };
    let s = Scratch::new("multi-pause");
    let (one, two) = two_servers(&s, &db);
    let id = create_sweep(&s, &one.url, &grid(4));
    let claim = format!("/api/v1/sweeps/{id}/claim");
    // Server one hands out a run (and so has read and cached the sweep's config).
    let (status, first) = post(&one.url, &claim).await;
    assert_eq!(status, 200, "{first}");

    assert_eq!(
        post(&two.url, &format!("/api/v1/sweeps/{id}/pause"))
            .await
            .0,
        200
    );
    let (status, answer) = post(&one.url, &claim).await;
    assert_eq!(
        status, 204,
        "server one handed out a run of a paused sweep: {answer}"
    );

    assert_eq!(
        post(&two.url, &format!("/api/v1/sweeps/{id}/resume"))
            .await
            .0,
        200
    );
    let (status, second) = post(&one.url, &claim).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["run"]["number"], 2);

    assert_eq!(
        post(&two.url, &format!("/api/v1/sweeps/{id}/stop")).await.0,
        200
    );
    let (status, answer) = post(&one.url, &claim).await;
    assert_eq!(status, 410, "{answer}");
    assert_eq!(answer["state"], "finished");
}

/// `hyperdial ui` on a PostgreSQL database shares live events with the servers of that
/// database, as `hyperdial server` does: a run created through a server reaches its page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyperdial_ui_on_postgres_sees_the_events_of_a_server() {
    use std::io::{BufRead, BufReader};
    let Some(db) = database("multi_server ui events") else {
        return;
    };
    let s = Scratch::new("multi-ui");
    let server = ServerProcess::start(&s, Path::new(&db), free_port());
    let id = create_sweep(&s, &server.url, &grid(2));
    let mut ui = s
        .cmd(&["ui", "--db", &db, "--port", &free_port().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(ui.stdout.take().unwrap()).lines();
    let url = lines
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("dashboard: ")
                .map(|u| u.trim_end_matches('/').to_string())
        })
        .expect("ui prints its dashboard URL");
    let mut events = Events::open(&url, &id).await;
    until_events_flow(&mut events, &server.url, &id).await;
    let agent = agent(&s, &server.url, &id);
    let mut created = BTreeSet::new();
    while created.len() < 2 {
        let (kind, data) = events.next().await.expect("run events reach the ui");
        if kind == "run_created" {
            created.insert(data["id"].as_str().unwrap().to_string());
        }
    }
    let ran = tokio::task::spawn_blocking(move || wait_agents(vec![agent]));
    assert_eq!(ran.await.unwrap().iter().sum::<u64>(), 2);
    ui.kill().ok();
    ui.wait().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_parked_on_one_server_is_woken_by_a_run_ending_through_the_other() {
    let Some(db) = database("multi_server parked claim across servers") else {
        return;
    };
    let s = Scratch::new("multi-claim-wait");
    // Server one logs its parked claims, so the test knows when one is parked.
    let port = free_port();
    let one = s
        .cmd(&[
            "server",
            "--db",
            &db,
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("HYPERDIAL_LOG", "warn,hyperdial_server::api::claim=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut one = ServerProcess {
        child: one,
        url: format!("http://127.0.0.1:{port}"),
    };
    let (tx, log) = std::sync::mpsc::channel::<String>();
    let stderr = one.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let one_url = one.url.clone();
    wait_answering(&mut one.child, port, Duration::from_secs(20)).unwrap();
    let two = ServerProcess::start(&s, Path::new(&db), free_port());
    let id = create_sweep(&s, &one_url, &grid(1));
    let mut events = Events::open(&one_url, &id).await;
    until_events_flow(&mut events, &two.url, &id).await;

    let claim = format!("/api/v1/sweeps/{id}/claim");
    let (status, only) = post(&two.url, &claim).await;
    assert_eq!(status, 200, "{only}");
    // The grid is spent and its run in flight: a claim on server one parks.
    let waiting = {
        let url = format!("{one_url}{claim}");
        tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&json!({"wait_ms": 30_000}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let (log, seen) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        while !seen.iter().any(|l: &String| l.contains("claim parked")) {
            seen.push(
                log.recv_timeout(Duration::from_secs(120))
                    .expect("server one parked no claim"),
            );
        }
        (log, seen)
    })
    .await
    .unwrap();
    // The run ends through server two; server one hears of it and its claim answers the end.
    let run = only["run"]["id"].as_str().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/runs/{run}/finish", two.url))
        .json(&json!({"exit_code": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, 410, "{answer}");
    assert_eq!(answer["state"], "finished");
    // Woken by the other server's notice, not found by the periodic recheck alone.
    one.kill9();
    let rest: Vec<String> = seen.into_iter().chain(log.try_iter()).collect();
    assert!(
        rest.iter().any(|l| l.contains("claim woken")),
        "server one's claim was never woken: {rest:#?}"
    );
}
