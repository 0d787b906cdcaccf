//! Hints: what a diagnostic of a sweep file suggests doing, beside what it says is wrong.
//!
//! The validator (`parse.rs` and its other submodules) decides what is wrong; this module
//! words the fix. What it guarantees:
//!
//! - **No say over validity.** Nothing here decides whether a config is valid, nor an error's
//!   path, location or message (except the two reports it makes whole, an unknown key and a
//!   parameter field written where a parameter goes, whose errors the validator asks for);
//!   the functions that word a hint only return text for an error already decided.
//! - **Suggestions are writable.** A `did you mean` names only a word of the list allowed at
//!   that place (the closest by Jaro-Winkler similarity of at least 0.8,
//!   [`crate::diagnostic::did_you_mean`]), and a distribution suggested for a foreign name
//!   (Optuna's and Ray Tune's `loguniform`, `randint`, `choice`, `randn`) is one of ours.
//!   Without a close word the hint lists the allowed ones, or says what to write instead.
//!   A key of Optuna's or Ray Tune's vocabulary (`direction`, `low`, `high`, `log`, `step`,
//!   `choices`, `type: int|float|categorical`) is told the sweep file's way to say it, when
//!   that key belongs at that place; at the top level, `direction`/`mode` are told to move
//!   under `metric:` as `goal`, `n_trials`/`num_samples` are `run_cap`, `timeout` is
//!   `budget: {wall_time: ...}`, each with the value given.
//! - **Mis-indented fields name the line to fix.** A parameter's field written one level too
//!   far left (`min:` beside the parameter instead of under it) is reported once, at the
//!   field, with the line of the parameter to indent it under ([`is_stray_field`]); a key
//!   inside a parameter that is a parameter of its own is told where to indent it.
//! - **Type errors say the one-token fix** when there is one: a number or boolean in quotes
//!   (`"0.1"`, `"yes"`) is told to drop the quotes, a scalar where a list goes is shown as a
//!   list (a string with commas as the list of its items), a float where an integer goes
//!   gets the caller's fix.
//! - **A metric read the wrong way is warned.** A metric left to the default goal
//!   (`minimize`) whose name has a higher-is-better word ([`higher_is_better`]) gets a
//!   warning, never an error; numbered objectives (`f1`, `f2`: [`numbered_names`]) do not.
//! - **Deterministic and short.** The same config gives the same hints; values shown back are
//!   cut at 40 characters ([`yaml_snippet`]).

use super::{describe, join, Fields, Validator, DISTRIBUTIONS, PARAM_KEYS};
use crate::diagnostic::did_you_mean;
use crate::yaml::{Key, Node, NodeValue};

/// `did you mean `X`?` for the word of `known` closest to `typed`, else `otherwise()`.
pub(super) fn did_you_mean_or(
    typed: &str,
    known: &[&str],
    otherwise: impl FnOnce() -> String,
) -> String {
    match did_you_mean(typed, known) {
        Some(s) => format!("did you mean `{s}`?"),
        None => otherwise(),
    }
}

impl Validator {
    /// Report an unknown key (`value` is its value, for a hint that repeats it in our words);
    /// returns the known key it is a near miss of, if any, so that a required key it stands
    /// for is not also reported missing (one error per mistake).
    pub(super) fn unknown_key(
        &mut self,
        path: &str,
        key: &Key,
        value: &Node,
        known: &[&str],
        context: &str,
    ) -> Option<String> {
        let top = if path.is_empty() {
            foreign_top_key(&key.name, value)
        } else {
            None
        };
        let foreign = foreign_key(&key.name, value, known);
        let suggestion = match &top {
            Some((ours, _)) => *ours,
            None => foreign
                .as_ref()
                .map(|(ours, _)| *ours)
                .or_else(|| did_you_mean(&key.name, known)),
        };
        let hint = match suggestion {
            _ if top.is_some() => top.map(|(_, hint)| hint).unwrap_or_default(),
            _ if path.is_empty() && key.name == "count" => {
                "`count` is an agent option (`hyperdial agent SWEEP --count N`); use `run_cap` to cap the sweep".into()
            }
            _ if foreign.is_some() => foreign.map(|(_, hint)| hint).unwrap_or_default(),
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the keys allowed {context} are: {}", known.join(", ")),
        };
        self.error(
            &join(path, &key.name),
            Some(key.location),
            format!("unknown key `{}`", key.name),
            hint,
        );
        suggestion.map(str::to_string)
    }

