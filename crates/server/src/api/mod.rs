//! The `/api/v1` routes (see `docs/api.md`).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hyperdial_store::{ConfigMerge, Point};
use hyperdial_wire::api::{
    AgentRegistered, ClaimRequest, ConfigUpdate, CreateRun, CreateSweep, CreatedSweep,
    DeliveryRequest, Diagnostic, Empty, ErrorCode, EstimateAnswer, FinishRequest, GitInfo,
    HeartbeatAnswer, MetricsAnswer, MetricsRequest, OutputRequest, PointValues, RegisterAgent,
    Resume, Retried, RetryAnswer, RetryRequest, RunAnswer, RunName, Skipped, Started,
    SummaryUpdate, SweepList,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::controller::{SweepAction, Tell, TellClaim};
use crate::error::ApiError;
use crate::requests::Action;
use crate::AppState;

pub mod claim;
pub mod events;
mod export;
mod front;
pub mod importance;
pub mod insights;
pub mod late;
mod paged;
pub mod query;
pub mod repeats;
mod sweep_source;
pub mod views;

use late::refuse_if_crashed;
pub use query::Params;
use query::{Param, QueryParams};

/// A JSON body whose rejection is a JSON error that says what is wrong.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(rejection_error(rejection)),
        }
    }
}

/// Most entries of an `argv` list.
pub const MAX_ARGV: usize = 10_000;
/// Most values in one metric point, and most keys set in one summary update.
pub const MAX_KEYS: usize = hyperdial_wire::api::MAX_POINT_VALUES;

/// The largest step a metric point may have: 2^53 − 1, the largest integer a JSON reader
/// that keeps numbers as doubles (the dashboard's, Python's for floats) holds exactly, and far
/// from the end of `i64`, so the next automatic step never overflows.
pub const MAX_STEP: i64 = (1 << 53) - 1;
/// Longest summary key, in bytes.
const MAX_SUMMARY_KEY_BYTES: usize = 1024;

/// A `400` when a list of `what` holds more than `max` entries.
fn cap(what: &str, len: usize, max: usize) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::bad_request(format!(
            "{what} has {len} entries; at most {max} are accepted"
        )));
    }
    Ok(())
}

fn rejection_error(rejection: JsonRejection) -> ApiError {
    let status = match &rejection {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        JsonRejection::BytesRejection(_) => return too_large_error(),
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(
        status,
        format!("invalid request body: {}", rejection.body_text()),
    )
}

/// The `413` of a body over [`crate::MAX_BODY_BYTES`]: says the limit, also as `limit_bytes`
/// so a client can split its batch and send it again.
fn too_large_error() -> ApiError {
    let mut error = ApiError::too_large(format!(
        "the request body is larger than the limit of {} bytes; split it into smaller requests",
        crate::MAX_BODY_BYTES
    ));
    error.body.limit_bytes = Some(crate::MAX_BODY_BYTES as u64);
    error
}

/// Turn the plain-text errors of axum's extractors into the API's JSON error, so every error
/// answer has one shape: the `413` of a body extractor (`Bytes`) becomes the same
/// [`too_large_error`] every oversize request gets, and any other plain-text error (a path
/// that is not UTF-8, `/api/v1/runs/%ff`) becomes `{"error": <its text>}` with its status.
/// Answers that are not errors, and errors that are not plain text (the dashboard's pages),
/// pass unchanged.
pub(crate) async fn json_errors(response: Response) -> Response {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || content_type.starts_with("application/json")
    {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large_error().into_response();
    }
    if !content_type.starts_with("text/plain") {
        return response;
    }
    // An extractor's message is a line or two; a longer body is not one of theirs.
    match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(text) => {
            ApiError::new(status, String::from_utf8_lossy(&text).trim().to_string()).into_response()
        }
        Err(_) => {
            ApiError::new(status, status.canonical_reason().unwrap_or("error")).into_response()
        }
    }
}

type ApiResult = Result<Response, ApiError>;

