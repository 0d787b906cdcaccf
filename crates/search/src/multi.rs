//! Multi-objective search: Pareto dominance, non-dominated layers, hypervolume, and the
//! multi-objective forms of `tpe` and `bayes`.
//!
//! A sweep with `metrics: [...]` (two or more objectives) records each run's value of every
//! objective ([`Trial::objectives`]: the explicit summary value, else the last logged one).
//! Everything here works on objective vectors *oriented to minimize*: a `maximize`
//! objective is negated first ([`orient`]).
//!
//! ## Definitions
//!
//! - `a` **dominates** `b` when `a` is no worse in every objective and better in at least
//!   one ([`dominates`]).
//! - The **non-dominated layers** ([`non_dominated_ranks`]): rank 0 is the Pareto front (no
//!   point dominates them), rank 1 the front of the rest, and so on (Deb et al., 2002, the
//!   fast non-dominated sort of NSGA-II: `O(m·n²)` for `n` points of `m` objectives; two
//!   objectives by a sort and a binary search per point, `O(n log n)`).
//! - The **hypervolume** of a set against a reference point `r` ([`hypervolume`]) is the
//!   measure of the region dominated by the set and bounded by `r`; points not strictly
//!   better than `r` in every objective add nothing. It is computed exactly for any number
//!   of objectives by slicing (Zitzler's HSO, "hypervolume by slicing objectives"): sort by
//!   the last objective, and sum over the slices between consecutive values the slice's
//!   thickness times the `(m−1)`-dimensional hypervolume of the points below it; two
//!   objectives are a sort and a sweep. Cost `O(n^{m−1} log n)`: immediate for 2 and 3
//!   objectives at the sizes a sweep reaches, usable for 4 or 5 objectives up to a few
//!   hundred points.
//! - The **reference point** ([`reference_point`]): per objective, the worst value in the
//!   set plus a tenth of the set's range in that objective (plus 1 when the range is 0), so
//!   the extreme points of the front contribute a volume of their own.
//! - The **hypervolume contribution** of a point ([`contributions`]): the hypervolume the
//!   set loses without it.
//!
//! ## What the search counts
//!
//! [`history`] makes the [`History`] of a multi-objective sweep: a run that ended with a
//! finite value of every objective is an observation; a failed, crashed or cancelled run,
//! and one that finished without some objective, is imputed with the worst observed value of
//! each objective (W&B's default `impute: worst`, per objective); runs in flight are
//! pending; with no observation yet, nothing is imputed.
//!
//! ## `tpe`: multi-objective TPE
//!
//! After Ozaki et al. (2020, 2022), "Multiobjective tree-structured Parzen estimator"
//! (as Optuna's `TPESampler` does with several objectives): the good group is filled with
//! whole non-dominated layers, best rank first, until the next layer does not fit; that
//! layer is thinned by repeatedly dropping its point of least hypervolume contribution (the
//! reference point of the layer's own values, see above) until it fits ([`tpe_order`]). With
//! two objectives each contribution is the rectangle between a point's neighbours (`O(k log
//! k)` for a layer of `k`); with three or more, a layer of more than [`EXACT_THINNING`]
//! points is first cut down to that many by NSGA-II's crowding distance (Deb et al., 2002;
//! the most crowded go), which keeps the thinning's cost bounded where nearly every run is
//! non-dominated. The size of the good group, the Parzen estimators and the ratio
//! `l(x)/g(x)` are those of single-objective TPE ([`crate::tpe`]).
//!
//! ## `bayes`: ParEGO
//!
//! After Knowles (2006), "ParEGO: a hybrid algorithm with on-line landscape approximation
//! for expensive multiobjective optimization problems": each suggestion draws a fresh weight
//! vector `λ` uniformly from the simplex (from the suggestion's seed), normalizes each
//! objective to `[0, 1]` by the range observed so far, and scalarizes with the augmented
//! Chebyshev function `max_j λ_j f_j + ρ Σ_j λ_j f_j`, `ρ = 0.05` ([`parego`]). The GP and
//! LogEI of [`crate::bayes`] then work on the scalarized values unchanged. Over many
//! suggestions the weights sweep the whole front. (Knowles draws `λ` from a fixed lattice of
//! weight vectors; a continuous draw covers the same simplex without a lattice size to
//! choose.)

