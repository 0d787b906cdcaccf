//! `hyperdial tune FILE`: the main job. An embedded server on the local SQLite store, the
//! sweep created (or resumed), N agents in this process, a progress display, and the best run
//! at the end.
//!
//! When the sweep is over, `tune` keeps serving the dashboard until Ctrl-C if standard output
//! is a terminal (`--keep-serving` asks for that anywhere); otherwise (scripts, CI, or
//! `--no-keep-serving`) it exits and prints the `hyperdial ui --db ...` command that serves the
//! same dashboard on the same store again. The read commands it suggests name the same store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_agent::{run_agent, AgentError, AgentOptions};
use hyperdial_space::grid;
use hyperdial_wire::api::CreateSweep;
use hyperdial_wire::{RunState, SweepState};
use serde_json::{json, Value};

use super::progress::Progress;
use super::signals::shutdown_levels;
use crate::api::Api;
use crate::commands::manage::read_sweep_file;
use crate::embedded::{default_db, Embedded, STATE_DIR};

/// Runs started by default when nothing else bounds the sweep.
pub const DEFAULT_COUNT: u64 = 20;

/// Arguments of `tune`.
pub struct TuneArgs {
    pub file: PathBuf,
    pub agents: u32,
    pub count: Option<u64>,
    /// Database location (see [`crate::embedded::default_db`]).
    pub db: Option<String>,
    pub port: u16,
    pub seed: Option<i64>,
    /// Start a fresh sweep even if one with this file's configuration exists.
    pub new: bool,
    /// Queue the failed and crashed runs of the file's sweep again (also when it finished).
    pub retry: bool,
    /// Put the W&B-compatible module first on every run's `PYTHONPATH`.
    pub wandb: bool,
    /// After the sweep, keep serving the dashboard until a termination signal.
    pub keep_serving: bool,
    /// The directory the runs start in; `None` for the sweep file's ([`run_dir`]).
    pub workdir: Option<PathBuf>,
    /// When its agents give up on a command that keeps failing (read from the environment).
    pub crash_guard: hyperdial_agent::CrashGuard,
}

/// How often `tune` looks whether its sweep was paused or resumed from elsewhere.
const PAUSE_LOOK: std::time::Duration = std::time::Duration::from_secs(2);

/// How the printed commands name the store `tune` used: `--db` as the user gave it (a
/// password in a URL hidden), `--db "$HYPERDIAL_DB"` when the environment named it, else the
/// default file's absolute path (so the command works from any directory).
fn db_arg(given: Option<&str>, resolved: &str) -> String {
    let from_env = std::env::var("HYPERDIAL_DB")
        .ok()
        .is_some_and(|v| !v.trim().is_empty() && v == resolved);
    match given {
        Some(db) => format!(
            "--db {}",
            super::validate::shell_quote(&hyperdial_wire::redact_url(db))
        ),
        None if from_env => "--db \"$HYPERDIAL_DB\"".to_string(),
        None => format!("--db {}", super::validate::shell_quote(resolved)),
    }
}

/// Why agents cannot run this sweep's runs at all (no `program` for `${program}`, an empty
/// interpreter), so `tune` and `agent` refuse up front instead of failing every run.
pub fn cannot_run(config: &hyperdial_space::SweepConfig) -> Option<String> {
    use hyperdial_space::command::{expand_config, CommandError};
    let env = |_: &str| Some(String::new());
    match expand_config(config, &[], Some(Path::new("args.json")), &env) {
        Err(e @ (CommandError::MissingProgram { .. } | CommandError::EmptyInterpreter { .. })) => {
            Some(e.to_string())
        }
        _ => None,
    }
}

/// The number of configurations of a finite search space (a grid, random search without
/// replacement, or `bayes`/`tpe` without `allow_repeats`), when it bounds the sweep. A space of more than 2^64 points cannot be
/// exhausted in practice: it is reported and treated like an unbounded one (`None`), so the
/// progress counts towards `--count` or `run_cap` instead of a number that does not fit.
fn finite_space(config: &hyperdial_space::SweepConfig) -> Option<u64> {
    // A continuous parameter makes `grid_size` fail below, so the space is unbounded.
    if !config.runs_each_configuration_once() {
        return None;
    }
    match grid::grid_size(&config.parameters) {
        Ok(n) => {
            match u64::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    outln!("the grid has {n} configurations (more than 2^64): it is not run to the end");
                    None
                }
            }
        }
        Err(grid::GridError::TooLarge) => {
            outln!("the grid has more than 2^128 configurations: it is not run to the end");
            None
        }
        Err(_) => None,
    }
}

