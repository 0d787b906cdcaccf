//! Retries over the real API: the sweep's `retry` policy (crashed runs once by default),
//! `POST /sweeps/{id}/retry` (also on a finished sweep), attempts recorded with the runs, and a
//! configuration counted once for `run_cap` however often it ran.

mod common;

use common::start;
use serde_json::{json, Value};

/// Claim a run of `sweep`: `(status, run)`.
async fn claim(s: &common::Server, sweep: &str) -> (u16, Value) {
    let (status, body) = s
        .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
        .await;
    (status, body["run"].clone())
}

async fn finish(s: &common::Server, run: &Value, body: Value) -> Value {
    let id = run["id"].as_str().unwrap();
    let (status, answer) = s.post(&format!("/api/v1/runs/{id}/finish"), body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn runs(s: &common::Server, sweep: &str) -> Vec<Value> {
    let (_, body) = s.get(&format!("/api/v1/runs?sweep={sweep}")).await;
    body["runs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_crashed_run_is_retried_once_by_default_and_a_failed_one_is_not() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nparameters: {x: {values: [1, 2, 3]}}\n")
        .await;
    let (_, a) = claim(&s, &id).await;
    let (_, b) = claim(&s, &id).await;
    let (_, c) = claim(&s, &id).await;
    assert_eq!(a["attempt"], 1);
    assert!(a["retry_of"].is_null());
    finish(&s, &a, json!({"exit_code": 0})).await;
    finish(&s, &b, json!({"state": "crashed", "error": "agent lost"})).await;
    finish(&s, &c, json!({"exit_code": 1})).await;

    // The crashed configuration comes back before the strategy is asked (the grid is done).
    let (status, retry) = claim(&s, &id).await;
    assert_eq!(status, 200);
    assert_eq!(retry["params"], b["params"]);
    assert_eq!(retry["config"], b["config"]);
    assert_eq!(retry["retry_of"], b["id"]);
    assert_eq!(retry["attempt"], 2);
    assert_eq!(retry["number"], 4);
    assert_eq!(retry["state"], "running");
    // Crashed again: `max: 1` is spent, the failed run is not covered by the default; over.
    finish(&s, &retry, json!({"state": "crashed"})).await;
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);
    let all = runs(&s, &id).await;
    assert_eq!(all.len(), 4, "{all:#?}");
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["retries"], 1);
    // Still open: the failed run and the latest crashed attempt.
    assert_eq!(sweep["retryable"], 2);
}

#[tokio::test]
async fn a_retried_configuration_counts_once_toward_run_cap() {
    let s = start(None).await;
    let id = s
        .sweep(
            "program: t.py\nmethod: random\nrun_cap: 2\nretry: {max: 2, on: [crashed, failed]}\n\
             parameters: {x: {min: 0.0, max: 1.0}}\n",
        )
        .await;
    let (_, a) = claim(&s, &id).await;
    let (_, b) = claim(&s, &id).await;
    finish(&s, &a, json!({"exit_code": 1})).await;
    // Attempt 2 of a, then attempt 3, then no more (max 2 retries).
    let (_, a2) = claim(&s, &id).await;
    assert_eq!(
        (a2["retry_of"].clone(), a2["attempt"].clone()),
        (a["id"].clone(), json!(2))
    );
    finish(&s, &a2, json!({"exit_code": 1})).await;
    let (_, a3) = claim(&s, &id).await;
    assert_eq!(
        (a3["retry_of"].clone(), a3["attempt"].clone()),
        (a2["id"].clone(), json!(3))
    );
    assert_eq!(a3["params"], a["params"]);
    finish(&s, &a3, json!({"exit_code": 1})).await;
    // Two configurations against a cap of 2: b still runs, so wait; then the sweep ends.
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 204);
    finish(&s, &b, json!({"exit_code": 0})).await;
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);
    assert_eq!(runs(&s, &id).await.len(), 4);
}

