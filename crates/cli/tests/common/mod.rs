//! Helpers shared by the end-to-end tests: a scratch directory with a training script, the
//! real binary, and `hyperdial server` child processes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hyperdial")
}

/// A scratch directory with a training script.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hyperdial-e2e-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        // Prints `steps` metric lines; fails when asked; values are exact functions of the args.
        std::fs::write(
            dir.join("train.py"),
            r#"
import argparse, sys, time
p = argparse.ArgumentParser()
p.add_argument("--a", type=float, default=1.0)
p.add_argument("--b", default="x")
p.add_argument("--steps", type=int, default=3)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--crash", default="False")
args, _ = p.parse_known_args()
if args.crash == "True":
    print("about to crash", file=sys.stderr)
    sys.exit(3)
for step in range(args.steps):
    loss = args.a / (step + 1) + (0.5 if args.b == "y" else 0.0)
    print(f"hyperdial: {{\"loss\": {loss!r}, \"step_sq\": {step * step}}}", flush=True)
    time.sleep(args.sleep)
"#,
        )
        .unwrap();
        Scratch { dir }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(&self.dir)
            .env_remove("HYPERDIAL_SERVER")
            .env_remove("HYPERDIAL_TOKEN")
            .env_remove("HYPERDIAL_WANDB");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().unwrap();
        if !out.status.success() {
            eprintln!(
                "hyperdial {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A port free right now, drawn at random from 20000..32000: below Linux's ephemeral range
/// (32768..60999 by default), so the thousands of client connections a test run makes (each on
/// an ephemeral local port) cannot take it between this call and the server's bind, which made
/// a server start on a port another process held (the port the kernel hands out for `:0` is
/// an ephemeral one).
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    for attempt in 0u64..1000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        h.write_u32(std::process::id());
        let port = 20000 + (h.finish() % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something on `port` answers an HTTP request with an HTTP status line.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "GET /api/v1/sweeps HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// Wait until `child`, a server started on `port`, answers HTTP there: an error when it exits
/// first or does not answer within `limit`. Something accepting on the port is not enough: a
/// server of another test may hold the port for a moment, while this one failed to bind it.
pub fn wait_answering(child: &mut Child, port: u16, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "server exited before answering on port {port}: {status}"
            ));
        }
        if answers_http(port) {
            // A child that failed to bind exits at once; give it the moment to do so.
            std::thread::sleep(Duration::from_millis(20));
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("server on port {port} exited: {status}"));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "server did not answer on port {port} in {} s",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `hyperdial server` child on a database and port.
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
}

impl ServerProcess {
    /// A server on `db` and `port`, answering HTTP. A server that exits during its start (its
    /// standard error, kept in the scratch directory, says why) is started again, twice at
    /// most, so one failed start on a loaded machine does not fail the test.
    pub fn start(s: &Scratch, db: &Path, port: u16) -> ServerProcess {
        Self::start_with(s, db, port, &[])
    }

    /// [`ServerProcess::start`] with more options for `hyperdial server` (`--run-timeout 1`).
    pub fn start_with(s: &Scratch, db: &Path, port: u16, options: &[&str]) -> ServerProcess {
        Self::start_with_env(s, db, port, options, &[])
    }