/// Run the command.
pub async fn run(args: TuneArgs) -> Result<ExitCode> {
    let source = read_sweep_file(&args.file)?;
    let config = hyperdial_space::parse_str(&source, &args.file.display().to_string())
        .map_err(|e| crate::Rendered(e.render()))?
        .config;
    if let Some(why) = cannot_run(&config) {
        anyhow::bail!(
            "{}: agents cannot start its runs: {why}",
            args.file.display()
        );
    }
    // The runs start in the sweep file's directory (or --workdir): a program missing there
    // would fail every run (each counting toward `run_cap`), so it is said before the sweep
    // is created.
    let run_dir = run_dir(&args)?;
    if let Some(program) = hyperdial_space::command::script_program(&config) {
        if !run_dir.join(program).exists() {
            let meant = super::validate::near_file(&run_dir, program)
                .map(|f| format!(" (did you mean `{f}`?)"))
                .unwrap_or_default();
            let (which, fix) = match &args.workdir {
                Some(_) => ("--workdir", "give the directory that holds it"),
                None => (
                    "the sweep file's directory",
                    "put the program there, run the sweep from the program's directory with \
                     `--workdir DIR`",
                ),
            };
            anyhow::bail!(
                "{}: its program `{program}` is not in {}, {which}, where tune runs the \
                 sweep's command: {fix}, or fix `program:`{meant}",
                args.file.display(),
                run_dir.display()
            );
        }
    }
    let cwd = std::env::current_dir()?;
    let state_dir = cwd.join(STATE_DIR);
    let db = args.db.clone().unwrap_or_else(|| default_db(&state_dir));
    let db_arg = db_arg(args.db.as_deref(), &db);
    let mut server = Embedded::start(&db, args.port).await?;
    if db == default_db(&state_dir) {
        server.advertise(&state_dir);
    }
    let api = Api::new(&server.url(), None);
    let mut shutdown = shutdown_levels("tune");
    let dirs = Dirs {
        state: &state_dir,
        run: &run_dir,
    };
    let result = drive(&args, &api, &source, &config, dirs, &db_arg, &shutdown).await;
    let reopen = format!("hyperdial ui {db_arg}");
    match &result {
        Ok(driven) if driven.served && args.keep_serving && *shutdown.borrow() < 2 => {
            super::signals::runs_over();
            outln!(
                "the dashboard stays up at {}/ until Ctrl-C (later: `{reopen}`)",
                server.url()
            );
            let _ = shutdown.wait_for(|level| *level >= 2).await;
        }
        Ok(driven) if driven.served => {
            outln!("tune has stopped serving the dashboard; open it again with `{reopen}`")
        }
        _ => {}
    }
    server.stop().await;
    result.map(|driven| driven.code)
}

/// The directory tune's agents run the sweep's command in: `--workdir` (which must be a
/// directory), else the sweep file's.
fn run_dir(args: &TuneArgs) -> Result<PathBuf> {
    match &args.workdir {
        Some(dir) => dir
            .canonicalize()
            .ok()
            .filter(|d| d.is_dir())
            .with_context(|| format!("--workdir {}: no such directory", dir.display())),
        None => Ok(args
            .file
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))),
    }
}

/// How [`drive`] ended: its exit code, and whether it ran the sweep (so served its
/// dashboard) or only reported a sweep that had finished before.
struct Driven {
    code: ExitCode,
    served: bool,
}

impl Driven {
    fn ran(code: ExitCode) -> Driven {
        Driven { code, served: true }
    }

    fn reported() -> Driven {
        Driven {
            code: ExitCode::SUCCESS,
            served: false,
        }
    }
}

