//! Enumerating a finite search space, for `method: grid`.
//!
//! # Which values
//!
//! Each parameter contributes the values of [`Distribution::grid_values`]:
//!
//! - `constant`: its value;
//! - `categorical`: its values, in the order listed;
//! - `int_uniform`: `min..=max` ascending, both ends included;
//! - `q_uniform`: every multiple of `q` in `[min, max]` ascending, `max` included when it is a
//!   multiple of `q` (within 1e-9 of a step). `min: 0, max: 1, q: 0.25` gives
//!   `0, 0.25, 0.5, 0.75, 1`; `q: 0.3` gives `0, 0.3, 0.6, 0.9`; `min: 0.1, max: 1, q: 0.2`
//!   gives `0.2, 0.4, 0.6, 0.8, 1`.
//!
//! A value listed twice under `values` is one grid value (W&B runs each distinct configuration
//! once): see [`distinct_values`] for when two values are the same.
//!
//! Any other distribution makes the grid infinite: [`GridError::NotFinite`] names the first
//! such parameter.
//!
//! # Size and order
//!
//! The grid is the Cartesian product of the parameters' values, so its size is the product of
//! their [`Distribution::grid_len`]s (1 for no parameters). Points are numbered
//! `0..size` in mixed radix, with the parameters in the given order (file order): the
//! **first** parameter varies slowest and the **last** fastest, exactly like nested `for`
//! loops written in file order. Point `i` can be computed directly with [`grid_point`]
//! without enumerating the ones before it, and sizes are computed without listing values, so
//! a huge `int_uniform` costs nothing until its points are visited.
//!
//! # Conditional parameters
//!
//! With `when` (hyperdial addition, [`crate::condition`]), the grid holds only the valid
//! configurations: a parameter inactive in a configuration contributes no value to it, so no
//! two points differ only in inactive parameters, and [`grid_size`] is the true number of
//! configurations. Points are numbered like nested `for` loops in file order, except that a
//! parent parameter is moved before the parameters that name it in `when`, and the loop of a
//! parameter is skipped where it is inactive; [`grid_point`] leaves inactive parameters out.
//! Files without `when` are enumerated exactly as described above.
//!
//! # Difference from W&B
//!
//! W&B sorts parameters by name and enumerates the product with `itertools.product`, so its
//! first *alphabetical* parameter varies slowest; hyperdial keeps the file order. W&B's
//! `q_uniform` grid is `arange(min, max, q)`, which starts at `min` (even when it is not a
//! multiple of `q`) and never includes `max`; hyperdial's grid values are the values random
//! search can produce.

use serde_json::Value;

use crate::condition::{has_conditions, Tree};
use crate::model::{Distribution, Parameter};

/// Why a grid cannot be enumerated or a point does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// A parameter has no finite set of values.
    #[error(
        "parameter `{name}` has distribution `{distribution}`, which has no finite set of values; \
         grid search needs constant, categorical, int_uniform or q_uniform"
    )]
    NotFinite {
        /// Dotted name of the parameter.
        name: String,
        /// W&B name of its distribution.
        distribution: &'static str,
    },
    /// A point index at or beyond the grid size.
    #[error("grid point {index} does not exist: the grid has {size} points")]
    OutOfRange {
        /// The requested index.
        index: u128,
        /// The number of points.
        size: u128,
    },
    /// The product of the value counts does not fit in 128 bits.
    #[error("the grid has more than 2^128 points")]
    TooLarge,
    /// The conditions (`when`) name an unknown parameter or form a cycle (a config that
    /// did not come from [`crate::parse`]).
    #[error("the parameters' conditions (`when`) name an unknown parameter or form a cycle")]
    Conditions,
}

/// One parameter's axis of the grid: its distinct values, or a distribution that enumerates
/// its own (int_uniform and q_uniform ranges are never materialized).
#[derive(Debug, Clone)]
enum Axis<'a> {
    Values(Vec<Value>),
    Dist(&'a Distribution),
}

impl Axis<'_> {
    fn len(&self) -> u128 {
        match self {
            Axis::Values(values) => values.len() as u128,
            Axis::Dist(d) => d.grid_len_exact().unwrap_or(0),
        }
    }

    /// Value `digit` of an axis whose length was checked.
    fn value(&self, digit: u128) -> Value {
        match self {
            Axis::Values(values) => usize::try_from(digit)
                .ok()
                .and_then(|i| values.get(i))
                .cloned()
                .unwrap_or(Value::Null),
            Axis::Dist(d) => d.grid_value(digit).unwrap_or(Value::Null),
        }
    }
}

