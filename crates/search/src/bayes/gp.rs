//! A Gaussian process with a Matérn-5/2 ARD kernel, fitted by maximum a posteriori.
//!
//! ## Model
//!
//! Inputs `x ∈ [0, 1]^D` (unit coordinates and one-hot blocks), outputs `y` standardized
//! (zero mean, unit variance). The kernel is
//!
//! ```text
//! k(x, x') = σ_f² (1 + √5 r + 5/3 r²) exp(−√5 r),   r² = Σ_d (x_d − x'_d)² / ℓ_d²
//! ```
//!
//! with one length scale `ℓ_d` per input (automatic relevance determination), plus Gaussian
//! noise `σ_n²` on the diagonal. With `K = k(X, X) + σ_n² I = L Lᵀ` (Cholesky, by faer) and
//! `α = K⁻¹ y`, the posterior at `x*` is
//!
//! ```text
//! μ(x*) = k*ᵀ α,    σ²(x*) = σ_f² − ‖L⁻¹ k*‖²
//! ```
//!
//! ## Hyperparameters
//!
//! `θ = (ln ℓ_1 … ln ℓ_D, ln σ_f², ln σ_n²)` maximizes the log posterior
//!
//! ```text
//! ln p(θ | y) = −½ yᵀα − Σ_i ln L_ii − n/2 ln 2π + ln p(θ)
//! ```
//!
//! with independent normal priors on the logs, inside the box of [`bounds`]:
//!
//! - `ln ℓ_d ~ N(ln ½ + ½ ln max(1, D/10), 3)`: half the unit range up to 10 inputs, then
//!   growing like `√D`, as distances between points do (the dimension scaling of Hvarfner
//!   et al., 2024, which keeps high-dimensional models from overfitting). Centred at their
//!   `√2 + ½ ln D` instead (`ℓ ≈ 9` in 5-D), the model was nearly linear with the few dozen
//!   observations of a typical sweep and sent suggestions to the corners of the box: mean
//!   rank 3.8 of 8 optimizers at 50 trials in bench/quality (seeds 0–4), 3.1 with `ℓ = ½`.
//! - `ln σ_f² ~ N(0, 1)`: outputs are standardized.
//! - `ln σ_n² ~ N(−4, 1)`: the noise variance is log-normal around `e⁻⁴ ≈ 0.018` of the
//!   standardized variance, the prior BoTorch's default model adopted together with the
//!   dimension-scaled length-scale priors of Hvarfner et al. (2024). Real training metrics are noisy (a seed, a fold, data order); with the earlier
//!   `N(−6, 1)` the fit needed several nats of evidence to leave `σ_n² ≈ 0.0025`, so on noisy
//!   sweeps it interpolated the noise and chased lucky draws. On the values-list suite of
//!   bench/quality (13 tasks, seeds 0–19; bench/results/quality-lists.md) `−4` lowered the
//!   mean normalized regret at 50 trials from 0.099 to 0.080 (noisy tasks from tables 0.142
//!   → 0.113, large noisy grids 0.186 → 0.146, deterministic tasks level) and at 100 trials
//!   from 0.068 to 0.066 (deterministic tasks 0.018 → 0.012); the continuous suite stayed
//!   within seed noise (bench/results/quality.md). An earlier version, before the output
//!   warp and the noise-aware incumbent, had ranked better on the continuous suite with
//!   `−6`.
//!
//! The gradient is
//!
//! ```text
//! ∂/∂θ_j ln p(y | θ) = ½ tr((ααᵀ − K⁻¹) ∂K/∂θ_j)
//! ∂k/∂ln ℓ_d = σ_f² · 5/3 · (1 + √5 r) exp(−√5 r) · (x_d − x'_d)² / ℓ_d²
//! ∂k/∂ln σ_f² = k,   ∂K/∂ln σ_n² = σ_n² I
//! ```
//!
//! and the maximization is the projected L-BFGS of [`super::optimize`] from the best few of
//! several starting points (the prior's mode and draws from the prior).

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Mat, Par, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::optimize::{minimize, Options};

const SQRT5: f64 = 2.236_067_977_499_79;
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Prior mean and standard deviation of `ln ℓ` for `d` inputs.
fn ls_prior(d: usize) -> (f64, f64) {
    (
        0.5f64.ln() + 0.5 * (d as f64 / 10.0).max(1.0).ln(),
        3f64.sqrt(),
    )
}
const SIGNAL_PRIOR: (f64, f64) = (0.0, 1.0);
const NOISE_PRIOR: (f64, f64) = (-4.0, 1.0);

