//! Sweep actions from the command line: one that does not apply to the sweep's state fails
//! with the server's reason, and the sweep keeps its state; an agent on a paused sweep says
//! that it waits, and runs the sweep once it is resumed.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{create_sweep, free_port, json_of, text, wait_child, Scratch, ServerProcess};

#[test]
fn an_action_on_an_ended_sweep_says_why_and_changes_nothing() {
    let s = Scratch::new("actions");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: random\nparameters:\n  a: {min: 0.0, max: 1.0}\n",
    );
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let url = server.url.clone();
    let created = json_of(&s, &["sweep", "sweep.yaml", "--json", "--server", &url]);
    let id = created["id"].as_str().unwrap().to_string();
    // Stopping it again says it is finished and succeeds: a script may stop a sweep twice.
    for _ in 0..2 {
        let out = s.run(&["stop", &id, "--server", &url]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("sweep {id} is finished")),
            "{}",
            text(&out)
        );
    }
    for action in ["cancel", "pause", "resume"] {
        let out = s.cmd(&[action, &id, "--server", &url]).output().unwrap();
        assert!(
            !out.status.success(),
            "{action} on a finished sweep succeeded"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "error: cannot {action} sweep {id}: it is finished"
            )),
            "{action}: {stderr}"
        );
        assert!(
            !stderr.contains("/api/v1"),
            "the message is the server's reason: {stderr}"
        );
    }
    // An id the server does not know: said in words, with where to list them, no API path.
    for (action, what) in [
        ("cancel", "sweep or run"),
        ("pause", "sweep"),
        ("stop", "sweep"),
    ] {
        let out = s
            .cmd(&[action, "szzzzzzzz", "--server", &url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{action}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "error: the server at {url} has no {what} with id szzzzzzzz (`hyperdial sweeps --server {url}`"
            )),
            "{action}: {stderr}"
        );
        assert!(!stderr.contains("/api/v1"), "{action}: {stderr}");
    }
    let sweeps = json_of(&s, &["sweeps", "--json", "--server", &url]);
    // A server named without a scheme is reached over http://, as the Python client does.
    let bare = url.trim_start_matches("http://");
    assert_eq!(json_of(&s, &["sweeps", "--json", "--server", bare]), sweeps);
    let out = s
        .cmd(&["sweeps", "--json"])
        .env("HYPERDIAL_SERVER", bare)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sweeps[0]["state"], "finished");
}

/// `--state` takes a run state word; any other word is refused before a request is sent,
/// with the choices listed, and a known one filters the listing.
#[test]
fn runs_state_filter_names_the_choices() {
    let s = Scratch::new("state-filter");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: random\nparameters:\n  a: {min: 0.0, max: 1.0}\n",
    );
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let url = server.url.clone();
    let created = json_of(&s, &["sweep", "sweep.yaml", "--json", "--server", &url]);
    let id = created["id"].as_str().unwrap().to_string();
    let out = s
        .cmd(&["runs", &id, "--state", "runing", "--server", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "unknown run state \"runing\" (expected one of: queued, running, finished, failed, \
             crashed, stopped_early, cancelled)"
        ),
        "{stderr}"
    );
    let runs = json_of(
        &s,
        &[
            "runs",
            &id,
            "--state",
            "stopped_early",
            "--json",
            "--server",
            &url,
        ],
    );
    assert_eq!(runs, serde_json::json!([]));
}

#[test]
fn an_agent_on_a_paused_sweep_says_it_waits_and_runs_it_once_resumed() {
    let s = Scratch::new("actions-paused");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    let url = server.url.clone();
    let id = create_sweep(
        &s,
        &url,
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0]}\n",
    );
    assert!(s.run(&["pause", &id, "--server", &url]).status.success());
    let log = s.dir.join("agent.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut agent = s
        .cmd(&["agent", &id, "--server", &url])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !said().contains("waiting: no run can start now") {
        assert!(Instant::now() < deadline, "the agent said: {}", said());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.run(&["resume", &id, "--server", &url]).status.success());
    let status = wait_child(&mut agent, Duration::from_secs(60));
    let said = said();
    assert!(status.success(), "{status}: {said}");
    assert_eq!(
        said.matches("waiting: no run can start now").count(),
        1,
        "{said}"
    );
    assert!(said.contains("agent done: 1 run (1 finished)"), "{said}");
}

/// Job scripts written for `wandb sweep` and `wandb agent` keep their command lines: `-e
/// ENTITY -p PROJECT` and the `ENTITY/PROJECT/ID` path are taken, and an agent's project that
/// is not the sweep's gets a note.
#[test]
fn an_agent_takes_wandbs_entity_project_and_path() {
    let s = Scratch::new("agent-wandb-args");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0, 2.0]}\n",
    );
    // `wandb sweep -e ENTITY -p PROJECT FILE`.
    let created = json_of(
        &s,
        &[
            "sweep",
            "-e",
            "me",
            "-p",
            "default",
            "sweep.yaml",
            "--json",
            "--server",
            &server.url,
        ],
    );
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("me/default/{id}");
    let out = s.run(&[
        "agent",
        "-e",
        "me",
        "-p",
        "default",
        &path,
        "--count",
        "1",
        "--server",
        &server.url,
    ]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("agent done: 1 run (1 finished)"), "{said}");
    assert!(!said.contains("note: sweep"), "{said}");
    let out = s.run(&[
        "agent",
        "--project",
        "vision",
        &id,
        "--count",
        "1",
        "--server",
        &server.url,
    ]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "note: sweep {id} is in project default, not vision"
        )),
        "{said}"
    );
}
