//! Signal against seed noise: `hyperdial repeat SWEEP --top K --seeds N [--param NAME]`
//! queues the K best configurations of a sweep N more times each with distinct seeds, and
//! `hyperdial noise SWEEP` prints the seed-noise report (`GET /api/v1/sweeps/{id}/noise`).
//!
//! Which configurations: the sweep's runs that ended `finished` with a finite metric, other
//! than repeats, grouped by their parameters without the seed parameter; each configuration
//! is ranked by its best run (by the sweep's goal), and that run is the one repeated
//! (`repeat_of`).
//!
//! How the seed reaches the program: through the seed parameter (`--param NAME`, else a
//! parameter named `seed` when the sweep has one), whose value in the repeat's config is the
//! seed, so it is in the argv like any parameter; and always through the environment
//! variable `HYPERDIAL_SEED`, which the agent sets for the run's process (the only way when
//! the sweep has no seed parameter). A named parameter must be a parameter of the sweep (a
//! constant one, `seed: {value: 0}`, is enough).
//!
//! Which seeds: for each configuration, the N smallest integers from 1 that none of its runs
//! has used yet (as a repeat's seed or as the seed parameter's value), so running `repeat`
//! again adds new seeds.
//!
//! Both commands read and write through the API; without `--server` they work on the local
//! store (see [`crate::source`]): the runs are queued there, and `hyperdial tune FILE` (which
//! resumes the sweep) or an agent of a server on that store runs them.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_wire::api::{NoiseReport, QueueRun, QueueRunsRequest};
use serde_json::{Map, Value};

use super::manage::urlencode;
use crate::api::Api;
use crate::source::{Source, Target};

/// The parameter name taken as the seed parameter when the sweep has it and none is named.
pub const DEFAULT_SEED_PARAM: &str = "seed";

/// What `hyperdial repeat` asks for.
#[derive(Debug, Clone)]
pub struct Ask {
    /// Configurations to repeat.
    pub top: usize,
    /// Seeds per configuration.
    pub seeds: usize,
    /// The seed parameter, if named.
    pub param: Option<String>,
}

/// One configuration picked to repeat.
#[derive(Debug, Clone, PartialEq)]
struct Pick {
    run: String,
    number: Option<i64>,
    metric: f64,
    params: Map<String, Value>,
    seeds: Vec<i64>,
}

/// The parameters of a run without the seed parameter, as text (equal configurations give
/// equal text: serde_json's maps are sorted).
fn config_key(params: &Map<String, Value>, seed_param: Option<&str>) -> String {
    let mut p = params.clone();
    if let Some(name) = seed_param {
        p.remove(name);
    }
    Value::Object(p).to_string()
}

/// The best `ask.top` configurations of `runs` (the API's run objects) with `ask.seeds` new
/// seeds each (see the module docs).
fn pick(runs: &[Value], maximize: bool, seed_param: Option<&str>, ask: &Ask) -> Vec<Pick> {
    let empty = Map::new();
    let params_of = |r: &Value| r["params"].as_object().unwrap_or(&empty).clone();
    // Seeds each configuration has used, by key.
    let mut used: HashMap<String, BTreeSet<i64>> = HashMap::new();
    for r in runs {
        let params = params_of(r);
        let key = config_key(&params, seed_param);
        let set = used.entry(key).or_default();
        if let Some(seed) = r["seed"].as_i64() {
            set.insert(seed);
        }
        if let Some(seed) = seed_param
            .and_then(|n| params.get(n))
            .and_then(Value::as_i64)
        {
            set.insert(seed);
        }
    }
    let mut best: HashMap<String, (f64, &Value)> = HashMap::new();
    for r in runs {
        if r["state"] != "finished" || !r["repeat_of"].is_null() {
            continue;
        }
        let Some(m) = r["metric"].as_f64().filter(|v| v.is_finite()) else {
            continue;
        };
        let key = config_key(&params_of(r), seed_param);
        let better = |old: f64| if maximize { m > old } else { m < old };
        match best.get(&key) {
            Some((old, _)) if !better(*old) => {}
            _ => {
                best.insert(key, (m, r));
            }
        }
    }
    let mut ranked: Vec<(String, f64, &Value)> =
        best.into_iter().map(|(k, (m, r))| (k, m, r)).collect();
    ranked.sort_by(|a, b| {
        let by_metric = if maximize {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        };
        by_metric.then_with(|| a.2["number"].as_i64().cmp(&b.2["number"].as_i64()))
    });
    ranked
        .into_iter()
        .take(ask.top)
        .map(|(key, metric, r)| {
            let taken = used.get(&key).cloned().unwrap_or_default();
            let seeds = (1i64..)
                .filter(|s| !taken.contains(s))
                .take(ask.seeds)
                .collect();
            Pick {
                run: r["id"].as_str().unwrap_or_default().to_string(),
                number: r["number"].as_i64(),
                metric,
                params: params_of(r),
                seeds,
            }
        })
        .collect()
}

