//! `hyperdial server`: serve the API and overview pages until SIGINT (Ctrl-C), SIGTERM or
//! SIGHUP (with `--token-file`, SIGHUP re-reads the token file instead, see
//! [`hyperdial_server::tokens`]). Any of them shuts it down gracefully: it stops accepting connections, lets requests
//! in flight finish (for at most [`hyperdial_server::SHUTDOWN_GRACE`]) and closes the database
//! cleanly (the WAL is checkpointed), then exits 0. With the hidden `--until-stdin-closes` it
//! also does so when its standard input reaches its end: a process that starts a server for
//! itself (the Python client's local server) gives it a pipe, and the server ends with it.
//!
//! With `--tls-cert` and `--tls-key` it serves HTTPS only and prints `https://` URLs; a bad
//! certificate or key file stops it before it listens, with the file and what is wrong.
//! On a PostgreSQL database (`--db postgres://…`) several servers may run side by side; their
//! live events reach each other's dashboards through the database
//! ([`hyperdial_server::fanout`]). A PostgreSQL database that is not up yet is waited for
//! (`--db-wait`); a weak token gets a warning; a server bound to every address names the
//! machine in its first line and its dashboard line.
//!
//! The start-up lines say where the accepted tokens come from and how many from each (never
//! the tokens): the token file is re-read on SIGHUP, a `--token` or `HYPERDIAL_TOKEN` is
//! fixed until restart, and a server given both gets a warning that SIGHUP does not rotate
//! the fixed one.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use hyperdial_server::tokens::{read_token_file, unsendable, weakness, MAKE_A_TOKEN};
use hyperdial_server::{Options, TlsConfig, Tokens, MIN_RUN_TIMEOUT};
use hyperdial_store::{Location, Store};
use tokio::signal::unix::{signal, SignalKind};

use crate::embedded::{default_db, STATE_DIR};

/// The command's arguments.
#[derive(Debug)]
pub struct ServerArgs {
    /// Database: a SQLite path or URL, or a PostgreSQL URL (default ./.hyperdial/hyperdial.db).
    pub db: Option<String>,
    /// Seconds to wait for a PostgreSQL database that does not accept connections yet.
    pub db_wait: f64,
    /// Address to listen on.
    pub bind: String,
    /// API tokens (`--token`, repeatable, or `HYPERDIAL_TOKEN`).
    pub token: Vec<String>,
    /// Whether `token` came from `HYPERDIAL_TOKEN` (else from `--token`).
    pub token_from_env: bool,
    /// File of API tokens, one per line, re-read on SIGHUP.
    pub token_file: Option<PathBuf>,
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
        db_wait,
        bind,
        token,
        token_from_env,
        token_file,
        allowed_hosts,
        tls,
        run_timeout,
        until_stdin_closes,
    } = args;
    let fixed: Vec<String> = token.into_iter().filter(|t| !t.is_empty()).collect();
    let sources = TokenSources {
        fixed: fixed.len(),
        fixed_from: if token_from_env {
            "HYPERDIAL_TOKEN"
        } else {
            "--token"
        },
        file: token_file.clone(),
    };
    let (accepted, from_file) = accepted_tokens(&fixed, &sources)?;
    let tokens = Tokens::new(accepted);
    if let Some(warning) = sources.not_rotated_warning() {
        eprintln!("hyperdial: warning: {warning}");
    }
    let addr = bind_addr(&bind)?;
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
    if !addr.ip().is_loopback() && tokens.is_empty() {
        return Err(hyperdial_server::ServeError::TokenRequired(addr).into());
    }
    // Certificate problems stop the server before it opens the database or listens.
    let tls = match tls {
        Some((cert, key)) => Some(TlsConfig::from_pem_files(&cert, &key)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let db = db.unwrap_or_else(|| default_db(std::path::Path::new(STATE_DIR)));
    if !(db_wait.is_finite() && (0.0..1e6).contains(&db_wait)) {
        anyhow::bail!("--db-wait {db_wait}: expected a number of seconds, 0 or more");
    }
    // A port already taken is said before the database is opened (or created, or
    // migrated): a second `hyperdial server` started by mistake changes no file. The port is
    // let go again while the database opens, so that clients are refused, not held, meanwhile.
    drop(
        tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?,
    );
    let store = open_waiting(&db, Duration::from_secs_f64(db_wait)).await?;
    // An upgrade says what it changed (a new database's schema is created silently; the log
    // at level info lists every migration either way).
    let applied = store.migrations_applied();
    if !applied.is_empty() && applied[0].version > 1 {
        let names: Vec<String> = applied.iter().map(|m| m.to_string()).collect();
        eprintln!(
            "hyperdial: upgraded the database schema: applied migration{} {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // A closed standard output (`hyperdial server | head -1`) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "hyperdial server on {} (database {})",
        listening(scheme, local),
        store.describe()
    );
    if !tokens.is_empty() {
        let _ = writeln!(out, "tokens: {}", sources.describe(from_file));
    }
    let _ = writeln!(out, "dashboard: {}", dashboard(scheme, local));
    let _ = out.flush();
    let mut signals = Vec::new();
    let mut stopping = vec![
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
    ];
    // With a token file, SIGHUP re-reads it; without one, it stops the server as it always did.
    match &token_file {
        Some(path) => {
            let mut hangups = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
            let (tokens, path) = (tokens.clone(), path.clone());
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    reload_tokens(&tokens, &fixed, &sources, &path);
                }
            });
        }
        None => stopping.push((SignalKind::hangup(), "SIGHUP")),
    }
    for (kind, name) in stopping {
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
        tokens,
        allowed_hosts,
        tls,
        run_timeout: Some(Duration::from_secs_f64(run_timeout)),
        events_url,
    };
    hyperdial_server::serve(listener, store, options, shutdown).await?;
    let _ = writeln!(std::io::stderr(), "stopped; database closed");
    Ok(ExitCode::SUCCESS)
}

