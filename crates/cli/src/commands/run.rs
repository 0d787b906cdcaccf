//! `hyperdial run -- CMD ARGS...`: track a run of any command — argv, exit code, metrics it
//! prints or sends, captured output, host, git commit and dirtiness, timings. Uses the server
//! at `--server` when one answers, else an embedded one on the local database.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_agent::{install_python_client, supervise, Client, NewRun, SuperviseOptions};

use super::progress::ctrl_c_levels;
use crate::embedded::{default_db, Embedded, STATE_DIR};
use crate::Remote;

/// The commit of the git tree around `dir` and whether it has uncommitted changes.
pub fn git_state(dir: &Path) -> (Option<String>, Option<bool>) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"]);
    let dirty = commit
        .as_ref()
        .and_then(|_| run(&["status", "--porcelain"]))
        .map(|s| !s.is_empty());
    (commit, dirty)
}

/// Run the command.
pub async fn run(
    remote: &Remote,
    project: &str,
    name: Option<&str>,
    argv: &[String],
) -> Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let state_dir = cwd.join(STATE_DIR);
    let api = remote.api();
    let embedded = if api.reachable().await {
        None
    } else {
        Some(Embedded::start(&default_db(&state_dir), 0).await?)
    };
    let (server, token) = match &embedded {
        Some(e) => (e.url(), None),
        None => (remote.server.clone(), remote.token.clone()),
    };
    let client = Client::new(&server, token);
    let (git_commit, git_dirty) = git_state(&cwd);
    let run = client
        .create_run(&NewRun {
            project: Some(project.to_string()),
            name: name.map(str::to_string),
            config: None,
            argv: Some(argv.to_vec()),
            host: Some(hyperdial_agent::hostname()),
            git_commit,
            git_dirty,
        })
        .await
        .context("cannot create the run")?;
    let id = run["id"]
        .as_str()
        .context("the server returned no run id")?
        .to_string();
    eprintln!("hyperdial: tracking run {id} ({server}/runs/{id})");
    let opts = SuperviseOptions {
        python_path: install_python_client(&state_dir).ok(),
        echo: true,
        spill_dir: Some(state_dir.join("offline")),
        ..SuperviseOptions::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let outcome = supervise(&client, &id, argv, &[], &cwd, &opts, &tx, ctrl_c_levels()).await;
    drop(tx);
    drain.await.ok();
    eprintln!(
        "hyperdial: run {id} {} in {:.1}s{}",
        outcome.state,
        outcome.duration.as_secs_f64(),
        outcome
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    if outcome.points_missing > 0 {
        eprintln!(
            "hyperdial: {} metric points of run {id} did not reach the server; they are kept in {}: upload them with `hyperdial sync`",
            outcome.points_missing,
            state_dir.join("offline").display()
        );
    }
    if let Some(e) = embedded {
        e.stop().await;
    }
    // Exit as the command did, so `hyperdial run` fits in scripts.
    let code = match (outcome.exit_code, outcome.signal) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(1),
    ))
}
