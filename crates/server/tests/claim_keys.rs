//! Idempotent claims over the real API: a claim sent again with its `claim_key` (its answer
//! was lost after the server stored the run) gets the run it claimed, not a second one; so
//! does a claim that told a trial, whose tell is stored once; a different key is a new claim;
//! once the key's run has ended the key claims nothing (`204` at once); a bad key is a `400`
//! naming the field, before anything is applied.

mod common;

use common::start;
use serde_json::{json, Value};

const RANDOM: &str = "method: random\nmetric: {name: loss, goal: minimize}\n\
                      parameters: {x: {min: 0.0, max: 1.0}}\n";

async fn claim(s: &common::Server, sweep: &str, body: Value) -> (u16, Value) {
    s.post(&format!("/api/v1/sweeps/{sweep}/claim"), body).await
}

/// A claim with `body` that must hand out a run: the run.
async fn claimed(s: &common::Server, sweep: &str, body: Value) -> Value {
    let (status, answer) = claim(s, sweep, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["run"].clone()
}

async fn run(s: &common::Server, id: &Value) -> Value {
    let (status, body) = s
        .get(&format!("/api/v1/runs/{}", id.as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn runs(s: &common::Server, sweep: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("/api/v1/runs?sweep={sweep}")).await;
    assert_eq!(status, 200, "{body}");
    body["runs"].as_array().unwrap().clone()
}

/// What a client sees of a handed-out run: the same for a claim and its answer sent again.
fn seen(run: &Value) -> (Value, Value, Value, Value) {
    (
        run["id"].clone(),
        run["number"].clone(),
        run["params"].clone(),
        run["state"].clone(),
    )
}

#[tokio::test]
async fn a_claim_sent_again_with_its_key_gets_the_same_run_and_takes_one_slot() {
    let s = start(None).await;
    let sweep = s
        .sweep(
            "method: grid\nrun_cap: 2\nmetric: {name: loss, goal: minimize}\n\
             parameters: {x: {values: [1, 2, 3, 4]}}\n",
        )
        .await;
    let body = json!({"claim_key": "k-1"});
    let first = claimed(&s, &sweep, body.clone()).await;
    // The answer was lost: the same request again answers the same run, twice.
    for _ in 0..2 {
        let again = claimed(&s, &sweep, body.clone()).await;
        assert_eq!(seen(&again), seen(&first));
    }
    assert_eq!(runs(&s, &sweep).await.len(), 1);
    // A different key is a new claim, the next grid point; the orphan the lost answer would
    // have left does not hold the cap's second slot.
    let second = claimed(&s, &sweep, json!({"claim_key": "k-2"})).await;
    assert_ne!(second["id"], first["id"]);
    assert_eq!(second["number"], 2);
    assert_ne!(second["params"], first["params"]);
    let (status, none) = claim(&s, &sweep, json!({"claim_key": "k-3"})).await;
    assert_eq!(status, 204, "run_cap reached with runs in flight: {none}");
    assert_eq!(runs(&s, &sweep).await.len(), 2);
    // Both attempts of one claim at once (a retry racing its first attempt): one run.
    let sweep = s.sweep(RANDOM).await;
    let body = json!({"claim_key": "race"});
    let (a, b) = tokio::join!(
        claimed(&s, &sweep, body.clone()),
        claimed(&s, &sweep, body.clone())
    );
    assert_eq!(seen(&a), seen(&b));
    assert_eq!(runs(&s, &sweep).await.len(), 1);
    // Keys are per sweep: the same key in another sweep is another claim.
    let elsewhere = claimed(&s, &sweep, json!({"claim_key": "k-1"})).await;
    assert_ne!(elsewhere["id"], first["id"]);
    // Without a key, every claim is new.
    claimed(&s, &sweep, json!({})).await;
    claimed(&s, &sweep, json!({})).await;
    assert_eq!(runs(&s, &sweep).await.len(), 4);
}

/// A claim with a tell, sent again: the tell is stored once and the claim answers the same
/// next run, both when the end and the claim are one commit (`random`) and when they are two
/// (a sweep with `metric.target`, whose told value could end it).
#[tokio::test]
async fn a_tell_and_ask_sent_again_tells_once_and_gets_the_same_next_run() {
    let s = start(None).await;
    let target = "method: random\nmetric: {name: loss, goal: minimize, target: 0.001}\n\
                  parameters: {x: {min: 0.0, max: 1.0}}\n";
    for source in [RANDOM, target] {
        let sweep = s.sweep(source).await;
        let told = claimed(&s, &sweep, json!({"claim_key": "ask-1"})).await;
        let body = json!({
            "claim_key": "ask-2",
            "tell": {"run": told["id"], "finish": {"exit_code": 0, "values": {"loss": 0.5}}},
        });
        let next = claimed(&s, &sweep, body.clone()).await;
        let again = claimed(&s, &sweep, body).await;
        assert_eq!(seen(&again), seen(&next), "{source}");
        let told = run(&s, &told["id"]).await;
        assert_eq!(told["state"], "finished");
        assert_eq!(told["metric"], 0.5);
        assert_eq!(told["history"].as_array().unwrap().len(), 1, "{told}");
        assert_eq!(runs(&s, &sweep).await.len(), 2, "{source}");
    }
}

#[tokio::test]
async fn the_key_of_a_run_that_ended_claims_nothing_and_a_new_key_claims_again() {
    let s = start(None).await;
    let sweep = s.sweep(RANDOM).await;
    let first = claimed(&s, &sweep, json!({"claim_key": "k1"})).await;
    let id = first["id"].as_str().unwrap();
    let (status, ended) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"exit_code": 0, "values": {"loss": 0.1}}),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    // Sent again after its run ended: nothing is claimed, and the claim is not held open
    // (a 204 after a wait carries the header that says so).
    let r = s
        .http
        .post(format!("{}/api/v1/sweeps/{sweep}/claim", s.base))
        .json(&json!({"claim_key": "k1", "wait_ms": 30000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(!r.headers().contains_key("x-hyperdial-waited-ms"));
    assert_eq!(runs(&s, &sweep).await.len(), 1);
    let next = claimed(&s, &sweep, json!({"claim_key": "k2"})).await;
    assert_ne!(next["id"], first["id"]);
    assert_eq!(runs(&s, &sweep).await.len(), 2);
}

/// A queued run (a crashed run's retry) handed out with a key is answered again for the key.
#[tokio::test]
async fn a_queued_run_handed_out_with_a_key_is_the_answer_for_that_key() {
    let s = start(None).await;
    let sweep = s.sweep(RANDOM).await;
    let crashed = claimed(&s, &sweep, json!({"claim_key": "a"})).await;
    let id = crashed["id"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"state": "crashed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let retry = claimed(&s, &sweep, json!({"claim_key": "b"})).await;
    assert_eq!(retry["retry_of"], crashed["id"]);
    let again = claimed(&s, &sweep, json!({"claim_key": "b"})).await;
    assert_eq!(seen(&again), seen(&retry));
    assert_eq!(runs(&s, &sweep).await.len(), 2);
}

#[tokio::test]
async fn a_bad_key_is_refused_naming_the_field_before_the_tell_is_applied() {
    let s = start(None).await;
    let sweep = s.sweep(RANDOM).await;
    let open = claimed(&s, &sweep, json!({})).await;
    let long = "k".repeat(65);
    for key in [
        json!(""),
        json!(long),
        json!("a b"),
        json!("key/1"),
        json!("ключ"),
    ] {
        let body = json!({
            "claim_key": key,
            "tell": {"run": open["id"], "finish": {"exit_code": 0, "values": {"loss": 0.5}}},
        });
        let (status, answer) = claim(&s, &sweep, body).await;
        assert_eq!(status, 400, "{key}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.starts_with("claim_key "), "{message}");
    }
    let (status, answer) = claim(&s, &sweep, json!({"claim_key": 7})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(run(&s, &open["id"]).await["state"], "running");
    assert_eq!(runs(&s, &sweep).await.len(), 1);
    // The longest key there may be, of every allowed character.
    let key = format!("{}-_.:", "aZ09".repeat(15));
    assert_eq!(key.len(), 64);
    claimed(&s, &sweep, json!({"claim_key": key})).await;
}
