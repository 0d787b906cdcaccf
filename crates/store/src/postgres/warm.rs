//! One pooled connection kept aside for the hot statements ([`super::hot`]), so that a
//! client's loop of one statement per trial runs on one database backend.
//!
//! The pool hands out its idle connections first in, first out. A sequential ask/tell client
//! needs one connection at a time, so through the pool alone its trials go round every
//! connection the pool has open (three after start-up, up to [`super::POOL_SIZE`] after a
//! burst of agents): each trial runs on the backend process that has waited longest, whose
//! caches have gone cold. Measured on PostgreSQL 15 with 2 cores, one ask/tell client and
//! three pooled connections, build before and after alternating: the database's CPU per
//! trial fell by 10–25 % in every pair (0.41–0.46 ms to 0.32–0.40 ms over TLS), trials per
//! second rose accordingly (bench/results/hotpaths.md, 2026-12-03).
//!
//! [`WarmConnection::take`] hands out the connection kept by the last hot statement when it
//! is free and was used less than [`super::PING_AFTER_IDLE`] ago; otherwise it asks the pool,
//! which pings a connection idle that long first, as for any statement. Concurrent hot
//! statements take the kept one first, the rest come from the pool. [`WarmConnection::keep`]
//! keeps a connection only after a statement that succeeded: after any error (even one the
//! database sent: a unique violation leaves the connection usable, a backend terminated by
//! an administrator answers with an error too, then is gone), or when the statement's future
//! is dropped midway, the connection goes back to the pool, which closes it if it is
//! broken. The kept connection counts against the pool's size, as any connection in use;
//! [`WarmConnection::release`] gives it back (before the pool is closed, which waits for
//! every connection).

use std::sync::Mutex;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::Postgres;

use super::PING_AFTER_IDLE;
use crate::Result;

/// The pool and the connection kept from its last hot statement, with when it was kept.
#[derive(Debug)]
pub(super) struct WarmConnection {
    pool: PgPool,
    probe: std::sync::Arc<super::reach::Probe>,
    kept: Mutex<Option<(PoolConnection<Postgres>, Instant)>>,
}

impl WarmConnection {
    /// No connection kept yet.
    pub(super) fn new(pool: PgPool, probe: std::sync::Arc<super::reach::Probe>) -> WarmConnection {
        WarmConnection {
            pool,
            probe,
            kept: Mutex::new(None),
        }
    }

    /// The kept connection when it was kept less than [`PING_AFTER_IDLE`] ago, else one from
    /// the pool. Errors: the pool's (no connection within its acquire timeout, the database
    /// down: see [`super::reach`]).
    pub(super) async fn take(&self) -> Result<PoolConnection<Postgres>> {
        let kept = self.lock().take();
        match kept {
            Some((conn, since)) if since.elapsed() < PING_AFTER_IDLE => Ok(conn),
            // Idle too long to trust without a ping: back to the pool, which pings it.
            stale => {
                drop(stale);
                super::reach::pooled(&self.probe, &self.pool, self.pool.acquire()).await
            }
        }
    }

    /// Keep `conn` for the next hot statement when its statement succeeded (`outcome`),
    /// unless another connection is kept already; else give it back to the pool.
    pub(super) fn keep<T>(
        &self,
        conn: PoolConnection<Postgres>,
        outcome: &std::result::Result<T, sqlx::Error>,
    ) {
        if outcome.is_ok() {
            let mut kept = self.lock();
            if kept.is_none() {
                *kept = Some((conn, Instant::now()));
            }
        }
    }

    /// Give the kept connection, if any, back to the pool.
    pub(super) fn release(&self) {
        let kept = self.lock().take();
        drop(kept);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(PoolConnection<Postgres>, Instant)>> {
        // The guard is held for a take or a put, which cannot panic: a poisoned lock holds a
        // consistent value.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::postgres::PostgresStorage;
    use crate::testing::TestDb;

    async fn backend_of(
        conn: &mut PoolConnection<Postgres>,
    ) -> std::result::Result<i32, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
    }

    /// End backend `pid` from another pooled connection, as an administrator would.
    async fn terminate(store: &PostgresStorage, pid: i32) {
        let mut other = store.reader.acquire().await.unwrap();
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut *other)
            .await
            .unwrap();
        assert!(killed, "backend {pid} was not terminated");
    }

    /// The backend of a statement run as the hot statements run theirs.
    async fn hot_backend(warm: &WarmConnection) -> std::result::Result<i32, sqlx::Error> {
        let mut conn = warm.take().await.unwrap();
        let outcome = backend_of(&mut conn).await;
        warm.keep(conn, &outcome);
        outcome
    }

    /// With several connections idle in the pool, consecutive hot statements run on one
    /// backend, where the pool alone would go round them; a connection whose backend died is
    /// used once (its statement fails, as on a pooled connection), not kept, and the next
    /// statement runs on a working one; a connection kept longer than the ping interval goes
    /// back to the pool, which pings it (one that died is then not used); and closing the
    /// pools does not wait for the kept connection.
    #[tokio::test]
    async fn hot_statements_stay_on_one_backend_and_leave_a_dead_one() {
        let Some(db) = TestDb::postgres("postgres::warm::one_backend").await else {
            return;
        };
        let store = PostgresStorage::open(db.url()).await.unwrap();
        // Three connections at once, then idle in the pool.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(store.reader.acquire().await.unwrap());
        }
        drop(held);
        let mut round = std::collections::BTreeSet::new();
        for _ in 0..6 {
            let mut conn = store.reader.acquire().await.unwrap();
            round.insert(backend_of(&mut conn).await.unwrap());
        }
        assert!(
            round.len() > 1,
            "the pool alone used one backend: {round:?}"
        );

        let first = hot_backend(&store.warm).await.unwrap();
        for _ in 0..10 {
            assert_eq!(hot_backend(&store.warm).await.unwrap(), first);
        }

        terminate(&store, first).await;
        let mut died = None;
        for _ in 0..50 {
            match hot_backend(&store.warm).await {
                Err(e) => {
                    died = Some(e);
                    break;
                }
                // Not yet gone: PostgreSQL ends the backend asynchronously.
                Ok(pid) if pid == first => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(pid) => panic!("the kept connection was left while it worked (now {pid})"),
            }
        }
        assert!(died.is_some(), "the terminated backend kept answering");
        let next = hot_backend(&store.warm).await.unwrap();
        assert_ne!(next, first);
        assert_eq!(hot_backend(&store.warm).await.unwrap(), next);

        // Kept longer than the ping interval and dead meanwhile: given back to the pool,
        // whose ping finds it dead, so the statement runs on another connection and succeeds
        // (handed out as kept, it would fail).
        terminate(&store, next).await;
        tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(200)).await;
        let after = hot_backend(&store.warm)
            .await
            .expect("a connection kept past the ping interval was handed out unpinged");
        assert_ne!(after, next);
        assert!(store.warm.lock().is_some());

        tokio::time::timeout(Duration::from_secs(10), store.close_pools())
            .await
            .expect("closing the pools waited for the kept connection");
        db.remove().await;
    }
}