/// The axes of the grid, in order.
fn axes(params: &[Parameter]) -> Result<Vec<Axis<'_>>, GridError> {
    params
        .iter()
        .map(|p| match &p.distribution {
            Distribution::Categorical { values } => Ok(Axis::Values(distinct_values(values))),
            d if d.grid_len_exact().is_some() => Ok(Axis::Dist(d)),
            d => Err(GridError::NotFinite {
                name: p.name.clone(),
                distribution: d.name(),
            }),
        })
        .collect()
}

/// The values a grid enumerates for one parameter (see the module docs), duplicates
/// removed; `None` for a distribution without a finite set of values.
pub fn axis_values(distribution: &Distribution) -> Option<Vec<Value>> {
    match distribution {
        Distribution::Categorical { values } => Some(distinct_values(values)),
        d => d.grid_values(),
    }
}

/// `values` with duplicates removed the way W&B's grid removes them: each distinct value
/// keeps the position of its first occurrence and the form of its last (W&B keeps the last
/// value per hash), so `[1, 2, 1.0]` gives `[1.0, 2]`.
///
/// Two values are the same when [`grid_key`]s are equal: a float with an integral value
/// equals that integer (`1.0` and `1`), at the top level only (inside a list or mapping
/// `1.0` and `1` differ, as in W&B); a string never equals a number (`"1"` and `1` differ),
/// nor a boolean an integer; mappings compare without regard to key order.
pub fn distinct_values(values: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(values.len());
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for v in values {
        match index.entry(grid_key(v)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = v.clone(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(v.clone());
            }
        }
    }
    out
}

/// The identity of a grid value under W&B's equality (W&B hashes `yaml.dump(value,
/// sort_keys=True)` after turning an integral float into an integer); see
/// [`distinct_values`].
pub fn grid_key(value: &Value) -> String {
    let mut out = String::new();
    write_key(value, true, &mut out);
    out
}

