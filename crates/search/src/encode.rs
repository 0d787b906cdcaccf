//! The search space as model-based strategies see it.
//!
//! Every non-constant parameter becomes one *dimension*:
//!
//! - **numeric** (every continuous, integer and quantized distribution): one coordinate
//!   `u ∈ [0, 1]`, the distribution's unit coordinate ([`Distribution::to_unit`] /
//!   [`Distribution::from_unit`]). Unit coordinates are the distribution's CDF, so
//!   log-scale parameters (`log_uniform_values`, …) are searched in log space, normal ones in
//!   probability space, and the prior of each parameter is uniform in its coordinate.
//!   Integer and quantized parameters are *discrete*: a coordinate is snapped to the centre
//!   of the cell that decodes to the same value ([`Space::snap`]), so observations and
//!   suggestions sit on the values the parameter can take.
//! - **ordinal**: a `values` list of three or more distinct numbers (JSON integers or
//!   floats; no booleans, strings or other values mixed in), such as
//!   `batch_size: {values: [16, 32, 64, 128]}`. Its sorted distinct values `v_1 < … < v_k`
//!   sit at fixed positions in `[0, 1]`: `(ln v_i − ln v_1)/(ln v_k − ln v_1)` when the list
//!   is *geometric*, `(v_i − v_1)/(v_k − v_1)` otherwise. A list is geometric when every value
//!   is positive and its gaps in log space are much more even than its gaps in value space:
//!   `max/min` of the gaps `ln v_{i+1} − ln v_i` is at most half of `max/min` of the gaps
//!   `v_{i+1} − v_i` (see [`is_geometric`]: `[16, 32, 64, 128]` (ratios 1 and 4) and
//!   `[1e-4, 3e-4, 1e-3]` (1.10 and 3.5) are geometric; `[1, 2, 3, 4]` (2.41 and 1) and
//!   `[0, 0.1, 0.5]` (a zero) are not). A coordinate snaps to the nearest position and
//!   decodes to that value exactly as it was written (`64` stays an integer, `1e-4` the
//!   float), so every suggestion is one of the listed values. Sobol points
//!   ([`Space::from_cube`]) pick among the values uniformly, as random search does. Two
//!   numbers carry no order worth modelling (one coordinate at 0 or 1 is what their one-hot
//!   pair says already), so a two-value list stays categorical. This follows how GP and
//!   TPE libraries treat a numeric choice list (Optuna's `suggest_categorical` does not;
//!   its `suggest_int`/`suggest_float` with `step` and `log` do, which is what a list of
//!   evenly spaced or geometric numbers means).
//! - **categorical**: an index into the values with positive probability. The Gaussian
//!   process sees it one-hot ([`Space::features`]): one input and one length scale per
//!   choice, so the distance between two choices is learned per pair of inputs rather than
//!   fixed; TPE uses a smoothed categorical kernel (see [`crate::tpe`]).
//!
//! Constants are no dimension; [`Space::decode`] adds them back.
//!
//! **Conditional parameters** (`when`, see [`hyperdial_space::condition`]). A point holds NaN
//! at the coordinate of a parameter that is inactive there; [`Space::snap`] puts a point in
//! that canonical form (a coordinate whose parent moved so that it became active starts at
//! the middle of its range), [`Space::encode`] gives NaN for a run's inactive parameters,
//! and [`Space::decode`] leaves inactive parameters (constants included) out. [`Space::key`]
//! names inactive coordinates `null`, so configurations are compared over active parameters
//! only, and [`Space::size`] and [`Space::nth`] count and number the valid configurations.
//! The Gaussian process sees an inactive coordinate *imputed* ([`Space::features`]): a
//! numeric or ordinal one at 0.5, a categorical one as an all-zero one-hot block. Two
//! configurations in which a parameter is inactive are then at distance 0 along it, so the
//! parameter neither separates nor correlates them; whether it is active is a function of
//! its parents' values, which are features already, so no indicator column is added. This is
//! the imputation approach to conditional spaces (a fixed value for inactive parameters, as
//! SMAC gives its random forest, and as Lévesque et al., "Bayesian Optimization for
//! Conditional Hyperparameter Spaces", IJCNN 2017, study for Gaussian processes).
//!
//! **Finite spaces.** [`Space::size`] is the number of distinct configurations when every
//! dimension has finitely many values (categorical and ordinal ones, `int_uniform`, the
//! bounded `q_*` distributions; [`Distribution::value_count`]), computed in `u128` and
//! saturating at `u128::MAX`; `None` as soon as one dimension is continuous or unbounded.
//! [`Space::key`] names the configuration a point decodes to, so strategies can tell which
//! configurations have been tried ([`crate::finite`]).

