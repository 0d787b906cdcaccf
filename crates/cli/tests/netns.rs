//! Across hosts, for real: the server and two agents on three network "hosts" (Linux network
//! namespaces joined by veth links), HTTPS with a private CA and a token, and one agent's link
//! cut in the middle of a run.
//!
//! Layout (`<r>` is random per test run):
//!
//! ```text
//!   hd-a-<r>  198.18.1.2/30 ──veth── 198.18.1.1/30 ┐
//!                                                  hd-srv-<r>: server on 198.18.0.1 (lo)
//!   hd-b-<r>  198.18.2.2/30 ──veth── 198.18.2.1/30 ┘
//! ```
//!
//! Addresses come from 198.18.0.0/15, the range set aside for network tests; the namespaces
//! have no route anywhere else. When PostgreSQL's `initdb` and `pg_ctl` are installed (and a
//! `postgres` user exists), a private PostgreSQL cluster runs inside the server's namespace
//! and the server stores there (`--db postgres://…`); otherwise it uses SQLite, and says so.
//! The server runs with `--run-timeout 5`. Agent B claims a run
//! whose process lasts long; then agent A starts, and B's link goes down (`ip link set … down`
//! inside B). Asserted: B's run becomes `crashed` within the documented window (its last
//! report + the run timeout + one janitor interval; the moment its retry is queued), ending at
//! its last report; A runs its retry to the end; when B's
//! link comes back, B's late heartbeat, metrics and finish are refused (`409 run_crashed`,
//! never a 500), B stops that run's process and exits cleanly; every grid point is finished
//! exactly once, the retry's history holds each step once, and the crashed attempt gained no
//! metric point after it was crashed. Namespaces and processes are removed by guards, also
//! when an assertion fails.
//!
//! Needs root and `ip netns` (CI runs as root); otherwise it prints a `SKIPPED:` line (also
//! appended to `$HYPERDIAL_SKIPPED`) instead of passing in silence.

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "netns-test-token-5b7e20d9c4a1";
const SERVER_IP: &str = "198.18.0.1";
const PORT: u16 = 8443;
/// `--run-timeout` of the server, in seconds.
const RUN_TIMEOUT_S: u64 = 5;
/// Steps of a run on agent A (0.5 s each) and on agent B (long enough to outlive the outage).
const STEPS_A: u32 = 8;
const STEPS_B: u32 = 120;
/// The whole test's bound.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Report a test that cannot run here, loudly.
fn skipped(reason: &str) {
    let line = format!("SKIPPED: netns::a_cut_link_crashes_its_runs_which_are_retried_elsewhere_and_late_reports_are_refused ({reason})");
    println!("{line}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("HYPERDIAL_SKIPPED") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Run a command that must succeed.
fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why this machine cannot run the test, if it cannot.
fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("needs root for network namespaces; CI runs as root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => {}
        _ => return Some("`ip netns` is not available (install iproute2)".into()),
    }
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("python3 is not installed".into()),
    }
}

/// The three namespaces and their links; dropping it deletes them (and so the links).
struct Net {
    srv: String,
    a: String,
    b: String,
    /// B's end of its link.
    b_link: String,
}

