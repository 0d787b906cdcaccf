//! Conditional parameters (`when`) end to end with the real binary: a grid sweep run by
//! `hyperdial tune`, whose script records its argv and its JSON arguments; every run must
//! carry exactly its active parameters, and the grid must hold exactly the valid
//! configurations, the number `hyperdial validate` prints.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

const SCRIPT: &str = r#"
import json, sys
flags = {}
for a in sys.argv[1:-1]:
    name, _, value = a[2:].partition("=")
    flags[name] = value
with open("runs.jsonl", "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "flags": flags, "json": json.loads(sys.argv[-1])}) + "\n")
print("hyperdial: " + json.dumps({"loss": len(flags)}), flush=True)
"#;

const SWEEP: &str = "program: record.py
method: grid
metric: {name: loss, goal: minimize}
command: ['${interpreter}', '${program}', '${args}', '${args_json}']
parameters:
  opt: {values: [sgd, adam]}
  momentum: {values: [0.0, 0.9], when: {opt: sgd}}
  beta2: {values: [0.99, 0.999, 0.9999], when: {opt: adam}}
  layers: {values: [1, 2]}
  head:
    when: {layers: 2}
    parameters:
      width: {values: [16, 32]}
";

/// The parameters a run must have, from its parents' values.
fn expected(flags: &serde_json::Map<String, Value>) -> HashSet<String> {
    let mut out: HashSet<String> = ["opt", "layers"].map(String::from).into();
    match flags["opt"].as_str().unwrap() {
        "sgd" => out.insert("momentum".into()),
        _ => out.insert("beta2".into()),
    };
    if flags["layers"] == "2" {
        // A nested block is one flag holding it as a dict, as W&B's agent writes it.
        out.insert("head".into());
    }
    out
}

#[test]
fn a_conditional_grid_runs_each_valid_configuration_with_only_its_active_parameters() {
    let s = Scratch::new("conditional-grid");
    s.write("record.py", SCRIPT);
    s.write("sweep.yaml", SWEEP);
    // (2 momenta + 3 betas) × (1 + 2 widths) = 15, not 2 × 2 × 3 × 2 × 2 = 48.
    let out = s.run(&["validate", "sweep.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("grid size") && l.contains("15 configurations")),
        "{shown}"
    );

    let out = s.run(&["tune", "sweep.yaml", "--agents", "2", "--port", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<Value> = std::fs::read_to_string(s.dir.join("runs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 15, "{rows:#?}");
    let mut seen = HashSet::new();
    for row in &rows {
        let flags = row["flags"].as_object().unwrap();
        let names: HashSet<String> = flags.keys().cloned().collect();
        assert_eq!(names, expected(flags), "{row}");
        // ${args_json} holds the same parameters, re-nested.
        let json = row["json"].as_object().unwrap();
        assert_eq!(json.contains_key("head"), names.contains("head"), "{row}");
        assert_eq!(
            json.contains_key("momentum"),
            names.contains("momentum"),
            "{row}"
        );
        assert_eq!(json.len(), names.len(), "{row}");
        assert!(seen.insert(row["argv"].to_string()), "repeated: {row}");
    }

    // The best run (fewest parameters: one layer) prints its active flags only.
    let sweeps = json_of(&s, &["sweeps", "--json"]);
    let id = sweeps[0]["id"].as_str().unwrap().to_string();
    let out = s.run(&["best", &id, "--format", "args"]);
    assert!(out.status.success(), "{}", text(&out));
    let args = String::from_utf8_lossy(&out.stdout).into_owned();
    // `${args}` then `${args_json}`, as the sweep's command passes them.
    let flags: Vec<&str> = args
        .split_whitespace()
        .take_while(|t| t.starts_with("--"))
        .collect();
    assert_eq!(flags.len(), 3, "{args}");
    assert!(flags.contains(&"--layers=1"), "{args}");
    assert!(!args.contains("--head="), "{args}");
    assert_eq!(
        args.contains("--momentum="),
        args.contains("--opt=sgd"),
        "{args}"
    );
}

#[test]
fn validate_reports_broken_conditions_with_file_line_and_key() {
    let s = Scratch::new("conditional-validate");
    s.write(
        "bad.yaml",
        "method: random\nparameters:\n  opt: {values: [sgd, adam]}\n  momentum: {min: 0.0, max: 0.9, when: {optimizer: sgd}}\n  beta2: {values: [0.99], when: {opt: adamw}}\n  a: {values: [1, 2], when: {b: 1}}\n  b: {values: [1, 2], when: {a: 1}}\n",
    );
    let out = s.run(&["validate", "bad.yaml"]);
    assert!(!out.status.success());
    let shown = text(&out);
    for needle in [
        "bad.yaml:4",
        "parameters.momentum.when.optimizer",
        "did you mean `opt`?",
        "bad.yaml:5",
        "never takes the value `adamw`",
        "bad.yaml:6",
        "cycle: a → b → a",
    ] {
        assert!(shown.contains(needle), "missing `{needle}` in:\n{shown}");
    }
}

#[test]
fn the_conditional_example_is_valid() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/conditional/sweep.yaml"
    );
    let s = Scratch::new("conditional-example");
    let out = s.run(&["validate", example]);
    assert!(out.status.success(), "{}", text(&out));
    // Each parameter's condition is listed, and the example run holds only the parameters
    // active for its draw, as `hyperdial space --sample` gives them.
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.contains("(only when optimizer = sgd)"), "{printed}");
    assert!(
        printed.contains("(only when layers in [2, 3])"),
        "{printed}"
    );
    for seed in 0..8 {
        let seed = seed.to_string();
        let out = s.run(&["validate", example, "--json", "--seed", &seed]);
        assert!(out.status.success(), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let out = s.run(&["space", example, "--sample", "1", "--seed", &seed]);
        assert!(out.status.success(), "{}", text(&out));
        let sampled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let example_run = &report["example"];
        assert_eq!(example_run["argv"], sampled["argv"], "seed {seed}");
        let argv = example_run["argv"].to_string();
        let sgd = argv.contains("--optimizer=sgd");
        assert_eq!(argv.contains("--momentum="), sgd, "seed {seed}: {argv}");
        assert_eq!(argv.contains("--beta2="), !sgd, "seed {seed}: {argv}");
    }
}
