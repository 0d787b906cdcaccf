//! `hyperdial sync [DIR]`: upload runs the Python client recorded offline, and metric points
//! spilled by agents and clients when a server stayed away longer than their retry window.
//!
//! Each `*.jsonl` file holds one run as JSON lines (see `docs/python.md`): an `init` record,
//! then `log`, `summary` and finally `finish` records. A file is renamed to `*.jsonl.synced`
//! once uploaded, so running `sync` twice uploads nothing twice. A run the script did not name
//! takes the id `offline-LOCAL_ID` (the `init` record's `local_id`, written since that field
//! exists), so the same file synced again, a copy brought back or a sync an outage cut short,
//! finds its run: an ended one is left alone, a `running` one (or one the server marked
//! `crashed` for its silence while the upload was cut short) takes the rest of the file at
//! the same steps (stored once). A run without a `finish`
//! record (the script is still running, or died) is uploaded and ended `crashed`.
//!
//! A spill file ([`hyperdial_agent::spill`]) is the same format with the id of an existing run
//! in its `init` record: its points are added to that run (their steps are explicit, so points
//! that did arrive earlier are not duplicated) and the run's delivery record counts them as
//! recovered. Metric requests are split below the API's size limit. A spill file holding the
//! run's end (its agent kept it while the server was away) is taken by a run the server
//! marked `crashed` meanwhile for its gone agent: the run ends as its process did, when it
//! did, and its retry gives way (withdrawn if queued; once claimed, a repeat of the run,
//! stopped if still running). Otherwise a `crashed` run
//! refuses late points: the file is marked synced (its points stay in the renamed file), and
//! it is counted as refused, with the server's reason.
//!
//! The last line counts the files uploaded, refused and failed; the exit code is 1 when any
//! was refused or failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use hyperdial_agent::{spill, Client};
use hyperdial_wire::api::{CreateRun, FinishRequest};
use hyperdial_wire::{EndCause, RunState};

use crate::api::Api;
use crate::embedded::{default_db, Embedded, STATE_DIR};
use crate::Remote;

/// The id an offline run the script did not name takes on the server: this, then the local
/// id its Python client gave it (the `init` record's `local_id`, also its file's name).
const OWN_ID_PREFIX: &str = "offline-";

/// The HTTP status of a refused request, if that is what `err` is.
fn http_status(err: &anyhow::Error) -> Option<u16> {
    err.downcast_ref::<crate::api::HttpError>()
        .map(|e| e.status)
}

