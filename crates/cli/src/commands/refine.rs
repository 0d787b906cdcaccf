//! `hyperdial refine SWEEP`: a new sweep file around the best runs of a sweep (coarse to
//! fine).
//!
//! Reads the sweep's file and its runs from the server, or from the local store without one
//! (the read path of `sweeps` and `runs`, see [`crate::source`]), takes the runs that finished with a
//! metric value, and hands them to [`hyperdial_space::refine`], which narrows each parameter
//! around the best of them (`--top K` runs or the best `--quantile Q`; default the best
//! quarter) and records the sweep as `parent` and under `prior_runs`. The new file is checked
//! by the validator before it is written (to `-o FILE`, else standard output). Each decision
//! (a narrowed range, a dropped or kept value, and why) is printed to standard error and
//! written as a comment above its parameter. A sweep with several objectives is refused
//! (ranking by one would drop most of its Pareto front). Written to another directory, the
//! file names a relative `program` from there.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_space::lineage::inside;
use hyperdial_space::refine::{refine, Evidence, Options, Top};
use hyperdial_wire::RunState;
use serde_json::{Map, Value};

use super::manage::urlencode;
use crate::api::Api;
use crate::source::Source;

/// `hyperdial refine`, asking `api` (a server, or the local store served in this process)
/// opened on `via` (whose options the commands it prints repeat).
pub async fn run(
    api: &Api,
    via: &Source,
    sweep: &str,
    top: Option<usize>,
    quantile: Option<f64>,
    margin: f64,
    output: Option<&Path>,
) -> Result<ExitCode> {
    let info = api
        .get(&format!("/api/v1/sweeps/{}", urlencode(sweep)))
        .await?;
    let id = info["id"].as_str().unwrap_or(sweep).to_string();
    let source = info["source"]
        .as_str()
        .context("the server did not send the sweep's file")?;
    let file = hyperdial_space::source_name(info["file"].as_str());
    let config = hyperdial_space::parse_str(source, file)
        .map_err(|e| anyhow::anyhow!("the sweep's file no longer validates:\n{}", e.render()))?
        .config;
    single_objective(
        &config,
        &id,
        via,
        "refine",
        "follows the best runs of one metric",
    )?;
    let runs = api
        .get(&format!(
            "/api/v1/runs?sweep={}&limit=100000",
            urlencode(&id)
        ))
        .await?;
    let runs: Vec<&Value> = runs["runs"].as_array().into_iter().flatten().collect();
    let state = |r: &Value| r["state"].as_str().and_then(|s| s.parse::<RunState>().ok());
    let (evidence, repeated) = configurations(&runs);
    let top = match (top, quantile) {
        (Some(k), _) => Top::Count(k),
        (None, Some(q)) => Top::Quantile(q),
        (None, None) => Options::default().top,
    };
    if !(margin.is_finite() && margin >= 0.0) {
        anyhow::bail!("--margin must be a number ≥ 0, found {margin}");
    }
    let options = Options {
        top,
        margin,
        ..Options::default()
    };
    let mut refined = refine(source, &config, &id, &evidence, options)?;
    // `tune` runs the program next to the sweep file: written elsewhere, the new file names
    // it from there.
    let moved = match (output, config.program.as_deref()) {
        (Some(out), Some(program)) => {
            let moved = moved_program(program, Path::new(file), out);
            if let Some(new) = &moved {
                refined.text = with_program(&refined.text, new);
            }
            moved
        }
        _ => None,
    };
    // The new file must validate here as it will on the server; anything else is a bug.
    let new = match hyperdial_space::parse_str(&refined.text, "refined.yaml") {
        Ok(v) => v.config,
        Err(e) => anyhow::bail!(
            "the refined file does not validate (please report this):\n{}\n{}",
            e.render(),
            refined.text
        ),
    };
    // The runs inside the new space, each tested once: those `bayes` and `tpe` of the new
    // sweep start from (as the server counts them), and the configurations already tried.
    let within: Vec<&&Value> = runs
        .iter()
        .filter(|r| {
            r["params"]
                .as_object()
                .is_some_and(|p| inside(&new, p).is_some())
        })
        .collect();
    let priors = within
        .iter()
        .filter(|r| {
            matches!(
                state(r),
                Some(RunState::Finished | RunState::StoppedEarly | RunState::Failed)
            )
        })
        .count();
    if repeated == 0 {
        eprintln!(
            "refined sweep {id} around its best {} of {} finished runs",
            refined.top, refined.runs
        );
    } else {
        eprintln!(
            "refined sweep {id} around its best {} of {} finished configurations \
             ({repeated} repeated with other seeds: each counted once, by its repeats' mean)",
            refined.top, refined.runs
        );
    }
    for n in &refined.notes {
        eprintln!("  {}: {}", n.parameter, n.message);
    }
    eprintln!(
        "{priors} runs of {id} lie inside the new space: with `method: bayes` or `tpe` the new sweep starts from them"
    );
    // A finite new space whose every configuration already ran (a grid refined around its
    // best points gives back those points) would try nothing new.
    let tried: std::collections::BTreeSet<String> =
        within.iter().map(|r| r["params"].to_string()).collect();
    if let Ok(size) = hyperdial_space::grid::grid_size(&new.parameters) {
        if size > 0 && tried.len() as u128 >= size {
            eprintln!(
                "warning: all {size} configurations of the new space have already run in {id}: \
                 a sweep of it would try nothing new; widen it (a larger --margin, or a larger \
                 --top) or give the parameters ranges instead of lists"
            );
        }
    }
    match output {
        Some(path) => {
            std::fs::write(path, &refined.text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if let Some(program) = &moved {
                eprintln!(
                    "program: {program} (the sweep's program, named from the new file's directory)"
                );
            }
            // Without a server the new sweep runs on the store this command read.
            let start = if api.is_local_store() {
                "hyperdial tune"
            } else {
                "hyperdial sweep"
            };
            // On the same server or store: `sweep` takes the server's options, `tune` --db.
            eprintln!(
                "wrote {}; start it with `{start} {}{}`",
                path.display(),
                super::validate::shell_quote(&path.display().to_string()),
                via.flags(),
            );
        }
        None => print!("{}", refined.text),
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuse a sweep with several objectives: ranking its runs by one of them would throw away
/// most of its Pareto front. `via`: what the command read, for the `best` command suggested.
pub(crate) fn single_objective(
    config: &hyperdial_space::SweepConfig,
    id: &str,
    via: &Source,
    command: &str,
    what: &str,
) -> Result<()> {
    if !config.is_multi_objective() {
        return Ok(());
    }
    let names: Vec<&str> = config.metrics.iter().map(|m| m.name.as_str()).collect();
    anyhow::bail!(
        "{command} {what}; sweep {id} has {} objectives ({}), and ranking by one of them would \
         drop most of its Pareto front. Run {command} on a single-objective sweep, or list the \
         front runs with `hyperdial best {id}{}` and write their ranges into a new sweep file",
        names.len(),
        names.join(", "),
        via.flags()
    )
}

/// The sweep's relative `program`, as named from the directory of `out` (the new file), or
/// `None` when it needs no change or cannot be found. The program is looked for next to the
/// sweep's file (`file`, as the sweep was created with it, taken from the current directory
/// when relative), where `tune` runs it, else in the current directory, where an agent
/// started here runs it.
fn moved_program(program: &str, file: &Path, out: &Path) -> Option<String> {
    if Path::new(program).is_absolute() {
        return None;
    }
    let parent_dir = file.parent().unwrap_or(Path::new(""));
    let found = [parent_dir.join(program), Path::new(program).to_path_buf()]
        .into_iter()
        .find_map(|p| p.canonicalize().ok())?;
    let out_dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let out_dir = out_dir.canonicalize().ok()?;
    let relative = relative_path(&found, &out_dir);
    let relative = relative.to_str()?.to_string();
    (relative != program).then_some(relative)
}

/// `to` as a path relative to the directory `from` (both absolute and canonical).
fn relative_path(to: &Path, from: &Path) -> std::path::PathBuf {
    let to: Vec<_> = to.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// The evidence `refine` follows, one per configuration, from a sweep's runs (the API's
/// run objects): each run that ended `finished` with a finite metric, a run repeated with
/// other seeds (`hyperdial repeat`) and its repeats counted once at the mean of the repeats
/// ([`hyperdial_server::noise::per_configuration`]: without this a configuration repeated 3
/// times would take 4 of the top places, and a lucky seed would set the new ranges). Also
/// returns how many configurations were repeated.
fn configurations(runs: &[&Value]) -> (Vec<Evidence>, usize) {
    let kept: Vec<(&Value, &Map<String, Value>, f64)> = runs
        .iter()
        .filter(|r| r["state"].as_str() == Some(RunState::Finished.as_str()))
        .filter_map(|r| {
            let value = r["metric"].as_f64().filter(|v| v.is_finite())?;
            Some((*r, r["params"].as_object()?, value))
        })
        .collect();
    let observed: Vec<hyperdial_server::noise::Observed<'_>> = kept
        .iter()
        .map(|(r, _, value)| hyperdial_server::noise::Observed {
            id: r["id"].as_str().unwrap_or_default(),
            repeat_of: r["repeat_of"].as_str(),
            value: *value,
        })
        .collect();
    let grouped = hyperdial_server::noise::per_configuration(&observed);
    let repeated = grouped.iter().filter(|c| c.repeats > 0).count();
    let evidence = grouped
        .iter()
        .map(|c| Evidence {
            params: kept[c.index].1.clone(),
            value: c.value,
        })
        .collect();
    (evidence, repeated)
}

/// `text` with its top-level `program:` line (and any indented continuation lines) replaced by
/// `program: "NEW"`; the refined file always writes top-level keys at column 1.
fn with_program(text: &str, program: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("program:") {
            out.push_str(&format!(
                "program: {}\n",
                Value::String(program.to_string())
            ));
            while lines.next_if(|l| l.starts_with(' ')).is_some() {}
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_configuration_is_one_piece_of_evidence_valued_by_its_repeats() {
        let run = |id: &str, lr: f64, metric: f64, state: &str, of: Option<&str>| {
            json!({"id": id, "state": state, "metric": metric, "repeat_of": of,
                   "params": {"lr": lr, "seed": 0}})
        };
        let runs = [
            run("a", 0.1, 0.20, "finished", None),
            run("b", 0.2, 0.30, "finished", None),
            run("c", 0.3, 0.90, "failed", None),
            // Three repeats of `a`, one of them lucky, and one still running.
            run("a1", 0.1, 0.18, "finished", Some("a")),
            run("a2", 0.1, 0.40, "finished", Some("a")),
            run("a3", 0.1, 0.32, "finished", Some("a")),
            run("a4", 0.1, 0.01, "running", Some("a")),
        ];
        let refs: Vec<&Value> = runs.iter().collect();
        let (evidence, repeated) = configurations(&refs);
        assert_eq!(repeated, 1);
        let values: Vec<(f64, f64)> = evidence
            .iter()
            .map(|e| (e.params["lr"].as_f64().unwrap(), e.value))
            .collect();
        // `a` once, at the mean of its finished repeats (0.30), not its own lucky 0.20.
        assert_eq!(values.len(), 2, "{values:?}");
        assert_eq!(values[0].0, 0.1);
        assert!((values[0].1 - 0.30).abs() < 1e-12, "{values:?}");
        assert_eq!(values[1], (0.2, 0.30));
    }

    #[test]
    fn the_program_line_is_replaced_and_nothing_else() {
        let text = "# a comment\nprogram: train.py\nmethod: random\n";
        assert_eq!(
            with_program(text, "../../train.py"),
            "# a comment\nprogram: \"../../train.py\"\nmethod: random\n"
        );
        assert_eq!(
            relative_path(Path::new("/a/b/train.py"), Path::new("/a/c/d")),
            Path::new("../../b/train.py")
        );
        assert_eq!(
            relative_path(Path::new("/a/train.py"), Path::new("/a")),
            Path::new("train.py")
        );
    }
}
