//! Where the read commands (`sweeps`, `runs`, `best`, `export`, `output`) read from: a
//! server, or the local store without any server.
//!
//! The rule ([`Source::target`]):
//!
//! 1. `--db URL` names a store: it is read directly (a SQLite path or `sqlite://` URL, or a
//!    PostgreSQL URL); `--db` and `--server` together are refused by the parser.
//! 2. Else `--server URL`, or `HYPERDIAL_SERVER` when set and not empty, names a server: it is
//!    asked over HTTP, as every command that needs a server does.
//! 3. Else the default store is read directly: `HYPERDIAL_DB` when set, else
//!    `./.hyperdial/hyperdial.db` (the store `tune`, `run` and `sync` write without a server).
//!
//! A store is read through the same API code a server runs ([`hyperdial_server::router`]),
//! served in this process on an ephemeral loopback port that lives as long as the command:
//! the answers, and so the printed output, are the same either way, and there is one
//! formatting path. That in-process router runs no janitor (it marks nothing crashed), so a
//! read changes nothing in the store. SQLite's write-ahead log lets it read while a `tune`,
//! `hyperdial server` or `hyperdial ui` writes the same file. A SQLite file that does not
//! exist is an error naming it, never created empty.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use hyperdial_store::{Location, Store};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::embedded::{default_db, STATE_DIR};
use crate::Remote;

/// The options of a read command: a server, or a store to read without one.
#[derive(Debug, Clone, Args)]
pub struct Source {
    #[command(flatten)]
    pub remote: Remote,
    /// Read this store directly, without a server: a SQLite file (a path, or sqlite://PATH) or a
    /// PostgreSQL URL. Without --db and --server (or HYPERDIAL_SERVER): $HYPERDIAL_DB, else
    /// ./.hyperdial/hyperdial.db.
    #[arg(long, conflicts_with = "server")]
    pub db: Option<String>,
}

/// What a read command reads: a server, or a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A server at this URL.
    Server(String),
    /// A store (a path or URL for [`Store::open`]).
    Store(String),
}

impl Source {
    /// Apply the rule of the module docs; `state_dir` is where the default store lives.
    pub fn target(&self, state_dir: &Path) -> Target {
        match (&self.db, self.remote.given()) {
            (Some(db), _) => Target::Store(db.clone()),
            (None, Some(url)) => Target::Server(url),
            (None, None) => Target::Store(default_db(state_dir)),
        }
    }

    /// Open what the command reads: an [`Api`] on the server, or on the store served in this
    /// process. Errors: a SQLite file that does not exist, a store that cannot be opened, a bad
    /// CA certificate file.
    pub async fn open(&self) -> Result<Reader> {
        let state_dir = std::env::current_dir()
            .map(|d| d.join(STATE_DIR))
            .unwrap_or_else(|_| PathBuf::from(STATE_DIR));
        match self.target(&state_dir) {
            Target::Server(_) => Ok(Reader {
                api: self.remote.api()?,
                local: None,
            }),
            Target::Store(db) => Reader::local(&db).await,
        }
    }
}

impl Remote {
    /// The options of a command printed for the user to run next (a page, a follow-up) that
    /// reach the server this command reached, each with a leading space: ` --server URL` when
    /// it was given as an option, ` --ca-cert FILE` when it was. What came from the environment
    /// (`HYPERDIAL_SERVER`, `HYPERDIAL_CA_CERT`) is not repeated: the next command in the same
    /// shell reads it again. Never a token, nor `--token "$HYPERDIAL_TOKEN"` (the shell would
    /// expand it onto the next command's argv, where `ps` shows it): the printed commands read
    /// the token from `HYPERDIAL_TOKEN`, and when it was given here as `--token` the first call
    /// in a process says so once on standard error ([`TOKEN_NOTE`]).
    pub fn flags(&self) -> String {
        let from_env = |var: &str, value: &str| std::env::var(var).is_ok_and(|v| v == value);
        let mut flags = String::new();
        if let Some(server) = self.server.as_deref().filter(|s| !s.trim().is_empty()) {
            flags.push_str(&format!(
                " --server {}",
                crate::commands::validate::shell_quote(server)
            ));
        }
        if let Some(ca) = &self.ca_cert {
            let shown = ca.display().to_string();
            if !from_env("HYPERDIAL_CA_CERT", &shown) {
                flags.push_str(&format!(
                    " --ca-cert {}",
                    crate::commands::validate::shell_quote(&shown)
                ));
            }
        }
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            if !from_env("HYPERDIAL_TOKEN", token) {
                static NOTED: std::sync::Once = std::sync::Once::new();
                NOTED.call_once(|| eprintln!("hyperdial: note: {TOKEN_NOTE}"));
            }
        }
        flags
    }
}

