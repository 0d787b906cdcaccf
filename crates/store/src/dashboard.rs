//! Reads the dashboard needs at scale: a page of runs sorted and filtered by parameters,
//! summary values or the sweep metric; the compact per-run points of a sweep; one metric
//! series of a run; sweep notes; compute time.
//!
//! [`page_sql`] builds the query of a page; each backend runs it. Sorting and filtering on
//! JSON fields uses SQLite's `json_extract`, or PostgreSQL's `jsonb` operators (a field's
//! number and its text are separate expressions there, since a PostgreSQL expression has one
//! type); everything else stays in the shared SQL dialect. JSON paths and keys are always
//! bound as parameters, never spliced into the SQL text.

use hyperdial_wire::RunState;
use serde_json::Value;

/// Largest sweep notes, in bytes.
pub const MAX_NOTES_BYTES: usize = 64 * 1024;

/// A field of a run to sort or filter by.
#[derive(Debug, Clone, PartialEq)]
pub enum RunField {
    /// Position in the sweep.
    Number,
    /// The sweep metric.
    Metric,
    /// Life-cycle state.
    State,
    /// Created time.
    Created,
    /// Started time.
    Started,
    /// Finished time.
    Finished,
    /// Run time (finished or last heartbeat minus started).
    Runtime,
    /// A flat parameter by dotted name.
    Param(String),
    /// A summary value by metric name.
    Summary(String),
}

impl RunField {
    /// Parse `number`, `metric`, `state`, `created_ms`, `started_ms`, `finished_ms`,
    /// `runtime_ms`, `params.NAME` or `summary.NAME`.
    pub fn parse(s: &str) -> Option<RunField> {
        let named = |name: &str| {
            (!name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control))
                .then(|| name.to_string())
        };
        Some(match s {
            "number" => RunField::Number,
            "metric" => RunField::Metric,
            "state" => RunField::State,
            "created_ms" | "created" => RunField::Created,
            "started_ms" | "started" => RunField::Started,
            "finished_ms" | "finished" => RunField::Finished,
            "runtime_ms" | "runtime" => RunField::Runtime,
            _ => {
                if let Some(name) = s.strip_prefix("params.") {
                    RunField::Param(named(name)?)
                } else if let Some(name) = s.strip_prefix("summary.") {
                    RunField::Summary(named(name)?)
                } else {
                    return None;
                }
            }
        })
    }
}

/// A value bound into a query.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Real(f64),
}

/// JSON path `$."name"` with the name escaped for SQLite's path syntax.
fn json_path(name: &str) -> String {
    format!("$.\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One condition on a run field.
#[derive(Debug, Clone)]
pub enum RunCondition {
    /// `lo <= field <= hi` (either bound optional); rows without the field fail.
    Range {
        /// The field.
        field: RunField,
        /// Lowest accepted.
        lo: Option<f64>,
        /// Highest accepted.
        hi: Option<f64>,
    },
    /// The field equals one of these (numbers compare as numbers, `true`/`false` as 1/0).
    /// Each value is one SQL parameter: callers cap the count (SQLite allows 32 766
    /// parameters in one statement).
    In {
        /// The field.
        field: RunField,
        /// Accepted values as written.
        values: Vec<String>,
    },
}

/// A page of runs.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    /// Only runs of this sweep.
    pub sweep: Option<String>,
    /// Only runs of this project.
    pub project: Option<String>,
    /// Only runs in one of these states (empty: any).
    pub states: Vec<RunState>,
    /// Further conditions, all of which must hold.
    pub conditions: Vec<RunCondition>,
    /// Sort field (default: number).
    pub sort: Option<RunField>,
    /// Descending.
    pub descending: bool,
    /// Page size (default 1000, at most 100 000).
    pub limit: Option<i64>,
    /// Page start.
    pub offset: Option<i64>,
}

/// What the sweep charts need of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPoint {
    /// Run id.
    pub id: String,
    /// Position in the sweep.
    pub number: Option<i64>,
    /// State.
    pub state: RunState,
    /// Flat parameters.
    pub params: Value,
    /// The sweep metric.
    pub metric: Option<f64>,
    /// Created.
    pub created_ms: i64,
    /// Started.
    pub started_ms: Option<i64>,
    /// Finished.
    pub finished_ms: Option<i64>,
    /// The run this one repeats with another seed (`hyperdial repeat`), if any.
    pub repeat_of: Option<String>,
}

