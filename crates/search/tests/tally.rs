//! `suggest_by_tally` answers what `suggest_in_sweep` answers from the runs themselves, for
//! every strategy without a model, whatever runs came before (grid positions taken out of
//! order, retries that take a position again, runs without one).

use hyperdial_search::{suggest_by_tally, suggest_in_sweep, Ask, Tally, Trial};
use hyperdial_space::SweepConfig;

fn config(text: &str) -> SweepConfig {
    hyperdial_space::parse_str(text, "s.yaml").unwrap().config
}

fn trial(grid_index: Option<u64>) -> Trial {
    Trial {
        grid_index,
        ..Default::default()
    }
}

/// Histories of several shapes: empty, in order, with holes, with repeats, with runs that
/// have no grid position.
fn histories() -> Vec<Vec<Trial>> {
    let mut out = vec![Vec::new()];
    out.push((0..5).map(|i| trial(Some(i))).collect());
    out.push([0, 1, 3, 4].iter().map(|&i| trial(Some(i))).collect());
    out.push([2, 0, 2, 1].iter().map(|&i| trial(Some(i))).collect());
    out.push(vec![trial(None), trial(Some(0)), trial(None)]);
    out.push((0..12).map(|i| trial(Some(i))).collect());
    out
}

#[test]
fn a_tally_answers_as_the_runs_do() {
    let configs = [
        "method: grid\nparameters: {a: {values: [1, 2, 3]}, b: {values: [x, y, z, w]}}\n",
        "method: random\nparameters: {a: {min: 0.0, max: 1.0}, b: {values: [1, 2]}}\n",
        "method: random\nsample_without_replacement: true\nparameters: {a: {values: [1, 2, 3]}, b: {values: [x, y, z, w]}}\n",
        "method: sobol\nparameters: {a: {min: 0.0, max: 1.0}, b: {min: -3, max: 3}}\n",
    ];
    let mut exhausted = 0;
    for text in configs {
        let config = config(text);
        for trials in histories() {
            for number in [1u64, 7, 40] {
                let tally = Tally::of(&trials);
                let by_tally = suggest_by_tally(&config, &tally, 11, number)
                    .expect("a strategy without a model")
                    .unwrap();
                let by_runs = suggest_in_sweep(&config, &trials, 11, number).unwrap();
                assert_eq!(by_tally, by_runs, "{text} after {} runs", trials.len());
                exhausted += usize::from(by_runs == Ask::Exhausted);
            }
        }
    }
    // The twelve-run history uses up both finite spaces (three numbers each).
    assert_eq!(exhausted, 6);
}

#[test]
fn model_based_strategies_need_the_runs() {
    for method in ["tpe", "bayes"] {
        let config = config(&format!(
            "method: {method}\nmetric: {{name: loss, goal: minimize}}\nparameters: {{a: {{min: 0.0, max: 1.0}}}}\n"
        ));
        assert!(suggest_by_tally(&config, &Tally::default(), 1, 1).is_none());
    }
}

#[test]
fn a_retry_takes_its_position_again_without_counting() {
    let mut tally = Tally::default();
    tally.add(Some(0));
    tally.add(Some(1));
    tally.take(1);
    assert_eq!(tally.trials, 2);
    assert_eq!(tally, Tally::of(&[trial(Some(0)), trial(Some(1))]));
}
