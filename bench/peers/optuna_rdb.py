"""Peer of the storage-throughput benchmark: Optuna with its RDB storage on PostgreSQL.

Trivial objective (one suggest_float, in process: no subprocess per trial), RandomSampler, so
the number is the storage's cost per trial. Measured on a fresh database per case:

- trials/s with one process (n_jobs=1);
- trials/s with PROCS processes sharing one study (each opens it with
  create_study(load_if_exists=True) and runs its share; the rate is all trials over the span
  from the first process starting its trials to the last one ending);
- trial.report points/s: each trial reports STEPS intermediate values (one storage write each,
  as Optuna has no batched report).

Run with OMP_NUM_THREADS=1:
    python3 bench/peers/optuna_rdb.py postgresql+psycopg2://postgres@127.0.0.1:5432/postgres \
        [--trials 500] [--procs 2,4] [--steps 100]

The URL names the server; a scratch database per case is created there and dropped afterwards.
A sqlite:/// URL works too for the single-process cases (the file is removed first).
"""

import argparse
import multiprocessing as mp
import os
import time
import uuid

import optuna
import psycopg2
import sqlalchemy

optuna.logging.set_verbosity(optuna.logging.WARNING)


def scratch(url, tag):
    """A fresh storage URL for one case, and a function that removes it."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        root, ext = os.path.splitext(path)
        case = f"{root}-{tag}{ext or '.db'}"
        if os.path.exists(case):
            os.remove(case)
        return f"sqlite:///{case}", lambda: os.path.exists(case) and os.remove(case)
    u = sqlalchemy.engine.make_url(url)
    name = f"optuna_bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = dict(host=u.host, port=u.port, user=u.username, password=u.password,
                 dbname=u.database or "postgres")

    def sql(statement):
        conn = psycopg2.connect(**admin)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.close()

    sql(f"CREATE DATABASE {name}")
    return u.set(database=name).render_as_string(hide_password=False), \
        lambda: sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def trivial(trial):
    return trial.suggest_float("x", 0.0, 1.0)


def reporting(steps):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(steps):
            trial.report(x / (step + 1), step)
        return x
    return objective


def study_of(storage, name):
    return optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                               sampler=optuna.samplers.RandomSampler())


def single(url, trials):
    storage, drop = scratch(url, "single")
    try:
        study = study_of(storage, "bench")
        started = time.perf_counter()
        study.optimize(trivial, n_trials=trials)
        return trials / (time.perf_counter() - started)
    finally:
        drop()


def worker(storage, trials, barrier, out):
    study = study_of(storage, "bench")
    barrier.wait()
    started = time.time()
    study.optimize(trivial, n_trials=trials)
    out.put((started, time.time()))


def multi(url, trials, procs):
    storage, drop = scratch(url, f"p{procs}")
    try:
        study_of(storage, "bench")  # create the schema and the study once
        ctx = mp.get_context("spawn")  # no pooled connection of this process crosses a fork
        barrier = ctx.Barrier(procs)
        out = ctx.Queue()
        per = trials // procs
        ps = [ctx.Process(target=worker, args=(storage, per, barrier, out)) for _ in range(procs)]
        for p in ps:
            p.start()
        spans = [out.get() for _ in ps]
        for p in ps:
            p.join()
            assert p.exitcode == 0, f"worker exited {p.exitcode}"
        first = min(s for s, _ in spans)
        last = max(e for _, e in spans)
        return per * procs / (last - first)
    finally:
        drop()


def reports(url, trials, steps):
    storage, drop = scratch(url, "report")
    try:
        study = study_of(storage, "bench")
        started = time.perf_counter()
        study.optimize(reporting(steps), n_trials=trials)
        return trials * steps / (time.perf_counter() - started)
    finally:
        drop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", help="postgresql+psycopg2://user@host:port/db (or sqlite:///file)")
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--procs", default="2,4")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--report-trials", type=int, default=20)
    a = ap.parse_args()
    kind = "SQLite" if a.url.startswith("sqlite") else "PostgreSQL"
    print(f"## Optuna {optuna.__version__} RDB storage on {kind} "
          f"(SQLAlchemy {sqlalchemy.__version__}, psycopg2 {psycopg2.__version__.split()[0]}), "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}\n")
    print("| case | rate |")
    print("| --- | ---: |")
    print(f"| trials/s, 1 process, {a.trials} trials | {single(a.url, a.trials):.1f} |")
    if kind == "PostgreSQL":
        for n in [int(p) for p in a.procs.split(",") if p]:
            print(f"| trials/s, {n} processes, {a.trials} trials | {multi(a.url, a.trials, n):.1f} |")
    rate = reports(a.url, a.report_trials, a.steps)
    print(f"| trial.report points/s, 1 process, {a.report_trials} trials x {a.steps} steps | {rate:.0f} |")


if __name__ == "__main__":
    main()
