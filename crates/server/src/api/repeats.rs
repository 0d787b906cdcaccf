//! Repeats and seed noise: `POST /api/v1/sweeps/{id}/runs` queues runs with given
//! parameters and seeds ([`crate::controller::Controller::queue_runs`]); `GET
//! /api/v1/sweeps/{id}/noise` answers the sweep's seed-noise report ([`crate::noise`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use hyperdial_wire::api::{QueueRunsRequest, QueuedRuns};

use super::{views, ApiResult};
use crate::error::ApiError;
use crate::AppState;

/// `POST /api/v1/sweeps/{id}/runs` (routed through the sweep actions).
pub(crate) async fn queue(s: &AppState, id: &str, body: &Bytes) -> ApiResult {
    let c = &s.controller;
    let body: QueueRunsRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    let queued = c.queue_runs(id, &body.runs).await?;
    let mut runs = Vec::with_capacity(queued.len());
    for r in &queued {
        c.events
            .publish("run_created", Some(id), &views::run_brief(r));
        runs.push(views::run(r));
    }
    let row = c.sweep(id).await?;
    let sweep = views::sweep(c, &row).await?;
    c.events.publish("sweep", Some(id), &sweep);
    Ok(Json(QueuedRuns { runs, sweep }).into_response())
}

/// `GET /api/v1/sweeps/{id}/noise`.
pub(crate) async fn noise(
    State(s): State<AppState>,
    Path(id): Path<String>,
    _: super::Params<super::query::NoQuery>,
) -> ApiResult {
    let sweep = s.controller.sweep(&id).await?;
    // The runs are read a page at a time and only what the report needs is kept of them.
    let input = crate::noise::read_input(s.controller.store(), &id).await?;
    let report = crate::noise::report_of(
        &id,
        sweep.metric_name.as_deref(),
        views::goal(&sweep).maximize(),
        &input,
    );
    Ok(Json(report).into_response())
}
