//! Runs of other sweeps as a starting point (`prior_runs`, see `hyperdial_space::lineage`).
//!
//! When a sweep is created, every sweep its `parent` and `prior_runs` name must exist, and a
//! prior sweep must optimize the same metric with the same goal (its runs' values would
//! otherwise mean something else); each mistake is reported at its line and key like any
//! other config error. When `bayes` or `tpe` asks for a configuration, the finished,
//! stopped-early and failed runs of the prior sweeps whose configuration lies inside this
//! sweep's space are added to the sweep's own trials, all of them (no cap). They count for
//! the model only: not for `run_cap`, the metric target or the sweep's run numbers. A run
//! lies inside the space when it has a value for every parameter of this sweep and each value
//! is one this sweep's distribution can produce (within the bounds of a numeric range, listed
//! in a `values` list, equal to a constant); parameters the prior sweep had and this one has
//! not are ignored.

use hyperdial_search::Trial;
use hyperdial_space::{ConfigError, Diagnostic, Distribution, Method, SweepConfig};
use hyperdial_store::RunState;
use serde_json::{Map, Value};

use super::{trial, ControlError, Controller, RunReport};

impl Controller {
    /// Check the sweeps a new config refers to (`parent`, `prior_runs`): each must exist,
    /// and a prior sweep must optimize this config's metric with the same goal. Answers
    /// [`ControlError::InvalidConfig`] listing every problem with its line and key.
    pub(super) async fn check_lineage(
        &self,
        config: &SweepConfig,
        file: &str,
    ) -> Result<(), ControlError> {
        let mut diagnostics = Vec::new();
        if let Some(parent) = &config.parent {
            if self.store.sweep(&parent.id).await?.is_none() {
                diagnostics.push(
                    Diagnostic::error(
                        "parent",
                        Some(parent.location),
                        format!("no sweep `{}` on this server", parent.id),
                    )
                    .with_hint("list the sweeps with `hyperdial sweeps`"),
                );
            }
        }
        for (i, prior) in config.prior_runs.iter().enumerate() {
            let path = format!("prior_runs[{i}]");
            let Some(sweep) = self.store.sweep(&prior.id).await? else {
                diagnostics.push(
                    Diagnostic::error(
                        &path,
                        Some(prior.location),
                        format!("no sweep `{}` on this server", prior.id),
                    )
                    .with_hint("list the sweeps with `hyperdial sweeps`"),
                );
                continue;
            };
            if let Some(metric) = &config.metric {
                let same = sweep.metric_name.as_deref() == Some(metric.name.as_str())
                    && sweep.goal.as_deref() == Some(metric.goal.as_str());
                if !same {
                    let theirs = match (&sweep.metric_name, &sweep.goal) {
                        (Some(name), Some(goal)) => format!("`{name}` ({goal})"),
                        _ => "no metric".to_string(),
                    };
                    diagnostics.push(
                        Diagnostic::error(
                            &path,
                            Some(prior.location),
                            format!(
                                "sweep `{}` optimizes {theirs}, this sweep `{}` ({}): its runs' values cannot be compared",
                                prior.id,
                                metric.name,
                                metric.goal.as_str()
                            ),
                        )
                        .with_hint("name only sweeps of the same metric and goal"),
                    );
                }
            }
        }
        if diagnostics.is_empty() {
            return Ok(());
        }
        let error = ConfigError {
            file: file.to_string(),
            diagnostics,
        };
        Err(ControlError::InvalidConfig {
            rendered: error.render(),
            diagnostics: error.diagnostics,
        })
    }

    /// The runs of the config's `prior_runs` sweeps that the strategy starts from: for
    /// `bayes` and `tpe` only (empty otherwise), finished, stopped early or failed, inside the
    /// space ([`inside`]), the latest attempt of each configuration. A prior sweep deleted
    /// since is skipped.
    pub(super) async fn prior_trials(
        &self,
        config: &SweepConfig,
    ) -> Result<Vec<Trial>, ControlError> {
        if config.prior_runs.is_empty() || !matches!(config.method, Method::Bayes | Method::Tpe) {
            return Ok(Vec::new());
        }
        let name = config
            .metric
            .as_ref()
            .map(|m| m.name.as_str())
            .unwrap_or_default();
        let mut trials = Vec::new();
        for prior in &config.prior_runs {
            let rows = self.store.trials(&prior.id).await?;
            let superseded: std::collections::HashSet<&str> =
                rows.iter().filter_map(|r| r.retry_of.as_deref()).collect();
            for r in &rows {
                let counted = matches!(
                    r.state,
                    RunState::Finished | RunState::StoppedEarly | RunState::Failed
                );
                if !counted || superseded.contains(r.id.as_str()) {
                    continue;
                }
                let params = r.params.as_object().cloned().unwrap_or_default();
                let Some(params) = inside(config, &params) else {
                    continue;
                };
                trials.push(trial(
                    config,
                    &RunReport {
                        state: r.state,
                        params,
                        // Grid positions belong to the prior sweep's space.
                        grid_index: None,
                        metric: r.metric,
                        last_logged: r.summary.get(name).and_then(Value::as_f64),
                        summary: r
                            .user_summary
                            .get(name)
                            .and_then(hyperdial_store::finite_number),
                        logged: None,
                    },
                ));
            }
        }
        Ok(trials)
    }
}

/// The run's parameters restricted to this config's parameters, when every one of them has
/// a value this config's distribution can produce; `None` when the run lies outside the
/// space.
pub fn inside(config: &SweepConfig, params: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut kept = Map::new();
    for p in &config.parameters {
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
        hyperdial_space::parse_str(text, "sweep.yaml")
            .unwrap()
            .config
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
