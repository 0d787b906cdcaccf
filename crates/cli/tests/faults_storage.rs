//! Storage faults against the real `hyperdial server`, with its database on a small tmpfs.
//!
//! A full disk: writes answer `503` with the code `disk_full` and a message naming the volume,
//! never `500`, never a success for a point that is not stored; once space is freed, writes
//! succeed again without a restart, and a restarted server finds every acknowledged point.
//! A read-only volume (a read-only bind mount of the database's directory): the server starts,
//! reads work, writes answer `503` with the code `read_only` and store nothing. SQLite keeps
//! one set of file descriptors per database file for all the connections of a process, so a
//! file first opened read-only stays so until the server restarts; after the restart on the
//! volume made writable again, writes succeed.
//!
//! Injected I/O errors (`tests/fault_inject/eio.c`, built with `cc` and loaded with
//! `LD_PRELOAD`, fails the server's writes to its database with `EIO` while a switch file
//! exists): writes answer `503` `io_error` and store nothing; once the switch is gone, writes
//! succeed again without a restart, and every acknowledged point is stored.
//!
//! Mounting needs root (CI runs as root). Without it, or when `mount` fails, each test prints
//! `SKIPPED: ...` (and appends it to `target/skipped.txt` when that file exists, for
//! `scripts/test` to count) instead of passing silently; so does the I/O error test without a C
//! compiler.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_port, Scratch, ServerProcess};
use serde_json::{json, Value};

/// Report a test that could not run.
fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED: {test} ({reason})");
    println!("{line}");
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/skipped.txt");
    if list.exists() {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(list) {
            writeln!(f, "{line}").ok();
        }
    }
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. `4m`) at `dir`, or say why not.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("mounting a tmpfs needs root".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }
}

