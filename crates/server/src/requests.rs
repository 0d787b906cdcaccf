//! The request log for operators, at log level `info` under the target
//! `hyperdial_server::requests` (`HYPERDIAL_LOG=info`, or
//! `HYPERDIAL_LOG=warn,hyperdial_server::requests=info` for this log alone).
//!
//! Two kinds of requests get a line, each with the method, the path (never the query), the
//! status and the client's address:
//!
//! - **refused** ones: `401` (missing or wrong token), `403`, `413` (body too large), `415`
//!   and `421` (the checks of a tokenless server, [`crate::guard`]);
//! - **state changes** an operator may have to trace: a sweep created, paused, resumed,
//!   stopped or cancelled, runs retried or queued as repeats. A handler marks its answer with
//!   an [`Action`] saying what it did.
//!
//! The token is never logged: no header is.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

/// What a request changed, in words (`sweep k3x9q2ab paused`), put on its answer by the
/// handler for the request log.
#[derive(Debug, Clone)]
pub struct Action(pub String);

impl Action {
    /// Mark `response` as having done `what`.
    pub fn mark(mut response: Response, what: impl Into<String>) -> Response {
        response.extensions_mut().insert(Action(what.into()));
        response
    }
}

/// Whether an answer with `status` is a refusal worth a line in the log.
pub fn is_refusal(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403 | 413 | 415 | 421)
}

/// The address of the client a connection came from, as the request log shows it; set on
/// every request by `serve` (plain or TLS listener) through axum's `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct Remote(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Remote {
        Remote(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Remote {
        Remote(*stream.remote_addr())
    }
}

/// Longest path written to the log, in characters.
const MAX_PATH_CHARS: usize = 200;

/// Log the request when it was refused or changed something (see the module docs).
pub(crate) async fn log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(MAX_PATH_CHARS).collect();
    let remote = req
        .extensions()
        .get::<ConnectInfo<Remote>>()
        .map(|ConnectInfo(Remote(addr))| addr.to_string())
        .unwrap_or_else(|| "-".to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    if let Some(Action(what)) = response.extensions().get::<Action>() {
        tracing::info!(%method, path, status, remote, "{what}");
    } else if is_refusal(response.status()) {
        tracing::info!(%method, path, status, remote, "refused");
    }
    response
}
