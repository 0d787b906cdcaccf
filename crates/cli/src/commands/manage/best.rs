//! `hyperdial best SWEEP`: the run with the best observed metric, or the model's estimate of
//! the best configuration, with its repeats and the arguments that run it again.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::Value;

use super::{fmt_metric, urlencode};
use crate::api::Api;

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
        if let Some(code) = crate::commands::front::best(api, sweep, format).await? {
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
                crate::commands::number::metric(mean),
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
        .map(|t| crate::commands::validate::shell_quote(t))
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
