//! Conditional parameters (hyperdial addition): which parameters a configuration has.
//!
//! A parameter with `when` is *active* only in configurations where each of its
//! [`Condition`]s holds: the named parent parameter is itself active and took one of the
//! listed values (several keys mean "all of", a list means "one of"). A parameter without
//! `when` is always active. An inactive parameter is not part of the configuration at all:
//! strategies leave it out of the suggestion, so it is absent from the run's config, its
//! arguments and its command. `docs/config.md` ("Conditional parameters") is the user-facing
//! rule; [`crate::parse`] guarantees what this module relies on: every parent exists, is a
//! `values` list or a constant, the conditions form no cycle, and every parameter is active
//! in at least one configuration.
//!
//! Values are compared as the grid compares them ([`crate::grid::grid_key`]): `1` and `1.0`
//! are the same value, the string `"1"` is not.
//!
//! [`Tree`] counts and numbers the configurations of a finite space with conditions: the
//! parameters are visited in a stable topological order (file order, each parent moved before
//! the parameters that name it), the first varying slowest; an inactive parameter contributes
//! no digit, so two configurations never differ only in inactive parameters. Counting is
//! memoized on the values of the parents still to be consulted, so it costs about the
//! product of the parents' value counts, not the size of the space.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::diagnostic::Location;
use crate::grid::grid_key;
use crate::model::Parameter;

/// One key of a parameter's `when`: the parameter is active only when `parent` is active and
/// took one of `values`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    /// Dotted name of the parent parameter.
    pub parent: String,
    /// The parent values under which the condition holds (one of them), as written.
    pub values: Vec<Value>,
    /// Where the condition's key is written.
    #[serde(skip)]
    pub location: Location,
}

impl Condition {
    /// Whether the parent value `v` satisfies the condition.
    pub fn holds_for(&self, v: &Value) -> bool {
        let key = grid_key(v);
        self.values.iter().any(|c| grid_key(c) == key)
    }
}

/// Whether any parameter carries a condition.
pub fn has_conditions(params: &[Parameter]) -> bool {
    params.iter().any(|p| !p.when.is_empty())
}

/// The index of each condition's parent, per parameter (`None` for an unknown name).
fn parent_indices(params: &[Parameter]) -> Vec<Vec<Option<usize>>> {
    params
        .iter()
        .map(|p| {
            p.when
                .iter()
                .map(|c| params.iter().position(|q| q.name == c.parent))
                .collect()
        })
        .collect()
}

/// The parameters in a stable topological order: file order, except that a parent comes
/// before every parameter naming it. `None` when the conditions form a cycle or name an
/// unknown parameter.
pub fn topological_order(params: &[Parameter]) -> Option<Vec<usize>> {
    let parents = parent_indices(params);
    let mut placed = vec![false; params.len()];
    let mut order = Vec::with_capacity(params.len());
    while order.len() < params.len() {
        let next = (0..params.len())
            .find(|&i| !placed[i] && parents[i].iter().all(|p| p.is_some_and(|p| placed[p])))?;
        placed[next] = true;
        order.push(next);
    }
    Some(order)
}

/// Which parameters are active, given each parameter's value (`value(i)`; `None` when the
/// configuration has no value for it). A parameter is active when every condition's parent
/// is active, has a value, and that value satisfies the condition. Parameters on a cycle (a
/// file that failed validation) are inactive.
pub fn active_flags<'v>(
    params: &[Parameter],
    value: &dyn Fn(usize) -> Option<&'v Value>,
) -> Vec<bool> {
    let parents = parent_indices(params);
    let mut active = vec![true; params.len()];
    if !has_conditions(params) {
        return active;
    }
    match topological_order(params) {
        Some(order) => {
            for i in order {
                active[i] = params[i].when.iter().zip(&parents[i]).all(|(c, p)| {
                    p.is_some_and(|p| active[p] && value(p).is_some_and(|v| c.holds_for(v)))
                });
            }
        }
        None => {
            for (i, p) in params.iter().enumerate() {
                active[i] = p.when.is_empty();
            }
        }
    }
    active
}

/// `values` (by name, in the config's parameter order) without the parameters that are
/// inactive in that configuration. A configuration without conditions is returned as is.
pub fn retain_active(params: &[Parameter], values: Vec<(String, Value)>) -> Vec<(String, Value)> {
    if !has_conditions(params) {
        return values;
    }
    let flags = {
        let lookup = |i: usize| {
            values
                .iter()
                .find(|(n, _)| *n == params[i].name)
                .map(|(_, v)| v)
        };
        active_flags(params, &lookup)
    };
    values
        .into_iter()
        .filter(|(name, _)| {
            params
                .iter()
                .position(|p| p.name == *name)
                .is_none_or(|i| flags[i])
        })
        .collect()
}