use hyperdial_space::condition::{active_flags, has_conditions, Tree};
use hyperdial_space::{Distribution, SweepConfig};
use serde_json::Value;

/// One searched dimension.
#[derive(Debug, Clone)]
pub enum Dim {
    /// A unit coordinate.
    Numeric {
        /// Index of the parameter in the config.
        param: usize,
        /// Whether only some coordinates are values (integers, quantized).
        discrete: bool,
        /// For discrete ones, the number of values when small enough to matter for kernels
        /// (`None`: many).
        cells: Option<u64>,
    },
    /// A numeric `values` list searched as an ordered dimension (see the module docs).
    Ordinal {
        /// Index of the parameter in the config.
        param: usize,
        /// The distinct values, ascending, each in its first written form.
        values: Vec<Value>,
        /// Their numbers, ascending.
        numbers: Vec<f64>,
        /// Their positions in `[0, 1]`, ascending, from 0 to 1.
        positions: Vec<f64>,
        /// Whether the positions are in log space (the list is geometric).
        log: bool,
    },
    /// A choice among `choices`.
    Categorical {
        /// Index of the parameter in the config.
        param: usize,
        /// The values with positive probability, in file order.
        choices: Vec<Value>,
    },
}

impl Dim {
    /// Index of the parameter in the config.
    pub fn param(&self) -> usize {
        match self {
            Dim::Numeric { param, .. }
            | Dim::Ordinal { param, .. }
            | Dim::Categorical { param, .. } => *param,
        }
    }

    /// Whether the GP sees the dimension as one numeric input (numeric and ordinal ones).
    pub fn is_numeric(&self) -> bool {
        !matches!(self, Dim::Categorical { .. })
    }

    /// Half the mean gap between neighbouring values, for dimensions with few values: the
    /// narrowest useful kernel along them. 0 for continuous or finely discrete ones.
    pub fn half_cell(&self) -> f64 {
        match self {
            Dim::Numeric { cells, .. } => cells.map_or(0.0, |c| 0.5 / c as f64),
            Dim::Ordinal { positions, .. } => 0.5 / (positions.len() - 1) as f64,
            Dim::Categorical { .. } => 0.0,
        }
    }
}

/// A point of the space: one coordinate per dimension (categorical ones hold the choice
/// index as a float).
pub type Point = Vec<f64>;

/// Whether the ascending distinct `numbers` (at least three) form a geometric list: all
/// positive, and `max/min` of their log-space gaps at most half of `max/min` of their
/// value-space gaps.
///
/// ```
/// use hyperdial_search::encode::is_geometric;
/// assert!(is_geometric(&[16.0, 32.0, 64.0, 128.0]));
/// assert!(is_geometric(&[1e-4, 3e-4, 1e-3]));
/// assert!(!is_geometric(&[1.0, 2.0, 3.0, 4.0]));
/// assert!(!is_geometric(&[0.0, 0.1, 0.5]));
/// ```
pub fn is_geometric(numbers: &[f64]) -> bool {
    if numbers.len() < 3 || numbers[0] <= 0.0 {
        return false;
    }
    let spread = |gaps: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = gaps.fold((f64::INFINITY, 0.0f64), |(lo, hi), g| {
            (lo.min(g), hi.max(g))
        });
        hi / lo
    };
    let lin = spread(&mut numbers.windows(2).map(|w| w[1] - w[0]));
    let log = spread(&mut numbers.windows(2).map(|w| w[1].ln() - w[0].ln()));
    log.is_finite() && lin.is_finite() && 2.0 * log <= lin
}