/// One point of a metric series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// Step.
    pub step: i64,
    /// Value (`None` for NaN).
    pub value: Option<f64>,
    /// Wall time.
    pub time_ms: i64,
}

/// One metric series of a run, read at most `max_points` at a time: see
/// [`crate::Storage::series_sample`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesSample {
    /// The points returned, by step: every point of the series when it holds at most
    /// `max_points`, else the evenly spaced sample.
    pub points: Vec<SeriesPoint>,
    /// How many points (steps) the series holds.
    pub total: u64,
}

/// The SQL flavour of a backend, where the shared dialect is not enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: `json_extract` with a path.
    Sqlite,
    /// PostgreSQL: `jsonb` operators with a key.
    Postgres,
}

/// How a field reads in SQL: as a number (`num`), and for JSON fields on PostgreSQL also as
/// text (`text`; SQLite's `json_extract` gives either, so there `text` is `num`).
struct FieldSql {
    num: String,
    text: Option<String>,
}

/// Builds the SQL expression for a field, pushing its binds.
struct Sql {
    dialect: Dialect,
    binds: Vec<Bind>,
}

impl Sql {
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    /// The JSON value of key `name` of one or two text columns (the first wins when set).
    fn json(&mut self, columns: &[&str], name: &str) -> FieldSql {
        match self.dialect {
            Dialect::Sqlite => {
                let p = self.bind(Bind::Text(json_path(name)));
                let parts: Vec<String> = columns
                    .iter()
                    .map(|c| format!("json_extract({c}, {p})"))
                    .collect();
                let num = if parts.len() == 1 {
                    parts[0].clone()
                } else {
                    format!("COALESCE({})", parts.join(", "))
                };
                FieldSql {
                    text: Some(num.clone()),
                    num,
                }
            }
            Dialect::Postgres => {
                let p = self.bind(Bind::Text(name.to_string()));
                let parts: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        format!("NULLIF(CAST({c} AS jsonb) -> CAST({p} AS TEXT), 'null'::jsonb)")
                    })
                    .collect();
                let j = if parts.len() == 1 {
                    parts[0].clone()
                } else {
                    format!("COALESCE({})", parts.join(", "))
                };
                FieldSql {
                    num: format!(
                        "(CASE jsonb_typeof({j}) WHEN 'number' THEN CAST({j} #>> '{{}}' AS DOUBLE PRECISION) \
                         WHEN 'boolean' THEN (CASE WHEN {j} = 'true'::jsonb THEN 1.0 ELSE 0.0 END) END)"
                    ),
                    text: Some(format!(
                        "(CASE jsonb_typeof({j}) WHEN 'string' THEN {j} #>> '{{}}' END)"
                    )),
                }
            }
        }
    }

    fn field(&mut self, f: &RunField) -> FieldSql {
        let column = |c: &str| FieldSql {
            num: c.to_string(),
            text: None,
        };
        match f {
            RunField::Number => column("r.number"),
            RunField::Metric => column("r.metric"),
            RunField::State => FieldSql {
                num: "r.state".into(),
                text: Some("r.state".into()),
            },
            RunField::Created => column("r.created_ms"),
            RunField::Started => column("r.started_ms"),
            RunField::Finished => column("r.finished_ms"),
            RunField::Runtime => {
                column("(COALESCE(r.finished_ms, r.heartbeat_ms, r.started_ms) - r.started_ms)")
            }
            RunField::Param(name) => self.json(&["r.params"], name),
            RunField::Summary(name) => self.json(&["r.user_summary", "r.summary"], name),
        }
    }
}

/// The SQL of a page of runs: the select (its last two parameters are the limit and the
/// offset, bound by the caller after `binds`), the count over the same condition, and the
/// values of the other parameters, in order.
pub(crate) struct PageSql {
    pub select: String,
    pub count: String,
    pub binds: Vec<Bind>,
    /// How many of `binds` the count takes (the first ones).
    pub count_binds: usize,
}