/// Parameters shown compactly: `a=1, lr=0.01` (the seed parameter left out).
fn shown(params: &Map<String, Value>, seed_param: Option<&str>) -> String {
    params
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != seed_param)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `hyperdial repeat`.
pub async fn repeat(source: &Source, sweep: &str, ask: &Ask) -> Result<ExitCode> {
    if ask.top == 0 || ask.seeds == 0 {
        anyhow::bail!("--top and --seeds must be at least 1");
    }
    let reader = source.open().await?;
    let result = queue(&reader.api, source, sweep, ask).await;
    reader.close().await;
    result
}

async fn queue(api: &Api, source: &Source, sweep: &str, ask: &Ask) -> Result<ExitCode> {
    let info = api
        .get(&format!("/api/v1/sweeps/{}", urlencode(sweep)))
        .await?;
    let id = info["id"].as_str().unwrap_or(sweep).to_string();
    let text = info["source"]
        .as_str()
        .context("the server did not send the sweep's file")?;
    let file = hyperdial_space::source_name(info["file"].as_str());
    let config = hyperdial_space::parse_str(text, file)
        .map_err(|e| anyhow::anyhow!("the sweep's file no longer validates:\n{}", e.render()))?
        .config;
    if config.metric.is_none() {
        anyhow::bail!("sweep {id} has no `metric`: there is nothing to rank or to measure");
    }
    super::refine::single_objective(
        &config,
        &id,
        source,
        "repeat",
        "runs the best configurations of one metric again",
    )?;
    let has = |name: &str| config.parameters.iter().any(|p| p.name == name);
    let seed_param: Option<String> = match &ask.param {
        Some(name) if has(name) => Some(name.clone()),
        Some(name) => anyhow::bail!(
            "`{name}` is not a parameter of sweep {id}: add it to the sweep file (a constant \
             one is enough, `{name}: {{value: 0}}`), or leave --param out and read the seed \
             from HYPERDIAL_SEED"
        ),
        None if has(DEFAULT_SEED_PARAM) => Some(DEFAULT_SEED_PARAM.to_string()),
        None => None,
    };
    let maximize = info["metric"]["goal"] == "maximize";
    let runs = api
        .get(&format!(
            "/api/v1/runs?sweep={}&limit=100000",
            urlencode(&id)
        ))
        .await?;
    let runs: Vec<Value> = runs["runs"].as_array().cloned().unwrap_or_default();
    let picks = pick(&runs, maximize, seed_param.as_deref(), ask);
    if picks.is_empty() {
        anyhow::bail!("sweep {id} has no finished run with its metric yet: nothing to repeat");
    }
    let body = QueueRunsRequest {
        runs: picks
            .iter()
            .flat_map(|p| {
                p.seeds.iter().map(|&seed| QueueRun {
                    repeat_of: p.run.clone(),
                    params: seed_param
                        .iter()
                        .map(|name| (name.clone(), Value::from(seed)))
                        .collect(),
                    seed,
                })
            })
            .collect(),
    };
    let answer = api
        .post(&format!("/api/v1/sweeps/{}/runs", urlencode(&id)), &body)
        .await?;
    let queued = answer["runs"].as_array().map_or(0, Vec::len);
    println!(
        "queued {queued} runs in sweep {id}: the best {} configurations × {} seeds",
        picks.len(),
        ask.seeds
    );
    for p in &picks {
        let seeds: Vec<String> = p.seeds.iter().map(i64::to_string).collect();
        println!(
            "  run {} (#{}, {} = {}): {}; seeds {}",
            p.run,
            p.number.unwrap_or_default(),
            info["metric"]["name"].as_str().unwrap_or("metric"),
            super::number::metric(p.metric),
            shown(&p.params, seed_param.as_deref()),
            seeds.join(", ")
        );
    }
    match &seed_param {
        Some(name) => {
            println!("the seed reaches each run as its parameter `{name}` and in HYPERDIAL_SEED")
        }
        None => {
            println!("the sweep has no seed parameter: each run reads its seed from HYPERDIAL_SEED")
        }
    }
    let here = Path::new(crate::embedded::STATE_DIR);
    match source.target(here) {
        Target::Server(_) => println!(
            "run them: {}",
            super::manage::agent_command(&id, api.base(), &source.remote, false)
        ),
        Target::Store(_) => {
            // `tune` takes no server options: only a store named with --db is repeated.
            let db_flag = if source.db.is_some() {
                source.flags()
            } else {
                String::new()
            };
            println!("run them: hyperdial tune {file}{db_flag}   (it resumes sweep {id})");
        }
    }
    println!("then: hyperdial noise {id}{}", source.flags());
    Ok(ExitCode::SUCCESS)
}

