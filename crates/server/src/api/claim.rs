//! `POST /api/v1/sweeps/{id}/claim`, with an optional long poll.
//!
//! A claim that finds nothing to start (the sweep is paused, or `run_cap`, the grid or a
//! retries-only sweep waits for runs in flight) answers `204` at once, unless the request asks
//! to wait (`wait_ms`, capped at [`MAX_CLAIM_WAIT_MS`]). Then the claim is *parked*: it sleeps
//! until something that can change its answer happens to its sweep, claims again, and answers
//! as soon as there is a run to start (`200`) or the sweep is over (`410`); when the wait runs
//! out it answers `204` with the header [`WAITED_HEADER`], and the agent asks again at once.
//! So an agent learns of a new run or of the sweep's end when it happens, not a poll interval
//! later, and a sweep ends when its last run does.
//!
//! What wakes a parked claim is the live-event [`Bus`](super::events::Bus): every event it
//! publishes for a sweep (a run created or ended, the sweep's state changed; see
//! [`wakes`]) is also handed to [`ClaimWaits::wake`], whether or not anyone subscribes to the
//! events, and so are the notices other servers of a PostgreSQL database send through the
//! fan-out (`crate::fanout`). A `resync` wakes every parked claim, since the changes it stands
//! for are unknown. No wake is lost between a claim's answer and its parking: a claim
//! subscribes to its sweep's wake-ups *before* it claims, so an event during the claim makes
//! the wait end at once. With several servers, where a notice can be lost while the fan-out
//! reconnects, a parked claim also claims again every [`SHARED_RECHECK`]; on a SQLite file,
//! which other processes may serve too, every [`FILE_RECHECK`].
//!
//! A claim may carry a `tell` (`ClaimRequest::tell`): a run of the sweep to end first, with
//! the body a finish takes (told values included). It is applied before the claim, after the
//! claim has subscribed to its sweep's wake-ups, so an ask/tell client tells its last trial and
//! asks for the next in one request; a refused tell is the answer, and nothing is claimed.
//!
//! A claim may carry an idempotency key (`ClaimRequest::claim_key`, checked by
//! [`claim_key_problem`]; a bad one is a `400` before anything is applied). The run it hands
//! out is stored with the key, and a request whose key claimed a run before answers that run
//! again (`200`, not published as created a second time) while it has not ended, or `204` at
//! once, without parking, once it has: the client claims again with a new key
//! ([`crate::controller::Controller::claim_keyed`]). A tell sent again with its claim is a
//! finish of a run that has ended, stored once.
//!
//! Bounds: at most [`MAX_PARKED`] claims are parked at once per server (beyond that a claim
//! answers `204` at once, without the header, and the agent polls); when the server shuts
//! down, parked claims answer `204` without the header at once, so shutdown never waits for
//! them. A parked claim holds no lock and no database connection while it sleeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyperdial_wire::api::{
    ClaimRequest, RunAnswer, SweepOver, MAX_CLAIM_KEY_CHARS, MAX_CLAIM_WAIT_MS, WAITED_HEADER,
};
use serde_json::json;
use tokio::sync::watch;

use super::{views, ApiResult};
use crate::controller::{Claim, Keyed};
use crate::error::ApiError;
use crate::AppState;

/// Most claims parked at once on one server.
pub const MAX_PARKED: usize = 4096;

/// With several servers on one database, how often a parked claim claims again even without
/// a wake-up (a notice of another server may have been lost).
pub const SHARED_RECHECK: Duration = Duration::from_secs(5);

/// On a SQLite file, how often a parked claim claims again even without a wake-up: another
/// process may serve the same file (each Python process that finds no server starts its own
/// on the default store) and end runs this server never hears of. A claim that still finds
/// nothing costs one short write transaction that writes nothing.
pub const FILE_RECHECK: Duration = Duration::from_secs(2);

/// Whether an event of this kind can change what a claim of its sweep answers: a run created
/// (a queued retry) or ended (room under `run_cap`, retries due, the sweep's end), the sweep's
/// state changed, or unknown changes (`resync`). Metric points and summaries do not (a metric
/// target ends the sweep with a `sweep` event).
pub fn wakes(kind: &str) -> bool {
    matches!(kind, "sweep" | "run_created" | "run_finished" | "resync")
}

/// The parked claims of one server, by sweep (see the module docs).
#[derive(Debug, Default)]
pub struct ClaimWaits {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// One wake-up counter per sweep that has parked claims.
    sweeps: HashMap<String, watch::Sender<u64>>,
    /// Claims parked now.
    parked: usize,
    /// The server is shutting down: nothing parks, and parked claims answer at once.
    closed: bool,
}

/// A parked claim's hold on its sweep's wake-ups; dropping it unparks.
pub struct Parked {
    waits: Arc<ClaimWaits>,
    sweep: String,
    rx: Option<watch::Receiver<u64>>,
}