use hyperdial_space::{Goal, SweepConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::encode::Space;
use crate::{History, Trial};

/// The augmentation weight `ρ` of the Chebyshev scalarization (Knowles, 2006).
pub const RHO: f64 = 0.05;

/// `values` (as logged, in the order of `goals`) oriented to minimize: `maximize` ones
/// negated.
pub fn orient(values: &[f64], goals: &[Goal]) -> Vec<f64> {
    values
        .iter()
        .zip(goals)
        .map(|(&v, g)| match g {
            Goal::Maximize => -v,
            Goal::Minimize => v,
        })
        .collect()
}

/// Whether `a` dominates `b` (both oriented to minimize, same length): no worse in every
/// objective and better in at least one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

/// The non-dominated rank of each point (0 = on the front), by the fast non-dominated sort
/// of Deb et al. (2002), `O(m·n²)`; with two objectives by a sort and a binary search per
/// point, `O(n log n)`. Equal points share a rank.
pub fn non_dominated_ranks(points: &[Vec<f64>]) -> Vec<u32> {
    if points.first().is_some_and(|p| p.len() == 2) && points.iter().all(|p| p.len() == 2) {
        return ranks_2d(points);
    }
    let n = points.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominates_list: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in i + 1..n {
            if dominates(&points[i], &points[j]) {
                dominates_list[i].push(j);
                dominated_by[j] += 1;
            } else if dominates(&points[j], &points[i]) {
                dominates_list[j].push(i);
                dominated_by[i] += 1;
            }
        }
    }
    let mut rank = vec![0u32; n];
    let mut layer: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut r = 0u32;
    while !layer.is_empty() {
        let mut next = Vec::new();
        for &i in &layer {
            rank[i] = r;
            for &j in &dominates_list[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        layer = next;
        r += 1;
    }
    rank
}

/// Two-objective ranks: points by the first objective (then the second); each goes to the
/// first layer none of whose points dominates it. A layer is known by its point of least
/// second objective (the first such, so the least first objective among them); those minima
/// do not decrease from layer to layer, so the layer is found by binary search.
fn ranks_2d(points: &[Vec<f64>]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a][0]
            .total_cmp(&points[b][0])
            .then(points[a][1].total_cmp(&points[b][1]))
    });
    // Per layer: (least second objective, the first objective of the point that has it).
    let mut layers: Vec<(f64, f64)> = Vec::new();
    let mut rank = vec![0u32; points.len()];
    for i in order {
        let (x, y) = (points[i][0], points[i][1]);
        let mut l = layers.partition_point(|&(m, _)| m < y);
        // A layer whose least value equals y dominates the point when that run is better
        // in the first objective.
        while l < layers.len() && layers[l].0 == y && layers[l].1 < x {
            l += 1;
        }
        if l == layers.len() {
            layers.push((y, x));
        } else if y < layers[l].0 {
            layers[l] = (y, x);
        }
        rank[i] = l as u32;
    }
    rank
}

/// The indices of the Pareto front of `points` (rank 0), in index order.
pub fn pareto_front(points: &[Vec<f64>]) -> Vec<usize> {
    non_dominated_ranks(points)
        .into_iter()
        .enumerate()
        .filter(|&(_, r)| r == 0)
        .map(|(i, _)| i)
        .collect()
}

