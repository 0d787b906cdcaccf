//! Early termination on real learning curves: compute used and best final metric, with and
//! without each rule, replaying the same curves through the production rule code
//! (`hyperdial_search::stopping::decide`).
//!
//! The curves come from real training (`bench/early_stop/curves.py`). The replay runs each
//! sweep on 4 asynchronous workers, one epoch per time unit, starting the configurations in
//! order; after every logged epoch the rule is asked which running runs to stop, exactly as
//! the server does after every metric batch. Every configuration is started in every case;
//! the rule only decides how long each runs.
//!
//! `OMP_NUM_THREADS=1 python3 bench/early_stop/curves.py && cargo run --release -p hyperdial-bench --bin early_stop`

use std::collections::BTreeMap;

use hyperdial_search::stopping::{decide, Curve, CurvePoint};
use hyperdial_space::{Asha, EarlyTerminate, Goal, Hyperband, Median};
use serde_json::Value;

const WORKERS: usize = 4;

struct Outcome {
    epochs: usize,
    /// The sweep's best metric as hyperdial reports it: the best value any run logged
    /// (a run's metric is the best of its history, stopped runs included).
    best: f64,
    /// The best last-epoch value among runs that ran to the end.
    best_final: f64,
}

fn replay(curves: &[Vec<Option<f64>>], rule: Option<&EarlyTerminate>) -> Outcome {
    let epochs_max = curves.iter().map(Vec::len).max().unwrap_or(0);
    let n = curves.len();
    let mut state: Vec<Curve> = (0..n)
        .map(|i| Curve {
            number: i as i64 + 1,
            running: false,
            finished: false,
            points: Vec::new(),
        })
        .collect();
    let mut done = vec![false; n];
    let mut next = 0usize;
    let mut workers: Vec<Option<usize>> = vec![None; WORKERS];
    let mut epochs = 0usize;
    let mut t: i64 = 0;
    loop {
        for w in workers.iter_mut() {
            if w.is_none() && next < n {
                *w = Some(next);
                state[next].running = true;
                next += 1;
            }
        }
        if workers.iter().all(Option::is_none) {
            break;
        }
        for slot in 0..WORKERS {
            let Some(i) = workers[slot] else { continue };
            let e = state[i].points.len();
            let value = curves[i].get(e).copied().flatten().unwrap_or(f64::NAN);
            epochs += 1;
            // Non-finite values are kept out of the curve, as the server stores them as null.
            state[i].points.push(CurvePoint {
                progress: (e + 1) as f64,
                value,
                time_ms: t * 100 + slot as i64,
            });
            if e + 1 >= epochs_max.min(curves[i].len()) {
                state[i].running = false;
                state[i].finished = true;
                done[i] = true;
                workers[slot] = None;
            }
            if let Some(rule) = rule {
                for stop in decide(rule, Goal::Minimize, &state) {
                    let j = stop.index;
                    state[j].running = false;
                    if let Some(w) = workers.iter_mut().find(|w| **w == Some(j)) {
                        *w = None;
                    }
                }
            }
        }
        t += 1;
    }
    let best_final = (0..n)
        .filter(|&i| state[i].finished)
        .filter_map(|i| curves[i].last().copied().flatten())
        .fold(f64::INFINITY, f64::min);
    let best = state
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.value))
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    Outcome {
        epochs,
        best,
        best_final,
    }
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/early-stop-curves.json"
        )
        .to_string()
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run bench/early_stop/curves.py first)"));
    let sweeps: Vec<Value> = serde_json::from_str(&text).expect("curves JSON");
    let rules: Vec<(&str, Option<EarlyTerminate>)> = vec![
        ("none", None),
        (
            "hyperband min_iter 3, eta 3",
            Some(EarlyTerminate::Hyperband(Hyperband {
                min_iter: Some(3),
                max_iter: None,
                s: None,
                eta: 3.0,
                strict: true,
            })),
        ),
        (
            "hyperband min_iter 3, eta 3, strict false",
            Some(EarlyTerminate::Hyperband(Hyperband {
                min_iter: Some(3),
                max_iter: None,
                s: None,
                eta: 3.0,
                strict: false,
            })),
        ),
        (
            "hyperband min_iter 4, eta 2",
            Some(EarlyTerminate::Hyperband(Hyperband {
                min_iter: Some(4),
                max_iter: None,
                s: None,
                eta: 2.0,
                strict: true,
            })),
        ),
        (
            "hyperband min_iter 9, eta 3",
            Some(EarlyTerminate::Hyperband(Hyperband {
                min_iter: Some(9),
                max_iter: None,
                s: None,
                eta: 3.0,
                strict: true,
            })),
        ),
        (
            "asha grace 1, rf 3",
            Some(EarlyTerminate::Asha(Asha {
                grace_period: 1,
                reduction_factor: 3.0,
                brackets: 1,
                max_t: None,
                step_key: None,
            })),
        ),
        (
            "asha grace 3, rf 3",
            Some(EarlyTerminate::Asha(Asha {
                grace_period: 3,
                reduction_factor: 3.0,
                brackets: 1,
                max_t: None,
                step_key: None,
            })),
        ),
        (
            "asha grace 3, rf 2",
            Some(EarlyTerminate::Asha(Asha {
                grace_period: 3,
                reduction_factor: 2.0,
                brackets: 1,
                max_t: None,
                step_key: None,
            })),
        ),
        (
            "median min_runs 5, warmup 3",
            Some(EarlyTerminate::Median(Median {
                warmup: 3,
                min_runs: 5,
                step_key: None,
            })),
        ),
    ];
    // task -> rule -> (compute fraction, relative loss of the best, of the best final) per seed
    type Cell = (Vec<f64>, Vec<f64>, Vec<f64>);
    let mut table: BTreeMap<String, BTreeMap<usize, Cell>> = BTreeMap::new();
    for sweep in &sweeps {
        let task = sweep["task"].as_str().unwrap_or("?").to_string();
        let curves: Vec<Vec<Option<f64>>> = sweep["curves"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                c.as_array()
                    .into_iter()
                    .flatten()
                    .map(Value::as_f64)
                    .collect()
            })
            .collect();
        let base = replay(&curves, None);
        for (k, (_, rule)) in rules.iter().enumerate() {
            let out = replay(&curves, rule.as_ref());
            let entry = table.entry(task.clone()).or_default().entry(k).or_default();
            entry.0.push(out.epochs as f64 / base.epochs as f64);
            let rel = |a: f64, b: f64| (a - b) / b.abs().max(1e-12);
            entry.1.push(rel(out.best, base.best));
            entry.2.push(rel(out.best_final, base.best_final));
        }
    }
    println!("early termination on real learning curves ({path})");
    println!(
        "{} sweeps; {WORKERS} asynchronous workers. Loss: relative increase (lower is better, mean over seeds) of \
         the sweep's best metric (best value any run logged, what `hyperdial best` reports) and of the best \
         last-epoch value among runs that ran to the end.\n",
        sweeps.len()
    );
    println!("| task | rule | compute saved | loss of best | seeds ≤ 1% | loss of best final | seeds ≤ 1% |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let within = |v: &Vec<f64>| v.iter().filter(|l| **l <= 0.01).count();
    for (task, by_rule) in &table {
        for (k, (compute, best, last)) in by_rule {
            println!(
                "| {task} | {} | {:.1}% | {:+.2}% | {}/{} | {:+.2}% | {}/{} |",
                rules[*k].0,
                100.0 * (1.0 - mean(compute)),
                100.0 * mean(best),
                within(best),
                best.len(),
                100.0 * mean(last),
                within(last),
                last.len()
            );
        }
    }
}
