//! The sweep loop end to end with the real binary: `tune` with several agents, run caps,
//! crashing scripts, stop and cancel, exact metrics, and a server killed with SIGKILL.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[test]
fn three_agents_on_a_grid_of_12_give_12_distinct_finished_runs() {
    let s = Scratch::new("grid");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1, 2, 3, 4, 5, 6]}\n  b: {values: [x, y]}\n  sleep: {value: 0.05}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--agents", "3", "--port", "0"]);
    assert!(out.status.success());
    let t = text(&out);
    assert!(t.contains("12 finished"), "{t}");
    assert!(t.contains("best run: #"), "{t}");
    assert!(t.contains("a = 1") && t.contains("b = x"), "{t}");
    // The store holds 12 distinct configurations; a second tune finds the finished sweep and
    // starts nothing.
    let again = s.run(&["tune", "sweep.yaml", "--agents", "3", "--port", "0"]);
    let t2 = text(&again);
    assert!(
        t2.contains("with this file's configuration is finished (exhausted): 12 finished"),
        "{t2}"
    );
    let port = free_port();
    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), port);
    let id = sweep_id(&s, &server.url);
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 12, "{runs:#?}");
    let distinct: std::collections::HashSet<String> =
        runs.iter().map(|r| r["params"].to_string()).collect();
    assert_eq!(distinct.len(), 12);
    assert!(runs.iter().all(|r| r["state"] == "finished"));
    // The agent recorded the exact argv of each run.
    for r in runs {
        let argv: Vec<&str> = r["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(argv[..3], ["/usr/bin/env", "python3", "train.py"], "{r:#}");
        assert!(
            argv.contains(&format!("--a={}", r["params"]["a"]).as_str()),
            "{argv:?}"
        );
    }
    // Exact metrics: loss of the last step is a / steps (+0.5 for b = y), as the script computes.
    for r in runs {
        let a = r["params"]["a"].as_f64().unwrap();
        let extra = if r["params"]["b"] == "y" { 0.5 } else { 0.0 };
        assert_eq!(r["summary"]["loss"].as_f64().unwrap(), a / 3.0 + extra);
        assert_eq!(r["metric"].as_f64().unwrap(), a / 3.0 + extra);
        assert_eq!(r["summary"]["step_sq"].as_f64(), Some(4.0));
    }
    let best = s.run(&["best", &id, "--format", "args", "--server", &server.url]);
    assert!(
        String::from_utf8_lossy(&best.stdout).contains("--a=1 --b=x"),
        "{}",
        text(&best)
    );
    let csv = s.run(&["export", &id, "--format", "csv", "--server", &server.url]);
    assert_eq!(String::from_utf8_lossy(&csv.stdout).lines().count(), 13);
}

#[test]
fn random_with_run_cap_and_a_crashing_script() {
    let s = Scratch::new("random");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: random\nrun_cap: 5\nmetric: {name: loss}\nparameters:\n  a: {distribution: log_uniform_values, min: 0.01, max: 10}\n  crash: {values: [false]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--agents", "2", "--port", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("5 finished"), "{}", text(&out));

    // A script that always crashes: runs fail, the agent stops after three quick failures.
    s.write(
        "crash.yaml",
        "program: train.py\nmethod: random\nrun_cap: 10\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n  crash: {value: true}\n",
    );
    let out = s.run(&["tune", "crash.yaml", "--port", "0"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("3 runs in a row failed within a minute"), "{t}");
    assert!(t.contains("exit code 3"), "{t}");
    // The captured stderr of a failed run is kept.
    let port = free_port();
    let server = ServerProcess::start(&s, &s.dir.join(".hyperdial/hyperdial.db"), port);
    let sweeps = json_of(&s, &["sweeps", "--json", "--server", &server.url]);
    let crash = sweeps
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["file"] == "crash.yaml")
        .unwrap();
    assert_eq!(crash["counts"]["failed"], 3);
    let runs = json_of(
        &s,
        &[
            "runs",
            crash["id"].as_str().unwrap(),
            "--json",
            "--server",
            &server.url,
        ],
    );
    let run_id = runs[0]["id"].as_str().unwrap();
    let out = s.run(&["output", run_id, "--server", &server.url]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("about to crash"),
        "{}",
        text(&out)
    );
}

/// A run that hangs is stopped at the sweep's `run_time_limit` and ends `failed`, and the
/// agent goes on with the sweep's other runs.
#[test]
fn a_hung_run_is_stopped_at_the_run_time_limit_and_the_sweep_goes_on() {
    let s = Scratch::new("run-time-limit");
    s.write(
        "hang.py",
        "import sys, time\nhang = '--hang=1' in sys.argv\nif hang:\n    time.sleep(300)\nprint('hyperdial: loss=0.5', flush=True)\n",
    );
    s.write(
        "sweep.yaml",
        "program: hang.py\nmethod: grid\nmetric: {name: loss}\nrun_time_limit: 2s\nparameters:\n  hang: {values: [1, 0]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0"]);
    let t = text(&out);
    assert!(t.contains("1 finished"), "{t}");
    assert!(t.contains("1 failed"), "{t}");
    let runs = json_of(&s, &["runs", "--json"]);
    let hung = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["params"]["hang"] == 1)
        .unwrap_or_else(|| panic!("{runs:#}"));
    assert_eq!(hung["state"], "failed", "{hung:#}");
    assert_eq!(
        hung["error"],
        "still running after the sweep's run_time_limit (2s): stopped"
    );
}

