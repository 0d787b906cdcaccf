//! A sweep metric misnamed in the sweep file (`los` while the script logs `loss`), with the
//! real binary: `tune` warns as soon as the first run finishes without it, naming what the run
//! did log and the name meant, and its closing summary says the same; it then exits 1, as a
//! sweep without a result. A run that diverges (its last value NaN) is failed and shows no
//! value; a sweep without a metric says so rather than that no run reported one.

mod common;

use common::*;

#[test]
fn a_misnamed_metric_is_pointed_out_at_the_first_run_and_at_the_end() {
    let s = Scratch::new("metric-name");
    // train.py logs `loss` and `step_sq`.
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nmetric: {name: los, goal: minimize}\n\
         parameters:\n  a: {values: [1.0, 2.0, 3.0]}\n  steps: {value: 1}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    // No run has the metric, so there is no result: `tune … && next` must not go on.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains("reported its metric 'los', so the sweep has no best run; fix `metric.name` in sweep.yaml"),
        "{said}"
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let hint = "the runs logged loss, step_sq: did you mean loss? (set `metric: {name: loss}` \
                in the sweep file)";
    let warning = format!("warning: run #1 finished without reporting the metric 'los'; {hint}");
    assert_eq!(printed.matches(&warning).count(), 1, "{printed}");
    // Said once, right after the first run, not again for the next ones.
    let first = printed.find("run #1 finished").unwrap();
    let second = printed.find("run #2 started").unwrap();
    let warned = printed.find(&warning).unwrap();
    assert!(first < warned && warned < second, "{printed}");
    assert_eq!(printed.matches("finished without reporting").count(), 1);
    assert!(
        printed.contains(&format!("no run reported the metric 'los'; {hint}")),
        "{printed}"
    );
}

#[test]
fn a_run_that_diverges_is_failed_and_its_earlier_values_are_no_result() {
    let s = Scratch::new("metric-diverged");
    // a = 2 reaches a good loss, then diverges (NaN at its last step).
    s.write(
        "diverge.py",
        "import argparse, hyperdial\n\
         p = argparse.ArgumentParser(); p.add_argument('--a', type=float)\n\
         a = p.parse_known_args()[0].a\n\
         run = hyperdial.init()\n\
         for step in range(3):\n\
         \x20   run.log({'loss': a / 10 if a != 2.0 else 0.001})\n\
         if a == 2.0:\n\
         \x20   run.log({'loss': float('nan')})\n\
         run.finish()\n",
    );
    s.write(
        "sweep.yaml",
        "program: diverge.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n\
         parameters:\n  a: {values: [1.0, 2.0, 3.0]}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    let line = printed
        .lines()
        .find(|l| l.contains("run #2 failed"))
        .unwrap_or_else(|| panic!("{printed}"));
    // Its 0.001 before the NaN is neither shown as its value nor taken as the best.
    assert!(!line.contains("0.001"), "{line}");
    assert!(
        line.contains("the last value of the sweep metric `loss` is NaN or infinite"),
        "{line}"
    );
    assert!(!printed.contains("best loss 0.001"), "{printed}");
    assert!(printed.contains("a = 1"), "{printed}");
}

#[test]
fn a_sweep_without_a_metric_says_so_rather_than_that_no_run_reported_it() {
    let s = Scratch::new("metric-none");
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nparameters:\n  a: {values: [1.0, 2.0]}\n  steps: {value: 1}\n",
    );
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        printed.contains(
            "the sweep has no `metric`, so no run is the best one; to rank the runs, add \
             `metric: {name: NAME, goal: minimize}` (or `maximize`) to the sweep file (the runs \
             logged loss, step_sq)"
        ),
        "{printed}"
    );
    assert!(!printed.contains("no run reported the metric"), "{printed}");
}
