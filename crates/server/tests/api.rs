//! The API end to end: a real server on an ephemeral loopback port, driven over HTTP.

use std::collections::HashSet;

use hyperdial_server::{serve, Options};
use hyperdial_store::Store;
use serde_json::{json, Value};

mod common;

use common::*;

const GRID12: &str = "program: t.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1, 2, 3]}\n  b: {values: [x, y, z, w]}\n";

#[tokio::test]
async fn concurrent_claims_never_repeat_a_grid_point() {
    let s = start(None).await;
    let id = s.sweep(GRID12).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let http = s.http.clone();
        let url = format!("{}/api/v1/sweeps/{id}/claim", s.base);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let r = http.post(&url).json(&json!({})).send().await.unwrap();
                match r.status().as_u16() {
                    200 => {
                        let v: Value = r.json().await.unwrap();
                        let run = &v["run"];
                        let fin = url.replace(
                            &format!("sweeps/{}", run["sweep"].as_str().unwrap()),
                            "runs",
                        );
                        let fin = fin.replace(
                            "/claim",
                            &format!("/{}/finish", run["id"].as_str().unwrap()),
                        );
                        http.post(&fin)
                            .json(&json!({"exit_code": 0}))
                            .send()
                            .await
                            .unwrap();
                        got.push(run["params"].to_string());
                    }
                    410 => return got,
                    204 => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                    other => panic!("status {other}"),
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 12);
    assert_eq!(distinct.len(), 12);
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["state"], "finished");
    assert_eq!(sweep["counts"]["finished"], 12);
    assert_eq!(sweep["expected_runs"], 12);
}

#[tokio::test]
async fn run_cap_waits_for_runs_in_flight_then_ends() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: random\nrun_cap: 2\nparameters: {x: {min: 0.0, max: 1.0}}\n")
        .await;
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["expected_runs"], 2);
    let claim = format!("/api/v1/sweeps/{id}/claim");
    let (a, ra) = s.post(&claim, json!({})).await;
    let (b, _) = s.post(&claim, json!({})).await;
    assert_eq!((a, b), (200, 200));
    let (c, _) = s.post(&claim, json!({})).await;
    assert_eq!(c, 204, "cap reached while runs are in flight");
    let run_a = ra["run"]["id"].as_str().unwrap();
    // Random suggestions are stored with their seed and are reproducible.
    assert!(ra["run"]["suggestion"]["seed"].is_u64());
    s.post(
        &format!("/api/v1/runs/{run_a}/finish"),
        json!({"exit_code": 0}),
    )
    .await;
    let (_, runs) = s.get(&format!("/api/v1/runs?sweep={id}")).await;
    let other = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] != run_a)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(
        &format!("/api/v1/runs/{other}/finish"),
        json!({"exit_code": 1}),
    )
    .await;
    let (d, body) = s.post(&claim, json!({})).await;
    assert_eq!(d, 410);
    assert_eq!(body["state"], "finished");
}

/// Finish every run a claim hands out, until the claims wait or end; then read the sweep
/// without claiming again.
async fn run_out(s: &Server, id: &str) -> Value {
    let claim = format!("/api/v1/sweeps/{id}/claim");
    let mut ids = Vec::new();
    loop {
        let (st, body) = s.post(&claim, json!({})).await;
        if st != 200 {
            break;
        }
        ids.push(body["run"]["id"].as_str().unwrap().to_string());
    }
    for rid in &ids {
        let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
        assert_eq!(
            sweep["state"], "running",
            "ended before its last run: {sweep}"
        );
        s.post(
            &format!("/api/v1/runs/{rid}/finish"),
            json!({"exit_code": 0}),
        )
        .await;
    }
    s.get(&format!("/api/v1/sweeps/{id}")).await.1
}

#[tokio::test]
async fn a_sweep_ends_when_its_last_run_ends_not_at_the_next_claim() {
    let s = start(None).await;
    let capped = s
        .sweep("program: t.py\nmethod: random\nrun_cap: 3\nparameters: {x: {min: 0.0, max: 1.0}}\n")
        .await;
    let sweep = run_out(&s, &capped).await;
    assert_eq!(sweep["state"], "finished", "{sweep}");
    assert_eq!(sweep["end_reason"], "run_cap", "{sweep}");
    let grid = s
        .sweep("program: t.py\nmethod: grid\nparameters: {x: {values: [1, 2]}}\n")
        .await;
    let sweep = run_out(&s, &grid).await;
    assert_eq!(sweep["state"], "finished", "{sweep}");
    assert_eq!(sweep["end_reason"], "exhausted", "{sweep}");
    // A failed last run with a retry due keeps the sweep running for the retry.
    let retried = s
        .sweep("program: t.py\nmethod: grid\nretry: {max: 1, on: [failed]}\nparameters: {x: {values: [1]}}\n")
        .await;
    let (_, body) = s
        .post(&format!("/api/v1/sweeps/{retried}/claim"), json!({}))
        .await;
    let rid = body["run"]["id"].as_str().unwrap();
    s.post(
        &format!("/api/v1/runs/{rid}/finish"),
        json!({"exit_code": 1}),
    )
    .await;
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{retried}")).await;
    assert_eq!(sweep["state"], "running", "{sweep}");
}

