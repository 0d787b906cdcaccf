//! The `budget` key (a hyperdial addition; see [`crate::budget`]):
//! `budget: {wall_time: 2h, run_hours: 10, stagnation: {runs: 20, fraction: 0.5, min_delta: 0.001}}`.
//!
//! `wall_time` is seconds, or a string with a unit (`90s`, `30m`, `2h`, `1d`); `run_hours` a
//! positive number of hours; `stagnation` needs `runs` (an integer ≥ 1) or `fraction`
//! (between 0 and 1, exclusive) or both, and `min_delta` (a number ≥ 0, default 0, or the word
//! `noise`: the measured seed noise). At least one limit
//! must be given, and `stagnation` needs the sweep's `metric` (checked with the other
//! cross-field rules).

use super::{describe, Validator};
use crate::budget::{Budget, MinDelta, Stagnation};
use crate::yaml::{Node, NodeValue};

const KEYS: &[&str] = &["wall_time", "run_hours", "stagnation"];
const STAGNATION_KEYS: &[&str] = &["runs", "fraction", "min_delta"];

impl Validator {
    /// Validate `budget`; `None` after reporting an error.
    pub(super) fn budget(&mut self, node: &Node) -> Option<Budget> {
        let fields = self.expect_map(
            "budget",
            node,
            "`budget: {wall_time: 2h, run_hours: 10, stagnation: {runs: 20}}`",
        )?;
        let mut misspelt = Vec::new();
        for (key, value) in fields.entries {
            if !KEYS.contains(&key.name.as_str()) {
                misspelt.extend(self.unknown_key("budget", key, value, KEYS, "in `budget`"));
            }
        }
        let mut ok = true;
        let wall_time_s = match fields.get("wall_time") {
            None => None,
            Some(n) => {
                let v = self.duration("budget.wall_time", n);
                ok &= v.is_some();
                v
            }
        };
        let run_hours = match fields.get("run_hours") {
            None => None,
            Some(n) => {
                let v = self.number("budget.run_hours", n).filter(|h| *h > 0.0);
                if v.is_none() && n.as_f64().is_some() {
                    self.error(
                        "budget.run_hours",
                        Some(n.location),
                        format!("must be a positive number of hours, found {}", describe(n)),
                        "",
                    );
                }
                ok &= v.is_some();
                v
            }
        };
        let stagnation = match fields.get("stagnation") {
            None => None,
            Some(n) => {
                let v = self.stagnation(n);
                ok &= v.is_some();
                v
            }
        };
        if !ok {
            return None;
        }
        if wall_time_s.is_none() && run_hours.is_none() && stagnation.is_none() {
            if !misspelt.is_empty() {
                // A misspelt limit (`wall_tme`) is the error.
                return None;
            }
            self.error(
                "budget",
                Some(node.location),
                "the budget sets no limit",
                "give `wall_time`, `run_hours` or `stagnation`",
            );
            return None;
        }
        Some(Budget {
            wall_time_s,
            run_hours,
            stagnation,
        })
    }

    /// A positive duration: seconds, or a number with a unit (`90s`, `30m`, `2h`, `1d`);
    /// `None` after reporting an error at `path`.
    pub(super) fn duration(&mut self, path: &str, node: &Node) -> Option<f64> {
        let seconds = match &node.value {
            NodeValue::Int(_) | NodeValue::Float(_) => node.as_f64(),
            NodeValue::Str(s) => {
                let s = s.trim();
                let (digits, unit) = s.split_at(s.len().saturating_sub(1));
                let factor = match unit {
                    "s" => Some(1.0),
                    "m" => Some(60.0),
                    "h" => Some(3600.0),
                    "d" => Some(86400.0),
                    _ => None,
                };
                factor.and_then(|f| digits.trim().parse::<f64>().ok().map(|x| x * f))
            }
            _ => None,
        };
        match seconds {
            Some(x) if x.is_finite() && x > 0.0 => Some(x),
            _ => {
                self.error(
                    path,
                    Some(node.location),
                    format!("expected a positive duration, found {}", describe(node)),
                    "seconds, or a number with a unit: `90s`, `30m`, `2h`, `1d`",
                );
                None
            }
        }
    }

