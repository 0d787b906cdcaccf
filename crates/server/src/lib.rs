//! # hyperdial-server
//!
//! The HTTP server: the versioned JSON API of `docs/api.md` (described by the OpenAPI document
//! it serves), the controller that hands out runs, and a plain HTML overview of sweeps and
//! runs.
//!
//! Layers, outermost first: panic catcher (a bug answers 500, never kills the server), body
//! size limit, optional bearer-token check, then the routes in [`api`] which call the
//! [`controller`] and the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyperdial_store::Store;
use tokio::net::TcpListener;

pub mod api;
pub mod controller;
mod dashboard;
mod early_stop;
mod error;
mod openapi;

pub use controller::Controller;
pub use error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long a sweep run may stay silent before it is marked crashed.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(60);

/// Server settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Bearer token required on API requests; `None` accepts every request (loopback only).
    pub token: Option<String>,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding beyond loopback without a token would expose the API to the network.
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could run commands through your agents; \
         set --token (or HYPERDIAL_TOKEN), or bind to 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// The socket failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The controller (and through it the store).
    pub controller: Arc<Controller>,
    /// Settings.
    pub options: Arc<Options>,
}

/// The application's router, ready to serve.
pub fn router(store: Store, options: Options) -> Router {
    let state = AppState {
        controller: Arc::new(Controller::new(store)),
        options: Arc::new(options),
    };
    api::routes(state.clone())
        .merge(dashboard::routes())
        .with_state(state)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
}

/// Serve on `listener` until `shutdown` completes. Refuses a non-loopback address without a
/// token. Also runs the janitor that marks silent runs crashed.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && options.token.as_deref().unwrap_or("").is_empty() {
        return Err(ServeError::TokenRequired(addr));
    }
    let janitor_store = store.clone();
    let janitor = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let cutoff = hyperdial_store::now_ms() - SILENCE_LIMIT.as_millis() as i64;
            match janitor_store.crash_silent_runs(cutoff).await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::warn!(runs = ?ids, "marked silent runs crashed")
                }
                Ok(_) => {}
                Err(e) => tracing::error!("janitor: {e}"),
            }
        }
    });
    let app = router(store, options);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    janitor.abort();
    Ok(result?)
}
