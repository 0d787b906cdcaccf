//! End-to-end tests of `hyperdial validate`, driving the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn hyperdial(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyperdial"))
        .args(args)
        .env("HOME", "/home/test")
        .output()
        .expect("run hyperdial")
}

/// `text` written to `name` in `dir`, which removes it when the test ends.
fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SWEEP: &str = "name: demo
program: train.py
method: grid
metric: {name: val_loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 2, eta: 3}
command: ['${env}', '${interpreter}', '${program}', --data, '${envvar:HOME}/data', '${args}']
parameters:
  optimizer:
    parameters:
      lr: {values: [0.1, 0.01]}
      kind: {values: [adam, sgd]}
  layers: {min: 1, max: 3}
  tag: {value: 'a b; rm -rf /'}
";

#[test]
fn help_lists_commands() {
    let out = hyperdial(&["--help"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("validate"));
}

#[test]
fn prints_the_parsed_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "ok.yaml", SWEEP);
    let out = hyperdial(&["validate", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(text.contains("method          grid"), "{text}");
    assert!(text.contains("val_loss (minimize)"), "{text}");
    assert!(text.contains("12 configurations"), "{text}");
    assert!(text.contains("optimizer.lr"), "{text}");
    assert!(text.contains("int_uniform"), "{text}");
    assert!(text.contains("hyperband"), "{text}");
    // The argv: the env macro expanded, the value with shell metacharacters kept whole.
    assert!(
        text.contains(
            "/usr/bin/env python3 train.py --data /home/test/data \"--optimizer={'lr': 0.1, \
             'kind': 'adam'}\""
        ),
        "{text}"
    );
    assert!(text.contains("'--tag=a b; rm -rf /'"), "{text}");
}

#[test]
fn json_output_has_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "ok2.yaml", SWEEP);
    let out = hyperdial(&["validate", "--json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], true);
    assert_eq!(v["method"], "grid");
    assert_eq!(v["grid_size"], "12");
    assert_eq!(v["metric"]["goal"], "minimize");
    assert_eq!(v["parameters"][0]["name"], "optimizer.lr");
    assert_eq!(v["early_terminate"]["bands"][0], 2);
    let argv = v["example"]["argv"].as_array().unwrap();
    assert_eq!(argv[0], "/usr/bin/env");
    assert!(argv.iter().any(|a| a == "--tag=a b; rm -rf /"));
    // The run's config is re-nested.
    assert!(v["example"]["config"]["optimizer"]["lr"].is_number());
}

#[test]
fn a_grid_shows_its_first_run_not_a_draw() {
    let dir = tempfile::tempdir().unwrap();
    // The first grid point is lr 0.1, kind adam, layers 1 (the first parameter varies
    // slowest); no seed makes the example differ from it.
    let path = write(&dir, "grid-first.yaml", SWEEP);
    let path = path.to_str().unwrap();
    for seed in ["0", "1", "7"] {
        let out = hyperdial(&["validate", "--json", "--seed", seed, path]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["example"]["seed"], serde_json::Value::Null, "seed {seed}");
        assert_eq!(v["example"]["grid_index"], 0, "seed {seed}");
        let config = &v["example"]["config"];
        assert_eq!(config["optimizer"]["lr"], 0.1, "seed {seed}: {config}");
        assert_eq!(config["optimizer"]["kind"], "adam", "seed {seed}: {config}");
        assert_eq!(config["layers"], 1, "seed {seed}: {config}");
    }
    let out = hyperdial(&["validate", path]);
    let text = stdout(&out);
    assert!(text.contains("first run (grid position 0):"), "{text}");
    assert!(!text.contains("example run (seed"), "{text}");
    // Other methods draw it with the seed, as before.
    let random = write(
        &dir,
        "random-example.yaml",
        &SWEEP.replace("method: grid", "method: random"),
    );
    let out = hyperdial(&[
        "validate",
        "--json",
        "--seed",
        "3",
        random.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["example"]["seed"], 3);
    assert_eq!(v["example"]["grid_index"], serde_json::Value::Null);
}

#[test]
fn invalid_file_lists_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad.yaml",
        "method: grid\nprogram: t.py\nparameters:\n  lr:\n    min: 0.5\n    max: 0.1\n  opt: {vaules: [a]}\n",
    );
    let out = hyperdial(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "bad.yaml:5:10: error: parameters.lr.min: min (0.5) is greater than max (0.1)"
        ),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:7:9: error: parameters.opt.vaules: unknown key `vaules`"),
        "{err}"
    );
    assert!(err.contains("did you mean `values`?"), "{err}");
    assert!(err.contains("2 errors found"), "{err}");
}

