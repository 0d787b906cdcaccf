//! `hyperdial ui [--db URL] [--port N]`: serve the dashboard (and the API behind it) on the
//! local store, on loopback, until SIGINT (Ctrl-C), SIGTERM or SIGHUP.
//!
//! It is the way back to a sweep after `tune` has exited, and the dashboard of the runs that
//! `hyperdial run`, the Python client and `sync` wrote without a server. The store is the one
//! `--db` names, else `HYPERDIAL_DB`, else `./.hyperdial/hyperdial.db`; a SQLite file that does
//! not exist is an error naming it. The port is `--port` when free, else any free port, and
//! the URL printed is the one that answers.
//!
//! It may run while a `tune` or `hyperdial server` uses the same SQLite file: the write-ahead
//! log lets one writer and any number of readers share it, and every write waits for the
//! lock. On SQLite, live events reach the dashboards of the process that made the change: a
//! page served here shows what another process wrote when it reloads (or, on the sweeps and
//! runs pages, on their periodic refresh). On PostgreSQL, events are shared with the other
//! servers of the database ([`hyperdial_server::fanout`]), so its pages are live.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use super::signals::until_signal;
use crate::embedded::{default_db, Embedded, STATE_DIR};

/// Run the command.
pub async fn run(db: Option<String>, port: u16) -> Result<ExitCode> {
    let state_dir = std::env::current_dir()?.join(STATE_DIR);
    let db = db.unwrap_or_else(|| default_db(&state_dir));
    crate::source::require_store(&db)?;
    let mut server = Embedded::start(&db, port).await?;
    if db == default_db(&state_dir) {
        server.advertise(&state_dir);
    }
    let mut out = std::io::stdout();
    if server.addr.port() != port && port != 0 {
        let _ = writeln!(
            out,
            "port {port} is in use; serving on {} instead",
            server.addr.port()
        );
    }
    let _ = writeln!(
        out,
        "hyperdial ui on the store {} (Ctrl-C to stop)",
        hyperdial_wire::redact_url(&db)
    );
    let _ = writeln!(out, "dashboard: {}/", server.url());
    let _ = writeln!(out, "every run: {}/runs", server.url());
    let _ = out.flush();
    let name = until_signal().await;
    let _ = writeln!(std::io::stderr(), "{name}: stopping the dashboard");
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}