/// Where [`drive`]'s agents keep their state, and where they run the sweep's command.
#[derive(Clone, Copy)]
struct Dirs<'a> {
    state: &'a Path,
    run: &'a Path,
}

async fn drive(
    args: &TuneArgs,
    api: &Api,
    source: &str,
    config: &hyperdial_space::SweepConfig,
    dirs: Dirs<'_>,
    db_arg: &str,
    shutdown: &tokio::sync::watch::Receiver<u8>,
) -> Result<Driven> {
    let file = args.file.display().to_string();
    let resume = !args.new;
    let mut sweep = api
        .post(
            "/api/v1/sweeps",
            &CreateSweep {
                source: source.to_string(),
                config: None,
                project: None,
                file: Some(file.clone()),
                resume,
                resume_finished: resume,
                seed: args.seed,
            },
        )
        .await?;
    let id = sweep["id"]
        .as_str()
        .context("the server returned no sweep id")?
        .to_string();
    let finished = sweep["resumed"] == true
        && sweep["state"].as_str().and_then(|s| s.parse().ok()) == Some(SweepState::Finished);
    if args.retry {
        let done = api
            .post(&format!("/api/v1/sweeps/{id}/retry"), &json!({}))
            .await?;
        let n = done["retried"].as_array().map_or(0, Vec::len);
        if n == 0 && finished {
            outln!("sweep {id} (this file's configuration) is finished and has no failed or crashed runs to retry");
            report_finished(api, &id, &sweep, config, &file, db_arg, args.db.is_some()).await?;
            return Ok(Driven::reported());
        }
        outln!("sweep {id}: {n} failed or crashed runs queued again");
        let resumed = sweep["resumed"].clone();
        sweep = api.get(&format!("/api/v1/sweeps/{id}")).await?;
        sweep["resumed"] = resumed;
    } else if finished {
        report_finished(api, &id, &sweep, config, &file, db_arg, args.db.is_some()).await?;
        return Ok(Driven::reported());
    }
    let queued = sweep["counts"][RunState::Queued.as_str()]
        .as_u64()
        .unwrap_or(0);
    // Configurations tried so far: a retried run and its retries are one.
    let existing = sweep["total_runs"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(sweep["retries"].as_u64().unwrap_or(0));
    if sweep["resumed"] == true {
        let retries = if queued > 0 {
            format!(", {queued} queued to run again")
        } else {
            String::new()
        };
        // The runs made so far, the queued retries not yet among them.
        let made = sweep["total_runs"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(queued);
        let tried = match (existing, made) {
            (1, 1) => "1 run so far".to_string(),
            (e, m) if m > e => format!("{e} configurations tried in {m} runs"),
            (e, _) => format!("{e} runs so far"),
        };
        outln!("resuming sweep {id} ({tried}{retries})");
        // Failed and crashed runs are not run again by resuming (a script fixed since, a
        // missing `--wandb`): say how, since nothing else would.
        let retryable = sweep["retryable"].as_u64().unwrap_or(0);
        if retryable > 0 && !args.retry {
            let db = if args.db.is_some() {
                format!(" {db_arg}")
            } else {
                String::new()
            };
            let (n, s, are, them) = match retryable {
                1 => (1, "", "is", "it"),
                n => (n, "s", "are", "them"),
            };
            outln!(
                "  its {n} failed or crashed run{s} {are} not run again; `hyperdial tune {file}{db} --retry` runs {them} again with the same configuration{s}"
            );
        }
    } else {
        outln!(
            "created sweep {id} ({} search, seed {})",
            config.method.as_str(),
            sweep["seed"]
        );
        if resume {
            if let Some(note) = edited_note(api, &sweep, &file).await {
                outln!("{note}");
            }
        }
    }
    if let Some(rule) = &config.early_terminate {
        outln!(
            "early termination: {}; runs that fall behind are stopped (state stopped_early)",
            super::validate::early_terminate_text(rule)
        );
    }
    let dashboard = format!("{}/sweeps/{id}", api.base());
    outln!("dashboard: {dashboard}");

    // How many runs this invocation starts.
    let remaining_space = finite_space(config).map(|n| n.saturating_sub(existing));
    let remaining_cap = config.run_cap.map(|c| c.saturating_sub(existing));
    // A sweep reopened for its retries starts nothing new once they are done.
    let retries_only = (sweep["retries_only"] == true).then_some(0);
    let bound = [remaining_space, remaining_cap, retries_only]
        .into_iter()
        .flatten()
        .min()
        .map(|b| b + queued);
    let count = match (args.count, bound) {
        (Some(c), _) => Some(c),
        (None, Some(_)) => None,
        // A budget ends the sweep (wall time, run-hours, stagnation).
        (None, None) if config.budget.is_some() => {
            outln!("the sweep has no run_cap: running until its budget ends it");
            None
        }
        (None, None) => {
            outln!("the sweep has no run_cap: starting {DEFAULT_COUNT} runs (set --count or run_cap for more)");
            Some(DEFAULT_COUNT)
        }
    };
    let total = match (count, bound) {
        (Some(c), Some(b)) => Some(c.min(b)),
        (Some(c), None) => Some(c),
        (None, b) => b,
    };
    if total == Some(0) {
        outln!("nothing left to run: the sweep is complete");
    }

    let metric = config.metric.as_ref().map(|m| (m.name.clone(), m.goal));
    let already = sweep["best"]["value"]
        .as_f64()
        .zip(sweep["best"]["number"].as_i64());
    let mut progress = Progress::new(metric, total, already);
    // A resumed sweep counts on from the configurations already settled (those queued to
    // run again are in `total`).
    progress.start_after(existing.saturating_sub(queued));
    if config.is_multi_objective() {
        progress.objectives = config.objectives().into_iter().map(|m| m.name).collect();
    }
    progress.summary_follows = true;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let agents = args.agents.max(1) as u64;
    let mut tasks = Vec::new();
    for i in 0..agents {
        // Split an explicit count across agents; the first ones take the remainder.
        let share = count.map(|c| c / agents + u64::from(i < c % agents));
        if share == Some(0) {
            continue;
        }
        let mut opts = AgentOptions::new(api.base(), id.clone());
        opts.count = share;
        opts.cwd = dirs.run.to_path_buf();
        opts.state_dir = dirs.state.to_path_buf();
        opts.reaper = super::signals::reaper();
        opts.wandb = args.wandb;
        opts.crash_guard = args.crash_guard;
        // `runs` and `output` read a store named with --db only when told; `sync` writes
        // the default store when no server answers.
        if args.db.is_some() {
            opts.hints.read = format!(" {db_arg}");
        }
        tasks.push(tokio::spawn(run_agent(opts, tx.clone(), shutdown.clone())));
    }
    drop(tx);
    progress.best_from_sweep = true;
    // Said once, at the first run that finishes without the metric but logged others.
    let mut metric_warned = config.is_multi_objective() || config.metric.is_none();
    // Paused or resumed from elsewhere (`hyperdial pause`, the dashboard): the sweep's state
    // is looked at every few seconds while events come, and a change is said.
    let mut paused = false;
    let mut look = tokio::time::interval(PAUSE_LOOK);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = rx.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = look.tick() => {
                let state = api
                    .get(&format!("/api/v1/sweeps/{id}"))
                    .await
                    .ok()
                    .and_then(|s| s["state"].as_str()?.parse::<SweepState>().ok());
                match state {
                    Some(SweepState::Paused) if !paused => {
                        paused = true;
                        progress.note(format!(
                            "sweep {id} is paused: runs in flight finish, no run starts until \
                             `hyperdial resume {id}`"
                        ));
                    }
                    Some(SweepState::Running) if paused => {
                        paused = false;
                        progress.note(format!("sweep {id} resumed"));
                    }
                    // Ended while paused: the summary says how.
                    Some(s) if s != SweepState::Paused => paused = false,
                    _ => {}
                }
                continue;
            }
        };
        if paused && matches!(event, hyperdial_agent::Event::Claimed { .. }) {
            // Resumed since the last look: said before the run it started.
            paused = false;
            progress.note(format!("sweep {id} resumed"));
        }
        let mut warning = None;
        if let hyperdial_agent::Event::Finished {
            run, state, metric, ..
        } = &event
        {
            progress.set_best(sweep_best(api, &id).await);
            if !metric_warned && metric.is_none() && *state == RunState::Finished {
                if let Some(name) = config.metric.as_ref().map(|m| m.name.as_str()) {
                    warning = missing_metric_warning(api, run, name).await;
                    metric_warned = warning.is_some();
                }
            }
        }
        progress.interrupted = *shutdown.borrow() >= 1;
        progress.event(event);
        if let Some(w) = warning {
            progress.event(hyperdial_agent::Event::Message(w));
        }
    }
    progress.finish();
    let mut crash_loop = None;
    for t in tasks {
        match t.await {
            Ok(Ok(_)) => {}
            Ok(Err(e @ (AgentError::CrashLoop { .. } | AgentError::WandbModule { .. }))) => {
                crash_loop = Some(e.to_string())
            }
            Ok(Err(e)) => eprintln!("agent stopped: {e}"),
            Err(e) => eprintln!("agent task failed: {e}"),
        }
    }

    let sweep = api.get(&format!("/api/v1/sweeps/{id}")).await?;
    let retries = match sweep["retries"].as_u64().unwrap_or(0) {
        0 => String::new(),
        1 => " (1 run was a retry)".to_string(),
        n => format!(" ({n} runs were retries)"),
    };
    outln!(
        "sweep {id} is {}: {}{retries}",
        super::budget::state_word(&sweep),
        counts_text(&sweep["counts"])
    );
    // Runs with a result (`finished` or `stopped_early`), and those that failed or crashed.
    let count = |state: &str| sweep["counts"][state].as_u64().unwrap_or(0);
    let results = count("finished") + count("stopped_early");
    let no_result = if config.is_multi_objective() {
        super::front::best(api, &id, "yaml").await?;
        None
    } else if crash_loop.is_some() && results == 0 {
        // The agents stopped on a command that cannot work: its error below says why, and
        // "no run reported the metric" would point the wrong way.
        None
    } else {
        // The read commands default to this store here; else they need the --db given.
        let flags = if args.db.is_none() && !db_arg.contains("$HYPERDIAL_DB") {
            String::new()
        } else {
            format!(" {db_arg}")
        };
        print_sweep_best(api, &id, config, &flags).await
    };
    if args.keep_serving {
        outln!("dashboard: {dashboard}");
    } else {
        // Served until tune exits, which is now: say so, next to the link.
        outln!("dashboard: {dashboard} (until tune exits; then `hyperdial ui {db_arg}`)");
    }
    if args.db.is_none() && !db_arg.contains("$HYPERDIAL_DB") {
        // The read commands default to this store in this directory.
        outln!(
            "more: hyperdial runs {id} · hyperdial best {id} · hyperdial export {id}  (from another directory add {db_arg})"
        );
    } else {
        outln!("more: hyperdial runs {id} {db_arg} · hyperdial best {id} {db_arg}");
    }
    if let Some(message) = crash_loop {
        eprintln!("error: {message}");
        return Ok(Driven::ran(ExitCode::from(1)));
    }
    // Stopped by a signal before the sweep was over: say how to go on, and exit as a shell
    // reports a process that signal ended (130 for Ctrl-C), so `tune … && next` stops here.
    let over = sweep["state"]
        .as_str()
        .and_then(|word| word.parse::<hyperdial_wire::SweepState>().ok())
        .is_some_and(hyperdial_wire::SweepState::is_over);
    if let (Some(signal), false) = (super::signals::interrupted_by(), over) {
        let db = if args.db.is_some() {
            format!(" {db_arg}")
        } else {
            String::new()
        };
        outln!(
            "interrupted: `hyperdial tune {}{db}` resumes the sweep",
            args.file.display()
        );
        return Ok(Driven::ran(ExitCode::from(128 + signal)));
    }
    // Runs ended, and not one with a result: `tune … && next` must not go on as if the sweep
    // had found something.
    if results == 0 && count("failed") + count("crashed") > 0 {
        let reach = if args.db.is_some() {
            format!(" {db_arg}")
        } else {
            String::new()
        };
        eprintln!(
            "error: no run of sweep {id} finished ({}); `hyperdial runs {id}{reach}` shows why \
             each ended, `hyperdial output RUN{reach}` what it printed",
            counts_text(&sweep["counts"])
        );
        return Ok(Driven::ran(ExitCode::from(1)));
    }
    // Runs finished, and not one reported the sweep's metric (a misspelt name, a script that
    // logs under another): there is no best run, so no result either.
    if let (Some(metric), true) = (no_result, results > 0) {
        eprintln!(
            "error: no run of sweep {id} reported its metric '{metric}', so the sweep has no \
             best run; fix `metric.name` in {} or the name the script logs it under",
            args.file.display()
        );
        return Ok(Driven::ran(ExitCode::from(1)));
    }
    Ok(Driven::ran(ExitCode::SUCCESS))
}

