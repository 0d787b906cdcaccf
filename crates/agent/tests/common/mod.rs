//! An in-memory stand-in for the hyperdial server: just enough of `docs/api.md` for the agent,
//! with knobs to make it misbehave (5xx, stops, waits) and records of everything it received.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hyperdial_agent::Event;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Everything the mock knows and received.
#[derive(Default)]
pub struct MockState {
    pub sweep_id: String,
    pub source: String,
    /// The sweep metric's name (for `metric` and the NaN rule).
    pub metric: Option<String>,
    /// Params of the runs still to hand out; when empty, claims answer 410.
    pub queue: VecDeque<Value>,
    /// Answer 204 to this many claims before handing out runs.
    pub waits: u32,
    /// Act as a server with the claim long poll: a 204 to a claim that asked to wait
    /// (`wait_ms`) carries the header that says the server waited (without waiting).
    pub long_poll: bool,
    /// The `wait_ms` of every claim received, in order.
    pub claim_waits: Vec<Option<u64>>,
    /// The `claim_key` of every claim request received (failed ones too), in order.
    pub claim_keys: Vec<Option<String>>,
    pub claims: u32,
    pub agents: Vec<Value>,
    pub runs: BTreeMap<String, RunRec>,
    /// Runs in creation order.
    pub order: Vec<String>,
    /// When set, heartbeats (after `stop_after` of them) answer stop with this reason.
    pub stop_reason: Option<String>,
    pub stop_after: u32,
    /// Metrics answers say `stop: true` (without a reason) when `stop_reason` is set.
    pub stop_on_metrics: bool,
    /// Answer 500 to this many requests.
    pub fail_next: u32,
    /// Answer 500 to every output post until a run's finish arrives (a server away while the
    /// run wrote, back in time for its end).
    pub fail_output_until_finish: bool,
    /// Every request's method and path, in arrival order.
    pub requests: Vec<String>,
    /// Required bearer token.
    pub token: Option<String>,
    /// Answer 404 to every request about a run, as a server on another database does.
    pub forget_runs: bool,
    /// With `long_poll`, hold each claim answered 204 this long first, as a server whose
    /// sweep is paused does (ms).
    pub hold_ms: u64,
}

/// One run as the mock saw it.
#[derive(Default, Clone, Debug)]
pub struct RunRec {
    pub run: Value,
    pub points: Vec<Value>,
    pub metric_requests: u32,
    pub output: Vec<(String, String)>,
    pub heartbeats: u32,
    pub finish: Option<Value>,
}

impl RunRec {
    pub fn text(&self, stream: &str) -> String {
        self.output
            .iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, t)| t.as_str())
            .collect()
    }
}

type Shared = Arc<Mutex<MockState>>;

pub struct Mock {
    pub url: String,
    pub state: Shared,
}

impl Mock {
    pub async fn start(state: MockState) -> Mock {
        let shared: Shared = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/api/v1/sweeps/{id}", get(get_sweep))
            .route("/api/v1/sweeps/{id}/claim", post(claim))
            .route("/api/v1/agents", post(register))
            .route("/api/v1/runs", post(create_run))
            .route("/api/v1/runs/{id}/heartbeat", post(heartbeat))
            .route("/api/v1/runs/{id}/metrics", post(metrics))
            .route("/api/v1/runs/{id}/output", post(output))
            .route("/api/v1/runs/{id}/finish", post(finish))
            .route("/api/v1/runs/{id}/summary", put(summary))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Mock {
            url: format!("http://{addr}"),
            state: shared,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap()
    }

    pub fn run(&self, id: &str) -> RunRec {
        self.lock().runs.get(id).cloned().unwrap_or_default()
    }
}

/// A sweep mock: `source` text and the params of the runs to hand out.
pub fn sweep_state(source: &str, params: Vec<Value>) -> MockState {
    MockState {
        sweep_id: "sw1".into(),
        source: source.into(),
        metric: Some("val_loss".into()),
        queue: params.into(),
        ..MockState::default()
    }
}

fn err(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Record the request; answer 500 or 401 when configured to.
fn gate(st: &mut MockState, what: String, headers: &HeaderMap) -> Option<Response> {
    let words: Vec<&str> = what.split(' ').collect();
    if let [_, "heartbeat" | "metrics" | "output" | "finish" | "summary", run] = words[..] {
        if st.forget_runs {
            let answer = err(StatusCode::NOT_FOUND, &format!("no run with id `{run}`"));
            st.requests.push(what);
            return Some(answer);
        }
    }
    st.requests.push(what);
    if st.fail_next > 0 {
        st.fail_next -= 1;
        return Some(err(StatusCode::INTERNAL_SERVER_ERROR, "database is locked"));
    }
    if let Some(token) = &st.token {
        let got = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if got != format!("Bearer {token}") {
            return Some(err(
                StatusCode::UNAUTHORIZED,
                "missing or wrong API token; pass --token",
            ));
        }
    }
    None
}

fn body(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

fn rec<'a>(st: &'a mut MockState, id: &str) -> &'a mut RunRec {
    if !st.runs.contains_key(id) {
        st.order.push(id.to_string());
    }
    st.runs.entry(id.to_string()).or_insert_with(|| RunRec {
        run: json!({"id": id, "state": "running"}),
        ..RunRec::default()
    })
}

async fn get_sweep(State(s): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, format!("GET sweep {id}"), &h) {
        return r;
    }
    if id != st.sweep_id {
        return err(StatusCode::NOT_FOUND, &format!("no sweep {id}"));
    }
    Json(json!({"id": st.sweep_id, "state": "running", "source": st.source})).into_response()
}

