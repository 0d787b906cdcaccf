//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, built from the route table so
//! it cannot list a route the server lacks (a test checks every listed route answers). The
//! request and answer schemas are those of the wire types (`hyperdial_wire::api`, derived by
//! `schemars`); every route names its request type, if it takes a body, and its answer's. The
//! committed `docs/openapi.json` is this document (the `generated` test compares them).

use serde_json::{json, Map, Value};

/// What a route answers on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// JSON of the named wire type.
    Json(&'static str),
    /// Text of this media type.
    Text(&'static str),
    /// Any JSON (this document).
    Document,
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method, lowercase.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// The wire type of its JSON request body, if it takes one.
    pub request: Option<&'static str>,
    /// Its success status.
    pub status: &'static str,
    /// What it answers with that status.
    pub answer: Answer,
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    status: &'static str,
    answer: Answer,
) -> Route {
    Route {
        method,
        path,
        summary,
        request,
        status,
        answer,
    }
}

use Answer::{Document, Json, Text};

/// Every route.
pub const ROUTES: &[Route] = &[
    route("get", "/api/v1/openapi.json", "This document", None, "200", Document),
    route(
        "post",
        "/api/v1/sweeps",
        "Create a sweep from a config (201), or resume an unfinished one (200)",
        Some("CreateSweep"),
        "201",
        Json("CreatedSweep"),
    ),
    route("get", "/api/v1/sweeps", "List sweeps, newest first", None, "200", Json("SweepList")),
    route(
        "get",
        "/api/v1/sweeps/{id}",
        "One sweep with run counts and best run",
        None,
        "200",
        Json("Sweep"),
    ),
    route(
        "post",
        "/api/v1/sweeps/{id}/pause",
        "Stop handing out runs; running runs go on",
        None,
        "200",
        Json("Sweep"),
    ),
    route("post", "/api/v1/sweeps/{id}/resume", "Hand out runs again", None, "200", Json("Sweep")),
    route(
        "post",
        "/api/v1/sweeps/{id}/stop",
        "Finish the sweep; running runs finish",
        None,
        "200",
        Json("Sweep"),
    ),
    route(
        "post",
        "/api/v1/sweeps/{id}/cancel",
        "Cancel the sweep; running runs are stopped",
        None,
        "200",
        Json("Sweep"),
    ),
    route(
        "post",
        "/api/v1/sweeps/{id}/retry",
        "Queue runs again with the same configuration (a finished sweep runs its retries)",
        Some("RetryRequest"),
        "200",
        Json("RetryAnswer"),
    ),
    route(
        "post",
        "/api/v1/sweeps/{id}/runs",
        "Queue runs with given params and seeds, repeating runs of the sweep (a finished sweep runs them); at most 1,000",
        Some("QueueRunsRequest"),
        "200",
        Json("QueuedRuns"),
    ),
    route(
        "get",
        "/api/v1/sweeps/{id}/noise",
        "Seed noise: per repeated configuration mean, spread and count; pooled seed noise against the spread across configurations; best against runner-up (Welch's t-test)",
        None,
        "200",
        Json("NoiseReport"),
    ),
    route(
        "post",
        "/api/v1/sweeps/{id}/claim",
        "Claim the next run (200), wait (204) or the sweep is over (410, SweepOver)",
        Some("ClaimRequest"),
        "200",
        Json("RunAnswer"),
    ),
    route(
        "get",
        "/api/v1/sweeps/{id}/best",
        "The run with the best metric",
        None,
        "200",
        Json("RunAnswer"),
    ),
    route(
        "get",
        "/api/v1/sweeps/{id}/estimate",
        "The model's estimate of the best configuration among the runs with a result (under noise, not a lucky draw); 404 with fewer than 5 results",
        None,
        "200",
        Json("EstimateAnswer"),
    ),
    route(
        "get",
        "/api/v1/sweeps/{id}/front",
        "The Pareto front: ended runs with every objective, in non-dominated layers (rank 0 is the front)",
        None,
        "200",
        Json("ParetoFront"),
    ),
    route(
        "get",
        "/api/v1/sweeps/{id}/export",
        "Every run as CSV or JSON (?format=csv|json; the JSON is an Export)",
        None,
        "200",
        Json("Export"),
    ),
    route(
        "get",
        "/api/v1/sweeps/{id}/points",
        "Every run's params, metric and times, column by column (for charts)",
        None,
        "200",
        Json("SweepPoints"),
    ),
    route(
        "get",
        "/api/v1/sweeps/{id}/importance",
        "Parameter importance (random forest, main effects, uncertainty) and correlation with the metric, from the runs in ?state=STATES (default finished)",
        None,
        "200",
        Json("Importance"),
    ),
    route(
        "put",
        "/api/v1/sweeps/{id}/notes",
        "Replace the sweep's markdown notes (at most 64 KiB)",
        Some("NotesRequest"),
        "200",
        Json("Notes"),
    ),
    route(
        "get",
        "/api/v1/events",
        "Live events as server-sent events (?sweep=ID); payloads: Hello, Sweep, RunBrief, MetricsEvent, Resync",
        None,
        "200",
        Text("text/event-stream"),
    ),
    route(
        "post",
        "/api/v1/agents",
        "Register an agent",
        Some("RegisterAgent"),
        "201",
        Json("AgentRegistered"),
    ),
    route(
        "post",
        "/api/v1/runs",
        "Create a run outside any sweep",
        Some("CreateRun"),
        "201",
        Json("Run"),
    ),
    route(
        "get",
        "/api/v1/runs",
        "List runs: ?sweep, project, state (comma list), sort, order, range=FIELD:LO:HI, in=FIELD:A|B, limit, offset",
        None,
        "200",
        Json("RunsPage"),
    ),
    route(
        "get",
        "/api/v1/runs/{id}",
        "One run with its metric history (?history=false: without)",
        None,
        "200",
        Json("Run"),
    ),
    route(
        "get",
        "/api/v1/runs/{id}/history",
        "Metric series, downsampled (?keys=a,b&max_points=N)",
        None,
        "200",
        Json("RunHistory"),
    ),
    route(
        "get",
        "/api/v1/runs/{id}/history/columns",
        "The whole history as columns over the steps, in pages (?keys=a,b&after_step=S&limit=N)",
        None,
        "200",
        Json("HistoryColumns"),
    ),
    route(
        "get",
        "/api/v1/runs/{id}/history/packed",
        "The same as /history/columns, every list packed as binary numbers in base64",
        None,
        "200",
        Json("PackedHistory"),
    ),
    route(
        "post",
        "/api/v1/runs/{id}/started",
        "Record the argv the run's process was started with, and its git state",
        Some("Started"),
        "200",
        Json("Empty"),
    ),
    route(
        "post",
        "/api/v1/runs/{id}/heartbeat",
        "Report liveness; answers whether to stop",
        None,
        "200",
        Json("HeartbeatAnswer"),
    ),
    route(
        "post",
        "/api/v1/runs/{id}/metrics",
        "Append metric points",
        Some("MetricsRequest"),
        "200",
        Json("MetricsAnswer"),
    ),
    route(
        "post",
        "/api/v1/runs/{id}/output",
        "Append captured output",
        Some("OutputRequest"),
        "200",
        Json("Empty"),
    ),
    route(
        "get",
        "/api/v1/runs/{id}/output",
        "Captured output as text",
        None,
        "200",
        Text("text/plain"),
    ),
    route(
        "put",
        "/api/v1/runs/{id}/summary",
        "Set summary values",
        Some("SummaryUpdate"),
        "200",
        Json("Empty"),
    ),
    route(
        "put",
        "/api/v1/runs/{id}/config",
        "Merge the script's own config (defaults) into the run's; sweep values stay on top",
        Some("ConfigUpdate"),
        "200",
        Json("Empty"),
    ),
    route(
        "put",
        "/api/v1/runs/{id}/name",
        "Name the run (the name the script gave it)",
        Some("RunName"),
        "200",
        Json("Empty"),
    ),
    route(
        "post",
        "/api/v1/runs/{id}/finish",
        "End a run with its exit status",
        Some("FinishRequest"),
        "200",
        Json("Run"),
    ),
    route(
        "post",
        "/api/v1/runs/{id}/late-end",
        "Take back a run marked crashed while its agent was away, to upload the end (and points) it kept; its retry is withdrawn if queued, or made a repeat of the run (and stopped if running) once claimed; 409 run_crashed for a run crashed for another reason",
        None,
        "200",
        Json("Run"),
    ),
    route(
        "post",
        "/api/v1/runs/{id}/delivery",
        "Report metric points a client could not deliver, or recovered later",
        Some("DeliveryRequest"),
        "200",
        Json("Run"),
    ),
];

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{}{name}", hyperdial_wire::gen::SCHEMAS_PATH)})
}