/// Build the queries of [`RunQuery`] `q` for `dialect`; `columns` is the run select list.
pub(crate) fn page_sql(q: &RunQuery, dialect: Dialect, columns: &str) -> PageSql {
    let mut sql = Sql {
        dialect,
        binds: Vec::new(),
    };
    let mut conds: Vec<String> = Vec::new();
    if let Some(s) = &q.sweep {
        let p = sql.bind(Bind::Text(s.clone()));
        conds.push(format!("r.sweep_id = {p}"));
    }
    if let Some(s) = &q.project {
        let p = sql.bind(Bind::Text(s.clone()));
        conds.push(format!("p.name = {p}"));
    }
    if !q.states.is_empty() {
        let ps: Vec<String> = q
            .states
            .iter()
            .map(|s| sql.bind(Bind::Text(s.as_str().to_string())))
            .collect();
        conds.push(format!("r.state IN ({})", ps.join(", ")));
    }
    for c in &q.conditions {
        match c {
            RunCondition::Range { field, lo, hi } => {
                let x = sql.field(field).num;
                let mut parts = vec![format!("{x} IS NOT NULL")];
                if let Some(lo) = lo {
                    let p = sql.bind(Bind::Real(*lo));
                    parts.push(format!("{x} >= {p}"));
                }
                if let Some(hi) = hi {
                    let p = sql.bind(Bind::Real(*hi));
                    parts.push(format!("{x} <= {p}"));
                }
                conds.push(format!("({})", parts.join(" AND ")));
            }
            RunCondition::In { field, values } => {
                // Flat `IN` lists: a chain of `OR`s would hit SQLite's expression depth limit
                // (1000) on long lists. Numbers compare with the field's number, words with
                // its text; a word never matches a numeric column.
                let x = sql.field(field);
                let (mut nums, mut words) = (Vec::new(), Vec::new());
                for v in values {
                    if *field == RunField::State {
                        words.push(sql.bind(Bind::Text(v.clone())));
                        continue;
                    }
                    let b = match v.as_str() {
                        "true" => Bind::Real(1.0),
                        "false" => Bind::Real(0.0),
                        _ => match v.parse::<f64>() {
                            Ok(n) if n.is_finite() => Bind::Real(n),
                            _ => Bind::Text(v.clone()),
                        },
                    };
                    match (dialect, &x.text, b) {
                        // SQLite's `json_extract` compares with a value of either kind.
                        (Dialect::Sqlite, Some(_), b) => nums.push(sql.bind(b)),
                        (_, _, b @ Bind::Real(_)) => nums.push(sql.bind(b)),
                        (_, Some(_), b @ Bind::Text(_)) => words.push(sql.bind(b)),
                        (_, None, Bind::Text(_)) => {}
                    }
                }
                let mut alts = Vec::new();
                if !nums.is_empty() {
                    alts.push(format!("{} IN ({})", x.num, nums.join(", ")));
                }
                if let (false, Some(text)) = (words.is_empty(), &x.text) {
                    alts.push(format!("{text} IN ({})", words.join(", ")));
                }
                if alts.is_empty() {
                    conds.push("0 = 1".into());
                } else {
                    conds.push(format!("({})", alts.join(" OR ")));
                }
            }
        }
    }
    let condition = if conds.is_empty() {
        "1 = 1".to_string()
    } else {
        conds.join(" AND ")
    };
    let binds = sql.binds.clone();
    let order = if q.descending { "DESC" } else { "ASC" };
    let sort = match &q.sort {
        None | Some(RunField::Number) => format!("r.number {order}, r.created_ms {order}"),
        Some(f) => {
            let x = sql.field(f);
            match (&x.text, dialect) {
                (Some(text), Dialect::Postgres) if text != &x.num => format!(
                    "({num} IS NULL AND {text} IS NULL), {num} {order}, {text} {order}, r.number",
                    num = x.num
                ),
                _ => format!("({x} IS NULL), {x} {order}, r.number", x = x.num),
            }
        }
    };
    let all = sql.binds.clone();
    let limit = format!("${}", all.len() + 1);
    let offset = format!("${}", all.len() + 2);
    let select = format!(
        "SELECT {columns} FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition} \
         ORDER BY {sort}, r.id LIMIT {limit} OFFSET {offset}"
    );
    let count = format!(
        "SELECT COUNT(*) AS n FROM runs r JOIN projects p ON p.id = r.project_id WHERE {condition}"
    );
    PageSql {
        select,
        count,
        count_binds: binds.len(),
        binds: all,
    }
}

