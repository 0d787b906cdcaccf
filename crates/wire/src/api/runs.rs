//! Runs: creating them, their life (started, heartbeat, metrics, output, summary, config,
//! finish, delivery) and reading them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::is_zero;
use crate::RunState;

/// The git state of a run's working directory, as sent with a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GitInfo {
    /// The commit checked out (40 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Whether tracked files had uncommitted changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<bool>,
}

/// `POST /api/v1/runs`: a run outside any sweep (`hyperdial run`, the Python client). The
/// run starts `running`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateRun {
    /// Project; `default` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The run's config, nested (a JSON object; at most 10,000 values once flattened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// The command line (at most 10,000 items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Host the run executes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Git state of the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    /// The run's id, chosen so that a later process can resume the run (W&B's
    /// `wandb.init(id=...)`): 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `_` and `-`. Left
    /// out: the server picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What to do when a run with `id` exists; needs `id`. Left out: as
    /// [`Resume::Never`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    /// When the run started, in ms since the Unix epoch, for a run recorded offline and
    /// uploaded later (`hyperdial sync`): a new run is dated from it when it is earlier than
    /// now (a time in the future is ignored). Left out: now. A resumed run keeps its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
}

/// How `POST /api/v1/runs` treats an `id` that is taken (W&B's `resume` argument of
/// `wandb.init`). A resumed run is reopened (`running`, its end cleared) with its history,
/// summary and config kept, answered `200` with the header `x-hyperdial-resumed: true`; a
/// created one is answered `201`. Only a run outside any sweep can be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resume {
    /// A taken id is refused (`409`).
    Never,
    /// A taken id resumes that run; a free one creates it.
    Allow,
    /// A taken id resumes that run; a free one is refused (`404`).
    Must,
}

/// `POST /api/v1/runs/{id}/started`: the argv a run's process was started with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Started {
    /// The command line (at most 10,000 items).
    pub argv: Vec<String>,
    /// The process id (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Git state of the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
}

// `V` is how the values are held: a JSON map (the default, what clients build and send), or
// `PointValues`, the server's reading of the same JSON straight into a checked list. (Not in
// the doc comment, which is the schema's description.)
/// One step's metric values, as posted to `POST /api/v1/runs/{id}/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "MetricPoint")]
pub struct MetricPoint<V = Map<String, Value>> {
    /// The step (0 to 2^53 − 1); left out: the run's next step, counted by the server. Points sent with
    /// a step are idempotent (one value per run, metric and step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    /// When the values were reported, ms since the epoch; left out: when they arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<i64>,
    /// Metric name (1 to 256 bytes) → number, `null` for a non-finite value; `true`/`false`
    /// are read as 1/0. At most 10,000 values.
    pub values: V,
}

// `V` as in `MetricPoint`.
/// `POST /api/v1/runs/{id}/metrics`: a batch of points (at most 100,000).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "MetricsRequest")]
pub struct MetricsRequest<V = Map<String, Value>> {
    /// The points, in order.
    pub points: Vec<MetricPoint<V>>,
}

/// Most values in one metric point.
pub const MAX_POINT_VALUES: usize = 10_000;
/// Longest metric name, in bytes.
pub const MAX_METRIC_NAME_BYTES: usize = 256;

/// A metric point's values as the server reads them: name → value in the order sent, each
/// checked while it is read (no JSON value is built per point). The JSON is a
/// [`MetricPoint`]'s `values`: at most [`MAX_POINT_VALUES`] entries, names of 1 to
/// [`MAX_METRIC_NAME_BYTES`] bytes without NUL, each value a number (`None` when it is not
/// finite), `null` (`None`), or `true`/`false` (1/0). Anything else is an error that says
/// what was found (the deserializer's path names the point and the metric).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointValues(pub Vec<(String, Option<f64>)>);

