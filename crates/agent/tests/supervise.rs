//! The process supervisor against the mock server, with real processes (`sh -c` scripts play
//! the training command).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{drain, process_gone, Mock, MockState};
use hyperdial_agent::{supervise, Client, EndReport, Event, Outcome, RunState, SuperviseOptions};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

fn opts() -> SuperviseOptions {
    SuperviseOptions {
        heartbeat: Duration::from_millis(50),
        grace: Duration::from_millis(300),
        flush_interval: Duration::from_millis(50),
        // A run's end that cannot be reported is kept without waiting for the server.
        end_wait: Duration::ZERO,
        ..SuperviseOptions::default()
    }
}

struct Ran {
    outcome: Outcome,
    events: Vec<Event>,
}

async fn run_with(
    mock: &Mock,
    client: &Client,
    argv: &[&str],
    env: &[(String, String)],
    opts: &SuperviseOptions,
    shutdown: watch::Receiver<u8>,
) -> Ran {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let cwd = std::env::temp_dir();
    let _ = mock;
    let outcome = supervise(client, "r1", &argv, env, &cwd, opts, &tx, shutdown).await;
    Ran {
        outcome,
        events: drain(&mut rx),
    }
}

async fn run(mock: &Mock, argv: &[&str]) -> Ran {
    let client = Client::new(&mock.url, None);
    let (_tx, shutdown) = watch::channel(0u8);
    run_with(mock, &client, argv, &[], &opts(), shutdown).await
}

fn sh(script: &str) -> Vec<&str> {
    vec!["sh", "-c", script]
}

