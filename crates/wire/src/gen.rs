//! Generated clients: the JSON Schemas of every wire type (for the OpenAPI document), the
//! dashboard's TypeScript types and the Python client's state lists.
//!
//! The schemas come from `schemars` (JSON Schema 2020-12, the dialect of OpenAPI 3.1),
//! describing what is sent: optional request fields may be left out, and answer fields are
//! always present, `null` when they have no value. [`typescript`] turns those schemas into
//! TypeScript declarations with a small translator (objects, arrays, maps, string enums,
//! nullable values, references), so the dashboard's types can only say what the schemas say.
//! The committed outputs (`docs/openapi.json`, `web/src/wire.ts`,
//! `python/hyperdial/_states.py`) are compared with fresh ones by the server's
//! `generated` test, which rewrites them when `UPDATE_WIRE=1` is set.

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{Map, Value};

use crate::api::*;
use crate::{RunState, SweepState};

/// Where the schemas live in the OpenAPI document (`$ref`s point there).
pub const SCHEMAS_PATH: &str = "#/components/schemas/";

macro_rules! wire_types {
    ($gen:ident; $($ty:ty),* $(,)?) => {
        $( $gen.subschema_for::<$ty>(); )*
    };
}

/// Every wire type's schema by name, as they belong under `components/schemas` of an OpenAPI
/// 3.1 document (references between them are `#/components/schemas/NAME`), sorted by name.
pub fn schemas() -> Map<String, Value> {
    let settings = SchemaSettings::draft2020_12().for_serialize().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut gen = SchemaGenerator::new(settings);
    wire_types!(gen;
        RunState, SweepState, Goal, Empty, ErrorCode, ErrorBody,
        CreateSweep, CreatedSweep, Sweep, SweepList, MetricRef, BestRef, RunCounts,
        Diagnostic, Severity, Location, RetryRequest, RetryAnswer, Retried, Skipped,
        NotesRequest, Notes, Export, ExportRow,
        RegisterAgent, AgentRegistered, ClaimRequest, Tell, SweepOver,
        CreateRun, GitInfo, Started, MetricPoint, MetricsRequest, MetricsAnswer,
        HeartbeatAnswer, OutputStream, OutputRequest, SummaryUpdate, ConfigUpdate, RunName,
        FinishRequest, DeliveryRequest, RunGit, DeliveryRecord, HistoryPoint, Run, RunAnswer,
        RunsPage, AxisKind, Axis, PointColumns, SweepPoints, Series, RunHistory,
        HistoryColumns, PackedHistory,
        ParamImportance, Evidence, Importance, EndReason, BudgetStatus,
        Hello, Resync, RunBrief, EventPoint, MetricsEvent,
        QueueRun, QueueRunsRequest, QueuedRuns, NoiseConfiguration, NoiseComparison, NoiseReport,
        EstimateAnswer,
        ParetoFront, ObjectiveSpec, FrontRun,
    );
    let mut defs: Vec<(String, Value)> = gen.take_definitions(true).into_iter().collect();
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    defs.into_iter().collect()
}

/// The command that rewrites the committed generated files.
pub const REFRESH_COMMAND: &str = "UPDATE_WIRE=1 cargo test -p hyperdial-server --test generated";

/// The dashboard's `web/src/wire.ts`: one TypeScript declaration per schema of [`schemas`]
/// (an `interface` for objects, a `type` otherwise) with its documentation, free-form JSON as
/// `JsonValue`, and the state words as constant lists.
pub fn typescript(schemas: &Map<String, Value>) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "// The hyperdial API's types, generated from the Rust definitions (crates/wire).\n\
         // Do not edit: refresh with `{REFRESH_COMMAND}`.\n\n\
         /** Any JSON value (configs, parameters, summaries). */\n\
         export type JsonValue = string | number | boolean | null | JsonValue[] | {{ [key: string]: JsonValue }};\n"
    ));
    for (name, schema) in schemas {
        out.push('\n');
        doc_comment(&mut out, "", schema);
        match schema.get("properties").and_then(Value::as_object) {
            Some(props) if schema.get("type") == Some(&Value::from("object")) => {
                out.push_str(&format!("export interface {name} "));
                object_body(&mut out, "", schema, props);
                out.push('\n');
            }
            _ => out.push_str(&format!("export type {name} = {};\n", ts_type(schema, ""))),
        }
    }
    let words = |all: &mut dyn Iterator<Item = &'static str>| {
        all.map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "\n/** Every run state, in lifecycle order. */\nexport const RUN_STATES: readonly RunState[] = [{}];\n",
        words(&mut RunState::ALL.iter().map(|s| s.as_str()))
    ));
    out.push_str(&format!(
        "\n/** The states a run can end in. */\nexport const TERMINAL_RUN_STATES: readonly RunState[] = [{}];\n",
        words(&mut RunState::TERMINAL.iter().map(|s| s.as_str()))
    ));
    out.push_str(&format!(
        "\n/** Every sweep state, in lifecycle order. */\nexport const SWEEP_STATES: readonly SweepState[] = [{}];\n",
        words(&mut SweepState::ALL.iter().map(|s| s.as_str()))
    ));
    out
}