    /// Report a parameter field found where a parameter goes (see [`is_stray_field`]),
    /// with the fix: indent it under `owner`, the parameter above it. A field whose owner
    /// has nothing under it (`hidden:` then `values:` on the next line, as far left) is
    /// reported with the owner instead, once for them all.
    pub(super) fn stray_field(
        &mut self,
        path: &str,
        key: &Key,
        node: &Node,
        owner: Option<&(Key, Node)>,
    ) {
        let name = &key.name;
        let as_constant = format!(
            "write `{name}: {{value: {}}}` for a parameter of that name",
            yaml_snippet(node)
        );
        let hint = match owner {
            Some((_, spec)) if matches!(spec.value, NodeValue::Null) => return,
            Some((o, spec)) => {
                let also = match spec.as_map() {
                    Some(m) if m.iter().any(|(k, _)| &k.name == name) => {
                        format!("; or, if `{name}` is a parameter of its own, {as_constant}")
                    }
                    _ => String::new(),
                };
                format!(
                    "`{name}` is a field of a parameter, not a parameter: indent `{name}:` under `{}:` (line {}){also}",
                    o.name, o.location.line
                )
            }
            None => format!(
                "`{name}` is a field of a parameter, not a parameter: indent it under the parameter it belongs to, or {as_constant}"
            ),
        };
        let message = match node.value {
            NodeValue::Map(_) => {
                "a nested `parameters` block must be the field of a parameter".to_string()
            }
            _ => format!("a parameter must be a mapping, found {}", describe(node)),
        };
        self.error(path, Some(node.location), message, hint);
    }
}

/// The hint for a value that is not a number: drop the quotes of a quoted number.
pub(super) fn not_a_number(node: &Node) -> &'static str {
    match &node.value {
        NodeValue::Str(s) if s.trim().parse::<f64>().is_ok() => UNQUOTE_NUMBER,
        _ => "",
    }
}

/// The hint for a value that is not an integer: drop the quotes of a quoted integer;
/// `fraction_hint` (the caller's, since the fix depends on what the integer is for) for a
/// number with a fractional part.
pub(super) fn not_an_integer<'a>(node: &Node, fraction_hint: &'a str) -> &'a str {
    match &node.value {
        NodeValue::Str(s) if s.trim().parse::<i64>().is_ok() => UNQUOTE_NUMBER,
        NodeValue::Float(_) => fraction_hint,
        _ => "",
    }
}

/// The hint for a value that is not `true` or `false`: a string is told which one to write
/// without quotes (`"yes"` → `true`).
pub(super) fn not_a_boolean(node: &Node) -> &'static str {
    match &node.value {
        NodeValue::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" => "write `true` without quotes",
            "false" | "no" | "off" | "n" => "write `false` without quotes",
            _ => "write `true` or `false` without quotes",
        },
        _ => "",
    }
}

/// The hint for `values` that is not a list: the value written as one. A string with commas
/// (`16, 32`) is shown as the list of its items (`[16, 32]`), numbers left as numbers.
pub(super) fn not_a_list(node: &Node) -> String {
    match &node.value {
        NodeValue::Str(s) if s.contains(',') => {
            let items: Vec<String> = s
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(flow_item)
                .collect();
            format!("write a list, e.g. `values: [{}]`", items.join(", "))
        }
        _ => format!("write a list, e.g. `values: [{}]`", yaml_snippet(node)),
    }
}

/// The hint for `{values: 16, 32}`: in a flow mapping each comma starts a key, so the items
/// after the first (`rest`, keys with no value) left `values` holding the first alone.
pub(super) fn split_values(first: &Node, rest: &[&Key]) -> String {
    let mut items = vec![match &first.value {
        NodeValue::Str(s) => flow_item(s),
        _ => yaml_snippet(first),
    }];
    items.extend(rest.iter().map(|k| flow_item(&k.name)));
    let keys = rest
        .iter()
        .map(|k| format!("`{}`", k.name))
        .collect::<Vec<_>>()
        .join(", ");
    let became = if rest.len() == 1 {
        "became a key of its own"
    } else {
        "became keys of their own"
    };
    format!(
        "inside `{{...}}` each comma starts a new key, so {keys} {became}: write `values: [{}]`",
        items.join(", ")
    )
}

