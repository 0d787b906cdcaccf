//! A sweep metric misnamed in the sweep file (`los` while the script logs `loss`), with the
//! real binary: `tune` warns as soon as the first run finishes without it, naming what the run
//! did log and the name meant, and its closing summary says the same; it then exits 1, as a
//! sweep without a result.

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
