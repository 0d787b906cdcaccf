//! Agents: registering, and claiming runs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::FinishRequest;
use crate::SweepState;

/// `POST /api/v1/agents`: register an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RegisterAgent {
    /// The sweep it works for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
    /// Its host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Its process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// Its process key (`linux:BOOT_ID:PID_NS:PID:START_TIME`), so a server on the same
    /// machine can tell at once when the process is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// The answer to `POST /api/v1/agents` (`201`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentRegistered {
    /// The agent's id, to send with claims.
    pub id: String,
}

/// `POST /api/v1/sweeps/{id}/claim` (the body may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClaimRequest {
    /// The claiming agent's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Long poll: when nothing can start now, how long the server may hold the claim open,
    /// in milliseconds, and answer as soon as a run can start or the sweep is over, instead
    /// of answering `204` at once. At most 30000 (larger values are cut to it); absent or
    /// `0`: no wait. A `204` after such a wait carries the header `x-hyperdial-waited-ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// End a run of this sweep first, as `POST /api/v1/runs/{id}/finish` would (an ask/tell
    /// client telling its last trial and asking for the next in one request). The finish is
    /// applied before the claim; when it is refused (unknown run, a run of another sweep, a
    /// crashed run, a bad body) the request answers that error and claims nothing. Any
    /// claim answer (`200`, `204`, `410`) means the finish was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tell: Option<Tell>,
    /// Idempotency key: a name the client chose for this claim, fresh for each claim and the
    /// same on every retry of it (1 to 64 characters, [`MAX_CLAIM_KEY_CHARS`], of `A-Z a-z
    /// 0-9 - _ . :`; anything else is a `400`). The run a claim hands out is stored with its key, in
    /// the same commit; a request whose key already claimed a run of this sweep answers that
    /// run again (`200`, the same id, parameters and number) while it has not ended (its
    /// `tell` was stored before or with that claim, and is not stored twice); once that run
    /// has ended it answers `204` at once, without waiting (claim again with a new key). So a
    /// claim whose answer was lost (a server killed after the commit, a dropped connection)
    /// and is sent again gets its run, not a second one. Without a key every claim is new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_key: Option<String>,
}

/// Longest [`ClaimRequest::claim_key`], in characters.
pub const MAX_CLAIM_KEY_CHARS: usize = 64;

/// A run ended with a claim ([`ClaimRequest::tell`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tell {
    /// The run's id (a run of the claimed sweep).
    pub run: String,
    /// How it ends, as the finish route takes it.
    #[serde(default)]
    pub finish: FinishRequest,
}

/// Longest wait a server grants a claim ([`ClaimRequest::wait_ms`]), in milliseconds (30 s).
pub const MAX_CLAIM_WAIT_MS: u64 = 30_000;

/// The header of a `204` claim answer that the server held open for the whole wait it
/// granted (its value: the milliseconds waited). A client that sees it asks again at once; a
/// `204` without it (an older server that ignores `wait_ms`, or one shutting down) means the
/// client waits its own poll interval before asking again.
pub const WAITED_HEADER: &str = "x-hyperdial-waited-ms";

/// The `410` answer to a claim: the sweep is over and hands out no more runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SweepOver {
    /// `sweep ID is STATE`.
    pub error: String,
    /// The sweep's state.
    pub state: SweepState,
}
