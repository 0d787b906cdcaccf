//! `hyperdial pause`/`resume`/`stop`/`cancel` and `retry`: sweep and run control, each saying
//! what becomes of the runs in flight.

use std::process::ExitCode;

use anyhow::Result;
use hyperdial_wire::api::RetryRequest;
use hyperdial_wire::RunState;
use serde_json::{json, Value};

use super::{agent_command, urlencode};
use crate::Remote;

/// `hyperdial pause|resume|stop|cancel SWEEP`.
pub async fn act(remote: &Remote, sweep: &str, action: &str) -> Result<ExitCode> {
    act_on(remote, sweep, action, "sweep").await
}

/// The server a command that changes a sweep or a run talks to: the one named (`--server`,
/// `HYPERDIAL_SERVER`), else the `tune` or `hyperdial ui` serving this directory's store (it
/// says so in `.hyperdial/serving.json` while it runs, [`crate::embedded::advertised`]), else
/// the default address. This directory's own server comes before the default address, which
/// may be another store's server.
async fn control_api(remote: &Remote) -> Result<crate::api::Api> {
    let api = remote.api()?;
    if remote.given().is_some() {
        return Ok(api);
    }
    let state_dir = std::env::current_dir()?.join(crate::embedded::STATE_DIR);
    Ok(match crate::embedded::advertised(&state_dir).await {
        Some(url) => crate::api::Api::new(&url, None),
        None => api,
    })
}

