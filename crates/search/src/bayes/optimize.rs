//! Bound-constrained minimization: a projected L-BFGS (the L-BFGS-B idea without the
//! generalized Cauchy point), small and dependency-free.
//!
//! Each iteration:
//!
//! 1. The *active set* is the coordinates at a bound whose gradient pushes outward
//!    (`x_i = lo_i, g_i > 0` or `x_i = hi_i, g_i < 0`); they are held fixed.
//! 2. The direction is `d = −H g` on the free coordinates, `H` the L-BFGS inverse-Hessian
//!    approximation from the last `m` steps (two-loop recursion, scaled by
//!    `sᵀy / yᵀy`); if that is not a descent direction, steepest descent.
//! 3. A backtracking line search along the *projected path* `P(x + α d)` (`P` clamps to the
//!    box) accepts the first `α ∈ {1, ½, ¼, …}` with the Armijo condition
//!    `f(P(x + α d)) ≤ f(x) + c₁ gᵀ(P(x + α d) − x)`.
//! 4. The pair `(s, y)` is kept only when `sᵀy > 0` (curvature), so `H` stays positive
//!    definite.
//!
//! It stops when the projected gradient `‖P(x − g) − x‖_∞` falls below `pgtol`, the relative
//! decrease of `f` below `ftol`, or after `max_iter` iterations. Measured on the GP
//! hyperparameter and acquisition problems here it converges in 10–40 iterations, which is
//! all the crate needs; the full L-BFGS-B (Byrd et al., 1995) buys little on boxes this
//! small.

/// Settings of [`minimize`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Iteration cap.
    pub max_iter: usize,
    /// History length `m`.
    pub memory: usize,
    /// Projected-gradient tolerance.
    pub pgtol: f64,
    /// Relative function-decrease tolerance.
    pub ftol: f64,
    /// Evaluation cap (line-search trials included); the best point so far is returned.
    pub max_evals: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_iter: 50,
            memory: 8,
            pgtol: 1e-6,
            ftol: 1e-9,
            max_evals: usize::MAX,
        }
    }
}

/// The result of [`minimize`].
#[derive(Debug, Clone)]
pub struct Minimum {
    /// The best point found.
    pub x: Vec<f64>,
    /// `f` there.
    pub f: f64,
    /// Function evaluations used.
    pub evals: usize,
}

fn project(x: &mut [f64], lo: &[f64], hi: &[f64]) {
    for ((xi, &l), &h) in x.iter_mut().zip(lo).zip(hi) {
        *xi = xi.max(l).min(h);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimize `f` over the box `[lo, hi]` from `x0`. `f(x, grad)` returns the value and
/// writes the gradient; a non-finite value counts as "worse than anything" in line searches.
pub fn minimize<F>(mut f: F, x0: &[f64], lo: &[f64], hi: &[f64], opts: Options) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0.to_vec();
    project(&mut x, lo, hi);
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut evals = 1;
    if !fx.is_finite() {
        return Minimum { x, f: fx, evals };
    }
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    let mut d = vec![0.0; n];
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    let mut alpha_buf = vec![0.0; opts.memory];
    for iter in 0..opts.max_iter {
        // Projected gradient and active set.
        let mut pg = 0.0f64;
        let mut free = vec![true; n];
        for i in 0..n {
            let step = (x[i] - g[i]).max(lo[i]).min(hi[i]) - x[i];
            pg = pg.max(step.abs());
            if (x[i] <= lo[i] && g[i] > 0.0) || (x[i] >= hi[i] && g[i] < 0.0) {
                free[i] = false;
            }
        }
        if pg < opts.pgtol {
            break;
        }
        // Two-loop recursion on the free coordinates.
        for i in 0..n {
            d[i] = if free[i] { -g[i] } else { 0.0 };
        }
        let k = s_hist.len();
        for j in (0..k).rev() {
            let a = rho[j] * dot(&s_hist[j], &d);
            alpha_buf[j] = a;
            for i in 0..n {
                d[i] -= a * y_hist[j][i];
            }
        }
        if k > 0 {
            let gamma = dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1]);
            for v in d.iter_mut() {
                *v *= gamma;
            }
        } else {
            // First step: scale so that it moves at most about 1 in the largest coordinate.
            let gmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if gmax > 1.0 {
                for v in d.iter_mut() {
                    *v /= gmax;
                }
            }
        }
        for j in 0..k {
            let b = rho[j] * dot(&y_hist[j], &d);
            for i in 0..n {
                d[i] += s_hist[j][i] * (alpha_buf[j] - b);
            }
        }
        for i in 0..n {
            if !free[i] {
                d[i] = 0.0;
            }
        }
        if dot(&d, &g) >= 0.0 {
            for i in 0..n {
                d[i] = if free[i] { -g[i] } else { 0.0 };
            }
            s_hist.clear();
            y_hist.clear();
            rho.clear();
        }
        // Backtracking along the projected path.
        let mut step = 1.0;
        let mut accepted = false;
        let mut fnew = f64::INFINITY;
        for _ in 0..30 {
            if evals >= opts.max_evals {
                break;
            }
            for i in 0..n {
                xn[i] = x[i] + step * d[i];
            }
            project(&mut xn, lo, hi);
            let decrease: f64 = (0..n).map(|i| g[i] * (xn[i] - x[i])).sum();
            if decrease >= 0.0 {
                // Projection killed the step.
                step *= 0.5;
                continue;
            }
            fnew = f(&xn, &mut gn);
            evals += 1;
            if fnew.is_finite() && fnew <= fx + 1e-4 * decrease {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
        let s: Vec<f64> = (0..n).map(|i| xn[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| gn[i] - g[i]).collect();
        let sy = dot(&s, &y);
        if sy > 1e-10 * dot(&y, &y).max(1e-300) {
            if s_hist.len() == opts.memory {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            rho.push(1.0 / sy);
            s_hist.push(s);
            y_hist.push(y);
        }
        let rel = (fx - fnew) / fx.abs().max(fnew.abs()).max(1.0);
        x.copy_from_slice(&xn);
        g.copy_from_slice(&gn);
        fx = fnew;
        if rel < opts.ftol && iter > 0 {
            break;
        }
    }
    Minimum { x, f: fx, evals }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock_unconstrained() {
        let f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let m = minimize(
            f,
            &[-1.2, 1.0],
            &[-5.0, -5.0],
            &[5.0, 5.0],
            Options {
                max_iter: 200,
                ..Default::default()
            },
        );
        assert!(
            (m.x[0] - 1.0).abs() < 1e-4 && (m.x[1] - 1.0).abs() < 1e-4,
            "{m:?}"
        );
    }

    #[test]
    fn bounds_are_respected_and_active() {
        // Minimum of (x−3)² + (y+2)² over [0,1]²: (1, 0).
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 3.0);
            g[1] = 2.0 * (x[1] + 2.0);
            (x[0] - 3.0).powi(2) + (x[1] + 2.0).powi(2)
        };
        let m = minimize(f, &[0.5, 0.5], &[0.0, 0.0], &[1.0, 1.0], Options::default());
        assert_eq!(m.x, vec![1.0, 0.0]);
    }
}
