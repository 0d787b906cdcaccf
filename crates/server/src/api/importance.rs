//! Parameter importance: `GET /api/v1/sweeps/{id}/importance?state=finished`.
//!
//! As W&B does, a random forest regresses the sweep metric on the parameters and a parameter's
//! importance is the share of the total impurity (squared-error) decrease its splits achieve;
//! beside it stand the Pearson and Spearman correlations of each parameter with the metric.
//!
//! Which runs: only those in the asked states (`state=`, a comma list of run states; default
//! `finished`), since a run stopped early or failed reports a truncated metric that would teach
//! the forest the length of a run rather than the effect of a parameter.
//!
//! Honesty: the [`TREES`] trees are grown as [`SUB_FORESTS`] sub-forests, each tree on its own
//! bootstrap sample; the spread (standard deviation) of a parameter's share across the
//! sub-forests is its uncertainty. No importance is given (`evidence` says why) with fewer than
//! [`MIN_RUNS`] runs, or when the out-of-bag R² is below [`MIN_OOB_R2`] (0.05): the forest then
//! predicts the metric no better than its mean, and any ranking would be noise.
//!
//! Effects a correlation misses: beside the impurity share, each parameter's *main effect* is a
//! first-order functional-ANOVA term of the forest, after Hutter, Hoos and Leyton-Brown, "An
//! Efficient Approach for Assessing Hyperparameter Importance" (ICML 2014), the method behind
//! fANOVA and Optuna's `FanovaImportanceEvaluator`: the variance, over the parameter's values,
//! of the forest's prediction averaged over the other parameters (its partial dependence),
//! divided by the variance of the forest's prediction. Where fANOVA averages over the whole
//! configuration space, this averages over the runs observed (the partial dependence of
//! Friedman 2001), which needs no bounds for unbounded parameters. A U-shaped effect has a
//! Pearson correlation near 0 and a large main effect.
//!
//! Features: numeric parameters as values, log-scale ones (`log_uniform_values`, …) as
//! `log10(value)` so the forest and Pearson see the scale the search used; categorical
//! parameters one-hot (their columns' importances are summed back to the parameter, and their
//! main effect sets all of them at once; no correlation, since categories have no order).
//! A parameter missing from a run (a conditional parameter that was inactive there) is never
//! read as 0: correlations use the runs that have it, the forest sees the mean of the present
//! values in its place (a categorical one: a level of its own).
//! Above [`MAX_FOREST_RUNS`] runs the forest is grown on an even subsample (correlations use
//! all). The answer is cached per sweep and states until another run with the metric ends.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use hyperdial_space::Distribution;
use hyperdial_wire::api::{Evidence, Goal, Importance, ParamImportance};
use hyperdial_wire::RunState;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr;

use super::{ApiResult, Params};
use crate::error::ApiError;
use crate::AppState;

/// Trees in the forest (all sub-forests together).
pub const TREES: usize = 100;
/// Sub-forests the trees are split into; the spread across them is the uncertainty.
pub const SUB_FORESTS: usize = 5;
/// Fewest runs with the metric for importances to be given.
pub const MIN_RUNS: usize = 10;

/// The out-of-bag R² below which the forest counts as predicting the metric no better than
/// its mean ([`Evidence::NoSignal`]): a forest that explains under 5 % of the held-out
/// variance ranks parameters by noise, and an R² printed as `0.00` beside importances reads
/// as a contradiction.
pub const MIN_OOB_R2: f64 = 0.05;
/// Most values of a parameter at which its partial dependence is evaluated.
const GRID: usize = 16;
/// Most runs the partial dependence averages over.
const PD_ROWS: usize = 256;
/// Runs the forest is grown on at most.
pub const MAX_FOREST_RUNS: usize = 2000;
const MAX_DEPTH: usize = 10;
const MIN_LEAF: usize = 3;

/// How a parameter enters the model: linear values, `log10` of log-scale values, or one-hot
/// categories.
pub use hyperdial_wire::api::AxisKind as Kind;