impl<'de> Deserialize<'de> for PointValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;

        /// One value: a number, `null` or a boolean.
        struct OneValue;
        impl<'de> serde::de::DeserializeSeed<'de> for OneValue {
            type Value = Option<f64>;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Option<f64>, D::Error> {
                deserializer.deserialize_any(self)
            }
        }
        impl serde::de::Visitor<'_> for OneValue {
            type Value = Option<f64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or null")
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<Option<f64>, E> {
                Ok(Some(v).filter(|v| v.is_finite()))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Option<f64>, E> {
                Ok(Some(v as f64))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Option<f64>, E> {
                Ok(Some(v as f64))
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<Option<f64>, E> {
                Ok(Some(if v { 1.0 } else { 0.0 }))
            }
            fn visit_unit<E: Error>(self) -> Result<Option<f64>, E> {
                Ok(None)
            }
            fn visit_none<E: Error>(self) -> Result<Option<f64>, E> {
                Ok(None)
            }
        }

        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = PointValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of metric values (numbers or null) by name")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<PointValues, A::Error> {
                let mut out: Vec<(String, Option<f64>)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(4).min(64));
                // A name sent twice in one object keeps its first place and its last value,
                // as a JSON map would; past a few names they are found through an index.
                let mut index: Option<std::collections::HashMap<String, usize>> = None;
                while let Some(name) = access.next_key::<String>()? {
                    if name.is_empty() || name.len() > MAX_METRIC_NAME_BYTES || name.contains('\0')
                    {
                        return Err(A::Error::custom(format!(
                            "metric names must be 1 to {MAX_METRIC_NAME_BYTES} bytes, without NUL"
                        )));
                    }
                    let value = access.next_value_seed(OneValue)?;
                    let seen = match &index {
                        Some(index) => index.get(&name).copied(),
                        None => out.iter().position(|(n, _)| *n == name),
                    };
                    if let Some(i) = seen {
                        out[i].1 = value;
                        continue;
                    }
                    if out.len() == MAX_POINT_VALUES {
                        return Err(A::Error::custom(format!(
                            "more than {MAX_POINT_VALUES} values; at most {MAX_POINT_VALUES} are accepted in one point"
                        )));
                    }
                    if let Some(index) = &mut index {
                        index.insert(name.clone(), out.len());
                    } else if out.len() == 16 {
                        let mut built: std::collections::HashMap<String, usize> = out
                            .iter()
                            .enumerate()
                            .map(|(i, (n, _))| (n.clone(), i))
                            .collect();
                        built.insert(name.clone(), out.len());
                        index = Some(built);
                    }
                    out.push((name, value));
                }
                Ok(PointValues(out))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// The answer to `POST /api/v1/runs/{id}/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsAnswer {
    /// Values stored.
    pub accepted: u64,
    /// The run must stop (early termination, or it was cancelled).
    pub stop: bool,
    /// Why it must stop.
    pub reason: Option<String>,
}

/// The answer to `POST /api/v1/runs/{id}/heartbeat`. Read leniently (a missing field is
/// "go on"), since any answer to a heartbeat means the run is alive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatAnswer {
    /// The run must stop.
    #[serde(default)]
    pub stop: bool,
    /// Why: `early_terminated`, `cancelled`, ...
    #[serde(default)]
    pub reason: Option<String>,
}

/// Which output stream of a process a text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl OutputStream {
    /// The name on the wire: `stdout` or `stderr`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

