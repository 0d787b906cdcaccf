//! The sweep agent loop: register, then claim a run, start it, report how it ended, repeat.
//!
//! [`run_agent`] is `hyperdial agent SWEEP`; `hyperdial tune` runs several of them in one
//! process (sharing a state directory is safe). It stops when
//!
//! - it has run [`AgentOptions::count`] runs,
//! - the server says the sweep is over (`410`),
//! - the shutdown level reaches 1 (the current run is finished first; level 2 and 3 end it
//!   early, see [`crate::supervise`](mod@crate::supervise)),
//! - three runs in a row failed within a minute of starting ([`AgentError::CrashLoop`]): a
//!   broken training command would otherwise burn through the whole sweep in seconds, every
//!   run marked failed and imputed as the worst value. How many is [`CrashGuard`]'s to say
//!   (`HYPERDIAL_MAX_FAILURES`, or W&B's `WANDB_AGENT_MAX_INITIAL_FAILURES`; 0 never stops).
//!
//! # Waiting for a run
//!
//! When nothing can start now (the sweep is paused, or its last runs are in flight on other
//! agents), the agent does not poll: its claim asks the server to hold it open for up to
//! [`AgentOptions::claim_wait`] (`wait_ms`, a long poll), and the server answers the moment a
//! run can start or the sweep is over, so the agent exits when the sweep's last run ends. A
//! wait that runs out is asked again at once. A server that ignores `wait_ms` (older than
//! the long poll) answers `204` at once, without the header that says it waited; then the
//! agent asks again every [`AgentOptions::poll`], as it always did.
//!
//! Which failures count for the crash-loop guard: those of the process itself (non-zero exit,
//! killed by a signal, could not start) and of the command template (e.g. an unset
//! `${envvar:…}`). A run that exited 0 but that the server marks `failed` (its sweep metric is
//! NaN: the configuration diverged) is a legitimate search result, not a broken command: it
//! does not count, and resets the streak.
//!
//! # Building the command
//!
//! The sweep's configuration is read from the Sweep's `source` (the file's text) and validated
//! again with [`hyperdial_space::parse_str`], so the agent expands exactly the file the user
//! wrote. For every claimed run the argv is [`command::expand`] of the sweep's `command` (or
//! [`command::DEFAULT_COMMAND`]) with one [`command::Arg`] per parameter of the file, in file
//! order, valued from the run's flat `params`. The nested config
//! ([`command::args_json`]) is written to `<state_dir>/runs/<run>/config.json` (exported as
//! `HYPERDIAL_CONFIG`) and to `args.json` beside it (the `${args_json_file}` macro), before the
//! process starts. A run queued with a seed (a repeat, `hyperdial repeat`) gets it in
//! [`SEED_ENV`] (`HYPERDIAL_SEED`) as well; other runs leave that variable as the agent has it.
//! A retry gets the run of the attempt it repeats in [`RETRY_OF_ENV`] (`HYPERDIAL_RETRY_OF`)
//! and its attempt number in [`ATTEMPT_ENV`] (`HYPERDIAL_ATTEMPT`), so its script can resume
//! from that attempt's checkpoint. A template that cannot be expanded fails that run with the reason; the
//! agent goes on.
//!
//! Each run also records the git commit (and whether tracked files were changed) of the
//! directory it runs in, when that is a git work tree ([`crate::git_state`], read afresh for
//! every run), as W&B records it. With [`AgentOptions::wandb`] or `wandb: true` in the sweep
//! file, the `wandb`-compatible module ([`crate::install_wandb_module`]) comes first on the
//! run's `PYTHONPATH`, and the run gets what W&B's agent gives its runs: the sweep's project
//! in [`WANDB_PROJECT_ENV`], and its parameters in W&B's YAML file
//! ([`command::sweep_param_yaml`], `<state_dir>/runs/<run>/config-<run>.yaml`) named in
//! [`WANDB_SWEEP_PARAM_PATH_ENV`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyperdial_space::command;
use hyperdial_space::SweepConfig;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use crate::client::{Claim, Client, ClientError};
use crate::supervise::{self, Outcome, SuperviseOptions};
use hyperdial_wire::{RunState, SweepState};

/// How many failed runs in a row stop the agent by default ([`CrashGuard`]).
pub const CRASH_LOOP_RUNS: u32 = 3;

/// The variable that sets [`CrashGuard::runs`] (`0`: the agent never stops for failures).
pub const MAX_FAILURES_ENV: &str = "HYPERDIAL_MAX_FAILURES";

/// W&B's agent variable for the same count, read when [`MAX_FAILURES_ENV`] is not set, so a
/// job script written for `wandb agent` keeps the count it chose.
pub const WANDB_MAX_FAILURES_ENV: &str = "WANDB_AGENT_MAX_INITIAL_FAILURES";

/// W&B's agent variable that turns off its check of failures soon after the agent started;
/// `true` here makes [`CrashGuard::at_start_only`] (W&B's other check, of failures in a row
/// at the start, is what remains there too).
pub const WANDB_DISABLE_FLAPPING_ENV: &str = "WANDB_AGENT_DISABLE_FLAPPING";

/// When an agent gives up on a training command that keeps failing (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashGuard {
    /// Failed runs in a row, each within [`CRASH_LOOP_WINDOW`] of its start, that stop the
    /// agent; `0`: never (default [`CRASH_LOOP_RUNS`]).
    pub runs: u32,
    /// Count only the failures before the agent's first run that did not fail: once the
    /// command has worked, the agent goes on whatever follows (default off).
    pub at_start_only: bool,
    /// The variable that set [`CrashGuard::runs`], named by the error that stops the agent
    /// (default [`MAX_FAILURES_ENV`], the one to set).
    pub set_by: &'static str,
}

