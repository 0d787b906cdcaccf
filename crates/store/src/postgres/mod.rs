//! The PostgreSQL backend: a connection pool on one database, which several servers can
//! share.
//!
//! Write transactions are `BEGIN` … `COMMIT` at PostgreSQL's default isolation (read
//! committed). An operation that reads before it writes takes the row lock of what it reads
//! (`SELECT … FOR UPDATE` on the run for a metric batch, a summary or config merge; on the
//! sweep for queueing retries); the queued-run pick uses `FOR UPDATE SKIP LOCKED`, so
//! concurrent claims take different runs without waiting on each other; everything else is a
//! single conditional statement. A serialization failure or deadlock (`40001`, `40P01`) runs
//! the whole operation again, a few times, before it answers busy.
//!
//! The schema lives in `migrations/postgres` (the same tables as SQLite's, with `BIGINT`,
//! `DOUBLE PRECISION`, `BOOLEAN` and JSON as `TEXT`, except the metric points: chunks of up to
//! 78 points per series, see [`chunks`]); migrations take PostgreSQL's advisory lock, so
//! servers starting together apply them once.
//!
//! **Encryption.** The URL's `sslmode` is libpq's: `prefer` (the default) uses TLS when the
//! database server offers it and goes on in plain text when it does not; `require` insists
//! on TLS without checking the certificate; `verify-ca` and `verify-full` check it against
//! `sslrootcert` (or the Mozilla roots built in) and, for `verify-full`, the host name.
//! [`PostgresStorage::open`] reads back whether the connection it made is encrypted
//! (`pg_stat_ssl`): the server's start-up line says so, and a plain-text connection to a
//! host other than this machine is warned about, since the password and every row would
//! cross the network readable.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::Postgres;

use crate::dashboard::Dialect;

type Db = Postgres;
type DbRow = PgRow;
type DbConn = PgConnection;
type Backend = PostgresStorage;

/// Every transaction older than the oldest one still running has committed or aborted, so
/// every change not yet visible has a transaction id above this.
const CHANGE_MARK_NOW: &str =
    "SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) - 1 AS mark";
const FOR_UPDATE: &str = " FOR UPDATE";
/// The queued-run pick locks the run it takes and skips those other claims hold.
const SKIP_LOCKED_R: &str = " FOR UPDATE OF r SKIP LOCKED";
const DIALECT: Dialect = Dialect::Postgres;

/// Connections per server process.
pub const POOL_SIZE: u32 = 16;

/// How long opening the database may wait for the server's first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a pooled connection before it answers `503` (`busy`, or
/// `unavailable` when the database server takes no connection: [`reach`], which answers that
/// after [`reach::PROBE_AFTER`] already).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled connection idle this long is pinged before it is handed out (one round trip);
/// one used more recently is handed out as it is, and fails its statement if it died
/// meanwhile, as a connection that dies during a statement does.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The cause of a failed first connection, said once.
fn connect_failure(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) if not_postgres(io) => format!(
            "something answers at that address, but not as PostgreSQL does ({io}); \
             is the port right? PostgreSQL listens on 5432 unless told otherwise"
        ),
        // rustls's refusals (an unknown issuer, a wrong host name) come as invalid data.
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => format!(
            "TLS: {io} (check `sslmode` and `sslrootcert` in the URL: `sslrootcert` is the \
             PEM file of the authority that signed the database server's certificate)"
        ),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::Protocol(p) => format!(
            "something answers at that address, but not as PostgreSQL does ({p}); is the \
             port right? PostgreSQL listens on 5432 unless told otherwise"
        ),
        other => other.to_string(),
    }
}