/// A JSON body that may be absent (empty means the defaults).
fn optional_body<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// The API routes, behind the token check.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/sweeps", post(create_sweep).get(list_sweeps))
        .route("/api/v1/sweeps/{id}", get(get_sweep))
        .route(
            "/api/v1/sweeps/{id}/{action}",
            post(sweep_action).get(sweep_action_get),
        )
        .route("/api/v1/sweeps/{id}/best", get(best))
        .route("/api/v1/sweeps/{id}/estimate", get(estimate))
        .route("/api/v1/sweeps/{id}/noise", get(repeats::noise))
        .route("/api/v1/sweeps/{id}/front", get(front::front))
        .route("/api/v1/sweeps/{id}/export", get(export::export))
        .route(
            "/api/v1/sweeps/{id}/importance",
            get(importance::importance),
        )
        .route("/api/v1/sweeps/{id}/points", get(insights::points))
        .route("/api/v1/sweeps/{id}/notes", put(insights::put_notes))
        .route("/api/v1/events", get(events::events))
        .route("/api/v1/agents", post(register_agent))
        .route("/api/v1/runs", post(create_run).get(insights::list_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/runs/{id}/history", get(insights::history))
        .route(
            "/api/v1/runs/{id}/history/columns",
            get(insights::history_columns),
        )
        .route(
            "/api/v1/runs/{id}/history/packed",
            get(insights::history_packed),
        )
        .route("/api/v1/runs/{id}/started", post(started))
        .route("/api/v1/runs/{id}/heartbeat", post(heartbeat))
        .route("/api/v1/runs/{id}/metrics", post(metrics))
        .route(
            "/api/v1/runs/{id}/output",
            post(post_output).get(get_output),
        )
        .route("/api/v1/runs/{id}/summary", put(put_summary))
        .route("/api/v1/runs/{id}/config", put(put_config))
        .route("/api/v1/runs/{id}/name", put(put_name))
        .route("/api/v1/runs/{id}/finish", post(finish))
        .route("/api/v1/runs/{id}/late-end", post(late_end))
        .route("/api/v1/runs/{id}/delivery", post(delivery))
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

/// Reject API requests without the configured bearer token.
async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let tokens = &state.options.tokens;
    if !tokens.is_empty() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| tokens.accepts(g)) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send `Authorization: Bearer TOKEN` (HYPERDIAL_TOKEN for agents and clients)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

async fn create_sweep(State(s): State<AppState>, Body(body): Body<CreateSweep>) -> ApiResult {
    let c = &s.controller;
    let (source, from_object) = sweep_source::text_of(body.source, body.config)?;
    let file = if from_object {
        None
    } else {
        body.file.as_deref()
    };
    let mut created = c
        .create_sweep_or_find_finished(
            &source,
            file,
            body.project.as_deref(),
            body.resume,
            body.resume && body.resume_finished,
            body.seed,
        )
        .await
        .map_err(|e| {
            if from_object {
                sweep_source::object_config_error(e)
            } else {
                e
            }
        })?;
    if from_object {
        for w in &mut created.warnings {
            w.location = None;
        }
    }
    if created.resumed {
        // What the retry policy owes (interrupted and crashed runs) is queued now, so the
        // resumed sweep's counts show it before the first claim (`tune` sizes its run from them).
        c.queue_retries(&created.sweep.id).await?;
    }
    let view = views::sweep(c, &created.sweep).await?;
    if !created.resumed {
        c.events.publish("sweep", Some(&created.sweep.id), &view);
    }
    let warnings = serde_json::to_value(&created.warnings)
        .and_then(serde_json::from_value::<Vec<Diagnostic>>)
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the config's warnings: {e}"),
            )
        })?;
    let view = CreatedSweep {
        sweep: view,
        resumed: created.resumed,
        warnings,
    };
    let (status, what) = if created.resumed {
        (StatusCode::OK, "resumed (sent again)")
    } else {
        (StatusCode::CREATED, "created")
    };
    let what = format!("sweep {} {what}", view.sweep.id);
    Ok(Action::mark((status, Json(view)).into_response(), what))
}

#[derive(Deserialize)]
struct ProjectQuery {
    project: Option<String>,
}

impl QueryParams for ProjectQuery {
    const PARAMS: &'static [Param] = &[Param {
        name: "project",
        form: "a project name",
    }];
}

async fn list_sweeps(State(s): State<AppState>, Params(q): Params<ProjectQuery>) -> ApiResult {
    let rows = s.controller.store().sweeps(q.project.as_deref()).await?;
    let mut sweeps = Vec::with_capacity(rows.len());
    for row in &rows {
        sweeps.push(views::sweep(&s.controller, row).await?);
    }
    Ok(Json(SweepList { sweeps }).into_response())
}