/// What [`Remote::flags`] says once when the token was given as `--token`: the commands it
/// prints leave the token out and read it from the environment.
pub const TOKEN_NOTE: &str = "the commands hyperdial suggests leave the token out: they read \
     it from HYPERDIAL_TOKEN, so `export HYPERDIAL_TOKEN=...` before running them (on the command \
     line, `--token \"$HYPERDIAL_TOKEN\"` included, a token is visible to other users in `ps`)";

impl Source {
    /// The options of a command printed for the user to run next that read what this command
    /// read, each with a leading space: the server's ([`Remote::flags`]), or ` --db DB` when
    /// a store was named with `--db` (a password in a URL hidden, as everywhere it is shown).
    pub fn flags(&self) -> String {
        match &self.db {
            Some(db) => format!(
                " --db {}",
                crate::commands::validate::shell_quote(&hyperdial_wire::redact_url(db))
            ),
            None => self.remote.flags(),
        }
    }
}

/// Fail unless `db` names a PostgreSQL database or a SQLite file that exists: reading a store
/// must not create an empty one where the user expected their runs.
pub fn require_store(db: &str) -> Result<()> {
    if let Location::Sqlite(path) = Location::parse(db)? {
        if !path.exists() {
            anyhow::bail!(
                "there is no hyperdial store at {}: nothing has been run with it here (`hyperdial tune`, \
                 `run` and `sync` write it); name one with --db PATH, or a server with --server URL",
                path.display()
            );
        }
    }
    Ok(())
}

/// The store as the messages name it: a SQLite file by its path, anything else redacted.
fn local_name(db: &str, shown: &str) -> String {
    match Location::parse(db) {
        Ok(Location::Sqlite(path)) => path.display().to_string(),
        _ => shown.to_string(),
    }
}

/// An open source of a read command; call [`Reader::close`] when done.
pub struct Reader {
    /// The API to ask.
    pub api: Api,
    local: Option<Local>,
}

/// The store served in this process.
struct Local {
    store: Store,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Reader {
    /// Open the store at `db` and serve it on an ephemeral loopback port of this process.
    pub async fn local(db: &str) -> Result<Reader> {
        let shown = hyperdial_wire::redact_url(db);
        require_store(db)?;
        let store = Store::open(db)
            .await
            .with_context(|| format!("cannot open the database {shown}"))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot listen on a loopback port to read the store")?;
        let addr = listener.local_addr()?;
        let app = hyperdial_server::router(store.clone(), hyperdial_server::Options::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                stopped.await.ok();
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                eprintln!("reading the store failed: {e}");
            }
        });
        Ok(Reader {
            api: Api::for_store(&format!("http://{addr}"), &local_name(db, &shown)),
            local: Some(Local { store, stop, task }),
        })
    }

    /// Stop serving the store (if any) and close it.
    pub async fn close(self) {
        if let Some(local) = self.local {
            local.stop.send(()).ok();
            let _ = local.task.await;
            local.store.close().await;
        }
    }
}

/// A [`Source`] naming `server` or `db` (no token, no CA certificate), for tests.
#[cfg(test)]
pub(crate) fn source(server: Option<&str>, db: Option<&str>) -> Source {
    Source {
        remote: Remote {
            server: server.map(str::to_string),
            token: None,
            ca_cert: None,
        },
        db: db.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_up_commands_repeat_the_options_given_never_the_token() {
        assert_eq!(source(None, None).flags(), "");
        assert_eq!(
            source(Some("http://gpu-box:8337"), None).flags(),
            " --server http://gpu-box:8337"
        );
        assert_eq!(
            source(None, Some("runs/my store.db")).flags(),
            " --db 'runs/my store.db'"
        );
        let mut tls = source(Some("https://sweeps.lan"), None);
        tls.remote.ca_cert = Some("certs/ca.pem".into());
        // A value no test sets in the environment, so it came from the option.
        tls.remote.token = Some("s3cret-given-as-an-option".into());
        let flags = tls.flags();
        assert_eq!(flags, " --server https://sweeps.lan --ca-cert certs/ca.pem");
        assert!(!flags.contains("s3cret") && !flags.contains("--token"));
    }

    #[test]
    fn a_named_store_or_server_wins_else_the_default_store() {
        let dir = Path::new("/proj/.hyperdial");
        assert_eq!(
            source(None, Some("other.db")).target(dir),
            Target::Store("other.db".into())
        );
        assert_eq!(
            source(Some("http://h:1"), None).target(dir),
            Target::Server("http://h:1".into())
        );
        // The environment is read when no flag is given; this test sets neither variable.
        if std::env::var_os("HYPERDIAL_SERVER").is_none()
            && std::env::var_os("HYPERDIAL_DB").is_none()
        {
            assert_eq!(
                source(None, None).target(dir),
                Target::Store("/proj/.hyperdial/hyperdial.db".into())
            );
        }
    }
}