/// A repository laid out as W&B users lay it out (the script at the root, the sweep files in
/// a folder) runs with `--workdir .`, which the refusal without it names.
#[test]
fn tune_runs_the_command_in_the_workdir_given() {
    let s = Scratch::new("workdir");
    s.write(
        "train.py",
        "import os\nprint('hyperdial: loss=' + str(len(os.getcwd())), flush=True)\n",
    );
    std::fs::create_dir_all(s.dir.join("sweeps")).unwrap();
    s.write(
        "sweeps/sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  x: {values: [1]}\n",
    );
    let refused = s.run(&["tune", "sweeps/sweep.yaml", "--port", "0"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("with `--workdir DIR`"),
        "{}",
        text(&refused)
    );
    let ran = s.run(&["tune", "sweeps/sweep.yaml", "--port", "0", "--workdir", "."]);
    assert!(ran.status.success(), "{}", text(&ran));
    assert!(text(&ran).contains("1 finished"), "{}", text(&ran));
    let bad = s.run(&[
        "tune",
        "sweeps/sweep.yaml",
        "--port",
        "0",
        "--workdir",
        "nope",
    ]);
    assert!(
        text(&bad).contains("--workdir nope: no such directory"),
        "{}",
        text(&bad)
    );
}

/// Resuming a sweep with failed runs says they are not run again, and how to run them: a
/// script fixed since (or a missing `--wandb`) is otherwise left with those runs lost.
#[test]
fn resuming_a_sweep_with_failed_runs_names_the_retry() {
    let s = Scratch::new("resume-failed");
    s.write(
        "job.py",
        "import sys\nx = int(sys.argv[1].split('=')[1])\nif x == 1:\n    sys.exit(3)\n\
         print('hyperdial: loss=' + str(x), flush=True)\n",
    );
    s.write(
        "sweep.yaml",
        "program: job.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  x: {values: [1, 2, 3]}\n",
    );
    let first = s.run(&["tune", "sweep.yaml", "--port", "0", "--count", "2"]);
    assert!(first.status.success(), "{}", text(&first));
    let again = text(&s.run(&["tune", "sweep.yaml", "--port", "0", "--count", "1"]));
    assert!(again.contains("resuming sweep"), "{again}");
    assert!(
        again.contains("its 1 failed or crashed run is not run again; `hyperdial tune sweep.yaml --retry` runs it"),
        "{again}"
    );
    // `hyperdial retry` on the local store names the command that runs what it queued: tune
    // with the sweep's file while the file is unchanged, else a server and an agent.
    let runs = json_of(&s, &["runs", "--json"]);
    let runs = runs.as_array().unwrap();
    let id = runs[0]["sweep"].as_str().unwrap().to_string();
    let no_server = ["--server", "http://127.0.0.1:1"];
    let retried = text(&s.run(&[&["retry", id.as_str()][..], &no_server[..]].concat()));
    assert!(
        retried.contains("run them with `hyperdial tune sweep.yaml`"),
        "{retried}"
    );
    s.write(
        "sweep.yaml",
        "program: job.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  x: {values: [1, 2, 3, 4]}\n",
    );
    let finished = runs.iter().find(|r| r["state"] == "finished").unwrap();
    let named = [id.as_str(), finished["id"].as_str().unwrap()];
    let retried = text(&s.run(&[&["retry"][..], &named[..], &no_server[..]].concat()));
    assert!(
        retried.contains(&format!("`hyperdial server` (on this directory's store) and, beside it, `hyperdial agent {id}` (sweep.yaml is not the sweep's file as it was")),
        "{retried}"
    );
}

/// A retry's process is told which attempt it repeats (`HYPERDIAL_RETRY_OF`, the run id under
/// which that attempt saved its checkpoint) and its attempt number (`HYPERDIAL_ATTEMPT`).
#[test]
fn a_retry_is_told_the_attempt_it_repeats() {
    let s = Scratch::new("retry-env");
    s.write(
        "resume.py",
        "import os, sys\nprevious = os.environ.get('HYPERDIAL_RETRY_OF')\nif previous is None:\n    sys.exit(1)\n\
         open('retry.txt', 'w').write(previous + ' ' + os.environ['HYPERDIAL_ATTEMPT'] + ' ' + os.environ['HYPERDIAL_RUN_ID'])\n\
         print('hyperdial: loss=0.5', flush=True)\n",
    );
    s.write(
        "sweep.yaml",
        "program: resume.py\nmethod: grid\nmetric: {name: loss}\nretry: {max: 1, on: [failed]}\n\
         parameters:\n  a: {values: [1]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0"]);
    assert!(text(&out).contains("1 finished"), "{}", text(&out));
    // The retry takes the failed attempt's place in the progress count.
    let said = text(&out);
    assert!(said.contains("[1/1] run #1 failed"), "{said}");
    assert!(said.contains("run #2 started (retry of #1)"), "{said}");
    assert!(said.contains("[1/1] run #2 finished"), "{said}");
    assert!(!said.contains("[2/"), "{said}");
    let runs = json_of(&s, &["runs", "--json"]);
    let runs = runs.as_array().unwrap();
    let first = runs.iter().find(|r| r["attempt"] == 1).unwrap();
    let retry = runs.iter().find(|r| r["attempt"] == 2).unwrap();
    assert_eq!(first["state"], "failed");
    assert_eq!(retry["state"], "finished");
    let told = std::fs::read_to_string(s.dir.join("retry.txt")).unwrap();
    assert_eq!(
        told,
        format!(
            "{} 2 {}",
            first["id"].as_str().unwrap(),
            retry["id"].as_str().unwrap()
        )
    );
}

