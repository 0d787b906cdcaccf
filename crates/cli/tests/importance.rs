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
    // How many more runs the rule needs, and the command that runs them on this store.
    assert!(
        few.contains(
            "to get importances: 6 more finished runs with loss (at least 10 in all); run them \
             with `hyperdial tune sweep.yaml --count 6`"
        ),
        "{few}"
    );
    // The sweep has no stopped-early runs: counting them is not suggested.
    assert!(!few.contains("stopped_early"), "{few}");
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
        text(&out).contains("needs at least 10 runs in states failed of its own with loss"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("stopped_early"), "{}", text(&out));
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

/// Logs loss = q + 1/i for i = 1..=9, one value every 0.15 s.
const CURVES: &str = r#"
import argparse, time
p = argparse.ArgumentParser()
p.add_argument("--q", type=float)
args, _ = p.parse_known_args()
for i in range(1, 10):
    print("hyperdial: {\"loss\": %r}" % (args.q + 1.0 / i), flush=True)
    time.sleep(0.15)
"#;

/// A grid of four curves under hyperband.
const HYPERBAND: &str = "program: train.py
method: grid
metric: {name: loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 2, eta: 2}
parameters:
  q: {values: [0.1, 0.5, 0.9, 0.3]}
";

/// The same curves searched at random, a sweep that goes on after the agent's four runs.
const RANDOM_HYPERBAND: &str = "program: train.py
method: random
run_cap: 20
metric: {name: loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 2, eta: 2}
parameters:
  q: {values: [0.1, 0.5, 0.9, 0.3]}
";

/// On a server, too few runs are told the `hyperdial agent` command that reaches it (with
/// `--server`, as `sweep` prints it), how many more the rule needs, and to count the sweep's
/// stopped-early runs only when it has some; a sweep that has ended is told to run a new
/// sweep instead, since agents would get no run of it.
#[test]
fn importance_on_a_server_suggests_agents_of_that_server() {
    let s = Scratch::new("importance-server");
    s.write("train.py", CURVES);
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let url = server.url.clone();
    // Four runs of a sweep that goes on; hyperband may stop some of them.
    let id = create_sweep(&s, &url, RANDOM_HYPERBAND);
    let out = s.run(&["agent", &id, "--server", &url, "--count", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    let info = json_of(&s, &["sweeps", "--json", "--server", &url]);
    assert_eq!(info[0]["state"], "running", "{info:#}");
    let finished = info[0]["counts"]["finished"].as_u64().unwrap_or(0);
    let stopped = info[0]["counts"]["stopped_early"].as_u64().unwrap_or(0);
    assert_eq!(finished + stopped, 4, "{info:#}");

    let out = s.run(&["importance", &id, "--server", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let few = String::from_utf8_lossy(&out.stderr).to_string();
    let more = 10 - finished;
    assert!(
        few.contains(&format!(
            "to get importances: {more} more finished runs with loss (at least 10 in all); \
             start agents with `hyperdial agent {id} --server {url}`"
        )),
        "{few}"
    );
    assert!(!few.contains("hyperdial tune"), "{few}");
    // Counting the stopped-early runs is suggested when, and only when, there are some.
    let counting =
        format!("`hyperdial importance {id} --states finished,stopped_early --server {url}`");
    assert_eq!(few.contains(&counting), stopped > 0, "{few}");

    // The grid of the same four points ends with its last run: no agent would get a run.
    let grid = create_sweep(&s, &url, HYPERBAND);
    let out = s.run(&["agent", &grid, "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = s.run(&["importance", &grid, "--server", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let few = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        few.contains(&format!(
            "sweep {grid} has ended (finished) and runs no more trials; a new sweep of its \
             file (`hyperdial sweep sweep.yaml --server {url}` and agents) needs at least 10 \
             finished runs of its own with loss"
        )),
        "{few}"
    );
    assert!(!few.contains("hyperdial agent"), "{few}");
}
