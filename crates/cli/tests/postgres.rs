//! The real binary on PostgreSQL: two `hyperdial server` processes on one database with agents
//! on both hand out every point of a grid exactly once, and `tune` keeps its sweep in the
//! database `HYPERDIAL_DB` names. Both need `HYPERDIAL_TEST_PG` (a PostgreSQL server; each
//! test creates a database of its own in it) and report SKIPPED without it.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use hyperdial_store::testing::TestDb;

const GRID: &str = "program: train.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1, 2, 3, 4, 5, 6]}\n  b: {values: [x, y]}\n";

fn database(test: &str) -> Option<(tokio::runtime::Runtime, TestDb)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::postgres(test))?;
    Some((rt, db))
}

/// A `hyperdial server` on `url`, killed when dropped, and the first line it printed.
struct Server(Child, String, String);

impl Server {
    fn start(s: &Scratch, db: &str) -> Server {
        use std::io::BufRead;
        let port = free_port();
        let child = s
            .cmd(&["server", "--db", db, "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = child;
        wait_answering(&mut child, port, Duration::from_secs(30)).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Server(child, format!("http://127.0.0.1:{port}"), line)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn two_servers_on_one_postgres_hand_out_each_grid_point_once() {
    let Some((rt, db)) = database("cli two_servers_on_one_postgres_hand_out_each_grid_point_once")
    else {
        return;
    };
    let s = Scratch::new("pg-two-servers");
    // The cluster trusts local connections; the password is there to be hidden.
    let url = db.url().replacen("postgres@", "postgres:hunter2@", 1);
    let one = Server::start(&s, &url);
    let two = Server::start(&s, &url);
    assert!(
        one.2.contains("(database postgres://postgres:***@"),
        "{}",
        one.2
    );
    assert!(!one.2.contains("hunter2"), "{}", one.2);
    let id = create_sweep(&s, &one.1, GRID);
    let mut agents: Vec<Child> = [&one, &two, &one, &two]
        .iter()
        .map(|server| {
            s.cmd(&["agent", &id, "--server", &server.1])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for agent in &mut agents {
        let status = wait_child(agent, Duration::from_secs(120));
        assert!(status.success(), "an agent failed: {status:?}");
    }
    // Either server sees the same runs: 12 distinct points, numbers 1..12, all finished.
    let runs = json_of(&s, &["runs", &id, "--json", "--server", &two.1]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 12, "{runs:#?}");
    let numbers: BTreeSet<i64> = runs.iter().map(|r| r["number"].as_i64().unwrap()).collect();
    assert_eq!(numbers, (1..=12).collect());
    let points: BTreeSet<String> = runs.iter().map(|r| r["params"].to_string()).collect();
    assert_eq!(points.len(), 12);
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:#?}");
    let sweeps = json_of(&s, &["sweeps", "--json", "--server", &one.1]);
    assert_eq!(sweeps[0]["state"], "finished");
    drop((one, two));
    rt.block_on(db.remove());
}

#[test]
fn tune_keeps_its_sweep_in_the_database_hyperdial_db_names() {
    let Some((rt, db)) = database("cli tune_keeps_its_sweep_in_the_database_hyperdial_db_names")
    else {
        return;
    };
    let s = Scratch::new("pg-tune");
    s.write("sweep.yaml", GRID);
    let out = s
        .cmd(&["tune", "sweep.yaml", "--agents", "3", "--port", "0"])
        .env("HYPERDIAL_DB", db.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("12 finished"), "{}", text(&out));
    assert!(
        !s.dir.join(".hyperdial/hyperdial.db").exists(),
        "no SQLite file when HYPERDIAL_DB names PostgreSQL"
    );
    // Again: the same file finds its finished sweep in PostgreSQL.
    let again = s
        .cmd(&["tune", "sweep.yaml", "--port", "0"])
        .env("HYPERDIAL_DB", db.url())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("is finished"), "{}", text(&again));
    rt.block_on(db.remove());
}

/// What `hyperdial server --db URL` says when it refuses `db`: it exits non-zero, and at once
/// (it never says it waits for the database, though `--db-wait` would allow 600 s).
fn refused_at_once(s: &Scratch, db: &str) -> String {
    let out = s
        .cmd(&["server", "--db", db, "--port", "0", "--db-wait", "600"])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(!said.contains("waiting up to"), "{said}");
    said
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

#[test]
fn the_server_says_whether_its_postgres_connection_is_encrypted_and_refuses_a_certificate_it_cannot_check(
) {
    let test = "cli the_server_says_whether_its_postgres_connection_is_encrypted";
    let Some((rt, db)) = database(test) else {
        return;
    };
    let s = Scratch::new("pg-tls");
    // `sslmode=prefer` (the default): TLS when the database server offers it.
    let preferred = Server::start(&s, db.url());
    let line = preferred.2.trim_end().to_string();
    drop(preferred);
    if line.ends_with(", without TLS)") {
        hyperdial_store::testing::skipped(&format!(
            "SKIPPED: {test} (the PostgreSQL server offers no TLS; .ci/run starts it with ssl=on)"
        ));
        rt.block_on(db.remove());
        return;
    }
    assert!(line.ends_with(", TLS)"), "{line}");
    // `require`: encrypted, the certificate not checked (a self-signed one here).
    let required = Server::start(&s, &with_param(db.url(), "sslmode=require"));
    assert!(required.2.trim_end().ends_with(", TLS)"), "{}", required.2);
    drop(required);
    // `verify-full` without `sslrootcert`: the certificate's authority is not one of the
    // built-in roots, so the connection is refused at once (no wait for the database) and the
    // message names the URL's TLS parameters.
    let said = refused_at_once(&s, &with_param(db.url(), "sslmode=verify-full"));
    assert!(said.contains("TLS: invalid peer certificate"), "{said}");
    assert!(said.contains("sslrootcert"), "{said}");
    rt.block_on(db.remove());
}

#[test]
fn a_database_url_naming_a_port_that_is_not_postgres_fails_at_once_with_the_port_to_check() {
    // Any TCP server that is not PostgreSQL: a hyperdial server, which answers HTTP.
    let s = Scratch::new("pg-not-postgres");
    let http = Server::start(&s, "state.db");
    let port = http.1.rsplit(':').next().unwrap().to_string();
    for mode in ["sslmode=prefer", "sslmode=disable"] {
        let said = refused_at_once(
            &s,
            &format!("postgres://postgres@127.0.0.1:{port}/x?{mode}"),
        );
        assert!(
            said.contains("something answers at that address, but not as PostgreSQL does"),
            "{mode}: {said}"
        );
        assert!(said.contains("is the port right?"), "{said}");
    }
    // A certificate file named but missing is said at once, not waited out as a database
    // that is not up.
    let said = refused_at_once(
        &s,
        &format!(
            "postgres://postgres@127.0.0.1:{port}/x?sslmode=verify-full&sslrootcert=missing-ca.pem"
        ),
    );
    assert!(
        said.contains("sslrootcert `missing-ca.pem` is not a file"),
        "{said}"
    );
}

#[test]
fn a_missing_database_or_a_misspelt_url_parameter_fails_at_once_with_the_fix() {
    let test = "cli a_missing_database_or_a_misspelt_url_parameter";
    let Some((rt, db)) = database(test) else {
        return;
    };
    let s = Scratch::new("pg-missing-db");
    // The URL with another database name: the path after the host, before any query.
    let (base, query) = db.url().split_once('?').unwrap_or((db.url(), ""));
    let (server, _) = base.rsplit_once('/').unwrap();
    let missing = format!("{server}/no_such_hyperdial_db?{query}");
    let said = refused_at_once(&s, missing.trim_end_matches('?'));
    assert!(said.contains("does not exist"), "{said}");
    assert!(said.contains("createdb -h "), "{said}");
    assert!(
        said.contains(" no_such_hyperdial_db` or `CREATE DATABASE"),
        "{said}"
    );
    // A misspelt `sslmode` would leave the connection to its default, which falls back to
    // plain text: refused before any connection, with the name it resembles.
    let said = refused_at_once(&s, &with_param(db.url(), "sslmod=require"));
    assert!(said.contains("parameter `sslmod`"), "{said}");
    assert!(said.contains("did you mean `sslmode`?"), "{said}");
    rt.block_on(db.remove());
}
