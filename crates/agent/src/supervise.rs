//! The process supervisor: one training process from start to finished run.
//!
//! [`supervise()`] is shared by the sweep agent and by `hyperdial run -- CMD`. It guarantees:
//!
//! - **No shell.** The argv vector is executed as is (`argv[0]` looked up in `PATH`), so a
//!   parameter value such as `a b; rm -rf /` is one argument.
//! - **Its own process group.** The process starts in a new process group (its pid is the group
//!   id), with standard input from `/dev/null`. Stops and kills go to the whole group, so worker
//!   processes (data loaders, `torchrun` ranks, `sleep 1000 &`) go with their parent.
//! - **Nothing lingers.** When the main process has exited, whatever is left of the group is
//!   killed with SIGKILL and reaped before [`supervise()`] returns. On Linux the calling process
//!   becomes a *child subreaper* (`PR_SET_CHILD_SUBREAPER`) the first time [`supervise()`] runs,
//!   so orphaned workers are re-parented to it and can be reaped; otherwise they would stay as
//!   zombies under an init that does not reap (common in containers). A process that left the
//!   group on purpose (`setsid`, a daemon) is beyond reach.
//! - **Output and metrics are relayed in batches.** Standard output and standard error are read
//!   line by line (`\n` or `\r` ends a line, so progress bars flow too; invalid UTF-8 is
//!   replaced by U+FFFD; a line longer than 1 MiB is cut, with a note). Output is posted per
//!   stream every 250 ms or 64 KiB, metric lines ([`crate::lines`]) of standard output every
//!   250 ms or 500 points. If the server falls behind, at most 16 MiB of output and 100 000
//!   points wait in memory; beyond that output is dropped with a note in the captured output,
//!   rather than stalling the training process or exhausting memory. Output the server does
//!   not take (it is away for longer than the retry window) is dropped too, and the first
//!   output it takes again (or, at the run's end, a last short try) starts with one line
//!   saying how many lines of that stream were lost ("[hyperdial agent] 37 output lines were
//!   not delivered while the server was unreachable").
//! - **No metric point is lost in silence.** Every point gets its step here (the line's
//!   `_step`, else the previous step + 1), so sending a batch twice stores it once. Requests
//!   are kept below the API's size limit ([`crate::client::MAX_REQUEST_BYTES`]). A batch is
//!   retried for the client's whole retry window (60 s, `HYPERDIAL_RETRY_SECONDS`); when the
//!   window of an outage is used up, batches go to the run's spill file
//!   ([`crate::spill`], under [`SuperviseOptions::spill_dir`]) after one short attempt each,
//!   until the server answers again. When the process has ended, the points that did not
//!   arrive (in the run's spill files, the agent's and its Python client's, or dropped because
//!   memory was full or no spill file could be written) are reported with
//!   `POST /runs/{id}/delivery` before `finish`, so the run's record says how many are missing
//!   and which files `hyperdial sync` must upload. If `finish` itself cannot be delivered, it
//!   is written to the spill file too, and [`supervise()`] waits for the server for
//!   [`SuperviseOptions::end_wait`] (unless shutting down; a shutdown signal ends the wait),
//!   retrying the upload of the run's files with backoff: a server back in time takes the
//!   run's end, even one that marked the run `crashed` meanwhile while its retry has not
//!   started (`POST /runs/{id}/late-end`). Otherwise `hyperdial sync` ends the run later, as
//!   the agent says.
//! - **Stops are obeyed.** A heartbeat goes out every [`SuperviseOptions::heartbeat`]. When the
//!   server answers `stop` (to a heartbeat or to posted metrics), the group gets SIGTERM, and
//!   SIGKILL after [`SuperviseOptions::grace`] if it is still there.
//! - **Shutdown levels** (the `shutdown` watch channel, raised by the CLI on SIGINT, SIGTERM
//!   and SIGHUP): `1` changes nothing here (the agent just claims no further run), `2` sends
//!   SIGTERM to the group and SIGKILL after the grace period, `3` sends SIGKILL at once. The run
//!   ends `cancelled`, its error saying why ([`set_shutdown_reason`], e.g. "interrupted: agent
//!   received SIGTERM"). So does a run whose process died of SIGTERM, SIGINT or SIGHUP when
//!   the level reaches 2 within 2 s after: a batch scheduler (Slurm, systemd) signals every
//!   process of a job at once, and the training process may die before the agent has seen
//!   its own signal.
//! - **The process dies with its agent** (Linux). The process is started with a parent-death
//!   signal (`PR_SET_PDEATHSIG`, SIGKILL), so an agent killed with SIGKILL (or by the OOM
//!   killer) takes its training process along; the server then marks the run `crashed` once
//!   its heartbeats have been missing for the server's silence limit (60 s; its janitor looks
//!   every 10 s). The kernel sends that signal when the *thread* that started the process
//!   ends, so [`supervise()`] must run on a thread that lives as long as the agent: the thread
//!   of `block_on` or a worker of a multi-threaded tokio runtime (they live as long as the
//!   runtime), never inside `spawn_blocking` or after `block_in_place`. Only the direct child
//!   gets the signal: processes it started itself (data loaders, ranks) are orphaned and keep
//!   running unless they watch their parent. A process that loses its parent before the signal
//!   is armed exits at once. With [`SuperviseOptions::reaper`] (what the `hyperdial` binary
//!   uses) the command runs under a tiny reaper process that SIGKILLs the whole process group
//!   when the agent dies, so those workers die too (see [`crate::reaper`]).
//! - **Every run is finished**, exactly once, with what is known: exit code 0 → no state (the
//!   server decides, and fails a run whose sweep metric is NaN); another exit code → `failed`,
//!   "exit code N"; a signal → `failed`, "killed by SIGSEGV (segmentation fault)" (SIGKILL: "killed
//!   by SIGKILL (out of memory?)", since the kernel's OOM killer is its usual sender); stopped on
//!   the server's request → `stopped_early` when the reason is `early_terminated`, `cancelled`
//!   otherwise; stopped by shutdown level 2 or 3 → `cancelled`; a program that cannot be started
//!   → `failed`, "cannot start `prog`: No such file or directory".
//! - **A run the server gave up on is let go.** When the server answers a heartbeat, metrics
//!   or output with `409 run_crashed` ([`ClientError::is_run_crashed`]: it marked the run
//!   `crashed` after the run timeout, e.g. while this agent's link was cut, and queued a retry
//!   elsewhere), the group is stopped as for a server stop (reason `crashed`), nothing more is
//!   sent or kept for `hyperdial sync`, and the refused `finish` ends the run here as
//!   `crashed`.
//! - **No panic** on a bad server answer or a misbehaving process; server errors become
//!   [`Event::Message`]s and the training goes on.
//!
//! Environment of the process: the agent's own, plus `extra` variables, plus `HYPERDIAL_SERVER`,
//! `HYPERDIAL_RUN_ID`, `HYPERDIAL_SWEEP_ID` (sweep runs; removed otherwise), `HYPERDIAL_CONFIG`
//! (when a config file is given; removed otherwise), `HYPERDIAL_TOKEN` (when the client has a
//! token), `HYPERDIAL_CA_CERT` (when the client trusts a CA file, [`Client::ca_cert`]), `PYTHONPATH` prefixed with [`SuperviseOptions::wandb_module`] (when set) and
//! [`SuperviseOptions::python_path`], W&B's `WANDB_RUN_ID` and `WANDB_SWEEP_ID` (removed
//! outside a sweep) when the `wandb` module is given, as W&B's agent sets them, and
//! `PYTHONUNBUFFERED=1` unless set: Python block-buffers standard output into a pipe, which would
//! hold metric lines back for kilobytes.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::agent::Event;
use crate::client::{Client, ClientError, Finish, MetricPoint, Stream};
use crate::lines::{parse_metric_line, PREFIX};
use crate::spill::{self, SpillFile, SPILL_DIR_ENV};
use hyperdial_wire::RunState;

/// Longest line kept from a process's output; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 1024 * 1024;

/// Output of one stream is posted once this much has gathered (or on the flush interval).
const OUTPUT_BATCH: usize = 64 * 1024;

/// Metric points are posted once this many have gathered (or on the flush interval).
const METRICS_BATCH: usize = 500;

/// Output waiting to be posted beyond which new output is dropped.
const MAX_PENDING_OUTPUT: usize = 16 * 1024 * 1024;

/// Metric points waiting to be posted beyond which new points are dropped.
const MAX_PENDING_POINTS: usize = 100_000;