async fn get_sweep(
    State(s): State<AppState>,
    Path(id): Path<String>,
    _: Params<query::NoQuery>,
) -> ApiResult {
    let row = s.controller.sweep(&id).await?;
    Ok(Json(views::sweep(&s.controller, &row).await?).into_response())
}

/// What `POST /api/v1/sweeps/{id}/{action}` does: a claim, repeats, retries, or a change
/// of the sweep's state ([`SweepAction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SweepPost {
    Claim,
    Runs,
    Retry,
    Act(SweepAction),
}

impl SweepPost {
    /// The action a path segment names, if any.
    fn parse(segment: &str) -> Option<Self> {
        Some(match segment {
            "claim" => Self::Claim,
            "runs" => Self::Runs,
            "retry" => Self::Retry,
            other => Self::Act(other.parse().ok()?),
        })
    }
}

/// `GET` on a sweep's action path: `405` for an action (they are `POST`), `404` for anything
/// else, as for any path no route serves (not a `405` that suggests another method would do).
async fn sweep_action_get(
    Path((_, action)): Path<(String, String)>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    match SweepPost::parse(&action) {
        Some(_) => crate::wrong_method(method, uri).await,
        None => crate::no_route(uri).await,
    }
}

async fn sweep_action(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    uri: axum::http::Uri,
    body: Bytes,
) -> ApiResult {
    let c = &s.controller;
    let Some(post) = SweepPost::parse(&action) else {
        return Err(crate::no_route(uri).await);
    };
    match post {
        SweepPost::Claim => claim::claim(&s, &id, optional_body::<ClaimRequest>(&body)?).await,
        SweepPost::Act(act) => {
            let (row, changed) = c.act(&id, act).await?;
            let view = views::sweep(c, &row).await?;
            let said = if changed {
                c.events.publish("sweep", Some(&id), &view);
                let done = match act {
                    SweepAction::Pause => "paused",
                    SweepAction::Resume => "resumed",
                    SweepAction::Stop => "stopped (runs in flight finish)",
                    SweepAction::Cancel => "cancelled (its running runs are told to stop)",
                };
                format!("sweep {id} {done}")
            } else {
                format!(
                    "sweep {id} was already {}: {} changed nothing",
                    row.state,
                    act.as_str()
                )
            };
            Ok(Action::mark(Json(view).into_response(), said))
        }
        SweepPost::Runs => repeats::queue(&s, &id, &body)
            .await
            .map(|r| Action::mark(r, format!("sweep {id}: repeats queued"))),
        SweepPost::Retry => {
            let body = optional_body::<RetryRequest>(&body)?;
            let states: Vec<String> = body.states.iter().map(|s| s.to_string()).collect();
            let done = c.retry(&id, &states, &body.runs).await?;
            let mut retried = Vec::with_capacity(done.retried.len());
            for r in &done.retried {
                c.events
                    .publish("run_created", Some(&id), &views::run_brief(&r.retry));
                retried.push(Retried {
                    run: r.run.clone(),
                    retry: views::run(&r.retry),
                });
            }
            let row = c.sweep(&id).await?;
            let sweep = views::sweep(c, &row).await?;
            c.events.publish("sweep", Some(&id), &sweep);
            let skipped = done
                .skipped
                .into_iter()
                .map(|(run, reason)| Skipped { run, reason })
                .collect();
            let what = format!("sweep {id}: {} runs retried", retried.len());
            Ok(Action::mark(
                Json(RetryAnswer {
                    retried,
                    skipped,
                    sweep,
                })
                .into_response(),
                what,
            ))
        }
    }
}

async fn best(
    State(s): State<AppState>,
    Path(id): Path<String>,
    _: Params<query::NoQuery>,
) -> ApiResult {
    let store = s.controller.store();
    let sweep = s.controller.sweep(&id).await?;
    if let Ok(config) = s.controller.config(&sweep) {
        single_metric(&id, &config)?;
    }
    match store.best_run(&id, views::goal(&sweep).maximize()).await? {
        Some(run) => Ok(Json(RunAnswer {
            run: views::run(&run),
        })
        .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no run of sweep {id} has reported the metric yet"),
        )),
    }
}