/// `hyperdial noise`.
pub async fn noise(api: &Api, source: &Source, sweep: &str, json: bool) -> Result<ExitCode> {
    let value = api
        .get(&format!("/api/v1/sweeps/{}/noise", urlencode(sweep)))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let report: NoiseReport =
        serde_json::from_value(value).context("the server's noise report is not as expected")?;
    let seed_params = if report.configurations.is_empty() {
        Vec::new()
    } else {
        let runs = api
            .get(&format!(
                "/api/v1/runs?sweep={}&limit=100000",
                urlencode(&report.sweep)
            ))
            .await?;
        seed_params_of(runs["runs"].as_array().map(Vec::as_slice).unwrap_or(&[]))
    };
    for line in noise_lines(&report, &seed_params, &source.flags()) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A number with 4 significant figures.
fn num(v: f64) -> String {
    super::number::general(v, super::number::SHORT_DIGITS)
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), num)
}

/// The parameters that carry the seed: those every repeat (a run with `repeat_of` and a
/// `seed`) sets to its seed. A configuration's statistics are over its repeats' seeds, so the
/// seed value of the run that was repeated is not one of its parameters.
fn seed_params_of(runs: &[Value]) -> Vec<String> {
    let repeats: Vec<&Value> = runs
        .iter()
        .filter(|r| !r["repeat_of"].is_null() && r["seed"].is_i64())
        .collect();
    let Some(first) = repeats.first() else {
        return Vec::new();
    };
    first["params"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| {
            repeats
                .iter()
                .all(|r| r["params"][k.as_str()].as_i64() == r["seed"].as_i64())
        })
        .cloned()
        .collect()
}

