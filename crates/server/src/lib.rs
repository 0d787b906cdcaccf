//! # hyperdial-server
//!
//! The HTTP server: the versioned JSON API of `docs/api.md` (described by the OpenAPI document
//! it serves), the controller that hands out runs, and a plain HTML overview of sweeps and
//! runs.
//!
//! Layers, outermost first: the request log of refusals and state changes ([`requests`]),
//! panic catcher (a bug answers 500, never kills the server), body
//! size limit, the [`guard`] of tokenless servers (`Host` check against DNS rebinding, JSON
//! mutations only), optional bearer-token check, then the routes in [`api`] which call the
//! [`controller`] and the store. Store errors become answers in [`ApiError`]: a storage fault
//! is a `503` naming its cause, never a silent success.
//!
//! With [`Options::tls`] the server speaks HTTPS only ([`tls`]); off loopback it warns when it
//! does not, since the token would cross the network in clear.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyperdial_store::Store;
use tokio::net::TcpListener;

pub mod api;
pub mod connections;
pub mod controller;
mod dashboard;
pub mod early_stop;
mod error;
mod estimate;
pub mod fanout;
pub mod guard;
pub mod memory;
pub mod noise;
pub mod openapi;
pub mod requests;
pub mod tls;
pub mod tokens;

pub use controller::Controller;
pub use error::ApiError;
pub use tls::{TlsConfig, TlsError};
pub use tokens::Tokens;

/// Largest request body accepted, in bytes (8 MiB): the one request-size limit of the API
/// (`docs/api.md`). It is enforced by a single layer for every route, JSON extractors
/// included (axum's own 2 MiB default is lifted to it), and both clients split their batches
/// to stay below it (`hyperdial_agent::client::MAX_REQUEST_BYTES`, `MAX_REQUEST_BYTES` of the
/// Python client's `_settings.py`). A larger body answers `413` with `{"error", "limit_bytes"}`.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long a sweep run may stay silent before it is marked crashed, unless
/// [`Options::run_timeout`] says otherwise (`--run-timeout`, `HYPERDIAL_RUN_TIMEOUT`).
pub const SILENCE_LIMIT: Duration = Duration::from_secs(60);

/// Longest pause between two looks of the janitor; it looks 4 times per silence limit when
/// that is shorter than 40 s.
pub const JANITOR_INTERVAL: Duration = Duration::from_secs(10);

/// Shortest silence limit accepted (agents send a heartbeat every 2 s).
pub const MIN_RUN_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the janitor looks for silent runs, for a silence limit of `limit`: every
/// [`JANITOR_INTERVAL`], or a quarter of `limit` when that is shorter (at least 250 ms). A
/// silent run is therefore marked crashed between `limit` and `limit` + this interval after
/// its last report.
pub fn janitor_interval(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(250), JANITOR_INTERVAL)
}

/// After the shutdown signal, how long requests in flight may take before the server stops
/// anyway (a dashboard's live event stream never ends on its own).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Server settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Bearer tokens accepted on API requests (any one of them); none accepts every request
    /// (loopback only). Shared: replacing them ([`Tokens::replace`]) takes effect at once.
    pub tokens: Tokens,
    /// Further `Host` names a server without a token answers to, besides loopback addresses
    /// and `localhost` on its port: `name` (any port), `name:port`, or `*` (any name).
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// How long a sweep run may stay silent (no heartbeat, metrics or output) before it is
    /// marked `crashed` and retried; `None`: [`SILENCE_LIMIT`]. Values below
    /// [`MIN_RUN_TIMEOUT`] are raised to it.
    pub run_timeout: Option<Duration>,
    /// The PostgreSQL database this server shares with other servers (`postgres://…`): live
    /// events are passed between them through it ([`fanout`]). `None` (SQLite): this server
    /// is the only one.
    pub events_url: Option<String>,
}

impl Options {
    /// The silence limit in force: [`Options::run_timeout`] or [`SILENCE_LIMIT`].
    pub fn silence_limit(&self) -> Duration {
        self.run_timeout
            .map(|t| t.max(MIN_RUN_TIMEOUT))
            .unwrap_or(SILENCE_LIMIT)
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding beyond loopback without a token would expose the API to the network.
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could run commands through your agents; \
         set --token (or HYPERDIAL_TOKEN) or --token-file, or bind to 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// The socket failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The live events shared with other servers cannot be set up.
    #[error(transparent)]
    Fanout(#[from] fanout::FanoutError),
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The controller (and through it the store).
    pub controller: Arc<Controller>,
    /// Settings.
    pub options: Arc<Options>,
    /// The port the server listens on, which `Host` headers must name (any port when `None`).
    pub port: Option<u16>,
}

/// The application's router, ready to serve.
pub fn router(store: Store, options: Options) -> Router {
    app(AppState {
        controller: Arc::new(Controller::new(store)),
        options: Arc::new(options),
        port: None,
    })
}

fn app(state: AppState) -> Router {
    api::routes(state.clone())
        .merge(dashboard::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(api::json_errors))
        .layer(compression())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn(requests::log))
}

/// Answers of at least 1 KiB are compressed (gzip or brotli, whichever the client accepts, at
/// level 4: most of the size gain of the top levels at a fraction of their CPU); the live event
/// stream never is, since compressing it would hold events back until a buffer fills.
fn compression(
) -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
    tower_http::compression::CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Precise(4))
        .compress_when(
            SizeAbove::new(1024)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE),
        )
}