#[test]
fn invalid_file_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad2.yaml",
        "method: bayes\nprogram: t.py\nparameters: {x: {min: 0.0, max: 1.0}}\n",
    );
    let out = hyperdial(&["validate", "--json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["path"], "metric");
    assert_eq!(v["errors"][0]["severity"], "error");
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = hyperdial(&["validate", "/nonexistent/sweep.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/sweep.yaml: error: cannot read the file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn warnings_do_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "warn.yaml", "entity: me\nprogram: t.py\nmethod: random\nparameters: {x: {distribution: log_uniform, min: -5, max: 0}}\n");
    let out = hyperdial(&["validate", path.to_str().unwrap()]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("warning: entity"), "{err}");
    assert!(err.contains("natural-log exponents"), "{err}");
}

#[test]
fn optuna_study_keys_and_a_maximized_metric_left_to_minimize_get_the_exact_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "optuna.yaml",
        "program: t.py\nmethod: random\ndirection: maximize\nmetric:\n  name: val_accuracy\nn_trials: 50\nparameters:\n  bs:\n    values: 16, 32\n",
    );
    let out = hyperdial(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(":3:1: error: direction: unknown key `direction`\n  hint: `direction` is Optuna's study direction: move it under `metric:` as `goal: maximize`"), "{err}");
    assert!(err.contains("`run_cap: 50`"), "{err}");
    assert!(
        err.contains("hint: write a list, e.g. `values: [16, 32]`"),
        "{err}"
    );
    // The misplaced direction is the one report about the goal.
    assert!(!err.contains("will be minimized"), "{err}");

    // Without it, the metric is minimized: a warning, and the file is valid.
    let path = write(
        &dir,
        "accuracy.yaml",
        "program: t.py\nmethod: random\nmetric:\n  name: val_accuracy\nparameters:\n  bs:\n    values: [16, 32]\n",
    );
    let out = hyperdial(&["validate", path.to_str().unwrap()]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(":4:9: warning: metric: `val_accuracy` will be minimized"),
        "{err}"
    );
    assert!(
        err.contains("hint: if higher is better, write `goal: maximize` beside `name`"),
        "{err}"
    );
}

#[test]
fn tune_and_sweep_print_validation_errors_once_prefixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "b1.yaml",
        "method: grid\nprogram: t.py\nparameters:\n  lr:\n    min: 0.5\n    max: 0.1\n",
    );
    for command in ["tune", "sweep"] {
        let out = hyperdial(&[command, path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("b1.yaml:5:10: error: parameters.lr.min"),
            "{err}"
        );
        assert!(
            !err.contains("error: /") && !err.contains("error: b1"),
            "{err}"
        );
    }
}

#[test]
fn help_texts_hold_no_rustdoc_link_syntax_or_empty_env_values() {
    let commands = [
        "validate", "space", "tune", "ui", "server", "sweep", "agent", "sweeps", "runs", "best",
        "output", "refine", "lr-find", "repeat", "noise", "export", "budget", "pause", "retry",
        "run", "sync",
    ];
    for command in commands {
        let out = hyperdial(&[command, "--help"]);
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        let help = stdout(&out);
        assert!(
            !help.contains("[`") && !help.contains("`]"),
            "{command} --help: {help}"
        );
        // An environment variable is named bare: never `[env: NAME=]` with an empty value.
        assert!(!help.contains("=]"), "{command} --help: {help}");
    }
}

