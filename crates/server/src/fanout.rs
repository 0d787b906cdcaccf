//! Live events across several servers on one PostgreSQL database, through `LISTEN`/`NOTIFY`.
//!
//! Each server's [`Bus`](crate::api::events::Bus) reaches only its own subscribers. With a
//! [`PgFanout`], every event published on one server also goes out as
//! `pg_notify('hyperdial_events', payload)`, and every server listens on that channel and turns
//! what the others sent into events for its own subscribers:
//!
//! - **Compact notices.** A payload is `{"server", "kind", "sweep", "id"}` (a few hundred
//!   bytes; PostgreSQL takes at most 8000), never metric points or run records. The receiver
//!   reads what changed from the database, which the sender committed before it published,
//!   and gives its subscribers the usual shapes: a sweep event carries the Sweep object, run
//!   events the run, and a `metrics` event the run with no points and `"truncated": true`
//!   (fetch the history). Nothing is read when nobody subscribes here.
//! - **Own notices are skipped** by the server id (random per process), so no subscriber sees
//!   an event twice.
//! - **Nothing is sent to nobody.** A server alone on its database sends no notices: with one
//!   server (the usual team set-up) a notice per run end and claim cost about a quarter of the
//!   CPU of an ask/tell loop, to be thrown away by the sender itself. Each time its listener
//!   connects, a server counts the other servers' listening connections (by their
//!   `application_name`, [`LISTENER_APPLICATION`], in `pg_stat_activity`) and then says
//!   `hello` on the channel; a server that hears anything from another one (a `hello` or any
//!   notice) sends its notices from then on. A server that starts while others run so finds
//!   them, and they find it a few milliseconds later, when its `hello` arrives; what they
//!   publish in between reaches nobody there yet (the new server reads the database for
//!   everything it shows). The count cannot be taken (a role that may not read
//!   `pg_stat_activity`) means sending, as before.
//! - **Nothing blocks a request.** Publishing puts the notice in a bounded queue; one task
//!   sends the queue in batches (one `SELECT pg_notify(...) FROM unnest(...)` per batch). When
//!   the queue is full or a send fails, the lost notices are replaced by one `resync` notice,
//!   sent as soon as the database answers again, so the other servers' subscribers reload
//!   instead of missing changes in silence.
//! - **Reconnects.** The listener has a connection of its own; when it drops, it reconnects
//!   with backoff (0.25 s doubling to 30 s), and after every reconnect tells its subscribers
//!   `resync` (notifications sent meanwhile are gone) and forgets the learning curves cached
//!   for early termination. A server alone on its database logs the listener's failures at
//!   `debug` only: it misses nothing, and the outage behind them is logged as a storage
//!   fault by the requests that meet it.
//! - **Parked claims.** Every notice wakes the claims parked here on its sweep (a `resync`, and
//!   every reconnect, wakes all of them), so an agent waiting on this server learns at once of a
//!   run that ended through another one ([`crate::api::claim`]).
//! - **Caches.** A `metrics` notice marks that run's curve stale in the controller's
//!   [`CurveCache`](crate::early_stop::CurveCache), so early-termination decisions see points
//!   stored through other servers.
//!
//! With SQLite nothing of this runs: one server owns a database file.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyperdial_wire::api::MetricsEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{mpsc, watch};

use crate::api::events::{Fanout, Notice};
use crate::api::views::run_brief;
use crate::controller::Controller;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "hyperdial_events";

/// Largest payload sent, in bytes (PostgreSQL refuses more than 8000).
pub const MAX_PAYLOAD_BYTES: usize = 8000;

/// Notices waiting to be sent before further ones are replaced by a `resync`.
pub const QUEUE: usize = 4096;

/// Most notices sent in one statement.
const BATCH: usize = 256;

/// First wait before reconnecting or resending, doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);

/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The `application_name` of the listening connection (visible in `pg_stat_activity`).
pub const LISTENER_APPLICATION: &str = "hyperdial-events";

/// The payload of one notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Wire {
    /// The sending server's id.
    server: String,
    /// The event kind.
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sweep: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

