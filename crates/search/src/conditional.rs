//! Conditional parameters (`when`): how each strategy treats a parameter that is inactive.
//!
//! Which parameters a configuration has is decided by [`hyperdial_space::condition`]; an
//! inactive parameter is left out of the suggestion, so it never reaches the run's config,
//! arguments or command. Per strategy:
//!
//! - **grid** and **random without replacement** enumerate only valid configurations
//!   ([`hyperdial_space::grid`]): the grid's size is the true number of configurations, and
//!   no two points differ only in inactive parameters.
//! - **random** draws every parameter and leaves out those whose conditions do not hold, so
//!   each active parameter has its own distribution, whatever the others drew.
//! - **sobol** decodes each point of the sequence the same way ([`crate::encode::Space`]):
//!   the coordinates of inactive parameters are unused.
//! - **tpe**: the *group decomposition* of Optuna's `TPESampler(multivariate=True,
//!   group=True)`, the mode Optuna recommends for define-by-run spaces. Parameters with the
//!   same conditions are active together and form a group; unconditional parameters form
//!   one group. The runs are split into the good and the bad group over all observations
//!   (as without conditions), then each parameter group gets its own pair of multivariate
//!   Parzen estimators `l_G`, `g_G` fitted on the runs of that split in which the group
//!   was active (a group no good run had active is searched by its prior alone). So a
//!   density is never fitted to a value that did not exist, and no kernel of an inactive
//!   coordinate is spent. Candidates are full configurations drawn group by group from the
//!   `l_G`; a candidate's score is `Σ_G (log l_G − log g_G)` over the groups *active in that
//!   candidate* only. The groups are fixed by the sweep file (parameters with the same
//!   `when`), where Optuna infers them from the parameter sets of past trials; and Optuna
//!   takes the best draw of each group separately, whereas here whole configurations are
//!   compared, so the finite-space rule (no configuration twice, [`crate::finite`]) applies
//!   to the configuration that runs.
//! - **bayes**: the Gaussian process sees an inactive coordinate at a fixed imputed value
//!   ([`crate::encode`]), so it neither separates nor correlates configurations in which
//!   the parameter is inactive; the gradient refinement of a candidate moves only the
//!   coordinates active in it.
//! - **finite spaces** ([`crate::finite`]): configurations are counted and compared over
//!   their active parameters, so a sweep ends when every valid configuration has run.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::encode::{Point, Space};
use crate::finite::Taken;
use crate::tpe::{age_weights, Parzen, CANDIDATES, DRAWS_PER_CANDIDATE};
use crate::{finite_untried, Ask, History, Suggestion, SuggestionInfo};

/// The dimensions of `space` grouped by their parameter's conditions, in dimension order
/// (the unconditional group first when there is one).
pub fn groups(space: &Space<'_>, config: &hyperdial_space::SweepConfig) -> Vec<Vec<usize>> {
    let mut by_when: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut first_seen: Vec<String> = Vec::new();
    for (k, dim) in space.dims.iter().enumerate() {
        let p = &config.parameters[dim.param()];
        let mut conditions: Vec<(String, Vec<String>)> = p
            .when
            .iter()
            .map(|c| {
                let mut v: Vec<String> = c
                    .values
                    .iter()
                    .map(hyperdial_space::grid::grid_key)
                    .collect();
                v.sort();
                v.dedup();
                (c.parent.clone(), v)
            })
            .collect();
        conditions.sort();
        let key = serde_json::to_string(&conditions).unwrap_or_default();
        if !by_when.contains_key(&key) {
            first_seen.push(key.clone());
        }
        by_when.entry(key).or_default().push(k);
    }
    first_seen
        .into_iter()
        .filter_map(|k| by_when.remove(&k))
        .collect()
}

/// One group's estimators.
struct Group<'a> {
    dims: Vec<usize>,
    view: Space<'a>,
    l: Parzen,
    g: Parzen,
    below: usize,
    above: usize,
}

