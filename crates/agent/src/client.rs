//! The HTTP client for the server's API (`docs/api.md`, version 1).
//!
//! One method per endpoint an agent, `hyperdial run` or `hyperdial tune` needs. Request
//! bodies are the wire types of `hyperdial_wire::api` (re-exported here under the names the
//! agent uses: [`Finish`], [`NewRun`], [`MetricPoint`], [`Stream`]), so they are the server's
//! own definitions. Answers are returned as [`serde_json::Value`] where the caller only passes
//! them on (a Sweep, a Run), and as typed values where the agent acts on them ([`Claim`],
//! [`Heartbeat`]).
//!
//! # Retries
//!
//! Training runs for hours; a server restart or a network blip must not kill it. Every request
//! is therefore retried on every transient failure: the server cannot be reached (connection
//! refused, reset, timed out), or answers 5xx, `429 Too Many Requests` or `408 Request
//! Timeout`. Backoff starts at 100 ms, doubles, and is capped at 5 s, for at most the retry
//! budget: [`DEFAULT_RETRY_BUDGET`] (60 s, the same time after which the server gives up on a
//! silent agent), or `HYPERDIAL_RETRY_SECONDS` when set (see [`retry_budget_from_env`] and
//! [`Client::with_retry_budget`]). Any other 4xx answer is a mistake a retry cannot fix and is
//! returned at once as [`ClientError::Status`], carrying the server's `{"error": ...}`
//! message, which says what to fix.
//!
//! # Several servers
//!
//! A client may be given several servers of one PostgreSQL database ([`Client::new`] with
//! comma-separated URLs, `hyperdial agent --server A,B`). Requests go to one at a time; when it
//! cannot be reached (a transport failure: refused, reset, timed out), the retry goes to the
//! next one, which then serves every clone's requests ([`Client::base_url`] names it). Answers
//! with a status (4xx, 5xx) do not switch: a server that answers is up, and one whose
//! database is away answers `503` like the others would. Switching is safe for every request
//! for the reasons retrying is (below): all servers share the database.
//!
//! # Request size
//!
//! The server takes request bodies of at most [`MAX_REQUEST_BYTES`] (8 MiB, `docs/api.md`).
//! [`Client::post_metrics`] splits a batch by its encoded size so that no request exceeds it
//! (a single step with more values than fit is split into several requests of the same step),
//! and if a server still answers `413` (one configured with a smaller limit) it halves the
//! request and sends the halves, down to a single value; only then is the `413` returned.
//! Metric points sent with an explicit step are idempotent (the server keeps one value per
//! run, metric and step), so sending a batch again never duplicates a point.
//!
//! A request that timed out may have reached the server. Retrying is still right for every
//! endpoint the agent uses: a claim carries an idempotency key ([`claim_key`], fresh for each
//! claim and the same on each of its retries), so a retried claim whose first attempt did
//! reach the server gets the run that attempt claimed, not a second one that nobody would
//! supervise. (`POST /runs` has no key: a retried one whose first attempt reached the server
//! leaves a run that the server marks `crashed` after 60 s of silence.)
//!
//! # Authentication and TLS
//!
//! With a token, every request carries `Authorization: Bearer TOKEN`. A server URL may be
//! `http://` or `https://` (rustls; Mozilla's root certificates are built in). A server whose
//! certificate a private CA signed, or a self-signed one, is trusted with
//! [`Client::with_ca_cert`] (`--ca-cert FILE`, `HYPERDIAL_CA_CERT`): the PEM certificates of
//! that file are trusted in addition to the built-in roots. A TLS failure (the certificate is
//! not trusted or not valid for the host name, or the server does not speak TLS) is no
//! transient fault: it is returned at once as [`ClientError::Tls`], saying what to fix,
//! instead of being retried for the retry budget. Plain `http://` to a TLS port gets the
//! server's `400` saying to use `https://`.
//!
//! # A run the server gave up on
//!
//! The server refuses reports for a run it has marked `crashed` (its agent was silent for the
//! run timeout, e.g. behind a cut link) with `409` and the code `run_crashed`
//! ([`ClientError::is_run_crashed`]): a retry runs its configuration elsewhere, so the
//! supervisor stops the run's process and keeps nothing of it for `hyperdial sync`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperdial_wire::api::{
    AgentRegistered, ClaimRequest, DeliveryRequest, GitInfo, MetricsRequest, OutputRequest,
    RegisterAgent, Started, SweepOver, MAX_CLAIM_WAIT_MS, WAITED_HEADER,
};
use hyperdial_wire::{error_chain, SweepState};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

/// The body of `POST /api/v1/runs`: a run outside any sweep (`hyperdial run`).
pub use hyperdial_wire::api::CreateRun as NewRun;
/// The body of `POST /api/v1/runs/{id}/finish`. All fields are optional: without `state`,
/// exit code 0 means `finished` and anything else `failed` (the server decides; it also fails
/// a run whose sweep metric is NaN).
pub use hyperdial_wire::api::FinishRequest as Finish;
/// The answer to a heartbeat (and to posted metrics): whether the run must stop, and why
/// (`early_terminated`, `cancelled`, ...; `None` when the server gave no reason).
pub use hyperdial_wire::api::HeartbeatAnswer as Heartbeat;
/// One reported set of metric values, as posted to `POST /api/v1/runs/{id}/metrics`.
pub use hyperdial_wire::api::MetricPoint;
/// Which output stream of a process a text came from.
pub use hyperdial_wire::api::OutputStream as Stream;

/// How long a request is retried, in total, before the error is returned.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// The environment variable that sets the retry budget, in seconds (a positive number).
pub const RETRY_SECONDS_ENV: &str = "HYPERDIAL_RETRY_SECONDS";

