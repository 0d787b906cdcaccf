//! Model-based search end to end with the real binary: `hyperdial tune` with 4 agents on a
//! `bayes` and a `tpe` sweep of a smooth function. The script appends what it ran and the
//! loss it got to `results.jsonl`, which the test reads back.

use std::path::PathBuf;
use std::process::{Command, Output};

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "hyperdial-e2e-search-{name}-{}",
            std::process::id()
        ));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("quad.py"),
            r#"
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--lr", type=float)
p.add_argument("--opt")
args, _ = p.parse_known_args()
import math
loss = (args.x - 0.3) ** 2 + (math.log10(args.lr) + 2.0) ** 2 / 4 + (0.0 if args.opt == "adam" else 0.3)
with open("results.jsonl", "a") as f:
    f.write(json.dumps({"x": args.x, "lr": args.lr, "opt": args.opt, "loss": loss}) + "\n")
print("hyperdial: " + json.dumps({"loss": loss}), flush=True)
"#,
        )
        .unwrap();
        Scratch { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_hyperdial"))
            .args(args)
            .current_dir(&self.dir)
            .env_remove("HYPERDIAL_SERVER")
            .env_remove("HYPERDIAL_TOKEN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hyperdial {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn tune(method: &str) {
    let s = Scratch::new(method);
    std::fs::write(
        s.dir.join("sweep.yaml"),
        format!(
            "program: quad.py\nmethod: {method}\nrun_cap: 28\nmetric: {{name: loss, goal: minimize}}\nparameters:\n  x: {{min: -2.0, max: 2.0}}\n  lr: {{distribution: log_uniform_values, min: 1e-5, max: 1.0}}\n  opt: {{values: [adam, sgd, rmsprop]}}\n"
        ),
    )
    .unwrap();
    s.run(&["tune", "sweep.yaml", "--agents", "4", "--port", "0"]);
    let text = std::fs::read_to_string(s.dir.join("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 28, "{text}");
    let configs: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| format!("{} {} {}", r["x"], r["lr"], r["opt"]))
        .collect();
    assert_eq!(configs.len(), 28, "repeated configurations: {text}");
    let loss = |r: &serde_json::Value| r["loss"].as_f64().unwrap();
    let first = rows[..8].iter().map(loss).fold(f64::INFINITY, f64::min);
    let later = rows[8..].iter().map(loss).fold(f64::INFINITY, f64::min);
    assert!(
        later < first,
        "{method}: best after the initial design {later} ≥ {first}\n{text}"
    );
}

#[test]
#[ignore = "not yet run: the server did not build in the shared tree when this was written; run with --ignored"]
fn bayes_with_four_agents_improves_on_its_initial_design() {
    tune("bayes");
}

#[test]
#[ignore = "not yet run: the server did not build in the shared tree when this was written; run with --ignored"]
fn tpe_with_four_agents_improves_on_its_initial_design() {
    tune("tpe");
}
