//! Payloads of the live events of `GET /api/v1/events` (server-sent events; the event name
//! says which payload: `hello`, `sweep`, `run_created`, `run_updated`, `run_finished`,
//! `metrics`, `resync`). A `sweep` event carries a [`super::Sweep`], or after a claim found
//! the sweep over `{id, state}`, or after a notes change a [`super::Notes`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::RunState;

/// The first event of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Hello {
    /// The sweep subscribed to; `null` for all.
    pub sweep: Option<String>,
}

/// Sent instead of the events a slow subscriber missed: reload what is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resync {
    /// Events missed.
    pub missed: u64,
}

/// The compact run of `run_created`, `run_updated`, `run_finished` and `metrics` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunBrief {
    /// Id.
    pub id: String,
    /// Its sweep.
    pub sweep: Option<String>,
    /// Its number in the sweep.
    pub number: Option<i64>,
    /// Display name.
    pub name: Option<String>,
    /// Its state.
    pub state: RunState,
    /// Parameters by dotted name.
    pub params: Map<String, Value>,
    /// The sweep metric.
    pub metric: Option<f64>,
    /// Last value of every metric, overlaid by explicit summary values.
    pub summary: Map<String, Value>,
    /// Steps recorded.
    pub steps: i64,
    /// Host it runs on.
    pub host: Option<String>,
    /// Exit code of its process.
    pub exit_code: Option<i64>,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Started, ms since the epoch.
    pub started_ms: Option<i64>,
    /// Last sign of life, ms since the epoch.
    pub heartbeat_ms: Option<i64>,
    /// Ended, ms since the epoch.
    pub finished_ms: Option<i64>,
}

/// One point of a `metrics` event, with the step the server gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventPoint {
    /// Step.
    pub step: i64,
    /// Values by name (`null` for NaN).
    pub values: Map<String, Value>,
}

/// A `metrics` event: a batch was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsEvent {
    /// The run after the batch.
    pub run: RunBrief,
    /// The batch's newest points (at most 100).
    pub points: Vec<EventPoint>,
    /// Whether older points of the batch were left out.
    pub truncated: bool,
}
