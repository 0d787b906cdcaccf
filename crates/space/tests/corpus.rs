//! Conformance with real sweep files.
//!
//! The corpus (`shared/corpus/wandb-sweeps/` beside the repository, or the directory named by
//! `HYPERDIAL_CORPUS`) holds sweep files written by people in public repositories, byte for
//! byte. `SOURCES.tsv` tags the few that are real mistakes (`INVALID: ...`), W&B Launch
//! configurations (`LAUNCH: ...`) and an obsolete format (`LEGACY/UNSUPPORTED: ...`).
//!
//! Every plain file must validate without error. Every invalid one must be rejected with an
//! error at the key (or YAML position) the mistake is in; the table below names it. Two files
//! tagged invalid are read the way PyYAML (and so W&B) reads them, with a warning
//! ([`READ_WITH_WARNING`]). Launch
//! and legacy files must be either accepted with warnings naming what is ignored, or rejected
//! with an error naming the offending key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hyperdial_space::parse_str;

/// For each invalid file: the key paths of which at least one must carry an error.
const INVALID: &[(&str, &[&str])] = &[
    (
        "spokenlanguage__platalea__wandb_sweep.yaml",
        &["metric.goal"],
    ),
    (
        "kamilest__brain-age-gnn__wandb_sweep.yaml",
        &[
            "parameters.similarity.n_conv_layers",
            "parameters.similarity.layer_sizes",
        ],
    ),
    (
        "konst-int-i__healnet__config_sweep.yaml",
        &["*grid*", "*int*"],
    ),
    (
        "AshwinSankar17__da6401_assignment1__sweep_config.yaml",
        &["*malformed YAML*"],
    ),
    (
        "Arnie-He__BLPO__sweep.yaml",
        &["parameters.CLIP_EPS.values"],
    ),
    (
        "amyxlu__plaid-dev-distributed__sweep.yml",
        &["early_terminate"],
    ),
    (
        "benihime91__leaf-disease-classification-kaggle__sweep.yml",
        &["parameters.mixmethod.distribution"],
    ),
    (
        "shamoons__modulation-explainability__sweep_architecture_comparison.yml",
        &["run_cap", "count"],
    ),
];

/// Files tagged invalid in `SOURCES.tsv` that are read anyway, because PyYAML (W&B's reader)
/// reads them and their author's intent is clear: each must be accepted with a warning at one
/// of the named keys. A key written twice keeps its last value, as in PyYAML; parameters named
/// in `command` (`-b ${batch-size}`) are substituted.
const READ_WITH_WARNING: &[(&str, &[&str])] = &[
    (
        "Etheredge-Works__gloves__wandb_sweep.yaml",
        &["parameters.epochs.values"],
    ),
    ("B0neh3ad__FastMRI_2024_shasha__sweep.yaml", &["command[*"]),
];

fn corpus_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("HYPERDIAL_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = repo.join("../shared/corpus/wandb-sweeps");
    dir.join("SOURCES.tsv").is_file().then_some(dir)
}

/// Whether a diagnostic matches an expectation: an exact path, a path prefix ending in `*`,
/// or `*text*` searched in the message.
fn matches(expect: &str, path: &str, message: &str) -> bool {
    if let Some(inner) = expect.strip_prefix('*').and_then(|s| s.strip_suffix('*')) {
        return message.contains(inner);
    }
    if let Some(prefix) = expect.strip_suffix('*') {
        return path.starts_with(prefix);
    }
    path == expect
}

#[test]
fn corpus_conformance() {
    let Some(dir) = corpus_dir() else {
        let msg =
            "corpus not found: set HYPERDIAL_CORPUS or place shared/corpus beside the repository";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED corpus_conformance: {msg}");
        return;
    };
    let sources = std::fs::read_to_string(dir.join("SOURCES.tsv")).expect("SOURCES.tsv");
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    for line in sources.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() >= 6 {
            notes.insert(cols[0].to_string(), cols[5].to_string());
        }
    }
    let invalid: BTreeMap<&str, &[&str]> = INVALID.iter().copied().collect();
    let mut failures = Vec::new();
    let (mut valid_ok, mut invalid_ok, mut other_ok) = (0, 0, 0);
    for (file, note) in &notes {
        let path = dir.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        let result = parse_str(&text, file);
        if let Some((_, expected)) = READ_WITH_WARNING.iter().find(|(f, _)| f == file) {
            match result {
                Ok(v)
                    if v.warnings
                        .iter()
                        .any(|d| expected.iter().any(|x| matches(x, &d.path, &d.message))) =>
                {
                    valid_ok += 1
                }
                Ok(_) => failures.push(format!(
                    "{file}: accepted without a warning at {expected:?}"
                )),
                Err(e) => failures.push(format!(
                    "{file}: rejected, but PyYAML reads it:\n{}",
                    e.render()
                )),
            }
        } else if note.starts_with("INVALID") {
            let Some(expected) = invalid.get(file.as_str()) else {
                failures.push(format!(
                    "{file}: INVALID in SOURCES.tsv but missing from the test's table"
                ));
                continue;
            };
            match result {
                Ok(_) => failures.push(format!("{file}: accepted, but it is invalid ({note})")),
                Err(e) => {
                    let hit = e
                        .errors()
                        .any(|d| expected.iter().any(|x| matches(x, &d.path, &d.message)));
                    if hit {
                        invalid_ok += 1;
                    } else {
                        failures.push(format!(
                            "{file}: rejected, but no error names {expected:?}:\n{}",
                            e.render()
                        ));
                    }
                }
            }
        } else if note.starts_with("LAUNCH") || note.starts_with("LEGACY") {
            match result {
                Ok(v) if !v.warnings.is_empty() => other_ok += 1,
                Ok(_) => failures.push(format!(
                    "{file}: accepted without a warning about what is ignored"
                )),
                Err(e)
                    if e.errors()
                        .all(|d| d.path.is_empty() && d.location.is_none()) =>
                {
                    failures.push(format!(
                        "{file}: rejected without naming a key:\n{}",
                        e.render()
                    ))
                }
                Err(_) => other_ok += 1,
            }
        } else {
            match result {
                Ok(_) => valid_ok += 1,
                Err(e) => failures.push(format!("{file}: valid file rejected:\n{}", e.render())),
            }
        }
    }
    eprintln!(
        "corpus: {} files; {valid_ok} valid accepted, {invalid_ok} invalid rejected at the right key, {other_ok} launch/legacy handled",
        notes.len()
    );
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(valid_ok > 50, "suspiciously few valid files: {valid_ok}");
}