/// One item of a list written in flow style: as is when YAML reads it as the number or word
/// it shows (`16`, `1e-3`, `adam`, `relu_6`), else in double quotes.
fn flow_item(item: &str) -> String {
    let plain = item.parse::<f64>().is_ok()
        || (item.chars().next().is_some_and(char::is_alphabetic)
            && item
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')));
    if plain {
        item.to_string()
    } else {
        serde_json::Value::from(item).to_string()
    }
}

/// Words of a metric's name that say higher is better (an accuracy, a score, a reward), for
/// the warning on a metric left to the default goal, `minimize` ([`higher_is_better`]).
const HIGHER_IS_BETTER: &[&str] = &[
    "acc",
    "accuracy",
    "auc",
    "auroc",
    "auprc",
    "bleu",
    "dice",
    "f1",
    "iou",
    "map",
    "ndcg",
    "precision",
    "psnr",
    "r2",
    "recall",
    "return",
    "reward",
    "rouge",
    "score",
    "ssim",
];

/// Words of a metric's name that say lower is better; a name with one of them (`score_loss`)
/// gets no warning.
const LOWER_IS_BETTER: &[&str] = &[
    "loss",
    "error",
    "err",
    "mse",
    "mae",
    "rmse",
    "perplexity",
    "ppl",
    "regret",
    "cost",
];

/// Whether metric `name` reads as higher-is-better: one of its words (split on `_`, `/`, `.`,
/// `-`, any case) is in [`HIGHER_IS_BETTER`] and none is in [`LOWER_IS_BETTER`].
pub(super) fn higher_is_better(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(['_', '/', '.', '-'])
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().any(|w| HIGHER_IS_BETTER.contains(w))
        && !words.iter().any(|w| LOWER_IS_BETTER.contains(w))
}

/// Whether `names` (two or more) are one word numbered (`f1`, `f2`; `obj_1`, `obj_2`): the
/// objectives of a multi-objective test problem, whose `f1` is no F1 score.
pub(super) fn numbered_names(names: &[&str]) -> bool {
    fn split(name: &str) -> Option<&str> {
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
        (stem.len() < name.len() && !stem.is_empty()).then(|| stem.trim_end_matches(['_', '-']))
    }
    let Some(first) = names.first().and_then(|n| split(n)) else {
        return false;
    };
    names.len() >= 2 && names.iter().all(|n| split(n) == Some(first))
}

/// The hint for Optuna's `type: VALUE` in a parameter's specification `f`: the sweep file's
/// way to say it (`int` is an `int_uniform` distribution, `float` a `uniform` one or, with
/// `log: true`, a `log_uniform_values` one, `categorical` a `values` list); `None` for
/// another value.
fn optuna_type(value: &Node, f: &Fields) -> Option<String> {
    let NodeValue::Str(t) = &value.value else {
        return None;
    };
    let log = matches!(f.get("log").map(|n| &n.value), Some(NodeValue::Bool(true)));
    let hint = match (t.trim().to_ascii_lowercase().as_str(), log) {
        ("int", false) => "write `distribution: int_uniform` with `min` and `max`".to_string(),
        ("int", true) => "write `distribution: q_log_uniform_values` with `q: 1`, `min` and `max` (an integer on a log scale)".to_string(),
        ("float", false) => "write `distribution: uniform` with `min` and `max`".to_string(),
        ("float", true) => "write `distribution: log_uniform_values` with `min` and `max` (the values themselves)".to_string(),
        ("categorical", _) => match f.get("choices") {
            Some(c) if matches!(c.value, NodeValue::Seq(_)) => {
                format!("write the choices as `values: {}`", yaml_snippet(c))
            }
            _ => "write the choices as `values: [...]`".to_string(),
        },
        _ => return None,
    };
    Some(format!("`type: {t}` is Optuna's: {hint}"))
}

/// The values of Optuna's `type: int` with integer `low`, `high` and `step` in specification
/// `f`, written as a YAML list (`[1, 3, 5, 7]`: `low`, `low + step`, … up to `high`), when
/// there are 2 to [`MAX_STEPS_LISTED`] of them; `None` otherwise.
fn optuna_int_steps(f: &Fields) -> Option<String> {
    let int = |key: &str| match f.get(key).map(|n| &n.value) {
        Some(NodeValue::Int(i)) => Some(*i),
        _ => None,
    };
    let is_int = matches!(
        f.get("type").map(|n| &n.value),
        Some(NodeValue::Str(t)) if t.trim().eq_ignore_ascii_case("int")
    );
    let (low, high, step) = (int("low")?, int("high")?, int("step")?);
    if !is_int || step <= 0 || high <= low {
        return None;
    }
    let count = (high - low) / step + 1;
    if !(2..=MAX_STEPS_LISTED).contains(&count) {
        return None;
    }
    let items: Vec<String> = (0..count).map(|k| (low + k * step).to_string()).collect();
    Some(format!("[{}]", items.join(", ")))
}

/// The most values [`optuna_int_steps`] writes out as a list.
const MAX_STEPS_LISTED: i64 = 32;

/// The hint for parameter `key` whose specification `node` is not a mapping: when it is
/// empty and `following` are its fields written too far left below it, indent them under
/// it; else how to write a constant or a choice.
pub(super) fn not_a_parameter_spec(key: &Key, node: &Node, following: &[&Key]) -> String {
    match (&node.value, following) {
        (NodeValue::Null, [_, ..]) => {
            let listed: Vec<String> = following
                .iter()
                .map(|k| format!("`{}:` (line {})", k.name, k.location.line))
                .collect();
            format!(
                "its fields are not indented under it: indent {} under `{}:`",
                and_list(&listed),
                key.name
            )
        }
        _ => format!(
            "write `{}: {{value: {}}}` for a constant or `{{values: [...]}}` for a choice",
            key.name,
            yaml_snippet(node)
        ),
    }
}

/// The field of a parameter's specification that the unknown key `k` (its value `v`) stands
/// for, when it is a near miss of one or another tool's word for one (`mni` or `low` for
/// `min`): the field is then not also reported missing (one error per mistake).
pub(super) fn stands_for_parameter_key(k: &Key, v: &Node) -> Option<&'static str> {
    foreign_key(&k.name, v, PARAM_KEYS)
        .map(|(ours, _)| ours)
        .or_else(|| did_you_mean(&k.name, PARAM_KEYS))
}

