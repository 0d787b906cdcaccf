//! Inspection and control over the API: `sweep`, `sweeps`, `runs`, `best`, `export`, and
//! `pause`/`resume`/`stop`/`cancel`.
//!
//! The read commands (`sweeps`, `runs`, `best`, `export`, `output`) take an [`Api`] and print
//! its answers; [`read`] opens it on a server or, with none given, on the local store
//! ([`crate::source`]), so their output is the same either way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use hyperdial_wire::api::{CreateSweep, RetryRequest};
use hyperdial_wire::RunState;
use serde_json::{json, Value};

use crate::api::Api;
use crate::source::Source;
use crate::Remote;

/// Open the source of a read command, run `command` on its API, then close it.
pub async fn read(
    source: &Source,
    command: impl AsyncFnOnce(&Api) -> Result<ExitCode>,
) -> Result<ExitCode> {
    let reader = source.open().await?;
    let result = command(&reader.api).await;
    reader.close().await;
    result
}

/// Read a sweep file, failing with the validator's messages if it is invalid.
pub fn read_sweep_file(file: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match hyperdial_space::parse_str(&text, &file.display().to_string()) {
        Ok(v) => {
            for w in &v.warnings {
                eprintln!("{}", w.render(&file.display().to_string()));
            }
            Ok(text)
        }
        Err(e) => Err(crate::Rendered(e.render()).into()),
    }
}

/// `hyperdial sweep FILE`.
pub async fn create(
    remote: &Remote,
    file: &Path,
    project: Option<&str>,
    as_json: bool,
) -> Result<ExitCode> {
    let source = read_sweep_file(file)?;
    let api = remote.api()?;
    let body_source = source.clone();
    let body = CreateSweep {
        source,
        project: project.map(str::to_string),
        file: Some(file.display().to_string()),
        ..CreateSweep::default()
    };
    let sweep = api.post("/api/v1/sweeps", &body).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&sweep)?);
    } else {
        let id = sweep["id"].as_str().unwrap_or("?");
        println!(
            "created sweep {id} ({} in project {})",
            sweep["method"].as_str().unwrap_or("?"),
            sweep["project"].as_str().unwrap_or("?")
        );
        let parsed = hyperdial_space::parse_str(&body_source, &file.display().to_string()).ok();
        let runnable = parsed
            .as_ref()
            .and_then(|v| super::tune::cannot_run(&v.config));
        match runnable {
            // Drive it from Python (`hyperdial.Sweep`, ask/tell); agents would refuse it.
            Some(why) => println!("no agents for this sweep: {why}"),
            None => {
                let wandb = parsed
                    .as_ref()
                    .and_then(|v| program_imports_wandb(&v.config, file));
                // Without `--wandb`, a script that imports wandb gets W&B's own package,
                // which wants an account: the first run would fail.
                let mut command = agent_command(id, api.base(), remote, wandb.is_some());
                if let Some(program) = &wandb {
                    command.push_str(&format!(
                        " (`--wandb`: {program} imports wandb, and gets hyperdial's \
                         W&B-compatible module; or put `wandb: true` in the sweep file)"
                    ));
                }
                println!(
                    "start agents{} with:  {command}",
                    parsed
                        .as_ref()
                        .map(|v| where_agents_start(&v.config, file))
                        .unwrap_or_default(),
                )
            }
        }
        println!("dashboard:          {}/sweeps/{id}", api.base());
    }
    Ok(ExitCode::SUCCESS)
}

/// The program of a sweep read from `file` when it is a Python file that imports `wandb`
/// (an `import wandb` or `from wandb` line) and the sweep does not ask for hyperdial's
/// W&B-compatible module (`wandb: true`): its agents need `--wandb`. The program is looked for
/// here, then beside the sweep file; at most its first MiB is read.
fn program_imports_wandb(config: &hyperdial_space::SweepConfig, file: &Path) -> Option<String> {
    if config.wandb {
        return None;
    }
    let program = hyperdial_space::command::script_program(config)?;
    let path = [
        Some(PathBuf::from(program)),
        file.parent().map(|d| d.join(program)),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(&path).ok()?, 1 << 20),
        &mut text,
    )
    .ok()?;
    imports_wandb(&String::from_utf8_lossy(&text)).then(|| format!("`{program}`"))
}

