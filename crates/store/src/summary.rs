//! A run's summary: each metric's value at the highest step the run holds.
//!
//! The summary is what a trial reports (W&B's `run.summary` without an explicit one), so it
//! must be the newest value, and "newest" is by step, not by arrival: points uploaded late (a
//! spill file replayed after the run logged on) fill in history without replacing the value
//! of a higher step. Both backends apply this one rule ([`take_newest`]) to each metric a
//! batch names.

use serde_json::{Map, Value};

/// Make `value`, the batch's value for `name` at `batch_step` (its highest step for that
/// name), the summary's value for `name`, unless the run's series already held a higher step
/// (`last_step`: the series' highest step before the batch, -1 for a new series) and the
/// summary has a value for it. A summary without the name always takes the batch's value.
/// `None` (a NaN or missing value) is stored as JSON `null`.
pub(crate) fn take_newest(
    summary: &mut Map<String, Value>,
    name: &str,
    batch_step: i64,
    value: Option<f64>,
    last_step: i64,
) {
    if batch_step >= last_step || !summary.contains_key(name) {
        summary.insert(
            name.to_string(),
            value.map(Value::from).unwrap_or(Value::Null),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn summary(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_batch_at_or_past_the_series_end_sets_the_value() {
        let mut s = summary(json!({"loss": 0.5}));
        take_newest(&mut s, "loss", 10, Some(0.25), 10);
        assert_eq!(s["loss"], json!(0.25));
        take_newest(&mut s, "loss", 11, None, 10);
        assert_eq!(s["loss"], Value::Null);
    }

    #[test]
    fn a_late_batch_below_the_series_end_keeps_the_newer_value() {
        let mut s = summary(json!({"loss": 0.5}));
        take_newest(&mut s, "loss", 3, Some(9.0), 10);
        assert_eq!(s["loss"], json!(0.5));
    }

    #[test]
    fn a_summary_without_the_name_takes_even_a_late_value() {
        let mut s = summary(json!({"acc": 0.9}));
        take_newest(&mut s, "loss", 3, Some(9.0), 10);
        assert_eq!(s["loss"], json!(9.0));
        assert_eq!(s["acc"], json!(0.9));
    }
}
