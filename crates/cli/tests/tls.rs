//! HTTPS end to end with the real binary: `hyperdial server --tls-cert --tls-key` with a
//! certificate signed by a private CA made here; an agent (and the Python client in its runs,
//! and outside any run) trusting that CA with `--ca-cert` / `HYPERDIAL_CA_CERT` completes a
//! sweep; clients that do not trust it, or speak plain HTTP to the TLS port, fail at once with
//! a message saying what to fix; bad certificate or key files stop the server before it
//! listens, naming the file.

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "tls-test-token-8f3a91c07d2e";

/// A training script that reports through the Python client (which must trust the CA).
const TRAIN: &str = r#"
import sys
import hyperdial
run = hyperdial.init()
a = float(run.config.a)
for step in range(3):
    run.log({"loss": a / (step + 1)})
run.finish()
"#;

/// The repository's Python client, for scripts run outside an agent.
fn python_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python")
}

struct TlsServer {
    child: Child,
    url: String,
    banner: String,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn start_tls(s: &Scratch, certs: &certs::Certs) -> TlsServer {
    let port = free_port();
    let mut child = s
        .cmd(&[
            "server",
            "--db",
            s.dir.join("db.sqlite").to_str().unwrap(),
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--token",
            TOKEN,
            "--tls-cert",
            certs.cert.to_str().unwrap(),
            "--tls-key",
            certs.key.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    // The banner comes once the server listens; an empty one means it exited (the port taken
    // meanwhile by another process, say), and the port may then answer for someone else.
    assert!(!banner.is_empty(), "the TLS server exited before listening");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(20));
    if let Ok(Some(status)) = child.try_wait() {
        panic!("the TLS server exited after its banner: {status}: {banner}");
    }
    TlsServer {
        child,
        url: format!("https://127.0.0.1:{port}"),
        banner,
    }
}

/// Run `hyperdial ARGS` and wait at most `limit` for it: a TLS failure must not hang in
/// retries (the retry window is 60 s).
fn run_bounded(s: &Scratch, args: &[&str], limit: Duration) -> (std::process::ExitStatus, String) {
    let out_path = s.dir.join("bounded.out");
    let err_path = s.dir.join("bounded.err");
    let mut child = s
        .cmd(args)
        .env_remove("HYPERDIAL_CA_CERT")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status = wait_child(&mut child, limit);
    let text = format!(
        "{}{}",
        std::fs::read_to_string(out_path).unwrap_or_default(),
        std::fs::read_to_string(err_path).unwrap_or_default()
    );
    (status, text)
}

#[test]
fn an_agent_trusting_the_private_ca_completes_a_sweep_over_https() {
    let s = Scratch::new("tls-sweep");
    let certs = certs::make(&s.dir, &["127.0.0.1", "localhost"]);
    let server = start_tls(&s, &certs);
    assert!(
        server.banner.contains(&format!("on {}", server.url)),
        "{}",
        server.banner
    );
    s.write("train_tls.py", TRAIN);
    let ca = certs.ca.to_str().unwrap();
    let remote = ["--server", &server.url, "--token", TOKEN, "--ca-cert", ca];
    s.write(
        "sweep.yaml",
        "program: train_tls.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1, 2, 3]}\n",
    );
    let mut args = vec!["sweep", "sweep.yaml", "--json"];
    args.extend(remote);
    let id = json_of(&s, &args)["id"].as_str().unwrap().to_string();

    let mut args = vec!["agent", id.as_str()];
    args.extend(remote);
    let (status, out) = run_bounded(&s, &args, Duration::from_secs(120));
    assert!(status.success(), "{out}");
    assert!(out.contains("agent done: 3 runs (3 finished"), "{out}");

    // The Python client in each run reached the server over HTTPS: its metrics are there.
    let mut args = vec!["runs", id.as_str(), "--json"];
    args.extend(remote);
    let runs = json_of(&s, &args);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:#?}");
    for r in runs {
        assert_eq!(r["state"], "finished", "{r:#}");
        let a = r["params"]["a"].as_f64().unwrap();
        assert_eq!(r["metric"].as_f64(), Some(a / 3.0), "{r:#}");
    }

    // The CA also comes from HYPERDIAL_CA_CERT.
    let out = s
        .cmd(&[
            "sweeps",
            "--json",
            "--server",
            &server.url,
            "--token",
            TOKEN,
        ])
        .env("HYPERDIAL_CA_CERT", ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let sweeps: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sweeps[0]["id"], id.as_str());

    // The Python client outside any run: with the CA it creates and finishes a run there.
    let py = Command::new("python3")
        .args([
            "-c",
            "import hyperdial\nrun = hyperdial.init(project='tls', config={'a': 1})\nrun.log({'loss': 0.25})\nrun.finish()\nprint(run.mode, run.id)",
        ])
        .current_dir(&s.dir)
        .env("PYTHONPATH", python_dir())
        .env("HYPERDIAL_SERVER", &server.url)
        .env("HYPERDIAL_TOKEN", TOKEN)
        .env("HYPERDIAL_CA_CERT", ca)
        .env_remove("HYPERDIAL_RUN_ID")
        .output()
        .unwrap();
    let said = text(&py);
    assert!(py.status.success(), "{said}");
    let run_id = said
        .lines()
        .find_map(|l| l.strip_prefix("server "))
        .unwrap_or_else(|| panic!("not in server mode: {said}"))
        .trim()
        .to_string();
    let check = Command::new("python3")
        .args([
            "-c",
            "import json, ssl, sys, urllib.request\n\
             ctx = ssl.create_default_context(cafile=sys.argv[3])\n\
             req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]})\n\
             print(json.load(urllib.request.urlopen(req, context=ctx))['state'])",
            &format!("{}/api/v1/runs/{run_id}", server.url),
            TOKEN,
            ca,
        ])
        .output()
        .unwrap();
    assert_eq!(text(&check).trim(), "finished", "{}", text(&check));

    // Without the CA the Python client says why it cannot use the server (and keeps the run
    // offline for `hyperdial sync`).
    let py = Command::new("python3")
        .args([
            "-c",
            "import hyperdial\nrun = hyperdial.init(project='tls')\nrun.log({'loss': 1})\nrun.finish()\nprint(run.mode)",
        ])
        .current_dir(&s.dir)
        .env("PYTHONPATH", python_dir())
        .env("HYPERDIAL_SERVER", &server.url)
        .env("HYPERDIAL_TOKEN", TOKEN)
        .env_remove("HYPERDIAL_CA_CERT")
        .env_remove("HYPERDIAL_RUN_ID")
        .output()
        .unwrap();
    let said = text(&py);
    assert!(py.status.success(), "{said}");
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        "offline",
        "{said}"
    );
    assert!(
        said.contains("does not verify") && said.contains("HYPERDIAL_CA_CERT"),
        "{said}"
    );
}

#[test]
fn clients_that_do_not_trust_the_server_or_speak_plain_http_fail_at_once() {
    let s = Scratch::new("tls-refused");
    let certs = certs::make(&s.dir, &["127.0.0.1"]);
    let server = start_tls(&s, &certs);
    let limit = Duration::from_secs(20);

    // No CA: the built-in roots do not know the private CA.
    let (status, out) = run_bounded(
        &s,
        &["sweeps", "--server", &server.url, "--token", TOKEN],
        limit,
    );
    assert!(!status.success());
    assert!(
        out.contains("certificate is not trusted") && out.contains("--ca-cert"),
        "{out}"
    );

    // An agent trusting another CA: refused at its first request, no retrying for a minute.
    let other = certs.other_ca.to_str().unwrap();
    let (status, out) = run_bounded(
        &s,
        &[
            "agent",
            "nosuchsweep",
            "--server",
            &server.url,
            "--token",
            TOKEN,
            "--ca-cert",
            other,
        ],
        limit,
    );
    assert!(!status.success());
    assert!(out.contains("certificate is not trusted"), "{out}");

    // Plain HTTP to the TLS port: the server says to use https://.
    let plain = server.url.replacen("https://", "http://", 1);
    for args in [
        vec!["sweeps", "--server", plain.as_str(), "--token", TOKEN],
        vec![
            "agent",
            "nosuchsweep",
            "--server",
            plain.as_str(),
            "--token",
            TOKEN,
        ],
    ] {
        let (status, out) = run_bounded(&s, &args, limit);
        assert!(!status.success(), "{args:?}");
        assert!(out.contains("speaks HTTPS only"), "{args:?}: {out}");
    }

    // HTTPS to a plain HTTP server: the client says the server does not speak TLS.
    let plain_port = free_port();
    let _plain_server = ServerProcess::start(&s, &s.dir.join("plain.sqlite"), plain_port);
    let (status, out) = run_bounded(
        &s,
        &[
            "sweeps",
            "--server",
            &format!("https://127.0.0.1:{plain_port}"),
        ],
        limit,
    );
    assert!(!status.success());
    assert!(out.contains("does not speak TLS"), "{out}");

    // A CA file that is not one.
    let junk = s.write("junk.pem", "not a certificate\n");
    let (status, out) = run_bounded(
        &s,
        &[
            "sweeps",
            "--server",
            &server.url,
            "--ca-cert",
            junk.to_str().unwrap(),
        ],
        limit,
    );
    assert!(!status.success());
    assert!(
        out.contains("junk.pem") && out.contains("no PEM certificate"),
        "{out}"
    );
}

#[test]
fn bad_certificate_or_key_files_stop_the_server_naming_the_file() {
    let s = Scratch::new("tls-bad-files");
    let certs = certs::make(&s.dir, &["127.0.0.1"]);
    let elsewhere = s.dir.join("other");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let other = certs::make(&elsewhere, &["127.0.0.1"]);
    let missing = s.dir.join("missing.pem");
    // (certificate, key, what the error says, the file it names)
    type Case<'a> = (
        &'a std::path::Path,
        &'a std::path::Path,
        &'a str,
        &'a std::path::Path,
    );
    let cases: Vec<Case> = vec![
        (
            &missing,
            &certs.key,
            "cannot read the TLS certificate",
            &missing,
        ),
        (
            &certs.key,
            &certs.key,
            "holds a private key, not a certificate",
            &certs.key,
        ),
        (
            &certs.cert,
            &certs.cert,
            "holds a certificate, not a private key",
            &certs.cert,
        ),
        (
            &certs.cert,
            &other.key,
            "the key does not belong to the certificate",
            &other.key,
        ),
    ];
    for (cert, key, expected, named) in cases {
        let port = free_port();
        let (status, out) = run_bounded(
            &s,
            &[
                "server",
                "--db",
                s.dir.join("db.sqlite").to_str().unwrap(),
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
            Duration::from_secs(20),
        );
        assert!(!status.success(), "{out}");
        assert!(out.contains(expected), "expected {expected:?}: {out}");
        assert!(out.contains(&named.display().to_string()), "{out}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
    // Only one of the two files: clap refuses before anything starts.
    let (status, out) = run_bounded(
        &s,
        &["server", "--tls-cert", certs.cert.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert!(!status.success());
    assert!(out.contains("--tls-key"), "{out}");
}

#[test]
fn a_server_off_loopback_without_tls_warns_that_the_token_crosses_in_clear() {
    let s = Scratch::new("tls-warning");
    let port = free_port();
    let mut child = s
        .cmd(&[
            "server",
            "--db",
            s.dir.join("db.sqlite").to_str().unwrap(),
            "--bind",
            &format!("0.0.0.0:{port}"),
            "--token",
            TOKEN,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().ok();
    child.wait().ok();
    assert!(
        line.contains("without TLS") && line.contains("--tls-cert"),
        "{line}"
    );
}

/// Start `hyperdial server` off loopback with `extra` arguments, expecting it to refuse at
/// start: what it said, after checking that it failed, announced nothing on standard output,
/// created no database and left its port closed.
fn refused_off_loopback(name: &str, extra: &[&str]) -> String {
    let s = Scratch::new(name);
    let db = s.dir.join("db.sqlite");
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let mut args = vec!["server", "--db", db.to_str().unwrap(), "--bind", &bind];
    args.extend_from_slice(extra);
    let (status, said) = run_bounded(&s, &args, Duration::from_secs(20));
    assert!(!status.success(), "{said}");
    let stdout = std::fs::read_to_string(s.dir.join("bounded.out")).unwrap();
    assert_eq!(stdout, "", "{said}");
    assert!(!db.exists(), "the database was created: {said}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    said
}

#[test]
fn a_server_off_loopback_without_a_token_is_refused_before_it_opens_the_database_or_says_it_serves()
{
    let said = refused_off_loopback("no-token-off-loopback", &[]);
    assert!(
        said.contains("refusing to listen on 0.0.0.0") && said.contains("--token"),
        "{said}"
    );
}

#[test]
fn a_token_no_client_can_send_is_refused_at_start() {
    // HTTP trims a header value's surrounding whitespace: a token of spaces could never
    // match what arrives, so every client would be refused.
    let said = refused_off_loopback("blank-token", &["--token", "   "]);
    assert!(
        said.contains("the token of --token cannot be used") && said.contains("whitespace"),
        "{said}"
    );
}