/// The pid printed by a script as `NAME=PID`.
fn printed_pid(stdout: &str, name: &str) -> i32 {
    let prefix = format!("{name}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name}= in {stdout:?}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_output_and_exit_code() {
    let mock = Mock::start(MockState::default()).await;
    let script = r#"
echo "starting"
echo "hyperdial: loss=1 acc=0.5"
echo 'hyperdial: {"_step": 5, "loss": 0.5}'
echo "oops" >&2
echo "hyperdial: loss=0.25"
echo "hyperdial: loss=tensor(0.1)"
echo "hyperdial: loss=nan"
exit 3
"#;
    let ran = run(&mock, &sh(script)).await;
    let rec = mock.run("r1");
    let steps: Vec<Value> = rec.points.iter().map(|p| p["step"].clone()).collect();
    // Steps are assigned by the agent (so a resent batch is stored once): the line's `_step`,
    // else the previous step + 1.
    assert_eq!(steps, [json!(0), json!(5), json!(6), json!(7)]);
    let values: Vec<Value> = rec.points.iter().map(|p| p["values"].clone()).collect();
    assert_eq!(
        values,
        [
            json!({"loss": 1, "acc": 0.5}),
            json!({"loss": 0.5}),
            json!({"loss": 0.25}),
            json!({"loss": null})
        ]
    );
    assert!(rec
        .points
        .iter()
        .all(|p| p["time_ms"].as_i64().unwrap() > 0));
    let stdout = rec.text("stdout");
    assert!(
        stdout.starts_with("starting\nhyperdial: loss=1 acc=0.5\n"),
        "{stdout}"
    );
    assert!(stdout.contains(
        "hyperdial: loss=tensor(0.1)\n[hyperdial agent] ignored the metric line above: `loss=tensor(0.1)`: `tensor(0.1)` is not a number"
    ), "{stdout}");
    assert_eq!(rec.text("stderr"), "oops\n");
    assert_eq!(
        without_end_time(rec.finish.clone().unwrap()),
        json!({"exit_code": 3, "state": "failed", "error": "exit code 3; stderr ended: oops"})
    );
    let o = &ran.outcome;
    assert_eq!(o.state, RunState::Failed);
    assert_eq!(o.exit_code, Some(3));
    assert_eq!(o.error.as_deref(), Some("exit code 3; stderr ended: oops"));
    assert_eq!(o.process_error.as_deref(), Some("exit code 3"));
    assert!(o.started);

    // Events: the steps the server will assign, a warning, and the end.
    let metric_steps: Vec<i64> = ran
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Metric { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(metric_steps, [0, 5, 6, 7]);
    assert!(ran
        .events
        .iter()
        .any(|e| matches!(e, Event::Message(m) if m.contains("tensor(0.1)"))));
    assert_eq!(
        ran.events.last().unwrap(),
        &Event::Finished {
            run: "r1".into(),
            state: RunState::Failed,
            metric: None,
            exit_code: Some(3),
            error: Some("exit code 3; stderr ended: oops".into()),
        }
    );
}

#[tokio::test]
async fn exit_zero_lets_the_server_decide() {
    let mock = Mock::start(MockState::default()).await;
    let ran = run(&mock, &sh("echo done")).await;
    let rec = mock.run("r1");
    assert_eq!(
        without_end_time(rec.finish.clone().unwrap()),
        json!({"exit_code": 0})
    );
    assert_eq!(rec.text("stdout"), "done\n");
    assert_eq!(ran.outcome.state, RunState::Finished);
    assert_eq!(ran.outcome.requested_state, None);
    assert_eq!(ran.outcome.error, None);
}

#[tokio::test]
async fn killed_by_sigkill_names_the_signal() {
    let mock = Mock::start(MockState::default()).await;
    let ran = run(&mock, &sh("kill -9 $$")).await;
    assert_eq!(
        without_end_time(mock.run("r1").finish.unwrap()),
        json!({"state": "failed", "error": "killed by SIGKILL (out of memory?)"})
    );
    assert_eq!(ran.outcome.signal, Some(libc::SIGKILL));
    assert_eq!(ran.outcome.exit_code, None);
}

/// A batch scheduler stopping a job (Slurm's requeue or preemption) signals all its processes
/// at once: the run's process may die of SIGTERM before the agent's own SIGTERM has raised the
/// shutdown level. The run was interrupted, not failed: it ends `cancelled` with the
/// "interrupted: ..." error the server queues again.
#[tokio::test]
async fn a_run_killed_by_the_signal_that_shuts_the_agent_down_is_interrupted() {
    let mock = Mock::start(MockState::default()).await;
    let client = Client::new(&mock.url, None);
    let dir = std::env::temp_dir().join(format!("hyperdial-sigterm-wave-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("pid");
    let (tx, shutdown) = watch::channel(0u8);
    let script = format!("echo $$ > '{}'; kill -TERM $$", pid_file.display());
    let task = {
        let client = client.clone();
        tokio::spawn(async move {
            let (etx, _erx) = mpsc::unbounded_channel();
            let argv: Vec<String> = sh(&script).iter().map(|s| s.to_string()).collect();
            supervise(
                &client,
                "r1",
                &argv,
                &[],
                &std::env::temp_dir(),
                &opts(),
                &etx,
                shutdown,
            )
            .await
        })
    };
    // The process is dead and reaped (so the supervisor has seen its end) before the agent's
    // shutdown level rises.
    let pid = {
        let pid_file = pid_file.clone();
        let mut pid = 0;
        assert!(
            common::eventually(Duration::from_secs(5), || {
                pid = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                pid > 1
            })
            .await
        );
        pid
    };
    assert!(common::eventually(Duration::from_secs(5), || process_gone(pid)).await);
    tx.send(2).unwrap();
    let o = task.await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(o.state, RunState::Cancelled, "{o:?}");
    assert_eq!(o.signal, Some(libc::SIGTERM));
    assert_eq!(o.stop_reason.as_deref(), Some("shutdown"));
    assert_eq!(
        without_end_time(mock.run("r1").finish.unwrap()),
        json!({"state": "cancelled", "error": "interrupted: the agent was shut down while the run was going"})
    );

    // Without a shutdown of the agent, SIGTERM is the process's own fate: `failed`.
    let ran = run(&mock, &sh("kill -TERM $$")).await;
    assert_eq!(ran.outcome.state, RunState::Failed);
    assert_eq!(ran.outcome.error.as_deref(), Some("killed by SIGTERM"));
}

#[tokio::test]
async fn missing_program_fails_clearly() {
    let mock = Mock::start(MockState::default()).await;
    for program in ["/nonexistent/prog", "hyperdial-no-such-program"] {
        let ran = run(&mock, &[program, "--x"]).await;
        let expected = format!("cannot start `{program}`: No such file or directory");
        assert_eq!(ran.outcome.error.as_deref(), Some(expected.as_str()));
        assert_eq!(ran.outcome.state, RunState::Failed);
        assert!(!ran.outcome.started);
        let rec = mock.run("r1");
        assert!(rec.text("stderr").contains(&expected));
        mock.lock().runs.clear();
    }
    // An empty command and a missing working directory are failures too, not panics.
    let client = Client::new(&mock.url, None);
    let (tx, _rx) = mpsc::unbounded_channel();
    let (_s, shutdown) = watch::channel(0u8);
    let o = supervise(
        &client,
        "r2",
        &[],
        &[],
        &std::env::temp_dir(),
        &opts(),
        &tx,
        shutdown.clone(),
    )
    .await;
    assert_eq!(o.error.as_deref(), Some("the command is empty"));
    let o = supervise(
        &client,
        "r3",
        &["true".to_string()],
        &[],
        &PathBuf::from("/nonexistent/dir"),
        &opts(),
        &tx,
        shutdown,
    )
    .await;
    assert!(o
        .error
        .unwrap()
        .contains("working directory /nonexistent/dir does not exist"));
}

#[tokio::test]
async fn stop_from_heartbeat_kills_a_term_ignoring_group() {
    let mock = Mock::start(MockState {
        stop_reason: Some("early_terminated".into()),
        stop_after: 1,
        ..MockState::default()
    })
    .await;
    // Ignores SIGTERM (and so does its background child, which inherits that).
    let script = r#"
trap '' TERM
sleep 1000 &
echo "grandchild=$!"
while true; do sleep 0.05; done
"#;
    let started = Instant::now();
    let ran = run(&mock, &sh(script)).await;
    let elapsed = started.elapsed();
    let rec = mock.run("r1");
    assert_eq!(
        without_end_time(rec.finish.clone().unwrap()),
        json!({"state": "stopped_early"}),
        "killed by SIGKILL: no exit code"
    );
    assert_eq!(ran.outcome.state, RunState::StoppedEarly);
    assert_eq!(ran.outcome.signal, Some(libc::SIGKILL));
    assert_eq!(ran.outcome.stop_reason.as_deref(), Some("early_terminated"));
    // Heartbeat at 50 ms (+ one allowed), SIGTERM, 300 ms grace, SIGKILL.
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let pid = printed_pid(&rec.text("stdout"), "grandchild");
    assert!(process_gone(pid), "grandchild {pid} is still there");
}

#[tokio::test]
async fn stop_with_cancel_reason_ends_cancelled_without_waiting_for_grace() {
    let mock = Mock::start(MockState {
        stop_reason: Some("cancelled".into()),
        ..MockState::default()
    })
    .await;
    let client = Client::new(&mock.url, None);
    let (_tx, shutdown) = watch::channel(0u8);
    let opts = SuperviseOptions {
        grace: Duration::from_secs(20),
        ..opts()
    };
    let started = Instant::now();
    let ran = run_with(&mock, &client, &sh("sleep 30"), &[], &opts, shutdown).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ran.outcome.state, RunState::Cancelled);
    assert_eq!(ran.outcome.signal, Some(libc::SIGTERM));
    assert_eq!(
        without_end_time(mock.run("r1").finish.unwrap()),
        json!({"state": "cancelled"})
    );
}

#[tokio::test]
async fn a_run_still_going_at_its_time_limit_is_stopped_and_ends_failed_saying_so() {
    let mock = Mock::start(MockState::default()).await;
    let client = Client::new(&mock.url, None);
    let (_tx, shutdown) = watch::channel(0u8);
    let opts = SuperviseOptions {
        time_limit: Some(Duration::from_secs(1)),
        grace: Duration::from_secs(5),
        ..opts()
    };
    // A run that hangs: it never ends by itself.
    let ran = run_with(&mock, &client, &sh("sleep 300"), &[], &opts, shutdown).await;
    assert_eq!(ran.outcome.state, RunState::Failed);
    assert_eq!(ran.outcome.signal, Some(libc::SIGTERM));
    assert_eq!(ran.outcome.stop_reason.as_deref(), Some("run_time_limit"));
    let finish = without_end_time(mock.run("r1").finish.unwrap());
    assert_eq!(finish["state"], "failed", "{finish}");
    assert_eq!(
        finish["error"],
        "still running after the sweep's run_time_limit (1s): stopped"
    );
}

#[tokio::test]
async fn stop_from_metrics_answer_asks_heartbeat_for_the_reason() {
    let mock = Mock::start(MockState {
        stop_reason: Some("early_terminated".into()),
        stop_on_metrics: true,
        ..MockState::default()
    })
    .await;
    let client = Client::new(&mock.url, None);
    let (_tx, shutdown) = watch::channel(0u8);
    // Heartbeats are far apart: the stop must come from the metrics answer.
    let opts = SuperviseOptions {
        heartbeat: Duration::from_secs(60),
        ..opts()
    };
    let started = Instant::now();
    let script = "echo 'hyperdial: val_loss=3'; sleep 30";
    let ran = run_with(&mock, &client, &sh(script), &[], &opts, shutdown).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ran.outcome.state, RunState::StoppedEarly);
    let rec = mock.run("r1");
    assert_eq!(rec.points.len(), 1);
    assert_eq!(rec.heartbeats, 1);
}

#[tokio::test]
async fn leftover_background_processes_are_killed_after_exit() {
    let mock = Mock::start(MockState::default()).await;
    let ran = run(&mock, &sh("sleep 1000 & echo \"grandchild=$!\"; exit 0")).await;
    assert_eq!(ran.outcome.state, RunState::Finished);
    let pid = printed_pid(&mock.run("r1").text("stdout"), "grandchild");
    assert!(process_gone(pid), "grandchild {pid} is still there");
}

#[tokio::test]
async fn shutdown_level_two_terminates_and_level_three_kills() {
    let mock = Mock::start(MockState::default()).await;
    let client = Client::new(&mock.url, None);

    // Level 2: SIGTERM; the script's trap exits cleanly; the run is cancelled.
    let (tx, shutdown) = watch::channel(0u8);
    let script = "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.05; done";
    let task = {
        let client = client.clone();
        tokio::spawn(async move {
            let (etx, _erx) = mpsc::unbounded_channel();
            let argv: Vec<String> = sh(script).iter().map(|s| s.to_string()).collect();
            supervise(
                &client,
                "r1",
                &argv,
                &[],
                &std::env::temp_dir(),
                &opts(),
                &etx,
                shutdown,
            )
            .await
        })
    };
    assert!(
        common::eventually(Duration::from_secs(5), || mock
            .run("r1")
            .text("stdout")
            .contains("ready"))
        .await
    );
    tx.send(1).unwrap(); // level 1 changes nothing for a running process
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished());
    tx.send(2).unwrap();
    let o = task.await.unwrap();
    assert_eq!(o.state, RunState::Cancelled);
    assert_eq!(o.exit_code, Some(0));
    assert_eq!(o.stop_reason.as_deref(), Some("shutdown"));
    assert!(mock.run("r1").text("stdout").contains("got-term"));
    assert_eq!(
        mock.run("r1").finish.unwrap()["error"],
        "interrupted: the agent was shut down while the run was going"
    );

    // Level 3 (already set when starting): SIGKILL at once, despite a long grace period.
    let (_tx3, shutdown) = watch::channel(3u8);
    let opts = SuperviseOptions {
        grace: Duration::from_secs(30),
        ..opts()
    };
    let started = Instant::now();
    let (etx, _erx) = mpsc::unbounded_channel();
    let argv: Vec<String> = sh("trap '' TERM; sleep 1000")
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = supervise(
        &client,
        "r2",
        &argv,
        &[],
        &std::env::temp_dir(),
        &opts,
        &etx,
        shutdown,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(o.signal, Some(libc::SIGKILL));
    assert_eq!(o.state, RunState::Cancelled);
}

#[tokio::test]
async fn environment_of_the_process() {
    let mock = Mock::start(MockState::default()).await;
    let client = Client::new(&format!("{}/", mock.url), Some("tok".into()));
    let (_tx, shutdown) = watch::channel(0u8);
    let sweep_opts = SuperviseOptions {
        sweep: Some("sw1".into()),
        config_file: Some(PathBuf::from("/tmp/x/config.json")),
        python_path: Some(PathBuf::from("/opt/hd/python")),
        ..opts()
    };
    let env = vec![
        ("EXTRA".to_string(), "x y".to_string()),
        ("PYTHONPATH".to_string(), "/mine".to_string()),
        ("HYPERDIAL_RUN_ID".to_string(), "overridden?".to_string()),
    ];
    let script = r#"printf '%s|' "$HYPERDIAL_SERVER" "$HYPERDIAL_RUN_ID" "$HYPERDIAL_SWEEP_ID" "$HYPERDIAL_CONFIG" "$HYPERDIAL_TOKEN" "$PYTHONPATH" "$EXTRA"; [ -t 0 ] || read -r line || echo "stdin-empty""#;
    let ran = run_with(&mock, &client, &sh(script), &env, &sweep_opts, shutdown).await;
    assert_eq!(ran.outcome.state, RunState::Finished);
    let expected = format!(
        "{}|r1|sw1|/tmp/x/config.json|tok|/opt/hd/python:/mine|x y|stdin-empty\n",
        mock.url
    );
    assert_eq!(mock.run("r1").text("stdout"), expected);

    // Outside a sweep: no HYPERDIAL_SWEEP_ID / HYPERDIAL_CONFIG, even if inherited.
    let client = Client::new(&mock.url, None);
    let (_tx, shutdown) = watch::channel(0u8);
    let env = vec![("HYPERDIAL_TOKEN".to_string(), "inherited".to_string())];
    let script =
        r#"echo "${HYPERDIAL_SWEEP_ID-unset} ${HYPERDIAL_CONFIG-unset} ${HYPERDIAL_TOKEN-unset}""#;
    mock.lock().runs.clear();
    run_with(&mock, &client, &sh(script), &env, &opts(), shutdown).await;
    assert_eq!(mock.run("r1").text("stdout"), "unset unset inherited\n");
}

#[tokio::test]
async fn wandb_module_comes_first_on_pythonpath() {
    let mock = Mock::start(MockState::default()).await;
    let client = Client::new(&mock.url, None);
    let (_tx, shutdown) = watch::channel(0u8);
    let options = SuperviseOptions {
        python_path: Some(PathBuf::from("/opt/hd/python")),
        wandb_module: Some(PathBuf::from("/opt/hd/python-wandb")),
        ..opts()
    };
    let env = vec![("PYTHONPATH".to_string(), "/mine".to_string())];
    let ran = run_with(
        &mock,
        &client,
        &sh("echo \"$PYTHONPATH\""),
        &env,
        &options,
        shutdown,
    )
    .await;
    assert_eq!(ran.outcome.state, RunState::Finished);
    assert_eq!(
        mock.run("r1").text("stdout"),
        "/opt/hd/python-wandb:/opt/hd/python:/mine\n"
    );
}

#[tokio::test]
async fn long_lines_are_capped_and_bad_bytes_replaced() {
    let mock = Mock::start(MockState::default()).await;
    let script = r#"head -c 3000000 /dev/zero | tr '\0' x; echo; printf '\377\376ok\n'; echo 'hyperdial: a=1'"#;
    let ran = run(&mock, &sh(script)).await;
    assert_eq!(ran.outcome.state, RunState::Finished);
    let rec = mock.run("r1");
    let stdout = rec.text("stdout");
    assert!(stdout.len() < 1_100_000, "{}", stdout.len());
    assert!(stdout.starts_with(&"x".repeat(1024 * 1024)));
    assert!(stdout.contains(&format!(
        "\n[hyperdial agent] the line above was longer than 1 MiB; {} more bytes of it were dropped\n",
        3_000_000 - 1024 * 1024 + 1
    )));
    assert!(
        stdout.contains("\u{FFFD}\u{FFFD}ok\n"),
        "{}",
        &stdout[stdout.len() - 200..]
    );
    assert_eq!(rec.points.len(), 1);
    assert_eq!(rec.points[0]["values"], json!({"a": 1}));
}

#[tokio::test]
async fn metrics_are_batched_in_order() {
    let mock = Mock::start(MockState::default()).await;
    let script = r#"i=0; while [ $i -lt 1200 ]; do echo "hyperdial: i=$i"; i=$((i+1)); done"#;
    let ran = run(&mock, &sh(script)).await;
    assert_eq!(ran.outcome.state, RunState::Finished);
    let rec = mock.run("r1");
    let got: Vec<i64> = rec
        .points
        .iter()
        .map(|p| p["values"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (0..1200).collect::<Vec<_>>());
    assert!(rec.metric_requests >= 3, "{}", rec.metric_requests);
    // All output arrived as well, in far fewer requests than lines.
    assert_eq!(rec.text("stdout").lines().count(), 1200);
    assert!(rec.output.len() < 100, "{}", rec.output.len());
}

#[tokio::test]
async fn a_server_that_is_down_does_not_hurt_the_process() {
    // Nothing listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::new(&url, None).with_retry_budget(Duration::from_millis(300));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_s, shutdown) = watch::channel(0u8);
    let argv: Vec<String> = sh("echo 'hyperdial: a=1'; sleep 0.3; exit 4")
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = supervise(
        &client,
        "r1",
        &argv,
        &[],
        &std::env::temp_dir(),
        &opts(),
        &tx,
        shutdown,
    )
    .await;
    assert_eq!(o.exit_code, Some(4));
    assert_eq!(o.state, RunState::Failed);
    assert!(o
        .end
        .error()
        .unwrap()
        .contains("cannot reach the hyperdial server"));
    let events = drain(&mut rx);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Message(m) if m.contains("could not report how it ended"))));
}

