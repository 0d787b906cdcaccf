//! The JSON Schemas of the states: a string enum of the words of [`RunState::ALL`] and
//! [`SweepState::ALL`], so the schema (and the TypeScript and Python generated from it) lists
//! exactly the words `FromStr` accepts.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use crate::{RunState, SweepState};

impl JsonSchema for RunState {
    fn schema_name() -> Cow<'static, str> {
        "RunState".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let words: Vec<&str> = RunState::ALL.iter().map(|s| s.as_str()).collect();
        json_schema!({
            "type": "string",
            "enum": words,
            "description": "Where a run is in its life: `queued` (a retry waiting for an agent), \
                `running`, then one of the terminal states `finished` (exit 0), `failed` (exit \
                non-zero), `crashed` (the agent, its host or the process went away), \
                `stopped_early` (by the sweep's early-termination rule) or `cancelled`."
        })
    }
}

impl JsonSchema for SweepState {
    fn schema_name() -> Cow<'static, str> {
        "SweepState".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let words: Vec<&str> = SweepState::ALL.iter().map(|s| s.as_str()).collect();
        json_schema!({
            "type": "string",
            "enum": words,
            "description": "Where a sweep is in its life: `running` (handing out runs), `paused` \
                (runs in flight go on, no new ones), `finished` (its space, run cap or target \
                is done, or it was stopped) or `cancelled`. A finished sweep runs again to \
                work off retries it owes."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_list_every_word() {
        let mut gen = SchemaGenerator::default();
        let run = RunState::json_schema(&mut gen);
        let words = run.get("enum").and_then(|e| e.as_array()).unwrap();
        assert_eq!(words.len(), RunState::ALL.len());
        assert!(words.iter().any(|w| w == "stopped_early"));
        let sweep = SweepState::json_schema(&mut gen);
        assert_eq!(
            sweep.get("enum").and_then(|e| e.as_array()).unwrap().len(),
            SweepState::ALL.len()
        );
    }
}
