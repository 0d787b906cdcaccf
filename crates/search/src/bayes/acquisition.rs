//! Log expected improvement, computed stably (after Ament et al., 2023, "Unexpected
//! improvements to expected improvement").
//!
//! For minimization with incumbent `f*` and posterior `N(μ, σ²)`, with `z = (f* − μ)/σ`:
//!
//! ```text
//! EI = σ h(z),   h(z) = φ(z) + z Φ(z),   LogEI = ln σ + ln h(z)
//! ```
//!
//! `h(z)` underflows for `z ≲ −38` and loses all precision well before, which leaves the
//! acquisition flat (zero gradient) over most of the space once the model is confident.
//! `ln h` is instead computed in three regimes:
//!
//! - `z > −1`: directly, `ln(φ(z) + z Φ(z))`;
//! - `−35 < z ≤ −1`: with `t = −z`, `h = φ(t) (1 − t R(t))` where `R(t) = Φ(−t)/φ(t)` is
//!   Mills' ratio, `R(t) = √(π/2) erfcx(t/√2)`, so `ln h = ln φ(t) + ln1p(−t R(t))`;
//!   `erfcx(x) = e^{x²} erfc(x)` is evaluated as that product, accurate for `x < 25`;
//! - `z ≤ −35`: the asymptotic series `1 − t R(t) = t⁻² − 3 t⁻⁴ + 15 t⁻⁶ − 105 t⁻⁸ + …`.
//!
//! The derivative uses `h'(z) = Φ(z)`, so `d ln h/dz = Φ(z)/h(z)`, which in the two lower
//! regimes is `R(t) / (1 − t R(t))`.

use crate::tpe::norm_cdf;

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
const SQRT_PI_2: f64 = 1.253_314_137_315_500_3;

/// `(ln h(z), d ln h / dz)`.
pub fn log_h(z: f64) -> (f64, f64) {
    if z > -1.0 {
        let phi = (-0.5 * z * z - LN_SQRT_2PI).exp();
        let cdf = norm_cdf(z);
        let h = phi + z * cdf;
        (h.ln(), cdf / h)
    } else {
        let t = -z;
        let ln_phi = -0.5 * t * t - LN_SQRT_2PI;
        let (one_minus, r) = if t < 35.0 {
            let x = t * std::f64::consts::FRAC_1_SQRT_2;
            let r = SQRT_PI_2 * (x * x).exp() * libm::erfc(x);
            ((1.0 - t * r).max(f64::MIN_POSITIVE), r)
        } else {
            let t2 = 1.0 / (t * t);
            let s = t2 * (1.0 - 3.0 * t2 * (1.0 - 5.0 * t2 * (1.0 - 7.0 * t2)));
            // R(t) = (1 − s)/t.
            (s, (1.0 - s) / t)
        };
        (ln_phi + one_minus.ln(), r / one_minus)
    }
}

/// Log expected improvement below `best` of `N(mean, var)`, with its derivatives with
/// respect to the mean and the variance: `(LogEI, ∂/∂μ, ∂/∂σ²)`.
pub fn log_ei(mean: f64, var: f64, best: f64) -> (f64, f64, f64) {
    let sigma = var.max(1e-24).sqrt();
    let z = (best - mean) / sigma;
    let (lh, dlh) = log_h(z);
    let value = sigma.ln() + lh;
    // dz/dμ = −1/σ; dz/dσ = −z/σ; dσ/dσ² = 1/(2σ).
    let d_mean = -dlh / sigma;
    let d_sigma = 1.0 / sigma - dlh * z / sigma;
    (value, d_mean, d_sigma / (2.0 * sigma))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ei(mean: f64, var: f64, best: f64) -> f64 {
        let s = var.sqrt();
        let z = (best - mean) / s;
        let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        s * (phi + z * norm_cdf(z))
    }

    #[test]
    fn log_ei_equals_log_of_ei_where_ei_is_not_tiny() {
        for &(m, v, b) in &[
            (0.0, 1.0, 0.0),
            (0.5, 0.3, 0.0),
            (-1.0, 2.0, 0.0),
            (2.0, 0.5, 0.0),
            (3.0, 1.0, 0.2),
            (0.0, 1e-4, 0.01),
        ] {
            let (l, _, _) = log_ei(m, v, b);
            let direct = ei(m, v, b).ln();
            assert!(
                (l - direct).abs() < 1e-9 * direct.abs().max(1.0),
                "{m} {v} {b}: {l} vs {direct}"
            );
        }
    }

    #[test]
    fn log_ei_is_finite_and_monotone_far_in_the_tail() {
        let mut last = f64::INFINITY;
        for k in 1..200 {
            let m = k as f64 * 0.5;
            let (l, dm, _) = log_ei(m, 1.0, 0.0);
            assert!(l.is_finite() && dm.is_finite(), "{m}: {l}");
            assert!(l < last);
            assert!(dm < 0.0);
            last = l;
        }
        // Matches the asymptote −z²/2 − ln √(2π) − 2 ln|z| far out.
        let (l, _, _) = log_ei(1e4, 1.0, 0.0);
        let z: f64 = 1e4;
        assert!((l - (-0.5 * z * z - LN_SQRT_2PI - 2.0 * z.ln())).abs() < 1e-6);
        // Continuous across the regime switches.
        for z0 in [-1.0f64, -35.0] {
            let (a, _) = log_h(z0 + 1e-9);
            let (b, _) = log_h(z0 - 1e-9);
            assert!((a - b).abs() < 1e-6, "{z0}: {a} vs {b}");
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for &(m, v) in &[(0.3, 0.8), (4.0, 0.2), (30.0, 0.1), (-1.0, 1.5)] {
            let (_, dm, dv) = log_ei(m, v, 0.0);
            let h = 1e-6;
            let fm = (log_ei(m + h, v, 0.0).0 - log_ei(m - h, v, 0.0).0) / (2.0 * h);
            let fv = (log_ei(m, v + h, 0.0).0 - log_ei(m, v - h, 0.0).0) / (2.0 * h);
            assert!(
                (fm - dm).abs() < 1e-4 * (1.0 + dm.abs()),
                "{m} {v}: {fm} vs {dm}"
            );
            assert!(
                (fv - dv).abs() < 1e-4 * (1.0 + dv.abs()),
                "{m} {v}: {fv} vs {dv}"
            );
        }
    }
}
