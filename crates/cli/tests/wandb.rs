//! Training scripts written for W&B, run unchanged by the real binary (`tune --wandb`, `wandb:
//! true` in the sweep file, `run --wandb`): `import wandb` finds hyperdial's W&B-compatible
//! module, and the runs record the sweep's values over the script's defaults, the metrics,
//! the summary of `define_metric`, and the git commit of the directory they ran in.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// Make the scratch directory a git work tree with one commit; its commit, or `None` when git
/// is not installed.
fn git_commit_all(s: &Scratch) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&s.dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    git(&["init", "-q"])?;
    std::fs::write(s.dir.join(".gitignore"), ".hyperdial/\n").unwrap();
    git(&["add", "-A"])?;
    git(&["commit", "-qm", "training code"])?;
    git(&["rev-parse", "HEAD"])
}

/// The runs of the only sweep in the scratch database, read through a `hyperdial server`.
fn runs_of(s: &Scratch) -> (ServerProcess, Vec<Value>) {
    let server = ServerProcess::start(s, &s.dir.join(".hyperdial/hyperdial.db"), free_port());
    let id = sweep_id(s, &server.url);
    let runs = json_of(s, &["runs", &id, "--json", "--server", &server.url]);
    let runs = runs.as_array().unwrap().clone();
    (server, runs)
}

/// The documented W&B shape: defaults passed to `init`, read back with attribute and item
/// access; the sweep file asks for the module with `wandb: true`.
#[test]
fn wandb_script_with_defaults_runs_unchanged_and_records_defaults_and_git() {
    let s = Scratch::new("wandb-defaults");
    s.write(
        "train.py",
        r#"import wandb

defaults = {"lr": 0.1, "batch_size": 16, "epochs": 3, "optimizer": "sgd"}
wandb.init(project="shim-test", config=defaults)
config = wandb.config
lr = wandb.config.lr
batch_size = wandb.config["batch_size"]
for epoch in range(config.epochs):
    loss = lr * batch_size / (epoch + 1)
    wandb.log({"epoch": epoch, "loss": loss})
wandb.summary["final_loss"] = loss
wandb.finish()
"#,
    );
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nwandb: true\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {values: [0.5, 0.25]}\n  batch_size: {values: [8, 32]}\n",
    );
    let commit = git_commit_all(&s);
    let out = s.run(&["tune", "sweep.yaml", "--port", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("4 finished"), "{}", text(&out));
    let (_server, runs) = runs_of(&s);
    assert_eq!(runs.len(), 4);
    for r in &runs {
        let lr = r["params"]["lr"].as_f64().unwrap();
        let bs = r["params"]["batch_size"].as_f64().unwrap();
        assert_eq!(r["state"], "finished", "{r:#}");
        assert_eq!(
            r["summary"]["loss"].as_f64().unwrap(),
            lr * bs / 3.0,
            "{r:#}"
        );
        assert_eq!(r["summary"]["final_loss"].as_f64().unwrap(), lr * bs / 3.0);
        assert_eq!(r["metric"].as_f64().unwrap(), lr * bs / 3.0);
        // The run's config: the script's defaults with the sweep's values over them; the
        // sweep's values alone in `params`.
        assert_eq!(r["config"]["lr"].as_f64().unwrap(), lr, "{r:#}");
        assert_eq!(r["config"]["batch_size"].as_f64().unwrap(), bs);
        assert_eq!(r["config"]["epochs"], 3, "{r:#}");
        assert_eq!(r["config"]["optimizer"], "sgd");
        assert_eq!(r["params"].as_object().unwrap().len(), 2, "{r:#}");
        if let Some(commit) = &commit {
            assert_eq!(r["git"]["commit"].as_str(), Some(commit.as_str()), "{r:#}");
            assert_eq!(r["git"]["dirty"], false, "{r:#}");
        }
    }
}