/// A best run or an estimate needs one metric: `409` for a sweep with several objectives
/// (which has a Pareto front instead) or none (with how to give it one).
fn single_metric(id: &str, config: &hyperdial_space::SweepConfig) -> Result<(), ApiError> {
    if config.is_multi_objective() {
        return Err(ApiError::conflict(format!(
            "sweep {id} has several objectives and no single best run; its Pareto front is GET /api/v1/sweeps/{id}/front"
        )));
    }
    if config.metric.is_none() {
        return Err(ApiError::conflict(format!(
            "sweep {id} has no metric, so no run is the best one; to rank its runs, add \
             `metric: {{name: NAME, goal: minimize}}` (or `maximize`) to the sweep file"
        )));
    }
    Ok(())
}

/// `GET /api/v1/sweeps/{id}/estimate`: the model's estimate of the best configuration
/// ([`crate::estimate`]); `404` with fewer than 5 results, `409` for a multi-objective sweep.
async fn estimate(
    State(s): State<AppState>,
    Path(id): Path<String>,
    _: Params<query::NoQuery>,
) -> ApiResult {
    let store = s.controller.store();
    let sweep = s.controller.sweep(&id).await?;
    let config = s.controller.config(&sweep)?;
    single_metric(&id, &config)?;
    let maximize = views::goal(&sweep).maximize();
    let Some((run_id, observed_best, e)) =
        crate::estimate::cached(store, &sweep, config, maximize).await?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "sweep {id} has fewer than {} runs with the metric that finished or stopped early: too few for an estimate",
                hyperdial_search::bayes::estimate::MIN_RESULTS
            ),
        ));
    };
    let Some(run) = store.run(&run_id).await? else {
        return Err(ApiError::not_found("run", &run_id));
    };
    Ok(Json(EstimateAnswer {
        run: views::run(&run),
        mean: e.mean,
        sd: e.sd,
        noise_sd: e.noise_sd,
        differs: run_id != observed_best,
        p_better: e.p_better,
        observed_best,
        observed_best_mean: e.observed_mean,
        results: e.results as u64,
    })
    .into_response())
}

async fn register_agent(State(s): State<AppState>, Body(body): Body<RegisterAgent>) -> ApiResult {
    let store = s.controller.store();
    if let Some(sweep) = &body.sweep {
        s.controller.sweep(sweep).await?;
    }
    let id = store
        .register_agent(
            body.sweep.as_deref(),
            body.host.as_deref(),
            body.pid,
            body.process.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(AgentRegistered { id })).into_response())
}

async fn create_run(State(s): State<AppState>, Body(body): Body<CreateRun>) -> ApiResult {
    let config = body.config.unwrap_or_else(|| json!({}));
    if !config.is_object() {
        return Err(ApiError::bad_request("`config` must be a JSON object"));
    }
    let mut flat = Map::new();
    views::flatten("", &config, &mut flat);
    cap("`config` (flattened)", flat.len(), MAX_KEYS)?;
    if let Some(argv) = &body.argv {
        cap("`argv`", argv.len(), MAX_ARGV)?;
    }
    let resume = body.resume.unwrap_or(Resume::Never);
    if let Some(id) = &body.id {
        check_chosen_run_id(id)?;
    } else if body.resume.is_some() {
        return Err(ApiError::bad_request(
            "`resume` needs the `id` of the run to resume",
        ));
    }
    let git = body.git.unwrap_or_default();
    let project = body.project.unwrap_or_else(|| "default".into());
    crate::controller::check_project(&project)?;
    let new = hyperdial_store::NewRun {
        id: body.id.clone(),
        project,
        name: body.name,
        params: Value::Object(flat),
        config,
        host: body.host,
        argv: body.argv.map(|a| json!(a)),
        git_commit: git.commit,
        git_dirty: git.dirty,
        ..Default::default()
    };
    let store = s.controller.store();
    // A chosen id: the run it names, if any, decides (three passes at most: a create or a
    // resume that loses a race to another request on the same id decides again on the run
    // that request left).
    for _ in 0..3 {
        if let Some(id) = &body.id {
            if let Some(taken) = store.run(id).await? {
                match resume_taken(&s, taken, resume).await? {
                    Some(answer) => return Ok(answer),
                    None => continue,
                }
            }
            if resume == Resume::Must {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no run `{id}` to resume: pass resume `allow` to create it when it does not exist"
                    ),
                ));
            }
        }
        match store.insert_run(new.clone()).await {
            Ok(mut run) => {
                // A run recorded offline: dated when its script started.
                if let Some(ms) = body
                    .started_ms
                    .filter(|&ms| run.created_ms - ms > LATE_END_MS)
                {
                    if let Some(row) = store.backdate_start(&run.id, ms).await? {
                        run = row;
                    }
                }
                s.controller
                    .events
                    .publish("run_created", None, &views::run_brief(&run));
                return Ok((StatusCode::CREATED, Json(views::run(&run))).into_response());
            }
            Err(e) if body.id.is_some() && e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Three passes each lost to another request on the same id.
    Err(ApiError::conflict(format!(
        "run `{}` kept changing under other requests for the same id while this one ran; \
         send it again",
        body.id.as_deref().unwrap_or_default()
    )))
}

