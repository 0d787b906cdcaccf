//! Coarse to fine with the real binary: a random sweep of a smooth function runs to its
//! `run_cap`; `hyperdial refine` writes a narrower file around its best runs; the refined
//! `bayes` sweep starts from the parent's runs inside the new space (its first suggestion is
//! counts those runs, which a sweep without them would not); a `prior_runs` id the server does not
//! know is refused with its file, line and key.

mod common;

use common::*;
use serde_json::Value;

const QUAD: &str = r#"
import argparse, json, math
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--lr", type=float)
p.add_argument("--opt")
args, _ = p.parse_known_args()
loss = (args.x - 0.3) ** 2 + (math.log10(args.lr) + 2.0) ** 2 / 4 + (0.0 if args.opt == "adam" else 1.0)
print("hyperdial: " + json.dumps({"loss": loss}), flush=True)
"#;

const COARSE: &str = "\
# coarse search
program: quad.py
method: random
run_cap: 24
metric: {name: loss, goal: minimize}
parameters:
  x: {min: -2.0, max: 2.0}
  lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0}
  opt: {values: [adam, sgd]}
";

#[test]
fn refine_narrows_and_the_refined_bayes_sweep_starts_from_the_parent_runs() {
    let s = Scratch::new("refine");
    s.write("quad.py", QUAD);
    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    let url = server.url.clone();
    let parent = create_sweep(&s, &url, COARSE);
    let out = s.run(&["agent", &parent, "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let runs = json_of(&s, &["runs", &parent, "--json", "--server", &url]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 24);
    let mut ranked: Vec<&Value> = runs.iter().filter(|r| r["metric"].is_f64()).collect();
    ranked.sort_by(|a, b| {
        a["metric"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["metric"].as_f64().unwrap())
    });

    let out = s.run(&[
        "refine",
        &parent,
        "--top",
        "4",
        "-o",
        "fine.yaml",
        "--server",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains("around its best 4 of 24 finished runs"),
        "{log}"
    );
    let fine = std::fs::read_to_string(s.dir.join("fine.yaml")).unwrap();
    assert!(
        fine.contains("# coarse search\nprogram: quad.py\n"),
        "{fine}"
    );
    assert!(fine.contains(&format!("parent: \"{parent}\"")), "{fine}");
    assert!(
        fine.contains(&format!("prior_runs: [\"{parent}\"]")),
        "{fine}"
    );
    // Each narrowed range is explained on standard error and in the file.
    assert!(log.contains("x: narrowed from uniform [-2, 2]"), "{log}");
    assert!(fine.contains("  # narrowed from uniform [-2, 2]"), "{fine}");
    // The new x range spans the best four runs and is narrower than the old one.
    let config = hyperdial_space::parse_str(&fine, "fine.yaml")
        .unwrap()
        .config;
    let (lo, hi) = config
        .parameter("x")
        .unwrap()
        .distribution
        .value_bounds()
        .unwrap();
    assert!(hi - lo < 4.0, "[{lo}, {hi}]");
    for r in &ranked[..4] {
        let x = r["params"]["x"].as_f64().unwrap();
        assert!(lo <= x && x <= hi, "{x} outside [{lo}, {hi}]\n{fine}");
    }

    // The parent's runs that lie inside the new space (at least the best four).
    let inside = runs
        .iter()
        .filter(|r| {
            hyperdial_space::lineage::inside(&config, r["params"].as_object().unwrap()).is_some()
        })
        .count() as u64;
    assert!(inside >= 4, "{inside}\n{fine}");
    assert!(
        log.contains(&format!(
            "{inside} runs of {parent} lie inside the new space"
        )),
        "{log}"
    );

    // The refined sweep as bayes starts from exactly those runs: its first suggestion sees
    // them (as observations of the model, or, while they are fewer than the initial design,
    // as the first points of the Sobol sequence it continues).
    let bayes = fine.replace("method: random", "method: bayes");
    let child = create_sweep(&s, &url, &bayes);
    let out = s.run(&["agent", &child, "--count", "1", "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let first = json_of(&s, &["runs", &child, "--json", "--server", &url]);
    let diagnostics = &first[0]["suggestion"]["diagnostics"];
    let seen = match diagnostics["phase"].as_str() {
        Some("model") => diagnostics["total_observations"].as_u64(),
        _ => diagnostics["sobol_index"].as_u64(),
    };
    assert_eq!(seen, Some(inside), "{:#}", first[0]["suggestion"]);
    // Its run counts for its own sweep only: the parent keeps its 24.
    let parent_runs = json_of(&s, &["runs", &parent, "--json", "--server", &url]);
    assert_eq!(parent_runs.as_array().unwrap().len(), 24);
    let sweeps = json_of(&s, &["sweeps", "--json", "--server", &url]);
    let shown = sweeps
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == child.as_str())
        .unwrap();
    assert_eq!(shown["config"]["parent"], parent.as_str(), "{shown:#}");
}

#[test]
fn an_unknown_prior_sweep_is_refused_with_file_line_and_key() {
    let s = Scratch::new("refine-unknown");
    let server = ServerProcess::start(&s, &s.dir.join("hd.db"), free_port());
    s.write(
        "bad.yaml",
        "method: tpe\nprogram: train.py\nmetric: {name: loss}\nprior_runs:\n  - nosuchsweep\nparameters:\n  a: {min: 0.0, max: 1.0}\n",
    );
    let out = s.run(&["sweep", "bad.yaml", "--server", &server.url]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message
            .contains("bad.yaml:5:5: error: prior_runs[0]: no sweep `nosuchsweep` on this server"),
        "{message}"
    );
    let out = s.run(&["refine", "nosuchsweep", "--server", &server.url]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nosuchsweep"), "{}", text(&out));
}

#[test]
fn a_refined_file_written_elsewhere_names_the_program_from_there_and_runs_under_tune() {
    let s = Scratch::new("refine-elsewhere");
    s.write("quad.py", QUAD);
    s.write("sweep.yaml", &COARSE.replace("run_cap: 24", "run_cap: 6"));
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = json_of(&s, &["sweeps", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Into a directory that does not exist: refused before any work, with the fix.
    let out = s.run(&["refine", &id, "--top", "2", "-o", "other/dir/fine.yaml"]);
    assert!(!out.status.success());
    let refused = text(&out);
    assert!(
        refused.contains(
            "cannot write other/dir/fine.yaml: the directory other/dir does not exist; create \
             it first with `mkdir -p other/dir`"
        ),
        "{refused}"
    );
    assert!(
        !refused.contains("refined sweep"),
        "no decision printed: {refused}"
    );
    // The same for `export -o`.
    let out = s.run(&["export", &id, "-o", "other/dir/runs.csv"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("the directory other/dir does not exist"),
        "{}",
        text(&out)
    );
    std::fs::create_dir_all(s.dir.join("other/dir")).unwrap();
    // No server named: the local store is read, and the hint is `tune`, not `sweep`.
    let out = s.run(&["refine", &id, "--top", "2", "-o", "other/dir/fine.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("program: ../../quad.py"), "{log}");
    assert!(
        log.contains("start it with `hyperdial tune other/dir/fine.yaml`"),
        "{log}"
    );
    let fine = std::fs::read_to_string(s.dir.join("other/dir/fine.yaml")).unwrap();
    assert!(fine.contains("program: \"../../quad.py\"\n"), "{fine}");
    // The new file runs where it is: its program is found from its own directory.
    let out = s.run(&[
        "tune",
        "other/dir/fine.yaml",
        "--count",
        "2",
        "--port",
        "0",
        "--no-keep-serving",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 finished"), "{}", text(&out));
}

/// A grid of lists refined around its best points gives back points that all ran: `refine`
/// says the new space would try nothing new (and how to widen it), rather than writing a file
/// whose sweep re-runs the same configurations in silence.
#[test]
fn refining_a_grid_into_configurations_that_all_ran_says_so() {
    let s = Scratch::new("refine-grid");
    s.write(
        "f.py",
        "import sys\nx = float(sys.argv[1].split('=')[1])\nprint('hyperdial: loss=%s' % ((x - 7) ** 2))\n",
    );
    s.write(
        "sweep.yaml",
        "program: f.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  x: {values: [1, 3, 5, 7, 9]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = json_of(&s, &["sweeps", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.run(&["refine", &id, "--top", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("configurations of the new space have already run")
            && said.contains("--margin"),
        "{said}"
    );
}