fn doc_comment(out: &mut String, indent: &str, schema: &Value) {
    let Some(text) = schema.get("description").and_then(Value::as_str) else {
        return;
    };
    let text = text.replace("*/", "*\\/");
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 {
        out.push_str(&format!("{indent}/** {} */\n", lines[0]));
        return;
    }
    out.push_str(&format!("{indent}/**\n"));
    for line in lines {
        if line.is_empty() {
            out.push_str(&format!("{indent} *\n"));
        } else {
            out.push_str(&format!("{indent} * {line}\n"));
        }
    }
    out.push_str(&format!("{indent} */\n"));
}

fn object_body(out: &mut String, indent: &str, schema: &Value, props: &Map<String, Value>) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let inner = format!("{indent}  ");
    out.push_str("{\n");
    for (field, sub) in props {
        doc_comment(out, &inner, sub);
        let optional = if required.contains(&field.as_str()) {
            ""
        } else {
            "?"
        };
        out.push_str(&format!(
            "{inner}{field}{optional}: {};\n",
            ts_type(sub, &inner)
        ));
    }
    out.push_str(&format!("{indent}}}"));
}

/// The TypeScript type a schema describes.
fn ts_type(schema: &Value, indent: &str) -> String {
    let Some(obj) = schema.as_object() else {
        // `true`: any JSON value.
        return "JsonValue".into();
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        return reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
    }
    if let Some(value) = obj.get("const") {
        return value.to_string();
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        return union(values.iter().map(Value::to_string).collect());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = obj.get(key).and_then(Value::as_array) {
            return union(options.iter().map(|o| ts_type(o, indent)).collect());
        }
    }
    let types: Vec<&str> = match obj.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return "JsonValue".into(),
    };
    union(
        types
            .into_iter()
            .map(|t| match t {
                "string" => "string".to_string(),
                "integer" | "number" => "number".to_string(),
                "boolean" => "boolean".to_string(),
                "null" => "null".to_string(),
                "array" => {
                    let item = obj
                        .get("items")
                        .map_or("JsonValue".into(), |i| ts_type(i, indent));
                    if item.contains(" | ") {
                        format!("({item})[]")
                    } else {
                        format!("{item}[]")
                    }
                }
                _ => match obj.get("properties").and_then(Value::as_object) {
                    Some(props) => {
                        let mut body = String::new();
                        object_body(&mut body, indent, schema, props);
                        body
                    }
                    None => {
                        let value = match obj.get("additionalProperties") {
                            Some(Value::Object(_)) => ts_type(&obj["additionalProperties"], indent),
                            _ => "JsonValue".into(),
                        };
                        format!("Record<string, {value}>")
                    }
                },
            })
            .collect(),
    )
}

fn union(mut parts: Vec<String>) -> String {
    parts.dedup();
    parts.join(" | ")
}

