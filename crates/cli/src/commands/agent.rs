//! `hyperdial agent SWEEP`: claim and run the runs of a sweep from a server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use hyperdial_agent::{run_agent, AgentError, AgentOptions};
use hyperdial_space::Goal;

use super::progress::Progress;
use super::signals::shutdown_levels;
use crate::embedded::STATE_DIR;
use crate::Remote;

/// Run the command.
pub async fn run(
    remote: &Remote,
    sweep: &str,
    project: Option<&str>,
    count: Option<u64>,
    wandb: bool,
    end_wait: std::time::Duration,
) -> Result<ExitCode> {
    // W&B's `PROJECT/ID` and `ENTITY/PROJECT/ID` name the project too.
    let project = project.or_else(|| project_in_path(sweep));
    let sweep = sweep_id(sweep);
    // `--server` may name several servers of one PostgreSQL database (comma-separated): the
    // agent's client goes on with the next one when one cannot be reached. The progress line
    // and the commands the agent suggests use the first.
    let servers = remote.urls();
    let first = Remote {
        server: remote.given().map(|_| servers[0].clone()),
        ..remote.clone()
    };
    let api = first.api()?;
    // The progress line asks the first server that answers for the sweep's best.
    let mut apis = vec![api.clone()];
    for url in &servers[1..] {
        apis.push(crate::api::Api::with_ca_cert(
            url,
            remote.token.clone(),
            remote.ca_cert.as_deref(),
        )?);
    }
    // Through the agent's client, which retries a server that cannot be reached for the retry
    // window (saying so after a few seconds), as every later request does: an agent started
    // while its server restarts (a scheduler starting agents, a machine booting) waits for it
    // instead of exiting at once. The client is given every server, so a first one that is
    // down at start is passed over for the next, as it is mid-run.
    let info = remote.client()?.get_sweep(sweep).await?;
    let metric = info["metric"]["name"].as_str().map(|n| {
        let goal = if info["metric"]["goal"] == "maximize" {
            Goal::Maximize
        } else {
            Goal::Minimize
        };
        (n.to_string(), goal)
    });
    let mut objectives = Vec::new();
    if let Some(config) = info["source"]
        .as_str()
        .and_then(|source| hyperdial_space::parse_str(source, "sweep").ok())
    {
        if config.config.is_multi_objective() {
            objectives = config
                .config
                .objectives()
                .into_iter()
                .map(|m| m.name)
                .collect();
        }
        if let Some(why) = super::tune::cannot_run(&config.config) {
            anyhow::bail!(
                "sweep {sweep} cannot run under an agent: {why} (a sweep driven from Python with \
                 ask/tell needs no agent)"
            );
        }
    }
    if let (Some(named), Some(actual)) = (project, info["project"].as_str()) {
        if named != actual {
            eprintln!(
                "note: sweep {sweep} is in project {actual}, not {named}; a sweep id names one \
                 sweep, so the agent runs it"
            );
        }
    }
    outln!(
        "agent on sweep {sweep} ({}), server {}",
        info["state"].as_str().unwrap_or("?"),
        servers.join(", ")
    );
    let mut opts = AgentOptions::new(servers.join(","), sweep);
    opts.token = remote.token.clone();
    opts.ca_cert = remote.ca_cert.clone();
    opts.count = count;
    opts.reaper = super::signals::reaper();
    opts.wandb = wandb;
    opts.end_wait = end_wait;
    opts.crash_guard = hyperdial_agent::CrashGuard::from_env().map_err(anyhow::Error::msg)?;
    // The commands it suggests reach this server: the options given, or the default server
    // by name (without one, `runs` would read the local store instead).
    let reach = match first.given() {
        Some(_) => first.flags(),
        None => format!(" --server {}{}", api.base(), first.flags()),
    };
    opts.hints = hyperdial_agent::Hints {
        read: reach.clone(),
        sync: reach,
    };
    opts.state_dir = std::env::current_dir()
        .map(|d| d.join(STATE_DIR))
        .unwrap_or_else(|_| PathBuf::from(STATE_DIR));
    // The best shown is the sweep's (every agent's runs), asked of the server after each run.
    let already = info["best"]["value"]
        .as_f64()
        .zip(info["best"]["number"].as_i64());
    let mut progress = Progress::new(metric, count, already);
    progress.objectives = objectives;
    progress.best_from_sweep = true;
    progress.say_waiting = true;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = shutdown_levels("agent");
    let task = tokio::spawn(run_agent(opts, tx, shutdown.clone()));
    while let Some(event) = rx.recv().await {
        if matches!(event, hyperdial_agent::Event::Finished { .. }) {
            for api in &apis {
                if let Some(best) = super::tune::sweep_best(api, sweep).await {
                    progress.set_best(Some(best));
                    break;
                }
            }
        }
        progress.interrupted = *shutdown.borrow() >= 1;
        progress.event(event);
    }
    progress.finish();
    match task.await? {
        Ok(report) => {
            // Each end by its own name: a crashed run is no failed one, a cancelled run was
            // not stopped early.
            let mut rest = String::new();
            for (n, what) in [
                (report.failed - report.crashed, "failed"),
                (report.crashed, "crashed"),
                (report.stopped - report.cancelled, "stopped early"),
                (report.cancelled, "cancelled"),
            ] {
                if n > 0 {
                    rest.push_str(&format!(", {n} {what}"));
                }
            }
            let runs = if report.runs == 1 { "run" } else { "runs" };
            outln!(
                "agent done: {} {runs} ({} finished{rest})",
                report.runs,
                report.finished
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (AgentError::CrashLoop { .. } | AgentError::WandbModule { .. })) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// The sweep id of the argument: `ID`, or W&B's `ENTITY/PROJECT/ID` (what `wandb agent` takes,
/// so a job script written for W&B keeps its argument); its last `/`-separated part.
fn sweep_id(arg: &str) -> &str {
    let trimmed = arg.trim_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// The project of W&B's `PROJECT/ID` or `ENTITY/PROJECT/ID` form; `None` for a bare id.
fn project_in_path(arg: &str) -> Option<&str> {
    let mut parts = arg.trim_matches('/').rsplit('/');
    parts.next()?;
    parts.next().filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{project_in_path, sweep_id};

    #[test]
    fn the_project_of_a_wandb_path_is_its_second_to_last_part() {
        assert_eq!(project_in_path("s1"), None);
        assert_eq!(project_in_path("proj/s1"), Some("proj"));
        assert_eq!(project_in_path("me/proj/s1"), Some("proj"));
    }

    #[test]
    fn the_sweep_is_an_id_or_wandbs_entity_project_id_path() {
        assert_eq!(sweep_id("s3och4g4k"), "s3och4g4k");
        assert_eq!(sweep_id("me/myproj/s3och4g4k"), "s3och4g4k");
        assert_eq!(sweep_id("/me/myproj/s3och4g4k/"), "s3och4g4k");
        assert_eq!(sweep_id("myproj/s3och4g4k"), "s3och4g4k");
    }
}