/// A script that reads its config from `${args_json_file}` (the command passes the file's
/// path) and logs nested dicts, asked for with `--wandb`; a changed tracked file makes the
/// recorded tree dirty.
#[test]
fn wandb_script_reading_args_json_file_runs_with_the_flag() {
    let s = Scratch::new("wandb-argsjson");
    s.write(
        "train_json.py",
        r#"import argparse
import json

import wandb

parser = argparse.ArgumentParser()
parser.add_argument("--config_file")
args = parser.parse_args()
with open(args.config_file) as f:
    cfg = json.load(f)

with wandb.init(config=cfg, settings=wandb.Settings(start_method="thread")) as run:
    lr = run.config["optimizer"]["lr"]
    for step in range(4):
        run.log({"val": {"loss": lr * (4 - step)}, "train": {"loss": lr * (5 - step)}})
    run.summary["seen_keys"] = sorted(run.config.keys())
"#,
    );
    s.write(
        "sweep.yaml",
        "program: train_json.py\nmethod: grid\nmetric: {name: val.loss, goal: minimize}\ncommand: [python3, train_json.py, --config_file, \"${args_json_file}\"]\nparameters:\n  optimizer:\n    parameters:\n      lr: {values: [0.5, 0.125]}\n  seed: {value: 7}\n",
    );
    let commit = git_commit_all(&s);
    if commit.is_some() {
        s.write(
            "train_json.py",
            &(std::fs::read_to_string(s.dir.join("train_json.py")).unwrap() + "# changed\n"),
        );
    }
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--wandb"]);
    assert!(out.status.success(), "{}", text(&out));
    let (_server, runs) = runs_of(&s);
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r["state"], "finished", "{r:#}");
        let lr = r["params"]["optimizer.lr"].as_f64().unwrap();
        assert_eq!(r["summary"]["val.loss"].as_f64().unwrap(), lr);
        assert_eq!(r["summary"]["train.loss"].as_f64().unwrap(), 2.0 * lr);
        assert_eq!(r["metric"].as_f64().unwrap(), lr, "{r:#}");
        assert_eq!(
            r["summary"]["seen_keys"],
            serde_json::json!(["optimizer", "seed"])
        );
        if commit.is_some() {
            assert_eq!(r["git"]["dirty"], true, "{r:#}");
        }
    }
}

/// `define_metric("val/loss", step_metric="epoch", summary="min")` with the sweep metric
/// `val/loss`: the run's summary and metric are the minimum (not the last value), and, as in
/// W&B, the rows keep their own steps with the epoch beside `val/loss`.
#[test]
fn define_metric_min_summary_and_step_metric_reach_the_sweep() {
    let s = Scratch::new("wandb-definemetric");
    s.write(
        "train.py",
        r#"import wandb

run = wandb.init(config={"scale": 1.0, "batches": 3})
wandb.define_metric("epoch")
wandb.define_metric("val/loss", step_metric="epoch", summary="min")
curve = [3.0, 1.0, 2.0]
for epoch, value in enumerate(curve):
    for batch in range(run.config.batches):
        wandb.log({"train/loss": value + batch})
    wandb.log({"epoch": epoch, "val/loss": value * run.config.scale})
"#,
    );
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: val/loss, goal: minimize}\nparameters:\n  scale: {values: [1.0, 4.0]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--wandb"]);
    assert!(out.status.success(), "{}", text(&out));
    let (server, runs) = runs_of(&s);
    assert_eq!(runs.len(), 2);
    for r in &runs {
        let scale = r["params"]["scale"].as_f64().unwrap();
        assert_eq!(r["state"], "finished", "{r:#}");
        assert_eq!(r["summary"]["val/loss"].as_f64().unwrap(), scale, "{r:#}");
        assert_eq!(r["metric"].as_f64().unwrap(), scale, "{r:#}");
        assert_eq!(r["config"]["batches"], 3, "{r:#}");
        let id = r["id"].as_str().unwrap();
        let run: Value =
            serde_json::from_str(&http_get(&format!("{}/api/v1/runs/{id}", server.url))).unwrap();
        let steps: Vec<(i64, f64, f64)> = run["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| {
                let v = p["values"]["val/loss"].as_f64()?;
                let epoch = p["values"]["epoch"].as_f64()?;
                Some((p["step"].as_i64().unwrap(), epoch, v))
            })
            .collect();
        assert_eq!(
            steps,
            vec![
                (3, 0.0, 3.0 * scale),
                (7, 1.0, scale),
                (11, 2.0, 2.0 * scale)
            ],
            "{run:#}"
        );
    }
}