/// Largest request body the server accepts, in bytes (8 MiB); the same value as the server's
/// `MAX_BODY_BYTES` and the Python client's `_MAX_REQUEST_BYTES` (`docs/api.md`).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// The retry budget set by `HYPERDIAL_RETRY_SECONDS` (seconds, fractions allowed, at least
/// 0.1), or [`DEFAULT_RETRY_BUDGET`] when it is unset or not a positive number.
pub fn retry_budget_from_env() -> Duration {
    std::env::var(RETRY_SECONDS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(|s| Duration::from_secs_f64(s.max(0.1)))
        .unwrap_or(DEFAULT_RETRY_BUDGET)
}

/// First pause between two attempts; it doubles after each failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long one request must have failed transiently before the client says (once, at log
/// level `warn`, shown by default) that the server does not answer and that it keeps retrying;
/// when a request succeeds again it says that too, with how long it lasted. Shorter blips
/// (a server restart) pass in silence.
pub const OUTAGE_NOTICE: Duration = Duration::from_secs(3);

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed for one whole request with a small body; one second more is allowed per
/// 256 KiB of body (a full 8 MiB batch: 62 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest server message quoted in an error when the body is not the documented JSON.
const MAX_QUOTED_BODY: usize = 500;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached (connection refused, reset, timed out) for the whole
    /// retry budget.
    #[error("cannot reach the hyperdial server at {url}: {message} (gave up after retrying for {seconds} s); is `hyperdial server` running there?")]
    Unreachable {
        /// The server's base URL.
        url: String,
        /// The last transport error.
        message: String,
        /// How long the request was retried, in whole seconds.
        seconds: u64,
    },
    /// The server URL cannot be used (no retry helps): a malformed URL, or a scheme other
    /// than `http://` and `https://`.
    #[error("the server URL {url} cannot be used: {message}")]
    BadUrl {
        /// The server's base URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The CA certificate file given to trust a server cannot be used.
    #[error("the CA certificate file {path} cannot be used: {message}")]
    CaCert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS connection to the server failed for a reason no retry fixes: its certificate
    /// is not trusted or not valid for the host, or it does not speak TLS.
    #[error("TLS with the hyperdial server at {url} failed: {message}")]
    Tls {
        /// The server's base URL.
        url: String,
        /// What failed and what to do about it.
        message: String,
    },
    /// The server answered with an error status: any 4xx at once, a 5xx after the retry
    /// budget ran out.
    #[error("{method} {path}: the server answered {status}: {message}")]
    Status {
        /// HTTP method of the request.
        method: String,
        /// Path of the request, e.g. `/api/v1/sweeps/k3x9q2ab/claim`.
        path: String,
        /// The HTTP status code.
        status: u16,
        /// The server's `error` message (or the start of the body when it is not JSON).
        message: String,
        /// The server's `code` for the error, when it sends one (e.g. `run_crashed`); boxed
        /// to keep the error small.
        code: Option<Box<str>>,
    },
    /// The agent is shutting down ([`Client::hurry`]) and the server did not answer within
    /// the time left; the request was not (or no longer) tried.
    #[error("the hyperdial server at {url} did not answer in time: this agent is shutting down and waits no longer")]
    ShuttingDown {
        /// The server's base URL.
        url: String,
    },
    /// The server answered 2xx with a body that does not match the API.
    #[error("{method} {path}: unexpected answer from the server: {message}")]
    BadAnswer {
        /// HTTP method of the request.
        method: String,
        /// Path of the request.
        path: String,
        /// What was wrong with it.
        message: String,
    },
}

impl ClientError {
    /// The HTTP status of a [`ClientError::Status`], `None` otherwise.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server refused a report because it has marked the run `crashed` (`409`,
    /// code `run_crashed`): the run is over for the server, and a retry runs its
    /// configuration.
    pub fn is_run_crashed(&self) -> bool {
        matches!(self, ClientError::Status { status: 409, code: Some(code), .. } if &**code == "run_crashed")
    }

    /// Whether the server refused the request's token (`401`, or `403`): no retry with the
    /// same token helps, but the data is fine. A run's metric points, output and end refused
    /// this way are kept for `hyperdial sync` with a token the server accepts, exactly as
    /// during an outage, never dropped.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ClientError::Status {
                status: 401 | 403,
                ..
            }
        )
    }

    /// Whether the server does not know what the request names (`404`): for a run's reports,
    /// the run. A server that created the run knows it for good (no run is ever deleted), so
    /// this is a server answering from another database than the run's: restarted with
    /// another `--db`, or from another directory, whose default store is another file. The
    /// data is fine; a run's points, output and end refused this way are kept for
    /// `hyperdial sync` to the server that has the run, never dropped.
    /// (Said with [`UNKNOWN_RUN_CAUSE`].)
    pub fn is_unknown(&self) -> bool {
        matches!(self, ClientError::Status { status: 404, .. })
    }

    /// Whether data whose request failed this way is kept for later (the spill file, then
    /// `hyperdial sync`): the failure may pass by itself ([`ClientError::is_transient`]),
    /// the token was refused ([`ClientError::is_auth`]), or the server does not know the run
    /// ([`ClientError::is_unknown`]).
    pub fn is_kept(&self) -> bool {
        self.is_transient() || self.is_auth() || self.is_unknown()
    }

    /// Whether the failure may pass by itself (the server was unreachable, or answered 5xx,
    /// 408 or 429, for the whole retry budget): data whose request failed this way is worth
    /// keeping for later. `false` for answers that will not change (other 4xx, a bad URL, a
    /// malformed answer).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } | ClientError::ShuttingDown { .. } => true,
            ClientError::Status { status, .. } => is_transient_status(*status),
            ClientError::BadUrl { .. }
            | ClientError::BadAnswer { .. }
            | ClientError::CaCert { .. }
            | ClientError::Tls { .. } => false,
        }
    }
}

/// 5xx, `408 Request Timeout` and `429 Too Many Requests`: answers a retry may change.
fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// Why a server does not know a run it was reporting to ([`ClientError::is_unknown`]), as the
/// agent's messages say it.
pub const UNKNOWN_RUN_CAUSE: &str = "it answers from another database than the one the run \
     was created in (a server restarted with another --db, or from another directory, whose \
     default store ./.hyperdial/hyperdial.db is another file)";

/// Result type of [`Client`] methods.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The answer to `POST /api/v1/sweeps/{id}/claim`.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// `200`: a run to start now; the Run object of `docs/api.md`, already `running`.
    Run(Value),
    /// `204`: nothing can start now (paused sweep, or `run_cap`/grid reached while runs are
    /// in flight); ask again later.
    Wait,
    /// `204` after the server held the claim open for the whole wait asked of it
    /// ([`Client::claim_waiting`]; the answer carried [`WAITED_HEADER`]): nothing became
    /// available meanwhile, and the server will wait again, so ask again at once.
    Waited,
    /// `410`: the sweep is over and hands out no more runs.
    Over {
        /// The sweep's state (`finished` when the answer did not say).
        state: SweepState,
    },
}

/// A heartbeat or metrics answer; an answer without the fields reads as "go on".
fn heartbeat_of(v: Value) -> Heartbeat {
    serde_json::from_value(v).unwrap_or_default()
}

/// `v` as a request body.
fn body_of<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|_| json!({}))
}