#[tokio::test]
async fn a_run_takes_the_name_its_script_gives_it() {
    let s = start(None).await;
    let (st, run) = s.post("/api/v1/runs", json!({"project": "p"})).await;
    assert_eq!(st, 201, "{run}");
    assert!(run["name"].is_null(), "{run}");
    let rid = run["id"].as_str().unwrap();
    let (st, body) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{rid}/name"),
            json!({"name": " lr-range-test "}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (_, run) = s.get(&format!("/api/v1/runs/{rid}")).await;
    assert_eq!(run["name"], "lr-range-test", "{run}");
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            "/api/v1/runs/nosuchrun/name",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{rid}/name"),
            json!({"name": "x".repeat(201)}),
        )
        .await;
    assert_eq!(st, 422);
}

#[tokio::test]
async fn metrics_round_trip_exactly_and_nan_fails_the_run() {
    let s = start(None).await;
    let id = s.sweep("program: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\nparameters: {x: {min: 0.0, max: 1.0}}\n").await;
    let (_, claim) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    let run = claim["run"]["id"].as_str().unwrap().to_string();
    let values: [f64; 5] = [0.1, 1e-300, 123456.789, 0.30000000000000004, -2.5];
    let points: Vec<Value> = values
        .iter()
        .map(|v| json!({"values": {"loss": v, "acc": 1}}))
        .collect();
    let (st, ack) = s
        .post(
            &format!("/api/v1/runs/{run}/metrics"),
            json!({ "points": points }),
        )
        .await;
    assert_eq!(st, 200, "{ack}");
    assert_eq!(ack["accepted"], 10);
    let (_, r) = s.get(&format!("/api/v1/runs/{run}")).await;
    let hist = r["history"].as_array().unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(hist[i]["step"], i);
        assert_eq!(
            hist[i]["values"]["loss"].as_f64().unwrap().to_bits(),
            v.to_bits()
        );
    }
    assert_eq!(r["metric"], json!(-2.5));
    // A run still in flight is never the best (docs/config.md: only runs that ended
    // `finished` or `stopped_early` count), whatever it reported so far.
    let (st, best) = s.get(&format!("/api/v1/sweeps/{id}/best")).await;
    assert_eq!(st, 404, "{best}");
    // NaN last: the run fails even with exit code 0.
    s.post(
        &format!("/api/v1/runs/{run}/metrics"),
        json!({"points": [{"values": {"loss": null}}]}),
    )
    .await;
    let (_, done) = s
        .post(
            &format!("/api/v1/runs/{run}/finish"),
            json!({"exit_code": 0}),
        )
        .await;
    assert_eq!(done["state"], "failed");
    assert!(done["error"].as_str().unwrap().contains("NaN"));
}