/// Largest output text of one request when batches queued up are merged.
const MAX_MERGED_OUTPUT: usize = 1024 * 1024;

/// Most metric points of one request when batches queued up are merged.
const MAX_MERGED_POINTS: usize = 5_000;

/// How long to wait for the output pipes to close after the process group is gone (a process
/// that escaped the group may hold them open).
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long to wait for a killed process group to disappear.
const GROUP_GONE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a run whose process died of SIGTERM, SIGINT or SIGHUP waits for this process's own
/// shutdown before it counts as `failed` (see [`supervise()`]'s wait for the process).
const SHUTDOWN_SIGNAL_WINDOW: Duration = Duration::from_secs(2);

/// How long a shutting-down agent still waits for the server once a run's process has ended
/// (or, when the shutdown comes later, from the shutdown on): every request of the run's report
/// (metric batches, output, delivery, finish) must be answered within it, else what is left
/// goes to the spill file ([`Client::hurry`]). A batch scheduler's kill delay (Slurm's
/// `KillWait`, 30 s by default) must cover the grace period plus this.
pub const SHUTDOWN_REPORT_TIME: Duration = Duration::from_secs(10);

/// Retry budget for output and metrics while the server is known to be failing: data is
/// dropped instead of piling up behind minute-long retries.
const DEGRADED_RETRY_BUDGET: Duration = Duration::from_secs(2);

/// How many invalid metric lines per run are also reported as [`Event::Message`]s (all of them
/// are noted in the captured output).
const MAX_LINE_WARNINGS: usize = 3;

/// Settings of [`supervise()`].
#[derive(Debug, Clone)]
pub struct SuperviseOptions {
    /// The sweep the run belongs to, exported as `HYPERDIAL_SWEEP_ID`; `None` for a run outside
    /// any sweep.
    pub sweep: Option<String>,
    /// The JSON file holding the run's nested config, exported as `HYPERDIAL_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// Directory put in front of `PYTHONPATH` (see [`crate::install_python_client`]).
    pub python_path: Option<PathBuf>,
    /// Directory put in front of `PYTHONPATH` before [`SuperviseOptions::python_path`], holding
    /// the `wandb`-compatible module (see [`crate::install_wandb_module`]); `None`: scripts
    /// import the real `wandb`, if installed.
    pub wandb_module: Option<PathBuf>,
    /// The git state of the run's working directory, sent with `POST /runs/{id}/started`.
    pub git: Option<crate::GitState>,
    /// Time between heartbeats (default 2 s).
    pub heartbeat: Duration,
    /// Time between SIGTERM and SIGKILL when stopping the process group (default 10 s).
    pub grace: Duration,
    /// Longest time output and metrics wait before being posted (default 250 ms).
    pub flush_interval: Duration,
    /// Also copy the process's output to this process's standard output and error (for
    /// `hyperdial run`, where the user watches the script).
    pub echo: bool,
    /// An executable that runs [`crate::reaper::main`] for the argument [`crate::reaper::ARG`]
    /// (the `hyperdial` binary; on Linux `/proc/self/exe` names it even if the file was
    /// replaced since). When set (Linux only), the command runs under that reaper, so that
    /// processes it starts itself also die with the agent. Default `None`.
    pub reaper: Option<PathBuf>,
    /// Where undeliverable metric points are spilled (see [`crate::spill`]), also given to
    /// the process as `HYPERDIAL_SPILL_DIR`; `None`: they are dropped, and counted as missing.
    pub spill_dir: Option<PathBuf>,
    /// Options of the `hyperdial sync` suggested for spilled points, each with a leading space
    /// (` --server URL`), so it uploads them where the run reports; default empty.
    pub sync_options: String,
    /// How long to wait for the server, once the run's end could not be reported and is kept
    /// in the spill file, retrying its upload with backoff before giving up and leaving the
    /// file to `hyperdial sync` (default [`end_wait_from_env`]: [`END_WAIT`], or
    /// `HYPERDIAL_END_WAIT`). Zero: no wait.
    pub end_wait: Duration,
}

/// How long an agent waits by default for a server that does not answer when a run has
/// ended and its end is kept in the spill file ([`SuperviseOptions::end_wait`]).
pub const END_WAIT: Duration = Duration::from_secs(60);

/// The environment variable that sets [`SuperviseOptions::end_wait`], in seconds.
pub const END_WAIT_ENV: &str = "HYPERDIAL_END_WAIT";

/// The wait set by `HYPERDIAL_END_WAIT` (seconds, fractions allowed, 0 for none), or
/// [`END_WAIT`] when it is unset or not a number of seconds.
pub fn end_wait_from_env() -> Duration {
    std::env::var(END_WAIT_ENV)
        .ok()
        .and_then(|v| parse_seconds(&v))
        .unwrap_or(END_WAIT)
}

/// A number of seconds (`60`, `0.5`, `0`), at most a year; `None` otherwise.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 365.0 * 86400.0)
        .map(Duration::from_secs_f64)
}

/// First pause between two attempts to upload a kept end; it doubles up to [`END_WAIT_MAX_PAUSE`].
const END_WAIT_FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Longest pause between two attempts to upload a kept end.
const END_WAIT_MAX_PAUSE: Duration = Duration::from_secs(8);

/// Retry budget of one attempt to upload a kept end (the wait's backoff does the rest).
const END_WAIT_ATTEMPT: Duration = Duration::from_secs(2);

impl Default for SuperviseOptions {
    fn default() -> Self {
        SuperviseOptions {
            sweep: None,
            config_file: None,
            python_path: None,
            wandb_module: None,
            git: None,
            heartbeat: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            flush_interval: Duration::from_millis(250),
            echo: false,
            reaper: None,
            spill_dir: None,
            sync_options: String::new(),
            end_wait: end_wait_from_env(),
        }
    }
}

/// How a supervised run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The run's final state as the server recorded it. If the finish request failed (or its
    /// answer named no state): the state the agent asked for, or `finished` for exit code 0.
    pub state: RunState,
    /// The state the agent asked for; `None` when the process exited 0 and the server decided.
    pub requested_state: Option<RunState>,
    /// Whether the process was started at all.
    pub started: bool,
    /// The exit code, when the process exited normally.
    pub exit_code: Option<i32>,
    /// The signal that killed the process, if any.
    pub signal: Option<i32>,
    /// What went wrong: the server's `error` of the finished run, or else the agent's
    /// (`exit code 3`, `killed by SIGKILL (out of memory?)`, ...).
    pub error: Option<String>,
    /// Why the agent stopped the process: the server's stop reason (`early_terminated`,
    /// `cancelled`, ...), `stop` when it gave none, or `shutdown`.
    pub stop_reason: Option<String>,
    /// The run's sweep metric (`metric` of the finished Run), if any.
    pub metric: Option<f64>,
    /// The Run object the server returned from `finish`.
    pub run: Option<Value>,
    /// Why the finish request failed, if it did.
    pub finish_error: Option<String>,
    /// Time from the start of [`supervise()`] to the process's end.
    pub duration: Duration,
    /// Metric points that did not reach the server (kept in spill files, or dropped), as
    /// reported in the run's `delivery` record; 0 when all arrived.
    pub points_missing: u64,
    /// The last lines the process wrote to stderr (at most [`STDERR_TAIL_BYTES`]), to say why
    /// a run failed where its output is not at hand (a `tune` that stopped on a crash loop).
    pub stderr_tail: String,
}

/// How much of the end of a run's stderr [`Outcome::stderr_tail`] keeps, in bytes.
pub const STDERR_TAIL_BYTES: usize = 2048;

/// Why this process is shutting down, for the runs it interrupts (see [`set_shutdown_reason`]).
static SHUTDOWN_REASON: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Record why this process is shutting down (e.g. "agent received SIGTERM"). Runs stopped by
/// shutdown level 2 or 3 afterwards end `cancelled` with the error "interrupted: REASON"; without
/// a reason, "interrupted: the agent was shut down while the run was going". The reason is
/// process-wide because a signal is.
pub fn set_shutdown_reason(reason: impl Into<String>) {
    if let Ok(mut slot) = SHUTDOWN_REASON.lock() {
        *slot = Some(reason.into());
    }
}

fn shutdown_reason() -> String {
    SHUTDOWN_REASON
        .lock()
        .ok()
        .and_then(|slot| slot.clone())
        .unwrap_or_else(|| "the agent was shut down while the run was going".to_string())
}