/// A client for one hyperdial server. Cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The servers' base URLs, at least one: several are servers of one PostgreSQL database,
    /// any of which answers every request the same ([`Client::new`]).
    bases: Arc<[String]>,
    /// Index into `bases` of the server requests go to now, shared by every clone.
    current: Arc<AtomicUsize>,
    token: Option<String>,
    ca_cert: Option<PathBuf>,
    retry_budget: Duration,
    /// When set: the moment after which no request is attempted any more ([`Client::hurry`]),
    /// shared by every clone.
    hurry: Arc<watch::Sender<Option<tokio::time::Instant>>>,
    /// Since when the server has not been answering, once that was said ([`OUTAGE_NOTICE`]),
    /// shared by every clone: the outage is said once, and its end once.
    outage: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("bases", &self.bases)
            .field("current", &self.current.load(Ordering::Relaxed))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("ca_cert", &self.ca_cert)
            .field("retry_budget", &self.retry_budget)
            .field("hurry", &*self.hurry.borrow())
            .finish()
    }
}

/// A status answer below 500, with its body.
#[derive(Default)]
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    /// The answer carried [`WAITED_HEADER`] (a claim held open for its whole wait).
    waited: bool,
}

impl Client {
    /// A client for the server at `server_base_url` (e.g. `http://127.0.0.1:8337`; a trailing
    /// `/` or `/api/v1` is ignored, and `host:port` without a scheme means `http://host:port`),
    /// sending `Authorization: Bearer TOKEN` when `token` is set.
    ///
    /// Several servers of one PostgreSQL database may be named, separated by commas
    /// (`http://a:8337,http://b:8337`): requests go to the first, and when a server cannot be
    /// reached (connection refused, reset or timed out) the retries go to the next one, which
    /// stays in use (see [`split_servers`]). Any of them answers every request the same: the
    /// state is in the database, claims carry their key and metric points their steps.
    ///
    /// Environment proxies (`HTTP_PROXY`, ...) are honoured except when every server is on
    /// loopback.
    pub fn new(server_base_url: &str, token: Option<String>) -> Client {
        let bases = split_servers(server_base_url);
        let http = http_builder(&bases)
            .build()
            // Building only fails when the TLS backend or the system resolver cannot be set
            // up; the plain client then is the best remaining choice.
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            http,
            bases: bases.into(),
            current: Arc::default(),
            token: token.filter(|t| !t.is_empty()),
            ca_cert: None,
            retry_budget: retry_budget_from_env(),
            hurry: Arc::new(watch::channel(None).0),
            outage: Arc::default(),
        }
    }

    /// As [`Client::new`], also trusting the PEM certificates in `ca_cert` (a private CA, or
    /// a server's self-signed certificate) for `https://` servers. `None` is [`Client::new`].
    ///
    /// # Errors
    /// [`ClientError::CaCert`] when the file cannot be read or holds no usable PEM
    /// certificate.
    pub fn with_ca_cert(
        server_base_url: &str,
        token: Option<String>,
        ca_cert: Option<&Path>,
    ) -> Result<Client> {
        let Some(path) = ca_cert else {
            return Ok(Client::new(server_base_url, token));
        };
        let bad = |message: String| ClientError::CaCert {
            path: path.to_path_buf(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| bad(format!("not valid PEM: {}", error_chain(&e))))?;
        if certs.is_empty() {
            return Err(bad(
                "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        let bases = split_servers(server_base_url);
        let mut builder = http_builder(&bases);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| bad(format!("cannot be used: {}", error_chain(&e))))?;
        Ok(Client {
            http,
            bases: bases.into(),
            current: Arc::default(),
            token: token.filter(|t| !t.is_empty()),
            ca_cert: Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())),
            retry_budget: retry_budget_from_env(),
            hurry: Arc::new(watch::channel(None).0),
            outage: Arc::default(),
        })
    }

    /// The CA certificate file this client trusts besides the built-in roots (absolute),
    /// passed to training processes in `HYPERDIAL_CA_CERT`.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }
}

/// A server's base URL as every client uses it: no trailing `/` or `/api/v1`, and `http://`
/// when no scheme is given (`127.0.0.1:8337` is `http://127.0.0.1:8337`, as the Python
/// client reads `HYPERDIAL_SERVER`).
pub fn normalize_base(server_base_url: &str) -> String {
    let mut base = server_base_url.trim().trim_end_matches('/').to_string();
    if let Some(stripped) = base.strip_suffix("/api/v1") {
        base = stripped.to_string();
    }
    if !base.is_empty() && !base.contains("://") {
        base = format!("http://{base}");
    }
    base
}

/// The servers named in `servers`, separated by commas, each as [`normalize_base`] makes it
/// (empty names are skipped; none at all is one empty name, which requests refuse as a bad
/// URL).
pub fn split_servers(servers: &str) -> Vec<String> {
    let bases: Vec<String> = servers
        .split(',')
        .map(normalize_base)
        .filter(|b| !b.is_empty())
        .collect();
    if bases.is_empty() {
        vec![String::new()]
    } else {
        bases
    }
}

/// The HTTP client settings shared by every [`Client`] for `bases`.
fn http_builder(bases: &[String]) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("hyperdial-agent/", env!("CARGO_PKG_VERSION")));
    if bases.iter().all(|b| is_loopback(b)) {
        builder = builder.no_proxy();
    }
    builder
}

impl Client {
    /// The same client with a different retry budget (total time a request is retried).
    pub fn with_retry_budget(mut self, budget: Duration) -> Client {
        self.retry_budget = budget;
        self
    }

    /// The base URL of the server in use, as passed to training processes in
    /// `HYPERDIAL_SERVER` (with several servers, the one requests go to now).
    pub fn base_url(&self) -> &str {
        &self.bases[self.current.load(Ordering::Relaxed) % self.bases.len()]
    }

    /// Every server this client may use, the one in use first, then the others in their
    /// order after it, comma-separated: `HYPERDIAL_SERVER` for training processes, whose
    /// Python client goes on with the next one when its server cannot be reached.
    pub fn base_urls_current_first(&self) -> String {
        let n = self.bases.len();
        let current = self.current.load(Ordering::Relaxed) % n;
        (0..n)
            .map(|i| self.bases[(current + i) % n].as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every server this client may use, in order ([`Client::new`]).
    pub fn base_urls(&self) -> &[String] {
        &self.bases
    }

    /// After `failed` (an index into `bases`) could not be reached: go on with the next server,
    /// unless another request has moved on already. Says so when it moves.
    fn fail_over(&self, failed: usize, why: &str) {
        let n = self.bases.len();
        if n < 2 {
            return;
        }
        let next = (failed + 1) % n;
        if self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                "the hyperdial server at {} cannot be reached ({why}); going on with {}",
                self.bases[failed],
                self.bases[next]
            );
        }
    }

