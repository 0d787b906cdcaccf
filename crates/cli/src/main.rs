//! `hyperdial`: hyperparameter sweeps and experiment tracking in one binary.
//!
//! Each subcommand lives in its own module under `commands/` and is a thin layer over the
//! library crates; this file only parses the command line and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hyperdial_wire::RunState;

/// Print a line to standard output, ignoring a failed write. The commands that supervise
/// runs (`tune`, `agent`, `run`, `sync`) print with it: a reader that closed the pipe
/// (`hyperdial tune sweep.yaml | head -3`) must not end them mid-sweep (`println!` would
/// panic), so the sweep goes on and its output is dropped. The commands that only print end
/// by SIGPIPE instead (see `quiet_on_closed_stdout`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod api;
mod commands;
mod embedded;
mod source;

/// An error whose text is already a finished report, as the validator writes it
/// (`file:line:column: error: ...` lines and a count): printed as it is, without another
/// `error:` in front.
#[derive(Debug)]
pub struct Rendered(pub String);

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rendered {}

/// Hyperparameter sweeps and experiment tracking, self-hosted, in one binary.
#[derive(Debug, Parser)]
#[command(name = "hyperdial", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How to reach a server.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Server URL (else $HYPERDIAL_SERVER). With neither, commands that read results
    /// (runs, best, export, ...) read the local store (--db), pause/resume/stop/cancel go to
    /// the `tune` or `ui` serving this directory, and the rest use http://127.0.0.1:8337.
    #[arg(long)]
    pub server: Option<String>,
    /// API token (required by servers not on loopback). Prefer HYPERDIAL_TOKEN in the
    /// environment: a token on the command line, `--token "$VAR"` included, is visible to
    /// other users of the machine (`ps`).
    #[arg(long, env = "HYPERDIAL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM file of CA certificates to trust for an https:// server (a private CA, or the
    /// server's self-signed certificate), besides the built-in roots.
    #[arg(
        long,
        env = "HYPERDIAL_CA_CERT",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub ca_cert: Option<PathBuf>,
}

/// The value of `--wandb` given as `HYPERDIAL_WANDB` (clap reads the variable as the flag's
/// value): `1`, `true`, `yes`, `on` turn the module on; `0`, `false`, `no`, `off` or nothing
/// leave it off.
fn wandb_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(
            "HYPERDIAL_WANDB (or --wandb) takes 1 or 0 (also true/false, yes/no, on/off)"
                .to_string(),
        ),
    }
}

/// A number of seconds for an option (`60`, `0.5`, `0`).
fn seconds(value: &str) -> Result<std::time::Duration, String> {
    hyperdial_agent::supervise::parse_seconds(value).ok_or_else(|| {
        format!("expected a number of seconds (0 or more, e.g. 60 or 0.5), got {value:?}")
    })
}

/// The server when none is named.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8337";

