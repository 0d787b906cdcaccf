//! Late reports over the real API: once a run is `crashed` (its agent fell silent for the run
//! timeout, or it was reported crashed), every report for it is refused with a `409` that
//! says why, and nothing of it is stored: its metrics, summary and state stay as they were,
//! and its retry is untouched.

mod common;

use std::time::{Duration, Instant};

use common::{start, start_with};
use hyperdial_server::Options;
use hyperdial_store::now_ms;
use serde_json::{json, Value};

async fn claim(s: &common::Server, sweep: &str) -> Value {
    let (status, body) = s
        .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["run"].clone()
}

/// Register an agent for `sweep` and claim a run with it: the run's id.
async fn claim_by_agent(s: &common::Server, sweep: &str) -> String {
    let (status, agent) = s
        .post("/api/v1/agents", json!({"sweep": sweep, "host": "gpu-1"}))
        .await;
    assert_eq!(status, 201, "{agent}");
    let (status, body) = s
        .post(
            &format!("/api/v1/sweeps/{sweep}/claim"),
            json!({"agent": agent["id"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["run"]["id"].as_str().unwrap().to_string()
}

/// Run `id` once the janitor has marked it `crashed` (it stays `running` until then). The
/// janitor looks every 250 ms with a limit of a few seconds; the bound only keeps a broken
/// build from hanging.
async fn wait_crashed(s: &common::Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, now) = s.get(&format!("/api/v1/runs/{id}")).await;
        if now["state"] == "crashed" {
            return now;
        }
        assert_eq!(now["state"], "running", "{now}");
        assert!(Instant::now() < deadline, "never crashed: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every report an agent or a client sends for a run, with its method and body.
fn reports(id: &str) -> Vec<(reqwest::Method, String, Value)> {
    use reqwest::Method;
    vec![
        (
            Method::POST,
            format!("/api/v1/runs/{id}/heartbeat"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/runs/{id}/metrics"),
            json!({"points": [{"step": 7, "values": {"loss": 0.001}}]}),
        ),
        (
            Method::POST,
            format!("/api/v1/runs/{id}/output"),
            json!({"stream": "stdout", "text": "late line\n"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/runs/{id}/summary"),
            json!({"loss": 0.0001}),
        ),
        (
            Method::POST,
            format!("/api/v1/runs/{id}/started"),
            json!({"argv": ["python3", "t.py"]}),
        ),
        (
            Method::POST,
            format!("/api/v1/runs/{id}/finish"),
            json!({"exit_code": 0}),
        ),
    ]
}

/// Send every late report for run `id` and check each is a clean `409`.
async fn assert_refused(s: &common::Server, id: &str) {
    for (method, path, body) in reports(id) {
        let (status, answer) = s.send(method.clone(), &path, body).await;
        assert_eq!(status, 409, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "run_crashed", "{answer}");
        assert_eq!(answer["state"], "crashed", "{answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains(id) && message.contains("crashed"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn reports_for_a_crashed_run_are_refused_and_change_nothing() {
    let s = start(None).await;
    let sweep = s
        .sweep("program: t.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters: {x: {values: [1, 2]}}\n")
        .await;
    let run = claim(&s, &sweep).await;
    let id = run["id"].as_str().unwrap();
    let (status, _) = s
        .post(
            &format!("/api/v1/runs/{id}/metrics"),
            json!({"points": [{"step": 0, "values": {"loss": 0.5}}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"state": "crashed", "error": "the agent stopped reporting"}),
        )
        .await;
    assert_eq!(status, 200);

    assert_refused(&s, id).await;

    let (_, after) = s.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(after["state"], "crashed");
    assert_eq!(after["metric"], 0.5, "{after}");
    let (_, history) = s.get(&format!("/api/v1/runs/{id}/history")).await;
    let text = history.to_string();
    assert!(!text.contains("0.001"), "a late point was stored: {text}");
    let (_, output) = s.get(&format!("/api/v1/runs/{id}/output")).await;
    assert!(!output.to_string().contains("late line"), "{output}");

    // The retry of the crashed configuration takes reports as usual.
    let retry = claim(&s, &sweep).await;
    assert_eq!(retry["retry_of"], id);
    let retry_id = retry["id"].as_str().unwrap();
    let (status, beat) = s
        .post(&format!("/api/v1/runs/{retry_id}/heartbeat"), json!({}))
        .await;
    assert_eq!((status, &beat["stop"]), (200, &json!(false)));
}

#[tokio::test]
async fn a_run_silent_for_the_run_timeout_is_crashed_and_its_late_reports_refused() {
    let s = start_with(Options {
        run_timeout: Some(Duration::from_secs(1)),
        ..Options::default()
    })
    .await;
    let sweep = s
        .sweep("program: t.py\nmethod: grid\nparameters: {x: {values: [1, 2]}}\n")
        .await;
    // One run claimed by an agent, one by a client asking without an agent (ask/tell).
    let by_agent = claim_by_agent(&s, &sweep).await;
    let asked = claim(&s, &sweep).await;
    let asked = asked["id"].as_str().unwrap();
    // Each crashed run's error says what went silent; the state word is the same.
    for (id, error) in [
        (by_agent.as_str(), "the agent stopped reporting"),
        (
            asked,
            "no heartbeat or tell for 1 s (the client that asked for this trial stopped)",
        ),
    ] {
        assert_eq!(wait_crashed(&s, id).await["error"], error);
        assert_refused(&s, id).await;
    }
}

#[tokio::test]
async fn reports_for_an_unknown_run_are_still_not_found() {
    let s = start(None).await;
    let (status, body) = s.post("/api/v1/runs/nosuchrun/heartbeat", json!({})).await;
    assert_eq!(status, 404, "{body}");
}

/// A run crashed for its silence ended when it was last heard from (here a metric batch after
/// a heartbeat), not when the silence was noticed a run timeout later: its `finished_ms` is
/// its last `heartbeat_ms`, and its duration in the export does not count the silence.
#[tokio::test]
async fn a_silent_run_ends_when_it_was_last_heard_from() {
    let limit = Duration::from_secs(2);
    let s = start_with(Options {
        run_timeout: Some(limit),
        ..Options::default()
    })
    .await;
    let sweep = s
        .sweep(
            "program: t.py\nmethod: grid\nmetric: {name: loss}\nparameters: {x: {values: [1]}}\n",
        )
        .await;
    let id = claim_by_agent(&s, &sweep).await;
    let (status, _) = s
        .post(&format!("/api/v1/runs/{id}/heartbeat"), json!({}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = now_ms();
    let (status, body) = s
        .post(
            &format!("/api/v1/runs/{id}/metrics"),
            json!({"points": [{"step": 0, "values": {"loss": 0.5}}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = now_ms();
    let run = wait_crashed(&s, &id).await;
    let noticed = now_ms();
    let finished = run["finished_ms"].as_i64().unwrap();
    assert_eq!(run["finished_ms"], run["heartbeat_ms"], "{run}");
    assert!(
        (before..=after).contains(&finished),
        "{before} {after} {run}"
    );
    // Noticed at least the limit after the last report, which the end does not count.
    assert!(noticed - finished >= limit.as_millis() as i64, "{run}");
    let started = run["started_ms"].as_i64().unwrap();
    let (_, export) = s
        .get(&format!("/api/v1/sweeps/{sweep}/export?format=json"))
        .await;
    let row = &export["runs"][0];
    assert_eq!(row["state"], "crashed", "{export}");
    assert_eq!(row["finished_ms"], finished, "{export}");
    assert_eq!(
        row["duration_s"].as_f64(),
        Some((finished - started) as f64 / 1000.0),
        "{export}"
    );
}