/// Whether Python source `text` imports `wandb` itself, in any statement of a line
/// (`import wandb`, `import os, wandb as wb`, `x = 1; from wandb.sdk import init`), or through
/// a logger that does (Lightning's `WandbLogger`, `importlib.import_module("wandb")`).
fn imports_wandb(text: &str) -> bool {
    let is_wandb = |module: &str| module == "wandb" || module.starts_with("wandb.");
    text.lines().any(|line| {
        let line = line.trim_start_matches('\u{feff}');
        if line.contains("WandbLogger")
            || line.contains("import_module(\"wandb\"")
            || line.contains("import_module('wandb'")
        {
            return true;
        }
        let code = line.split('#').next().unwrap_or_default();
        code.split(';').any(|statement| {
            let statement = statement.trim();
            if let Some(names) = statement.strip_prefix("import ") {
                names
                    .split(',')
                    .any(|name| is_wandb(name.split_whitespace().next().unwrap_or_default()))
            } else if let Some(rest) = statement.strip_prefix("from ") {
                is_wandb(rest.split_whitespace().next().unwrap_or_default())
            } else {
                false
            }
        })
    })
}

/// Where agents of a sweep read from `file` must start, when it is not here: the program its
/// command runs as a file is not in this directory but beside the sweep file (an agent looks
/// for it in its own working directory). Empty otherwise.
fn where_agents_start(config: &hyperdial_space::SweepConfig, file: &Path) -> String {
    let Some(program) = hyperdial_space::command::script_program(config) else {
        return String::new();
    };
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(dir) if !Path::new(program).exists() && dir.join(program).exists() => {
            format!(" in {} (where `{program}` is)", dir.display())
        }
        _ => String::new(),
    }
}

/// The `hyperdial agent` command line that reaches this server the way this command did,
/// with `--wandb` when `wandb` (the sweep's program imports wandb) and the CA file when one
/// was given, in backticks; when a token is in use, followed by a note that the agent reads
/// it from `HYPERDIAL_TOKEN`. Never `--token`: an agent runs for hours, and a token on its
/// command line (even a shell's `"$HYPERDIAL_TOKEN"`, expanded before it starts) is there
/// for every user of the machine to read with `ps`.
pub fn agent_command(id: &str, base: &str, remote: &Remote, wandb: bool) -> String {
    let flag = if wandb { " --wandb" } else { "" };
    let mut command = format!("`hyperdial agent {id}{flag} --server {base}");
    if let Some(ca) = &remote.ca_cert {
        command.push_str(&format!(" --ca-cert {}", ca.display()));
    }
    command.push('`');
    if remote.token.as_deref().is_some_and(|t| !t.is_empty()) {
        command.push_str(TOKEN_FROM_ENV);
    }
    command
}

/// What [`agent_command`] adds when the server needs a token.
const TOKEN_FROM_ENV: &str = " with the token in HYPERDIAL_TOKEN (the agent reads it from the \
     environment; `--token` would show it to other users in `ps`)";

/// A metric value as the tables print it ([`super::number::metric`]), `—` without one.
fn fmt_metric(v: &Value) -> String {
    v.as_f64()
        .map(super::number::metric)
        .unwrap_or_else(|| "—".into())
}

