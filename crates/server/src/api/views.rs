//! The answers' sweeps and runs, built from store rows as the wire types of
//! `hyperdial_wire::api` (see `docs/api.md`).

use hyperdial_store::{RunRow, SweepRow};
use hyperdial_wire::api::{
    BestRef, BudgetStatus, DeliveryRecord, EndReason, Goal, MetricRef, Run, RunBrief, RunCounts,
    RunGit, Sweep,
};
use serde_json::{Map, Value};

use crate::controller::Controller;
use crate::error::ApiError;

/// A stored JSON object (params): the object, or empty for anything else, which the store
/// never writes there.
pub fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A sweep's goal as stored (`maximize`, else minimize).
pub fn goal(row: &SweepRow) -> Goal {
    Goal::from_word(row.goal.as_deref())
}

/// The sweep metric of a row, if its config names one.
pub fn metric_ref(row: &SweepRow) -> Option<MetricRef> {
    row.metric_name.as_ref().map(|name| MetricRef {
        name: name.clone(),
        goal: row.goal.as_ref().map(|g| Goal::from_word(Some(g))),
    })
}

/// A sweep with its config, run counts and best run (none for a multi-objective sweep).
pub async fn sweep(c: &Controller, row: &SweepRow) -> Result<Sweep, ApiError> {
    let store = c.store();
    let stored_counts = store.sweep_counts(&row.id).await?;
    // A multi-objective sweep has no single best run: its front is `GET /sweeps/{id}/front`.
    let multi = c.config(row).is_ok_and(|cfg| cfg.is_multi_objective());
    let best = if multi {
        None
    } else {
        store.best_run(&row.id, goal(row).maximize()).await?
    };
    let compute_ms = store.compute_ms(&row.id).await?;
    let (retries, retryable) = store.retry_counts(&row.id).await?;
    let parsed = c.config(row).ok();
    let expected_runs = parsed.as_ref().and_then(|cfg| cfg.expected_runs());
    let config = parsed.map(|cfg| serde_json::to_value(&*cfg).unwrap_or(Value::Null));
    let budget = c.budget_progress(row).await?.map(|p| BudgetStatus {
        wall_time_left_s: p.wall_time_left_s,
        run_hours_left: p.run_hours_left,
        runs_since_improvement: p.runs_since_improvement,
        since_improvement_s: p.since_improvement_s,
        estimated_end_ms: p.estimated_end_ms,
        first_limit: p.first_limit.and_then(|r| EndReason::from_word(r.as_str())),
        min_delta: p.min_delta,
    });
    let mut counts = RunCounts::default();
    for (state, n) in &stored_counts {
        *counts.get_mut(*state) += n;
    }
    Ok(Sweep {
        id: row.id.clone(),
        project: row.project.clone(),
        name: row.name.clone(),
        state: row.state,
        method: row.method.clone(),
        config,
        source: row.source.clone(),
        file: row.source_file.clone(),
        seed: row.seed,
        created_ms: row.created_ms,
        updated_ms: row.updated_ms,
        metric: metric_ref(row),
        counts,
        total_runs: counts.total(),
        retries,
        retryable,
        retries_only: row.retries_only,
        compute_ms,
        best: best.map(|b| BestRef {
            run: b.id,
            number: b.number,
            value: b.metric,
        }),
        notes: row.notes.clone(),
        end_reason: row.end_reason.as_deref().and_then(EndReason::from_word),
        budget,
        expected_runs,
    })
}

/// A run (without its history).
pub fn run(r: &RunRow) -> Run {
    Run {
        id: r.id.clone(),
        sweep: r.sweep_id.clone(),
        project: r.project.clone(),
        number: r.number,
        name: r.name.clone(),
        state: r.state,
        config: r.config.clone(),
        params: object(&r.params),
        suggestion: r.suggestion.clone(),
        agent: r.agent_id.clone(),
        host: r.host.clone(),
        argv: serde_json::from_value(r.argv.clone()).unwrap_or(None),
        exit_code: r.exit_code,
        error: r.error.clone(),
        end_cause: r.end_cause,
        metric: r.metric,
        summary: r.summary.clone(),
        steps: r.next_step,
        created_ms: r.created_ms,
        started_ms: r.started_ms,
        heartbeat_ms: r.heartbeat_ms,
        finished_ms: r.finished_ms,
        git: RunGit {
            commit: r.git_commit.clone(),
            dirty: r.git_dirty,
        },
        stop_requested: r.stop_requested,
        stop_reason: r.stop_reason.clone(),
        stop_info: r.stop_info.clone(),
        retry_of: r.retry_of.clone(),
        attempt: r.attempt,
        delivery: r.delivery.as_ref().map(|d| DeliveryRecord {
            missing: d.outstanding(),
            reported_missing: d.missing,
            recovered: d.recovered,
            files: d.files.clone(),
        }),
        repeat_of: r.repeat_of.clone(),
        seed: r.seed,
        history: None,
    }
}

/// The compact run that events carry.
pub fn run_brief(r: &RunRow) -> RunBrief {
    RunBrief {
        id: r.id.clone(),
        sweep: r.sweep_id.clone(),
        number: r.number,
        name: r.name.clone(),
        state: r.state,
        params: object(&r.params),
        metric: r.metric,
        summary: r.summary.clone(),
        steps: r.next_step,
        host: r.host.clone(),
        exit_code: r.exit_code,
        created_ms: r.created_ms,
        started_ms: r.started_ms,
        heartbeat_ms: r.heartbeat_ms,
        finished_ms: r.finished_ms,
    }
}

/// Flatten a nested config into dotted names.
pub fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.to_string(), value.clone());
        }
        _ => {}
    }
}
