//! Validation tests: one per rule, each checking the key path and the position it reports.

use super::*;
use crate::diagnostic::Severity;

fn ok(text: &str) -> Validated {
    match parse_str(text, "sweep.yaml") {
        Ok(v) => v,
        Err(e) => panic!("expected a valid config, got:\n{}", e.render()),
    }
}

/// The errors for `text`, as (path, line, message) triples.
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

/// Assert exactly one error at `path` on `line` whose message contains `needle`.
fn one_error(text: &str, path: &str, line: usize, needle: &str) {
    let errs = errors(text);
    assert!(
        errs.iter()
            .any(|(p, l, m)| p == path && *l == line && m.contains(needle)),
        "wanted `{needle}` at {path} line {line}, got {errs:#?}"
    );
}

fn dist(v: &Validated, name: &str) -> Distribution {
    v.config
        .parameter(name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .distribution
        .clone()
}

const HEAD: &str = "program: train.py\nmethod: random\nparameters:\n";

#[test]
fn infers_distributions_like_wandb() {
    let v = ok(&format!(
        "{HEAD}  a: {{values: [1, 2.5, x, true, null, [1, 2]]}}\n  b: {{value: 3}}\n  c: {{min: 1, max: 10}}\n  d: {{min: 0.1, max: 1.0}}\n  e: {{values: [x, y], probabilities: [0.25, 0.75]}}\n"
    ));
    assert_eq!(
        dist(&v, "a"),
        Distribution::Categorical {
            values: vec![
                serde_json::json!(1),
                serde_json::json!(2.5),
                serde_json::json!("x"),
                serde_json::json!(true),
                Value::Null,
                serde_json::json!([1, 2])
            ]
        }
    );
    assert_eq!(
        dist(&v, "b"),
        Distribution::Constant {
            value: serde_json::json!(3)
        }
    );
    assert_eq!(dist(&v, "c"), Distribution::IntUniform { min: 1, max: 10 });
    assert_eq!(dist(&v, "d"), Distribution::Uniform { min: 0.1, max: 1.0 });
    assert!(matches!(
        dist(&v, "e"),
        Distribution::CategoricalWithProbabilities { .. }
    ));
}

#[test]
fn every_distribution_parses_with_wandb_defaults() {
    let v = ok(&format!(
        "{HEAD}  n: {{distribution: normal}}\n  qn: {{distribution: q_normal, mu: 5, sigma: 2, q: 2}}\n  ln: {{distribution: log_normal, mu: 1}}\n  qln: {{distribution: q_log_normal}}\n  be: {{distribution: beta}}\n  qb: {{distribution: q_beta, a: 2, b: 5, q: 0.1}}\n  lu: {{distribution: log_uniform, min: -9.2, max: -2.3}}\n  ilu: {{distribution: inv_log_uniform, min: 1, max: 3}}\n  qlu: {{distribution: q_log_uniform, min: 0, max: 5}}\n  luv: {{distribution: log_uniform_values, min: 1e-5, max: 1e-2}}\n  iluv: {{distribution: inv_log_uniform_values, min: 0.01, max: 1}}\n  qluv: {{distribution: q_log_uniform_values, min: 8, max: 512}}\n  qu: {{distribution: q_uniform, min: 0, max: 1, q: 0.25}}\n"
    ));
    assert_eq!(
        dist(&v, "n"),
        Distribution::Normal {
            mu: 0.0,
            sigma: 1.0
        }
    );
    assert_eq!(dist(&v, "be"), Distribution::Beta { a: 1.0, b: 1.0 });
    assert_eq!(
        dist(&v, "qluv"),
        Distribution::QLogUniformValues {
            min: 8.0,
            max: 512.0,
            // W&B's default `q` is the float 1.0, so values are floats (`64.0`).
            q: Quantum {
                q: 1.0,
                integer: false
            }
        }
    );
    assert_eq!(
        dist(&v, "qb"),
        Distribution::QBeta {
            a: 2.0,
            b: 5.0,
            q: Quantum {
                q: 0.1,
                integer: false
            }
        }
    );
    // The three legacy exponent-bounded distributions warn.
    let deprecated = v
        .warnings
        .iter()
        .filter(|w| w.message.contains("natural-log exponents"))
        .count();
    assert_eq!(deprecated, 3, "{:#?}", v.warnings);
    assert!(v.warnings.iter().all(|w| w.severity == Severity::Warning));
}

#[test]
fn nested_parameters_become_dotted_names() {
    let v = ok(&format!(
        "{HEAD}  optimizer:\n    parameters:\n      lr: {{min: 0.001, max: 0.1}}\n      kind: {{values: [adam, sgd]}}\n  model.depth: {{values: [2, 4]}}\n"
    ));
    let names: Vec<_> = v
        .config
        .parameters
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["optimizer.lr", "optimizer.kind", "model.depth"]);
    assert_eq!(v.config.parameters[0].path, ["optimizer", "lr"]);
    assert_eq!(v.config.parameters[2].path, ["model.depth"]);
}

/// A dotted name and a nested block that flatten to one name are one error at the second,
/// which names both by key path (lines would mean nothing for a config sent as an object).
#[test]
fn a_name_defined_twice_is_named_by_both_key_paths() {
    let text = format!(
        "{HEAD}  opt.lr: {{min: 0.001, max: 0.1}}\n  opt:\n    parameters:\n      lr: {{min: 0.01, max: 0.2}}\n"
    );
    let line = text
        .lines()
        .position(|l| l.trim_start().starts_with("lr:"))
        .unwrap()
        + 1;
    one_error(
        &text,
        "parameters.opt.parameters.lr",
        line,
        "parameter `opt.lr` is defined twice, at `parameters.opt.lr` and at `parameters.opt.parameters.lr`",
    );
    assert!(errors(&text).iter().all(|(_, _, m)| !m.contains("line")));
}

#[test]
fn yaml_1_2_numbers_are_numbers() {
    let v = ok(&format!(
        "{HEAD}  lr: {{distribution: uniform, min: 1e-5, max: 6.e-3}}\n"
    ));
    assert_eq!(
        dist(&v, "lr"),
        Distribution::Uniform {
            min: 1e-5,
            max: 6e-3
        }
    );
}

