//! Parameter importance: `GET /api/v1/sweeps/{id}/importance`.
//!
//! As W&B does, a random forest regresses the sweep metric on the parameters and a parameter's
//! importance is the share of the total impurity (squared-error) decrease its splits achieve;
//! beside it stand the Pearson and Spearman correlations of each parameter with the metric.
//!
//! Features: numeric parameters as values, log-scale ones (`log_uniform_values`, …) as
//! `log10(value)` so the forest and Pearson see the scale the search used; categorical
//! parameters one-hot (their columns' importances are summed back to the parameter; no
//! correlation, since categories have no order). Only ended runs with the metric count. Above
//! [`MAX_FOREST_RUNS`] runs the forest is grown on an even subsample (correlations use all).
//! The answer is cached per sweep until another run with the metric ends.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use hyperdial_space::Distribution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::ApiResult;
use crate::error::ApiError;
use crate::AppState;

/// Trees in the forest.
pub const TREES: usize = 100;
/// Runs the forest is grown on at most.
pub const MAX_FOREST_RUNS: usize = 2000;
const MAX_DEPTH: usize = 10;
const MIN_LEAF: usize = 3;

/// How a parameter enters the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Values on a linear scale.
    Linear,
    /// Values on a log scale (features are `log10`).
    Log,
    /// Unordered choices.
    Category,
}

impl Kind {
    /// Name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Linear => "linear",
            Kind::Log => "log",
            Kind::Category => "category",
        }
    }

    /// The kind of a distribution: categoricals are categories (even numeric ones, which the
    /// dashboard shows on category axes; the forest still sees them one-hot).
    pub fn of(d: &Distribution) -> Kind {
        if d.is_categorical() {
            Kind::Category
        } else if d.is_log_scale() {
            Kind::Log
        } else {
            Kind::Linear
        }
    }
}

/// A numeric view of a JSON parameter value.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// Category label of a value (strings without quotes, everything else as JSON).
pub fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---- the forest -------------------------------------------------------------------------

enum Node {
    Leaf(f64),
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[Vec<f64>], i: usize) -> f64 {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                Node::Leaf(v) => return *v,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    at = if x[*feature][i] <= *threshold {
                        *left
                    } else {
                        *right
                    }
                }
            }
        }
    }
}

struct Grower<'a> {
    x: &'a [Vec<f64>],
    y: &'a [f64],
    mtry: usize,
    importance: Vec<f64>,
    rng: StdRng,
    nodes: Vec<Node>,
    scratch: Vec<(f64, f64)>,
}

impl Grower<'_> {
    fn grow(&mut self, idx: &mut [usize], depth: usize) -> usize {
        let n = idx.len();
        let sum: f64 = idx.iter().map(|&i| self.y[i]).sum();
        let mean = sum / n as f64;
        let at = self.nodes.len();
        self.nodes.push(Node::Leaf(mean));
        if depth >= MAX_DEPTH || n < 2 * MIN_LEAF {
            return at;
        }
        let spread = idx.iter().map(|&i| (self.y[i] - mean).powi(2)).sum::<f64>();
        if spread <= 1e-12 * (1.0 + mean * mean) * n as f64 {
            return at;
        }
        let d = self.x.len();
        // Draw `mtry` distinct features (partial Fisher-Yates).
        let mut features: Vec<usize> = (0..d).collect();
        for k in 0..self.mtry.min(d) {
            let j = self.rng.random_range(k..d);
            features.swap(k, j);
        }
        let base = sum * sum / n as f64;
        let mut best: Option<(f64, usize, f64)> = None;
        for &f in &features[..self.mtry.min(d)] {
            self.scratch.clear();
            self.scratch
                .extend(idx.iter().map(|&i| (self.x[f][i], self.y[i])));
            self.scratch.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut left = 0.0;
            for k in 0..n - 1 {
                left += self.scratch[k].1;
                let nl = k + 1;
                if nl < MIN_LEAF || n - nl < MIN_LEAF || self.scratch[k].0 == self.scratch[k + 1].0
                {
                    continue;
                }
                let right = sum - left;
                let gain = left * left / nl as f64 + right * right / (n - nl) as f64 - base;
                if best.is_none_or(|(g, _, _)| gain > g) {
                    let threshold = 0.5 * (self.scratch[k].0 + self.scratch[k + 1].0);
                    best = Some((gain, f, threshold));
                }
            }
        }
        let Some((gain, feature, threshold)) = best.filter(|(g, _, _)| *g > 0.0) else {
            return at;
        };
        self.importance[feature] += gain;
        // Partition: left part holds x <= threshold.
        let mut split = 0;
        for k in 0..n {
            if self.x[feature][idx[k]] <= threshold {
                idx.swap(k, split);
                split += 1;
            }
        }
        let (l, r) = idx.split_at_mut(split);
        let left = self.grow(l, depth + 1);
        let right = self.grow(r, depth + 1);
        self.nodes[at] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        at
    }
}

