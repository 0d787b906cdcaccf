//! Budgets with the real binary: a sweep whose metric stops improving ends on `stagnation`,
//! one that runs out of time on `wall_time`, each with the reason shown by `hyperdial
//! sweeps`, `hyperdial budget` and the API; a running sweep shows what is left and an
//! estimated end.

mod common;

use common::*;

fn sweep_of(s: &Scratch, url: &str, id: &str) -> serde_json::Value {
    let all = json_of(s, &["sweeps", "--json", "--server", url]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == id)
        .cloned()
        .unwrap()
}

#[test]
fn a_sweep_that_stops_improving_ends_on_stagnation() {
    let s = Scratch::new("budget-stagnation");
    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    let url = server.url.clone();
    // Every run reports the same loss: only the first one improves.
    let id = create_sweep(
        &s,
        &url,
        "program: train.py\nmethod: random\nrun_cap: 30\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0]}\n  steps: {value: 2}\nbudget:\n  stagnation: {runs: 3, min_delta: 0.001}\n",
    );
    let out = s.run(&["agent", &id, "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let sweep = sweep_of(&s, &url, &id);
    assert_eq!(sweep["state"], "finished", "{sweep:#}");
    assert_eq!(sweep["end_reason"], "stagnation", "{sweep:#}");
    // One run improved, three did not: the next claim ended the sweep.
    assert_eq!(sweep["total_runs"], 4, "{sweep:#}");
    assert_eq!(sweep["budget"]["runs_since_improvement"], 3, "{sweep:#}");
    let out = s.run(&["sweeps", "--server", &url]);
    assert!(
        text(&out).contains("finished (stagnation)"),
        "{}",
        text(&out)
    );
    let out = s.run(&["budget", &id, "--server", &url]);
    let shown = text(&out);
    assert!(shown.contains("finished (stagnation)"), "{shown}");
    assert!(shown.contains("stagnation:  3 runs"), "{shown}");
    assert!(
        shown.contains("ended: its best value stopped improving"),
        "{shown}"
    );
}

#[test]
fn a_sweep_out_of_wall_time_ends_and_a_running_one_shows_what_is_left() {
    let s = Scratch::new("budget-wall");
    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    let url = server.url.clone();
    let id = create_sweep(
        &s,
        &url,
        "program: train.py\nmethod: random\nrun_cap: 500\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n  sleep: {value: 0.2}\nbudget: {wall_time: 2s}\n",
    );
    let out = s.run(&["agent", &id, "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let sweep = sweep_of(&s, &url, &id);
    assert_eq!(sweep["state"], "finished", "{sweep:#}");
    assert_eq!(sweep["end_reason"], "wall_time", "{sweep:#}");
    assert!(sweep["total_runs"].as_i64().unwrap() < 500, "{sweep:#}");
    assert_eq!(sweep["budget"]["wall_time_left_s"], 0.0, "{sweep:#}");
    // Ended: `budget` says what ended it, not what would be left.
    let shown = text(&s.run(&["budget", &id, "--server", &url]));
    assert!(
        shown.contains("ended: its wall-time budget ran out"),
        "{shown}"
    );
    assert!(shown.contains("wall time:   limit 2s"), "{shown}");
    assert!(!shown.contains(" left"), "{shown}");

    // A sweep with room left: wall time left and an estimated end, from the stagnation rule
    // at the pace runs finished so far.
    let id = create_sweep(
        &s,
        &url,
        "program: train.py\nmethod: random\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\nbudget:\n  wall_time: 1h\n  run_hours: 5\n  stagnation: {runs: 50}\n",
    );
    let out = s.run(&["agent", &id, "--count", "2", "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let sweep = sweep_of(&s, &url, &id);
    assert_eq!(sweep["state"], "running");
    assert!(sweep["end_reason"].is_null());
    let b = &sweep["budget"];
    let left = b["wall_time_left_s"].as_f64().unwrap();
    assert!(left > 0.0 && left <= 3600.0, "{b:#}");
    assert!(b["run_hours_left"].as_f64().unwrap() < 5.0, "{b:#}");
    assert!(b["estimated_end_ms"].as_i64().is_some(), "{b:#}");
    let shown = text(&s.run(&["budget", &id, "--server", &url]));
    assert!(shown.contains("left of 1h 00m"), "{shown}");
    assert!(shown.contains("estimated end: in"), "{shown}");
}

#[test]
fn tune_runs_a_sweep_without_run_cap_until_its_budget_ends_it() {
    let s = Scratch::new("budget-tune");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: random\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0]}\n  steps: {value: 2}\nbudget:\n  stagnation: {runs: 2}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("running until its budget ends it"), "{log}");
    assert!(log.contains("is finished (stagnation): "), "{log}");
    // One improving run and two that are not: three runs, not the 20 of an unbounded sweep.
    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), free_port());
    let sweeps = json_of(&s, &["sweeps", "--json", "--server", &server.url]);
    let sweep = &sweeps[0];
    assert_eq!(sweep["end_reason"], "stagnation", "{sweep:#}\n{log}");
    assert_eq!(sweep["total_runs"], 3, "{sweep:#}\n{log}");
}

#[test]
fn tune_count_up_to_run_cap_or_a_grid_finishes_the_sweep_with_its_last_run() {
    let s = Scratch::new("budget-cap-count");
    for (file, body, reason) in [
        (
            "capped.yaml",
            "program: train.py\nmethod: random\nrun_cap: 3\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n  steps: {value: 1}\n",
            "run_cap",
        ),
        (
            "grid.yaml",
            "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [0.1, 0.2, 0.3]}\n  steps: {value: 1}\n",
            "exhausted",
        ),
    ] {
        s.write(file, body);
        // `--count` stops the agent after its third run: no claim comes after the last run.
        let out = s.run(&["tune", file, "--count", "3", "--port", "0"]);
        assert!(out.status.success(), "{}", text(&out));
        let log = text(&out);
        assert!(!log.contains("is running"), "{file}: {log}");
        let server =
            ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), free_port());
        let sweeps = json_of(&s, &["sweeps", "--json", "--server", &server.url]);
        let sweep = sweeps
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["end_reason"] == reason || w["state"] == "running")
            .cloned()
            .unwrap();
        assert_eq!(sweep["state"], "finished", "{file}: {sweep:#}\n{log}");
        assert_eq!(sweep["end_reason"], reason, "{file}: {sweep:#}\n{log}");
        assert_eq!(sweep["total_runs"], 3, "{file}: {sweep:#}\n{log}");
        let out = s.run(&["sweeps", "--server", &server.url]);
        assert!(
            text(&out).contains(&format!("finished ({reason})")),
            "{}",
            text(&out)
        );
    }
}
