//! Reading and validating a sweep file.
//!
//! [`parse_str`] turns YAML or JSON text into a [`Validated`] config or a [`ConfigError`] that
//! lists *every* problem found, each with its key path, line and column. The rules are W&B's
//! (its JSON schema and the behaviour of its sweep controller) plus the checks W&B leaves to
//! run time, such as a grid over a continuous parameter. `docs/config.md` is the reference.

use std::path::Path;

use serde_json::Value;

use crate::command;
use crate::diagnostic::{did_you_mean, ConfigError, Diagnostic, Location};
use crate::model::{
    Condition, Distribution, EarlyTerminate, Goal, Hyperband, Impute, ImputeWhileRunning, Method,
    Metric, Parameter, Quantum, Retry, SweepConfig, Validated,
};
use crate::yaml::{self, Key, Node, NodeValue};
use hints::is_stray_field;

/// Largest sweep file accepted, so a mistaken path cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The largest magnitude below which every whole float is an exact integer (2^53).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Top-level keys hyperdial understands.
const TOP_KEYS: &[&str] = &[
    "method",
    "metric",
    "metrics",
    "parameters",
    "early_terminate",
    "command",
    "program",
    "run_cap",
    "name",
    "description",
    "project",
    "interpreter",
    "sample_without_replacement",
    "allow_repeats",
    "retry",
    "wandb",
    "parent",
    "prior_runs",
    "budget",
    "run_time_limit",
];

/// Top-level keys that only mean something to W&B's cloud service; accepted and ignored.
const WANDB_ONLY_KEYS: &[(&str, &str)] = &[
    (
        "entity",
        "the W&B entity (team or user) has no meaning here",
    ),
    ("controller", "hyperdial always runs its own controller"),
    ("apiVersion", "W&B API version marker"),
    ("kind", "W&B API kind marker"),
    ("job", "W&B Launch job"),
    ("image_uri", "W&B Launch image"),
    ("scheduler", "W&B Launch scheduler"),
];

/// Keys a parameter specification may hold.
const PARAM_KEYS: &[&str] = &[
    "distribution",
    "value",
    "values",
    "probabilities",
    "min",
    "max",
    "q",
    "mu",
    "sigma",
    "a",
    "b",
    "parameters",
    "when",
];

/// Every distribution name, for messages.
const DISTRIBUTIONS: &[&str] = &[
    "constant",
    "categorical",
    "categorical_w_probabilities",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "inv_log_uniform",
    "q_log_uniform",
    "log_uniform_values",
    "inv_log_uniform_values",
    "q_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
];

