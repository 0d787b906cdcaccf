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
//! - **categorical**: an index into the values with positive probability. The Gaussian
//!   process sees it one-hot ([`Space::features`]), TPE as a categorical kernel.
//!
//! Constants are no dimension; [`Space::decode`] adds them back.

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
    /// A choice among `choices`.
    Categorical {
        /// Index of the parameter in the config.
        param: usize,
        /// The values with positive probability, in file order.
        choices: Vec<Value>,
    },
}

/// A point of the space: one coordinate per dimension (categorical ones hold the choice
/// index as a float).
pub type Point = Vec<f64>;

/// The encoded space of a config.
#[derive(Debug, Clone)]
pub struct Space<'a> {
    config: &'a SweepConfig,
    /// The searched dimensions, in parameter order.
    pub dims: Vec<Dim>,
    /// Width of the feature vector (numeric dims plus one column per category).
    pub width: usize,
}

impl<'a> Space<'a> {
    /// Encode the parameters of `config`.
    pub fn new(config: &'a SweepConfig) -> Self {
        let mut dims = Vec::new();
        let mut width = 0;
        for (param, p) in config.parameters.iter().enumerate() {
            match &p.distribution {
                Distribution::Constant { .. } => {}
                Distribution::Categorical { values } => {
                    let choices = dedup(values.iter());
                    if choices.len() > 1 {
                        width += choices.len();
                        dims.push(Dim::Categorical { param, choices });
                    }
                }
                Distribution::CategoricalWithProbabilities {
                    values,
                    probabilities,
                } => {
                    let choices = dedup(
                        values
                            .iter()
                            .zip(probabilities)
                            .filter(|(_, &p)| p > 0.0)
                            .map(|(v, _)| v),
                    );
                    if choices.len() > 1 {
                        width += choices.len();
                        dims.push(Dim::Categorical { param, choices });
                    }
                }
                d => {
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
        }
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

    /// The point of a run's flat parameters; `None` when a value is missing or not a value
    /// of its distribution (e.g. the config changed since).
    pub fn encode(&self, params: &serde_json::Map<String, Value>) -> Option<Point> {
        self.dims
            .iter()
            .map(|dim| match dim {
                Dim::Numeric { param, .. } => {
                    let p = &self.config.parameters[*param];
                    let u = p.distribution.to_unit(params.get(&p.name)?)?;
                    u.is_finite().then_some(u)
                }
                Dim::Categorical { param, choices } => {
                    let p = &self.config.parameters[*param];
                    let v = params.get(&p.name)?;
                    choices.iter().position(|c| c == v).map(|i| i as f64)
                }
            })
            .collect()
    }

    /// Move every discrete coordinate to the centre of its value's cell and round
    /// categorical indices, so the point decodes to the values it stands for.
    pub fn snap(&self, point: &mut [f64]) {
        for (dim, x) in self.dims.iter().zip(point.iter_mut()) {
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
                Dim::Categorical { choices, .. } => {
                    *x = x.round().clamp(0.0, (choices.len() - 1) as f64);
                }
            }
        }
    }

    /// The flat parameters of a point, constants included, in the config's order.
    pub fn decode(&self, point: &[f64]) -> Vec<(String, Value)> {
        let mut values: Vec<Option<Value>> = vec![None; self.config.parameters.len()];
        for (dim, &x) in self.dims.iter().zip(point) {
            match dim {
                Dim::Numeric { param, .. } => {
                    values[*param] = Some(self.distribution(*param).from_unit(x));
                }
                Dim::Categorical { param, choices } => {
                    let i = (x.round().max(0.0) as usize).min(choices.len() - 1);
                    values[*param] = Some(choices[i].clone());
                }
            }
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

    /// A point from coordinates in `[0, 1)^len` (e.g. a Sobol point): numeric coordinates
    /// as they are, categorical ones picking a choice uniformly.
    pub fn from_cube(&self, cube: &[f64]) -> Point {
        let mut p: Point = self
            .dims
            .iter()
            .zip(cube)
            .map(|(dim, &u)| match dim {
                Dim::Numeric { .. } => u,
                Dim::Categorical { choices, .. } => {
                    ((u * choices.len() as f64) as usize).min(choices.len() - 1) as f64
                }
            })
            .collect();
        self.snap(&mut p);
        p
    }

    /// The feature vector of a point for the Gaussian process: numeric coordinates, then a
    /// one-hot block per categorical dimension, in dimension order.
    pub fn features(&self, point: &[f64], out: &mut Vec<f64>) {
        out.clear();
        for (dim, &x) in self.dims.iter().zip(point) {
            match dim {
                Dim::Numeric { .. } => out.push(x),
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
