//! An in-process server on the local store, for `tune`, `ui`, `run` and `sync` when no server
//! is running: the SQLite file under `.hyperdial/`, or the database `HYPERDIAL_DB` names (a
//! path or a `sqlite://` or `postgres://` URL).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use hyperdial_server::Options;
use hyperdial_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Default directory of local state: the database, run files and the Python client.
pub const STATE_DIR: &str = ".hyperdial";

/// The database when none is named on the command line: `HYPERDIAL_DB` if set and not
/// empty, else `hyperdial.db` under the state directory.
pub fn default_db(state_dir: &Path) -> String {
    match std::env::var("HYPERDIAL_DB") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => state_dir
            .join("hyperdial.db")
            .to_string_lossy()
            .into_owned(),
    }
}

/// A running embedded server.
pub struct Embedded {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Embedded {
    /// Open the store at `db` (a path or URL, see [`Store::open`]) and serve it on loopback:
    /// `port` if free (0 for any), else an ephemeral port.
    pub async fn start(db: &str, port: u16) -> Result<Embedded> {
        let store = Store::open(db).await.with_context(|| {
            format!(
                "cannot open the database {}",
                hyperdial_wire::redact_url(db)
            )
        })?;
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind(("127.0.0.1", 0)).await?,
        };
        let addr = listener.local_addr()?;
        // On PostgreSQL, live events are shared with the other servers of the database (a
        // `hyperdial ui` beside a `hyperdial server`), as `hyperdial server` does.
        let options = Options {
            events_url: match hyperdial_store::Location::parse(db)? {
                hyperdial_store::Location::Postgres(url) => Some(url),
                hyperdial_store::Location::Sqlite(_) => None,
            },
            ..Options::default()
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                rx.await.ok();
            };
            if let Err(e) = hyperdial_server::serve(listener, store, options, shutdown).await {
                eprintln!("embedded server stopped: {e}");
            }
        });
        Ok(Embedded {
            addr,
            stop: Some(tx),
            task,
        })
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and wait for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            tx.send(()).ok();
        }
        let _ = (&mut self.task).await;
    }
}
