//! `hyperdial validate FILE`: check a sweep file and show what it describes.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use hyperdial_space::command;
use hyperdial_space::{
    grid, ConfigError, Diagnostic, EarlyTerminate, Method, SweepConfig, Validated,
};
use rand::SeedableRng;
use serde_json::{json, Value};

/// Where the agent writes the `${args_json_file}` of a run; shown in the example argv.
const EXAMPLE_ARGS_FILE: &str = ".hyperdial/runs/<run>/args.json";

/// Run the command; exit 0 for a valid file, 1 for an invalid one.
pub fn run(file: &Path, as_json: bool, seed: u64) -> Result<ExitCode> {
    let name = file.display().to_string();
    match hyperdial_space::parse_file(file) {
        Ok(mut validated) => {
            if let Some(w) = program_warning(file, &validated.config) {
                validated.warnings.push(w);
            }
            let example = Example::sample(&validated.config, seed);
            if as_json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report_json(&name, &validated, &example))?
                );
            } else {
                for w in &validated.warnings {
                    eprintln!("{}", w.render(&name));
                }
                print!("{}", report_text(&name, &validated, &example));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if as_json {
                println!("{}", serde_json::to_string_pretty(&error_json(&err))?);
            } else {
                eprintln!("{}", err.render());
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// The files in `dir` whose names are closest to `program` (a misspelt script name), for a
/// "did you mean" (`None` when no name is close, or the directory cannot be read). At most
/// 10,000 entries are looked at.
pub(crate) fn near_file(dir: &Path, program: &str) -> Option<String> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .take(10_000)
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
    hyperdial_space::diagnostic::did_you_mean(program, &candidates).map(str::to_string)
}

/// A warning when the sweep's script (`program`, run by the interpreter) is not in the sweep
/// file's directory, where `hyperdial tune` runs the command, with the file meant when a
/// name there is close. Only a warning: an agent runs the command in its own directory.
fn program_warning(file: &Path, config: &SweepConfig) -> Option<Diagnostic> {
    let program = command::script_program(config)?;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.join(program).exists() {
        return None;
    }
    // The top-level `program:` line, for the editor to jump to.
    let location = std::fs::read_to_string(file).ok().and_then(|text| {
        text.lines()
            .position(|l| l.starts_with("program:"))
            .map(|i| hyperdial_space::Location::new(i + 1, 1))
    });
    let warning = Diagnostic::warning(
        "program",
        location,
        format!(
            "`{program}` is not in {}, the sweep file's directory, where `hyperdial tune` runs \
             the command (an agent runs it in its own directory)",
            dir.display()
        ),
    );
    Some(match near_file(dir, program) {
        Some(meant) => warning.with_hint(format!("did you mean `{meant}`?")),
        None => warning,
    })
}

/// The configuration shown as the sweep's example run and the argv it produces: for
/// `method: grid`, the grid's first point (the first run agents get); otherwise a draw from
/// the parameters' distributions with the given seed.
struct Example {
    /// `Some(seed)` for a sampled example, `None` for the grid's first point.
    seed: Option<u64>,
    values: Vec<(String, Value)>,
    run_config: Value,
    argv: Result<Vec<String>, String>,
}

impl Example {
    fn sample(config: &SweepConfig, seed: u64) -> Self {
        let first = (config.method == Method::Grid)
            .then(|| grid::grid_point(&config.parameters, 0).ok())
            .flatten();
        let (seed, values) = match first {
            Some(values) => (None, values),
            None => {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let values: Vec<(String, Value)> = config
                    .parameters
                    .iter()
                    .map(|p| (p.name.clone(), p.distribution.sample(&mut rng)))
                    .collect();
                (Some(seed), values)
            }
        };
        // As the strategies and `hyperdial space --sample` do: a parameter whose `when` fails
        // is left out of the run, so the example argv is one a run would get.
        let values = hyperdial_space::condition::retain_active(&config.parameters, values);
        let params: serde_json::Map<String, Value> = values.iter().cloned().collect();
        let args = command::args_for(config, &params);
        let run_config = serde_json::from_str(&command::args_json(&args)).unwrap_or(Value::Null);
        let env = |name: &str| std::env::var(name).ok();
        let argv = command::expand_config(config, &args, Some(Path::new(EXAMPLE_ARGS_FILE)), &env)
            .map_err(|e| e.to_string());
        Example {
            seed,
            values,
            run_config,
            argv,
        }
    }
}

/// The grid's size, in words: the number of configurations, "more than 2^128", or infinite
/// (a parameter with no finite set of values).
fn grid_size_text(config: &SweepConfig) -> String {
    // Past 2^53 steps a `q_uniform` axis is counted by a division of doubles: its last digits
    // are the double's, not the grid's (lists and integer ranges are counted exactly).
    let inexact = config.parameters.iter().any(|p| {
        matches!(
            p.distribution,
            hyperdial_space::Distribution::QUniform { .. }
        ) && p.distribution.grid_len().is_some_and(|n| n > 1 << 53)
    });
    match grid::grid_size(&config.parameters) {
        Ok(n) if inexact => format!("about {:.3e} configurations", n as f64),
        Ok(n) => format!("{n} configurations"),
        Err(grid::GridError::TooLarge) => "more than 2^128 configurations".into(),
        Err(_) => "infinite (continuous parameters)".into(),
    }
}

pub(crate) fn early_terminate_text(et: &EarlyTerminate) -> String {
    let num = |x: f64| {
        command::python_str(&json!(x))
            .trim_end_matches(".0")
            .to_string()
    };
    match et {
        EarlyTerminate::Hyperband(hb) => {
            let bands = hb.bands(6);
            let mut shown: Vec<String> = bands.iter().map(u64::to_string).collect();
            let form = if hb.max_iter.is_some() {
                format!("max_iter {} with s {}", hb.max_iter.unwrap_or(0), hb.s.unwrap_or(0))
            } else {
                shown.push("...".into());
                format!("min_iter {}", hb.min_iter.unwrap_or(0))
            };
            let judged = if hb.strict {
                "its value at the band"
            } else {
                "its best value so far (strict: false)"
            };
            format!(
                "hyperband ({form}, eta {}): compare runs after {} logged values of the metric, judging each by {judged}",
                num(hb.eta),
                shown.join(", ")
            )
        }
        EarlyTerminate::Asha(a) => {
            let step = a.step_key.as_deref().unwrap_or("logged values of the metric");
            let mut rungs = Vec::new();
            let mut r = a.grace_period as f64;
            while rungs.len() < 6 && a.max_t.is_none_or(|m| r <= m as f64) {
                rungs.push((r as u64).to_string());
                r *= a.reduction_factor;
            }
            if a.max_t.is_none() {
                rungs.push("...".into());
            }
            format!(
                "asha (reduction factor {}, {} bracket{}): rungs at {} {step}",
                num(a.reduction_factor),
                a.brackets,
                if a.brackets == 1 { "" } else { "s" },
                rungs.join(", ")
            )
        }
        EarlyTerminate::Median(m) => format!(
            "median stopping: after {} finished runs, stop a run whose best value is worse than their median at the same step (no stops during the first {} {})",
            m.min_runs,
            m.warmup,
            m.step_key.as_deref().unwrap_or("logged values")
        ),
    }
}

/// Quote an argv item for display the way a POSIX shell would need it.
pub fn shell_quote(token: &str) -> String {
    let plain = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:+,@%^".contains(c));
    if plain {
        token.to_string()
    } else if token.contains('\'') && !token.contains(['"', '$', '`', '\\', '!']) {
        // A Python dict or list of strings (`--optimizer={'kind': 'adam'}`) reads better in
        // double quotes, where nothing in it is special.
        format!("\"{token}\"")
    } else {
        format!("'{}'", token.replace('\'', "'\\''"))
    }
}

/// A parameter's `when`, as `optimizer = sgd and layers in [2, 3]`; `None` when it has none.
fn when_text(when: &[hyperdial_space::Condition]) -> Option<String> {
    if when.is_empty() {
        return None;
    }
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let parts: Vec<String> = when
        .iter()
        .map(|c| match c.values.as_slice() {
            [one] => format!("{} = {}", c.parent, shown(one)),
            many => format!(
                "{} in [{}]",
                c.parent,
                many.iter().map(shown).collect::<Vec<_>>().join(", ")
            ),
        })
        .collect();
    Some(parts.join(" and "))
}

fn report_text(file: &str, v: &Validated, ex: &Example) -> String {
    let c = &v.config;
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<16}{value}\n"));
    line("file", format!("{file} (valid)"));
    if let Some(name) = &c.name {
        line("name", name.clone());
    }
    if let Some(project) = &c.project {
        line("project", project.clone());
    }
    line("method", c.method.as_str().to_string());
    match &c.metric {
        Some(_) if c.is_multi_objective() => {
            let listed: Vec<String> = c
                .objectives()
                .iter()
                .map(|m| format!("{} ({})", m.name, m.goal.as_str()))
                .collect();
            line(
                "objectives",
                format!("{} (Pareto front)", listed.join(", ")),
            );
        }
        Some(m) => {
            let mut s = format!("{} ({})", m.name, m.goal.as_str());
            if let Some(t) = m.target {
                s.push_str(&format!(", target {}", command::python_str(&json!(t))));
            }
            line("metric", s);
        }
        None => line("metric", "none".into()),
    }
    if let Some(cap) = c.run_cap {
        line("run_cap", cap.to_string());
    }
    if let Some(budget) = &c.budget {
        line("budget", budget.describe());
    }
    if c.retry != hyperdial_space::Retry::default() {
        let on: Vec<&str> = c.retry.on.iter().map(|o| o.as_str()).collect();
        line(
            "retry",
            format!(
                "up to {} more run(s) of a configuration whose run ended {}; {} interruptions in a row end it failed",
                c.retry.max,
                if on.is_empty() { "badly".to_string() } else { on.join(" or ") },
                c.retry.interrupted
            ),
        );
    }
    if let Some(limit) = c.run_time_limit_s {
        line(
            "run_time_limit",
            format!(
                "{} per run (a run still going then is stopped and fails)",
                hyperdial_space::budget::seconds_text(limit)
            ),
        );
    }
    line("grid size", grid_size_text(c));
    line(
        "early_terminate",
        c.early_terminate
            .as_ref()
            .map(early_terminate_text)
            .unwrap_or_else(|| "none".into()),
    );
    line("parameters", format!("{}", c.parameters.len()));
    let width = c.parameters.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let ordered = ordered_lists(c);
    for (i, p) in c.parameters.iter().enumerate() {
        out.push_str(&format!(
            "  {:<width$}  {}{}{}\n",
            p.name,
            p.distribution.describe(),
            ordered
                .iter()
                .find(|(param, _)| *param == i)
                .map(|(_, log)| if *log {
                    ", searched as ordered values (log-spaced)"
                } else {
                    ", searched as ordered values"
                })
                .unwrap_or_default(),
            when_text(&p.when)
                .map(|w| format!("  (only when {w})"))
                .unwrap_or_default()
        ));
    }
    match ex.seed {
        Some(seed) => out.push_str(&format!("example run (seed {seed}):\n")),
        None => out.push_str("first run (grid position 0):\n"),
    }
    for (name, value) in &ex.values {
        out.push_str(&format!("  {name:<width$}  {value}\n"));
    }
    match &ex.argv {
        Ok(argv) => {
            let shown: Vec<String> = argv.iter().map(|t| shell_quote(t)).collect();
            out.push_str(&format!("  argv  {}\n", shown.join(" ")));
        }
        Err(e) => out.push_str(&format!("  argv  cannot be built: {e}\n")),
    }
    if !v.warnings.is_empty() {
        out.push_str(&format!(
            "{} warning{} (printed above)\n",
            v.warnings.len(),
            if v.warnings.len() == 1 { "" } else { "s" }
        ));
    }
    out
}