#[tokio::test]
async fn pause_resume_stop_cancel() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: random\nparameters: {x: {min: 0.0, max: 1.0}}\n")
        .await;
    let (_, c) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    let run = c["run"]["id"].as_str().unwrap().to_string();
    let (_, p) = s
        .post(&format!("/api/v1/sweeps/{id}/pause"), json!({}))
        .await;
    assert_eq!(p["state"], "paused");
    let (st, _) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    assert_eq!(st, 204);
    let (_, r) = s
        .post(&format!("/api/v1/sweeps/{id}/resume"), json!({}))
        .await;
    assert_eq!(r["state"], "running");
    let (_, hb) = s
        .post(&format!("/api/v1/runs/{run}/heartbeat"), json!({}))
        .await;
    assert_eq!(hb["stop"], false);
    let (_, x) = s
        .post(&format!("/api/v1/sweeps/{id}/cancel"), json!({}))
        .await;
    assert_eq!(x["state"], "cancelled");
    let (_, hb) = s
        .post(&format!("/api/v1/runs/{run}/heartbeat"), json!({}))
        .await;
    assert_eq!(hb["stop"], true);
    // The agent reports the killed process as failed; the run ends cancelled.
    let (_, done) = s
        .post(
            &format!("/api/v1/runs/{run}/finish"),
            json!({"exit_code": -15, "error": "killed by SIGTERM"}),
        )
        .await;
    assert_eq!(done["state"], "cancelled");
    let (st, e) = s
        .post(&format!("/api/v1/sweeps/{id}/resume"), json!({}))
        .await;
    assert_eq!(st, 409);
    assert!(e["error"].as_str().unwrap().contains("cannot resume"));
    // stop: no new runs, state finished.
    let id2 = s
        .sweep(
            "program: t.py\nmethod: random\nname: other\nparameters: {x: {min: 0.0, max: 2.0}}\n",
        )
        .await;
    let (_, st2) = s
        .post(&format!("/api/v1/sweeps/{id2}/stop"), json!({}))
        .await;
    assert_eq!(st2["state"], "finished");
    let (code, _) = s
        .post(&format!("/api/v1/sweeps/{id2}/claim"), json!({}))
        .await;
    assert_eq!(code, 410);
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let s = start(None).await;
    let (st, e) = s
        .post(
            "/api/v1/sweeps",
            json!({"source": "method: grdi\nparameters: {a: {value: 1}}\n"}),
        )
        .await;
    assert_eq!(st, 422);
    let errors: Vec<&Value> = e["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(errors[0]["path"], "method");
    let (st, e) = s
        .post(
            "/api/v1/sweeps",
            json!({"source": "program: t\nmethod: bayes\nparameters: {a: {min: 0.0, max: 1.0}}\n"}),
        )
        .await;
    assert_eq!(st, 422);
    assert!(
        e["error"].as_str().unwrap().contains("needs a `metric`"),
        "{e}"
    );
    for method in ["bayes", "tpe", "sobol"] {
        let source = format!("program: t\nmethod: {method}\nmetric: {{name: l}}\nparameters: {{a: {{min: 0.0, max: 1.0}}}}\n");
        let (st, e) = s.post("/api/v1/sweeps", json!({ "source": source })).await;
        assert!(st < 300, "{method}: {st} {e}");
    }
    let (st, e) = s.post("/api/v1/sweeps", json!({"sauce": 1})).await;
    assert_eq!(st, 400);
    assert!(e["error"].as_str().unwrap().contains("source"), "{e}");
    let r = s
        .http
        .post(format!("{}/api/v1/sweeps", s.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let (st, _) = s.get("/api/v1/runs/nope").await;
    assert_eq!(st, 404);
    let (st, e) = s
        .post("/api/v1/runs/nope/metrics", json!({"points": []}))
        .await;
    assert_eq!(st, 404, "{e}");
    let big = "x".repeat(9 * 1024 * 1024);
    let r = s
        .http
        .post(format!("{}/api/v1/sweeps", s.base))
        .json(&json!({"source": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let (_, run) = s
        .post("/api/v1/runs", json!({"config": {"a": {"b": 1}}}))
        .await;
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["params"]["a.b"], 1);
    let (st, e) = s
        .post(
            &format!("/api/v1/runs/{id}/metrics"),
            json!({"points": [{"values": {"loss": "high"}}]}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["error"].as_str().unwrap().contains("loss"));
    // An exit code no operating system gives is refused, and the run stays open.
    let (st, e) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"exit_code": 1u64 << 40}),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("i32"), "{e}");
    let (_, run) = s.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(run["state"], "running", "{run}");
    let (st, run) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"exit_code": -1073741819}),
        )
        .await;
    assert_eq!(st, 200, "{run}");
    assert_eq!(run["exit_code"], -1073741819);
    assert_eq!(run["state"], "failed");
}

#[tokio::test]
async fn resume_finds_the_same_sweep() {
    let s = start(None).await;
    let (st, a) = s
        .post("/api/v1/sweeps", json!({"source": GRID12, "resume": true}))
        .await;
    assert_eq!(st, 201);
    // Same config, other formatting: resumed.
    let reformatted = GRID12.replace("{values: [1, 2, 3]}", "\n    values: [1, 2, 3]  # comment");
    let (st, b) = s
        .post(
            "/api/v1/sweeps",
            json!({"source": reformatted, "resume": true}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(a["id"], b["id"]);
    assert_eq!(b["resumed"], true);
}

#[tokio::test]
async fn token_is_enforced_when_set() {
    let s = start(Some("sekret")).await;
    let (st, e) = s.get("/api/v1/sweeps").await;
    assert_eq!(st, 401);
    assert!(e["error"].as_str().unwrap().contains("token"));
    let r = s
        .http
        .get(format!("{}/api/v1/sweeps", s.base))
        .bearer_auth("sekret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn non_loopback_without_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = serve(listener, store, Options::default(), async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("without a token"));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn openapi_lists_routes_that_exist() {
    let s = start(None).await;
    let (st, doc) = s.get("/api/v1/openapi.json").await;
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // Every GET route without parameters answers 200 (the live-event stream never ends; its
    // own test is in dashboard_api.rs).
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_some() && !path.contains('{') && path != "/api/v1/events" {
            let (st, _) = s.get(path).await;
            assert_eq!(st, 200, "{path}");
        }
    }
    let (st, _) = s.get("/").await;
    assert_eq!(st, 200);
}

/// Parameters named as other columns of the CSV (`id`, `state`, `summary.loss` beside the
/// summary's `loss`) get `params.` before their name: every column is named once.
#[tokio::test]
async fn export_csv_names_every_column_once() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nparameters:\n  id: {values: [7]}\n  state: {values: [up]}\n  summary.loss: {values: [2]}\n  lr: {values: [0.1]}\n")
        .await;
    let (_, c) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    let run = c["run"]["id"].as_str().unwrap().to_string();
    s.post(
        &format!("/api/v1/runs/{run}/finish"),
        json!({"exit_code": 0, "values": {"loss": 0.5}}),
    )
    .await;
    let (_, csv) = s
        .get(&format!("/api/v1/sweeps/{id}/export?format=csv"))
        .await;
    let csv = csv.as_str().unwrap().to_string();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header[..9],
        [
            "id",
            "number",
            "name",
            "state",
            "metric",
            "params.id",
            "params.state",
            "params.summary.loss",
            "lr"
        ],
        "{csv}"
    );
    let distinct: std::collections::BTreeSet<&&str> = header.iter().collect();
    assert_eq!(distinct.len(), header.len(), "{csv}");
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!((row[0], row[5], row[6]), (run.as_str(), "7", "up"), "{csv}");
}

/// Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'` in
/// the CSV; numbers, negative ones included, and the JSON export are left as they are.
#[tokio::test]
async fn export_csv_keeps_text_from_running_as_a_formula() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  cmd: {values: ['=1+2']}\n  lr: {values: [-0.5]}\n")
        .await;
    let (_, c) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    let run = c["run"]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{run}/summary"),
            json!({"note": "@SUM(A1)", "tag": "+x", "plain": "a-b"}),
        )
        .await;
    assert_eq!(st, 200);
    s.post(
        &format!("/api/v1/runs/{run}/finish"),
        json!({"exit_code": 0, "values": {"loss": -1.25}}),
    )
    .await;
    let (_, csv) = s
        .get(&format!("/api/v1/sweeps/{id}/export?format=csv"))
        .await;
    let csv = csv.as_str().unwrap().to_string();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| row[header.iter().position(|h| *h == name).expect(name)];
    assert_eq!(at("cmd"), "'=1+2", "{csv}");
    assert_eq!(at("lr"), "-0.5", "{csv}");
    assert_eq!(at("metric"), "-1.25", "{csv}");
    assert_eq!(at("summary.note"), "'@SUM(A1)", "{csv}");
    assert_eq!(at("summary.tag"), "'+x", "{csv}");
    assert_eq!(at("summary.plain"), "a-b", "{csv}");
    let (_, json) = s.get(&format!("/api/v1/sweeps/{id}/export")).await;
    assert_eq!(json["runs"][0]["params"]["cmd"], "=1+2", "{json}");
    assert_eq!(json["runs"][0]["summary"]["note"], "@SUM(A1)", "{json}");
}

#[tokio::test]
async fn export_csv_and_json() {
    let s = start(None).await;
    let id = s.sweep(GRID12).await;
    let (_, c) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    let run = c["run"]["id"].as_str().unwrap().to_string();
    s.post(
        &format!("/api/v1/runs/{run}/metrics"),
        json!({"points": [{"values": {"loss": 0.5}}]}),
    )
    .await;
    // The script's own config and name (`wandb.config.update`, `wandb.run.name`).
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{run}/config"),
            json!({"epochs": 10, "opt": {"momentum": 0.9}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{run}/name"),
            json!({"name": "first, try"}),
        )
        .await;
    assert_eq!(st, 200);
    s.post(
        &format!("/api/v1/runs/{run}/finish"),
        json!({"exit_code": 0}),
    )
    .await;
    let (_, c) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    let second = c["run"]["id"].as_str().unwrap().to_string();
    s.post(
        &format!("/api/v1/runs/{second}/finish"),
        json!({"exit_code": 3, "state": "failed", "error": "out of memory, at step 3"}),
    )
    .await;
    let (_, csv) = s
        .get(&format!("/api/v1/sweeps/{id}/export?format=csv"))
        .await;
    let csv = csv.as_str().unwrap().to_string();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,number,name,state,metric,a,b,config.epochs,config.opt.momentum,summary.loss,\
         exit_code,error,host,started_ms,finished_ms,duration_s"
    );
    let first = lines.next().unwrap();
    assert!(
        first.starts_with(&format!(
            "{run},1,\"first, try\",finished,0.5,1,x,10,0.9,0.5,0,,"
        )),
        "{first}"
    );
    // A run's error goes in its own column, quoted when it holds a comma.
    let failed = lines.next().unwrap();
    assert!(
        failed.starts_with(&format!("{second},2,,failed,,")),
        "{failed}"
    );
    assert!(
        failed.contains(",,3,\"out of memory, at step 3\","),
        "{failed}"
    );
    let (_, js) = s
        .get(&format!("/api/v1/sweeps/{id}/export?format=json"))
        .await;
    assert_eq!(js["runs"][0]["metric"], 0.5);
    assert_eq!(js["runs"][0]["name"], "first, try");
    assert_eq!(
        js["runs"][0]["config"],
        json!({"epochs": 10, "opt.momentum": 0.9}),
        "{js}"
    );
    assert_eq!(js["runs"][1]["config"], json!({}), "{js}");
    // The JSON rows carry the same `error` as the CSV's column: null for a finished run.
    assert_eq!(js["runs"][0]["error"], Value::Null, "{js}");
    assert_eq!(js["runs"][1]["state"], "failed", "{js}");
    assert_eq!(js["runs"][1]["error"], "out of memory, at step 3", "{js}");
}