/// A run whose script marked it preempting and then failed (a preemptible job told to stop)
/// is queued again whatever `retry` says, as W&B requeues a preempted run, and the retry
/// finishes the configuration.
#[test]
fn a_run_marked_preempting_is_queued_again() {
    let s = Scratch::new("preempting");
    s.write(
        "job.py",
        "import os, sys, hyperdial\nrun = hyperdial.init()\n\
         if os.environ.get('HYPERDIAL_RETRY_OF') is None:\n    \
         assert run.mark_preempting()\n    sys.exit(143)\n\
         run.log({'loss': 0.5})\n",
    );
    s.write(
        "sweep.yaml",
        "program: job.py\nmethod: grid\nmetric: {name: loss}\nretry: {max: 0}\n\
         parameters:\n  a: {values: [1]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("1 finished"), "{t}");
    assert!(
        t.contains("run #1 cancelled (interrupted: the script marked the run preempting"),
        "{t}"
    );
    let runs = json_of(&s, &["runs", "--json"]);
    let runs = runs.as_array().unwrap();
    let first = runs.iter().find(|r| r["attempt"] == 1).unwrap();
    let retry = runs.iter().find(|r| r["attempt"] == 2).unwrap();
    assert_eq!(first["state"], "cancelled", "{first:#}");
    assert!(
        first["error"]
            .as_str()
            .unwrap()
            .starts_with("interrupted: the script marked the run preempting"),
        "{first:#}"
    );
    assert_eq!(retry["state"], "finished");
    assert_eq!(retry["retry_of"], first["id"]);
}

/// How many failures in a row stop an agent: W&B's variable is read (a job script written
/// for `wandb agent` keeps its count), hyperdial's first, 0 never stops, and a bad value is
/// an error before anything runs.
#[test]
fn the_crash_loop_count_follows_the_environment() {
    let s = Scratch::new("crash-count");
    let crash = |name: &str, cap: u32| {
        s.write(
            &format!("{name}.yaml"),
            &format!(
                "program: train.py\nmethod: random\nname: {name}\nrun_cap: {cap}\n\
                 metric: {{name: loss}}\nparameters:\n  a: {{min: 0.0, max: 1.0}}\n  crash: {{value: true}}\n"
            ),
        );
    };
    crash("five", 10);
    let out = s
        .cmd(&["tune", "five.yaml", "--port", "0"])
        .env("WANDB_AGENT_MAX_INITIAL_FAILURES", "5")
        .env_remove("HYPERDIAL_MAX_FAILURES")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("5 runs in a row failed within a minute"), "{t}");
    assert!(
        t.contains("WANDB_AGENT_MAX_INITIAL_FAILURES=N sets how many"),
        "{t}"
    );

    crash("never", 4);
    let out = s
        .cmd(&["tune", "never.yaml", "--port", "0"])
        .env("WANDB_AGENT_MAX_INITIAL_FAILURES", "2")
        .env("HYPERDIAL_MAX_FAILURES", "0")
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!t.contains("in a row failed"), "{t}");
    assert!(t.contains("4 failed"), "{t}");
    // Not one run with a result: tune says so and exits 1.
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("error: no run of sweep "), "{t}");

    let out = s
        .cmd(&["tune", "never.yaml", "--port", "0"])
        .env("HYPERDIAL_MAX_FAILURES", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("HYPERDIAL_MAX_FAILURES=\"lots\" is not a number"),
        "{}",
        text(&out)
    );
}