#[test]
fn malformed_yaml() {
    let errs = errors("method: grid\nparameters:\n  a: {values: [1, 2}\n");
    assert!(errs[0].2.starts_with("malformed YAML"), "{errs:?}");
    assert_eq!(errs[0].1, 3);
}

#[test]
fn unknown_keys_suggest_the_right_one() {
    let text = "program: t.py\nmethod: random\nparamters:\n  a: {values: [1]}\n";
    let e = parse_str(text, "s.yaml").unwrap_err();
    let d = e.errors().find(|d| d.path == "paramters").unwrap();
    assert_eq!(d.location, Some(Location::new(3, 1)));
    assert_eq!(d.hint.as_deref(), Some("did you mean `parameters`?"));
    let e = parse_str(&format!("{HEAD}  a: {{vaules: [1, 2]}}\n"), "s.yaml").unwrap_err();
    let d = e
        .errors()
        .find(|d| d.path == "parameters.a.vaules")
        .unwrap();
    assert_eq!(d.hint.as_deref(), Some("did you mean `values`?"));
}

#[test]
fn wandb_only_keys_warn() {
    let v = ok(&format!(
        "entity: me\ncontroller: {{type: local}}\n{HEAD}  a: {{values: [1]}}\n"
    ));
    assert_eq!(v.warnings.len(), 2);
    assert!(v.warnings[0]
        .message
        .contains("`entity` is a W&B-only key and is ignored"));
}

#[test]
fn wrong_types() {
    one_error(
        &format!("{HEAD}  a: {{min: low, max: 2}}\n"),
        "parameters.a.min",
        4,
        "expected a number",
    );
    one_error(
        &format!("{HEAD}  a: {{distribution: uniform, min: '1', max: 2}}\n"),
        "parameters.a.min",
        4,
        "the string \"1\"",
    );
    one_error(
        "program: t.py\nmethod: [grid]\nparameters: {a: {value: 1}}\n",
        "method",
        2,
        "expected a string",
    );
    one_error(
        &format!("{HEAD}  a: 5\n"),
        "parameters.a",
        4,
        "must be a mapping",
    );
    one_error(
        &format!("run_cap: 0\n{HEAD}  a: {{value: 1}}\n"),
        "run_cap",
        1,
        "at least 1",
    );
    one_error(
        &format!("run_cap: {{type: metric}}\n{HEAD}  a: {{value: 1}}\n"),
        "run_cap",
        1,
        "found a mapping",
    );
}

#[test]
fn min_greater_than_max() {
    one_error(
        &format!("{HEAD}  lr:\n    min: 0.5\n    max: 0.1\n"),
        "parameters.lr.min",
        5,
        "greater than max",
    );
    one_error(
        &format!("{HEAD}  n: {{min: 9, max: 3}}\n"),
        "parameters.n.min",
        4,
        "greater than max",
    );
    // Order of keys does not matter.
    ok(&format!("{HEAD}  lr:\n    max: 0.5\n    min: 0.1\n"));
}

#[test]
fn nested_error_paths() {
    one_error(
        &format!(
            "{HEAD}  optimizer:\n    parameters:\n      lr:\n        min: 0.5\n        max: 0.1\n"
        ),
        "parameters.optimizer.parameters.lr.min",
        7,
        "greater than max",
    );
}

#[test]
fn log_bounds_must_be_positive() {
    one_error(
        &format!("{HEAD}  lr: {{distribution: log_uniform_values, min: 0, max: 1}}\n"),
        "parameters.lr.min",
        4,
        "greater than 0",
    );
    one_error(
        &format!("{HEAD}  lr: {{distribution: q_log_uniform_values, min: -1, max: 1}}\n"),
        "parameters.lr.min",
        4,
        "greater than 0",
    );
}

#[test]
fn q_must_be_positive() {
    one_error(
        &format!("{HEAD}  x: {{distribution: q_uniform, min: 0, max: 1, q: 0}}\n"),
        "parameters.x.q",
        4,
        "greater than 0",
    );
    one_error(
        &format!("{HEAD}  x: {{distribution: q_normal, q: -2}}\n"),
        "parameters.x.q",
        4,
        "greater than 0",
    );
    one_error(
        &format!("{HEAD}  x: {{distribution: q_uniform, min: 0.1, max: 0.2, q: 0.5}}\n"),
        "parameters.x.q",
        4,
        "no multiple of q",
    );
    one_error(
        &format!("{HEAD}  x: {{distribution: q_log_uniform_values, min: 1e-4, max: 0.1}}\n"),
        "parameters.x.q",
        4,
        "no multiple of q = 1 lies between 0.0001 and 0.1",
    );
}

#[test]
fn empty_values_and_probabilities() {
    one_error(
        &format!("{HEAD}  a: {{values: []}}\n"),
        "parameters.a.values",
        4,
        "empty",
    );
    one_error(
        &format!("{HEAD}  a: {{values: [x, y], probabilities: [0.5, 0.6]}}\n"),
        "parameters.a.probabilities",
        4,
        "sum to 1.1",
    );
    one_error(
        &format!("{HEAD}  a: {{values: [x, y], probabilities: [1.0]}}\n"),
        "parameters.a.probabilities",
        4,
        "1 probabilities for 2 values",
    );
    one_error(
        &format!("{HEAD}  a: {{values: [x, y], probabilities: [1.5, -0.5]}}\n"),
        "parameters.a.probabilities[1]",
        4,
        "negative",
    );
}

#[test]
fn every_fault_of_a_probabilities_list_is_reported_at_once() {
    let found = errors(&format!(
        "{HEAD}  a: {{values: [x, y], probabilities: [-0.1, 1.1, oops]}}\n"
    ));
    let message = |path: &str| {
        let hits: Vec<&String> = found
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, _, m)| m)
            .collect();
        assert_eq!(hits.len(), 1, "{path}: {found:?}");
        hits[0].clone()
    };
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(message("parameters.a.probabilities[0]").contains("negative"));
    assert!(message("parameters.a.probabilities[2]").contains("expected a number"));
    assert!(message("parameters.a.probabilities").contains("3 probabilities for 2 values"));
    // The sum is not judged while the entries are wrong.
    assert!(
        found.iter().all(|(_, _, m)| !m.contains("sum to")),
        "{found:?}"
    );
}