/// The hint for key `k` (its value `v`) unknown in the specification `f` of parameter `key`,
/// whose nested `parameters` key is `nested`: Optuna's `type` is told the sweep file's word
/// ([`optuna_type`]); a mapping beside a nested block belongs in it;
/// else a near miss of a field; else it is a parameter of its own, to line up with `key`.
pub(super) fn unknown_parameter_key(
    key: &Key,
    k: &Key,
    v: &Node,
    nested: Option<&Key>,
    f: &Fields,
) -> String {
    if matches!(k.name.as_str(), "type" | "low" | "high" | "step") {
        if let Some(values) = optuna_int_steps(f) {
            return format!(
                "Optuna's `type: int` with `low`, `high` and `step` is the list `values: {values}` here (steps counted from `low`)"
            );
        }
    }
    if let Some((_, hint)) = foreign_key(&k.name, v, PARAM_KEYS) {
        return hint;
    }
    if k.name == "type" {
        if let Some(hint) = optuna_type(v, f) {
            return hint;
        }
    }
    match did_you_mean(&k.name, PARAM_KEYS) {
        // A parameter beside a nested block rather than in it.
        _ if nested.is_some() && v.as_map().is_some() => {
            let p = nested.map_or(0, |p| p.location.line);
            format!(
                "if `{}` is one of the nested parameters of `{}`, indent it under `parameters:` (line {p})",
                k.name, key.name
            )
        }
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "if `{}` is a parameter of its own, indent it to line up with `{}`",
            k.name, key.name
        ),
    }
}

/// Keys of Optuna's and Ray Tune's search-space and study vocabularies, with the key of a
/// W&B sweep file that says the same (when it is one of the keys `known` at that place) and
/// the hint that says how to write it: `direction` is `goal`, `low`/`high` are `min`/`max`,
/// `log: true` is a `log_uniform_values` distribution, `step` is `q`, `choices` is `values`.
/// `value` is the key's value: `direction: maximize` and `mode: max` are told exactly
/// `goal: maximize` ([`goal_of`]).
fn foreign_key(typed: &str, value: &Node, known: &[&str]) -> Option<(&'static str, String)> {
    const LOG: &str = "a log scale is a distribution here, as in W&B: `distribution: log_uniform_values` with `min` and `max` the values themselves (`int` values: `q_log_uniform_values` with `q: 1`)";
    let goal = || match goal_of(value) {
        Some(goal) => format!("`goal: {goal}`"),
        None => "`goal: minimize` or `goal: maximize`".to_string(),
    };
    let (ours, hint) = match typed {
        "direction" => ("goal", format!("`direction` is Optuna's word: a sweep file writes {}", goal())),
        "mode" => ("goal", format!("`mode` is Ray Tune's word: a sweep file writes {}", goal())),
        "low" | "lower" => ("min", format!("did you mean `min`? (`{typed}` is Optuna's and Ray Tune's word for it)")),
        "high" | "upper" => ("max", format!("did you mean `max`? (`{typed}` is Optuna's and Ray Tune's word for it)")),
        "log" => ("distribution", LOG.to_string()),
        "step" => ("q", "a step is `q` here, with a quantized distribution: `distribution: q_uniform` and `q: STEP` (multiples of q)".to_string()),
        "choices" => ("values", "did you mean `values`? (`choices` is Optuna's word for a categorical's list)".to_string()),
        _ => return None,
    };
    known.contains(&ours).then_some((ours, hint))
}

