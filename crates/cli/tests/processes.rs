//! Nothing of a run outlives its agent: SIGTERM to `agent`, SIGTERM to `tune` and SIGKILL to
//! `agent`, with a training script that starts a worker process of its own. The script writes
//! its own pid and its worker's pid to `pids/RUN.txt`; afterwards `/proc` must know neither
//! (zombies count as gone). Also: `tune` on a finished sweep says so and `--retry` runs only
//! the failed configuration.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A training script that starts a worker (a second Python process that sleeps), records both
/// pids, then logs a metric every 50 ms for a long time.
const FAMILY: &str = r#"
import os, subprocess, sys, time
run = os.environ["HYPERDIAL_RUN_ID"]
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
os.makedirs("pids", exist_ok=True)
with open(f"pids/{run}.tmp", "w") as f:
    f.write(f"{os.getpid()} {worker.pid}\n")
os.rename(f"pids/{run}.tmp", f"pids/{run}.txt")
for step in range(12000):
    print(f"hyperdial: loss={1.0 / (step + 1)}", flush=True)
    time.sleep(0.05)
"#;

const SWEEP: &str = "program: family.py\nmethod: random\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n";

fn scratch(name: &str) -> Scratch {
    let s = Scratch::new(name);
    s.write("family.py", FAMILY);
    s.write("sweep.yaml", SWEEP);
    s
}

/// The pids recorded by the runs so far, once `want` runs have recorded theirs.
fn recorded_pids(dir: &Path, want: usize, child: &mut Child) -> Vec<(String, Vec<i32>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir.join("pids")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(run) = name.strip_suffix(".txt") {
                    let text = std::fs::read_to_string(e.path()).unwrap();
                    let pids = text
                        .split_whitespace()
                        .map(|p| p.parse().unwrap())
                        .collect();
                    found.push((run.to_string(), pids));
                }
            }
        }
        if found.len() >= want {
            return found;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the command exited ({status}) before {want} runs started");
        }
        assert!(Instant::now() < deadline, "runs did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            state != Some("Z")
        }
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Wait until none of `pids` is alive; the survivors if some are still there after a minute
/// (killed then, so that a failing test leaves nothing behind).
fn survivors(pids: &[i32]) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            return left;
        }
        if Instant::now() > deadline {
            for p in &left {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Report how many processes of the runs (`pids`) survived `what`, and fail if any did.
fn assert_no_orphans(what: &str, pids: &[i32]) {
    let left = survivors(pids);
    figures(&format!(
        "faults ({what}): processes of the runs {}, left running {}",
        pids.len(),
        left.len()
    ));
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "processes of the runs survived {what}"
    );
}

/// `hyperdial tune` of the scratch's sweep: 2 agents, 4 runs, a free port.
fn spawn_tune(s: &Scratch, stdout: fn() -> Stdio, stderr: fn() -> Stdio) -> Child {
    s.cmd(&[
        "tune",
        "sweep.yaml",
        "--agents",
        "2",
        "--count",
        "4",
        "--port",
        "0",
    ])
    .stdout(stdout())
    .stderr(stderr())
    .spawn()
    .unwrap()
}

fn run_by_id<'a>(runs: &'a [Value], id: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no run {id} in {runs:#?}"))
}

/// Create a sweep of the scratch's `sweep.yaml` on the server at `url`; its id.
fn sweep_from_file(s: &Scratch, url: &str) -> String {
    let created = json_of(s, &["sweep", "sweep.yaml", "--json", "--server", url]);
    created["id"].as_str().unwrap().to_string()
}

/// `hyperdial agent` on sweep `id` of the server at `url`, its output dropped and its standard
/// error to `stderr`.
fn spawn_agent(s: &Scratch, id: &str, url: &str, stderr: Stdio) -> Child {
    s.cmd(&["agent", id, "--server", url])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_to_agent_stops_every_process_of_the_run_and_cancels_it() {
    let s = scratch("sigterm-agent");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let id = sweep_from_file(&s, &server.url);
    let mut agent = spawn_agent(&s, &id, &server.url, Stdio::piped());
    let recorded = recorded_pids(&s.dir, 1, &mut agent);
    signal(agent.id(), "TERM");
    let status = wait_child(&mut agent, Duration::from_secs(60));
    let all: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(all.len(), 2);
    assert_no_orphans("SIGTERM to agent", &all);
    assert!(status.success(), "{status}");
    // The run ended with the reason, not `running`.
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let run = run_by_id(runs.as_array().unwrap(), &recorded[0].0);
    assert_eq!(run["state"], "cancelled", "{run:#}");
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("agent received SIGTERM"), "{error}");
}

#[test]
fn sigterm_to_tune_stops_every_process_of_every_run() {
    let s = scratch("sigterm-tune");
    let mut tune = spawn_tune(&s, Stdio::piped, Stdio::piped);
    let recorded = recorded_pids(&s.dir, 2, &mut tune);
    signal(tune.id(), "TERM");
    let status = wait_child(&mut tune, Duration::from_secs(60));
    let all: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(all.len(), 4);
    assert_no_orphans("SIGTERM to tune", &all);
    let out = tune.wait_with_output().unwrap();
    // Ended by SIGTERM before the sweep was over: 128 + 15, as a shell reports it.
    assert_eq!(status.code(), Some(143), "{}", text(&out));
    assert!(
        text(&out).contains("SIGTERM: stopping the runs in flight"),
        "{}",
        text(&out)
    );
    // Both runs were reported as cancelled before tune exited; no run is left `running`.
    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), free_port());
    let id = sweep_id(&s, &server.url);
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for (run, _) in &recorded {
        let r = run_by_id(runs, run);
        assert_eq!(r["state"], "cancelled", "{r:#}");
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains("tune received SIGTERM"),
            "{r:#}"
        );
    }
}

