//! Sweeps built on other sweeps (hyperdial additions): `parent` and `prior_runs`.
//!
//! `parent: SWEEP` records the sweep this one was refined from (`hyperdial refine` writes it);
//! it is lineage only and changes nothing about the search. `prior_runs: [SWEEP, ...]` hands
//! the finished runs of those sweeps to `bayes` and `tpe` as observations they start from,
//! as long as each run's configuration lies inside this sweep's space; other methods ignore
//! it. The parser only checks the shape (non-empty ids, no repeats); whether the sweeps exist
//! and optimize the same metric is checked by the server when the sweep is created, against
//! the locations kept here. [`inside`] says whether a run of another sweep lies inside a
//! config's space.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::diagnostic::Location;
use crate::model::{Distribution, SweepConfig};

/// A reference to another sweep by id, with where the file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRef {
    /// The sweep id as written.
    pub id: String,
    /// Where the id stands in the file.
    pub location: Location,
}

impl Serialize for SweepRef {
    /// Serialized as the bare id, so a config's JSON shows `"prior_runs": ["ab12…"]`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.id)
    }
}

/// The run's parameters restricted to this config's active parameters (conditional ones
/// whose `when` fails under the run's values are dropped), when every one of them has
/// a value this config's distribution can produce; `None` when the run lies outside the
/// space.
pub fn inside(config: &SweepConfig, params: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut kept = Map::new();
    // A conditional parameter inactive under the run's values is no part of its
    // configuration here: not required, and not kept.
    let active = crate::condition::active_flags(&config.parameters, &|i| {
        params.get(&config.parameters[i].name)
    });
    for (p, _) in config.parameters.iter().zip(active).filter(|(_, a)| *a) {
        let value = params.get(&p.name)?;
        if !produces(&p.distribution, value) {
            return None;
        }
        kept.insert(p.name.clone(), value.clone());
    }
    Some(kept)
}

/// Whether `value` is one `distribution` can produce: in its list, equal to its constant,
/// or a number within its bounds (unbounded ones take any number).
fn produces(distribution: &Distribution, value: &Value) -> bool {
    match distribution {
        Distribution::Constant { value: constant } => constant == value,
        Distribution::Categorical { .. } | Distribution::CategoricalWithProbabilities { .. } => {
            distribution.to_unit(value).is_some()
        }
        _ => {
            let Some(x) = value.as_f64().filter(|x| x.is_finite()) else {
                return false;
            };
            if distribution.is_integer_valued() && x.fract() != 0.0 {
                return false;
            }
            match distribution.value_bounds() {
                // A relative tolerance for bounds read back from decimal text.
                Some((lo, hi)) => {
                    let tol = 1e-9 * lo.abs().max(hi.abs()).max(1e-300);
                    x >= lo - tol && x <= hi + tol
                }
                None => true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(text: &str) -> SweepConfig {
        crate::parse_str(text, "sweep.yaml").unwrap().config
    }

    #[test]
    fn runs_inside_the_space_are_kept_with_only_its_parameters() {
        let c = config(
            "method: bayes\nmetric: {name: loss}\nparameters:\n  lr: {distribution: log_uniform_values, min: 0.001, max: 0.01}\n  opt: {values: [adam]}\n  layers: {min: 2, max: 4}\n  fixed: {value: 3}\n",
        );
        let run = |lr: f64, opt: &str, layers: Value| {
            json!({"lr": lr, "opt": opt, "layers": layers, "fixed": 3, "gone": 1})
                .as_object()
                .cloned()
                .unwrap()
        };
        let kept = inside(&c, &run(0.005, "adam", json!(3))).expect("inside");
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(!kept.contains_key("gone"));
        assert!(
            inside(&c, &run(0.001, "adam", json!(2))).is_some(),
            "bounds are inside"
        );
        assert!(
            inside(&c, &run(0.02, "adam", json!(3))).is_none(),
            "lr above max"
        );
        assert!(
            inside(&c, &run(0.005, "sgd", json!(3))).is_none(),
            "dropped value"
        );
        assert!(
            inside(&c, &run(0.005, "adam", json!(5))).is_none(),
            "layers above max"
        );
        assert!(
            inside(&c, &run(0.005, "adam", json!(2.5))).is_none(),
            "not an integer"
        );
        let mut missing = run(0.005, "adam", json!(3));
        missing.remove("opt");
        assert!(
            inside(&c, &missing).is_none(),
            "a parameter without a value"
        );
        let mut other_constant = run(0.005, "adam", json!(3));
        other_constant.insert("fixed".into(), json!(4));
        assert!(inside(&c, &other_constant).is_none(), "another constant");
    }
}