/// A server away for longer than the retry window: the points go to the run's spill file
/// (with their steps, and the finish that could not be delivered), and uploading that file
/// later gives the server exactly what the script printed.
#[tokio::test]
async fn points_spilled_during_an_outage_are_uploaded_by_the_agent_once_the_server_is_back() {
    let mock = Mock::start(MockState::default()).await;
    let dir = fresh_dir("spill-back");
    std::fs::create_dir_all(&dir).unwrap();
    let go = dir.join("go");
    let client = impatient(&mock);
    let options = spilling(&dir);
    mock.lock().fail_next = u32::MAX;
    // Three points during the outage, then (once the test has seen them spilled and ended
    // the outage) three more.
    let script = format!(
        "for i in 1 2 3; do echo \"hyperdial: loss=$i\"; done; \
         while [ ! -e '{}' ]; do sleep 0.05; done; \
         for i in 4 5 6; do echo \"hyperdial: loss=$i\"; sleep 0.05; done",
        go.display()
    );
    let outage_over = {
        let (dir, go, mock_state) = (dir.clone(), go.clone(), mock.state.clone());
        tokio::spawn(async move {
            loop {
                let spilled: u64 = hyperdial_agent::spill::files_of_run(&dir, "r1")
                    .iter()
                    .map(|f| hyperdial_agent::spill::Spilled::read(f).map_or(0, |f| f.points()))
                    .sum();
                if spilled == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            mock_state.lock().unwrap().fail_next = 0;
            std::fs::write(&go, b"").unwrap();
        })
    };
    let (_tx, shutdown) = watch::channel(0u8);
    let ran = run_with(&mock, &client, &sh(&script), &[], &options, shutdown).await;
    outage_over.await.unwrap();
    assert_eq!(ran.outcome.points_missing, 0, "{:?}", ran.events);
    assert!(ran.outcome.end.is_taken(), "{:?}", ran.outcome);
    let rec = mock.run("r1");
    let mut got: Vec<(Value, Value)> = rec
        .points
        .iter()
        .map(|p| (p["step"].clone(), p["values"]["loss"].clone()))
        .collect();
    got.sort_by_key(|(step, _)| step.as_u64());
    let want: Vec<(Value, Value)> = (0..6).map(|i| (json!(i), json!(i + 1))).collect();
    assert_eq!(got, want);
    assert!(rec.finish.is_some());
    // The file is marked synced, so `hyperdial sync` has nothing left to upload; the agent
    // said how many points came back this way.
    assert!(hyperdial_agent::spill::files_of_run(&dir, "r1").is_empty());
    assert!(
        ran.events.iter().any(|e| matches!(e, Event::Message(m)
            if m.contains("3 metric points kept on disk while the server was away were uploaded"))),
        "{:?}",
        ran.events
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn points_the_server_does_not_take_in_time_are_spilled_then_uploaded() {
    let mock = Mock::start(MockState::default()).await;
    let dir = fresh_dir("spill-test");
    let client = impatient(&mock);
    let options = spilling(&dir);
    mock.lock().fail_next = u32::MAX;
    let script = "for i in 1 2 3 4 5 6; do echo \"hyperdial: loss=$i\"; sleep 0.1; done";
    let (_tx, shutdown) = watch::channel(0u8);
    let ran = run_with(&mock, &client, &sh(script), &[], &options, shutdown).await;
    assert_eq!(ran.outcome.points_missing, 6, "{:?}", ran.events);
    assert!(ran.outcome.end.error().is_some());
    let files = hyperdial_agent::spill::files_of_run(&dir, "r1");
    assert_eq!(files.len(), 1, "{files:?}");
    // The agent said, when the points started going to the file, which server does not take
    // them, where they are, and what brings them to the run.
    let label = hyperdial_agent::spill::label(&files[0]);
    let said: Vec<&String> = ran
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) if m.contains("could not send") => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(said.len(), 1, "{:?}", ran.events);
    let said = said[0];
    assert!(
        said.contains(&format!("the hyperdial server at {}", mock.url)),
        "{said}"
    );
    assert!(said.contains(&format!("kept in {label}")), "{said}");
    assert!(
        said.contains(&format!(
            "else `hyperdial sync {}` uploads them to the run once it does",
            dir.display()
        )),
        "{said}"
    );
    let records = hyperdial_agent::spill::read_records(&files[0]).unwrap();
    assert_eq!(records.last().unwrap()["type"], "finish");
    assert_eq!(records.last().unwrap()["exit_code"], 0);
    // It said which command uploads the run's end later.
    let sync = format!("upload it with `hyperdial sync {}`", dir.display());
    assert!(
        ran.events
            .iter()
            .any(|e| matches!(e, Event::Message(m) if m.contains(&sync))),
        "{:?}",
        ran.events
    );

    mock.lock().fail_next = 0;
    let done = hyperdial_agent::spill::upload_spill_file(&client, &files[0], false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.points, 6);
    let rec = mock.run("r1");
    let got: Vec<(Value, Value)> = rec
        .points
        .iter()
        .map(|p| (p["step"].clone(), p["values"]["loss"].clone()))
        .collect();
    let want: Vec<(Value, Value)> = (0..6).map(|i| (json!(i), json!(i + 1))).collect();
    assert_eq!(got, want);
    assert!(rec.finish.is_some());
    assert!(hyperdial_agent::spill::files_of_run(&dir, "r1").is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

/// A run's end kept while the server does not answer makes the agent wait for the server
/// ([`SuperviseOptions::end_wait`]), retrying the upload; a shutdown signal ends that wait at
/// once, and the file stays for `hyperdial sync`.
#[tokio::test]
async fn a_shutdown_ends_the_wait_for_the_server_at_once_and_keeps_the_end() {
    let mock = Mock::start(MockState::default()).await;
    let dir = fresh_dir("end-wait");
    let client = impatient(&mock);
    let options = SuperviseOptions {
        spill_dir: Some(dir.clone()),
        // Far longer than the test may take: only the shutdown can end it.
        end_wait: Duration::from_secs(3600),
        ..opts()
    };
    mock.lock().fail_next = u32::MAX;
    let (tx, shutdown) = watch::channel(0u8);
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let signal = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(event) = events_rx.recv().await {
            if matches!(&event, Event::Message(m) if m.contains("waiting up to 3600 s")) {
                tx.send_replace(2);
            }
            seen.push(event);
        }
        seen
    });
    let argv: Vec<String> = sh("echo 'hyperdial: loss=1'")
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cwd = std::env::temp_dir();
    let supervised = supervise(
        &client,
        "r1",
        &argv,
        &[],
        &cwd,
        &options,
        &events_tx,
        shutdown,
    );
    let outcome = tokio::time::timeout(Duration::from_secs(120), supervised)
        .await
        .expect("the shutdown did not end the wait for the server");
    drop(events_tx);
    let events = signal.await.unwrap();
    assert!(outcome.end.error().is_some(), "{events:?}");
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Message(m) if m.contains("stopped waiting for the server"))
        ),
        "{events:?}"
    );
    let files = hyperdial_agent::spill::files_of_run(&dir, "r1");
    assert_eq!(files.len(), 1, "{files:?}");
    let kept = hyperdial_agent::spill::Spilled::read(&files[0]).unwrap();
    assert!(kept.finish().is_some());
    std::fs::remove_dir_all(&dir).ok();
}

