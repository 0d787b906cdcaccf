//! A quick in-process search-quality loop on synthetic spaces written as W&B `values` lists,
//! with and without observation noise: `bayes`, `tpe` and random search, each run
//! sequentially for 100 trials on several seeds. Prints the mean normalized regret of the
//! incumbent's true value at 20, 50 and 100 trials (0 = the space's best configuration,
//! 1 = its median), where the incumbent is the run with the best *observed* value.
//!
//! ```sh
//! cargo run --release -p hyperdial-search --example values_loop -- [seeds] [budget]
//! TASKS=hartmann6-list4-hetero METHODS=bayes cargo run --release ... # a subset
//! ```
//!
//! The functions are synthetic (Branin, Hartmann-6 and a made-up training-like response on
//! grids of listed values; `hartmann6-list4-hetero` is `hartmann6-list-noisy` of
//! `bench/quality`, noise growing with the loss), so they can be enumerated for their optimum and median; the
//! quality benchmark in `bench/quality` is the reference, this is for quick iteration.

use hyperdial_search::{suggest_in_sweep, Ask, Trial};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

type Params = [(String, Value)];

struct Task {
    name: &'static str,
    yaml: String,
    f: fn(&Params) -> f64,
    /// Standard deviation of the observation noise, in units of `f`.
    noise: f64,
    /// Whether the noise grows with the loss: `sd = noise + 1.4·noise·(f − f*)/(median − f*)`,
    /// clipped to `[noise, 2.4·noise]` (worse configurations train less stably), as in
    /// `hartmann6-list-noisy` of `bench/quality`.
    hetero: bool,
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn list(xs: &[f64]) -> String {
    let items: Vec<String> = xs.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", items.join(", "))
}

fn branin(p: &Params) -> f64 {
    let (x, y) = (num(&p[0].1), num(&p[1].1));
    let pi = std::f64::consts::PI;
    let b = 5.1 / (4.0 * pi * pi);
    let c = 5.0 / pi;
    let t = 1.0 / (8.0 * pi);
    (y - b * x * x + c * x - 6.0).powi(2) + 10.0 * (1.0 - t) * x.cos() + 10.0
}

fn hartmann6(p: &Params) -> f64 {
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    let x: Vec<f64> = p.iter().map(|(_, v)| num(v)).collect();
    -(0..4)
        .map(|i| {
            let s: f64 = (0..6).map(|j| A[i][j] * (x[j] - P[i][j]).powi(2)).sum();
            ALPHA[i] * (-s).exp()
        })
        .sum::<f64>()
}

/// A training-like response: validation error over learning rate, batch size, depth,
/// dropout and activation, with a learning-rate × batch-size interaction.
fn mlp(p: &Params) -> f64 {
    let lr = num(&p[0].1).log10();
    let b = num(&p[1].1).log2();
    let layers = num(&p[2].1);
    let drop = num(&p[3].1);
    let act = match p[4].1.as_str().unwrap() {
        "relu" => 0.0,
        "gelu" => -0.01,
        _ => 0.03,
    };
    let best_lr = -3.0 + 0.25 * (b - 6.0);
    0.08 + 0.04 * (lr - best_lr).powi(2)
        + 0.01 * (layers - 3.0).powi(2)
        + 0.2 * (drop - 0.2).powi(2)
        + act
        + 0.002 * (b - 7.0).powi(2)
}

fn tasks() -> Vec<Task> {
    let lin = |lo: f64, hi: f64, n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| ((lo + (hi - lo) * i as f64 / (n - 1) as f64) * 1e6).round() / 1e6)
            .collect()
    };
    let branin_yaml = format!(
        "parameters:\n  x: {{values: {}}}\n  y: {{values: {}}}\n",
        list(&lin(-5.0, 10.0, 16)),
        list(&lin(0.0, 15.0, 16))
    );
    let mut h6 = String::from("parameters:\n");
    for k in 0..6 {
        h6 += &format!("  x{k}: {{values: {}}}\n", list(&lin(0.0, 1.0, 11)));
    }
    let mlp_yaml = "parameters:\n  lr: {values: [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]}\n  batch: {values: [16, 32, 64, 128, 256, 512]}\n  layers: {values: [1, 2, 3, 4, 5]}\n  dropout: {values: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]}\n  act: {values: [relu, tanh, gelu]}\n".to_string();
    let mut h6_4 = String::from("parameters:\n");
    for k in 0..6 {
        h6_4 += &format!("  x{k}: {{values: [0.125, 0.375, 0.625, 0.875]}}\n");
    }
    vec![
        Task {
            name: "branin-values",
            yaml: branin_yaml.clone(),
            f: branin,
            noise: 0.0,
            hetero: false,
        },
        Task {
            name: "hartmann6-values",
            yaml: h6.clone(),
            f: hartmann6,
            noise: 0.0,
            hetero: false,
        },
        Task {
            name: "mlp-values",
            yaml: mlp_yaml.clone(),
            f: mlp,
            noise: 0.0,
            hetero: false,
        },
        Task {
            name: "branin-values-noisy",
            yaml: branin_yaml,
            f: branin,
            noise: 5.0,
            hetero: false,
        },
        Task {
            name: "hartmann6-values-noisy",
            yaml: h6,
            f: hartmann6,
            noise: 0.15,
            hetero: false,
        },
        Task {
            name: "mlp-values-noisy",
            yaml: mlp_yaml,
            f: mlp,
            noise: 0.01,
            hetero: false,
        },
        Task {
            name: "hartmann6-list4-hetero",
            yaml: h6_4,
            f: hartmann6,
            noise: 0.25,
            hetero: true,
        },
    ]
}