/// Whether a failed first connection may succeed once the database server is up: nothing
/// listened or answered (an I/O error: refused, reset, a name that does not resolve yet), or
/// the server said it is starting up, shutting down or cannot take connections now (SQLSTATE
/// `57P01`-`57P03`, class `08`). An answer that refuses the client (authentication, an
/// unknown role or database, a certificate TLS refuses) or that is not PostgreSQL's is final.
fn not_up_yet(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) => io.kind() != std::io::ErrorKind::InvalidData && !not_postgres(io),
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Whether a failed first connection met a peer that answered with something other than
/// PostgreSQL's protocol: the connection was made and bytes came back, but they did not frame
/// as PostgreSQL messages (an HTTP server's `HTTP/1.1 400` read as a message length, for one),
/// and the peer closed. A server that is starting answers in its protocol (`57P03`), and one
/// that is down refuses or resets, so waiting cannot help here.
fn not_postgres(io: &std::io::Error) -> bool {
    let text = io.to_string();
    matches!(
        io.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
    ) && text.contains("expected to read")
        && !text.contains("got 0 bytes")
}

/// The query parameters of a database URL that the connection reads (sqlx's names; the
/// libpq ones among them mean what they mean to libpq).
const URL_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// What is wrong with the first query parameter of `url` that the connection would ignore
/// (sqlx only logs those), `None` when every one is read. A misspelt `sslmode` would
/// otherwise leave the connection to its default, which falls back to plain text.
fn unknown_parameter(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let read =
        |k: &str| URL_PARAMETERS.contains(&k) || (k.starts_with("options[") && k.ends_with(']'));
    let (key, _) = parsed.query_pairs().find(|(k, _)| !read(k))?;
    let close = hyperdial_space::diagnostic::did_you_mean(&key, URL_PARAMETERS)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    Some(format!(
        "parameter `{key}`{close} is not one hyperdial's connection reads, so it would be \
         ignored; remove it. The parameters read are sslmode, sslrootcert, sslcert, sslkey, \
         host, hostaddr, port, dbname, user, password, application_name, options and \
         statement-cache-capacity (waiting for the database at start-up: `--db-wait`)"
    ))
}

/// The values of `sslmode`, as libpq names them.
const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// What is wrong with the URL's `sslmode`, `None` when it is absent or one of [`SSL_MODES`].
fn bad_ssl_mode(url: &str) -> Option<String> {
    let mode = query_value(url, "sslmode").or_else(|| query_value(url, "ssl-mode"))?;
    (!SSL_MODES.contains(&mode.to_ascii_lowercase().as_str())).then(|| {
        format!(
            "`sslmode={mode}` is not a mode: use one of {} (`verify-full` on a network)",
            SSL_MODES.join(", ")
        )
    })
}

/// `why` a first connection failed, with how to create the database when it does not exist
/// (SQLSTATE `3D000`): hyperdial creates its tables, not the database. The `createdb` command
/// names the URL's server and role, so that it runs where the URL points.
fn with_create_hint(why: String, e: &sqlx::Error, options: &PgConnectOptions) -> String {
    let missing = matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000"));
    let Some(name) = options.get_database().filter(|_| missing) else {
        return why;
    };
    let host = match options.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => options.get_host().to_string(),
    };
    format!(
        "{why}: create it first, with `createdb -h {host} -p {} -U {} {name}` or \
         `CREATE DATABASE \"{name}\";` in psql, as a role allowed to (hyperdial creates its \
         tables, not the database)",
        options.get_port(),
        options.get_username()
    )
}