#[test]
fn a_grid_too_large_to_number_is_rejected_at_its_widest_parameter() {
    // Three integer ranges of 10^14 values each: every axis is finite, the product is not
    // below 2^128, so no run of it could be numbered (an agent claiming from it was refused).
    let text = "program: t.py\nmethod: grid\nparameters:\n  a: {values: [1, 2]}\n  w: {min: 0, max: 100000000000000}\n  x: {min: 0, max: 99999999999999}\n  y: {min: 0, max: 99999999999999}\n";
    one_error(text, "parameters.w", 5, "more than 2^128 configurations");
    // The same ranges under random search are a space to sample, not to enumerate.
    ok(&text.replace("method: grid", "method: random"));
}

#[test]
fn grid_over_continuous_is_rejected() {
    let text = "program: t.py\nmethod: grid\nparameters:\n  a: {values: [1, 2]}\n  lr: {min: 0.1, max: 0.5}\n";
    one_error(text, "parameters.lr", 5, "grid search needs a finite set");
    ok("program: t.py\nmethod: grid\nparameters:\n  a: {values: [1, 2]}\n  n: {min: 1, max: 3}\n  q: {distribution: q_uniform, min: 0, max: 1, q: 0.5}\n");
}

#[test]
fn bayes_and_early_termination_need_a_metric() {
    one_error(
        "program: t.py\nmethod: bayes\nparameters: {a: {min: 0.0, max: 1.0}}\n",
        "metric",
        1,
        "needs a `metric`",
    );
    one_error(
        "program: t.py\nmethod: random\nearly_terminate: {type: hyperband, min_iter: 3}\nparameters: {a: {min: 0.0, max: 1.0}}\n",
        "early_terminate",
        3,
        "no `metric`",
    );
}

#[test]
fn tpe_and_sobol_methods() {
    let params = "parameters: {a: {min: 0.0, max: 1.0}}\n";
    let tpe = ok(&format!(
        "program: t.py\nmethod: tpe\nmetric: {{name: l}}\n{params}"
    ));
    assert_eq!(tpe.config.method, Method::Tpe);
    one_error(
        &format!("program: t.py\nmethod: tpe\n{params}"),
        "metric",
        1,
        "`method: tpe` needs a `metric`",
    );
    for name in ["sobol", "quasi_random"] {
        let v = ok(&format!("program: t.py\nmethod: {name}\n{params}"));
        assert_eq!(v.config.method, Method::Sobol);
        assert_eq!(v.config.method.as_str(), "sobol");
    }
}

#[test]
fn hyperband_rules() {
    let base = "program: t.py\nmethod: random\nmetric: {name: loss}\nparameters: {a: {min: 0.0, max: 1.0}}\n";
    one_error(
        &format!("{base}early_terminate: {{type: hyperband, min_iter: 3, eta: 1}}\n"),
        "early_terminate.eta",
        5,
        "greater than 1",
    );
    one_error(
        &format!("{base}early_terminate: {{type: hyperband, max_iter: 27}}\n"),
        "early_terminate",
        5,
        "either `min_iter`",
    );
    one_error(
        &format!("{base}early_terminate: hyperband\n"),
        "early_terminate",
        5,
        "expected a mapping",
    );
    one_error(
        &format!("{base}early_terminate: {{type: hyperbnd, min_iter: 3}}\n"),
        "early_terminate.type",
        5,
        "unknown early-termination type",
    );
    let v = ok(&format!(
        "{base}early_terminate: {{type: hyperband, max_iter: 27, s: 2}}\n"
    ));
    let Some(EarlyTerminate::Hyperband(hb)) = &v.config.early_terminate else {
        panic!()
    };
    assert_eq!(hb.bands(10), [3, 9]);
    assert_eq!((hb.eta, hb.strict), (3.0, true));
    let v = ok(&format!(
        "{base}early_terminate: {{type: hyperband, min_iter: 2, eta: 2}}\n"
    ));
    let Some(EarlyTerminate::Hyperband(hb)) = &v.config.early_terminate else {
        panic!()
    };
    assert_eq!(hb.bands(4), [2, 4, 8, 16]);
}

#[test]
fn unknown_goal_method_distribution() {
    one_error(
        "program: t.py\nmethod: grdi\nparameters: {a: {value: 1}}\n",
        "method",
        2,
        "unknown method `grdi`",
    );
    one_error(
        "program: t.py\nmethod: random\nmetric: {name: acc, goal: maximise}\nparameters: {a: {value: 1}}\n",
        "metric.goal",
        3,
        "unknown goal `maximise`",
    );
    let e = parse_str(
        &format!("{HEAD}  a: {{distribution: unifrom, min: 0, max: 1}}\n"),
        "s.yaml",
    )
    .unwrap_err();
    let d = e.errors().next().unwrap();
    assert_eq!(d.path, "parameters.a.distribution");
    assert_eq!(d.hint.as_deref(), Some("did you mean `uniform`?"));
}

#[test]
fn unknown_macro() {
    one_error(
        "program: t.py\nmethod: random\ncommand:\n  - python\n  - ${program}\n  - ${argz}\nparameters: {a: {value: 1}}\n",
        "command[2]",
        6,
        "${argz}",
    );
}

#[test]
fn int_uniform_wants_integers() {
    one_error(
        &format!("{HEAD}  n: {{distribution: int_uniform, min: 2.5, max: 8.}}\n"),
        "parameters.n.min",
        4,
        "expected an integer",
    );
    // Whole floats are integers to W&B's schema: read, with a warning each.
    let v = ok(&format!(
        "{HEAD}  n: {{distribution: int_uniform, min: 2., max: 8.0}}\n"
    ));
    assert_eq!(dist(&v, "n"), Distribution::IntUniform { min: 2, max: 8 });
    assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
}