fn json_content(name: &str) -> Value {
    json!({"application/json": {"schema": schema_ref(name)}})
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut responses = Map::new();
        let success = match r.answer {
            Json(name) => json!({"description": "success", "content": json_content(name)}),
            Text(media) => {
                json!({"description": "success", "content": {media: {"schema": {"type": "string"}}}})
            }
            Document => {
                json!({"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}})
            }
        };
        responses.insert(r.status.into(), success);
        if r.path.ends_with("/claim") {
            responses.insert(
                "204".into(),
                json!({
                    "description": "nothing to start now; ask again later (at once when the header x-hyperdial-waited-ms says the server held the claim for its wait_ms)",
                    "headers": {"x-hyperdial-waited-ms": {"description": "milliseconds the server held the claim open (long poll)", "schema": {"type": "integer"}}}
                }),
            );
            responses.insert(
                "410".into(),
                json!({"description": "the sweep is over", "content": json_content("SweepOver")}),
            );
        }
        if r.path == "/api/v1/sweeps" && r.method == "post" {
            responses.insert(
                "200".into(),
                json!({"description": "an existing sweep, resumed", "content": json_content("CreatedSweep")}),
            );
        }
        responses.insert(
            "4XX".into(),
            json!({"description": "bad request", "content": json_content("ErrorBody")}),
        );
        responses.insert(
            "503".into(),
            json!({"description": "storage fault (disk full, read-only, I/O error, busy, damaged): nothing was stored; retry", "content": json_content("ErrorBody")}),
        );
        let mut op = json!({"summary": r.summary, "responses": responses});
        if r.path.contains("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if let Some(name) = r.request {
            op["requestBody"] = json!({"content": json_content(name)});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "hyperdial", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Hyperparameter sweeps and experiment tracking. See docs/api.md."},
        "paths": paths,
        "components": {
            "schemas": hyperdial_wire::gen::schemas(),
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"token": []}, {}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_types_that_exist() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for r in ROUTES {
            for name in r.request.into_iter().chain(match r.answer {
                Json(name) => Some(name),
                _ => None,
            }) {
                assert!(
                    schemas.contains_key(name),
                    "{} {}: {name}",
                    r.method,
                    r.path
                );
            }
        }
        for name in [
            "ErrorBody",
            "SweepOver",
            "RunBrief",
            "MetricsEvent",
            "Hello",
            "Resync",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
    }
}
