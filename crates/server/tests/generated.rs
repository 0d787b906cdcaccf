//! The committed files generated from the wire types are current: `docs/openapi.json` (the
//! server's OpenAPI document), `web/src/wire.ts` (the dashboard's types) and
//! `python/hyperdial/_states.py` (the Python client's state words). A file that differs from a
//! fresh generation fails with the command that refreshes it; with `UPDATE_WIRE=1` the test
//! writes the files instead.

use std::path::{Path, PathBuf};

use hyperdial_wire::gen::{python_states, schemas, typescript, REFRESH_COMMAND};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn openapi_json() -> String {
    let doc = hyperdial_server::openapi::document();
    let mut text = serde_json::to_string_pretty(&doc).expect("the document encodes");
    text.push('\n');
    text
}

/// The generated files: path under the repository root and fresh content.
fn generated() -> Vec<(&'static str, String)> {
    vec![
        ("docs/openapi.json", openapi_json()),
        ("web/src/wire.ts", typescript(&schemas())),
        ("python/hyperdial/_states.py", python_states()),
    ]
}

#[test]
fn generated_files_are_current() {
    let update = std::env::var("UPDATE_WIRE").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, fresh) in generated() {
        let file = root().join(path);
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        if committed == fresh {
            continue;
        }
        if update {
            std::fs::write(&file, &fresh).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
            eprintln!("rewrote {path}");
        } else {
            let line = committed
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()))
                + 1;
            stale.push(format!("{path} (first difference at line {line})"));
        }
    }
    assert!(
        stale.is_empty(),
        "generated files differ from the wire types: {}; refresh them with `{REFRESH_COMMAND}` and commit them",
        stale.join(", ")
    );
}
