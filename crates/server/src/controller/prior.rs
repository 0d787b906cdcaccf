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
use hyperdial_space::lineage::inside;
use hyperdial_space::{ConfigError, Diagnostic, Method, SweepConfig};
use hyperdial_store::RunState;
use serde_json::Value;

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
        Err(ControlError::invalid_config(error))
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
                let mut t = trial(
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
                );
                // A multi-objective sweep learns from a prior run only when it reported every
                // objective (nothing is imputed for another sweep's runs).
                let objectives = super::objective_values(config, &r.summary, &r.user_summary);
                if objectives.iter().all(Option::is_some) {
                    t.objectives = objectives;
                }
                trials.push(t);
            }
        }
        Ok(trials)
    }
}