fn ago(ms: &Value) -> String {
    let Some(t) = ms.as_i64() else {
        return "—".into();
    };
    let secs = (hyperdial_store::now_ms() - t).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

/// `hyperdial sweeps`.
pub async fn sweeps(api: &Api, project: Option<&str>, as_json: bool) -> Result<ExitCode> {
    let path = match project {
        Some(p) => format!("/api/v1/sweeps?project={}", urlencode(p)),
        None => "/api/v1/sweeps".into(),
    };
    let v = api.get(&path).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v["sweeps"])?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "id", "name", "project", "method", "state", "runs", "metric", "best", "created",
    ]);
    for s in v["sweeps"].as_array().into_iter().flatten() {
        let objectives: Vec<&str> = s["config"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str())
            .collect();
        let (metric, best) = if objectives.len() > 1 {
            // Several objectives have no single best: the size of their Pareto front.
            let front = api
                .get(&format!(
                    "/api/v1/sweeps/{}/front",
                    urlencode(s["id"].as_str().unwrap_or(""))
                ))
                .await?;
            let size = front["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["rank"] == 0)
                .count();
            (
                format!("{} (Pareto)", objectives.join(", ")),
                if size == 0 {
                    "—".to_string()
                } else {
                    format!("front of {size}")
                },
            )
        } else {
            (
                s["metric"]["name"]
                    .as_str()
                    .map(|n| format!("{n} ({})", s["metric"]["goal"].as_str().unwrap_or("")))
                    .unwrap_or_default(),
                fmt_metric(&s["best"]["value"]),
            )
        };
        t.add_row([
            s["id"].as_str().unwrap_or("").to_string(),
            s["name"].as_str().unwrap_or("").to_string(),
            s["project"].as_str().unwrap_or("").to_string(),
            s["method"].as_str().unwrap_or("").to_string(),
            super::budget::state_word(s),
            s["total_runs"].to_string(),
            metric,
            best,
            ago(&s["created_ms"]),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// The `note` column of `hyperdial runs`: metric points that did not arrive (they come first:
/// the run's metrics are incomplete), the run it retries, the run it repeats with another seed
/// (`hyperdial repeat`), then the run's error or stop reason
/// ([`run_error`]). `sync` makes the `hyperdial sync` command that uploads them to the store
/// listed ([`sync_command`]), called only for a run that shows it.
fn run_note(r: &Value, sync: impl FnOnce() -> String) -> String {
    let error = run_error(r);
    let mut parts = Vec::new();
    if let Some(missing) = r["delivery"]["missing"].as_u64().filter(|m| *m > 0) {
        if error.is_empty() {
            parts.push(format!("{missing} metric points missing (`{}`)", sync()));
        } else {
            parts.push(format!("{missing} metric points missing"));
        }
    }
    if let Some(of) = r["retry_of"].as_str() {
        parts.push(format!("retry of {of}"));
    }
    if let Some(of) = r["repeat_of"].as_str() {
        match r["seed"].as_i64() {
            Some(seed) => parts.push(format!("repeat of {of} (seed {seed})")),
            None => parts.push(format!("repeat of {of}")),
        }
    }
    if !error.is_empty() {
        parts.push(error);
    }
    parts.join("; ")
}

/// Most characters of a run's error in the `note` column.
const NOTE_CHARS: usize = 80;

/// A run's error for the `note` column: an early stop as `hyperband at band 3: val_loss
/// 1.67772 worse than threshold 1.54321` from its `stop_info` (the state column already says
/// it stopped early), else the error's text with its numbers to 6 significant digits
/// ([`round_numbers`]); at most [`NOTE_CHARS`] characters, cut with `…`.
fn run_error(r: &Value) -> String {
    let text = match (stop_text(&r["stop_info"]), r["error"].as_str()) {
        (Some(stop), _) if r["state"] == "stopped_early" => stop,
        (_, Some(error)) => round_numbers(error, super::number::DIGITS),
        _ => String::new(),
    };
    match text.char_indices().nth(NOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// An early stop's reason from its `stop_info`, numbers to 6 significant digits; `None` when
/// the run was not stopped by a rule.
fn stop_text(info: &Value) -> Option<String> {
    hyperdial_server::early_stop::reason(info, super::number::metric)
}

/// `text` with every decimal number in it (a word of digits with a point or an exponent,
/// such as `1.67771996921`) written with `digits` significant digits
/// ([`super::number::general`]); integers and digits inside words (run ids) are left as
/// they are.
fn round_numbers(text: &str, digits: usize) -> String {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit() && (i == 0 || !word(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let start = if i > 0 && bytes[i - 1] == b'-' {
            i - 1
        } else {
            i
        };
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
        }
        if j + 1 < bytes.len() && matches!(bytes[j], b'e' | b'E') {
            let mut k = j + 1;
            if k < bytes.len() && matches!(bytes[k], b'+' | b'-') {
                k += 1;
            }
            if k < bytes.len() && bytes[k].is_ascii_digit() {
                while k < bytes.len() && bytes[k].is_ascii_digit() {
                    k += 1;
                }
                j = k;
            }
        }
        let token = &text[start..j];
        // Significant digits written: those of the mantissa after its leading zeros.
        let mantissa = token.split(['e', 'E']).next().unwrap_or(token);
        let significant = mantissa
            .trim_start_matches(['-', '0', '.'])
            .bytes()
            .filter(u8::is_ascii_digit)
            .count();
        // Not part of a longer word, nor of a dotted number (an address, a version).
        let ends = match bytes.get(j) {
            None => true,
            Some(b'.') => !bytes.get(j + 1).is_some_and(u8::is_ascii_digit),
            Some(&b) => !(b.is_ascii_alphanumeric() || b == b'_'),
        };
        if let (true, true, Ok(x)) = (
            significant > digits,
            ends && token.contains(['.', 'e', 'E']),
            token.parse::<f64>(),
        ) {
            out.push_str(&text[copied..start]);
            out.push_str(&super::number::general(x, digits));
            copied = j;
        }
        i = j.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// The `hyperdial sync` that uploads a run's missing points to what `source` reads: the
/// server's options when it names one (`sync` has no `--db`: it writes the local store when
/// no server answers).
fn sync_command(source: &Source) -> String {
    match source.db {
        Some(_) => "hyperdial sync".to_string(),
        None => format!("hyperdial sync{}", source.remote.flags()),
    }
}

/// `hyperdial runs SWEEP`, read from `source` (for the commands it prints).
pub async fn runs(
    api: &Api,
    source: &Source,
    sweep: &str,
    state: Option<RunState>,
    as_json: bool,
) -> Result<ExitCode> {
    let sw = api
        .get(&format!("/api/v1/sweeps/{}", urlencode(sweep)))
        .await?;
    let mut path = format!("/api/v1/runs?sweep={}&limit=100000", urlencode(sweep));
    if let Some(s) = state {
        path.push_str(&format!("&state={s}"));
    }
    let v = api.get(&path).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v["runs"])?);
        return Ok(ExitCode::SUCCESS);
    }
    let params: Vec<String> = sw["config"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    let metric = sw["metric"]["name"]
        .as_str()
        .unwrap_or("metric")
        .to_string();
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    let mut header = vec!["#".to_string(), "run".into(), "state".into(), metric];
    header.extend(params.iter().cloned());
    header.extend(["time".to_string(), "note".into()]);
    t.set_header(header);
    for r in v["runs"].as_array().into_iter().flatten() {
        // The run it retries is in the note, so the column stays narrow.
        let number = match (r["retry_of"].as_str(), r["attempt"].as_i64()) {
            (Some(_), Some(attempt)) => format!("{} (attempt {attempt})", r["number"]),
            _ => r["number"].to_string(),
        };
        let mut row = vec![
            number,
            r["id"].as_str().unwrap_or("").to_string(),
            r["state"].as_str().unwrap_or("").to_string(),
            fmt_metric(&r["metric"]),
        ];
        for p in &params {
            row.push(match &r["params"][p] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => super::progress::table_value(other),
            });
        }
        row.push(run_time(r));
        row.push(run_note(r, || sync_command(source)));
        t.add_row(row);
    }
    println!("{t}");
    match v["total"].as_u64() {
        Some(1) => println!("1 run"),
        _ => println!("{} runs", v["total"]),
    }
    Ok(ExitCode::SUCCESS)
}

/// The `time` column: seconds from start to end, or so far (`12s…`) for a run in flight.
fn run_time(r: &Value) -> String {
    match (r["started_ms"].as_i64(), r["finished_ms"].as_i64()) {
        (Some(a), Some(b)) => format!("{:.1}s", (b - a) as f64 / 1000.0),
        (Some(a), None) => format!("{:.0}s…", (hyperdial_store::now_ms() - a) as f64 / 1000.0),
        _ => String::new(),
    }
}

/// What `hyperdial runs` without a sweep lists.
#[derive(Debug, Clone)]
pub struct AllRuns {
    /// Only this project.
    pub project: Option<String>,
    /// Only this state.
    pub state: Option<RunState>,
    /// Runs per page.
    pub limit: u32,
    /// Page, from 1.
    pub page: u32,
    /// What the runs are read from: its options are repeated in the next page's command.
    pub source: Source,
}

impl AllRuns {
    /// The `GET /api/v1/runs` query: newest first, one page.
    fn query(&self) -> Result<String> {
        if !(1..=100_000).contains(&self.limit) {
            anyhow::bail!("--limit {}: expected 1 to 100000 runs per page", self.limit);
        }
        if self.page == 0 {
            anyhow::bail!("--page 0: pages count from 1");
        }
        let offset = u64::from(self.page - 1) * u64::from(self.limit);
        let mut q = format!(
            "sort=created_ms&order=desc&limit={}&offset={offset}",
            self.limit
        );
        if let Some(p) = &self.project {
            q.push_str(&format!("&project={}", urlencode(p)));
        }
        if let Some(s) = self.state {
            q.push_str(&format!("&state={s}"));
        }
        Ok(q)
    }

    /// The command that shows the next page: this one's options, the page moved on.
    fn next_page(&self) -> String {
        let mut command = "hyperdial runs".to_string();
        if let Some(p) = &self.project {
            command.push_str(&format!(" --project {}", super::validate::shell_quote(p)));
        }
        if let Some(s) = self.state {
            command.push_str(&format!(" --state {s}"));
        }
        if self.limit != 50 {
            command.push_str(&format!(" --limit {}", self.limit));
        }
        command.push_str(&format!(" --page {}", self.page + 1));
        command.push_str(&self.source.flags());
        command
    }
}

/// What a run outside a sweep ran, or a sweep run's parameters, on one short line.
fn run_what(r: &Value) -> String {
    let text = match (&r["sweep"], r["argv"].as_array()) {
        (Value::String(_), _) => super::progress::short_params(&r["params"]),
        (_, Some(argv)) => argv
            .iter()
            .map(|a| super::validate::shell_quote(a.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `hyperdial runs` without a sweep: every run, newest first, one page.
pub async fn all_runs(api: &Api, listing: &AllRuns, as_json: bool) -> Result<ExitCode> {
    let v = api
        .get(&format!("/api/v1/runs?{}", listing.query()?))
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v["runs"])?);
        return Ok(ExitCode::SUCCESS);
    }
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    let total = v["total"].as_u64().unwrap_or(0);
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "run",
        "name",
        "project",
        "sweep",
        "state",
        "created",
        "time",
        "command or parameters",
        "note",
    ]);
    for r in &runs {
        let sweep = match r["sweep"].as_str() {
            Some(s) => format!("{s} #{}", r["number"]),
            None => "—".to_string(),
        };
        t.add_row([
            r["id"].as_str().unwrap_or("").to_string(),
            r["name"].as_str().unwrap_or("").to_string(),
            r["project"].as_str().unwrap_or("").to_string(),
            sweep,
            r["state"].as_str().unwrap_or("").to_string(),
            ago(&r["created_ms"]),
            run_time(r),
            run_what(r),
            run_note(r, || sync_command(&listing.source)),
        ]);
    }
    let first = u64::from(listing.page - 1) * u64::from(listing.limit);
    if runs.is_empty() {
        match (total, listing.page) {
            (0, _) => println!("no runs"),
            (n, _) => println!("no runs on page {} ({n} runs in all)", listing.page),
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("{t}");
    let last = first + runs.len() as u64;
    if last < total {
        println!(
            "runs {}–{last} of {total}, newest first; next page: {}",
            first + 1,
            listing.next_page()
        );
    } else {
        println!("runs {}–{last} of {total}, newest first", first + 1);
    }
    Ok(ExitCode::SUCCESS)
}

/// `hyperdial best SWEEP`: the run with the best observed metric, or with `estimate` the
/// model's estimate of the best configuration (`GET /api/v1/sweeps/{id}/estimate`). `flags`:
/// the options (each with a leading space) a suggested command needs to read the same store.
pub async fn best(
    api: &Api,
    sweep: &str,
    format: &str,
    estimate: bool,
    flags: &str,
) -> Result<ExitCode> {
    // The sweep once: its metric's name and how its command passes parameters.
    let info = api
        .get(&format!("/api/v1/sweeps/{}", urlencode(sweep)))
        .await?;
    let single_format = || {
        if matches!(format, "yaml" | "json" | "args") {
            Ok(())
        } else {
            Err(anyhow::anyhow!("--format {format}: use yaml, json or args"))
        }
    };
    let v = if estimate {
        single_format()?;
        // The server says why a sweep has no estimate: too few results (404), or several
        // objectives or no metric (409).
        match api
            .get(&format!("/api/v1/sweeps/{}/estimate", urlencode(sweep)))
            .await
        {
            Ok(v) => v,
            Err(e) if is_status(&e, 404) => {
                eprintln!(
                    "hyperdial best --estimate: {}; `hyperdial best {sweep}{flags}` prints the \
                     best run meanwhile",
                    server_words(&e)
                );
                return Ok(ExitCode::from(1));
            }
            Err(e) if is_status(&e, 409) => {
                // The front, for a multi-objective sweep, is this command without --estimate.
                let front = if info["config"]["metrics"].is_array() {
                    format!("; `hyperdial best {sweep}{flags}` prints it")
                } else {
                    String::new()
                };
                eprintln!("error: --estimate: {}{front}", server_words(&e));
                return Ok(ExitCode::from(2));
            }
            Err(e) => return Err(e),
        }
    } else {
        // A multi-objective sweep has a front, not a best run.
        if let Some(code) = super::front::best(api, sweep, format).await? {
            return Ok(code);
        }
        single_format()?;
        api.get(&format!("/api/v1/sweeps/{}/best", urlencode(sweep)))
            .await?
    };
    let run = &v["run"];
    let metric = info["metric"]["name"].as_str().unwrap_or("metric");
    // What the estimate says of the best run: a comment in yaml; on standard error for json
    // and args, where a script reading standard output must not take it for the answer.
    let note = if estimate {
        None
    } else {
        estimate_said(api, sweep, run, metric, flags).await
    };
    if let (Some(line), false) = (&note, format == "yaml") {
        eprintln!("hyperdial: note: {line}");
    }
    match format {
        // With --estimate, the whole estimate: its figures are the point of asking.
        "json" if estimate => println!("{}", serde_json::to_string_pretty(&v)?),
        "json" => println!("{}", serde_json::to_string_pretty(run)?),
        "args" => {
            // The parameters as the sweep's command passes them (`${args_no_hyphens}`,
            // `${args_json}`, `--lr=${lr}`, ...), quoted for a POSIX shell.
            let params = run["params"].as_object().cloned().unwrap_or_default();
            println!("{}", args_line(&info, &params));
        }
        _ => {
            // The value under the sweep's metric's name (`val_loss 0.0781562`).
            println!(
                "# run {} (#{}), {metric} {}",
                run["id"].as_str().unwrap_or(""),
                run["number"],
                fmt_metric(&run["metric"])
            );
            if estimate {
                println!("# {}", estimate_chosen(&v, metric));
            } else if let Some(line) = &note {
                println!("# {line}");
            }
            for line in repeats_said(api, sweep, run).await {
                println!("# {line}");
            }
            print_yaml(&run["config"], 0);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the model's estimate says of the best observed run `run` of `sweep`, whose metric
/// is `metric`: when it estimates another run's configuration best (a noisy metric), a line
/// naming that run, the two posterior means and the fitted noise, and how to print it.
/// `None` when both are the same run, or there is no estimate (too few results, or the
/// server could not give one: the best run is printed all the same).
pub async fn estimate_said(
    api: &Api,
    sweep: &str,
    run: &Value,
    metric: &str,
    flags: &str,
) -> Option<String> {
    let e = api
        .get(&format!("/api/v1/sweeps/{}/estimate", urlencode(sweep)))
        .await
        .ok()?;
    if !e["differs"].as_bool().unwrap_or(false) || e["observed_best"] != run["id"] {
        return None;
    }
    Some(format!(
        "the model estimates run #{} ({}) the best configuration: {metric} {} ± {} there \
         against {} at this run's, whose value is one draw of a metric whose runs vary by \
         about {}; it gives run #{}'s configuration a {} chance of being the better one \
         (`hyperdial best {sweep}{flags} --estimate` prints it)",
        e["run"]["number"],
        e["run"]["id"].as_str().unwrap_or("?"),
        fmt_metric(&e["mean"]),
        fmt_metric(&e["sd"]),
        fmt_metric(&e["observed_best_mean"]),
        fmt_metric(&e["noise_sd"]),
        e["run"]["number"],
        percent(&e["p_better"]),
    ))
}

/// The line `hyperdial best --estimate` prints under the run it chose: the estimate `e`
/// (an `EstimateAnswer`) against the best observed run.
fn estimate_chosen(e: &Value, metric: &str) -> String {
    let how = format!(
        "the model's estimate of the best configuration among {} results: {metric} {} ± {} \
         here (runs vary by about {})",
        e["results"],
        fmt_metric(&e["mean"]),
        fmt_metric(&e["sd"]),
        fmt_metric(&e["noise_sd"]),
    );
    if e["differs"].as_bool().unwrap_or(false) {
        format!(
            "{how}; the best observed run is {}, whose configuration the model puts at {} \
             ({} chance that this configuration is the better one)",
            e["observed_best"].as_str().unwrap_or("?"),
            fmt_metric(&e["observed_best_mean"]),
            percent(&e["p_better"]),
        )
    } else {
        format!(
            "{how}; it is the run with the best observed value (no other configuration is \
             better with a probability of 75% or more)"
        )
    }
}

/// Whether `e` is an HTTP answer with `status`.
fn is_status(e: &anyhow::Error, status: u16) -> bool {
    e.downcast_ref::<crate::api::HttpError>()
        .is_some_and(|h| h.status == status)
}

/// The server's own words of an HTTP error (its `error`), else the whole message.
fn server_words(e: &anyhow::Error) -> String {
    e.downcast_ref::<crate::api::HttpError>()
        .map_or_else(|| e.to_string(), |h| h.message.clone())
}

/// A probability in `[0, 1]` as a whole percentage (`97%`), `?` without one.
fn percent(p: &Value) -> String {
    p.as_f64()
        .map_or_else(|| "?".to_string(), |p| format!("{:.0}%", 100.0 * p))
}

/// What the seed repeats of a sweep (`hyperdial repeat`) say about its best run `run`, as
/// lines for `hyperdial best`: the best run is one draw of its seed, and with repeats the
/// configuration's mean is the better measure. Empty when the sweep has no repeats (or the
/// report cannot be read: the best run is printed all the same).
async fn repeats_said(api: &Api, sweep: &str, run: &Value) -> Vec<String> {
    let Ok(report) = api
        .get(&format!("/api/v1/sweeps/{}/noise", urlencode(sweep)))
        .await
    else {
        return Vec::new();
    };
    let configurations = report["configurations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if configurations.is_empty() {
        return Vec::new();
    }
    let number = |c: &Value| {
        c["number"]
            .as_i64()
            .map_or("?".to_string(), |n| n.to_string())
    };
    let mut lines = Vec::new();
    let own = run["repeat_of"].as_str().or(run["id"].as_str());
    if let Some(c) = configurations.iter().find(|c| c["run"].as_str() == own) {
        let whose = if run["repeat_of"].is_null() {
            "its configuration".to_string()
        } else {
            format!(
                "a repeat of run #{} (seed {}): that configuration",
                number(c),
                run["seed"]
            )
        };
        if let Some(mean) = c["mean"].as_f64() {
            lines.push(format!(
                "{whose} averages {} over {} finished repeat{}",
                super::number::metric(mean),
                c["count"],
                if c["count"] == 1 { "" } else { "s" }
            ));
        }
    }
    if let Some(cmp) = report["comparison"].as_object() {
        let best = configurations
            .iter()
            .find(|c| c["run"] == cmp["best"])
            .map(|c| format!("run #{} (mean {})", number(c), fmt_metric(&c["mean"])));
        if let Some(best) = best {
            let p = cmp["p_value"]
                .as_f64()
                .map_or("?".into(), |p| format!("{p:.2}"));
            lines.push(format!(
                "best configuration by its repeats' mean: {best}; {} from the runner-up \
                 (p = {p}; `hyperdial noise {sweep}`)",
                if cmp["distinguishable"] == true {
                    "distinguishable"
                } else {
                    "not distinguishable"
                }
            ));
        }
    }
    lines
}

/// A run's parameters as the sweep's command passes them (`${args_no_hyphens}`,
/// `${args_json}`, `--lr=${lr}`, ...), quoted for a POSIX shell; `sweep` is the sweep's
/// answer (its `source` is read).
pub fn args_line(sweep: &Value, params: &serde_json::Map<String, Value>) -> String {
    let source = sweep["source"].as_str().unwrap_or_default();
    let flags = match hyperdial_space::parse_str(source, "sweep") {
        Ok(v) => {
            let args = hyperdial_space::command::args_for(&v.config, params);
            hyperdial_space::command::parameter_args(v.config.command.as_deref(), &args)
        }
        // A sweep stored by an older version that no longer validates: W&B's default.
        Err(_) => params
            .iter()
            .map(|(k, v)| format!("--{k}={}", hyperdial_space::command::python_str(v)))
            .collect(),
    };
    let shown: Vec<String> = flags
        .iter()
        .map(|t| super::validate::shell_quote(t))
        .collect();
    shown.join(" ")
}

/// Print a JSON object as block YAML (scalars as JSON, which YAML 1.2 reads back).
fn print_yaml(v: &Value, indent: usize) {
    if let Value::Object(map) = v {
        for (k, val) in map {
            match val {
                Value::Object(_) => {
                    println!("{:indent$}{k}:", "");
                    print_yaml(val, indent + 2);
                }
                other => println!("{:indent$}{k}: {other}", ""),
            }
        }
    }
}

/// `hyperdial output RUN`.
pub async fn output(api: &Api, run: &str) -> Result<ExitCode> {
    let text = api
        .get_text(&format!("/api/v1/runs/{}/output", urlencode(run)))
        .await?;
    print!("{text}");
    if text.is_empty() {
        // Empty, not missing: say why rather than print nothing.
        eprintln!(
            "run {run} has no captured output: it printed nothing yet, or it was not started \
             by `hyperdial agent`, `hyperdial tune` or `hyperdial run`, which capture it (a \
             script that calls `hyperdial.init()` by itself prints to its own terminal)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `hyperdial export SWEEP`.
pub async fn export(
    api: &Api,
    sweep: &str,
    format: &str,
    output: Option<&Path>,
) -> Result<ExitCode> {
    if format != "csv" && format != "json" {
        anyhow::bail!("--format {format}: use csv or json");
    }
    let text = api
        .get_text(&format!(
            "/api/v1/sweeps/{}/export?format={format}",
            urlencode(sweep)
        ))
        .await?;
    match output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuse an output file (`-o FILE` of `refine` and `export`) that cannot be written, before
/// any work is done: its directory must exist (the error says to create it, with the
/// `mkdir -p` that does), and the path must not be a directory.
pub fn check_output(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        anyhow::bail!("cannot write {shown}: it is a directory; name a file in it");
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => return Ok(()),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => anyhow::bail!("cannot write {shown}: {} is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "cannot write {shown}: the directory {} does not exist; create it first with \
             `mkdir -p {}`",
            dir.display(),
            super::validate::shell_quote(&dir.display().to_string())
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot write {shown}: cannot read {}",
            dir.display()
        ))),
    }
}

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
            super::progress::short_params(&retry["params"])
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

/// Percent-encode a path or query component.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_program_importing_wandb_is_recognized_in_every_form_of_import() {
        for text in [
            "import wandb\n",
            "\u{feff}import wandb\n",
            "import os, sys, wandb\n",
            "import numpy, wandb as wb\n",
            "import wandb; import os\n",
            "x = 1; import wandb\n",
            "def f():\n    import wandb\r\n",
            "from wandb.sdk import init\n",
            "from lightning.pytorch.loggers import WandbLogger\n",
            "m = importlib.import_module(\"wandb\")\n",
        ] {
            assert!(super::imports_wandb(text), "{text:?}");
        }
        for text in [
            "import wandb_utils\n",
            "import os  # then wandb\n",
            "print('import wandb')\n",
            "from mywandb import x\n",
        ] {
            assert!(!super::imports_wandb(text), "{text:?}");
        }
    }

    use super::*;

    use crate::source::source;

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

    #[test]
    fn the_next_page_command_repeats_every_option_given() {
        let listing = AllRuns {
            project: Some("vision net".into()),
            state: Some(RunState::Failed),
            limit: 20,
            page: 2,
            source: source(Some("http://gpu-box:8337"), None),
        };
        assert_eq!(
            listing.next_page(),
            "hyperdial runs --project 'vision net' --state failed --limit 20 --page 3 \
             --server http://gpu-box:8337"
        );
        let local = AllRuns {
            project: None,
            state: None,
            limit: 50,
            page: 1,
            source: source(None, Some("sweeps.db")),
        };
        assert_eq!(local.next_page(), "hyperdial runs --page 2 --db sweeps.db");
        assert_eq!(
            sync_command(&source(Some("http://gpu-box:8337"), None)),
            "hyperdial sync --server http://gpu-box:8337"
        );
        assert_eq!(
            sync_command(&source(None, Some("sweeps.db"))),
            "hyperdial sync"
        );
    }

    #[test]
    fn notes_keep_value_and_threshold_and_ids_whole() {
        assert_eq!(
            round_numbers(
                "stopped early by hyperband at band 3: val_loss 1.67771996921 is worse than \
                 the threshold 1.5432109876543 (run r0jn43zpy, exit 143, -2.5e-10)",
                6
            ),
            "stopped early by hyperband at band 3: val_loss 1.67772 is worse than the \
             threshold 1.54321 (run r0jn43zpy, exit 143, -2.5e-10)"
        );
        assert_eq!(
            round_numbers("v1.2.345 x_0.123456789 10.0.0.1 1.23456789.5 10.0", 6),
            "v1.2.345 x_0.123456789 10.0.0.1 1.23456789.5 10.0"
        );
        assert_eq!(round_numbers("0.000123456789", 6), "0.000123457");
        let run = json!({
            "state": "stopped_early",
            "retry_of": "r0jn43zpy",
            "error": "stopped early by hyperband at band 3: val_loss 1.67771996921 is worse \
                      than the threshold 1.5432109876543",
            "stop_info": {"rule": "hyperband", "rung": 3.0, "value": 1.67771996921,
                          "threshold": 1.5432109876543, "metric": "val_loss", "step_key": null},
        });
        assert_eq!(
            run_note(&run, || "hyperdial sync".into()),
            "retry of r0jn43zpy; hyperband at band 3: val_loss 1.67772 worse than threshold \
             1.54321"
        );
        let repeat = json!({"state": "finished", "repeat_of": "r0jn43zpy", "seed": 3});
        assert_eq!(
            run_note(&repeat, || "hyperdial sync".into()),
            "repeat of r0jn43zpy (seed 3)"
        );
    }

    #[test]
    fn the_printed_agent_command_reaches_the_server_the_same_way() {
        let mut remote = Remote {
            server: Some("https://sweeps.lan:8337".into()),
            token: None,
            ca_cert: None,
        };
        assert_eq!(
            agent_command("s1", "https://sweeps.lan:8337", &remote, false),
            "`hyperdial agent s1 --server https://sweeps.lan:8337`"
        );
        remote.token = Some("secret".into());
        remote.ca_cert = Some("certs/server.pem".into());
        let command = agent_command("s1", "https://sweeps.lan:8337", &remote, false);
        assert_eq!(
            command,
            "`hyperdial agent s1 --server https://sweeps.lan:8337 --ca-cert certs/server.pem` \
             with the token in HYPERDIAL_TOKEN (the agent reads it from the environment; \
             `--token` would show it to other users in `ps`)"
        );
        assert!(!command.contains("secret"));
        assert!(!command.contains("--token \""), "{command}");
        assert!(
            agent_command("s1", "https://sweeps.lan:8337", &remote, true)
                .starts_with("`hyperdial agent s1 --wandb --server https://sweeps.lan:8337 "),
        );
    }
}