/// `hyperdial run --wandb -- python3 script.py` tracks a W&B script outside any sweep.
#[test]
fn run_with_wandb_flag_tracks_a_wandb_script() {
    let s = Scratch::new("wandb-run");
    s.write(
        "train.py",
        r#"import wandb

with wandb.init(project="solo", name="first", config={"lr": 0.5}) as run:
    wandb.config.update({"extra": 2})
    for step in range(3):
        wandb.log({"loss": run.config.lr / (step + 1)})
    print("run name:", run.name)
"#,
    );
    let server = ServerProcess::start(&s, &s.dir.join("solo.db"), free_port());
    let out = s.run(&[
        "run",
        "--wandb",
        "--server",
        &server.url,
        "--",
        "python3",
        "train.py",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("run name: first"), "{}", text(&out));
    let list: Value = serde_json::from_str(&http_get(&format!(
        "{}/api/v1/runs?project=default",
        server.url
    )))
    .unwrap();
    let runs: Vec<&Value> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["summary"]["loss"].is_number())
        .collect();
    assert_eq!(runs.len(), 1, "{list:#}");
    let r = runs[0];
    assert_eq!(r["state"], "finished", "{r:#}");
    assert_eq!(r["summary"]["loss"].as_f64().unwrap(), 0.5 / 3.0);
    assert_eq!(r["config"]["lr"].as_f64().unwrap(), 0.5, "{r:#}");
    assert_eq!(r["config"]["extra"], 2, "{r:#}");
}