impl Default for CrashGuard {
    fn default() -> Self {
        CrashGuard {
            runs: CRASH_LOOP_RUNS,
            at_start_only: false,
            set_by: MAX_FAILURES_ENV,
        }
    }
}

impl CrashGuard {
    /// The guard the environment sets: [`MAX_FAILURES_ENV`], else [`WANDB_MAX_FAILURES_ENV`]
    /// (a whole number; `0` never stops), else [`CRASH_LOOP_RUNS`]; [`CrashGuard::at_start_only`]
    /// when [`WANDB_DISABLE_FLAPPING_ENV`] is `true`.
    ///
    /// # Errors
    /// A value that is not a whole number from 0 to 1,000,000, naming the variable.
    pub fn from_env() -> Result<CrashGuard, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`CrashGuard::from_env`] with the variables read by `var`.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<CrashGuard, String> {
        let mut guard = CrashGuard::default();
        for name in [MAX_FAILURES_ENV, WANDB_MAX_FAILURES_ENV] {
            if let Some(text) = var(name) {
                guard.runs = text
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 1_000_000)
                    .ok_or_else(|| {
                        format!(
                            "{name}={text:?} is not a number of failed runs in a row \
                             (a whole number; 0: never stop)"
                        )
                    })?;
                guard.set_by = name;
                break;
            }
        }
        guard.at_start_only =
            var(WANDB_DISABLE_FLAPPING_ENV).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(guard)
    }
}

/// A failed run counts for the crash-loop guard when it ended within this time of its start.
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(60);

/// How long an agent lets the server hold a claim open (its long poll) by default: 20 s, below
/// the server's cap (30 s) and the idle limits of common proxies.
pub const CLAIM_WAIT: Duration = Duration::from_secs(20);

/// How long a claim is held open by the server before the agent says it waits
/// ([`Event::Waiting`]): the server holds a claim only while nothing can start (a paused
/// sweep, its last runs in flight elsewhere), so a user reading the log learns of the wait
/// in seconds, not when the server's wait of [`CLAIM_WAIT`] ends.
const WAIT_NOTICE: Duration = Duration::from_secs(3);

/// Settings of [`run_agent`].
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8337`; several servers of one
    /// PostgreSQL database separated by commas, used in turn when one cannot be reached
    /// ([`Client::new`]).
    pub server: String,
    /// The API token, sent as `Authorization: Bearer TOKEN` and given to runs as
    /// `HYPERDIAL_TOKEN`.
    pub token: Option<String>,
    /// A PEM file of CA certificates to trust for an `https://` server (a private CA, or the
    /// server's self-signed certificate), given to runs as `HYPERDIAL_CA_CERT`; `None`: the
    /// built-in roots only.
    pub ca_cert: Option<PathBuf>,
    /// The sweep's id.
    pub sweep: String,
    /// Stop after this many runs (counting failed ones); `None`: until the sweep is over.
    pub count: Option<u64>,
    /// The working directory of every run.
    pub cwd: PathBuf,
    /// Where the agent keeps its files: `runs/<run>/config.json` and `args.json`, and
    /// `python/hyperdial/` (the Python client put on `PYTHONPATH`). A relative path is taken
    /// from the agent's current directory.
    pub state_dir: PathBuf,
    /// Time between heartbeats (default 2 s).
    pub heartbeat: Duration,
    /// Time between SIGTERM and SIGKILL when a run must stop (default 10 s).
    pub grace: Duration,
    /// Wait before asking again when no run can start now and the server answered at once
    /// (`204` without a long poll: a server that does not know `wait_ms`; default 1 s).
    pub poll: Duration,
    /// Long poll: how long the server may hold a claim open waiting for a run to start or
    /// the sweep to end ([`Client::claim_waiting`]; default [`CLAIM_WAIT`], `0` turns it off
    /// and the agent polls every [`AgentOptions::poll`]).
    pub claim_wait: Duration,
    /// Copy every run's output to the agent's own standard output and error (default off).
    pub echo: bool,
    /// Start every run under this reaper executable ([`SuperviseOptions::reaper`]; default
    /// `None`).
    pub reaper: Option<PathBuf>,
    /// Put the `wandb`-compatible module first on every run's `PYTHONPATH` (`--wandb`), so
    /// scripts written for W&B run unchanged; a sweep file with `wandb: true` asks for it too
    /// (default off).
    pub wandb: bool,
    /// Options repeated in the commands the agent suggests, so they reach what it reports to
    /// (default: none, the commands as they are).
    pub hints: Hints,
    /// How long to wait for a server that does not answer when a run has ended and its end
    /// is kept on disk, retrying the upload before leaving it to `hyperdial sync`
    /// ([`SuperviseOptions::end_wait`]; default [`supervise::end_wait_from_env`]).
    pub end_wait: Duration,
    /// When the agent stops because its runs keep failing (default: [`CrashGuard::default`];
    /// the commands set it from the environment with [`CrashGuard::from_env`]).
    pub crash_guard: CrashGuard,
}

/// Options of the `hyperdial` commands an agent suggests, each string empty or options with a
/// leading space (` --server URL`, ` --db PATH`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// For `hyperdial runs` and `hyperdial output` (after a crash loop).
    pub read: String,
    /// For `hyperdial sync` (metric points kept on disk).
    pub sync: String,
}

