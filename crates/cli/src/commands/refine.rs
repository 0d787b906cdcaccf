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
//! written as a comment above its parameter.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_space::lineage::inside;
use hyperdial_space::refine::{refine, Evidence, Options, Top};
use hyperdial_wire::RunState;
use serde_json::Value;

use super::manage::urlencode;
use crate::api::Api;

/// `hyperdial refine`, asking `api` (a server, or the local store served in this process).
pub async fn run(
    api: &Api,
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
    let file = info["source_file"].as_str().unwrap_or("sweep.yaml");
    let config = hyperdial_space::parse_str(source, file)
        .map_err(|e| anyhow::anyhow!("the sweep's file no longer validates:\n{}", e.render()))?
        .config;
    single_objective(&config, &id, "refine", "follows the best runs of one metric")?;
    let runs = api
        .get(&format!(
            "/api/v1/runs?sweep={}&limit=100000",
            urlencode(&id)
        ))
        .await?;
    let runs: Vec<&Value> = runs["runs"].as_array().into_iter().flatten().collect();
    let state = |r: &Value| r["state"].as_str().and_then(|s| s.parse::<RunState>().ok());
    let evidence: Vec<Evidence> = runs
        .iter()
        .filter(|r| state(r) == Some(RunState::Finished))
        .filter_map(|r| {
            Some(Evidence {
                params: r["params"].as_object()?.clone(),
                value: r["metric"].as_f64().filter(|v| v.is_finite())?,
            })
        })
        .collect();
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
    let refined = refine(source, &config, &id, &evidence, options)?;
    // The new file must validate here as it will on the server; anything else is a bug.
    let new = match hyperdial_space::parse_str(&refined.text, "refined.yaml") {
        Ok(v) => v.config,
        Err(e) => anyhow::bail!(
            "the refined file does not validate (please report this):\n{}\n{}",
            e.render(),
            refined.text
        ),
    };
    // The runs `bayes` and `tpe` of the new sweep start from (as the server counts them).
    let priors = runs
        .iter()
        .filter(|r| {
            matches!(
                state(r),
                Some(RunState::Finished | RunState::StoppedEarly | RunState::Failed)
            )
        })
        .filter(|r| {
            r["params"]
                .as_object()
                .is_some_and(|p| inside(&new, p).is_some())
        })
        .count();
    eprintln!(
        "refined sweep {id} around its best {} of {} finished runs",
        refined.top, refined.runs
    );
    for n in &refined.notes {
        eprintln!("  {}: {}", n.parameter, n.message);
    }
    eprintln!(
        "{priors} runs of {id} lie inside the new space: with `method: bayes` or `tpe` the new sweep starts from them"
    );
    match output {
        Some(path) => {
            std::fs::write(path, &refined.text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {}; start it with `hyperdial sweep {}`",
                path.display(),
                path.display(),
            );
        }
        None => print!("{}", refined.text),
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuse a sweep with several objectives: ranking its runs by one of them would throw away
/// most of its Pareto front.
pub(crate) fn single_objective(
    config: &hyperdial_space::SweepConfig,
    id: &str,
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
         front runs with `hyperdial best {id}` and write their ranges into a new sweep file",
        names.len(),
        names.join(", ")
    )
}