/// Counts and numbers the configurations of a finite space with conditions (see the module
/// docs). Each parameter has a *radix* (its number of values, as the caller enumerates them);
/// a parent's values are given explicitly so conditions can be checked.
#[derive(Debug, Clone)]
pub struct Tree<'a> {
    params: &'a [Parameter],
    order: Vec<usize>,
    radix: Vec<u128>,
    /// The values of each parent parameter, by digit; empty for the others.
    values: Vec<Vec<Value>>,
    is_parent: Vec<bool>,
    parents: Vec<Vec<usize>>,
    /// Per position in `order`, the parents (placed before it) consulted at or after it.
    live: Vec<Vec<usize>>,
    memo: HashMap<(usize, Vec<Option<u128>>), Option<u128>>,
}

impl<'a> Tree<'a> {
    /// The tree of `params` whose parameter `i` has `radix[i]` values; `values(i)` lists a
    /// parent's values by digit (called for parents only). `None` when the conditions are
    /// not valid (an unknown parent or a cycle).
    pub fn new(
        params: &'a [Parameter],
        radix: Vec<u128>,
        values: &dyn Fn(usize) -> Vec<Value>,
    ) -> Option<Self> {
        let order = topological_order(params)?;
        let parents: Vec<Vec<usize>> = parent_indices(params)
            .into_iter()
            .map(|ps| ps.into_iter().collect::<Option<Vec<usize>>>())
            .collect::<Option<_>>()?;
        let mut is_parent = vec![false; params.len()];
        for ps in &parents {
            for &p in ps {
                is_parent[p] = true;
            }
        }
        let values = (0..params.len())
            .map(|i| if is_parent[i] { values(i) } else { Vec::new() })
            .collect();
        let mut position = vec![0; params.len()];
        for (k, &i) in order.iter().enumerate() {
            position[i] = k;
        }
        let live = (0..=order.len())
            .map(|k| {
                let mut l: Vec<usize> = order[k..]
                    .iter()
                    .flat_map(|&i| parents[i].iter().copied())
                    .filter(|&p| position[p] < k)
                    .collect();
                l.sort_unstable();
                l.dedup();
                l
            })
            .collect();
        Some(Tree {
            params,
            order,
            radix,
            values,
            is_parent,
            parents,
            live,
            memo: HashMap::new(),
        })
    }

    fn is_active(&self, i: usize, digits: &[Option<u128>]) -> bool {
        self.params[i]
            .when
            .iter()
            .zip(&self.parents[i])
            .all(|(c, &p)| {
                digits[p]
                    .and_then(|d| self.values[p].get(usize::try_from(d).ok()?))
                    .is_some_and(|v| c.holds_for(v))
            })
    }

    /// The number of completions of the configuration from position `k` on, given the
    /// digits chosen so far; `None` on overflow.
    fn count_from(&mut self, k: usize, digits: &mut Vec<Option<u128>>) -> Option<u128> {
        if k == self.order.len() {
            return Some(1);
        }
        let key = (k, self.live[k].iter().map(|&p| digits[p]).collect());
        if let Some(&c) = self.memo.get(&key) {
            return c;
        }
        let i = self.order[k];
        let count = if !self.is_active(i, digits) {
            digits[i] = None;
            self.count_from(k + 1, digits)
        } else if !self.is_parent[i] {
            digits[i] = Some(0);
            let rest = self.count_from(k + 1, digits);
            rest.and_then(|r| r.checked_mul(self.radix[i]))
        } else {
            let mut total = Some(0u128);
            for d in 0..self.radix[i] {
                digits[i] = Some(d);
                let rest = self.count_from(k + 1, digits);
                total = total.and_then(|t| t.checked_add(rest?));
            }
            total
        };
        digits[i] = None;
        self.memo.insert(key, count);
        count
    }

    /// The number of configurations; `None` when it does not fit in `u128`.
    pub fn count(&mut self) -> Option<u128> {
        let mut digits = vec![None; self.params.len()];
        self.count_from(0, &mut digits)
    }