/// The box the hyperparameters are searched in: `(lower, upper)`.
pub fn bounds(d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut lo = vec![(5e-3f64).ln(); d];
    let mut hi = vec![(1e3f64).ln(); d];
    lo.push((0.05f64).ln());
    hi.push((20.0f64).ln());
    lo.push((1e-6f64).ln());
    hi.push((2.0f64).ln());
    (lo, hi)
}

/// Fitted hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    /// Length scales, one per input.
    pub lengthscales: Vec<f64>,
    /// Signal variance `σ_f²`.
    pub signal: f64,
    /// Noise variance `σ_n²`.
    pub noise: f64,
}

impl Hyper {
    fn from_theta(theta: &[f64]) -> Self {
        let d = theta.len() - 2;
        Hyper {
            lengthscales: theta[..d].iter().map(|t| t.exp()).collect(),
            signal: theta[d].exp(),
            noise: theta[d + 1].exp(),
        }
    }
}

/// Matérn-5/2 value and the factor `σ_f² · 5/3 · (1 + √5 r) e^{−√5 r}` shared by its
/// derivatives, from `r²`.
#[inline]
fn matern(r2: f64, signal: f64) -> (f64, f64) {
    let r = r2.max(0.0).sqrt();
    let e = (-SQRT5 * r).exp();
    let k = signal * (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * e;
    let dk = signal * 5.0 / 3.0 * (1.0 + SQRT5 * r) * e;
    (k, dk)
}

#[inline]
fn sq_dist(a: &[f64], b: &[f64], inv_ls2: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..a.len() {
        let t = a[i] - b[i];
        s += t * t * inv_ls2[i];
    }
    s
}

/// Negative log posterior of `θ` for inputs `x` (`n × d`, row-major) and outputs `y`, and its
/// gradient when `grad` is given. `+∞` when the kernel matrix is not positive definite.
pub fn neg_log_posterior(
    theta: &[f64],
    x: &[f64],
    y: &[f64],
    d: usize,
    grad: Option<&mut [f64]>,
) -> f64 {
    let n = y.len();
    let hyper = Hyper::from_theta(theta);
    let inv_ls2: Vec<f64> = hyper.lengthscales.iter().map(|l| 1.0 / (l * l)).collect();
    let row = |i: usize| &x[i * d..(i + 1) * d];
    // The lower triangle only (the Cholesky reads no more); the derivative factors of the
    // kernel are kept for the gradient, column by column.
    let mut k = Mat::<f64>::zeros(n, n);
    let mut dks = Vec::with_capacity(if grad.is_some() { n * (n - 1) / 2 } else { 0 });
    for j in 0..n {
        k[(j, j)] = hyper.signal + hyper.noise;
        let xj = row(j);
        let col = k.col_as_slice_mut(j);
        for (i, c) in col.iter_mut().enumerate().skip(j + 1) {
            let (kv, dk) = matern(sq_dist(row(i), xj, &inv_ls2), hyper.signal);
            *c = kv;
            if grad.is_some() {
                dks.push(dk);
            }
        }
    }
    let Ok(llt) = k.llt(Side::Lower) else {
        return f64::INFINITY;
    };
    let l = llt.L();
    let mut alpha = Mat::from_fn(n, 1, |i, _| y[i]);
    llt.solve_in_place(alpha.as_mut());
    let alpha = alpha.col_as_slice(0);
    let mut nlp = 0.5 * y.iter().zip(alpha).map(|(a, b)| a * b).sum::<f64>();
    for i in 0..n {
        nlp += l[(i, i)].ln();
    }
    nlp += 0.5 * n as f64 * LN_2PI;
    // Priors.
    let (lm, ls) = ls_prior(d);
    let prior = |t: f64, (m, s): (f64, f64)| 0.5 * ((t - m) / s).powi(2);
    for &t in &theta[..d] {
        nlp += prior(t, (lm, ls));
    }
    nlp += prior(theta[d], SIGNAL_PRIOR) + prior(theta[d + 1], NOISE_PRIOR);
    if !nlp.is_finite() {
        return f64::INFINITY;
    }
    let Some(grad) = grad else {
        return nlp;
    };
    // W = K⁻¹ − ααᵀ; ∂(−ln p)/∂θ_j = ½ tr(W ∂K/∂θ_j).
    let kinv = llt.inverse();
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut g_signal = 0.0;
    let mut g_noise = 0.0;
    let mut pair = 0;
    for j in 0..n {
        let col = kinv.col_as_slice(j);
        let kcol = k.col_as_slice(j);
        // Diagonal.
        let w = col[j] - alpha[j] * alpha[j];
        g_signal += 0.5 * w * hyper.signal;
        g_noise += 0.5 * w * hyper.noise;
        let xj = row(j);
        for i in (j + 1)..n {
            let w = col[i] - alpha[i] * alpha[j];
            let xi = row(i);
            let (kv, dk) = (kcol[i], dks[pair]);
            pair += 1;
            // Off-diagonal pairs count twice.
            g_signal += w * kv;
            let wd = w * dk;
            for dd in 0..d {
                let t = xi[dd] - xj[dd];
                grad[dd] += wd * t * t * inv_ls2[dd];
            }
        }
    }
    grad[d] = g_signal;
    grad[d + 1] = g_noise;
    for (dd, g) in grad.iter_mut().take(d).enumerate() {
        *g += (theta[dd] - lm) / (ls * ls);
    }
    grad[d] += (theta[d] - SIGNAL_PRIOR.0) / (SIGNAL_PRIOR.1 * SIGNAL_PRIOR.1);
    grad[d + 1] += (theta[d + 1] - NOISE_PRIOR.0) / (NOISE_PRIOR.1 * NOISE_PRIOR.1);
    nlp
}

/// How hard [`fit`] works.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effort {
    /// Starting points scored (the prior's mode, a short-length-scale start, prior draws).
    pub starts: usize,
    /// L-BFGS runs, from the best-scored starts.
    pub restarts: usize,
    /// Relative decrease of the log posterior below which L-BFGS stops.
    pub ftol: f64,
    /// Evaluation cap of each L-BFGS run.
    pub max_evals: usize,
    /// Whether two of the starts assume a noisy metric (`σ_n²` of 0.1 and 0.3 of the
    /// standardized variance, length scales at the prior's mode). From the prior's mode and
    /// short length scales, L-BFGS finds the local optimum that explains noise by wiggles
    /// at least as often as the one that fits it as noise, though the latter may have the
    /// higher posterior.
    pub noisy_starts: bool,
}

