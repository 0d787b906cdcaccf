//! `hyperdial server`: serve the API and overview pages until SIGINT (Ctrl-C), SIGTERM or
//! SIGHUP. Any of them shuts it down gracefully: it stops accepting connections, lets requests
//! in flight finish (for at most [`hyperdial_server::SHUTDOWN_GRACE`]) and closes the database
//! cleanly (the WAL is checkpointed), then exits 0. With the hidden `--until-stdin-closes` it
//! also does so when its standard input reaches its end: a process that starts a server for
//! itself (the Python client's local server) gives it a pipe, and the server ends with it.
//!
//! With `--tls-cert` and `--tls-key` it serves HTTPS only and prints `https://` URLs; a bad
//! certificate or key file stops it before it listens, with the file and what is wrong.
//! On a PostgreSQL database (`--db postgres://…`) several servers may run side by side; their
//! live events reach each other's dashboards through the database
//! ([`hyperdial_server::fanout`]).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use hyperdial_server::{Options, TlsConfig, MIN_RUN_TIMEOUT};
use hyperdial_store::Store;
use tokio::signal::unix::{signal, SignalKind};

use crate::embedded::{default_db, STATE_DIR};

/// The command's arguments.
#[derive(Debug)]
pub struct ServerArgs {
    /// Database: a SQLite path or URL, or a PostgreSQL URL (default ./.hyperdial/hyperdial.db).
    pub db: Option<String>,
    /// Address to listen on.
    pub bind: String,
    /// API token.
    pub token: Option<String>,
    /// Extra `Host` names of a tokenless server.
    pub allowed_hosts: Vec<String>,
    /// Certificate chain and key files (PEM) to serve HTTPS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Silence limit of sweep runs, in seconds.
    pub run_timeout: f64,
    /// Also shut down when standard input reaches its end (a parent's pipe closed).
    pub until_stdin_closes: bool,
}

/// Seconds of silence after which the Python client sends a heartbeat for an open trial or
/// a server-mode run (`TRIAL_HEARTBEAT`, `HEARTBEAT_INTERVAL` in its settings).
const CLIENT_SILENCE_S: f64 = 5.0;

/// Run the command.
pub async fn run(args: ServerArgs) -> Result<ExitCode> {
    let ServerArgs {
        db,
        bind,
        token,
        allowed_hosts,
        tls,
        run_timeout,
        until_stdin_closes,
    } = args;
    let addr: SocketAddr = bind
        .parse()
        .with_context(|| format!("--bind {bind}: expected an address like 127.0.0.1:8337"))?;
    if !(run_timeout.is_finite()
        && run_timeout >= MIN_RUN_TIMEOUT.as_secs_f64()
        && run_timeout < 1e9)
    {
        anyhow::bail!(
            "--run-timeout {run_timeout}: expected a number of seconds, at least {}",
            MIN_RUN_TIMEOUT.as_secs_f64()
        );
    }
    // Agents send a heartbeat every 2 s, the Python client after 5 s of silence (an open
    // trial, a server-mode run): below three of those a healthy client's run can be crashed.
    if run_timeout < CLIENT_SILENCE_S * 3.0 {
        eprintln!(
            "hyperdial: warning: --run-timeout {run_timeout} is short: the Python client sends \
             a heartbeat after {CLIENT_SILENCE_S} s of silence (agents every 2 s), so trials and \
             runs of a slow or briefly stalled client may be marked crashed while they are \
             still working; {} s or more is safe",
            CLIENT_SILENCE_S * 3.0
        );
    }
    // A non-loopback address without a token is refused before anything else: no database
    // opened or created, no startup line printed (the check in `serve` stays as the backstop).
    if !addr.ip().is_loopback() && token.as_deref().unwrap_or("").is_empty() {
        return Err(hyperdial_server::ServeError::TokenRequired(addr).into());
    }
    // Certificate problems stop the server before it opens the database or listens.
    let tls = match tls {
        Some((cert, key)) => Some(TlsConfig::from_pem_files(&cert, &key)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let db = db.unwrap_or_else(|| default_db(std::path::Path::new(STATE_DIR)));
    let store = Store::open(&db)
        .await
        .with_context(|| format!("cannot open the database {}", hyperdial_store::redact(&db)))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // A closed standard output (`hyperdial server | head -1`) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "hyperdial server on {scheme}://{local} (database {})",
        store.describe()
    );
    let _ = writeln!(out, "dashboard: {scheme}://{local}/");
    let _ = out.flush();
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
    let stdin_closed = async move {
        if !until_stdin_closes {
            return std::future::pending::<&'static str>().await;
        }
        // A blocking read on a plain thread of its own (the runtime would wait for a blocking
        // task at exit): it ends when the parent's pipe closes.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = tx.send(());
        });
        let _ = rx.await;
        "standard input closed"
    };
    let shutdown = async move {
        let signalled = std::future::poll_fn(|cx| {
            for (stream, name) in signals.iter_mut() {
                if stream.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(*name);
                }
            }
            std::task::Poll::Pending
        });
        let name = tokio::select! {
            name = signalled => name,
            why = stdin_closed => why,
        };
        let _ = writeln!(std::io::stderr(), "{name}: shutting down");
    };
    // Only a PostgreSQL database can be shared by several servers.
    let events_url = match hyperdial_store::Location::parse(&db)? {
        hyperdial_store::Location::Postgres(url) => Some(url),
        hyperdial_store::Location::Sqlite(_) => None,
    };
    let options = Options {
        token,
        allowed_hosts,
        tls,
        run_timeout: Some(Duration::from_secs_f64(run_timeout)),
        events_url,
    };
    hyperdial_server::serve(listener, store, options, shutdown).await?;
    let _ = writeln!(std::io::stderr(), "stopped; database closed");
    Ok(ExitCode::SUCCESS)
}