/// `wandb.finish(exit_code=N)` with N ≠ 0 marks the run failed, as W&B does, although the
/// process then exits 0: under `tune` (an agent) and under `hyperdial run`.
#[test]
fn wandb_finish_with_an_exit_code_fails_the_run_whose_process_exits_0() {
    let s = Scratch::new("wandb-exitcode");
    s.write(
        "train.py",
        r#"import wandb

run = wandb.init(config={"code": 0})
wandb.log({"loss": 0.5})
wandb.finish(exit_code=run.config.code)
print("after finish")
"#,
    );
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  code: {values: [0, 3]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--wandb"]);
    let (server, runs) = runs_of(&s);
    assert_eq!(runs.len(), 2, "{}", text(&out));
    for r in &runs {
        let code = r["params"]["code"].as_i64().unwrap();
        if code == 0 {
            assert_eq!(r["state"], "finished", "{r:#}");
            assert_eq!(r["exit_code"], 0, "{r:#}");
        } else {
            assert_eq!(r["state"], "failed", "{r:#}");
            assert_eq!(r["exit_code"], code, "{r:#}");
            assert!(
                r["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("wandb.finish(exit_code=3)")),
                "{r:#}"
            );
        }
    }
    // The same outside a sweep.
    s.write(
        "fail.py",
        "import wandb\nwandb.init()\nwandb.log({'loss': 1.0})\nwandb.finish(exit_code=2)\n",
    );
    let out = s.run(&[
        "run",
        "--wandb",
        "--server",
        &server.url,
        "--",
        "python3",
        "fail.py",
    ]);
    let list: Value = serde_json::from_str(&http_get(&format!(
        "{}/api/v1/runs?project=default",
        server.url
    )))
    .unwrap();
    let failed: Vec<&Value> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["sweep"].is_null() && r["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}\n{list:#}", text(&out));
    assert_eq!(failed[0]["exit_code"], 2, "{list:#}");
}

/// The shape most sweep files of the wild use: the default command passes `--name=value`
/// flags, the script parses them with argparse and hands the namespace to W&B, then adds more
/// keys with `wandb.config.update`.
#[test]
fn argparse_script_with_config_update_runs_under_the_default_command() {
    let s = Scratch::new("wandb-argparse");
    s.write(
        "train.py",
        r#"import argparse
import math

import wandb


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--data_dir", default="data")
    args = parser.parse_args()
    run = wandb.init(project="argparse-demo", config=args)
    wandb.config.update({"n_params": args.hidden * 10, "learning_rate": 123.0})
    for step in range(5):
        loss = abs(math.log10(wandb.config.learning_rate) + 2) + 1.0 / (step + 1)
        run.log({"loss": loss, "hidden": wandb.config.hidden})
    run.finish()


if __name__ == "__main__":
    main()
"#,
    );
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: random\nrun_cap: 3\nwandb: true\nmetric:\n  name: loss\n  goal: minimize\nparameters:\n  learning_rate:\n    distribution: log_uniform_values\n    min: 1e-4\n    max: 1e-1\n  hidden:\n    values: [8, 32]\ncommand:\n  - ${env}\n  - ${interpreter}\n  - ${program}\n  - ${args}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let (_server, runs) = runs_of(&s);
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!(r["state"], "finished", "{r:#}");
        let lr = r["params"]["learning_rate"].as_f64().unwrap();
        let hidden = r["params"]["hidden"].as_i64().unwrap();
        // The sweep's value stayed locked against the script's later update.
        assert_eq!(r["config"]["learning_rate"].as_f64().unwrap(), lr, "{r:#}");
        assert_eq!(r["config"]["n_params"], hidden * 10, "{r:#}");
        assert_eq!(r["config"]["data_dir"], "data", "{r:#}");
        let want = (lr.log10() + 2.0).abs() + 0.2;
        assert!((r["metric"].as_f64().unwrap() - want).abs() < 1e-9, "{r:#}");
        assert_eq!(r["summary"]["hidden"].as_f64(), Some(hidden as f64));
    }
}

/// What the agent gives a W&B script beyond its config: W&B's `WANDB_RUN_ID`,
/// `WANDB_SWEEP_ID`, `WANDB_PROJECT` and the parameter file `WANDB_SWEEP_PARAM_PATH` names (as
/// W&B's agent sets them), `config-defaults.yaml` from the working
/// directory under the sweep's values, and W&B's submodules that integrations import
/// (transformers' Trainer callback: `wandb.sdk.lib.config_util`, `termwarn`, `run._label`).
#[test]
fn agent_gives_wandb_scripts_their_env_config_defaults_and_sdk_imports() {
    let s = Scratch::new("wandb-env");
    s.write(
        "config-defaults.yaml",
        "epochs:\n  desc: passes over the data\n  value: 3\nlr:\n  value: 0.9\n",
    );
    s.write(
        "train.py",
        r#"import os

import wandb
from wandb.sdk.lib.config_util import ConfigError

wandb.termwarn("starting", repeat=False)
run = wandb.init(config={"batch_size": 8})
wandb.run._label(code="transformers_trainer")
wandb.summary["env_ok"] = float(os.environ.get("WANDB_SWEEP_ID") == run.sweep_id
                                and os.environ.get("WANDB_RUN_ID") == run.id
                                and os.environ.get("WANDB_PROJECT") == run.project)
with open(os.environ["WANDB_SWEEP_PARAM_PATH"], encoding="utf-8") as f:
    wandb.summary["param_file_ok"] = float(
        f.read() == 'wandb_version: 1\n\n"lr":\n  value: %r\n' % wandb.config.lr)
for epoch in range(wandb.config.epochs):
    wandb.log({"loss": wandb.config.lr / (epoch + 1),
               "chart": wandb.plot.line(wandb.Table(columns=["x"]), "x", "x")})
"#,
    );
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {values: [0.5, 0.25]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--wandb"]);
    assert!(out.status.success(), "{}", text(&out));
    let (_server, runs) = runs_of(&s);
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r["state"], "finished", "{r:#}");
        let lr = r["params"]["lr"].as_f64().unwrap();
        assert_eq!(r["summary"]["env_ok"].as_f64(), Some(1.0), "{r:#}");
        assert_eq!(r["summary"]["param_file_ok"].as_f64(), Some(1.0), "{r:#}");
        // epochs from config-defaults.yaml, lr from the sweep over the file's 0.9.
        assert_eq!(r["config"]["epochs"], 3, "{r:#}");
        assert_eq!(r["config"]["lr"].as_f64(), Some(lr), "{r:#}");
        assert_eq!(r["config"]["batch_size"], 8, "{r:#}");
        assert_eq!(r["summary"]["loss"].as_f64(), Some(lr / 3.0), "{r:#}");
        // The chart is not a metric.
        assert!(r["summary"].get("chart").is_none(), "{r:#}");
    }
}

