#!/usr/bin/env python3
"""Search-quality benchmark: hyperdial's bayes and tpe against Python peers.

    pip install -r bench/quality/requirements.txt
    pip install --no-deps sweeps==0.3.0      # W&B's engine; its metadata pins numpy<2
    cargo build --release -p hyperdial-cli
    OMP_NUM_THREADS=1 python3 bench/quality/run.py --seeds 10 --budget 100 --jobs 2

Every (optimizer, task, seed) is one child process with a time limit (forked from the parent,
which imports every peer once; ``--no-fork``: a fresh ``run.py --one ...``); it
minimizes the task for ``--budget`` trials and prints one JSON line per trial. The parent
appends one record per finished job to a JSONL file (``--out``), skips jobs already there (so
a run can be stopped and resumed, or split over machines) and finally writes the report
(``--report``, default bench/results/quality.md). Budgets 20 and 50 are read from the prefixes
of each 100-trial run. ``--report-only`` rewrites the report from the JSONL file.

Three suites. ``--suite continuous`` (the default) is the 5 synthetic functions and 4 tuning tasks
on continuous and integer ranges. ``--suite lists`` is the same kind of tasks written as W&B
users write sweeps, every parameter a ``values`` list, evaluated from lookup tables, with noisy
versions (lists.py says how; records in bench/results/quality-lists.jsonl, report in
bench/results/quality-lists.md):

    OMP_NUM_THREADS=1 nice -n 19 python3 bench/quality/run.py --suite lists --jobs 1
    HYPERDIAL_BIN=/path/to/older/hyperdial OMP_NUM_THREADS=1 nice -n 19 python3 \
        bench/quality/run.py --suite lists --optimizers hyperdial-bayes@before,hyperdial-tpe@before

Two builds of hyperdial are told apart on this suite with ``compare.py`` (paired differences per
seed range, with standard errors; bench/results/quality-lists-variants.md):

    python3 bench/quality/compare.py --base hyperdial-bayes@before old.jsonl new.jsonl

``--suite failures`` is two tasks where part of the space fails (failures.py: a synthetic loss
whose learning rate diverges above a batch-dependent limit, and an MLP that diverges or runs out
of memory); its report counts failed trials beside the regret (bench/results/quality-failures.md):

    OMP_NUM_THREADS=1 nice -n 19 python3 bench/quality/run.py --suite failures --jobs 2

``--suite multi`` is the multi-objective suite: ZDT1-3, DTLZ2 and four real trade-offs
(error against a counted model size; two of them written as ``values`` lists), scored by
normalized hypervolume after 20/50/100 trials against Optuna's NSGA-II, multi-objective TPE,
GP and random search (multi.py says how; records in bench/results/quality-multi.jsonl, report
in bench/results/quality-multi.md):

    HYPERDIAL_BIN=$PWD/target/release/hyperdial OMP_NUM_THREADS=1 nice -n 19 \
        python3 bench/quality/run.py --suite multi --seeds 10 --budget 100

An optimizer label may carry a version after ``@`` (``hyperdial-bayes@before``): it runs the
optimizer before the ``@`` and keeps its records apart, so the report can put two builds of
hyperdial side by side (each hyperdial label of one invocation uses the one binary,
``HYPERDIAL_BIN``). Every optimizer sees a ``values`` list in the form its users write: the
sweep config's ``values:`` for hyperdial and W&B, ``suggest_categorical`` for Optuna (Optuna has
no ordered-list distribution; a list is what users pass to ``suggest_categorical``),
``hp.choice`` for hyperopt, ``Categorical`` for scikit-optimize, a uniform pick for random.

Normalized regret of a run at budget b: (best value in its first b trials − f*) / (ref − f*),
where f* is the known optimum (synthetic tasks) or the best value any optimizer found on the
task (tuning tasks), and ref is the median of every value random search saw on that task, so
0 is the optimum and 1 is a typical random configuration. On the values-list tasks f* and ref
are the best and the median true value of the task's whole grid, and the value at budget b is
the true value of the incumbent, the trial with the best observed value among the first b.
"""

import argparse
import concurrent.futures
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "python"))

OPTIMIZERS = [
    "hyperdial-bayes",
    "hyperdial-tpe",
    "optuna-tpe",
    "optuna-gp",
    "hyperopt-tpe",
    "skopt-gp",
    "wandb-bayes",
    "random",
    "optuna-tpe-c",
]
# Optimizers that take part only in the failures suite by default.
FAILURES_ONLY = ["optuna-tpe-c"]
FAILURES_DEFAULT = ["hyperdial-bayes", "hyperdial-tpe", "optuna-tpe", "optuna-tpe-c", "random"]