/// [`act`], where `what` names what `sweep` was looked up as, for the error when the server
/// knows no such sweep (`sweep`, or `sweep or run` for `hyperdial cancel ID`).
async fn act_on(remote: &Remote, sweep: &str, action: &str, what: &str) -> Result<ExitCode> {
    let api = control_api(remote).await?;
    // Pausing a paused sweep (resuming a running one) changes nothing: say "already", so a
    // user who expected a change learns that someone (or something) got there first.
    let unchanged = match action {
        "pause" => Some("paused"),
        "resume" => Some("running"),
        _ => None,
    };
    if let Some(state) = unchanged {
        let path = format!("/api/v1/sweeps/{}", urlencode(sweep));
        if let Ok(v) = api.get(&path).await {
            if v["state"].as_str() == Some(state) {
                println!("sweep {sweep} is already {state}");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    let answer = api
        .post(
            &format!("/api/v1/sweeps/{}/{action}", urlencode(sweep)),
            &json!({}),
        )
        .await;
    let v = match answer {
        Ok(v) => v,
        Err(e) => match e.downcast_ref::<crate::api::HttpError>() {
            // The action does not apply to the sweep's state: say so, nothing else.
            Some(h) if h.status == 409 => {
                eprintln!("error: {}", h.message);
                return Ok(ExitCode::FAILURE);
            }
            Some(h) if h.status == 404 => {
                eprintln!(
                    "error: the server at {} has no {what} with id {sweep} \
                     (`hyperdial sweeps --server {}` lists its sweeps)",
                    api.base(),
                    api.base()
                );
                return Ok(ExitCode::FAILURE);
            }
            _ => return Err(e),
        },
    };
    println!("{}", acted_text(sweep, action, &v));
    Ok(ExitCode::SUCCESS)
}

/// What `hyperdial ACTION SWEEP` says once the server answered with the sweep `v`: its state,
/// and what becomes of its runs in flight (`stop` lets them finish, `cancel` stops them).
fn acted_text(sweep: &str, action: &str, v: &Value) -> String {
    let state = v["state"].as_str().unwrap_or("?");
    let n = v["counts"]["running"].as_u64().unwrap_or(0);
    // The runs in flight, and the words that agree with their number.
    let (runs, finish, them, are) = if n == 1 {
        ("its run in flight".to_string(), "finishes", "it", "is")
    } else {
        (format!("its {n} runs in flight"), "finish", "them", "are")
    };
    match (action, state) {
        ("stop", _) if n > 0 => format!(
            "sweep {sweep} is {state}: no run starts; {runs} {finish} (`hyperdial cancel \
             {sweep}` stops {them} now)"
        ),
        // Cancelling a sweep that a `stop` had finished: it stays finished, its runs stop.
        ("cancel", "finished") => format!(
            "sweep {sweep} had finished (`stop`): {runs} {are} told to stop and end `cancelled`"
        ),
        ("cancel", _) if n > 0 => format!("sweep {sweep} is {state}: {runs} {are} told to stop"),
        _ => format!("sweep {sweep} is {state}"),
    }
}

/// `hyperdial cancel ID`: the sweep `id` ([`act`]), or, when `id` names a run, that run alone:
/// it is ended `cancelled` (`POST /runs/{id}/finish`), and its agent stops its process at its
/// next heartbeat, which the server answers with `stop`. A run that has already ended keeps
/// its end, and the command says so and fails.
pub async fn cancel(remote: &Remote, id: &str) -> Result<ExitCode> {
    let api = control_api(remote).await?;
    let path = format!("/api/v1/runs/{}", urlencode(id));
    let run = match api.get(&path).await {
        Ok(run) => run,
        Err(e) => match e.downcast_ref::<crate::api::HttpError>() {
            // Not a run (the server names the sweep it does not know either, below).
            Some(h) if h.status == 404 => {
                return act_on(remote, id, "cancel", "sweep or run").await
            }
            _ => return Err(e),
        },
    };
    let was = run["state"].as_str().unwrap_or("?").to_string();
    if !matches!(was.as_str(), "running" | "queued") {
        eprintln!("error: run {id} has already ended ({was}); nothing to cancel");
        return Ok(ExitCode::FAILURE);
    }
    let body = hyperdial_wire::api::FinishRequest {
        state: Some(RunState::Cancelled),
        error: Some("cancelled by hand (`hyperdial cancel`)".to_string()),
        ..Default::default()
    };
    let ended = api.post(&format!("{path}/finish"), &body).await?;
    let how = match (was.as_str(), run["agent"].is_null()) {
        ("running", false) => ": its agent stops its process at its next heartbeat",
        // No agent runs it (a script of its own, `hyperdial.init` outside a sweep): the
        // script hears it in the answer to its next metrics batch or heartbeat.
        ("running", true) => {
            ": no agent runs it; its script is told at its next metrics batch or heartbeat \
             (`run.stop_requested` in the Python client) and must end itself"
        }
        _ => "",
    };
    println!(
        "run {id} is {}{how}",
        ended["state"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

/// `hyperdial retry SWEEP [--failed] [--crashed] [--cancelled] [RUN...]`.
pub async fn retry(
    remote: &Remote,
    sweep: &str,
    states: &[RunState],
    runs: &[String],
) -> Result<ExitCode> {
    // Like `run`: the server at --server when one answers, else the local database.
    let remote_api = remote.api()?;
    let embedded = if remote_api.reachable().await? {
        None
    } else {
        let state_dir = std::env::current_dir()?.join(crate::embedded::STATE_DIR);
        let db = crate::embedded::default_db(&state_dir);
        if let Ok(hyperdial_store::Location::Sqlite(path)) = hyperdial_store::Location::parse(&db) {
            if !path.exists() {
                anyhow::bail!(
                    "no hyperdial server answers at {} and there is no local database {}",
                    remote_api.base(),
                    path.display()
                );
            }
        }
        Some(crate::embedded::Embedded::start(&db, 0).await?)
    };
    let api = match &embedded {
        Some(e) => crate::api::Api::new(&e.url(), None),
        None => remote_api,
    };
    let answer = api
        .post(
            &format!("/api/v1/sweeps/{}/retry", urlencode(sweep)),
            &RetryRequest {
                states: states.to_vec(),
                runs: runs.to_vec(),
            },
        )
        .await;
    let local = embedded.is_some();
    if let Some(e) = embedded {
        e.stop().await;
    }
    let v = answer?;
    for r in v["retried"].as_array().into_iter().flatten() {
        let retry = &r["retry"];
        println!(
            "queued run #{} ({}) retrying {} (attempt {}): {}",
            retry["number"],
            retry["id"].as_str().unwrap_or("?"),
            r["run"].as_str().unwrap_or("?"),
            retry["attempt"],
            crate::commands::progress::short_params(&retry["params"])
        );
    }
    for s in v["skipped"].as_array().into_iter().flatten() {
        println!(
            "not retried: {}: {}",
            s["run"].as_str().unwrap_or("?"),
            s["reason"].as_str().unwrap_or("")
        );
    }
    let n = v["retried"].as_array().map_or(0, Vec::len);
    let state = v["sweep"]["state"].as_str().unwrap_or("?");
    if n == 0 {
        println!("nothing to retry; sweep {sweep} is {state}");
    } else {
        let how = if local {
            local_run_command(sweep, &v["sweep"])
        } else {
            agent_command(sweep, api.base(), remote, false)
        };
        // The sweep's own count: runs queued before (an earlier retry) wait too.
        let queued = v["sweep"]["counts"]["queued"]
            .as_u64()
            .map_or(n, |q| q as usize)
            .max(n);
        println!("sweep {sweep} is {state} with {queued} queued; run them with {how}");
    }
    Ok(ExitCode::SUCCESS)
}

/// How to run the queued runs of a sweep of the local store: `tune` with the sweep's file
/// when that file (as recorded, from this directory) still holds the sweep's source; else a
/// server on this store and an agent, since `tune` on an edited file makes a new sweep.
fn local_run_command(id: &str, sweep: &Value) -> String {
    let file = sweep["file"].as_str().filter(|f| !f.is_empty());
    let source = sweep["source"].as_str();
    match file {
        Some(f) if std::fs::read_to_string(f).ok().as_deref() == source => {
            format!("`hyperdial tune {f}`")
        }
        _ => {
            let why = match file {
                Some(f) => format!("{f} is not the sweep's file as it was, so `tune` on it would start another sweep"),
                None => "the sweep has no file for `tune`".to_string(),
            };
            format!(
                "`hyperdial server` (on this directory's store) and, beside it, `hyperdial agent {id}` ({why})"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_cancel_say_what_becomes_of_the_runs_in_flight() {
        let sweep =
            |state: &str, running: u64| json!({"state": state, "counts": {"running": running}});
        assert_eq!(
            acted_text("s1", "stop", &sweep("finished", 2)),
            "sweep s1 is finished: no run starts; its 2 runs in flight finish \
             (`hyperdial cancel s1` stops them now)"
        );
        assert_eq!(
            acted_text("s1", "stop", &sweep("finished", 0)),
            "sweep s1 is finished"
        );
        assert_eq!(
            acted_text("s1", "cancel", &sweep("finished", 1)),
            "sweep s1 had finished (`stop`): its run in flight is told to stop and end `cancelled`"
        );
        assert_eq!(
            acted_text("s1", "cancel", &sweep("cancelled", 3)),
            "sweep s1 is cancelled: its 3 runs in flight are told to stop"
        );
        assert_eq!(
            acted_text("s1", "cancel", &sweep("cancelled", 0)),
            "sweep s1 is cancelled"
        );
        assert_eq!(
            acted_text("s1", "pause", &sweep("paused", 2)),
            "sweep s1 is paused"
        );
    }
}
