//! What a client meets first, on a real server: history reads name the keys a run never
//! logged (`unknown_keys`); a sweep config given as a JSON object (`config`) is reported by
//! key path, and text without a file name at lines of "<sweep config text>", never at lines
//! of a file nobody wrote; a filter naming a sweep that does not exist is a `404`, not an
//! empty list.

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
    // The errors come first, then the warnings (this config has no `program`).
    let warning = error.find(": warning: ").expect("a warning");
    assert!(warning > error.rfind(": error: ").unwrap(), "{error}");
    let (_, yaml) = s
        .post(
            "/api/v1/sweeps",
            json!({"source": "method: random\nparameters:\n  lr: {min: 2.0, max: 1.0}\n"}),
        )
        .await;
    let text = yaml["error"].as_str().unwrap();
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(first.contains(": error: "), "{text}");
    assert!(text.contains(": warning: "), "{text}");
    assert_eq!(yaml["diagnostics"][0]["severity"], "error", "{yaml}");
    let diagnostics = body["diagnostics"].as_array().unwrap();
    assert!(!diagnostics.is_empty());
    for d in diagnostics {
        assert!(d["location"].is_null(), "{d}");
    }
    // The same mistake as text keeps its line and column, in the file the request names, or
    // in "<sweep config text>" when it names none (never a made-up `sweep.yaml`).
    let bad = "method: random\nparameters:\n  lr: {min: x, max: 1.0}\n";
    for (file, named) in [
        (None, "<sweep config text>:3:"),
        (Some(""), "<sweep config text>:3:"),
        (Some("conf/mnist.yaml"), "conf/mnist.yaml:3:"),
    ] {
        let mut request = json!({ "source": bad });
        if let Some(file) = file {
            request["file"] = json!(file);
        }
        let (status, body) = s.post("/api/v1/sweeps", request).await;
        assert_eq!(status, 422, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(named), "{file:?}: {error}");
        assert!(!error.contains("sweep.yaml"), "{file:?}: {error}");
        let errors: Vec<&serde_json::Value> = body["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["severity"] == "error")
            .collect();
        assert_eq!(errors[0]["location"]["line"], 3, "{body}");
    }
    // Kept with the sweep only when there is one: a sweep made from text has no `file`.
    let text = "method: random\nparameters:\n  lr: {min: 0.0, max: 1.0}\n";
    let (status, made) = s.post("/api/v1/sweeps", json!({ "source": text })).await;
    assert_eq!(status, 201, "{made}");
    assert!(made["file"].is_null(), "{made}");
    let (_, made) = s
        .post(
            "/api/v1/sweeps",
            json!({ "source": text, "file": "s.yaml" }),
        )
        .await;
    assert_eq!(made["file"], "s.yaml", "{made}");

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

#[tokio::test]
async fn a_filter_naming_an_unknown_sweep_is_a_404_saying_how_to_list_them() {
    let s = start(None).await;
    let id = s
        .sweep("method: random\nparameters:\n  lr: {min: 0.0, max: 1.0}\n")
        .await;
    // A sweep without runs yet answers an empty page, as before.
    let (status, body) = s.get(&format!("/api/v1/runs?sweep={id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 0, "{body}");
    for path in [
        "/api/v1/runs?sweep=nosuchsweep",
        "/api/v1/runs?sweep=nosuchsweep&state=finished&limit=5",
        // Longer than one page: the streamed listing checks first as well.
        "/api/v1/runs?sweep=nosuchsweep&limit=100000",
        "/api/v1/events?sweep=nosuchsweep",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("`nosuchsweep`"), "{path}: {error}");
        assert!(error.contains("`sweep`"), "{path}: {error}");
        assert!(error.contains("GET /api/v1/sweeps"), "{path}: {error}");
        assert!(error.contains("hyperdial sweeps"), "{path}: {error}");
    }
    // An empty id is a value the parameter does not take.
    for path in ["/api/v1/runs?sweep=", "/api/v1/events?sweep="] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("a sweep id"),
            "{path}: {body}"
        );
    }
    // The events of a sweep that exists still stream (the first event says which sweep).
    let mut r = s
        .http
        .get(format!("{}/api/v1/events?sweep={id}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(
        first.contains("event: hello") && first.contains(&id),
        "{first}"
    );
}
