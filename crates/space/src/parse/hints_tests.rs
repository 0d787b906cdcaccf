//! Tests of the hints that give the exact fix for keys and values from other tools (Optuna,
//! Ray Tune) and for a metric left to the default goal.

use super::tests::hint_at;
use super::*;
use crate::diagnostic::Severity;

const TAIL: &str = "metric: {name: loss}\nparameters:\n  a: {min: 1, max: 3}\n";

#[test]
fn top_level_direction_and_mode_are_moved_under_metric() {
    for (line, goal) in [
        ("direction: maximize", "maximize"),
        ("direction: minimize", "minimize"),
        ("mode: max", "maximize"),
        ("mode: min", "minimize"),
    ] {
        let key = line.split(':').next().unwrap_or_default();
        let h = hint_at(
            &format!("program: t.py\nmethod: bayes\n{line}\n{TAIL}"),
            key,
        );
        assert!(
            h.ends_with(&format!("move it under `metric:` as `goal: {goal}`")),
            "{h}"
        );
        assert!(!h.contains("description"), "{h}");
    }
    let h = hint_at(
        &format!("program: t.py\nmethod: bayes\ndirection: up\n{TAIL}"),
        "direction",
    );
    assert!(h.ends_with("`goal: minimize` or `goal: maximize`"), "{h}");
}

#[test]
fn a_top_level_goal_is_weighed_against_the_metric_written() {
    let params = "parameters:\n  a: {min: 1, max: 3}\n";
    // No metric: the metric to add carries the goal written at the top.
    let h = hint_at(
        &format!("program: t.py\nmethod: bayes\ndirection: maximize\n{params}"),
        "metric",
    );
    assert!(h.contains("goal: maximize"), "{h}");
    assert!(!h.contains("val_loss"), "{h}");
    // The same goal under `metric:` makes the top-level key redundant.
    let h = hint_at(
        &format!("program: t.py\nmethod: bayes\ndirection: maximize\nmetric: {{name: acc, goal: maximize}}\n{params}"),
        "direction",
    );
    assert_eq!(h, "remove it: `metric:` already says `goal: maximize`");
    // Another goal contradicts it: both are named, nothing is chosen for the user.
    let h = hint_at(
        &format!("program: t.py\nmethod: bayes\nmode: max\nmetric: {{name: loss, goal: minimize}}\n{params}"),
        "mode",
    );
    assert!(
        h.contains("`maximize` here but `goal: minimize` there"),
        "{h}"
    );
}

#[test]
fn optuna_int_with_a_step_is_told_the_values_list_at_every_key() {
    let spec =
        "program: t.py\nmethod: random\nparameters:\n  n: {type: int, low: 1, high: 8, step: 2}\n";
    for key in ["type", "low", "high", "step"] {
        let h = hint_at(spec, &format!("parameters.n.{key}"));
        assert!(h.contains("`values: [1, 3, 5, 7]`"), "{key}: {h}");
    }
    // Too many steps to list: each key is told its own word.
    let wide = "program: t.py\nmethod: random\nparameters:\n  n: {type: int, low: 0, high: 1000, step: 2}\n";
    assert!(hint_at(wide, "parameters.n.step").contains("`q`"));
    assert!(hint_at(wide, "parameters.n.low").contains("`min`"));
}

#[test]
fn top_level_trial_counts_and_timeout_say_the_sweep_files_key() {
    let top = |line: &str, key: &str| {
        hint_at(
            &format!("program: t.py\nmethod: bayes\n{line}\n{TAIL}"),
            key,
        )
    };
    let h = top("n_trials: 50", "n_trials");
    assert!(h.contains("Optuna") && h.ends_with("`run_cap: 50`"), "{h}");
    let h = top("num_samples: 8", "num_samples");
    assert!(h.contains("Ray Tune") && h.ends_with("`run_cap: 8`"), "{h}");
    let h = top("timeout: 600", "timeout");
    assert!(h.contains("`budget: {wall_time: 600}`"), "{h}");
    // A value that is not a number is not shown back.
    let h = top("n_trials: many", "n_trials");
    assert!(h.ends_with("`run_cap: N`"), "{h}");
    // Still one error each: nothing else is reported for them.
    let e = parse_str(
        &format!("program: t.py\nmethod: bayes\nn_trials: 5\n{TAIL}"),
        "s.yaml",
    )
    .unwrap_err();
    assert_eq!(e.errors().count(), 1, "{}", e.render());
}