#[test]
fn stop_and_cancel() {
    let s = Scratch::new("stopcancel");
    let port = free_port();
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), port);
    let url = server.url.clone();
    s.write(
        "slow.yaml",
        "program: train.py\nmethod: random\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n  steps: {value: 200}\n  sleep: {value: 0.05}\n",
    );
    let created = json_of(&s, &["sweep", "slow.yaml", "--json", "--server", &url]);
    let id = created["id"].as_str().unwrap().to_string();
    let mut agent = s
        .cmd(&["agent", &id, "--server", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&s, &url, &id, |runs| {
        runs.iter()
            .any(|r| r["state"] == "running" && r["summary"]["loss"].is_number())
    });
    // Cancel: the running run is stopped and ends cancelled, the agent exits.
    let out = s.run(&["cancel", &id, "--server", &url]);
    assert!(text(&out).contains("cancelled"));
    let status = wait_child(&mut agent, Duration::from_secs(30));
    assert!(status.success());
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &url]);
    assert_eq!(runs[0]["state"], "cancelled", "{runs:#?}");
    // Its error says why, as the note of `hyperdial runs` shows it.
    assert_eq!(
        runs[0]["error"], "stopped: its sweep was cancelled (`cancel`)",
        "{runs:#?}"
    );
    let listed = s.run(&["runs", &id, "--server", &url]);
    assert!(
        text(&listed).contains("its sweep was cancelled"),
        "{}",
        text(&listed)
    );

    // Stop: the running run finishes on its own, no new run starts.
    s.write(
        "short.yaml",
        "program: train.py\nmethod: random\nname: short\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n  steps: {value: 20}\n  sleep: {value: 0.05}\n",
    );
    let created = json_of(&s, &["sweep", "short.yaml", "--json", "--server", &url]);
    let id = created["id"].as_str().unwrap().to_string();
    let mut agent = s
        .cmd(&["agent", &id, "--server", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&s, &url, &id, |runs| {
        runs.iter().any(|r| r["state"] == "running")
    });
    s.run(&["stop", &id, "--server", &url]);
    let status = wait_child(&mut agent, Duration::from_secs(30));
    assert!(status.success());
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["state"], "finished");
    assert_eq!(runs[0]["steps"], 20);
}