/// The Python client's `hyperdial/_states.py`: the state words as constants and tuples.
pub fn python_states() -> String {
    let mut out = format!(
        "\"\"\"Run and sweep states of the hyperdial API, generated from the Rust definitions\n\
         (crates/wire). Do not edit: refresh with `{REFRESH_COMMAND}`.\"\"\"\n"
    );
    let tuple = |words: Vec<&str>| {
        let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        match quoted.len() {
            1 => format!("({},)", quoted[0]),
            _ => format!("({})", quoted.join(", ")),
        }
    };
    out.push_str("\n\nclass RunState:\n    \"\"\"The states of a run.\"\"\"\n\n");
    for s in RunState::ALL {
        out.push_str(&format!(
            "    {} = \"{}\"\n",
            s.as_str().to_uppercase(),
            s.as_str()
        ));
    }
    out.push_str("\n\nclass SweepState:\n    \"\"\"The states of a sweep.\"\"\"\n\n");
    for s in SweepState::ALL {
        out.push_str(&format!(
            "    {} = \"{}\"\n",
            s.as_str().to_uppercase(),
            s.as_str()
        ));
    }
    out.push_str(&format!(
        "\n\n#: Every run state, in lifecycle order.\nRUN_STATES = {}\n",
        tuple(RunState::ALL.iter().map(|s| s.as_str()).collect())
    ));
    out.push_str(&format!(
        "#: The states a run can end in.\nTERMINAL_RUN_STATES = {}\n",
        tuple(RunState::TERMINAL.iter().map(|s| s.as_str()).collect())
    ));
    out.push_str(&format!(
        "#: The states of a run that is waiting or in progress.\nIN_FLIGHT_RUN_STATES = {}\n",
        tuple(
            RunState::ALL
                .iter()
                .filter(|s| s.in_flight())
                .map(|s| s.as_str())
                .collect()
        )
    ));
    out.push_str(&format!(
        "#: Every sweep state, in lifecycle order.\nSWEEP_STATES = {}\n",
        tuple(SweepState::ALL.iter().map(|s| s.as_str()).collect())
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_reference_only_what_they_define() {
        let all = schemas();
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                        out.push(r.to_string());
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        all.values().for_each(|s| refs(s, &mut found));
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix(SCHEMAS_PATH).expect(&r);
            assert!(all.contains_key(name), "{r} is not defined");
        }
    }

    #[test]
    fn answers_require_their_nullable_fields_and_requests_do_not() {
        let all = schemas();
        let run_required = all["Run"]["required"].as_array().unwrap();
        assert!(
            run_required.contains(&json!("exit_code")),
            "null, not absent"
        );
        assert!(!run_required.contains(&json!("history")), "only when asked");
        let create = all["CreateRun"].get("required");
        assert!(create.is_none_or(|r| r.as_array().unwrap().is_empty()));
    }

    #[test]
    fn typescript_translates_each_form() {
        let t = |v: Value| ts_type(&v, "");
        assert_eq!(t(json!({"$ref": "#/components/schemas/Run"})), "Run");
        assert_eq!(t(json!({"type": ["string", "null"]})), "string | null");
        assert_eq!(
            t(json!({"type": "array", "items": {"type": ["integer", "null"]}})),
            "(number | null)[]"
        );
        assert_eq!(
            t(json!({"oneOf": [{"const": "a"}, {"const": "b"}]})),
            "\"a\" | \"b\""
        );
        assert_eq!(
            t(json!({"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]})),
            "X | null"
        );
        assert_eq!(
            t(json!({"type": "object", "additionalProperties": true})),
            "Record<string, JsonValue>"
        );
        assert_eq!(t(json!(true)), "JsonValue");
        assert_eq!(
            t(
                json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}, "required": ["a"]})
            ),
            "{\n  a: string;\n  b?: boolean;\n}"
        );
    }

    #[test]
    fn typescript_declares_every_schema_and_the_states() {
        let all = schemas();
        let ts = typescript(&all);
        for name in all.keys() {
            assert!(
                ts.contains(&format!("export interface {name} "))
                    || ts.contains(&format!("export type {name} = ")),
                "{name}"
            );
        }
        assert!(ts.contains("export type RunState = \"queued\" | \"running\""));
        assert!(ts.contains("\"stopped_early\""));
        assert!(
            !ts.contains(": any") && !ts.contains("<any>"),
            "no `any` in generated types"
        );
    }

    #[test]
    fn python_states_list_every_word() {
        let py = python_states();
        assert!(py.contains("    STOPPED_EARLY = \"stopped_early\"\n"));
        assert!(py.contains("IN_FLIGHT_RUN_STATES = (\"queued\", \"running\")\n"));
        assert!(
            py.contains("SWEEP_STATES = (\"running\", \"paused\", \"finished\", \"cancelled\")\n")
        );
    }
}
