"""Peer numbers for the engine benchmark: how long Optuna takes to suggest one configuration
after n finished trials, in the same 5-D continuous setting as `bench/benches/engine.rs`
(trials at random points, scored by the same smooth function plus a little noise).

Run with OMP_NUM_THREADS=1: python3 bench/peers/optuna_engine.py [--quick]

Optuna samples on the first `suggest_*` call of a trial, so one suggestion is timed as
`study.ask()` plus the five `suggest_float` calls. In-memory storage, so no database time is
counted. --quick skips GPSampler at 1,000 trials (several seconds per suggestion).
"""

import argparse
import random
import statistics
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
DIMS = 5


def trials(n, seed):
    rng = random.Random(seed)
    dists = {f"p{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(DIMS)}
    out = []
    for _ in range(n):
        params, loss = {}, 0.0
        for i in range(DIMS):
            u = rng.random()
            target = 0.2 + 0.6 * ((i * 7) % 10) / 10.0
            loss += (u - target) ** 2
            params[f"p{i}"] = u
        out.append(optuna.trial.create_trial(params=params, distributions=dists,
                                             value=loss + 0.01 * rng.random()))
    return out


def time_suggestion(sampler, n, reps):
    study = optuna.create_study(sampler=sampler)
    study.add_trials(trials(n, n))
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        t = study.ask()
        for i in range(DIMS):
            t.suggest_float(f"p{i}", 0.0, 1.0)
        times.append(time.perf_counter() - started)
        study.tell(t, state=optuna.trial.TrialState.FAIL)  # keep n finished trials
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    cases = [
        ("tpe", 1000, lambda: optuna.samplers.TPESampler(seed=0, multivariate=True,
                                                         constant_liar=True), 10),
        ("tpe", 5000, lambda: optuna.samplers.TPESampler(seed=0, multivariate=True,
                                                         constant_liar=True), 5),
        ("gp", 100, lambda: optuna.samplers.GPSampler(seed=0), 5),
    ]
    if not args.quick:
        cases.append(("gp", 1000, lambda: optuna.samplers.GPSampler(seed=0), 2))
    print(f"optuna {optuna.__version__}, {DIMS}-D continuous, median of repeated suggestions")
    for name, n, make, reps in cases:
        secs = time_suggestion(make(), n, reps)
        print(f"optuna {name:>3} after {n:>5} trials: {secs * 1e3:9.1f} ms per suggestion",
              flush=True)


if __name__ == "__main__":
    main()