    /// The API token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The retry budget.
    pub fn retry_budget(&self) -> Duration {
        self.retry_budget
    }

    /// Give the server at most `within` from now for every request of this client and its
    /// clones, retries included: what a shutting-down agent does once a run's process has
    /// ended, so that a server that does not answer cannot hold the agent for minutes of
    /// retries. A request in flight at that moment is abandoned then, and a request started
    /// after it fails at once; both fail with [`ClientError::ShuttingDown`] (transient, so
    /// metric points and the run's end go to the spill file for `hyperdial sync`). Called
    /// again, the later of the two moments holds, so each run that ends gets its time.
    pub fn hurry(&self, within: Duration) {
        let at = tokio::time::Instant::now() + within;
        self.hurry.send_modify(|deadline| {
            *deadline = Some(deadline.map_or(at, |d| d.max(at)));
        });
    }

    /// The moment set by [`Client::hurry`], if any.
    fn hurry_deadline(&self) -> Option<tokio::time::Instant> {
        *self.hurry.borrow()
    }

    /// `GET /api/v1/sweeps/{id}`: the Sweep object.
    pub async fn get_sweep(&self, id: &str) -> Result<Value> {
        let path = format!("/api/v1/sweeps/{}", seg(id));
        self.json(Method::GET, &path, None).await
    }

    /// `POST /api/v1/agents`: register an agent for a sweep; returns the agent's id. The
    /// process key of `pid` (`hyperdial_procid`) goes along, so a server on the same machine
    /// can tell at once when that process is gone.
    pub async fn register_agent(&self, sweep: &str, host: &str, pid: u32) -> Result<String> {
        let path = "/api/v1/agents";
        let body = body_of(&RegisterAgent {
            sweep: Some(sweep.to_string()),
            host: Some(host.to_string()),
            pid: Some(i64::from(pid)),
            process: hyperdial_procid::process_key_of(pid),
        });
        let answer = self.json(Method::POST, path, Some(&body)).await?;
        match serde_json::from_value::<AgentRegistered>(answer) {
            Ok(AgentRegistered { id }) if !id.is_empty() => Ok(id),
            _ => Err(bad_answer(
                Method::POST,
                path,
                "no agent `id` in the answer",
            )),
        }
    }

    /// `POST /api/v1/sweeps/{id}/claim`: the next run to start, or why there is none.
    pub async fn claim(&self, sweep: &str, agent: &str) -> Result<Claim> {
        self.claim_waiting(sweep, agent, Duration::ZERO).await
    }

    /// [`Client::claim`] with a long poll: when nothing can start now, the server may hold
    /// the claim open for up to `wait` (it caps it at [`MAX_CLAIM_WAIT_MS`]) and answers as
    /// soon as a run can start or the sweep is over; [`Claim::Waited`] when the wait ran out.
    /// A server that does not know `wait_ms` answers at once with [`Claim::Wait`]. The
    /// request's time limit grows by `wait`.
    pub async fn claim_waiting(&self, sweep: &str, agent: &str, wait: Duration) -> Result<Claim> {
        let path = format!("/api/v1/sweeps/{}/claim", seg(sweep));
        let wait_ms = (wait.as_millis() as u64).min(MAX_CLAIM_WAIT_MS);
        // One key for this claim, sent again with each retry of it below.
        let body = body_of(&ClaimRequest {
            agent: Some(agent.to_string()),
            wait_ms: (wait_ms > 0).then_some(wait_ms),
            claim_key: Some(claim_key()),
            ..ClaimRequest::default()
        });
        let answer = self
            .request_within(
                Method::POST,
                &path,
                Some(&body),
                Duration::from_millis(wait_ms),
            )
            .await?;
        match answer.status.as_u16() {
            204 if answer.waited => Ok(Claim::Waited),
            204 => Ok(Claim::Wait),
            410 => {
                let state = serde_json::from_slice::<SweepOver>(&answer.body)
                    .map_or(SweepState::Finished, |over| over.state);
                Ok(Claim::Over { state })
            }
            s if (200..300).contains(&s) => {
                let value = parse_json(&Method::POST, &path, &answer.body)?;
                match value.get("run") {
                    Some(run @ Value::Object(_)) => Ok(Claim::Run(run.clone())),
                    _ => Err(bad_answer(
                        Method::POST,
                        &path,
                        "no `run` object in the answer",
                    )),
                }
            }
            _ => Err(status_error(&Method::POST, &path, &answer)),
        }
    }

    /// `POST /api/v1/runs/{id}/started`: record the argv the run's process was started with,
    /// and the git state of the directory it runs in when there is one.
    pub async fn started(
        &self,
        run: &str,
        argv: &[String],
        pid: Option<u32>,
        git: Option<&crate::GitState>,
    ) -> Result<()> {
        let path = format!("/api/v1/runs/{}/started", seg(run));
        let body = body_of(&Started {
            argv: argv.to_vec(),
            pid,
            git: git.map(|git| GitInfo {
                commit: Some(git.commit.clone()),
                dirty: git.dirty,
            }),
        });
        self.json(Method::POST, &path, Some(&body)).await?;
        Ok(())
    }

    /// `POST /api/v1/runs/{id}/heartbeat`: keep the run alive; learn whether to stop it.
    pub async fn heartbeat(&self, run: &str) -> Result<Heartbeat> {
        let path = format!("/api/v1/runs/{}/heartbeat", seg(run));
        let answer = self.json(Method::POST, &path, Some(&json!({}))).await?;
        Ok(heartbeat_of(answer))
    }

