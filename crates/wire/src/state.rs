//! Run and sweep states.
//!
//! The words are stored in the `state` columns of `runs` and `sweeps` and sent as JSON
//! strings; [`RunState::ALL`] and [`SweepState::ALL`] list them in lifecycle order for
//! generated clients.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A state word that names no state; the error of `FromStr`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} state {word:?} (expected one of: {expected})")]
pub struct UnknownState {
    /// `"run"` or `"sweep"`.
    pub kind: &'static str,
    /// The word that was read.
    pub word: String,
    /// The accepted words, comma separated.
    pub expected: &'static str,
}

/// Where a run is in its life.
///
/// `Queued → Running → {Finished, Failed, Crashed, StoppedEarly, Cancelled}`; a queued run (a
/// retry waiting for an agent) can also go straight to `Cancelled`. The last five are terminal:
/// no update leaves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Waiting for an agent to claim it (a retry).
    Queued,
    /// Claimed by an agent, whose process is alive as far as the server knows.
    Running,
    /// The command exited 0 (or completed before a stop request reached it).
    Finished,
    /// The command exited non-zero.
    Failed,
    /// The agent or its host went away, or the command was killed by a signal it did not ask
    /// for.
    Crashed,
    /// Stopped by the sweep's early-termination rule (word `stopped_early`).
    #[serde(rename = "stopped_early")]
    StoppedEarly,
    /// Cancelled by the user, or interrupted by a stopping agent.
    Cancelled,
}

impl RunState {
    /// Every state, in lifecycle order.
    pub const ALL: [RunState; 7] = [
        RunState::Queued,
        RunState::Running,
        RunState::Finished,
        RunState::Failed,
        RunState::Crashed,
        RunState::StoppedEarly,
        RunState::Cancelled,
    ];

    /// The states a run can end in (what `POST /runs/{id}/finish` and retries name).
    pub const TERMINAL: [RunState; 5] = [
        RunState::Finished,
        RunState::Failed,
        RunState::Crashed,
        RunState::StoppedEarly,
        RunState::Cancelled,
    ];

    /// The state's word on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Failed => "failed",
            RunState::Crashed => "crashed",
            RunState::StoppedEarly => "stopped_early",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Whether the run is over (no update leaves this state).
    pub const fn is_terminal(self) -> bool {
        !self.in_flight()
    }

    /// Whether the run's metric is a result: it finished or was stopped early. The sweep's
    /// best run and its Pareto front are chosen among these; a failed or crashed run's last
    /// value is no result, whatever it reported before.
    pub const fn is_result(self) -> bool {
        matches!(self, RunState::Finished | RunState::StoppedEarly)
    }

    /// Whether the run is queued or running: it counts against a sweep's parallelism and the
    /// search treats it as pending.
    pub const fn in_flight(self) -> bool {
        matches!(self, RunState::Queued | RunState::Running)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, UnknownState> {
        RunState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState {
                kind: "run",
                word: s.to_string(),
                expected: "queued, running, finished, failed, crashed, stopped_early, cancelled",
            })
    }
}

/// Where a sweep is in its life.
///
/// `Running ⇄ Paused → {Finished, Cancelled}`; a finished sweep can be resumed (`Running`)
/// to run the retries it owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepState {
    /// Handing out runs.
    Running,
    /// Handing out no new runs until resumed; runs in flight go on.
    Paused,
    /// Over: its space, `run_cap` or metric target is done, or the user stopped it.
    Finished,
    /// Cancelled by the user; its runs in flight were asked to stop.
    Cancelled,
}

impl SweepState {
    /// Every state, in lifecycle order.
    pub const ALL: [SweepState; 4] = [
        SweepState::Running,
        SweepState::Paused,
        SweepState::Finished,
        SweepState::Cancelled,
    ];

    /// The state's word on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            SweepState::Running => "running",
            SweepState::Paused => "paused",
            SweepState::Finished => "finished",
            SweepState::Cancelled => "cancelled",
        }
    }

    /// Whether the sweep hands out no more new runs of its own accord.
    pub const fn is_over(self) -> bool {
        matches!(self, SweepState::Finished | SweepState::Cancelled)
    }
}

impl fmt::Display for SweepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SweepState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, UnknownState> {
        SweepState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState {
                kind: "sweep",
                word: s.to_string(),
                expected: "running, paused, finished, cancelled",
            })
    }
}