#[test]
fn mixed_integer_and_float_bounds_infer_uniform() {
    // W&B's schema: an integer and a float bound (either way round) make a uniform.
    let v = ok(&format!(
        "{HEAD}  dropout: {{min: 0, max: 0.5}}\n  wd: {{min: 1.5, max: 3}}\n  n: {{min: -2, max: 7}}\n  t: {{min: -1.0, max: 2.0}}\n"
    ));
    assert_eq!(
        dist(&v, "dropout"),
        Distribution::Uniform { min: 0.0, max: 0.5 }
    );
    assert_eq!(dist(&v, "wd"), Distribution::Uniform { min: 1.5, max: 3.0 });
    assert_eq!(dist(&v, "n"), Distribution::IntUniform { min: -2, max: 7 });
    assert_eq!(
        dist(&v, "t"),
        Distribution::Uniform {
            min: -1.0,
            max: 2.0
        }
    );
    // A bound that is not a number is still an error at that bound.
    one_error(
        &format!("{HEAD}  x: {{min: 0, max: high}}\n"),
        "parameters.x.max",
        4,
        "",
    );
}

#[test]
fn parameters_by_name_in_the_command_are_substituted_with_a_warning() {
    let v = ok("program: t.py\nmethod: grid\ncommand: [python3, t.py, \"--rate=${rate}\", \"hydra.run.dir=out/${now:%H-%M}\"]\nparameters:\n  rate: {values: [0.5]}\n");
    let warned: Vec<&str> = v.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(warned, ["command[2]"], "{:?}", v.warnings);
    assert!(v.warnings[0].message.contains("W&B would pass"));
    // A near-miss of a macro is still an error.
    one_error(
        "program: t.py\nmethod: grid\ncommand: [python3, \"${progam}\"]\nparameters:\n  rate: {values: [0.5]}\n",
        "command[1]",
        3,
        "unknown macro ${progam}",
    );
}

#[test]
fn duplicate_grid_values_warn_under_wandb_equality() {
    let v = ok("method: grid\nprogram: t.py\nparameters:\n  q: {values: [1, 1.0, \"1\", true]}\n");
    let dups: Vec<&str> = v.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(dups, ["parameters.q.values[1]"], "{:?}", v.warnings);
}

