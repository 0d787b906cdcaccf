//! Dashboard reads: a page of runs, a sweep's points column by column, a run's downsampled
//! history and its whole history as columns, parameter importance.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Goal, MetricRef, Run};
use crate::RunState;

/// `GET /api/v1/runs`: a sorted, filtered page of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunsPage {
    /// The runs of the page.
    pub runs: Vec<Run>,
    /// How many runs match, in all pages.
    pub total: i64,
    /// Index of the page's first run among the matches.
    pub offset: i64,
    /// Most runs in a page.
    pub limit: i64,
}

/// How a parameter is drawn on an axis (and enters the importance model): a numeric `values`
/// list is `log` when geometric and `linear` otherwise, as the search encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AxisKind {
    /// Values on a linear scale.
    Linear,
    /// Values on a log scale.
    Log,
    /// Unordered choices.
    Category,
}

/// One varying parameter of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Axis {
    /// Dotted parameter name.
    pub name: String,
    /// Its scale.
    pub kind: AxisKind,
    /// The listed values of a `values` parameter (on a `category` axis; a list of three or
    /// more distinct numbers is drawn on a `linear` or `log` axis, as the search orders it);
    /// `null` otherwise.
    pub values: Option<Vec<Value>>,
    /// Smallest value of a bounded numeric parameter.
    pub min: Option<f64>,
    /// Largest value of a bounded numeric parameter.
    pub max: Option<f64>,
    /// The distribution's name in the config (`log_uniform_values`, ...).
    pub distribution: String,
}

/// The runs of a sweep, column by column (entry `i` of every list is run `i`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PointColumns {
    /// Run ids.
    pub id: Vec<String>,
    /// Run numbers.
    pub number: Vec<Option<i64>>,
    /// Run states.
    pub state: Vec<RunState>,
    /// Sweep metric values.
    pub metric: Vec<Option<f64>>,
    /// Created, ms since the epoch.
    pub created_ms: Vec<i64>,
    /// Ended, ms since the epoch.
    pub finished_ms: Vec<Option<i64>>,
    /// Run time in ms.
    pub runtime_ms: Vec<Option<i64>>,
    /// Parameter name → its value in every run (`null` where a run lacks it).
    #[schemars(with = "std::collections::BTreeMap<String, Vec<Value>>")]
    pub params: Map<String, Value>,
}

/// `GET /api/v1/sweeps/{id}/points`: every run's parameters, metric and times, for charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepPoints {
    /// Sweep id.
    pub sweep: String,
    /// The sweep metric.
    pub metric: Option<MetricRef>,
    /// The parameters that vary, in config order.
    pub axes: Vec<Axis>,
    /// Number of runs.
    pub count: u64,
    /// The runs.
    pub runs: PointColumns,
}

/// One metric series of a run, downsampled (entry `i` of every list is point `i`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Series {
    /// Steps.
    pub step: Vec<i64>,
    /// Values (`null` for NaN).
    pub value: Vec<Option<f64>>,
    /// Wall times, ms since the epoch.
    pub time_ms: Vec<i64>,
    /// Points of the whole series.
    pub total: u64,
    /// Whether points were left out.
    pub downsampled: bool,
}

/// `GET /api/v1/runs/{id}/history?keys=a,b&max_points=N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunHistory {
    /// Run id.
    pub run: String,
    /// Its sweep.
    pub sweep: Option<String>,
    /// Every metric name the run logged.
    pub keys: Vec<String>,
    /// The metrics asked for in `keys` that the run never logged, in the order asked (empty
    /// when every one is known, and without `keys`): their series are empty. A misspelt
    /// name shows here rather than as a history without points.
    #[serde(default)]
    pub unknown_keys: Vec<String>,
    /// Most points per series in this answer.
    pub max_points: u64,
    /// The series asked for, by metric name (each a [`Series`]).
    #[schemars(with = "std::collections::BTreeMap<String, Series>")]
    pub series: SeriesByName,
}