/// The kind of a distribution, as the search sees it: a `values` list of three or more
/// distinct numbers is ordered values (log-scaled when geometric, as
/// [`hyperdial_search::encode::ordered_scale`] decides), so the dashboard draws it on a number
/// axis and the forest sees numbers with their correlations; other lists are categories
/// (one-hot for the forest).
pub fn kind_of(d: &Distribution) -> Kind {
    match d {
        Distribution::Categorical { values }
        | Distribution::CategoricalWithProbabilities { values, .. } => {
            match hyperdial_search::encode::ordered_scale(values) {
                Some(true) => Kind::Log,
                Some(false) => Kind::Linear,
                None => Kind::Category,
            }
        }
        _ if d.is_log_scale() => Kind::Log,
        _ => Kind::Linear,
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
        self.predict_with(|f| x[f][i])
    }

    /// The prediction at the point whose feature `f` is `value(f)`.
    fn predict_with(&self, value: impl Fn(usize) -> f64) -> f64 {
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
                    at = if value(*feature) <= *threshold {
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
/// helped), its spread across sub-forests, and the out-of-bag R² (`None` when too few runs were
/// out of bag).
pub struct Forest {
    /// Share of the impurity decrease per feature.
    pub importance: Vec<f64>,
    /// Standard deviation of each feature's share across the sub-forests (0 with one).
    pub importance_sd: Vec<f64>,
    /// Out-of-bag coefficient of determination.
    pub oob_r2: Option<f64>,
    /// The trees, by sub-forest.
    subs: Vec<Vec<Tree>>,
}

/// Mean and (population) standard deviation.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

fn shares(raw: &[f64]) -> Vec<f64> {
    let total: f64 = raw.iter().sum();
    raw.iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect()
}

/// Grow `trees` regression trees on bootstrap samples of the rows of `x` (given column by
/// column) against `y`, as `subs` sub-forests of equal size (at least one tree each). Every
/// split considers every feature (scikit-learn's default for regression forests, which W&B
/// uses): with few parameters, drawing a subset would force splits on irrelevant ones and
/// inflate their importance.
pub fn forest(x: &[Vec<f64>], y: &[f64], trees: usize, subs: usize, seed: u64) -> Forest {
    let n = y.len();
    let d = x.len();
    let subs = subs.max(1);
    let per_sub = trees.div_ceil(subs).max(1);
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
    let mut grown: Vec<Vec<Tree>> = Vec::new();
    let mut raw_total = vec![0.0; d];
    let mut sub_shares: Vec<Vec<f64>> = Vec::new();
    if n >= 2 * MIN_LEAF && d > 0 {
        for _ in 0..subs {
            g.importance = vec![0.0; d];
            let mut sub = Vec::with_capacity(per_sub);
            for _ in 0..per_sub {
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
                sub.push(tree);
            }
            for (t, v) in raw_total.iter_mut().zip(&g.importance) {
                *t += v;
            }
            sub_shares.push(shares(&g.importance));
            grown.push(sub);
        }
    }
    let importance = shares(&raw_total);
    let importance_sd = (0..d)
        .map(|f| {
            let v: Vec<f64> = sub_shares.iter().map(|s| s[f]).collect();
            mean_sd(&v).1
        })
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
    Forest {
        importance,
        importance_sd,
        oob_r2,
        subs: grown,
    }
}

impl Forest {
    /// The first-order (main) effect of each group of features, with its standard deviation
    /// across the sub-forests: `Var_v(PD(v)) / Var(f)`, where `PD(v)` is the forest's mean
    /// prediction over (up to [`PD_ROWS`]) rows of `x` with the group's columns set to `v`, `v`
    /// runs over the group's observed values (all distinct ones, weighted by their frequency, or
    /// [`GRID`] evenly spaced quantiles when there are more), and `Var(f)` is the variance of the
    /// forest's prediction over the same rows. A group is the columns of one parameter (one for
    /// a number, the one-hot columns of a category). Clamped to `[0, 1]`; all 0 without trees or
    /// when the prediction does not vary.
    pub fn main_effects(&self, x: &[Vec<f64>], groups: &[Vec<usize>]) -> Vec<(f64, f64)> {
        let n = x.first().map_or(0, Vec::len);
        if self.subs.is_empty() || n == 0 {
            return vec![(0.0, 0.0); groups.len()];
        }
        let rows: Vec<usize> = if n > PD_ROWS {
            (0..PD_ROWS).map(|k| k * n / PD_ROWS).collect()
        } else {
            (0..n).collect()
        };
        let predict = |trees: &[Tree], row: usize, set: &[(usize, f64)]| -> f64 {
            let sum: f64 = trees
                .iter()
                .map(|t| {
                    t.predict_with(|f| {
                        set.iter()
                            .find(|(c, _)| *c == f)
                            .map_or(x[f][row], |(_, v)| *v)
                    })
                })
                .sum();
            sum / trees.len() as f64
        };
        // Per sub-forest: the prediction at each row, and its variance.
        let base: Vec<Vec<f64>> = self
            .subs
            .iter()
            .map(|t| rows.iter().map(|&r| predict(t, r, &[])).collect())
            .collect();
        let variance = |preds: &[Vec<f64>], k: Option<usize>| -> f64 {
            let v: Vec<f64> = match k {
                Some(k) => preds[k].clone(),
                None => (0..rows.len())
                    .map(|i| preds.iter().map(|p| p[i]).sum::<f64>() / preds.len() as f64)
                    .collect(),
            };
            let s = mean_sd(&v).1;
            s * s
        };
        groups
            .iter()
            .map(|cols| {
                // The group's grid: distinct observed value tuples with their counts.
                let mut seen: Vec<(Vec<f64>, usize)> = Vec::new();
                for t in (0..n).map(|r| cols.iter().map(|&c| x[c][r]).collect::<Vec<f64>>()) {
                    match seen.iter_mut().find(|(v, _)| *v == t) {
                        Some(e) => e.1 += 1,
                        None => seen.push((t, 1)),
                    }
                }
                if seen.len() > GRID {
                    seen.sort_by(|a, b| a.0[0].total_cmp(&b.0[0]));
                    // Evenly spaced quantiles of the observed values, equally weighted.
                    let mut values: Vec<f64> = (0..n).map(|r| x[cols[0]][r]).collect();
                    values.sort_by(f64::total_cmp);
                    seen = (0..GRID)
                        .map(|k| (vec![values[(2 * k + 1) * n / (2 * GRID)]], 1))
                        .collect();
                }
                if seen.len() < 2 {
                    return (0.0, 0.0);
                }
                // Partial dependence per sub-forest at each grid point.
                let pd: Vec<Vec<f64>> = self
                    .subs
                    .iter()
                    .map(|trees| {
                        seen.iter()
                            .map(|(v, _)| {
                                let set: Vec<(usize, f64)> =
                                    cols.iter().copied().zip(v.iter().copied()).collect();
                                rows.iter().map(|&r| predict(trees, r, &set)).sum::<f64>()
                                    / rows.len() as f64
                            })
                            .collect()
                    })
                    .collect();
                let weights: Vec<f64> = seen.iter().map(|(_, c)| *c as f64).collect();
                let wsum: f64 = weights.iter().sum();
                let wvar = |p: &[f64]| -> f64 {
                    let m = p.iter().zip(&weights).map(|(a, w)| a * w).sum::<f64>() / wsum;
                    p.iter()
                        .zip(&weights)
                        .map(|(a, w)| w * (a - m).powi(2))
                        .sum::<f64>()
                        / wsum
                };
                let share = |pdv: f64, total: f64| {
                    if total > 1e-300 {
                        (pdv / total).clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                };
                let per_sub: Vec<f64> = (0..pd.len())
                    .map(|k| share(wvar(&pd[k]), variance(&base, Some(k))))
                    .collect();
                let whole: Vec<f64> = (0..seen.len())
                    .map(|g| pd.iter().map(|p| p[g]).sum::<f64>() / pd.len() as f64)
                    .collect();
                (
                    share(wvar(&whole), variance(&base, None)),
                    mean_sd(&per_sub).1,
                )
            })
            .collect()
    }
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
fn compute(params: &[Param], runs: &[(&Value, f64)], maximize: bool) -> Importance {
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
    let fit = forest(&sub_x, &sub_y, TREES, SUB_FORESTS, 0x6879_7065_7264_6961);
    let evidence = evidence_of(n, fit.oob_r2);
    let groups: Vec<Vec<usize>> = (0..params.len())
        .map(|p| (0..owner.len()).filter(|&c| owner[c] == p).collect())
        .collect();
    let effects = if evidence == Evidence::Enough {
        fit.main_effects(&sub_x, &groups)
    } else {
        vec![(0.0, 0.0); groups.len()]
    };
    let given = |v: f64| {
        (evidence == Evidence::Enough)
            .then_some(v)
            .filter(|x| x.is_finite())
    };
    let mut out: Vec<ParamImportance> = params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let share: f64 = groups[i].iter().map(|&c| fit.importance[c]).sum();
            // The sub-forest shares of a parameter's columns move together; their spreads add
            // at most linearly, which is the bound given.
            let sd: f64 = groups[i].iter().map(|&c| fit.importance_sd[c]).sum();
            ParamImportance {
                name: p.name.clone(),
                kind: p.kind,
                importance: given(share),
                importance_sd: given(sd),
                main_effect: given(effects[i].0),
                main_effect_sd: given(effects[i].1),
                pearson: corr[i].0.filter(|x| x.is_finite()),
                spearman: corr[i].1.filter(|x| x.is_finite()),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let f = |v: &ParamImportance| v.importance.unwrap_or(-1.0);
        f(b).total_cmp(&f(a))
    });
    Importance {
        method: "random_forest".into(),
        trees: (TREES.div_ceil(SUB_FORESTS) * SUB_FORESTS) as u64,
        sub_forests: SUB_FORESTS as u64,
        states: Vec::new(),
        runs: n as u64,
        forest_runs: rows.len() as u64,
        min_runs: MIN_RUNS as u64,
        evidence,
        goal: if maximize {
            Goal::Maximize
        } else {
            Goal::Minimize
        },
        oob_r2: fit.oob_r2.filter(|x| x.is_finite()),
        params: out,
        metric: None,
        compute_ms: 0,
        cached: false,
    }
}

type Cache = Mutex<HashMap<String, ((i64, i64), Importance)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The query of an importance request.
#[derive(Deserialize)]
pub(crate) struct ImportanceQuery {
    /// Comma list of run states whose runs count (default `finished`).
    state: Option<String>,
}

impl super::QueryParams for ImportanceQuery {
    const PARAMS: &'static [super::Param] = &[super::Param {
        name: "state",
        form:
            "a comma list of finished, failed, crashed, stopped_early, cancelled (default finished)",
    }];

    fn check(&self) -> Result<(), ApiError> {
        analysis_states(self.state.as_deref()).map(|_| ())
    }
}

/// The run states of a `state=` list: every word a run state that can end a run, in
/// lifecycle order without repeats; `finished` when absent or empty.
pub fn analysis_states(list: Option<&str>) -> Result<Vec<RunState>, ApiError> {
    let words: Vec<&str> = list
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return match list {
            // `state=` with no state is a mistake, not the default (leave it out).
            Some(given) => Err(super::query::invalid(
                super::query::param::<ImportanceQuery>("state"),
                given,
            )),
            None => Ok(vec![RunState::Finished]),
        };
    }
    let mut states = Vec::new();
    for w in words {
        let st = RunState::from_str(w)
            .ok()
            .filter(|s| !s.in_flight())
            .ok_or_else(|| {
                super::query::invalid(super::query::param::<ImportanceQuery>("state"), w)
            })?;
        states.push(st);
    }
    Ok(RunState::TERMINAL
        .into_iter()
        .filter(|s| states.contains(s))
        .collect())
}

pub(crate) async fn importance(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<ImportanceQuery>,
) -> ApiResult {
    let states = analysis_states(q.state.as_deref())?;
    let c = &s.controller;
    let store = c.store();
    let sweep = c.sweep(&id).await?;
    let words: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    let key = format!("{}\u{0}{id}\u{0}{}", store.describe(), words.join(","));
    let fingerprint = store.finished_fingerprint(&id).await?;
    if let Some((fp, v)) = cache().lock().expect("importance cache").get(&key) {
        if *fp == fingerprint {
            let mut v = v.clone();
            v.cached = true;
            return Ok(Json(v).into_response());
        }
    }
    let config = c.config(&sweep)?;
    let params: Vec<Param> = config
        .parameters
        .iter()
        .filter(|p| !matches!(p.distribution, Distribution::Constant { .. }))
        .map(|p| {
            // A numeric list the search treats as ordered values is a number here too (log10
            // when geometric), with its correlations; other lists are categories.
            let kind = kind_of(&p.distribution);
            let levels = match &p.distribution {
                Distribution::Categorical { values }
                | Distribution::CategoricalWithProbabilities { values, .. }
                    if kind == Kind::Category =>
                {
                    values.iter().map(label).collect()
                }
                _ => Vec::new(),
            };
            Param {
                name: p.name.clone(),
                kind,
                levels,
            }
        })
        .collect();
    let points = store.sweep_points(&id).await?;
    let maximize = super::views::goal(&sweep).maximize();
    let started = std::time::Instant::now();
    let metric = sweep.metric_name.clone();
    let wanted = states.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let runs = configurations(&points, &wanted);
        let runs: Vec<(&Value, f64)> = runs.iter().map(|(p, m)| (*p, *m)).collect();
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
    answer.metric = metric;
    answer.states = states;
    answer.compute_ms = started.elapsed().as_millis() as u64;
    cache()
        .lock()
        .expect("importance cache")
        .insert(key, (fingerprint, answer.clone()));
    answer.cached = false;
    Ok(Json(answer).into_response())
}

/// The observations the importances are computed from, one per configuration: the runs in
/// one of the `wanted` states with a metric, a run repeated with other seeds (`hyperdial
/// repeat`) and its repeats counted once at their mean ([`crate::noise::per_configuration`]).
fn configurations<'a>(
    points: &'a [hyperdial_store::RunPoint],
    wanted: &[RunState],
) -> Vec<(&'a Value, f64)> {
    let kept: Vec<(&hyperdial_store::RunPoint, f64)> = points
        .iter()
        .filter(|p| wanted.contains(&p.state))
        .filter_map(|p| p.metric.map(|m| (p, m)))
        .collect();
    let observed: Vec<crate::noise::Observed<'_>> = kept
        .iter()
        .map(|(p, m)| crate::noise::Observed {
            id: &p.id,
            repeat_of: p.repeat_of.as_deref(),
            value: *m,
        })
        .collect();
    crate::noise::per_configuration(&observed)
        .into_iter()
        .map(|c| (&kept[c.index].0.params, c.value))
        .collect()
}