/// Output the server does not take while it is away is held, and arrives ahead of what came
/// after once the server takes output again: the captured output is whole and in order.
#[tokio::test]
async fn output_held_while_the_server_is_away_arrives_whole_and_in_order() {
    let mock = Mock::start(MockState::default()).await;
    let dir = fresh_dir("lost-output");
    std::fs::create_dir_all(&dir).unwrap();
    let go = dir.join("go");
    let client = impatient(&mock);
    mock.lock().fail_next = u32::MAX;
    let script = format!(
        "printf 'line 1\\nline 2\\nline 3\\n'; while [ ! -e '{}' ]; do sleep 0.05; done; \
         echo after",
        go.display()
    );
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let outage_over = {
        let (go, mock_state) = (go.clone(), mock.state.clone());
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                if matches!(&event, Event::Message(m) if m.contains("could not send output")) {
                    mock_state.lock().unwrap().fail_next = 0;
                    std::fs::write(&go, b"").unwrap();
                }
            }
        })
    };
    let argv: Vec<String> = sh(&script).iter().map(|s| s.to_string()).collect();
    let (_tx, shutdown) = watch::channel(0u8);
    let cwd = std::env::temp_dir();
    let outcome = supervise(
        &client,
        "r1",
        &argv,
        &[],
        &cwd,
        &opts(),
        &events_tx,
        shutdown,
    )
    .await;
    drop(events_tx);
    outage_over.await.unwrap();
    assert!(outcome.end.is_taken(), "{outcome:?}");
    let stdout = mock.run("r1").text("stdout");
    assert_eq!(stdout, "line 1\nline 2\nline 3\nafter\n");
    std::fs::remove_dir_all(&dir).ok();
}

