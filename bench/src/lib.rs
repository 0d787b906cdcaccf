//! Shared helpers of the benchmark binaries: an embedded server on a scratch database, a real
//! `hyperdial server` process on a database given by URL, simple command-line flags, and
//! latency percentiles from sorted samples.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server on a fresh database in a temporary directory, on an ephemeral loopback port.
pub struct Scratch {
    /// Base URL.
    pub url: String,
    /// The scratch directory (removed on drop).
    pub dir: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Start a scratch server.
pub async fn scratch_server() -> Scratch {
    let dir =
        std::env::temp_dir().join(format!("hyperdial-bench-{}", hyperdial_store::new_id("b")));
    let store = hyperdial_store::Store::open_sqlite(&dir.join("db.sqlite"))
        .await
        .expect("open store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            rx.await.ok();
        };
        hyperdial_server::serve(
            listener,
            store,
            hyperdial_server::Options::default(),
            shutdown,
        )
        .await
        .expect("serve");
    });
    Scratch {
        url,
        dir,
        _stop: tx,
    }
}

/// The value of `--name VALUE` on the command line, if given.
pub fn flag(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_string());
        }
    }
    None
}

/// `--name N` parsed, or `default`; a value that does not parse is a fatal usage error.
pub fn flag_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match flag(name) {
        None => default,
        Some(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} {v}: not a valid number")),
    }
}

/// The `hyperdial` binary the benchmarks drive: `--hyperdial PATH`, else the one built next to
/// the running benchmark (`target/release/hyperdial` for a release benchmark).
pub fn hyperdial_binary() -> PathBuf {
    let bin = match flag("--hyperdial") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .expect("current exe")
            .with_file_name("hyperdial"),
    };
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release -p hyperdial-cli ({} missing)",
        bin.display()
    );
    bin
}

/// Which database system a benchmark database lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A database on a PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a `--db` value names: PostgreSQL for `postgres://` and `postgresql://`
    /// URLs, SQLite for anything else (or nothing).
    pub fn of(url: Option<&str>) -> Backend {
        match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Backend::Postgres
            }
            _ => Backend::Sqlite,
        }
    }

    /// Name for tables: `SQLite` or `PostgreSQL`.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh, empty database for one benchmark case, removed on drop.
///
/// Given `sqlite://PATH` (or a bare path), the file is used as it is (it should not exist);
/// given nothing, a file in a new temporary directory. Given `postgres://…` (or
/// `postgresql://…`), a database with a unique name is created on that server with `psql`
/// (which must be on `PATH`) and dropped afterwards; the URL's own database is only used to
/// connect.
pub struct Database {
    /// What the backend is.
    pub backend: Backend,
    /// The value for `hyperdial server --db`: a file path for SQLite, a URL for PostgreSQL.
    pub arg: String,
    /// Scratch directory of a SQLite file we made up (removed on drop).
    dir: Option<PathBuf>,
    /// Server URL and name of a PostgreSQL database we created (dropped on drop).
    pg: Option<(String, String)>,
}

impl Database {
    /// Prepare a fresh database from `url` (see the type's documentation); `tag` goes into
    /// the name of the scratch file or database.
    pub fn fresh(url: Option<&str>, tag: &str) -> Database {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let unique = format!("{tag}_{}_{millis}", std::process::id());
        match (Backend::of(url), url) {
            (Backend::Postgres, Some(u)) => {
                let name = format!("hyperdial_bench_{unique}");
                psql(u, &format!("CREATE DATABASE {name}"));
                let arg = with_database(u, &name);
                Database {
                    backend: Backend::Postgres,
                    arg,
                    dir: None,
                    pg: Some((u.to_string(), name)),
                }
            }
            (_, Some(u)) => {
                let path = u.strip_prefix("sqlite://").unwrap_or(u);
                Database {
                    backend: Backend::Sqlite,
                    arg: path.to_string(),
                    dir: None,
                    pg: None,
                }
            }
            (_, None) => {
                let dir = std::env::temp_dir().join(format!("hyperdial-bench-{unique}"));
                std::fs::create_dir_all(&dir).expect("scratch dir");
                Database {
                    backend: Backend::Sqlite,
                    arg: dir.join("db.sqlite").display().to_string(),
                    dir: Some(dir),
                    pg: None,
                }
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir).ok();
        }
        if let Some((url, name)) = &self.pg {
            psql(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql must be on PATH for PostgreSQL benchmarks");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `url` with its database (the path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A free loopback port (bound and released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A `hyperdial server` child process on a [`Database`], killed on drop. Its standard error
/// goes to `server.log` in a scratch directory, shown when the server does not come up.
pub struct ServerProcess {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    /// Start `bin server --db DB --bind 127.0.0.1:PORT` and wait (up to 60 s) until it listens.
    pub fn start(bin: &Path, db: &Database) -> ServerProcess {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "hyperdial-bench-server-{}-{port}.log",
            std::process::id()
        ));
        let child = Command::new(bin)
            .args(["server", "--db", &db.arg, "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("HYPERDIAL_TOKEN")
            .env_remove("HYPERDIAL_SERVER")
            .env_remove("HYPERDIAL_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .expect("start hyperdial server");
        let mut server = ServerProcess {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("hyperdial server exited ({status}):\n{}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "hyperdial server did not listen within 60 s:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The server's process id (for its memory in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to standard error so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_file(&self.log).ok();
    }
}

/// Latency samples in microseconds.
#[derive(Clone, Debug, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    /// Record one sample.
    pub fn record(&mut self, elapsed: Duration) {
        self.0.push(elapsed.as_micros() as u64);
    }

    /// Add another set's samples.
    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0 ≤ q ≤ 1) in milliseconds by the nearest-rank method (`q = 1` is the
    /// maximum); `NaN` without samples.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let n = self.0.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.0[rank - 1] as f64 / 1000.0
    }
}

/// The 1-minute load average of this machine, if it can be read (`/proc/loadavg`).
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    Some(parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.record(Duration::from_millis(ms));
        }
        assert_eq!(s.quantile_ms(0.5), 50.0);
        assert_eq!(s.quantile_ms(0.99), 99.0);
        assert_eq!(s.quantile_ms(1.0), 100.0);
        assert!(Samples::default().quantile_ms(0.5).is_nan());
    }

    #[test]
    fn postgres_url_gets_the_scratch_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5433/postgres", "x"),
            "postgres://postgres@127.0.0.1:5433/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