/// Study-level keys of Optuna and Ray Tune written at the top of a sweep file, with the key of
/// the sweep file they stand for (when that key is one the top level allows) and the hint:
/// `direction: maximize` and `mode: max` belong under `metric:` as `goal: maximize`;
/// `n_trials: N` and `num_samples: N` are `run_cap: N`; `timeout: S` (seconds) is
/// `budget: {wall_time: S}`.
fn foreign_top_key(typed: &str, value: &Node) -> Option<(Option<&'static str>, String)> {
    let goal = || match goal_of(value) {
        Some(goal) => format!("`goal: {goal}`"),
        None => "`goal: minimize` or `goal: maximize`".to_string(),
    };
    let shown = |fallback: &str| match &value.value {
        NodeValue::Int(_) | NodeValue::Float(_) => yaml_snippet(value),
        _ => fallback.to_string(),
    };
    Some(match typed {
        "direction" => (
            None,
            format!(
                "`direction` is Optuna's study direction: move it under `metric:` as {}",
                goal()
            ),
        ),
        "mode" => (
            None,
            format!("`mode` is Ray Tune's: move it under `metric:` as {}", goal()),
        ),
        "n_trials" | "num_samples" => (
            Some("run_cap"),
            format!(
                "`{typed}` is {}'s word: a sweep file caps its runs with `run_cap: {}`",
                if typed == "n_trials" { "Optuna" } else { "Ray Tune" },
                shown("N")
            ),
        ),
        "timeout" => (
            Some("budget"),
            format!(
                "a time limit is a budget here: `budget: {{wall_time: {}}}` (seconds, or a number with `s`, `m`, `h`, `d`)",
                shown("6h")
            ),
        ),
        _ => return None,
    })
}

/// The goal a value of Optuna's `direction` or Ray Tune's `mode` means: `maximize` for
/// `maximize` or `max` (any case, British spelling too), `minimize` for `minimize` or `min`;
/// `None` for anything else.
pub(super) fn goal_of(value: &Node) -> Option<&'static str> {
    let NodeValue::Str(s) = &value.value else {
        return None;
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "maximize" | "maximise" | "max" => Some("maximize"),
        "minimize" | "minimise" | "min" => Some("minimize"),
        _ => None,
    }
}

/// The hint for `distribution: NAME` that is not one of ours ([`suggest_distribution`]): the
/// distribution meant, with what its min and max are on a log scale; a value written in place
/// of the name; else the names allowed.
pub(super) fn unknown_distribution(name: &str, f: &Fields) -> String {
    match suggest_distribution(name, f) {
        Some(s) if s.ends_with("log_uniform_values") => format!(
            "did you mean `{s}`? Its min and max are the values themselves (`{}` takes natural-log exponents)",
            s.trim_end_matches("_values")
        ),
        Some(s) if s.ends_with("log_uniform") => format!(
            "did you mean `{s}`? Its min and max are natural-log exponents (a min of 0 or below cannot be a value on a log scale)"
        ),
        Some(s) => format!("did you mean `{s}`?"),
        None if f.has("values") || f.has("value") => {
            "a value was written in place of the distribution name; use `constant` or `categorical`".into()
        }
        None => format!("use one of: {}", DISTRIBUTIONS.join(", ")),
    }
}

