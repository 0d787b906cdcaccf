//! Property-based fuzzing of the parser: whatever the input, validation returns a result
//! (never panics), every error has a message, and positions lie inside the input.

use hyperdial_space::{grid, parse_str};
use proptest::prelude::*;

const SEED_DOC: &str = "program: train.py
method: grid
metric:
  name: val_loss
  goal: minimize
early_terminate: {type: hyperband, min_iter: 3}
command: ['${env}', '${interpreter}', '${program}', '${args}']
parameters:
  lr: {values: [0.1, 0.01]}
  depth: {min: 1, max: 4}
  opt:
    parameters:
      kind: {values: [adam, sgd]}
";

fn check(text: &str) {
    let lines = text.lines().count().max(1) + 1;
    match parse_str(text, "fuzz.yaml") {
        Ok(v) => {
            // A valid config must be usable: sampling and grid sizing never panic.
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
            for p in &v.config.parameters {
                let _ = p.distribution.sample(&mut rng);
            }
            let _ = grid::grid_size(&v.config.parameters);
        }
        Err(e) => {
            assert!(e.errors().count() > 0, "an error result without errors");
            for d in &e.diagnostics {
                assert!(!d.message.is_empty());
                if let Some(loc) = d.location {
                    assert!(
                        loc.line >= 1 && loc.line <= lines,
                        "line {} outside input of {lines} lines",
                        loc.line
                    );
                }
            }
        }
    }
}

/// Fragments that make structurally interesting YAML when glued together.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("method: ".to_string()),
        Just("parameters:\n".to_string()),
        Just("  ".to_string()),
        Just("\n".to_string()),
        Just("- ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just(": ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!float ".to_string()),
        Just("distribution: q_log_uniform_values".to_string()),
        Just("min: -1e308".to_string()),
        Just("max: .inf".to_string()),
        Just("q: 1e-320".to_string()),
        Just("values: []".to_string()),
        Just("${args}".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("#".to_string()),
        Just("---\n".to_string()),
        "[a-z_]{1,8}".prop_map(|s| s),
        "-?[0-9]{1,20}(\\.[0-9]{0,5})?(e-?[0-9]{1,3})?".prop_map(|s| s),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn glued_fragments_never_panic(parts in prop::collection::vec(fragment(), 0..40)) {
        check(&parts.concat());
    }

    #[test]
    fn mutated_valid_document_never_panics(cut in 0usize..400, len in 0usize..20, insert in "\\PC{0,6}") {
        let mut text = SEED_DOC.to_string();
        let start = cut.min(text.len());
        let start = (0..=start).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        check(&text);
    }

    #[test]
    fn numeric_bounds_never_panic(
        dist in prop::sample::select(vec![
            "uniform", "int_uniform", "q_uniform", "log_uniform", "inv_log_uniform", "q_log_uniform",
            "log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values", "normal", "q_normal",
            "log_normal", "q_log_normal", "beta", "q_beta",
        ]),
        lo in prop_oneof![any::<f64>(), -1e3f64..1e3, Just(0.0)],
        hi in prop_oneof![any::<f64>(), -1e3f64..1e3, Just(1.0)],
        q in prop_oneof![any::<f64>(), 1e-6f64..10.0],
    ) {
        let quantized = if dist.starts_with("q_") { format!(", q: {q:e}") } else { String::new() };
        let body = if dist.contains("normal") {
            format!("mu: {lo:e}, sigma: {hi:e}")
        } else if dist.contains("beta") {
            format!("a: {lo:e}, b: {hi:e}")
        } else if dist == "int_uniform" {
            format!("min: {}, max: {}", lo as i64, hi as i64)
        } else {
            format!("min: {lo:e}, max: {hi:e}")
        };
        let text = format!("program: t.py\nmethod: random\nparameters:\n  x: {{distribution: {dist}, {body}{quantized}}}\n");
        check(&text);
    }
}