#[test]
fn values_written_with_commas_are_shown_as_a_list() {
    let values = |v: &str| {
        hint_at(
            &format!("program: t.py\nmethod: grid\nparameters:\n  a:\n    values: {v}\n"),
            "parameters.a.values",
        )
    };
    assert_eq!(values("16, 32"), "write a list, e.g. `values: [16, 32]`");
    assert_eq!(
        values("adam, sgd"),
        "write a list, e.g. `values: [adam, sgd]`"
    );
    assert_eq!(
        values("0.1,1e-3"),
        "write a list, e.g. `values: [0.1, 1e-3]`"
    );
    assert_eq!(
        values("\"a b, c\""),
        "write a list, e.g. `values: [\"a b\", c]`"
    );
    // Without a comma, the one value as a list.
    assert_eq!(values("adam"), "write a list, e.g. `values: [\"adam\"]`");
}

/// `{values: 16, 32, 64}` in flow style is `values: 16` beside keys `32` and `64` with no
/// value: one error at `values` with the list meant, no unknown-key errors for the numbers.
#[test]
fn values_split_by_a_flow_mapping_are_told_the_list_once() {
    let text = "program: t.py\nmethod: grid\nparameters:\n  n: {values: 16, 32, 64}\n  act: {values: relu, tanh}\n";
    let e = parse_str(text, "s.yaml").unwrap_err();
    assert_eq!(e.errors().count(), 2, "{}", e.render());
    assert_eq!(
        hint_at(text, "parameters.n.values"),
        "inside `{...}` each comma starts a new key, so `32`, `64` became keys of their own: \
         write `values: [16, 32, 64]`"
    );
    assert_eq!(
        hint_at(text, "parameters.act.values"),
        "inside `{...}` each comma starts a new key, so `tanh` became a key of its own: write \
         `values: [relu, tanh]`"
    );
    assert!(!e.render().contains("unknown key"), "{}", e.render());
}

/// An integer written as a float, `1e3` or `1000.0`, is told the integer's digits.
#[test]
fn an_integer_written_as_a_float_is_read_and_told_its_digits() {
    // W&B's schema (JSON Schema draft 7) takes `1000.0` as an integer: read, with a warning.
    for written in ["1e3", "1000.0"] {
        let v = parse_str(
            &format!(
                "program: t.py\nmethod: random\nrun_cap: 10.0\nparameters:\n  seed: {{distribution: int_uniform, min: 0, max: {written}}}\n"
            ),
            "s.yaml",
        )
        .unwrap();
        assert_eq!(v.config.run_cap, Some(10));
        assert!(matches!(
            v.config.parameters[0].distribution,
            crate::Distribution::IntUniform { min: 0, max: 1000 }
        ));
        let w = v
            .warnings
            .iter()
            .find(|w| w.path == "parameters.seed.max")
            .unwrap_or_else(|| panic!("{:?}", v.warnings));
        assert!(w.message.ends_with(": read as 1000"), "{}", w.message);
        assert_eq!(
            w.hint.as_deref(),
            Some("write 1000 (digits only: no decimal point or exponent)")
        );
        assert!(v.warnings.iter().any(|w| w.path == "run_cap"));
    }
}