impl fmt::Display for OutputStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /api/v1/runs/{id}/output`: captured output to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutputRequest {
    /// The stream it came from.
    pub stream: OutputStream,
    /// The text.
    pub text: String,
}

/// `PUT /api/v1/runs/{id}/summary`: summary values to set, by name (1 to 1024 bytes; at most
/// 10,000); they win over the last logged values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SummaryUpdate(pub Map<String, Value>);

/// `PUT /api/v1/runs/{id}/config`: the script's own config (its defaults), nested, merged into
/// the run's; a sweep run's values stay on top.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ConfigUpdate(pub Map<String, Value>);

/// `PUT /api/v1/runs/{id}/name`: the name the script gave its run (`hyperdial.init(name=…)`
/// under an agent or `hyperdial run`, which created the run before the script named it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunName {
    /// The run's name; empty clears it.
    pub name: String,
}

/// `POST /api/v1/runs/{id}/finish` (the body may be empty). Without `state`, exit code 0
/// means `finished` and anything else `failed`; the server decides (a NaN sweep metric fails
/// the run, a stop it asked for wins unless the process completed first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FinishRequest {
    /// The process's exit code, a 32-bit signed integer as every operating system's is
    /// (Windows' unsigned codes as their two's-complement `i32`, as Rust's
    /// `ExitStatus::code` gives them); left out when it was killed by a signal or never
    /// started. A code outside that range is a 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The state to end in (a terminal state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// What went wrong, shown next to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Values told with the end (what an ask/tell client reports), as one metric point at
    /// the run's next step, read as [`MetricPoint::values`] are: stored in the same
    /// transaction as the end, so one request does what a metric batch and a finish did.
    /// A told sweep metric that is `null` (NaN) fails a run that would have finished.
    /// Empty or left out: nothing is logged.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub values: Map<String, Value>,
    /// When the run ended (ms since the Unix epoch, the sender's clock), for an end delivered
    /// late (retried through an outage, or kept in a file while the server was away): the
    /// run's end time becomes this when it is more than 2 s before the server's own end time
    /// (so a clock a second or two off never moves an end delivered at once) and not before the
    /// run started. Left out: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
}

/// `POST /api/v1/runs/{id}/delivery`: metric points a client could not deliver, or
/// recovered later; the counts add up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryRequest {
    /// Points that could not be delivered (kept in `files`, or dropped).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missing: u64,
    /// Points uploaded later (`hyperdial sync`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recovered: u64,
    /// Local files holding the missing points, as `host:path` (at most 16, each 1 to 4096
    /// characters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// A run's git state in answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunGit {
    /// The commit checked out.
    pub commit: Option<String>,
    /// Whether tracked files had uncommitted changes.
    pub dirty: Option<bool>,
}

/// What a run's clients reported they could not deliver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryRecord {
    /// Points still missing (reported missing, not recovered).
    pub missing: u64,
    /// Points reported missing, in total.
    pub reported_missing: u64,
    /// Points recovered since.
    pub recovered: u64,
    /// Local files holding the missing points, as `host:path`.
    pub files: Vec<String>,
}

/// One step of a run's metric history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryPoint {
    /// Step.
    pub step: i64,
    /// Latest wall time of the step's values, ms since the epoch.
    pub time_ms: i64,
    /// Values by name (`null` for NaN).
    #[schemars(with = "Map<String, Value>")]
    pub values: MetricValues,
}

/// The values of one step by metric name, in name order: a JSON object of numbers (`null`
/// for NaN and infinities), written straight from the list. Names are shared (`Arc`) so a
/// long history holds each name once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricValues(pub Vec<(std::sync::Arc<str>, Option<f64>)>);

impl MetricValues {
    /// The value named `name`: `None` if the step has none, `Some(None)` for NaN.
    pub fn get(&self, name: &str) -> Option<Option<f64>> {
        self.0.iter().find(|(n, _)| &**n == name).map(|(_, v)| *v)
    }

    /// How many values the step has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the step has no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for MetricValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(&**name, &value.filter(|v| v.is_finite()))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for MetricValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = MetricValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of metric values (numbers or null) by name")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<MetricValues, A::Error> {
                let mut out = Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
                while let Some((name, value)) = access.next_entry::<String, Option<f64>>()? {
                    out.push((name.into(), value));
                }
                Ok(MetricValues(out))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// A run, as `GET /api/v1/runs/{id}` and most run answers give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Run {
    /// Id.
    pub id: String,
    /// Its sweep; `null` for a run outside any sweep.
    pub sweep: Option<String>,
    /// Project name.
    pub project: String,
    /// Its number in the sweep, from 1.
    pub number: Option<i64>,
    /// Display name.
    pub name: Option<String>,
    /// Where the run is in its life.
    pub state: RunState,
    /// Config, nested.
    pub config: Value,
    /// Parameters by dotted name.
    pub params: Map<String, Value>,
    /// How the configuration was chosen (strategy, seed, grid index, diagnostics).
    pub suggestion: Value,
    /// Agent running it.
    pub agent: Option<String>,
    /// Host it runs on.
    pub host: Option<String>,
    /// The command line.
    pub argv: Option<Vec<String>>,
    /// Exit code of its process.
    pub exit_code: Option<i64>,
    /// Why it failed, crashed or was stopped, in words.
    pub error: Option<String>,
    /// Why the server ended or changed it, when it did (its agent or client went silent, a
    /// late end, a retry that gave way); `null` for a run its reporter ended. Read this, not
    /// `error`, to tell such runs apart.
    #[serde(default)]
    pub end_cause: Option<crate::EndCause>,
    /// The sweep metric (the best value of its history and summary).
    pub metric: Option<f64>,
    /// Last value of every metric, overlaid by summary values set explicitly.
    pub summary: Map<String, Value>,
    /// Steps recorded (the next automatic step).
    pub steps: i64,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Started, ms since the epoch.
    pub started_ms: Option<i64>,
    /// Last sign of life, ms since the epoch.
    pub heartbeat_ms: Option<i64>,
    /// Ended, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// Git state of its working directory.
    pub git: RunGit,
    /// Asked to stop.
    pub stop_requested: bool,
    /// Why: `early_terminated`, `cancelled`, ...
    pub stop_reason: Option<String>,
    /// Details of an early-termination stop (rule, rung, value, threshold); `null` otherwise.
    pub stop_info: Value,
    /// The run it retries.
    pub retry_of: Option<String>,
    /// Attempt number of its configuration: 1 for a first run, 2 for its first retry, ...
    pub attempt: i64,
    /// Metric points reported undelivered; `null` when none were.
    pub delivery: Option<DeliveryRecord>,
    /// The run whose configuration this one repeats: with another seed (`hyperdial repeat`),
    /// or as a retry that gave way when that run delivered its end late (its error says so);
    /// `null` for other runs.
    #[serde(default)]
    pub repeat_of: Option<String>,
    /// The seed a repeat was given (also in `HYPERDIAL_SEED` for its process); `null` for
    /// other runs.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Its metric history, step by step: only in `GET /api/v1/runs/{id}` (absent with
    /// `?history=false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryPoint>>,
}

