//! Early termination end to end: known learning curves, the runs the rule must stop, at the
//! rung it must, the stopped run's process group gone, and the rule's state kept across a
//! pause, a resume and a server restart.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Logs loss = q + 1/i for i = 1..=9, one value every 0.15 s; starts a background child in
/// its process group and records its pid, so the test can check the group is gone.
const SCRIPT: &str = r#"
import argparse, os, subprocess, time
p = argparse.ArgumentParser()
p.add_argument("--q", type=float)
args, _ = p.parse_known_args()
child = subprocess.Popen(["sleep", "300"])
with open("child-%s.pid" % args.q, "w") as f:
    f.write(str(child.pid))
for i in range(1, 10):
    print("hyperdial: {\"loss\": %r}" % (args.q + 1.0 / i), flush=True)
    time.sleep(0.15)
"#;

fn alive(pid: i32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn hyperband_stops_exactly_the_run_it_should_and_keeps_state_across_pause_and_restart() {
    let s = Scratch::new("hyperband");
    s.write("train.py", SCRIPT);
    // Bands after 2, 4, 8 values (W&B: min_iter 2, eta 2; strict by default). Runs in grid
    // order q = 0.1, 0.5, 0.9, 0.3, one at a time. As worked out with the rule of
    // crates/search/src/stopping.rs, only q = 0.9 stops: at band 2 its second value 1.4 is
    // above the middle of 0.6, 1.0, 1.4 (threshold 1.0).
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n\
         early_terminate: {type: hyperband, min_iter: 2, eta: 2}\nparameters:\n  q: {values: [0.1, 0.5, 0.9, 0.3]}\n",
    );
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let url = server.url.clone();
    let created = json_of(&s, &["sweep", "sweep.yaml", "--json", "--server", &url]);
    let id = created["id"].as_str().unwrap().to_string();

    // Two runs, then pause, restart the server, resume, and the remaining two.
    let out = s.run(&["agent", &id, "--count", "2", "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    s.run(&["pause", &id, "--server", &url]);
    server.kill9();
    let server = ServerProcess::start(&s, &db, port);
    s.run(&["resume", &id, "--server", &server.url]);
    let out = s.run(&["agent", &id, "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));

    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap();
    let by_q = |q: f64| {
        runs.iter()
            .find(|r| r["params"]["q"].as_f64() == Some(q))
            .unwrap()
    };
    for q in [0.1, 0.5, 0.3] {
        let r = by_q(q);
        assert_eq!(r["state"], "finished", "q={q}: {r:#}");
        assert_eq!(r["steps"], 9);
    }
    let stopped = by_q(0.9);
    assert_eq!(stopped["state"], "stopped_early", "{stopped:#}");
    let info = &stopped["stop_info"];
    assert_eq!(info["rule"], "hyperband");
    // Judged at the first batch that brings it to a band: band 2 (2 or 3 values), or band 4
    // if the agent's first batch already held 4 or more (then 1.15 against 0.35, 0.75, 1.15).
    let rung = info["rung"].as_f64().unwrap();
    let (value, threshold) = match rung as i64 {
        2 => (0.9 + 1.0 / 2.0, 0.5 + 1.0 / 2.0),
        4 => (0.9 + 1.0 / 4.0, 0.5 + 1.0 / 4.0),
        _ => panic!("judged at an unexpected band: {info}"),
    };
    assert!(
        (info["value"].as_f64().unwrap() - value).abs() < 1e-12,
        "{info}"
    );
    assert!(
        (info["threshold"].as_f64().unwrap() - threshold).abs() < 1e-12,
        "{info}"
    );
    // Stopped within a couple of steps of the decision, long before its 9.
    assert!(stopped["steps"].as_i64().unwrap() < 7, "{stopped:#}");
    assert!(stopped["error"]
        .as_str()
        .unwrap()
        .contains(&format!("stopped early by hyperband at band {rung}")));
    // `hyperdial runs` shows why, value and threshold whole (6 significant digits).
    let table = s.run(&["runs", &id, "--server", &server.url]);
    let shown = |x: f64| format!("{}", (x * 1e6).round() / 1e6);
    let why = format!(
        "hyperband at band {rung}: loss {} worse than threshold {}",
        shown(value),
        shown(threshold)
    );
    assert!(text(&table).contains(&why), "{why}: {}", text(&table));
    // The stopped run's process group is gone: its background child was killed too.
    std::thread::sleep(Duration::from_millis(300));
    let pid: i32 = std::fs::read_to_string(s.dir.join("child-0.9.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "the stopped run's child {pid} is still alive");
}

#[test]
fn asha_on_a_named_step_key() {
    let s = Scratch::new("asha");
    // Progress is the logged `epoch` (0.5 per line): rungs at epoch 1 and 3 (grace 1, rf 3).
    s.write(
        "train.py",
        r#"
import argparse, time
p = argparse.ArgumentParser()
p.add_argument("--q", type=float)
args, _ = p.parse_known_args()
for i in range(1, 9):
    print("hyperdial: {\"epoch\": %r, \"loss\": %r}" % (i * 0.5, args.q + 1.0 / i), flush=True)
    time.sleep(0.15)
"#,
    );
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss}\n\
         early_terminate: {type: asha, grace_period: 1, reduction_factor: 3, step_key: epoch}\n\
         parameters:\n  q: {values: [0.1, 0.2, 0.9]}\n",
    );
    let port = free_port();
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), port);
    let created = json_of(
        &s,
        &["sweep", "sweep.yaml", "--json", "--server", &server.url],
    );
    let id = created["id"].as_str().unwrap().to_string();
    let out = s.run(&["agent", &id, "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    let runs: Value = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let states: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    // q=0.1 first at every rung: goes on. q=0.2 at epoch 1: 2 values, keep ⌈2/3⌉ = 1 → stops.
    // q=0.9 at epoch 1: worse than both earlier arrivals → stops.
    assert_eq!(
        states,
        ["finished", "stopped_early", "stopped_early"],
        "{runs:#}"
    );
    let info = &runs[1]["stop_info"];
    assert_eq!(
        (
            info["rule"].as_str(),
            info["rung"].as_f64(),
            info["step_key"].as_str()
        ),
        (Some("asha"), Some(1.0), Some("epoch"))
    );
}

/// Logs loss = q + 1/i for up to 40 steps through the Python client and ends cleanly (exit
/// code 0) as soon as `run.should_stop()` says so: the cooperative stop of docs/python.md.
const COOPERATIVE: &str = r#"
import argparse, time
import hyperdial
p = argparse.ArgumentParser()
p.add_argument("--q", type=float)
args, _ = p.parse_known_args()
with hyperdial.init() as run:
    for i in range(1, 41):
        run.log({"loss": args.q + 1.0 / i})
        time.sleep(0.1)
        if run.should_stop():
            break
"#;

#[test]
fn a_run_that_ends_cleanly_when_told_to_stop_is_stopped_early() {
    let s = Scratch::new("cooperative-stop");
    s.write("train.py", COOPERATIVE);
    // As in the test above: only q = 0.9 is stopped (at band 2, or 4).
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n\
         early_terminate: {type: hyperband, min_iter: 2, eta: 2}\nparameters:\n  q: {values: [0.1, 0.5, 0.9]}\n",
    );
    let db = s.dir.join("db.sqlite");
    let server = ServerProcess::start(&s, &db, free_port());
    let created = json_of(
        &s,
        &["sweep", "sweep.yaml", "--json", "--server", &server.url],
    );
    let id = created["id"].as_str().unwrap().to_string();
    let out = s.run(&["agent", &id, "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap();
    let by_q = |q: f64| {
        runs.iter()
            .find(|r| r["params"]["q"].as_f64() == Some(q))
            .unwrap()
    };
    for q in [0.1, 0.5] {
        assert_eq!(by_q(q)["state"], "finished", "q={q}: {:#}", by_q(q));
        assert_eq!(by_q(q)["steps"], 40);
    }
    let stopped = by_q(0.9);
    // The script ended on its own, with exit code 0, because it was told to stop (an agent
    // that learned of the stop first would end it with SIGTERM: stopped_early as well).
    assert_eq!(stopped["state"], "stopped_early", "{stopped:#}");
    assert!(stopped["steps"].as_i64().unwrap() < 40, "{stopped:#}");
    assert_eq!(stopped["stop_info"]["rule"], "hyperband", "{stopped:#}");
    assert!(
        stopped["error"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped early by hyperband"),
        "{stopped:#}"
    );
}
