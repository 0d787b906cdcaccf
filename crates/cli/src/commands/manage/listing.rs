//! `hyperdial sweeps`, `runs SWEEP` and `runs --all`: the tables of sweeps and runs, and the
//! note beside each run (its error, or why it was stopped early), with every digit that matters.

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use hyperdial_wire::RunState;
use serde_json::Value;

use super::{fmt_metric, urlencode};
use crate::api::Api;
use crate::source::Source;

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
        let objectives = super::objective_names(s);
        let (metric, best) = if !objectives.is_empty() {
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
            crate::commands::budget::state_word(s),
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
        (_, Some(error)) => round_numbers(error, crate::commands::number::DIGITS),
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
    hyperdial_server::early_stop::reason(info, crate::commands::number::metric)
}

/// `text` with every decimal number in it (a word of digits with a point or an exponent,
/// such as `1.67771996921`) written with `digits` significant digits
/// ([`crate::commands::number::general`]); integers and digits inside words (run ids) are left as
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
            out.push_str(&crate::commands::number::general(x, digits));
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
    // A multi-objective sweep shows each objective's final value (the run's summary), the
    // values its front is made of; other sweeps their metric (the best value it reached).
    let objectives = super::objective_names(&sw);
    let value_columns = if objectives.is_empty() {
        vec![sw["metric"]["name"]
            .as_str()
            .unwrap_or("metric")
            .to_string()]
    } else {
        objectives.clone()
    };
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    let mut header = vec!["#".to_string(), "run".into(), "state".into()];
    header.extend(value_columns);
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
        ];
        if objectives.is_empty() {
            row.push(fmt_metric(&r["metric"]));
        }
        for name in &objectives {
            row.push(fmt_metric(&r["summary"][name]));
        }
        for p in &params {
            row.push(match &r["params"][p] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => crate::commands::progress::table_value(other),
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
            command.push_str(&format!(
                " --project {}",
                crate::commands::validate::shell_quote(p)
            ));
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
        (Value::String(_), _) => crate::commands::progress::short_params(&r["params"]),
        (_, Some(argv)) => argv
            .iter()
            .map(|a| crate::commands::validate::shell_quote(a.as_str().unwrap_or("")))
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::source::source;
    use serde_json::json;

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
}
