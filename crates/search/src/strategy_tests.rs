//! Strategy-level tests of sobol, tpe and bayes: valid values, concurrency, quality against
//! random, reproducibility, imputation and goals. Deterministic; no timings.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::*;

fn config(text: &str) -> SweepConfig {
    hyperdial_space::parse_str(text, "t.yaml").unwrap().config
}

fn suggestion(c: &SweepConfig, trials: &[Trial], seed: u64) -> Suggestion {
    match suggest(c, trials, seed).unwrap() {
        Ask::Suggest(s) => s,
        Ask::Exhausted => panic!("exhausted"),
    }
}

fn trial(s: &Suggestion, value: Option<f64>) -> Trial {
    Trial {
        params: s.params.iter().cloned().collect(),
        value,
        running: value.is_none(),
        ..Default::default()
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Branin on [−5, 10] × [0, 15]; minimum 0.397887.
fn branin(x: f64, y: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let b = 5.1 / (4.0 * pi * pi);
    let c = 5.0 / pi;
    let t = 1.0 / (8.0 * pi);
    (y - b * x * x + c * x - 6.0).powi(2) + 10.0 * (1.0 - t) * x.cos() + 10.0
}

const BRANIN: &str =
    "metric: {name: loss}\nparameters: {x: {min: -5.0, max: 10.0}, y: {min: 0.0, max: 15.0}}\n";

/// Best Branin value after `budget` sequential suggestions.
fn run_branin(method: &str, seed: u64, budget: usize) -> f64 {
    let c = config(&format!("method: {method}\n{BRANIN}"));
    let mut trials = Vec::new();
    let mut best = f64::INFINITY;
    for n in 0..budget {
        let s = match suggest_in_sweep(&c, &trials, seed, n as u64 + 1).unwrap() {
            Ask::Suggest(s) => s,
            Ask::Exhausted => unreachable!(),
        };
        let v = branin(num(&s.params[0].1), num(&s.params[1].1));
        best = best.min(v);
        trials.push(trial(&s, Some(v)));
    }
    best
}

const EVERY_KIND: &str = "parameters:
  c: {value: 3}
  cat: {values: [adam, sgd, 5, true]}
  catp: {values: [a, b, c], probabilities: [0.5, 0.0, 0.5]}
  i: {distribution: int_uniform, min: -3, max: 4}
  u: {min: 0.5, max: 2.5}
  qu: {distribution: q_uniform, min: 0, max: 1, q: 0.25}
  lu: {distribution: log_uniform, min: -4, max: 0}
  ilu: {distribution: inv_log_uniform, min: 0, max: 3}
  qlu: {distribution: q_log_uniform, min: 0, max: 4, q: 2}
  luv: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
  iluv: {distribution: inv_log_uniform_values, min: 1e-3, max: 1.0}
  qluv: {distribution: q_log_uniform_values, min: 1, max: 1000, q: 10}
  n: {distribution: normal, mu: 1, sigma: 2}
  qn: {distribution: q_normal, mu: 0, sigma: 3, q: 0.5}
  ln: {distribution: log_normal, mu: 0, sigma: 1}
  qln: {distribution: q_log_normal, mu: 1, sigma: 1, q: 1}
  b: {distribution: beta, a: 2, b: 5}
  qb: {distribution: q_beta, a: 1, b: 1, q: 0.1}
";

#[test]
fn every_strategy_decodes_only_valid_values() {
    for method in ["sobol", "tpe", "bayes"] {
        let c = config(&format!(
            "method: {method}\nmetric: {{name: m}}\n{EVERY_KIND}"
        ));
        let mut trials = Vec::new();
        for n in 0..30u64 {
            let s = suggestion(&c, &trials, run_seed(5, n));
            assert_eq!(s.params.len(), c.parameters.len());
            let mut score = 0.0;
            for ((name, v), p) in s.params.iter().zip(&c.parameters) {
                assert_eq!(name, &p.name);
                assert!(
                    p.distribution.to_unit(v).is_some(),
                    "{method}: {name} = {v} is not a value of {}",
                    p.distribution.describe()
                );
                if let Some(x) = v.as_f64() {
                    score += (p.distribution.to_unit(v).unwrap() - 0.3).powi(2) + 0.0 * x;
                }
            }
            assert_ne!(s.params[2].1, json!("b"), "zero-probability choice");
            trials.push(trial(&s, Some(score)));
        }
    }
}

#[test]
fn sobol_follows_the_sweep_sequence() {
    let c = config("method: sobol\nparameters: {a: {min: 0.0, max: 1.0}, b: {values: [x, y]}}\n");
    let mut trials = Vec::new();
    let mut cells = HashSet::new();
    for n in 0..16u64 {
        let s = match suggest_in_sweep(&c, &trials, 9, n + 1).unwrap() {
            Ask::Suggest(s) => s,
            _ => unreachable!(),
        };
        assert_eq!(s.info.strategy, "sobol");
        cells.insert((num(&s.params[0].1) * 8.0) as usize);
        trials.push(trial(&s, Some(0.0)));
    }
    // 16 points stratify [0, 1] into 8 cells, two each.
    assert_eq!(cells.len(), 8);
    // Same sweep seed and history: same point; another sweep seed: another point.
    let a = suggest_in_sweep(&c, &trials[..3], 9, 4).unwrap();
    let b = suggest_in_sweep(&c, &trials[..3], 9, 4).unwrap();
    let d = suggest_in_sweep(&c, &trials[..3], 10, 4).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, d);
}

/// 8 agents ask at once after 20 finished runs: 8 different, spread-out points.
fn concurrent_spread(method: &str) -> f64 {
    let c = config(&format!("method: {method}\n{BRANIN}"));
    let mut trials = Vec::new();
    for n in 0..20u64 {
        let s = suggestion(&c, &trials, run_seed(1, n));
        let v = branin(num(&s.params[0].1), num(&s.params[1].1));
        trials.push(trial(&s, Some(v)));
    }
    let mut points = Vec::new();
    for n in 20..28u64 {
        let s = suggestion(&c, &trials, run_seed(1, n));
        let p = (
            (num(&s.params[0].1) + 5.0) / 15.0,
            num(&s.params[1].1) / 15.0,
        );
        points.push(p);
        trials.push(trial(&s, None));
    }
    let mut min = f64::INFINITY;
    for i in 0..points.len() {
        for j in 0..i {
            let d =
                ((points[i].0 - points[j].0).powi(2) + (points[i].1 - points[j].1).powi(2)).sqrt();
            min = min.min(d);
        }
    }
    min
}

#[test]
fn concurrent_bayes_asks_are_distinct_and_spread() {
    let d = concurrent_spread("bayes");
    assert!(d > 0.02, "min pairwise distance {d}");
}

#[test]
fn concurrent_tpe_asks_are_distinct() {
    let d = concurrent_spread("tpe");
    assert!(d > 1e-3, "min pairwise distance {d}");
}

#[test]
fn bayes_and_tpe_beat_random_on_branin() {
    // Medians over 8 sweep seeds: one unlucky sweep (or one lucky random draw) must not
    // decide the test.
    let median = |method: &str, budget: usize| {
        let mut best: Vec<f64> = (1..=8u64).map(|s| run_branin(method, s, budget)).collect();
        best.sort_by(f64::total_cmp);
        0.5 * (best[3] + best[4])
    };
    let random = median("random", 30);
    let bayes = median("bayes", 30);
    let tpe = median("tpe", 30);
    eprintln!("branin median best after 30: random {random:.3}, tpe {tpe:.3}, bayes {bayes:.3}");
    // The optimum is 0.397887.
    assert!(
        bayes < 0.5 * random && bayes < 0.45,
        "bayes {bayes} vs random {random}"
    );
    assert!(tpe < random, "tpe {tpe} vs random {random}");
}

#[test]
fn suggestions_are_reproducible() {
    for method in ["tpe", "bayes"] {
        let c = config(&format!("method: {method}\n{BRANIN}"));
        let mut trials = Vec::new();
        for n in 0..15u64 {
            let s = suggestion(&c, &trials, run_seed(4, n));
            let v = branin(num(&s.params[0].1), num(&s.params[1].1));
            trials.push(trial(&s, Some(v)));
        }
        let a = suggestion(&c, &trials, 77);
        let b = suggestion(&c, &trials, 77);
        assert_eq!(a.params, b.params, "{method}");
        assert_eq!(a.info.seed, b.info.seed);
    }
}

#[test]
fn failed_runs_are_imputed() {
    let c = config("method: bayes\nmetric: {name: m}\nparameters: {a: {min: 0.0, max: 1.0}}\n");
    let space = Space::new(&c);
    let t = |a: f64, value: Option<f64>, failed: bool, running: bool| Trial {
        params: [("a".to_string(), json!(a))].into_iter().collect(),
        value,
        failed,
        running,
        ..Default::default()
    };
    let trials = vec![
        t(0.1, Some(3.0), false, false),
        t(0.2, Some(1.0), false, false),
        t(0.3, None, true, false),
        t(0.4, Some(f64::NAN), false, false),
        t(0.5, Some(0.5), true, false),
        t(0.6, None, false, true),
        t(0.7, None, false, false),
    ];
    // W&B's imputation (crate::metric): the sweep's worst value is 3.0, the worst any ended
    // run reported (the failed run's 0.5 included); the finished run without a value (0.7)
    // is imputed too.
    let h = History::new(&c, &space, &trials);
    assert_eq!(h.values, vec![3.0, 1.0, 3.0, 3.0, 3.0, 3.0]);
    assert_eq!(h.imputed, vec![false, false, true, true, true, true]);
    assert_eq!(h.pending.len(), 1);
    // `best` is the failed run's own best; runs without one are left out.
    let best = config(
        "method: bayes\nmetric: {name: m, impute: best}\nparameters: {a: {min: 0.0, max: 1.0}}\n",
    );
    assert_eq!(
        History::new(&best, &space, &trials).values,
        vec![3.0, 1.0, 0.5]
    );
    // `latest` is the run's own last logged value (none here); a running run without a value
    // counts with the sweep's worst under `impute_while_running: worst`.
    let latest = config("method: bayes\nmetric: {name: m, impute: latest, impute_while_running: worst}\nparameters: {a: {min: 0.0, max: 1.0}}\n");
    let h = History::new(&latest, &space, &trials);
    assert_eq!(h.values, vec![3.0, 1.0, 3.0]);
    assert!(h.pending.is_empty());
    // Maximize: values are negated, and the worst is the smallest metric.
    let max = config(
        "method: bayes\nmetric: {name: m, goal: maximize}\nparameters: {a: {min: 0.0, max: 1.0}}\n",
    );
    assert_eq!(
        History::new(&max, &space, &trials).values,
        vec![-3.0, -1.0, -0.5, -0.5, -0.5, -0.5]
    );
    // A bayes suggestion with failures in the history works and reports them.
    let mut many = trials.clone();
    for k in 0..6 {
        many.push(t(
            0.05 + 0.15 * k as f64,
            Some((k as f64 - 2.5).powi(2)),
            false,
            false,
        ));
    }
    let s = suggestion(&c, &many, 3);
    let diag = s.info.diagnostics.unwrap();
    assert_eq!(diag["phase"], "model");
    assert_eq!(diag["imputed"], 4);
}

#[test]
fn maximize_is_minimize_of_the_negation() {
    for method in ["tpe", "bayes"] {
        let min = config(&format!("method: {method}\nmetric: {{name: m}}\nparameters: {{a: {{min: 0.0, max: 1.0}}, b: {{values: [x, y, z]}}}}\n"));
        let max = config(&format!("method: {method}\nmetric: {{name: m, goal: maximize}}\nparameters: {{a: {{min: 0.0, max: 1.0}}, b: {{values: [x, y, z]}}}}\n"));
        let f = |p: &Suggestion| {
            let a = num(&p.params[0].1);
            let b = if p.params[1].1 == json!("y") {
                0.0
            } else {
                0.3
            };
            (a - 0.7).powi(2) + b
        };
        let (mut tmin, mut tmax) = (Vec::new(), Vec::new());
        for n in 0..16u64 {
            let s = suggestion(&min, &tmin, run_seed(2, n));
            let s2 = suggestion(&max, &tmax, run_seed(2, n));
            assert_eq!(s.params, s2.params, "{method} at {n}");
            tmin.push(trial(&s, Some(f(&s))));
            tmax.push(trial(&s2, Some(-f(&s2))));
        }
        // And it went for the optimum: a near 0.7, b = y.
        let best = tmin
            .iter()
            .min_by(|a, b| a.value.unwrap().total_cmp(&b.value.unwrap()))
            .unwrap();
        assert_eq!(best.params["b"], json!("y"), "{method}");
    }
}

#[test]
fn old_suggestion_rows_still_deserialize() {
    let info: SuggestionInfo =
        serde_json::from_value(json!({"strategy": "random", "seed": 3, "grid_index": null}))
            .unwrap();
    assert!(info.diagnostics.is_none());
    let text = serde_json::to_string(&info).unwrap();
    assert!(!text.contains("diagnostics"));
    let t: Trial = serde_json::from_value(
        json!({"params": {}, "grid_index": null, "value": 1.0, "running": false}),
    )
    .unwrap();
    assert!(!t.failed);
}

/// A 12-point space: an ordinal (geometric) list and a categorical one.
const TWELVE: &str = "metric: {name: loss}\nparameters:\n  batch: {values: [16, 32, 64, 128]}\n  act: {values: [relu, tanh, gelu]}\n";

fn twelve_loss(params: &[(String, Value)]) -> f64 {
    let b = num(&params[0].1).log2();
    let a = match params[1].1.as_str().unwrap() {
        "relu" => 0.0,
        "tanh" => 0.3,
        _ => 0.1,
    };
    (b - 5.0).powi(2) + a
}

#[test]
fn finite_spaces_run_each_configuration_once_then_end() {
    for method in ["bayes", "tpe"] {
        for seed in 0..3 {
            let c = config(&format!("method: {method}\n{TWELVE}"));
            let mut trials = Vec::new();
            let mut seen = HashSet::new();
            for n in 0..12u64 {
                let Ask::Suggest(s) = suggest_in_sweep(&c, &trials, seed, n + 1).unwrap() else {
                    panic!("{method}: exhausted after {n} runs");
                };
                assert!(
                    seen.insert(serde_json::to_string(&s.params).unwrap()),
                    "{method} seed {seed}: run {} repeats {:?}",
                    n + 1,
                    s.params
                );
                // Every other run still in flight: in-flight runs take their configuration.
                let value = (n % 2 == 0).then(|| twelve_loss(&s.params));
                trials.push(trial(&s, value));
            }
            assert_eq!(seen.len(), 12);
            assert_eq!(
                suggest_in_sweep(&c, &trials, seed, 13).unwrap(),
                Ask::Exhausted,
                "{method}"
            );
        }
    }
}

#[test]
fn failed_runs_take_their_configuration_and_repeats_can_be_asked_for() {
    let c = config(&format!("method: tpe\n{TWELVE}"));
    let mut trials = Vec::new();
    for n in 0..12u64 {
        let s = match suggest_in_sweep(&c, &trials, 5, n + 1).unwrap() {
            Ask::Suggest(s) => s,
            Ask::Exhausted => panic!("exhausted after {n}"),
        };
        let mut t = trial(&s, None);
        t.running = false;
        t.failed = true;
        trials.push(t);
    }
    assert_eq!(
        suggest_in_sweep(&c, &trials, 5, 13).unwrap(),
        Ask::Exhausted
    );
    for method in ["bayes", "tpe"] {
        let c = config(&format!("method: {method}\nallow_repeats: true\n{TWELVE}"));
        let mut trials = Vec::new();
        for n in 0..30u64 {
            let Ask::Suggest(s) = suggest_in_sweep(&c, &trials, 1, n + 1).unwrap() else {
                panic!("{method} with allow_repeats ended after {n} runs");
            };
            let v = twelve_loss(&s.params);
            trials.push(trial(&s, Some(v)));
        }
    }
}

#[test]
fn numeric_lists_give_listed_values_of_their_written_type() {
    let text = "metric: {name: loss}\nparameters:\n  lr: {values: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]}\n  batch: {values: [128, 16, 64, 32]}\n  drop: {values: [0.0, 0.1, 0.2, 0.3, 0.5]}\n  w: {min: 0.0, max: 1.0}\n";
    let lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2];
    for method in ["bayes", "tpe", "sobol"] {
        let c = config(&format!("method: {method}\n{text}"));
        let space = encode::Space::new(&c);
        assert!(matches!(
            space.dims[0],
            encode::Dim::Ordinal { log: true, .. }
        ));
        assert!(matches!(
            space.dims[1],
            encode::Dim::Ordinal { log: true, .. }
        ));
        assert!(matches!(
            space.dims[2],
            encode::Dim::Ordinal { log: false, .. }
        ));
        let mut trials = Vec::new();
        let mut batches = HashSet::new();
        for n in 0..30u64 {
            let s = match suggest_in_sweep(&c, &trials, 3, n + 1).unwrap() {
                Ask::Suggest(s) => s,
                Ask::Exhausted => unreachable!(),
            };
            let lr = &s.params[0].1;
            assert!(lr.is_f64() && lrs.contains(&num(lr)), "{method}: {lr}");
            let batch = &s.params[1].1;
            assert!(batch.is_u64(), "{method}: {batch} is not an integer");
            assert!([16, 32, 64, 128].contains(&batch.as_u64().unwrap()));
            batches.insert(batch.as_u64().unwrap());
            let drop = &s.params[2].1;
            assert!(drop.is_f64() && [0.0, 0.1, 0.2, 0.3, 0.5].contains(&num(drop)));
            // Best at lr = 1e-3, batch = 32, drop = 0.1.
            let v = (num(lr).log10() + 3.0).powi(2)
                + (num(batch).log2() - 5.0).powi(2)
                + (num(drop) - 0.1).abs()
                + num(&s.params[3].1);
            trials.push(trial(&s, Some(v)));
        }
        assert_eq!(batches.len(), 4, "{method} never tried some batch size");
    }
}

