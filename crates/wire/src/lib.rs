//! # hyperdial-wire
//!
//! One definition of every type that crosses a process boundary: the server's HTTP API
//! ([`api`]), the agents, the command line and (through generated files, [`gen`]) the Python
//! client and the dashboard all use these. A state is an enum here and a lowercase word on
//! the wire and in the database (`"running"`), so a typo is a compile error in Rust and a
//! parse error at the edge, never a silently unmatched string.

pub mod api;
mod chain;
pub mod gen;
mod state;
mod state_schema;
mod url;

pub use chain::error_chain;
pub use state::{EndCause, RunState, SweepState, UnknownState};
pub use url::redact_url;
