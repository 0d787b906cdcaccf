//! Dominance, layers, hypervolume against hand-computed values, seeded determinism, and
//! multi-objective `tpe` and `bayes` against `random` on ZDT1.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::{suggest_in_sweep, Ask};

fn pts(v: &[&[f64]]) -> Vec<Vec<f64>> {
    v.iter().map(|p| p.to_vec()).collect()
}

#[test]
fn dominance_needs_one_strict_improvement() {
    assert!(dominates(&[1.0, 2.0], &[1.0, 3.0]));
    assert!(dominates(&[0.0, 0.0], &[1.0, 1.0]));
    assert!(!dominates(&[1.0, 2.0], &[1.0, 2.0]));
    assert!(!dominates(&[1.0, 3.0], &[2.0, 2.0]));
    assert!(!dominates(&[2.0, 2.0], &[1.0, 3.0]));
    assert_eq!(
        orient(&[1.0, 2.0], &[Goal::Minimize, Goal::Maximize]),
        vec![1.0, -2.0]
    );
}

#[test]
fn layers_peel_fronts_in_order() {
    let p = pts(&[
        &[1.0, 4.0], // front
        &[2.0, 2.0], // front
        &[4.0, 1.0], // front
        &[3.0, 3.0], // dominated by (2,2): layer 1
        &[5.0, 5.0], // dominated by (4,4.5): layer 3
        &[2.0, 2.0], // equal to a front point: front
        &[4.0, 4.5], // dominated by (3,3): layer 2
    ]);
    assert_eq!(non_dominated_ranks(&p), vec![0, 0, 0, 1, 3, 0, 2]);
    assert_eq!(pareto_front(&p), vec![0, 1, 2, 5]);
    assert!(non_dominated_ranks(&[]).is_empty());
}

#[test]
fn two_objective_ranks_match_pairwise_dominance() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for _ in 0..200 {
        let n = rng.random_range(0..30);
        // Coarse values: ties in either objective and equal points occur.
        let p: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![rng.random_range(0..5) as f64, rng.random_range(0..5) as f64])
            .collect();
        let ranks = non_dominated_ranks(&p);
        // The definition: rank 0 is undominated; a point of rank r > 0 is dominated by some
        // point of rank r − 1 and by none of rank r or more.
        for i in 0..n {
            let by: Vec<u32> = (0..n)
                .filter(|&j| dominates(&p[j], &p[i]))
                .map(|j| ranks[j])
                .collect();
            if ranks[i] == 0 {
                assert!(by.is_empty(), "{p:?} {ranks:?}");
            } else {
                assert!(by.contains(&(ranks[i] - 1)), "{p:?} {ranks:?}");
            }
            assert!(by.iter().all(|&r| r < ranks[i]), "{p:?} {ranks:?}");
        }
    }
}

#[test]
fn hypervolume_matches_hand_computed_values() {
    // 2-D: staircase of (1,3), (2,2), (3,1) under (4,4): 3 + 2 + 1 = 6.
    let p = pts(&[&[1.0, 3.0], &[2.0, 2.0], &[3.0, 1.0]]);
    assert!((hypervolume(&p, &[4.0, 4.0]) - 6.0).abs() < 1e-12);
    // A dominated point and one outside the reference add nothing.
    let mut q = p.clone();
    q.push(vec![3.0, 3.0]);
    q.push(vec![0.5, 5.0]);
    assert!((hypervolume(&q, &[4.0, 4.0]) - 6.0).abs() < 1e-12);
    // 3-D: one point (1,1,1) under (2,2,2) is a unit cube; two boxes
    // (0,1,1) and (1,0,0) under (2,2,2): 2·1·1 + 1·2·2 − overlap 1·1·1 = 5.
    assert!((hypervolume(&pts(&[&[1.0, 1.0, 1.0]]), &[2.0, 2.0, 2.0]) - 1.0).abs() < 1e-12);
    let b = pts(&[&[0.0, 1.0, 1.0], &[1.0, 0.0, 0.0]]);
    assert!((hypervolume(&b, &[2.0, 2.0, 2.0]) - 5.0).abs() < 1e-12);
    // 4-D: union of [0,2]^3×[1,2] (vol 8) and [1,2]^4 (vol 1, inside the first): 8.
    let c = pts(&[&[0.0, 0.0, 0.0, 1.0], &[1.0, 1.0, 1.0, 1.0]]);
    assert!((hypervolume(&c, &[2.0; 4]) - 8.0).abs() < 1e-12);
    // Contributions of the 2-D staircase: each point owns a unit square.
    let contrib = contributions(&p, &[4.0, 4.0]);
    for c in contrib {
        assert!((c - 1.0).abs() < 1e-12);
    }
    // Reference: worst + a tenth of the range; a flat objective gets +1.
    assert_eq!(
        reference_point(&pts(&[&[0.0, 5.0], &[10.0, 5.0]])),
        vec![11.0, 6.0]
    );
}