/// Why the agent ended the process.
#[derive(Debug, Clone, PartialEq)]
enum StopCause {
    /// The server asked, with this reason.
    Server(Option<String>),
    /// Shutdown level 2 or 3.
    Shutdown,
}

/// Run `argv` as run `run_id` until it ends, then finish the run. See the module
/// documentation for the guarantees.
///
/// - `env`: extra environment variables for the process (the `HYPERDIAL_*` ones win).
/// - `cwd`: the working directory of the process.
/// - `events`: progress ([`Event::Metric`], [`Event::Message`], finally [`Event::Finished`]);
///   a closed receiver is fine.
/// - `shutdown`: the shutdown level (see the module documentation); a dropped sender is fine.
#[allow(clippy::too_many_arguments)]
pub async fn supervise(
    client: &Client,
    run_id: &str,
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    opts: &SuperviseOptions,
    events: &mpsc::UnboundedSender<Event>,
    mut shutdown: watch::Receiver<u8>,
) -> Outcome {
    let started = Instant::now();
    let program = argv.first().map(String::as_str).unwrap_or("");
    if program.is_empty() {
        return finish_unstarted(client, run_id, "the command is empty".into(), events).await;
    }
    if !cwd.is_dir() {
        let error = format!(
            "cannot start `{program}`: the working directory {} does not exist",
            cwd.display()
        );
        return finish_unstarted(client, run_id, error, events).await;
    }

    ensure_subreaper();
    let mut cmd = match opts.reaper.as_deref().filter(|_| cfg!(target_os = "linux")) {
        Some(exe) => {
            let wrapped = crate::reaper::wrap(exe, std::process::id(), argv);
            let mut cmd = Command::new(&wrapped[0]);
            cmd.args(&wrapped[1..]);
            cmd
        }
        None => {
            let mut cmd = Command::new(program);
            cmd.args(&argv[1..]);
            cmd
        }
    };
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    apply_env(&mut cmd, client, run_id, env, opts);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            let error = format!("cannot start `{program}`: {}", io_message(&err));
            return finish_unstarted(client, run_id, error, events).await;
        }
    };
    let pgid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let mut guard = GroupGuard { pgid, armed: true };
    tracing::debug!("run {run_id}: started pid {pgid}: {argv:?}");
    // Record the exact argv with the run (shown by the dashboard); losing it is not fatal.
    if let Err(err) = client
        .started(run_id, argv, child.id(), opts.git.as_ref())
        .await
    {
        tracing::warn!("run {run_id}: could not record its argv: {err}");
    }

    // Output: two readers → relay (batching) → sender (HTTP, in order).
    let pending = Arc::new(Pending::default());
    let (chunk_tx, chunk_rx) = mpsc::unbounded_channel();
    let (batch_tx, batch_rx) = mpsc::unbounded_channel();
    let (stop_tx, mut stop_rx) = mpsc::unbounded_channel::<Option<String>>();
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(read_stream(
            out,
            Stream::Stdout,
            chunk_tx.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(read_stream(
            err,
            Stream::Stderr,
            chunk_tx.clone(),
        )));
    }
    drop(chunk_tx);
    let relay = Relay {
        run: run_id.to_string(),
        batch_tx,
        pending: pending.clone(),
        events: events.clone(),
        echo: opts.echo,
        buffers: [String::new(), String::new()],
        points: Vec::new(),
        next_step: 0,
        dropped_bytes: 0,
        dropped_points: 0,
        total_dropped_points: 0,
        warnings: 0,
        stderr_tail: String::new(),
    };
    let relay = tokio::spawn(relay.run(chunk_rx, opts.flush_interval));
    let spill = opts.spill_dir.as_ref().map(|dir| {
        let file = SpillFile::new(dir, run_id, "agent", client.base_url());
        (file, opts.sync_options.clone())
    });
    let sender = tokio::spawn(send_batches(
        client.clone(),
        run_id.to_string(),
        batch_rx,
        pending,
        stop_tx.clone(),
        events.clone(),
        spill,
    ));
    let heartbeat = tokio::spawn(heartbeats(
        client.clone(),
        run_id.to_string(),
        opts.heartbeat,
        stop_tx,
        events.clone(),
    ));

    // Wait for the process, obeying stops and shutdown levels meanwhile.
    let mut cause: Option<StopCause> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut killed = false;
    let mut shutdown_open = true;
    let initial = *shutdown.borrow_and_update();
    apply_level(
        initial,
        pgid,
        opts.grace,
        &mut cause,
        &mut kill_at,
        &mut killed,
    );
    let status: io::Result<ExitStatus> = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some(reason) = stop_rx.recv() => {
                if cause.is_none() {
                    tracing::info!("run {run_id}: the server asked to stop it ({reason:?})");
                    cause = Some(StopCause::Server(reason));
                    terminate(pgid, opts.grace, &mut kill_at);
                }
            }
            changed = shutdown.changed(), if shutdown_open => {
                if changed.is_err() {
                    shutdown_open = false;
                } else {
                    let level = *shutdown.borrow_and_update();
                    apply_level(level, pgid, opts.grace, &mut cause, &mut kill_at, &mut killed);
                }
            }
            _ = sleep_until_opt(kill_at), if kill_at.is_some() && !killed => {
                tracing::info!("run {run_id}: still running after the grace period; SIGKILL");
                let _ = signal_group(pgid, libc::SIGKILL);
                killed = true;
            }
        }
    };
    let duration = started.elapsed();
    // A scheduler that stops a job (Slurm on preemption, requeue or scancel, systemd's
    // control-group kill) signals every process of it at once, this agent included. The
    // training process may then die of that signal before this agent's own handler has raised
    // the shutdown level; the run was interrupted all the same, so it must end `cancelled`
    // ("interrupted: ...", queued again by the server), not `failed` ("killed by SIGTERM",
    // which the default retry policy leaves alone). So a death by one of the shutdown signals
    // waits briefly for the shutdown that usually comes with it.
    if cause.is_none() && shutdown_open {
        let shutdown_signal = status
            .as_ref()
            .ok()
            .and_then(|s| s.signal())
            .is_some_and(|sig| matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGHUP));
        if shutdown_signal
            && matches!(
                tokio::time::timeout(SHUTDOWN_SIGNAL_WINDOW, shutdown.wait_for(|l| *l >= 2)).await,
                Ok(Ok(_))
            )
        {
            tracing::info!(
                "run {run_id}: its process died of the signal that shuts this agent down"
            );
            cause = Some(StopCause::Shutdown);
        }
    }

    // From here on the run is only reported. A shutdown (already under way, or arriving while
    // the server is retried) gives the server SHUTDOWN_REPORT_TIME more, then what is left goes
    // to the spill file: a server that does not answer must not hold a stopping agent for
    // minutes of retries, until a scheduler's SIGKILL loses the run's end.
    let hurry = {
        let client = client.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow_and_update() >= 2 {
                    client.hurry(SHUTDOWN_REPORT_TIME);
                    return;
                }
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        })
    };

    // Nothing of the group may outlive the run.
    if !kill_group(pgid).await {
        let _ = events.send(Event::Message(format!(
            "run {run_id}: some processes of its process group {pgid} are still there after SIGKILL"
        )));
    }
    guard.armed = false;
    drain_readers(readers).await;
    let (overflowed, stderr_tail) = relay.await.unwrap_or_default();
    let sent = sender.await.unwrap_or_default();
    heartbeat.abort();
    let points_missing = settle_delivery(client, run_id, opts, &sent, overflowed, events).await;

    let (exit_code, signal, core) = match &status {
        Ok(s) => (s.code(), s.signal(), s.core_dumped()),
        Err(_) => (None, None, false),
    };
    let stop_reason = match &cause {
        Some(StopCause::Server(reason)) => Some(reason.clone().unwrap_or_else(|| "stop".into())),
        Some(StopCause::Shutdown) => Some("shutdown".to_string()),
        None => None,
    };
    let (requested_state, error): (Option<RunState>, Option<String>) = match (&cause, &status) {
        (Some(StopCause::Server(reason)), _) => {
            if reason.as_deref() == Some("early_terminated") {
                (Some(RunState::StoppedEarly), None)
            } else {
                (Some(RunState::Cancelled), None)
            }
        }
        (Some(StopCause::Shutdown), _) => (
            Some(RunState::Cancelled),
            Some(format!("interrupted: {}", shutdown_reason())),
        ),
        (None, Err(err)) => (
            Some(RunState::Failed),
            Some(format!("lost track of the process: {err}")),
        ),
        (None, Ok(_)) => match (exit_code, signal) {
            (Some(0), _) => (None, None),
            (Some(code), _) => (Some(RunState::Failed), Some(exit_code_message(code))),
            (None, Some(sig)) => (Some(RunState::Failed), Some(signal_message(sig, core))),
            (None, None) => (
                Some(RunState::Failed),
                Some("ended without an exit status".into()),
            ),
        },
    };
    let finish = Finish {
        exit_code: exit_code.map(i64::from),
        state: requested_state,
        error,
        ..Finish::default()
    };
    let mut outcome = finish_run(client, run_id, finish.clone(), events, duration).await;
    outcome.points_missing = points_missing;
    outcome.stderr_tail = stderr_tail;
    hurry.abort();
    if outcome.finish_error.is_some() {
        // The server is away: `hyperdial sync` ends the run later from the spill file.
        if let Some(dir) = &opts.spill_dir {
            let file = SpillFile::new(dir, run_id, "agent", client.base_url());
            match file.append_finish(&finish) {
                Ok(()) => {
                    if let Some(run) =
                        deliver_kept_end(client, run_id, dir, opts, events, &shutdown).await
                    {
                        outcome.finish_error = None;
                        outcome.points_missing = 0;
                        if let Some(state) = run
                            .get("state")
                            .and_then(Value::as_str)
                            .and_then(|word| word.parse::<RunState>().ok())
                        {
                            outcome.state = state;
                        }
                        outcome.metric = run.get("metric").and_then(Value::as_f64);
                        outcome.run = Some(run);
                    }
                }
                Err(err) => {
                    tracing::warn!("run {run_id}: cannot keep its end for `hyperdial sync`: {err}")
                }
            }
        }
    }
    outcome.started = true;
    outcome.signal = signal;
    outcome.stop_reason = stop_reason;
    outcome
}

