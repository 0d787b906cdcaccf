//! Live events for the dashboard: `GET /api/v1/events?sweep=ID` as server-sent events (an
//! unknown `ID` is a `404`, see [`super::query::existing_sweep`]).
//!
//! The controller owns a [`Bus`], a bounded tokio broadcast channel. Handlers publish after
//! each change (a run created, metric points appended, a run finished, a sweep's state
//! changed); every subscriber gets every event of its sweep (or of all sweeps without
//! `?sweep`). A subscriber that falls more than [`CAPACITY`] events behind gets one `resync`
//! event instead of the ones it missed, and reloads what it shows. Metric events carry at most
//! [`MAX_EVENT_POINTS`] points per batch (the newest); clients that need every point fetch the
//! history. A comment line every 15 s keeps idle connections open through proxies.
//!
//! Several servers on one database: a [`Bus`] may carry a [`Fanout`], which hands a compact
//! [`Notice`] of every published event (kind, sweep, id; never metric points) to the other
//! servers, and [`Bus::deliver`] gives this process's subscribers what arrives from them.
//! The bus itself knows nothing of how notices travel; `crate::fanout` sends them through
//! PostgreSQL's `LISTEN`/`NOTIFY`.
//!
//! The bus also wakes parked claims ([`super::claim`]): every event it publishes, and every
//! notice from another server ([`Bus::wake_claims`]), reaches [`ClaimWaits::wake`] whether or
//! not anyone subscribes.

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

use super::claim::ClaimWaits;
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
    /// `sweep`, `run_created`, `run_updated`, `run_finished`, `metrics` or `resync`.
    pub kind: &'static str,
    /// The sweep it concerns, if any.
    pub sweep: Option<String>,
    /// The payload (JSON).
    pub data: Value,
}

/// The compact form of an event that other servers receive: enough to find what changed in
/// the database, small enough for any transport (a few hundred bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The event's kind (see [`Event::kind`]).
    pub kind: &'static str,
    /// The sweep it concerns, if any.
    pub sweep: Option<String>,
    /// The id of the run (run and `metrics` events) or sweep (`sweep` events) it concerns.
    pub id: Option<String>,
}

impl Notice {
    /// The notice of an event: the id is the payload's `id`, or `run.id` for `metrics`.
    pub fn of(kind: &'static str, sweep: Option<&str>, data: &Value) -> Notice {
        let id = match kind {
            "metrics" => data["run"]["id"].as_str(),
            _ => data["id"].as_str(),
        };
        Notice {
            kind,
            sweep: sweep.map(str::to_string),
            id: id.map(str::to_string),
        }
    }
}

/// Where published events go besides this process's subscribers: the other servers sharing
/// the database. `send` must not block (it is called from request handlers); a fan-out that
/// cannot deliver a notice must make sure the receivers get a `resync` later instead.
pub trait Fanout: Send + Sync + 'static {
    /// Pass on the notice of an event published here.
    fn send(&self, notice: Notice);
}