/// Part of a run's history as columns, one entry per step: see
/// [`crate::Storage::history_columns`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryColumns {
    /// The steps, ascending: every step at which at least one of the asked metrics has a point.
    pub steps: Vec<i64>,
    /// The latest wall time of each step's points, ms since the epoch.
    pub time_ms: Vec<i64>,
    /// One column per asked name, in the order asked: entry `i` is the value at `steps[i]`,
    /// `None` where the metric has no point there or its value is not a finite number.
    pub columns: Vec<Vec<Option<f64>>>,
    /// For each column, the indexes (into `steps`) at which the value logged was not a finite
    /// number (NaN, stored as null, or an infinity): the `None`s of its column that are not
    /// gaps. Empty for most columns.
    pub non_finite: Vec<Vec<u64>>,
    /// Whether steps above the last one were left out (the answer holds `max_steps`).
    pub more: bool,
}

/// Merge series (each sorted by step, one per column) into [`HistoryColumns`] of at most
/// `max_steps` (at least 1) steps, the lowest ones. `more` is set when a step beyond those was
/// seen; a series read with at most `max_steps + 1` points is enough for that, since every
/// point of a series has a step of its own.
pub(crate) fn merge_columns(series: &[Vec<SeriesPoint>], max_steps: usize) -> HistoryColumns {
    let max_steps = max_steps.max(1);
    let longest = series.iter().map(Vec::len).max().unwrap_or(0);
    let rows = longest.min(max_steps);
    let mut out = HistoryColumns {
        steps: Vec::with_capacity(rows),
        time_ms: Vec::with_capacity(rows),
        columns: series.iter().map(|_| Vec::with_capacity(rows)).collect(),
        non_finite: vec![Vec::new(); series.len()],
        more: false,
    };
    let mut next = vec![0usize; series.len()];
    loop {
        // The least step among the series' next points (a linear scan: a history answer has
        // few columns, or few steps when it has many).
        let step = series
            .iter()
            .zip(&next)
            .filter_map(|(points, &i)| points.get(i).map(|p| p.step))
            .min();
        let Some(step) = step else { break };
        if out.steps.len() == max_steps {
            out.more = true;
            break;
        }
        let row = out.steps.len() as u64;
        let mut time_ms = i64::MIN;
        for (k, points) in series.iter().enumerate() {
            let value = match points.get(next[k]) {
                Some(p) if p.step == step => {
                    next[k] += 1;
                    time_ms = time_ms.max(p.time_ms);
                    let finite = p.value.filter(|v| v.is_finite());
                    if finite.is_none() {
                        out.non_finite[k].push(row);
                    }
                    finite
                }
                _ => None,
            };
            out.columns[k].push(value);
        }
        out.steps.push(step);
        out.time_ms.push(time_ms);
    }
    out
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn p(step: i64, value: Option<f64>) -> SeriesPoint {
        SeriesPoint {
            step,
            value,
            time_ms: 1000 + step,
        }
    }

    #[test]
    fn gaps_are_none_and_non_finite_values_are_listed() {
        let a = vec![p(0, Some(1.0)), p(2, None), p(5, Some(f64::INFINITY))];
        let b = vec![p(1, Some(0.5)), p(2, Some(0.25))];
        let c = merge_columns(&[a, b], 10);
        assert_eq!(c.steps, vec![0, 1, 2, 5]);
        assert_eq!(c.time_ms, vec![1000, 1001, 1002, 1005]);
        assert_eq!(c.columns[0], vec![Some(1.0), None, None, None]);
        assert_eq!(c.columns[1], vec![None, Some(0.5), Some(0.25), None]);
        assert_eq!(c.non_finite, vec![vec![2, 3], vec![]]);
        assert!(!c.more);
    }

    #[test]
    fn the_lowest_steps_are_kept_and_more_says_others_exist() {
        let a: Vec<_> = (0..6).map(|s| p(s * 2, Some(s as f64))).collect();
        let b: Vec<_> = (0..6).map(|s| p(s * 2 + 1, Some(s as f64))).collect();
        let c = merge_columns(&[a.clone(), b.clone()], 3);
        assert_eq!(c.steps, vec![0, 1, 2]);
        assert!(c.more);
        let whole = merge_columns(&[a, b], 12);
        assert_eq!(whole.steps, (0..12).collect::<Vec<_>>());
        assert!(!whole.more);
    }

    #[test]
    fn no_series_or_empty_series_give_no_steps() {
        assert_eq!(merge_columns(&[], 5), HistoryColumns::default());
        let c = merge_columns(&[Vec::new()], 5);
        assert!(c.steps.is_empty() && c.columns == vec![Vec::<Option<f64>>::new()]);
    }
}