async fn register(State(s): State<Shared>, h: HeaderMap, b: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, "POST agents".into(), &h) {
        return r;
    }
    st.agents.push(body(&b));
    let id = format!("a{}", st.agents.len());
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn claim(
    State(s): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let (answer, hold) = claim_now(&s, &id, &h, &b);
    tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
    answer
}

/// The claim's answer, and how long to hold it first (ms).
fn claim_now(s: &Shared, id: &str, h: &HeaderMap, b: &Bytes) -> (Response, u64) {
    let mut st = s.lock().unwrap();
    let key = body(b)
        .get("claim_key")
        .and_then(Value::as_str)
        .map(str::to_string);
    st.claim_keys.push(key);
    if let Some(r) = gate(&mut st, format!("POST claim {id}"), h) {
        return (r, 0);
    }
    if body(b).get("agent").and_then(Value::as_str).is_none() {
        return (err(StatusCode::BAD_REQUEST, "no agent"), 0);
    }
    let wait_ms = body(b).get("wait_ms").and_then(Value::as_u64);
    st.claim_waits.push(wait_ms);
    if st.waits > 0 {
        st.waits -= 1;
        let mut answer = StatusCode::NO_CONTENT.into_response();
        let mut hold = 0;
        if st.long_poll && wait_ms.is_some_and(|w| w > 0) {
            answer.headers_mut().insert(
                hyperdial_wire::api::WAITED_HEADER,
                axum::http::HeaderValue::from(wait_ms.unwrap_or(0)),
            );
            hold = st.hold_ms;
        }
        return (answer, hold);
    }
    let Some(params) = st.queue.pop_front() else {
        let gone = (
            StatusCode::GONE,
            Json(json!({"error": "the sweep is finished", "state": "finished"})),
        );
        return (gone.into_response(), 0);
    };
    st.claims += 1;
    let number = st.claims;
    let run_id = format!("r{number}");
    let run = json!({
        "id": run_id, "sweep": id, "number": number, "state": "running",
        "params": params, "config": {}, "metric": null, "error": null,
    });
    rec(&mut st, &run_id).run = run.clone();
    (Json(json!({ "run": run })).into_response(), 0)
}

async fn create_run(State(s): State<Shared>, h: HeaderMap, b: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, "POST runs".into(), &h) {
        return r;
    }
    let id = format!("m{}", st.order.len() + 1);
    let mut run = body(&b);
    run["id"] = json!(id);
    run["state"] = json!("running");
    rec(&mut st, &id).run = run.clone();
    (StatusCode::CREATED, Json(run)).into_response()
}

async fn heartbeat(State(s): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, format!("POST heartbeat {id}"), &h) {
        return r;
    }
    let reason = st.stop_reason.clone();
    let after = st.stop_after;
    let r = rec(&mut st, &id);
    r.heartbeats += 1;
    match reason {
        Some(reason) if r.heartbeats > after => {
            Json(json!({"stop": true, "reason": reason})).into_response()
        }
        _ => Json(json!({"stop": false})).into_response(),
    }
}

async fn metrics(
    State(s): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, format!("POST metrics {id}"), &h) {
        return r;
    }
    let stop = st.stop_on_metrics && st.stop_reason.is_some();
    let points = body(&b)
        .get("points")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let n = points.len();
    let r = rec(&mut st, &id);
    r.metric_requests += 1;
    r.points.extend(points);
    Json(json!({"accepted": n, "stop": stop})).into_response()
}

async fn output(
    State(s): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, format!("POST output {id}"), &h) {
        return r;
    }
    if st.fail_output_until_finish {
        return err(StatusCode::INTERNAL_SERVER_ERROR, "database is locked");
    }
    let v = body(&b);
    let stream = v["stream"].as_str().unwrap_or("?").to_string();
    let text = v["text"].as_str().unwrap_or("").to_string();
    rec(&mut st, &id).output.push((stream, text));
    Json(json!({})).into_response()
}

async fn finish(
    State(s): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, format!("POST finish {id}"), &h) {
        return r;
    }
    st.fail_output_until_finish = false;
    let v = body(&b);
    let metric_name = st.metric.clone();
    let r = rec(&mut st, &id);
    if r.finish.is_some() {
        return err(StatusCode::CONFLICT, "the run has already ended");
    }
    let mut state = match v.get("state").and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None if v.get("exit_code").and_then(Value::as_i64) == Some(0) => "finished".into(),
        None => "failed".into(),
    };
    let mut error = v.get("error").cloned().unwrap_or(Value::Null);
    let mut metric = Value::Null;
    if let Some(name) = metric_name {
        let values: Vec<&Value> = r
            .points
            .iter()
            .filter_map(|p| p["values"].get(&name))
            .collect();
        if values.iter().any(|v| v.is_null()) && state == "finished" {
            state = "failed".into();
            error = json!("the sweep metric val_loss is NaN");
        }
        let best = values
            .iter()
            .filter_map(|v| v.as_f64())
            .fold(f64::INFINITY, f64::min);
        if best.is_finite() {
            metric = json!(best);
        }
    }
    r.finish = Some(v.clone());
    r.run["state"] = json!(state);
    r.run["error"] = error;
    r.run["metric"] = metric;
    r.run["exit_code"] = v.get("exit_code").cloned().unwrap_or(Value::Null);
    Json(r.run.clone()).into_response()
}

async fn summary(
    State(s): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    if let Some(r) = gate(&mut st, format!("PUT summary {id}"), &h) {
        return r;
    }
    rec(&mut st, &id).run["summary"] = body(&b);
    Json(json!({})).into_response()
}

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hyperdial-agent-test-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Everything sent on an events channel so far.
pub fn drain(rx: &mut mpsc::UnboundedReceiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// Whether process `pid` is gone (kill(pid, 0) fails with ESRCH).
pub fn process_gone(pid: i32) -> bool {
    assert!(pid > 1);
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Poll `f` until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
