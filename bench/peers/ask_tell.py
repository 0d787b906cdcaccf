"""Ask/tell with a trivial objective, side by side, in one sitting.

hyperdial: the Python client's ``Sweep.ask``/``Sweep.tell`` against a local ``hyperdial
server`` process on a fresh SQLite file (``random`` over one float, ``run_cap`` = trials);
every trial is a run claimed, its value stored and the run finished, each acknowledged only
after its transaction committed. Optuna: ``study.ask``/``study.tell`` with ``RandomSampler`` on
its in-memory storage, on ``JournalStorage`` with a file backend, and on its SQLite storage.
Systems are interleaved within each round (one round runs every system once at each size),
and the median of the rounds is reported with its ratio to hyperdial.

Run with OMP_NUM_THREADS=1 (numbers in bench/results/claims-at-scale.md):

    OMP_NUM_THREADS=1 python3 bench/peers/ask_tell.py --hyperdial target/release/hyperdial \\
        --trials 2000,10000 --rounds 3 [--sqlite-max 2000]

``--sqlite-max`` skips Optuna's SQLite storage above that many trials (it runs at tens of
trials per second). ``--only hyperdial`` measures hyperdial alone (for profiling).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_hyperdial(binary, trials):
    import hyperdial

    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("HYPERDIAL_TOKEN", "HYPERDIAL_SERVER", "HYPERDIAL_DB")}
        server = subprocess.Popen(
            [binary, "server", "--db", os.path.join(d, "db.sqlite"),
             "--bind", "127.0.0.1:%d" % port],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "server.log"), "w"), env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("hyperdial server did not start")
                    time.sleep(0.05)
            url = "http://127.0.0.1:%d" % port
            sweep = hyperdial.Sweep.create(
                {"method": "random", "run_cap": trials,
                 "metric": {"name": "value", "goal": "minimize"},
                 "parameters": {"x": {"min": 0.0, "max": 1.0}}},
                server=url, seed=1)
            started = time.perf_counter()
            told = 0
            while True:
                trial = sweep.ask()
                if trial is None:
                    break
                sweep.tell(trial, trial.params["x"])
                told += 1
            secs = time.perf_counter() - started
            assert told == trials, (told, trials)
            return secs
        finally:
            server.kill()
            server.wait()


def run_optuna(kind, trials):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        if kind == "memory":
            storage = None
        elif kind == "journal":
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend
            storage = JournalStorage(JournalFileBackend(os.path.join(d, "journal.log")))
        else:
            storage = "sqlite:///" + os.path.join(d, "optuna.db")
        study = optuna.create_study(storage=storage,
                                    sampler=optuna.samplers.RandomSampler(seed=1))
        started = time.perf_counter()
        for _ in range(trials):
            t = study.ask()
            study.tell(t, t.suggest_float("x", 0.0, 1.0))
        return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hyperdial", default=os.path.join(HERE, "..", "..", "target", "release",
                                                        "hyperdial"))
    ap.add_argument("--trials", default="2000,10000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sqlite-max", type=int, default=2000)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    sizes = [int(s) for s in args.trials.split(",")]
    systems = [("hyperdial (server, SQLite)", lambda n: run_hyperdial(args.hyperdial, n)),
               ("optuna in-memory", lambda n: run_optuna("memory", n)),
               ("optuna JournalStorage (file)", lambda n: run_optuna("journal", n)),
               ("optuna SQLite", lambda n: run_optuna("sqlite", n))]
    if args.only:
        systems = [s for s in systems if s[0].startswith(args.only)]
    results = {}
    for r in range(args.rounds):
        for n in sizes:
            for name, run in systems:
                if name == "optuna SQLite" and n > args.sqlite_max:
                    continue
                secs = run(n)
                results.setdefault((name, n), []).append(n / secs)
                print("round %d  %-30s %6d trials  %9.1f trials/s" % (r + 1, name, n, n / secs),
                      flush=True)
    print()
    print("| system | trials | trials/s (median of %d) | vs hyperdial |" % args.rounds)
    print("| --- | ---: | ---: | ---: |")
    for n in sizes:
        base = results.get((systems[0][0], n))
        base = statistics.median(base) if base else None
        for name, _ in systems:
            rates = results.get((name, n))
            if not rates:
                continue
            rate = statistics.median(rates)
            ratio = "%.2f×" % (rate / base) if base else "-"
            print("| %s | %d | %.0f | %s |" % (name, n, rate, ratio))


if __name__ == "__main__":
    main()