/// Where the server's tokens come from, for the start-up and SIGHUP lines: counts and names,
/// never the tokens.
struct TokenSources {
    /// How many tokens were given once (`--token` or `HYPERDIAL_TOKEN`): fixed until restart.
    fixed: usize,
    /// Where those came from: `--token` or `HYPERDIAL_TOKEN`.
    fixed_from: &'static str,
    /// The token file, re-read on SIGHUP.
    file: Option<PathBuf>,
}

impl TokenSources {
    /// The sources in force and how many tokens each gives, with `from_file` tokens read from
    /// the file: `2 from --token-file F (re-read on SIGHUP), 1 from HYPERDIAL_TOKEN (fixed
    /// until restart)`.
    fn describe(&self, from_file: usize) -> String {
        let mut parts = Vec::new();
        if let Some(path) = &self.file {
            parts.push(format!(
                "{from_file} from --token-file {} (re-read on SIGHUP)",
                path.display()
            ));
        }
        if self.fixed > 0 {
            parts.push(format!(
                "{} from {} (fixed until restart)",
                self.fixed, self.fixed_from
            ));
        }
        parts.join(", ")
    }

    /// With a token file and a fixed token both, the warning that SIGHUP does not rotate the
    /// fixed one, and how to move it into the file; `None` otherwise.
    fn not_rotated_warning(&self) -> Option<String> {
        let path = self.file.as_ref()?.display();
        if self.fixed == 0 {
            return None;
        }
        let (which, stays) = if self.fixed == 1 {
            (format!("the token of {}", self.fixed_from), "stays")
        } else {
            (
                format!("the {} tokens of {}", self.fixed, self.fixed_from),
                "stay",
            )
        };
        let restart = if self.fixed_from == "HYPERDIAL_TOKEN" {
            "restart the server without HYPERDIAL_TOKEN in its environment (`unset \
             HYPERDIAL_TOKEN`, or `env -u HYPERDIAL_TOKEN hyperdial server ...`)"
        } else {
            "restart the server without --token"
        };
        Some(format!(
            "{which} {stays} accepted until the server restarts: SIGHUP re-reads only \
             --token-file {path}, so removing a token from that file does not revoke it. To \
             rotate it with the others, add it as a line of {path} and {restart}"
        ))
    }
}

/// The tokens the server accepts, and how many of them the file gave: the fixed ones
/// (`--token` or `HYPERDIAL_TOKEN`, empty ones already dropped) and those of the token file,
/// with a warning on standard error for each weak one.
fn accepted_tokens(fixed: &[String], sources: &TokenSources) -> Result<(Vec<String>, usize)> {
    let mut tokens = Vec::new();
    for (i, token) in fixed.iter().enumerate() {
        let which = if fixed.len() > 1 {
            format!("{} number {}", sources.fixed_from, i + 1)
        } else {
            format!("the token of {}", sources.fixed_from)
        };
        if let Some(why) = unsendable(token) {
            anyhow::bail!("{which} cannot be used: {why}; make a strong one with {MAKE_A_TOKEN}");
        }
        warn_if_weak(&which, token);
        tokens.push(token.clone());
    }
    let mut from_file = 0;
    if let Some(path) = &sources.file {
        for t in read_token_file(path)? {
            warn_if_weak(
                &format!("the token on line {} of {}", t.line, path.display()),
                &t.token,
            );
            tokens.push(t.token);
            from_file += 1;
        }
    }
    Ok((tokens, from_file))
}