#[test]
fn server_killed_with_sigkill_loses_nothing_acknowledged() {
    let s = Scratch::new("sigkill");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let url = server.url.clone();
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1, 2, 3, 4, 5, 6]}\n  steps: {value: 10}\n  sleep: {value: 0.05}\n",
    );
    let created = json_of(&s, &["sweep", "sweep.yaml", "--json", "--server", &url]);
    let id = created["id"].as_str().unwrap().to_string();
    let mut agent = s
        .cmd(&["agent", &id, "--server", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&s, &url, &id, |runs| {
        runs.iter().filter(|r| r["state"] == "finished").count() >= 2
    });
    let before = json_of(&s, &["runs", &id, "--json", "--server", &url]);
    server.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let server = ServerProcess::start(&s, &db, port);
    let status = wait_child(&mut agent, Duration::from_secs(90));
    assert!(status.success());
    let after = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let after = after.as_array().unwrap();
    // Every run acknowledged before the kill is still there, with its metrics.
    for r in before.as_array().unwrap() {
        let same = after
            .iter()
            .find(|x| x["id"] == r["id"])
            .expect("run survived");
        if r["state"] == "finished" {
            assert_eq!(same["summary"], r["summary"]);
            assert_eq!(same["steps"], 10);
        }
    }
    // The sweep completed: six distinct finished runs, each with all ten steps.
    assert_eq!(after.len(), 6, "{after:#?}");
    assert!(
        after
            .iter()
            .all(|r| r["state"] == "finished" && r["steps"] == 10),
        "{after:#?}"
    );
    let sweep = json_of(&s, &["sweeps", "--json", "--server", &server.url]);
    assert_eq!(sweep[0]["state"], "finished");
}