/// Whether `n` runs and a forest of out-of-bag R² `oob_r2` are evidence enough to rank the
/// parameters: fewer than [`MIN_RUNS`] runs are too few; an R² below [`MIN_OOB_R2`], not finite
/// or not measured is no signal.
fn evidence_of(n: usize, oob_r2: Option<f64>) -> Evidence {
    if n < MIN_RUNS {
        Evidence::TooFewRuns
    } else if oob_r2
        .filter(|r2| r2.is_finite())
        .is_none_or(|r2| r2 < MIN_OOB_R2)
    {
        Evidence::NoSignal
    } else {
        Evidence::Enough
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_configuration_is_one_observation_at_its_repeats_mean() {
        let point = |id: &str, lr: f64, metric: Option<f64>, state, of: Option<&str>| {
            hyperdial_store::RunPoint {
                id: id.into(),
                number: None,
                state,
                params: serde_json::json!({"lr": lr}),
                metric,
                created_ms: 0,
                started_ms: None,
                finished_ms: None,
                repeat_of: of.map(str::to_string),
            }
        };
        let points = [
            point("a", 0.1, Some(0.2), RunState::Finished, None),
            point("b", 0.2, Some(0.5), RunState::Finished, None),
            point("c", 0.3, Some(0.9), RunState::Failed, None),
            point("a1", 0.1, Some(0.4), RunState::Finished, Some("a")),
            point("a2", 0.1, Some(0.6), RunState::Finished, Some("a")),
            point("a3", 0.1, None, RunState::Running, Some("a")),
        ];
        let got = configurations(&points, &[RunState::Finished]);
        let got: Vec<(f64, f64)> = got
            .iter()
            .map(|(p, m)| (p["lr"].as_f64().unwrap(), *m))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, 0.1);
        assert!((got[0].1 - 0.5).abs() < 1e-12, "{got:?}");
        assert_eq!(got[1], (0.2, 0.5));
    }

    #[test]
    fn an_out_of_bag_r2_that_rounds_to_zero_is_no_signal() {
        assert_eq!(evidence_of(9, Some(0.9)), Evidence::TooFewRuns);
        assert_eq!(evidence_of(30, Some(0.003)), Evidence::NoSignal);
        assert_eq!(evidence_of(30, Some(-0.4)), Evidence::NoSignal);
        assert_eq!(evidence_of(30, Some(f64::NAN)), Evidence::NoSignal);
        assert_eq!(evidence_of(30, None), Evidence::NoSignal);
        assert_eq!(evidence_of(30, Some(MIN_OOB_R2)), Evidence::Enough);
        assert_eq!(evidence_of(30, Some(0.6)), Evidence::Enough);
    }
    use serde_json::json;

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
        let fit = forest(&[a, b, c], &y, 100, 5, 1);
        assert!(fit.importance[0] > 0.6, "{:?}", fit.importance);
        assert!(
            fit.importance[1] > fit.importance[2],
            "{:?}",
            fit.importance
        );
        assert!((fit.importance.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(fit.oob_r2.unwrap() > 0.8, "{:?}", fit.oob_r2);
    }

    fn numeric(name: &str) -> Param {
        Param {
            name: name.into(),
            kind: Kind::Linear,
            levels: vec![],
        }
    }

    /// A metric shaped like a U in `u` (best in the middle), unmoved by `flat`: the U gets a
    /// large main effect and most of the importance although its correlation is near 0; the
    /// flat parameter gets a small one.
    #[test]
    fn a_u_shaped_effect_is_important_and_a_flat_one_is_not() {
        let mut rng = StdRng::seed_from_u64(11);
        let values: Vec<(Value, f64)> = (0..200)
            .map(|_| {
                let u: f64 = rng.random();
                let flat: f64 = rng.random();
                let m = 4.0 * (u - 0.5).powi(2) + 0.02 * rng.random::<f64>();
                (json!({"u": u, "flat": flat}), m)
            })
            .collect();
        let runs: Vec<(&Value, f64)> = values.iter().map(|(p, m)| (p, *m)).collect();
        let out = compute(&[numeric("u"), numeric("flat")], &runs, false);
        assert_eq!(out.evidence, Evidence::Enough, "{out:?}");
        let u = out.params.iter().find(|p| p.name == "u").unwrap();
        let flat = out.params.iter().find(|p| p.name == "flat").unwrap();
        assert!(u.pearson.unwrap().abs() < 0.25, "{u:?}");
        assert!(u.main_effect.unwrap() > 0.8, "{u:?}");
        assert!(u.importance.unwrap() > 0.8, "{u:?}");
        assert!(flat.main_effect.unwrap() < 0.05, "{flat:?}");
        assert!(flat.importance.unwrap() < 0.2, "{flat:?}");
        // The spread across sub-forests is a real, small number.
        let sd = u.importance_sd.unwrap();
        assert!(sd > 0.0 && sd < 0.1, "{u:?}");
        assert_eq!(out.params[0].name, "u");
    }

    /// A categorical parameter's main effect moves all its one-hot columns together.
    #[test]
    fn a_category_main_effect_covers_all_its_levels() {
        let params = vec![
            Param {
                name: "opt".into(),
                kind: Kind::Category,
                levels: vec!["a".into(), "b".into(), "c".into()],
            },
            numeric("noise"),
        ];
        let mut rng = StdRng::seed_from_u64(3);
        let values: Vec<(Value, f64)> = (0..90)
            .map(|i| {
                let opt = ["a", "b", "c"][i % 3];
                let m = match opt {
                    "a" => 0.0,
                    "b" => 2.0,
                    _ => 1.0,
                } + 0.05 * rng.random::<f64>();
                (json!({"opt": opt, "noise": rng.random::<f64>()}), m)
            })
            .collect();
        let runs: Vec<(&Value, f64)> = values.iter().map(|(p, m)| (p, *m)).collect();
        let out = compute(&params, &runs, false);
        assert_eq!(out.params[0].name, "opt");
        assert!(out.params[0].main_effect.unwrap() > 0.9, "{out:?}");
        assert!(out.params[1].main_effect.unwrap() < 0.05, "{out:?}");
    }

    /// A conditional parameter absent from some runs (inactive there) is missing, not 0: its
    /// correlations use the runs that have it, and a missing value is imputed by the mean of
    /// the present ones rather than by 0.
    #[test]
    fn an_absent_parameter_is_not_read_as_zero() {
        let params = vec![
            Param {
                name: "opt".into(),
                kind: Kind::Category,
                levels: vec!["sgd".into(), "adam".into()],
            },
            numeric("momentum"),
        ];
        let mut rng = StdRng::seed_from_u64(5);
        let values: Vec<(Value, f64)> = (0..60)
            .map(|i| {
                if i % 2 == 0 {
                    let m = 0.5 + 0.5 * rng.random::<f64>();
                    (json!({"opt": "sgd", "momentum": m}), m)
                } else {
                    // Without momentum, and much worse: read as momentum 0 this would make
                    // the correlation strongly negative.
                    (json!({"opt": "adam"}), 5.0 + rng.random::<f64>())
                }
            })
            .collect();
        let runs: Vec<(&Value, f64)> = values.iter().map(|(p, m)| (p, *m)).collect();
        let out = compute(&params, &runs, false);
        let momentum = out.params.iter().find(|p| p.name == "momentum").unwrap();
        assert!(momentum.pearson.unwrap() > 0.99, "{out:?}");
        assert!(momentum.spearman.unwrap() > 0.99, "{out:?}");
    }

    /// Too few runs, or a metric the parameters do not explain: no importances at all.
    #[test]
    fn no_bars_without_evidence() {
        let values: Vec<(Value, f64)> = (0..(MIN_RUNS - 1))
            .map(|i| (json!({"x": i as f64}), i as f64))
            .collect();
        let runs: Vec<(&Value, f64)> = values.iter().map(|(p, m)| (p, *m)).collect();
        let out = compute(&[numeric("x")], &runs, false);
        assert_eq!(out.evidence, Evidence::TooFewRuns);
        assert_eq!(out.params[0].importance, None);
        assert_eq!(out.params[0].main_effect, None);

        let mut rng = StdRng::seed_from_u64(5);
        let values: Vec<(Value, f64)> = (0..80)
            .map(|_| (json!({"x": rng.random::<f64>()}), rng.random::<f64>()))
            .collect();
        let runs: Vec<(&Value, f64)> = values.iter().map(|(p, m)| (p, *m)).collect();
        let out = compute(&[numeric("x")], &runs, false);
        assert!(out.oob_r2.unwrap() <= 0.0, "{out:?}");
        assert_eq!(out.evidence, Evidence::NoSignal);
        assert_eq!(out.params[0].importance, None);
        assert_eq!(out.params[0].importance_sd, None);
        // The correlation, which has its own meaning, stays.
        assert!(out.params[0].pearson.is_some());
    }

    #[test]
    fn state_lists_parse_in_lifecycle_order() {
        assert_eq!(analysis_states(None).unwrap(), vec![RunState::Finished]);
        // Given without a state: a mistake, not the default.
        assert!(analysis_states(Some("")).is_err());
        assert!(analysis_states(Some(" , ")).is_err());
        assert_eq!(
            analysis_states(Some("crashed, failed,failed")).unwrap(),
            vec![RunState::Failed, RunState::Crashed]
        );
        assert!(analysis_states(Some("running")).is_err());
        assert!(analysis_states(Some("done")).is_err());
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
        assert_eq!(out.params[0].name, "opt", "{out:?}");
        assert_eq!(out.params[0].pearson, None);
        assert_eq!(out.params[1].kind, Kind::Log);
        // lr enters as log10: perfectly rank-correlated with its share of the metric.
        assert!(out.params[1].spearman.unwrap() > 0.0);
    }
}
