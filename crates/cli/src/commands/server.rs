//! `hyperdial server`: serve the API and overview pages until SIGINT (Ctrl-C), SIGTERM or
//! SIGHUP. Any of them shuts it down gracefully: it stops accepting connections, lets requests
//! in flight finish (for at most [`hyperdial_server::SHUTDOWN_GRACE`]) and closes the database
//! cleanly (the WAL is checkpointed), then exits 0.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_server::Options;
use hyperdial_store::Store;
use tokio::signal::unix::{signal, SignalKind};

use crate::embedded::{default_db, STATE_DIR};

/// Run the command.
pub async fn run(
    db: Option<String>,
    bind: &str,
    token: Option<String>,
    allowed_hosts: Vec<String>,
) -> Result<ExitCode> {
    let addr: SocketAddr = bind
        .parse()
        .with_context(|| format!("--bind {bind}: expected an address like 127.0.0.1:8337"))?;
    let db = db.unwrap_or_else(|| default_db(std::path::Path::new(STATE_DIR)));
    let store = Store::open(&db)
        .await
        .with_context(|| format!("cannot open the database {}", hyperdial_store::redact(&db)))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!(
        "hyperdial server on http://{local} (database {})",
        store.describe()
    );
    println!("dashboard: http://{local}/");
    let mut signals = Vec::new();
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ] {
        signals.push((
            signal(kind).with_context(|| format!("cannot handle {name}"))?,
            name,
        ));
    }
    let shutdown = async move {
        let name = std::future::poll_fn(|cx| {
            for (stream, name) in signals.iter_mut() {
                if stream.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(*name);
                }
            }
            std::task::Poll::Pending
        })
        .await;
        eprintln!("{name}: shutting down");
    };
    let options = Options {
        token,
        allowed_hosts,
    };
    hyperdial_server::serve(listener, store, options, shutdown).await?;
    eprintln!("stopped; database closed");
    Ok(ExitCode::SUCCESS)
}
