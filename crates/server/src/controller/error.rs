//! What can go wrong when the controller is asked to do something, in the domain's terms.
//!
//! The controller knows nothing of HTTP: it says *what* failed (no such sweep, a request that
//! makes no sense, a state that forbids the action, the database). The API layer maps each
//! kind to a status once, in `impl From<ControlError> for ApiError` (`crate::error`), so the
//! same failure answers the same way from every route.

use hyperdial_space::Diagnostic;
use hyperdial_store::StoreError;

/// A failed controller operation.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The sweep, run or action named does not exist (`404`).
    #[error("no {kind} with id `{id}`")]
    NotFound {
        /// `"sweep"`, `"run"`.
        kind: &'static str,
        /// The id (or word) that was asked for.
        id: String,
    },
    /// The request names something impossible: an unknown state, a run of another sweep,
    /// too many items (`400`). The message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The sweep config does not validate (`422`); `diagnostics` has every finding.
    #[error("the sweep config is invalid:\n{rendered}")]
    InvalidConfig {
        /// The findings rendered as `file:line:col: error: path: message` lines.
        rendered: String,
        /// Every finding, errors and warnings.
        diagnostics: Vec<Diagnostic>,
    },
    /// The current state forbids it: a finished sweep cannot be paused, a stored config no
    /// longer validates, a state kept changing under the request (`409`).
    #[error("{0}")]
    Conflict(String),
    /// The run was marked `crashed` (its agent or client fell silent) and takes no more
    /// reports (`409`, code `run_crashed`): an agent stops the run's process, an ask/tell
    /// client asks for its next trial; a retry runs the configuration again.
    #[error("{}", crashed_message(.id, .why, *.asked))]
    RunCrashed {
        /// The run.
        id: String,
        /// Why the server gave up on it.
        why: String,
        /// Whether it is an ask/tell trial (claimed without an agent), which has no process
        /// of the server's to stop.
        asked: bool,
    },
    /// The search strategy failed on this sweep (`500`: a bug; the server logged it).
    #[error("the search strategy failed (the server logged it)")]
    Strategy,
    /// The store failed (`503` for a storage fault, `500` otherwise).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The text of [`ControlError::RunCrashed`], in the words of who reports: an agent, which
/// runs the process, or an ask/tell client, whose program does.
fn crashed_message(id: &str, why: &str, asked: bool) -> String {
    if asked {
        format!(
            "trial {id} is crashed ({why}); it takes no more reports: ask for the next trial \
             (the sweep's `retry` decides whether its configuration runs again)"
        )
    } else {
        format!(
            "run {id} is crashed ({why}); it takes no more reports: stop its process, a retry \
             runs its configuration again"
        )
    }
}

impl ControlError {
    /// [`ControlError::NotFound`].
    pub fn not_found(kind: &'static str, id: &str) -> Self {
        ControlError::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// [`ControlError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        ControlError::Invalid(message.into())
    }

    /// [`ControlError::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        ControlError::Conflict(message.into())
    }

    /// The `422` of a config that does not validate: its errors first (what stops the sweep),
    /// then its warnings, each kind in source order, rendered and as diagnostics.
    pub fn invalid_config(mut error: hyperdial_space::ConfigError) -> Self {
        error.diagnostics.sort_by_key(|d| !d.is_error());
        ControlError::InvalidConfig {
            rendered: error.render(),
            diagnostics: error.diagnostics,
        }
    }
}
