//! `deploy/slurm/hyperdial-agents.sbatch` on a real, single-node Slurm cluster started here.
//!
//! Each case starts its own cluster in a temporary directory: `munged` with a generated key
//! and its own socket, `slurmctld` and `slurmd` in the foreground (`-D`) on free ports, with a
//! `slurm.conf` for one node named after `hostname -s` (`proctrack/linuxproc`, `task/none`,
//! `select/cons_tres`; `SlurmUser=root`), then waits for the node to be idle. A `hyperdial
//! server` on loopback with a token gets a grid sweep of 6 runs, and the array job is
//! submitted with `sbatch` as a user would, its settings in the environment (the token from a
//! file in the first case, from `HYPERDIAL_TOKEN` in the second) and its per-task logs in the
//! script's default `logs/` directory.
//!
//! - `array_tasks_run_one_agent_each`: 3 tasks with `HYPERDIAL_COUNT=2` and a `HYPERDIAL_SETUP`
//!   file that reads an unset variable (as module scripts do); the 6 runs need
//!   all three agents; every run finishes with its metric, grid points and run numbers are
//!   distinct, each task's log shows its agent. `..._on_postgres` does the same with the
//!   server on a PostgreSQL database created in the server `HYPERDIAL_TEST_PG` names (skipped,
//!   loudly, without it).
//! - `a_requeued_task_interrupts_its_run_and_the_run_is_retried`: 2 tasks; while task 0's
//!   agent runs a run, `scontrol requeue` stops the task as a preemption does (SIGTERM to every
//!   process of the job, this run's training process included). The run ends `cancelled` with
//!   "interrupted: agent received SIGTERM", the server queues it again, another agent finishes
//!   it, the requeued task starts again with a fresh agent, and every grid point ends with
//!   exactly one finished run.
//!
//! Slurm holds a requeued job back for two minutes (its begin time); the test moves that to
//! now with `scontrol update`, which changes nothing else. Whatever happens, the guard's `Drop`
//! cancels the jobs, stops the daemons and removes the directory. Every wait is bounded.
//!
//! Without the Slurm daemons and commands or `munged` (Debian: `apt-get install slurm-wlm
//! munge`; `.ci/run` installs them), or when not root (`SlurmUser=root`, as CI runs), each case
//! prints `SKIPPED: ...` and appends it to the file named by `HYPERDIAL_SKIPPED`, instead of
//! passing silently.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{bin, free_port, json_of, wait_answering, Scratch, ServerProcess};
use serde_json::Value;

/// One cluster at a time: the cases share the node's name and two cores.
static CLUSTER: Mutex<()> = Mutex::new(());

const SBATCH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/slurm/hyperdial-agents.sbatch"
);

/// Report a case that cannot run here.
fn skip(test: &str, reason: &str) {
    let line = format!(
        "SKIPPED: {test} ({reason}; .ci/run installs slurm-wlm and munge and runs as root)"
    );
    println!("{line}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("HYPERDIAL_SKIPPED") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            writeln!(f, "{line}").ok();
        }
    }
}

/// Why Slurm cannot run here, if it cannot.
fn missing() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: the test cluster runs with SlurmUser=root".into());
    }
    let absent: Vec<&str> = [
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "sinfo",
        "squeue",
        "scontrol",
        "scancel",
    ]
    .into_iter()
    .filter(|p| which(p).is_none())
    .collect();
    (!absent.is_empty()).then(|| format!("not installed: {}", absent.join(", ")))
}

/// The program's path on `PATH`, or in the sbin directories a non-login `PATH` may lack.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file());
    found
}

/// A running single-node cluster; `Drop` cancels its jobs, stops it and removes its files.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    jobs: Vec<String>,
    /// Where the submitted jobs write their logs (`logs/` of the submission directory).
    job_logs: Option<PathBuf>,
}

