//! How the commands print numbers: every metric value and parameter value in a table or a
//! line (`runs`, `sweeps`, `best`, `noise`, `budget`, the progress of `tune` and `agent`)
//! goes through [`general`], so a value keeps its significant digits whatever its size.
//!
//! The rule is that of C's `%g`: round to `digits` significant digits; write the result in
//! plain notation when its decimal exponent `e` is in `-5 < e < digits` (`0.25`, `0.000123`,
//! `123456`), else in scientific notation (`7e-10`, `1.23457e6`); drop trailing zeros either
//! way. So `7e-10` prints `7e-10`, not `0.000000`, and `1234567.0` prints `1.23457e6`, not a
//! long run of digits. The exponent is written as Rust parses it back (`e-10`, `e6`).
//! Non-finite values print as `NaN`, `inf` and `-inf`; zero (of either sign) as `0`.
//!
//! Machine-readable output (`--json`, `--format csv`/`json`, `export`) keeps every digit
//! instead; YAML written to be pasted into a sweep file (`lr-find`) has its own rule.

/// Significant digits of metric values and of parameter values in tables.
pub const DIGITS: usize = 6;

/// Significant digits of parameter values shortened for one line (`lr=0.01235 hidden=16`).
pub const SHORT_DIGITS: usize = 4;

/// `x` with `digits` significant digits (at least 1), as the module docs describe.
pub fn general(x: f64, digits: usize) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    // Scientific notation rounds to `digits` significant digits first, so the exponent is the
    // rounded value's (9.9999996 with 6 digits is 1.00000e1, exponent 1).
    let scientific = format!("{:.*e}", digits - 1, x);
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("Rust's scientific notation has an exponent");
    let exponent: i32 = exponent.parse().expect("a decimal exponent");
    if exponent < -4 || exponent >= digits as i32 {
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    let decimals = (digits as i32 - 1 - exponent).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_string()
}

/// [`general`] with [`DIGITS`]: a metric value, or a parameter value in a table.
pub fn metric(x: f64) -> String {
    general(x, DIGITS)
}

/// `text` without trailing zeros after a decimal point (and without the point when nothing
/// follows it).
fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_values_keep_their_significant_digits() {
        assert_eq!(metric(7e-10), "7e-10");
        assert_eq!(metric(1.234_567_89e-7), "1.23457e-7");
        assert_eq!(metric(-3.5e-5), "-3.5e-5");
        assert_eq!(metric(1e-4), "0.0001");
        assert_eq!(metric(0.000_123_456_78), "0.000123457");
        assert_eq!(metric(0.25), "0.25");
        assert_eq!(metric(0.123_456_789), "0.123457");
        assert_eq!(metric(1.0), "1");
        assert_eq!(metric(123_456.0), "123456");
        assert_eq!(metric(1_234_567.0), "1.23457e6");
        assert_eq!(metric(-2.5e300), "-2.5e300");
    }

    #[test]
    fn rounding_that_carries_moves_to_the_next_exponent() {
        assert_eq!(metric(9.999_999_6), "10");
        assert_eq!(metric(999_999.6), "1e6");
        assert_eq!(metric(9.999_999_6e-5), "0.0001");
        assert_eq!(general(0.099_996, 4), "0.1");
    }

    #[test]
    fn zero_and_non_finite_values() {
        assert_eq!(metric(0.0), "0");
        assert_eq!(metric(-0.0), "0");
        assert_eq!(metric(f64::NAN), "NaN");
        assert_eq!(metric(f64::INFINITY), "inf");
        assert_eq!(metric(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn fewer_digits_for_one_line() {
        assert_eq!(general(0.012_345_6, SHORT_DIGITS), "0.01235");
        assert_eq!(general(123.456, SHORT_DIGITS), "123.5");
        assert_eq!(general(12_346.0, SHORT_DIGITS), "1.235e4");
        assert_eq!(general(7e-10, SHORT_DIGITS), "7e-10");
    }

    #[test]
    fn what_is_printed_reads_back_within_its_digits() {
        for x in [
            7e-10,
            0.000_123_456_78,
            0.123_456_789,
            123_456.7,
            1.5e22,
            -42.125,
        ] {
            let back: f64 = metric(x).parse().unwrap();
            assert!(
                (back - x).abs() <= x.abs() * 5e-6,
                "{x} printed as {}",
                metric(x)
            );
        }
    }
}
