//! Serving HTTP/1 connections: how long a client may take to send a request's head, how many
//! connections are open at once, and how a connection is closed.
//!
//! `axum::serve` gives hyper no timer, so hyper's limit on reading a request head never
//! fires, and it accepts every connection the kernel hands it. A client that opens
//! connections and sends their heads a byte at a time (a *slowloris*) then holds each one
//! open as long as it likes, until the process runs out of file descriptors and nobody, token
//! or not, gets an answer. [`serve`] is the same loop with two guarantees:
//!
//! - **A head in [`HEAD_TIMEOUT`].** A connection whose request line and headers have not all
//!   arrived within that time of the server starting to wait for them is closed. The clock
//!   runs from the end of the previous answer too, so an idle keep-alive connection is closed
//!   after the same time; clients open a new one (the agent and the Python client retry a
//!   request refused that way). It does not limit a request body, a slow answer (a claim's
//!   wait) or an event stream.
//! - **At most [`max_connections`] open.** Beyond it the server stops accepting until one
//!   closes: new clients wait in the kernel's listen queue rather than the process failing to
//!   open its database files or its own answers. With the head timeout, a slot held by a
//!   client that sends nothing is free again within [`HEAD_TIMEOUT`].
//!
//! - **The answer arrives before the close.** A connection hyper closes with part of a
//!   request body unread (a `413`, or an error answered before the body was needed) is
//!   closed *lingering*, as nginx does: see [`linger`].
//!
//! Every connection's requests carry its peer address as axum's `ConnectInfo<Remote>` (for
//! the request log). Shutdown is graceful: the listener stops, each connection finishes the
//! request it is serving and closes, and [`serve`] returns once all are closed.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{watch, Semaphore};
use tower_service::Service as _;

use crate::requests::Remote;

/// How long a client has to send a request's line and headers once the server waits for
/// them: hyper's own default, which `axum::serve` leaves without the timer it needs.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a closed connection is read from, and discarded, so that its client sees the
/// answer: [`linger`].
#[derive(Clone, Copy, Debug)]
struct Linger {
    /// The longest wait for the client's next bytes.
    idle: Duration,
    /// The longest time in all.
    total: Duration,
}

/// nginx's defaults for the same thing (`lingering_timeout`, `lingering_time`).
const LINGER: Linger = Linger {
    idle: Duration::from_secs(5),
    total: Duration::from_secs(30),
};

/// Close a connection hyper is done with *lingering*: send the end of the stream after the
/// answer, then read and discard what the client still sends until it closes its side, is
/// silent for `linger.idle`, or `linger.total` has passed.
///
/// hyper answers a request it will not read the whole body of (a `413` for a body over the
/// limit, a `404` before the body is needed) and then closes the socket with the body's
/// unread bytes in it. The kernel then resets the connection, and a client that sends its
/// whole body before it reads the answer (Python's `http.client`, `urllib`, `requests`) gets
/// a broken pipe or a reset instead of the answer that says what was wrong. Reading to the
/// client's end first lets that answer arrive. A client that closes when it has its answer
/// (every well-behaved one) ends the wait at once.
async fn linger<Io>(mut io: Io, linger: Linger)
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    if io.shutdown().await.is_err() {
        return;
    }
    let end = tokio::time::Instant::now() + linger.total;
    let mut discard = vec![0u8; 16 * 1024];
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(linger.idle.min(left), io.read(&mut discard)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}

/// File descriptors kept free of connections, for the store (SQLite's database, its
/// write-ahead log and read pool; PostgreSQL's pool), logs and the processes `tune` starts.
const RESERVED_FDS: u64 = 256;

/// Connections open at once, at most: the process's open-file limit less
/// [`RESERVED_FDS`], between 64 and 16,384.
pub fn max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the two fields of the struct it is given and nothing else.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    usize::try_from(soft.saturating_sub(RESERVED_FDS).clamp(64, 16_384)).unwrap_or(64)
}

/// Serve `app` on `listener` (plain TCP or TLS) until `shutdown` completes, with the module's
/// limits; returns when every connection has closed.
pub async fn serve<L>(listener: L, app: Router, shutdown: impl Future<Output = ()>)
where
    L: Listener<Addr = SocketAddr>,
{
    serve_with(listener, app, shutdown, HEAD_TIMEOUT, LINGER).await;
}