/// The event kinds a notice may carry, as the `&'static str` the bus takes; `None` for any
/// other (a newer server's kind, or garbage on the channel).
fn known_kind(kind: &str) -> Option<&'static str> {
    [
        "sweep",
        "run_created",
        "run_updated",
        "run_finished",
        "metrics",
        "resync",
    ]
    .into_iter()
    .find(|k| *k == kind)
}

/// The payload of `notice` from `server`; a notice too large for a notification (ids are
/// short, so only a malformed one) becomes a `resync` of its sweep, or of everything.
fn encode(server: &str, notice: &Notice) -> String {
    let wire = Wire {
        server: server.to_string(),
        kind: notice.kind.to_string(),
        sweep: notice.sweep.clone(),
        id: notice.id.clone(),
    };
    let text = serde_json::to_string(&wire).unwrap_or_default();
    if text.len() <= MAX_PAYLOAD_BYTES {
        return text;
    }
    let mut resync = Wire {
        kind: "resync".into(),
        id: None,
        ..wire
    };
    let text = serde_json::to_string(&resync).unwrap_or_default();
    if text.len() <= MAX_PAYLOAD_BYTES {
        return text;
    }
    resync.sweep = None;
    serde_json::to_string(&resync).unwrap_or_default()
}

/// Errors setting up the fan-out.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The database URL does not parse as a PostgreSQL URL.
    #[error("the PostgreSQL URL for live events is invalid: {0}")]
    Url(#[source] sqlx::Error),
}

/// Events shared with the other servers of one PostgreSQL database (see the module docs).
pub struct PgFanout {
    server: String,
    options: PgConnectOptions,
    queue: mpsc::Sender<Notice>,
    /// A notice was lost (queue full or send failed): a `resync` goes out next.
    lost: Arc<AtomicBool>,
    /// How many times the listener has connected (for tests and logs).
    connects: watch::Sender<u64>,
    /// Notifications from other servers turned into events here.
    received: AtomicU64,
    /// Another server may be listening: notices are sent (see the module docs). True until
    /// the listener first counts the others.
    peers: watch::Sender<bool>,
}

impl std::fmt::Debug for PgFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFanout")
            .field("server", &self.server)
            .field("connects", &*self.connects.borrow())
            .finish()
    }
}

impl PgFanout {
    /// A fan-out over the database at `url` (`postgres://…`) for the server `server` (an id
    /// unique among the servers, e.g. [`hyperdial_store::new_id`]). Starts the task that
    /// sends notices; connections open when first needed, so a database that is down now
    /// delays events but not the start. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`FanoutError::Url`] when `url` does not parse.
    pub fn start(url: &str, server: &str) -> Result<Arc<PgFanout>, FanoutError> {
        let options = PgConnectOptions::from_str(url).map_err(FanoutError::Url)?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.clone().application_name("hyperdial-notify"));
        let (queue, rx) = mpsc::channel(QUEUE);
        let lost = Arc::new(AtomicBool::new(false));
        tokio::spawn(send_notices(pool, rx, server.to_string(), lost.clone()));
        Ok(Arc::new(PgFanout {
            server: server.to_string(),
            options,
            queue,
            lost,
            connects: watch::channel(0).0,
            received: AtomicU64::new(0),
            peers: watch::channel(true).0,
        }))
    }

    /// This server's id, which its notices carry.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Start listening for the other servers' notices and turning them into events of
    /// `controller`'s bus (the bus that carries this fan-out). The task runs until aborted.
    pub fn listen(self: &Arc<Self>, controller: Arc<Controller>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(listen(self.clone(), controller))
    }

    /// Wait until the listener has connected at least `n` times (the first connection is 1,
    /// each reconnect adds one). Notices sent before the listener connects are not received.
    pub async fn connected(&self, n: u64) {
        let mut rx = self.connects.subscribe();
        let _ = rx.wait_for(|c| *c >= n).await;
    }

    /// Notifications from other servers handled so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Whether this server sends its notices: another server may be listening (see the
    /// module docs).
    pub fn sending(&self) -> bool {
        *self.peers.borrow()
    }

    /// Wait until this server sends its notices (another server has been found).
    pub async fn until_sending(&self) {
        let mut rx = self.peers.subscribe();
        let _ = rx.wait_for(|p| *p).await;
    }

    /// Another server has been heard from: send notices from now on.
    fn heard_a_peer(&self) {
        self.peers.send_if_modified(|p| !std::mem::replace(p, true));
    }
}