impl AgentOptions {
    /// Options for `server` and `sweep` with the defaults: no token, no count, runs start in
    /// the current directory, state in `.hyperdial`, heartbeat 2 s, grace 10 s, poll 1 s,
    /// claim wait [`CLAIM_WAIT`].
    pub fn new(server: impl Into<String>, sweep: impl Into<String>) -> AgentOptions {
        AgentOptions {
            server: server.into(),
            token: None,
            ca_cert: None,
            sweep: sweep.into(),
            count: None,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            state_dir: PathBuf::from(".hyperdial"),
            heartbeat: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            claim_wait: CLAIM_WAIT,
            echo: false,
            reaper: None,
            wandb: false,
            hints: Hints::default(),
            end_wait: supervise::end_wait_from_env(),
            crash_guard: CrashGuard::default(),
        }
    }
}

/// Progress of an agent (and of [`supervise::supervise`]), for the CLI's display.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A run was handed to this agent and is about to start.
    Claimed {
        /// The run's id.
        run: String,
        /// The run's number within its sweep.
        number: i64,
        /// The run's flat parameters (`{"lr": 0.01, "optimizer.kind": "adam"}`).
        params: Value,
        /// The id of the run this one retries (a failed or crashed attempt), if it is a retry.
        retry_of: Option<String>,
    },
    /// A metric line was read from the run's output.
    Metric {
        /// The run's id.
        run: String,
        /// The step: the line's `_step`, or the previous step + 1 (from 0).
        step: i64,
        /// The reported values (`null` for non-finite ones).
        values: Map<String, Value>,
    },
    /// A run ended and was reported to the server.
    Finished {
        /// The run's id.
        run: String,
        /// Its final state.
        state: RunState,
        /// Its sweep metric, if it reported one.
        metric: Option<f64>,
        /// The process's exit code, when it exited normally.
        exit_code: Option<i32>,
        /// Why it ended badly, as the server stored it (`exit code 1; stderr ended: …`), if it
        /// did.
        error: Option<String>,
    },
    /// Nothing can start now; the agent asks again every [`AgentOptions::poll`]. Sent once per
    /// wait, not once per poll.
    Waiting,
    /// Something worth telling the user: a warning, a server problem, why the agent stops.
    Message(String),
    /// The sweep is over (the server answered `410`): the agent claims no more and returns.
    SweepOver {
        /// The sweep's id.
        sweep: String,
        /// Its state (`finished`, `cancelled`).
        state: SweepState,
    },
}

/// What an agent did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentReport {
    /// Runs claimed (and ended).
    pub runs: u64,
    /// Runs that ended `finished`.
    pub finished: u64,
    /// Runs that ended `failed` or `crashed` (or could not be started).
    pub failed: u64,
    /// Runs that ended `stopped_early` or `cancelled`.
    pub stopped: u64,
    /// Of [`AgentReport::failed`], the runs that ended `crashed` (the server gave up on them).
    pub crashed: u64,
    /// Of [`AgentReport::stopped`], the runs that ended `cancelled` (the sweep was cancelled,
    /// or this agent was interrupted).
    pub cancelled: u64,
}

/// Why [`run_agent`] stopped before the sweep was over.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The server could not be reached, or refused a request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server refused the agent's token (`401`, `403`) for a claim: it was revoked (a
    /// token file rotated) or is wrong; no retry with it helps.
    #[error(
        "{error}\nThe server does not accept this agent's token: set HYPERDIAL_TOKEN (or \
         --token) to a token it accepts and start the agent again. Runs this agent ended \
         meanwhile are kept in its spill directory: upload them with `{sync}` and the new token."
    )]
    TokenRefused {
        /// The refused claim.
        error: ClientError,
        /// The `hyperdial sync` command that uploads the agent's spill directory.
        sync: String,
    },
    /// The sweep's configuration cannot be used.
    #[error("sweep {sweep}: {message}")]
    Sweep {
        /// The sweep's id.
        sweep: String,
        /// What is wrong.
        message: String,
    },
    /// A file of the state directory could not be written.
    #[error("{context}: {source}")]
    Io {
        /// What the agent was doing.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The agent's first run failed for want of hyperdial's `wandb` module
    /// ([`wandb_failure`]), in a way every run repeats: the agent stopped.
    #[error(
        "{hint}. The agent stopped: every run of sweep {sweep} would fail the same way (each \
         counting toward its run_cap)"
    )]
    WandbModule {
        /// The sweep's id.
        sweep: String,
        /// [`WandbFailure::hint`].
        hint: String,
    },
    /// [`CrashGuard::runs`] runs in a row failed within a minute of starting.
    #[error(
        "{} within a minute of starting; the last one: {last_error}.{}\n\
         Check the training command; every run's captured output: `hyperdial output RUN{reach}` \
         (`hyperdial runs {sweep}{reach}` lists the runs). {set_by}=N sets how many \
         failures in a row stop the agent (0: never).",
        match runs { 1 => "a run failed".to_string(), n => format!("{n} runs in a row failed") },
        stderr_excerpt(stderr_tail)
    )]
    CrashLoop {
        /// How many failed in a row.
        runs: u32,
        /// The variable that sets that count ([`CrashGuard::set_by`]).
        set_by: &'static str,
        /// The sweep's id.
        sweep: String,
        /// Options of the commands suggested ([`Hints::read`]).
        reach: String,
        /// Why the last of them failed.
        last_error: String,
        /// The end of the last failed run's stderr (may be empty).
        stderr_tail: String,
    },
}

