//! A run that ended while its server was away is never discarded, driving the real binary:
//! the server is killed just before a script ends, so the agent keeps the run's end (its
//! `finish` record) with its last points in its spill file.
//!
//! - The agent waits for the server (`--end-wait`) and uploads the end itself when the server
//!   is back in time: the run is `finished` with its whole history, nothing is left to sync.
//! - An agent that stopped waiting leaves the file; the restarted server marks the gone
//!   agent's run `crashed` and queues a retry; `hyperdial sync` then still ends the run as
//!   its script did, with every point, and the queued retry is withdrawn, never run.
//! - Once the retry has started, `hyperdial sync` still ends the run as its script did; the
//!   retry's agent stops it, and it is kept as a repeat of the run, its error saying why.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Logs steps 0 to 4, waits for the file `go` to appear (the test kills the server first),
/// then logs steps 5 to 9 and exits 0. With `HOLD` set, it waits for the file `hold` instead
/// (the retry of the last test, kept running).
const SCRIPT: &str = r#"
import json, os, sys, time
if os.environ.get("HOLD"):
    while not os.path.exists("hold"):
        time.sleep(0.05)
    sys.exit(0)
for step in range(10):
    if step == 5:
        while not os.path.exists("go"):
            time.sleep(0.05)
    print("hyperdial: " + json.dumps({"loss": 10.0 - step, "_step": step}), flush=True)
    time.sleep(0.02)
"#;

const SWEEP: &str =
    "program: late.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1]}\n";

fn runs(s: &Scratch, url: &str, sweep: &str) -> Vec<Value> {
    json_of(s, &["runs", sweep, "--json", "--server", url])
        .as_array()
        .unwrap()
        .clone()
}

fn run_view(url: &str, run: &str) -> Value {
    let body = http_get(&format!("{url}/api/v1/runs/{run}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:.300}"))
}

/// The steps and losses the server holds for `run`.
fn history(view: &Value) -> Vec<(i64, f64)> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((p["step"].as_i64()?, p["values"]["loss"].as_f64()?)))
        .collect()
}

fn full_history() -> Vec<(i64, f64)> {
    (0..10).map(|s| (s, 10.0 - s as f64)).collect()
}

/// An agent for one run of `sweep`, its output in `agent.log`.
fn spawn_agent(s: &Scratch, url: &str, sweep: &str, end_wait: &str) -> Child {
    let log = std::fs::File::create(s.dir.join("agent.log")).unwrap();
    s.cmd(&[
        "agent",
        sweep,
        "--server",
        url,
        "--count",
        "1",
        "--end-wait",
        end_wait,
    ])
    // The outage is noticed within a second, so the run's last points and end are kept.
    .env("HYPERDIAL_RETRY_SECONDS", "1")
    .stdout(Stdio::from(log.try_clone().unwrap()))
    .stderr(Stdio::from(log))
    .spawn()
    .unwrap()
}