/// The parameters (index, log-spaced) whose numeric `values` list the sweep's model-based
/// method searches as an ordered dimension (`bayes`, `tpe`, `sobol`: see
/// `hyperdial_search::encode`); a W&B `categorical` all the same for `grid` and `random`.
fn ordered_lists(c: &SweepConfig) -> Vec<(usize, bool)> {
    if !matches!(c.method, Method::Bayes | Method::Tpe | Method::Sobol) {
        return Vec::new();
    }
    hyperdial_search::encode::Space::new(c)
        .dims
        .iter()
        .filter_map(|d| match d {
            hyperdial_search::encode::Dim::Ordinal { param, log, .. } => Some((*param, *log)),
            _ => None,
        })
        .collect()
}

fn report_json(file: &str, v: &Validated, ex: &Example) -> Value {
    let c = &v.config;
    let ordered = ordered_lists(c);
    let parameters: Vec<Value> = c
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "name": p.name,
                "path": p.path,
                "line": p.location.line,
                "description": p.distribution.describe(),
                "ordered": ordered.iter().find(|(param, _)| *param == i).map(|(_, log)| json!({"log": log})),
                "when": when_text(&p.when),
                "spec": p.distribution,
                "grid_values": p.distribution.grid_len().filter(|n| *n <= 1000).and_then(|_| p.distribution.grid_values()),
            })
        })
        .collect();
    json!({
        "file": file,
        "valid": true,
        "name": c.name,
        "description": c.description,
        "project": c.project,
        "program": c.program,
        "method": c.method,
        "metric": c.metric,
        "objectives": c.objectives(),
        "run_cap": c.run_cap,
        "budget": c.budget,
        "run_time_limit_s": c.run_time_limit_s,
        "retry": c.retry,
        "grid_size": grid::grid_size(&c.parameters).ok().map(|n| n.to_string()),
        "early_terminate": c.early_terminate.as_ref().map(|et| {
            let bands = match et {
                EarlyTerminate::Hyperband(hb) => Some(hb.bands(if hb.max_iter.is_some() { usize::MAX } else { 10 })),
                _ => None,
            };
            json!({"rule": et, "bands": bands, "summary": early_terminate_text(et)})
        }),
        "command": c.command,
        "interpreter": c.interpreter,
        "parameters": parameters,
        "example": {
            "seed": ex.seed,
            "grid_index": ex.seed.is_none().then_some(0),
            "config": ex.run_config,
            "argv": ex.argv.as_ref().ok(),
            "argv_error": ex.argv.as_ref().err(),
        },
        "warnings": v.warnings,
    })
}