#[tokio::test]
async fn retry_reopens_a_finished_sweep_until_its_retries_are_done() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: random\nretry: {max: 0}\nparameters: {x: {min: 0.0, max: 1.0}}\n")
        .await;
    let (_, a) = claim(&s, &id).await;
    let (_, b) = claim(&s, &id).await;
    finish(&s, &a, json!({"exit_code": 0})).await;
    finish(&s, &b, json!({"state": "crashed"})).await;
    // `max: 0`: nothing is retried on its own; stop the sweep.
    let (status, sweep) = s
        .post(&format!("/api/v1/sweeps/{id}/stop"), json!({}))
        .await;
    assert_eq!((status, sweep["state"].as_str()), (200, Some("finished")));

    let retry_path = format!("/api/v1/sweeps/{id}/retry");
    let (status, done) = s.post(&retry_path, json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["retried"].as_array().unwrap().len(), 1, "{done}");
    assert_eq!(done["retried"][0]["run"], b["id"]);
    assert_eq!(done["retried"][0]["retry"]["state"], "queued");
    assert_eq!(done["sweep"]["state"], "running");
    assert_eq!(done["sweep"]["counts"]["queued"], 1);
    // Asking again changes nothing: the crashed run has its retry.
    let (_, again) = s.post(&retry_path, json!({})).await;
    assert!(again["retried"].as_array().unwrap().is_empty(), "{again}");
    let (_, named) = s.post(&retry_path, json!({"runs": [b["id"]]})).await;
    assert_eq!(named["skipped"][0]["run"], b["id"]);
    assert!(named["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("queued"));

    let (status, retry) = claim(&s, &id).await;
    assert_eq!(status, 200);
    assert_eq!(retry["params"], b["params"]);
    finish(&s, &retry, json!({"exit_code": 0})).await;
    // The retries are done: the sweep finishes again instead of starting new runs.
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["state"], "finished");
    assert_eq!(runs(&s, &id).await.len(), 3);

    // A finished run can be run again by name.
    let (_, named) = s.post(&retry_path, json!({"runs": [a["id"]]})).await;
    assert_eq!(named["retried"][0]["retry"]["params"], a["params"]);
    // Wrong input: unknown run, unknown state, a cancelled sweep.
    let (status, body) = s.post(&retry_path, json!({"runs": ["rnothere"]})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s.post(&retry_path, json!({"states": ["exploded"]})).await;
    assert_eq!(status, 400);
    let (status, _) = s.post(&retry_path, json!({"bogus": 1})).await;
    assert_eq!(status, 400);
    s.post(&format!("/api/v1/sweeps/{id}/cancel"), json!({}))
        .await;
    let (status, body) = s.post(&retry_path, json!({})).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_retried_grid_point_is_not_run_twice_by_the_grid() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nretry: {on: [failed]}\nparameters: {x: {values: [1, 2]}}\n")
        .await;
    let (_, a) = claim(&s, &id).await;
    finish(&s, &a, json!({"exit_code": 2})).await;
    let (_, retry) = claim(&s, &id).await;
    assert_eq!(retry["retry_of"], a["id"]);
    finish(&s, &retry, json!({"exit_code": 0})).await;
    let (_, b) = claim(&s, &id).await;
    assert!(b["retry_of"].is_null());
    assert_ne!(b["params"], a["params"]);
    finish(&s, &b, json!({"exit_code": 0})).await;
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);
    let all = runs(&s, &id).await;
    let xs: Vec<&Value> = all.iter().map(|r| &r["params"]["x"]).collect();
    assert_eq!(xs, [&json!(1), &json!(1), &json!(2)]);
}

#[tokio::test]
async fn stopping_a_sweep_cancels_its_queued_retries() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nparameters: {x: {values: [1, 2]}}\n")
        .await;
    let (_, a) = claim(&s, &id).await;
    finish(&s, &a, json!({"exit_code": 1})).await;
    let (_, done) = s
        .post(
            &format!("/api/v1/sweeps/{id}/retry"),
            json!({"states": ["failed"]}),
        )
        .await;
    let queued = done["retried"][0]["retry"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(&format!("/api/v1/sweeps/{id}/stop"), json!({}))
        .await;
    let (_, run) = s.get(&format!("/api/v1/runs/{queued}?history=false")).await;
    assert_eq!(run["state"], "cancelled", "{run}");
    assert!(run["error"].as_str().unwrap().contains("`stop`"), "{run}");
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["counts"]["queued"], 0);
}

/// A run stopped because its agent was shut down (SIGTERM, Ctrl-C) comes back at the next
/// claim whatever the `retry` policy says (`retry: {max: 0}` here), so resuming the sweep runs
/// it; a run cancelled for another reason does not.
#[tokio::test]
async fn a_run_its_agent_interrupted_is_queued_again_on_the_next_claim() {
    let s = start(None).await;
    let id = s
        .sweep(
            "program: t.py\nmethod: grid\nretry: {max: 0}\nparameters: {x: {values: [1, 2, 3]}}\n",
        )
        .await;
    let (_, a) = claim(&s, &id).await;
    let (_, b) = claim(&s, &id).await;
    finish(
        &s,
        &a,
        json!({"state": "cancelled", "error": "interrupted: agent received SIGTERM"}),
    )
    .await;
    finish(
        &s,
        &b,
        json!({"state": "cancelled", "error": "stopped by hand"}),
    )
    .await;
    let (status, again) = claim(&s, &id).await;
    assert_eq!(status, 200);
    assert_eq!(again["params"], a["params"]);
    assert_eq!(again["retry_of"], a["id"]);
    assert_eq!(again["attempt"], 2);
    finish(&s, &again, json!({"exit_code": 0})).await;
    // Then the grid goes on with x=3; b (cancelled by hand) is not run again.
    let (_, c) = claim(&s, &id).await;
    assert_eq!(c["params"]["x"], 3);
    assert!(c["retry_of"].is_null());
    finish(&s, &c, json!({"exit_code": 0})).await;
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);
}