/// Output held when the run ends with the server still away is kept in the run's spill file
/// with its points and end, and the upload gives the run all of it, in order.
#[tokio::test]
async fn output_held_at_the_end_of_a_run_is_kept_in_the_spill_file() {
    let mock = Mock::start(MockState::default()).await;
    let dir = fresh_dir("held-output");
    let client = impatient(&mock);
    let mut options = spilling(&dir);
    options.end_wait = Duration::ZERO;
    mock.lock().fail_next = u32::MAX;
    let script = "printf 'epoch 1\\nepoch 2\\n'; echo oops >&2; \
                  echo 'hyperdial: {\"loss\": 0.5}'";
    let argv: Vec<String> = sh(script).iter().map(|s| s.to_string()).collect();
    let (events_tx, _events_rx) = mpsc::unbounded_channel();
    let (_tx, shutdown) = watch::channel(0u8);
    let outcome = supervise(
        &client,
        "r1",
        &argv,
        &[],
        &std::env::temp_dir(),
        &options,
        &events_tx,
        shutdown,
    )
    .await;
    assert!(outcome.end.error().is_some(), "{outcome:?}");
    assert_eq!(mock.run("r1").text("stdout"), "");
    let files = hyperdial_agent::spill::files_of_run(&dir, "r1");
    assert_eq!(files.len(), 1, "{files:?}");
    let kept = hyperdial_agent::spill::Spilled::read(&files[0]).unwrap();
    let outputs: Vec<&serde_json::Value> = kept
        .records()
        .iter()
        .filter(|r| r["type"] == "output")
        .collect();
    assert_eq!(outputs.len(), 2, "{:?}", kept.records());
    // The server is back: the upload gives the run its output, its point and its end.
    mock.lock().fail_next = 0;
    kept.upload(&client, false).await.unwrap();
    let run = mock.run("r1");
    assert!(
        run.text("stdout").starts_with("epoch 1\nepoch 2\n"),
        "{:?}",
        run.text("stdout")
    );
    assert_eq!(run.text("stderr"), "oops\n");
    std::fs::remove_dir_all(&dir).ok();
}

