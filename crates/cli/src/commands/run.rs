//! `hyperdial run -- CMD ARGS...`: track a run of any command — argv, exit code, metrics it
//! prints or sends, captured output, host, git commit and dirtiness, timings. Uses the server
//! at `--server` when one answers, else an embedded one on the local database.

use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_agent::{
    git_state, install_python_client, install_wandb_module, supervise, Client, NewRun,
    SuperviseOptions,
};
use hyperdial_wire::api::GitInfo;

use super::signals::shutdown_levels;
use crate::embedded::{default_db, Embedded, STATE_DIR};
use crate::Remote;

/// The project of the run: `given` (`--project`); else, for a script written for W&B
/// (`--wandb`), `wandb_project` (the value of `WANDB_PROJECT`, which names the project of the
/// runs W&B makes) when it is not empty; else `default`.
fn project_of(given: Option<&str>, wandb: bool, wandb_project: Option<String>) -> String {
    given
        .map(str::to_string)
        .or_else(|| wandb_project.filter(|p| wandb && !p.trim().is_empty()))
        .unwrap_or_else(|| "default".to_string())
}

/// Run the command.
pub async fn run(
    remote: &Remote,
    db: Option<&str>,
    project: Option<&str>,
    name: Option<&str>,
    wandb: bool,
    argv: &[String],
) -> Result<ExitCode> {
    let project = project_of(project, wandb, std::env::var("WANDB_PROJECT").ok());
    let cwd = std::env::current_dir()?;
    let state_dir = cwd.join(STATE_DIR);
    let api = remote.api()?;
    let embedded = if let Some(db) = db {
        Some(Embedded::start(db, 0).await?)
    } else if api.reachable().await? {
        None
    } else if let Some(url) = remote.given() {
        // A server the user named is never swapped for the local store in silence: the run
        // would land where that server's users do not look, and nothing moves it there later.
        anyhow::bail!(
            "cannot reach the hyperdial server at {url}: start it there, or track the run in \
             a store without a server with `--db PATH` (this directory's is \
             ./.hyperdial/hyperdial.db); the command was not started"
        );
    } else {
        Some(Embedded::start(&default_db(&state_dir), 0).await?)
    };
    let client = match &embedded {
        Some(e) => Client::new(&e.url(), None),
        None => remote.client()?,
    };
    let git = git_state(&cwd).await;
    let run = client
        .create_run(&NewRun {
            project: Some(project.clone()),
            name: name.map(str::to_string),
            config: None,
            argv: Some(argv.to_vec()),
            host: Some(hyperdial_agent::hostname()),
            git: git.as_ref().map(|g| GitInfo {
                commit: Some(g.commit.clone()),
                dirty: g.dirty,
            }),
            ..NewRun::default()
        })
        .await
        .context("cannot create the run")?;
    let id = run["id"]
        .as_str()
        .context("the server returned no run id")?
        .to_string();
    match (&embedded, db) {
        // The embedded server ends with this command: name what outlives it.
        (Some(_), Some(db)) => eprintln!(
            "hyperdial: tracking run {id} in the store {db} (later: `hyperdial runs --db {db}`, \
             or the dashboard with `hyperdial ui --db {db}`)"
        ),
        (Some(_), None) => eprintln!(
            "hyperdial: tracking run {id} in the local store (later: `hyperdial runs`, or the \
             dashboard with `hyperdial ui`)"
        ),
        (None, _) => eprintln!(
            "hyperdial: tracking run {id} ({}/runs/{id})",
            client.base_url()
        ),
    }
    let wandb_module = if wandb {
        Some(install_wandb_module(&state_dir).context("cannot install the wandb module")?)
    } else {
        None
    };
    let opts = SuperviseOptions {
        python_path: install_python_client(&state_dir).ok(),
        wandb_module,
        echo: true,
        reaper: super::signals::reaper(),
        spill_dir: Some(state_dir.join("offline")),
        ..SuperviseOptions::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    // The script's `run.project` is the project the run was created in.
    let env = [(hyperdial_agent::PROJECT_ENV.to_string(), project.clone())];
    let outcome = supervise(
        &client,
        &id,
        argv,
        &env,
        &cwd,
        &opts,
        &tx,
        shutdown_levels("run"),
    )
    .await;
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
        // To the server this run reported to (the local store needs no options).
        let to = if embedded.is_some() {
            String::new()
        } else {
            remote.flags()
        };
        eprintln!(
            "hyperdial: {} metric points of run {id} did not reach the server; they are kept in {}: upload them with `hyperdial sync{to}`",
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

#[cfg(test)]
mod tests {
    use super::project_of;

    #[test]
    fn project_is_the_flag_then_wandb_project_for_wandb_scripts_then_default() {
        let env = || Some("from-env".to_string());
        assert_eq!(project_of(Some("flag"), true, env()), "flag");
        assert_eq!(project_of(None, true, env()), "from-env");
        assert_eq!(project_of(None, false, env()), "default");
        assert_eq!(project_of(None, true, Some(" ".into())), "default");
        assert_eq!(project_of(None, true, None), "default");
    }
}