    /// `POST /api/v1/runs/{id}/metrics`: report metric points, in as many requests as it
    /// takes to keep each below [`MAX_REQUEST_BYTES`] (see the module documentation; a `413`
    /// makes it halve the request and try again). The answer says whether the run must stop
    /// (the early-termination rule runs on every batch); it carries a reason only if the
    /// server sends one. On an error, requests sent before it may have been stored.
    pub async fn post_metrics(&self, run: &str, points: &[MetricPoint]) -> Result<Heartbeat> {
        let path = format!("/api/v1/runs/{}/metrics", seg(run));
        let mut answer = Heartbeat::default();
        let mut work: Vec<Vec<MetricPoint>> = split_to_fit(points, MAX_REQUEST_BYTES);
        work.reverse();
        while let Some(chunk) = work.pop() {
            let body = body_of(&MetricsRequest {
                points: chunk.clone(),
            });
            match self.json(Method::POST, &path, Some(&body)).await {
                Ok(value) => {
                    let beat = heartbeat_of(value);
                    if beat.stop && !answer.stop {
                        answer = beat;
                    }
                }
                Err(err) if err.status() == Some(413) => {
                    let encoded = body.to_string().len();
                    match halve(chunk, encoded) {
                        Some((first, second)) => {
                            tracing::debug!(
                                "{path}: the server refused {encoded} bytes as too large; sending two halves"
                            );
                            work.push(second);
                            work.push(first);
                        }
                        None => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Ok(answer)
    }

    /// `POST /api/v1/runs/{id}/delivery`: report `missing` metric points this client could not
    /// deliver (kept in `files`, or dropped), or `recovered` points uploaded later; returns
    /// the Run object.
    pub async fn post_delivery(
        &self,
        run: &str,
        missing: u64,
        recovered: u64,
        files: &[String],
    ) -> Result<Value> {
        let path = format!("/api/v1/runs/{}/delivery", seg(run));
        let body = body_of(&DeliveryRequest {
            missing,
            recovered,
            files: files.to_vec(),
        });
        self.json(Method::POST, &path, Some(&body)).await
    }

    /// `GET /api/v1/runs/{id}?history=false`: the Run object without its metric history.
    pub async fn get_run(&self, run: &str) -> Result<Value> {
        let path = format!("/api/v1/runs/{}?history=false", seg(run));
        self.json(Method::GET, &path, None).await
    }

    /// `POST /api/v1/runs/{id}/output`: append captured output.
    pub async fn post_output(&self, run: &str, stream: Stream, text: &str) -> Result<()> {
        let path = format!("/api/v1/runs/{}/output", seg(run));
        let body = body_of(&OutputRequest {
            stream,
            text: text.to_string(),
        });
        self.json(Method::POST, &path, Some(&body)).await.map(drop)
    }

    /// `POST /api/v1/runs/{id}/finish`: end the run; returns the final Run object.
    pub async fn finish(&self, run: &str, finish: &Finish) -> Result<Value> {
        let path = format!("/api/v1/runs/{}/finish", seg(run));
        let body = body_of(finish);
        self.json(Method::POST, &path, Some(&body)).await
    }

    /// `POST /api/v1/runs/{id}/late-end`: take back a run the server marked `crashed` while
    /// its agent was away, to upload the end (and points) the agent kept; the run's retry gives
    /// way (withdrawn if queued, a repeat of the run, stopped if running, once claimed).
    /// Refused with `409 run_crashed` ([`ClientError::is_run_crashed`]) for a run crashed for
    /// another reason. A run not crashed is answered as it is.
    pub async fn late_end(&self, run: &str) -> Result<Value> {
        let path = format!("/api/v1/runs/{}/late-end", seg(run));
        self.json(Method::POST, &path, Some(&serde_json::json!({})))
            .await
    }

    /// `POST /api/v1/runs`: create a run outside any sweep; returns the Run (state `running`).
    pub async fn create_run(&self, new: &NewRun) -> Result<Value> {
        let path = "/api/v1/runs";
        let run = self.json(Method::POST, path, Some(&body_of(new))).await?;
        if run.get("id").and_then(Value::as_str).is_none() {
            return Err(bad_answer(Method::POST, path, "no run `id` in the answer"));
        }
        Ok(run)
    }

    /// `PUT /api/v1/runs/{id}/summary`: set summary values explicitly (`{"key": value}`).
    pub async fn put_summary(&self, run: &str, summary: Value) -> Result<()> {
        let path = format!("/api/v1/runs/{}/summary", seg(run));
        self.json(Method::PUT, &path, Some(&summary))
            .await
            .map(drop)
    }

    /// `PUT /api/v1/runs/{id}/config`: merge `values` (an object), the training script's own
    /// config, into the run's config (a sweep's values stay on top).
    pub async fn put_config(&self, run: &str, values: &Value) -> Result<()> {
        let path = format!("/api/v1/runs/{}/config", seg(run));
        self.json(Method::PUT, &path, Some(values)).await.map(drop)
    }

    /// `PUT /api/v1/runs/{id}/name`: name the run (empty clears the name).
    pub async fn put_name(&self, run: &str, name: &str) -> Result<()> {
        let path = format!("/api/v1/runs/{}/name", seg(run));
        self.json(
            Method::PUT,
            &path,
            Some(&serde_json::json!({ "name": name })),
        )
        .await
        .map(drop)
    }

    /// A request whose 2xx answer is JSON (an empty body reads as `null`); other statuses are
    /// errors.
    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let answer = self.request(method.clone(), path, body).await?;
        if !answer.status.is_success() {
            return Err(status_error(&method, path, &answer));
        }
        parse_json(&method, path, &answer.body)
    }

    /// Send a request, retrying transport errors and transient answers (5xx, 408, 429)
    /// within the retry budget. Returns any other answer.
    async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        self.request_within(method, path, body, Duration::ZERO)
            .await
    }

    /// [`Client::request`] with `extra` time allowed for each attempt (a claim's long poll).
    async fn request_within(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: Duration,
    ) -> Result<Answer> {
        if let Some(bad) = self
            .bases
            .iter()
            .find(|b| !b.starts_with("http://") && !b.starts_with("https://"))
        {
            return Err(ClientError::BadUrl {
                url: bad.clone(),
                message: "expected http://HOST:PORT or https://HOST:PORT".to_string(),
            });
        }
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let encoded: Option<Vec<u8>> = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        // Large metric batches take the server a while to store: 1 s more per 256 KiB.
        let timeout = REQUEST_TIMEOUT
            + extra
            + Duration::from_secs_f64(encoded.as_ref().map_or(0, Vec::len) as f64 / 262_144.0);
        let mut hurry = self.hurry.subscribe();
        let shutting_down = || ClientError::ShuttingDown {
            url: self.base_url().to_string(),
        };
        loop {
            let index = self.current.load(Ordering::Relaxed) % self.bases.len();
            let base = &self.bases[index];
            let url = format!("{base}{path}");
            if self
                .hurry_deadline()
                .is_some_and(|d| d <= tokio::time::Instant::now())
            {
                return Err(shutting_down());
            }
            let mut req = self.http.request(method.clone(), &url).timeout(timeout);
            if let Some(token) = &self.token {
                req = req.bearer_auth(token);
            }
            if let Some(bytes) = &encoded {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone());
            }
            let sent = tokio::select! {
                sent = req.send() => sent,
                () = deadline_passed(&mut hurry) => return Err(shutting_down()),
            };
            let failure = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let waited = resp.headers().contains_key(WAITED_HEADER);
                    match resp.bytes().await {
                        Ok(bytes) => {
                            let answer = Answer {
                                status,
                                body: bytes.to_vec(),
                                waited,
                            };
                            if !is_transient_status(status.as_u16()) {
                                self.outage_over();
                                return Ok(answer);
                            }
                            Failure::Status(answer)
                        }
                        Err(err) => Failure::Transport(error_chain(&err)),
                    }
                }
                Err(err) if err.is_builder() => {
                    return Err(ClientError::BadUrl {
                        url: base.clone(),
                        message: error_chain(&err),
                    })
                }
                Err(err) if tls_problem(&err).is_some() => {
                    return Err(ClientError::Tls {
                        url: base.clone(),
                        message: tls_problem(&err).unwrap_or_default(),
                    })
                }
                Err(err) => Failure::Transport(error_chain(&err)),
            };
            let elapsed = started.elapsed();
            // The last pause is cut to end with the budget, and one more try is made then:
            // the whole budget is spent retrying, as the messages say.
            if elapsed >= self.retry_budget {
                return Err(match failure {
                    Failure::Status(answer) => status_error(&method, path, &answer),
                    Failure::Transport(message) => ClientError::Unreachable {
                        url: base.clone(),
                        message,
                        seconds: elapsed.as_secs_f64().round() as u64,
                    },
                });
            }
            if let Failure::Transport(message) = &failure {
                self.fail_over(index, message);
            }
            if elapsed >= OUTAGE_NOTICE {
                self.outage_begun(&failure, started);
            }
            match &failure {
                Failure::Status(answer) => tracing::debug!(
                    "{method} {path}: server answered {}; retrying in {backoff:?}",
                    answer.status
                ),
                Failure::Transport(message) => {
                    tracing::debug!("{method} {path}: {message}; retrying in {backoff:?}")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.min(self.retry_budget - elapsed)) => {}
                () = deadline_passed(&mut hurry) => return Err(shutting_down()),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

impl Client {
    /// Say once per outage that the server does not answer (see [`OUTAGE_NOTICE`]).
    fn outage_begun(&self, failure: &Failure, since_when: Instant) {
        let Ok(mut since) = self.outage.lock() else {
            return;
        };
        if since.is_some() {
            return;
        }
        *since = Some(since_when);
        tracing::warn!(
            "{}",
            outage_message(self.base_url(), failure, self.retry_budget)
        );
    }

    /// Say that the server answers again, after an outage that was said.
    fn outage_over(&self) {
        let Ok(mut since) = self.outage.lock() else {
            return;
        };
        if let Some(at) = since.take() {
            tracing::warn!(
                "the hyperdial server at {} answers again (it did not for {} s)",
                self.base_url(),
                at.elapsed().as_secs()
            );
        }
    }
}

/// Resolve once the moment set by [`Client::hurry`] has passed (never while none is set).
async fn deadline_passed(hurry: &mut watch::Receiver<Option<tokio::time::Instant>>) {
    loop {
        let deadline = *hurry.borrow_and_update();
        match deadline {
            Some(at) if at <= tokio::time::Instant::now() => return,
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    changed = hurry.changed() => if changed.is_err() {
                        return std::future::pending().await;
                    },
                }
            }
            None => {
                if hurry.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// A fresh idempotency key for one claim (`ClaimRequest::claim_key`): 20 random characters of
/// `0-9a-z` (about 103 bits), so two claims of a sweep never share one.
pub fn claim_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Encoded size of `{"points":[...]}` around points of `sizes` bytes each.
fn envelope(sizes_sum: usize, count: usize) -> usize {
    r#"{"points":[]}"#.len() + sizes_sum + count.saturating_sub(1)
}

/// Split `points` into consecutive chunks whose `{"points": [...]}` body is at most `limit`
/// bytes. A point that alone exceeds the limit is split into several points of the same step
/// with disjoint values (only when it has an explicit step; otherwise it is sent alone and
/// the server's `413` is the answer).
fn split_to_fit(points: &[MetricPoint], limit: usize) -> Vec<Vec<MetricPoint>> {
    let mut out: Vec<Vec<MetricPoint>> = Vec::new();
    let mut chunk: Vec<MetricPoint> = Vec::new();
    let mut chunk_bytes = 0usize;
    for point in points {
        let size = encoded_len(point);
        let pieces = if envelope(size, 1) > limit && point.step.is_some() {
            split_point(point, limit)
        } else {
            vec![(point.clone(), size)]
        };
        for (piece, size) in pieces {
            if !chunk.is_empty() && envelope(chunk_bytes + size, chunk.len() + 1) > limit {
                out.push(std::mem::take(&mut chunk));
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            chunk.push(piece);
        }
    }
    if !chunk.is_empty() || out.is_empty() {
        out.push(chunk);
    }
    out
}

/// One point's values spread over points of the same step that each fit in `limit`.
fn split_point(point: &MetricPoint, limit: usize) -> Vec<(MetricPoint, usize)> {
    let empty = MetricPoint {
        values: Map::new(),
        ..point.clone()
    };
    let base = encoded_len(&empty);
    let mut out = Vec::new();
    let mut current = empty.clone();
    let mut size = base;
    for (name, value) in &point.values {
        // `"name":value` plus a comma.
        let entry = serde_json::to_string(name).map(|n| n.len()).unwrap_or(0)
            + serde_json::to_string(value).map(|v| v.len()).unwrap_or(0)
            + 2;
        if !current.values.is_empty() && envelope(size + entry, 1) > limit {
            out.push((std::mem::replace(&mut current, empty.clone()), size));
            size = base;
        }
        current.values.insert(name.clone(), value.clone());
        size += entry;
    }
    if !current.values.is_empty() {
        out.push((current, size));
    }
    out
}

/// Split a refused request in two: its points in halves, or a single point's values.
/// `None` when it is down to one value.
fn halve(
    mut chunk: Vec<MetricPoint>,
    encoded: usize,
) -> Option<(Vec<MetricPoint>, Vec<MetricPoint>)> {
    if chunk.len() >= 2 {
        let second = chunk.split_off(chunk.len() / 2);
        return Some((chunk, second));
    }
    let point = chunk.pop()?;
    if point.values.len() < 2 || point.step.is_none() {
        return None;
    }
    let pieces = split_point(&point, encoded / 2);
    if pieces.len() < 2 {
        return None;
    }
    let mid = pieces.len() / 2;
    let mut pieces: Vec<MetricPoint> = pieces.into_iter().map(|(p, _)| p).collect();
    let second = pieces.split_off(mid);
    Some((pieces, second))
}

fn encoded_len(point: &MetricPoint) -> usize {
    serde_json::to_vec(point)
        .map(|v| v.len())
        .unwrap_or(usize::MAX / 4)
}

/// Why one attempt failed in a retryable way.
enum Failure {
    Status(Answer),
    Transport(String),
}

/// Percent-encode an id for use as one path segment (ids are plain, but a bad one must not
/// change the path).
fn seg(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_loopback(base: &str) -> bool {
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .unwrap_or(base);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn parse_json(method: &Method, path: &str, body: &[u8]) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|err| ClientError::BadAnswer {
        method: method.to_string(),
        path: path.to_string(),
        message: format!("invalid JSON: {err}"),
    })
}

fn bad_answer(method: Method, path: &str, message: &str) -> ClientError {
    ClientError::BadAnswer {
        method: method.to_string(),
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// What the agent says once when an outage begins: the server, what is wrong (it does not
/// answer; or it answers `5xx`, with the server's own words, which say why and what to do:
/// its database is down, the disk is full) and how long each request is retried.
fn outage_message(base: &str, failure: &Failure, budget: Duration) -> String {
    let (what, why) = match failure {
        Failure::Status(answer) => {
            let said = match status_error(&Method::GET, "", answer) {
                ClientError::Status { message, .. } => message,
                other => other.to_string(),
            };
            (
                "cannot serve requests now",
                format!("it answers {}: {said}", answer.status.as_u16()),
            )
        }
        Failure::Transport(message) => ("does not answer", message.clone()),
    };
    format!(
        "the hyperdial server at {base} {what} ({why}); retrying each request for up to {} s \
         (runs in flight go on)",
        budget.as_secs()
    )
}

fn status_error(method: &Method, path: &str, answer: &Answer) -> ClientError {
    let from_json = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
    let message = match from_json {
        Some(m) => m,
        None => {
            let text = String::from_utf8_lossy(&answer.body);
            let text = text.trim();
            if text.is_empty() {
                answer
                    .status
                    .canonical_reason()
                    .unwrap_or("no message")
                    .to_string()
            } else {
                truncate(text, MAX_QUOTED_BODY)
            }
        }
    };
    let code = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(Box::from));
    ClientError::Status {
        method: method.to_string(),
        path: path.to_string(),
        status: answer.status.as_u16(),
        message,
        code,
    }
}

/// What went wrong, and what to do, when `err` failed for a TLS reason that no retry fixes
/// (the server's certificate is not trusted or not valid for its name, or the server does
/// not speak TLS); `None` for any other failure (including a connection lost during the
/// handshake, which may pass).
pub fn tls_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(explain_tls(tls));
        }
        // `io::Error::source` skips the error an `io::Error` wraps (and rustls's errors come
        // wrapped twice): look inside it instead.
        source = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn explain_tls(err: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match err {
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
        | Error::InvalidCertificate(CertificateError::BadSignature) => format!(
            "the server's certificate is not trusted ({err}): pass the certificate of the CA \
             that signed it, or the server's own when it is self-signed, with --ca-cert FILE \
             (or HYPERDIAL_CA_CERT)"
        ),
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => format!(
            "the server's certificate is not valid for the host name of the server URL ({err}): \
             use a name or address the certificate lists"
        ),
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("the server's certificate has expired ({err})"),
        Error::InvalidCertificate(CertificateError::Other(other))
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            format!(
                "the server's certificate is marked as a CA certificate (basicConstraints \
                 CA:TRUE), which TLS clients refuse as a server's own ({err}): make the server \
                 certificate with CA:FALSE (docs/api.md shows how), or sign it with a CA"
            )
        }
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => format!(
            "the server does not speak TLS at this address ({err}): use http:// if it serves \
             plain HTTP"
        ),
        other => other.to_string(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_normalized() {
        assert_eq!(
            Client::new("http://127.0.0.1:8337/", None).base_url(),
            "http://127.0.0.1:8337"
        );
        assert_eq!(
            Client::new("http://h:1/api/v1/", None).base_url(),
            "http://h:1"
        );
        assert_eq!(Client::new("http://h:1", Some(String::new())).token(), None);
        assert_eq!(
            Client::new("10.0.0.2:8337", None).base_url(),
            "http://10.0.0.2:8337"
        );
        assert_eq!(
            Client::new("localhost:8337", None).base_url(),
            "http://localhost:8337"
        );
    }

    #[tokio::test]
    async fn unusable_urls_fail_at_once() {
        for url in ["ftp://x", "http://exa mple:1"] {
            let err = Client::new(url, None).heartbeat("r").await.unwrap_err();
            assert!(matches!(err, ClientError::BadUrl { .. }), "{url}: {err:?}");
        }
    }

    #[test]
    fn unusable_ca_files_are_named() {
        let dir = std::env::temp_dir().join(format!("hyperdial-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        for path in [junk.as_path(), &dir.join("missing.pem")] {
            let err = Client::with_ca_cert("https://h:1", None, Some(path)).unwrap_err();
            assert!(matches!(err, ClientError::CaCert { .. }), "{err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(!err.is_transient());
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn tls_failures_say_what_to_do() {
        // As reqwest reports it: wrapped in an io::Error, itself wrapped in an io::Error.
        let untrusted = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        let text = tls_problem(&untrusted).unwrap();
        assert!(text.contains("--ca-cert"), "{text}");
        let plain = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert!(tls_problem(&plain).unwrap().contains("does not speak TLS"));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(tls_problem(&reset), None);
    }

    #[test]
    fn only_a_409_run_crashed_means_the_run_is_over() {
        let answer = |status: StatusCode, body: &str| Answer {
            status,
            body: body.as_bytes().to_vec(),
            ..Default::default()
        };
        let crashed = answer(
            StatusCode::CONFLICT,
            r#"{"error": "run r is crashed", "code": "run_crashed"}"#,
        );
        assert!(status_error(&Method::POST, "/x", &crashed).is_run_crashed());
        let other = answer(StatusCode::CONFLICT, r#"{"error": "sweep is cancelled"}"#);
        assert!(!status_error(&Method::POST, "/x", &other).is_run_crashed());
        let missing = answer(
            StatusCode::NOT_FOUND,
            r#"{"error": "no run", "code": "run_crashed"}"#,
        );
        assert!(!status_error(&Method::POST, "/x", &missing).is_run_crashed());
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("http://127.0.0.1:8337"));
        assert!(is_loopback("http://localhost"));
        assert!(is_loopback("http://[::1]:80/x"));
        assert!(!is_loopback("http://10.0.0.2:8337"));
        assert!(!is_loopback("http://example.invalid"));
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("k3x9q2ab"), "k3x9q2ab");
        assert_eq!(seg("../x y"), "..%2Fx%20y");
    }

    #[test]
    fn new_run_body() {
        let body = body_of(&NewRun {
            project: Some("p".into()),
            argv: Some(vec!["a".into()]),
            git: Some(GitInfo {
                commit: Some("abc".into()),
                dirty: Some(true),
            }),
            ..NewRun::default()
        });
        assert_eq!(
            body,
            json!({"project": "p", "argv": ["a"], "git": {"commit": "abc", "dirty": true}})
        );
        assert_eq!(body_of(&NewRun::default()), json!({}));
    }

    #[test]
    fn finish_body_omits_unset_fields() {
        let f = Finish {
            exit_code: Some(0),
            ..Finish::default()
        };
        assert_eq!(serde_json::to_value(&f).unwrap(), json!({"exit_code": 0}));
    }

    #[test]
    fn metric_point_serialization() {
        let mut values = Map::new();
        values.insert("loss".into(), json!(0.5));
        values.insert("bad".into(), Value::Null);
        let p = MetricPoint {
            step: None,
            time_ms: Some(7),
            values,
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"time_ms": 7, "values": {"loss": 0.5, "bad": null}})
        );
    }

    fn wide_point(step: i64, metrics: usize) -> MetricPoint {
        let mut values = Map::new();
        for i in 0..metrics {
            values.insert(format!("metric_{i:04}"), json!(0.123456789 * i as f64));
        }
        MetricPoint {
            step: Some(step),
            time_ms: Some(1),
            values,
        }
    }

    #[test]
    fn batches_are_split_below_the_limit_in_order() {
        let points: Vec<MetricPoint> = (0..300).map(|s| wide_point(s, 150)).collect();
        let one = serde_json::to_string(&json!({"points": points}))
            .unwrap()
            .len();
        let limit = one / 7;
        let chunks = split_to_fit(&points, limit);
        assert!(chunks.len() >= 7, "{}", chunks.len());
        for chunk in &chunks {
            let body = serde_json::to_string(&json!({ "points": chunk })).unwrap();
            assert!(body.len() <= limit, "{} > {limit}", body.len());
        }
        let flat: Vec<MetricPoint> = chunks.into_iter().flatten().collect();
        assert_eq!(flat, points);
        // Small batches stay whole; an empty batch is one empty request.
        assert_eq!(split_to_fit(&points[..3], MAX_REQUEST_BYTES).len(), 1);
        assert_eq!(split_to_fit(&[], MAX_REQUEST_BYTES), vec![Vec::new()]);
    }

    #[test]
    fn a_step_wider_than_the_limit_is_spread_over_requests() {
        let point = wide_point(7, 2000);
        let limit = 4096;
        let chunks = split_to_fit(std::slice::from_ref(&point), limit);
        assert!(chunks.len() > 10);
        let mut merged = Map::new();
        for chunk in &chunks {
            let body = serde_json::to_string(&json!({ "points": chunk })).unwrap();
            assert!(body.len() <= limit, "{} > {limit}", body.len());
            for p in chunk {
                assert_eq!(p.step, Some(7));
                merged.extend(p.values.clone());
            }
        }
        assert_eq!(merged, point.values);
        let (a, b) = halve(vec![point.clone()], 50_000).unwrap();
        assert!(!a.is_empty() && !b.is_empty());
        let mut halves = Map::new();
        for p in a.iter().chain(&b) {
            assert_eq!(p.step, Some(7));
            halves.extend(p.values.clone());
        }
        assert_eq!(halves, point.values);
        assert!(halve(vec![wide_point(1, 1)], 10).is_none());
    }

    #[test]
    fn transient_failures() {
        for status in [500, 502, 503, 408, 429] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [400, 401, 404, 409, 413, 422] {
            assert!(!is_transient_status(status), "{status}");
        }
        let unreachable = ClientError::Unreachable {
            url: "u".into(),
            message: "m".into(),
            seconds: 1,
        };
        assert!(unreachable.is_transient());
    }

    #[test]
    fn a_refused_token_or_an_unknown_run_is_kept_not_dropped() {
        // (status, refused token, kept): a 404 is a server without the run (another
        // database), whose data is kept for the server that has it; a 400 is bad data.
        for (status, auth, kept) in [
            (401, true, true),
            (403, true, true),
            (404, false, true),
            (400, false, false),
            (413, false, false),
        ] {
            let answer = Answer {
                status: StatusCode::from_u16(status).unwrap(),
                ..Default::default()
            };
            let err = status_error(&Method::POST, "/x", &answer);
            assert_eq!(err.is_auth(), auth, "{status}");
            assert_eq!(err.is_unknown(), status == 404, "{status}");
            assert_eq!(err.is_kept(), kept, "{status}");
            assert!(!err.is_transient(), "{status}");
        }
        let unreachable = ClientError::Unreachable {
            url: "u".into(),
            message: "m".into(),
            seconds: 1,
        };
        assert!(unreachable.is_kept() && !unreachable.is_auth());
    }

    #[test]
    fn an_outage_message_quotes_a_server_that_answers_5xx() {
        let answer = Answer {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: br#"{"error": "the database disk is full: free space on the volume"}"#.to_vec(),
            ..Default::default()
        };
        let said = outage_message(
            "http://h:1",
            &Failure::Status(answer),
            Duration::from_secs(60),
        );
        assert_eq!(
            said,
            "the hyperdial server at http://h:1 cannot serve requests now (it answers 503: the \
             database disk is full: free space on the volume); retrying each request for up to \
             60 s (runs in flight go on)"
        );
        let said = outage_message(
            "http://h:1",
            &Failure::Transport("connection refused".into()),
            Duration::from_secs(5),
        );
        assert!(
            said.starts_with(
                "the hyperdial server at http://h:1 does not answer (connection refused)"
            ),
            "{said}"
        );
    }

    #[test]
    fn status_errors_quote_the_server() {
        let answer = Answer {
            status: StatusCode::NOT_FOUND,
            body: br#"{"error": "no sweep k3x9"}"#.to_vec(),
            ..Default::default()
        };
        let err = status_error(&Method::GET, "/api/v1/sweeps/k3x9", &answer);
        assert_eq!(
            err.to_string(),
            "GET /api/v1/sweeps/k3x9: the server answered 404: no sweep k3x9"
        );
        assert_eq!(err.status(), Some(404));
        let answer = Answer {
            status: StatusCode::BAD_GATEWAY,
            ..Default::default()
        };
        assert!(status_error(&Method::GET, "/x", &answer)
            .to_string()
            .ends_with("502: Bad Gateway"));
        let answer = Answer {
            status: StatusCode::BAD_REQUEST,
            body: "é".repeat(400).into_bytes(),
            ..Default::default()
        };
        let msg = status_error(&Method::GET, "/x", &answer).to_string();
        assert!(msg.ends_with('…'));
    }
}