/// Finish a run whose process never started as `failed` with `error`, after noting why in its
/// captured output; emits [`Event::Finished`].
pub(crate) async fn finish_unstarted(
    client: &Client,
    run_id: &str,
    error: String,
    events: &mpsc::UnboundedSender<Event>,
) -> Outcome {
    let started = Instant::now();
    let _ = events.send(Event::Message(format!("run {run_id}: {error}")));
    let note = format!("[hyperdial agent] {error}\n");
    if let Err(err) = client.post_output(run_id, Stream::Stderr, &note).await {
        tracing::warn!("run {run_id}: could not post output: {err}");
    }
    let finish = Finish {
        exit_code: None,
        state: Some(RunState::Failed),
        error: Some(error),
        ..Finish::default()
    };
    finish_run(client, run_id, finish, events, started.elapsed()).await
}

/// Send `finish`, emit [`Event::Finished`] and describe the result.
async fn finish_run(
    client: &Client,
    run_id: &str,
    finish: Finish,
    events: &mpsc::UnboundedSender<Event>,
    duration: Duration,
) -> Outcome {
    let mut given_up = false;
    let (run, finish_error) = match client.finish(run_id, &finish).await {
        Ok(run) => (Some(run), None),
        Err(err) if err.is_run_crashed() => {
            // Late: the server ended the run itself and runs a retry; nothing to keep.
            given_up = true;
            tracing::info!("run {run_id}: the server refused its late finish: {err}");
            (None, None)
        }
        Err(err) => {
            let _ = events.send(Event::Message(format!(
                "run {run_id}: could not report how it ended: {err}"
            )));
            (None, Some(err.to_string()))
        }
    };
    let server_state = run
        .as_ref()
        .and_then(|r| r.get("state"))
        .and_then(Value::as_str)
        .and_then(|word| word.parse::<RunState>().ok());
    let state = server_state.unwrap_or(match (finish.state, finish.exit_code) {
        _ if given_up => RunState::Crashed,
        (Some(state), _) => state,
        (None, Some(0)) => RunState::Finished,
        (None, _) => RunState::Failed,
    });
    let exit_code = finish.exit_code.and_then(|c| i32::try_from(c).ok());
    let server_error = run
        .as_ref()
        .and_then(|r| r.get("error"))
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    let metric = run
        .as_ref()
        .and_then(|r| r.get("metric"))
        .and_then(Value::as_f64);
    let _ = events.send(Event::Finished {
        run: run_id.to_string(),
        state,
        metric,
        exit_code,
    });
    Outcome {
        state,
        requested_state: finish.state,
        started: false,
        exit_code,
        signal: None,
        error: server_error.or(finish.error),
        stop_reason: None,
        metric,
        run,
        finish_error,
        duration,
        points_missing: 0,
        stderr_tail: String::new(),
    }
}