/// A warning on standard error when `token` is weak; `which` names it (never the token).
fn warn_if_weak(which: &str, token: &str) {
    if let Some(why) = weakness(token) {
        eprintln!(
            "hyperdial: warning: {which} is weak ({why}): anyone who can reach the server \
             may guess it; make a strong one with {MAKE_A_TOKEN}"
        );
    }
}

/// `N token(s)`.
fn count_tokens(n: usize) -> String {
    format!("{n} token{}", if n == 1 { "" } else { "s" })
}

/// Re-read the token file at `path` after SIGHUP: its tokens replace those read from it
/// before (the fixed ones stay accepted), and the line says every token in force, by source.
/// A file that cannot be read or holds no token leaves the tokens in force as they were, and
/// says so.
fn reload_tokens(tokens: &Tokens, fixed: &[String], sources: &TokenSources, path: &Path) {
    let file_only = TokenSources {
        fixed: 0,
        fixed_from: sources.fixed_from,
        file: Some(path.to_path_buf()),
    };
    match accepted_tokens(&[], &file_only) {
        Ok((read, from_file)) => {
            tokens.replace(fixed.iter().cloned().chain(read));
            eprintln!(
                "SIGHUP: re-read {}: {} accepted: {}",
                path.display(),
                count_tokens(tokens.len()),
                sources.describe(from_file)
            );
        }
        Err(e) => eprintln!(
            "hyperdial: error: SIGHUP: {e:#}; the {} accepted before stay in force",
            count_tokens(tokens.len())
        ),
    }
}

/// Longest pause between two attempts to reach a database that is not up yet.
const DB_RETRY_MAX: Duration = Duration::from_secs(2);