/// The longest id a caller may choose for a run ([`CreateRun::id`]).
const MAX_CHOSEN_ID: usize = 64;

/// Refuse an id a caller chose for a run unless it is 1 to [`MAX_CHOSEN_ID`] characters of
/// `A-Z a-z 0-9 _ -` (it appears in URLs and file names).
fn check_chosen_run_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CHOSEN_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "`id` {id:?}: a run id is 1 to {MAX_CHOSEN_ID} characters of A-Z, a-z, 0-9, `_` and `-`"
        )))
    }
}

/// `POST /api/v1/runs` with the `id` of run `taken`: refused, or the run reopened, as `resume`
/// says ([`Resume`]); `None` when the run changed since `taken` was read (read it again).
async fn resume_taken(
    s: &AppState,
    taken: hyperdial_store::RunRow,
    resume: Resume,
) -> Result<Option<axum::response::Response>, ApiError> {
    let id = &taken.id;
    if resume == Resume::Never {
        return Err(ApiError::conflict(format!(
            "run `{id}` exists: pass resume `allow` (or `must`) to continue it, or choose another id"
        )));
    }
    if let Some(sweep) = &taken.sweep_id {
        return Err(ApiError::conflict(format!(
            "run `{id}` belongs to sweep `{sweep}`: a sweep's runs are resumed by its agents \
             (`hyperdial agent`), not by creating them again"
        )));
    }
    // Two processes on one run would overwrite each other's steps: a run still heard from
    // is someone's. A process killed without a word leaves its run `running`; it can be
    // resumed once it has been silent for the run timeout.
    let limit = s.options.silence_limit();
    let heard = taken
        .heartbeat_ms
        .or(taken.started_ms)
        .unwrap_or(taken.created_ms);
    let silent_ms = hyperdial_store::now_ms().saturating_sub(heard);
    if taken.state == hyperdial_store::RunState::Running && silent_ms < limit.as_millis() as i64 {
        return Err(ApiError::conflict(format!(
            "run `{id}` is running and was heard from {:.1} s ago: another process may still \
             be writing to it. Stop that process, or wait: a run silent for {} s (the server's \
             run timeout) can be resumed",
            silent_ms as f64 / 1000.0,
            limit.as_secs()
        ))
        .with_code(ErrorCode::RunActive));
    }
    let Some(run) = s.controller.store().reopen_run(id, &taken).await? else {
        // Another request resumed (or ended) it since it was read: decide again on what it
        // is now (a run just resumed by another process is `run_active`).
        return Ok(None);
    };
    s.controller
        .events
        .publish("run_updated", None, &views::run_brief(&run));
    let mut answer = Json(views::run(&run)).into_response();
    answer.headers_mut().insert(
        "x-hyperdial-resumed",
        axum::http::HeaderValue::from_static("true"),
    );
    Ok(Some(answer))
}

#[derive(Deserialize)]
struct GetRunQuery {
    history: Option<bool>,
}

impl QueryParams for GetRunQuery {
    const PARAMS: &'static [Param] = &[Param {
        name: "history",
        form: "`true` (the default: the answer holds the run's history) or `false`",
    }];
}

async fn get_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<GetRunQuery>,
) -> ApiResult {
    let store = s.controller.store();
    let run = store
        .run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &id))?;
    let mut view = views::run(&run);
    if q.history != Some(false) {
        let history = store.history(&id).await?;
        view.history = Some(
            history
                .into_iter()
                .map(|p| hyperdial_wire::api::HistoryPoint {
                    step: p.step,
                    time_ms: p.time_ms,
                    values: p.values,
                })
                .collect(),
        );
    }
    Ok(Json(view).into_response())
}