fn apply_env(
    cmd: &mut Command,
    client: &Client,
    run_id: &str,
    extra: &[(String, String)],
    opts: &SuperviseOptions,
) {
    let extra_has = |name: &str| extra.iter().rev().find(|(k, _)| k == name);
    if std::env::var_os("PYTHONUNBUFFERED").is_none() && extra_has("PYTHONUNBUFFERED").is_none() {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    for (key, value) in extra {
        cmd.env(key, value);
    }
    cmd.env("HYPERDIAL_SERVER", client.base_url());
    cmd.env("HYPERDIAL_RUN_ID", run_id);
    match &opts.sweep {
        Some(sweep) => cmd.env("HYPERDIAL_SWEEP_ID", sweep),
        None => cmd.env_remove("HYPERDIAL_SWEEP_ID"),
    };
    match &opts.config_file {
        Some(path) => cmd.env("HYPERDIAL_CONFIG", path),
        None => cmd.env_remove("HYPERDIAL_CONFIG"),
    };
    if let Some(token) = client.token() {
        cmd.env("HYPERDIAL_TOKEN", token);
    }
    if let Some(ca) = client.ca_cert() {
        cmd.env("HYPERDIAL_CA_CERT", ca);
    }
    match &opts.spill_dir {
        Some(dir) => cmd.env(SPILL_DIR_ENV, dir),
        None => cmd.env_remove(SPILL_DIR_ENV),
    };
    if opts.wandb_module.is_some() {
        // W&B's agent tells the process it starts which run and sweep it is in these; scripts
        // written for W&B read them (`os.environ.get("WANDB_SWEEP_ID")`: "am I in a sweep?").
        cmd.env("WANDB_RUN_ID", run_id);
        match &opts.sweep {
            Some(sweep) => cmd.env("WANDB_SWEEP_ID", sweep),
            None => cmd.env_remove("WANDB_SWEEP_ID"),
        };
    }
    let first: Vec<&PathBuf> = opts.wandb_module.iter().chain(&opts.python_path).collect();
    if !first.is_empty() {
        let existing: Option<OsString> = match extra_has("PYTHONPATH") {
            Some((_, v)) => Some(v.into()),
            None => std::env::var_os("PYTHONPATH"),
        };
        let mut value = OsString::new();
        for dir in first {
            if !value.is_empty() {
                value.push(":");
            }
            value.push(dir.as_os_str());
        }
        if let Some(existing) = existing.filter(|e| !e.is_empty()) {
            value.push(":");
            value.push(existing);
        }
        cmd.env("PYTHONPATH", value);
    }
}

/// React to a shutdown level: 2 → SIGTERM (then SIGKILL after the grace period), 3 → SIGKILL.
fn apply_level(
    level: u8,
    pgid: i32,
    grace: Duration,
    cause: &mut Option<StopCause>,
    kill_at: &mut Option<tokio::time::Instant>,
    killed: &mut bool,
) {
    if level < 2 {
        return;
    }
    if cause.is_none() {
        *cause = Some(StopCause::Shutdown);
    }
    if level >= 3 {
        if !*killed {
            let _ = signal_group(pgid, libc::SIGKILL);
            *killed = true;
        }
    } else {
        terminate(pgid, grace, kill_at);
    }
}

/// SIGTERM the group and set the SIGKILL deadline, once.
fn terminate(pgid: i32, grace: Duration, kill_at: &mut Option<tokio::time::Instant>) {
    if kill_at.is_none() {
        let _ = signal_group(pgid, libc::SIGTERM);
        *kill_at = Some(tokio::time::Instant::now() + grace);
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Wait for the output readers to reach end of file; give up (dropping the rest) when a
/// process outside the group still holds a pipe.
async fn drain_readers(readers: Vec<JoinHandle<()>>) {
    let deadline = tokio::time::Instant::now() + PIPE_DRAIN_TIMEOUT;
    for mut reader in readers {
        if tokio::time::timeout_at(deadline, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
            let _ = reader.await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exit status wording

fn exit_code_message(code: i32) -> String {
    match code {
        126 => "exit code 126 (the command was found but could not be executed)".to_string(),
        127 => "exit code 127 (command not found?)".to_string(),
        _ => format!("exit code {code}"),
    }
}

/// `killed by SIGKILL (out of memory?)`, `killed by SIGSEGV (segmentation fault, core dumped)`.
fn signal_message(sig: i32, core_dumped: bool) -> String {
    let mut notes: Vec<&str> = Vec::new();
    match sig {
        libc::SIGKILL => notes.push("out of memory?"),
        libc::SIGSEGV => notes.push("segmentation fault"),
        libc::SIGBUS => notes.push("bus error"),
        libc::SIGFPE => notes.push("arithmetic error"),
        libc::SIGABRT => notes.push("aborted"),
        libc::SIGILL => notes.push("illegal instruction"),
        _ => {}
    }
    if core_dumped {
        notes.push("core dumped");
    }
    let name = signal_name(sig);
    if notes.is_empty() {
        format!("killed by {name}")
    } else {
        format!("killed by {name} ({})", notes.join(", "))
    }
}

/// `SIGTERM` for 15, `signal 42` for one without a well-known name.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// An I/O error's message without the `(os error N)` suffix.
fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

// ---------------------------------------------------------------------------------------------
// Process groups

/// Send `sig` to process group `pgid`. Refuses the groups 0 and 1 (the caller's own group and
/// "every process").
fn signal_group(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal process group 0 or 1",
        ));
    }
    // SAFETY: killpg has no memory-safety preconditions.
    if unsafe { libc::killpg(pgid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether any process (zombies included) is still in group `pgid`.
fn group_exists(pgid: i32) -> bool {
    match signal_group(pgid, 0) {
        Ok(()) => true,
        Err(err) => err.raw_os_error() != Some(libc::ESRCH),
    }
}

/// Reap every exited child of this process that belongs to group `pgid` (orphans re-parented
/// to us as subreaper). The group's leader has been reaped by tokio already.
fn reap_group(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let rc = unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            break;
        }
    }
}

/// SIGKILL what is left of group `pgid` and wait until it is gone; `false` if it is still
/// there after [`GROUP_GONE_TIMEOUT`].
async fn kill_group(pgid: i32) -> bool {
    if pgid <= 1 {
        return true;
    }
    let _ = signal_group(pgid, libc::SIGKILL);
    let deadline = Instant::now() + GROUP_GONE_TIMEOUT;
    loop {
        reap_group(pgid);
        if !group_exists(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills the process group if [`supervise()`] is dropped before the process ended.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

/// Arm the parent-death signal (SIGKILL) of the process `cmd` starts (Linux; a no-op elsewhere).
/// If this process is already gone when the child arms it, the child exits at once.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let arm = move || -> io::Result<()> {
            // SAFETY: PR_SET_PDEATHSIG takes one integer argument; the rest are ignored.
            // prctl, getppid and _exit are async-signal-safe, as required between fork and exec.
            unsafe {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe calls and allocates nothing.
        unsafe {
            cmd.pre_exec(arm);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Make this process the reaper of its orphaned descendants (Linux), once.
fn ensure_subreaper() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument; the rest are ignored.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_SET_CHILD_SUBREAPER,
                    1 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if rc != 0 {
                tracing::debug!(
                    "could not become a child subreaper: {}",
                    io::Error::last_os_error()
                );
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Reading output

/// One line (or piece of a line) of output.
struct Chunk {
    stream: Stream,
    text: String,
    /// Bytes of an over-long line that were dropped.
    dropped: usize,
    metric: Option<Result<MetricPoint, String>>,
    time_ms: i64,
}

/// Read `out` segment by segment into `tx` until end of file.
async fn read_stream<R: AsyncRead + Unpin>(
    out: R,
    stream: Stream,
    tx: mpsc::UnboundedSender<Chunk>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, out);
    let mut buf = Vec::new();
    loop {
        match read_segment(&mut reader, &mut buf, MAX_LINE).await {
            Ok(Some(dropped)) => {
                let text = String::from_utf8_lossy(&buf).into_owned();
                let metric = if stream != Stream::Stdout {
                    None
                } else if dropped == 0 {
                    parse_metric_line(&text)
                } else if text.starts_with(PREFIX) {
                    Some(Err("the line is longer than 1 MiB".to_string()))
                } else {
                    None
                };
                let chunk = Chunk {
                    stream,
                    text,
                    dropped,
                    metric,
                    time_ms: crate::now_ms(),
                };
                if tx.send(chunk).is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::debug!("reading {stream}: {err}");
                break;
            }
        }
    }
}

/// Read up to and including the next `\n` or `\r` into `out` (replacing its content), keeping
/// at most `cap` bytes and discarding the rest of a longer segment. Returns the number of
/// discarded bytes, or `None` at end of file with nothing read.
pub(crate) async fn read_segment<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<usize>> {
    out.clear();
    let mut dropped = 0usize;
    let mut any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(any.then_some(dropped));
        }
        any = true;
        let (take, done) = match available.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let keep = take.min(cap.saturating_sub(out.len()));
        out.extend_from_slice(&available[..keep]);
        dropped += take - keep;
        reader.consume(take);
        if done {
            return Ok(Some(dropped));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Batching and sending

/// What is waiting in the sender's queue, to bound memory.
#[derive(Default)]
struct Pending {
    bytes: AtomicUsize,
    points: AtomicUsize,
}

/// One request's worth of data.
enum Batch {
    Output(Stream, String),
    Metrics(Vec<MetricPoint>),
}

/// Gathers chunks into batches.
struct Relay {
    run: String,
    batch_tx: mpsc::UnboundedSender<Batch>,
    pending: Arc<Pending>,
    events: mpsc::UnboundedSender<Event>,
    echo: bool,
    /// stdout, stderr.
    buffers: [String; 2],
    points: Vec<MetricPoint>,
    next_step: i64,
    dropped_bytes: usize,
    dropped_points: usize,
    /// Points dropped over the whole run because too many were waiting.
    total_dropped_points: u64,
    warnings: usize,
    /// The end of stderr, at most [`STDERR_TAIL_BYTES`].
    stderr_tail: String,
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Relay {
    /// Relay until the readers are done; returns the number of points dropped because too
    /// many were waiting, and the end of stderr.
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Chunk>,
        flush: Duration,
    ) -> (u64, String) {
        let mut tick = tokio::time::interval(flush.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(chunk) => self.accept(chunk),
                    None => break,
                },
                _ = tick.tick() => self.flush_all(),
            }
        }
        if self.dropped_bytes > 0 || self.dropped_points > 0 {
            let note = self.dropped_note();
            self.buffers[1].push_str(&note);
        }
        self.flush_all();
        (self.total_dropped_points, self.stderr_tail)
    }

    fn accept(&mut self, chunk: Chunk) {
        if self.echo {
            echo(chunk.stream, &chunk.text);
        }
        if chunk.stream == Stream::Stderr {
            keep_tail(&mut self.stderr_tail, &chunk.text, STDERR_TAIL_BYTES);
        }
        let mut text = chunk.text;
        if chunk.dropped > 0 {
            text.push_str(&format!(
                "\n[hyperdial agent] the line above was longer than 1 MiB; {} more bytes of it were dropped\n",
                chunk.dropped
            ));
        }
        match chunk.metric {
            Some(Ok(mut point)) => {
                point.time_ms = Some(chunk.time_ms);
                let step = point.step.unwrap_or(self.next_step);
                // The step travels with the point, so a batch sent twice is stored once.
                point.step = Some(step);
                self.next_step = step.saturating_add(1);
                let _ = self.events.send(Event::Metric {
                    run: self.run.clone(),
                    step,
                    values: point.values.clone(),
                });
                self.push_point(point);
            }
            Some(Err(reason)) => {
                if !text.ends_with('\n') && !text.ends_with('\r') {
                    text.push('\n');
                }
                text.push_str(&format!(
                    "[hyperdial agent] ignored the metric line above: {reason}\n"
                ));
                self.warnings += 1;
                if self.warnings <= MAX_LINE_WARNINGS {
                    let more = if self.warnings == MAX_LINE_WARNINGS {
                        " (further ones are only noted in the run's output)"
                    } else {
                        ""
                    };
                    let _ = self.events.send(Event::Message(format!(
                        "run {}: ignored a metric line: {reason}{more}",
                        self.run
                    )));
                }
            }
            None => {}
        }
        self.push_text(chunk.stream, text);
    }

    fn buffered(&self) -> usize {
        self.buffers[0].len() + self.buffers[1].len()
    }

    fn dropped_note(&mut self) -> String {
        let note = format!(
            "[hyperdial agent] the server did not keep up: {} bytes of output and {} metric points were dropped\n",
            self.dropped_bytes, self.dropped_points
        );
        self.dropped_bytes = 0;
        self.dropped_points = 0;
        note
    }

    fn push_text(&mut self, stream: Stream, text: String) {
        let waiting = self.pending.bytes.load(Ordering::Relaxed) + self.buffered();
        if waiting + text.len() > MAX_PENDING_OUTPUT {
            self.dropped_bytes += text.len();
            return;
        }
        let i = index(stream);
        if self.dropped_bytes > 0 || self.dropped_points > 0 {
            let note = self.dropped_note();
            self.buffers[i].push_str(&note);
        }
        self.buffers[i].push_str(&text);
        if self.buffers[i].len() >= OUTPUT_BATCH {
            self.flush_stream(stream);
        }
    }

    fn push_point(&mut self, point: MetricPoint) {
        let waiting = self.pending.points.load(Ordering::Relaxed) + self.points.len();
        if waiting >= MAX_PENDING_POINTS {
            self.dropped_points += 1;
            self.total_dropped_points += 1;
            return;
        }
        self.points.push(point);
        if self.points.len() >= METRICS_BATCH {
            self.flush_metrics();
        }
    }

    fn flush_stream(&mut self, stream: Stream) {
        let text = std::mem::take(&mut self.buffers[index(stream)]);
        if text.is_empty() {
            return;
        }
        self.pending.bytes.fetch_add(text.len(), Ordering::Relaxed);
        let _ = self.batch_tx.send(Batch::Output(stream, text));
    }

    fn flush_metrics(&mut self) {
        if self.points.is_empty() {
            return;
        }
        let points = std::mem::take(&mut self.points);
        self.pending
            .points
            .fetch_add(points.len(), Ordering::Relaxed);
        let _ = self.batch_tx.send(Batch::Metrics(points));
    }

    fn flush_all(&mut self) {
        self.flush_metrics();
        self.flush_stream(Stream::Stdout);
        self.flush_stream(Stream::Stderr);
    }
}

/// Append `text` to `tail`, then keep only its last `max` bytes (cut at a line start where
/// there is one, else at a character boundary).
fn keep_tail(tail: &mut String, text: &str, max: usize) {
    tail.push_str(text);
    if tail.len() <= max {
        return;
    }
    let mut cut = tail.len() - max;
    while !tail.is_char_boundary(cut) {
        cut += 1;
    }
    if let Some(nl) = tail[cut..].find('\n') {
        if nl + 1 < tail.len() - cut {
            cut += nl + 1;
        }
    }
    tail.drain(..cut);
}

fn echo(stream: Stream, text: &str) {
    let _ = match stream {
        Stream::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Stderr => io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// Merge consecutive batches of the same kind (and stream), within request size limits.
fn coalesce(batches: Vec<Batch>) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for batch in batches {
        match (out.last_mut(), batch) {
            (Some(Batch::Output(s, text)), Batch::Output(s2, more))
                if *s == s2 && text.len() + more.len() <= MAX_MERGED_OUTPUT =>
            {
                text.push_str(&more);
            }
            (Some(Batch::Metrics(points)), Batch::Metrics(more))
                if points.len() + more.len() <= MAX_MERGED_POINTS =>
            {
                points.extend(more);
            }
            (_, batch) => out.push(batch),
        }
    }
    out
}

/// What the sender could not deliver.
#[derive(Debug, Default)]
struct SendReport {
    /// Points written to the spill file.
    spilled: u64,
    /// Points lost: refused by the server for good, or no spill file could take them.
    dropped: u64,
    /// Whether the last request failed (the server is away).
    failing: bool,
    /// The server refused a request because it marked the run `crashed`: nothing more is
    /// sent, and nothing is missing (the run's retry is the attempt that counts).
    given_up: bool,
}

/// Post batches in order. Reports a stop request from a metrics answer on `stop_tx` (asking
/// a heartbeat for the reason when the answer has none).
///
/// A request is retried for the client's whole retry window. Once a request has failed that
/// long the server counts as away: later requests get one short attempt
/// ([`DEGRADED_RETRY_BUDGET`]) until one succeeds, and metric batches that fail go to `spill`
/// (output that fails is dropped, with a note in the messages).
async fn send_batches(
    client: Client,
    run: String,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    pending: Arc<Pending>,
    stop_tx: mpsc::UnboundedSender<Option<String>>,
    events: mpsc::UnboundedSender<Event>,
    spill: Option<(SpillFile, String)>,
) -> SendReport {
    // The spill file, and the options of the `hyperdial sync` that uploads it.
    let (spill, sync_options) = match spill {
        Some((file, sync)) => (Some(file), sync),
        None => (None, String::new()),
    };
    let budget = client.retry_budget().min(DEGRADED_RETRY_BUDGET);
    let degraded = client.clone().with_retry_budget(budget);
    let mut report = SendReport::default();
    let mut stop_sent = false;
    // Output lines of each stream (stdout, stderr) that could not be delivered since the last
    // output the server took.
    let mut undelivered = [0u64; 2];
    while let Some(first) = rx.recv().await {
        let mut queued = vec![first];
        while let Ok(more) = rx.try_recv() {
            queued.push(more);
        }
        for batch in coalesce(queued) {
            if report.given_up {
                if let Batch::Output(_, text) = &batch {
                    pending.bytes.fetch_sub(text.len(), Ordering::Relaxed);
                } else if let Batch::Metrics(points) = &batch {
                    pending.points.fetch_sub(points.len(), Ordering::Relaxed);
                }
                continue;
            }
            let http = if report.failing { &degraded } else { &client };
            let result: Result<Option<bool>, (ClientError, &str)> = match &batch {
                Batch::Output(stream, text) => {
                    let i = index(*stream);
                    // Where output was lost, the captured output says so, once the server
                    // takes output again.
                    let marked;
                    let body = if undelivered[i] > 0 {
                        marked = format!("{}{text}", undelivered_note(undelivered[i]));
                        marked.as_str()
                    } else {
                        text.as_str()
                    };
                    let r = http.post_output(&run, *stream, body).await;
                    pending.bytes.fetch_sub(text.len(), Ordering::Relaxed);
                    match r {
                        Ok(()) => {
                            undelivered[i] = 0;
                            Ok(None)
                        }
                        Err(e) => {
                            undelivered[i] += count_lines(text);
                            Err((e, "output"))
                        }
                    }
                }
                Batch::Metrics(points) => {
                    let r = http.post_metrics(&run, points).await;
                    pending.points.fetch_sub(points.len(), Ordering::Relaxed);
                    match r {
                        Ok(answer) if answer.stop && !stop_sent => {
                            stop_sent = true;
                            let reason = match answer.reason {
                                Some(reason) => Some(reason),
                                None => http.heartbeat(&run).await.ok().and_then(|h| h.reason),
                            };
                            let _ = stop_tx.send(reason);
                            Ok(Some(true))
                        }
                        Ok(_) => Ok(Some(false)),
                        Err(e) if e.is_run_crashed() => Err((e, "metrics")),
                        Err(e) => {
                            keep_undelivered(
                                &run,
                                points,
                                &e,
                                spill.as_ref(),
                                &mut report,
                                &events,
                            );
                            Err((e, "metrics"))
                        }
                    }
                }
            };
            match result {
                Ok(_) => {
                    if report.failing {
                        let _ = events.send(Event::Message(format!(
                            "run {run}: the server takes output and metrics again"
                        )));
                    }
                    report.failing = false;
                }
                Err((err, _)) if err.is_run_crashed() => {
                    report.given_up = true;
                    report.failing = false;
                    if !stop_sent {
                        stop_sent = true;
                        let _ = events.send(Event::Message(given_up_message(&run, &err)));
                        let _ = stop_tx.send(Some(GIVEN_UP.to_string()));
                    }
                }
                Err((err, what)) => {
                    // Said once when the failing starts (below) and once when it ends; every
                    // batch in between would repeat it every second or two.
                    tracing::debug!("run {run}: could not send {what}: {err}");
                    if !report.failing {
                        let _ = events.send(Event::Message(sending_failed_message(
                            &run,
                            what,
                            &err,
                            http.base_url(),
                            spill.as_ref().filter(|_| err.is_transient()),
                            &sync_options,
                        )));
                    }
                    report.failing = err.is_transient();
                }
            }
        }
    }
    // Lines lost at the end of the run: noted if the server answers now (one short try).
    for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
        if undelivered[i] > 0 && !report.given_up {
            let note = undelivered_note(undelivered[i]);
            if let Err(err) = degraded.post_output(&run, stream, &note).await {
                tracing::debug!("run {run}: could not note the output lost: {err}");
            }
        }
    }
    report
}

/// The line put in a run's captured output where `lines` lines of output were lost because
/// the server did not take them.
fn undelivered_note(lines: u64) -> String {
    let what = if lines == 1 {
        "1 output line was".to_string()
    } else {
        format!("{lines} output lines were")
    };
    format!("[hyperdial agent] {what} not delivered while the server was unreachable\n")
}

/// Lines in `text` (each ended by `\n` or `\r`, the last one possibly by nothing).
fn count_lines(text: &str) -> u64 {
    let ends = text.bytes().filter(|b| *b == b'\n' || *b == b'\r').count() as u64;
    let open = !text.is_empty() && !text.ends_with(['\n', '\r']);
    ends + u64::from(open)
}

/// What the agent says when sending a run's `what` (`metrics`, `output`) to the server at
/// `server` starts failing with `err`: the server (its URL, a password in it hidden),
/// where the metric points go meanwhile (`spill`, when the failure may pass) and how they
/// reach the run later (`hyperdial sync` with `sync_options`).
fn sending_failed_message(
    run: &str,
    what: &str,
    err: &ClientError,
    server: &str,
    spill: Option<&SpillFile>,
    sync_options: &str,
) -> String {
    let server = hyperdial_wire::redact_url(server);
    let fate = match spill {
        Some(file) => format!(
            "its metric points are kept in {} meanwhile; the agent uploads them when the run \
             ends if the server answers by then, else `hyperdial sync{sync_options}` uploads \
             them to the run once it does (new points go to the server again as soon as it \
             answers; output is dropped meanwhile, and the run's captured output says how \
             many lines)",
            file.label()
        ),
        None if err.is_transient() => {
            "its metric points and output are dropped until the server answers again".to_string()
        }
        None => "they are dropped".to_string(),
    };
    format!("run {run}: could not send {what} to the hyperdial server at {server} ({err}); {fate}")
}

/// A metrics batch could not be sent: write it to the spill file when the failure may pass
/// (or count it dropped when it cannot, or there is no spill file).
fn keep_undelivered(
    run: &str,
    points: &[MetricPoint],
    err: &ClientError,
    spill: Option<&SpillFile>,
    report: &mut SendReport,
    events: &mpsc::UnboundedSender<Event>,
) {
    let count = points.len() as u64;
    match spill.filter(|_| err.is_transient()) {
        Some(file) => match file.append(points) {
            Ok(()) => report.spilled += count,
            Err(e) => {
                report.dropped += count;
                let _ = events.send(Event::Message(format!(
                    "run {run}: {count} metric points are lost: cannot write the spill file: {e}"
                )));
            }
        },
        None => {
            report.dropped += count;
            if !err.is_transient() {
                let _ = events.send(Event::Message(format!(
                    "run {run}: the server refused {count} metric points: {err}"
                )));
            }
        }
    }
}

/// After the process ended and every batch was tried: upload the run's spill files (the
/// agent's and its Python client's) when the server answers again, then count the points that
/// still did not reach it (the files left, plus points dropped) and report them in the run's
/// delivery record, naming the files that `hyperdial sync` uploads. Returns the number of
/// points missing.
async fn settle_delivery(
    client: &Client,
    run: &str,
    opts: &SuperviseOptions,
    sent: &SendReport,
    overflowed: u64,
    events: &mpsc::UnboundedSender<Event>,
) -> u64 {
    if sent.given_up {
        return 0;
    }
    let mut missing = sent.dropped + overflowed;
    let mut files = Vec::new();
    if let Some(dir) = &opts.spill_dir {
        for left in upload_spilled(client, run, dir, false, events).await.left {
            if left.points() > 0 {
                missing += left.points();
                files.push(spill::label(left.path()));
            }
        }
    }
    if missing == 0 {
        return 0;
    }
    let where_ = if files.is_empty() {
        String::new()
    } else {
        format!(
            " (kept in {}; upload them with `hyperdial sync{}`)",
            files.join(", "),
            opts.sync_options
        )
    };
    let _ = events.send(Event::Message(format!(
        "run {run}: {missing} metric points did not reach the server{where_}"
    )));
    files.truncate(spill::MAX_REPORTED_FILES);
    if let Err(err) = client.post_delivery(run, missing, 0, &files).await {
        tracing::warn!("run {run}: could not report the missing points: {err}");
    }
    missing
}

/// Upload the spill files of `run` in `dir` whose points the server now takes (the outage
/// that filled them is over), each read once and marked synced once its points are stored;
/// a file that holds a `finish` record (the run's end, written while the server was away) is
/// uploaded only `with_end` (else left to `hyperdial sync` or [`deliver_kept_end`], which end
/// the run with it), and after the files without one. Says how many points arrived this way.
/// Returns the files left (the server still does not take them, or they hold the end), as
/// read, and how many points the server refused.
async fn upload_spilled(
    client: &Client,
    run: &str,
    dir: &std::path::Path,
    with_end: bool,
    events: &mpsc::UnboundedSender<Event>,
) -> SpillUploads {
    let (mut uploaded, mut refused) = (0, 0);
    let mut left = Vec::new();
    let mut files: Vec<spill::Spilled> = Vec::new();
    for path in spill::files_of_run(dir, run) {
        match spill::Spilled::read(&path) {
            Ok(file) => files.push(file),
            Err(err) => tracing::warn!("run {run}: {err}"),
        }
    }
    // The points first, the end last: the run's end is judged with all its points.
    files.sort_by_key(|f| f.finish().is_some());
    let mut away = false;
    for file in files {
        let ends_the_run = file.finish().is_some();
        if away || (ends_the_run && !with_end) || (!ends_the_run && file.points() == 0) {
            left.push(file);
            continue;
        }
        match file.upload(client, false).await {
            Ok(done) => {
                uploaded += done.points;
                refused += done.refused;
                if let Some(why) = done.why_refused {
                    let _ = events.send(Event::Message(format!(
                        "run {run}: the server refuses what was kept of it while it was away \
                         ({why}); its {} metric points stay in {}",
                        done.refused,
                        spill::label(&done.synced)
                    )));
                }
            }
            Err(err) => {
                tracing::debug!("run {run}: spilled points not uploaded yet: {err}");
                // The server is still away: the other files would fail the same way.
                away = true;
                left.push(file);
            }
        }
    }
    if uploaded > 0 {
        let _ = events.send(Event::Message(format!(
            "run {run}: {uploaded} metric points kept on disk while the server was away were uploaded to it"
        )));
    }
    SpillUploads { left, refused }
}

/// What [`upload_spilled`] did.
struct SpillUploads {
    /// The files left, as read.
    left: Vec<spill::Spilled>,
    /// Metric points the server refused (their files are marked synced).
    refused: u64,
}

/// The run's end could not be reported and is kept in its spill file in `dir`: wait up to
/// [`SuperviseOptions::end_wait`] for the server, retrying the upload of the run's spill
/// files (points first, the end last) with backoff, saying so. Any shutdown signal ends the
/// wait at once (the files stay). When the wait ends without the server, says which command
/// uploads the files later. Returns the run as the server has it once its end was delivered.
async fn deliver_kept_end(
    client: &Client,
    run: &str,
    dir: &std::path::Path,
    opts: &SuperviseOptions,
    events: &mpsc::UnboundedSender<Event>,
    shutdown: &watch::Receiver<u8>,
) -> Option<Value> {
    let mut shutdown = shutdown.clone();
    let stopping = *shutdown.borrow_and_update() >= 2;
    let sync = format!("hyperdial sync {}{}", dir.display(), opts.sync_options);
    let kept = || {
        spill::files_of_run(dir, run)
            .iter()
            .map(|p| spill::label(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if opts.end_wait.is_zero() || stopping {
        let _ = events.send(Event::Message(format!(
            "run {run}: its end is kept in {}; upload it with `{sync}`",
            kept()
        )));
        return None;
    }
    let _ = events.send(Event::Message(format!(
        "run {run}: the server does not answer; its end is kept in {}; waiting up to {} s for \
         the server to upload it (HYPERDIAL_END_WAIT; Ctrl-C stops waiting and keeps the file)",
        kept(),
        opts.end_wait.as_secs_f64()
    )));
    let quick = client.clone().with_retry_budget(END_WAIT_ATTEMPT);
    let deadline = tokio::time::Instant::now() + opts.end_wait;
    let mut pause = END_WAIT_FIRST_PAUSE;
    let mut open = true;
    loop {
        let done = upload_spilled(&quick, run, dir, true, events).await;
        if done.left.iter().all(|f| f.finish().is_none()) {
            if done.refused == 0 {
                let _ = events.send(Event::Message(format!(
                    "run {run}: the server answers again; its end was uploaded"
                )));
            }
            return quick.get_run(run).await.ok();
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        let nap = pause.min(deadline - now);
        pause = (pause * 2).min(END_WAIT_MAX_PAUSE);
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            changed = shutdown.changed(), if open => {
                open = changed.is_ok();
                if open && *shutdown.borrow_and_update() >= 2 {
                    let _ = events.send(Event::Message(format!(
                        "run {run}: stopped waiting for the server; its end stays in {}: upload \
                         it with `{sync}`",
                        kept()
                    )));
                    return None;
                }
            }
        }
    }
    let _ = events.send(Event::Message(format!(
        "run {run}: the server did not answer within {} s; its end stays in {}: upload it with \
         `{sync}` once the server is back",
        opts.end_wait.as_secs_f64(),
        kept()
    )));
    None
}

/// The stop reason of a run the server gave up on (it answered `409 run_crashed`).
const GIVEN_UP: &str = "crashed";

/// What the agent says when the server refuses a run's reports because it marked it crashed.
fn given_up_message(run: &str, err: &ClientError) -> String {
    let why = match err {
        ClientError::Status { message, .. } => message.as_str(),
        _ => "",
    };
    format!("run {run}: the server no longer takes its reports, stopping its process ({why})")
}

/// Heartbeat every `every` until the process has ended (the task is then aborted), or the
/// server has given the run up.
async fn heartbeats(
    client: Client,
    run: String,
    every: Duration,
    stop_tx: mpsc::UnboundedSender<Option<String>>,
    events: mpsc::UnboundedSender<Event>,
) {
    let every = every.max(Duration::from_millis(10));
    let mut failing = false;
    let mut stop_sent = false;
    loop {
        tokio::time::sleep(every).await;
        match client.heartbeat(&run).await {
            Ok(answer) => {
                if failing {
                    let _ = events.send(Event::Message(format!(
                        "run {run}: heartbeats get through again"
                    )));
                }
                failing = false;
                if answer.stop && !stop_sent {
                    stop_sent = true;
                    let _ = stop_tx.send(answer.reason);
                }
            }
            Err(err) if err.is_run_crashed() => {
                if !stop_sent {
                    let _ = events.send(Event::Message(given_up_message(&run, &err)));
                    let _ = stop_tx.send(Some(GIVEN_UP.to_string()));
                }
                return;
            }
            Err(err) => {
                if !failing {
                    let _ = events.send(Event::Message(format!(
                        "run {run}: heartbeat failed (the run goes on): {err}"
                    )));
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_spill_message_names_the_server_the_file_and_what_comes_next() {
        let dir = std::path::Path::new("/var/spool/runs");
        let file = SpillFile::new(dir, "r1", "agent", "http://h:8337");
        let err = ClientError::Unreachable {
            url: "http://h:8337".into(),
            message: "connection refused".into(),
            seconds: 60,
        };
        let said = sending_failed_message(
            "r1",
            "metrics",
            &err,
            "https://me:secret@h:8337",
            Some(&file),
            " --server http://h:8337",
        );
        assert!(
            said.starts_with(
                "run r1: could not send metrics to the hyperdial server at https://me:***@h:8337 ("
            ),
            "{said}"
        );
        assert!(!said.contains("secret"), "{said}");
        assert!(
            said.contains(&format!("kept in {} meanwhile", file.label())),
            "{said}"
        );
        assert!(
            said.contains("the agent uploads them when the run ends if the server answers by then, else `hyperdial sync --server http://h:8337` uploads them"),
            "{said}"
        );
        let said = sending_failed_message("r1", "output", &err, "http://h:8337", None, "");
        assert!(
            said.ends_with("dropped until the server answers again"),
            "{said}"
        );
    }

    #[test]
    fn lost_output_is_counted_in_lines_and_noted_in_one() {
        assert_eq!(count_lines(""), 0);
        assert_eq!(count_lines("a\nb\n"), 2);
        assert_eq!(count_lines("a\nb"), 2);
        assert_eq!(count_lines("progress 1\rprogress 2\r"), 2);
        assert_eq!(
            undelivered_note(37),
            "[hyperdial agent] 37 output lines were not delivered while the server was unreachable\n"
        );
        assert!(undelivered_note(1).starts_with("[hyperdial agent] 1 output line was not"));
    }

    #[test]
    fn keep_tail_keeps_whole_last_lines_within_the_limit() {
        let mut tail = String::new();
        keep_tail(&mut tail, "first line\n", 16);
        assert_eq!(tail, "first line\n");
        keep_tail(&mut tail, "second\nthird\n", 16);
        assert_eq!(tail, "second\nthird\n");
        keep_tail(&mut tail, "fourth\n", 16);
        assert_eq!(tail, "third\nfourth\n");
        // No line start in reach: cut at a character boundary.
        keep_tail(&mut tail, "ééééééééééé", 8);
        assert_eq!(tail, "éééé");
    }

    use super::*;

    async fn segments(input: &[u8], cap: usize) -> Vec<(Vec<u8>, usize)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(dropped) = read_segment(&mut reader, &mut buf, cap).await.unwrap() {
            out.push((buf.clone(), dropped));
        }
        out
    }

    #[tokio::test]
    async fn segments_split_at_newline_and_carriage_return() {
        let segs = segments(b"ab\ncd\r\nprogress 1\rprogress 2\rlast", 100).await;
        let texts: Vec<&[u8]> = segs.iter().map(|(t, _)| t.as_slice()).collect();
        assert_eq!(
            texts,
            [
                &b"ab\n"[..],
                b"cd\r",
                b"\n",
                b"progress 1\r",
                b"progress 2\r",
                b"last"
            ]
        );
        assert!(segs.iter().all(|(_, d)| *d == 0));
        assert!(segments(b"", 100).await.is_empty());
    }

    #[tokio::test]
    async fn long_segments_are_capped() {
        let mut input = vec![b'x'; 25];
        input.extend_from_slice(b"\nshort\n");
        let segs = segments(&input, 10).await;
        assert_eq!(segs[0], (vec![b'x'; 10], 16)); // 15 x's and the newline dropped
        assert_eq!(segs[1], (b"short\n".to_vec(), 0));
    }

    #[test]
    fn wording() {
        assert_eq!(exit_code_message(3), "exit code 3");
        assert_eq!(exit_code_message(127), "exit code 127 (command not found?)");
        assert_eq!(
            signal_message(libc::SIGKILL, false),
            "killed by SIGKILL (out of memory?)"
        );
        assert_eq!(
            signal_message(libc::SIGSEGV, true),
            "killed by SIGSEGV (segmentation fault, core dumped)"
        );
        assert_eq!(signal_message(libc::SIGTERM, false), "killed by SIGTERM");
        assert_eq!(signal_name(77), "signal 77");
        let err = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_message(&err), "No such file or directory");
    }

    #[test]
    fn refuses_to_signal_special_groups() {
        assert!(signal_group(0, 0).is_err());
        assert!(signal_group(1, 0).is_err());
        assert!(signal_group(-5, 0).is_err());
    }

    #[test]
    fn coalescing_keeps_order_and_limits() {
        let p = |n: usize| Batch::Metrics(vec![MetricPoint::default(); n]);
        let o = |s: Stream, t: &str| Batch::Output(s, t.to_string());
        let merged = coalesce(vec![
            o(Stream::Stdout, "a"),
            o(Stream::Stdout, "b"),
            o(Stream::Stderr, "c"),
            o(Stream::Stdout, "d"),
            p(3),
            p(4),
            p(MAX_MERGED_POINTS),
        ]);
        let shape: Vec<String> = merged
            .iter()
            .map(|b| match b {
                Batch::Output(s, t) => format!("{s}:{t}"),
                Batch::Metrics(p) => format!("m{}", p.len()),
            })
            .collect();
        assert_eq!(shape, ["stdout:ab", "stderr:c", "stdout:d", "m7", "m5000"]);
    }
}
