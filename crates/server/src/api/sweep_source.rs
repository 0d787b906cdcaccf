//! The sweep config of `POST /api/v1/sweeps`: text (`source`, a file's YAML or JSON, its
//! mistakes reported at `file:line:column`) or a JSON object (`config`, what a client holding
//! the config as data sends). An object's mistakes are reported by key path only
//! (`parameters.lr.min`), said to be in "the `config` object": the JSON text the server
//! writes from it to parse and keep is no file the caller wrote, so its lines mean nothing
//! to them.

use serde_json::{Map, Value};

use crate::controller::ControlError;
use crate::error::ApiError;

/// The config of `POST /sweeps` as text: `source` as given, or the `config` object written
/// as indented JSON (then `true`: messages name key paths only, see
/// [`object_config_error`]). Both, or neither, is a `400` saying what to send.
pub(super) fn text_of(
    source: String,
    config: Option<Map<String, Value>>,
) -> Result<(String, bool), ApiError> {
    match (config, source.is_empty()) {
        (Some(_), false) => Err(ApiError::bad_request(
            "give the sweep config as `source` (YAML or JSON text) or as `config` (a JSON \
             object), not both",
        )),
        (Some(object), true) => serde_json::to_string_pretty(&Value::Object(object))
            .map(|text| (text, true))
            .map_err(|e| ApiError::bad_request(format!("`config`: {e}"))),
        (None, false) => Ok((source, false)),
        (None, true) => Err(ApiError::bad_request(
            "the request holds no sweep config: give `source` (YAML or JSON text) or `config` \
             (a JSON object)",
        )),
    }
}

/// The label of a config given as a JSON object (`config`) in its messages.
const CONFIG_OBJECT: &str = "the `config` object";

/// A config error of a config given as a JSON object: the findings without source
/// positions (the JSON text the server wrote from the object is nobody's file), each named
/// by its key path.
pub(super) fn object_config_error(error: ControlError) -> ControlError {
    let ControlError::InvalidConfig { diagnostics, .. } = error else {
        return error;
    };
    // Errors first (what stops the sweep), then warnings, each kind in source order.
    let mut diagnostics: Vec<hyperdial_space::Diagnostic> = diagnostics
        .into_iter()
        .map(|d| hyperdial_space::Diagnostic {
            location: None,
            ..d
        })
        .collect();
    diagnostics.sort_by_key(|d| !d.is_error());
    let mut lines: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            let severity = if d.is_error() { "error" } else { "warning" };
            let at = if d.path.is_empty() {
                "(the root)".to_string()
            } else {
                d.path.clone()
            };
            let mut line = format!("{at}: {severity}: {}", d.message);
            if let Some(hint) = &d.hint {
                line.push_str("\n  hint: ");
                line.push_str(hint);
            }
            line
        })
        .collect();
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    lines.push(format!(
        "{errors} error{} in {CONFIG_OBJECT} (each named by its key path)",
        if errors == 1 { "" } else { "s" }
    ));
    ControlError::InvalidConfig {
        rendered: lines.join("\n"),
        diagnostics,
    }
}
