//! The dashboard's API: points, importance, history downsampling, runs paging/sorting/
//! filtering, notes, live events, and the embedded single-page app.

use std::time::Duration;

use serde_json::{json, Value};

mod common;

use common::*;

impl Server {
    /// Claim a run, log `loss` over `steps` steps ending at `final_loss`, finish it.
    async fn run(&self, sweep: &str, steps: usize, loss: impl Fn(&Value) -> f64) -> Value {
        let (st, claim) = self
            .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
            .await;
        assert_eq!(st, 200, "{claim}");
        let run = claim["run"].clone();
        let id = run["id"].as_str().unwrap();
        let final_loss = loss(&run["params"]);
        let points: Vec<Value> = (0..steps)
            .map(|s| {
                let f = final_loss + 1.0 / (s as f64 + 1.0);
                json!({"step": s, "values": {"loss": f, "acc": 1.0 - f}})
            })
            .collect();
        let (st, _) = self
            .post(
                &format!("/api/v1/runs/{id}/metrics"),
                json!({ "points": points }),
            )
            .await;
        assert_eq!(st, 200);
        let (st, done) = self
            .post(
                &format!("/api/v1/runs/{id}/finish"),
                json!({"exit_code": 0}),
            )
            .await;
        assert_eq!(st, 200, "{done}");
        done
    }
}

const SWEEP: &str = "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}\n  opt: {values: [adam, sgd]}\n  noise: {min: 0.0, max: 1.0}\n  fixed: {value: 3}\n";

fn loss_of(p: &Value) -> f64 {
    let lr = p["lr"].as_f64().unwrap();
    let sgd = if p["opt"] == "sgd" { 0.8 } else { 0.0 };
    (lr.log10() + 2.5).abs() + sgd + 0.01 * p["noise"].as_f64().unwrap()
}