/// The lines `hyperdial noise` prints; `seed_params` are left out of each configuration's
/// parameters; `via` is what it read from, as options to repeat in the command it suggests.
pub fn noise_lines(r: &NoiseReport, seed_params: &[String], via: &str) -> Vec<String> {
    let metric = r.metric.as_deref().unwrap_or("metric");
    let mut out = vec![format!("seed noise of sweep {} ({metric})", r.sweep)];
    if r.configurations.is_empty() {
        out.push(format!(
            "no repeats yet: queue some with `hyperdial repeat {} --top 3 --seeds 5{via}`",
            r.sweep
        ));
        return out;
    }
    out.push(format!(
        "{:<22} {:>10} {:>10} {:>6} {:>8}  params",
        "configuration", "mean", "std", "seeds", "pending"
    ));
    for c in &r.configurations {
        let params = c
            .params
            .iter()
            .filter(|(k, _)| !seed_params.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(format!(
            "{:<22} {:>10} {:>10} {:>6} {:>8}  {params}",
            format!("{} (#{})", c.run, c.number.unwrap_or_default()),
            opt(c.mean),
            opt(c.std),
            c.count,
            c.pending
        ));
    }
    out.push(format!(
        "seed noise (pooled std within configurations): {} ({} degrees of freedom)",
        opt(r.seed_noise),
        r.seed_noise_df
    ));
    out.push(format!(
        "spread across configurations (std of the means of {}): {}",
        r.spread_configurations,
        opt(r.spread)
    ));
    match r.ratio {
        Some(ratio) => out.push(format!(
            "noise / spread: {}{}",
            num(ratio),
            if ratio >= 0.5 {
                " (seeds alone move the metric about as much as the parameters do)"
            } else {
                ""
            }
        )),
        None => out.push(
            "noise / spread: - (needs 2 finished repeats of a configuration and 2 configurations)"
                .into(),
        ),
    }
    match &r.comparison {
        Some(c) => out.push(format!(
            "best {} vs runner-up {}: difference {}, Welch's t = {}, df = {}, p = {} → {} (distinguishable when p < {})",
            c.best,
            c.runner_up,
            num(c.difference),
            num(c.t),
            num(c.df),
            num(c.p_value),
            if c.distinguishable {
                "distinguishable"
            } else {
                "not distinguishable"
            },
            c.alpha
        )),
        None => out.push(
            "best vs runner-up: - (needs 2 configurations with 2 finished repeats each)".into(),
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(id: &str, n: i64, a: i64, seed: Option<i64>, m: f64, of: Option<&str>) -> Value {
        let mut params = json!({ "a": a });
        if let Some(s) = seed {
            params["seed"] = json!(s);
        }
        json!({"id": id, "number": n, "state": "finished", "params": params, "metric": m,
               "repeat_of": of, "seed": of.and(seed)})
    }

    #[test]
    fn picks_the_best_configurations_and_fresh_seeds() {
        let runs = vec![
            run("r1", 1, 1, Some(0), 0.5, None),
            run("r2", 2, 2, Some(0), 0.2, None),
            run("r3", 3, 3, Some(0), 0.3, None),
            // Same configuration as r2 (another seed value): one configuration, best 0.1.
            run("r4", 4, 2, Some(1), 0.1, None),
            // A repeat is never picked, but its seed is used.
            run("r5", 5, 3, Some(2), 0.0, Some("r3")),
        ];
        let ask = Ask {
            top: 2,
            seeds: 3,
            param: None,
        };
        let picks = pick(&runs, false, Some("seed"), &ask);
        assert_eq!(picks.len(), 2);
        assert_eq!(
            (picks[0].run.as_str(), picks[0].seeds.clone()),
            ("r4", vec![2, 3, 4])
        );
        assert_eq!(
            (picks[1].run.as_str(), picks[1].seeds.clone()),
            ("r3", vec![1, 3, 4])
        );
        // Maximize: the largest first; without a seed parameter every seed value differs.
        let picks = pick(&runs, true, None, &ask);
        assert_eq!(picks[0].run, "r1");
        assert_eq!(picks[0].seeds, vec![1, 2, 3]);
        assert_eq!(picks.len(), 2);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(0.123456), "0.1235");
        assert_eq!(num(123.456), "123.5");
        assert_eq!(num(0.0), "0");
    }
}
