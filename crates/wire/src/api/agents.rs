//! Agents: registering, and claiming runs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
}

/// The `410` answer to a claim: the sweep is over and hands out no more runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SweepOver {
    /// `sweep ID is STATE`.
    pub error: String,
    /// The sweep's state.
    pub state: SweepState,
}
