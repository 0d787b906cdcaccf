//! Live events for the dashboard: `GET /api/v1/events?sweep=ID` as server-sent events.
//!
//! The controller owns a [`Bus`], a bounded tokio broadcast channel. Handlers publish after
//! each change (a run created, metric points appended, a run finished, a sweep's state
//! changed); every subscriber gets every event of its sweep (or of all sweeps without
//! `?sweep`). A subscriber that falls more than [`CAPACITY`] events behind gets one `resync`
//! event instead of the ones it missed, and reloads what it shows. Metric events carry at most
//! [`MAX_EVENT_POINTS`] points per batch (the newest); clients that need every point fetch the
//! history. A comment line every 15 s keeps idle connections open through proxies.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use hyperdial_wire::api::{EventPoint, Hello, MetricsEvent, Resync};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::AppState;

/// Events a slow subscriber may fall behind before it is told to resync.
pub const CAPACITY: usize = 1024;

/// Most subscribers at once.
pub const MAX_SUBSCRIBERS: usize = 256;

/// Most metric points carried by one event.
pub const MAX_EVENT_POINTS: usize = 100;

/// One live event.
#[derive(Debug, Clone)]
pub struct Event {
    /// `sweep`, `run_created`, `run_updated`, `run_finished` or `metrics`.
    pub kind: &'static str,
    /// The sweep it concerns, if any.
    pub sweep: Option<String>,
    /// The payload (JSON).
    pub data: Value,
}

/// The broadcast channel of live events.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    /// A bus with room for [`CAPACITY`] events per subscriber.
    pub fn new() -> Self {
        Bus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// Whether anyone listens (so publishers can skip building payloads).
    pub fn active(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publish an event whose payload is `data` as JSON (a wire type of
    /// `hyperdial_wire::api`); without subscribers it is dropped before it is encoded.
    pub fn publish<T: Serialize + ?Sized>(
        &self,
        kind: &'static str,
        sweep: Option<&str>,
        data: &T,
    ) {
        if self.active() {
            let Ok(data) = serde_json::to_value(data) else {
                tracing::error!("live event {kind}: its payload cannot be encoded");
                return;
            };
            let _ = self.tx.send(Arc::new(Event {
                kind,
                sweep: sweep.map(str::to_string),
                data,
            }));
        }
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Current number of subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    sweep: Option<String>,
}

fn sse_event<T: Serialize>(kind: &str, data: &T) -> SseEvent {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    SseEvent::default().event(kind).data(data)
}

/// The SSE stream.
pub(crate) async fn events(
    State(s): State<AppState>,
    super::Params(q): super::Params<EventsQuery>,
) -> Response {
    let bus = s.controller.events.clone();
    if bus.subscribers() >= MAX_SUBSCRIBERS {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many live-event subscribers (at most {MAX_SUBSCRIBERS}); try again later"),
        )
        .into_response();
    }
    let rx = bus.subscribe();
    let filter = q.sweep;
    let hello = sse_event(
        "hello",
        &Hello {
            sweep: filter.clone(),
        },
    );
    let first = stream::once(async move { Ok::<_, Infallible>(hello) });
    let rest = live(rx, filter);
    Sse::new(futures_util::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn live(
    rx: broadcast::Receiver<Arc<Event>>,
    filter: Option<String>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let wanted = match (&filter, &ev.sweep) {
                        (None, _) => true,
                        (Some(f), Some(s)) => f == s,
                        (Some(_), None) => false,
                    };
                    if wanted {
                        let out = sse_event(ev.kind, &ev.data);
                        return Some((Ok(out), (rx, filter)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let out = sse_event("resync", &Resync { missed: n });
                    return Some((Ok(out), (rx, filter)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// The `metrics` event of a batch: the run after it and the batch's newest points, with the
/// steps the store gave them (`next_step` is the run's counter before the batch).
pub fn metrics_event(
    after: &hyperdial_store::RunRow,
    next_step: i64,
    points: &[hyperdial_store::Point],
) -> MetricsEvent {
    let mut next = next_step;
    let mut out: Vec<EventPoint> = points
        .iter()
        .map(|p| {
            let step = p.step.unwrap_or(next);
            next = next.max(step + 1);
            let values: serde_json::Map<String, Value> = p
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.map(Value::from).unwrap_or(Value::Null)))
                .collect();
            EventPoint { step, values }
        })
        .collect();
    let skip = out.len().saturating_sub(MAX_EVENT_POINTS);
    let truncated = skip > 0;
    out.drain(..skip);
    MetricsEvent {
        run: super::views::run_brief(after),
        points: out,
        truncated,
    }
}
