#!/usr/bin/env python3
"""Hot paths side by side with the tools users would pick instead, in one sitting.

    pip install optuna mlflow wandb trackio   # peers that are missing are reported and skipped
    HYPERDIAL_BIN=target/release/hyperdial OMP_NUM_THREADS=1 nice -n 19 \\
        python3 bench/peers/hotpaths.py --rounds 2 --out bench/results/hotpaths.md

What is measured (every measurement in a fresh process and a fresh scratch directory; rounds
interleave the tools, in a rotated order each round, so load on the machine falls on all):

* ask/tell with a trivial objective (the value is the parameter), N trials (``--sizes``,
  default 2,000 and 10,000): hyperdial's Python client against ``hyperdial server`` on SQLite
  (every trial durable; measured with the default ``synchronous=FULL``, a flush per commit,
  and with ``HYPERDIAL_SQLITE_SYNC=normal``, a flush within 1 s; each both as ``ask``/``tell``,
  two requests per trial, and as ``Sweep.optimize`` (``tell_and_ask``), one; with the
  server's and the client's CPU time per trial), Optuna in memory, with JournalStorage (a file) and with SQLite.
  With ``--pg URL`` (a PostgreSQL server; each measurement creates a scratch database there
  and drops it after), also hyperdial's server on PostgreSQL (both loops) and Optuna's RDB
  storage on the same server (``psycopg2``). Also two threads on one sweep or study:
  ``Sweep.optimize(n_jobs=2)`` against Optuna's ``study.optimize(n_jobs=2)`` (JournalStorage,
  and RDB storage with ``--pg``), each ratio against hyperdial's two threads on its storage.
  A measurement stops after ``--max-seconds`` and reports the rate over the trials done.
* logging 20,000 steps x 5 metrics from a script, until everything is stored: hyperdial's
  client (``hyperdial.init``/``log``/``finish``) against the server, MLflow (``log_batch`` of
  1,000 values, SQLite backend), W&B offline, trackio.
* reading those 100,000 values back, in full and downsampled to 1,000 points per metric
  (where the tool can): hyperdial's client ``run.history()`` and ``run.history(max_points=1000)``
  (a list of dicts, one per step, as trackio's ``get_logs`` gives), MLflow
  ``get_metric_history``, trackio's storage; W&B offline has no read API.
* the server's memory (RSS at start, after the logging and the reads, and its peak).
* disk per million metric values: the store's files after the logging (hyperdial after a
  clean shutdown and again after ``VACUUM``), scaled to 10^6 values.

The binary is ``HYPERDIAL_BIN`` (any build: re-run after other work lands); the Python client is
the one of this repository. Prints a Markdown report (ratios against hyperdial) and writes it
to ``--out`` when given. ``--only`` keeps the measurements whose names start with one of its
comma-separated prefixes, e.g. the logging and reads of hyperdial and trackio alone::

    HYPERDIAL_BIN=target/release/hyperdial nice -n 19 python3 bench/peers/hotpaths.py \\
        --rounds 5 --only log/hyperdial,log/trackio
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STEPS = 20_000
METRICS = 5

# --------------------------------------------------------------------------------------------
# One measurement, in a process of its own: `hotpaths.py --measure NAME --n N --dir DIR`


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time of process ``pid`` so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class Server:
    """`hyperdial server` on a scratch SQLite file."""

    def __init__(self, directory, sync=None, db=None):
        self.db = db or os.path.join(directory, "hyperdial.db")
        port = free_port()
        self.url = "http://127.0.0.1:%d" % port
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        if sync:
            env["HYPERDIAL_SQLITE_SYNC"] = sync
        self.proc = subprocess.Popen(
            [os.environ["HYPERDIAL_BIN"], "server", "--db", self.db, "--bind",
             "127.0.0.1:%d" % port], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/v1/sweeps", timeout=1).read()
                break
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("hyperdial server did not start")
                time.sleep(0.05)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=300) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def hyperdial_client():
    sys.path.insert(0, os.path.join(REPO, "python"))
    import hyperdial
    return hyperdial


PG_ENV = "HOTPATHS_PG"


def pg_scratch():
    """A fresh database in the PostgreSQL server of ``--pg``: its URL and a function that
    drops it."""
    import uuid

    import psycopg2
    server = os.environ[PG_ENV]
    name = "hd_bench_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(server)
    conn.autocommit = True
    conn.cursor().execute("CREATE DATABASE " + name)
    conn.close()

    def drop():
        conn = psycopg2.connect(server)
        conn.autocommit = True
        conn.cursor().execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        conn.close()
    # The database is the URL's path; its query (`sslmode`, a socket's `host`) is kept.
    parts = urllib.parse.urlsplit(server)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name)), drop


def asktell_hyperdial(n, directory, max_seconds, sync=None, combined=False, pg=False, jobs=1):
    hyperdial = hyperdial_client()
    db, drop = pg_scratch() if pg else (None, lambda: None)
    try:
        return asktell_server(hyperdial, Server(directory, sync, db), n, max_seconds, combined,
                              jobs)
    finally:
        drop()


def asktell_server(hyperdial, server, n, max_seconds, combined, jobs=1):
    try:
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "y", "goal": "minimize"}, "run_cap": n,
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=server.url)
        done = 0
        server_cpu = cpu_seconds(server.proc.pid)
        client_cpu = sum(os.times()[:2])
        t0 = time.perf_counter()
        if combined:
            # The user's loop: Sweep.optimize tells a trial and asks for the next in one
            # request (tell_and_ask); the last trial is told alone.
            # With jobs > 1, that many threads run the loop on one sweep (Optuna's n_jobs).
            done = sweep.optimize(lambda trial: trial.params["x"], n_trials=n,
                                  timeout=max_seconds, n_jobs=jobs)
        else:
            while done < n and time.perf_counter() - t0 < max_seconds:
                trial = sweep.ask()
                if trial is None:
                    break
                sweep.tell(trial, trial.params["x"])
                done += 1
        secs = time.perf_counter() - t0
        # CPU per trial says what load on the machine does not: the work each trial costs.
        return {"trials": done, "seconds": secs, "rate": done / secs,
                "server_cpu_ms": (cpu_seconds(server.proc.pid) - server_cpu) / done * 1e3,
                "client_cpu_ms": (sum(os.times()[:2]) - client_cpu) / done * 1e3,
                "server_rss_kib": rss_kib(server.proc.pid)}
    finally:
        server.stop()


def asktell_optuna(n, directory, max_seconds, storage_kind, jobs=1):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    drop = lambda: None  # noqa: E731
    if storage_kind == "memory":
        storage = None
    elif storage_kind == "pg":
        url, drop = pg_scratch()
        storage = "postgresql+psycopg2://" + url.split("://", 1)[1]
    elif storage_kind == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        storage = JournalStorage(JournalFileBackend(os.path.join(directory, "journal.log")))
    else:
        storage = "sqlite:///" + os.path.join(directory, "optuna.db")
    try:
        study = optuna.create_study(storage=storage,
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        done = 0
        t0 = time.perf_counter()
        if jobs > 1:
            # Optuna's own threads on one study: study.optimize(n_jobs=...).
            study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=n,
                           timeout=max_seconds, n_jobs=jobs)
            done = len(study.trials)
        while done < n and time.perf_counter() - t0 < max_seconds and jobs == 1:
            trial = study.ask()
            study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
            done += 1
        secs = time.perf_counter() - t0
        # The scratch database is dropped WITH (FORCE): Optuna's pooled connections go too.
        return {"trials": done, "seconds": secs, "rate": done / secs}
    finally:
        drop()


def values(step):
    return {"m%d" % k: (step * (k + 1)) % 997 / 997.0 for k in range(METRICS)}


def log_hyperdial(directory):
    os.environ["HYPERDIAL_DIR"] = os.path.join(directory, "client")
    server = Server(directory)
    try:
        idle = rss_kib(server.proc.pid)
        os.environ["HYPERDIAL_SERVER"] = server.url
        hyperdial = hyperdial_client()
        t0 = time.perf_counter()
        run = hyperdial.init(project="bench")
        for step in range(STEPS):
            run.log(values(step), step=step)
        run.finish()
        logged = time.perf_counter() - t0
        # Read back as a user would, through the client: one dict per step, as trackio's
        # get_logs gives (``_step`` and ``_timestamp`` besides the metrics).
        t0 = time.perf_counter()
        rows = run.history()
        read_full = time.perf_counter() - t0
        got = sum(len(row) - 2 for row in rows)
        t0 = time.perf_counter()
        down = run.history(max_points=1000)
        read_down = time.perf_counter() - t0
        got_down = sum(len(row) - 2 for row in down)
        rss_after = rss_kib(server.proc.pid)
        peak = rss_kib(server.proc.pid, "VmHWM")
    finally:
        server.stop()
    disk = sum(os.path.getsize(p) for p in (server.db, server.db + "-wal")
               if os.path.exists(p))
    import sqlite3
    con = sqlite3.connect(server.db)
    con.execute("VACUUM")
    con.close()
    vacuumed = sum(os.path.getsize(p) for p in (server.db, server.db + "-wal")
                   if os.path.exists(p))
    return {"log_seconds": logged, "read_full_seconds": read_full, "read_full_values": got,
            "read_down_seconds": read_down, "read_down_values": got_down,
            "rss_idle_kib": idle, "rss_after_kib": rss_after, "rss_peak_kib": peak,
            "disk_bytes": disk, "disk_vacuumed_bytes": vacuumed}


def log_mlflow(directory):
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient
    db = os.path.join(directory, "mlflow.db")
    mlflow.set_tracking_uri("sqlite:///" + db)
    client = MlflowClient()
    exp = client.create_experiment("bench", artifact_location=os.path.join(directory, "art"))
    t0 = time.perf_counter()
    run = client.create_run(exp)
    batch = []
    now = int(time.time() * 1000)
    for step in range(STEPS):
        for k, v in values(step).items():
            batch.append(Metric(k, v, now, step))
        if len(batch) >= 1000:
            client.log_batch(run.info.run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run.info.run_id, metrics=batch)
    client.set_terminated(run.info.run_id)
    logged = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = sum(len(client.get_metric_history(run.info.run_id, "m%d" % k)) for k in range(METRICS))
    read_full = time.perf_counter() - t0
    return {"log_seconds": logged, "read_full_seconds": read_full, "read_full_values": got,
            "disk_bytes": os.path.getsize(db)}


def log_wandb(directory):
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    os.environ["WANDB_DIR"] = directory
    import wandb
    t0 = time.perf_counter()
    run = wandb.init(project="bench", dir=directory)
    for step in range(STEPS):
        run.log(values(step), step=step)
    run.finish()
    logged = time.perf_counter() - t0
    return {"log_seconds": logged, "disk_bytes": du(os.path.join(directory, "wandb"))}


def log_trackio(directory):
    os.environ["TRACKIO_DIR"] = directory
    import trackio
    t0 = time.perf_counter()
    trackio.init(project="bench", name="r1")
    for step in range(STEPS):
        trackio.log(values(step), step=step)
    trackio.finish()
    logged = time.perf_counter() - t0
    out = {"log_seconds": logged, "disk_bytes": du(directory)}
    try:
        from trackio.sqlite_storage import SQLiteStorage
        t0 = time.perf_counter()
        logs = SQLiteStorage.get_logs(project="bench", run="r1")
        out["read_full_seconds"] = time.perf_counter() - t0
        out["read_full_values"] = sum(
            sum(1 for k in row if k in values(0)) for row in logs)
    except Exception as err:  # the read API moved between versions
        out["read_error"] = "%s: %s" % (type(err).__name__, err)
    return out


def measure(name, n, directory, max_seconds):
    if name == "asktell/hyperdial":
        return asktell_hyperdial(n, directory, max_seconds)
    if name == "asktell/hyperdial-normal":
        return asktell_hyperdial(n, directory, max_seconds, sync="normal")
    if name == "asktell/hyperdial-one":
        return asktell_hyperdial(n, directory, max_seconds, combined=True)
    if name == "asktell/hyperdial-one-normal":
        return asktell_hyperdial(n, directory, max_seconds, sync="normal", combined=True)
    if name == "asktell/hyperdial-pg":
        return asktell_hyperdial(n, directory, max_seconds, pg=True)
    if name == "asktell/hyperdial-pg-one":
        return asktell_hyperdial(n, directory, max_seconds, combined=True, pg=True)
    if name == "asktell/hyperdial-one-2jobs":
        return asktell_hyperdial(n, directory, max_seconds, combined=True, jobs=2)
    if name == "asktell/hyperdial-pg-one-2jobs":
        return asktell_hyperdial(n, directory, max_seconds, combined=True, pg=True, jobs=2)
    if name.startswith("asktell/optuna-"):
        kind = name.split("-", 1)[1]
        jobs = 2 if kind.endswith("-2jobs") else 1
        return asktell_optuna(n, directory, max_seconds, kind.replace("-2jobs", ""), jobs)
    return {"log/hyperdial": log_hyperdial, "log/mlflow": log_mlflow,
            "log/wandb": log_wandb, "log/trackio": log_trackio}[name](directory)


# --------------------------------------------------------------------------------------------
# The sitting: rounds of every measurement, interleaved


PEER_MODULES = {"optuna": "optuna", "mlflow": "mlflow", "wandb": "wandb", "trackio": "trackio"}


def available(module):
    return subprocess.run([sys.executable, "-c", "import " + module],
                          capture_output=True).returncode == 0


def run_one(name, n, max_seconds):
    directory = tempfile.mkdtemp(prefix="hyperdial-hotpaths-")
    try:
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--measure", name, "--n", str(n),
             "--dir", directory, "--max-seconds", str(max_seconds)],
            capture_output=True, text=True, cwd=directory)
        if out.returncode != 0:
            return {"error": (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]}
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def med(results, key):
    xs = [r[key] for r in results if key in r]
    return statistics.median(xs) if xs else None


ASKTELL_LABELS = [
    ("asktell/hyperdial", "hyperdial (server, SQLite, synchronous=FULL)"),
    ("asktell/hyperdial-normal", "hyperdial (HYPERDIAL_SQLITE_SYNC=normal)"),
    ("asktell/hyperdial-one", "hyperdial optimize, one request per trial (FULL)"),
    ("asktell/hyperdial-one-normal", "hyperdial optimize, one request per trial (normal)"),
    ("asktell/optuna-memory", "Optuna in memory"),
    ("asktell/optuna-journal", "Optuna JournalStorage (file)"),
    ("asktell/optuna-sqlite", "Optuna SQLite"),
    ("asktell/hyperdial-pg", "hyperdial (server, PostgreSQL)"),
    ("asktell/hyperdial-pg-one", "hyperdial optimize, one request per trial (PostgreSQL)"),
    ("asktell/optuna-pg", "Optuna RDB storage (PostgreSQL)"),
    ("asktell/hyperdial-one-2jobs", "hyperdial optimize(n_jobs=2), one sweep (FULL)"),
    ("asktell/optuna-journal-2jobs", "Optuna optimize(n_jobs=2), JournalStorage (file)"),
    ("asktell/hyperdial-pg-one-2jobs", "hyperdial optimize(n_jobs=2), one sweep (PostgreSQL)"),
    ("asktell/optuna-pg-2jobs", "Optuna optimize(n_jobs=2), RDB storage (PostgreSQL)"),
]


LOG_LABELS = [("log/hyperdial", "hyperdial"), ("log/mlflow", "MLflow log_batch"),
              ("log/wandb", "W&B offline"), ("log/trackio", "trackio")]


def report(args, results, skipped, started, wall):
    lines = []
    add = lines.append
    add("# Hot paths side by side")
    add("")
    niceness = os.nice(0)
    add("Command: `HYPERDIAL_BIN=%s OMP_NUM_THREADS=%s %spython3 bench/peers/hotpaths.py "
        "--rounds %d --sizes %s --max-seconds %g%s`" % (
            args.binary_label, os.environ.get("OMP_NUM_THREADS", "unset"),
            "nice -n %d " % niceness if niceness > 0 else "", args.rounds,
            ",".join(map(str, args.sizes)), args.max_seconds,
            (" --only " + args.only if args.only else "")
            + (" --pg postgres://USER@HOST:PORT/DB" if args.pg else "")))
    add("")
    add("Machine: %s, %d cores, Python %s; started %s UTC, %.0f s in all; medians of %d "
        "interleaved rounds (each measurement a fresh process and directory)." % (
            platform.platform(), os.cpu_count() or 0, platform.python_version(),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)), wall, args.rounds))
    versions = []
    for module in PEER_MODULES.values():
        if module not in skipped:
            v = subprocess.run([sys.executable, "-c", "import %s as m; print(m.__version__)"
                                % module], capture_output=True, text=True).stdout.strip()
            versions.append("%s %s" % (module, v))
    add("Peers: %s.%s" % (", ".join(versions) or "none",
                          " Not installed (skipped): %s." % ", ".join(skipped) if skipped else ""))
    # With --only, the measurements left out have no row (and a section none of them).
    shown = (lambda key: key in results) if args.only else (lambda key: True)
    asktell = [n for n in args.sizes if any(shown((k, n)) for k, _ in ASKTELL_LABELS)]
    if asktell:
        add("")
        add("## Ask/tell, trivial objective")
        add("")
        add("| trials | tool | trials/s | hyperdial ÷ tool (the PostgreSQL rows: hyperdial "
            "on PostgreSQL ÷ tool; hyperdial's two-request loop, or its one-request loop "
            "when only that was measured) |")
        add("| --- | --- | --- | --- |")
    for n in asktell:
        for name, label in ASKTELL_LABELS:
            if not shown((name, n)):
                continue
            # PostgreSQL rows against hyperdial on PostgreSQL, the others against SQLite.
            pg_row = name.endswith("-pg") or "-pg-" in name
            base_name = "asktell/hyperdial-pg" if pg_row else "asktell/hyperdial"
            if name.endswith("-2jobs"):
                # Two threads on one sweep, against hyperdial's two threads on that storage.
                base_name = "asktell/hyperdial-%sone-2jobs" % ("pg-" if pg_row else "")
            base = med(results.get((base_name, n), []), "rate")
            if base is None:
                base = med(results.get((base_name + "-one", n), []), "rate")
            rs = results.get((name, n), [])
            rate = med(rs, "rate")
            if rate is None:
                err = next((r["error"] for r in rs if "error" in r), "skipped")
                add("| %d | %s | – (%s) | – |" % (n, label, err))
                continue
            done = med(rs, "trials")
            cut = " (cut at %d)" % done if done < n else ""
            ratio = "%.3g" % (base / rate) if base else "–"
            cpu = med(rs, "server_cpu_ms")
            if cpu is not None:
                cut += "; CPU per trial: server %.2f ms, client %.2f ms" % (
                    cpu, med(rs, "client_cpu_ms"))
            add("| %d | %s | %.0f%s | %s |" % (n, label, rate, cut, ratio))
    logged = any(shown((name, 0)) for name, _ in LOG_LABELS)
    if logged:
        add("")
        add("## Logging 20,000 steps × 5 metrics from a script, and reading them back")
        add("")
        add("| tool | log (s) | read all 100,000 (s) | read downsampled (s) | disk per 10^6 "
            "values |")
        add("| --- | --- | --- | --- | --- |")
    base = med(results.get(("log/hyperdial", 0), []), "log_seconds")
    base_read = med(results.get(("log/hyperdial", 0), []), "read_full_seconds")
    for name, label in LOG_LABELS:
        if not shown((name, 0)):
            continue
        rs = results.get((name, 0), [])
        if not rs or all("error" in r for r in rs):
            err = next((r["error"] for r in rs if "error" in r), "skipped")
            add("| %s | – (%s) | – | – | – |" % (label, err))
            continue
        log = med(rs, "log_seconds")
        full = med(rs, "read_full_seconds")
        down = med(rs, "read_down_seconds")
        disk = med(rs, "disk_bytes")
        vac = med(rs, "disk_vacuumed_bytes")
        scale = 1e6 / (STEPS * METRICS) / 1e6
        disk_s = "%.0f MB" % (disk * scale) if disk else "–"
        if vac:
            disk_s += " (%.0f MB vacuumed)" % (vac * scale)
        add("| %s | %.2f (%s) | %s | %s | %s |" % (
            label, log, "%.2f× hyperdial" % (log / base) if base else "–",
            "–" if full is None else "%.3f (%.2f× hyperdial)" % (full, full / base_read)
            if base_read else "%.3f" % full,
            "%.3f" % down if down is not None else "–", disk_s))
    rs = results.get(("log/hyperdial", 0), [])
    if rs and med(rs, "rss_idle_kib"):
        add("")
        add("hyperdial server memory: %.0f MiB at start, %.0f MiB after the logging and reads, "
            "peak %.0f MiB." % (med(rs, "rss_idle_kib") / 1024, med(rs, "rss_after_kib") / 1024,
                                med(rs, "rss_peak_kib") / 1024))
        add("Values read back: %s in full, %s downsampled (1,000 points per metric asked)."
            % (med(rs, "read_full_values"), med(rs, "read_down_values")))
    rs = results.get(("asktell/hyperdial", max(args.sizes)), [])
    if rs and med(rs, "server_rss_kib"):
        add("Server RSS after %d ask/tell trials: %.0f MiB." % (
            max(args.sizes), med(rs, "server_rss_kib") / 1024))
    add("")
    add("Raw results (one JSON line per measurement) go to the script's standard error.")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sizes", default="2000,10000")
    ap.add_argument("--max-seconds", type=float, default=300.0,
                    help="stop one ask/tell measurement after this long")
    ap.add_argument("--out", help="also write the Markdown report here")
    ap.add_argument("--only", default="",
                    help="comma-separated prefixes of the measurements to run (asktell/, "
                         "log/hyperdial, log/trackio, ...); default all")
    ap.add_argument("--pg", help="a PostgreSQL server URL (postgres://USER@HOST:PORT/DB): "
                                     "also measure ask/tell on PostgreSQL, with Optuna's RDB "
                                     "storage on the same server")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.n, args.dir, args.max_seconds)))
        return
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    binary = os.environ.get("HYPERDIAL_BIN") or shutil.which("hyperdial")
    if not binary:
        raise SystemExit("set HYPERDIAL_BIN to the hyperdial binary to measure")
    args.binary_label = os.path.relpath(binary, REPO) if binary.startswith(REPO) else binary
    os.environ["HYPERDIAL_BIN"] = os.path.abspath(binary)
    if args.pg:
        if not available("psycopg2"):
            raise SystemExit("--pg needs psycopg2 (pip install psycopg2-binary)")
        os.environ[PG_ENV] = args.pg
    skipped = [m for m in PEER_MODULES.values() if not available(m)]
    for m in skipped:
        print("peer %s is not installed: skipped (pip install %s)" % (m, m), flush=True)
    plan = []
    for n in args.sizes:
        plan += [("asktell/hyperdial", n), ("asktell/hyperdial-normal", n),
                 ("asktell/hyperdial-one", n), ("asktell/hyperdial-one-normal", n),
                 ("asktell/hyperdial-one-2jobs", n)]
        if "optuna" not in skipped:
            plan += [("asktell/optuna-memory", n), ("asktell/optuna-journal", n),
                     ("asktell/optuna-sqlite", n), ("asktell/optuna-journal-2jobs", n)]
        if args.pg:
            plan += [("asktell/hyperdial-pg", n), ("asktell/hyperdial-pg-one", n),
                     ("asktell/hyperdial-pg-one-2jobs", n)]
            if "optuna" not in skipped and available("psycopg2"):
                plan += [("asktell/optuna-pg", n), ("asktell/optuna-pg-2jobs", n)]
            elif "optuna" not in skipped:
                print("psycopg2 is not installed: Optuna on PostgreSQL skipped", flush=True)
    plan.append(("log/hyperdial", 0))
    for tool in ("mlflow", "wandb", "trackio"):
        if tool not in skipped:
            plan.append(("log/" + tool, 0))
    only = [p for p in args.only.split(",") if p]
    if only:
        plan = [(name, n) for name, n in plan if any(name.startswith(p) for p in only)]
        if not plan:
            raise SystemExit("--only %s matches no measurement" % args.only)
    started = time.time()
    results = {}
    for r in range(args.rounds):
        shift = r % len(plan)
        for name, n in plan[shift:] + plan[:shift]:
            t0 = time.monotonic()
            res = run_one(name, n, args.max_seconds)
            results.setdefault((name, n), []).append(res)
            print("round %d %s n=%d (%.0f s): %s" % (r + 1, name, n, time.monotonic() - t0,
                                                      json.dumps(res)), file=sys.stderr,
                  flush=True)
    text = report(args, results, skipped, started, time.time() - started)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
