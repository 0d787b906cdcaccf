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
    /// The file that says it serves its state directory ([`Embedded::advertise`]), removed
    /// when it stops.
    advertised: Option<std::path::PathBuf>,
}

/// The file in a state directory that names the `tune` or `ui` serving its store, as
/// `{"url": …, "pid": …}`: the commands that change a sweep or a run (`pause`, `resume`,
/// `stop`, `cancel`) go there when no server is named, so they reach the live server of the
/// sweep (its agents hear of it at once).
pub const SERVING_FILE: &str = "serving.json";

/// The URL of the `tune` or `ui` that serves the store of `state_dir` now, from its
/// [`SERVING_FILE`]: `None` when there is none, its process is gone (a file left by a killed
/// one), or it does not answer.
pub async fn advertised(state_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(state_dir.join(SERVING_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pid = i32::try_from(v["pid"].as_i64()?).ok()?;
    // SAFETY: signal 0 checks that the process exists; nothing is sent.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return None;
    }
    let url = v["url"].as_str()?.to_string();
    match crate::api::Api::new(&url, None).reachable().await {
        Ok(true) => Some(url),
        _ => None,
    }
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
            advertised: None,
        })
    }

    /// Say in `state_dir` ([`SERVING_FILE`]) that this server serves its store, until it
    /// stops. Best effort: a directory that cannot be written only loses the hint.
    pub fn advertise(&mut self, state_dir: &Path) {
        let path = state_dir.join(SERVING_FILE);
        let body = serde_json::json!({"url": self.url(), "pid": std::process::id()});
        if std::fs::create_dir_all(state_dir).is_ok()
            && std::fs::write(&path, body.to_string()).is_ok()
        {
            self.advertised = Some(path);
        }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and wait for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(path) = self.advertised.take() {
            let _ = std::fs::remove_file(path);
        }
        if let Some(tx) = self.stop.take() {
            tx.send(()).ok();
        }
        let _ = (&mut self.task).await;
    }
}
