use super::*;
use crate::parse_str;
use serde_json::json;

const SWEEP: &str = "\
# a coarse search
program: train.py
method: bayes
metric:
  name: loss
  goal: minimize
parameters:
  lr:
    distribution: log_uniform_values
    min: 1.0e-5
    max: 1.0
  layers: {min: 1, max: 8}
  opt: {values: [adam, sgd, rmsprop]}
  width: {values: [16, 32, 64, 128, 256, 512]}
  seed: {value: 7}
# the runs stop after a while
run_cap: 40
";

fn run(lr: f64, layers: i64, opt: &str, width: i64, loss: f64) -> Evidence {
    Evidence {
        params: json!({"lr": lr, "layers": layers, "opt": opt, "width": width, "seed": 7})
            .as_object()
            .cloned()
            .unwrap(),
        value: loss,
    }
}

/// Four good adam runs near lr 1e-3, width 32..64, layers 3..4; sgd tried five times and
/// always worse; rmsprop tried once.
fn runs() -> Vec<Evidence> {
    let mut rs = vec![
        run(1e-3, 3, "adam", 32, 0.10),
        run(2e-3, 4, "adam", 64, 0.11),
        run(5e-4, 3, "adam", 32, 0.12),
        run(1.5e-3, 4, "adam", 64, 0.13),
        run(0.3, 8, "rmsprop", 512, 0.9),
    ];
    for i in 0..5 {
        rs.push(run(
            1e-4 * (i + 1) as f64,
            1 + i,
            "sgd",
            16 << i,
            0.5 + i as f64 / 10.0,
        ));
    }
    rs
}

fn refined(top: Top) -> (Refined, SweepConfig) {
    let config = parse_str(SWEEP, "sweep.yaml").unwrap().config;
    let options = Options {
        top,
        ..Options::default()
    };
    let r = refine(SWEEP, &config, "abc123", &runs(), options).unwrap();
    let new = parse_str(&r.text, "refined.yaml")
        .unwrap_or_else(|e| panic!("{}\n{}", e.render(), r.text))
        .config;
    (r, new)
}

#[test]
fn narrows_around_the_best_runs_and_keeps_everything_else() {
    let (r, new) = refined(Top::Count(4));
    assert_eq!((r.top, r.runs), (4, 10));
    // Log scale: the span [5e-4, 2e-3] widened each side by a quarter of its width or 5 % of
    // the old range, whichever is larger (in log space).
    match new.parameter("lr").unwrap().distribution {
        Distribution::LogUniformValues { min, max } => {
            let pad = (0.25 * (2e-3f64 / 5e-4).ln()).max(0.05 * (1.0f64 / 1e-5).ln());
            assert!(
                (min.ln() - (5e-4f64.ln() - pad)).abs() < 1e-3,
                "{min}\n{}",
                r.text
            );
            assert!(
                (max.ln() - (2e-3f64.ln() + pad)).abs() < 1e-3,
                "{max}\n{}",
                r.text
            );
        }
        ref d => panic!("lr became {d:?}"),
    }
    // Integers snapped outward: [3, 4] widened by 5 % of [1, 8] each side.
    assert_eq!(
        new.parameter("layers").unwrap().distribution,
        Distribution::IntUniform { min: 2, max: 5 }
    );
    // sgd ran five times, never in the top four: dropped. rmsprop ran once: kept.
    assert_eq!(
        new.parameter("opt").unwrap().distribution,
        Distribution::Categorical {
            values: vec![json!("adam"), json!("rmsprop")]
        }
    );
    // A list of numbers keeps the listed values inside the new (log) range around 32..64.
    assert_eq!(
        new.parameter("width").unwrap().distribution,
        Distribution::Categorical {
            values: vec![json!(32), json!(64)]
        }
    );
    assert_eq!(
        new.parameter("seed").unwrap().distribution,
        Distribution::Constant { value: json!(7) }
    );
    // Everything outside `parameters` is unchanged, comments included.
    assert!(r.text.contains("# a coarse search\n"), "{}", r.text);
    assert!(
        r.text
            .contains("# the runs stop after a while\nrun_cap: 40\n"),
        "{}",
        r.text
    );
    assert_eq!(new.run_cap, Some(40));
    assert_eq!(new.program.as_deref(), Some("train.py"));
    assert_eq!(new.metric.as_ref().unwrap().name, "loss");
    // Lineage.
    assert_eq!(new.parent.as_ref().unwrap().id, "abc123");
    let priors: Vec<&str> = new.prior_runs.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(priors, ["abc123"]);
    // What was dropped and why: printed (notes) and written as comments.
    let sgd = r
        .notes
        .iter()
        .find(|n| n.parameter == "opt" && n.message.starts_with("dropped \"sgd\""))
        .expect("a note for sgd");
    assert!(
        sgd.message.contains("none of its 5 runs"),
        "{}",
        sgd.message
    );
    assert!(r.text.contains(&format!("# {}", sgd.message)), "{}", r.text);
    assert!(
        r.notes
            .iter()
            .any(|n| n.message.starts_with("kept \"rmsprop\"")
                && n.message.contains("1 run is too few")),
        "{:?}",
        r.notes
    );
    // Every top run lies inside the new space.
    for e in &runs()[..4] {
        for p in &new.parameters {
            let v = &e.params[&p.name];
            assert!(
                p.distribution.to_unit(v).is_some(),
                "{} = {v} outside {:?}",
                p.name,
                p.distribution
            );
            if let Some((lo, hi)) = p.distribution.value_bounds() {
                let x = v.as_f64().unwrap();
                assert!(lo <= x && x <= hi, "{} = {x} outside [{lo}, {hi}]", p.name);
            }
        }
    }
}

