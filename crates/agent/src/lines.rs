//! The metric-line format: how a training script in any language reports metrics by printing.
//!
//! A line of standard output that starts with `hyperdial:` is a metric report. The rest of the
//! line is either a JSON object or space-separated `name=value` pairs:
//!
//! ```text
//! hyperdial: {"epoch": 3, "val_loss": 0.41, "val_acc": 0.87}
//! hyperdial: epoch=3 val_loss=0.41 val_acc=0.87
//! hyperdial: _step=10 loss=nan
//! ```
//!
//! Rules:
//!
//! - The prefix must start the line (no leading spaces); whitespace after it is ignored, and so
//!   is a trailing `\r`.
//! - Values are numbers. Integers stay integers (`epoch=3` is `3`, not `3.0`).
//! - Non-finite values are written `nan`, `inf`, `-inf` (any case, also `infinity`) or `null`
//!   (`None` in the pair form); in the JSON form Python's `json.dumps` spellings `NaN`,
//!   `Infinity` and `-Infinity` are accepted too. **All of them become `null`**, because the API
//!   carries values as JSON numbers or `null` and JSON has no infinities. The server treats a
//!   `null` sweep metric like NaN: a run whose sweep metric is `null` ends `failed`. So a
//!   diverged run (loss `inf`) is reported as failed, which is what a search wants.
//! - The key `_step` sets the step: a non-negative integer (`3` or `3.0`). It is removed from
//!   the values. Without it the line is the run's next step.
//! - Anything else (a string, a boolean, a list, `tensor(0.5)`) makes the whole line invalid:
//!   the parser returns `Some(Err(reason))` and the agent writes a warning into the run's
//!   captured output instead of guessing. A line with no values at all is invalid too.
//! - Metric names may be anything in the JSON form (spaces, slashes); in the pair form a name is
//!   everything before the first `=` of a space-free token.
//! - A name given twice keeps its last value.
//!
//! The line itself always stays in the captured output as well.

use serde_json::{Number, Value};

use crate::client::MetricPoint;

/// What a metric line starts with.
pub const PREFIX: &str = "hyperdial:";

/// Parse one line of a training script's standard output.
///
/// - `None`: not a metric line (no `hyperdial:` prefix at its start).
/// - `Some(Ok(point))`: a metric report; `point.time_ms` is `None` (the caller stamps it).
/// - `Some(Err(reason))`: a line with the prefix that is not a valid report; `reason` says why,
///   e.g. ``lr=abc: `abc` is not a number``.
pub fn parse_metric_line(line: &str) -> Option<Result<MetricPoint, String>> {
    let line = line.trim_end_matches(['\n', '\r']);
    let rest = line.strip_prefix(PREFIX)?;
    Some(parse_report(rest.trim()))
}

fn parse_report(body: &str) -> Result<MetricPoint, String> {
    if body.is_empty() {
        return Err(
            "nothing after `hyperdial:`; write a JSON object or name=value pairs".to_string(),
        );
    }
    let pairs = if body.starts_with('{') {
        parse_json_object(body)?
    } else {
        parse_pairs(body)?
    };
    let mut point: MetricPoint = MetricPoint::default();
    for (name, value) in pairs {
        if name == "_step" {
            point.step = Some(step_of(&value)?);
        } else {
            point.values.insert(name, value);
        }
    }
    if point.values.is_empty() {
        return Err("no metric values in the line".to_string());
    }
    Ok(point)
}

/// The `_step` value as a non-negative integer.
fn step_of(value: &Value) -> Result<i64, String> {
    let bad = || format!("`_step` must be a non-negative integer, not {value}");
    let Value::Number(n) = value else {
        return Err(bad());
    };
    if let Some(i) = n.as_i64() {
        return if i >= 0 { Ok(i) } else { Err(bad()) };
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 9.007_199_254_740_992e15 => Ok(f as i64),
        _ => Err(bad()),
    }
}

