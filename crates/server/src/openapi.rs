//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, built from the route table so
//! it cannot list a route the server lacks (a test checks every listed route answers).

use serde_json::{json, Map, Value};

/// Every route: method, path, summary, request body schema (if any), success status.
pub const ROUTES: &[(&str, &str, &str, Option<&str>, &str)] = &[
    ("get", "/api/v1/openapi.json", "This document", None, "200"),
    (
        "post",
        "/api/v1/sweeps",
        "Create a sweep from a config (or resume an unfinished one)",
        Some("CreateSweep"),
        "201",
    ),
    (
        "get",
        "/api/v1/sweeps",
        "List sweeps, newest first",
        None,
        "200",
    ),
    (
        "get",
        "/api/v1/sweeps/{id}",
        "One sweep with run counts and best run",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/sweeps/{id}/pause",
        "Stop handing out runs; running runs go on",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/sweeps/{id}/resume",
        "Hand out runs again",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/sweeps/{id}/stop",
        "Finish the sweep; running runs finish",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/sweeps/{id}/cancel",
        "Cancel the sweep; running runs are stopped",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/sweeps/{id}/retry",
        "Queue runs again with the same configuration (a finished sweep runs its retries)",
        Some("Retry"),
        "200",
    ),
    (
        "post",
        "/api/v1/sweeps/{id}/claim",
        "Claim the next run (200), wait (204) or the sweep is over (410)",
        Some("Claim"),
        "200",
    ),
    (
        "get",
        "/api/v1/sweeps/{id}/best",
        "The run with the best metric",
        None,
        "200",
    ),
    (
        "get",
        "/api/v1/sweeps/{id}/export",
        "Every run as CSV or JSON (?format=csv|json)",
        None,
        "200",
    ),
    (
        "get",
        "/api/v1/sweeps/{id}/points",
        "Every run's params, metric and times, column by column (for charts)",
        None,
        "200",
    ),
    (
        "get",
        "/api/v1/sweeps/{id}/importance",
        "Parameter importance (random forest) and correlation with the metric",
        None,
        "200",
    ),
    (
        "put",
        "/api/v1/sweeps/{id}/notes",
        "Replace the sweep's markdown notes (at most 64 KiB)",
        Some("Notes"),
        "200",
    ),
    (
        "get",
        "/api/v1/events",
        "Live events as server-sent events (?sweep=ID)",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/agents",
        "Register an agent",
        Some("RegisterAgent"),
        "201",
    ),
    (
        "post",
        "/api/v1/runs",
        "Create a run outside any sweep",
        Some("CreateRun"),
        "201",
    ),
    (
        "get",
        "/api/v1/runs",
        "List runs: ?sweep, project, state (comma list), sort, order, range=FIELD:LO:HI, in=FIELD:A|B, limit, offset",
        None,
        "200",
    ),
    (
        "get",
        "/api/v1/runs/{id}",
        "One run with its metric history",
        None,
        "200",
    ),
    (
        "get",
        "/api/v1/runs/{id}/history",
        "Metric series, downsampled (?keys=a,b&max_points=N)",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/runs/{id}/started",
        "Record the argv the run's process was started with, and its git state",
        Some("Started"),
        "200",
    ),
    (
        "post",
        "/api/v1/runs/{id}/heartbeat",
        "Report liveness; answers whether to stop",
        None,
        "200",
    ),
    (
        "post",
        "/api/v1/runs/{id}/metrics",
        "Append metric points",
        Some("Metrics"),
        "200",
    ),
    (
        "post",
        "/api/v1/runs/{id}/output",
        "Append captured output",
        Some("Output"),
        "200",
    ),
    (
        "get",
        "/api/v1/runs/{id}/output",
        "Captured output as text",
        None,
        "200",
    ),
    (
        "put",
        "/api/v1/runs/{id}/summary",
        "Set summary values",
        Some("Summary"),
        "200",
    ),
    (
        "put",
        "/api/v1/runs/{id}/config",
        "Merge the script's own config (defaults) into the run's; sweep values stay on top",
        Some("Config"),
        "200",
    ),
    (
        "post",
        "/api/v1/runs/{id}/finish",
        "End a run with its exit status",
        Some("Finish"),
        "200",
    ),
    (
        "post",
        "/api/v1/runs/{id}/delivery",
        "Report metric points a client could not deliver, or recovered later",
        Some("Delivery"),
        "200",
    ),
];

fn schemas() -> Value {
    let string = json!({"type": "string"});
    let int = json!({"type": "integer"});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": string,
            "code": {"enum": ["disk_full", "read_only", "io_error", "busy", "corrupt", "unavailable", "storage"]}}},
        "CreateSweep": {"type": "object", "required": ["source"], "properties": {
            "source": {"type": "string", "description": "YAML or JSON sweep config"},
            "project": string, "file": string, "resume": {"type": "boolean"}, "resume_finished": {"type": "boolean"}, "seed": int}},
        "Retry": {"type": "object", "properties": {
            "states": {"type": "array", "items": {"enum": ["finished", "failed", "crashed", "stopped_early", "cancelled"]}},
            "runs": {"type": "array", "items": string, "maxItems": 10000}}},
        "Claim": {"type": "object", "properties": {"agent": string}},
        "RegisterAgent": {"type": "object", "properties": {"sweep": string, "host": string, "pid": int}},
        "CreateRun": {"type": "object", "properties": {
            "project": string, "name": string, "config": {"type": "object"},
            "argv": {"type": "array", "items": string}, "host": string,
            "git": {"type": "object", "properties": {"commit": string, "dirty": {"type": "boolean"}}}}},
        "Metrics": {"type": "object", "required": ["points"], "properties": {"points": {"type": "array", "items": {
            "type": "object", "required": ["values"], "properties": {
                "step": int, "time_ms": int,
                "values": {"type": "object", "additionalProperties": {"type": ["number", "null"]}}}}}}},
        "Output": {"type": "object", "required": ["stream", "text"], "properties": {
            "stream": {"enum": ["stdout", "stderr"]}, "text": string}},
        "Summary": {"type": "object"},
        "Started": {"type": "object", "required": ["argv"], "properties": {
            "argv": {"type": "array", "items": string}, "pid": int,
            "git": {"type": "object", "properties": {"commit": string, "dirty": {"type": "boolean"}}}}},
        "Config": {"type": "object"},
        "Notes": {"type": "object", "required": ["notes"], "properties": {"notes": string}},
        "Delivery": {"type": "object", "properties": {
            "missing": {"type": "integer", "minimum": 0}, "recovered": {"type": "integer", "minimum": 0},
            "files": {"type": "array", "items": string}}},
        "Finish": {"type": "object", "properties": {
            "exit_code": int, "error": string,
            "state": {"enum": ["finished", "failed", "crashed", "stopped_early", "cancelled"]}}},
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, body, status) in ROUTES {
        let mut op = json!({
            "summary": summary,
            "responses": {
                *status: {"description": "success"},
                "4XX": {"description": "bad request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "503": {"description": "storage fault (disk full, read-only, I/O error, busy, damaged): nothing was stored; retry", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if path.contains("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if let Some(schema) = body {
            op["requestBody"] = json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "hyperdial", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Hyperparameter sweeps and experiment tracking. See docs/api.md."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"token": []}, {}]
    })
}
