//! Validation of `metrics:` (multi-objective sweeps): each rule with its key path and line.

use super::*;

fn errors(text: &str) -> Vec<(String, usize, String)> {
    match parse_str(text, "sweep.yaml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e
            .errors()
            .map(|d| {
                (
                    d.path.clone(),
                    d.location.map_or(0, |l| l.line),
                    d.message.clone(),
                )
            })
            .collect(),
    }
}

fn one_error(text: &str, path: &str, line: usize, needle: &str) {
    let errs = errors(text);
    assert!(
        errs.iter()
            .any(|(p, l, m)| p == path && *l == line && m.contains(needle)),
        "wanted `{needle}` at {path} line {line}, got {errs:#?}"
    );
}

const PARAMS: &str = "parameters:\n  x: {min: 0.0, max: 1.0}\n";

#[test]
fn a_list_of_objectives_keeps_the_first_as_the_metric() {
    let text = format!(
        "program: t.py\nmethod: tpe\nmetrics:\n  - {{name: loss, goal: minimize}}\n  - name: acc\n    goal: maximize\n{PARAMS}"
    );
    let c = parse_str(&text, "s.yaml").unwrap().config;
    assert!(c.is_multi_objective());
    let names: Vec<(String, Goal)> = c
        .objectives()
        .into_iter()
        .map(|m| (m.name, m.goal))
        .collect();
    assert_eq!(
        names,
        vec![
            ("loss".into(), Goal::Minimize),
            ("acc".into(), Goal::Maximize)
        ]
    );
    assert_eq!(c.metric.as_ref().unwrap().name, "loss");
}

#[test]
fn one_entry_means_exactly_metric() {
    let listed = parse_str(
        &format!("program: t.py\nmethod: bayes\nmetrics: [{{name: loss, goal: maximize, target: 0.5}}]\n{PARAMS}"),
        "s.yaml",
    )
    .unwrap()
    .config;
    let single = parse_str(
        &format!("program: t.py\nmethod: bayes\nmetric: {{name: loss, goal: maximize, target: 0.5}}\n{PARAMS}"),
        "s.yaml",
    )
    .unwrap()
    .config;
    assert_eq!(listed, single);
    assert!(!listed.is_multi_objective());
    // Same serialized form, so the same config hash.
    assert_eq!(
        serde_json::to_string(&listed).unwrap(),
        serde_json::to_string(&single).unwrap()
    );
}

#[test]
fn each_rule_reports_its_key_and_line() {
    let head = "program: t.py\nmethod: random\n";
    one_error(
        &format!("{head}metric: {{name: a}}\nmetrics: [{{name: a}}, {{name: b}}]\n{PARAMS}"),
        "metrics",
        4,
        "both given",
    );
    one_error(
        &format!("{head}metrics: []\n{PARAMS}"),
        "metrics",
        3,
        "at least one objective",
    );
    one_error(
        &format!("{head}metrics: {{name: a}}\n{PARAMS}"),
        "metrics",
        3,
        "expected a list",
    );
    one_error(
        &format!("{head}metrics:\n  - {{name: a}}\n  - {{name: a, goal: maximize}}\n{PARAMS}"),
        "metrics[1].name",
        5,
        "named twice",
    );
    one_error(
        &format!("{head}metrics:\n  - {{name: a}}\n  - {{name: b, goal: maximise}}\n{PARAMS}"),
        "metrics[1].goal",
        5,
        "unknown goal `maximise`",
    );
    one_error(
        &format!("{head}metrics:\n  - {{name: a, target: 0.1}}\n  - {{name: b}}\n{PARAMS}"),
        "metrics[0].target",
        4,
        "several objectives",
    );
    one_error(
        &format!("{head}metrics:\n  - {{name: a, impute: best}}\n  - {{name: b}}\n{PARAMS}"),
        "metrics[0].impute",
        4,
        "single metric",
    );
    one_error(
        &format!("{head}metrics:\n  - {{name: a}}\n  - {{nme: b}}\n{PARAMS}"),
        "metrics[1].nme",
        5,
        "unknown key",
    );
    one_error(
        &format!("{head}metrics: [{{name: a}}, {{name: b}}]\nearly_terminate: {{type: hyperband, min_iter: 3}}\n{PARAMS}"),
        "early_terminate",
        4,
        "multi-objective sweeps cannot use it yet",
    );
}

#[test]
fn model_based_methods_accept_metrics_in_place_of_metric() {
    for method in ["tpe", "bayes"] {
        let text = format!(
            "program: t.py\nmethod: {method}\nmetrics: [{{name: a}}, {{name: b}}]\n{PARAMS}"
        );
        assert!(parse_str(&text, "s.yaml").is_ok(), "{method}");
    }
    // Early termination with one listed objective is a single-objective sweep.
    let text = format!("program: t.py\nmethod: random\nmetrics: [{{name: a}}]\nearly_terminate: {{type: hyperband, min_iter: 3}}\n{PARAMS}");
    assert!(parse_str(&text, "s.yaml").is_ok());
}
