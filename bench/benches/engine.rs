//! Suggestion latency of the search engine: `bayes` at 100, 1,000 and 5,000 finished runs
//! (beyond a few hundred it fits and conditions on subsets, so the cost levels off), `tpe`
//! at 1,000, 5,000 and 10,000, in 5, 10 and 20 dimensions, continuous and mixed spaces. Run
//! with `cargo bench -p hyperdial-bench --bench engine`; filter with a trailing pattern,
//! e.g. `-- bayes/100`.
//!
//! A *mixed* space of `d` parameters cycles through uniform, log-uniform, int-uniform and
//! categorical (4 choices) parameters. Finished runs are random configurations scored by a
//! smooth function of their unit coordinates plus a little noise, as a real sweep's would be.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hyperdial_search::{run_seed, suggest, Ask, Trial};
use hyperdial_space::SweepConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

fn config(method: &str, d: usize, mixed: bool) -> SweepConfig {
    let mut text = format!("method: {method}\nmetric: {{name: loss}}\nparameters:\n");
    for i in 0..d {
        let p = if !mixed {
            "{min: 0.0, max: 1.0}".to_string()
        } else {
            match i % 4 {
                0 => "{min: 0.0, max: 1.0}".to_string(),
                1 => "{distribution: log_uniform_values, min: 1e-5, max: 1.0}".to_string(),
                2 => "{distribution: int_uniform, min: 1, max: 64}".to_string(),
                _ => "{values: [a, b, c, d]}".to_string(),
            }
        };
        text.push_str(&format!("  p{i}: {p}\n"));
    }
    hyperdial_space::parse_str(&text, "bench.yaml")
        .unwrap()
        .config
}

fn trials(c: &SweepConfig, n: usize) -> Vec<Trial> {
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    (0..n)
        .map(|_| {
            let mut loss = 0.0;
            let params: serde_json::Map<String, serde_json::Value> = c
                .parameters
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let u: f64 = rng.random();
                    let v = p.distribution.from_unit(u);
                    let target = 0.2 + 0.6 * ((i * 7) % 10) as f64 / 10.0;
                    loss += (u - target).powi(2);
                    (p.name.clone(), v)
                })
                .collect();
            Trial {
                params,
                value: Some(loss + 0.01 * rng.random::<f64>()),
                ..Default::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion, method: &str, sizes: &[usize]) {
    let mut group = c.benchmark_group(method);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &n in sizes {
        for d in [5usize, 10, 20] {
            for mixed in [false, true] {
                let cfg = config(method, d, mixed);
                let ts = trials(&cfg, n);
                let kind = if mixed { "mixed" } else { "continuous" };
                let mut k = 0u64;
                group.bench_with_input(
                    BenchmarkId::new(format!("{n}"), format!("{d}d-{kind}")),
                    &ts,
                    |b, ts| {
                        b.iter(|| {
                            k += 1;
                            match suggest(&cfg, ts, run_seed(1, k)).unwrap() {
                                Ask::Suggest(s) => s,
                                Ask::Exhausted => unreachable!(),
                            }
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

fn engine(c: &mut Criterion) {
    bench(c, "bayes", &[100, 1000, 5000]);
    bench(c, "tpe", &[1000, 5000, 10000]);
}

criterion_group!(benches, engine);
criterion_main!(benches);