/// Run sweep runs until `opts.count` runs are done, the sweep is over, or `shutdown` reaches 1.
///
/// `shutdown` levels: 1 = finish the current run and claim no more; 2 = also stop the current
/// run (SIGTERM, SIGKILL after the grace period); 3 = SIGKILL it at once. A run stopped by
/// level 2 or 3 ends `cancelled`. `events` receives progress; a closed receiver is fine.
pub async fn run_agent(
    opts: AgentOptions,
    events: mpsc::UnboundedSender<Event>,
    mut shutdown: watch::Receiver<u8>,
) -> Result<AgentReport, AgentError> {
    let mut report = AgentReport::default();
    if opts.count == Some(0) {
        return Ok(report);
    }
    let client = Client::with_ca_cert(&opts.server, opts.token.clone(), opts.ca_cert.as_deref())?;
    let state_dir = std::path::absolute(&opts.state_dir).map_err(|source| AgentError::Io {
        context: format!("state directory {}", opts.state_dir.display()),
        source,
    })?;

    let sweep = client.get_sweep(&opts.sweep).await?;
    let config = sweep_config(&opts.sweep, &sweep)?;
    if let Some(message) = program_not_here(&config, &sweep, &opts.cwd) {
        return Err(AgentError::Sweep {
            sweep: opts.sweep.clone(),
            message,
        });
    }
    let python = crate::install_python_client(&state_dir).map_err(|source| AgentError::Io {
        context: format!(
            "cannot install the Python client under {}",
            state_dir.display()
        ),
        source,
    })?;
    let wandb_module = if opts.wandb || config.wandb {
        let dir = crate::install_wandb_module(&state_dir).map_err(|source| AgentError::Io {
            context: format!(
                "cannot install the wandb module under {}",
                state_dir.display()
            ),
            source,
        })?;
        Some(dir)
    } else {
        None
    };
    let agent = client
        .register_agent(&opts.sweep, &crate::hostname(), std::process::id())
        .await?;
    tracing::info!("agent {agent} registered for sweep {}", opts.sweep);

    let mut waiting = false;
    let mut streak = 0u32;
    // A run of this agent has not failed (for `CrashGuard::at_start_only`).
    let mut worked = false;
    let mut wandb_hinted = false;
    loop {
        if opts.count.is_some_and(|count| report.runs >= count) {
            break;
        }
        if *shutdown.borrow_and_update() >= 1 {
            break;
        }
        // A claim may be held open by the server for up to `claim_wait`: any shutdown level
        // (claim no more) ends the wait. One held for `WAIT_NOTICE` is said to wait at once
        // (a paused sweep), not only when the server's wait ends.
        let claiming = client.claim_waiting(&opts.sweep, &agent, opts.claim_wait);
        tokio::pin!(claiming);
        let notice = tokio::time::sleep(WAIT_NOTICE);
        tokio::pin!(notice);
        let answer = loop {
            tokio::select! {
                claim = &mut claiming => break Some(claim),
                () = &mut notice, if !waiting => {
                    waiting = true;
                    let _ = events.send(Event::Waiting);
                }
                () = wait_level(&mut shutdown, 1) => break None,
            }
        };
        let claim = match answer {
            None => break,
            Some(Ok(claim)) => claim,
            Some(Err(err)) if err.is_auth() => {
                return Err(AgentError::TokenRefused {
                    error: err,
                    sync: crate::supervise::sync_command(
                        Some(&state_dir.join("offline")),
                        &opts.hints.sync,
                    ),
                })
            }
            Some(Err(err)) => return Err(err.into()),
        };
        let run = match claim {
            Claim::Run(run) => run,
            Claim::Waited => {
                // The server waited and found nothing: it will wait again; ask at once.
                if !waiting {
                    waiting = true;
                    let _ = events.send(Event::Waiting);
                }
                continue;
            }
            Claim::Wait => {
                if !waiting {
                    waiting = true;
                    let _ = events.send(Event::Waiting);
                }
                tokio::select! {
                    () = tokio::time::sleep(opts.poll) => {}
                    () = wait_level(&mut shutdown, 1) => {}
                }
                continue;
            }
            Claim::Over { state } => {
                let _ = events.send(Event::SweepOver {
                    sweep: opts.sweep.clone(),
                    state,
                });
                break;
            }
        };
        waiting = false;
        let paths = PythonPaths {
            client: &python,
            wandb: wandb_module.as_deref(),
        };
        let outcome = start_run(
            &client, &opts, &config, &state_dir, paths, &run, &events, &shutdown,
        )
        .await?;
        report.runs += 1;
        match outcome.state {
            RunState::Finished => report.finished += 1,
            RunState::StoppedEarly => report.stopped += 1,
            RunState::Cancelled => {
                report.stopped += 1;
                report.cancelled += 1;
            }
            RunState::Crashed => {
                report.failed += 1;
                report.crashed += 1;
            }
            _ => report.failed += 1,
        }
        // A run stopped for its `run_time_limit` failed by the sweep's rule, not because the
        // command is broken.
        let process_failed = outcome.requested_state == Some(RunState::Failed)
            && outcome.stop_reason.as_deref() != Some("run_time_limit");
        if process_failed && wandb_module.is_none() && !wandb_hinted {
            if let Some(failure) = wandb_failure(&outcome.stderr_tail) {
                wandb_hinted = true;
                let hint = failure.hint(run["number"].as_i64());
                // Before any run of this agent worked, a failure every run repeats (no
                // `wandb` to import, or W&B's own package asking for an account) stops the
                // agent: each further run would fail the same way and count toward run_cap.
                if !worked && repeats_every_run(&outcome.stderr_tail) {
                    return Err(AgentError::WandbModule {
                        sweep: opts.sweep.clone(),
                        hint,
                    });
                }
                let _ = events.send(Event::Message(hint));
            }
        }
        let guard = opts.crash_guard;
        if process_failed && outcome.duration < CRASH_LOOP_WINDOW {
            streak += 1;
        } else if !process_failed {
            worked = true;
            streak = 0;
        } else {
            streak = 0;
        }
        let counting = !(guard.at_start_only && worked);
        if counting && guard.runs > 0 && streak >= guard.runs {
            return Err(AgentError::CrashLoop {
                runs: streak,
                set_by: guard.set_by,
                sweep: opts.sweep.clone(),
                reach: opts.hints.read.clone(),
                // The stderr's tail is shown below it: the error's quote of it would repeat.
                last_error: outcome
                    .process_error
                    .or(outcome.error)
                    .unwrap_or_else(|| format!("it ended {}", outcome.state)),
                stderr_tail: outcome.stderr_tail,
            });
        }
    }
    Ok(report)
}

