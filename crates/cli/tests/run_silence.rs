//! Runs outside a sweep under the run timeout, with the real binary: `hyperdial run` killed
//! with SIGKILL leaves a run the server marks `crashed` once it is silent for the run timeout,
//! ending at its last report; one only paused (SIGSTOP, as a suspended machine or a cut link
//! would silence it) is `crashed` meanwhile and `running` again when it reports, and ends as
//! its command does.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SILENT: &str =
    "the process tracking this run stopped reporting (no heartbeat, metrics or output for the run timeout)";

/// In a scratch directory `name`: a `hyperdial server` with a 1 s run timeout (its janitor
/// looks every 250 ms), and `hyperdial run` of a script printing `steps` losses, one every
/// 0.1 s, reporting to it, once its run is `running` with two steps.
fn tracked(name: &str, steps: u32) -> (Scratch, ServerProcess, Child) {
    let s = Scratch::new(name);
    let db = s.dir.join("db.sqlite");
    let server = ServerProcess::start_with(&s, &db, free_port(), &["--run-timeout", "1"]);
    let url = server.url.as_str();
    s.write(
        "steps.py",
        &format!(
            "import time\nfor step in range({steps}):\n    print('hyperdial: {{\"loss\": %r}}' % (1.0 / (step + 1)), flush=True)\n    time.sleep(0.1)\n"
        ),
    );
    let child = s
        .cmd(&["run", "--server", url, "--", "python3", "steps.py"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_run(url, |r| {
        r["state"] == "running" && r["steps"].as_i64().unwrap_or(0) >= 2
    });
    assert_eq!(running["sweep"], Value::Null, "{running:#}");
    (s, server, child)
}

fn get(url: &str) -> Value {
    let body = http_get(url);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The only run on the server at `url`, once `ok` holds for it (within 30 s).
fn wait_run(url: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = get(&format!("{url}/api/v1/runs"));
        if let Some(run) = runs["runs"].as_array().and_then(|r| r.first()) {
            if ok(run) {
                return run.clone();
            }
        }
        assert!(Instant::now() < deadline, "timed out; runs: {runs:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_run_outside_a_sweep_is_crashed_at_its_last_report() {
    let (_s, server, mut run) = tracked("run-killed", 600);
    let url = server.url.as_str();
    // SIGKILL: nothing is said to the server; the command's process dies with it.
    run.kill().unwrap();
    run.wait().unwrap();
    let killed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let crashed = wait_run(url, |r| r["state"] != "running");
    assert_eq!(crashed["state"], "crashed", "{crashed:#}");
    assert_eq!(crashed["error"], SILENT, "{crashed:#}");
    // It ended at its last report, before the kill, not when the server noticed (1 s on).
    assert_eq!(
        crashed["finished_ms"], crashed["heartbeat_ms"],
        "{crashed:#}"
    );
    let finished = crashed["finished_ms"].as_i64().unwrap();
    assert!(finished <= killed, "{killed} {crashed:#}");
}

#[test]
fn a_paused_run_outside_a_sweep_is_running_again_when_it_reports() {
    let (_s, server, mut run) = tracked("run-paused", 40);
    let url = server.url.as_str();
    // Paused, the tracking process reports nothing (its command goes on, its output
    // waiting in the pipe): the server presumes the run crashed.
    signal(run.id(), "-STOP");
    let crashed = wait_run(url, |r| r["state"] != "running");
    signal(run.id(), "-CONT");
    assert_eq!(crashed["state"], "crashed", "{crashed:#}");
    assert_eq!(crashed["error"], SILENT, "{crashed:#}");
    // Its next report makes it `running` again; it ends as its command did.
    let status = wait_child(&mut run, Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    let ended = wait_run(url, |r| r["state"] != "running");
    assert_eq!(ended["state"], "finished", "{ended:#}");
    assert_eq!(ended["error"], Value::Null, "{ended:#}");
    assert_eq!(ended["steps"], 40, "{ended:#}");
}
