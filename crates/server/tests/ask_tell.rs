//! Ask/tell in fewer requests, over the real API: a finish that carries the told values
//! (`FinishRequest::values`) stores them with the end, and a claim that carries a `tell` ends
//! the previous trial before it claims the next; a refused tell claims nothing.

mod common;

use common::start;
use serde_json::{json, Value};

const RANDOM: &str = "method: random\nmetric: {name: loss, goal: minimize}\n\
                      parameters: {x: {min: 0.0, max: 1.0}}\n";

async fn claim(s: &common::Server, sweep: &str, body: Value) -> (u16, Value) {
    s.post(&format!("/api/v1/sweeps/{sweep}/claim"), body).await
}

async fn claimed(s: &common::Server, sweep: &str) -> String {
    let (status, body) = claim(s, sweep, json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["run"]["id"].as_str().unwrap().to_string()
}

async fn run(s: &common::Server, id: &str) -> Value {
    let (status, body) = s.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn run_count(s: &common::Server, sweep: &str) -> usize {
    let (status, body) = s.get(&format!("/api/v1/runs?sweep={sweep}")).await;
    assert_eq!(status, 200, "{body}");
    body["runs"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_finish_with_values_stores_them_with_the_end_once() {
    let s = start(None).await;
    let sweep = s.sweep(RANDOM).await;
    let id = claimed(&s, &sweep).await;
    let finish = json!({"exit_code": 0, "values": {"loss": 0.25, "acc": 0.75}});
    let (status, ended) = s
        .post(&format!("/api/v1/runs/{id}/finish"), finish.clone())
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["state"], "finished");
    assert_eq!(ended["metric"], 0.25);
    assert_eq!(ended["summary"]["acc"], 0.75);
    // Sent again (its answer was lost): the same end, and the values are not stored twice.
    let (status, again) = s.post(&format!("/api/v1/runs/{id}/finish"), finish).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["state"], "finished");
    let history = run(&s, &id).await["history"].clone();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["step"], 0);
    assert_eq!(history[0]["values"]["loss"], 0.25);
}

#[tokio::test]
async fn a_told_nan_fails_the_run_and_bad_values_are_refused() {
    let s = start(None).await;
    let sweep = s.sweep(RANDOM).await;
    let id = claimed(&s, &sweep).await;
    let (status, answer) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"values": {"loss": "low"}}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("values.loss"),
        "{answer}"
    );
    assert_eq!(run(&s, &id).await["state"], "running");
    let (status, ended) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"exit_code": 0, "values": {"loss": null}}),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["state"], "failed");
    assert!(ended["error"].as_str().unwrap().contains("NaN"), "{ended}");
}

#[tokio::test]
async fn a_claim_with_a_tell_ends_the_last_trial_then_hands_out_the_next() {
    let s = start(None).await;
    let sweep = s.sweep(&format!("{RANDOM}run_cap: 2\n")).await;
    let first = claimed(&s, &sweep).await;
    let tell = |id: &str, loss: f64| json!({"tell": {"run": id, "finish": {"exit_code": 0, "values": {"loss": loss}}}});
    let (status, next) = claim(&s, &sweep, tell(&first, 0.5)).await;
    assert_eq!(status, 200, "{next}");
    let second = next["run"]["id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(next["run"]["number"], 2);
    let told = run(&s, &first).await;
    assert_eq!(
        (&told["state"], &told["metric"]),
        (&json!("finished"), &json!(0.5))
    );
    // At run_cap the tell is still applied, and the answer says the sweep is over.
    let (status, over) = claim(&s, &sweep, tell(&second, 0.125)).await;
    assert_eq!(status, 410, "{over}");
    assert_eq!(over["state"], "finished");
    let told = run(&s, &second).await;
    assert_eq!(
        (&told["state"], &told["metric"]),
        (&json!("finished"), &json!(0.125))
    );
    let (_, best) = s.get(&format!("/api/v1/sweeps/{sweep}/best")).await;
    assert_eq!(best["run"]["id"], second.as_str(), "{best}");
}

#[tokio::test]
async fn a_refused_tell_claims_nothing() {
    let s = start(None).await;
    let sweep = s.sweep(RANDOM).await;
    let other = s.sweep(RANDOM).await;
    let foreign = claimed(&s, &other).await;
    let mine = claimed(&s, &sweep).await;
    // A run of another sweep: 400, that run is untouched and nothing is claimed here.
    let (status, answer) = claim(
        &s,
        &sweep,
        json!({"tell": {"run": foreign, "finish": {"values": {"loss": 1.0}}}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains(&foreign),
        "{answer}"
    );
    assert_eq!(run(&s, &foreign).await["state"], "running");
    // An unknown run: 404. Values that are not numbers: 400.
    let (status, answer) = claim(&s, &sweep, json!({"tell": {"run": "r_nope"}})).await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = claim(
        &s,
        &sweep,
        json!({"tell": {"run": mine, "finish": {"values": {"loss": [1]}}}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(run(&s, &mine).await["state"], "running");
    assert_eq!(run_count(&s, &sweep).await, 1);
    // A crashed run: 409 `run_crashed`, and still nothing claimed.
    let (status, _) = s
        .post(
            &format!("/api/v1/runs/{mine}/finish"),
            json!({"state": "crashed", "error": "gone"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = claim(
        &s,
        &sweep,
        json!({"tell": {"run": mine, "finish": {"values": {"loss": 0.1}}}}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "run_crashed", "{answer}");
    assert_eq!(run_count(&s, &sweep).await, 1);
    assert!(run(&s, &mine).await["metric"].is_null());
}

#[tokio::test]
async fn a_told_value_that_reaches_the_target_ends_the_sweep() {
    let s = start(None).await;
    let sweep = s
        .sweep(
            "method: random\nmetric: {name: loss, goal: minimize, target: 0.1}\n\
                parameters: {x: {min: 0.0, max: 1.0}}\n",
        )
        .await;
    let id = claimed(&s, &sweep).await;
    let (status, over) = claim(
        &s,
        &sweep,
        json!({"tell": {"run": id, "finish": {"values": {"loss": 0.05}}}}),
    )
    .await;
    assert_eq!(status, 410, "{over}");
    assert_eq!(over["state"], "finished");
}