/// Series by metric name: a JSON object whose keys keep the order of the list (the order the
/// series were asked for), written straight from the typed series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesByName(pub Vec<(String, Series)>);

impl SeriesByName {
    /// The series named `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Series> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

impl Serialize for SeriesByName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, series) in &self.0 {
            map.serialize_entry(name, series)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SeriesByName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = SeriesByName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of series by metric name")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<SeriesByName, A::Error> {
                let mut out = Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
                while let Some(entry) = access.next_entry::<String, Series>()? {
                    out.push(entry);
                }
                Ok(SeriesByName(out))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// `GET /api/v1/runs/{id}/history/columns?keys=a,b&after_step=S&limit=N`: a run's whole
/// history, or one page of it, as columns: entry `i` of `time_ms` and of every column belongs
/// to step `steps[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryColumns {
    /// Run id.
    pub run: String,
    /// Its sweep.
    pub sweep: Option<String>,
    /// Every metric name the run logged, sorted.
    pub keys: Vec<String>,
    /// The metrics asked for in `keys` that the run never logged, in the order asked (empty
    /// when every one is known, and without `keys`): their series are empty. A misspelt
    /// name shows here rather than as a history without points.
    #[serde(default)]
    pub unknown_keys: Vec<String>,
    /// The steps at which at least one of the metrics answered has a value, ascending (above
    /// `after_step` when it was given).
    pub steps: Vec<i64>,
    /// Latest wall time of each step's values, ms since the epoch.
    pub time_ms: Vec<i64>,
    /// One list per metric, by name, in the order asked (by name without `keys`): the value
    /// at each step, `null` where the metric has no value at that step or the value logged
    /// was not a finite number (those steps are listed in `non_finite`).
    #[schemars(with = "std::collections::BTreeMap<String, Vec<Option<f64>>>")]
    pub columns: ColumnsByName,
    /// For each metric that logged NaN or an infinity among these steps, the indexes (into
    /// `steps`) where it did; every other `null` of a column is a step without a value.
    pub non_finite: std::collections::BTreeMap<String, Vec<u64>>,
    /// Most steps this answer could hold: the answer's cap of values divided by its number of
    /// columns, or the smaller `limit` asked for.
    pub limit: u64,
    /// Whether steps above the last one were left out.
    pub truncated: bool,
    /// When `truncated`, the `after_step` that asks for the next page (the last step of this
    /// one); `null` when this answer reaches the run's last step.
    pub next_after_step: Option<i64>,
}

/// `GET /api/v1/runs/{id}/history/packed?keys=a,b&after_step=S&limit=N`: the same as
/// [`HistoryColumns`], with every list packed as binary numbers in base64 (RFC 4648, with
/// padding): a client decodes it without parsing a decimal number per value, several times
/// faster than the JSON lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PackedHistory {
    /// Run id.
    pub run: String,
    /// Its sweep.
    pub sweep: Option<String>,
    /// Every metric name the run logged, sorted.
    pub keys: Vec<String>,
    /// The metrics asked for in `keys` that the run never logged, in the order asked (empty
    /// when every one is known, and without `keys`): their series are empty. A misspelt
    /// name shows here rather than as a history without points.
    #[serde(default)]
    pub unknown_keys: Vec<String>,
    /// Number of steps in this answer (the length of every unpacked list).
    pub count: u64,
    /// The steps, as in [`HistoryColumns`]: signed 64-bit integers, little-endian, 8 bytes
    /// each, in base64.
    pub steps: String,
    /// Wall times, ms since the epoch: signed 64-bit integers, little-endian, in base64.
    pub time_ms: String,
    /// One column per metric, by name, in the order asked (by name without `keys`): IEEE 754
    /// binary64 values, little-endian, 8 bytes per step, in base64. A step where the metric
    /// has no value, or where the value logged was not finite, is a NaN (those listed in
    /// `non_finite`; every other NaN is a gap).
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub columns: ByName<String>,
    /// As in [`HistoryColumns`]: for each metric that logged NaN or an infinity among these
    /// steps, the indexes where it did.
    pub non_finite: std::collections::BTreeMap<String, Vec<u64>>,
    /// Most steps this answer could hold.
    pub limit: u64,
    /// Whether steps above the last one were left out.
    pub truncated: bool,
    /// When `truncated`, the `after_step` that asks for the next page; else `null`.
    pub next_after_step: Option<i64>,
}

