//! Sweeps built on other sweeps (hyperdial additions): `parent` and `prior_runs`.
//!
//! `parent: SWEEP` records the sweep this one was refined from (`hyperdial refine` writes it);
//! it is lineage only and changes nothing about the search. `prior_runs: [SWEEP, ...]` hands
//! the finished runs of those sweeps to `bayes` and `tpe` as observations they start from,
//! as long as each run's configuration lies inside this sweep's space; other methods ignore
//! it. The parser only checks the shape (non-empty ids, no repeats); whether the sweeps exist
//! and optimize the same metric is checked by the server when the sweep is created, against
//! the locations kept here.

use serde::{Serialize, Serializer};

use crate::diagnostic::Location;

/// A reference to another sweep by id, with where the file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRef {
    /// The sweep id as written.
    pub id: String,
    /// Where the id stands in the file.
    pub location: Location,
}

impl Serialize for SweepRef {
    /// Serialized as the bare id, so a config's JSON shows `"prior_runs": ["ab12…"]`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.id)
    }
}
