//! Runs outside a sweep under the run timeout, with the real binary: `hyperdial run` killed
//! with SIGKILL leaves a run the server marks `crashed` once it is silent for the run timeout,
//! ending at its last report; one only paused (SIGSTOP, as a suspended machine or a cut link
//! would silence it) is `crashed` meanwhile and `running` again when it reports, and ends as
//! its command does. A script using the Python client on its own, killed with SIGKILL, is
//! marked alike.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SILENT: &str =
    "the process tracking this run stopped reporting (no heartbeat, metrics or output for the run timeout)";

/// What tracks the run of a script.
#[derive(Clone, Copy, PartialEq)]
enum Tracker {
    /// `hyperdial run -- python3 steps.py`; the script prints its losses.
    Command,
    /// `python3 steps.py` using the Python client (`hyperdial.init`, `run.log`).
    Client,
}

/// In a scratch directory `name`: a `hyperdial server` with a 1 s run timeout (its janitor
/// looks every 250 ms), and a script logging `steps` losses, one every 0.1 s, to it, tracked
/// by `by`; once its run is `running` with two steps.
fn tracked(name: &str, steps: u32, by: Tracker) -> (Scratch, ServerProcess, Child) {
    let s = Scratch::new(name);
    let db = s.dir.join("db.sqlite");
    let server = ServerProcess::start_with(&s, &db, free_port(), &["--run-timeout", "1"]);
    let url = server.url.as_str();
    let (setup, log) = match by {
        Tracker::Command => ("", "print('hyperdial: {\"loss\": %r}' % loss, flush=True)"),
        Tracker::Client => (
            "import hyperdial\nrun = hyperdial.init(project='silence')\n",
            "run.log({'loss': loss})",
        ),
    };
    s.write(
        "steps.py",
        &format!(
            "import time\n{setup}for step in range({steps}):\n    loss = 1.0 / (step + 1)\n    {log}\n    time.sleep(0.1)\n"
        ),
    );
    let mut command = match by {
        Tracker::Command => s.cmd(&["run", "--server", url, "--", "python3", "steps.py"]),
        Tracker::Client => {
            let mut c = Command::new("python3");
            c.arg("steps.py")
                .current_dir(&s.dir)
                .env("PYTHONPATH", python_dir())
                .env("HYPERDIAL_SERVER", url)
                .env_remove("HYPERDIAL_TOKEN")
                .env_remove("HYPERDIAL_RUN_ID");
            c
        }
    };
    let child = command
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

/// The repository's Python client.
fn python_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python")
}

#[test]
fn a_killed_run_outside_a_sweep_is_crashed_at_its_last_report() {
    for by in [Tracker::Command, Tracker::Client] {
        killed_run_is_crashed_at_its_last_report(by);
    }
}

fn killed_run_is_crashed_at_its_last_report(by: Tracker) {
    let (_s, server, mut run) = tracked("run-killed", 600, by);
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
    let (_s, server, mut run) = tracked("run-paused", 40, Tracker::Command);
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

/// An upload of an offline file cut short, whose run the server then marked `crashed` for its
/// silence (the run timeout passed before `sync` ran again), is completed by the next `sync`:
/// the run reports again, takes the rest of the file at the same steps, and ends as the file
/// says; not "already uploaded" with the points left out.
#[test]
fn a_sync_cut_short_is_completed_after_the_server_gave_its_run_up() {
    let s = Scratch::new("silence-sync");
    let db = s.dir.join("db.sqlite");
    let server = ServerProcess::start_with(&s, &db, free_port(), &["--run-timeout", "1"]);
    let url = server.url.as_str();
    let local = "20260102-030405-0a0b0c";
    let offline = s.dir.join(".hyperdial/offline");
    std::fs::create_dir_all(&offline).unwrap();
    let mut lines = vec![format!(
        r#"{{"type":"init","project":"silent","name":null,"config":{{}},"argv":["t.py"],"host":"box","git":null,"local_id":"{local}","time_ms":1700000000000}}"#
    )];
    for step in 0..4 {
        lines.push(format!(
            r#"{{"type":"log","step":{step},"time_ms":{},"values":{{"loss":{}}}}}"#,
            1700000000100i64 + step,
            1.0 / (step + 1) as f64
        ));
    }
    lines.push(r#"{"type":"finish","exit_code":0,"time_ms":1700000000900}"#.to_string());
    std::fs::write(
        offline.join(format!("{local}.jsonl")),
        lines.join("\n") + "\n",
    )
    .unwrap();
    // The first upload: the run and two points, then nothing (the server went away).
    http_post(
        &format!("{url}/api/v1/runs"),
        &serde_json::json!({"project": "silent", "id": format!("offline-{local}")}),
    );
    http_post(
        &format!("{url}/api/v1/runs/offline-{local}/metrics"),
        &serde_json::json!({"points": [{"step": 0, "values": {"loss": 1.0}},
                                       {"step": 1, "values": {"loss": 0.5}}]}),
    );
    let crashed = wait_run(url, |r| r["state"] == "crashed");
    assert_eq!(crashed["end_cause"], "run_silent", "{crashed:#}");
    let out = s.run(&["sync", "--server", url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("(its earlier upload, cut short, is complete now)"),
        "{}",
        text(&out)
    );
    let run = get(&format!("{url}/api/v1/runs/offline-{local}"));
    assert_eq!(run["state"], "finished", "{run:#}");
    assert_eq!(run["steps"], 4, "{run:#}");
    assert_eq!(run["summary"]["loss"], 0.25, "{run:#}");
}