impl Effort {
    /// The effort for `n` observations. Up to 50 the likelihood is flat and multi-modal and
    /// an evaluation is cheap (`O(n³)` with `n ≤ 50`): 6 starts, 2 L-BFGS runs to a tight
    /// tolerance. Beyond, the posterior is well determined and each evaluation costs more:
    /// 4 starts, 1 run of at most 24 evaluations, stopped early once an
    /// iteration gains less than 0.1%. On the tasks of bench/quality the fit takes about 20
    /// evaluations at 75–100 observations, so the cap rarely binds; on the engine
    /// benchmark's smooth bowl, where it does (28 evaluations instead of 40), the length
    /// scales stay within 2% of the uncapped fit's.
    pub fn for_observations(n: usize) -> Self {
        if n <= 50 {
            Effort {
                starts: 6,
                restarts: 2,
                ftol: 1e-6,
                max_evals: usize::MAX,
                noisy_starts: false,
            }
        } else {
            Effort {
                starts: 4,
                restarts: 1,
                ftol: 1e-3,
                max_evals: 24,
                noisy_starts: false,
            }
        }
    }

    /// The effort for a one-off fit whose noise estimate matters (the estimate of the best
    /// configuration, [`super::estimate`]): 8 starts including the noisy ones, every one
    /// refined to a tight tolerance (4, capped at 60 evaluations each, above 100
    /// observations); the fit with the highest posterior wins.
    pub fn thorough(n: usize) -> Self {
        Effort {
            starts: 8,
            restarts: if n <= 100 { 8 } else { 4 },
            ftol: 1e-6,
            max_evals: if n <= 100 { usize::MAX } else { 60 },
            noisy_starts: true,
        }
    }
}

