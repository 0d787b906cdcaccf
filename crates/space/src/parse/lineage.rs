//! The `parent` and `prior_runs` keys (hyperdial additions; see [`crate::lineage`]).
//!
//! `parent` is one sweep id; `prior_runs` a list of them (a single id may be written without
//! the brackets). Ids must be non-empty strings and may not repeat.

use super::{describe, Validator};
use crate::lineage::SweepRef;
use crate::yaml::{Node, NodeValue};

impl Validator {
    /// Validate `parent`; `None` after reporting an error.
    pub(super) fn parent(&mut self, node: &Node) -> Option<SweepRef> {
        self.sweep_ref("parent", node)
    }

    /// Validate `prior_runs`; the ids that are well-formed, after reporting the others.
    pub(super) fn prior_runs(&mut self, node: &Node) -> Vec<SweepRef> {
        let items: Vec<&Node> = match &node.value {
            NodeValue::Seq(items) => items.iter().collect(),
            NodeValue::Str(_) => vec![node],
            _ => {
                self.error(
                    "prior_runs",
                    Some(node.location),
                    format!("expected a list of sweep ids, found {}", describe(node)),
                    "e.g. `prior_runs: [3f2a9c01d4]` (ids as `hyperdial sweeps` lists them)",
                );
                return Vec::new();
            }
        };
        let mut refs: Vec<SweepRef> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("prior_runs[{i}]");
            let Some(r) = self.sweep_ref(&path, item) else {
                continue;
            };
            if refs.iter().any(|seen| seen.id == r.id) {
                self.error(
                    &path,
                    Some(item.location),
                    format!("sweep `{}` is listed twice", r.id),
                    "remove the second one",
                );
                continue;
            }
            refs.push(r);
        }
        refs
    }

    fn sweep_ref(&mut self, path: &str, node: &Node) -> Option<SweepRef> {
        match &node.value {
            NodeValue::Str(s) if !s.trim().is_empty() => Some(SweepRef {
                id: s.trim().to_string(),
                location: node.location,
            }),
            NodeValue::Str(_) => {
                self.error(path, Some(node.location), "the sweep id is empty", "");
                None
            }
            _ => {
                self.error(
                    path,
                    Some(node.location),
                    format!("expected a sweep id, found {}", describe(node)),
                    "sweep ids are strings, as `hyperdial sweeps` lists them",
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_str;

    #[test]
    fn ids_are_read_with_their_lines_and_mistakes_reported_at_their_keys() {
        let ok = parse_str(
            "method: tpe\nmetric: {name: loss}\nparent: a1\nprior_runs:\n  - a1\n  - b2\nparameters: {x: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        assert_eq!(ok.parent.as_ref().unwrap().id, "a1");
        let ids: Vec<(&str, usize)> = ok
            .prior_runs
            .iter()
            .map(|r| (r.id.as_str(), r.location.line))
            .collect();
        assert_eq!(ids, [("a1", 5), ("b2", 6)]);
        let one = parse_str(
            "method: tpe\nmetric: {name: loss}\nprior_runs: a1\nparameters: {x: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        assert_eq!(one.prior_runs.len(), 1);

        let bad = parse_str(
            "method: tpe\nmetric: {name: loss}\nparent: 3\nprior_runs: [a1, a1, '', {x: 1}]\nparameters: {x: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap_err();
        let paths: Vec<&str> = bad.errors().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            ["parent", "prior_runs[1]", "prior_runs[2]", "prior_runs[3]"]
        );
        assert!(bad.diagnostics.iter().all(|d| d.location.is_some()));
    }

    #[test]
    fn files_without_them_keep_their_serialized_form() {
        let c = parse_str(
            "method: random\nparameters: {x: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("parent").is_none() && json.get("prior_runs").is_none());
        let c = parse_str(
            "method: random\nprior_runs: [a1]\nparameters: {x: {min: 0.0, max: 1.0}}\n",
            "s.yaml",
        )
        .unwrap()
        .config;
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["prior_runs"], serde_json::json!(["a1"]));
    }
}