/// When `tune FILE` made a new sweep although the project holds sweeps of the same file (or
/// name): the file was edited since (an edited configuration is a new sweep), and the earlier
/// sweep's runs do not count in this one. Says so, naming the newest of them; `None` when
/// there is none (or the list cannot be read).
async fn edited_note(api: &Api, created: &Value, file: &str) -> Option<String> {
    let project = created["project"].as_str()?;
    let listed = api
        .get(&format!(
            "/api/v1/sweeps?project={}",
            super::manage::urlencode(project)
        ))
        .await
        .ok()?;
    let id = created["id"].as_str()?;
    let name = created["name"].as_str();
    let earlier = listed["sweeps"].as_array()?.iter().find(|s| {
        s["id"].as_str() != Some(id)
            && (s["file"].as_str() == Some(file) || (name.is_some() && s["name"].as_str() == name))
    })?;
    let other = earlier["id"].as_str()?;
    let runs = earlier["total_runs"].as_u64().unwrap_or(0);
    Some(format!(
        "note: sweep {other} ({}, {runs} run{}) came from this file before it was edited; an \
         edited configuration is a new sweep, which starts from its first run (`hyperdial runs \
         {other}` shows the earlier runs; the file as it was finds that sweep again)",
        earlier["state"].as_str().unwrap_or("?"),
        if runs == 1 { "" } else { "s" },
    ))
}