#[test]
fn run_tracks_any_command_and_sync_uploads_offline_runs() {
    let s = Scratch::new("manual");
    let port = free_port();
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), port);
    // A manual run of a command that prints metric lines, writes to stderr and exits 4.
    let out = s.run(&[
        "run", "--project", "manual", "--name", "try-1", "--server", &server.url, "--",
        "python3", "-c", "import sys\nfor i in range(3): print(f'hyperdial: loss={1.0/(i+1)!r}', flush=True)\nprint('warn', file=sys.stderr)\nsys.exit(4)",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let body = http_get(&format!("{}/api/v1/runs?project=manual", server.url));
    let listed: Value = serde_json::from_str(&body).unwrap();
    let run = &listed["runs"][0];
    assert_eq!(run["state"], "failed");
    assert_eq!(run["exit_code"], 4);
    assert_eq!(run["name"], "try-1");
    assert_eq!(run["argv"][0], "python3");
    assert!(run["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(run["summary"]["loss"].as_f64(), Some(1.0 / 3.0));
    let output = http_get(&format!(
        "{}/api/v1/runs/{}/output",
        server.url,
        run["id"].as_str().unwrap()
    ));
    assert!(output.contains("warn"), "{output}");

    // The Python client on its own with no server writes an offline file; `sync` uploads it.
    let script = s.write(
        "offline.py",
        &format!(
            "import sys\nsys.path.insert(0, {:?})\nimport hyperdial\nrun = hyperdial.init(config={{'lr': 0.1}}, project='offline')\nrun.update_config({{'batch': 32, 'opt': {{'beta': 0.9}}}})\nfor i in range(4):\n    run.log({{'loss': 0.5 ** i}})\nrun.summary['best'] = 0.125\nrun.finish()\n",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python").canonicalize().unwrap()
        ),
    );
    let py = Command::new("python3")
        .arg(&script)
        .current_dir(&s.dir)
        .env("HYPERDIAL_MODE", "offline")
        .env_remove("HYPERDIAL_SERVER")
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", text(&py));
    // The script ran a minute before the upload: its records say when.
    let dir = s.dir.join(".hyperdial/offline");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let mut times = Vec::new();
    let shifted: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| {
            let mut r: Value = serde_json::from_str(line).unwrap();
            if let Some(t) = r["time_ms"].as_i64() {
                r["time_ms"] = (t - 60_000).into();
                times.push((r["type"].as_str().unwrap_or("").to_string(), t - 60_000));
            }
            r.to_string()
        })
        .collect();
    std::fs::write(&file, shifted.join("\n") + "\n").unwrap();
    let when = |kind: &str| times.iter().find(|(k, _)| k == kind).map(|(_, t)| *t);
    let out = s.run(&["sync", "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("1 uploaded, 0 refused, 0 failed"),
        "{}",
        text(&out)
    );
    let body = http_get(&format!("{}/api/v1/runs?project=offline", server.url));
    let listed: Value = serde_json::from_str(&body).unwrap();
    let run = &listed["runs"][0];
    assert_eq!(run["state"], "finished");
    assert_eq!(run["config"]["lr"], 0.1);
    // Config the script added after `init` is recorded offline too.
    assert_eq!(run["config"]["batch"], 32);
    assert_eq!(run["config"]["opt"]["beta"], 0.9);
    assert_eq!(run["summary"]["best"], 0.125);
    assert_eq!(run["steps"], 4);
    // Dated when the script ran, not when it was uploaded.
    assert_eq!(run["created_ms"].as_i64(), when("init"), "{run:#}");
    assert_eq!(run["finished_ms"].as_i64(), when("finish"), "{run:#}");
    // A script on its own keeps its output on its terminal: `output` says so, not nothing.
    let out = s.run(&[
        "output",
        run["id"].as_str().unwrap(),
        "--server",
        &server.url,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no captured output"),
        "{}",
        text(&out)
    );
    // Nothing is uploaded twice.
    let again = s.run(&["sync", "--server", &server.url]);
    assert!(text(&again).contains("nothing to sync"), "{}", text(&again));
    // The run took the id of its file, so a copy of the file synced again (brought back
    // from a node) is recognized, and nothing is sent twice.
    let id = run["id"].as_str().unwrap().to_string();
    let local = file.file_stem().unwrap().to_str().unwrap();
    assert_eq!(id, format!("offline-{local}"));
    let synced = file.with_extension("jsonl.synced");
    std::fs::copy(&synced, &file).unwrap();
    let copy = s.run(&["sync", "--server", &server.url]);
    assert!(copy.status.success(), "{}", text(&copy));
    assert!(
        text(&copy).contains(&format!("already uploaded as run {id}")),
        "{}",
        text(&copy)
    );
    assert!(
        text(&copy).contains("0 uploaded, 1 uploaded before (nothing sent), 0 refused, 0 failed"),
        "{}",
        text(&copy)
    );
    let body = http_get(&format!("{}/api/v1/runs?project=offline", server.url));
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["runs"].as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed["runs"][0]["steps"], 4);

    // A sync cut short (the server died after the run and half its points arrived) is
    // completed by the next one: the same run, every step once, and its end.
    let cut = s
        .dir
        .join(".hyperdial/offline/20260101-000000-abcdef.jsonl");
    let records: Vec<String> = std::fs::read_to_string(&synced)
        .unwrap()
        .lines()
        .map(|line| {
            let mut r: Value = serde_json::from_str(line).unwrap();
            if r["type"] == "init" {
                r["local_id"] = "20260101-000000-abcdef".into();
            }
            r.to_string()
        })
        .collect();
    std::fs::write(&cut, records.join("\n") + "\n").unwrap();
    let url = &server.url;
    http_post(
        &format!("{url}/api/v1/runs"),
        &json!({"project": "offline", "id": "offline-20260101-000000-abcdef"}),
    );
    http_post(
        &format!("{url}/api/v1/runs/offline-20260101-000000-abcdef/metrics"),
        &json!({"points": [{"step": 0, "values": {"loss": 1.0}},
                           {"step": 1, "values": {"loss": 0.5}}]}),
    );
    let out = s.run(&["sync", "--server", &server.url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "run offline-20260101-000000-abcdef (its earlier upload, cut short, is complete now)"
        ),
        "{}",
        text(&out)
    );
    let body = http_get(&format!(
        "{}/api/v1/runs/offline-20260101-000000-abcdef",
        server.url
    ));
    let completed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(completed["state"], "finished", "{completed:#}");
    assert_eq!(completed["steps"], 4, "{completed:#}");
    let body = http_get(&format!("{}/api/v1/runs?project=offline", server.url));
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["runs"].as_array().unwrap().len(), 2, "{listed:#}");
}

/// `sync --db` writes offline runs into the store it names, with no server, and the runs
/// read back from it; a server named with `--server` that does not answer is an error that
/// says how to write into a store instead, and nothing is uploaded or marked synced.
#[test]
fn sync_into_a_named_store_and_never_in_silence_past_a_named_server() {
    let s = Scratch::new("sync-db");
    let offline = s.dir.join(".hyperdial/offline");
    std::fs::create_dir_all(&offline).unwrap();
    std::fs::write(
        offline.join("20260101-000000-abcdef.jsonl"),
        concat!(
            r#"{"type":"init","project":"notes","name":"by-hand","config":{"lr":0.3},"argv":["t.py"],"host":"box","git":null,"time_ms":1}"#,
            "\n",
            r#"{"type":"log","step":0,"time_ms":2,"values":{"loss":0.9}}"#,
            "\n",
            r#"{"type":"log","step":1,"time_ms":3,"values":{"loss":0.4}}"#,
            "\n",
            r#"{"type":"finish","exit_code":0,"time_ms":4}"#,
            "\n"
        ),
    )
    .unwrap();

    // A named server that is down: refused, the file stays to be synced.
    let down = format!("http://127.0.0.1:{}", free_port());
    let out = s.run(&["sync", "--server", &down]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&down), "{}", text(&out));
    assert!(text(&out).contains("--db"), "{}", text(&out));
    let port = down.rsplit(':').next().unwrap();
    assert!(
        text(&out).contains(&format!("--bind 127.0.0.1:{port}")),
        "{}",
        text(&out)
    );
    assert!(offline.join("20260101-000000-abcdef.jsonl").exists());

    // --db and --server together are refused by the parser.
    let both = s.run(&["sync", "--db", "x.db", "--server", &down]);
    assert!(!both.status.success(), "{}", text(&both));

    // Into a named store, created as it is written.
    let out = s.run(&["sync", "--db", "team.db"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("syncing into the store team.db"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("1 uploaded, 0 refused, 0 failed"),
        "{}",
        text(&out)
    );
    assert!(offline.join("20260101-000000-abcdef.jsonl.synced").exists());
    let runs = json_of(
        &s,
        &["runs", "--db", "team.db", "--project", "notes", "--json"],
    );
    let run = &runs[0];
    assert_eq!(run["state"], "finished", "{runs}");
    assert_eq!(run["name"], "by-hand");
    assert_eq!(run["config"]["lr"], 0.3);
    assert_eq!(run["summary"]["loss"], 0.4);
    // The default store was not touched.
    assert!(!s.dir.join(".hyperdial/hyperdial.db").exists());

    // Without a directory, sync reads where the client wrote: $HYPERDIAL_DIR/offline.
    let elsewhere = s.dir.join("elsewhere/offline");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(
        offline.join("20260101-000000-abcdef.jsonl.synced"),
        elsewhere.join("20260101-000001-abcdef.jsonl"),
    )
    .unwrap();
    let out = s
        .cmd(&["sync", "--db", "other.db"])
        .env("HYPERDIAL_DIR", s.dir.join("elsewhere"))
        .output()
        .unwrap();
    assert!(
        text(&out).contains("1 uploaded, 0 refused, 0 failed"),
        "{}",
        text(&out)
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// `HYPERDIAL_SERVER` may list several servers (for agents on several servers of one
/// database): the other commands talk to the first.
#[test]
fn a_server_list_in_the_environment_serves_every_command_through_its_first_server() {
    let s = Scratch::new("server-list");
    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    let list = format!("{},http://127.0.0.1:{}", server.url, free_port());
    let out = s
        .cmd(&["sweeps", "--json"])
        .env("HYPERDIAL_SERVER", &list)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed.is_array() || listed.is_object(), "{listed}");
}

/// An agent given several servers (`--server DOWN,UP`) whose first is down when it starts goes
/// on with the next from its first request on, as it does mid-run, instead of retrying the
/// first alone and exiting.
#[test]
fn an_agent_whose_first_server_is_down_at_start_goes_on_with_the_next() {
    let s = Scratch::new("agent-first-down");
    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    let id = create_sweep(
        &s,
        &server.url,
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0, 2.0]}\n  steps: {value: 2}\n",
    );
    let down = format!("http://127.0.0.1:{}", free_port());
    let mut agent = s
        .cmd(&["agent", &id, "--server", &format!("{down},{}", server.url)])
        .env("HYPERDIAL_RETRY_SECONDS", "10")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_child(&mut agent, Duration::from_secs(60));
    let out = agent.wait_with_output().unwrap();
    assert!(status.success(), "{status}: {}", text(&out));
    assert!(
        text(&out).contains(&format!("going on with {}", server.url)),
        "{}",
        text(&out)
    );
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:#?}");
}