/// An answer holding one run: a claim (`200`), `GET /api/v1/sweeps/{id}/best`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunAnswer {
    /// The run.
    pub run: Run,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run() -> Run {
        Run {
            id: "r1".into(),
            sweep: None,
            project: "default".into(),
            number: None,
            name: None,
            state: crate::RunState::Running,
            config: json!({}),
            params: Map::new(),
            suggestion: Value::Null,
            agent: None,
            host: None,
            argv: None,
            exit_code: None,
            error: None,
            end_cause: None,
            metric: None,
            summary: Map::new(),
            steps: 0,
            created_ms: 1,
            started_ms: None,
            heartbeat_ms: None,
            finished_ms: None,
            git: RunGit::default(),
            stop_requested: false,
            stop_reason: None,
            stop_info: Value::Null,
            retry_of: None,
            attempt: 1,
            delivery: None,
            repeat_of: None,
            seed: None,
            history: None,
        }
    }

    #[test]
    fn answers_say_null_and_leave_out_only_the_history() {
        let v = serde_json::to_value(run()).unwrap();
        assert_eq!(v["exit_code"], Value::Null);
        assert!(v.as_object().unwrap().contains_key("exit_code"));
        assert_eq!(v["git"], json!({"commit": null, "dirty": null}));
        assert!(!v.as_object().unwrap().contains_key("history"));
        assert_eq!(v["state"], "running");
        let back: Run = serde_json::from_value(v).unwrap();
        assert_eq!(back, run());
    }

    #[test]
    fn requests_leave_out_what_is_unset() {
        assert_eq!(
            serde_json::to_value(FinishRequest::default()).unwrap(),
            json!({})
        );
        assert_eq!(
            serde_json::to_value(DeliveryRequest::default()).unwrap(),
            json!({})
        );
        let finish = FinishRequest {
            state: Some(crate::RunState::StoppedEarly),
            ..FinishRequest::default()
        };
        assert_eq!(
            serde_json::to_value(finish).unwrap(),
            json!({"state": "stopped_early"})
        );
        // What a server reads: absent and null fields are the same.
        let read: CreateRun = serde_json::from_value(json!({"name": null, "argv": ["a"]})).unwrap();
        assert_eq!(read.argv.as_deref(), Some(&["a".to_string()][..]));
        assert_eq!(read.name, None);
        assert!(serde_json::from_value::<FinishRequest>(json!({"state": "done"})).is_err());
    }

    fn typed(body: &str) -> Result<MetricsRequest<PointValues>, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }

    #[test]
    fn point_values_read_numbers_null_and_booleans_in_order() {
        let read = typed(
            r#"{"points": [{"step": 3, "values": {"b": 1, "a": 0.25, "n": null, "t": true, "f": false, "big": 18446744073709551615, "neg": -2}}, {"values": {}}]}"#,
        )
        .unwrap();
        assert_eq!(read.points[0].step, Some(3));
        let names: Vec<&str> = read.points[0]
            .values
            .0
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["b", "a", "n", "t", "f", "big", "neg"]);
        let values: Vec<Option<f64>> = read.points[0].values.0.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            values,
            [
                Some(1.0),
                Some(0.25),
                None,
                Some(1.0),
                Some(0.0),
                Some(u64::MAX as f64),
                Some(-2.0)
            ]
        );
        assert!(read.points[1].values.0.is_empty());
        // The same body read as the clients' map type holds the same values.
        let untyped: MetricsRequest =
            serde_json::from_str(r#"{"points": [{"values": {"b": 1, "a": 0.25}}]}"#).unwrap();
        assert_eq!(untyped.points[0].values["a"], json!(0.25));
    }

    #[test]
    fn point_values_keep_the_first_place_and_last_value_of_a_repeated_name() {
        let read = typed(r#"{"points": [{"values": {"a": 1, "b": 2, "a": 3}}]}"#).unwrap();
        assert_eq!(
            read.points[0].values.0,
            [("a".to_string(), Some(3.0)), ("b".to_string(), Some(2.0))]
        );
        // Past the point where names are indexed, too.
        let mut body: Vec<String> = (0..40).map(|i| format!(r#""m{i}": {i}"#)).collect();
        body.push(r#""m5": -1"#.into());
        body.push(r#""m39": null"#.into());
        let read = typed(&format!(
            r#"{{"points": [{{"values": {{{}}}}}]}}"#,
            body.join(",")
        ))
        .unwrap();
        let values = &read.points[0].values.0;
        assert_eq!(values.len(), 40);
        assert_eq!(values[5], ("m5".to_string(), Some(-1.0)));
        assert_eq!(values[39], ("m39".to_string(), None));
    }

    #[test]
    fn point_values_refuse_what_is_not_a_metric_value() {
        for (body, says) in [
            (
                r#"{"points": [{"values": {"x": "abc"}}]}"#,
                "expected a number or null",
            ),
            (
                r#"{"points": [{"values": {"x": [1]}}]}"#,
                "expected a number or null",
            ),
            (
                r#"{"points": [{"values": {"x": {"y": 1}}}]}"#,
                "expected a number or null",
            ),
            (
                r#"{"points": [{"values": {"": 1}}]}"#,
                "metric names must be 1 to 256 bytes",
            ),
            (
                r#"{"points": [{"values": {"a\u0000b": 1}}]}"#,
                "without NUL",
            ),
            (
                r#"{"points": [{"values": [1, 2]}]}"#,
                "an object of metric values",
            ),
            (r#"{"points": [{"values": {"x": 1e999}}]}"#, "out of range"),
        ] {
            let err = typed(body).unwrap_err();
            assert!(err.contains(says), "{body}: {err}");
        }
        let long = "n".repeat(MAX_METRIC_NAME_BYTES + 1);
        let err = typed(&format!(r#"{{"points": [{{"values": {{"{long}": 1}}}}]}}"#)).unwrap_err();
        assert!(err.contains("1 to 256 bytes"), "{err}");
        let fits = "n".repeat(MAX_METRIC_NAME_BYTES);
        assert!(typed(&format!(r#"{{"points": [{{"values": {{"{fits}": 1}}}}]}}"#)).is_ok());
        let wide = |n: usize| {
            let values: Vec<String> = (0..n).map(|i| format!(r#""m{i}": 1"#)).collect();
            format!(r#"{{"points": [{{"values": {{{}}}}}]}}"#, values.join(","))
        };
        assert!(typed(&wide(MAX_POINT_VALUES)).is_ok());
        let err = typed(&wide(MAX_POINT_VALUES + 1)).unwrap_err();
        assert!(err.contains("at most 10000"), "{err}");
    }
}
