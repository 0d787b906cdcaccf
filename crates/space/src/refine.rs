//! Coarse to fine: a new sweep file around the best runs of a finished one.
//!
//! [`refine`] takes a sweep file, the runs of its sweep (parameters and metric) and how many
//! of the best to follow, and writes the text of a new sweep file whose space is narrowed to
//! where those runs lie. What it does per parameter:
//!
//! - **Numeric ranges** (`uniform`, `int_uniform`, `q_uniform` and the log-scale ones): the
//!   new bounds span the top runs' values widened on each side by a margin of
//!   [`Options::margin`] times their spread (at least 5 % of the old range, so one run or
//!   equal values still leave room), clipped to the old bounds. Log-scale parameters are
//!   narrowed in log space (the exponents for the legacy `log_uniform`, `inv_log_uniform`,
//!   `q_log_uniform`), so the margin is a factor; `int_uniform` bounds are snapped outward
//!   to integers and quantized ones outward to multiples of `q`. Bounds are rounded outward
//!   to four significant digits.
//! - **Unbounded** (`normal`, `log_normal` and their quantized forms): `mu` becomes the
//!   middle and `sigma` half the width of that same interval (in log space for `log_normal`).
//!   `beta` and `q_beta` are kept as they are (their support is already `[0, 1]`).
//! - **`values` lists of numbers** (at least three distinct values): the range the top runs
//!   span, widened the same way (in log space when every value is positive and the largest
//!   is at least ten times the smallest), keeps the listed values inside it.
//! - **Other `values` lists** (strings, booleans, two numbers): a value is kept when one of
//!   the top runs used it, or when it ran fewer than [`Options::min_evidence`] times (too
//!   little evidence to drop it); a value tried that often without reaching the top is
//!   dropped. Probabilities of kept values are renormalized.
//! - **Conditional parameters** keep their `when` and are judged only on the runs in which
//!   they were active (one active in none of the best runs is kept as it is). A parent's
//!   values follow the rules above; a value it drops is taken out of the conditions that
//!   name it, and a parameter whose condition can then never hold is left out of the new
//!   file (said in a note on that parent). A numeric range that a `when` names keeps its
//!   bounds.
//! - **Constants** and every key outside `parameters` are kept unchanged: for a block-style
//!   YAML file the text of those keys, comments included, is copied as it is.
//!
//! Every dropped value and every narrowed range is explained by a [`Note`], which the new
//! file carries as a comment above the parameter. The new file records the sweep it came
//! from as `parent` and lists it (and the parent's own `prior_runs`) under `prior_runs`, so
//! `bayes` and `tpe` start from every parent run that falls inside the new space.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::model::{Distribution, Goal, Parameter, Quantum, SweepConfig};
use crate::yaml;

/// One run of the parent sweep: its flat parameters and its metric (finite).
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Flat parameter values by dotted name.
    pub params: Map<String, Value>,
    /// The run's metric value, in the sweep metric's units.
    pub value: f64,
}

/// How many of the best runs to follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Top {
    /// The `K` best runs (at least 1).
    Count(usize),
    /// The best fraction `Q` of the runs (`0 < Q ≤ 1`), at least one run.
    Quantile(f64),
}

/// What [`refine`] narrows to and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Which runs count as the best.
    pub top: Top,
    /// The margin added on each side of the top runs' span, as a fraction of the span
    /// (default 0.25).
    pub margin: f64,
    /// Runs a categorical value needs before it may be dropped for not reaching the top
    /// (default 3).
    pub min_evidence: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            top: Top::Quantile(0.25),
            margin: 0.25,
            min_evidence: 3,
        }
    }
}

/// One decision [`refine`] made about one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The parameter's dotted name.
    pub parameter: String,
    /// What changed and why, one line.
    pub message: String,
}

/// The new sweep file and what was decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Refined {
    /// The text of the new sweep file (YAML).
    pub text: String,
    /// Every narrowed range and dropped value, in parameter order.
    pub notes: Vec<Note>,
    /// How many runs were taken as the best.
    pub top: usize,
    /// How many runs had a metric value.
    pub runs: usize,
}

