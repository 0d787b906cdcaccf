//! Sampling every [`Distribution`] and mapping it to and from the unit interval.
//!
//! Every distribution has a quantile function [`Distribution::from_unit`] from `u ∈ [0, 1]`
//! to a value, and an inverse [`Distribution::to_unit`] (the distribution function for
//! continuous distributions, the centre of the value's cell for discrete ones). Search
//! strategies work in these unit coordinates; [`Distribution::sample`] is
//! `from_unit(U)` with `U` uniform (inverse-transform sampling), so a seeded generator
//! reproduces the same values on every platform.
//!
//! The value-space semantics follow W&B Sweeps, with two documented exceptions:
//!
//! - bounded quantized distributions (`q_uniform`, `q_log_uniform`, `q_log_uniform_values`,
//!   `q_beta`) never leave their bounds: where `round(x / q)·q` would fall outside
//!   `[min, max]`, hyperdial takes the nearest multiple of `q` inside (W&B can return e.g.
//!   `1.2` for `q_uniform` with `min: 0, max: 1, q: 0.6`);
//! - the grid values of `q_uniform` are the multiples of `q` in `[min, max]`, `max` included
//!   when it is a multiple (W&B uses `arange(min, max, q)`, which starts at `min` and never
//!   includes `max`).

use std::fmt::Write as _;

use rand::Rng;
use serde_json::Value;

use crate::model::{Distribution, Quantum};
use crate::special::{beta_inc, beta_inc_inv, norm_cdf, norm_ppf};

/// Beyond this many steps of `q` from zero (2^53), multiples of `q` are not distinct doubles,
/// so a quantized value there is left as the continuous value it came from.
const MAX_EXACT_STEPS: f64 = 9_007_199_254_740_992.0;

/// Unbounded quantile functions are evaluated at `u` clamped to `[U_EPS, 1 − U_EPS]`, so
/// that their values stay finite (about ±7.03 standard deviations).
const U_EPS: f64 = 1e-12;

/// At most this many values are listed by [`Distribution::describe`].
const DESCRIBE_MAX_VALUES: usize = 10;

/// `x` limited to `[lo, hi]`; unlike `f64::clamp` it never panics (NaN gives `lo`).
fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    x.max(lo).min(hi)
}

/// `u` limited to `[0, 1]` (NaN gives 0).
fn unit(u: f64) -> f64 {
    clamp(u, 0.0, 1.0)
}

/// `x` with infinities replaced by the largest finite doubles and NaN by 0.
fn finite(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        clamp(x, f64::MIN, f64::MAX)
    }
}

/// A JSON float; always a number, never `null`.
fn float(x: f64) -> Value {
    Value::from(finite(x))
}

/// `a + t·(b − a)`, without overflow when `b − a` exceeds the largest double.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let span = b - a;
    if span.is_finite() {
        a + t * span
    } else {
        (1.0 - t) * a + t * b
    }
}

/// `num / den` as a unit coordinate: `½` for an empty range.
fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.5
    }
}

/// The slack allowed when deciding whether `r = x / q` is a whole number of steps: 1e-9 of a
/// step, or a few rounding errors of `r` when `r` is large.
fn step_tolerance(r: f64) -> f64 {
    1e-9_f64.max(8.0 * f64::EPSILON * r.abs())
}

/// The number of decimal places of `q` as written in shortest round-trip form (Rust prints
/// doubles without exponent, so `1e-7` has 7).
fn decimals(q: f64) -> usize {
    let text = q.to_string();
    text.find('.').map_or(0, |dot| text.len() - dot - 1)
}

/// `k·q` rounded to the decimal places of `q`, so that `3 × 0.1` is `0.3` and not
/// `0.30000000000000004`.
fn multiple(k: f64, q: f64) -> f64 {
    let x = k * q;
    if !x.is_finite() {
        return finite(x);
    }
    let text = format!("{:.*}", decimals(q), x);
    // `+ 0.0` turns `-0.0` into `0.0`.
    text.parse::<f64>().unwrap_or(x) + 0.0
}

/// A JSON number as a double; `None` for every other JSON type.
fn number(value: &Value) -> Option<f64> {
    value.as_f64().filter(|x| x.is_finite())
}

/// The `int_uniform` range with its ends in order.
fn int_range(min: i64, max: i64) -> (i64, i64) {
    (min.min(max), min.max(max))
}

/// A JSON number that is a whole number, as an `i64`.
fn whole_number(value: &Value) -> Option<i64> {
    if let Some(k) = value.as_i64() {
        return Some(k);
    }
    let x = value.as_f64()?;
    (x.fract() == 0.0 && x >= i64::MIN as f64 && x < i64::MAX as f64).then_some(x as i64)
}

/// The continuous distribution underneath a continuous or quantized [`Distribution`], in
/// value space.
#[derive(Debug, Clone, Copy)]
enum Continuous {
    /// Uniform on `[min, max]`.
    Uniform { min: f64, max: f64 },
    /// `exp(X)`, `X` uniform on the exponents `[min, max]` (legacy `log_uniform`).
    ExpUniform { min: f64, max: f64 },
    /// `exp(−(min + (1 − u)(max − min)))` (legacy `inv_log_uniform`).
    InvExpUniform { min: f64, max: f64 },
    /// Log-uniform on the values `[min, max]`.
    LogUniform { min: f64, max: f64 },
    /// Normal.
    Normal { mu: f64, sigma: f64 },
    /// Log-normal.
    LogNormal { mu: f64, sigma: f64 },
    /// Beta on `[0, 1]`.
    Beta { a: f64, b: f64 },
}

impl Continuous {
    /// The closed range of values, possibly infinite.
    fn support(self) -> (f64, f64) {
        match self {
            Continuous::Uniform { min, max } | Continuous::LogUniform { min, max } => (min, max),
            Continuous::ExpUniform { min, max } => (finite(min.exp()), finite(max.exp())),
            Continuous::InvExpUniform { min, max } => (finite((-max).exp()), finite((-min).exp())),
            Continuous::Normal { .. } => (f64::NEG_INFINITY, f64::INFINITY),
            Continuous::LogNormal { .. } => (0.0, f64::INFINITY),
            Continuous::Beta { .. } => (0.0, 1.0),
        }
    }

    /// Whether both ends of the support are finite.
    fn bounded(self) -> bool {
        !matches!(
            self,
            Continuous::Normal { .. } | Continuous::LogNormal { .. }
        )
    }

    /// The quantile function at `u ∈ [0, 1]`: always finite and inside the support.
    fn ppf(self, u: f64) -> f64 {
        let inner = || clamp(u, U_EPS, 1.0 - U_EPS);
        let x = match self {
            Continuous::Uniform { min, max } => lerp(min, max, u),
            Continuous::ExpUniform { min, max } => lerp(min, max, u).exp(),
            Continuous::InvExpUniform { min, max } => (-(min + (1.0 - u) * (max - min))).exp(),
            Continuous::LogUniform { min, max } => {
                if u <= 0.0 {
                    min
                } else if u >= 1.0 {
                    max
                } else {
                    lerp(min.ln(), max.ln(), u).exp()
                }
            }
            Continuous::Normal { mu, sigma } => mu + sigma * norm_ppf(inner()),
            Continuous::LogNormal { mu, sigma } => (mu + sigma * norm_ppf(inner())).exp(),
            Continuous::Beta { a, b } => beta_inc_inv(a, b, u),
        };
        let (lo, hi) = self.support();
        clamp(finite(x), lo, hi)
    }

    /// The distribution function at `x`; `None` outside the support.
    fn cdf(self, x: f64) -> Option<f64> {
        let (lo, hi) = self.support();
        if !x.is_finite() || x < lo || x > hi {
            return None;
        }
        let u = match self {
            Continuous::Uniform { min, max } => {
                let span = max - min;
                if span.is_finite() {
                    ratio(x - min, span)
                } else {
                    ratio(0.5 * x - 0.5 * min, 0.5 * max - 0.5 * min)
                }
            }
            Continuous::ExpUniform { min, max } => ratio(x.ln() - min, max - min),
            Continuous::InvExpUniform { min, max } => ratio(max + x.ln(), max - min),
            Continuous::LogUniform { min, max } => ratio(x.ln() - min.ln(), max.ln() - min.ln()),
            Continuous::Normal { mu, sigma } => {
                if sigma > 0.0 {
                    norm_cdf((x - mu) / sigma)
                } else {
                    0.5
                }
            }
            Continuous::LogNormal { mu, sigma } => {
                if x <= 0.0 {
                    0.0
                } else if sigma > 0.0 {
                    norm_cdf((x.ln() - mu) / sigma)
                } else {
                    0.5
                }
            }
            Continuous::Beta { a, b } => beta_inc(a, b, x),
        };
        Some(unit(u))
    }