fn error_json(err: &ConfigError) -> Value {
    let errors: Vec<&Diagnostic> = err.errors().collect();
    let warnings: Vec<&Diagnostic> = err.diagnostics.iter().filter(|d| !d.is_error()).collect();
    json!({
        "file": err.file,
        "valid": false,
        "errors": errors,
        "warnings": warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::{grid_size_text, shell_quote};

    #[test]
    fn a_grid_past_2_53_configurations_is_told_approximately() {
        let size = |text: &str| {
            grid_size_text(&hyperdial_space::parse_str(text, "s.yaml").unwrap().config)
        };
        assert_eq!(
            size("method: grid\nparameters: {a: {values: [1, 2, 3]}}\n"),
            "3 configurations"
        );
        // Counted exactly past 2^53 too: 2^60 integers.
        assert_eq!(
            size("method: grid\nparameters: {a: {min: 1, max: 1152921504606846976}}\n"),
            "1152921504606846976 configurations"
        );
        // 1e12 / 1e-9 steps: the double's division, 1000000000000001835008, is not the count.
        assert_eq!(
            size("method: grid\nparameters: {a: {distribution: q_uniform, min: 0, max: 1e12, q: 1e-9}}\n"),
            "about 1.000e21 configurations"
        );
    }

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("--lr=0.1"), "--lr=0.1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "\"it's\"");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            shell_quote("--optimizer={'kind': 'adam'}"),
            "\"--optimizer={'kind': 'adam'}\""
        );
        assert_eq!(shell_quote("it's $HOME"), "'it'\\''s $HOME'");
        // What a POSIX shell makes of each quoted form is the item itself.
        for token in [
            "--optimizer={'kind': 'adam', 'lr': 0.1}",
            "it's $HOME `x` \\ \" !",
            "a b; rm -rf /",
            "",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(token)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), token);
        }
    }
}
