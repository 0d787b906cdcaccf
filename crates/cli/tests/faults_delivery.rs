//! Fault tests of metric delivery, driving the real binary: a server SIGKILLed and restarted
//! again and again while agents run scripts that log through `hyperdial:` lines and through
//! the Python client; batches far above the request-size limit; an outage longer than the
//! retry window, spilled to disk and uploaded by the agent once the server is back.
//!
//! Every script appends each point to a side file *before* logging it, so the test knows
//! exactly what was emitted. It compares that with what the server stored, prints the figures
//! (kills survived, points emitted, stored, lost, duplicated) and fails on any loss or
//! duplicate. A "point" here is one value: (run, metric, step).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The training script: logs `--width` metrics per step through `hyperdial:` lines
/// (`line_*`), the Python client (`py_*`) or both, recording each step to
/// `$EMIT_DIR/<run>.jsonl` first.
const EMIT_PY: &str = r#"
import argparse, json, os, sys, time
import hyperdial
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=1.0)
p.add_argument("--steps", type=int, default=40)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--width", type=int, default=2)
p.add_argument("--via", default="both")
a, _ = p.parse_known_args()
run = hyperdial.init()
side = open(os.path.join(os.environ["EMIT_DIR"], os.environ["HYPERDIAL_RUN_ID"] + ".jsonl"), "a")
for step in range(a.steps):
    if a.via in ("both", "lines"):
        values = {"line_%d" % k: a.x * step + k for k in range(a.width)}
        side.write(json.dumps({"step": step, "values": values}) + "\n")
        side.flush()
        print("hyperdial: " + json.dumps(values), flush=True)
    if a.via in ("both", "client"):
        values = {"py_%d" % k: a.x * step - k for k in range(a.width)}
        side.write(json.dumps({"step": step, "values": values}) + "\n")
        side.flush()
        run.log(values)
    if a.sleep:
        time.sleep(a.sleep)
run.finish()
"#;

/// What was emitted and what was stored.
#[derive(Debug, Default)]
struct Figures {
    emitted: usize,
    stored: usize,
    lost: usize,
    duplicated: usize,
}

impl Figures {
    fn add(&mut self, other: Figures) {
        self.emitted += other.emitted;
        self.stored += other.stored;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
    }
}

type Points = BTreeMap<(String, i64), f64>;

/// The points a script recorded for `run` in `emit_dir`.
fn emitted(emit_dir: &Path, run: &str) -> Points {
    let mut out = Points::new();
    let Ok(text) = std::fs::read_to_string(emit_dir.join(format!("{run}.jsonl"))) else {
        return out;
    };
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let step = record["step"].as_i64().unwrap();
        for (name, value) in record["values"].as_object().unwrap() {
            out.insert((name.clone(), step), value.as_f64().unwrap());
        }
    }
    out
}

/// The points the server stored for `run`.
fn stored(url: &str, run: &str) -> (Points, Value) {
    let body = http_get(&format!("{url}/api/v1/runs/{run}"));
    let view: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:.200}"));
    let mut out = Points::new();
    for point in view["history"].as_array().unwrap() {
        let step = point["step"].as_i64().unwrap();
        for (name, value) in point["values"].as_object().unwrap() {
            out.insert((name.clone(), step), value.as_f64().unwrap_or(f64::NAN));
        }
    }
    (out, view)
}

/// Compare one run: lost = emitted but not stored with that value; duplicated = stored but
/// never emitted at that step (a resend given a new step).
fn compare(url: &str, emit_dir: &Path, run: &str) -> (Figures, Value) {
    let sent = emitted(emit_dir, run);
    let (kept, view) = stored(url, run);
    let lost = sent.iter().filter(|(k, v)| kept.get(*k) != Some(v)).count();
    let duplicated = kept.keys().filter(|k| !sent.contains_key(*k)).count();
    let figures = Figures {
        emitted: sent.len(),
        stored: kept.len(),
        lost,
        duplicated,
    };
    (figures, view)
}

fn sweep_runs(s: &Scratch, url: &str, sweep: &str) -> Vec<Value> {
    json_of(s, &["runs", sweep, "--json", "--server", url])
        .as_array()
        .unwrap()
        .clone()
}

