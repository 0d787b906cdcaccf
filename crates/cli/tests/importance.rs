//! `hyperdial importance SWEEP` with the real binary, on the store `tune` writes (no server,
//! as `best` reads it): too few runs says so and what to do, and exits 1 (text and `--json`);
//! once the sweep has enough runs,
//! a table of the parameters by importance with their spread; `--json` is the API's answer;
//! `--states` chooses the runs that count.

mod common;

use common::*;

/// `loss = a + 0.5 if b == y`: `a` matters most, `c` not at all.
const SWEEP: &str = "program: train.py
method: random
run_cap: 14
metric: {name: loss, goal: minimize}
parameters:
  a: {min: 0.1, max: 2.0}
  b: {values: [x, y]}
  c: {min: 0.0, max: 1.0}
  steps: {value: 1}
";

#[test]
fn importance_says_when_runs_are_too_few_then_ranks_the_parameters() {
    let s = Scratch::new("importance");
    s.write("sweep.yaml", SWEEP);
    let tune = |count: &str| {
        let out = s.run(&[
            "tune",
            "sweep.yaml",
            "--port",
            "0",
            "--seed",
            "3",
            "--count",
            count,
            "--no-keep-serving",
        ]);
        assert!(out.status.success(), "{}", text(&out));
    };
    tune("4");
    let sweeps = json_of(&s, &["sweeps", "--json"]);
    let id = sweeps[0]["id"].as_str().unwrap().to_string();

    // 4 finished runs: no importances, and what to do, on standard error; exit status 1.
    let out = s.run(&["importance", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let few = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        few.contains("evidence: too_few_runs: 4 finished runs with loss, at least 10 needed"),
        "{few}"
    );
    assert!(few.contains("run more of the sweep"), "{few}");
    assert!(
        few.contains(&format!(
            "`hyperdial importance {id} --states finished,stopped_early`"
        )),
        "{few}"
    );
    assert!(few.contains("left out by default"), "{few}");
    // The correlations still go to standard output.
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("parameter importance for loss (minimize)"),
        "{table}"
    );
    assert!(!table.contains("too_few_runs"), "{table}");
    // --json: the answer on standard output, and still exit status 1.
    let out = s.run(&["importance", &id, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    assert_eq!(answer["evidence"], "too_few_runs", "{answer:#}");
    assert_eq!(answer["runs"], 4);

    // The rest of the sweep: 14 runs, enough to rank.
    tune("10");
    let out = s.run(&["importance", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let ranked = text(&out);
    assert!(
        ranked.contains(&format!(
            "parameter importance for loss (minimize) in sweep {id}: 14 finished runs with loss"
        )),
        "{ranked}"
    );
    assert!(ranked.contains("evidence: enough (14 runs"), "{ranked}");
    assert_eq!(out.stderr, b"", "{ranked}");
    let rows: Vec<&str> = ranked
        .lines()
        .filter(|l| l.starts_with('│') && l.contains(" ± ") && !l.contains("parameter"))
        .map(|l| l.trim_start_matches(['│', ' ']))
        .collect();
    assert_eq!(rows.len(), 3, "one row per searched parameter: {ranked}");
    // `a` spans most of the loss's range: it comes first.
    assert!(rows[0].starts_with("a "), "{ranked}");
    for name in ["b ", "c "] {
        assert!(rows.iter().any(|r| r.starts_with(name)), "{ranked}");
    }

    // --json is the API's answer; --db names the store `tune` wrote.
    let answer = json_of(
        &s,
        &[
            "importance",
            &id,
            "--json",
            "--db",
            ".hyperdial/hyperdial.db",
        ],
    );
    assert_eq!(answer["evidence"], "enough", "{answer:#}");
    assert_eq!(answer["runs"], 14);
    assert_eq!(answer["metric"], "loss");
    assert_eq!(answer["params"][0]["name"], "a", "{answer:#}");
    assert!(answer["params"][0]["importance_sd"].is_f64(), "{answer:#}");

    // --states: the runs of those states (none failed here).
    let out = s.run(&["importance", &id, "--json", "--states", "failed"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failed["states"], serde_json::json!(["failed"]));
    assert_eq!(failed["runs"], 0);
    assert_eq!(failed["evidence"], "too_few_runs");
    let out = s.run(&["importance", &id, "--states", "failed"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("--states failed,stopped_early`"),
        "{}",
        text(&out)
    );
    // A state no run ends in is refused by the server, with the word.
    let out = s.run(&["importance", &id, "--states", "running"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("running"), "{}", text(&out));
    // An unknown sweep is named in the store read.
    let out = s.run(&["importance", "nosuchsweep"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no sweep nosuchsweep in"),
        "{}",
        text(&out)
    );
}