impl Group<'_> {
    fn project(&self, x: &[f64]) -> Option<Point> {
        let p: Point = self.dims.iter().map(|&k| x[k]).collect();
        (!p.iter().any(|v| v.is_nan())).then_some(p)
    }

    /// `log l_G − log g_G` at `x`, or 0 when the group is inactive there.
    fn score(&self, x: &[f64]) -> f64 {
        self.project(x)
            .map_or(0.0, |p| self.l.log_pdf(&p) - self.g.log_pdf(&p))
    }
}

/// The TPE suggestion in a conditional space, once past the initial design (see the module
/// docs); `history` has at least two observations.
pub(crate) fn tpe(
    space: &Space<'_>,
    config: &hyperdial_space::SweepConfig,
    history: &History,
    taken: Option<&Taken>,
    seed: u64,
) -> Ask {
    let n = history.values.len();
    let (below, mut above) = crate::tpe::split(history);
    above.extend(history.pending.iter());

    let groups: Vec<Group<'_>> = groups(space, config)
        .into_iter()
        .map(|dims| {
            let view = space.restricted(&dims);
            let take = |points: &[&Point]| -> Vec<Point> {
                points
                    .iter()
                    .filter_map(|p| {
                        let q: Point = dims.iter().map(|&k| p[k]).collect();
                        (!q.iter().any(|v| v.is_nan())).then_some(q)
                    })
                    .collect()
            };
            let (b, a) = (take(&below), take(&above));
            let b_refs: Vec<&Point> = b.iter().collect();
            let a_refs: Vec<&Point> = a.iter().collect();
            let l = Parzen::new(&view, &b_refs, &vec![1.0; b.len()]);
            let g = Parzen::new(&view, &a_refs, &age_weights(a.len()));
            Group {
                dims,
                view,
                l,
                g,
                below: b.len(),
                above: a.len(),
            }
        })
        .collect();

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draw = |rng: &mut ChaCha8Rng| -> Point {
        let mut x = vec![0.0; space.len()];
        for g in &groups {
            let part = g.l.sample(&g.view, rng);
            for (&k, v) in g.dims.iter().zip(part) {
                x[k] = v;
            }
        }
        space.snap(&mut x);
        x
    };
    let mut cands: Vec<Point> = Vec::with_capacity(CANDIDATES);
    match taken {
        None => cands.extend((0..CANDIDATES).map(|_| draw(&mut rng))),
        Some(t) => {
            for _ in 0..CANDIDATES * DRAWS_PER_CANDIDATE {
                let x = draw(&mut rng);
                if !t.contains(space, &x) {
                    cands.push(x);
                    if cands.len() == CANDIDATES {
                        break;
                    }
                }
            }
            if cands.is_empty() {
                match t.untried(space) {
                    Some(all) => cands = all,
                    None => cands.extend(t.random_untried(space, &mut rng)),
                }
            }
        }
    }
    let best = cands
        .into_iter()
        .map(|x| (groups.iter().map(|g| g.score(&x)).sum::<f64>(), x))
        .fold(None::<(f64, Point)>, |best, (s, x)| match best {
            Some((b, _)) if b >= s => best,
            _ => Some((s, x)),
        });
    let Some((score, x)) = best else {
        // Unreachable: a space with an untried configuration yields a candidate.
        return Ask::Exhausted;
    };
    let active_groups = groups.iter().filter(|g| g.project(&x).is_some()).count();
    Ask::Suggest(Suggestion {
        params: space.decode(&x),
        info: SuggestionInfo {
            strategy: "tpe".into(),
            seed,
            grid_index: None,
            diagnostics: Some(json!({
                "phase": "model",
                "observations": n,
                "below": below.len(),
                "above": above.len(),
                "pending": history.pending.len(),
                "score": score,
                "groups": groups.len(),
                "active_groups": active_groups,
                "group_sizes": groups.iter().map(|g| json!({"dims": g.dims.len(), "below": g.below, "above": g.above})).collect::<Vec<_>>(),
                "untried": taken.map(finite_untried),
            })),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::{json, Value};

    use super::*;
    use crate::{suggest_in_sweep, Trial};
    use hyperdial_space::SweepConfig;

    fn config(text: &str) -> SweepConfig {
        hyperdial_space::parse_str(text, "t.yaml").unwrap().config
    }

    /// An optimizer choice with per-optimizer parameters, a layer count with per-layer
    /// widths, and a constant that exists only for SGD.
    const SPACE: &str = "metric: {name: loss}
parameters:
  opt: {values: [sgd, adam]}
  momentum: {min: 0.0, max: 0.99, when: {opt: sgd}}
  nesterov: {value: true, when: {opt: sgd}}
  lr: {distribution: log_uniform_values, min: 1e-4, max: 1.0}
  beta2: {values: [0.9, 0.99, 0.999], when: {opt: adam}}
  layers: {values: [1, 2, 3]}
  width2: {distribution: int_uniform, min: 8, max: 64, when: {layers: [2, 3]}}
  width3: {distribution: int_uniform, min: 8, max: 64, when: {layers: 3}}
";

    /// The names a configuration must hold, from the values of its parents.
    fn expected(params: &serde_json::Map<String, Value>) -> HashSet<String> {
        let mut out: HashSet<String> = ["opt", "lr", "layers"].map(String::from).into();
        let sgd = params["opt"] == "sgd";
        let layers = params["layers"].as_i64().unwrap();
        for (name, on) in [
            ("momentum", sgd),
            ("nesterov", sgd),
            ("beta2", !sgd),
            ("width2", layers >= 2),
            ("width3", layers == 3),
        ] {
            if on {
                out.insert(name.into());
            }
        }
        out
    }

    /// A conditional objective: adam with beta2 0.99 and SGD with momentum 0.9 are good,
    /// widths matter only where they exist.
    fn loss(p: &serde_json::Map<String, Value>) -> f64 {
        let lr = p["lr"].as_f64().unwrap().log10();
        let mut l = (lr + 2.0).powi(2);
        if p["opt"] == "sgd" {
            l += 2.0 * (p["momentum"].as_f64().unwrap() - 0.9).powi(2) + 0.1;
        } else {
            l += (p["beta2"].as_f64().unwrap() - 0.99).abs();
        }
        let layers = p["layers"].as_i64().unwrap();
        if layers >= 2 {
            l += ((p["width2"].as_i64().unwrap() - 32) as f64 / 32.0).powi(2);
        }
        if layers == 3 {
            l += ((p["width3"].as_i64().unwrap() - 48) as f64 / 32.0).powi(2) - 0.2;
        }
        l
    }

    fn run(method: &str, seed: u64, budget: usize) -> Vec<Trial> {
        let c = config(&format!("method: {method}\n{SPACE}"));
        let mut trials: Vec<Trial> = Vec::new();
        for n in 0..budget {
            let Ask::Suggest(s) = suggest_in_sweep(&c, &trials, seed, n as u64 + 1).unwrap() else {
                panic!("{method}: exhausted")
            };
            let params: serde_json::Map<String, Value> = s.params.iter().cloned().collect();
            let names: HashSet<String> = params.keys().cloned().collect();
            assert_eq!(names, expected(&params), "{method} #{n}: {params:?}");
            for (name, v) in &params {
                let d = &c.parameter(name).unwrap().distribution;
                assert!(
                    d.to_unit(v).is_some() || d.grid_values().is_some_and(|vs| vs.contains(v)),
                    "{method}: {name} = {v}"
                );
            }
            let value = loss(&params);
            trials.push(Trial {
                params,
                value: Some(value),
                ..Default::default()
            });
        }
        trials
    }

    #[test]
    fn every_strategy_suggests_exactly_the_active_parameters() {
        for method in ["random", "sobol", "tpe", "bayes"] {
            let trials = run(method, 7, if method == "bayes" { 30 } else { 60 });
            // Both branches are explored.
            let sgd = trials.iter().filter(|t| t.params["opt"] == "sgd").count();
            assert!(sgd > 0 && sgd < trials.len(), "{method}: {sgd}");
        }
    }

    #[test]
    fn conditional_suggestions_are_reproducible() {
        for method in ["random", "tpe", "bayes"] {
            let a: Vec<_> = run(method, 3, 14).into_iter().map(|t| t.params).collect();
            let b: Vec<_> = run(method, 3, 14).into_iter().map(|t| t.params).collect();
            assert_eq!(a, b, "{method}");
        }
    }

    #[test]
    fn tpe_beats_random_on_a_conditional_objective() {
        let best = |method: &str| -> f64 {
            (0..6)
                .map(|seed| {
                    run(method, seed, 60)
                        .iter()
                        .map(|t| t.value.unwrap())
                        .fold(f64::INFINITY, f64::min)
                })
                .sum::<f64>()
                / 6.0
        };
        let (tpe, random) = (best("tpe"), best("random"));
        assert!(tpe < random, "tpe {tpe} random {random}");
    }

    #[test]
    fn groups_follow_the_conditions() {
        let c = config(&format!("method: tpe\n{SPACE}"));
        let space = Space::new(&c);
        let names = |g: &Vec<usize>| -> Vec<String> {
            g.iter()
                .map(|&k| c.parameters[space.dims[k].param()].name.clone())
                .collect()
        };
        let groups: Vec<Vec<String>> = groups(&space, &c).iter().map(names).collect();
        assert_eq!(
            groups,
            vec![
                vec!["opt", "lr", "layers"],
                vec!["momentum"],
                vec!["beta2"],
                vec!["width2"],
                vec!["width3"]
            ]
        );
    }

    #[test]
    fn encoding_marks_inactive_parameters_and_requires_active_ones() {
        let c = config(&format!("method: tpe\n{SPACE}"));
        let space = Space::new(&c);
        let adam = json!({"opt": "adam", "lr": 0.01, "beta2": 0.99, "layers": 1});
        let p = space.encode(adam.as_object().unwrap()).unwrap();
        let nan: Vec<bool> = p.iter().map(|x| x.is_nan()).collect();
        // Dimensions: opt, momentum, lr, beta2, layers, width2, width3 (nesterov is constant).
        assert_eq!(nan, [false, true, false, false, false, true, true]);
        assert_eq!(
            space
                .decode(&p)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            ["opt", "lr", "beta2", "layers"]
        );
        // An active parameter missing: not a point of this space.
        let missing = json!({"opt": "adam", "lr": 0.01, "layers": 1});
        assert!(space.encode(missing.as_object().unwrap()).is_none());
        // The features never hold NaN, and inactive coordinates look the same whatever the
        // point held there before snapping.
        let mut a = p.clone();
        a[1] = 0.1;
        space.snap(&mut a);
        let (mut fa, mut fp) = (Vec::new(), Vec::new());
        space.features(&a, &mut fa);
        space.features(&p, &mut fp);
        assert_eq!(fa, fp);
        assert!(fa.iter().all(|x| x.is_finite()));
        assert_eq!(space.key(&a), space.key(&p));
    }

    #[test]
    fn finite_conditional_spaces_run_each_valid_configuration_once() {
        let text = "metric: {name: loss}
parameters:
  opt: {values: [sgd, adam]}
  momentum: {values: [0.0, 0.5, 0.9], when: {opt: sgd}}
  beta2: {values: [0.99, 0.999], when: {opt: adam}}
  layers: {values: [1, 2]}
  width: {values: [16, 32], when: {layers: 2}}
";
        // (3 momenta + 2 betas) × (1 + 2 widths) = 15, not 2 × 3 × 2 × 2 × 2 = 48.
        for method in ["grid", "tpe", "bayes"] {
            let c = config(&format!("method: {method}\n{text}"));
            assert_eq!(Space::new(&c).size(), Some(15));
            let mut trials: Vec<Trial> = Vec::new();
            let mut seen = HashSet::new();
            for n in 0..20 {
                match suggest_in_sweep(&c, &trials, 5, n + 1).unwrap() {
                    Ask::Exhausted => break,
                    Ask::Suggest(s) => {
                        let params: serde_json::Map<String, Value> =
                            s.params.iter().cloned().collect();
                        assert!(
                            seen.insert(serde_json::to_string(&params).unwrap()),
                            "{method}: repeated {params:?}"
                        );
                        trials.push(Trial {
                            params,
                            grid_index: s.info.grid_index,
                            value: Some(n as f64),
                            ..Default::default()
                        });
                    }
                }
            }
            assert_eq!(seen.len(), 15, "{method}");
        }
    }
}