impl Remote {
    /// The server the user named: `--server`, else `HYPERDIAL_SERVER` when set and not empty.
    pub fn given(&self) -> Option<String> {
        self.server
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| {
                std::env::var("HYPERDIAL_SERVER")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            })
    }

    /// Every server named ([`Remote::given`], a comma-separated list for an agent on several
    /// servers of one PostgreSQL database), else [`DEFAULT_SERVER`]; each with `http://` when
    /// the name has no scheme ([`hyperdial_agent::client::split_servers`]).
    pub fn urls(&self) -> Vec<String> {
        hyperdial_agent::client::split_servers(
            &self.given().unwrap_or_else(|| DEFAULT_SERVER.to_string()),
        )
    }

    /// The server to reach for a command that talks to one: the first named
    /// ([`Remote::urls`]), so a `HYPERDIAL_SERVER` listing several servers for agents serves
    /// every other command too.
    pub fn url(&self) -> String {
        self.urls().swap_remove(0)
    }

    fn api(&self) -> anyhow::Result<api::Api> {
        api::Api::with_ca_cert(&self.url(), self.token.clone(), self.ca_cert.as_deref())
    }

    /// The agent's client, given every server named ([`Remote::urls`]): it goes on with the
    /// next when one cannot be reached, from its first request on.
    fn client(&self) -> anyhow::Result<hyperdial_agent::Client> {
        Ok(hyperdial_agent::Client::with_ca_cert(
            &self.urls().join(","),
            self.token.clone(),
            self.ca_cert.as_deref(),
        )?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Machine-readable views of the server's decisions, for conformance tests (JSON on
    /// standard input and output; see `commands/debug.rs`).
    #[command(hide = true)]
    Debug {
        /// What to decide.
        #[arg(value_enum)]
        view: commands::debug::View,
    },
    /// Run a sweep on this machine: embedded server on SQLite, N local agents, progress, and
    /// the best run at the end. Running it again with the same file resumes the sweep; once
    /// that sweep has finished, it shows the result and what can be done (--retry, --new).
    Tune {
        /// The sweep file (YAML or JSON).
        file: PathBuf,
        /// Agents running in parallel.
        #[arg(long, default_value_t = 1)]
        agents: u32,
        /// Runs to start in this invocation (default: until the sweep ends; 20 for an
        /// unbounded sweep).
        #[arg(long)]
        count: Option<u64>,
        /// Database: a SQLite file (a path, or sqlite://PATH) or a PostgreSQL URL
        /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DB); default $HYPERDIAL_DB, else
        /// ./.hyperdial/hyperdial.db.
        #[arg(long)]
        db: Option<String>,
        /// Port of the embedded server (taken if free, else any free port).
        #[arg(long, default_value_t = 8337)]
        port: u16,
        /// Seed of a new sweep (default: random, stored with the sweep).
        #[arg(long)]
        seed: Option<i64>,
        /// Start a fresh sweep, even if the file's sweep exists (running or finished).
        #[arg(long, conflicts_with = "retry")]
        new: bool,
        /// Run the failed and crashed runs of the file's sweep again, also when it finished.
        #[arg(long)]
        retry: bool,
        /// Run scripts written for W&B unchanged: `import wandb` gets hyperdial's
        /// W&B-compatible module (as `wandb: true` in the sweep file does). HYPERDIAL_WANDB=1
        /// in the environment does the same (for job scripts); 0 leaves it to the sweep file.
        #[arg(
            long,
            env = "HYPERDIAL_WANDB",
            hide_env_values = true,
            value_parser = wandb_switch
        )]
        wandb: bool,
        /// After the sweep, keep serving the dashboard until Ctrl-C (the default when standard
        /// output is a terminal).
        #[arg(long, conflicts_with = "no_keep_serving")]
        keep_serving: bool,
        /// After the sweep, exit and print how to reopen the dashboard (`hyperdial ui --db
        /// ...`; the default when standard output is not a terminal: scripts, CI).
        #[arg(long)]
        no_keep_serving: bool,
        /// The directory the runs start in (default: the sweep file's, so `program:
        /// train.py` beside the file is found from anywhere). `--workdir .` runs them where
        /// tune is started, as `wandb agent` does.
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
    },
    /// Serve the API and the overview pages.
    #[command(after_help = "Environment:\n  \
        HYPERDIAL_LOG          what the log (standard error) shows, e.g. `info` for every \
        state change and refused request (docs/api.md, \"Logs\")\n  \
        HYPERDIAL_SQLITE_SYNC  `normal` trades a power cut's last second of acknowledged \
        writes for speed on SQLite (docs/api.md, \"Durability of metric points\")\n  \
        HYPERDIAL_DB, HYPERDIAL_TOKEN  as --db, --token")]
    Server {
        /// Database: a SQLite file (a path, or sqlite://PATH) or a PostgreSQL URL
        /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DB); default $HYPERDIAL_DB, else
        /// ./.hyperdial/hyperdial.db.
        #[arg(long)]
        db: Option<String>,
        /// Seconds to wait at start for a PostgreSQL database that does not accept connections
        /// yet (nothing listening, or starting up), retrying with backoff; 0 fails at once. A
        /// refusal (wrong password, unknown database) fails at once whatever this says.
        #[arg(
            long,
            env = "HYPERDIAL_DB_WAIT",
            hide_env_values = true,
            value_name = "SECONDS",
            default_value_t = 30.0
        )]
        db_wait: f64,
        /// Address and port to listen on (`localhost:PORT` is 127.0.0.1); anything but
        /// loopback requires --token or --token-file (and should use TLS). 0.0.0.0 listens on
        /// every address of the machine.
        #[arg(long, default_value = "127.0.0.1:8337")]
        bind: String,
        /// Port to listen on, on the host of the bind address (127.0.0.1 by default): a port
        /// of 9000 listens on 127.0.0.1:9000.
        #[arg(long, value_name = "PORT")]
        port: Option<u16>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Seconds a sweep run may stay silent (no heartbeat, metrics or output from its agent;
        /// no heartbeat or tell from the client that asked for a trial) before it is marked
        /// crashed and retried (fractions allowed, at least 1; below 15 a warning: the Python
        /// client sends its heartbeats after 5 s of silence, agents every 2 s).
        #[arg(
            long,
            env = "HYPERDIAL_RUN_TIMEOUT",
            hide_env_values = true,
            value_name = "SECONDS",
            default_value_t = 60.0
        )]
        run_timeout: f64,
        /// API token clients must send (any one of the tokens given here and in --token-file
        /// is accepted; repeatable). Tokens shorter than 16 characters get a warning. The
        /// dashboard asks for it in a sign-in panel and keeps it in the browser until Sign out.
        /// Fixed until restart: SIGHUP does not rotate it, so with --token-file do not also set
        /// HYPERDIAL_TOKEN in the server's environment (put every token in the file).
        #[arg(long, env = "HYPERDIAL_TOKEN", hide_env_values = true)]
        token: Vec<String>,
        /// Whether `token` came from HYPERDIAL_TOKEN rather than `--token` (set after parsing).
        #[arg(skip)]
        token_from_env: bool,
        /// File of accepted API tokens: one per line, `#` comments and blank lines ignored.
        /// SIGHUP re-reads it (the server keeps running), so a token can be rotated without a
        /// restart: add the new one, move the clients to it, then remove the old one. Only the
        /// file's tokens rotate: a --token or HYPERDIAL_TOKEN given too stays accepted until
        /// restart (the server warns).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Without a token the server answers only requests addressed to 127.0.0.1, localhost
        /// or [::1] on its port; also answer to this host name (`NAME` or `NAME:PORT`,
        /// repeatable; `*` for any), e.g. behind an SSH tunnel on another port.
        #[arg(long = "allowed-host", value_name = "NAME")]
        allowed_hosts: Vec<String>,
        /// Shut down (gracefully) when standard input reaches its end: a process that starts
        /// the server for itself (the Python client's local server) passes it a pipe, so the
        /// server ends with that process however it ends.
        #[arg(long, hide = true)]
        until_stdin_closes: bool,
    },
    /// Create a sweep on a server and print its id and the agent command.
    Sweep {
        /// The sweep file.
        file: PathBuf,
        /// Project (default: the file's `project`, else `default`).
        #[arg(long, short = 'p')]
        project: Option<String>,
        /// W&B's `wandb sweep --entity`: accepted and ignored (hyperdial has no entities)
        #[arg(long, short = 'e', value_name = "ENTITY")]
        entity: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Claim and run the runs of a sweep.
    ///
    /// With several servers of one PostgreSQL database, name them all, separated by commas
    /// (`--server http://a:8337,http://b:8337`): the agent uses the first, and goes on with
    /// the next when the one in use cannot be reached, so its runs carry on when a server dies.
    Agent {
        /// The sweep id (W&B's ENTITY/PROJECT/ID form is taken too: its last part)
        sweep: String,
        /// Stop after this many runs.
        #[arg(long)]
        count: Option<u64>,
        /// W&B's `wandb agent --project`, so job scripts written for it run unchanged: the
        /// sweep id names one sweep, so this only checks its project (a note when it differs)
        #[arg(long, short = 'p', value_name = "PROJECT")]
        project: Option<String>,
        /// W&B's `wandb agent --entity`: accepted and ignored (hyperdial has no entities)
        #[arg(long, short = 'e', value_name = "ENTITY")]
        entity: Option<String>,
        /// Run scripts written for W&B unchanged: `import wandb` gets hyperdial's
        /// W&B-compatible module (as `wandb: true` in the sweep file does). HYPERDIAL_WANDB=1
        /// in the environment does the same (for job scripts); 0 leaves it to the sweep file.
        #[arg(
            long,
            env = "HYPERDIAL_WANDB",
            hide_env_values = true,
            value_parser = wandb_switch
        )]
        wandb: bool,
        /// When a run has ended while the server does not answer, its end is kept on disk
        /// (.hyperdial/offline): wait this many seconds for the server, retrying the upload,
        /// before leaving the file to `hyperdial sync` (0: do not wait). Ctrl-C stops the
        /// wait and keeps the file. A server that refuses the agent's token (401, 403: a
        /// rotated token file) is not waited for: the run's points and end are kept there,
        /// for `hyperdial sync` with a token the server accepts.
        #[arg(
            long,
            env = "HYPERDIAL_END_WAIT",
            hide_env_values = true,
            value_name = "SECONDS",
            default_value = "60",
            value_parser = seconds
        )]
        end_wait: std::time::Duration,
        #[command(flatten)]
        remote: Remote,
    },
    /// List sweeps (from the server given, else straight from the local store).
    Sweeps {
        /// Only this project.
        #[arg(long)]
        project: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: source::Source,
    },
    /// List the runs of a sweep; without a sweep, every run (of sweeps, `hyperdial run`, the
    /// Python client, `sync`), newest first, a page at a time.
    Runs {
        /// The sweep id (omit it to list every run).
        sweep: Option<String>,
        /// Only runs in this state (queued, running, finished, failed, crashed, stopped_early,
        /// cancelled).
        #[arg(long)]
        state: Option<RunState>,
        /// Only runs of this project (without a sweep).
        #[arg(long, conflicts_with = "sweep")]
        project: Option<String>,
        /// Runs per page (without a sweep; 1 to 100000).
        #[arg(long, default_value_t = 50, conflicts_with = "sweep")]
        limit: u32,
        /// The page to show, from 1 (without a sweep).
        #[arg(long, default_value_t = 1, conflicts_with = "sweep")]
        page: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: source::Source,
    },
    /// Show what is left of a sweep's `budget` and when it is expected to end (or what ended
    /// it).
    Budget {
        /// The sweep id.
        sweep: String,
        #[command(flatten)]
        source: source::Source,
    },
    /// Print the captured output (stdout and stderr) of a run.
    Output {
        /// The run id.
        run: String,
        #[command(flatten)]
        source: source::Source,
    },
    /// Print the best run's configuration.
    Best {
        /// The sweep id.
        sweep: String,
        /// yaml, json, or args (the parameters as the sweep's command passes them); a
        /// multi-objective sweep prints its Pareto front, one run a line, and also takes csv.
        #[arg(long, default_value = "yaml")]
        format: String,
        /// Print JSON (as the other read commands' `--json`; the same as `--format json`).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// The model's estimate of the best configuration instead of the run with the best
        /// observed value: under a noisy metric the best value is a lucky draw as often as
        /// the best configuration. The run whose configuration has the best posterior mean
        /// under the Gaussian process `bayes` fits (with fitted noise), among the runs that
        /// finished or stopped early (at least 5), when the model gives it a probability of
        /// 0.75 or more of beating the best run; else the best run. With --json, the whole
        /// estimate (the run, `mean`, `sd`, `noise_sd`, `p_better`, ...). Not for a sweep
        /// with several objectives.
        #[arg(long)]
        estimate: bool,
        #[command(flatten)]
        source: source::Source,
    },
    /// Which parameters matter for a sweep's metric: a table of the parameters by importance
    /// (a random forest over the runs; each importance with its spread across sub-forests),
    /// their correlations with the metric, the number of runs used and whether that is enough
    /// evidence (and if not, what to do). Exits 0 with importances (or when the runs show no
    /// signal), 1 when the runs are too few for importances (the correlations still on standard
    /// output; why, and what to do, on standard error; with --json the answer still on standard
    /// output), 2 on an error.
    Importance {
        /// The sweep id.
        sweep: String,
        /// The run states whose runs count, a comma list (finished, stopped_early, failed,
        /// crashed, cancelled) [default: finished; runs stopped early are left out, since
        /// their value says how long they ran more than how good their parameters were].
        #[arg(long, value_delimiter = ',', value_name = "STATES")]
        states: Vec<RunState>,
        /// Print the API's answer as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: source::Source,
    },
    /// Write a new sweep file around the best runs of a sweep (coarse to fine): narrower
    /// ranges, values that never did well dropped (each decision printed and written as a
    /// comment), the sweep recorded as `parent` and under `prior_runs`.
    Refine {
        /// The sweep id.
        sweep: String,
        /// Follow the K best finished runs.
        #[arg(long, conflicts_with = "quantile")]
        top: Option<usize>,
        /// Follow the best fraction Q of the finished runs (0 < Q ≤ 1; default 0.25).
        #[arg(long)]
        quantile: Option<f64>,
        /// Widen the span of the best runs by this fraction of it on each side.
        #[arg(long, default_value_t = 0.25)]
        margin: f64,
        /// Write the new sweep file here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        source: source::Source,
    },
    /// Re-run the K best configurations of a sweep N times each with distinct seeds, to
    /// measure seed noise (the seed goes in the seed parameter and in HYPERDIAL_SEED); then
    /// `hyperdial noise SWEEP`.
    Repeat {
        /// The sweep id.
        sweep: String,
        /// How many of the best configurations (by the sweep's metric, finished runs).
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// Seeds per configuration.
        #[arg(long, default_value_t = 5)]
        seeds: usize,
        /// The sweep parameter that carries the seed (default: `seed` when the sweep has it;
        /// without one, the program reads HYPERDIAL_SEED).
        #[arg(long)]
        param: Option<String>,
        #[command(flatten)]
        source: source::Source,
    },
    /// The seed-noise report of a sweep's repeats: per configuration mean, std and count;
    /// the pooled seed noise against the spread across configurations; whether the best
    /// configuration is distinguishable from the runner-up (Welch's t-test, p < 0.05).
    Noise {
        /// The sweep id.
        sweep: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: source::Source,
    },
    /// Read an LR range test's run (`hyperdial.lr_range_test` in the Python client): print the
    /// suggested learning rate, where the loss diverged, the minimum-loss learning rate, and an
    /// `lr` block to paste into a sweep. Exits 1 when there are too few points to suggest one.
    LrFind {
        /// The run id.
        run: String,
        /// text, or json.
        #[arg(long, value_enum, default_value = "text")]
        format: commands::lrfind::Format,
        #[command(flatten)]
        source: source::Source,
    },
    /// Export every run of a sweep.
    Export {
        /// The sweep id.
        sweep: String,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        source: source::Source,
    },
    /// Serve the dashboard on the local store, on loopback, until Ctrl-C; works beside a
    /// `tune` or `server` using the same store.
    Ui {
        /// Database: a SQLite file (a path, or sqlite://PATH) or a PostgreSQL URL; default
        /// $HYPERDIAL_DB, else ./.hyperdial/hyperdial.db.
        #[arg(long)]
        db: Option<String>,
        /// Port on 127.0.0.1 (taken if free, else any free port).
        #[arg(long, default_value_t = 8337)]
        port: u16,
    },
    /// Stop handing out runs of a sweep; running runs go on.
    Pause(SweepAction),
    /// Hand out runs of a paused sweep again.
    Resume(SweepAction),
    /// Finish a sweep: no new runs; running runs finish.
    Stop(SweepAction),
    /// Cancel a sweep: running runs are stopped. Given a run's id, cancel that run alone (a
    /// hung one, say): its agent stops its process; the sweep goes on
    Cancel(CancelArgs),
    /// Run runs of a sweep again with the same configuration (also on a finished sweep,
    /// which then runs until its retries are done). Without options: its failed and crashed
    /// runs.
    Retry {
        /// The sweep id.
        sweep: String,
        /// Retry the runs that failed.
        #[arg(long)]
        failed: bool,
        /// Retry the runs that crashed (their agent was lost).
        #[arg(long)]
        crashed: bool,
        /// Retry the runs that were cancelled.
        #[arg(long)]
        cancelled: bool,
        /// Retry these runs (ids; a run retried before stands for its latest attempt).
        runs: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Track a run of any command: argv, exit code, metrics, output, host, git commit.
    ///
    /// Where to: `--db` names a store, written directly without a server; else the server
    /// named by `--server` (or HYPERDIAL_SERVER), which must answer; else the default server
    /// when it answers, and the default store (./.hyperdial/hyperdial.db) when it does not.
    Run {
        /// Project [default: with --wandb, $WANDB_PROJECT when set, as W&B reads it; else
        /// "default"].
        #[arg(long)]
        project: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Run a script written for W&B unchanged: `import wandb` gets hyperdial's
        /// W&B-compatible module. HYPERDIAL_WANDB=1 in the environment does the same.
        #[arg(
            long,
            env = "HYPERDIAL_WANDB",
            hide_env_values = true,
            value_parser = wandb_switch
        )]
        wandb: bool,
        #[command(flatten)]
        remote: Remote,
        /// Track the run in this store directly, without a server: a SQLite file (a path, or
        /// sqlite://PATH) or a PostgreSQL URL.
        #[arg(long, conflicts_with = "server")]
        db: Option<String>,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Upload runs recorded offline by the Python client (.hyperdial/offline/*.jsonl).
    ///
    /// Where to: `--db` names a store, written directly without a server; else the server
    /// named by `--server` (or HYPERDIAL_SERVER), which must answer; else the default server
    /// when it answers, and the default store (./.hyperdial/hyperdial.db) when it does not.
    ///
    /// Also uploads the metric points and run ends that agents and their runs kept there
    /// while their server was away or refused their token; a run the server marked crashed meanwhile still takes its end while its retry
    /// has not started (the retry is withdrawn). The last line counts the files uploaded,
    /// refused (the server's reason is said above; their points stay in the *.jsonl.synced
    /// file) and failed; the exit code is 1 when any file was refused or failed.
    Sync {
        /// Directory of offline files [default: $HYPERDIAL_DIR/offline when HYPERDIAL_DIR is
        /// set (where the Python client writes them), else .hyperdial/offline].
        dir: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
        /// Write into this store directly, without a server: a SQLite file (a path, or
        /// sqlite://PATH) or a PostgreSQL URL.
        #[arg(long, conflicts_with = "server")]
        db: Option<String>,
    },
    /// Check a sweep file (YAML or JSON, W&B Sweeps compatible) and print what it describes.
    ///
    /// Prints the method, metric, every parameter with its distribution, the grid size,
    /// the early-termination rule and the argv of one run (a grid's first run, else a sampled
    /// one); or every error found,
    /// with file, line, column and key path. Exits 1 when the file is invalid.
    Validate {
        /// The sweep file.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Seed for the sampled example configuration (not used by `method: grid`, whose
        /// example is its first run).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// List the configurations a sweep file describes, one JSON object per line (grid points
    /// or seeded random draws, each with its argv); for conformance checks.
    #[command(hide = true)]
    Space {
        /// The sweep file.
        file: PathBuf,
        /// List the grid points in order.
        #[arg(long, conflicts_with = "sample")]
        grid: bool,
        /// At most this many grid points.
        #[arg(long, default_value_t = 100_000)]
        limit: u64,
        /// Draw this many random configurations.
        #[arg(long)]
        sample: Option<u64>,
        /// Seed of the random draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// `hyperdial cancel`: a sweep, or one run.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The sweep id, or the id of one run to cancel.
    id: String,
    #[command(flatten)]
    remote: Remote,
}

/// A command on one sweep.
#[derive(Debug, Args)]
pub struct SweepAction {
    /// The sweep id.
    sweep: String,
    #[command(flatten)]
    remote: Remote,
}

/// The log filter when `HYPERDIAL_LOG` is unset: warnings and errors, but of sqlx's pool only
/// errors. During a database outage the pool warns of every dead connection it tests (and of
/// slow waits after it), and the store's own fault lines already say what failed and why.
const DEFAULT_LOG: &str = "warn,sqlx_core::pool=error,sqlx::pool=error";

/// The log filter for `HYPERDIAL_LOG` (`set`): [`DEFAULT_LOG`] when unset or blank; else the
/// value, with sqlx's pool kept to errors unless the value names sqlx itself, so that
/// `HYPERDIAL_LOG=info` adds hyperdial's own lines, not a line per connection the pool tests
/// during an outage.
fn log_filter(set: Option<&str>) -> String {
    match set.map(str::trim).filter(|v| !v.is_empty()) {
        None => DEFAULT_LOG.to_string(),
        Some(value) if value.contains("sqlx") => value.to_string(),
        Some(value) => format!("{value},sqlx_core::pool=error,sqlx::pool=error"),
    }
}

fn main() -> ExitCode {
    // A run's reaper (started by the agent, see hyperdial_agent::reaper): no parsing, no
    // runtime, no threads.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == hyperdial_agent::reaper::ARG)
    {
        let code = hyperdial_agent::reaper::main(&args[2..]);
        return ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1));
    }
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // The server says where its fixed token came from (HYPERDIAL_TOKEN or --token).
    if let Command::Server { token_from_env, .. } = &mut cli.command {
        *token_from_env = matches
            .subcommand_matches("server")
            .and_then(|m| m.value_source("token"))
            == Some(clap::parser::ValueSource::EnvVariable);
    }
    if prints_only(&cli.command) {
        quiet_on_closed_stdout();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(log_filter(
                std::env::var("HYPERDIAL_LOG").ok().as_deref(),
            ))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Command::Validate { file, json, seed } = &cli.command {
        return finish(commands::validate::run(file, *json, *seed));
    }
    if let Command::Debug { view } = &cli.command {
        return finish(commands::debug::run(*view));
    }
    if let Command::Space {
        file,
        grid,
        limit,
        sample,
        seed,
    } = &cli.command
    {
        return finish(
            space_listing(*grid, *limit, *sample, *seed)
                .and_then(|listing| commands::space::run(file, listing)),
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    finish(runtime.block_on(dispatch(cli.command)))
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    use commands::{agent, manage, run, server, sync, tune};
    match command {
        Command::Tune {
            file,
            agents,
            count,
            db,
            port,
            seed,
            new,
            retry,
            wandb,
            keep_serving,
            no_keep_serving,
            workdir,
        } => {
            let keep_serving = match (keep_serving, no_keep_serving) {
                (true, _) => true,
                (_, true) => false,
                _ => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            };
            tune::run(tune::TuneArgs {
                file,
                agents,
                count,
                db,
                port,
                seed,
                new,
                retry,
                wandb,
                keep_serving,
                workdir,
                // A bad HYPERDIAL_MAX_FAILURES is said before anything runs.
                crash_guard: hyperdial_agent::CrashGuard::from_env().map_err(anyhow::Error::msg)?,
            })
            .await
        }
        Command::Ui { db, port } => commands::ui::run(db, port).await,
        Command::Server {
            db,
            db_wait,
            bind,
            port,
            token,
            token_from_env,
            token_file,
            allowed_hosts,
            tls_cert,
            tls_key,
            run_timeout,
            until_stdin_closes,
        } => {
            server::run(server::ServerArgs {
                db,
                db_wait,
                bind: with_port(&bind, port),
                token,
                token_from_env,
                token_file,
                allowed_hosts,
                tls: tls_cert.zip(tls_key),
                run_timeout,
                until_stdin_closes,
            })
            .await
        }
        Command::Sweep {
            file,
            project,
            entity: _,
            json,
            remote,
        } => manage::create(&remote, &file, project.as_deref(), json).await,
        Command::Agent {
            sweep,
            count,
            project,
            entity: _,
            wandb,
            end_wait,
            remote,
        } => agent::run(&remote, &sweep, project.as_deref(), count, wandb, end_wait).await,
        Command::Sweeps {
            project,
            json,
            source,
        } => {
            manage::read(&source, async |api| {
                manage::sweeps(api, project.as_deref(), json).await
            })
            .await
        }
        Command::Runs {
            sweep: Some(sweep),
            state,
            json,
            source,
            ..
        } => {
            manage::read(&source, async |api| {
                manage::runs(api, &source, &sweep, state, json).await
            })
            .await
        }
        Command::Runs {
            sweep: None,
            state,
            project,
            limit,
            page,
            json,
            source,
        } => {
            let listing = manage::AllRuns {
                project,
                state,
                limit,
                page,
                source,
            };
            manage::read(&listing.source, async |api| {
                manage::all_runs(api, &listing, json).await
            })
            .await
        }
        Command::Best {
            sweep,
            format,
            json,
            estimate,
            source,
        } => {
            let format = if json { "json".to_string() } else { format };
            manage::read(&source, async |api| {
                manage::best(api, &sweep, &format, estimate, &source.flags()).await
            })
            .await
        }
        Command::Importance {
            sweep,
            states,
            json,
            source,
        } => {
            manage::read(&source, async |api| {
                commands::importance::run(api, &source, &sweep, &states, json).await
            })
            .await
        }
        Command::Output { run, source } => {
            manage::read(&source, async |api| manage::output(api, &run).await).await
        }
        Command::Refine {
            sweep,
            top,
            quantile,
            margin,
            output,
            source,
        } => {
            if let Some(path) = &output {
                manage::check_output(path)?;
            }
            manage::read(&source, async |api| {
                let output = output.as_deref();
                commands::refine::run(api, &source, &sweep, top, quantile, margin, output).await
            })
            .await
        }
        Command::LrFind {
            run,
            format,
            source,
        } => {
            manage::read(&source, async |api| {
                commands::lrfind::run(api, &run, format).await
            })
            .await
        }
        Command::Repeat {
            sweep,
            top,
            seeds,
            param,
            source,
        } => {
            let ask = commands::repeat::Ask { top, seeds, param };
            commands::repeat::repeat(&source, &sweep, &ask).await
        }
        Command::Noise {
            sweep,
            json,
            source,
        } => {
            manage::read(&source, async |api| {
                commands::repeat::noise(api, &source, &sweep, json).await
            })
            .await
        }
        Command::Export {
            sweep,
            format,
            output,
            source,
        } => {
            if let Some(path) = &output {
                manage::check_output(path)?;
            }
            manage::read(&source, async |api| {
                manage::export(api, &sweep, &format, output.as_deref()).await
            })
            .await
        }
        Command::Budget { sweep, source } => {
            manage::read(&source, async |api| {
                commands::budget::run(api, &sweep).await
            })
            .await
        }
        Command::Pause(a) => manage::act(&a.remote, &a.sweep, "pause").await,
        Command::Resume(a) => manage::act(&a.remote, &a.sweep, "resume").await,
        Command::Stop(a) => manage::act(&a.remote, &a.sweep, "stop").await,
        Command::Cancel(a) => manage::cancel(&a.remote, &a.id).await,
        Command::Retry {
            sweep,
            failed,
            crashed,
            cancelled,
            runs,
            remote,
        } => {
            let states: Vec<RunState> = [
                (failed, RunState::Failed),
                (crashed, RunState::Crashed),
                (cancelled, RunState::Cancelled),
            ]
            .into_iter()
            .filter_map(|(on, state)| on.then_some(state))
            .collect();
            manage::retry(&remote, &sweep, &states, &runs).await
        }
        Command::Run {
            project,
            name,
            wandb,
            remote,
            db,
            argv,
        } => {
            run::run(
                &remote,
                db.as_deref(),
                project.as_deref(),
                name.as_deref(),
                wandb,
                &argv,
            )
            .await
        }
        Command::Sync { dir, remote, db } => {
            let dir = dir.unwrap_or_else(sync::default_dir);
            sync::run(&remote, db.as_deref(), &dir).await
        }
        Command::Validate { file, json, seed } => commands::validate::run(&file, json, seed),
        Command::Debug { view } => commands::debug::run(view),
        Command::Space {
            file,
            grid,
            limit,
            sample,
            seed,
        } => commands::space::run(&file, space_listing(grid, limit, sample, seed)?),
    }
}

/// The listing `hyperdial space` was asked for.
fn space_listing(
    grid: bool,
    limit: u64,
    sample: Option<u64>,
    seed: u64,
) -> anyhow::Result<commands::space::Listing> {
    use commands::space::Listing;
    match (grid, sample) {
        (true, _) => Ok(Listing::Grid { limit }),
        (false, Some(count)) => Ok(Listing::Sample { count, seed }),
        (false, None) => anyhow::bail!("say what to list: --grid or --sample N"),
    }
}

/// Commands that only print (or make one request, then print) and start no child processes,
/// no server and no agent: `hyperdial runs | head -1` must end them quietly.
fn prints_only(command: &Command) -> bool {
    matches!(
        command,
        Command::Validate { .. }
            | Command::Debug { .. }
            | Command::Space { .. }
            | Command::Sweep { .. }
            | Command::Sweeps { .. }
            | Command::Runs { .. }
            | Command::Best { .. }
            | Command::Importance { .. }
            | Command::Output { .. }
            | Command::Refine { .. }
            | Command::LrFind { .. }
            | Command::Repeat { .. }
            | Command::Noise { .. }
            | Command::Export { .. }
            | Command::Budget { .. }
            | Command::Pause(_)
            | Command::Resume(_)
            | Command::Stop(_)
            | Command::Cancel(_)
            | Command::Retry { .. }
    )
}

/// A reader that closes the pipe early (`| head -1`) ends a printing command quietly, killed
/// by SIGPIPE (141 in a shell), as other Unix tools end. Rust ignores SIGPIPE, so `println!`
/// panics on the broken pipe instead; this hook catches exactly that panic (the message of
/// `println!`'s failed write to standard output with `Broken pipe`) and ends the process by
/// SIGPIPE. The disposition itself stays ignored while the command runs: restoring it for
/// the whole process would also kill a client whose vectored write (`writev`, which has no
/// `MSG_NOSIGNAL`) meets a server that closed its socket, silently, instead of printing why.
/// Installed only for the commands of [`prints_only`]; `tune`, `server`, `agent`, `run` and
/// `ui` supervise child processes or serve connections and print with [`outln!`], which drops
/// output to a closed pipe.
fn quiet_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            #[cfg(unix)]
            // SAFETY: restoring the default disposition of SIGPIPE and raising it ends the
            // process at once, which is what is wanted; no Rust state is touched afterwards.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            std::process::exit(141);
        }
        default_hook(info);
    }));
}

/// `bind` (`HOST:PORT`, `[V6]:PORT`) with its port replaced by `port`, when given.
fn with_port(bind: &str, port: Option<u16>) -> String {
    match (port, bind.rsplit_once(':')) {
        (Some(port), Some((host, _))) => format!("{host}:{port}"),
        (Some(port), None) => format!("{bind}:{port}"),
        (None, _) => bind.to_string(),
    }
}

fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) if err.chain().count() == 1 && err.downcast_ref::<Rendered>().is_some() => {
            eprintln!("{err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, joined by `: ` as `{:#}` joins them, less a cause whose text the
/// previous one already holds (sqlx's error repeats its SQLite error's text: "error returned
/// from database: (code: 14) unable to open database file", then that error itself).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !last.is_empty() && last.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_filter_keeps_sqlx_pool_warnings_out_unless_sqlx_is_named() {
        use super::{log_filter, DEFAULT_LOG};
        assert_eq!(log_filter(None), DEFAULT_LOG);
        assert_eq!(log_filter(Some("  ")), DEFAULT_LOG);
        assert_eq!(
            log_filter(Some("info")),
            "info,sqlx_core::pool=error,sqlx::pool=error"
        );
        assert_eq!(log_filter(Some("debug,sqlx=debug")), "debug,sqlx=debug");
        for value in ["info", "warn,hyperdial_server::requests=info"] {
            assert!(tracing_subscriber::EnvFilter::try_new(log_filter(Some(value))).is_ok());
        }
    }

    #[test]
    fn an_error_chain_says_a_cause_once() {
        let inner = anyhow::anyhow!("(code: 14) unable to open database file");
        let err = inner
            .context("error returned from database: (code: 14) unable to open database file")
            .context("cannot open the database x.db");
        assert_eq!(
            super::error_chain(&err),
            "cannot open the database x.db: error returned from database: (code: 14) unable to \
             open database file"
        );
    }

    use super::with_port;

    #[test]
    fn port_replaces_the_port_of_bind() {
        assert_eq!(with_port("127.0.0.1:8337", Some(9000)), "127.0.0.1:9000");
        assert_eq!(with_port("0.0.0.0:8337", Some(80)), "0.0.0.0:80");
        assert_eq!(with_port("[::1]:8337", Some(9000)), "[::1]:9000");
        assert_eq!(with_port("localhost", Some(9000)), "localhost:9000");
        assert_eq!(with_port("127.0.0.1:8337", None), "127.0.0.1:8337");
    }
}
