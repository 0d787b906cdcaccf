"""Anchor for the trivial-runs benchmark: Optuna with its SQLite storage, trivial objective.

Run with OMP_NUM_THREADS=1: python3 bench/peers/optuna_trivial.py [TRIALS]
"""

import os
import sys
import tempfile
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
trials = int(sys.argv[1]) if len(sys.argv) > 1 else 200
with tempfile.TemporaryDirectory() as d:
    storage = f"sqlite:///{os.path.join(d, 'optuna.db')}"
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    started = time.perf_counter()
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=trials)
    secs = time.perf_counter() - started
print(f"optuna (RandomSampler, SQLite storage): {trials} trials in {secs:.2f}s = {trials / secs:.1f} trials/s")