fn said(s: &Scratch) -> String {
    std::fs::read_to_string(s.dir.join("agent.log")).unwrap_or_default()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start the sweep's run, wait for its first points, kill the server, let the script end.
/// Returns the server (killed) and the run's id.
fn end_while_away(s: &Scratch, db: &Path, port: u16, end_wait: &str) -> (String, String, Child) {
    s.write("late.py", SCRIPT);
    let mut server = ServerProcess::start(s, db, port);
    let url = server.url.clone();
    let sweep = create_sweep(s, &url, SWEEP);
    let agent = spawn_agent(s, &url, &sweep, end_wait);
    wait_for(s, &url, &sweep, |runs| {
        runs.first()
            .is_some_and(|r| r["steps"].as_i64().unwrap_or(0) >= 5)
    });
    let run = runs(s, &url, &sweep)[0]["id"].as_str().unwrap().to_string();
    server.kill9();
    s.write("go", "");
    (sweep, run, agent)
}

fn left_files(s: &Scratch) -> Vec<String> {
    std::fs::read_dir(s.dir.join(".hyperdial/offline"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".jsonl"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_agent_waits_for_the_server_and_uploads_the_end_it_kept() {
    let s = Scratch::new("late-end-agent-waits");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let (sweep, run, mut agent) = end_while_away(&s, &db, port, "90");
    wait_until(
        "the agent says it waits for the server",
        Duration::from_secs(60),
        || said(&s).contains("waiting up to 90 s for the server"),
    );
    assert!(agent.try_wait().unwrap().is_none(), "{}", said(&s));
    let server = ServerProcess::start(&s, &db, port);
    let status = wait_child(&mut agent, Duration::from_secs(90));
    let log = said(&s);
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("its end was uploaded"), "{log}");
    let view = run_view(&server.url, &run);
    assert_eq!(view["state"], "finished", "{view:#}");
    assert_eq!(history(&view), full_history(), "{view:#}");
    assert!(left_files(&s).is_empty(), "{:?}", left_files(&s));
    assert_eq!(runs(&s, &server.url, &sweep).len(), 1);
}

#[test]
fn a_late_end_is_taken_by_a_run_marked_crashed_and_its_queued_retry_is_withdrawn() {
    let s = Scratch::new("late-end-sync");
    let db = s.dir.join("db.sqlite");
    a_late_end_is_taken(&s, &db);
}

/// The same on PostgreSQL (`HYPERDIAL_TEST_PG`; SKIPPED without it).
#[test]
fn a_late_end_is_taken_on_postgres_too() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(hyperdial_store::testing::TestDb::postgres(
        "cli late_end a_late_end_is_taken_on_postgres_too",
    )) else {
        return;
    };
    let s = Scratch::new("late-end-sync-pg");
    a_late_end_is_taken(&s, Path::new(db.url()));
    rt.block_on(db.remove());
}

fn a_late_end_is_taken(s: &Scratch, db: &Path) {
    let port = free_port();
    let (sweep, run, mut agent) = end_while_away(s, db, port, "0");
    let status = wait_child(&mut agent, Duration::from_secs(60));
    let log = said(s);
    assert!(status.success(), "{status}: {log}");
    let dir = s.dir.join(".hyperdial/offline");
    assert!(
        log.contains(&format!("upload it with `hyperdial sync {}", dir.display())),
        "{log}"
    );
    assert_eq!(left_files(s).len(), 1, "{log}");
    let ended_by = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    // The server comes back, finds the agent gone, marks its run crashed and queues a retry.
    // Nothing needs it on its old port (the agent has exited), so it takes whichever port is
    // free: another test's server may have started on the old one meanwhile.
    let server = ServerProcess::start_anywhere(s, db);
    let url = server.url.clone();
    wait_until(
        "the run is crashed and retried",
        Duration::from_secs(60),
        || {
            let all = runs(s, &url, &sweep);
            all.len() == 2
                && all
                    .iter()
                    .any(|r| r["id"] == run && r["state"] == "crashed")
        },
    );
    // A little later than the run's real end: the end time is the script's, not the upload's.
    std::thread::sleep(Duration::from_millis(300));

    let out = s.run(&["sync", ".hyperdial/offline", "--server", &url]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains(", and its end"), "{printed}");
    assert!(
        printed.contains("1 uploaded, 0 refused, 0 failed"),
        "{printed}"
    );
    let view = run_view(&url, &run);
    assert_eq!(view["state"], "finished", "{view:#}");
    assert_eq!(history(&view), full_history(), "{view:#}");
    assert!(view["error"].is_null(), "{view:#}");
    let finished_ms = view["finished_ms"].as_i64().unwrap_or(i64::MAX);
    assert!(
        finished_ms <= ended_by,
        "{finished_ms} > {ended_by}: {view:#}"
    );
    // The retry was withdrawn before anything ran it, and the sweep is done.
    let all = runs(s, &url, &sweep);
    let retry = all.iter().find(|r| r["id"] != run).unwrap();
    assert_eq!(retry["state"], "cancelled", "{retry:#}");
    let retry_view = run_view(&url, retry["id"].as_str().unwrap());
    assert!(retry_view["started_ms"].is_null(), "{retry_view:#}");
    assert!(
        retry_view["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("withdrawn"),
        "{retry_view:#}"
    );
    let sweep_view: Value =
        serde_json::from_str(&http_get(&format!("{url}/api/v1/sweeps/{sweep}"))).unwrap();
    assert_eq!(sweep_view["state"], "finished", "{sweep_view:#}");
}

#[test]
fn a_late_end_after_the_retry_started_is_taken_and_the_retry_gives_way() {
    let s = Scratch::new("late-end-superseded");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let (sweep, run, mut agent) = end_while_away(&s, &db, port, "0");
    assert!(wait_child(&mut agent, Duration::from_secs(60)).success());
    let server = ServerProcess::start_anywhere(&s, &db);
    let url = server.url.clone();
    wait_until(
        "the run is crashed and retried",
        Duration::from_secs(60),
        || runs(&s, &url, &sweep).len() == 2,
    );
    // Another agent claims the retry; its script would hold until a file that never comes.
    let mut second = s
        .cmd(&["agent", &sweep, "--server", &url, "--count", "1"])
        .env("HOLD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the retry runs", Duration::from_secs(60), || {
        runs(&s, &url, &sweep)
            .iter()
            .any(|r| r["id"] != run && r["state"] == "running")
    });

    let out = s.run(&["sync", ".hyperdial/offline", "--server", &url]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("1 uploaded, 0 refused, 0 failed"),
        "{printed}"
    );
    // The finished run holds its whole history and the trial's result.
    let view = run_view(&url, &run);
    assert_eq!(view["state"], "finished", "{view:#}");
    assert_eq!(history(&view), full_history(), "{view:#}");
    // The retry is stopped by its agent and kept as a repeat of the run, saying why.
    let status = wait_child(&mut second, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    let retry = runs(&s, &url, &sweep)
        .into_iter()
        .find(|r| r["id"] != run)
        .unwrap();
    let retry_view = run_view(&url, retry["id"].as_str().unwrap());
    assert_eq!(retry_view["state"], "cancelled", "{retry_view:#}");
    assert!(retry_view["retry_of"].is_null(), "{retry_view:#}");
    assert_eq!(retry_view["repeat_of"], run, "{retry_view:#}");
    assert!(
        retry_view["error"]
            .as_str()
            .unwrap_or_default()
            .contains("delivered its end late"),
        "{retry_view:#}"
    );
    let sweep_view: Value =
        serde_json::from_str(&http_get(&format!("{url}/api/v1/sweeps/{sweep}"))).unwrap();
    assert_eq!(sweep_view["state"], "finished", "{sweep_view:#}");
}