#[test]
fn maximize_takes_the_highest_and_quantiles_count_runs() {
    let text = SWEEP.replace("goal: minimize", "goal: maximize");
    let config = parse_str(&text, "sweep.yaml").unwrap().config;
    let options = Options {
        top: Top::Quantile(0.1),
        ..Options::default()
    };
    let r = refine(&text, &config, "p", &runs(), options).unwrap();
    assert_eq!(r.top, 1);
    let new = parse_str(&r.text, "r.yaml").unwrap().config;
    // The single best run is the rmsprop one at lr 0.3, layers 8, width 512.
    match new.parameter("lr").unwrap().distribution {
        Distribution::LogUniformValues { min, max } => {
            assert!(min < 0.3 && (0.3..=1.0).contains(&max), "[{min}, {max}]")
        }
        ref d => panic!("{d:?}"),
    }
    assert_eq!(
        new.parameter("layers").unwrap().distribution,
        Distribution::IntUniform { min: 7, max: 8 }
    );
}

#[test]
fn a_json_file_and_a_parent_with_prior_runs() {
    let text = r#"{"method": "tpe", "metric": {"name": "loss"}, "prior_runs": ["old"],
      "parameters": {"opt": {"parameters": {"lr": {"min": 0.0, "max": 1.0}}}, "q": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2}}}"#;
    let config = parse_str(text, "sweep.json").unwrap().config;
    let ev = |lr: f64, q: i64, loss: f64| Evidence {
        params: json!({"opt.lr": lr, "q": q}).as_object().cloned().unwrap(),
        value: loss,
    };
    let runs = [ev(0.5, 4, 1.0), ev(0.6, 6, 2.0), ev(0.9, 10, 3.0)];
    let r = refine(
        text,
        &config,
        "mid",
        &runs,
        Options {
            top: Top::Count(2),
            ..Options::default()
        },
    )
    .unwrap();
    let new = parse_str(&r.text, "r.yaml")
        .unwrap_or_else(|e| panic!("{}\n{}", e.render(), r.text))
        .config;
    assert_eq!(new.method, crate::Method::Tpe);
    let priors: Vec<&str> = new.prior_runs.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(priors, ["mid", "old"]);
    assert_eq!(new.parameters[0].path, ["opt", "lr"]);
    assert_eq!(
        new.parameter("opt.lr").unwrap().distribution,
        Distribution::Uniform {
            min: 0.45,
            max: 0.65
        }
    );
    match new.parameter("q").unwrap().distribution {
        Distribution::QUniform { min, max, .. } => assert_eq!((min, max), (2.0, 8.0)),
        ref d => panic!("{d:?}"),
    }
}

#[test]
fn refuses_what_it_cannot_refine() {
    let no_metric = "method: random\nparameters: {x: {min: 0.0, max: 1.0}}\n";
    let config = parse_str(no_metric, "s.yaml").unwrap().config;
    assert_eq!(
        refine(no_metric, &config, "p", &runs(), Options::default()),
        Err(RefineError::NoMetric)
    );
    let config = parse_str(SWEEP, "s.yaml").unwrap().config;
    assert_eq!(
        refine(SWEEP, &config, "p", &[], Options::default()),
        Err(RefineError::NoRuns("loss".into()))
    );
    for top in [Top::Count(0), Top::Quantile(0.0), Top::Quantile(1.5)] {
        let options = Options {
            top,
            ..Options::default()
        };
        assert!(matches!(
            refine(SWEEP, &config, "p", &runs(), options),
            Err(RefineError::BadOptions(_))
        ));
    }
}