/// The value of query parameter `key` in a database URL, percent-decoded; `None` when absent
/// (or when the URL does not parse, which opening it reports).
fn query_value(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Whether `options` name a database server on this machine (a Unix socket, or a loopback
/// address or `localhost`), where a connection in plain text crosses no network.
fn on_this_machine(options: &PgConnectOptions) -> bool {
    if options.get_socket().is_some() {
        return true;
    }
    let host = options.get_host();
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the URL's path names the database (`postgres://u@h/NAME`).
fn url_names_database(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('?').next().unwrap_or_default();
    rest.split_once('/')
        .is_some_and(|(_, path)| !path.is_empty())
}

/// What the start-up line adds when the URL's path names no database (`in_path` false): the
/// database connected to (`current`). The database may be named elsewhere (`named`:
/// `?dbname=`, `PGDATABASE`); when it is not, PostgreSQL connected to the one named after the
/// role (libpq's rule), often `postgres`, where other tools keep their data too, and the
/// first string is a warning for the log. `None` when the path names it.
fn unnamed_database(
    in_path: bool,
    named: Option<&str>,
    current: Option<&str>,
) -> Option<(Option<String>, String)> {
    let current = current.filter(|_| !in_path)?;
    let warning = named.is_none().then(|| {
        format!(
            "the URL names no database, so PostgreSQL chose `{current}` (the one named after \
             the role); to keep sweeps in a database of their own, create one (`createdb \
             hyperdial`) and end the URL with `/hyperdial`"
        )
    });
    let note = match named {
        None => format!(", in database `{current}` since the URL names none"),
        Some(_) => format!(", in database `{current}`"),
    };
    Some((warning, note))
}

/// The PostgreSQL backend of [`crate::Storage`].
#[derive(Debug, Clone)]
pub struct PostgresStorage {
    /// The one pool; reads and writes share it.
    reader: PgPool,
    /// The connection the last hot statement used, kept for the next ([`warm`]).
    warm: std::sync::Arc<warm::WarmConnection>,
    /// Whether the database server takes connections, asked when a wait for one is slow
    /// ([`reach`]).
    probe: std::sync::Arc<reach::Probe>,
    /// The URL without its password, and whether the connection is encrypted.
    shown: String,
    /// The migrations applied when the database was opened.
    migrated: std::sync::Arc<[crate::AppliedMigration]>,
    /// The metric writer's queue (group commit); `None` in the writer's own copy.
    metric_queue: Option<MetricQueue>,
}

impl PostgresStorage {
    /// Connect to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB?…`) and
    /// bring its schema up to date (`migrations/postgres`). The database must exist.
    pub async fn open(url: &str) -> Result<PostgresStorage> {
        if let Some(why) = unknown_parameter(url).or_else(|| bad_ssl_mode(url)) {
            return Err(StoreError::Url {
                url: hyperdial_wire::redact_url(url),
                why,
            });
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Url {
            url: hyperdial_wire::redact_url(url),
            why: e.to_string(),
        })?;
        // A certificate file named but missing would otherwise look like a database that is
        // not up yet (the connection fails with "no such file" at every try).
        if let Some(file) = query_value(url, "sslrootcert") {
            if !Path::new(&file).is_file() {
                return Err(StoreError::Connect {
                    url: hyperdial_wire::redact_url(url),
                    why: format!(
                        "sslrootcert `{file}` is not a file: name the PEM file of the authority \
                         that signed the database server's certificate"
                    ),
                    not_up: false,
                });
            }
        }
        // One connection first: a pool that cannot connect only times out, and the cause
        // (refused, unknown role or database, not PostgreSQL at all) is what the user needs.
        let refused = |why: String, not_up: bool| StoreError::Connect {
            url: hyperdial_wire::redact_url(url),
            why,
            not_up,
        };
        let answer = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            <PgConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        {
            Err(_) => {
                return Err(refused(
                    format!(
                        "no answer within {} s (is the host right and reachable?)",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                    true,
                ))
            }
            Ok(Err(e)) => {
                let why = with_create_hint(connect_failure(&e), &e, &options);
                return Err(refused(why, not_up_yet(&e)));
            }
            Ok(Ok(mut conn)) => {
                let answer = sqlx::query_as::<_, (bool, String)>(
                    "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), \
                     false), current_database()",
                )
                .fetch_one(&mut conn)
                .await
                .ok();
                let _ = sqlx::Connection::close(conn).await;
                answer
            }
        };
        let (encrypted, database) = match answer {
            Some((encrypted, database)) => (Some(encrypted), Some(database)),
            None => (None, None),
        };
        let unnamed = match unnamed_database(
            url_names_database(url),
            options.get_database(),
            database.as_deref(),
        ) {
            Some((warning, note)) => {
                if let Some(warning) = warning {
                    tracing::warn!("{warning}");
                }
                note
            }
            None => String::new(),
        };
        if encrypted == Some(false) && !on_this_machine(&options) {
            tracing::warn!(
                "the connection to PostgreSQL at {} is not encrypted (the database server \
                 offers no TLS, or the URL says sslmode=disable): its password and every row \
                 cross the network readable. Turn on `ssl` in the database server's \
                 configuration, then add `?sslmode=verify-full&sslrootcert=CA.pem` (or \
                 `?sslmode=require`) to the URL so that a plain connection is refused",
                hyperdial_wire::redact_url(url)
            );
        }
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A ping costs a round trip per statement of the hot paths: only a connection idle
            // long enough to have been dropped meanwhile (the database restarted, a proxy
            // timed it out) is tested before use.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        let migrated =
            crate::migrate::run(&pool, sqlx::migrate!("./migrations/postgres"), "PostgreSQL")
                .await?;
        let probe = std::sync::Arc::new(reach::Probe::default());
        let mut storage = PostgresStorage {
            warm: std::sync::Arc::new(warm::WarmConnection::new(pool.clone(), probe.clone())),
            probe,
            reader: pool,
            shown: match encrypted {
                Some(true) => format!("{}{unnamed}, TLS", hyperdial_wire::redact_url(url)),
                Some(false) => format!("{}{unnamed}, without TLS", hyperdial_wire::redact_url(url)),
                None => format!("{}{unnamed}", hyperdial_wire::redact_url(url)),
            },
            migrated: migrated.into(),
            metric_queue: None,
        };
        storage.metric_queue = Some(start_metric_writer(storage.clone()));
        Ok(storage)
    }

    fn describe_location(&self) -> String {
        self.shown.clone()
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    async fn close_pools(&self) {
        // Closing waits for every connection, the kept one too.
        self.warm.release();
        self.reader.close().await;
    }

    /// PostgreSQL runs every operation of `queries.rs` as written there, except those of
    /// `one_statement`.
    fn one_hop(&self) -> Option<&crate::sqlite::SqliteStorage> {
        None
    }

    /// The claim's insert, and the tell with it, as one statement each ([`hot`]).
    fn one_statement(&self) -> Option<&PostgresStorage> {
        Some(self)
    }

    /// A pooled connection for reads; when none comes within [`ACQUIRE_TIMEOUT`], busy or
    /// unavailable as [`reach::pooled`] finds.
    async fn read_conn(&self) -> Result<sqlx::pool::PoolConnection<Postgres>> {
        reach::pooled(&self.probe, &self.reader, self.reader.acquire()).await
    }

    /// Start a write transaction on a pooled connection.
    async fn begin(&self) -> Result<Tx> {
        Ok(Tx(reach::pooled(
            &self.probe,
            &self.reader,
            self.reader.begin(),
        )
        .await?))
    }
}

/// A write transaction; dropped without [`Tx::commit`] it rolls back (sqlx rolls back a
/// dropped transaction before the connection returns to the pool).
struct Tx(sqlx::Transaction<'static, Postgres>);

impl Deref for Tx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}

impl Tx {
    async fn commit(self) -> Result<()> {
        Ok(self.0.commit().await?)
    }

    /// Roll back now. Dropped unfinished, a transaction is rolled back only when its
    /// connection is next used, and keeps its row locks until then.
    async fn rollback(self) -> Result<()> {
        Ok(self.0.rollback().await?)
    }
}

/// Write a metric batch's points into the series' chunks (see [`chunks`]).
async fn write_series_points(conn: &mut PgConnection, writes: &mut [SeriesPoints]) -> Result<u64> {
    chunks::write_points(conn, writes).await
}

use chunks::{METRIC_EXTREMES, METRIC_POINTS, SERIES_TAIL};

/// The metric reads of `queries.rs` that PostgreSQL answers from its chunks.
impl PostgresStorage {
    async fn read_history(&self, run_id: &str) -> Result<Vec<HistoryPoint>> {
        reach::pooled(
            &self.probe,
            &self.reader,
            chunks::history(&self.reader, run_id),
        )
        .await
    }

    async fn read_series(
        &self,
        run_id: &str,
        name: &str,
        after_step: Option<i64>,
    ) -> Result<Vec<SeriesPoint>> {
        reach::pooled(
            &self.probe,
            &self.reader,
            chunks::series(&self.reader, run_id, name, after_step),
        )
        .await
    }

    async fn read_series_sample(
        &self,
        run_id: &str,
        name: &str,
        max_points: usize,
    ) -> Result<SeriesSample> {
        reach::pooled(
            &self.probe,
            &self.reader,
            chunks::sample(&self.reader, run_id, name, max_points),
        )
        .await
    }

    async fn read_last_value(&self, run_id: &str, name: &str) -> Result<Option<Option<f64>>> {
        reach::pooled(
            &self.probe,
            &self.reader,
            chunks::last_value(&self.reader, run_id, name),
        )
        .await
    }

    async fn read_curve_rows(
        &self,
        run_id: &str,
        a: &str,
        b: &str,
    ) -> Result<Vec<(i64, String, Option<f64>, i64)>> {
        reach::pooled(
            &self.probe,
            &self.reader,
            chunks::curve_rows(&self.reader, run_id, a, b),
        )
        .await
    }
}

/// The hot writes that `queries.rs` hands to [`hot`] (`one_statement`).
impl PostgresStorage {
    /// [`crate::Storage::insert_suggested_run`] as one statement.
    pub(crate) async fn hot_insert_suggested(
        &self,
        new: &NewRun,
        expected: i64,
    ) -> Result<Inserted> {
        hot::insert_suggested(&self.warm, new, expected).await
    }

    /// [`crate::Storage::finish_run_with_points`] as one statement when it applies, else
    /// `None` (nothing written).
    pub(crate) async fn hot_tell(&self, finish: &RunFinish<'_>) -> Result<Option<RunRow>> {
        hot::tell(&self.warm, finish).await
    }

    /// [`crate::Storage::finish_run_and_insert_suggested`] as one statement when it applies,
    /// else `None` (nothing written).
    pub(crate) async fn hot_tell_and_insert(
        &self,
        finish: &RunFinish<'_>,
        new: &NewRun,
        expected: i64,
    ) -> Result<Option<(Option<RunRow>, Inserted)>> {
        hot::tell_and_insert(&self.warm, finish, new, expected).await
    }

    /// [`crate::Storage::tell_and_insert_checked`] as one statement.
    pub(crate) async fn hot_tell_and_insert_checked(
        &self,
        finish: &RunFinish<'_>,
        new: &NewRun,
        expected: i64,
        check: crate::ChangeCheck<'_>,
    ) -> Result<crate::Checked> {
        hot::tell_and_insert_checked(&self.warm, finish, new, expected, check).await
    }
}

mod chunks;
mod hot;
mod reach;
mod warm;

include!("../queries.rs");

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_peer_answering_another_protocol_is_not_postgres_and_not_worth_waiting_for() {
        // An HTTP server's `HTTP/1.1 400` read as a message: "TTPH" as a length.
        let http = Error::new(
            ErrorKind::UnexpectedEof,
            "expected to read 1414811696 bytes, got 103 bytes at EOF",
        );
        assert!(not_postgres(&http));
        assert!(!not_up_yet(&sqlx::Error::Io(http)));
        // A server that closed before saying anything may be restarting.
        let closed = Error::new(
            ErrorKind::UnexpectedEof,
            "expected to read 5 bytes, got 0 bytes at EOF",
        );
        assert!(!not_postgres(&closed));
        assert!(not_up_yet(&sqlx::Error::Io(closed)));
        let refused = Error::from(ErrorKind::ConnectionRefused);
        assert!(not_up_yet(&sqlx::Error::Io(refused)));
        // rustls refusing the certificate: final, and said to be about TLS.
        let tls = sqlx::Error::Io(Error::new(
            ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        ));
        assert!(!not_up_yet(&tls));
        assert!(connect_failure(&tls).starts_with("TLS: invalid peer certificate"));
    }

    #[test]
    fn query_values_are_read_percent_decoded() {
        let url = "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20file.pem";
        assert_eq!(
            query_value(url, "sslrootcert").as_deref(),
            Some("/etc/ca file.pem")
        );
        assert_eq!(query_value(url, "sslmode").as_deref(), Some("verify-full"));
        assert_eq!(query_value(url, "sslcert"), None);
        assert_eq!(query_value("postgres://u@h/db", "sslrootcert"), None);
    }

    #[test]
    fn a_misspelt_url_parameter_is_refused_with_the_name_it_resembles() {
        let why = unknown_parameter("postgres://u@h/db?sslmod=require").unwrap();
        assert!(
            why.starts_with("parameter `sslmod` (did you mean `sslmode`?) is not one"),
            "{why}"
        );
        let why = unknown_parameter("postgres://u@h/db?sslmode=require&connect_timeout=5").unwrap();
        assert!(
            why.starts_with("parameter `connect_timeout` is not one hyperdial's connection reads"),
            "{why}"
        );
        let why = bad_ssl_mode("postgres://u@h/db?sslmode=bogus").unwrap();
        assert!(
            why.starts_with("`sslmode=bogus` is not a mode: use one of disable,"),
            "{why}"
        );
        assert_eq!(bad_ssl_mode("postgres://u@h/db?sslmode=verify-full"), None);
        assert_eq!(bad_ssl_mode("postgres://u@h/db"), None);
        for fine in [
            "postgres://u@h/db",
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=ca.pem&application_name=x",
            "postgres://u@h/db?options[search_path]=s&host=%2Ftmp",
        ] {
            assert_eq!(unknown_parameter(fine), None, "{fine}");
        }
    }

    #[test]
    fn a_url_without_a_database_is_told_which_one_it_got() {
        let named = |url: &str| {
            PgConnectOptions::from_str(url)
                .unwrap()
                .get_database()
                .map(String::from)
        };
        // libpq's rule: no path, no database named (PGDATABASE aside).
        if std::env::var_os("PGDATABASE").is_none() {
            assert_eq!(named("postgres://u@h:5432"), None);
            assert_eq!(named("postgres://u@h:5432/"), None);
        }
        assert_eq!(named("postgres://u@h/sweeps").as_deref(), Some("sweeps"));
        let (warning, note) = unnamed_database(false, None, Some("postgres")).unwrap();
        let warning = warning.unwrap();
        assert!(warning.contains("PostgreSQL chose `postgres`"), "{warning}");
        assert!(
            warning.contains("end the URL with `/hyperdial`"),
            "{warning}"
        );
        assert_eq!(note, ", in database `postgres` since the URL names none");
        // Named by `?dbname=` or PGDATABASE: no warning, but the line names it.
        assert_eq!(
            unnamed_database(false, Some("scratch"), Some("scratch")),
            Some((None, ", in database `scratch`".to_string()))
        );
        assert_eq!(unnamed_database(true, Some("sweeps"), Some("sweeps")), None);
        assert_eq!(unnamed_database(false, None, None), None);
        assert!(url_names_database(
            "postgres://u:p@h:5432/sweeps?sslmode=require"
        ));
        assert!(url_names_database(
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db"
        ));
        for url in [
            "postgres://u@h:5432",
            "postgres://u@h:5432/",
            "postgresql://u@h/?dbname=x",
            "postgres://u@[::1]:5432?dbname=x",
        ] {
            assert!(!url_names_database(url), "{url}");
        }
    }

    #[test]
    fn loopback_hosts_and_sockets_are_on_this_machine() {
        let on = |url: &str| on_this_machine(&PgConnectOptions::from_str(url).unwrap());
        assert!(on("postgres://u@localhost/db"));
        assert!(on("postgres://u@127.0.0.1:5433/db"));
        assert!(on("postgres://u@[::1]:5432/db"));
        assert!(on("postgres://u@%2Fvar%2Frun%2Fpostgresql/db"));
        assert!(!on("postgres://u@db.example.org/db"));
        assert!(!on("postgres://u@10.0.0.5/db"));
    }

    /// A TCP relay to `upstream` on a free loopback port, standing in for a database server
    /// that goes away: [`Relay::down`] closes every relayed connection, then either refuses
    /// new ones (a stopped server) or accepts them and never answers (a host gone from the
    /// network, a server that hangs).
    struct Relay {
        port: u16,
        upstream: String,
        silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
        tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    }

    impl Relay {
        async fn start(upstream: String) -> Relay {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let relay = Relay {
                port,
                upstream,
                silent: Default::default(),
                tasks: Default::default(),
            };
            let (upstream, silent, tasks) = (
                relay.upstream.clone(),
                relay.silent.clone(),
                relay.tasks.clone(),
            );
            let accept = tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    let silent = silent.load(std::sync::atomic::Ordering::SeqCst);
                    let task = tokio::spawn(async move {
                        if silent {
                            std::future::pending::<()>().await;
                        }
                        if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    tasks.lock().unwrap().push(task);
                }
            });
            relay.tasks.lock().unwrap().push(accept);
            relay
        }

        /// Close every connection; refuse new ones, or with `silent` accept and ignore them.
        fn down(&self, silent: bool) {
            self.silent
                .store(silent, std::sync::atomic::Ordering::SeqCst);
            let mut tasks = self.tasks.lock().unwrap();
            let keep = if silent { 1 } else { 0 };
            for task in tasks.drain(keep..) {
                task.abort();
            }
        }
    }

    /// With the database server gone, a request is told the database is unavailable, not
    /// busy, whether the server's port refuses or nothing answers there (the pool's own
    /// time-out says neither, and a client told "busy" waits for a load that is not there),
    /// and before the pool's acquire timeout (a client's own request timeout is shorter): a
    /// transaction, a hot statement's connection, a metric read and another read. Each
    /// counts as a storage fault.
    #[tokio::test]
    async fn a_database_server_that_went_down_is_unavailable_not_busy() {
        let Some(db) = crate::testing::TestDb::postgres("postgres::down_is_unavailable").await
        else {
            return;
        };
        let mut url = url::Url::parse(db.url()).unwrap();
        let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        for silent in [false, true] {
            let relay = Relay::start(upstream.clone()).await;
            url.set_host(Some("127.0.0.1")).unwrap();
            url.set_port(Some(relay.port)).unwrap();
            let store = PostgresStorage::open(url.as_str()).await.unwrap();
            store.begin().await.unwrap().commit().await.unwrap();
            relay.down(silent);
            // Every pooled connection idle past the ping interval, as after a quiet second.
            tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(200)).await;
            let limit = reach::PROBE_AFTER + reach::PROBE_TIMEOUT + Duration::from_secs(5);
            assert!(limit < ACQUIRE_TIMEOUT);
            let faults = crate::error::faults_seen();
            // What a request answers: a refusal for an unavailable database, soon enough.
            async fn refused<T>(
                what: &str,
                silent: bool,
                limit: Duration,
                request: impl std::future::Future<Output = Result<T>>,
            ) {
                match tokio::time::timeout(limit, request).await {
                    Err(_) => panic!("silent {silent}: {what} waited past {limit:?}"),
                    Ok(Ok(_)) => panic!("silent {silent}: {what} succeeded with the server gone"),
                    Ok(Err(e)) => assert_eq!(
                        e.fault(),
                        Some(crate::Fault::Unavailable),
                        "silent {silent}: {what}: {e:?}"
                    ),
                }
            }
            refused("a transaction", silent, limit, store.begin()).await;
            refused(
                "a hot statement's connection",
                silent,
                limit,
                store.warm.take(),
            )
            .await;
            if silent {
                let read = store.read_last_value("r", "loss");
                refused("a metric read", silent, limit, read).await;
                let read = crate::Storage::sweeps(&store, None);
                refused("a read", silent, limit, read).await;
            }
            assert!(crate::error::faults_seen() >= faults + 2);
            relay.down(false);
            store.close_pools().await;
        }
        db.remove().await;
    }
}