/// A numeric `values` list of three or more is a W&B `categorical`, searched by `bayes`,
/// `tpe` and `sobol` as ordered values (log-spaced when geometric): validate says which, in
/// text and JSON, so the summary matches what the search does; `grid` and a two-value list
/// say nothing more.
#[test]
fn numeric_lists_searched_as_ordered_values_are_shown_so() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = |method: &str| {
        format!(
            "program: train.py\nmethod: {method}\nmetric: {{name: loss}}\nparameters:\n  \
             batch_size: {{values: [16, 32, 64, 128]}}\n  depth: {{values: [1, 2, 3, 4]}}\n  \
             act: {{values: [relu, tanh, gelu]}}\n  two: {{values: [1, 2]}}\n"
        )
    };
    let path = write(&dir, "lists.yaml", &sweep("bayes"));
    let out = hyperdial(&["validate", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    assert!(
        line("batch_size").ends_with("(4 values), searched as ordered values (log-spaced)"),
        "{text}"
    );
    assert!(
        line("depth").ends_with("(4 values), searched as ordered values"),
        "{text}"
    );
    assert!(!line("act").contains("ordered"), "{text}");
    assert!(!line("two").contains("ordered"), "{text}");
    let out = hyperdial(&["validate", "--json", path.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["parameters"][0]["ordered"]["log"], true, "{v:#}");
    assert_eq!(v["parameters"][1]["ordered"]["log"], false, "{v:#}");
    assert!(v["parameters"][2]["ordered"].is_null(), "{v:#}");
    // A grid runs every value: nothing to say.
    let path = write(&dir, "lists-grid.yaml", &sweep("grid"));
    let out = hyperdial(&["validate", path.to_str().unwrap()]);
    assert!(!stdout(&out).contains("ordered"), "{}", stdout(&out));
}

#[test]
fn validate_shows_the_retry_policy_and_the_run_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "retry-limit.yaml",
        "program: t.py\nmethod: random\nretry: {max: 2, on: [failed, crashed]}\nrun_time_limit: 90m\nparameters: {a: {values: [1, 2]}}\n",
    );
    let out = hyperdial(&["validate", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("up to 2 more run(s) of a configuration whose run ended failed or crashed"),
        "{text}"
    );
    assert!(text.contains("run_time_limit  90m per run"), "{text}");
    // The default policy is not repeated.
    let plain = write(
        &dir,
        "no-retry.yaml",
        "program: t.py\nmethod: random\nparameters: {a: {values: [1, 2]}}\n",
    );
    let out = hyperdial(&["validate", plain.to_str().unwrap()]);
    assert!(!stdout(&out).contains("retry "), "{}", stdout(&out));
}

/// A script the sweep file's directory does not hold is a warning (an agent elsewhere may
/// have it), with the file meant when one there is close; `tune` refuses to start with the
/// same suggestion.
#[test]
fn a_missing_program_is_a_warning_that_names_the_file_meant() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "train.py", "print('hyperdial: {\"loss\": 1}')\n");
    let typo = write(
        &dir,
        "typo.yaml",
        "method: random\nprogram: trian.py\nparameters:\n  x: {min: 0.0, max: 1.0}\n",
    );
    let out = hyperdial(&["validate", typo.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("typo.yaml:2:1: warning: program: `trian.py` is not in"),
        "{said}"
    );
    assert!(said.contains("did you mean `train.py`?"), "{said}");
    let tune = Command::new(env!("CARGO_BIN_EXE_hyperdial"))
        .args(["tune", typo.to_str().unwrap(), "--port", "0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!tune.status.success());
    assert!(
        stderr(&tune).contains("fix `program:` (did you mean `train.py`?)"),
        "{}",
        stderr(&tune)
    );
    let right = write(
        &dir,
        "right.yaml",
        "method: random\nprogram: train.py\nparameters:\n  x: {min: 0.0, max: 1.0}\n",
    );
    let out = hyperdial(&["validate", right.to_str().unwrap()]);
    assert!(!stderr(&out).contains("is not in"), "{}", stderr(&out));
}