/// `WANDB_PROJECT=P hyperdial run --wandb -- ...` files the run under project P, as W&B does
/// with that variable; `--project` still wins.
#[test]
fn run_with_wandb_flag_takes_the_project_from_wandb_project() {
    let s = Scratch::new("wandb-run-project");
    // The script sees the project the run was filed under (`wandb.run.project`).
    s.write(
        "train.py",
        "import wandb\nrun = wandb.init()\nwandb.log({'loss': 0.5})\n\
         run.summary['project_seen'] = run.project\n",
    );
    let server = ServerProcess::start(&s, &s.dir.join("p.db"), free_port());
    for extra in [&[][..], &["--project", "flagged"][..]] {
        let mut args = vec!["run", "--wandb", "--server", &server.url];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "python3", "train.py"]);
        let out = s
            .cmd(&args)
            .env("WANDB_PROJECT", "from-env")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    for project in ["from-env", "flagged"] {
        let list: Value = serde_json::from_str(&http_get(&format!(
            "{}/api/v1/runs?project={project}",
            server.url
        )))
        .unwrap();
        let runs = list["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{project}: {list:#}");
        assert_eq!(runs[0]["summary"]["loss"].as_f64(), Some(0.5), "{list:#}");
        assert_eq!(runs[0]["summary"]["project_seen"], project, "{list:#}");
    }
}

/// A script written for W&B run without `--wandb` fails in `import wandb` (here the failure
/// is written out, so the test does not depend on whether the real package is installed):
/// `tune` says once how to run it.
#[test]
fn a_wandb_script_run_without_the_flag_gets_a_hint() {
    let s = Scratch::new("wandb-hint");
    s.write(
        "train.py",
        "import sys\nsys.stderr.write(\"ModuleNotFoundError: No module named 'wandb'\\n\")\nsys.exit(1)\n",
    );
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nparameters:\n  lr: {values: [0.1, 0.2]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0"]);
    let all = text(&out);
    assert_eq!(
        all.matches("failed importing `wandb`, which is not installed")
            .count(),
        1,
        "{all}"
    );
    assert!(all.contains("HYPERDIAL_WANDB=1"), "{all}");
    // The first run's failure stops tune: the second configuration never ran, and tune
    // exits 1.
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("run #2 started"), "{all}");
    // The error says why; no line about a metric points elsewhere.
    assert!(!all.contains("no run reported the metric"), "{all}");
    // With the flag the module is there and the hint is not given.
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--wandb", "--new"]);
    assert!(!text(&out).contains("failed importing"), "{}", text(&out));
}