/// Say that the file's sweep is over, show its result and what can be done next.
async fn report_finished(
    api: &Api,
    id: &str,
    sweep: &Value,
    config: &hyperdial_space::SweepConfig,
    file: &str,
    db_arg: &str,
    db_given: bool,
) -> Result<()> {
    let retries = sweep["retries"].as_u64().unwrap_or(0);
    let failed = sweep["retryable"].as_u64().unwrap_or(0);
    // The counts are of every attempt: say how many runs were retries and how many failed or
    // crashed runs still have no retry, so "2 failed" next to "nothing to retry" adds up.
    let attempts = if retries > 0 {
        let were = if retries == 1 {
            "1 of these runs was a retry".to_string()
        } else {
            format!("{retries} of these runs were retries")
        };
        let not_retried = if failed == 1 {
            "1 failed or crashed run not retried".to_string()
        } else {
            format!("{failed} failed or crashed runs not retried")
        };
        format!(" ({were}; {not_retried})")
    } else {
        String::new()
    };
    outln!(
        "sweep {id} with this file's configuration is {}: {}{attempts}",
        super::budget::state_word(sweep),
        counts_text(&sweep["counts"])
    );
    if config.is_multi_objective() {
        super::front::best(api, id, "yaml").await?;
    } else {
        let flags = if db_given {
            format!(" {db_arg}")
        } else {
            String::new()
        };
        print_sweep_best(api, id, config, &flags).await;
    }
    outln!("what next:");
    // The same store: `tune` repeats a --db given; `retry` reads only the default store.
    let (db, or_retry) = if db_given {
        (format!(" {db_arg}"), String::new())
    } else {
        (
            String::new(),
            format!(" (or `hyperdial retry {id}`, then tune)"),
        )
    };
    if failed > 0 {
        outln!("  hyperdial tune {file}{db} --retry   run its {failed} failed or crashed runs again{or_retry}");
    }
    outln!("  hyperdial tune {file}{db} --new     start a fresh sweep of the same file");
    outln!("  hyperdial runs {id} {db_arg}   every run of it");
    // This server lives only as long as tune: the command that serves the dashboard later.
    outln!("  hyperdial ui {db_arg}   its dashboard (the page /sweeps/{id})");
    Ok(())
}

