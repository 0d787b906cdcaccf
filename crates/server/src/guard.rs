//! What keeps web pages from driving a tokenless server.
//!
//! A server without a token listens on loopback only, but any page the user's browser opens
//! can still reach loopback: directly, with a cross-site "simple" request (a form post or a
//! `text/plain` fetch, sent without asking the server first), or by DNS rebinding (the page's
//! own host name starts resolving to 127.0.0.1, and the browser then treats the server as
//! that page's origin). Two checks close both ways, on every request of a server without a
//! token:
//!
//! - **Host.** The `Host` header must name the server by a loopback address or `localhost`,
//!   with the port it listens on (`127.0.0.1:8337`, `localhost:8337`, `[::1]:8337`), or be one
//!   of the names given with `--allowed-host`. A rebound page sends its own name and is
//!   answered `421`. A request without `Host` (HTTP/1.0) passes: browsers always send one.
//! - **Mutations are JSON.** `POST`, `PUT`, `PATCH` and `DELETE` need
//!   `Content-Type: application/json` or an `X-Hyperdial-Client` header, else `415`. A page
//!   can set neither on a cross-site request without the browser asking the server first (a
//!   CORS preflight), which this server never grants.
//!
//! A server with a token needs neither: a page cannot learn the token, and requests without
//! it are refused.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::path::Path;

use crate::error::{with_db_path, ApiError};
use crate::AppState;

/// The header that marks a request as coming from a hyperdial client rather than a page.
pub const CLIENT_HEADER: &str = "x-hyperdial-client";

/// Whether `host` (a `Host` header value) names this server: a loopback address or
/// `localhost` with `port` (any port when `None`; no port at all only for port 80), or one of
/// `allowed` (`name` matches any port, `name:port` that port, `*` anything).
pub fn host_allowed(host: &str, port: Option<u16>, allowed: &[String]) -> bool {
    let host = host.trim();
    let (name, given_port) = split_host(host);
    let name = name.trim_end_matches('.');
    for a in allowed {
        let a = a.trim();
        if a == "*" || a.eq_ignore_ascii_case(host) {
            return true;
        }
        let (a_name, a_port) = split_host(a);
        if a_port.is_none() && a_name.trim_end_matches('.').eq_ignore_ascii_case(name) {
            return true;
        }
    }
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let port_ok = match (port, given_port) {
        (None, _) => true,
        (Some(p), Some(g)) => g.parse::<u16>() == Ok(p),
        (Some(p), None) => p == 80,
    };
    loopback && port_ok
}

/// `name` and the port text of `name:port` or `[v6]:port`.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => (
                &host[..=end],
                host[end + 1..].strip_prefix(':').filter(|p| !p.is_empty()),
            ),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address without brackets has several colons and no port.
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    }
}

/// Whether a mutation says it is JSON, or comes from a hyperdial client.
fn json_or_client(req: &Request) -> bool {
    if req.headers().contains_key(CLIENT_HEADER) {
        return true;
    }
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_some_and(|essence| essence.eq_ignore_ascii_case("application/json"))
}

/// The checks of a tokenless server (see the module docs), then the request with the
/// database path set for fault messages.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let tokenless = state.options.tokens.is_empty();
    if tokenless {
        if let Some(host) = req.headers().get(header::HOST) {
            let host = String::from_utf8_lossy(host.as_bytes()).into_owned();
            if !host_allowed(&host, state.port, &state.options.allowed_hosts) {
                let port = state
                    .port
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "PORT".into());
                return ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "this server has no token and answers only to loopback names \
                         (127.0.0.1:{port}, localhost:{port}, [::1]:{port}), not `{host}`; \
                         to reach it under another name, start it with `--allowed-host NAME` \
                         (repeatable), or set a token with --token"
                    ),
                )
                .into_response();
            }
        }
        let mutation = matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if mutation && !json_or_client(&req) {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send changes as `Content-Type: application/json` (or with an \
                 `X-Hyperdial-Client` header): this server has no token, so it refuses \
                 requests that a web page could send",
            )
            .into_response();
        }
    }
    let db = state.controller.store().path().map(Path::to_path_buf);
    with_db_path(db, next.run(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_the_bound_port_pass() {
        let none: Vec<String> = Vec::new();
        for ok in [
            "127.0.0.1:8337",
            "localhost:8337",
            "LOCALHOST:8337",
            "localhost.:8337",
            "[::1]:8337",
            "127.0.0.2:8337",
        ] {
            assert!(host_allowed(ok, Some(8337), &none), "{ok}");
        }
        for bad in [
            "evil.example:8337",
            "127.0.0.1:9999",
            "localhost",
            "localhost.evil.example:8337",
            "10.0.0.2:8337",
            "[::2]:8337",
            "",
            "127.0.0.1:8337:1",
        ] {
            assert!(!host_allowed(bad, Some(8337), &none), "{bad}");
        }
        assert!(host_allowed("localhost", Some(80), &none));
        assert!(host_allowed("localhost:1234", None, &none));
    }

    #[test]
    fn allowed_hosts_extend_the_list() {
        let allowed = vec!["box.lan".to_string(), "tunnel:9000".to_string()];
        assert!(host_allowed("box.lan:8337", Some(8337), &allowed));
        assert!(host_allowed("BOX.LAN:1", Some(8337), &allowed));
        assert!(host_allowed("tunnel:9000", Some(8337), &allowed));
        assert!(!host_allowed("tunnel:9001", Some(8337), &allowed));
        assert!(!host_allowed("other:8337", Some(8337), &allowed));
        assert!(host_allowed("anything:1", Some(8337), &["*".to_string()]));
    }
}