# --------------------------------------------------------------------------------------------
# Search spaces: each parameter is (name, kind, low, high, log) with kind float|int, or
# (name, "cat", choices). Every objective is minimized.


def P(name, kind, low=None, high=None, log=False, choices=None):
    """One parameter. ``kind``: float|int (a range), cat (a categorical), values (a W&B
    ``values`` list of numbers or strings, lists.py)."""
    return {"name": name, "kind": kind, "low": low, "high": high, "log": log,
            "choices": choices}


def _box(d, low, high):
    return [P("x%d" % i, "float", low, high) for i in range(d)]


def branin(p):
    x1, x2 = p["x0"], p["x1"]
    a, b, c = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H6_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
         [17, 8, 0.05, 10, 0.1, 14]]
_H6_P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
         [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
         [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
         [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
_H6_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(p):
    x = [p["x%d" % i] for i in range(6)]
    total = 0.0
    for i in range(4):
        inner = sum(_H6_A[i][j] * (x[j] - _H6_P[i][j]) ** 2 for j in range(6))
        total += _H6_ALPHA[i] * math.exp(-inner)
    return -total


def rosenbrock(p):
    x = [p["x%d" % i] for i in range(5)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(4))


def ackley(p):
    x = [p["x%d" % i] for i in range(10)]
    d = len(x)
    s1 = sum(v * v for v in x) / d
    s2 = sum(math.cos(2 * math.pi * v) for v in x) / d
    return -20 * math.exp(-0.2 * math.sqrt(s1)) - math.exp(s2) + 20 + math.e


def levy(p):
    x = [p["x%d" % i] for i in range(10)]
    w = [1 + (v - 1) / 4 for v in x]
    head = math.sin(math.pi * w[0]) ** 2
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    mid = sum((wi - 1) ** 2 * (1 + 10 * math.sin(math.pi * wi + 1) ** 2) for wi in w[:-1])
    return head + mid + tail


# Tuning tasks on scikit-learn's bundled data sets. The data and folds are fixed, so each
# objective is deterministic; all of them cost tens of milliseconds.

_DATA = {}


def _data(name):
    if name not in _DATA:
        from sklearn import datasets
        from sklearn.preprocessing import StandardScaler
        if name == "breast_cancer":
            X, y = datasets.load_breast_cancer(return_X_y=True)
            X = StandardScaler().fit_transform(X)
        elif name == "diabetes":
            X, y = datasets.load_diabetes(return_X_y=True)
        elif name == "wine":
            X, y = datasets.load_wine(return_X_y=True)
        elif name == "digits":
            X, y = datasets.load_digits(return_X_y=True)
            X, y = X[:400] / 16.0, y[:400]
        _DATA[name] = (X, y)
    return _DATA[name]


def _cv_error(model, name, folds=3):
    import warnings
    from sklearn.model_selection import KFold, cross_val_score
    X, y = _data(name)
    cv = KFold(n_splits=folds, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = cross_val_score(model, X, y, cv=cv).mean()
    return 1.0 - float(score)


def svm_cancer(p):
    from sklearn.svm import SVC
    return _cv_error(SVC(C=p["C"], gamma=p["gamma"]), "breast_cancer")


def enet_diabetes(p):
    from sklearn.linear_model import ElasticNet
    return _cv_error(ElasticNet(alpha=p["alpha"], l1_ratio=p["l1_ratio"], max_iter=2000),
                     "diabetes", folds=5)


def forest_wine(p):
    from sklearn.ensemble import RandomForestClassifier
    model = RandomForestClassifier(
        n_estimators=int(p["n_estimators"]), max_depth=int(p["max_depth"]),
        min_samples_split=int(p["min_samples_split"]), max_features=p["max_features"],
        criterion=p["criterion"], random_state=0, n_jobs=1)
    return _cv_error(model, "wine")


def mlp_digits(p):
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(
        hidden_layer_sizes=(int(p["hidden"]),), alpha=p["alpha"],
        learning_rate_init=p["lr"], activation=p["activation"], max_iter=8,
        random_state=0)
    return _cv_error(model, "digits")


TASKS = {
    "branin": {"f": branin, "opt": 0.397887, "space": [P("x0", "float", -5, 10),
                                                        P("x1", "float", 0, 15)]},
    "hartmann6": {"f": hartmann6, "opt": -3.32237, "space": _box(6, 0.0, 1.0)},
    "rosenbrock5": {"f": rosenbrock, "opt": 0.0, "space": _box(5, -2.048, 2.048)},
    "ackley10": {"f": ackley, "opt": 0.0, "space": _box(10, -32.768, 32.768)},
    "levy10": {"f": levy, "opt": 0.0, "space": _box(10, -10.0, 10.0)},
    "svm-cancer": {"f": svm_cancer, "opt": None, "space": [
        P("C", "float", 1e-3, 1e3, log=True), P("gamma", "float", 1e-5, 1e1, log=True)]},
    "enet-diabetes": {"f": enet_diabetes, "opt": None, "space": [
        P("alpha", "float", 1e-5, 1e1, log=True), P("l1_ratio", "float", 0.0, 1.0)]},
    "forest-wine": {"f": forest_wine, "opt": None, "space": [
        P("n_estimators", "int", 3, 20), P("max_depth", "int", 1, 10),
        P("min_samples_split", "int", 2, 20), P("max_features", "float", 0.05, 1.0),
        P("criterion", "cat", choices=["gini", "entropy"])]},
    "mlp-digits": {"f": mlp_digits, "opt": None, "space": [
        P("hidden", "int", 4, 64, log=True), P("alpha", "float", 1e-6, 1e-1, log=True),
        P("lr", "float", 1e-4, 3e-1, log=True), P("activation", "cat",
                                                    choices=["relu", "tanh", "logistic"])]},
}
SYNTHETIC = ["branin", "hartmann6", "rosenbrock5", "ackley10", "levy10"]
CONTINUOUS = list(TASKS)


def _add_list_tasks():
    import lists
    for name, (base, noisy) in lists.tasks().items():
        TASKS[name] = {"f": None, "opt": None, "space": lists.SPACES[base], "lookup": True,
                       "noisy": noisy}


sys.path.insert(0, HERE)
_add_list_tasks()
LIST_TASKS = [t for t in TASKS if TASKS[t].get("lookup")]
import failures  # noqa: E402
TASKS.update(failures.tasks(P))
FAILURE_TASKS = [t for t in TASKS if TASKS[t].get("fails")]


def _add_multi_tasks():
    import multi
    for name, spec in multi.tasks().items():
        TASKS[name] = dict(spec, opt=None, multi=True)


_add_multi_tasks()
MULTI_TASKS = [t for t in TASKS if TASKS[t].get("multi")]
SUITES = {"continuous": CONTINUOUS, "lists": LIST_TASKS, "failures": FAILURE_TASKS,
          "multi": MULTI_TASKS}


def _finite(p):
    return p["kind"] in ("cat", "values")


# --------------------------------------------------------------------------------------------
# Optimizers. Each is a generator factory: run(space, seed, budget, evaluate) drives the
# evaluation loop and returns nothing; evaluate(params) -> value records everything.


def _wandb_like_params(space):
    """The space as sweep-config parameters (shared by hyperdial and W&B's sweeps)."""
    out = {}
    for p in space:
        if _finite(p):
            out[p["name"]] = {"values": list(p["choices"])}
        elif p["kind"] == "int":
            if p["log"]:
                out[p["name"]] = {"distribution": "q_log_uniform_values",
                                  "min": p["low"], "max": p["high"], "q": 1}
            else:
                out[p["name"]] = {"distribution": "int_uniform", "min": p["low"],
                                  "max": p["high"]}
        elif p["log"]:
            out[p["name"]] = {"distribution": "log_uniform_values", "min": float(p["low"]),
                              "max": float(p["high"])}
        else:
            out[p["name"]] = {"distribution": "uniform", "min": float(p["low"]),
                              "max": float(p["high"])}
    return out


def opt_random(space, seed, budget, evaluate):
    import numpy as np
    rng = np.random.default_rng(seed)
    for _ in range(budget):
        params = {}
        for p in space:
            if _finite(p):
                params[p["name"]] = p["choices"][rng.integers(len(p["choices"]))]
            elif p["log"]:
                v = math.exp(rng.uniform(math.log(p["low"]), math.log(p["high"])))
                params[p["name"]] = min(p["high"], max(p["low"], round(v))) \
                    if p["kind"] == "int" else v
            elif p["kind"] == "int":
                params[p["name"]] = int(rng.integers(p["low"], p["high"] + 1))
            else:
                params[p["name"]] = float(rng.uniform(p["low"], p["high"]))
        evaluate(params)


def _hyperdial(method):
    def run(space, seed, budget, evaluate):
        import hyperdial
        server = os.environ["HYPERDIAL_BENCH_SERVER"]
        config = {"method": method, "metric": {"name": "loss", "goal": "minimize"},
                  "parameters": _wandb_like_params(space), "run_cap": budget,
                  "name": "quality"}
        sweep = hyperdial.Sweep.create(config, server=server, seed=seed + 1,
                                       project="quality")
        told = []
        for _ in range(budget):
            trial = sweep.ask()
            if trial is None:
                break
            value = evaluate(dict(trial.params))
            sweep.tell(trial, value)
            told.append(trial.id)
            if len(told) in ESTIMATE_AT:
                # The run hyperdial reports as its estimate of the best configuration
                # (`hyperdial best --estimate`) after this many trials, as a trial index.
                e = sweep.estimate()
                if e is not None and e["trial"].id in told:
                    print(json.dumps({"estimate": len(told),
                                      "index": told.index(e["trial"].id)}), flush=True)
    return run


# Budgets after which `hyperdial-*` runs record hyperdial's estimate of the best configuration
# (compare.py's `LABEL+estimate`).
ESTIMATE_AT = (20, 50, 100)


def opt_optuna(kind):
    def run(space, seed, budget, evaluate):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if kind == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed)
        elif kind == "tpe-c":
            # Failed trials are told as feasible-or-not through constraints_func.
            sampler = optuna.samplers.TPESampler(
                seed=seed, constraints_func=lambda t: t.user_attrs["c"])
        else:
            sampler = optuna.samplers.GPSampler(seed=seed)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        for _ in range(budget):
            trial = study.ask()
            params = _optuna_params(trial, space)
            value = evaluate(params)
            if kind == "tpe-c":
                seen = [t.value for t in study.trials if t.value is not None]
                trial.set_user_attr("c", [1.0 if value is None else -1.0])
                if value is None:
                    # A completed trial needs a value: the worst so far (W&B's impute).
                    value = max(seen) if seen else 0.0
                study.tell(trial, value)
            elif value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
    return run


def _optuna_params(trial, space):
    """The trial's suggestions for ``space`` (a values list is ``suggest_categorical``)."""
    params = {}
    for p in space:
        if _finite(p):
            params[p["name"]] = trial.suggest_categorical(p["name"], p["choices"])
        elif p["kind"] == "int":
            params[p["name"]] = trial.suggest_int(p["name"], p["low"], p["high"], log=p["log"])
        else:
            params[p["name"]] = trial.suggest_float(p["name"], p["low"], p["high"],
                                                    log=p["log"])
    return params


def opt_hyperopt(space, seed, budget, evaluate):
    import numpy as np
    from hyperopt import STATUS_OK, Trials, fmin, hp, tpe
    hspace = {}
    for p in space:
        n = p["name"]
        if _finite(p):
            hspace[n] = hp.choice(n, p["choices"])
        elif p["kind"] == "int":
            if p["log"]:
                hspace[n] = hp.qloguniform(n, math.log(p["low"]), math.log(p["high"]), 1)
            else:
                hspace[n] = hp.quniform(n, p["low"], p["high"], 1)
        elif p["log"]:
            hspace[n] = hp.loguniform(n, math.log(p["low"]), math.log(p["high"]))
        else:
            hspace[n] = hp.uniform(n, p["low"], p["high"])

    def fn(params):
        params = dict(params)
        for p in space:
            if p["kind"] == "int":
                params[p["name"]] = int(min(p["high"], max(p["low"], round(params[p["name"]]))))
        return {"loss": evaluate(params), "status": STATUS_OK}

    fmin(fn, hspace, algo=tpe.suggest, max_evals=budget, trials=Trials(),
         rstate=np.random.default_rng(seed), show_progressbar=False)


def opt_skopt(space, seed, budget, evaluate):
    # What gp_minimize does, through its ask/tell Optimizer: a GP with a Matérn kernel and
    # Gaussian noise, 10 random initial points, the gp_hedge acquisition, lbfgs.
    from skopt import Optimizer
    from skopt.space import Categorical, Integer, Real
    from skopt.utils import cook_estimator
    dims = []
    for p in space:
        if _finite(p):
            dims.append(Categorical(p["choices"], name=p["name"]))
        elif p["kind"] == "int":
            dims.append(Integer(p["low"], p["high"], prior="log-uniform" if p["log"]
                                else "uniform", name=p["name"]))
        else:
            dims.append(Real(p["low"], p["high"], prior="log-uniform" if p["log"]
                             else "uniform", name=p["name"]))
    from skopt.space import Space
    estimator = cook_estimator("GP", space=Space(dims), random_state=seed, noise="gaussian")
    opt = Optimizer(dims, estimator, n_initial_points=10, acq_func="gp_hedge",
                    acq_optimizer="lbfgs", random_state=seed)
    for _ in range(budget):
        x = opt.ask()
        params = {}
        for p, v in zip(space, x):
            params[p["name"]] = v.item() if hasattr(v, "item") else v
        value = evaluate(params)
        opt.tell(x, value)


def opt_wandb(space, seed, budget, evaluate):
    import random as pyrandom
    import numpy as np
    import sweeps
    from sweeps import RunState, SweepRun
    config = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": _wandb_like_params(space)}
    runs = []
    np.random.seed(seed)
    pyrandom.seed(seed)
    for i in range(budget):
        run = sweeps.next_run(config, runs)
        params = {}
        for p in space:
            v = run.config[p["name"]]["value"]
            if p["kind"] == "int":
                v = int(round(v))
            elif p["kind"] == "float":
                v = float(v)
            params[p["name"]] = v
        value = evaluate(params)
        run.name = "run-%d" % i
        run.state = RunState.finished
        run.summary_metrics = {"loss": value}
        run.history = [{"loss": value}]
        runs.append(run)


RUNNERS = {
    "hyperdial-bayes": _hyperdial("bayes"),
    "hyperdial-tpe": _hyperdial("tpe"),
    "optuna-tpe": opt_optuna("tpe"),
    "optuna-gp": opt_optuna("gp"),
    "optuna-tpe-c": opt_optuna("tpe-c"),
    "hyperopt-tpe": opt_hyperopt,
    "skopt-gp": opt_skopt,
    "wandb-bayes": opt_wandb,
    "random": opt_random,
}


# Multi-objective optimizers (--suite multi): run(space, objectives, seed, budget, evaluate),
# where evaluate(params) returns the list of objective values (all minimized) and
# ``objectives`` names them.
MULTI_OPTIMIZERS = [
    "hyperdial-tpe",
    "hyperdial-bayes",
    "hyperdial-random",
    "optuna-nsga2",
    "optuna-tpe",
    "optuna-gp",
    "optuna-random",
]


def _hyperdial_multi(method):
    def run(space, objectives, seed, budget, evaluate):
        import hyperdial
        server = os.environ["HYPERDIAL_BENCH_SERVER"]
        config = {"method": method,
                  "metrics": [{"name": n, "goal": "minimize"} for n in objectives],
                  "parameters": _wandb_like_params(space), "run_cap": budget,
                  "name": "quality-multi"}
        sweep = hyperdial.Sweep.create(config, server=server, seed=seed + 1,
                                       project="quality")
        dicts = True
        for _ in range(budget):
            trial = sweep.ask()
            if trial is None:
                break
            values = dict(zip(objectives, evaluate(dict(trial.params))))
            if dicts:
                try:
                    sweep.tell(trial, values)
                    continue
                except (TypeError, ValueError):
                    dicts = False  # a client whose tell takes one number (checked first)
            # Post every objective, then tell the first (the sweep's ``metric``).
            hyperdial._transport._call(sweep._transport, "POST", trial._path("metrics"),
                            {"points": [{"values": values}]})
            sweep.tell(trial, values[objectives[0]])
    return run


def _optuna_multi(kind):
    def run(space, objectives, seed, budget, evaluate):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = {"nsga2": optuna.samplers.NSGAIISampler,
                   "tpe": optuna.samplers.TPESampler,
                   "gp": optuna.samplers.GPSampler,
                   "random": optuna.samplers.RandomSampler}[kind](seed=seed)
        study = optuna.create_study(sampler=sampler,
                                    directions=["minimize"] * len(objectives))
        for _ in range(budget):
            trial = study.ask()
            study.tell(trial, evaluate(_optuna_params(trial, space)))
    return run


MULTI_RUNNERS = {
    "hyperdial-tpe": _hyperdial_multi("tpe"),
    "hyperdial-bayes": _hyperdial_multi("bayes"),
    "hyperdial-random": _hyperdial_multi("random"),
    "optuna-nsga2": _optuna_multi("nsga2"),
    "optuna-tpe": _optuna_multi("tpe"),
    "optuna-gp": _optuna_multi("gp"),
    "optuna-random": _optuna_multi("random"),
}


def runner_of(label):
    """The optimizer a label runs: ``hyperdial-bayes@before`` runs ``hyperdial-bayes``."""
    return label.split("@", 1)[0]


def run_one(optimizer, task, seed, budget):
    """Child process: run one job, printing one JSON line per trial (with the true value and
    the grid index of the configuration on values-list tasks)."""
    spec = TASKS[task]
    f = spec["f"]
    table, draws = None, None
    if spec.get("lookup"):
        import lists
        table = lists.lookup(task)
        draws = table.draws(seed)
    state = {"eval_s": 0.0, "n": 0, "last": time.perf_counter()}
    start = time.perf_counter()

    def evaluate(params):
        if state["n"] >= budget:
            raise RuntimeError("optimizer asked for more than the budget")
        t0 = time.perf_counter()
        suggest_s = t0 - state["last"]
        line = {"i": state["n"] + 1}
        if table is not None:
            idx = table.index(params)
            value, true = table.observe(idx, next(draws))
            line.update({"value": value, "true": true, "cfg": idx})
        elif spec.get("multi"):
            value = [float(v) for v in f(params)]
            line["value"] = value
        else:
            value = f(params)
            # A failed run (tasks with a crash region): None, told as failed.
            value = float(value) if value is not None and math.isfinite(value) else None
            line["value"] = value
        line["suggest_s"] = suggest_s
        t1 = time.perf_counter()
        state["eval_s"] += t1 - t0
        state["n"] += 1
        state["last"] = t1
        print(json.dumps(line), flush=True)
        return value

    if spec.get("multi"):
        MULTI_RUNNERS[runner_of(optimizer)](spec["space"], spec["objectives"], seed, budget,
                                            evaluate)
    else:
        RUNNERS[runner_of(optimizer)](spec["space"], seed, budget, evaluate)
    print(json.dumps({"done": True, "wall_s": time.perf_counter() - start,
                      "eval_s": state["eval_s"]}), flush=True)


# --------------------------------------------------------------------------------------------
# The parent: jobs, the server, the JSONL file


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def find_binary():
    candidates = [os.environ.get("HYPERDIAL_BIN", ""),
                  os.path.join(REPO, "target", "release", "hyperdial")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return shutil.which("hyperdial")


def _describe_binary(binary):
    """The binary's file name, version line and modification time, for the records."""
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    except Exception:
        version = "?"
    mtime = time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.path.getmtime(binary)))
    return "%s (%s, built %s UTC)" % (os.path.basename(binary), version, mtime)


def start_server(binary, workdir):
    port = free_port()
    db = os.path.join(workdir, "quality.db")
    log = open(os.path.join(workdir, "server.log"), "wb")
    proc = subprocess.Popen([binary, "server", "--db", db, "--bind", "127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    import urllib.request
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/api/v1/sweeps", timeout=0.5).read()
            return proc, url
        except Exception:
            if proc.poll() is not None:
                raise SystemExit("hyperdial server exited; see %s/server.log" % workdir)
            time.sleep(0.05)
    raise SystemExit("hyperdial server did not answer on %s" % url)


def _current(record):
    """False for a record of a values-list task made with another table or space."""
    if not TASKS.get(record.get("task"), {}).get("lookup"):
        return True
    import lists
    return record.get("table") == lists.lookup(record["task"]).fingerprint


def load_records(path):
    """The records of a JSONL file, less those made with a stale table."""
    records = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        pass
    return [r for r in records if _current(r)]


def preload(optimizers=None):
    """Import the peers (those ``optimizers`` use, or every peer) and load the data sets once,
    so forked jobs start at once."""
    used = {runner_of(o) for o in optimizers} if optimizers else None
    for mod in ("numpy", "scipy.optimize", "sklearn.svm", "sklearn.linear_model",
                "sklearn.ensemble", "sklearn.neural_network", "sklearn.model_selection",
                "optuna", "optuna.samplers._gp.sampler", "torch", "hyperopt", "skopt",
                "sweeps", "hyperdial"):
        needs = {"optuna.samplers._gp.sampler": "optuna-gp", "torch": "optuna-gp",
                 "hyperopt": "hyperopt-tpe", "skopt": "skopt-gp", "sweeps": "wandb-bayes"}
        if used is not None and mod in needs and needs[mod] not in used:
            continue
        try:
            __import__(mod)
        except Exception:
            pass
    for name in ("breast_cancer", "diabetes", "wine", "digits"):
        _data(name)
    import lists
    for task in LIST_TASKS:
        try:
            lists.lookup(task)
        except (OSError, ValueError):
            pass  # reported by the job that needs it


def _forked_child(optimizer, task, seed, budget, out_path, err_path):
    code = 0
    try:
        with open(out_path, "w", buffering=1) as out, open(err_path, "w") as err:
            sys.stdout, sys.stderr = out, err
            try:
                run_one(optimizer, task, seed, budget)
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            out.flush()
            err.flush()
    finally:
        os._exit(code)


def run_job(job, budget, timeout, env, fork=True):
    """One job in a child process with a time limit: forked from this (preloaded) process,
    or a fresh interpreter (``--no-fork``)."""
    optimizer, task, seed = job
    t0 = time.time()
    status = "ok"
    if fork:
        import multiprocessing
        fd, out_path = tempfile.mkstemp(prefix="hq-", suffix=".out")
        os.close(fd)
        err_path = out_path[:-4] + ".err"
        proc = multiprocessing.get_context("fork").Process(
            target=_forked_child, args=(optimizer, task, seed, budget, out_path, err_path))
        proc.start()
        proc.join(timeout)
        if proc.is_alive():
            status = "timeout"
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        elif proc.exitcode != 0:
            status = "error"
        out, err = b"", b""
        for path in (out_path, err_path):
            try:
                with open(path, "rb") as f:
                    if path == out_path:
                        out = f.read()
                    else:
                        err = f.read()
                os.unlink(path)
            except OSError:
                pass
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", optimizer, task, str(seed),
               str(budget)]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, env=env)
            out, err = proc.stdout, proc.stderr
            if proc.returncode != 0:
                status = "error"
        except subprocess.TimeoutExpired as exc:
            out, err = exc.stdout or b"", exc.stderr or b""
            status = "timeout"
    values, suggest, wall, eval_s = [], [], None, None
    trues, configs, estimates = [], [], {}
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "value" in rec:
            values.append(rec["value"])
            suggest.append(rec["suggest_s"])
            if "cfg" in rec:
                trues.append(rec["true"])
                configs.append(rec["cfg"])
        elif "estimate" in rec:
            estimates[str(rec["estimate"])] = rec["index"]
        elif rec.get("done"):
            wall, eval_s = rec["wall_s"], rec["eval_s"]
    record = {"optimizer": optimizer, "task": task, "seed": seed, "budget": budget,
              "status": status, "values": values, "suggest_s": suggest,
              "wall_s": wall if wall is not None else time.time() - t0, "eval_s": eval_s}
    if estimates:
        record["estimates"] = estimates
    if configs:
        import lists
        record["true_values"] = trues
        record["configs"] = configs
        record["table"] = lists.lookup(task).fingerprint
    if optimizer.startswith("hyperdial") and env.get("HYPERDIAL_BENCH_BINARY"):
        record["binary"] = env["HYPERDIAL_BENCH_BINARY"]
    if status != "ok":
        record["error"] = err.decode("utf-8", "replace")[-2000:]
    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", nargs=4, metavar=("OPTIMIZER", "TASK", "SEED", "BUDGET"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per job")
    ap.add_argument("--optimizers", default=None,
                    help="comma-separated labels (default: all; skopt-gp not in the lists suite)")
    ap.add_argument("--suite", choices=sorted(SUITES), default="continuous",
                    help="the task set, and the default --out and --report")
    ap.add_argument("--tasks", default=None, help="comma-separated (default: the suite's)")
    ap.add_argument("--out", default=None,
                    help="JSONL records (default bench/results/quality[-lists].jsonl)")
    ap.add_argument("--report", default=None,
                    help="report (default bench/results/quality[-lists].md)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-fork", action="store_true",
                    help="start each job as a fresh interpreter instead of forking")
    ap.add_argument("--stop-after", type=float, default=0.0,
                    help="seconds after which no new job starts (running ones finish)")
    ap.add_argument("--note", default="", help="free text for the report (what was run)")
    ap.add_argument("--command", default="",
                    help="the command shown in the report (with --report-only: the one that ran)")
    args = ap.parse_args()
    import multi
    omp = os.environ.get("OMP_NUM_THREADS", "<unset>")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    if args.one:
        optimizer, task, seed, budget = args.one
        run_one(optimizer, task, int(seed), int(budget))
        return

    stem = "quality" if args.suite == "continuous" else "quality-" + args.suite
    results = os.path.join(REPO, "bench", "results")
    args.out = args.out or os.path.join(results, stem + ".jsonl")
    args.report = args.report or os.path.join(results, stem + ".md")
    explicit = args.optimizers is not None
    multi_suite = args.suite == "multi"
    known_runners = MULTI_RUNNERS if multi_suite else RUNNERS
    known_order = MULTI_OPTIMIZERS if multi_suite else OPTIMIZERS
    if not explicit and args.suite == "failures":
        args.optimizers = ",".join(FAILURES_DEFAULT)
    elif not explicit:
        args.optimizers = ",".join(o for o in known_order if o not in FAILURES_ONLY
                                   and (args.suite == "continuous" or o != "skopt-gp"))
    optimizers = [o for o in args.optimizers.split(",") if o]
    tasks = [t for t in (args.tasks or ",".join(SUITES[args.suite])).split(",") if t]
    for o in optimizers:
        if runner_of(o) not in known_runners:
            raise SystemExit("unknown optimizer %s (known: %s)" % (o, ", ".join(known_runners)))
    for t in tasks:
        if bool(TASKS.get(t, {}).get("multi")) != multi_suite:
            raise SystemExit("task %s is not in the %s suite" % (t, args.suite))
    hyper_versions = {o.partition("@")[2] for o in optimizers if o.startswith("hyperdial")}
    if len(hyper_versions) > 1:
        raise SystemExit("hyperdial labels of two versions (%s) in one run: one binary serves "
                         "them all; run each version separately" % ", ".join(
                             sorted("@" + v if v else "(none)" for v in hyper_versions)))
    for t in tasks:
        if t not in TASKS:
            raise SystemExit("unknown task %s (known: %s)" % (t, ", ".join(TASKS)))
    command = args.command or "OMP_NUM_THREADS=%s python3 bench/quality/run.py %s" % (
        omp, " ".join(sys.argv[1:]))

    if not args.report_only:
        done = {(r["optimizer"], r["task"], r["seed"]) for r in load_records(args.out)
                if r.get("status") == "ok" and r.get("budget", 0) >= args.budget}
        # Seed-major order, random first: a stopped run leaves whole seeds behind.
        first = "optuna-random" if multi_suite else "random"
        order = [first] + [o for o in optimizers if o != first]
        jobs = [(o, t, s) for s in range(args.first_seed, args.first_seed + args.seeds)
                for t in tasks for o in order if o in optimizers and (o, t, s) not in done]
        print("%d jobs to run (%d already in %s)" % (len(jobs), len(done), args.out),
              flush=True)
        server = None
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        workdir = tempfile.mkdtemp(prefix="hyperdial-quality-")
        if any(o.startswith("hyperdial") for o, _, _ in jobs):
            binary = find_binary()
            if not binary:
                raise SystemExit("no hyperdial binary: build with `cargo build --release -p "
                                 "hyperdial-cli` or set HYPERDIAL_BIN")
            server, url = start_server(binary, workdir)
            env["HYPERDIAL_BENCH_SERVER"] = url
            env["HYPERDIAL_BENCH_BINARY"] = _describe_binary(binary)
            os.environ["HYPERDIAL_BENCH_SERVER"] = url
            print("hyperdial server %s at %s" % (binary, url), flush=True)
        if not args.no_fork and jobs:
            preload(optimizers)
        lock = threading.Lock()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        stop_at = time.time() + args.stop_after if args.stop_after else None

        def job(j):
            if stop_at is not None and time.time() > stop_at:
                return None  # --stop-after: start nothing new
            return run_job(j, args.budget, args.timeout, env, fork=not args.no_fork)

        failed = False
        pool = concurrent.futures.ThreadPoolExecutor(max(1, args.jobs))
        try:
            futures = {pool.submit(job, j): j for j in jobs}
            for n, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                rec = fut.result()
                if rec is None:
                    continue
                failed = failed or rec["status"] != "ok"
                with lock, open(args.out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                if multi_suite:
                    best = "front of %d" % len(multi.pareto_front(rec["values"]))
                else:
                    ok_values = [v for v in rec["values"] if v is not None]
                    best = "%.6g" % (min(ok_values) if ok_values else float("nan"))
                print("[%d/%d] %-16s %-14s seed %2d %-7s %3d trials best %s %.1fs"
                      % (n, len(jobs), rec["optimizer"], rec["task"], rec["seed"],
                         rec["status"], len(rec["values"]), best, rec["wall_s"]),
                      flush=True)
                if rec["status"] != "ok":
                    print("    " + rec.get("error", "").strip().splitlines()[-1]
                          if rec.get("error", "").strip() else "", flush=True)
        except KeyboardInterrupt:
            print("interrupted; finished jobs are in %s" % args.out, flush=True)
            pool.shutdown(wait=False, cancel_futures=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=10)
            # The scratch server's database and log; kept when a job failed, to read.
            if not failed:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                print("scratch server files kept in %s" % workdir, flush=True)
    seeds = set(range(args.first_seed, args.first_seed + args.seeds))
    records = [r for r in load_records(args.out) if r.get("seed") in seeds]
    if not (args.report_only and explicit):
        # The report shows every label with records in the file (other versions,
        # ``@before``, and the optimizers of earlier invocations), unless --report-only
        # names them.
        present = {r["optimizer"] for r in records if r.get("task") in tasks}
        labels = {o for o in present if runner_of(o) in known_runners}
        optimizers = sorted(labels, key=lambda o: (known_order.index(runner_of(o)),
                                                   o.partition("@")[2]))
    if multi_suite:
        multi.write(records, args.report, command=command, note=args.note,
                    optimizers=optimizers, tasks=tasks, task_specs=TASKS)
        print("wrote %s" % args.report)
        return
    if args.suite == "failures":
        failures.write(records, args.report, command=command, note=args.note,
                       optimizers=optimizers, task_names=tasks,
                       known={t: TASKS[t]["opt"] for t in tasks})
    else:
        import report
        report.write(records, args.report, command=command, note=args.note,
                     optimizers=optimizers, tasks=tasks)
    print("wrote %s" % args.report)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