/// A random-forest fit: impurity importance per feature (summing to 1, or all 0 when no split
/// helped) and the out-of-bag R² (`None` when too few runs were out of bag).
#[derive(Debug, Clone)]
pub struct Forest {
    /// Share of the impurity decrease per feature.
    pub importance: Vec<f64>,
    /// Out-of-bag coefficient of determination.
    pub oob_r2: Option<f64>,
}

/// Grow `trees` regression trees on bootstrap samples of the rows of `x` (given column by
/// column) against `y`. Every split considers every feature (scikit-learn's default for
/// regression forests, which W&B uses): with few parameters, drawing a subset would force
/// splits on irrelevant ones and inflate their importance.
pub fn forest(x: &[Vec<f64>], y: &[f64], trees: usize, seed: u64) -> Forest {
    let n = y.len();
    let d = x.len();
    let mut g = Grower {
        x,
        y,
        mtry: d.max(1),
        importance: vec![0.0; d],
        rng: StdRng::seed_from_u64(seed),
        nodes: Vec::new(),
        scratch: Vec::with_capacity(n),
    };
    let mut oob_sum = vec![0.0; n];
    let mut oob_count = vec![0u32; n];
    if n >= 2 * MIN_LEAF && d > 0 {
        for _ in 0..trees {
            let mut in_bag = vec![false; n];
            let mut idx: Vec<usize> = (0..n)
                .map(|_| {
                    let i = g.rng.random_range(0..n);
                    in_bag[i] = true;
                    i
                })
                .collect();
            g.nodes = Vec::new();
            g.grow(&mut idx, 0);
            let tree = Tree {
                nodes: std::mem::take(&mut g.nodes),
            };
            for i in (0..n).filter(|&i| !in_bag[i]) {
                oob_sum[i] += tree.predict(x, i);
                oob_count[i] += 1;
            }
        }
    }
    let total: f64 = g.importance.iter().sum();
    let importance = g
        .importance
        .iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    let scored: Vec<usize> = (0..n).filter(|&i| oob_count[i] > 0).collect();
    let oob_r2 = (scored.len() >= 5).then(|| {
        let mean = scored.iter().map(|&i| y[i]).sum::<f64>() / scored.len() as f64;
        let sst: f64 = scored.iter().map(|&i| (y[i] - mean).powi(2)).sum();
        let sse: f64 = scored
            .iter()
            .map(|&i| (y[i] - oob_sum[i] / oob_count[i] as f64).powi(2))
            .sum();
        if sst > 0.0 {
            1.0 - sse / sst
        } else {
            0.0
        }
    });
    Forest { importance, oob_r2 }
}

/// Pearson's correlation; `None` when either side is constant or there are fewer than 3 pairs.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len();
    if n < 3 || n != b.len() {
        return None;
    }
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    (saa > 0.0 && sbb > 0.0).then(|| (sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0))
}

/// Ranks from 1, ties sharing their average rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut out = vec![0.0; v.len()];
    let mut k = 0;
    while k < order.len() {
        let mut end = k;
        while end + 1 < order.len() && v[order[end + 1]] == v[order[k]] {
            end += 1;
        }
        let rank = (k + end) as f64 / 2.0 + 1.0;
        for &i in &order[k..=end] {
            out[i] = rank;
        }
        k = end + 1;
    }
    out
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    pearson(&ranks(a), &ranks(b))
}

