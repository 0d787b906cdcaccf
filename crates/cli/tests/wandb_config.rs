//! W&B's configuration semantics end to end with the real binary: a grid of more than 2^64
//! points under `tune`, a grid with repeated values, `best --format args` in the command's
//! argument style, and the `space` listing.

mod common;

use common::*;

#[test]
fn a_grid_beyond_64_bits_is_not_complete_and_counts_towards_count() {
    let s = Scratch::new("hugegrid");
    let mut yaml = String::from(
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  steps: {value: 1}\n",
    );
    for i in 0..66 {
        yaml.push_str(&format!("  p{i}: {{values: [x, y]}}\n"));
    }
    s.write("sweep.yaml", &yaml);
    let out = s.run(&["tune", "sweep.yaml", "--count", "2", "--port", "0"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("the grid has 73786976294838206464 configurations (more than 2^64)"),
        "{t}"
    );
    assert!(!t.contains("nothing left to run"), "{t}");
    assert!(t.contains("2 finished"), "{t}");
    assert!(!t.contains("/0]"), "{t}");
}

#[test]
fn repeated_grid_values_run_once_and_best_args_follow_the_command() {
    let s = Scratch::new("dupgrid");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\ncommand: ['${env}', '${interpreter}', '${program}', '--steps=1', '--a=${a}', '--b=${b}', '${args_no_hyphens}']\nparameters:\n  a: {values: [2, 1, 2.0, 1]}\n  b: {values: [x, x, y]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--agents", "2", "--port", "0"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // 2 distinct values of a (2 and 1; 2.0 is the same value as 2) times 2 of b.
    assert!(t.contains("4 finished"), "{t}");
    let port = free_port();
    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), port);
    let id = sweep_id(&s, &server.url);
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let mut seen: Vec<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["params"].to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");
    // The value written last stands for a repeated one, as in W&B: 2.0, not 2.
    assert!(seen.iter().any(|p| p.contains("\"a\":2.0")), "{seen:?}");
    // Best: a = 1, b = x (loss = a); printed as the command passes the parameters.
    let best = s.run(&["best", &id, "--format", "args", "--server", &server.url]);
    assert_eq!(
        String::from_utf8_lossy(&best.stdout).trim(),
        "--a=1 --b=x a=1 b=x",
        "{}",
        text(&best)
    );
}

#[test]
fn space_lists_grid_points_and_seeded_draws() {
    let s = Scratch::new("space");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\ncommand: [python3, train.py, '--lr=${lr}', '${args_json}']\nparameters:\n  lr: {values: [0.1, 0.01, 0.1]}\n  opt:\n    parameters:\n      kind: {values: [adam]}\n",
    );
    let out = s.run(&["space", "sweep.yaml", "--grid"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["params"]["lr"], 0.01);
    assert_eq!(lines[1]["config"]["opt"]["kind"], "adam");
    assert_eq!(
        lines[1]["argv"],
        serde_json::json!([
            "python3",
            "train.py",
            "--lr=0.01",
            "{\"lr\": 0.01, \"opt\": {\"kind\": \"adam\"}}"
        ])
    );
    let draw = |seed: &str| {
        let out = s.run(&["space", "sweep.yaml", "--sample", "5", "--seed", seed]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(draw("3").lines().count(), 5);
    assert_eq!(draw("3"), draw("3"));
    let bad = s.run(&["space", "sweep.yaml"]);
    assert!(!bad.status.success());
}