    /// Configuration number `index`: per parameter (in the config's order) its digit, or
    /// `None` when it is inactive there. `None` when `index` is out of range.
    pub fn digits(&mut self, mut index: u128) -> Option<Vec<Option<u128>>> {
        let mut digits = vec![None; self.params.len()];
        if index >= self.count()? {
            return None;
        }
        for k in 0..self.order.len() {
            let i = self.order[k];
            if !self.is_active(i, &digits) {
                continue;
            }
            if !self.is_parent[i] {
                digits[i] = Some(0);
                let rest = self.count_from(k + 1, &mut digits)?;
                digits[i] = Some(index / rest);
                index %= rest;
                continue;
            }
            let mut chosen = false;
            for d in 0..self.radix[i] {
                digits[i] = Some(d);
                let rest = self.count_from(k + 1, &mut digits)?;
                if index < rest {
                    chosen = true;
                    break;
                }
                index -= rest;
            }
            if !chosen {
                return None;
            }
        }
        Some(digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_str;

    fn params(text: &str) -> Vec<Parameter> {
        parse_str(text, "t.yaml").unwrap().config.parameters
    }

    fn radix_tree(ps: &[Parameter]) -> Tree<'_> {
        let radix = ps
            .iter()
            .map(|p| crate::grid::axis_values(&p.distribution).unwrap().len() as u128)
            .collect();
        Tree::new(ps, radix, &|i| {
            crate::grid::axis_values(&ps[i].distribution).unwrap()
        })
        .unwrap()
    }

    #[test]
    fn activity_follows_parents_transitively() {
        let ps = params(
            "method: random\nparameters:\n  x: {values: [1, 2], when: {opt: sgd}}\n  opt: {values: [sgd, adam]}\n  y: {values: [3], when: {x: 2}}\n",
        );
        // The child is listed before its parent; the order moves the parent first.
        assert_eq!(topological_order(&ps).unwrap(), vec![1, 0, 2]);
        let flags = |opt: &str, x: i64| {
            let values = [Value::from(x), Value::from(opt), Value::from(3)];
            active_flags(&ps, &|i| Some(&values[i]))
        };
        assert_eq!(flags("sgd", 2), vec![true, true, true]);
        assert_eq!(flags("sgd", 1), vec![true, true, false]);
        // x is inactive under adam, so y is too, whatever value x would have had.
        assert_eq!(flags("adam", 2), vec![false, true, false]);
    }

    #[test]
    fn prior_runs_are_inside_a_conditional_space_by_their_active_parameters() {
        let config = parse_str(
            "method: tpe\nmetric: {name: m}\nparameters:\n  opt: {values: [sgd, adam]}\n  m: {min: 0.0, max: 1.0, when: {opt: sgd}}\n",
            "t.yaml",
        )
        .unwrap()
        .config;
        let inside = |v: serde_json::Value| crate::lineage::inside(&config, v.as_object().unwrap());
        assert!(inside(serde_json::json!({"opt": "adam"})).is_some());
        // A value of an inactive parameter is dropped; a missing active one is not inside.
        let kept = inside(serde_json::json!({"opt": "adam", "m": 0.5})).unwrap();
        assert!(!kept.contains_key("m"));
        assert!(inside(serde_json::json!({"opt": "sgd"})).is_none());
        assert!(inside(serde_json::json!({"opt": "sgd", "m": 0.5})).is_some());
    }

    #[test]
    fn tree_counts_and_numbers_each_configuration_once() {
        let ps = params(
            "method: grid\nparameters:\n  opt: {values: [sgd, adam]}\n  m: {values: [0.1, 0.9], when: {opt: sgd}}\n  b2: {values: [0.99, 0.999, 0.9999], when: {opt: adam}}\n  n: {values: [1, 2, 3]}\n  w3: {values: [64, 128], when: {n: [3], opt: [sgd, adam]}}\n",
        );
        let mut tree = radix_tree(&ps);
        // opt=sgd: 2 momenta; opt=adam: 3 betas; times n: 1, 2, or 3 with two widths (4).
        assert_eq!(tree.count(), Some((2 + 3) * 4));
        let mut seen = std::collections::HashSet::new();
        for i in 0..20 {
            let d = tree.digits(i).unwrap();
            let opt = d[0].unwrap();
            assert_eq!(d[1].is_some(), opt == 0);
            assert_eq!(d[2].is_some(), opt == 1);
            assert_eq!(d[4].is_some(), d[3] == Some(2));
            assert!(seen.insert(d));
        }
        assert!(tree.digits(20).is_none());
    }
}