    /// The distribution function with `x` first limited to the support (0 below, 1 above).
    fn cdf_clamped(self, x: f64) -> f64 {
        let (lo, hi) = self.support();
        if x <= lo {
            0.0
        } else if x >= hi {
            1.0
        } else {
            self.cdf(x).unwrap_or(0.5)
        }
    }
}

/// A quantized continuous distribution: `k·q` with `k = round(X / q)` limited to `[k_lo, k_hi]`.
#[derive(Debug, Clone, Copy)]
struct Quantized {
    base: Continuous,
    q: Quantum,
    /// Lowest step count produced (may be −∞).
    k_lo: f64,
    /// Highest step count produced (may be +∞).
    k_hi: f64,
}

impl Quantized {
    /// For a bounded base, `[k_lo, k_hi]` are the multiples of `q` inside the support (an end
    /// that is a multiple within [`step_tolerance`] counts as inside); when there is none,
    /// W&B's plain rounding of the ends. For an unbounded base, what rounding produces.
    fn new(base: Continuous, q: Quantum) -> Self {
        let step = q.q;
        let (lo, hi) = base.support();
        let (rl, rh) = (lo / step, hi / step);
        let (k_lo, k_hi) = if base.bounded() {
            let inner_lo = (rl - step_tolerance(rl)).ceil();
            let inner_hi = (rh + step_tolerance(rh)).floor();
            if inner_lo <= inner_hi {
                (inner_lo, inner_hi)
            } else {
                (rl.round(), rh.round())
            }
        } else {
            (rl.round(), f64::INFINITY)
        };
        Quantized {
            base,
            q,
            k_lo,
            k_hi,
        }
    }

    /// The step count at unit coordinate `u`.
    fn k_at(&self, u: f64) -> f64 {
        clamp((self.base.ppf(u) / self.q.q).round(), self.k_lo, self.k_hi)
    }

    /// The value `k·q`: a JSON integer when `q` is an integer, else a float rounded to the
    /// decimals of `q`.
    fn value(&self, k: f64) -> Value {
        if self.q.integer {
            let x = (k * self.q.q).round();
            if x >= i64::MIN as f64 && x < i64::MAX as f64 {
                return Value::from(x as i64);
            }
            return float(x);
        }
        float(multiple(k, self.q.q))
    }

    /// The unit coordinate of a value: its distribution function when that maps back to the
    /// same step, else the middle of the range of `u` that rounds to it.
    fn unit_of(&self, x: f64) -> Option<f64> {
        let step = self.q.q;
        let r = x / step;
        if !r.is_finite() || r.abs() > MAX_EXACT_STEPS {
            // Left continuous by `from_unit` (see MAX_EXACT_STEPS).
            return self.base.cdf(x);
        }
        let k = r.round();
        if !k.is_finite() || (r - k).abs() > step_tolerance(r) || k < self.k_lo || k > self.k_hi {
            return None;
        }
        if let Some(u) = self.base.cdf(x) {
            if self.k_at(u) == k {
                return Some(u);
            }
        }
        let (lo, hi) = self.base.support();
        let a = if k == self.k_lo { lo } else { (k - 0.5) * step };
        let b = if k == self.k_hi { hi } else { (k + 0.5) * step };
        Some(0.5 * (self.base.cdf_clamped(a) + self.base.cdf_clamped(b)))
    }

    /// The number of values, saturating.
    fn count(&self) -> u128 {
        if self.k_hi < self.k_lo {
            0
        } else {
            // Float-to-int casts saturate (and map NaN to 0).
            (self.k_hi - self.k_lo + 1.0) as u128
        }
    }
}

/// Running sums of the probabilities: entry `i` is `p₀ + … + pᵢ`.
fn cumulative(probabilities: &[f64]) -> Vec<f64> {
    probabilities
        .iter()
        .scan(0.0, |sum, &p| {
            *sum += p;
            Some(*sum)
        })
        .collect()
}

/// Format a number compactly: whole numbers without a fraction, others in shortest form,
/// switching to exponent notation when that is long.
fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let plain = x.to_string();
    if plain.len() <= 12 {
        plain
    } else {
        format!("{x:e}")
    }
}

/// Format a derived number to three significant digits.
fn fmt_approx(x: f64) -> String {
    let rounded = format!("{x:.2e}").parse::<f64>().unwrap_or(x);
    fmt_num(rounded)
}

/// Compact JSON of one value.
fn fmt_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".to_owned())
}

/// `[a, b, …]` with at most [`DESCRIBE_MAX_VALUES`] entries.
fn fmt_list(items: impl ExactSizeIterator<Item = String>) -> String {
    let total = items.len();
    let mut out = String::from("[");
    for (i, item) in items.take(DESCRIBE_MAX_VALUES).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    if total > DESCRIBE_MAX_VALUES {
        let _ = write!(out, ", ... {} more", total - DESCRIBE_MAX_VALUES);
    }
    out.push(']');
    out
}

/// `"(1 value)"` or `"(n values)"`.
fn fmt_count(n: u128) -> String {
    if n == 1 {
        "(1 value)".to_owned()
    } else {
        format!("({n} values)")
    }
}

