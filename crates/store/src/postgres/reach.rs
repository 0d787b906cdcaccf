//! Waiting for a pooled connection, and telling a database server that is down from a pool
//! that is busy.
//!
//! sqlx's pool answers a wait that found no connection within its acquire timeout with
//! `PoolTimedOut` and keeps the cause to itself: every connection was in use (the database is
//! busy), or none could be opened (the database server is down, restarting, unreachable, or
//! refuses the server). Waiting out the whole timeout when the server is down also answers
//! clients after their own request timeouts (5 s for the Python client), so they see no
//! answer at all and blame the hyperdial server.
//!
//! [`pooled`] therefore gives a wait [`PROBE_AFTER`] before it asks whether the database
//! server takes connections at all, with one direct connection ([`Probe`]). If it does not,
//! the request answers `unavailable` at once (its wait is dropped, which sqlx allows at any
//! point), and the cause goes to the log; if it does, the request waits on for the pool. A
//! wait that times out is told `unavailable` or `busy` the same way. One probe's answer serves
//! every request that asks within [`PROBE_FRESH`] of it, so a burst of waiting requests opens
//! one extra connection, not one each.
//!
//! Every `unavailable` here counts as a storage fault ([`crate::error::fault_met`]), as one
//! converted from a database error does: the janitor gives runs a full run timeout after it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgPool};

use super::{connect_failure, ACQUIRE_TIMEOUT, POOL_SIZE};
use crate::{Result, StoreError};

/// How long a request waits for a pooled connection before it asks whether the database
/// server takes connections at all.
pub(super) const PROBE_AFTER: Duration = Duration::from_secs(1);

/// How long the probe's direct connection may take.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one probe's answer is reused.
const PROBE_FRESH: Duration = Duration::from_secs(1);

/// The last answer to "does the database server take connections?": when it was had, and why
/// not (`None`: it does).
#[derive(Debug, Default)]
pub(super) struct Probe {
    last: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
    /// A probe found the database server refusing, and no connection has come since: the
    /// next one is logged as the end of the outage.
    down: AtomicBool,
}

impl Probe {
    /// Why the database server behind `pool` takes no new connection now, `None` if it
    /// does: one direct connection, or the answer of one made less than [`PROBE_FRESH`] ago
    /// (requests asking while a probe runs wait for its answer).
    pub(super) async fn refusal(&self, pool: &PgPool) -> Option<String> {
        let mut last = self.last.lock().await;
        if let Some((at, why)) = last.as_ref() {
            if at.elapsed() < PROBE_FRESH {
                return why.clone();
            }
        }
        let options = pool.connect_options();
        let why = match tokio::time::timeout(
            PROBE_TIMEOUT,
            <PgConnection as sqlx::Connection>::connect_with(&*options),
        )
        .await
        {
            Ok(Ok(conn)) => {
                let _ = sqlx::Connection::close(conn).await;
                None
            }
            Ok(Err(e)) => Some(connect_failure(&e)),
            Err(_) => Some(format!(
                "a new connection got no answer within {} s",
                PROBE_TIMEOUT.as_secs()
            )),
        };
        // Said when the server goes down, not at every probe of the outage: the requests'
        // fault lines (once a second at most) carry the cause meanwhile.
        if let Some(why) = &why {
            if !self.down.swap(true, Ordering::AcqRel) {
                tracing::warn!("PostgreSQL takes no new connection: {why}");
            }
        }
        *last = Some((Instant::now(), why.clone()));
        why
    }
}

/// The error of a request refused because the database server takes no connection.
fn unavailable(why: String) -> StoreError {
    crate::error::fault_met();
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        why,
    )))
}

/// Run `wait`, a wait for a connection of `pool` (and what runs on it), as the module docs
/// say: past [`PROBE_AFTER`] the database server is probed and a refusal answers
/// `unavailable` at once; a pool time-out answers `unavailable` or `busy` by the probe.
/// Errors: `wait`'s own, or those.
pub(super) async fn pooled<T, E>(
    probe: &Probe,
    pool: &PgPool,
    wait: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T>
where
    E: Into<StoreError>,
{
    tokio::pin!(wait);
    let done = tokio::select! {
        done = &mut wait => Some(done),
        _ = tokio::time::sleep(PROBE_AFTER) => None,
    };
    let done = match done {
        Some(done) => done,
        None => {
            // The pool may still hand out a connection while the probe runs.
            let refusal = probe.refusal(pool);
            tokio::pin!(refusal);
            tokio::select! {
                done = &mut wait => done,
                why = &mut refusal => match why {
                    Some(why) => return Err(unavailable(why)),
                    None => wait.await,
                },
            }
        }
    };
    match done.map_err(Into::into) {
        Err(StoreError::Busy(sqlx::Error::PoolTimedOut)) => match probe.refusal(pool).await {
            Some(why) => Err(unavailable(why)),
            None => {
                tracing::warn!(
                    "no pooled connection to PostgreSQL came within {} s, though its server \
                     takes new ones: the pool's {POOL_SIZE} connections were in use, or it was \
                     still reconnecting after an outage",
                    ACQUIRE_TIMEOUT.as_secs()
                );
                Err(StoreError::Busy(sqlx::Error::PoolTimedOut))
            }
        },
        Ok(done) => {
            if probe.down.load(Ordering::Acquire) && probe.down.swap(false, Ordering::AcqRel) {
                tracing::warn!("PostgreSQL takes connections again");
            }
            Ok(done)
        }
        other => other,
    }
}
