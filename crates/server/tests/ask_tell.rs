//! Ask/tell in fewer requests, over the real API: a finish that carries the told values
//! (`FinishRequest::values`) stores them with the end, and a claim that carries a `tell` ends
//! the previous trial before it claims the next (in the same commit when the end cannot change
//! the claim); a refused tell claims nothing, and a tell whose claim is refused is stored.

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
    // In the words of an ask/tell client, which has no process of the server's to stop.
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("trial {mine} is crashed (gone)"))
            && message.contains("ask for the next trial")
            && !message.contains("process"),
        "{message}"
    );
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

/// A tell whose claim gives no new run is stored all the same: on a paused sweep (the claim
/// waits: 204) and on a grid whose last point it tells (the space is exhausted: 410).
#[tokio::test]
async fn a_tell_whose_claim_is_refused_is_stored() {
    let s = start(None).await;
    let tell = |id: &str, loss: f64| json!({"tell": {"run": id, "finish": {"exit_code": 0, "values": {"loss": loss}}}});
    let sweep = s.sweep(RANDOM).await;
    let first = claimed(&s, &sweep).await;
    let (status, _) = s
        .post(&format!("/api/v1/sweeps/{sweep}/pause"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, answer) = claim(&s, &sweep, tell(&first, 0.75)).await;
    assert_eq!(status, 204, "{answer}");
    let told = run(&s, &first).await;
    assert_eq!(
        (&told["state"], &told["metric"]),
        (&json!("finished"), &json!(0.75))
    );
    assert_eq!(run_count(&s, &sweep).await, 1);

    let grid = s
        .sweep(
            "method: grid\nmetric: {name: loss, goal: minimize}\n\
             parameters: {x: {values: [1, 2]}}\n",
        )
        .await;
    let first = claimed(&s, &grid).await;
    let (status, next) = claim(&s, &grid, tell(&first, 0.5)).await;
    assert_eq!(status, 200, "{next}");
    let second = next["run"]["id"].as_str().unwrap().to_string();
    assert_ne!(
        next["run"]["params"]["x"],
        run(&s, &first).await["params"]["x"]
    );
    let (status, over) = claim(&s, &grid, tell(&second, 0.25)).await;
    assert_eq!(status, 410, "{over}");
    for (id, loss) in [(&first, 0.5), (&second, 0.25)] {
        let told = run(&s, id).await;
        assert_eq!(
            (&told["state"], &told["metric"]),
            (&json!("finished"), &json!(loss)),
            "{id}"
        );
    }
    assert_eq!(run_count(&s, &grid).await, 2);
}

/// A tell sent again with its claim (the answer was lost): the run keeps its end and its
/// told value once, and the claim hands out a new run each time it is asked.
#[tokio::test]
async fn a_tell_sent_again_with_its_claim_is_stored_once() {
    let s = start(None).await;
    let sweep = s.sweep(RANDOM).await;
    let first = claimed(&s, &sweep).await;
    let body = json!({"tell": {"run": first, "finish": {"exit_code": 0, "values": {"loss": 0.5}}}});
    let (status, a) = claim(&s, &sweep, body.clone()).await;
    assert_eq!(status, 200, "{a}");
    let (status, b) = claim(&s, &sweep, body).await;
    assert_eq!(status, 200, "{b}");
    assert_ne!(a["run"]["id"], b["run"]["id"]);
    let told = run(&s, &first).await;
    assert_eq!(told["state"], "finished");
    assert_eq!(told["history"].as_array().unwrap().len(), 1, "{told}");
    assert_eq!(run_count(&s, &sweep).await, 3);
}