#[tokio::test]
async fn points_are_columnar_with_axes() {
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    for _ in 0..3 {
        s.run(&id, 3, loss_of).await;
    }
    let (st, p) = s.get(&format!("/api/v1/sweeps/{id}/points")).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["count"], 3);
    let axes = p["axes"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = axes
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![("lr", "log"), ("opt", "category"), ("noise", "linear")],
        "constants are not axes"
    );
    assert_eq!(axes[1]["values"], json!(["adam", "sgd"]));
    assert_eq!(p["runs"]["id"].as_array().unwrap().len(), 3);
    assert_eq!(p["runs"]["params"]["lr"].as_array().unwrap().len(), 3);
    assert!(p["runs"]["metric"][0].is_f64());
    assert!(p["runs"]["finished_ms"][0].is_i64());
    assert_eq!(p["metric"]["name"], "loss");
    let (st, _) = s.get("/api/v1/sweeps/nope/points").await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn numeric_values_lists_are_drawn_on_number_axes_as_the_search_orders_them() {
    // As the search encodes them: a geometric list on a log axis, another list of three or
    // more numbers on a linear one (both with the list's bounds and values), a list of two
    // numbers or of strings on a category axis.
    let s = start(None).await;
    let id = s
        .sweep(
            "program: t.py\nmethod: random\nmetric: {name: loss}\nparameters:\n  \
             batch: {values: [16, 32, 64, 128]}\n  layers: {values: [1, 2, 3, 4]}\n  \
             two: {values: [0.1, 0.2]}\n  act: {values: [relu, tanh, gelu]}\n",
        )
        .await;
    let (st, p) = s.get(&format!("/api/v1/sweeps/{id}/points")).await;
    assert_eq!(st, 200, "{p}");
    let axis = |name: &str| {
        p["axes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    let batch = axis("batch");
    assert_eq!(batch["kind"], "log", "{batch}");
    assert_eq!(
        (batch["min"].as_f64(), batch["max"].as_f64()),
        (Some(16.0), Some(128.0))
    );
    assert_eq!(batch["values"], json!([16, 32, 64, 128]));
    let layers = axis("layers");
    assert_eq!(layers["kind"], "linear", "{layers}");
    assert_eq!(
        (layers["min"].as_f64(), layers["max"].as_f64()),
        (Some(1.0), Some(4.0))
    );
    assert_eq!(axis("two")["kind"], "category");
    assert_eq!(axis("act")["kind"], "category");
}

#[tokio::test]
async fn importance_ranks_what_matters_and_is_cached() {
    let s = start(None).await;
    let (st, created) = s
        .post("/api/v1/sweeps", json!({ "source": SWEEP, "seed": 7 }))
        .await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (st, imp) = s.get(&format!("/api/v1/sweeps/{id}/importance")).await;
    assert_eq!(st, 200, "{imp}");
    assert_eq!(imp["runs"], 0);
    assert_eq!(imp["evidence"], "too_few_runs");
    assert_eq!(imp["states"], json!(["finished"]));
    for _ in 0..60 {
        s.run(&id, 2, loss_of).await;
    }
    let (st, imp) = s.get(&format!("/api/v1/sweeps/{id}/importance")).await;
    assert_eq!(st, 200, "{imp}");
    assert_eq!(imp["runs"], 60);
    assert_eq!(imp["cached"], false);
    assert_eq!(imp["evidence"], "enough", "{imp}");
    let params = imp["params"].as_array().unwrap();
    assert_eq!(params.len(), 3);
    // lr and opt drive the metric; noise barely moves it.
    assert_eq!(params[2]["name"], "noise", "{imp}");
    assert!(params[2]["importance"].as_f64().unwrap() < 0.1, "{imp}");
    assert!(imp["oob_r2"].as_f64().unwrap() > 0.5, "{imp}");
    let total: f64 = params
        .iter()
        .map(|p| p["importance"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-6);
    let opt = params.iter().find(|p| p["name"] == "opt").unwrap();
    assert_eq!(opt["kind"], "category");
    assert!(opt["pearson"].is_null(), "categories have no correlation");
    let lr = params.iter().find(|p| p["name"] == "lr").unwrap();
    assert_eq!(lr["kind"], "log");
    assert!(lr["spearman"].is_f64());
    // lr's effect is a V around 10^-2.5: its main effect is large, noise's small.
    assert!(lr["main_effect"].as_f64().unwrap() > 0.3, "{imp}");
    assert!(params[2]["main_effect"].as_f64().unwrap() < 0.05, "{imp}");
    assert!(lr["importance_sd"].as_f64().unwrap() >= 0.0);
    // Unchanged runs: served from the cache; a new finished run invalidates it.
    let (_, again) = s.get(&format!("/api/v1/sweeps/{id}/importance")).await;
    assert_eq!(again["cached"], true);
    s.run(&id, 2, loss_of).await;
    let (_, fresh) = s.get(&format!("/api/v1/sweeps/{id}/importance")).await;
    assert_eq!(fresh["cached"], false);
    assert_eq!(fresh["runs"], 61);
}

/// A numeric `values` list the search treats as ordered values is a number for importance too
/// (log10 when geometric), with correlations; a list of words stays a category.
#[tokio::test]
async fn importance_sees_numeric_lists_as_the_search_does() {
    let s = start(None).await;
    let id = s
        .sweep(
            "program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\nparameters:\n  \
             bs: {values: [16, 32, 64, 128]}\n  depth: {values: [1, 2, 3, 4]}\n  \
             act: {values: [relu, tanh, gelu]}\n",
        )
        .await;
    for _ in 0..12 {
        s.run(&id, 2, |p| p["bs"].as_f64().unwrap().log2()).await;
    }
    let (st, imp) = s.get(&format!("/api/v1/sweeps/{id}/importance")).await;
    assert_eq!(st, 200, "{imp}");
    let kind = |name: &str| {
        imp["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {imp}"))
            .clone()
    };
    assert_eq!(kind("bs")["kind"], "log", "{imp}");
    // The metric rises with bs and nothing else: a rank correlation of 1 (ties share ranks).
    assert!(kind("bs")["spearman"].as_f64().unwrap() > 0.99, "{imp}");
    assert_eq!(kind("depth")["kind"], "linear", "{imp}");
    assert_eq!(kind("act")["kind"], "category", "{imp}");
    assert!(kind("act")["pearson"].is_null(), "{imp}");
}

/// `state=` picks the runs importance learns from: finished ones by default, others on request;
/// an unknown or in-flight state is a 400.
#[tokio::test]
async fn importance_uses_the_asked_run_states() {
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    for _ in 0..12 {
        s.run(&id, 2, loss_of).await;
    }
    // Two runs end early with a metric: counted only when asked for.
    for _ in 0..2 {
        let (_, claim) = s
            .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
            .await;
        let rid = claim["run"]["id"].as_str().unwrap().to_string();
        let (st, _) = s
            .post(
                &format!("/api/v1/runs/{rid}/metrics"),
                json!({"points": [{"step": 0, "values": {"loss": 9.0}}]}),
            )
            .await;
        assert_eq!(st, 200);
        let (st, done) = s
            .post(
                &format!("/api/v1/runs/{rid}/finish"),
                json!({"exit_code": 1}),
            )
            .await;
        assert_eq!(st, 200, "{done}");
    }
    let (_, fin) = s.get(&format!("/api/v1/sweeps/{id}/importance")).await;
    assert_eq!(fin["runs"], 12, "{fin}");
    let (st, failed) = s
        .get(&format!(
            "/api/v1/sweeps/{id}/importance?state=failed,crashed"
        ))
        .await;
    assert_eq!(st, 200, "{failed}");
    assert_eq!(failed["runs"], 2, "{failed}");
    assert_eq!(failed["states"], json!(["failed", "crashed"]));
    assert_eq!(failed["evidence"], "too_few_runs");
    assert!(failed["params"][0]["importance"].is_null());
    let (st, both) = s
        .get(&format!(
            "/api/v1/sweeps/{id}/importance?state=finished,failed"
        ))
        .await;
    assert_eq!(st, 200);
    assert_eq!(both["runs"], 14);
    for bad in ["running", "nope"] {
        let (st, err) = s
            .get(&format!("/api/v1/sweeps/{id}/importance?state={bad}"))
            .await;
        assert_eq!(st, 400, "{err}");
    }
}

#[tokio::test]
async fn history_is_downsampled_and_keyed() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({"config": {"x": 1}})).await;
    let id = run["id"].as_str().unwrap();
    let points: Vec<Value> = (0..5000)
        .map(|i| json!({"step": i, "values": {"loss": (i as f64 * 0.01).sin(), "acc": i}}))
        .collect();
    let (st, _) = s
        .post(
            &format!("/api/v1/runs/{id}/metrics"),
            json!({ "points": points }),
        )
        .await;
    assert_eq!(st, 200);
    let (st, h) = s
        .get(&format!(
            "/api/v1/runs/{id}/history?keys=loss&max_points=200"
        ))
        .await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["keys"], json!(["acc", "loss"]));
    let loss = &h["series"]["loss"];
    assert_eq!(loss["total"], 5000);
    assert_eq!(loss["downsampled"], true);
    assert_eq!(loss["step"].as_array().unwrap().len(), 200);
    assert_eq!(loss["step"][0], 0);
    assert_eq!(loss["step"][199], 4999);
    assert!(h["series"].get("acc").is_none());
    // All keys, not downsampled when small enough.
    let (_, all) = s
        .get(&format!("/api/v1/runs/{id}/history?max_points=100000"))
        .await;
    assert_eq!(all["series"]["acc"]["step"].as_array().unwrap().len(), 5000);
    assert_eq!(all["series"]["acc"]["downsampled"], false);
    let (st, _) = s.get("/api/v1/runs/nope/history").await;
    assert_eq!(st, 404);
    // The run view can leave the full history out.
    let (_, lean) = s.get(&format!("/api/v1/runs/{id}?history=false")).await;
    assert!(lean.get("history").is_none());
}