/// A path no route serves: `404` with a JSON body, as every error answer has.
pub(crate) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!(
            "no route {}; the API's routes are listed at /api/v1/openapi.json",
            shown_path(&uri)
        ),
    )
}

/// A route asked with a method it does not take: `405` with a JSON body.
pub(crate) async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not allowed on {}; the API's routes and their methods are listed at \
             /api/v1/openapi.json",
            shown_path(&uri)
        ),
    )
}

/// A request's path for an error message, cut to 200 characters.
fn shown_path(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    match path.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &path[..cut]),
        None => path.to_string(),
    }
}

/// Mark runs not heard from since `cutoff_ms` as crashed (their error names the silence
/// `limit` when no agent ran them), and tell the dashboards watching.
async fn crash_silent_runs(controller: &Controller, cutoff_ms: i64, limit: Duration) {
    match controller.store().crash_silent_runs(cutoff_ms, limit).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!(runs = ?ids, "marked silent runs crashed");
            after_crash(controller, ids).await;
        }
        Ok(_) => {}
        Err(e) => error::log_store_error("janitor: ", &e),
    }
}

/// Mark the running runs of agents known to be gone ([`hyperdial_procid::gone`]: an agent
/// process on this machine that no longer exists) crashed at once, without waiting for the
/// silence limit.
async fn crash_runs_of_gone_agents(controller: &Controller) {
    let store = controller.store();
    let agents = match store.running_agent_processes().await {
        Ok(agents) => agents,
        Err(e) => return error::log_store_error("janitor: ", &e),
    };
    let orphaned: Vec<String> = agents
        .into_iter()
        .filter(|(key, _)| hyperdial_procid::gone(key))
        .flat_map(|(_, ids)| ids)
        .collect();
    if orphaned.is_empty() {
        return;
    }
    match store
        .crash_runs(
            &orphaned,
            hyperdial_wire::EndCause::AgentGone,
            hyperdial_store::AGENT_PROCESS_GONE,
        )
        .await
    {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!("{}", gone_agents_message(&ids));
            after_crash(controller, ids).await;
        }
        Ok(_) => {}
        Err(e) => error::log_store_error("janitor: ", &e),
    }
}

/// What the log says of runs marked crashed because their agent's process is gone: which,
/// why, and what happens to them (a sweep's `retry` runs crashed runs again by default).
fn gone_agents_message(ids: &[String]) -> String {
    let (count, listed) = match ids.len() {
        1 => ("1 run".to_string(), ids[0].clone()),
        n if n <= 5 => (format!("{n} runs"), ids.join(", ")),
        n => (format!("{n} runs"), format!("{}, …", ids[..5].join(", "))),
    };
    format!(
        "marked {count} crashed ({listed}): the agent process running them on this machine is \
         gone (killed, or its machine restarted); each sweep's `retry` decides whether they run \
         again (by default a crashed run is retried once)"
    )
}

/// Tell the dashboards watching about runs just marked crashed, and queue their retries.
async fn after_crash(controller: &Controller, ids: Vec<String>) {
    let store = controller.store();
    let mut sweeps: Vec<String> = Vec::new();
    for id in ids {
        if let Ok(Some(run)) = store.run(&id).await {
            // Published even without subscribers: it also wakes the claims parked on the sweep.
            controller.events.publish(
                "run_finished",
                run.sweep_id.as_deref(),
                &api::views::run_brief(&run),
            );
            if let Some(sweep) = run.sweep_id {
                if !sweeps.contains(&sweep) {
                    sweeps.push(sweep);
                }
            }
        }
    }
    // Crashed runs are retried by default: queue them now, visible before an agent asks.
    for sweep in sweeps {
        match controller.queue_retries(&sweep).await {
            Ok(_) => {}
            Err(controller::ControlError::Store(e)) => error::log_store_error(
                &format!("janitor: cannot queue the retries of sweep {sweep}: "),
                &e,
            ),
            Err(e) => tracing::error!("janitor: cannot queue the retries of sweep {sweep}: {e}"),
        }
    }
}