/// A script written for W&B run by `hyperdial agent` without the module, where the real
/// `wandb` package is installed (here a stand-in on `PYTHONPATH` that fails as the real one
/// does without an API key): the agent says that the real package was imported and how to use
/// hyperdial's module instead, and stops at that first run, which every run would repeat. `HYPERDIAL_WANDB=1` in the agent's environment (what a
/// job script sets) does what `--wandb` does: the runs finish with their metric, no hint.
#[test]
fn an_agent_names_the_real_wandb_package_and_hyperdial_wandb_turns_the_module_on() {
    let s = Scratch::new("wandb-real-package");
    std::fs::create_dir_all(s.dir.join("site/wandb")).unwrap();
    s.write(
        "site/wandb/errors.py",
        "class Error(Exception):\n    pass\n\nclass UsageError(Error):\n    pass\n",
    );
    s.write(
        "site/wandb/__init__.py",
        "from wandb import errors\n\n\
         def init(*args, **kwargs):\n    \
         raise errors.UsageError('api_key not configured (no-tty). call wandb.login(key=[your_api_key])')\n",
    );
    s.write(
        "train.py",
        "import wandb\nwandb.init()\nwandb.log({'loss': wandb.config.lr})\nwandb.finish()\n",
    );
    let site = s.dir.join("site");
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    // A new sweep each time (its own name, so not the finished one of the same file).
    let sweeps = std::cell::Cell::new(0);
    let new_sweep = || {
        sweeps.set(sweeps.get() + 1);
        let yaml = format!(
            "name: case-{}\nprogram: train.py\nmethod: grid\nmetric: {{name: loss}}\n\
             parameters:\n  lr: {{values: [0.1, 0.2]}}\n",
            sweeps.get()
        );
        create_sweep(&s, &server.url, &yaml)
    };
    let agent = |env: &[(&str, &str)]| {
        let id = new_sweep();
        let mut cmd = s.cmd(&["agent", &id, "--server", &server.url]);
        cmd.env("PYTHONPATH", &site);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let runs = json_of(&s, &["runs", &id, "--json", "--server", &server.url]);
        (out, runs.as_array().unwrap().clone())
    };

    let (out, runs) = agent(&[]);
    let all = text(&out);
    // Its first run failed for want of an account, as every run would: the agent stops.
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_eq!(
        all.matches("failed in the real `wandb` package").count(),
        1,
        "{all}"
    );
    assert!(
        all.contains("The agent stopped: every run of sweep"),
        "{all}"
    );
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert!(
        all.contains("so that hyperdial's compatible module records the run"),
        "{all}"
    );
    for switch in ["`wandb: true`", "`--wandb`", "HYPERDIAL_WANDB=1"] {
        assert!(all.contains(switch), "{switch}: {all}");
    }
    assert!(runs.iter().all(|r| r["state"] == "failed"), "{runs:#?}");

    for off in ["0", "false"] {
        let (out, runs) = agent(&[("HYPERDIAL_WANDB", off)]);
        assert!(
            text(&out).contains("failed in the real `wandb` package"),
            "HYPERDIAL_WANDB={off}: {}",
            text(&out)
        );
        assert!(runs.iter().all(|r| r["state"] == "failed"), "{runs:#?}");
    }

    let (out, runs) = agent(&[("HYPERDIAL_WANDB", "1")]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("`wandb`"), "{all}");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for r in &runs {
        assert_eq!(r["state"], "finished", "{r:#}");
        assert_eq!(r["metric"], r["params"]["lr"], "{r:#}");
    }

    // A value that is not a yes or a no is refused, naming the variable and what it takes.
    let id = new_sweep();
    let out = s
        .cmd(&["agent", &id, "--server", &server.url])
        .env("HYPERDIAL_WANDB", "maybe")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("HYPERDIAL_WANDB (or --wandb) takes 1 or 0"),
        "{}",
        text(&out)
    );
    let help = s.run(&["agent", "--help"]);
    assert!(text(&help).contains("HYPERDIAL_WANDB"), "{}", text(&help));
}