/// How a run that ran without hyperdial's `wandb` module failed in W&B's `wandb`
/// ([`wandb_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WandbFailure {
    /// Python could not import `wandb`: the package is not installed.
    Missing,
    /// The real `wandb` package was imported and stopped the run (no API key, no login, no
    /// network to W&B's servers, ...).
    RealPackage,
}

/// How to give a run hyperdial's `wandb` module, for [`WandbFailure::hint`].
const WANDB_SWITCHES: &str = "`wandb: true` in the sweep file, `--wandb` on `hyperdial agent` \
     or `tune`, or HYPERDIAL_WANDB=1 in the agent's environment";

impl WandbFailure {
    /// What the agent says, once, when run number `number` failed this way.
    pub fn hint(self, number: Option<i64>) -> String {
        let run = number.map_or_else(|| "a run".to_string(), |n| format!("run #{n}"));
        match self {
            WandbFailure::Missing => format!(
                "{run} failed importing `wandb`, which is not installed: scripts written for \
                 W&B run unchanged with {WANDB_SWITCHES}, which puts hyperdial's W&B-compatible \
                 module first on PYTHONPATH"
            ),
            WandbFailure::RealPackage => format!(
                "{run} failed in the real `wandb` package (W&B's own, imported because \
                 hyperdial's W&B-compatible module was not asked for; it wants a W&B account): \
                 use {WANDB_SWITCHES}, so that hyperdial's compatible module records the run"
            ),
        }
    }
}

/// Whether a failed run's stderr (its tail) says its script was written for W&B and ran
/// without hyperdial's `wandb` module, and how: Python could not import `wandb`
/// ([`WandbFailure::Missing`]), or the real package stopped it ([`WandbFailure::RealPackage`]):
/// its `wandb: ERROR` lines, an exception of `wandb.errors` (`UsageError`, `CommError`,
/// `AuthenticationError`, ...), its messages about a missing API key or login, or a traceback
/// through the installed package's files.
pub fn wandb_failure(stderr_tail: &str) -> Option<WandbFailure> {
    if stderr_tail.contains("No module named 'wandb'") {
        return Some(WandbFailure::Missing);
    }
    let real = stderr_tail.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("wandb: ERROR")
            || line.starts_with("wandb.errors.")
            || line.contains("-packages/wandb/")
            || asks_for_an_account(line)
    });
    real.then_some(WandbFailure::RealPackage)
}

/// Whether a line of stderr is W&B's package asking for an API key or a login.
fn asks_for_an_account(line: &str) -> bool {
    [
        "api_key not configured",
        "No API key configured",
        "`wandb login`",
        "wandb.login(",
    ]
    .iter()
    .any(|said| line.contains(said))
}

/// Whether a failure [`wandb_failure`] recognized in `stderr_tail` repeats on every run: no
/// `wandb` to import, or W&B's package asking for an API key or a login (a network error
/// reaching W&B may pass).
fn repeats_every_run(stderr_tail: &str) -> bool {
    stderr_tail.contains("No module named 'wandb'") || stderr_tail.lines().any(asks_for_an_account)
}

/// The end of a failed run's stderr, indented under a heading, for [`AgentError::CrashLoop`];
/// empty when the run wrote nothing there.
fn stderr_excerpt(tail: &str) -> String {
    let tail = tail.trim_end();
    if tail.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nIts stderr ended with:");
    for line in tail.lines() {
        out.push_str("\n  | ");
        out.push_str(line);
    }
    out
}

/// The sweep's configuration, from the Sweep object's `source`.
/// Why this agent cannot start the sweep's runs from `cwd`: the program its command runs as a
/// file ([`hyperdial_space::command::script_program`]) is not there, so every run it claimed
/// would fail at once (and count toward `run_cap`). Said before any claim, with the fix: start
/// the agent in the directory that holds the program, as W&B's agent expects.
fn program_not_here(config: &SweepConfig, sweep: &Value, cwd: &Path) -> Option<String> {
    let program = hyperdial_space::command::script_program(config)?;
    if cwd.join(program).exists() {
        return None;
    }
    let file = sweep["file"]
        .as_str()
        .map(|f| format!(" (the sweep file was `{f}`: its directory, if the program is beside it)"))
        .unwrap_or_default();
    Some(format!(
        "its program `{program}` is not in {}, where this agent runs the sweep's command: start \
         the agent in the directory that holds it{file}; no run was claimed",
        cwd.display()
    ))
}

