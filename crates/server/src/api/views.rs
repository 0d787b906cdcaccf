//! The JSON shapes of sweeps and runs in answers (see `docs/api.md`).

use hyperdial_store::{RunRow, SweepRow};
use serde_json::{json, Map, Value};

use crate::controller::Controller;
use crate::error::ApiError;

/// A sweep with its config, run counts and best run.
pub async fn sweep(c: &Controller, row: &SweepRow) -> Result<Value, ApiError> {
    let store = c.store();
    let counts = store.sweep_counts(&row.id).await?;
    let maximize = row.goal.as_deref() == Some("maximize");
    let best = store.best_run(&row.id, maximize).await?;
    let compute_ms = store.compute_ms(&row.id).await?;
    let (retries, retryable) = store.retry_counts(&row.id).await?;
    let config = c
        .config(row)
        .ok()
        .map(|cfg| serde_json::to_value(&*cfg).unwrap_or(Value::Null));
    let mut all_counts = Map::new();
    for state in hyperdial_store::RunState::ALL {
        all_counts.insert(
            state.as_str().into(),
            json!(counts.get(&state).copied().unwrap_or(0)),
        );
    }
    Ok(json!({
        "id": row.id,
        "project": row.project,
        "name": row.name,
        "state": row.state,
        "method": row.method,
        "config": config,
        "source": row.source,
        "file": row.source_file,
        "seed": row.seed,
        "created_ms": row.created_ms,
        "updated_ms": row.updated_ms,
        "metric": row.metric_name.as_ref().map(|n| json!({"name": n, "goal": row.goal})),
        "counts": all_counts,
        "total_runs": counts.values().sum::<i64>(),
        "retries": retries,
        "retryable": retryable,
        "retries_only": row.retries_only,
        "compute_ms": compute_ms,
        "best": best.map(|b| json!({"run": b.id, "number": b.number, "value": b.metric})),
        "notes": row.notes,
    }))
}

/// A run.
pub fn run(r: &RunRow) -> Value {
    json!({
        "id": r.id,
        "sweep": r.sweep_id,
        "project": r.project,
        "number": r.number,
        "name": r.name,
        "state": r.state,
        "config": r.config,
        "params": r.params,
        "suggestion": r.suggestion,
        "agent": r.agent_id,
        "host": r.host,
        "argv": r.argv,
        "exit_code": r.exit_code,
        "error": r.error,
        "metric": r.metric,
        "summary": r.summary,
        "steps": r.next_step,
        "created_ms": r.created_ms,
        "started_ms": r.started_ms,
        "heartbeat_ms": r.heartbeat_ms,
        "finished_ms": r.finished_ms,
        "git": {"commit": r.git_commit, "dirty": r.git_dirty},
        "stop_requested": r.stop_requested,
        "stop_reason": r.stop_reason,
        "stop_info": r.stop_info,
        "retry_of": r.retry_of,
        "attempt": r.attempt,
        "delivery": r.delivery.as_ref().map(|d| json!({
            "missing": d.outstanding(),
            "reported_missing": d.missing,
            "recovered": d.recovered,
            "files": d.files,
        })),
    })
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
