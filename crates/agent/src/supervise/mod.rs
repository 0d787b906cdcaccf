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
//!   not take (it is away for longer than the retry window, or refuses the token) is held,
//!   up to 1 MiB a stream, and goes ahead of the first output it takes again, so the captured
//!   output keeps its order; output held when the run ends is kept in the run's spill file
//!   and uploaded with its points. Lines beyond what is held are lost, and one line says how
//!   many where they were ("[hyperdial agent] 37 output lines were not delivered while the
//!   server was unreachable").
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
//!   by SIGKILL (out of memory?)", since the kernel's OOM killer is its usual sender), either
//!   followed by the stderr line that says why (`exit code 1; stderr ended: ValueError: bad
//!   lr`: a Python traceback's exception line, else the last line), so the run says why it
//!   failed without its output at hand; stopped on
//!   the server's request → `stopped_early` when the reason is `early_terminated`, `cancelled`
//!   otherwise; stopped by shutdown level 2 or 3 → `cancelled`; a program that cannot be started
//!   → `failed`, "cannot start `prog`: No such file or directory". A process that exits 0 after
//!   its script declared another exit code in the file [`EXIT_FILE_ENV`] names
//!   (`wandb.finish(exit_code=N)`) → `failed` with exit code N, as W&B records it. A process
//!   that failed (any of the `failed` ends above but a run time limit) after its script marked
//!   the run preempting in the file [`PREEMPT_FILE_ENV`] names (`mark_preempting()`, before a
//!   preemptible job's checkpoint and exit) → `cancelled`, "interrupted: …": the server queues
//!   it again as it does a run its agent's shutdown interrupted, as W&B requeues a preempted
//!   run. Exit code 0 is a finished run, preempting or not.
//! - **A run the server gave up on is let go.** When the server answers a heartbeat, metrics
//!   or output with `409 run_crashed` ([`ClientError::is_run_crashed`]: it marked the run
//!   `crashed` after the run timeout, e.g. while this agent's link was cut, and queued a retry
//!   elsewhere), the group is stopped as for a server stop (reason `crashed`), nothing more is
//!   sent or kept for `hyperdial sync`, and the refused `finish` ends the run here as
//!   `crashed`.
//! - **No panic** on a bad server answer or a misbehaving process; server errors become
//!   [`Event::Message`]s and the training goes on.
//!
//! Environment of the process: the agent's own, plus `extra` variables, plus `HYPERDIAL_SERVER`
//! (every server of the agent, comma-separated, the one in use first:
//! [`Client::base_urls_current_first`]), `HYPERDIAL_RUN_ID`, `HYPERDIAL_SWEEP_ID` (sweep runs; removed otherwise), `HYPERDIAL_CONFIG`
//! (when a config file is given; removed otherwise), `HYPERDIAL_TOKEN` (when the client has a
//! token), `HYPERDIAL_CA_CERT` (when the client trusts a CA file, [`Client::ca_cert`]),
//! `HYPERDIAL_SPILL_DIR`, [`EXIT_FILE_ENV`] and [`PREEMPT_FILE_ENV`] (with a spill directory), `PYTHONPATH` prefixed with [`SuperviseOptions::wandb_module`] (when set) and
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
    /// (` --server URL`), so it uploads them where the run reports; default empty. Every
    /// message names the one command [`sync_command`] writes.
    pub sync_options: String,
    /// How long to wait for the server, once the run's end could not be reported and is kept
    /// in the spill file, retrying its upload with backoff before giving up and leaving the
    /// file to `hyperdial sync` (default [`end_wait_from_env`]: [`END_WAIT`], or
    /// `HYPERDIAL_END_WAIT`). Zero: no wait.
    pub end_wait: Duration,
    /// Longest the process may run (the sweep's `run_time_limit`): then it is stopped as for
    /// a server's stop (SIGTERM, SIGKILL after `grace`) and the run ends `failed`, saying so.
    /// `None`: no limit.
    pub time_limit: Option<Duration>,
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
            time_limit: None,
        }
    }
}