/// Why a sweep cannot be refined.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RefineError {
    /// The sweep has no `metric`, so there are no best runs.
    #[error("the sweep has no `metric`, so it has no best runs to refine around")]
    NoMetric,
    /// No run has a metric value yet.
    #[error("no run of the sweep has a value of `{0}` yet")]
    NoRuns(String),
    /// `--top 0` or a quantile outside `(0, 1]`.
    #[error("{0}")]
    BadOptions(String),
    /// The stored sweep file does not read back (it should always).
    #[error("the sweep's file does not read: {0}")]
    Source(String),
}

/// Write a sweep file around the best runs of the sweep `parent_id`, whose file is `source`
/// (validated as `config`); see the module docs for the rules. `runs` are the runs with a
/// metric value (any order).
pub fn refine(
    source: &str,
    config: &SweepConfig,
    parent_id: &str,
    runs: &[Evidence],
    options: Options,
) -> Result<Refined, RefineError> {
    let metric = config.metric.as_ref().ok_or(RefineError::NoMetric)?;
    let mut ranked: Vec<&Evidence> = runs.iter().filter(|r| r.value.is_finite()).collect();
    if ranked.is_empty() {
        return Err(RefineError::NoRuns(metric.name.clone()));
    }
    ranked.sort_by(|a, b| match metric.goal {
        Goal::Minimize => a.value.total_cmp(&b.value),
        Goal::Maximize => b.value.total_cmp(&a.value),
    });
    let k = match options.top {
        Top::Count(0) => return Err(RefineError::BadOptions("--top must be at least 1".into())),
        Top::Count(k) => k.min(ranked.len()),
        Top::Quantile(q) if !(q > 0.0 && q <= 1.0) => {
            return Err(RefineError::BadOptions(format!(
                "--quantile must be in (0, 1], found {q}"
            )))
        }
        Top::Quantile(q) => ((ranked.len() as f64 * q).ceil() as usize).clamp(1, ranked.len()),
    };
    let (top, rest) = ranked.split_at(k);

    let (notes, lines) = refine_parameters(config, top, rest, options);

    let mut priors = vec![parent_id.to_string()];
    for r in &config.prior_runs {
        if !priors.contains(&r.id) {
            priors.push(r.id.clone());
        }
    }
    let header = format!(
        "# Refined from sweep {parent_id}: the best {k} of {} runs by {} ({}).\n",
        ranked.len(),
        metric.name,
        metric.goal.as_str()
    );
    let lineage = format!(
        "parent: {}\nprior_runs: [{}]\n",
        yaml_str(parent_id),
        priors
            .iter()
            .map(|p| yaml_str(p))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let parameters = render_parameters(&lines);
    let text = assemble(source, &header, &lineage, &parameters)?;
    Ok(Refined {
        text,
        notes,
        top: k,
        runs: ranked.len(),
    })
}

/// Every parameter's new line (path, notes, spec) in file order, and all the notes.
///
/// Parents come before the parameters whose `when` names them. A conditional parameter is
/// judged on the runs in which it was active. A parent's dropped values are taken out of
/// the conditions that name them; a parameter whose condition can then never hold is left
/// out of the new file, with a note on the parent that caused it.
#[allow(clippy::type_complexity)]
fn refine_parameters(
    config: &SweepConfig,
    top: &[&Evidence],
    rest: &[&Evidence],
    options: Options,
) -> (Vec<Note>, Vec<(Vec<String>, Vec<String>, String)>) {
    let params = &config.parameters;
    let order =
        crate::condition::topological_order(params).unwrap_or_else(|| (0..params.len()).collect());
    // Per parameter: its notes, its new spec (`None`: left out), the values it keeps (`None`
    // for anything but a values list).
    let mut notes: Vec<Vec<Note>> = vec![Vec::new(); params.len()];
    let mut specs: Vec<Option<String>> = vec![None; params.len()];
    let mut kept: Vec<Option<Vec<Value>>> = vec![None; params.len()];
    // For a parameter left out: the parameter whose dropped values caused it.
    let mut cause: Vec<Option<usize>> = vec![None; params.len()];
    let index = |name: &str| params.iter().position(|q| q.name == name);
    for i in order {
        let p = &params[i];
        let note = |message: String| Note {
            parameter: p.name.clone(),
            message,
        };
        // The conditions, without the parent values the new file no longer has.
        let mut when = p.when.clone();
        let mut gone: Option<(usize, String)> = None;
        for c in &mut when {
            let Some(parent) = index(&c.parent) else {
                continue;
            };
            if specs[parent].is_none() {
                let root = cause[parent].unwrap_or(parent);
                gone = Some((
                    root,
                    format!(
                        "it is active only when `{}` is, which is left out",
                        c.parent
                    ),
                ));
                break;
            }
            if let Some(values) = &kept[parent] {
                let before = c.values.clone();
                c.values.retain(|v| values.iter().any(|k| c_holds(k, v)));
                if c.values.is_empty() {
                    let named: Vec<String> = before.iter().map(compact).collect();
                    gone = Some((
                        parent,
                        if named.len() == 1 {
                            format!(
                                "it is active only when `{}` is {}, which was dropped",
                                c.parent, named[0]
                            )
                        } else {
                            format!(
                                "it is active only when `{}` is one of {}, which were dropped",
                                c.parent,
                                named.join(", ")
                            )
                        },
                    ));
                    break;
                }
                let before = before.len();
                if c.values.len() < before {
                    notes[i].push(note(format!(
                        "condition on `{}` narrowed to [{}]: its other values were dropped",
                        c.parent,
                        c.values.iter().map(compact).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        if let Some((root, why)) = gone {
            cause[i] = Some(root);
            notes[i].clear();
            notes[root].push(Note {
                parameter: params[root].name.clone(),
                message: format!("left out `{}`: {why}", p.name),
            });
            continue;
        }
        // A conditional parameter is judged on the runs in which it was active.
        let (top_active, rest_active) = (active_in(top, &p.name), active_in(rest, &p.name));
        let (mut d, mut own) = if !p.when.is_empty() && top_active.is_empty() {
            (
                p.distribution.clone(),
                vec![note(format!(
                    "kept as it is: active in none of the best {} runs",
                    top.len()
                ))],
            )
        } else {
            refine_parameter(p, &top_active, &rest_active, options)
        };
        if !p.when.is_empty() && top_active.len() < top.len() && !top_active.is_empty() {
            for n in &mut own {
                n.message
                    .push_str(" (counting only the runs in which it was active)");
            }
        }
        let is_values = matches!(
            d,
            Distribution::Categorical { .. } | Distribution::CategoricalWithProbabilities { .. }
        );
        let is_parent = params
            .iter()
            .any(|q| q.when.iter().any(|c| c.parent == p.name));
        if is_parent && !is_values && d != p.distribution {
            // A range that conditions name keeps its bounds: narrowing it could leave a
            // condition naming a value the range no longer holds.
            d = p.distribution.clone();
            own = vec![note(
                "kept as it is: the `when` of other parameters names its values".to_string(),
            )];
        }
        kept[i] = match &d {
            Distribution::Categorical { values }
            | Distribution::CategoricalWithProbabilities { values, .. } => Some(values.clone()),
            _ => None,
        };
        specs[i] = Some(with_when(spec_of(&d), &when));
        // Notes about this parameter's own values come before those about the parameters
        // it left out.
        own.append(&mut notes[i]);
        notes[i] = own;
    }
    let mut all = Vec::new();
    let mut lines = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let Some(spec) = specs[i].take() else {
            continue;
        };
        all.extend(notes[i].iter().cloned());
        lines.push((
            p.path.clone(),
            notes[i].iter().map(|n| n.message.clone()).collect(),
            spec,
        ));
    }
    (all, lines)
}

/// The runs in which the parameter `name` was active (it has a value).
fn active_in<'a>(runs: &[&'a Evidence], name: &str) -> Vec<&'a Evidence> {
    runs.iter()
        .copied()
        .filter(|r| r.params.contains_key(name))
        .collect()
}

/// Whether the kept parent value `kept` is the condition value `named`.
fn c_holds(kept: &Value, named: &Value) -> bool {
    crate::grid::grid_key(kept) == crate::grid::grid_key(named)
}

/// The new distribution of one parameter and the notes about it.
fn refine_parameter(
    p: &Parameter,
    top: &[&Evidence],
    rest: &[&Evidence],
    options: Options,
) -> (Distribution, Vec<Note>) {
    let note = |message: String| Note {
        parameter: p.name.clone(),
        message,
    };
    let numbers = |runs: &[&Evidence]| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| r.params.get(&p.name).and_then(Value::as_f64))
            .filter(|x| x.is_finite())
            .collect()
    };
    let d = &p.distribution;
    let unchanged = || (d.clone(), Vec::new());
    let tops = numbers(top);
    match d {
        Distribution::Constant { .. } | Distribution::Beta { .. } | Distribution::QBeta { .. } => {
            unchanged()
        }
        Distribution::Categorical { values } => {
            refine_values(p, values, None, top, rest, options, &note)
        }
        Distribution::CategoricalWithProbabilities {
            values,
            probabilities,
        } => refine_values(p, values, Some(probabilities), top, rest, options, &note),
        _ if tops.is_empty() => unchanged(),
        Distribution::IntUniform { min, max } => {
            let (lo, hi) = span(
                &tops,
                *min as f64,
                *max as f64,
                options.margin,
                Scale::Linear,
            );
            let (lo, hi) = (lo.floor() as i64, hi.ceil() as i64);
            let (lo, hi) = (lo.max(*min), hi.min(*max));
            narrowed(
                Distribution::IntUniform { min: lo, max: hi },
                d,
                tops.len(),
                &note,
            )
        }
        Distribution::Uniform { min, max } => {
            let (lo, hi) = span(&tops, *min, *max, options.margin, Scale::Linear);
            let (lo, hi) = rounded(lo, hi, *min, *max);
            narrowed(
                Distribution::Uniform { min: lo, max: hi },
                d,
                tops.len(),
                &note,
            )
        }
        Distribution::QUniform { min, max, q } => {
            let (lo, hi) = span(&tops, *min, *max, options.margin, Scale::Linear);
            let (lo, hi) = snapped(lo, hi, *min, *max, q.q);
            narrowed(
                Distribution::QUniform {
                    min: lo,
                    max: hi,
                    q: *q,
                },
                d,
                tops.len(),
                &note,
            )
        }
        Distribution::LogUniformValues { min, max }
        | Distribution::InvLogUniformValues { min, max } => {
            let (lo, hi) = span(&tops, *min, *max, options.margin, Scale::Log);
            let (lo, hi) = rounded(lo, hi, *min, *max);
            let new = if matches!(d, Distribution::LogUniformValues { .. }) {
                Distribution::LogUniformValues { min: lo, max: hi }
            } else {
                Distribution::InvLogUniformValues { min: lo, max: hi }
            };
            narrowed(new, d, tops.len(), &note)
        }
        Distribution::QLogUniformValues { min, max, q } => {
            let (lo, hi) = span(&tops, *min, *max, options.margin, Scale::Log);
            let (lo, hi) = snapped(lo, hi, *min, *max, q.q);
            narrowed(
                Distribution::QLogUniformValues {
                    min: lo,
                    max: hi,
                    q: *q,
                },
                d,
                tops.len(),
                &note,
            )
        }
        // Legacy forms whose bounds are natural-log exponents: narrow the exponents.
        Distribution::LogUniform { min, max } | Distribution::QLogUniform { min, max, .. } => {
            let exps: Vec<f64> = tops.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect();
            if exps.is_empty() {
                return unchanged();
            }
            let (lo, hi) = span(&exps, *min, *max, options.margin, Scale::Linear);
            let (lo, hi) = rounded(lo, hi, *min, *max);
            let new = match d {
                Distribution::QLogUniform { q, .. } => Distribution::QLogUniform {
                    min: lo,
                    max: hi,
                    q: *q,
                },
                _ => Distribution::LogUniform { min: lo, max: hi },
            };
            narrowed(new, d, tops.len(), &note)
        }
        Distribution::InvLogUniform { min, max } => {
            // Values are exp(-X), X in [min, max].
            let exps: Vec<f64> = tops.iter().filter(|x| **x > 0.0).map(|x| -x.ln()).collect();
            if exps.is_empty() {
                return unchanged();
            }
            let (lo, hi) = span(&exps, *min, *max, options.margin, Scale::Linear);
            let (lo, hi) = rounded(lo, hi, *min, *max);
            narrowed(
                Distribution::InvLogUniform { min: lo, max: hi },
                d,
                tops.len(),
                &note,
            )
        }
        Distribution::Normal { sigma, .. } | Distribution::QNormal { sigma, .. } => {
            let (lo, hi) = unbounded_span(&tops, *sigma, options.margin);
            let (mu, s) = (round_sig((lo + hi) / 2.0), round_sig((hi - lo) / 2.0));
            let new = match d {
                Distribution::QNormal { q, .. } => Distribution::QNormal {
                    mu,
                    sigma: s,
                    q: *q,
                },
                _ => Distribution::Normal { mu, sigma: s },
            };
            narrowed(new, d, tops.len(), &note)
        }
        Distribution::LogNormal { sigma, .. } | Distribution::QLogNormal { sigma, .. } => {
            let logs: Vec<f64> = tops.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect();
            if logs.is_empty() {
                return unchanged();
            }
            let (lo, hi) = unbounded_span(&logs, *sigma, options.margin);
            let (mu, s) = (round_sig((lo + hi) / 2.0), round_sig((hi - lo) / 2.0));
            let new = match d {
                Distribution::QLogNormal { q, .. } => Distribution::QLogNormal {
                    mu,
                    sigma: s,
                    q: *q,
                },
                _ => Distribution::LogNormal { mu, sigma: s },
            };
            narrowed(new, d, tops.len(), &note)
        }
    }
}

/// The spec of `new` with a note saying what it narrowed from, or no note when nothing
/// changed.
fn narrowed(
    new: Distribution,
    old: &Distribution,
    seen: usize,
    note: &dyn Fn(String) -> Note,
) -> (Distribution, Vec<Note>) {
    let notes = if &new == old {
        vec![note(format!(
            "kept {}: the best runs ({seen}) span the whole range",
            old.describe()
        ))]
    } else {
        vec![note(format!(
            "narrowed from {} to {}: the span of the best {seen} runs with a margin",
            old.describe(),
            new.describe()
        ))]
    };
    (new, notes)
}

/// How values are spread for the margin.
#[derive(Clone, Copy)]
enum Scale {
    Linear,
    Log,
}

/// A map of one number to another (into and out of the scale of a span).
type Map1 = fn(f64) -> f64;

/// The span of `xs` widened by `margin` times its width on each side (at least 5 % of
/// `[min, max]`, in the same scale), clipped to `[min, max]`.
fn span(xs: &[f64], min: f64, max: f64, margin: f64, scale: Scale) -> (f64, f64) {
    let (to, from): (Map1, Map1) = match scale {
        Scale::Linear => (|x| x, |x| x),
        Scale::Log => (f64::ln, f64::exp),
    };
    let (lo_all, hi_all) = (to(min.min(max)), to(min.max(max)));
    let t: Vec<f64> = xs
        .iter()
        .map(|&x| to(x))
        .filter(|x| x.is_finite())
        .collect();
    if t.is_empty() {
        return (min, max);
    }
    let lo = t.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = t.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = (margin * (hi - lo)).max(0.05 * (hi_all - lo_all));
    let lo = (lo - pad).max(lo_all);
    let hi = (hi + pad).min(hi_all);
    (from(lo).max(min.min(max)), from(hi).min(min.max(max)))
}

/// [`span`] for an unbounded distribution: at least a quarter of the old `sigma` each side.
fn unbounded_span(xs: &[f64], sigma: f64, margin: f64) -> (f64, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = (margin * (hi - lo)).max(0.25 * sigma);
    (lo - pad, hi + pad)
}

/// Bounds rounded outward to four significant digits, kept within `[min, max]`.
fn rounded(lo: f64, hi: f64, min: f64, max: f64) -> (f64, f64) {
    let down = round_sig_dir(lo, false).max(min);
    let up = round_sig_dir(hi, true).min(max);
    (down, up.max(down))
}

/// Bounds snapped outward to multiples of `q`, kept within `[min, max]`.
fn snapped(lo: f64, hi: f64, min: f64, max: f64, q: f64) -> (f64, f64) {
    let clean = |x: f64| round_sig(x * 1e9) / 1e9;
    let down = clean((lo / q + 1e-9).floor() * q).max(min);
    let up = clean((hi / q - 1e-9).ceil() * q).min(max);
    (down, up.max(down))
}

/// `x` rounded to four significant digits.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// `x` rounded to four significant digits, up or down.
fn round_sig_dir(x: f64, up: bool) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    let y = x * scale;
    // Guard against representation noise turning an exact value up or down a step.
    let y = if (y - y.round()).abs() < 1e-9 {
        y.round()
    } else if up {
        y.ceil()
    } else {
        y.floor()
    };
    y / scale
}

