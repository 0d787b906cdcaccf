//! Late reports: a run the server has given up on takes no more reports.
//!
//! The janitor marks a sweep run `crashed` when its agent fell silent for the silence limit
//! (`--run-timeout`), or at once when the agent's process is known to be gone, and queues a
//! retry of its configuration. The agent may still be alive behind a cut link: when the link
//! returns, its heartbeats, metrics, output, summary and finish for that run arrive late.
//! They are refused with `409 Conflict` (`code: "run_crashed"`), so the crashed attempt gains
//! no metric points after the server stopped waiting for it (its retry is the attempt that
//! counts) and cannot be revived. The agent then stops that run's process and goes on.
//!
//! A run outside a sweep crashed for its silence is the exception: no retry replaced it, so a
//! late report makes it `running` again and is taken ([`crate::Controller::reporting_run`]).
//!
//! The check reads the run before the handler writes (a finish makes it inside
//! `Controller::finish`, from the run it reads anyway); the store's `finish_run` only ends
//! runs that are `running` or `queued`, so a finish that races the janitor still cannot
//! revive a crashed run.

use crate::controller::ControlError;
use crate::error::ApiError;
use crate::AppState;
use hyperdial_wire::RunState;

/// `Err(409)` when run `id` is `crashed`; `Ok` otherwise (an unknown run is left to the
/// handler, which answers `404`). Metric batches and summaries get the same check inside
/// the controller, from the run they read anyway ([`crate::Controller::reporting_run`]).
pub(crate) async fn refuse_if_crashed(s: &AppState, id: &str) -> Result<(), ApiError> {
    match s.controller.reporting_run(id).await {
        Ok(_) | Err(ControlError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// As [`refuse_if_crashed`], for a heartbeat: also the state of a run that has ended otherwise
/// (`finished`, `failed`, `stopped_early`, `cancelled`: through the API while its process
/// still runs), so that the heartbeat tells its agent to stop that process. Without this the
/// process would run on, for ever if it hangs, under a run that is over.
pub(crate) async fn ended_state(s: &AppState, id: &str) -> Result<Option<RunState>, ApiError> {
    match s.controller.reporting_run(id).await {
        Ok(run) => Ok(run.state.is_terminal().then_some(run.state)),
        Err(ControlError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