/// The broadcast channel of live events.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    fanout: Option<Arc<dyn Fanout>>,
    claims: Arc<ClaimWaits>,
    /// `true` once the server shuts down: every live stream ends then ([`Bus::shut_down`]).
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("subscribers", &self.subscribers())
            .field("fanout", &self.fanout.is_some())
            .field("parked_claims", &self.claims.parked())
            .finish()
    }
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
            fanout: None,
            claims: Arc::default(),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// A bus that also passes every published event to `fanout`.
    pub fn with_fanout(fanout: Arc<dyn Fanout>) -> Self {
        Bus {
            fanout: Some(fanout),
            ..Bus::new()
        }
    }

    /// Whether anyone may listen, here or on another server (so publishers can skip building
    /// payloads).
    pub fn active(&self) -> bool {
        self.fanout.is_some() || self.local()
    }

    /// Whether a subscriber of this process listens.
    pub fn local(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Whether events are shared with other servers (a fan-out is set).
    pub fn shared(&self) -> bool {
        self.fanout.is_some()
    }

    /// The claims parked on this server, which this bus wakes.
    pub fn claim_waits(&self) -> Arc<ClaimWaits> {
        self.claims.clone()
    }

    /// Wake the claims parked on `sweep` for an event of `kind` that did not come through
    /// [`Bus::publish`] (a notice from another server, a `resync`).
    pub fn wake_claims(&self, kind: &str, sweep: Option<&str>) {
        self.claims.wake(kind, sweep);
    }

    /// Publish an event whose payload is `data` as JSON (a wire type of
    /// `hyperdial_wire::api`): to this process's subscribers and, with a fan-out, as a
    /// [`Notice`] to the other servers. Without either it is dropped before it is encoded.
    pub fn publish<T: Serialize + ?Sized>(
        &self,
        kind: &'static str,
        sweep: Option<&str>,
        data: &T,
    ) {
        self.claims.wake(kind, sweep);
        if !self.active() {
            return;
        }
        let Ok(data) = serde_json::to_value(data) else {
            tracing::error!("live event {kind}: its payload cannot be encoded");
            return;
        };
        if let Some(fanout) = &self.fanout {
            fanout.send(Notice::of(kind, sweep, &data));
        }
        self.deliver(kind, sweep, data);
    }

    /// Give an event to this process's subscribers only (an event that came from another
    /// server, or a `resync`); without subscribers it is dropped.
    pub fn deliver(&self, kind: &'static str, sweep: Option<&str>, data: Value) {
        if self.local() {
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

    /// At shutdown: answer the parked claims at once ([`ClaimWaits::close`]) and end every
    /// live event stream, now and from now on, so that neither a claim's wait nor an open
    /// dashboard (whose stream never ends by itself) holds the server for its grace period.
    /// The dashboard reconnects to the next server that answers.
    pub fn shut_down(&self) {
        self.claims.close();
        self.closing.send_replace(true);
    }
}

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    sweep: Option<String>,
}

impl super::QueryParams for EventsQuery {
    const PARAMS: &'static [super::Param] = &[super::Param {
        name: "sweep",
        form: "a sweep id (only that sweep's events)",
    }];
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
    if let Some(sweep) = &q.sweep {
        let param = super::query::param::<EventsQuery>("sweep");
        if let Err(e) = super::query::existing_sweep(&s.controller, param, sweep).await {
            return e.into_response();
        }
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
    let rest = live(rx, filter, bus.closing.subscribe());
    Sse::new(futures_util::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn live(
    rx: broadcast::Receiver<Arc<Event>>,
    filter: Option<String>,
    closing: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(
        (rx, filter, closing),
        |(mut rx, filter, mut closing)| async move {
            loop {
                let received = tokio::select! {
                    received = rx.recv() => received,
                    _ = closing.wait_for(|closed| *closed) => return None,
                };
                match received {
                    Ok(ev) => {
                        let wanted = match (&filter, &ev.sweep) {
                            (None, _) => true,
                            // A resync without a sweep concerns every subscriber.
                            (Some(_), None) if ev.kind == "resync" => true,
                            (Some(f), Some(s)) => f == s,
                            (Some(_), None) => false,
                        };
                        if wanted {
                            let out = sse_event(ev.kind, &ev.data);
                            return Some((Ok(out), (rx, filter, closing)));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let out = sse_event("resync", &Resync { missed: n });
                        return Some((Ok(out), (rx, filter, closing)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use serde_json::json;
    use std::sync::Mutex;

    /// A fan-out that keeps what it is given.
    #[derive(Default)]
    struct Kept(Mutex<Vec<Notice>>);

    impl Fanout for Kept {
        fn send(&self, notice: Notice) {
            self.0.lock().unwrap().push(notice);
        }
    }

    #[tokio::test]
    async fn a_fanout_gets_a_notice_of_every_published_event_and_none_of_the_delivered() {
        let kept = Arc::new(Kept::default());
        let bus = Bus::with_fanout(kept.clone());
        // Without subscribers here, other servers may still listen.
        assert!(bus.active() && !bus.local());
        bus.publish(
            "run_created",
            Some("s1"),
            &json!({"id": "r1", "state": "running"}),
        );
        bus.publish(
            "metrics",
            Some("s1"),
            &json!({"run": {"id": "r1"}, "points": [{"step": 0, "values": {"x": 1.0}}]}),
        );
        bus.deliver("run_finished", Some("s1"), json!({"id": "r2"}));
        let kept = kept.0.lock().unwrap().clone();
        let notice = |kind, id: &str| Notice {
            kind,
            sweep: Some("s1".into()),
            id: Some(id.into()),
        };
        assert_eq!(kept, [notice("run_created", "r1"), notice("metrics", "r1")]);
        assert!(!Bus::new().active());
    }

    #[tokio::test]
    async fn a_resync_reaches_subscribers_of_every_sweep() {
        let bus = Bus::new();
        let mut one = Box::pin(live(
            bus.subscribe(),
            Some("s1".into()),
            bus.closing.subscribe(),
        ));
        bus.deliver("run_created", Some("s2"), json!({"id": "r"}));
        bus.deliver(
            "resync",
            None,
            json!({"missed": null, "reason": "reconnected"}),
        );
        bus.deliver("run_created", Some("s1"), json!({"id": "r"}));
        // The other sweep's event is filtered out; the resync is not.
        let first = format!("{:?}", one.next().await.unwrap().unwrap());
        assert!(first.contains("resync"), "{first}");
        let second = format!("{:?}", one.next().await.unwrap().unwrap());
        assert!(second.contains("run_created"), "{second}");
    }
}
