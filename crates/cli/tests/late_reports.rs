//! An agent that falls silent past the server's run timeout and then comes back, with the
//! real binary and no special rights: the agent is paused with SIGSTOP (as a cut link or a
//! frozen machine would silence it) while its run goes on. The server marks the run
//! `crashed` and queues its retry; when the agent resumes, its late reports are refused
//! (`409`), it stops that run's process, runs the retry to the end and exits cleanly. The
//! crashed attempt gains no metric point after it was crashed. `netns.rs` does the same across
//! network namespaces with a real cut link.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn a_paused_agent_past_the_run_timeout_is_refused_stops_its_run_and_goes_on() {
    let s = Scratch::new("late-reports");
    s.write(
        "slow.py",
        r#"
import os, time
for step in range(60):
    print('hyperdial: {"loss": %r, "_step": %d}' % (1.0 / (step + 1), step), flush=True)
    time.sleep(0.1)
open("ran-to-the-end-" + os.environ["HYPERDIAL_RUN_ID"], "w").close()
"#,
    );
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = s
        .cmd(&[
            "server",
            "--db",
            s.dir.join("db.sqlite").to_str().unwrap(),
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--run-timeout",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_answering(&mut server, port, Duration::from_secs(20)).unwrap();
    let id = create_sweep(
        &s,
        &url,
        "program: slow.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  x: {values: [1]}\n",
    );
    let out_path = s.dir.join("agent.out");
    let mut agent = s
        .cmd(&["agent", &id, "--server", &url])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Once the run reports, pause the agent (its training process goes on) until the
    // server has given the run up.
    let running = |runs: &[Value]| {
        runs.iter()
            .find(|r| r["state"] == "running" && r["steps"].as_i64().unwrap_or(0) >= 2)
            .cloned()
    };
    wait_for(&s, &url, &id, |runs| running(runs).is_some());
    let first = running(
        json_of(&s, &["runs", &id, "--json", "--server", &url])
            .as_array()
            .unwrap(),
    )
    .expect("the run is running");
    let first_id = first["id"].as_str().unwrap().to_string();
    signal(agent.id(), "-STOP");
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&s, &url, &id, |runs| {
            runs.iter()
                .any(|r| r["id"] == first_id.as_str() && r["state"] == "crashed")
        })
    }));
    signal(agent.id(), "-CONT");
    if let Err(panic) = waited {
        std::panic::resume_unwind(panic);
    }
    let crashed: Value =
        serde_json::from_str(&http_get(&format!("{url}/api/v1/runs/{first_id}"))).unwrap();
    assert_eq!(crashed["state"], "crashed");
    assert_eq!(crashed["error"], "the agent stopped reporting");
    let history_then = http_get(&format!("{url}/api/v1/runs/{first_id}"));

    // The agent resumes: refused, it stops the run's process, runs the retry, and exits.
    let status = wait_child(&mut agent, Duration::from_secs(90));
    let said = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(status.success(), "{said}");
    assert!(
        said.contains("the server no longer takes its reports"),
        "{said}"
    );
    assert!(
        !s.dir.join(format!("ran-to-the-end-{first_id}")).exists(),
        "the crashed run's process was not stopped:\n{said}"
    );

    let runs = json_of(&s, &["runs", &id, "--json", "--server", &url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let retry = runs.iter().find(|r| r["id"] != first_id.as_str()).unwrap();
    assert_eq!(retry["state"], "finished", "{retry:#}");
    assert_eq!(retry["retry_of"], first_id.as_str());
    assert_eq!(retry["steps"], 60);
    assert!(s
        .dir
        .join(format!("ran-to-the-end-{}", retry["id"].as_str().unwrap()))
        .exists());

    // The crashed attempt is as it was when it was crashed: no late point, same end.
    let now = http_get(&format!("{url}/api/v1/runs/{first_id}"));
    let then: Value = serde_json::from_str(&history_then).unwrap();
    let now: Value = serde_json::from_str(&now).unwrap();
    assert_eq!(now["state"], "crashed");
    assert_eq!(now["history"], then["history"], "late points were stored");
    assert_eq!(now["finished_ms"], then["finished_ms"]);

    // Points of the crashed attempt kept in a spill file are refused by `hyperdial sync` too,
    // and the file is done with (its points stay in the renamed file).
    let spill = s.dir.join("spilled");
    std::fs::create_dir_all(&spill).unwrap();
    std::fs::write(
        spill.join(format!("{first_id}.agent.jsonl")),
        format!(
            "{{\"type\": \"init\", \"run\": \"{first_id}\"}}\n\
             {{\"type\": \"log\", \"step\": 500, \"values\": {{\"loss\": 0.001}}}}\n"
        ),
    )
    .unwrap();
    let out = s.run(&["sync", spill.to_str().unwrap(), "--server", &url]);
    let said = text(&out);
    // Refused, with the server's reason, counted apart from uploads and failures: exit 1.
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "refused by run {first_id}: run {first_id} is crashed"
        )),
        "{said}"
    );
    assert!(said.contains("its 1 points stay in"), "{said}");
    assert!(said.contains("0 uploaded, 1 refused"), "{said}");
    assert!(said.contains(", 0 failed"), "{said}");
    assert!(spill
        .join(format!("{first_id}.agent.jsonl.synced"))
        .exists());
    let after: Value =
        serde_json::from_str(&http_get(&format!("{url}/api/v1/runs/{first_id}"))).unwrap();
    assert_eq!(after["history"], then["history"], "late points were stored");
    server.kill().ok();
    server.wait().ok();
}

/// A run timeout shorter than three of the Python client's heartbeat intervals draws a
/// warning at start, naming a safe value; the default does not. (Off loopback without a
/// token the server then refuses to start, so nothing is left running.)
#[test]
fn a_short_run_timeout_is_warned_about_at_start() {
    let s = Scratch::new("short-run-timeout");
    let said = |timeout: &str| {
        let out = s.run(&[
            "server",
            "--db",
            s.dir.join("db.sqlite").to_str().unwrap(),
            "--bind",
            "0.0.0.0:9",
            "--run-timeout",
            timeout,
        ]);
        assert!(!out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let short = said("10");
    assert!(
        short.contains("--run-timeout 10 is short") && short.contains("15 s or more is safe"),
        "{short}"
    );
    let default = said("60");
    assert!(!default.contains("is short"), "{default}");
}