async fn started(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<Started>,
) -> ApiResult {
    cap("`argv`", body.argv.len(), MAX_ARGV)?;
    refuse_if_crashed(&s, &id).await?;
    let GitInfo { commit, dirty } = body.git.unwrap_or_default();
    if !s
        .controller
        .store()
        .set_argv(&id, &body.argv, commit.as_deref(), dirty)
        .await?
    {
        return Err(ApiError::not_found("run", &id));
    }
    Ok(Json(Empty {}).into_response())
}

/// `PUT /runs/{id}/config`: the training script's own config (its defaults), merged into the
/// run's config; a sweep run's values from its sweep stay on top, as in W&B.
async fn put_config(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(ConfigUpdate(body)): Body<ConfigUpdate>,
) -> ApiResult {
    let store = s.controller.store();
    let run = store
        .run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &id))?;
    let locked = match (&run.sweep_id, run.params.as_object()) {
        (Some(sweep), Some(params)) => {
            let sweep = s.controller.sweep(sweep).await?;
            let config = s.controller.config(&sweep)?;
            Some(crate::controller::nested_config(&config, params))
        }
        _ => None,
    };
    match store
        .merge_config(&id, &body, locked.as_ref(), MAX_KEYS)
        .await?
    {
        ConfigMerge::Merged => Ok(Json(Empty {}).into_response()),
        ConfigMerge::NoRun => Err(ApiError::not_found("run", &id)),
        ConfigMerge::TooLarge(entries) => Err(ApiError::bad_request(format!(
            "run {id}'s config would hold {entries} values (flattened) with these; at most \
             {MAX_KEYS} are accepted, so nothing was changed"
        ))),
    }
}

/// `PUT /runs/{id}/name`: the name the script gave its run (`hyperdial.init(name=…)` in a run
/// an agent or `hyperdial run` created); an empty name clears it.
async fn put_name(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<RunName>,
) -> ApiResult {
    let name = body.name.trim();
    if name.chars().count() > 200 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a run name is at most 200 characters",
        ));
    }
    let name = (!name.is_empty()).then_some(name);
    if !s.controller.store().set_run_name(&id, name).await? {
        return Err(ApiError::not_found("run", &id));
    }
    Ok(Json(Empty {}).into_response())
}

async fn heartbeat(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let ended = late::ended_state(&s, &id).await?;
    let (stop, reason) = s
        .controller
        .store()
        .heartbeat(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &id))?;
    // A run ended through the API while its process runs: that process must stop too.
    let (stop, reason) = match ended {
        Some(state) if !stop => (true, Some(state.as_str().to_string())),
        _ => (stop, reason),
    };
    Ok(Json(HeartbeatAnswer { stop, reason }).into_response())
}

/// Most points in one batch.
const MAX_POINTS: usize = 100_000;

/// The values of one metric point (`what` names them in errors): at most [`MAX_KEYS`],
/// names of 1 to 256 bytes without NUL, each a number (`null` for NaN; `true`/`false` read
/// as 1/0).
fn point_values(
    what: &str,
    values: Map<String, Value>,
) -> Result<Vec<(String, Option<f64>)>, ApiError> {
    cap(what, values.len(), MAX_KEYS)?;
    let mut out = Vec::with_capacity(values.len());
    for (name, v) in values {
        if name.is_empty() || name.len() > 256 || name.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "{what}: metric names must be 1 to 256 characters, without NUL"
            )));
        }
        let value = match &v {
            Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
            Value::Null => None,
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            other => {
                return Err(ApiError::bad_request(format!(
                    "{what}.{name}: expected a number or null, found {other}"
                )))
            }
        };
        out.push((name, value));
    }
    Ok(out)
}