#[test]
fn misplaced_keys_name_the_distribution() {
    one_error(
        &format!("{HEAD}  x: {{distribution: uniform, values: [1, 2]}}\n"),
        "parameters.x.values",
        4,
        "not a setting of the uniform",
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = "program: t.py\nmethod: random\nparameters:\n  a: {min: 3, max: 1}\n  b: {values: []}\n  c: {distribution: normal, sigma: -1}\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn missing_program_with_default_command() {
    let v = ok("method: random\nparameters: {a: {value: 1}}\n");
    assert!(v
        .warnings
        .iter()
        .any(|w| w.path == "program" && w.message.contains("no `program`")));
    ok("method: random\ncommand:\n  - ./run.sh\n  - ${args}\nparameters: {a: {value: 1}}\n");
    one_error(
        "method: random\ncommand:\n  - ${program}\nparameters: {a: {value: 1}}\n",
        "command",
        3,
        "no `program`",
    );
}

#[test]
fn json_input_has_positions_too() {
    let text = "{\n  \"program\": \"t.py\",\n  \"method\": \"random\",\n  \"parameters\": {\"lr\": {\"min\": 1.0, \"max\": 0.5}}\n}\n";
    one_error(text, "parameters.lr.min", 4, "greater than max");
}

#[test]
fn empty_file() {
    one_error("", "", 0, "empty");
    one_error("# only a comment\n", "", 0, "empty");
}

#[test]
fn sample_without_replacement_needs_random_over_a_finite_space() {
    let v = ok("program: t.py\nmethod: random\nsample_without_replacement: true\nparameters: {a: {values: [1, 2]}, b: {min: 1, max: 3}}\n");
    assert!(v.config.sample_without_replacement);
    one_error(
        "program: t.py\nmethod: random\nsample_without_replacement: true\nparameters: {a: {min: 0.0, max: 1.0}}\n",
        "sample_without_replacement",
        3,
        "needs a finite space",
    );
    one_error(
        "program: t.py\nmethod: grid\nsample_without_replacement: true\nparameters: {a: {values: [1]}}\n",
        "sample_without_replacement",
        3,
        "applies to `method: random`",
    );
}

#[test]
fn allow_repeats_is_for_bayes_and_tpe() {
    for method in ["bayes", "tpe"] {
        let v = ok(&format!("program: t.py\nmethod: {method}\nmetric: {{name: loss}}\nallow_repeats: true\nparameters: {{a: {{values: [1, 2, 3]}}}}\n"));
        assert!(v.config.allow_repeats);
    }
    let v = ok("program: t.py\nmethod: bayes\nmetric: {name: loss}\nparameters: {a: {values: [1, 2, 3]}}\n");
    assert!(!v.config.allow_repeats);
    one_error(
        "program: t.py\nmethod: grid\nallow_repeats: true\nparameters: {a: {values: [1]}}\n",
        "allow_repeats",
        3,
        "applies to `method: bayes` and `method: tpe`",
    );
}

#[test]
fn asha_and_median_rules() {
    let base = "program: t.py\nmethod: random\nmetric: {name: loss}\nparameters: {a: {min: 0.0, max: 1.0}}\n";
    let v = ok(&format!("{base}early_terminate: {{type: asha, grace_period: 2, reduction_factor: 2, max_t: 16, step_key: epoch}}\n"));
    let Some(EarlyTerminate::Asha(a)) = &v.config.early_terminate else {
        panic!()
    };
    assert_eq!(
        (a.grace_period, a.reduction_factor, a.brackets, a.max_t),
        (2, 2.0, 1, Some(16))
    );
    assert_eq!(a.step_key.as_deref(), Some("epoch"));
    let v = ok(&format!("{base}early_terminate: {{type: median}}\n"));
    let Some(EarlyTerminate::Median(m)) = &v.config.early_terminate else {
        panic!()
    };
    assert_eq!((m.warmup, m.min_runs, m.step_key.clone()), (0, 5, None));
    one_error(
        &format!("{base}early_terminate: {{type: asha, reduction_factor: 1}}\n"),
        "early_terminate.reduction_factor",
        5,
        "greater than 1",
    );
    one_error(
        &format!("{base}early_terminate: {{type: asha, grace_period: 8, max_t: 4}}\n"),
        "early_terminate.max_t",
        5,
        "below grace_period",
    );
    one_error(
        &format!("{base}early_terminate: {{type: median, min_iter: 3}}\n"),
        "early_terminate.min_iter",
        5,
        "unknown key",
    );
    one_error(
        &format!("{base}early_terminate: {{type: median, min_runs: 0}}\n"),
        "early_terminate.min_runs",
        5,
        "at least 1",
    );
    one_error(
        &format!("{base}early_terminate: {{type: medain}}\n"),
        "early_terminate.type",
        5,
        "unknown early-termination type",
    );
}

#[test]
fn wandb_key_asks_for_the_wandb_module() {
    let v = ok("program: t.py\nmethod: random\nwandb: true\nparameters: {a: {values: [1, 2]}}\n");
    assert!(v.config.wandb);
    let v = ok("program: t.py\nmethod: random\nparameters: {a: {values: [1, 2]}}\n");
    assert!(!v.config.wandb);
    one_error(
        "program: t.py\nmethod: random\nwandb: {enabled: true}\nparameters: {a: {values: [1]}}\n",
        "wandb",
        3,
        "",
    );
}

#[test]
fn hyperband_bands_and_strict_as_wandb_computes_them() {
    // Expected bands from W&B's `sweeps` 0.3.0 (`hyperband_stop_runs`) for the same settings.
    let base = "program: t.py\nmethod: random\nmetric: {name: loss}\nparameters: {a: {min: 0.0, max: 1.0}}\n";
    let hb = |et: &str| {
        let v = ok(&format!(
            "{base}early_terminate: {{type: hyperband, {et}}}\n"
        ));
        match v.config.early_terminate {
            Some(EarlyTerminate::Hyperband(hb)) => hb,
            other => panic!("{other:?}"),
        }
    };
    let all = usize::MAX;
    assert_eq!(hb("max_iter: 5, s: 2, eta: 2").bands(all), [1, 2]);
    assert_eq!(hb("max_iter: 81, s: 10").bands(all), [1, 3, 9, 27]);
    assert_eq!(
        hb("max_iter: 10, s: 5, eta: 1.1").bands(all),
        [6, 6, 7, 8, 9]
    );
    assert_eq!(hb("max_iter: 100, s: 3, eta: 2.5").bands(all), [6, 16, 40]);
    assert_eq!(hb("min_iter: 3").bands(6), [3, 9, 27, 81, 243, 729]);
    assert_eq!(
        hb("min_iter: 1, eta: 1.5").bands(8),
        [1, 1, 2, 3, 5, 7, 11, 17]
    );
    // The min_iter form has exactly 100 bands, as in W&B (eta 1.01 ends at band 2).
    let slow = hb("min_iter: 1, eta: 1.01").bands(all);
    assert_eq!(slow.len(), Hyperband::MIN_ITER_BANDS);
    assert_eq!(slow.last(), Some(&2));
    assert!(hb("min_iter: 3").strict);
    assert!(!hb("min_iter: 3, strict: false").strict);
}

/// The hint of the error at `path` (which must exist).
pub(super) fn hint_at(text: &str, path: &str) -> String {
    let e = parse_str(text, "s.yaml").unwrap_err();
    let d = e
        .errors()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no error at {path}:\n{}", e.render()));
    d.hint.clone().unwrap_or_default()
}

#[test]
fn type_errors_say_how_to_fix_them() {
    // A quoted integer, as a quoted number already does.
    let h = hint_at(
        &format!("{HEAD}  n: {{distribution: int_uniform, min: \"32\", max: 64}}\n"),
        "parameters.n.min",
    );
    assert_eq!(h, "remove the quotes so it reads as a number");
    // A quoted boolean (unquoted `yes` is already true).
    let et = |v: &str| {
        format!("metric: {{name: m}}\nearly_terminate: {{type: hyperband, min_iter: 3, strict: {v}}}\n{HEAD}  a: {{value: 1}}\n")
    };
    assert_eq!(
        hint_at(&et("\"yes\""), "early_terminate.strict"),
        "write `true` without quotes"
    );
    assert_eq!(
        hint_at(&et("'False'"), "early_terminate.strict"),
        "write `false` without quotes"
    );
    assert_eq!(
        hint_at(&et("maybe"), "early_terminate.strict"),
        "write `true` or `false` without quotes"
    );
    // Bounds that are not integers for int_uniform.
    let h = hint_at(
        &format!("{HEAD}  n: {{distribution: int_uniform, min: 1.5, max: 64}}\n"),
        "parameters.n.min",
    );
    assert!(h.contains("`distribution: uniform`"), "{h}");
    assert!(h.contains("`q_uniform` with a `q` step"), "{h}");
    // A step given to a distribution without one names the quantized variant.
    let h = hint_at(
        &format!("{HEAD}  n: {{distribution: int_uniform, min: 1, max: 64, q: 8}}\n"),
        "parameters.n.q",
    );
    assert_eq!(
        h,
        "to round to multiples of q, use `distribution: q_uniform` with `q: 8`"
    );
    let h = hint_at(
        &format!("{HEAD}  lr: {{distribution: log_uniform_values, min: 1, max: 64, q: 4}}\n"),
        "parameters.lr.q",
    );
    assert_eq!(
        h,
        "to round to multiples of q, use `distribution: q_log_uniform_values` with `q: 4`"
    );
    // "an" before a vowel, "a" before a "u" read as "you".
    let h = hint_at(
        &format!("{HEAD}  n: {{distribution: int_uniform, min: 1, max: 64, mu: 8}}\n"),
        "parameters.n.mu",
    );
    assert_eq!(h, "an int_uniform distribution takes: min, max");
    let h = hint_at(
        &format!("{HEAD}  x: {{distribution: inv_log_uniform_values, min: 1, max: 9, q: 8}}\n"),
        "parameters.x.q",
    );
    assert_eq!(h, "an inv_log_uniform_values distribution takes: min, max");
    let h = hint_at(
        &format!("{HEAD}  x: {{distribution: uniform, min: 1, max: 9, sigma: 8}}\n"),
        "parameters.x.sigma",
    );
    assert_eq!(h, "a uniform distribution takes: min, max");
    let h = hint_at(
        &format!("{HEAD}  opt: {{distribution: categorical, values: [a, b], probabilities: [0.3, 0.7]}}\n"),
        "parameters.opt.probabilities",
    );
    assert!(
        h.starts_with("for a weighted choice, use `distribution: categorical_w_probabilities`"),
        "{h}"
    );
}

#[test]
fn misspelt_distributions_suggest_the_value_bounded_ones() {
    let hint = |d: &str, min: &str| {
        hint_at(
            &format!("{HEAD}  lr: {{distribution: {d}, min: {min}, max: 0.1, q: 0.001}}\n"),
            "parameters.lr.distribution",
        )
    };
    // Optuna's and Ray Tune's names, whose bounds are values.
    assert_eq!(
        hint("loguniform", "0.001"),
        "did you mean `log_uniform_values`? Its min and max are the values themselves (`log_uniform` takes natural-log exponents)"
    );
    assert!(hint("qloguniform", "0.001").starts_with("did you mean `q_log_uniform_values`?"));
    assert!(hint("LogUniform", "0.001").starts_with("did you mean `log_uniform_values`?"));
    assert!(hint("log_unifrom", "0.001").starts_with("did you mean `log_uniform_values`?"));
    assert!(hint("inv_loguniform", "0.001").starts_with("did you mean `inv_log_uniform_values`?"));
    // A min of 0 or below can only be an exponent (as in hyperopt's `loguniform`).
    assert!(
        hint("loguniform", "-9")
            .starts_with("did you mean `log_uniform`? Its min and max are natural-log exponents"),
        "{}",
        hint("loguniform", "-9")
    );
    // Other libraries' names for ours.
    assert_eq!(hint("randint", "1"), "did you mean `int_uniform`?");
    assert_eq!(hint("choice", "1"), "did you mean `categorical`?");
    assert_eq!(hint("quniform", "1"), "did you mean `q_uniform`?");
    assert_eq!(hint("unifrom", "1"), "did you mean `uniform`?");
}

#[test]
fn a_misspelt_required_key_is_one_error() {
    // `metirc` is reported once, not also as the metric bayes and early termination lack.
    let errs = errors("program: t.py\nmethod: bayes\nmetirc: {name: loss}\nearly_terminate: {type: hyperband, min_iter: 3}\nparameters:\n  a: {min: 1, max: 3}\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].0, "metirc");
    assert_eq!(hint_at("program: t.py\nmethod: bayes\nmetirc: {name: loss}\nparameters:\n  a: {min: 1, max: 3}\n", "metirc"), "did you mean `metric`?");
    // `min_iters` is reported once, not also as hyperband lacking `min_iter`.
    let errs = errors("program: t.py\nmethod: random\nmetric: {name: loss}\nearly_terminate: {type: hyperband, min_iters: 3}\nparameters:\n  a: {min: 1, max: 3}\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].0, "early_terminate.min_iters");
    // Likewise `typ`, `paramters`, `methd`, a metric's `nmae` (in a list of objectives
    // too, where it was reported twice), and budget keys.
    for (text, path) in [
        ("program: t.py\nmethod: random\nmetric: {name: l}\nearly_terminate: {typ: hyperband, min_iter: 3}\nparameters: {a: {value: 1}}\n", "early_terminate.typ"),
        ("program: t.py\nmethod: random\nparamters:\n  a: {value: 1}\n", "paramters"),
        ("program: t.py\nmethd: random\nparameters:\n  a: {value: 1}\n", "methd"),
        ("program: t.py\nmethod: random\nmetric: {nmae: loss}\nparameters: {a: {value: 1}}\n", "metric.nmae"),
        ("program: t.py\nmethod: random\nmetrics: [{nmae: a}, {name: b}]\nparameters: {a: {value: 1}}\n", "metrics[0].nmae"),
        ("program: t.py\nmethod: random\nmetric: {name: l}\nbudget: {wall_tme: 2h}\nparameters: {a: {value: 1}}\n", "budget.wall_tme"),
        ("program: t.py\nmethod: random\nmetric: {name: l}\nbudget: {stagnation: {run: 20}}\nparameters: {a: {value: 1}}\n", "budget.stagnation.run"),
    ] {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text}\n{errs:#?}");
        assert_eq!(errs[0].0, path, "{errs:#?}");
    }
    // A misspelt program is not also warned about as missing.
    let e = parse_str(
        "progam: t.py\nmethod: random\nparameters: {a: {value: 1}}\n",
        "s.yaml",
    )
    .unwrap_err();
    assert_eq!(e.diagnostics.len(), 1, "{}", e.render());
    // A key that is no near miss leaves the missing key reported.
    let errs = errors("program: t.py\nmethod: bayes\nobjective: {name: loss}\nparameters:\n  a: {min: 1, max: 3}\n");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn a_field_written_too_far_left_says_to_indent_it() {
    // `min` dedented out of `lr`; `values` of `hidden` on the line below, as far left.
    let text = "program: t.py\nmethod: random\nparameters:\n  lr:\n    distribution: uniform\n    max: 0.1\n  min: 0.001\n  hidden:\n  values: [16, 32]\n";
    let e = parse_str(text, "s.yaml").unwrap_err();
    let got: Vec<(String, usize, String)> = e
        .errors()
        .map(|d| {
            (
                d.path.clone(),
                d.location.unwrap().line,
                d.hint.clone().unwrap_or_default(),
            )
        })
        .collect();
    // One error per misplaced line: `lr` is not also said to lack `min`, and `values` is
    // told about with `hidden`.
    assert_eq!(
        got,
        [
            (
                "parameters.min".to_string(),
                7,
                "`min` is a field of a parameter, not a parameter: indent `min:` under `lr:` (line 4)".to_string()
            ),
            (
                "parameters.hidden".to_string(),
                8,
                "its fields are not indented under it: indent `values:` (line 9) under `hidden:`".to_string()
            ),
        ],
        "{}",
        e.render()
    );
    assert!(e.diagnostics[0]
        .message
        .contains("a parameter must be a mapping, found a number 0.001"));
    // Several fields under a parameter with nothing under it.
    let h = hint_at(
        &format!("{HEAD}  dropout:\n  distribution: uniform\n  min: 0\n  max: 0.5\n"),
        "parameters.dropout",
    );
    assert_eq!(h, "its fields are not indented under it: indent `distribution:` (line 5), `min:` (line 6) and `max:` (line 7) under `dropout:`");
    // A nested block written beside its parameter rather than under it.
    let h = hint_at(
        &format!("{HEAD}  optimizer:\n  parameters:\n    lr: {{min: 0.1, max: 1.0}}\n"),
        "parameters.optimizer",
    );
    assert_eq!(
        h,
        "its fields are not indented under it: indent `parameters:` (line 5) under `optimizer:`"
    );
    // The same one level down, in a nested block.
    let text = format!(
        "{HEAD}  optimizer:\n    parameters:\n      lr:\n        min: 0.1\n      max: 1.0\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        hint_at(&text, "parameters.optimizer.parameters.max"),
        "`max` is a field of a parameter, not a parameter: indent `max:` under `lr:` (line 6)"
    );
    // A nested parameter written beside `parameters:` rather than in it.
    let h = hint_at(
        &format!("{HEAD}  optimizer:\n    parameters:\n      lr: {{min: 0.1, max: 1.0}}\n    momentum: {{min: 0.0, max: 0.9}}\n"),
        "parameters.optimizer.momentum",
    );
    assert_eq!(h, "if `momentum` is one of the nested parameters of `optimizer`, indent it under `parameters:` (line 5)");
    // With no parameter above it, or when the parameter above has the field already, the
    // field may be a parameter of that name.
    let h = hint_at(
        &format!("{HEAD}  q: 5\n  lr: {{min: 0.1, max: 1.0}}\n"),
        "parameters.q",
    );
    assert_eq!(h, "`q` is a field of a parameter, not a parameter: indent it under the parameter it belongs to, or write `q: {value: 5}` for a parameter of that name");
    let h = hint_at(
        &format!("{HEAD}  lr: {{min: 0.1, max: 1.0}}\n  max: 5\n"),
        "parameters.max",
    );
    assert!(h.ends_with("; or, if `max` is a parameter of its own, write `max: {value: 5}` for a parameter of that name"), "{h}");
    // Parameters named like fields, with a specification, are parameters.
    let v = ok(&format!(
        "{HEAD}  min: {{values: [1, 2]}}\n  q: {{min: 1, max: 4}}\n"
    ));
    assert_eq!(v.config.parameters.len(), 2);
    // Other names keep the constant-or-choice hint.
    let h = hint_at(&format!("{HEAD}  lr: 0.1\n"), "parameters.lr");
    assert!(
        h.starts_with("write `lr: {value: 0.1}` for a constant"),
        "{h}"
    );
}

#[test]
fn optuna_and_ray_tune_keys_are_told_the_sweep_files_word() {
    let metric = |key: &str, value: &str| {
        hint_at(
            &format!("program: t.py\nmethod: bayes\nmetric: {{name: loss, {key}: {value}}}\nparameters:\n  a: {{min: 1, max: 3}}\n"),
            &format!("metric.{key}"),
        )
    };
    // The goal of the value given, exactly.
    for (key, value, goal) in [
        ("direction", "maximize", "maximize"),
        ("direction", "minimize", "minimize"),
        ("direction", "MAXIMIZE", "maximize"),
        ("mode", "max", "maximize"),
        ("mode", "min", "minimize"),
    ] {
        let h = metric(key, value);
        assert!(
            h.ends_with(&format!("a sweep file writes `goal: {goal}`")),
            "{h}"
        );
        assert!(!h.contains(" or "), "{h}");
    }
    assert!(metric("direction", "maximize").starts_with("`direction` is Optuna's word"));
    assert!(metric("mode", "max").starts_with("`mode` is Ray Tune's word"));
    // A value that names no goal: both are offered.
    let h = metric("direction", "up");
    assert!(h.ends_with("`goal: minimize` or `goal: maximize`"), "{h}");
    // In a `metrics` entry too.
    let h = hint_at(
        "program: t.py\nmethod: bayes\nmetrics:\n  - {name: a, mode: max}\n  - {name: b, goal: minimize}\nparameters:\n  a: {min: 1, max: 3}\n",
        "metrics[0].mode",
    );
    assert!(h.ends_with("`goal: maximize`"), "{h}");
    let param = |fields: &str, key: &str| {
        hint_at(
            &format!("{HEAD}  lr: {{{fields}}}\n"),
            &format!("parameters.lr.{key}"),
        )
    };
    assert!(param("low: 0.001, high: 0.1", "low").starts_with("did you mean `min`?"));
    assert!(param("low: 0.001, high: 0.1", "high").starts_with("did you mean `max`?"));
    assert!(param("lower: 0.001, upper: 0.1", "upper").starts_with("did you mean `max`?"));
    assert!(param("min: 0.001, max: 0.1, log: true", "log")
        .contains("distribution: log_uniform_values"));
    assert!(param("min: 1, max: 9, step: 2", "step").contains("q_uniform"));
    assert!(param("choices: [1, 2]", "choices").starts_with("did you mean `values`?"));
    // One error per mistake: `low` and `high` are not also reported as missing bounds.
    let errs = errors(&format!("{HEAD}  lr: {{low: 0.001, high: 0.1}}\n"));
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn a_misspelt_field_of_a_parameter_is_one_error_with_the_field_it_stands_for() {
    for (spec, typo, field) in [
        ("{distribution: uniform, mni: 0.1, max: 1.0}", "mni", "min"),
        (
            "{distribution: log_uniform_values, min: 0.1, mx: 1.0}",
            "mx",
            "max",
        ),
        ("{min: 0.1, maxx: 1.0}", "maxx", "max"),
        (
            "{distribution: q_uniform, min: 0, max: 9, qq: 3}",
            "qq",
            "q",
        ),
        ("{valeus: [1, 2]}", "valeus", "values"),
    ] {
        let errs = errors(&format!("{HEAD}  lr: {spec}\n"));
        assert_eq!(errs.len(), 1, "{spec}: {errs:#?}");
        assert_eq!(errs[0].0, format!("parameters.lr.{typo}"), "{spec}");
        let hint = match parse_str(&format!("{HEAD}  lr: {spec}\n"), "sweep.yaml") {
            Err(e) => e
                .errors()
                .next()
                .and_then(|d| d.hint.clone())
                .unwrap_or_default(),
            Ok(_) => unreachable!(),
        };
        assert_eq!(hint, format!("did you mean `{field}`?"), "{spec}");
    }
}

#[test]
fn two_integer_bounds_one_apart_warn_that_they_are_two_integers() {
    let v = ok(&format!("{HEAD}  dropout: {{min: 0, max: 1}}\n  n: {{min: 1, max: 8}}\n  p: {{distribution: int_uniform, min: 0, max: 1}}\n  r: {{min: 0, max: 1.0}}\n"));
    let on: Vec<&str> = v.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(on, ["parameters.dropout"], "{:#?}", v.warnings);
    let w = &v.warnings[0];
    assert!(
        w.message.contains("only the values 0 and 1"),
        "{}",
        w.message
    );
    assert!(w.hint.as_deref().unwrap_or("").contains("`min: 0.0`"));
    assert_eq!(
        dist(&v, "dropout"),
        Distribution::IntUniform { min: 0, max: 1 }
    );
}

#[test]
fn run_time_limit_is_a_duration_and_absent_by_default() {
    let base = "program: t.py\nmethod: random\nparameters: {a: {values: [1, 2]}}\n";
    assert_eq!(ok(base).config.run_time_limit_s, None);
    let v = ok(&format!("{base}run_time_limit: 30m\n"));
    assert_eq!(v.config.run_time_limit_s, Some(1800.0));
    assert_eq!(
        ok(&format!("{base}run_time_limit: 90\n"))
            .config
            .run_time_limit_s,
        Some(90.0)
    );
    // Left out of the serialized config when absent: existing sweeps keep their hash.
    let json = serde_json::to_value(&ok(base).config).unwrap();
    assert!(json.get("run_time_limit_s").is_none());
    one_error(
        &format!("{base}run_time_limit: soon\n"),
        "run_time_limit",
        4,
        "expected a positive duration",
    );
}

/// A `run_cap` beyond a finite space that bayes or tpe runs once each is warned about at
/// `run_cap` (W&B's bayes would repeat up to it); not with `allow_repeats`, not for a grid
/// (W&B's grid ends there too), not for a cap within the space.
#[test]
fn a_run_cap_beyond_a_finite_space_that_runs_once_each_is_warned_about() {
    let lists = "parameters: {a: {values: [1, 2, 3]}, b: {values: [x, y]}}\n";
    let warned = |text: &str| {
        ok(text)
            .warnings
            .iter()
            .filter(|w| w.path == "run_cap")
            .map(|w| (w.location.map_or(0, |l| l.line), w.message.clone()))
            .collect::<Vec<_>>()
    };
    for method in ["bayes", "tpe"] {
        let said = warned(&format!(
            "method: {method}\nmetric: {{name: m}}\nrun_cap: 10\n{lists}"
        ));
        assert_eq!(said.len(), 1, "{method}: {said:?}");
        assert_eq!(said[0].0, 3);
        assert!(
            said[0].1.contains("more than the 6 configurations")
                && said[0].1.contains(&format!("`{method}` runs each once")),
            "{said:?}"
        );
    }
    let bayes = "method: bayes\nmetric: {name: m}\n";
    assert!(warned(&format!("{bayes}run_cap: 10\nallow_repeats: true\n{lists}")).is_empty());
    assert!(warned(&format!("{bayes}run_cap: 6\n{lists}")).is_empty());
    assert!(warned(&format!("method: grid\nrun_cap: 10\n{lists}")).is_empty());
    let continuous = "parameters: {lr: {min: 0.0, max: 1.0}}\n";
    assert!(warned(&format!("{bayes}run_cap: 10\n{continuous}")).is_empty());
}

#[test]
fn expected_runs_are_the_finite_space_capped_by_run_cap() {
    let expected = |text: &str| ok(text).config.expected_runs();
    let lists = "parameters: {a: {values: [1, 2, 3]}, b: {values: [x, y]}}\n";
    assert_eq!(expected(&format!("method: grid\n{lists}")), Some(6));
    assert_eq!(
        expected(&format!("method: grid\nrun_cap: 4\n{lists}")),
        Some(4)
    );
    assert_eq!(
        expected(&format!("method: grid\nrun_cap: 40\n{lists}")),
        Some(6)
    );
    // bayes and tpe run each configuration of a finite space once, unless told to repeat.
    let bayes = format!("method: bayes\nmetric: {{name: m}}\n{lists}");
    assert_eq!(expected(&bayes), Some(6));
    assert_eq!(expected(&format!("allow_repeats: true\n{bayes}")), None);
    // Random search draws with replacement unless told otherwise: only run_cap ends it.
    assert_eq!(expected(&format!("method: random\n{lists}")), None);
    assert_eq!(
        expected(&format!(
            "method: random\nsample_without_replacement: true\n{lists}"
        )),
        Some(6)
    );
    let continuous = "parameters: {lr: {min: 0.0, max: 1.0}}\n";
    assert_eq!(expected(&format!("method: random\n{continuous}")), None);
    assert_eq!(
        expected(&format!("method: random\nrun_cap: 7\n{continuous}")),
        Some(7)
    );
    assert_eq!(
        expected(&format!("method: bayes\nmetric: {{name: m}}\n{continuous}")),
        None
    );
}

#[test]
fn an_unclosed_bracket_is_reported_on_its_own_line() {
    let errs =
        errors("program: t.py\nmetric: {name: loss\nparameters:\n  lr: {min: 0.1, max: 1.0}\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].1, 2, "{errs:#?}");
    assert!(
        errs[0]
            .2
            .contains("this `{` is not closed (the parser stopped at line 3"),
        "{errs:#?}"
    );
    let errs = errors("program: t.py\ncommand: [${env}, ${interpreter}, ${program}]\nparameters:\n  lr: {min: 0.1, max: 1.0}\n");
    assert_eq!(errs[0].1, 2, "{errs:#?}");
}