/// Print the sweep's best run, or that no run reported the metric (with the names the runs
/// did log, and the one meant when the metric's name is a near miss of one). Returns the
/// metric's name when the sweep has one and no run has it as a result. `flags`: the options
/// (each with a leading space) a suggested read command needs to read this store.
async fn print_sweep_best(
    api: &Api,
    id: &str,
    config: &hyperdial_space::SweepConfig,
    flags: &str,
) -> Option<String> {
    match api.get(&format!("/api/v1/sweeps/{id}/best")).await {
        Ok(best) => {
            print_best(&best["run"], config);
            let metric = config.metric.as_ref().map_or("metric", |m| m.name.as_str());
            if let Some(line) =
                super::manage::estimate_said(api, id, &best["run"], metric, flags).await
            {
                outln!("{line}");
            }
            None
        }
        Err(e) => match config.metric.as_ref() {
            Some(m) => {
                let logged = logged_names(api, id).await;
                outln!("{}", no_metric_text(&m.name, &logged));
                // The server said there is no best run (not that it could not be asked).
                let none = e
                    .downcast_ref::<crate::api::HttpError>()
                    .is_some_and(|h| h.status == 404);
                none.then(|| m.name.clone())
            }
            None => {
                let logged = logged_names(api, id).await;
                let said = if logged.is_empty() {
                    String::new()
                } else {
                    format!(" (the runs logged {})", logged.join(", "))
                };
                outln!(
                    "the sweep has no `metric`, so no run is the best one; to rank the runs, add \
                     `metric: {{name: NAME, goal: minimize}}` (or `maximize`) to the sweep file{said}"
                );
                None
            }
        },
    }
}

