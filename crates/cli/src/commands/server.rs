//! `hyperdial server`: serve the API and overview pages until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_server::Options;
use hyperdial_store::Store;

use crate::embedded::{default_db, STATE_DIR};

/// Run the command.
pub async fn run(
    db: Option<PathBuf>,
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
        .with_context(|| format!("cannot open the database {}", db.display()))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!(
        "hyperdial server on http://{local} (database {})",
        db.display()
    );
    println!("dashboard: http://{local}/");
    let shutdown = async {
        tokio::signal::ctrl_c().await.ok();
        eprintln!("shutting down");
    };
    let options = Options {
        token,
        allowed_hosts,
    };
    hyperdial_server::serve(listener, store, options, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
