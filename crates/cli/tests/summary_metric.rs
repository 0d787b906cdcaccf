//! A sweep metric written only to the run summary (what Keras' W&B callback does with
//! `best_val_loss`) counts, as in W&B: with the real binary, `tune` runs a bayes sweep whose
//! script logs `val_loss` per epoch and sets `summary["best_val_loss"]` at the end. Every run
//! gets that value as its metric, the sweep has a best run, and bayes fits its model on
//! observations of it.

mod common;

use common::*;
use serde_json::Value;

/// Logs val_loss for 4 epochs; the sweep metric best_val_loss goes to the summary only.
const TRAIN: &str = r#"
import math
import hyperdial
run = hyperdial.init(config={"lr": 0.01})
best = float("inf")
for epoch in range(4):
    val_loss = (math.log10(run.config.lr) + 2) ** 2 + 1.0 / (epoch + 1)
    run.log({"epoch": epoch, "val_loss": val_loss})
    best = min(best, val_loss)
run.summary["best_val_loss"] = best
run.finish()
"#;

#[test]
fn a_summary_only_metric_gives_a_best_run_and_bayes_observations() {
    let s = Scratch::new("summary-metric");
    s.write("train.py", TRAIN);
    // One searched parameter: bayes starts with an initial design of 10 runs, then fits.
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: bayes\nrun_cap: 12\nmetric: {name: best_val_loss, goal: minimize}\n\
         parameters:\n  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--seed", "5"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("best run: #"), "{}", text(&out));

    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), free_port());
    let id = sweep_id(&s, &server.url);
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let mut runs: Vec<Value> = runs.as_array().unwrap().clone();
    runs.sort_by_key(|r| r["number"].as_i64());
    assert_eq!(runs.len(), 12);
    for r in &runs {
        assert_eq!(r["state"], "finished", "{r:#}");
        // The metric is the summary value, exactly as the script computed it.
        let lr = r["params"]["lr"].as_f64().unwrap();
        let expected = (lr.log10() + 2.0).powi(2) + 0.25;
        let metric = r["metric"].as_f64().expect("a metric from the summary");
        assert!((metric - expected).abs() < 1e-12, "{r:#}");
        assert_eq!(r["summary"]["best_val_loss"].as_f64(), Some(metric));
        assert!(r["summary"].get("val_loss").is_some());
    }
    // The best run is the lowest summary value.
    let best = json_of(
        &s,
        &["best", &id, "--format", "json", "--server", &server.url],
    );
    let lowest = runs
        .iter()
        .min_by(|a, b| {
            a["metric"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["metric"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(best["id"], lowest["id"], "{best:#}");
    // Runs 11 and 12 came from the model, fitted on every finished run before them.
    for (k, r) in runs[10..].iter().enumerate() {
        let diag = &r["suggestion"]["diagnostics"];
        assert_eq!(diag["phase"], "model", "{r:#}");
        assert_eq!(diag["observations"].as_u64(), Some(10 + k as u64), "{r:#}");
        assert_eq!(diag["imputed"].as_u64(), Some(0), "{r:#}");
    }
}
