//! A token revoked while a run trains, driving the real binary: the server's token file loses
//! the agent's token (SIGHUP) between two halves of a run. Nothing of the run is lost: the
//! agent's points and end, and the points its script logs through the Python client, are kept
//! in their spill files (a refused token is neither a bad request nor an outage: the agent
//! says it is a token problem and does not wait for the server), and `hyperdial sync` with a
//! token the server accepts ends the run with every point and the right summary metric.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const OLD: &str = "3f9a0c7b1e2d4a5b6c7d8e9f00112233";
const NEW: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// Logs `loss` (lowest at the last step) through the Python client and `seen` through
/// `hyperdial:` lines for steps 0 to 9; before step 5 it waits for the file `go` (the test
/// revokes the token first).
const SCRIPT: &str = r#"
import json, os, time
import hyperdial
run = hyperdial.init()
for step in range(10):
    if step == 5:
        while not os.path.exists("go"):
            time.sleep(0.05)
    run.log({"loss": 10.0 - step}, step=step)
    print("hyperdial: " + json.dumps({"seen": float(step), "_step": step}), flush=True)
    time.sleep(0.02)
run.finish()
"#;

const SWEEP: &str = "program: revoke.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n\
                     parameters:\n  a: {values: [1]}\n";

fn python_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python")
}

/// `GET url` with `token`: the decoded JSON answer, or `None` when refused.
fn get(url: &str, token: &str) -> Option<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request\n\
             r=urllib.request.Request(sys.argv[1],headers={'Authorization':'Bearer '+sys.argv[2]})\n\
             print(urllib.request.urlopen(r).read().decode())",
            url,
            token,
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The steps of `metric` in a Run object's history.
fn steps_of(view: &Value, metric: &str) -> Vec<i64> {
    let mut steps: Vec<i64> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["values"].get(metric).is_some())
        .filter_map(|p| p["step"].as_i64())
        .collect();
    steps.sort_unstable();
    steps.dedup();
    steps
}

#[test]
fn a_token_revoked_mid_run_loses_nothing_and_sync_with_a_good_token_ends_the_run_right() {
    let s = Scratch::new("token-revoked");
    s.write("revoke.py", SCRIPT);
    let tokens = s.write("tokens", &format!("{OLD}\n{NEW}\n"));
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let server =
        ServerProcess::start_with(&s, &db, port, &["--token-file", tokens.to_str().unwrap()]);
    let url = server.url.clone();
    s.write("sweep.yaml", SWEEP);
    let created = json_of(
        &s,
        &[
            "sweep",
            "sweep.yaml",
            "--json",
            "--server",
            &url,
            "--token",
            NEW,
        ],
    );
    let sweep = created["id"].as_str().unwrap().to_string();

    let log = std::fs::File::create(s.dir.join("agent.log")).unwrap();
    let mut agent = s
        .cmd(&["agent", &sweep, "--server", &url, "--token", OLD])
        // A long wait for an absent server: a refused token must not wait for it at all.
        .args(["--end-wait", "600"])
        .env("PYTHONPATH", python_dir())
        .env("HYPERDIAL_RETRY_SECONDS", "1")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut run = String::new();
    wait_until("the first half of the run reaches the server", || {
        let runs = json_of(
            &s,
            &["runs", &sweep, "--json", "--server", &url, "--token", NEW],
        );
        let Some(id) = runs[0]["id"].as_str() else {
            return false;
        };
        run = id.to_string();
        get(&format!("{url}/api/v1/runs/{run}"), NEW).is_some_and(|view| {
            steps_of(&view, "loss").len() == 5 && steps_of(&view, "seen").len() == 5
        })
    });

    // Rotation: the agent's token leaves the file; SIGHUP re-reads it.
    s.write("tokens", &format!("{NEW}\n"));
    signal(server.child.id(), "-HUP");
    wait_until("the old token is refused", || {
        get(&format!("{url}/api/v1/runs/{run}"), OLD).is_none()
    });
    s.write("go", "");

    let status = wait_child(&mut agent, Duration::from_secs(120));
    let said = std::fs::read_to_string(s.dir.join("agent.log")).unwrap();
    // The claim after the run is refused: the agent ends with an error that says the fix.
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("does not accept this agent's token: set HYPERDIAL_TOKEN"),
        "{said}"
    );
    assert!(said.contains("refused this agent's token (401)"), "{said}");
    assert!(said.contains("HYPERDIAL_TOKEN"), "{said}");
    assert!(said.contains("hyperdial sync"), "{said}");
    assert!(!said.contains("does not answer"), "{said}");
    assert!(!said.contains("waiting up to"), "{said}");
    // Points are never dropped (only the output while it is refused).
    assert!(!said.contains("they are dropped"), "{said}");
    assert!(!said.contains("are lost"), "{said}");
    assert!(
        !said.contains("refused 1") && !said.contains("dropping"),
        "{said}"
    );

    let out = s.run(&[
        "sync",
        ".hyperdial/offline",
        "--server",
        &url,
        "--token",
        NEW,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let view = get(&format!("{url}/api/v1/runs/{run}"), NEW).unwrap();
    assert_eq!(view["state"], "finished", "{view:#}");
    let all: Vec<i64> = (0..10).collect();
    assert_eq!(steps_of(&view, "loss"), all, "{view:#}");
    assert_eq!(steps_of(&view, "seen"), all, "{view:#}");
    assert_eq!(view["metric"].as_f64(), Some(1.0), "{view:#}");
}
