//! What a client meets first, on a real server: history reads name the keys a run never
//! logged (`unknown_keys`), and a sweep config given as a JSON object (`config`) is reported
//! by key path, never at lines of a file nobody wrote.

mod common;

use common::start;
use serde_json::json;

#[tokio::test]
async fn history_answers_name_the_keys_the_run_never_logged() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({})).await;
    let id = run["id"].as_str().unwrap().to_string();
    let (status, body) = s
        .post(
            &format!("/api/v1/runs/{id}/metrics"),
            json!({"points": [{"step": 0, "values": {"loss": 1.0, "acc": 0.5}}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for form in ["history", "history/columns", "history/packed"] {
        let (status, body) = s
            .get(&format!("/api/v1/runs/{id}/{form}?keys=los,loss,nope"))
            .await;
        assert_eq!(status, 200, "{form}: {body}");
        assert_eq!(
            body["unknown_keys"],
            json!(["los", "nope"]),
            "{form}: {body}"
        );
        let (_, body) = s.get(&format!("/api/v1/runs/{id}/{form}?keys=loss")).await;
        assert_eq!(body["unknown_keys"], json!([]), "{form}: {body}");
        let (_, body) = s.get(&format!("/api/v1/runs/{id}/{form}")).await;
        assert_eq!(body["unknown_keys"], json!([]), "{form}: {body}");
    }
    // Only unknown keys: no steps, as for any key without points, and the answer says why.
    let (_, body) = s
        .get(&format!("/api/v1/runs/{id}/history/columns?keys=nope"))
        .await;
    assert_eq!(body["steps"], json!([]));
    assert_eq!(body["unknown_keys"], json!(["nope"]));
}

#[tokio::test]
async fn a_config_object_is_reported_by_key_path() {
    let s = start(None).await;
    let config = json!({
        "method": "random",
        "metric": {"name": "loss"},
        "parameters": {"lr": {"min": "x", "max": 1.0}, "b": {"valuess": [1, 2]}},
    });
    let (status, body) = s.post("/api/v1/sweeps", json!({ "config": config })).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("parameters.lr.min: error: expected a number"),
        "{error}"
    );
    assert!(error.contains("parameters.b.valuess: error:"), "{error}");
    assert!(error.contains("2 errors in the `config` object"), "{error}");
    assert!(!error.contains("sweep.yaml"), "{error}");
    let diagnostics = body["diagnostics"].as_array().unwrap();
    assert!(!diagnostics.is_empty());
    for d in diagnostics {
        assert!(d["location"].is_null(), "{d}");
    }
    // The same mistake as text keeps its file, line and column.
    let (status, body) = s
        .post(
            "/api/v1/sweeps",
            json!({"source": "method: random\nparameters:\n  lr: {min: x, max: 1.0}\n"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("sweep.yaml:3:"),
        "{body}"
    );

    // A good object makes a sweep, kept as indented JSON, and resumes as any other.
    let good = json!({"method": "random", "metric": {"name": "loss"},
                      "parameters": {"x": {"min": 0.0, "max": 1.0}}});
    let (status, made) = s
        .post("/api/v1/sweeps", json!({ "config": good, "project": "p" }))
        .await;
    assert_eq!(status, 201, "{made}");
    let source: serde_json::Value = serde_json::from_str(made["source"].as_str().unwrap()).unwrap();
    assert_eq!(source, good);
    let (status, again) = s
        .post(
            "/api/v1/sweeps",
            json!({ "config": good, "project": "p", "resume": true }),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], made["id"]);

    // Both, or neither: a 400 that says what to send.
    for body in [
        json!({"source": "method: random", "config": good}),
        json!({}),
    ] {
        let (status, answer) = s.post("/api/v1/sweeps", body).await;
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("`source`") && error.contains("`config`"),
            "{error}"
        );
    }
}
