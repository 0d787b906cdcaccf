//! Signal against seed noise with the real binary: a tiny grid sweep whose metric is a
//! parameter plus noise drawn from the run's seed runs to its end; `hyperdial repeat --top 2
//! --seeds 3` queues the two best configurations three times each with new seeds; an agent
//! runs them (the finished sweep reopens for them and finishes again); `hyperdial noise`
//! shows 2 configurations × 3 seeds, the pooled seed noise, the spread across configurations
//! and their ratio, and whether the best is distinguishable from the runner-up. Once with a
//! seed parameter through a server, once without one (the seed in `HYPERDIAL_SEED` only) on
//! the local store, where `refine` and `budget` read without a server too.
//!
//! And the model's estimate of the best configuration: on a noisy grid whose best value is a
//! lucky draw far from the optimum, `tune` and `best` name the run the model estimates best,
//! and `best --estimate` prints it.

mod common;

use common::*;
use serde_json::Value;

/// The metric is `a` plus noise from the seed (the `--seed` argument when given, else
/// HYPERDIAL_SEED, else 0); the run also logs the seed its environment held.
const NOISY: &str = r#"
import argparse, json, os, random
p = argparse.ArgumentParser()
p.add_argument("--a", type=float)
p.add_argument("--seed", type=int, default=None)
args, _ = p.parse_known_args()
env = os.environ.get("HYPERDIAL_SEED")
seed = args.seed if args.seed is not None else int(env or 0)
loss = args.a + 0.1 * random.Random(seed * 7919 + int(args.a * 10)).gauss(0.0, 1.0)
print("hyperdial: " + json.dumps({"loss": loss, "env_seed": int(env) if env else -1}), flush=True)
"#;

fn repeats_of(runs: &[Value]) -> Vec<&Value> {
    runs.iter().filter(|r| !r["repeat_of"].is_null()).collect()
}