impl ClaimWaits {
    /// Subscribe a claim of `sweep` to its wake-ups, before it claims. `None` when the server
    /// is shutting down or [`MAX_PARKED`] claims are parked already.
    pub fn park(self: &Arc<Self>, sweep: &str) -> Option<Parked> {
        let mut inner = self.inner.lock().expect("claim waits");
        if inner.closed || inner.parked >= MAX_PARKED {
            return None;
        }
        inner.parked += 1;
        let rx = inner
            .sweeps
            .entry(sweep.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Some(Parked {
            waits: self.clone(),
            sweep: sweep.to_string(),
            rx: Some(rx),
        })
    }

    /// Wake the claims parked on `sweep` (every sweep's for `None`) when an event of `kind`
    /// can change their answer ([`wakes`]).
    pub fn wake(&self, kind: &str, sweep: Option<&str>) {
        if !wakes(kind) {
            return;
        }
        let inner = self.inner.lock().expect("claim waits");
        match sweep {
            Some(sweep) => {
                if let Some(tx) = inner.sweeps.get(sweep) {
                    tx.send_modify(|n| *n += 1);
                }
            }
            // An event of no sweep: only a resync concerns parked claims.
            None if kind == "resync" => {
                for tx in inner.sweeps.values() {
                    tx.send_modify(|n| *n += 1);
                }
            }
            None => {}
        }
    }

    /// The server is shutting down: parked claims answer at once and no claim parks again.
    pub fn close(&self) {
        let mut inner = self.inner.lock().expect("claim waits");
        inner.closed = true;
        for tx in inner.sweeps.values() {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// Whether [`ClaimWaits::close`] was called.
    pub fn closed(&self) -> bool {
        self.inner.lock().expect("claim waits").closed
    }

    /// Claims parked now.
    pub fn parked(&self) -> usize {
        self.inner.lock().expect("claim waits").parked
    }
}

impl Parked {
    /// Wait until the sweep is woken (or was woken since the last wait, or since parking),
    /// for at most `limit`: `true` when woken.
    async fn woken(&mut self, limit: Duration) -> bool {
        let Some(rx) = self.rx.as_mut() else {
            return false;
        };
        // The sender lives in the map while a receiver does, so `changed` only fails if the
        // map entry was replaced, which never happens while this receiver is alive.
        matches!(tokio::time::timeout(limit, rx.changed()).await, Ok(Ok(())))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut inner = self.waits.inner.lock().expect("claim waits");
        inner.parked = inner.parked.saturating_sub(1);
        if inner
            .sweeps
            .get(&self.sweep)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            inner.sweeps.remove(&self.sweep);
        }
    }
}

/// The claim route (see the module docs): the next run of sweep `id`, waiting up to the
/// request's `wait_ms` for one.
pub(crate) async fn claim(s: &AppState, id: &str, request: ClaimRequest) -> ApiResult {
    let c = &s.controller;
    let key = request.claim_key.as_deref();
    if let Some(problem) = key.and_then(claim_key_problem) {
        return Err(ApiError::bad_request(problem));
    }
    let asked = Duration::from_millis(request.wait_ms.unwrap_or(0).min(MAX_CLAIM_WAIT_MS));
    let started = Instant::now();
    let deadline = started + asked;
    let waits = c.events.claim_waits();
    let mut parked = if asked.is_zero() {
        None
    } else {
        waits.park(id)
    };
    // A trial told with the claim ends first; its refusal is the answer (nothing claimed).
    // Parked before, so the wake-up its end sends is not lost. When the end cannot change
    // the claim, the run it claims comes in the same commit.
    if let Some(tell) = request.tell {
        let agent = request.agent.as_deref();
        let ended_and_claimed =
            super::end_run_and_claim(s, &tell.run, tell.finish, id, agent, key).await?;
        if let Some(run) = ended_and_claimed {
            return Ok(claimed(s, id, &run));
        }
    }
    loop {
        match c.claim_keyed(id, request.agent.as_deref(), key).await? {
            Keyed::Now(Claim::Run(run)) => return Ok(claimed(s, id, &run)),
            // The answer of a claim sent again: its run was published when it was claimed.
            Keyed::Again(run) => return Ok(answer(&run)),
            // The key's run has ended: this claim is settled and claims nothing.
            Keyed::Ended(_) => return Ok(StatusCode::NO_CONTENT.into_response()),
            Keyed::Now(Claim::Over(state)) => {
                c.events
                    .publish("sweep", Some(id), &json!({"id": id, "state": state}));
                let over = SweepOver {
                    error: format!("sweep {id} is {state}"),
                    state,
                };
                return Ok((StatusCode::GONE, Json(over)).into_response());
            }
            Keyed::Now(Claim::Wait) => {
                let Some(parked) = parked.as_mut() else {
                    return Ok(StatusCode::NO_CONTENT.into_response());
                };
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(waited(started));
                }
                let step = if c.events.shared() {
                    left.min(SHARED_RECHECK)
                } else if c.store().path().is_some() {
                    left.min(FILE_RECHECK)
                } else {
                    left
                };
                tracing::debug!(sweep = id, "claim parked");
                if parked.woken(step).await {
                    tracing::debug!(sweep = id, "claim woken");
                }
                if waits.closed() {
                    return Ok(StatusCode::NO_CONTENT.into_response());
                }
            }
        }
    }
}

/// The answer of a claim that got `run`, published as created.
fn claimed(s: &AppState, sweep: &str, run: &hyperdial_store::RunRow) -> Response {
    s.controller
        .events
        .publish("run_created", Some(sweep), &views::run_brief(run));
    answer(run)
}

/// The `200` answer that hands out `run`.
fn answer(run: &hyperdial_store::RunRow) -> Response {
    Json(RunAnswer {
        run: views::run(run),
    })
    .into_response()
}

/// Why `key` cannot be a claim's idempotency key (`ClaimRequest::claim_key`): empty, longer
/// than [`MAX_CLAIM_KEY_CHARS`], or with a character outside `A-Z a-z 0-9 - _ . :`. `None`
/// when it can. The message names the field.
pub fn claim_key_problem(key: &str) -> Option<String> {
    let chars = key.chars().count();
    if chars == 0 {
        return Some(format!(
            "claim_key is empty: leave it out, or send 1 to {MAX_CLAIM_KEY_CHARS} characters"
        ));
    }
    if chars > MAX_CLAIM_KEY_CHARS {
        return Some(format!(
            "claim_key has {chars} characters; at most {MAX_CLAIM_KEY_CHARS} are allowed"
        ));
    }
    let bad = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))?;
    Some(format!(
        "claim_key may hold only A-Z, a-z, 0-9, `-`, `_`, `.` and `:`; it has {bad:?}"
    ))
}