/// `value: [adam, sgd]` is a constant list (as in W&B), warned as a likely slip for `values`.
#[test]
fn a_list_under_value_is_a_constant_and_warned() {
    let v = parse_str(
        "program: t.py\nmethod: grid\nparameters:\n  opt: {value: [adam, sgd]}\n  shape: {value: [3]}\n",
        "s.yaml",
    )
    .unwrap();
    let warned: Vec<_> = v.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(warned, ["parameters.opt.value"], "{:?}", v.warnings);
    assert!(
        v.warnings[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("write `values:` (plural)"),
        "{:?}",
        v.warnings
    );
    assert_eq!(
        v.config.parameters[0].distribution,
        crate::Distribution::Constant {
            value: serde_json::json!(["adam", "sgd"])
        }
    );
}

#[test]
fn optuna_parameter_types_are_told_the_distribution() {
    let param = |spec: &str| {
        hint_at(
            &format!("program: t.py\nmethod: random\nparameters:\n  a: {{{spec}}}\n"),
            "parameters.a.type",
        )
    };
    let h = param("type: int, min: 1, max: 4");
    assert!(
        h.ends_with("`distribution: int_uniform` with `min` and `max`"),
        "{h}"
    );
    let h = param("type: float, min: 0.1, max: 1.0");
    assert!(
        h.ends_with("`distribution: uniform` with `min` and `max`"),
        "{h}"
    );
    let h = param("type: float, low: 0.001, high: 1.0, log: true");
    assert!(h.contains("`distribution: log_uniform_values`"), "{h}");
    let h = param("type: int, low: 1, high: 64, log: true");
    assert!(
        h.contains("`distribution: q_log_uniform_values` with `q: 1`"),
        "{h}"
    );
    let h = param("type: categorical, choices: [adam, sgd]");
    assert!(h.ends_with("`values: [\"adam\",\"sgd\"]`"), "{h}");
    let h = param("type: categorical");
    assert!(h.ends_with("`values: [...]`"), "{h}");
    assert!(h.starts_with("`type: categorical` is Optuna's"), "{h}");
    // Another `type` keeps the indentation hint.
    let h = param("type: other, min: 1, max: 2");
    assert!(h.contains("indent it to line up with `a`"), "{h}");
}

/// The warnings about the default goal for a metric named `name`.
fn goal_warnings(metric: &str) -> Vec<Diagnostic> {
    let v = parse_str(
        &format!("program: t.py\nmethod: bayes\nmetric:\n  {metric}\nparameters:\n  a: {{min: 1, max: 3}}\n"),
        "s.yaml",
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    v.warnings
        .into_iter()
        .filter(|w| w.message.contains("defaults to `minimize`"))
        .collect()
}

#[test]
fn a_higher_is_better_metric_left_to_the_default_goal_is_warned() {
    for name in [
        "val_accuracy",
        "Val/Acc",
        "eval.f1",
        "test-AUC",
        "episode_reward",
        "mean_return",
        "bleu",
        "val_mAP",
        "r2",
        "dice_score",
    ] {
        let w = goal_warnings(&format!("name: {name}"));
        assert_eq!(w.len(), 1, "{name}: {w:?}");
        assert_eq!(w[0].severity, Severity::Warning);
        assert_eq!(w[0].path, "metric");
        assert_eq!(w[0].location.map(|l| l.line), Some(4));
        assert!(w[0].message.contains(&format!("`{name}`")), "{:?}", w[0]);
        assert_eq!(
            w[0].hint.as_deref(),
            Some("if higher is better, write `goal: maximize` beside `name`")
        );
    }
    for name in [
        "val_loss",
        "error_rate",
        "val_err",
        "mse",
        "accuracy_loss",
        "accumulated_time",
        "mapping_cost",
        "scores_seen",
    ] {
        assert!(goal_warnings(&format!("name: {name}")).is_empty(), "{name}");
    }
    // Each entry of a `metrics` list is checked too, at its own path.
    let v = parse_str(
        "program: t.py\nmethod: tpe\nmetrics:\n  - {name: loss}\n  - {name: acc}\nparameters:\n  x: {min: 0.0, max: 1.0}\n",
        "s.yaml",
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let warned: Vec<(&str, Option<usize>)> = v
        .warnings
        .iter()
        .filter(|w| w.message.contains("defaults to `minimize`"))
        .map(|w| (w.path.as_str(), w.location.map(|l| l.line)))
        .collect();
    assert_eq!(warned, [("metrics[1]", Some(5))]);
    // Numbered objectives (a test problem's f1, f2) are functions, not an F1 score.
    for names in [["f1", "f2"], ["obj_1", "obj_2"]] {
        let v = parse_str(
            &format!(
                "program: t.py\nmethod: tpe\nmetrics:\n  - {{name: {}}}\n  - {{name: {}}}\nparameters:\n  x: {{min: 0.0, max: 1.0}}\n",
                names[0], names[1]
            ),
            "s.yaml",
        )
        .unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(
            v.warnings
                .iter()
                .all(|w| !w.message.contains("defaults to")),
            "{names:?}: {:?}",
            v.warnings
        );
    }
    // An F1 score beside a loss is still one.
    let v = parse_str(
        "program: t.py\nmethod: tpe\nmetrics:\n  - {name: loss}\n  - {name: f1}\nparameters:\n  x: {min: 0.0, max: 1.0}\n",
        "s.yaml",
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(
        v.warnings
            .iter()
            .filter(|w| w.message.contains("defaults to"))
            .count(),
        1
    );
    // A goal written at the top level is already an error that says to move it: no warning.
    let e = parse_str(
        "program: t.py\nmethod: random\ndirection: maximize\nmetric: {name: val_accuracy}\nparameters:\n  x: {min: 0.0, max: 1.0}\n",
        "s.yaml",
    )
    .unwrap_err();
    assert_eq!(e.errors().count(), 1, "{}", e.render());
    assert!(
        !e.render().contains("defaults to `minimize`"),
        "{}",
        e.render()
    );
    // A goal written, either way, is not warned.
    assert!(goal_warnings("{name: val_accuracy, goal: maximize}").is_empty());
    assert!(goal_warnings("{name: val_accuracy, goal: minimize}").is_empty());
}