/// The ordinal dimension of a `values` list, when it is one: three or more distinct
/// finite numbers and nothing else.
/// Whether a `values` list is searched as ordered values (see the module docs), and on which
/// scale: `Some(true)` for a geometric list (log-spaced), `Some(false)` for another list of at
/// least three distinct finite numbers, `None` for a list that stays categorical. What
/// [`Space::new`] decides for the list, for those that show or analyse a parameter as the
/// search sees it (`hyperdial validate`, importances).
pub fn ordered_scale(values: &[Value]) -> Option<bool> {
    let listed: Vec<&Value> = values.iter().collect();
    match ordinal(0, &listed)? {
        Dim::Ordinal { log, .. } => Some(log),
        _ => None,
    }
}

fn ordinal(param: usize, values: &[&Value]) -> Option<Dim> {
    let mut pairs: Vec<(f64, Value)> = Vec::new();
    for v in values {
        let Value::Number(n) = v else {
            return None;
        };
        let x = n.as_f64()?;
        if !x.is_finite() {
            return None;
        }
        if !pairs.iter().any(|(y, _)| *y == x) {
            pairs.push((x, (*v).clone()));
        }
    }
    if pairs.len() < 3 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let numbers: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let log = is_geometric(&numbers);
    let t = |x: f64| if log { x.ln() } else { x };
    let (lo, hi) = (t(numbers[0]), t(numbers[numbers.len() - 1]));
    let mut positions: Vec<f64> = numbers
        .iter()
        .map(|&x| ((t(x) - lo) / (hi - lo)).clamp(0.0, 1.0))
        .collect();
    // Ends exactly at 0 and 1, positions strictly increasing even where rounding ties them.
    positions[0] = 0.0;
    let k = positions.len();
    positions[k - 1] = 1.0;
    if positions.windows(2).any(|w| w[1] <= w[0]) {
        positions = (0..k).map(|i| i as f64 / (k - 1) as f64).collect();
    }
    Some(Dim::Ordinal {
        param,
        values: pairs.into_iter().map(|p| p.1).collect(),
        numbers,
        positions,
        log,
    })
}

/// The index of the position nearest to `x`.
fn nearest(positions: &[f64], x: f64) -> usize {
    let i = positions.partition_point(|&p| p < x);
    if i == 0 {
        0
    } else if i == positions.len() {
        positions.len() - 1
    } else if x - positions[i - 1] <= positions[i] - x {
        i - 1
    } else {
        i
    }
}

/// The encoded space of a config.
#[derive(Debug, Clone)]
pub struct Space<'a> {
    config: &'a SweepConfig,
    /// The searched dimensions, in parameter order.
    pub dims: Vec<Dim>,
    /// Width of the feature vector (numeric and ordinal dims plus one column per category).
    pub width: usize,
    /// Whether parameters have conditions (`when`): points then hold NaN at inactive
    /// dimensions (see the module docs).
    conditional: bool,
}

impl<'a> Space<'a> {
    /// Encode the parameters of `config`.
    pub fn new(config: &'a SweepConfig) -> Self {
        let mut dims = Vec::new();
        let mut width = 0;
        for (param, p) in config.parameters.iter().enumerate() {
            let listed: Option<Vec<&Value>> = match &p.distribution {
                Distribution::Categorical { values } => Some(values.iter().collect()),
                Distribution::CategoricalWithProbabilities {
                    values,
                    probabilities,
                } => Some(
                    values
                        .iter()
                        .zip(probabilities)
                        .filter(|(_, &p)| p > 0.0)
                        .map(|(v, _)| v)
                        .collect(),
                ),
                _ => None,
            };
            match (&p.distribution, listed) {
                (Distribution::Constant { .. }, _) => {}
                (_, Some(listed)) => {
                    if let Some(dim) = ordinal(param, &listed) {
                        width += 1;
                        dims.push(dim);
                        continue;
                    }
                    let choices = dedup(listed.into_iter());
                    if choices.len() > 1 {
                        width += choices.len();
                        dims.push(Dim::Categorical { param, choices });
                    }
                }
                (d, None) => {
                    if d.grid_len() == Some(1) {
                        continue;
                    }
                    let discrete = d.is_integer_valued()
                        || d.grid_len().is_some()
                        || matches!(
                            d,
                            Distribution::QLogUniform { .. }
                                | Distribution::QLogUniformValues { .. }
                                | Distribution::QNormal { .. }
                                | Distribution::QLogNormal { .. }
                                | Distribution::QBeta { .. }
                        );
                    let cells = d.grid_len().filter(|&n| n <= 1 << 20);
                    width += 1;
                    dims.push(Dim::Numeric {
                        param,
                        discrete,
                        cells,
                    });
                }
            }
        }
        Space {
            config,
            dims,
            width,
            conditional: has_conditions(&config.parameters),
        }
    }