/// The optimum and the median of `f` over every configuration of the space.
fn reference(config: &hyperdial_space::SweepConfig, f: fn(&Params) -> f64) -> (f64, f64) {
    let size = hyperdial_space::grid::grid_size(&config.parameters).unwrap();
    let mut values: Vec<f64> = (0..size)
        .map(|i| f(&hyperdial_space::grid::grid_point(&config.parameters, i).unwrap()))
        .collect();
    values.sort_by(f64::total_cmp);
    (values[0], values[values.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let budget: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let marks: Vec<usize> = [20, 50, 100].into_iter().filter(|&b| b <= budget).collect();
    println!(
        "| task | method | {} |",
        marks
            .iter()
            .map(|b| format!("@{b}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("| --- | --- |{}", " --- |".repeat(marks.len()));
    // `TASKS=a,b` and `METHODS=bayes,tpe` run a subset.
    let wanted = |var: &str, name: &str| {
        std::env::var(var).map_or(true, |v| v.split(',').any(|w| w == name))
    };
    for task in tasks().into_iter().filter(|t| wanted("TASKS", t.name)) {
        let grid_config =
            hyperdial_space::parse_str(&format!("method: grid\n{}", task.yaml), "t.yaml")
                .unwrap()
                .config;
        let (best, median) = reference(&grid_config, task.f);
        for method in ["bayes", "tpe", "random"]
            .into_iter()
            .filter(|m| wanted("METHODS", m))
        {
            let text = format!("method: {method}\nmetric: {{name: loss}}\n{}", task.yaml);
            let config = hyperdial_space::parse_str(&text, "t.yaml").unwrap().config;
            let mut regret = vec![0.0; marks.len()];
            // The same at the model's estimate of the best run (`bayes::estimate`).
            let mut regret_est = vec![0.0; marks.len()];
            for seed in 0..seeds {
                let mut noise_rng = ChaCha8Rng::seed_from_u64(1000 + seed);
                let mut trials: Vec<Trial> = Vec::new();
                let mut truth: Vec<f64> = Vec::new();
                for n in 0..budget {
                    let s = match suggest_in_sweep(&config, &trials, seed, n as u64 + 1).unwrap() {
                        Ask::Suggest(s) => s,
                        Ask::Exhausted => break,
                    };
                    let t = (task.f)(&s.params);
                    let z: f64 = (0..12).map(|_| noise_rng.random::<f64>()).sum::<f64>() - 6.0;
                    let sd = if task.hetero {
                        let r = (t - best) / (median - best);
                        task.noise * (1.0 + 1.4 * r).clamp(1.0, 2.4)
                    } else {
                        task.noise
                    };
                    let y = t + sd * z;
                    truth.push(t);
                    trials.push(Trial {
                        params: s.params.iter().cloned().collect(),
                        value: Some(y),
                        ..Default::default()
                    });
                }
                for (k, &m) in marks.iter().enumerate() {
                    let upto = m.min(trials.len());
                    let inc = (0..upto)
                        .min_by(|&a, &b| {
                            trials[a]
                                .value
                                .unwrap()
                                .total_cmp(&trials[b].value.unwrap())
                        })
                        .unwrap();
                    regret[k] += (truth[inc] - best) / (median - best);
                    let est = hyperdial_search::bayes::estimate::estimated_best(
                        &config,
                        &trials[..upto],
                        seed,
                    )
                    .map_or(inc, |e| e.trial);
                    regret_est[k] += (truth[est] - best) / (median - best);
                }
            }
            let cells: Vec<String> = regret
                .iter()
                .map(|r| format!("{:.3}", r / seeds as f64))
                .collect();
            println!("| {} | {method} | {} |", task.name, cells.join(" | "));
            let cells: Vec<String> = regret_est
                .iter()
                .map(|r| format!("{:.3}", r / seeds as f64))
                .collect();
            println!(
                "| {} | {method}, estimated best | {} |",
                task.name,
                cells.join(" | ")
            );
        }
    }
}
