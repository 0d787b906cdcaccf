//! The LR range test through the real binary: `hyperdial run -- python3 find_lr.py` (the
//! example on the quickstart's network, through the Python client's `lr_range_test`), then
//! `hyperdial lr-find RUN` from the local store and from a server, in text and JSON; the
//! printed block is a valid sweep parameter; a run that is not a range test is refused.

mod common;

use common::*;
use serde_json::Value;

/// The example script, from this crate's directory.
fn find_lr() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/lr-range-test/find_lr.py");
    path.canonicalize().unwrap().to_str().unwrap().to_string()
}

/// The run id from `hyperdial run`'s `tracking run ID ...` line.
fn run_id(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    err.split("tracking run ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in: {err}"))
        .to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The run's `summary.lr_range_test`, as the client stored it.
fn stored(s: &Scratch, id: &str, source: &[&str]) -> Value {
    let mut args = vec!["runs", "--json"];
    args.extend_from_slice(source);
    let runs = json_of(s, &args);
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("run {id} not listed: {runs}"))
        .clone();
    run["summary"]["lr_range_test"].clone()
}

#[test]
fn lr_find_reads_a_range_test_from_the_local_store() {
    let s = Scratch::new("lr-find-local");
    let script = find_lr();
    // The local store, named (whatever else listens on the default port of this machine).
    let local = ".hyperdial/hyperdial.db";
    let out = s.run(&[
        "run",
        "--db",
        local,
        "--",
        "python3",
        &script,
        "--steps=120",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let id = run_id(&out);
    let summary = stored(&s, &id, &[]);
    assert_eq!(summary["rule"], "tenth_min_loss", "{summary}");
    assert_eq!(summary["steps"], 120);
    assert_eq!(summary["stop"], "diverged", "{summary}");

    // JSON: the same numbers as the client computed while the test ran.
    let found = json_of(&s, &["lr-find", &id, "--format", "json"]);
    assert_eq!(found["run"], id.as_str());
    assert_eq!(found["points"], summary["points"]);
    assert_eq!(found["steps"], 120);
    for key in [
        "suggested_lr",
        "min_loss_lr",
        "steepest_lr",
        "divergence_lr",
    ] {
        let (a, b) = (found[key].as_f64().unwrap(), summary[key].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-12 * b.abs(),
            "{key}: lr-find {a}, client {b}"
        );
    }
    let suggested = found["suggested_lr"].as_f64().unwrap();
    let divergence = found["divergence_lr"].as_f64().unwrap();
    assert!(suggested < divergence);
    let lr = &found["sweep"]["lr"];
    assert_eq!(lr["distribution"], "log_uniform_values");
    assert!((lr["min"].as_f64().unwrap() - suggested / 3.0).abs() < 1e-12);
    assert!((lr["max"].as_f64().unwrap() - suggested * 3.0).abs() < 1e-12);

    // Text: the numbers, and a block that pastes into a valid sweep file.
    let out = s.run(&["lr-find", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = stdout(&out);
    assert!(
        printed.starts_with(&format!("run {id}: LR range test, ")),
        "{printed}"
    );
    assert!(printed.contains("diverged at lr"), "{printed}");
    assert!(printed.contains("minimum loss at lr"), "{printed}");
    let block: String = printed
        .split("parameters:`\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no block in {printed}"))
        .to_string();
    s.write(
        "sweep.yaml",
        &format!(
            "program: train.py\nmethod: random\nmetric: {{name: val_loss, goal: minimize}}\n\
             parameters:\n{block}"
        ),
    );
    let check = s.run(&["validate", "sweep.yaml"]);
    assert!(check.status.success(), "{block}\n{}", text(&check));

    // A run that logged a loss but no learning rate is not a range test.
    let out = s.run(&["run", "--db", local, "--", "python3", "train.py"]);
    assert!(out.status.success(), "{}", text(&out));
    let other = run_id(&out);
    let out = s.run(&["lr-find", &other]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not an LR range test"),
        "{}",
        text(&out)
    );
}

#[test]
fn lr_find_gives_the_same_answer_through_a_server() {
    let s = Scratch::new("lr-find-server");
    let db = s.dir.join("server.db");
    let server = ServerProcess::start(&s, &db, free_port());
    let script = find_lr();
    let out = s.run(&[
        "run",
        "--server",
        &server.url,
        "--",
        "python3",
        &script,
        "--steps=120",
        "--seed=1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let id = run_id(&out);
    let through_server = s.run(&["lr-find", &id, "--server", &server.url]);
    assert!(through_server.status.success(), "{}", text(&through_server));
    let from_store = s.run(&["lr-find", &id, "--db", db.to_str().unwrap()]);
    assert!(from_store.status.success(), "{}", text(&from_store));
    assert_eq!(stdout(&through_server), stdout(&from_store));
    assert!(stdout(&from_store).contains("distribution: log_uniform_values"));
}