/// The reference point of `points` (see the module docs): per objective the worst value
/// plus a tenth of the range, plus 1 when the range is 0. Empty for no points.
pub fn reference_point(points: &[Vec<f64>]) -> Vec<f64> {
    let Some(m) = points.first().map(Vec::len) else {
        return Vec::new();
    };
    (0..m)
        .map(|j| {
            let (lo, hi) = points
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
                    (a.0.min(p[j]), a.1.max(p[j]))
                });
            let range = hi - lo;
            if range > 0.0 {
                hi + 0.1 * range
            } else {
                hi + 1.0
            }
        })
        .collect()
}

/// The exact hypervolume dominated by `points` (oriented to minimize) and bounded by
/// `reference`; points not strictly better than the reference in every objective add
/// nothing. See the module docs for the method and its cost.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let inside: Vec<&[f64]> = points
        .iter()
        .map(Vec::as_slice)
        .filter(|p| p.len() == reference.len() && p.iter().zip(reference).all(|(x, r)| x < r))
        .collect();
    hv(inside, reference)
}

fn hv(mut points: Vec<&[f64]>, reference: &[f64]) -> f64 {
    let m = reference.len();
    if points.is_empty() || m == 0 {
        return 0.0;
    }
    if m == 1 {
        let best = points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        return reference[0] - best;
    }
    if m == 2 {
        points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
        let mut volume = 0.0;
        let mut ceiling = reference[1];
        for p in points {
            if p[1] < ceiling {
                volume += (reference[0] - p[0]) * (ceiling - p[1]);
                ceiling = p[1];
            }
        }
        return volume;
    }
    // Slice along the last objective.
    let last = m - 1;
    points.sort_by(|a, b| a[last].total_cmp(&b[last]));
    let mut volume = 0.0;
    for k in 0..points.len() {
        let top = if k + 1 < points.len() {
            points[k + 1][last]
        } else {
            reference[last]
        };
        let depth = top - points[k][last];
        if depth <= 0.0 {
            continue;
        }
        let slice: Vec<&[f64]> = points[..=k].iter().map(|p| &p[..last]).collect();
        volume += depth * hv(slice, &reference[..last]);
    }
    volume
}

/// Each point's hypervolume contribution against `reference`: the hypervolume of all
/// points minus that of all others.
pub fn contributions(points: &[Vec<f64>], reference: &[f64]) -> Vec<f64> {
    let total = hypervolume(points, reference);
    (0..points.len())
        .map(|i| {
            let others: Vec<Vec<f64>> = points
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, p)| p.clone())
                .collect();
            (total - hypervolume(&others, reference)).max(0.0)
        })
        .collect()
}

/// The largest layer thinned by exact hypervolume contributions with three or more
/// objectives; larger ones are cut to this size by crowding distance first.
pub const EXACT_THINNING: usize = 64;

/// Each point's hypervolume contribution among `points`, two objectives only, for a layer
/// (mutually non-dominated points): the rectangle from the point to its neighbours along the
/// front (to the reference for the extremes). Of equal points the first gets the rectangle,
/// the others 0 (so the thinning drops the later copies first, as with exact
/// contributions).
fn contributions_2d(points: &[Vec<f64>], reference: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a][0]
            .total_cmp(&points[b][0])
            .then(points[a][1].total_cmp(&points[b][1]))
    });
    let mut out = vec![0.0; points.len()];
    // The staircase: points strictly improving in the second objective.
    let mut stair: Vec<usize> = Vec::new();
    for &i in &order {
        let inside = points[i][0] < reference[0] && points[i][1] < reference[1];
        if inside && stair.last().is_none_or(|&l| points[i][1] < points[l][1]) {
            stair.push(i);
        }
    }
    for (k, &i) in stair.iter().enumerate() {
        let right = stair.get(k + 1).map_or(reference[0], |&n| points[n][0]);
        let above = if k == 0 {
            reference[1]
        } else {
            points[stair[k - 1]][1]
        };
        out[i] = ((right - points[i][0]) * (above - points[i][1])).max(0.0);
    }
    out
}