/// Fit the hyperparameters by MAP: `effort.starts` starting points (the prior mode, a
/// short-length-scale start, then draws from the prior clipped to the box) are scored, and
/// L-BFGS runs from the best `effort.restarts`. Returns the hyperparameters and the number
/// of likelihood evaluations.
pub fn fit(x: &[f64], y: &[f64], d: usize, seed: u64, effort: Effort) -> (Hyper, usize) {
    let (lo, hi) = bounds(d);
    let (lm, ls) = ls_prior(d);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut inits: Vec<Vec<f64>> = Vec::new();
    let mut mode: Vec<f64> = vec![lm; d];
    mode.push(SIGNAL_PRIOR.0);
    mode.push(NOISE_PRIOR.0);
    inits.push(mode);
    // Shorter length scales than the prior's mode: a good start when the data are wiggly.
    let mut short: Vec<f64> = vec![(0.3f64).ln(); d];
    short.push(SIGNAL_PRIOR.0);
    short.push(NOISE_PRIOR.0);
    inits.push(short);
    if effort.noisy_starts {
        for noise in [0.1f64, 0.3] {
            let mut t = vec![lm; d];
            t.push(SIGNAL_PRIOR.0);
            t.push(noise.ln());
            inits.push(t);
        }
    }
    while inits.len() < effort.starts.max(1) {
        let mut t: Vec<f64> = (0..d)
            .map(|_| lm - 1.5 * ls * rng.random::<f64>())
            .collect();
        t.push(SIGNAL_PRIOR.0 + (rng.random::<f64>() - 0.5));
        t.push(NOISE_PRIOR.0 + 2.0 * (rng.random::<f64>() - 0.5));
        inits.push(t);
    }
    for t in inits.iter_mut() {
        for i in 0..t.len() {
            t[i] = t[i].clamp(lo[i], hi[i]);
        }
    }
    let mut scored: Vec<(f64, Vec<f64>)> = inits
        .into_iter()
        .map(|t| (neg_log_posterior(&t, x, y, d, None), t))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut evals = scored.len();
    for (f0, t0) in scored.into_iter().take(effort.restarts.max(1)) {
        let m = if f0.is_finite() {
            minimize(
                |t, g| neg_log_posterior(t, x, y, d, Some(g)),
                &t0,
                &lo,
                &hi,
                Options {
                    max_iter: 30,
                    max_evals: effort.max_evals,
                    pgtol: 1e-3,
                    ftol: effort.ftol,
                    ..Default::default()
                },
            )
        } else {
            super::optimize::Minimum {
                x: t0,
                f: f0,
                evals: 0,
            }
        };
        evals += m.evals;
        if best.as_ref().is_none_or(|b| m.f < b.0 || !b.0.is_finite()) {
            best = Some((m.f, m.x));
        }
    }
    let theta = best.map(|b| b.1).unwrap_or_else(|| {
        let mut t = vec![lm; d];
        t.push(0.0);
        t.push(NOISE_PRIOR.0);
        t
    });
    (Hyper::from_theta(&theta), evals)
}

/// A conditioned Gaussian process.
pub struct Gp {
    d: usize,
    x: Vec<f64>,
    inv_ls2: Vec<f64>,
    /// The hyperparameters.
    pub hyper: Hyper,
    /// The Cholesky factor `L` of `K`.
    l: Mat<f64>,
    alpha: Vec<f64>,
}

impl Gp {
    /// Condition on `x` (`n × d`, row-major) and `y` with hyperparameters `hyper`; the last
    /// `exact` points are noiseless (fantasies: a pending run will be observed once, so its
    /// point is "known" to the model). A small jitter is added, and raised tenfold as often
    /// as needed, when the kernel matrix is numerically singular.
    pub fn new(x: Vec<f64>, y: &[f64], d: usize, mut hyper: Hyper, exact: usize) -> Self {
        let n = y.len();
        let inv_ls2: Vec<f64> = hyper.lengthscales.iter().map(|l| 1.0 / (l * l)).collect();
        let row = |i: usize| &x[i * d..(i + 1) * d];
        let base = Mat::from_fn(n, n, |i, j| {
            if i == j {
                hyper.signal
            } else {
                matern(sq_dist(row(i), row(j), &inv_ls2), hyper.signal).0
            }
        });
        let mut jitter = 0.0;
        let llt = loop {
            let mut k = base.clone();
            for i in 0..n {
                let noise = if i + exact >= n {
                    1e-6 * hyper.signal
                } else {
                    hyper.noise
                };
                k[(i, i)] += noise + jitter;
            }
            match k.llt(Side::Lower) {
                Ok(llt) => break llt,
                Err(_) => {
                    jitter = if jitter == 0.0 {
                        1e-8 * hyper.signal
                    } else {
                        jitter * 10.0
                    };
                }
            }
        };
        if jitter > 0.0 {
            hyper.noise += jitter;
        }
        let l = llt.L().to_owned();
        let mut alpha = Mat::from_fn(n, 1, |i, _| y[i]);
        llt.solve_in_place(alpha.as_mut());
        let alpha = alpha.col_as_slice(0).to_vec();
        Gp {
            d,
            x,
            inv_ls2,
            hyper,
            l,
            alpha,
        }
    }

