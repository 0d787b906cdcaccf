//! What the command line says about a config and a sweep that are not there: a mistake in a
//! sweep file is named by the file given (as the HTTP API names text without a file
//! `<sweep config text>`, never a made-up `sweep.yaml`), and the runs of a sweep id that does
//! not exist are an error naming it, from a server or from the local store alike.

mod common;

use common::{free_port, json_of, text, Scratch, ServerProcess};

const BAD: &str = "program: train.py\nmethod: random\nparameters:\n  lr: {min: x, max: 1.0}\n";

#[test]
fn a_sweep_files_mistakes_are_named_by_its_path() {
    let s = Scratch::new("sources-file");
    std::fs::create_dir_all(s.dir.join("conf")).unwrap();
    s.write("conf/mnist.yaml", BAD);
    let server = ServerProcess::start(&s, &s.dir.join("db.sqlite"), free_port());
    for args in [
        vec!["validate", "conf/mnist.yaml"],
        vec!["sweep", "conf/mnist.yaml", "--server", &server.url],
    ] {
        let out = s.run(&args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("conf/mnist.yaml:4:13: error: parameters.lr.min"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("sweep.yaml"), "{args:?}: {said}");
    }
    // A good file is kept with its name.
    s.write(
        "conf/mnist.yaml",
        "program: train.py\nmethod: random\nparameters:\n  lr: {min: 0.0, max: 1.0}\n",
    );
    let created = json_of(
        &s,
        &[
            "sweep",
            "conf/mnist.yaml",
            "--json",
            "--server",
            &server.url,
        ],
    );
    assert_eq!(created["file"], "conf/mnist.yaml", "{created}");
}

#[test]
fn the_runs_of_an_unknown_sweep_are_an_error_naming_it() {
    let s = Scratch::new("sources-runs");
    let db = s.dir.join("db.sqlite");
    let server = ServerProcess::start(&s, &db, free_port());
    let db = db.display().to_string();
    for args in [
        vec!["runs", "nosuchsweep", "--server", &server.url],
        vec!["runs", "nosuchsweep", "--json", "--server", &server.url],
        vec!["runs", "nosuchsweep", "--db", &db],
    ] {
        let out = s.run(&args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("nosuchsweep"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing listed");
    }
}