// ---- the endpoint -----------------------------------------------------------------------

/// A parameter as the model sees it.
struct Param {
    name: String,
    kind: Kind,
    /// Category labels in config order (categoricals only).
    levels: Vec<String>,
}

/// Compute the importance answer from runs' flat params and metrics.
fn compute(params: &[Param], runs: &[(&Value, f64)], maximize: bool) -> Value {
    let n = runs.len();
    let y: Vec<f64> = runs.iter().map(|(_, m)| *m).collect();
    // Feature columns, and which parameter each belongs to.
    let mut columns: Vec<Vec<f64>> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    let mut corr: Vec<(Option<f64>, Option<f64>)> = Vec::new();
    for (pi, p) in params.iter().enumerate() {
        match p.kind {
            Kind::Category => {
                let mut levels = p.levels.clone();
                let labels: Vec<String> = runs
                    .iter()
                    .map(|(ps, _)| ps.get(&p.name).map(label).unwrap_or_default())
                    .collect();
                for l in &labels {
                    if !levels.contains(l) {
                        levels.push(l.clone());
                    }
                }
                let used: Vec<&String> = levels.iter().filter(|l| labels.contains(l)).collect();
                // Two levels need one column; more need one each.
                let take = if used.len() == 2 { 1 } else { used.len() };
                for l in used.iter().take(take) {
                    columns.push(
                        labels
                            .iter()
                            .map(|x| if x == *l { 1.0 } else { 0.0 })
                            .collect(),
                    );
                    owner.push(pi);
                }
                corr.push((None, None));
            }
            Kind::Linear | Kind::Log => {
                let raw: Vec<Option<f64>> = runs
                    .iter()
                    .map(|(ps, _)| {
                        ps.get(&p.name).and_then(number).and_then(|v| {
                            if p.kind == Kind::Log {
                                (v > 0.0).then(|| v.log10())
                            } else {
                                Some(v)
                            }
                        })
                    })
                    .collect();
                let present: Vec<(f64, f64)> = raw
                    .iter()
                    .zip(&y)
                    .filter_map(|(x, y)| x.map(|x| (x, *y)))
                    .collect();
                let (xs, ys): (Vec<f64>, Vec<f64>) = present.iter().copied().unzip();
                corr.push((pearson(&xs, &ys), spearman(&xs, &ys)));
                let mean = if xs.is_empty() {
                    0.0
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                };
                columns.push(raw.iter().map(|x| x.unwrap_or(mean)).collect());
                owner.push(pi);
            }
        }
    }
    // The forest, on an even subsample when there are many runs.
    let rows: Vec<usize> = if n > MAX_FOREST_RUNS {
        (0..MAX_FOREST_RUNS)
            .map(|k| k * n / MAX_FOREST_RUNS)
            .collect()
    } else {
        (0..n).collect()
    };
    let sub_x: Vec<Vec<f64>> = columns
        .iter()
        .map(|c| rows.iter().map(|&i| c[i]).collect())
        .collect();
    let sub_y: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
    let fit = forest(&sub_x, &sub_y, TREES, 0x6879_7065_7264_6961);
    let mut per_param = vec![0.0; params.len()];
    for (c, &p) in owner.iter().enumerate() {
        per_param[p] += fit.importance[c];
    }
    let mut out: Vec<Value> = params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "name": p.name,
                "kind": p.kind.as_str(),
                "importance": if n >= 2 * MIN_LEAF { json!(per_param[i]) } else { Value::Null },
                "pearson": corr[i].0,
                "spearman": corr[i].1,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        let f = |v: &Value| v["importance"].as_f64().unwrap_or(-1.0);
        f(b).total_cmp(&f(a))
    });
    json!({
        "method": "random_forest",
        "trees": TREES,
        "runs": n,
        "forest_runs": rows.len(),
        "goal": if maximize { "maximize" } else { "minimize" },
        "oob_r2": fit.oob_r2,
        "params": out,
    })
}

type Cache = Mutex<HashMap<String, ((i64, i64), Value)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