/// Open the database at `db`; while its server does not accept connections yet
/// ([`hyperdial_store::StoreError::database_not_up`]: a PostgreSQL started alongside this
/// server), try again with backoff for up to `wait`, saying once on standard error what it
/// waits for. Anything else fails at once.
async fn open_waiting(db: &str, wait: Duration) -> Result<Store> {
    let shown = hyperdial_wire::redact_url(db);
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut waited = false;
    loop {
        let e = match Store::open(db).await {
            Ok(store) => {
                if waited {
                    eprintln!(
                        "hyperdial: the database {shown} accepts connections (after {:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                return Ok(store);
            }
            Err(e) => e,
        };
        let left = wait.saturating_sub(started.elapsed());
        if !e.database_not_up() || left.is_zero() {
            // The store's own error names the URL when it is about the URL or the connection.
            let mut context = if e.to_string().contains(shown.as_str()) {
                "cannot open the database".to_string()
            } else {
                format!("cannot open the database {shown}")
            };
            if waited {
                context.push_str(&format!(
                    " (it did not accept connections within --db-wait {} s)",
                    wait.as_secs_f64()
                ));
            }
            if let (Some(hyperdial_store::Fault::DiskFull), Ok(Location::Sqlite(file))) =
                (e.fault(), Location::parse(db))
            {
                let dir = file
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                context.push_str(&format!(
                    " (free space on the volume holding {}, then start it again)",
                    dir.display()
                ));
            }
            return Err(anyhow::Error::new(e).context(context));
        }
        if !waited {
            eprintln!(
                "hyperdial: waiting up to {} s for the database {shown} to accept connections \
                 ({e}); --db-wait SECONDS (or HYPERDIAL_DB_WAIT) sets how long",
                wait.as_secs_f64()
            );
            waited = true;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(DB_RETRY_MAX);
    }
}

/// How a browser or client on another machine names a server bound to `local`: the address
/// itself, or this machine's host name when it is bound to every address (`0.0.0.0`, `[::]`),
/// since no client can connect to `0.0.0.0`.
fn reachable_url(scheme: &str, local: SocketAddr) -> String {
    if !local.ip().is_unspecified() {
        return format!("{scheme}://{local}");
    }
    let host = hyperdial_agent::hostname();
    let host = if host == "unknown" {
        "HOSTNAME".into()
    } else {
        host
    };
    format!("{scheme}://{host}:{port}", port = local.port())
}

/// Where the server listens, for its first line: the URL, and for a server bound to every
/// address a reachable URL (the host name) with the bound address in parentheses.
fn listening(scheme: &str, local: SocketAddr) -> String {
    let url = reachable_url(scheme, local);
    if local.ip().is_unspecified() {
        format!("{url} (listening on all interfaces: {local})")
    } else {
        url
    }
}

/// The dashboard's URL for the startup line. A server bound to every address (`0.0.0.0`,
/// `[::]`) is named by this machine's host name, and the line says that any other name or
/// address of the machine works too.
fn dashboard(scheme: &str, local: SocketAddr) -> String {
    let url = reachable_url(scheme, local);
    if !local.ip().is_unspecified() {
        return format!("{url}/");
    }
    format!(
        "{url}/ (listening on every address of this machine: any name or address of it that \
         the browser's machine can reach works)"
    )
}

/// The address `--bind` names: an IP address and port (`127.0.0.1:8337`, `[::1]:8337`,
/// `0.0.0.0:8337`), or `localhost:PORT` for `127.0.0.1:PORT`. Other host names are refused
/// (one could resolve to several addresses, and whether it is loopback decides the token).
fn bind_addr(bind: &str) -> Result<SocketAddr> {
    if let Ok(addr) = bind.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = bind
        .strip_prefix("localhost:")
        .and_then(|p| p.parse::<u16>().ok())
    {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    anyhow::bail!(
        "--bind {bind}: expected an address and port like 127.0.0.1:8337 (or localhost:8337); \
         for another host name give its address"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn bind_takes_an_address_or_localhost() {
        use super::bind_addr;
        assert_eq!(
            bind_addr("127.0.0.1:8337").unwrap().to_string(),
            "127.0.0.1:8337"
        );
        assert_eq!(bind_addr("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert_eq!(
            bind_addr("localhost:9000").unwrap().to_string(),
            "127.0.0.1:9000"
        );
        let err = bind_addr("example.com:80").unwrap_err().to_string();
        assert!(err.contains("give its address"), "{err}");
        assert!(bind_addr("localhost").is_err());
    }

    use super::*;

    #[test]
    fn the_dashboard_of_an_unspecified_address_names_the_host() {
        let host = hyperdial_agent::hostname();
        let any: SocketAddr = "0.0.0.0:8337".parse().unwrap();
        let line = dashboard("http", any);
        assert!(
            line.starts_with(&format!("http://{host}:8337/ (")),
            "{line}"
        );
        assert!(!line.contains("0.0.0.0"), "{line}");
        let any6: SocketAddr = "[::]:9000".parse().unwrap();
        assert!(dashboard("https", any6).starts_with(&format!("https://{host}:9000/")));
        let one: SocketAddr = "10.1.2.3:8337".parse().unwrap();
        assert_eq!(dashboard("http", one), "http://10.1.2.3:8337/");
    }

    #[test]
    fn the_first_line_of_an_unspecified_address_names_the_host_and_all_interfaces() {
        let host = hyperdial_agent::hostname();
        let any: SocketAddr = "0.0.0.0:8337".parse().unwrap();
        assert_eq!(
            listening("http", any),
            format!("http://{host}:8337 (listening on all interfaces: 0.0.0.0:8337)")
        );
        let one: SocketAddr = "127.0.0.1:8337".parse().unwrap();
        assert_eq!(listening("https", one), "https://127.0.0.1:8337");
    }

    fn sources(fixed: usize, fixed_from: &'static str, file: Option<&str>) -> TokenSources {
        TokenSources {
            fixed,
            fixed_from,
            file: file.map(PathBuf::from),
        }
    }

    #[test]
    fn token_sources_are_counted_by_source_and_a_fixed_one_beside_a_file_is_warned_of() {
        let both = sources(1, "HYPERDIAL_TOKEN", Some("tokens"));
        assert_eq!(
            both.describe(2),
            "2 from --token-file tokens (re-read on SIGHUP), 1 from HYPERDIAL_TOKEN (fixed \
             until restart)"
        );
        let warning = both.not_rotated_warning().unwrap();
        assert!(
            warning.starts_with("the token of HYPERDIAL_TOKEN stays accepted until"),
            "{warning}"
        );
        assert!(
            warning.contains("add it as a line of tokens")
                && warning.contains("env -u HYPERDIAL_TOKEN"),
            "{warning}"
        );
        let warning = sources(2, "--token", Some("tokens"))
            .not_rotated_warning()
            .unwrap();
        assert!(
            warning.starts_with("the 2 tokens of --token stay accepted")
                && warning.ends_with("restart the server without --token"),
            "{warning}"
        );
        let file_only = sources(0, "--token", Some("tokens"));
        assert_eq!(
            file_only.describe(3),
            "3 from --token-file tokens (re-read on SIGHUP)"
        );
        assert!(file_only.not_rotated_warning().is_none());
        let fixed_only = sources(1, "--token", None);
        assert_eq!(
            fixed_only.describe(0),
            "1 from --token (fixed until restart)"
        );
        assert!(fixed_only.not_rotated_warning().is_none());
    }
}
