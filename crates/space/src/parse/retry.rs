//! The `retry` key (a hyperdial addition): `retry: {max: 2, on: [crashed, failed]}`.
//!
//! `max` is an integer from 0 to [`Retry::MAX_RETRIES`] (default 1), `on` a list of the final
//! states `crashed`, `failed` and `cancelled` (default `[crashed]`; a single name may be written
//! without the brackets), `interrupted` an integer from 1 to [`Retry::MAX_RETRIES`] (default
//! [`Retry::INTERRUPTED_DEFAULT`]). Every mistake is reported at its key, like the rest of the
//! file.

use super::{describe, did_you_mean, Validator};
use crate::model::{Retry, RetryOn};
use crate::yaml::{Node, NodeValue};

const KEYS: &[&str] = &["max", "on", "interrupted"];

impl Validator {
    /// Validate `retry`; `None` after reporting an error.
    pub(super) fn retry(&mut self, node: &Node) -> Option<Retry> {
        let fields = self.expect_map("retry", node, "`retry: {max: 2, on: [crashed, failed]}`")?;
        for (key, value) in fields.entries {
            if !KEYS.contains(&key.name.as_str()) {
                self.unknown_key("retry", key, value, KEYS, "in `retry`");
            }
        }
        let defaults = Retry::default();
        let max = match fields.get("max") {
            None => Some(defaults.max),
            Some(n) => self
                .integer("retry.max", n)
                .and_then(|i| match u32::try_from(i) {
                    Ok(m) if m <= Retry::MAX_RETRIES => Some(m),
                    _ => {
                        self.error(
                            "retry.max",
                            Some(n.location),
                            format!("must be between 0 and {}, found {i}", Retry::MAX_RETRIES),
                            "it is the number of retries per configuration; 0 turns retries off",
                        );
                        None
                    }
                }),
        };
        let on = match fields.get("on") {
            None => Some(defaults.on),
            Some(n) => self.retry_states(n),
        };
        let interrupted = match fields.get("interrupted") {
            None => Some(defaults.interrupted),
            Some(n) => self
                .integer("retry.interrupted", n)
                .and_then(|i| match u32::try_from(i) {
                    Ok(m) if (1..=Retry::MAX_RETRIES).contains(&m) => Some(m),
                    _ => {
                        self.error(
                            "retry.interrupted",
                            Some(n.location),
                            format!("must be between 1 and {}, found {i}", Retry::MAX_RETRIES),
                            "it is how many interruptions in a row end a run `failed` instead of queuing it again",
                        );
                        None
                    }
                }),
        };
        Some(Retry {
            max: max?,
            on: on?,
            interrupted: interrupted?,
        })
    }