#[test]
fn the_tpe_split_takes_whole_layers_then_the_largest_contributors() {
    // A front of five points; the layer's reference point is (4.4, 4.4). Contributions:
    // (0,4) 1·0.4 = 0.4, (1,2.9) 1·1.1, (2,2) 1·0.9, (3,0.9) 1·1.1, (4,0) 0.4·0.9 = 0.36.
    // (4,0) goes first; then (3,0.9) owns 1.4·1.1 and (0,4) still 0.4, so (0,4) goes.
    let p = pts(&[
        &[0.0, 4.0],
        &[1.0, 2.9],
        &[2.0, 2.0],
        &[3.0, 0.9],
        &[4.0, 0.0],
        &[5.0, 5.0], // layer 1
    ]);
    let order = tpe_order(&p, 3);
    let good: std::collections::HashSet<usize> = order[..3].iter().copied().collect();
    assert_eq!(good, [1, 2, 3].into_iter().collect());
    assert_eq!(order[5], 5);
    // Whole layers fit: plain rank order.
    assert_eq!(tpe_order(&p, 5)[..5].len(), 5);
    assert_eq!(tpe_order(&p, 5)[5], 5);
}

#[test]
fn two_objective_contributions_match_the_exact_ones() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..50 {
        let n = rng.random_range(1..12);
        // Coarse values, so duplicates and dominated points occur.
        let all: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![rng.random_range(0..6) as f64, rng.random_range(0..6) as f64])
            .collect();
        // A layer: mutually non-dominated, distinct points (what the thinning sees).
        let mut p: Vec<Vec<f64>> = pareto_front(&all)
            .into_iter()
            .map(|i| all[i].clone())
            .collect();
        p.sort_by(|a, b| a.partial_cmp(b).unwrap());
        p.dedup();
        let r = reference_point(&p);
        let fast = contributions_2d(&p, &r);
        let exact = contributions(&p, &r);
        for (a, b) in fast.iter().zip(&exact) {
            assert!((a - b).abs() < 1e-9, "{p:?}: {fast:?} vs {exact:?}");
        }
    }
}

#[test]
fn a_large_three_objective_layer_is_cut_by_crowding_then_thinned() {
    // 200 points on the simplex plane x + y + z = 1: all on one layer.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let p: Vec<Vec<f64>> = (0..200)
        .map(|_| {
            let w = simplex_weights(3, rng.random());
            w.to_vec()
        })
        .collect();
    assert!(non_dominated_ranks(&p).iter().all(|&r| r == 0));
    let order = tpe_order(&p, 20);
    assert_eq!(order, tpe_order(&p, 20));
    let mut seen = order.clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    // Crowding marks the two extremes of each objective infinite (kept by the cut).
    let crowd = crowding_distance(&p);
    assert_eq!(crowd.iter().filter(|c| c.is_infinite()).count(), 6);
}

#[test]
fn parego_weights_are_seeded_and_on_the_simplex() {
    let a = simplex_weights(3, 7);
    assert_eq!(a, simplex_weights(3, 7));
    assert_ne!(a, simplex_weights(3, 8));
    assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-12 && a.iter().all(|&w| w >= 0.0));
    // Normalized to [0, 1]: the ideal corner scores 0, the nadir max λ + ρ.
    let s = parego(&pts(&[&[0.0, 10.0], &[1.0, 20.0]]), &[0.25, 0.75]);
    assert!((s[0] - 0.0).abs() < 1e-12);
    assert!((s[1] - (0.75 + RHO)).abs() < 1e-12);
}

const ZDT1: &str = "metrics: [{name: f1}, {name: f2}]\nparameters:\n  x1: {min: 0.0, max: 1.0}\n  x2: {min: 0.0, max: 1.0}\n  x3: {min: 0.0, max: 1.0}\n";

/// ZDT1 in three dimensions: both objectives minimized, the front is `f2 = 1 − √f1`.
fn zdt1(x: &[f64]) -> (f64, f64) {
    let g = 1.0 + 9.0 * (x[1] + x[2]) / 2.0;
    (x[0], g * (1.0 - (x[0] / g).sqrt()))
}