/// The `204` of a claim held open for its whole wait.
fn waited(started: Instant) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let ms = started.elapsed().as_millis().to_string();
    if let Ok(value) = HeaderValue::from_str(&ms) {
        response.headers_mut().insert(WAITED_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_keys_are_bounded_and_of_a_known_alphabet() {
        for good in [
            "a",
            "k3x9q2ab:1",
            "AZaz09-_.:",
            &"x".repeat(MAX_CLAIM_KEY_CHARS),
        ] {
            assert_eq!(claim_key_problem(good), None, "{good}");
        }
        let too_long = "x".repeat(MAX_CLAIM_KEY_CHARS + 1);
        for (bad, says) in [
            ("", "empty"),
            (too_long.as_str(), "at most 64"),
            ("a b", "' '"),
            ("a/b", "'/'"),
            ("é", "'é'"),
            ("a\n", "'\\n'"),
        ] {
            let problem = claim_key_problem(bad).unwrap_or_else(|| panic!("{bad:?} passed"));
            assert!(problem.starts_with("claim_key "), "{problem}");
            assert!(problem.contains(says), "{bad:?}: {problem}");
        }
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost() {
        let waits = Arc::new(ClaimWaits::default());
        let mut parked = waits.park("s1").unwrap();
        // Woken while the claim was being decided: the wait ends at once.
        waits.wake("run_finished", Some("s1"));
        assert!(parked.woken(Duration::from_secs(3600)).await);
        // Nothing since: the wait runs out.
        assert!(!parked.woken(Duration::from_millis(1)).await);
    }

    #[tokio::test]
    async fn only_events_of_the_sweep_that_change_claims_wake() {
        let waits = Arc::new(ClaimWaits::default());
        let mut parked = waits.park("s1").unwrap();
        waits.wake("metrics", Some("s1"));
        waits.wake("run_updated", Some("s1"));
        waits.wake("run_finished", Some("s2"));
        waits.wake("run_created", None);
        assert!(!parked.woken(Duration::from_millis(1)).await);
        for kind in ["sweep", "run_created", "run_finished"] {
            waits.wake(kind, Some("s1"));
            assert!(parked.woken(Duration::from_secs(3600)).await, "{kind}");
        }
        // A resync of everything wakes every sweep's claims.
        waits.wake("resync", None);
        assert!(parked.woken(Duration::from_secs(3600)).await);
    }

    #[tokio::test]
    async fn parking_is_bounded_and_unparking_forgets_the_sweep() {
        let waits = Arc::new(ClaimWaits::default());
        let all: Vec<Parked> = (0..MAX_PARKED)
            .map(|i| waits.park(&format!("s{}", i % 3)).unwrap())
            .collect();
        assert_eq!(waits.parked(), MAX_PARKED);
        assert!(waits.park("s0").is_none());
        drop(all);
        assert_eq!(waits.parked(), 0);
        assert!(waits.inner.lock().unwrap().sweeps.is_empty());
        assert!(waits.park("s0").is_some());
    }

    #[tokio::test]
    async fn closing_wakes_the_parked_and_refuses_new_ones() {
        let waits = Arc::new(ClaimWaits::default());
        let mut parked = waits.park("s1").unwrap();
        waits.close();
        assert!(parked.woken(Duration::from_secs(3600)).await);
        assert!(waits.closed());
        assert!(waits.park("s1").is_none());
    }
}
