//! `hyperdial tune FILE`: the main job. An embedded server on the local SQLite store, the
//! sweep created (or resumed), N agents in this process, a progress display, and the best run
//! at the end.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_agent::{run_agent, AgentError, AgentOptions};
use hyperdial_space::{grid, Method};
use serde_json::{json, Value};

use super::progress::{ctrl_c_levels, Progress};
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
    pub db: Option<PathBuf>,
    pub port: u16,
    pub seed: Option<i64>,
}

/// The number of configurations of a finite search space (a grid, or random search without
/// replacement), when it bounds the sweep. A space of more than 2^64 points cannot be
/// exhausted in practice: it is reported and treated like an unbounded one (`None`), so the
/// progress counts towards `--count` or `run_cap` instead of a number that does not fit.
fn finite_space(config: &hyperdial_space::SweepConfig) -> Option<u64> {
    let finite = match config.method {
        Method::Grid => true,
        Method::Random => config.sample_without_replacement,
        _ => false,
    };
    if !finite {
        return None;
    }
    match grid::grid_size(&config.parameters) {
        Ok(n) => {
            match u64::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    println!("the grid has {n} configurations (more than 2^64): it is not run to the end");
                    None
                }
            }
        }
        Err(grid::GridError::TooLarge) => {
            println!("the grid has more than 2^128 configurations: it is not run to the end");
            None
        }
        Err(_) => None,
    }
}

/// Run the command.
pub async fn run(args: TuneArgs) -> Result<ExitCode> {
    let source = read_sweep_file(&args.file)?;
    let config = hyperdial_space::parse_str(&source, &args.file.display().to_string())
        .map_err(|e| anyhow::anyhow!("{}", e.render()))?
        .config;
    let cwd = std::env::current_dir()?;
    let state_dir = cwd.join(STATE_DIR);
    let db = args.db.clone().unwrap_or_else(|| default_db(&state_dir));
    let server = Embedded::start(&db, args.port).await?;
    let api = Api::new(&server.url(), None);
    let result = drive(&args, &api, &source, &config, &state_dir).await;
    server.stop().await;
    result
}

async fn drive(
    args: &TuneArgs,
    api: &Api,
    source: &str,
    config: &hyperdial_space::SweepConfig,
    state_dir: &Path,
) -> Result<ExitCode> {
    let file = args.file.display().to_string();
    let sweep = api
        .post(
            "/api/v1/sweeps",
            &json!({"source": source, "file": file, "resume": true, "seed": args.seed}),
        )
        .await?;
    let id = sweep["id"]
        .as_str()
        .context("the server returned no sweep id")?
        .to_string();
    let existing = sweep["total_runs"].as_u64().unwrap_or(0);
    if sweep["resumed"] == true {
        println!("resuming sweep {id} ({existing} runs so far)");
    } else {
        println!(
            "created sweep {id} ({} search, seed {})",
            config.method.as_str(),
            sweep["seed"]
        );
    }
    if config.early_terminate.is_some() {
        println!("note: this version records `early_terminate` but does not stop runs early yet");
    }
    let dashboard = format!("{}/sweeps/{id}", api.base());
    println!("dashboard: {dashboard}");

    // How many runs this invocation starts.
    let remaining_space = finite_space(config).map(|n| n.saturating_sub(existing));
    let remaining_cap = config.run_cap.map(|c| c.saturating_sub(existing));
    let bound = [remaining_space, remaining_cap].into_iter().flatten().min();
    let count = match (args.count, bound) {
        (Some(c), _) => Some(c),
        (None, Some(_)) => None,
        (None, None) => {
            println!("the sweep has no run_cap: starting {DEFAULT_COUNT} runs (set --count or run_cap for more)");
            Some(DEFAULT_COUNT)
        }
    };
    let total = match (count, bound) {
        (Some(c), Some(b)) => Some(c.min(b)),
        (Some(c), None) => Some(c),
        (None, b) => b,
    };
    if total == Some(0) {
        println!("nothing left to run: the sweep is complete");
    }

    let metric = config.metric.as_ref().map(|m| (m.name.clone(), m.goal));
    let already = sweep["best"]["value"]
        .as_f64()
        .zip(sweep["best"]["number"].as_i64());
    let mut progress = Progress::new(metric, total, already);
    let shutdown = ctrl_c_levels();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let agents = args.agents.max(1) as u64;
    let run_dir = args
        .file
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut tasks = Vec::new();
    for i in 0..agents {
        // Split an explicit count across agents; the first ones take the remainder.
        let share = count.map(|c| c / agents + u64::from(i < c % agents));
        if share == Some(0) {
            continue;
        }
        let mut opts = AgentOptions::new(api.base(), id.clone());
        opts.count = share;
        opts.cwd = run_dir.clone();
        opts.state_dir = state_dir.to_path_buf();
        tasks.push(tokio::spawn(run_agent(opts, tx.clone(), shutdown.clone())));
    }
    drop(tx);
    while let Some(event) = rx.recv().await {
        progress.event(event);
    }
    progress.finish();
    let mut crash_loop = None;
    for t in tasks {
        match t.await {
            Ok(Ok(_)) => {}
            Ok(Err(e @ AgentError::CrashLoop { .. })) => crash_loop = Some(e.to_string()),
            Ok(Err(e)) => eprintln!("agent stopped: {e}"),
            Err(e) => eprintln!("agent task failed: {e}"),
        }
    }

    let sweep = api.get(&format!("/api/v1/sweeps/{id}")).await?;
    let counts = &sweep["counts"];
    let summary: Vec<String> = counts
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    println!(
        "sweep {id} is {}: {}",
        sweep["state"].as_str().unwrap_or("?"),
        summary.join(", ")
    );
    match api.get(&format!("/api/v1/sweeps/{id}/best")).await {
        Ok(best) => print_best(&best["run"], config),
        Err(_) => println!(
            "no run reported the metric{}",
            config
                .metric
                .as_ref()
                .map(|m| format!(" `{}`", m.name))
                .unwrap_or_default()
        ),
    }
    println!("dashboard: {dashboard}  (served while tune runs; afterwards run `hyperdial server` and open it)");
    println!("more: hyperdial runs {id} · hyperdial best {id} · hyperdial export {id}  (with `hyperdial server` running)");
    if let Some(message) = crash_loop {
        eprintln!("error: {message}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_best(run: &Value, config: &hyperdial_space::SweepConfig) {
    let metric = config
        .metric
        .as_ref()
        .map(|m| m.name.as_str())
        .unwrap_or("metric");
    println!(
        "best run: #{} ({}) with {metric} = {}",
        run["number"],
        run["id"].as_str().unwrap_or("?"),
        run["metric"]
    );
    for p in &config.parameters {
        if let Some(v) = run["params"].get(&p.name) {
            println!("  {} = {}", p.name, hyperdial_space::command::python_str(v));
        }
    }
}