/// Most runs whose summaries [`logged_names`] reads.
const NAMES_FROM_RUNS: u32 = 200;

/// The metric names the sweep's runs logged (the keys of their summaries, which hold the last
/// value of every metric a run logged; `_`-prefixed bookkeeping keys left out), sorted; empty
/// when they cannot be read.
async fn logged_names(api: &Api, sweep: &str) -> Vec<String> {
    let Ok(runs) = api
        .get(&format!(
            "/api/v1/runs?sweep={}&limit={NAMES_FROM_RUNS}",
            super::manage::urlencode(sweep)
        ))
        .await
    else {
        return Vec::new();
    };
    let names: std::collections::BTreeSet<String> = runs["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(summary_names)
        .collect();
    names.into_iter().collect()
}

/// The metric names in a run's summary, `_`-prefixed bookkeeping keys left out.
fn summary_names(run: &Value) -> Vec<String> {
    run["summary"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| !k.starts_with('_'))
        .collect()
}

/// `no run reported the metric 'val_los'; the runs logged train_loss, val_loss: did you mean
/// val_loss?`: what the closing summary says when no run has the sweep's metric, `logged`
/// being the names the runs did log ([`logged_names`]).
fn no_metric_text(metric: &str, logged: &[String]) -> String {
    if logged.iter().any(|n| n == metric) {
        // Runs did report it, but none of them counts as a result (`best_run`).
        return format!(
            "no run ended with the metric '{metric}': only runs that ended finished or \
             stopped early count as results (the runs that reported it were cancelled, failed \
             or crashed, or are still running)"
        );
    }
    format!(
        "no run reported the metric '{metric}'{}",
        logged_hint(metric, logged)
    )
}

/// `; the runs logged a, b: did you mean a?` (or how to fix the file when no name is close),
/// empty when the runs logged nothing else or did log `metric`.
fn logged_hint(metric: &str, logged: &[String]) -> String {
    if logged.is_empty() || logged.iter().any(|n| n == metric) {
        return String::new();
    }
    const SHOWN: usize = 8;
    let mut list = logged
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if logged.len() > SHOWN {
        list.push_str(&format!(" and {} more", logged.len() - SHOWN));
    }
    let candidates: Vec<&str> = logged.iter().map(String::as_str).collect();
    match hyperdial_space::diagnostic::did_you_mean(metric, &candidates) {
        Some(near) => format!(
            "; the runs logged {list}: did you mean {near}? (set `metric: {{name: {near}}}` in \
             the sweep file)"
        ),
        None => format!(
            "; the runs logged {list}: the sweep file's `metric.name` must be one of the names \
             the script logs"
        ),
    }
}

/// The warning shown when the first run finishes without the sweep's metric `metric` but with
/// other metrics (a misspelt `metric.name`, most likely), so a long sweep is not run to its
/// end for nothing; `None` when the run logged nothing (or the metric after all), or cannot
/// be read.
async fn missing_metric_warning(api: &Api, run: &str, metric: &str) -> Option<String> {
    let r = api
        .get(&format!("/api/v1/runs/{}", super::manage::urlencode(run)))
        .await
        .ok()?;
    let mut logged = summary_names(&r);
    logged.sort();
    let hint = logged_hint(metric, &logged);
    if hint.is_empty() {
        return None;
    }
    Some(format!(
        "warning: run #{} finished without reporting the metric '{metric}'{hint}",
        r["number"]
    ))
}

/// How long the progress line waits for the sweep's best run ([`sweep_best`]).
const BEST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The sweep's best run as (metric, number), as the server computes it (the best is the
/// sweep's, over every agent's runs, and follows its state rule); `None` when there is none
/// yet or the server does not answer within [`BEST_WAIT`].
pub async fn sweep_best(api: &Api, id: &str) -> Option<(f64, i64)> {
    // Only the progress line waits for it: a server that does not answer at once leaves the
    // best shown before, rather than holding up an agent that is reporting or stopping.
    let best = tokio::time::timeout(
        BEST_WAIT,
        api.get(&format!(
            "/api/v1/sweeps/{}/best",
            super::manage::urlencode(id)
        )),
    )
    .await
    .ok()?
    .ok()?;
    best["run"]["metric"]
        .as_f64()
        .zip(best["run"]["number"].as_i64())
}

/// `3 finished, 1 failed`: the non-zero counts of a Sweep's `counts`.
fn counts_text(counts: &Value) -> String {
    let parts: Vec<String> = counts
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if parts.is_empty() {
        "no runs".to_string()
    } else {
        parts.join(", ")
    }
}

fn print_best(run: &Value, config: &hyperdial_space::SweepConfig) {
    let metric = config
        .metric
        .as_ref()
        .map(|m| m.name.as_str())
        .unwrap_or("metric");
    outln!(
        "best run: #{} ({}) with {metric} = {}",
        run["number"],
        run["id"].as_str().unwrap_or("?"),
        run["metric"]
            .as_f64()
            .map_or_else(|| run["metric"].to_string(), super::number::metric)
    );
    for p in &config.parameters {
        if let Some(v) = run["params"].get(&p.name) {
            outln!("  {} = {}", p.name, hyperdial_space::command::python_str(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misnamed_metric_gets_the_name_the_runs_logged() {
        let logged = vec!["train_loss".to_string(), "val_loss".to_string()];
        assert_eq!(
            no_metric_text("val_los", &logged),
            "no run reported the metric 'val_los'; the runs logged train_loss, val_loss: did \
             you mean val_loss? (set `metric: {name: val_loss}` in the sweep file)"
        );
        assert!(no_metric_text("accuracy", &logged).ends_with(
            "the runs logged train_loss, val_loss: the sweep file's `metric.name` must be one \
             of the names the script logs"
        ));
        // Nothing logged, or the metric logged (the runs failed before finishing): no hint.
        assert_eq!(
            no_metric_text("val_los", &[]),
            "no run reported the metric 'val_los'"
        );
        assert_eq!(
            logged_hint("val_loss", &logged),
            "",
            "the metric was logged"
        );
        // Logged by runs none of which ended as a result (cancelled by Ctrl-C, say): not
        // "no run reported" it.
        let said = no_metric_text("val_loss", &logged);
        assert!(
            said.starts_with("no run ended with the metric 'val_loss':")
                && said.contains("cancelled, failed or crashed"),
            "{said}"
        );
    }
}