/// NSGA-II's crowding distance of each point: the sum over objectives of the normalized
/// gap between its neighbours; the extremes of each objective get infinity.
pub fn crowding_distance(points: &[Vec<f64>]) -> Vec<f64> {
    let n = points.len();
    let mut out = vec![0.0; n];
    let Some(m) = points.first().map(Vec::len) else {
        return out;
    };
    // `j` is the objective: the inner index of every point.
    #[allow(clippy::needless_range_loop)]
    for j in 0..m {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| points[a][j].total_cmp(&points[b][j]).then(a.cmp(&b)));
        let (lo, hi) = (points[order[0]][j], points[order[n - 1]][j]);
        out[order[0]] = f64::INFINITY;
        out[order[n - 1]] = f64::INFINITY;
        if hi > lo {
            for w in order.windows(3) {
                out[w[1]] += (points[w[2]][j] - points[w[0]][j]) / (hi - lo);
            }
        }
    }
    out
}

/// The observations ordered for the split of multi-objective TPE: the `n_good` first are
/// the good group (see the module docs), the rest follow by rank, then index.
pub fn tpe_order(points: &[Vec<f64>], n_good: usize) -> Vec<usize> {
    let ranks = non_dominated_ranks(points);
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (ranks[i], i));
    let n_good = n_good.min(points.len());
    if n_good == 0 || n_good == points.len() {
        return order;
    }
    // The layer the split falls in, and how many of it fit.
    let boundary = ranks[order[n_good - 1]];
    if ranks[order[n_good]] != boundary {
        return order;
    }
    let start = order
        .iter()
        .position(|&i| ranks[i] == boundary)
        .unwrap_or(0);
    let end = order
        .iter()
        .rposition(|&i| ranks[i] == boundary)
        .map_or(start, |e| e + 1);
    let mut kept: Vec<usize> = order[start..end].to_vec();
    let mut dropped: Vec<usize> = Vec::new();
    let layer: Vec<Vec<f64>> = kept.iter().map(|&i| points[i].clone()).collect();
    let reference = reference_point(&layer);
    let two = reference.len() == 2;
    let target = EXACT_THINNING.max(n_good - start);
    if !two && kept.len() > target {
        // Most crowded first out; ties go to the later run.
        let crowding = crowding_distance(&layer);
        let mut by: Vec<usize> = (0..kept.len()).collect();
        by.sort_by(|&a, &b| crowding[b].total_cmp(&crowding[a]).then(a.cmp(&b)));
        let cut: std::collections::HashSet<usize> = by[target..].iter().copied().collect();
        let mut rest = Vec::with_capacity(target);
        for (k, &i) in kept.iter().enumerate() {
            if cut.contains(&k) {
                dropped.push(i);
            } else {
                rest.push(i);
            }
        }
        kept = rest;
    }
    while start + kept.len() > n_good {
        let values: Vec<Vec<f64>> = kept.iter().map(|&i| points[i].clone()).collect();
        let c = if two {
            contributions_2d(&values, &reference)
        } else {
            contributions(&values, &reference)
        };
        // The least contribution; ties go to the later run.
        let mut worst = 0;
        for k in 1..kept.len() {
            if c[k] <= c[worst] {
                worst = k;
            }
        }
        dropped.push(kept.remove(worst));
    }
    dropped.reverse();
    let mut out = order[..start].to_vec();
    out.extend(kept);
    out.extend(dropped);
    out.extend_from_slice(&order[end..]);
    out
}

/// A weight vector drawn uniformly from the simplex of `m` objectives (normalized
/// exponential spacings), from `seed`.
pub fn simplex_weights(m: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5041_5245_474F);
    let e: Vec<f64> = (0..m).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
    let total: f64 = e.iter().sum();
    if total > 0.0 {
        e.iter().map(|x| x / total).collect()
    } else {
        vec![1.0 / m as f64; m]
    }
}

