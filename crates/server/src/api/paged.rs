//! Long listings sent while they are read, so the server's memory follows one page, not the
//! whole answer: every run of a 10,000-run sweep (`GET /api/v1/runs?limit=100000`) and the
//! sweep export (`GET /api/v1/sweeps/{id}/export`).
//!
//! The first page is read before the answer starts, so a request that fails at once (unknown
//! sweep, storage fault) still gets its status and error body. The rest is read [`PAGE`] runs
//! at a time as the client takes the body; a page that cannot be read then ends the body
//! early (the client sees a truncated answer and a connection error, never a complete-looking
//! one). Pages are read at successive offsets of the same order, so a run that moves while the
//! listing is sent (a live sweep sorted by metric) may appear at its old or its new place.

use std::future::Future;
use std::pin::Pin;

use axum::body::{Body, Bytes};
use futures_util::{stream, StreamExt};

use crate::error::ApiError;

/// Runs per page of a listing sent in pages.
pub const PAGE: i64 = 500;

/// What a page source answers: the next chunk of the body, or `None` at the end.
pub(crate) type Chunk = Result<Option<Vec<u8>>, ApiError>;

/// A source of body chunks, each produced on demand.
pub(crate) trait Pages: Send + 'static {
    /// The next chunk of the body (`None` when the body is complete).
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Chunk> + Send + '_>>;
}

/// A body that asks `pages` for its chunks as the client reads them.
pub(crate) fn body(pages: impl Pages) -> Body {
    let chunks = stream::unfold(Some(pages), |state| async move {
        let mut pages = state?;
        match pages.next().await {
            Ok(Some(bytes)) => Some((Ok(Bytes::from(bytes)), Some(pages))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e.message(), "a listing ended early: a page could not be read");
                Some((Err(std::io::Error::other(e.message().to_string())), None))
            }
        }
    });
    // Fused: a body wrapper (the compression layer) may poll again after the end, which an
    // `unfold` stream does not allow.
    Body::from_stream(chunks.fuse())
}