/// Columns by metric name: a JSON object whose keys keep the order of the list (the order
/// the metrics were asked for), each value written straight from the list (numbers in their
/// shortest round-trip decimal form, non-finite ones as `null`).
#[derive(Debug, Clone, PartialEq)]
pub struct ByName<T>(pub Vec<(String, T)>);

impl<T> Default for ByName<T> {
    fn default() -> Self {
        ByName(Vec::new())
    }
}

/// The columns of a [`HistoryColumns`].
pub type ColumnsByName = ByName<Vec<Option<f64>>>;

impl<T> ByName<T> {
    /// The entry named `name`, if present.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

impl<T: Serialize> Serialize for ByName<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ByName<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Entries<T> {
            type Value = ByName<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object by metric name")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<ByName<T>, A::Error> {
                let mut out = Vec::with_capacity(access.size_hint().unwrap_or(0).min(1024));
                while let Some(entry) = access.next_entry::<String, T>()? {
                    out.push(entry);
                }
                Ok(ByName(out))
            }
        }
        deserializer.deserialize_map(Entries(std::marker::PhantomData))
    }
}

/// One parameter's importance for the sweep metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParamImportance {
    /// Dotted parameter name.
    pub name: String,
    /// Its scale.
    pub kind: AxisKind,
    /// Share of the forest's impurity decrease (0 to 1); `null` unless `evidence` is `enough`.
    pub importance: Option<f64>,
    /// Standard deviation of that share across the sub-forests (each grown on its own bootstrap
    /// samples); `null` with `importance`.
    pub importance_sd: Option<f64>,
    /// Main effect: the share of the forest's prediction variance explained by this parameter
    /// alone (0 to 1; a fANOVA-style first-order term, which sees U-shaped effects that a
    /// correlation misses); `null` unless `evidence` is `enough`.
    pub main_effect: Option<f64>,
    /// Standard deviation of the main effect across the sub-forests.
    pub main_effect_sd: Option<f64>,
    /// Pearson correlation with the metric; `null` for categories or too few runs.
    pub pearson: Option<f64>,
    /// Spearman rank correlation with the metric.
    pub spearman: Option<f64>,
}

/// Whether an importance answer has enough evidence to rank parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// At least `min_runs` runs and an out-of-bag R² of at least 0.05: importances are given.
    Enough,
    /// Fewer than `min_runs` runs in the chosen states have the metric: no importances.
    TooFewRuns,
    /// The forest predicts the metric no better than its mean (out-of-bag R² below 0.05, or not
    /// measurable): no importances, since any ranking would be noise.
    NoSignal,
}

/// `GET /api/v1/sweeps/{id}/importance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Importance {
    /// `random_forest`.
    pub method: String,
    /// Trees in the forest (all sub-forests together).
    pub trees: u64,
    /// Sub-forests the trees are split into, for the standard deviations.
    pub sub_forests: u64,
    /// The run states whose runs were used (default `finished` only).
    pub states: Vec<RunState>,
    /// Runs in those states with the metric.
    pub runs: u64,
    /// Runs the forest was grown on.
    pub forest_runs: u64,
    /// Fewest runs for importances to be given.
    pub min_runs: u64,
    /// Whether importances are given, and if not why.
    pub evidence: Evidence,
    /// The metric's goal.
    pub goal: Goal,
    /// Out-of-bag R² of the forest.
    pub oob_r2: Option<f64>,
    /// Parameters, most important first.
    pub params: Vec<ParamImportance>,
    /// The metric's name.
    pub metric: Option<String>,
    /// Time the computation took, in ms.
    pub compute_ms: u64,
    /// Whether the answer came from the cache.
    pub cached: bool,
}
