//! The run metric over HTTP: a summary value under the sweep metric's name is the run's
//! metric when nothing better was logged, makes the sweep's best run, and reaching
//! `metric.target` with it finishes the sweep.

mod common;

use serde_json::json;

#[tokio::test]
async fn a_summary_value_is_the_metric_and_can_reach_the_target() {
    let server = common::start(None).await;
    let sweep = server
        .sweep("method: random\nmetric: {name: best_acc, goal: maximize, target: 0.95}\nparameters: {a: {min: 0.0, max: 1.0}}\n")
        .await;
    let claim = |sweep: String| {
        let server = &server;
        async move {
            let (status, body) = server
                .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
                .await;
            assert_eq!(status, 200, "{body}");
            body["run"]["id"].as_str().unwrap().to_string()
        }
    };
    let a = claim(sweep.clone()).await;
    let b = claim(sweep.clone()).await;
    // a logs 0.5 then reports 0.9 in its summary; b logs 0.7 only.
    server
        .post(
            &format!("/api/v1/runs/{a}/metrics"),
            json!({"points": [{"values": {"best_acc": 0.5}}]}),
        )
        .await;
    server
        .post(
            &format!("/api/v1/runs/{b}/metrics"),
            json!({"points": [{"values": {"best_acc": 0.7}}]}),
        )
        .await;
    let (status, _) = server
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{a}/summary"),
            json!({"best_acc": 0.9}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, run) = server.get(&format!("/api/v1/runs/{a}?history=false")).await;
    assert_eq!(run["metric"], json!(0.9));
    // The best run is among the runs that ended (docs/config.md): none yet, then `a`.
    let (_, s) = server.get(&format!("/api/v1/sweeps/{sweep}")).await;
    assert_eq!(s["best"], json!(null), "{s}");
    assert_eq!(s["state"], "running");
    let (status, _) = server
        .post(&format!("/api/v1/runs/{a}/finish"), json!({"exit_code": 0}))
        .await;
    assert_eq!(status, 200);
    let (_, s) = server.get(&format!("/api/v1/sweeps/{sweep}")).await;
    assert_eq!(s["best"]["run"], json!(a), "{s}");
    // A summary value reaching the target finishes the sweep, as a logged one does.
    server
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{b}/summary"),
            json!({"best_acc": 0.96}),
        )
        .await;
    let (_, s) = server.get(&format!("/api/v1/sweeps/{sweep}")).await;
    assert_eq!(s["state"], "finished", "{s}");
    let (status, _) = server
        .post(&format!("/api/v1/runs/{b}/finish"), json!({"exit_code": 0}))
        .await;
    assert_eq!(status, 200);
    let (_, s) = server.get(&format!("/api/v1/sweeps/{sweep}")).await;
    assert_eq!(s["best"]["run"], json!(b), "{s}");
    // An unknown run is a 404, not an error.
    let (status, _) = server
        .send(
            reqwest::Method::PUT,
            "/api/v1/runs/nope/summary",
            json!({"best_acc": 1.0}),
        )
        .await;
    assert_eq!(status, 404);
}
