//! The agent loop against the mock server, with `sh` scripts as training commands.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{drain, sweep_state, temp_dir, Mock, MockState};
use hyperdial_agent::{
    run_agent, AgentError, AgentOptions, AgentReport, Event, RunState, SweepState,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

/// A sweep whose default command runs `sh train.sh --lr=... --optimizer={'kind': ...}`.
const SOURCE: &str = "\
program: train.sh
interpreter: sh
method: grid
metric: {name: val_loss, goal: minimize}
parameters:
  lr: {values: [0.1, 0.01]}
  optimizer:
    parameters:
      kind: {values: [adam, sgd]}
";

fn params(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let kind = ["adam", "sgd"][i % 2];
            json!({"lr": 0.1 / (i + 1) as f64, "optimizer.kind": kind})
        })
        .collect()
}

struct Setup {
    mock: Mock,
    opts: AgentOptions,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn setup(state: MockState, script: &str) -> Setup {
    let mock = Mock::start(state).await;
    let dir = temp_dir("agent");
    std::fs::write(dir.join("train.sh"), script).unwrap();
    let mut opts = AgentOptions::new(mock.url.clone(), "sw1");
    opts.cwd = dir.clone();
    opts.state_dir = dir.join(".hyperdial");
    opts.heartbeat = Duration::from_millis(100);
    opts.grace = Duration::from_millis(300);
    opts.poll = Duration::from_millis(50);
    Setup { mock, opts, dir }
}

async fn go(opts: AgentOptions) -> (Result<AgentReport, AgentError>, Vec<Event>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_stop, shutdown) = watch::channel(0u8);
    let result = run_agent(opts, tx, shutdown).await;
    (result, drain(&mut rx))
}

const TRAIN: &str = r#"
echo "argv: $*"
echo "config: $(cat "$HYPERDIAL_CONFIG")"
echo "args: $(cat "$(dirname "$HYPERDIAL_CONFIG")/args.json")"
echo "pythonpath: $PYTHONPATH"
echo "hyperdial: val_loss=0.5"
echo "hyperdial: val_loss=0.25"
"#;