/// Read and validate a sweep file. The file name in messages is the path as given.
pub fn parse_file(path: &Path) -> Result<Validated, ConfigError> {
    let file = path.display().to_string();
    let fail = |message: String, hint: &str| ConfigError {
        file: file.clone(),
        diagnostics: vec![Diagnostic::error("", None, message).with_hint(hint)],
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read the file: {e}"), "check the path"))?;
    if !meta.is_file() {
        return Err(fail(
            "not a regular file".into(),
            "give the path of a .yaml, .yml or .json file",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(fail(
            format!(
                "the file is {} bytes; sweep files are limited to {MAX_FILE_BYTES}",
                meta.len()
            ),
            "is this the right file?",
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| fail(format!("cannot read the file: {e}"), "check the path"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(
            format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            "save the file as UTF-8",
        )
    })?;
    parse_str(&text, &file)
}

/// Validate sweep-file text (YAML 1.2 or JSON). `file` names the source in messages.
pub fn parse_str(text: &str, file: &str) -> Result<Validated, ConfigError> {
    let parsed = yaml::parse(text);
    let mut v = Validator {
        diagnostics: parsed.diagnostics,
        goal_at_top: false,
        top_goal: None,
        numbered_objectives: false,
    };
    let config = match &parsed.root {
        Some(root) => v.config(root),
        None => {
            if !v.diagnostics.iter().any(Diagnostic::is_error) {
                v.error(
                    "",
                    None,
                    "the file is empty",
                    "a sweep needs at least `method` and `parameters`",
                );
            }
            None
        }
    };
    v.diagnostics
        .sort_by_key(|d| d.location.map(|l| (l.line, l.column)).unwrap_or((0, 0)));
    match config {
        Some(config) if !v.diagnostics.iter().any(Diagnostic::is_error) => Ok(Validated {
            config,
            warnings: v.diagnostics,
        }),
        _ => Err(ConfigError {
            file: file.to_string(),
            diagnostics: v.diagnostics,
        }),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn is_valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A map node viewed as a lookup table, remembering which keys were read.
struct Fields<'a> {
    entries: &'a [(Key, Node)],
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

struct Validator {
    diagnostics: Vec<Diagnostic>,
    /// A goal was written at the top level (Optuna's `direction`, Ray Tune's `mode`): its
    /// error already says to move it under `metric:`, so a metric without `goal` is not
    /// warned about the default as well.
    goal_at_top: bool,
    /// The goal that top-level key says (`maximize`, `minimize`; `None` when it says neither)
    /// and the index of its error in `diagnostics`, whose hint the cross-field rules make
    /// exact once the metric is known (no metric, or a `goal` written under it).
    top_goal: Option<(Option<&'static str>, usize)>,
    /// The objectives of a `metrics` list are numbered functions (`f1`, `f2`, …: the names of
    /// a multi-objective test problem, [`hints::numbered_names`]): `f1` there is no F1 score,
    /// so no objective is warned about the default goal for its name.
    numbered_objectives: bool,
}

impl Validator {
    fn error(
        &mut self,
        path: &str,
        loc: Option<Location>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let hint = hint.into();
        let d = Diagnostic::error(path, loc, message);
        self.diagnostics.push(if hint.is_empty() {
            d
        } else {
            d.with_hint(hint)
        });
    }

    fn warning(
        &mut self,
        path: &str,
        loc: Option<Location>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let hint = hint.into();
        let d = Diagnostic::warning(path, loc, message);
        self.diagnostics.push(if hint.is_empty() {
            d
        } else {
            d.with_hint(hint)
        });
    }

    fn expect_map<'a>(&mut self, path: &str, node: &'a Node, example: &str) -> Option<Fields<'a>> {
        match node.as_map() {
            Some(entries) => Some(Fields { entries }),
            None => {
                self.error(
                    path,
                    Some(node.location),
                    format!("expected a mapping, found {}", node.type_name()),
                    format!("write it as a mapping, e.g. {example}"),
                );
                None
            }
        }
    }

    fn string(&mut self, path: &str, node: &Node) -> Option<String> {
        match &node.value {
            NodeValue::Str(s) => Some(s.clone()),
            _ => {
                self.error(
                    path,
                    Some(node.location),
                    format!("expected a string, found {}", node.type_name()),
                    "",
                );
                None
            }
        }
    }

    /// A finite number.
    fn number(&mut self, path: &str, node: &Node) -> Option<f64> {
        match node.as_f64() {
            Some(x) if x.is_finite() => Some(x),
            Some(x) => {
                self.error(
                    path,
                    Some(node.location),
                    format!("must be a finite number, found {x}"),
                    "",
                );
                None
            }
            None => {
                self.error(
                    path,
                    Some(node.location),
                    format!("expected a number, found {}", describe(node)),
                    hints::not_a_number(node),
                );
                None
            }
        }
    }

    /// An integer (`1e3` and `2.0`, floats without a fractional part, are read as integers
    /// with a warning, as W&B's schema accepts them).
    fn integer(&mut self, path: &str, node: &Node) -> Option<i64> {
        self.integer_or(path, node, "")
    }

    /// An integer; `fraction_hint` is the hint for a number with a fractional part (empty
    /// for none), since the fix depends on what the integer is for.
    fn integer_or(&mut self, path: &str, node: &Node, fraction_hint: &str) -> Option<i64> {
        match &node.value {
            NodeValue::Int(i) => Some(*i),
            // W&B's schema (JSON Schema draft 7) counts a float without a fractional part as
            // an integer, so a file W&B runs may hold `min: 2.0`: read as 2, with a warning.
            NodeValue::Float(f) if f.fract() == 0.0 && f.abs() <= MAX_EXACT_INTEGER => {
                let i = *f as i64;
                self.warning(
                    path,
                    Some(node.location),
                    format!(
                        "an integer written as the float {}: read as {i}",
                        command::python_str(&node.to_json())
                    ),
                    // `1e3` is a float in YAML as `1000.0` is: either way, the integer's digits.
                    format!("write {i} (digits only: no decimal point or exponent)"),
                );
                Some(i)
            }
            _ => {
                self.error(
                    path,
                    Some(node.location),
                    format!("expected an integer, found {}", describe(node)),
                    hints::not_an_integer(node, fraction_hint),
                );
                None
            }
        }
    }

    fn positive_integer(&mut self, path: &str, node: &Node) -> Option<u64> {
        let i = self.integer(path, node)?;
        if i < 1 {
            self.error(
                path,
                Some(node.location),
                format!("must be at least 1, found {i}"),
                "",
            );
            return None;
        }
        Some(i as u64)
    }

    fn boolean(&mut self, path: &str, node: &Node) -> Option<bool> {
        match node.value {
            NodeValue::Bool(b) => Some(b),
            _ => {
                self.error(
                    path,
                    Some(node.location),
                    format!("expected true or false, found {}", describe(node)),
                    hints::not_a_boolean(node),
                );
                None
            }
        }
    }

    fn config(&mut self, root: &Node) -> Option<SweepConfig> {
        let top = self.expect_map("", root, "`method: random` on its own line")?;
        // Keys reported as misspelt (`metirc` for `metric`): what needs them is not reported
        // again as missing.
        let mut misspelt: Vec<String> = Vec::new();
        for (key, node) in top.entries {
            if TOP_KEYS.contains(&key.name.as_str()) {
                continue;
            }
            if let Some((_, why)) = WANDB_ONLY_KEYS.iter().find(|(k, _)| *k == key.name) {
                self.warning(
                    &key.name,
                    Some(key.location),
                    format!("`{}` is a W&B-only key and is ignored ({why})", key.name),
                    "",
                );
            } else if key.name == "tune" {
                self.error(
                    "tune",
                    Some(key.location),
                    "the legacy `tune:` block (Ray Tune through W&B) is not supported",
                    "describe the search with `method` and `parameters` instead",
                );
            } else if key.name == "sweep" && node.as_map().is_some() {
                self.error(
                    "sweep",
                    Some(key.location),
                    "unknown key `sweep`: the whole configuration is nested under it",
                    "move the keys under `sweep:` to the top level of the file",
                );
            } else {
                let goal_key = matches!(key.name.as_str(), "direction" | "mode");
                self.goal_at_top |= goal_key;
                misspelt.extend(self.unknown_key("", key, node, TOP_KEYS, "at the top level"));
                if goal_key {
                    let at = self.diagnostics.len().saturating_sub(1);
                    self.top_goal = Some((hints::goal_of(node), at));
                }
            }
        }
        let given = |key: &str| top.has(key) || misspelt.iter().any(|m| m == key);
        let has_metric = given("metric") || given("metrics");

        let method = match top.get("method") {
            Some(node) => self.method(node),
            None if given("method") => None,
            None => {
                self.error(
                    "method",
                    Some(root.location),
                    "missing required key `method`",
                    "add `method: grid`, `method: random`, `method: bayes`, `method: tpe` or `method: sobol`",
                );
                None
            }
        };
        let (metric, metrics) = self.objectives(&top);
        let parameters = match top.get("parameters") {
            Some(node) => {
                let parameters = self.parameters(node);
                self.check_conditions(&parameters);
                parameters
            }
            None if given("parameters") => Vec::new(),
            None => {
                self.error(
                    "parameters",
                    Some(root.location),
                    "missing required key `parameters`",
                    "add a `parameters:` mapping, e.g. `parameters: {lr: {min: 0.001, max: 0.1}}`",
                );
                Vec::new()
            }
        };
        let early_terminate = top
            .get("early_terminate")
            .and_then(|n| self.early_terminate(n));
        let command = top
            .get("command")
            .and_then(|n| self.command(n, &parameters));
        let opt_string = |v: &mut Self, key: &str| top.get(key).and_then(|n| v.string(key, n));
        let program = opt_string(self, "program");
        let name = opt_string(self, "name");
        let description = opt_string(self, "description");
        let project = opt_string(self, "project");
        let interpreter = opt_string(self, "interpreter");
        let run_cap = match top.get("run_cap") {
            Some(node) if node.as_map().is_some() => {
                self.error(
                    "run_cap",
                    Some(node.location),
                    "expected a positive integer, found a mapping",
                    "`run_cap` is the maximum number of runs, e.g. `run_cap: 50`",
                );
                None
            }
            Some(node) => self.positive_integer("run_cap", node),
            None => None,
        };

        let retry = match top.get("retry") {
            Some(node) => self.retry(node),
            None => Some(Retry::default()),
        };
        let sample_without_replacement = match top.get("sample_without_replacement") {
            Some(node) => self
                .boolean("sample_without_replacement", node)
                .unwrap_or(false),
            None => false,
        };

        let allow_repeats = match top.get("allow_repeats") {
            Some(node) => self.boolean("allow_repeats", node).unwrap_or(false),
            None => false,
        };

        let wandb = match top.get("wandb") {
            Some(node) => self.boolean("wandb", node).unwrap_or(false),
            None => false,
        };
        let run_time_limit_s = top
            .get("run_time_limit")
            .and_then(|n| self.duration("run_time_limit", n));
        let budget = top.get("budget").and_then(|n| self.budget(n));
        if let (Some(b), Some(node)) = (&budget, top.get("budget")) {
            if b.stagnation.is_some() && !has_metric {
                let loc = node.as_map().and_then(|m| {
                    m.iter()
                        .find(|(k, _)| k.name == "stagnation")
                        .map(|(k, _)| k.location)
                });
                self.error(
                    "budget.stagnation",
                    loc,
                    "stagnation is judged on the sweep metric, but the sweep has no `metric`",
                    "add `metric: {name: ..., goal: ...}`",
                );
            }
        }
        if let (Some(b), Some(node), true) = (&budget, top.get("budget"), metrics.len() > 1) {
            if b.stagnation.is_some() {
                self.error(
                    "budget.stagnation",
                    Some(node.location),
                    "stagnation is judged on one metric; a multi-objective sweep cannot use it",
                    "remove `stagnation`; bound the sweep with `run_cap` or another budget",
                );
            }
        }
        let parent = top.get("parent").and_then(|n| self.parent(n));
        let prior_runs = top
            .get("prior_runs")
            .map(|n| self.prior_runs(n))
            .unwrap_or_default();

        // Cross-field rules.
        self.settle_top_goal(&top);
        if let Some(method) = method {
            if matches!(method, Method::Bayes | Method::Tpe) && metric.is_none() && !has_metric {
                let hint = match self.top_goal {
                    Some((Some("maximize"), _)) => "add `metric: {name: val_accuracy, goal: maximize}` with the name your script logs (it replaces the top-level goal)",
                    Some((Some(_), _)) => "add `metric: {name: val_loss, goal: minimize}` with the name your script logs (it replaces the top-level goal)",
                    _ => "add `metric: {name: val_loss, goal: minimize}`",
                };
                self.error(
                    "metric",
                    Some(root.location),
                    format!("`method: {}` needs a `metric` to optimize", method.as_str()),
                    hint,
                );
            }
            if method == Method::Grid {
                self.check_grid(&parameters);
            }
            // As in W&B, whose bayes search refuses a space without a searchable parameter.
            if method == Method::Bayes
                && !parameters.is_empty()
                && parameters
                    .iter()
                    .all(|p| matches!(p.distribution, Distribution::Constant { .. }))
            {
                self.error(
                    "parameters",
                    top.get("parameters").map(|n| n.location),
                    "`method: bayes` needs at least one parameter that varies, but every parameter is a constant",
                    "give a parameter `values` or a range, or use `method: grid`",
                );
            }
            if allow_repeats && !matches!(method, Method::Bayes | Method::Tpe) {
                self.error(
                    "allow_repeats",
                    top.get("allow_repeats").map(|n| n.location),
                    format!(
                        "`allow_repeats` applies to `method: bayes` and `method: tpe`, not `{}`",
                        method.as_str()
                    ),
                    "remove it (grid runs each configuration once, random may repeat anyway)",
                );
            }
            if sample_without_replacement {
                let loc = top.get("sample_without_replacement").map(|n| n.location);
                if method != Method::Random {
                    self.error(
                        "sample_without_replacement",
                        loc,
                        format!(
                            "`sample_without_replacement` applies to `method: random`, not `{}`",
                            method.as_str()
                        ),
                        "remove it, or use `method: random`",
                    );
                } else if let Some(p) = parameters
                    .iter()
                    .find(|p| p.distribution.grid_len().is_none())
                {
                    self.error(
                        "sample_without_replacement",
                        loc,
                        format!(
                            "sampling without replacement needs a finite space, but `{}` is {} (continuous)",
                            p.name,
                            p.distribution.name()
                        ),
                        "give every parameter a finite set of values (values, int_uniform, q_uniform)",
                    );
                }
            }
        }
        if let Some(node) = top.get("early_terminate") {
            if metrics.len() > 1 {
                self.error(
                    "early_terminate",
                    Some(node.location),
                    "early termination judges one metric; multi-objective sweeps cannot use it yet",
                    "remove `early_terminate`, or keep one objective in `metrics`",
                );
            } else if !has_metric {
                self.error(
                    "early_terminate",
                    Some(node.location),
                    "early termination compares runs by a metric, but the sweep has no `metric`",
                    "add `metric: {name: ..., goal: ...}`",
                );
            }
        }
        if let Some(template) = &command {
            if command::uses_macro(template, "program") && program.is_none() {
                let loc = top.get("command").map(|n| n.location);
                self.error(
                    "command",
                    loc,
                    "the command uses ${program} but the sweep has no `program`",
                    "add `program: train.py` or write the script name into the command",
                );
            }
        } else if program.is_none() && !given("program") && !given("command") {
            // W&B runs such sweeps from Python (`wandb.agent(sweep_id, function=train)`), so the
            // file is valid; agents that start processes need a program or a command.
            self.warning(
                "program",
                Some(root.location),
                "no `program` and no `command`: agents cannot start runs of this sweep, only the Python client can drive it",
                "add `program: train.py`, or give a `command` list",
            );
        }

        // W&B's bayes goes on to `run_cap`, repeating configurations; hyperdial's ends once
        // every configuration of a finite space has run, unless told to repeat.
        if let (Some(Method::Bayes | Method::Tpe), Some(cap), false) =
            (method, run_cap, allow_repeats)
        {
            if let Ok(size) = crate::grid::grid_size(&parameters) {
                if u128::from(cap) > size {
                    let name = method.map(Method::as_str).unwrap_or_default();
                    self.warning(
                        "run_cap",
                        top.get("run_cap").map(|n| n.location),
                        format!(
                            "`run_cap: {cap}` is more than the {size} configurations of this \
                             space: `{name}` runs each once, so the sweep ends after {size} runs \
                             (W&B's bayes would go on to {cap}, repeating configurations)"
                        ),
                        "add `allow_repeats: true` to run up to run_cap (repeats measure the \
                         noise), or lower run_cap",
                    );
                }
            }
        }

        Some(SweepConfig {
            name,
            description,
            project,
            program,
            method: method?,
            metric,
            metrics,
            parameters,
            early_terminate,
            command,
            interpreter,
            run_cap,
            sample_without_replacement,
            allow_repeats,
            retry: retry?,
            wandb,
            parent,
            prior_runs,
            budget,
            run_time_limit_s,
        })
    }

    fn method(&mut self, node: &Node) -> Option<Method> {
        let name = self.string("method", node)?;
        match Method::from_name(&name) {
            Some(m) => Some(m),
            None => {
                let hint = hints::did_you_mean_or(&name, Method::NAMES, || {
                    format!("use one of: {}", Method::NAMES.join(", "))
                });
                self.error(
                    "method",
                    Some(node.location),
                    format!("unknown method `{name}`"),
                    hint,
                );
                None
            }
        }
    }

    /// One objective at `path`. An unknown key is reported only when `report_unknown` (the
    /// entries of a `metrics` list of two or more are checked by the list, which allows fewer
    /// keys).
    fn metric(&mut self, path: &str, node: &Node, report_unknown: bool) -> Option<Metric> {
        let fields = self.expect_map(path, node, "`metric: {name: val_loss, goal: minimize}`")?;
        const KEYS: &[&str] = &["name", "goal", "target", "impute", "impute_while_running"];
        let mut misspelt = Vec::new();
        for (key, value) in fields.entries {
            if !KEYS.contains(&key.name.as_str()) {
                if report_unknown {
                    misspelt.extend(self.unknown_key(
                        path,
                        key,
                        value,
                        KEYS,
                        &format!("in `{path}`"),
                    ));
                } else {
                    misspelt.extend(did_you_mean(&key.name, &["name", "goal"]).map(str::to_string));
                }
            }
        }
        let name = match fields.get("name") {
            Some(n) => match &n.value {
                NodeValue::Str(s) if !s.is_empty() => Some(s.clone()),
                NodeValue::Str(_) => {
                    self.error(
                        &join(path, "name"),
                        Some(n.location),
                        "the metric name is empty",
                        "",
                    );
                    None
                }
                _ => self.string(&join(path, "name"), n),
            },
            None if misspelt.iter().any(|m| m == "name") => None,
            None => {
                self.error(
                    &join(path, "name"),
                    Some(node.location),
                    "missing required key `name`",
                    "name the logged metric, e.g. `name: val_loss`",
                );
                None
            }
        };
        let goal = match fields.get("goal") {
            None => {
                if let (Some(n), Some(name)) = (fields.get("name"), &name) {
                    if hints::higher_is_better(name)
                        && !self.goal_at_top
                        && !self.numbered_objectives
                    {
                        self.warning(
                            path,
                            Some(n.location),
                            format!("`{name}` will be minimized: `goal` is not written and defaults to `minimize`"),
                            "if higher is better, write `goal: maximize` beside `name`",
                        );
                    }
                }
                Some(Goal::Minimize)
            }
            Some(n) => match self.string(&join(path, "goal"), n).as_deref() {
                Some("minimize") => Some(Goal::Minimize),
                Some("maximize") => Some(Goal::Maximize),
                Some(other) => {
                    let hint = hints::did_you_mean_or(other, &["minimize", "maximize"], || {
                        "use `minimize` or `maximize`".into()
                    });
                    self.error(
                        &join(path, "goal"),
                        Some(n.location),
                        format!("unknown goal `{other}`"),
                        hint,
                    );
                    None
                }
                None => None,
            },
        };
        let target = fields
            .get("target")
            .and_then(|n| self.number(&join(path, "target"), n));
        let impute = match fields.get("impute") {
            None => Some(Impute::Worst),
            Some(n) => match self.string(&join(path, "impute"), n).as_deref() {
                Some("worst") => Some(Impute::Worst),
                Some("best") => Some(Impute::Best),
                Some("latest") => Some(Impute::Latest),
                Some(other) => {
                    self.error(
                        &join(path, "impute"),
                        Some(n.location),
                        format!("unknown impute rule `{other}`"),
                        "use `worst`, `best` or `latest`",
                    );
                    None
                }
                None => None,
            },
        };
        let impute_while_running = match fields.get("impute_while_running") {
            None => Some(ImputeWhileRunning::False),
            Some(n) => match &n.value {
                NodeValue::Bool(false) => Some(ImputeWhileRunning::False),
                NodeValue::Str(s) if s == "false" => Some(ImputeWhileRunning::False),
                NodeValue::Str(s) if s == "worst" => Some(ImputeWhileRunning::Worst),
                NodeValue::Str(s) if s == "best" => Some(ImputeWhileRunning::Best),
                NodeValue::Str(s) if s == "latest" => Some(ImputeWhileRunning::Latest),
                _ => {
                    self.error(
                        &join(path, "impute_while_running"),
                        Some(n.location),
                        format!("unknown value {}", describe(n)),
                        "use `false`, `worst`, `best` or `latest`",
                    );
                    None
                }
            },
        };
        Some(Metric {
            name: name?,
            goal: goal?,
            target,
            impute: impute?,
            impute_while_running: impute_while_running?,
        })
    }

    /// The sweep's objectives: `metric`, or the `metrics` list (a hyperdial addition; see
    /// `docs/config.md`, "Multi-objective sweeps"). Returns the first objective (the
    /// `metric` every single-objective path reads) and, for two or more objectives, all of
    /// them in file order; a one-entry list means exactly `metric` and returns no list.
    /// Make the hint of a top-level `direction`/`mode` exact when `metric:` writes a `goal`
    /// too: the same goal makes the top-level key redundant, another one contradicts it.
    fn settle_top_goal(&mut self, top: &Fields) {
        let Some((top_goal, at)) = self.top_goal else {
            return;
        };
        let written = top
            .get("metric")
            .and_then(|m| m.as_map())
            .and_then(|entries| entries.iter().find(|(k, _)| k.name == "goal"))
            .and_then(|(_, g)| hints::goal_of(g));
        let (Some(written), Some(d)) = (written, self.diagnostics.get_mut(at)) else {
            return;
        };
        d.hint = Some(match top_goal {
            Some(t) if t == written => {
                format!("remove it: `metric:` already says `goal: {written}`")
            }
            Some(t) => format!(
                "remove it, and keep the goal you mean under `metric:`: it says `{t}` here but `goal: {written}` there"
            ),
            None => format!("remove it: `metric:` says `goal: {written}`"),
        });
    }

    fn objectives(&mut self, top: &Fields) -> (Option<Metric>, Vec<Metric>) {
        let Some(node) = top.get("metrics") else {
            return (
                top.get("metric")
                    .and_then(|n| self.metric("metric", n, true)),
                Vec::new(),
            );
        };
        if top.has("metric") {
            self.error(
                "metrics",
                Some(node.location),
                "`metric` and `metrics` are both given",
                "name one objective with `metric`, or every objective in `metrics`",
            );
        }
        let items = match &node.value {
            NodeValue::Seq(items) => items,
            _ => {
                self.error(
                    "metrics",
                    Some(node.location),
                    format!("expected a list, found {}", node.type_name()),
                    "write `metrics: [{name: loss, goal: minimize}, {name: latency_ms, goal: minimize}]`",
                );
                return (None, Vec::new());
            }
        };
        if items.is_empty() {
            self.error(
                "metrics",
                Some(node.location),
                "`metrics` is empty: a sweep needs at least one objective",
                "add `{name: loss, goal: minimize}`, or remove `metrics`",
            );
            return (None, Vec::new());
        }
        if let [only] = items.as_slice() {
            return (self.metric("metrics[0]", only, true), Vec::new());
        }
        let names: Vec<&str> = items
            .iter()
            .filter_map(|item| item.as_map())
            .filter_map(|entries| entries.iter().find(|(k, _)| k.name == "name"))
            .filter_map(|(_, n)| match &n.value {
                NodeValue::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        self.numbered_objectives = hints::numbered_names(&names);
        const KEYS: &[&str] = &["name", "goal"];
        let mut out: Vec<Metric> = Vec::new();
        let mut complete = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("metrics[{i}]");
            if let Some(entries) = item.as_map() {
                for (key, value) in entries {
                    if key.name == "target" {
                        self.error(
                            &join(&path, "target"),
                            Some(key.location),
                            "`target` ends a sweep when one run reaches one value, which has no meaning with several objectives",
                            "remove `target`; bound the sweep with `run_cap` or `budget`",
                        );
                    } else if matches!(key.name.as_str(), "impute" | "impute_while_running") {
                        self.error(
                            &join(&path, &key.name),
                            Some(key.location),
                            format!("`{}` applies to a single metric; a multi-objective sweep imputes each objective's worst value", key.name),
                            "remove it",
                        );
                    } else if !KEYS.contains(&key.name.as_str()) {
                        self.unknown_key(&path, key, value, KEYS, "in an entry of `metrics`");
                    }
                }
            }
            let Some(m) = self.metric(&path, item, false) else {
                complete = false;
                continue;
            };
            if out.iter().any(|o| o.name == m.name) {
                let loc = item
                    .as_map()
                    .and_then(|e| e.iter().find(|(k, _)| k.name == "name"))
                    .map(|(_, n)| n.location);
                self.error(
                    &join(&path, "name"),
                    loc,
                    format!("objective `{}` is named twice", m.name),
                    "name each objective once",
                );
                complete = false;
                continue;
            }
            out.push(Metric { target: None, ..m });
        }
        if !complete {
            return (None, Vec::new());
        }
        (out.first().cloned(), out)
    }

    fn early_terminate(&mut self, node: &Node) -> Option<EarlyTerminate> {
        let fields = self.expect_map(
            "early_terminate",
            node,
            "`early_terminate: {type: hyperband, min_iter: 3}`",
        )?;
        const TYPES: &[&str] = &["hyperband", "asha", "median"];
        let kind = match fields.get("type") {
            Some(n) => self
                .string("early_terminate.type", n)
                .map(|s| (s, n.location)),
            None => {
                // `typ: hyperband` is reported as a misspelt `type`, and only so.
                let mut misspelt = false;
                for (key, value) in fields.entries {
                    if did_you_mean(&key.name, &["type"]).is_some() {
                        misspelt = true;
                        self.unknown_key("early_terminate", key, value, &["type"], "");
                    }
                }
                if !misspelt {
                    self.error(
                        "early_terminate.type",
                        Some(node.location),
                        "missing required key `type`",
                        "add `type: hyperband` (or `asha`, `median`)",
                    );
                }
                None
            }
        };
        let (kind, loc) = kind?;
        let keys: &[&str] = match kind.as_str() {
            "hyperband" => &["type", "min_iter", "max_iter", "s", "eta", "strict"],
            "asha" => &[
                "type",
                "grace_period",
                "reduction_factor",
                "brackets",
                "max_t",
                "step_key",
            ],
            "median" => &["type", "warmup", "min_runs", "step_key"],
            _ => {
                let hint = hints::did_you_mean_or(&kind, TYPES, || {
                    "the supported types are `hyperband`, `asha` and `median`".into()
                });
                self.error(
                    "early_terminate.type",
                    Some(loc),
                    format!("unknown early-termination type `{kind}`"),
                    hint,
                );
                return None;
            }
        };
        let mut misspelt = Vec::new();
        for (key, value) in fields.entries {
            if !keys.contains(&key.name.as_str()) {
                misspelt.extend(self.unknown_key(
                    "early_terminate",
                    key,
                    value,
                    keys,
                    &format!("in a {kind} `early_terminate`"),
                ));
            }
        }
        match kind.as_str() {
            "asha" => self.asha(&fields),
            "median" => self.median(&fields),
            _ => self.hyperband(node, &fields, &misspelt),
        }
    }

    fn step_key(&mut self, f: &Fields) -> Option<Option<String>> {
        match f.get("step_key") {
            None => Some(None),
            Some(n) => match self.string("early_terminate.step_key", n) {
                Some(s) if !s.is_empty() => Some(Some(s)),
                Some(_) => {
                    self.error(
                        "early_terminate.step_key",
                        Some(n.location),
                        "the step key is empty",
                        "name a logged metric such as `epoch`",
                    );
                    None
                }
                None => None,
            },
        }
    }

    fn factor(&mut self, f: &Fields, key: &str, default: f64) -> Option<f64> {
        let path = join("early_terminate", key);
        match f.get(key) {
            None => Some(default),
            Some(n) => match self.number(&path, n) {
                Some(e) if e > 1.0 => Some(e),
                Some(e) => {
                    self.error(
                        &path,
                        Some(n.location),
                        format!("{key} must be greater than 1, found {}", fmt_num(e)),
                        "it is the reduction factor: 3 keeps the best third at each rung",
                    );
                    None
                }
                None => None,
            },
        }
    }

    fn count_or(&mut self, f: &Fields, key: &str, default: u64, min: u64) -> Option<u64> {
        let path = join("early_terminate", key);
        match f.get(key) {
            None => Some(default),
            Some(n) => {
                let i = self.integer(&path, n)?;
                if i < min as i64 {
                    self.error(
                        &path,
                        Some(n.location),
                        format!("must be at least {min}, found {i}"),
                        "",
                    );
                    return None;
                }
                Some(i as u64)
            }
        }
    }

    fn asha(&mut self, f: &Fields) -> Option<EarlyTerminate> {
        let grace_period = self.count_or(f, "grace_period", 1, 1);
        let reduction_factor = self.factor(f, "reduction_factor", 3.0);
        let brackets = self.count_or(f, "brackets", 1, 1);
        let max_t = match f.get("max_t") {
            None => Some(None),
            Some(n) => self.positive_integer("early_terminate.max_t", n).map(Some),
        };
        let step_key = self.step_key(f);
        let rule = crate::model::Asha {
            grace_period: grace_period?,
            reduction_factor: reduction_factor?,
            brackets: brackets?,
            max_t: max_t?,
            step_key: step_key?,
        };
        if let Some(max_t) = rule.max_t {
            if max_t < rule.grace_period {
                let loc = f.get("max_t").map(|n| n.location);
                self.error(
                    "early_terminate.max_t",
                    loc,
                    format!(
                        "max_t ({max_t}) is below grace_period ({}): no rung fits",
                        rule.grace_period
                    ),
                    "raise max_t or lower grace_period",
                );
                return None;
            }
        }
        Some(EarlyTerminate::Asha(rule))
    }

    fn median(&mut self, f: &Fields) -> Option<EarlyTerminate> {
        let warmup = self.count_or(f, "warmup", 0, 0);
        let min_runs = self.count_or(f, "min_runs", 5, 1);
        let step_key = self.step_key(f);
        Some(EarlyTerminate::Median(crate::model::Median {
            warmup: warmup?,
            min_runs: min_runs?,
            step_key: step_key?,
        }))
    }

    /// Hyperband's settings; `misspelt` are the keys already reported as near misses.
    fn hyperband(
        &mut self,
        node: &Node,
        fields: &Fields,
        misspelt: &[String],
    ) -> Option<EarlyTerminate> {
        let p = "early_terminate";
        let min_iter = fields
            .get("min_iter")
            .and_then(|n| self.positive_integer(&join(p, "min_iter"), n));
        let max_iter = fields
            .get("max_iter")
            .and_then(|n| self.positive_integer(&join(p, "max_iter"), n));
        let s = fields
            .get("s")
            .and_then(|n| self.positive_integer(&join(p, "s"), n));
        let eta = match fields.get("eta") {
            None => Some(3.0),
            Some(n) => match self.number(&join(p, "eta"), n) {
                Some(e) if e > 1.0 => Some(e),
                Some(e) => {
                    self.error(
                        &join(p, "eta"),
                        Some(n.location),
                        format!("eta must be greater than 1, found {e}"),
                        "eta is the reduction factor: eta 3 keeps the top third at each band",
                    );
                    None
                }
                None => None,
            },
        };
        let strict = match fields.get("strict") {
            None => Some(true),
            Some(n) => self.boolean(&join(p, "strict"), n),
        };
        let has_max_form = fields.has("max_iter") && fields.has("s");
        if !has_max_form && !fields.has("min_iter") {
            if misspelt
                .iter()
                .any(|m| matches!(m.as_str(), "min_iter" | "max_iter" | "s"))
            {
                // The misspelt key is the error.
                return None;
            }
            let hint = if fields.has("max_iter") {
                "`max_iter` needs `s`, the number of bands below it; or give `min_iter` instead"
            } else {
                "give `min_iter` (the first band), or `max_iter` and `s`"
            };
            self.error(
                p,
                Some(node.location),
                "hyperband needs either `min_iter`, or `max_iter` with `s`",
                hint,
            );
            return None;
        }
        if has_max_form && fields.has("min_iter") {
            let loc = fields.get("min_iter").map(|n| n.location);
            self.warning(
                &join(p, "min_iter"),
                loc,
                "`min_iter` is ignored when `max_iter` and `s` are given (as in W&B)",
                "remove one of the two ways of placing the bands",
            );
        }
        if !has_max_form && fields.has("max_iter") {
            let loc = fields.get("max_iter").map(|n| n.location);
            self.warning(
                &join(p, "max_iter"),
                loc,
                "`max_iter` is ignored without `s`; bands start at `min_iter`",
                "",
            );
        }
        let hb = Hyperband {
            min_iter,
            max_iter: if has_max_form { max_iter } else { None },
            s: if has_max_form { s } else { None },
            eta: eta?,
            strict: strict?,
        };
        if has_max_form && (hb.max_iter.is_none() || hb.s.is_none()) {
            return None;
        }
        if !has_max_form && hb.min_iter.is_none() {
            return None;
        }
        if hb.bands(1).is_empty() {
            self.error(
                p,
                Some(node.location),
                format!(
                    "no band fits: max_iter / eta = {} is below one iteration",
                    hb.max_iter.unwrap_or(0) as f64 / hb.eta
                ),
                "increase max_iter or decrease eta",
            );
            return None;
        }
        Some(EarlyTerminate::Hyperband(hb))
    }

    fn command(&mut self, node: &Node, parameters: &[Parameter]) -> Option<Vec<String>> {
        let items = match &node.value {
            NodeValue::Seq(items) => items,
            NodeValue::Str(s) => {
                let split: Vec<String> = s.split_whitespace().map(|t| format!("\"{t}\"")).collect();
                self.error(
                    "command",
                    Some(node.location),
                    "`command` must be a list of arguments, not one string",
                    format!("write it as a list: command: [{}]", split.join(", ")),
                );
                return None;
            }
            _ => {
                self.error(
                    "command",
                    Some(node.location),
                    format!("expected a list, found {}", node.type_name()),
                    "",
                );
                return None;
            }
        };
        if items.is_empty() {
            self.warning(
                "command",
                Some(node.location),
                "an empty command means the default `${env} ${interpreter} ${program} ${args}` (as in W&B)",
                "remove `command` to say so explicitly",
            );
            return None;
        }
        let mut template = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("command[{i}]");
            match &item.value {
                NodeValue::Str(s) => template.push(s.clone()),
                NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::Bool(_) => {
                    template.push(command::python_str(&item.to_json()))
                }
                _ => {
                    self.error(
                        &path,
                        Some(item.location),
                        format!("expected a string, found {}", item.type_name()),
                        "",
                    );
                    ok = false;
                }
            }
        }
        let names: Vec<&str> = parameters.iter().map(|p| p.name.as_str()).collect();
        for issue in command::check_template(&template, &names) {
            let loc = items.get(issue.index).map(|n| n.location);
            let path = format!("command[{}]", issue.index);
            let hint = issue.hint.unwrap_or_default();
            if issue.severity == crate::diagnostic::Severity::Error {
                self.error(&path, loc, issue.message, hint);
                ok = false;
            } else {
                self.warning(&path, loc, issue.message, hint);
            }
        }
        if let Some(first) = template.first() {
            if first.contains(' ') && !first.starts_with("${") {
                self.warning(
                    "command[0]",
                    Some(items[0].location),
                    format!("`{first}` is run as one program name, spaces included (no shell splits it)"),
                    "split it into separate list items",
                );
            }
        }
        ok.then_some(template)
    }

    fn parameters(&mut self, node: &Node) -> Vec<Parameter> {
        let mut out = Vec::new();
        self.parameter_block("parameters", node, &[], &[], &mut out);
        // Flattened names must be unique: `a.b` at the top level collides with `b` nested in `a`.
        for i in 0..out.len() {
            if let Some(first) = out[..i].iter().find(|p| p.name == out[i].name) {
                // Named by their key paths, not lines: a config sent as a JSON object has
                // no lines the caller wrote.
                let key_path =
                    |p: &Parameter| format!("parameters.{}", p.path.join(".parameters."));
                let (first_at, at) = (key_path(first), key_path(&out[i]));
                let (name, loc) = (out[i].name.clone(), out[i].location);
                self.error(
                    &at,
                    Some(loc),
                    format!("parameter `{name}` is defined twice, at `{first_at}` and at `{at}`"),
                    "rename one of them",
                );
            }
        }
        out
    }

    fn parameter_block(
        &mut self,
        path: &str,
        node: &Node,
        prefix: &[String],
        inherited: &[Condition],
        out: &mut Vec<Parameter>,
    ) {
        let Some(fields) = self.expect_map(
            path,
            node,
            "`lr: {min: 0.001, max: 0.1}` under `parameters`",
        ) else {
            return;
        };
        if fields.entries.is_empty() {
            self.error(
                path,
                Some(node.location),
                "no parameters are defined",
                "add at least one parameter",
            );
            return;
        }
        // A parameter's field written one level too far left (`min:` under `parameters:`
        // rather than under `lr:`) belongs to the parameter above it, its owner.
        let entries = fields.entries;
        let mut owner: Vec<Option<usize>> = vec![None; entries.len()];
        let mut last = None;
        for (i, (key, spec)) in entries.iter().enumerate() {
            if is_stray_field(key, spec) {
                owner[i] = last;
            } else {
                last = Some(i);
            }
        }
        for (i, (key, spec)) in entries.iter().enumerate() {
            let ppath = join(path, &key.name);
            if is_stray_field(key, spec) {
                self.stray_field(&ppath, key, spec, owner[i].map(|o| &entries[o]));
                continue;
            }
            let following: Vec<&Key> = entries
                .iter()
                .zip(&owner)
                .filter(|(_, o)| **o == Some(i))
                .map(|((k, _), _)| k)
                .collect();
            if !is_valid_param_name(&key.name) {
                self.error(
                    &ppath,
                    Some(key.location),
                    format!("`{}` is not a valid parameter name", key.name),
                    "names start with a letter or `_` and hold only letters, digits, `_`, `.` and `-`",
                );
                continue;
            }
            let mut full = prefix.to_vec();
            full.push(key.name.clone());
            self.parameter(&ppath, &entries[i], full, inherited, &following, out);
        }
    }

    /// One entry `(key, node)` of a parameters block at `path`; `full` is its name path,
    /// `inherited` the conditions of the blocks around it, `following` the fields written
    /// too far left below it (see [`is_stray_field`]).
    fn parameter(
        &mut self,
        path: &str,
        (key, node): &(Key, Node),
        full: Vec<String>,
        inherited: &[Condition],
        following: &[&Key],
        out: &mut Vec<Parameter>,
    ) {
        let Some(fields) = node.as_map().map(|entries| Fields { entries }) else {
            let shown = describe(node);
            self.error(
                path,
                Some(node.location),
                format!("a parameter must be a mapping, found {shown}"),
                hints::not_a_parameter_spec(key, node, following),
            );
            return;
        };
        // Fields written below the parameter but too far left are reported at them; what
        // they would have given is not reported missing here too.
        let mut adopted: Vec<&str> = following.iter().map(|k| k.name.as_str()).collect();
        // `{values: 16, 32}`: in a flow mapping each comma starts a key, so `32` is a key
        // without a value beside a `values` that holds `16` alone. One error at `values`
        // with the list meant; the stray keys are not reported as unknown keys too.
        if let Some(first) = fields.get("values").filter(|v| {
            !matches!(
                v.value,
                NodeValue::Seq(_) | NodeValue::Map(_) | NodeValue::Null
            )
        }) {
            let rest: Vec<&Key> = fields
                .entries
                .iter()
                .filter(|(k, v)| {
                    !PARAM_KEYS.contains(&k.name.as_str()) && matches!(v.value, NodeValue::Null)
                })
                .map(|(k, _)| k)
                .collect();
            if !rest.is_empty() {
                self.error(
                    &join(path, "values"),
                    Some(first.location),
                    format!("expected a list, found {}", describe(first)),
                    hints::split_values(first, &rest),
                );
                return;
            }
        }
        let mut unknown = false;
        let nested = fields
            .entries
            .iter()
            .find(|(k, _)| k.name == "parameters")
            .map(|(k, _)| k);
        for (k, v) in fields.entries {
            if !PARAM_KEYS.contains(&k.name.as_str()) {
                unknown = true;
                // A near miss of a field (`mni: 0.1`) is reported once, here: the field it
                // stands for is not also reported missing.
                adopted.extend(
                    hints::stands_for_parameter_key(k, v).filter(|field| !fields.has(field)),
                );
                let hint = hints::unknown_parameter_key(key, k, v, nested, &fields);
                self.error(
                    &join(path, &k.name),
                    Some(k.location),
                    format!(
                        "unknown key `{}` in the specification of parameter `{}`",
                        k.name, key.name
                    ),
                    hint,
                );
            }
        }
        // `when` holds for the parameter, or for every parameter of its nested block.
        let mut when = inherited.to_vec();
        if let Some(n) = fields.get("when") {
            match self.when(&join(path, "when"), n) {
                Some(own) => when.extend(own),
                None => return,
            }
        }
        if let Some(nested) = fields.get("parameters") {
            for (k, _) in fields.entries {
                if !matches!(k.name.as_str(), "parameters" | "when")
                    && PARAM_KEYS.contains(&k.name.as_str())
                {
                    self.error(
                        &join(path, &k.name),
                        Some(k.location),
                        format!(
                            "`{}` cannot stand beside a nested `parameters` block",
                            k.name
                        ),
                        "a nested block holds only `parameters`",
                    );
                }
            }
            self.parameter_block(&join(path, "parameters"), nested, &full, &when, out);
            return;
        }
        let specified = ["distribution", "value", "values", "min", "max"]
            .iter()
            .any(|k| fields.has(k));
        if unknown && !specified {
            // The unknown key (likely a typo of one of these) is already reported.
            return;
        }
        if let Some(distribution) = self.distribution(path, node, &fields, &adopted) {
            out.push(Parameter {
                name: full.join("."),
                path: full,
                distribution,
                when,
                location: key.location,
            });
        }
    }

    /// Which distribution a spec names, or the one inferred when `distribution` is omitted.
    /// `adopted` are fields written too far left below it (already reported): they are not
    /// reported missing.
    fn distribution(
        &mut self,
        path: &str,
        node: &Node,
        f: &Fields,
        adopted: &[&str],
    ) -> Option<Distribution> {
        let explicit = match f.get("distribution") {
            Some(n) => {
                let name = self.string(&join(path, "distribution"), n)?;
                if !DISTRIBUTIONS.contains(&name.as_str()) {
                    let hint = hints::unknown_distribution(&name, f);
                    self.error(
                        &join(path, "distribution"),
                        Some(n.location),
                        format!("unknown distribution `{name}`"),
                        hint,
                    );
                    return None;
                }
                Some((name, n.location))
            }
            None => None,
        };
        let name = match &explicit {
            Some((name, _)) => name.clone(),
            None => self.infer(path, node, f, adopted)?,
        };
        let allowed: &[&str] = match name.as_str() {
            "constant" => &["value"],
            "categorical" => &["values"],
            "categorical_w_probabilities" => &["values", "probabilities"],
            "int_uniform"
            | "uniform"
            | "log_uniform"
            | "inv_log_uniform"
            | "log_uniform_values"
            | "inv_log_uniform_values" => &["min", "max"],
            "q_uniform" | "q_log_uniform" | "q_log_uniform_values" => &["min", "max", "q"],
            "normal" | "log_normal" => &["mu", "sigma"],
            "q_normal" | "q_log_normal" => &["mu", "sigma", "q"],
            "beta" => &["a", "b"],
            _ => &["a", "b", "q"],
        };
        let mut misplaced = false;
        for (k, _) in f.entries {
            if !matches!(k.name.as_str(), "distribution" | "when")
                && PARAM_KEYS.contains(&k.name.as_str())
                && !allowed.contains(&k.name.as_str())
            {
                let hint = hints::foreign_setting(&k.name, &name, explicit.is_some(), f, allowed);
                self.error(
                    &join(path, &k.name),
                    Some(k.location),
                    format!("`{}` is not a setting of the {name} distribution", k.name),
                    hint,
                );
                misplaced = true;
            }
        }
        if misplaced {
            return None;
        }
        let mut missing = false;
        let required: &[&str] = match name.as_str() {
            "constant" => &["value"],
            "categorical" => &["values"],
            "categorical_w_probabilities" => &["values", "probabilities"],
            n if allowed.contains(&"min") => {
                let _ = n;
                &["min", "max"]
            }
            _ => &[],
        };
        for req in required {
            if !f.has(req) && adopted.contains(req) {
                missing = true;
            } else if !f.has(req) {
                self.error(
                    &join(path, req),
                    Some(node.location),
                    format!("the {name} distribution needs `{req}`"),
                    "",
                );
                missing = true;
            }
        }
        if misplaced || missing {
            return None;
        }
        let dist = self.build(path, &name, node, f)?;
        if matches!(
            name.as_str(),
            "log_uniform" | "inv_log_uniform" | "q_log_uniform"
        ) {
            let (lo, hi) = match &dist {
                Distribution::LogUniform { min, max }
                | Distribution::QLogUniform { min, max, .. } => (min.exp(), max.exp()),
                Distribution::InvLogUniform { min, max } => ((-max).exp(), (-min).exp()),
                _ => (f64::NAN, f64::NAN),
            };
            let loc = explicit.as_ref().map(|(_, l)| *l);
            let suggestion = match name.as_str() {
                "log_uniform" => "log_uniform_values",
                "inv_log_uniform" => "inv_log_uniform_values",
                _ => "q_log_uniform_values",
            };
            let looks_like_values = matches!(&dist,
                Distribution::LogUniform { min, max } | Distribution::QLogUniform { min, max, .. }
                    if *min > 0.0 && *max <= 1.0 && *min < 0.01);
            let message = if looks_like_values {
                format!(
                    "`{name}` bounds are natural-log exponents, so this samples between {} and {}; the bounds look like values",
                    fmt_approx(lo),
                    fmt_approx(hi)
                )
            } else {
                format!(
                    "`{name}` is deprecated: its bounds are natural-log exponents (values from {} to {})",
                    fmt_approx(lo),
                    fmt_approx(hi)
                )
            };
            self.warning(
                &join(path, "distribution"),
                loc,
                message,
                format!("use `{suggestion}` with the values themselves as min and max"),
            );
        }
        Some(dist)
    }

    /// The distribution W&B's schema infers when `distribution` is omitted: `values` with
    /// `probabilities` → categorical_w_probabilities; `values` → categorical; `value` →
    /// constant; `min` and `max` both integers → int_uniform; any other pair of numbers (two
    /// floats, or an integer and a float) → uniform.
    fn infer(&mut self, path: &str, node: &Node, f: &Fields, adopted: &[&str]) -> Option<String> {
        if adopted
            .iter()
            .any(|k| matches!(*k, "values" | "value" | "min" | "max" | "distribution"))
        {
            // What the parameter is depends on its fields written too far left, reported.
            return None;
        }
        if f.has("values") {
            return Some(
                if f.has("probabilities") {
                    "categorical_w_probabilities"
                } else {
                    "categorical"
                }
                .into(),
            );
        }
        if f.has("value") {
            return Some("constant".into());
        }
        match (f.get("min"), f.get("max")) {
            (Some(lo), Some(hi)) => match (&lo.value, &hi.value) {
                (NodeValue::Int(_), NodeValue::Int(_)) => Some("int_uniform".into()),
                (NodeValue::Float(_), NodeValue::Float(_)) => Some("uniform".into()),
                // W&B's schema: an integer and a float bound make a uniform (`{min: 0,
                // max: 0.5}` is a dropout rate, not an error).
                (NodeValue::Int(_), NodeValue::Float(_))
                | (NodeValue::Float(_), NodeValue::Int(_)) => Some("uniform".into()),
                _ => {
                    // Let the type check of the bounds report it.
                    let _ = self.number(&join(path, "min"), lo);
                    let _ = self.number(&join(path, "max"), hi);
                    None
                }
            },
            (Some(_), None) | (None, Some(_)) => {
                let missing = if f.has("min") { "max" } else { "min" };
                self.error(
                    &join(path, missing),
                    Some(node.location),
                    format!("`{missing}` is missing"),
                    "a range needs both `min` and `max`",
                );
                None
            }
            (None, None) => {
                let hint = if f.has("mu") || f.has("sigma") || f.has("a") || f.has("q") {
                    "set `distribution` (e.g. `normal`, `beta`, `q_uniform`)"
                } else {
                    "give `values: [...]`, `value: ...`, or `min` and `max`"
                };
                self.error(
                    path,
                    Some(node.location),
                    "the parameter has no values, value or range",
                    hint,
                );
                None
            }
        }
    }

    fn quantum(&mut self, path: &str, f: &Fields) -> Option<Quantum> {
        let Some(n) = f.get("q") else {
            // W&B's schema default is the float 1.0, so values are floats (`3.0`), as in W&B.
            return Some(Quantum {
                q: 1.0,
                integer: false,
            });
        };
        let q = self.number(&join(path, "q"), n)?;
        if q <= 0.0 {
            self.error(
                &join(path, "q"),
                Some(n.location),
                format!("q must be greater than 0, found {}", fmt_num(q)),
                "q is the step values are rounded to",
            );
            return None;
        }
        Some(Quantum {
            q,
            integer: matches!(n.value, NodeValue::Int(_)),
        })
    }

    fn bounds(&mut self, path: &str, f: &Fields, positive: bool) -> Option<(f64, f64)> {
        let lo_node = f.get("min")?;
        let hi_node = f.get("max")?;
        let lo = self.number(&join(path, "min"), lo_node);
        let hi = self.number(&join(path, "max"), hi_node);
        let (lo, hi) = (lo?, hi?);
        if positive && lo <= 0.0 {
            self.error(
                &join(path, "min"),
                Some(lo_node.location),
                format!("min must be greater than 0 for a log scale, found {}", fmt_num(lo)),
                "log-scale bounds are the values themselves; pick a small positive min such as 1e-6",
            );
            return None;
        }
        if lo > hi {
            self.error(
                &join(path, "min"),
                Some(lo_node.location),
                format!(
                    "min ({}) is greater than max ({})",
                    fmt_num(lo),
                    fmt_num(hi)
                ),
                "swap min and max",
            );
            return None;
        }
        if !(hi - lo).is_finite() {
            self.error(
                path,
                f.get("max").map(|n| n.location),
                "the range is too wide to sample (max - min overflows)",
                "narrow the range",
            );
            return None;
        }
        if lo == hi {
            self.warning(
                &join(path, "max"),
                Some(hi_node.location),
                "min equals max: the parameter takes a single value",
                "use `value:` for a constant",
            );
        }
        Some((lo, hi))
    }

    /// Bounds that are natural-log exponents must keep `exp` finite.
    fn exponent_bounds(&mut self, path: &str, f: &Fields) -> Option<(f64, f64)> {
        let (lo, hi) = self.bounds(path, f, false)?;
        for (key, x) in [("min", lo), ("max", hi)] {
            if x.abs() > 700.0 {
                self.error(
                    &join(path, key),
                    f.get(key).map(|n| n.location),
                    format!(
                        "{key} is a natural-log exponent; e^{} is out of range",
                        fmt_num(x)
                    ),
                    "exponents between -700 and 700 only; did you mean the `_values` distribution?",
                );
                return None;
            }
        }
        Some((lo, hi))
    }

    fn shape(
        &mut self,
        path: &str,
        f: &Fields,
        key: &str,
        default: f64,
        positive: bool,
    ) -> Option<f64> {
        let Some(n) = f.get(key) else {
            return Some(default);
        };
        let x = self.number(&join(path, key), n)?;
        if positive && x <= 0.0 {
            self.error(
                &join(path, key),
                Some(n.location),
                format!("`{key}` must be greater than 0, found {}", fmt_num(x)),
                "",
            );
            return None;
        }
        Some(x)
    }

    fn build(&mut self, path: &str, name: &str, node: &Node, f: &Fields) -> Option<Distribution> {
        use Distribution as D;
        Some(match name {
            "constant" => {
                let value = f.get("value")?;
                // `value: [adam, sgd]`, a slip for `values`: W&B passes the whole list to every
                // run, and so does hyperdial; said, since it is rarely what was meant.
                if let NodeValue::Seq(items) = &value.value {
                    if items.len() > 1 {
                        self.warning(
                            &join(path, "value"),
                            Some(value.location),
                            format!(
                                "`value` holds a list of {}: every run gets the whole list as \
                                 one constant value",
                                items.len()
                            ),
                            "to search over the items, write `values:` (plural); to pass the \
                             list as one value, leave it",
                        );
                    }
                }
                D::Constant {
                    value: value.to_json(),
                }
            }
            "categorical" => D::Categorical {
                values: self.values(path, f)?,
            },
            "categorical_w_probabilities" => {
                let values = self.values(path, f);
                let probabilities = self.probabilities(path, f, values.as_ref().map(Vec::len));
                D::CategoricalWithProbabilities {
                    values: values?,
                    probabilities: probabilities?,
                }
            }
            "int_uniform" => {
                let lo_node = f.get("min")?;
                let hi_node = f.get("max")?;
                let fraction = "int_uniform draws integers; for bounds that are not integers use `distribution: uniform` (or `q_uniform` with a `q` step)";
                let lo = self.integer_or(&join(path, "min"), lo_node, fraction);
                let hi = self.integer_or(&join(path, "max"), hi_node, fraction);
                let (min, max) = (lo?, hi?);
                if min > max {
                    self.error(
                        &join(path, "min"),
                        Some(lo_node.location),
                        format!("min ({min}) is greater than max ({max})"),
                        "swap min and max",
                    );
                    return None;
                }
                if min == max {
                    self.warning(
                        &join(path, "max"),
                        Some(hi_node.location),
                        "min equals max: the parameter takes a single value",
                        "use `value:` for a constant",
                    );
                } else if max.checked_sub(min) == Some(1) && !f.has("distribution") {
                    // `{min: 0, max: 1}` meant as a rate is the classic slip: W&B's schema
                    // (and ours) reads two integer bounds as int_uniform.
                    self.warning(
                        path,
                        Some(lo_node.location),
                        format!(
                            "min {min} and max {max} are both integers, so this is int_uniform: it takes only the values {min} and {max} (as in W&B)"
                        ),
                        format!(
                            "for a real number between them write `min: {min}.0` (or `distribution: uniform`); to choose between the two say so with `values: [{min}, {max}]`"
                        ),
                    );
                }
                D::IntUniform { min, max }
            }
            "uniform" => {
                let (min, max) = self.bounds(path, f, false)?;
                D::Uniform { min, max }
            }
            "q_uniform" => {
                let b = self.bounds(path, f, false);
                let q = self.quantum(path, f);
                let ((min, max), q) = (b?, q?);
                self.multiple_inside(path, f, min, max, q)?;
                D::QUniform { min, max, q }
            }
            "log_uniform" => {
                let (min, max) = self.exponent_bounds(path, f)?;
                D::LogUniform { min, max }
            }
            "inv_log_uniform" => {
                let (min, max) = self.exponent_bounds(path, f)?;
                D::InvLogUniform { min, max }
            }
            "q_log_uniform" => {
                let b = self.exponent_bounds(path, f);
                let q = self.quantum(path, f);
                let ((min, max), q) = (b?, q?);
                self.multiple_inside(path, f, min.exp(), max.exp(), q)?;
                D::QLogUniform { min, max, q }
            }
            "log_uniform_values" => {
                let (min, max) = self.bounds(path, f, true)?;
                D::LogUniformValues { min, max }
            }
            "inv_log_uniform_values" => {
                let (min, max) = self.bounds(path, f, true)?;
                D::InvLogUniformValues { min, max }
            }
            "q_log_uniform_values" => {
                let b = self.bounds(path, f, true);
                let q = self.quantum(path, f);
                let ((min, max), q) = (b?, q?);
                self.multiple_inside(path, f, min, max, q)?;
                D::QLogUniformValues { min, max, q }
            }
            "normal" | "log_normal" | "q_normal" | "q_log_normal" => {
                let mu = self.shape(path, f, "mu", 0.0, false);
                let sigma = self.shape(path, f, "sigma", 1.0, true);
                let q = if name.starts_with("q_") {
                    self.quantum(path, f)
                } else {
                    Some(Quantum::default())
                };
                let (mu, sigma, q) = (mu?, sigma?, q?);
                match name {
                    "normal" => D::Normal { mu, sigma },
                    "log_normal" => D::LogNormal { mu, sigma },
                    "q_normal" => D::QNormal { mu, sigma, q },
                    _ => D::QLogNormal { mu, sigma, q },
                }
            }
            "beta" | "q_beta" => {
                let a = self.shape(path, f, "a", 1.0, true);
                let b = self.shape(path, f, "b", 1.0, true);
                let q = if name == "q_beta" {
                    self.quantum(path, f)
                } else {
                    Some(Quantum::default())
                };
                let (a, b, q) = (a?, b?, q?);
                if name == "q_beta" {
                    self.multiple_inside(path, f, 0.0, 1.0, q)?;
                }
                if name == "beta" {
                    D::Beta { a, b }
                } else {
                    D::QBeta { a, b, q }
                }
            }
            _ => {
                self.error(
                    path,
                    Some(node.location),
                    format!("unknown distribution `{name}`"),
                    "",
                );
                return None;
            }
        })
    }

    /// A bounded quantized distribution needs at least one multiple of `q` in its value range.
    fn multiple_inside(
        &mut self,
        path: &str,
        f: &Fields,
        lo: f64,
        hi: f64,
        q: Quantum,
    ) -> Option<()> {
        let lo_k = (lo / q.q - 1e-9).ceil();
        let hi_k = (hi / q.q + 1e-9).floor();
        if lo_k <= hi_k {
            return Some(());
        }
        self.error(
            &join(path, "q"),
            f.get("q")
                .map(|n| n.location)
                .or_else(|| f.get("max").map(|n| n.location)),
            format!(
                "no multiple of q = {} lies between {} and {}",
                fmt_num(q.q),
                fmt_approx(lo),
                fmt_approx(hi)
            ),
            "widen the range or use a smaller q (q defaults to 1)",
        );
        None
    }

    fn values(&mut self, path: &str, f: &Fields) -> Option<Vec<Value>> {
        let n = f.get("values")?;
        let vpath = join(path, "values");
        let NodeValue::Seq(items) = &n.value else {
            self.error(
                &vpath,
                Some(n.location),
                format!("expected a list, found {}", describe(n)),
                hints::not_a_list(n),
            );
            return None;
        };
        if items.is_empty() {
            self.error(
                &vpath,
                Some(n.location),
                "`values` is empty",
                "list at least one value",
            );
            return None;
        }
        let values: Vec<Value> = items.iter().map(Node::to_json).collect();
        let keys: Vec<String> = values.iter().map(crate::grid::grid_key).collect();
        for (i, v) in values.iter().enumerate() {
            if keys[..i].contains(&keys[i]) {
                self.warning(
                    &format!("{vpath}[{i}]"),
                    Some(items[i].location),
                    format!("duplicate value {v}"),
                    "a grid runs each distinct configuration once, but random and bayes search pick this value more often",
                );
            }
        }
        Some(values)
    }

    fn probabilities(&mut self, path: &str, f: &Fields, count: Option<usize>) -> Option<Vec<f64>> {
        let n = f.get("probabilities")?;
        let ppath = join(path, "probabilities");
        let NodeValue::Seq(items) = &n.value else {
            self.error(
                &ppath,
                Some(n.location),
                format!("expected a list of numbers, found {}", describe(n)),
                "",
            );
            return None;
        };
        // Every entry is checked and the count too, so one run of `validate` lists every
        // fault of the list; the sum is judged only when the entries are all valid.
        let mut probs = Vec::with_capacity(items.len());
        let mut valid = true;
        for (i, item) in items.iter().enumerate() {
            let Some(p) = self.number(&format!("{ppath}[{i}]"), item) else {
                valid = false;
                continue;
            };
            if p < 0.0 {
                self.error(
                    &format!("{ppath}[{i}]"),
                    Some(item.location),
                    format!("a probability cannot be negative, found {}", fmt_num(p)),
                    "",
                );
                valid = false;
            }
            probs.push(p);
        }
        if let Some(count) = count {
            if count != items.len() {
                self.error(
                    &ppath,
                    Some(n.location),
                    format!("{} probabilities for {count} values", items.len()),
                    "give exactly one probability per value",
                );
                valid = false;
            }
        }
        if !valid {
            return None;
        }
        let sum: f64 = probs.iter().sum();
        // W&B's tolerance: numpy's `isclose(sum, 1)` (relative 1e-5, absolute 1e-8).
        if (sum - 1.0).abs() > 1e-8 + 1e-5 {
            self.error(
                &ppath,
                Some(n.location),
                format!("the probabilities sum to {}, not 1", fmt_num(sum)),
                "adjust them so they add up to exactly 1",
            );
            return None;
        }
        Some(probs)
    }

    fn check_grid(&mut self, parameters: &[Parameter]) {
        for p in parameters {
            if p.distribution.grid_len().is_none() {
                let hint = if matches!(
                    p.distribution,
                    Distribution::CategoricalWithProbabilities { .. }
                ) {
                    "probabilities have no meaning in a grid; remove `probabilities`".to_string()
                } else {
                    "list the values to try (`values: [...]`), use int_uniform or q_uniform, or use `method: random` or `bayes`".to_string()
                };
                self.error(
                    &format!("parameters.{}", p.name),
                    Some(p.location),
                    format!(
                        "grid search needs a finite set of values, but `{}` is {} (continuous)",
                        p.name,
                        p.distribution.name()
                    ),
                    hint,
                );
            }
        }
        if parameters
            .iter()
            .all(|p| p.distribution.grid_len().is_some())
            && crate::grid::grid_size(parameters) == Err(crate::grid::GridError::TooLarge)
        {
            // Every axis is finite, but their product does not fit in 128 bits: no run of it
            // could ever be numbered, let alone finish.
            let widest = parameters
                .iter()
                .max_by_key(|p| p.distribution.grid_len().unwrap_or(0));
            if let Some(p) = widest {
                self.error(
                    &format!("parameters.{}", p.name),
                    Some(p.location),
                    format!(
                        "the grid has more than 2^128 configurations; `{}` alone has {} values",
                        p.name,
                        p.distribution.grid_len().unwrap_or(0)
                    ),
                    "narrow the ranges (list the values to try with `values: [...]`), or use \
                     `method: random`, `bayes` or `tpe`, which sample the space instead of \
                     enumerating it",
                );
            }
        }
    }
}

/// A node for messages: its type and, for scalars, its value.
fn describe(node: &Node) -> String {
    match &node.value {
        NodeValue::Str(s) => format!("the string \"{s}\""),
        NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::Bool(_) => {
            format!(
                "{} {}",
                node.type_name(),
                command::python_str(&node.to_json()).to_lowercase()
            )
        }
        _ => node.type_name().to_string(),
    }
}

/// Format a derived number to four significant digits (`4.997e-05`, `0.05004`).
fn fmt_approx(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return fmt_num(x);
    }
    let digits = 3 - x.abs().log10().floor() as i32;
    if (-4..=15).contains(&(x.abs().log10().floor() as i32)) {
        let scale = 10f64.powi(digits);
        fmt_num((x * scale).round() / scale)
    } else {
        format!("{x:.3e}")
    }
}

/// Format a number compactly for messages (`0.001`, `1e-05`, `3`).
fn fmt_num(x: f64) -> String {
    command::python_str(&Value::from(x))
        .trim_end_matches(".0")
        .to_string()
}

mod budget;
mod hints;
#[cfg(test)]
mod hints_tests;
mod lineage;
#[cfg(test)]
mod objectives_tests;
mod retry;
#[cfg(test)]
mod tests;
mod when;