fn write_key(value: &Value, top: bool, out: &mut String) {
    match value {
        Value::Null => out.push('~'),
        Value::Bool(b) => out.push_str(if *b { "b:T" } else { "b:F" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&format!("i:{i}")),
            (None, Some(u), _) => out.push_str(&format!("i:{u}")),
            (None, None, Some(f))
                if top && f.is_finite() && f.fract() == 0.0 && f.abs() < 1e300 =>
            {
                // Python's int(f) is exact; print the integer without an exponent.
                out.push_str(&format!("i:{:.0}", f + 0.0));
            }
            _ => {
                out.push_str("f:");
                out.push_str(&crate::command::python_str(value));
            }
        },
        Value::String(s) => {
            out.push_str("s:");
            out.push_str(&Value::String(s.clone()).to_string());
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                write_key(item, false, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_key(&map[k], false, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// The number of grid values of each axis, in order.
fn radices(axes: &[Axis<'_>]) -> Vec<u128> {
    axes.iter().map(Axis::len).collect()
}

/// The product of the radices.
fn product(radices: &[u128]) -> Result<u128, GridError> {
    radices
        .iter()
        .try_fold(1u128, |acc, &n| acc.checked_mul(n))
        .ok_or(GridError::TooLarge)
}

/// The number of points in the grid: the product of every parameter's number of distinct
/// grid values ([`axis_values`]; 1 for no parameters, 0 if a parameter has no values).
///
/// Errors with [`GridError::NotFinite`] for the first parameter without a finite set of
/// values, or [`GridError::TooLarge`] if the product overflows `u128`.
pub fn grid_size(params: &[Parameter]) -> Result<u128, GridError> {
    let axes = axes(params)?;
    if has_conditions(params) {
        return tree(params, &axes)?.count().ok_or(GridError::TooLarge);
    }
    product(&radices(&axes))
}

/// The configurations of a space with conditions ([`crate::condition::Tree`]).
fn tree<'a>(params: &'a [Parameter], axes: &[Axis<'_>]) -> Result<Tree<'a>, GridError> {
    Tree::new(params, radices(axes), &|i| {
        (0..axes[i].len()).map(|d| axes[i].value(d)).collect()
    })
    .ok_or(GridError::Conditions)
}

/// Point `index` of a grid with conditions: the active parameters only.
fn conditional_point(
    params: &[Parameter],
    axes: &[Axis<'_>],
    tree: &mut Tree<'_>,
    index: u128,
) -> Result<Vec<(String, Value)>, GridError> {
    let size = tree.count().ok_or(GridError::TooLarge)?;
    let digits = tree
        .digits(index)
        .ok_or(GridError::OutOfRange { index, size })?;
    Ok(params
        .iter()
        .zip(axes)
        .zip(digits)
        .filter_map(|((p, axis), digit)| digit.map(|d| (p.name.clone(), axis.value(d))))
        .collect())
}

/// Point number `index` of the grid: one `(name, value)` pair per parameter, in the given
/// order. The first parameter varies slowest and the last fastest (mixed-radix decoding of
/// `index`).
///
/// Errors like [`grid_size`], or with [`GridError::OutOfRange`] when `index ≥ size`.
pub fn grid_point(params: &[Parameter], index: u128) -> Result<Vec<(String, Value)>, GridError> {
    let axes = axes(params)?;
    if has_conditions(params) {
        let mut tree = tree(params, &axes)?;
        return conditional_point(params, &axes, &mut tree, index);
    }
    let radices = radices(&axes);
    let size = product(&radices)?;
    if index >= size {
        return Err(GridError::OutOfRange { index, size });
    }
    let mut digits = vec![0u128; radices.len()];
    let mut rest = index;
    for (digit, &radix) in digits.iter_mut().zip(&radices).rev() {
        *digit = rest % radix;
        rest /= radix;
    }
    Ok(params
        .iter()
        .zip(&axes)
        .zip(digits)
        .map(|((p, axis), digit)| (p.name.clone(), axis.value(digit)))
        .collect())
}

/// An iterator over every grid point in index order (see [`grid_point`]); created by [`iter`].
///
/// Points are computed one at a time: memory does not grow with the grid size.
#[derive(Debug, Clone)]
pub struct Grid<'a> {
    params: &'a [Parameter],
    axes: Vec<Axis<'a>>,
    radices: Vec<u128>,
    /// Mixed-radix digits of the next point.
    digits: Vec<u128>,
    /// Index of the next point.
    next: u128,
    size: u128,
    /// The configurations, when parameters have conditions.
    tree: Option<Tree<'a>>,
}

/// An iterator over every point of the grid, in index order.
///
/// Errors like [`grid_size`].
pub fn iter(params: &[Parameter]) -> Result<Grid<'_>, GridError> {
    let axes = axes(params)?;
    let radices = radices(&axes);
    let (size, tree) = if has_conditions(params) {
        let mut tree = tree(params, &axes)?;
        (tree.count().ok_or(GridError::TooLarge)?, Some(tree))
    } else {
        (product(&radices)?, None)
    };
    Ok(Grid {
        params,
        axes,
        digits: vec![0; radices.len()],
        radices,
        next: 0,
        size,
        tree,
    })
}

impl Grid<'_> {
    /// The total number of points, including those already yielded.
    pub fn size(&self) -> u128 {
        self.size
    }

    /// The index of the next point to be yielded (equal to [`Grid::size`] when exhausted).
    pub fn position(&self) -> u128 {
        self.next
    }
}

impl Iterator for Grid<'_> {
    type Item = Vec<(String, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.size {
            return None;
        }
        if let Some(tree) = &mut self.tree {
            let point = conditional_point(self.params, &self.axes, tree, self.next).ok()?;
            self.next += 1;
            return Some(point);
        }
        let point = self
            .params
            .iter()
            .zip(&self.axes)
            .zip(&self.digits)
            .map(|((p, axis), &digit)| (p.name.clone(), axis.value(digit)))
            .collect();
        // Odometer increment: the last parameter turns fastest.
        for (digit, &radix) in self.digits.iter_mut().zip(&self.radices).rev() {
            *digit += 1;
            if *digit < radix {
                break;
            }
            *digit = 0;
        }
        self.next += 1;
        Some(point)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.size - self.next;
        match usize::try_from(remaining) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostic::Location;
    use crate::model::Quantum;

    fn param(name: &str, distribution: Distribution) -> Parameter {
        Parameter {
            name: name.to_owned(),
            path: name.split('.').map(str::to_owned).collect(),
            distribution,
            when: Vec::new(),
            location: Location::default(),
        }
    }

    fn q_uniform(min: f64, max: f64, q: f64) -> Distribution {
        Distribution::QUniform {
            min,
            max,
            q: Quantum {
                q,
                integer: q.fract() == 0.0,
            },
        }
    }

    fn values(d: &Distribution) -> Vec<Value> {
        d.grid_values().expect("finite")
    }

    fn small_grid() -> Vec<Parameter> {
        vec![
            param(
                "optimizer",
                Distribution::Categorical {
                    values: vec![json!("adam"), json!("sgd")],
                },
            ),
            param("layers", Distribution::IntUniform { min: 1, max: 3 }),
            param("dropout", q_uniform(0.0, 0.5, 0.25)),
        ]
    }

    #[test]
    fn small_grid_order_and_size() {
        let params = small_grid();
        assert_eq!(grid_size(&params).unwrap(), 2 * 3 * 3);
        let points: Vec<_> = iter(&params).unwrap().collect();
        assert_eq!(points.len(), 18);
        let flat = |p: &Vec<(String, Value)>| p.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
        assert_eq!(flat(&points[0]), vec![json!("adam"), json!(1), json!(0.0)]);
        assert_eq!(flat(&points[1]), vec![json!("adam"), json!(1), json!(0.25)]);
        assert_eq!(flat(&points[2]), vec![json!("adam"), json!(1), json!(0.5)]);
        assert_eq!(flat(&points[3]), vec![json!("adam"), json!(2), json!(0.0)]);
        assert_eq!(flat(&points[9]), vec![json!("sgd"), json!(1), json!(0.0)]);
        assert_eq!(flat(&points[17]), vec![json!("sgd"), json!(3), json!(0.5)]);
        let names: Vec<_> = points[5].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["optimizer", "layers", "dropout"]);
        for (i, point) in points.iter().enumerate() {
            assert_eq!(&grid_point(&params, i as u128).unwrap(), point, "point {i}");
        }
        assert_eq!(
            grid_point(&params, 18),
            Err(GridError::OutOfRange {
                index: 18,
                size: 18
            })
        );
    }

    #[test]
    fn every_point_distinct() {
        let params = small_grid();
        let points: Vec<_> = iter(&params).unwrap().collect();
        for i in 0..points.len() {
            for j in i + 1..points.len() {
                assert_ne!(points[i], points[j], "points {i} and {j}");
            }
        }
    }

    #[test]
    fn iterator_reports_size_and_position() {
        let params = small_grid();
        let mut grid = iter(&params).unwrap();
        assert_eq!(grid.size(), 18);
        assert_eq!(grid.size_hint(), (18, Some(18)));
        grid.next();
        assert_eq!(grid.position(), 1);
        assert_eq!(grid.count(), 17);
    }

    #[test]
    fn q_uniform_includes_max_when_multiple() {
        let d = q_uniform(0.0, 1.0, 0.25);
        assert_eq!(d.grid_len(), Some(5));
        assert_eq!(
            values(&d),
            vec![json!(0.0), json!(0.25), json!(0.5), json!(0.75), json!(1.0)]
        );
        let d = q_uniform(0.0, 1.0, 0.3);
        assert_eq!(
            values(&d),
            vec![json!(0.0), json!(0.3), json!(0.6), json!(0.9)]
        );
        let d = q_uniform(0.1, 1.0, 0.2);
        assert_eq!(
            values(&d),
            vec![json!(0.2), json!(0.4), json!(0.6), json!(0.8), json!(1.0)]
        );
        let d = q_uniform(0.0, 0.3, 0.1);
        assert_eq!(
            values(&d),
            vec![json!(0.0), json!(0.1), json!(0.2), json!(0.3)]
        );
        let d = q_uniform(-4.0, 10.0, 5.0);
        assert_eq!(values(&d), vec![json!(0), json!(5), json!(10)]);
    }

    #[test]
    fn huge_int_uniform_size_without_allocating() {
        let params = vec![
            param(
                "seed",
                Distribution::IntUniform {
                    min: i64::MIN,
                    max: i64::MAX,
                },
            ),
            param(
                "big",
                Distribution::IntUniform {
                    min: 0,
                    max: 999_999_999_999,
                },
            ),
        ];
        assert_eq!(
            grid_size(&params).unwrap(),
            (1u128 << 64) * 1_000_000_000_000
        );
        let last = grid_point(&params, grid_size(&params).unwrap() - 1).unwrap();
        assert_eq!(last[0].1, json!(i64::MAX));
        assert_eq!(last[1].1, json!(999_999_999_999_i64));
        let mut grid = iter(&params).unwrap();
        assert_eq!(grid.next().unwrap()[0].1, json!(i64::MIN));
        assert_eq!(grid.next().unwrap()[1].1, json!(1));
        let overflow = vec![params[0].clone(), params[0].clone(), params[0].clone()];
        assert_eq!(grid_size(&overflow), Err(GridError::TooLarge));
    }

    #[test]
    fn not_finite_names_first_offender() {
        let params = vec![
            param("a", Distribution::Constant { value: json!(1) }),
            param(
                "opt.lr",
                Distribution::LogUniformValues {
                    min: 1e-4,
                    max: 1e-1,
                },
            ),
            param(
                "b",
                Distribution::Normal {
                    mu: 0.0,
                    sigma: 1.0,
                },
            ),
        ];
        let err = grid_size(&params).unwrap_err();
        assert_eq!(
            err,
            GridError::NotFinite {
                name: "opt.lr".into(),
                distribution: "log_uniform_values"
            }
        );
        assert!(err.to_string().contains("`opt.lr`"));
        assert!(iter(&params).is_err());
        let weighted = vec![param(
            "w",
            Distribution::CategoricalWithProbabilities {
                values: vec![json!(1)],
                probabilities: vec![1.0],
            },
        )];
        assert!(matches!(
            grid_size(&weighted),
            Err(GridError::NotFinite { .. })
        ));
    }

    #[test]
    fn empty_and_degenerate_grids() {
        assert_eq!(grid_size(&[]).unwrap(), 1);
        assert_eq!(iter(&[]).unwrap().collect::<Vec<_>>(), vec![Vec::new()]);
        let empty = vec![param("x", Distribution::Categorical { values: vec![] })];
        assert_eq!(grid_size(&empty).unwrap(), 0);
        assert_eq!(iter(&empty).unwrap().count(), 0);
    }

    #[test]
    fn duplicate_values_are_one_grid_value_under_wandbs_equality() {
        // 1 and 1.0 are the same at the top level (the last form is kept, at the first
        // place), but not inside a list; "1" and true differ from 1; mapping key order does
        // not matter.
        let values = vec![
            json!(1),
            json!("1"),
            json!({"a": 1, "b": [2.0]}),
            json!(true),
            json!(1.0),
            json!({"b": [2.0], "a": 1}),
            json!([1]),
            json!([1.0]),
            json!(-0.0),
            json!(0),
            json!(null),
        ];
        assert_eq!(
            distinct_values(&values),
            vec![
                json!(1.0),
                json!("1"),
                json!({"b": [2.0], "a": 1}),
                json!(true),
                json!([1]),
                json!([1.0]),
                json!(0),
                json!(null),
            ]
        );
        let params = vec![
            param(
                "p",
                Distribution::Categorical {
                    values: vec![
                        json!({"layers": 1}),
                        json!({"layers": 2}),
                        json!({"layers": 2}),
                    ],
                },
            ),
            param(
                "q",
                Distribution::Categorical {
                    values: vec![json!(3), json!(3), json!(4)],
                },
            ),
            param(
                "c",
                Distribution::Constant {
                    value: json!([1, 1]),
                },
            ),
        ];
        assert_eq!(grid_size(&params).unwrap(), 4);
        let points: Vec<_> = iter(&params).unwrap().collect();
        assert_eq!(points.len(), 4);
        assert_eq!(points[3][0].1, json!({"layers": 2}));
        assert_eq!(points[3][1].1, json!(4));
        assert_eq!(grid_point(&params, 3).unwrap(), points[3]);
        assert_eq!(
            axis_values(&params[1].distribution),
            Some(vec![json!(3), json!(4)])
        );
    }
}