#[tokio::test]
async fn claims_until_the_sweep_is_over() {
    let s = setup(sweep_state(SOURCE, params(2)), TRAIN).await;
    let state_dir = s.opts.state_dir.clone();
    let (result, events) = go(s.opts.clone()).await;
    assert_eq!(
        result.unwrap(),
        AgentReport {
            runs: 2,
            finished: 2,
            failed: 0,
            stopped: 0,
            crashed: 0,
            cancelled: 0,
        }
    );
    let mock = &s.mock;
    assert_eq!(mock.lock().claims, 2);
    let agent = mock.lock().agents[0].clone();
    assert_eq!(agent["sweep"], "sw1");
    assert_eq!(agent["pid"], std::process::id());

    // The argv from the default command, and the nested config in config.json.
    let out = mock.run("r1").text("stdout");
    assert!(
        out.contains("argv: --lr=0.1 --optimizer={'kind': 'adam'}\n"),
        "{out}"
    );
    assert!(
        out.contains(r#"config: {"lr": 0.1, "optimizer": {"kind": "adam"}}"#),
        "{out}"
    );
    let py = state_dir.join("python");
    assert!(
        out.contains(&format!("pythonpath: {}", py.display())),
        "{out}"
    );
    assert!(py.join("hyperdial/__init__.py").is_file());
    let out = mock.run("r2").text("stdout");
    assert!(
        out.contains("argv: --lr=0.05 --optimizer={'kind': 'sgd'}\n"),
        "{out}"
    );
    // args.json holds the same config; both were the process's, and go with it.
    let out = mock.run("r1").text("stdout");
    assert!(
        out.contains(r#"args: {"lr": 0.1, "optimizer": {"kind": "adam"}}"#),
        "{out}"
    );
    assert!(
        !state_dir.join("runs/r1").exists() && !state_dir.join("runs/r2").exists(),
        "a run's directory is removed when it ends"
    );
    assert_eq!(mock.run("r1").points.len(), 2);

    // Events: claimed, metrics, finished with the metric; then the end of the sweep.
    assert_eq!(
        events[0],
        Event::Claimed {
            run: "r1".into(),
            number: 1,
            params: json!({"lr": 0.1, "optimizer.kind": "adam"}),
            retry_of: None,
        }
    );
    assert!(events.contains(&Event::Finished {
        run: "r2".into(),
        state: RunState::Finished,
        metric: Some(0.25),
        exit_code: Some(0),
        error: None,
    }));
    assert!(
        matches!(events.last(), Some(Event::SweepOver { sweep, state }) if sweep == "sw1" && *state == SweepState::Finished)
    );
}

#[tokio::test]
async fn honours_count() {
    let mut s = setup(sweep_state(SOURCE, params(5)), "exit 0").await;
    s.opts.count = Some(2);
    let (result, _) = go(s.opts.clone()).await;
    assert_eq!(result.unwrap().runs, 2);
    assert_eq!(s.mock.lock().claims, 2);
    assert_eq!(s.mock.lock().queue.len(), 3);
}

#[tokio::test]
async fn args_json_file_macro() {
    let source =
        format!("{SOURCE}command: [sh, -c, 'cat \"$0\"; echo', \"${{args_json_file}}\"]\n");
    let s = setup(sweep_state(&source, params(1)), "").await;
    let state_dir = s.opts.state_dir.clone();
    let (result, _) = go(s.opts.clone()).await;
    assert_eq!(result.unwrap().finished, 1);
    assert_eq!(
        s.mock.run("r1").text("stdout"),
        "{\"lr\": 0.1, \"optimizer\": {\"kind\": \"adam\"}}\n"
    );
    assert!(!state_dir.join("runs/r1").exists());
}

/// A script that marked its run preempting (`mark_preempting()`) and then failed ends the run
/// interrupted (`cancelled`), for the server to queue it again; one that then exited 0 is
/// finished. Neither counts toward the crash-loop guard.
#[tokio::test]
async fn a_run_marked_preempting_that_fails_is_interrupted() {
    let script = "mkdir -p \"$(dirname \"$HYPERDIAL_PREEMPT_FILE\")\"; touch \"$HYPERDIAL_PREEMPT_FILE\"; test -e .first || { touch .first; exit 0; }; \
                  echo 'preempted by the scheduler' >&2; exit 143";
    let s = setup(sweep_state(SOURCE, params(5)), script).await;
    let (result, _) = go(s.opts.clone()).await;
    let report = result.unwrap();
    assert_eq!((report.runs, report.cancelled, report.failed), (5, 4, 0));
    let first = s.mock.run("r1").finish.unwrap();
    assert_eq!(
        first["state"],
        Value::Null,
        "exit 0: the server decides (finished)"
    );
    let finish = s.mock.run("r2").finish.unwrap();
    assert_eq!(finish["state"], "cancelled");
    let error = finish["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "interrupted: the script marked the run preempting (`mark_preempting()`), then its \
             process ended (exit code 143"
        ),
        "{error}"
    );
    assert!(
        error.ends_with("stderr ended: preempted by the scheduler"),
        "{error}"
    );
}

/// Failures after a run that worked: they stop the agent by default, and not when the guard
/// counts only failures at the start (W&B's `WANDB_AGENT_DISABLE_FLAPPING=true`).
#[tokio::test]
async fn failures_after_a_run_that_worked_count_unless_only_the_start_counts() {
    let script = "test -e .worked && exit 1; touch .worked";
    let s = setup(sweep_state(SOURCE, params(6)), script).await;
    let (result, _) = go(s.opts.clone()).await;
    assert!(matches!(result, Err(AgentError::CrashLoop { runs: 3, .. })));
    assert_eq!(s.mock.lock().claims, 4);

    let s = setup(sweep_state(SOURCE, params(6)), script).await;
    let mut opts = s.opts.clone();
    opts.crash_guard.at_start_only = true;
    let report = go(opts).await.0.unwrap();
    assert_eq!((report.runs, report.failed), (6, 5));
}

#[tokio::test]
async fn crash_loop_stops_the_agent() {
    let s = setup(sweep_state(SOURCE, params(6)), "echo broken >&2; exit 1").await;
    let (result, events) = go(s.opts.clone()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AgentError::CrashLoop { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "3 runs in a row failed within a minute of starting; the last one: exit code 1.\n\
         Its stderr ended with:\n  | broken\n\
         Check the training command; every run's captured output: `hyperdial output RUN` \
         (`hyperdial runs sw1` lists the runs). HYPERDIAL_MAX_FAILURES=N sets how many \
         failures in a row stop the agent (0: never)."
    );
    assert_eq!(s.mock.lock().claims, 3);
    assert_eq!(s.mock.run("r3").text("stderr"), "broken\n");
    let failed = events
        .iter()
        .filter(|e| matches!(e, Event::Finished { state, .. } if *state == RunState::Failed))
        .count();
    assert_eq!(failed, 3);
}

#[tokio::test]
async fn a_command_that_cannot_be_built_fails_the_run_and_goes_on() {
    let source = format!("{SOURCE}command: [sh, \"${{envvar:HYPERDIAL_TEST_SURELY_UNSET}}\"]\n");
    let s = setup(sweep_state(&source, params(2)), "").await;
    let (result, _) = go(s.opts.clone()).await;
    assert_eq!(
        result.unwrap(),
        AgentReport {
            runs: 2,
            finished: 0,
            failed: 2,
            stopped: 0,
            crashed: 0,
            cancelled: 0,
        }
    );
    let finish = s.mock.run("r1").finish.unwrap();
    assert_eq!(finish["state"], "failed");
    let error = finish["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "cannot build the command: environment variable HYPERDIAL_TEST_SURELY_UNSET is not set"
        ),
        "{error}"
    );
    assert!(s
        .mock
        .run("r1")
        .text("stderr")
        .contains("HYPERDIAL_TEST_SURELY_UNSET"));
}

#[tokio::test]
async fn nan_metrics_fail_runs_without_tripping_the_crash_guard() {
    let s = setup(
        sweep_state(SOURCE, params(4)),
        "echo 'hyperdial: val_loss=nan'",
    )
    .await;
    let (result, _) = go(s.opts.clone()).await;
    assert_eq!(
        result.unwrap(),
        AgentReport {
            runs: 4,
            finished: 0,
            failed: 4,
            stopped: 0,
            crashed: 0,
            cancelled: 0,
        }
    );
    assert_eq!(
        s.mock.run("r4").run["error"],
        "the sweep metric val_loss is NaN"
    );
}

#[tokio::test]
async fn waits_while_nothing_can_start() {
    let state = MockState {
        waits: 3,
        ..sweep_state(SOURCE, params(1))
    };
    let s = setup(state, "exit 0").await;
    let (result, events) = go(s.opts.clone()).await;
    assert_eq!(result.unwrap().finished, 1);
    let waits = events.iter().filter(|e| **e == Event::Waiting).count();
    assert_eq!(waits, 1, "one Waiting per wait, not per poll");
    assert_eq!(s.mock.lock().claims, 1);
    // Every claim asked the server to wait; this one (an older server) answered at once
    // without saying it waited, and the agent polled.
    let asked = s.mock.lock().claim_waits.clone();
    assert_eq!(asked, vec![Some(20_000); 5]);
}

#[tokio::test]
async fn a_claim_the_server_held_open_is_asked_again_without_polling() {
    let state = MockState {
        waits: 3,
        long_poll: true,
        ..sweep_state(SOURCE, params(1))
    };
    let mut s = setup(state, "exit 0").await;
    // A poll the agent must never sit out: each wait was the server's.
    s.opts.poll = Duration::from_secs(3600);
    let (result, events) = tokio::time::timeout(Duration::from_secs(300), go(s.opts.clone()))
        .await
        .expect("the agent polled after a long poll instead of asking again");
    assert_eq!(result.unwrap().finished, 1);
    assert_eq!(events.iter().filter(|e| **e == Event::Waiting).count(), 1);
    assert_eq!(s.mock.lock().claim_waits.len(), 5);
}

/// A claim the server holds (a paused sweep) is said to wait within seconds, while it is
/// still held, not only when the server's wait of 20 s ends: a user reading the agent's log
/// learns why nothing runs.
#[tokio::test]
async fn a_claim_held_open_is_said_to_wait_while_it_is_held() {
    let state = MockState {
        waits: 1,
        long_poll: true,
        hold_ms: 120_000,
        ..sweep_state(SOURCE, params(1))
    };
    let s = setup(state, "exit 0").await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(0u8);
    let agent = tokio::spawn(run_agent(s.opts.clone(), tx, shutdown));
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = rx.recv().await {
            if event == Event::Waiting {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(waited, Ok(true), "no Waiting while the claim was held");
    assert_eq!(s.mock.lock().claims, 0, "the claim is still held");
    stop.send(1).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), agent).await;
    assert!(
        ended.is_ok(),
        "the agent did not stop while its claim was held"
    );
}

#[tokio::test]
async fn claim_wait_zero_turns_the_long_poll_off() {
    let state = MockState {
        waits: 1,
        long_poll: true,
        ..sweep_state(SOURCE, params(1))
    };
    let mut s = setup(state, "exit 0").await;
    s.opts.claim_wait = Duration::ZERO;
    let (result, _) = go(s.opts.clone()).await;
    assert_eq!(result.unwrap().finished, 1);
    assert_eq!(s.mock.lock().claim_waits, vec![None; 3]);
}

#[tokio::test]
async fn shutdown_level_one_finishes_the_current_run_then_stops() {
    let s = setup(
        sweep_state(SOURCE, params(3)),
        "sleep 0.3; echo 'hyperdial: val_loss=1'",
    )
    .await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(0u8);
    let agent = tokio::spawn(run_agent(s.opts.clone(), tx, shutdown));
    // Wait for the first run to be claimed, then ask to stop.
    loop {
        match rx.recv().await {
            Some(Event::Claimed { .. }) => break,
            Some(_) => continue,
            None => panic!("agent ended early"),
        }
    }
    stop.send(1).unwrap();
    let report = agent.await.unwrap().unwrap();
    assert_eq!(
        report,
        AgentReport {
            runs: 1,
            finished: 1,
            failed: 0,
            stopped: 0,
            crashed: 0,
            cancelled: 0,
        }
    );
    assert_eq!(s.mock.lock().queue.len(), 2);
}

#[tokio::test]
async fn shutdown_level_two_cancels_the_current_run() {
    let s = setup(sweep_state(SOURCE, params(3)), "sleep 30").await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(0u8);
    let agent = tokio::spawn(run_agent(s.opts.clone(), tx, shutdown));
    while !matches!(rx.recv().await, Some(Event::Claimed { .. })) {}
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(2).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .expect("the agent stops promptly")
        .unwrap()
        .unwrap();
    assert_eq!(report.stopped, 1);
    assert_eq!(report.cancelled, 1);
    assert_eq!(report.runs, 1);
    assert_eq!(s.mock.run("r1").run["state"], "cancelled");
}

#[tokio::test]
async fn an_unknown_sweep_is_an_error() {
    let mut s = setup(sweep_state(SOURCE, params(1)), "").await;
    s.opts.sweep = "nope".into();
    let (result, _) = go(s.opts.clone()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, AgentError::Client(e) if e.status() == Some(404)),
        "{err:?}"
    );
}
