//! A two-objective sweep through the real binary: `validate` lists the objectives, `tune`
//! runs a `tpe` sweep of a script that prints both objectives on one metric line (one run in
//! five fails, so the front leaves it out), and `hyperdial best` prints exactly the
//! non-dominated runs, computed here independently from `runs --json`, reading the store
//! directly and through a server alike; `--format csv` and `json` export the same runs.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

const SCRIPT: &str = r#"
import argparse, json, sys
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--y", type=float)
args, _ = p.parse_known_args()
if args.y > 0.8:
    sys.exit(3)
a = args.x
b = (1.0 - args.x) ** 2 + args.y
print("hyperdial: " + json.dumps({"a": a, "b": b}), flush=True)
"#;

const SWEEP: &str = "\
program: two.py
method: tpe
run_cap: 16
metrics:
  - {name: a, goal: minimize}
  - {name: b, goal: minimize}
parameters:
  x: {min: 0.0, max: 1.0}
  y: {min: 0.0, max: 1.0}
";

/// The numbers of the runs no other finished run dominates, from `runs --json`.
fn non_dominated(runs: &[Value]) -> BTreeSet<u64> {
    let points: Vec<(u64, f64, f64)> = runs
        .iter()
        .filter(|r| r["state"] == "finished")
        .map(|r| {
            (
                r["number"].as_u64().unwrap(),
                r["summary"]["a"].as_f64().unwrap(),
                r["summary"]["b"].as_f64().unwrap(),
            )
        })
        .collect();
    points
        .iter()
        .filter(|p| {
            !points
                .iter()
                .any(|q| q.1 <= p.1 && q.2 <= p.2 && (q.1 < p.1 || q.2 < p.2))
        })
        .map(|p| p.0)
        .collect()
}

/// The run numbers of the default output of `best` (lines `#N ID a=.. b=..  x=.. y=..`).
fn listed(out: &str) -> BTreeSet<u64> {
    out.lines()
        .filter(|l| !l.starts_with("# "))
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn best_prints_the_pareto_front_of_a_two_objective_sweep() {
    let s = Scratch::new("multi-objective");
    s.write("two.py", SCRIPT);
    s.write("sweep.yaml", SWEEP);

    let out = s.run(&["validate", "sweep.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("a (minimize), b (minimize) (Pareto front)"),
        "{}",
        text(&out)
    );

    let db = s.dir.join("hd.db");
    let db = db.to_str().unwrap();
    let out = s.run(&[
        "tune",
        "sweep.yaml",
        "--db",
        db,
        "--seed",
        "5",
        "--no-keep-serving",
        "--port",
        &free_port().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("# Pareto front of sweep"),
        "{}",
        text(&out)
    );

    // Each run's line shows both objectives, and no line ends in blanks.
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    let ended: Vec<&str> = log.lines().filter(|l| l.contains(" finished a ")).collect();
    assert!(!ended.is_empty(), "{log}");
    assert!(ended.iter().all(|l| l.contains(" b ")), "{log}");
    assert!(log.lines().all(|l| l == l.trim_end()), "{log:?}");

    let sweeps = json_of(&s, &["sweeps", "--json", "--db", db]);
    let id = sweeps[0]["id"].as_str().unwrap().to_string();
    assert!(sweeps[0]["best"].is_null(), "{}", sweeps[0]);
    let runs = json_of(&s, &["runs", &id, "--json", "--db", db]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 16);
    assert!(
        runs.iter().any(|r| r["state"] == "failed"),
        "some run should have failed: y > 0.8 in 16 draws"
    );
    let expected = non_dominated(runs);
    assert!(!expected.is_empty());
    // The table shows each objective's final value, the values the front is made of, not
    // one "metric" (the first objective's best value) in their place.
    let table = String::from_utf8_lossy(&s.run(&["runs", &id, "--db", db]).stdout).to_string();
    let header: Vec<&str> = table
        .lines()
        .find(|l| l.contains("state"))
        .unwrap()
        .trim_matches(|c: char| c == '│' || c.is_whitespace())
        .split_whitespace()
        .collect();
    assert_eq!(header[..6], ["#", "run", "state", "a", "b", "x"], "{table}");
    let listing = String::from_utf8_lossy(&s.run(&["sweeps", "--db", db]).stdout).to_string();
    assert!(
        listing.contains(&format!("front of {}", expected.len())),
        "{listing}"
    );

    // `refine` and `repeat` rank by one metric: on two objectives they refuse, and say why.
    for args in [
        vec!["refine", &id, "--db", db],
        vec!["repeat", &id, "--db", db],
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("2 objectives (a, b)") && said.contains(&format!("hyperdial best {id}")),
            "{args:?}: {said}"
        );
    }

    let out = s.run(&["best", &id, "--db", db]);
    assert!(out.status.success(), "{}", text(&out));
    let local = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(listed(&local), expected, "{local}");

    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    let out = s.run(&["best", &id, "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), local);

    let out = s.run(&["best", &id, "--format", "csv", "--db", db]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("number,run_id,a,b,x,y"), "{csv}");
    let numbers: BTreeSet<u64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, expected);

    let front = json_of(&s, &["best", &id, "--format", "json", "--db", db]);
    assert_eq!(front["objectives"][1]["name"], "b");
    let numbers: BTreeSet<u64> = front["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, expected);

    // The route itself: every finished run is listed, layer by layer, the front first.
    let body: Value = serde_json::from_str(&http_get(&format!(
        "{}/api/v1/sweeps/{id}/front",
        server.url
    )))
    .unwrap();
    let ranked = body["runs"].as_array().unwrap();
    let finished = runs.iter().filter(|r| r["state"] == "finished").count();
    assert_eq!(ranked.len(), finished);
    let front: BTreeSet<u64> = ranked
        .iter()
        .filter(|r| r["rank"] == 0)
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(front, expected);
}

#[test]
fn the_multi_objective_example_runs_under_tune() {
    let s = Scratch::new("multi-objective-example");
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/multi-objective");
    for name in ["sweep.yaml", "model.py"] {
        s.write(name, &std::fs::read_to_string(example.join(name)).unwrap());
    }
    let db = s.dir.join("hd.db");
    let out = s.run(&[
        "tune",
        "sweep.yaml",
        "--count",
        "8",
        "--db",
        db.to_str().unwrap(),
        "--no-keep-serving",
        "--port",
        &free_port().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("8 finished"), "{log}");
    assert!(log.contains("# Pareto front of sweep"), "{log}");
    assert!(log.contains("error="), "{log}");
    assert!(log.contains("latency_ms="), "{log}");
}