/// `POST /runs/{id}/metrics`: the body is read straight into typed points ([`PointValues`]
/// checks each value as it is read, so a bad value is a `400` naming `points[i].values.NAME`).
async fn metrics(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<MetricsRequest<PointValues>>,
) -> ApiResult {
    if body.points.len() > MAX_POINTS {
        return Err(ApiError::too_large(format!(
            "{} points in one batch; send at most {MAX_POINTS}",
            body.points.len()
        )));
    }
    // A step or a time outside 0..=MAX_STEP: no step after it to count on to, no double that
    // holds it exactly; a time before the epoch is no time a client measured (a sign or unit
    // mistake).
    for (i, p) in body.points.iter().enumerate() {
        let outside = |x: Option<i64>| x.is_some_and(|x| !(0..=MAX_STEP).contains(&x));
        if outside(p.step) {
            return Err(ApiError::bad_request(format!(
                "points[{i}].step must be from 0 to {MAX_STEP}"
            )));
        }
        if outside(p.time_ms) {
            return Err(ApiError::bad_request(format!(
                "points[{i}].time_ms must be from 0 to {MAX_STEP} (ms since the Unix epoch)"
            )));
        }
    }
    let points: Vec<Point> = body
        .points
        .into_iter()
        .map(|p| Point {
            step: p.step,
            time_ms: p.time_ms,
            values: p.values.0,
        })
        .collect();
    // A crashed run is refused inside `ingest`, from the run it reads anyway.
    let ingested = s.controller.ingest(&id, &points).await?;
    if s.controller.events.active() {
        if let Some(after) = s.controller.store().run(&id).await? {
            let next_step = ingested.first_step;
            s.controller.events.publish(
                "metrics",
                after.sweep_id.as_deref(),
                &events::metrics_event(&after, next_step, &points),
            );
        }
    }
    Ok(Json(MetricsAnswer {
        accepted: ingested.accepted as u64,
        stop: ingested.stop,
        reason: ingested.reason,
    })
    .into_response())
}

async fn post_output(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<OutputRequest>,
) -> ApiResult {
    refuse_if_crashed(&s, &id).await?;
    if !s
        .controller
        .store()
        .append_output(&id, body.stream.as_str(), &body.text)
        .await?
    {
        return Err(ApiError::not_found("run", &id));
    }
    Ok(Json(Empty {}).into_response())
}

async fn get_output(
    State(s): State<AppState>,
    Path(id): Path<String>,
    _: Params<query::NoQuery>,
) -> ApiResult {
    let store = s.controller.store();
    store
        .run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &id))?;
    let text = store.output(&id).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn put_summary(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(SummaryUpdate(body)): Body<SummaryUpdate>,
) -> ApiResult {
    cap("the summary", body.len(), MAX_KEYS)?;
    if body
        .keys()
        .any(|k| k.is_empty() || k.len() > MAX_SUMMARY_KEY_BYTES)
    {
        return Err(ApiError::bad_request(format!(
            "summary keys must be 1 to {MAX_SUMMARY_KEY_BYTES} bytes"
        )));
    }
    // A crashed run is refused inside `set_summary`, from the run it reads anyway.
    s.controller.set_summary(&id, &body).await?;
    if let Some(run) = s.controller.store().run(&id).await? {
        s.controller.events.publish(
            "run_updated",
            run.sweep_id.as_deref(),
            &views::run_brief(&run),
        );
    }
    Ok(Json(Empty {}).into_response())
}

// How much earlier than the server's own end time a finish's `ended_ms` must be for the run's
// end to be moved to it (see [`FinishRequest::ended_ms`]).
use crate::controller::LATE_END_MS;

async fn finish(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let body = optional_body::<FinishRequest>(&body)?;
    let ended_ms = body.ended_ms;
    let mut run = end_run(&s, &id, body, None).await?;
    // A late end (retried through an outage, or uploaded from a file its agent kept) ends
    // when the run did. An end that arrives at once is left as the server timed it: no second
    // write, and a sender's clock a few seconds off never moves it.
    let late = |ms: i64| run.finished_ms.is_some_and(|f| f - ms > LATE_END_MS);
    if let Some(ms) = ended_ms.filter(|&ms| late(ms)) {
        if let Some(row) = s
            .controller
            .store()
            .backdate_end(&id, ms)
            .await
            .map_err(crate::controller::ControlError::from)?
        {
            run = row;
        }
    }
    Ok(Json(views::run(&run)).into_response())
}

/// `POST /runs/{id}/late-end`: the agent of a run kept its end while the server was away, and
/// the server marked the run crashed meanwhile; the run's retry gives way (withdrawn if queued,
/// a repeat of the run and stopped if claimed) and the run takes its points and its end again
/// (see `api/late.rs`).
async fn late_end(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let run = s.controller.take_back_late_end(&id).await?;
    Ok(Json(views::run(&run)).into_response())
}

