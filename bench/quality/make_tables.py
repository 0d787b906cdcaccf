#!/usr/bin/env python3
"""Make the lookup tables of the values-list tasks (bench/quality/tables/*.csv).

    OMP_NUM_THREADS=1 nice -n 19 python3 bench/quality/make_tables.py [--jobs 2] [TASK ...]

Every configuration of each task's grid (lists.SPACES) is trained and scored on each fold of
``KFold(5, shuffle=True, random_state=0)`` of its scikit-learn data set, with the model's random
state set to the fold's number: replicate r of a row is the error (1 − accuracy, or 1 − R² for
the elastic net) of fold r. The data sets and the models are those of run.py's tuning tasks.
The result depends only on the scikit-learn version (recorded in tables/README.md); the tables
are committed, so a benchmark run never trains anything. ``--check N`` re-evaluates N random
rows of each existing table and reports the largest difference instead of writing.
"""

import argparse
import multiprocessing
import os
import random
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lists  # noqa: E402
import run as bench  # noqa: E402

_FOLDS = {}


def _folds(data):
    if data not in _FOLDS:
        from sklearn.model_selection import KFold
        X, y = bench._data(data)
        cv = KFold(n_splits=lists.REPLICATES, shuffle=True, random_state=0)
        _FOLDS[data] = (X, y, list(cv.split(X, y)))
    return _FOLDS[data]


def _model(base, p, r):
    if base == "svm-cancer":
        from sklearn.svm import SVC
        return SVC(C=p["C"], gamma=p["gamma"], kernel=p["kernel"], max_iter=200000)
    if base == "enet-diabetes":
        from sklearn.linear_model import ElasticNet
        return ElasticNet(alpha=p["alpha"], l1_ratio=p["l1_ratio"], max_iter=p["max_iter"],
                          selection=p["selection"], random_state=r)
    if base == "forest-wine":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(
            n_estimators=p["n_estimators"], max_depth=p["max_depth"],
            min_samples_split=p["min_samples_split"], max_features=p["max_features"],
            criterion=p["criterion"], random_state=r, n_jobs=1)
    if base == "mlp-digits":
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier(
            hidden_layer_sizes=(p["hidden"],), alpha=p["alpha"], learning_rate_init=p["lr"],
            batch_size=p["batch_size"], activation=p["activation"], max_iter=8, random_state=r)
    raise KeyError(base)


DATA = {"svm-cancer": "breast_cancer", "enet-diabetes": "diabetes", "forest-wine": "wine",
        "mlp-digits": "digits"}


def evaluate(job):
    """The REPLICATES errors of one configuration (base, grid index)."""
    base, idx = job
    space = lists.SPACES[base]
    p = dict(zip([q["name"] for q in space], lists.grid(space)[idx]))
    X, y, folds = _folds(DATA[base])
    out = []
    for r, (train, test) in enumerate(folds):
        model = _model(base, p, r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X[train], y[train])
            score = float(model.score(X[test], y[test]))
        out.append(1.0 - score)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tasks", nargs="*", default=lists.TABLE_TASKS)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--check", type=int, default=0, metavar="N")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for base in args.tasks:
        n = len(lists.grid(lists.SPACES[base]))
        if args.check:
            table = lists.read_table(base)
            rows = random.Random(0).sample(range(n), min(args.check, n))
            worst = max(max(abs(a - float("%.6g" % b)) for a, b in zip(table[i], evaluate(
                (base, i)))) for i in rows)
            print("%s: %d rows re-evaluated, largest difference %.3g" % (base, len(rows), worst))
            continue
        t0 = time.time()
        jobs = [(base, i) for i in range(n)]
        if args.jobs > 1:
            with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
                rows = pool.map(evaluate, jobs, chunksize=8)
        else:
            rows = [evaluate(j) for j in jobs]
        lists.write_table(base, rows)
        print("%s: %d configurations in %.0f s -> %s" % (base, n, time.time() - t0,
                                                         lists.table_path(base)), flush=True)


if __name__ == "__main__":
    main()
