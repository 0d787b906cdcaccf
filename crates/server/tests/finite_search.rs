//! `bayes` and `tpe` over a finite space, through the controller: each configuration runs
//! once, and the claim after the last one ends the sweep as a grid's does.

use std::collections::HashSet;

use serde_json::{json, Value};

mod common;

use common::*;

/// 4 ordered batch sizes × 3 activations: 12 configurations.
fn source(method: &str) -> String {
    format!(
        "program: t.py\nmethod: {method}\nmetric: {{name: loss, goal: minimize}}\nparameters:\n  batch: {{values: [16, 32, 64, 128]}}\n  act: {{values: [relu, tanh, gelu]}}\n"
    )
}

/// A deterministic metric, best at batch 32 with relu.
fn loss(params: &Value) -> f64 {
    let b = params["batch"].as_f64().unwrap().log2();
    let a = match params["act"].as_str().unwrap() {
        "relu" => 0.0,
        "tanh" => 0.3,
        _ => 0.1,
    };
    (b - 5.0).powi(2) + a
}

async fn twelve_then_end(method: &str) {
    let s = start(None).await;
    let id = s.sweep(&source(method)).await;
    let mut seen = HashSet::new();
    for n in 1..=12 {
        let (st, claim) = s
            .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
            .await;
        assert_eq!(st, 200, "{method}: claim {n}: {claim}");
        let run = &claim["run"];
        let params = &run["params"];
        assert!(
            seen.insert(params.to_string()),
            "{method}: run {n} repeats {params}"
        );
        assert!(params["batch"].is_u64(), "{params}");
        let rid = run["id"].as_str().unwrap();
        let (st, ack) = s
            .post(
                &format!("/api/v1/runs/{rid}/metrics"),
                json!({"points": [{"values": {"loss": loss(params)}}]}),
            )
            .await;
        assert_eq!(st, 200, "{ack}");
        let (st, fin) = s
            .post(
                &format!("/api/v1/runs/{rid}/finish"),
                json!({"exit_code": 0}),
            )
            .await;
        assert_eq!(st, 200, "{fin}");
    }
    assert_eq!(seen.len(), 12);
    let (st, over) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    assert_eq!(st, 410, "{method}: the 13th claim: {over}");
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["state"], "finished", "{sweep}");
    assert_eq!(sweep["counts"]["finished"], 12);
}

#[tokio::test]
async fn bayes_runs_a_twelve_point_space_once_then_ends() {
    twelve_then_end("bayes").await;
}

#[tokio::test]
async fn tpe_runs_a_twelve_point_space_once_then_ends() {
    twelve_then_end("tpe").await;
}