pub(crate) async fn importance(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let c = &s.controller;
    let store = c.store();
    let sweep = c.sweep(&id).await?;
    let key = format!("{}\u{0}{id}", store.describe());
    let fingerprint = store.finished_fingerprint(&id).await?;
    if let Some((fp, v)) = cache().lock().expect("importance cache").get(&key) {
        if *fp == fingerprint {
            let mut v = v.clone();
            v["cached"] = json!(true);
            return Ok(Json(v).into_response());
        }
    }
    let config = c.config(&sweep)?;
    let params: Vec<Param> = config
        .parameters
        .iter()
        .filter(|p| !matches!(p.distribution, Distribution::Constant { .. }))
        .map(|p| {
            let levels = match &p.distribution {
                Distribution::Categorical { values }
                | Distribution::CategoricalWithProbabilities { values, .. } => {
                    values.iter().map(label).collect()
                }
                _ => Vec::new(),
            };
            Param {
                name: p.name.clone(),
                kind: Kind::of(&p.distribution),
                levels,
            }
        })
        .collect();
    let points = store.sweep_points(&id).await?;
    let maximize = sweep.goal.as_deref() == Some("maximize");
    let started = std::time::Instant::now();
    let metric = sweep.metric_name.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let runs: Vec<(&Value, f64)> = points
            .iter()
            .filter(|p| !p.state.in_flight())
            .filter_map(|p| p.metric.map(|m| (&p.params, m)))
            .collect();
        compute(&params, &runs, maximize)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("importance failed: {e}"),
        )
    })?;
    let mut answer = answer;
    answer["metric"] = json!(metric);
    answer["compute_ms"] = json!(started.elapsed().as_millis() as u64);
    cache()
        .lock()
        .expect("importance cache")
        .insert(key, (fingerprint, answer.clone()));
    answer["cached"] = json!(false);
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forest_finds_the_parameter_that_matters() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 300;
        let a: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let b: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let c: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| 10.0 * (a[i] - 0.5).powi(2) + 0.5 * b[i] + 0.01 * rng.random::<f64>())
            .collect();
        let fit = forest(&[a, b, c], &y, 100, 1);
        assert!(fit.importance[0] > 0.6, "{:?}", fit.importance);
        assert!(
            fit.importance[1] > fit.importance[2],
            "{:?}",
            fit.importance
        );
        assert!((fit.importance.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(fit.oob_r2.unwrap() > 0.8, "{:?}", fit.oob_r2);
    }

    #[test]
    fn correlations_match_known_values() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 4.0, 6.0, 8.0, 10.0];
        assert!((pearson(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        let c = [1.0, 8.0, 27.0, 64.0, 125.0];
        assert!((spearman(&a, &c).unwrap() - 1.0).abs() < 1e-12);
        assert!(pearson(&a, &c).unwrap() < 1.0);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(pearson(&a, &[1.0; 5]), None);
    }

    #[test]
    fn categorical_and_log_parameters() {
        let params = vec![
            Param {
                name: "lr".into(),
                kind: Kind::Log,
                levels: vec![],
            },
            Param {
                name: "opt".into(),
                kind: Kind::Category,
                levels: vec!["adam".into(), "sgd".into(), "rms".into()],
            },
        ];
        let mut values = Vec::new();
        for i in 0..60 {
            let lr = 10f64.powf(-5.0 + 4.0 * (i as f64 / 60.0));
            let opt = ["adam", "sgd", "rms"][i % 3];
            let m = if opt == "sgd" { 1.0 } else { 0.0 } + 0.001 * lr.log10();
            values.push((json!({"lr": lr, "opt": opt}), m));
        }
        let runs: Vec<(&Value, f64)> = values.iter().map(|(p, m)| (p, *m)).collect();
        let out = compute(&params, &runs, false);
        assert_eq!(out["params"][0]["name"], "opt", "{out}");
        assert_eq!(out["params"][0]["pearson"], Value::Null);
        assert_eq!(out["params"][1]["kind"], "log");
        // lr enters as log10: perfectly rank-correlated with its share of the metric.
        assert!(out["params"][1]["spearman"].as_f64().unwrap() > 0.0);
    }
}