    /// [`ServerProcess::start_with`] with more environment for the server (`LD_PRELOAD` of a
    /// fault-injection shim).
    pub fn start_with_env(
        s: &Scratch,
        db: &Path,
        port: u16,
        options: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> ServerProcess {
        let mut why = String::new();
        for attempt in 1..=3 {
            let log = s.dir.join(format!("server-{port}-{attempt}.err"));
            let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
            match Self::try_launch(s, db, port, stderr, options, env) {
                Ok(server) => return server,
                Err(e) => {
                    why = format!(
                        "{e}; stderr: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        panic!("the server did not start three times on port {port}: {why}");
    }

    /// A server on `db` and a port the kernel picks (`--bind 127.0.0.1:0`), its URL read from
    /// the line it prints. Unlike a port from [`free_port`], nothing else can hold the port
    /// meanwhile: for a restart whose clients need not find the server where it was (another
    /// test's server may have started on the old port while this one was down).
    pub fn start_anywhere(s: &Scratch, db: &Path) -> ServerProcess {
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("server-anywhere-{n}");
        let (out, err) = (
            s.dir.join(format!("{name}.out")),
            s.dir.join(format!("{name}.err")),
        );
        let mut child = s
            .cmd(&[
                "server",
                "--db",
                db.to_str().unwrap(),
                "--bind",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let printed = std::fs::read_to_string(&out).unwrap_or_default();
            let port = printed
                .split_once("hyperdial server on http://127.0.0.1:")
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse::<u16>().ok());
            if let Some(port) = port {
                break port;
            }
            let ended = child.try_wait().ok().flatten();
            if ended.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server on port 0 did not say its port ({ended:?}): {printed}{}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Err(e) = wait_answering(&mut child, port, Duration::from_secs(20)) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{e}: {}", std::fs::read_to_string(&err).unwrap_or_default());
        }
        ServerProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// [`ServerProcess::start`] with the server's stderr going to `stderr` (`Stdio::piped()` to
    /// read it from `child.stderr`), one attempt.
    pub fn launch(s: &Scratch, db: &Path, port: u16, stderr: Stdio) -> ServerProcess {
        Self::try_launch(s, db, port, stderr, &[], &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start the server and wait until this child answers an HTTP request (not only until
    /// something accepts on the port): the error says when it exited first.
    fn try_launch(
        s: &Scratch,
        db: &Path,
        port: u16,
        stderr: Stdio,
        options: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<ServerProcess, String> {
        let bind = format!("127.0.0.1:{port}");
        let mut args = vec!["server", "--db", db.to_str().unwrap(), "--bind", &bind];
        args.extend_from_slice(options);
        let mut child = s
            .cmd(&args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        match wait_answering(&mut child, port, Duration::from_secs(20)) {
            Ok(()) => Ok(ServerProcess {
                child,
                url: format!("http://127.0.0.1:{port}"),
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    pub fn kill9(&mut self) {
        // std's Child::kill sends SIGKILL on Unix.
        self.child.kill().unwrap();
        self.child.wait().ok();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `kill SIG PID` (`sig` as `kill` takes it: `-STOP`).
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

pub fn json_of(s: &Scratch, args: &[&str]) -> Value {
    let out = s.run(args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

/// Write `yaml` as the scratch's `sweep.yaml`, create its sweep on the server at `url` and
/// return the sweep's id.
pub fn create_sweep(s: &Scratch, url: &str, yaml: &str) -> String {
    s.write("sweep.yaml", yaml);
    let created = json_of(s, &["sweep", "sweep.yaml", "--json", "--server", url]);
    created["id"].as_str().unwrap().to_string()
}

pub fn sweep_id(s: &Scratch, url: &str) -> String {
    let sweeps = json_of(s, &["sweeps", "--json", "--server", url]);
    sweeps[0]["id"].as_str().unwrap().to_string()
}

/// A tiny blocking GET without extra dependencies (Python's standard library).
pub fn http_get(url: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1]).read().decode())",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tiny blocking JSON POST without extra dependencies (Python's standard library); the
/// answer's JSON. Panics on a refused request.
pub fn http_post(url: &str, body: &Value) -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request as u;r=u.Request(sys.argv[1],data=sys.argv[2].encode(),headers={'Content-Type':'application/json'});print(u.urlopen(r).read().decode())",
            url,
            &body.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "POST {url}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn wait_for(s: &Scratch, url: &str, id: &str, ok: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = json_of(s, &["runs", id, "--json", "--server", url]);
        if ok(runs.as_array().unwrap()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out; runs: {runs:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_child(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Print one line of a fault test's figures (points emitted, stored, lost, duplicated; kills
/// survived; processes left behind), and append it to the file named by
/// `HYPERDIAL_FAULT_FIGURES` when set, so `scripts/test` can show the figures of tests whose
/// output `cargo test` captures.
pub fn figures(line: &str) {
    println!("{line}");
    if let Some(path) = std::env::var_os("HYPERDIAL_FAULT_FIGURES") {
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