#[test]
fn conditions_are_kept_and_their_parents_follow_the_rule() {
    let text = "method: tpe\nmetric: {name: loss}\nparameters:\n  opt: {values: [adam, sgd, rmsprop]}\n  momentum: {min: 0.0, max: 0.99, when: {opt: [sgd, rmsprop]}}\n  lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0}\n";
    let config = parse_str(text, "sweep.yaml").unwrap().config;
    let ev = |p: serde_json::Value, loss: f64| Evidence {
        params: p.as_object().cloned().unwrap(),
        value: loss,
    };
    let mut runs = vec![
        ev(json!({"opt": "sgd", "momentum": 0.9, "lr": 1e-3}), 0.1),
        ev(json!({"opt": "sgd", "momentum": 0.85, "lr": 2e-3}), 0.2),
    ];
    for i in 0..8 {
        runs.push(ev(
            json!({"opt": "adam", "lr": 1e-4 * (i + 1) as f64}),
            1.0 + i as f64,
        ));
    }
    let options = Options {
        top: Top::Count(2),
        ..Options::default()
    };
    let r = refine(text, &config, "abc123", &runs, options).unwrap();
    let new = parse_str(&r.text, "refined.yaml")
        .unwrap_or_else(|e| panic!("{}\n{}", e.render(), r.text))
        .config;
    let momentum = new.parameter("momentum").unwrap();
    let when: Vec<_> = momentum
        .when
        .iter()
        .map(|c| (c.parent.as_str(), c.values.clone()))
        .collect();
    assert_eq!(when, [("opt", vec![json!("sgd"), json!("rmsprop")])]);
    // Narrowed on the runs where it was active.
    match momentum.distribution {
        Distribution::Uniform { min, max } => assert!(min > 0.5 && max < 0.99, "{}", r.text),
        ref d => panic!("{d:?}"),
    }
    // adam lost in all its 8 runs: dropped, as for any values list; rmsprop (never tried)
    // is kept, and so is the condition naming it.
    assert_eq!(
        new.parameter("opt").unwrap().distribution,
        Distribution::Categorical {
            values: vec![json!("sgd"), json!("rmsprop")]
        }
    );
}

/// The conditional example's shape: the best runs all use adam, sgd ran 8 times.
#[test]
fn a_dropped_parent_value_leaves_out_what_only_it_enables_and_the_notes_say_so() {
    let text = "method: tpe\nmetric: {name: loss}\nparameters:\n  optimizer: {values: [sgd, adam]}\n  momentum: {min: 0.0, max: 0.99, when: {optimizer: sgd}}\n  nesterov: {values: [true, false], when: {optimizer: sgd}}\n  beta2: {values: [0.99, 0.999, 0.9999], when: {optimizer: adam}}\n  layers: {values: [1, 2, 3]}\n  width_3: {values: [32, 64], when: {layers: 3}}\n";
    let config = parse_str(text, "sweep.yaml").unwrap().config;
    let ev = |p: serde_json::Value, loss: f64| Evidence {
        params: p.as_object().cloned().unwrap(),
        value: loss,
    };
    let mut runs = Vec::new();
    for i in 0..8 {
        // adam runs, the best; layers 1 or 2, so width_3 is never active among them.
        let beta2 = [0.99, 0.999][i % 2];
        runs.push(ev(
            json!({"optimizer": "adam", "beta2": beta2, "layers": 1 + (i % 2)}),
            0.1 + i as f64 * 0.01,
        ));
    }
    for i in 0..8 {
        runs.push(ev(
            json!({"optimizer": "sgd", "momentum": 0.5, "nesterov": i % 2 == 0, "layers": 3, "width_3": 64}),
            2.0 + i as f64,
        ));
    }
    let options = Options {
        top: Top::Count(5),
        ..Options::default()
    };
    let r = refine(text, &config, "abc123", &runs, options).unwrap();
    let new = parse_str(&r.text, "refined.yaml")
        .unwrap_or_else(|e| panic!("{}\n{}", e.render(), r.text))
        .config;
    // sgd: 8 runs, none among the best 5: dropped, as the rule says.
    assert_eq!(
        new.parameter("optimizer").unwrap().distribution,
        Distribution::Categorical {
            values: vec![json!("adam")]
        },
        "{}",
        r.text
    );
    // What only sgd enabled is left out, said on the parent; nothing claims a value of
    // nesterov was dropped.
    assert!(new.parameter("momentum").is_none(), "{}", r.text);
    assert!(new.parameter("nesterov").is_none(), "{}", r.text);
    assert!(
        r.text.contains(
            "# left out `momentum`: it is active only when `optimizer` is \"sgd\", which was dropped"
        ),
        "{}",
        r.text
    );
    assert!(r.text.contains("# left out `nesterov`"), "{}", r.text);
    assert!(
        !r.text.contains("dropped true") && !r.text.contains("dropped false"),
        "{}",
        r.text
    );
    // layers 3 (8 runs, none among the best) goes, and width_3 with it.
    assert!(new.parameter("width_3").is_none(), "{}", r.text);
    // beta2 is judged on the runs where it was active: 0.9999 was never tried, so kept.
    assert!(new.parameter("beta2").is_some(), "{}", r.text);
    // Every comment describes the file: a value a comment says was dropped is not in it.
    for line in r.text.lines() {
        if let Some(rest) = line.trim().strip_prefix("# dropped ") {
            let value = rest.split(':').next().unwrap();
            let next = r.text[r.text.find(line).unwrap() + line.len()..]
                .lines()
                .find(|l| !l.trim().starts_with('#'))
                .unwrap();
            for v in value.split(", ") {
                assert!(!next.contains(v), "{line} / {next}\n{}", r.text);
            }
        }
    }
}