fn spawn_agent(
    s: &Scratch,
    url: &str,
    sweep: &str,
    emit_dir: &Path,
    env: &[(&str, &str)],
) -> Child {
    let mut cmd = s.cmd(&["agent", sweep, "--server", url]);
    cmd.env("EMIT_DIR", emit_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn setup(name: &str) -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new(name);
    s.write("emit.py", EMIT_PY);
    let emit_dir = s.dir.join("emitted");
    std::fs::create_dir_all(&emit_dir).unwrap();
    (s, emit_dir)
}

#[test]
fn server_killed_again_and_again_mid_sweep_loses_and_duplicates_nothing() {
    let (s, emit_dir) = setup("faults-kills");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let url = server.url.clone();
    let id = create_sweep(&s, &url, "program: emit.py\nmethod: grid\nparameters:\n  x: {values: [1, 2, 3, 4, 5, 6, 7, 8, 9]}\n  steps: {value: 60}\n  sleep: {value: 0.05}\n  width: {value: 3}\n  via: {value: both}\n");
    let mut agents: Vec<Child> = (0..3)
        .map(|_| spawn_agent(&s, &url, &id, &emit_dir, &[]))
        .collect();

    // Kill the server with SIGKILL while the agents run, and bring it back on the same
    // database and port after a pause of 0.3 to 1.5 s.
    let mut kills = 0;
    let pauses = [300u64, 900, 1500, 600, 1200, 400, 1000, 700];
    for pause in pauses {
        std::thread::sleep(Duration::from_millis(900));
        if agents.iter_mut().all(|a| a.try_wait().unwrap().is_some()) {
            break;
        }
        server.kill9();
        kills += 1;
        std::thread::sleep(Duration::from_millis(pause));
        server = ServerProcess::start(&s, &db, port);
    }
    for agent in &mut agents {
        let status = wait_child(agent, Duration::from_secs(110));
        assert!(status.success(), "an agent failed: {status:?}");
    }

    let runs = sweep_runs(&s, &url, &id);
    let mut total = Figures::default();
    let mut states = BTreeMap::new();
    let mut ran = 0;
    for r in &runs {
        let run = r["id"].as_str().unwrap();
        let (figures, view) = compare(&url, &emit_dir, run);
        *states
            .entry(r["state"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        assert!(
            view["delivery"].is_null(),
            "run {run} reports undelivered points: {}",
            view["delivery"]
        );
        // A run whose claim was answered by a server killed right after storing it never
        // started (the server marks it crashed): it emitted nothing, and lost nothing.
        if figures.emitted > 0 {
            assert_eq!(r["state"], "finished", "{r:#}");
            assert_eq!(figures.emitted, 60 * 6, "run {run} ran to its end");
            ran += 1;
        }
        total.add(figures);
    }
    figures(&format!(
        "faults (kills): {kills} server kills survived; {} runs {states:?}; points emitted {}, stored {}, lost {}, duplicated {}",
        runs.len(),
        total.emitted,
        total.stored,
        total.lost,
        total.duplicated
    ));
    assert!(
        kills >= 4,
        "the sweep ended before the server was killed 4 times"
    );
    assert!(ran >= 8, "only {ran} runs ran");
    assert_eq!(total.lost, 0);
    assert_eq!(total.duplicated, 0);
    let spilled = std::fs::read_dir(s.dir.join(".hyperdial/offline"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(spilled, 0, "nothing should wait in spill files");
}

#[test]
fn batches_far_above_the_request_limit_are_all_stored() {
    let (s, emit_dir) = setup("faults-wide");
    let db = s.dir.join("db.sqlite");
    let server = ServerProcess::start(&s, &db, free_port());
    // 2,000 steps of 150 metrics, printed as fast as Python can: through `hyperdial:` lines
    // (batched by the agent) and through the Python client, side by side.
    let children: Vec<(&str, Child)> = ["lines", "client"]
        .into_iter()
        .map(|via| {
            let child = s
                .cmd(&[
                    "run",
                    "--server",
                    &server.url,
                    "--name",
                    via,
                    "--",
                    "python3",
                    "emit.py",
                    "--steps",
                    "2000",
                    "--width",
                    "150",
                    "--via",
                    via,
                ])
                .env("EMIT_DIR", &emit_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (via, child)
        })
        .collect();
    let mut total = Figures::default();
    for (via, child) in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{via}: {stderr}");
        let id = stderr
            .split("tracking run ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no run id in: {stderr}"))
            .to_string();
        let (figures, view) = compare(&server.url, &emit_dir, &id);
        assert_eq!(view["state"], "finished");
        assert!(view["delivery"].is_null(), "{via}: {}", view["delivery"]);
        common::figures(&format!(
            "faults (oversize, {via}): points emitted {}, stored {}, lost {}, duplicated {}",
            figures.emitted, figures.stored, figures.lost, figures.duplicated
        ));
        assert_eq!(figures.emitted, 2000 * 150);
        total.add(figures);
    }
    assert_eq!(total.lost, 0);
    assert_eq!(total.duplicated, 0);
}

/// An outage longer than the retry window: both writers of the run (the agent's `hyperdial:`
/// lines and the run's Python client) spill their points to disk; the server is back before
/// the run ends, so the agent uploads the spill files itself when the process ends, and
/// nothing is missing or left for `hyperdial sync`.
#[test]
fn an_outage_longer_than_the_retry_window_is_spilled_then_uploaded_by_the_agent() {
    let (s, emit_dir) = setup("faults-spill");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let url = server.url.clone();
    let id = create_sweep(&s, &url, "program: emit.py\nmethod: grid\nparameters:\n  x: {values: [1]}\n  steps: {value: 80}\n  sleep: {value: 0.1}\n  via: {value: both}\n");
    // A retry window of 1 s: an outage of 5 s outlasts it.
    let mut agent = spawn_agent(
        &s,
        &url,
        &id,
        &emit_dir,
        &[("HYPERDIAL_RETRY_SECONDS", "1")],
    );
    wait_for(&s, &url, &id, |runs| {
        runs.iter().any(|r| r["steps"].as_i64().unwrap_or(0) >= 10)
    });
    server.kill9();
    std::thread::sleep(Duration::from_secs(5));
    let server = ServerProcess::start(&s, &db, port);
    let status = wait_child(&mut agent, Duration::from_secs(90));
    assert!(status.success());

    let runs = sweep_runs(&s, &server.url, &id);
    assert_eq!(runs.len(), 1);
    let run = runs[0]["id"].as_str().unwrap().to_string();
    let (after, view) = compare(&server.url, &emit_dir, &run);
    figures(&format!(
        "faults (spill, uploaded by the agent): points emitted {}, stored {}, lost {}, duplicated {}; delivery {}",
        after.emitted, after.stored, after.lost, after.duplicated, view["delivery"]
    ));
    assert_eq!(after.emitted, 80 * 4);
    assert_eq!(after.lost, 0);
    assert_eq!(after.duplicated, 0);
    assert_eq!(
        view["delivery"]["missing"].as_u64().unwrap_or(0),
        0,
        "{view:#}"
    );
    assert_eq!(view["state"], "finished");
    // Both writers spilled, and both files were uploaded (marked synced): none is left.
    let names: Vec<String> = std::fs::read_dir(s.dir.join(".hyperdial/offline"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".agent.jsonl.synced"))
            && names
                .iter()
                .any(|n| n.contains(".py") && n.ends_with(".jsonl.synced")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with(".jsonl")), "{names:?}");
    // `hyperdial sync` finds nothing to upload, and changes nothing.
    let out = s.run(&["sync", ".hyperdial/offline", "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    let (again, _) = compare(&server.url, &emit_dir, &run);
    assert_eq!((again.lost, again.duplicated), (0, 0));
}

/// An agent whose server goes away for a while says so once, when the outage has lasted a few
/// seconds (not only after the 60 s retry window, and not once per request), and once when
/// the server answers again; the run in flight loses nothing.
#[test]
fn an_agent_says_once_that_its_server_does_not_answer_and_once_that_it_answers_again() {
    let s = Scratch::new("fault-outage-notice");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let id = create_sweep(
        &s,
        &server.url,
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0]}\n  steps: {value: 150}\n  sleep: {value: 0.1}\n",
    );
    let log = s.dir.join("agent.log");
    // One open file for both streams, so that neither writes over the other.
    let out = std::fs::File::create(&log).unwrap();
    let mut agent = s
        .cmd(&["agent", &id, "--server", &server.url])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_for = |what: &str, pred: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(40);
        while !pred() {
            assert!(
                Instant::now() < deadline,
                "{what}; the agent said:\n{}",
                said()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("no metric point reached the server", &|| {
        sweep_runs(&s, &server.url, &id)
            .first()
            .is_some_and(|r| !r["metric"].is_null())
    });
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    wait_for(
        "the agent did not say that its server does not answer",
        &|| said().contains("does not answer"),
    );
    server = ServerProcess::start(&s, &db, port);
    let status = wait_child(&mut agent, Duration::from_secs(120));
    let said = said();
    assert!(status.success(), "{status}: {said}");
    let notices = said.matches("does not answer").count();
    let back = said.matches("answers again").count();
    figures(&format!(
        "faults (outage notices): \"does not answer\" {notices}, \"answers again\" {back}"
    ));
    assert_eq!(notices, 1, "{said}");
    assert_eq!(back, 1, "{said}");
    let runs = sweep_runs(&s, &server.url, &id);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["state"], "finished", "{:#}", runs[0]);
    let (kept, _) = stored(&server.url, runs[0]["id"].as_str().unwrap());
    assert_eq!(kept.len(), 300, "two metrics a step, 150 steps: {said}");
}

/// An agent started while its server is down (restarting, or not up yet when a scheduler
/// starts the agents) says that the server does not answer and waits for it, as it does for
/// every request, instead of exiting at once; when the server is back it runs the sweep.
#[test]
fn an_agent_started_while_its_server_is_down_waits_for_it() {
    let s = Scratch::new("fault-agent-before-server");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let id = create_sweep(
        &s,
        &server.url,
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0, 2.0]}\n",
    );
    let url = server.url.clone();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let log = s.dir.join("agent.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut agent = s
        .cmd(&["agent", &id, "--server", &url])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !said().contains("does not answer") {
        if let Some(status) = agent.try_wait().unwrap() {
            panic!("the agent exited ({status}) instead of waiting: {}", said());
        }
        assert!(Instant::now() < deadline, "the agent said: {}", said());
        std::thread::sleep(Duration::from_millis(100));
    }
    server = ServerProcess::start(&s, &db, port);
    let status = wait_child(&mut agent, Duration::from_secs(120));
    assert!(status.success(), "{status}: {}", said());
    let runs = sweep_runs(&s, &server.url, &id);
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:#?}");
}