    fn stagnation(&mut self, node: &Node) -> Option<Stagnation> {
        let fields = self.expect_map(
            "budget.stagnation",
            node,
            "`stagnation: {runs: 20, min_delta: 0.001}`",
        )?;
        let mut misspelt = Vec::new();
        for (key, value) in fields.entries {
            if !STAGNATION_KEYS.contains(&key.name.as_str()) {
                misspelt.extend(self.unknown_key(
                    "budget.stagnation",
                    key,
                    value,
                    STAGNATION_KEYS,
                    "in `stagnation`",
                ));
            }
        }
        let mut ok = true;
        let runs = match fields.get("runs") {
            None => None,
            Some(n) => {
                let v = self.positive_integer("budget.stagnation.runs", n);
                ok &= v.is_some();
                v
            }
        };
        let fraction = match fields.get("fraction") {
            None => None,
            Some(n) => match self.number("budget.stagnation.fraction", n) {
                Some(f) if f > 0.0 && f < 1.0 => Some(f),
                Some(f) => {
                    self.error(
                        "budget.stagnation.fraction",
                        Some(n.location),
                        format!("must be between 0 and 1 (exclusive), found {f}"),
                        "e.g. `fraction: 0.5`: no improvement in the last half of the elapsed time",
                    );
                    ok = false;
                    None
                }
                None => {
                    ok = false;
                    None
                }
            },
        };
        let min_delta = match fields.get("min_delta") {
            None => MinDelta::default(),
            Some(n) if matches!(&n.value, NodeValue::Str(w) if w.trim() == "noise") => {
                MinDelta::SeedNoise
            }
            Some(n) => match self.number("budget.stagnation.min_delta", n) {
                Some(d) if d >= 0.0 => MinDelta::Value(d),
                Some(d) => {
                    self.error(
                        "budget.stagnation.min_delta",
                        Some(n.location),
                        format!("must be at least 0, found {d}"),
                        "it is the smallest change of the metric that counts as an improvement \
                         (a number ≥ 0, or `noise`: the measured seed noise)",
                    );
                    ok = false;
                    MinDelta::default()
                }
                None => {
                    ok = false;
                    MinDelta::default()
                }
            },
        };
        if !ok {
            return None;
        }
        if runs.is_none() && fraction.is_none() {
            if misspelt.iter().any(|m| m == "runs" || m == "fraction") {
                // The misspelt key is the error.
                return None;
            }
            self.error(
                "budget.stagnation",
                Some(node.location),
                "`stagnation` needs `runs`, `fraction` or both",
                "e.g. `stagnation: {runs: 20}`",
            );
            return None;
        }
        Some(Stagnation {
            runs,
            fraction,
            min_delta,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::budget::MinDelta;
    use crate::parse_str;

    fn budget(text: &str) -> Result<crate::budget::Budget, Vec<String>> {
        let file = format!(
            "method: random\nprogram: t.py\nmetric: {{name: loss}}\nparameters: {{x: {{min: 0.0, max: 1.0}}}}\nbudget: {text}\n"
        );
        parse_str(&file, "s.yaml")
            .map(|v| v.config.budget.expect("a budget"))
            .map_err(|e| {
                e.errors()
                    .map(|d| format!("{}: {}", d.path, d.message))
                    .collect()
            })
    }

    #[test]
    fn limits_are_read_and_mistakes_reported_at_their_keys() {
        let b = budget("{wall_time: 2h, run_hours: 1.5, stagnation: {runs: 20, fraction: 0.5, min_delta: 0.01}}").unwrap();
        assert_eq!(b.wall_time_s, Some(7200.0));
        assert_eq!(b.run_hours, Some(1.5));
        let s = b.stagnation.unwrap();
        assert_eq!(
            (s.runs, s.fraction, s.min_delta),
            (Some(20), Some(0.5), MinDelta::Value(0.01))
        );
        let s = budget("{stagnation: {runs: 5, min_delta: noise}}")
            .unwrap()
            .stagnation
            .unwrap();
        assert_eq!(s.min_delta, MinDelta::SeedNoise);
        assert!(budget("{stagnation: {runs: 5, min_delta: lots}}").is_err());
        assert_eq!(budget("{wall_time: 90}").unwrap().wall_time_s, Some(90.0));
        assert_eq!(
            budget("{wall_time: 30m}").unwrap().wall_time_s,
            Some(1800.0)
        );

        let errors =
            budget("{wall_time: soon, run_hours: -1, stagnation: {fraction: 2}, walltime: 3}")
                .unwrap_err();
        let paths: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "budget.wall_time",
                "budget.run_hours",
                "budget.stagnation.fraction",
                "budget.walltime"
            ],
            "{errors:?}"
        );
        assert!(budget("{}").unwrap_err()[0].contains("no limit"));
        assert!(budget("{stagnation: {min_delta: 0.1}}").unwrap_err()[0].contains("needs `runs`"));
    }

    #[test]
    fn stagnation_needs_a_metric() {
        let e = parse_str(
            "method: random\nprogram: t.py\nparameters: {x: {min: 0.0, max: 1.0}}\nbudget: {stagnation: {runs: 3}}\n",
            "s.yaml",
        )
        .unwrap_err();
        assert!(
            e.errors().any(|d| d.path == "budget.stagnation"),
            "{}",
            e.render()
        );
    }
}