impl Tmpfs {
    /// Bind-mount `src` at `dir`, read-only, or say why not.
    fn bind_read_only(src: &Path, dir: &Path) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("mount")
                .args(args)
                .output()
                .map_err(|e| format!("cannot run mount: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "mount {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let (src_s, dir_s) = (src.to_str().unwrap(), dir.to_str().unwrap());
        run(&["--bind", src_s, dir_s])?;
        let mounted = Tmpfs {
            dir: dir.to_path_buf(),
        };
        run(&["-o", "remount,bind,ro", dir_s])?;
        Ok(mounted)
    }

    fn make_writable(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,bind,rw"])
            .arg(&self.dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount read-write failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status()
            .ok();
    }
}

/// Fill the volume holding `dir` with one file until the disk refuses more.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // Whatever a 64 KiB write left over, take byte by byte.
    while f.write_all(&[0]).is_ok() {}
    f.sync_all().ok();
    filler
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(url: &str) -> Api {
        Api {
            base: url.to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// The steps of `run` the server has stored.
    async fn stored_steps(&self, run: &str) -> BTreeSet<i64> {
        let (status, run) = self.get(&format!("/api/v1/runs/{run}")).await;
        assert_eq!(status, 200, "{run}");
        run["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["step"].as_i64().unwrap())
            .collect()
    }
}

/// A batch of `n` points from `first` on, each with a few wide values (so the WAL grows fast).
fn batch(first: i64, n: i64) -> Value {
    let points: Vec<Value> = (first..first + n)
        .map(|step| {
            let mut values = serde_json::Map::new();
            for k in 0..8 {
                values.insert(
                    format!("metric_with_a_long_name_{k:02}"),
                    json!(step as f64 + k as f64 / 10.0),
                );
            }
            json!({"step": step, "values": values})
        })
        .collect();
    json!({ "points": points })
}

/// The answer to a write during a fault must be a success or a `503` naming the fault, with
/// none of the database's own words.
fn check_fault_answer(status: u16, body: &Value, code: &str, volume: &Path) {
    assert_ne!(status, 500, "a storage fault answered 500: {body}");
    if status == 503 {
        assert_eq!(body["code"], code, "{body}");
        let message = body["error"].as_str().unwrap();
        let text = body.to_string();
        for raw in [
            "SQLITE",
            "error returned from database",
            "(code:",
            "database or disk is full",
            "attempt to write",
        ] {
            assert!(
                !text.contains(raw),
                "database text reached the client: {text}"
            );
        }
        if code == "disk_full" {
            assert!(
                message.starts_with("the database disk is full: free space on the volume holding"),
                "{message}"
            );
            assert!(message.contains(&volume.display().to_string()), "{message}");
        }
    } else {
        assert!((200..300).contains(&status), "{status} {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_stores_nothing_it_does_not_acknowledge_and_heals() {
    let s = Scratch::new("faults-disk-full");
    let vol = s.dir.join("vol");
    let _mount = match Tmpfs::mount(&vol, "3m") {
        Ok(m) => m,
        Err(reason) => return skip("storage fault test: disk full", &reason),
    };
    let db = vol.join("db.sqlite");
    let port = free_port();
    let mut server = ServerProcess::start(&s, &db, port);
    let api = Api::new(&server.url);

    let (status, sweep) = api
        .post("/api/v1/sweeps", json!({"source": "method: random\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {min: 0.0, max: 1.0}\n"}))
        .await;
    assert_eq!(status, 201, "{sweep}");
    let sweep = sweep["id"].as_str().unwrap().to_string();
    let (status, run) = api.post("/api/v1/runs", json!({"project": "faults"})).await;
    assert_eq!(status, 201, "{run}");
    let run = run["id"].as_str().unwrap().to_string();
    let metrics = format!("/api/v1/runs/{run}/metrics");

    let mut acked: BTreeSet<i64> = BTreeSet::new();
    let mut refused: BTreeSet<i64> = BTreeSet::new();
    let mut next = 0i64;
    const N: i64 = 50;
    let (status, body) = api.post(&metrics, batch(next, N)).await;
    assert_eq!(status, 200, "{body}");
    acked.extend(next..next + N);
    next += N;

    let filler = fill(&vol);
    // Keep writing until the disk says no, then a little longer: every answer is a success
    // whose points are stored, or a 503 that names the full disk.
    let mut faults = 0;
    let mut writes = 0;
    while faults < 5 {
        assert!(writes < 2000, "the full disk never refused a write");
        writes += 1;
        let (status, body) = api.post(&metrics, batch(next, N)).await;
        check_fault_answer(status, &body, "disk_full", &vol);
        if status == 503 {
            faults += 1;
            refused.extend(next..next + N);
        } else {
            acked.extend(next..next + N);
        }
        next += N;
        // Other writes meet the same fault the same way.
        let (status, body) = api
            .post(&format!("/api/v1/runs/{run}/heartbeat"), json!({}))
            .await;
        check_fault_answer(status, &body, "disk_full", &vol);
        let (status, body) = api
            .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
            .await;
        check_fault_answer(status, &body, "disk_full", &vol);
    }
    // A fresh read during the fault: every acknowledged point is there, no refused one is.
    let stored = api.stored_steps(&run).await;
    assert!(
        acked.is_subset(&stored),
        "acknowledged but not stored: {:?}",
        acked.difference(&stored).collect::<Vec<_>>()
    );
    assert!(
        refused.is_disjoint(&stored),
        "refused yet stored: {:?}",
        refused.intersection(&stored).collect::<Vec<_>>()
    );

    // Free the space: the very next write succeeds, without a restart.
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..3 {
        let (status, body) = api.post(&metrics, batch(next, N)).await;
        assert_eq!(status, 200, "after the disk was freed: {body}");
        acked.extend(next..next + N);
        next += N;
    }
    let (status, body) = api
        .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
        .await;
    assert_eq!(status, 200, "claim after the disk was freed: {body}");
    let stored = api.stored_steps(&run).await;
    assert!(acked.is_subset(&stored));
    assert!(refused.is_disjoint(&stored));

    // And a server killed and restarted on the same database has every acknowledged point.
    server.kill9();
    let server = ServerProcess::start(&s, &db, port);
    let api = Api::new(&server.url);
    let stored = api.stored_steps(&run).await;
    assert!(
        acked.is_subset(&stored),
        "lost after a restart: {:?}",
        acked.difference(&stored).collect::<Vec<_>>()
    );
    assert!(refused.is_disjoint(&stored));
    println!(
        "disk full: {writes} batches during the fault, {faults} refused with 503, {} points acknowledged and stored, {} refused and absent",
        acked.len(),
        refused.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_answers_reads_and_refuses_writes_with_503() {
    let s = Scratch::new("faults-read-only");
    let vol = s.dir.join("vol");
    let _mount = match Tmpfs::mount(&vol, "8m") {
        Ok(m) => m,
        Err(reason) => return skip("storage fault test: read-only database", &reason),
    };
    let data = vol.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let mut server = ServerProcess::start(&s, &data.join("db.sqlite"), port);
    let api = Api::new(&server.url);
    let (status, run) = api.post("/api/v1/runs", json!({"project": "faults"})).await;
    assert_eq!(status, 201, "{run}");
    let run = run["id"].as_str().unwrap().to_string();
    let metrics = format!("/api/v1/runs/{run}/metrics");
    assert_eq!(api.post(&metrics, batch(0, 10)).await.0, 200);
    // Killed, so the WAL and its index stay beside the database, as after a crash.
    server.kill9();

    let ro = vol.join("ro");
    let mount = match Tmpfs::bind_read_only(&data, &ro) {
        Ok(m) => m,
        Err(reason) => return skip("storage fault test: read-only database", &reason),
    };
    let server = ServerProcess::start(&s, &ro.join("db.sqlite"), port);
    let api = Api::new(&server.url);
    assert_eq!(
        api.stored_steps(&run).await,
        (0..10).collect(),
        "reads work"
    );
    for first in [10, 20] {
        let (status, body) = api.post(&metrics, batch(first, 10)).await;
        assert_eq!(status, 503, "{body}");
        check_fault_answer(status, &body, "read_only", &ro);
        let message = body["error"].as_str().unwrap();
        assert!(
            message.starts_with("the database is read-only: make"),
            "{message}"
        );
    }
    let (status, body) = api.post("/api/v1/runs", json!({})).await;
    check_fault_answer(status, &body, "read_only", &ro);
    assert_eq!(status, 503);
    assert_eq!(
        api.stored_steps(&run).await,
        (0..10).collect(),
        "nothing refused is stored"
    );
    drop(server);

    mount.make_writable();
    let server = ServerProcess::start(&s, &ro.join("db.sqlite"), port);
    let api = Api::new(&server.url);
    assert_eq!(api.post(&metrics, batch(10, 10)).await.0, 200);
    assert_eq!(api.stored_steps(&run).await, (0..20).collect());
}

/// A server whose writes to its database (under `data/` of the scratch directory) fail with
/// `EIO` while the switch file exists: the server, the data directory and the switch; `None`
/// (after reporting the skip) without a C compiler.
fn eio_server(s: &Scratch, test: &str) -> Option<(ServerProcess, PathBuf, PathBuf)> {
    eio_server_with(s, test, &[])
}

/// [`eio_server`] with more options for `hyperdial server`.
fn eio_server_with(
    s: &Scratch,
    test: &str,
    options: &[&str],
) -> Option<(ServerProcess, PathBuf, PathBuf)> {
    let shim = s.dir.join("eio.so");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fault_inject/eio.c");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&shim)
        .arg(&source)
        .arg("-ldl")
        .output();
    match built {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            skip(
                test,
                &format!("cc failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            );
            return None;
        }
        Err(e) => {
            skip(test, &format!("no C compiler: {e}"));
            return None;
        }
    }
    let data = s.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let switch = s.dir.join("inject-eio");
    // Wait until this server answers HTTP (not only until something accepts on the port: a
    // server of another test may hold it for a moment), and start it again if it exits.
    let server = ServerProcess::start_with_env(
        s,
        &data.join("db.sqlite"),
        free_port(),
        options,
        &[
            ("LD_PRELOAD", shim.as_os_str()),
            ("EIO_DIR", data.as_os_str()),
            ("EIO_SWITCH", switch.as_os_str()),
        ],
    );
    Some((server, data, switch))
}

/// A new `random` sweep over one parameter `x`, minimizing `loss`: its id.
async fn random_sweep(api: &Api) -> String {
    let (status, sweep) = api
        .post(
            "/api/v1/sweeps",
            json!({"source": "method: random\nmetric: {name: loss, goal: minimize}\n\
                              parameters: {x: {min: 0.0, max: 1.0}}\n"}),
        )
        .await;
    assert_eq!(status, 201, "{sweep}");
    sweep["id"].as_str().unwrap().to_string()
}

/// An ask/tell claim (a claim with a `tell`, its end and the claimed run in one commit) that
/// meets an I/O error stores neither: the told run is still running without its value and no
/// run was claimed, so the client's retry, once the fault clears, stores both; never a claimed
/// run whose tell was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tell_and_its_claim_under_io_errors_store_both_or_neither() {
    let s = Scratch::new("faults-io-tell");
    let Some((server, data, switch)) = eio_server(&s, "storage fault test: tell and claim") else {
        return;
    };
    let api = Api::new(&server.url);
    let sweep = random_sweep(&api).await;
    let claim = format!("/api/v1/sweeps/{sweep}/claim");
    let runs = || async {
        let (status, body) = api.get(&format!("/api/v1/runs?sweep={sweep}")).await;
        assert_eq!(status, 200, "{body}");
        body["runs"].as_array().unwrap().len()
    };
    let (status, first) = api.post(&claim, json!({})).await;
    assert_eq!(status, 200, "{first}");
    let mut told = first["run"]["id"].as_str().unwrap().to_string();
    for round in 0..3usize {
        let tell =
            json!({"tell": {"run": told, "finish": {"exit_code": 0, "values": {"loss": round}}}});
        std::fs::write(&switch, b"").unwrap();
        let (status, body) = api.post(&claim, tell.clone()).await;
        check_fault_answer(status, &body, "io_error", &data);
        assert_eq!(status, 503, "{body}");
        assert_eq!(runs().await, round + 1, "a run was claimed");
        let (_, run) = api.get(&format!("/api/v1/runs/{told}")).await;
        assert_eq!(run["state"], "running", "{run}");
        assert!(run["metric"].is_null(), "{run}");
        std::fs::remove_file(&switch).unwrap();
        let (status, next) = api.post(&claim, tell).await;
        assert_eq!(status, 200, "after the I/O errors stopped: {next}");
        let (_, run) = api.get(&format!("/api/v1/runs/{told}")).await;
        assert_eq!(
            (&run["state"], &run["metric"]),
            (&json!("finished"), &json!(round as f64)),
            "{run}"
        );
        assert_eq!(runs().await, round + 2);
        told = next["run"]["id"].as_str().unwrap().to_string();
    }
}

/// While its database fails, the server cannot store the heartbeats it is sent, so a trial
/// whose client kept sending them through an outage longer than the run timeout is not
/// marked crashed when the database is back: its silence counts from the last fault, and the
/// client's next heartbeat, a retry's backoff later, finds it running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_kept_alive_through_a_storage_outage_is_not_crashed_after_it() {
    let s = Scratch::new("faults-io-silence");
    let Some((server, _data, switch)) = eio_server_with(
        &s,
        "storage fault test: silence after an outage",
        &["--run-timeout", "2"],
    ) else {
        return;
    };
    let api = Api::new(&server.url);
    let sweep = random_sweep(&api).await;
    let (status, claimed) = api
        .post(&format!("/api/v1/sweeps/{sweep}/claim"), json!({}))
        .await;
    assert_eq!(status, 200, "{claimed}");
    let run = claimed["run"]["id"].as_str().unwrap().to_string();
    let heartbeat = format!("/api/v1/runs/{run}/heartbeat");
    assert_eq!(api.post(&heartbeat, json!({})).await.0, 200);
    // An outage of 3.5 s against a run timeout of 2 s; the client's heartbeats fail with 503.
    std::fs::write(&switch, b"").unwrap();
    let outage = std::time::Instant::now();
    while outage.elapsed() < std::time::Duration::from_millis(3500) {
        let (status, body) = api.post(&heartbeat, json!({})).await;
        assert_eq!(
            status, 503,
            "a heartbeat was stored during the outage: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    std::fs::remove_file(&switch).unwrap();
    // The client's retry comes a backoff later: 1 s, several janitor rounds (every 0.5 s).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (_, state) = api.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(state["state"], "running", "{state}");
    let (status, body) = api.post(&heartbeat, json!({})).await;
    assert_eq!((status, &body["stop"]), (200, &json!(false)), "{body}");
    // Silence after the outage still counts: no heartbeat for the run timeout crashes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, state) = api.get(&format!("/api/v1/runs/{run}")).await;
        if state["state"] == "crashed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never crashed: {state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_io_errors_answer_503_store_nothing_and_heal() {
    let s = Scratch::new("faults-io-error");
    let Some((server, data, switch)) = eio_server(&s, "storage fault test: I/O errors") else {
        return;
    };
    let api = Api::new(&server.url);
    let (status, run) = api.post("/api/v1/runs", json!({"project": "faults"})).await;
    assert_eq!(status, 201, "{run}");
    let run = run["id"].as_str().unwrap().to_string();
    let metrics = format!("/api/v1/runs/{run}/metrics");
    let mut acked: BTreeSet<i64> = (0..10).collect();
    assert_eq!(api.post(&metrics, batch(0, 10)).await.0, 200);

    std::fs::write(&switch, b"").unwrap();
    for first in [10, 20, 30] {
        let (status, body) = api.post(&metrics, batch(first, 10)).await;
        assert_eq!(status, 503, "{body}");
        check_fault_answer(status, &body, "io_error", &data);
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(&data.display().to_string()), "{message}");
    }
    let (status, body) = api
        .post(&format!("/api/v1/runs/{run}/heartbeat"), json!({}))
        .await;
    check_fault_answer(status, &body, "io_error", &data);

    std::fs::remove_file(&switch).unwrap();
    for first in [40, 50] {
        let (status, body) = api.post(&metrics, batch(first, 10)).await;
        assert_eq!(status, 200, "after the I/O errors stopped: {body}");
        acked.extend(first..first + 10);
    }
    assert_eq!(
        api.stored_steps(&run).await,
        acked,
        "exactly the acknowledged points"
    );
}