/// The hint for field `field` of a parameter that distribution `name` does not take
/// (`allowed` are the ones it takes; `explicit`: `distribution` was written, not inferred):
/// drop the distribution for a choice or a constant, use the quantized distribution for `q`,
/// else the fields it takes.
pub(super) fn foreign_setting(
    field: &str,
    name: &str,
    explicit: bool,
    f: &Fields,
    allowed: &[&str],
) -> String {
    match (field, explicit) {
        ("values", true) => format!("remove `distribution: {name}` to make a choice among `values`, or replace `values` by min and max"),
        ("value", true) => format!("remove `distribution: {name}` for a constant"),
        // W&B's weighted choice has a distribution of its own.
        ("probabilities", _) if name == "categorical" => {
            "for a weighted choice, use `distribution: categorical_w_probabilities` (its \
             `probabilities` sum to 1, one per value)"
                .into()
        }
        ("q", _) if quantized(name).is_some() => {
            let q = f.get("q").map(yaml_snippet).unwrap_or_default();
            format!(
                "to round to multiples of q, use `distribution: {}` with `q: {q}`",
                quantized(name).unwrap_or_default()
            )
        }
        _ => format!(
            "{} {name} distribution takes: {}",
            article(name),
            allowed.join(", ")
        ),
    }
}

/// The distribution a misspelt or foreign name (Optuna's and Ray Tune's `loguniform`,
/// `randint`, `choice`) most likely means. Of the log-scale distributions the `_values` ones
/// are suggested, since the deprecated ones read min and max as natural-log exponents,
/// unless `min` is 0 or below, which only an exponent can be.
fn suggest_distribution(name: &str, f: &Fields) -> Option<&'static str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    const FOREIGN: &[(&str, &str)] = &[
        ("randint", "int_uniform"),
        ("qrandint", "q_uniform"),
        ("choice", "categorical"),
        ("randn", "normal"),
    ];
    let typed = norm(name);
    let found = FOREIGN
        .iter()
        .find(|(foreign, _)| *foreign == typed)
        .map(|(_, ours)| *ours)
        .or_else(|| DISTRIBUTIONS.iter().copied().find(|d| norm(d) == typed))
        .or_else(|| did_you_mean(name, DISTRIBUTIONS))?;
    let (values, exponents) = match found {
        "log_uniform" | "log_uniform_values" => ("log_uniform_values", "log_uniform"),
        "inv_log_uniform" | "inv_log_uniform_values" => {
            ("inv_log_uniform_values", "inv_log_uniform")
        }
        "q_log_uniform" | "q_log_uniform_values" => ("q_log_uniform_values", "q_log_uniform"),
        other => return Some(other),
    };
    let exponent_min = f
        .get("min")
        .and_then(Node::as_f64)
        .is_some_and(|min| min <= 0.0);
    Some(if exponent_min { exponents } else { values })
}

/// Fields of a parameter that are unlikely names of parameters of their own.
const FIELD_KEYS: &[&str] = &[
    "min",
    "max",
    "values",
    "value",
    "distribution",
    "mu",
    "sigma",
    "q",
    "probabilities",
    "parameters",
];

/// Whether an entry of a `parameters` block is a parameter's field written one level too
/// far left: a field name whose value is not a parameter specification (a mapping), or a
/// `parameters` whose mapping holds parameters rather than a specification.
pub(super) fn is_stray_field(key: &Key, spec: &Node) -> bool {
    if !FIELD_KEYS.contains(&key.name.as_str()) {
        return false;
    }
    match spec.as_map() {
        None => true,
        Some(entries) => {
            key.name == "parameters"
                && entries
                    .iter()
                    .any(|(k, _)| !PARAM_KEYS.contains(&k.name.as_str()))
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The hint for a number written in quotes, which YAML reads as a string.
const UNQUOTE_NUMBER: &str = "remove the quotes so it reads as a number";

/// The quantized variant of a distribution, which takes `q` as well: `uniform` → `q_uniform`.
/// `int_uniform` maps to `q_uniform` (an integer `q` gives integers).
fn quantized(name: &str) -> Option<&'static str> {
    Some(match name {
        "uniform" | "int_uniform" => "q_uniform",
        "log_uniform" => "q_log_uniform",
        "log_uniform_values" => "q_log_uniform_values",
        "normal" => "q_normal",
        "log_normal" => "q_log_normal",
        "beta" => "q_beta",
        _ => return None,
    })
}

/// The indefinite article for a name as read aloud: `an int_uniform`, `a uniform` (a "u"
/// sounds like "you"), `a q_uniform`.
fn article(name: &str) -> &'static str {
    match name.chars().next() {
        Some('a' | 'e' | 'i' | 'o') => "an",
        _ => "a",
    }
}

/// A node written back as a short YAML flow snippet for hints.
fn yaml_snippet(node: &Node) -> String {
    let s = node.to_json().to_string();
    if s.len() > 40 {
        "...".into()
    } else {
        s
    }
}