/// End run `id` as `body` says: the finish route, and a claim's `tell` when it cannot be
/// made with its claim ([`end_run_and_claim`]), which passes its sweep as `in_sweep` (a run of
/// another sweep is refused). Told values are checked as a metric point's are, and the events
/// a metric batch and a finish publish are published.
pub(crate) async fn end_run(
    s: &AppState,
    id: &str,
    body: FinishRequest,
    in_sweep: Option<&str>,
) -> Result<hyperdial_store::RunRow, ApiError> {
    let told = told_point(body.values)?;
    // A crashed run is refused inside `finish`, from the run it reads anyway.
    let finished = s
        .controller
        .finish_ended_at(
            id,
            body.exit_code.map(i64::from),
            body.state.map(|state| state.as_str()),
            body.error.as_deref(),
            told.as_ref(),
            in_sweep,
            body.ended_ms,
        )
        .await?;
    Ok(published_end(s, told.as_ref(), finished))
}

/// A claim's tell: end run `id` of sweep `sweep` as `body` says and, when the end cannot
/// change the claim, claim the sweep's next run for `agent` (with claim key `key`) in the same commit
/// ([`crate::controller::Controller::tell_and_claim`]): that run, or `None` when the run was
/// ended alone (claim as usual). Refusals, checks and events are [`end_run`]'s.
pub(crate) async fn end_run_and_claim(
    s: &AppState,
    id: &str,
    body: FinishRequest,
    sweep: &str,
    agent: Option<&str>,
    key: Option<&str>,
) -> Result<Option<Box<hyperdial_store::RunRow>>, ApiError> {
    let told = told_point(body.values)?;
    let tell = Tell {
        run_id: id,
        exit_code: body.exit_code.map(i64::from),
        state: body.state.map(|state| state.as_str()),
        error: body.error.as_deref(),
        told: told.as_ref(),
    };
    let (finished, claimed) = match s.controller.tell_and_claim(sweep, agent, key, tell).await? {
        TellClaim::Told(finished, claimed) => (*finished, claimed),
        TellClaim::Separately => {
            let finished = s
                .controller
                .finish_ended_at(
                    id,
                    tell.exit_code,
                    tell.state,
                    tell.error,
                    tell.told,
                    Some(sweep),
                    body.ended_ms,
                )
                .await?;
            (finished, None)
        }
    };
    published_end(s, told.as_ref(), finished);
    Ok(claimed)
}

/// Told values as one metric point (checked as a metric point's are), `None` for none.
fn told_point(values: Map<String, Value>) -> Result<Option<Point>, ApiError> {
    if values.is_empty() {
        return Ok(None);
    }
    Ok(Some(Point {
        step: None,
        time_ms: None,
        values: point_values("values", values)?,
    }))
}

/// Publish the events of a run's end (the told point's metric event, then the finish) and
/// answer the run.
fn published_end(
    s: &AppState,
    told: Option<&Point>,
    finished: crate::controller::Finished,
) -> hyperdial_store::RunRow {
    let run = finished.run;
    if let (Some(told), Some(step)) = (told, finished.told_step) {
        if s.controller.events.active() {
            s.controller.events.publish(
                "metrics",
                run.sweep_id.as_deref(),
                &events::metrics_event(&run, step, std::slice::from_ref(told)),
            );
        }
    }
    s.controller.events.publish(
        "run_finished",
        run.sweep_id.as_deref(),
        &views::run_brief(&run),
    );
    run
}

/// Most characters of one file name in a delivery report.
const MAX_DELIVERY_FILE_CHARS: usize = 4096;

/// `POST /runs/{id}/delivery`: a client reports metric points it could not deliver (spilled
/// to a local file, or dropped), or `hyperdial sync` reports points it uploaded later. The
/// counts add up; the run answers with its `delivery` record.
async fn delivery(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<DeliveryRequest>,
) -> ApiResult {
    if body.files.len() > hyperdial_store::MAX_DELIVERY_FILES
        || body
            .files
            .iter()
            .any(|f| f.is_empty() || f.chars().count() > MAX_DELIVERY_FILE_CHARS)
    {
        return Err(ApiError::bad_request(format!(
            "`files`: at most {} names of 1 to {MAX_DELIVERY_FILE_CHARS} characters",
            hyperdial_store::MAX_DELIVERY_FILES
        )));
    }
    let run = s
        .controller
        .store()
        .add_delivery(&id, body.missing, body.recovered, &body.files)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &id))?;
    s.controller.events.publish(
        "run_updated",
        run.sweep_id.as_deref(),
        &views::run_brief(&run),
    );
    Ok(Json(views::run(&run)).into_response())
}