/// A spill file that holds output alone (held at the end of a run while the server was away,
/// the run's end getting through later, so no point and no end is in it) is uploaded when the
/// run ends, as one of points is, and the agent says so: no line stays on disk unsaid.
#[tokio::test]
async fn a_spill_file_of_output_alone_is_uploaded_when_the_run_ends() {
    let mock = Mock::start(MockState::default()).await;
    let dir = fresh_dir("output-alone");
    let kept = hyperdial_agent::spill::SpillFile::new(&dir, "r1", "earlier", &mock.url);
    kept.append_output(
        hyperdial_agent::client::Stream::Stdout,
        "epoch 1\nepoch 2\n",
    )
    .unwrap();
    let client = Client::new(&mock.url, None);
    let (_tx, shutdown) = watch::channel(0u8);
    let ran = run_with(
        &mock,
        &client,
        &sh("echo done"),
        &[],
        &spilling(&dir),
        shutdown,
    )
    .await;
    assert!(ran.outcome.end.error().is_none(), "{:?}", ran.outcome);
    let stdout = mock.run("r1").text("stdout");
    assert!(
        stdout.contains("epoch 1\nepoch 2\n") && stdout.contains("done\n"),
        "{stdout:?}"
    );
    assert!(
        hyperdial_agent::spill::files_of_run(&dir, "r1").is_empty(),
        "the file is uploaded and marked synced"
    );
    assert!(
        ran.events.iter().any(|e| matches!(e, Event::Message(m)
            if m.contains("1 piece of output kept on disk while the server was away were uploaded"))),
        "{:?}",
        ran.events
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The server away while the run writes and ends, back while its end is being sent: the
/// output held at the end went to the spill file, and once the end is taken the agent uploads
/// that file at once (it does not wait for `hyperdial sync`).
#[tokio::test]
async fn output_kept_at_the_end_goes_up_once_the_end_gets_through() {
    let mock = Mock::start(MockState {
        fail_output_until_finish: true,
        ..MockState::default()
    })
    .await;
    let dir = fresh_dir("output-after-end");
    let client = impatient(&mock);
    let (_tx, shutdown) = watch::channel(0u8);
    let ran = run_with(
        &mock,
        &client,
        &sh("printf 'epoch 1\\nepoch 2\\n'; echo oops >&2"),
        &[],
        &spilling(&dir),
        shutdown,
    )
    .await;
    assert!(ran.outcome.end.is_taken(), "{:?}", ran.outcome);
    let run = mock.run("r1");
    assert!(
        run.text("stdout").starts_with("epoch 1\nepoch 2\n"),
        "{:?} {:?}",
        run.text("stdout"),
        ran.events
    );
    assert_eq!(run.text("stderr"), "oops\n");
    assert!(
        hyperdial_agent::spill::files_of_run(&dir, "r1").is_empty(),
        "the file is uploaded and marked synced"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A server that does not know the run (`404`: restarted on another database) is no outage
/// and no bad request: every point and the run's end are kept in the spill file (never
/// dropped), the agent names the likely cause and the command that uploads the file, and does
/// not wait for a server that answers; the file uploaded to the server that has the run gives
/// it every point and its end.
#[tokio::test]
async fn a_server_without_the_run_keeps_every_point_and_the_end_without_waiting() {
    let mock = Mock::start(MockState {
        forget_runs: true,
        ..MockState::default()
    })
    .await;
    let dir = fresh_dir("spill-unknown");
    let client = Client::new(&mock.url, None);
    let options = SuperviseOptions {
        spill_dir: Some(dir.clone()),
        end_wait: Duration::from_secs(600),
        sync_options: format!(" --server {}", mock.url),
        ..opts()
    };
    let script = "for i in 1 2 3 4 5; do echo \"hyperdial: loss=$i\"; sleep 0.05; done";
    let (_tx, shutdown) = watch::channel(0u8);
    let started = std::time::Instant::now();
    let ran = run_with(&mock, &client, &sh(script), &[], &options, shutdown).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited for the server"
    );
    assert!(
        matches!(ran.outcome.end, EndReport::UnknownRun(_)),
        "{:?}",
        ran.outcome
    );
    let all = format!("{:?}", ran.events);
    assert!(!all.contains("they are dropped"), "{all}");
    assert!(
        !all.contains("does not answer") && !all.contains("waiting up to"),
        "{all}"
    );
    let sync = format!("`hyperdial sync {} --server {}`", dir.display(), mock.url);
    assert!(
        all.contains("does not know this run") && all.contains("another database"),
        "{all}"
    );
    assert!(all.contains(&sync), "{all}");

    let files = hyperdial_agent::spill::files_of_run(&dir, "r1");
    assert_eq!(files.len(), 1, "{files:?}");
    mock.state.lock().unwrap().forget_runs = false;
    let done = hyperdial_agent::spill::upload_spill_file(&client, &files[0], false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.points, 5);
    assert!(done.ended);
    std::fs::remove_dir_all(&dir).ok();
}

/// A token the server refuses (`401`) mid-run is no outage and no bad request: every point
/// and the run's end are kept in the spill file (never dropped), the agent says it is a token
/// problem and how to fix it, once, and does not wait for the server; the file uploaded with
/// a token the server accepts gives the run every point and its end.
#[tokio::test]
async fn a_refused_token_keeps_every_point_and_the_end_without_waiting() {
    let mock = Mock::start(MockState {
        token: Some("new-token".into()),
        ..MockState::default()
    })
    .await;
    let dir = fresh_dir("spill-token");
    let client = Client::new(&mock.url, Some("old-token".into()));
    let options = SuperviseOptions {
        spill_dir: Some(dir.clone()),
        // An outage would be waited for this long; a refused token is not.
        end_wait: Duration::from_secs(600),
        sync_options: format!(" --server {}", mock.url),
        ..opts()
    };
    let script = "for i in 1 2 3 4 5; do echo \"hyperdial: loss=$i\"; sleep 0.05; done";
    let (_tx, shutdown) = watch::channel(0u8);
    let ran = run_with(&mock, &client, &sh(script), &[], &options, shutdown).await;
    assert!(
        matches!(ran.outcome.end, EndReport::TokenRefused(_)),
        "{:?}",
        ran.outcome
    );
    assert!(ran.outcome.end.error().is_some());
    let messages: Vec<&String> = ran
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    let all = format!("{messages:?}");
    assert!(
        !all.contains("they are dropped") && !all.contains("lost"),
        "{all}"
    );
    assert!(
        !all.contains("does not answer") && !all.contains("waiting up to"),
        "{all}"
    );
    let refused: Vec<&&String> = messages
        .iter()
        .filter(|m| m.contains("refused this agent's token (401)"))
        .collect();
    assert_eq!(refused.len(), 1, "{all}");
    let sync = format!("`hyperdial sync {} --server {}`", dir.display(), mock.url);
    assert!(refused[0].contains("HYPERDIAL_TOKEN"), "{all}");
    assert!(refused[0].contains(&sync), "{all}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("its end is kept in") && m.contains(&sync)),
        "{all}"
    );
    assert!(mock.run("r1").finish.is_none());

    let files = hyperdial_agent::spill::files_of_run(&dir, "r1");
    assert_eq!(files.len(), 1, "{files:?}");
    let good = Client::new(&mock.url, Some("new-token".into()));
    let done = hyperdial_agent::spill::upload_spill_file(&good, &files[0], false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.points, 5);
    assert!(done.ended);
    let rec = mock.run("r1");
    let losses: Vec<Value> = rec
        .points
        .iter()
        .map(|p| p["values"]["loss"].clone())
        .collect();
    assert_eq!(losses, (1..=5).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(rec.finish.unwrap()["exit_code"], 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// The finish carries the time the process ended (`ended_ms`): a finish delivered late (kept
/// while the server was away, uploaded afterwards) does not stretch the run to its delivery.
#[tokio::test]
async fn a_finish_delivered_late_keeps_the_time_the_process_ended() {
    let mock = Mock::start(MockState::default()).await;
    let dir = fresh_dir("late-finish");
    let client = impatient(&mock);
    let options = spilling(&dir);
    mock.lock().fail_next = u32::MAX;
    let before = now_ms();
    let (_tx, shutdown) = watch::channel(0u8);
    let ran = run_with(&mock, &client, &sh("exit 0"), &[], &options, shutdown).await;
    let returned = now_ms();
    assert!(ran.outcome.end.error().is_some(), "{:?}", ran.outcome);
    // The server comes back later; the kept end is uploaded then.
    while now_ms() <= returned {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    mock.lock().fail_next = 0;
    let files = hyperdial_agent::spill::files_of_run(&dir, "r1");
    hyperdial_agent::spill::upload_spill_file(&client, &files[0], false)
        .await
        .unwrap()
        .unwrap();
    let finish = mock.run("r1").finish.unwrap();
    let ended = finish["ended_ms"].as_i64().unwrap();
    assert!(
        before <= ended && ended <= returned,
        "{before} {finish} {returned}"
    );

    // Delivered at once, it carries the end time too.
    let mock = Mock::start(MockState::default()).await;
    let ran = run(&mock, &sh("exit 0")).await;
    assert!(ran.outcome.end.is_taken());
    assert!(mock.run("r1").finish.unwrap()["ended_ms"]
        .as_i64()
        .is_some());
    std::fs::remove_dir_all(&dir).ok();
}

/// An empty directory of this test process for spill files, named after `name` (removed first
/// if an earlier run left it).
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hyperdial-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A client of `mock` that gives up on a request after 300 ms, so an outage is spilled at once.
fn impatient(mock: &Mock) -> Client {
    Client::new(&mock.url, None).with_retry_budget(Duration::from_millis(300))
}

/// The test options ([`opts`]) with spill files in `dir`.
fn spilling(dir: &std::path::Path) -> SuperviseOptions {
    SuperviseOptions {
        spill_dir: Some(dir.to_path_buf()),
        ..opts()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A finish body without its `ended_ms` (when the process ended, checked on its own), which
/// every finish of the agent carries.
fn without_end_time(mut finish: Value) -> Value {
    let ended = finish.as_object_mut().unwrap().remove("ended_ms");
    assert!(ended.and_then(|v| v.as_i64()).is_some(), "{finish}");
    finish
}