/// The JSON form: an object of numbers and nulls.
fn parse_json_object(body: &str) -> Result<Vec<(String, Value)>, String> {
    let cleaned = non_finite_to_null(body);
    let value: Value =
        serde_json::from_str(&cleaned).map_err(|err| format!("invalid JSON: {err}"))?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object".to_string());
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        if name.is_empty() {
            return Err("a metric name is empty".to_string());
        }
        match &value {
            Value::Number(_) | Value::Null => {}
            // `_step` is checked by `step_of`, with its own message.
            _ if name == "_step" => {}
            other => {
                return Err(format!(
                    "`{name}`: expected a number, got {}",
                    describe(other)
                ))
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::Null => "null".to_string(),
    }
}

/// Replace the bare non-finite spellings (`NaN`, `Infinity`, `-Infinity`, `nan`, `inf`, ...)
/// outside JSON strings by `null`, so that `serde_json` accepts what Python's `json.dumps`
/// writes for non-finite floats.
fn non_finite_to_null(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    let mut in_string = false;
    let mut escaped = false;
    while let Some((i, c)) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '-' || c == '+' {
            // A bare token: a keyword, a signed number, or a non-finite spelling.
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || matches!(d, '.' | '+' | '-' | '_') {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let token = &body[i..end];
            if is_non_finite(token) {
                out.push_str("null");
            } else {
                out.push_str(token);
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn is_non_finite(token: &str) -> bool {
    let t = token.to_ascii_lowercase();
    let t = t
        .strip_prefix('-')
        .or_else(|| t.strip_prefix('+'))
        .unwrap_or(&t);
    matches!(t, "nan" | "inf" | "infinity")
}

/// The pair form: `name=value name=value`.
fn parse_pairs(body: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for token in body.split_ascii_whitespace() {
        let Some((name, raw)) = token.split_once('=') else {
            return Err(format!(
                "`{token}` is not name=value (write `hyperdial: loss=0.5 acc=0.9`, or a JSON object)"
            ));
        };
        if name.is_empty() {
            return Err(format!("`{token}` has no metric name before `=`"));
        }
        let value = parse_number(raw).ok_or_else(|| {
            format!("`{token}`: `{raw}` is not a number (use a plain number, nan, inf or null)")
        })?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// A number in the pair form: integer, float, or a non-finite spelling (→ `null`).
fn parse_number(raw: &str) -> Option<Value> {
    if is_non_finite(raw) || raw.eq_ignore_ascii_case("null") || raw == "None" {
        return Some(Value::Null);
    }
    if let Ok(i) = raw.parse::<i64>() {
        return Some(Value::from(i));
    }
    // Rust's float syntax is a superset of the usual decimal forms (`1e-5`, `.5`, `5.`); the
    // words it also knows (`inf`, `nan`, `infinity`) were handled above.
    let f = raw.parse::<f64>().ok()?;
    Some(Number::from_f64(f).map_or(Value::Null, Value::Number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(line: &str) -> MetricPoint {
        match parse_metric_line(line) {
            Some(Ok(p)) => p,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse_metric_line(line) {
            Some(Err(e)) => e,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn values(p: &MetricPoint) -> Value {
        Value::Object(p.values.clone())
    }

    #[test]
    fn lines_without_the_prefix_are_not_metrics() {
        for line in [
            "",
            "epoch 3 loss=0.4",
            " hyperdial: loss=1",
            "Hyperdial: loss=1",
            "hyperdial loss=1",
            "xhyperdial: loss=1",
        ] {
            assert_eq!(parse_metric_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn json_form() {
        let p = ok(r#"hyperdial: {"epoch": 3, "val_loss": 0.41, "val_acc": 0.87}"#);
        assert_eq!(p.step, None);
        assert_eq!(p.time_ms, None);
        assert_eq!(
            values(&p),
            json!({"epoch": 3, "val_loss": 0.41, "val_acc": 0.87})
        );
        // Order of keys is kept.
        let keys: Vec<_> = p.values.keys().cloned().collect();
        assert_eq!(keys, ["epoch", "val_loss", "val_acc"]);
        // No space after the prefix, trailing CR/LF, names with spaces and slashes.
        let p = ok("hyperdial:{\"val/loss\": 1e-3, \"top 1\": -2}\r\n");
        assert_eq!(values(&p), json!({"val/loss": 0.001, "top 1": -2}));
    }

    #[test]
    fn pair_form() {
        let p = ok("hyperdial: epoch=3 val_loss=0.41 val_acc=0.87");
        assert_eq!(
            values(&p),
            json!({"epoch": 3, "val_loss": 0.41, "val_acc": 0.87})
        );
        assert!(p.values["epoch"].is_i64());
        let p = ok("hyperdial:   lr=1e-05\tx=-.5  y=5. z=+2 big=18446744073709551615  ");
        assert_eq!(
            values(&p),
            json!({"lr": 1e-5, "x": -0.5, "y": 5.0, "z": 2, "big": 18446744073709551615.0_f64})
        );
        // A repeated name keeps its last value.
        assert_eq!(values(&ok("hyperdial: a=1 a=2")), json!({"a": 2}));
        // `=` inside the value part is not a number.
        assert!(err("hyperdial: a=1=2").contains("not a number"));
    }

    #[test]
    fn step_key() {
        let p = ok("hyperdial: _step=7 loss=0.5");
        assert_eq!(p.step, Some(7));
        assert_eq!(values(&p), json!({"loss": 0.5}));
        let p = ok(r#"hyperdial: {"loss": 0.5, "_step": 12}"#);
        assert_eq!(p.step, Some(12));
        assert!(!p.values.contains_key("_step"));
        assert_eq!(ok("hyperdial: _step=3.0 a=1").step, Some(3));
        assert_eq!(ok(r#"hyperdial: {"_step": 0, "a": 1}"#).step, Some(0));
        for bad in [
            "hyperdial: _step=-1 a=1",
            "hyperdial: _step=1.5 a=1",
            "hyperdial: _step=nan a=1",
            r#"hyperdial: {"_step": "3", "a": 1}"#,
            r#"hyperdial: {"_step": null, "a": 1}"#,
        ] {
            assert!(
                err(bad).contains("`_step` must be a non-negative integer"),
                "{bad}"
            );
        }
        // Only a step, no values.
        assert_eq!(err("hyperdial: _step=3"), "no metric values in the line");
    }

    #[test]
    fn non_finite_values_become_null() {
        let p = ok("hyperdial: a=nan b=NaN c=inf d=-inf e=Infinity f=null g=None h=1e999");
        for (k, v) in &p.values {
            assert_eq!(v, &Value::Null, "{k}");
        }
        assert_eq!(p.values.len(), 8);
        // Python's json.dumps spellings, and strings that merely contain them stay strings.
        let p = ok(r#"hyperdial: {"a": NaN, "b": Infinity, "c": -Infinity, "d": null, "e": 1}"#);
        assert_eq!(
            values(&p),
            json!({"a": null, "b": null, "c": null, "d": null, "e": 1})
        );
        let e = err(r#"hyperdial: {"NaN": "Infinity"}"#);
        assert!(e.contains("the string \"Infinity\""), "{e}");
        // Keys that look like numbers or keywords are untouched.
        let p = ok(r#"hyperdial: {"inf": 1, "x\"nan": -2.5e-3}"#);
        assert_eq!(values(&p), json!({"inf": 1, "x\"nan": -0.0025}));
    }

    #[test]
    fn junk_is_reported() {
        assert!(err("hyperdial:").starts_with("nothing after"));
        assert!(err("hyperdial:    ").starts_with("nothing after"));
        assert!(err("hyperdial: loss").contains("is not name=value"));
        assert!(err("hyperdial: =3").contains("no metric name"));
        let e = err("hyperdial: loss=tensor(0.5000)");
        assert_eq!(
            e,
            "`loss=tensor(0.5000)`: `tensor(0.5000)` is not a number (use a plain number, nan, inf or null)"
        );
        assert!(err("hyperdial: ok=true").contains("not a number"));
        assert!(err("hyperdial: a=").contains("not a number"));
        assert!(err("hyperdial: {\"a\": 1").starts_with("invalid JSON"));
        assert!(err("hyperdial: {\"a\": true}").contains("the boolean true"));
        assert!(err("hyperdial: {\"a\": [1]}").contains("a list"));
        assert!(err("hyperdial: {\"a\": {\"b\": 1}}").contains("an object"));
        assert!(err("hyperdial: {\"\": 1}").contains("empty"));
        assert_eq!(err("hyperdial: {}"), "no metric values in the line");
        assert!(err("hyperdial: {\"a\": 1} trailing").starts_with("invalid JSON"));
        assert!(err("hyperdial: [1, 2]").contains("not name=value"));
    }

    #[test]
    fn non_finite_rewriting_keeps_other_tokens() {
        assert_eq!(
            non_finite_to_null(r#"{"a": -1.5e+3, "b": true, "c": -NaN, "d": "inf\\", "e": inf}"#),
            r#"{"a": -1.5e+3, "b": true, "c": null, "d": "inf\\", "e": null}"#
        );
        assert_eq!(non_finite_to_null("{\"é\": Infinity}"), "{\"é\": null}");
    }
}
