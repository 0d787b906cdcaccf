//! `hyperdial server` as a team operates it: several tokens from a token file, re-read on
//! SIGHUP; a warning for a weak token that never prints it; the dashboard line of a server
//! bound to every address; waiting for a PostgreSQL database that is not up yet; the request
//! log of refusals and state changes; and what a start that upgrades the schema (or fails
//! to) says.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

const STRONG_A: &str = "3f9a0c7b1e2d4a5b6c7d8e9f00112233";
const STRONG_B: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const STRONG_C: &str = "0fedcba9876543210fedcba987654321";

/// `hyperdial sweeps --json` against `url` with `token`: whether the server let it in.
fn lets_in(s: &Scratch, url: &str, token: &str) -> bool {
    let out = s.run(&["sweeps", "--json", "--server", url, "--token", token]);
    let all = text(&out);
    assert!(
        out.status.success() || all.contains("token"),
        "neither in nor refused for its token: {all}"
    );
    out.status.success()
}

/// Wait until the file at `path` holds `needle` and the rest of its line (a line a child
/// process writes), and answer its text; panics with the text after 30 s.
fn wait_for_text(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // The whole line: standard error is unbuffered, so a line can be read half written.
        if text
            .find(needle)
            .is_some_and(|at| text[at..].contains('\n'))
        {
            return text;
        }
        assert!(Instant::now() < deadline, "no `{needle}` in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until the server `child` at `url` answers `hyperdial sweeps` with `token`; panics
/// when it exits first, or after 30 s.
fn wait_until_up(s: &Scratch, child: &mut Child, url: &str, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = s
            .cmd(&["sweeps", "--json", "--server", url, "--token", token])
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the server exited");
        assert!(Instant::now() < deadline, "the server did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `hyperdial server ARGS` in the scratch directory, with `envs` added to its environment,
/// its standard output piped (read it with [`startup_lines`]) and its standard error written
/// to `err_log`.
fn spawn_server(s: &Scratch, args: &[&str], envs: &[(&str, &str)], err_log: &Path) -> Child {
    let mut args = args.to_vec();
    args.insert(0, "server");
    let mut cmd = s.cmd(&args);
    for (name, value) in envs {
        cmd.env(name, value);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(err_log).unwrap()))
        .spawn()
        .unwrap()
}

/// The start-up lines a server `child` of [`spawn_server`] prints, up to its `dashboard:`
/// line (the rest of its standard output is dropped).
fn startup_lines(child: &mut Child) -> Vec<String> {
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let last = line.starts_with("dashboard: ");
        lines.push(line);
        if last {
            break;
        }
    }
    lines
}

/// The standard error of the server started by `ServerProcess::start_with` on `port`.
fn server_err(s: &Scratch, port: u16) -> std::path::PathBuf {
    (1..=3)
        .rev()
        .map(|attempt| s.dir.join(format!("server-{port}-{attempt}.err")))
        .find(|p| p.exists())
        .expect("the server's standard error")
}

#[test]
fn a_token_file_accepts_each_of_its_tokens_and_sighup_rereads_it() {
    let s = Scratch::new("token-file");
    let tokens = s.write(
        "tokens",
        &format!("# the team's tokens\n\n{STRONG_A}\n  {STRONG_B}  # not a comment\n"),
    );
    // A space inside a line is refused, naming the file and the line.
    let port = free_port();
    let out = s.run(&[
        "server",
        "--db",
        "db.sqlite",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--token-file",
        tokens.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(err.contains("tokens:4: a space inside the token"), "{err}");
    assert!(!err.contains(STRONG_B), "{err}");

    s.write(
        "tokens",
        &format!("# the team's tokens\n\n{STRONG_A}\n  {STRONG_B}\n"),
    );
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let server =
        ServerProcess::start_with(&s, &db, port, &["--token-file", tokens.to_str().unwrap()]);
    assert!(lets_in(&s, &server.url, STRONG_A));
    assert!(lets_in(&s, &server.url, STRONG_B));
    assert!(!lets_in(&s, &server.url, STRONG_C));

    // Rotation: B stays, A goes, C comes; SIGHUP re-reads the file and the server goes on.
    s.write("tokens", &format!("{STRONG_B}\n{STRONG_C}\n"));
    signal(server.child.id(), "-HUP");
    let log = server_err(&s, port);
    wait_for_text(
        &log,
        &format!(
            "2 tokens accepted: 2 from --token-file {} (re-read on SIGHUP)",
            tokens.display()
        ),
    );
    assert!(!lets_in(&s, &server.url, STRONG_A));
    assert!(lets_in(&s, &server.url, STRONG_B));
    assert!(lets_in(&s, &server.url, STRONG_C));

    // A file emptied by mistake keeps the tokens in force, and says so.
    s.write("tokens", "# nothing here yet\n");
    signal(server.child.id(), "-HUP");
    let err = wait_for_text(&log, "stay in force");
    assert!(err.contains("holds no token"), "{err}");
    assert!(lets_in(&s, &server.url, STRONG_C));
    for t in [STRONG_A, STRONG_B, STRONG_C] {
        assert!(!err.contains(t), "a token was printed: {err}");
    }

    // A file removed by mistake: the same, and the OS error is said once.
    std::fs::remove_file(&tokens).unwrap();
    signal(server.child.id(), "-HUP");
    let err = wait_for_text(&log, "cannot read the token file");
    let line = err
        .lines()
        .find(|l| l.contains("cannot read the token file"))
        .unwrap();
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    assert!(line.contains("stay in force"), "{line}");
    assert!(lets_in(&s, &server.url, STRONG_C));
}

#[test]
fn a_token_of_the_environment_beside_a_token_file_is_counted_and_warned_of() {
    let s = Scratch::new("token-env-and-file");
    let tokens = s.write("tokens", &format!("{STRONG_B}\n{STRONG_C}\n"));
    let port = free_port();
    let err_log = s.dir.join("server.err");
    let bind = format!("127.0.0.1:{port}");
    let mut child = spawn_server(
        &s,
        &[
            "--db",
            "db.sqlite",
            "--bind",
            &bind,
            "--token-file",
            tokens.to_str().unwrap(),
        ],
        &[("HYPERDIAL_TOKEN", STRONG_A)],
        &err_log,
    );
    let lines = startup_lines(&mut child);
    let url = format!("http://{bind}");
    wait_until_up(&s, &mut child, &url, STRONG_A);
    // The start-up lines say each source and its count; the warning, how to move the token.
    let file = tokens.display();
    assert!(
        lines.contains(&format!(
            "tokens: 2 from --token-file {file} (re-read on SIGHUP), 1 from HYPERDIAL_TOKEN \
             (fixed until restart)"
        )),
        "{lines:?}"
    );
    let err = std::fs::read_to_string(&err_log).unwrap();
    assert!(
        err.contains(
            "warning: the token of HYPERDIAL_TOKEN stays accepted until the server restarts"
        ) && err.contains(&format!("add it as a line of {file}")),
        "{err}"
    );

    // Removing a token from the file revokes it; the environment's stays, and the reload
    // line counts both sources.
    s.write("tokens", &format!("{STRONG_B}\n"));
    signal(child.id(), "-HUP");
    let err = wait_for_text(&err_log, "SIGHUP: re-read");
    assert!(
        err.contains(&format!(
            "SIGHUP: re-read {file}: 2 tokens accepted: 1 from --token-file {file} (re-read \
             on SIGHUP), 1 from HYPERDIAL_TOKEN (fixed until restart)"
        )),
        "{err}"
    );
    assert!(!lets_in(&s, &url, STRONG_C));
    assert!(lets_in(&s, &url, STRONG_B));
    assert!(lets_in(&s, &url, STRONG_A));
    let all = format!("{}\n{}", lines.join("\n"), err);
    for t in [STRONG_A, STRONG_B, STRONG_C] {
        assert!(!all.contains(t), "a token was printed: {all}");
    }
    child.kill().ok();
    child.wait().ok();
}

#[test]
fn a_missing_or_empty_token_file_stops_the_server_before_it_listens() {
    let s = Scratch::new("token-file-bad");
    let empty = s.write("empty", "\n# only a comment\n\n");
    for (file, expected) in [
        (empty.to_str().unwrap(), "holds no token"),
        ("no-such-file", "cannot read the token file no-such-file"),
    ] {
        let out = s.run(&[
            "server",
            "--db",
            "db.sqlite",
            "--bind",
            &format!("127.0.0.1:{}", free_port()),
            "--token-file",
            file,
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(expected), "{}", text(&out));
        // The cause is said once, not once more as the error's cause.
        assert!(
            text(&out).matches("os error").count() <= 1,
            "{}",
            text(&out)
        );
        assert!(
            !s.dir.join("db.sqlite").exists(),
            "the database was created"
        );
    }
}

/// A port already taken stops the server before it opens (creates, migrates) its database:
/// a second server started by mistake changes no file.
#[test]
fn a_port_already_taken_stops_the_server_before_it_creates_its_database() {
    let s = Scratch::new("port-taken");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = s.run(&[
        "server",
        "--db",
        "db.sqlite",
        "--bind",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        text(&out)
    );
    assert!(
        !s.dir.join("db.sqlite").exists(),
        "the database was created"
    );
    drop(taken);
    // A directory named as the database is said to be one, with the file to give instead,
    // not reported as SQLite's I/O error.
    std::fs::create_dir(s.dir.join("state")).unwrap();
    let out = s.run(&[
        "server",
        "--db",
        "state",
        "--bind",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(
            "bad database location `state`: it is a directory; give the database file, e.g. state/hyperdial.db"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn a_weak_token_gets_a_warning_that_never_shows_it() {
    let s = Scratch::new("weak-token");
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let server = ServerProcess::start_with(&s, &db, port, &["--token", "hunter2"]);
    assert!(lets_in(&s, &server.url, "hunter2"));
    let err = std::fs::read_to_string(server_err(&s, port)).unwrap();
    assert!(
        err.contains("warning: the token of --token is weak"),
        "{err}"
    );
    assert!(err.contains("at least 16"), "{err}");
    assert!(err.contains("openssl rand -hex 32"), "{err}");
    assert!(!err.contains("hunter2"), "the token was printed: {err}");
    drop(server);

    // A strong token: no warning.
    let port = free_port();
    let _server = ServerProcess::start_with(&s, &db, port, &["--token", STRONG_A]);
    let err = std::fs::read_to_string(server_err(&s, port)).unwrap();
    assert!(!err.contains("weak"), "{err}");
}

#[test]
fn a_server_on_every_address_names_this_machine_in_its_dashboard_line() {
    let s = Scratch::new("any-address");
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let args = ["--db", "db.sqlite", "--bind", &bind, "--token", STRONG_A];
    let mut child = spawn_server(&s, &args, &[], &s.dir.join("server.err"));
    let lines = startup_lines(&mut child);
    child.kill().ok();
    child.wait().ok();
    let host = hyperdial_agent::hostname();
    // The first line gives a URL a client can reach, and says it listens on all interfaces.
    let first = lines.first().expect("a first line");
    assert!(
        first.starts_with(&format!(
            "hyperdial server on http://{host}:{port} (listening on all interfaces: \
             0.0.0.0:{port}) (database "
        )),
        "{first}"
    );
    let dashboard = lines
        .iter()
        .find_map(|l| l.strip_prefix("dashboard: "))
        .expect("a dashboard line");
    assert!(
        dashboard.starts_with(&format!("http://{host}:{port}/ ")),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("every address of this machine"),
        "{dashboard}"
    );
    assert!(!dashboard.contains("0.0.0.0"), "{dashboard}");
}

#[test]
fn a_server_waits_a_bounded_time_for_a_database_that_is_not_up() {
    let s = Scratch::new("db-wait");
    let pg_port = free_port();
    let db = format!("postgres://hd:s3cret-pw@127.0.0.1:{pg_port}/hyperdial");
    let shown = format!("postgres://hd:***@127.0.0.1:{pg_port}/hyperdial");
    let bind = format!("127.0.0.1:{}", free_port());
    let out = s.run(&["server", "--db", &db, "--bind", &bind, "--db-wait", "1"]);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("waiting up to 1 s for the database").count(),
        1,
        "{err}"
    );
    assert!(err.contains(&shown), "{err}");
    assert!(
        err.contains("did not accept connections within --db-wait 1 s"),
        "{err}"
    );
    assert!(
        !err.contains("s3cret-pw"),
        "the password was printed: {err}"
    );

    // --db-wait 0 fails at once, without waiting.
    let out = s.run(&["server", "--db", &db, "--bind", &bind, "--db-wait", "0"]);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("waiting"), "{err}");
    assert!(err.contains("cannot open the database"), "{err}");
    // The store's error names the URL; the command's context does not repeat it.
    assert_eq!(err.matches(&shown).count(), 1, "{err}");
}

/// Forward every connection accepted on `listener` to `target`, both ways, until the test
/// process ends.
fn forward(listener: TcpListener, target: String) {
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
}

#[test]
fn a_server_started_before_its_postgres_waits_for_it_and_starts() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(hyperdial_store::testing::TestDb::postgres(
        "cli a_server_started_before_its_postgres_waits_for_it_and_starts",
    )) else {
        return;
    };
    // The database is reached through a port where nothing listens yet.
    let real: url_parts::Parts = url_parts::split(db.url());
    let late_port = free_port();
    let late_url = format!(
        "{}127.0.0.1:{late_port}{}",
        real.before_host, real.after_port
    );
    let s = Scratch::new("db-late");
    let port = free_port();
    let err_log = s.dir.join("server.err");
    let mut child: Child = s
        .cmd(&[
            "server",
            "--db",
            &late_url,
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&err_log).unwrap()))
        .spawn()
        .unwrap();
    wait_for_text(&err_log, "waiting up to 30 s for the database");
    // Now "PostgreSQL comes up" on that port.
    forward(
        TcpListener::bind(("127.0.0.1", late_port)).unwrap(),
        real.host_port.clone(),
    );
    let err = wait_for_text(&err_log, "accepts connections");
    assert_eq!(err.matches("waiting up to").count(), 1, "{err}");
    let url = format!("http://127.0.0.1:{port}");
    wait_until_up(&s, &mut child, &url, "");
    child.kill().ok();
    child.wait().ok();
    rt.block_on(db.remove());
}

/// Splitting a test database's URL around its host and port.
mod url_parts {
    pub struct Parts {
        /// `postgres://user[:password]@`
        pub before_host: String,
        /// `host:port`
        pub host_port: String,
        /// `/database?...`
        pub after_port: String,
    }

    pub fn split(url: &str) -> Parts {
        let scheme_end = url.find("://").unwrap() + 3;
        let rest = &url[scheme_end..];
        let host_start = scheme_end + rest.rfind('@').map(|i| i + 1).unwrap_or(0);
        let path_start = url[host_start..]
            .find('/')
            .map(|i| host_start + i)
            .unwrap_or(url.len());
        let mut host_port = url[host_start..path_start].to_string();
        if !host_port.contains(':') {
            host_port.push_str(":5432");
        }
        Parts {
            before_host: url[..host_start].to_string(),
            host_port,
            after_port: url[path_start..].to_string(),
        }
    }
}

#[test]
fn refused_requests_and_sweep_changes_are_in_the_request_log() {
    let s = Scratch::new("request-log");
    let port = free_port();
    let err_log = s.dir.join("server.err");
    let bind = format!("127.0.0.1:{port}");
    let mut child = spawn_server(
        &s,
        &["--db", "db.sqlite", "--bind", &bind, "--token", STRONG_A],
        &[("HYPERDIAL_LOG", "warn,hyperdial_server::requests=info")],
        &err_log,
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_until_up(&s, &mut child, &url, STRONG_A);
    assert!(!lets_in(&s, &url, STRONG_B));
    s.write(
        "sweep.yaml",
        "program: train.py\nmethod: grid\nparameters:\n  a: {values: [1, 2]}\n",
    );
    let created = s.run(&[
        "sweep",
        "sweep.yaml",
        "--json",
        "--server",
        &url,
        "--token",
        STRONG_A,
    ]);
    assert!(created.status.success(), "{}", text(&created));
    let id = serde_json::from_slice::<serde_json::Value>(&created.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let paused = s.run(&["pause", &id, "--server", &url, "--token", STRONG_A]);
    assert!(paused.status.success(), "{}", text(&paused));
    // A body over the 8 MiB limit: 413, refused and logged.
    let big = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request, urllib.error\n\
             req = urllib.request.Request(sys.argv[1], data=b'x' * (9 << 20), method='POST',\n\
                 headers={'Authorization': 'Bearer ' + sys.argv[2],\n\
                          'Content-Type': 'application/json'})\n\
             try:\n    urllib.request.urlopen(req)\n\
             except urllib.error.HTTPError as e:\n    print(e.code)\n\
             except OSError as e:\n    print('closed', e)\n",
            &format!("{url}/api/v1/sweeps"),
            STRONG_A,
        ])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&big.stdout);
    assert!(
        answer.starts_with("413") || answer.starts_with("closed"),
        "{answer}"
    );
    let log = wait_for_text(&err_log, "status=413");
    assert!(log.contains(&format!("sweep {id} paused")), "{log}");
    let refused = log
        .lines()
        .find(|l| l.contains("refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    for part in [
        "INFO",
        "method=GET",
        "path=\"/api/v1/sweeps\"",
        "status=401",
        "remote=\"127.0.0.1:",
    ] {
        assert!(refused.contains(part), "{part} missing: {refused}");
    }
    let created_line = log
        .lines()
        .find(|l| l.contains(&format!("sweep {id} created")))
        .unwrap_or_else(|| panic!("no creation logged:\n{log}"));
    assert!(
        created_line.contains("method=POST") && created_line.contains("status=201"),
        "{created_line}"
    );
    assert!(!log.contains(STRONG_A) && !log.contains(STRONG_B), "{log}");
    child.kill().ok();
    child.wait().ok();
}

/// A SQLite database at `path` with the schema of the migrations numbered below `below`.
fn old_sqlite(path: &Path, below: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (pool, old) = hyperdial_store::testing::old_sqlite(path, below).await;
        pool.close().await;
        std::fs::remove_dir_all(old).ok();
    });
}

#[test]
fn a_server_that_upgrades_its_database_names_the_migrations_it_applied() {
    let s = Scratch::new("upgrade-line");
    // A new database: its schema is created without a line.
    let fresh = s.dir.join("fresh.sqlite");
    let port = free_port();
    drop(ServerProcess::start(&s, &fresh, port));
    let err = std::fs::read_to_string(server_err(&s, port)).unwrap();
    assert!(!err.contains("upgraded"), "{err}");
    // An old one: one line naming what was applied.
    let db = s.dir.join("old.sqlite");
    old_sqlite(&db, "0014");
    let port = free_port();
    drop(ServerProcess::start(&s, &db, port));
    let err = std::fs::read_to_string(server_err(&s, port)).unwrap();
    assert!(
        err.contains(
            "hyperdial: upgraded the database schema: applied migrations 0014_claim_keys, \
             0015_partial_repeat_index, 0016_end_cause\n"
        ),
        "{err}"
    );
    // Up to date: no line.
    let port = free_port();
    drop(ServerProcess::start(&s, &db, port));
    let err = std::fs::read_to_string(server_err(&s, port)).unwrap();
    assert!(!err.contains("upgraded"), "{err}");
}

#[test]
fn a_server_whose_migration_fails_says_which_and_that_it_was_rolled_back() {
    let s = Scratch::new("upgrade-fails");
    let db = s.dir.join("old.sqlite");
    old_sqlite(&db, "0014");
    // An index already named as the one 0014 creates.
    let status = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE in_the_way (x INTEGER); CREATE INDEX runs_by_claim_key ON in_the_way (x);")
        .status();
    if !status.is_ok_and(|s| s.success()) {
        println!("SKIPPED: the sqlite3 command is not available to prepare the database");
        return;
    }
    let out = s.run(&[
        "server",
        "--db",
        db.to_str().unwrap(),
        "--bind",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for part in [
        "migration 0014_claim_keys failed on SQLite and was rolled back",
        "The database is as the previous migration left it",
        "Restore the backup",
    ] {
        assert!(err.contains(part), "`{part}` missing: {err}");
    }
}