impl Distribution {
    /// The distribution's name as written in a W&B sweep file (`"int_uniform"`,
    /// `"categorical_w_probabilities"`, `"q_log_uniform_values"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Constant { .. } => "constant",
            Distribution::Categorical { .. } => "categorical",
            Distribution::CategoricalWithProbabilities { .. } => "categorical_w_probabilities",
            Distribution::IntUniform { .. } => "int_uniform",
            Distribution::Uniform { .. } => "uniform",
            Distribution::QUniform { .. } => "q_uniform",
            Distribution::LogUniform { .. } => "log_uniform",
            Distribution::InvLogUniform { .. } => "inv_log_uniform",
            Distribution::QLogUniform { .. } => "q_log_uniform",
            Distribution::LogUniformValues { .. } => "log_uniform_values",
            Distribution::InvLogUniformValues { .. } => "inv_log_uniform_values",
            Distribution::QLogUniformValues { .. } => "q_log_uniform_values",
            Distribution::Normal { .. } => "normal",
            Distribution::QNormal { .. } => "q_normal",
            Distribution::LogNormal { .. } => "log_normal",
            Distribution::QLogNormal { .. } => "q_log_normal",
            Distribution::Beta { .. } => "beta",
            Distribution::QBeta { .. } => "q_beta",
        }
    }

    /// The continuous distribution underneath, with the quantum for quantized ones; `None`
    /// for the discrete distributions.
    fn continuous(&self) -> Option<(Continuous, Option<Quantum>)> {
        let pair = match *self {
            Distribution::Uniform { min, max } => (Continuous::Uniform { min, max }, None),
            Distribution::QUniform { min, max, q } => (Continuous::Uniform { min, max }, Some(q)),
            Distribution::LogUniform { min, max } => (Continuous::ExpUniform { min, max }, None),
            Distribution::InvLogUniform { min, max } => {
                (Continuous::InvExpUniform { min, max }, None)
            }
            Distribution::QLogUniform { min, max, q } => {
                (Continuous::ExpUniform { min, max }, Some(q))
            }
            Distribution::LogUniformValues { min, max }
            | Distribution::InvLogUniformValues { min, max } => {
                (Continuous::LogUniform { min, max }, None)
            }
            Distribution::QLogUniformValues { min, max, q } => {
                (Continuous::LogUniform { min, max }, Some(q))
            }
            Distribution::Normal { mu, sigma } => (Continuous::Normal { mu, sigma }, None),
            Distribution::QNormal { mu, sigma, q } => (Continuous::Normal { mu, sigma }, Some(q)),
            Distribution::LogNormal { mu, sigma } => (Continuous::LogNormal { mu, sigma }, None),
            Distribution::QLogNormal { mu, sigma, q } => {
                (Continuous::LogNormal { mu, sigma }, Some(q))
            }
            Distribution::Beta { a, b } => (Continuous::Beta { a, b }, None),
            Distribution::QBeta { a, b, q } => (Continuous::Beta { a, b }, Some(q)),
            Distribution::Constant { .. }
            | Distribution::Categorical { .. }
            | Distribution::CategoricalWithProbabilities { .. }
            | Distribution::IntUniform { .. } => return None,
        };
        Some(pair)
    }

    /// The quantized view of a `q_*` distribution.
    fn quantized(&self) -> Option<Quantized> {
        match self.continuous()? {
            (base, Some(q)) => Some(Quantized::new(base, q)),
            (_, None) => None,
        }
    }

    /// The quantile function: the value at unit coordinate `u` (clamped to `[0, 1]`; `u = 1`
    /// is safe). Never panics and never returns a non-finite number.
    ///
    /// - `constant`: the value.
    /// - `categorical`: `values[⌊u·n⌋]` (the last one at `u = 1`).
    /// - `categorical_w_probabilities`: the first value whose cumulative probability exceeds
    ///   `u`, as W&B does (zero-probability values are never returned).
    /// - `int_uniform`: `min + ⌊u·(max − min + 1)⌋`, at most `max`, as a JSON integer.
    /// - `uniform`: `min + u·(max − min)`.
    /// - `log_uniform` (legacy, bounds are natural-log exponents): `exp(min + u·(max − min))`.
    /// - `inv_log_uniform` (legacy): `exp(−(min + (1 − u)·(max − min)))`, increasing in `u`,
    ///   values in `[e^−max, e^−min]`.
    /// - `log_uniform_values`: `exp(ln min + u·(ln max − ln min))`.
    /// - `inv_log_uniform_values`: the same mapping as `log_uniform_values`: W&B computes
    ///   `exp(−X)` with `X` uniform on `[−ln max, −ln min]`, which is log-uniform on
    ///   `[min, max]`.
    /// - `normal`: `mu + sigma·Φ⁻¹(u)`; `log_normal`: `exp(mu + sigma·Φ⁻¹(u))`; `beta`:
    ///   `I⁻¹_u(a, b)`. For the normal quantile, `u` is first clamped to
    ///   `[1e-12, 1 − 1e-12]` so values stay finite.
    /// - `q_*`: the continuous value `x` rounded to a multiple of `q`, `round(x / q)·q`
    ///   (multiples anchored at zero). For the bounded ones (`q_uniform`, `q_log_uniform`,
    ///   `q_log_uniform_values`, `q_beta`) a multiple outside `[min, max]` is replaced by the
    ///   nearest multiple inside (W&B's can exceed `max`); `max` counts as a multiple when it
    ///   is one within 1e-9 of a step. If no multiple lies inside at all, plain rounding is
    ///   kept. A value more than 2^53 steps of `q` from zero (`q` tiny against the bounds,
    ///   where multiples of `q` are no longer distinct doubles) is the continuous value. Values are JSON integers when `q` was written as an integer, else floats
    ///   rounded to the decimal places of `q` (`3 × 0.1` is `0.3`).
    ///
    /// Continuous results are JSON floats.
    pub fn from_unit(&self, u: f64) -> Value {
        let u = unit(u);
        match self {
            Distribution::Constant { value } => value.clone(),
            Distribution::Categorical { values } => {
                let n = values.len();
                let i = ((u * n as f64) as usize).min(n.saturating_sub(1));
                values.get(i).cloned().unwrap_or(Value::Null)
            }
            Distribution::CategoricalWithProbabilities {
                values,
                probabilities,
            } => {
                let cumulative = cumulative(probabilities);
                let n = values.len().min(cumulative.len());
                let i = cumulative[..n]
                    .iter()
                    .position(|&c| c > u)
                    // Rounding left the total at or below u: the last value that has
                    // probability.
                    .or_else(|| probabilities[..n].iter().rposition(|&p| p > 0.0))
                    .unwrap_or(n.saturating_sub(1));
                values.get(i).cloned().unwrap_or(Value::Null)
            }
            Distribution::IntUniform { min, max } => {
                let (lo, hi) = int_range(*min, *max);
                let span = hi as i128 - lo as i128 + 1;
                // Float-to-int casts saturate.
                let offset = ((u * span as f64).floor() as i128).clamp(0, span - 1);
                Value::from((lo as i128 + offset) as i64)
            }
            _ => match self.continuous() {
                Some((base, None)) => float(base.ppf(u)),
                Some((base, Some(q))) => {
                    let x = base.ppf(u);
                    if !(x / q.q).is_finite() || (x / q.q).abs() > MAX_EXACT_STEPS {
                        // So many steps of `q` from zero that they are not distinct doubles
                        // (or overflow): `x` is already as close to a multiple as a double
                        // can be, and rounding would only push it past the bounds.
                        return float(x);
                    }
                    let quantized = Quantized::new(base, q);
                    quantized.value(quantized.k_at(u))
                }
                None => Value::Null,
            },
        }
    }

    /// The inverse of [`Distribution::from_unit`]: the unit coordinate of `value`, or `None`
    /// when the value is not in the distribution's support or has the wrong type.
    ///
    /// Continuous distributions return their distribution function. Discrete ones return the
    /// centre of the value's cell, so that `from_unit(to_unit(v)) == v` exactly:
    /// `categorical` index `i` of `n` gives `(i + ½)/n` (the first occurrence; values are
    /// compared exactly as JSON, so `1` and `1.0` differ), `int_uniform` `k` gives
    /// `(k − min + ½)/(max − min + 1)`, `categorical_w_probabilities` the middle of the
    /// value's cumulative-probability interval (`None` for a zero-probability value).
    /// Quantized distributions return the distribution function at the value when
    /// `from_unit` maps it back to the same value, else the middle of the range of `u` that
    /// does. The numeric distributions accept any JSON number of the right value (`3.0` for
    /// `int_uniform`, `3` for `uniform`).
    pub fn to_unit(&self, value: &Value) -> Option<f64> {
        match self {
            Distribution::Constant { value: constant } => (constant == value).then_some(0.5),
            Distribution::Categorical { values } => {
                let i = values.iter().position(|v| v == value)?;
                Some((i as f64 + 0.5) / values.len() as f64)
            }
            Distribution::CategoricalWithProbabilities {
                values,
                probabilities,
            } => {
                let cumulative = cumulative(probabilities);
                let i = values
                    .iter()
                    .zip(probabilities)
                    .position(|(v, &p)| v == value && p > 0.0)?;
                let below = if i == 0 { 0.0 } else { cumulative[i - 1] };
                let above = cumulative[i];
                let mid = 0.5 * (below + above);
                Some(if mid < above { mid } else { below })
            }
            Distribution::IntUniform { min, max } => {
                let k = whole_number(value)?;
                let (lo, hi) = int_range(*min, *max);
                if k < lo || k > hi {
                    return None;
                }
                let span = hi as i128 - lo as i128 + 1;
                Some(((k as i128 - lo as i128) as f64 + 0.5) / span as f64)
            }
            _ => {
                let x = number(value)?;
                match self.continuous()? {
                    (base, None) => base.cdf(x),
                    (base, Some(q)) => Quantized::new(base, q).unit_of(x),
                }
            }
        }
    }

    /// A random value: `from_unit(U)` with `U = rng.random::<f64>()` uniform on `[0, 1)`.
    ///
    /// Sampling is inverse-transform through [`Distribution::from_unit`], one code path for
    /// every distribution, so a seeded generator reproduces the same values everywhere.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Value {
        self.from_unit(rng.random::<f64>())
    }

    /// The number of grid values, without listing them: `Some` exactly when
    /// [`Distribution::grid_values`] is `Some`. Saturates at `u64::MAX` (reachable only by an
    /// `int_uniform` over the whole `i64` range, which has 2⁶⁴ values).
    pub fn grid_len(&self) -> Option<u64> {
        self.grid_len_exact()
            .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
    }

    /// The exact number of grid values.
    pub(crate) fn grid_len_exact(&self) -> Option<u128> {
        match self {
            Distribution::Constant { .. } => Some(1),
            Distribution::Categorical { values } => Some(values.len() as u128),
            Distribution::IntUniform { min, max } => {
                let (lo, hi) = int_range(*min, *max);
                Some((hi as i128 - lo as i128 + 1) as u128)
            }
            Distribution::QUniform { .. } => self.quantized().map(|quantized| quantized.count()),
            _ => None,
        }
    }

    /// Grid value number `i` (in the order of [`Distribution::grid_values`]), without listing
    /// the others; `None` when `i` is out of range or the distribution has no grid.
    pub(crate) fn grid_value(&self, i: u128) -> Option<Value> {
        if i >= self.grid_len_exact()? {
            return None;
        }
        match self {
            Distribution::Constant { value } => Some(value.clone()),
            Distribution::Categorical { values } => values.get(usize::try_from(i).ok()?).cloned(),
            Distribution::IntUniform { min, max } => {
                let (lo, _) = int_range(*min, *max);
                Some(Value::from((lo as i128 + i as i128) as i64))
            }
            Distribution::QUniform { .. } => {
                let quantized = self.quantized()?;
                Some(quantized.value(quantized.k_lo + i as f64))
            }
            _ => None,
        }
    }

    /// The finite set of values grid search enumerates, in this order:
    ///
    /// - `constant`: the value;
    /// - `categorical`: the values as listed;
    /// - `int_uniform`: `min..=max`, ascending;
    /// - `q_uniform`: every multiple of `q` in `[min, max]`, ascending, including `max` when
    ///   it is a multiple of `q` (within 1e-9 of a step). W&B's grid uses
    ///   `arange(min, max, q)` instead, which starts at `min` even when it is not a multiple
    ///   of `q` and never includes `max`; hyperdial's grid values are exactly the values
    ///   random search can produce.
    ///
    /// Every other distribution (the continuous ones, the other quantized ones, and
    /// `categorical_w_probabilities`, which W&B rejects in a grid) gives `None`.
    ///
    /// The list is materialized: check [`Distribution::grid_len`] first for large ranges.
    pub fn grid_values(&self) -> Option<Vec<Value>> {
        let n = self.grid_len_exact()?;
        Some((0..n).map_while(|i| self.grid_value(i)).collect())
    }

    /// The number of distinct values the distribution can produce, when that is finite: the
    /// grid distributions ([`Distribution::grid_len`], exact) and the other bounded quantized
    /// ones (`q_log_uniform`, `q_log_uniform_values`, `q_beta`: every multiple of `q` inside
    /// the bounds, as [`Distribution::from_unit`] keeps them). `None` for continuous
    /// distributions, the unbounded quantized ones (`q_normal`, `q_log_normal`) and
    /// `categorical_w_probabilities` (whose zero-probability values are never produced;
    /// count its positive ones instead). Model-based strategies use it to tell a finite
    /// space from an infinite one.
    pub fn value_count(&self) -> Option<u128> {
        if let Some(n) = self.grid_len_exact() {
            return Some(n);
        }
        match self.continuous()? {
            (base, Some(q)) if base.bounded() => Some(Quantized::new(base, q).count()),
            _ => None,
        }
    }

    /// Value number `i` of the [`Distribution::value_count`] values, ascending for numeric
    /// distributions (grid order for the grid ones); `None` when `i` is out of range or the
    /// set is not finite.
    pub fn value_at(&self, i: u128) -> Option<Value> {
        if self.grid_len_exact().is_some() {
            return self.grid_value(i);
        }
        match self.continuous()? {
            (base, Some(q)) if base.bounded() => {
                let quantized = Quantized::new(base, q);
                (i < quantized.count()).then(|| quantized.value(quantized.k_lo + i as f64))
            }
            _ => None,
        }
    }

    /// Whether values are spread on a logarithmic scale: `log_uniform`, `inv_log_uniform`,
    /// `q_log_uniform`, `log_uniform_values`, `inv_log_uniform_values`,
    /// `q_log_uniform_values`, `log_normal`, `q_log_normal`.
    pub fn is_log_scale(&self) -> bool {
        matches!(
            self,
            Distribution::LogUniform { .. }
                | Distribution::InvLogUniform { .. }
                | Distribution::QLogUniform { .. }
                | Distribution::LogUniformValues { .. }
                | Distribution::InvLogUniformValues { .. }
                | Distribution::QLogUniformValues { .. }
                | Distribution::LogNormal { .. }
                | Distribution::QLogNormal { .. }
        )
    }

    /// Whether every value the distribution produces is a JSON integer: `int_uniform`,
    /// quantized distributions whose `q` is an integer, and `constant` and categorical ones
    /// whose values are all integers.
    pub fn is_integer_valued(&self) -> bool {
        let integer = |v: &Value| v.is_i64() || v.is_u64();
        match self {
            Distribution::Constant { value } => integer(value),
            Distribution::Categorical { values }
            | Distribution::CategoricalWithProbabilities { values, .. } => {
                !values.is_empty() && values.iter().all(integer)
            }
            Distribution::IntUniform { .. } => true,
            _ => matches!(self.continuous(), Some((_, Some(q))) if q.integer),
        }
    }

    /// Whether the distribution picks from a list of values: `categorical` and
    /// `categorical_w_probabilities`.
    pub fn is_categorical(&self) -> bool {
        matches!(
            self,
            Distribution::Categorical { .. } | Distribution::CategoricalWithProbabilities { .. }
        )
    }

    /// The lowest and highest value a bounded numeric distribution can produce, in value
    /// space (`exp` of the exponents for the legacy `log_uniform`; the extreme multiples of
    /// `q` for bounded quantized ones). `None` for unbounded distributions (`normal`,
    /// `log_normal` and their quantized forms) and for non-numeric `constant` or categorical
    /// values; categorical ones with all-numeric values give their smallest and largest
    /// (with positive probability).
    pub fn value_bounds(&self) -> Option<(f64, f64)> {
        let numeric = |values: &mut dyn Iterator<Item = &Value>| -> Option<(f64, f64)> {
            let mut bounds: Option<(f64, f64)> = None;
            for value in values {
                let x = number(value)?;
                bounds = Some(bounds.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))));
            }
            bounds
        };
        match self {
            Distribution::Constant { value } => number(value).map(|x| (x, x)),
            Distribution::Categorical { values } => numeric(&mut values.iter()),
            Distribution::CategoricalWithProbabilities {
                values,
                probabilities,
            } => numeric(
                &mut values
                    .iter()
                    .zip(probabilities)
                    .filter(|(_, &p)| p > 0.0)
                    .map(|(v, _)| v),
            ),
            Distribution::IntUniform { min, max } => {
                let (lo, hi) = int_range(*min, *max);
                Some((lo as f64, hi as f64))
            }
            _ => match self.continuous()? {
                (base, _) if !base.bounded() => None,
                (base, None) => Some(base.support()),
                (base, Some(q)) => {
                    let quantized = Quantized::new(base, q);
                    let lo = number(&quantized.value(quantized.k_lo))?;
                    let hi = number(&quantized.value(quantized.k_hi))?;
                    Some((lo, hi))
                }
            },
        }
    }

    /// A one-line human description, as `hyperdial validate` prints it: e.g.
    /// `int_uniform [1, 10] (10 values)`, `log_uniform_values [0.0001, 0.1]`,
    /// `log_uniform exp(U[-9.21, -2.3]) = [0.0001, 0.1]`,
    /// `q_uniform [0, 1] step 0.25 (5 values)`, `normal mu=0 sigma=1`,
    /// `categorical ["adam", "sgd"] (2 values)`, `constant 5`. Values are compact JSON;
    /// value-space bounds derived from exponents are rounded to three significant digits.
    pub fn describe(&self) -> String {
        let name = self.name();
        let step = |q: &Quantum| fmt_num(q.q);
        match self {
            Distribution::Constant { value } => format!("{name} {}", fmt_json(value)),
            Distribution::Categorical { values } => format!(
                "{name} {} {}",
                fmt_list(values.iter().map(fmt_json)),
                fmt_count(values.len() as u128)
            ),
            Distribution::CategoricalWithProbabilities {
                values,
                probabilities,
            } => {
                let items = values
                    .iter()
                    .zip(probabilities)
                    .map(|(v, &p)| format!("{} p={}", fmt_json(v), fmt_num(p)))
                    .collect::<Vec<_>>();
                format!(
                    "{name} {} {}",
                    fmt_list(items.into_iter()),
                    fmt_count(values.len() as u128)
                )
            }
            Distribution::IntUniform { min, max } => format!(
                "{name} [{min}, {max}] {}",
                fmt_count(self.grid_len_exact().unwrap_or(0))
            ),
            Distribution::Uniform { min, max }
            | Distribution::LogUniformValues { min, max }
            | Distribution::InvLogUniformValues { min, max } => {
                format!("{name} [{}, {}]", fmt_num(*min), fmt_num(*max))
            }
            Distribution::QUniform { min, max, q } => format!(
                "{name} [{}, {}] step {} {}",
                fmt_num(*min),
                fmt_num(*max),
                step(q),
                fmt_count(self.grid_len_exact().unwrap_or(0))
            ),
            Distribution::QLogUniformValues { min, max, q } => {
                format!(
                    "{name} [{}, {}] step {}",
                    fmt_num(*min),
                    fmt_num(*max),
                    step(q)
                )
            }
            Distribution::LogUniform { min, max } => format!(
                "{name} exp(U[{}, {}]) = [{}, {}]",
                fmt_num(*min),
                fmt_num(*max),
                fmt_approx(min.exp()),
                fmt_approx(max.exp())
            ),
            Distribution::InvLogUniform { min, max } => format!(
                "{name} exp(-U[{}, {}]) = [{}, {}]",
                fmt_num(*min),
                fmt_num(*max),
                fmt_approx((-max).exp()),
                fmt_approx((-min).exp())
            ),
            Distribution::QLogUniform { min, max, q } => format!(
                "{name} exp(U[{}, {}]) = [{}, {}] step {}",
                fmt_num(*min),
                fmt_num(*max),
                fmt_approx(min.exp()),
                fmt_approx(max.exp()),
                step(q)
            ),
            Distribution::Normal { mu, sigma } | Distribution::LogNormal { mu, sigma } => {
                format!("{name} mu={} sigma={}", fmt_num(*mu), fmt_num(*sigma))
            }
            Distribution::QNormal { mu, sigma, q } | Distribution::QLogNormal { mu, sigma, q } => {
                format!(
                    "{name} mu={} sigma={} step {}",
                    fmt_num(*mu),
                    fmt_num(*sigma),
                    step(q)
                )
            }
            Distribution::Beta { a, b } => format!("{name} a={} b={}", fmt_num(*a), fmt_num(*b)),
            Distribution::QBeta { a, b, q } => {
                format!(
                    "{name} a={} b={} step {}",
                    fmt_num(*a),
                    fmt_num(*b),
                    step(q)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    use super::*;

    const N: usize = 20_000;

    fn q(q: f64) -> Quantum {
        Quantum { q, integer: false }
    }

    fn qi(q: f64) -> Quantum {
        Quantum { q, integer: true }
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// One or more instances of every variant.
    fn all_distributions() -> Vec<Distribution> {
        vec![
            Distribution::Constant { value: json!(5) },
            Distribution::Constant {
                value: json!({"a": [1, "b"]}),
            },
            Distribution::Categorical {
                values: vec![
                    json!("adam"),
                    json!("sgd"),
                    json!(1),
                    json!(1.0),
                    json!(null),
                ],
            },
            Distribution::CategoricalWithProbabilities {
                values: vec![json!("a"), json!("b"), json!("c"), json!("d")],
                probabilities: vec![0.2, 0.5, 0.0, 0.3],
            },
            Distribution::IntUniform { min: -3, max: 7 },
            Distribution::Uniform {
                min: -2.0,
                max: 5.0,
            },
            Distribution::QUniform {
                min: 0.0,
                max: 1.0,
                q: q(0.25),
            },
            Distribution::QUniform {
                min: 0.1,
                max: 1.0,
                q: q(0.2),
            },
            Distribution::QUniform {
                min: 0.0,
                max: 1.0,
                q: q(0.4),
            },
            Distribution::QUniform {
                min: -10.0,
                max: 10.0,
                q: qi(3.0),
            },
            Distribution::LogUniform {
                min: -9.21,
                max: -2.3,
            },
            Distribution::InvLogUniform {
                min: 2.3,
                max: 9.21,
            },
            Distribution::QLogUniform {
                min: 0.0,
                max: 6.91,
                q: qi(1.0),
            },
            Distribution::QLogUniform {
                min: -3.0,
                max: 0.0,
                q: q(0.05),
            },
            Distribution::LogUniformValues {
                min: 1e-4,
                max: 1e-1,
            },
            Distribution::InvLogUniformValues {
                min: 1e-4,
                max: 1e-1,
            },
            Distribution::QLogUniformValues {
                min: 1.0,
                max: 1000.0,
                q: qi(1.0),
            },
            Distribution::QLogUniformValues {
                min: 1e-4,
                max: 1e-1,
                q: q(0.001),
            },
            Distribution::Normal {
                mu: 1.0,
                sigma: 2.0,
            },
            Distribution::QNormal {
                mu: 0.0,
                sigma: 1.0,
                q: q(0.1),
            },
            Distribution::QNormal {
                mu: 10.0,
                sigma: 30.0,
                q: qi(5.0),
            },
            Distribution::LogNormal {
                mu: 0.0,
                sigma: 1.0,
            },
            Distribution::QLogNormal {
                mu: 0.0,
                sigma: 1.0,
                q: q(0.5),
            },
            Distribution::QLogNormal {
                mu: 2.0,
                sigma: 1.0,
                q: qi(1.0),
            },
            Distribution::Beta { a: 2.0, b: 5.0 },
            Distribution::Beta { a: 0.5, b: 0.5 },
            Distribution::QBeta {
                a: 2.0,
                b: 5.0,
                q: q(0.1),
            },
            Distribution::QBeta {
                a: 1.0,
                b: 1.0,
                q: q(0.6),
            },
        ]
    }

    fn quantum(d: &Distribution) -> Option<Quantum> {
        d.continuous().and_then(|(_, q)| q)
    }

    fn is_discrete(d: &Distribution) -> bool {
        d.continuous().is_none() || quantum(d).is_some()
    }

    /// Checks that `v` is something `d` can produce; panics with context otherwise.
    fn check_support(d: &Distribution, v: &Value) {
        let ctx = || format!("{} produced {v}", d.describe());
        match d {
            Distribution::Constant { value } => assert_eq!(v, value, "{}", ctx()),
            Distribution::Categorical { values } => assert!(values.contains(v), "{}", ctx()),
            Distribution::CategoricalWithProbabilities {
                values,
                probabilities,
            } => {
                let i = values
                    .iter()
                    .position(|x| x == v)
                    .unwrap_or_else(|| panic!("{}", ctx()));
                assert!(probabilities[i] > 0.0, "{}", ctx());
            }
            _ => {
                let x = v.as_f64().unwrap_or_else(|| panic!("{}", ctx()));
                assert!(x.is_finite(), "{}", ctx());
                if let Some((lo, hi)) = d.value_bounds() {
                    assert!(lo <= x && x <= hi, "{} outside [{lo}, {hi}]", ctx());
                }
                match d {
                    Distribution::LogNormal { .. } | Distribution::QLogNormal { .. } => {
                        assert!(x >= 0.0, "{}", ctx())
                    }
                    Distribution::Uniform { min, max }
                    | Distribution::QUniform { min, max, .. }
                    | Distribution::LogUniformValues { min, max }
                    | Distribution::InvLogUniformValues { min, max }
                    | Distribution::QLogUniformValues { min, max, .. } => {
                        assert!(*min <= x && x <= *max, "{}", ctx())
                    }
                    Distribution::LogUniform { min, max }
                    | Distribution::QLogUniform { min, max, .. } => {
                        assert!(min.exp() <= x && x <= max.exp(), "{}", ctx())
                    }
                    Distribution::InvLogUniform { min, max } => {
                        assert!((-max).exp() <= x && x <= (-min).exp(), "{}", ctx())
                    }
                    Distribution::Beta { .. } | Distribution::QBeta { .. } => {
                        assert!((0.0..=1.0).contains(&x), "{}", ctx())
                    }
                    _ => {}
                }
                if let Some(q) = quantum(d) {
                    let r = x / q.q;
                    assert!(
                        (r - r.round()).abs() < 1e-9,
                        "{} not a multiple of {}",
                        ctx(),
                        q.q
                    );
                    assert_eq!(v.is_i64(), q.integer, "{}", ctx());
                    if !q.integer {
                        assert!(v.is_f64(), "{}", ctx());
                    }
                } else if matches!(d, Distribution::IntUniform { .. }) {
                    assert!(v.is_i64(), "{}", ctx());
                } else {
                    assert!(v.is_f64(), "{}", ctx());
                }
            }
        }
        if d.is_integer_valued() {
            assert!(v.is_i64() || v.is_u64(), "{}", ctx());
        }
    }

    fn draws(d: &Distribution, seed: u64, n: usize) -> Vec<Value> {
        let mut rng = rng(seed);
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    fn floats(d: &Distribution, seed: u64, n: usize) -> Vec<f64> {
        draws(d, seed, n)
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    }

    /// Kolmogorov–Smirnov statistic of samples against a distribution function.
    fn ks(samples: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
        let mut u: Vec<f64> = samples.iter().map(|&x| cdf(x)).collect();
        u.sort_by(f64::total_cmp);
        let n = u.len() as f64;
        u.iter()
            .enumerate()
            .map(|(i, &ui)| ((i as f64 + 1.0) / n - ui).max(ui - i as f64 / n))
            .fold(0.0, f64::max)
    }

    /// Asserts the KS statistic is below the 1% critical value `1.63/√n`.
    fn assert_ks(d: &Distribution, seed: u64, cdf: impl Fn(f64) -> f64) {
        let samples = floats(d, seed, N);
        let stat = ks(&samples, cdf);
        let critical = 1.63 / (N as f64).sqrt();
        assert!(stat < critical, "{}: KS {stat} ≥ {critical}", d.describe());
    }

    fn phi(z: f64) -> f64 {
        0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
    }

    /// Pearson's chi-square statistic of counts against expected probabilities.
    fn chi_square(counts: &[usize], probabilities: &[f64]) -> f64 {
        let n: usize = counts.iter().sum();
        counts
            .iter()
            .zip(probabilities)
            .filter(|(_, &p)| p > 0.0)
            .map(|(&c, &p)| {
                let e = p * n as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum()
    }

    #[test]
    fn samples_respect_support() {
        for (seed, d) in all_distributions().iter().enumerate() {
            for v in draws(d, seed as u64, N) {
                check_support(d, &v);
                assert!(
                    d.to_unit(&v).is_some(),
                    "{}: to_unit({v}) is None",
                    d.describe()
                );
            }
            for u in [
                0.0,
                1e-300,
                0.5,
                1.0 - f64::EPSILON,
                1.0,
                -1.0,
                2.0,
                f64::NAN,
            ] {
                check_support(d, &d.from_unit(u));
            }
        }
    }

    #[test]
    fn discrete_round_trip_is_exact() {
        for (seed, d) in all_distributions()
            .iter()
            .enumerate()
            .filter(|(_, d)| is_discrete(d))
        {
            for v in draws(d, 100 + seed as u64, 2_000) {
                let u = d.to_unit(&v).unwrap();
                assert!((0.0..=1.0).contains(&u));
                assert_eq!(d.from_unit(u), v, "{}: u = {u}", d.describe());
            }
            if let Some(values) = d.grid_values() {
                for v in values {
                    assert_eq!(d.from_unit(d.to_unit(&v).unwrap()), v, "{}", d.describe());
                }
            }
        }
    }

    #[test]
    fn continuous_round_trip() {
        for d in all_distributions().iter().filter(|d| !is_discrete(d)) {
            for i in 0..=1000 {
                let u = i as f64 / 1000.0;
                let v = d.from_unit(u);
                let back = d
                    .to_unit(&v)
                    .unwrap_or_else(|| panic!("{}: to_unit({v})", d.describe()));
                assert!(
                    (back - u).abs() < 1e-9,
                    "{}: u = {u}, value {v}, back {back}",
                    d.describe()
                );
            }
        }
    }

    #[test]
    fn uniform_mean_and_variance() {
        let (min, max) = (-2.0, 5.0);
        let x = floats(&Distribution::Uniform { min, max }, 1, N);
        let n = N as f64;
        let w: f64 = max - min;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let se_mean = (w * w / 12.0 / n).sqrt();
        let se_var = (w.powi(4) / 180.0 / n).sqrt();
        assert!(
            (mean - (min + max) / 2.0).abs() < 4.0 * se_mean,
            "mean {mean}"
        );
        assert!((var - w * w / 12.0).abs() < 4.0 * se_var, "variance {var}");
    }

    #[test]
    fn continuous_shapes_kolmogorov_smirnov() {
        assert_ks(
            &Distribution::Uniform {
                min: -2.0,
                max: 5.0,
            },
            11,
            |x| (x + 2.0) / 7.0,
        );
        let (lo, hi) = (1e-4_f64.ln(), 1e-1_f64.ln());
        let log_cdf = |x: f64| (x.ln() - lo) / (hi - lo);
        assert_ks(
            &Distribution::LogUniformValues {
                min: 1e-4,
                max: 1e-1,
            },
            12,
            log_cdf,
        );
        assert_ks(
            &Distribution::InvLogUniformValues {
                min: 1e-4,
                max: 1e-1,
            },
            13,
            log_cdf,
        );
        assert_ks(
            &Distribution::LogUniform {
                min: -9.21,
                max: -2.3,
            },
            14,
            |x| (x.ln() + 9.21) / 6.91,
        );
        assert_ks(
            &Distribution::InvLogUniform {
                min: 2.3,
                max: 9.21,
            },
            15,
            |x| (x.ln() + 9.21) / 6.91,
        );
        assert_ks(
            &Distribution::Normal {
                mu: 1.0,
                sigma: 2.0,
            },
            16,
            |x| phi((x - 1.0) / 2.0),
        );
        assert_ks(
            &Distribution::LogNormal {
                mu: 0.5,
                sigma: 0.7,
            },
            17,
            |x| phi((x.ln() - 0.5) / 0.7),
        );
        // Beta(2, 5): I_x = 1 − (1 − x)⁶ − 6x(1 − x)⁵.
        assert_ks(&Distribution::Beta { a: 2.0, b: 5.0 }, 18, |x| {
            1.0 - (1.0 - x).powi(6) - 6.0 * x * (1.0 - x).powi(5)
        });
        // Beta(½, ½) is the arcsine law; Beta(0.3, 1) has cdf x^0.3.
        assert_ks(&Distribution::Beta { a: 0.5, b: 0.5 }, 19, |x| {
            2.0 / std::f64::consts::PI * x.sqrt().asin()
        });
        assert_ks(&Distribution::Beta { a: 0.3, b: 1.0 }, 20, |x| x.powf(0.3));
    }

    #[test]
    fn categorical_frequencies() {
        let values: Vec<Value> = ["a", "b", "c", "d", "e"].iter().map(|s| json!(s)).collect();
        let d = Distribution::Categorical {
            values: values.clone(),
        };
        let mut counts = [0usize; 5];
        for v in draws(&d, 21, 50_000) {
            counts[values.iter().position(|x| *x == v).unwrap()] += 1;
        }
        // 99.9% quantile of chi-square with 4 degrees of freedom.
        assert!(chi_square(&counts, &[0.2; 5]) < 18.47, "{counts:?}");
    }

    #[test]
    fn weighted_categorical_frequencies() {
        let probabilities = vec![0.1, 0.0, 0.6, 0.3];
        let values = vec![json!(1), json!(2), json!(3), json!(4)];
        let d = Distribution::CategoricalWithProbabilities {
            values: values.clone(),
            probabilities: probabilities.clone(),
        };
        let n = 50_000;
        let mut counts = [0usize; 4];
        for v in draws(&d, 22, n) {
            counts[values.iter().position(|x| *x == v).unwrap()] += 1;
        }
        assert_eq!(counts[1], 0);
        for (c, p) in counts.iter().zip(&probabilities) {
            let f = *c as f64 / n as f64;
            assert!(
                (f - p).abs() <= 4.0 * (p * (1.0 - p) / n as f64).sqrt(),
                "{counts:?}"
            );
        }
        // W&B semantics: the first value whose cumulative probability exceeds u.
        assert_eq!(d.from_unit(0.0), json!(1));
        assert_eq!(d.from_unit(0.1), json!(3));
        assert_eq!(d.from_unit(0.69), json!(3));
        assert_eq!(d.from_unit(0.7), json!(4));
        assert_eq!(d.from_unit(1.0), json!(4));
        assert_eq!(d.to_unit(&json!(2)), None);
        assert!((d.to_unit(&json!(3)).unwrap() - 0.4).abs() < 1e-15);
    }

    #[test]
    fn int_uniform_covers_both_ends_evenly() {
        let d = Distribution::IntUniform { min: -3, max: 7 };
        let mut counts = [0usize; 11];
        for v in draws(&d, 23, 55_000) {
            counts[(v.as_i64().unwrap() + 3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0));
        // 99.9% quantile of chi-square with 10 degrees of freedom.
        assert!(chi_square(&counts, &[1.0 / 11.0; 11]) < 29.59, "{counts:?}");
        assert_eq!(d.from_unit(0.0), json!(-3));
        assert_eq!(d.from_unit(1.0), json!(7));
        assert_eq!(d.to_unit(&json!(8)), None);
        assert_eq!(d.to_unit(&json!("3")), None);
        assert_eq!(d.to_unit(&json!(-3)), Some(0.5 / 11.0));
    }

    #[test]
    fn huge_int_uniform() {
        let d = Distribution::IntUniform {
            min: i64::MIN,
            max: i64::MAX,
        };
        assert_eq!(d.from_unit(0.0), json!(i64::MIN));
        assert_eq!(d.from_unit(1.0), json!(i64::MAX));
        assert_eq!(d.grid_len(), Some(u64::MAX));
        assert_eq!(d.grid_len_exact(), Some(1u128 << 64));
        assert!(d.to_unit(&json!(0)).is_some());
        assert_eq!(
            d.describe(),
            format!(
                "int_uniform [{}, {}] (18446744073709551616 values)",
                i64::MIN,
                i64::MAX
            )
        );
    }

    #[test]
    fn quantized_values_are_clean_and_bounded() {
        let d = Distribution::QUniform {
            min: 0.0,
            max: 1.0,
            q: q(0.1),
        };
        assert_eq!(d.from_unit(0.3), json!(0.3));
        assert_eq!(d.from_unit(0.7), json!(0.7));
        assert_eq!(d.from_unit(1.0), json!(1.0));
        // W&B would round x ∈ [0.9, 1] to 1.2 here; hyperdial keeps the value inside.
        let d = Distribution::QUniform {
            min: 0.0,
            max: 1.0,
            q: q(0.6),
        };
        assert_eq!(d.from_unit(0.95), json!(0.6));
        assert_eq!(d.value_bounds(), Some((0.0, 0.6)));
        // Below the bounds, the first multiple inside.
        let d = Distribution::QLogUniformValues {
            min: 1e-4,
            max: 0.1,
            q: q(0.01),
        };
        assert_eq!(d.from_unit(0.0), json!(0.01));
        assert_eq!(d.value_bounds(), Some((0.01, 0.1)));
        // A `q` so small against the bounds that its multiples are not distinct doubles (or
        // overflow): the values stay inside the bounds, and map back.
        let d = Distribution::QUniform {
            min: 0.0,
            max: 1e308,
            q: q(1e-300),
        };
        for u in [0.0, 0.3, 0.999, 1.0] {
            let v = d.from_unit(u).as_f64().unwrap();
            assert!((0.0..=1e308).contains(&v), "{u}: {v}");
            assert!(d.to_unit(&json!(v)).is_some(), "{u}: {v}");
        }
        let d = Distribution::QNormal {
            mu: 0.0,
            sigma: 1.0,
            q: q(5e-324),
        };
        for u in [0.0, 0.5, 1.0] {
            let v = d.from_unit(u).as_f64().unwrap();
            assert!(v.abs() < 8.0, "{u}: {v}");
        }
        // No multiple inside: W&B's plain rounding.
        let d = Distribution::QLogUniformValues {
            min: 1e-4,
            max: 0.1,
            q: qi(1.0),
        };
        assert_eq!(d.from_unit(0.5), json!(0));
        assert_eq!(d.to_unit(&json!(0)), Some(0.5));
        // Integer q gives integers; negative zero is not produced.
        let d = Distribution::QNormal {
            mu: 0.0,
            sigma: 1.0,
            q: qi(2.0),
        };
        assert_eq!(d.from_unit(0.5), json!(0));
        let d = Distribution::QNormal {
            mu: 0.0,
            sigma: 1.0,
            q: q(0.5),
        };
        assert_eq!(serde_json::to_string(&d.from_unit(0.45)).unwrap(), "0.0");
        assert_eq!(d.to_unit(&json!(0.3)), None);
        assert!(d.to_unit(&json!(100.5)).is_some());
    }

    #[test]
    fn unbounded_quantiles_stay_finite() {
        for d in [
            Distribution::Normal {
                mu: 0.0,
                sigma: 1.0,
            },
            Distribution::LogNormal {
                mu: 0.0,
                sigma: 1.0,
            },
            Distribution::Normal {
                mu: 0.0,
                sigma: 1e308,
            },
            Distribution::LogNormal {
                mu: 700.0,
                sigma: 100.0,
            },
        ] {
            for u in [0.0, 1.0] {
                let x = d.from_unit(u).as_f64().unwrap();
                assert!(x.is_finite(), "{}", d.describe());
            }
        }
        let normal = Distribution::Normal {
            mu: 0.0,
            sigma: 1.0,
        };
        let low = normal.from_unit(0.0).as_f64().unwrap();
        assert!((low + 7.034_483_825_301_131).abs() < 1e-9, "{low}");
    }

    #[test]
    fn categorical_compares_json_exactly() {
        let d = Distribution::Categorical {
            values: vec![json!(1), json!(1.0), json!("1")],
        };
        assert_eq!(d.to_unit(&json!(1)), Some(0.5 / 3.0));
        assert_eq!(d.to_unit(&json!(1.0)), Some(1.5 / 3.0));
        assert_eq!(d.to_unit(&json!("1")), Some(2.5 / 3.0));
        assert_eq!(d.to_unit(&json!(true)), None);
        assert_eq!(d.from_unit(1.0), json!("1"));
    }

    #[test]
    fn finite_values_are_exactly_what_sampling_produces() {
        // q_log_uniform_values over [1, 100] with q = 10: 10, 20, ..., 100.
        let d = Distribution::QLogUniformValues {
            min: 1.0,
            max: 100.0,
            q: Quantum {
                q: 10.0,
                integer: true,
            },
        };
        assert_eq!(d.value_count(), Some(10));
        assert_eq!(d.value_at(0), Some(json!(10)));
        assert_eq!(d.value_at(9), Some(json!(100)));
        assert_eq!(d.value_at(10), None);
        // Every listed value maps to a unit coordinate that decodes to it, and a dense sweep
        // of the unit interval produces nothing else.
        let listed: Vec<Value> = (0..10).map(|i| d.value_at(i).unwrap()).collect();
        for v in &listed {
            let u = d.to_unit(v).unwrap();
            assert_eq!(&d.from_unit(u), v);
        }
        for k in 0..=1000 {
            let v = d.from_unit(k as f64 / 1000.0);
            assert!(listed.contains(&v), "{v}");
        }
        for d in all_distributions() {
            if d.grid_len().is_some() {
                assert_eq!(d.value_count(), d.grid_len().map(u128::from));
            }
        }
        assert_eq!(
            Distribution::QNormal {
                mu: 0.0,
                sigma: 1.0,
                q: Quantum {
                    q: 1.0,
                    integer: true
                }
            }
            .value_count(),
            None
        );
        assert_eq!(
            Distribution::Uniform { min: 0.0, max: 1.0 }.value_count(),
            None
        );
    }

    #[test]
    fn grid_values_and_lengths() {
        for d in all_distributions() {
            let values = d.grid_values();
            assert_eq!(
                values.as_ref().map(|v| v.len() as u64),
                d.grid_len(),
                "{}",
                d.describe()
            );
        }
        let d = Distribution::Categorical {
            values: vec![json!("b"), json!("a")],
        };
        assert_eq!(d.grid_values(), Some(vec![json!("b"), json!("a")]));
        let d = Distribution::IntUniform { min: 1, max: 4 };
        assert_eq!(
            d.grid_values(),
            Some(vec![json!(1), json!(2), json!(3), json!(4)])
        );
        assert_eq!(
            Distribution::Constant { value: json!("x") }.grid_values(),
            Some(vec![json!("x")])
        );
        let weighted = Distribution::CategoricalWithProbabilities {
            values: vec![json!(1)],
            probabilities: vec![1.0],
        };
        assert_eq!(weighted.grid_values(), None);
        assert_eq!(
            Distribution::Uniform { min: 0.0, max: 1.0 }.grid_len(),
            None
        );
    }

    #[test]
    fn names_and_flags() {
        let names: Vec<_> = all_distributions().iter().map(Distribution::name).collect();
        for name in [
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
        ] {
            assert!(names.contains(&name), "{name} not covered");
        }
        // The names agree with the serde tag.
        for d in all_distributions() {
            assert_eq!(
                serde_json::to_value(&d).unwrap()["distribution"],
                json!(d.name())
            );
            assert_eq!(d.is_log_scale(), d.name().contains("log_"), "{}", d.name());
            assert_eq!(
                d.is_categorical(),
                d.name().starts_with("categorical"),
                "{}",
                d.name()
            );
        }
        assert!(Distribution::QLogUniformValues {
            min: 1.0,
            max: 10.0,
            q: qi(1.0)
        }
        .is_integer_valued());
        assert!(!Distribution::QUniform {
            min: 0.0,
            max: 1.0,
            q: q(0.5)
        }
        .is_integer_valued());
        assert!(Distribution::Categorical {
            values: vec![json!(1), json!(2)]
        }
        .is_integer_valued());
        assert!(!Distribution::Categorical {
            values: vec![json!(1), json!(2.0)]
        }
        .is_integer_valued());
    }

    #[test]
    fn descriptions() {
        let cases = [
            (
                Distribution::IntUniform { min: 1, max: 10 },
                "int_uniform [1, 10] (10 values)",
            ),
            (
                Distribution::LogUniformValues {
                    min: 1e-4,
                    max: 0.1,
                },
                "log_uniform_values [0.0001, 0.1]",
            ),
            (
                Distribution::LogUniform {
                    min: -9.21,
                    max: -2.3,
                },
                "log_uniform exp(U[-9.21, -2.3]) = [0.0001, 0.1]",
            ),
            (
                Distribution::InvLogUniform {
                    min: 2.3,
                    max: 9.21,
                },
                "inv_log_uniform exp(-U[2.3, 9.21]) = [0.0001, 0.1]",
            ),
            (
                Distribution::QUniform {
                    min: 0.0,
                    max: 1.0,
                    q: q(0.25),
                },
                "q_uniform [0, 1] step 0.25 (5 values)",
            ),
            (
                Distribution::Normal {
                    mu: 0.0,
                    sigma: 1.0,
                },
                "normal mu=0 sigma=1",
            ),
            (
                Distribution::Categorical {
                    values: vec![json!("adam"), json!("sgd")],
                },
                "categorical [\"adam\", \"sgd\"] (2 values)",
            ),
            (Distribution::Constant { value: json!(5) }, "constant 5"),
            (
                Distribution::Constant {
                    value: json!({"a": [1, 2]}),
                },
                "constant {\"a\":[1,2]}",
            ),
            (
                Distribution::CategoricalWithProbabilities {
                    values: vec![json!("a"), json!(2)],
                    probabilities: vec![0.25, 0.75],
                },
                "categorical_w_probabilities [\"a\" p=0.25, 2 p=0.75] (2 values)",
            ),
            (
                Distribution::QBeta {
                    a: 2.0,
                    b: 5.0,
                    q: q(0.1),
                },
                "q_beta a=2 b=5 step 0.1",
            ),
            (
                Distribution::Uniform {
                    min: 1e-20,
                    max: 1.5,
                },
                "uniform [1e-20, 1.5]",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(d.describe(), want);
        }
        let many = Distribution::Categorical {
            values: (0..25).map(|i| json!(i)).collect(),
        };
        assert_eq!(
            many.describe(),
            "categorical [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 15 more] (25 values)"
        );
    }

    #[test]
    fn value_bounds_in_value_space() {
        let close = |got: Option<(f64, f64)>, lo: f64, hi: f64| {
            let (a, b) = got.unwrap();
            assert!(
                (a - lo).abs() <= 1e-12 * lo.abs() && (b - hi).abs() <= 1e-12 * hi.abs(),
                "{a} {b}"
            );
        };
        close(
            Distribution::LogUniform {
                min: -2.0,
                max: 1.0,
            }
            .value_bounds(),
            (-2.0f64).exp(),
            1f64.exp(),
        );
        close(
            Distribution::InvLogUniform {
                min: -1.0,
                max: 2.0,
            }
            .value_bounds(),
            (-2.0f64).exp(),
            1f64.exp(),
        );
        assert_eq!(
            Distribution::Beta { a: 2.0, b: 2.0 }.value_bounds(),
            Some((0.0, 1.0))
        );
        assert_eq!(
            Distribution::IntUniform { min: -1, max: 3 }.value_bounds(),
            Some((-1.0, 3.0))
        );
        assert_eq!(
            Distribution::Normal {
                mu: 0.0,
                sigma: 1.0
            }
            .value_bounds(),
            None
        );
        assert_eq!(
            Distribution::QLogNormal {
                mu: 0.0,
                sigma: 1.0,
                q: q(0.1)
            }
            .value_bounds(),
            None
        );
        assert_eq!(
            Distribution::Constant { value: json!("x") }.value_bounds(),
            None
        );
        assert_eq!(
            Distribution::Categorical {
                values: vec![json!(3), json!(-1.5)]
            }
            .value_bounds(),
            Some((-1.5, 3.0))
        );
        assert_eq!(
            Distribution::QUniform {
                min: 0.1,
                max: 1.0,
                q: q(0.2)
            }
            .value_bounds(),
            Some((0.2, 1.0))
        );
    }

    #[test]
    fn degenerate_ranges_and_foreign_values() {
        let cases = [
            (Distribution::Uniform { min: 2.5, max: 2.5 }, json!(2.5)),
            (Distribution::IntUniform { min: 4, max: 4 }, json!(4)),
            (
                Distribution::LogUniformValues { min: 0.5, max: 0.5 },
                json!(0.5),
            ),
            (
                Distribution::QUniform {
                    min: 1.0,
                    max: 1.0,
                    q: q(0.5),
                },
                json!(1.0),
            ),
        ];
        for (d, want) in cases {
            for u in [0.0, 0.3, 1.0] {
                assert_eq!(d.from_unit(u), want, "{}", d.describe());
            }
            assert_eq!(d.from_unit(d.to_unit(&want).unwrap()), want);
        }
        let d = Distribution::Uniform { min: 0.0, max: 1.0 };
        assert_eq!(d.to_unit(&json!(1.5)), None);
        assert_eq!(d.to_unit(&json!("0.5")), None);
        assert_eq!(d.to_unit(&json!(1)), Some(1.0));
        let d = Distribution::LogUniformValues {
            min: 1e-3,
            max: 1.0,
        };
        assert_eq!(d.to_unit(&json!(0.0)), None);
        assert_eq!(d.to_unit(&json!(-1.0)), None);
        let d = Distribution::Beta { a: 2.0, b: 2.0 };
        assert!((d.to_unit(&json!(0.5)).unwrap() - 0.5).abs() < 1e-15);
        assert_eq!(d.to_unit(&json!(1.5)), None);
        let d = Distribution::QUniform {
            min: 0.0,
            max: 1.0,
            q: q(0.25),
        };
        assert_eq!(d.to_unit(&json!(1.25)), None);
        assert_eq!(d.to_unit(&json!(0.3)), None);
        assert_eq!(
            Distribution::Constant { value: json!(5) }.to_unit(&json!(5.0)),
            None
        );
    }

    #[test]
    fn sampling_is_reproducible() {
        for d in all_distributions() {
            assert_eq!(draws(&d, 7, 50), draws(&d, 7, 50));
        }
    }

    /// Bounded distributions with arbitrary valid parameters.
    fn bounded_distribution() -> impl Strategy<Value = Distribution> {
        let range = (-1e6..1e6f64, 1e-3..1e6f64).prop_map(|(min, width)| (min, min + width));
        let exponents = (-50.0..50.0f64, 0.01..50.0f64).prop_map(|(min, width)| (min, min + width));
        let positive =
            (-30.0..30.0f64, 0.01..30.0f64).prop_map(|(lo, width)| (lo.exp(), (lo + width).exp()));
        let shape = || prop_oneof![1e-3..1.0f64, 1.0..1e3f64];
        // A step no larger than the range, so that a multiple of it lies inside.
        let step = |width: f64, integer: bool| {
            (0.01..0.99f64).prop_map(move |f| {
                let q = width * f;
                if integer {
                    Quantum {
                        q: q.ceil(),
                        integer: true,
                    }
                } else {
                    Quantum {
                        q: format!("{q:.3e}").parse().unwrap(),
                        integer: false,
                    }
                }
            })
        };
        prop_oneof![
            (-1_000_000i64..1_000_000, 0i64..1_000_000).prop_map(|(min, width)| {
                Distribution::IntUniform {
                    min,
                    max: min + width,
                }
            }),
            Just(Distribution::IntUniform {
                min: i64::MIN,
                max: i64::MAX
            }),
            range
                .clone()
                .prop_map(|(min, max)| Distribution::Uniform { min, max }),
            (range, any::<bool>()).prop_flat_map(move |((min, max), integer)| {
                let width = if integer {
                    (max - min).max(1.0)
                } else {
                    max - min
                };
                let (min, max) = if integer {
                    (min, min + width)
                } else {
                    (min, max)
                };
                step(width, integer).prop_map(move |q| Distribution::QUniform { min, max, q })
            }),
            exponents
                .clone()
                .prop_map(|(min, max)| Distribution::LogUniform { min, max }),
            exponents
                .clone()
                .prop_map(|(min, max)| Distribution::InvLogUniform { min, max }),
            exponents.prop_flat_map(move |(min, max)| {
                let width = max.exp() - min.exp();
                step(width, false).prop_map(move |q| Distribution::QLogUniform { min, max, q })
            }),
            positive
                .clone()
                .prop_map(|(min, max)| Distribution::LogUniformValues { min, max }),
            positive
                .clone()
                .prop_map(|(min, max)| Distribution::InvLogUniformValues { min, max }),
            positive.prop_flat_map(move |(min, max)| {
                step(max - min, false).prop_map(move |q| Distribution::QLogUniformValues {
                    min,
                    max,
                    q,
                })
            }),
            (shape(), shape()).prop_map(|(a, b)| Distribution::Beta { a, b }),
            (shape(), shape(), 0.01..1.0f64).prop_map(|(a, b, q)| Distribution::QBeta {
                a,
                b,
                q: Quantum { q, integer: false }
            }),
            (1usize..20).prop_map(|n| Distribution::Categorical {
                values: (0..n).map(|i| json!(i)).collect()
            }),
            prop::collection::vec(0.0..1.0f64, 1..10).prop_map(|weights| {
                let total: f64 = weights.iter().sum::<f64>().max(1e-9);
                Distribution::CategoricalWithProbabilities {
                    values: (0..weights.len()).map(|i| json!(i)).collect(),
                    probabilities: weights.iter().map(|w| w / total).collect(),
                }
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn from_unit_stays_in_bounds(d in bounded_distribution(), u in prop_oneof![0.0..=1.0f64, Just(0.0), Just(1.0)]) {
            let v = d.from_unit(u);
            let x = v.as_f64().unwrap();
            prop_assert!(x.is_finite());
            let (lo, hi) = d.value_bounds().unwrap();
            prop_assert!(lo <= x && x <= hi, "{} at {u}: {x} outside [{lo}, {hi}]", d.describe());
            match &d {
                Distribution::QUniform { min, max, q }
                | Distribution::QLogUniformValues { min, max, q } => {
                    // Within float noise of the written bounds: max may be matched as a multiple
                    // within 1e-9 of a step.
                    let slack = 1e-9 * q.q + 1e-15 * max.abs().max(min.abs());
                    prop_assert!(*min - slack <= x && x <= *max + slack, "{}: {x}", d.describe());
                }
                Distribution::QBeta { .. } => prop_assert!((0.0..=1.0).contains(&x)),
                _ => {}
            }
            prop_assert!(d.to_unit(&v).is_some(), "{}: to_unit({v})", d.describe());
            if is_discrete(&d) {
                prop_assert_eq!(d.from_unit(d.to_unit(&v).unwrap()), v);
            }
        }

        #[test]
        fn unbounded_from_unit_is_finite(
            mu in -100.0..100.0f64,
            sigma in 1e-6..100.0f64,
            u in prop_oneof![0.0..=1.0f64, Just(0.0), Just(1.0)],
        ) {
            for d in [
                Distribution::Normal { mu, sigma },
                Distribution::LogNormal { mu, sigma },
                Distribution::QNormal { mu, sigma, q: Quantum { q: 0.1, integer: false } },
                Distribution::QLogNormal { mu, sigma, q: Quantum { q: 1.0, integer: true } },
            ] {
                let v = d.from_unit(u);
                prop_assert!(v.as_f64().unwrap().is_finite());
                prop_assert!(d.to_unit(&v).is_some());
            }
        }
    }
}
