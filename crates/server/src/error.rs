//! API errors: every failure answers JSON `{"error": "..."}` with a fitting status.
//!
//! Store errors are mapped here, at the edge. A storage fault (disk full, read-only database,
//! I/O error, database busy or damaged) answers `503 Service Unavailable` with a message that
//! names the cause and the volume to look at, and a stable `code` (`disk_full`, `read_only`,
//! `io_error`, `busy`, `corrupt`, `unavailable`); clients retry 503s, and the store recovers on its own once
//! the fault clears. Any other store error is a bug: `500` with the code `storage`. Either
//! way the database's own text goes to the server's log only, never to the client.

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyperdial_store::{Fault, StoreError};
use hyperdial_wire::api::{ErrorBody, ErrorCode};
use hyperdial_wire::error_chain;

use crate::controller::ControlError;

/// An error answer of the API: a status and the wire's [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The JSON body: `error` says what went wrong and how to fix it; `code`,
    /// `limit_bytes`, `diagnostics` and `state` where they apply.
    pub body: ErrorBody,
}

impl ApiError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no {what} with id `{id}`"))
    }

    /// 413 Payload Too Large; `message` says what the limit is.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: message.into(),
                code: None,
                state: None,
                limit_bytes: None,
                diagnostics: None,
            },
        }
    }

    /// The same error with a `code`.
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.body.code = Some(code);
        self
    }

    /// What went wrong and how to fix it.
    pub fn message(&self) -> &str {
        &self.body.error
    }
}

/// Each kind of controller failure answers with one status, from every route.
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            ControlError::Invalid(message) => Self::bad_request(message),
            ControlError::InvalidConfig {
                rendered,
                diagnostics,
            } => {
                let mut err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the sweep config is invalid:\n{rendered}"),
                );
                // The config model's findings and the wire's have one JSON shape.
                err.body.diagnostics = serde_json::to_value(&diagnostics)
                    .and_then(serde_json::from_value)
                    .ok();
                err
            }
            ControlError::Conflict(message) => Self::conflict(message),
            ControlError::RunCrashed { .. } => {
                let mut err = Self::conflict(e.to_string()).with_code(ErrorCode::RunCrashed);
                err.body.state = Some(hyperdial_wire::RunState::Crashed);
                err
            }
            ControlError::Strategy => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                .with_code(ErrorCode::Storage),
            ControlError::Store(e) => e.into(),
        }
    }
}

tokio::task_local! {
    /// The database file of the server answering the current request (`None` for a database
    /// server), so fault messages can name its volume (set around every request by
    /// [`with_db_path`]).
    static DB_PATH: Option<PathBuf>;
}

/// Run `f` (a request) with `path` as the database that fault messages name.
pub(crate) async fn with_db_path<F: std::future::Future>(path: Option<PathBuf>, f: F) -> F::Output {
    DB_PATH.scope(path, f).await
}

/// What a client is told about a storage fault: a fixed sentence, with the database's
/// directory (or file) when known.
fn fault_message(fault: Fault, db: Option<&Path>) -> String {
    let dir = db
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.display().to_string());
    let dir = dir.as_deref().unwrap_or("the database");
    let file = db
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the database file".to_string());
    match fault {
        Fault::DiskFull => format!(
            "the database disk is full: free space on the volume holding {dir}; \
             nothing of this request was stored, retry once there is room"
        ),
        Fault::ReadOnly => format!(
            "the database is read-only: make {file} and {dir} writable by the server \
             (and the volume mounted read-write); nothing of this request was stored"
        ),
        Fault::Io => format!(
            "the database could not be read or written (I/O error): check the disk holding {dir}; \
             nothing of this request was stored"
        ),
        Fault::Busy => {
            "the database is busy (locked by another process, overloaded, or reconnecting \
             after an outage); retry shortly"
                .to_string()
        }
        Fault::Unavailable => {
            "the database server cannot be reached (or is shutting down); nothing of this request \
             was stored, retry shortly"
                .to_string()
        }
        Fault::Corrupt => format!(
            "the database file {file} is damaged; stop the server and check it \
             (`sqlite3 {file} 'PRAGMA integrity_check'`)"
        ),
    }
}

