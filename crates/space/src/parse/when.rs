//! The `when` key of a parameter (a hyperdial addition): conditional parameters.
//!
//! `when` is a mapping from parent parameter names (dotted for nested ones) to the value, or
//! the list of values ("one of"), under which the parameter is active; several keys must all
//! hold. Written beside a nested `parameters` block, it holds for every parameter of the
//! block. The rules checked here, each reported at the condition's key:
//!
//! - the parent exists and is not the parameter itself;
//! - the parent is a `values` list (with or without `probabilities`) or a constant: a range
//!   has too many values to condition on;
//! - every listed value is one the parent can take (a value of probability 0 cannot);
//! - the conditions form no cycle;
//! - every parameter is active in at least one configuration (a condition on a parent that
//!   is inactive whenever the condition would hold, or two keys that exclude each other,
//!   can never hold).

use serde_json::Value;

use super::{did_you_mean, join, Validator};
use crate::condition::{topological_order, Condition, Tree};
use crate::grid::{distinct_values, grid_key};
use crate::model::{Distribution, Parameter};
use crate::yaml::{Node, NodeValue};

/// Parent configurations enumerated to find conditions that can never hold; above this the
/// check is skipped (the space is still valid, only the diagnosis is not attempted).
const NEVER_HOLDS_MAX: u128 = 100_000;