/// The heartbeat time before which a running sweep run counts as crashed, at `now_ms`, for a
/// server that could record heartbeats since `heard_since_ms` (both ms since the Unix epoch)
/// with the silence limit `limit` ([`Options::silence_limit`]); `None` while that has been
/// for less than `limit`.
///
/// A run is silent only if the server could have heard from it: while the server was down,
/// or up with its database failing (down, full, read-only: every heartbeat answered `503`),
/// agents and clients kept their runs going and retried, so after a restart or the last
/// storage fault every run gets a full silence limit to report again before it is marked
/// crashed (and retried), instead of being crashed at the first look because its last
/// heartbeat predates the outage. `heard_since_ms` is the later of the server's start and the
/// first round of the janitor after the last storage fault
/// ([`hyperdial_store::last_fault_ms`]): with the database down, every round's own reads fail
/// too, so the first round that sees no new fault comes after the database is back (when only
/// writes fail, the refused heartbeats are the faults).
pub fn silence_cutoff(now_ms: i64, heard_since_ms: i64, limit: Duration) -> Option<i64> {
    let limit = limit.as_millis() as i64;
    (now_ms - heard_since_ms >= limit).then_some(now_ms - limit)
}

/// Serve on `listener` until `shutdown` completes: HTTPS when [`Options::tls`] is set, else
/// plain HTTP. Refuses a non-loopback address without a token, and warns (log level `warn`)
/// when it serves one without TLS. Also runs the janitor that marks silent runs crashed.
///
/// Shutdown is graceful: no new connections, requests in flight finish (for at most
/// [`SHUTDOWN_GRACE`]), then the store is closed, so its write-ahead log is checkpointed.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && options.tokens.is_empty() {
        return Err(ServeError::TokenRequired(addr));
    }
    if !addr.ip().is_loopback() && options.tls.is_none() {
        tracing::warn!(
            "serving {addr} without TLS: the token and all data cross the network in clear; \
             pass --tls-cert and --tls-key (or keep the network private)"
        );
    }
    let limit = options.silence_limit();
    let tls = options.tls.clone();
    let mut controller = Controller::new(store);
    let fanout = match &options.events_url {
        Some(url) => {
            let fanout = fanout::PgFanout::start(url, &hyperdial_store::new_id("srv"))?;
            controller.events = api::events::Bus::with_fanout(fanout.clone());
            tracing::info!(
                server = fanout.server(),
                "live events are shared with any other server of this database (nothing is \
                 sent while this one is alone)"
            );
            Some(fanout)
        }
        None => None,
    };
    let state = AppState {
        controller: Arc::new(controller),
        options: Arc::new(options),
        port: Some(addr.port()),
    };
    let listening = fanout.map(|f| f.listen(state.controller.clone()));
    let controller = state.controller.clone();
    let started_ms = hyperdial_store::now_ms();
    let janitor = tokio::spawn(async move {
        let mut tick = tokio::time::interval(janitor_interval(limit));
        // The silence clock starts at the server's start, and again at the first round after
        // a storage fault: the outage may have ended only just, with heartbeats queued behind
        // this round's statements, and its last fault may date from well before its end.
        let mut heard_since = started_ms;
        let mut last_fault = hyperdial_store::last_fault_ms();
        loop {
            tick.tick().await;
            let fault = hyperdial_store::last_fault_ms();
            if fault != last_fault {
                last_fault = fault;
                heard_since = heard_since.max(hyperdial_store::now_ms());
            }
            crash_runs_of_gone_agents(&controller).await;
            if let Some(cutoff) = silence_cutoff(hyperdial_store::now_ms(), heard_since, limit) {
                crash_silent_runs(&controller, cutoff, limit).await;
            }
        }
    });
    let trimmer = tokio::spawn(memory::trim_every(memory::TRIM_INTERVAL));
    let store = state.controller.store().clone();
    let bus = state.controller.events.clone();
    let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        // Parked claims answer at once instead of holding the shutdown for their wait, and
        // open dashboards' event streams end.
        bus.shut_down();
        let _ = begun_tx.send(());
    };
    let app = app(state);
    let server = async move {
        match tls {
            Some(tls) => {
                let listener = tls::TlsListener::new(listener, &tls)?;
                connections::serve(listener, app, shutdown).await;
            }
            None => connections::serve(listener, app, shutdown).await,
        }
        Ok::<(), std::io::Error>(())
    };
    let overdue = async {
        if begun_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = server => result,
        () = overdue => {
            tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after the shutdown signal; closing anyway");
            Ok(())
        }
    };
    janitor.abort();
    let _ = janitor.await;
    trimmer.abort();
    let _ = trimmer.await;
    if let Some(listening) = listening {
        listening.abort();
        let _ = listening.await;
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, store.close())
        .await
        .is_err()
    {
        tracing::warn!("the database did not close within {SHUTDOWN_GRACE:?}");
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Claim;
    use hyperdial_store::{NewRun, NewSweep};

    #[test]
    fn the_gone_agents_line_names_the_runs_and_what_happens_to_them() {
        let ids: Vec<String> = (1..=7).map(|i| format!("r{i}")).collect();
        let one = gone_agents_message(&ids[..1]);
        assert!(one.starts_with("marked 1 run crashed (r1): "), "{one}");
        let many = gone_agents_message(&ids);
        assert!(
            many.starts_with("marked 7 runs crashed (r1, r2, r3, r4, r5, …): "),
            "{many}"
        );
        assert!(many.contains("`retry`"), "{many}");
    }

    #[test]
    fn runs_get_a_full_silence_limit_after_the_server_starts() {
        let limit = SILENCE_LIMIT.as_millis() as i64;
        let start = 1_000_000;
        let cutoff = |now| silence_cutoff(now, start, SILENCE_LIMIT);
        assert_eq!(cutoff(start), None);
        assert_eq!(cutoff(start + limit - 1), None);
        assert_eq!(cutoff(start + limit), Some(start));
        assert_eq!(cutoff(start + 5 * limit), Some(start + 4 * limit));
        // A shorter limit set by the operator.
        let short = Duration::from_secs(5);
        assert_eq!(silence_cutoff(start + 4_999, start, short), None);
        assert_eq!(
            silence_cutoff(start + 6_000, start, short),
            Some(start + 1_000)
        );
    }

    #[test]
    fn the_janitor_looks_often_enough_for_the_limit() {
        assert_eq!(janitor_interval(SILENCE_LIMIT), JANITOR_INTERVAL);
        assert_eq!(
            janitor_interval(Duration::from_secs(8)),
            Duration::from_secs(2)
        );
        assert_eq!(
            janitor_interval(Duration::from_millis(100)),
            Duration::from_millis(250)
        );
        let options = Options {
            run_timeout: Some(Duration::from_millis(10)),
            ..Default::default()
        };
        assert_eq!(options.silence_limit(), MIN_RUN_TIMEOUT);
        assert_eq!(Options::default().silence_limit(), SILENCE_LIMIT);
    }

    #[tokio::test]
    async fn a_run_crashed_by_the_janitor_reaches_live_dashboards() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
            .await
            .unwrap();
        let sweep = store
            .insert_sweep(NewSweep {
                project: "default",
                name: Some("s"),
                method: "random",
                source: "method: random",
                source_file: None,
                config_hash: "h",
                seed: 1,
                metric_name: Some("loss"),
                goal: Some("minimize"),
            })
            .await
            .unwrap();
        let run = store
            .insert_run(NewRun {
                sweep_id: Some(sweep.id.clone()),
                project: "default".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let controller = Controller::new(store);
        let mut rx = controller.events.subscribe();
        crash_silent_runs(&controller, hyperdial_store::now_ms() + 1000, SILENCE_LIMIT).await;
        let event = rx.try_recv().expect("an event");
        assert_eq!(event.kind, "run_finished");
        assert_eq!(event.sweep.as_deref(), Some(sweep.id.as_str()));
        assert_eq!(event.data["id"], run.id.as_str());
        assert_eq!(event.data["state"], "crashed");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_run_crashed_by_the_janitor_is_queued_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
            .await
            .unwrap();
        let controller = Controller::new(store.clone());
        let source = "program: t.py\nmethod: grid\nparameters:\n  a: {values: [1, 2]}\n";
        let sweep = controller
            .create_sweep(source, None, None, false, Some(1))
            .await
            .unwrap()
            .sweep;
        let Claim::Run(run) = controller.claim(&sweep.id, None).await.unwrap() else {
            panic!("no run");
        };
        crash_silent_runs(&controller, hyperdial_store::now_ms() + 1000, SILENCE_LIMIT).await;
        let (runs, _) = store
            .runs(&hyperdial_store::RunFilter {
                sweep: Some(sweep.id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].state, hyperdial_store::RunState::Crashed);
        assert_eq!(runs[1].state, hyperdial_store::RunState::Queued);
        assert_eq!(runs[1].retry_of.as_deref(), Some(run.id.as_str()));
        assert_eq!(runs[1].params, run.params);
        assert!(runs[1].agent_id.is_none() && runs[1].started_ms.is_none());
        // The next claim hands out that retry.
        let Claim::Run(next) = controller.claim(&sweep.id, None).await.unwrap() else {
            panic!("no run");
        };
        assert_eq!((next.id.as_str(), next.attempt), (runs[1].id.as_str(), 2));
        std::fs::remove_dir_all(dir).ok();
    }
}