#[tokio::test]
async fn runs_sort_filter_and_page() {
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    for _ in 0..12 {
        s.run(&id, 2, loss_of).await;
    }
    // Existing parameters keep working.
    let (st, page) = s
        .get(&format!("/api/v1/runs?sweep={id}&limit=5&offset=5"))
        .await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["total"], 12);
    assert_eq!(page["runs"][0]["number"], 6);
    // Sorted by metric, descending, missing values last.
    let (_, page) = s
        .get(&format!("/api/v1/runs?sweep={id}&sort=metric&order=desc"))
        .await;
    let metrics: Vec<f64> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"].as_f64().unwrap())
        .collect();
    assert!(metrics.windows(2).all(|w| w[0] >= w[1]), "{metrics:?}");
    // Sorted by a parameter.
    let (_, page) = s
        .get(&format!("/api/v1/runs?sweep={id}&sort=params.lr"))
        .await;
    let lrs: Vec<f64> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["params"]["lr"].as_f64().unwrap())
        .collect();
    assert!(lrs.windows(2).all(|w| w[0] <= w[1]), "{lrs:?}");
    // Sorted by a summary value.
    let (st, _) = s
        .get(&format!(
            "/api/v1/runs?sweep={id}&sort=summary.acc&order=desc"
        ))
        .await;
    assert_eq!(st, 200);
    // Range and set filters.
    let (_, page) = s
        .get(&format!(
            "/api/v1/runs?sweep={id}&range=params.lr:0.001:0.01&in=params.opt:sgd"
        ))
        .await;
    for r in page["runs"].as_array().unwrap() {
        let lr = r["params"]["lr"].as_f64().unwrap();
        assert!((0.001..=0.01).contains(&lr));
        assert_eq!(r["params"]["opt"], "sgd");
    }
    let (_, all) = s.get(&format!("/api/v1/runs?sweep={id}&limit=1000")).await;
    let expected = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let lr = r["params"]["lr"].as_f64().unwrap();
            (0.001..=0.01).contains(&lr) && r["params"]["opt"] == "sgd"
        })
        .count();
    assert_eq!(page["total"], expected);
    // A misspelt parameter is a 400 naming the sweep's parameters, not an empty page.
    for query in [
        "range=params.lrr:0:1",
        "in=params.opts:sgd",
        "sort=params.nope",
    ] {
        let (st, e) = s.get(&format!("/api/v1/runs?sweep={id}&{query}")).await;
        assert_eq!(st, 400, "{query}: {e}");
        let message = e["error"].as_str().unwrap();
        assert!(
            message.contains(&format!("sweep {id} has no parameter")) && message.contains("lr, "),
            "{message}"
        );
    }
    let median = {
        let mut m = metrics.clone();
        m.sort_by(f64::total_cmp);
        m[6]
    };
    let (_, page) = s
        .get(&format!("/api/v1/runs?sweep={id}&range=metric::{median}"))
        .await;
    assert_eq!(page["total"], 7);
    let (_, page) = s
        .get(&format!("/api/v1/runs?sweep={id}&state=failed,crashed"))
        .await;
    assert_eq!(page["total"], 0);
    let (st, err) = s.get(&format!("/api/v1/runs?sweep={id}&sort=bogus")).await;
    assert_eq!(st, 400, "{err}");
    let (st, _) = s
        .get(&format!("/api/v1/runs?sweep={id}&range=metric:a:b"))
        .await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn notes_persist_and_are_bounded() {
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    let notes = "# Learned\n- lr near 3e-3 wins\n- **sgd** is worse";
    let (st, body) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/sweeps/{id}/notes"),
            json!({ "notes": notes }),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["notes"], notes);
    assert!(sweep["compute_ms"].is_i64());
    let big = "x".repeat(hyperdial_store::MAX_NOTES_BYTES + 1);
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/sweeps/{id}/notes"),
            json!({ "notes": big }),
        )
        .await;
    assert_eq!(st, 413);
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            "/api/v1/sweeps/nope/notes",
            json!({ "notes": "" }),
        )
        .await;
    assert_eq!(st, 404);
}