/// The values a parent can take, or `None` for a distribution conditions cannot name.
fn parent_values(d: &Distribution) -> Option<Vec<Value>> {
    match d {
        Distribution::Constant { value } => Some(vec![value.clone()]),
        Distribution::Categorical { values } => Some(distinct_values(values)),
        Distribution::CategoricalWithProbabilities {
            values,
            probabilities,
        } => {
            let possible: Vec<Value> = values
                .iter()
                .zip(probabilities)
                .filter(|(_, &p)| p > 0.0)
                .map(|(v, _)| v.clone())
                .collect();
            Some(distinct_values(&possible))
        }
        _ => None,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Validator {
    /// Validate a parameter's `when` mapping; `None` after reporting an error.
    pub(super) fn when(&mut self, path: &str, node: &Node) -> Option<Vec<Condition>> {
        let fields = self.expect_map(path, node, "`when: {optimizer: sgd}`")?;
        if fields.entries.is_empty() {
            self.error(
                path,
                Some(node.location),
                "`when` is empty",
                "name a parent parameter and its value, e.g. `when: {optimizer: sgd}`, or remove `when`",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (key, value) in fields.entries {
            let values = match &value.value {
                NodeValue::Seq(items) if items.is_empty() => {
                    self.error(
                        &join(path, &key.name),
                        Some(value.location),
                        "the list of values is empty, so the condition can never hold",
                        format!(
                            "list the values of `{}` under which the parameter is active",
                            key.name
                        ),
                    );
                    ok = false;
                    continue;
                }
                NodeValue::Seq(items) => items.iter().map(Node::to_json).collect(),
                NodeValue::Null => {
                    self.error(
                        &join(path, &key.name),
                        Some(key.location),
                        format!("no value is given for `{}`", key.name),
                        format!(
                            "write `{}: VALUE` or `{}: [VALUE, ...]`",
                            key.name, key.name
                        ),
                    );
                    ok = false;
                    continue;
                }
                _ => vec![value.to_json()],
            };
            out.push(Condition {
                parent: key.name.clone(),
                values,
                location: key.location,
            });
        }
        ok.then_some(out)
    }

    /// Check the conditions of every parameter against the others (see the module docs).
    pub(super) fn check_conditions(&mut self, params: &[Parameter]) {
        if !crate::condition::has_conditions(params) {
            return;
        }
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let mut sound = true;
        for p in params {
            for c in &p.when {
                let path = format!("parameters.{}.when.{}", p.name, c.parent);
                let loc = Some(c.location);
                if c.parent == p.name {
                    self.error(
                        &path,
                        loc,
                        format!("`{}` cannot be conditioned on itself", p.name),
                        "name another parameter, or remove the condition",
                    );
                    sound = false;
                    continue;
                }
                let Some(parent) = params.iter().find(|q| q.name == c.parent) else {
                    let hint = match did_you_mean(&c.parent, &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "`when` names parameters of this sweep by their dotted names: {}",
                            names.join(", ")
                        ),
                    };
                    self.error(
                        &path,
                        loc,
                        format!(
                            "`{}` depends on `{}`, which is not a parameter of the sweep",
                            p.name, c.parent
                        ),
                        hint,
                    );
                    sound = false;
                    continue;
                };
                let Some(possible) = parent_values(&parent.distribution) else {
                    self.error(
                        &path,
                        loc,
                        format!(
                            "conditions need a parent with `values` or a constant `value`, but `{}` is {} (a range)",
                            parent.name,
                            parent.distribution.name()
                        ),
                        format!(
                            "list the values of `{}` to choose from (`values: [...]`), or condition on another parameter",
                            parent.name
                        ),
                    );
                    sound = false;
                    continue;
                };
                let keys: Vec<String> = possible.iter().map(grid_key).collect();
                for v in &c.values {
                    if !keys.contains(&grid_key(v)) {
                        let listed: Vec<String> = possible.iter().map(show).collect();
                        let hint = match did_you_mean(
                            &show(v),
                            &listed.iter().map(String::as_str).collect::<Vec<_>>(),
                        ) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!(
                                "the values `{}` can take are: {}",
                                parent.name,
                                listed.join(", ")
                            ),
                        };
                        self.error(
                            &path,
                            loc,
                            format!(
                                "`{}` never takes the value `{}`, so this condition can never hold",
                                parent.name,
                                show(v)
                            ),
                            hint,
                        );
                        sound = false;
                    }
                }
            }
        }
        // A cycle among the parents that exist is reported even beside other errors.
        let on_cycle = |i: usize| {
            params[i].when.iter().any(|c| {
                params
                    .iter()
                    .position(|q| q.name == c.parent)
                    .is_some_and(|j| j != i && reaches(params, j, i))
            })
        };
        if (0..params.len()).any(on_cycle) {
            self.report_cycle(params);
            return;
        }
        if sound && topological_order(params).is_some() {
            self.check_never_holds(params);
        }
    }

    /// Report one cycle of the conditions, at the first condition on it.
    fn report_cycle(&mut self, params: &[Parameter]) {
        let index = |name: &str| params.iter().position(|p| p.name == name);
        // Walk parents from each parameter until a parameter repeats.
        for start in 0..params.len() {
            let mut path = vec![start];
            let mut at = start;
            while let Some(next) = params[at].when.iter().find_map(|c| {
                let i = index(&c.parent).filter(|&i| i != at)?;
                // Follow a parent from which `start` is reachable again, if any.
                reaches(params, i, start).then_some(i)
            }) {
                if next == start {
                    let mut names: Vec<&str> =
                        path.iter().map(|&i| params[i].name.as_str()).collect();
                    names.push(&params[start].name);
                    let first = &params[start];
                    let c = first
                        .when
                        .iter()
                        .find(|c| index(&c.parent).is_some_and(|i| reaches(params, i, start)))
                        .unwrap_or(&first.when[0]);
                    self.error(
                        &format!("parameters.{}.when.{}", first.name, c.parent),
                        Some(c.location),
                        format!(
                            "the conditions form a cycle: {} (each is active only when the next is)",
                            names.join(" → ")
                        ),
                        "a parameter cannot depend, directly or through others, on itself; remove one of these conditions",
                    );
                    return;
                }
                if path.contains(&next) {
                    break;
                }
                path.push(next);
                at = next;
            }
        }
    }

    /// Report parameters that no configuration makes active.
    fn check_never_holds(&mut self, params: &[Parameter]) {
        let parent_of: Vec<bool> = params
            .iter()
            .map(|p| {
                params
                    .iter()
                    .any(|q| q.when.iter().any(|c| c.parent == p.name))
            })
            .collect();
        // Only the parents' values decide activity: every other parameter has one digit.
        let radix: Vec<u128> = params
            .iter()
            .zip(&parent_of)
            .map(|(p, &is)| {
                if is {
                    parent_values(&p.distribution).map_or(1, |v| v.len() as u128)
                } else {
                    1
                }
            })
            .collect();
        let Some(mut tree) = Tree::new(params, radix, &|i| {
            parent_values(&params[i].distribution).unwrap_or_default()
        }) else {
            return;
        };
        let Some(count) = tree.count().filter(|&n| n <= NEVER_HOLDS_MAX) else {
            return;
        };
        let mut ever = vec![false; params.len()];
        for i in 0..count {
            if let Some(digits) = tree.digits(i) {
                for (e, d) in ever.iter_mut().zip(digits) {
                    *e |= d.is_some();
                }
            }
        }
        for (p, _) in params.iter().zip(ever).filter(|(_, e)| !e) {
            let c = &p.when[0];
            let parents: Vec<String> = p.when.iter().map(|c| format!("`{}`", c.parent)).collect();
            self.error(
                &format!("parameters.{}.when", p.name),
                Some(c.location),
                format!(
                    "`{}` can never be active: no configuration satisfies its conditions on {} together with the conditions of those parameters",
                    p.name,
                    parents.join(" and ")
                ),
                "a parent must be active, and take the listed value, in some configuration; check the parents' own `when`",
            );
        }
    }
}

/// Whether `target` is reachable from `from` by following parents.
fn reaches(params: &[Parameter], from: usize, target: usize) -> bool {
    let mut seen = vec![false; params.len()];
    let mut stack = vec![from];
    while let Some(i) = stack.pop() {
        if i == target {
            return true;
        }
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        for c in &params[i].when {
            if let Some(j) = params.iter().position(|p| p.name == c.parent) {
                stack.push(j);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::grid;
    use crate::parse_str;

    /// The errors for `text`, as (path, line, message) triples.
    fn errors(text: &str) -> Vec<(String, usize, String)> {
        match parse_str(text, "sweep.yaml") {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e
                .errors()
                .map(|d| {
                    (
                        d.path.clone(),
                        d.location.map_or(0, |l| l.line),
                        d.message.clone(),
                    )
                })
                .collect(),
        }
    }

    fn one_error(text: &str, path: &str, line: usize, needle: &str) {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        let (p, l, m) = &errs[0];
        assert!(
            p == path && *l == line && m.contains(needle),
            "wanted `{needle}` at {path} line {line}, got {errs:#?}"
        );
    }

    const HEAD: &str = "method: grid\nparameters:\n  opt: {values: [sgd, adam]}\n";

    #[test]
    fn the_forms_of_when() {
        let text = "method: grid\nparameters:\n  opt: {values: [sgd, adam]}\n  n: {values: [1, 2, 3]}\n  fixed: {value: on}\n  m: {values: [0.5, 0.9], when: {opt: sgd}}\n  w: {values: [8, 16], when: {n: [2, 3.0], opt: [sgd, adam]}}\n  c: {value: 1, when: {fixed: on}}\n  head:\n    when: {opt: adam}\n    parameters:\n      b2: {values: [0.99, 0.999]}\n      eps: {value: 1e-8, when: {n: 1}}\n";
        let v = parse_str(text, "s.yaml").unwrap().config;
        let when = |name: &str| v.parameter(name).unwrap().when.clone();
        assert_eq!(when("m")[0].parent, "opt");
        assert_eq!(when("m")[0].values, vec![serde_json::json!("sgd")]);
        assert_eq!(when("w").len(), 2);
        assert_eq!(when("w")[0].values.len(), 2);
        // A block's `when` holds for each of its parameters, before their own.
        let eps = when("head.eps");
        assert_eq!(
            eps.iter().map(|c| c.parent.as_str()).collect::<Vec<_>>(),
            ["opt", "n"]
        );
        assert_eq!(when("head.b2").len(), 1);
        assert!(when("opt").is_empty());
        // The true grid size: opt, n and the active children only.
        //   sgd:  2 momenta × (n=1: 1, n=2: 2 widths, n=3: 2 widths) = 10
        //   adam: 2 betas  × (n=1: 1 eps, n=2: 2, n=3: 2) = 10
        assert_eq!(grid::grid_size(&v.parameters).unwrap(), 20);
        // Every point holds exactly its active parameters.
        for i in 0..20 {
            let point = grid::grid_point(&v.parameters, i).unwrap();
            let has = |n: &str| point.iter().any(|(k, _)| k == n);
            let get = |n: &str| point.iter().find(|(k, _)| k == n).unwrap().1.clone();
            let sgd = get("opt") == "sgd";
            assert_eq!(has("m"), sgd);
            assert_eq!(has("head.b2"), !sgd);
            assert_eq!(has("head.eps"), !sgd && get("n") == 1);
            assert_eq!(has("w"), get("n") != 1);
            assert!(has("c"));
        }
    }

    #[test]
    fn files_without_when_keep_their_grid_and_hash() {
        let text = "method: grid\nparameters:\n  a: {values: [1, 2]}\n  b: {values: [x, y, z]}\n";
        let v = parse_str(text, "s.yaml").unwrap().config;
        assert!(!serde_json::to_string(&v).unwrap().contains("when"));
        assert_eq!(grid::grid_size(&v.parameters).unwrap(), 6);
    }

    #[test]
    fn unknown_parent_is_reported_with_a_suggestion() {
        let text = format!("{HEAD}  m: {{min: 0.0, max: 1.0, when: {{optimizer: sgd}}}}\n");
        one_error(
            &text.replace("grid", "random"),
            "parameters.m.when.optimizer",
            4,
            "`optimizer`, which is not a parameter",
        );
    }

    #[test]
    fn a_value_the_parent_cannot_take() {
        let text = format!("{HEAD}  m:\n    values: [1, 2]\n    when: {{opt: sgdd}}\n");
        one_error(
            &text,
            "parameters.m.when.opt",
            6,
            "never takes the value `sgdd`",
        );
        let text = "method: random\nparameters:\n  opt: {values: [a, b], probabilities: [1.0, 0.0]}\n  m: {values: [1], when: {opt: b}}\n";
        one_error(
            text,
            "parameters.m.when.opt",
            4,
            "never takes the value `b`",
        );
    }

    #[test]
    fn a_continuous_parent_is_refused() {
        let text = "method: random\nparameters:\n  lr: {min: 0.0, max: 1.0}\n  m: {values: [1], when: {lr: 0.5}}\n";
        one_error(
            text,
            "parameters.m.when.lr",
            4,
            "need a parent with `values`",
        );
        let text = "method: random\nparameters:\n  n: {min: 1, max: 4}\n  m: {values: [1], when: {n: 2}}\n";
        one_error(text, "parameters.m.when.n", 4, "int_uniform (a range)");
    }

    #[test]
    fn cycles_are_reported() {
        let text = "method: random\nparameters:\n  a: {values: [1, 2], when: {b: 1}}\n  b: {values: [1, 2], when: {a: 1}}\n";
        one_error(text, "parameters.a.when.b", 3, "cycle: a → b → a");
        let text = "method: random\nparameters:\n  a: {values: [1, 2], when: {a: 1}}\n";
        one_error(text, "parameters.a.when.a", 3, "conditioned on itself");
    }

    #[test]
    fn conditions_that_never_hold() {
        // b exists only when a is 1, so c (needing a = 2 and b = 1) is never active.
        let text = "method: random\nparameters:\n  a: {values: [1, 2]}\n  b: {values: [1, 2], when: {a: 1}}\n  c: {values: [5], when: {a: 2, b: 1}}\n";
        one_error(text, "parameters.c.when", 5, "`c` can never be active");
        // Through a chain: d depends on c, which is never active.
        let text = "method: random\nparameters:\n  a: {values: [1, 2]}\n  b: {values: [1, 2], when: {a: 1}}\n  c: {values: [5], when: {a: 2, b: 1}}\n  d: {value: 0, when: {c: 5}}\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert_eq!((errs[1].0.as_str(), errs[1].1), ("parameters.d.when", 6));
    }

    #[test]
    fn malformed_when() {
        one_error(
            &format!("{HEAD}  m: {{values: [1], when: {{}}}}\n"),
            "parameters.m.when",
            4,
            "`when` is empty",
        );
        one_error(
            &format!("{HEAD}  m: {{values: [1], when: {{opt: []}}}}\n"),
            "parameters.m.when.opt",
            4,
            "the list of values is empty",
        );
        one_error(
            &format!("{HEAD}  m: {{values: [1], when: sgd}}\n"),
            "parameters.m.when",
            4,
            "mapping",
        );
    }
}
