//! `GET /api/v1/sweeps/{id}/front`: a sweep's runs in non-dominated layers, the first of
//! which is its Pareto front ([`hyperdial_wire::api::ParetoFront`]).
//!
//! Which runs: those that ended `finished` or `stopped_early` with a finite value of every
//! objective. A run's value of an objective ([`crate::controller::objective_values`]) is, in
//! a multi-objective sweep, its explicit summary value, else its last logged value; in a
//! single-objective sweep, the run's metric (the best value of its history and summary, as
//! `GET /sweeps/{id}/best` reads it), so the front is the best run and any run tied with it.
//! Layers come from [`hyperdial_search::multi::non_dominated_ranks`]: `O(n log n)` for `n`
//! runs of two objectives, `O(m·n²)` for `m ≥ 3` (well under a second at ten thousand
//! runs).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use hyperdial_search::multi;
use hyperdial_space::SweepConfig;
use hyperdial_store::TrialRow;
use hyperdial_wire::api::{FrontRun, Goal, ObjectiveSpec, ParetoFront};

use super::ApiResult;
use crate::controller::objective_values;
use crate::AppState;

pub(super) async fn front(
    State(s): State<AppState>,
    Path(id): Path<String>,
    _: super::Params<super::query::NoQuery>,
) -> ApiResult {
    let c = &s.controller;
    let sweep = c.sweep(&id).await?;
    let config = c.config(&sweep)?;
    let rows = c.store().trials(&sweep.id).await?;
    Ok(Json(pareto_front(&config, &rows)).into_response())
}

/// The front of a sweep with config `config` and runs `rows` (see the module docs).
pub fn pareto_front(config: &SweepConfig, rows: &[TrialRow]) -> ParetoFront {
    let objectives = config.objectives();
    let goals: Vec<hyperdial_space::Goal> = objectives.iter().map(|m| m.goal).collect();
    let mut runs: Vec<(String, u64, Vec<f64>)> = Vec::new();
    for row in rows {
        if !row.state.is_result() {
            continue;
        }
        let Some(number) = row.number.and_then(|n| u64::try_from(n).ok()) else {
            continue;
        };
        let values: Option<Vec<f64>> = if config.is_multi_objective() {
            objective_values(config, &row.summary, &row.user_summary)
                .into_iter()
                .collect()
        } else {
            row.metric.filter(|v| v.is_finite()).map(|v| vec![v])
        };
        if let Some(values) = values.filter(|v| !v.is_empty() && v.len() == goals.len()) {
            runs.push((row.id.clone(), number, values));
        }
    }
    let oriented: Vec<Vec<f64>> = runs.iter().map(|r| multi::orient(&r.2, &goals)).collect();
    let ranks = multi::non_dominated_ranks(&oriented);
    let mut out: Vec<FrontRun> = runs
        .into_iter()
        .zip(ranks)
        .map(|((run_id, number, values), rank)| FrontRun {
            run_id,
            number,
            values,
            rank,
        })
        .collect();
    out.sort_by(|a, b| (a.rank, a.number, &a.run_id).cmp(&(b.rank, b.number, &b.run_id)));
    ParetoFront {
        objectives: objectives
            .into_iter()
            .map(|m| ObjectiveSpec {
                name: m.name,
                goal: match m.goal {
                    hyperdial_space::Goal::Maximize => Goal::Maximize,
                    hyperdial_space::Goal::Minimize => Goal::Minimize,
                },
            })
            .collect(),
        runs: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperdial_store::RunState;
    use serde_json::json;

    fn row(
        number: i64,
        state: RunState,
        summary: serde_json::Value,
        metric: Option<f64>,
    ) -> TrialRow {
        TrialRow {
            id: format!("r{number}"),
            number: Some(number),
            created_ms: number,
            retry_of: None,
            attempt: 1,
            repeat_of: None,
            params: json!({}),
            grid_index: None,
            metric,
            state,
            summary,
            user_summary: json!({}),
            error: None,
            end_cause: None,
            started_ms: None,
            finished_ms: None,
            heartbeat_ms: None,
        }
    }

    #[test]
    fn layers_of_ended_runs_with_every_objective() {
        let config = hyperdial_space::parse_str(
            "method: random\nmetrics: [{name: loss}, {name: acc, goal: maximize}]\nparameters: {x: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        let rows = vec![
            row(
                1,
                RunState::Finished,
                json!({"loss": 1.0, "acc": 0.9}),
                None,
            ),
            row(
                2,
                RunState::Finished,
                json!({"loss": 0.5, "acc": 0.8}),
                None,
            ),
            row(
                3,
                RunState::StoppedEarly,
                json!({"loss": 1.0, "acc": 0.7}),
                None,
            ),
            row(4, RunState::Failed, json!({"loss": 0.1, "acc": 0.99}), None),
            row(5, RunState::Finished, json!({"loss": 0.2}), None),
            row(
                6,
                RunState::Running,
                json!({"loss": 0.1, "acc": 0.99}),
                None,
            ),
        ];
        let f = pareto_front(&config, &rows);
        assert_eq!(f.objectives[1].goal, Goal::Maximize);
        let got: Vec<(u64, u32)> = f.runs.iter().map(|r| (r.number, r.rank)).collect();
        assert_eq!(got, vec![(1, 0), (2, 0), (3, 1)]);
        assert_eq!(f.runs[0].values, vec![1.0, 0.9]);
    }

    #[test]
    fn a_single_objective_front_is_the_best_run() {
        let config = hyperdial_space::parse_str(
            "method: random\nmetric: {name: acc, goal: maximize}\nparameters: {x: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        let rows = vec![
            row(1, RunState::Finished, json!({}), Some(0.5)),
            row(2, RunState::Finished, json!({}), Some(0.9)),
            row(3, RunState::Finished, json!({}), Some(0.9)),
            row(4, RunState::Finished, json!({}), None),
        ];
        let f = pareto_front(&config, &rows);
        let front: Vec<u64> = f
            .runs
            .iter()
            .filter(|r| r.rank == 0)
            .map(|r| r.number)
            .collect();
        assert_eq!(front, vec![2, 3]);
        assert_eq!(f.runs.len(), 3);
    }
}