/// Why the server, not the run's agent or client, ended or changed a run, as one word (the
/// `end_cause` of a run; `null` for a run its reporter ended). Stored beside the run's `error`,
/// which says the same in words, and the only thing the server's decisions about such a run
/// read: a late end takes back a run crashed for `agent_silent` or `agent_gone` only, and a run
/// outside a sweep crashed for `run_silent` runs again when it is heard from. A client can
/// send any text as a run's error; a cause is set by the server alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// `crashed`: a sweep run whose agent sent no heartbeat, metrics or output for the run
    /// timeout.
    AgentSilent,
    /// `crashed`: a sweep run whose agent process, on the server's machine, is gone.
    AgentGone,
    /// `crashed`: an ask/tell trial whose client sent no heartbeat or tell for the run timeout.
    ClientSilent,
    /// `crashed`: a run outside a sweep whose process sent nothing for the run timeout; only
    /// presumed crashed, it runs again when it is heard from.
    RunSilent,
    /// `running`: a run marked crashed for its silent or gone agent whose end, kept by the
    /// agent while the server was away, is being uploaded.
    LateEndPending,
    /// `cancelled`, never run: a queued retry withdrawn because the run it retried delivered
    /// its end late, after all.
    RetryWithdrawn,
    /// A retry that gave way, once claimed, to the run it retried, which delivered its end
    /// late: now a repeat of that run (stopped, `cancelled`, if it was still running).
    RetrySuperseded,
}

impl EndCause {
    /// Every cause.
    pub const ALL: [EndCause; 7] = [
        EndCause::AgentSilent,
        EndCause::AgentGone,
        EndCause::ClientSilent,
        EndCause::RunSilent,
        EndCause::LateEndPending,
        EndCause::RetryWithdrawn,
        EndCause::RetrySuperseded,
    ];

    /// The cause's word on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndCause::AgentSilent => "agent_silent",
            EndCause::AgentGone => "agent_gone",
            EndCause::ClientSilent => "client_silent",
            EndCause::RunSilent => "run_silent",
            EndCause::LateEndPending => "late_end_pending",
            EndCause::RetryWithdrawn => "retry_withdrawn",
            EndCause::RetrySuperseded => "retry_superseded",
        }
    }

    /// The cause a word names; `None` for a word this version does not know (a newer
    /// server's), which is read as no cause.
    pub fn from_word(word: &str) -> Option<EndCause> {
        EndCause::ALL.into_iter().find(|c| c.as_str() == word)
    }
}

impl fmt::Display for EndCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_causes_round_trip_through_text_and_json() {
        for cause in EndCause::ALL {
            assert_eq!(EndCause::from_word(cause.as_str()), Some(cause));
            let json = serde_json::to_string(&cause).unwrap();
            assert_eq!(json, format!("\"{cause}\""));
            assert_eq!(serde_json::from_str::<EndCause>(&json).unwrap(), cause);
        }
        assert_eq!(EndCause::from_word("the agent stopped reporting"), None);
    }

    #[test]
    fn words_round_trip_through_text_and_json() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<RunState>(&json).unwrap(), state);
        }
        for state in SweepState::ALL {
            assert_eq!(state.as_str().parse::<SweepState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(serde_json::from_str::<SweepState>(&json).unwrap(), state);
        }
    }

    #[test]
    fn the_listed_choices_are_every_state() {
        let err = "x".parse::<RunState>().unwrap_err();
        let words: Vec<_> = RunState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(err.expected, words.join(", "));
        let err = "x".parse::<SweepState>().unwrap_err();
        let words: Vec<_> = SweepState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(err.expected, words.join(", "));
    }

    #[test]
    fn unknown_words_name_the_choices() {
        let err = "runing".parse::<RunState>().unwrap_err();
        assert_eq!(err.word, "runing");
        assert!(err.to_string().contains("queued, running"), "{err}");
        assert!("Running".parse::<SweepState>().is_err());
    }

    #[test]
    fn only_queued_and_running_are_in_flight() {
        let in_flight: Vec<_> = RunState::ALL
            .into_iter()
            .filter(|s| s.in_flight())
            .collect();
        assert_eq!(in_flight, [RunState::Queued, RunState::Running]);
        assert_eq!(RunState::StoppedEarly.as_str(), "stopped_early");
        assert!(RunState::StoppedEarly.is_terminal());
        assert!(SweepState::Cancelled.is_over() && !SweepState::Paused.is_over());
        let terminal: Vec<_> = RunState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, RunState::TERMINAL);
        let results: Vec<_> = RunState::ALL
            .into_iter()
            .filter(|s| s.is_result())
            .collect();
        assert_eq!(results, [RunState::Finished, RunState::StoppedEarly]);
    }
}