/// Run the command: upload every `*.jsonl` file of `dir` to the server `remote` names, or into
/// the store `db` (see `hyperdial sync --help` for the rule). Exit code 1 when a file was
/// refused or failed.
/// Errors: `dir` unreadable, a named server that does not answer, a store that cannot be opened.
pub async fn run(remote: &Remote, db: Option<&str>, dir: &Path) -> Result<ExitCode> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            outln!("nothing to sync: {} does not exist", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    files.sort();
    if files.is_empty() {
        outln!("nothing to sync in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let (api, client, embedded) = match db {
        Some(db) => into_store(db).await?,
        None => {
            let api = remote.api()?;
            if api.reachable().await? {
                (api, remote.client()?, None)
            } else if let Some(url) = remote.given() {
                // A server the user named is never swapped for the local store in silence:
                // the runs would land where that server's users do not look.
                let bind = url
                    .split("://")
                    .nth(1)
                    .unwrap_or(&url)
                    .trim_end_matches('/')
                    .to_string();
                bail!(
                    "cannot reach the server at {url}: start it (`hyperdial server --bind \
                     {bind}`), or write the runs into a store without a server with `--db PATH`"
                );
            } else {
                into_store(&default_db(Path::new(STATE_DIR))).await?
            }
        }
    };
    let (mut uploaded, mut before, mut refused, mut failed) = (0usize, 0usize, 0usize, 0usize);
    for file in &files {
        // Each file is read once: a spill file goes to its run, an offline file makes one.
        let spilled = match spill::Spilled::read(file) {
            Ok(spilled) => spilled,
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
                continue;
            }
        };
        if spilled.run().is_some() {
            match spilled.upload(&client, true).await {
                Ok(done) => match &done.why_refused {
                    Some(why) => {
                        refused += 1;
                        outln!(
                            "{} → refused by run {}: {why}; its {} points stay in {}",
                            file.display(),
                            done.run,
                            done.refused,
                            done.synced.display()
                        );
                    }
                    None => {
                        uploaded += 1;
                        let output = match done.output {
                            0 => String::new(),
                            1 => ", 1 piece of output".to_string(),
                            n => format!(", {n} pieces of output"),
                        };
                        outln!(
                            "{} → {} points added to run {}{output}{}",
                            file.display(),
                            done.points,
                            done.run,
                            if done.ended { ", and its end" } else { "" }
                        );
                    }
                },
                Err(e) => {
                    failed += 1;
                    eprintln!("{e}");
                }
            }
            continue;
        }
        match upload(&api, &client, spilled.records()).await {
            Ok(done) => {
                spill::mark_synced(file)?;
                match done {
                    Uploaded::New(id) => {
                        uploaded += 1;
                        outln!("{} → run {id}", file.display())
                    }
                    Uploaded::Completed(id) => {
                        uploaded += 1;
                        outln!(
                            "{} → run {id} (its earlier upload, cut short, is complete now)",
                            file.display()
                        )
                    }
                    Uploaded::Before(id) => {
                        before += 1;
                        outln!(
                            "{} → already uploaded as run {id}; nothing sent again",
                            file.display()
                        )
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e:#}", file.display());
            }
        }
    }
    if let Some(e) = embedded {
        e.stop().await;
    }
    outln!("{}", summary(uploaded, before, refused, failed));
    Ok(if refused == 0 && failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The last line of `sync`: how many files were uploaded, refused (each said why above) and
/// failed.
fn summary(uploaded: usize, before: usize, refused: usize, failed: usize) -> String {
    let refused = match refused {
        0 => "0 refused".to_string(),
        n => format!(
            "{n} refused (why is said above; their points stay in the *.jsonl.synced files)"
        ),
    };
    let before = match before {
        0 => String::new(),
        n => format!(", {n} uploaded before (nothing sent)"),
    };
    format!("{uploaded} uploaded{before}, {refused}, {failed} failed")
}

/// Where the Python client writes offline files: `$HYPERDIAL_DIR/offline` when
/// `HYPERDIAL_DIR` is set and not empty, else `.hyperdial/offline`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("HYPERDIAL_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("offline"),
        _ => PathBuf::from(STATE_DIR).join("offline"),
    }
}

/// The store `db` served in this process, as the API and metric clients of `sync` see it.
async fn into_store(db: &str) -> Result<(Api, Client, Option<Embedded>)> {
    let e = Embedded::start(db, 0).await?;
    outln!("syncing into the store {}", hyperdial_wire::redact_url(db));
    Ok((
        Api::new(&e.url(), None),
        Client::new(&e.url(), None),
        Some(e),
    ))
}

/// Upload one offline file of a run still to be created (its `records`); returns the new
/// run's id.
async fn upload(api: &Api, client: &Client, records: &[Value]) -> Result<Uploaded> {
    let Some(init) = records.first().filter(|r| r["type"] == "init") else {
        bail!("the first record is not an `init` record");
    };
    // A run recorded under a chosen id (`init(id=..., resume=...)`) is created with it, or
    // continued when it exists, by the rule the script asked for (the server applies it now,
    // as it would have then).
    let chosen = init["id"].as_str();
    let resume = init["resume"].as_str().unwrap_or("allow");
    // A run the script did not name is created under an id of its file's own
    // (`offline-LOCAL_ID`), never to be resumed: a second upload of the same file (a copy
    // brought back, a sync cut short by an outage) finds it and continues that upload.
    let own = match chosen {
        Some(_) => None,
        None => init["local_id"]
            .as_str()
            .map(|local| format!("{OWN_ID_PREFIX}{local}")),
    };
    let new: CreateRun = serde_json::from_value(json!({
        "project": init["project"], "name": init["name"], "config": init["config"],
        "argv": init["argv"], "host": init["host"], "git": init["git"],
        "id": chosen.or(own.as_deref()),
        "resume": if chosen.is_some() { Some(resume) } else if own.is_some() { Some("never") } else { None },
        // Dated when the script ran, not when the file is uploaded.
        "started_ms": init["time_ms"].as_i64(),
    }))
    .context("the `init` record does not describe a run")?;
    let (run, uploaded_before) = match (api.post("/api/v1/runs", &new).await, &own) {
        (Ok(run), _) => (run, false),
        (Err(err), Some(own)) if http_status(&err) == Some(409) => {
            (api.get(&format!("/api/v1/runs/{own}")).await?, true)
        }
        (Err(err), _) => return Err(err),
    };
    let id = run["id"]
        .as_str()
        .context("the server did not return a run id")?
        .to_string();
    if uploaded_before && holds_the_whole_file(&run) {
        return Ok(Uploaded::Before(id));
    }
    let mut points = spill::log_points(&records[1..]);
    // A continued run: offline steps counted from 0 (the script could not ask the server
    // where the run was) follow its last step; steps that already start at or after it (the
    // script gave them) stay as they are. A file uploaded before goes to the steps it went
    // to then, where the points that arrived are not stored twice.
    if !uploaded_before {
        let next = run["steps"].as_i64().unwrap_or(0);
        let first = points.iter().filter_map(|p| p.step).min().unwrap_or(next);
        let offset = (next - first).max(0);
        for p in &mut points {
            p.step = p.step.map(|s| s + offset);
        }
    }
    let mut summary = Map::new();
    let mut finish: Option<&Value> = None;
    for r in &records[1..] {
        match r["type"].as_str() {
            Some("summary") => {
                if let Some(values) = r["values"].as_object() {
                    summary.extend(values.clone());
                }
            }
            Some("finish") => finish = Some(r),
            _ => {}
        }
    }
    spill::upload_points(client, &id, &points).await?;
    spill::put_config_and_name(client, &id, &records[1..]).await?;
    if !summary.is_empty() {
        api.put(
            &format!("/api/v1/runs/{id}/summary"),
            &Value::Object(summary),
        )
        .await?;
    }
    let body = match finish {
        Some(f) => FinishRequest {
            // A code outside `i32` (a hand-edited file) is left out rather than refused.
            exit_code: f["exit_code"].as_i64().and_then(|c| i32::try_from(c).ok()),
            ended_ms: f["time_ms"].as_i64(),
            ..FinishRequest::default()
        },
        None => FinishRequest {
            state: Some(RunState::Crashed),
            error: Some("recorded offline without a finish record".into()),
            ..FinishRequest::default()
        },
    };
    api.post(&format!("/api/v1/runs/{id}/finish"), &body)
        .await?;
    Ok(if uploaded_before {
        Uploaded::Completed(id)
    } else {
        Uploaded::New(id)
    })
}

/// Whether `run`, made by an earlier upload of an offline file, holds all of it. Its end is
/// the last thing an upload sends, so a run that has ended does, except one the server gave
/// up on while that upload was cut short: `crashed` for its silence (`end_cause:
/// run_silent`, the run timeout passed with nothing arriving). Such a run outside a sweep
/// takes late reports again, so the rest of the file is uploaded to it.
fn holds_the_whole_file(run: &Value) -> bool {
    match run["state"].as_str() {
        Some("running" | "queued") | None => false,
        Some("crashed") => run["end_cause"].as_str() != Some(EndCause::RunSilent.as_str()),
        Some(_) => true,
    }
}

/// What [`upload`] did with an offline file.
enum Uploaded {
    /// Made this run of it.
    New(String),
    /// Finished the upload of this run, begun by an earlier `sync` of the same file that was
    /// cut short.
    Completed(String),
    /// Nothing: the file was uploaded whole before, as this run (a copy synced again).
    Before(String),
}
