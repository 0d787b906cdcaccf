//! The dashboard: a single-page app (TypeScript, built by Vite from `web/` into `web/dist`,
//! which is committed) embedded into the binary by `build.rs`. `/`, `/sweeps/{id}`, `/runs`,
//! `/runs/{id}` and `/compare` answer the app's `index.html` (the app routes on the client);
//! `/assets/…` answers the embedded file with its content type. Nothing a request names
//! reaches the filesystem: lookups go through the compiled-in table only.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));
}

/// The content security policy of the dashboard's pages: only its own scripts and API.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>hyperdial</title>\
<p>This hyperdial binary was built without its dashboard (web/dist was missing). \
Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, then rebuild. \
The API is at <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/sweeps/{id}", get(index))
        .route("/runs", get(index))
        .route("/runs/{id}", get(index))
        .route("/compare", get(index))
        .route("/assets/{*file}", get(asset))
        .route("/favicon.svg", get(favicon))
}

/// An embedded file by its URL path.
pub fn lookup(path: &str) -> Option<(&'static str, &'static [u8])> {
    assets::ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, t, b)| (*t, *b))
}

fn respond(content_type: &'static str, body: &'static [u8], immutable: bool) -> Response {
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    match lookup("/index.html") {
        Some((t, b)) => respond(t, b, false),
        None => respond("text/html; charset=utf-8", NOT_BUILT.as_bytes(), false),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    match lookup(&format!("/assets/{file}")) {
        // Vite names assets by content hash, so they never change under one name.
        Some((t, b)) => respond(t, b, true),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

async fn favicon() -> Response {
    match lookup("/favicon.svg") {
        Some((t, b)) => respond(t, b, false),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