/// Narrow a `values` list; see the module docs.
fn refine_values(
    p: &Parameter,
    values: &[Value],
    probabilities: Option<&Vec<f64>>,
    top: &[&Evidence],
    rest: &[&Evidence],
    options: Options,
    note: &dyn Fn(String) -> Note,
) -> (Distribution, Vec<Note>) {
    let count = |runs: &[&Evidence], v: &Value| {
        runs.iter()
            .filter(|r| r.params.get(&p.name) == Some(v))
            .count()
    };
    let numeric: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
    let mut distinct = numeric.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let mut notes = Vec::new();
    let mut keep = vec![true; values.len()];
    if numeric.len() == values.len() && distinct.len() >= 3 {
        let tops: Vec<f64> = top
            .iter()
            .filter_map(|r| r.params.get(&p.name).and_then(Value::as_f64))
            .collect();
        if tops.is_empty() {
            return (p.distribution.clone(), notes);
        }
        let (min, max) = (distinct[0], distinct[distinct.len() - 1]);
        let scale = if min > 0.0 && max >= 10.0 * min {
            Scale::Log
        } else {
            Scale::Linear
        };
        let (lo, hi) = span(&tops, min, max, options.margin, scale);
        let tol = 1e-9 * lo.abs().max(hi.abs()).max(1e-300);
        let mut dropped = Vec::new();
        for (i, x) in numeric.iter().enumerate() {
            if *x < lo - tol || *x > hi + tol {
                keep[i] = false;
                dropped.push(compact(&values[i]));
            }
        }
        if !dropped.is_empty() {
            notes.push(note(format!(
                "dropped {}: outside [{}, {}], the span of the best {} runs with a margin{}",
                dropped.join(", "),
                fmt_f64(round_sig(lo)),
                fmt_f64(round_sig(hi)),
                tops.len(),
                if matches!(scale, Scale::Log) {
                    " (in log space)"
                } else {
                    ""
                }
            )));
        }
    } else {
        for (i, v) in values.iter().enumerate() {
            let (in_top, in_rest) = (count(top, v), count(rest, v));
            let tried = in_top + in_rest;
            if in_top > 0 {
                continue;
            }
            if tried >= options.min_evidence {
                keep[i] = false;
                let best_rank = rest
                    .iter()
                    .position(|r| r.params.get(&p.name) == Some(v))
                    .map(|i| i + top.len() + 1);
                notes.push(note(format!(
                    "dropped {}: none of its {tried} runs is among the best {}{}",
                    compact(v),
                    top.len(),
                    best_rank
                        .map(|r| format!(" (its best run ranks {r} of {})", top.len() + rest.len()))
                        .unwrap_or_default()
                )));
            } else {
                notes.push(note(format!(
                    "kept {}: not among the best {}, but {tried} run{} too few to drop it (at least {} needed)",
                    compact(v),
                    top.len(),
                    if tried == 1 { " is" } else { "s are" },
                    options.min_evidence
                )));
            }
        }
    }
    if keep.iter().all(|k| !k) {
        // The best runs used none of the listed values (runs of another space): never write
        // an empty list, and say that nothing was dropped.
        return (
            p.distribution.clone(),
            vec![note(format!(
                "kept every value: the best {} runs used none of them",
                top.len()
            ))],
        );
    }
    let kept: Vec<Value> = values
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(v, _)| v.clone())
        .collect();
    let new = match probabilities {
        None => Distribution::Categorical { values: kept },
        Some(ps) => {
            let ps: Vec<f64> = ps
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(p, _)| *p)
                .collect();
            let total: f64 = ps.iter().sum();
            if total > 0.0 {
                Distribution::CategoricalWithProbabilities {
                    values: kept,
                    probabilities: ps.iter().map(|p| p / total).collect(),
                }
            } else {
                Distribution::Categorical { values: kept }
            }
        }
    };
    (new, notes)
}