/// [`serve`] with another head timeout and linger (tests use short ones).
async fn serve_with<L>(
    mut listener: L,
    app: Router,
    shutdown: impl Future<Output = ()>,
    head_timeout: Duration,
    linger_for: Linger,
) where
    L: Listener<Addr = SocketAddr>,
{
    let slots = Arc::new(Semaphore::new(max_connections()));
    // Dropped at shutdown: each connection then finishes its request and closes.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; all are gone when `closed()` returns.
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (io, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut app = app.clone();
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(Remote(peer)));
                // Boxed so that the connection can be polled without shutting its socket
                // down (hyper asks for an `Unpin` future there).
                Box::pin(async move {
                    Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {}))
                })
            });
            let mut conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout)
                .serve_connection(TokioIo::new(io), service);
            let stopping = tokio::select! {
                result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                    result.map(|()| false)
                }
                _ = stop.changed() => {
                    std::pin::Pin::new(&mut conn).graceful_shutdown();
                    std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await.map(|()| true)
                }
            };
            match stopping {
                // At shutdown the client is not waited for.
                Ok(false) => tokio::select! {
                    () = linger(conn.into_parts().io.into_inner(), linger_for) => {}
                    _ = stop.changed() => {}
                },
                Ok(true) => {}
                Err(e) => tracing::trace!("{peer}: connection ended: {e}"),
            }
            drop(open);
            drop(permit);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(open_rx);
    open_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const SHORT: Duration = Duration::from_millis(300);
    const SHORT_LINGER: Linger = Linger {
        idle: Duration::from_millis(500),
        total: Duration::from_secs(20),
    };

    async fn started() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route(
                "/",
                get(
                    |ConnectInfo(Remote(peer)): ConnectInfo<Remote>| async move {
                        format!("from {}", peer.ip())
                    },
                ),
            )
            .route(
                "/limited",
                axum::routing::post(|body: axum::body::Bytes| async move {
                    format!("{} bytes", body.len())
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(1024));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        tokio::spawn(serve_with(listener, app, shutdown, SHORT, SHORT_LINGER));
        (addr, tx)
    }

    #[tokio::test]
    async fn a_head_that_never_ends_is_closed_after_the_timeout() {
        let (addr, _stop) = started().await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        // The read ends only when the server's timer closes the connection.
        let read = tokio::time::timeout(SHORT * 20, slow.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "the connection was still open after twice the timeout"
        );
        let answer = String::from_utf8_lossy(&buf);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_whole_request_is_answered_with_the_peer_address() {
        let (addr, _stop) = started().await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.unwrap();
        let answer = String::from_utf8_lossy(&buf);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("from 127.0.0.1"), "{answer}");
    }

    /// As Python's `http.client`: the whole request, body and all, then the answer.
    fn send_all_then_read(
        addr: SocketAddr,
        head: &str,
        body_len: usize,
    ) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr)?;
        c.write_all(head.as_bytes())?;
        c.write_all(&vec![b'0'; body_len])?;
        let mut buf = Vec::new();
        c.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_sends_its_whole_body_first_gets_the_answer_to_it() {
        let (addr, _stop) = started().await;
        // Far more than the kernel's socket buffers hold, so that the server closes while
        // the client is still writing.
        let len = 64 << 20;
        for (head, status) in [
            // Over the route's body limit.
            (
                format!("POST /limited HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n"),
                "HTTP/1.1 413",
            ),
            // A route that reads no body.
            (
                format!("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n"),
                "HTTP/1.1 200",
            ),
        ] {
            let answer = tokio::task::spawn_blocking(move || send_all_then_read(addr, &head, len))
                .await
                .unwrap();
            let answer = answer.unwrap_or_else(|e| panic!("{status}: the client got {e}"));
            assert!(answer.starts_with(status), "{answer}");
        }
    }

    #[tokio::test]
    async fn a_lingering_close_ends_when_the_client_is_silent() {
        let (addr, _stop) = started().await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST /limited HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            .await
            .unwrap();
        c.write_all(&[b'0'; 4096]).await.unwrap();
        // The answer, then the server's end of the stream, though the body never came whole.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(SHORT_LINGER.idle * 10, c.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the server kept the connection open");
        let answer = String::from_utf8_lossy(&buf);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // Silent past the idle time: the server is gone, and what is sent now is refused.
        tokio::time::sleep(SHORT_LINGER.idle * 3).await;
        let mut refused = false;
        for _ in 0..20 {
            if c.write_all(&[b'0'; 4096]).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            refused,
            "the server still read the connection after its idle time"
        );
    }

    #[test]
    fn the_connection_cap_leaves_room_for_the_store() {
        let cap = max_connections();
        assert!((64..=16_384).contains(&cap), "{cap}");
    }
}
