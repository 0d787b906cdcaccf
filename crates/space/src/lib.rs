//! # hyperdial-space
//!
//! The sweep configuration model of hyperdial: everything about *what* a sweep searches, and
//! nothing about how it runs.
//!
//! - [`parse`] reads a sweep file (YAML 1.2 or JSON, a superset of the W&B Sweeps format) and
//!   validates it, reporting every problem with its key path, line and column
//!   ([`diagnostic`]).
//! - [`model`] holds the validated [`SweepConfig`] and its [`Distribution`]s.
//! - [`distribution`] samples each distribution and maps it to and from the unit interval,
//!   the coordinates search strategies work in.
//! - [`budget`] decides when a sweep has spent its `budget` (wall time, run-hours,
//!   stagnation).
//! - [`lineage`] holds references to other sweeps (`parent`, `prior_runs`); [`refine`]
//!   writes a narrower sweep file around the best runs of a sweep.
//! - [`condition`] decides which parameters a configuration has (`when:`, conditional
//!   parameters) and counts the configurations of a conditional space.
//! - [`grid`] enumerates finite spaces in a documented order.
//! - [`command`] expands the command template (`${program} ${args}` and the other W&B macros)
//!   into an argv vector; nothing ever goes through a shell.
//!
//! ```
//! let text = "method: random\nparameters:\n  lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-1}\n";
//! let validated = hyperdial_space::parse_str(text, "sweep.yaml").unwrap();
//! assert_eq!(validated.config.parameters[0].name, "lr");
//! ```

pub mod budget;
pub mod command;
pub mod condition;
pub mod diagnostic;
pub mod distribution;
pub mod grid;
mod indent;
pub mod lineage;
pub mod model;
pub mod parse;
pub mod refine;
mod special;
mod unclosed;
pub mod yaml;

pub use diagnostic::{source_name, ConfigError, Diagnostic, Location, Severity, TEXT_SOURCE};
pub use model::{
    Asha, Condition, Distribution, EarlyTerminate, Goal, Hyperband, Impute, ImputeWhileRunning,
    Median, Method, Metric, Parameter, Quantum, Retry, RetryOn, SweepConfig, SweepRef, Validated,
};
pub use parse::{parse_file, parse_str};