/// Log a storage error with its whole cause, after `task` (`""` for a request, `"janitor: "`): a
/// storage fault at most once a second per kind, whoever met it, with the count of the ones
/// not logged ([`fault_log_gate`]); any other error every time. During an outage every
/// request and every round of the janitor meets the fault, and a line each would bury the
/// rest of the log.
pub(crate) fn log_store_error(task: &str, e: &StoreError) {
    let chain = error_chain(e);
    match e.fault() {
        Some(fault) => match fault_log_gate(fault) {
            Some(0) => tracing::error!(code = fault.code(), "{task}storage fault: {chain}"),
            Some(quiet) => tracing::error!(
                code = fault.code(),
                "{task}storage fault: {chain} (and {quiet} more like it in the last seconds, \
                 not logged one by one)"
            ),
            None => {}
        },
        None => tracing::error!("{task}store: {chain}"),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Rejected(_) = e {
            let chain = error_chain(&e);
            tracing::warn!("store refused a value: {chain}");
            return ApiError::bad_request(e.to_string());
        }
        let db = DB_PATH.try_with(Clone::clone).ok().flatten();
        log_store_error("", &e);
        let (status, message, code) = match e.fault() {
            Some(fault) => (
                StatusCode::SERVICE_UNAVAILABLE,
                fault_message(fault, db.as_deref()),
                fault_code(fault),
            ),
            None => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal storage error (the server logged it)".to_string(),
                ErrorCode::Storage,
            ),
        };
        ApiError::new(status, message).with_code(code)
    }
}

/// How often a storage fault of one kind is logged: once per this interval at most, the rest
/// counted. During an outage every request meets the fault, and a line each would bury the
/// rest of the log.
const FAULT_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a storage fault of kind `fault` met now is logged: `Some(n)` with the number of
/// faults of its kind left unlogged since the last line, or `None` to count it quietly.
fn fault_log_gate(fault: Fault) -> Option<u64> {
    static GATE: std::sync::Mutex<Vec<(Fault, std::time::Instant, u64)>> =
        std::sync::Mutex::new(Vec::new());
    let mut gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
    let now = std::time::Instant::now();
    match gate.iter_mut().find(|(f, _, _)| *f == fault) {
        Some((_, last, quiet)) if now.duration_since(*last) < FAULT_LOG_EVERY => {
            *quiet += 1;
            None
        }
        Some((_, last, quiet)) => {
            *last = now;
            Some(std::mem::take(quiet))
        }
        None => {
            gate.push((fault, now, 0));
            Some(0)
        }
    }
}

/// The wire code of a storage fault.
fn fault_code(fault: Fault) -> ErrorCode {
    match fault {
        Fault::DiskFull => ErrorCode::DiskFull,
        Fault::ReadOnly => ErrorCode::ReadOnly,
        Fault::Io => ErrorCode::IoError,
        Fault::Busy => ErrorCode::Busy,
        Fault::Corrupt => ErrorCode::Corrupt,
        Fault::Unavailable => ErrorCode::Unavailable,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The answer when a handler panics: a 500 with JSON, and the server keeps serving.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (the server logged it)",
    )
    .into_response()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_logged_store_error_names_its_cause() {
        // What the janitor's and the requests' lines say: the fault and the database's own
        // words behind it, once each.
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = StoreError::Unavailable(sqlx::Error::Io(refused));
        assert_eq!(
            error_chain(&e),
            "the database server is unavailable: error communicating with database: refused"
        );
    }

    #[test]
    fn a_storage_fault_is_logged_once_a_second_with_the_count_of_the_rest() {
        // `Corrupt`: a kind no other test of this process meets.
        assert_eq!(fault_log_gate(Fault::Corrupt), Some(0));
        assert_eq!(fault_log_gate(Fault::Corrupt), None);
        assert_eq!(fault_log_gate(Fault::Corrupt), None);
        std::thread::sleep(FAULT_LOG_EVERY + std::time::Duration::from_millis(50));
        assert_eq!(fault_log_gate(Fault::Corrupt), Some(2));
        assert_eq!(fault_log_gate(Fault::Corrupt), None);
    }

    use super::*;

    fn answer(e: ControlError) -> (StatusCode, serde_json::Value) {
        let api = ApiError::from(e);
        (api.status, serde_json::to_value(&api.body).unwrap())
    }

    #[test]
    fn each_controller_failure_has_one_status_and_body() {
        let (status, body) = answer(ControlError::not_found("sweep", "s1"));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, serde_json::json!({"error": "no sweep with id `s1`"}));
        assert_eq!(
            answer(ControlError::invalid("name at most 3 runs")).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            answer(ControlError::conflict("it is finished")).0,
            StatusCode::CONFLICT
        );
        let (status, body) = answer(ControlError::Strategy);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["code"], "storage");
        let bad = hyperdial_space::parse_str("method: nope\n", "sweep.yaml").unwrap_err();
        let rendered = bad.render();
        let (status, body) = answer(ControlError::InvalidConfig {
            rendered,
            diagnostics: bad.diagnostics,
        });
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let diagnostics = body["diagnostics"].as_array().expect("diagnostics listed");
        assert!(diagnostics.iter().any(|d| d["path"] == "method"), "{body}");
    }

    #[test]
    fn storage_faults_answer_503_with_their_code() {
        let fault = StoreError::Unavailable(sqlx::Error::Protocol("connection refused".into()));
        let (status, body) = answer(ControlError::Store(fault));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "unavailable");
        assert!(
            !body["error"].as_str().unwrap().contains("refused"),
            "{body}"
        );
    }
}
