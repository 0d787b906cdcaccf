//! Model-based search end to end with the real binary: `hyperdial tune` with 4 agents on a
//! `bayes` and a `tpe` sweep of a smooth function. The script appends what it ran and the
//! loss it got to `results.jsonl`, which the test reads back.

mod common;

use common::*;

const QUAD: &str = r#"
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--lr", type=float)
p.add_argument("--opt")
args, _ = p.parse_known_args()
import math
loss = (args.x - 0.3) ** 2 + (math.log10(args.lr) + 2.0) ** 2 / 4 + (0.0 if args.opt == "adam" else 0.3)
with open("results.jsonl", "a") as f:
    f.write(json.dumps({"x": args.x, "lr": args.lr, "opt": args.opt, "loss": loss}) + "\n")
print("hyperdial: " + json.dumps({"loss": loss}), flush=True)
"#;

fn tune(method: &str, run_cap: usize) {
    let s = Scratch::new(&format!("search-{method}"));
    s.write("quad.py", QUAD);
    std::fs::write(
        s.dir.join("sweep.yaml"),
        format!(
            "program: quad.py\nmethod: {method}\nrun_cap: {run_cap}\nmetric: {{name: loss, goal: minimize}}\nparameters:\n  x: {{min: -2.0, max: 2.0}}\n  lr: {{distribution: log_uniform_values, min: 1e-5, max: 1.0}}\n  opt: {{values: [adam, sgd, rmsprop]}}\n"
        ),
    )
    .unwrap();
    let out = s.run(&["tune", "sweep.yaml", "--agents", "4", "--port", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let text = std::fs::read_to_string(s.dir.join("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), run_cap, "{text}");
    let configs: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| format!("{} {} {}", r["x"], r["lr"], r["opt"]))
        .collect();
    assert_eq!(configs.len(), run_cap, "repeated configurations: {text}");
    // The guided runs concentrate where the loss is low: the median loss of the later half of
    // the runs is below the median of the first eight (the quasi-random initial design).
    // Medians are less at the mercy of one lucky early point, or of one exploring late run far
    // out on this loss's steep tails (up to 6 at the edges, against 0.05 near the optimum),
    // than means or minima. The run cap is what keeps this claim from failing by chance: in a
    // seeded simulation of four agents (runs finishing in random order, three in flight at each
    // ask), `tpe`, which keeps exploring (its prior component and its narrow bad-group kernels),
    // failed it in 33 of 4,000 sweeps at 40 runs, 2 at 50 and 0 at 60; `bayes` in 0 of 100 at
    // 40; `random` fails it in about half of them, so the claim tells a model from none.
    let median = |rs: &[serde_json::Value]| {
        let mut v: Vec<f64> = rs.iter().map(|r| r["loss"].as_f64().unwrap()).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let (first, last) = (median(&rows[..8]), median(&rows[run_cap / 2..]));
    assert!(
        last < first,
        "{method}: median loss of the later half of the runs {last} ≥ that of the first eight {first}\n{text}"
    );
}

#[test]
fn bayes_with_four_agents_improves_on_its_initial_design() {
    tune("bayes", 40);
}

#[test]
fn tpe_with_four_agents_improves_on_its_initial_design() {
    tune("tpe", 60);
}

const GRIDLIKE: &str = r#"
import argparse, json, math
p = argparse.ArgumentParser()
p.add_argument("--batch")
p.add_argument("--act")
args, _ = p.parse_known_args()
loss = (math.log2(int(args.batch)) - 5) ** 2 + {"relu": 0.0, "tanh": 0.3, "gelu": 0.1}[args.act]
with open("results.jsonl", "a") as f:
    f.write(json.dumps({"batch": args.batch, "act": args.act, "loss": loss}) + "\n")
print("hyperdial: " + json.dumps({"loss": loss}), flush=True)
"#;

/// A `bayes` sweep over a 12-point space (an ordered `values` list of batch sizes and a
/// categorical one) with 2 agents: 12 distinct configurations, each passed as the integer
/// written in the file, then the sweep ends by itself as a grid does.
#[test]
fn bayes_over_a_finite_space_runs_each_configuration_once_then_ends() {
    let s = Scratch::new("search-finite");
    s.write("gridlike.py", GRIDLIKE);
    std::fs::write(
        s.dir.join("sweep.yaml"),
        "program: gridlike.py\nmethod: bayes\nmetric: {name: loss, goal: minimize}\nparameters:\n  batch: {values: [16, 32, 64, 128]}\n  act: {values: [relu, tanh, gelu]}\n",
    )
    .unwrap();
    let out = s.run(&["tune", "sweep.yaml", "--agents", "2", "--port", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let results = std::fs::read_to_string(s.dir.join("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 12, "{results}");
    let configs: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| format!("{} {}", r["batch"], r["act"]))
        .collect();
    assert_eq!(configs.len(), 12, "repeated configurations: {results}");
    assert!(
        rows.iter()
            .all(|r| ["16", "32", "64", "128"].contains(&r["batch"].as_str().unwrap())),
        "{results}"
    );
}