/// Read SSE events until `want` of kind `kind` arrived (or time out).
async fn read_events(resp: reqwest::Response, until: &[&str]) -> Vec<(String, Value)> {
    let mut resp = resp;
    let mut buf = String::new();
    let mut out: Vec<(String, Value)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while until.iter().any(|k| !out.iter().any(|(kind, _)| kind == k)) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(at) = buf.find("\n\n") {
            let block = buf[..at].to_string();
            buf.drain(..at + 2);
            let mut kind = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if !kind.is_empty() {
                out.push((kind, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
    out
}

#[tokio::test]
async fn live_events_follow_a_sweep() {
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    let other = s.sweep(SWEEP).await;
    let resp = s
        .http
        .get(format!("{}/api/v1/events?sweep={id}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let reader = tokio::spawn(read_events(
        resp,
        &["hello", "run_created", "metrics", "run_finished", "sweep"],
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.run(&other, 2, loss_of).await; // another sweep: filtered out
    let done = s.run(&id, 3, loss_of).await;
    s.post(&format!("/api/v1/sweeps/{id}/pause"), json!({}))
        .await;
    let events = reader.await.unwrap();
    let run_id = done["id"].as_str().unwrap();
    for (kind, data) in &events {
        match kind.as_str() {
            "run_created" | "run_finished" => assert_eq!(data["id"], run_id, "{data}"),
            "metrics" => {
                assert_eq!(data["run"]["id"], run_id);
                assert_eq!(data["points"].as_array().unwrap().len(), 3);
                assert_eq!(data["points"][2]["step"], 2);
            }
            "sweep" => assert_eq!(data["state"], "paused"),
            _ => {}
        }
    }
    let finished = events.iter().find(|(k, _)| k == "run_finished").unwrap();
    assert_eq!(finished.1["state"], "finished");
}

#[tokio::test]
async fn the_dashboard_is_embedded() {
    let s = start(None).await;
    for path in ["/", "/sweeps/abc", "/runs", "/runs/xyz", "/compare"] {
        let r = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/html; charset=utf-8"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("<div") || html.contains("<main"), "{html}");
    }
    let (_, index) = s.get("/").await;
    let index = index.as_str().unwrap().to_string();
    // Every asset the page names is served with its type.
    let mut seen = 0;
    for part in index.split('"').filter(|p| p.starts_with("/assets/")) {
        let r = s
            .http
            .get(format!("{}{part}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{part}");
        let ty = r.headers()["content-type"].to_str().unwrap().to_string();
        if part.ends_with(".js") {
            assert_eq!(ty, "text/javascript; charset=utf-8");
        } else if part.ends_with(".css") {
            assert_eq!(ty, "text/css; charset=utf-8");
        }
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        seen += 1;
    }
    assert!(seen >= 2, "the page links its script and styles: {index}");
    // No request path reaches the filesystem.
    for bad in [
        "/assets/../../Cargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/nope.js",
        "/etc/passwd",
    ] {
        let r = s.http.get(format!("{}{bad}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
}

/// `after_step` answers only the points above that step, so a live run page fetches only what
/// it lacks; `total` counts those points.
#[tokio::test]
async fn history_after_step_gives_only_new_points() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({"config": {"x": 1}})).await;
    let id = run["id"].as_str().unwrap();
    let points: Vec<Value> = (0..50)
        .map(|i| json!({"step": i, "values": {"loss": i as f64 * 0.5}}))
        .collect();
    let (st, _) = s
        .post(
            &format!("/api/v1/runs/{id}/metrics"),
            json!({ "points": points }),
        )
        .await;
    assert_eq!(st, 200);
    let (st, h) = s
        .get(&format!(
            "/api/v1/runs/{id}/history?keys=loss&after_step=46"
        ))
        .await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["series"]["loss"]["step"], json!([47, 48, 49]));
    assert_eq!(h["series"]["loss"]["value"], json!([23.5, 24.0, 24.5]));
    assert_eq!(h["series"]["loss"]["total"], 3);
    let (_, none) = s
        .get(&format!(
            "/api/v1/runs/{id}/history?keys=loss&after_step=49"
        ))
        .await;
    assert_eq!(none["series"]["loss"]["step"], json!([]));
    let (_, all) = s
        .get(&format!(
            "/api/v1/runs/{id}/history?keys=loss&after_step=-1"
        ))
        .await;
    assert_eq!(all["series"]["loss"]["total"], 50);
    let (st, bad) = s
        .get(&format!("/api/v1/runs/{id}/history?after_step=soon"))
        .await;
    assert_eq!(st, 400, "{bad}");
}

/// Answers of 1 KiB or more are compressed for clients that accept it (gzip or brotli); small
/// ones, clients that do not ask, and the live event stream are not.
#[tokio::test]
async fn large_answers_are_compressed_and_events_are_not() {
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    for _ in 0..20 {
        s.run(&id, 2, loss_of).await;
    }
    let url = format!("{}/api/v1/sweeps/{id}/points", s.base);
    let plain = s.http.get(&url).send().await.unwrap();
    assert_eq!(plain.headers().get("content-encoding"), None);
    let plain_len = plain.bytes().await.unwrap().len();
    assert!(plain_len > 1024, "{plain_len}");
    for (accept, word) in [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br")] {
        let r = s
            .http
            .get(&url)
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string()),
            Some(word.to_string()),
            "{accept}"
        );
        let len = r.bytes().await.unwrap().len();
        assert!(len * 2 < plain_len, "{accept}: {len} of {plain_len}");
    }
    // A small answer stays as it is.
    let r = s
        .http
        .get(format!("{}/api/v1/runs/nope", s.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("content-encoding"), None);
    // The event stream is never compressed: events must not wait for a buffer to fill.
    let r = s
        .http
        .get(format!("{}/api/v1/events?sweep={id}", s.base))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("content-encoding"), None);
}

/// Listings longer than a page (500 runs) are sent while they are read, page by page: every
/// run once, in order, with the same envelope as a short page; the CSV export's header names
/// summary keys that only runs of a later page have.
#[tokio::test]
async fn long_listings_arrive_whole_page_by_page() {
    const RUNS: usize = 520;
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    let mut ids = Vec::new();
    for n in 0..RUNS {
        let (st, claim) = s
            .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
            .await;
        assert_eq!(st, 200, "{claim}");
        let run = claim["run"]["id"].as_str().unwrap().to_string();
        // A summary key of the first page and one of the second, reported at once.
        let key = match n {
            3 => Some("early"),
            n if n == RUNS - 2 => Some("late"),
            _ => None,
        };
        if let Some(key) = key {
            let (st, _) = s
                .post(
                    &format!("/api/v1/runs/{run}/metrics"),
                    json!({"points": [{"step": 0, "values": {key: 1.5}}]}),
                )
                .await;
            assert_eq!(st, 200);
        }
        ids.push(run);
    }
    let (st, all) = s
        .get(&format!("/api/v1/runs?sweep={id}&limit=100000"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(all["total"], RUNS);
    assert_eq!(
        (all["offset"].clone(), all["limit"].clone()),
        (json!(0), json!(100000))
    );
    let listed: Vec<&str> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids, "every run once, by number");
    let (_, tail) = s
        .get(&format!(
            "/api/v1/runs?sweep={id}&limit=501&offset=10&sort=number&order=desc"
        ))
        .await;
    let numbers: Vec<i64> = tail["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (10..=510).rev().collect::<Vec<i64>>());
    assert_eq!(tail["total"], RUNS);
    let (st, js) = s
        .get(&format!("/api/v1/sweeps/{id}/export?format=json"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(js["sweep"], id.as_str());
    let exported: Vec<&str> = js["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(exported, ids);
    let (st, csv) = s
        .get(&format!("/api/v1/sweeps/{id}/export?format=csv"))
        .await;
    assert_eq!(st, 200);
    let csv = csv.as_str().unwrap().to_string();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), RUNS + 1);
    let header: Vec<&str> = lines[0].split(',').collect();
    let late = header
        .iter()
        .position(|h| *h == "summary.late")
        .expect("a later page's key");
    assert!(header.contains(&"summary.early"));
    let row: Vec<&str> = lines[RUNS - 1].split(',').collect();
    assert_eq!(row[0], ids[RUNS - 2]);
    assert_eq!(row[late], "1.5");
    let (st, _) = s.get("/api/v1/sweeps/nope/export?format=csv").await;
    assert_eq!(st, 404, "a failure before the first page keeps its status");
}

/// A listing sent page by page (a `limit` above one page) through the compression layer
/// arrives whole: the layer polls the body again after its end, which must not panic.
#[tokio::test]
async fn paged_listings_survive_compression() {
    let s = start(None).await;
    let id = s.sweep(SWEEP).await;
    s.run(&id, 2, loss_of).await;
    for _ in 0..2 {
        let r = s
            .http
            .get(format!("{}/api/v1/runs?sweep={id}&limit=1000", s.base))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string()),
            Some("gzip".to_string())
        );
        assert!(!r.bytes().await.unwrap().is_empty());
    }
}

/// The whole history as columns: the steps of every metric, `null` at a metric's gaps and at
/// its NaN values (those listed in `non_finite`), a point sent again read once with its later
/// value, floats exactly as sent, the packed form holding the same, and pages chained by
/// `next_after_step`.
#[tokio::test]
async fn history_columns_answer_every_step_with_gaps_nan_and_pages() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({"config": {"x": 1}})).await;
    let id = run["id"].as_str().unwrap();
    let exact: [f64; 5] = [0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, -2.5e-7];
    let points = json!({"points": [
        {"step": 0, "values": {"loss": exact[0], "acc": 0.5}},
        {"step": 1, "values": {"loss": exact[1]}},
        {"step": 2, "values": {"loss": null, "acc": 0.75}},
        {"step": 4, "values": {"loss": exact[3], "lr": exact[4]}},
        {"step": 7, "values": {"acc": exact[2]}},
    ]});
    let (st, body) = s.post(&format!("/api/v1/runs/{id}/metrics"), points).await;
    assert_eq!(st, 200, "{body}");
    // Step 1 of `loss` sent again: the later value, one step.
    let again = json!({"points": [{"step": 1, "values": {"loss": 0.125}}]});
    let (st, _) = s.post(&format!("/api/v1/runs/{id}/metrics"), again).await;
    assert_eq!(st, 200);

    let (st, h) = s.get(&format!("/api/v1/runs/{id}/history/columns")).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["run"], json!(id));
    assert_eq!(h["keys"], json!(["acc", "loss", "lr"]));
    assert_eq!(h["steps"], json!([0, 1, 2, 4, 7]));
    assert_eq!(h["time_ms"].as_array().unwrap().len(), 5);
    let names: Vec<&String> = h["columns"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["acc", "loss", "lr"], "every metric, by name");
    assert_eq!(
        h["columns"]["acc"],
        json!([0.5, null, 0.75, null, exact[2]])
    );
    assert_eq!(
        h["columns"]["loss"],
        json!([exact[0], 0.125, null, exact[3], null])
    );
    assert_eq!(
        h["columns"]["lr"],
        json!([null, null, null, exact[4], null])
    );
    assert_eq!(
        h["non_finite"],
        json!({"loss": [2]}),
        "the NaN, not the gaps"
    );
    assert_eq!(
        (&h["truncated"], &h["next_after_step"]),
        (&json!(false), &Value::Null)
    );
    // Every float reads back bit for bit (shortest round-trip form).
    let text = s
        .http
        .get(format!(
            "{}/api/v1/runs/{id}/history/columns?keys=loss",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("0.30000000000000004"), "{text}");
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        back["columns"]["loss"][0].as_f64().unwrap().to_bits(),
        exact[0].to_bits()
    );
    assert_eq!(
        h["columns"]["acc"][4].as_f64().unwrap().to_bits(),
        exact[2].to_bits()
    );

    // The packed answer holds the same lists, as little-endian binary numbers in base64; a
    // gap or a NaN is a NaN there.
    let (st, packed) = s.get(&format!("/api/v1/runs/{id}/history/packed")).await;
    assert_eq!(st, 200, "{packed}");
    let bytes = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let ints = |v: &Value| -> Vec<i64> {
        bytes(v)
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let floats = |v: &Value| -> Vec<Option<f64>> {
        bytes(v)
            .chunks(8)
            .map(|c| Some(f64::from_le_bytes(c.try_into().unwrap())).filter(|x| !x.is_nan()))
            .collect()
    };
    assert_eq!(packed["count"], 5);
    assert_eq!(json!(ints(&packed["steps"])), h["steps"]);
    assert_eq!(json!(ints(&packed["time_ms"])), h["time_ms"]);
    for name in ["acc", "loss", "lr"] {
        assert_eq!(
            json!(floats(&packed["columns"][name])),
            h["columns"][name],
            "{name}"
        );
    }
    assert_eq!(
        (&packed["non_finite"], &packed["keys"], &packed["truncated"]),
        (&h["non_finite"], &h["keys"], &h["truncated"])
    );

    // Asked keys: in the order asked, only their steps; a key never logged is all null.
    let (st, k) = s
        .get(&format!(
            "/api/v1/runs/{id}/history/columns?keys=lr,acc,nope,lr"
        ))
        .await;
    assert_eq!(st, 200, "{k}");
    let names: Vec<&String> = k["columns"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["lr", "acc", "nope"]);
    assert_eq!(k["steps"], json!([0, 2, 4, 7]));
    assert_eq!(k["columns"]["nope"], json!([null, null, null, null]));

    // Pages of two steps chained by next_after_step give the whole history.
    let mut after = String::new();
    let mut steps = Vec::new();
    let mut pages = 0;
    loop {
        let (st, page) = s
            .get(&format!("/api/v1/runs/{id}/history/columns?limit=2{after}"))
            .await;
        assert_eq!(st, 200, "{page}");
        assert_eq!(page["limit"], 2);
        pages += 1;
        steps.extend(
            page["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap()),
        );
        if page["truncated"] == json!(false) {
            assert_eq!(page["next_after_step"], Value::Null);
            break;
        }
        after = format!("&after_step={}", page["next_after_step"]);
    }
    assert_eq!((steps, pages), (vec![0, 1, 2, 4, 7], 3));
    // A limit above the cap is lowered to it, and the answer says so.
    let (_, capped) = s
        .get(&format!("/api/v1/runs/{id}/history/columns?limit=99999999"))
        .await;
    assert_eq!(
        capped["limit"],
        json!(hyperdial_server::api::insights::MAX_COLUMN_VALUES / 3)
    );
}

/// A run without points answers empty columns; an unknown run is a `404` naming it (in both
/// forms); a bad or unknown option is a `400` naming the option.
#[tokio::test]
async fn history_columns_refuse_unknown_runs_and_bad_options() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({})).await;
    let id = run["id"].as_str().unwrap();
    let (st, empty) = s.get(&format!("/api/v1/runs/{id}/history/columns")).await;
    assert_eq!(st, 200, "{empty}");
    assert_eq!(
        (&empty["steps"], &empty["columns"], &empty["truncated"]),
        (&json!([]), &json!({}), &json!(false))
    );
    for form in ["columns", "packed"] {
        let (st, missing) = s.get(&format!("/api/v1/runs/r_nope/history/{form}")).await;
        assert_eq!(st, 404, "{missing}");
        assert_eq!(missing["error"], "no run with id `r_nope`");
        let (st, bad) = s
            .get(&format!("/api/v1/runs/{id}/history/{form}?limit=0"))
            .await;
        assert_eq!(st, 400, "{bad}");
    }
    for (query, named) in [
        ("limit=0", "`limit`"),
        ("limit=ten", "`limit`"),
        ("limit=-3", "`limit`"),
        ("after_step=soon", "`after_step`"),
        ("after_step=1&after_step=2", "`after_step`"),
        ("format=rows", "`format`"),
        ("max_points=10", "`max_points`"),
    ] {
        let (st, bad) = s
            .get(&format!("/api/v1/runs/{id}/history/columns?{query}"))
            .await;
        assert_eq!(st, 400, "{query}: {bad}");
        let error = bad["error"].as_str().unwrap();
        assert!(error.contains(named), "{query}: {error}");
    }
    // More columns than one answer takes.
    let many: Vec<String> = (0..=hyperdial_server::api::insights::MAX_COLUMNS)
        .map(|i| format!("m{i}"))
        .collect();
    let (st, bad) = s
        .get(&format!(
            "/api/v1/runs/{id}/history/columns?keys={}",
            many.join(",")
        ))
        .await;
    assert_eq!(st, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("at most"), "{bad}");
    let long = "k".repeat(300);
    let (st, bad) = s
        .get(&format!("/api/v1/runs/{id}/history/columns?keys={long}"))
        .await;
    assert_eq!(st, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("`keys`"), "{bad}");
}