/// An interruption does not use up `retry.max`: a configuration interrupted, then crashed, is
/// retried as one crashed at its first attempt (once, by default), and a second crash is not.
#[tokio::test]
async fn an_interrupted_run_whose_retry_crashes_is_retried_again() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nparameters: {x: {values: [1, 2]}}\n")
        .await;
    let (_, first) = claim(&s, &id).await;
    finish(
        &s,
        &first,
        json!({"state": "cancelled", "error": "interrupted: agent received SIGTERM"}),
    )
    .await;
    let (_, second) = claim(&s, &id).await;
    assert_eq!(second["retry_of"], first["id"]);
    finish(
        &s,
        &second,
        json!({"state": "crashed", "error": "agent lost"}),
    )
    .await;
    let (status, third) = claim(&s, &id).await;
    assert_eq!(status, 200);
    assert_eq!(third["retry_of"], second["id"], "{third:#}");
    assert_eq!(third["attempt"], 3);
    assert_eq!(third["params"], first["params"]);
    finish(
        &s,
        &third,
        json!({"state": "crashed", "error": "agent lost"}),
    )
    .await;
    // `max: 1` is spent now: the grid goes on.
    let (_, next) = claim(&s, &id).await;
    assert!(next["retry_of"].is_null(), "{next:#}");
    assert_eq!(next["params"]["x"], 2);
}

/// Interruptions are capped per configuration, in a row: with `retry: {interrupted: 2}` the
/// second interruption of one configuration ends its run `failed` (an error that says why and
/// how to go on) and nothing is queued; that finish sent again changes nothing; a run of it
/// queued by hand starts a new count (its first interruption is queued again), and an attempt
/// that failed on its own breaks a row.
#[tokio::test]
async fn a_run_interrupted_too_often_in_a_row_ends_failed_and_is_not_queued_again() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nretry: {interrupted: 2, max: 5, on: [failed]}\nparameters: {x: {values: [1]}}\n")
        .await;
    let interrupt = json!({"state": "cancelled", "error": "interrupted: agent received SIGTERM"});
    let (_, first) = claim(&s, &id).await;
    finish(&s, &first, interrupt.clone()).await;
    let (status, second) = claim(&s, &id).await;
    assert_eq!(status, 200);
    assert_eq!(second["retry_of"], first["id"]);
    let ended = finish(&s, &second, interrupt.clone()).await;
    assert_eq!(ended["state"], "failed", "{ended:#}");
    let error = ended["error"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    assert!(
        error.starts_with("interrupted 2 times in a row (this time: agent received SIGTERM), so it is not queued again"),
        "{error}"
    );
    assert!(
        error.contains(&format!("`hyperdial retry {id} {second_id}`")),
        "{error}"
    );
    assert!(error.contains("`retry: {interrupted: N}`"), "{error}");
    // Sent again (its answer lost): the same end.
    let again = finish(&s, &second, interrupt.clone()).await;
    assert_eq!(
        (&again["state"], &again["error"]),
        (&ended["state"], &ended["error"])
    );
    // Not queued by the interruption rule, but by `retry: {on: [failed]}`, which counts only
    // the attempts not interrupted: none before this one, so 5 retries are left.
    let (status, third) = claim(&s, &id).await;
    assert_eq!(status, 200);
    assert_eq!(third["retry_of"], second["id"]);
    // A new row: one interruption is queued again, as always.
    let ended = finish(&s, &third, interrupt.clone()).await;
    assert_eq!(ended["state"], "cancelled", "{ended:#}");
    let (_, fourth) = claim(&s, &id).await;
    assert_eq!(fourth["retry_of"], third["id"]);
    let ended = finish(&s, &fourth, interrupt.clone()).await;
    assert_eq!(ended["state"], "failed", "{ended:#}");

    // With the default cap (3) and no failed retries, the sweep ends after the third.
    let id = s
        .sweep("program: t.py\nmethod: grid\nparameters: {x: {values: [1]}}\n")
        .await;
    let mut states = Vec::new();
    loop {
        let (status, run) = claim(&s, &id).await;
        if status != 200 {
            assert_eq!(status, 410, "{run}");
            break;
        }
        assert!(states.len() < 3, "queued again after {states:?}");
        let ended = finish(&s, &run, interrupt.clone()).await;
        states.push(ended["state"].as_str().unwrap().to_string());
    }
    assert_eq!(states, ["cancelled", "cancelled", "failed"]);
    assert_eq!(runs(&s, &id).await.len(), 3);
}

/// Resuming a sweep (`POST /sweeps` with `resume`, what `tune` does) queues what it owes at
/// once, so the resumed sweep's counts show the interrupted run as `queued` before any claim.
#[tokio::test]
async fn resuming_a_sweep_queues_its_interrupted_runs_at_once() {
    let s = start(None).await;
    let source = "program: t.py\nmethod: grid\nparameters: {x: {values: [1, 2]}}\n";
    let id = s.sweep(source).await;
    let (_, a) = claim(&s, &id).await;
    finish(
        &s,
        &a,
        json!({"state": "cancelled", "error": "interrupted: tune received SIGINT"}),
    )
    .await;
    let (status, resumed) = s
        .post("/api/v1/sweeps", json!({"source": source, "resume": true}))
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["id"], id.as_str());
    assert_eq!(resumed["counts"]["queued"], 1, "{resumed:#}");
    let (_, again) = claim(&s, &id).await;
    assert_eq!(again["retry_of"], a["id"]);
}