    fn retry_states(&mut self, node: &Node) -> Option<Vec<RetryOn>> {
        let items: Vec<&Node> = match &node.value {
            NodeValue::Seq(items) => items.iter().collect(),
            NodeValue::Str(_) => vec![node],
            _ => {
                self.error(
                    "retry.on",
                    Some(node.location),
                    format!("expected a list of run states, found {}", describe(node)),
                    "e.g. `on: [crashed, failed]`",
                );
                return None;
            }
        };
        if items.is_empty() {
            self.error(
                "retry.on",
                Some(node.location),
                "the list of states to retry is empty",
                "name at least one of: crashed, failed, cancelled (or set `max: 0` to turn retries off)",
            );
            return None;
        }
        let mut states = Vec::new();
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("retry.on[{i}]");
            let Some(name) = item.as_str() else {
                self.error(
                    &path,
                    Some(item.location),
                    format!("expected a run state, found {}", describe(item)),
                    format!("use one of: {}", RetryOn::NAMES.join(", ")),
                );
                ok = false;
                continue;
            };
            match RetryOn::from_name(name) {
                Some(state) if states.contains(&state) => {
                    self.error(
                        &path,
                        Some(item.location),
                        format!("`{name}` is listed twice"),
                        "remove the second one",
                    );
                    ok = false;
                }
                Some(state) => states.push(state),
                None => {
                    let hint = match name {
                        "finished" | "stopped_early" => format!(
                            "a `{name}` run is a result, not a fault; retry one by hand with `hyperdial retry SWEEP RUN`"
                        ),
                        _ => match did_you_mean(name, RetryOn::NAMES) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("use one of: {}", RetryOn::NAMES.join(", ")),
                        },
                    };
                    self.error(
                        &path,
                        Some(item.location),
                        format!("`{name}` is not a state that can be retried"),
                        hint,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(states)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Retry, RetryOn};
    use crate::parse_str;

    const HEAD: &str = "method: random\nparameters:\n  a: {values: [1, 2]}\n";

    fn retry(text: &str) -> Retry {
        match parse_str(&format!("{HEAD}{text}"), "sweep.yaml") {
            Ok(v) => v.config.retry,
            Err(e) => panic!("expected a valid config, got:\n{}", e.render()),
        }
    }

    /// The errors as (path, line, message, hint).
    fn errors(text: &str) -> Vec<(String, usize, String, String)> {
        match parse_str(&format!("{HEAD}{text}"), "sweep.yaml") {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e
                .errors()
                .map(|d| {
                    (
                        d.path.clone(),
                        d.location.map_or(0, |l| l.line),
                        d.message.clone(),
                        d.hint.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn default_retries_crashed_runs_once() {
        let r = retry("");
        assert_eq!(r, Retry::default());
        assert_eq!((r.max, r.on.as_slice()), (1, &[RetryOn::Crashed][..]));
        assert!(r.applies_to("crashed"));
        assert!(!r.applies_to("failed"));
        assert!(!r.applies_to("finished"));
    }

    #[test]
    fn full_and_partial_forms() {
        let r = retry("retry: {max: 2, on: [crashed, failed]}\n");
        assert_eq!(r.max, 2);
        assert_eq!(r.on, [RetryOn::Crashed, RetryOn::Failed]);
        let r = retry("retry:\n  on: failed\n");
        assert_eq!((r.max, r.on.as_slice()), (1, &[RetryOn::Failed][..]));
        let r = retry("retry: {max: 0}\n");
        assert!(!r.applies_to("crashed"));
        let r = retry("retry: {on: [cancelled]}\n");
        assert!(r.applies_to("cancelled"));
    }

    #[test]
    fn the_default_does_not_change_the_serialized_config() {
        let plain = parse_str(HEAD, "s.yaml").unwrap().config;
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("retry").is_none(), "{json}");
        let custom = parse_str(&format!("{HEAD}retry: {{max: 3}}\n"), "s.yaml")
            .unwrap()
            .config;
        let json = serde_json::to_value(&custom).unwrap();
        assert_eq!(json["retry"]["max"], 3);
        assert_eq!(json["retry"]["on"][0], "crashed");
    }

    #[test]
    fn mistakes_are_reported_at_their_key() {
        let e = errors("retry: {max: -1}\n");
        assert_eq!(e[0].0, "retry.max");
        assert_eq!(e[0].1, 4);
        assert!(e[0].2.contains("between 0 and 100, found -1"), "{e:?}");
        let e = errors("retry: {max: 1.5}\n");
        assert_eq!(e[0].0, "retry.max");
        let e = errors("retry: {max: 2, on: [crashd]}\n");
        assert_eq!(e[0].0, "retry.on[0]");
        assert!(e[0].2.contains("`crashd` is not a state"), "{e:?}");
        assert!(e[0].3.contains("did you mean `crashed`?"), "{e:?}");
        let e = errors("retry:\n  on: [failed, finished]\n");
        assert_eq!((e[0].0.as_str(), e[0].1), ("retry.on[1]", 5));
        assert!(e[0].3.contains("hyperdial retry SWEEP RUN"), "{e:?}");
        let e = errors("retry: {on: [failed, failed]}\n");
        assert!(e[0].2.contains("listed twice"), "{e:?}");
        let e = errors("retry: {on: []}\n");
        assert!(e[0].2.contains("empty"), "{e:?}");
        let e = errors("retry: {maxx: 2}\n");
        assert_eq!(e[0].0, "retry.maxx");
        assert!(e[0].3.contains("did you mean `max`?"), "{e:?}");
        let e = errors("retry: 3\n");
        assert_eq!(e[0].0, "retry");
        assert!(e[0].2.contains("expected a mapping"), "{e:?}");
        let e = errors("retry: {on: {crashed: 1}}\n");
        assert_eq!(e[0].0, "retry.on");
    }

    #[test]
    fn the_interruption_cap_defaults_to_three_and_is_checked() {
        assert_eq!(retry("").interrupted, Retry::INTERRUPTED_DEFAULT);
        assert_eq!(Retry::INTERRUPTED_DEFAULT, 3);
        let r = retry("retry: {interrupted: 10}\n");
        assert_eq!((r.max, r.interrupted), (1, 10));
        // The default cap is left out of the serialized config, another is kept.
        let json = |text: &str| {
            let config = parse_str(&format!("{HEAD}{text}"), "s.yaml")
                .unwrap()
                .config;
            serde_json::to_value(&config).unwrap()
        };
        assert!(json("retry: {max: 2}\n")["retry"]
            .get("interrupted")
            .is_none());
        assert!(json("retry: {interrupted: 3}\n").get("retry").is_none());
        assert_eq!(json("retry: {interrupted: 7}\n")["retry"]["interrupted"], 7);
        for bad in ["0", "101", "-2"] {
            let e = errors(&format!("retry: {{interrupted: {bad}}}\n"));
            assert_eq!(e[0].0, "retry.interrupted", "{e:?}");
            assert!(
                e[0].2.contains(&format!("between 1 and 100, found {bad}")),
                "{e:?}"
            );
        }
    }
}
