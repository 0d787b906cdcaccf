//! Told values survive a server killed with SIGKILL: an ask/tell client (the repository's
//! Python client, `Sweep.tell_and_ask`, one request per trial) records each trial once the
//! server has acknowledged its value; the server is killed mid-loop and started again on the
//! same database, the client's retries carry it over, and afterwards every acknowledged trial
//! is `finished` with exactly the value told (nothing acknowledged is lost). A kill between a
//! claim's commit and its answer leaves no orphan either: the client sends the claim again
//! with its `claim_key` and gets the run the server stored, so every run of the sweep is one
//! the client saw and told (none is left `running` until its lease runs out, then `crashed`).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, json_of, wait_child, Scratch, ServerProcess};
use serde_json::Value;

/// Asks and tells `N` trials; after each acknowledged tell, appends `run_id value` to
/// `told.txt` (flushed), so the test knows what the server acknowledged.
const CLIENT_PY: &str = r#"
import os, sys
sys.path.insert(0, sys.argv[1])
import hyperdial
sweep = hyperdial.Sweep.get(sys.argv[2], server=sys.argv[3])
out = open("told.txt", "a")
trial = sweep.ask()
while trial is not None:
    value = round(trial.params["x"], 6)
    told = trial
    trial = sweep.tell_and_ask(trial, value)
    out.write("%s %r\n" % (told.id, value))
    out.flush()
"#;

fn told(s: &Scratch) -> BTreeMap<String, f64> {
    std::fs::read_to_string(s.dir.join("told.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (id, v) = l.split_once(' ').unwrap();
            (id.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn told_values_acknowledged_before_a_kill_survive_it() {
    let s = Scratch::new("faults-tell");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let url = server.url.clone();
    let sweep = common::create_sweep(
        &s,
        &url,
        "method: random\nmetric: {name: loss, goal: minimize}\nrun_cap: 400\n\
         parameters: {x: {min: 0.0, max: 1.0}}\n",
    );
    s.write("client.py", CLIENT_PY);
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python");
    let mut client = Command::new("python3")
        .args(["client.py", python, &sweep, &url])
        .current_dir(&s.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server twice while trials are being told, each time once more were told: by
    // then the log has passed the checkpoint threshold (about fifty trials of log) several
    // times, so a kill can find the checkpointer thread copying it.
    for kill in 1..=2 {
        let deadline = Instant::now() + Duration::from_secs(120);
        while told(&s).len() < 150 * kill {
            assert!(
                Instant::now() < deadline,
                "the client stalled before kill {kill}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.kill9();
        server = ServerProcess::start(&s, &db, port);
    }
    let status = wait_child(&mut client, Duration::from_secs(300));
    let mut err = String::new();
    use std::io::Read;
    client.stderr.take().unwrap().read_to_string(&mut err).ok();
    assert!(status.success(), "the client failed: {err}");
    let acknowledged = told(&s);
    assert!(acknowledged.len() >= 300, "{}", acknowledged.len());
    let runs = json_of(&s, &["runs", &sweep, "--json", "--server", &url]);
    let stored: BTreeMap<String, &Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    for (id, value) in &acknowledged {
        let run = stored
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged run {id} is gone"));
        assert_eq!(run["state"], "finished", "{run}");
        assert_eq!(run["metric"].as_f64(), Some(*value), "{run}");
    }
    // No orphan: every run of the sweep was handed to the client and told by it, all 400.
    let orphans: Vec<&&Value> = stored
        .iter()
        .filter(|(id, _)| !acknowledged.contains_key(*id))
        .map(|(_, run)| run)
        .collect();
    assert!(orphans.is_empty(), "runs the client never saw: {orphans:?}");
    assert_eq!(stored.len(), 400);
    drop(server);
}