impl Fanout for PgFanout {
    fn send(&self, notice: Notice) {
        if !self.sending() {
            return;
        }
        if self.queue.try_send(notice).is_err() {
            self.lost.store(true, Ordering::Relaxed);
        }
    }
}

/// Send queued notices in batches until the fan-out is dropped. A batch that cannot be sent
/// is replaced by one `resync` notice, retried with backoff until the database answers.
async fn send_notices(
    pool: PgPool,
    mut rx: mpsc::Receiver<Notice>,
    server: String,
    lost: Arc<AtomicBool>,
) {
    let resync = Notice {
        kind: "resync",
        sweep: None,
        id: None,
    };
    while let Some(first) = rx.recv().await {
        let mut notices = vec![first];
        while notices.len() < BATCH {
            match rx.try_recv() {
                Ok(n) => notices.push(n),
                Err(_) => break,
            }
        }
        let mut payloads: Vec<String> = Vec::with_capacity(notices.len() + 1);
        if lost.swap(false, Ordering::Relaxed) {
            payloads.push(encode(&server, &resync));
        }
        payloads.extend(notices.iter().map(|n| encode(&server, n)));
        let mut backoff = MIN_BACKOFF;
        loop {
            let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                .bind(CHANNEL)
                .bind(&payloads)
                .execute(&pool)
                .await;
            match sent {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(
                        "cannot send live events to the other servers ({e}); \
                         they will be told to reload"
                    );
                    payloads = vec![encode(&server, &resync)];
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Log a failure of the listener's connection: a warning once another server has been heard
/// from, since its live events stop reaching this server's dashboards until the listener is
/// back; at `debug` for a server alone on its database, which loses nothing by it (the
/// database fault behind it is logged by the requests that meet it), and whose log would
/// otherwise speak of servers that do not exist.
fn listener_news(fanout: &PgFanout, message: &str) {
    if fanout.sending() {
        tracing::warn!("{message}");
    } else {
        tracing::debug!("{message}");
    }
}

/// Connect the listener, with backoff until it works.
async fn connect(fanout: &PgFanout) -> PgListener {
    let mut backoff = MIN_BACKOFF;
    loop {
        let attempt = async {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(
                    fanout
                        .options
                        .clone()
                        .application_name(LISTENER_APPLICATION),
                )
                .await?;
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            // Listening first, then counting: a server that connects after the count is
            // heard from (its `hello`), one that connected before is counted.
            let others = sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND datname = current_database() AND pid <> pg_backend_pid()",
            )
            .bind(LISTENER_APPLICATION)
            .fetch_one(&mut listener)
            .await;
            let hello = encode(
                &fanout.server,
                &Notice {
                    kind: "hello",
                    sweep: None,
                    id: None,
                },
            );
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(hello)
                .execute(&mut listener)
                .await?;
            Ok::<_, sqlx::Error>((listener, others))
        };
        match attempt.await {
            Ok((listener, others)) => {
                let alone = match others {
                    Ok(n) => n == 0,
                    Err(e) => {
                        tracing::debug!("cannot count the other servers ({e}): sending events");
                        false
                    }
                };
                fanout.peers.send_if_modified(|p| {
                    let was = *p;
                    *p = !alone;
                    was != *p
                });
                return listener;
            }
            Err(e) => {
                listener_news(
                    fanout,
                    &format!(
                        "cannot listen for live events of other servers ({e}); retrying in \
                         {backoff:?}"
                    ),
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The listener task: connect, hand each notice to [`receive`], reconnect when the
/// connection drops and tell the subscribers to reload.
async fn listen(fanout: Arc<PgFanout>, controller: Arc<Controller>) {
    let mut first = true;
    loop {
        let mut listener = connect(&fanout).await;
        if !first {
            // Whatever was sent while the connection was down is gone.
            controller.curve_cache.clear();
            controller.events.wake_claims("resync", None);
            controller.events.deliver(
                "resync",
                None,
                json!({ "missed": null, "reason": "reconnected to the database" }),
            );
            if fanout.sending() {
                tracing::info!("listening for live events of other servers again");
            }
        }
        first = false;
        fanout.connects.send_modify(|c| *c += 1);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => receive(&controller, &fanout, n.payload()).await,
                Ok(None) => {
                    listener_news(
                        &fanout,
                        "lost the connection for live events of other servers",
                    );
                    break;
                }
                Err(e) => {
                    listener_news(&fanout, &format!("live events of other servers: {e}"));
                    break;
                }
            }
        }
    }
}

/// Turn one notification into an event for this server's subscribers (counted in
/// [`PgFanout::received`] when it came from another server and was understood).
async fn receive(c: &Controller, fanout: &PgFanout, payload: &str) {
    let Ok(wire) = serde_json::from_str::<Wire>(payload) else {
        tracing::debug!("ignored a malformed live-event notice");
        return;
    };
    if wire.server == fanout.server {
        return;
    }
    fanout.heard_a_peer();
    let Some(kind) = known_kind(&wire.kind) else {
        return;
    };
    fanout.received.fetch_add(1, Ordering::Relaxed);
    let sweep = wire.sweep.as_deref();
    if let ("metrics", Some(sweep), Some(run)) = (kind, sweep, wire.id.as_deref()) {
        c.curve_cache.mark_stale(sweep, run);
    }
    c.events.wake_claims(kind, sweep);
    if !c.events.local() {
        return;
    }
    match event(c, kind, sweep, wire.id.as_deref()).await {
        Ok(Some((sweep, data))) => c.events.deliver(kind, sweep.as_deref(), data),
        Ok(None) => {}
        Err(e) => {
            // The change happened but cannot be shown: tell the watchers to reload.
            tracing::warn!("cannot read what another server changed: {e:?}");
            c.events.deliver(
                "resync",
                sweep,
                json!({ "missed": null, "reason": "read failed" }),
            );
        }
    }
}

/// The event (sweep and payload) for a notice, read from the store; `None` when what it
/// names no longer exists.
async fn event(
    c: &Controller,
    kind: &'static str,
    sweep: Option<&str>,
    id: Option<&str>,
) -> Result<Option<(Option<String>, Value)>, crate::ApiError> {
    let store = c.store();
    match (kind, id) {
        ("resync", _) => Ok(Some((
            sweep.map(str::to_string),
            json!({ "missed": null, "reason": "another server missed events" }),
        ))),
        ("sweep", Some(id)) => {
            let Some(row) = store.sweep(id).await? else {
                return Ok(None);
            };
            let view = crate::api::views::sweep(c, &row).await?;
            Ok(Some((Some(row.id), to_json(&view))))
        }
        (_, Some(id)) => {
            let Some(run) = store.run(id).await? else {
                return Ok(None);
            };
            let brief = run_brief(&run);
            let data = if kind == "metrics" {
                to_json(&MetricsEvent {
                    run: brief,
                    points: Vec::new(),
                    truncated: true,
                })
            } else {
                to_json(&brief)
            };
            Ok(Some((run.sweep_id, data)))
        }
        (_, None) => Ok(None),
    }
}

/// A wire type as JSON (they always encode: no maps with non-string keys, no failing
/// `Serialize`).
fn to_json<T: serde::Serialize>(data: &T) -> Value {
    serde_json::to_value(data).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_round_trips_and_stays_small() {
        let notice = Notice::of(
            "metrics",
            Some("s_abc"),
            &json!({"run": {"id": "r_xyz"}, "points": [{"step": 1, "values": {"a": 1.0}}]}),
        );
        assert_eq!(notice.id.as_deref(), Some("r_xyz"));
        let text = encode("srv_1", &notice);
        assert!(!text.contains("points"), "{text}");
        let wire: Wire = serde_json::from_str(&text).unwrap();
        assert_eq!(
            wire,
            Wire {
                server: "srv_1".into(),
                kind: "metrics".into(),
                sweep: Some("s_abc".into()),
                id: Some("r_xyz".into()),
            }
        );
    }

    #[test]
    fn an_oversized_notice_becomes_a_resync() {
        let notice = Notice {
            kind: "run_finished",
            sweep: Some("s".into()),
            id: Some("r".repeat(MAX_PAYLOAD_BYTES)),
        };
        let wire: Wire = serde_json::from_str(&encode("srv", &notice)).unwrap();
        assert_eq!(
            (wire.kind.as_str(), wire.sweep.as_deref()),
            ("resync", Some("s"))
        );
        assert_eq!(wire.id, None);
        let notice = Notice {
            sweep: Some("s".repeat(MAX_PAYLOAD_BYTES)),
            ..notice
        };
        let text = encode("srv", &notice);
        assert!(text.len() <= MAX_PAYLOAD_BYTES);
        let wire: Wire = serde_json::from_str(&text).unwrap();
        assert_eq!((wire.kind.as_str(), wire.sweep), ("resync", None));
    }

    #[test]
    fn only_known_kinds_are_taken() {
        assert_eq!(known_kind("run_created"), Some("run_created"));
        assert_eq!(known_kind("resync"), Some("resync"));
        assert_eq!(known_kind("hello"), None);
        assert_eq!(known_kind(""), None);
    }
}

/// Tests against a real PostgreSQL server (`HYPERDIAL_TEST_PG`); each creates a database of
/// its own, so notifications of parallel tests never mix, and runs two controllers (two
/// servers but for HTTP) on it.
#[cfg(test)]
mod pg_tests {
    use super::*;
    use crate::api::events::{Bus, Event};
    use crate::api::views::run_brief;
    use crate::controller::Claim;
    use hyperdial_store::Store;
    use tokio::sync::broadcast;

    /// A database of its own in the test server, or `None` (announced loudly) without one.
    async fn database(test: &str) -> Option<String> {
        let Ok(server) = std::env::var("HYPERDIAL_TEST_PG") else {
            let line = format!(
                "SKIPPED: {test} (HYPERDIAL_TEST_PG is not set; .ci/run starts PostgreSQL and sets it)"
            );
            eprintln!("{line}");
            if let Ok(file) = std::env::var("HYPERDIAL_SKIPPED") {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)
                {
                    let _ = writeln!(f, "{line}");
                }
            }
            return None;
        };
        let name = format!("hd_fanout_{}", hyperdial_store::new_id("t").to_lowercase());
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server)
            .await
            .expect("HYPERDIAL_TEST_PG reachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create the test database");
        pool.close().await;
        Some(with_database(&server, &name))
    }

    /// `url` with its database replaced by `name`.
    fn with_database(url: &str, name: &str) -> String {
        let (rest, query) = match url.split_once('?') {
            Some((r, q)) => (r, format!("?{q}")),
            None => (url, String::new()),
        };
        let scheme_end = rest.find("://").map_or(0, |i| i + 3);
        let host_end = rest[scheme_end..]
            .find('/')
            .map_or(rest.len(), |i| scheme_end + i);
        format!("{}/{name}{query}", &rest[..host_end])
    }

    struct Node {
        controller: Arc<Controller>,
        fanout: Arc<PgFanout>,
        events: broadcast::Receiver<Arc<Event>>,
        _listening: tokio::task::JoinHandle<()>,
    }

    async fn node(url: &str, server: &str) -> Node {
        let store = Store::open(url).await.unwrap();
        let fanout = PgFanout::start(url, server).unwrap();
        let mut controller = Controller::new(store);
        controller.events = Bus::with_fanout(fanout.clone());
        let controller = Arc::new(controller);
        let events = controller.events.subscribe();
        let listening = fanout.listen(controller.clone());
        fanout.connected(1).await;
        Node {
            controller,
            fanout,
            events,
            _listening: listening,
        }
    }

    /// The next event, failing the test instead of waiting for ever.
    async fn next(rx: &mut broadcast::Receiver<Arc<Event>>) -> Arc<Event> {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an event within 30 s")
            .expect("the bus is open")
    }

    const GRID: &str = "program: t.py\nmethod: grid\nparameters:\n  a: {values: [1, 2, 3]}\n";

    /// A new sweep of [`GRID`] through `c`.
    async fn grid_sweep(c: &Controller) -> hyperdial_store::SweepRow {
        c.create_sweep(GRID, None, None, false, Some(1))
            .await
            .unwrap()
            .sweep
    }

    #[tokio::test]
    async fn events_of_one_server_reach_the_subscribers_of_the_other() {
        let Some(url) = database("fanout: events reach the other server").await else {
            return;
        };
        let mut one = node(&url, "srv_one").await;
        let mut two = node(&url, "srv_two").await;
        one.fanout.until_sending().await;
        assert!(two.fanout.sending());
        let c2 = &two.controller;
        let sweep = grid_sweep(c2).await;
        let Claim::Run(run) = c2.claim(&sweep.id, None).await.unwrap() else {
            panic!("no run");
        };
        c2.events
            .publish("run_created", Some(&sweep.id), &run_brief(&run));
        // Server two's own subscriber has it at once; server one's from the database.
        let here = next(&mut two.events).await;
        assert_eq!(
            (here.kind, here.data["id"].as_str()),
            ("run_created", Some(run.id.as_str()))
        );
        let there = next(&mut one.events).await;
        assert_eq!(there.kind, "run_created");
        assert_eq!(there.sweep.as_deref(), Some(sweep.id.as_str()));
        assert_eq!(there.data["id"], run.id.as_str());
        assert_eq!(there.data["state"], "running");
        assert_eq!(there.data["number"], 1);

        // A metric batch: the other server hears of it without the points, and reads the
        // run's curve again.
        let points = vec![hyperdial_store::Point {
            step: Some(0),
            time_ms: None,
            values: vec![("loss".to_string(), Some(0.5))],
        }];
        c2.ingest(&run.id, &points).await.unwrap();
        let after = c2.store().run(&run.id).await.unwrap().unwrap();
        c2.events.publish(
            "metrics",
            Some(&sweep.id),
            &crate::api::events::metrics_event(&after, 0, &points),
        );
        let metrics = next(&mut one.events).await;
        assert_eq!(metrics.kind, "metrics");
        assert_eq!(metrics.data["run"]["id"], run.id.as_str());
        assert_eq!(metrics.data["run"]["steps"], 1);
        assert_eq!(metrics.data["points"], json!([]));
        assert_eq!(metrics.data["truncated"], true);

        // A pause: the other server's subscribers get the whole sweep, paused.
        let (paused, _) = c2
            .act(&sweep.id, crate::controller::SweepAction::Pause)
            .await
            .unwrap();
        c2.events.publish(
            "sweep",
            Some(&sweep.id),
            &json!({"id": paused.id, "state": paused.state}),
        );
        let ev = next(&mut one.events).await;
        assert_eq!(
            (ev.kind, ev.data["state"].as_str()),
            ("sweep", Some("paused"))
        );
        assert_eq!(ev.data["counts"]["running"], 1, "{}", ev.data);

        // Server one finishes the run; server two's subscriber gets exactly that next: its
        // own three events never came back to it.
        let finished = one
            .controller
            .finish(&run.id, Some(0), None, None, None, None)
            .await
            .unwrap();
        one.controller
            .events
            .publish("run_finished", Some(&sweep.id), &run_brief(&finished.run));
        for kind in ["metrics", "sweep"] {
            assert_eq!(next(&mut two.events).await.kind, kind);
        }
        let ev = next(&mut two.events).await;
        assert_eq!(
            (ev.kind, ev.data["state"].as_str()),
            ("run_finished", Some("finished"))
        );
        assert_eq!(two.fanout.received(), 1);
        assert_eq!(one.fanout.received(), 3);
    }

    #[tokio::test]
    async fn a_dropped_listener_reconnects_and_tells_its_subscribers_to_reload() {
        let Some(url) = database("fanout: resync after a reconnect").await else {
            return;
        };
        let mut one = node(&url, "srv_one").await;
        let two = node(&url, "srv_two").await;
        one.fanout.until_sending().await;
        let sweep = grid_sweep(&one.controller).await;
        // Curves cached for early termination are forgotten on reconnect.
        let Err(clears) = one.controller.curve_cache.to_refresh(&sweep.id, "r") else {
            panic!("not cached yet");
        };
        assert!(one
            .controller
            .curve_cache
            .loaded(&sweep.id, clears, &Default::default()));
        assert!(one
            .controller
            .curve_cache
            .to_refresh(&sweep.id, "r")
            .is_ok());

        // Cut the listening connections (both servers').
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let cut: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND datname = current_database()",
        )
        .bind(LISTENER_APPLICATION)
        .fetch_all(&admin)
        .await
        .unwrap();
        assert_eq!(cut, [true, true]);
        let ev = next(&mut one.events).await;
        assert_eq!(ev.kind, "resync");
        assert_eq!(ev.sweep, None);
        one.fanout.connected(2).await;
        two.fanout.connected(2).await;
        assert!(one
            .controller
            .curve_cache
            .to_refresh(&sweep.id, "r")
            .is_err());

        // Events flow again, once each has found the other anew: a listener that reconnected
        // before the other's counts no other server, and sends from the other's `hello` on.
        tokio::time::timeout(Duration::from_secs(30), two.fanout.until_sending())
            .await
            .expect("the servers find each other again");
        two.controller.events.publish(
            "sweep",
            Some(&sweep.id),
            &json!({"id": sweep.id, "state": "running"}),
        );
        let ev = next(&mut one.events).await;
        assert_eq!(
            (ev.kind, ev.data["id"].as_str()),
            ("sweep", Some(sweep.id.as_str()))
        );
        admin.close().await;
    }

    #[tokio::test]
    async fn a_server_alone_sends_nothing_until_another_one_listens() {
        let Some(url) = database("fanout: a lone server sends nothing").await else {
            return;
        };
        // A listener that is not a server: it hears every notice, and is not counted.
        let watcher = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let mut watcher = PgListener::connect_with(&watcher).await.unwrap();
        watcher.listen(CHANNEL).await.unwrap();
        let heard = |n: Option<sqlx::postgres::PgNotification>| -> Wire {
            serde_json::from_str(n.expect("a notification").payload()).unwrap()
        };
        let one = node(&url, "srv_one").await;
        let said = heard(watcher.try_recv().await.unwrap());
        assert_eq!(
            (said.server.as_str(), said.kind.as_str()),
            ("srv_one", "hello")
        );
        assert!(!one.fanout.sending(), "no other server listens");
        let sweep = grid_sweep(&one.controller).await;
        one.controller.events.publish(
            "sweep",
            Some(&sweep.id),
            &json!({"id": sweep.id, "state": "running"}),
        );

        // A second server counts the first, says hello, and sends; the first, having heard
        // it, sends too. The first's notice above was never sent: the watcher's next
        // notification is the second's hello.
        let two = node(&url, "srv_two").await;
        assert!(two.fanout.sending());
        let said = heard(watcher.try_recv().await.unwrap());
        assert_eq!(
            (said.server.as_str(), said.kind.as_str()),
            ("srv_two", "hello")
        );
        one.fanout.until_sending().await;
        one.controller.events.publish(
            "sweep",
            Some(&sweep.id),
            &json!({"id": sweep.id, "state": "running"}),
        );
        let said = heard(watcher.try_recv().await.unwrap());
        assert_eq!(
            (said.server.as_str(), said.kind.as_str(), said.id.as_deref()),
            ("srv_one", "sweep", Some(sweep.id.as_str()))
        );
        // The second server takes it as an event.
        tokio::time::timeout(Duration::from_secs(30), async {
            while two.fanout.received() < 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the second server hears the first");
    }

    #[test]
    fn the_test_database_replaces_the_servers() {
        assert_eq!(
            with_database("postgres://u@h:5433/postgres", "x"),
            "postgres://u@h:5433/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5433/postgres?sslmode=disable", "x"),
            "postgres://u@h:5433/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