fn sweep_config(id: &str, sweep: &Value) -> Result<SweepConfig, AgentError> {
    let source = sweep
        .get("source")
        .and_then(Value::as_str)
        .ok_or_else(|| AgentError::Sweep {
            sweep: id.to_string(),
            message: "the server's answer holds no `source` (the sweep file's text)".into(),
        })?;
    // Named as the server names it: its file, or "<sweep config text>" without one.
    let file = hyperdial_space::source_name(sweep.get("file").and_then(Value::as_str));
    let validated = hyperdial_space::parse_str(source, file).map_err(|err| AgentError::Sweep {
        sweep: id.to_string(),
        message: format!("its configuration does not validate in this agent: {err}"),
    })?;
    Ok(validated.config)
}

/// Resolve when the shutdown level reaches `level` (never, once the sender is gone).
async fn wait_level(shutdown: &mut watch::Receiver<u8>, level: u8) {
    loop {
        if *shutdown.borrow_and_update() >= level {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Whether a run id can name a directory.
fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The argv of a run and its nested config (the content of `config.json` and `args.json`).
///
/// Synchronous on purpose: the command context holds a non-`Send` closure reference, which
/// must not live across an `.await` of the agent's (spawnable) future.
fn build_command(
    config: &SweepConfig,
    params: &Value,
    args_file: &Path,
) -> Result<(Vec<String>, String), command::CommandError> {
    let empty = Map::new();
    let values = params.as_object().unwrap_or(&empty);
    let args = command::args_for(config, values);
    let env_lookup = |name: &str| std::env::var(name).ok();
    let argv = command::expand_config(config, &args, Some(args_file), &env_lookup)?;
    Ok((argv, command::args_json(&args)))
}

/// The directories put in front of a run's `PYTHONPATH`.
#[derive(Clone, Copy)]
struct PythonPaths<'a> {
    /// Holds the `hyperdial` client.
    client: &'a Path,
    /// Holds the `wandb`-compatible module, when the runs use it.
    wandb: Option<&'a Path>,
}

/// The environment variable that holds a repeated run's seed for its process.
pub const SEED_ENV: &str = "HYPERDIAL_SEED";

/// The environment variable that names, for a retry, the run of the attempt it repeats.
pub const RETRY_OF_ENV: &str = "HYPERDIAL_RETRY_OF";

/// The environment variable that holds a retry's attempt number (2 for the first retry).
pub const ATTEMPT_ENV: &str = "HYPERDIAL_ATTEMPT";

/// The environment variable that names the project a run was created in (its sweep's), so
/// the script's `run.project` (`wandb.run.project`) is that one, as under W&B's agent.
pub const PROJECT_ENV: &str = "HYPERDIAL_PROJECT";

/// W&B's variable for the project of the run, set (to the sweep's project) for runs that use
/// the `wandb` module, as W&B's agent sets it.
pub const WANDB_PROJECT_ENV: &str = "WANDB_PROJECT";

/// W&B's variable naming the file of the run's parameters
/// ([`command::sweep_param_yaml`]), set for runs that use the `wandb` module, as W&B's agent
/// sets it. The file is `config-<run id>.yaml` in the run's directory under the agent's state
/// directory (W&B's agent writes it under `wandb/sweep-<id>/` in the working directory).
pub const WANDB_SWEEP_PARAM_PATH_ENV: &str = "WANDB_SWEEP_PARAM_PATH";

/// Prepare and supervise one claimed run.
#[allow(clippy::too_many_arguments)]
async fn start_run(
    client: &Client,
    opts: &AgentOptions,
    config: &SweepConfig,
    state_dir: &Path,
    python: PythonPaths<'_>,
    run: &Value,
    events: &mpsc::UnboundedSender<Event>,
    shutdown: &watch::Receiver<u8>,
) -> Result<Outcome, AgentError> {
    let Some(run_id) = run.get("id").and_then(Value::as_str) else {
        return Err(AgentError::Client(ClientError::BadAnswer {
            method: "POST".into(),
            path: format!("/api/v1/sweeps/{}/claim", opts.sweep),
            message: "the claimed run has no `id`".into(),
        }));
    };
    let params = run.get("params").cloned().unwrap_or_else(|| json!({}));
    let _ = events.send(Event::Claimed {
        run: run_id.to_string(),
        number: run.get("number").and_then(Value::as_i64).unwrap_or(0),
        params: params.clone(),
        retry_of: run
            .get("retry_of")
            .and_then(Value::as_str)
            .map(str::to_string),
    });
    let fail = |error: String| supervise::finish_unstarted(client, run_id, error, events);
    if *shutdown.borrow() >= 2 {
        let mut outcome =
            fail("the agent was shutting down when the run was handed out".into()).await;
        outcome.requested_state = Some(RunState::Cancelled);
        return Ok(outcome);
    }
    if !is_safe_id(run_id) {
        return Ok(fail(format!(
            "the server gave the run an id ({run_id:?}) that cannot name a directory"
        ))
        .await);
    }

    let run_dir = state_dir.join("runs").join(run_id);
    let args_file = run_dir.join("args.json");
    let config_file = run_dir.join("config.json");
    let (argv, nested) = match build_command(config, &params, &args_file) {
        Ok(built) => built,
        Err(err) => return Ok(fail(format!("cannot build the command: {err}")).await),
    };
    let written = std::fs::create_dir_all(&run_dir)
        .and_then(|()| std::fs::write(&config_file, &nested))
        .and_then(|()| std::fs::write(&args_file, &nested));
    if let Err(err) = written {
        return Ok(fail(format!("cannot write {}: {err}", run_dir.display())).await);
    }
    tracing::info!("run {run_id}: {argv:?}");
    let options = SuperviseOptions {
        sweep: Some(opts.sweep.clone()),
        config_file: Some(config_file),
        python_path: Some(python.client.to_path_buf()),
        wandb_module: python.wandb.map(Path::to_path_buf),
        git: crate::git_state(&opts.cwd).await,
        heartbeat: opts.heartbeat,
        grace: opts.grace,
        echo: opts.echo,
        reaper: opts.reaper.clone(),
        spill_dir: Some(state_dir.join("offline")),
        sync_options: opts.hints.sync.clone(),
        end_wait: opts.end_wait,
        time_limit: config.run_time_limit_s.map(Duration::from_secs_f64),
        ..SuperviseOptions::default()
    };
    // A repeat (`hyperdial repeat`) carries its seed; the process finds it in HYPERDIAL_SEED
    // (and in its seed parameter, when the sweep has one).
    let mut env: Vec<(String, String)> = run
        .get("seed")
        .and_then(Value::as_i64)
        .map(|seed| (SEED_ENV.to_string(), seed.to_string()))
        .into_iter()
        .collect();
    if let Some(project) = run.get("project").and_then(Value::as_str) {
        env.push((PROJECT_ENV.to_string(), project.to_string()));
        if python.wandb.is_some() {
            env.push((WANDB_PROJECT_ENV.to_string(), project.to_string()));
        }
    }
    if python.wandb.is_some() {
        // As W&B's agent: the run's parameters in a YAML file of its own, named in the
        // environment (scripts read it, or keep it with their outputs).
        let param_file = run_dir.join(format!("config-{run_id}.yaml"));
        let empty = Map::new();
        let values = params.as_object().unwrap_or(&empty);
        let text = command::sweep_param_yaml(&command::args_for(config, values));
        if let Err(err) = std::fs::write(&param_file, text) {
            return Ok(fail(format!("cannot write {}: {err}", param_file.display())).await);
        }
        env.push((
            WANDB_SWEEP_PARAM_PATH_ENV.to_string(),
            param_file.to_string_lossy().into_owned(),
        ));
    }
    // A retry (an interrupted or failed attempt run again) names the attempt it repeats, so
    // its script can resume from the checkpoint that attempt saved under its own run id.
    if let Some(previous) = run.get("retry_of").and_then(Value::as_str) {
        env.push((RETRY_OF_ENV.to_string(), previous.to_string()));
        if let Some(attempt) = run.get("attempt").and_then(Value::as_i64) {
            env.push((ATTEMPT_ENV.to_string(), attempt.to_string()));
        }
    }
    let outcome = supervise::supervise(
        client,
        run_id,
        &argv,
        &env,
        &opts.cwd,
        &options,
        events,
        shutdown.clone(),
    )
    .await;
    // The files written for the run (its config, args and W&B parameter file) were for its
    // process, which has ended with all of its own; the server keeps the config and the argv.
    // Kept, one directory per run would pile up under a long-lived agent.
    if let Err(err) = std::fs::remove_dir_all(&run_dir) {
        tracing::debug!("run {run_id}: cannot remove {}: {err}", run_dir.display());
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wandb_script_without_the_module_is_recognized_by_its_stderr() {
        let missing = "Traceback (most recent call last):\n  File \"train.py\", line 1, in \
                       <module>\n    import wandb\nModuleNotFoundError: No module named 'wandb'\n";
        assert_eq!(wandb_failure(missing), Some(WandbFailure::Missing));
        // What the real package writes when it stops a run, across its versions.
        for real in [
            "wandb: ERROR api_key not configured (no-tty). call wandb.login(key=[your_api_key])\n",
            "Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n    \
             wandb.init(project=\"p\")\nwandb.errors.UsageError: api_key not configured \
             (no-tty). call wandb.login(key=[your_api_key])\n",
            "wandb.errors.errors.UsageError: No API key configured. Use `wandb login` to log in.\n",
            "wandb.errors.CommError: Run initialization has timed out after 90.0 sec.\n",
            "  File \"/usr/lib/python3/dist-packages/wandb/sdk/wandb_init.py\", line 1, in init\n\
             RuntimeError: boom\n",
            "  File \"/venv/lib/python3.12/site-packages/wandb/sdk/wandb_login.py\", line 9\n",
        ] {
            assert_eq!(
                wandb_failure(real),
                Some(WandbFailure::RealPackage),
                "{real}"
            );
        }
        for other in [
            "ModuleNotFoundError: No module named 'torch'\n",
            "ValueError: loss is wandb-ish\n",
            "Traceback (most recent call last):\nKeyError: 'lr'\n",
            "",
        ] {
            assert_eq!(wandb_failure(other), None, "{other}");
        }
    }

    #[test]
    fn only_a_missing_module_or_a_missing_account_repeats_on_every_run() {
        assert!(repeats_every_run(
            "ModuleNotFoundError: No module named 'wandb'\n"
        ));
        assert!(repeats_every_run(
            "wandb.errors.errors.UsageError: No API key configured. Use `wandb login` to log in.\n"
        ));
        assert!(repeats_every_run(
            "wandb: ERROR api_key not configured (no-tty). call wandb.login(key=[your_api_key])\n"
        ));
        // A timeout reaching W&B's servers may pass.
        assert!(!repeats_every_run(
            "wandb.errors.CommError: Run initialization has timed out after 90.0 sec.\n"
        ));
    }

    #[test]
    fn the_wandb_hints_name_the_run_and_every_way_to_use_the_module() {
        let real = WandbFailure::RealPackage.hint(Some(4));
        assert!(
            real.starts_with("run #4 failed in the real `wandb` package"),
            "{real}"
        );
        assert!(
            real.contains("hyperdial's compatible module records the run"),
            "{real}"
        );
        let missing = WandbFailure::Missing.hint(None);
        assert!(
            missing.starts_with("a run failed importing `wandb`"),
            "{missing}"
        );
        for hint in [real, missing] {
            for switch in ["`wandb: true`", "`--wandb`", "HYPERDIAL_WANDB=1"] {
                assert!(hint.contains(switch), "{hint}");
            }
        }
    }

    #[test]
    fn defaults() {
        let o = AgentOptions::new("http://127.0.0.1:8337", "k3x9q2ab");
        assert_eq!(o.heartbeat, Duration::from_secs(2));
        assert_eq!(o.grace, Duration::from_secs(10));
        assert_eq!(o.poll, Duration::from_secs(1));
        assert_eq!(o.state_dir, PathBuf::from(".hyperdial"));
        assert_eq!(o.count, None);
        assert!(o.token.is_none());
    }

    #[test]
    fn safe_ids() {
        assert!(is_safe_id("r7mz0c1d"));
        assert!(!is_safe_id(""));
        assert!(!is_safe_id(".."));
        assert!(!is_safe_id("a/b"));
        assert!(!is_safe_id(&"a".repeat(200)));
    }

    #[test]
    fn sweep_config_errors() {
        let err = sweep_config("s1", &json!({"id": "s1"})).unwrap_err();
        assert!(err.to_string().contains("no `source`"));
        let err = sweep_config("s1", &json!({"source": "method: nope\n"})).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("sweep s1: its configuration does not validate"));
        let ok = sweep_config(
            "s1",
            &json!({"source": "method: grid\nparameters:\n  a: {values: [1, 2]}\n"}),
        )
        .unwrap();
        assert_eq!(ok.parameters[0].name, "a");
    }

    #[test]
    fn crash_loop_message() {
        let err = AgentError::CrashLoop {
            runs: 3,
            set_by: MAX_FAILURES_ENV,
            sweep: "k3x9q2ab".into(),
            reach: String::new(),
            last_error: "exit code 1".into(),
            stderr_tail: String::new(),
        };
        assert_eq!(
            err.to_string(),
            "3 runs in a row failed within a minute of starting; the last one: exit code 1.\n\
             Check the training command; every run's captured output: `hyperdial output RUN` \
             (`hyperdial runs k3x9q2ab` lists the runs). HYPERDIAL_MAX_FAILURES=N sets how many \
             failures in a row stop the agent (0: never)."
        );
        let err = AgentError::CrashLoop {
            runs: 1,
            set_by: WANDB_MAX_FAILURES_ENV,
            sweep: "k3x9q2ab".into(),
            reach: " --server http://gpu-box:8337".into(),
            last_error: "exit code 2".into(),
            stderr_tail: "python3: can't open file 'nothere.py'\n".into(),
        };
        assert!(err
            .to_string()
            .starts_with("a run failed within a minute of starting; the last one: exit code 2."));
        assert!(err
            .to_string()
            .contains("WANDB_AGENT_MAX_INITIAL_FAILURES=N sets how many failures"));
        assert!(err.to_string().contains(
            "exit code 2.\nIts stderr ended with:\n  | python3: can't open file 'nothere.py'\nCheck"
        ));
        // The commands reach the agent's server.
        assert!(err.to_string().contains(
            "`hyperdial output RUN --server http://gpu-box:8337` \
             (`hyperdial runs k3x9q2ab --server http://gpu-box:8337` lists the runs)."
        ));
    }

    #[test]
    fn the_crash_guard_is_set_by_hyperdials_variable_else_by_wandbs() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(CrashGuard::from_vars(vars(&[])), Ok(CrashGuard::default()));
        assert_eq!(CrashGuard::default().runs, 3);
        let wandb = CrashGuard::from_vars(vars(&[(WANDB_MAX_FAILURES_ENV, "10")])).unwrap();
        assert_eq!((wandb.runs, wandb.set_by), (10, WANDB_MAX_FAILURES_ENV));
        let both = CrashGuard::from_vars(vars(&[
            (WANDB_MAX_FAILURES_ENV, "10"),
            (MAX_FAILURES_ENV, " 0 "),
        ]))
        .unwrap();
        assert_eq!(
            both.runs, 0,
            "hyperdial's own variable first; 0 never stops"
        );
        let flapping = CrashGuard::from_vars(vars(&[(WANDB_DISABLE_FLAPPING_ENV, "True")]));
        assert_eq!(
            flapping,
            Ok(CrashGuard {
                runs: 3,
                at_start_only: true,
                set_by: MAX_FAILURES_ENV,
            })
        );
        let bad = CrashGuard::from_vars(vars(&[(MAX_FAILURES_ENV, "three")])).unwrap_err();
        assert!(bad.contains("HYPERDIAL_MAX_FAILURES=\"three\""), "{bad}");
        assert!(CrashGuard::from_vars(vars(&[(WANDB_MAX_FAILURES_ENV, "-1")])).is_err());
    }
}