    /// The number of conditioning points.
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    /// Whether the process is conditioned on nothing.
    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// Posterior means and variances at `m` points (`m × d`, row-major), batched: one
    /// triangular solve with `m` right-hand sides.
    pub fn predict(&self, pts: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = self.len();
        let m = pts.len() / self.d;
        let mut ks = Mat::from_fn(n, m, |i, j| {
            matern(
                sq_dist(
                    self.row(i),
                    &pts[j * self.d..(j + 1) * self.d],
                    &self.inv_ls2,
                ),
                self.hyper.signal,
            )
            .0
        });
        let mean: Vec<f64> = (0..m)
            .map(|j| {
                ks.col_as_slice(j)
                    .iter()
                    .zip(&self.alpha)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        solve_lower_triangular_in_place(self.l.as_ref(), ks.as_mut(), Par::Seq);
        let var = (0..m)
            .map(|j| {
                let v = ks.col_as_slice(j);
                (self.hyper.signal - v.iter().map(|t| t * t).sum::<f64>()).max(1e-12)
            })
            .collect();
        (mean, var)
    }

    /// Posterior mean and variance at one point with their gradients with respect to the
    /// inputs listed in `active` (feature indices): `(μ, σ², ∂μ, ∂σ²)`.
    ///
    /// `∂μ/∂x_d = Σ_i ∂k_i/∂x_d α_i` and `∂σ²/∂x_d = −2 Σ_i ∂k_i/∂x_d (K⁻¹k*)_i`, with
    /// `∂k_i/∂x_d = −σ_f² · 5/3 · (1 + √5 r) e^{−√5 r} (x_d − x_{i,d}) / ℓ_d²`.
    pub fn predict_grad(&self, p: &[f64], active: &[usize]) -> (f64, f64, Vec<f64>, Vec<f64>) {
        let n = self.len();
        let mut kv = Mat::<f64>::zeros(n, 1);
        let mut dfac = vec![0.0; n];
        for i in 0..n {
            let (k, dk) = matern(sq_dist(self.row(i), p, &self.inv_ls2), self.hyper.signal);
            kv[(i, 0)] = k;
            dfac[i] = dk;
        }
        let mean: f64 = kv
            .col_as_slice(0)
            .iter()
            .zip(&self.alpha)
            .map(|(a, b)| a * b)
            .sum();
        solve_lower_triangular_in_place(self.l.as_ref(), kv.as_mut(), Par::Seq);
        let var =
            (self.hyper.signal - kv.col_as_slice(0).iter().map(|t| t * t).sum::<f64>()).max(1e-12);
        solve_upper_triangular_in_place(self.l.transpose(), kv.as_mut(), Par::Seq);
        let w = kv.col_as_slice(0);
        let mut dmean = vec![0.0; active.len()];
        let mut dvar = vec![0.0; active.len()];
        for i in 0..n {
            let xi = self.row(i);
            for (a, &dd) in active.iter().enumerate() {
                let dk = -dfac[i] * (p[dd] - xi[dd]) * self.inv_ls2[dd];
                dmean[a] += dk * self.alpha[i];
                dvar[a] -= 2.0 * dk * w[i];
            }
        }
        (mean, var, dmean, dvar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let d = 2;
        let x: Vec<f64> = (0..12)
            .flat_map(|i| {
                let t = i as f64 / 11.0;
                [t, (3.0 * t).sin().abs()]
            })
            .collect();
        let y: Vec<f64> = (0..12).map(|i| ((i as f64) * 0.7).sin()).collect();
        let theta = vec![-0.5, 0.3, 0.2, -3.0];
        let mut g = vec![0.0; 4];
        let f0 = neg_log_posterior(&theta, &x, &y, d, Some(&mut g));
        assert!(f0.is_finite());
        for j in 0..4 {
            let h = 1e-5;
            let mut tp = theta.clone();
            tp[j] += h;
            let mut tm = theta.clone();
            tm[j] -= h;
            let fd = (neg_log_posterior(&tp, &x, &y, d, None)
                - neg_log_posterior(&tm, &x, &y, d, None))
                / (2.0 * h);
            assert!(
                (fd - g[j]).abs() < 1e-4 * (1.0 + fd.abs()),
                "{j}: {fd} vs {}",
                g[j]
            );
        }
    }

    #[test]
    fn posterior_interpolates_noiseless_data() {
        let d = 1;
        let x: Vec<f64> = (0..8).map(|i| i as f64 / 7.0).collect();
        let y: Vec<f64> = x.iter().map(|t| (6.0 * t).sin()).collect();
        let gp = Gp::new(
            x.clone(),
            &y,
            d,
            Hyper {
                lengthscales: vec![0.3],
                signal: 1.0,
                noise: 1e-10,
            },
            0,
        );
        let (mean, var) = gp.predict(&x);
        for i in 0..8 {
            assert!((mean[i] - y[i]).abs() < 1e-4, "{} vs {}", mean[i], y[i]);
            assert!(var[i] < 1e-4);
        }
        let (m, v) = gp.predict(&[0.5 / 7.0]);
        assert!(v[0] > 1e-3 && m[0].is_finite());
    }

    #[test]
    fn point_gradients_match_finite_differences() {
        let d = 2;
        let x: Vec<f64> = (0..10)
            .flat_map(|i| [i as f64 / 9.0, ((i * 7) % 10) as f64 / 9.0])
            .collect();
        let y: Vec<f64> = (0..10).map(|i| (i as f64).cos()).collect();
        let gp = Gp::new(
            x,
            &y,
            d,
            Hyper {
                lengthscales: vec![0.4, 0.6],
                signal: 1.3,
                noise: 1e-3,
            },
            0,
        );
        let p = [0.31, 0.77];
        let (m, v, dm, dv) = gp.predict_grad(&p, &[0, 1]);
        let (mb, vb) = gp.predict(&p);
        assert!((m - mb[0]).abs() < 1e-10 && (v - vb[0]).abs() < 1e-10);
        for j in 0..2 {
            let h = 1e-6;
            let mut pp = p;
            pp[j] += h;
            let mut pm = p;
            pm[j] -= h;
            let (a, va) = gp.predict(&pp);
            let (b, vbm) = gp.predict(&pm);
            assert!(((a[0] - b[0]) / (2.0 * h) - dm[j]).abs() < 1e-5);
            assert!(((va[0] - vbm[0]) / (2.0 * h) - dv[j]).abs() < 1e-5);
        }
    }

    #[test]
    fn fit_learns_moderate_noise_from_a_few_dozen_runs() {
        // A smooth 3-D function observed with noise whose variance is about a tenth of the
        // outputs' (the seed noise of a training run near the good region), 40 runs: the
        // fitted noise must be of that size, not the near-zero of a noiseless model, which
        // would fit the draws as signal.
        let d = 3;
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let n = 40;
        let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
        let f: Vec<f64> = (0..n)
            .map(|i| {
                let p = &x[i * d..(i + 1) * d];
                (p[0] - 0.3).powi(2) + 0.5 * (p[1] - 0.6).powi(2) + 0.2 * p[2]
            })
            .collect();
        let mean = f.iter().sum::<f64>() / n as f64;
        let sd = (f.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let y_raw: Vec<f64> = f
            .iter()
            .map(|v| {
                // Box–Muller.
                let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                v + 0.35 * sd * z
            })
            .collect();
        let ym = y_raw.iter().sum::<f64>() / n as f64;
        let ys = (y_raw.iter().map(|v| (v - ym).powi(2)).sum::<f64>() / n as f64).sqrt();
        let y: Vec<f64> = y_raw.iter().map(|v| (v - ym) / ys).collect();
        // The true noise variance in standardized units.
        let truth = (0.35 * sd / ys).powi(2);
        let (h, _) = fit(&x, &y, d, 1, Effort::for_observations(n));
        assert!(
            h.noise > truth / 3.0 && h.noise < truth * 3.0,
            "fitted noise {} vs {truth}",
            h.noise
        );
    }

    #[test]
    fn fit_finds_short_length_scales_for_wiggly_data() {
        let d = 2;
        let x: Vec<f64> = (0..30)
            .flat_map(|i| [i as f64 / 29.0, ((i * 11) % 30) as f64 / 29.0])
            .collect();
        // Depends on x₀ only, quickly.
        let y: Vec<f64> = (0..30).map(|i| (12.0 * x[2 * i]).sin()).collect();
        let (h, _) = fit(&x, &y, d, 1, Effort::for_observations(y.len()));
        assert!(h.lengthscales[0] < 0.5, "{h:?}");
        assert!(h.lengthscales[1] > 2.0 * h.lengthscales[0], "{h:?}");
    }
}