/// Whether the server took a run's end (its `finish`), and why not.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum EndReport {
    /// The server took it, or had ended the run itself (a late finish it refused: nothing to
    /// keep).
    #[default]
    Taken,
    /// The server did not answer, or failed (the error): the end is kept in the spill file, and
    /// the agent waits for the server ([`SuperviseOptions::end_wait`]) before leaving it to
    /// `hyperdial sync`.
    Unreachable(String),
    /// The server refused the agent's token (`401`, `403`; the error): the end is kept in
    /// the spill file for `hyperdial sync` with a token the server accepts. No wait: the
    /// server answers, and a retry with the same token cannot help.
    TokenRefused(String),
    /// The server does not know the run (`404`; the error): it answers from another database
    /// than the run's ([`ClientError::is_unknown`]). The end is kept in the spill file for
    /// `hyperdial sync` to the server that has the run. No wait: this server answers, and
    /// will not learn the run.
    UnknownRun(String),
}

impl EndReport {
    /// Whether the server took the end.
    pub fn is_taken(&self) -> bool {
        matches!(self, EndReport::Taken)
    }

    /// Why the finish request failed, if it did.
    pub fn error(&self) -> Option<&str> {
        match self {
            EndReport::Taken => None,
            EndReport::Unreachable(e) | EndReport::TokenRefused(e) | EndReport::UnknownRun(e) => {
                Some(e)
            }
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
    /// (`exit code 3; stderr ended: ValueError: bad lr`, `killed by SIGKILL (out of
    /// memory?)`, ...).
    pub error: Option<String>,
    /// The agent's words for how the process ended badly (`exit code 3`, `killed by SIGSEGV
    /// (segmentation fault)`), without the last stderr line the run's error adds; `None` for
    /// exit code 0, a stop the agent asked for, and a process that never started.
    pub process_error: Option<String>,
    /// Why the agent stopped the process: the server's stop reason (`early_terminated`,
    /// `cancelled`, ...), `stop` when it gave none, or `shutdown`.
    pub stop_reason: Option<String>,
    /// The run's sweep metric (`metric` of the finished Run), if any.
    pub metric: Option<f64>,
    /// The Run object the server returned from `finish`.
    pub run: Option<Value>,
    /// Whether the server took the run's end, and why not.
    pub end: EndReport,
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
    /// It ran for [`SuperviseOptions::time_limit`].
    TimeLimit(Duration),
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
    if let Some(dir) = &opts.spill_dir {
        // A declared exit code left by an earlier attempt of this run is not this process's.
        let _ = std::fs::remove_file(exit_file(dir, run_id));
    }
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
    let limit_at = opts
        .time_limit
        .map(|limit| tokio::time::Instant::now() + limit);
    let status: io::Result<ExitStatus> = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = sleep_until_opt(limit_at), if limit_at.is_some() && cause.is_none() => {
                let limit = opts.time_limit.unwrap_or_default();
                tracing::info!("run {run_id}: still running after run_time_limit {limit:?}; stopping it");
                cause = Some(StopCause::TimeLimit(limit));
                terminate(pgid, opts.grace, &mut kill_at);
            }
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
    // The wall-clock time the process ended, sent with `finish` so that a finish delivered
    // late (after an outage, or by `hyperdial sync`) does not stretch the run.
    let ended_ms = crate::now_ms();
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
    let (points_missing, files_left) =
        settle_delivery(client, run_id, opts, &sent, overflowed, events).await;

    let (exit_code, signal, core) = match &status {
        Ok(s) => (s.code(), s.signal(), s.core_dumped()),
        Err(_) => (None, None, false),
    };
    // What the script said its exit code was (`wandb.finish(exit_code=1)`), when its process
    // exited 0 by itself: W&B marks such a run failed, and so does this.
    let declared = opts
        .spill_dir
        .as_deref()
        .and_then(|dir| take_declared_exit(dir, run_id))
        .filter(|_| cause.is_none() && exit_code == Some(0));
    let exit_code = declared.or(exit_code);
    let preempting = opts
        .spill_dir
        .as_deref()
        .is_some_and(|dir| take_preempting(dir, run_id));
    let stop_reason = match &cause {
        Some(StopCause::Server(reason)) => Some(reason.clone().unwrap_or_else(|| "stop".into())),
        Some(StopCause::Shutdown) => Some("shutdown".to_string()),
        Some(StopCause::TimeLimit(_)) => Some("run_time_limit".to_string()),
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
        (Some(StopCause::TimeLimit(limit)), _) => (
            Some(RunState::Failed),
            Some(format!(
                "still running after the sweep's run_time_limit ({}): stopped",
                hyperdial_space::budget::seconds_text(limit.as_secs_f64())
            )),
        ),
        (None, Err(err)) => (
            Some(RunState::Failed),
            Some(format!("lost track of the process: {err}")),
        ),
        (None, Ok(_)) => match (exit_code, signal) {
            (Some(code), _) if declared.is_some() => (
                Some(RunState::Failed),
                Some(format!(
                    "the script ended the run with exit code {code} (`wandb.finish(exit_code={code})`); \
                     its process exited 0"
                )),
            ),
            (Some(0), _) => (None, None),
            (Some(code), _) => (Some(RunState::Failed), Some(exit_code_message(code))),
            (None, Some(sig)) => (Some(RunState::Failed), Some(signal_message(sig, core))),
            (None, None) => (
                Some(RunState::Failed),
                Some("ended without an exit status".into()),
            ),
        },
    };
    // A process that failed after its script marked the run preempting: interrupted, queued
    // again by the server (W&B requeues a preempted run), not a failure of the configuration.
    let (requested_state, error) = match (preempting, &cause, requested_state, error) {
        (true, None, Some(RunState::Failed), Some(how)) => {
            // A preempted job's SIGKILL comes from its scheduler: no out-of-memory guess.
            let how = match signal {
                Some(libc::SIGKILL) => format!("killed by {}", signal_name(libc::SIGKILL)),
                _ => how,
            };
            (
                Some(RunState::Cancelled),
                Some(format!(
                    "interrupted: the script marked the run preempting (`mark_preempting()`), \
                     then its process ended ({how})"
                )),
            )
        }
        (_, _, state, error) => (state, error),
    };
    // A process that failed on its own: its last stderr line (a Python exception's, say) goes
    // into the run's error, so `hyperdial runs` and the dashboard say why without the output.
    let process_error = match (&cause, &status) {
        (None, Ok(_)) if declared.is_none() => error.clone(),
        _ => None,
    };
    let error = match (&process_error, last_stderr_line(&stderr_tail)) {
        (Some(how), Some(line)) => Some(format!("{how}; stderr ended: {line}")),
        _ => error,
    };
    let finish = Finish {
        exit_code,
        state: requested_state,
        error,
        ended_ms: Some(ended_ms),
        ..Finish::default()
    };
    let mut outcome = finish_run(client, run_id, finish.clone(), events, duration).await;
    outcome.points_missing = points_missing;
    outcome.stderr_tail = stderr_tail;
    outcome.process_error = process_error;
    if outcome.end.is_taken() && files_left {
        if let Some(dir) = &opts.spill_dir {
            // The server came back while the end was being sent: what the outage left on disk
            // (output held at the end, points, config) goes up now, not at `hyperdial sync`.
            let late = upload_spilled(client, run_id, dir, false, events).await;
            outcome.points_missing = outcome.points_missing.saturating_sub(late.uploaded);
        }
    }
    hurry.abort();
    if !outcome.end.is_taken() {
        // The server is away, or refused the token: `hyperdial sync` ends the run later from
        // the spill file.
        if let Some(dir) = &opts.spill_dir {
            let file = SpillFile::new(dir, run_id, "agent", client.base_url());
            match file.append_finish(&finish) {
                Ok(()) if matches!(outcome.end, EndReport::TokenRefused(_)) => {
                    // The server answers: waiting for it cannot help, a token it accepts does.
                    let _ = events.send(Event::Message(format!(
                        "run {run_id}: its end is kept in {}; set HYPERDIAL_TOKEN (or --token) \
                         to a token the server accepts, then upload it with `{}`",
                        file.label(),
                        sync_command(Some(dir), &opts.sync_options)
                    )));
                }
                Ok(()) if matches!(outcome.end, EndReport::UnknownRun(_)) => {
                    let _ = events.send(Event::Message(unknown_run_message(
                        run_id,
                        client.base_url(),
                        &file.label(),
                        &sync_command(Some(dir), &opts.sync_options),
                    )));
                }
                Ok(()) => {
                    if let Some(run) =
                        deliver_kept_end(client, run_id, dir, opts, events, &shutdown).await
                    {
                        outcome.end = EndReport::Taken;
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

/// What the agent says when the server does not know a run it ran (`404`): the likely cause
/// (a server on another database), where the run's data is kept, and the command that
/// uploads it to the server that has the run.
pub(super) fn unknown_run_message(run: &str, server: &str, kept: &str, sync: &str) -> String {
    format!(
        "run {run}: the hyperdial server at {} does not know this run: {}; its end and unsent \
         data are kept in {kept}: once the server with the run's database answers, upload them \
         with `{sync}`",
        hyperdial_wire::redact_url(server),
        crate::client::UNKNOWN_RUN_CAUSE
    )
}

/// Most characters of the stderr line a failed run's error quotes.
const ERROR_LINE_CHARS: usize = 300;

/// The line of a run's stderr worth quoting in its error, at most [`ERROR_LINE_CHARS`]
/// characters (cut with `…`): after a Python traceback (the last `Traceback (most recent call
/// last):` in the tail), its exception line, the first line below it that is not indented
/// (frames and source lines are), even when an exit handler wrote more after it; else the
/// last line that is not blank nor one of hyperdial's own notes (`[hyperdial] …`,
/// `[hyperdial agent] …`). `None` when there is none.
fn last_stderr_line(tail: &str) -> Option<String> {
    let exception = tail
        .rfind("Traceback (most recent call last):")
        .and_then(|at| {
            tail[at..]
                .lines()
                .skip(1)
                .find(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
        })
        .map(str::trim);
    let line = exception.or_else(|| {
        tail.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("[hyperdial"))
    })?;
    Some(match line.char_indices().nth(ERROR_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    })
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
        ended_ms: Some(crate::now_ms()),
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
    let (run, end) = match client.finish(run_id, &finish).await {
        Ok(run) => (Some(run), EndReport::Taken),
        Err(err) if err.is_run_crashed() => {
            // Late: the server ended the run itself and runs a retry; nothing to keep.
            given_up = true;
            tracing::info!("run {run_id}: the server refused its late finish: {err}");
            (None, EndReport::Taken)
        }
        Err(err) if err.is_auth() => {
            let _ = events.send(Event::Message(format!(
                "run {run_id}: the server refused this agent's token when told how the run \
                 ended ({err})"
            )));
            (None, EndReport::TokenRefused(err.to_string()))
        }
        Err(err) if err.is_unknown() => {
            let _ = events.send(Event::Message(format!(
                "run {run_id}: the server does not know this run when told how it ended ({err})"
            )));
            (None, EndReport::UnknownRun(err.to_string()))
        }
        Err(err) => {
            let _ = events.send(Event::Message(format!(
                "run {run_id}: could not report how it ended: {err}"
            )));
            (None, EndReport::Unreachable(err.to_string()))
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
    let exit_code = finish.exit_code;
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
    let error = server_error.or(finish.error);
    let _ = events.send(Event::Finished {
        run: run_id.to_string(),
        state,
        metric,
        exit_code,
        error: error.clone(),
    });
    Outcome {
        state,
        requested_state: finish.state,
        started: false,
        exit_code,
        signal: None,
        error,
        stop_reason: None,
        metric,
        run,
        end,
        duration,
        points_missing: 0,
        stderr_tail: String::new(),
        process_error: None,
    }
}

/// The environment variable naming the file where a run's script may declare its exit code
/// (the Python client's `wandb.finish(exit_code=N)` writes `N` there): a process that then
/// exits 0 ends the run `failed` with that code, as W&B records it.
pub const EXIT_FILE_ENV: &str = "HYPERDIAL_EXIT_FILE";

/// The environment variable naming the file whose existence says the run's script marked the
/// run preempting (the Python client's `mark_preempting()` creates it): a process that then
/// fails ends the run `cancelled`, interrupted, and the server queues it again.
pub const PREEMPT_FILE_ENV: &str = "HYPERDIAL_PREEMPT_FILE";

/// Where run `run_id`'s preempting mark goes: `<spill dir>/<run>.preempting`.
fn preempt_file(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.preempting"))
}

/// Whether run `run_id`'s script marked it preempting (see [`PREEMPT_FILE_ENV`]), removing the
/// mark.
fn take_preempting(dir: &Path, run_id: &str) -> bool {
    std::fs::remove_file(preempt_file(dir, run_id)).is_ok()
}

/// Where run `run_id`'s declared exit code goes: `<spill dir>/<run>.exit`.
fn exit_file(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.exit"))
}

/// The non-zero exit code run `run_id`'s script declared (see [`EXIT_FILE_ENV`]), removing
/// the file; `None` when there is none or it holds no such integer.
fn take_declared_exit(dir: &Path, run_id: &str) -> Option<i32> {
    let path = exit_file(dir, run_id);
    let text = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    text.trim().parse::<i32>().ok().filter(|&code| code != 0)
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
    cmd.env("HYPERDIAL_SERVER", client.base_urls_current_first());
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
        Some(dir) => {
            cmd.env(SPILL_DIR_ENV, dir);
            cmd.env(PREEMPT_FILE_ENV, preempt_file(dir, run_id));
            cmd.env(EXIT_FILE_ENV, exit_file(dir, run_id))
        }
        None => {
            cmd.env_remove(SPILL_DIR_ENV);
            cmd.env_remove(PREEMPT_FILE_ENV);
            cmd.env_remove(EXIT_FILE_ENV)
        }
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

mod delivery;
mod group;
mod output;
mod relay;

use delivery::*;
use group::*;
use output::*;
use relay::*;

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

/// The `hyperdial sync` command that uploads the spill files of `dir` (the agent's spill
/// directory) with `options` ([`SuperviseOptions::sync_options`]): the one command every
/// message of the agent names, so a user copies the same line whichever message they read.
pub fn sync_command(dir: Option<&Path>, options: &str) -> String {
    match dir {
        Some(dir) => format!("hyperdial sync {}{options}", dir.display()),
        None => format!("hyperdial sync{options}"),
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
            said.contains("the agent uploads them when the run ends if the server answers by then, else `hyperdial sync /var/spool/runs --server http://h:8337` uploads them"),
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
    fn output_is_held_up_to_its_cap_and_the_lines_beyond_are_counted() {
        let mut held = String::new();
        assert_eq!(hold_output(&mut held, "a\nb\n", 8), 0);
        assert_eq!(hold_output(&mut held, "cc\n", 8), 0);
        assert_eq!(held, "a\nb\ncc\n");
        // Past the cap: nothing more is held, and its lines are counted.
        assert_eq!(hold_output(&mut held, "d\ne\n", 8), 2);
        assert_eq!(held, "a\nb\ncc\n");
        // Both streams' held output and a batch fit in one request.
        const { assert!(2 * HELD_OUTPUT_BYTES < crate::client::MAX_REQUEST_BYTES / 2) };
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
    fn the_error_quotes_the_last_stderr_line_that_is_the_scripts_own() {
        let traceback = "Traceback (most recent call last):\n  File \"t.py\", line 3\n\
                         ValueError: bad lr\n\n";
        assert_eq!(
            last_stderr_line(traceback).as_deref(),
            Some("ValueError: bad lr")
        );
        // hyperdial's own notes are not the script's error.
        let noted = "RuntimeError: CUDA out of memory\n[hyperdial] 3 metric points kept\n";
        assert_eq!(
            last_stderr_line(noted).as_deref(),
            Some("RuntimeError: CUDA out of memory")
        );
        assert_eq!(last_stderr_line("\n  \n[hyperdial agent] x\n"), None);
        // An exit handler's line after the traceback is not the error; of chained tracebacks
        // the last one's exception is.
        let chained = "Traceback (most recent call last):\n  File \"t.py\", line 2\n\
                       KeyError: 'lr'\n\nDuring handling of the above exception, another \
                       exception occurred:\n\nTraceback (most recent call last):\n  File \
                       \"t.py\", line 4, in <module>\n    raise RuntimeError(\"boom\")\n\
                       RuntimeError: boom\ncleanup done\n";
        assert_eq!(
            last_stderr_line(chained).as_deref(),
            Some("RuntimeError: boom")
        );
        let long = "é".repeat(ERROR_LINE_CHARS + 5);
        let cut = last_stderr_line(&long).unwrap();
        assert_eq!(cut.chars().count(), ERROR_LINE_CHARS + 1);
        assert!(cut.ends_with('…'));
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