#[test]
fn repeat_through_the_seed_parameter_and_the_noise_report() {
    let s = Scratch::new("repeat-param");
    s.write("noisy.py", NOISY);
    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    let url = server.url.clone();
    let id = create_sweep(
        &s,
        &url,
        "program: noisy.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1.0, 2.0, 3.0, 4.0]}\n  seed: {value: 0}\n",
    );
    let out = s.run(&["agent", &id, "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    // Before any repeat: the report says how to get one.
    let out = s.run(&["noise", &id, "--server", &url]);
    assert!(text(&out).contains("no repeats yet"), "{}", text(&out));

    // A parameter the sweep does not have is refused, with the way out.
    let out = s.run(&["repeat", &id, "--param", "rng", "--server", &url]);
    assert!(!out.status.success());
    assert!(text(&out).contains("HYPERDIAL_SEED"), "{}", text(&out));

    let out = s.run(&[
        "repeat", &id, "--top", "2", "--seeds", "3", "--param", "seed", "--server", &url,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("queued 6 runs"), "{said}");
    assert!(
        said.contains(&format!("hyperdial agent {id} --server {url}")),
        "{said}"
    );
    // The report to read afterwards, from the same server.
    assert!(
        said.contains(&format!("then: hyperdial noise {id} --server {url}")),
        "{said}"
    );
    let sweep = json_of(&s, &["sweeps", "--json", "--server", &url]);
    assert_eq!(sweep[0]["state"], "running", "{sweep:#}");

    let out = s.run(&["agent", &id, "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 10, "4 grid runs and 6 repeats");
    let repeats = repeats_of(runs);
    assert_eq!(repeats.len(), 6);
    for r in &repeats {
        assert_eq!(r["state"], "finished", "{r:#}");
        let seed = r["seed"].as_i64().unwrap();
        // The seed is the run's parameter (so in its argv) and in its environment.
        assert_eq!(r["params"]["seed"], seed, "{r:#}");
        assert!(
            r["argv"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == &format!("--seed={seed}")),
            "{r:#}"
        );
        assert_eq!(
            r["summary"]["env_seed"].as_f64(),
            Some(seed as f64),
            "{r:#}"
        );
    }
    let sweep = json_of(&s, &["sweeps", "--json", "--server", &url]);
    assert_eq!(sweep[0]["state"], "finished", "{sweep:#}");

    let report = json_of(&s, &["noise", &id, "--json", "--server", &url]);
    let confs = report["configurations"].as_array().unwrap();
    assert_eq!(confs.len(), 2, "{report:#}");
    for (c, a) in confs.iter().zip([1.0, 2.0]) {
        assert_eq!(c["params"]["a"], a, "{report:#}");
        assert_eq!(c["count"], 3, "{report:#}");
        assert_eq!(c["seeds"], serde_json::json!([1, 2, 3]), "{report:#}");
    }
    // The values are the script's, recomputed here: the seed noise is 0.1 × a normal draw.
    let noise = report["seed_noise"].as_f64().unwrap();
    assert!(noise > 0.0 && noise < 0.4, "{report:#}");
    let spread = report["spread"].as_f64().unwrap();
    assert!(spread > 0.8, "{report:#}");
    let ratio = report["ratio"].as_f64().unwrap();
    assert!((ratio - noise / spread).abs() < 1e-12, "{report:#}");
    assert_eq!(report["spread_configurations"], 4, "{report:#}");
    let cmp = &report["comparison"];
    assert_eq!(cmp["best"], confs[0]["run"]);
    assert_eq!(cmp["distinguishable"], true, "{report:#}");
    let out = s.run(&["noise", &id, "--server", &url]);
    let shown = text(&out);
    assert!(shown.contains("noise / spread:"), "{shown}");
    // The configurations' params leave the seed out: their statistics cover seeds 1-3.
    assert!(
        shown.contains("a=1.0") && !shown.contains("seed="),
        "{shown}"
    );
    assert!(
        shown.contains("→ distinguishable (distinguishable when p < 0.05)"),
        "{shown}"
    );

    // `best` names the best run and, as comments, what the repeats say of it.
    let out = s.run(&["best", &id, "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let best = &json_of(&s, &["best", &id, "--format", "json", "--server", &url]);
    let own = if best["repeat_of"].is_null() {
        "# its configuration averages ".to_string()
    } else {
        format!(
            "# a repeat of run #1 (seed {}): that configuration averages ",
            best["seed"]
        )
    };
    assert!(said.contains(&own), "{said}");
    assert!(said.contains("over 3 finished repeats"), "{said}");
    assert!(
        said.contains("# best configuration by its repeats' mean: run #1 (mean ")
            && said.contains("; distinguishable from the runner-up (p = "),
        "{said}"
    );
    // Still a YAML file of the configuration.
    assert!(said.lines().any(|l| l.starts_with("a: 1")), "{said}");

    // Again: new seeds for the same configurations.
    let out = s.run(&[
        "repeat", &id, "--top", "1", "--seeds", "2", "--server", &url,
    ]);
    assert!(text(&out).contains("seeds 4, 5"), "{}", text(&out));
}

#[test]
fn repeat_without_a_seed_parameter_uses_the_environment_on_the_local_store() {
    let s = Scratch::new("repeat-env");
    s.write("noisy.py", NOISY);
    s.write(
        "sweep.yaml",
        "program: noisy.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1.0, 1.05, 3.0]}\nbudget:\n  stagnation: {runs: 100, min_delta: noise}\n",
    );
    let db = s.dir.join("local.db");
    let db = db.to_str().unwrap();
    let out = s.run(&["tune", "sweep.yaml", "--db", db, "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));
    let sweeps = json_of(&s, &["sweeps", "--json", "--db", db]);
    let id = sweeps[0]["id"].as_str().unwrap().to_string();

    let out = s.run(&["repeat", &id, "--top", "2", "--seeds", "3", "--db", db]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("no seed parameter"), "{said}");
    assert!(
        said.contains(&format!("hyperdial tune sweep.yaml --db {db}")),
        "{said}"
    );
    let out = s.run(&["tune", "sweep.yaml", "--db", db, "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));

    let runs = json_of(&s, &["runs", &id, "--json", "--db", db]);
    let runs = runs.as_array().unwrap();
    let repeats = repeats_of(runs);
    assert_eq!(repeats.len(), 6, "{runs:#?}");
    for r in &repeats {
        assert_eq!(r["state"], "finished", "{r:#}");
        assert_eq!(
            r["summary"]["env_seed"].as_f64(),
            r["seed"].as_i64().map(|s| s as f64),
            "{r:#}"
        );
        assert!(r["params"].get("seed").is_none(), "{r:#}");
    }
    let report = json_of(&s, &["noise", &id, "--json", "--db", db]);
    let confs = report["configurations"].as_array().unwrap();
    assert_eq!(confs.len(), 2, "{report:#}");
    assert!(confs.iter().all(|c| c["count"] == 3), "{report:#}");
    assert!(report["ratio"].as_f64().is_some(), "{report:#}");
    // 1.0 and 1.05 are closer than the seed noise (0.1): not distinguishable.
    assert_eq!(report["comparison"]["distinguishable"], false, "{report:#}");

    // The budget's stagnation now counts improvements beyond the measured seed noise, and
    // `budget` and `refine` read the local store without a server.
    let out = s.run(&["budget", &id, "--db", db]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the measured seed noise"),
        "{}",
        text(&out)
    );
    let noise = report["seed_noise"].as_f64().unwrap();
    let sweep = json_of(&s, &["sweeps", "--json", "--db", db]);
    assert!(
        (sweep[0]["budget"]["min_delta"].as_f64().unwrap() - noise).abs() < 1e-12,
        "{sweep:#}"
    );
    let out = s.run(&["refine", &id, "--top", "2", "--db", db]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("parent:"), "{}", text(&out));
}

/// A smooth loss over `x` with its optimum at 12, noise of about 0.2 on every run
/// (deterministic, from the parameters), unlucky near the optimum, and one lucky draw: the run
/// at `x = 6`, `rep = 1` reports the best value of all, though its configuration is poor
/// (its twin `rep = 2` and its neighbours say so).
const LUCKY: &str = r#"
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--x", type=int)
p.add_argument("--rep", type=int)
a, _ = p.parse_known_args()
noise = ((a.x * 37 + a.rep * 11) % 7 - 3) * 0.1
if 10 <= a.x <= 14:
    noise = abs(noise) + 0.1
if a.x == 6 and a.rep == 1:
    noise = -0.95
print("hyperdial: " + json.dumps({"loss": (a.x - 12) ** 2 / 40.0 + noise}), flush=True)
"#;

#[test]
fn the_model_estimate_of_the_best_is_not_a_lucky_draw() {
    let s = Scratch::new("estimate-lucky");
    s.write("lucky.py", LUCKY);
    let xs: Vec<String> = (0..20).map(|x| x.to_string()).collect();
    s.write(
        "sweep.yaml",
        &format!(
            "program: lucky.py\nmethod: grid\nmetric: {{name: loss}}\nparameters:\n  \
             x: {{values: [{}]}}\n  rep: {{values: [1, 2]}}\n",
            xs.join(", ")
        ),
    );
    let db = s.dir.join("local.db");
    let db = db.to_str().unwrap();
    // Too few results for an estimate: `best --estimate` says so and fails.
    s.write(
        "small.yaml",
        "program: lucky.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  x: {values: [1, 2]}\n  rep: {value: 1}\n",
    );
    let out = s.run(&["tune", "small.yaml", "--db", db, "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));
    let small = json_of(&s, &["sweeps", "--json", "--db", db])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.run(&["best", &small, "--estimate", "--db", db]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("too few for an estimate"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!(
            "`hyperdial best {small} --db {db}` prints the best run"
        )),
        "{}",
        text(&out)
    );
    // A sweep with several objectives has no single best configuration: said, exit 2.
    s.write(
        "multi.yaml",
        "program: lucky.py\nmethod: grid\nmetrics:\n  - {name: loss}\n  - {name: loss2}\nparameters:\n  x: {values: [1, 2]}\n  rep: {value: 1}\n",
    );
    s.run(&["tune", "multi.yaml", "--db", db, "--no-keep-serving"]);
    let sweeps = json_of(&s, &["sweeps", "--json", "--db", db]);
    let multi = sweeps
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["config"]["metrics"].is_array())
        .unwrap_or_else(|| panic!("{sweeps:#}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.run(&["best", &multi, "--estimate", "--db", db]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("several objectives"), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("`hyperdial best {multi} --db {db}` prints it")),
        "{}",
        text(&out)
    );

    let out = s.run(&["tune", "sweep.yaml", "--db", db, "--no-keep-serving"]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    let sweeps = json_of(&s, &["sweeps", "--json", "--db", db]);
    let id = sweeps
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] != small.as_str() && v["id"] != multi.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The best observed run is the lucky one; tune says the model estimates another.
    let best = json_of(&s, &["best", &id, "--json", "--db", db]);
    assert_eq!(best["params"]["x"], 6, "{best:#}");
    assert!(printed.contains("the model estimates run #"), "{printed}");
    // With --json, the whole estimate: the run and the figures.
    let estimated = json_of(&s, &["best", &id, "--estimate", "--json", "--db", db]);
    let x = estimated["run"]["params"]["x"].as_i64().unwrap();
    assert!((10..=14).contains(&x), "{estimated:#}");
    assert_eq!(estimated["run"]["state"], "finished");
    assert_eq!(estimated["differs"], true, "{estimated:#}");
    assert!(
        estimated["p_better"].as_f64().unwrap() >= 0.75,
        "{estimated:#}"
    );
    assert_eq!(estimated["observed_best"], best["id"], "{estimated:#}");
    // The suggested command reads the same store (--db given here).
    let yaml = s.run(&["best", &id, "--db", db]);
    let yaml = text(&yaml);
    assert!(yaml.contains("# the model estimates run #"), "{yaml}");
    assert!(
        yaml.contains(&format!("hyperdial best {id} --db {db} --estimate")),
        "{yaml}"
    );
    // Where standard output is for a script, the note goes to standard error.
    let args = s.run(&["best", &id, "--format", "args", "--db", db]);
    assert!(
        String::from_utf8_lossy(&args.stdout).contains("--x=6"),
        "{}",
        text(&args)
    );
    assert!(
        String::from_utf8_lossy(&args.stderr).contains("hyperdial: note: the model estimates"),
        "{}",
        text(&args)
    );
    let yaml = s.run(&["best", &id, "--estimate", "--db", db]);
    let yaml = text(&yaml);
    assert!(
        yaml.contains("the model's estimate of the best configuration among 40 results"),
        "{yaml}"
    );
    assert!(yaml.contains(&format!("x: {x}")), "{yaml}");
}