/// A distribution as a one-line YAML flow mapping, `distribution` named explicitly.
fn spec_of(d: &Distribution) -> String {
    let name = d.name();
    let q = |q: &Quantum| {
        if q.integer {
            format!("{}", q.q as i64)
        } else {
            fmt_f64(q.q)
        }
    };
    let list = |vs: &[Value]| {
        format!(
            "[{}]",
            vs.iter().map(compact).collect::<Vec<_>>().join(", ")
        )
    };
    let f = fmt_f64;
    match d {
        Distribution::Constant { value } => format!("{{value: {}}}", compact(value)),
        Distribution::Categorical { values } => {
            format!("{{distribution: {name}, values: {}}}", list(values))
        }
        Distribution::CategoricalWithProbabilities {
            values,
            probabilities,
        } => format!(
            "{{distribution: {name}, values: {}, probabilities: [{}]}}",
            list(values),
            probabilities
                .iter()
                .map(|p| fmt_f64(round_sig(*p)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Distribution::IntUniform { min, max } => {
            format!("{{distribution: {name}, min: {min}, max: {max}}}")
        }
        Distribution::Uniform { min, max }
        | Distribution::LogUniform { min, max }
        | Distribution::InvLogUniform { min, max }
        | Distribution::LogUniformValues { min, max }
        | Distribution::InvLogUniformValues { min, max } => {
            format!(
                "{{distribution: {name}, min: {}, max: {}}}",
                f(*min),
                f(*max)
            )
        }
        Distribution::QUniform {
            min,
            max,
            q: quantum,
        }
        | Distribution::QLogUniform {
            min,
            max,
            q: quantum,
        }
        | Distribution::QLogUniformValues {
            min,
            max,
            q: quantum,
        } => format!(
            "{{distribution: {name}, min: {}, max: {}, q: {}}}",
            f(*min),
            f(*max),
            q(quantum)
        ),
        Distribution::Normal { mu, sigma } | Distribution::LogNormal { mu, sigma } => {
            format!(
                "{{distribution: {name}, mu: {}, sigma: {}}}",
                f(*mu),
                f(*sigma)
            )
        }
        Distribution::QNormal {
            mu,
            sigma,
            q: quantum,
        }
        | Distribution::QLogNormal {
            mu,
            sigma,
            q: quantum,
        } => format!(
            "{{distribution: {name}, mu: {}, sigma: {}, q: {}}}",
            f(*mu),
            f(*sigma),
            q(quantum)
        ),
        Distribution::Beta { a, b } => {
            format!("{{distribution: {name}, a: {}, b: {}}}", f(*a), f(*b))
        }
        Distribution::QBeta { a, b, q: quantum } => format!(
            "{{distribution: {name}, a: {}, b: {}, q: {}}}",
            f(*a),
            f(*b),
            q(quantum)
        ),
    }
}

/// A float as YAML 1.2 reads it back as a float (`1.0`, `0.001`, `1e-7`).
fn fmt_f64(x: f64) -> String {
    format!("{x:?}")
}

/// A JSON value as compact flow YAML (JSON is valid YAML 1.2).
fn compact(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map(fmt_f64).unwrap_or_else(|| v.to_string()),
        _ => v.to_string(),
    }
}

/// A flow-mapping spec with the parameter's conditions added as `when` (unchanged without
/// conditions).
fn with_when(spec: String, when: &[crate::condition::Condition]) -> String {
    let Some(body) = spec.strip_suffix('}').filter(|_| !when.is_empty()) else {
        return spec;
    };
    let conditions: Vec<String> = when
        .iter()
        .map(|c| {
            let values: Vec<String> = c.values.iter().map(compact).collect();
            format!("{}: [{}]", key_str(&c.parent), values.join(", "))
        })
        .collect();
    format!("{body}, when: {{{}}}}}", conditions.join(", "))
}

/// A string as a double-quoted YAML scalar.
fn yaml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The `parameters:` block: nested parameters re-nested, each leaf preceded by its notes as
/// comments.
fn render_parameters(lines: &[(Vec<String>, Vec<String>, String)]) -> String {
    let mut out = String::from("parameters:\n");
    let mut open: Vec<String> = Vec::new();
    for (path, notes, spec) in lines {
        let parents = &path[..path.len().saturating_sub(1)];
        let common = open.iter().zip(parents).take_while(|(a, b)| a == b).count();
        open.truncate(common);
        for (depth, key) in parents.iter().enumerate().skip(common) {
            let indent = "  ".repeat(1 + 2 * depth);
            let _ = writeln!(out, "{indent}{}:", key_str(key));
            let _ = writeln!(out, "{indent}  parameters:");
            open.push(key.clone());
        }
        let indent = "  ".repeat(1 + 2 * parents.len());
        for n in notes {
            let _ = writeln!(out, "{indent}# {n}");
        }
        let leaf = path.last().map(String::as_str).unwrap_or_default();
        let _ = writeln!(out, "{indent}{}: {spec}", key_str(leaf));
    }
    out
}

/// A mapping key, quoted when it is not a plain word.
fn key_str(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !k.starts_with('-');
    if plain {
        k.to_string()
    } else {
        yaml_str(k)
    }
}

/// Top-level keys the new file writes itself.
const REPLACED: &[&str] = &["parameters", "parent", "prior_runs"];

/// The new file: the old one's other top-level keys (their text, for a block-style file;
/// else as compact JSON), with `parent`, `prior_runs` and `parameters` where `parameters`
/// stood.
fn assemble(
    source: &str,
    header: &str,
    lineage: &str,
    parameters: &str,
) -> Result<String, RefineError> {
    let parsed = yaml::parse(source);
    let root = parsed
        .root
        .ok_or_else(|| RefineError::Source("the file is empty or not YAML".into()))?;
    let entries = root
        .as_map()
        .ok_or_else(|| RefineError::Source("the file is not a mapping".into()))?;
    let lines: Vec<&str> = source.lines().collect();
    let block = entries.iter().all(|(k, _)| k.location.column == 1)
        && entries
            .windows(2)
            .all(|w| w[0].0.location.line < w[1].0.location.line);
    let mut out = String::from(header);
    if block {
        // Each key's text starts at the comments and blank lines right above it.
        let starts: Vec<usize> = entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| {
                let floor = if i == 0 {
                    0
                } else {
                    entries[i - 1].0.location.line
                };
                let mut start = k.location.line - 1;
                while start > floor {
                    let above = lines[start - 1].trim();
                    if above.is_empty() || above.starts_with('#') {
                        start -= 1;
                    } else {
                        break;
                    }
                }
                start
            })
            .collect();
        for l in lines.iter().take(starts.first().copied().unwrap_or(0)) {
            out.push_str(l);
            out.push('\n');
        }
        for (i, (key, _)) in entries.iter().enumerate() {
            let start = starts[i];
            let end = starts.get(i + 1).copied().unwrap_or(lines.len());
            if key.name == "parameters" {
                out.push_str(lineage);
                out.push_str(parameters);
            } else if !REPLACED.contains(&key.name.as_str()) {
                for l in &lines[start..end.min(lines.len())] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
    } else {
        for (key, node) in entries {
            if key.name == "parameters" {
                out.push_str(lineage);
                out.push_str(parameters);
            } else if !REPLACED.contains(&key.name.as_str()) {
                let _ = writeln!(out, "{}: {}", key_str(&key.name), node.to_json());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