/// SIGTERM to an agent whose server has stopped answering (frozen with SIGSTOP: the kernel
/// accepts connections that are never answered, as behind a dead link): the run's processes
/// stop, and the agent exits once the short time a stopping agent gives the server has passed
/// (`SHUTDOWN_REPORT_TIME`), with the run's end kept in its spill file for `hyperdial sync`. It
/// must not retry its reports for the whole retry window first (600 s here), nor wait for
/// anything else the server does not answer: a scheduler's SIGKILL would lose the run's end.
#[test]
fn sigterm_to_agent_whose_server_does_not_answer_exits_and_keeps_the_runs_end() {
    let s = scratch("sigterm-frozen-server");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let id = sweep_from_file(&s, &server.url);
    let log = s.dir.join("agent.log");
    // One open file for both streams, so that neither writes over the other.
    let out = std::fs::File::create(&log).unwrap();
    let mut agent = s
        .cmd(&["agent", &id, "--server", &server.url])
        .env("HYPERDIAL_RETRY_SECONDS", "600")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let recorded = recorded_pids(&s.dir, 1, &mut agent);
    let run = recorded[0].0.clone();
    // The agent is reporting to the server (a metric point arrived) before the server freezes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
        if !run_by_id(runs.as_array().unwrap(), &run)["metric"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no metric point reached the server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(server.child.id(), "STOP");
    signal(agent.id(), "TERM");
    // The grace period (the script dies of SIGTERM at once), the 10 s for the report and the
    // 5 s the progress line waits for the sweep's best, with room to spare; 600 s of retries
    // (or a 60 s request timeout anywhere on the way out) would not fit.
    let status = wait_child(&mut agent, Duration::from_secs(50));
    signal(server.child.id(), "CONT");
    let all: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_no_orphans("SIGTERM to an agent whose server does not answer", &all);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}: {said}");
    // The run's end waits in the agent's spill file, as the agent says.
    let spill = s.dir.join(format!(".hyperdial/offline/{run}.agent.jsonl"));
    let records: Vec<Value> = std::fs::read_to_string(&spill)
        .unwrap_or_else(|e| panic!("{}: {e}; agent said: {said}", spill.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finish = records
        .iter()
        .find(|r| r["type"] == "finish")
        .unwrap_or_else(|| panic!("no finish record in {records:#?}"));
    assert_eq!(finish["state"], "cancelled", "{finish:#}");
    assert!(
        finish["error"]
            .as_str()
            .is_some_and(|e| e.contains("agent received SIGTERM")),
        "{finish:#}"
    );
    assert!(
        said.contains(&format!("run {run}: its end is kept in")) && said.contains("hyperdial sync"),
        "{said}"
    );
    // The summary names the end as it is (not "stopped").
    assert!(
        said.contains("agent done: 1 run (0 finished, 1 cancelled)"),
        "{said}"
    );
}

/// `hyperdial cancel RUN` ends one run (a hung one, say) through the API while its process
/// runs: the run is over for the server, so its agent must stop that process and its workers
/// (the next heartbeat says `stop`), keep the end the server has, and go on; otherwise the
/// process would run on, under a run that is over, for as long as it likes. A run that has
/// ended is not cancelled again.
#[test]
fn cancelling_one_run_stops_its_process_and_its_agent_goes_on() {
    let s = scratch("cancel-one-run");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let id = sweep_from_file(&s, &server.url);
    let mut agent = s
        .cmd(&["agent", &id, "--server", &server.url, "--count", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let recorded = recorded_pids(&s.dir, 1, &mut agent);
    let run = recorded[0].0.clone();
    let out = s.run(&["cancel", &run, "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("run {run} is cancelled")),
        "{}",
        text(&out)
    );
    let all: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_no_orphans("cancelling one run", &all);
    let status = wait_child(&mut agent, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let ended = run_by_id(runs.as_array().unwrap(), &run);
    assert_eq!(ended["state"], "cancelled", "{ended:#}");
    assert!(
        ended["error"]
            .as_str()
            .is_some_and(|e| e.contains("hyperdial cancel")),
        "{ended:#}"
    );
    // The sweep itself goes on; the run cannot be cancelled twice.
    let sweep = json_of(&s, &["sweeps", "--json", "--server", &server.url]);
    assert_eq!(sweep[0]["state"], "running", "{sweep:#}");
    let again = s.run(&["cancel", &run, "--server", &server.url]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("has already ended (cancelled)"),
        "{}",
        text(&again)
    );
}

#[test]
fn sigkill_to_agent_takes_the_training_process_and_its_workers_along() {
    let s = scratch("sigkill-agent");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let id = sweep_from_file(&s, &server.url);
    let mut agent = spawn_agent(&s, &id, &server.url, Stdio::null());
    let recorded = recorded_pids(&s.dir, 1, &mut agent);
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    let all: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(all.len(), 2);
    assert_no_orphans("SIGKILL to agent", &all);
    // The run stays `running` until the server's janitor finds it silent (SILENCE_LIMIT);
    // the janitor itself is tested in the server crate.
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    assert_eq!(
        run_by_id(runs.as_array().unwrap(), &recorded[0].0)["state"],
        "running"
    );
}

#[test]
fn sigterm_to_run_stops_every_process_of_the_command() {
    let s = scratch("sigterm-run");
    // No server: `run --db` uses an embedded one on the local database.
    let mut run = s
        .cmd(&[
            "run",
            "--db",
            ".hyperdial/hyperdial.db",
            "--",
            "python3",
            "family.py",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let recorded = recorded_pids(&s.dir, 1, &mut run);
    signal(run.id(), "TERM");
    let status = wait_child(&mut run, Duration::from_secs(60));
    let all: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_no_orphans("SIGTERM to run", &all);
    // `run` exits as its command did: killed by SIGTERM.
    assert_eq!(status.code(), Some(128 + 15), "{status}");
    let out = run.wait_with_output().unwrap();
    let t = text(&out);
    assert!(t.contains("cancelled"), "{t}");
    assert!(t.contains("interrupted: run received SIGTERM"), "{t}");
}

#[test]
fn sigterm_to_server_shuts_it_down_and_closes_the_database() {
    let s = scratch("sigterm-server");
    let db = s.dir.join("db.sqlite");
    let mut server = ServerProcess::launch(&s, &db, free_port(), Stdio::piped());
    let created = json_of(
        &s,
        &["sweep", "sweep.yaml", "--json", "--server", &server.url],
    );
    signal(server.child.id(), "TERM");
    let status = wait_child(&mut server.child, Duration::from_secs(30));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("SIGTERM: shutting down"), "{out}");
    assert!(out.contains("database closed"), "{out}");
    // A clean close checkpoints the write-ahead log into the database file and removes it.
    assert!(!s.dir.join("db.sqlite-wal").exists());
    let again = ServerProcess::start(&s, &db, free_port());
    let sweeps = json_of(&s, &["sweeps", "--json", "--server", &again.url]);
    assert_eq!(sweeps[0]["id"], created["id"]);
}

#[test]
fn tune_on_a_finished_sweep_says_so_and_retry_runs_only_the_failed_point() {
    let s = Scratch::new("tune-finished");
    s.write(
        "flaky.py",
        "import os, sys\nseed = int(sys.argv[1].split('=')[1])\n\
         if seed == 3 and not os.path.exists('fixed'):\n    sys.exit('dataset server unreachable')\n\
         print(f'hyperdial: loss={seed / 10}')\n",
    );
    s.write(
        "grid.yaml",
        "program: flaky.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  seed: {values: [1, 2, 3, 4]}\n",
    );
    let first = s.run(&["tune", "grid.yaml", "--port", "0"]);
    assert!(
        text(&first).contains("3 finished, 1 failed"),
        "{}",
        text(&first)
    );
    // Again: the finished sweep is found and reported, nothing runs.
    let again = s.run(&["tune", "grid.yaml", "--port", "0"]);
    let t = text(&again);
    assert!(again.status.success(), "{t}");
    assert!(
        t.contains("with this file's configuration is finished (exhausted): 3 finished, 1 failed"),
        "{t}"
    );
    assert!(
        t.contains("--retry   run its 1 failed or crashed runs again"),
        "{t}"
    );
    assert!(t.contains("--new"), "{t}");
    // Its server stops with tune: the dashboard is offered as the command that serves it,
    // never as a URL that is about to go dead.
    assert!(t.contains("  hyperdial ui "), "{t}");
    assert!(!t.contains("  dashboard: http"), "{t}");
    assert!(!t.contains("stopped serving"), "it served nothing: {t}");
    assert!(!t.contains("started"), "{t}");
    // --retry runs only seed 3, as attempt 2 of the failed run.
    s.write("fixed", "");
    let retried = s.run(&["tune", "grid.yaml", "--retry", "--port", "0"]);
    let t = text(&retried);
    assert!(t.contains("1 failed or crashed runs queued again"), "{t}");
    assert!(t.contains("(4 runs so far, 1 queued to run again)"), "{t}");
    assert!(t.contains("run #5 started (retry of run r"), "{t}");
    // The count goes on from the 3 configurations settled before.
    assert!(t.contains("[4/4] run #5 finished"), "{t}");
    assert!(t.contains("): seed=3"), "{t}");
    assert!(!t.contains("run #6"), "{t}");
    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), free_port());
    let sweeps = json_of(&s, &["sweeps", "--json", "--server", &server.url]);
    assert_eq!(sweeps.as_array().unwrap().len(), 1, "{sweeps:#}");
    let id = sweeps[0]["id"].as_str().unwrap().to_string();
    assert_eq!(sweeps[0]["state"], "finished");
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 5);
    let retry = runs.iter().find(|r| r["attempt"] == 2).unwrap();
    assert_eq!(retry["params"]["seed"], 3);
    assert_eq!(retry["state"], "finished");
    let failed = run_by_id(runs, retry["retry_of"].as_str().unwrap());
    assert_eq!(failed["state"], "failed");
    // The `#` column stays narrow: the run retried is named in the note.
    let table = s.run(&["runs", &id, "--server", &server.url]);
    let table = text(&table);
    let row = table
        .lines()
        .find(|l| l.contains(retry["id"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("no row of the retry: {table}"));
    assert!(row.contains(" 5 (attempt 2) "), "{table}");
    assert!(
        row.contains(&format!("retry of {}", failed["id"].as_str().unwrap())),
        "{table}"
    );
    // `hyperdial retry`: nothing left to retry by default; a named finished run is queued.
    // Without a server answering, it works on the local database.
    let out = s.run(&["retry", &id, "--server", "http://127.0.0.1:1"]);
    assert!(
        text(&out).contains("nothing to retry; sweep"),
        "{}",
        text(&out)
    );
    let first = runs.iter().find(|r| r["number"] == 1).unwrap();
    let out = s.run(&[
        "retry",
        &id,
        first["id"].as_str().unwrap(),
        "--server",
        &server.url,
    ]);
    assert!(text(&out).contains("queued run #6"), "{}", text(&out));
    assert!(text(&out).contains("(attempt 2)"), "{}", text(&out));
    assert!(text(&out).contains("with 1 queued"), "{}", text(&out));
    // A second retry counts the first one's run, still queued, with its own.
    let second = runs.iter().find(|r| r["number"] == 2).unwrap();
    let out = s.run(&[
        "retry",
        &id,
        second["id"].as_str().unwrap(),
        "--server",
        &server.url,
    ]);
    assert!(text(&out).contains("queued run #7"), "{}", text(&out));
    assert!(text(&out).contains("with 2 queued"), "{}", text(&out));
    // --new starts over.
    let fresh = s.run(&["tune", "grid.yaml", "--new", "--port", "0"]);
    assert!(text(&fresh).contains("created sweep"), "{}", text(&fresh));
}

/// An agent SIGKILLed while its run's script runs: the run's processes get SIGTERM first (the
/// reaper), so a script ends as it would on a scheduler's SIGTERM, and what it logs through
/// the Python client on the way out reaches the server; nothing of the run is left running.
#[test]
fn a_run_whose_agent_is_sigkilled_gets_sigterm_first_and_its_last_points_are_stored() {
    const LOGS: &str = r#"
import os, signal, sys, time, hyperdial
run = hyperdial.init()
def on_term(signum, frame):
    run.log({"loss": 0.25})
    open("term.txt", "w").close()
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
run.log({"loss": 1.0})
run.log({"loss": 0.5})
with open("logged.tmp", "w") as f:
    f.write(f"{os.environ['HYPERDIAL_RUN_ID']} {os.getpid()}")
os.rename("logged.tmp", "logged.txt")
time.sleep(600)
"#;
    let s = Scratch::new("sigkill-flush");
    s.write("logs.py", LOGS);
    s.write(
        "sweep.yaml",
        "program: logs.py\nmethod: random\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n",
    );
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let id = sweep_from_file(&s, &server.url);
    let mut agent = spawn_agent(&s, &id, &server.url, Stdio::null());
    let marker = s.dir.join("logged.txt");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
        assert!(Instant::now() < deadline, "the script did not log");
        std::thread::sleep(Duration::from_millis(10));
    }
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    let text = std::fs::read_to_string(&marker).unwrap();
    let (run, pid) = text.split_once(' ').unwrap();
    assert_no_orphans("SIGKILL to agent after a point", &[pid.parse().unwrap()]);
    assert!(s.dir.join("term.txt").exists(), "the script got no SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
        let steps = run_by_id(runs.as_array().unwrap(), run)["steps"].as_i64();
        if steps == Some(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run holds {steps:?} steps, not the 3 points logged: {runs:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `tune` killed with SIGKILL: its runs die with it (the reaper), and a server started again on
/// the same database finds their agent process gone and marks them `crashed` at once (no
/// minute of silence to wait out); the default retry policy then queues them again.
#[test]
fn runs_of_a_sigkilled_tune_are_crashed_at_once_when_its_server_starts_again() {
    let s = scratch("sigkill-tune");
    let mut tune = spawn_tune(&s, Stdio::null, Stdio::null);
    let recorded = recorded_pids(&s.dir, 2, &mut tune);
    tune.kill().unwrap(); // SIGKILL
    tune.wait().unwrap();
    let all: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_no_orphans("SIGKILL to tune", &all);
    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), free_port());
    let id = sweep_id(&s, &server.url);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
        let runs = runs.as_array().unwrap().clone();
        let crashed: Vec<&Value> = recorded
            .iter()
            .map(|(run, _)| run_by_id(&runs, run))
            .filter(|r| r["state"] == "crashed")
            .collect();
        if crashed.len() == recorded.len() {
            for r in crashed {
                assert!(
                    r["error"]
                        .as_str()
                        .unwrap()
                        .contains("agent process is gone"),
                    "{r:#}"
                );
            }
            // Each crashed run is queued again with its configuration, just after its crash
            // (a second statement, which this read may come between).
            let queued = runs.iter().filter(|r| r["state"] == "queued").count();
            if queued == recorded.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the crashed runs were not queued again: {runs:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        assert!(
            Instant::now() < deadline,
            "the runs of the killed tune were not marked crashed: {runs:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A configuration whose jobs are stopped again and again (a preempted job requeued onto a
/// node that preempts it again, a job that gets its own allocation cancelled) is not queued
/// for ever: the third interruption in a row ends the run `failed`, with an error that says
/// why and how to run it again or raise the cap, and nothing more is queued.
#[test]
fn a_run_interrupted_three_times_in_a_row_fails_and_is_not_queued_again() {
    let s = scratch("interrupted-cap");
    s.write(
        "one.yaml",
        "program: family.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [0.5]}\n",
    );
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let created = json_of(
        &s,
        &["sweep", "one.yaml", "--json", "--server", &server.url],
    );
    let id = created["id"].as_str().unwrap().to_string();
    for attempt in 1..=3 {
        let mut agent = s
            .cmd(&["agent", &id, "--server", &server.url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let recorded = recorded_pids(&s.dir, attempt, &mut agent);
        signal(agent.id(), "TERM");
        let status = wait_child(&mut agent, Duration::from_secs(60));
        assert!(status.success(), "attempt {attempt}: {status}");
        let pids: Vec<i32> = recorded.iter().flat_map(|(_, p)| p.clone()).collect();
        assert_no_orphans("SIGTERM to agent", &pids);
    }
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:#?}");
    let attempt = |n: i64| {
        runs.iter()
            .find(|r| r["attempt"] == n)
            .unwrap_or_else(|| panic!("no attempt {n} in {runs:#?}"))
    };
    for n in [1, 2] {
        let r = attempt(n);
        assert_eq!(r["state"], "cancelled", "{r:#}");
        assert_eq!(r["error"], "interrupted: agent received SIGTERM", "{r:#}");
    }
    let last = attempt(3);
    let last_id = last["id"].as_str().unwrap();
    assert_eq!(last["state"], "failed", "{last:#}");
    assert_eq!(last["retry_of"], attempt(2)["id"], "{runs:#?}");
    let error = last["error"].as_str().unwrap();
    assert!(
        error.starts_with("interrupted 3 times in a row (this time: agent received SIGTERM)"),
        "{error}"
    );
    assert!(error.contains("not queued again"), "{error}");
    assert!(
        error.contains(&format!("hyperdial retry {id} {last_id}")),
        "{error}"
    );
    assert!(error.contains("retry: {interrupted: N}"), "{error}");

    // Nothing was queued: the sweep is over, and another agent finds no run to start.
    let sweep = json_of(&s, &["sweeps", "--json", "--server", &server.url]);
    assert_eq!(sweep[0]["state"], "finished", "{sweep:#}");
    let mut agent = spawn_agent(&s, &id, &server.url, Stdio::null());
    wait_child(&mut agent, Duration::from_secs(60));
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    assert_eq!(runs.as_array().unwrap().len(), 3, "{runs:#}");

    // The command the error names runs the configuration again.
    let out = s.run(&["retry", &id, last_id, "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("(attempt 4)"), "{}", text(&out));
}

/// An agent started away from the sweep's program (the printed `hyperdial agent` command run
/// from another directory) claims no run: every run would fail at once with "can't open file"
/// and count toward `run_cap`. It stops before any claim and says where to start it.
#[test]
fn an_agent_away_from_the_program_claims_no_run_and_says_where_to_start() {
    let s = Scratch::new("agent-elsewhere");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let id = create_sweep(
        &s,
        &server.url,
        "program: train.py\nmethod: random\nmetric: {name: loss}\nrun_cap: 3\nparameters:\n  a: {min: 0.0, max: 1.0}\n",
    );
    let elsewhere = s.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = s
        .cmd(&["agent", &id, "--server", &server.url])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "its program `train.py` is not in {}, where this agent runs the sweep's command",
            elsewhere.display()
        )) && said.contains("sweep file was `sweep.yaml`")
            && said.contains("no run was claimed"),
        "{said}"
    );
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "{runs:#}");
    // A sweep created from the parent directory is told where its agents start.
    let created = s
        .cmd(&[
            "sweep",
            &format!(
                "{}/sweep.yaml",
                s.dir.file_name().unwrap().to_string_lossy()
            ),
            "--server",
            &server.url,
        ])
        .current_dir(s.dir.parent().unwrap())
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", text(&created));
    assert!(
        text(&created).contains(&format!(
            "start agents in {} (where `train.py` is) with:",
            s.dir.file_name().unwrap().to_string_lossy()
        )),
        "{}",
        text(&created)
    );
    // From the program's directory the same command runs the sweep.
    let out = s
        .cmd(&["agent", &id, "--server", &server.url, "--count", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}