/// The script's defaults (`PUT /runs/{id}/config`) go into the run's config under the sweep's
/// values; `started` records the git state of the run's directory.
#[tokio::test]
async fn script_defaults_and_git_are_stored_with_a_sweep_run() {
    let s = start(None).await;
    let id = s
        .sweep("program: t.py\nmethod: grid\nparameters:\n  lr: {values: [0.5]}\n  opt:\n    parameters:\n      kind: {values: [adam]}\n")
        .await;
    let (status, claim) = s
        .post(&format!("/api/v1/sweeps/{id}/claim"), json!({}))
        .await;
    assert_eq!(status, 200, "{claim}");
    let run = claim["run"]["id"].as_str().unwrap().to_string();
    let config = format!("/api/v1/runs/{run}/config");
    let (status, _) = s
        .send(
            reqwest::Method::PUT,
            &config,
            json!({"lr": 0.1, "epochs": 5, "opt": {"kind": "sgd", "momentum": 0.9}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .send(reqwest::Method::PUT, &config, json!({"seed": 3, "lr": 7}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .post(
            &format!("/api/v1/runs/{run}/started"),
            json!({"argv": ["python3", "t.py"], "git": {"commit": "9b80abc", "dirty": true}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, r) = s.get(&format!("/api/v1/runs/{run}?history=false")).await;
    assert_eq!(
        r["config"],
        json!({"lr": 0.5, "epochs": 5, "seed": 3, "opt": {"kind": "adam", "momentum": 0.9}}),
        "{r:#}"
    );
    assert_eq!(r["params"], json!({"lr": 0.5, "opt.kind": "adam"}));
    assert_eq!(r["git"], json!({"commit": "9b80abc", "dirty": true}));
    // A later `started` without git keeps it.
    s.post(
        &format!("/api/v1/runs/{run}/started"),
        json!({"argv": ["x"]}),
    )
    .await;
    let (_, r) = s.get(&format!("/api/v1/runs/{run}?history=false")).await;
    assert_eq!(r["git"]["commit"], "9b80abc");
    // Errors: unknown run, a body that is not an object.
    let (status, _) = s
        .send(
            reqwest::Method::PUT,
            "/api/v1/runs/nope/config",
            json!({"a": 1}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = s.send(reqwest::Method::PUT, &config, json!([1, 2])).await;
    assert_eq!(status, 400);
}

/// The one request-size limit: bodies up to `MAX_BODY_BYTES` are taken by every route (axum's
/// 2 MiB extractor default no longer cuts in below it); larger ones answer a JSON `413` that
/// names the limit, whichever extractor the route uses.
#[tokio::test]
async fn one_request_size_limit_with_a_json_413() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({})).await;
    let id = run["id"].as_str().unwrap().to_string();
    // About 6 MiB of metric points, the size of 2,000 steps of 150 metrics at most.
    let points: Vec<Value> = (0..300)
        .map(|step| {
            let values: serde_json::Map<String, Value> = (0..700)
                .map(|k| {
                    (
                        format!("metric_{k:04}"),
                        json!(step as f64 + 0.000123 * k as f64),
                    )
                })
                .collect();
            json!({"step": step, "values": values})
        })
        .collect();
    let body = json!({ "points": points });
    let size = body.to_string().len();
    assert!(
        size > 4 * 1024 * 1024 && size < hyperdial_server::MAX_BODY_BYTES,
        "{size}"
    );
    let (st, ack) = s.post(&format!("/api/v1/runs/{id}/metrics"), body).await;
    assert_eq!(st, 200, "{ack}");
    assert_eq!(ack["accepted"], 300 * 700);

    let over = "x".repeat(hyperdial_server::MAX_BODY_BYTES);
    for path in [
        format!("/api/v1/runs/{id}/metrics"),
        format!("/api/v1/runs/{id}/finish"), // a `Bytes` body
    ] {
        let (st, e) = s.post(&path, json!({ "text": over })).await;
        assert_eq!(st, 413, "{path}: {e}");
        assert_eq!(e["limit_bytes"], hyperdial_server::MAX_BODY_BYTES, "{path}");
        assert!(e["error"].as_str().unwrap().contains("8388608"), "{e}");
    }
    assert_eq!(
        hyperdial_server::MAX_BODY_BYTES,
        hyperdial_agent_limit(),
        "the server and the agent must agree on the limit"
    );
}

/// The agent's copy of the limit, read from its source so this test needs no dependency on
/// the agent crate.
fn hyperdial_agent_limit() -> usize {
    let source = include_str!("../../agent/src/client.rs");
    let line = source
        .lines()
        .find(|l| l.starts_with("pub const MAX_REQUEST_BYTES"))
        .unwrap();
    assert!(line.contains("8 * 1024 * 1024"), "{line}");
    let python = include_str!("../../../python/hyperdial/_settings.py");
    assert!(
        python.contains("\nMAX_REQUEST_BYTES = 8 * 1024 * 1024\n"),
        "the Python client's limit"
    );
    8 * 1024 * 1024
}

#[tokio::test]
async fn delivery_reports_add_up_in_any_state() {
    let s = start(None).await;
    let (_, run) = s.post("/api/v1/runs", json!({})).await;
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(run["delivery"], Value::Null);
    let (st, _) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"exit_code": 0}),
        )
        .await;
    assert_eq!(st, 200);
    let path = format!("/api/v1/runs/{id}/delivery");
    let (st, r) = s
        .post(&path, json!({"missing": 12, "files": ["box:/tmp/a.jsonl"]}))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["state"], "finished");
    assert_eq!(
        r["delivery"],
        json!({"missing": 12, "reported_missing": 12, "recovered": 0, "files": ["box:/tmp/a.jsonl"]})
    );
    let (_, r) = s
        .post(
            &path,
            json!({"missing": 3, "files": ["box:/tmp/a.jsonl", "box:/tmp/b.jsonl"]}),
        )
        .await;
    assert_eq!(r["delivery"]["missing"], 15);
    assert_eq!(r["delivery"]["files"].as_array().unwrap().len(), 2);
    let (_, r) = s.post(&path, json!({"recovered": 15})).await;
    assert_eq!(r["delivery"]["missing"], 0);
    assert_eq!(r["delivery"]["recovered"], 15);
    let (_, listed) = s.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(listed["delivery"]["recovered"], 15);
    // Bad reports are 400s; unknown runs 404.
    let (st, _) = s.post(&path, json!({"missing": -1})).await;
    assert_eq!(st, 400);
    let (st, _) = s.post(&path, json!({"files": [""]})).await;
    assert_eq!(st, 400);
    let (st, _) = s
        .post("/api/v1/runs/nope/delivery", json!({"missing": 1}))
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let server = start(None).await;
    let (status, body) = server.get("/api/v1/nosuchroute").await;
    assert_eq!(status, 404);
    let message = body["error"].as_str().expect("a JSON error body");
    assert!(message.contains("/api/v1/nosuchroute"), "{body}");
    assert!(message.contains("openapi.json"), "{body}");
    let sweep = server.sweep(GRID12).await;
    let (status, body) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/sweeps/{sweep}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 405);
    let message = body["error"].as_str().expect("a JSON error body");
    assert!(message.starts_with("DELETE is not allowed"), "{body}");
    // A sweep's action path: a `GET` of an action is the wrong method, of anything else no
    // route (not a 405 that suggests another method would serve it), whatever the method.
    let (status, body) = server.get(&format!("/api/v1/sweeps/{sweep}/pause")).await;
    assert_eq!(status, 405, "{body}");
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let (status, body) = server
            .send(
                method.clone(),
                &format!("/api/v1/sweeps/{sweep}/nope"),
                json!({}),
            )
            .await;
        assert_eq!(status, 404, "{method}: {body}");
        let message = body["error"].as_str().expect("a JSON error body");
        assert!(
            message.contains("/nope") && message.contains("openapi.json"),
            "{body}"
        );
    }
}

/// W&B's `wandb.init(id=..., resume=...)`: a run created with a chosen id, ended, then
/// created again with `resume` continues the same run (its history and next step kept,
/// `running` again, its end cleared); `never` and a free id under `must` are refused, a
/// sweep's run is never resumed this way, and a bad id says what an id may hold.
#[tokio::test]
async fn a_run_with_a_chosen_id_is_resumed_with_its_history() {
    let s = start(None).await;
    let (st, run) = s
        .post("/api/v1/runs", json!({"project": "p", "id": "fold-3_a"}))
        .await;
    assert_eq!(st, 201, "{run}");
    assert_eq!(run["id"], "fold-3_a");
    let (st, body) = s
        .post(
            "/api/v1/runs/fold-3_a/metrics",
            json!({"points": [{"values": {"loss": 0.9}}, {"values": {"loss": 0.5}}]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, ended) = s
        .post(
            "/api/v1/runs/fold-3_a/finish",
            json!({"exit_code": 137, "error": "preempted"}),
        )
        .await;
    assert_eq!(st, 200, "{ended}");
    assert_eq!(ended["state"], "failed", "{ended}");

    // Taken, and not asked to resume: refused, the run untouched.
    for body in [
        json!({"id": "fold-3_a"}),
        json!({"id": "fold-3_a", "resume": "never"}),
    ] {
        let (st, err) = s.post("/api/v1/runs", body).await;
        assert_eq!(st, 409, "{err}");
        assert!(err["error"].as_str().unwrap().contains("resume"), "{err}");
    }
    // Resumed: the same run, running, its end cleared, logging on from step 2.
    let r = s
        .http
        .post(format!("{}/api/v1/runs", s.base))
        .json(&json!({"project": "p", "id": "fold-3_a", "resume": "allow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-hyperdial-resumed"], "true");
    let resumed: Value = r.json().await.unwrap();
    assert_eq!(resumed["id"], "fold-3_a");
    assert_eq!(resumed["state"], "running", "{resumed}");
    assert!(
        resumed["exit_code"].is_null() && resumed["error"].is_null(),
        "{resumed}"
    );
    assert!(resumed["finished_ms"].is_null(), "{resumed}");
    assert_eq!(resumed["steps"], 2, "{resumed}");
    let (st, _) = s
        .post(
            "/api/v1/runs/fold-3_a/metrics",
            json!({"points": [{"values": {"loss": 0.2}}]}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, done) = s
        .post("/api/v1/runs/fold-3_a/finish", json!({"exit_code": 0}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["state"], "finished");
    let (_, history) = s.get("/api/v1/runs/fold-3_a/history").await;
    assert_eq!(
        history["series"]["loss"]["step"],
        json!([0, 1, 2]),
        "{history}"
    );
    assert_eq!(
        history["series"]["loss"]["value"],
        json!([0.9, 0.5, 0.2]),
        "{history}"
    );
    // `must` resumes a taken id and refuses a free one, creating nothing.
    let (st, again) = s
        .post("/api/v1/runs", json!({"id": "fold-3_a", "resume": "must"}))
        .await;
    assert_eq!(st, 200, "{again}");
    let (st, err) = s
        .post("/api/v1/runs", json!({"id": "nobody", "resume": "must"}))
        .await;
    assert_eq!(st, 404, "{err}");
    let (st, _) = s.get("/api/v1/runs/nobody").await;
    assert_eq!(st, 404);
    // `allow` with a free id creates the run.
    let (st, fresh) = s
        .post("/api/v1/runs", json!({"id": "new-one", "resume": "allow"}))
        .await;
    assert_eq!(st, 201, "{fresh}");
    // A run still heard from is another process's: refused with a code the client acts on.
    let (st, err) = s
        .post("/api/v1/runs", json!({"id": "new-one", "resume": "allow"}))
        .await;
    assert_eq!(st, 409, "{err}");
    assert_eq!(err["code"], "run_active", "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("run timeout"),
        "{err}"
    );
    // Bad ids and a resume without an id.
    for bad in ["", "a/b", "x y", &"z".repeat(65)] {
        let (st, err) = s.post("/api/v1/runs", json!({"id": bad})).await;
        assert_eq!(st, 400, "{bad:?}: {err}");
        assert!(err["error"].as_str().unwrap().contains("A-Z"), "{err}");
    }
    let (st, err) = s.post("/api/v1/runs", json!({"resume": "allow"})).await;
    assert_eq!(st, 400, "{err}");
    // A sweep's run is not resumed by creating it again.
    let sweep = s.sweep(GRID12).await;
    let (st, claimed) = s
        .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
        .await;
    assert_eq!(st, 200, "{claimed}");
    let rid = claimed["run"]["id"].as_str().unwrap();
    let (st, err) = s
        .post("/api/v1/runs", json!({"id": rid, "resume": "allow"}))
        .await;
    assert_eq!(st, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("sweep"), "{err}");
}

/// A process killed without a word leaves its run `running`: once the run has been silent
/// for the server's run timeout, a new process may resume it.
#[tokio::test]
async fn a_silent_running_run_can_be_resumed_after_the_run_timeout() {
    let s = start_with(Options {
        run_timeout: Some(std::time::Duration::from_secs(1)),
        ..Options::default()
    })
    .await;
    let (st, _) = s.post("/api/v1/runs", json!({"id": "killed-9"})).await;
    assert_eq!(st, 201);
    let (st, err) = s
        .post("/api/v1/runs", json!({"id": "killed-9", "resume": "must"}))
        .await;
    assert_eq!(
        (st, err["code"].as_str()),
        (409, Some("run_active")),
        "{err}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, run) = s
        .post("/api/v1/runs", json!({"id": "killed-9", "resume": "must"}))
        .await;
    assert_eq!(st, 200, "{run}");
    assert_eq!(run["state"], "running");
}

/// Two processes resuming one ended run at the same moment: exactly one continues it, the
/// other is told the run is now someone's (`run_active`), however the requests interleave.
#[tokio::test]
async fn of_two_simultaneous_resumes_of_a_run_one_wins() {
    let s = start(None).await;
    for round in 0..5 {
        let id = format!("race-{round}");
        let (st, _) = s.post("/api/v1/runs", json!({"id": id})).await;
        assert_eq!(st, 201);
        let (st, _) = s
            .post(
                &format!("/api/v1/runs/{id}/finish"),
                json!({"exit_code": 0}),
            )
            .await;
        assert_eq!(st, 200);
        let body = json!({"id": id, "resume": "allow"});
        let (a, b) = tokio::join!(
            s.post("/api/v1/runs", body.clone()),
            s.post("/api/v1/runs", body.clone())
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let refused = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(refused["code"], "run_active", "{refused}");
    }
}

/// A run ended through the API while its script still logs (`hyperdial cancel RUN` on a run
/// no agent runs): the answer to its next metrics batch tells the script to stop.
#[tokio::test]
async fn a_metrics_batch_for_a_cancelled_run_is_answered_stop() {
    let s = start(None).await;
    let (st, run) = s.post("/api/v1/runs", json!({"project": "p"})).await;
    assert_eq!(st, 201);
    let rid = run["id"].as_str().unwrap();
    let (st, ans) = s
        .post(
            &format!("/api/v1/runs/{rid}/metrics"),
            json!({"points": [{"values": {"loss": 1.0}}]}),
        )
        .await;
    assert_eq!((st, &ans["stop"]), (200, &json!(false)), "{ans}");
    let (st, _) = s
        .post(
            &format!("/api/v1/runs/{rid}/finish"),
            json!({"state": "cancelled", "error": "by hand"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, ans) = s
        .post(
            &format!("/api/v1/runs/{rid}/metrics"),
            json!({"points": [{"values": {"loss": 0.5}}]}),
        )
        .await;
    assert_eq!(st, 200, "{ans}");
    assert_eq!(ans["stop"], true, "{ans}");
    assert_eq!(ans["reason"], "cancelled", "{ans}");
}

/// A stop the early-termination rule asks for once a run's process has already ended (its
/// points reached the server late, after an outage) stopped nothing: the run ends as its exit
/// code says, and keeps no "stopped early" error. A stop asked before the end still wins.
#[tokio::test]
async fn a_stop_requested_after_the_process_ended_does_not_make_the_run_stopped_early() {
    let s = start(None).await;
    let id = s
        .sweep(
            "program: t.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n\
             early_terminate: {type: hyperband, min_iter: 2, eta: 2}\n\
             parameters:\n  q: {values: [1, 2, 3, 4, 5]}\n",
        )
        .await;
    let claim = format!("/api/v1/sweeps/{id}/claim");
    let mut runs = Vec::new();
    for _ in 0..5 {
        let (st, body) = s.post(&claim, json!({})).await;
        assert_eq!(st, 200, "{body}");
        runs.push(body["run"]["id"].as_str().unwrap().to_string());
    }
    let log = |loss: f64| {
        json!({"points": (0..6).map(|step| json!({"step": step, "values": {"loss": loss}}))
            .collect::<Vec<_>>()})
    };
    // Three good runs first: they set the bands' thresholds.
    for (run, loss) in runs.iter().zip([0.1, 0.2, 0.3]) {
        let (st, _) = s
            .post(&format!("/api/v1/runs/{run}/metrics"), log(loss))
            .await;
        assert_eq!(st, 200);
        s.post(
            &format!("/api/v1/runs/{run}/finish"),
            json!({"exit_code": 0}),
        )
        .await;
    }
    let now = hyperdial_store::now_ms();
    // Two bad runs; each answer asks for a stop.
    for run in &runs[3..] {
        let (st, answer) = s
            .post(&format!("/api/v1/runs/{run}/metrics"), log(5.0))
            .await;
        assert_eq!(st, 200);
        assert_eq!(answer["stop"], true, "{answer}");
    }
    // Its process had ended 30 s before its points arrived: finished, as its exit code says.
    let (_, late) = s
        .post(
            &format!("/api/v1/runs/{}/finish", runs[3]),
            json!({"exit_code": 0, "ended_ms": now - 30_000}),
        )
        .await;
    assert_eq!(late["state"], "finished", "{late}");
    assert!(late["error"].is_null(), "{late}");
    // Ended as the stop was asked for (within the clock tolerance): stopped early.
    let (_, stopped) = s
        .post(
            &format!("/api/v1/runs/{}/finish", runs[4]),
            json!({"exit_code": 0, "ended_ms": now}),
        )
        .await;
    assert_eq!(stopped["state"], "stopped_early", "{stopped}");
    assert!(stopped["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("stopped early by hyperband")));
}