/// ParEGO's scalarization of `points` (oriented to minimize) with `weights`: each objective
/// normalized to `[0, 1]` by its observed range (a constant objective is 0), then
/// `max_j λ_j f_j + ρ Σ_j λ_j f_j`.
pub fn parego(points: &[Vec<f64>], weights: &[f64]) -> Vec<f64> {
    let m = weights.len();
    let bounds: Vec<(f64, f64)> = (0..m)
        .map(|j| {
            points
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
                    (a.0.min(p[j]), a.1.max(p[j]))
                })
        })
        .collect();
    points
        .iter()
        .map(|p| {
            let mut max = f64::NEG_INFINITY;
            let mut sum = 0.0;
            for j in 0..m {
                let (lo, hi) = bounds[j];
                let f = if hi > lo {
                    (p[j] - lo) / (hi - lo)
                } else {
                    0.0
                };
                max = max.max(weights[j] * f);
                sum += weights[j] * f;
            }
            max + RHO * sum
        })
        .collect()
}

/// Replace the values of a multi-objective history by ParEGO's scalarization with a weight
/// vector drawn from `seed`; a single-objective history is left as it is. This is the hook
/// [`crate::bayes`] calls.
pub fn scalarize(history: &mut History, seed: u64) {
    if history.objectives.is_empty() {
        return;
    }
    let m = history.objectives[0].len();
    history.values = parego(&history.objectives, &simplex_weights(m, seed));
}

/// The history of a multi-objective sweep (see the module docs): observations carry their
/// oriented objective vectors in [`History::objectives`], and as `values` the ParEGO
/// scalarization with equal weights (strategies that read one value per run see a sensible
/// one; [`scalarize`] redraws it).
pub fn history(config: &SweepConfig, space: &Space<'_>, trials: &[Trial]) -> History {
    let goals: Vec<Goal> = config.objectives().iter().map(|m| m.goal).collect();
    let m = goals.len();
    let complete = |t: &Trial| -> Option<Vec<f64>> {
        if t.objectives.len() != m {
            return None;
        }
        let v: Option<Vec<f64>> = t
            .objectives
            .iter()
            .map(|v| v.filter(|x| x.is_finite()))
            .collect();
        v.map(|v| orient(&v, &goals))
    };
    let observed: Vec<Vec<f64>> = trials
        .iter()
        .filter(|t| !t.running && !t.failed)
        .filter_map(complete)
        .collect();
    let worst: Option<Vec<f64>> = (!observed.is_empty()).then(|| {
        (0..m)
            .map(|j| {
                observed
                    .iter()
                    .map(|p| p[j])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect()
    });
    let mut h = History::default();
    for t in trials {
        let Some(point) = space.encode(&t.params) else {
            continue;
        };
        if t.running {
            h.pending.push(point);
            continue;
        }
        let own = if t.failed { None } else { complete(t) };
        match (own, &worst) {
            (Some(v), _) => {
                h.points.push(point);
                h.objectives.push(v);
                h.imputed.push(false);
            }
            // A run that never had objectives filled in (a prior run of another sweep) says
            // nothing about this sweep's objectives.
            (None, Some(w)) if t.objectives.len() == m => {
                let v = t
                    .objectives
                    .iter()
                    .zip(&goals)
                    .zip(w)
                    .map(|((own, g), &w)| {
                        // A failed run's own values are not trusted; a finished run that
                        // reported some objectives keeps them.
                        match own.filter(|x| x.is_finite() && !t.failed) {
                            Some(x) => orient(&[x], &[*g])[0],
                            None => w,
                        }
                    })
                    .collect();
                h.points.push(point);
                h.objectives.push(v);
                h.imputed.push(true);
            }
            _ => {}
        }
    }
    h.values = parego(&h.objectives, &vec![1.0 / m as f64; m]);
    h
}

#[cfg(test)]
mod tests;