    /// Whether parameters have conditions (`when`), so that points may hold NaN at
    /// inactive dimensions.
    pub fn is_conditional(&self) -> bool {
        self.conditional
    }

    /// The same space restricted to the dimensions `keep` (indices into [`Space::dims`]),
    /// without conditions: a view in which a model sees a group of dimensions that are
    /// active together. Points of the view hold those coordinates only.
    pub fn restricted(&self, keep: &[usize]) -> Space<'a> {
        let dims: Vec<Dim> = keep.iter().map(|&k| self.dims[k].clone()).collect();
        let width = dims
            .iter()
            .map(|d| match d {
                Dim::Categorical { choices, .. } => choices.len(),
                Dim::Numeric { .. } | Dim::Ordinal { .. } => 1,
            })
            .sum();
        Space {
            config: self.config,
            dims,
            width,
            conditional: false,
        }
    }

    /// Each parameter's value at `point` (NaN coordinates: none; constants: their value).
    fn param_values(&self, point: &[f64]) -> Vec<Option<Value>> {
        let mut values: Vec<Option<Value>> = self
            .config
            .parameters
            .iter()
            .map(|p| Some(p.distribution.from_unit(0.5)))
            .collect();
        for (dim, &x) in self.dims.iter().zip(point) {
            values[dim.param()] = (!x.is_nan()).then(|| self.value(dim, x));
        }
        values
    }

    /// Which parameters are active at `point`.
    fn active_at(&self, point: &[f64]) -> Vec<bool> {
        let values = self.param_values(point);
        active_flags(&self.config.parameters, &|i| values[i].as_ref())
    }

    /// The configurations of a conditional finite space, with each dimension's values.
    fn tree(&self) -> Option<Tree<'a>> {
        let params = &self.config.parameters;
        let mut radix = vec![1u128; params.len()];
        let mut values: Vec<Vec<Value>> = params
            .iter()
            .map(|p| vec![p.distribution.from_unit(0.5)])
            .collect();
        for dim in &self.dims {
            radix[dim.param()] = self.cardinality(dim)?;
            values[dim.param()] = match dim {
                Dim::Ordinal { values, .. } => values.clone(),
                Dim::Categorical { choices, .. } => choices.clone(),
                Dim::Numeric { .. } => Vec::new(),
            };
        }
        Tree::new(params, radix, &|i| values[i].clone())
    }

    /// The number of dimensions.
    pub fn len(&self) -> usize {
        self.dims.len()
    }

    /// Whether nothing is searched (every parameter constant).
    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    fn distribution(&self, param: usize) -> &Distribution {
        &self.config.parameters[param].distribution
    }

    /// The number of values of each dimension, when finite.
    fn cardinality(&self, dim: &Dim) -> Option<u128> {
        match dim {
            Dim::Numeric { param, .. } => self.distribution(*param).value_count(),
            Dim::Ordinal { values, .. } => Some(values.len() as u128),
            Dim::Categorical { choices, .. } => Some(choices.len() as u128),
        }
    }

    /// The number of distinct configurations, when every dimension is finite (saturating at
    /// `u128::MAX`); `None` when one is continuous or unbounded. An empty space has one.
    pub fn size(&self) -> Option<u128> {
        if self.conditional {
            // Every dimension must be finite, then the configurations are counted over the
            // active parameters only.
            for dim in &self.dims {
                self.cardinality(dim)?;
            }
            return Some(self.tree()?.count().unwrap_or(u128::MAX));
        }
        self.dims.iter().try_fold(1u128, |acc, dim| {
            Some(acc.saturating_mul(self.cardinality(dim)?))
        })
    }

    /// Configuration number `index` of a finite space (mixed radix, the last dimension
    /// fastest), as a snapped point; `None` when the space is not finite or `index` is out
    /// of range.
    pub fn nth(&self, mut index: u128) -> Option<Point> {
        if self.conditional {
            let digits = self.tree()?.digits(index)?;
            let mut point: Point = Vec::with_capacity(self.dims.len());
            for dim in &self.dims {
                point.push(match (dim, digits[dim.param()]) {
                    (_, None) => f64::NAN,
                    (Dim::Numeric { param, .. }, Some(i)) => {
                        let d = self.distribution(*param);
                        d.to_unit(&d.value_at(i)?)?
                    }
                    (Dim::Ordinal { positions, .. }, Some(i)) => positions[i as usize],
                    (Dim::Categorical { .. }, Some(i)) => i as f64,
                });
            }
            self.snap(&mut point);
            return Some(point);
        }
        let mut point = vec![0.0; self.dims.len()];
        for (k, dim) in self.dims.iter().enumerate().rev() {
            let n = self.cardinality(dim)?;
            let i = index % n;
            index /= n;
            point[k] = match dim {
                Dim::Numeric { param, .. } => {
                    let d = self.distribution(*param);
                    d.to_unit(&d.value_at(i)?)?
                }
                Dim::Ordinal { positions, .. } => positions[i as usize],
                Dim::Categorical { .. } => i as f64,
            };
        }
        if index != 0 {
            return None;
        }
        self.snap(&mut point);
        Some(point)
    }

    /// The point of a run's flat parameters; `None` when a value is missing or not a value
    /// of its distribution (e.g. the config changed since).
    pub fn encode(&self, params: &serde_json::Map<String, Value>) -> Option<Point> {
        let active = if self.conditional {
            let all = &self.config.parameters;
            active_flags(all, &|i| params.get(&all[i].name))
        } else {
            Vec::new()
        };
        self.dims
            .iter()
            .map(|dim| {
                let p = &self.config.parameters[dim.param()];
                if self.conditional && !active[dim.param()] {
                    return Some(f64::NAN);
                }
                let v = params.get(&p.name)?;
                match dim {
                    Dim::Numeric { .. } => {
                        let u = p.distribution.to_unit(v)?;
                        u.is_finite().then_some(u)
                    }
                    Dim::Ordinal {
                        numbers, positions, ..
                    } => {
                        let Value::Number(n) = v else {
                            return None;
                        };
                        let x = n.as_f64()?;
                        numbers.iter().position(|&y| y == x).map(|i| positions[i])
                    }
                    Dim::Categorical { choices, .. } => {
                        choices.iter().position(|c| c == v).map(|i| i as f64)
                    }
                }
            })
            .collect()
    }

    /// Move every discrete coordinate to the centre of its value's cell, every ordinal one
    /// to the nearest value's position, and round categorical indices, so the point decodes
    /// to the values it stands for.
    pub fn snap(&self, point: &mut [f64]) {
        for (dim, x) in self.dims.iter().zip(point.iter_mut()) {
            if x.is_nan() {
                // An inactive coordinate that may have become active (its parent moved):
                // start it at the middle of its range.
                *x = match dim {
                    Dim::Numeric { .. } => 0.5,
                    Dim::Ordinal { positions, .. } => positions[positions.len() / 2],
                    Dim::Categorical { .. } => 0.0,
                };
            }
            match dim {
                Dim::Numeric {
                    param,
                    discrete: true,
                    ..
                } => {
                    let d = self.distribution(*param);
                    let u = x.clamp(0.0, 1.0);
                    *x = d.to_unit(&d.from_unit(u)).unwrap_or(u);
                }
                Dim::Numeric { .. } => *x = x.clamp(0.0, 1.0),
                Dim::Ordinal { positions, .. } => *x = positions[nearest(positions, *x)],
                Dim::Categorical { choices, .. } => {
                    *x = x.round().clamp(0.0, (choices.len() - 1) as f64);
                }
            }
        }
        if self.conditional {
            let active = self.active_at(point);
            for (dim, x) in self.dims.iter().zip(point.iter_mut()) {
                if !active[dim.param()] {
                    *x = f64::NAN;
                }
            }
        }
    }

    /// The value of dimension `dim` at coordinate `x`.
    fn value(&self, dim: &Dim, x: f64) -> Value {
        match dim {
            Dim::Numeric { param, .. } => self.distribution(*param).from_unit(x),
            Dim::Ordinal {
                values, positions, ..
            } => values[nearest(positions, x)].clone(),
            Dim::Categorical { choices, .. } => {
                let i = (x.round().max(0.0) as usize).min(choices.len() - 1);
                choices[i].clone()
            }
        }
    }

    /// The flat parameters of a point, constants included, in the config's order; in a
    /// conditional space the active parameters only.
    pub fn decode(&self, point: &[f64]) -> Vec<(String, Value)> {
        if self.conditional {
            let values = self.param_values(point);
            let active = active_flags(&self.config.parameters, &|i| values[i].as_ref());
            return self
                .config
                .parameters
                .iter()
                .zip(values)
                .zip(active)
                .filter_map(|((p, v), a)| Some((p.name.clone(), v.filter(|_| a)?)))
                .collect();
        }
        let mut values: Vec<Option<Value>> = vec![None; self.config.parameters.len()];
        for (dim, &x) in self.dims.iter().zip(point) {
            values[dim.param()] = Some(self.value(dim, x));
        }
        self.config
            .parameters
            .iter()
            .zip(values)
            .map(|(p, v)| {
                let v = v.unwrap_or_else(|| p.distribution.from_unit(0.5));
                (p.name.clone(), v)
            })
            .collect()
    }

    /// The configuration a point decodes to, as a comparable key: the JSON text of its
    /// searched values. Two points have the same key exactly when they decode to the same
    /// parameters.
    pub fn key(&self, point: &[f64]) -> String {
        let values: Vec<Value> = self
            .dims
            .iter()
            .zip(point)
            .map(|(dim, &x)| {
                if x.is_nan() {
                    Value::Null
                } else {
                    self.value(dim, x)
                }
            })
            .collect();
        serde_json::to_string(&values).unwrap_or_default()
    }

    /// A point from coordinates in `[0, 1)^len` (e.g. a Sobol point): numeric coordinates
    /// as they are, ordinal and categorical ones picking a value uniformly.
    pub fn from_cube(&self, cube: &[f64]) -> Point {
        let pick = |u: f64, k: usize| ((u * k as f64) as usize).min(k - 1);
        let mut p: Point = self
            .dims
            .iter()
            .zip(cube)
            .map(|(dim, &u)| match dim {
                Dim::Numeric { .. } => u,
                Dim::Ordinal { positions, .. } => positions[pick(u, positions.len())],
                Dim::Categorical { choices, .. } => pick(u, choices.len()) as f64,
            })
            .collect();
        self.snap(&mut p);
        p
    }

    /// The feature vector of a point for the Gaussian process: numeric and ordinal
    /// coordinates, then a one-hot block per categorical dimension, in dimension order.
    pub fn features(&self, point: &[f64], out: &mut Vec<f64>) {
        out.clear();
        for (dim, &x) in self.dims.iter().zip(point) {
            match dim {
                // An inactive dimension is imputed: the middle of a numeric range, no
                // category of a categorical one (see the module docs).
                Dim::Numeric { .. } | Dim::Ordinal { .. } if x.is_nan() => out.push(0.5),
                Dim::Categorical { choices, .. } if x.is_nan() => {
                    out.extend(std::iter::repeat_n(0.0, choices.len()));
                }
                Dim::Numeric { .. } | Dim::Ordinal { .. } => out.push(x),
                Dim::Categorical { choices, .. } => {
                    let i = x.round().max(0.0) as usize;
                    out.extend((0..choices.len()).map(|c| if c == i { 1.0 } else { 0.0 }));
                }
            }
        }
    }
}

/// Distinct values in first-seen order.
fn dedup<'v>(values: impl Iterator<Item = &'v Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}