impl Net {
    fn new() -> Net {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let r = format!(
            "{:06x}",
            (nanos ^ std::process::id().rotate_left(12)) & 0xff_ffff
        );
        let net = Net {
            srv: format!("hd-srv-{r}"),
            a: format!("hd-a-{r}"),
            b: format!("hd-b-{r}"),
            b_link: format!("hd-bs-{r}"),
        };
        for ns in [&net.srv, &net.a, &net.b] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip",
            "-n",
            &net.srv,
            "addr",
            "add",
            &format!("{SERVER_IP}/32"),
            "dev",
            "lo",
        ]);
        for (ns, subnet, srv_end, agent_end) in [
            (&net.a, 1, format!("hd-sa-{r}"), format!("hd-as-{r}")),
            (&net.b, 2, format!("hd-sb-{r}"), net.b_link.clone()),
        ] {
            sh(&[
                "ip", "link", "add", &srv_end, "netns", &net.srv, "type", "veth", "peer", "name",
                &agent_end, "netns", ns,
            ]);
            sh(&[
                "ip",
                "-n",
                &net.srv,
                "addr",
                "add",
                &format!("198.18.{subnet}.1/30"),
                "dev",
                &srv_end,
            ]);
            sh(&["ip", "-n", &net.srv, "link", "set", &srv_end, "up"]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("198.18.{subnet}.2/30"),
                "dev",
                &agent_end,
            ]);
            sh(&["ip", "-n", ns, "link", "set", &agent_end, "up"]);
            net.route(ns, subnet);
        }
        net
    }

    /// The route of an agent's namespace to the server (lost whenever its link goes down).
    fn route(&self, ns: &str, subnet: u8) {
        sh(&[
            "ip",
            "-n",
            ns,
            "route",
            "replace",
            &format!("{SERVER_IP}/32"),
            "via",
            &format!("198.18.{subnet}.1"),
        ]);
    }

    fn cut_b(&self) {
        sh(&["ip", "-n", &self.b, "link", "set", &self.b_link, "down"]);
    }

    fn restore_b(&self) {
        sh(&["ip", "-n", &self.b, "link", "set", &self.b_link, "up"]);
        self.route(&self.b, 2);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and so their peers.
        for ns in [&self.srv, &self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Where PostgreSQL's `initdb` and `pg_ctl` are, when they are installed and the `postgres`
/// user exists (PostgreSQL refuses to run as root).
fn postgres_bin() -> Option<PathBuf> {
    let user = Command::new("id").arg("postgres").output().ok()?;
    if !user.status.success() {
        return None;
    }
    let mut dirs = vec![PathBuf::from("/usr/local/bin")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(entries.filter_map(|e| e.ok().map(|e| e.path().join("bin"))));
    }
    dirs.into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// A private PostgreSQL cluster inside a namespace, listening on its 127.0.0.1; stopped (and
/// its files removed) on drop.
struct Postgres {
    ns: String,
    bin: PathBuf,
    dir: PathBuf,
    url: String,
}

impl Postgres {
    const PORT: u16 = 5436;

    fn start(ns: &str, bin: PathBuf, dir: PathBuf) -> Postgres {
        std::fs::create_dir_all(&dir).unwrap();
        sh(&["chown", "postgres", dir.to_str().unwrap()]);
        let d = dir.display();
        let b = bin.display();
        let script = format!(
            "'{b}/initdb' -D '{d}/data' -A trust -U postgres >/dev/null && \
             '{b}/pg_ctl' -D '{d}/data' -w -l '{d}/log' \
             -o \"-k '{d}' -p {port} -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null",
            port = Self::PORT
        );
        let pg = Postgres {
            ns: ns.to_string(),
            bin,
            dir: dir.clone(),
            url: format!("postgres://postgres@127.0.0.1:{}/postgres", Self::PORT),
        };
        let out = Command::new("ip")
            .args([
                "netns", "exec", ns, "su", "postgres", "-s", "/bin/sh", "-c", &script,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PostgreSQL did not start in {ns}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        pg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let script = format!(
            "'{}/pg_ctl' -D '{}/data' -m immediate stop",
            self.bin.display(),
            self.dir.display()
        );
        let _ = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "su", "postgres", "-s", "/bin/sh", "-c", &script,
            ])
            .output();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Child processes killed (SIGKILL) and reaped on drop, before the namespaces go.
#[derive(Default)]
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// `hyperdial ARGS` inside namespace `ns`, in `dir`, with no HYPERDIAL_* of the test's own.
fn hyperdial_in(ns: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, bin()])
        .args(args)
        .current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("HYPERDIAL_") {
            c.env_remove(key);
        }
    }
    c
}

/// The API as seen from the server's namespace (Python's standard library, trusting the CA).
struct Api {
    ns: String,
    ca: PathBuf,
}

impl Api {
    fn get(&self, path: &str) -> Value {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c"])
            .arg(
                "import json, ssl, sys, urllib.request\n\
                 ctx = ssl.create_default_context(cafile=sys.argv[3])\n\
                 req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]})\n\
                 print(urllib.request.urlopen(req, context=ctx, timeout=20).read().decode())",
            )
            .arg(format!("https://{SERVER_IP}:{PORT}{path}"))
            .arg(TOKEN)
            .arg(&self.ca)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "GET {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn runs(&self, sweep: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/runs?sweep={sweep}&limit=1000"))["runs"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Poll `what` until it returns `Some`, within the test's bound.
    fn wait<T>(&self, started: Instant, label: &str, mut what: impl FnMut(&Api) -> Option<T>) -> T {
        loop {
            if let Some(found) = what(self) {
                return found;
            }
            assert!(
                started.elapsed() < TEST_LIMIT,
                "timed out waiting for {label}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Metric points of a run's history: (step, time_ms) per stored point of `loss`.
fn loss_points(run: &Value) -> Vec<(i64, i64)> {
    run["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["values"].get("loss").is_some())
        .map(|p| (p["step"].as_i64().unwrap(), p["time_ms"].as_i64().unwrap()))
        .collect()
}

#[test]
fn a_cut_link_crashes_its_runs_which_are_retried_elsewhere_and_late_reports_are_refused() {
    if let Some(reason) = unavailable() {
        return skipped(&reason);
    }
    let started = Instant::now();
    let s = Scratch::new("netns");
    let certs = certs::make(&s.dir, &[SERVER_IP]);
    let net = Net::new();
    // PostgreSQL in the server's namespace when it is installed; else SQLite.
    let postgres = postgres_bin().map(|bin| {
        let dir = std::env::temp_dir().join(format!("hyperdial-netns-pg-{}", std::process::id()));
        Postgres::start(&net.srv, bin, dir)
    });
    let db = match &postgres {
        Some(pg) => pg.url.clone(),
        None => {
            println!("netns: PostgreSQL is not installed here; the server stores in SQLite");
            s.dir.join("db.sqlite").display().to_string()
        }
    };
    let mut procs = Procs::default();
    // The script: STEPS (from the agent's environment) metric lines half a second apart; a
    // file when it ran to its end.
    s.write(
        "long.py",
        r#"
import os, sys, time
x = float([a.split("=", 1)[1] for a in sys.argv if a.startswith("--x=")][0])
steps = int(os.environ["STEPS"])
for step in range(steps):
    print('hyperdial: {"loss": %r, "_step": %d}' % (x / (step + 1), step), flush=True)
    time.sleep(0.5)
open("ran-to-the-end-" + os.environ["HYPERDIAL_RUN_ID"], "w").close()
"#,
    );
    s.write(
        "sweep.yaml",
        "program: long.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  x: {values: [1, 2, 3, 4]}\n",
    );
    let ca = certs.ca.to_str().unwrap();
    let url = format!("https://{SERVER_IP}:{PORT}");
    let remote = ["--server", url.as_str(), "--token", TOKEN, "--ca-cert", ca];

    // The server, on its namespace's address, with TLS and a short run timeout.
    let server_log = s.dir.join("server.log");
    let mut server = hyperdial_in(
        &net.srv,
        &s.dir,
        &[
            "server",
            "--db",
            &db,
            "--bind",
            &format!("{SERVER_IP}:{PORT}"),
            "--token",
            TOKEN,
            "--tls-cert",
            certs.cert.to_str().unwrap(),
            "--tls-key",
            certs.key.to_str().unwrap(),
            "--run-timeout",
            &RUN_TIMEOUT_S.to_string(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&server_log).unwrap())
    .spawn()
    .unwrap();
    let mut banner = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    procs.0.push(server);
    assert!(banner.contains(&format!("on {url}")), "{banner}");
    let api = Api {
        ns: net.srv.clone(),
        ca: certs.ca.clone(),
    };

    let mut args = vec!["sweep", "sweep.yaml", "--json"];
    args.extend(remote);
    let created = hyperdial_in(&net.srv, &s.dir, &args).output().unwrap();
    assert!(created.status.success(), "{}", text(&created));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let sweep = created["id"].as_str().unwrap().to_string();

    // Agent B first, alone, so the first run is B's; it runs one run and then exits.
    let agent = |ns: &str, name: &str, steps: u32, extra: &[&str]| -> Child {
        let dir = s.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(s.dir.join("long.py"), dir.join("long.py")).unwrap();
        let mut args = vec!["agent", sweep.as_str()];
        args.extend(remote);
        args.extend(extra);
        hyperdial_in(ns, &dir, &args)
            .env("STEPS", steps.to_string())
            // B keeps retrying its requests through the whole outage.
            .env("HYPERDIAL_RETRY_SECONDS", "110")
            .stdout(std::fs::File::create(s.dir.join(format!("{name}.out"))).unwrap())
            .stderr(std::fs::File::create(s.dir.join(format!("{name}.err"))).unwrap())
            .spawn()
            .unwrap()
    };
    procs.0.push(agent(&net.b, "b", STEPS_B, &["--count", "1"]));
    let b_run = api.wait(started, "agent B's run to report", |api| {
        api.runs(&sweep)
            .into_iter()
            .find(|r| r["state"] == "running" && r["steps"].as_i64().unwrap_or(0) >= 2)
    });
    let b_run_id = b_run["id"].as_str().unwrap().to_string();
    let b_agent = b_run["agent"].as_str().unwrap().to_string();
    procs.0.push(agent(&net.a, "a", STEPS_A, &[]));
    api.wait(started, "agent A's first run", |api| {
        api.runs(&sweep)
            .into_iter()
            .find(|r| r["state"] == "running" && r["agent"] != b_agent.as_str())
    });

    // Cut B's link in the middle of its run.
    net.cut_b();

    // B's run is crashed within the documented window after its last report.
    let crashed = api.wait(started, "B's run to be crashed", |api| {
        let run = api.get(&format!("/api/v1/runs/{b_run_id}"));
        (run["state"] != "running").then_some(run)
    });
    assert_eq!(crashed["state"], "crashed", "{crashed:#}");
    assert_eq!(crashed["error"], "the agent stopped reporting");
    // It ended at its last report, not when the server noticed the silence.
    assert_eq!(
        crashed["finished_ms"], crashed["heartbeat_ms"],
        "{crashed:#}"
    );
    let points_when_crashed = loss_points(&crashed);

    // Its retry is run to the end by agent A.
    let retry = api.wait(started, "the retry to finish on A", |api| {
        api.runs(&sweep)
            .into_iter()
            .find(|r| r["retry_of"] == b_run_id.as_str() && r["state"] == "finished")
    });
    assert_ne!(retry["agent"], b_agent.as_str(), "{retry:#}");
    // The janitor queued the retry when it crashed the run: that moment is in the window.
    let crashed_at = retry["created_ms"].as_i64().unwrap();
    let silent_ms = crashed_at - crashed["heartbeat_ms"].as_i64().unwrap();
    let limit_ms = (RUN_TIMEOUT_S * 1000) as i64;
    let interval_ms =
        hyperdial_server::janitor_interval(Duration::from_secs(RUN_TIMEOUT_S)).as_millis() as i64;
    assert!(
        silent_ms >= limit_ms && silent_ms <= limit_ms + interval_ms + 1000,
        "crashed {silent_ms} ms after its last report; the window is {limit_ms} ms + {interval_ms} ms"
    );

    // The link comes back: B's late reports are refused, B stops its process and exits.
    net.restore_b();
    let b = &mut procs.0[1];
    let left = TEST_LIMIT.saturating_sub(started.elapsed());
    let status = wait_child(b, left);
    let b_said = format!(
        "{}{}",
        std::fs::read_to_string(s.dir.join("b.out")).unwrap_or_default(),
        std::fs::read_to_string(s.dir.join("b.err")).unwrap_or_default()
    );
    println!("agent B said:\n{b_said}");
    assert!(status.success(), "agent B: {status:?}\n{b_said}");
    assert!(
        b_said.contains("the server no longer takes its reports") && b_said.contains("crashed"),
        "{b_said}"
    );
    assert!(
        !s.dir
            .join("b")
            .join(format!("ran-to-the-end-{b_run_id}"))
            .exists(),
        "B's crashed run was not stopped"
    );

    // A finishes the sweep and exits.
    let a = &mut procs.0[2];
    let left = TEST_LIMIT.saturating_sub(started.elapsed());
    let status = wait_child(a, left);
    let a_said = std::fs::read_to_string(s.dir.join("a.out")).unwrap_or_default();
    assert!(status.success(), "agent A: {status:?}\n{a_said}");

    // Every grid point finished exactly once; the crashed attempt is the only other run.
    let runs = api.runs(&sweep);
    let mut finished: HashMap<String, usize> = HashMap::new();
    for r in &runs {
        match r["state"].as_str().unwrap() {
            "finished" => *finished.entry(r["params"]["x"].to_string()).or_default() += 1,
            "crashed" => assert_eq!(r["id"], b_run_id.as_str(), "{r:#}"),
            other => panic!("a run ended {other}: {r:#}"),
        }
    }
    assert_eq!(finished.len(), 4, "{runs:#?}");
    assert!(finished.values().all(|&n| n == 1), "{finished:?}");
    assert_eq!(runs.len(), 5, "{runs:#?}");
    let sweep_now = api.get(&format!("/api/v1/sweeps/{sweep}"));
    assert_eq!(sweep_now["state"], "finished", "{sweep_now:#}");

    // The retry holds each step once; the crashed attempt gained nothing after its crash.
    let retry = api.get(&format!("/api/v1/runs/{}", retry["id"].as_str().unwrap()));
    let steps: Vec<i64> = loss_points(&retry).iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (0..STEPS_A as i64).collect::<Vec<_>>());
    let after = api.get(&format!("/api/v1/runs/{b_run_id}"));
    assert_eq!(after["state"], "crashed");
    assert_eq!(after["finished_ms"], crashed["finished_ms"]);
    assert_eq!(
        loss_points(&after),
        points_when_crashed,
        "late points were stored"
    );
    assert!(points_when_crashed.iter().all(|(_, t)| *t <= crashed_at));

    // No request was answered with a server error.
    let log = std::fs::read_to_string(&server_log).unwrap_or_default();
    assert!(!log.contains("ERROR") && !log.contains("panicked"), "{log}");
    figures(&format!(
        "netns ({}): run timeout {RUN_TIMEOUT_S} s, crashed {silent_ms} ms after its last report; \
         {} points of the crashed attempt kept, 0 late points stored; 4/4 grid points finished once; \
         test took {:.1} s",
        if postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        points_when_crashed.len(),
        started.elapsed().as_secs_f64()
    ));
    drop(procs);
    drop(postgres);
    drop(net);
}