impl Cluster {
    /// Start munged, slurmctld and slurmd in `dir` and wait (at most 60 s) for the node to be
    /// idle. Panics with the daemons' logs when they do not come up.
    fn start(dir: &Path) -> Cluster {
        std::fs::create_dir_all(dir).unwrap();
        for sub in ["munge", "run", "state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // munged insists: a key readable by its owner only, in a directory others cannot
        // write, a socket directory everyone may enter.
        set_mode(&dir.join("munge"), 0o700);
        set_mode(&dir.join("run"), 0o755);
        let key = dir.join("munge/munge.key");
        let mut random = vec![0u8; 1024];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").unwrap(),
            &mut random,
        )
        .unwrap();
        std::fs::write(&key, &random).unwrap();
        set_mode(&key, 0o400);
        let socket = dir.join("run/munge.sock");
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
            daemons: Vec::new(),
            jobs: Vec::new(),
            job_logs: None,
        };
        let munged = Command::new(which("munged").unwrap())
            .arg("--foreground")
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                dir.join("run/munged.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                dir.join("munge/munged.log").display()
            ))
            .arg(format!(
                "--seed-file={}",
                dir.join("munge/munged.seed").display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log/munged.err")).unwrap())
            .spawn()
            .unwrap();
        cluster.daemons.push(("munged", munged));
        cluster.wait("munged's socket", Duration::from_secs(20), || {
            socket.exists()
        });

        let host = hostname();
        std::fs::write(dir.join("plugstack.conf"), "").unwrap();
        let conf = format!(
            "ClusterName=hyperdialtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={socket}
CryptoType=crypto/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/run/slurmctld.pid
SlurmdPidFile={dir}/run/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
PlugStackConfig={dir}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
KillWait=20
NodeName={host} NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
",
            ctld_port = free_port(),
            d_port = free_port(),
            socket = socket.display(),
            dir = dir.display(),
        );
        std::fs::write(&cluster.conf, conf).unwrap();
        for daemon in ["slurmctld", "slurmd"] {
            let child = Command::new(which(daemon).unwrap())
                .args(["-D", "-f"])
                .arg(&cluster.conf)
                .env("SLURM_CONF", &cluster.conf)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("log/{daemon}.err"))).unwrap())
                .spawn()
                .unwrap();
            cluster.daemons.push((daemon, child));
        }
        cluster.wait("the node to be idle", Duration::from_secs(60), || {
            cluster
                .slurm("sinfo", &["-h", "-o", "%T"])
                .is_some_and(|s| s.trim() == "idle")
        });
        cluster
    }

    /// Run a Slurm command against this cluster; its standard output when it succeeded.
    fn slurm(&self, program: &str, args: &[&str]) -> Option<String> {
        let out = self.command(program).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A Slurm command for this cluster, with no Slurm settings of an enclosing job.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(which(program).unwrap_or_else(|| PathBuf::from(program)));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SLURM_")
                || key.to_string_lossy().starts_with("SBATCH_")
            {
                c.env_remove(key);
            }
        }
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Submit the sbatch script as a `tasks`-task array from `workdir` with `env` set; returns
    /// the array's job id.
    fn submit(&mut self, workdir: &Path, tasks: u32, sweep: &str, env: &[(&str, &str)]) -> String {
        let mut c = self.command("sbatch");
        c.args([
            "--parsable",
            &format!("--array=0-{}", tasks - 1),
            "--cpus-per-task=1",
            SBATCH,
            sweep,
        ])
        .current_dir(workdir)
        .env_remove("HYPERDIAL_TOKEN")
        .env_remove("HYPERDIAL_SWEEP");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "sbatch failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        self.jobs.push(id.clone());
        self.job_logs = Some(workdir.join("logs"));
        id
    }

    /// Poll `ok` every 200 ms until it holds; panic with the daemons' logs after `limit`.
    fn wait(&self, what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !ok() {
            if Instant::now() > deadline {
                panic!(
                    "timed out after {limit:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The tails of the daemons' logs and the queue, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for name in [
            "munge/munged.log",
            "log/munged.err",
            "log/slurmctld.log",
            "log/slurmctld.err",
            "log/slurmd.log",
            "log/slurmd.err",
        ] {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- {name} (last lines)\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        let job_logs = self
            .job_logs
            .as_deref()
            .and_then(|d| std::fs::read_dir(d).ok());
        for entry in job_logs.into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            out.push_str(&format!("--- {}\n{text}", entry.path().display()));
        }
        if let Some(q) = self.slurm("squeue", &["-o", "%i %T %r"]) {
            out.push_str(&format!("--- squeue\n{q}"));
        }
        out
    }

    /// The array's tasks still in the queue, as `JOBID_TASK STATE` lines.
    fn queue(&self, job: &str) -> String {
        self.slurm("squeue", &["-h", "-j", job, "-o", "%i %T"])
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Cancel the jobs first, so slurmd's step daemons end their processes.
        for job in &self.jobs {
            let _ = self.command("scancel").arg(job).output();
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        while !self.jobs.is_empty()
            && Instant::now() < deadline
            && self.jobs.iter().any(|j| !self.queue(j).trim().is_empty())
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        // Then the daemons, newest first, SIGTERM and at most 10 s each before SIGKILL.
        while let Some((_, mut child)) = self.daemons.pop() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            child.kill().ok();
            child.wait().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn hostname() -> String {
    let out = Command::new("hostname").arg("-s").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The 6-point grid: `a` in 1..=6, each run printing `steps` loss lines `sleep` s apart.
fn grid_sweep(steps: u32, sleep: f64) -> String {
    format!(
        "program: train.py
method: grid
metric: {{name: loss, goal: minimize}}
parameters:
  a: {{values: [1, 2, 3, 4, 5, 6]}}
  steps: {{value: {steps}}}
  sleep: {{value: {sleep}}}
"
    )
}

/// A `hyperdial server` on loopback that requires a token, as a shared server does.
struct Server {
    process: ServerProcess,
    token: String,
}

impl Server {
    /// A server on a SQLite file in the scratch directory.
    fn start(s: &Scratch) -> Server {
        Server::start_on(s, s.dir.join("hd.db").to_str().unwrap())
    }

    /// A server on the database `db` (a path or a URL, as `--db` takes it).
    fn start_on(s: &Scratch, db: &str) -> Server {
        let token = format!("slurm-test-token-{}", std::process::id());
        let port = free_port();
        let child = s
            .cmd(&[
                "server",
                "--db",
                db,
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--token",
                &token,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut process = ServerProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_answering(&mut process.child, port, Duration::from_secs(20)).unwrap();
        Server { process, token }
    }

    fn url(&self) -> &str {
        &self.process.url
    }

    /// `hyperdial ARGS --json --server URL --token TOKEN`.
    fn json(&self, s: &Scratch, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--json", "--server", self.url(), "--token", &self.token]);
        json_of(s, &all)
    }

    /// Create the sweep of `yaml` and return its id.
    fn create_sweep(&self, s: &Scratch, yaml: &str) -> String {
        s.write("sweep.yaml", yaml);
        let created = self.json(s, &["sweep", "sweep.yaml"]);
        created["id"].as_str().unwrap().to_string()
    }

    fn runs(&self, s: &Scratch, sweep: &str) -> Vec<Value> {
        self.json(s, &["runs", sweep]).as_array().unwrap().clone()
    }

    fn sweep_state(&self, s: &Scratch, sweep: &str) -> String {
        self.json(s, &["sweeps"])
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == sweep)
            .and_then(|w| w["state"].as_str())
            .unwrap_or("?")
            .to_string()
    }
}

/// The log of array task `task` (the script's default `logs/%x-%A_%a.log`).
fn task_log(s: &Scratch, job: &str, task: u32) -> String {
    std::fs::read_to_string(
        s.dir
            .join(format!("logs/hyperdial-agents-{job}_{task}.log")),
    )
    .unwrap_or_default()
}

/// Every grid point has exactly one finished run, with the metric its arguments give, and run
/// numbers are distinct.
fn assert_grid_done(runs: &[Value]) {
    let finished: Vec<&Value> = runs.iter().filter(|r| r["state"] == "finished").collect();
    let mut by_point: BTreeMap<u64, u32> = BTreeMap::new();
    for r in &finished {
        *by_point
            .entry(r["suggestion"]["grid_index"].as_u64().unwrap())
            .or_default() += 1;
        // train.py: loss at the last step is a / steps.
        let a = r["params"]["a"].as_f64().unwrap();
        let steps = r["params"]["steps"].as_f64().unwrap();
        let metric = r["metric"].as_f64().unwrap_or(f64::NAN);
        assert!((metric - a / steps).abs() < 1e-9, "run {r:#}");
        assert_eq!(
            r["summary"]["step_sq"].as_f64(),
            Some((steps - 1.0).powi(2)),
            "{r:#}"
        );
    }
    assert_eq!(
        by_point,
        (0..6).map(|i| (i, 1)).collect::<BTreeMap<u64, u32>>(),
        "finished runs per grid point; runs: {runs:#?}"
    );
    let numbers: BTreeSet<u64> = runs.iter().map(|r| r["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers.len(), runs.len(), "run numbers repeat: {runs:#?}");
    assert!(
        runs.iter()
            .all(|r| r["state"] == "finished" || r["state"] == "cancelled"),
        "{runs:#?}"
    );
}

#[test]
fn array_tasks_run_one_agent_each() {
    let name = "slurm array_tasks_run_one_agent_each";
    if let Some(reason) = missing() {
        return skip(name, &reason);
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("slurm-array");
    let db = s.dir.join("hd.db");
    array_of_three_agents(&s, db.to_str().unwrap());
}

/// The same with the server on PostgreSQL (a fresh database in the server that
/// `HYPERDIAL_TEST_PG` names, dropped afterwards), as a cluster's shared server would be.
#[test]
fn array_tasks_run_one_agent_each_on_postgres() {
    let name = "slurm array_tasks_run_one_agent_each_on_postgres";
    if let Some(reason) = missing() {
        return skip(name, &reason);
    }
    let pg = match std::env::var("HYPERDIAL_TEST_PG") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            return skip(
                name,
                "HYPERDIAL_TEST_PG is not set; .ci/run starts PostgreSQL and sets it",
            )
        }
    };
    let Some(psql) = which("psql") else {
        return skip(name, "psql is not installed");
    };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("slurm-array-pg");
    let database = PgDatabase::create(&psql, &pg, &format!("hd_slurm_{}", std::process::id()));
    array_of_three_agents(&s, &database.url);
}

/// A database created in a PostgreSQL server for one test, dropped on `Drop`.
struct PgDatabase {
    psql: PathBuf,
    server: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(psql: &Path, server: &str, name: &str) -> PgDatabase {
        let db = PgDatabase {
            psql: psql.to_path_buf(),
            server: server.to_string(),
            name: name.to_string(),
            url: with_database(server, name),
        };
        db.sql(&format!("DROP DATABASE IF EXISTS {name}"));
        db.sql(&format!("CREATE DATABASE {name}"));
        db
    }

    fn sql(&self, statement: &str) {
        let out = Command::new(&self.psql)
            .args([
                &self.server,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                statement,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new(&self.psql)
            .args([
                &self.server,
                "-qAt",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// `url` (a PostgreSQL URL) naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}{query}")
}

/// 3 array tasks with `HYPERDIAL_COUNT=2` against a server on `db`: 6 runs, 2 per agent.
fn array_of_three_agents(s: &Scratch, db: &str) {
    std::fs::create_dir_all(s.dir.join("logs")).unwrap();
    let mut cluster = Cluster::start(&s.dir.join("slurm"));
    let server = Server::start_on(s, db);
    let sweep = server.create_sweep(s, &grid_sweep(3, 0.1));
    let workdir = s.dir.to_str().unwrap();
    // The token from a file readable by its owner only.
    let token_file = s.write("token", &format!("{}\n", server.token));
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A setup file as sites write them: reads a variable that is not set.
    let setup = s.write(
        "setup.sh",
        "echo \"setup: sourced${HYPERDIAL_TEST_UNSET_VARIABLE}\"\n",
    );
    let job = cluster.submit(
        &s.dir,
        3,
        &sweep,
        &[
            ("HYPERDIAL_SERVER", server.url()),
            ("HYPERDIAL_TOKEN_FILE", token_file.to_str().unwrap()),
            ("HYPERDIAL_BIN", bin()),
            ("HYPERDIAL_WORKDIR", workdir),
            ("HYPERDIAL_COUNT", "2"),
            ("HYPERDIAL_SETUP", setup.to_str().unwrap()),
        ],
    );

    // The agents stop after their 2 runs, so none claims again to learn that the grid is
    // done (which is what marks the sweep finished): wait for the runs and the tasks.
    cluster.wait("6 finished runs", Duration::from_secs(120), || {
        let all = server.runs(s, &sweep);
        all.iter().filter(|r| r["state"] == "finished").count() == 6
    });
    cluster.wait("the array's tasks to end", Duration::from_secs(60), || {
        cluster.queue(&job).trim().is_empty()
    });

    let runs = server.runs(s, &sweep);
    assert_eq!(runs.len(), 6, "{runs:#?}");
    assert_grid_done(&runs);
    // 2 runs per agent (HYPERDIAL_COUNT), so all three tasks' agents ran runs.
    let mut per_agent: BTreeMap<&str, u32> = BTreeMap::new();
    for r in &runs {
        *per_agent.entry(r["agent"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(
        per_agent.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{per_agent:?}"
    );
    for task in 0..3 {
        let log = task_log(s, &job, task);
        assert!(
            log.contains(&format!(
                "hyperdial-agents: job {job} task {task} attempt 1"
            )),
            "task {task}: {log}"
        );
        assert!(
            log.contains("agent done: 2 runs (2 finished"),
            "task {task}: {log}"
        );
        assert!(log.contains("setup: sourced\n"), "task {task}: {log}");
    }
    let backend = if db.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("slurm: 3 array tasks, 6 runs on {backend}, per agent {per_agent:?}");
}

#[test]
fn a_requeued_task_interrupts_its_run_and_the_run_is_retried() {
    let name = "slurm a_requeued_task_interrupts_its_run_and_the_run_is_retried";
    if let Some(reason) = missing() {
        return skip(name, &reason);
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new("slurm-requeue");
    std::fs::create_dir_all(s.dir.join("logs")).unwrap();
    let mut cluster = Cluster::start(&s.dir.join("slurm"));
    let server = Server::start(&s);
    // 20 steps 0.25 s apart: a run lasts about 5 s, long enough to be caught running.
    let sweep = server.create_sweep(&s, &grid_sweep(20, 0.25));
    let workdir = s.dir.to_str().unwrap();
    let job = cluster.submit(
        &s.dir,
        2,
        &sweep,
        &[
            ("HYPERDIAL_SERVER", server.url()),
            ("HYPERDIAL_TOKEN", &server.token),
            ("HYPERDIAL_BIN", bin()),
            ("HYPERDIAL_WORKDIR", workdir),
        ],
    );

    // Task 0's agent says which run it started; wait until that run has reported a point
    // and has most of its steps ahead of it.
    let mut victim: Option<Value> = None;
    cluster.wait("task 0 to run a run", Duration::from_secs(60), || {
        let log = task_log(&s, &job, 0);
        let Some(number) = log
            .lines()
            .rev()
            .filter_map(|l| l.strip_prefix("run #"))
            .filter_map(|l| l.split_once(" started"))
            .find_map(|(n, _)| n.parse::<u64>().ok())
        else {
            return false;
        };
        let all = server.runs(&s, &sweep);
        victim = all.into_iter().find(|r| {
            r["number"] == number
                && r["state"] == "running"
                && r["steps"].as_u64().is_some_and(|n| (1..=10).contains(&n))
        });
        victim.is_some()
    });
    let victim = victim.unwrap();
    let victim_id = victim["id"].as_str().unwrap().to_string();
    let task0 = format!("{job}_0");
    assert!(
        cluster.slurm("scontrol", &["requeue", &task0]).is_some(),
        "scontrol requeue {task0} failed\n{}",
        cluster.logs()
    );

    cluster.wait(
        "the preempted run to be reported",
        Duration::from_secs(60),
        || {
            server
                .runs(&s, &sweep)
                .iter()
                .any(|r| r["id"] == victim_id.as_str() && r["state"] != "running")
        },
    );
    // Slurm holds a requeued job until two minutes later; let it start again now.
    cluster.wait(
        "the requeued task to be pending",
        Duration::from_secs(60),
        || cluster.queue(&task0).contains("PENDING"),
    );
    assert!(
        cluster
            .slurm(
                "scontrol",
                &["update", &format!("JobId={task0}"), "StartTime=now"]
            )
            .is_some(),
        "scontrol update failed\n{}",
        cluster.logs()
    );

    cluster.wait("the sweep to finish", Duration::from_secs(120), || {
        server.sweep_state(&s, &sweep) == "finished"
    });
    cluster.wait(
        "the requeued task's fresh agent",
        Duration::from_secs(60),
        || task_log(&s, &job, 0).contains(&format!("hyperdial-agents: job {job} task 0 attempt 2")),
    );
    cluster.wait("the array's tasks to end", Duration::from_secs(60), || {
        cluster.queue(&job).trim().is_empty()
    });

    let runs = server.runs(&s, &sweep);
    let preempted = runs.iter().find(|r| r["id"] == victim_id.as_str()).unwrap();
    assert_eq!(preempted["state"], "cancelled", "{preempted:#}");
    assert_eq!(
        preempted["error"], "interrupted: agent received SIGTERM",
        "{preempted:#}"
    );
    let retries: Vec<&Value> = runs
        .iter()
        .filter(|r| r["retry_of"] == victim_id.as_str())
        .collect();
    assert_eq!(retries.len(), 1, "{runs:#?}");
    assert_eq!(retries[0]["state"], "finished", "{:#}", retries[0]);
    assert_eq!(retries[0]["params"], preempted["params"]);
    assert_eq!(runs.len(), 7, "6 grid points and one retry: {runs:#?}");
    assert_grid_done(&runs);

    let log0 = task_log(&s, &job, 0);
    assert!(log0.contains("DUE TO JOB REQUEUE"), "{log0}");
    assert!(
        log0.contains("SIGTERM: stopping the runs in flight"),
        "{log0}"
    );
    assert!(
        log0.matches("agent on sweep").count() == 2,
        "task 0 ran a fresh agent after the requeue: {log0}"
    );
    println!(
        "slurm: run #{} interrupted by requeue, retried as run #{}",
        preempted["number"], retries[0]["number"]
    );
}