#[test]
fn mixed_and_two_value_lists_stay_categorical() {
    let c = config("method: bayes\nmetric: {name: loss}\nparameters:\n  a: {values: [1, 2, x]}\n  b: {values: [1, 2, true]}\n  c: {values: [8, 64]}\n  d: {values: [1, 1.0, 2]}\n");
    let space = encode::Space::new(&c);
    assert!(space
        .dims
        .iter()
        .all(|d| matches!(d, encode::Dim::Categorical { .. })));
}

#[test]
fn the_incumbent_is_the_best_posterior_mean_not_the_luckiest_draw() {
    // A flat function observed with noise, plus one lucky draw far below the rest: the
    // model's mean at that point is pulled back towards the others, so EI is measured from
    // above the lucky value.
    let c = config("method: bayes\nmetric: {name: loss}\nparameters: {x: {min: 0.0, max: 1.0}}\n");
    let mut trials = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for n in 0..40u64 {
        let s = match suggest_in_sweep(&c, &trials, 2, n + 1).unwrap() {
            Ask::Suggest(s) => s,
            Ask::Exhausted => unreachable!(),
        };
        let noise: f64 = rng.random::<f64>() - 0.5;
        trials.push(trial(&s, Some(1.0 + 0.2 * noise)));
    }
    let s = suggestion(&c, &trials, 77);
    let d = s.info.diagnostics.unwrap();
    let noise = d["noise"].as_f64().unwrap();
    // The fitted noise is the bulk of the (standardized) variance of a flat noisy function.
    assert!(noise > 0.3, "fitted noise {noise}");
    let lowest = trials
        .iter()
        .filter_map(|t| t.value)
        .fold(f64::INFINITY, f64::min);
    let incumbent = d["incumbent"].as_f64().unwrap();
    assert!(
        incumbent > lowest + 0.05,
        "incumbent {incumbent} chases the lowest draw {lowest}"
    );
}
