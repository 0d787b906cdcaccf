//! Repeats over the real API: `POST /sweeps/{id}/runs` queues runs with given parameters and
//! seeds, handed out before the strategy suggests anything new, not counted toward `run_cap`,
//! refused (without writing anything) for a run of another sweep, an unknown parameter or a
//! bad count; a sweep that ended on its budget reopens for them and finishes again; `GET
//! /sweeps/{id}/noise` reports them.

mod common;

use common::start;
use serde_json::{json, Value};

async fn claim(s: &common::Server, sweep: &str) -> (u16, Value) {
    let (status, body) = s
        .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
        .await;
    (status, body["run"].clone())
}

async fn finish_with(s: &common::Server, run: &Value, loss: f64) {
    let id = run["id"].as_str().unwrap();
    let (status, answer) = s
        .post(
            &format!("/api/v1/runs/{id}/metrics"),
            json!({"points": [{"values": {"loss": loss}}]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = s
        .post(
            &format!("/api/v1/runs/{id}/finish"),
            json!({"exit_code": 0}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn repeats_come_first_do_not_count_toward_run_cap_and_are_reported() {
    let s = start(None).await;
    let id = s
        .sweep(
            "program: t.py\nmethod: random\nrun_cap: 3\nmetric: {name: loss}\n\
             parameters:\n  x: {min: 0.0, max: 1.0}\n  seed: {value: 0}\n",
        )
        .await;
    let (_, a) = claim(&s, &id).await;
    finish_with(&s, &a, 0.5).await;
    let path = format!("/api/v1/sweeps/{id}/runs");

    // Refusals write nothing.
    let other = s
        .sweep("program: t.py\nmethod: random\nparameters: {y: {min: 0.0, max: 1.0}}\n")
        .await;
    let (_, foreign) = claim(&s, &other).await;
    for (body, status) in [
        (
            json!({"runs": [{"repeat_of": foreign["id"], "seed": 1}]}),
            400,
        ),
        (json!({"runs": []}), 400),
        (json!({"runs": [{"repeat_of": "nope", "seed": 1}]}), 400),
        (
            json!({"runs": [{"repeat_of": a["id"], "params": {"rng": 1}, "seed": 1}]}),
            400,
        ),
        (
            json!({"runs": [{"repeat_of": a["id"], "seed": "one"}]}),
            400,
        ),
        (
            json!({"runs": [{"repeat_of": a["id"], "seed": 1, "extra": 1}]}),
            400,
        ),
        // Values the parameter cannot take: of another type, out of its range, or a number
        // for the seed parameter that is not the run's seed.
        (
            json!({"runs": [{"repeat_of": a["id"], "params": {"x": "str"}, "seed": 1}]}),
            400,
        ),
        (
            json!({"runs": [{"repeat_of": a["id"], "params": {"x": null}, "seed": 1}]}),
            400,
        ),
        (
            json!({"runs": [{"repeat_of": a["id"], "params": {"x": {"o": 1}}, "seed": 1}]}),
            400,
        ),
        (
            json!({"runs": [{"repeat_of": a["id"], "params": {"x": 1e300}, "seed": 1}]}),
            400,
        ),
        (
            json!({"runs": [{"repeat_of": a["id"], "params": {"seed": 5}, "seed": 1}]}),
            400,
        ),
    ] {
        let (got, answer) = s.post(&path, body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
    }
    let (_, said) = s
        .post(
            &path,
            json!({"runs": [{"repeat_of": a["id"], "params": {"x": 2.5}, "seed": 1}]}),
        )
        .await;
    assert_eq!(
        said["error"],
        "`x`: 2.5 is not a value of that parameter (uniform [0, 1]); a repeat takes the sweep's values, or its seed (1) for the seed parameter",
        "{said}"
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"repeat_of": a["id"], "seed": i}))
        .collect();
    let (got, _) = s.post(&path, json!({ "runs": too_many })).await;
    assert_eq!(got, 400);
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["total_runs"], 1, "{sweep:#}");

    let seeds: Vec<Value> = (1..=3)
        .map(|n| json!({"repeat_of": a["id"], "params": {"seed": n}, "seed": n}))
        .collect();
    let (status, queued) = s.post(&path, json!({ "runs": seeds })).await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["runs"].as_array().unwrap().len(), 3);
    assert_eq!(queued["runs"][0]["state"], "queued");
    assert_eq!(queued["sweep"]["counts"]["queued"], 3, "{queued:#}");
    // The three repeats are handed out first, in order, each with its seed in params and config.
    for n in 1..=3 {
        let (status, r) = claim(&s, &id).await;
        assert_eq!(status, 200);
        assert_eq!(r["repeat_of"], a["id"]);
        assert_eq!(
            (r["seed"].clone(), r["params"]["seed"].clone()),
            (json!(n), json!(n))
        );
        assert_eq!(r["params"]["x"], a["params"]["x"]);
        assert_eq!(r["config"]["seed"], n);
        finish_with(&s, &r, 0.5 + 0.01 * n as f64).await;
    }
    // They did not use up run_cap: two more suggestions, then the sweep is over.
    for _ in 0..2 {
        let (status, r) = claim(&s, &id).await;
        assert_eq!(status, 200);
        assert!(r["repeat_of"].is_null(), "{r:#}");
        finish_with(&s, &r, 0.9).await;
    }
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);

    let (status, report) = s.get(&format!("/api/v1/sweeps/{id}/noise")).await;
    assert_eq!(status, 200, "{report}");
    let c = &report["configurations"][0];
    assert_eq!(
        (c["run"].clone(), c["count"].clone()),
        (a["id"].clone(), json!(3))
    );
    assert_eq!(c["seeds"], json!([1, 2, 3]));
    assert!(
        (report["seed_noise"].as_f64().unwrap() - 0.01).abs() < 1e-9,
        "{report:#}"
    );
    assert!(report["comparison"].is_null());
    let (status, _) = s.get("/api/v1/sweeps/nope/noise").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_sweep_ended_by_its_budget_runs_its_repeats_and_finishes_again() {
    let s = start(None).await;
    let id = s
        .sweep(
            "program: t.py\nmethod: random\nmetric: {name: loss}\nparameters: {x: {min: 0.0, max: 1.0}}\n\
             budget: {stagnation: {runs: 1, min_delta: noise}}\n",
        )
        .await;
    let (_, a) = claim(&s, &id).await;
    finish_with(&s, &a, 0.5).await;
    let (_, b) = claim(&s, &id).await;
    finish_with(&s, &b, 0.6).await;
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["end_reason"], "stagnation", "{sweep:#}");

    let seeds: Vec<Value> = (1..=2)
        .map(|n| json!({"repeat_of": a["id"], "seed": n}))
        .collect();
    let (status, queued) = s
        .post(
            &format!("/api/v1/sweeps/{id}/runs"),
            json!({ "runs": seeds }),
        )
        .await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["sweep"]["state"], "running");
    // The spent budget does not cancel what was asked for by hand.
    for n in 1..=2 {
        let (status, r) = claim(&s, &id).await;
        assert_eq!(status, 200, "repeat {n}");
        assert_eq!(r["seed"], n);
        finish_with(&s, &r, 0.5 + 0.1 * n as f64).await;
    }
    let (status, _) = claim(&s, &id).await;
    assert_eq!(status, 410);
    let (_, sweep) = s.get(&format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(sweep["state"], "finished", "{sweep:#}");
    // min_delta: noise now stands at the measured noise (std of 0.6 and 0.7).
    let noise = 0.1 / 2f64.sqrt();
    assert!(
        (sweep["budget"]["min_delta"].as_f64().unwrap() - noise).abs() < 1e-9,
        "{sweep:#}"
    );
}