/// The hypervolume (reference (1.1, 11)) after `budget` suggestions of `method`.
fn run_zdt1(method: &str, seed: u64, budget: usize) -> f64 {
    let c = hyperdial_space::parse_str(&format!("method: {method}\n{ZDT1}"), "z.yaml")
        .unwrap()
        .config;
    let mut trials: Vec<Trial> = Vec::new();
    let mut values = Vec::new();
    for n in 0..budget {
        let Ask::Suggest(s) = suggest_in_sweep(&c, &trials, seed, n as u64 + 1).unwrap() else {
            unreachable!()
        };
        let x: Vec<f64> = s.params.iter().map(|(_, v)| v.as_f64().unwrap()).collect();
        let (f1, f2) = zdt1(&x);
        values.push(vec![f1, f2]);
        trials.push(Trial {
            params: s.params.iter().cloned().collect(),
            value: Some(f1),
            objectives: vec![Some(f1), Some(f2)],
            ..Default::default()
        });
    }
    hypervolume(&values, &[1.1, 11.0])
}

#[test]
fn multi_objective_search_is_reproducible() {
    for method in ["tpe", "bayes"] {
        assert_eq!(run_zdt1(method, 3, 14), run_zdt1(method, 3, 14), "{method}");
    }
}

#[test]
fn tpe_and_bayes_reach_a_larger_hypervolume_than_random_on_zdt1() {
    let mean = |method: &str| (1..=5u64).map(|s| run_zdt1(method, s, 40)).sum::<f64>() / 5.0;
    let random = mean("random");
    let tpe = mean("tpe");
    let bayes = mean("bayes");
    eprintln!("zdt1 mean hypervolume after 40: random {random:.3}, tpe {tpe:.3}, bayes {bayes:.3}");
    assert!(tpe > random, "tpe {tpe} vs random {random}");
    assert!(bayes > random, "bayes {bayes} vs random {random}");
}

const DTLZ2: &str = "metrics: [{name: f1}, {name: f2}, {name: f3}]\nparameters:\n  x1: {min: 0.0, max: 1.0}\n  x2: {min: 0.0, max: 1.0}\n  x3: {min: 0.0, max: 1.0}\n  x4: {min: 0.0, max: 1.0}\n  x5: {min: 0.0, max: 1.0}\n";

/// DTLZ2 with three objectives and five variables: the front is the unit sphere's octant.
fn dtlz2(x: &[f64]) -> Vec<f64> {
    let g: f64 = x[2..].iter().map(|v| (v - 0.5).powi(2)).sum();
    let (a, b) = (
        x[0] * std::f64::consts::FRAC_PI_2,
        x[1] * std::f64::consts::FRAC_PI_2,
    );
    vec![
        (1.0 + g) * a.cos() * b.cos(),
        (1.0 + g) * a.cos() * b.sin(),
        (1.0 + g) * a.sin(),
    ]
}

/// The hypervolume (reference (1.5, 1.5, 1.5)) after `budget` suggestions of `method`.
fn run_dtlz2(method: &str, seed: u64, budget: usize) -> f64 {
    let c = hyperdial_space::parse_str(&format!("method: {method}\n{DTLZ2}"), "d.yaml")
        .unwrap()
        .config;
    let mut trials: Vec<Trial> = Vec::new();
    let mut values = Vec::new();
    for n in 0..budget {
        let Ask::Suggest(s) = suggest_in_sweep(&c, &trials, seed, n as u64 + 1).unwrap() else {
            unreachable!()
        };
        let x: Vec<f64> = s.params.iter().map(|(_, v)| v.as_f64().unwrap()).collect();
        let f = dtlz2(&x);
        trials.push(Trial {
            params: s.params.iter().cloned().collect(),
            value: Some(f[0]),
            objectives: f.iter().map(|&v| Some(v)).collect(),
            ..Default::default()
        });
        values.push(f);
    }
    hypervolume(&values, &[1.5, 1.5, 1.5])
}

#[test]
fn tpe_reaches_a_larger_hypervolume_than_random_with_three_objectives() {
    let mean = |method: &str| (1..=5u64).map(|s| run_dtlz2(method, s, 60)).sum::<f64>() / 5.0;
    let random = mean("random");
    let tpe = mean("tpe");
    eprintln!("dtlz2 mean hypervolume after 60: random {random:.4}, tpe {tpe:.4}");
    assert!(tpe > random, "tpe {tpe} vs random {random}");
}
